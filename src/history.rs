//! ReadingRecord back what the service wrote: `readings.jsonl` (one line per control
//! cycle) and `plug-events.jsonl` (one line per finished plug command), for
//! `plot`, `report` and `status`.
//!
//! The reader is liberal on purpose. These files live for weeks, outlive
//! versions of the program and survive full disks and power cuts, so:
//! * a damaged line (torn, garbage, NUL-filled after a crash) is skipped and
//!   counted, never fatal; when a torn line runs into the next whole line,
//!   that whole line is recovered;
//! * lines written by older versions (no limits, no plug `state`) are read
//!   with sensible fallbacks;
//! * the files are streamed line by line, never read whole; lines before
//!   `--since` are skipped after parsing only their timestamp;
//! * logrotate's plain rotated files (`readings.jsonl.1`) are read too when
//!   `--since` reaches back into them; compressed ones (`.gz`) are skipped
//!   with a note (decompressing would add a dependency for a rare case).
//!
//! Parsing is separate from I/O: `parse_reading` and `parse_event` take a
//! line of text and return the [`crate::records`] types the service writes
//! them from.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clock::{human, parse_rfc3339, unix_secs};
use crate::records::{Alarm, EventOutcome, EventRecord, PlugState, ReadingRecord};
use crate::units::Units;

pub use crate::records::{PLUG_EVENTS_FILE, READINGS_FILE};

/// A line longer than this is garbage (a real line is a few hundred bytes);
/// it is skipped without being held in memory.
const MAX_LINE: usize = 64 * 1024;

/// A line that is not a record (torn, garbage, not the expected shape, a
/// bad `time`): counted as damaged and skipped.
#[derive(Debug)]
pub(crate) enum LineError {
    /// Not a JSON object (serde would read an array field by field).
    NotAnObject,
    /// JSON, but not a record of the expected shape.
    Json(serde_json::Error),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NotAnObject => write!(f, "not a data line: not a JSON object"),
            LineError::Json(e) => write!(f, "not a data line: {e}"),
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LineError::NotAnObject => None,
            LineError::Json(e) => Some(e),
        }
    }
}

fn parse_object<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, LineError> {
    if !line.trim_start().starts_with('{') {
        return Err(LineError::NotAnObject);
    }
    serde_json::from_str(line).map_err(LineError::Json)
}

/// Parses one line of `readings.jsonl` (see [`crate::records`] for what is
/// liberal about it).
#[inline(never)]
pub(crate) fn parse_reading(line: &str) -> Result<ReadingRecord, LineError> {
    parse_object(line)
}

/// Parses one line of `plug-events.jsonl`.
#[inline(never)]
pub(crate) fn parse_event(line: &str) -> Result<EventRecord, LineError> {
    parse_object(line)
}

/// The timestamp of a line written the way the service writes them
/// (`{"time":"...",`), without parsing the rest: lets a reader skip lines
/// before `--since` cheaply.
fn quick_time(line: &str) -> Option<SystemTime> {
    let rest = line.strip_prefix("{\"time\":\"")?;
    let end = rest.find('"')?;
    parse_rfc3339(&rest[..end]).ok()
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// The data files could not be read.
#[derive(Debug)]
pub enum HistoryError {
    /// Neither the file nor a rotated copy exists: check `--log-dir` /
    /// `--readings` (the service writes these files in its `log_dir`).
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// ReadingRecord failed: check the file's permissions and the disk.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Missing { path } => write!(
                f,
                "{} does not exist: point --log-dir at the service's log_dir \
                 (it writes {READINGS_FILE} and {PLUG_EVENTS_FILE} there)",
                path.display()
            ),
            HistoryError::Read { path, .. } => write!(
                f,
                "cannot read {} (check its permissions: the service's log files may \
                 need sudo or the service's group)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for HistoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HistoryError::Missing { .. } => None,
            HistoryError::Read { source, .. } => Some(source),
        }
    }
}

/// One file of a log and its rotated copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFile {
    /// Its path.
    pub path: PathBuf,
    /// Compressed by logrotate (`.gz`): not read.
    pub compressed: bool,
}

