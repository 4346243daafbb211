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
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod kasa;
pub mod logging;
pub mod msg;
pub mod notify;
pub mod outputs;
pub mod sensor;
pub mod service;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod units;

pub use msg::Role;
