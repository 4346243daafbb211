//! The command line: one layer for every subcommand, with one usage and help
//! convention (every subcommand answers `--help` and `-h`, and
//! `kasa-thermostat help SUBCOMMAND` works; completions for bash, zsh and
//! fish are generated) and one mapping from outcomes to exit codes:
//! **0** done, **1** failed, **2** usage error.
//!
//! [`args`] declares every flag and holds the structs the subcommands
//! receive; `flags/` is the engine that parses (over `lexopt`), prints help
//! and writes completions from those declarations. The subcommands live
//! beside them (`service.rs`: `run`, `check-config`, `status`; `plug.rs`:
//! `plug`, `discover`, `simulate-plug`; `sensor.rs`; `look.rs`: `plot`,
//! `report`, `alert-test`, `profile`). A subcommand returns `Ok(ExitCode)`
//! for outcomes that are not errors and `Err(CliError)` for everything
//! else; [`main`] prints the error once, with its causes, on one line.

/// `print!` for subcommands: a reader that went away (`status | grep -q`,
/// `report | head`) ends the command quietly with exit code 0, as in
/// ripgrep, instead of the panic `print!` gives; other write errors fail it.
/// Needs a function returning `Result<_, CliError>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))?
    };
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

pub mod args;
mod bench;
mod flags;
mod instances;
mod look;
mod plug;
mod sensor;
mod service;
mod set;

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use args::{Command, Parsed, Shell};
use flags::PROGRAM;

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

/// Runs the command line `args` (without the program name) and returns the
/// exit code, having printed what there is to print: help and the version
/// on stdout with 0, a usage error on stderr with 2 (one line, then where
/// to read more), a failure on stderr with 1.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let command = match args::parse(args) {
        Ok(Parsed::Run(command)) => command,
        Ok(Parsed::Help(text)) => return print(&text),
        Ok(Parsed::Version) => return print(&format!("{PROGRAM} {}\n", flags::VERSION)),
        Ok(Parsed::NoCommand(help)) => {
            eprint!("{help}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{PROGRAM}: {e}\n{}", e.hint());
            return ExitCode::from(2);
        }
    };
    let name = command.name();
    match run(command) {
        Ok(code) => code,
        Err(CliError::StdoutClosed) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("{PROGRAM}: {msg}\n(see {PROGRAM} {name} --help)");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("{PROGRAM}: {}", err.chain());
            err.exit_code()
        }
    }
}

/// Writes `text` to stdout: a closed pipe (`... | head`) is not an error
/// worth a panic, and there is nobody left to tell.
fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    ExitCode::SUCCESS
}

/// What [`out!`] calls: writes and flushes stdout (a pipe must see each
/// line as it is written, e.g. `sensor read` in a loop).
pub(crate) fn write_out(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError::StdoutClosed,
            _ => CliError::failed(Message(format!("cannot write to stdout: {e}"))),
        })
}

/// Runs one parsed subcommand.
pub(crate) fn run(command: Command) -> CmdResult {
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
        Command::BenchControl(a) => bench::bench_control(a),
        Command::AlertTest(a) => look::alert_test(a),
        Command::Profile(p) => look::profile(p),
        Command::Set(a) => set::set(a),
        Command::Completions(a) => completions(a.shell),
    }
}

fn completions(shell: Shell) -> CmdResult {
    let script = match shell {
        Shell::Bash => flags::complete::bash(&args::ROOT),
        Shell::Zsh => flags::complete::zsh(&args::ROOT),
        Shell::Fish => flags::complete::fish(&args::ROOT),
    };
    Ok(print(&script))
}