/// The log `base` and its logrotate copies, oldest first: `base.3`, `base.2`,
/// `base.1`, `base` (numbered), or `base-20261127`, `base-20261128`, `base`
/// (`dateext`); each possibly `.gz`.
pub(crate) fn log_files(base: &Path) -> Vec<LogFile> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = base.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    // Sorted so that older comes first: numbered ones (a higher number is
    // older), then dateext ones (a later date is newer).
    let mut rotated: Vec<(f64, LogFile)> = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let fname = entry.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            let Some(rest) = fname.strip_prefix(name) else {
                continue;
            };
            let (rest, compressed) = match rest.strip_suffix(".gz") {
                Some(r) => (r, true),
                None => (rest, false),
            };
            let key = if let Some(n) = rest.strip_prefix('.') {
                n.parse::<u32>().ok().map(|n| -f64::from(n))
            } else if let Some(d) = rest.strip_prefix('-') {
                d.parse::<u32>().ok().map(|d| 1e10 + f64::from(d))
            } else {
                None
            };
            if let Some(key) = key {
                rotated.push((
                    key,
                    LogFile {
                        path: dir.join(fname),
                        compressed,
                    },
                ));
            }
        }
    }
    let mut keys: Vec<(f64, u32)> = rotated
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i as u32))
        .collect();
    sort_keys(&mut keys);
    let mut files: Vec<LogFile> = keys
        .iter()
        .map(|&(_, i)| rotated[i as usize].1.clone())
        .collect();
    if base.exists() {
        files.push(LogFile {
            path: base.to_path_buf(),
            compressed: false,
        });
    }
    files
}

/// What reading a log found, to be told to the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReadStats {
    /// The files read, oldest first.
    pub files: Vec<PathBuf>,
    /// Lines in the time range that were used.
    pub used: u64,
    /// Damaged lines skipped (torn, garbage, not the expected shape).
    pub damaged: u64,
    /// Where the first damaged line is (`path:line`), to look at it.
    pub first_damaged: Option<String>,
    /// Things the user should know (a compressed file skipped, ...).
    pub notes: Vec<String>,
}

impl ReadStats {
    /// `, 3 damaged lines skipped (the first at F:12)`, or nothing.
    pub(crate) fn damaged_note(&self) -> String {
        match (self.damaged, &self.first_damaged) {
            (0, _) => String::new(),
            (n, Some(at)) => format!(
                "{n} damaged line{} skipped (the first at {at})",
                if n == 1 { "" } else { "s" }
            ),
            (n, None) => format!("{n} damaged lines skipped"),
        }
    }
}

/// Streams the records of the log `base` (and its plain rotated copies)
/// whose time is in `[since, until)`, oldest file first, calling `each` for
/// every one. Damaged lines are counted in the returned stats, not errors.
pub(crate) fn read_log<T>(
    base: &Path,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    parse: fn(&str) -> Result<T, LineError>,
    time_of: fn(&T) -> SystemTime,
    mut each: impl FnMut(T),
) -> Result<ReadStats, HistoryError> {
    read_log_lines(base, since, &mut |line| match parse(line) {
        Ok(rec) => {
            let t = time_of(&rec);
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
                Take::OutOfRange
            } else {
                each(rec);
                Take::Used(t)
            }
        }
        Err(_) => Take::Damaged,
    })
}

/// What became of a line.
enum Take {
    Used(SystemTime),
    OutOfRange,
    Damaged,
}

