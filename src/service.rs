//! Threads and wiring (DESIGN §2): the sensor thread, one worker thread per
//! plug and the control thread, joined by crossbeam channels; plus the `run`
//! and `status` subcommands.
//!
//! ```text
//!  sensor ──SensorEvent──▶ control ──PlugCommand──▶ plug-heater / plug-cooler
//!  signals ──Shutdown────▶    ▲  └──▶ state file, readings.jsonl
//!                             └────────PlugOutcome────────┘
//! ```
//!
//! The control thread owns the [`Controller`] (pure decisions), the plug
//! handles and the outputs. Its loop is one `next_event()` that folds the
//! sensor, the plug outcomes, the cycle tick, the watchdog tick and shutdown
//! into one enum. Shutdown puts every plug into its `shutdown_state`, waits
//! up to 15 s for the verified outcomes, and ends the thread; dropping the
//! handles joins the workers.
//!
//! A thread that dies is reported and ends the service with an error (systemd
//! restarts it), rather than leaving it running half-alive. Note that nothing
//! here runs on SIGKILL or a power cut: that is what the plugs' dead-man
//! countdown rules are for.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{never, select, tick, Receiver, Sender};
use log::{error, info, warn, LevelFilter};

use crate::cli::{CliError, CmdResult};
use crate::config::{Config, ConfigError, PlugConfig, SensorBackend};
use crate::control::{Controller, Settings, Snapshot};
use crate::kasa::worker::{PlugCommand, PlugHandle, PlugOutcome, PlugTarget};
use crate::notify::Notifier;
use crate::outputs::{self, OutputError, Outputs};
use crate::sensor::{self, Classifier, Sensor, SensorEvent, SensorHandle};
use crate::Role;

/// How long shutdown waits for the plugs' verified shutdown states.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the service could not start or did not end cleanly.
#[derive(Debug)]
pub enum ServiceError {
    /// The config is invalid: fix the key it names.
    Config(ConfigError),
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
    /// Shutdown could not verify every plug in its shutdown state in time.
    ShutdownUnverified {
        /// Each plug that was not verified, with its last error.
        plugs: Vec<String>,
    },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Config(e) => write!(f, "{e}"),
            ServiceError::Output(e) => write!(f, "{e}"),
            ServiceError::Sensor(e) => write!(f, "cannot open the sensor: {e}"),
            ServiceError::Spawn { thread, .. } => write!(f, "cannot start thread {thread}"),
            ServiceError::ThreadDied { thread, message } => write!(
                f,
                "thread {thread} died ({message}); stopping so that systemd restarts the service"
            ),
            ServiceError::ShutdownUnverified { plugs } => write!(
                f,
                "shutdown could not verify {} within {} s; check the plugs by hand",
                plugs.join(", "),
                SHUTDOWN_TIMEOUT.as_secs()
            ),
        }
    }
}

