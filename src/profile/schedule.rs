//! The pure core: which limits are in force at a given wall-clock time.
//! No I/O, no clock of its own: the service passes the time, the persisted
//! start and the zone, and the tests pass whatever they like.

use std::time::Duration;

use time::{Date, OffsetDateTime};

use super::definition::{AfterEnd, Profile, Start, StepKind};
use super::wall::add_secs;
use crate::clock::Zone;
use crate::control::Band;

/// Where the profile is at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProfilePhase {
    /// A one-off profile whose start is still ahead (a later start in the
    /// config, or a clock that went back): the first step's limits are held.
    Waiting {
        /// When the first step begins.
        starts: OffsetDateTime,
    },
    /// Inside a step.
    Step {
        /// The step's index in `profile.steps` (0-based, as in the config's key paths).
        index: usize,
        /// Whether the limits are moving (a ramp).
        ramp: bool,
        /// When this step began.
        started: OffsetDateTime,
        /// When it ends and the next begins (in a daily profile, the next
        /// day's first step).
        ends: OffsetDateTime,
    },
    /// A one-off profile past its last step.
    Ended {
        /// What happens now: hold the last limits, or both plugs off.
        after_end: AfterEnd,
        /// When the last step ended.
        ended: OffsetDateTime,
    },
}

