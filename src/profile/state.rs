//! The profile's persistent state (`profile_state_file`, default
//! `/var/lib/kasa-thermostat/profile.json`): when the running profile
//! started and which profile it was, so that a restart, a power cut or a
//! reboot resumes mid-step and an edited profile starts over. Also the last
//! limits in force (a checkpoint), held while the clock cannot be believed.
//!
//! It is written atomically (temp file, fsync, rename, fsync of the
//! directory) and only when something in it changes: at a new start, at a
//! step change, and while a ramp moves by [`CHECKPOINT_STEP_C`] — never every
//! cycle, to spare the SD card.
//!
//! ```json
//! {"version":1,"start":"2026-11-28T21:17:22Z","profile_hash":"fnv1a64:3f0c...",
//!  "saved_at":"2026-11-30T09:00:00Z",
//!  "checkpoint":{"at":"2026-11-30T09:00:00Z","step":1,"low_c":18.75,"high_c":19.75}}
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::definition::{Profile, Start};
use super::error::ProfileError;
use super::schedule::{ProfilePhase, Scheduled};
use super::wall::parse_instant;
use crate::clock::{format_rfc3339, Precision};
use crate::control::Band;

/// A state file larger than this is not ours (ours is a few hundred bytes).
pub const STATE_FILE_MAX_BYTES: u64 = 64 * 1024;

/// A checkpoint is written when either limit has moved this far (°C) since
/// the last one: a ramp of 16 °C writes 64 times, a hold once.
pub const CHECKPOINT_STEP_C: f64 = 0.25;

/// No real clock reads earlier than this: a time before it is a Pi that
/// booted without a real-time clock and without network time (1970, or the
/// image's build date). A fixed date rather than the build time, so that
/// builds are reproducible; move it forward now and then.
pub const CLOCK_FLOOR: OffsetDateTime = time::macros::datetime!(2026-01-01 00:00 UTC);

/// A clock may step back this far (an NTP correction) without being doubted.
const CLOCK_SLACK_S: i64 = 300;

/// The persisted state of the running profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileState {
    /// When the profile's first step began (or begins), whole seconds.
    pub start: OffsetDateTime,
    /// `Profile::hash` of the profile this start belongs to.
    pub profile_hash: String,
    /// When this file was last written: a time the clock has certainly
    /// passed (see [`clock_check`]).
    pub saved_at: OffsetDateTime,
    /// The last limits in force, for a boot with a clock not yet believed.
    pub checkpoint: Option<Checkpoint>,
}

/// The limits in force at a moment, as persisted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Checkpoint {
    /// When they were in force.
    pub at: OffsetDateTime,
    /// The step (`None` while waiting for the start or after the end).
    pub step: Option<usize>,
    /// The limits, °C; `None` for "both plugs off" (ended with `off`).
    pub band: Option<Band>,
}

