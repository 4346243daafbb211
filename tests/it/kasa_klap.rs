//! KLAP and SMART end to end on loopback: `KlapTransport` and `SmartDevice`
//! against the simulated devices of every new model, the KLAP faults, the
//! dead-man on SMART devices, hostile HTTP peers and a fuzzed SMART layer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use kasa_thermostat::kasa::credentials::{CredentialSource, Credentials, KlapVersion};
use kasa_thermostat::kasa::device::{DeadmanKind, Device};
use kasa_thermostat::kasa::smart::SmartDevice;
use kasa_thermostat::kasa::transport::klap::KlapTransport;
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::kasa::StateError;
use kasa_thermostat::kasa::TransportKind;
use kasa_thermostat::kasa::{KasaError, Outlet};
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};

use crate::util::kasa::{creds, sim_with_account, USER};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(3)
}

fn transport(addr: SocketAddr, c: Option<Credentials>, v: KlapVersion) -> KlapTransport {
    KlapTransport::new(
        &addr.ip().to_string(),
        addr.port(),
        c,
        v,
        Duration::from_secs(1),
    )
}

fn device(sim: &SimPlug, outlet: Option<Outlet>) -> SmartDevice<KlapTransport> {
    SmartDevice::new(
        transport(sim.addr(), Some(creds()), KlapVersion::V2),
        TransportKind::Klap,
        outlet,
    )
}

/// Off → on → off through the device, checked on the simulated hardware.
fn round_trip(sim: &SimPlug, outlet: Option<Outlet>, index: usize) {
    let mut d = device(sim, outlet.clone());
    let st = sim.state();
    let s = d.read(soon()).unwrap();
    assert!(!s.on, "{outlet:?} starts off");
    assert_eq!(s.rssi, Some(-48));
    for want in [true, false] {
        d.set(want, soon()).unwrap();
        assert_eq!(st.outlet(index), want, "{outlet:?} on the device");
        assert_eq!(d.read(soon()).unwrap().on, want, "{outlet:?} read back");
    }
    for other in (0..6).filter(|&i| i != index) {
        assert!(!st.outlet(other), "outlet {other} untouched");
    }
    assert_eq!(d.transport_kind(), TransportKind::Klap);
    // One session, one kept-open connection for the whole exchange.
    assert_eq!(st.handshakes(), 1);
    assert_eq!(st.connections(), 1);
}

#[test]
fn smart_plugs_switch_and_read_back() {
    for model in [Model::P100, Model::P110, Model::Kp125m] {
        let sim = sim_with_account(model, None);
        round_trip(&sim, None, 0);
        let mut d = device(&sim, None);
        let s = d.read(soon()).unwrap();
        assert_eq!(s.model, model.model_name());
        let info = d.info(soon()).unwrap();
        assert_eq!(
            kasa_thermostat::kasa::smart::nickname(&info).as_deref(),
            Some("Heat mat")
        );
        assert_eq!(
            d.transport().matched().unwrap().source,
            CredentialSource::Given
        );
    }
}

#[test]
fn strip_outlets_first_and_last() {
    for (model, n) in [(Model::P300, 3), (Model::Ep40m, 2)] {
        for i in [0, n - 1] {
            let sim = sim_with_account(model, None);
            round_trip(&sim, Some(Outlet::Index(i)), i);
        }
        // By device id too, and the whole strip's info lists every outlet
        // (the simulator pages the list two at a time).
        let sim = sim_with_account(model, None);
        let id = sim.state().child_id(n - 1).unwrap();
        let mut d = device(&sim, Some(Outlet::Id(id)));
        d.set(true, soon()).unwrap();
        assert!(sim.state().outlet(n - 1));
        let info = d.info(soon()).unwrap();
        assert_eq!(info["child_device_list"].as_array().unwrap().len(), n);
    }
}

