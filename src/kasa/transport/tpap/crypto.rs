//! TPAP's cryptography as pure functions, shared by the client transport and
//! the simulated device: the password pre-hash the device names, the SPAKE2+
//! exchange on P-256, the key schedule, and the sealing of requests and
//! replies. No I/O, no clock, and no randomness except what callers pass in,
//! so every step is checked against vectors recorded from plugp100 6.0.2
//! (`.ci/tpap_vectors.py`).

use std::fmt;

use aes::{Aes128, Aes256};
use ccm::aead::{AeadInOut, KeyInit};
use ccm::consts::{U12, U16};
use ccm::Ccm;
use chacha20poly1305::ChaCha20Poly1305;
use cmac::{Cmac, Mac as _};
use hkdf::Hkdf;
use hmac::Hmac;
use md5::Md5;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::{FromSec1Point, ToSec1Point};
use p256::elliptic_curve::{Field as _, Group as _};
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Bytes of the authentication tag on every sealed body.
pub const TAG_LEN: usize = 16;

/// Bytes of the sequence number in front of every sealed body.
pub const SEQ_LEN: usize = 4;

/// An uncompressed P-256 point: `04 || x || y`.
pub const SHARE_LEN: usize = 65;

/// The largest sealed body accepted (what the HTTP layer lets through).
pub const MAX_SEALED: usize = 256 * 1024;

/// RFC 9383's M and N for P-256 (SEC1 compressed), the points that blind
/// the two shares; plugp100 uses them for suites 1, 2, 8 and 9.
const M_P256: [u8; 33] =
    hex33("02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f");
const N_P256: [u8; 33] =
    hex33("03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49");

/// The tag hashed with both randoms into the transcript's context.
const CONTEXT_TAG: &[u8] = b"PAKE V1";

/// Seed of the passcode of a device never bound to an account (pake type 0).
const DEFAULT_PASSCODE_SEED: &[u8] = b"GqY5o136oa4i6VprTlMW2DpVXxmfW8";

const fn hex33(s: &str) -> [u8; 33] {
    let b = s.as_bytes();
    let mut out = [0u8; 33];
    let mut i = 0;
    while i < 33 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lowercase hex digit"),
    }
}

/// Why a TPAP step could not go on. Each says what was wrong in the
/// device's answer (or in what it asked for), so the log line is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpapError {
    /// A key the step needs is missing or has the wrong type.
    Missing(&'static str),
    /// A field is present but unusable (not base64, out of range...).
    BadField {
        /// The JSON key.
        field: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The device chose a cipher suite this build does not speak (3, 4 and
    /// 5 are P-384 and P-521: cameras and hubs).
    Suite(i64),
    /// The device chose a session cipher this build does not speak.
    Cipher(String),
    /// The device asks for a password pre-hash this build does not know.
    PreHash(String),
    /// The device's share is not a point of P-256 (or is the identity).
    BadShare,
    /// The device's confirmation does not match: it holds another password,
    /// or the exchange was tampered with.
    Confirmation,
    /// A sealed body shorter than its sequence number and tag.
    TooShort(usize),
    /// A sealed body over [`MAX_SEALED`].
    Oversize(usize),
    /// A reply whose sequence number is below the request's (a replayed or
    /// stale reply).
    SeqBackwards {
        /// The reply's number.
        got: u32,
        /// The request's number.
        want: u32,
    },
    /// A request whose sequence number was already used (device side).
    Replayed {
        /// The request's number.
        got: u32,
        /// The lowest number still acceptable.
        next: u32,
    },
    /// The authentication tag does not match: corrupted, forged, or sealed
    /// under another session's key.
    BadTag,
    /// The sequence numbers of this session are used up.
    SeqExhausted,
}

impl fmt::Display for TpapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpapError::Missing(k) => write!(f, "the answer has no usable {k:?}"),
            TpapError::BadField { field, detail } => write!(f, "{field:?} is unusable: {detail}"),
            TpapError::Suite(s) => write!(
                f,
                "the device chose cipher suite {s}; this build speaks suites 1, 2, 8 and 9 (P-256)"
            ),
            TpapError::Cipher(c) => write!(
                f,
                "the device chose session cipher {c:?}; this build speaks aes_128_ccm, \
                 aes_256_ccm and chacha20_poly1305"
            ),
            TpapError::PreHash(t) => write!(
                f,
                "the device asks for password pre-hash {t}, which this build does not know"
            ),
            TpapError::BadShare => f.write_str("the device's share is not a point of P-256"),
            TpapError::Confirmation => f.write_str(
                "the device's confirmation does not match (it holds another password, \
                 or the exchange was altered)",
            ),
            TpapError::TooShort(n) => write!(
                f,
                "a sealed body of {n} bytes is shorter than its sequence number and tag ({})",
                SEQ_LEN + TAG_LEN
            ),
            TpapError::Oversize(n) => {
                write!(f, "a sealed body of {n} bytes is over the {MAX_SEALED}-byte limit")
            }
            TpapError::SeqBackwards { got, want } => write!(
                f,
                "the reply carries sequence number {got}, below the request's {want} \
                 (a replayed or stale reply)"
            ),
            TpapError::Replayed { got, next } => write!(
                f,
                "request sequence number {got} was already used (next acceptable: {next})"
            ),
            TpapError::BadTag => f.write_str(
                "the authentication tag does not match (corrupted, or sealed under another session)",
            ),
            TpapError::SeqExhausted => f.write_str("the session's sequence numbers are used up"),
        }
    }
}

