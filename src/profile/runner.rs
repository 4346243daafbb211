//! The profile as the service runs it: one [`ProfileRunner::tick`] per
//! control cycle gives the limits in force and the events to log, and does
//! the state file's I/O at the rare moments it is needed (a new start, a step
//! change, a ramp's checkpoint, a `profile restart` from the command line).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::definition::{AfterEnd, Profile};
use super::error::ProfileError;
use super::schedule::{limits_at, ProfilePhase, Scheduled};
use super::state::{
    checkpoint_due, clock_check, load_state, resume, save_state, Checkpoint, ClockVerdict,
    ProfileState, Resume,
};
use crate::clock::{format_rfc3339, local_string, Precision, Zone};
use crate::control::Band;
use crate::units::Units;

/// Something for the service to log; `ProfileEvent::level` says how loud.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileEvent {
    /// The profile began, resumed or started over (a changed profile).
    Started(Resume),
    /// A step began (or the profile is waiting for its start, or has ended).
    ProfilePhase {
        /// Text for the log: `step 2/4 began: ramp 2d ... (until ...)`.
        text: String,
    },
    /// The clock reads earlier than it can be: the profile is on hold.
    ClockDoubted {
        /// What the clock read.
        now: OffsetDateTime,
        /// What it should at least read.
        floor: OffsetDateTime,
        /// Where the floor comes from.
        why: &'static str,
        /// The limits held meanwhile, °C (`None`: plugs off).
        holding: Option<Band>,
        /// The units to log them in.
        units: Units,
    },
    /// The clock is believed again (after [`ProfileEvent::ClockDoubted`]).
    ClockBelieved,
    /// The kernel says the clock is synchronized but the state file was
    /// written at a later time: that clock ran ahead. The clock is believed.
    StateFromTheFuture {
        /// The state file's latest time.
        floor: OffsetDateTime,
    },
    /// `profile restart` wrote a new start; the runner follows it.
    RestartedByCommand {
        /// The new start.
        start: OffsetDateTime,
    },
    /// The state file changed under us but cannot be used; the runner keeps
    /// its own state and will write it again.
    StateIgnored {
        /// Why (the error chain).
        reason: String,
    },
    /// The state file could not be written (logged once until a write works).
    WriteFailed {
        /// The error chain, naming the path.
        reason: String,
    },
}

impl ProfileEvent {
    /// The log level the event deserves.
    pub fn level(&self) -> log::Level {
        match self {
            ProfileEvent::Started(Resume::Changed { .. })
            | ProfileEvent::ClockDoubted { .. }
            | ProfileEvent::StateFromTheFuture { .. }
            | ProfileEvent::StateIgnored { .. } => log::Level::Warn,
            ProfileEvent::WriteFailed { .. } => log::Level::Error,
            _ => log::Level::Info,
        }
    }
}

impl fmt::Display for ProfileEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileEvent::Started(r) => write!(f, "{r}"),
            ProfileEvent::ProfilePhase { text } => f.write_str(text),
            ProfileEvent::ClockDoubted {
                now,
                floor,
                why,
                holding,
                units,
            } => {
                write!(
                    f,
                    "the clock reads {}, earlier than {} ({why}): it is not set yet \
                     (no network time?); the profile is on hold, ",
                    format_rfc3339(*now, Precision::Seconds),
                    format_rfc3339(*floor, Precision::Seconds)
                )?;
                match holding {
                    Some(b) => write!(f, "holding {}", b.display(*units)),
                    None => f.write_str("plugs off"),
                }
            }
            ProfileEvent::ClockBelieved => f.write_str("the clock is set; the profile runs again"),
            ProfileEvent::StateFromTheFuture { floor } => write!(
                f,
                "the clock is synchronized but the profile state file was written at {}, later \
                 than now: that clock ran ahead; going by the synchronized clock",
                format_rfc3339(*floor, Precision::Seconds)
            ),
            ProfileEvent::RestartedByCommand { start } => write!(
                f,
                "profile restarted from the command line: step 1 begins {}",
                format_rfc3339(*start, Precision::Seconds)
            ),
            ProfileEvent::StateIgnored { reason } => write!(
                f,
                "the profile state file changed but is not usable, keeping the running profile: {reason}"
            ),
            ProfileEvent::WriteFailed { reason } => write!(
                f,
                "the profile's progress is not being saved (a restart would fall back to the \
                 last saved state): {reason}"
            ),
        }
    }
}

