//! Threads and wiring (docs/design.md §2): the sensor thread, one worker thread per
//! plug and the control thread, joined by crossbeam channels.
//!
//! ```text
//!  sensor ──SensorEvent──▶ control ──PlugCommand──▶ plug-heater / plug-cooler
//!  signals ──Shutdown────▶    ▲  └──▶ state file, readings.jsonl, plug-events.jsonl
//!                             └────────PlugOutcome────────┘
//! ```
//!
//! [`Service::start`] takes a typed [`Config`] (so it cannot be started with
//! an invalid one), opens the outputs and the sensor, spawns the threads and
//! hands them to the control loop (`control_loop.rs`), which owns them.
//! Shutdown puts every plug into its `shutdown_state` within
//! `SHUTDOWN_BUDGET` (`control_loop.rs`), never waits on a blocked sensor
//! read, and reports truthfully: `Ok` only when every plug was read back in
//! its shutdown state.
//!
//! A thread that dies is reported and ends the service with an error (systemd
//! restarts it), rather than leaving it running half-alive. Note that nothing
//! here runs on SIGKILL or a power cut: that is what the plugs' dead-man
//! countdown rules are for.

mod attention;
mod changes;
mod control_loop;
mod error;
pub(crate) mod learned;
mod locks;
mod options;
pub(crate) mod signals;

pub use error::ServiceError;
pub use options::{Observer, Options};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use log::{error, info};

use crate::command::socket::SocketServer;
use crate::config::Config;
use crate::control::Controller;
use crate::kasa::PlugHandle;
use crate::msg::CommandSender;
use crate::msg::{PlugOutcome, Role};
use crate::outputs::Outputs;
use crate::sensor::{self, Backend, Classifier, Sensor, SensorHandle};

/// A running service: the control thread, which owns the sensor, plug and
/// alert threads, and beside it the control socket and the web page, which
/// only send commands to it.
pub struct Service {
    shutdown: Sender<()>,
    control: Option<JoinHandle<Result<(), ServiceError>>>,
    commands: CommandSender,
    reloads: Sender<Box<Config>>,
    socket: Option<SocketServer>,
    web: Option<crate::web::WebServer>,
    mqtt: Option<crate::mqtt::MqttClient>,
}

