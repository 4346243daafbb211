//! The KLAP transport (docs/design.md §7): TP-Link's authenticated, encrypted
//! request/reply over HTTP port 80, used by newer Kasa and by Tapo devices.
//!
//! A session is two round trips:
//!
//! 1. `POST /app/handshake1` with a random 16-byte local seed. The device
//!    answers its 16-byte remote seed and a 32-byte server hash, and sets the
//!    `TP_SESSIONID` cookie (and `TIMEOUT`, the session's life in seconds).
//!    The server hash proves which credentials the device holds: v1
//!    `sha256(local + auth)`, v2 `sha256(local + remote + auth)`, with the
//!    auth hash of [`crate::kasa::credentials`]. It is checked against the
//!    configured credentials in both versions, then (as python-kasa does)
//!    against the published defaults and blank credentials; no match is a
//!    wrong password ([`KasaError::Auth`]), found without sending anything
//!    the device could count as a failed login.
//! 2. `POST /app/handshake2` with v1 `sha256(remote + auth)`, v2
//!    `sha256(remote + local + auth)`.
//!
//! Then each request is `POST /app/request?seq=N` whose body is
//! `sha256(sig + N + ciphertext) + ciphertext`, AES-128-CBC with PKCS#7
//! padding. Key, IV prefix, signature key and the first sequence number come
//! from `sha256("lsk"|"iv"|"ldk" + local + remote + auth)`; the IV is the
//! 12-byte prefix plus the 4-byte big-endian sequence number, which goes up
//! by one per request. Replies are signed the same way with the request's
//! sequence number, and the signature is checked before anything is
//! decrypted.
//!
//! The session is renewed (a fresh handshake, within the same deadline) when
//! it is near its `TIMEOUT`, when the device answers 403 (python-kasa's
//! "security error"), and once when a session that had worked returns a
//! reply that cannot be decrypted or closes without answering (some firmware
//! ends a session after every request). Any other failure drops the session
//! so that the next request starts afresh.
//!
//! **Refused credentials.** A wrong password is found by comparing hashes
//! locally after handshake1; handshake2 is never sent with a proof the device
//! would reject, so the device sees no failed login. No KLAP lockout is
//! documented in python-kasa or its issues, but TP-Link's AES login and its
//! cameras do suspend a client after repeated failures (`-40404`
//! `DEVICE_BLOCKED`, "temporary suspension" after about ten tries), and a
//! wrong password does not fix itself: [`KasaError::Auth`] is permanent
//! ([`KasaError::is_permanent`]) and the worker tries such a device at most
//! once per control cycle. A device bound to an account sometimes accepts
//! the published default credentials instead (python-kasa notes it switches
//! between them); that is accepted, logged once, and reported by
//! [`KlapTransport::matched`].
//!
//! [`KlapCipher`] and the handshake hashes are pure functions, shared with
//! the simulated plug's server side and tested on vectors.

use std::fmt;
use std::time::{Duration, Instant};

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::http::{distrust_on_err, expect_ok, HttpClient};
use super::{encode_request, Transport};
use crate::kasa::credentials::{
    default_credentials, AuthHash, CredentialSource, Credentials, KlapVersion,
};
use crate::kasa::error::{AuthDetail, KasaError};

/// Length of each handshake seed.
pub(crate) const SEED_LEN: usize = 16;

/// A session's life when the device sets no `TIMEOUT` cookie (python-kasa's).
const DEFAULT_SESSION_S: u64 = 86_400;

/// Renew this long before the announced end (python-kasa uses 20 min), but
/// never more than a quarter of a short session.
const EXPIRY_MARGIN_S: u64 = 20 * 60;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The server hash of handshake1 for these seeds and auth hash.
pub(crate) fn handshake1_hash(
    version: KlapVersion,
    local_seed: &[u8],
    remote_seed: &[u8],
    auth: &[u8],
) -> [u8; 32] {
    match version {
        KlapVersion::V1 => sha256(&[local_seed, auth]),
        KlapVersion::V2 => sha256(&[local_seed, remote_seed, auth]),
    }
}

