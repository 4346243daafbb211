//! Subcommand `sensor scan|read`.

use crate::cli::{CliError, CmdResult};

/// `kasa-thermostat sensor`.
pub fn sensor(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("sensor: not built yet".into()))
}
