//! TP-Link plugs on the LAN: the client library. It knows nothing of the
//! config, the service or the command line: callers hand it a [`PlugTarget`]
//! and a [`Timing`]. The simulated plugs are not here but in `crate::sim`,
//! which uses this library (never the reverse).
//!
//! The layers, bottom up (a file uses only the layers below it):
//!
//! * [`transport`]: one JSON request to a device and its reply, whatever the
//!   wire ([`transport::xor`] on the legacy TCP 9999, [`transport::klap`],
//!   [`transport::aes`] and [`transport::tpap`] over [`transport::http`]; [`transport::net`]
//!   is the bounded connect they share);
//! * the protocol families, what the JSON says: [`iot`] (the legacy JSON,
//!   `SysInfo`) and [`smart`] (the SMART JSON of Tapo and newer Kasa, with
//!   its error codes in [`smart::codes`]), each a [`Device`] over any
//!   transport;
//! * on top: [`device`] (the seam the worker drives), [`connect`] (choosing
//!   or learning the transport and family: [`open_device`]), `worker` (the
//!   verified, retried algorithm of docs/design.md §6, one thread per plug),
//!   [`discovery`] (UDP discovery and the 20002 probe), [`credentials`] and
//!   `error` ([`KasaError`]).
//!
//! To add a transport: a file in `transport/` implementing
//! [`transport::Transport`], a [`TransportKind`] variant with its name and
//! default port, and its route in [`connect`]; to add a protocol family,
//! implement [`device::Device`] and route it in [`connect`].

pub mod connect;
pub mod credentials;
pub mod device;
pub mod discovery;
pub(crate) mod error;
pub mod iot;
pub mod smart;
pub mod transport;
pub(crate) mod worker;

pub use connect::open_device;
pub use credentials::Credentials;
pub use device::{Device, Outlet, Status};
pub use error::{KasaError, ReplyError, StateError};
pub use transport::TransportKind;
pub use worker::{PlugHandle, PlugTarget, Timing};

pub(crate) use error::ERROR_LOG_TARGET;
