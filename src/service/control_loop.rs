//! The control thread: one `next_event()` that folds shutdown, the plug
//! outcomes, the sensor, the cycle tick and the watchdog tick into one enum
//! (shutdown wins when several are ready), around the pure
//! [`Controller`]. It owns the plug handles, the sensor handle and the
//! outputs; when it ends, dropping them stops and joins their threads.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{never, select_biased, tick, Receiver};
use log::{error, info, warn};

use super::attention::{Attention, FINISH_WAIT};
use super::error::ServiceError;
use super::learned::LearnedFile;
use super::options::Options;
use crate::command::Overrides;
use crate::config::Config;
use crate::control::{Controller, Output};
use crate::kasa::PlugHandle;
use crate::msg::Request;
use crate::msg::{PlugOutcome, Role, SensorEvent};
use crate::outputs::Outputs;
use crate::profile::{ProfileRunner, ProfileStatus};
use crate::sensor::SensorHandle;
use crate::units::Units;

/// How long shutdown may take: every plug verified in its shutdown state, or
/// reported as not, within this. The unit's `TimeoutStopSec` exceeds it.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(15);

/// How long before the end of the shutdown budget the plug commands must be
/// over, so their outcomes are in before the budget ends.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(1000);

/// How long shutdown waits for a sensor thread stuck in a read.
const SENSOR_STOP_WAIT: Duration = Duration::from_millis(500);

/// Everything the loop owns, handed over by `Service::start`.
pub(super) struct Parts {
    pub controller: Controller,
    pub units: Units,
    pub cycle: Duration,
    pub plugs: BTreeMap<Role, PlugHandle>,
    pub addresses: BTreeMap<Role, String>,
    pub sensor_rx: Receiver<SensorEvent>,
    /// The chamber sensor's events (`never()` without one).
    pub chamber_rx: Receiver<SensorEvent>,
    /// `control_state_file`, under cascade control.
    pub learned: Option<LearnedFile>,
    pub outcome_rx: Receiver<PlugOutcome>,
    pub shutdown_rx: Receiver<()>,
    pub outputs: Outputs,
    pub options: Options,
    pub attention: Option<Attention>,
    pub profile: Option<ProfileRunner>,
    /// The config as read from its file (overrides not applied).
    pub config: Config,
    /// The changes made while running, on top of `config`.
    pub overrides: Overrides,
    /// Commands from the web page, `set` and MQTT.
    pub commands: Receiver<Request>,
    /// Configs re-read on SIGHUP (already checked like `check-config`).
    pub reloads: Receiver<Box<Config>>,
    /// Tells the MQTT thread that the state file changed (never blocks).
    pub mqtt: Option<crate::mqtt::Wake>,
}

enum Event {
    Shutdown,
    Outcome(PlugOutcome),
    WorkersGone,
    Sensor(SensorEvent),
    Chamber(SensorEvent),
    SensorGone,
    Tick,
    Watchdog,
    Command(Request),
    CommandsGone,
    Reload(Box<Config>),
    ReloadsGone,
}

pub(super) struct ControlLoop {
    pub(super) p: Parts,
    sensor: Option<SensorHandle>,
    pub(super) ticker: Receiver<Instant>,
    watchdog: Receiver<Instant>,
    last_tick: Instant,
    pub(super) profile_status: Option<ProfileStatus>,
}

impl ControlLoop {
    pub fn new(p: Parts, sensor: SensorHandle) -> ControlLoop {
        let ticker = tick(p.cycle);
        let watchdog = p.options.watchdog.map(tick).unwrap_or_else(never);
        ControlLoop {
            p,
            sensor: Some(sensor),
            ticker,
            watchdog,
            last_tick: Instant::now(),
            profile_status: None,
        }
    }

