//! TP-Link account credentials for the newer (KLAP, AES) plugs, the default
//! credentials that plugs never bound to a cloud account accept, and the two
//! KLAP auth hashes derived from them (docs/design.md §7).
//!
//! The password is never printed: `Debug` shows the user name only, and
//! nothing here implements `Display` for the password or the hashes.

use std::fmt;

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// A TP-Link account's e-mail and password (case-sensitive, as typed in the app).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The account's e-mail address.
    pub username: String,
    /// The account's password.
    pub password: String,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Whether both fields are empty (python-kasa's "blank" credentials).
    pub(crate) fn is_blank(&self) -> bool {
        self.username.is_empty() && self.password.is_empty()
    }

    /// The KLAP auth hash of this version.
    pub(crate) fn auth_hash(&self, version: KlapVersion) -> AuthHash {
        match version {
            KlapVersion::V1 => auth_hash_v1(&self.username, &self.password),
            KlapVersion::V2 => auth_hash_v2(&self.username, &self.password),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password, not even its length.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// The KLAP handshake generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KlapVersion {
    /// Legacy-JSON ("IOT") devices such as HS100(UK) hw 4.1: MD5 auth hash,
    /// server hash `sha256(local_seed + auth)`.
    V1,
    /// SMART devices (Tapo, newer Kasa), and IOT devices announcing `lv: 2`:
    /// SHA-1/SHA-256 auth hash, seeds in both handshake hashes.
    V2,
}

impl KlapVersion {
    /// The other version.
    pub(crate) fn other(self) -> KlapVersion {
        match self {
            KlapVersion::V1 => KlapVersion::V2,
            KlapVersion::V2 => KlapVersion::V1,
        }
    }
}

impl fmt::Display for KlapVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KlapVersion::V1 => "KLAP v1",
            KlapVersion::V2 => "KLAP v2",
        })
    }
}

/// An auth hash: 16 bytes (v1, MD5) or 32 bytes (v2, SHA-256).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AuthHash(Vec<u8>);

impl AuthHash {
    /// The raw bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AuthHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash of the password is as good as the password against a plug.
        write!(f, "AuthHash(<{} bytes hidden>)", self.0.len())
    }
}

/// v1: `md5(md5(username) + md5(password))`.
pub(crate) fn auth_hash_v1(username: &str, password: &str) -> AuthHash {
    let mut h = Md5::new();
    h.update(Md5::digest(username.as_bytes()));
    h.update(Md5::digest(password.as_bytes()));
    AuthHash(h.finalize().to_vec())
}

/// v2: `sha256(sha1(username) + sha1(password))`.
pub(crate) fn auth_hash_v2(username: &str, password: &str) -> AuthHash {
    let mut h = Sha256::new();
    h.update(Sha1::digest(username.as_bytes()));
    h.update(Sha1::digest(password.as_bytes()));
    AuthHash(h.finalize().to_vec())
}

/// Which set of credentials a plug accepted in a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// The credentials the user configured.
    Given,
    /// A published default set (plug never bound to a cloud account, or
    /// reset); the name is python-kasa's (`KASA`, `TAPO`...).
    Default(&'static str),
    /// Empty user name and password.
    Blank,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Given => f.write_str("the configured credentials"),
            CredentialSource::Default(name) => {
                write!(f, "the published default {name} credentials")
            }
            CredentialSource::Blank => f.write_str("blank credentials"),
        }
    }
}

/// The devices' published default credentials, base64-encoded as python-kasa
/// lists them (`kasa/credentials.py`), in the order it tries them.
const DEFAULTS_B64: [(&str, &str, &str); 5] = [
    ("KASA", "a2FzYUB0cC1saW5rLm5ldA==", "a2FzYVNldHVw"),
    (
        "KASACAMERA",
        "YWRtaW4=",
        "MjEyMzJmMjk3YTU3YTVhNzQzODk0YTBlNGE4MDFmYzM=",
    ),
    ("TAPO", "dGVzdEB0cC1saW5rLm5ldA==", "dGVzdA=="),
    ("TAPOCAMERA", "YWRtaW4=", "YWRtaW4="),
    ("TAPOCAMERA_LV3", "YWRtaW4=", "VFBMMDc1NTI2NDYwNjAz"),
];

