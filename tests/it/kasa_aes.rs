//! The AES ("securePassthrough") transport end to end on loopback:
//! `AesTransport` and `SmartDevice` against the simulated P110 (EU) fw 1.2.3
//! and EP25 (US) hw 2.6, `open_device` learning AES, the AES faults, the
//! dead-man over AES, hostile AES servers (bad RSA replies, wrong key sizes,
//! missing tokens, base64 and padding errors), `simulate-plug --fixture`
//! with recordings shaped like python-kasa's (written here, not copied), and
//! the command line (`plug --protocol aes`, `discover`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use kasa_thermostat::kasa::credentials::{default_for, CredentialSource, Credentials};
use kasa_thermostat::kasa::device::{DeadmanKind, Device};
use kasa_thermostat::kasa::smart::SmartDevice;
use kasa_thermostat::kasa::transport::aes::{self, AesCipher, AesTransport, KeyPair, LoginVersion};
use kasa_thermostat::kasa::transport::http::{find_head_end, parse_request_head};
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::kasa::StateError;
use kasa_thermostat::kasa::TransportKind;
use kasa_thermostat::kasa::{open_device, KasaError, Outlet, PlugTarget, Timing};
use kasa_thermostat::msg::Role;
use kasa_thermostat::sim::fixture::Fixture;
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};

use crate::util::kasa::{creds, sim_with_account, soon, toggle_and_read_back, PASS, USER};
use crate::util::simulate_plug;

/// One RSA key for the tests that do not test key generation itself.
fn key() -> Arc<KeyPair> {
    static KEY: OnceLock<Arc<KeyPair>> = OnceLock::new();
    Arc::clone(KEY.get_or_init(|| Arc::new(KeyPair::generate().expect("RSA key"))))
}

fn transport(addr: SocketAddr, c: Option<Credentials>) -> AesTransport {
    AesTransport::new(
        &addr.ip().to_string(),
        addr.port(),
        c,
        LoginVersion::V2,
        Duration::from_secs(1),
    )
    .with_key(key())
}

fn device(sim: &SimPlug) -> SmartDevice<AesTransport> {
    SmartDevice::new(
        transport(sim.addr(), Some(creds())),
        TransportKind::Aes,
        None,
    )
}

#[test]
fn aes_plugs_switch_and_read_back() {
    for (model, name) in [(Model::P110Aes, "P110"), (Model::Ep25, "EP25")] {
        let sim = sim_with_account(model, None);
        let st = sim.state();
        let mut d = device(&sim);
        let s = d.read(soon()).unwrap();
        assert!(!s.on, "{name} starts off");
        assert_eq!(s.model, name);
        assert_eq!(s.rssi, Some(-48));
        for want in [true, false, true] {
            d.set(want, soon()).unwrap();
            assert_eq!(st.relay(), want, "{name} on the device");
            assert_eq!(d.read(soon()).unwrap().on, want, "{name} read back");
        }
        // One handshake and one login for the whole exchange, on one connection.
        assert_eq!(st.handshakes(), 1, "{name}");
        assert_eq!(st.connections(), 1, "{name}");
        let t = d.transport();
        assert_eq!((t.handshakes(), t.logins()), (1, 1));
        assert_eq!(t.matched(), Some(CredentialSource::Given));
        let info = d.info(soon()).unwrap();
        assert_eq!(info["model"], name);
        assert_eq!(info["device_on"], true);
    }
}

#[test]
fn open_device_learns_aes_from_the_probe() {
    let sim = sim_with_account(Model::Ep25, None);
    for protocol in [TransportKind::Auto, TransportKind::Aes] {
        let target = PlugTarget {
            role: Role::Heater,
            host: "127.0.0.1".into(),
            port: Some(sim.addr().port()),
            outlet: None,
            transport: protocol,
        };
        let mut d = open_device(&target, &Timing::default(), Some(creds()));
        let s = d.read(soon()).unwrap();
        assert_eq!(s.model, "EP25");
        assert_eq!(d.transport_kind(), TransportKind::Aes, "{protocol:?}");
        assert!(d.is_smart());
        d.set(true, soon()).unwrap();
        assert!(sim.state().relay());
        d.set(false, soon()).unwrap();
        assert!(!sim.state().relay());
    }
}

