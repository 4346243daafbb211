//! Home Assistant through MQTT (docs/design.md, "Changing it while it
//! runs"): the service's state published to a broker, Home Assistant's
//! discovery configs so that it appears as a thermostat with sensors, and
//! commands from `<topic_prefix>/set/{mode,low,high,target}` sent down the
//! one command path with source `mqtt`. Off unless the config has `mqtt`.
//!
//! | topic | what |
//! |---|---|
//! | `<prefix>/availability` | `online` (retained) on connect; `offline` (retained) as last will and on a clean stop |
//! | `<prefix>/state` | JSON ([`topics::StatePayload`]) at once on a change, else every `publish_s` |
//! | `<prefix>/set/mode`, `low`, `high`, `target` | commands (a mode name, a number) |
//! | `<discovery_prefix>/<component>/<node_id>/<object_id>/config` | discovery, retained; again when `<discovery_prefix>/status` says `online` |
//!
//! One thread (`client.rs`) holds one blocking MQTT 3.1.1 connection
//! (packets by the `mqttbytes` codec, `wire.rs`) with a deadline on every
//! step, reconnects with backoff (1 s to 60 s) and logs once when the broker
//! is lost and once when it is back. The control thread's only part is
//! [`Wake::state_changed`], a `try_send` into a channel of one: the state
//! itself is the state file the control thread writes anyway, so the
//! outgoing "queue" holds only the latest state by construction, and a
//! broker that is gone, slow or hostile never delays a control cycle.

mod client;
pub mod topics;
pub mod wire;

use std::fmt;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

pub use client::Timing;

use crate::config::{ConfigError, MqttSettings};
use crate::msg::{CommandSender, Role};
use crate::units::Units;

/// What the MQTT client needs from the service.
#[derive(Clone)]
pub struct Context {
    /// The command path to the control thread.
    pub commands: CommandSender,
    /// The state file it publishes.
    pub state_file: PathBuf,
    /// The config's units.
    pub units: Units,
    /// The configured plugs.
    pub roles: Vec<Role>,
    /// Whether a profile is configured.
    pub has_profile: bool,
    /// The instance's name (`run --instance NAME`), shown in the device's
    /// name so two chambers on one Pi read apart in Home Assistant.
    pub instance: Option<String>,
}

impl Context {
    /// The client's view of `config`.
    pub fn of(config: &crate::config::Config, commands: CommandSender) -> Context {
        Context {
            commands,
            state_file: config.state_file.clone(),
            units: config.units,
            roles: config.plugs().into_iter().map(|(r, _)| r).collect(),
            has_profile: config.profile.is_some(),
            instance: config.instance.as_ref().map(|i| i.name().to_string()),
        }
    }
}

/// Why MQTT is not started.
#[derive(Debug)]
pub enum MqttError {
    /// `mqtt.password_file` cannot be used: the message says why.
    Password(ConfigError),
    /// The thread could not be started (the system is out of resources).
    Spawn(std::io::Error),
}

impl fmt::Display for MqttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MqttError::Password(e) => write!(f, "{e}"),
            MqttError::Spawn(e) => write!(f, "cannot start the mqtt thread: {e}"),
        }
    }
}

impl std::error::Error for MqttError {}

/// The control thread's side: "the state file changed". Never blocks: a
/// channel of one that is already full means a wake-up is pending, and the
/// MQTT thread reads the latest file when it takes it.
#[derive(Debug, Clone)]
pub struct Wake {
    tx: Sender<()>,
}

impl Wake {
    /// Tells the MQTT thread that the state file was rewritten.
    pub fn state_changed(&self) {
        let _ = self.tx.try_send(());
    }
}

/// How long a stop waits for the thread to say `offline` and disconnect;
/// a thread stuck in a connect or a DNS lookup is left behind (it ends with
/// the process, and the broker sends the last will).
const STOP_WAIT: Duration = Duration::from_secs(2);

/// The running client: dropping it stops the thread, waiting at most 2 s
/// (a thread stuck in a connect is left behind).
pub struct MqttClient {
    stop: Option<Sender<()>>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    wake: Wake,
}

impl MqttClient {
    /// Reads the password and starts the thread with the default timing.
    pub fn start(settings: &MqttSettings, ctx: Context) -> Result<MqttClient, MqttError> {
        MqttClient::start_with(settings, ctx, Timing::default())
    }

    /// [`MqttClient::start`] with other deadlines (tests).
    pub fn start_with(
        settings: &MqttSettings,
        ctx: Context,
        timing: Timing,
    ) -> Result<MqttClient, MqttError> {
        let password = settings.password().map_err(MqttError::Password)?;
        if let Some(w) = settings
            .password_file
            .as_deref()
            .and_then(|p| crate::config::password_file_warning("mqtt.password_file", p))
        {
            log::warn!("{w}");
        }
        let login = settings
            .username
            .clone()
            .map(|u| (u, password.unwrap_or_default()));
        let node = topics::Node {
            prefix: settings.topic_prefix.clone(),
            discovery_prefix: settings.discovery_prefix.clone(),
            node_id: topics::node_id(&settings.client_id),
            device_name: topics::device_name(
                &crate::config::mqtt_hostname(),
                ctx.instance.as_deref(),
            ),
            roles: ctx.roles.clone(),
            units: ctx.units,
            has_profile: ctx.has_profile,
        };
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let addr = if settings.host.contains(':') {
            format!("[{}]:{}", settings.host, settings.port)
        } else {
            format!("{}:{}", settings.host, settings.port)
        };
        let link = client::Link {
            addr,
            client_id: settings.client_id.clone(),
            login,
            node,
            timing,
            publish_every: settings.publish,
            state_file: ctx.state_file,
            commands: ctx.commands,
            wake: wake_rx,
            stop: stop_rx,
        };
        log::info!(
            "mqtt: publishing to {}:{} under {} (discovery under {})",
            settings.host,
            settings.port,
            settings.topic_prefix,
            settings.discovery_prefix
        );
        let thread = std::thread::Builder::new()
            .name("mqtt".into())
            .spawn(move || {
                link.run();
                drop(done_tx);
            })
            .map_err(MqttError::Spawn)?;
        Ok(MqttClient {
            stop: Some(stop_tx),
            done: done_rx,
            thread: Some(thread),
            wake: Wake { tx: wake_tx },
        })
    }

    /// The control thread's wake-up.
    pub fn wake(&self) -> Wake {
        self.wake.clone()
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.try_send(());
        }
        // `done` is never sent on: it disconnects when the thread ends.
        match self.done.recv_timeout(STOP_WAIT) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => log::warn!(
                "mqtt: the thread did not stop within {} s; leaving it",
                STOP_WAIT.as_secs()
            ),
            _ => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