/// The published default credentials, by python-kasa's name (`KASA`, `TAPO`...).
pub fn default_credentials() -> Vec<(&'static str, Credentials)> {
    DEFAULTS_B64
        .iter()
        .map(|(name, u, p)| {
            let text = |b: &str| {
                // Constants of this file: a decoding failure is a typo caught by the tests.
                String::from_utf8(base64_decode(b).unwrap_or_default()).unwrap_or_default()
            };
            (*name, Credentials::new(text(u), text(p)))
        })
        .collect()
}

/// The default credentials a device of this family accepts out of the box:
/// `KASA` for Kasa-branded devices, `TAPO` for Tapo ones.
pub fn default_for(name: &str) -> Credentials {
    default_credentials()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .unwrap_or_default()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (SMART nicknames, the default credentials).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on any other character.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing 6-bit group cannot come from whole bytes.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Vectors computed with python-kasa 0.12.0's KlapTransport /
    // KlapTransportV2.generate_auth_hash at development time.
    #[test]
    fn auth_hashes_match_python_kasa() {
        let c = Credentials::new("user@example.com", "pa55word");
        assert_eq!(
            hex(c.auth_hash(KlapVersion::V1).as_bytes()),
            "fd65c6acd2fac33682b159ba3d03b4e4"
        );
        assert_eq!(
            hex(c.auth_hash(KlapVersion::V2).as_bytes()),
            "b53d0fa7e3aa9607f1fbf34b3fa0856ae999e02d394e6fc0a31780f54c2c6838"
        );
        let blank = Credentials::default();
        assert!(blank.is_blank());
        assert_eq!(
            hex(blank.auth_hash(KlapVersion::V1).as_bytes()),
            "5873dd45edd01f09c1ef2e7819369e8e"
        );
        assert_eq!(
            hex(blank.auth_hash(KlapVersion::V2).as_bytes()),
            "b8628ab91c74f531603f6d5b45e730e54c123a7247b8978272c03f1e13560cea"
        );
    }

    #[test]
    fn default_credentials_decode_and_hash() {
        let all = default_credentials();
        let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["KASA", "KASACAMERA", "TAPO", "TAPOCAMERA", "TAPOCAMERA_LV3"]
        );
        let kasa = default_for("KASA");
        assert_eq!(kasa.username, "kasa@tp-link.net");
        assert_eq!(
            hex(kasa.auth_hash(KlapVersion::V1).as_bytes()),
            "74b751bdd208bc155ae2a6d4167cc44d"
        );
        let tapo = default_for("TAPO");
        assert_eq!(tapo.username, "test@tp-link.net");
        assert_eq!(
            hex(tapo.auth_hash(KlapVersion::V2).as_bytes()),
            "7d5ae9ac18f5bb37843a4577867dd4348d8dff26c4b261ebff1b74d88adc063b"
        );
        assert!(all.iter().all(|(_, c)| !c.username.is_empty()));
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::new("me@example.com", "hunter2-secret");
        let shown = format!("{c:?} {:?}", c.auth_hash(KlapVersion::V2));
        assert!(shown.contains("me@example.com"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn base64_round_trips_and_rejects_junk() {
        for s in ["", "a", "ab", "abc", "abcd", "#MASKED_NAME#", "Heizung ü"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(base64_encode(b"#MASKED_NAME#"), "I01BU0tFRF9OQU1FIw==");
        assert_eq!(base64_decode("a2FzYVNldHVw").unwrap(), b"kasaSetup");
        assert_eq!(base64_decode("not base64!"), None);
        assert_eq!(base64_decode("QUJDR"), None);
    }
}
