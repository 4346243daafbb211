//! The `alerts` config section: the raw serde form ([`RawAlerts`], what the
//! file says) and the checked, typed form ([`AlertSettings`], what the
//! alerter uses). Checking is pure: it touches no file, so `check-config` on
//! a laptop gives the same answer as on the Pi; whether the program exists is
//! checked when the alerter starts (a warning) and by `alert-test` (an error).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event::{kind_list, AlertKind, KindSet};

/// Allowed `alerts.repeat_s`, in seconds: 1 s to 7 days.
pub const REPEAT_S_RANGE: (f64, f64) = (1.0, 7.0 * 86_400.0);
/// Allowed `alerts.timeout_s`, in seconds: 0.5 s to 5 min.
pub const TIMEOUT_S_RANGE: (f64, f64) = (0.5, 300.0);
/// Allowed `alerts.plug_failing_cycles`.
pub const PLUG_FAILING_CYCLES_RANGE: (u32, u32) = (1, 1000);
/// Events closer together than this go to the hook in one run.
pub const DEFAULT_BURST_WINDOW: Duration = Duration::from_secs(2);

fn default_repeat_s() -> f64 {
    3600.0
}
fn default_timeout_s() -> f64 {
    10.0
}
fn default_plug_failing_cycles() -> u32 {
    3
}

/// The `alerts` section as written in the config file. Convert it with
/// [`AlertSettings::from_raw`].
///
/// ```json
/// "alerts": { "command": ["/usr/bin/curl", "-fsS", "-d", "@-", "https://ntfy.sh/my-topic"],
///             "repeat_s": 3600, "events": ["alarm_high", "alarm_low", "sensor_stale"],
///             "timeout_s": 10, "plug_failing_cycles": 3 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    /// The hook: program and arguments, run without a shell. `command[0]` is
    /// an absolute path, or a bare name (no `/`) looked up in the service's
    /// `PATH` each time the hook runs.
    pub command: Vec<String>,
    /// The same condition (kind + plug) goes out at most once per this many seconds.
    #[serde(default = "default_repeat_s")]
    pub repeat_s: f64,
    /// The kinds to send (`null`: all). Naming a recovery kind or its
    /// condition selects both; `test` is always sent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Seconds the hook may run before it (and its process group) is killed.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: f64,
    /// Consecutive failed control cycles before `plug_failing` is sent.
    #[serde(default = "default_plug_failing_cycles")]
    pub plug_failing_cycles: u32,
}

impl RawAlerts {
    /// A section with this command and every default.
    pub fn with_command<S: Into<String>>(command: impl IntoIterator<Item = S>) -> RawAlerts {
        RawAlerts {
            command: command.into_iter().map(Into::into).collect(),
            repeat_s: default_repeat_s(),
            events: None,
            timeout_s: default_timeout_s(),
            plug_failing_cycles: default_plug_failing_cycles(),
        }
    }
}

/// A bad value in the `alerts` section: names the key, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfigError {
    /// The dotted key (`alerts.repeat_s`, `alerts.command[0]`, `alerts.events[2]`).
    pub key: String,
    /// The value as written (JSON-ish).
    pub value: String,
    /// What is allowed instead.
    pub allowed: String,
}

impl AlertsConfigError {
    fn new(key: impl Into<String>, value: impl fmt::Debug, allowed: impl Into<String>) -> Self {
        AlertsConfigError {
            key: key.into(),
            value: format!("{value:?}"),
            allowed: allowed.into(),
        }
    }

    /// The message without the key, for a config error that adds the key itself.
    pub(crate) fn message(&self) -> String {
        format!("{} is not allowed: {}", self.value, self.allowed)
    }
}

impl fmt::Display for AlertsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key `{}`: {}", self.key, self.message())
    }
}

impl std::error::Error for AlertsConfigError {}

/// The checked `alerts` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    command: Vec<String>,
    repeat: Duration,
    events: KindSet,
    timeout: Duration,
    plug_failing_cycles: u32,
    burst_window: Duration,
}

