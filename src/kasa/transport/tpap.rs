//! The TPAP transport: the password-authenticated key exchange that TP-Link
//! firmware 1.4.x (Tapo P110, P115, P110M, P125M, P410M; Kasa KP125M 1.4.1)
//! announces in its UDP 20002 answer (`"encrypt_type": "TPAP"`), on plain
//! HTTP (TLS mode 0, port 80). See docs/design.md §7.7 for the whole story.
//!
//! A session is three JSON posts to `/`, each `{"method": "login",
//! "params": {"sub_method": …}}`:
//!
//! 1. `discover`: the device's MAC and `tpap {tls, port, dac, pake,
//!    user_hash_type}`. TLS modes 1 and 2 (HTTPS on 4433: cameras and hubs)
//!    are named and refused ([`KasaError::Unsupported`]).
//! 2. `pake_register`: the user name (md5 hex of `admin`), 32 random bytes,
//!    the suites and ciphers offered (1 and `aes_128_ccm`, as plugp100 does).
//!    The device answers its random, salt, share, the suite and cipher it
//!    chose, the PBKDF2 iterations and `extra_crypt` (how the password is
//!    pre-hashed: [`crypto::pre_hash`]).
//! 3. `pake_share`: the client's share and confirmation; the device answers
//!    its own confirmation (checked), `stok` and `start_seq`, or `-2203` with
//!    its failed and remaining attempts when the password is wrong.
//!
//! Each request is then `POST /stok=<stok>/ds`, `application/octet-stream`:
//! the sequence number (u32 big-endian, from `start_seq`, one more per
//! request) and the sealed JSON ([`crypto::Sealer`]). The reply has the same
//! layout; its number may not be below the request's.
//!
//! **Renewal**: an expired or unknown session comes back as `error_code`
//! -40401, 9999 or -40413 (unsealed, or inside the sealed reply) or as HTTP
//! 401/403; each means one fresh handshake within the same deadline, once
//! per request. **A refused login is not retried**: `-2203` (or a device
//! confirmation that does not match) is [`KasaError::Auth`], permanent, so the
//! worker tries it at most once per control cycle: devices lock a client out
//! after a few failed logins, and plugp100's four handshakes per request
//! would spend them.

pub mod crypto;

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::crypto::{
    client_keys, client_share, default_passcode, derive_secret, pre_hash, same, scalar_from_random,
    Exchange, Sealer, SessionCipher, Suite, TpapError, SHARE_LEN,
};
use super::http::{distrust_on_err, expect_ok, BodyKind, HttpClient};
use super::{encode_request, Transport};
use crate::kasa::credentials::{base64_decode, base64_encode, Credentials};
use crate::kasa::error::{AuthDetail, KasaError};
use crate::kasa::smart::codes::is_auth_error;

/// What the handshake posts are labelled as: plugp100's headers (its
/// aiohttp sends `Accept: */*`), so a device that checks them sees nothing new.
const JSON_BODY: BodyKind = BodyKind {
    content_type: "application/json",
    accept: "*/*",
    extra: &[],
};

/// The `error_code`s that mean "this session is gone, handshake again":
/// session expired, session timeout, invalid nonce.
pub const RENEW_CODES: [i64; 3] = [-40401, 9999, -40413];

/// The `error_code` of a refused login (with `failedAttempts` and
/// `remainAttempts`).
pub const LOGIN_REFUSED: i64 = -2203;

/// PBKDF2 iterations above this are refused: a device (or an impostor) could
/// otherwise keep the client's thread busy past any deadline.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The TPAP TLS modes: 0 plain HTTP (plugs), 1 and 2 HTTPS (cameras, hubs).
pub fn tls_mode_name(tls: i64) -> &'static str {
    match tls {
        0 => "plain HTTP",
        1 => "HTTPS without certificate checks",
        2 => "HTTPS with TP-Link's device CA",
        _ => "an unknown TLS mode",
    }
}

