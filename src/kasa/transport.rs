//! The transport seam: how one JSON request reaches a plug and its JSON reply
//! comes back, whatever the wire looks like.
//!
//! TP-Link devices speak two kinds of JSON (the legacy "IOT" requests of
//! DESIGN §3 and the "SMART" requests of §3b) over four transports:
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

use std::time::Instant;

use serde_json::Value;

use super::error::KasaError;

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
