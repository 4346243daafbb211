//! The simulated device's TPAP server: `POST /` with the `login` steps
//! (`discover`, `pake_register`, `pake_share`), then sealed requests to
//! `/stok=<stok>/ds`. The device side of the exchange is inferred from
//! plugp100's client (docs/design.md §7.7); its crypto is the client's own
//! ([`crate::kasa::transport::tpap::crypto`]), which is checked against plugp100's
//! vectors, and plugp100's client drives this server in the TPAP interop gate.
//!
//! The faults: the common ones, plus `badauth` (the device holds another
//! password: every login is refused with `-2203` and a count of failed and
//! remaining attempts), `expire:N` (the session ends after N requests: the
//! device answers, in turn, unsealed `error_code` -40401, a sealed 9999 and
//! an unsealed -40413) and `badtag` (every reply's authentication tag is
//! wrong).
//!
//! It is as strict as a device modelled on plugp100's client may be: the
//! login posts must be `application/json` and carry every field plugp100
//! sends, with its type (`pake_register`: the md5 hex of `admin`,
//! `passcode_type` `userpw`, 32 random bytes in base64, the offered suites
//! and ciphers as lists, `stok` null); sealed requests must be
//! `application/octet-stream`, numbered exactly one after the last (from
//! `start_seq`), and hold a JSON object with `method` and `params` (plugp100
//! always sends `params`, `null` when there are none). Anything else is
//! refused (HTTP 400, `-1008`, or `-40413` for a number out of turn), so a
//! client that drifts from plugp100's requests fails the tests.
//!
//! What it keeps between requests (the account record, a login under way,
//! the sessions) is in `session.rs`, which the plug's state holds.

pub(super) mod session;

use std::net::TcpStream;

use serde_json::{json, Value};

use super::fault::Fault;
use super::klap::session::random16;
use super::klap::{answer_json, delay, handshake_fault, serve_http, Answer};
use super::state::{lock_or_recover, SimState};
use crate::kasa::credentials::{base64_decode, base64_encode};
use crate::kasa::transport::http::RequestHead;
use crate::kasa::transport::tpap::crypto::{
    device_keys, device_share, same, scalar_from_random, Exchange, Sealer, SessionCipher, Suite,
    SHARE_LEN,
};
use crate::kasa::transport::tpap::{LOGIN_REFUSED, RENEW_CODES};
use session::{Flavour, Pending, Session, ITERATIONS};

/// Failed logins a device allows before it locks the client out (TP-Link's
/// AES login and cameras suspend after about ten).
const MAX_FAILED: i64 = 10;

/// `-40404` DEVICE_BLOCKED: too many failed logins.
const DEVICE_BLOCKED: i64 = -40404;

fn reply(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_reply(v: &Value) -> Answer {
    Answer::Send(reply(
        200,
        "application/json;charset=UTF-8",
        v.to_string().as_bytes(),
    ))
}

fn code(c: i64) -> Answer {
    json_reply(&json!({"error_code": c}))
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..16].copy_from_slice(&random16());
    b[16..].copy_from_slice(&random16());
    b
}

/// Serves TPAP requests on one connection until it closes or errs.
pub(super) fn serve(stream: &mut TcpStream, state: &SimState) {
    serve_http(stream, state, handle);
}

/// The `username` of `pake_register` on a device with `user_hash_type` 0:
/// the md5 hex of `admin`.
const REGISTER_USERNAME: &str = "21232f297a57a5a743894a0e4a801fc3";

fn bad_request() -> Answer {
    Answer::Send(reply(400, "text/html", b""))
}

fn handle(state: &SimState, head: &RequestHead, body: &[u8]) -> Answer {
    if head.method != "POST" {
        return Answer::Send(reply(404, "text/html", b""));
    }
    if head.target == "/" {
        if head.content_type.as_deref() != Some("application/json") {
            return bad_request();
        }
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return code(-1003);
        };
        if req.get("method").and_then(Value::as_str) != Some("login") {
            return code(-1002);
        }
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        return match params.get("sub_method").and_then(Value::as_str) {
            Some("discover") => discover(state),
            Some("pake_register") => register(state, &params),
            Some("pake_share") => share(state, &params),
            _ => code(-1008),
        };
    }
    match head
        .target
        .strip_prefix("/stok=")
        .and_then(|t| t.strip_suffix("/ds"))
    {
        Some(_) if head.content_type.as_deref() != Some("application/octet-stream") => {
            bad_request()
        }
        Some(stok) => request(state, stok, body),
        None => Answer::Send(reply(404, "text/html", b"")),
    }
}