/// What a device says in answer to `discover`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Its MAC (`AA:BB:…`).
    pub mac: String,
    /// TLS mode (0 plain HTTP).
    pub tls: i64,
    /// The port for the session (0: the one asked).
    pub port: u16,
    /// Whether it proves itself with a device certificate.
    pub dac: bool,
    /// The passcode kinds it accepts.
    pub pake: Vec<i64>,
    /// 1: the user name is sha256 (upper hex) of `admin`, else md5 hex.
    pub user_hash_type: i64,
}

/// Which passcode the exchange is keyed with, in plugp100's order of choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passcode {
    /// Type 0: the device's own, derived from its MAC (never bound).
    Default,
    /// Types 2 and 5: the TP-Link account's password.
    Account,
    /// Type 3 alone: a shared token, which plugp100 keys (on plugs) with the
    /// account's password, pre-hashed as `extra_crypt` says, like type 2.
    SharedToken,
}

impl Announce {
    /// The passcode kind to use, plugp100's rule: type 0 first, then 2 or 5,
    /// then 3; anything else (nothing listed, or only kinds it does not know)
    /// means the default one.
    pub fn passcode(&self) -> Result<Passcode, TpapError> {
        if self.pake.contains(&0) {
            Ok(Passcode::Default)
        } else if self.pake.iter().any(|p| *p == 2 || *p == 5) {
            Ok(Passcode::Account)
        } else if self.pake.contains(&3) {
            Ok(Passcode::SharedToken)
        } else {
            Ok(Passcode::Default)
        }
    }

    /// The `username` of `pake_register`.
    pub fn register_username(&self) -> String {
        if self.user_hash_type == 1 {
            hex(&Sha256::digest(b"admin")).to_ascii_uppercase()
        } else {
            hex(&md5::Md5::digest(b"admin"))
        }
    }