/// The file handling of [`read_log`], not generic (one copy in the binary
/// for both logs): `take` parses a line and says what became of it.
fn read_log_lines(
    base: &Path,
    since: Option<SystemTime>,
    take: &mut dyn FnMut(&str) -> Take,
) -> Result<ReadStats, HistoryError> {
    let files = log_files(base);
    if files.is_empty() {
        return Err(HistoryError::Missing {
            path: base.to_path_buf(),
        });
    }
    let mut stats = ReadStats::default();
    let mut first_seen: Option<SystemTime> = None;
    let mut skipped_gz = Vec::new();
    for file in &files {
        if file.compressed {
            skipped_gz.push(file.path.clone());
            continue;
        }
        let is_base = file.path == base;
        if !is_base {
            // A rotated file ends where the next one starts: skip it whole
            // when its last line is before `since`.
            if let (Some(since), Some(last)) = (since, last_time(&file.path)) {
                if last < since {
                    continue;
                }
            }
        }
        let f = File::open(&file.path).map_err(|source| HistoryError::Read {
            path: file.path.clone(),
            source,
        })?;
        stats.files.push(file.path.clone());
        read_lines(f, |lineno, line| {
            let line = match line {
                Some(l) => l,
                None => {
                    note_damaged(&mut stats, &file.path, lineno);
                    return;
                }
            };
            let line = line.trim_end_matches(['\r', '\n']);
            if line.trim().is_empty() {
                return;
            }
            // A torn line that ran into the next one: the tail, from the
            // last `{"time":`, is a whole line.
            let (line, torn) = match line.rfind("{\"time\":") {
                Some(0) | None => (line, false),
                Some(i) => (&line[i..], true),
            };
            if torn {
                note_damaged(&mut stats, &file.path, lineno);
            }
            if let Some(since) = since {
                if quick_time(line).is_some_and(|t| t < since) {
                    return;
                }
            }
            match take(line) {
                Take::Used(t) => {
                    first_seen = Some(first_seen.map_or(t, |f: SystemTime| f.min(t)));
                    stats.used += 1;
                }
                Take::OutOfRange => {}
                // A torn line is counted once.
                Take::Damaged if torn => {}
                Take::Damaged => note_damaged(&mut stats, &file.path, lineno),
            }
        })
        .map_err(|source| HistoryError::Read {
            path: file.path.clone(),
            source,
        })?;
    }
    // A compressed file matters only if the plain ones do not reach back to
    // `since` (or there is no `since`: everything was asked for).
    let reaches_back = match (since, first_seen) {
        (Some(s), Some(f)) => f > s + Duration::from_secs(3600),
        _ => true,
    };
    if !skipped_gz.is_empty() && reaches_back {
        let names: Vec<String> = skipped_gz.iter().map(|p| p.display().to_string()).collect();
        stats.notes.push(format!(
            "compressed rotated file{} not read: {} (gunzip a copy next to it to include it)",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    Ok(stats)
}

fn note_damaged(stats: &mut ReadStats, path: &Path, lineno: u64) {
    stats.damaged += 1;
    if stats.first_damaged.is_none() {
        stats.first_damaged = Some(format!("{}:{lineno}", path.display()));
    }
}

/// Calls `each(line_number, Some(line))` for each line of `r` (1-based),
/// `each(n, None)` for a line that is not UTF-8 or is longer than
/// [`MAX_LINE`] (its bytes are not kept).
fn read_lines(r: impl Read, mut each: impl FnMut(u64, Option<&str>)) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut too_long = false;
    let mut lineno = 0u64;
    loop {
        let (done, used) = {
            let chunk = match reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                (true, 0)
            } else {
                match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        if !too_long {
                            buf.extend_from_slice(&chunk[..i]);
                        }
                        lineno += 1;
                        emit(&mut buf, &mut too_long, lineno, &mut each);
                        (false, i + 1)
                    }
                    None => {
                        if !too_long {
                            buf.extend_from_slice(chunk);
                        }
                        (false, chunk.len())
                    }
                }
            }
        };
        if done {
            break;
        }
        reader.consume(used);
        if buf.len() > MAX_LINE {
            too_long = true;
            buf.clear();
        }
    }
    if !buf.is_empty() || too_long {
        lineno += 1;
        emit(&mut buf, &mut too_long, lineno, &mut each);
    }
    Ok(())
}

fn emit(
    buf: &mut Vec<u8>,
    too_long: &mut bool,
    lineno: u64,
    each: &mut impl FnMut(u64, Option<&str>),
) {
    if *too_long || buf.len() > MAX_LINE {
        each(lineno, None);
    } else {
        // NUL bytes (a crash on some filesystems leaves blocks of them) are
        // valid UTF-8: the caller sees them as a torn start of a line.
        match std::str::from_utf8(buf) {
            Ok(s) => each(lineno, Some(s)),
            Err(_) => {
                // Garbage then a whole line: keep the line.
                let text = String::from_utf8_lossy(buf);
                match text.rfind("{\"time\":") {
                    Some(i) if i > 0 => {
                        let tail = text[i..].to_string();
                        // Counted as damaged by the caller (torn).
                        each(lineno, Some(&format!("\u{fffd}{tail}")));
                    }
                    _ => each(lineno, None),
                }
            }
        }
    }
    buf.clear();
    *too_long = false;
}

/// The time of the last whole line of a file, read from its end.
fn last_time(path: &Path) -> Option<SystemTime> {
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(16 * 1024);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    f.take(16 * 1024).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines().rev().find_map(|l| {
        let l = l.trim();
        l.rfind("{\"time\":").and_then(|i| quick_time(&l[i..]))
    })
}

/// Reads `readings.jsonl` at `path` (and its rotated copies) in `[since,
/// until)`.
pub(crate) fn read_readings(
    path: &Path,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    each: impl FnMut(ReadingRecord),
) -> Result<ReadStats, HistoryError> {
    read_log(path, since, until, parse_reading, |r| r.time, each)
}

