//! The alert hook with real child processes: shell scripts in a temp dir
//! record what they were given, hang, flood their output or fail, and the
//! tests poll for their records with a deadline (no sleeping to pass).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use kasa_thermostat::alerts::{
    self, hook::TAIL_BYTES, Alert, AlertError, AlertKind, AlertSettings, Alerter, HookEnd,
    RawAlerts,
};
use kasa_thermostat::units::Units;
use kasa_thermostat::Role;

// --- a logger that keeps every line, so tests can assert on what was logged ---

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        let line = format!("{} {}", r.level(), r.args());
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&Capture).expect("one logger");
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Log lines containing every one of `parts`.
fn logged(parts: &[&str]) -> Vec<String> {
    LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .cloned()
        .collect()
}

// --- helpers ---

const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `f` until it returns `Some`, failing after [`DEADLINE`].
fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; log: {:#?}",
            LINES.lock().unwrap_or_else(|e| e.into_inner())
        );
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// A hook script in `dir`. Its runs are recorded by the `record` function
/// into `dir/run-N/{stdin,event,events,env}` (moved in place whole, so a run
/// directory that exists is complete).
fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("hook.sh");
    let text = format!(
        r#"#!/bin/sh
dir='{dir}'
record() {{
    tmp="$dir/.tmp-$$"
    mkdir "$tmp"
    cat > "$tmp/stdin"
    printf '%s' "$KASA_THERMOSTAT_EVENT" > "$tmp/event"
    printf '%s' "$KASA_THERMOSTAT_EVENTS" > "$tmp/events"
    env | grep '^KASA_THERMOSTAT_' | sort > "$tmp/env"
    n=$(ls -d "$dir"/run-* 2>/dev/null | wc -l)
    mv "$tmp" "$dir/run-$n"
}}
{body}
"#,
        dir = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Settings that run `script` through `/bin/sh` (not exec'd directly: a
/// script being written while another test thread forks could hit ETXTBSY).
fn settings(script: &Path, timeout_s: f64, window: Duration) -> AlertSettings {
    let mut raw = RawAlerts::with_command(["/bin/sh".to_string(), script.display().to_string()]);
    raw.timeout_s = timeout_s;
    AlertSettings::from_raw(&raw)
        .unwrap()
        .with_burst_window(window)
}

struct Run {
    stdin: String,
    event: serde_json::Value,
    events: serde_json::Value,
    env: HashMap<String, String>,
}

fn read_run(dir: &Path, n: usize) -> Option<Run> {
    let d = dir.join(format!("run-{n}"));
    if !d.is_dir() {
        return None;
    }
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    Some(Run {
        stdin: read("stdin"),
        event: serde_json::from_str(&read("event")).unwrap(),
        events: serde_json::from_str(&read("events")).unwrap(),
        env: read("env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn runs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("run-")
        })
        .count()
}

/// A hook that writes its pid to the returned file, then hangs for 10 min.
fn hanging_hook(dir: &Path) -> (PathBuf, PathBuf) {
    let pid_file = dir.join("pid");
    let hook = script(
        dir,
        &format!(
            "echo $$ > '{}.tmp' && mv '{0}.tmp' '{0}'\nexec sleep 600",
            pid_file.display()
        ),
    );
    (hook, pid_file)
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live process (a zombie counts as dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, s)| s.chars().next());
            state != Some(Some('Z'))
        }
    }
}

// --- tests ---

#[test]
fn the_hook_gets_the_line_on_stdin_and_the_event_in_its_environment() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "record");
    let alerter = Alerter::spawn(settings(&hook, 10.0, Duration::ZERO), "test-host").unwrap();
    alerter.send(Alert::plug_failing(
        Role::Heater,
        "10.0.0.5:9999",
        3,
        "timeout after 6 s",
    ));
    let run = poll("the hook's record", || read_run(dir.path(), 0));
    alerter.finish(Instant::now() + Duration::from_secs(5));

    assert_eq!(
        run.stdin,
        "[critical] test-host: heater 10.0.0.5:9999: failing for 3 cycles: timeout after 6 s\n"
    );
    assert_eq!(run.event["kind"], "plug_failing");
    assert_eq!(run.event["severity"], "critical");
    assert_eq!(run.event["recovered"], false);
    assert_eq!(run.event["plug"], "heater");
    assert_eq!(run.event["plug_host"], "10.0.0.5:9999");
    assert_eq!(run.event["host"], "test-host");
    assert_eq!(run.events.as_array().unwrap().len(), 1);
    let time = run.event["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert_eq!(run.env["KASA_THERMOSTAT_KIND"], "plug_failing");
    assert_eq!(run.env["KASA_THERMOSTAT_SEVERITY"], "critical");
    assert_eq!(run.env["KASA_THERMOSTAT_PLUG"], "heater");
    assert_eq!(run.env["KASA_THERMOSTAT_COUNT"], "1");
    assert_eq!(run.env["KASA_THERMOSTAT_TITLE"], "test-host: plug_failing");
    assert_eq!(
        logged(&[
            &hook.display().to_string(),
            "alert sent (plug_failing (heater))"
        ])
        .len(),
        1
    );
}