impl ProfilePhase {
    #[cfg(test)]
    /// The current step's index, if inside a step.
    pub(crate) fn index(&self) -> Option<usize> {
        match self {
            ProfilePhase::Step { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// What the schedule says at an instant, from [`limits_at`]: the limits in
/// force, where the profile is, and how long until the next change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scheduled {
    /// The limits to control to, °C; `None` when the profile has ended with
    /// `after_end: off`, meaning both plugs off.
    pub band: Option<Band>,
    /// Where the profile is.
    pub phase: ProfilePhase,
    /// The time until the next step begins (or the profile starts); `None`
    /// once it has ended.
    pub to_next: Option<Duration>,
}

impl Scheduled {
    /// When the limits next change their course (a step boundary or the
    /// start); `None` after the end.
    pub(crate) fn next_change(&self) -> Option<OffsetDateTime> {
        match self.phase {
            ProfilePhase::Waiting { starts } => Some(starts),
            ProfilePhase::Step { ends, .. } => Some(ends),
            ProfilePhase::Ended { .. } => None,
        }
    }

    /// The same phase (same step, or both waiting, or both ended), whatever
    /// the limits inside it: a change of this is a step change to log.
    pub(crate) fn same_phase(&self, other: &Scheduled) -> bool {
        match (self.phase, other.phase) {
            (ProfilePhase::Waiting { .. }, ProfilePhase::Waiting { .. }) => true,
            (
                ProfilePhase::Step {
                    index: a,
                    started: sa,
                    ..
                },
                ProfilePhase::Step {
                    index: b,
                    started: sb,
                    ..
                },
            ) => a == b && sa == sb,
            (ProfilePhase::Ended { .. }, ProfilePhase::Ended { .. }) => true,
            _ => false,
        }
    }
}

fn until(now: OffsetDateTime, then: OffsetDateTime) -> Duration {
    Duration::try_from(then - now).unwrap_or(Duration::ZERO)
}

/// The limits in force at `now` for `profile` started at `start` (the
/// persisted instant; ignored by a daily profile, which follows the local
/// clock in `zone`). Pure and total: every instant has an answer.
///
/// * One-off: the steps follow each other in real elapsed time from
///   `start`. Before `start`: [`ProfilePhase::Waiting`] with the first step's
///   limits. After the last step: [`ProfilePhase::Ended`], with the last limits
///   (`hold_last`) or none (`off`).
/// * Daily: step `k` begins each day at `start` + the lengths of the steps
///   before it, read on the local clock of `zone` (see `Zone::resolve` for
///   the DST rules). A step whose local start and end fall in the same
///   spring-forward gap lasts zero seconds that day and is skipped.
/// * Ramps interpolate linearly over the step's real length.
pub fn limits_at(
    profile: &Profile,
    start: OffsetDateTime,
    now: OffsetDateTime,
    zone: &Zone,
) -> Scheduled {
    match profile.start {
        Start::Daily(tod) => daily(profile, tod, now, zone),
        Start::Now | Start::At(_) => once(profile, start, now),
    }
}

fn in_step(
    profile: &Profile,
    index: usize,
    started: OffsetDateTime,
    ends: OffsetDateTime,
    now: OffsetDateTime,
) -> Scheduled {
    let step = &profile.steps[index];
    let band = match step.kind {
        StepKind::Hold => step.to,
        StepKind::Ramp => {
            let len = (ends - started).as_seconds_f64();
            let frac = if len > 0.0 {
                (now - started).as_seconds_f64() / len
            } else {
                1.0
            };
            step.from.lerp(step.to, frac)
        }
    };
    Scheduled {
        band: Some(band),
        phase: ProfilePhase::Step {
            index,
            ramp: step.kind == StepKind::Ramp,
            started,
            ends,
        },
        to_next: Some(until(now, ends)),
    }
}

fn once(profile: &Profile, start: OffsetDateTime, now: OffsetDateTime) -> Scheduled {
    let b = one_off_bounds(profile, start);
    if now < start {
        return Scheduled {
            band: Some(profile.steps[0].from),
            phase: ProfilePhase::Waiting { starts: start },
            to_next: Some(until(now, start)),
        };
    }
    if let Some(i) = (0..profile.steps.len()).find(|&i| now < b[i + 1]) {
        return in_step(profile, i, b[i], b[i + 1], now);
    }
    let last = profile.steps[profile.steps.len() - 1].to;
    Scheduled {
        band: match profile.after_end {
            AfterEnd::HoldLast => Some(last),
            AfterEnd::Off => None,
        },
        phase: ProfilePhase::Ended {
            after_end: profile.after_end,
            ended: b[profile.steps.len()],
        },
        to_next: None,
    }
}

fn daily(profile: &Profile, tod: u32, now: OffsetDateTime, zone: &Zone) -> Scheduled {
    let b = daily_cycle(profile, tod, now, zone);
    match (0..profile.steps.len()).find(|&i| b[i] <= now && now < b[i + 1]) {
        Some(i) => in_step(profile, i, b[i], b[i + 1], now),
        // Unreachable: the cycles of consecutive days tile the time line.
        // Holding the first step is a defined answer all the same.
        None => in_step(profile, 0, now, add_secs(now, profile.steps[0].secs), now),
    }
}

/// The instants at which the steps of a one-off profile begin, and its end.
fn one_off_bounds(profile: &Profile, start: OffsetDateTime) -> Vec<OffsetDateTime> {
    let mut out = Vec::with_capacity(profile.steps.len() + 1);
    let mut t = start;
    out.push(t);
    for s in &profile.steps {
        t = add_secs(t, s.secs);
        out.push(t);
    }
    out
}

/// The instants at which the steps of a daily profile begin in the cycle
/// that starts on the local date `date`, and the next cycle's start.
fn daily_bounds(profile: &Profile, tod: u32, date: Date, zone: &Zone) -> Vec<OffsetDateTime> {
    let mut out = Vec::with_capacity(profile.steps.len() + 1);
    let mut secs = i64::from(tod);
    out.push(zone.resolve(date, secs));
    for s in &profile.steps {
        secs += s.secs as i64;
        out.push(zone.resolve(date, secs));
    }
    out
}

/// The bounds of the daily cycle that contains `now`: it began on the local
/// date of now or the day before (before today's start time); a day either
/// side is tried as well so that no offset change leaves an instant out.
fn daily_cycle(
    profile: &Profile,
    tod: u32,
    now: OffsetDateTime,
    zone: &Zone,
) -> Vec<OffsetDateTime> {
    let today = zone.to_local(now).date();
    let days = [
        today.previous_day(),
        Some(today),
        today.next_day(),
        today.previous_day().and_then(|d| d.previous_day()),
    ];
    let n = profile.steps.len();
    for date in days.into_iter().flatten() {
        let b = daily_bounds(profile, tod, date, zone);
        if b[0] <= now && now < b[n] {
            return b;
        }
    }
    daily_bounds(profile, tod, today, zone)
}

/// The instants at which the steps begin, and the last one's end: from
/// `start` for a one-off profile, the cycle containing `now` for a daily one.
pub(crate) fn step_bounds(
    profile: &Profile,
    start: OffsetDateTime,
    now: OffsetDateTime,
    zone: &Zone,
) -> Vec<OffsetDateTime> {
    match profile.start {
        Start::Daily(tod) => daily_cycle(profile, tod, now, zone),
        Start::Now | Start::At(_) => one_off_bounds(profile, start),
    }
}
