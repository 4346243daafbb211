//! Between the control thread and a plug worker: [`PlugCommand`] goes to the
//! worker, [`PlugOutcome`] comes back.
//!
//! The one rule these types carry is that **unknown is not off**: after a
//! switch that may have reached the plug and was not verified, the plug's
//! state is [`PlugState::Unknown`], which counts as on for the interlock and
//! every safety decision until a read says otherwise.

use std::fmt;
use std::time::Duration;

use super::role::Role;

/// What is known about a plug's relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlugState {
    /// Read back on.
    On,
    /// Read back off.
    Off,
    /// A switch may have reached the plug and was not verified, or nothing
    /// has been read yet: it may be on.
    Unknown,
}

impl PlugState {
    /// The state read from a relay.
    pub fn from_on(on: bool) -> PlugState {
        if on {
            PlugState::On
        } else {
            PlugState::Off
        }
    }

    /// The state named `on`, `off` or `unknown` (as in the data log).
    pub fn parse(s: &str) -> Option<PlugState> {
        match s {
            "on" => Some(PlugState::On),
            "off" => Some(PlugState::Off),
            "unknown" => Some(PlugState::Unknown),
            _ => None,
        }
    }

    /// `on`, `off` or `unknown`, as in the state file and the data log.
    pub fn as_str(self) -> &'static str {
        match self {
            PlugState::On => "on",
            PlugState::Off => "off",
            PlugState::Unknown => "unknown",
        }
    }

    /// Whether the relay may be closed: on, or unknown.
    pub fn possibly_on(self) -> bool {
        self != PlugState::Off
    }

    /// The verified relay state, `None` when unknown.
    pub fn known(self) -> Option<bool> {
        match self {
            PlugState::On => Some(true),
            PlugState::Off => Some(false),
            PlugState::Unknown => None,
        }
    }
}

impl fmt::Display for PlugState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the control thread asks of a plug.
#[derive(Debug, Clone, PartialEq)]
pub enum PlugCommand {
    /// Switch and verify by reading back. With `deadman`, a switch-on first
    /// puts a dead-man of that length on the plug, so that an on which is
    /// never verified is still bounded; a verified switch-off then removes it.
    Set {
        /// The state wanted.
        on: bool,
        /// The plug's dead-man delay, `None` when it has none.
        deadman: Option<Duration>,
    },
    /// Read the real state.
    Read,
    /// Re-arm the dead-man of a plug that is on: it switches itself off after
    /// `delay` unless armed again.
    ArmDeadman {
        /// Time until the plug switches itself off.
        delay: Duration,
    },
    /// Remove the dead-man.
    ClearDeadman,
}

impl PlugCommand {
    /// Switch on, with the dead-man armed first when `deadman` is given.
    pub fn on(deadman: Option<Duration>) -> PlugCommand {
        PlugCommand::Set { on: true, deadman }
    }

    /// Switch off, and remove the dead-man after the verified off when
    /// `deadman` is given.
    pub fn off(deadman: Option<Duration>) -> PlugCommand {
        PlugCommand::Set { on: false, deadman }
    }

    /// The short name of the action, as in `plug-events.jsonl`.
    pub fn action(&self) -> &'static str {
        match self {
            PlugCommand::Set { on: true, .. } => "on",
            PlugCommand::Set { on: false, .. } => "off",
            PlugCommand::Read => "read",
            PlugCommand::ArmDeadman { .. } => "arm_deadman",
            PlugCommand::ClearDeadman => "clear_deadman",
        }
    }

    /// The wanted state of a `Set`.
    pub fn set_to(&self) -> Option<bool> {
        match self {
            PlugCommand::Set { on, .. } => Some(*on),
            _ => None,
        }
    }
}

impl fmt::Display for PlugCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlugCommand::Set { on: true, .. } => f.write_str("switch on"),
            PlugCommand::Set { on: false, .. } => f.write_str("switch off"),
            PlugCommand::Read => f.write_str("read state"),
            PlugCommand::ArmDeadman { delay } => {
                write!(f, "arm dead-man ({} s)", deadman_secs(*delay))
            }
            PlugCommand::ClearDeadman => f.write_str("clear dead-man"),
        }
    }
}

/// A dead-man delay in whole seconds as a plug takes it: rounded up, at least 1.
pub fn deadman_secs(delay: Duration) -> u32 {
    let secs = delay.as_secs_f64().ceil();
    if secs >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        (secs as u32).max(1)
    }
}

/// What kind of dead-man a device carries once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadmanKind {
    /// A countdown rule: the relay opens `secs` after arming, unless re-armed.
    Countdown {
        /// Seconds from arming to switch-off.
        secs: u32,
    },
    /// The device's auto-off: the relay opens `minutes` after each switch-on.
    /// It cannot be extended while the plug stays on.
    AutoOff {
        /// Minutes from switch-on to switch-off.
        minutes: u32,
    },
}

impl DeadmanKind {
    /// How long after arming (or switching on) the plug switches itself off.
    pub fn delay(self) -> Duration {
        match self {
            DeadmanKind::Countdown { secs } => Duration::from_secs(u64::from(secs)),
            DeadmanKind::AutoOff { minutes } => Duration::from_secs(u64::from(minutes) * 60),
        }
    }
}

