//! Placeholder types (replaced by the kasa branch on merge).
use std::time::Duration;

use crate::Role;

/// What the control thread asks of a plug.
#[derive(Debug, Clone, PartialEq)]
pub enum PlugCommand {
    /// Switch, verified.
    Set {
        /// Wanted state.
        on: bool,
    },
    /// Read the state.
    Read,
    /// Arm the dead-man.
    ArmDeadman {
        /// Delay.
        delay: Duration,
    },
    /// Remove the dead-man.
    ClearDeadman,
}

/// Failure.
#[derive(Debug, Clone)]
pub struct PlugFailure {
    /// Last error.
    pub last_error: String,
}

/// Outcome.
#[derive(Debug, Clone)]
pub struct PlugOutcome {
    /// Role.
    pub role: Role,
    /// Command.
    pub command: PlugCommand,
    /// Result.
    pub result: Result<Option<bool>, PlugFailure>,
    /// Attempts.
    pub attempts: u32,
}