    fn next_event(&self) -> Event {
        select_biased! {
            recv(self.p.shutdown_rx) -> _ => Event::Shutdown,
            recv(self.p.outcome_rx) -> msg => match msg {
                Ok(o) => Event::Outcome(o),
                // Every worker holds a sender until it ends.
                Err(_) => Event::WorkersGone,
            },
            recv(self.p.sensor_rx) -> msg => match msg {
                Ok(e) => Event::Sensor(e),
                Err(_) => Event::SensorGone,
            },
            recv(self.p.chamber_rx) -> msg => match msg {
                Ok(e) => Event::Chamber(e),
                Err(_) => Event::SensorGone,
            },
            recv(self.ticker) -> _ => Event::Tick,
            recv(self.watchdog) -> _ => Event::Watchdog,
            recv(self.p.commands) -> msg => match msg {
                Ok(r) => Event::Command(r),
                // Every source is gone: none will come.
                Err(_) => Event::CommandsGone,
            },
            recv(self.p.reloads) -> msg => match msg {
                Ok(c) => Event::Reload(c),
                Err(_) => Event::ReloadsGone,
            },
        }
    }

    pub(crate) fn run(mut self) -> Result<(), ServiceError> {
        self.profile_tick();
        let out = self.p.controller.start(Instant::now());
        self.apply(out);
        if let Some(a) = &self.p.attention {
            let l = self.p.controller.limits();
            let u = self.p.units;
            a.started(&format!(
                "limits {:.2} .. {:.2} {}",
                u.from_c(l.low_c),
                u.from_c(l.high_c),
                u.symbol()
            ));
        }
        self.p.options.notifier.ready();
        self.p
            .options
            .notifier
            .status("running: reading the plugs' states");
        loop {
            match self.next_event() {
                Event::Shutdown => return self.shut_down(),
                Event::Sensor(Ok(reading)) => {
                    let out = self
                        .p
                        .controller
                        .on_reading(Instant::now(), reading.celsius);
                    self.apply(out);
                }
                Event::Sensor(Err(fault)) => {
                    let out = self.p.controller.on_sensor_fault(Instant::now(), &fault);
                    self.apply(out);
                }
                Event::Chamber(Ok(reading)) => {
                    let out = self
                        .p
                        .controller
                        .on_chamber_reading(Instant::now(), reading.celsius);
                    self.apply(out);
                }
                Event::Chamber(Err(fault)) => {
                    let out = self.p.controller.on_chamber_fault(Instant::now(), &fault);
                    self.apply(out);
                }
                Event::SensorGone => return self.die("sensor"),
                Event::Outcome(outcome) => self.outcome(outcome),
                Event::WorkersGone => {
                    if self.p.plugs.is_empty() {
                        // No plug configured (mode off): nothing will ever come.
                        self.p.outcome_rx = never();
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
                Event::Command(request) => self.command(request),
                Event::CommandsGone => self.p.commands = never(),
                Event::Reload(config) => self.reload(*config),
                Event::ReloadsGone => self.p.reloads = never(),
                Event::Watchdog => {
                    // Healthy means the cycle keeps running on time.
                    if self.last_tick.elapsed() < self.p.cycle * 3 + Duration::from_secs(5) {
                        self.p.options.notifier.watchdog();
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
        self.p
            .plugs
            .iter()
            .find(|(_, h)| h.is_finished())
            .map(|(role, _)| format!("plug-{role}"))
    }

    fn cycle_once(&mut self) {
        let now = Instant::now();
        self.last_tick = now;
        self.profile_tick();
        let out = self.p.controller.tick(now);
        self.apply(out);
        if let (Some(file), Some(l)) = (&mut self.p.learned, self.p.controller.learned()) {
            file.update(l, now);
        }
        self.write_state(now);
    }

    /// The limits in force from the profile, from the wall clock.
    fn profile_tick(&mut self) {
        let Some(runner) = &mut self.p.profile else {
            return;
        };
        let tick = runner.tick(
            time::OffsetDateTime::now_utc(),
            crate::profile::kernel_clock_synced(),
        );
        for e in &tick.events {
            log::log!(target: "profile", e.level(), "{e}");
        }
        self.p.controller.set_band(tick.band);
        self.profile_status = Some(ProfileStatus::of(runner.profile(), &tick, self.p.units));
    }

    fn write_state(&mut self, now: Instant) {
        let snap = self.p.controller.snapshot(now);
        self.p
            .outputs
            .write(&snap, SystemTime::now(), self.profile_status.clone());
        if let Some(m) = &self.p.mqtt {
            m.state_changed();
        }
        if let Some(a) = &mut self.p.attention {
            a.cycle(&snap, now);
        }
        self.p
            .options
            .notifier
            .status(&crate::outputs::status::status_line(&snap, self.p.units));
        for o in self.p.options.observers.iter_mut() {
            o.cycle(&snap);
        }
    }

    fn outcome(&mut self, outcome: PlugOutcome) {
        for o in self.p.options.observers.iter_mut() {
            o.outcome(&outcome);
        }
        let out = self.p.controller.on_outcome(Instant::now(), &outcome);
        let corrected = out.corrections.contains(&outcome.role);
        let address = self
            .p
            .addresses
            .get(&outcome.role)
            .cloned()
            .unwrap_or_default();
        self.p
            .outputs
            .plug_event(&outcome, &address, corrected, SystemTime::now());
        self.apply(out);
        if let Some(m) = &self.p.mqtt {
            // MQTT shows a plug's change at once, not a cycle later.
            let snap = self.p.controller.snapshot(Instant::now());
            self.p
                .outputs
                .refresh_state(&snap, SystemTime::now(), self.profile_status.clone());
            m.state_changed();
        }
    }

    fn apply(&mut self, out: Output) {
        if let Some(a) = &mut self.p.attention {
            a.notices(&out.notices, Instant::now());
        }
        for e in out.events {
            log::log!(target: "control", e.level, "{}", e.text);
        }
        for (role, cmd) in out.commands {
            if let Some(handle) = self.p.plugs.get(&role) {
                match out.deadline {
                    Some(d) => handle.send_by(cmd, d),
                    None => handle.send(cmd),
                }
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

    /// Every plug to its shutdown state within [`SHUTDOWN_BUDGET`], then the
    /// truth: `Ok` only when every plug was read back in its shutdown state.
    fn shut_down(&mut self) -> Result<(), ServiceError> {
        self.p.options.notifier.stopping();
        if let Some(a) = &self.p.attention {
            a.stopping("every plug to its shutdown state");
        }
        let start = Instant::now();
        let end = start + SHUTDOWN_BUDGET;
        let out = self.p.controller.shutdown(start, end - SHUTDOWN_MARGIN);
        self.apply(out);
        // The sensor must not hold shutdown up: a thread stuck in a read is
        // left behind (it ends with the process).
        if let Some(sensor) = self.sensor.take() {
            sensor.stop(SENSOR_STOP_WAIT);
        }
        while !self.p.controller.shutdown_done(Instant::now()) {
            match self.p.outcome_rx.recv_deadline(end) {
                Ok(o) => self.outcome(o),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        let now = Instant::now();
        self.write_state(now);
        let report = self.p.controller.shutdown_report(now);
        // The workers' commands end by their deadline; joining is bounded.
        self.p.plugs.clear();
        if let Some(a) = self.p.attention.take() {
            for u in &report {
                a.unverified(u.role, &u.message);
            }
            a.finish((Instant::now() + FINISH_WAIT).min(end));
        }
        if report.is_empty() {
            info!(
                "shutdown: every plug verified in its shutdown state after {:.1} s",
                start.elapsed().as_secs_f64()
            );
            Ok(())
        } else {
            for u in &report {
                error!("shutdown: {}", u.message);
            }
            Err(ServiceError::ShutdownUnverified {
                plugs: report.into_iter().map(|u| u.message).collect(),
            })
        }
    }
}
