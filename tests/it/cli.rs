//! The command-line layer as a user meets it: every subcommand answers
//! `--help` (and `help SUBCOMMAND`) with exit 0, usage errors exit 2,
//! completions are generated, and `status` / `check-config` on damaged,
//! foreign or hostile files fail fast, with exit 1 and one line naming the file.

use std::ffi::CString;
use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::util::bin;

/// Every subcommand.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "check-config",
    "status",
    "discover",
    "plug",
    "sensor",
    "simulate-plug",
    "completions",
];

/// Runs the binary, failing the test (and killing the child) if it takes
/// longer than `limit`: a command that blocks on a FIFO must not hang the suite.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for the binary"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child this test spawned and
            // has not reaped (the waiting thread is still blocked on it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "`kasa-thermostat {}` did not finish within {limit:?}",
                args.join(" ")
            );
        }
    }
}

fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(10))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Asserts a failure of exit code 1 with one line on stderr naming `what`.
fn fails_with_one_line(o: &Output, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(what), "names {what}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_subcommand_answers_help_with_exit_0() {
    for sub in SUBCOMMANDS {
        for args in [vec![*sub, "--help"], vec![*sub, "-h"], vec!["help", *sub]] {
            let o = run(&args);
            let text = stdout(&o);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            assert!(
                text.contains("Usage: kasa-thermostat") && text.contains(sub),
                "{args:?}: {text}"
            );
        }
    }
    // The subcommands that used to refuse --help ("invalid option").
    for sub in ["plug", "discover", "simulate-plug"] {
        let o = run(&[sub, "--help"]);
        assert!(stdout(&o).contains("Options:"), "{sub}: {}", stdout(&o));
    }
    let plug = stdout(&run(&["help", "plug"]));
    assert!(
        plug.contains("--outlet") && plug.contains("HOST[:PORT]"),
        "{plug}"
    );
}

#[test]
fn top_level_help_lists_every_subcommand_and_the_exit_codes() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "{sub} missing: {text}");
    }
    assert!(text.contains("Exit status"), "{text}");
    let o = run(&["help"]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("kasa-thermostat "), "{}", stdout(&o));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["run"],
        vec!["run", "--config", "x.json", "--simulate"],
        vec!["status", "--no-such-flag"],
        vec!["plug", "127.0.0.1"],
        vec!["plug", "127.0.0.1", "on", "--outlet", "x"],
        vec!["plug", "127.0.0.1", "on", "--outlet", "1", "--child", "01"],
        vec!["plug", "127.0.0.1", "on", "--timing-scale", "1e300"],
        vec!["plug", "127.0.0.1", "on", "--timing-scale", "0"],
        vec!["discover", "--timeout", "-1"],
        vec!["completions", "tcsh"],
        vec!["check-config"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?}: says why");
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("kasa-thermostat"), "{shell}: {script}");
        assert!(
            script.contains("simulate-plug") && script.contains("check-config"),
            "{shell}: the subcommands are completed"
        );
    }
    // Each script is in its shell's own form.
    assert!(stdout(&run(&["completions", "bash"])).contains("complete -F"));
    assert!(stdout(&run(&["completions", "zsh"])).starts_with("#compdef kasa-thermostat"));
    assert!(stdout(&run(&["completions", "fish"])).contains("complete -c kasa-thermostat"));
}

/// A state file as the service writes it.
fn good_state() -> serde_json::Value {
    serde_json::json!({
        "updated": "2024-05-01T12:00:00.000Z",
        "updated_unix": 1714564800.0,
        "pid": 4242,
        "units": "C",
        "mode": "heat",
        "low_limit": 18.0,
        "high_limit": 20.0,
        "temperature": 19.25,
        "reading_age_s": 1.5,
        "sensor_stale": false,
        "sensor_fault": null,
        "alarm": null,
        "reason": "19.25 °C between limits: heater holds off",
        "shutting_down": false,
        "plugs": {
            "heater": {
                "host": "127.0.0.1:9999",
                "state": "unknown",
                "verified": null,
                "desired": false,
                "switching": null,
                "state_for_s": null,
                "deadman": "armed",
                "deadman_remaining_s": 100.0,
                "last_error": "127.0.0.1:9999: switch on FAILED"
            }
        }
    })
}

#[test]
fn status_shows_a_good_state_file_and_says_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, good_state().to_string()).unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["status", "--state-file", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("19.25 °C") && text.contains("127.0.0.1:9999"),
        "{text}"
    );
    assert!(
        text.contains("UNKNOWN (counted as on)"),
        "an unknown plug is not shown as off: {text}"
    );
    let o = run(&["status", "--state-file", p, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["plugs"]["heater"]["state"], "unknown");
}

