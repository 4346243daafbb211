//! [`ProfileError`]: why a profile, its state file or the time zone could
//! not be used. A leaf of `profile/`, so that every file of the module can
//! return it without importing `profile/mod.rs`.

use std::fmt;
use std::path::PathBuf;

/// Why a profile, its state file or the time zone could not be used.
#[derive(Debug)]
pub enum ProfileError {
    /// A value in the config's `profile` is wrong: fix the key named. The
    /// message names the value and what is allowed (the same shape as the
    /// config's own `Invalid`, so it maps onto it).
    Invalid {
        /// The dotted key path: `profile.steps[2].ramp`, `profile.start`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The state file could not be read or written: check the path, its
    /// directory and their permissions (the service needs write access).
    StateIo {
        /// The state file.
        path: PathBuf,
        /// What was being done (`read`, `write`, `rename`...).
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file is not one this program wrote (damaged, foreign, not a
    /// regular file, too large): fix or delete it, or run `profile restart`.
    StateDamaged {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `profile restart` on a daily profile, which follows the clock and has
    /// nothing to restart.
    DailyHasNoRestart,
    /// `run --simulate --profile` with a speed that is not a positive number.
    DemoSpeed(f64),
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Invalid { key, message } => write!(f, "key `{key}`: {message}"),
            ProfileError::StateIo { path, action, .. } => {
                write!(
                    f,
                    "cannot {action} the profile state file {}",
                    path.display()
                )
            }
            ProfileError::StateDamaged { path, reason } => write!(
                f,
                "the profile state file {} is not usable ({reason}); fix or delete it, \
                 or run `kasa-thermostat profile restart --config FILE` to start the profile over",
                path.display()
            ),
            ProfileError::DailyHasNoRestart => write!(
                f,
                "a daily profile follows the local clock and has no start to reset; \
                 change `profile.start` to move it"
            ),
            ProfileError::DemoSpeed(speed) => {
                write!(
                    f,
                    "speed {speed} must be a number above 0 for a demo profile"
                )
            }
        }
    }
}

impl std::error::Error for ProfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProfileError::StateIo { source, .. } => Some(source),
            _ => None,
        }
    }
}
