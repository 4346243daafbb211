//! The pure control core (docs/design.md §4): what each plug should be, given the
//! latest reading, what the plugs last reported and the time.
//!
//! `Controller` does no I/O and reads no clock: every input carries `now`,
//! and every decision comes back as `Output` (commands for the plug
//! workers, lines for the log, and typed `Notice`s for alerts). That keeps
//! each rule testable in microseconds with a fabricated clock, and keeps the
//! service thread a thin loop around it. Each plug is an explicit state
//! machine (`plug`); the thermostat rule is a pure function (`rules`).
//!
//! **Unknown is not off.** A plug whose state is unknown (nothing read yet,
//! or a switch that may have reached it and was not verified) counts as on
//! for the interlock and for safety, and is read again on the next cycle
//! until it is known.
//!
//! The rules, in the order they are applied to each plug every cycle:
//!
//! 1. **Demand** from the mode and the thresholds (with hysteresis: between
//!    the thresholds a plug holds its demand). A stale sensor replaces the
//!    demand with the plug's `fault_state`; before the first valid reading
//!    nothing is switched on; shutdown replaces it with `shutdown_state`.
//! 2. **Min on / min off** hold the current state until it has lasted long
//!    enough. Only safety offs (stale sensor, shutdown, interlock) cut a
//!    min-on short.
//! 3. **Interlock**: never both plugs on. A plug goes on only when the other
//!    is verified off with no switch-on under way and, if it may have been
//!    on, its off was verified at least `switchover_delay_s` ago. If both may
//!    be on, the one that should not be on is switched off at once.
//! 4. **Rate limiting**: a command is sent when the wanted state differs from
//!    the known one; the same command that succeeded is not repeated within
//!    `rate_limit_s`. A failure is not recorded, so the next cycle retries.
//!
//! Besides the cycle: every `reconcile_s` each plug's real state is read and
//! a difference is logged and corrected. A plug with a dead-man gets it
//! armed *before* each switch-on (the worker does that inside the switch),
//! re-armed right after the verified on and every third of `deadman_s`
//! while on, and removed after a verified off.
//!
//! Staleness is decided here and only here, from the time of the last valid
//! reading.

pub(crate) mod cascade;
pub(crate) mod mode;
pub(crate) mod plug;
pub(crate) mod rules;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use log::Level;

pub(crate) use cascade::{Cascade, CascadeSettings, Learned};
pub use mode::Mode;
pub(crate) use plug::{Deadman, Phase, Plug, PlugSettings};
use rules::on_off;
pub use rules::Band;

use crate::msg::{
    Completion, DeadmanKind, DeadmanReport, PlugCommand, PlugOutcome, PlugState, Role, SensorFault,
};
use crate::units::Units;

/// Everything the controller needs, in °C and [`Duration`]s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// The control mode.
    pub mode: Mode,
    /// The limits (until a profile moves them).
    pub limits: Band,
    /// Alarm below this, °C.
    pub alarm_low_c: Option<f64>,
    /// Alarm above this, °C.
    pub alarm_high_c: Option<f64>,
    /// See `rate_limit_s`.
    pub rate_limit: Duration,
    /// See `switchover_delay_s`.
    pub switchover_delay: Duration,
    /// See `reconcile_s`.
    pub reconcile: Duration,
    /// See `sensor.stale_after_s`.
    pub stale_after: Duration,
    /// A command with no outcome for this long is presumed lost (longer
    /// than the worker's worst case).
    pub lost_after: Duration,
    /// Units for the text of reasons and events.
    pub units: Units,
    /// The configured plugs.
    pub plugs: BTreeMap<Role, PlugSettings>,
    /// What makes the demand: hysteresis on the one sensor, or cascade.
    pub algorithm: Algorithm,
}

/// How the thermostat demand is made (config `control.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Algorithm {
    /// docs/design.md §4: on at one limit, off at the other (or the midpoint).
    #[default]
    Hysteresis,
    /// docs/design.md §16: a PID on the product sets the chamber setpoint, held by
    /// on/off control on the chamber sensor ([`cascade`]).
    Cascade(CascadeSettings),
}

/// A line for the log, decided by the controller and written by the service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// Log level.
    pub level: Level,
    /// The message.
    pub text: String,
}

/// Something a person should hear about (the alerts hook), as a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Notice {
    /// An alarm temperature was entered (`entered`) or left.
    Alarm {
        /// Which alarm.
        alarm: Alarm,
        /// Entered (true) or cleared (false).
        entered: bool,
        /// The temperature, °C.
        celsius: f64,
        /// The message.
        message: String,
    },
    /// No valid reading for `stale_after`: every plug went to its fault state.
    SensorStale {
        /// The message, with the last fault.
        message: String,
    },
    /// Valid readings are back.
    SensorRecovered {
        /// The temperature, °C.
        celsius: f64,
    },
    /// Cascade: no valid chamber reading for `stale_after`; control fell
    /// back to hysteresis on the product sensor.
    ChamberStale {
        /// The message, with the last fault.
        message: String,
    },
    /// Cascade: valid chamber readings are back; cascade control resumes.
    ChamberRecovered {
        /// The chamber temperature, °C.
        celsius: f64,
    },
    /// A command to a plug failed; `consecutive` counts the failures in a row.
    PlugFailed {
        /// The plug.
        role: Role,
        /// Failed commands in a row.
        consecutive: u32,
        /// The last error.
        error: String,
    },
    /// A command succeeded after `after` failures in a row.
    PlugRecovered {
        /// The plug.
        role: Role,
        /// How many had failed.
        after: u32,
    },
    /// The plug refuses dead-man rules.
    DeadmanUnsupported {
        /// The plug.
        role: Role,
        /// The message.
        message: String,
    },
}

