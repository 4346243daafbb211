//! The blocking client against simulated plugs and hostile peers on loopback:
//! every fault, both err_code levels, strips, oversize frames, the KLAP hint,
//! and the kept-open connection.

mod util;

use std::time::{Duration, Instant};

use kasa_thermostat::kasa::{Client, Fault, KasaError, Model, SimOptions, SimPlug};
use serde_json::json;
use util::kasa::{fast_timing, raw_peer, refused_port, sim};

const T: Duration = Duration::from_millis(500);

fn client(plug: &SimPlug) -> Client {
    Client::new("127.0.0.1", plug.addr().port(), &fast_timing())
}

#[test]
fn sysinfo_looks_real() {
    for (model, name) in [
        (Model::Hs100, "HS100(UK)"),
        (Model::Hs110, "HS110(EU)"),
        (Model::Hs300, "HS300(US)"),
    ] {
        let plug = sim(model, None);
        let info = client(&plug).get_sysinfo(T).unwrap();
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
            assert_eq!(info.relay_state, Some(0));
        }
        assert_eq!(info.has_emeter(), model != Model::Hs100);
    }
}

#[test]
fn switch_and_keep_one_connection() {
    let plug = sim(Model::Hs100, None);
    let mut c = client(&plug);
    c.set_relay_state(None, true, T).unwrap();
    assert!(plug.state().relay());
    assert_eq!(c.get_sysinfo(T).unwrap().relay_state, Some(1));
    c.set_relay_state(None, false, T).unwrap();
    assert!(!plug.state().relay());
    assert_eq!(plug.state().requests(), 3);
    assert_eq!(plug.state().connections(), 1, "one kept-open connection");
    assert_eq!(plug.state().transitions().len(), 2);
}

#[test]
fn reconnects_after_an_error() {
    let plug = sim(Model::Hs100, None);
    let mut c = client(&plug);
    c.get_sysinfo(T).unwrap();
    plug.set_fault(Some(Fault::Drop));
    assert!(c.get_sysinfo(T).is_err());
    plug.set_fault(None);
    c.get_sysinfo(T).unwrap();
    assert_eq!(plug.state().connections(), 2);
}

#[test]
fn strip_outlet_by_child_context() {
    let plug = sim(Model::Hs300, None);
    let mut c = client(&plug);
    let info = c.get_sysinfo(T).unwrap();
    c.set_relay_state(Some(&info.children[4].id), true, T)
        .unwrap();
    let st = plug.state();
    assert!(st.outlet(4));
    assert!((0..6).filter(|&i| i != 4).all(|i| !st.outlet(i)));
    // A two-digit suffix is accepted as real strips do.
    c.set_relay_state(Some("01"), true, T).unwrap();
    assert!(st.outlet(1));
    let e = c.emeter_realtime(Some(&info.children[4].id), T).unwrap();
    assert!(e.power_w > 0.0 && e.voltage_v > 200.0);
    match c.set_relay_state(Some("nope"), true, T) {
        Err(KasaError::Device { code: -14, .. }) => {}
        other => panic!("unknown child id: {other:?}"),
    }
}

#[test]
fn device_errors_at_both_levels() {
    let plug = sim(Model::Hs100, None);
    let mut c = client(&plug);
    match c.emeter_realtime(None, T) {
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
        }
        other => panic!("hs100 has no emeter: {other:?}"),
    }
    let reply = c
        .request(&json!({"system": {"no_such_method": {}}}), T)
        .unwrap();
    assert_eq!(reply["system"]["no_such_method"]["err_code"], -2);
    let plug = sim(Model::Hs110, Some(Fault::Err));
    match client(&plug).get_sysinfo(T) {
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
    let mut c = client(&plug);
    assert_eq!(c.emeter_realtime(None, T).unwrap().power_w, 0.0);
    plug.state().set_relay(true);
    let e = c.emeter_realtime(None, T).unwrap();
    assert!((e.power_w - 40.0).abs() < 1e-9, "{e:?}");
}

