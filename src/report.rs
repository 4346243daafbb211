//! `kasa-thermostat report`: turns `readings.jsonl` and `plug-events.jsonl`
//! into answers: is a plug healthy (retries, failures, latency, outages, Wi-Fi
//! signal, hand toggles, dead-man), and how did the chamber do (time within
//! the limits, temperatures, duty cycles, switching rate, stale sensor,
//! alarms)? As text for a person, or as JSON (`--json`).
//!
//! How the figures are counted (the tests count the same way, separately):
//! * **Time-weighting.** Each readings line's state lasts until the next line.
//!   A gap longer than `history::GAP_FACTOR` times the median cycle is "no
//!   data" (the service was stopped), not a long-held state; the last line
//!   lasts nothing. Percentages are of the time their subject was known.
//! * **Within the limits**: time with a valid temperature `low <= T <= high`
//!   over time with a valid temperature (and limits).
//! * **Mean** temperature is time-weighted; min and max are over every
//!   valid reading.
//! * **Duty cycle**: time `on`, `unknown` (possibly on), `off` over the time
//!   the plug was reported. **Switches per hour**: `on`→`off` changes of the
//!   plug's known state (unknown lines are passed over) per hour reported.
//! * **Commands** are plug-events lines; **succeeded on attempt n** counts
//!   `ok` outcomes by `attempts` (3 and more together). **Failures a day**:
//!   failed commands over the days the report covers (first to last line of
//!   either file; not given under an hour). **Switch latency**: `duration_ms`
//!   of `on`/`off` commands that ended `ok` (verified), nearest-rank
//!   percentiles. **Longest outage**: from a failed command to the next `ok`
//!   one of the same plug (still failing at the end: up to the report's end).
//!   **Signal**: rssi of every event that has one; the median is the lower
//!   middle value; "last" is the newest.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::clock::{format_rfc3339, from_unix_secs, human, unix_secs, Precision, Stamp, Zone};
use crate::history::{self, read_events, sort_keys, HistoryError, ReadStats, Sample, Series};
use crate::records::{Alarm, EventOutcome, EventRecord, PlugState};
use crate::units::Units;

/// Below this rssi (dBm, the median of a plug's pre-reads) the signal is
/// weak enough to cause timeouts and retries.
pub(crate) const WEAK_SIGNAL_DBM: i32 = -70;

/// What to do about a weak Wi-Fi signal (the README can reuse it).
pub const WEAK_SIGNAL_ADVICE: &str = "The Wi-Fi signal is weak (below -70 dBm), which causes \
timeouts and retries: move the plug or the access point closer (a fridge's metal body and \
walls block 2.4 GHz), or add an access point; then check the signal with \
`kasa-thermostat plug HOST sysinfo` (its rssi: above -67 dBm is good).";

/// More `on`→`off` cycles an hour than this wear a compressor (fridges,
/// freezers, heat pumps want minutes between starts).
pub(crate) const COMPRESSOR_MAX_SWITCHES_PER_HOUR: f64 = 6.0;

/// What to do when the cooler switches too often.
pub const COMPRESSOR_ADVICE: &str = "That is often for a compressor (more than 6 starts an \
hour wear it out): widen the limits (high_limit - low_limit), or raise the cooler's \
min_on_s / min_off_s (e.g. 300 / 300).";

/// What it means when a plug reports no dead-man support.
pub(crate) const DEADMAN_UNSUPPORTED_ADVICE: &str = "This plug does not accept the dead-man rule: \
if the Pi, the network or the service dies while it is on, it stays on. Prefer a plug \
model with countdown rules, above all for a heater.";

/// Why no report could be made.
#[derive(Debug)]
pub enum ReportError {
    /// Neither `readings.jsonl` nor `plug-events.jsonl` is in the directory:
    /// point `--log-dir` at the service's `log_dir`.
    NoData {
        /// The directory looked in.
        log_dir: PathBuf,
    },
    /// A file could not be read (see the cause).
    Data(HistoryError),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::NoData { log_dir } => write!(
                f,
                "neither {} nor {} is in {}: point --log-dir at the service's log_dir",
                history::READINGS_FILE,
                history::PLUG_EVENTS_FILE,
                log_dir.display()
            ),
            ReportError::Data(e) => write!(f, "cannot make the report: {e}"),
        }
    }
}

impl std::error::Error for ReportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReportError::NoData { .. } => None,
            ReportError::Data(e) => Some(e),
        }
    }
}

/// What `kasa-thermostat report` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The service's `log_dir` (`--log-dir`).
    pub log_dir: PathBuf,
    /// The start (`--since`, resolved with [`crate::clock::Since::resolve`]);
    /// `None`: everything.
    pub since: Option<SystemTime>,
    /// The end (exclusive); `None`: up to the last line.
    pub until: Option<SystemTime>,
    /// The zone of the times shown and of the per-day counts.
    pub zone: Zone,
}

