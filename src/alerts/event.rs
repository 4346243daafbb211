//! What an alert says: its kind (a contract name), severity, the facts it
//! carries, and its two renderings for the hook: one line of text for people
//! (stdin) and a JSON object for scripts (`KASA_THERMOSTAT_EVENT`).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clock::{format_rfc3339, Precision};
use crate::units::Units;
use crate::Role;

/// The kind of an alert. The names ([`AlertKind::as_str`]) are a contract:
/// hook scripts and the `alerts.events` config list use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// The temperature reached `alarm_high` (or, with `recovered`, left it).
    AlarmHigh,
    /// The temperature reached `alarm_low` (or, with `recovered`, left it).
    AlarmLow,
    /// No valid reading for `sensor.stale_after_s`; plugs went to `fault_state`.
    SensorStale,
    /// Valid readings are back after [`AlertKind::SensorStale`].
    SensorRecovered,
    /// A plug failed `alerts.plug_failing_cycles` consecutive cycles.
    PlugFailing,
    /// A plug works again after [`AlertKind::PlugFailing`].
    PlugRecovered,
    /// A plug that should carry a dead-man rule cannot (firmware without countdown rules).
    DeadmanUnsupported,
    /// At shutdown a plug's `shutdown_state` could not be verified.
    ShutdownUnverified,
    /// Cascade control: no valid chamber reading for `sensor.stale_after_s`;
    /// control fell back to hysteresis on the product sensor (or, with
    /// `recovered`, the chamber sensor reads again and cascade resumes).
    ChamberSensorStale,
    /// The service started.
    ServiceStarted,
    /// The service is stopping.
    ServiceStopping,
    /// Sent by `kasa-thermostat alert-test`; never filtered or rate-limited.
    Test,
    /// The web page could not listen on `web.listen` (control goes on).
    WebUnavailable,
}

impl AlertKind {
    /// Every kind, in the order of the documentation.
    pub(crate) const ALL: [AlertKind; 13] = [
        AlertKind::AlarmHigh,
        AlertKind::AlarmLow,
        AlertKind::SensorStale,
        AlertKind::SensorRecovered,
        AlertKind::PlugFailing,
        AlertKind::PlugRecovered,
        AlertKind::DeadmanUnsupported,
        AlertKind::ShutdownUnverified,
        AlertKind::ChamberSensorStale,
        AlertKind::ServiceStarted,
        AlertKind::ServiceStopping,
        AlertKind::Test,
        AlertKind::WebUnavailable,
    ];

