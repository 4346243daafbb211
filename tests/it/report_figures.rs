//! `report` against a known run: the test writes `readings.jsonl` and
//! `plug-events.jsonl` for a run it makes up (pseudo-random but fixed: plug
//! states, moving limits, stale readings, alarms, a stopped service, retries,
//! failures, hand toggles, a plug without dead-man support, damaged lines),
//! keeps what it wrote, counts every figure from that by itself, and checks
//! the report's figures against those counts, for the whole run and for a
//! `--since` inside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use kasa_thermostat::clock::{format_rfc3339, parse_rfc3339, Precision, Zone};
use kasa_thermostat::history;

fn format_time(t: SystemTime) -> String {
    format_rfc3339(t, Precision::Millis)
}
use kasa_thermostat::report::{
    report, Report, ReportOptions, COMPRESSOR_ADVICE, WEAK_SIGNAL_ADVICE,
};

const CYCLE: f64 = 10.0;

/// A fixed pseudo-random sequence (an LCG; no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[((self.next() * items.len() as f64) as usize).min(items.len() - 1)]
    }
}

#[derive(Clone)]
struct Line {
    t: f64,
    temp: Option<f64>,
    low: f64,
    high: f64,
    heater: &'static str,
    cooler: &'static str,
    stale: bool,
    alarm: Option<&'static str>,
}

#[derive(Clone)]
struct Event {
    t: f64,
    role: &'static str,
    action: &'static str,
    outcome: &'static str,
    attempts: u32,
    duration_ms: f64,
    rssi: Option<i32>,
    error_kind: Option<&'static str>,
    deadman: Option<&'static str>,
    corrected: bool,
}