/// The result of one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The limits to control to, °C; `None` means both plugs off (the
    /// profile ended with `after_end: off`).
    pub band: Option<Band>,
    /// Where the profile is; `None` while the clock is doubted (then `band`
    /// is the last persisted one).
    pub limits: Option<Scheduled>,
    /// What to log, in order.
    pub events: Vec<ProfileEvent>,
}

/// Identity of the state file as last read or written: a change means
/// someone else (`profile restart`) wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// The running profile: owns its state and its state file.
#[derive(Debug)]
pub struct ProfileRunner {
    profile: Profile,
    path: PathBuf,
    zone: Zone,
    units: Units,
    /// The state file's content at start, until the clock is believed.
    stored: Option<ProfileState>,
    /// The running state, once resumed.
    state: Option<ProfileState>,
    stamp: Option<Stamp>,
    last: Option<Scheduled>,
    clock_doubted: bool,
    write_failing: bool,
}

impl ProfileRunner {
    /// Loads the state file (`profile_state_file`). A damaged one is an
    /// error naming it: starting the profile over silently could undo days
    /// of it (warm a cold-crashed beer again), so the service should refuse
    /// to start and let the user fix it or run `profile restart`.
    /// `units` only affects the texts of the events.
    pub fn new(
        profile: Profile,
        path: &Path,
        zone: Zone,
        units: Units,
    ) -> Result<ProfileRunner, ProfileError> {
        let stored = load_state(path)?;
        Ok(ProfileRunner {
            profile,
            path: path.to_path_buf(),
            zone,
            units,
            stored,
            state: None,
            stamp: stamp(path),
            last: None,
            clock_doubted: false,
            write_failing: false,
        })
    }

    /// The profile.
    pub(crate) fn profile(&self) -> &Profile {
        &self.profile
    }

    #[cfg(test)]
    /// The running state (`None` until the clock has been believed once).
    pub fn state(&self) -> Option<&ProfileState> {
        self.state.as_ref()
    }

    /// One control cycle at wall-clock time `now`. `kernel_synced` is
    /// [`super::kernel_clock_synced`] (passed in so that tests choose).
    pub fn tick(&mut self, now: OffsetDateTime, kernel_synced: Option<bool>) -> Tick {
        let mut events = Vec::new();
        if self.state.is_none() {
            match clock_check(now, self.stored.as_ref(), kernel_synced) {
                ClockVerdict::Implausible { floor, why } => {
                    let holding = self.held_band();
                    if !self.clock_doubted {
                        self.clock_doubted = true;
                        events.push(ProfileEvent::ClockDoubted {
                            now,
                            floor,
                            why,
                            holding,
                            units: self.units,
                        });
                    }
                    return Tick {
                        band: holding,
                        limits: None,
                        events,
                    };
                }
                ClockVerdict::SyncedBehindState { floor } => {
                    events.push(ProfileEvent::StateFromTheFuture { floor });
                }
                ClockVerdict::Plausible => {}
            }
            if self.clock_doubted {
                self.clock_doubted = false;
                events.push(ProfileEvent::ClockBelieved);
            }
            // A new start has no checkpoint yet, so it is written below,
            // together with its first checkpoint.
            let (state, decision) = resume(&self.profile, self.stored.take(), now);
            events.push(ProfileEvent::Started(decision));
            self.state = Some(state);
        } else {
            self.follow_the_file(&mut events);
        }
        let Some(before) = self.state.clone() else {
            // Not reached: the state was set above.
            return Tick {
                band: self.held_band(),
                limits: None,
                events,
            };
        };
        let limits = limits_at(&self.profile, before.start, now, &self.zone);
        if self.last.is_none_or(|l| !l.same_phase(&limits)) {
            events.push(ProfileEvent::ProfilePhase {
                text: phase_text(&self.profile, &limits, &self.zone, self.units),
            });
        }
        self.last = Some(limits);
        if checkpoint_due(&before, &limits) {
            let checkpoint = Checkpoint::of(&limits, now);
            self.state = Some(ProfileState {
                checkpoint: Some(checkpoint),
                saved_at: checkpoint.at,
                ..before.clone()
            });
            if !self.save(&mut events) {
                // Keep the old state so that the write is tried again.
                self.state = Some(before);
            }
        }
        Tick {
            band: limits.band,
            limits: Some(limits),
            events,
        }
    }

