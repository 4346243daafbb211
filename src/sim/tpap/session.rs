//! What the simulated device's TPAP server keeps between requests: its
//! record of the account ([`Account`], derived once at start the way the
//! device derives it), the cipher flavour of the model ([`Flavour`]), a
//! login under way and the failed-login count ([`Tpap`]), and its sessions
//! ([`Session`], in the table `klap::session::Sessions`).
//!
//! It holds data only, so the plug's state (`sim/state.rs`) can own it
//! while the server (`tpap/mod.rs`) uses that state.

use serde_json::{json, Value};

use crate::kasa::credentials::Credentials;
use crate::kasa::transport::tpap::crypto::{derive_secret, pre_hash, verifier, Sealer, SHARE_LEN};
use crate::sim::klap::session::random16;

/// PBKDF2 iterations the simulated device asks for (real firmware's count
/// is not published; this keeps tests fast).
pub(super) const ITERATIONS: u32 = 1000;

/// How a model pre-hashes the password and which cipher it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// md5-crypt (`passwd_id` 1) and AES-128-CCM.
    Md5CryptAes,
    /// sha256-crypt (`passwd_id` 5) and ChaCha20-Poly1305.
    Sha256CryptChaCha,
}

/// What the device derived from the account it holds.
pub(crate) struct Account {
    pub(super) extra_crypt: Value,
    pub(super) salt: [u8; 16],
    pub(super) w0: p256::Scalar,
    pub(super) l: p256::ProjectivePoint,
}

impl Account {
    /// The device's record of `creds` (salts drawn now).
    pub(crate) fn new(flavour: Flavour, creds: &Credentials, mac: &str) -> Account {
        let crypt_salt: String = random16()
            .iter()
            .map(|b| {
                char::from(
                    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        [usize::from(*b & 63)],
                )
            })
            .collect();
        let extra_crypt = match flavour {
            Flavour::Md5CryptAes => json!({"type": "password_shadow", "params": {
                "passwd_id": 1, "passwd_prefix": format!("$1${}$", &crypt_salt[..8])}}),
            Flavour::Sha256CryptChaCha => json!({"type": "password_shadow", "params": {
                "passwd_id": 5, "passwd_prefix": format!("$5${crypt_salt}"), "passwd_rounds": 5000}}),
        };
        // The device's own record: its pre-hash is the client's.
        let credential =
            pre_hash(Some(&extra_crypt), &creds.username, &creds.password, mac).unwrap_or_default();
        let salt = random16();
        let secret = derive_secret(credential.as_bytes(), &salt, ITERATIONS);
        Account {
            extra_crypt,
            salt,
            w0: secret.w0,
            l: verifier(&secret.w1),
        }
    }
}

/// A registration waiting for its `pake_share`.
pub(super) struct Pending {
    pub(super) user_random: Vec<u8>,
    pub(super) dev_random: [u8; 32],
    pub(super) y: p256::Scalar,
    pub(super) dev_share: [u8; SHARE_LEN],
    pub(super) bad_auth: bool,
}

/// One established session.
pub(crate) struct Session {
    pub(super) sealer: Sealer,
    /// The lowest request number still acceptable.
    pub(super) next_seq: u32,
    pub(super) requests: u32,
}

/// The device's TPAP state besides its sessions.
#[derive(Default)]
pub(crate) struct Tpap {
    pub(super) pending: Option<Pending>,
    /// Failed logins since the last good one.
    pub(crate) failed: i64,
    /// Sessions ended by the `expire` fault.
    pub(super) expirations: u64,
}