#[test]
fn status_on_a_damaged_or_foreign_state_file_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let with = |key: &str, value: serde_json::Value| {
        let mut v = good_state();
        v[key] = value;
        v.to_string()
    };
    let mut heater_state = good_state();
    heater_state["plugs"]["heater"]["state"] = "maybe".into();
    let mut cases = vec![
        file("negative-age.json", &with("reading_age_s", (-1).into())),
        file("not-json.json", "this is not JSON"),
        file("empty.json", ""),
        file("truncated.json", &good_state().to_string()[..40]),
        file("foreign.json", r#"{"name": "some other program"}"#),
        file("array.json", "[1, 2, 3]"),
        file("bad-plug-state.json", &heater_state.to_string()),
        file("bad-mode.json", &with("mode", "warm".into())),
        file("binary.json", "\u{0}\u{1}\u{2}"),
        dir.path().join("missing.json"),
    ];
    let sub = dir.path().join("a-directory");
    fs::create_dir(&sub).unwrap();
    cases.push(sub);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    cases.push(fifo);
    cases.push("/dev/zero".into());
    for path in cases {
        let p = path.to_str().unwrap();
        for json in [false, true] {
            let mut args = vec!["status", "--state-file", p];
            if json {
                args.push("--json");
            }
            let o = run_within(&args, Duration::from_secs(5));
            fails_with_one_line(&o, p);
            assert!(stdout(&o).is_empty(), "{p}: {}", stdout(&o));
        }
    }
}

#[test]
fn check_config_refuses_hostile_files_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    mkfifo(&fifo);
    let sub = dir.path().join("config.d");
    fs::create_dir(&sub).unwrap();
    let big = dir.path().join("big.json");
    fs::write(&big, " ".repeat(1024 * 1024 + 1)).unwrap();
    for path in [
        fifo.to_str().unwrap(),
        "/dev/zero",
        sub.to_str().unwrap(),
        big.to_str().unwrap(),
        "/nonexistent/config.json",
    ] {
        let o = run_within(&["check-config", path], Duration::from_secs(5));
        fails_with_one_line(&o, path);
        let o = run_within(&["run", "--config", path], Duration::from_secs(5));
        fails_with_one_line(&o, path);
    }
}

#[test]
fn check_config_refuses_what_is_not_exactly_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let ok = r#"{"mode": "off", "state_file": "/nonexistent-kasa-test/state.json"}"#;
    let path = dir.path().join("c.json");
    for (text, what) in [
        (format!("{ok} xyz"), "text after"),
        (format!("{ok}\n{ok}"), "text after"),
        (format!("[{ok}]"), "one JSON object"),
        ("".to_string(), "empty"),
        (ok.replace("\"off\"", "\"of\""), "mode"),
        (ok.replace("{", "{\"cycle_s\": 1e999, "), "cycle_s"),
    ] {
        fs::write(&path, &text).unwrap();
        let o = run(&["check-config", path.to_str().unwrap()]);
        fails_with_one_line(&o, path.to_str().unwrap());
        assert!(stderr(&o).contains(what), "{text:?}: {}", stderr(&o));
    }
    // A UTF-8 byte-order mark is accepted as whitespace.
    fs::write(&path, format!("\u{feff}{ok}")).unwrap();
    let o = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Each duration has bounds, and `check-config` names the key, the value and
/// the allowed range (values that used to pass and then panic at start).
#[test]
fn check_config_applies_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let base = serde_json::json!({
        "mode": "heat",
        "heater": {"host": "127.0.0.1", "port": 9999},
        "state_file": dir.path().join("state.json"),
        "log_dir": dir.path().join("log"),
    });
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("cycle_s", 0.000001.into(), "0.5 to 3600"),
        ("cycle_s", 0.2.into(), "0.5 to 3600"),
        ("cycle_s", 1e20.into(), "0.5 to 3600"),
        ("reconcile_s", 1e20.into(), "reconcile_s"),
        ("rate_limit_s", 1e20.into(), "rate_limit_s"),
        ("switchover_delay_s", (-1.0).into(), "switchover_delay_s"),
        ("sensor", serde_json::json!({"interval_s": 0.5}), "0.75"),
        (
            "sensor",
            serde_json::json!({"interval_s": 1e20}),
            "sensor.interval_s",
        ),
        (
            "sensor",
            serde_json::json!({"resolution_bits": 9, "interval_s": 0.05}),
            "0.09",
        ),
        (
            "sensor",
            serde_json::json!({"interval_s": 5, "stale_after_s": 9}),
            "sensor.stale_after_s",
        ),
        (
            "plug_timing",
            serde_json::json!({"before_s": 0.001}),
            "plug_timing.before_s",
        ),
        (
            "heater",
            serde_json::json!({"host": "127.0.0.1", "deadman_s": 1e20}),
            "heater.deadman_s",
        ),
    ];
    for (key, value, want) in cases {
        let mut v = base.clone();
        v[*key] = value.clone();
        fs::write(&path, v.to_string()).unwrap();
        let o = run(&["check-config", path.to_str().unwrap()]);
        fails_with_one_line(&o, path.to_str().unwrap());
        assert!(stderr(&o).contains(want), "{key}={value}: {}", stderr(&o));
    }
    // The fast test timings are inside the bounds.
    let mut v = base.clone();
    v["cycle_s"] = 0.5.into();
    v["sensor"] =
        serde_json::json!({"resolution_bits": 9, "interval_s": 0.1, "stale_after_s": 0.2});
    v["plug_timing"] = serde_json::json!({"connect_s": 0.01, "before_s": 0.01, "after_s": 0.01,
                                          "spacing_s": 0, "retry_sleeps_s": [0]});
    fs::write(&path, v.to_string()).unwrap();
    let o = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