impl std::error::Error for TpapError {}

fn bad(field: &'static str, detail: impl Into<String>) -> TpapError {
    TpapError::BadField {
        field,
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------- pre-hash

/// The `./0-9A-Za-z` alphabet of crypt(3) strings.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Appends `n` characters encoding the 24-bit group `b2 b1 b0` (crypt's order).
fn crypt64_group(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(char::from(CRYPT64[(w & 0x3f) as usize]));
        w >>= 6;
    }
}

/// md5-crypt (`$1$salt$hash`, FreeBSD's algorithm), as passlib and glibc
/// produce it. The salt is cut to 8 characters.
pub fn md5_crypt(password: &[u8], salt: &str) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..password.len().min(1)]);
        }
        i >>= 1;
    }
    let mut d = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(d);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(d);
        } else {
            c.update(password);
        }
        d = c.finalize();
    }
    let mut out = String::from("$1$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        crypt64_group(&mut out, d[a], d[b], d[c], 4);
    }
    crypt64_group(&mut out, 0, 0, d[11], 2);
    out
}

/// sha256-crypt (`$5$[rounds=N$]salt$hash`) as passlib writes it: the salt
/// cut to 16 characters, `rounds=` left out when it is the default 5000.
pub fn sha256_crypt(password: &[u8], salt: &str, rounds: u32) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(16)];
    let rounds = rounds.clamp(sha_crypt::Params::ROUNDS_MIN, sha_crypt::Params::ROUNDS_MAX);
    // Within the bounds just applied, `new` cannot fail.
    let params = sha_crypt::Params::new(rounds).unwrap_or(sha_crypt::Params::RECOMMENDED);
    let d = sha_crypt::sha256_crypt(password, salt, params);
    let mut out = String::from("$5$");
    if rounds != sha_crypt::Params::RECOMMENDED_ROUNDS {
        out.push_str(&format!("rounds={rounds}$"));
    }
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    // crypt's byte order for SHA-256 (the output's 10 groups and the tail).
    let mut i = 0usize;
    for _ in 0..10 {
        let (a, b, c) = (i, (i + 10) % 30, (i + 20) % 30);
        crypt64_group(&mut out, d[a], d[b], d[c], 4);
        i = (i + 21) % 30;
    }
    crypt64_group(&mut out, 0, d[31], d[30], 3);
    out
}