impl ReportOptions {
    /// Everything in `log_dir`, in local time.
    pub fn new(log_dir: PathBuf) -> ReportOptions {
        ReportOptions {
            log_dir,
            since: None,
            until: None,
            zone: Zone::local_or_utc(),
        }
    }
}

/// One of the two files, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// It (or a rotated copy) exists.
    pub found: bool,
    /// What reading it found.
    #[serde(flatten)]
    pub stats: ReadStats,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The `--since` asked for.
    pub since: Option<Stamp>,
    /// The first line in the range (either file).
    pub from: Option<Stamp>,
    /// The last line in the range (either file).
    pub to: Option<Stamp>,
    /// The zone of the per-day counts and the text's times.
    pub zone: String,
    /// `readings.jsonl`.
    pub readings: Source,
    /// `plug-events.jsonl`.
    pub events: Source,
    /// The chamber, from the readings (`None`: no readings).
    pub chamber: Option<ChamberSummary>,
    /// Each plug's health, from the events, by role.
    pub plugs: Vec<PlugHealth>,
    #[serde(skip)]
    display_zone: Zone,
}

/// How the chamber did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChamberSummary {
    /// The units of every temperature here (`C` or `F`).
    pub units: &'static str,
    /// Readings lines used.
    pub readings: usize,
    /// The median time between lines, s.
    pub cycle_s: f64,
    /// Time the lines cover, s (no-data gaps excluded).
    pub covered_s: f64,
    /// Time in no-data gaps, s.
    pub no_data_s: f64,
    /// Time with a valid temperature, s.
    pub valid_s: f64,
    /// Percent of `valid_s` within `[low, high]` (`None`: no limits known).
    pub within_limits_pct: Option<f64>,
    /// Percent of `valid_s` below the low limit.
    pub below_pct: Option<f64>,
    /// Percent of `valid_s` above the high limit.
    pub above_pct: Option<f64>,
    /// Older lines had no limits and were given the newest ones.
    pub limits_fallback: bool,
    /// The lowest valid reading.
    pub min: Option<f64>,
    /// The highest valid reading.
    pub max: Option<f64>,
    /// The time-weighted mean.
    pub mean: Option<f64>,
    /// Time with the sensor stale, s.
    pub stale_s: f64,
    /// Cascade control: the chamber air's readings (absent without a
    /// chamber sensor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub air: Option<Air>,
    /// Each plug's duty cycle.
    pub duty: Vec<Duty>,
    /// The alarm periods, oldest first.
    pub alarms: Vec<AlarmPeriod>,
    /// Advice (switching too often for a compressor, ...).
    pub notes: Vec<String>,
}

/// The chamber air under cascade control: its range and time-weighted
/// mean, and its setpoint's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Air {
    /// The lowest air reading.
    pub min: f64,
    /// The time-weighted mean air reading.
    pub mean: f64,
    /// The highest air reading.
    pub max: f64,
    /// The time-weighted mean chamber setpoint (`None`: cascade never in charge).
    pub setpoint_mean: Option<f64>,
}

/// A plug's duty cycle, from the readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Duty {
    /// `heater` or `cooler`.
    pub role: &'static str,
    /// Time on, s.
    pub on_s: f64,
    /// Time unknown (possibly on), s.
    pub unknown_s: f64,
    /// Time off, s.
    pub off_s: f64,
    /// Percent of the time reported that it was on.
    pub on_pct: f64,
    /// Percent of the time reported that it was unknown.
    pub unknown_pct: f64,
    /// `on`→`off` changes.
    pub switches: u64,
    /// `switches` per hour reported.
    pub switches_per_hour: f64,
}

/// A period with a temperature alarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmPeriod {
    /// `low` or `high`.
    pub kind: Alarm,
    /// Its first line.
    pub start: Stamp,
    /// The first line without it (or its last line, when the data ends).
    pub end: Stamp,
    /// `end - start`, s.
    pub duration_s: f64,
    /// The lowest (low) or highest (high) valid reading in it.
    pub extreme: Option<f64>,
}

/// Nearest-rank percentiles, ms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The largest.
    pub max: f64,
}

/// From a failed command to the next successful one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    /// The first failed command.
    pub start: Stamp,
    /// The next `ok` command (or the report's end when `ongoing`).
    pub end: Stamp,
    /// `end - start`, s.
    pub duration_s: f64,
    /// Failed commands in it.
    pub failed_commands: u64,
    /// Still failing at the end of the data.
    pub ongoing: bool,
}

/// Wi-Fi signal from the pre-reads, dBm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rssi {
    /// Values.
    pub count: usize,
    /// The weakest.
    pub min: i32,
    /// The lower middle value.
    pub median: i32,
    /// The newest.
    pub last: i32,
}

/// Commands and failures on one local day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCount {
    /// `2026-11-28`.
    pub date: String,
    /// Commands that day.
    pub commands: u64,
    /// Failed commands that day.
    pub failed: u64,
}