/// Reads `plug-events.jsonl` at `path` (and its rotated copies) in `[since,
/// until)`.
pub(crate) fn read_events(
    path: &Path,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    each: impl FnMut(EventRecord),
) -> Result<ReadStats, HistoryError> {
    read_log(path, since, until, parse_event, |e| e.time, each)
}

/// The whole lines in the last `max_bytes` of a file, oldest first (for
/// `status`, which wants only the recent end of a long file). The first,
/// possibly partial, line of the window is dropped unless the window is the
/// whole file.
pub(crate) fn tail_lines(path: &Path, max_bytes: u64) -> io::Result<Vec<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    f.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    f.take(max_bytes).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------
// The readings as a time series
// ---------------------------------------------------------------------------

/// A gap between lines longer than this many median cycles is "no data"
/// (the service was stopped, the Pi was off), not a long-held state.
pub(crate) const GAP_FACTOR: f64 = 3.0;

/// One cycle, compacted for the plot and the report: the files are
/// streamed and only this is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// The temperature in the series' units.
    pub temp: Option<f64>,
    /// The low limit in force (or the fallback for older lines).
    pub low: Option<f64>,
    /// The high limit in force (or the fallback for older lines).
    pub high: Option<f64>,
    /// The active alarm.
    pub alarm: Option<Alarm>,
    /// The sensor was stale.
    pub stale: bool,
    /// The heater's state (`None`: not configured).
    pub heater: Option<PlugState>,
    /// The cooler's state (`None`: not configured).
    pub cooler: Option<PlugState>,
    /// The chamber (air) temperature, cascade control.
    pub chamber: Option<f64>,
    /// The chamber setpoint, cascade control.
    pub chamber_set: Option<f64>,
}

/// The readings in a time range, in one unit, oldest first, with the data
/// gaps identified.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The samples, sorted by time.
    pub samples: Vec<Sample>,
    /// The units of every temperature in `samples` (the newest line's).
    pub units: Units,
    /// The median time between lines, s (0 with fewer than two lines).
    pub cycle_s: f64,
    /// How long a line's state may last before the rest is "no data", s.
    pub max_gap_s: f64,
    /// Lines that carried no limits were given the newest line's limits.
    pub limits_fallback: bool,
    /// What reading the files found.
    pub stats: ReadStats,
}

impl Series {
    /// Reads `readings.jsonl` at `path` (and rotated copies) in `[since,
    /// until)`.
    pub fn load(
        path: &Path,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
    ) -> Result<Series, HistoryError> {
        let mut readings = Vec::new();
        let stats = read_readings(path, since, until, |r| {
            readings.push((r.units, to_sample(&r)));
        })?;
        Ok(Series::from_parts(readings, stats))
    }

    #[cfg(test)]
    /// Builds a series from parsed readings (tests use this without files).
    pub(crate) fn from_readings(readings: &[ReadingRecord]) -> Series {
        let parts = readings.iter().map(|r| (r.units, to_sample(r))).collect();
        Series::from_parts(parts, ReadStats::default())
    }

    fn from_parts(mut parts: Vec<(Option<Units>, Sample)>, stats: ReadStats) -> Series {
        // A clock step (a Pi without a real-time clock before NTP) can put
        // lines out of order; equal times keep their file order.
        if parts.windows(2).any(|w| w[1].1.t < w[0].1.t) {
            let mut keys: Vec<(f64, u32)> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| (p.1.t, i as u32))
                .collect();
            sort_keys(&mut keys);
            let mut slots: Vec<Option<(Option<Units>, Sample)>> =
                parts.into_iter().map(Some).collect();
            parts = keys
                .iter()
                .filter_map(|&(_, i)| slots[i as usize].take())
                .collect();
        }
        let units = parts.iter().rev().find_map(|(u, _)| *u).unwrap_or(Units::C);
        let mut samples: Vec<Sample> = parts
            .into_iter()
            .map(|(u, mut s)| {
                let from = u.unwrap_or(Units::C);
                if from != units {
                    let conv = |v: f64| units.from_c(from.to_c(v));
                    s.temp = s.temp.map(conv);
                    s.low = s.low.map(conv);
                    s.high = s.high.map(conv);
                    s.chamber = s.chamber.map(conv);
                    s.chamber_set = s.chamber_set.map(conv);
                }
                s
            })
            .collect();
        // Older lines carry no limits: give them the newest known ones.
        let fallback = samples.iter().rev().find_map(|s| s.low.zip(s.high));
        let mut limits_fallback = false;
        if let Some((lo, hi)) = fallback {
            for s in samples
                .iter_mut()
                .filter(|s| s.low.is_none() || s.high.is_none())
            {
                s.low = Some(lo);
                s.high = Some(hi);
                limits_fallback = true;
            }
        }
        let cycle_s = median_gap(&samples);
        Series {
            samples,
            units,
            cycle_s,
            max_gap_s: cycle_s * GAP_FACTOR,
            limits_fallback,
            stats,
        }
    }

    /// How long sample `i`'s state lasts: until the next line, or `None`
    /// when the gap to it is "no data" (longer than [`Series::max_gap_s`])
    /// or there is no next line.
    pub(crate) fn weight(&self, i: usize) -> Option<f64> {
        let next = self.samples.get(i + 1)?;
        let dt = next.t - self.samples[i].t;
        (dt <= self.max_gap_s).then_some(dt.max(0.0))
    }
}

