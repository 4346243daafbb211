//! kasa-thermostat holds a temperature: it reads a DS18B20 sensor and switches
//! TP-Link Kasa smart plugs (a heater and/or a cooler) over the LAN.
//!
//! The binary is a thin shell over this library (see `src/main.rs`). The design
//! and its contract live in `DESIGN.md`; in short, there is no async runtime:
//!
//! * [`sensor`] reads the DS18B20 on its own thread and classifies faults;
//! * [`control`] is the pure decision core (no I/O, injected clock);
//! * [`kasa`] speaks the Kasa local protocol, with one worker thread per plug;
//! * [`service`] wires the threads together with crossbeam channels;
//! * [`config`] loads and validates the JSON configuration;
//! * [`outputs`] writes the data log and the state file and renders `status`;
//! * [`notify`] tells systemd the service is ready and alive;
//! * [`cli`] parses the command line and dispatches the subcommands.

pub mod cli;
pub mod config;
pub mod control;
pub mod datalog;
pub mod demo;
pub mod kasa;
pub mod notify;
pub mod outputs;
pub mod plot;
pub mod report;
pub mod sensor;
pub mod service;
pub mod units;

use std::fmt;

/// Which job a plug does. The control thread addresses plugs by role and every
/// log line about a plug names it, so that `kasa_errors.log` says which plug
/// failed, not only which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The plug that heats (switched on when it is too cold).
    Heater,
    /// The plug that cools (switched on when it is too warm).
    Cooler,
    /// A plug switched by hand from the command line (`kasa-thermostat plug`).
    Manual,
}

impl Role {
    /// The lower-case name used in logs, the state file and the config keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Heater => "heater",
            Role::Cooler => "cooler",
            Role::Manual => "manual",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
