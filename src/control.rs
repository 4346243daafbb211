//! The pure control core (DESIGN §5): what each plug should be, given the
//! latest reading, what the plugs last reported and the time.
//!
//! [`Controller`] does no I/O and reads no clock: every input carries `now`,
//! and every decision comes back as [`Output`] (commands for the plug workers
//! and events for the log). That keeps each rule testable in microseconds
//! with a fabricated clock, and keeps the service thread a thin loop around it.
//!
//! The rules, in the order they are applied to each plug every cycle:
//!
//! 1. **Demand** from the mode and the thresholds (with hysteresis: between the
//!    thresholds a plug holds its demand). A stale sensor replaces the demand
//!    with the plug's `fault_state`; before the first valid reading nothing is
//!    switched on; shutdown replaces it with `shutdown_state`.
//! 2. **Min on / min off** hold the current state until it has lasted long
//!    enough. Only safety offs (stale sensor, shutdown, interlock) cut a
//!    min-on short.
//! 3. **Interlock**: never both plugs on. A plug goes on only when the other is
//!    known off, has no switch-on under way, and, if it has been on, its off was
//!    verified at least `switchover_delay_s` ago. If both are found on (a press
//!    of a button), the one that should not be on is switched off at once.
//! 4. **Rate limiting**: a command is sent when the wanted state differs from
//!    the last known one; the same command that succeeded is not repeated within
//!    `rate_limit_s`. A failure is not recorded, so the next cycle retries.
//!
//! Besides the cycle: every `reconcile_s` each plug's real state is read and a
//! difference is logged and corrected; while a plug with a dead-man is on its
//! countdown rule is re-armed every third of `deadman_s`, and removed when it
//! goes off.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use log::Level;

use crate::config::{Config, Mode, Units};
use crate::kasa::worker::{PlugCommand, PlugOutcome};
use crate::Role;

/// A command or a dead-man operation that got no outcome for this long is
/// presumed lost and may be sent again. The worker's worst case with the
/// default timing is about 47 s (3 × 14.5 s + 3 s of sleeps).
const LOST_COMMAND_AFTER: Duration = Duration::from_secs(120);

/// The settings of one plug, in the units the controller works in.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugSettings {
    /// Shortest on period.
    pub min_on: Duration,
    /// Shortest off period.
    pub min_off: Duration,
    /// Dead-man countdown; `None` disables it.
    pub deadman: Option<Duration>,
    /// State while the sensor has failed.
    pub fault_state: bool,
    /// State the service leaves the plug in.
    pub shutdown_state: bool,
}

/// Everything the controller needs from the config, in °C and [`Duration`]s.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The control mode.
    pub mode: Mode,
    /// Lower limit, °C.
    pub low_c: f64,
    /// Upper limit, °C.
    pub high_c: f64,
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
    /// Units for the text of reasons and events.
    pub units: Units,
    /// The configured plugs.
    pub plugs: BTreeMap<Role, PlugSettings>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl Settings {
    /// Takes the control settings out of a validated config.
    pub fn from_config(config: &Config) -> Settings {
        let plugs = config
            .plugs()
            .into_iter()
            .map(|(role, p)| {
                let settings = PlugSettings {
                    min_on: secs(p.min_on_s),
                    min_off: secs(p.min_off_s),
                    deadman: (p.deadman_s > 0.0).then(|| secs(p.deadman_s)),
                    fault_state: p.fault_state.is_on(),
                    shutdown_state: p.shutdown_state.is_on(),
                };
                (role, settings)
            })
            .collect();
        Settings {
            mode: config.mode,
            low_c: config.low_c(),
            high_c: config.high_c(),
            alarm_low_c: config.alarm_low_c(),
            alarm_high_c: config.alarm_high_c(),
            rate_limit: secs(config.rate_limit_s),
            switchover_delay: secs(config.switchover_delay_s),
            reconcile: secs(config.reconcile_s),
            stale_after: config.sensor.stale_after(),
            units: config.units,
            plugs,
        }
    }

    fn temp(&self, c: f64) -> String {
        format!("{:.2} {}", self.units.from_c(c), self.units.symbol())
    }
}

/// A line for the log, decided by the controller and written by the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Log level.
    pub level: Level,
    /// The message.
    pub text: String,
}

/// What the controller wants done after an input.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// Commands for the plug workers, in order.
    pub commands: Vec<(Role, PlugCommand)>,
    /// Lines for the log.
    pub events: Vec<Event>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One plug in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlugSnapshot {
    /// Its role.
    pub role: Role,
    /// What the controller wants it to be (after min on/off and interlock).
    pub desired: Option<bool>,
    /// Its last verified or read state; `None` until known.
    pub verified: Option<bool>,
    /// A switch under way.
    pub pending: Option<bool>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
    /// How long it has been in its verified state.
    pub state_for: Option<Duration>,
    /// Whether its dead-man countdown is armed.
    pub deadman_armed: bool,
}

/// The controller's state after a cycle: what the state file and
/// `readings.jsonl` show.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The mode.
    pub mode: Mode,
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
}

/// The dead-man countdown rule on a plug, as far as the controller knows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Deadman {
    /// Not known (at start): cleared when the plug is off, armed when on.
    Unknown,
    /// No rule.
    Clear,
    /// Armed at this time.
    Armed(Instant),
}