fn to_sample(r: &ReadingRecord) -> Sample {
    Sample {
        t: unix_secs(r.time),
        temp: r.temperature,
        low: r.low_limit,
        high: r.high_limit,
        alarm: r.alarm,
        stale: r.sensor_stale,
        heater: r.heater.map(|p| p.state()),
        cooler: r.cooler.map(|p| p.state()),
        chamber: r.chamber_temperature,
        chamber_set: r.chamber_setpoint,
    }
}

fn median_gap(samples: &[Sample]) -> f64 {
    let mut gaps: Vec<(f64, u32)> = samples
        .windows(2)
        .map(|w| (w[1].t - w[0].t, 0))
        .filter(|d| d.0 > 0.0)
        .collect();
    if gaps.is_empty() {
        return 0.0;
    }
    sort_keys(&mut gaps);
    gaps[(gaps.len() - 1) / 2].0
}

/// Sorts by the number, then the index. The one sort the plot and the report
/// use (each instance of a std sort costs several KiB of binary).
#[inline(never)]
pub(crate) fn sort_keys(keys: &mut [(f64, u32)]) {
    keys.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
}

// ---------------------------------------------------------------------------
// For `status`
// ---------------------------------------------------------------------------

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Columns of [`sparkline`].
pub(crate) const SPARKLINE_WIDTH: usize = 30;

/// A one-line sparkline of the temperature over the `window` before `now`,
/// with its range: `▃▄▅▆▇█▇▆▅▄▃▂▁▁▂ 18.02..19.87 °C (last 1 h 00 min)`. Reads
/// only the end of the file. `None` when there is no valid reading in the
/// window (or no file).
pub(crate) fn sparkline(readings_path: &Path, window: Duration, now: SystemTime) -> Option<String> {
    let from = now.checked_sub(window)?;
    // A line is ~300 bytes: 2 MiB is over 6000 lines, more than an hour at
    // any sane cycle_s; a shorter tail only shortens the line drawn.
    let lines = tail_lines(readings_path, 2 * 1024 * 1024).ok()?;
    let mut points = Vec::new();
    let mut units = None;
    for line in &lines {
        if quick_time(line).is_some_and(|t| t < from) {
            continue;
        }
        if let Ok(r) = parse_reading(line) {
            if r.time >= from && r.time <= now {
                if let Some(t) = r.temperature {
                    units = r.units.or(units);
                    points.push((unix_secs(r.time), t));
                }
            }
        }
    }
    let spark = sparkline_of(&points, unix_secs(from), unix_secs(now), SPARKLINE_WIDTH)?;
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, t)| {
            (lo.min(*t), hi.max(*t))
        });
    Some(format!(
        "{spark} {lo:.2}..{hi:.2} {} (last {})",
        units.unwrap_or(Units::C).symbol(),
        human(window.as_secs_f64())
    ))
}

/// The sparkline characters for `(time, value)` points over `[from, to]` in
/// `width` columns: each column shows the mean of its points, scaled from
/// the lowest to the highest point; a column with no point is a space.
/// `None` without points.
pub(crate) fn sparkline_of(
    points: &[(f64, f64)],
    from: f64,
    to: f64,
    width: usize,
) -> Option<String> {
    if points.is_empty() || width == 0 || to <= from {
        return None;
    }
    let mut sums = vec![(0.0f64, 0u32); width];
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &(t, v) in points {
        if t < from || t > to {
            continue;
        }
        let col = (((t - from) / (to - from)) * width as f64).floor() as usize;
        let col = col.min(width - 1);
        sums[col].0 += v;
        sums[col].1 += 1;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return None;
    }
    Some(
        sums.iter()
            .map(|&(sum, n)| {
                if n == 0 {
                    ' '
                } else if hi - lo < 1e-9 {
                    SPARKS[3]
                } else {
                    let x = (sum / f64::from(n) - lo) / (hi - lo);
                    SPARKS[((x * 8.0).floor() as usize).min(7)]
                }
            })
            .collect(),
    )
}

