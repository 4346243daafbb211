//! The error every subcommand returns, [`CliError`], and what it means for
//! the exit code: kept apart from `cli/mod.rs` (which dispatches to the
//! subcommands) so the subcommands can use it without importing their own
//! dispatcher back.

use std::error::Error as StdError;
use std::fmt;
use std::process::ExitCode;

use super::flags::decl::PROGRAM;

/// Why a subcommand did not succeed.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line is wrong: fix the arguments (exit code 2).
    Usage(String),
    /// The command ran and failed; the error names what failed (exit code 1).
    Failed(Box<dyn StdError + Send + Sync + 'static>),
    /// Whoever read stdout has gone away (`| head`): nothing to say and
    /// nobody to say it to (exit code 0, no message).
    StdoutClosed,
}

impl CliError {
    /// Wraps any error as a failure of the command.
    pub(crate) fn failed(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> CliError {
        CliError::Failed(err.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::from(1),
            CliError::StdoutClosed => ExitCode::SUCCESS,
        }
    }

    /// The error and all its causes on one line.
    pub(crate) fn chain(&self) -> String {
        match self {
            CliError::Usage(msg) => format!("{msg}\n(see {PROGRAM} --help)"),
            CliError::Failed(err) => crate::error::chain(err.as_ref()),
            CliError::StdoutClosed => "stdout closed".into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(msg) => f.write_str(msg),
            CliError::Failed(err) => fmt::Display::fmt(err, f),
            CliError::StdoutClosed => f.write_str("stdout closed"),
        }
    }
}

impl StdError for CliError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CliError::Usage(_) | CliError::StdoutClosed => None,
            CliError::Failed(err) => Some(err.as_ref()),
        }
    }
}

/// The result type of every subcommand.
pub(crate) type CmdResult = Result<ExitCode, CliError>;

/// A failure that is only a message (it names what failed itself).
#[derive(Debug)]
pub(crate) struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}