/// The client's proof sent in handshake2.
pub(crate) fn handshake2_hash(
    version: KlapVersion,
    local_seed: &[u8],
    remote_seed: &[u8],
    auth: &[u8],
) -> [u8; 32] {
    match version {
        KlapVersion::V1 => sha256(&[remote_seed, auth]),
        KlapVersion::V2 => sha256(&[remote_seed, local_seed, auth]),
    }
}

/// Why a KLAP body could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a signature plus one cipher block.
    TooShort(usize),
    /// The ciphertext is not a whole number of 16-byte blocks.
    NotBlocks(usize),
    /// The signature does not match the sequence number and ciphertext.
    BadSignature,
    /// The decrypted padding is not PKCS#7.
    BadPadding,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::TooShort(n) => write!(
                f,
                "body of {n} bytes is shorter than a signature and one block (48)"
            ),
            OpenError::NotBlocks(n) => {
                write!(f, "ciphertext of {n} bytes is not a whole number of blocks")
            }
            OpenError::BadSignature => f.write_str(
                "the reply's signature does not match (corrupted, or the session was taken over)",
            ),
            OpenError::BadPadding => f.write_str("the decrypted reply has bad padding"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The symmetric state of one KLAP session.
#[derive(Clone)]
pub struct KlapCipher {
    key: [u8; 16],
    iv: [u8; 12],
    sig: [u8; 28],
    seq: i32,
}

impl fmt::Debug for KlapCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("KlapCipher")
            .field("seq", &self.seq)
            .finish()
    }
}

impl KlapCipher {
    /// Derives key, IV prefix, signature key and first sequence number.
    pub fn new(local_seed: &[u8], remote_seed: &[u8], auth: &[u8]) -> KlapCipher {
        let key_full = sha256(&[b"lsk", local_seed, remote_seed, auth]);
        let iv_full = sha256(&[b"iv", local_seed, remote_seed, auth]);
        let sig_full = sha256(&[b"ldk", local_seed, remote_seed, auth]);
        let mut key = [0; 16];
        key.copy_from_slice(&key_full[..16]);
        let mut iv = [0; 12];
        iv.copy_from_slice(&iv_full[..12]);
        let mut sig = [0; 28];
        sig.copy_from_slice(&sig_full[..28]);
        let seq = i32::from_be_bytes([iv_full[28], iv_full[29], iv_full[30], iv_full[31]]);
        KlapCipher { key, iv, sig, seq }
    }

    #[cfg(test)]
    /// The last sequence number used (the derived one before any request).
    pub(crate) fn seq(&self) -> i32 {
        self.seq
    }

    /// Moves to the next sequence number and seals `plain` with it.
    pub fn encrypt(&mut self, plain: &[u8]) -> (Vec<u8>, i32) {
        // The device treats the number as a signed 32-bit integer; it wraps.
        self.seq = self.seq.wrapping_add(1);
        (self.seal(self.seq, plain), self.seq)
    }

    fn full_iv(&self, seq: i32) -> [u8; 16] {
        let mut iv = [0; 16];
        iv[..12].copy_from_slice(&self.iv);
        iv[12..].copy_from_slice(&seq.to_be_bytes());
        iv
    }

    fn signature(&self, seq: i32, ciphertext: &[u8]) -> [u8; 32] {
        sha256(&[&self.sig, &seq.to_be_bytes(), ciphertext])
    }

    /// `signature + ciphertext` of `plain` under sequence number `seq`
    /// (requests, and the server's replies, which reuse the request's number).
    pub(crate) fn seal(&self, seq: i32, plain: &[u8]) -> Vec<u8> {
        let ct = Aes128CbcEnc::new(&self.key.into(), &self.full_iv(seq).into())
            .encrypt_padded_vec::<Pkcs7>(plain);
        let mut out = Vec::with_capacity(32 + ct.len());
        out.extend_from_slice(&self.signature(seq, &ct));
        out.extend_from_slice(&ct);
        out
    }

    /// Checks the signature of `body` for `seq`, then decrypts and unpads it.
    pub fn open(&self, seq: i32, body: &[u8]) -> Result<Vec<u8>, OpenError> {
        if body.len() < 48 {
            return Err(OpenError::TooShort(body.len()));
        }
        let (sig, ct) = body.split_at(32);
        if ct.len() % 16 != 0 {
            return Err(OpenError::NotBlocks(ct.len()));
        }
        let want = self.signature(seq, ct);
        // Compare every byte: the time taken says nothing about where they differ.
        if sig
            .iter()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
        {
            return Err(OpenError::BadSignature);
        }
        Aes128CbcDec::new(&self.key.into(), &self.full_iv(seq).into())
            .decrypt_padded_vec::<Pkcs7>(ct)
            .map_err(|_| OpenError::BadPadding)
    }
}

