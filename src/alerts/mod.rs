//! Alerts through a command hook: the service tells a person when something
//! needs them (an alarm temperature, a stale sensor, a failing plug, a heater
//! without a dead-man) by running a command the user chose, which reaches
//! ntfy, Pushover, e-mail or Home Assistant with no TLS in this binary.
//!
//! - [`RawAlerts`] is the `alerts` config section; [`AlertSettings::from_raw`] checks it.
//! - [`Alert`] is one event; its [`AlertKind`] names are a contract.
//! - [`Alerter`] owns the `alerts` thread. [`Alerter::send`] never blocks the
//!   control thread: it pushes onto a bounded queue (when full, the oldest
//!   event that is not a recovery is dropped and the loss is logged).
//! - The thread passes events through the `Gate` (filter, `repeat_s`,
//!   coalescing of bursts; pure and table-tested) and runs the hook once per
//!   batch, off the control thread, with a time limit (see [`hook`]). A hook
//!   that fails is logged with its stderr and the next batch still goes out;
//!   failed batches are not retried (a retry loop against a dead service
//!   would only delay the next, newer event).
//! - [`send_test`] runs the hook once, synchronously, for `alert-test`.
//!
//! The hook gets, per batch:
//! - on stdin, one line per event: `[critical] pi: heater 10.0.0.5:9999: failing for 3 cycles: timeout`
//!   (what `curl --data-binary @-` posts to ntfy);
//! - `KASA_THERMOSTAT_EVENT`: the JSON of the most severe event (see `Alert::to_json`);
//! - `KASA_THERMOSTAT_EVENTS`: a JSON array of all of them, in order;
//! - plain variables for shell scripts, from the most severe event:
//!   `KASA_THERMOSTAT_KIND`, `_SEVERITY`, `_RECOVERED` (`true`/`false`), `_MESSAGE`,
//!   `_HOST`, `_PLUG` (role or empty), `_TEMPERATURE` and `_UNITS` (or empty),
//!   `_TIME`, `_TITLE` (`pi: alarm_high`, `pi: alarm_high recovered (+2 more)`)
//!   and `_COUNT` (events in the batch).

mod config;
mod event;
mod gate;
pub mod hook;

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

pub use config::{
    AlertSettings, AlertsConfigError, RawAlerts, DEFAULT_BURST_WINDOW, PLUG_FAILING_CYCLES_RANGE,
    REPEAT_S_RANGE, TIMEOUT_S_RANGE,
};
pub use event::{Alert, AlertKind, KindSet, Severity, UnknownKind, MAX_MESSAGE_BYTES};
pub(crate) use gate::{Gate, Verdict};
pub use hook::{AlertError, HookEnd, HookOutcome};

/// Events the queue between [`Alerter::send`] and the `alerts` thread holds.
pub(crate) const QUEUE_CAPACITY: usize = 64;

/// The machine's host name (the label alerts carry), or `kasa-thermostat`
/// when it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // when the name fits, and we look for the NUL within the buffer anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).trim().to_string()
    } else {
        String::new()
    };
    if name.is_empty() {
        "kasa-thermostat".to_string()
    } else {
        name
    }
}