/// What the controller wants done after an input.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Output {
    /// Commands for the plug workers, in order.
    pub commands: Vec<(Role, PlugCommand)>,
    /// The time by which the commands must be over (shutdown), if any.
    pub deadline: Option<Instant>,
    /// Lines for the log.
    pub events: Vec<Event>,
    /// Things to tell a person.
    pub notices: Vec<Notice>,
    /// Plugs that a read found in another state than wanted (a press of the
    /// button, the app, a power cut): they are being corrected.
    pub corrections: Vec<Role>,
}

impl Output {
    fn event(&mut self, level: Level, text: String) {
        self.events.push(Event { level, text });
    }
    fn send(&mut self, role: Role, cmd: PlugCommand) {
        self.commands.push((role, cmd));
    }
}

/// Which alarm is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Alarm {
    /// Below `alarm_low`.
    Low,
    /// Above `alarm_high`.
    High,
}

impl Alarm {
    /// `low` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::Low => "low",
            Alarm::High => "high",
        }
    }
}

/// The dead-man as the state file shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeadmanStatus {
    /// `deadman_s` is 0.
    Off,
    /// Not known.
    Unknown,
    /// No rule on the plug.
    Clear,
    /// Armed: the plug switches itself off within `remaining` at the latest.
    Armed {
        /// What kind.
        kind: DeadmanKind,
        /// The latest it fires from now.
        remaining: Duration,
    },
    /// The plug refuses dead-man rules.
    Unsupported,
}

impl DeadmanStatus {
    /// `off`, `unknown`, `clear`, `armed` or `unsupported`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadmanStatus::Off => "off",
            DeadmanStatus::Unknown => "unknown",
            DeadmanStatus::Clear => "clear",
            DeadmanStatus::Armed { .. } => "armed",
            DeadmanStatus::Unsupported => "unsupported",
        }
    }
}

/// One plug in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlugSnapshot {
    /// Its role.
    pub role: Role,
    /// `host:port`.
    pub address: String,
    /// What the controller wants it to be (after min on/off and interlock).
    pub desired: Option<bool>,
    /// What is known of the relay.
    pub state: PlugState,
    /// A switch under way.
    pub switching: Option<bool>,
    /// What is under way.
    pub phase: &'static str,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// How long it has been in its known state.
    pub state_for: Option<Duration>,
    /// Its dead-man.
    pub deadman: DeadmanStatus,
}

/// The controller's state after a cycle: what the state file and
/// `readings.jsonl` show.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The mode.
    pub mode: Mode,
    /// The limits in force.
    pub limits: Band,
    /// The latest valid temperature, °C.
    pub temperature_c: Option<f64>,
    /// Its age.
    pub reading_age: Option<Duration>,
    /// Why the plugs are as they are, for a person.
    pub reason: String,
    /// The active alarm.
    pub alarm: Option<Alarm>,
    /// The sensor is stale (no valid reading for `stale_after`).
    pub sensor_stale: bool,
    /// The latest sensor fault, cleared by a valid reading.
    pub sensor_fault: Option<String>,
    /// Every configured plug.
    pub plugs: Vec<PlugSnapshot>,
    /// Shutting down.
    pub shutting_down: bool,
    /// The chamber sensor and setpoint (cascade control).
    pub chamber: ChamberView,
}

/// A plug that shutdown could not verify in its shutdown state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unverified {
    /// The plug.
    pub role: Role,
    /// What is known, in one line for the ERROR log (`heater 10.0.0.5:9999:
    /// state unknown after 3 attempts; its dead-man switches it off within 120 s`).
    pub message: String,
}

/// The control state machine. See the module docs for the rules.
#[derive(Debug)]
pub(crate) struct Controller {
    s: Settings,
    plugs: BTreeMap<Role, Plug>,
    started_at: Option<Instant>,
    reading: Option<(f64, Instant)>,
    sensor_fault: Option<String>,
    stale: bool,
    alarm: Option<Alarm>,
    reason: String,
    /// Shutting down: commands go out with this deadline.
    shutdown: Option<Instant>,
    /// The last failed shutdown attempts per plug, for the report.
    shutdown_attempts: BTreeMap<Role, u32>,
    /// Plugs whose shutdown switch was verified (read back).
    shutdown_verified: std::collections::BTreeSet<Role>,
    /// Every plug held off (a profile ended with `after_end: off`).
    held_off: bool,
    /// The latest valid chamber reading (cascade), °C.
    chamber: Option<(f64, Instant)>,
    /// The latest chamber sensor fault, cleared by a valid reading.
    chamber_fault: Option<String>,
    /// The chamber sensor is stale: hysteresis on the product sensor.
    chamber_stale: bool,
    /// The cascade, when `algorithm` is cascade.
    cascade: Option<Cascade>,
    /// The cascade's last decision (in charge this cycle), for the snapshot.
    cascade_decision: Option<cascade::Decision>,
}

/// The chamber side of cascade control after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChamberView {
    /// The latest valid chamber reading, °C.
    pub temperature_c: Option<f64>,
    /// The chamber setpoint while the cascade is in charge, °C.
    pub setpoint_c: Option<f64>,
    /// The chamber sensor is stale (control fell back to hysteresis).
    pub stale: bool,
}

