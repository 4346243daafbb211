//! `kasa-thermostat bench-control`: the real `Controller` in virtual time
//! against a plant model (docs/design.md, "Cascade control"), scored on how
//! closely it holds the product.
//!
//! Each control cycle (10 s of virtual time): the plant is integrated up to
//! now, the plugs' answers that are due are handed to the controller (each
//! command is answered `plug_latency_s` after it was sent, and the relay
//! moves then; a command fails with `plug_failure_rate`, and nothing
//! happens), the sensors are sampled with noise and quantisation, and the
//! controller ticks exactly as the service's control thread makes it tick.
//! Nothing here decides anything: what is measured is the controller.
//!
//! * [`plant`]: the plant file and its physics.
//! * [`builtin`]: the plants used when none is given.
//! * `error`: [`BenchError`], what went wrong (a leaf the others share).
//! * this module: the run, the scores, the table and the trace.
//!
//! Scores are over the run after `settle_h` (product deviation from the
//! target midpoint, starts, duty, energy); `fight_s` and
//! `min_off_violations` count the whole run, as safety does.

pub mod builtin;
mod error;
pub mod plant;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use crate::clock::Zone;
use crate::control::{
    Algorithm, CascadeSettings, Controller, Mode, Output, PlugSettings, Settings,
};
use crate::msg::{
    Completion, DeadmanKind, DeadmanReport, FailureKind, PlugCommand, PlugFailure, PlugOutcome,
    PlugState, Role,
};
use crate::profile::{limits_at, Profile};
use crate::units::Units;

pub use error::BenchError;
use plant::{sensor_reading, Model, State};
pub use plant::{PlantFile, MAX_LATENCY_S};

/// The control cycle of every bench run, s (the service's default `cycle_s`).
pub const CYCLE_S: f64 = 10.0;
/// The plug settings of every bench run: compressor protection as BrewPi's
/// (`min_on_s` 180, `min_off_s` 300), the heat↔cool dead time as
/// `switchover_delay_s` 600, and a dead-man of 120 s.
pub const MIN_ON_S: u64 = 180;
/// See [`MIN_ON_S`].
pub const MIN_OFF_S: u64 = 300;
/// See [`MIN_ON_S`].
pub const SWITCHOVER_S: u64 = 600;
/// See [`MIN_ON_S`].
pub const DEADMAN_S: u64 = 120;

/// The algorithm of one run (`--algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchAlgorithm {
    /// Today's hysteresis on the product sensor.
    Hysteresis,
    /// Cascade with its default tuning.
    Cascade,
    /// Both plugs off (the plant left to itself).
    Off,
}

impl BenchAlgorithm {
    /// Every algorithm, in the order runs are made by default.
    pub const ALL: [BenchAlgorithm; 3] = [
        BenchAlgorithm::Hysteresis,
        BenchAlgorithm::Cascade,
        BenchAlgorithm::Off,
    ];

    /// The name on the command line and in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            BenchAlgorithm::Hysteresis => "hysteresis",
            BenchAlgorithm::Cascade => "cascade",
            BenchAlgorithm::Off => "off",
        }
    }
}

/// One run's scores (`--json` prints a list of these).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchResult {
    /// The plant's name.
    pub plant: String,
    /// The algorithm.
    pub algorithm: String,
    /// RMS of product − target midpoint, °C.
    pub rms_c: f64,
    /// The largest |product − target midpoint|, °C.
    pub max_abs_c: f64,
    /// Share of cycles with the product outside low..high, %.
    pub outside_band_pct: f64,
    /// Heater relay starts per day.
    pub heater_starts_per_day: f64,
    /// Cooler relay starts per day.
    pub cooler_starts_per_day: f64,
    /// Heater relay on time, %.
    pub heater_on_pct: f64,
    /// Cooler relay on time, %.
    pub cooler_on_pct: f64,
    /// Seconds with both relays closed (whole run).
    pub fight_s: f64,
    /// Off periods shorter than `min_off_s` (whole run).
    pub min_off_violations: u64,
    /// Rated power × relay on time of both plugs, kWh.
    pub energy_kwh: f64,
}