#[test]
fn a_wrong_password_is_one_auth_error_after_python_kasas_two_tries() {
    let sim = sim_with_account(Model::P110Aes, None);
    let mut t = transport(sim.addr(), Some(Credentials::new(USER, "wrong")));
    let err = t
        .request(&json!({"method": "get_device_info"}), soon())
        .unwrap_err();
    assert!(matches!(err, KasaError::Auth { .. }), "{err:?}");
    assert!(err.is_permanent());
    let text = err.to_string();
    assert!(
        text.contains("refused the TP-Link credentials") && !text.contains('\n'),
        "{text}"
    );
    // The given credentials, then the TAPO default, each after a handshake:
    // never more logins than python-kasa sends.
    assert_eq!(t.logins(), 2);
    assert_eq!(sim.state().handshakes(), 2);
    assert_eq!(sim.state().requests(), 0, "nothing but logins was sent");
}

#[test]
fn badauth_fault_is_a_wrong_password() {
    let sim = sim_with_account(Model::Ep25, Some(Fault::BadAuth));
    let mut d = device(&sim);
    let err = d.read(soon()).unwrap_err();
    assert!(matches!(err, KasaError::Auth { .. }), "{err:?}");
    // Healed: the same device object logs in on the next try.
    sim.set_fault(None);
    assert!(!d.read(soon()).unwrap().on);
}

#[test]
fn unbound_devices_take_the_tapo_default() {
    // A device never bound to an account holds python-kasa's TAPO default.
    let sim = SimPlug::start(SimOptions {
        model: Model::Ep25,
        ..SimOptions::default()
    })
    .unwrap();
    let mut t = transport(sim.addr(), None);
    t.request(&json!({"method": "get_device_info"}), soon())
        .unwrap();
    assert_eq!(t.matched(), Some(CredentialSource::Default("TAPO")));
    // Blank credentials were tried first (python-kasa's order), then TAPO.
    assert_eq!(t.logins(), 2);
    // Remembered: a new session logs in with the default at once.
    t.close();
    t.request(&json!({"method": "get_device_info"}), soon())
        .unwrap();
    assert_eq!(t.logins(), 3);

    // Configured credentials the unbound device does not hold: it takes the default.
    let mut t = transport(sim.addr(), Some(creds()));
    t.request(&json!({"method": "get_device_info"}), soon())
        .unwrap();
    assert_eq!(t.matched(), Some(CredentialSource::Default("TAPO")));

    // And a device bound to the TAPO default account is reached with it given.
    let mut t = transport(sim.addr(), Some(default_for("TAPO")));
    t.request(&json!({"method": "get_device_info"}), soon())
        .unwrap();
    assert_eq!(t.matched(), Some(CredentialSource::Given));
    assert_eq!(t.logins(), 1);
}

#[test]
fn expired_sessions_are_renewed_transparently() {
    let sim = sim_with_account(Model::P110Aes, Some(Fault::Expire(2)));
    let mut d = device(&sim);
    toggle_and_read_back(&mut d, 6);
    let hs = sim.state().handshakes();
    assert!(
        hs >= 3,
        "a session of 2 requests is renewed ({hs} handshakes)"
    );
    assert_eq!(d.transport().handshakes(), hs);
}

#[test]
fn undecryptable_replies_are_aes_errors_and_heal() {
    let sim = sim_with_account(Model::P110Aes, None);
    let mut d = device(&sim);
    d.read(soon()).unwrap();
    sim.set_fault(Some(Fault::BadSig));
    let err = d.read(soon()).unwrap_err();
    assert!(matches!(err, KasaError::Aes { .. }), "{err:?}");
    assert!(!err.is_permanent());
    assert!(err.to_string().contains("AES session failed"), "{err}");
    sim.set_fault(None);
    assert!(!d.read(soon()).unwrap().on);
}

