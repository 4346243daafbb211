//! One plug as the controller sees it: an explicit state machine.
//!
//! Two things are tracked separately, because they change separately:
//!
//! * **what is known of the relay** ([`PlugState`]: verified on, verified
//!   off, or unknown). Unknown is where every plug starts, and where a switch
//!   that may have reached the plug but was not verified leaves it. Unknown
//!   counts as on for the interlock and for safety.
//! * **what is under way** ([`Phase`]): nothing, the first read at start, a
//!   read, or a switch.
//!
//! The dead-man rule on the plug has its own small machine ([`Deadman`]).

use std::time::{Duration, Instant};

use crate::msg::{DeadmanKind, PlugState};

/// The settings of one plug, in the units the controller works in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlugSettings {
    /// `host:port`, for messages.
    pub address: String,
    /// Shortest on period.
    pub min_on: Duration,
    /// Shortest off period.
    pub min_off: Duration,
    /// Dead-man countdown; `None` disables it.
    pub deadman: Option<Duration>,
    /// State while the sensor has failed.
    pub fault_state: bool,
    /// State the service leaves the plug in.
    pub shutdown_state: bool,
}

/// What the controller is waiting for from the plug's worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// The first read at start is under way: no decision until it is back.
    Starting,
    /// Nothing under way.
    Idle,
    /// A read is under way since this time.
    Reading(Instant),
    /// A switch to `to` is under way since `since`.
    Switching {
        /// The state asked for.
        to: bool,
        /// When it was sent.
        since: Instant,
    },
}

impl Phase {
    /// `starting`, `idle`, `reading` or `switching`, for the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Idle => "idle",
            Phase::Reading(_) => "reading",
            Phase::Switching { .. } => "switching",
        }
    }
}

/// The dead-man rule on the plug, as far as the controller knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Deadman {
    /// Not known (at start, or after a failed operation).
    Unknown,
    /// No rule.
    Clear,
    /// Armed: `sent` is when the command that armed it started (re-arming
    /// counts from there, so it is early rather than late), `done` when it
    /// was acknowledged (the latest the rule can fire is `done + delay`).
    Armed {
        /// When the arming command was sent.
        sent: Instant,
        /// When its outcome came back.
        done: Instant,
        /// What the device carries.
        kind: DeadmanKind,
    },
    /// The plug refuses dead-man rules: nothing switches it off if the Pi dies.
    Unsupported,
}

/// One plug.
#[derive(Debug)]
pub(crate) struct Plug {
    /// Its settings.
    pub settings: PlugSettings,
    /// What is known of the relay.
    pub state: PlugState,
    /// Whether the state has ever been known (a first read that finds the
    /// plug off is not an "off after on" for the switchover delay).
    pub ever_known: bool,
    /// When the known state last changed (or was first learned).
    pub since: Option<Instant>,
    /// When it was last verified off after it may have been on.
    pub off_after_on: Option<Instant>,
    /// A switch-on went out and was never verified: the device may still
    /// carry it out (a lagging relay), so a read that shows off proves
    /// nothing; only a verified switch-off does.
    pub unverified_on: bool,
    /// What is under way.
    pub phase: Phase,
    /// The thermostat demand with hysteresis.
    pub demand: Option<bool>,
    /// What the rules settled on in the last cycle.
    pub desired: Option<bool>,
    /// The dead-man rule.
    pub deadman: Deadman,
    /// A dead-man operation under way since.
    pub deadman_op: Option<Instant>,
    /// The last dead-man arm tried while it was unsupported (retried only at reconcile).
    pub deadman_retry: Option<Instant>,
    /// The last successful switch, for rate limiting.
    pub last_success: Option<(bool, Instant)>,
    /// The last read sent (for the reconcile period).
    pub last_read: Option<Instant>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// Consecutive failed commands (for `plug_failing`).
    pub failures: u32,
}

impl Plug {
    /// A plug that has not been read yet.
    pub fn new(settings: PlugSettings) -> Plug {
        Plug {
            settings,
            state: PlugState::Unknown,
            ever_known: false,
            since: None,
            off_after_on: None,
            unverified_on: false,
            phase: Phase::Idle,
            demand: None,
            desired: None,
            deadman: Deadman::Unknown,
            deadman_op: None,
            deadman_retry: None,
            last_success: None,
            last_read: None,
            last_error: None,
            failures: 0,
        }
    }

    /// Records what a command found: a verified or read state, or unknown.
    pub(crate) fn learn(&mut self, state: PlugState, now: Instant) {
        if state == PlugState::Off && self.ever_known && self.state.possibly_on() {
            self.off_after_on = Some(now);
        }
        if state != self.state {
            self.since = Some(now);
        }
        if state != PlugState::Unknown {
            self.ever_known = true;
        }
        self.state = state;
    }

    /// How long it has been in its current known state.
    pub(crate) fn state_for(&self, now: Instant) -> Option<Duration> {
        match self.state {
            PlugState::Unknown => None,
            _ => self.since.map(|s| now.saturating_duration_since(s)),
        }
    }

    /// Whether the relay may be closed: known on, unknown, a switch-on
    /// under way, or a switch-on that went out unverified and has not been
    /// countered by a verified switch-off.
    pub(crate) fn maybe_on(&self) -> bool {
        self.state.possibly_on()
            || self.unverified_on
            || matches!(self.phase, Phase::Switching { to: true, .. })
    }

    /// The switch under way, if any.
    pub(crate) fn switching(&self) -> Option<bool> {
        match self.phase {
            Phase::Switching { to, .. } => Some(to),
            _ => None,
        }
    }
}
