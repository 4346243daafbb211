//! The transport seam: how one JSON request reaches a plug and its JSON reply
//! comes back, whatever the wire looks like.
//!
//! TP-Link devices speak two kinds of JSON (the legacy "IOT" requests of
//! docs/design.md §7.2 and the "SMART" requests of §7.5) over four transports:
//!
//! | transport | wire | used by |
//! |---|---|---|
//! | XOR (`xor`) | TCP 9999, 4-byte length + autokey XOR | legacy Kasa plugs |
//! | KLAP (`klap`) | HTTP port 80, AES-128-CBC, seeds + auth hash | newer Kasa, Tapo |
//! | AES (`aes`) | HTTP port 80, RSA handshake + `securePassthrough` | older Tapo firmware |
//! | TPAP (`tpap`) | HTTP port 80, SPAKE2+ on P-256 + AES-CCM/ChaCha20-Poly1305 | firmware 1.4.x |
//!
//! A [`Transport`] moves one request and its reply, keeping whatever session
//! it needs (a kept-open socket, a KLAP session with its sequence number, an
//! AES token) and re-establishing it when it expires. It knows nothing about
//! relays: the protocol layer above it ([`super::device`]) does.
//!
//! **Every call is bounded by its deadline**: connecting, a handshake, the
//! write, the read and any reconnect after a stale kept-open socket all fit
//! before `deadline`, so one request never takes longer than the timeout the
//! caller gave it.

pub mod aes;
pub mod http;
pub mod klap;
pub mod net;
pub mod tpap;
pub mod xor;

use std::fmt;
use std::str::FromStr;
use std::time::Instant;

use serde_json::Value;

use crate::kasa::error::KasaError;

/// Moves one JSON request to a device and brings its JSON reply back.
pub trait Transport: Send {
    /// `host:port`, as named in every error.
    fn address(&self) -> &str;

    /// Sends `request` and returns the decoded reply, all before `deadline`.
    /// Error codes inside the reply are not checked here (the protocol layer
    /// does), but a session-level refusal (wrong credentials, an expired
    /// session that cannot be renewed) is an error.
    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError>;

    /// Drops the connection and any session state that cannot be trusted
    /// after a failure; the next request starts afresh.
    fn close(&mut self);
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn address(&self) -> &str {
        (**self).address()
    }
    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError> {
        (**self).request(request, deadline)
    }
    fn close(&mut self) {
        (**self).close()
    }
}

/// Which transport reaches a plug (config `protocol`, CLI `--protocol`: the
/// names `auto`, `legacy`, `klap`, `aes` and `tpap` are the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TransportKind {
    /// Learned at start: the UDP 20002 probe, then TCP 9999, then KLAP on 80.
    #[default]
    Auto,
    /// The legacy XOR protocol on TCP 9999.
    Legacy,
    /// KLAP over HTTP (port 80): SMART JSON (v2) or the legacy JSON (v1).
    Klap,
    /// The AES "securePassthrough" transport over HTTP (port 80).
    Aes,
    /// TPAP over HTTP (port 80): firmware 1.4.x of Tapo and Kasa plugs.
    Tpap,
}

impl TransportKind {
    /// The name in the config and on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransportKind::Auto => "auto",
            TransportKind::Legacy => "legacy",
            TransportKind::Klap => "klap",
            TransportKind::Aes => "aes",
            TransportKind::Tpap => "tpap",
        }
    }

    /// The port a plug listens on for this protocol when none is given.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            TransportKind::Auto | TransportKind::Legacy => 9999,
            TransportKind::Klap | TransportKind::Aes | TransportKind::Tpap => 80,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<TransportKind, String> {
        match s {
            "auto" => Ok(TransportKind::Auto),
            "legacy" => Ok(TransportKind::Legacy),
            "klap" => Ok(TransportKind::Klap),
            "aes" => Ok(TransportKind::Aes),
            "tpap" => Ok(TransportKind::Tpap),
            other => Err(format!(
                "{other:?} is not a protocol (auto, legacy, klap, aes or tpap)"
            )),
        }
    }
}

/// A short name for a request in messages: the SMART method
/// (`control_child(set_device_info)`, `multipleRequest(a+b)`) or the legacy
/// `module.method`.
pub fn describe(req: &Value) -> String {
    if let Some(m) = req.get("method").and_then(Value::as_str) {
        let params = req.get("params");
        return match m {
            "control_child" => {
                let inner = params
                    .and_then(|p| p.pointer("/requestData"))
                    .map(describe)
                    .unwrap_or_default();
                format!("control_child({inner})")
            }
            "multipleRequest" => {
                let names: Vec<String> = params
                    .and_then(|p| p.get("requests"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(describe).collect())
                    .unwrap_or_default();
                format!("multipleRequest({})", names.join("+"))
            }
            other => other.to_string(),
        };
    }
    let Some(obj) = req.as_object() else {
        return "request".into();
    };
    let names: Vec<String> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "context")
        .flat_map(|(module, methods)| match methods.as_object() {
            Some(m) => m.keys().map(|k| format!("{module}.{k}")).collect(),
            None => vec![module.clone()],
        })
        .collect();
    if names.is_empty() {
        "request".into()
    } else {
        names.join("+")
    }
}

/// The name of `request` for messages and its JSON bytes, as the HTTP
/// transports send them; an unencodable request is named against `addr`.
pub(crate) fn encode_request(addr: &str, request: &Value) -> Result<(String, Vec<u8>), KasaError> {
    let op = describe(request);
    let body = serde_json::to_vec(request).map_err(|e| KasaError::BadFrame {
        addr: addr.to_string(),
        detail: format!("cannot encode {op}: {e}"),
    })?;
    Ok((op, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_requests() {
        use serde_json::json;
        assert_eq!(
            describe(&json!({"method": "get_device_info"})),
            "get_device_info"
        );
        assert_eq!(
            describe(
                &json!({"method": "control_child", "params": {"device_id": "x",
                "requestData": {"method": "set_device_info"}}})
            ),
            "control_child(set_device_info)"
        );
        assert_eq!(
            describe(
                &json!({"method": "multipleRequest", "params": {"requests": [
                {"method": "a"}, {"method": "b"}]}})
            ),
            "multipleRequest(a+b)"
        );
        assert_eq!(
            describe(&json!({"system": {"get_sysinfo": {}}, "context": {}})),
            "system.get_sysinfo"
        );
        assert_eq!(describe(&json!(5)), "request");
    }
}