/// plugp100's `_authkey_mask`: each character pair of the password and the
/// temporary key (0xBB past the shorter's end) picks a dictionary character.
fn authkey_mask(password: &str, tmpkey: &str, dictionary: &str) -> String {
    let (p, t): (Vec<char>, Vec<char>) = (password.chars().collect(), tmpkey.chars().collect());
    let d: Vec<char> = dictionary.chars().collect();
    (0..p.len().max(t.len()))
        .map(|i| {
            let l = p.get(i).map_or(0xBB, |c| u32::from(*c));
            let r = t.get(i).map_or(0xBB, |c| u32::from(*c));
            d[((l ^ r) as usize) % d.len()]
        })
        .collect()
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The passcode of a device never bound to an account (`pake` type 0):
/// HKDF-SHA256 of a fixed seed and the MAC's two halves swapped, in upper
/// hex. plugp100 tries it first when the device lists type 0.
pub fn default_passcode(mac: &str) -> Result<String, TpapError> {
    let m = parse_mac(mac).ok_or_else(|| bad("mac", format!("{mac:?} is not a MAC address")))?;
    let mut ikm = DEFAULT_PASSCODE_SEED.to_vec();
    ikm.extend_from_slice(&m[3..6]);
    ikm.extend_from_slice(&m[0..3]);
    let mut okm = [0u8; 32];
    hkdf_sha256(
        b"tp-kdf-salt-default-passcode",
        &ikm,
        b"tp-kdf-info-default-passcode",
        &mut okm,
    );
    Ok(hex_lower(&okm).to_ascii_uppercase())
}

fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let hex: String = mac.chars().filter(|c| *c != ':' && *c != '-').collect();
    if hex.len() != 12 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Passwords longer than this are not pre-hashed (plugp100's md5-crypt bound).
const MAX_PASSWORD: usize = 30_000;

/// sha256-crypt rounds above this are refused: each costs two SHA-256
/// blocks, and a device asking for crypt's maximum (999 999 999) would hold
/// the thread for minutes. passlib's default, 535 000, is below it.
pub const MAX_CRYPT_ROUNDS: u32 = 1_000_000;

/// The credential string the PAKE secret is derived from, as the device's
/// `extra_crypt` asks for it (plugp100's `_build_credentials`):
///
/// * no `extra_crypt`: `username/password` (just the password without a user name);
/// * `password_shadow` with `passwd_id` 1: md5-crypt with the prefix's salt;
///   2: SHA-1 hex of the password; 3: SHA-1 hex of `md5hex(username) + "_" +
///   MAC`; 5: sha256-crypt with the prefix's salt and rounds (`passwd_rounds`
///   wins; none at all means passlib's default of 535000, as plugp100 does);
/// * `password_authkey`: the password masked with `authkey_tmpkey` through
///   `authkey_dictionary`;
/// * `password_sha_with_salt`: SHA-256 hex of `admin` (`sha_name` 0, else
///   `user`), the base64-decoded `sha_salt` and the password.
///
/// Anything else is [`TpapError::PreHash`]: guessing would spend one of the
/// few failed logins a device allows.
pub fn pre_hash(
    extra_crypt: Option<&Value>,
    username: &str,
    password: &str,
    mac: &str,
) -> Result<String, TpapError> {
    let plain = || {
        if username.is_empty() {
            password.to_string()
        } else {
            format!("{username}/{password}")
        }
    };
    let Some(ec) = extra_crypt.filter(|v| v.as_object().is_some_and(|o| !o.is_empty())) else {
        return Ok(plain());
    };
    let kind = ec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let params = ec.get("params");
    let param = |k: &str| params.and_then(|p| p.get(k));
    let text = |k: &str| param(k).and_then(Value::as_str).unwrap_or("");
    match kind.as_str() {
        "password_shadow" => {}
        "password_authkey"
            if !text("authkey_tmpkey").is_empty() && !text("authkey_dictionary").is_empty() =>
        {
            return Ok(authkey_mask(
                password,
                text("authkey_tmpkey"),
                text("authkey_dictionary"),
            ));
        }
        "password_sha_with_salt" => {
            let sha_name = param("sha_name")
                .and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                })
                .ok_or_else(|| bad("sha_name", "not a number"))?;
            let salt = crate::kasa::credentials::base64_decode(text("sha_salt"))
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad("sha_salt", "not base64 of UTF-8 text"))?;
            let hint = if sha_name == 0 { "admin" } else { "user" };
            return Ok(hex_lower(&Sha256::digest(
                format!("{hint}{salt}{password}").as_bytes(),
            )));
        }
        _ => return Err(TpapError::PreHash(format!("{kind:?}"))),
    }
    let id = match param("passwd_id") {
        None => 0,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| bad("passwd_id", format!("{v} is not a number")))?,
    };
    let prefix = param("passwd_prefix").and_then(Value::as_str).unwrap_or("");
    match id {
        1 if prefix.starts_with("$1$") && password.len() <= MAX_PASSWORD => {
            let spec = &prefix[3..];
            let salt = spec.split('$').next().unwrap_or("");
            Ok(md5_crypt(password.as_bytes(), salt))
        }
        1 => Err(bad(
            "passwd_prefix",
            format!("{prefix:?} is not an md5-crypt salt"),
        )),
        2 => Ok(hex_lower(&Sha1::digest(password.as_bytes()))),
        3 => match parse_mac(mac) {
            Some(m) if !username.is_empty() => {
                let mac_up = m
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect::<Vec<_>>()
                    .join(":");
                let inner = format!("{}_{mac_up}", hex_lower(&Md5::digest(username.as_bytes())));
                Ok(hex_lower(&Sha1::digest(inner.as_bytes())))
            }
            _ => Ok(password.to_string()),
        },
        5 if !prefix.is_empty() => {
            let spec = prefix.strip_prefix("$5$").unwrap_or(prefix);
            let (mut rounds, salt) = match spec.strip_prefix("rounds=") {
                Some(rest) => {
                    let (r, s) = rest.split_once('$').unwrap_or((rest, ""));
                    (Some(r.parse::<u32>().unwrap_or(5000)), s)
                }
                None => (None, spec.split('$').next().unwrap_or("")),
            };
            if let Some(r) = param("passwd_rounds").filter(|v| !v.is_null()) {
                rounds = Some(
                    r.as_u64()
                        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
                        .map_or(5000, |n| n.min(u64::from(u32::MAX)) as u32),
                );
            }
            // passlib's own default when nothing names the rounds.
            let rounds = rounds.unwrap_or(535_000);
            if rounds > MAX_CRYPT_ROUNDS {
                return Err(bad(
                    "passwd_rounds",
                    format!("{rounds} sha256-crypt rounds is over the {MAX_CRYPT_ROUNDS} limit"),
                ));
            }
            Ok(sha256_crypt(password.as_bytes(), salt, rounds))
        }
        5 => Err(bad("passwd_prefix", "empty (sha256-crypt needs a salt)")),
        other => Err(TpapError::PreHash(format!(
            "password_shadow passwd_id {other}"
        ))),
    }
}