/// One plug's health, from `plug-events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlugHealth {
    /// `heater`, `cooler`, ...
    pub role: String,
    /// The addresses seen.
    pub hosts: Vec<String>,
    /// Commands (lines).
    pub commands: u64,
    /// Commands by action (`on`, `off`, `read`, ...).
    pub by_action: BTreeMap<String, u64>,
    /// Succeeded (`ok`).
    pub ok: u64,
    /// Succeeded on the first attempt.
    pub ok_attempt_1: u64,
    /// Succeeded on the second attempt.
    pub ok_attempt_2: u64,
    /// Succeeded on the third attempt or later.
    pub ok_attempt_3_or_later: u64,
    /// Failed after every retry.
    pub failed: u64,
    /// Replaced by a newer command.
    pub superseded: u64,
    /// Failures by `error_kind`.
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Failed commands a day over the report's span (`None` under an hour).
    pub failures_per_day: Option<f64>,
    /// Per local day.
    pub days: Vec<DayCount>,
    /// Verified switches' `duration_ms`.
    pub switch_latency_ms: Option<Percentiles>,
    /// The longest outage.
    pub longest_outage: Option<Outage>,
    /// Wi-Fi signal.
    pub rssi: Option<Rssi>,
    /// Reads that found the plug switched by hand (then corrected).
    pub corrected: u64,
    /// The last dead-man state reported (`armed`, `cleared`, `unsupported`).
    pub deadman_last: Option<String>,
    /// Commands that found the dead-man unsupported.
    pub deadman_unsupported: u64,
    /// What to do about what was found.
    pub advice: Vec<String>,
}

/// Reads the two files in the range and makes the report.
pub fn report(opts: &ReportOptions) -> Result<Report, ReportError> {
    let readings_path = opts.log_dir.join(history::READINGS_FILE);
    let events_path = opts.log_dir.join(history::PLUG_EVENTS_FILE);
    let series = match Series::load(&readings_path, opts.since, opts.until) {
        Ok(s) => Some(s),
        Err(HistoryError::Missing { .. }) => None,
        Err(e) => return Err(ReportError::Data(e)),
    };
    let mut acc = EventsAcc::new(opts.zone.clone());
    let event_stats = match read_events(&events_path, opts.since, opts.until, |e| acc.add(e)) {
        Ok(s) => Some(s),
        Err(HistoryError::Missing { .. }) => None,
        Err(e) => return Err(ReportError::Data(e)),
    };
    if series.is_none() && event_stats.is_none() {
        return Err(ReportError::NoData {
            log_dir: opts.log_dir.clone(),
        });
    }
    let readings = Source {
        path: readings_path,
        found: series.is_some(),
        stats: series.as_ref().map(|s| s.stats.clone()).unwrap_or_default(),
    };
    let mut events = Source {
        path: events_path,
        found: event_stats.is_some(),
        stats: event_stats.unwrap_or_default(),
    };
    if !events.found {
        events.stats.notes.push(format!(
            "{} not found: plug health needs a version that writes it",
            history::PLUG_EVENTS_FILE
        ));
    }
    Ok(build(
        series.as_ref(),
        acc,
        readings,
        events,
        opts.since,
        opts.zone.clone(),
    ))
}

fn build(
    series: Option<&Series>,
    acc: EventsAcc,
    readings: Source,
    events: Source,
    since: Option<SystemTime>,
    zone: Zone,
) -> Report {
    let mut first = acc.first;
    let mut last = acc.last;
    if let Some(s) = series {
        if let (Some(a), Some(b)) = (s.samples.first(), s.samples.last()) {
            first = Some(first.map_or(a.t, |f: f64| f.min(a.t)));
            last = Some(last.map_or(b.t, |l: f64| l.max(b.t)));
        }
    }
    let chamber = series.filter(|s| !s.samples.is_empty()).map(chamber_of);
    let span_s = match (first, last) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    let plugs = acc.finish(last, span_s);
    Report {
        since: since.map(Stamp),
        from: first.map(|t| Stamp(from_unix_secs(t))),
        to: last.map(|t| Stamp(from_unix_secs(t))),
        zone: zone.describe(last.map_or(SystemTime::UNIX_EPOCH, from_unix_secs)),
        readings,
        events,
        chamber,
        plugs,
        display_zone: zone,
    }
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    }
}

/// The chamber air's range and means, from the lines that carry it.
fn air_of(series: &Series) -> Option<Air> {
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut sum, mut weight, mut set_sum, mut set_weight) = (0.0, 0.0, 0.0, 0.0);
    for (i, s) in series.samples.iter().enumerate() {
        let Some(a) = s.chamber else { continue };
        min = min.min(a);
        max = max.max(a);
        if let Some(w) = series.weight(i) {
            sum += a * w;
            weight += w;
            if let Some(set) = s.chamber_set {
                set_sum += set * w;
                set_weight += w;
            }
        }
    }
    min.is_finite().then(|| Air {
        min,
        max,
        mean: if weight > 0.0 {
            sum / weight
        } else {
            (min + max) / 2.0
        },
        setpoint_mean: (set_weight > 0.0).then(|| set_sum / set_weight),
    })
}