    /// `passcode_type` of `pake_register`.
    pub fn passcode_type(&self) -> &'static str {
        match self.passcode() {
            Ok(Passcode::Account) => "userpw",
            Ok(Passcode::SharedToken) => "shared_token",
            _ => "default_userpw",
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A `login` reply's `error_code`, and its `result` object when the code is 0.
#[derive(Debug, Clone, PartialEq)]
pub enum LoginReply {
    /// `error_code` 0 and a `result` object.
    Ok(serde_json::Map<String, Value>),
    /// `-2203`: the password is wrong.
    Refused {
        /// `failedAttempts`, when given.
        failed: Option<i64>,
        /// `remainAttempts`, when given.
        remaining: Option<i64>,
    },
    /// Another non-zero code.
    Code(i64),
}

/// A number as Python's `int()` takes it from JSON, which is how plugp100
/// reads every numeric field: an integer, an integral float (`1.0`), a
/// decimal string (`"1"`) or a boolean.
fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// Python's truth of a JSON value, which is how plugp100 reads `dac`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Sorts a `login` reply by its `error_code`. The failed and remaining
/// attempts of a refusal are looked for in `result` and beside the code.
pub fn parse_login_reply(v: &Value) -> Result<LoginReply, TpapError> {
    let code = v
        .get("error_code")
        .and_then(int_of)
        .ok_or(TpapError::Missing("error_code"))?;
    let look = |k: &str| {
        v.get(k)
            .or_else(|| v.get("result").and_then(|r| r.get(k)))
            .and_then(int_of)
    };
    match code {
        0 => match v.get("result") {
            Some(Value::Object(m)) => Ok(LoginReply::Ok(m.clone())),
            _ => Err(TpapError::Missing("result")),
        },
        LOGIN_REFUSED => Ok(LoginReply::Refused {
            failed: look("failedAttempts"),
            remaining: look("remainAttempts"),
        }),
        other => Ok(LoginReply::Code(other)),
    }
}

/// The `result` of `discover`.
pub fn parse_discover(r: &serde_json::Map<String, Value>) -> Result<Announce, TpapError> {
    let tpap = r
        .get("tpap")
        .and_then(Value::as_object)
        .ok_or(TpapError::Missing("tpap"))?;
    // plugp100 keeps the port it was given unless the device names one above 0.
    let port = match tpap.get("port").and_then(int_of) {
        None => 0,
        Some(p) if p <= 0 => 0,
        Some(p) => u16::try_from(p).map_err(|_| TpapError::BadField {
            field: "port",
            detail: format!("{p} is not a port"),
        })?,
    };
    Ok(Announce {
        mac: r
            .get("mac")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        tls: tpap.get("tls").and_then(int_of).unwrap_or(0),
        port,
        dac: tpap.get("dac").is_some_and(truthy),
        pake: tpap
            .get("pake")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(int_of).collect())
            .unwrap_or_default(),
        user_hash_type: tpap.get("user_hash_type").and_then(int_of).unwrap_or(0),
    })
}

/// The `result` of `pake_register`, decoded.
#[derive(Debug, Clone)]
pub struct Register {
    /// The device's random bytes.
    pub dev_random: Vec<u8>,
    /// The PBKDF2 salt.
    pub dev_salt: Vec<u8>,
    /// The device's share (uncompressed).
    pub dev_share: [u8; SHARE_LEN],
    /// The suite it chose.
    pub suite: Suite,
    /// The cipher it chose.
    pub cipher: SessionCipher,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// How to pre-hash the password (absent: `username/password`).
    pub extra_crypt: Option<Value>,
}

fn b64_field(r: &serde_json::Map<String, Value>, k: &'static str) -> Result<Vec<u8>, TpapError> {
    let s = r.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let s = s.ok_or(TpapError::Missing(k))?;
    base64_decode(s).ok_or_else(|| TpapError::BadField {
        field: k,
        detail: "not base64".into(),
    })
}

/// Decodes `pake_register`'s `result`, refusing what this build cannot use.
pub fn parse_register(r: &serde_json::Map<String, Value>) -> Result<Register, TpapError> {
    let suite = r
        .get("cipher_suites")
        .and_then(int_of)
        .ok_or(TpapError::Missing("cipher_suites"))?;
    let suite = Suite::from_id(suite)?;
    let cipher = r
        .get("encryption")
        .and_then(Value::as_str)
        .ok_or(TpapError::Missing("encryption"))?;
    let cipher = SessionCipher::parse(cipher)?;
    let iterations = r
        .get("iterations")
        .and_then(int_of)
        .ok_or(TpapError::Missing("iterations"))?;
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|n| (1..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| TpapError::BadField {
            field: "iterations",
            detail: format!("{iterations} is not in 1..={MAX_ITERATIONS}"),
        })?;
    let share = b64_field(r, "dev_share")?;
    // Compressed shares are expanded so the transcript sees 65 bytes.
    let point = crypto::decode_share(&share)?;
    Ok(Register {
        dev_random: b64_field(r, "dev_random")?,
        dev_salt: b64_field(r, "dev_salt")?,
        dev_share: crypto::encode_point(&point),
        suite,
        cipher,
        iterations,
        extra_crypt: r.get("extra_crypt").filter(|v| v.is_object()).cloned(),
    })
}

/// The `result` of `pake_share`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareReply {
    /// The device's confirmation.
    pub dev_confirm: Vec<u8>,
    /// The session token for `/stok=<stok>/ds`.
    pub stok: String,
    /// The first request's sequence number.
    pub start_seq: u32,
}

/// The session token as plugp100 reads it: `sessionId` first, then `stok`,
/// a string or a number; an empty one counts as absent.
fn session_token(r: &serde_json::Map<String, Value>) -> Option<String> {
    ["sessionId", "stok"].iter().find_map(|k| match r.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Whether a session token can stand in one path segment as it is: the
/// characters RFC 3986 allows there unescaped, but never `/` (nor `%`,
/// `?`, `#`, spaces or controls), so the token can neither leave its
/// segment nor break the request line.
fn path_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b))
}