fn discover(state: &SimState) -> Answer {
    let g = state.lock();
    let mac = g.mac.clone();
    drop(g);
    json_reply(&json!({"error_code": 0, "result": {
        "mac": mac,
        "tpap": {"tls": 0, "port": state.shared.port, "dac": false, "pake": [2], "user_hash_type": 0}
    }}))
}

fn register(state: &SimState, params: &Value) -> Answer {
    let Some(fault) = handshake_fault(state) else {
        return Answer::Close;
    };
    if fault == Some(Fault::Blackhole) {
        return Answer::Silence;
    }
    let Some(user_random) = params
        .get("user_random")
        .and_then(Value::as_str)
        .and_then(base64_decode)
        .filter(|r| r.len() == 32)
    else {
        return code(-1008);
    };
    if !register_params_ok(params) {
        return code(-1008);
    }
    let bad_auth = fault == Some(Fault::BadAuth);
    let Some(tpap) = state.shared.tpap_accounts.as_ref() else {
        return code(-1002);
    };
    let account = if bad_auth { &tpap.1 } else { &tpap.0 };
    let y = loop {
        if let Some(y) = scalar_from_random(&random32()) {
            break y;
        }
    };
    let dev_random = random32();
    let dev_share = device_share(&y, &account.w0);
    let flavour = state.shared.tpap_flavour;
    let cipher = match flavour {
        Flavour::Md5CryptAes => SessionCipher::Aes128Ccm,
        Flavour::Sha256CryptChaCha => SessionCipher::ChaCha20Poly1305,
    };
    let result = json!({
        "dev_random": base64_encode(&dev_random),
        "dev_salt": base64_encode(&account.salt),
        "dev_share": base64_encode(&dev_share),
        "cipher_suites": 1,
        "iterations": ITERATIONS,
        "encryption": cipher.name(),
        "extra_crypt": account.extra_crypt,
    });
    lock_or_recover(&state.shared.tpap).pending = Some(Pending {
        user_random,
        dev_random,
        y,
        dev_share,
        bad_auth,
    });
    delay(&fault);
    json_reply(&json!({"error_code": 0, "result": result}))
}

/// The fields of `pake_register` besides `user_random`, as plugp100 sends
/// them to a device announcing `pake` [2] and `user_hash_type` 0.
fn register_params_ok(params: &Value) -> bool {
    let str_of = |k: &str| params.get(k).and_then(Value::as_str);
    let list_of = |k: &str| params.get(k).and_then(Value::as_array);
    str_of("username") == Some(REGISTER_USERNAME)
        && str_of("passcode_type") == Some("userpw")
        && list_of("cipher_suites").is_some_and(|l| l.iter().any(|s| s.as_i64() == Some(1)))
        && list_of("encryption").is_some_and(|l| !l.is_empty() && l.iter().all(Value::is_string))
        && params.get("stok").is_some_and(Value::is_null)
}