#[test]
fn strip_without_an_outlet_or_with_a_wrong_one_says_so() {
    let sim = sim_with_account(Model::P300, None);
    match device(&sim, None).read(soon()) {
        Err(KasaError::Outlet {
            source: StateError::StripNeedsOutlet { .. },
            ..
        }) => {}
        other => panic!("whole strip: {other:?}"),
    }
    match device(&sim, Some(Outlet::Index(3))).read(soon()) {
        Err(KasaError::Outlet {
            source: StateError::NoSuchOutlet { available, .. },
            ..
        }) => assert_eq!(available.len(), 3),
        other => panic!("outlet 3: {other:?}"),
    }
    // Nothing was switched by the failed attempts.
    assert!(sim.state().transitions().is_empty());
}

#[test]
fn legacy_json_inside_klap_v1() {
    let sim = sim_with_account(Model::Hs100Klap, None);
    // Told v2 (as for a SMART device), the handshake finds v1 by itself.
    let mut t = transport(sim.addr(), Some(creds()), KlapVersion::V2);
    let info = t
        .request(&json!({"system": {"get_sysinfo": {}}}), soon())
        .unwrap();
    assert_eq!(info["system"]["get_sysinfo"]["model"], "HS100(UK)");
    assert_eq!(info["system"]["get_sysinfo"]["hw_ver"], "4.1");
    assert_eq!(t.version(), KlapVersion::V1);
    for state in [1, 0] {
        let r = t
            .request(
                &json!({"system": {"set_relay_state": {"state": state}}}),
                soon(),
            )
            .unwrap();
        assert_eq!(r["system"]["set_relay_state"]["err_code"], 0);
        assert_eq!(sim.state().relay(), state == 1);
    }
    assert_eq!(t.handshakes(), 1);
}

#[test]
fn wrong_password_is_an_auth_error_at_once_and_sends_nothing_more() {
    for model in [Model::P110, Model::Hs100Klap] {
        let sim = sim_with_account(model, None);
        let mut d = SmartDevice::new(
            transport(
                sim.addr(),
                Some(Credentials::new(USER, "wrong")),
                KlapVersion::V2,
            ),
            TransportKind::Klap,
            None,
        );
        let t0 = Instant::now();
        let err = d.read(soon()).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert!(matches!(err, KasaError::Auth { .. }), "{err:?}");
        assert!(err.is_permanent());
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the plug refused the TP-Link credentials \
                 (check credentials.username and the password file)",
                sim.addr()
            )
        );
        // One handshake1 and nothing after it: no handshake2 with a wrong
        // proof, no request the device could count as a failed login.
        assert_eq!(sim.state().handshakes(), 1);
        assert_eq!(sim.state().requests(), 0);
    }
}

#[test]
fn badauth_fault_is_a_wrong_password() {
    let sim = sim_with_account(Model::P100, Some(Fault::BadAuth));
    let err = device(&sim, None).read(soon()).unwrap_err();
    assert!(matches!(err, KasaError::Auth { .. }), "{err:?}");
    sim.set_fault(None);
    assert!(!device(&sim, None).read(soon()).unwrap().on);
}

#[test]
fn unbound_devices_take_the_published_defaults() {
    // A device never bound to an account, and a client given no credentials.
    let sim = SimPlug::start(SimOptions {
        model: Model::Kp125m,
        ..SimOptions::default()
    })
    .unwrap();
    let mut d = SmartDevice::new(
        transport(sim.addr(), None, KlapVersion::V2),
        TransportKind::Klap,
        None,
    );
    d.set(true, soon()).unwrap();
    assert!(sim.state().relay());
    assert_eq!(
        d.transport().matched().unwrap().source,
        CredentialSource::Default("KASA")
    );
    // Given credentials that the device does not hold, it still works, and
    // says which credentials it took.
    let mut d = device(&sim, None);
    assert!(d.read(soon()).unwrap().on);
    assert_eq!(
        d.transport().matched().unwrap().source,
        CredentialSource::Default("KASA")
    );
}

