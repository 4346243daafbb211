//! Threads and wiring (DESIGN §2).

use crate::cli::{CliError, CmdResult};

/// `kasa-thermostat run`.
pub fn cli_run(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("run: not built yet".into()))
}

/// `kasa-thermostat status`.
pub fn cli_status(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("status: not built yet".into()))
}
