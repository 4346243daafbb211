//! The logs (docs/design.md §12): `kasa-thermostat.log` (everything at `log_level`),
//! `kasa_errors.log` (plug failures only, the `kasa_errors` target) and
//! stderr (for journald), plus a panic hook that puts a dying thread's name
//! and message into the log file, not only on stderr.

use std::path::Path;

use log::LevelFilter;

use crate::outputs::{self, OutputError};

/// Sets up the three log sinks under `log_dir`. `stderr_level` overrides the
/// level on stderr (the demo keeps it quiet). A second call (tests running
/// several services in one process) keeps the first logger.
pub(crate) fn init(
    log_dir: &Path,
    level: LevelFilter,
    stderr_level: Option<LevelFilter>,
) -> Result<(), OutputError> {
    use simplelog::{CombinedLogger, ConfigBuilder, SharedLogger, ThreadLogMode, WriteLogger};
    let main = outputs::open_append("log_dir", &log_dir.join(outputs::MAIN_LOG))?;
    let errors = outputs::open_append("log_dir", &log_dir.join(outputs::ERRORS_LOG))?;
    let base = || {
        let mut b = ConfigBuilder::new();
        b.set_time_format_rfc3339()
            .set_thread_level(LevelFilter::Error)
            .set_thread_mode(ThreadLogMode::Names)
            .set_target_level(LevelFilter::Off)
            .set_location_level(LevelFilter::Off);
        b
    };
    let errors_config = base()
        .add_filter_allow_str(crate::kasa::ERROR_LOG_TARGET)
        .build();
    let loggers: Vec<Box<dyn SharedLogger>> = vec![
        WriteLogger::new(
            stderr_level.unwrap_or(level),
            base().build(),
            std::io::stderr(),
        ),
        WriteLogger::new(level, base().build(), main),
        WriteLogger::new(LevelFilter::Error, errors_config, errors),
    ];
    let _ = CombinedLogger::init(loggers);
    install_panic_hook();
    Ok(())
}

/// Logs every panic with its thread's name before the default report, so a
/// dying thread shows in the log file and not only on stderr.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            log::error!(
                "thread {} panicked: {info}",
                thread.name().unwrap_or("unnamed")
            );
            default(info);
        }));
    });
}