fn secs(s: &str) -> f64 {
    parse_rfc3339(s)
        .ok()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every time in the run is a whole millisecond.
fn time_of(t: f64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis((t * 1000.0).round() as u64)
}

/// Makes up the run and writes it to `dir`.
fn write_run(dir: &Path) -> (Vec<Line>, Vec<Event>) {
    let mut rng = Rng(20_261_128);
    let start = secs("2026-11-20T21:00:00Z");
    let states = ["on", "off", "unknown"];
    let mut lines = Vec::new();
    let mut t = start;
    let (mut heater, mut cooler) = ("off", "off");
    for i in 0..2400 {
        if i == 1200 {
            t += 900.0; // the service was stopped for 15 minutes
        }
        if rng.next() < 0.12 {
            heater = rng.pick(&states);
        }
        if rng.next() < 0.08 {
            cooler = rng.pick(&states);
        }
        let stale = (700..712).contains(&i);
        let low = ((18.5 + 0.0005 * f64::from(i)) * 1000.0).round() / 1000.0;
        // Now and then exactly on a limit: "within" includes both limits.
        let temp = (!stale).then(|| match rng.next() {
            x if x < 0.03 => low,
            x if x < 0.06 => low + 1.5,
            _ => ((18.0 + 3.0 * rng.next()) * 100.0).round() / 100.0,
        });
        let alarm = match temp {
            Some(v) if v > 20.85 => Some("high"),
            Some(v) if v < 18.1 => Some("low"),
            _ => None,
        };
        lines.push(Line {
            t,
            temp,
            low,
            high: low + 1.5,
            heater,
            cooler,
            stale,
            alarm,
        });
        t += CYCLE;
    }
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate() {
        let plug = |s: &str| {
            let verified = match s {
                "on" => "true",
                "off" => "false",
                _ => "null",
            };
            format!(r#"{{"desired":true,"verified":{verified},"state":"{s}"}}"#)
        };
        let _ = writeln!(
            text,
            r#"{{"time":"{}","temperature":{},"units":"C","mode":"heat_cool","low_limit":{},"high_limit":{},"reason":"r","alarm":{},"sensor_stale":{},"heater":{},"cooler":{}}}"#,
            format_time(time_of(l.t)),
            l.temp.map_or("null".to_string(), |v| v.to_string()),
            l.low,
            l.high,
            l.alarm.map_or("null".to_string(), |a| format!("\"{a}\"")),
            l.stale,
            plug(l.heater),
            plug(l.cooler),
        );
        if i == 300 {
            text.push_str("{\"time\":\"2026-11-2"); // torn by a full disk
        }
        if i == 1800 {
            text.push_str("\u{0}\u{0}\u{0}garbage\n");
        }
    }
    std::fs::write(dir.join(history::READINGS_FILE), text).unwrap();

    let mut events = Vec::new();
    let mut et = start + 3.0;
    for k in 0..900 {
        let role = if k % 2 == 0 { "heater" } else { "cooler" };
        let action = rng.pick(&["on", "off", "read", "read", "read", "arm_deadman"]);
        let r = rng.next();
        // The cooler has a bad spell in the middle.
        let bad = role == "cooler" && (400..460).contains(&k);
        let outcome = if bad || r < 0.08 {
            "failed"
        } else if r < 0.12 {
            "superseded"
        } else {
            "ok"
        };
        let attempts = if outcome == "failed" {
            3
        } else {
            *[1, 1, 1, 1, 2, 3, 1, 2]
                .get((rng.next() * 8.0) as usize)
                .unwrap_or(&1)
        };
        let rssi = (rng.next() < 0.8).then(|| {
            let base = if role == "cooler" { -74.0 } else { -60.0 };
            (base + (rng.next() * 10.0 - 5.0)).round() as i32
        });
        let deadman = match (role, action) {
            ("heater", "on" | "arm_deadman") => Some("armed"),
            ("heater", "off") => Some("cleared"),
            ("cooler", "arm_deadman") => Some("unsupported"),
            _ => None,
        };
        events.push(Event {
            t: et,
            role,
            action,
            outcome,
            attempts,
            duration_ms: (200.0 + rng.next() * 9000.0).round(),
            rssi,
            error_kind: (outcome == "failed")
                .then(|| rng.pick(&["timeout", "refused", "unreachable"])),
            deadman,
            corrected: action == "read" && outcome == "ok" && rng.next() < 0.05,
        });
        // Whole milliseconds, as the file holds them.
        et = ((et + 21.0 + rng.next() * 10.0) * 1000.0).round() / 1000.0;
    }
    let mut text = String::new();
    for (k, e) in events.iter().enumerate() {
        let _ = writeln!(
            text,
            r#"{{"time":"{}","role":"{}","host":"127.0.0.1:{}","action":"{}","outcome":"{}","state":null,"attempts":{},"attempt_ms":[1.0],"duration_ms":{},"rssi":{},"error_kind":{},"error":{},"deadman":{},"corrected":{}}}"#,
            format_time(time_of(e.t)),
            e.role,
            if e.role == "heater" { 9999 } else { 9998 },
            e.action,
            e.outcome,
            e.attempts,
            e.duration_ms,
            e.rssi.map_or("null".to_string(), |r| r.to_string()),
            e.error_kind
                .map_or("null".to_string(), |k| format!("\"{k}\"")),
            e.error_kind
                .map_or("null".to_string(), |k| format!("\"{k} (test)\"")),
            e.deadman.map_or("null".to_string(), |d| format!("\"{d}\"")),
            e.corrected,
        );
        if k == 10 {
            text.push_str("not json\n");
        }
    }
    std::fs::write(dir.join(history::PLUG_EVENTS_FILE), text).unwrap();
    (lines, events)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

macro_rules! assert_close {
    ($a:expr, $b:expr, $what:expr) => {
        assert!(close($a, $b), "{}: report {} vs counted {}", $what, $a, $b)
    };
}

/// Counts the chamber figures from the lines, the way the module doc
/// defines them, and compares.
fn check_chamber(r: &Report, lines: &[Line]) {
    let c = r.chamber.as_ref().expect("a chamber section");
    assert_eq!(c.readings, lines.len());
    assert_eq!(c.cycle_s, CYCLE);
    // How long each line lasts: until the next, unless that is a gap.
    let dur: Vec<Option<f64>> = (0..lines.len())
        .map(|i| {
            let next = lines.get(i + 1)?;
            let d = next.t - lines[i].t;
            (d <= 3.0 * CYCLE).then_some(d)
        })
        .collect();
    let total = |f: &dyn Fn(&Line) -> bool| -> f64 {
        lines
            .iter()
            .zip(&dur)
            .filter(|(l, _)| f(l))
            .filter_map(|(_, d)| *d)
            .sum()
    };
    let covered = total(&|_| true);
    assert_close!(c.covered_s, covered, "covered");
    let gaps: f64 = lines
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .filter(|d| *d > 3.0 * CYCLE)
        .sum();
    assert_close!(c.no_data_s, gaps, "no data");
    let valid = total(&|l| l.temp.is_some());
    assert_close!(c.valid_s, valid, "valid");
    let within = total(&|l| l.temp.is_some_and(|v| v >= l.low && v <= l.high));
    let below = total(&|l| l.temp.is_some_and(|v| v < l.low));
    let above = total(&|l| l.temp.is_some_and(|v| v > l.high));
    assert_close!(
        c.within_limits_pct.unwrap(),
        within / valid * 100.0,
        "within"
    );
    assert_close!(c.below_pct.unwrap(), below / valid * 100.0, "below");
    assert_close!(c.above_pct.unwrap(), above / valid * 100.0, "above");
    let temps: Vec<f64> = lines.iter().filter_map(|l| l.temp).collect();
    assert_eq!(c.min, temps.iter().copied().reduce(f64::min));
    assert_eq!(c.max, temps.iter().copied().reduce(f64::max));
    let weighted: f64 = lines
        .iter()
        .zip(&dur)
        .filter_map(|(l, d)| Some(l.temp? * (*d)?))
        .sum();
    assert_close!(c.mean.unwrap(), weighted / valid, "mean");
    assert_close!(c.stale_s, total(&|l| l.stale), "stale");

    for (role, state) in [
        ("heater", (|l: &Line| l.heater) as fn(&Line) -> &str),
        ("cooler", |l: &Line| l.cooler),
    ] {
        let d = c.duty.iter().find(|d| d.role == role).expect(role);
        let on = total(&|l| state(l) == "on");
        let unknown = total(&|l| state(l) == "unknown");
        let off = total(&|l| state(l) == "off");
        assert_close!(d.on_s, on, "on");
        assert_close!(d.unknown_s, unknown, "unknown");
        assert_close!(d.off_s, off, "off");
        assert_close!(d.on_pct, on / covered * 100.0, "on %");
        // on -> off, unknown lines passed over.
        let known: Vec<&str> = lines
            .iter()
            .map(state)
            .filter(|s| *s != "unknown")
            .collect();
        let switches = known
            .windows(2)
            .filter(|w| w[0] == "on" && w[1] == "off")
            .count();
        assert_eq!(d.switches as usize, switches, "{role} switches");
        assert!(switches > 5, "the run switches: {role} {switches}");
        assert_close!(
            d.switches_per_hour,
            switches as f64 / (covered / 3600.0),
            "per hour"
        );
        if role == "cooler" {
            let note = c.notes.iter().any(|n| n.contains(COMPRESSOR_ADVICE));
            assert_eq!(note, d.switches_per_hour > 6.0, "{:?}", c.notes);
        }
    }

    // Alarm periods: runs of lines with one alarm, no gap inside; each ends
    // at the next line (or its last line before a gap / the end).
    let mut periods: Vec<(&str, f64, f64, f64)> = Vec::new();
    let mut open: Option<(&str, f64, f64)> = None;
    for (i, l) in lines.iter().enumerate() {
        if let Some((kind, start, ext)) = open {
            if l.alarm == Some(kind) && dur[i - 1].is_some() {
                let v = l.temp.unwrap();
                let ext = if kind == "high" {
                    ext.max(v)
                } else {
                    ext.min(v)
                };
                open = Some((kind, start, ext));
            } else {
                let end = if dur[i - 1].is_some() {
                    l.t
                } else {
                    lines[i - 1].t
                };
                periods.push((kind, start, end, ext));
                open = None;
            }
        }
        if open.is_none() {
            if let Some(kind) = l.alarm {
                open = Some((kind, l.t, l.temp.unwrap()));
            }
        }
    }
    if let Some((kind, start, ext)) = open {
        periods.push((kind, start, lines.last().unwrap().t, ext));
    }
    assert!(periods.len() > 20, "the run has alarms: {}", periods.len());
    assert_eq!(c.alarms.len(), periods.len());
    for (a, (kind, start, end, ext)) in c.alarms.iter().zip(&periods) {
        assert_eq!(a.kind.as_str(), *kind);
        assert_eq!(format_time(a.start.0), format_time(time_of(*start)));
        assert_eq!(format_time(a.end.0), format_time(time_of(*end)));
        assert_close!(a.duration_s, end - start, "alarm duration");
        assert_eq!(a.extreme, Some(*ext));
    }
}

/// Counts each plug's figures from the events and compares.
fn check_plugs(r: &Report, events: &[Event], span_s: f64, end: f64) {
    assert_eq!(
        r.plugs.iter().map(|p| p.role.as_str()).collect::<Vec<_>>(),
        ["heater", "cooler"]
    );
    for p in &r.plugs {
        let mine: Vec<&Event> = events.iter().filter(|e| e.role == p.role).collect();
        let count = |f: &dyn Fn(&Event) -> bool| mine.iter().filter(|e| f(e)).count() as u64;
        assert_eq!(p.commands, mine.len() as u64);
        for action in ["on", "off", "read", "arm_deadman"] {
            assert_eq!(
                p.by_action.get(action).copied().unwrap_or(0),
                count(&|e| e.action == action),
                "{action}"
            );
        }
        assert_eq!(p.ok, count(&|e| e.outcome == "ok"));
        assert_eq!(
            p.ok_attempt_1,
            count(&|e| e.outcome == "ok" && e.attempts == 1)
        );
        assert_eq!(
            p.ok_attempt_2,
            count(&|e| e.outcome == "ok" && e.attempts == 2)
        );
        assert_eq!(
            p.ok_attempt_3_or_later,
            count(&|e| e.outcome == "ok" && e.attempts >= 3)
        );
        let failed = count(&|e| e.outcome == "failed");
        assert_eq!(p.failed, failed);
        assert_eq!(p.superseded, count(&|e| e.outcome == "superseded"));
        for kind in ["timeout", "refused", "unreachable"] {
            assert_eq!(
                p.failures_by_kind.get(kind).copied().unwrap_or(0),
                count(&|e| e.error_kind == Some(kind)),
            );
        }
        assert_close!(
            p.failures_per_day.unwrap(),
            failed as f64 * 86_400.0 / span_s,
            "per day"
        );
        // Per UTC day.
        let mut days: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for e in &mine {
            let d = days
                .entry(format_time(time_of(e.t))[..10].to_string())
                .or_default();
            d.0 += 1;
            d.1 += u64::from(e.outcome == "failed");
        }
        let got: BTreeMap<String, (u64, u64)> = p
            .days
            .iter()
            .map(|d| (d.date.clone(), (d.commands, d.failed)))
            .collect();
        assert_eq!(got, days);
        // Latency of verified switches, nearest rank.
        let mut lat: Vec<f64> = mine
            .iter()
            .filter(|e| e.outcome == "ok" && (e.action == "on" || e.action == "off"))
            .map(|e| e.duration_ms)
            .collect();
        lat.sort_by(f64::total_cmp);
        let l = p.switch_latency_ms.as_ref().unwrap();
        let n = lat.len();
        assert_eq!(l.count, n);
        let nearest = |p: usize| lat[(p * n).div_ceil(100) - 1];
        assert_eq!(
            (l.p50, l.p90, l.p99, l.max),
            (nearest(50), nearest(90), nearest(99), lat[n - 1])
        );
        // The longest outage.
        let mut longest: Option<(f64, f64, u64, bool)> = None;
        let mut run: Option<(f64, u64)> = None;
        let mut consider = |s: f64, e: f64, n: u64, ongoing: bool| {
            if longest.is_none_or(|l| e - s > l.1 - l.0) {
                longest = Some((s, e, n, ongoing));
            }
        };
        for e in &mine {
            match e.outcome {
                "failed" => run = Some(run.map_or((e.t, 1), |(s, n)| (s, n + 1))),
                "ok" => {
                    if let Some((s, n)) = run.take() {
                        consider(s, e.t, n, false);
                    }
                }
                _ => {}
            }
        }
        if let Some((s, n)) = run {
            consider(s, end, n, true);
        }
        let (s, e, n, ongoing) = longest.unwrap();
        let o = p.longest_outage.as_ref().unwrap();
        assert_eq!(format_time(o.start.0), format_time(time_of(s)));
        assert_eq!(format_time(o.end.0), format_time(time_of(e)));
        assert_eq!((o.failed_commands, o.ongoing), (n, ongoing));
        if p.role == "cooler" {
            assert!(
                o.failed_commands >= 30,
                "the bad spell is the longest: {o:?}"
            );
        }
        // Signal.
        let mut rssi: Vec<i32> = mine.iter().filter_map(|e| e.rssi).collect();
        let last = *rssi.last().unwrap();
        rssi.sort();
        let got = p.rssi.as_ref().unwrap();
        assert_eq!(
            (got.count, got.min, got.median, got.last),
            (rssi.len(), rssi[0], rssi[(rssi.len() - 1) / 2], last)
        );
        let weak = rssi[(rssi.len() - 1) / 2] < -70;
        assert_eq!(p.advice.iter().any(|a| a == WEAK_SIGNAL_ADVICE), weak);
        assert_eq!(weak, p.role == "cooler", "the cooler is the one far away");
        assert_eq!(p.corrected, count(&|e| e.corrected));
        assert!(p.corrected > 0 || p.role == "cooler");
        let last_deadman = mine.iter().rev().find_map(|e| e.deadman);
        assert_eq!(p.deadman_last.as_deref(), last_deadman);
        assert_eq!(
            p.deadman_unsupported,
            count(&|e| e.deadman == Some("unsupported"))
        );
    }
}

#[test]
fn every_figure_matches_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, events) = write_run(dir.path());
    let mut opts = ReportOptions::new(dir.path().to_path_buf());
    opts.zone = Zone::utc();
    let r = report(&opts).unwrap();

    assert_eq!(r.readings.stats.used, lines.len() as u64);
    assert_eq!(r.readings.stats.damaged, 2, "{:?}", r.readings.stats);
    assert_eq!(r.events.stats.used, events.len() as u64);
    assert_eq!(r.events.stats.damaged, 1);
    let first = lines[0].t.min(events[0].t);
    let last = lines.last().unwrap().t.max(events.last().unwrap().t);
    assert_eq!(
        r.from.map(|s| format_time(s.0)),
        Some(format_time(time_of(first)))
    );
    assert_eq!(
        r.to.map(|s| format_time(s.0)),
        Some(format_time(time_of(last)))
    );
    check_chamber(&r, &lines);
    check_plugs(&r, &events, last - first, last);

    // The text says the same things, and the JSON has them under their names.
    let text = r.to_string();
    let heater = &r.plugs[0];
    for want in [
        format!("commands         {}", heater.commands),
        format!("{} on attempt 2", heater.ok_attempt_2),
        "2 damaged lines skipped".to_string(),
        format!(
            "within limits    {:.1} %",
            r.chamber.as_ref().unwrap().within_limits_pct.unwrap()
        ),
        "advice: The Wi-Fi signal is weak".to_string(),
        "dead-man         unsupported".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} missing in:\n{text}");
    }
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["plugs"][1]["failed"], r.plugs[1].failed);
    assert_eq!(json["chamber"]["duty"][0]["role"], "heater");
    assert_eq!(json["readings"]["damaged"], 2);
    assert!(json["chamber"]["alarms"][0]["start"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[test]
fn since_counts_only_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let (lines, events) = write_run(dir.path());
    // Inside the run, after the stale spell, before the stop.
    let since = lines[800].t - 1.0;
    let mut opts = ReportOptions::new(dir.path().to_path_buf());
    opts.zone = Zone::utc();
    opts.since = Some(time_of(since));
    let r = report(&opts).unwrap();
    let lines: Vec<Line> = lines.into_iter().filter(|l| l.t >= since).collect();
    let events: Vec<Event> = events.into_iter().filter(|e| e.t >= since).collect();
    assert_eq!(r.readings.stats.used, lines.len() as u64);
    assert_eq!(
        r.since.map(|s| format_time(s.0)),
        Some(format_time(time_of(since)))
    );
    let first = lines[0].t.min(events[0].t);
    let last = lines.last().unwrap().t.max(events.last().unwrap().t);
    check_chamber(&r, &lines);
    check_plugs(&r, &events, last - first, last);
}

#[test]
fn a_missing_file_is_a_note_and_both_missing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = report(&ReportOptions::new(dir.path().to_path_buf())).unwrap_err();
    assert!(e.to_string().contains("--log-dir"), "{e}");
    write_run(dir.path());
    std::fs::remove_file(dir.path().join(history::PLUG_EVENTS_FILE)).unwrap();
    let r = report(&ReportOptions::new(dir.path().to_path_buf())).unwrap();
    assert!(r.plugs.is_empty() && r.chamber.is_some());
    assert!(r.to_string().contains("plug-events.jsonl not found"), "{r}");
}
