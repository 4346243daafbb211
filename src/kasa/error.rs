//! The one error type of the Kasa client. Every variant names the plug as
//! `host:port` and its message says what to check, because these lines end up
//! in `kasa_errors.log` and are read by someone standing next to a cold heater.

use std::fmt;

use super::smart::codes::{self, error_name, is_auth_error};
use crate::msg::FailureKind;

/// The log target of the final-failure lines; the service routes it into
/// `kasa_errors.log`.
pub(crate) const ERROR_LOG_TARGET: &str = "kasa_errors";

/// Why a request to a plug failed.
#[derive(Debug)]
pub enum KasaError {
    /// The host name did not resolve.
    Resolve {
        /// The host as configured.
        host: String,
        /// The port.
        port: u16,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The TCP connection was refused. `klap_hint` is set when the device
    /// answered the UDP 20002 probe: it speaks the newer KLAP protocol.
    Refused {
        /// `host:port`.
        addr: String,
        /// The device answered the 20002 probe.
        klap_hint: bool,
        /// The scheme it announced (`KLAP`, `AES`), when it did.
        scheme: Option<String>,
    },
    /// Connecting failed for another reason (unreachable, no route...).
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// No answer in time.
    TimedOut {
        /// `host:port`.
        addr: String,
        /// What was waited for (`connect`, `get_sysinfo`...).
        op: String,
        /// The timeout in milliseconds.
        after_ms: u64,
    },
    /// The plug closed the connection before a whole reply arrived.
    Closed {
        /// `host:port`.
        addr: String,
        /// What was being done.
        op: String,
        /// Whether part of the reply had arrived (closed mid-frame).
        mid_frame: bool,
    },
    /// The reply is not a frame of JSON.
    BadFrame {
        /// `host:port`.
        addr: String,
        /// What was wrong.
        detail: String,
    },
    /// The reply announced more than the transport's frame limit.
    Oversize {
        /// `host:port`.
        addr: String,
        /// The announced length.
        len: usize,
        /// The limit (`transport::xor::MAX_FRAME`).
        max: usize,
    },
    /// The plug answered with a non-zero `err_code`.
    Device {
        /// `host:port`.
        addr: String,
        /// The module.
        module: String,
        /// The method, `None` when the whole module was refused.
        method: Option<String>,
        /// The error code.
        code: i64,
        /// The device's message.
        msg: String,
    },
    /// The reply is JSON but lacks a key or has the wrong shape.
    BadReply {
        /// `host:port`.
        addr: String,
        /// The parser's complaint.
        source: ReplyError,
    },
    /// The reply does not answer the request that was sent: it names another
    /// method (a late reply to an earlier request on a kept-open connection,
    /// or a frame the device sent unasked). Transient the first time: the
    /// worker drops the connection, counts the attempt and tries again on a
    /// fresh one. Permanent only when a fresh connection gave the same wrong
    /// answer (the worker compares it with the previous attempt's).
    WrongReply {
        /// `host:port`.
        addr: String,
        /// The request sent (`system.set_relay_state`, `get_device_info`).
        sent: String,
        /// What the reply answers instead.
        got: String,
        /// A fresh connection gave the same wrong answer.
        repeated: bool,
    },
    /// The device has no relay to switch at this address: a bulb, a strip
    /// addressed without an outlet, an outlet that is not there. Permanent.
    Outlet {
        /// `host:port`.
        addr: String,
        /// What is missing.
        source: StateError,
    },
    /// After a switch, the read-back state is not the one asked for.
    Mismatch {
        /// `host:port`.
        addr: String,
        /// The requested state.
        want: bool,
        /// The state read back.
        got: bool,
    },
    /// The command's time budget ran out before this step could start
    /// (shutdown gives every plug a bounded time).
    NoTime {
        /// `host:port`.
        addr: String,
        /// The step that could not start.
        op: String,
    },
    /// Another socket error (reset, broken pipe...).
    Io {
        /// `host:port`.
        addr: String,
        /// What was being done.
        op: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP reply of a KLAP device is malformed (bad status line or
    /// header, no `Content-Length`, a head or body over the size limit, a
    /// missing session cookie).
    Http {
        /// `host:port`.
        addr: String,
        /// What was being done (`handshake1`, `request get_device_info`...).
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// The device answered with an unexpected HTTP status.
    HttpStatus {
        /// `host:port`.
        addr: String,
        /// What was being done.
        op: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The plug refused the TP-Link credentials: the KLAP handshake matched
    /// neither the configured credentials nor the published defaults, or a
    /// SMART login error code. Permanent until the credentials change: do not
    /// retry it more than once per control cycle (devices may lock out).
    Auth {
        /// `host:port`.
        addr: String,
        /// What the device did, for the error chain.
        source: AuthDetail,
    },
    /// The KLAP session failed after the credentials were accepted: a
    /// handshake reply of the wrong length, handshake2 refused, a reply whose
    /// signature, padding or length is wrong. The session is dropped, so the
    /// next request starts a fresh one.
    Klap {
        /// `host:port`.
        addr: String,
        /// What was being done.
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// A SMART device answered a non-zero `error_code`.
    Smart {
        /// `host:port`.
        addr: String,
        /// The SMART method (`set_device_info`, `control_child`...).
        method: String,
        /// The device's error code.
        code: i64,
    },
    /// The device lacks what was asked of it (no countdown and no auto-off
    /// for a dead-man, no `device_on` in its info).
    Unsupported {
        /// `host:port`.
        addr: String,
        /// The model, as the device names it.
        model: String,
        /// What is missing.
        what: String,
    },
    /// The AES ("securePassthrough") session failed: a handshake reply
    /// without a usable key (bad RSA ciphertext, wrong key size, not
    /// base64), a login without a token, a reply that does not decrypt
    /// (base64, block or padding errors). The session is dropped, so the
    /// next request starts a fresh one.
    Aes {
        /// `host:port`.
        addr: String,
        /// What was being done (`handshake`, `login_device`, the request).
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// The TPAP session failed after discovery: a handshake answer this
    /// build cannot use, a reply whose length, tag or sequence number is
    /// wrong. The session is dropped, so the next request starts a fresh one.
    Tpap {
        /// `host:port`.
        addr: String,
        /// What was being done (`discover`, `pake_share`, the request).
        op: String,
        /// What was wrong.
        source: super::transport::tpap::crypto::TpapError,
    },
    /// A device on new firmware would not let us in: it refused the TPAP
    /// login, rejected the TPAP handshake, or announced a transport this
    /// build does not speak. Says what it announced and the ways out.
    Rejected {
        /// `host:port`.
        addr: String,
        /// The model, as announced (`P110(EU)`), or `device`.
        model: String,
        /// What it announced (`TPAP (lv 2, HTTP port 80)`).
        announced: String,
        /// Why, with its own detail.
        source: Box<KasaError>,
    },
}

/// Why a reply could not be used. The client adds the peer's address.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyError {
    /// The device answered a non-zero `err_code` (module level when `method` is `None`).
    Device {
        /// The module (`system`, `count_down`...).
        module: String,
        /// The method, or `None` when the module itself was refused.
        method: Option<String>,
        /// The device's error code.
        code: i64,
        /// The device's message.
        msg: String,
    },
    /// The reply lacks a key or has the wrong shape.
    Shape(String),
}

/// `device refused system.set_relay_state: err_code -2 (member not support)`,
/// the one wording of a device error for [`ReplyError`] and `KasaError`.
pub(crate) fn device_refused(module: &str, method: Option<&str>, code: i64, msg: &str) -> String {
    let at = match method {
        Some(m) => format!("{module}.{m}"),
        None => module.to_string(),
    };
    format!("device refused {at}: err_code {code} ({msg})")
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Device {
                module,
                method,
                code,
                msg,
            } => f.write_str(&device_refused(module, method.as_deref(), *code, msg)),
            ReplyError::Shape(detail) => write!(f, "unexpected reply: {detail}"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Why a state could not be taken from a sysinfo. Each of these is
/// permanent: trying again cannot help, so the worker fails at once.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// The device has no relay at all (a bulb, a light strip, a sensor).
    NoRelay {
        /// The model, as the device names it.
        model: String,
    },
    /// A power strip addressed without an outlet.
    StripNeedsOutlet {
        /// The model.
        model: String,
        /// How many outlets it has, when known.
        outlets: Option<usize>,
    },
    /// An outlet was asked of a device that is not a power strip.
    NotAStrip {
        /// The model.
        model: String,
    },
    /// The outlet is not among the children.
    NoSuchOutlet {
        /// The outlet asked for.
        outlet: String,
        /// The ids the device has.
        available: Vec<String>,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: &str| {
            if m.is_empty() {
                "this device".to_string()
            } else {
                m.to_string()
            }
        };
        match self {
            StateError::NoRelay { model } => write!(
                f,
                "{} has no relay this service can switch (a bulb, hub or sensor, not a plug or switch)",
                name(model)
            ),
            StateError::StripNeedsOutlet { model, outlets } => match outlets {
                Some(n) => write!(
                    f,
                    "{} is a power strip with {n} outlets: give --outlet N (counted from 0: \
                     0 to {}) or --child ID (config: outlet or child_id)",
                    name(model),
                    n.saturating_sub(1)
                ),
                None => write!(
                    f,
                    "{} is a power strip: give --outlet N (counted from 0) or --child ID \
                     (config: outlet or child_id)",
                    name(model)
                ),
            },
            StateError::NotAStrip { model } => write!(
                f,
                "{} is not a power strip: leave out --outlet/--child (config: outlet, child_id)",
                name(model)
            ),
            StateError::NoSuchOutlet { outlet, available } => {
                write!(
                    f,
                    "outlet {outlet} not found; the device has {} outlets",
                    available.len()
                )?;
                if !available.is_empty() {
                    write!(
                        f,
                        " (--outlet 0 to {}, counted from 0; ids {})",
                        available.len() - 1,
                        available.join(", ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StateError {}

/// The detail of a refused login ([`KasaError::Auth`]).
#[derive(Debug, Clone, PartialEq)]
pub enum AuthDetail {
    /// handshake1's server hash matches no candidate credentials.
    HashMismatch {
        /// The user name tried (never the password).
        username: String,
    },
    /// TPAP: the device refused the login with `code` (`-2203` with its
    /// count of failed and remaining attempts, or a SMART login error such
    /// as `-1501`), or its confirmation proved it holds another password
    /// (`confirm`).
    Tpap {
        /// The user name tried (never the password).
        username: String,
        /// The refusal's `error_code` (unused when `confirm`).
        code: i64,
        /// `failedAttempts`.
        failed: Option<i64>,
        /// `remainAttempts`.
        remaining: Option<i64>,
        /// Refused by the device's confirmation, not by an error code.
        confirm: bool,
    },
    /// A SMART error code that means a refused login (`-1501`, `1111`...).
    Code {
        /// The code.
        code: i64,
        /// Its python-kasa name.
        name: &'static str,
    },
}

impl fmt::Display for AuthDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthDetail::HashMismatch { username } if username.is_empty() => f.write_str(
                "no credentials are configured and the plug accepts none of the published defaults",
            ),
            AuthDetail::HashMismatch { username } => write!(
                f,
                "the handshake matches neither {username:?} with this password nor the published defaults"
            ),
            AuthDetail::Code { code, name } => write!(f, "error_code {code} ({name})"),
            AuthDetail::Tpap { username, confirm: true, .. } => write!(
                f,
                "the device's confirmation shows it holds another password than {username:?}'s"
            ),
            AuthDetail::Tpap {
                username,
                code,
                failed,
                remaining,
                ..
            } => {
                write!(
                    f,
                    "error_code {code} ({}): the login of {username:?} was refused",
                    error_name(*code)
                )?;
                if let Some(n) = failed {
                    write!(f, "; {n} failed attempts")?;
                }
                if let Some(n) = remaining {
                    write!(f, ", {n} left before the device locks this client out")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AuthDetail {}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

impl KasaError {
    /// The class of this error, for the logs, `plug-events.jsonl` and `report`.
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            KasaError::Resolve { .. } => FailureKind::Resolve,
            KasaError::Refused { .. } => FailureKind::Refused,
            KasaError::Connect { .. } => FailureKind::Unreachable,
            KasaError::TimedOut { .. } => FailureKind::Timeout,
            KasaError::Closed { .. } => FailureKind::Closed,
            KasaError::BadFrame { .. } | KasaError::Oversize { .. } => FailureKind::BadReply,
            KasaError::BadReply { .. } | KasaError::WrongReply { .. } => FailureKind::BadReply,
            KasaError::Device { code, .. } if is_unsupported(*code) => FailureKind::Unsupported,
            KasaError::Device { .. } => FailureKind::DeviceError,
            KasaError::Outlet {
                source: StateError::NoSuchOutlet { .. },
                ..
            } => FailureKind::NoSuchOutlet,
            KasaError::Outlet { .. } => FailureKind::NoRelay,
            KasaError::Mismatch { .. } => FailureKind::Mismatch,
            KasaError::NoTime { .. } => FailureKind::OutOfTime,
            KasaError::Io { .. } => FailureKind::Io,
            KasaError::Http { .. }
            | KasaError::Klap { .. }
            | KasaError::Aes { .. }
            | KasaError::Tpap { .. } => FailureKind::BadReply,
            KasaError::HttpStatus { .. } => FailureKind::DeviceError,
            KasaError::Auth { .. } => FailureKind::Auth,
            KasaError::Smart { code, .. } if codes::is_unsupported(*code) => {
                FailureKind::Unsupported
            }
            KasaError::Smart { .. } => FailureKind::DeviceError,
            KasaError::Unsupported { .. } => FailureKind::Unsupported,
            KasaError::Rejected { source, .. } => source.kind(),
        }
    }

    /// Whether trying again cannot help: the device has no such relay or
    /// outlet, does not support the request, answers in a shape that cannot
    /// be used, or speaks another protocol. The worker fails such a command
    /// at once instead of retrying it as if the network were flaky.
    pub fn is_permanent(&self) -> bool {
        match self {
            // Refused credentials: devices may lock a client out after
            // repeated failed logins, so never more than once per cycle.
            KasaError::Auth { .. } | KasaError::Unsupported { .. } => true,
            KasaError::Smart { code, .. } => !codes::is_transient(*code),
            KasaError::Refused { klap_hint, .. } => *klap_hint,
            KasaError::Rejected { source, .. } => source.is_permanent(),
            KasaError::WrongReply { repeated, .. } => *repeated,
            KasaError::Device { code, .. } => is_unsupported(*code),
            KasaError::BadReply { .. } | KasaError::Outlet { .. } | KasaError::NoTime { .. } => {
                true
            }
            _ => false,
        }
    }

    /// The error for a SMART device's non-zero `error_code` answering
    /// `method`: a refused login is [`KasaError::Auth`], anything else
    /// [`KasaError::Smart`].
    pub(crate) fn from_code(addr: String, method: &str, code: i64) -> KasaError {
        if is_auth_error(code) {
            KasaError::Auth {
                addr,
                source: AuthDetail::Code {
                    code,
                    name: error_name(code),
                },
            }
        } else {
            KasaError::Smart {
                addr,
                method: method.to_string(),
                code,
            }
        }
    }

    /// Marks this error as a repeat when `earlier` (the previous attempt's,
    /// on a connection since closed) is the same wrong answer to the same
    /// request: then the device, not a stray frame, is answering wrongly.
    pub(crate) fn repeats(&mut self, earlier: &KasaError) {
        if let (
            KasaError::WrongReply {
                sent,
                got,
                repeated,
                ..
            },
            KasaError::WrongReply {
                sent: sent0,
                got: got0,
                ..
            },
        ) = (self, earlier)
        {
            *repeated |= sent == sent0 && got == got0;
        }
    }

    /// Wraps a reply error with the address, lifting device errors to [`KasaError::Device`].
    pub fn from_reply(addr: &str, err: ReplyError) -> KasaError {
        match err {
            ReplyError::Device {
                module,
                method,
                code,
                msg,
            } => KasaError::Device {
                addr: addr.to_string(),
                module,
                method,
                code,
                msg,
            },
            other => KasaError::BadReply {
                addr: addr.to_string(),
                source: other,
            },
        }
    }
}

impl fmt::Display for KasaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KasaError::Resolve { host, port, .. } => write!(
                f,
                "{host}:{port}: cannot resolve host name {host:?} (check the name, or use the plug's IP address)"
            ),
            KasaError::Refused {
                addr,
                klap_hint: true,
                scheme,
            } => write!(
                f,
                "{addr}: connection refused, but the device answers the UDP 20002 probe ({}): \
                 it speaks the newer {} protocol over HTTP (KLAP, AES or TPAP, --protocol auto finds \
                 it; it needs the TP-Link credentials), not the legacy port 9999 protocol. In the \
                 Kasa app, turning on \"Third-Party Compatibility\" reopens port 9999 on some models",
                scheme.as_deref().unwrap_or("unknown scheme"),
                scheme.as_deref().unwrap_or("KLAP")
            ),
            KasaError::Refused { addr, .. } => write!(
                f,
                "{addr}: connection refused (is this a Kasa plug, is the port right, is it powered?)"
            ),
            KasaError::Connect { addr, .. } => write!(
                f,
                "{addr}: cannot connect (check the address, Wi-Fi and that the plug is powered)"
            ),
            KasaError::TimedOut { addr, op, after_ms } => write!(
                f,
                "{addr}: {op} timed out after {after_ms} ms (plug offline, Wi-Fi weak, or wrong address)"
            ),
            KasaError::Closed {
                addr,
                op,
                mid_frame,
            } => {
                if *mid_frame {
                    write!(f, "{addr}: {op}: the plug closed the connection mid-frame")
                } else {
                    write!(
                        f,
                        "{addr}: {op}: the plug closed the connection without answering"
                    )
                }
            }
            KasaError::BadFrame { addr, detail } => {
                write!(f, "{addr}: bad reply frame: {detail} (is this a Kasa plug?)")
            }
            KasaError::Oversize { addr, len, max } => write!(
                f,
                "{addr}: reply announces {len} bytes, over the {max} byte limit (not a Kasa plug?)"
            ),
            KasaError::Device {
                addr,
                module,
                method,
                code,
                msg,
            } => write!(
                f,
                "{addr}: {}",
                device_refused(module, method.as_deref(), *code, msg)
            ),
            KasaError::BadReply { addr, .. } => write!(f, "{addr}: unusable reply"),
            KasaError::WrongReply {
                addr,
                sent,
                got,
                repeated: false,
            } => write!(
                f,
                "{addr}: the reply to {sent} answers {got} (a late or stray reply); \
                 the connection is dropped and the next try starts on a fresh one"
            ),
            KasaError::WrongReply {
                addr, sent, got, ..
            } => write!(
                f,
                "{addr}: the reply to {sent} answers {got}, again on a fresh connection: \
                 the device does not answer this request"
            ),
            KasaError::Outlet { addr, source } => write!(f, "{addr}: {source}"),
            KasaError::Mismatch { addr, want, got } => write!(
                f,
                "{addr}: asked for {} but the plug reads {} (stuck relay, or switched by hand?)",
                on_off(*want),
                on_off(*got)
            ),
            KasaError::NoTime { addr, op } => write!(
                f,
                "{addr}: no time left for {op} (the command's time budget ran out)"
            ),
            KasaError::Io { addr, op, .. } => write!(f, "{addr}: {op} failed"),
            KasaError::Http { addr, op, detail } => write!(
                f,
                "{addr}: {op}: malformed HTTP reply: {detail} (is this a KLAP, AES or TPAP device, and the right port?)"
            ),
            KasaError::HttpStatus { addr, op, status } => write!(
                f,
                "{addr}: {op}: the device answered HTTP {status} ({})",
                match status {
                    404 => "nothing at that path: try another --protocol (legacy, klap, aes, tpap), or check the port",
                    403 | 401 => "the session was refused even after a fresh handshake",
                    _ => "is this a KLAP, AES or TPAP device, and the right port?",
                }
            ),
            KasaError::Auth { addr, .. } => write!(
                f,
                "{addr}: the plug refused the TP-Link credentials (check credentials.username and the password file)"
            ),
            KasaError::Klap { addr, op, detail } => write!(
                f,
                "{addr}: {op}: KLAP session failed: {detail} (a new session is started on the next try)"
            ),
            KasaError::Smart { addr, method, code } => write!(
                f,
                "{addr}: device refused {method}: error_code {code} ({}){}",
                error_name(*code),
                codes::error_advice(*code)
            ),
            KasaError::Unsupported { addr, model, what } => {
                write!(f, "{addr}: this {model} has no {what}")
            }
            KasaError::Aes { addr, op, detail } => write!(
                f,
                "{addr}: {op}: AES session failed: {detail} (a new session is started on the next try)"
            ),
            KasaError::Rejected {
                addr,
                model,
                announced,
                source,
            } => {
                let app = "turn on \"Third-Party Compatibility\" in the Tapo/Kasa app so the plug \
                           falls back to KLAP (after a firmware update, switch it off and on again)";
                match source.as_ref() {
                    KasaError::Auth { .. } => write!(
                        f,
                        "{addr}: {model} announced {announced} and refused the login: check the \
                         TP-Link account (credentials.username and the password file, the account \
                         of the Tapo/Kasa app), or {app}"
                    ),
                    KasaError::Unsupported { .. } => write!(
                        f,
                        "{addr}: {model} announced {announced}, which this build does not speak: {app}"
                    ),
                    _ => write!(
                        f,
                        "{addr}: {model} announced {announced} and rejected the TPAP handshake: {app}"
                    ),
                }
            }
            KasaError::Tpap { addr, op, source } => write!(
                f,
                "{addr}: {op}: TPAP session failed: {source} (a new session is started on the next try)"
            ),
        }
    }
}

impl std::error::Error for KasaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KasaError::Resolve { source, .. }
            | KasaError::Connect { source, .. }
            | KasaError::Io { source, .. } => Some(source),
            KasaError::BadReply { source, .. } => Some(source),
            KasaError::Auth { source, .. } => Some(source),
            KasaError::Tpap { source, .. } => Some(source),
            // A refused login's detail (the device's counts) without
            // repeating the address and the advice.
            KasaError::Rejected { source, .. } => match source.as_ref() {
                KasaError::Auth { source, .. } => Some(source),
                other => Some(other),
            },
            _ => None,
        }
    }
}

/// `-1 module not support` and `-2 member not support`: the device does not
/// have the module or method at all.
fn is_unsupported(code: i64) -> bool {
    code == -1 || code == -2
}