#[test]
fn a_burst_within_the_window_is_one_hook_run() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "record");
    let alerter = Alerter::spawn(settings(&hook, 10.0, Duration::from_millis(500)), "pi").unwrap();
    alerter.send(Alert::alarm_high(31.0, 30.0, Units::C, false));
    alerter.send(Alert::sensor_stale(Duration::from_secs(60), "crc"));
    alerter.send(Alert::plug_failing(Role::Cooler, "c:9999", 3, "refused"));
    let run = poll("the batch", || read_run(dir.path(), 0));
    alerter.finish(Instant::now() + Duration::from_secs(5));
    assert_eq!(runs(dir.path()), 1, "one hook run for the burst");
    assert_eq!(run.stdin.lines().count(), 3, "{}", run.stdin);
    let kinds: Vec<&str> = run
        .events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["alarm_high", "sensor_stale", "plug_failing"]);
    assert_eq!(
        run.event["kind"], "alarm_high",
        "the first of the most severe"
    );
    assert_eq!(run.env["KASA_THERMOSTAT_COUNT"], "3");
}

#[test]
fn events_arriving_while_the_hook_runs_go_out_together_in_the_next_run() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let hook = script(
        dir.path(),
        &format!(
            r#"if [ "$KASA_THERMOSTAT_KIND" = service_started ]; then
    : > "$dir/started"
    while [ ! -e '{go}' ]; do sleep 0.02; done
fi
record"#,
            go = go.display()
        ),
    );
    let alerter = Alerter::spawn(settings(&hook, 30.0, Duration::ZERO), "pi").unwrap();
    alerter.send(Alert::service_started("heat"));
    poll("the first hook run to start", || {
        dir.path().join("started").exists().then_some(())
    });
    alerter.send(Alert::alarm_low(5.0, 6.0, Units::C, false));
    alerter.send(Alert::alarm_low(6.5, 6.0, Units::C, true));
    alerter.send(Alert::deadman_unsupported(
        Role::Heater,
        "h:9999",
        "no countdown",
    ));
    std::fs::write(&go, "").unwrap();
    let second = poll("the second run", || read_run(dir.path(), 1));
    alerter.finish(Instant::now() + Duration::from_secs(5));
    assert_eq!(runs(dir.path()), 2);
    let lines: Vec<&str> = second.stdin.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].starts_with("[critical] pi: temperature 5.0 °C reached alarm_low"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("[info] pi: temperature 6.5 °C is back above alarm_low"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("[warning] pi: heater h:9999: no dead-man timer"),
        "{lines:?}"
    );
}