#[test]
fn expired_sessions_are_renewed_transparently() {
    let sim = sim_with_account(Model::P110, Some(Fault::Expire(2)));
    let mut d = device(&sim, None);
    for i in 0..6 {
        let want = i % 2 == 0;
        d.set(want, soon()).unwrap();
        assert_eq!(d.read(soon()).unwrap().on, want);
    }
    let st = sim.state();
    // 12 worker steps (some batched) through sessions of two requests each.
    assert!(st.handshakes() >= 5, "{} handshakes", st.handshakes());
    assert_eq!(d.transport().handshakes(), st.handshakes());
    assert_eq!(st.transitions().len(), 6);
}

#[test]
fn bad_signature_is_a_klap_error_and_heals() {
    let sim = sim_with_account(Model::P110, Some(Fault::BadSig));
    let mut d = device(&sim, None);
    for _ in 0..2 {
        match d.read(soon()) {
            Err(e @ KasaError::Klap { .. }) => {
                assert!(e.to_string().contains("signature"), "{e}");
                assert!(!e.is_permanent());
            }
            other => panic!("badsig: {other:?}"),
        }
        assert!(!d.transport().has_session(), "a failed session is dropped");
    }
    sim.set_fault(None);
    assert!(!d.read(soon()).unwrap().on);
}

#[test]
fn common_faults_give_clear_errors_within_the_deadline() {
    type Check = fn(&KasaError) -> bool;
    let cases: [(Fault, Check); 4] = [
        (Fault::Garbage, |e| matches!(e, KasaError::BadFrame { .. })),
        (Fault::Err, |e| {
            matches!(e, KasaError::Smart { code: -1, .. }) && !e.is_permanent()
        }),
        (Fault::Drop, |e| {
            matches!(
                e,
                KasaError::Closed {
                    mid_frame: true,
                    ..
                }
            )
        }),
        (Fault::Blackhole, |e| {
            matches!(e, KasaError::TimedOut { .. })
        }),
    ];
    for (fault, want) in cases {
        let sim = sim_with_account(Model::P100, Some(fault.clone()));
        let mut d = device(&sim, None);
        let t0 = Instant::now();
        let err = d
            .read(Instant::now() + Duration::from_millis(400))
            .unwrap_err();
        assert!(want(&err), "{fault:?}: {err:?}");
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{fault:?} took {:?}",
            t0.elapsed()
        );
        assert!(err.to_string().starts_with(&sim.addr().to_string()));
    }
}

#[test]
fn a_batch_that_times_out_is_asked_one_by_one_next_time() {
    let sim = sim_with_account(Model::P110, None);
    let st = sim.state();
    let mut d = device(&sim, None);
    // Let the handshake through, then stop answering requests.
    d.read(soon()).unwrap();
    d.close();
    sim.set_fault(Some(Fault::Blackhole));
    let err = d
        .read(Instant::now() + Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, KasaError::TimedOut { .. }), "{err:?}");
    sim.set_fault(None);
    let before = st.requests();
    assert!(!d.read(soon()).unwrap().on);
    // component_nego and get_device_info, each alone.
    assert_eq!(st.requests() - before, 2);
}

#[test]
fn flaky_and_stuck_devices() {
    let sim = sim_with_account(Model::P110, Some(Fault::Flaky(1)));
    let mut d = device(&sim, None);
    // The dropped handshake fails this attempt; the next one works.
    assert!(d.read(soon()).is_err());
    assert!(!d.read(soon()).unwrap().on);

    let sim = sim_with_account(Model::P110, Some(Fault::Stuck));
    let mut d = device(&sim, None);
    d.set(true, soon()).unwrap();
    assert!(!d.read(soon()).unwrap().on, "a stuck relay reads back off");
    assert_eq!(sim.state().set_requests().len(), 1);
}