/// A small deterministic generator (xorshift64*), so a run is repeatable
/// and needs no dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the seed text; never zero.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// One relay in the plant, with what the scores need.
#[derive(Debug, Clone, Default)]
struct Relay {
    on: bool,
    /// When it last went off after being on.
    off_since: Option<f64>,
    /// When it last changed.
    changed: f64,
    /// The dead-man rule on the plug fires at this time.
    rule: Option<f64>,
    starts: u64,
    on_s: f64,
    violations: u64,
}

/// The plugs, the plant and the clock of one run.
struct World {
    model: Model,
    state: State,
    /// Virtual seconds of `state`.
    t: f64,
    settle_s: f64,
    latency_s: f64,
    failure_rate: f64,
    relays: BTreeMap<Role, Relay>,
    /// Answers on their way: (due time, sequence, role, command).
    pending: Vec<(f64, u64, Role, PlugCommand)>,
    seq: u64,
    rng: Rng,
    fight_s: f64,
    t0: Instant,
}

impl World {
    fn at(&self, t_s: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(t_s)
    }

    fn send(&mut self, t_s: f64, out: Output) {
        for (role, cmd) in out.commands {
            self.seq += 1;
            self.pending
                .push((t_s + self.latency_s, self.seq, role, cmd));
        }
    }

    fn on(&self, role: Role) -> bool {
        self.relays.get(&role).is_some_and(|r| r.on)
    }

    /// Integrates the plant to `t1`, keeping the on-time scores.
    fn integrate(&mut self, t1: f64) {
        if t1 <= self.t {
            return;
        }
        let (h, c) = (self.on(Role::Heater), self.on(Role::Cooler));
        self.model.advance(&mut self.state, self.t, t1, h, c);
        let scored = (t1 - self.t.max(self.settle_s)).max(0.0);
        for r in self.relays.values_mut() {
            if r.on {
                r.on_s += scored;
            }
        }
        if h && c {
            self.fight_s += t1 - self.t;
        }
        self.t = t1;
    }

    fn switch(&mut self, role: Role, on: bool, t: f64) {
        let settle = self.settle_s;
        let Some(r) = self.relays.get_mut(&role) else {
            return;
        };
        if r.on == on {
            return;
        }
        if on {
            if let Some(off) = r.off_since {
                if t - off < MIN_OFF_S as f64 - 1e-6 {
                    r.violations += 1;
                }
            }
            if t >= settle {
                r.starts += 1;
            }
        } else {
            r.off_since = Some(t);
        }
        r.on = on;
        r.changed = t;
    }

    /// What the plug does with a command at `t`: its outcome.
    fn answer(&mut self, t: f64, role: Role, cmd: &PlugCommand) -> PlugOutcome {
        let failed = self.rng.uniform() < self.failure_rate;
        let mut outcome = PlugOutcome {
            role,
            command: cmd.clone(),
            completion: Completion::Done,
            state: None,
            deadman: None,
            attempts: 1,
            attempt_times: vec![Duration::from_secs_f64(self.latency_s)],
            elapsed: Duration::from_secs_f64(self.latency_s),
            rssi: None,
        };
        if failed {
            outcome.completion = Completion::Failed(PlugFailure {
                kind: FailureKind::Timeout,
                permanent: false,
                message: format!("{role}: bench plug: timed out (simulated failure)"),
            });
            if matches!(
                cmd,
                PlugCommand::ArmDeadman { .. } | PlugCommand::ClearDeadman
            ) {
                outcome.deadman = Some(DeadmanReport::Failed("timed out".into()));
            }
            return outcome;
        }
        let countdown = |d: &Duration| DeadmanKind::Countdown {
            secs: d.as_secs() as u32,
        };
        match cmd {
            PlugCommand::Set { on, deadman } => {
                self.switch(role, *on, t);
                let r = self.relays.get_mut(&role).expect("configured plug");
                if let Some(d) = deadman {
                    if *on {
                        r.rule = Some(t + d.as_secs_f64());
                        outcome.deadman = Some(DeadmanReport::Armed(countdown(d)));
                    } else {
                        r.rule = None;
                        outcome.deadman = Some(DeadmanReport::Cleared);
                    }
                }
                outcome.state = Some(PlugState::from_on(*on));
            }
            PlugCommand::Read => {
                outcome.state = Some(PlugState::from_on(self.on(role)));
            }
            PlugCommand::ArmDeadman { delay } => {
                let r = self.relays.get_mut(&role).expect("configured plug");
                r.rule = Some(t + delay.as_secs_f64());
                outcome.deadman = Some(DeadmanReport::Armed(countdown(delay)));
            }
            PlugCommand::ClearDeadman => {
                let r = self.relays.get_mut(&role).expect("configured plug");
                r.rule = None;
                outcome.deadman = Some(DeadmanReport::Cleared);
            }
        }
        outcome
    }

