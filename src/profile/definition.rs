//! What a profile is: the config's `profile` object as written
//! ([`RawProfile`]) and the checked [`Profile`] built from it by
//! [`Profile::from_raw`], with its steps and its hash. A leaf of `profile/`:
//! the schedule, the state file, the runner and the renderings use it, and
//! it uses none of them (nor `profile/mod.rs`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::ProfileError;
use super::wall;
use crate::clock::{format_duration, parse_duration, DurationError};
use crate::control::Band;
use crate::units::Units;

/// The longest step: a year. Longer is surely a typo (`400d` for `40d`).
pub const MAX_STEP_S: u64 = 365 * 86_400;

/// A step's duration in whole seconds, 1 s to [`MAX_STEP_S`], in the one
/// duration grammar ([`crate::clock::parse_duration`]: `45s`, `90m`, `36h`,
/// `4d`, `2w`, `1d12h`).
pub fn step_secs(s: &str) -> Result<u64, String> {
    let total = parse_duration(s).map_err(|e| match e {
        DurationError::TooLong(_) => {
            format!(
                "{s:?} is too long; a step lasts at most {}",
                format_duration(MAX_STEP_S)
            )
        }
        e => e.to_string(),
    })?;
    if total == 0 {
        return Err(format!("{s:?} is zero; a step lasts at least 1s"));
    }
    if total > MAX_STEP_S {
        return Err(format!(
            "{s:?} is too long; a step lasts at most {}",
            format_duration(MAX_STEP_S)
        ));
    }
    Ok(total)
}

/// The most steps a profile may have.
pub(crate) const MAX_STEPS: usize = 100;

/// The config's `profile` object as written; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    /// `"now"`, an RFC 3339 time with offset, or (daily) a local `"HH:MM"`.
    #[serde(default = "default_start")]
    pub start: String,
    /// `daily`, or absent for a profile that runs once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
    /// What happens after the last step of a one-off profile.
    #[serde(default)]
    pub after_end: AfterEnd,
    /// The steps, in order.
    pub steps: Vec<RawStep>,
}

fn default_start() -> String {
    "now".to_string()
}

/// One step as written: either `hold` with `low`/`high` or `ramp` with
/// `to_low`/`to_high`. Kept as one struct so that a wrong mix gets a message
/// naming the key rather than serde's "did not match any variant".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// How long to hold, e.g. `"4d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
    /// The low limit while holding, in `units`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// The high limit while holding, in `units`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// How long the ramp takes, e.g. `"2d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<String>,
    /// The low limit at the end of the ramp, in `units`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_low: Option<f64>,
    /// The high limit at the end of the ramp, in `units`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_high: Option<f64>,
}

/// How a profile repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Every day at the same local time of day.
    Daily,
}

/// What a one-off profile does after its last step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AfterEnd {
    /// Keep the last step's final limits.
    #[default]
    HoldLast,
    /// Both plugs off.
    Off,
}

impl AfterEnd {
    /// The config's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            AfterEnd::HoldLast => "hold_last",
            AfterEnd::Off => "off",
        }
    }
}

/// When a profile starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// When the service first runs it (the instant is kept in the state file).
    Now,
    /// At this instant.
    At(OffsetDateTime),
    /// Every day at this local time of day, in seconds after midnight.
    Daily(u32),
}

/// Hold or ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepKind {
    /// Fixed limits.
    Hold,
    /// Scheduled moving linearly from the previous step's.
    Ramp,
}

impl StepKind {
    /// `hold` or `ramp`, the config's word.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Hold => "hold",
            StepKind::Ramp => "ramp",
        }
    }
}

/// A checked step. For a hold `from == to`; for a ramp `from` is the previous
/// step's `to` (in a daily profile, the first step's previous is the last).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Step {
    /// Hold or ramp.
    pub kind: StepKind,
    /// Length in seconds (1 s to [`MAX_STEP_S`]).
    pub secs: u64,
    /// The limits at the step's start.
    pub from: Band,
    /// The limits at the step's end.
    pub to: Band,
}

impl Step {
    /// `hold 4d 17.5..18.5 °C` / `ramp 2d 18.5..19.5 °C -> 20.5..21.5 °C`.
    pub fn describe(&self, units: Units) -> String {
        match self.kind {
            StepKind::Hold => format!(
                "hold {} {}",
                format_duration(self.secs),
                self.to.display(units)
            ),
            StepKind::Ramp => format!(
                "ramp {} {} -> {}",
                format_duration(self.secs),
                self.from.display(units),
                self.to.display(units)
            ),
        }
    }
}

/// A checked profile: build it with [`Profile::from_raw`].
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub(super) start: Start,
    pub(super) after_end: AfterEnd,
    pub(super) steps: Vec<Step>,
}