impl fmt::Display for DeadmanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadmanKind::Countdown { secs } => write!(f, "countdown {secs} s"),
            DeadmanKind::AutoOff { minutes } => write!(f, "auto-off {minutes} min"),
        }
    }
}

/// What a command did to the plug's dead-man.
#[derive(Debug, Clone, PartialEq)]
pub enum DeadmanReport {
    /// Armed (or re-armed) at the start of the command.
    Armed(DeadmanKind),
    /// Removed.
    Cleared,
    /// The plug refuses dead-man rules (for example `-1 module not support`):
    /// nothing switches it off if the Pi dies.
    Unsupported(String),
    /// Arming or clearing failed; the rule on the plug is not known.
    Failed(String),
}

impl DeadmanReport {
    /// `armed`, `cleared`, `unsupported` or `failed`, as in `plug-events.jsonl`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeadmanReport::Armed(_) => "armed",
            DeadmanReport::Cleared => "cleared",
            DeadmanReport::Unsupported(_) => "unsupported",
            DeadmanReport::Failed(_) => "failed",
        }
    }
}

/// The class of a failure, for the logs, `plug-events.jsonl` and `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// The connection was refused.
    Refused,
    /// No route, host down, network unreachable.
    Unreachable,
    /// The plug closed the connection before answering.
    Closed,
    /// The reply cannot be used (not JSON, wrong shape, bad frame or signature).
    BadReply,
    /// The plug answered with an error code.
    DeviceError,
    /// The read-back state is not the one asked for.
    Mismatch,
    /// The plug refused the credentials.
    Auth,
    /// The plug does not do what was asked (`module not support`).
    Unsupported,
    /// The device has no relay this service can switch (a bulb, a sensor).
    NoRelay,
    /// The strip has no such outlet.
    NoSuchOutlet,
    /// Another socket error.
    Io,
    /// The host name does not resolve.
    Resolve,
    /// The command's time budget (shutdown) ran out before it could finish.
    OutOfTime,
}

impl FailureKind {
    /// The name in `plug-events.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Refused => "refused",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Closed => "closed",
            FailureKind::BadReply => "bad_reply",
            FailureKind::DeviceError => "device_error",
            FailureKind::Mismatch => "mismatch",
            FailureKind::Auth => "auth",
            FailureKind::Unsupported => "unsupported",
            FailureKind::NoRelay => "no_relay",
            FailureKind::NoSuchOutlet => "no_such_outlet",
            FailureKind::Io => "io",
            FailureKind::Resolve => "resolve",
            FailureKind::OutOfTime => "out_of_time",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a command failed in the end.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugFailure {
    /// Its class.
    pub kind: FailureKind,
    /// Whether trying again cannot help (no relay, no such outlet, refused
    /// credentials...): such a failure ends the command at the first attempt.
    pub permanent: bool,
    /// The last attempt's error with its causes on one line; names host:port.
    pub message: String,
}

impl fmt::Display for PlugFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// Done: a `Set` verified, a `Read` read, a dead-man operation acknowledged.
    Done,
    /// Every attempt failed (or one failed permanently).
    Failed(PlugFailure),
    /// A newer `Set` replaced this one before it finished.
    Superseded,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugOutcome {
    /// The plug.
    pub role: Role,
    /// The command this answers.
    pub command: PlugCommand,
    /// How it ended.
    pub completion: Completion,
    /// The relay state known after the command: verified or read, or
    /// [`PlugState::Unknown`] after a `Set` that may have reached the plug
    /// and was not verified. `None` when the command says nothing about the
    /// relay (a failed read, a dead-man operation).
    pub state: Option<PlugState>,
    /// What the command did to the dead-man, when it touched it.
    pub deadman: Option<DeadmanReport>,
    /// Attempts made.
    pub attempts: u32,
    /// How long each attempt took.
    pub attempt_times: Vec<Duration>,
    /// The whole command, retry sleeps included.
    pub elapsed: Duration,
    /// Wi-Fi signal (dBm) from the last read, when the plug reports it.
    pub rssi: Option<i64>,
}

impl PlugOutcome {
    /// The failure, if the command failed.
    pub fn failure(&self) -> Option<&PlugFailure> {
        match &self.completion {
            Completion::Failed(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the command did what it was asked.
    pub fn is_done(&self) -> bool {
        self.completion == Completion::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_counts_as_on() {
        assert!(PlugState::Unknown.possibly_on());
        assert!(PlugState::On.possibly_on());
        assert!(!PlugState::Off.possibly_on());
        assert_eq!(PlugState::Unknown.known(), None);
    }

    #[test]
    fn deadman_seconds_round_up_and_saturate() {
        assert_eq!(deadman_secs(Duration::from_millis(1)), 1);
        assert_eq!(deadman_secs(Duration::from_millis(120_001)), 121);
        assert_eq!(deadman_secs(Duration::from_secs(u64::MAX / 2)), u32::MAX);
    }
}