impl Checkpoint {
    /// The checkpoint of `limits` at `now`.
    pub(crate) fn of(limits: &Scheduled, now: OffsetDateTime) -> Checkpoint {
        Checkpoint {
            at: whole_seconds(now),
            step: match limits.phase {
                ProfilePhase::Step { index, .. } => Some(index),
                _ => None,
            },
            band: limits.band,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    start: String,
    profile_hash: String,
    saved_at: String,
    #[serde(default)]
    checkpoint: Option<CheckpointFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    at: String,
    step: Option<usize>,
    low_c: Option<f64>,
    high_c: Option<f64>,
}

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn damaged(path: &Path, reason: String) -> ProfileError {
    ProfileError::StateDamaged {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses a state file's text. `Err` carries the reason, without the path.
fn parse_state(text: &str) -> Result<ProfileState, String> {
    let f: StateFile = serde_json::from_str(text)
        .map_err(|e| format!("not a kasa-thermostat profile state: {e}"))?;
    if f.version != 1 {
        return Err(format!(
            "version {} is not the version 1 this program writes",
            f.version
        ));
    }
    let time = |key: &str, v: &str| parse_instant(v).map_err(|e| format!("`{key}`: {e}"));
    if !f.profile_hash.starts_with("fnv1a64:") {
        return Err(format!(
            "`profile_hash` {:?} is not one this program writes",
            f.profile_hash
        ));
    }
    let checkpoint = match f.checkpoint {
        None => None,
        Some(c) => {
            let band = match (c.low_c, c.high_c) {
                (None, None) => None,
                (Some(l), Some(h)) if l.is_finite() && h.is_finite() && l < h => Some(Band {
                    low_c: l,
                    high_c: h,
                }),
                _ => {
                    return Err(
                        "`checkpoint` has limits that are not a low below a high".to_string()
                    )
                }
            };
            Some(Checkpoint {
                at: time("checkpoint.at", &c.at)?,
                step: c.step,
                band,
            })
        }
    };
    Ok(ProfileState {
        start: time("start", &f.start)?,
        profile_hash: f.profile_hash,
        saved_at: time("saved_at", &f.saved_at)?,
        checkpoint,
    })
}

fn state_text(state: &ProfileState) -> String {
    let f = StateFile {
        version: 1,
        start: format_rfc3339(state.start, Precision::Seconds),
        profile_hash: state.profile_hash.clone(),
        saved_at: format_rfc3339(state.saved_at, Precision::Seconds),
        checkpoint: state.checkpoint.map(|c| CheckpointFile {
            at: format_rfc3339(c.at, Precision::Seconds),
            step: c.step,
            low_c: c.band.map(|b| b.low_c),
            high_c: c.band.map(|b| b.high_c),
        }),
    };
    // Serializing plain strings and numbers cannot fail.
    let mut text = serde_json::to_string(&f).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads the state file. A missing file is `Ok(None)` (a first run); a file
/// that is not a regular file (a FIFO, a device), is larger than
/// [`STATE_FILE_MAX_BYTES`], or is not a state file this program wrote is
/// [`ProfileError::StateDamaged`], naming the path.
pub fn load_state(path: &Path) -> Result<Option<ProfileState>, ProfileError> {
    // O_NONBLOCK so that opening a FIFO does not wait for a writer; the
    // file type is checked on the opened descriptor, not on the name.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ProfileError::StateIo {
                path: path.to_path_buf(),
                action: "open",
                source,
            })
        }
    };
    let io = |action: &'static str| {
        move |source| ProfileError::StateIo {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let meta = file.metadata().map_err(io("inspect"))?;
    if !meta.is_file() {
        return Err(damaged(path, "it is not a regular file".to_string()));
    }
    if meta.len() > STATE_FILE_MAX_BYTES {
        return Err(damaged(
            path,
            format!(
                "{} bytes, more than the {STATE_FILE_MAX_BYTES} a state file can be",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(STATE_FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("read"))?;
    let text = String::from_utf8(bytes).map_err(|_| damaged(path, "it is not text".to_string()))?;
    parse_state(&text)
        .map(Some)
        .map_err(|reason| damaged(path, reason))
}

/// Writes the state file atomically: a temp file in the same directory,
/// fsync, rename over the old one, fsync of the directory, so that a power
/// cut leaves either the old file or the new one. Creates the directory.
pub fn save_state(path: &Path, state: &ProfileState) -> Result<(), ProfileError> {
    let err = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ProfileError::StateIo {
            path: p,
            action,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(err("create the directory of", path))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profile.json".to_string());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(err("create a temporary file for", path))?;
        f.write_all(state_text(state).as_bytes())
            .map_err(err("write", path))?;
        f.sync_all().map_err(err("sync", path))?;
        fs::rename(&tmp, path).map_err(err("rename a temporary file onto", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(err("sync the directory of", path))
}

/// What [`resume`] decided, for the service to log.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// No state file: the profile begins (at `start`).
    New {
        /// When its first step begins.
        start: OffsetDateTime,
    },
    /// The same profile as before: it carries on from its stored start.
    Resumed {
        /// The stored start.
        start: OffsetDateTime,
    },
    /// The config's profile is not the one that was running: it starts over.
    Changed {
        /// The new start.
        start: OffsetDateTime,
        /// The hash of the profile that was running.
        old_hash: String,
        /// The hash of the config's profile.
        new_hash: String,
    },
}

impl Resume {
    #[cfg(test)]
    /// Whether the state must be written (a new start).
    pub(crate) fn needs_save(&self) -> bool {
        !matches!(self, Resume::Resumed { .. })
    }
}

impl std::fmt::Display for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resume::New { start } => write!(f, "profile begins, start {}", format_rfc3339(*start, Precision::Seconds)),
            Resume::Resumed { start } => {
                write!(f, "profile resumed, started {}", format_rfc3339(*start, Precision::Seconds))
            }
            Resume::Changed { start, old_hash, new_hash } => write!(
                f,
                "profile changed in the config ({old_hash} -> {new_hash}): it starts over, start {}",
                format_rfc3339(*start, Precision::Seconds)
            ),
        }
    }
}

fn fresh_start(profile: &Profile, now: OffsetDateTime) -> OffsetDateTime {
    match profile.start() {
        Start::At(t) => t,
        // A daily profile follows the clock; its stored start is only the
        // moment it was first seen.
        Start::Now | Start::Daily(_) => whole_seconds(now),
    }
}

/// Decides at service start (with a believable clock) whether the profile
/// resumes (same hash as stored), begins (nothing stored) or starts over
/// (another profile was running), and returns the state to use. Write it
/// with [`save_state`] when `Resume::needs_save`.
pub fn resume(
    profile: &Profile,
    stored: Option<ProfileState>,
    now: OffsetDateTime,
) -> (ProfileState, Resume) {
    let hash = profile.hash();
    let fresh = |now| ProfileState {
        start: fresh_start(profile, now),
        profile_hash: hash.clone(),
        saved_at: whole_seconds(now),
        checkpoint: None,
    };
    match stored {
        Some(s) if s.profile_hash == hash => {
            let start = s.start;
            (s, Resume::Resumed { start })
        }
        Some(s) => {
            let state = fresh(now);
            let decision = Resume::Changed {
                start: state.start,
                old_hash: s.profile_hash,
                new_hash: hash.clone(),
            };
            (state, decision)
        }
        None => {
            let state = fresh(now);
            let start = state.start;
            (state, Resume::New { start })
        }
    }
}

/// The state for `profile restart`: the profile starts over now (also one
/// with a fixed `start` in the config: the command says start over). A daily
/// profile has nothing to restart.
pub fn restart(profile: &Profile, now: OffsetDateTime) -> Result<ProfileState, ProfileError> {
    if profile.is_daily() {
        return Err(ProfileError::DailyHasNoRestart);
    }
    Ok(ProfileState {
        start: whole_seconds(now),
        profile_hash: profile.hash(),
        saved_at: whole_seconds(now),
        checkpoint: None,
    })
}

/// `kasa-thermostat profile restart --config F`: writes a fresh state to
/// `path` (over a damaged one too: this is the way out of a damaged file).
/// A running service sees the new file within a cycle (see
/// `super::ProfileRunner::tick`). Returns the line to print.
pub fn restart_command(
    profile: &Profile,
    path: &Path,
    now: OffsetDateTime,
) -> Result<String, ProfileError> {
    let state = restart(profile, now)?;
    save_state(path, &state)?;
    Ok(format!(
        "profile restarted: step 1 begins {} (written to {})",
        format_rfc3339(state.start, Precision::Seconds),
        path.display()
    ))
}

/// Skips to the start of the profile's next step: the start is moved back
/// so that the next step begins now, written to `path` like `profile
/// restart` (a running service follows within a cycle). Before the first
/// step, the first step begins now. Returns the line to print.
pub fn skip_command(
    profile: &Profile,
    path: &Path,
    now: OffsetDateTime,
) -> Result<String, ProfileError> {
    let nothing = |why: &str| ProfileError::Invalid {
        key: "profile".into(),
        message: format!("nothing to skip to: {why}"),
    };
    if profile.is_daily() {
        return Err(nothing("a daily profile follows the clock"));
    }
    let now = whole_seconds(now);
    let start = match load_state(path)? {
        Some(s) if s.profile_hash == profile.hash() => s.start,
        _ => {
            return Err(nothing(
                "the profile has not started yet (or its state file is of another profile)",
            ))
        }
    };
    let elapsed = (now - start).whole_seconds();
    let steps = profile.steps();
    let mut boundary = 0i64;
    let mut next = None;
    for (i, step) in steps.iter().enumerate() {
        if boundary > elapsed {
            next = Some((i, boundary));
            break;
        }
        boundary += step.secs as i64;
    }
    let Some((index, offset)) = next else {
        return Err(nothing("it is in its last step or has ended"));
    };
    let state = ProfileState {
        start: now - time::Duration::seconds(offset),
        profile_hash: profile.hash(),
        saved_at: now,
        checkpoint: None,
    };
    save_state(path, &state)?;
    Ok(format!(
        "profile: skipped to step {} of {} (written to {})",
        index + 1,
        steps.len(),
        path.display()
    ))
}

/// Whether a new checkpoint is due: none yet, another step (or waiting /
/// ended), plugs off vs. limits, or a limit moved by [`CHECKPOINT_STEP_C`].
pub fn checkpoint_due(state: &ProfileState, limits: &Scheduled) -> bool {
    let Some(c) = state.checkpoint else {
        return true;
    };
    let step = match limits.phase {
        ProfilePhase::Step { index, .. } => Some(index),
        _ => None,
    };
    if c.step != step {
        return true;
    }
    match (c.band, limits.band) {
        (Some(a), Some(b)) => {
            (a.low_c - b.low_c).abs() >= CHECKPOINT_STEP_C
                || (a.high_c - b.high_c).abs() >= CHECKPOINT_STEP_C
        }
        (None, None) => false,
        _ => true,
    }
}

/// What [`clock_check`] concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum ClockVerdict {
    /// The clock can be believed.
    Plausible,
    /// The kernel says the clock is synchronized (NTP), but it reads earlier
    /// than the state file's last write: that file was written by a clock
    /// that ran ahead. Believe the clock, and say so in the log.
    SyncedBehindState {
        /// The latest time in the state file.
        floor: OffsetDateTime,
    },
    /// The clock reads earlier than a time it has certainly passed: hold the
    /// last persisted limits until it is set, and say so in the log.
    Implausible {
        /// The time it should at least read.
        floor: OffsetDateTime,
        /// Which floor: `this program's release` or `the profile state file`.
        why: &'static str,
    },
}

/// Whether the wall clock `now` can be believed. A Pi has no real-time clock:
/// until network time is set it boots at 1970, the image's date or the last
/// saved time, so a time earlier than [`CLOCK_FLOOR`] or than the state
/// file's latest time (`saved_at`, the checkpoint; 5 minutes of slack for an
/// NTP correction) is a clock not yet set. `kernel_synced`
/// ([`kernel_clock_synced`]) `Some(true)` overrides the state file's floor.
///
/// What the service should do with [`ClockVerdict::Implausible`]: hold the
/// checkpoint's limits (or, without one, the first step's), log a warning
/// once with the floor, and check again each cycle. It does not start a
/// profile, so a `"now"` start is never taken from a wrong clock. The
/// systemd unit also orders the service after `time-sync.target` (with
/// `systemd-time-wait-sync.service` enabled it waits for the first sync).
pub fn clock_check(
    now: OffsetDateTime,
    stored: Option<&ProfileState>,
    kernel_synced: Option<bool>,
) -> ClockVerdict {
    if now < CLOCK_FLOOR {
        return ClockVerdict::Implausible {
            floor: CLOCK_FLOOR,
            why: "this program's release",
        };
    }
    let Some(s) = stored else {
        return ClockVerdict::Plausible;
    };
    let floor = s
        .checkpoint
        .map(|c| c.at.max(s.saved_at))
        .unwrap_or(s.saved_at);
    let slack = time::Duration::seconds(CLOCK_SLACK_S);
    if now >= floor.checked_sub(slack).unwrap_or(floor) {
        ClockVerdict::Plausible
    } else if kernel_synced == Some(true) {
        ClockVerdict::SyncedBehindState { floor }
    } else {
        ClockVerdict::Implausible {
            floor,
            why: "the profile state file",
        }
    }
}

/// Whether the kernel considers the system clock synchronized (an NTP
/// client such as systemd-timesyncd or chrony has set it and keeps it):
/// `adjtimex` in read-only mode, which needs no privilege. `None` if the
/// call fails.
pub fn kernel_clock_synced() -> Option<bool> {
    // SAFETY: `timex` is plain data for which all-zero is valid; modes = 0
    // makes adjtimex only read the kernel's state into it.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an initialised timex that lives across the call.
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc < 0 {
        return None;
    }
    Some(rc != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
}

#[cfg(test)]
pub(super) fn parse_state_for_test(text: &str) -> Result<ProfileState, String> {
    parse_state(text)
}

#[cfg(test)]
mod skip_tests {
    use super::*;
    use crate::units::Units;

    fn profile() -> Profile {
        let raw: crate::profile::definition::RawProfile = serde_json::from_str(
            r#"{"steps": [{"hold": "1h", "low": 18, "high": 19},
                          {"hold": "2h", "low": 19, "high": 20},
                          {"hold": "3h", "low": 20, "high": 21}]}"#,
        )
        .unwrap();
        Profile::from_raw(&raw, Units::C).unwrap()
    }

    #[test]
    fn skip_moves_the_start_so_the_next_step_begins_now_until_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let p = profile();
        let t0 = time::macros::datetime!(2026-12-01 12:00 UTC);
        let err = skip_command(&p, &path, t0).unwrap_err();
        assert!(err.to_string().contains("has not started yet"), "{err}");
        restart_command(&p, &path, t0).unwrap();
        let now = t0 + time::Duration::minutes(10);
        let line = skip_command(&p, &path, now).unwrap();
        assert!(
            line.starts_with("profile: skipped to step 2 of 3"),
            "{line}"
        );
        let start = load_state(&path).unwrap().unwrap().start;
        assert_eq!(start, now - time::Duration::hours(1));
        let line = skip_command(&p, &path, now).unwrap();
        assert!(
            line.starts_with("profile: skipped to step 3 of 3"),
            "{line}"
        );
        assert_eq!(
            load_state(&path).unwrap().unwrap().start,
            now - time::Duration::hours(3)
        );
        let err = skip_command(&p, &path, now).unwrap_err();
        assert!(err.to_string().contains("last step"), "{err}");
    }
}