// ------------------------------------------------------------------- suites

/// A cipher suite of the exchange (the device picks it in `pake_register`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// The number on the wire.
    pub id: u8,
    /// SHA-512 for the transcript, HKDF and HMAC (else SHA-256).
    pub sha512: bool,
    /// AES-CMAC confirmations with 16-byte keys (else HMAC with 32-byte keys).
    pub cmac: bool,
}

impl Suite {
    /// The suite with this number, if this build speaks it.
    pub fn from_id(id: i64) -> Result<Suite, TpapError> {
        match id {
            1 => Ok(Suite {
                id: 1,
                sha512: false,
                cmac: false,
            }),
            2 => Ok(Suite {
                id: 2,
                sha512: true,
                cmac: false,
            }),
            8 => Ok(Suite {
                id: 8,
                sha512: false,
                cmac: true,
            }),
            9 => Ok(Suite {
                id: 9,
                sha512: true,
                cmac: true,
            }),
            other => Err(TpapError::Suite(other)),
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        if self.sha512 {
            let mut h = Sha512::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        } else {
            let mut h = Sha256::new();
            parts.iter().for_each(|p| h.update(p));
            h.finalize().to_vec()
        }
    }

    fn hkdf(self, salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) {
        if self.sha512 {
            // The lengths asked for here are at most 64 bytes: never too long.
            let _ = Hkdf::<Sha512>::new(Some(salt), ikm).expand(info, okm);
        } else {
            hkdf_sha256(salt, ikm, info, okm);
        }
    }

    fn digest_len(self) -> usize {
        if self.sha512 {
            64
        } else {
            32
        }
    }

    fn mac_len(self) -> usize {
        if self.cmac {
            16
        } else {
            32
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        if self.cmac {
            // mac_len() is 16: an AES-128 key.
            let mut m = <Cmac<Aes128> as KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("CMAC key of {} bytes", key.len()));
            m.update(data);
            m.finalize().into_bytes().to_vec()
        } else if self.sha512 {
            let mut m = <Hmac<Sha512> as hmac::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            hmac::Mac::update(&mut m, data);
            hmac::Mac::finalize(m).into_bytes().to_vec()
        } else {
            let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            hmac::Mac::update(&mut m, data);
            hmac::Mac::finalize(m).into_bytes().to_vec()
        }
    }
}

fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], okm: &mut [u8]) {
    // Every length asked for here is far below HKDF's 8160-byte limit.
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, okm);
}

