//! Each rule as a short scenario over a fake clock and fake plugs that do
//! what they are told (unless told to misbehave), so a test reads like data.

use super::*;
use crate::config::Config;
use crate::msg::{FailureKind, PlugFailure};

/// How a fake plug misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Nothing reaches it: every command fails before a switch is sent.
    Dead,
    /// A switch reaches the relay, but the read-back never confirms it
    /// (a lagging relay, or a connection cut after the set): unknown.
    Unverified,
    /// It refuses dead-man rules (`-1 module not support`).
    NoCountdown,
    /// It acknowledges a switch but moves the relay this many seconds later
    /// (`simulate-plug --fault lag:MS`); reads show the old state until then.
    Lag(f64),
}

/// The controller plus a world of plugs that answer its commands at once.
struct World {
    c: Controller,
    t0: Instant,
    now: Instant,
    real: BTreeMap<Role, bool>,
    /// When each plug's dead-man rule fires, if armed.
    rule: BTreeMap<Role, Instant>,
    /// A lagging relay move: when, and to what.
    lagging: BTreeMap<Role, (Instant, bool)>,
    faults: BTreeMap<Role, Fault>,
    sent: Vec<(f64, Role, PlugCommand)>,
    events: Vec<Event>,
    notices: Vec<Notice>,
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

const H: Role = Role::Heater;
const C: Role = Role::Cooler;

impl World {
    fn new(extra: &str) -> World {
        World::with(config(extra), false, false)
    }
    fn with(config: Config, heater: bool, cooler: bool) -> World {
        World::with_settings(config.control_settings(), heater, cooler)
    }
    /// The same config under cascade control (BrewPi's defaults).
    fn cascade(extra: &str) -> World {
        let mut s = config(extra).control_settings();
        s.algorithm = Algorithm::Cascade(CascadeSettings::default());
        World::with_settings(s, false, false)
    }
    fn with_settings(settings: Settings, heater: bool, cooler: bool) -> World {
        let t0 = Instant::now();
        let mut real = BTreeMap::new();
        for role in settings.plugs.keys().copied() {
            real.insert(role, if role == H { heater } else { cooler });
        }
        let mut w = World {
            c: Controller::new(settings),
            t0,
            now: t0,
            real,
            rule: BTreeMap::new(),
            lagging: BTreeMap::new(),
            faults: BTreeMap::new(),
            sent: vec![],
            events: vec![],
            notices: vec![],
            both_on_seen: false,
        };
        let out = w.c.start(t0);
        w.run(out);
        w
    }
    fn secs(&self) -> f64 {
        self.now.duration_since(self.t0).as_secs_f64()
    }
    /// Moves the clock to `s` seconds after start; dead-man rules fire.
    fn at(&mut self, s: f64) -> &mut World {
        self.now = self.t0 + Duration::from_secs_f64(s);
        let due: Vec<Role> = self
            .rule
            .iter()
            .filter(|(_, at)| **at <= self.now)
            .map(|(r, _)| *r)
            .collect();
        for r in due {
            self.rule.remove(&r);
            self.real.insert(r, false);
        }
        let moved: Vec<(Role, bool)> = self
            .lagging
            .iter()
            .filter(|(_, (at, _))| *at <= self.now)
            .map(|(r, (_, on))| (*r, *on))
            .collect();
        for (r, on) in moved {
            self.lagging.remove(&r);
            self.real.insert(r, on);
        }
        if self.real.len() == 2 && self.real.values().all(|on| *on) {
            self.both_on_seen = true;
        }
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
    fn chamber(&mut self, t: f64) -> &mut World {
        let out = self.c.on_chamber_reading(self.now, t);
        self.run(out);
        self
    }
    /// Both sensors, then `tick`.
    fn cycle2(&mut self, s: f64, product: f64, chamber: f64) -> &mut World {
        self.at(s).reading(product).chamber(chamber).tick()
    }
    fn reason(&self) -> String {
        self.c.snapshot(self.now).reason
    }
    /// `reading` then `tick`.
    fn cycle(&mut self, s: f64, t: f64) -> &mut World {
        self.at(s).reading(t).tick()
    }
    fn fault(&mut self, role: Role, fault: Option<Fault>) -> &mut World {
        match fault {
            Some(f) => self.faults.insert(role, f),
            None => self.faults.remove(&role),
        };
        self
    }
    fn outcome(&mut self, role: Role, cmd: &PlugCommand) -> PlugOutcome {
        let fault = self.faults.get(&role).copied();
        let failed = |kind| {
            Completion::Failed(PlugFailure {
                kind,
                permanent: false,
                message: format!("{role}: 127.0.0.1:1: timed out"),
            })
        };
        let (completion, state, deadman) = match (cmd, fault) {
            (_, Some(Fault::Dead)) => (failed(FailureKind::Timeout), None, None),
            (PlugCommand::Set { on, deadman }, f) => {
                let mut report = None;
                if let (true, Some(d)) = (*on, deadman) {
                    if f == Some(Fault::NoCountdown) {
                        report = Some(DeadmanReport::Unsupported("module not support".into()));
                    } else {
                        self.rule.insert(role, self.now + *d);
                        report = Some(DeadmanReport::Armed(DeadmanKind::Countdown {
                            secs: d.as_secs() as u32,
                        }));
                    }
                }
                if let Some(Fault::Lag(secs)) = f {
                    // Acknowledged; the relay moves later; the read-back
                    // shows the old state.
                    self.lagging
                        .insert(role, (self.now + Duration::from_secs_f64(secs), *on));
                    return PlugOutcome {
                        role,
                        command: cmd.clone(),
                        completion: failed(FailureKind::Mismatch),
                        state: Some(PlugState::Unknown),
                        deadman: report,
                        attempts: 3,
                        attempt_times: vec![],
                        elapsed: Duration::ZERO,
                        rssi: None,
                    };
                }
                // A switch cancels a lagging move, as on the simulated plug.
                self.lagging.remove(&role);
                self.real.insert(role, *on);
                if f == Some(Fault::Unverified) {
                    (
                        failed(FailureKind::Mismatch),
                        Some(PlugState::Unknown),
                        report,
                    )
                } else {
                    if let (false, Some(_)) = (*on, deadman) {
                        self.rule.remove(&role);
                        report = Some(DeadmanReport::Cleared);
                    }
                    (Completion::Done, Some(PlugState::from_on(*on)), report)
                }
            }
            (PlugCommand::Read, _) => (
                Completion::Done,
                Some(PlugState::from_on(self.real[&role])),
                None,
            ),
            (PlugCommand::ArmDeadman { delay }, f) => {
                if f == Some(Fault::NoCountdown) {
                    (
                        Completion::Done,
                        None,
                        Some(DeadmanReport::Unsupported("module not support".into())),
                    )
                } else {
                    self.rule.insert(role, self.now + *delay);
                    (
                        Completion::Done,
                        None,
                        Some(DeadmanReport::Armed(DeadmanKind::Countdown {
                            secs: delay.as_secs() as u32,
                        })),
                    )
                }
            }
            (PlugCommand::ClearDeadman, _) => {
                self.rule.remove(&role);
                (Completion::Done, None, Some(DeadmanReport::Cleared))
            }
        };
        PlugOutcome {
            role,
            command: cmd.clone(),
            completion,
            state,
            deadman,
            attempts: 1,
            attempt_times: vec![Duration::ZERO],
            elapsed: Duration::ZERO,
            rssi: None,
        }
    }
    fn run(&mut self, out: Output) {
        self.events.extend(out.events);
        self.notices.extend(out.notices);
        for (role, cmd) in out.commands {
            let secs = self.secs();
            self.sent.push((secs, role, cmd.clone()));
            let outcome = self.outcome(role, &cmd);
            if self.real.len() == 2 && self.real.values().all(|on| *on) {
                self.both_on_seen = true;
            }
            let more = self.c.on_outcome(self.now, &outcome);
            self.run(more);
        }
    }
    /// The plug is found in `state` by a read (a press of its button).
    fn found(&mut self, role: Role, state: bool) -> &mut World {
        self.real.insert(role, state);
        let outcome = self.outcome(role, &PlugCommand::Read);
        let out = self.c.on_outcome(self.now, &outcome);
        self.run(out);
        self
    }
    fn on(&self, role: Role) -> bool {
        self.real[&role]
    }
    fn state(&self, role: Role) -> PlugState {
        let snap = self.c.snapshot(self.now);
        snap.plugs.iter().find(|p| p.role == role).unwrap().state
    }
    fn sets(&self, role: Role) -> Vec<(f64, bool)> {
        self.sent
            .iter()
            .filter_map(|(t, r, c)| match c {
                PlugCommand::Set { on, .. } if *r == role => Some((*t, *on)),
                _ => None,
            })
            .collect()
    }
    fn count(&self, role: Role, pred: impl Fn(&PlugCommand) -> bool) -> usize {
        self.sent
            .iter()
            .filter(|(_, r, c)| *r == role && pred(c))
            .count()
    }
    fn logged(&self, needle: &str) -> bool {
        self.events.iter().any(|e| e.text.contains(needle))
    }
}

fn is_read(c: &PlugCommand) -> bool {
    *c == PlugCommand::Read
}
fn is_arm(c: &PlugCommand) -> bool {
    matches!(c, PlugCommand::ArmDeadman { .. })
}
fn is_clear(c: &PlugCommand) -> bool {
    *c == PlugCommand::ClearDeadman
}

#[test]
fn start_reads_every_plug_before_any_decision() {
    let w = World::new("");
    let first: Vec<_> = w.sent.iter().map(|(_, r, c)| (*r, c.clone())).collect();
    assert_eq!(first, vec![(H, PlugCommand::Read), (C, PlugCommand::Read)]);
    assert_eq!(w.state(H), PlugState::Off);
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
        (20.0, 18.9, true, false),  // below the midpoint 19: heater holds
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
fn moved_limits_apply_at_the_next_tick() {
    let mut w = World::new(r#","mode":"heat","cooler":null"#);
    w.cycle(10.0, 19.0);
    assert!(!w.on(H));
    w.c.set_limits(Band {
        low_c: 19.5,
        high_c: 21.0,
    });
    w.cycle(20.0, 19.0);
    assert!(w.on(H));
    assert_eq!(w.c.snapshot(w.now).limits.low_c, 19.5);
}

#[test]
fn off_mode_switches_both_off() {
    let mut w = World::with(config(r#","mode":"off""#), true, true);
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
    assert!(w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::SensorStale { .. })));
}

#[test]
fn stale_sensor_goes_to_fault_state_and_recovers() {
    let mut w =
        World::new(r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":0,"min_on_s":600}"#);
    w.cycle(10.0, 15.0);
    assert!(w.on(H));
    let fault = SensorFault::CrcMismatch {
        sensor: "28-1".into(),
        attempts: 3,
        bytes: "00".into(),
    };
    let out = w.c.on_sensor_fault(w.now, &fault);
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
    assert!(w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::SensorRecovered { .. })));
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
    let deadline = w.now + Duration::from_secs(15);
    let out = w.c.shutdown(w.now, deadline);
    assert_eq!(out.deadline, Some(deadline));
    assert!(!w.c.shutdown_done(w.now));
    w.run(out);
    assert!(!w.on(H) && w.on(C));
    assert!(w.c.shutdown_done(w.now));
    assert!(w.c.shutdown_report(w.now).is_empty());
    let before = w.sent.len();
    w.at(20.0).tick();
    assert_eq!(w.sent.len(), before, "no decisions after shutdown");
}

#[test]
fn shutdown_tells_the_truth_about_a_plug_it_could_not_verify() {
    let mut w = World::new(r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":120}"#);
    w.cycle(10.0, 10.0);
    assert!(w.on(H));
    w.fault(H, Some(Fault::Unverified));
    // The off is sent but never verified.
    w.at(20.0);
    let out = w.c.shutdown(w.now, w.now + Duration::from_secs(15));
    w.run(out);
    assert!(w.c.shutdown_done(w.now));
    let report = w.c.shutdown_report(w.now);
    assert_eq!(report.len(), 1, "{report:?}");
    let msg = &report[0].message;
    assert!(
        msg.starts_with("heater 127.0.0.1:1: state unknown after 1 attempt"),
        "{msg}"
    );
    // Armed when the heater went on at 10 s (and re-armed right after): 120 s from then.
    assert!(
        msg.contains("its dead-man switches it off within 110 s"),
        "{msg}"
    );
    // The dead-man was not removed: the off was never verified.
    assert!(w.rule.contains_key(&H));
}

/// When the dead-man's rule has already run out at shutdown, the line says
/// the plug has been switched off by now, not "within 0 s".
#[test]
fn shutdown_after_the_dead_man_ran_out_says_it_has_switched_it_off() {
    let mut w = World::new(r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":120}"#);
    w.cycle(10.0, 10.0);
    assert!(w.on(H));
    w.fault(H, Some(Fault::Unverified));
    // 150 s after the arm at 10 s: the 120 s rule ran out 20 s ago.
    w.at(160.0);
    let out = w.c.shutdown(w.now, w.now + Duration::from_secs(15));
    w.run(out);
    let report = w.c.shutdown_report(w.now);
    assert_eq!(report.len(), 1, "{report:?}");
    let msg = &report[0].message;
    assert!(
        msg.contains("its dead-man has switched it off by now (its rule ran out"),
        "{msg}"
    );
    assert!(!msg.contains("within 0 s"), "{msg}");
}

#[test]
fn shutdown_with_no_answer_in_time_names_the_plug() {
    let mut w = World::new(r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":0}"#);
    w.cycle(10.0, 10.0);
    let deadline = w.now + Duration::from_secs(15);
    let out = w.c.shutdown(w.now, deadline);
    // The outcomes never come: drop the commands.
    drop(out);
    assert!(!w.c.shutdown_done(w.now));
    assert!(w.c.shutdown_done(deadline));
    let report = w.c.shutdown_report(deadline);
    let heater = report.iter().find(|u| u.role == H).unwrap();
    assert!(
        heater.message.contains("no verified answer in time")
            && heater.message.contains("no dead-man"),
        "{report:?}"
    );
}

#[test]
fn an_unverified_switch_on_is_unknown_and_keeps_the_cooler_off() {
    // Finding 1 of the "unknown is not off" issue: the heater acknowledges
    // the switch-on but never reads back on; its relay then closes.
    let mut w = World::new(
        r#","heater":{"host":"127.0.0.1","port":1,"deadman_s":15},"cooler":{"host":"127.0.0.1","port":2,"deadman_s":15},"cycle_s":5,"switchover_delay_s":0"#,
    );
    w.fault(H, Some(Fault::Unverified));
    w.cycle(5.0, 10.0);
    assert!(w.on(H), "the relay closed");
    assert_eq!(w.state(H), PlugState::Unknown);
    assert!(
        w.rule.contains_key(&H),
        "the dead-man was armed before the switch"
    );
    // The next cycle reads it (unknown is read every cycle, not at reconcile).
    let reads = w.count(H, is_read);
    w.cycle(10.0, 10.0);
    assert!(w.count(H, is_read) > reads || w.sets(H).len() > 1);
    // The temperature rises above high while the heater cannot be verified.
    w.cycle(15.0, 25.0);
    w.cycle(20.0, 25.0);
    assert!(!w.both_on_seen, "never both on");
    assert!(!w.on(C), "the cooler waits for the heater's verified off");
    // Once the heater's off is verified, the cooler may go on.
    w.fault(H, None);
    w.cycle(25.0, 25.0);
    w.cycle(30.0, 25.0);
    assert!(!w.on(H) && w.on(C), "{:?}", w.sent);
    assert!(!w.both_on_seen);
}

#[test]
fn a_lagging_switch_on_needs_a_verified_off_before_the_cooler_goes_on() {
    // The issue's setup: cycle 5 s, reconcile 30 s, dead-man 15 s; the
    // heater acknowledges the switch-on and closes its relay 6 s later.
    let mut w = World::new(
        r#","cycle_s":5,"reconcile_s":30,"switchover_delay_s":0,"heater":{"host":"127.0.0.1","port":1,"deadman_s":15},"cooler":{"host":"127.0.0.1","port":2,"deadman_s":15}"#,
    );
    w.fault(H, Some(Fault::Lag(6.0)));
    w.cycle(5.0, 10.0);
    assert!(!w.on(H), "not yet: the relay lags");
    assert_eq!(w.state(H), PlugState::Unknown);
    // The next cycle reads it: off, for now. That proves nothing.
    w.fault(H, None);
    w.cycle(10.0, 25.0);
    assert!(w.on(H) || w.sets(H).last().map(|s| s.1) == Some(false));
    for t in [11.0, 12.0, 15.0, 20.0, 25.0, 30.0] {
        w.cycle(t, 25.0);
        assert!(!w.both_on_seen, "both on at {t} s: {:?}", w.sent);
    }
    assert!(!w.on(H), "the heater was switched off, verified");
    assert!(w.on(C), "then the cooler went on");
}

#[test]
fn an_unverified_on_is_bounded_by_the_deadman_armed_before_it() {
    let mut w = World::new(
        r#","mode":"heat","cooler":null,"heater":{"host":"127.0.0.1","port":1,"deadman_s":60}"#,
    );
    w.fault(H, Some(Fault::Unverified));
    w.cycle(10.0, 10.0);
    assert!(w.on(H));
    // The service loses the plug entirely now (Pi dies, Wi-Fi gone).
    w.fault(H, Some(Fault::Dead));
    for t in (20..=70).step_by(10) {
        w.cycle(t as f64, 10.0);
    }
    assert!(!w.on(H), "the dead-man switched it off within deadman_s");
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
fn a_plug_found_off_at_start_needs_no_switchover_delay() {
    let mut w = World::new(r#","switchover_delay_s":300"#);
    w.cycle(10.0, 10.0);
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
    w.fault(C, Some(Fault::Dead));
    w.cycle(110.0, 10.0);
    assert!(
        w.on(C) && !w.on(H),
        "the cooler's off failed: still interlocked"
    );
    w.fault(C, None);
    w.cycle(120.0, 10.0);
    assert!(!w.on(C));
    w.cycle(130.0, 10.0);
    assert!(w.on(H));
}

#[test]
fn a_cooler_never_read_keeps_the_heater_off() {
    // The cooler cannot be reached at all: its state is unknown, which
    // counts as on, so the heater may not go on (it might run against it).
    let t0 = Instant::now();
    let mut c = Controller::new(config("").control_settings());
    c.start(t0);
    let outcome = |role, completion, state| PlugOutcome {
        role,
        command: PlugCommand::Read,
        completion,
        state,
        deadman: None,
        attempts: 3,
        attempt_times: vec![],
        elapsed: Duration::ZERO,
        rssi: None,
    };
    let fail = Completion::Failed(PlugFailure {
        kind: FailureKind::Timeout,
        permanent: false,
        message: "127.0.0.1:2: timed out".into(),
    });
    c.on_outcome(t0, &outcome(C, fail, None));
    c.on_outcome(t0, &outcome(H, Completion::Done, Some(PlugState::Off)));
    let t = t0 + Duration::from_secs(10);
    c.on_reading(t, 10.0);
    let out = c.tick(t);
    assert!(
        !out.commands
            .iter()
            .any(|(r, c)| *r == H && c.set_to() == Some(true)),
        "{out:?}"
    );
    // The unknown cooler is switched off (which reads it first) right away.
    assert!(
        out.commands.contains(&(C, PlugCommand::off(None))),
        "{out:?}"
    );
    assert!(c.snapshot(t).reason.contains("cooler state is unknown"));
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
fn never_both_on_over_a_random_walk_with_faults() {
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
        let role = if seed % 2 == 0 { H } else { C };
        match seed % 97 {
            // A power cut now and then: the plug is off without being told.
            0 => {
                w.real.insert(role, false);
            }
            // A spell of unverifiable switches, or of a dead plug.
            1 => {
                w.fault(role, Some(Fault::Unverified));
            }
            2 => {
                w.fault(role, Some(Fault::Dead));
            }
            3..=20 => {
                w.fault(role, None);
            }
            _ => {}
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
    w.fault(H, Some(Fault::Dead));
    w.cycle(10.0, 10.0);
    w.cycle(11.0, 10.0);
    assert_eq!(w.sets(H), vec![(10.0, true), (11.0, true)]);
    assert!(!w.on(H));
    // A success is: found off 4 s later, the same command waits until
    // rate_limit_s (10 s) after the success.
    w.fault(H, None);
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
    assert_eq!(w.count(H, is_read), 1 + 5);
    w.real.insert(H, true); // the app switched it on
    w.cycle(360.0, 19.5);
    assert!(w.logged("heater: found on"));
    w.cycle(370.0, 19.5);
    // Between limits it holds its demand (off), so it is corrected.
    assert!(!w.on(H));
}

#[test]
fn deadman_is_armed_before_on_rearmed_and_cleared_after_verified_off() {
    let mut w = World::new(
        r#","mode":"heat","cooler":null,"cycle_s":10,"heater":{"host":"127.0.0.1","port":1,"deadman_s":120}"#,
    );
    w.at(1.0).tick();
    assert_eq!(w.count(H, is_clear), 1, "leftover rules cleared at start");
    w.cycle(10.0, 10.0);
    // The switch-on carries the dead-man, and it is re-armed right after.
    assert_eq!(
        w.sets(H),
        vec![(10.0, true)],
        "one switch, carrying the dead-man"
    );
    assert!(w
        .sent
        .iter()
        .any(|(_, r, c)| *r == H && *c == PlugCommand::on(Some(Duration::from_secs(120)))));
    assert_eq!(w.count(H, is_arm), 1);
    for t in 2..=10 {
        w.cycle(t as f64 * 10.0, 10.0);
    }
    // Re-armed every 40 s: at 50 s and 90 s.
    assert_eq!(w.count(H, is_arm), 3);
    let snap = w.c.snapshot(w.now);
    assert!(matches!(snap.plugs[0].deadman, DeadmanStatus::Armed { .. }));
    w.cycle(110.0, 25.0);
    assert!(!w.on(H));
    assert!(!w.rule.contains_key(&H), "removed after the verified off");
    assert_eq!(w.c.snapshot(w.now).plugs[0].deadman, DeadmanStatus::Clear);
}

#[test]
fn a_plug_without_countdown_is_said_once_and_retried_only_at_reconcile() {
    let mut w = World::new(
        r#","mode":"heat","cooler":null,"reconcile_s":60,"heater":{"host":"127.0.0.1","port":1,"deadman_s":120}"#,
    );
    w.fault(H, Some(Fault::NoCountdown));
    w.cycle(10.0, 10.0);
    assert!(w.on(H), "switched on anyway");
    for t in 2..=20 {
        w.cycle(t as f64 * 10.0, 10.0);
    }
    let errors = w
        .events
        .iter()
        .filter(|e| e.level == Level::Error && e.text.contains("refuses dead-man"))
        .count();
    assert_eq!(errors, 1);
    assert!(w
        .events
        .iter()
        .any(|e| e.text.contains("nothing switches it off")));
    assert_eq!(
        w.notices
            .iter()
            .filter(|n| matches!(n, Notice::DeadmanUnsupported { .. }))
            .count(),
        1
    );
    // 200 s with reconcile every 60 s: a handful of retries, not one per cycle.
    let arms = w.count(H, is_arm);
    assert!((2..=4).contains(&arms), "{arms} arms");
    assert_eq!(
        w.c.snapshot(w.now).plugs[0].deadman,
        DeadmanStatus::Unsupported
    );
}

#[test]
fn failures_in_a_row_and_the_recovery_are_noticed() {
    let mut w = World::new(r#","mode":"heat","cooler":null"#);
    w.fault(H, Some(Fault::Dead));
    for t in 1..=3 {
        w.cycle(t as f64 * 10.0, 10.0);
    }
    let failed: Vec<u32> = w
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::PlugFailed { consecutive, .. } => Some(*consecutive),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![1, 2, 3]);
    w.fault(H, None);
    w.cycle(40.0, 10.0);
    assert!(w
        .notices
        .contains(&Notice::PlugRecovered { role: H, after: 3 }));
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
    let alarms: Vec<(Alarm, bool)> = w
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::Alarm { alarm, entered, .. } => Some((*alarm, *entered)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alarms,
        vec![(Alarm::Low, true), (Alarm::Low, false), (Alarm::High, true)]
    );
}

#[test]
fn fahrenheit_limits_apply_in_celsius() {
    // 64.4 °F = 18 °C, 68 °F = 20 °C.
    let mut w =
        World::new(r#","units":"F","mode":"heat","cooler":null,"low_limit":64.4,"high_limit":68"#);
    w.cycle(10.0, 18.1);
    assert!(!w.on(H));
    w.cycle(20.0, 17.9);
    assert!(w.on(H));
    assert!(w.c.snapshot(w.now).reason.contains("°F"));
}

// Cascade control: a demand source inside the same rules.

#[test]
fn cascade_sets_the_chamber_setpoint_and_says_why() {
    let mut w = World::cascade("");
    // Target 19.0; product 19.4: P = −2.0, setpoint 17.0; air 19.5 is
    // above the idle band (18.0): cool.
    w.cycle2(10.0, 19.4, 19.5);
    assert!(w.on(C) && !w.on(H));
    let why = w.reason();
    assert!(
        why.starts_with("chamber setpoint 17.00 °C (product 19.40, target 19.00, P -2.0, I +0.0, D +0.0); cooler on"),
        "{why}"
    );
    let set = w.c.chamber_view().setpoint_c.unwrap();
    assert!((set - 17.0).abs() < 1e-9, "{set}");
    assert!(w.logged("decision: chamber setpoint 17.00 °C"));
}

#[test]
fn stale_chamber_sensor_falls_back_to_hysteresis_and_recovers() {
    let mut w = World::cascade("");
    w.cycle2(10.0, 19.6, 19.0);
    assert!(w.on(C), "cascade: setpoint 16.0, air 19.0: cool");
    // The chamber sensor goes quiet; the product still reads.
    for s in (20..=80).step_by(10) {
        w.cycle(f64::from(s), 19.6);
    }
    assert!(w.c.chamber_view().stale);
    assert_eq!(w.c.chamber_view().setpoint_c, None);
    assert!(
        w.notices
            .iter()
            .any(|n| matches!(n, Notice::ChamberStale { .. })),
        "{:?}",
        w.notices
    );
    assert!(w.logged("chamber sensor: no valid reading for"));
    // Hysteresis on the product: 19.6 is between the limits; the cooler
    // holds; at the low limit... the midpoint (heat_cool) it goes off.
    assert!(w.reason().contains("between limits"), "{}", w.reason());
    w.cycle(400.0, 19.0);
    assert!(!w.on(C), "hysteresis: off at the midpoint");
    // The chamber reads again: cascade control resumes.
    w.cycle2(410.0, 19.0, 19.0);
    assert!(w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::ChamberRecovered { celsius } if *celsius == 19.0)));
    assert!(w.reason().starts_with("chamber setpoint"), "{}", w.reason());
}

#[test]
fn cascade_with_a_stale_product_sensor_is_the_fault_state() {
    let mut w = World::cascade("");
    w.cycle2(10.0, 19.6, 19.0);
    assert!(w.on(C));
    // Only the chamber reads now: the product is stale after 60 s.
    for s in (20..=300).step_by(10) {
        w.at(f64::from(s)).chamber(19.0).tick();
    }
    assert!(!w.on(C) && !w.on(H), "fault state off");
    assert!(w
        .notices
        .iter()
        .any(|n| matches!(n, Notice::SensorStale { .. })));
    assert_eq!(w.c.chamber_view().setpoint_c, None);
}

#[test]
fn cascade_keeps_min_on_dead_time_and_the_interlock() {
    // The plug's own min_on_s (600) outlasts the cascade's (180).
    let mut w = World::cascade(
        r#","switchover_delay_s":60,"cooler":{"host":"127.0.0.1","port":2,"deadman_s":0,"min_on_s":600}"#,
    );
    w.cycle2(10.0, 19.6, 19.5);
    assert!(w.on(C));
    // From 200 s the air is far below the setpoint (16.0): the cascade
    // wants it off, min_on_s holds it.
    for s in (20..=300).step_by(10) {
        w.cycle2(f64::from(s), 19.6, if s < 200 { 19.0 } else { 14.0 });
    }
    assert!(w.on(C), "{}", w.reason());
    assert!(w.reason().contains("min_on_s"), "{}", w.reason());
    w.cycle2(620.0, 19.6, 14.0);
    assert!(!w.on(C));
    // Now the product is cold and the air too: heat is wanted, but the
    // cascade's dead time (600 s after the cooler) holds it, then the
    // watch for the cooler's peak (the air never comes back: its window,
    // 1800 s).
    let mut t = 620.0;
    let mut heater_on_at = None;
    while t < 2600.0 {
        t += 10.0;
        w.cycle2(t, 18.0, 12.0);
        if t == 1000.0 {
            assert!(w.reason().contains("dead time"), "{}", w.reason());
        }
        if t == 1500.0 {
            assert!(w.reason().contains("peak"), "{}", w.reason());
        }
        if w.on(H) && heater_on_at.is_none() {
            heater_on_at = Some(t);
        }
    }
    let on_at = heater_on_at.expect("the heater comes on after the dead time");
    assert!(on_at >= 620.0 + 1800.0, "heater on at {on_at}");
    assert!(!w.both_on_seen);
}