/// Decodes `pake_share`'s `result`.
pub fn parse_share(r: &serde_json::Map<String, Value>) -> Result<ShareReply, TpapError> {
    let dev_confirm = b64_field(r, "dev_confirm")?;
    let stok = session_token(r).ok_or(TpapError::Missing("stok"))?;
    if stok.len() > 256 || !path_safe(&stok) {
        return Err(TpapError::BadField {
            field: "stok",
            detail: "not a token that can stand in a request path".into(),
        });
    }
    let seq = r
        .get("start_seq")
        .and_then(int_of)
        .ok_or(TpapError::Missing("start_seq"))?;
    let start_seq = u32::try_from(seq).map_err(|_| TpapError::BadField {
        field: "start_seq",
        detail: format!("{seq} is not a 32-bit sequence number"),
    })?;
    Ok(ShareReply {
        dev_confirm,
        stok,
        start_seq,
    })
}

/// What one `/ds` reply body is, before it is trusted.
#[derive(Debug, Clone, PartialEq)]
pub enum DsReply {
    /// The opened JSON.
    Sealed(Value),
    /// The device answered unsealed JSON with this `error_code` (its way of
    /// saying the session is gone).
    Unsealed(i64),
}

/// Opens a `/ds` reply to the request sent with `seq`: unsealed JSON with
/// an `error_code` (the device no longer knows the session), or a sealed
/// body whose tag, number and JSON are all checked. Pure, for fuzzing.
pub fn open_ds_reply(sealer: &Sealer, seq: u32, body: &[u8]) -> Result<DsReply, TpapError> {
    // A sealed body starts with its sequence number; `{` there would mean a
    // number of at least 0x7B000000, which no session reaches.
    if body.first() == Some(&b'{') {
        if let Ok(v) = serde_json::from_slice::<Value>(body) {
            if let Some(code) = v.get("error_code").and_then(int_of) {
                return Ok(DsReply::Unsealed(code));
            }
        }
    }
    let plain = sealer.open_reply(seq, body)?;
    let v: Value = serde_json::from_slice(&plain).map_err(|e| TpapError::BadField {
        field: "reply",
        detail: format!("the opened reply is not JSON ({e})"),
    })?;
    Ok(DsReply::Sealed(v))
}

/// The body of a `login` post, `{"method":"login","params":{…}}`, with the
/// params in the order given: plugp100's order (`sub_method` first), which
/// a device that reads the body as a stream rather than a map also takes.
pub fn login_body(params: &[(&str, Value)]) -> Vec<u8> {
    let mut out = br#"{"method":"login","params":{"#.to_vec();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Strings and JSON values always serialize.
        out.extend_from_slice(&serde_json::to_vec(k).unwrap_or_default());
        out.push(b':');
        out.extend_from_slice(&serde_json::to_vec(v).unwrap_or_default());
    }
    out.extend_from_slice(b"}}");
    out
}

/// A SMART request as plugp100 sends it: `params` always present (`null`
/// when there are none), at the top and in each request of a
/// `multipleRequest`. Python-kasa leaves it out, which devices take; a TPAP
/// server modelled on plugp100 may not.
pub fn with_params(request: &Value) -> Value {
    let mut r = request.clone();
    let add = |v: &mut Value| {
        if let Some(o) = v.as_object_mut() {
            o.entry("params").or_insert(Value::Null);
        }
    };
    add(&mut r);
    if r.get("method").and_then(Value::as_str) == Some("multipleRequest") {
        if let Some(list) = r
            .get_mut("params")
            .and_then(|p| p.get_mut("requests"))
            .and_then(Value::as_array_mut)
        {
            list.iter_mut().for_each(add);
        }
    }
    r
}

/// What a `/ds` reply means for the request.
#[derive(Debug, Clone, PartialEq)]
pub enum DsOutcome {
    /// The session is gone (this code): handshake again.
    Renew(i64),
    /// The device's answer, for the SMART layer to read.
    Answer(Value),
}