/// The cipher that seals requests and replies once the session is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCipher {
    /// AES-128-CCM, 12-byte nonce, 16-byte tag (what plugp100 offers).
    Aes128Ccm,
    /// AES-256-CCM, same layout.
    Aes256Ccm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl SessionCipher {
    /// Parses the device's `encryption` (case and `-`/`_` do not matter).
    pub fn parse(name: &str) -> Result<SessionCipher, TpapError> {
        match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "aes_128_ccm" => Ok(SessionCipher::Aes128Ccm),
            "aes_256_ccm" => Ok(SessionCipher::Aes256Ccm),
            "chacha20_poly1305" => Ok(SessionCipher::ChaCha20Poly1305),
            _ => Err(TpapError::Cipher(name.to_string())),
        }
    }

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SessionCipher::Aes128Ccm => "aes_128_ccm",
            SessionCipher::Aes256Ccm => "aes_256_ccm",
            SessionCipher::ChaCha20Poly1305 => "chacha20_poly1305",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SessionCipher::Aes128Ccm => "aes128",
            SessionCipher::Aes256Ccm => "aes256",
            SessionCipher::ChaCha20Poly1305 => "chacha20",
        }
    }

    fn key_len(self) -> usize {
        match self {
            SessionCipher::Aes128Ccm => 16,
            _ => 32,
        }
    }
}

// --------------------------------------------------------------------- PAKE