impl Controller {
    /// A controller for these settings. Call [`Controller::start`] first.
    pub fn new(settings: Settings) -> Controller {
        let settings_algorithm = settings.algorithm;
        let units = settings.units;
        let plugs = settings
            .plugs
            .iter()
            .map(|(role, p)| (*role, Plug::new(p.clone())))
            .collect();
        Controller {
            s: settings,
            plugs,
            started_at: None,
            reading: None,
            sensor_fault: None,
            stale: false,
            alarm: None,
            reason: "starting: reading each plug's state".to_string(),
            shutdown: None,
            shutdown_attempts: BTreeMap::new(),
            shutdown_verified: Default::default(),
            held_off: false,
            chamber: None,
            chamber_fault: None,
            chamber_stale: false,
            cascade: match settings_algorithm {
                Algorithm::Cascade(c) => Some(Cascade::new(c, None, units)),
                Algorithm::Hysteresis => None,
            },
            cascade_decision: None,
        }
    }

    /// What cascade control has learned (`None` under hysteresis).
    pub(crate) fn learned(&self) -> Option<Learned> {
        self.cascade.as_ref().map(Cascade::learned)
    }

    /// Starts cascade control from what an earlier run learned.
    pub(crate) fn set_learned(&mut self, learned: Learned) {
        if let Some(c) = &mut self.cascade {
            *c = Cascade::new(*c.settings(), Some(learned), self.s.units);
        }
    }

    /// The chamber side of cascade control.
    pub(crate) fn chamber_view(&self) -> ChamberView {
        ChamberView {
            temperature_c: self.chamber.map(|(t, _)| t),
            setpoint_c: self.cascade_decision.as_ref().map(|d| d.chamber_set_c),
            stale: self.chamber_stale,
        }
    }

    /// A valid chamber reading (offset applied), in °C.
    pub(crate) fn on_chamber_reading(&mut self, now: Instant, celsius: f64) -> Output {
        let mut out = Output::default();
        if let Some(fault) = self.chamber_fault.take() {
            out.event(
                Level::Info,
                format!(
                    "chamber sensor reads again ({}) after: {fault}",
                    self.temp(celsius)
                ),
            );
        }
        self.chamber = Some((celsius, now));
        out
    }

    /// A rejected chamber reading. Only staleness changes anything.
    pub(crate) fn on_chamber_fault(&mut self, _now: Instant, fault: &SensorFault) -> Output {
        let mut out = Output::default();
        let text = fault.to_string();
        if self.chamber_fault.as_deref() != Some(text.as_str()) {
            out.event(
                Level::Warn,
                format!("chamber sensor fault {}: {text}", fault.kind()),
            );
        }
        self.chamber_fault = Some(text);
        out
    }

    fn temp(&self, c: f64) -> String {
        format!("{:.2} {}", self.s.units.from_c(c), self.s.units.symbol())
    }

    fn label(&self, role: Role) -> String {
        match self.plugs.get(&role) {
            Some(p) => format!("{role} {}", p.settings.address),
            None => role.to_string(),
        }
    }

    /// Starts: reads each plug's real state before any decision.
    pub fn start(&mut self, now: Instant) -> Output {
        self.started_at = Some(now);
        let mut out = Output::default();
        for (role, plug) in self.plugs.iter_mut() {
            plug.phase = Phase::Starting;
            plug.last_read = Some(now);
            out.send(*role, PlugCommand::Read);
        }
        out
    }

    /// Moves the limits (a temperature profile); takes effect at the next tick.
    pub(crate) fn set_limits(&mut self, limits: Band) {
        self.s.limits = limits;
        self.held_off = false;
    }

    /// The limits from a profile: `None` holds every plug off (a profile
    /// that ended with `after_end: off`).
    pub(crate) fn set_band(&mut self, band: Option<Band>) {
        match band {
            Some(l) => self.set_limits(l),
            None => self.held_off = true,
        }
    }

