//! The `kasa-thermostat` binary: everything lives in the library; this file
//! only hands the arguments to the command line layer and returns its exit
//! code (0 done, 1 failed, 2 usage error).

use std::process::ExitCode;

fn main() -> ExitCode {
    kasa_thermostat::cli::main(std::env::args_os().skip(1).collect())
}