#[test]
fn common_faults_give_clear_errors_within_the_deadline() {
    type Check = fn(&KasaError) -> bool;
    let cases: Vec<(Fault, Check)> = vec![
        (Fault::Err, |e| {
            matches!(e, KasaError::Smart { code: -1, .. })
        }),
        (Fault::Garbage, |e| matches!(e, KasaError::Aes { .. })),
        (Fault::Drop, |e| {
            matches!(
                e,
                KasaError::Closed { .. } | KasaError::Http { .. } | KasaError::Io { .. }
            )
        }),
        (Fault::Blackhole, |e| {
            matches!(e, KasaError::TimedOut { .. })
        }),
    ];
    for (fault, want) in cases {
        let sim = sim_with_account(Model::Ep25, None);
        let mut d = device(&sim);
        d.read(soon()).unwrap();
        sim.set_fault(Some(fault.clone()));
        let started = Instant::now();
        let err = d
            .read(Instant::now() + Duration::from_millis(800))
            .unwrap_err();
        assert!(want(&err), "{fault:?}: {err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{fault:?} took {:?}",
            started.elapsed()
        );
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn flaky_handshakes_are_retried_by_the_worker() {
    use kasa_thermostat::msg::{Completion, PlugCommand};
    let sim = sim_with_account(Model::P110Aes, Some(Fault::Flaky(1)));
    let target = PlugTarget {
        role: Role::Heater,
        host: "127.0.0.1".into(),
        port: Some(sim.addr().port()),
        outlet: None,
        transport: TransportKind::Aes,
    };
    let timing = Timing::default().scaled(0.2);
    let device = open_device(&target, &timing, Some(creds()));
    let (tx, rx) = crossbeam_channel::bounded(1);
    let h = kasa_thermostat::kasa::PlugHandle::spawn(target, timing, device, tx).unwrap();
    h.send(PlugCommand::on(None));
    let out = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(out.completion, Completion::Done, "{out:?}");
    assert!(out.attempts >= 2, "the dropped handshake cost an attempt");
    assert!(sim.state().relay());
}

#[test]
fn countdown_dead_man_over_aes() {
    let sim = sim_with_account(Model::Ep25, None);
    let mut d = device(&sim);
    let kind = d.arm_deadman(Duration::from_secs(90), soon()).unwrap();
    assert_eq!(kind, DeadmanKind::Countdown { secs: 90 });
    d.set(true, soon()).unwrap();
    let rules = sim.state().countdown_rules(None);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["enable"], true);
    assert_eq!(rules[0]["desired_states"]["on"], false);
    d.clear_deadman(soon()).unwrap();
    assert_eq!(sim.state().countdown_rules(None)[0]["enable"], false);
}

// --- hostile AES servers ---------------------------------------------------

/// What a scripted server does with one request (given its JSON body).
type Step = Box<dyn FnMut(&Value) -> Vec<u8> + Send>;

fn read_request(s: &mut TcpStream) -> Option<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(e) = find_head_end(&buf) {
            break e;
        }
        let n = s.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = parse_request_head(&buf[..end]).ok()?;
    while buf.len() < end + head.content_length {
        let n = s.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    serde_json::from_slice(&buf[end..end + head.content_length]).ok()
}

/// A server that answers each request with the next step, on one kept-open
/// connection (new connections are accepted as the client makes them). It
/// gives up 4 s after starting, and returns how many steps it served.
fn scripted(steps: Vec<Step>) -> (SocketAddr, JoinHandle<usize>) {
    let (addr, h, _) = scripted_until(steps);
    (addr, h)
}

/// [`scripted`], with a flag that makes the server give up at once.
fn scripted_until(steps: Vec<Step>) -> (SocketAddr, JoinHandle<usize>, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let h = std::thread::spawn(move || {
        let mut steps = steps.into_iter();
        let mut served = 0;
        let end = Instant::now() + Duration::from_secs(4);
        'accept: while Instant::now() < end && !stopped.load(Ordering::SeqCst) {
            let mut s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_millis(1500)));
            loop {
                let Some(req) = read_request(&mut s) else {
                    continue 'accept;
                };
                let Some(mut step) = steps.next() else {
                    return served;
                };
                served += 1;
                if s.write_all(&step(&req)).is_err() {
                    continue 'accept;
                }
                if steps.len() == 0 {
                    return served;
                }
            }
        }
        served
    });
    (addr, h, stop)
}