#[test]
fn send_never_waits_for_a_hanging_hook_and_dropping_the_alerter_kills_it() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let (hook, pid_file) = hanging_hook(dir.path());
    let alerter = Alerter::spawn(settings(&hook, 300.0, Duration::ZERO), "pi").unwrap();
    alerter.send(Alert::service_started("heat"));
    let pid = poll("the hook to hang", || read_pid(&pid_file));
    assert!(alive(pid));

    // The hook hangs (for up to 300 s). Every send returns while it is still
    // running: send does not wait for it. The time bound is only loose.
    let start = Instant::now();
    for i in 0..1000 {
        alerter.send(Alert::alarm_high(
            30.0 + f64::from(i) * 0.01,
            30.0,
            Units::C,
            i % 2 == 1,
        ));
    }
    let took = start.elapsed();
    assert!(
        alive(pid),
        "the hook must still hang after the sends returned"
    );
    assert!(took < Duration::from_secs(2), "1000 sends took {took:?}");

    let start = Instant::now();
    drop(alerter);
    let took = start.elapsed();
    assert!(!alive(pid), "dropping the alerter kills the hook");
    assert!(took < Duration::from_secs(5), "drop took {took:?}");
    assert!(!logged(&["event(s) dropped, the queue of 64 was full"]).is_empty());
    assert_eq!(
        logged(&[
            &hook.display().to_string(),
            "killed at the shutdown deadline"
        ])
        .len(),
        1
    );
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_process_group_and_the_next_event_goes_out() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let bg = dir.path().join("bg.pid");
    let hook = script(
        dir.path(),
        &format!(
            r#"if [ "$KASA_THERMOSTAT_KIND" = alarm_high ]; then
    sleep 600 &
    echo $! > '{bg}.tmp' && mv '{bg}.tmp' '{bg}'
    wait
fi
record"#,
            bg = bg.display()
        ),
    );
    let alerter = Alerter::spawn(settings(&hook, 0.5, Duration::ZERO), "pi").unwrap();
    let sent = Instant::now();
    alerter.send(Alert::alarm_high(31.0, 30.0, Units::C, false));
    let grandchild = poll("the hook to start its background job", || read_pid(&bg));
    alerter.send(Alert::alarm_low(5.0, 6.0, Units::C, false));
    let run = poll("the next event's run", || read_run(dir.path(), 0));
    let took = sent.elapsed();
    alerter.finish(Instant::now() + Duration::from_secs(5));

    assert_eq!(run.event["kind"], "alarm_low");
    assert!(
        took >= Duration::from_millis(500),
        "the hook had its 0.5 s: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "killed near its timeout: {took:?}"
    );
    poll("the background job to be killed", || {
        (!alive(grandchild)).then_some(())
    });
    let lines = logged(&[
        &hook.display().to_string(),
        "timed out, killed",
        "not delivered: alarm_high",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ERROR"), "{lines:?}");
}

#[test]
fn a_failing_hook_is_logged_with_its_stderr_and_the_next_event_is_delivered() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let hook = script(
        dir.path(),
        r#"if [ "$KASA_THERMOSTAT_RECOVERED" = false ]; then
    cat > /dev/null
    echo "curl: (22) The requested URL returned error: 502" >&2
    exit 22
fi
record"#,
    );
    let alerter = Alerter::spawn(settings(&hook, 10.0, Duration::ZERO), "pi").unwrap();
    alerter.send(Alert::alarm_high(31.0, 30.0, Units::C, false));
    let path = hook.display().to_string();
    let lines = poll("the failure in the log", || {
        let l = logged(&[&path, "exit status 22"]);
        (!l.is_empty()).then_some(l)
    });
    alerter.send(Alert::alarm_high(29.0, 30.0, Units::C, true));
    let run = poll("the recovery's run", || read_run(dir.path(), 0));
    alerter.finish(Instant::now() + Duration::from_secs(5));

    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(
        line.starts_with("ERROR the alert hook failed: `/bin/sh "),
        "{line}"
    );
    assert!(
        line.contains("stderr: curl: (22) The requested URL returned error: 502"),
        "{line}"
    );
    assert!(line.contains("not delivered: alarm_high"), "{line}");
    assert_eq!(run.event["kind"], "alarm_high");
    assert_eq!(run.event["recovered"], true);
}

#[test]
fn finish_delivers_what_is_queued_without_waiting_for_the_window() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "record");
    // A window far longer than the test: only finish can make these go out.
    let alerter = Alerter::spawn(settings(&hook, 10.0, Duration::from_secs(3600)), "pi").unwrap();
    alerter.send(Alert::shutdown_unverified(
        Role::Heater,
        "h:9999",
        "read-back timed out",
    ));
    alerter.send(Alert::service_stopping("SIGTERM"));
    let start = Instant::now();
    alerter.finish(start + Duration::from_secs(15));
    assert!(start.elapsed() < Duration::from_secs(15));
    // finish returned: the run is complete, no polling needed.
    let run = read_run(dir.path(), 0).expect("delivered before finish returned");
    assert_eq!(run.stdin.lines().count(), 2, "{}", run.stdin);
    assert_eq!(run.event["kind"], "shutdown_unverified");
    assert!(
        run.stdin.contains("[info] pi: service stopping: SIGTERM\n"),
        "{}",
        run.stdin
    );
}

#[test]
fn finish_returns_at_its_deadline_when_the_hook_hangs() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let (hook, pid_file) = hanging_hook(dir.path());
    let alerter = Alerter::spawn(settings(&hook, 300.0, Duration::ZERO), "pi").unwrap();
    alerter.send(Alert::service_stopping("SIGTERM"));
    let pid = poll("the hook to hang", || read_pid(&pid_file));
    let start = Instant::now();
    alerter.finish(start + Duration::from_millis(300));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_secs(5),
        "finish overran its deadline: {took:?}"
    );
    assert!(!alive(pid));
    assert_eq!(
        logged(&[
            &hook.display().to_string(),
            "killed at the shutdown deadline"
        ])
        .len(),
        1
    );
}

/// `send_test` with the script exec'd directly, retried on ETXTBSY (another
/// test thread may have forked while the script was open for writing).
fn send_test_direct(hook: &Path) -> Result<alerts::HookOutcome, AlertError> {
    let raw = RawAlerts::with_command([hook.display().to_string()]);
    let s = AlertSettings::from_raw(&raw).unwrap();
    for _ in 0..50 {
        match alerts::send_test(&s) {
            Err(AlertError::Spawn { source, .. })
                if source.raw_os_error() == Some(libc::ETXTBSY) =>
            {
                std::thread::yield_now()
            }
            other => return other,
        }
    }
    alerts::send_test(&s)
}

