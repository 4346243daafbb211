//! The TPAP transport end to end on loopback: `TpapTransport` and
//! `SmartDevice` against the simulated P110 and KP125M on firmware 1.4.x,
//! `open_device` choosing TPAP (or KLAP when the device does not prefer
//! TPAP), a refused login as one line and no retry, session expiry, a bad
//! tag, the dead-man, a sleepy plug woken by the 20002 probe, and a device
//! that announces a TLS mode this build does not speak.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;

use kasa_thermostat::kasa::credentials::Credentials;
use kasa_thermostat::kasa::device::{DeadmanKind, Device};
use kasa_thermostat::kasa::smart::SmartDevice;
use kasa_thermostat::kasa::transport::tpap::crypto::TpapError;
use kasa_thermostat::kasa::transport::tpap::TpapTransport;
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::kasa::TransportKind;
use kasa_thermostat::kasa::{open_device, KasaError, PlugHandle, PlugTarget, Timing};
use kasa_thermostat::msg::{Completion, PlugCommand, PlugState};
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};
use kasa_thermostat::Role;

use crate::util::kasa::{
    creds, fast_timing, next_outcome, raw_peer, sim_with_account, soon, toggle_and_read_back, PASS,
    USER,
};

/// The worker's schedule for TPAP: `fast_timing`'s short sleeps, with
/// budgets a PAKE handshake fits in when the test binary (client and
/// simulated device both) runs under qemu-aarch64: about 0.1 s native in a
/// debug build, several times that emulated. The budgets are ceilings, not
/// waits, so a native run is as fast as before.
fn tpap_timing() -> Timing {
    Timing {
        connect: Duration::from_secs(3),
        before: Duration::from_secs(3),
        after: Duration::from_secs(3),
        ..fast_timing()
    }
}

fn transport(addr: SocketAddr, c: Option<Credentials>) -> TpapTransport {
    TpapTransport::new(
        &addr.ip().to_string(),
        addr.port(),
        c,
        Duration::from_secs(1),
    )
}

fn device(sim: &SimPlug) -> SmartDevice<TpapTransport> {
    SmartDevice::new(
        transport(sim.addr(), Some(creds())),
        TransportKind::Tpap,
        None,
    )
}

fn target(addr: SocketAddr, protocol: TransportKind) -> PlugTarget {
    PlugTarget {
        role: Role::Heater,
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        outlet: None,
        transport: protocol,
    }
}

#[test]
fn tpap_plugs_switch_and_read_back() {
    for (model, name) in [(Model::P110Tpap, "P110"), (Model::Kp125mTpap, "KP125M")] {
        let sim = sim_with_account(model, None);
        let st = sim.state();
        let mut d = device(&sim);
        let s = d.read(soon()).unwrap();
        assert!(!s.on, "{name} starts off");
        assert_eq!(s.model, name);
        for want in [true, false, true] {
            d.set(want, soon()).unwrap();
            assert_eq!(st.relay(), want, "{name} on the device");
            assert_eq!(d.read(soon()).unwrap().on, want, "{name} read back");
        }
        // One handshake for the whole exchange, on one connection.
        assert_eq!(st.handshakes(), 1, "{name}");
        assert_eq!(st.connections(), 1, "{name}");
        assert_eq!(d.transport().handshakes(), 1);
    }
}

#[test]
fn open_device_chooses_tpap_from_the_probe_and_by_name() {
    let sim = sim_with_account(Model::P110Tpap, None);
    for protocol in [TransportKind::Auto, TransportKind::Tpap] {
        let mut d = open_device(
            &target(sim.addr(), protocol),
            &Timing::default(),
            Some(creds()),
        );
        d.set(true, soon()).unwrap();
        assert_eq!(d.transport_kind(), TransportKind::Tpap, "{protocol:?}");
        assert!(sim.state().relay());
        d.set(false, soon()).unwrap();
        assert!(!sim.state().relay());
        assert!(!d.read(soon()).unwrap().on);
    }
}

#[test]
fn not_preferred_tpap_is_switched_over_klap() {
    let sim = SimPlug::start(SimOptions {
        model: Model::Kp125mTpap,
        credentials: Some(creds()),
        tpap_preferred: false,
        ..SimOptions::default()
    })
    .unwrap();
    let mut d = open_device(
        &target(sim.addr(), TransportKind::Auto),
        &Timing::default(),
        Some(creds()),
    );
    d.set(true, soon()).unwrap();
    assert_eq!(d.transport_kind(), TransportKind::Klap);
    assert!(sim.state().relay());
    d.set(false, soon()).unwrap();
    assert!(!d.read(soon()).unwrap().on);
}