#[test]
fn countdown_dead_man_fires_on_the_device() {
    let sim = sim_with_account(Model::P110, None);
    let st = sim.state();
    let mut d = device(&sim, None);
    let kind = d.arm_deadman(Duration::from_millis(1500), soon()).unwrap();
    assert_eq!(kind, DeadmanKind::Countdown { secs: 2 });
    let rules = st.countdown_rules(None);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["desired_states"]["on"], false);
    assert_eq!(rules[0]["enable"], true);
    // Re-arming replaces the rule in place (one rule per plug).
    let id = rules[0]["id"].clone();
    let armed = Instant::now();
    assert_eq!(
        d.arm_deadman(Duration::from_secs(1), soon()).unwrap(),
        DeadmanKind::Countdown { secs: 1 }
    );
    assert_eq!(st.countdown_rules(None)[0]["id"], id);
    d.set(true, soon()).unwrap();
    assert!(st.relay());
    // Poll until the plug opens by itself; it must within a few seconds.
    let limit = Instant::now() + Duration::from_secs(5);
    while st.relay() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!st.relay(), "the countdown switched the plug off");
    let off = st.transitions().last().copied().unwrap();
    assert!(!off.on);
    let fired_after = off.at.saturating_duration_since(armed);
    assert!(
        fired_after <= Duration::from_millis(1100),
        "fired {fired_after:?} after arming"
    );
    assert_eq!(st.countdown_rules(None)[0]["enable"], false);
    // Clearing leaves no enabled rule.
    d.arm_deadman(Duration::from_secs(60), soon()).unwrap();
    d.clear_deadman(soon()).unwrap();
    assert_eq!(st.countdown_rules(None)[0]["enable"], false);
}

#[test]
fn a_countdown_lost_at_switch_on_is_armed_again() {
    let sim = sim_with_account(Model::P110, None);
    let st = sim.state();
    let mut d = device(&sim, None);
    d.arm_deadman(Duration::from_secs(120), soon()).unwrap();
    // Firmware (or the app) dropping the rule between arming and switching.
    st.clear_countdown(None);
    d.set(true, soon()).unwrap();
    let rules = st.countdown_rules(None);
    assert_eq!(rules.len(), 1, "re-armed after the switch-on");
    assert_eq!(rules[0]["enable"], true);
    assert_eq!(rules[0]["desired_states"]["on"], false);
    let remain = rules[0]["remain"].as_u64().unwrap();
    assert!((118..=120).contains(&remain), "remain {remain}");
    // Once cleared, switching on does not arm anything.
    d.clear_deadman(soon()).unwrap();
    st.clear_countdown(None);
    d.set(false, soon()).unwrap();
    d.set(true, soon()).unwrap();
    assert!(st.countdown_rules(None).is_empty());
}

#[test]
fn strip_outlet_dead_man_is_the_outlets_own() {
    let sim = sim_with_account(Model::Ep40m, None);
    let mut d = device(&sim, Some(Outlet::Index(1)));
    assert_eq!(
        d.arm_deadman(Duration::from_secs(90), soon()).unwrap(),
        DeadmanKind::Countdown { secs: 90 }
    );
    let st = sim.state();
    assert_eq!(st.countdown_rules(Some(1)).len(), 1);
    assert!(st.countdown_rules(Some(0)).is_empty());
    d.set(true, soon()).unwrap();
    assert!(st.outlet(1) && !st.outlet(0));
    assert_eq!(st.countdown_rules(Some(1))[0]["enable"], true);
}

#[test]
fn auto_off_when_there_is_no_countdown() {
    let sim = SimPlug::start(SimOptions {
        model: Model::P300,
        credentials: Some(creds()),
        no_countdown: true,
        ..SimOptions::default()
    })
    .unwrap();
    let mut d = device(&sim, Some(Outlet::Index(2)));
    assert_eq!(
        d.arm_deadman(Duration::from_secs(61), soon()).unwrap(),
        DeadmanKind::AutoOff { minutes: 2 }
    );
    assert_eq!(sim.state().auto_off(Some(2)), Some((true, 2)));
    d.clear_deadman(soon()).unwrap();
    assert_eq!(sim.state().auto_off(Some(2)), Some((false, 2)));

    // No countdown and no auto-off: no dead-man, said once and for all.
    let sim = SimPlug::start(SimOptions {
        model: Model::P100,
        credentials: Some(creds()),
        no_countdown: true,
        ..SimOptions::default()
    })
    .unwrap();
    let err = device(&sim, None)
        .arm_deadman(Duration::from_secs(60), soon())
        .unwrap_err();
    assert!(matches!(err, KasaError::Unsupported { .. }), "{err:?}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("P100"), "{err}");
}

/// A peer that answers each connection with the next canned reply.
fn hostile(replies: Vec<Vec<u8>>) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        for reply in replies {
            let Ok((mut s, _)) = l.accept() else { return };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(&reply);
        }
    });
    (addr, h)
}

