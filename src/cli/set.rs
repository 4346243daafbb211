//! `kasa-thermostat set`: one command to the running service over its
//! control socket; prints what it applied, or its one-line refusal.

use std::process::ExitCode;

use super::args::SetArgs;
use super::error::{CliError, CmdResult};
use crate::config::Config;
use crate::msg::{Command, ProfileAction};

/// `set [--mode M] [--low T] [--high T] [--clear] [--profile-restart|--profile-skip]`.
pub(crate) fn set(a: SetArgs) -> CmdResult {
    let command = Command {
        mode: a.mode,
        low: a.low,
        high: a.high,
        target: None,
        clear: a.clear,
        profile: match (a.profile_restart, a.profile_skip) {
            (true, _) => Some(ProfileAction::Restart),
            (_, true) => Some(ProfileAction::Skip),
            _ => None,
        },
    };
    if command.is_empty() {
        return Err(CliError::Usage(
            "set needs at least one of --mode, --low, --high, --clear, --profile-restart, --profile-skip"
                .into(),
        ));
    }
    let socket = match (a.control_socket, a.config, a.instance) {
        (Some(path), _, _) => path,
        (None, Some(file), instance) => {
            Config::load_as(&file, instance.as_ref())
                .map_err(CliError::failed)?
                .control_socket
        }
        (None, None, Some(i)) => {
            super::instances::path_of(&i, |c| c.control_socket.clone(), |i| i.control_socket())
        }
        (None, None, None) => crate::config::raw::DEFAULT_CONTROL_SOCKET.into(),
    };
    let reply = crate::command::socket::send(&socket, &command).map_err(CliError::failed)?;
    if reply.ok {
        outln!("{}", reply.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{}: refused: {}", super::flags::PROGRAM, reply.message);
        Ok(ExitCode::from(1))
    }
}