/// Sorts an opened `/ds` reply. An unsealed code other than a renewal is
/// the device's answer, as plugp100 takes any JSON reply, so the SMART
/// layer reads it as it reads a sealed one (a refused `multipleRequest`
/// then falls back to single requests). Only a failure may travel
/// unsealed: a success outside the seal is refused, since anyone on the
/// path could have written it.
pub fn ds_outcome(reply: DsReply) -> Result<DsOutcome, TpapError> {
    match reply {
        DsReply::Unsealed(code) if RENEW_CODES.contains(&code) => Ok(DsOutcome::Renew(code)),
        DsReply::Unsealed(0) => Err(TpapError::BadField {
            field: "reply",
            detail: "error_code 0 outside the seal".into(),
        }),
        DsReply::Unsealed(code) => Ok(DsOutcome::Answer(json!({ "error_code": code }))),
        DsReply::Sealed(v) => match v.get("error_code").and_then(int_of) {
            Some(code) if RENEW_CODES.contains(&code) => Ok(DsOutcome::Renew(code)),
            _ => Ok(DsOutcome::Answer(v)),
        },
    }
}

struct Session {
    sealer: Sealer,
    path: String,
    next_seq: u32,
}

/// TPAP over HTTP to one device, implementing [`Transport`].
pub struct TpapTransport {
    host: String,
    port: u16,
    connect_timeout: Duration,
    http: HttpClient,
    credentials: Option<Credentials>,
    session: Option<Session>,
    announce: Option<Announce>,
    handshakes: u64,
}

impl fmt::Debug for TpapTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpapTransport")
            .field("addr", &self.http.address())
            .field("credentials", &self.credentials)
            .field("session", &self.session.is_some())
            .finish()
    }
}

fn random<const N: usize>(addr: &str) -> Result<[u8; N], KasaError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KasaError::Io {
        addr: addr.to_string(),
        op: "drawing random handshake bytes".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(b)
}

impl TpapTransport {
    /// A transport to `host:port` (80 on real devices) with the TP-Link
    /// account `credentials` (`None`: blank, which only a device keyed with
    /// its own default passcode accepts). Connecting is bounded by
    /// `connect_timeout` and by each request's deadline.
    pub fn new(
        host: &str,
        port: u16,
        credentials: Option<Credentials>,
        connect_timeout: Duration,
    ) -> TpapTransport {
        TpapTransport {
            host: host.to_string(),
            port,
            connect_timeout,
            http: HttpClient::new(host, port, connect_timeout),
            credentials,
            session: None,
            announce: None,
            handshakes: 0,
        }
    }

    /// How many handshakes were started (for tests and benchmarks).
    pub fn handshakes(&self) -> u64 {
        self.handshakes
    }

    /// Whether a session is established.
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// What the device said to `discover` at the last handshake.
    pub fn announce(&self) -> Option<&Announce> {
        self.announce.as_ref()
    }

    fn err(&self, op: &str, e: TpapError) -> KasaError {
        KasaError::Tpap {
            addr: self.http.address().to_string(),
            op: op.to_string(),
            source: e,
        }
    }

    fn login(
        &mut self,
        params: &[(&str, Value)],
        op: &str,
        deadline: Instant,
    ) -> Result<LoginReply, KasaError> {
        let bytes = login_body(params);
        let r = self
            .http
            .post_as("/", &bytes, None, &JSON_BODY, deadline, op)?;
        let r = expect_ok(self.http.address(), op, r)?;
        let v: Value = serde_json::from_slice(&r.body).map_err(|e| {
            self.err(
                op,
                TpapError::BadField {
                    field: "reply",
                    detail: format!("not JSON ({e})"),
                },
            )
        })?;
        parse_login_reply(&v).map_err(|e| self.err(op, e))
    }

    /// A login step answered with an `error_code`: a code that means a
    /// refused login (`-1501` and the others python-kasa and plugp100 take
    /// as wrong credentials) is the account's refusal, said as such and
    /// never retried within a cycle; anything else is the device's error.
    fn refused_code(&self, op: &str, code: i64) -> KasaError {
        if is_auth_error(code) {
            return self.auth_refused(code, None, None);
        }
        KasaError::Smart {
            addr: self.http.address().to_string(),
            method: format!("login {op}"),
            code,
        }
    }

