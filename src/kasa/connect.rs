//! Choosing the transport and the protocol family for a plug, and learning
//! them when the config says `auto`.
//!
//! [`open_device`] returns a device that builds its real self on first use,
//! within that call's deadline, and keeps it:
//!
//! * `legacy`: the XOR transport on TCP 9999 with the legacy JSON;
//! * `klap`: KLAP over HTTP (port 80). The handshake tells which hash the
//!   device takes: v1 devices speak the legacy JSON inside KLAP (HS100(UK)
//!   hw 4.1), v2 devices the SMART JSON (Tapo, KP125M, EP40M...);
//! * `aes`: the AES "securePassthrough" transport over HTTP (port 80) with
//!   the SMART JSON (python-kasa knows no device with the legacy JSON inside
//!   AES). The login version (`lv`) comes from the 20002 answer when the
//!   device gives one, else version 2 (every AES plug recorded with an `lv`
//!   says 2);
//! * `auto`: the UDP 20002 probe to the host (on 20002, and on the given
//!   port, where a simulated plug listens) names the transport and the
//!   family; without an answer, the legacy port is tried, then KLAP on 80.
//!   What was learned is logged once and kept for the life of the worker.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::credentials::{Credentials, KlapVersion};
use super::device::{DeadmanKind, Device, Status};
use super::discovery::probe::{probe, ProbeInfo, KLAP_PORT};
use super::error::KasaError;
use super::iot::IotDevice;
use super::smart::SmartDevice;
use super::transport::aes::{AesTransport, LoginVersion};
use super::transport::klap::KlapTransport;
use super::transport::net::resolve;
use super::transport::xor::XorTransport;
use super::transport::TransportKind;
use super::worker::{PlugTarget, Timing};

/// How long `auto` waits for an answer to the 20002 probe (a device on the
/// LAN answers within tens of milliseconds); at most a third of the first
/// request's time, so the request itself still fits.
const PROBE_WAIT: Duration = Duration::from_millis(300);

/// The device for `target`, speaking its protocol (learned on first use for
/// `auto`). `credentials` are the TP-Link account for KLAP and AES plugs;
/// `None` tries the devices' published defaults. Nothing happens on the
/// network until the first request.
pub fn open_device(
    target: &PlugTarget,
    timing: &Timing,
    credentials: Option<Credentials>,
) -> Box<dyn Device> {
    Box::new(Lazy {
        target: target.clone(),
        connect: timing.connect,
        credentials,
        addr: target.address(),
        inner: None,
    })
}

struct Lazy {
    target: PlugTarget,
    connect: Duration,
    credentials: Option<Credentials>,
    addr: String,
    inner: Option<Box<dyn Device>>,
}

impl Lazy {
    fn device(&mut self, deadline: Instant) -> Result<&mut Box<dyn Device>, KasaError> {
        if self.inner.is_none() {
            let dev = self.learn(deadline)?;
            self.addr = dev.address().to_string();
            self.inner = Some(dev);
        }
        Ok(self.inner.as_mut().expect("set above"))
    }

    fn legacy(&self, port: u16) -> Box<dyn Device> {
        let t = XorTransport::new(&self.target.host, port, self.connect);
        Box::new(IotDevice::new(
            t,
            self.target.outlet.clone(),
            TransportKind::Legacy,
        ))
    }

    /// KLAP on `port`: the handshake says which family the device is.
    fn klap(&self, port: u16, deadline: Instant) -> Result<Box<dyn Device>, KasaError> {
        let mut t = KlapTransport::new(
            &self.target.host,
            port,
            self.credentials.clone(),
            KlapVersion::V2,
            self.connect,
        );
        t.handshake(deadline)?;
        Ok(self.over_klap(t))
    }

    /// AES on `port` with this login version: handshake and login now, so
    /// that refused credentials show on the first request.
    fn aes(
        &self,
        port: u16,
        login: LoginVersion,
        deadline: Instant,
    ) -> Result<Box<dyn Device>, KasaError> {
        let mut t = AesTransport::new(
            &self.target.host,
            port,
            self.credentials.clone(),
            login,
            self.connect,
        );
        t.connect(deadline)?;
        Ok(Box::new(SmartDevice::new(
            t,
            TransportKind::Aes,
            self.target.outlet.clone(),
        )))
    }

    /// The host's 20002 answer (on 20002 and on the given port), waiting at
    /// most [`PROBE_WAIT`] and never past `deadline`.
    fn probe(&self, deadline: Instant) -> Result<Option<ProbeInfo>, KasaError> {
        let ip = resolve(&self.target.host, self.target.port())
            .map_err(|source| KasaError::Resolve {
                host: self.target.host.clone(),
                port: self.target.port(),
                source,
            })?
            .ip();
        let mut ports = vec![KLAP_PORT];
        if let Some(p) = self.target.port {
            if p != KLAP_PORT {
                ports.push(p);
            }
        }
        // A third of what is left: the transports after it need the rest.
        let wait = PROBE_WAIT.min(deadline.saturating_duration_since(Instant::now()) / 3);
        Ok(probe(ip, &ports, wait))
    }