#[test]
fn countdown_holds_one_rule_and_runs_it() {
    let plug = sim(Model::Hs100, None);
    let mut c = client(&plug);
    c.set_relay_state(None, true, T).unwrap();
    c.countdown_add_rule(None, 1, false, "test", T).unwrap();
    match c.countdown_add_rule(None, 5, false, "second", T) {
        Err(KasaError::Device { code: -10, msg, .. }) => assert_eq!(msg, "table is full"),
        other => panic!("second rule: {other:?}"),
    }
    let rules = c.countdown_get_rules(None, T).unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].delay, rules[0].act, rules[0].enable), (1, 0, 1));
    c.countdown_delete_all(None, T).unwrap();
    assert!(c.countdown_get_rules(None, T).unwrap().is_empty());
    // Armed for real: the plug switches itself off one second later.
    c.countdown_add_rule(None, 1, false, "test", T).unwrap();
    let armed = Instant::now();
    assert!(util::kasa::wait_for(Duration::from_secs(3), || !plug
        .state()
        .relay()));
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
        match client(&plug).get_sysinfo(Duration::from_millis(100)) {
            Err(e @ KasaError::TimedOut { .. }) => {
                assert!(e.to_string().contains("timed out after 100 ms"), "{e}")
            }
            other => panic!("{fault:?}: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_millis(350));
        assert_eq!(plug.state().requests(), 1);
    }
    let plug = sim(Model::Hs100, Some(Fault::Slow(Duration::from_millis(20))));
    assert!(client(&plug).get_sysinfo(T).is_ok());
}

#[test]
fn drop_garbage_flaky() {
    let plug = sim(Model::Hs100, Some(Fault::Drop));
    match client(&plug).get_sysinfo(T) {
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
    match client(&plug).get_sysinfo(T) {
        Err(e @ KasaError::BadFrame { .. }) => assert!(e.to_string().contains("not JSON")),
        other => panic!("garbage: {other:?}"),
    }
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let mut c = client(&plug);
    for _ in 0..2 {
        let r = c.get_sysinfo(T);
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
    assert!(c.get_sysinfo(T).is_ok());
}

#[test]
fn stuck_and_lag_acknowledge_without_moving() {
    let plug = sim(Model::Hs100, Some(Fault::Stuck));
    let mut c = client(&plug);
    c.set_relay_state(None, true, T).unwrap();
    assert_eq!(c.get_sysinfo(T).unwrap().relay_state, Some(0));
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(150))));
    let mut c = client(&plug);
    c.set_relay_state(None, true, T).unwrap();
    assert_eq!(c.get_sysinfo(T).unwrap().relay_state, Some(0));
    assert!(util::kasa::wait_for(Duration::from_secs(2), || plug
        .state()
        .relay()));
    let t = plug.state().transitions();
    let lag = t[0].at.duration_since(plug.state().set_requests()[0]);
    assert!(
        lag >= Duration::from_millis(150) && lag < Duration::from_millis(200),
        "{lag:?}"
    );
}

#[test]
fn oversize_reply_is_refused() {
    let (addr, peer) = raw_peer(vec![0x00, 0x10, 0x00, 0x01, 1, 2, 3]);
    let mut c = Client::new("127.0.0.1", addr.port(), &fast_timing());
    match c.get_sysinfo(T) {
        Err(KasaError::Oversize { len, addr: a }) => {
            assert_eq!(len, 0x0010_0001);
            assert_eq!(a, addr.to_string());
        }
        other => panic!("oversize: {other:?}"),
    }
    drop(c);
    peer.join().unwrap();
}

#[test]
fn refused_without_and_with_klap() {
    let (_guard, addr) = refused_port();
    let mut c = Client::new("127.0.0.1", addr.port(), &fast_timing());
    match c.get_sysinfo(T) {
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
        }
        other => panic!("refused: {other:?}"),
    }
    let klap = SimPlug::start(SimOptions {
        klap_only: true,
        ..SimOptions::default()
    })
    .unwrap();
    match client(&klap).get_sysinfo(T) {
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
        }
        other => panic!("klap: {other:?}"),
    }
}

#[test]
fn unresolvable_host_names_the_host() {
    let mut c = Client::new("no-such-host.invalid", 9999, &fast_timing());
    match c.get_sysinfo(T) {
        Err(e @ KasaError::Resolve { .. }) => {
            assert!(e.to_string().contains("no-such-host.invalid"))
        }
        other => panic!("resolve: {other:?}"),
    }
}
