//! `overrides_file`: the changes made while the service runs (web, `set`,
//! MQTT), each with its source, its time and the config's value it replaced,
//! so that they survive a restart and a later edit of the config to the same
//! key wins (the override is cleared, and the log says so).
//!
//! The file is JSON, written atomically and only when it changes:
//!
//! ```json
//! { "mode":   { "value": "cool", "config": "heat", "source": "cli", "at": "2026-12-01T21:40:00Z" },
//!   "limits": { "value": {"low": 17.0, "high": 19.0}, "config": {"low": 18.0, "high": 20.0},
//!               "source": "web", "at": "2026-12-01T21:41:00Z" } }
//! ```
//! Temperatures are in the config's `units`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Config, RawConfig};
use crate::control::Mode;
use crate::msg::{Command, Source};

/// The largest overrides file read (a real one is a few hundred bytes).
const MAX_BYTES: u64 = 64 * 1024;

/// A pair of limits as written in the config (its `units`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitPair {
    /// `low_limit`.
    pub low: f64,
    /// `high_limit`.
    pub high: f64,
}

/// One overridden key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry<T> {
    /// The value in force.
    pub value: T,
    /// The config's value when the override was made: when the config says
    /// something else later, the config wins.
    pub config: T,
    /// Who made it.
    pub source: Source,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// Every override in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// `mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Entry<Mode>>,
    /// `low_limit` and `high_limit`, together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Entry<LimitPair>>,
}

/// Why the overrides file cannot be used.
#[derive(Debug)]
pub enum OverridesError {
    /// It cannot be read: check its permissions and that it is a regular file.
    Read(crate::fsutil::ReadError),
    /// It is not an overrides file: delete it, or fix what the message names.
    Damaged(String),
    /// It cannot be written: check that its directory exists and is the service's.
    Write(std::io::Error),
}

impl std::fmt::Display for OverridesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverridesError::Read(e) => write!(f, "cannot read it: {e}"),
            OverridesError::Damaged(m) => write!(f, "not an overrides file: {m}"),
            OverridesError::Write(e) => write!(f, "cannot write it: {e}"),
        }
    }
}

impl std::error::Error for OverridesError {}

fn config_limits(raw: &RawConfig) -> LimitPair {
    LimitPair {
        low: raw.low_limit,
        high: raw.high_limit,
    }
}

/// A temperature as people write it: `18.5`, `18`.
fn t(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    format!("{r}")
}

impl Overrides {
    /// Reads `path`; a file that does not exist is no override.
    pub fn load(path: &Path) -> Result<Overrides, OverridesError> {
        let text = match crate::fsutil::read_text_capped(path, MAX_BYTES) {
            Ok(t) => t,
            Err(e) if e.io_kind() == std::io::ErrorKind::NotFound => {
                return Ok(Overrides::default())
            }
            Err(e) => return Err(OverridesError::Read(e)),
        };
        serde_json::from_str(&text).map_err(|e| OverridesError::Damaged(e.to_string()))
    }

