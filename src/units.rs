//! Temperature units: the config file, the logs, the state file and the data
//! log speak the user's `units`; everything inside the program works in °C.
//! This module is a leaf, so every layer can use it.

use serde::{Deserialize, Serialize};

/// Temperature units of the config file, the logs and the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Units {
    /// Degrees Celsius.
    #[default]
    C,
    /// Degrees Fahrenheit.
    F,
}

impl Units {
    /// Converts a temperature in these units to °C.
    pub fn to_c(self, t: f64) -> f64 {
        match self {
            Units::C => t,
            Units::F => (t - 32.0) * 5.0 / 9.0,
        }
    }
    /// Converts a temperature in °C to these units.
    pub fn from_c(self, t: f64) -> f64 {
        match self {
            Units::C => t,
            Units::F => t * 9.0 / 5.0 + 32.0,
        }
    }
    /// Converts a temperature difference in these units to kelvins.
    pub fn delta_to_c(self, d: f64) -> f64 {
        match self {
            Units::C => d,
            Units::F => d * 5.0 / 9.0,
        }
    }
    /// The unit symbol, for logs: `°C` or `°F`.
    pub fn symbol(self) -> &'static str {
        match self {
            Units::C => "°C",
            Units::F => "°F",
        }
    }
}

impl Units {
    /// `C` or `F`, as written in the config and the data files.
    pub fn as_str(self) -> &'static str {
        match self {
            Units::C => "C",
            Units::F => "F",
        }
    }
}