#[derive(Debug)]
struct Plug {
    settings: PlugSettings,
    /// The demand with hysteresis (what the thresholds want).
    demand: Option<bool>,
    /// What the rules settled on in the last cycle.
    desired: Option<bool>,
    /// Last verified or read state.
    verified: Option<bool>,
    /// When `verified` last changed (or was first learned).
    since: Option<Instant>,
    /// When it was last verified off after having been seen on.
    off_after_on: Option<Instant>,
    /// The first state read has come back (successfully or not).
    started: bool,
    /// A Set under way: wanted state and when it was sent.
    pending: Option<(bool, Instant)>,
    /// A Read under way since.
    reading: Option<Instant>,
    /// A dead-man operation under way since.
    deadman_op: Option<Instant>,
    deadman: Deadman,
    /// The last successful Set, for rate limiting.
    last_success: Option<(bool, Instant)>,
    last_read: Option<Instant>,
    last_error: Option<String>,
}

impl Plug {
    fn new(settings: PlugSettings) -> Plug {
        Plug {
            settings,
            demand: None,
            desired: None,
            verified: None,
            since: None,
            off_after_on: None,
            started: false,
            pending: None,
            reading: None,
            deadman_op: None,
            deadman: Deadman::Unknown,
            last_success: None,
            last_read: None,
            last_error: None,
        }
    }

    /// Records a known state; `since` moves only when the state changes.
    fn learn(&mut self, state: bool, now: Instant) {
        if self.verified != Some(state) {
            if self.verified == Some(true) && !state {
                self.off_after_on = Some(now);
            }
            self.since = Some(now);
        }
        self.verified = Some(state);
    }

    fn state_for(&self, now: Instant) -> Option<Duration> {
        self.since.map(|s| now.saturating_duration_since(s))
    }

    /// Whether this plug might be on: known on, or a switch-on under way.
    fn maybe_on(&self) -> bool {
        self.verified == Some(true) || matches!(self.pending, Some((true, _)))
    }
}

/// The control state machine. See the module docs for the rules.
#[derive(Debug)]
pub struct Controller {
    s: Settings,
    plugs: BTreeMap<Role, Plug>,
    started_at: Option<Instant>,
    reading: Option<(f64, Instant)>,
    sensor_fault: Option<String>,
    stale: bool,
    alarm: Option<Alarm>,
    reason: String,
    shutting_down: bool,
}

impl Controller {
    /// A controller for these settings. Call [`Controller::start`] first.
    pub fn new(settings: Settings) -> Controller {
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
            shutting_down: false,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.s
    }

    /// Starts: reads each plug's real state before any decision.
    pub fn start(&mut self, now: Instant) -> Output {
        self.started_at = Some(now);
        let mut out = Output::default();
        for (role, plug) in self.plugs.iter_mut() {
            plug.reading = Some(now);
            out.send(*role, PlugCommand::Read);
        }
        out
    }

    /// A valid reading (offset applied), in °C.
    pub fn on_reading(&mut self, now: Instant, celsius: f64) -> Output {
        let mut out = Output::default();
        if self.reading.is_none() {
            out.event(
                Level::Info,
                format!("first valid reading: {}", self.s.temp(celsius)),
            );
        }
        if let Some(fault) = self.sensor_fault.take() {
            out.event(
                Level::Info,
                format!(
                    "sensor reads again ({}) after: {fault}",
                    self.s.temp(celsius)
                ),
            );
        }
        self.reading = Some((celsius, now));
        self.update_alarm(celsius, &mut out);
        out
    }

    /// A rejected reading. One fault switches nothing; only staleness does.
    pub fn on_sensor_fault(&mut self, _now: Instant, fault: String) -> Output {
        let mut out = Output::default();
        if self.sensor_fault.as_deref() != Some(fault.as_str()) {
            out.event(Level::Warn, format!("sensor fault: {fault}"));
        }
        self.sensor_fault = Some(fault);
        out
    }

