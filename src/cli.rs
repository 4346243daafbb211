//! The command line: the first word picks a subcommand, and each subcommand
//! parses the rest of its own arguments with [`lexopt`] (small, no macros, and
//! the same parser ripgrep uses).
//!
//! Subcommands return `Ok(ExitCode)` for outcomes that are not errors (for
//! example `plug off` that could not be verified returns a failing code after
//! printing its one-line reason) and `Err(CliError)` for everything else.

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::process::ExitCode;

/// The usage text printed by `--help` and after a usage error.
pub const USAGE: &str = "\
kasa-thermostat: hold a temperature with a DS18B20 sensor and Kasa smart plugs

USAGE:
  kasa-thermostat run --config FILE            the service
  kasa-thermostat run --simulate [--speed N]   demo: simulated chamber + two simulated plugs
  kasa-thermostat check-config FILE            validate, print the effective config
  kasa-thermostat status [--state-file F] [--json]
  kasa-thermostat discover [--target ADDR] [--timeout S] [--json]
  kasa-thermostat plug HOST[:PORT] state|on|off|sysinfo [--child ID | --outlet N] [--json]
  kasa-thermostat sensor scan|read [--config FILE | --w1-root DIR | --gpio CHIP:LINE]
  kasa-thermostat simulate-plug [--bind ADDR:PORT] [--model hs100|hs110|hs300|p100|p110|p300|kp125m|ep40m|hs100-klap]
                [--fault KIND] [--username U --password P]
  kasa-thermostat --version | --help
";

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

    /// The error and all its causes on one line, `outer: inner: innermost`,
    /// skipping a cause whose text the outer message already contains.
    pub fn chain(&self) -> String {
        match self {
            CliError::Usage(msg) => format!("{msg}\n(see `kasa-thermostat --help`)"),
            CliError::Failed(err) => error_chain(err.as_ref()),
        }
    }
}

/// Formats an error with its `source()` chain on one line.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
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

impl From<lexopt::Error> for CliError {
    fn from(err: lexopt::Error) -> CliError {
        CliError::Usage(err.to_string())
    }
}

/// The result type of every subcommand.
pub type CmdResult = Result<ExitCode, CliError>;

/// Parses a flag's value with `FromStr`, naming the flag in the error.
pub fn parse_flag<T>(parser: &mut lexopt::Parser, flag: &str) -> Result<T, CliError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let raw = parser.value()?;
    let text = raw
        .to_str()
        .ok_or_else(|| CliError::Usage(format!("{flag}: the value is not valid UTF-8")))?;
    text.parse::<T>()
        .map_err(|e| CliError::Usage(format!("{flag} {text:?}: {e}")))
}

/// Runs the command line `args` (without the program name).
pub fn run(args: Vec<OsString>) -> CmdResult {
    let mut parser = lexopt::Parser::from_args(args);
    use lexopt::prelude::*;
    let sub = match parser.next()? {
        None => return Err(CliError::Usage("a subcommand is required".into())),
        Some(Short('h') | Long("help")) => {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(Short('V') | Long("version")) => {
            println!("kasa-thermostat {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Some(Value(v)) => v.string()?,
        Some(other) => return Err(other.unexpected().into()),
    };
    match sub.as_str() {
        "run" => crate::service::cli_run(&mut parser),
        "check-config" => crate::config::cli_check_config(&mut parser),
        "status" => crate::service::cli_status(&mut parser),
        "discover" => crate::kasa::cli::discover(&mut parser),
        "plug" => crate::kasa::cli::plug(&mut parser),
        "simulate-plug" => crate::kasa::cli::simulate_plug(&mut parser),
        "sensor" => crate::sensor::cli::sensor(&mut parser),
        other => Err(CliError::Usage(format!("unknown subcommand {other:?}"))),
    }
}