    /// The limits held while the clock is doubted: the last persisted ones
    /// of this profile, else (nothing persisted, or another profile's, which
    /// starts over anyway) the first step's.
    fn held_band(&self) -> Option<Band> {
        let hash = self.profile.hash();
        let ours = self.stored.as_ref().filter(|s| s.profile_hash == hash);
        match ours.and_then(|s| s.checkpoint) {
            Some(c) => c.band,
            None => Some(self.profile.steps()[0].from),
        }
    }

    /// Picks up a state file written by `profile restart`.
    fn follow_the_file(&mut self, events: &mut Vec<ProfileEvent>) {
        let now_stamp = stamp(&self.path);
        if now_stamp == self.stamp {
            return;
        }
        self.stamp = now_stamp;
        match load_state(&self.path) {
            Ok(Some(s)) if s.profile_hash == self.profile.hash() => {
                if self.state.as_ref().map(|cur| cur.start) != Some(s.start) {
                    events.push(ProfileEvent::RestartedByCommand { start: s.start });
                    self.last = None;
                }
                self.state = Some(s);
            }
            Ok(Some(s)) => events.push(ProfileEvent::StateIgnored {
                reason: format!(
                    "it is for another profile ({}, the config's is {})",
                    s.profile_hash,
                    self.profile.hash()
                ),
            }),
            // Deleted: written again at the next checkpoint.
            Ok(None) => {}
            Err(e) => events.push(ProfileEvent::StateIgnored {
                reason: crate::error::chain(&e),
            }),
        }
    }

    /// Writes the state; `false` (and one event per run of failures) if it
    /// could not be written.
    fn save(&mut self, events: &mut Vec<ProfileEvent>) -> bool {
        let Some(state) = self.state.as_ref() else {
            return false;
        };
        match save_state(&self.path, state) {
            Ok(()) => {
                self.write_failing = false;
                self.stamp = stamp(&self.path);
                true
            }
            Err(e) => {
                if !self.write_failing {
                    self.write_failing = true;
                    events.push(ProfileEvent::WriteFailed {
                        reason: crate::error::chain(&e),
                    });
                }
                false
            }
        }
    }
}

fn phase_text(profile: &Profile, limits: &Scheduled, zone: &Zone, units: Units) -> String {
    let n = profile.steps().len();
    match limits.phase {
        ProfilePhase::Waiting { starts } => format!(
            "profile waits for its start at {}, holding {}",
            local_string(zone, starts, true),
            profile.steps()[0].from.display(units)
        ),
        ProfilePhase::Step { index, ends, .. } => format!(
            "profile step {}/{n}: {} (until {})",
            index + 1,
            profile.steps()[index].describe(units),
            local_string(zone, ends, true)
        ),
        ProfilePhase::Ended { after_end, ended } => match after_end {
            AfterEnd::HoldLast => format!(
                "profile ended at {}, holding {}",
                local_string(zone, ended, true),
                profile.steps()[n - 1].to.display(units)
            ),
            AfterEnd::Off => format!(
                "profile ended at {}: both plugs off (after_end: off)",
                local_string(zone, ended, true)
            ),
        },
    }
}
