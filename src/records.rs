//! The lines of the data logs, one struct per line: [`ReadingRecord`] for
//! `readings.jsonl` (one per control cycle) and [`EventRecord`] for
//! `plug-events.jsonl` (one per finished plug command). The service writes
//! them (`outputs`) and `plot`, `report` and `status` read them back
//! (`history`) through these same types, as the state file is written and
//! read through `outputs::StateFile`.
//!
//! Writing is plain serde. Reading is liberal on purpose, because these
//! files live for weeks and outlive versions of the program: unknown keys
//! are ignored, and an optional field that is missing or of an unexpected
//! type is simply absent (`None`, `false`, empty), as lines from older
//! versions need. Only a line without its `time` (or, for an event, its
//! `role`, `action` or `outcome`) is not a record.
//!
//! The keys and value shapes are the files' contract (docs/design.md, the
//! files and their formats); `time` comes first in every line, so a reader
//! can skip lines before `--since` from their first bytes.

use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::control::Alarm;
pub use crate::msg::PlugState;
use crate::units::Units;

/// The readings log's file name in `log_dir`: a [`ReadingRecord`] a line.
pub const READINGS_FILE: &str = "readings.jsonl";
/// The plug event log's file name in `log_dir`: an [`EventRecord`] a line.
pub const PLUG_EVENTS_FILE: &str = "plug-events.jsonl";

/// One line of `readings.jsonl`: a control cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingRecord {
    /// When the cycle ran.
    #[serde(with = "rfc3339_millis")]
    pub time: SystemTime,
    /// The temperature in `units`; `None` before the first valid reading.
    #[serde(default, deserialize_with = "finite")]
    pub temperature: Option<f64>,
    /// The units of the temperature and the limits (`None` if the line does
    /// not say; °C then).
    #[serde(default, deserialize_with = "lenient")]
    pub units: Option<Units>,
    /// The mode (`heat`, `cool`, `heat_cool`, `off`), kept as written.
    #[serde(default, deserialize_with = "lenient")]
    pub mode: Option<String>,
    /// The low limit in force (lines from older versions lack it).
    #[serde(default, deserialize_with = "finite")]
    pub low_limit: Option<f64>,
    /// The high limit in force.
    #[serde(default, deserialize_with = "finite")]
    pub high_limit: Option<f64>,
    /// Why the plugs are as they are.
    #[serde(default, deserialize_with = "lenient")]
    pub reason: Option<String>,
    /// The active temperature alarm.
    #[serde(default, deserialize_with = "lenient")]
    pub alarm: Option<Alarm>,
    /// No valid reading for `stale_after_s`.
    #[serde(default, deserialize_with = "lenient_or_default")]
    pub sensor_stale: bool,
    /// The heater plug, if configured (absent otherwise).
    #[serde(
        default,
        deserialize_with = "plug_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub heater: Option<PlugRecord>,
    /// The cooler plug, if configured (absent otherwise).
    #[serde(
        default,
        deserialize_with = "plug_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub cooler: Option<PlugRecord>,
    /// Cascade control: the chamber (air) temperature in `units` (absent
    /// without a chamber sensor, and in older lines).
    #[serde(
        default,
        deserialize_with = "finite",
        skip_serializing_if = "Option::is_none"
    )]
    pub chamber_temperature: Option<f64>,
    /// Cascade control: the chamber setpoint in `units` (absent while the
    /// cascade is not in charge).
    #[serde(
        default,
        deserialize_with = "finite",
        skip_serializing_if = "Option::is_none"
    )]
    pub chamber_setpoint: Option<f64>,
    /// Cascade control: the chamber sensor is stale (hysteresis on the
    /// product sensor); absent without a chamber sensor.
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub chamber_stale: Option<bool>,
}

/// One plug's part of a [`ReadingRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlugRecord {
    /// What control wanted (null when it had no opinion yet).
    #[serde(default, deserialize_with = "lenient")]
    pub desired: Option<bool>,
    /// The verified relay state (null: unknown).
    #[serde(default, deserialize_with = "lenient")]
    pub verified: Option<bool>,
    /// The state as written; lines from older versions have none (see
    /// [`PlugRecord::state`]).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<PlugState>,
}

impl PlugRecord {
    /// The record of a plug in `state`.
    pub fn new(desired: Option<bool>, state: PlugState) -> PlugRecord {
        PlugRecord {
            desired,
            verified: state.known(),
            state: Some(state),
        }
    }