/// One candidate for the credentials the device holds.
struct Candidate {
    source: CredentialSource,
    version: KlapVersion,
    hash: AuthHash,
}

struct Session {
    cipher: KlapCipher,
    cookie: String,
    renew_at: Instant,
    /// No request has succeeded on it yet.
    fresh: bool,
}

/// Which handshake matched, as [`KlapTransport::matched`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// The credentials the device accepted.
    pub source: CredentialSource,
    /// The hash version it uses.
    pub version: KlapVersion,
}

/// KLAP over HTTP to one device, implementing [`Transport`].
pub struct KlapTransport {
    http: HttpClient,
    credentials: Option<Credentials>,
    version: KlapVersion,
    candidates: Vec<Candidate>,
    session: Option<Session>,
    matched: Option<Matched>,
    handshakes: u64,
}

impl fmt::Debug for KlapTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KlapTransport")
            .field("addr", &self.http.address())
            .field("version", &self.version)
            .field("credentials", &self.credentials)
            .field("session", &self.session.is_some())
            .finish()
    }
}

impl KlapTransport {
    /// A transport to `host:port` (port 80 on real devices). `credentials`
    /// are the user's TP-Link account (`None`: only the published defaults
    /// and blank credentials are tried). `version` is the hash version to
    /// try first (v1 for legacy-JSON devices, v2 for SMART ones); the other
    /// is tried too, and the one that matches is kept. Connecting is bounded
    /// by `connect_timeout` and by each request's deadline.
    pub fn new(
        host: &str,
        port: u16,
        credentials: Option<Credentials>,
        version: KlapVersion,
        connect_timeout: Duration,
    ) -> KlapTransport {
        KlapTransport {
            http: HttpClient::new(host, port, connect_timeout),
            credentials,
            version,
            candidates: Vec::new(),
            session: None,
            matched: None,
            handshakes: 0,
        }
    }

    /// The hash version in use (learned at the last handshake).
    pub fn version(&self) -> KlapVersion {
        self.version
    }

    /// What the last successful handshake matched.
    pub fn matched(&self) -> Option<Matched> {
        self.matched
    }

    /// How many handshakes were started (for tests and benchmarks).
    pub fn handshakes(&self) -> u64 {
        self.handshakes
    }

    /// Whether a session is established.
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    fn candidates(&mut self) -> &[Candidate] {
        if self.candidates.is_empty() {
            let first = self.version;
            let both = [first, first.other()];
            let mut out = Vec::new();
            let given = self.credentials.clone().filter(|c| !c.is_blank());
            if let Some(c) = &given {
                for v in both {
                    out.push(Candidate {
                        source: CredentialSource::Given,
                        version: v,
                        hash: c.auth_hash(v),
                    });
                }
            }
            for (name, c) in default_credentials() {
                for v in both {
                    out.push(Candidate {
                        source: CredentialSource::Default(name),
                        version: v,
                        hash: c.auth_hash(v),
                    });
                }
            }
            for v in both {
                out.push(Candidate {
                    source: CredentialSource::Blank,
                    version: v,
                    hash: Credentials::default().auth_hash(v),
                });
            }
            self.candidates = out;
        }
        &self.candidates
    }