/// The chamber figures of a series (see the module doc for the rules).
pub(crate) fn chamber_of(series: &Series) -> ChamberSummary {
    let samples = &series.samples;
    let mut covered = 0.0;
    let mut no_data = 0.0;
    let mut valid = 0.0;
    let mut with_limits = 0.0;
    let (mut within, mut below, mut above) = (0.0, 0.0, 0.0);
    let mut weighted_sum = 0.0;
    let mut stale = 0.0;
    let (mut min, mut max) = (None::<f64>, None::<f64>);
    for (i, s) in samples.iter().enumerate() {
        if let Some(t) = s.temp {
            min = Some(min.map_or(t, |m| m.min(t)));
            max = Some(max.map_or(t, |m| m.max(t)));
        }
        let Some(w) = series.weight(i) else {
            if let Some(next) = samples.get(i + 1) {
                no_data += next.t - s.t;
            }
            continue;
        };
        covered += w;
        if s.stale {
            stale += w;
        }
        if let Some(t) = s.temp {
            valid += w;
            weighted_sum += t * w;
            if let (Some(lo), Some(hi)) = (s.low, s.high) {
                with_limits += w;
                if t < lo {
                    below += w;
                } else if t > hi {
                    above += w;
                } else {
                    within += w;
                }
            }
        }
    }
    let limits_known = samples.iter().any(|s| s.low.is_some());
    let air = air_of(series);
    let mut duty = Vec::new();
    let mut notes = Vec::new();
    type StateOf = fn(&Sample) -> Option<PlugState>;
    let plugs: [(&'static str, StateOf); 2] = [("heater", |s| s.heater), ("cooler", |s| s.cooler)];
    for (role, state_of) in plugs {
        if !samples.iter().any(|s| state_of(s).is_some()) {
            continue;
        }
        let (mut on, mut unknown, mut off) = (0.0, 0.0, 0.0);
        let mut switches = 0u64;
        let mut last_known = None;
        for (i, s) in samples.iter().enumerate() {
            let Some(st) = state_of(s) else { continue };
            if st != PlugState::Unknown {
                if last_known == Some(PlugState::On) && st == PlugState::Off {
                    switches += 1;
                }
                last_known = Some(st);
            }
            if let Some(w) = series.weight(i) {
                match st {
                    PlugState::On => on += w,
                    PlugState::Unknown => unknown += w,
                    PlugState::Off => off += w,
                }
            }
        }
        let reported = on + unknown + off;
        let per_hour = if reported > 0.0 {
            switches as f64 / (reported / 3600.0)
        } else {
            0.0
        };
        if role == "cooler" && per_hour > COMPRESSOR_MAX_SWITCHES_PER_HOUR {
            notes.push(format!(
                "The cooler switched off {per_hour:.1} times an hour. {COMPRESSOR_ADVICE}"
            ));
        }
        duty.push(Duty {
            role,
            on_s: on,
            unknown_s: unknown,
            off_s: off,
            on_pct: pct(on, reported),
            unknown_pct: pct(unknown, reported),
            switches,
            switches_per_hour: per_hour,
        });
    }
    if series.limits_fallback {
        notes.push(
            "Some lines were written by an older version without limits: they were \
             measured against the newest limits."
                .to_string(),
        );
    }
    ChamberSummary {
        units: series.units.as_str(),
        readings: samples.len(),
        cycle_s: series.cycle_s,
        covered_s: covered,
        no_data_s: no_data,
        valid_s: valid,
        within_limits_pct: (limits_known && with_limits > 0.0).then(|| pct(within, with_limits)),
        below_pct: (limits_known && with_limits > 0.0).then(|| pct(below, with_limits)),
        above_pct: (limits_known && with_limits > 0.0).then(|| pct(above, with_limits)),
        limits_fallback: series.limits_fallback,
        min,
        max,
        mean: (valid > 0.0).then(|| weighted_sum / valid),
        stale_s: stale,
        air,
        duty,
        alarms: alarm_periods(series),
        notes,
    }
}

fn alarm_periods(series: &Series) -> Vec<AlarmPeriod> {
    let samples = &series.samples;
    let mut out = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let Some(kind) = samples[i].alarm else {
            i += 1;
            continue;
        };
        let start = samples[i].t;
        let mut extreme: Option<f64> = None;
        let mut j = i;
        loop {
            if let Some(t) = samples[j].temp {
                extreme = Some(match (extreme, kind) {
                    (None, _) => t,
                    (Some(e), Alarm::High) => e.max(t),
                    (Some(e), Alarm::Low) => e.min(t),
                });
            }
            // The period goes on while the next line follows without a
            // gap and has the same alarm.
            let continues = series.weight(j).is_some() && samples[j + 1].alarm == Some(kind);
            if !continues {
                break;
            }
            j += 1;
        }
        // Ends at the next line when there is one without a gap.
        let end = match series.weight(j) {
            Some(_) => samples[j + 1].t,
            None => samples[j].t,
        };
        out.push(AlarmPeriod {
            kind,
            start: Stamp(from_unix_secs(start)),
            end: Stamp(from_unix_secs(end)),
            duration_s: end - start,
            extreme,
        });
        i = j + 1;
    }
    out
}

/// Per-plug counters, filled while the events stream by.
struct PlugAcc {
    hosts: Vec<String>,
    commands: u64,
    by_action: BTreeMap<String, u64>,
    ok_by_attempt: [u64; 3],
    ok: u64,
    failed: u64,
    superseded: u64,
    failures_by_kind: BTreeMap<String, u64>,
    days: BTreeMap<String, (u64, u64)>,
    switch_ms: Vec<(f64, u32)>,
    outage: Option<(f64, u64)>,
    longest: Option<Outage>,
    rssi: Vec<(f64, u32)>,
    rssi_last: Option<i32>,
    corrected: u64,
    deadman_last: Option<String>,
    deadman_unsupported: u64,
}

struct EventsAcc {
    zone: Zone,
    plugs: BTreeMap<String, PlugAcc>,
    first: Option<f64>,
    last: Option<f64>,
}

impl EventsAcc {
    fn new(zone: Zone) -> EventsAcc {
        EventsAcc {
            zone,
            plugs: BTreeMap::new(),
            first: None,
            last: None,
        }
    }

    fn add(&mut self, e: EventRecord) {
        let t = unix_secs(e.time);
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        let date = {
            let d = self.zone.datetime(e.time).date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        };
        let p = self.plugs.entry(e.role.clone()).or_insert_with(|| PlugAcc {
            hosts: Vec::new(),
            commands: 0,
            by_action: BTreeMap::new(),
            ok_by_attempt: [0; 3],
            ok: 0,
            failed: 0,
            superseded: 0,
            failures_by_kind: BTreeMap::new(),
            days: BTreeMap::new(),
            switch_ms: Vec::new(),
            outage: None,
            longest: None,
            rssi: Vec::new(),
            rssi_last: None,
            corrected: 0,
            deadman_last: None,
            deadman_unsupported: 0,
        });
        if let Some(h) = &e.host {
            if !p.hosts.contains(h) {
                p.hosts.push(h.clone());
            }
        }
        p.commands += 1;
        *p.by_action.entry(e.action.clone()).or_default() += 1;
        let day = p.days.entry(date).or_default();
        day.0 += 1;
        match e.outcome {
            EventOutcome::Ok => {
                p.ok += 1;
                p.ok_by_attempt[(e.attempts().max(1) as usize - 1).min(2)] += 1;
                if e.is_switch() {
                    if let Some(d) = e.duration_ms {
                        p.switch_ms.push((d, 0));
                    }
                }
                if let Some((start, n)) = p.outage.take() {
                    keep_longest(&mut p.longest, start, t, n, false);
                }
            }
            EventOutcome::Failed => {
                p.failed += 1;
                day.1 += 1;
                let kind = e.error_kind.clone().unwrap_or_else(|| "unknown".into());
                *p.failures_by_kind.entry(kind).or_default() += 1;
                match &mut p.outage {
                    Some((_, n)) => *n += 1,
                    None => p.outage = Some((t, 1)),
                }
            }
            EventOutcome::Superseded => p.superseded += 1,
            EventOutcome::Other => {}
        }
        // The reader keeps only -150..=0 dBm, so the casts are exact.
        if let Some(r) = e.rssi {
            p.rssi.push((r as f64, 0));
            p.rssi_last = Some(r as i32);
        }
        if e.corrected {
            p.corrected += 1;
        }
        if let Some(d) = e.deadman {
            if d == "unsupported" {
                p.deadman_unsupported += 1;
            }
            p.deadman_last = Some(d);
        }
    }

    fn finish(self, report_end: Option<f64>, span_s: f64) -> Vec<PlugHealth> {
        // The heater first, then the cooler, then anything else by name.
        let mut plugs = self.plugs;
        let mut ordered: Vec<(String, PlugAcc)> = Vec::new();
        for role in ["heater", "cooler"] {
            if let Some(p) = plugs.remove(role) {
                ordered.push((role.to_string(), p));
            }
        }
        ordered.extend(plugs);
        ordered
            .into_iter()
            .map(|(role, mut p)| {
                if let (Some((start, n)), Some(end)) = (p.outage.take(), report_end) {
                    keep_longest(&mut p.longest, start, end, n, true);
                }
                sort_keys(&mut p.switch_ms);
                let switch_latency_ms = percentiles(&p.switch_ms);
                sort_keys(&mut p.rssi);
                let rssi = match (p.rssi.first(), p.rssi_last) {
                    (Some(min), Some(last)) => Some(Rssi {
                        count: p.rssi.len(),
                        min: min.0 as i32,
                        median: p.rssi[(p.rssi.len() - 1) / 2].0 as i32,
                        last,
                    }),
                    _ => None,
                };
                let mut advice = Vec::new();
                if rssi.as_ref().is_some_and(|r| r.median < WEAK_SIGNAL_DBM) {
                    advice.push(WEAK_SIGNAL_ADVICE.to_string());
                }
                if p.deadman_unsupported > 0 {
                    advice.push(DEADMAN_UNSUPPORTED_ADVICE.to_string());
                }
                PlugHealth {
                    role,
                    hosts: p.hosts,
                    commands: p.commands,
                    by_action: p.by_action,
                    ok: p.ok,
                    ok_attempt_1: p.ok_by_attempt[0],
                    ok_attempt_2: p.ok_by_attempt[1],
                    ok_attempt_3_or_later: p.ok_by_attempt[2],
                    failed: p.failed,
                    superseded: p.superseded,
                    failures_by_kind: p.failures_by_kind,
                    failures_per_day: (span_s >= 3600.0)
                        .then(|| p.failed as f64 / (span_s / 86_400.0)),
                    days: p
                        .days
                        .into_iter()
                        .map(|(date, (commands, failed))| DayCount {
                            date,
                            commands,
                            failed,
                        })
                        .collect(),
                    switch_latency_ms,
                    longest_outage: p.longest,
                    rssi,
                    corrected: p.corrected,
                    deadman_last: p.deadman_last,
                    deadman_unsupported: p.deadman_unsupported,
                    advice,
                }
            })
            .collect()
    }
}

fn keep_longest(longest: &mut Option<Outage>, start: f64, end: f64, n: u64, ongoing: bool) {
    let duration = (end - start).max(0.0);
    if longest.as_ref().is_none_or(|l| duration > l.duration_s) {
        *longest = Some(Outage {
            start: Stamp(from_unix_secs(start)),
            end: Stamp(from_unix_secs(end)),
            duration_s: duration,
            failed_commands: n,
            ongoing,
        });
    }
}

/// Nearest-rank percentiles of sorted values.
fn percentiles(sorted: &[(f64, u32)]) -> Option<Percentiles> {
    let n = sorted.len();
    let rank = |p: f64| sorted[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1].0;
    (n > 0).then(|| Percentiles {
        count: n,
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: sorted[n - 1].0,
    })
}

// ---------------------------------------------------------------------------
// The text
// ---------------------------------------------------------------------------

fn local(zone: &Zone, t: SystemTime) -> String {
    let dt = zone.datetime(t);
    let f =
        time::macros::format_description!("[day padding:none] [month repr:short] [hour]:[minute]");
    dt.format(&f)
        .unwrap_or_else(|_| format_rfc3339(t, Precision::Millis))
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.0} ms")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = &self.display_zone;
        self.write_header(f)?;
        if let Some(c) = &self.chamber {
            write_chamber(f, c, z)?;
        }
        for p in &self.plugs {
            write_plug(f, p, z)?;
        }
        Ok(())
    }
}