#[test]
fn a_wrong_password_is_one_line_and_one_login() {
    let sim = sim_with_account(Model::P110Tpap, None);
    let wrong = Credentials::new(USER, "wrong");
    let started = Instant::now();
    let mut d = open_device(
        &target(sim.addr(), TransportKind::Tpap),
        &Timing::default(),
        Some(wrong),
    );
    let err = d.read(soon()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.is_permanent(), "{err:?}");
    let line = kasa_thermostat::error::chain(&err);
    for want in [
        "P110(EU)",
        "announced TPAP",
        "refused the login",
        "credentials.username",
        "Third-Party Compatibility",
        "off and on again",
        "-2203",
        "9 left",
    ] {
        assert!(line.contains(want), "{want:?} missing from {line}");
    }
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(
        sim.state().failed_logins(),
        1,
        "one login, not plugp100's four"
    );
}

#[test]
fn the_worker_tries_a_refused_login_once_per_command() {
    let sim = sim_with_account(Model::Kp125mTpap, Some(Fault::BadAuth));
    let (tx, rx) = crossbeam_channel::unbounded();
    let t = target(sim.addr(), TransportKind::Tpap);
    let dev = open_device(&t, &tpap_timing(), Some(creds()));
    let h = PlugHandle::spawn(t, tpap_timing(), dev, tx).unwrap();
    let started = Instant::now();
    h.send(PlugCommand::Set {
        on: true,
        deadman: None,
    });
    let o = next_outcome(&rx);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(o.attempts, 1);
    let f = o.failure().expect("must fail");
    assert!(f.permanent);
    assert!(f.message.contains("refused the login"), "{}", f.message);
    assert_eq!(sim.state().failed_logins(), 1);
    assert!(!sim.state().relay());
}

#[test]
fn expired_sessions_are_renewed_transparently() {
    let sim = sim_with_account(Model::P110Tpap, Some(Fault::Expire(2)));
    let mut d = device(&sim);
    toggle_and_read_back(&mut d, 6);
    let hs = sim.state().handshakes();
    // At least three expirations: each of the three ways the device says so
    // (unsealed -40401, sealed 9999, unsealed -40413).
    assert!(
        hs >= 4,
        "a session of 2 requests is renewed ({hs} handshakes)"
    );
    assert_eq!(d.transport().handshakes(), hs);
}

#[test]
fn a_session_the_device_forgot_is_renewed_once() {
    let sim = sim_with_account(Model::P110Tpap, None);
    let mut d = device(&sim);
    d.set(true, soon()).unwrap();
    sim.state().forget_tpap_sessions();
    // HTTP 401 on the forgotten session: one fresh handshake, same request.
    assert!(d.read(soon()).unwrap().on);
    assert_eq!(sim.state().handshakes(), 2);
    assert_eq!(d.transport().handshakes(), 2);
}

