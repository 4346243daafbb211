//! `plot`, `report`, `alert-test` and `profile show|restart`: what the
//! service leaves behind, turned into answers.

use std::process::ExitCode;
use std::time::SystemTime;

use super::args::{AlertTestArgs, PlotArgs, ProfileArgs, ProfileCommand, ReportArgs};
use super::error::{CliError, CmdResult, Message};
use crate::clock::{Since, Zone};
use crate::config::Config;

fn since(text: &str) -> Result<SystemTime, CliError> {
    let s = Since::parse(text).map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(s.resolve(SystemTime::now(), &Zone::local_or_utc()))
}

/// `kasa-thermostat plot [--log-dir DIR | --readings FILE] [--since WHEN] [--out FILE.svg]`.
pub(crate) fn plot(a: PlotArgs) -> CmdResult {
    let log_dir = match &a.instance {
        Some(i) => super::instances::path_of(i, |c| c.log_dir.clone(), |i| i.log_dir()),
        None => a.log_dir,
    };
    let readings = a
        .readings
        .unwrap_or_else(|| log_dir.join(crate::history::READINGS_FILE));
    let mut opts = crate::plot::PlotOptions::new(readings, a.out);
    opts.since = Some(since(&a.since)?);
    let summary = crate::plot::plot(&opts).map_err(CliError::failed)?;
    outln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// `kasa-thermostat report [--log-dir DIR] [--since WHEN] [--json]`.
pub(crate) fn report(a: ReportArgs) -> CmdResult {
    let log_dir = match &a.instance {
        Some(i) => super::instances::path_of(i, |c| c.log_dir.clone(), |i| i.log_dir()),
        None => a.log_dir,
    };
    let mut opts = crate::report::ReportOptions::new(log_dir);
    opts.since = Some(since(&a.since)?);
    let report = crate::report::report(&opts).map_err(CliError::failed)?;
    if a.json {
        let text = serde_json::to_string_pretty(&report).map_err(CliError::failed)?;
        outln!("{text}");
    } else {
        out!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `kasa-thermostat alert-test --config F`: runs the hook once with a test
/// event and says what happened.
pub(crate) fn alert_test(a: AlertTestArgs) -> CmdResult {
    let config = Config::load(&a.config).map_err(CliError::failed)?;
    let Some(settings) = &config.alerts else {
        return Err(CliError::failed(Message(format!(
            "{}: no `alerts` section: there is no command to test",
            a.config.display()
        ))));
    };
    match crate::alerts::send_test(settings) {
        Ok(outcome) => {
            outln!("alert-test: {outcome}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(CliError::failed(e)),
    }
}

/// `kasa-thermostat profile show|restart --config F`.
pub(crate) fn profile(cmd: ProfileCommand) -> CmdResult {
    let (restart, args): (bool, &ProfileArgs) = match &cmd {
        ProfileCommand::Show(a) => (false, a),
        ProfileCommand::Restart(a) => (true, a),
    };
    let config = Config::load(&args.config).map_err(CliError::failed)?;
    let Some(profile) = &config.profile else {
        return Err(CliError::failed(Message(format!(
            "{}: no `profile` section: the limits are fixed at low_limit and high_limit",
            args.config.display()
        ))));
    };
    let now = time::OffsetDateTime::now_utc();
    let zone = crate::clock::Zone::local().unwrap_or_else(|e| {
        eprintln!("warning: local time zone: {e}; showing UTC");
        crate::clock::Zone::utc()
    });
    if restart {
        let text = crate::profile::restart_command(profile, &config.profile_state_file, now)
            .map_err(CliError::failed)?;
        outln!("{text}");
    } else {
        out!(
            "{}",
            crate::profile::show_command(
                profile,
                &config.profile_state_file,
                now,
                &zone,
                config.units
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