    /// The state: from the line, or (older lines) from `verified`.
    pub fn state(&self) -> PlugState {
        self.state.unwrap_or(match self.verified {
            Some(true) => PlugState::On,
            Some(false) => PlugState::Off,
            None => PlugState::Unknown,
        })
    }
}

/// One line of `plug-events.jsonl`: a finished plug command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// When the command finished.
    #[serde(with = "rfc3339_millis")]
    pub time: SystemTime,
    /// `heater`, `cooler` (or `manual`).
    pub role: String,
    /// The plug's address.
    #[serde(default, deserialize_with = "lenient")]
    pub host: Option<String>,
    /// `on`, `off`, `read`, `arm_deadman`, `clear_deadman` (kept as written).
    pub action: String,
    /// How it ended.
    pub outcome: EventOutcome,
    /// The relay state known after the command.
    #[serde(default, deserialize_with = "lenient")]
    pub state: Option<PlugState>,
    /// Attempts made (1 = first try); older lines lack it (see
    /// [`EventRecord::attempts`]).
    #[serde(default, deserialize_with = "attempts")]
    pub attempts: Option<u32>,
    /// Each attempt's duration, ms.
    #[serde(default, deserialize_with = "numbers")]
    pub attempt_ms: Vec<f64>,
    /// The whole command, retry sleeps included, ms.
    #[serde(default, deserialize_with = "finite")]
    pub duration_ms: Option<f64>,
    /// Wi-Fi signal from the pre-read, dBm (read back only within
    /// -150..=0: anything else is a plug's garbage).
    #[serde(default, deserialize_with = "rssi")]
    pub rssi: Option<i64>,
    /// On failure: `timeout`, `refused`, ... (kept as written).
    #[serde(default, deserialize_with = "lenient")]
    pub error_kind: Option<String>,
    /// On failure: the message.
    #[serde(default, deserialize_with = "lenient")]
    pub error: Option<String>,
    /// What the command did to the dead-man rule: `armed`, `cleared`,
    /// `unsupported`.
    #[serde(default, deserialize_with = "lenient")]
    pub deadman: Option<String>,
    /// A read that found the plug switched by hand (then corrected).
    #[serde(default, deserialize_with = "lenient_or_default")]
    pub corrected: bool,
}

impl EventRecord {
    /// Attempts made: from the line, or (older lines) one per `attempt_ms`.
    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or(self.attempt_ms.len() as u32)
    }

    /// An `on` or `off` command.
    pub fn is_switch(&self) -> bool {
        self.action == "on" || self.action == "off"
    }
}

/// How a plug command ended, as `plug-events.jsonl` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventOutcome {
    /// Done and verified.
    Ok,
    /// Failed after its retries.
    Failed,
    /// Replaced by a newer command before it finished.
    Superseded,
    /// A word this version does not know (read only, never written).
    Other,
}

impl<'de> Deserialize<'de> for EventOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EventOutcome, D::Error> {
        Ok(match String::deserialize(d)?.as_str() {
            "ok" => EventOutcome::Ok,
            "failed" => EventOutcome::Failed,
            "superseded" => EventOutcome::Superseded,
            _ => EventOutcome::Other,
        })
    }
}

/// `time`: RFC 3339 UTC with milliseconds, read with
/// [`crate::clock::parse_rfc3339`].
mod rfc3339_millis {
    use super::*;
    use crate::clock::{format_rfc3339, parse_rfc3339, Precision};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*t, Precision::Millis))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// Any value: `Some` when it is a `T`, else `None`.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).ok())
}

/// A plug's object; anything else (an array too, which serde would read
/// field by field) is `None`.
fn plug_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PlugRecord>, D::Error> {
    Ok(match Value::deserialize(d)? {
        v @ Value::Object(_) => PlugRecord::deserialize(v).ok(),
        _ => None,
    })
}

/// Any value: itself when it is a `T`, else `T`'s default.
fn lenient_or_default<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(lenient(d)?.unwrap_or_default())
}

/// A finite number, or `None`.
fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(lenient::<D, f64>(d)?.filter(|v| v.is_finite()))
}

/// The numbers of an array (others skipped); empty when not an array.
fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
        _ => Vec::new(),
    })
}

/// A whole count, at most `u32::MAX`.
fn attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(lenient::<D, u64>(d)?.map(|a| a.min(u64::from(u32::MAX)) as u32))
}