#[test]
fn send_test_runs_the_hook_once_and_says_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "record; echo posted");
    let o = send_test_direct(&hook).unwrap();
    assert_eq!(o.end, HookEnd::Exited(0));
    assert!(o.success());
    assert_eq!(o.command, [hook.display().to_string()]);
    assert_eq!(o.stdout_tail, "posted\n");
    assert!(o.stdin.starts_with("[info] "), "{}", o.stdin);
    let shown = o.to_string();
    assert!(
        shown.starts_with(&format!("`{}`: exit status 0 after ", hook.display())),
        "{shown}"
    );
    let run = read_run(dir.path(), 0).expect("one run, finished before send_test returned");
    assert_eq!(run.event["kind"], "test");
    assert_eq!(run.event["host"], alerts::hostname());
    assert_eq!(runs(dir.path()), 1);
}

#[test]
fn send_test_fails_with_the_exit_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let hook = script(
        dir.path(),
        "echo 'msmtp: cannot connect to smtp.example.com' >&2; exit 7",
    );
    let e = send_test_direct(&hook).unwrap_err();
    let AlertError::Failed(o) = &e else {
        panic!("{e}")
    };
    assert_eq!(o.end, HookEnd::Exited(7));
    let text = e.to_string();
    assert!(text.contains("exit status 7"), "{text}");
    assert!(
        text.contains("stderr: msmtp: cannot connect to smtp.example.com"),
        "{text}"
    );

    let missing = dir.path().join("missing.sh");
    let e = send_test_direct(&missing).unwrap_err();
    assert!(matches!(e, AlertError::Program { .. }), "{e}");
    assert!(e.to_string().contains("missing.sh"), "{e}");
}

#[test]
fn a_hook_that_floods_its_output_and_ignores_its_stdin_is_drained() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MB on each of stdout and stderr, far beyond a pipe's buffer: without
    // draining both while it runs, the hook would block until its timeout.
    let hook = script(
        dir.path(),
        "head -c 1000000 /dev/zero | tr '\\0' x\nhead -c 1000000 /dev/zero | tr '\\0' y >&2",
    );
    let mut raw = RawAlerts::with_command(["/bin/sh".to_string(), hook.display().to_string()]);
    raw.timeout_s = 20.0;
    let o = alerts::send_test(&AlertSettings::from_raw(&raw).unwrap()).unwrap();
    assert_eq!(o.end, HookEnd::Exited(0));
    assert_eq!(o.stdout_tail, "x".repeat(TAIL_BYTES));
    assert_eq!(o.stderr_tail, "y".repeat(TAIL_BYTES));
}

#[test]
fn a_hook_that_exits_without_reading_its_stdin_has_delivered() {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let hook = script(dir.path(), "exit 0");
    let alerter = Alerter::spawn(settings(&hook, 10.0, Duration::from_secs(3600)), "pi").unwrap();
    for _ in 0..20 {
        alerter.send(Alert::new(AlertKind::Test, "e".repeat(400)));
    }
    alerter.finish(Instant::now() + Duration::from_secs(15));
    let path = hook.display().to_string();
    assert_eq!(
        logged(&[&path, "alert sent (test, test,", "exit status 0"]).len(),
        1
    );
    assert!(logged(&[&path, "failed"]).is_empty());
}

#[test]
fn the_hook_leads_its_own_process_group_with_sigpipe_at_its_default_and_our_environment() {
    // The service ignores SIGPIPE (Rust does); the hook must not inherit that,
    // or `yes | head` style pipelines in a hook would misbehave.
    let script = r#"read -r pid comm state ppid pgrp rest < /proc/$$/stat
echo "pid=$pid pgrp=$pgrp"
grep '^SigIgn:' /proc/$$/status
printf 'PATH=%s\n' "$PATH"
printf 'KIND=%s\n' "$KASA_THERMOSTAT_KIND""#;
    let raw = RawAlerts::with_command(["/bin/sh", "-c", script]);
    let o = alerts::send_test(&AlertSettings::from_raw(&raw).unwrap()).unwrap();
    let out: HashMap<&str, &str> = o
        .stdout_tail
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    assert_eq!(out["pid"], out["pgrp"], "{}", o.stdout_tail);
    let sig_ign = o
        .stdout_tail
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .expect("SigIgn line");
    assert_eq!(
        sig_ign & (1 << (libc::SIGPIPE - 1)),
        0,
        "SIGPIPE is ignored in the hook"
    );
    assert_eq!(out["PATH"], std::env::var("PATH").unwrap());
    assert_eq!(out["KIND"], "test");
}
