//! Why the service could not start or did not end cleanly: the one error
//! of `service/`, used by its children (the control loop, the locks, the
//! signals) and re-exported as `service::ServiceError`.

use std::fmt;

use crate::outputs::OutputError;
use crate::sensor;

/// Why the service could not start or did not end cleanly.
#[derive(Debug)]
pub enum ServiceError {
    /// The config cannot be used (the password file of `credentials`).
    Config(crate::config::ConfigError),
    /// The profile's state file cannot be used: fix or delete it, or run
    /// `kasa-thermostat profile restart`.
    Profile(crate::profile::ProfileError),
    /// A log file, the data log or the state file cannot be written.
    Output(OutputError),
    /// The sensor could not be opened: check wiring, `sensor.backend` and `sensor.id`.
    Sensor(sensor::SensorError),
    /// A thread could not be started (the system is out of resources).
    Spawn {
        /// The thread's name.
        thread: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A thread died; the service stops so that systemd restarts it.
    ThreadDied {
        /// The thread's name.
        thread: String,
        /// The panic message, if there was one.
        message: String,
    },
    /// A plug, the sensor or its GPIO line is another instance's, or the
    /// locks' directory cannot be used: the message says which and whose.
    Lock(crate::instance::lock::LockError),
    /// Shutdown could not read back every plug in its shutdown state.
    ShutdownUnverified {
        /// Each plug not verified, with what is known of it.
        plugs: Vec<String>,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Config(e) => write!(f, "{e}"),
            ServiceError::Profile(e) => write!(f, "{e}"),
            ServiceError::Output(e) => write!(f, "{e}"),
            ServiceError::Sensor(_) => write!(f, "cannot open the sensor"),
            ServiceError::Spawn { thread, .. } => write!(f, "cannot start thread {thread}"),
            ServiceError::Lock(e) => write!(f, "{e}"),
            ServiceError::ThreadDied { thread, message } => write!(
                f,
                "thread {thread} died ({message}); stopping so that systemd restarts the service"
            ),
            ServiceError::ShutdownUnverified { plugs } => write!(
                f,
                "shutdown could not verify every plug in its shutdown state: {}",
                plugs.join("; ")
            ),
        }
    }
}

impl ServiceError {
    /// Wraps the error of starting thread `thread`.
    pub fn spawn(thread: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
        let thread = thread.into();
        move |source| ServiceError::Spawn { thread, source }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::Config(e) => e.source(),
            ServiceError::Profile(e) => e.source(),
            ServiceError::Output(e) => Some(e),
            ServiceError::Sensor(e) => Some(e),
            ServiceError::Spawn { source, .. } => Some(source),
            ServiceError::Lock(e) => e.source(),
            _ => None,
        }
    }
}