/// A signal strength in -150..=0 dBm, rounded.
fn rssi<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(finite(d)?
        .filter(|r| (-150.0..=0.0).contains(r))
        .map(|r| r.round() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_rfc3339;

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_reading_writes_the_keys_of_the_file_format_time_first() {
        let r = ReadingRecord {
            time: at("2026-11-28T21:00:00.25Z"),
            temperature: Some(18.25),
            units: Some(Units::C),
            mode: Some("heat".into()),
            low_limit: Some(18.0),
            high_limit: Some(20.0),
            reason: Some("r".into()),
            alarm: None,
            sensor_stale: false,
            heater: Some(PlugRecord::new(Some(true), PlugState::Unknown)),
            cooler: None,
            chamber_temperature: None,
            chamber_setpoint: None,
            chamber_stale: None,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"time":"2026-11-28T21:00:00.250Z","temperature":18.25,"units":"C","mode":"heat","low_limit":18.0,"high_limit":20.0,"reason":"r","alarm":null,"sensor_stale":false,"heater":{"desired":true,"verified":null,"state":"unknown"}}"#
        );
        let back: ReadingRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        // Cascade control adds the chamber's keys at the end.
        let cascade = ReadingRecord {
            chamber_temperature: Some(14.5),
            chamber_setpoint: Some(14.25),
            chamber_stale: Some(false),
            ..r
        };
        let line = serde_json::to_string(&cascade).unwrap();
        assert!(
            line.ends_with(
                r#""chamber_temperature":14.5,"chamber_setpoint":14.25,"chamber_stale":false}"#
            ),
            "{line}"
        );
        assert_eq!(
            serde_json::from_str::<ReadingRecord>(&line).unwrap(),
            cascade
        );
    }

    #[test]
    fn fields_of_an_unexpected_type_are_absent_not_fatal() {
        let r: ReadingRecord = serde_json::from_str(
            r#"{"time":"2026-11-28T21:00:00Z","temperature":"hot","units":"K","mode":3,
                "alarm":"maybe","sensor_stale":"yes","heater":[1],"cooler":{"verified":false}}"#,
        )
        .unwrap();
        assert_eq!(r.temperature, None);
        assert_eq!(r.units, None);
        assert_eq!(r.mode, None);
        assert_eq!(r.alarm, None);
        assert!(!r.sensor_stale);
        assert_eq!(r.heater, None);
        assert_eq!(r.cooler.unwrap().state(), PlugState::Off);
        for bad in [
            r#"{"temperature":1}"#,
            r#"{"time":"yesterday"}"#,
            r#"{"time":5}"#,
            r#"[1,2]"#,
        ] {
            assert!(serde_json::from_str::<ReadingRecord>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_event_round_trips_and_reads_old_and_odd_lines() {
        let e = EventRecord {
            time: at("2026-11-28T21:00:05.123Z"),
            role: "heater".into(),
            host: Some("10.0.0.5:9999".into()),
            action: "on".into(),
            outcome: EventOutcome::Failed,
            state: Some(PlugState::Unknown),
            attempts: Some(2),
            attempt_ms: vec![6003.2, 612.4],
            duration_ms: Some(7620.1),
            rssi: Some(-58),
            error_kind: Some("timeout".into()),
            error: Some("timed out".into()),
            deadman: None,
            corrected: false,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(
            line.starts_with(r#"{"time":"2026-11-28T21:00:05.123Z","role":"heater","#),
            "{line}"
        );
        assert!(line.contains(r#""outcome":"failed""#) && line.contains(r#""deadman":null"#));
        assert_eq!(serde_json::from_str::<EventRecord>(&line).unwrap(), e);
        let old: EventRecord = serde_json::from_str(
            r#"{"time":"2026-11-28T21:00:05Z","role":"cooler","action":"read","outcome":"exploded",
                "attempt_ms":[3000,"x",3000],"rssi":12,"attempts":-1}"#,
        )
        .unwrap();
        assert_eq!(old.outcome, EventOutcome::Other);
        assert_eq!(old.attempt_ms, vec![3000.0, 3000.0]);
        assert_eq!(old.attempts(), 2, "from attempt_ms when absent or odd");
        assert_eq!(old.rssi, None, "outside -150..=0 dBm");
        for missing in ["role", "action", "outcome", "time"] {
            let mut v: serde_json::Value = serde_json::from_str(&line).unwrap();
            v.as_object_mut().unwrap().remove(missing);
            assert!(
                serde_json::from_value::<EventRecord>(v).is_err(),
                "no {missing}: not a record"
            );
        }
    }
}