    /// Writes it to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), OverridesError> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| OverridesError::Write(std::io::Error::other(e)))?;
        text.push('\n');
        crate::outputs::write_atomic(path, &text).map_err(OverridesError::Write)
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.limits.is_none()
    }

    /// `raw` with the overrides applied.
    pub fn apply(&self, raw: &RawConfig) -> RawConfig {
        let mut out = raw.clone();
        if let Some(m) = &self.mode {
            out.mode = m.value;
        }
        if let Some(l) = &self.limits {
            out.low_limit = l.value.low;
            out.high_limit = l.value.high;
        }
        out
    }

    /// Drops each override whose key the config now sets to another value
    /// than it did when the override was made (an edit of the config wins);
    /// returns a line for the log about each.
    pub fn drop_superseded(&mut self, raw: &RawConfig) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(m) = &self.mode {
            if m.config != raw.mode {
                notes.push(format!(
                    "the config changed `mode` ({} -> {}): the override mode {} ({}, {}) is cleared",
                    m.config, raw.mode, m.value, m.source, m.at
                ));
                self.mode = None;
            }
        }
        if let Some(l) = &self.limits {
            let now = config_limits(raw);
            if l.config != now {
                notes.push(format!(
                    "the config changed `low_limit`/`high_limit` ({} .. {} -> {} .. {}): the override limits {} .. {} ({}, {}) are cleared",
                    t(l.config.low), t(l.config.high), t(now.low), t(now.high),
                    t(l.value.low), t(l.value.high), l.source, l.at
                ));
                self.limits = None;
            }
        }
        notes
    }

    /// The overrides after `command` from `source` at `at` (RFC 3339),
    /// on top of the config `base`, checked with the config's own rules:
    /// the new overrides and what changed, or the config's message for
    /// the first problem. An override equal to the config's value is
    /// dropped rather than kept.
    pub fn with(
        &self,
        command: &Command,
        base: &RawConfig,
        source: Source,
        at: &str,
    ) -> Result<(Overrides, Vec<String>), String> {
        let mut next = if command.clear {
            Overrides::default()
        } else {
            self.clone()
        };
        let mut changes = Vec::new();
        if command.clear && !self.is_empty() {
            changes.push("overrides cleared: back to the config's values".to_string());
        }
        fn entry<T>(value: T, config: T, source: Source, at: &str) -> Entry<T> {
            Entry {
                value,
                config,
                source,
                at: at.to_string(),
            }
        }
        if let Some(word) = &command.mode {
            let mode: Mode = serde_json::from_value(serde_json::Value::String(word.clone()))
                .map_err(|_| {
                    format!("key `mode`: {word:?} is not one of off, heat, cool, heat_cool")
                })?;
            let before = next.apply(base).mode;
            if mode != before {
                changes.push(format!("mode {before} -> {mode}"));
            }
            next.mode = (mode != base.mode).then(|| entry(mode, base.mode, source, at));
        }
        if command.low.is_some() || command.high.is_some() || command.target.is_some() {
            if base.profile.is_some() {
                return Err(
                    "key `low_limit`/`high_limit`: the profile sets the limits while it runs; \
                     restart it or skip its step, or edit its steps in the config"
                        .to_string(),
                );
            }
            let before = config_limits(&next.apply(base));
            let mut pair = before;
            if let Some(target) = command.target {
                if !target.is_finite() {
                    return Err(format!("target: {target} is not a temperature"));
                }
                let half = (before.high - before.low) / 2.0;
                pair = LimitPair {
                    low: target - half,
                    high: target + half,
                };
            }
            if let Some(low) = command.low {
                pair.low = low;
            }
            if let Some(high) = command.high {
                pair.high = high;
            }
            if pair != before {
                changes.push(format!(
                    "limits {} .. {} -> {} .. {} {}",
                    t(before.low),
                    t(before.high),
                    t(pair.low),
                    t(pair.high),
                    base.units.symbol()
                ));
            }
            let config = config_limits(base);
            next.limits = (pair != config).then(|| entry(pair, config, source, at));
        }
        // The config's rules, and its messages, decide.
        Config::from_raw(next.apply(base)).map_err(|e| e.to_string())?;
        Ok((next, changes))
    }

    /// One line per override, for `status` and the log.
    pub fn lines(&self, units: crate::units::Units) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = &self.mode {
            out.push(format!(
                "mode {} (config: {}) by {} at {}",
                m.value, m.config, m.source, m.at
            ));
        }
        if let Some(l) = &self.limits {
            out.push(format!(
                "limits {} .. {} {} (config: {} .. {}) by {} at {}",
                t(l.value.low),
                t(l.value.high),
                units.symbol(),
                t(l.config.low),
                t(l.config.high),
                l.source,
                l.at
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawPlug;

    use crate::command::test_base::test_base as base;

    fn cmd(f: impl FnOnce(&mut Command)) -> Command {
        let mut c = Command::default();
        f(&mut c);
        c
    }

    #[test]
    fn a_valid_change_is_kept_with_source_and_the_configs_value() {
        let (o, changes) = Overrides::default()
            .with(
                &cmd(|c| {
                    c.low = Some(17.0);
                    c.high = Some(19.5)
                }),
                &base(),
                Source::Cli,
                "2026-12-01T00:00:00Z",
            )
            .unwrap();
        let l = o.limits.as_ref().unwrap();
        assert_eq!(
            l.value,
            LimitPair {
                low: 17.0,
                high: 19.5
            }
        );
        assert_eq!(
            l.config,
            LimitPair {
                low: 18.0,
                high: 20.0
            }
        );
        assert_eq!(l.source, Source::Cli);
        assert_eq!(changes, vec!["limits 18 .. 20 -> 17 .. 19.5 °C"]);
        let applied = o.apply(&base());
        assert_eq!((applied.low_limit, applied.high_limit), (17.0, 19.5));
    }

    #[test]
    fn refusals_are_the_configs_messages() {
        let o = Overrides::default();
        let e = o
            .with(&cmd(|c| c.low = Some(25.0)), &base(), Source::Web, "t")
            .unwrap_err();
        assert_eq!(e, "key `low_limit`: 25 must be below high_limit (20)");
        let e = o
            .with(
                &cmd(|c| c.mode = Some("cool".into())),
                &base(),
                Source::Web,
                "t",
            )
            .unwrap_err();
        assert_eq!(
            e,
            "key `mode`: \"cool\" needs a `cooler` plug, and none is configured"
        );
        let e = o
            .with(
                &cmd(|c| c.mode = Some("warm".into())),
                &base(),
                Source::Web,
                "t",
            )
            .unwrap_err();
        assert!(e.contains("\"warm\" is not one of"), "{e}");
        let e = o
            .with(&cmd(|c| c.high = Some(f64::NAN)), &base(), Source::Web, "t")
            .unwrap_err();
        assert!(e.starts_with("key `high_limit`"), "{e}");
    }

    #[test]
    fn a_target_keeps_the_width_and_the_configs_value_drops_the_override() {
        let (o, _) = Overrides::default()
            .with(&cmd(|c| c.target = Some(15.0)), &base(), Source::Mqtt, "t")
            .unwrap();
        assert_eq!(
            o.limits.as_ref().unwrap().value,
            LimitPair {
                low: 14.0,
                high: 16.0
            }
        );
        let (o, _) = o
            .with(&cmd(|c| c.target = Some(19.0)), &base(), Source::Mqtt, "t")
            .unwrap();
        assert!(o.is_empty(), "{o:?}");
    }

    #[test]
    fn an_edit_of_the_config_clears_the_override_of_that_key_only() {
        let mut raw = base();
        raw.cooler = Some(RawPlug::new("10.0.0.6", None));
        let (mut o, _) = Overrides::default()
            .with(
                &cmd(|c| {
                    c.mode = Some("heat_cool".into());
                    c.low = Some(10.0)
                }),
                &raw,
                Source::Cli,
                "t",
            )
            .unwrap();
        assert!(o.drop_superseded(&raw).is_empty());
        raw.mode = Mode::Cool;
        let notes = o.drop_superseded(&raw);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("the config changed `mode` (heat -> cool)"),
            "{}",
            notes[0]
        );
        assert!(o.mode.is_none() && o.limits.is_some());
    }

    #[test]
    fn the_file_round_trips_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.json");
        assert!(Overrides::load(&path).unwrap().is_empty());
        let (o, _) = Overrides::default()
            .with(
                &cmd(|c| c.mode = Some("off".into())),
                &base(),
                Source::Web,
                "t",
            )
            .unwrap();
        o.save(&path).unwrap();
        assert_eq!(Overrides::load(&path).unwrap(), o);
        std::fs::write(&path, "{\"mode\": 3}").unwrap();
        assert!(matches!(
            Overrides::load(&path),
            Err(OverridesError::Damaged(_))
        ));
    }

    #[test]
    fn limits_are_refused_while_a_profile_sets_them() {
        let mut raw = base();
        raw.profile = Some(
            serde_json::from_str(r#"{"steps": [{"hold": "1d", "low": 18, "high": 19}]}"#).unwrap(),
        );
        let e = Overrides::default()
            .with(&cmd(|c| c.high = Some(21.0)), &raw, Source::Web, "t")
            .unwrap_err();
        assert!(e.contains("the profile sets the limits"), "{e}");
    }
}
