//! `run`, `check-config` and `status`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use log::{info, warn};

use super::args::{CheckConfigArgs, RunArgs, StatusArgs};
use super::error::{CliError, CmdResult};
use crate::config::Config;
use crate::notify::{self, SystemdNotifier};
use crate::outputs::{status, StateFile};
use crate::service::{self, Options, ServiceError};

/// `kasa-thermostat run --config FILE | --simulate [--speed N]`.
pub(crate) fn run(a: RunArgs) -> CmdResult {
    let result = match (a.simulate, a.config, a.instance) {
        (true, _, _) => crate::demo::run(a.speed.unwrap_or(10.0), a.profile).map_err(|e| e.into()),
        (false, Some(path), instance) => run_config(&path, instance.as_ref()),
        (false, None, Some(instance)) => run_config(&instance.config_file(), Some(&instance)),
        (false, None, None) => {
            return Err(CliError::Usage(
                "run needs --config FILE or --instance NAME (or --simulate for the demo)".into(),
            ))
        }
    };
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::failed)
}

/// Why `run --config` could not start.
#[derive(Debug)]
enum RunError {
    Config(crate::config::ConfigError),
    Service(ServiceError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(e) => write!(f, "{e}"),
            RunError::Service(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Config(e) => e.source(),
            RunError::Service(e) => e.source(),
        }
    }
}

fn run_config(
    path: &std::path::Path,
    instance: Option<&crate::instance::Instance>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = Config::load_as(path, instance).map_err(RunError::Config)?;
    // Paths first: a bad log_dir or state_file is named before anything
    // (the log included) is created.
    config.check_paths().map_err(RunError::Config)?;
    crate::logging::init(&config.log_dir, config.log_level, None)
        .map_err(|e| RunError::Service(ServiceError::Output(e)))?;
    let notifier = SystemdNotifier::from_env().unwrap_or_else(|e| {
        warn!("systemd notification is off: {e}");
        SystemdNotifier::disabled()
    });
    let watchdog = notify::watchdog_interval().unwrap_or_else(|e| {
        warn!("the systemd watchdog is off: {e}");
        None
    });
    info!(
        "kasa-thermostat {} starting as {} with {}",
        env!("CARGO_PKG_VERSION"),
        crate::instance::unit_name(instance),
        path.display()
    );
    service::serve(
        config,
        Some(path),
        None,
        Options {
            notifier: Arc::new(notifier),
            watchdog,
            observers: Vec::new(),
        },
    )
    .map_err(|e| RunError::Service(e).into())
}

/// `kasa-thermostat check-config FILE`: prints the effective config (every
/// default filled in) and exits 0, or prints the problem and exits 1.
pub(crate) fn check_config(a: CheckConfigArgs) -> CmdResult {
    let file = match (&a.file, &a.instance) {
        (Some(f), _) => f.clone(),
        (None, Some(i)) => i.config_file(),
        (None, None) => {
            return Err(CliError::Usage(
                "check-config needs FILE or --instance NAME".into(),
            ))
        }
    };
    let config = Config::load_as(&file, a.instance.as_ref()).map_err(CliError::failed)?;
    config.check_paths().map_err(CliError::failed)?;
    if config.credentials.is_some() {
        // The password must be readable; it is never printed.
        config.credentials().map_err(CliError::failed)?;
    }
    if let Some(w) = config.password_file_warning() {
        eprintln!("warning: {w}");
    }
    if let Some(m) = &config.mqtt {
        // The broker password must be readable; it is never printed.
        m.password().map_err(CliError::failed)?;
        if let Some(w) = m
            .password_file
            .as_deref()
            .and_then(|p| crate::config::password_file_warning("mqtt.password_file", p))
        {
            eprintln!("warning: {w}");
        }
    }
    let text = serde_json::to_string_pretty(config.effective()).map_err(CliError::failed)?;
    outln!("{text}");
    for note in config.notes() {
        eprintln!("note: {note}");
    }
    eprintln!("{}: the config is valid", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `kasa-thermostat status [NAME | --state-file F] [--json]`.
pub(crate) fn status(a: StatusArgs) -> CmdResult {
    let state_file = match (a.state_file, &a.instance) {
        (Some(f), _) => f,
        (None, Some(i)) => {
            super::instances::path_of(i, |c| c.state_file.clone(), |i| i.state_file())
        }
        (None, None) => {
            let etc = std::path::Path::new(crate::instance::ETC_DIR);
            match super::instances::listing(etc, SystemTime::now())? {
                super::instances::Listing::Lines(text) if !a.json => {
                    out!("{text}");
                    return Ok(ExitCode::SUCCESS);
                }
                super::instances::Listing::Lines(_) => {
                    return Err(CliError::Usage(
                        "several installs: `status --json` needs NAME or --state-file F".into(),
                    ))
                }
                super::instances::Listing::Single => crate::config::raw::DEFAULT_STATE_FILE.into(),
            }
        }
    };
    let state = StateFile::read(&state_file).map_err(CliError::failed)?;
    if a.json {
        let text = serde_json::to_string_pretty(&state).map_err(CliError::failed)?;
        outln!("{text}");
    } else {
        let now = SystemTime::now();
        let mut text = status::render(&state, &state_file, now);
        if let Some(dir) = &state.log_dir {
            let readings = dir.join(crate::records::READINGS_FILE);
            if let Some(line) = crate::history::sparkline(&readings, Duration::from_secs(3600), now)
            {
                text.push_str(&format!("last hour    {line}\n"));
            }
            let errors =
                crate::history::last_plug_errors(&dir.join(crate::records::PLUG_EVENTS_FILE));
            for (role, e) in errors {
                text.push_str(&format!(
                    "{role:<12} last plug error {}{}: {}\n",
                    crate::clock::format_rfc3339(e.time, crate::clock::Precision::Millis),
                    if e.recovered {
                        " (works again since)"
                    } else {
                        ""
                    },
                    e.error
                ));
            }
        }
        out!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