fn handshake_against(reply: &[u8]) -> KasaError {
    let (addr, h) = hostile(vec![reply.to_vec()]);
    let mut t = transport(addr, Some(creds()), KlapVersion::V2);
    let err = t
        .request(
            &json!({"method": "get_device_info"}),
            Instant::now() + Duration::from_secs(2),
        )
        .unwrap_err();
    h.join().unwrap();
    err
}

#[test]
fn hostile_http_peers_get_clear_errors() {
    let ok_head = |extra: &str, body: &[u8]| {
        let mut v = format!(
            "HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        v.extend_from_slice(body);
        v
    };
    let cookie = "Set-Cookie: TP_SESSIONID=ABC;TIMEOUT=86400\r\n";
    let e = handshake_against(b"SSH-2.0-OpenSSH\r\n\r\n");
    assert!(matches!(e, KasaError::Http { .. }), "{e:?}");
    let e = handshake_against(b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdef");
    assert!(e.to_string().contains("Content-Length"), "{e}");
    // A huge announced body is refused before anything is allocated.
    let e = handshake_against(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n");
    assert!(e.to_string().contains("limit"), "{e}");
    let e = handshake_against(b"HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\nshort");
    assert!(
        matches!(
            e,
            KasaError::Closed {
                mid_frame: true,
                ..
            }
        ),
        "{e:?}"
    );
    let e = handshake_against(&ok_head(cookie, &[7u8; 47]));
    assert!(matches!(e, KasaError::Klap { .. }), "{e:?}");
    let e = handshake_against(&ok_head("", &[7u8; 48]));
    assert!(e.to_string().contains("TP_SESSIONID"), "{e}");
    // The right shape, but the hash matches no credentials: a wrong password.
    let e = handshake_against(&ok_head(cookie, &[7u8; 48]));
    assert!(matches!(e, KasaError::Auth { .. }), "{e:?}");
    let e = handshake_against(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert!(
        matches!(e, KasaError::HttpStatus { status: 404, .. }),
        "{e:?}"
    );
    let e = handshake_against(b"");
    assert!(
        matches!(
            e,
            KasaError::Closed {
                mid_frame: false,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn mutated_handshake_replies_never_panic() {
    let mut good = b"HTTP/1.1 200 OK\r\nSet-Cookie: TP_SESSIONID=ABC;TIMEOUT=86400\r\n\
Content-Length: 48\r\n\r\n"
        .to_vec();
    good.extend_from_slice(&[0x5a; 48]);
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut replies = Vec::new();
    for _ in 0..150 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let mut m = good.clone();
        for k in 0..3 {
            let i = ((s >> (k * 16)) as usize) % m.len();
            m[i] = (s >> (k * 8 + 3)) as u8;
        }
        if s % 3 == 0 {
            m.truncate((s >> 20) as usize % m.len());
        }
        replies.push(m);
    }
    let n = replies.len();
    let (addr, h) = hostile(replies);
    let mut t = transport(addr, Some(creds()), KlapVersion::V2);
    for _ in 0..n {
        let r = t.request(
            &json!({"method": "get_device_info"}),
            Instant::now() + Duration::from_secs(2),
        );
        let e = r.expect_err("no mutated reply can make a session");
        assert!(!e.to_string().is_empty());
    }
    h.join().unwrap();
}

/// A transport that answers from a script, for driving the SMART layer with
/// replies no simulator sends.
struct Scripted {
    replies: Vec<Value>,
}

impl Transport for Scripted {
    fn address(&self) -> &str {
        "scripted:80"
    }
    fn request(&mut self, _: &Value, _: Instant) -> Result<Value, KasaError> {
        if self.replies.is_empty() {
            return Ok(json!({"error_code": 0}));
        }
        Ok(self.replies.remove(0))
    }
    fn close(&mut self) {}
}

#[test]
fn smart_layer_survives_any_reply() {
    let shapes = [
        json!(null),
        json!([]),
        json!("x"),
        json!({}),
        json!({"error_code": "0"}),
        json!({"error_code": 0}),
        json!({"error_code": 0, "result": []}),
        json!({"error_code": 0, "result": {"responses": 5}}),
        json!({"error_code": 0, "result": {"responses": [{"method": "get_device_info"}]}}),
        json!({"error_code": 0, "result": {"responses": [
            {"method": "component_nego", "error_code": 0, "result": {"component_list": 3}},
            {"method": "get_device_info", "error_code": 0, "result": {"device_on": "yes"}}]}}),
        json!({"error_code": 0, "result": {"component_list": [{"id": "countdown"}]}}),
        json!({"error_code": 0, "result": {"device_on": true, "model": 7}}),
        json!({"error_code": 0, "result": {"rule_list": [{"id": 5}]}}),
        json!({"error_code": 0, "result": {"child_device_list": [{}], "sum": 99999, "start_index": 0}}),
        json!({"error_code": 0, "result": {"responseData": {"error_code": -77777}}}),
        json!({"error_code": -123456}),
        json!({"error_code": 9999}),
        json!({"error_code": -1501}),
        json!({"error_code": i64::MIN}),
    ];
    let mut s = 0xdead_beef_cafe_f00du64;
    for round in 0..400 {
        let mut replies = Vec::new();
        for _ in 0..12 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            replies.push(shapes[(s as usize) % shapes.len()].clone());
        }
        let outlet = (round % 3 == 0).then_some(Outlet::Index(1));
        let mut d = SmartDevice::new(Scripted { replies }, TransportKind::Klap, outlet);
        let deadline = Instant::now() + Duration::from_secs(1);
        let results = [
            d.read(deadline).err(),
            d.set(true, deadline).err(),
            d.arm_deadman(Duration::from_secs(30), deadline).err(),
            d.clear_deadman(deadline).err(),
            d.info(deadline).err(),
        ];
        for e in results.into_iter().flatten() {
            let text = e.to_string();
            assert!(text.starts_with("scripted:80: "), "{text}");
        }
    }
    // Unknown and known codes are named, and classified.
    let mut d = SmartDevice::new(
        Scripted {
            replies: vec![json!({"error_code": -123456})],
        },
        TransportKind::Klap,
        None,
    );
    let e = d.read(soon()).unwrap_err();
    assert!(e.to_string().contains("-123456 (UNKNOWN)"), "{e}");
    assert!(!e.is_permanent());
    let mut d = SmartDevice::new(
        Scripted {
            replies: vec![json!({"error_code": -1501})],
        },
        TransportKind::Klap,
        None,
    );
    let e = d.read(soon()).unwrap_err();
    assert!(matches!(e, KasaError::Auth { .. }), "{e:?}");
}

#[test]
fn probe_announces_klap_with_the_right_scheme() {
    use kasa_thermostat::kasa::discovery::probe::{klap_probe_packet, parse_klap_reply};
    for (model, lv, ty) in [
        (Model::P110, Some(2), "SMART.TAPOPLUG"),
        (Model::Ep40m, Some(2), "SMART.KASAPLUG"),
        (Model::Hs100Klap, None, "IOT.SMARTPLUGSWITCH"),
    ] {
        let sim = sim_with_account(model, None);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(&klap_probe_packet(), sim.addr()).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(parse_klap_reply(&buf[..n]).as_deref(), Some("KLAP"));
        let v: Value = serde_json::from_slice(&buf[16..n]).unwrap();
        let r = &v["result"];
        assert_eq!(r["device_type"], ty);
        assert_eq!(r["mgt_encrypt_schm"]["lv"].as_i64(), lv);
        assert_eq!(r["mgt_encrypt_schm"]["http_port"], 80);
    }
}
