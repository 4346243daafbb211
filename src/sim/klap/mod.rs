//! The simulated device's KLAP server: HTTP/1.1 on the TCP port with
//! `/app/handshake1`, `/app/handshake2` and `/app/request?seq=N`, sessions
//! keyed by the `TP_SESSIONID` cookie, and the KLAP faults (`badauth`,
//! `expire`, `badsig`) besides the common ones. The crypto is the client's
//! own ([`crate::kasa::transport::klap`]), which is checked against python-kasa's
//! vectors; python-kasa's client drives this server in the interop gate.
//!
//! What it keeps between requests (and the session table the other HTTP
//! servers share) is in `session.rs`, which the plug's state holds.

pub(super) mod session;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::fault::Fault;
use super::state::{lock_or_recover, SimState};
use super::{iot, smart};
use crate::kasa::transport::http::{self, RequestHead, MAX_HEAD};
use crate::kasa::transport::klap::{handshake1_hash, handshake2_hash, KlapCipher, SEED_LEN};
use session::{random16, Session};

/// The session life announced in the `TIMEOUT` cookie, as real devices do.
const SESSION_S: u64 = 86_400;

/// What to do with one request.
pub(super) enum Answer {
    /// Send these bytes.
    Send(Vec<u8>),
    /// Send the first half, then close (the `drop` fault).
    Half(Vec<u8>),
    /// Never answer, keep the connection (the `blackhole` fault).
    Silence,
    /// Close without answering (the `flaky` fault, nonsense).
    Close,
}

