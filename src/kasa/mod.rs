//! The TP-Link Kasa local protocol (DESIGN §3): codec and framing, a blocking
//! client, the plug worker thread, UDP discovery and a simulated plug.

pub mod cli;
pub mod client;
pub mod credentials;
pub mod device;
pub mod discovery;
pub mod error;
pub mod http;
pub mod klap;
pub mod protocol;
pub mod sim;
pub mod smart;
pub mod transport;
pub mod worker;

pub use client::Client;
pub use error::KasaError;
pub use protocol::{Child, CountdownRule, Emeter, SysInfo};
pub use sim::{Fault, Model, SimOptions, SimPlug, SimState};
pub use worker::{Outlet, PlugCommand, PlugFailure, PlugHandle, PlugOutcome, PlugTarget};

/// The log target of the final-failure lines; the service routes it into
/// `kasa_errors.log`.
pub const ERROR_LOG_TARGET: &str = "kasa_errors";
