//! Subcommands `discover`, `plug` and `simulate-plug`.

use crate::cli::{CliError, CmdResult};

/// `kasa-thermostat discover`.
pub fn discover(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("discover: not built yet".into()))
}

/// `kasa-thermostat plug`.
pub fn plug(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("plug: not built yet".into()))
}

/// `kasa-thermostat simulate-plug`.
pub fn simulate_plug(_parser: &mut lexopt::Parser) -> CmdResult {
    Err(CliError::Usage("simulate-plug: not built yet".into()))
}
