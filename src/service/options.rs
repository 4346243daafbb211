//! How the service is run beyond its config: the notifier, the watchdog
//! period and the observers of cycles and outcomes. Re-exported as
//! `service::Options` and `service::Observer`.

use std::sync::Arc;
use std::time::Duration;

use crate::control::Snapshot;
use crate::msg::PlugOutcome;
use crate::notify::Notifier;

/// Watches the service from the control thread: called after every cycle
/// and every plug outcome. The demo prints a line; a simulated chamber
/// follows the plugs' verified states.
pub trait Observer: Send {
    /// After each control cycle.
    fn cycle(&mut self, _snap: &Snapshot) {}
    /// After each plug outcome.
    fn outcome(&mut self, _outcome: &PlugOutcome) {}
}

/// How the service is run beyond its config.
pub struct Options {
    /// Readiness and watchdog (systemd, or a recorder in tests).
    pub notifier: Arc<dyn Notifier>,
    /// Ping the watchdog this often while the control loop is healthy.
    pub watchdog: Option<Duration>,
    /// Watchers of cycles and outcomes.
    pub observers: Vec<Box<dyn Observer>>,
}
