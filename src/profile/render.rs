//! Showing a profile to people: the plan for `profile show` and the one-line
//! summary for `status` (from the few fields the service puts in the state
//! file, since `status` reads only that file).

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::definition::{AfterEnd, Profile, Start, StepKind};
use super::runner::Tick;
use super::schedule::{limits_at, step_bounds, ProfilePhase};
use super::state::{load_state, ProfileState};
use super::wall::{parse_instant, time_of_day_string};
use crate::clock::{format_duration, format_rfc3339, human, local_string, Precision, Zone};
use crate::units::Units;

fn remaining(now: OffsetDateTime, then: OffsetDateTime) -> String {
    human((then - now).as_seconds_f64())
}

/// The plan for `kasa-thermostat profile show`: every step with its start
/// and end on the local clock of `zone` and its limits in `units`, the
/// current step marked `>` with the limits now and the time to the next
/// step. `state` is the state file's content, if any: without it (or when
/// it belongs to another profile) the plan is shown as the service would
/// begin it now. A daily profile shows the cycle that contains `now`.
pub fn render_plan(
    profile: &Profile,
    state: Option<&ProfileState>,
    now: OffsetDateTime,
    zone: &Zone,
    units: Units,
) -> String {
    let n = profile.steps().len();
    let mut out = String::new();
    let same = state.filter(|s| s.profile_hash == profile.hash());
    let plural = if n == 1 { "" } else { "s" };
    let (start, note) = match (profile.start(), same) {
        (Start::Daily(tod), _) => (
            now,
            format!(
                "daily profile, {n} step{plural} from {} each day on the local clock",
                time_of_day_string(tod)
            ),
        ),
        (_, Some(s)) => (
            s.start,
            format!(
                "profile of {n} step{plural}, started {} (state file)",
                local_string(zone, s.start, false)
            ),
        ),
        (Start::At(t), None) => (
            t,
            format!(
                "profile of {n} step{plural}, not yet run: it starts {}",
                local_string(zone, t, false)
            ),
        ),
        (Start::Now, None) => (
            now.replace_nanosecond(0).unwrap_or(now),
            format!("profile of {n} step{plural}, not yet run: it starts when the service runs it; shown as if now"),
        ),
    };
    out.push_str(&note);
    if state.is_some() && same.is_none() && !profile.is_daily() {
        out.push_str("\n(the state file is for another profile: the service starts this one over)");
    }
    out.push('\n');

    let limits = limits_at(profile, start, now, zone);
    let bounds = step_bounds(profile, start, now, zone);
    let seconds = bounds.iter().any(|t| t.second() != 0);
    let mut rows: Vec<[String; 5]> = vec![[
        String::new(),
        "step".into(),
        "begins".into(),
        "ends".into(),
        "limits".into(),
    ]];
    let current = match limits.phase {
        ProfilePhase::Step { index, .. } => Some(index),
        _ => None,
    };
    for (i, step) in profile.steps().iter().enumerate() {
        let kind = format!(
            "{}. {} {}",
            i + 1,
            step.kind.as_str(),
            format_duration(step.secs)
        );
        let band = match step.kind {
            StepKind::Hold => step.to.display(units),
            StepKind::Ramp => format!("{} -> {}", step.from.display(units), step.to.display(units)),
        };
        rows.push([
            if current == Some(i) {
                ">".into()
            } else {
                String::new()
            },
            kind,
            local_string(zone, bounds[i], seconds),
            local_string(zone, bounds[i + 1], seconds),
            band,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c < 4 {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if r > 0 && current == Some(r - 1) {
            let pad = " ".repeat(widths[0] + 2);
            if let (Some(band), Some(to_next)) = (limits.band, limits.next_change()) {
                let next = if r == n && !profile.is_daily() {
                    "the profile ends in"
                } else {
                    "next step in"
                };
                out.push_str(&format!(
                    "{pad}now {}, {next} {}\n",
                    band.display(units),
                    remaining(now, to_next)
                ));
            }
        }
    }
    let last = profile.steps()[n - 1].to;
    match limits.phase {
        ProfilePhase::Waiting { starts } => out.push_str(&format!(
            "now: waiting for the start (in {}), holding {}\n",
            remaining(now, starts),
            profile.steps()[0].from.display(units)
        )),
        ProfilePhase::Ended { ended, .. } => out.push_str(&format!(
            "now: ended {} ago, {}\n",
            remaining(ended, now),
            match profile.after_end() {
                AfterEnd::HoldLast => format!("holding {}", last.display(units)),
                AfterEnd::Off => "both plugs off".to_string(),
            }
        )),
        ProfilePhase::Step { .. } => {}
    }
    if !profile.is_daily() {
        out.push_str(&match profile.after_end() {
            AfterEnd::HoldLast => format!("after the end: hold {}\n", last.display(units)),
            AfterEnd::Off => "after the end: both plugs off\n".to_string(),
        });
    }
    out
}

/// `kasa-thermostat profile show --config F`: the plan, with the state file
/// at `state_path` read for the start. A state file that cannot be used does
/// not stop the plan from being shown: its error is printed under it.
pub fn show_command(
    profile: &Profile,
    state_path: &Path,
    now: OffsetDateTime,
    zone: &Zone,
    units: Units,
) -> String {
    match load_state(state_path) {
        Ok(state) => render_plan(profile, state.as_ref(), now, zone, units),
        Err(e) => {
            let mut out = render_plan(profile, None, now, zone, units);
            out.push_str(&format!("warning: {e}\n"));
            out
        }
    }
}

/// The profile's part of the runtime state file, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileStatus {
    /// `waiting`, `hold`, `ramp`, `ended` or `clock_not_set`.
    pub phase: String,
    /// The current step, 0-based (`steps[i]` in the config).
    pub step: Option<usize>,
    /// How many steps the profile has.
    pub steps: usize,
    /// The low limit in force, in the state file's units (`None`: plugs off).
    pub low: Option<f64>,
    /// The high limit in force, in the state file's units.
    pub high: Option<f64>,
    /// When the next step begins (RFC 3339 UTC).
    pub next_change: Option<String>,
}

impl ProfileStatus {
    /// The status after a cycle, temperatures in `units`.
    pub(crate) fn of(profile: &Profile, tick: &Tick, units: Units) -> ProfileStatus {
        let round = |c: f64| (units.from_c(c) * 100.0).round() / 100.0;
        let (phase, step) = match tick.limits.map(|l| l.phase) {
            None => ("clock_not_set", None),
            Some(ProfilePhase::Waiting { .. }) => ("waiting", None),
            Some(ProfilePhase::Step { index, ramp, .. }) => {
                (if ramp { "ramp" } else { "hold" }, Some(index))
            }
            Some(ProfilePhase::Ended { .. }) => ("ended", None),
        };
        ProfileStatus {
            phase: phase.to_string(),
            step,
            steps: profile.steps().len(),
            low: tick.band.map(|b| round(b.low_c)),
            high: tick.band.map(|b| round(b.high_c)),
            next_change: tick
                .limits
                .and_then(|l| l.next_change())
                .map(|t| format_rfc3339(t, Precision::Seconds)),
        }
    }
}

/// The line for `kasa-thermostat status`:
/// `profile step 2/4 (ramp), now 19.7..20.7 °C, next step in 1d 3h`.
pub fn status_summary(status: &ProfileStatus, now: OffsetDateTime, units: Units) -> String {
    let band = match (status.low, status.high) {
        (Some(l), Some(h)) => format!("{l:.1}..{h:.1} {}", units.symbol()),
        _ => "plugs off".to_string(),
    };
    let next = status
        .next_change
        .as_deref()
        .and_then(|t| parse_instant(t).ok())
        .map(|t| remaining(now, t));
    match (status.phase.as_str(), status.step, next) {
        ("hold" | "ramp", Some(i), next) => {
            let mut s = format!(
                "profile step {}/{} ({}), ",
                i + 1,
                status.steps,
                status.phase
            );
            s.push_str(&if status.phase == "ramp" {
                format!("now {band}")
            } else {
                band
            });
            if let Some(n) = next {
                // After the last step comes the end, or (daily) the first step.
                let what = if i + 1 == status.steps {
                    "next change"
                } else {
                    "next step"
                };
                s.push_str(&format!(", {what} in {n}"));
            }
            s
        }
        ("waiting", _, Some(n)) => format!("profile waiting to start (in {n}), holding {band}"),
        ("ended", _, _) if status.low.is_some() => format!("profile ended, holding {band}"),
        ("ended", _, _) => "profile ended, both plugs off".to_string(),
        ("clock_not_set", _, _) => {
            format!("profile on hold until the clock is set, holding {band}")
        }
        (other, _, _) => format!("profile {other}, {band}"),
    }
}
