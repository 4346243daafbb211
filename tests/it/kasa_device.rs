//! The legacy device (`IotDevice` over `XorTransport`) against simulated plugs
//! and hostile peers on loopback: every fault, both err_code levels, strips,
//! oversize frames, the KLAP hint, the kept-open connection, and every
//! request bounded by its deadline.

use std::time::{Duration, Instant};

use kasa_thermostat::kasa::iot;
use kasa_thermostat::kasa::iot::IotDevice;
use kasa_thermostat::kasa::transport::xor;
use kasa_thermostat::kasa::transport::xor::XorTransport;
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::kasa::{Device, KasaError, Outlet, ReplyError, TransportKind};
use kasa_thermostat::msg::DeadmanKind;
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};
use serde_json::json;

use crate::util::kasa::{fast_timing, raw_peer, refused_port, sim, wait_for};

const T: Duration = Duration::from_millis(500);

/// The deadline of a request started now with the usual timeout.
fn t() -> Instant {
    Instant::now() + T
}

fn transport(port: u16) -> XorTransport {
    XorTransport::new("127.0.0.1", port, fast_timing().connect)
}

fn device_at(port: u16, outlet: Option<Outlet>) -> IotDevice<XorTransport> {
    IotDevice::new(transport(port), outlet, TransportKind::Legacy)
}

fn device(plug: &SimPlug) -> IotDevice<XorTransport> {
    device_at(plug.addr().port(), None)
}