fn invalid(key: impl Into<String>, message: String) -> ProfileError {
    ProfileError::Invalid {
        key: key.into(),
        message,
    }
}

fn step_key(i: usize, field: &str) -> String {
    if field.is_empty() {
        format!("profile.steps[{i}]")
    } else {
        format!("profile.steps[{i}].{field}")
    }
}

const STEP_FORMS: &str = r#"a step is {"hold": "4d", "low": 17.5, "high": 18.5} or {"ramp": "2d", "to_low": 1.5, "to_high": 2.5}"#;

impl Profile {
    /// Checks every value of the config's `profile` (temperatures in `units`)
    /// and builds the typed profile. The first problem found is returned,
    /// naming its key.
    pub fn from_raw(raw: &RawProfile, units: Units) -> Result<Profile, ProfileError> {
        let daily = raw.repeat == Some(Repeat::Daily);
        let start = parse_start(&raw.start, daily)?;
        if raw.steps.is_empty() {
            return Err(invalid(
                "profile.steps",
                format!("is empty; give at least one step ({STEP_FORMS})"),
            ));
        }
        if raw.steps.len() > MAX_STEPS {
            return Err(invalid(
                "profile.steps",
                format!(
                    "has {} steps; at most {MAX_STEPS} are allowed",
                    raw.steps.len()
                ),
            ));
        }
        let temp = |key: String, v: f64| -> Result<f64, ProfileError> {
            let c = units.to_c(v);
            if !v.is_finite() || !(-55.0..=125.0).contains(&c) {
                return Err(invalid(
                    key,
                    format!(
                        "{v} is not a temperature a DS18B20 can read ({} to {} {})",
                        units.from_c(-55.0),
                        units.from_c(125.0),
                        units.symbol()
                    ),
                ));
            }
            Ok(c)
        };
        // First pass: each step's kind, length and end limits.
        let mut parsed: Vec<(StepKind, u64, Band)> = Vec::with_capacity(raw.steps.len());
        for (i, s) in raw.steps.iter().enumerate() {
            let (kind, dur, lo_key, hi_key, lo, hi) = match (&s.hold, &s.ramp) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        step_key(i, ""),
                        format!("has both `hold` and `ramp`; {STEP_FORMS}"),
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        step_key(i, ""),
                        format!("has neither `hold` nor `ramp`; {STEP_FORMS}"),
                    ))
                }
                (Some(d), None) => {
                    if s.to_low.is_some() || s.to_high.is_some() {
                        let k = if s.to_low.is_some() {
                            "to_low"
                        } else {
                            "to_high"
                        };
                        return Err(invalid(
                            step_key(i, k),
                            "belongs to a ramp; a hold takes `low` and `high`".to_string(),
                        ));
                    }
                    (StepKind::Hold, d, "low", "high", s.low, s.high)
                }
                (None, Some(d)) => {
                    if s.low.is_some() || s.high.is_some() {
                        let k = if s.low.is_some() { "low" } else { "high" };
                        return Err(invalid(
                            step_key(i, k),
                            "belongs to a hold; a ramp takes `to_low` and `to_high`, the limits it ends at"
                                .to_string(),
                        ));
                    }
                    (StepKind::Ramp, d, "to_low", "to_high", s.to_low, s.to_high)
                }
            };
            let secs = step_secs(dur).map_err(|e| invalid(step_key(i, kind.as_str()), e))?;
            let missing = |k: &str| {
                invalid(
                    step_key(i, k),
                    format!(
                        "is missing; a {} needs `{lo_key}` and `{hi_key}`",
                        kind.as_str()
                    ),
                )
            };
            let lo = temp(step_key(i, lo_key), lo.ok_or_else(|| missing(lo_key))?)?;
            let hi = temp(step_key(i, hi_key), hi.ok_or_else(|| missing(hi_key))?)?;
            if lo >= hi {
                return Err(invalid(
                    step_key(i, lo_key),
                    format!(
                        "{} must be below `{hi_key}` ({})",
                        fmt_num(units.from_c(lo)),
                        fmt_num(units.from_c(hi))
                    ),
                ));
            }
            parsed.push((
                kind,
                secs,
                Band {
                    low_c: lo,
                    high_c: hi,
                },
            ));
        }
        if parsed[0].0 == StepKind::Ramp && !daily {
            return Err(invalid(
                step_key(0, "ramp"),
                "a ramp moves from the previous step's limits and the first step has none; \
                 begin with a hold (a short one will do: {\"hold\": \"1m\", \"low\": ..., \"high\": ...})"
                    .to_string(),
            ));
        }
        let total: u64 = parsed.iter().map(|p| p.1).sum();
        if daily && total != 86_400 {
            return Err(invalid(
                "profile.steps",
                format!(
                    "add up to {}; the steps of a daily profile must add up to exactly 24h",
                    format_duration(total)
                ),
            ));
        }
        let last_end = parsed[parsed.len() - 1].2;
        let steps = parsed
            .iter()
            .enumerate()
            .map(|(i, &(kind, secs, to))| {
                let from = match kind {
                    StepKind::Hold => to,
                    StepKind::Ramp if i == 0 => last_end,
                    StepKind::Ramp => parsed[i - 1].2,
                };
                Step {
                    kind,
                    secs,
                    from,
                    to,
                }
            })
            .collect();
        Ok(Profile {
            start,
            after_end: raw.after_end,
            steps,
        })
    }

    #[cfg(test)]
    /// The config form of this profile, in `units`, durations in canonical
    /// form: what `check-config` prints as the effective profile.
    pub(crate) fn to_raw(&self, units: Units) -> RawProfile {
        let r = |c: f64| Some(round6(units.from_c(c)));
        RawProfile {
            start: match self.start {
                Start::Now => "now".to_string(),
                Start::At(t) => crate::clock::format_rfc3339(t, crate::clock::Precision::Seconds),
                Start::Daily(tod) => wall::time_of_day_string(tod),
            },
            repeat: self.is_daily().then_some(Repeat::Daily),
            after_end: self.after_end,
            steps: self
                .steps
                .iter()
                .map(|s| match s.kind {
                    StepKind::Hold => RawStep {
                        hold: Some(format_duration(s.secs)),
                        low: r(s.to.low_c),
                        high: r(s.to.high_c),
                        ..RawStep::default()
                    },
                    StepKind::Ramp => RawStep {
                        ramp: Some(format_duration(s.secs)),
                        to_low: r(s.to.low_c),
                        to_high: r(s.to.high_c),
                        ..RawStep::default()
                    },
                })
                .collect(),
        }
    }

    /// When it starts.
    pub fn start(&self) -> Start {
        self.start
    }

    /// Whether it repeats daily.
    pub(crate) fn is_daily(&self) -> bool {
        matches!(self.start, Start::Daily(_))
    }

    /// What happens after the last step.
    pub(crate) fn after_end(&self) -> AfterEnd {
        self.after_end
    }

    /// The steps (never empty).
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    #[cfg(test)]
    /// The length of all steps together, seconds.
    pub(crate) fn total_secs(&self) -> u64 {
        self.steps.iter().map(|s| s.secs).sum()
    }

    /// A stable hash of what decides the schedule: the start, the repeat and
    /// every step (kind, seconds, limits rounded to 0.001 °C, so the same
    /// profile written in °F or °C, or with `4d` for `96h`, hashes the same).
    /// `after_end` is left out on purpose: switching a finished cold crash to
    /// `off` must not start the whole profile over.
    ///
    /// FNV-1a 64 over a canonical text (not the JSON's formatting), written
    /// `fnv1a64:` and 16 hex digits. It detects edits, it is not a security
    /// measure; the algorithm is fixed, so the value is the same on every
    /// build and platform.
    pub(crate) fn hash(&self) -> String {
        let mut text = String::from("kasa-thermostat profile v1\n");
        match self.start {
            Start::Now => text.push_str("start now\n"),
            Start::At(t) => text.push_str(&format!("start at {}\n", t.unix_timestamp())),
            Start::Daily(tod) => text.push_str(&format!("start daily {tod}\n")),
        }
        for s in &self.steps {
            let mk = |c: f64| (c * 1000.0).round() as i64;
            text.push_str(&format!(
                "{} {} {} {}\n",
                s.kind.as_str(),
                s.secs,
                mk(s.to.low_c),
                mk(s.to.high_c)
            ));
        }
        format!("fnv1a64:{:016x}", fnv1a64(text.as_bytes()))
    }
}

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

fn fmt_num(v: f64) -> String {
    let r = round6(v);
    format!("{r}")
}

fn parse_start(s: &str, daily: bool) -> Result<Start, ProfileError> {
    if daily {
        if s == "now" || s.contains('T') || s.contains('-') {
            return Err(invalid(
                "profile.start",
                format!(
                    "{s:?} is not a time of day; with \"repeat\": \"daily\" the start is the local \
                     time of day when the first step begins, like \"07:00\""
                ),
            ));
        }
        return wall::parse_time_of_day(s)
            .map(Start::Daily)
            .map_err(|e| invalid("profile.start", e));
    }
    if s == "now" {
        return Ok(Start::Now);
    }
    if wall::parse_time_of_day(s).is_ok() {
        return Err(invalid(
            "profile.start",
            format!(
                "{s:?} is a time of day, which needs \"repeat\": \"daily\"; a one-off profile \
                 starts \"now\" or at a date and time like \"2026-12-01T08:00:00+01:00\""
            ),
        ));
    }
    wall::parse_instant(s)
        .map(Start::At)
        .map_err(|e| invalid("profile.start", format!("{e}, or \"now\"")))
}