    /// Runs every answer and dead-man rule due by `t1`, in time order,
    /// integrating the plant in between.
    fn run_until(&mut self, c: &mut Controller, t1: f64) {
        loop {
            let next_answer = self
                .pending
                .iter()
                .enumerate()
                .filter(|(_, p)| p.0 <= t1)
                .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0).then(a.1 .1.cmp(&b.1 .1)))
                .map(|(i, p)| (i, p.0));
            let next_rule = self
                .relays
                .iter()
                .filter_map(|(role, r)| r.rule.filter(|at| *at <= t1 && r.on).map(|at| (*role, at)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match (next_answer, next_rule) {
                (_, Some((role, at))) if next_answer.is_none_or(|(_, t)| at < t) => {
                    // The plug's own countdown switches it off.
                    self.integrate(at);
                    self.switch(role, false, at);
                    if let Some(r) = self.relays.get_mut(&role) {
                        r.rule = None;
                    }
                }
                (Some((i, at)), _) => {
                    let (_, _, role, cmd) = self.pending.remove(i);
                    self.integrate(at);
                    let outcome = self.answer(at, role, &cmd);
                    let out = c.on_outcome(self.at(at), &outcome);
                    self.send(at, out);
                }
                (None, _) => break,
            }
        }
        self.integrate(t1);
    }
}

