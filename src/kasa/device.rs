//! The device seam: what the plug worker needs of one plug (or one outlet of a
//! strip), whatever protocol and transport it speaks.
//!
//! The worker algorithm of docs/design.md §6 (pre-read, arm, switch, spacing,
//! read-back, three attempts) lives once, in `super::worker`, above this
//! trait. Each protocol family implements it:
//!
//! * the legacy "IOT" JSON (`system.get_sysinfo`, `set_relay_state`,
//!   `count_down`) over XOR/TCP 9999 or inside KLAP v1;
//! * the "SMART" JSON (`get_device_info`, `set_device_info`,
//!   `control_child`, countdown / auto-off) inside KLAP v2 or AES.
//!
//! A device is built for one target (plug or outlet): resolving a strip's
//! outlet to a child id is its own business, done on the first read.
//!
//! Every method is bounded by `deadline` (see [`super::transport`]).

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::KasaError;
use super::transport::TransportKind;

/// What a state read found.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The relay of the addressed plug or outlet is closed.
    pub on: bool,
    /// Wi-Fi signal in dBm, when the device reports it.
    pub rssi: Option<i64>,
    /// The model as the device names it (`HS100(UK)`, `P110`).
    pub model: String,
}

pub use crate::msg::DeadmanKind;

/// One outlet of a power strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outlet {
    /// By child id, in full (deviceId + "NN") or as the two-digit suffix.
    Id(String),
    /// By 0-based index in the device's list of outlets.
    Index(usize),
}

impl fmt::Display for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outlet::Id(id) => write!(f, "id {id}"),
            Outlet::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// One plug, or one outlet of a strip, as the worker drives it.
pub trait Device: Send {
    /// `host:port`, as named in every error.
    fn address(&self) -> &str;

    /// The transport in use (after `auto` has learned it).
    fn transport_kind(&self) -> TransportKind;

    /// Whether it speaks the SMART JSON (Tapo and newer Kasa devices).
    fn is_smart(&self) -> bool {
        false
    }

    /// Reads the relay state of the target, before `deadline`.
    fn read(&mut self, deadline: Instant) -> Result<Status, KasaError>;

    /// Switches the target's relay. The caller verifies with [`Device::read`].
    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError>;

    /// Puts a dead-man on the target that opens the relay `delay` from now
    /// (rounded up to what the device can do), replacing any earlier one.
    fn arm_deadman(&mut self, delay: Duration, deadline: Instant)
        -> Result<DeadmanKind, KasaError>;

    /// Removes the dead-man from the target.
    fn clear_deadman(&mut self, deadline: Instant) -> Result<(), KasaError>;

    /// The device's own description of itself, as it sent it (the legacy
    /// `get_sysinfo` object, or the SMART `get_device_info` result).
    fn info(&mut self, deadline: Instant) -> Result<Value, KasaError>;

    /// Drops connections and sessions; the next call starts afresh.
    fn close(&mut self);
}
