//! kasa-thermostat holds a temperature: it reads a DS18B20 sensor and switches
//! TP-Link Kasa smart plugs (a heater and/or a cooler) over the LAN.
//!
//! The binary is a thin shell over this library (see `src/main.rs`). The
//! design and its contract live in `docs/design.md` (threads, layers, safety
//! rules, file formats, protocols, where to change what); in short, there is
//! no async runtime, and the dependencies point one way, from the leaves up
//! (no file imports one that imports it back: `.ci/import_cycles.py` checks it):
//!
//! | layer | modules | owns |
//! |---|---|---|
//! | leaves | [`msg`], [`units`], [`error`], [`fsutil`], [`clock`], [`instance`] | the messages between threads; °C/°F; error chains; bounded file reads; time (zone, RFC 3339, durations); instance names, their paths and the plug locks |
//! | libraries | [`kasa`], [`sensor`], [`control`] | plugs (transports, devices, worker thread); the DS18B20 (backends, faults, thread); the pure decisions |
//! | file formats | [`records`] | one serde struct per line of `readings.jsonl` and `plug-events.jsonl` |
//! | configuration | [`config`] | the JSON file, parsed into typed, bounded settings for the libraries |
//! | service | [`outputs`], [`notify`], [`logging`], [`command`], [`web`], [`mqtt`], [`service`], [`demo`] | files people read; systemd; logs; overrides, reload and the control socket; the web page; Home Assistant over MQTT; threads and wiring; the demo |
//! | simulation | [`sim`] | simulated plugs on loopback (uses [`kasa`], which never uses it) |
//! | reading back | [`history`], [`plot`], [`report`] | the data logs read back (liberal, streamed); the SVG plot; the report |
//! | bench | [`bench`](mod@bench) | the real controller in virtual time against a plant model (`bench-control`) |
//! | front | [`cli`] | every subcommand, help, exit codes |
//!
//! `kasa/` and `sensor/` know nothing of the config, the service or the
//! command line: each takes its own options struct. Where to add things:
//!
//! * **a plug transport** (how JSON reaches a plug): a file in
//!   `kasa/transport/` implementing [`kasa::transport::Transport`], a
//!   [`kasa::TransportKind`] variant, and its route in [`kasa::connect`]
//!   (its simulated device goes in `sim/`);
//! * **a protocol family** (what the JSON says): implement
//!   [`kasa::device::Device`]; the worker algorithm stays in `kasa::worker`;
//! * **a third plug kind** (a humidifier, a fan): a [`msg::Role`], its config
//!   key in [`config`], and its demand rule in `control::rules`;
//! * **a setpoint schedule**: `control::Controller::set_limits` takes the
//!   limits in force each cycle, from the service layer's wall clock;
//! * **a control algorithm**: a pure demand source beside
//!   `control::cascade`, chosen by `control.algorithm`; every safety rule
//!   stays on top of it; [`bench`](mod@bench) scores it against the others.
#![warn(missing_docs)]

pub mod alerts;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod control;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod history;
pub mod instance;
pub mod kasa;
pub mod logging;
pub mod mqtt;
pub mod msg;
pub mod notify;
pub mod outputs;
pub mod plot;
pub mod profile;
pub mod records;
pub mod report;
pub mod sensor;
pub mod service;
pub mod sim;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod units;
pub mod web;

pub use msg::Role;