    /// Runs handshake1 and handshake2 and keeps the new session, before
    /// `deadline`. Public so a benchmark can time it apart from requests.
    pub fn handshake(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.session = None;
        self.handshakes += 1;
        let addr = self.http.address().to_string();
        let mut local = [0u8; SEED_LEN];
        getrandom::fill(&mut local).map_err(|e| KasaError::Io {
            addr: addr.clone(),
            op: "drawing a random handshake seed".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let r = self
            .http
            .post("/app/handshake1", &local, None, deadline, "handshake1")?;
        let r = expect_ok(&addr, "handshake1", r)?;
        if r.body.len() != SEED_LEN + 32 {
            self.http.close();
            return Err(KasaError::Klap {
                addr,
                op: "handshake1".into(),
                detail: format!(
                    "a reply of {} bytes, expected 48 (16-byte seed and 32-byte hash)",
                    r.body.len()
                ),
            });
        }
        let Some(cookie) = r.session_id.clone() else {
            self.http.close();
            return Err(KasaError::Http {
                addr,
                op: "handshake1".into(),
                detail: "no TP_SESSIONID cookie".into(),
            });
        };
        let (remote, server_hash) = r.body.split_at(SEED_LEN);
        let found = self.candidates().iter().position(|c| {
            handshake1_hash(c.version, &local, remote, c.hash.as_bytes()) == server_hash
        });
        let Some(i) = found else {
            self.http.close();
            return Err(KasaError::Auth {
                addr,
                source: AuthDetail::HashMismatch {
                    username: self
                        .credentials
                        .as_ref()
                        .map(|c| c.username.clone())
                        .unwrap_or_default(),
                },
            });
        };
        let (source, version, proof, cipher) = {
            let c = &self.candidates[i];
            (
                c.source,
                c.version,
                handshake2_hash(c.version, &local, remote, c.hash.as_bytes()),
                KlapCipher::new(&local, remote, c.hash.as_bytes()),
            )
        };
        self.note_match(&addr, Matched { source, version });
        let life = r.timeout_s.unwrap_or(DEFAULT_SESSION_S);
        let renew_after = life.saturating_sub(EXPIRY_MARGIN_S.min(life / 4));
        let r2 = self.http.post(
            "/app/handshake2",
            &proof,
            Some(&cookie),
            deadline,
            "handshake2",
        )?;
        if r2.status != 200 {
            self.http.close();
            return Err(KasaError::Klap {
                addr,
                op: "handshake2".into(),
                detail: format!("refused with HTTP {}", r2.status),
            });
        }
        self.session = Some(Session {
            cipher,
            cookie,
            renew_at: Instant::now() + Duration::from_secs(renew_after),
            fresh: true,
        });
        Ok(())
    }

    fn note_match(&mut self, addr: &str, m: Matched) {
        if self.matched != Some(m) {
            let given = self.credentials.as_ref().is_some_and(|c| !c.is_blank());
            match m.source {
                CredentialSource::Given => {}
                other if given => log::warn!(
                    "{addr}: the plug accepted {other}, not the configured credentials \
                     (it is not bound to that TP-Link account, or was reset)"
                ),
                other => log::info!("{addr}: the plug accepted {other}"),
            }
            if m.version != self.version {
                log::info!(
                    "{addr}: the plug speaks {}, not {}",
                    m.version,
                    self.version
                );
            }
        }
        self.version = m.version;
        self.matched = Some(m);
    }

    /// Sends one plaintext body and returns the decrypted reply, handshaking
    /// first when needed, all before `deadline`.
    pub(crate) fn request_bytes(
        &mut self,
        plain: &[u8],
        deadline: Instant,
        op: &str,
    ) -> Result<Vec<u8>, KasaError> {
        let result = self.request_inner(plain, deadline, op);
        distrust_on_err(result, &mut self.session, &mut self.http)
    }

    fn request_inner(
        &mut self,
        plain: &[u8],
        deadline: Instant,
        op: &str,
    ) -> Result<Vec<u8>, KasaError> {
        let addr = self.http.address().to_string();
        let mut renewed = false;
        loop {
            if self
                .session
                .as_ref()
                .is_none_or(|s| Instant::now() >= s.renew_at)
            {
                self.handshake(deadline)?;
            }
            let Some(s) = self.session.as_mut() else {
                return Err(no_session(&addr, op));
            };
            let fresh = s.fresh;
            let (body, seq) = s.cipher.encrypt(plain);
            let target = format!("/app/request?seq={seq}");
            let cookie = s.cookie.clone();
            let reply = self.http.post(&target, &body, Some(&cookie), deadline, op);
            // A session that had worked and now fails this way is most likely
            // over on the device's side: one fresh handshake, same deadline.
            let retry_stale = |e: &KasaError| {
                !fresh
                    && matches!(
                        e,
                        KasaError::Http { .. }
                            | KasaError::Closed {
                                mid_frame: false,
                                ..
                            }
                    )
            };
            let r = match reply {
                Ok(r) => r,
                Err(e) if !renewed && retry_stale(&e) => {
                    renewed = true;
                    self.session = None;
                    self.http.close();
                    continue;
                }
                Err(e) => return Err(e),
            };
            match r.status {
                200 => {}
                401 | 403 if !renewed => {
                    renewed = true;
                    self.session = None;
                    continue;
                }
                status => {
                    return Err(KasaError::HttpStatus {
                        addr,
                        op: op.to_string(),
                        status,
                    })
                }
            }
            let Some(s) = self.session.as_mut() else {
                return Err(no_session(&addr, op));
            };
            match s.cipher.open(seq, &r.body) {
                Ok(plain) => {
                    s.fresh = false;
                    return Ok(plain);
                }
                Err(_) if !fresh && !renewed => {
                    renewed = true;
                    self.session = None;
                    self.http.close();
                    continue;
                }
                Err(e) => {
                    return Err(KasaError::Klap {
                        addr,
                        op: op.to_string(),
                        detail: e.to_string(),
                    })
                }
            }
        }
    }
}

/// handshake() either sets a session or fails, so this is never seen; it
/// stands in for a panic on a path no input can reach.
fn no_session(addr: &str, op: &str) -> KasaError {
    KasaError::Klap {
        addr: addr.to_string(),
        op: op.to_string(),
        detail: "no session after a successful handshake".into(),
    }
}

impl Transport for KlapTransport {
    fn address(&self) -> &str {
        self.http.address()
    }

    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError> {
        let (op, body) = encode_request(self.http.address(), request)?;
        let plain = self.request_bytes(&body, deadline, &op)?;
        serde_json::from_slice(&plain).map_err(|e| KasaError::BadFrame {
            addr: self.http.address().to_string(),
            detail: format!("the decrypted reply to {op} is not JSON ({e})"),
        })
    }

    fn close(&mut self) {
        self.session = None;
        self.http.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn seeds() -> (Vec<u8>, Vec<u8>) {
        ((0u8..16).collect(), (16u8..32).collect())
    }

    // Every expected value below was computed at development time with
    // python-kasa 0.12.0's own KlapTransport, KlapTransportV2 and
    // KlapEncryptionSession for user "user@example.com", password
    // "pa55word", local seed 00..0f and remote seed 10..1f.
    #[test]
    fn handshake_hashes_match_python_kasa() {
        let (l, r) = seeds();
        let c = Credentials::new("user@example.com", "pa55word");
        let a1 = c.auth_hash(KlapVersion::V1);
        let a2 = c.auth_hash(KlapVersion::V2);
        assert_eq!(
            hex(&handshake1_hash(KlapVersion::V1, &l, &r, a1.as_bytes())),
            "19f8c85679714a8c7562b3b09b6f84652201b66835e8edb9171564a259621686"
        );
        assert_eq!(
            hex(&handshake2_hash(KlapVersion::V1, &l, &r, a1.as_bytes())),
            "b3c7b55fcca846561b148dcc88b1e38db21bfabc4e8cb86ed5c7495a9003f8d9"
        );
        assert_eq!(
            hex(&handshake1_hash(KlapVersion::V2, &l, &r, a2.as_bytes())),
            "8b05045ced6502f54bf87baf63974590b1683599acb6309e383bac102d27e514"
        );
        assert_eq!(
            hex(&handshake2_hash(KlapVersion::V2, &l, &r, a2.as_bytes())),
            "08405b655bb085bbce360e6d371089d9c6abf490eae153a7a8049f48953d92a6"
        );
    }

    #[test]
    fn session_derivation_and_sealing_match_python_kasa() {
        let (l, r) = seeds();
        let c = Credentials::new("user@example.com", "pa55word");
        let msg = br#"{"method":"get_device_info"}"#;
        for (v, key, iv, seq, sig, sealed) in [
            (
                KlapVersion::V1,
                "5258dea95e17d26e00a1bbd29c898739",
                "eb5ec18e338fa78de319fb52",
                -1_092_991_654,
                "25777e0f2d40bc31da0b99b96f0a741df9612a5a146d443c017f93e0",
                "ee41beb03fe548d3aa453c7c30662787369ad0a8f0b3be159644f559de3fe33a\
                 5dbe34a32f27950350967f3720524ebdd1328a84148e41af3fc507289ede8932",
            ),
            (
                KlapVersion::V2,
                "ea14f6fb44b4ec3b273f34fc239aacf9",
                "fd21d2b5a3805d89174fd072",
                -1_990_097_555,
                "e3f15043a2c0c25ce3f7b2640a29d2548f93d042f16d1be66136a821",
                "bf764b43ce14510caf3575b69689e685753381f30814f3a33eb685df3875e329\
                 17bc7b0511922c74fe34b38d79f2ff83c24fa45bfbfd15cb841b781351db8f5f",
            ),
        ] {
            let mut k = KlapCipher::new(&l, &r, c.auth_hash(v).as_bytes());
            assert_eq!(hex(&k.key), key);
            assert_eq!(hex(&k.iv), iv);
            assert_eq!(k.seq(), seq);
            assert_eq!(hex(&k.sig), sig);
            let sealed = sealed.replace(' ', "");
            let (body, n) = k.encrypt(msg);
            assert_eq!(n, seq + 1);
            assert_eq!(hex(&body), sealed);
            assert_eq!(k.open(n, &unhex(&sealed)).unwrap(), msg);
        }
    }

    #[test]
    fn sequence_number_wraps_like_a_signed_int() {
        let (l, r) = seeds();
        let mut k = KlapCipher::new(&l, &r, b"0123456789abcdef");
        k.seq = i32::MAX;
        let (body, n) = k.encrypt(b"{}");
        assert_eq!(n, i32::MIN);
        assert_eq!(k.open(i32::MIN, &body).unwrap(), b"{}");
    }

    #[test]
    fn open_refuses_bad_bodies_with_the_reason() {
        let (l, r) = seeds();
        let mut k = KlapCipher::new(&l, &r, b"0123456789abcdef");
        let (good, seq) = k.encrypt(b"{\"error_code\":0}");
        assert_eq!(k.open(seq, &good[..40]), Err(OpenError::TooShort(40)));
        assert_eq!(
            k.open(seq, &good[..good.len() - 1]),
            Err(OpenError::NotBlocks(good.len() - 33))
        );
        assert_eq!(k.open(seq + 1, &good), Err(OpenError::BadSignature));
        let mut flipped = good.clone();
        flipped[3] ^= 1;
        assert_eq!(k.open(seq, &flipped), Err(OpenError::BadSignature));
        let mut flipped = good.clone();
        flipped[40] ^= 1;
        assert_eq!(k.open(seq, &flipped), Err(OpenError::BadSignature));
        // A correctly signed ciphertext whose plaintext padding is wrong.
        let last = [0x41u8; 16];
        let ct = Aes128CbcEnc::new(&k.key.into(), &k.full_iv(seq).into())
            .encrypt_padded_vec::<aes::cipher::block_padding::NoPadding>(&last);
        let mut body = k.signature(seq, &ct).to_vec();
        body.extend_from_slice(&ct);
        assert_eq!(k.open(seq, &body), Err(OpenError::BadPadding));
    }

    /// Random and mutated bodies: `open` answers an error or the plaintext,
    /// never panics, and allocates no more than the body's size.
    #[test]
    fn fuzz_open() {
        let (l, r) = seeds();
        let mut k = KlapCipher::new(&l, &r, b"0123456789abcdef");
        let (good, seq) = k.encrypt(br#"{"result":{"device_on":true},"error_code":0}"#);
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mut ok = 0;
        for round in 0..20_000 {
            let body: Vec<u8> = if round % 2 == 0 {
                let mut m = good.clone();
                let i = next() as usize % m.len();
                m[i] ^= (next() as u8) | 1;
                if next() % 4 == 0 {
                    m.truncate(next() as usize % (m.len() + 1));
                }
                m
            } else {
                let len = next() as usize % 200;
                (0..len).map(|_| next() as u8).collect()
            };
            match k.open(seq, &body) {
                Ok(p) => {
                    assert!(p.len() <= body.len());
                    ok += 1;
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
        assert_eq!(ok, 0, "no mutated or random body may pass the signature");
        assert!(k.open(seq, &good).is_ok());
    }
}
