//! The shared test harness: helpers used by several integration test files.
//! Each area keeps its own helpers in a submodule.
#![allow(dead_code)]

pub mod kasa;
pub mod proxy;
pub mod sensor;
pub mod service;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// The binary under test, as a command.
///
/// Under a cross test run (`cargo test --target aarch64-...` with the qemu
/// runner of `.cargo/config.toml`) the test binary itself is emulated, but
/// the kernel cannot exec a foreign binary it spawns unless binfmt_misc is
/// set up, which CI machines do not have. So `.ci/cross.sh` names the
/// emulator in `KASA_THERMOSTAT_TEST_RUNNER` and it is put in front here.
pub fn bin() -> Command {
    let exe = env!("CARGO_BIN_EXE_kasa-thermostat");
    let runner = std::env::var("KASA_THERMOSTAT_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut cmd = Command::new(emulator);
            cmd.args(words).arg(exe);
            cmd
        }
        None => Command::new(exe),
    }
}

/// Starts `kasa-thermostat simulate-plug ARGS` and reads the address it
/// prints on its first line: `None` if it printed none (it could not start;
/// its exit status is the caller's to read). Its stdout stays open, so a
/// later line cannot fail on a closed pipe.
pub fn simulate_plug<S: AsRef<OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> (Child, Option<SocketAddr>) {
    let mut child = bin()
        .arg("simulate-plug")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn simulate-plug");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read simulate-plug's address");
    (child, line.trim().parse().ok())
}
