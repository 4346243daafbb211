//! The real binary: `plug` on/off/state against a simulated plug, its one-line
//! errors, `discover --target` on loopback, and `simulate-plug` until SIGTERM.

use std::process::Output;
use std::time::Duration;

use crate::util::kasa::{refused_port, sim};
use crate::util::simulate_plug;
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    crate::util::bin()
        .args(args)
        .output()
        .expect("run the binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn plug_on_off_state() {
    let plug = sim(Model::Hs100, None);
    let addr = plug.addr().to_string();
    let o = run(&["plug", &addr, "on", "--timing-scale", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("{addr}: on (verified)"));
    assert!(plug.state().relay());

    let o = run(&["plug", &addr, "state", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["on"], true);

    let o = run(&["plug", &addr, "off"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!plug.state().relay());

    let o = run(&["plug", &addr, "sysinfo", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["model"], "HS100(UK)");
    assert_eq!(v["relay_state"], 0);
}

#[test]
fn plug_outlet_of_a_strip() {
    let plug = sim(Model::Hs300, None);
    let addr = plug.addr().to_string();
    let o = run(&[
        "plug",
        &addr,
        "on",
        "--outlet",
        "4",
        "--timing-scale",
        "0.01",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(plug.state().outlet(4) && !plug.state().outlet(0));
    let o = run(&["plug", &addr, "state", "--child", "04", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["on"], true);
    let o = run(&["plug", &addr, "state", "--timing-scale", "0.01"]);
    assert_eq!(o.status.code(), Some(1), "a strip needs an outlet");
    assert!(stderr(&o).contains("--outlet"), "{}", stderr(&o));
}

#[test]
fn unverified_switch_fails_with_one_line() {
    let (_guard, addr) = refused_port();
    let addr = addr.to_string();
    let o = run(&["plug", &addr, "on", "--timing-scale", "0.01"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&addr) && err.contains("3 attempts"), "{err}");

    let o = run(&["plug", &addr, "dance"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The plug acknowledges the switch, but its relay moves only after every
/// read-back has given up: `plug on` fails, and says that the state is
/// unknown (it may well be on), not off.
#[test]
fn an_unverified_switch_says_the_state_is_unknown() {
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(1500))));
    let addr = plug.addr().to_string();
    let o = run(&["plug", &addr, "on", "--timing-scale", "0.01"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&addr) && err.contains("3 attempts") && err.contains("unknown"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    // Every attempt that got past its read sent the switch (under an
    // emulated CPU the 60 ms reads may time out first).
    assert!(!plug.state().set_requests().is_empty());
    // And indeed: the relay closes on its own.
    assert!(crate::util::kasa::wait_for(Duration::from_secs(3), || plug
        .state()
        .relay()));
}

/// The same against the `simulate-plug` process with `--fault lag:MS`.
#[test]
fn simulate_plug_lag_fault_makes_plug_on_fail_unknown() {
    let (mut child, addr) = simulate_plug(["--fault", "lag:1500", "--bind", "127.0.0.1:0"]);
    let addr = addr.expect("simulate-plug's address").to_string();
    let o = run(&["plug", &addr, "on", "--timing-scale", "0.01"]);
    // SAFETY: plain kill(2) on the pid of a child this test spawned.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    child.wait().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("unknown") && err.contains(&addr), "{err}");
}

#[test]
fn discover_target_on_loopback() {
    let plug = SimPlug::start(SimOptions {
        model: Model::Hs300,
        alias: "Bench strip".into(),
        ..SimOptions::default()
    })
    .unwrap();
    plug.state().set_outlet(1, true);
    let addr = plug.addr().to_string();
    let o = run(&["discover", "--target", &addr, "--timeout", "0.3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["alias"], "Bench strip");
    assert_eq!(list[0]["model"], "HS300(US)");
    assert_eq!(list[0]["port"], plug.addr().port());
    assert_eq!(list[0]["outlets"][1]["state"], true);

    let o = run(&["discover", "--target", &addr, "--timeout", "0.3"]);
    let table = stdout(&o);
    assert!(table.starts_with("ALIAS"), "{table}");
    assert!(
        table.contains("Bench strip") && table.contains("1:on"),
        "{table}"
    );

    let klap = SimPlug::start(SimOptions {
        klap_only: true,
        ..SimOptions::default()
    })
    .unwrap();
    let o = run(&[
        "discover",
        "--target",
        &klap.addr().to_string(),
        "--timeout",
        "0.3",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    // The scheme the probe announced (spelled as `--protocol` takes it).
    assert!(
        v[0]["protocol"]
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case("klap")),
        "{v}"
    );
}

#[test]
fn simulate_plug_serves_until_sigterm() {
    let (mut child, addr) = simulate_plug(["--model", "hs110", "--bind", "127.0.0.1:0"]);
    let addr = addr.expect("simulate-plug's address").to_string();
    let o = run(&["plug", &addr, "on", "--timing-scale", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["plug", &addr, "sysinfo", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (v["model"].as_str(), v["relay_state"].as_u64()),
        (Some("HS110(EU)"), Some(1))
    );

    // SAFETY: plain kill(2) on the pid of a child this test spawned.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(crate::util::kasa::wait_for(Duration::from_secs(2), || {
        std::net::TcpStream::connect(&addr).is_err()
    }));

    let o = run(&["simulate-plug", "--fault", "wobbly"]);
    assert_eq!(o.status.code(), Some(2));
}
