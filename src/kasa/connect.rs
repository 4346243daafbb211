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
//! * `tpap`: TPAP over HTTP (port 80) with the SMART JSON: firmware 1.4.x of
//!   Tapo and Kasa plugs. The handshake runs at once, so that a refused
//!   login shows on the first request; a login the device refuses, or a
//!   handshake it rejects, is one [`KasaError::Rejected`] line naming the
//!   model, what it announced and the ways out;
//! * `auto`: the UDP 20002 probe to the host (on 20002, and on the given
//!   port, where a simulated plug listens) names the transport and the
//!   family (TPAP, or KLAP when the device says `tpap_preferred: false`);
//!   without an answer, the legacy port is tried, then KLAP on 80.
//!   What was learned is logged once and kept for the life of the worker.
//!
//! **Sleepy plugs.** A P110 on 1.4.6 does not listen on port 80 after a
//! power cut until it receives a discovery packet. So a refused connection
//! to a KLAP, AES or TPAP device sends the 20002 probe to it at once,
//! within the same deadline, and logs it: the worker's next attempt finds
//! the port open.

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
use super::transport::tpap::TpapTransport;
use super::transport::xor::XorTransport;
use super::transport::{Transport as _, TransportKind};
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

    /// TPAP on `port`, handshaking now; a refusal names what the device
    /// announced (`info`, from the 20002 answer) and the ways out.
    fn tpap(
        &self,
        port: u16,
        info: Option<&ProbeInfo>,
        deadline: Instant,
    ) -> Result<Box<dyn Device>, KasaError> {
        let mut t = TpapTransport::new(
            &self.target.host,
            port,
            self.credentials.clone(),
            self.connect,
        );
        match t.handshake(deadline) {
            Ok(()) => Ok(Box::new(SmartDevice::new(
                t,
                TransportKind::Tpap,
                self.target.outlet.clone(),
            ))),
            Err(e) if rejects(&e) => Err(KasaError::Rejected {
                addr: t.address().to_string(),
                model: info
                    .map(|i| i.model.clone())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "device".into()),
                announced: match (info, t.announce()) {
                    (Some(i), _) => i.announced(),
                    (None, Some(a)) => {
                        format!("TPAP (TLS mode {}, passcode types {:?})", a.tls, a.pake)
                    }
                    (None, None) => "nothing (no 20002 answer)".into(),
                },
                source: Box::new(e),
            }),
            Err(e) => Err(e),
        }
    }

    /// The sleepy-plug wake-up: after a refused connection to a device
    /// that speaks HTTP (KLAP, AES, TPAP), the 20002 probe, within `deadline`.
    fn wake_if_refused<T>(&self, result: &Result<T, KasaError>, deadline: Instant) {
        let Err(KasaError::Refused { addr, .. }) = result else {
            return;
        };
        let http = match &self.inner {
            Some(d) => d.transport_kind() != TransportKind::Legacy,
            None => matches!(
                self.target.transport,
                TransportKind::Klap | TransportKind::Aes | TransportKind::Tpap
            ),
        };
        if !http {
            return;
        }
        let answered = self.probe(deadline).ok().flatten().is_some();
        log::info!(
            "{}: {addr} refused the connection; sent the UDP 20002 probe to wake it ({})",
            self.target.label(),
            if answered { "it answered" } else { "no answer" }
        );
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
            TransportKind::Tpap => {
                // The 20002 answer names the model for a refusal's message.
                let info = self.probe(deadline)?;
                self.tpap(self.target.port(), info.as_ref(), deadline)?
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
            Some(info) if info.is_tpap() && info.is_smart() => {
                let port = self.target.port.or(info.http_port).unwrap_or(80);
                if info.tpap_preferred == Some(false) {
                    log::info!(
                        "{label}: the 20002 probe says TPAP but not preferred, {} {}: using KLAP",
                        info.device_type,
                        info.model
                    );
                    return self.klap(port, deadline);
                }
                log::info!(
                    "{label}: the 20002 probe says {}, {} {}",
                    info.announced(),
                    info.device_type,
                    info.model
                );
                self.tpap(port, Some(&info), deadline)
            }
            Some(info) => {
                let model = if info.model.is_empty() {
                    "device".to_string()
                } else {
                    info.model.clone()
                };
                Err(KasaError::Rejected {
                    addr: self.addr.clone(),
                    model: model.clone(),
                    announced: info.announced(),
                    source: Box::new(KasaError::Unsupported {
                        addr: self.addr.clone(),
                        model,
                        what: format!(
                            "{} transport for {} devices in this build",
                            info.scheme, info.device_type
                        ),
                    }),
                })
            }
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

/// Whether a failed TPAP handshake is the device saying no (a refused
/// login, an error code, a status, an answer we cannot use), not the network.
fn rejects(e: &KasaError) -> bool {
    matches!(
        e,
        KasaError::Auth { .. }
            | KasaError::Unsupported { .. }
            | KasaError::Smart { .. }
            | KasaError::HttpStatus { .. }
            | KasaError::Tpap { .. }
    )
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
        let r = self.device(deadline).and_then(|d| d.read(deadline));
        self.wake_if_refused(&r, deadline);
        r
    }

    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError> {
        let r = self.device(deadline).and_then(|d| d.set(on, deadline));
        self.wake_if_refused(&r, deadline);
        r
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