impl Report {
    /// The range, the zone, and what reading each file found.
    fn write_header(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = &self.display_zone;
        match (self.from, self.to) {
            (Some(a), Some(b)) => writeln!(
                f,
                "Report for {} to {} ({})",
                local(z, a.0),
                local(z, b.0),
                self.zone
            )?,
            _ => writeln!(f, "Report: no lines in the range")?,
        }
        for src in [&self.readings, &self.events] {
            let name = src
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if src.found {
                write!(f, "  {name}: {} lines", src.stats.used)?;
                let damaged = src.stats.damaged_note();
                if !damaged.is_empty() {
                    write!(f, "; {damaged}")?;
                }
                writeln!(f)?;
            }
            for n in &src.stats.notes {
                writeln!(f, "  note: {n}")?;
            }
        }
        Ok(())
    }
}

/// The chamber: data coverage, time within limits, temperatures, duty,
/// alarms.
fn write_chamber(f: &mut fmt::Formatter<'_>, c: &ChamberSummary, z: &Zone) -> fmt::Result {
    let u = if c.units == "F" { Units::F } else { Units::C }.symbol();
    writeln!(f, "\nChamber")?;
    write!(
        f,
        "  data             {} readings every {} over {}",
        c.readings,
        human(c.cycle_s),
        human(c.covered_s)
    )?;
    if c.no_data_s > 0.0 {
        write!(f, " (no data for {})", human(c.no_data_s))?;
    }
    writeln!(f)?;
    match (c.within_limits_pct, c.below_pct, c.above_pct) {
        (Some(w), Some(b), Some(a)) => writeln!(
            f,
            "  within limits    {w:.1} % of the time (below {b:.1} %, above {a:.1} %)"
        )?,
        _ => writeln!(f, "  within limits    unknown (the lines carry no limits)")?,
    }
    if let (Some(lo), Some(mean), Some(hi)) = (c.min, c.mean, c.max) {
        writeln!(
            f,
            "  temperature      min {lo:.2}, mean {mean:.2}, max {hi:.2} {u}"
        )?;
    } else {
        writeln!(f, "  temperature      no valid reading")?;
    }
    if let Some(a) = &c.air {
        write!(
            f,
            "  chamber air      min {:.2}, mean {:.2}, max {:.2} {u}",
            a.min, a.mean, a.max
        )?;
        match a.setpoint_mean {
            Some(s) => writeln!(f, " (setpoint mean {s:.2} {u})")?,
            None => writeln!(f)?,
        }
    }
    writeln!(
        f,
        "  sensor stale     {}",
        if c.stale_s > 0.0 {
            human(c.stale_s)
        } else {
            "never".to_string()
        }
    )?;
    for d in &c.duty {
        write!(f, "  {:<16} on {:.1} %", d.role, d.on_pct)?;
        if d.unknown_s > 0.0 {
            write!(f, ", unknown {:.1} %", d.unknown_pct)?;
        }
        writeln!(
            f,
            "; {} switches ({:.1} an hour)",
            d.switches, d.switches_per_hour
        )?;
    }
    write_alarms(f, c, z, u)?;
    for n in &c.notes {
        writeln!(f, "  note: {n}")?;
    }
    Ok(())
}