fn seconds(key: &str, v: f64, (lo, hi): (f64, f64)) -> Result<Duration, AlertsConfigError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(AlertsConfigError::new(
            key,
            v,
            format!("a number of seconds from {lo} to {hi}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

impl AlertSettings {
    /// Checks the raw section. Refused: an empty command, an empty or NUL-holding
    /// argument, a relative `command[0]` with a `/` (the service runs in `/`,
    /// so write the absolute path), durations that are NaN, infinite or out of
    /// [`REPEAT_S_RANGE`] / [`TIMEOUT_S_RANGE`], unknown or no event kinds,
    /// and `plug_failing_cycles` out of [`PLUG_FAILING_CYCLES_RANGE`].
    pub fn from_raw(raw: &RawAlerts) -> Result<AlertSettings, AlertsConfigError> {
        let Some(program) = raw.command.first() else {
            return Err(AlertsConfigError::new(
                "alerts.command",
                &raw.command,
                "a non-empty list: the program, then its arguments, for example \
                 [\"/usr/bin/curl\", \"-fsS\", \"-d\", \"@-\", \"https://ntfy.sh/my-topic\"]",
            ));
        };
        for (i, arg) in raw.command.iter().enumerate() {
            if arg.contains('\0') {
                return Err(AlertsConfigError::new(
                    format!("alerts.command[{i}]"),
                    arg,
                    "text without NUL characters",
                ));
            }
        }
        if program.is_empty() || (program.contains('/') && !program.starts_with('/')) {
            return Err(AlertsConfigError::new(
                "alerts.command[0]",
                program,
                "an absolute path (/usr/bin/curl) or a bare program name looked up in PATH (curl)",
            ));
        }
        let repeat = seconds("alerts.repeat_s", raw.repeat_s, REPEAT_S_RANGE)?;
        let timeout = seconds("alerts.timeout_s", raw.timeout_s, TIMEOUT_S_RANGE)?;
        let (lo, hi) = PLUG_FAILING_CYCLES_RANGE;
        if !(lo..=hi).contains(&raw.plug_failing_cycles) {
            return Err(AlertsConfigError::new(
                "alerts.plug_failing_cycles",
                raw.plug_failing_cycles,
                format!("a whole number of cycles from {lo} to {hi}"),
            ));
        }
        let events = match &raw.events {
            None => KindSet::all(),
            Some(names) if names.is_empty() => {
                return Err(AlertsConfigError::new(
                    "alerts.events",
                    names,
                    "a list of at least one kind (leave `events` out to send every kind, \
                     or remove `alerts` to send none)",
                ))
            }
            Some(names) => {
                let mut set = KindSet::empty();
                for (i, name) in names.iter().enumerate() {
                    let kind: AlertKind = name.parse().map_err(|_| {
                        AlertsConfigError::new(
                            format!("alerts.events[{i}]"),
                            name,
                            format!("one of {}", kind_list()),
                        )
                    })?;
                    set.insert(kind);
                }
                set
            }
        };
        Ok(AlertSettings {
            command: raw.command.clone(),
            repeat,
            events,
            timeout,
            plug_failing_cycles: raw.plug_failing_cycles,
            burst_window: DEFAULT_BURST_WINDOW,
        })
    }

    /// Sets how long the alerter waits for more events before it runs the
    /// hook (default [`DEFAULT_BURST_WINDOW`]; not a config key; tests use a
    /// short one).
    pub fn with_burst_window(mut self, window: Duration) -> AlertSettings {
        self.burst_window = window;
        self
    }

    /// The hook's program and arguments.
    pub(crate) fn command(&self) -> &[String] {
        &self.command
    }
    /// The minimum time between two sends of the same condition.
    pub(crate) fn repeat(&self) -> Duration {
        self.repeat
    }
    /// The conditions that are sent.
    pub(crate) fn events(&self) -> KindSet {
        self.events
    }
    /// The hook's time limit.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Consecutive failed cycles before `plug_failing` (for the control loop).
    pub(crate) fn plug_failing_cycles(&self) -> u32 {
        self.plug_failing_cycles
    }
    /// The coalescing window.
    pub(crate) fn burst_window(&self) -> Duration {
        self.burst_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawAlerts {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn minimal_section_gets_the_defaults() {
        let s = AlertSettings::from_raw(&raw(r#"{"command": ["curl", "-d", "@-", "u"]}"#)).unwrap();
        assert_eq!(s.command(), ["curl", "-d", "@-", "u"]);
        assert_eq!(s.repeat(), Duration::from_secs(3600));
        assert_eq!(s.timeout(), Duration::from_secs(10));
        assert_eq!(s.plug_failing_cycles(), 3);
        assert_eq!(s.events(), KindSet::all());
        assert_eq!(s.burst_window(), DEFAULT_BURST_WINDOW);
    }

    #[test]
    fn the_design_example_parses() {
        let r = raw(
            r#"{ "command": ["/usr/bin/curl", "-fsS", "-d", "@-", "https://ntfy.sh/my-topic"],
                 "repeat_s": 3600 }"#,
        );
        assert_eq!(
            r,
            RawAlerts::with_command([
                "/usr/bin/curl",
                "-fsS",
                "-d",
                "@-",
                "https://ntfy.sh/my-topic"
            ])
        );
        assert!(AlertSettings::from_raw(&r).is_ok());
    }

    #[test]
    fn unknown_keys_are_refused_by_serde() {
        let e = serde_json::from_str::<RawAlerts>(r#"{"command": ["x"], "repeat": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("repeat"), "{e}");
    }

    #[test]
    fn events_filter_is_parsed_with_recoveries_joining_their_condition() {
        let mut r = RawAlerts::with_command(["curl"]);
        r.events = Some(vec!["sensor_recovered".into(), "alarm_high".into()]);
        let s = AlertSettings::from_raw(&r).unwrap();
        assert!(s.events().passes(AlertKind::SensorStale));
        assert!(s.events().passes(AlertKind::SensorRecovered));
        assert!(s.events().passes(AlertKind::AlarmHigh));
        assert!(!s.events().passes(AlertKind::AlarmLow));
        assert!(!s.events().passes(AlertKind::ServiceStarted));
    }

    /// Each bad value: (mutation, key named, a fragment of what is allowed).
    #[test]
    fn each_bad_value_names_its_key_value_and_what_is_allowed() {
        type Mutate = fn(&mut RawAlerts);
        let cases: &[(Mutate, &str, &str, &str)] = &[
            (|r| r.command.clear(), "alerts.command", "[]", "non-empty"),
            (
                |r| r.command[0] = "bin/hook".into(),
                "alerts.command[0]",
                "\"bin/hook\"",
                "absolute path",
            ),
            (
                |r| r.command[0] = "./hook.sh".into(),
                "alerts.command[0]",
                "./hook.sh",
                "absolute path",
            ),
            (
                |r| r.command[0] = String::new(),
                "alerts.command[0]",
                "\"\"",
                "absolute path",
            ),
            (
                |r| r.command.push("a\0b".into()),
                "alerts.command[3]",
                "a\\0b",
                "NUL",
            ),
            (
                |r| r.repeat_s = f64::NAN,
                "alerts.repeat_s",
                "NaN",
                "from 1 to 604800",
            ),
            (
                |r| r.repeat_s = f64::INFINITY,
                "alerts.repeat_s",
                "inf",
                "from 1 to 604800",
            ),
            (
                |r| r.repeat_s = -5.0,
                "alerts.repeat_s",
                "-5",
                "from 1 to 604800",
            ),
            (
                |r| r.repeat_s = 0.0,
                "alerts.repeat_s",
                "0",
                "from 1 to 604800",
            ),
            (
                |r| r.repeat_s = 1e12,
                "alerts.repeat_s",
                "1000000000000",
                "from 1 to 604800",
            ),
            (
                |r| r.timeout_s = f64::NEG_INFINITY,
                "alerts.timeout_s",
                "-inf",
                "from 0.5 to 300",
            ),
            (
                |r| r.timeout_s = 0.0,
                "alerts.timeout_s",
                "0",
                "from 0.5 to 300",
            ),
            (
                |r| r.timeout_s = 3600.0,
                "alerts.timeout_s",
                "3600",
                "from 0.5 to 300",
            ),
            (
                |r| r.plug_failing_cycles = 0,
                "alerts.plug_failing_cycles",
                "0",
                "from 1 to 1000",
            ),
            (
                |r| r.plug_failing_cycles = 5000,
                "alerts.plug_failing_cycles",
                "5000",
                "from 1 to 1000",
            ),
            (
                |r| r.events = Some(vec![]),
                "alerts.events",
                "[]",
                "at least one kind",
            ),
            (
                |r| r.events = Some(vec!["alarm_high".into(), "alarm".into()]),
                "alerts.events[1]",
                "\"alarm\"",
                "one of alarm_high, alarm_low",
            ),
        ];
        for (mutate, key, value, allowed) in cases {
            let mut r = RawAlerts::with_command(["/usr/bin/curl", "-d", "@-"]);
            mutate(&mut r);
            let e = AlertSettings::from_raw(&r).expect_err(key);
            assert_eq!(e.key, *key, "{e}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("key `{key}`: ")), "{text}");
            assert!(text.contains(value), "{key}: {text} lacks {value}");
            assert!(text.contains(allowed), "{key}: {text} lacks {allowed}");
        }
    }

    #[test]
    fn range_ends_are_allowed() {
        let mut r = RawAlerts::with_command(["curl"]);
        r.repeat_s = 1.0;
        r.timeout_s = 300.0;
        r.plug_failing_cycles = 1000;
        assert!(AlertSettings::from_raw(&r).is_ok());
        r.repeat_s = 604_800.0;
        r.timeout_s = 0.5;
        r.plug_failing_cycles = 1;
        assert!(AlertSettings::from_raw(&r).is_ok());
    }
}