#[test]
fn sysinfo_looks_real() {
    for (model, name) in [
        (Model::Hs100, "HS100(UK)"),
        (Model::Hs110, "HS110(EU)"),
        (Model::Hs300, "HS300(US)"),
    ] {
        let plug = sim(model, None);
        let info = device(&plug).sysinfo(t()).unwrap();
        assert_eq!(info.model, name);
        assert_eq!(info.device_id.len(), 40);
        assert!(info.device_id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(info.mac.len(), 17);
        assert_eq!(info.extra["mic_type"], "IOT.SMARTPLUGSWITCH");
        assert_eq!(info.extra["err_code"], 0);
        if model == Model::Hs300 {
            assert_eq!(info.children.len(), 6);
            for (i, c) in info.children.iter().enumerate() {
                assert_eq!(c.id, format!("{}{:02}", info.device_id, i));
            }
            assert_eq!(info.relay_state, None);
        } else {
            assert_eq!(info.relay_state, Some(false));
        }
        assert_eq!(info.has_emeter(), model != Model::Hs100);
    }
}

#[test]
fn switch_and_keep_one_connection() {
    let plug = sim(Model::Hs100, None);
    let mut d = device(&plug);
    d.set(true, t()).unwrap();
    assert!(plug.state().relay());
    let status = d.read(t()).unwrap();
    assert!(status.on);
    assert_eq!(status.model, "HS100(UK)");
    d.set(false, t()).unwrap();
    assert!(!plug.state().relay());
    assert_eq!(plug.state().requests(), 3);
    assert_eq!(plug.state().connections(), 1, "one kept-open connection");
    assert_eq!(plug.state().transitions().len(), 2);
}

#[test]
fn reconnects_after_an_error() {
    let plug = sim(Model::Hs100, None);
    let mut d = device(&plug);
    d.sysinfo(t()).unwrap();
    plug.set_fault(Some(Fault::Drop));
    assert!(d.sysinfo(t()).is_err());
    plug.set_fault(None);
    d.sysinfo(t()).unwrap();
    assert_eq!(plug.state().connections(), 2);
}

#[test]
fn strip_outlet_by_child_id() {
    let plug = sim(Model::Hs300, None);
    let info = device(&plug).sysinfo(t()).unwrap();
    let mut four = device_at(
        plug.addr().port(),
        Some(Outlet::Id(info.children[4].id.clone())),
    );
    four.set(true, t()).unwrap();
    let st = plug.state();
    assert!(st.outlet(4));
    assert!((0..6).filter(|&i| i != 4).all(|i| !st.outlet(i)));
    assert!(four.read(t()).unwrap().on);
    // A two-digit suffix is accepted as real strips do.
    let mut one = device_at(plug.addr().port(), Some(Outlet::Id("01".into())));
    one.set(true, t()).unwrap();
    assert!(st.outlet(1));
    let e = four.emeter(t()).unwrap();
    assert!(e.power_w > 0.0 && e.voltage_v > 200.0);
    // An id the strip does not have is caught on our side, naming the outlet.
    let mut nope = device_at(plug.addr().port(), Some(Outlet::Id("nope".into())));
    match nope.set(true, t()) {
        Err(e @ KasaError::Outlet { .. }) => {
            assert!(e.is_permanent());
            assert!(e.to_string().contains("nope"), "{e}");
        }
        other => panic!("unknown child id: {other:?}"),
    }
    // And the plug itself refuses it, as a real strip does.
    let mut raw = transport(plug.addr().port());
    let req = iot::request(
        Some("nope"),
        "system",
        "set_relay_state",
        json!({"state": 1}),
    );
    let reply = raw.request(&req, t()).unwrap();
    match iot::extract(&reply, "system", "set_relay_state") {
        Err(ReplyError::Device { code: -14, .. }) => {}
        other => panic!("unknown child id at the plug: {other:?}"),
    }
}

#[test]
fn device_errors_at_both_levels() {
    let plug = sim(Model::Hs100, None);
    let mut d = device(&plug);
    match d.emeter(t()) {
        Err(
            e @ KasaError::Device {
                method: None,
                code: -1,
                ..
            },
        ) => {
            let text = e.to_string();
            assert!(
                text.contains(&plug.addr().to_string()) && text.contains("module not support"),
                "{text}"
            );
            assert!(e.is_permanent(), "unsupported is not retried");
        }
        other => panic!("hs100 has no emeter: {other:?}"),
    }
    let reply = transport(plug.addr().port())
        .request(&json!({"system": {"no_such_method": {}}}), t())
        .unwrap();
    assert_eq!(reply["system"]["no_such_method"]["err_code"], -2);
    match d.call("system", "no_such_method", json!({}), t()) {
        Err(KasaError::Device {
            method: Some(m),
            code: -2,
            ..
        }) => assert_eq!(m, "no_such_method"),
        other => panic!("no such method: {other:?}"),
    }
    let plug = sim(Model::Hs110, Some(Fault::Err));
    match device(&plug).sysinfo(t()) {
        Err(KasaError::Device {
            method: Some(m),
            code: -1,
            ..
        }) => assert_eq!(m, "get_sysinfo"),
        other => panic!("err fault: {other:?}"),
    }
}

#[test]
fn hs110_emeter_in_watts() {
    let plug = sim(Model::Hs110, None);
    let mut d = device(&plug);
    assert_eq!(d.emeter(t()).unwrap().power_w, 0.0);
    plug.state().set_relay(true);
    let e = d.emeter(t()).unwrap();
    assert!((e.power_w - 40.0).abs() < 1e-9, "{e:?}");
}

#[test]
fn countdown_holds_one_rule_and_runs_it() {
    let plug = sim(Model::Hs100, None);
    let mut d = device(&plug);
    d.set(true, t()).unwrap();
    let rule =
        |delay: u32, name: &str| json!({"enable": 1, "delay": delay, "act": 0, "name": name});
    d.call("count_down", "add_rule", rule(1, "test"), t())
        .unwrap();
    match d.call("count_down", "add_rule", rule(5, "second"), t()) {
        Err(KasaError::Device { code: -10, msg, .. }) => assert_eq!(msg, "table is full"),
        other => panic!("second rule: {other:?}"),
    }
    let rules = d.countdown_rules(t()).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].delay, rules[0].act, rules[0].enable), (1, 0, 1));
    d.clear_deadman(t()).unwrap();
    assert!(d.countdown_rules(t()).unwrap().is_empty());
    // Armed for real: the plug switches itself off one second later.
    // Arming replaces whatever rule is there (the table holds one).
    d.call("count_down", "add_rule", rule(30, "old"), t())
        .unwrap();
    let kind = d.arm_deadman(Duration::from_millis(400), t()).unwrap();
    let armed = Instant::now();
    assert_eq!(kind, DeadmanKind::Countdown { secs: 1 });
    let rules = d.countdown_rules(t()).unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].delay, 1);
    assert!(wait_for(Duration::from_secs(3), || !plug.state().relay()));
    let off = plug.state().transitions().last().copied().unwrap();
    assert!(!off.on);
    let after = off.at.duration_since(armed);
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(1500),
        "{after:?}"
    );
}

#[test]
fn blackhole_and_slow_time_out() {
    for fault in [Fault::Blackhole, Fault::Slow(Duration::from_millis(400))] {
        let plug = sim(Model::Hs100, Some(fault.clone()));
        let started = Instant::now();
        match device(&plug).sysinfo(started + Duration::from_millis(100)) {
            Err(e @ KasaError::TimedOut { .. }) => {
                let text = e.to_string();
                assert!(text.contains("timed out after"), "{text}");
                assert!(text.contains(&plug.addr().to_string()), "{text}");
            }
            other => panic!("{fault:?}: {other:?}"),
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(90) && took < Duration::from_millis(350),
            "{fault:?}: {took:?}"
        );
        assert_eq!(plug.state().requests(), 1);
    }
    let plug = sim(Model::Hs100, Some(Fault::Slow(Duration::from_millis(20))));
    assert!(device(&plug).sysinfo(t()).is_ok());
}

/// A kept-open socket that the plug has closed is retried once on a fresh
/// socket, as part of the same request.
#[test]
fn a_closed_kept_open_socket_is_retried_once() {
    let plug = sim(Model::Hs100, None);
    let mut d = device(&plug);
    d.sysinfo(t()).unwrap();
    // The next request is dropped and its connection closed, as a plug
    // does with an idle connection.
    plug.set_fault(Some(Fault::Flaky(1)));
    d.sysinfo(t()).expect("the retry on a fresh socket answers");
    assert_eq!(plug.state().connections(), 2);
    assert_eq!(plug.state().requests(), 3);
}