    fn over_klap(&self, t: KlapTransport) -> Box<dyn Device> {
        let outlet = self.target.outlet.clone();
        match t.version() {
            KlapVersion::V1 => Box::new(IotDevice::new(t, outlet, TransportKind::Klap)),
            KlapVersion::V2 => Box::new(SmartDevice::new(t, TransportKind::Klap, outlet)),
        }
    }

    fn learn(&mut self, deadline: Instant) -> Result<Box<dyn Device>, KasaError> {
        let label = self.target.label();
        let dev = match self.target.transport {
            TransportKind::Legacy => return Ok(self.legacy(self.target.port())),
            TransportKind::Klap => self.klap(self.target.port(), deadline)?,
            TransportKind::Aes => {
                // The login version is the device's business: ask it, once.
                let lv = match self.probe(deadline)? {
                    Some(info) if info.scheme.eq_ignore_ascii_case("AES") => {
                        LoginVersion::from_lv(info.lv)
                    }
                    _ => LoginVersion::V2,
                };
                self.aes(self.target.port(), lv, deadline)?
            }
            TransportKind::Auto => self.auto(deadline)?,
        };
        log::info!(
            "{label}: speaks {} ({}) at {}",
            dev.transport_kind(),
            family(dev.as_ref()),
            dev.address()
        );
        Ok(dev)
    }

    fn auto(&mut self, deadline: Instant) -> Result<Box<dyn Device>, KasaError> {
        let label = self.target.label();
        match self.probe(deadline)? {
            Some(info) if info.scheme.eq_ignore_ascii_case("KLAP") => {
                // A port given in the config wins (a simulated plug on
                // loopback); a real device says 80.
                let port = self.target.port.or(info.http_port).unwrap_or(80);
                log::info!(
                    "{label}: the 20002 probe says KLAP, {} {}",
                    info.device_type,
                    info.model
                );
                let mut t = KlapTransport::new(
                    &self.target.host,
                    port,
                    self.credentials.clone(),
                    if info.is_smart() {
                        KlapVersion::V2
                    } else {
                        KlapVersion::V1
                    },
                    self.connect,
                );
                t.handshake(deadline)?;
                Ok(self.over_klap(t))
            }
            Some(info) if info.scheme.eq_ignore_ascii_case("AES") && info.is_smart() => {
                let port = self.target.port.or(info.http_port).unwrap_or(80);
                log::info!(
                    "{label}: the 20002 probe says AES (login v{}), {} {}",
                    info.lv.unwrap_or(1),
                    info.device_type,
                    info.model
                );
                self.aes(port, LoginVersion::from_lv(info.lv), deadline)
            }
            Some(info) => Err(KasaError::Unsupported {
                addr: self.addr.clone(),
                model: if info.model.is_empty() {
                    "device".into()
                } else {
                    info.model
                },
                what: format!(
                    "{} transport for {} devices in this build",
                    info.scheme, info.device_type
                ),
            }),
            None => {
                // No answer: a legacy plug (port 9999 unless given), else
                // KLAP on 80 for a device that does not answer the probe.
                let port = self.target.port.unwrap_or(9999);
                let mut legacy = self.legacy(port);
                match legacy.read(deadline) {
                    // It answered in the legacy JSON, whatever it said (a
                    // bulb with no relay, a strip asked without an outlet).
                    Ok(_)
                    | Err(
                        KasaError::Outlet { .. }
                        | KasaError::Device { .. }
                        | KasaError::BadReply { .. }
                        | KasaError::WrongReply { .. },
                    ) => Ok(legacy),
                    Err(KasaError::Refused { .. }) if self.target.port.is_none() => {
                        self.klap(80, deadline)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// `legacy JSON` or `SMART JSON`, for the log line.
fn family(dev: &dyn Device) -> &'static str {
    match dev.transport_kind() {
        TransportKind::Legacy => "legacy JSON",
        _ if dev.is_smart() => "SMART JSON",
        _ => "legacy JSON",
    }
}

impl Device for Lazy {
    fn address(&self) -> &str {
        &self.addr
    }

    fn transport_kind(&self) -> TransportKind {
        match &self.inner {
            Some(d) => d.transport_kind(),
            None => self.target.transport,
        }
    }

    fn is_smart(&self) -> bool {
        self.inner.as_ref().is_some_and(|d| d.is_smart())
    }

    fn read(&mut self, deadline: Instant) -> Result<Status, KasaError> {
        self.device(deadline)?.read(deadline)
    }

    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError> {
        self.device(deadline)?.set(on, deadline)
    }

    fn arm_deadman(
        &mut self,
        delay: Duration,
        deadline: Instant,
    ) -> Result<DeadmanKind, KasaError> {
        self.device(deadline)?.arm_deadman(delay, deadline)
    }

    fn clear_deadman(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.device(deadline)?.clear_deadman(deadline)
    }

    fn info(&mut self, deadline: Instant) -> Result<Value, KasaError> {
        self.device(deadline)?.info(deadline)
    }

    fn close(&mut self) {
        if let Some(d) = &mut self.inner {
            d.close();
        }
    }
}