impl Service {
    /// Starts the threads. `sensor` is the opened backend; when the config's
    /// backend is `simulated` and `sensor` is `None`, a simulated chamber
    /// heated and cooled by the plugs' verified states is used.
    pub fn start(
        config: Config,
        sensor: Option<Box<dyn Sensor>>,
        mut options: Options,
    ) -> Result<Service, ServiceError> {
        config.check_paths().map_err(ServiceError::Config)?;
        let outputs = Outputs::open(&config).map_err(ServiceError::Output)?;
        let (overrides, effective) = changes::start_overrides(&config);
        let profile = match &config.profile {
            Some(p) => {
                let zone = crate::clock::Zone::local().unwrap_or_else(|e| {
                    log::warn!("local time zone: {e}; the profile runs in UTC");
                    crate::clock::Zone::utc()
                });
                Some(
                    crate::profile::ProfileRunner::new(
                        p.clone(),
                        &config.profile_state_file,
                        zone,
                        config.units,
                    )
                    .map_err(ServiceError::Profile)?,
                )
            }
            None => None,
        };
        // hal: one line requested once, shared by the product and chamber
        // sensors (read in turn by the sensor thread); simulated: one model
        // with two nodes. Either opens the chamber sensor here.
        let mut opened_chamber = None;
        let sensor = match (sensor, &config.chamber) {
            (None, Some(ch)) if config.sensor.options.backend == Backend::Hal => {
                let o = &config.sensor.options;
                let product_id = o.id.clone().unwrap_or_default();
                let mut probes = sensor::hal::open_gpio_probes(
                    &o.gpio_chip,
                    o.gpio_line,
                    &[&product_id, &ch.id],
                    o.resolution_bits,
                )
                .map_err(ServiceError::Sensor)?;
                opened_chamber = probes.pop();
                Some(probes.remove(0))
            }
            (s, _) => s,
        };
        let sensor = match sensor {
            Some(s) => s,
            None if config.sensor.options.backend == Backend::Simulated => {
                let probes = Probes::default();
                let chamber = probes.chamber(config.chamber.is_some());
                options.observers.push(Box::new(probes));
                if config.chamber.is_some() {
                    // Two nodes: `sensor` is the product, the chamber sensor the air.
                    opened_chamber = Some(chamber.sensor());
                    chamber.product_sensor()
                } else {
                    chamber.sensor()
                }
            }
            None => sensor::open(&config.sensor.options).map_err(ServiceError::Sensor)?,
        };
        let u = config.units;
        info!(
            "starting: mode {}, limits {:.2} .. {:.2} {}, sensor {} ({:?})",
            effective.mode,
            u.from_c(effective.low_c),
            u.from_c(effective.high_c),
            u.symbol(),
            sensor.id(),
            config.sensor.options.backend
        );
        let classifier = Classifier::new(config.sensor.offset_c, config.sensor.max_step_c);
        let (sensor_handle, sensor_rx, chamber_rx) = match &config.chamber {
            None => {
                let (h, rx) =
                    SensorHandle::spawn_with_channel(sensor, classifier, config.sensor.interval)
                        .map_err(ServiceError::spawn("sensor"))?;
                (h, rx, crossbeam_channel::never())
            }
            Some(ch) => {
                let chamber = match opened_chamber.take() {
                    Some(c) => c,
                    None => open_chamber(&config, ch)?,
                };
                info!("chamber sensor {} (cascade's air sensor)", chamber.id());
                let chamber_classifier = Classifier::new(ch.offset_c, ch.max_step_c);
                SensorHandle::spawn_pair(
                    (sensor, classifier),
                    (chamber, chamber_classifier),
                    config.sensor.interval,
                )
                .map_err(ServiceError::spawn("sensor"))?
            }
        };
        let mut controller = Controller::new(effective.control_settings());
        let learned = match controller.learned() {
            None => None,
            Some(_) => {
                let loaded = match learned::load(&config.control_state_file) {
                    Ok(l) => l,
                    Err(e) => {
                        log::warn!("control_state_file {e}; starting from the defaults");
                        None
                    }
                };
                if let Some(l) = loaded {
                    info!(
                        "cascade: learned values from {}: heat estimator {:.3}, cool estimator {:.3} °C/h, integral {:.2}",
                        config.control_state_file.display(),
                        l.heat_estimator,
                        l.cool_estimator,
                        l.integral
                    );
                    controller.set_learned(l);
                }
                Some(learned::LearnedFile::new(
                    config.control_state_file.clone(),
                    loaded,
                ))
            }
        };
        let credentials = config.credentials().map_err(ServiceError::Config)?;
        if let Some(w) = config.password_file_warning() {
            log::warn!("{w}");
        }
        let (outcome_tx, outcome_rx) = crossbeam_channel::unbounded();
        let mut plugs = BTreeMap::new();
        let mut addresses = BTreeMap::new();
        for (role, plug) in config.plugs() {
            let target = plug.target.clone();
            info!("{role}: plug {} ({})", target.label(), target.transport);
            let device =
                crate::kasa::open_device(&target, &config.plug_timing, credentials.clone());
            addresses.insert(role, target.address());
            let handle = PlugHandle::spawn(
                target,
                config.plug_timing.clone(),
                device,
                outcome_tx.clone(),
            )
            .map_err(ServiceError::spawn(format!("plug-{role}")))?;
            plugs.insert(role, handle);
        }
        drop(outcome_tx);
        let attention = match &config.alerts {
            Some(a) => {
                if let Err(e) = crate::alerts::check_program(a) {
                    log::warn!("alerts: {}", crate::error::chain(&e));
                }
                Some(
                    attention::Attention::start(
                        a.clone(),
                        match &config.instance {
                            Some(i) => i.alert_host(&crate::alerts::hostname()),
                            None => crate::alerts::hostname(),
                        },
                        u,
                        (config.alarm_low_c, config.alarm_high_c),
                        addresses.clone(),
                    )
                    .map_err(ServiceError::spawn("alerts"))?,
                )
            }
            None => None,
        };
        let (commands, commands_rx) = CommandSender::channel();
        let (reloads, reloads_rx) = crossbeam_channel::bounded(1);
        let socket = match SocketServer::start(&config.control_socket, commands.clone()) {
            Ok(s) => Some(s),
            Err(e) => {
                error!("{e}; `kasa-thermostat set` cannot reach this service (control goes on)");
                None
            }
        };
        let web = match &config.web {
            None => None,
            Some(w) => match crate::web::WebServer::start(
                w,
                crate::web::Context::of(&config, commands.clone()),
            ) {
                Ok(server) => Some(server),
                Err(e) => {
                    error!("web: {e} (control goes on)");
                    if let Some(a) = &attention {
                        a.web_unavailable(&e.to_string());
                    }
                    None
                }
            },
        };
        let mqtt = match &config.mqtt {
            None => None,
            Some(m) => match crate::mqtt::MqttClient::start(
                m,
                crate::mqtt::Context::of(&config, commands.clone()),
            ) {
                Ok(client) => Some(client),
                Err(e) => {
                    error!("mqtt: {e} (control goes on)");
                    None
                }
            },
        };
        let mut outputs = outputs;
        outputs.set_overrides(overrides.lines(u));
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(4);
        let ctl = control_loop::ControlLoop::new(
            control_loop::Parts {
                controller,
                learned,
                chamber_rx,
                units: u,
                cycle: effective.cycle,
                plugs,
                addresses,
                sensor_rx,
                outcome_rx,
                shutdown_rx,
                outputs,
                options,
                attention,
                profile,
                config,
                overrides,
                commands: commands_rx,
                reloads: reloads_rx,
                mqtt: mqtt.as_ref().map(|m| m.wake()),
            },
            sensor_handle,
        );
        let control = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || ctl.run())
            .map_err(ServiceError::spawn("control"))?;
        Ok(Service {
            shutdown: shutdown_tx,
            control: Some(control),
            commands,
            reloads,
            socket,
            web,
            mqtt,
        })
    }

    /// The command path to the control thread (what the web page, the
    /// control socket and MQTT use).
    pub fn commands(&self) -> CommandSender {
        self.commands.clone()
    }

    /// Hands a re-read config to the control thread (SIGHUP).
    pub(crate) fn reload_sender(&self) -> Sender<Box<Config>> {
        self.reloads.clone()
    }

    /// Where the web page listens, when it does.
    pub fn web_addr(&self) -> Option<std::net::SocketAddr> {
        self.web.as_ref().map(|w| w.local_addr())
    }

    /// A sender that starts the shutdown (SIGTERM/SIGINT send on it).
    pub(crate) fn shutdown_sender(&self) -> Sender<()> {
        self.shutdown.clone()
    }

    /// Starts the shutdown.
    pub fn shutdown(&self) {
        let _ = self.shutdown.try_send(());
    }

    /// Waits for the control thread to end and returns how it ended.
    pub fn wait(mut self) -> Result<(), ServiceError> {
        let Some(handle) = self.control.take() else {
            return Ok(());
        };
        let joined = handle.join();
        // Nothing is left to answer commands; MQTT says `offline`.
        self.mqtt.take();
        self.web.take();
        self.socket.take();
        match joined {
            Ok(result) => result,
            Err(panic) => Err(ServiceError::ThreadDied {
                thread: "control".into(),
                message: panic_message(&panic),
            }),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(handle) = self.control.take() {
            let _ = self.shutdown.try_send(());
            let _ = handle.join();
        }
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// The plugs' verified states, shared with a simulated chamber when the
/// config asks for the `simulated` backend without simulated plugs.
#[derive(Clone, Default)]
struct Probes {
    heater: Arc<AtomicBool>,
    cooler: Arc<AtomicBool>,
}

impl Probes {
    /// A simulated chamber driven by the plugs; with `product`, a
    /// two-node one (cascade control's product and air).
    fn chamber(&self, product: bool) -> sensor::simulated::Chamber {
        let (h, c) = (self.heater.clone(), self.cooler.clone());
        let params = sensor::simulated::ChamberParams {
            product: product.then(sensor::simulated::ProductNode::default),
            ..sensor::simulated::ChamberParams::default()
        };
        sensor::simulated::Chamber::new(
            params,
            1.0,
            Box::new(move || h.load(Ordering::Relaxed)),
            Box::new(move || c.load(Ordering::Relaxed)),
        )
    }
}

impl Observer for Probes {
    fn outcome(&mut self, o: &PlugOutcome) {
        let Some(on) = o.state.and_then(|s| s.known()) else {
            return;
        };
        match o.role {
            Role::Heater => self.heater.store(on, Ordering::Relaxed),
            Role::Cooler => self.cooler.store(on, Ordering::Relaxed),
            Role::Manual => {}
        }
    }
}

/// Opens the chamber sensor on the product sensor's backend and bus.
fn open_chamber(
    config: &Config,
    ch: &crate::config::ChamberSettings,
) -> Result<Box<dyn Sensor>, ServiceError> {
    let mut options = config.sensor.options.clone();
    options.id = Some(ch.id.clone());
    match options.backend {
        Backend::W1 => sensor::open(&options).map_err(ServiceError::Sensor),
        // hal and simulated open both at once (above).
        Backend::Hal | Backend::Simulated => Err(ServiceError::Sensor(
            sensor::SensorError::ChamberUnsupported {
                backend: match options.backend {
                    Backend::Hal => "hal",
                    _ => "simulated",
                },
            },
        )),
    }
}

/// Runs a service until SIGTERM/SIGINT and its shutdown.
/// With `config_path`, SIGHUP re-reads that file.
pub(crate) fn serve(
    config: Config,
    config_path: Option<&std::path::Path>,
    sensor: Option<Box<dyn Sensor>>,
    options: Options,
) -> Result<(), ServiceError> {
    let caught = signals::catch()?;
    // Before anything is touched: one plug, one master (docs/design-instances.md).
    let _locks = locks::take(&config)?;
    let instance = config.instance.clone();
    let service = Service::start(config, sensor, options)?;
    let reload = config_path.map(|p| (p.to_path_buf(), instance, service.reload_sender()));
    let signals = signals::forward(caught, service.shutdown_sender(), reload)?;
    let result = service.wait();
    signals.stop();
    match &result {
        Ok(()) => info!("stopped"),
        Err(e) => error!("stopped: {}", crate::error::chain(e)),
    }
    result
}
