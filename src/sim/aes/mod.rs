//! The simulated device's AES ("securePassthrough") server: `POST /app` with
//! `handshake` (the client's RSA public key in, the session's AES key and IV
//! out, encrypted to it), then `securePassthrough` requests: `login_device`
//! (checked against the account the device holds, in login version 1 or 2
//! form) returns a token; every other request must carry it in
//! `/app?token=...` and the session cookie.
//!
//! The faults: the common ones, plus `badauth` (every login refused with
//! `-1501`), `expire:N` (the session ends after N requests: `error_code`
//! 9999 SESSION_TIMEOUT, as devices answer) and `badsig` (the replies are
//! encrypted with another key). The crypto is the client's own
//! ([`crate::kasa::transport::aes`]), checked against python-kasa's vectors; python-kasa's
//! client drives this server in the interop gate.
//!
//! What it keeps between requests is in `session.rs`, which the plug's
//! state holds.

pub(super) mod session;

use std::net::TcpStream;

use serde_json::{json, Value};

use super::fault::Fault;
use super::klap::session::random16;
use super::klap::{answer_json, delay, handshake_fault, serve_http, Answer};
use super::state::{lock_or_recover, SimState};
use crate::kasa::credentials::Credentials;
use crate::kasa::transport::aes::{self, AesCipher};
use crate::kasa::transport::http::{self, RequestHead};
use session::Session;

/// The session life announced in the `TIMEOUT` cookie (what Tapo firmware
/// sends: 24 minutes).
const SESSION_S: u64 = 1440;

const SESSION_TIMEOUT: i64 = 9999;
const LOGIN_ERROR: i64 = -1501;
const AES_DECODE_FAIL: i64 = -1005;
const JSON_DECODE_FAIL: i64 = -1003;
const INVALID_PUBLIC_KEY: i64 = -1010;
const UNKNOWN_METHOD: i64 = -1002;