/// Checks that the hook's program exists and is executable: an absolute
/// path directly, a bare name through `$PATH` (as `execvp` will find it).
/// Returns the path found.
pub(crate) fn check_program(settings: &AlertSettings) -> Result<PathBuf, AlertError> {
    let program = &settings.command()[0];
    let is_exec = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.starts_with('/') {
        let p = PathBuf::from(program);
        return match std::fs::metadata(&p) {
            Err(e) => Err(AlertError::Program {
                program: program.clone(),
                reason: format!("cannot be used: {e}"),
            }),
            Ok(_) if !is_exec(&p) => Err(AlertError::Program {
                program: program.clone(),
                reason: "is not an executable file (chmod +x?)".to_string(),
            }),
            Ok(_) => Ok(p),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
        .ok_or_else(|| AlertError::Program {
            program: program.clone(),
            reason: format!(
                "is not found in PATH ({}); under systemd PATH is \
                 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
                path.to_string_lossy()
            ),
        })
}

/// What a batch gives the hook: stdin text and environment variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HookPayload {
    /// One line per event, each ending in `\n`.
    pub stdin: String,
    /// `KASA_THERMOSTAT_*` variables (see the module doc).
    pub env: Vec<(&'static str, String)>,
}

/// The index of the most severe alert (the first of the most severe ones).
fn most_severe(batch: &[Alert]) -> usize {
    let mut best = 0;
    for (i, a) in batch.iter().enumerate() {
        if a.severity > batch[best].severity {
            best = i;
        }
    }
    best
}

/// Renders a batch (non-empty) for the hook; `host` is the service's label.
pub(crate) fn render_batch(batch: &[Alert], host: &str) -> HookPayload {
    let mut stdin = String::new();
    for a in batch {
        stdin.push_str(&a.line(host));
        stdin.push('\n');
    }
    let top_i = most_severe(batch);
    let Some(top) = batch.get(top_i) else {
        return HookPayload {
            stdin,
            env: Vec::new(),
        };
    };
    let views: Vec<event::AlertView> = batch.iter().map(|a| a.view(host)).collect();
    let v = &views[top_i];
    let host = v.host.clone();
    let events = serde_json::to_string(&views).unwrap_or_default();
    let mut title = format!("{host}: {}", top.kind);
    if top.recovered && !top.kind.is_recovery_kind() {
        title.push_str(" recovered");
    }
    if batch.len() > 1 {
        title.push_str(&format!(" (+{} more)", batch.len() - 1));
    }
    let env = vec![
        ("KASA_THERMOSTAT_EVENT", v.to_json()),
        ("KASA_THERMOSTAT_EVENTS", events),
        ("KASA_THERMOSTAT_COUNT", batch.len().to_string()),
        ("KASA_THERMOSTAT_KIND", v.kind.to_string()),
        ("KASA_THERMOSTAT_SEVERITY", v.severity.to_string()),
        ("KASA_THERMOSTAT_RECOVERED", v.recovered.to_string()),
        ("KASA_THERMOSTAT_MESSAGE", v.message.clone()),
        ("KASA_THERMOSTAT_HOST", host),
        (
            "KASA_THERMOSTAT_PLUG",
            v.plug.unwrap_or_default().to_string(),
        ),
        (
            "KASA_THERMOSTAT_TEMPERATURE",
            // As in the JSON: `30.0`, not `30`.
            v.temperature
                .and_then(|t| serde_json::to_string(&t).ok())
                .unwrap_or_default(),
        ),
        (
            "KASA_THERMOSTAT_UNITS",
            v.units.unwrap_or_default().to_string(),
        ),
        ("KASA_THERMOSTAT_TIME", v.time.clone()),
        ("KASA_THERMOSTAT_TITLE", title),
    ];
    HookPayload { stdin, env }
}

fn summary(batch: &[Alert]) -> String {
    batch
        .iter()
        .map(|a| {
            let mut s = a.kind.as_str().to_string();
            if let Some((role, _)) = &a.plug {
                s = format!("{s} ({role})");
            }
            if a.recovered && !a.kind.is_recovery_kind() {
                s.push_str(" recovered");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the hook once with a `test` event, synchronously (for
/// `kasa-thermostat alert-test --config F`). `Ok` when it exited 0; the
/// outcome says what ran, its status and how long it took. The program is
/// checked first, so a missing one gets a clear [`AlertError::Program`].
pub fn send_test(settings: &AlertSettings) -> Result<HookOutcome, AlertError> {
    check_program(settings)?;
    let payload = render_batch(&[Alert::test()], &hostname());
    let input = hook::HookInput {
        argv: settings.command(),
        stdin: payload.stdin.as_bytes(),
        env: &payload.env,
        timeout: settings.timeout(),
    };
    let outcome = hook::run(&input, &|| None)?;
    if outcome.success() {
        Ok(outcome)
    } else {
        Err(AlertError::Failed(Box::new(outcome)))
    }
}

/// Pushes `item` onto a queue holding at most `cap`; when full, drops the
/// oldest event that is not a recovery (or, if all are, the oldest) and
/// returns it.
fn push_bounded(
    queue: &mut VecDeque<(Instant, Alert)>,
    item: (Instant, Alert),
    cap: usize,
) -> Option<Alert> {
    let mut lost = None;
    if queue.len() >= cap.max(1) {
        let i = queue.iter().position(|(_, a)| !a.recovered).unwrap_or(0);
        lost = queue.remove(i).map(|(_, a)| a);
    }
    queue.push_back(item);
    lost
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<(Instant, Alert)>,
    /// Events dropped because the queue was full, not yet logged.
    dropped: u64,
    /// Set by `finish` (its deadline) or drop (now): deliver what is queued
    /// until then, then end.
    stop: Option<Instant>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
}

impl Shared {
    /// The inbox, even if a panicking holder poisoned it (its data stays consistent:
    /// every critical section is a push or a take).
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The handle of the `alerts` thread. It owns the thread: dropping the handle
/// kills a running hook and ends the thread without sending what is queued;
/// [`Alerter::finish`] sends it first.
pub struct Alerter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Alerter {
    /// Starts the `alerts` thread. `host` labels every event (use [`hostname`]).
    /// A hook program that cannot be found is logged as a warning now (the
    /// service runs on without alerts rather than refusing to hold the
    /// temperature); each later run logs its own failure.
    pub fn spawn(settings: AlertSettings, host: impl Into<String>) -> io::Result<Alerter> {
        if let Err(e) = check_program(&settings) {
            log::warn!("{e}; alerts will fail until this is fixed");
        }
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
        });
        let worker = Worker {
            gate: Gate::new(
                settings.repeat(),
                settings.burst_window(),
                settings.events(),
            ),
            settings,
            host: event::one_line(&host.into(), 64),
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("alerts".to_string())
            .spawn(move || worker.run())?;
        Ok(Alerter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues an alert for the hook. Never blocks on the hook: it takes a
    /// lock that the `alerts` thread only holds to push or take, and returns.
    pub fn send(&self, alert: Alert) {
        let mut inbox = self.shared.lock();
        // The loss is counted here and logged by the alerts thread, so that
        // the control thread does no logging I/O on this path.
        if push_bounded(&mut inbox.queue, (Instant::now(), alert), QUEUE_CAPACITY).is_some() {
            inbox.dropped += 1;
        }
        drop(inbox);
        self.shared.wake.notify_one();
    }

    /// Delivers what is queued (for example `service_stopping`,
    /// `shutdown_unverified`) without waiting for the coalescing window,
    /// then ends the thread. A hook still running at `deadline` is killed
    /// (with its process group) and what is left is logged as not sent;
    /// returns by `deadline`, plus the moment it takes to reap a killed hook.
    pub fn finish(mut self, deadline: Instant) {
        self.stop(deadline);
    }

    fn stop(&mut self, deadline: Instant) {
        {
            let mut inbox = self.shared.lock();
            inbox.stop = Some(inbox.stop.map_or(deadline, |d| d.min(deadline)));
        }
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the alerts thread panicked; alerts were lost");
            }
        }
    }
}

// The control thread and the service may share one `Alerter` (in an `Arc`).
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Alerter>();
};

impl Drop for Alerter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Instant::now());
        }
    }
}

struct Worker {
    settings: AlertSettings,
    host: String,
    gate: Gate,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let (arrived, dropped, stop) = {
                let mut inbox = self.shared.lock();
                (
                    std::mem::take(&mut inbox.queue),
                    std::mem::take(&mut inbox.dropped),
                    inbox.stop,
                )
            };
            if dropped > 0 {
                log::warn!(
                    "alerts: {dropped} event(s) dropped, the queue of {QUEUE_CAPACITY} was full \
                     (the hook is slow or hanging; see its errors above)"
                );
            }
            for (at, alert) in arrived {
                let kind = alert.kind;
                let verdict = self.gate.offer(alert, at);
                if verdict != Verdict::Queued {
                    log::debug!("alert {kind}: {verdict:?}");
                }
            }
            let now = Instant::now();
            if let Some(deadline) = stop {
                if now >= deadline {
                    if self.gate.pending() > 0 {
                        log::warn!(
                            "alerts: {} event(s) not sent, the shutdown deadline passed",
                            self.gate.pending()
                        );
                    }
                    return;
                }
                match self.gate.take_now(now) {
                    Some(batch) => self.deliver(&batch),
                    None => return,
                }
                continue;
            }
            if let Some(batch) = self.gate.take_batch(now) {
                self.deliver(&batch);
                continue;
            }
            let inbox = self.shared.lock();
            if !inbox.queue.is_empty() || inbox.stop.is_some() {
                continue;
            }
            // The guard comes back only to be dropped; poisoning is harmless here.
            match self.gate.next_due() {
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    drop(self.shared.wake.wait_timeout(inbox, wait));
                }
                None => drop(self.shared.wake.wait(inbox)),
            }
        }
    }

    fn deliver(&self, batch: &[Alert]) {
        let payload = render_batch(batch, &self.host);
        let input = hook::HookInput {
            argv: self.settings.command(),
            stdin: payload.stdin.as_bytes(),
            env: &payload.env,
            timeout: self.settings.timeout(),
        };
        let shared = &self.shared;
        let what = summary(batch);
        match hook::run(&input, &|| shared.lock().stop) {
            Ok(o) if o.success() => log::info!("alert sent ({what}) by {o}"),
            Ok(o) => log::error!("{}; not delivered: {what}", AlertError::Failed(Box::new(o))),
            Err(e) => log::error!("{e}; not delivered: {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Units;
    use crate::Role;
    use std::time::Duration;

    #[test]
    fn a_batch_gives_one_line_per_event_and_the_most_severe_as_event() {
        let batch = [
            Alert::alarm_high(29.0, 30.0, Units::C, true),
            Alert::plug_failing(Role::Heater, "10.0.0.5:9999", 3, "timeout"),
            Alert::sensor_stale(Duration::from_secs(61), "crc"),
        ];
        let p = render_batch(&batch, "pi");
        let lines: Vec<&str> = p.stdin.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("[info] pi: temperature 29.0 °C is back below"));
        assert_eq!(
            lines[1],
            "[critical] pi: heater 10.0.0.5:9999: failing for 3 cycles: timeout"
        );
        assert!(p.stdin.ends_with('\n'));
        let env: std::collections::HashMap<_, _> = p.env.iter().cloned().collect();
        let top: serde_json::Value = serde_json::from_str(&env["KASA_THERMOSTAT_EVENT"]).unwrap();
        assert_eq!(top["kind"], "plug_failing", "first of the critical ones");
        let all: serde_json::Value = serde_json::from_str(&env["KASA_THERMOSTAT_EVENTS"]).unwrap();
        let kinds: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["alarm_high", "plug_failing", "sensor_stale"]);
        assert_eq!(env["KASA_THERMOSTAT_COUNT"], "3");
        assert_eq!(env["KASA_THERMOSTAT_KIND"], "plug_failing");
        assert_eq!(env["KASA_THERMOSTAT_SEVERITY"], "critical");
        assert_eq!(env["KASA_THERMOSTAT_RECOVERED"], "false");
        assert_eq!(env["KASA_THERMOSTAT_PLUG"], "heater");
        assert_eq!(env["KASA_THERMOSTAT_TEMPERATURE"], "");
        assert_eq!(env["KASA_THERMOSTAT_HOST"], "pi");
        assert_eq!(env["KASA_THERMOSTAT_TITLE"], "pi: plug_failing (+2 more)");
    }

    #[test]
    fn a_single_alarm_recovery_renders_its_plain_variables() {
        let p = render_batch(&[Alert::alarm_low(6.5, 6.0, Units::F, true)], "pi\nx");
        let env: std::collections::HashMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env["KASA_THERMOSTAT_TITLE"], "pi x: alarm_low recovered");
        assert_eq!(env["KASA_THERMOSTAT_RECOVERED"], "true");
        assert_eq!(env["KASA_THERMOSTAT_SEVERITY"], "info");
        assert_eq!(env["KASA_THERMOSTAT_TEMPERATURE"], "43.7");
        assert_eq!(env["KASA_THERMOSTAT_UNITS"], "F");
        assert_eq!(env["KASA_THERMOSTAT_HOST"], "pi x");
        assert_eq!(env["KASA_THERMOSTAT_PLUG"], "");
        assert_eq!(
            p.stdin.lines().count(),
            1,
            "the host label cannot add a line"
        );
        for (k, v) in &p.env {
            assert!(!v.contains('\0') && !v.contains('\n'), "{k}={v:?}");
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_event_that_is_not_a_recovery() {
        let t = Instant::now();
        let mut q = VecDeque::new();
        let rec = Alert::alarm_high(29.0, 30.0, Units::C, true);
        assert_eq!(push_bounded(&mut q, (t, rec.clone()), 3), None);
        assert_eq!(
            push_bounded(&mut q, (t, Alert::new(AlertKind::ServiceStarted, "a")), 3),
            None
        );
        assert_eq!(
            push_bounded(&mut q, (t, Alert::new(AlertKind::AlarmLow, "b")), 3),
            None
        );
        let lost = push_bounded(&mut q, (t, Alert::new(AlertKind::Test, "c")), 3).unwrap();
        assert_eq!(lost.kind, AlertKind::ServiceStarted);
        let lost = push_bounded(&mut q, (t, Alert::new(AlertKind::Test, "d")), 3).unwrap();
        assert_eq!(lost.kind, AlertKind::AlarmLow);
        let kept: Vec<_> = q.iter().map(|(_, a)| a.message.as_str()).collect();
        assert_eq!(kept, [rec.message.as_str(), "c", "d"]);
        // All recoveries: the oldest goes.
        let mut q = VecDeque::new();
        for i in 0..2 {
            push_bounded(
                &mut q,
                (t, Alert::recovery(AlertKind::AlarmLow, i.to_string())),
                2,
            );
        }
        let lost = push_bounded(&mut q, (t, Alert::recovery(AlertKind::AlarmLow, "2")), 2).unwrap();
        assert_eq!(lost.message, "0");
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn check_program_finds_bare_names_and_refuses_missing_ones() {
        let s = |cmd: &str| AlertSettings::from_raw(&RawAlerts::with_command([cmd])).unwrap();
        let found = check_program(&s("sh")).unwrap();
        assert!(found.is_absolute() && found.ends_with("sh"), "{found:?}");
        let e = check_program(&s("no-such-hook-program-xyz"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`no-such-hook-program-xyz` is not found in PATH"),
            "{e}"
        );
        let e = check_program(&s("/nonexistent/hook.sh"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/hook.sh") && e.contains("alerts.command[0]"),
            "{e}"
        );
        let plain = tempfile::NamedTempFile::new().unwrap();
        let path = plain.path().to_str().unwrap();
        let e = check_program(&s(path)).unwrap_err().to_string();
        assert!(e.contains("not an executable file"), "{e}");
    }
}