/// The two halves of the PAKE secret, each reduced mod the group order.
#[derive(Clone)]
pub struct Secret {
    /// Blinds the shares; known to both sides.
    pub w0: Scalar,
    /// The prover's half; the device keeps only `w1·G`.
    pub w1: Scalar,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// 32 bytes as a field-sized array.
fn field_bytes(b: &[u8]) -> FieldBytes {
    let mut out = FieldBytes::default();
    out.copy_from_slice(b);
    out
}

/// Reduces a 40-byte big-endian number mod n: `hi·2^256 + lo`.
fn reduce40(b: &[u8]) -> Scalar {
    let (hi, lo) = b.split_at(b.len() - 32);
    let lo = <Scalar as Reduce<FieldBytes>>::reduce(&field_bytes(lo));
    let mut hi8 = [0u8; 8];
    hi8[8 - hi.len()..].copy_from_slice(hi);
    // 2^256 mod n = (2^256 - 1 mod n) + 1.
    let two256 = <Scalar as Reduce<U256>>::reduce(&U256::MAX) + Scalar::ONE;
    Scalar::from(u64::from_be_bytes(hi8)) * two256 + lo
}

/// PBKDF2-HMAC-SHA256 of the credential string: 80 bytes, split in two
/// 40-byte halves, each reduced mod n.
pub fn derive_secret(credential: &[u8], salt: &[u8], iterations: u32) -> Secret {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(credential, salt, iterations, &mut out);
    Secret {
        w0: reduce40(&out[..40]),
        w1: reduce40(&out[40..]),
    }
}

fn point(compressed: &[u8]) -> ProjectivePoint {
    AffinePoint::from_sec1_bytes(compressed)
        .map(ProjectivePoint::from)
        .unwrap_or_else(|_| unreachable!("RFC 9383's M and N are points of P-256"))
}

fn m_point() -> ProjectivePoint {
    point(&M_P256)
}

fn n_point() -> ProjectivePoint {
    point(&N_P256)
}

/// `04 || x || y`; the identity never reaches here (checked on input, and
/// a random nonzero scalar times a generator is not the identity).
pub fn encode_point(p: &ProjectivePoint) -> [u8; SHARE_LEN] {
    let mut out = [0u8; SHARE_LEN];
    let enc = p.to_affine().to_sec1_point(false);
    let b = enc.as_bytes();
    if b.len() == SHARE_LEN {
        out.copy_from_slice(b);
    }
    out
}

/// Decodes a peer's share (compressed or uncompressed SEC1), refusing the identity.
pub fn decode_share(b: &[u8]) -> Result<ProjectivePoint, TpapError> {
    let p = AffinePoint::from_sec1_bytes(b).map_err(|_| TpapError::BadShare)?;
    let p = ProjectivePoint::from(p);
    if bool::from(p.is_identity()) {
        return Err(TpapError::BadShare);
    }
    Ok(p)
}

/// A scalar in [1, n) from 32 random bytes (`None`: draw again; that
/// happens with probability about 2^-224).
pub fn scalar_from_random(bytes: &[u8; 32]) -> Option<Scalar> {
    let s = <Scalar as Reduce<FieldBytes>>::reduce(&field_bytes(bytes));
    (!bool::from(s.is_zero())).then_some(s)
}

/// w0 as plugp100 puts it in the transcript: the minimal big-endian bytes,
/// with a zero byte in front only when the length is odd and the top bit
/// is set (a quirk kept for compatibility).
pub fn encode_w(w: &Scalar) -> Vec<u8> {
    let full = w.to_bytes();
    let first = full.iter().position(|b| *b != 0).unwrap_or(full.len() - 1);
    let min = &full[first..];
    if min.len() % 2 == 1 && min[0] & 0x80 != 0 {
        let mut v = vec![0u8];
        v.extend_from_slice(min);
        v
    } else {
        min.to_vec()
    }
}

/// What the exchange yields on both sides.
#[derive(Clone)]
pub struct Keys {
    /// The client's confirmation (sent in `pake_share`).
    pub user_confirm: Vec<u8>,
    /// The device's confirmation (its answer to `pake_share`).
    pub dev_confirm: Vec<u8>,
    /// The secret the session key and nonce come from.
    pub shared_key: Vec<u8>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The public parts of one exchange, in transcript order.
pub struct Exchange<'a> {
    /// The suite the device chose.
    pub suite: Suite,
    /// The client's 32 random bytes.
    pub user_random: &'a [u8],
    /// The device's random bytes.
    pub dev_random: &'a [u8],
    /// The client's share `x·G + w0·M`.
    pub user_share: &'a [u8; SHARE_LEN],
    /// The device's share `y·G + w0·N`.
    pub dev_share: &'a [u8; SHARE_LEN],
}

fn len8le(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u64).to_le_bytes());
    out.extend_from_slice(part);
}