/// The chamber's alarms, the first ten of them one a line.
fn write_alarms(f: &mut fmt::Formatter<'_>, c: &ChamberSummary, z: &Zone, u: &str) -> fmt::Result {
    if c.alarms.is_empty() {
        writeln!(f, "  alarms           none")?;
    } else {
        let total: f64 = c.alarms.iter().map(|a| a.duration_s).sum();
        writeln!(
            f,
            "  alarms           {} ({} in all)",
            c.alarms.len(),
            human(total)
        )?;
        for a in c.alarms.iter().take(10) {
            write!(
                f,
                "    {} {} for {}",
                a.kind.as_str(),
                local(z, a.start.0),
                human(a.duration_s)
            )?;
            if let Some(e) = a.extreme {
                let word = if a.kind == Alarm::High { "max" } else { "min" };
                write!(f, " ({word} {e:.2} {u})")?;
            }
            writeln!(f)?;
        }
        if c.alarms.len() > 10 {
            writeln!(f, "    ... and {} more (see --json)", c.alarms.len() - 10)?;
        }
    }
    Ok(())
}

/// One plug's health: commands, failures, latency, outages, signal, advice.
fn write_plug(f: &mut fmt::Formatter<'_>, p: &PlugHealth, z: &Zone) -> fmt::Result {
    write!(f, "\nPlug {}", p.role)?;
    if !p.hosts.is_empty() {
        write!(f, " ({})", p.hosts.join(", "))?;
    }
    writeln!(f)?;
    let actions: Vec<String> = p
        .by_action
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    writeln!(
        f,
        "  commands         {} ({})",
        p.commands,
        actions.join(", ")
    )?;
    writeln!(
        f,
        "  succeeded        {}: {} on attempt 1, {} on attempt 2, {} on attempt 3+",
        p.ok, p.ok_attempt_1, p.ok_attempt_2, p.ok_attempt_3_or_later
    )?;
    write!(f, "  failed           {}", p.failed)?;
    if let Some(r) = p.failures_per_day {
        write!(f, " ({r:.1} a day)")?;
    }
    if !p.failures_by_kind.is_empty() {
        let kinds: Vec<String> = p
            .failures_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        write!(f, ": {}", kinds.join(", "))?;
    }
    writeln!(f)?;
    if p.superseded > 0 {
        writeln!(f, "  superseded       {}", p.superseded)?;
    }
    match &p.switch_latency_ms {
        Some(l) => writeln!(
            f,
            "  switch latency   p50 {}, p90 {}, p99 {}, max {} ({} verified switches)",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            l.count
        )?,
        None => writeln!(f, "  switch latency   no verified switch")?,
    }
    match &p.longest_outage {
        Some(o) => writeln!(
            f,
            "  longest outage   {} from {} ({} failed commands{})",
            human(o.duration_s),
            local(z, o.start.0),
            o.failed_commands,
            if o.ongoing { ", STILL FAILING" } else { "" }
        )?,
        None => writeln!(f, "  longest outage   none")?,
    }
    match &p.rssi {
        Some(r) => writeln!(
            f,
            "  Wi-Fi signal     min {}, median {}, last {} dBm",
            r.min, r.median, r.last
        )?,
        None => writeln!(f, "  Wi-Fi signal     not reported")?,
    }
    writeln!(f, "  hand toggles     {} corrected", p.corrected)?;
    write!(
        f,
        "  dead-man         {}",
        p.deadman_last.as_deref().unwrap_or("not reported")
    )?;
    if p.deadman_unsupported > 0 {
        write!(f, " (unsupported in {} commands)", p.deadman_unsupported)?;
    }
    writeln!(f)?;
    for a in &p.advice {
        writeln!(f, "  advice: {a}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::parse_reading;
    use crate::records::ReadingRecord;

    fn series(lines: &[(u32, &str, &str, &str)]) -> Series {
        // (second, temperature, heater, cooler) lines; alarm "high" above 21.
        let readings: Vec<ReadingRecord> = lines
            .iter()
            .map(|(s, temp, h, c)| {
                let alarm = if temp.parse::<f64>().is_ok_and(|t| t > 21.0) { "\"high\"" } else { "null" };
                parse_reading(&format!(
                    r#"{{"time":"2026-11-28T{:02}:{:02}:{:02}Z","temperature":{temp},"low_limit":18,"high_limit":20,"alarm":{alarm},"heater":{{"state":"{h}"}},"cooler":{{"state":"{c}"}}}}"#,
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                ))
                .unwrap()
            })
            .collect();
        Series::from_readings(&readings)
    }

    #[test]
    fn the_chamber_air_is_reported_when_the_lines_carry_it() {
        // Three lines 10 s apart: air 15, 16, 20 (the last has no weight);
        // the setpoint only on the first two.
        let lines = [
            r#"{"time":"2026-11-28T00:00:00Z","temperature":19,"chamber_temperature":15,"chamber_setpoint":14}"#,
            r#"{"time":"2026-11-28T00:00:10Z","temperature":19,"chamber_temperature":16,"chamber_setpoint":16}"#,
            r#"{"time":"2026-11-28T00:00:20Z","temperature":19,"chamber_temperature":20}"#,
        ];
        let readings: Vec<ReadingRecord> =
            lines.iter().map(|l| parse_reading(l).unwrap()).collect();
        let c = chamber_of(&Series::from_readings(&readings));
        let a = c.air.expect("air");
        assert_eq!((a.min, a.max), (15.0, 20.0));
        assert_eq!(a.mean, 15.5);
        assert_eq!(a.setpoint_mean, Some(15.0));
        // Older lines: no air at all.
        let old = chamber_of(&series(&[
            (0, "19", "off", "off"),
            (10, "19", "off", "off"),
        ]));
        assert_eq!(old.air, None);
    }

    #[test]
    fn a_compressor_switching_often_gets_advice() {
        // The cooler turns off every 60 s: 60 times an hour. The heater the
        // same: no advice for a heater.
        let lines: Vec<(u32, &str, &str, &str)> = (0..360)
            .map(|i| {
                let s = if i % 6 < 3 { "on" } else { "off" };
                (i * 10, "19", s, s)
            })
            .collect();
        let c = chamber_of(&series(&lines));
        assert_eq!(c.duty.len(), 2);
        assert!(c.duty[1].switches_per_hour > 50.0, "{:?}", c.duty[1]);
        assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
        assert!(c.notes[0].contains("cooler") && c.notes[0].contains(COMPRESSOR_ADVICE));
        // Once in the hour: quiet.
        let slow: Vec<(u32, &str, &str, &str)> = (0..360)
            .map(|i| (i * 10, "19", "off", if i < 100 { "on" } else { "off" }))
            .collect();
        assert!(chamber_of(&series(&slow)).notes.is_empty());
    }

    #[test]
    fn alarm_periods_end_at_the_next_line_or_where_the_data_ends() {
        let c = chamber_of(&series(&[
            (0, "19", "off", "off"),
            (10, "21.5", "off", "off"),
            (20, "22.5", "off", "off"),
            (30, "20", "off", "off"),
            (40, "21.2", "off", "off"),
            // a gap: the service stopped during the alarm
            (1000, "21.3", "off", "off"),
            (1010, "21.1", "off", "off"),
        ]));
        let got: Vec<(f64, Option<f64>)> =
            c.alarms.iter().map(|a| (a.duration_s, a.extreme)).collect();
        assert_eq!(
            got,
            vec![(20.0, Some(22.5)), (0.0, Some(21.2)), (10.0, Some(21.3))]
        );
        assert_eq!(c.no_data_s, 960.0);
        assert_eq!(c.covered_s, 50.0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<(f64, u32)> = (1..=10).map(|i| (f64::from(i), 0)).collect();
        let p = percentiles(&v).unwrap();
        assert_eq!(
            (p.p50, p.p90, p.p99, p.max, p.count),
            (5.0, 9.0, 10.0, 10.0, 10)
        );
        let one = percentiles(&[(7.0, 0)]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(percentiles(&[]).is_none());
    }

    #[test]
    fn advice_texts_name_what_to_do() {
        assert!(WEAK_SIGNAL_ADVICE.contains("kasa-thermostat plug HOST sysinfo"));
        assert!(WEAK_SIGNAL_ADVICE.contains(&WEAK_SIGNAL_DBM.to_string()));
        assert!(COMPRESSOR_ADVICE.contains("min_on_s") && COMPRESSOR_ADVICE.contains("limits"));
    }
}