#[test]
fn a_bad_tag_is_a_clear_error_and_heals() {
    let sim = sim_with_account(Model::Kp125mTpap, None);
    let mut d = device(&sim);
    d.read(soon()).unwrap();
    sim.set_fault(Some(Fault::BadTag));
    let err = d.read(soon()).unwrap_err();
    assert!(
        matches!(
            err,
            KasaError::Tpap {
                source: TpapError::BadTag,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("authentication tag"), "{err}");
    assert!(!err.is_permanent());
    sim.set_fault(None);
    assert!(!d.read(soon()).unwrap().on);
}

#[test]
fn countdown_dead_man_over_tpap() {
    let sim = sim_with_account(Model::P110Tpap, None);
    let mut d = device(&sim);
    let kind = d.arm_deadman(Duration::from_secs(600), soon()).unwrap();
    assert!(matches!(kind, DeadmanKind::Countdown { .. }), "{kind:?}");
    assert_eq!(sim.state().countdown_rules(None).len(), 1);
    d.clear_deadman(soon()).unwrap();
}

#[test]
fn a_sleepy_plug_is_woken_and_switched_in_the_same_command() {
    for protocol in [TransportKind::Tpap, TransportKind::Klap] {
        let model = if protocol == TransportKind::Tpap {
            Model::P110Tpap
        } else {
            Model::P110
        };
        let sim = SimPlug::start(SimOptions {
            model,
            credentials: Some(creds()),
            fault: Some(Fault::Sleepy(Duration::from_secs(600))),
            ..SimOptions::default()
        })
        .unwrap();
        assert!(sim.state().asleep());
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = target(sim.addr(), protocol);
        let dev = open_device(&t, &tpap_timing(), Some(creds()));
        let h = PlugHandle::spawn(t, tpap_timing(), dev, tx).unwrap();
        h.send(PlugCommand::Set {
            on: true,
            deadman: None,
        });
        let o = next_outcome(&rx);
        assert_eq!(
            (o.completion.clone(), o.state),
            (Completion::Done, Some(PlugState::On)),
            "{protocol:?}: {o:?}"
        );
        // `tpap` probes before its first handshake (for the model a refusal
        // names), which wakes the plug at once; `klap` meets the refused
        // port first, probes, and the next attempt gets through.
        if protocol == TransportKind::Klap {
            assert!(o.attempts >= 2, "the first attempt was refused: {o:?}");
        }
        assert!(sim.state().probes() >= 1);
        assert!(!sim.state().asleep());
        assert!(sim.state().relay());
    }
}

#[test]
fn a_tls_mode_this_build_does_not_speak_is_named() {
    let body = json!({"error_code": 0, "result": {"mac": "AA:BB:CC:DD:EE:FF",
        "tpap": {"tls": 2, "port": 4433, "dac": true, "pake": [2]}}})
    .to_string();
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (addr, _peer) = raw_peer(reply.into_bytes());
    let mut d = open_device(
        &target(addr, TransportKind::Tpap),
        &Timing::default(),
        Some(creds()),
    );
    let err = d.read(soon()).unwrap_err();
    let line = kasa_thermostat::error::chain(&err);
    for want in [
        "TLS mode 2",
        "4433",
        "Third-Party Compatibility",
        "does not speak",
    ] {
        assert!(line.contains(want), "{want:?} missing from {line}");
    }
    assert!(err.is_permanent());
}

#[test]
fn a_device_that_is_not_tpap_fails_cleanly() {
    // A KLAP plug asked for TPAP answers 404 at discover.
    let sim = sim_with_account(Model::P110, None);
    let mut t = transport(sim.addr(), Some(creds()));
    let err = t
        .request(&json!({"method": "get_device_info"}), soon())
        .unwrap_err();
    assert!(
        matches!(err, KasaError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = crate::util::bin()
        .args(args)
        .output()
        .expect("run the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_names_a_strip_outlet_and_counts_outlets_from_zero() {
    let strip = crate::util::kasa::sim(Model::P300, None);
    let addr = strip.addr().to_string();
    let (ok, out, err) = run(&["plug", &addr, "on", "--outlet", "0", "--protocol", "klap"]);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        format!("{addr} outlet #0 \"Plug 1\": on (verified)")
    );
    assert!(strip.state().outlet(0));
    let (ok, _, err) = run(&["plug", &addr, "on", "--outlet", "3", "--protocol", "klap"]);
    assert!(!ok);
    assert!(
        err.contains("3 outlets") && err.contains("counted from 0"),
        "{err}"
    );
}

#[test]
fn the_cli_switches_a_tpap_plug() {
    let sim = sim_with_account(Model::P110Tpap, None);
    let addr = sim.addr().to_string();
    for (proto, action, want) in [("tpap", "on", true), ("auto", "off", false)] {
        let out = crate::util::bin()
            .args(["plug", &addr, action, "--protocol", proto, "--json"])
            .env("KASA_USERNAME", USER)
            .env("KASA_PASSWORD", crate::util::kasa::PASS)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_default();
        assert_eq!(
            v["on"],
            json!(want),
            "{proto}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(v["verified"], json!(true));
        assert_eq!(sim.state().relay(), want);
    }
    let (ok, out, _) = run(&["discover", "--target", &addr, "--json", "--timeout", "0.5"]);
    assert!(ok);
    let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["protocol"], json!("tpap"), "{out}");
    assert_eq!(list[0]["credentials"], json!(true));
}

/// One raw HTTP post on a fresh connection (`Connection: close`): the
/// status and the body.
fn raw_post(addr: SocketAddr, target: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[end..].to_vec())
}

fn login(addr: SocketAddr, params: serde_json::Value) -> serde_json::Value {
    let body = json!({"method": "login", "params": params}).to_string();
    let (status, reply) = raw_post(addr, "/", "application/json", body.as_bytes());
    assert_eq!(status, 200);
    serde_json::from_slice(&reply).unwrap()
}

/// What plugp100 sends in `pake_register` to a device announcing `pake` [2].
fn plugp100_register() -> serde_json::Value {
    json!({"sub_method": "pake_register", "username": "21232f297a57a5a743894a0e4a801fc3",
        "user_random": kasa_thermostat::kasa::credentials::base64_encode(&[7u8; 32]),
        "cipher_suites": [1], "encryption": ["aes_128_ccm"], "passcode_type": "userpw",
        "stok": null})
}

#[test]
fn the_simulator_refuses_login_posts_plugp100_would_not_send() {
    let sim = sim_with_account(Model::P110Tpap, None);
    let addr = sim.addr();
    // Labelled otherwise than plugp100 labels it: refused.
    let discover = br#"{"method":"login","params":{"sub_method":"discover"}}"#;
    assert_eq!(raw_post(addr, "/", "text/plain", discover).0, 400);
    assert_eq!(raw_post(addr, "/", "application/json", discover).0, 200);
    let code = |v: &serde_json::Value| v["error_code"].as_i64();
    for (field, value) in [
        ("username", json!("admin")),
        ("passcode_type", json!("default_userpw")),
        ("cipher_suites", json!(1)),
        ("encryption", json!("aes_128_ccm")),
        ("stok", json!("")),
        ("user_random", json!("AAAA")),
    ] {
        let mut p = plugp100_register();
        p[field] = value;
        assert_eq!(code(&login(addr, p)), Some(-1008), "{field}");
    }
    let mut p = plugp100_register();
    p.as_object_mut().unwrap().remove("stok");
    assert_eq!(code(&login(addr, p)), Some(-1008), "no stok");
    assert_eq!(code(&login(addr, plugp100_register())), Some(0));
}

#[test]
fn the_simulator_takes_sealed_requests_only_as_plugp100_sends_them() {
    use kasa_thermostat::kasa::credentials::base64_encode;
    use kasa_thermostat::kasa::transport::tpap::crypto::{
        client_keys, client_share, derive_secret, pre_hash, scalar_from_random, Exchange, Sealer,
    };
    use kasa_thermostat::kasa::transport::tpap::{parse_register, parse_share};
    let sim = sim_with_account(Model::P110Tpap, None);
    let addr = sim.addr();
    let mac = login(addr, json!({"sub_method": "discover"}))["result"]["mac"]
        .as_str()
        .unwrap()
        .to_string();
    let reg = login(addr, plugp100_register());
    let reg = parse_register(reg["result"].as_object().unwrap()).unwrap();
    let credential = pre_hash(reg.extra_crypt.as_ref(), USER, PASS, &mac).unwrap();
    let secret = derive_secret(credential.as_bytes(), &reg.dev_salt, reg.iterations);
    let x = scalar_from_random(&[9u8; 32]).unwrap();
    let user_share = client_share(&x, &secret);
    let ex = Exchange {
        suite: reg.suite,
        user_random: &[7u8; 32],
        dev_random: &reg.dev_random,
        user_share: &user_share,
        dev_share: &reg.dev_share,
    };
    let keys = client_keys(&x, &secret, &ex).unwrap();
    let done = login(
        addr,
        json!({"sub_method": "pake_share", "user_share": base64_encode(&user_share),
            "user_confirm": base64_encode(&keys.user_confirm)}),
    );
    let done = parse_share(done["result"].as_object().unwrap()).unwrap();
    let sealer = Sealer::new(reg.suite, reg.cipher, &keys.shared_key);
    let path = format!("/stok={}/ds", done.stok);
    let send = |seq: u32, plain: &str, ct: &str| -> (u16, serde_json::Value) {
        let (status, body) = raw_post(addr, &path, ct, &sealer.seal(seq, plain.as_bytes()));
        let v = match body.first() {
            Some(b'{') => serde_json::from_slice(&body).unwrap(),
            Some(_) => serde_json::from_slice(&sealer.open_reply(seq, &body).unwrap()).unwrap(),
            None => serde_json::Value::Null,
        };
        (status, v)
    };
    let info = r#"{"method": "get_device_info", "params": null}"#;
    let seq = done.start_seq;
    // Labelled otherwise, or without `params` (plugp100 always sends it): refused.
    assert_eq!(send(seq, info, "application/json").0, 400);
    let (_, v) = send(
        seq,
        r#"{"method": "get_device_info"}"#,
        "application/octet-stream",
    );
    assert_eq!(v["error_code"], -1008);
    // Each number is one more than the last opened (the refused one above
    // used `seq`); a number out of turn, skipped or replayed, is -40413.
    let (_, v) = send(seq + 2, info, "application/octet-stream");
    assert_eq!(v["error_code"], -40413);
    let (_, v) = send(seq + 1, info, "application/octet-stream");
    assert_eq!(
        (v["error_code"].as_i64(), v["result"]["model"].as_str()),
        (Some(0), Some("P110"))
    );
    let (_, v) = send(seq + 1, info, "application/octet-stream");
    assert_eq!(v["error_code"], -40413);
    let (_, v) = send(seq + 2, info, "application/octet-stream");
    assert_eq!(v["error_code"], 0);
}

/// Serves one reply to a discover from a peer that either closes after it
/// (as a small HTTP/1.0 server does) or keeps the connection open until the
/// client closes it, and checks that the reply was read whole (it names the
/// TLS mode) when it ended, long before the 5 s deadline.
fn discover_reply_is_read_when_it_ends(reply: String, keep_open: bool) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply.as_bytes());
            while keep_open && matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let mut t = transport(addr, Some(creds()));
    let started = Instant::now();
    let err = t.handshake(soon()).unwrap_err();
    let line = kasa_thermostat::error::chain(&err);
    assert!(line.contains("TLS mode 1"), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(t);
    peer.join().unwrap();
}

/// A discover answer that names TLS mode 1, as JSON.
fn tls_discover_body() -> String {
    json!({"error_code": 0, "result": {"mac": "AA:BB:CC:DD:EE:FF",
        "tpap": {"tls": 1, "port": 4433, "pake": [2]}}})
    .to_string()
}

#[test]
fn a_reply_ended_by_the_connection_closing_is_read() {
    let body = tls_discover_body();
    let reply = format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}");
    discover_reply_is_read_when_it_ends(reply, false);
}

/// A server standing in for a plug (aiohttp's `StreamResponse`, a Python
/// `http.server` writing as it goes) may send its reply in chunks, over a
/// connection kept open: it is read whole, at its last chunk, not the deadline.
#[test]
fn a_chunked_reply_is_read_whole() {
    let body = tls_discover_body();
    let (a, b) = body.split_at(body.len() / 2);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{a}\r\n{:x};note=1\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    discover_reply_is_read_when_it_ends(reply, true);
}

/// A transport answering from a script and recording the methods sent.
struct Scripted {
    replies: Vec<serde_json::Value>,
    sent: Vec<String>,
}

impl Transport for Scripted {
    fn address(&self) -> &str {
        "scripted:80"
    }
    fn request(
        &mut self,
        r: &serde_json::Value,
        _: Instant,
    ) -> Result<serde_json::Value, KasaError> {
        self.sent
            .push(r["method"].as_str().unwrap_or_default().to_string());
        Ok(if self.replies.is_empty() {
            json!({"error_code": 0})
        } else {
            self.replies.remove(0)
        })
    }
    fn close(&mut self) {}
}

/// plugp100 never sends `multipleRequest`, so neither do we over TPAP: a
/// server modelled on it may not know the method at all.
#[test]
fn over_tpap_requests_go_one_by_one() {
    let t = Scripted {
        replies: vec![
            json!({"error_code": 0, "result": {"component_list": [{"id": "device", "ver_code": 2}]}}),
            json!({"error_code": 0, "result": {"device_on": true, "model": "P110"}}),
        ],
        sent: Vec::new(),
    };
    let mut d = SmartDevice::new(t, TransportKind::Tpap, None);
    assert!(d.read(soon()).unwrap().on);
    assert_eq!(d.transport().sent, ["component_nego", "get_device_info"]);
}

#[test]
fn a_device_that_refuses_batches_with_a_params_error_is_asked_one_by_one() {
    // A device (over KLAP here; a SMART server made after plugp100, which
    // never batches) may answer multipleRequest with -1008 (or -1).
    for code in [-1008, -1] {
        let t = Scripted {
            replies: vec![
                json!({ "error_code": code }),
                json!({"error_code": 0, "result": {"component_list": [{"id": "device", "ver_code": 2}]}}),
                json!({"error_code": 0, "result": {"device_on": true, "model": "P110"}}),
            ],
            sent: Vec::new(),
        };
        let mut d = SmartDevice::new(t, TransportKind::Klap, None);
        assert!(d.read(soon()).unwrap().on, "code {code}");
        assert_eq!(
            d.transport().sent,
            ["multipleRequest", "component_nego", "get_device_info"],
            "code {code}"
        );
    }
}