/// The transcript hash, then HKDF (zero salt) with `ConfirmationKeys` and
/// `SharedKey`, then the two confirmations: the client's is the MAC of the
/// device's share under the first key, the device's the MAC of the client's
/// share under the second.
fn schedule(ex: &Exchange<'_>, z: &ProjectivePoint, v: &ProjectivePoint, w0: &Scalar) -> Keys {
    let s = ex.suite;
    let context = s.hash(&[CONTEXT_TAG, ex.user_random, ex.dev_random]);
    let mut t = Vec::with_capacity(600);
    len8le(&mut t, &context);
    len8le(&mut t, b"");
    len8le(&mut t, b"");
    len8le(&mut t, &encode_point(&m_point()));
    len8le(&mut t, &encode_point(&n_point()));
    len8le(&mut t, ex.user_share);
    len8le(&mut t, ex.dev_share);
    len8le(&mut t, &encode_point(z));
    len8le(&mut t, &encode_point(v));
    len8le(&mut t, &encode_w(w0));
    let th = s.hash(&[&t]);
    let zero = vec![0u8; s.digest_len()];
    let ml = s.mac_len();
    let mut ck = vec![0u8; 2 * ml];
    s.hkdf(&zero, &th, b"ConfirmationKeys", &mut ck);
    let mut shared_key = vec![0u8; s.digest_len()];
    s.hkdf(&zero, &th, b"SharedKey", &mut shared_key);
    Keys {
        user_confirm: s.mac(&ck[..ml], ex.dev_share),
        dev_confirm: s.mac(&ck[ml..], ex.user_share),
        shared_key,
    }
}

/// The client's share for secret scalar `x`.
pub fn client_share(x: &Scalar, secret: &Secret) -> [u8; SHARE_LEN] {
    encode_point(&(ProjectivePoint::GENERATOR * x + m_point() * secret.w0))
}

/// The client's side once the device's share is known.
pub fn client_keys(x: &Scalar, secret: &Secret, ex: &Exchange<'_>) -> Result<Keys, TpapError> {
    let y = decode_share(ex.dev_share)?;
    let unblinded = y - n_point() * secret.w0;
    let z = unblinded * x;
    let v = unblinded * secret.w1;
    if bool::from(z.is_identity()) || bool::from(v.is_identity()) {
        return Err(TpapError::BadShare);
    }
    Ok(schedule(ex, &z, &v, &secret.w0))
}

/// The device's share for secret scalar `y` (simulator side).
pub fn device_share(y: &Scalar, w0: &Scalar) -> [u8; SHARE_LEN] {
    encode_point(&(ProjectivePoint::GENERATOR * y + n_point() * w0))
}

/// `w1·G`, what a device stores instead of w1 (simulator side).
pub fn verifier(w1: &Scalar) -> ProjectivePoint {
    ProjectivePoint::GENERATOR * w1
}

/// The device's side once the client's share is known (simulator side).
pub fn device_keys(
    y: &Scalar,
    w0: &Scalar,
    l: &ProjectivePoint,
    ex: &Exchange<'_>,
) -> Result<Keys, TpapError> {
    let x = decode_share(ex.user_share)?;
    let z = (x - m_point() * w0) * y;
    let v = *l * y;
    if bool::from(z.is_identity()) {
        return Err(TpapError::BadShare);
    }
    Ok(schedule(ex, &z, &v, w0))
}

/// Compares two byte strings without stopping at the first difference.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ------------------------------------------------------------------ sealing

/// Stands in for a panic where the key length is the cipher's own.
fn never_fails<E, T>(_: E) -> T {
    unreachable!("the key length is the cipher's")
}

