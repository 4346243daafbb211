//! SIGTERM and SIGINT become a shutdown message, and SIGHUP a re-read of
//! the config file, on a thread named `signals` that the service joins
//! when it ends. The config is read and checked here, off the control
//! thread; an invalid one is refused with `check-config`'s message.

use crossbeam_channel::Sender;
use log::{info, warn};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use std::path::{Path, PathBuf};

use super::error::ServiceError;
use crate::config::Config;
use crate::instance::Instance;

/// SIGHUP: reads and checks the config as `check-config` does; a valid one
/// goes to the control thread, which refuses it when a key that needs a
/// restart changed.
fn reread(path: &Path, instance: Option<&Instance>, tx: &Sender<Box<Config>>) {
    info!("SIGHUP received: re-reading {}", path.display());
    let config = Config::load_as(path, instance).and_then(|c| c.check_paths().map(|()| c));
    match config {
        Ok(c) => {
            if tx.try_send(Box::new(c)).is_err() {
                warn!("reload: the previous one is still being applied; send SIGHUP again");
            }
        }
        Err(e) => log::error!(
            "reload refused: {}; the running config stays",
            crate::error::chain(&e)
        ),
    }
}

/// The signal thread; [`SignalForwarder::stop`] ends and joins it.
pub(crate) struct SignalForwarder {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// SIGTERM and SIGINT caught, not yet forwarded anywhere.
///
/// Catch them before starting any thread: a signal that arrives while the
/// service starts is then kept and forwarded once there is somewhere to
/// send it, where the default action would end the process on the spot,
/// with no plug switched to its shutdown state.
pub(crate) struct Caught {
    signals: Signals,
}

/// Catches SIGTERM and SIGINT from now on.
pub(crate) fn catch() -> Result<Caught, ServiceError> {
    let signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(ServiceError::spawn("signals"))?;
    Ok(Caught { signals })
}

/// Starts forwarding the caught signals, those already received first, to
/// `shutdown`.
pub(crate) fn forward(
    caught: Caught,
    shutdown: Sender<()>,
    reload: Option<(PathBuf, Option<Instance>, Sender<Box<Config>>)>,
) -> Result<SignalForwarder, ServiceError> {
    let Caught { mut signals } = caught;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    match &reload {
                        Some((path, instance, tx)) => reread(path, instance.as_ref(), tx),
                        None => info!("SIGHUP received: no config file to re-read (the demo)"),
                    }
                    continue;
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                info!("{name} received: shutting down");
                if shutdown.try_send(()).is_err() {
                    warn!("{name} again: shutdown is already under way");
                }
            }
        })
        .map_err(ServiceError::spawn("signals"))?;
    Ok(SignalForwarder {
        handle,
        thread: Some(thread),
    })
}

impl SignalForwarder {
    /// Stops forwarding and joins the thread.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.finish();
    }
}
