//! Changing the running service: `kasa-thermostat set` over the control
//! socket (applied, refused, no service), overrides that survive a restart
//! and give way to an edit of the config, and SIGHUP with a good config, a
//! bad one and one that changes a key needing a restart.

use std::fs;
use std::time::Duration;

use serde_json::Value;

use crate::util::service::*;

const WAIT: Duration = Duration::from_secs(10);

fn set(svc: &Running, args: &[&str]) -> (i32, String, String) {
    let out = bin()
        .arg("set")
        .args(args)
        .arg("--control-socket")
        .arg(svc.socket_path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn limits(svc: &Running) -> (Value, Value) {
    let s = svc.state();
    (s["low_limit"].clone(), s["high_limit"].clone())
}

#[test]
fn set_applies_a_change_and_says_why_it_refuses_one() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let svc = rig.start();
    assert!(
        eventually(WAIT, || svc.socket_path().exists()),
        "{}",
        svc.stderr()
    );

    let (code, out, err) = set(&svc, &["--low", "17", "--high", "19.5"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "limits 18 .. 20 -> 17 .. 19.5 °C");
    assert!(eventually(WAIT, || limits(&svc) == (17.0.into(), 19.5.into())));

    // Refusals: the config's own messages, exit 1, nothing changed.
    let (code, out, err) = set(&svc, &["--mode", "cool"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("refused: key `mode`: \"cool\" needs a `cooler` plug, and none is configured"),
        "{err}"
    );
    let (code, _, err) = set(&svc, &["--low", "25"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("key `low_limit`: 25 must be below high_limit (19.5)"),
        "{err}"
    );
    let (code, _, err) = set(&svc, &["--profile-restart"]);
    assert_eq!(code, 1);
    assert!(err.contains("no profile is configured"), "{err}");

    // `status` shows the override with its source and time.
    let out = bin()
        .args(["status", "--state-file"])
        .arg(svc.state_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("override     limits 17 .. 19.5 °C (config: 18 .. 20) by cli at 20"),
        "{text}"
    );
    assert!(
        svc.log().contains("cli: limits 18 .. 20 -> 17 .. 19.5 °C"),
        "{}",
        svc.log()
    );
    assert!(
        svc.log().contains("cli: refused: key `mode`"),
        "{}",
        svc.log()
    );

    // Usage errors exit 2; no service answering exits 1 and says so.
    let (code, _, err) = set(&svc, &[]);
    assert_eq!(code, 2, "{err}");
    let out = bin()
        .args(["set", "--mode", "off", "--control-socket"])
        .arg(rig.dir.path().join("nobody.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service answers on"));
}

#[test]
fn overrides_survive_a_restart_and_an_edit_of_the_config_clears_them() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let mut svc = rig.start();
    assert!(
        eventually(WAIT, || svc.socket_path().exists()),
        "{}",
        svc.stderr()
    );
    let (code, out, err) = set(&svc, &["--low", "16"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(svc.stop().success());

    let svc = rig.start();
    assert!(
        eventually(WAIT, || limits(&svc).0 == 16.0
            && svc.state()["pid"] == svc.pid()),
        "{}",
        svc.log()
    );
    assert!(
        svc.log().contains("override in force: limits 16 .. 20 °C"),
        "{}",
        svc.log()
    );
    let mut svc = svc;
    assert!(svc.stop().success());

    // The config now says 17: the config wins, and the log says so.
    let rig = rig.with("low_limit", 17.0.into());
    let svc = rig.start();
    assert!(
        eventually(WAIT, || limits(&svc).0 == 17.0
            && svc.state()["pid"] == svc.pid()),
        "{}",
        svc.log()
    );
    assert!(
        svc.log()
            .contains("the config changed `low_limit`/`high_limit` (18 .. 20 -> 17 .. 20): the override limits 16 .. 20 (cli,"),
        "{}",
        svc.log()
    );
    let kept = fs::read_to_string(rig.dir.path().join("lib/overrides.json")).unwrap();
    assert!(!kept.contains("limits"), "{kept}");
}

#[test]
fn sighup_applies_a_good_config_and_refuses_a_bad_one() {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let svc = rig.start();
    assert!(
        eventually(WAIT, || svc.state()["high_limit"] == 20.0),
        "{}",
        svc.stderr()
    );
    let write =
        |v: &Value| fs::write(svc.config_path(), serde_json::to_string_pretty(v).unwrap()).unwrap();

    let mut good = rig.config.clone();
    good["high_limit"] = 22.0.into();
    write(&good);
    svc.signal(libc::SIGHUP);
    assert!(eventually(WAIT, || limits(&svc).1 == 22.0), "{}", svc.log());
    assert!(
        eventually(WAIT, || svc
            .log()
            .contains("reload: applied from the next cycle: `high_limit`")),
        "{}",
        svc.log()
    );

    // Invalid: refused with check-config's message; the running config stays.
    let mut bad = good.clone();
    bad["low_limit"] = 30.0.into();
    write(&bad);
    let check = bin()
        .arg("check-config")
        .arg(svc.config_path())
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&check.stderr)
        .trim()
        .trim_start_matches("kasa-thermostat: ")
        .to_string();
    assert!(message.contains("key `low_limit`"), "{message}");
    svc.signal(libc::SIGHUP);
    let refused = format!("[ERROR] (signals) reload refused: {message}; the running config stays");
    assert!(
        eventually(WAIT, || svc.log().contains(&refused)),
        "{refused}\n{}",
        svc.log()
    );

    // A key that needs a restart: refused, named.
    let mut moved = good.clone();
    moved["heater"]["port"] = 1.into();
    write(&moved);
    svc.signal(libc::SIGHUP);
    assert!(
        eventually(WAIT, || svc.log().contains(
            "reload refused: `heater.port` changed, which needs a restart"
        )),
        "{}",
        svc.log()
    );
    // Cycles went on, on the good config.
    let n = svc.readings().len();
    assert!(eventually(WAIT, || svc.readings().len() >= n + 2));
    assert_eq!(limits(&svc), (18.0.into(), 22.0.into()));
}