#[derive(Clone)]
enum Aead {
    Aes128(Box<Ccm<Aes128, U16, U12>>),
    Aes256(Box<Ccm<Aes256, U16, U12>>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// The symmetric state of one session: the cipher, its key and the base
/// nonce. Each body is `seq (u32 BE) || ciphertext || tag`, sealed under the
/// nonce `base[..8] || seq (BE)`.
#[derive(Clone)]
pub struct Sealer {
    aead: Aead,
    base: [u8; 12],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Derives key and base nonce from the shared key with the cipher's
    /// `tp-kdf-salt-…`/`tp-kdf-info-…` labels (the suite's hash).
    pub fn new(suite: Suite, cipher: SessionCipher, shared_key: &[u8]) -> Sealer {
        let l = cipher.label();
        let mut key = vec![0u8; cipher.key_len()];
        suite.hkdf(
            format!("tp-kdf-salt-{l}-key").as_bytes(),
            shared_key,
            format!("tp-kdf-info-{l}-key").as_bytes(),
            &mut key,
        );
        let mut base = [0u8; 12];
        suite.hkdf(
            format!("tp-kdf-salt-{l}-iv").as_bytes(),
            shared_key,
            format!("tp-kdf-info-{l}-iv").as_bytes(),
            &mut base,
        );
        let aead = match cipher {
            SessionCipher::Aes128Ccm => Aead::Aes128(Box::new(
                Ccm::new_from_slice(&key).unwrap_or_else(never_fails),
            )),
            SessionCipher::Aes256Ccm => Aead::Aes256(Box::new(
                Ccm::new_from_slice(&key).unwrap_or_else(never_fails),
            )),
            SessionCipher::ChaCha20Poly1305 => Aead::ChaCha(Box::new(
                ChaCha20Poly1305::new_from_slice(&key).unwrap_or_else(never_fails),
            )),
        };
        Sealer { aead, base }
    }

    fn nonce(&self, seq: u32) -> [u8; 12] {
        let mut n = self.base;
        n[8..].copy_from_slice(&seq.to_be_bytes());
        n
    }

    /// `seq || ciphertext || tag` of `plain`.
    pub fn seal(&self, seq: u32, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEQ_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(plain);
        let n = self.nonce(seq);
        let buf = &mut out[SEQ_LEN..];
        // Encryption fails only for messages over 2^32 bytes (CCM's length
        // field); bodies are bounded far below that by the HTTP layer.
        let tag: [u8; TAG_LEN] = match &self.aead {
            Aead::Aes128(c) => c
                .encrypt_inout_detached(&n.into(), &[], buf.into())
                .map(Into::into),
            Aead::Aes256(c) => c
                .encrypt_inout_detached(&n.into(), &[], buf.into())
                .map(Into::into),
            Aead::ChaCha(c) => c
                .encrypt_inout_detached(&n.into(), &[], buf.into())
                .map(Into::into),
        }
        .unwrap_or([0; TAG_LEN]);
        out.extend_from_slice(&tag);
        out
    }

    /// Splits `body` into its sequence number and the opened plaintext,
    /// checking the length first and the tag before anything is used.
    pub fn open(&self, body: &[u8]) -> Result<(u32, Vec<u8>), TpapError> {
        if body.len() > MAX_SEALED {
            return Err(TpapError::Oversize(body.len()));
        }
        if body.len() < SEQ_LEN + TAG_LEN {
            return Err(TpapError::TooShort(body.len()));
        }
        let seq = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let (ct, tag) = body[SEQ_LEN..].split_at(body.len() - SEQ_LEN - TAG_LEN);
        let mut plain = ct.to_vec();
        let n = self.nonce(seq);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| TpapError::BadTag)?;
        let ok = match &self.aead {
            Aead::Aes128(c) => {
                c.decrypt_inout_detached(&n.into(), &[], plain.as_mut_slice().into(), &tag.into())
            }
            Aead::Aes256(c) => {
                c.decrypt_inout_detached(&n.into(), &[], plain.as_mut_slice().into(), &tag.into())
            }
            Aead::ChaCha(c) => {
                c.decrypt_inout_detached(&n.into(), &[], plain.as_mut_slice().into(), &tag.into())
            }
        };
        ok.map_err(|_| TpapError::BadTag)?;
        Ok((seq, plain))
    }

    /// Opens a reply to the request sent with `want`: its number may not be
    /// below the request's (a replayed or stale reply).
    pub fn open_reply(&self, want: u32, body: &[u8]) -> Result<Vec<u8>, TpapError> {
        let (got, plain) = self.open(body)?;
        if got < want {
            return Err(TpapError::SeqBackwards { got, want });
        }
        Ok(plain)
    }
}