    /// What a plug worker reported.
    pub fn on_outcome(&mut self, now: Instant, outcome: &PlugOutcome) -> Output {
        let mut out = Output::default();
        let Some(plug) = self.plugs.get_mut(&outcome.role) else {
            return out;
        };
        let role = outcome.role;
        match (&outcome.command, &outcome.result) {
            (PlugCommand::Set { on }, result) => {
                if plug.pending.map(|(want, _)| want) == Some(*on) {
                    plug.pending = None;
                }
                match result {
                    Ok(state) => {
                        let state = state.unwrap_or(*on);
                        plug.learn(state, now);
                        plug.last_error = None;
                        if state == *on {
                            plug.last_success = Some((*on, now));
                        }
                    }
                    Err(failure) => {
                        // Not recorded for rate limiting: the next cycle sends it
                        // again. The belief stays at the last verified state.
                        plug.last_error = Some(failure.last_error.clone());
                        out.event(
                            Level::Warn,
                            format!(
                                "{role}: could not switch {} ({} attempts); the next cycle tries again",
                                on_off(*on),
                                outcome.attempts
                            ),
                        );
                    }
                }
            }
            (PlugCommand::Read, result) => {
                plug.reading = None;
                let first = !plug.started;
                plug.started = true;
                match result {
                    Ok(Some(state)) => {
                        plug.last_read = Some(now);
                        plug.last_error = None;
                        if first {
                            out.event(
                                Level::Info,
                                format!("{role}: is {} at start", on_off(*state)),
                            );
                        } else if plug.verified.is_some()
                            && plug.verified != Some(*state)
                            && plug.pending.is_none()
                        {
                            out.event(
                                Level::Warn,
                                format!(
                                    "{role}: found {} but it should be {} (the button, the app or a power cut?); correcting",
                                    on_off(*state),
                                    on_off(!*state)
                                ),
                            );
                        }
                        plug.learn(*state, now);
                    }
                    Ok(None) => {}
                    Err(failure) => {
                        plug.last_read = Some(now);
                        plug.last_error = Some(failure.last_error.clone());
                        let when = if first { "at start" } else { "to reconcile" };
                        out.event(
                            Level::Warn,
                            format!("{role}: could not read its state {when}"),
                        );
                    }
                }
            }
            (PlugCommand::ArmDeadman { .. }, result) => {
                let sent = plug.deadman_op.take();
                match result {
                    Ok(_) => plug.deadman = Deadman::Armed(sent.unwrap_or(now)),
                    Err(failure) => {
                        plug.deadman = Deadman::Unknown;
                        plug.last_error = Some(failure.last_error.clone());
                        out.event(
                            Level::Warn,
                            format!("{role}: could not arm its dead-man countdown"),
                        );
                    }
                }
            }
            (PlugCommand::ClearDeadman, result) => {
                plug.deadman_op = None;
                match result {
                    Ok(_) => plug.deadman = Deadman::Clear,
                    Err(failure) => {
                        plug.deadman = Deadman::Unknown;
                        plug.last_error = Some(failure.last_error.clone());
                    }
                }
            }
        }
        out
    }

    /// One control cycle at `now`: decides each plug and returns the commands.
    pub fn tick(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        if self.shutting_down {
            // The shutdown commands are out; each plug's outcome ends it.
            return out;
        }
        self.expire_lost(now);
        self.update_stale(now, &mut out);
        self.reconcile(now, &mut out);
        let reason = self.decide(now, &mut out);
        if reason != self.reason && !self.shutting_down {
            out.event(Level::Info, format!("decision: {reason}"));
        }
        self.reason = reason;
        self.deadman(now, &mut out);
        out
    }

    /// Shutdown: every plug to its `shutdown_state`, at once (safety cuts
    /// min-on short; the rate limit does not apply). Tick on until
    /// [`Controller::shutdown_done`].
    pub fn shutdown(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        self.shutting_down = true;
        out.event(
            Level::Info,
            "shutting down: every plug to its shutdown state".to_string(),
        );
        let roles: Vec<Role> = self.plugs.keys().copied().collect();
        for role in roles {
            let plug = self.plugs.get_mut(&role).expect("role from keys");
            let want = plug.settings.shutdown_state;
            plug.desired = Some(want);
            plug.pending = Some((want, now));
            out.send(role, PlugCommand::Set { on: want });
            // A plug left on by request must stay on after we are gone; a
            // plug left off needs no countdown either.
            if plug.settings.deadman.is_some() {
                plug.deadman_op = Some(now);
                out.send(role, PlugCommand::ClearDeadman);
            }
        }
        self.reason = "shutting down".to_string();
        out
    }

    /// Whether every plug has reached its shutdown state (verified) or has
    /// finished trying.
    pub fn shutdown_done(&self) -> bool {
        self.shutting_down && self.plugs.values().all(|p| p.pending.is_none())
    }

    /// Whether every plug is verified in its shutdown state.
    pub fn shutdown_verified(&self) -> bool {
        self.plugs
            .values()
            .all(|p| p.verified == Some(p.settings.shutdown_state))
    }

