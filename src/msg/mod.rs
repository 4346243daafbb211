//! The messages that cross threads, in one neutral module that both sides
//! import: the control thread and the plug workers speak [`plug`], the sensor
//! thread and the control thread speak [`sensor`]. Nothing here does I/O or
//! knows about the config, the command line or the service, so `kasa/`,
//! `sensor/` and `control/` depend on this module and not on each other.

pub mod command;
pub mod plug;
pub mod role;
pub mod sensor;

pub use command::{Command, CommandSender, ProfileAction, Reply, Request, Source};
pub use plug::{
    Completion, DeadmanKind, DeadmanReport, FailureKind, PlugCommand, PlugFailure, PlugOutcome,
    PlugState,
};
pub use role::Role;
pub use sensor::{Probe, Reading, SensorEvent, SensorFault};