/// The last failed command of a plug, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastPlugError {
    /// When it failed.
    pub time: SystemTime,
    /// The message (or the error kind when the line has no message).
    pub error: String,
    /// A later command to the same plug succeeded.
    pub recovered: bool,
}

/// The last failure per plug role in the recent end of `plug-events.jsonl`
/// (the last 4 MiB, about a week of a healthy service). Empty when there is
/// no file or no failure.
pub(crate) fn last_plug_errors(events_path: &Path) -> BTreeMap<String, LastPlugError> {
    let mut out: BTreeMap<String, LastPlugError> = BTreeMap::new();
    let Ok(lines) = tail_lines(events_path, 4 * 1024 * 1024) else {
        return out;
    };
    for line in &lines {
        let Ok(e) = parse_event(line) else { continue };
        match e.outcome {
            EventOutcome::Failed => {
                let error = e
                    .error
                    .or(e.error_kind)
                    .unwrap_or_else(|| format!("{} failed", e.action));
                out.insert(
                    e.role,
                    LastPlugError {
                        time: e.time,
                        error,
                        recovered: false,
                    },
                );
            }
            EventOutcome::Ok => {
                if let Some(last) = out.get_mut(&e.role) {
                    if e.time >= last.time {
                        last.recovered = true;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::clock::{format_rfc3339, Precision};

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    fn format_time(t: SystemTime) -> String {
        format_rfc3339(t, Precision::Millis)
    }

    #[test]
    fn a_new_line_is_read_whole() {
        let r = parse_reading(
            r#"{"time":"2026-11-28T21:00:00.000Z","temperature":18.25,"units":"C","mode":"heat_cool",
             "low_limit":18.0,"high_limit":20.0,"reason":"r","alarm":"high","sensor_stale":false,
             "heater":{"desired":true,"verified":null,"state":"unknown"},
             "cooler":{"desired":false,"verified":false,"state":"off"},"later_key":1}"#,
        )
        .unwrap();
        assert_eq!(r.time, at("2026-11-28T21:00:00Z"));
        assert_eq!(r.temperature, Some(18.25));
        assert_eq!(r.units, Some(Units::C));
        assert_eq!((r.low_limit, r.high_limit), (Some(18.0), Some(20.0)));
        assert_eq!(r.alarm, Some(Alarm::High));
        assert_eq!(r.heater.unwrap().state(), PlugState::Unknown);
        assert_eq!(r.cooler.unwrap().state(), PlugState::Off);
    }

    #[test]
    fn an_old_line_gets_its_state_from_verified() {
        let r = parse_reading(
            r#"{"time":"2026-11-28T21:00:00.000Z","temperature":null,"units":"F","mode":"heat",
             "reason":"r","alarm":null,"sensor_stale":true,"heater":{"desired":true,"verified":true},
             "cooler":{"desired":null,"verified":null}}"#,
        )
        .unwrap();
        assert_eq!(r.temperature, None);
        assert_eq!(r.low_limit, None);
        assert!(r.sensor_stale);
        assert_eq!(r.heater.unwrap().state(), PlugState::On);
        assert_eq!(r.cooler.unwrap().state(), PlugState::Unknown);
    }

    #[test]
    fn an_event_line_is_read_whole() {
        let e = parse_event(
            r#"{"time":"2026-11-28T21:00:05.123Z","role":"heater","host":"10.0.0.5:9999","action":"on",
             "outcome":"ok","state":"on","attempts":2,"attempt_ms":[6003.2,612.4],"duration_ms":7620.1,
             "rssi":-58,"error_kind":null,"error":null,"deadman":"armed","corrected":false}"#,
        )
        .unwrap();
        assert_eq!(e.role, "heater");
        assert_eq!(e.outcome, EventOutcome::Ok);
        assert_eq!(e.attempts(), 2);
        assert_eq!(e.attempt_ms, vec![6003.2, 612.4]);
        assert_eq!(e.duration_ms, Some(7620.1));
        assert_eq!(e.rssi, Some(-58));
        assert_eq!(e.deadman.as_deref(), Some("armed"));
        assert!(e.is_switch() && !e.corrected);
        let f = parse_event(
            r#"{"time":"2026-11-28T21:00:05Z","role":"cooler","action":"read","outcome":"failed",
                "attempt_ms":[3000,3000,3000],"error_kind":"timeout","error":"10.0.0.6: timed out"}"#,
        )
        .unwrap();
        assert_eq!(f.attempts(), 3, "attempts from attempt_ms when absent");
        assert_eq!(f.outcome, EventOutcome::Failed);
        assert_eq!(f.error_kind.as_deref(), Some("timeout"));
    }

    fn line(t: &str, temp: f64) -> String {
        format!(
            r#"{{"time":"{t}","temperature":{temp},"units":"C","mode":"heat","low_limit":18.0,"high_limit":20.0,"alarm":null,"sensor_stale":false,"heater":{{"desired":true,"verified":true,"state":"on"}}}}"#
        )
    }

    #[test]
    fn damaged_lines_are_skipped_counted_and_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(READINGS_FILE);
        let good1 = line("2026-11-28T21:00:00.000Z", 18.0);
        let good2 = line("2026-11-28T21:00:10.000Z", 18.1);
        let good3 = line("2026-11-28T21:00:20.000Z", 18.2);
        let torn = &good2[..40];
        let text = format!(
            "{good1}\n{torn}{good2}\nnot json at all\n\n\0\0\0\0{good3}\n{}\n{{\"time\":\"yesterday\"}}\n\u{0}\u{0}",
            "x".repeat(MAX_LINE + 10)
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        fs::write(&path, bytes).unwrap();
        let mut got = Vec::new();
        let stats = read_readings(&path, None, None, |r| got.push(r.temperature.unwrap())).unwrap();
        assert_eq!(
            got,
            vec![18.0, 18.1, 18.2],
            "the torn line's whole tail is recovered"
        );
        // torn prefix, "not json", the long line, the bad time, the NUL tail,
        // the non-UTF-8 line.
        assert_eq!(stats.damaged, 6, "{stats:?}");
        assert_eq!(stats.used, 3);
        assert_eq!(
            stats.first_damaged.as_deref(),
            Some(format!("{}:2", path.display()).as_str())
        );
        assert!(stats.damaged_note().contains("6 damaged lines skipped"));
    }

    #[test]
    fn since_reaches_into_rotated_files_and_skips_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join(READINGS_FILE);
        fs::write(
            dir.path().join("readings.jsonl.2"),
            line("2026-11-20T00:00:00.000Z", 10.0) + "\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("readings.jsonl.1"),
            [
                line("2026-11-27T00:00:00.000Z", 11.0),
                line("2026-11-27T12:00:00.000Z", 12.0),
            ]
            .join("\n"),
        )
        .unwrap();
        fs::write(dir.path().join("readings.jsonl.3.gz"), b"\x1f\x8b").unwrap();
        fs::write(&base, line("2026-11-28T00:00:00.000Z", 13.0) + "\n").unwrap();
        let files = log_files(&base);
        let names: Vec<_> = files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "readings.jsonl.3.gz",
                "readings.jsonl.2",
                "readings.jsonl.1",
                "readings.jsonl"
            ]
        );
        let mut got = Vec::new();
        let since = at("2026-11-27T06:00:00Z");
        let stats = read_readings(&base, Some(since), None, |r| {
            got.push(r.temperature.unwrap())
        })
        .unwrap();
        assert_eq!(got, vec![12.0, 13.0]);
        assert_eq!(
            stats.files.len(),
            2,
            "readings.jsonl.2 ends before --since: not opened"
        );
        assert!(
            stats
                .notes
                .iter()
                .any(|n| n.contains("readings.jsonl.3.gz")),
            "{stats:?}"
        );
        let mut all = Vec::new();
        read_readings(&base, None, Some(at("2026-11-28T00:00:00Z")), |r| {
            all.push(r.temperature.unwrap())
        })
        .unwrap();
        assert_eq!(all, vec![10.0, 11.0, 12.0], "until is exclusive");
    }

    #[test]
    fn a_missing_log_names_the_path_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(READINGS_FILE);
        let e = read_readings(&p, None, None, |_| {}).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&p.display().to_string()) && msg.contains("--log-dir"),
            "{msg}"
        );
    }

    #[test]
    fn a_series_converts_units_fills_old_limits_and_finds_gaps() {
        let mk = |t: &str, temp: f64, units: Units, limits: Option<(f64, f64)>| ReadingRecord {
            time: at(t),
            temperature: Some(temp),
            units: Some(units),
            mode: None,
            low_limit: limits.map(|l| l.0),
            high_limit: limits.map(|l| l.1),
            reason: None,
            alarm: None,
            sensor_stale: false,
            heater: None,
            cooler: None,
            chamber_temperature: Some(temp - 1.0),
            chamber_setpoint: None,
            chamber_stale: Some(false),
        };
        let s = Series::from_readings(&[
            mk("2026-11-28T21:00:10Z", 68.0, Units::F, None),
            mk("2026-11-28T21:00:00Z", 66.2, Units::F, None),
            mk("2026-11-28T21:00:20Z", 20.5, Units::C, Some((18.0, 20.0))),
            mk("2026-11-28T21:00:30Z", 20.6, Units::C, Some((18.0, 20.0))),
            mk("2026-11-28T21:10:30Z", 20.7, Units::C, Some((18.5, 20.5))),
        ]);
        assert_eq!(s.units, Units::C);
        let temps: Vec<f64> = s
            .samples
            .iter()
            .map(|x| (x.temp.unwrap() * 100.0).round() / 100.0)
            .collect();
        assert_eq!(
            temps,
            vec![19.0, 20.0, 20.5, 20.6, 20.7],
            "sorted by time, °F converted"
        );
        assert!(s.limits_fallback);
        assert_eq!(
            s.samples[0].low,
            Some(18.5),
            "the newest limits fill older lines"
        );
        assert_eq!(s.cycle_s, 10.0);
        assert_eq!(s.weight(0), Some(10.0));
        assert_eq!(s.weight(3), None, "a 10-minute gap is no data");
        assert_eq!(s.weight(4), None, "the last line has no next line");
    }

    #[test]
    fn the_sparkline_scales_columns_between_min_and_max() {
        let pts: Vec<(f64, f64)> = (0..8)
            .map(|i| (f64::from(i) * 10.0 + 1.0, f64::from(i)))
            .collect();
        assert_eq!(sparkline_of(&pts, 0.0, 80.0, 8).unwrap(), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline_of(&pts[..2], 0.0, 40.0, 4).unwrap(), "▁█  ");
        assert_eq!(sparkline_of(&[(1.0, 5.0)], 0.0, 10.0, 2).unwrap(), "▄ ");
        assert_eq!(sparkline_of(&[], 0.0, 10.0, 2), None);
    }

    #[test]
    fn the_status_sparkline_reads_the_last_hour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(READINGS_FILE);
        let now = at("2026-11-28T21:00:00Z");
        let mut text = line("2026-11-28T19:00:00.000Z", 99.0) + "\n"; // outside the hour
        for i in 0..360 {
            let t = format_time(now - Duration::from_secs(3600) + Duration::from_secs(i * 10));
            text += &(line(&t, 18.0 + i as f64 / 180.0) + "\n");
        }
        fs::write(&path, text).unwrap();
        let s = sparkline(&path, Duration::from_secs(3600), now).unwrap();
        assert!(
            s.starts_with('▁') && s.contains("█ 18.00..19.99 °C (last 1 h 00 min)"),
            "{s}"
        );
        assert_eq!(
            s.chars().take_while(|c| SPARKS.contains(c)).count(),
            SPARKLINE_WIDTH
        );
        assert_eq!(
            sparkline(
                &path,
                Duration::from_secs(3600),
                now + Duration::from_secs(7200)
            ),
            None
        );
        assert_eq!(
            sparkline(&dir.path().join("none"), Duration::from_secs(60), now),
            None
        );
    }

    #[test]
    fn last_plug_errors_keeps_the_latest_failure_per_role() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PLUG_EVENTS_FILE);
        let ev = |t: &str, role: &str, outcome: &str, err: &str| {
            format!(
                r#"{{"time":"{t}","role":"{role}","action":"on","outcome":"{outcome}","error":{err}}}"#
            )
        };
        let text = [
            ev("2026-11-28T20:00:00Z", "heater", "failed", "\"first\""),
            ev("2026-11-28T20:01:00Z", "heater", "failed", "\"second\""),
            ev("2026-11-28T20:02:00Z", "cooler", "failed", "\"cool fail\""),
            ev("2026-11-28T20:03:00Z", "cooler", "ok", "null"),
            "garbage".to_string(),
        ]
        .join("\n");
        fs::write(&path, text).unwrap();
        let m = last_plug_errors(&path);
        assert_eq!(m.len(), 2);
        assert_eq!(m["heater"].error, "second");
        assert_eq!(m["heater"].time, at("2026-11-28T20:01:00Z"));
        assert!(!m["heater"].recovered);
        assert!(m["cooler"].recovered);
        assert!(last_plug_errors(&dir.path().join("none")).is_empty());
    }
}
