//! The control [`Mode`]: which plugs the control loop drives. A leaf of
//! `control/`, so that the rules and the controller both name it without an
//! import circle through `control/mod.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the control loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Both plugs off.
    Off,
    /// Heater only.
    #[default]
    Heat,
    /// Cooler only.
    Cool,
    /// Heater and cooler, never both on.
    HeatCool,
}

impl Mode {
    /// The name used in the config file and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Heat => "heat",
            Mode::Cool => "cool",
            Mode::HeatCool => "heat_cool",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
