//! The command line: one layer for every subcommand, with one usage and help
//! convention (clap; every subcommand answers `--help`, and
//! `kasa-thermostat help SUBCOMMAND` works) and one mapping from outcomes to
//! exit codes: **0** done, **1** failed, **2** usage error.
//!
//! [`args`] holds every flag; the subcommands live beside it (`service.rs`:
//! `run`, `check-config`, `status`; `plug.rs`: `plug`, `discover`,
//! `simulate-plug`; `sensor.rs`). A subcommand returns `Ok(ExitCode)` for
//! outcomes that are not errors and `Err(CliError)` for everything else;
//! `main.rs` prints the error once, with its causes, on one line.

pub mod args;
mod look;
mod plug;
mod sensor;
mod service;

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command, Shell};

/// Why a subcommand did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: fix the arguments (exit code 2).
    Usage(String),
    /// The command ran and failed; the error names what failed (exit code 1).
    Failed(Box<dyn StdError + Send + Sync + 'static>),
}

impl CliError {
    /// Wraps any error as a failure of the command.
    pub fn failed(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> CliError {
        CliError::Failed(err.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            CliError::Failed(_) => ExitCode::from(1),
        }
    }

    /// The error and all its causes on one line.
    pub fn chain(&self) -> String {
        match self {
            CliError::Usage(msg) => format!("{msg}\n(see `kasa-thermostat --help`)"),
            CliError::Failed(err) => crate::error::chain(err.as_ref()),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(msg) => f.write_str(msg),
            CliError::Failed(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl StdError for CliError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CliError::Usage(_) => None,
            CliError::Failed(err) => Some(err.as_ref()),
        }
    }
}

/// The result type of every subcommand.
pub type CmdResult = Result<ExitCode, CliError>;

/// A failure that is only a message (it names what failed itself).
#[derive(Debug)]
pub struct Message(pub String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// Runs the command line `args` (without the program name) and returns the
/// exit code, having printed what there is to print.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from("kasa-thermostat")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kasa-thermostat: {}", err.chain());
            err.exit_code()
        }
    }
}

/// Runs one parsed subcommand.
pub fn run(command: Command) -> CmdResult {
    match command {
        Command::Run(a) => service::run(a),
        Command::CheckConfig(a) => service::check_config(a),
        Command::Status(a) => service::status(a),
        Command::Discover(a) => plug::discover(a),
        Command::Plug(a) => plug::plug(a),
        Command::SimulatePlug(a) => plug::simulate_plug(a),
        Command::Sensor(a) => sensor::sensor(a),
        Command::Plot(a) => look::plot(a),
        Command::Report(a) => look::report(a),
        Command::AlertTest(a) => look::alert_test(a),
        Command::Profile(p) => look::profile(p),
        Command::Completions(a) => completions(a.shell),
    }
}

fn completions(shell: Shell) -> CmdResult {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "kasa-thermostat", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