/// One trace line per cycle.
struct Trace {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl Trace {
    fn create(dir: &Path, plant: &str, algorithm: BenchAlgorithm) -> Result<Trace, BenchError> {
        let path = dir.join(format!("{plant}-{}.csv", algorithm.as_str()));
        let file = std::fs::File::create(&path).map_err(|error| BenchError::Trace {
            path: path.clone(),
            error,
        })?;
        let mut t = Trace {
            out: std::io::BufWriter::new(file),
            path,
        };
        t.line(format_args!(
            "t_s,product_c,air_c,product_read_c,air_read_c,heater,cooler,low_c,high_c,chamber_set_c\n"
        ))?;
        Ok(t)
    }
    fn line(&mut self, args: fmt::Arguments<'_>) -> Result<(), BenchError> {
        self.out.write_fmt(args).map_err(|error| BenchError::Trace {
            path: self.path.clone(),
            error,
        })
    }
    fn finish(mut self) -> Result<(), BenchError> {
        self.out.flush().map_err(|error| BenchError::Trace {
            path: self.path.clone(),
            error,
        })
    }
}

/// The limits of a plant over time.
enum Limits {
    Fixed(f64, f64),
    Profile(Box<Profile>),
}

/// The instant a bench run starts (a daily profile's "HH:MM" is read in UTC).
fn epoch() -> OffsetDateTime {
    // 2026-01-05T00:00:00Z, a Monday at midnight.
    OffsetDateTime::from_unix_timestamp(1_767_571_200).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Limits {
    fn of(p: &PlantFile) -> Result<Limits, BenchError> {
        match (&p.profile, p.low, p.high) {
            (Some(raw), _, _) => Profile::from_raw(raw, Units::C)
                .map(|pr| Limits::Profile(Box::new(pr)))
                .map_err(|e| BenchError::Plant {
                    file: p.name.clone(),
                    message: e.to_string(),
                }),
            (None, Some(lo), Some(hi)) => Ok(Limits::Fixed(lo, hi)),
            _ => Err(BenchError::Plant {
                file: p.name.clone(),
                message: "give both low and high, or a profile".into(),
            }),
        }
    }
    /// The band at `t_s` (`None`: the profile ended with `after_end: off`).
    fn at(&self, t_s: f64) -> Option<(f64, f64)> {
        match self {
            Limits::Fixed(lo, hi) => Some((*lo, *hi)),
            Limits::Profile(p) => {
                let now = epoch() + time::Duration::seconds_f64(t_s);
                limits_at(p, epoch(), now, &Zone::utc())
                    .band
                    .map(|b| (b.low_c, b.high_c))
            }
        }
    }
}

/// The controller settings of a bench run.
fn settings(p: &PlantFile, algorithm: BenchAlgorithm, band: (f64, f64)) -> Settings {
    let mode = match (algorithm, p.heater_w.is_some(), p.cooler_w.is_some()) {
        (BenchAlgorithm::Off, _, _) => Mode::Off,
        (_, true, true) => Mode::HeatCool,
        (_, true, false) => Mode::Heat,
        _ => Mode::Cool,
    };
    let mut plugs = BTreeMap::new();
    for (role, present) in [
        (Role::Heater, p.heater_w.is_some()),
        (Role::Cooler, p.cooler_w.is_some()),
    ] {
        if present {
            plugs.insert(
                role,
                PlugSettings {
                    address: format!("bench-{role}"),
                    min_on: Duration::from_secs(MIN_ON_S),
                    min_off: Duration::from_secs(MIN_OFF_S),
                    deadman: Some(Duration::from_secs(DEADMAN_S)),
                    fault_state: false,
                    shutdown_state: false,
                },
            );
        }
    }
    Settings {
        mode,
        limits: crate::control::Band {
            low_c: band.0,
            high_c: band.1,
        },
        alarm_low_c: None,
        alarm_high_c: None,
        rate_limit: Duration::from_secs(10),
        switchover_delay: Duration::from_secs(SWITCHOVER_S),
        reconcile: Duration::from_secs(60),
        stale_after: Duration::from_secs(60),
        lost_after: Duration::from_secs(60),
        units: Units::C,
        plugs,
        algorithm: match algorithm {
            BenchAlgorithm::Cascade => Algorithm::Cascade(CascadeSettings::default()),
            _ => Algorithm::Hysteresis,
        },
    }
}

/// Runs one plant under one algorithm for `days` (the plant's own when
/// `None`), writing a trace into `trace_dir` if given.
pub fn run(
    p: &PlantFile,
    algorithm: BenchAlgorithm,
    days: Option<f64>,
    trace_dir: Option<&Path>,
) -> Result<BenchResult, BenchError> {
    let limits = Limits::of(p)?;
    let days = days.unwrap_or(p.days);
    let cycles = (days * 86_400.0 / CYCLE_S).round() as u64;
    let first_band = limits
        .at(0.0)
        .unwrap_or((p.initial_product_c - 0.5, p.initial_product_c + 0.5));
    let mut c = Controller::new(settings(p, algorithm, first_band));
    let model = Model::new(p);
    let mut w = World {
        state: model.initial(),
        model,
        t: 0.0,
        settle_s: p.settle_h * 3600.0,
        latency_s: p.plug_latency_s,
        failure_rate: p.plug_failure_rate,
        relays: [Role::Heater, Role::Cooler]
            .into_iter()
            .filter(|r| match r {
                Role::Heater => p.heater_w.is_some(),
                _ => p.cooler_w.is_some(),
            })
            .map(|r| (r, Relay::default()))
            .collect(),
        pending: Vec::new(),
        seq: 0,
        rng: Rng::new(&p.name),
        fight_s: 0.0,
        t0: Instant::now(),
    };
    let mut sensor_rng = Rng::new(&format!("{}/sensors", p.name));
    let mut trace = trace_dir
        .map(|d| Trace::create(d, &p.name, algorithm))
        .transpose()?;
    let out = c.start(w.at(0.0));
    w.send(0.0, out);
    let (mut sum_sq, mut max_abs, mut outside, mut scored) = (0.0, 0.0_f64, 0u64, 0u64);
    let cascade = algorithm == BenchAlgorithm::Cascade;
    // A trace line waits for the relays: its `heater,cooler` are the relay
    // states once this cycle's commands have landed (what holds for the
    // rest of the cycle), known when the next cycle begins.
    let mut row: Option<(String, String)> = None;
    for k in 0..=cycles {
        let t = k as f64 * CYCLE_S;
        w.run_until(&mut c, t);
        if let (Some(tr), Some((head, tail))) = (trace.as_mut(), row.take()) {
            tr.line(format_args!(
                "{head},{},{},{tail}\n",
                u8::from(w.on(Role::Heater)),
                u8::from(w.on(Role::Cooler)),
            ))?;
        }
        if k == cycles {
            break;
        }
        let band = limits.at(t);
        if let Limits::Profile(_) = limits {
            c.set_band(band.map(|(lo, hi)| crate::control::Band {
                low_c: lo,
                high_c: hi,
            }));
        }
        let product_read = sensor_reading(w.state.product_c, p.sensor_noise_c, sensor_rng.normal());
        let air_read = sensor_reading(w.state.air_c, p.sensor_noise_c, sensor_rng.normal());
        let now = w.at(t);
        let mut outs = vec![c.on_reading(now, product_read)];
        if cascade {
            outs.push(c.on_chamber_reading(now, air_read));
        }
        outs.push(c.tick(now));
        for out in outs {
            w.send(t, out);
        }
        if let Some((lo, hi)) = band {
            if t >= w.settle_s {
                let dev = w.state.product_c - (lo + hi) / 2.0;
                sum_sq += dev * dev;
                max_abs = max_abs.max(dev.abs());
                outside += u64::from(w.state.product_c < lo || w.state.product_c > hi);
                scored += 1;
            }
        }
        if trace.is_some() {
            let (lo, hi) = band.map_or((String::new(), String::new()), |(lo, hi)| {
                (format!("{lo:.4}"), format!("{hi:.4}"))
            });
            let set = c
                .chamber_view()
                .setpoint_c
                .map_or(String::new(), |s| format!("{s:.4}"));
            row = Some((
                format!(
                    "{t:.0},{:.5},{:.5},{product_read:.4},{air_read:.4}",
                    w.state.product_c, w.state.air_c
                ),
                format!("{lo},{hi},{set}"),
            ));
        }
    }
    if let Some(tr) = trace {
        tr.finish()?;
    }
    let scored_days = (days * 86_400.0 - w.settle_s).max(CYCLE_S) / 86_400.0;
    let scored_s = scored_days * 86_400.0;
    let relay = |role: Role| w.relays.get(&role).cloned().unwrap_or_default();
    let (h, co) = (relay(Role::Heater), relay(Role::Cooler));
    let energy_j = h.on_s * p.heater_w.unwrap_or(0.0) + co.on_s * p.cooler_w.unwrap_or(0.0);
    let n = scored.max(1) as f64;
    Ok(BenchResult {
        plant: p.name.clone(),
        algorithm: algorithm.as_str().to_string(),
        rms_c: (sum_sq / n).sqrt(),
        max_abs_c: max_abs,
        outside_band_pct: 100.0 * outside as f64 / n,
        heater_starts_per_day: h.starts as f64 / scored_days,
        cooler_starts_per_day: co.starts as f64 / scored_days,
        heater_on_pct: 100.0 * h.on_s / scored_s,
        cooler_on_pct: 100.0 * co.on_s / scored_s,
        fight_s: w.fight_s,
        min_off_violations: h.violations + co.violations,
        energy_kwh: energy_j / 3.6e6,
    })
}

/// The results as a table, one line per run.
pub fn table(results: &[BenchResult]) -> String {
    let mut s = format!(
        "{:<22} {:<10} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>5} {:>7}\n",
        "plant",
        "algorithm",
        "rms_c",
        "max_c",
        "out_%",
        "heat/d",
        "cool/d",
        "heat%",
        "cool%",
        "fight",
        "minof",
        "kwh"
    );
    for r in results {
        s.push_str(&format!(
            "{:<22} {:<10} {:>6.3} {:>6.2} {:>7.1} {:>7.1} {:>7.1} {:>6.1} {:>6.1} {:>6.0} {:>5} {:>7.2}\n",
            r.plant,
            r.algorithm,
            r.rms_c,
            r.max_abs_c,
            r.outside_band_pct,
            r.heater_starts_per_day,
            r.cooler_starts_per_day,
            r.heater_on_pct,
            r.cooler_on_pct,
            r.fight_s,
            r.min_off_violations,
            r.energy_kwh
        ));
    }
    s
}

#[cfg(test)]
mod tests;
