//! SIGTERM and SIGINT become a shutdown message, on a thread named
//! `signals` that the service joins when it ends.

use crossbeam_channel::Sender;
use log::{info, warn};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use super::ServiceError;

/// The signal thread; [`SignalForwarder::stop`] ends and joins it.
pub(crate) struct SignalForwarder {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts forwarding SIGTERM and SIGINT to `shutdown`.
pub(crate) fn forward(shutdown: Sender<()>) -> Result<SignalForwarder, ServiceError> {
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(ServiceError::spawn("signals"))?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
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