/// That retry fits within the request's deadline: a reconnect never gets a
/// fresh timeout of its own (one request took twice its timeout before).
#[test]
fn a_reconnect_fits_within_the_deadline() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (closed_tx, closed_rx) = crossbeam_channel::bounded(1);
    let peer = std::thread::spawn(move || {
        // First connection: answer one request, then close it.
        let (mut s, _) = l.accept().unwrap();
        xor::read_frame(&mut s).unwrap();
        let info = json!({"system": {"get_sysinfo": {
            "alias": "peer", "model": "HS100(UK)", "mac": "50:C7:BF:00:00:01",
            "deviceId": "X", "relay_state": 0, "err_code": 0}}});
        s.write_all(&xor::frame(info.to_string().as_bytes()))
            .unwrap();
        drop(s);
        closed_tx.send(()).unwrap();
        // Second connection: take the request, never answer.
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 512];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let mut d = device_at(port, None);
    d.sysinfo(t()).unwrap();
    closed_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let budget = Duration::from_millis(300);
    let started = Instant::now();
    let r = d.sysinfo(started + budget);
    let took = started.elapsed();
    assert!(
        matches!(r, Err(KasaError::TimedOut { .. })),
        "the fresh socket was blackholed: {r:?}"
    );
    assert!(
        took < budget + Duration::from_millis(100),
        "{took:?} for a {budget:?} request"
    );
    drop(d);
    peer.join().unwrap();
}

#[test]
fn drop_garbage_flaky() {
    let plug = sim(Model::Hs100, Some(Fault::Drop));
    match device(&plug).sysinfo(t()) {
        Err(
            e @ KasaError::Closed {
                mid_frame: true, ..
            },
        ) => {
            assert!(e.to_string().contains("mid-frame"))
        }
        other => panic!("drop: {other:?}"),
    }
    let plug = sim(Model::Hs100, Some(Fault::Garbage));
    match device(&plug).sysinfo(t()) {
        Err(e @ KasaError::BadFrame { .. }) => assert!(e.to_string().contains("not JSON")),
        other => panic!("garbage: {other:?}"),
    }
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let mut d = device(&plug);
    for _ in 0..2 {
        let r = d.sysinfo(t());
        assert!(
            matches!(
                r,
                Err(KasaError::Closed {
                    mid_frame: false,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert!(d.sysinfo(t()).is_ok());
}

#[test]
fn stuck_and_lag_acknowledge_without_moving() {
    let plug = sim(Model::Hs100, Some(Fault::Stuck));
    let mut d = device(&plug);
    d.set(true, t()).unwrap();
    assert!(!d.read(t()).unwrap().on);
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(150))));
    let mut d = device(&plug);
    d.set(true, t()).unwrap();
    assert!(!d.read(t()).unwrap().on);
    assert!(wait_for(Duration::from_secs(2), || plug.state().relay()));
    let tr = plug.state().transitions();
    let lag = tr[0].at.duration_since(plug.state().set_requests()[0]);
    assert!(
        lag >= Duration::from_millis(150) && lag < Duration::from_millis(200),
        "{lag:?}"
    );
}

#[test]
fn oversize_reply_is_refused() {
    let (addr, peer) = raw_peer(vec![0x00, 0x10, 0x00, 0x01, 1, 2, 3]);
    let mut d = device_at(addr.port(), None);
    match d.sysinfo(t()) {
        Err(KasaError::Oversize { len, addr: a, .. }) => {
            assert_eq!(len, 0x0010_0001);
            assert_eq!(a, addr.to_string());
        }
        other => panic!("oversize: {other:?}"),
    }
    drop(d);
    peer.join().unwrap();
}

#[test]
fn refused_without_and_with_klap() {
    let (_guard, addr) = refused_port();
    match device_at(addr.port(), None).sysinfo(t()) {
        Err(
            e @ KasaError::Refused {
                klap_hint: false, ..
            },
        ) => {
            let text = e.to_string();
            assert!(
                text.contains(&addr.to_string()) && !text.contains("KLAP"),
                "{text}"
            );
            assert!(!e.is_permanent(), "a refused port may open again");
        }
        other => panic!("refused: {other:?}"),
    }
    let klap = SimPlug::start(SimOptions {
        klap_only: true,
        ..SimOptions::default()
    })
    .unwrap();
    match device(&klap).sysinfo(t()) {
        Err(
            e @ KasaError::Refused {
                klap_hint: true, ..
            },
        ) => {
            let text = e.to_string();
            assert!(
                text.contains("KLAP") && text.contains("Third-Party Compatibility"),
                "{text}"
            );
            assert!(text.contains(&klap.addr().to_string()), "{text}");
            assert!(e.is_permanent());
        }
        other => panic!("klap: {other:?}"),
    }
}
