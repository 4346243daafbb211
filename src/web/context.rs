//! What the page needs from the service, taken from the config and the
//! command path: the one input of the routes (`routes.rs`), re-exported as
//! `web::Context`.

use std::path::PathBuf;

use crate::config::Config;
use crate::msg::CommandSender;
use crate::units::Units;

/// What the page needs from the service.
#[derive(Clone)]
pub struct Context {
    /// The command path to the control thread.
    pub commands: CommandSender,
    /// The state file the page shows.
    pub state_file: PathBuf,
    /// Where `readings.jsonl` and `plug-events.jsonl` are.
    pub log_dir: PathBuf,
    /// The config's units.
    pub units: Units,
    /// The alerts hook, for the test button.
    pub alerts: Option<crate::alerts::AlertSettings>,
    /// Refuse every change with 403.
    pub read_only: bool,
}

impl Context {
    /// The page's view of `config`.
    pub fn of(config: &Config, commands: CommandSender) -> Context {
        Context {
            commands,
            state_file: config.state_file.clone(),
            log_dir: config.log_dir.clone(),
            units: config.units,
            alerts: config.alerts.clone(),
            read_only: config.web.as_ref().is_some_and(|w| w.read_only),
        }
    }
}