    /// New settings while running (a reload, an override): each plug keeps
    /// what is known of it, and the next tick decides with the new rules.
    /// A profile's limits, when one runs, come back at its next tick.
    pub(crate) fn reconfigure(&mut self, settings: Settings) {
        for (role, plug) in self.plugs.iter_mut() {
            if let Some(p) = settings.plugs.get(role) {
                plug.settings = p.clone();
            }
        }
        // A new algorithm or tuning: the cascade keeps what it learned.
        if settings.algorithm != self.s.algorithm {
            let learned = self.learned();
            self.cascade = match settings.algorithm {
                Algorithm::Cascade(c) => Some(Cascade::new(c, learned, settings.units)),
                Algorithm::Hysteresis => None,
            };
            self.cascade_decision = None;
        }
        self.s = settings;
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> Band {
        self.s.limits
    }

    /// A valid reading (offset applied), in °C.
    pub(crate) fn on_reading(&mut self, now: Instant, celsius: f64) -> Output {
        let mut out = Output::default();
        if self.reading.is_none() {
            out.event(
                Level::Info,
                format!("first valid reading: {}", self.temp(celsius)),
            );
        }
        if let Some(fault) = self.sensor_fault.take() {
            out.event(
                Level::Info,
                format!("sensor reads again ({}) after: {fault}", self.temp(celsius)),
            );
        }
        self.reading = Some((celsius, now));
        self.update_alarm(celsius, &mut out);
        out
    }

    /// A rejected reading. One fault switches nothing; only staleness does.
    pub(crate) fn on_sensor_fault(&mut self, _now: Instant, fault: &SensorFault) -> Output {
        let mut out = Output::default();
        let text = fault.to_string();
        if self.sensor_fault.as_deref() != Some(text.as_str()) {
            out.event(
                Level::Warn,
                format!("sensor fault {}: {text}", fault.kind()),
            );
        }
        self.sensor_fault = Some(text);
        out
    }

    /// What a plug worker reported.
    pub(crate) fn on_outcome(&mut self, now: Instant, o: &PlugOutcome) -> Output {
        let mut out = Output::default();
        let label = self.label(o.role);
        let shutting_down = self.shutdown.is_some();
        let Some(plug) = self.plugs.get_mut(&o.role) else {
            return out;
        };
        let role = o.role;
        let before = plug.state;
        match &o.completion {
            Completion::Done => {
                if plug.failures > 0 {
                    out.notices.push(Notice::PlugRecovered {
                        role,
                        after: plug.failures,
                    });
                }
                plug.failures = 0;
                plug.last_error = None;
            }
            Completion::Failed(f) => {
                plug.failures += 1;
                plug.last_error = Some(f.message.clone());
                out.notices.push(Notice::PlugFailed {
                    role,
                    consecutive: plug.failures,
                    error: f.message.clone(),
                });
                if shutting_down {
                    self.shutdown_attempts.insert(role, o.attempts);
                }
            }
            Completion::Superseded => {}
        }
        if shutting_down {
            if let (PlugCommand::Set { on, .. }, Completion::Done) = (&o.command, &o.completion) {
                if *on == plug.settings.shutdown_state {
                    self.shutdown_verified.insert(role);
                }
            }
        }
        match &o.command {
            PlugCommand::Set { on, deadman } => {
                if plug.switching() == Some(*on) && o.completion != Completion::Superseded {
                    plug.phase = Phase::Idle;
                }
                if let Some(state) = o.state {
                    plug.learn(state, now);
                }
                if *on && o.state == Some(PlugState::Unknown) {
                    plug.unverified_on = true;
                }
                if !*on && o.completion == Completion::Done {
                    if plug.unverified_on {
                        // The off that counters the unverified on: from
                        // here the switchover delay counts.
                        plug.off_after_on = Some(now);
                    }
                    plug.unverified_on = false;
                }
                match &o.completion {
                    Completion::Done => {
                        plug.last_success = Some((*on, now));
                        // The rule was armed before the relay closed; arm it
                        // again now that the on is verified, in case the
                        // firmware dropped it when the relay moved, and so it
                        // counts from the verified on.
                        if *on && deadman.is_some() && !shutting_down {
                            if let Some(delay) = plug.settings.deadman {
                                if plug.deadman != Deadman::Unsupported {
                                    plug.deadman_op = Some(now);
                                    out.send(role, PlugCommand::ArmDeadman { delay });
                                }
                            }
                        }
                        if *on && shutting_down && plug.settings.deadman.is_some() {
                            // Left on by request: it must stay on after we are gone.
                            plug.deadman_op = Some(now);
                            out.send(role, PlugCommand::ClearDeadman);
                        }
                    }
                    Completion::Failed(_) => {
                        let what = match o.state {
                            Some(PlugState::Unknown) => {
                                "its state is unknown (counted as on) and it is read again next cycle"
                            }
                            _ => "the next cycle tries again",
                        };
                        out.event(
                            Level::Warn,
                            format!(
                                "{role}: could not switch {} ({} attempts); {what}",
                                on_off(*on),
                                o.attempts
                            ),
                        );
                    }
                    Completion::Superseded => {}
                }
            }
            PlugCommand::Read => {
                if matches!(plug.phase, Phase::Starting | Phase::Reading(_)) {
                    let first = plug.phase == Phase::Starting;
                    plug.phase = Phase::Idle;
                    match (o.state, &o.completion) {
                        (Some(state), Completion::Done) if first => {
                            out.event(Level::Info, format!("{role}: is {state} at start"))
                        }
                        (_, Completion::Failed(_)) => out.event(
                            Level::Warn,
                            format!(
                                "{role}: could not read its state {}",
                                if first { "at start" } else { "to reconcile" }
                            ),
                        ),
                        _ => {}
                    }
                }
                if let Some(state) = o.state {
                    if let (Some(found), Some(wanted)) = (state.known(), plug.desired) {
                        if before.known() == Some(wanted)
                            && found != wanted
                            && plug.switching().is_none()
                        {
                            out.corrections.push(role);
                            out.event(
                                Level::Warn,
                                format!(
                                    "{role}: found {} but it should be {} (the button, the app or a power cut?); correcting",
                                    on_off(found),
                                    on_off(wanted)
                                ),
                            );
                        }
                    }
                    plug.learn(state, now);
                }
            }
            PlugCommand::ArmDeadman { .. } | PlugCommand::ClearDeadman => {
                plug.deadman_op = None;
            }
        }
        // What the command did to the dead-man.
        if let Some(report) = &o.deadman {
            let sent = now.checked_sub(o.elapsed).unwrap_or(now);
            let was_unsupported = plug.deadman == Deadman::Unsupported;
            plug.deadman = match report {
                DeadmanReport::Armed(kind) => Deadman::Armed {
                    sent,
                    done: now,
                    kind: *kind,
                },
                DeadmanReport::Cleared => Deadman::Clear,
                DeadmanReport::Unsupported(_) => Deadman::Unsupported,
                DeadmanReport::Failed(_) => Deadman::Unknown,
            };
            match report {
                DeadmanReport::Unsupported(msg) if !was_unsupported => {
                    plug.deadman_retry = Some(now);
                    let text = format!(
                        "{label} refuses dead-man rules ({msg}): nothing switches it off if the Pi, \
                         the network or this service dies; the arm is retried at each reconcile"
                    );
                    out.event(Level::Error, text.clone());
                    out.notices.push(Notice::DeadmanUnsupported {
                        role,
                        message: text,
                    });
                }
                DeadmanReport::Armed(_) if was_unsupported => out.event(
                    Level::Info,
                    format!("{role}: the plug accepts its dead-man rule now"),
                ),
                DeadmanReport::Failed(_) if o.command != PlugCommand::ClearDeadman => {
                    out.event(
                        Level::Warn,
                        format!("{role}: could not arm its dead-man countdown"),
                    );
                }
                _ => {}
            }
        }
        out
    }

    /// One control cycle at `now`: decides each plug and returns the commands.
    pub fn tick(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        if self.shutdown.is_some() {
            // The shutdown commands are out; each plug's outcome ends it.
            return out;
        }
        self.expire_lost(now, &mut out);
        self.update_stale(now, &mut out);
        self.update_chamber_stale(now, &mut out);
        self.cascade_decision = self.cascade_step(now, &mut out);
        let reason = self.decide(now, &mut out);
        if reason != self.reason {
            out.event(Level::Info, format!("decision: {reason}"));
        }
        self.reason = reason;
        self.reconcile(now, &mut out);
        self.deadman(now, &mut out);
        out
    }

    /// Shutdown: every plug to its `shutdown_state`, at once (safety cuts
    /// min-on short; the rate limit does not apply), every command over by
    /// `deadline`. A plug shut off keeps its dead-man until the off is
    /// verified. Feed outcomes until [`Controller::shutdown_done`].
    pub(crate) fn shutdown(&mut self, now: Instant, deadline: Instant) -> Output {
        let mut out = Output {
            deadline: Some(deadline),
            ..Output::default()
        };
        self.shutdown = Some(deadline);
        out.event(
            Level::Info,
            "shutting down: every plug to its shutdown state".to_string(),
        );
        for (role, plug) in self.plugs.iter_mut() {
            let want = plug.settings.shutdown_state;
            plug.desired = Some(want);
            plug.phase = Phase::Switching {
                to: want,
                since: now,
            };
            // Off: the dead-man is removed only after the verified off.
            // On: no new rule; the old one is removed after the verified on.
            let deadman = if want { None } else { plug.settings.deadman };
            out.send(*role, PlugCommand::Set { on: want, deadman });
        }
        self.reason = "shutting down".to_string();
        out
    }

    /// Whether every plug's shutdown command has finished (or its time is up).
    pub(crate) fn shutdown_done(&self, now: Instant) -> bool {
        match self.shutdown {
            Some(deadline) => {
                now >= deadline
                    || self
                        .plugs
                        .values()
                        .all(|p| p.switching().is_none() && p.deadman_op.is_none())
            }
            None => false,
        }
    }

    /// The plugs not verified in their shutdown state, each with what is
    /// known of it. Empty when every plug was read back as it should be.
    pub(crate) fn shutdown_report(&self, now: Instant) -> Vec<Unverified> {
        self.plugs
            .iter()
            .filter(|(role, _)| !self.shutdown_verified.contains(role))
            .map(|(role, p)| {
                let attempts = self.shutdown_attempts.get(role).copied().unwrap_or(0);
                let after = format!(
                    "after {attempts} attempt{}",
                    if attempts == 1 { "" } else { "s" }
                );
                let what = match (p.state, p.switching()) {
                    (_, Some(_)) => "no verified answer in time; state unknown".to_string(),
                    (PlugState::Unknown, None) => format!("state unknown {after}"),
                    (s, None) if s.known() == Some(p.settings.shutdown_state) => {
                        format!("not read back {after} (last known {s})")
                    }
                    (s, None) => format!(
                        "still {s} {after} (wanted {})",
                        on_off(p.settings.shutdown_state)
                    ),
                };
                let guard = match (p.settings.deadman, p.deadman) {
                    (None, _) => "it has no dead-man: check it by hand".to_string(),
                    (Some(_), Deadman::Armed { done, kind, .. }) => {
                        let due = done + kind.delay();
                        match due.checked_duration_since(now).filter(|d| !d.is_zero()) {
                            Some(left) => format!(
                                "its dead-man switches it off within {} s",
                                left.as_secs_f64().ceil() as u64
                            ),
                            // "within 0 s" would read as a promise about the
                            // future; the rule has already run out.
                            None => format!(
                                "its dead-man has switched it off by now (its rule ran out {} s ago)",
                                now.saturating_duration_since(due).as_secs_f64().floor() as u64
                            ),
                        }
                    }
                    (Some(d), Deadman::Unknown) => format!(
                        "its dead-man ({} s) may be armed: check it by hand",
                        d.as_secs_f64().ceil() as u64
                    ),
                    (Some(_), Deadman::Clear | Deadman::Unsupported) => {
                        "no dead-man is armed: check it by hand".to_string()
                    }
                };
                Unverified {
                    role: *role,
                    message: format!("{role} {}: {what}; {guard}", p.settings.address),
                }
            })
            .collect()
    }

    /// The state for the state file and the data log.
    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            mode: self.s.mode,
            limits: self.s.limits,
            temperature_c: self.reading.map(|(t, _)| t),
            reading_age: self
                .reading
                .map(|(_, at)| now.saturating_duration_since(at)),
            reason: self.reason.clone(),
            alarm: self.alarm,
            sensor_stale: self.stale,
            sensor_fault: self.sensor_fault.clone(),
            plugs: self
                .plugs
                .iter()
                .map(|(role, p)| PlugSnapshot {
                    role: *role,
                    address: p.settings.address.clone(),
                    desired: p.desired,
                    // Read off after an unverified switch-on: it may still
                    // switch on, so it is shown (and counted) as unknown.
                    state: if p.unverified_on && p.state == PlugState::Off {
                        PlugState::Unknown
                    } else {
                        p.state
                    },
                    switching: p.switching(),
                    phase: p.phase.as_str(),
                    last_error: p.last_error.clone(),
                    state_for: p.state_for(now),
                    deadman: match (p.settings.deadman, p.deadman) {
                        (None, _) => DeadmanStatus::Off,
                        (_, Deadman::Unknown) => DeadmanStatus::Unknown,
                        (_, Deadman::Clear) => DeadmanStatus::Clear,
                        (_, Deadman::Unsupported) => DeadmanStatus::Unsupported,
                        (_, Deadman::Armed { done, kind, .. }) => DeadmanStatus::Armed {
                            kind,
                            remaining: (done + kind.delay()).saturating_duration_since(now),
                        },
                    },
                })
                .collect(),
            shutting_down: self.shutdown.is_some(),
            chamber: self.chamber_view(),
        }
    }

    /// A command that got no outcome for `lost_after` is presumed lost; a
    /// lost switch may have reached the plug, so its state becomes unknown.
    fn expire_lost(&mut self, now: Instant, out: &mut Output) {
        let lost_after = self.s.lost_after;
        let lost = |t: Instant| now.saturating_duration_since(t) > lost_after;
        for (role, plug) in self.plugs.iter_mut() {
            match plug.phase {
                Phase::Switching { since, to } if lost(since) => {
                    out.event(
                        Level::Warn,
                        format!("{role}: no outcome of its switch; its state is unknown"),
                    );
                    plug.phase = Phase::Idle;
                    plug.learn(PlugState::Unknown, now);
                    plug.unverified_on |= to;
                }
                Phase::Reading(since) if lost(since) => plug.phase = Phase::Idle,
                Phase::Starting if self.started_at.is_some_and(lost) => plug.phase = Phase::Idle,
                _ => {}
            }
            if plug.deadman_op.is_some_and(lost) {
                plug.deadman_op = None;
            }
        }
    }

    fn update_alarm(&mut self, t: f64, out: &mut Output) {
        let alarm = match (self.s.alarm_low_c, self.s.alarm_high_c) {
            (Some(lo), _) if t < lo => Some(Alarm::Low),
            (_, Some(hi)) if t > hi => Some(Alarm::High),
            _ => None,
        };
        if alarm == self.alarm {
            return;
        }
        if let Some(old) = self.alarm {
            let message = format!("alarm {} cleared at {}", old.as_str(), self.temp(t));
            out.event(Level::Warn, message.clone());
            out.notices.push(Notice::Alarm {
                alarm: old,
                entered: false,
                celsius: t,
                message,
            });
        }
        if let Some(new) = alarm {
            let limit = match new {
                Alarm::Low => format!(
                    "below alarm_low {}",
                    self.temp(self.s.alarm_low_c.unwrap_or(t))
                ),
                Alarm::High => format!(
                    "above alarm_high {}",
                    self.temp(self.s.alarm_high_c.unwrap_or(t))
                ),
            };
            let message = format!("ALARM {}: {} is {limit}", new.as_str(), self.temp(t));
            out.event(Level::Warn, message.clone());
            out.notices.push(Notice::Alarm {
                alarm: new,
                entered: true,
                celsius: t,
                message,
            });
        }
        self.alarm = alarm;
    }

    fn update_stale(&mut self, now: Instant, out: &mut Output) {
        let since = match (self.reading, self.started_at) {
            (Some((_, at)), _) => at,
            (None, Some(start)) => start,
            (None, None) => now,
        };
        let age = now.saturating_duration_since(since);
        let stale = age > self.s.stale_after;
        if stale && !self.stale {
            let what = if self.reading.is_some() {
                "no valid reading"
            } else {
                "no valid reading since start"
            };
            let fault = self
                .sensor_fault
                .as_deref()
                .map(|f| format!(" (last fault: {f})"))
                .unwrap_or_default();
            let message = format!(
                "ALARM sensor: {what} for {:.0} s{fault}; every plug to its fault state",
                age.as_secs_f64()
            );
            out.event(Level::Error, message.clone());
            out.notices.push(Notice::SensorStale { message });
        } else if !stale && self.stale {
            out.event(Level::Warn, "sensor recovered; control resumes".to_string());
            if let Some((t, _)) = self.reading {
                out.notices.push(Notice::SensorRecovered { celsius: t });
            }
        }
        self.stale = stale;
    }

    /// Cascade only: a chamber sensor with no valid reading for
    /// `stale_after` (or none since start) hands control to hysteresis on
    /// the product sensor until it reads again.
    fn update_chamber_stale(&mut self, now: Instant, out: &mut Output) {
        if self.cascade.is_none() {
            return;
        }
        let since = match (self.chamber, self.started_at) {
            (Some((_, at)), _) => at,
            (None, Some(start)) => start,
            (None, None) => now,
        };
        let age = now.saturating_duration_since(since);
        let stale = age > self.s.stale_after;
        if stale && !self.chamber_stale {
            let fault = self
                .chamber_fault
                .as_deref()
                .map(|f| format!(" (last fault: {f})"))
                .unwrap_or_default();
            let message = format!(
                "chamber sensor: no valid reading for {:.0} s{fault}; hysteresis on the product sensor until it reads again",
                age.as_secs_f64()
            );
            out.event(Level::Error, message.clone());
            out.notices.push(Notice::ChamberStale { message });
        } else if !stale && self.chamber_stale {
            out.event(
                Level::Warn,
                "chamber sensor recovered; cascade control resumes".to_string(),
            );
            if let Some((t, _)) = self.chamber {
                out.notices.push(Notice::ChamberRecovered { celsius: t });
            }
            if let Some(c) = &mut self.cascade {
                c.restart();
            }
        }
        self.chamber_stale = stale;
    }

    /// Runs the cascade when it is in charge this cycle: configured, both
    /// sensors fresh, the profile not ended. Otherwise `None` (the product
    /// sensor's hysteresis or the fault state decides).
    fn cascade_step(&mut self, now: Instant, out: &mut Output) -> Option<cascade::Decision> {
        if self.stale || self.chamber_stale || self.held_off {
            return None;
        }
        let (product, _) = self.reading?;
        let (chamber, _) = self.chamber?;
        let seen = |role: Role| {
            self.plugs
                .get(&role)
                .filter(|_| rules::used(self.s.mode, role))
                .map(Plug::maybe_on)
        };
        let input = cascade::Inputs {
            product_c: product,
            chamber_c: chamber,
            target_c: (self.s.limits.low_c + self.s.limits.high_c) / 2.0,
            heater_on: seen(Role::Heater),
            cooler_on: seen(Role::Cooler),
        };
        let cascade = self.cascade.as_mut()?;
        let mut d = cascade.update(now, &input);
        if let Some(note) = cascade.take_note() {
            out.event(Level::Info, note);
        }
        // Made once here: both plugs give the same reason.
        d.why = self.cascade_reason(&d, product);
        Some(d)
    }

    /// The cascade's reason: the setpoint and its terms, then the plugs
    /// (`chamber setpoint 14.20 °C (product 19.40, target 19.00, P -2.0,
    /// I -0.6, D -0.2); cooler on: predicted peak 14.9 above setpoint`).
    fn cascade_reason(&self, d: &cascade::Decision, product: f64) -> String {
        let u = self.s.units;
        // + 0.0 turns a −0.0 into 0.0 ("D +0.0", not "D -0.0").
        let delta = |c: f64| u.from_c(c) - u.from_c(0.0) + 0.0;
        format!(
            "chamber setpoint {} (product {:.2}, target {:.2}, P {:+.1}, I {:+.1}, D {:+.1}); {}",
            self.temp(d.chamber_set_c),
            u.from_c(product),
            u.from_c((self.s.limits.low_c + self.s.limits.high_c) / 2.0),
            delta(d.p),
            delta(d.i),
            delta(d.d),
            d.why
        )
    }

    /// Reads each idle plug every `reconcile_s`, and an unknown one every cycle.
    fn reconcile(&mut self, now: Instant, out: &mut Output) {
        for (role, plug) in self.plugs.iter_mut() {
            if plug.phase != Phase::Idle {
                continue;
            }
            let due = plug
                .last_read
                .is_none_or(|t| now.saturating_duration_since(t) >= self.s.reconcile);
            if due || plug.state == PlugState::Unknown {
                plug.phase = Phase::Reading(now);
                plug.last_read = Some(now);
                out.send(*role, PlugCommand::Read);
            }
        }
    }

    /// The thermostat demand for `role` before min on/off and interlock,
    /// with the reason. `None` means "no opinion: hold whatever it is".
    fn demand(&self, role: Role) -> (Option<bool>, String) {
        let plug = &self.plugs[&role];
        if self.stale {
            return (
                Some(plug.settings.fault_state),
                "sensor stale: fault state".into(),
            );
        }
        if self.held_off {
            return (Some(false), "the profile has ended (after_end: off)".into());
        }
        let Some((t, _)) = self.reading else {
            return (None, "waiting for the first valid reading".into());
        };
        if let Some(d) = &self.cascade_decision {
            let want = rules::used(self.s.mode, role)
                && match role {
                    Role::Heater => d.heat,
                    Role::Cooler => d.cool,
                    Role::Manual => false,
                };
            return (Some(want), d.why.clone());
        }
        let held = plug.demand.or(plug.state.known()).unwrap_or(false);
        let (want, why) = rules::demand(self.s.mode, role, self.s.limits, t, held, self.s.units);
        (Some(want), why)
    }

    fn decide(&mut self, now: Instant, out: &mut Output) -> String {
        let roles: Vec<Role> = self.plugs.keys().copied().collect();
        let mut reasons = Vec::new();
        let safety = self.stale;
        // Demands first, so the interlock can see both.
        let mut wants = BTreeMap::new();
        for role in &roles {
            let (demand, why) = self.demand(*role);
            if demand.is_some() && !safety {
                self.plugs.get_mut(role).expect("role").demand = demand;
            }
            wants.insert(*role, (demand, why));
        }
        for role in &roles {
            let (demand, mut why) = wants[role].clone();
            let other = roles.iter().copied().find(|r| r != role);
            let plug = &self.plugs[role];
            if plug.phase == Phase::Starting {
                reasons.push(format!("{role}: waiting for its first state read"));
                continue;
            }
            // No opinion yet (no reading): never switch on; an unknown plug
            // is read every cycle until known.
            let Some(mut want) = demand else {
                self.plugs.get_mut(role).expect("role").desired = plug.state.known();
                reasons.push(why);
                continue;
            };
            let other_maybe_on = other.is_some_and(|o| self.plugs[&o].maybe_on());
            // Interlock, safety side: both possibly on must end now.
            let interlock_off = plug.maybe_on() && other_maybe_on && !want;
            let cut_short = safety || interlock_off;
            // Min on / min off, on a known state only.
            if let (Some(state), Some(held_for)) = (plug.state.known(), plug.state_for(now)) {
                if state && !want && !cut_short && held_for < plug.settings.min_on {
                    want = true;
                    why = format!(
                        "{role} stays on for min_on_s ({:.0} s left)",
                        (plug.settings.min_on - held_for).as_secs_f64()
                    );
                } else if !state && want && held_for < plug.settings.min_off {
                    want = false;
                    why = format!(
                        "{role} stays off for min_off_s ({:.0} s left)",
                        (plug.settings.min_off - held_for).as_secs_f64()
                    );
                }
            }
            // Interlock: on only once the other is verified off long enough.
            if want && plug.state != PlugState::On {
                if let Some(o) = other {
                    let op = &self.plugs[&o];
                    if op.maybe_on() {
                        want = false;
                        let what = match (op.state, op.switching()) {
                            (PlugState::Unknown, _) => "state is unknown (counted as on)",
                            (_, Some(true)) => "is being switched on",
                            _ => "is on",
                        };
                        why = format!("{role} waits: {o} {what} (interlock)");
                    } else if let Some(off_at) = op.off_after_on {
                        let waited = now.saturating_duration_since(off_at);
                        if waited < self.s.switchover_delay {
                            want = false;
                            why = format!(
                                "{role} waits for switchover_delay_s after {o} off ({:.0} s left)",
                                (self.s.switchover_delay - waited).as_secs_f64()
                            );
                        }
                    }
                }
            }
            self.plugs.get_mut(role).expect("role").desired = Some(want);
            reasons.push(why);
            self.command(*role, want, now, out);
        }
        if reasons.is_empty() {
            reasons.push(format!("mode {}: no plug configured", self.s.mode));
        }
        reasons.dedup();
        reasons.join("; ")
    }

    /// Sends `Set { on: want }` unless it is already so, already under way,
    /// or was done successfully within the rate limit.
    fn command(&mut self, role: Role, want: bool, now: Instant, out: &mut Output) {
        let rate_limit = self.s.rate_limit;
        let plug = self.plugs.get_mut(&role).expect("role");
        // An unverified switch-on is countered by a verified switch-off,
        // even when a read already shows off.
        let must_counter = !want && plug.unverified_on;
        match plug.phase {
            Phase::Switching { to, .. } if to == want => return,
            Phase::Switching { .. } => {}
            _ if plug.state.known() == Some(want) && !must_counter => return,
            _ => {}
        }
        // The same successful command is not repeated within the rate limit
        // (a plug found otherwise right after, by a press of its button,
        // waits out the limit); an unknown state is never rate limited.
        if let Some((done, at)) = plug.last_success {
            if done == want
                && plug.state != PlugState::Unknown
                && !must_counter
                && now.saturating_duration_since(at) < rate_limit
            {
                return;
            }
        }
        plug.phase = Phase::Switching {
            to: want,
            since: now,
        };
        out.send(
            role,
            PlugCommand::Set {
                on: want,
                deadman: plug.settings.deadman,
            },
        );
    }

    /// Re-arms the dead-man of a plug that is on, every third of its delay;
    /// removes a leftover rule from a plug that is off.
    fn deadman(&mut self, now: Instant, out: &mut Output) {
        let reconcile = self.s.reconcile;
        for (role, plug) in self.plugs.iter_mut() {
            let Some(delay) = plug.settings.deadman else {
                continue;
            };
            if plug.deadman_op.is_some() || plug.phase != Phase::Idle {
                continue;
            }
            match (plug.state, plug.deadman) {
                (PlugState::On, Deadman::Armed { sent, kind, .. }) => {
                    // An auto-off counts from the switch-on and cannot be
                    // extended; re-setting it changes nothing.
                    let countdown = matches!(kind, DeadmanKind::Countdown { .. });
                    if countdown && now.saturating_duration_since(sent) >= delay / 3 {
                        plug.deadman_op = Some(now);
                        out.send(*role, PlugCommand::ArmDeadman { delay });
                    }
                }
                (PlugState::On, Deadman::Unsupported) => {
                    let due = plug
                        .deadman_retry
                        .is_none_or(|t| now.saturating_duration_since(t) >= reconcile);
                    if due {
                        plug.deadman_retry = Some(now);
                        plug.deadman_op = Some(now);
                        out.send(*role, PlugCommand::ArmDeadman { delay });
                    }
                }
                (PlugState::On, Deadman::Unknown | Deadman::Clear) => {
                    plug.deadman_op = Some(now);
                    out.send(*role, PlugCommand::ArmDeadman { delay });
                }
                (PlugState::Off, Deadman::Armed { .. } | Deadman::Unknown) => {
                    plug.deadman_op = Some(now);
                    out.send(*role, PlugCommand::ClearDeadman);
                }
                _ => {}
            }
        }
    }
}

impl Output {}

#[cfg(test)]
mod tests;