    /// The contract name (`alarm_high`, `plug_recovered`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AlarmHigh => "alarm_high",
            AlertKind::AlarmLow => "alarm_low",
            AlertKind::SensorStale => "sensor_stale",
            AlertKind::SensorRecovered => "sensor_recovered",
            AlertKind::PlugFailing => "plug_failing",
            AlertKind::PlugRecovered => "plug_recovered",
            AlertKind::DeadmanUnsupported => "deadman_unsupported",
            AlertKind::ShutdownUnverified => "shutdown_unverified",
            AlertKind::ChamberSensorStale => "chamber_sensor_stale",
            AlertKind::ServiceStarted => "service_started",
            AlertKind::ServiceStopping => "service_stopping",
            AlertKind::Test => "test",
            AlertKind::WebUnavailable => "web_unavailable",
        }
    }

    /// The condition this kind reports on: a recovery kind belongs to the
    /// condition it ends (`sensor_recovered` → `sensor_stale`,
    /// `plug_recovered` → `plug_failing`); every other kind is its own.
    /// The `events` filter and the rate limit work on conditions, so a
    /// recovery is never separated from its firing.
    pub(crate) fn condition(self) -> AlertKind {
        match self {
            AlertKind::SensorRecovered => AlertKind::SensorStale,
            AlertKind::PlugRecovered => AlertKind::PlugFailing,
            k => k,
        }
    }

    /// Whether this kind is by itself a recovery (`sensor_recovered`,
    /// `plug_recovered`). Alarm recoveries keep their kind and set
    /// [`Alert::recovered`] instead.
    pub(crate) fn is_recovery_kind(self) -> bool {
        matches!(self, AlertKind::SensorRecovered | AlertKind::PlugRecovered)
    }

    /// The severity of a firing of this kind; a recovery is always `info`.
    pub(crate) fn severity(self) -> Severity {
        match self {
            AlertKind::AlarmHigh
            | AlertKind::AlarmLow
            | AlertKind::SensorStale
            | AlertKind::PlugFailing
            | AlertKind::ShutdownUnverified => Severity::Critical,
            AlertKind::DeadmanUnsupported
            | AlertKind::ChamberSensorStale
            | AlertKind::WebUnavailable => Severity::Warning,
            AlertKind::SensorRecovered
            | AlertKind::PlugRecovered
            | AlertKind::ServiceStarted
            | AlertKind::ServiceStopping
            | AlertKind::Test => Severity::Info,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`AlertKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an alert kind; the kinds are {}",
            self.0,
            kind_list()
        )
    }
}

impl std::error::Error for UnknownKind {}

/// The kinds, comma-separated, for error messages.
pub(crate) fn kind_list() -> String {
    AlertKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for AlertKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<AlertKind, UnknownKind> {
        AlertKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// A set of conditions (see `AlertKind::condition`): which alerts pass the
/// `alerts.events` filter. `test` always passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u16);

impl KindSet {
    /// Every kind.
    pub(crate) fn all() -> KindSet {
        KindSet(AlertKind::ALL.iter().fold(0, |acc, k| acc | k.bit()))
    }
    /// No kind (only `test` passes).
    pub(crate) fn empty() -> KindSet {
        KindSet(0)
    }
    /// Adds `kind`'s condition (naming a recovery selects its condition).
    pub(crate) fn insert(&mut self, kind: AlertKind) {
        self.0 |= kind.condition().bit();
    }
    /// Whether an alert of `kind` passes: its condition is in the set, or it is `test`.
    pub(crate) fn passes(self, kind: AlertKind) -> bool {
        kind == AlertKind::Test || self.0 & kind.condition().bit() != 0
    }
}

impl FromIterator<AlertKind> for KindSet {
    fn from_iter<I: IntoIterator<Item = AlertKind>>(iter: I) -> KindSet {
        let mut set = KindSet::empty();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

/// How urgent an alert is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// For the record: start, stop, recoveries, tests.
    Info,
    /// Something is degraded but the temperature is still held.
    Warning,
    /// A person should look now.
    Critical,
}

impl Severity {
    /// `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest message, in bytes, that reaches the hook (an error text can be
/// long; a push notification should not be).
pub const MAX_MESSAGE_BYTES: usize = 300;

/// One event for the hook. Build it with the typed constructors
/// ([`Alert::alarm_high`], [`Alert::plug_failing`], ...) so that the messages
/// read the same everywhere; the fields are public for tests and matching.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What happened.
    pub kind: AlertKind,
    /// How urgent it is.
    pub severity: Severity,
    /// Whether this ends its condition (an alarm left, a sensor or plug working again).
    pub recovered: bool,
    /// The temperature in °C and the units to report it in.
    pub temperature: Option<(f64, Units)>,
    /// The plug it concerns: role and address (`10.0.0.5:9999`).
    pub plug: Option<(Role, String)>,
    /// One line for people. Control characters are replaced and the length is
    /// capped at [`MAX_MESSAGE_BYTES`] when rendered.
    pub message: String,
    /// When it happened.
    pub time: SystemTime,
}

fn temp(t_c: f64, units: Units) -> String {
    format!("{:.1} {}", units.from_c(t_c), units.symbol())
}

fn secs(d: Duration) -> String {
    format!("{:.0} s", d.as_secs_f64())
}

impl Alert {
    /// A firing (or, for a recovery kind, a recovery) of `kind` with the
    /// kind's severity, now.
    pub fn new(kind: AlertKind, message: impl Into<String>) -> Alert {
        let recovered = kind.is_recovery_kind();
        Alert {
            kind,
            severity: kind.severity(),
            recovered,
            temperature: None,
            plug: None,
            message: message.into(),
            time: SystemTime::now(),
        }
    }

    /// The recovery of `kind`'s condition, severity `info`, now. For
    /// `sensor_stale` and `plug_failing` the kind becomes `sensor_recovered` /
    /// `plug_recovered`; for the alarms it stays and `recovered` is set.
    pub(crate) fn recovery(kind: AlertKind, message: impl Into<String>) -> Alert {
        let kind = match kind {
            AlertKind::SensorStale => AlertKind::SensorRecovered,
            AlertKind::PlugFailing => AlertKind::PlugRecovered,
            k => k,
        };
        Alert {
            severity: Severity::Info,
            recovered: true,
            ..Alert::new(kind, message)
        }
    }

    /// Adds a temperature (in °C, reported in `units`).
    pub(crate) fn with_temperature(mut self, t_c: f64, units: Units) -> Alert {
        self.temperature = Some((t_c, units));
        self
    }

    /// Adds the plug this concerns.
    pub(crate) fn with_plug(mut self, role: Role, host: impl Into<String>) -> Alert {
        self.plug = Some((role, host.into()));
        self
    }

    #[cfg(test)]
    /// Sets the time (tests, replays).
    pub(crate) fn at(mut self, time: SystemTime) -> Alert {
        self.time = time;
        self
    }

    /// The temperature `t_c` reached `alarm_high` (`limit_c`), or with
    /// `recovered` fell back below it.
    pub fn alarm_high(t_c: f64, limit_c: f64, units: Units, recovered: bool) -> Alert {
        let alert = if recovered {
            Alert::recovery(
                AlertKind::AlarmHigh,
                format!(
                    "temperature {} is back below alarm_high {}",
                    temp(t_c, units),
                    temp(limit_c, units)
                ),
            )
        } else {
            Alert::new(
                AlertKind::AlarmHigh,
                format!(
                    "temperature {} reached alarm_high {}",
                    temp(t_c, units),
                    temp(limit_c, units)
                ),
            )
        };
        alert.with_temperature(t_c, units)
    }

    /// The temperature `t_c` reached `alarm_low` (`limit_c`), or with
    /// `recovered` rose back above it.
    pub fn alarm_low(t_c: f64, limit_c: f64, units: Units, recovered: bool) -> Alert {
        let alert = if recovered {
            Alert::recovery(
                AlertKind::AlarmLow,
                format!(
                    "temperature {} is back above alarm_low {}",
                    temp(t_c, units),
                    temp(limit_c, units)
                ),
            )
        } else {
            Alert::new(
                AlertKind::AlarmLow,
                format!(
                    "temperature {} reached alarm_low {}",
                    temp(t_c, units),
                    temp(limit_c, units)
                ),
            )
        };
        alert.with_temperature(t_c, units)
    }

    /// No valid reading for `stale_for`; `detail` is the last fault (for
    /// example `CRC mismatch`).
    pub fn sensor_stale(stale_for: Duration, detail: &str) -> Alert {
        Alert::new(
            AlertKind::SensorStale,
            format!(
                "no valid sensor reading for {} ({detail}); plugs sent to their fault_state",
                secs(stale_for)
            ),
        )
    }

    /// Readings are back (`t_c`) after `stale_for` without one.
    pub(crate) fn sensor_recovered(t_c: f64, units: Units, stale_for: Duration) -> Alert {
        Alert::recovery(
            AlertKind::SensorStale,
            format!(
                "sensor readings are back ({}) after {} without a valid one",
                temp(t_c, units),
                secs(stale_for)
            ),
        )
        .with_temperature(t_c, units)
    }

    /// The plug failed `cycles` consecutive cycles; `error` is the last error.
    pub fn plug_failing(role: Role, host: &str, cycles: u32, error: &str) -> Alert {
        Alert::new(
            AlertKind::PlugFailing,
            format!("{role} {host}: failing for {cycles} cycles: {error}"),
        )
        .with_plug(role, host)
    }

    /// The plug works again after `failed_cycles` failed cycles.
    pub(crate) fn plug_recovered(role: Role, host: &str, failed_cycles: u32) -> Alert {
        Alert::recovery(
            AlertKind::PlugFailing,
            format!("{role} {host}: working again after {failed_cycles} failed cycles"),
        )
        .with_plug(role, host)
    }

    /// The plug cannot carry a dead-man rule; `detail` says why.
    pub fn deadman_unsupported(role: Role, host: &str, detail: &str) -> Alert {
        Alert::new(
            AlertKind::DeadmanUnsupported,
            format!(
                "{role} {host}: no dead-man timer ({detail}); \
                 if the service dies this plug stays as it is"
            ),
        )
        .with_plug(role, host)
    }

    /// Cascade control lost its chamber sensor (`message` says since when and
    /// the last fault) and holds the product by hysteresis; with `recovered`
    /// (at `chamber_c`), cascade control resumes.
    pub fn chamber_sensor_stale(message: &str, recovered: Option<(f64, Units)>) -> Alert {
        match recovered {
            Some((t_c, units)) => Alert::recovery(
                AlertKind::ChamberSensorStale,
                format!(
                    "chamber sensor reads again ({}); cascade control resumes",
                    temp(t_c, units)
                ),
            )
            .with_temperature(t_c, units),
            None => Alert::new(AlertKind::ChamberSensorStale, message.to_string()),
        }
    }

    /// At shutdown the plug's `shutdown_state` could not be verified.
    pub fn shutdown_unverified(role: Role, host: &str, detail: &str) -> Alert {
        Alert::new(
            AlertKind::ShutdownUnverified,
            format!("{role} {host}: shutdown state not verified ({detail}); check the plug"),
        )
        .with_plug(role, host)
    }

    /// The service started; `detail` says how (mode, band).
    pub fn service_started(detail: &str) -> Alert {
        Alert::new(
            AlertKind::ServiceStarted,
            format!("service started: {detail}"),
        )
    }

    /// The service is stopping; `detail` says why (signal).
    pub fn service_stopping(detail: &str) -> Alert {
        Alert::new(
            AlertKind::ServiceStopping,
            format!("service stopping: {detail}"),
        )
    }

    /// The event `alert-test` sends.
    pub(crate) fn test() -> Alert {
        Alert::new(
            AlertKind::Test,
            "test alert from kasa-thermostat alert-test; the hook works",
        )
    }

    /// The message as it reaches the hook: one line, no control characters,
    /// at most [`MAX_MESSAGE_BYTES`] bytes.
    pub(crate) fn clean_message(&self) -> String {
        one_line(&self.message, MAX_MESSAGE_BYTES)
    }

    /// The line for people: `[critical] pi-ferment: heater 10.0.0.5:9999: failing ...`.
    /// `host` is the service's label (the machine's host name).
    pub(crate) fn line(&self, host: &str) -> String {
        format!(
            "[{}] {}: {}",
            self.severity,
            one_line(host, 64),
            self.clean_message()
        )
    }

    #[cfg(test)]
    /// The JSON object for scripts (`KASA_THERMOSTAT_EVENT`), as text:
    /// `{"kind","severity","recovered","temperature","units","plug","plug_host","host","message","time"}`.
    /// `temperature` is in `units`, rounded to 0.01; absent values are `null`;
    /// `time` is RFC 3339 UTC.
    pub(crate) fn to_json(&self, host: &str) -> String {
        self.view(host).to_json()
    }

    /// The fields as the hook sees them.
    pub(crate) fn view(&self, host: &str) -> AlertView {
        let (temperature, units) = match self.temperature {
            Some((t, u)) if t.is_finite() => (
                Some((u.from_c(t) * 100.0).round() / 100.0),
                Some(u.as_str()),
            ),
            _ => (None, None),
        };
        AlertView {
            kind: self.kind.as_str(),
            severity: self.severity.as_str(),
            recovered: self.recovered,
            temperature,
            units,
            plug: self.plug.as_ref().map(|(r, _)| r.as_str()),
            plug_host: self.plug.as_ref().map(|(_, h)| one_line(h, 128)),
            host: one_line(host, 64),
            message: self.clean_message(),
            time: format_rfc3339(self.time, Precision::Seconds),
        }
    }
}

/// An alert as the hook sees it; serialises to the `KASA_THERMOSTAT_EVENT` JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct AlertView {
    pub kind: &'static str,
    pub severity: &'static str,
    pub recovered: bool,
    pub temperature: Option<f64>,
    pub units: Option<&'static str>,
    pub plug: Option<&'static str>,
    pub plug_host: Option<String>,
    pub host: String,
    pub message: String,
    pub time: String,
}

impl AlertView {
    pub(crate) fn to_json(&self) -> String {
        // Serialising plain strings, numbers and options cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `text` on one line: control characters (newlines included) become spaces,
/// and past `max` bytes it is cut on a character boundary and ends with `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.len() <= max {
        return cleaned.to_string();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !cleaned.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &cleaned[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn kind_names_round_trip_and_unknown_names_list_the_kinds() {
        for k in AlertKind::ALL {
            assert_eq!(k.as_str().parse::<AlertKind>(), Ok(k));
        }
        let e = "alarm".parse::<AlertKind>().unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"alarm\""), "{text}");
        assert!(text.contains("plug_recovered"), "{text}");
    }

    #[test]
    fn recoveries_belong_to_their_condition_in_the_filter() {
        let set: KindSet = [AlertKind::SensorStale, AlertKind::AlarmHigh]
            .into_iter()
            .collect();
        assert!(set.passes(AlertKind::SensorStale));
        assert!(set.passes(AlertKind::SensorRecovered));
        assert!(set.passes(AlertKind::AlarmHigh));
        assert!(!set.passes(AlertKind::AlarmLow));
        assert!(!set.passes(AlertKind::PlugFailing));
        assert!(!set.passes(AlertKind::PlugRecovered));
        assert!(set.passes(AlertKind::Test), "test always passes");
        // Naming the recovery selects the pair.
        let set: KindSet = [AlertKind::PlugRecovered].into_iter().collect();
        assert!(set.passes(AlertKind::PlugFailing));
        assert!(set.passes(AlertKind::PlugRecovered));
        assert!(KindSet::empty().passes(AlertKind::Test));
        assert!(!KindSet::empty().passes(AlertKind::ServiceStarted));
        for k in AlertKind::ALL {
            assert!(KindSet::all().passes(k));
        }
    }

    #[test]
    fn recovery_representation() {
        let a = Alert::alarm_high(29.5, 30.0, Units::C, true);
        assert_eq!(
            (a.kind, a.recovered, a.severity),
            (AlertKind::AlarmHigh, true, Severity::Info)
        );
        let a = Alert::alarm_low(5.0, 6.0, Units::C, false);
        assert_eq!(
            (a.kind, a.recovered, a.severity),
            (AlertKind::AlarmLow, false, Severity::Critical)
        );
        let a = Alert::sensor_recovered(20.0, Units::C, Duration::from_secs(90));
        assert_eq!((a.kind, a.recovered), (AlertKind::SensorRecovered, true));
        let a = Alert::plug_recovered(Role::Heater, "10.0.0.5:9999", 4);
        assert_eq!(
            (a.kind, a.recovered, a.severity),
            (AlertKind::PlugRecovered, true, Severity::Info)
        );
        let a = Alert::plug_failing(Role::Cooler, "10.0.0.6:9999", 3, "timeout");
        assert_eq!(
            (a.kind, a.recovered, a.severity),
            (AlertKind::PlugFailing, false, Severity::Critical)
        );
        assert_eq!(
            Alert::deadman_unsupported(Role::Heater, "h", "x").severity,
            Severity::Warning
        );
    }

    #[test]
    fn line_is_one_line_with_severity_host_and_message() {
        let a = Alert::plug_failing(Role::Heater, "10.0.0.5:9999", 3, "timeout\nafter 6 s\r");
        assert_eq!(
            a.line("pi-ferment"),
            "[critical] pi-ferment: heater 10.0.0.5:9999: failing for 3 cycles: timeout after 6 s"
        );
        let long = Alert::new(AlertKind::Test, "é".repeat(400));
        let line = long.clean_message();
        assert!(line.len() <= MAX_MESSAGE_BYTES, "{}", line.len());
        assert!(line.ends_with('…'));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn json_form_has_the_contract_keys() {
        let a = Alert::alarm_high(30.25, 30.0, Units::F, false)
            .at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let v: serde_json::Value = serde_json::from_str(&a.to_json("pi")).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "host",
                "kind",
                "message",
                "plug",
                "plug_host",
                "recovered",
                "severity",
                "temperature",
                "time",
                "units"
            ]
        );
        assert_eq!(v["kind"], "alarm_high");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["recovered"], false);
        assert_eq!(v["temperature"], 86.45); // 30.25 °C in °F
        assert_eq!(v["units"], "F");
        assert_eq!(v["plug"], serde_json::Value::Null);
        assert_eq!(v["host"], "pi");
        assert_eq!(v["time"], "2023-11-14T22:13:20Z");
        assert_eq!(
            v["message"],
            "temperature 86.5 °F reached alarm_high 86.0 °F"
        );

        let p: serde_json::Value = serde_json::from_str(
            &Alert::plug_recovered(Role::Cooler, "10.0.0.6:9999", 5).to_json("pi"),
        )
        .unwrap();
        assert_eq!(p["plug"], "cooler");
        assert_eq!(p["plug_host"], "10.0.0.6:9999");
        assert_eq!(p["recovered"], true);
        assert_eq!(p["severity"], "info");
        assert_eq!(p["temperature"], serde_json::Value::Null);
        assert_eq!(p["units"], serde_json::Value::Null);
    }
}