fn share(state: &SimState, params: &Value) -> Answer {
    let Some(p) = lock_or_recover(&state.shared.tpap).pending.take() else {
        return code(-1008);
    };
    let Some(tpap) = state.shared.tpap_accounts.as_ref() else {
        return code(-1002);
    };
    let account = if p.bad_auth { &tpap.1 } else { &tpap.0 };
    let b64 = |k: &str| {
        params
            .get(k)
            .and_then(Value::as_str)
            .and_then(base64_decode)
    };
    let (Some(user_share), Some(user_confirm)) = (b64("user_share"), b64("user_confirm")) else {
        return code(-1008);
    };
    // Suite 1 confirms with HMAC-SHA256.
    if user_confirm.len() != 32 {
        return code(-1008);
    }
    let Ok(user_share) = <[u8; SHARE_LEN]>::try_from(user_share.as_slice()) else {
        return code(-1008);
    };
    let flavour = state.shared.tpap_flavour;
    let cipher = match flavour {
        Flavour::Md5CryptAes => SessionCipher::Aes128Ccm,
        Flavour::Sha256CryptChaCha => SessionCipher::ChaCha20Poly1305,
    };
    let suite = match Suite::from_id(1) {
        Ok(s) => s,
        Err(_) => return code(-1001),
    };
    let ex = Exchange {
        suite,
        user_random: &p.user_random,
        dev_random: &p.dev_random,
        user_share: &user_share,
        dev_share: &p.dev_share,
    };
    let keys = device_keys(&p.y, &account.w0, &account.l, &ex);
    let keys = match keys {
        Ok(k) if same(&k.user_confirm, &user_confirm) => k,
        _ => {
            let mut t = lock_or_recover(&state.shared.tpap);
            if t.failed >= MAX_FAILED {
                return code(DEVICE_BLOCKED);
            }
            t.failed += 1;
            let failed = t.failed;
            drop(t);
            return json_reply(&json!({"error_code": LOGIN_REFUSED, "result": {
                "failedAttempts": failed, "remainAttempts": MAX_FAILED - failed}}));
        }
    };
    lock_or_recover(&state.shared.tpap).failed = 0;
    let stok: String = random16().iter().map(|b| format!("{b:02x}")).collect();
    let r = random16();
    let start_seq = u32::from(u16::from_be_bytes([r[0], r[1]])) + 1;
    lock_or_recover(&state.shared.tpap_sessions).open(
        stok.clone(),
        Session {
            sealer: Sealer::new(suite, cipher, &keys.shared_key),
            next_seq: start_seq,
            requests: 0,
        },
    );
    json_reply(&json!({"error_code": 0, "result": {
        "dev_confirm": base64_encode(&keys.dev_confirm),
        "stok": stok,
        "start_seq": start_seq,
    }}))
}

fn request(state: &SimState, stok: &str, body: &[u8]) -> Answer {
    let (sealer, seq, plain) = {
        let mut sessions = lock_or_recover(&state.shared.tpap_sessions);
        let Some(s) = sessions.find(Some(stok)) else {
            // A session this device does not know (it restarted, or the
            // token is forged): 401, the HTTP way of saying so.
            return Answer::Send(reply(401, "text/html", b""));
        };
        let Ok((seq, plain)) = s.sealer.open(body) else {
            return Answer::Send(reply(400, "text/html", b""));
        };
        if seq != s.next_seq {
            // A replayed request (the nonce was used) or one out of turn:
            // each request is numbered one after the last.
            return code(RENEW_CODES[2]);
        }
        s.next_seq = seq.saturating_add(1);
        s.requests += 1;
        let limit = match state.lock().fault {
            Some(Fault::Expire(n)) => Some(n),
            _ => None,
        };
        if limit.is_some_and(|n| s.requests > n) {
            // Each way a device says so, in turn: unsealed -40401, 9999
            // inside a sealed reply, unsealed -40413.
            let sealer = s.sealer.clone();
            sessions.remove(Some(stok));
            drop(sessions);
            let mut t = lock_or_recover(&state.shared.tpap);
            t.expirations += 1;
            return match t.expirations % 3 {
                1 => code(RENEW_CODES[0]),
                2 => {
                    let body = json!({"error_code": RENEW_CODES[1]}).to_string();
                    let sealed = sealer.seal(seq, body.as_bytes());
                    Answer::Send(reply(200, "application/octet-stream", &sealed))
                }
                _ => code(RENEW_CODES[2]),
            };
        }
        (s.sealer.clone(), seq, plain)
    };
    let Ok(req) = serde_json::from_slice::<Value>(&plain) else {
        return code(-1003);
    };
    if req.get("method").and_then(Value::as_str).is_none() || req.get("params").is_none() {
        return code(-1008);
    }
    let (plain, fault) = match answer_json(state, &req) {
        Ok(answered) => answered,
        Err(answer) => return answer,
    };
    let mut sealed = sealer.seal(seq, &plain);
    if fault == Some(Fault::BadTag) {
        if let Some(b) = sealed.last_mut() {
            *b ^= 0x5a;
        }
    }
    delay(&fault);
    let bytes = reply(200, "application/octet-stream", &sealed);
    if fault == Some(Fault::Drop) {
        Answer::Half(bytes)
    } else {
        Answer::Send(bytes)
    }
}
