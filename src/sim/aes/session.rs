//! What the simulated device's AES server keeps between requests: one
//! [`Session`] per `handshake`, in the table `klap::session::Sessions`.
//!
//! It holds data only, so the plug's state (`sim/state.rs`) can own it
//! while the server (`aes/mod.rs`) uses that state.

use crate::kasa::transport::aes::AesCipher;

/// One AES session, from `handshake` on.
pub(crate) struct Session {
    pub(super) cipher: AesCipher,
    pub(super) token: Option<String>,
    /// A failed login spoils the session (devices answer 9999 afterwards).
    pub(super) spoiled: bool,
    pub(super) requests: u32,
}