fn response(status: u16, cookie: Option<&str>, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\n");
    if let Some(c) = cookie {
        out.push_str(&format!(
            "Set-Cookie: {}={c};TIMEOUT={SESSION_S}\r\n",
            http::SESSION_COOKIE
        ));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Serves KLAP requests on one connection until it closes or errs.
pub(super) fn serve(stream: &mut TcpStream, state: &SimState) {
    serve_http(stream, state, handle);
}

/// Serves HTTP requests on one connection with `handle` until it closes or
/// errs (the AES server shares this loop).
pub(super) fn serve_http(
    stream: &mut TcpStream,
    state: &SimState,
    handle: fn(&SimState, &RequestHead, &[u8]) -> Answer,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request: head, then exactly its body; extra bytes stay in buf.
        let end = loop {
            if let Some(e) = http::find_head_end(&buf) {
                break e;
            }
            if buf.len() > MAX_HEAD {
                let _ = stream.write_all(&response(400, None, b""));
                return;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let Ok(head) = http::parse_request_head(&buf[..end]) else {
            let _ = stream.write_all(&response(400, None, b""));
            return;
        };
        while buf.len() < end + head.content_length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf[end..end + head.content_length].to_vec();
        buf.drain(..end + head.content_length);
        if state.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        match handle(state, &head, &body) {
            Answer::Send(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Answer::Half(bytes) => {
                let _ = stream.write_all(&bytes[..bytes.len() / 2]);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Answer::Silence => {}
            Answer::Close => return,
        }
        if head.close {
            return;
        }
    }
}

/// The fault for a handshake: `None` drops it (flaky).
pub(super) fn handshake_fault(state: &SimState) -> Option<Option<Fault>> {
    let mut g = state.lock();
    g.handshakes += 1;
    if g.flaky_left > 0 {
        g.flaky_left -= 1;
        return None;
    }
    Some(g.fault.clone())
}

/// One opened request over HTTP (KLAP or AES): counts it, applies the fault
/// in force and answers it in the device's own JSON, ready to seal. `Err` is
/// what to do instead when the fault leaves nothing to seal (flaky, blackhole).
pub(super) fn answer_json(
    state: &SimState,
    req: &Value,
) -> Result<(Vec<u8>, Option<Fault>), Answer> {
    let smart_model = state.lock().is_smart();
    let switch = if smart_model {
        smart::is_switch(req)
    } else {
        iot::is_switch(req)
    };
    let (now, fault) = state.arrive(switch);
    let Some(fault) = fault else {
        return Err(Answer::Close);
    };
    let reply = match (&fault, smart_model) {
        (Some(Fault::Blackhole), _) => return Err(Answer::Silence),
        (Some(Fault::Err), true) => json!({"error_code": -1}),
        (Some(Fault::Err), false) => iot::error_reply(req),
        (_, true) => state.lock().handle_smart(req, now),
        (_, false) => state.lock().handle_iot(req, now),
    };
    let plain = match fault {
        Some(Fault::Garbage) => iot::garbage(),
        _ => reply.to_string().into_bytes(),
    };
    Ok((plain, fault))
}

pub(super) fn delay(fault: &Option<Fault>) {
    if let Some(Fault::Slow(d)) = fault {
        std::thread::sleep(*d);
    }
}

fn handle(state: &SimState, head: &RequestHead, body: &[u8]) -> Answer {
    if head.method != "POST" {
        return Answer::Send(response(404, None, b""));
    }
    let (path, query) = head
        .target
        .split_once('?')
        .unwrap_or((head.target.as_str(), ""));
    match path {
        "/app/handshake1" => handshake1(state, body),
        "/app/handshake2" => handshake2(state, head, body),
        "/app/request" => request(state, head, query, body),
        _ => Answer::Send(response(404, None, b"")),
    }
}

fn handshake1(state: &SimState, body: &[u8]) -> Answer {
    let Some(fault) = handshake_fault(state) else {
        return Answer::Close;
    };
    if fault == Some(Fault::Blackhole) {
        return Answer::Silence;
    }
    let Ok(local) = <[u8; SEED_LEN]>::try_from(body) else {
        return Answer::Send(response(400, None, b""));
    };
    let remote = random16();
    let bad_auth = fault == Some(Fault::BadAuth);
    let auth = if bad_auth {
        &state.shared.bad_auth
    } else {
        &state.shared.auth
    };
    let version = state.lock().klap_version();
    let hash = handshake1_hash(version, &local, &remote, auth.as_bytes());
    let id: String = random16().iter().map(|b| format!("{b:02X}")).collect();
    {
        let mut s = lock_or_recover(&state.shared.klap);
        s.open(
            id.clone(),
            Session {
                local,
                remote,
                bad_auth,
                cipher: None,
                requests: 0,
            },
        );
    }
    let mut out = remote.to_vec();
    out.extend_from_slice(&hash);
    delay(&fault);
    Answer::Send(response(200, Some(&id), &out))
}

fn handshake2(state: &SimState, head: &RequestHead, body: &[u8]) -> Answer {
    let fault = state.lock().fault.clone();
    if fault == Some(Fault::Blackhole) {
        return Answer::Silence;
    }
    let version = state.lock().klap_version();
    let mut sessions = lock_or_recover(&state.shared.klap);
    let Some(s) = sessions.find(head.session_id.as_deref()) else {
        return Answer::Send(response(403, None, b""));
    };
    let auth = if s.bad_auth {
        &state.shared.bad_auth
    } else {
        &state.shared.auth
    };
    if body != handshake2_hash(version, &s.local, &s.remote, auth.as_bytes()) {
        sessions.remove(head.session_id.as_deref());
        return Answer::Send(response(403, None, b""));
    }
    s.cipher = Some(KlapCipher::new(&s.local, &s.remote, auth.as_bytes()));
    drop(sessions);
    delay(&fault);
    Answer::Send(response(200, None, b""))
}

fn request(state: &SimState, head: &RequestHead, query: &str, body: &[u8]) -> Answer {
    let Some(seq) = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("seq="))
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return Answer::Send(response(400, None, b""));
    };
    // Open the request within its session.
    let (cipher, expired) = {
        let mut sessions = lock_or_recover(&state.shared.klap);
        let Some(s) = sessions.find(head.session_id.as_deref()) else {
            return Answer::Send(response(403, None, b""));
        };
        let Some(cipher) = s.cipher.clone() else {
            return Answer::Send(response(403, None, b""));
        };
        s.requests += 1;
        let limit = match state.lock().fault {
            Some(Fault::Expire(n)) => Some(n),
            _ => None,
        };
        let expired = limit.is_some_and(|n| s.requests > n);
        if expired {
            sessions.remove(head.session_id.as_deref());
        }
        (cipher, expired)
    };
    if expired {
        // Like a device whose session timed out: a security error.
        return Answer::Send(response(403, None, b""));
    }
    let Ok(plain) = cipher.open(seq, body) else {
        return Answer::Send(response(400, None, b""));
    };
    let Ok(req) = serde_json::from_slice::<Value>(&plain) else {
        return Answer::Send(response(400, None, b""));
    };
    let (plain, fault) = match answer_json(state, &req) {
        Ok(answered) => answered,
        Err(answer) => return answer,
    };
    let mut sealed = cipher.seal(seq, &plain);
    if fault == Some(Fault::BadSig) {
        sealed[0] ^= 0x55;
    }
    delay(&fault);
    let bytes = response(200, None, &sealed);
    if fault == Some(Fault::Drop) {
        Answer::Half(bytes)
    } else {
        Answer::Send(bytes)
    }
}