fn response(cookie: Option<&str>, body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let mut out =
        String::from("HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=UTF-8\r\n");
    if let Some(c) = cookie {
        out.push_str(&format!(
            "Set-Cookie: {}={c};TIMEOUT={SESSION_S}\r\n",
            http::SESSION_COOKIE
        ));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    out.into_bytes()
}

fn status(code: u16) -> Vec<u8> {
    let reason = if code == 404 {
        "Not Found"
    } else {
        "Bad Request"
    };
    format!("HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn code(c: i64) -> Answer {
    Answer::Send(response(None, &json!({ "error_code": c })))
}

fn hex_token() -> String {
    random16().iter().map(|b| format!("{b:02X}")).collect()
}

/// Serves AES requests on one connection until it closes or errs.
pub(super) fn serve(stream: &mut TcpStream, state: &SimState) {
    serve_http(stream, state, handle);
}

fn handle(state: &SimState, head: &RequestHead, body: &[u8]) -> Answer {
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    if head.method != "POST" || path != "/app" {
        return Answer::Send(status(404));
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return code(JSON_DECODE_FAIL);
    };
    let token = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string);
    match req.get("method").and_then(Value::as_str) {
        Some("handshake") => handshake(state, &req),
        Some("securePassthrough") => passthrough(state, head, token.as_deref(), &req),
        _ => code(UNKNOWN_METHOD),
    }
}

fn handshake(state: &SimState, req: &Value) -> Answer {
    let Some(fault) = handshake_fault(state) else {
        return Answer::Close;
    };
    if fault == Some(Fault::Blackhole) {
        return Answer::Silence;
    }
    let Some(pem) = req.pointer("/params/key").and_then(Value::as_str) else {
        return code(INVALID_PUBLIC_KEY);
    };
    let Ok((cipher, key_iv)) = AesCipher::random() else {
        return Answer::Close;
    };
    let Ok(sealed) = aes::seal_handshake_key(pem, &key_iv) else {
        return code(INVALID_PUBLIC_KEY);
    };
    let id = hex_token();
    {
        let mut s = lock_or_recover(&state.shared.aes);
        s.open(
            id.clone(),
            Session {
                cipher,
                token: None,
                spoiled: false,
                requests: 0,
            },
        );
    }
    delay(&fault);
    Answer::Send(response(
        Some(&id),
        &json!({"error_code": 0, "result": {"key": sealed}}),
    ))
}

/// Whether `params` of a `login_device` prove `c`, in either login version.
fn login_matches(params: &Value, c: &Credentials) -> bool {
    let text = |k: &str| params.get(k).and_then(Value::as_str);
    let v1 = aes::login_params(c, aes::LoginVersion::V1);
    let v2 = aes::login_params(c, aes::LoginVersion::V2);
    text("username") == v2["username"].as_str()
        && (text("password2").is_some_and(|p| Some(p) == v2["password2"].as_str())
            || text("password").is_some_and(|p| Some(p) == v1["password"].as_str()))
}

fn passthrough(state: &SimState, head: &RequestHead, token: Option<&str>, req: &Value) -> Answer {
    let Some(text) = req.pointer("/params/request").and_then(Value::as_str) else {
        return code(JSON_DECODE_FAIL);
    };
    let expire = match state.lock().fault {
        Some(Fault::Expire(n)) => Some(n),
        _ => None,
    };
    // Open the request within its session.
    let (cipher, logged_in) = {
        let mut sessions = lock_or_recover(&state.shared.aes);
        let Some(s) = sessions.find(head.session_id.as_deref()) else {
            return code(SESSION_TIMEOUT);
        };
        if s.spoiled {
            return code(SESSION_TIMEOUT);
        }
        s.requests += 1;
        if expire.is_some_and(|n| s.requests > n) {
            sessions.remove(head.session_id.as_deref());
            return code(SESSION_TIMEOUT);
        }
        (
            s.cipher.clone(),
            s.token.is_some() && s.token.as_deref() == token,
        )
    };
    let Ok(plain) = cipher.decrypt(text) else {
        return code(AES_DECODE_FAIL);
    };
    let Ok(inner) = serde_json::from_slice::<Value>(&plain) else {
        return code(JSON_DECODE_FAIL);
    };
    if inner.get("method").and_then(Value::as_str) == Some("login_device") {
        return login(state, head, &cipher, &inner);
    }
    if !logged_in {
        // No token, or another session's: the device wants a new login.
        return code(SESSION_TIMEOUT);
    }
    let (plain, fault) = match answer_json(state, &inner) {
        Ok(answered) => answered,
        Err(answer) => return answer,
    };
    let sealed = if fault == Some(Fault::BadSig) {
        // No signature in AES: a reply under another key is the nearest
        // thing, and just as unreadable.
        let other = AesCipher::new([0x5a; 16], [0xa5; 16]);
        other.encrypt(&plain)
    } else {
        cipher.encrypt(&plain)
    };
    delay(&fault);
    let bytes = response(
        None,
        &json!({"error_code": 0, "result": {"response": sealed}}),
    );
    if fault == Some(Fault::Drop) {
        Answer::Half(bytes)
    } else {
        Answer::Send(bytes)
    }
}

fn login(state: &SimState, head: &RequestHead, cipher: &AesCipher, inner: &Value) -> Answer {
    let fault = state.lock().fault.clone();
    if fault == Some(Fault::Blackhole) {
        return Answer::Silence;
    }
    let params = inner.get("params").cloned().unwrap_or(Value::Null);
    let held = if fault == Some(Fault::BadAuth) {
        &state.shared.bad_creds
    } else {
        &state.shared.creds
    };
    let ok = login_matches(&params, held);
    let reply = {
        let mut sessions = lock_or_recover(&state.shared.aes);
        let Some(s) = sessions.find(head.session_id.as_deref()) else {
            return code(SESSION_TIMEOUT);
        };
        if ok {
            let token = hex_token();
            s.token = Some(token.clone());
            json!({"error_code": 0, "result": {"token": token}})
        } else {
            s.spoiled = true;
            json!({ "error_code": LOGIN_ERROR })
        }
    };
    delay(&fault);
    Answer::Send(response(
        None,
        &json!({"error_code": 0, "result": {"response": cipher.encrypt(reply.to_string().as_bytes())}}),
    ))
}
