//! TP-Link plugs on the LAN: the protocols, the plug worker thread, discovery
//! and a simulated plug. This is a library that knows nothing of the config,
//! the service or the command line: callers hand it a [`PlugTarget`] and a
//! [`Timing`].
//!
//! The layers, bottom up:
//!
//! * [`transport`]: one JSON request to a device and its reply
//!   ([`xor::XorTransport`] for the legacy port 9999; KLAP, AES and TPAP over HTTP);
//! * [`device`]: one plug or strip outlet as the worker drives it: read,
//!   switch, arm and clear the dead-man ([`iot::IotDevice`] for the legacy
//!   JSON; the SMART JSON of Tapo and new Kasa devices);
//! * `worker`: the verified, retried algorithm of DESIGN §4, once, above
//!   the [`device::Device`] trait, on its own thread per plug.
//!
//! To add a transport, implement [`transport::Transport`] and route it in
//! [`open_device`]; to add a protocol family, implement [`device::Device`].

pub mod aes;
pub mod connect;
pub mod credentials;
pub mod device;
pub(crate) mod discovery;
pub(crate) mod error;
pub mod http;
pub mod iot;
pub mod klap;
pub mod net;
pub mod protocol;
pub mod sim;
pub mod smart;
pub mod tpap;
pub mod transport;
pub(crate) mod worker;
pub mod xor;

pub use connect::open_device;
pub use credentials::Credentials;
pub use device::{Device, Outlet, Protocol, Status};
pub use error::KasaError;
pub use sim::{Fault, Model, SimOptions, SimPlug, SimState};
pub use worker::{PlugHandle, PlugTarget, Timing};

/// The log target of the final-failure lines; the service routes it into
/// `kasa_errors.log`.
pub(crate) const ERROR_LOG_TARGET: &str = "kasa_errors";
