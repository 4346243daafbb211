//! What subcommands print on stdout: `out!` and `outln!` (over
//! [`write_out`]) for their output, and [`print()`] for help, the version and
//! completion scripts. A reader that went away is never a panic.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use super::error::{CliError, Message};

/// `print!` for subcommands: a reader that went away (`status | grep -q`,
/// `report | head`) ends the command quietly with exit code 0, as in
/// ripgrep, instead of the panic `print!` gives; other write errors fail it.
/// Needs a function returning `Result<_, CliError>`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*))?
    };
}

/// `out!` with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// Writes `text` to stdout: a closed pipe (`... | head`) is not an error
/// worth a panic, and there is nobody left to tell.
pub(super) fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    ExitCode::SUCCESS
}

/// What `out!` calls: writes and flushes stdout (a pipe must see each
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