    /// Runs discover, pake_register and pake_share and keeps the session,
    /// before `deadline`. Public so a benchmark can time it apart.
    pub fn handshake(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.session = None;
        self.handshakes += 1;
        let result = self.handshake_inner(deadline);
        if result.is_err() {
            self.http.close();
        }
        result
    }

    fn handshake_inner(&mut self, deadline: Instant) -> Result<(), KasaError> {
        let addr = self.http.address().to_string();
        let a = match self.login(&[("sub_method", json!("discover"))], "discover", deadline)? {
            LoginReply::Ok(r) => parse_discover(&r).map_err(|e| self.err("discover", e))?,
            LoginReply::Refused { .. } => return Err(self.refused_code("discover", LOGIN_REFUSED)),
            LoginReply::Code(c) => return Err(self.refused_code("discover", c)),
        };
        if a.tls != 0 {
            return Err(KasaError::Unsupported {
                addr,
                model: "device".into(),
                what: format!(
                    "TPAP over TLS mode {} ({}, port {}): cameras and hubs speak it; this build \
                     speaks TPAP on plain HTTP (mode 0) only",
                    a.tls,
                    tls_mode_name(a.tls),
                    if a.port == 0 { 4433 } else { a.port }
                ),
            });
        }
        if a.port != 0 && a.port != self.port {
            log::info!("{addr}: TPAP session port {} announced; using it", a.port);
            self.port = a.port;
            self.http = HttpClient::new(&self.host, a.port, self.connect_timeout);
        }
        let passcode = a.passcode().map_err(|e| self.err("discover", e))?;
        let user_random: [u8; 32] = random(&addr)?;
        let register = [
            ("sub_method", json!("pake_register")),
            ("username", json!(a.register_username())),
            ("user_random", json!(base64_encode(&user_random))),
            ("cipher_suites", json!([1])),
            ("encryption", json!(["aes_128_ccm"])),
            ("passcode_type", json!(a.passcode_type())),
            ("stok", Value::Null),
        ];
        let dac = a.dac;
        self.announce = Some(a.clone());
        let reg = match self.login(&register, "pake_register", deadline)? {
            LoginReply::Ok(r) => parse_register(&r).map_err(|e| self.err("pake_register", e))?,
            LoginReply::Refused { failed, remaining } => {
                return Err(self.auth_refused(LOGIN_REFUSED, failed, remaining))
            }
            LoginReply::Code(c) => return Err(self.refused_code("pake_register", c)),
        };
        let (user, pass) = match &self.credentials {
            Some(c) => (c.username.clone(), c.password.clone()),
            None => (String::new(), String::new()),
        };
        let credential = match passcode {
            Passcode::Default => default_passcode(&a.mac),
            Passcode::Account | Passcode::SharedToken => {
                pre_hash(reg.extra_crypt.as_ref(), &user, &pass, &a.mac)
            }
        }
        .map_err(|e| self.err("pake_register", e))?;
        let secret = derive_secret(credential.as_bytes(), &reg.dev_salt, reg.iterations);
        let x = loop {
            if let Some(x) = scalar_from_random(&random::<32>(&addr)?) {
                break x;
            }
        };
        let user_share = client_share(&x, &secret);
        let ex = Exchange {
            suite: reg.suite,
            user_random: &user_random,
            dev_random: &reg.dev_random,
            user_share: &user_share,
            dev_share: &reg.dev_share,
        };
        let keys = client_keys(&x, &secret, &ex).map_err(|e| self.err("pake_register", e))?;
        let mut share = vec![
            ("sub_method", json!("pake_share")),
            ("user_share", json!(base64_encode(&user_share))),
            ("user_confirm", json!(base64_encode(&keys.user_confirm))),
        ];
        if dac {
            // The device then adds a certificate proof; like a device that
            // sends none, it is not checked here (plugp100 checks it only
            // when the device sends its CA).
            share.push(("dac_nonce", json!(base64_encode(&random::<32>(&addr)?))));
        }
        let done = match self.login(&share, "pake_share", deadline)? {
            LoginReply::Ok(r) => parse_share(&r).map_err(|e| self.err("pake_share", e))?,
            LoginReply::Refused { failed, remaining } => {
                return Err(self.auth_refused(LOGIN_REFUSED, failed, remaining))
            }
            LoginReply::Code(c) => return Err(self.refused_code("pake_share", c)),
        };
        if !same(&done.dev_confirm, &keys.dev_confirm) {
            return Err(KasaError::Auth {
                addr,
                source: AuthDetail::Tpap {
                    username: user,
                    code: 0,
                    failed: None,
                    remaining: None,
                    confirm: true,
                },
            });
        }
        self.session = Some(Session {
            sealer: Sealer::new(reg.suite, reg.cipher, &keys.shared_key),
            path: format!("/stok={}/ds", done.stok),
            next_seq: done.start_seq,
        });
        Ok(())
    }