impl ServiceError {
    /// Wraps the error of starting thread `thread`.
    pub(crate) fn spawn(thread: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
        let thread = thread.into();
        move |source| ServiceError::Spawn { thread, source }
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServiceError::Config(e) => Some(e),
            ServiceError::Output(e) => Some(e),
            ServiceError::Sensor(e) => Some(e),
            ServiceError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How the service is run beyond its config.
pub struct Options {
    /// Readiness and watchdog (systemd, or a recorder in tests).
    pub notifier: Arc<dyn Notifier>,
    /// Ping the watchdog this often while the control loop is healthy.
    pub watchdog: Option<Duration>,
    /// Print a line per cycle and each verified switch on stdout (the demo).
    pub echo: bool,
}

/// A running service: the control thread, which owns every other thread.
pub struct Service {
    shutdown: Sender<()>,
    control: Option<JoinHandle<Result<(), ServiceError>>>,
}

impl Service {
    /// Starts the threads. `sensor` is the opened backend; when the config's
    /// backend is `simulated` and `sensor` is `None`, a simulated chamber
    /// heated and cooled by the plugs' verified states is used.
    pub fn start(
        config: Config,
        sensor: Option<Box<dyn Sensor>>,
        options: Options,
    ) -> Result<Service, ServiceError> {
        let outputs = Outputs::open(&config).map_err(ServiceError::Output)?;
        let probes = Probes::default();
        let sensor = match sensor {
            Some(s) => s,
            None if config.sensor.backend == SensorBackend::Simulated => probes.chamber(1.0),
            None => sensor::open(&config.sensor).map_err(ServiceError::Sensor)?,
        };
        info!(
            "starting: mode {}, limits {} .. {} {}, sensor {} ({:?})",
            config.mode,
            config.low_limit,
            config.high_limit,
            config.units.symbol(),
            sensor.id(),
            config.sensor.backend
        );
        let classifier = Classifier::new(config.sensor_offset_c(), config.sensor_max_step_c());
        let (sensor_handle, sensor_rx) = SensorHandle::spawn_with_channel(
            sensor,
            classifier,
            config.sensor.interval(),
            config.sensor.stale_after(),
        )
        .map_err(ServiceError::spawn("sensor"))?;
        let (outcome_tx, outcome_rx) = crossbeam_channel::unbounded();
        let mut plugs = BTreeMap::new();
        for (role, plug) in config.plugs() {
            info!("{role}: plug at {}{}", plug.address(), outlet_text(plug));
            let target = PlugTarget::from_config(role, plug);
            let handle = PlugHandle::spawn(target, config.plug_timing.clone(), outcome_tx.clone())
                .map_err(ServiceError::spawn(format!("plug-{role}")))?;
            plugs.insert(role, handle);
        }
        drop(outcome_tx);
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(4);
        let cycle = Duration::from_secs_f64(config.cycle_s);
        let ctl = ControlLoop {
            controller: Controller::new(Settings::from_config(&config)),
            units: config.units,
            plugs,
            sensor: Some(sensor_handle),
            sensor_rx,
            outcome_rx,
            shutdown_rx,
            ticker: tick(cycle),
            watchdog: options.watchdog.map(tick).unwrap_or_else(never),
            cycle,
            last_tick: Instant::now(),
            outputs,
            notifier: options.notifier,
            echo: options.echo,
            probes,
        };
        let control = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || ctl.run())
            .map_err(ServiceError::spawn("control"))?;
        Ok(Service {
            shutdown: shutdown_tx,
            control: Some(control),
        })
    }

    /// A sender that starts the shutdown (SIGTERM/SIGINT send on it).
    pub fn shutdown_sender(&self) -> Sender<()> {
        self.shutdown.clone()
    }

    /// Starts the shutdown.
    pub fn shutdown(&self) {
        let _ = self.shutdown.try_send(());
    }

    /// Waits for the control thread to end and returns how it ended.
    pub fn wait(mut self) -> Result<(), ServiceError> {
        let handle = self.control.take().expect("wait takes the handle once");
        match handle.join() {
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

fn outlet_text(plug: &PlugConfig) -> String {
    match (&plug.child_id, plug.outlet) {
        (Some(id), _) => format!(" outlet {id}"),
        (None, Some(n)) => format!(" outlet #{n}"),
        _ => String::new(),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
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
    fn chamber(&self, speed: f64) -> Box<dyn Sensor> {
        let (h, c) = (self.heater.clone(), self.cooler.clone());
        let chamber = sensor::simulated::Chamber::new(
            sensor::simulated::ChamberParams::default(),
            speed,
            Box::new(move || h.load(Ordering::Relaxed)),
            Box::new(move || c.load(Ordering::Relaxed)),
        );
        chamber.sensor()
    }

    fn set(&self, role: Role, on: bool) {
        match role {
            Role::Heater => self.heater.store(on, Ordering::Relaxed),
            Role::Cooler => self.cooler.store(on, Ordering::Relaxed),
            Role::Manual => {}
        }
    }
}

enum Event {
    Sensor(SensorEvent),
    SensorGone,
    Outcome(PlugOutcome),
    WorkersGone,
    Tick,
    Watchdog,
    Shutdown,
}

struct ControlLoop {
    controller: Controller,
    units: crate::config::Units,
    plugs: BTreeMap<Role, PlugHandle>,
    sensor: Option<SensorHandle>,
    sensor_rx: Receiver<SensorEvent>,
    outcome_rx: Receiver<PlugOutcome>,
    shutdown_rx: Receiver<()>,
    ticker: Receiver<Instant>,
    watchdog: Receiver<Instant>,
    cycle: Duration,
    last_tick: Instant,
    outputs: Outputs,
    notifier: Arc<dyn Notifier>,
    echo: bool,
    probes: Probes,
}

impl ControlLoop {
    fn next_event(&self) -> Event {
        select! {
            recv(self.shutdown_rx) -> _ => Event::Shutdown,
            recv(self.outcome_rx) -> msg => match msg {
                Ok(o) => Event::Outcome(o),
                // Every worker holds a sender until it ends.
                Err(_) => Event::WorkersGone,
            },
            recv(self.sensor_rx) -> msg => match msg {
                Ok(e) => Event::Sensor(e),
                Err(_) => Event::SensorGone,
            },
            recv(self.ticker) -> _ => Event::Tick,
            recv(self.watchdog) -> _ => Event::Watchdog,
        }
    }

    fn run(mut self) -> Result<(), ServiceError> {
        let out = self.controller.start(Instant::now());
        self.apply(out);
        self.notifier.ready();
        self.notifier.status("running: reading the plugs' states");
        loop {
            match self.next_event() {
                Event::Shutdown => return self.shut_down(),
                Event::Sensor(Ok(reading)) => {
                    let out = self.controller.on_reading(Instant::now(), reading.celsius);
                    self.apply(out);
                }
                Event::Sensor(Err(fault)) => {
                    let out = self
                        .controller
                        .on_sensor_fault(Instant::now(), fault.to_string());
                    self.apply(out);
                }
                Event::SensorGone => {
                    return self.die("sensor");
                }
                Event::Outcome(outcome) => self.outcome(outcome),
                Event::WorkersGone => {
                    if self.plugs.is_empty() {
                        // No plug configured (mode off): nothing will ever come.
                        self.outcome_rx = never();
                    } else {
                        let dead = self.dead_thread().unwrap_or_else(|| "plug".into());
                        return self.die(&dead);
                    }
                }
                Event::Tick => {
                    if let Some(dead) = self.dead_thread() {
                        return self.die(&dead);
                    }
                    self.cycle_once();
                }
                Event::Watchdog => {
                    // Healthy means the cycle keeps running on time.
                    if self.last_tick.elapsed() < self.cycle * 3 + Duration::from_secs(5) {
                        self.notifier.watchdog();
                    } else {
                        warn!("the control cycle is late; not feeding the watchdog");
                    }
                }
            }
        }
    }

    fn dead_thread(&self) -> Option<String> {
        if self.sensor.as_ref().is_some_and(|s| s.is_finished()) {
            return Some("sensor".into());
        }
        self.plugs
            .iter()
            .find(|(_, h)| h.is_finished())
            .map(|(role, _)| format!("plug-{role}"))
    }

    fn cycle_once(&mut self) {
        let now = Instant::now();
        self.last_tick = now;
        let out = self.controller.tick(now);
        self.apply(out);
        let snap = self.controller.snapshot(now);
        self.outputs.write(&snap, SystemTime::now());
        self.notifier.status(&status_line(&snap, self.units));
        if self.echo {
            println!("{}", echo_line(&snap, self.units));
        }
    }

    fn outcome(&mut self, outcome: PlugOutcome) {
        if let Ok(Some(state)) = outcome.result {
            self.probes.set(outcome.role, state);
            if self.echo {
                if let PlugCommand::Set { on } = outcome.command {
                    if on == state {
                        println!(
                            "{:>8}  {} switched {} (verified, attempt {})",
                            clock(),
                            outcome.role,
                            if on { "ON" } else { "off" },
                            outcome.attempts
                        );
                    }
                }
            }
        }
        let out = self.controller.on_outcome(Instant::now(), &outcome);
        self.apply(out);
    }

    fn apply(&mut self, out: crate::control::Output) {
        for e in out.events {
            log::log!(target: "control", e.level, "{}", e.text);
        }
        for (role, cmd) in out.commands {
            if let Some(handle) = self.plugs.get(&role) {
                handle.send(cmd);
            }
        }
    }

    fn die(mut self, thread: &str) -> Result<(), ServiceError> {
        error!("thread {thread} died; putting every plug in its shutdown state and stopping");
        let _ = self.shut_down();
        Err(ServiceError::ThreadDied {
            thread: thread.to_string(),
            message: "see the log above".into(),
        })
    }

    fn shut_down(&mut self) -> Result<(), ServiceError> {
        self.notifier.stopping();
        let start = Instant::now();
        let out = self.controller.shutdown(start);
        self.apply(out);
        let deadline = start + SHUTDOWN_TIMEOUT;
        while !self.controller.shutdown_done() {
            match self.outcome_rx.recv_deadline(deadline) {
                Ok(o) => self.outcome(o),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    error!(
                        "shutdown: no verified outcome from every plug within {} s",
                        SHUTDOWN_TIMEOUT.as_secs()
                    );
                    break;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        let snap = self.controller.snapshot(now);
        self.outputs.write(&snap, SystemTime::now());
        // The sensor first (it may be mid-read), then the workers.
        self.sensor.take();
        if self.controller.shutdown_verified() {
            info!(
                "shutdown: every plug verified in its shutdown state after {:.1} s",
                start.elapsed().as_secs_f64()
            );
            Ok(())
        } else {
            let plugs = snap
                .plugs
                .iter()
                .filter(|p| p.pending.is_some() || p.verified != p.desired)
                .map(|p| {
                    format!(
                        "{}{}",
                        p.role,
                        p.last_error
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let err = ServiceError::ShutdownUnverified { plugs };
            error!("{err}");
            Err(err)
        }
    }
}

fn clock() -> String {
    let t = time::OffsetDateTime::from(SystemTime::now());
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn word(state: Option<bool>) -> &'static str {
    match state {
        Some(true) => "ON ",
        Some(false) => "off",
        None => "?  ",
    }
}

fn status_line(snap: &Snapshot, units: crate::config::Units) -> String {
    let t = snap
        .temperature_c
        .map(|t| format!("{:.2} {}", units.from_c(t), units.symbol()))
        .unwrap_or_else(|| "no reading".into());
    let plugs: Vec<String> = snap
        .plugs
        .iter()
        .map(|p| format!("{} {}", p.role, word(p.verified).trim()))
        .collect();
    format!("{t}; {}; {}", plugs.join(", "), snap.reason)
}

fn echo_line(snap: &Snapshot, units: crate::config::Units) -> String {
    let t = snap
        .temperature_c
        .map(|t| format!("{:6.2} {}", units.from_c(t), units.symbol()))
        .unwrap_or_else(|| "   --    ".into());
    let plugs: Vec<String> = snap
        .plugs
        .iter()
        .map(|p| format!("{} {}", p.role, word(p.verified)))
        .collect();
    format!(
        "{:>8}  {t}  {}  | {}",
        clock(),
        plugs.join("  "),
        snap.reason
    )
}

/// Sets up the logs: `kasa-thermostat.log` (everything at `log_level`),
/// `kasa_errors.log` (plug failures only) and stderr (for journald).
/// `stderr_level` overrides the level on stderr (the demo keeps it quiet).
pub fn init_logging(
    config: &Config,
    stderr_level: Option<LevelFilter>,
) -> Result<(), ServiceError> {
    use simplelog::{CombinedLogger, ConfigBuilder, SharedLogger, ThreadLogMode, WriteLogger};
    let level = level_filter(&config.log_level);
    let main = outputs::open_append("log_dir", &config.log_dir.join(outputs::MAIN_LOG))
        .map_err(ServiceError::Output)?;
    let errors = outputs::open_append("log_dir", &config.log_dir.join(outputs::ERRORS_LOG))
        .map_err(ServiceError::Output)?;
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
    // A second init (tests running several services) keeps the first logger.
    let _ = CombinedLogger::init(loggers);
    install_panic_hook();
    Ok(())
}

fn level_filter(name: &str) -> LevelFilter {
    match name {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => LevelFilter::Info,
    }
}

/// Logs every panic with its thread's name before the default report, so a
/// dying thread shows in the log file and not only on stderr.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        error!(
            "thread {} panicked: {info}",
            thread.name().unwrap_or("unnamed")
        );
        default(info);
    }));
}

/// Turns SIGTERM and SIGINT into a shutdown message.
fn forward_signals(shutdown: Sender<()>) -> Result<(), ServiceError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(ServiceError::spawn("signals"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                info!("{name} received: shutting down");
                if shutdown.try_send(()).is_err() {
                    // Already shutting down; a second signal must not be lost
                    // silently, but shutdown is already on its way.
                    warn!("{name} again: shutdown is already under way");
                }
            }
        })
        .map_err(ServiceError::spawn("signals"))?;
    Ok(())
}

/// `kasa-thermostat run --config FILE | --simulate [--speed N]`.
pub fn cli_run(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut config_path: Option<PathBuf> = None;
    let mut simulate = false;
    let mut speed: f64 = 10.0;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('c') | Long("config") => config_path = Some(parser.value()?.into()),
            Long("simulate") => simulate = true,
            Long("speed") => speed = crate::cli::parse_flag(parser, "--speed")?,
            Short('h') | Long("help") => {
                println!("usage: kasa-thermostat run --config FILE\n       kasa-thermostat run --simulate [--speed N]");
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(other.unexpected().into()),
        }
    }
    if !(speed.is_finite() && speed > 0.0 && speed <= 10_000.0) {
        return Err(CliError::Usage(format!(
            "--speed {speed}: must be above 0 and at most 10000"
        )));
    }
    let result = match (simulate, config_path) {
        (true, None) => crate::demo::run(speed),
        (false, Some(path)) => run_config(&path),
        (true, Some(_)) => {
            return Err(CliError::Usage(
                "--simulate and --config are two different ways to run; pick one".into(),
            ))
        }
        (false, None) => {
            return Err(CliError::Usage(
                "run needs --config FILE (or --simulate for the demo)".into(),
            ))
        }
    };
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::failed)
}

fn run_config(path: &std::path::Path) -> Result<(), ServiceError> {
    let config = Config::load(path).map_err(ServiceError::Config)?;
    init_logging(&config, None)?;
    let notifier = crate::notify::SystemdNotifier::from_env().unwrap_or_else(|e| {
        warn!("systemd notification is off: {e}");
        crate::notify::SystemdNotifier::disabled()
    });
    let watchdog = crate::notify::watchdog_interval().unwrap_or_else(|e| {
        warn!("the systemd watchdog is off: {e}");
        None
    });
    info!(
        "kasa-thermostat {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    serve(
        config,
        None,
        Options {
            notifier: Arc::new(notifier),
            watchdog,
            echo: false,
        },
    )
}

/// Runs a service until SIGTERM/SIGINT and its shutdown.
pub fn serve(
    config: Config,
    sensor: Option<Box<dyn Sensor>>,
    options: Options,
) -> Result<(), ServiceError> {
    let service = Service::start(config, sensor, options)?;
    forward_signals(service.shutdown_sender())?;
    let result = service.wait();
    match &result {
        Ok(()) => info!("stopped"),
        Err(e) => error!("stopped: {e}"),
    }
    result
}

/// `kasa-thermostat status [--state-file F] [--json]`.
pub fn cli_status(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut path = Config::default().state_file;
    let mut json = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("state-file") => path = parser.value()?.into(),
            Long("json") => json = true,
            Short('h') | Long("help") => {
                println!("usage: kasa-thermostat status [--state-file F] [--json]");
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::failed(StatusError {
            path: path.clone(),
            what:
                "cannot read the state file (is the service running, and is this its state_file?)",
            source: Box::new(e),
        })
    })?;
    let state: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CliError::failed(StatusError {
            path: path.clone(),
            what: "the state file is not valid JSON",
            source: Box::new(e),
        })
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&state).unwrap_or(text));
    } else {
        print!(
            "{}",
            outputs::render_status(&state, &path, SystemTime::now())
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug)]
struct StatusError {
    path: PathBuf,
    what: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}