    /// The state for the state file and the data log.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            mode: self.s.mode,
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
                    desired: p.desired,
                    verified: p.verified,
                    pending: p.pending.map(|(on, _)| on),
                    last_error: p.last_error.clone(),
                    state_for: p.state_for(now),
                    deadman_armed: matches!(p.deadman, Deadman::Armed(_)),
                })
                .collect(),
            shutting_down: self.shutting_down,
        }
    }

    fn expire_lost(&mut self, now: Instant) {
        for plug in self.plugs.values_mut() {
            let lost = |t: Option<Instant>| {
                t.is_some_and(|t| now.saturating_duration_since(t) > LOST_COMMAND_AFTER)
            };
            if lost(plug.pending.map(|(_, t)| t)) {
                plug.pending = None;
            }
            if lost(plug.reading) {
                plug.reading = None;
                plug.started = true;
            }
            if lost(plug.deadman_op) {
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
        if alarm != self.alarm {
            if let Some(old) = self.alarm {
                out.event(
                    Level::Warn,
                    format!("alarm {} cleared at {}", old.as_str(), self.s.temp(t)),
                );
            }
            if let Some(new) = alarm {
                let limit = match new {
                    Alarm::Low => format!(
                        "below alarm_low {}",
                        self.s.temp(self.s.alarm_low_c.unwrap_or(t))
                    ),
                    Alarm::High => format!(
                        "above alarm_high {}",
                        self.s.temp(self.s.alarm_high_c.unwrap_or(t))
                    ),
                };
                out.event(
                    Level::Warn,
                    format!("ALARM {}: {} is {limit}", new.as_str(), self.s.temp(t)),
                );
            }
            self.alarm = alarm;
        }
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
            out.event(
                Level::Error,
                format!(
                    "ALARM sensor: {what} for {:.0} s{fault}; every plug to its fault state",
                    age.as_secs_f64()
                ),
            );
        } else if !stale && self.stale {
            out.event(Level::Warn, "sensor recovered; control resumes".to_string());
        }
        self.stale = stale;
    }

    fn reconcile(&mut self, now: Instant, out: &mut Output) {
        if self.shutting_down {
            return;
        }
        for (role, plug) in self.plugs.iter_mut() {
            let due = plug
                .last_read
                .is_none_or(|t| now.saturating_duration_since(t) >= self.s.reconcile);
            if plug.started && due && plug.reading.is_none() && plug.pending.is_none() {
                plug.reading = Some(now);
                // Until it answers, this counts as the reconcile of this period.
                plug.last_read = Some(now);
                out.send(*role, PlugCommand::Read);
            }
        }
    }

    /// The thermostat demand for `role` before min on/off and interlock, with
    /// the reason. `None` means "no opinion: hold whatever it is".
    fn demand(&self, role: Role) -> (Option<bool>, String) {
        let plug = &self.plugs[&role];
        if self.shutting_down {
            return (Some(plug.settings.shutdown_state), "shutting down".into());
        }
        if self.stale {
            return (
                Some(plug.settings.fault_state),
                "sensor stale: fault state".into(),
            );
        }
        let Some((t, _)) = self.reading else {
            return (None, "waiting for the first valid reading".into());
        };
        let s = &self.s;
        let mid = (s.low_c + s.high_c) / 2.0;
        let used = matches!(
            (s.mode, role),
            (Mode::Heat, Role::Heater) | (Mode::Cool, Role::Cooler) | (Mode::HeatCool, _)
        );
        if !used {
            return (Some(false), format!("mode {}", s.mode));
        }
        let held = plug.demand.or(plug.verified).unwrap_or(false);
        let temp = s.temp(t);
        let (on_at, off_at) = match (s.mode, role) {
            (Mode::Heat, _) => (s.low_c, s.high_c),
            (Mode::Cool, _) => (s.high_c, s.low_c),
            (_, Role::Heater) => (s.low_c, mid),
            (_, _) => (s.high_c, mid),
        };
        let heating = role == Role::Heater;
        let reach_on = if heating { t <= on_at } else { t >= on_at };
        let reach_off = if heating { t >= off_at } else { t <= off_at };
        let cmp_on = if heating { "<=" } else { ">=" };
        let cmp_off = if heating { ">=" } else { "<=" };
        if reach_on {
            (
                Some(true),
                format!("{temp} {cmp_on} {}: {role} on", s.temp(on_at)),
            )
        } else if reach_off {
            (
                Some(false),
                format!("{temp} {cmp_off} {}: {role} off", s.temp(off_at)),
            )
        } else {
            (
                Some(held),
                format!("{temp} between limits: {role} holds {}", on_off(held)),
            )
        }
    }

    fn decide(&mut self, now: Instant, out: &mut Output) -> String {
        let roles: Vec<Role> = self.plugs.keys().copied().collect();
        let mut reasons = Vec::new();
        let safety = self.shutting_down || self.stale;
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
            if !plug.started {
                reasons.push(format!("{role}: waiting for its first state read"));
                continue;
            }
            // No opinion yet (no reading): keep what it is, but never switch on.
            let Some(mut want) = demand else {
                self.plugs.get_mut(role).expect("role").desired = plug.verified;
                reasons.push(why);
                continue;
            };
            // Interlock, safety side: both on must end now.
            let other_on = other.is_some_and(|o| self.plugs[&o].maybe_on());
            let interlock_off = plug.verified == Some(true) && other_on && !want;
            let cut_short = safety || interlock_off;
            // Min on / min off.
            if let (Some(state), Some(held_for)) = (plug.verified, plug.state_for(now)) {
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
            // Interlock: on only once the other is known off for long enough.
            if want && plug.verified != Some(true) {
                if let Some(o) = other {
                    let op = &self.plugs[&o];
                    if op.maybe_on() {
                        want = false;
                        why = format!("{role} waits: {o} is on (interlock)");
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

    /// Sends `Set { on: want }` unless it is already so, already under way, or
    /// was done successfully within the rate limit.
    fn command(&mut self, role: Role, want: bool, now: Instant, out: &mut Output) {
        let rate_limit = self.s.rate_limit;
        let plug = self.plugs.get_mut(&role).expect("role");
        if plug.pending.map(|(w, _)| w) == Some(want) {
            return;
        }
        if plug.pending.is_none() && plug.verified == Some(want) {
            return;
        }
        if let Some((done, at)) = plug.last_success {
            if done == want && now.saturating_duration_since(at) < rate_limit {
                return;
            }
        }
        plug.pending = Some((want, now));
        out.send(role, PlugCommand::Set { on: want });
    }

    fn deadman(&mut self, now: Instant, out: &mut Output) {
        if self.shutting_down {
            return;
        }
        for (role, plug) in self.plugs.iter_mut() {
            let Some(delay) = plug.settings.deadman else {
                continue;
            };
            if plug.deadman_op.is_some() || plug.pending.is_some() || !plug.started {
                continue;
            }
            match (plug.verified, plug.deadman) {
                (Some(true), Deadman::Armed(at))
                    if now.saturating_duration_since(at) < delay / 3 => {}
                (Some(true), _) => {
                    plug.deadman_op = Some(now);
                    out.send(*role, PlugCommand::ArmDeadman { delay });
                }
                (Some(false), Deadman::Armed(_) | Deadman::Unknown) => {
                    plug.deadman_op = Some(now);
                    out.send(*role, PlugCommand::ClearDeadman);
                }
                _ => {}
            }
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    //! Each rule as a short scenario over a fake clock and fake plugs that do
    //! what they are told (unless told to fail), so a test reads like data.

    use super::*;
    use crate::kasa::worker::PlugFailure;

    /// The controller plus a world of plugs that answer its commands at once.
    struct World {
        c: Controller,
        t0: Instant,
        now: Instant,
        real: BTreeMap<Role, bool>,
        failing: Vec<Role>,
        sent: Vec<(f64, Role, PlugCommand)>,
        events: Vec<Event>,
        both_on_seen: bool,
    }

    /// A heat_cool config with `extra` (`,"key":value...`) replacing top-level keys.
    fn config(extra: &str) -> Config {
        let mut base: serde_json::Value = serde_json::from_str(
            r#"{"mode":"heat_cool","low_limit":18,"high_limit":20,"rate_limit_s":10,
                "switchover_delay_s":0,"reconcile_s":60,
                "sensor":{"stale_after_s":60},
                "heater":{"host":"127.0.0.1","port":1,"deadman_s":0},
                "cooler":{"host":"127.0.0.1","port":2,"deadman_s":0}}"#,
        )
        .unwrap();
        let extra: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", &extra[extra.len().min(1)..])).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        Config::from_json(&base.to_string()).unwrap()
    }

    impl World {
        fn new(extra: &str) -> World {
            World::with(config(extra), false, false)
        }
        fn with(config: Config, heater: bool, cooler: bool) -> World {
            let t0 = Instant::now();
            let mut real = BTreeMap::new();
            for (role, _) in config.plugs() {
                real.insert(role, if role == Role::Heater { heater } else { cooler });
            }
            let mut w = World {
                c: Controller::new(Settings::from_config(&config)),
                t0,
                now: t0,
                real,
                failing: vec![],
                sent: vec![],
                events: vec![],
                both_on_seen: false,
            };
            let out = w.c.start(t0);
            w.run(out);
            w
        }
        /// Moves the clock to `s` seconds after start.
        fn at(&mut self, s: f64) -> &mut World {
            self.now = self.t0 + Duration::from_secs_f64(s);
            self
        }
        fn reading(&mut self, t: f64) -> &mut World {
            let out = self.c.on_reading(self.now, t);
            self.run(out);
            self
        }
        fn tick(&mut self) -> &mut World {
            let out = self.c.tick(self.now);
            self.run(out);
            self
        }
        /// `reading` then `tick`.
        fn cycle(&mut self, s: f64, t: f64) -> &mut World {
            self.at(s).reading(t).tick()
        }
        fn run(&mut self, out: Output) {
            self.events.extend(out.events);
            for (role, cmd) in out.commands {
                let secs = self.now.duration_since(self.t0).as_secs_f64();
                self.sent.push((secs, role, cmd.clone()));
                let result = if self.failing.contains(&role) {
                    Err(PlugFailure {
                        last_error: format!("{role}: 127.0.0.1:1: connection refused"),
                    })
                } else {
                    match cmd {
                        PlugCommand::Set { on } => {
                            self.real.insert(role, on);
                            Ok(Some(on))
                        }
                        PlugCommand::Read => Ok(Some(self.real[&role])),
                        _ => Ok(None),
                    }
                };
                if self.real.values().all(|on| *on) && self.real.len() == 2 {
                    self.both_on_seen = true;
                }
                let outcome = PlugOutcome {
                    role,
                    command: cmd,
                    result,
                    attempts: 1,
                };
                let more = self.c.on_outcome(self.now, &outcome);
                self.run(more);
            }
        }
        /// The plug is found in `state` by a read (a press of its button).
        fn found(&mut self, role: Role, state: bool) -> &mut World {
            self.real.insert(role, state);
            let outcome = PlugOutcome {
                role,
                command: PlugCommand::Read,
                result: Ok(Some(state)),
                attempts: 1,
            };
            let out = self.c.on_outcome(self.now, &outcome);
            self.run(out);
            self
        }
        fn on(&self, role: Role) -> bool {
            self.real[&role]
        }
        fn sets(&self, role: Role) -> Vec<(f64, bool)> {
            self.sent
                .iter()
                .filter_map(|(t, r, c)| match c {
                    PlugCommand::Set { on } if *r == role => Some((*t, *on)),
                    _ => None,
                })
                .collect()
        }
        fn count(&self, role: Role, want: &PlugCommand) -> usize {
            self.sent
                .iter()
                .filter(|(_, r, c)| *r == role && c == want)
                .count()
        }
        fn logged(&self, needle: &str) -> bool {
            self.events.iter().any(|e| e.text.contains(needle))
        }
    }

    const H: Role = Role::Heater;
    const C: Role = Role::Cooler;

    #[test]
    fn start_reads_every_plug_before_any_decision() {
        let w = World::new("");
        let first: Vec<_> = w.sent.iter().map(|(_, r, c)| (*r, c.clone())).collect();
        assert_eq!(first, vec![(H, PlugCommand::Read), (C, PlugCommand::Read)]);
    }

    #[test]
    fn heat_mode_thresholds_with_hysteresis() {
        let mut w = World::new(r#","mode":"heat","cooler":null"#);
        // (time, temperature, heater on afterwards)
        let table = [
            (10.0, 19.0, false), // between limits, starts off: holds off
            (20.0, 18.01, false),
            (30.0, 18.0, true), // at low: on
            (40.0, 19.5, true), // between: holds on
            (50.0, 19.99, true),
            (60.0, 20.0, false), // at high: off
            (70.0, 18.5, false), // between: holds off
            (80.0, 10.0, true),
        ];
        for (t, temp, want) in table {
            w.cycle(t, temp);
            assert_eq!(w.on(H), want, "at {t} s, {temp} °C");
        }
    }

    #[test]
    fn cool_mode_thresholds_with_hysteresis() {
        let mut w = World::new(r#","mode":"cool","heater":null"#);
        let table = [
            (10.0, 19.0, false),
            (20.0, 20.0, true),
            (30.0, 18.5, true),
            (40.0, 18.0, false),
            (50.0, 19.9, false),
            (60.0, 25.0, true),
        ];
        for (t, temp, want) in table {
            w.cycle(t, temp);
            assert_eq!(w.on(C), want, "at {t} s, {temp} °C");
        }
    }

    #[test]
    fn heat_cool_switches_off_at_the_midpoint() {
        let mut w = World::new("");
        // (time, temperature, heater, cooler)
        let table = [
            (10.0, 17.0, true, false),
            (20.0, 18.9, true, false), // below the midpoint 19: heater holds
            (30.0, 19.0, false, false), // midpoint: heater off
            (40.0, 19.5, false, false),
            (50.0, 20.0, false, true),  // high: cooler on
            (60.0, 19.2, false, true),  // above the midpoint: cooler holds
            (70.0, 19.0, false, false), // midpoint: cooler off
        ];
        for (t, temp, heater, cooler) in table {
            w.cycle(t, temp);
            assert_eq!((w.on(H), w.on(C)), (heater, cooler), "at {t} s, {temp} °C");
        }
    }

    #[test]
    fn off_mode_switches_both_off() {
        let config = config(r#","mode":"off""#);
        let mut w = World::with(config, true, true);
        w.cycle(10.0, 10.0);
        assert!(!w.on(H) && !w.on(C));
    }

    #[test]
    fn nothing_is_switched_on_before_the_first_valid_reading() {
        let mut w = World::new("");
        for t in [10.0, 20.0, 30.0, 40.0, 50.0] {
            w.at(t).tick();
        }
        assert!(w.sets(H).is_empty() && w.sets(C).is_empty());
        assert!(w.c.snapshot(w.now).reason.contains("first valid reading"));
        w.cycle(55.0, 10.0);
        assert!(w.on(H));
    }

    #[test]
    fn no_reading_after_start_goes_to_fault_state() {
        // The heater was left on by a crashed predecessor; no reading comes.
        let mut w = World::with(config(""), true, false);
        w.at(30.0).tick();
        assert!(w.on(H), "no opinion yet: it holds");
        w.at(61.0).tick();
        assert!(!w.on(H), "stale since start: fault state off");
        assert!(w.logged("no valid reading since start"));
    }

    #[test]
    fn stale_sensor_goes_to_fault_state_and_recovers() {
        let mut w =
            World::new(r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":0,"min_on_s":600}"#);
        w.cycle(10.0, 15.0);
        assert!(w.on(H));
        let out =
            w.c.on_sensor_fault(w.now, "sensor 28-1: CRC mismatch".into());
        w.run(out);
        w.at(69.0).tick();
        assert!(
            w.on(H),
            "a fault alone switches nothing; 59 s is not stale yet"
        );
        w.at(71.0).tick();
        assert!(!w.on(H), "stale cuts min_on short");
        assert!(w.logged("CRC mismatch"), "the alarm names the last fault");
        w.cycle(80.0, 15.0);
        assert!(w.on(H), "control resumes");
        assert!(w.logged("sensor recovered"));
    }

    #[test]
    fn fault_state_on_is_honoured() {
        let mut w = World::new(
            r#","mode":"heat","cooler":null,"heater":{"host":"127.0.0.1","port":1,"deadman_s":0,"fault_state":"on"}"#,
        );
        w.cycle(10.0, 19.0);
        assert!(!w.on(H));
        w.at(80.0).tick();
        assert!(w.on(H));
    }

    #[test]
    fn min_on_and_min_off_hold_the_state() {
        let mut w = World::new(
            r#","mode":"heat","cooler":null,"heater":{"host":"127.0.0.1","port":1,"deadman_s":0,"min_on_s":120,"min_off_s":300}"#,
        );
        // Off since the start read at 0 s: min_off holds it off until 300 s.
        w.cycle(10.0, 10.0);
        assert!(!w.on(H));
        assert!(w.c.snapshot(w.now).reason.contains("min_off_s"));
        w.cycle(299.0, 10.0);
        assert!(!w.on(H));
        w.cycle(300.0, 10.0);
        assert!(w.on(H));
        // On at 300 s: min_on holds it on until 420 s despite the heat.
        w.cycle(310.0, 30.0);
        assert!(w.on(H));
        w.cycle(419.0, 30.0);
        assert!(w.on(H));
        w.cycle(420.0, 30.0);
        assert!(!w.on(H));
    }

    #[test]
    fn shutdown_cuts_min_on_short_and_reaches_shutdown_state() {
        let mut w = World::new(
            r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":0,"min_on_s":600},"cooler":{"host":"127.0.0.1","port":2,"deadman_s":0,"shutdown_state":"on"}"#,
        );
        w.cycle(10.0, 10.0);
        assert!(w.on(H));
        let out = w.c.shutdown(w.now);
        assert!(!w.c.shutdown_done());
        w.run(out);
        assert!(!w.on(H) && w.on(C));
        assert!(w.c.shutdown_done() && w.c.shutdown_verified());
        let before = w.sent.len();
        w.at(20.0).tick();
        assert_eq!(w.sent.len(), before, "no decisions after shutdown");
    }

    #[test]
    fn shutdown_ends_even_when_a_plug_fails() {
        let mut w = World::with(config(""), false, true);
        w.failing.push(C);
        let out = w.c.shutdown(w.now);
        w.run(out);
        assert!(w.c.shutdown_done());
        assert!(!w.c.shutdown_verified());
    }

    #[test]
    fn switchover_waits_for_verified_off_plus_delay() {
        let mut w = World::new(r#","switchover_delay_s":300"#);
        w.cycle(10.0, 25.0);
        assert!(w.on(C));
        w.cycle(20.0, 10.0); // cooler off now; heater must wait 300 s
        assert!(!w.on(C) && !w.on(H));
        w.cycle(30.0, 10.0);
        assert!(w.c.snapshot(w.now).reason.contains("switchover_delay_s"));
        w.cycle(319.0, 10.0);
        assert!(!w.on(H));
        w.cycle(320.0, 10.0);
        assert!(w.on(H));
    }

    #[test]
    fn heater_waits_while_the_cooler_cannot_be_switched_off() {
        let mut w =
            World::new(r#","cooler":{"host":"127.0.0.1","port":2,"deadman_s":0,"min_on_s":100}"#);
        w.cycle(10.0, 25.0);
        assert!(w.on(C));
        w.cycle(20.0, 10.0);
        assert!(w.on(C) && !w.on(H), "cooler's min_on holds; heater waits");
        assert!(w.c.snapshot(w.now).reason.contains("interlock"));
        w.failing.push(C);
        w.cycle(110.0, 10.0);
        assert!(
            w.on(C) && !w.on(H),
            "the cooler's off failed: still interlocked"
        );
        w.failing.clear();
        w.cycle(120.0, 10.0);
        assert!(!w.on(C));
        w.cycle(130.0, 10.0);
        assert!(w.on(H));
    }

    #[test]
    fn a_dead_cooler_does_not_stop_the_heater() {
        let config = config("");
        let t0 = Instant::now();
        let mut c = Controller::new(Settings::from_config(&config));
        c.start(t0);
        let fail = |role| PlugOutcome {
            role,
            command: PlugCommand::Read,
            result: Err(PlugFailure {
                last_error: "127.0.0.1:2: timed out".into(),
            }),
            attempts: 3,
        };
        c.on_outcome(t0, &fail(C));
        c.on_outcome(
            t0,
            &PlugOutcome {
                role: H,
                command: PlugCommand::Read,
                result: Ok(Some(false)),
                attempts: 1,
            },
        );
        let t = t0 + Duration::from_secs(10);
        c.on_reading(t, 10.0);
        let out = c.tick(t);
        assert!(out.commands.contains(&(H, PlugCommand::Set { on: true })));
    }

    #[test]
    fn both_found_on_ends_at_once_despite_min_on() {
        let mut w =
            World::new(r#","cooler":{"host":"127.0.0.1","port":2,"deadman_s":0,"min_on_s":600}"#);
        w.cycle(10.0, 10.0);
        assert!(w.on(H));
        w.real.insert(C, true); // someone presses the cooler's button
        w.cycle(70.0, 10.0); // the reconcile read finds it
        assert!(w.logged("cooler: found on"));
        w.cycle(80.0, 10.0); // and the next cycle acts
        assert!(
            w.on(H) && !w.on(C),
            "the cooler goes off at once, min_on or not"
        );
    }

    #[test]
    fn never_both_on_over_a_random_walk() {
        let mut w = World::new(r#","switchover_delay_s":30"#);
        let mut temp: f64 = 19.0;
        let mut seed: u64 = 0x2545F4914F6CDD1D;
        let mut switches = 0;
        for i in 1..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // A walk that keeps coming back to 19 °C, crossing every threshold.
            temp += ((seed % 1000) as f64 / 1000.0 - 0.5) * 1.5 + (19.0 - temp) * 0.05;
            if seed % 89 == 0 {
                // A power cut now and then: the plug is off without being told.
                let role = if seed % 2 == 0 { H } else { C };
                w.real.insert(role, false);
            }
            let before = w.sent.len();
            w.cycle(i as f64 * 10.0, temp);
            switches += w.sent.len() - before;
            assert!(!(w.on(H) && w.on(C)), "both on at {} s", i * 10);
        }
        assert!(!w.both_on_seen);
        assert!(
            w.sets(H).iter().filter(|(_, on)| *on).count() > 20,
            "the walk exercised the heater"
        );
        assert!(
            w.sets(C).iter().filter(|(_, on)| *on).count() > 20,
            "and the cooler"
        );
        assert!(switches > 0);
    }

    #[test]
    fn rate_limit_records_successes_only() {
        let mut w = World::new(r#","mode":"heat","cooler":null"#);
        // A failure is not recorded: the very next cycle sends it again.
        w.failing.push(H);
        w.cycle(10.0, 10.0);
        w.cycle(11.0, 10.0);
        assert_eq!(w.sets(H), vec![(10.0, true), (11.0, true)]);
        assert!(!w.on(H));
        // A success is: found off 4 s later, the same command waits until
        // rate_limit_s (10 s) after the success.
        w.failing.clear();
        w.cycle(12.0, 10.0);
        assert!(w.on(H));
        w.at(16.0).found(H, false).tick();
        w.at(21.9).tick();
        assert_eq!(w.sets(H).last(), Some(&(12.0, true)), "rate limited");
        w.at(22.0).tick();
        assert_eq!(w.sets(H).last(), Some(&(22.0, true)));
        assert!(w.on(H));
    }

    #[test]
    fn reconcile_reads_each_plug_every_period_and_corrects() {
        let mut w = World::new(r#","mode":"heat","cooler":null"#);
        for t in 1..=30 {
            w.cycle(t as f64 * 10.0, 19.0);
        }
        // Start read + one per 60 s over 300 s.
        assert_eq!(w.count(H, &PlugCommand::Read), 1 + 5);
        w.real.insert(H, true); // the app switched it on
        w.cycle(360.0, 19.5);
        assert!(w.logged("heater: found on"));
        w.cycle(370.0, 19.5);
        // Between limits it holds its demand (off), so it is corrected.
        assert!(!w.on(H));
    }

    #[test]
    fn deadman_is_armed_rearmed_and_cleared() {
        let mut w = World::new(
            r#","mode":"heat","cooler":null,"cycle_s":10,"heater":{"host":"127.0.0.1","port":1,"deadman_s":120}"#,
        );
        let arm = PlugCommand::ArmDeadman {
            delay: Duration::from_secs(120),
        };
        w.at(1.0).tick();
        assert_eq!(
            w.count(H, &PlugCommand::ClearDeadman),
            1,
            "leftover rules cleared at start"
        );
        w.cycle(10.0, 10.0);
        w.at(11.0).tick();
        assert_eq!(w.count(H, &arm), 1);
        for t in 2..=10 {
            w.cycle(t as f64 * 10.0, 10.0);
        }
        // Armed at 11 s, re-armed every 40 s: at 51 s and 91 s (ticks at 60, 100).
        assert_eq!(w.count(H, &arm), 3);
        assert!(w.c.snapshot(w.now).plugs[0].deadman_armed);
        w.cycle(110.0, 25.0);
        w.at(111.0).tick();
        assert!(!w.on(H));
        assert_eq!(w.count(H, &PlugCommand::ClearDeadman), 2);
        assert!(!w.c.snapshot(w.now).plugs[0].deadman_armed);
    }

    #[test]
    fn alarms_are_logged_on_entry_and_exit() {
        let mut w = World::new(r#","alarm_low":10,"alarm_high":30"#);
        w.cycle(10.0, 9.5);
        assert!(w.logged("ALARM low"));
        assert_eq!(w.c.snapshot(w.now).alarm, Some(Alarm::Low));
        w.cycle(20.0, 12.0);
        assert!(w.logged("alarm low cleared"));
        assert_eq!(w.c.snapshot(w.now).alarm, None);
        w.cycle(30.0, 31.0);
        assert_eq!(w.c.snapshot(w.now).alarm, Some(Alarm::High));
    }

    #[test]
    fn fahrenheit_limits_apply_in_celsius() {
        // 64.4 °F = 18 °C, 68 °F = 20 °C.
        let mut w = World::new(
            r#","units":"F","mode":"heat","cooler":null,"low_limit":64.4,"high_limit":68"#,
        );
        w.cycle(10.0, 18.1);
        assert!(!w.on(H));
        w.cycle(20.0, 17.9);
        assert!(w.on(H));
        assert!(w.c.snapshot(w.now).reason.contains("°F"));
    }
}