    fn auth_refused(&self, code: i64, failed: Option<i64>, remaining: Option<i64>) -> KasaError {
        KasaError::Auth {
            addr: self.http.address().to_string(),
            source: AuthDetail::Tpap {
                username: self
                    .credentials
                    .as_ref()
                    .map(|c| c.username.clone())
                    .unwrap_or_default(),
                code,
                failed,
                remaining,
                confirm: false,
            },
        }
    }

    /// Sends one plaintext body and returns the opened reply, handshaking
    /// first when needed and once more when the device dropped the session.
    fn request_value(
        &mut self,
        plain: &[u8],
        deadline: Instant,
        op: &str,
    ) -> Result<Value, KasaError> {
        let result = self.request_inner(plain, deadline, op);
        distrust_on_err(result, &mut self.session, &mut self.http)
    }

    fn request_inner(
        &mut self,
        plain: &[u8],
        deadline: Instant,
        op: &str,
    ) -> Result<Value, KasaError> {
        let addr = self.http.address().to_string();
        let mut renewed = false;
        loop {
            if self.session.is_none() {
                self.handshake(deadline)?;
            }
            let Some(s) = self.session.as_mut() else {
                return Err(self.err(op, TpapError::Missing("stok")));
            };
            let seq = s.next_seq;
            let Some(next) = seq.checked_add(1) else {
                // Numbers used up: a fresh session starts from the device's.
                self.session = None;
                if renewed {
                    return Err(self.err(op, TpapError::SeqExhausted));
                }
                renewed = true;
                continue;
            };
            s.next_seq = next;
            let body = s.sealer.seal(seq, plain);
            let path = s.path.clone();
            let r = self.http.post(&path, &body, None, deadline, op)?;
            let renew = match r.status {
                200 => None,
                401 | 403 => Some(format!("HTTP {}", r.status)),
                status => {
                    return Err(KasaError::HttpStatus {
                        addr,
                        op: op.to_string(),
                        status,
                    });
                }
            };
            let renew = match renew {
                Some(why) => Some(why),
                None => {
                    let Some(s) = self.session.as_ref() else {
                        return Err(self.err(op, TpapError::Missing("stok")));
                    };
                    let reply = open_ds_reply(&s.sealer, seq, &r.body);
                    match reply.and_then(ds_outcome).map_err(|e| self.err(op, e))? {
                        DsOutcome::Renew(code) => Some(format!("error_code {code}")),
                        DsOutcome::Answer(v) => return Ok(v),
                    }
                }
            };
            let why = renew.unwrap_or_default();
            self.session = None;
            if renewed {
                return Err(self.err(
                    op,
                    TpapError::BadField {
                        field: "session",
                        detail: format!("dropped again ({why}) right after a fresh handshake"),
                    },
                ));
            }
            log::debug!("{addr}: TPAP session dropped by the device ({why}); handshaking again");
            renewed = true;
        }
    }
}

impl Transport for TpapTransport {
    fn address(&self) -> &str {
        self.http.address()
    }

    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError> {
        let (op, body) = encode_request(self.http.address(), &with_params(request))?;
        self.request_value(&body, deadline, &op)
    }

    fn close(&mut self) {
        self.session = None;
        self.http.close();
    }
}

#[cfg(test)]
mod tests;