fn http(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nSet-Cookie: TP_SESSIONID=S1;TIMEOUT=1440\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

const KEY_IV: [u8; 32] = *b"0123456789abcdefFEDCBA9876543210";

fn session() -> AesCipher {
    AesCipher::from_key_iv(&KEY_IV).unwrap()
}

/// A good handshake answer: the test key and IV sealed to the client's key.
fn good_handshake() -> Step {
    Box::new(|req: &Value| {
        let pem = req["params"]["key"].as_str().unwrap_or_default();
        let sealed = aes::seal_handshake_key(pem, &KEY_IV).unwrap();
        http(
            json!({"error_code": 0, "result": {"key": sealed}})
                .to_string()
                .as_bytes(),
        )
    })
}

fn handshake_with(key: Value) -> Step {
    Box::new(move |_: &Value| {
        http(
            json!({"error_code": 0, "result": {"key": key}})
                .to_string()
                .as_bytes(),
        )
    })
}

/// A passthrough answer carrying `inner` encrypted with the session key.
fn sealed(inner: Value) -> Step {
    Box::new(move |_: &Value| {
        let r = session().encrypt(inner.to_string().as_bytes());
        http(
            json!({"error_code": 0, "result": {"response": r}})
                .to_string()
                .as_bytes(),
        )
    })
}

fn raw(body: &'static str) -> Step {
    Box::new(move |_: &Value| http(body.as_bytes()))
}

fn good_login() -> Step {
    sealed(json!({"error_code": 0, "result": {"token": "T0KEN"}}))
}

fn against(steps: Vec<Step>) -> KasaError {
    let (addr, h) = scripted(steps);
    let mut t = transport(addr, Some(creds()));
    let started = Instant::now();
    let err = t
        .request(
            &json!({"method": "get_device_info"}),
            Instant::now() + Duration::from_secs(3),
        )
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{err:?}");
    h.join().unwrap();
    err
}

fn aes_detail(e: &KasaError) -> String {
    match e {
        KasaError::Aes { detail, .. } => detail.clone(),
        other => panic!("expected an AES session error, got {other:?}"),
    }
}

#[test]
fn bad_handshake_replies_fail_cleanly() {
    // Not base64.
    let e = against(vec![handshake_with(json!("%%% not base64 %%%"))]);
    assert!(aes_detail(&e).contains("not base64"), "{e}");
    // A ciphertext for another key size.
    let e = against(vec![handshake_with(json!(aes_b64(&[7u8; 64])))]);
    assert!(aes_detail(&e).contains("expected 128"), "{e}");
    // A key that is not 16 + 16 bytes.
    let e = against(vec![Box::new(|req: &Value| {
        let pem = req["params"]["key"].as_str().unwrap_or_default();
        let s = aes::seal_handshake_key(pem, &[1u8; 40]).unwrap();
        http(
            json!({"error_code": 0, "result": {"key": s}})
                .to_string()
                .as_bytes(),
        )
    })]);
    assert!(aes_detail(&e).contains("40 bytes, expected 32"), "{e}");
    // No key, not JSON, a refusal code, a bad status.
    let e = against(vec![raw(r#"{"error_code":0,"result":{}}"#)]);
    assert!(aes_detail(&e).contains("result.key"), "{e}");
    let e = against(vec![raw("<html>busy</html>")]);
    assert!(aes_detail(&e).contains("not a JSON object"), "{e}");
    let e = against(vec![raw(r#"{"error_code":-1010}"#)]);
    assert!(matches!(e, KasaError::Smart { code: -1010, .. }), "{e:?}");
    assert!(e.to_string().contains("INVALID_PUBLIC_KEY"), "{e}");
}

fn aes_b64(b: &[u8]) -> String {
    kasa_thermostat::kasa::credentials::base64_encode(b)
}

#[test]
fn bad_logins_and_passthroughs_fail_cleanly() {
    // A login answer without a token.
    let e = against(vec![
        good_handshake(),
        sealed(json!({"error_code": 0, "result": {}})),
    ]);
    assert!(aes_detail(&e).contains("result.token"), "{e}");
    // The login answer is not base64, not whole blocks, or under another key.
    let e = against(vec![
        good_handshake(),
        raw(r#"{"error_code":0,"result":{"response":"@@@@"}}"#),
    ]);
    assert!(aes_detail(&e).contains("not base64"), "{e}");
    let e = against(vec![
        good_handshake(),
        raw(r#"{"error_code":0,"result":{"response":"QUJDREVGRw=="}}"#),
    ]);
    assert!(aes_detail(&e).contains("whole number"), "{e}");
    let other = AesCipher::from_key_iv(&[9u8; 32]).unwrap();
    let wrong_key = other.encrypt(b"{\"error_code\":0,\"result\":{\"token\":\"X\"}}   ");
    let body = json!({"error_code": 0, "result": {"response": wrong_key}}).to_string();
    let e = against(vec![
        good_handshake(),
        Box::new(move |_: &Value| http(body.as_bytes())),
    ]);
    let d = aes_detail(&e);
    assert!(d.contains("padding") || d.contains("JSON"), "{e}");
    // A good session whose first request answer is broken: an error, not a retry loop.
    let e = against(vec![
        good_handshake(),
        good_login(),
        raw(r#"{"error_code":0,"result":{"response":"A"}}"#),
    ]);
    assert!(matches!(e, KasaError::Aes { .. }), "{e:?}");
    // An answer over the size limit is refused without reading it.
    let e = against(vec![
        good_handshake(),
        good_login(),
        Box::new(|_: &Value| b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n".to_vec()),
    ]);
    assert!(matches!(e, KasaError::Http { .. }), "{e:?}");
}

#[test]
fn refused_logins_try_the_default_once_then_stop() {
    let refused = || sealed(json!({"error_code": -1501}));
    let (addr, h) = scripted(vec![
        good_handshake(),
        refused(),
        good_handshake(),
        refused(),
    ]);
    let mut t = transport(addr, Some(creds()));
    let e = t
        .request(&json!({"method": "get_device_info"}), soon())
        .unwrap_err();
    assert!(matches!(e, KasaError::Auth { .. }), "{e:?}");
    assert_eq!(
        h.join().unwrap(),
        4,
        "two handshakes and two logins, no more"
    );
    // A blocked device is not hammered either: one login, a clear permanent error.
    let (addr, h) = scripted(vec![
        good_handshake(),
        sealed(json!({"error_code": -40404})),
    ]);
    let mut t = transport(addr, Some(creds()));
    let e = t
        .request(&json!({"method": "get_device_info"}), soon())
        .unwrap_err();
    assert!(e.is_permanent(), "{e:?}");
    assert!(e.to_string().contains("DEVICE_BLOCKED"), "{e}");
    assert_eq!(h.join().unwrap(), 2);
}

#[test]
fn session_error_codes_renew_the_session_once() {
    let (addr, h) = scripted(vec![
        good_handshake(),
        good_login(),
        raw(r#"{"error_code":9999}"#),
        good_handshake(),
        good_login(),
        sealed(json!({"error_code": 0, "result": {"device_on": true}})),
    ]);
    let mut t = transport(addr, Some(creds()));
    let r = t
        .request(&json!({"method": "get_device_info"}), soon())
        .unwrap();
    assert_eq!(r["result"]["device_on"], true);
    assert_eq!(t.handshakes(), 2);
    assert_eq!(h.join().unwrap(), 6);
}

#[test]
fn a_session_at_its_timeout_is_renewed_before_it_is_used() {
    // TIMEOUT=0: the device's session is over at once, so every request
    // starts with a new handshake and login (never a request the device
    // would refuse with 9999).
    let short = || -> Step {
        let mut inner = good_handshake();
        Box::new(move |req: &Value| {
            let bytes = inner(req);
            let text = String::from_utf8(bytes).unwrap();
            text.replace("TIMEOUT=1440", "TIMEOUT=0").into_bytes()
        })
    };
    let reply = || sealed(json!({"error_code": 0, "result": {"device_on": false}}));
    let (addr, h) = scripted(vec![
        short(),
        good_login(),
        reply(),
        short(),
        good_login(),
        reply(),
    ]);
    let mut t = transport(addr, Some(creds()));
    for _ in 0..2 {
        t.request(&json!({"method": "get_device_info"}), soon())
            .unwrap();
    }
    assert_eq!((t.handshakes(), t.logins()), (2, 2));
    assert_eq!(h.join().unwrap(), 6);
}

/// Mutated answers at every step of a session: an error or a reply, never
/// a panic, always within the deadline.
#[test]
fn mutated_aes_answers_never_panic() {
    let mut s = 0x0123_4567_89AB_CDEFu64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let good_inner = json!({"error_code": 0, "result": {"device_on": false}});
    for round in 0..60 {
        let stage = round % 3;
        let flip = next();
        let mutate = move |mut body: Vec<u8>| -> Vec<u8> {
            if body.is_empty() {
                return body;
            }
            let i = (flip as usize) % body.len();
            body[i] = b"{}\":,0A=/+x"[(flip >> 32) as usize % 11];
            if flip % 3 == 0 {
                body.truncate((flip >> 8) as usize % body.len());
            }
            body
        };
        let wrap = |mut step: Step, hit: bool| -> Step {
            Box::new(move |req: &Value| {
                let bytes = step(req);
                if !hit {
                    return bytes;
                }
                let end = find_head_end(&bytes).unwrap();
                let body = mutate(bytes[end..].to_vec());
                http(&body)
            })
        };
        let steps = vec![
            wrap(good_handshake(), stage == 0),
            wrap(good_login(), stage == 1),
            wrap(sealed(good_inner.clone()), stage == 2),
        ];
        let (addr, h, stop) = scripted_until(steps);
        let mut t = transport(addr, Some(creds()));
        let started = Instant::now();
        let r = t.request(
            &json!({"method": "get_device_info"}),
            Instant::now() + Duration::from_secs(2),
        );
        assert!(started.elapsed() < Duration::from_secs(3), "round {round}");
        if let Err(e) = &r {
            assert!(!e.to_string().is_empty());
        }
        drop(t);
        stop.store(true, Ordering::SeqCst);
        let _ = h.join();
    }
}

// --- recorded devices ------------------------------------------------------

/// A legacy two-outlet strip recording, shaped like python-kasa's fixtures
/// (written for this test: no python-kasa data).
const IOT_STRIP: &str = r#"{
  "system": {"get_sysinfo": {
    "alias": "Bench strip", "model": "KP200(US)", "mic_type": "IOT.SMARTPLUGSWITCH",
    "deviceId": "0000000000000000000000000000000000000000", "mac": "00:00:00:00:00:00",
    "rssi": -60, "err_code": 0, "child_num": 2, "feature": "TIM",
    "children": [
      {"id": "CHILD_A", "alias": "Left", "state": 1, "on_time": -32407, "next_action": {"type": -1}},
      {"id": "CHILD_B", "alias": "Right", "state": 0, "on_time": 0, "next_action": {"type": -1}}
    ]}},
  "emeter": {"get_realtime": {"err_code": -1, "err_msg": "module not support"}},
  "schedule": {"get_rules": {"rule_list": [], "enable": 0, "version": 2, "err_code": 0}}
}"#;

/// A SMART plug recording served over AES (login v2).
const SMART_AES_PLUG: &str = r#"{
  "discovery_result": {"error_code": 0, "result": {
    "device_type": "SMART.KASAPLUG", "device_model": "EP25(US)", "ip": "127.0.0.123",
    "mac": "00-00-00-00-00-00", "device_id": "00",
    "mgt_encrypt_schm": {"encrypt_type": "AES", "http_port": 80, "is_support_https": false, "lv": 2}}},
  "component_nego": {"component_list": [
    {"id": "device", "ver_code": 2}, {"id": "countdown", "ver_code": 2},
    {"id": "auto_off", "ver_code": 2}]},
  "get_device_info": {"device_id": "00", "model": "EP25", "type": "SMART.KASAPLUG",
    "device_on": true, "on_time": 10, "rssi": -51, "nickname": "SGVhdGVy",
    "hw_ver": "2.6", "fw_ver": "1.0.2 Build 231108 Rel.163012"},
  "get_device_usage": {"time_usage": {"today": 1}},
  "get_inherit_info": null
}"#;

/// A SMART hub recording: children, none of them a relay.
const SMART_HUB: &str = r#"{
  "discovery_result": {"error_code": 0, "result": {
    "device_type": "SMART.TAPOHUB", "device_model": "H100(EU)",
    "mgt_encrypt_schm": {"encrypt_type": "KLAP", "http_port": 80, "lv": 2}}},
  "component_nego": {"component_list": [{"id": "device", "ver_code": 2},
    {"id": "child_device", "ver_code": 1}, {"id": "control_child", "ver_code": 1}]},
  "get_device_info": {"device_id": "00", "model": "H100", "type": "SMART.TAPOHUB"},
  "get_child_device_list": {"start_index": 0, "sum": 1, "child_device_list": [
    {"device_id": "SENSOR_1", "model": "T310", "category": "subg.trigger.temp-hmdt-sensor",
     "current_temp": 21.5}]},
  "get_child_device_component_list": {"start_index": 0, "sum": 1, "child_component_list": [
    {"device_id": "SENSOR_1", "component_list": [{"id": "device", "ver_code": 2}]}]}
}"#;

fn serve(text: &str) -> SimPlug {
    let fx = Fixture::parse("test", text).unwrap();
    SimPlug::start(SimOptions {
        fixture: Some(Arc::new(fx)),
        credentials: Some(creds()),
        ..SimOptions::default()
    })
    .unwrap()
}

fn open(sim: &SimPlug, outlet: Option<Outlet>) -> Box<dyn Device> {
    let target = PlugTarget {
        role: Role::Heater,
        host: "127.0.0.1".into(),
        port: Some(sim.addr().port()),
        outlet,
        transport: TransportKind::Auto,
    };
    open_device(&target, &Timing::default(), Some(creds()))
}

#[test]
fn fixtures_are_understood() {
    let strip = Fixture::parse("KP200", IOT_STRIP).unwrap();
    assert!(!strip.is_smart() && strip.is_strip());
    assert_eq!(strip.outlets().len(), 2);
    assert!(strip.outlets()[0].on && !strip.outlets()[1].on);
    assert_eq!(strip.child_id(1), Some("CHILD_B"));
    assert_eq!(strip.model(), "KP200(US)");

    let plug = Fixture::parse("EP25", SMART_AES_PLUG).unwrap();
    assert!(plug.is_smart() && !plug.is_strip());
    assert_eq!(plug.lv(), Some(2));
    assert_eq!(plug.outlets()[0].alias, "Heater");
    assert!(
        plug.describe().contains("AES login v2"),
        "{}",
        plug.describe()
    );
    assert_eq!(plug.default_credentials(), default_for("TAPO"));

    let hub = Fixture::parse("H100", SMART_HUB).unwrap();
    assert!(hub.outlets().is_empty());

    for bad in ["[1, 2]", "{}", r#"{"getDeviceInfo": {}}"#, "not json"] {
        assert!(Fixture::parse("bad", bad).is_err(), "{bad}");
    }
    let legacy_aes = r#"{"system": {"get_sysinfo": {"relay_state": 0}},
        "discovery_result": {"mgt_encrypt_schm": {"encrypt_type": "TPAP"}}}"#;
    let e = Fixture::parse("x", legacy_aes).unwrap_err();
    assert!(e.to_string().contains("TPAP"), "{e}");
}

#[test]
fn a_recorded_strip_keeps_its_outlet_states() {
    let sim = serve(IOT_STRIP);
    let st = sim.state();
    let mut left = open(&sim, Some(Outlet::Index(0)));
    let mut right = open(&sim, Some(Outlet::Index(1)));
    // The recorded states, a negative on_time included.
    assert!(left.read(soon()).unwrap().on);
    assert!(!right.read(soon()).unwrap().on);
    assert_eq!(left.transport_kind(), TransportKind::Legacy);
    right.set(true, soon()).unwrap();
    left.set(false, soon()).unwrap();
    assert!(right.read(soon()).unwrap().on && st.outlet(1));
    assert!(!left.read(soon()).unwrap().on && !st.outlet(0));
    // What the recording has is answered as recorded; what it lacks, as devices do.
    let info = st.sysinfo();
    assert_eq!(info["children"][1]["state"], 1);
    assert_eq!(info["children"][0]["alias"], "Left");
    let mut whole = open(&sim, None);
    match whole.read(soon()).unwrap_err() {
        KasaError::Outlet {
            source: StateError::StripNeedsOutlet { outlets, .. },
            ..
        } => assert_eq!(outlets, Some(2)),
        other => panic!("{other:?}"),
    }
    let raw = whole.info(soon()).unwrap();
    assert_eq!(
        raw["children"][0]["on_time"], 0,
        "the on_time restarts at a switch"
    );
    let mut dm = open(&sim, Some(Outlet::Index(1)));
    assert_eq!(
        dm.arm_deadman(Duration::from_secs(60), soon()).unwrap(),
        DeadmanKind::Countdown { secs: 60 }
    );
    assert_eq!(st.countdown_rules(Some(1)).len(), 1);
}

#[test]
fn a_recorded_aes_plug_switches_and_says_what_it_does_not_know() {
    let sim = serve(SMART_AES_PLUG);
    let st = sim.state();
    let mut d = open(&sim, None);
    let s = d.read(soon()).unwrap();
    assert!(s.on, "recorded on");
    assert_eq!(d.transport_kind(), TransportKind::Aes);
    assert_eq!(s.rssi, Some(-51));
    d.set(false, soon()).unwrap();
    assert!(!st.relay());
    assert!(!d.read(soon()).unwrap().on);
    assert_eq!(d.info(soon()).unwrap()["device_on"], false);

    // Methods, straight through the transport.
    let mut t = transport(sim.addr(), Some(creds()));
    let call = |t: &mut AesTransport, m: &str| t.request(&json!({"method": m}), soon()).unwrap();
    assert_eq!(
        call(&mut t, "get_device_usage")["result"]["time_usage"]["today"],
        1
    );
    assert_eq!(call(&mut t, "get_inherit_info")["error_code"], -1002);
    assert_eq!(call(&mut t, "get_matter_setup_info")["error_code"], -1002);
    assert_eq!(
        call(&mut t, "get_countdown_rules")["result"]["countdown_rule_max_count"],
        1
    );
}

#[test]
fn a_recorded_hub_has_no_relay() {
    let sim = serve(SMART_HUB);
    let mut d = open(&sim, None);
    let e = d.read(soon()).unwrap_err();
    assert!(
        matches!(
            &e,
            KasaError::Outlet {
                source: StateError::NoRelay { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_permanent());
    assert!(e.to_string().contains("H100 has no relay"), "{e}");
    let mut child = open(&sim, Some(Outlet::Index(0)));
    let e = child.read(soon()).unwrap_err();
    assert!(e.to_string().contains("T310 has no relay"), "{e}");
    // Its own description is still there for `plug sysinfo`.
    let info = d.info(soon()).unwrap();
    assert_eq!(info["model"], "H100");
    assert_eq!(info["child_device_list"][0]["device_id"], "SENSOR_1");
}

// --- the command line -------------------------------------------------------

fn bin() -> Command {
    let mut c = crate::util::bin();
    c.env_remove("KASA_USERNAME").env_remove("KASA_PASSWORD");
    c
}

fn run(args: &[&str], password: &str) -> std::process::Output {
    bin()
        .args(args)
        .env("KASA_USERNAME", USER)
        .env("KASA_PASSWORD", password)
        .output()
        .unwrap()
}

#[test]
fn cli_switches_an_aes_plug_and_refuses_a_wrong_password_in_one_line() {
    let sim = sim_with_account(Model::P110Aes, None);
    let addr = sim.addr().to_string();
    let o = run(&["plug", &addr, "on", "--protocol", "aes"], PASS);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.trim(), format!("{addr}: on (verified)"));
    assert!(sim.state().relay());
    let o = run(&["plug", &addr, "state", "--json"], PASS);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["on"], true);

    let started = Instant::now();
    let o = run(&["plug", &addr, "off", "--protocol", "aes"], "wrong");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("refused the TP-Link credentials"), "{err}");
    assert!(err.contains("not retried"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(sim.state().relay(), "nothing switched");
}

#[test]
fn cli_serves_a_fixture_and_discover_names_its_model_and_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("EP25(US)_2.6_test.json");
    std::fs::write(&path, SMART_AES_PLUG).unwrap();
    let fixture = path.to_str().expect("a UTF-8 temp path");
    let (mut child, addr) =
        simulate_plug(["--fixture", fixture, "--username", USER, "--password", PASS]);
    let addr = addr.expect("simulate-plug's address").to_string();
    let o = run(
        &["discover", "--target", &addr, "--timeout", "0.3", "--json"],
        PASS,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["model"], "EP25(US)", "{v}");
    assert_eq!(v[0]["protocol"], "aes");
    assert_eq!(v[0]["credentials"], true);
    let o = run(&["discover", "--target", &addr, "--timeout", "0.3"], PASS);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("PROTOCOL") && table.contains("EP25(US)"),
        "{table}"
    );
    let o = run(&["plug", &addr, "off"], PASS);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["plug", &addr, "sysinfo", "--json"], PASS);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["device_on"], false);
    assert_eq!(v["hw_ver"], "2.6", "the device's own reply");
    let _ = child.kill();
    let _ = child.wait();

    let bad = dir.path().join("camera.json");
    std::fs::write(&bad, r#"{"getDeviceInfo": {}}"#).unwrap();
    let o = bin()
        .args(["simulate-plug", "--fixture"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a python-kasa iot or smart recording"),
        "{err}"
    );
}
