//! `kasa-thermostat plot`: draws `readings.jsonl` as an SVG a person can read
//! in a browser or an image viewer: the temperature, the low/high band (which
//! moves when a profile moves the limits), the heater and cooler on-spans in
//! lanes under it (unknown states hatched), sensor-stale periods shaded, alarm
//! periods drawn in red, data gaps hatched grey, and a time axis in local time.
//!
//! The SVG is written by hand, not with a plotting crate: `plotters` (SVG
//! backend only, no default features; commit c2e26db) drew the same picture
//! for 105 KiB of the static aarch64 binary, this costs 24 KiB, and the
//! picture needs only rectangles, polylines, text and hatch patterns (an
//! `unknown` plug state must look different from `on`, also in grey-scale),
//! which plotters cannot express anyway. The viewer renders the text. A week
//! at a 10 s cycle is 60 000 points; the line keeps only each pixel column's
//! first, lowest, highest and last point, so the file stays small (~180 KB
//! for a week) and no peak is lost.
//!
//! `render_svg` is pure (a `Series` in, SVG text out) so tests check the
//! drawing without files; [`plot`] reads the files and writes the SVG.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use std::fmt::Write as _;

use crate::clock::{format_rfc3339, from_unix_secs, Precision, Zone};
use crate::history::{HistoryError, ReadStats, Sample, Series};
use crate::records::PlugState;

/// Why no plot was written.
#[derive(Debug)]
pub enum PlotError {
    /// The readings could not be read (see the cause).
    Data(HistoryError),
    /// There is no reading in the range: try a longer `--since`.
    NoReadings {
        /// The readings file.
        path: PathBuf,
        /// The start of the range asked for (`None`: everything).
        since: Option<SystemTime>,
        /// Damaged lines seen (all lines damaged also ends here).
        damaged: u64,
    },
    /// The SVG could not be written: check `--out`'s directory.
    Write {
        /// The output path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlotError::Data(e) => write!(f, "cannot plot: {e}"),
            PlotError::NoReadings {
                path,
                since,
                damaged,
            } => {
                write!(f, "no readings to plot in {}", path.display())?;
                if let Some(s) = since {
                    write!(
                        f,
                        " since {} (try a longer --since, e.g. --since 7d)",
                        format_rfc3339(*s, Precision::Millis)
                    )?;
                }
                if *damaged > 0 {
                    write!(f, "; {damaged} damaged lines were skipped")?;
                }
                Ok(())
            }
            PlotError::Write { path, .. } => write!(
                f,
                "cannot write the plot to {} (check --out and its directory)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::Data(e) => Some(e),
            PlotError::Write { source, .. } => Some(source),
            PlotError::NoReadings { .. } => None,
        }
    }
}

impl From<HistoryError> for PlotError {
    fn from(e: HistoryError) -> Self {
        PlotError::Data(e)
    }
}

/// What `kasa-thermostat plot` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// `readings.jsonl` (`--readings FILE`, or `--log-dir DIR` joined with
    /// [`crate::history::READINGS_FILE`]); its rotated copies are read as needed.
    pub readings: PathBuf,
    /// The start of the range (`--since`, resolved with
    /// [`crate::clock::Since::resolve`]); `None`: everything.
    pub since: Option<SystemTime>,
    /// The end of the range (exclusive); `None`: up to the last line.
    pub until: Option<SystemTime>,
    /// Where the SVG goes (`--out`).
    pub out: PathBuf,
    /// The zone of the time axis ([`Zone::local_or_utc`] for people).
    pub zone: Zone,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// The default size: fits a laptop screen, readable on a phone.
pub(crate) const DEFAULT_SIZE: (u32, u32) = (1200, 640);

impl PlotOptions {
    /// Everything in `readings`, drawn to `out` in local time at
    /// `DEFAULT_SIZE`.
    pub fn new(readings: PathBuf, out: PathBuf) -> PlotOptions {
        PlotOptions {
            readings,
            since: None,
            until: None,
            out,
            zone: Zone::local_or_utc(),
            size: DEFAULT_SIZE,
        }
    }
}

/// Where the temperature chart's data space lands in the SVG, so that a test
/// (or a curious person) can map a reading to its point: `t` goes to
/// `x_px.0 + (x_px.1 - x_px.0) * (t - t_range.0) / (t_range.1 - t_range.0)`
/// and a temperature likewise from `y_range` onto `y_px` (bottom to top),
/// both written with one decimal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// SVG x of the start and the end of the time range.
    pub x_px: (f64, f64),
    /// SVG y of the bottom and the top of the temperature range.
    pub y_px: (f64, f64),
    /// The time range, Unix seconds.
    pub t_range: (f64, f64),
    /// The temperature range, in the data's units.
    pub y_range: (f64, f64),
}

/// What [`plot`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    /// The SVG written.
    pub out: PathBuf,
    /// Readings drawn.
    pub readings: usize,
    /// The first reading's time.
    pub from: SystemTime,
    /// The last reading's time.
    pub to: SystemTime,
    /// How the time axis is labelled (`local time, UTC+01:00`).
    pub zone: String,
    /// What reading the files found (damaged lines, notes).
    pub stats: ReadStats,
    /// Things the user should know (the band is a fallback, the data is old).
    pub notes: Vec<String>,
    /// The temperature chart's geometry.
    pub frame: Frame,
}

impl fmt::Display for PlotSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wrote {}: {} readings, {} to {} ({})",
            self.out.display(),
            self.readings,
            format_rfc3339(self.from, Precision::Millis),
            format_rfc3339(self.to, Precision::Millis),
            self.zone
        )?;
        let damaged = self.stats.damaged_note();
        if !damaged.is_empty() {
            write!(f, "\nnote: {damaged}")?;
        }
        for n in self.stats.notes.iter().chain(&self.notes) {
            write!(f, "\nnote: {n}")?;
        }
        Ok(())
    }
}

/// Reads the readings in the range and writes the SVG plot.
pub fn plot(opts: &PlotOptions) -> Result<PlotSummary, PlotError> {
    let series = Series::load(&opts.readings, opts.since, opts.until)?;
    if series.samples.is_empty() {
        return Err(PlotError::NoReadings {
            path: opts.readings.clone(),
            since: opts.since,
            damaged: series.stats.damaged,
        });
    }
    let (svg, frame) = render_svg(&series, &opts.zone, opts.size);
    fs::write(&opts.out, svg).map_err(|source| PlotError::Write {
        path: opts.out.clone(),
        source,
    })?;
    let from = from_unix_secs(series.samples[0].t);
    let to = from_unix_secs(series.samples[series.samples.len() - 1].t);
    let mut notes = Vec::new();
    if series.limits_fallback {
        notes.push(
            "some lines were written by an older version without limits: the band there \
             shows the newest limits"
                .to_string(),
        );
    }
    if series.samples.iter().all(|s| s.temp.is_none()) {
        notes.push("no line in the range has a valid temperature".to_string());
    }
    Ok(PlotSummary {
        out: opts.out.clone(),
        readings: series.samples.len(),
        from,
        to,
        zone: opts.zone.describe(to),
        stats: series.stats.clone(),
        notes,
        frame,
    })
}

// Colours: the heater warm, the cooler cool, both told apart in grey scale
// by their lanes and labels; unknown states hatched.
const TEMP_LINE: &str = "#1F3B73";
/// Cascade control: the chamber (air) temperature and its setpoint.
const CHAMBER_LINE: &str = "#8E44AD";
const SETPOINT_LINE: &str = "#E67E22";
const BAND: &str = "#2CA02C";
const HEATER: &str = "#E4572E";
const COOLER: &str = "#2E86DE";
const ALARM: &str = "#D62728";
const STALE: &str = "#DFDFDF";
const LANE_OFF: &str = "#EEEEEE";
const GRID: &str = "#DDDDDD";
const AXIS: &str = "#555555";
const TEXT: &str = "#222222";
const HATCH_HEATER: &str = "url(#hatch-heater)";
const HATCH_COOLER: &str = "url(#hatch-cooler)";
const HATCH_NODATA: &str = "url(#hatch-nodata)";

/// The hatch patterns: (id, stripe, ground).
const HATCHES: [(&str, &str, &str); 3] = [
    ("hatch-heater", HEATER, "#FBE3DA"),
    ("hatch-cooler", COOLER, "#DCEAF9"),
    ("hatch-nodata", "#C8C8C8", "#FFFFFF"),
];

const FONT_SIZE: f64 = 13.0;
const LEFT: f64 = 78.0;
const RIGHT_MARGIN: f64 = 24.0;
const LANE_H: f64 = 24.0;
const LEGEND_ROW_H: f64 = 22.0;

/// A run of samples with data and no gap, for the lines and the band.
fn runs(series: &Series) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..series.samples.len() {
        let last = i + 1 == series.samples.len();
        if last || series.weight(i).is_none() {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    out
}

/// Time spans over which `key` holds, merging neighbours with the same key:
/// a sample's state lasts until the next line (not over a data gap).
pub(crate) fn spans<K: PartialEq + Copy>(
    series: &Series,
    key: impl Fn(&Sample) -> Option<K>,
) -> Vec<(f64, f64, K)> {
    let mut out: Vec<(f64, f64, K)> = Vec::new();
    for (i, s) in series.samples.iter().enumerate() {
        let (Some(w), Some(k)) = (series.weight(i), key(s)) else {
            continue;
        };
        if w <= 0.0 {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.2 == k && (last.1 - s.t).abs() < 1e-9 => last.1 = s.t + w,
            _ => out.push((s.t, s.t + w, k)),
        }
    }
    out
}

/// Data gaps (no line for longer than the series' gap limit).
fn gaps(series: &Series) -> Vec<(f64, f64)> {
    (0..series.samples.len().saturating_sub(1))
        .filter(|&i| series.weight(i).is_none())
        .map(|i| (series.samples[i].t, series.samples[i + 1].t))
        .collect()
}

/// Keeps at most the first, lowest, highest and last point of each of
/// `cols` time columns, in time order: the line looks the same at this
/// width, and every peak survives.
fn decimate(points: &[(f64, f64)], t0: f64, t1: f64, cols: usize) -> Vec<(f64, f64)> {
    if points.len() <= cols * 4 || t1 <= t0 {
        return points.to_vec();
    }
    let col_of = |t: f64| (((t - t0) / (t1 - t0)) * cols as f64).floor() as i64;
    let mut out = Vec::with_capacity(cols * 4);
    let mut i = 0;
    while i < points.len() {
        let c = col_of(points[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && col_of(points[j].0) == c {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        // In time order: the first, the extremes in their order, the last.
        let keep = [i, lo.min(hi), lo.max(hi), j - 1];
        let mut prev = usize::MAX;
        for k in keep {
            if k != prev {
                out.push(points[k]);
                prev = k;
            }
        }
        i = j;
    }
    out
}

/// Tick instants on the time axis: aligned to the local clock (whole hours,
/// local midnights), about `max_ticks` of them at most.
fn time_ticks(t0: f64, t1: f64, zone: &Zone, max_ticks: usize) -> (Vec<f64>, f64) {
    const STEPS: [f64; 14] = [
        60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10_800.0, 21_600.0, 43_200.0,
        86_400.0, 172_800.0, 604_800.0,
    ];
    let span = t1 - t0;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= max_ticks as f64)
        .unwrap_or_else(|| (span / max_ticks as f64 / 86_400.0).ceil() * 86_400.0);
    let offset = |t: f64| f64::from(zone.offset_secs(from_unix_secs(t)));
    // Align in local wall-clock seconds; days (and more) from local midnight.
    let align = step.min(86_400.0);
    let mut ticks = Vec::new();
    let mut t = t0;
    while t <= t1 && ticks.len() < 1000 {
        let local = t + offset(t);
        let aligned = (local / align).ceil() * align;
        let tick = aligned - offset(t);
        if tick > t1 {
            break;
        }
        if tick >= t0 && ticks.last().is_none_or(|l: &f64| tick - l > 1.0) {
            ticks.push(tick);
        }
        t = tick + step.max(1.0);
    }
    (ticks, step)
}

fn tick_label(t: f64, step: f64, zone: &Zone) -> String {
    let dt = zone.datetime(from_unix_secs(t));
    let midnight = dt.hour() == 0 && dt.minute() == 0;
    if step >= 86_400.0 || midnight {
        let f = time::macros::format_description!(
            "[weekday repr:short] [day padding:none] [month repr:short]"
        );
        dt.format(&f).unwrap_or_default()
    } else {
        let f = time::macros::format_description!("[hour]:[minute]");
        dt.format(&f).unwrap_or_default()
    }
}

fn title_time(t: f64, zone: &Zone) -> String {
    let dt = zone.datetime(from_unix_secs(t));
    let f = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year] [hour]:[minute]"
    );
    dt.format(&f).unwrap_or_default()
}

/// Builds SVG text; every number is written with one decimal.
struct Svg {
    out: String,
}

impl Svg {
    fn rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, fill: &str, extra: &str) {
        let (x, w) = (x0.min(x1), (x1 - x0).abs());
        let (y, h) = (y0.min(y1), (y1 - y0).abs());
        let _ = writeln!(
            self.out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"{extra}/>"#
        );
    }

    fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, stroke: &str, width: f64) {
        let _ = writeln!(
            self.out,
            r#"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="{stroke}" stroke-width="{width}"/>"#
        );
    }

    fn points(&mut self, pts: impl Iterator<Item = (f64, f64)>) {
        for (i, (x, y)) in pts.enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(self.out, "{sep}{x:.1},{y:.1}");
        }
    }

    fn polyline(
        &mut self,
        pts: impl Iterator<Item = (f64, f64)>,
        stroke: &str,
        width: f64,
        class: &str,
    ) {
        let _ = write!(
            self.out,
            r#"<polyline class="{class}" fill="none" stroke="{stroke}" stroke-width="{width}" stroke-linejoin="round" points=""#
        );
        self.points(pts);
        self.out.push_str("\"/>\n");
    }

    /// A dashed polyline (the chamber's lines, behind the product's).
    fn dashed(
        &mut self,
        pts: impl Iterator<Item = (f64, f64)>,
        stroke: &str,
        width: f64,
        dash: &str,
        class: &str,
    ) {
        let _ = write!(
            self.out,
            r#"<polyline class="{class}" fill="none" stroke="{stroke}" stroke-width="{width}" stroke-dasharray="{dash}" stroke-linejoin="round" points=""#
        );
        self.points(pts);
        self.out.push_str("\"/>\n");
    }

    fn polygon(
        &mut self,
        pts: impl Iterator<Item = (f64, f64)>,
        fill: &str,
        opacity: f64,
        class: &str,
    ) {
        let _ = write!(
            self.out,
            r#"<polygon class="{class}" fill="{fill}" fill-opacity="{opacity}" stroke="none" points=""#
        );
        self.points(pts);
        self.out.push_str("\"/>\n");
    }

    /// `anchor`: start, middle or end.
    fn text(&mut self, x: f64, y: f64, anchor: &str, size: f64, text: &str, extra: &str) {
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="{TEXT}"{extra}>"#
        );
        for c in text.chars() {
            match c {
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '&' => self.out.push_str("&amp;"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("</text>\n");
    }
}

/// A step for about `max` labels over `span` degrees: 0.1, 0.2, 0.25, 0.5,
/// 1, 2, 5, 10...
fn value_step(span: f64, max: f64) -> f64 {
    let mut unit = 0.01;
    loop {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = unit * m;
            if span / step <= max || step > 1e6 {
                return step;
            }
        }
        unit *= 10.0;
    }
}

enum Swatch {
    Line(&'static str, f64),
    Band,
    Fill(&'static str),
}

/// The room a legend item takes: swatch, gap, text (about 7 px a character
/// at 13 px in the common sans-serif fonts), space.
fn legend_item_width(text: &str) -> f64 {
    22.0 + 6.0 + text.chars().count() as f64 * 7.0 + 20.0
}

/// Which plug state a sample holds for one lane.
type StateOf = fn(&Sample) -> Option<PlugState>;

/// A plug's lane under the chart: its name, its "on" colour, its "unknown"
/// hatch, and where its state is in a sample.
type Lane = (&'static str, &'static str, &'static str, StateOf);

/// A legend entry: its swatch and its words.
type LegendItem = (Swatch, String);

/// Where everything is: the pixel layout, top to bottom title, temperature
/// chart, lanes, time labels, legend; and the ranges the chart maps.
struct Layout {
    w: f64,
    h: f64,
    right: f64,
    main_top: f64,
    main_bottom: f64,
    lanes_top: f64,
    /// The bottom of the temperature chart and the lanes together.
    chart_bottom: f64,
    labels_y: f64,
    legend_top: f64,
    t0: f64,
    t1: f64,
    v0: f64,
    v1: f64,
}

impl Layout {
    fn x_of(&self, t: f64) -> f64 {
        LEFT + (self.right - LEFT) * (t - self.t0) / (self.t1 - self.t0)
    }

    fn y_of(&self, v: f64) -> f64 {
        self.main_bottom + (self.main_top - self.main_bottom) * (v - self.v0) / (self.v1 - self.v0)
    }

    /// The pixels of a span of time; short events (a few minutes in a week)
    /// stay visible: at least 2 px.
    fn span_x(&self, a: f64, b: f64) -> (f64, f64) {
        let (xa, xb) = (self.x_of(a), self.x_of(b));
        (xa, xb.max(xa + 2.0))
    }
}

/// Draws `series` as an SVG of `size` pixels, times in `zone`. Returns the
/// SVG text and where the temperature chart's data space is in it. (A
/// series without samples draws an empty frame.)
pub(crate) fn render_svg(series: &Series, zone: &Zone, size: (u32, u32)) -> (String, Frame) {
    let samples = &series.samples;
    let w = f64::from(size.0.max(400));
    let h = f64::from(size.1.max(300));
    let first_t = samples.first().map_or(0.0, |s| s.t);
    let last_t = samples.last().map_or(60.0, |s| s.t);
    let lanes = plug_lanes(samples);
    let stale_spans = spans(series, |s| s.stale.then_some(()));
    let gap_spans = gaps(series);
    let unit = series.units.symbol();
    let items = legend_items(
        series,
        &lanes,
        !stale_spans.is_empty(),
        !gap_spans.is_empty(),
    );
    let legend_rows = legend_rows(items, w - RIGHT_MARGIN);
    let layout = layout(series, (w, h), lanes.len(), legend_rows.len());
    let frame = Frame {
        x_px: (LEFT, layout.right),
        y_px: (layout.main_bottom, layout.main_top),
        t_range: (layout.t0, layout.t1),
        y_range: (layout.v0, layout.v1),
    };
    let mut svg = Svg {
        out: String::with_capacity(64 * 1024),
    };
    let title = format!(
        "Temperature and plugs, {} – {} ({})",
        title_time(first_t, zone),
        title_time(last_t, zone),
        zone.describe(from_unix_secs(last_t))
    );
    draw_head(&mut svg, &layout, &title);
    draw_grid(&mut svg, &layout, zone, unit);
    draw_shading(&mut svg, &layout, &gap_spans, &stale_spans);
    let runs = runs(series);
    draw_band(&mut svg, &layout, samples, &runs);
    draw_chamber(&mut svg, &layout, samples, &runs);
    draw_temperature(&mut svg, &layout, samples, &runs);
    draw_lanes(&mut svg, &layout, series, &lanes);
    // The axes over the shading.
    let l = &layout;
    svg.line(LEFT, l.main_top, LEFT, l.chart_bottom, AXIS, 1.0);
    svg.line(LEFT, l.chart_bottom, l.right, l.chart_bottom, AXIS, 1.0);
    svg.line(LEFT, l.main_bottom, l.right, l.main_bottom, AXIS, 1.0);
    draw_legend(&mut svg, &layout, &legend_rows);
    svg.out.push_str("</svg>\n");
    (svg.out, frame)
}

/// A lane for each plug the lines mention.
fn plug_lanes(samples: &[Sample]) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    if samples.iter().any(|s| s.heater.is_some()) {
        lanes.push(("heater", HEATER, HATCH_HEATER, |s| s.heater));
    }
    if samples.iter().any(|s| s.cooler.is_some()) {
        lanes.push(("cooler", COOLER, HATCH_COOLER, |s| s.cooler));
    }
    lanes
}

/// The legend: only what the plot shows.
fn legend_items(series: &Series, lanes: &[Lane], stale: bool, gaps: bool) -> Vec<LegendItem> {
    let samples = &series.samples;
    let unit = series.units.symbol();
    let present = |f: StateOf, st: PlugState| samples.iter().any(|s| f(s) == Some(st));
    let mut items: Vec<LegendItem> = vec![(
        Swatch::Line(TEMP_LINE, 2.0),
        format!("temperature ({unit})"),
    )];
    if samples.iter().any(|s| s.low.is_some() && s.high.is_some()) {
        items.push((Swatch::Band, "low–high limits".into()));
    }
    if samples.iter().any(|s| s.chamber.is_some()) {
        items.push((
            Swatch::Line(CHAMBER_LINE, 1.5),
            "chamber air (dashed)".into(),
        ));
    }
    if samples.iter().any(|s| s.chamber_set.is_some()) {
        items.push((Swatch::Line(SETPOINT_LINE, 1.5), "chamber setpoint".into()));
    }
    for (name, color, hatch, f) in lanes {
        if present(*f, PlugState::On) {
            items.push((Swatch::Fill(color), format!("{name} on")));
        }
        if present(*f, PlugState::Unknown) {
            items.push((
                Swatch::Fill(hatch),
                format!("{name} unknown (counts as on)"),
            ));
        }
    }
    if !lanes.is_empty() {
        items.push((Swatch::Fill(LANE_OFF), "off".into()));
    }
    if samples.iter().any(|s| s.alarm.is_some()) {
        items.push((Swatch::Line(ALARM, 4.0), "alarm".into()));
    }
    if stale {
        items.push((Swatch::Fill(STALE), "sensor stale".into()));
    }
    if gaps {
        items.push((Swatch::Fill(HATCH_NODATA), "no data".into()));
    }
    items
}

/// The legend's items wrapped into rows that fit between `LEFT` and `right`.
fn legend_rows(items: Vec<LegendItem>, right: f64) -> Vec<Vec<LegendItem>> {
    let mut rows: Vec<Vec<LegendItem>> = vec![Vec::new()];
    let mut used = 0.0;
    for item in items {
        let iw = legend_item_width(&item.1);
        if used + iw > right - LEFT && used > 0.0 {
            rows.push(Vec::new());
            used = 0.0;
        }
        used += iw;
        rows.last_mut().expect("a row").push(item);
    }
    rows
}

/// The time range (at least a minute), the temperature range (the data and
/// the limits, padded) and the pixel layout for `lanes` lanes and
/// `legend_rows` rows of legend.
fn layout(series: &Series, (w, h): (f64, f64), lanes: usize, legend_rows: usize) -> Layout {
    let samples = &series.samples;
    let first_t = samples.first().map_or(0.0, |s| s.t);
    let last_t = samples.last().map_or(60.0, |s| s.t);
    let (mut t0, mut t1) = (first_t, last_t);
    if t1 - t0 < 60.0 {
        // A few seconds of lines: show a minute (one line: in its middle).
        if t1 == t0 {
            t0 -= 30.0;
        }
        t1 = t0 + 60.0;
    }
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in samples {
        for v in [s.temp, s.low, s.high, s.chamber, s.chamber_set]
            .into_iter()
            .flatten()
        {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.25);
    let (v0, v1) = (lo - pad, hi + pad);
    let legend_top = h - LEGEND_ROW_H * legend_rows as f64 - 6.0;
    let labels_y = legend_top - 16.0;
    let lanes_bottom = labels_y - 17.0;
    let lanes_top = lanes_bottom - LANE_H * lanes as f64;
    let main_top = 44.0;
    let main_bottom = (lanes_top - 8.0).max(main_top + 100.0);
    let chart_bottom = if lanes == 0 {
        main_bottom
    } else {
        lanes_bottom
    };
    Layout {
        w,
        h,
        right: w - RIGHT_MARGIN,
        main_top,
        main_bottom,
        lanes_top,
        chart_bottom,
        labels_y,
        legend_top,
        t0,
        t1,
        v0,
        v1,
    }
}

/// The `<svg>` element, the hatch patterns, the white ground and the title.
fn draw_head(svg: &mut Svg, l: &Layout, title: &str) {
    let (w, h) = (l.w, l.h);
    let _ = writeln!(
        svg.out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    svg.out.push_str("<defs>");
    for (id, stripe, ground) in HATCHES {
        let _ = write!(
            svg.out,
            r#"<pattern id="{id}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="{ground}"/><rect width="2.5" height="6" fill="{stripe}"/></pattern>"#
        );
    }
    svg.out.push_str("</defs>\n");
    svg.rect(0.0, 0.0, w, h, "#FFFFFF", "");
    // A narrow picture (the web page on a phone) shrinks the title to fit:
    // about 0.56 em per character in the fonts named above.
    let fit = (w - 16.0) / (0.56 * title.chars().count() as f64);
    let title_size = (17.0f64).min((fit * 10.0).floor() / 10.0);
    svg.text(w / 2.0, 26.0, "middle", title_size, title, "");
}

/// The grid, the time labels, the temperature labels and the axis title.
fn draw_grid(svg: &mut Svg, l: &Layout, zone: &Zone, unit: &str) {
    let right = l.right;
    let (ticks, step) = time_ticks(l.t0, l.t1, zone, (((right - LEFT) / 95.0) as usize).max(2));
    for &t in &ticks {
        let x = l.x_of(t);
        svg.line(x, l.main_top, x, l.chart_bottom, GRID, 1.0);
        svg.line(x, l.chart_bottom, x, l.chart_bottom + 4.0, AXIS, 1.0);
        svg.text(
            x,
            l.labels_y,
            "middle",
            FONT_SIZE,
            &tick_label(t, step, zone),
            "",
        );
    }
    let (v0, v1) = (l.v0, l.v1);
    let vstep = value_step(v1 - v0, ((l.main_bottom - l.main_top) / 40.0).max(2.0));
    let decimals = if vstep >= 1.0 {
        0
    } else if vstep >= 0.1 {
        1
    } else {
        2
    };
    let mut v = (v0 / vstep).ceil() * vstep;
    while v <= v1 {
        let y = l.y_of(v);
        svg.line(LEFT, y, right, y, GRID, 1.0);
        svg.line(LEFT - 4.0, y, LEFT, y, AXIS, 1.0);
        svg.text(
            LEFT - 7.0,
            y + 4.5,
            "end",
            FONT_SIZE,
            &format!("{v:.decimals$}"),
            "",
        );
        v += vstep;
    }
    let mid_y = (l.main_top + l.main_bottom) / 2.0;
    svg.text(
        18.0,
        mid_y,
        "middle",
        FONT_SIZE + 1.0,
        &format!("temperature ({unit})"),
        &format!(r#" transform="rotate(-90 18 {mid_y:.1})""#),
    );
}

/// Data gaps and stale periods, behind everything else.
fn draw_shading(svg: &mut Svg, l: &Layout, gap_spans: &[(f64, f64)], stale: &[(f64, f64, ())]) {
    for &(a, b) in gap_spans {
        let (xa, xb) = l.span_x(a, b);
        svg.rect(
            xa,
            l.main_top,
            xb,
            l.chart_bottom,
            HATCH_NODATA,
            r#" class="nodata""#,
        );
    }
    for &(a, b, ()) in stale {
        let (xa, xb) = l.span_x(a, b);
        let extra = r#" class="stale" fill-opacity="0.8""#;
        svg.rect(xa, l.main_top, xb, l.main_bottom, STALE, extra);
    }
}

/// The band and its edges: straight between lines, so a profile's ramp is
/// a slope (and a step takes one cycle, invisible at this scale).
fn draw_band(svg: &mut Svg, l: &Layout, samples: &[Sample], runs: &[std::ops::Range<usize>]) {
    for r in runs {
        let run = &samples[r.clone()];
        let upper: Vec<(f64, f64)> = run.iter().filter_map(|s| Some((s.t, s.high?))).collect();
        let lower: Vec<(f64, f64)> = run.iter().filter_map(|s| Some((s.t, s.low?))).collect();
        if upper.len() < 2 || lower.len() < 2 {
            continue;
        }
        let tol = (l.v1 - l.v0) * 1e-4;
        let upper = simplify_collinear(&upper, tol);
        let lower = simplify_collinear(&lower, tol);
        let map = |&(t, v): &(f64, f64)| (l.x_of(t), l.y_of(v));
        svg.polygon(
            upper.iter().chain(lower.iter().rev()).map(map),
            BAND,
            0.14,
            "band",
        );
        svg.polyline(upper.iter().map(map), BAND, 1.0, "high");
        svg.polyline(lower.iter().map(map), BAND, 1.0, "low");
    }
}

/// Cascade control's chamber air and setpoint, dashed, behind the product's
/// line: one line per run of values.
fn draw_chamber(svg: &mut Svg, l: &Layout, samples: &[Sample], runs: &[std::ops::Range<usize>]) {
    let cols = (l.right - LEFT) as usize;
    type ValueOf = fn(&Sample) -> Option<f64>;
    let chamber_lines: [(ValueOf, &str, &str, &str); 2] = [
        (|s| s.chamber_set, SETPOINT_LINE, "2 3", "chamber-setpoint"),
        (|s| s.chamber, CHAMBER_LINE, "6 4", "chamber"),
    ];
    for (value, color, dash, class) in chamber_lines {
        let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
        for r in runs {
            let mut line: Vec<(f64, f64)> = Vec::new();
            for s in &samples[r.clone()] {
                match value(s) {
                    Some(v) => line.push((s.t, v)),
                    None => pieces.push(std::mem::take(&mut line)),
                }
            }
            pieces.push(line);
        }
        for line in pieces.iter().filter(|p| p.len() >= 2) {
            let pts = decimate(line, l.t0, l.t1, cols);
            svg.dashed(
                pts.iter().map(|&(t, v)| (l.x_of(t), l.y_of(v))),
                color,
                1.5,
                dash,
                class,
            );
        }
    }
}

/// The temperature: one line per run of valid readings; the alarm parts
/// again, thick and red, on top.
fn draw_temperature(
    svg: &mut Svg,
    l: &Layout,
    samples: &[Sample],
    runs: &[std::ops::Range<usize>],
) {
    let cols = (l.right - LEFT) as usize;
    let mut alarm_runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut lines: Vec<Vec<(f64, f64)>> = Vec::new();
    for r in runs {
        let mut line: Vec<(f64, f64)> = Vec::new();
        let mut alarm_line: Vec<(f64, f64)> = Vec::new();
        for s in &samples[r.clone()] {
            match s.temp {
                Some(v) => {
                    line.push((s.t, v));
                    if s.alarm.is_some() {
                        alarm_line.push((s.t, v));
                    } else if !alarm_line.is_empty() {
                        // The alarm ended here: draw up to this reading.
                        alarm_line.push((s.t, v));
                        alarm_runs.push(std::mem::take(&mut alarm_line));
                    }
                }
                None => {
                    lines.push(std::mem::take(&mut line));
                    alarm_runs.push(std::mem::take(&mut alarm_line));
                }
            }
        }
        lines.push(line);
        alarm_runs.push(alarm_line);
    }
    for (pts, color, width, class) in lines
        .iter()
        .map(|l| (l, TEMP_LINE, 2.0, "temperature"))
        .chain(alarm_runs.iter().map(|l| (l, ALARM, 4.0, "alarm")))
    {
        match pts.len() {
            0 => {}
            1 => {
                let _ = writeln!(
                    svg.out,
                    r#"<circle class="{class}" cx="{:.1}" cy="{:.1}" r="{width}" fill="{color}"/>"#,
                    l.x_of(pts[0].0),
                    l.y_of(pts[0].1)
                );
            }
            _ => {
                let pts = decimate(pts, l.t0, l.t1, cols);
                svg.polyline(
                    pts.iter().map(|&(t, v)| (l.x_of(t), l.y_of(v))),
                    color,
                    width,
                    class,
                );
            }
        }
    }
}

/// The plug lanes, sharing the time axis.
fn draw_lanes(svg: &mut Svg, l: &Layout, series: &Series, lanes: &[Lane]) {
    for (i, (name, color, hatch, state)) in lanes.iter().enumerate() {
        let top = l.lanes_top + LANE_H * i as f64 + 3.0;
        let bottom = top + LANE_H - 6.0;
        svg.text(
            LEFT - 7.0,
            (top + bottom) / 2.0 + 4.5,
            "end",
            FONT_SIZE,
            name,
            "",
        );
        for (a, b, st) in spans(series, state) {
            let (fill, class) = match st {
                PlugState::On => (*color, "on"),
                PlugState::Unknown => (*hatch, "unknown"),
                PlugState::Off => (LANE_OFF, "off"),
            };
            let extra = format!(r#" class="{name}-{class}""#);
            let (xa, xb) = if st == PlugState::Off {
                (l.x_of(a), l.x_of(b))
            } else {
                l.span_x(a, b)
            };
            svg.rect(xa, top, xb, bottom, fill, &extra);
        }
    }
}

/// The legend, row by row.
fn draw_legend(svg: &mut Svg, l: &Layout, rows: &[Vec<LegendItem>]) {
    for (row_i, row) in rows.iter().enumerate() {
        let y = l.legend_top + LEGEND_ROW_H * row_i as f64 + 4.0;
        let mut x = LEFT;
        for (swatch, text) in row {
            match swatch {
                Swatch::Line(c, width) => svg.line(x, y + 6.0, x + 22.0, y + 6.0, c, *width),
                Swatch::Band => {
                    svg.rect(x, y, x + 22.0, y + 12.0, BAND, r#" fill-opacity="0.14""#);
                    svg.line(x, y, x + 22.0, y, BAND, 1.0);
                    svg.line(x, y + 12.0, x + 22.0, y + 12.0, BAND, 1.0);
                }
                Swatch::Fill(c) => svg.rect(x, y, x + 22.0, y + 12.0, c, r##" stroke="#BBBBBB""##),
            }
            svg.text(x + 28.0, y + 10.5, "start", FONT_SIZE, text, "");
            x += legend_item_width(text);
        }
    }
}

/// Keeps only the points needed to draw `points` as straight segments
/// within `tol` (vertically) of every point dropped, so a week of constant or
/// steadily ramping limits is a handful of points, not 60 000. (A slope
/// corridor from the last kept point narrows with each point; a point outside
/// it starts a new segment.)
fn simplify_collinear(points: &[(f64, f64)], tol: f64) -> Vec<(f64, f64)> {
    let Some(&first) = points.first() else {
        return Vec::new();
    };
    let mut out = vec![first];
    let mut anchor = first;
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut prev = first;
    for &p in &points[1..] {
        let dt = p.0 - anchor.0;
        if dt <= 0.0 {
            continue;
        }
        let slope = (p.1 - anchor.1) / dt;
        if !(lo..=hi).contains(&slope) {
            out.push(prev);
            anchor = prev;
            (lo, hi) = (f64::NEG_INFINITY, f64::INFINITY);
        }
        let dt = p.0 - anchor.0;
        if dt > 0.0 {
            lo = lo.max((p.1 - tol - anchor.1) / dt);
            hi = hi.min((p.1 + tol - anchor.1) / dt);
        }
        prev = p;
    }
    if out.last() != Some(&prev) {
        out.push(prev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{parse_rfc3339, unix_secs};
    use crate::history::{self, parse_reading};
    use crate::records::ReadingRecord;

    fn parse_time(s: &str) -> Option<SystemTime> {
        parse_rfc3339(s).ok()
    }

    /// Tags balance: every `<x ...>` is closed by `</x>` in order, `<x/>`
    /// closes itself. Returns the root's name.
    fn check_balanced(svg: &str) -> String {
        let mut stack: Vec<String> = Vec::new();
        let mut root = None;
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').expect("a tag is closed") + i;
            let tag = &rest[i + 1..end];
            assert!(!tag.contains('<'), "a `<` inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else if !tag.ends_with('/') {
                let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
                root.get_or_insert_with(|| name.clone());
                stack.push(name);
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        root.expect("a root element")
    }

    /// The `points` of every `<polyline class="{class}"`.
    fn polylines(svg: &str, class: &str) -> Vec<Vec<(f64, f64)>> {
        let start = format!("<polyline class=\"{class}\"");
        svg.lines()
            .filter(|l| l.starts_with(&start))
            .map(|l| {
                let p = l
                    .split("points=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                p.split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    /// (x, width, fill) of every `<rect ... class="{class}"`.
    fn rects(svg: &str, class: &str) -> Vec<(f64, f64, String)> {
        let attr = |l: &str, a: &str| -> String {
            l.split(&format!(" {a}=\""))
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        };
        svg.lines()
            .filter(|l| l.starts_with("<rect") && l.contains(&format!("class=\"{class}\"")))
            .map(|l| {
                (
                    attr(l, "x").parse().unwrap(),
                    attr(l, "width").parse().unwrap(),
                    attr(l, "fill"),
                )
            })
            .collect()
    }

    fn line(t: &str, temp: &str, limits: (f64, f64), heater: &str, extra: &str) -> ReadingRecord {
        parse_reading(&format!(
            r#"{{"time":"{t}","temperature":{temp},"units":"C","low_limit":{},"high_limit":{},"heater":{{"state":"{heater}"}}{extra}}}"#,
            limits.0, limits.1
        ))
        .unwrap()
    }

    /// Ten readings 10 s apart; the heater on from the 3rd to the 5th,
    /// unknown for the 6th, then off; the limits step up at the 8th; an
    /// alarm on the 9th.
    fn fixture() -> Series {
        let temps = [
            "18.0", "18.5", "19.0", "19.5", "20.0", "20.5", "21.0", "21.5", "22.0", "21.0",
        ];
        let heater = [
            "off", "off", "on", "on", "on", "unknown", "off", "off", "off", "off",
        ];
        let readings: Vec<ReadingRecord> = (0..10)
            .map(|i| {
                let t = format!("2026-11-28T21:00:{:02}.000Z", i * 5);
                let limits = if i < 7 { (18.0, 20.0) } else { (19.0, 21.0) };
                let extra = if i == 8 { r#","alarm":"high""# } else { "" };
                line(&t, temps[i], limits, heater[i], extra)
            })
            .collect();
        Series::from_readings(&readings)
    }

    fn map(frame: &Frame, t: f64, v: f64) -> (f64, f64) {
        let (x0, x1) = frame.x_px;
        let (y0, y1) = frame.y_px;
        let (t0, t1) = frame.t_range;
        let (v0, v1) = frame.y_range;
        let round = |z: f64| (z * 10.0).round() / 10.0;
        (
            round(x0 + (x1 - x0) * (t - t0) / (t1 - t0)),
            round(y0 + (y1 - y0) * (v - v0) / (v1 - v0)),
        )
    }

    #[test]
    fn the_chamber_air_and_setpoint_are_drawn_on_their_points() {
        // Cascade lines: the air falls 0.5 a reading, the setpoint holds;
        // the 5th line has no chamber reading (the air line breaks there).
        let readings: Vec<ReadingRecord> = (0..10)
            .map(|i| {
                let air = if i == 4 {
                    String::new()
                } else {
                    format!(r#","chamber_temperature":{}"#, 17.0 - 0.5 * f64::from(i))
                };
                line(
                    &format!("2026-11-28T21:{:02}:{:02}Z", i / 6, (i % 6) * 10),
                    "19.0",
                    (18.5, 19.5),
                    "off",
                    &format!(r#"{air},"chamber_setpoint":14.25"#),
                )
            })
            .collect();
        let series = Series::from_readings(&readings);
        let (svg, frame) = render_svg(&series, &Zone::utc(), DEFAULT_SIZE);
        check_balanced(&svg);
        let air = polylines(&svg, "chamber");
        assert_eq!(air.len(), 2, "broken where the reading is missing");
        let t0 = series.samples[0].t;
        assert_eq!(air[0][0], map(&frame, t0, 17.0));
        assert_eq!(*air[1].last().unwrap(), map(&frame, t0 + 90.0, 12.5));
        let set = polylines(&svg, "chamber-setpoint");
        assert_eq!(set.len(), 1);
        assert!(set[0].iter().all(|p| p.1 == map(&frame, t0, 14.25).1));
        // The range takes in the air's lowest point; the legend names both.
        assert!(frame.y_range.0 < 12.5);
        assert!(svg.contains("chamber air (dashed)") && svg.contains("chamber setpoint"));
        // Without chamber data, neither appears.
        let (plain, _) = render_svg(&fixture(), &Zone::utc(), DEFAULT_SIZE);
        assert!(!plain.contains("chamber"));
    }

    #[test]
    fn the_svg_is_well_formed_and_holds_every_series() {
        let (svg, _) = render_svg(&fixture(), &Zone::utc(), DEFAULT_SIZE);
        assert_eq!(check_balanced(&svg), "svg");
        for want in [
            "class=\"temperature\"",
            "class=\"band\"",
            "class=\"high\"",
            "class=\"low\"",
            "class=\"heater-on\"",
            "class=\"heater-unknown\"",
            "class=\"heater-off\"",
            "class=\"alarm\"",
            "<pattern id=\"hatch-heater\"",
            ">heater unknown (counts as on)</text>",
            ">temperature (°C)</text>",
            ">alarm</text>",
        ] {
            assert!(svg.contains(want), "{want} missing");
        }
        assert!(
            !svg.contains(">cooler") && !svg.contains("class=\"cooler-"),
            "no cooler in the data, none drawn"
        );
        assert!(!svg.contains("class=\"stale\"") && !svg.contains("class=\"nodata\""));
    }

    #[test]
    fn each_reading_lands_on_its_point() {
        let series = fixture();
        let (svg, frame) = render_svg(&series, &Zone::utc(), DEFAULT_SIZE);
        let t0 = unix_secs(parse_time("2026-11-28T21:00:00Z").unwrap());
        assert_eq!(
            frame.t_range,
            (t0, t0 + 60.0),
            "45 s of data: a minute is shown"
        );
        assert!(
            frame.y_range.0 < 18.0 && frame.y_range.1 > 22.0,
            "{frame:?}"
        );
        let temps = [18.0, 18.5, 19.0, 19.5, 20.0, 20.5, 21.0, 21.5, 22.0, 21.0];
        let want: Vec<(f64, f64)> = temps
            .iter()
            .enumerate()
            .map(|(i, v)| map(&frame, t0 + 5.0 * i as f64, *v))
            .collect();
        assert_eq!(polylines(&svg, "temperature"), vec![want.clone()]);
        // The alarm: from the alarmed reading to the next one.
        assert_eq!(polylines(&svg, "alarm"), vec![want[8..10].to_vec()]);
        // The band's upper edge: 20 until the 7th reading, then a slope (one
        // cycle) up to 21.
        let high = polylines(&svg, "high");
        assert_eq!(
            high,
            vec![vec![
                map(&frame, t0, 20.0),
                map(&frame, t0 + 30.0, 20.0),
                map(&frame, t0 + 35.0, 21.0),
                map(&frame, t0 + 45.0, 21.0),
            ]]
        );
    }

    #[test]
    fn plug_spans_cover_their_time_and_unknown_is_hatched() {
        let series = fixture();
        let (svg, frame) = render_svg(&series, &Zone::utc(), DEFAULT_SIZE);
        let t0 = unix_secs(parse_time("2026-11-28T21:00:00Z").unwrap());
        let x = |t: f64| map(&frame, t, 0.0).0;
        let on = rects(&svg, "heater-on");
        assert_eq!(on.len(), 1);
        // On from the 3rd reading (10 s) until the unknown one (25 s).
        assert!((on[0].0 - x(t0 + 10.0)).abs() < 0.06, "{on:?}");
        assert!(
            (on[0].1 - (x(t0 + 25.0) - x(t0 + 10.0))).abs() < 0.11,
            "{on:?}"
        );
        assert_eq!(on[0].2, HEATER);
        let unknown = rects(&svg, "heater-unknown");
        assert_eq!(unknown.len(), 1);
        assert!((unknown[0].0 - x(t0 + 25.0)).abs() < 0.06);
        assert_eq!(
            unknown[0].2, "url(#hatch-heater)",
            "unknown is hatched, not solid"
        );
        // Off before (0..10 s) and after (30..45 s: the last line lasts 0).
        let off = rects(&svg, "heater-off");
        assert_eq!(off.len(), 2, "{off:?}");
        assert!((off[1].0 + off[1].1 - x(t0 + 45.0)).abs() < 0.11);
    }

    #[test]
    fn gaps_break_the_line_and_stale_periods_are_shaded() {
        let mut readings = Vec::new();
        for i in 0..6 {
            readings.push(line(
                &format!("2026-11-28T21:00:{:02}Z", i * 10),
                "19.0",
                (18.0, 20.0),
                "off",
                "",
            ));
        }
        // The service was stopped for ten minutes.
        for i in 0..6 {
            let stale = if i == 2 || i == 3 {
                r#","sensor_stale":true"#
            } else {
                ""
            };
            let temp = if stale.is_empty() { "19.5" } else { "null" };
            readings.push(line(
                &format!("2026-11-28T21:11:{:02}Z", i * 10),
                temp,
                (18.0, 20.0),
                "off",
                stale,
            ));
        }
        let series = Series::from_readings(&readings);
        let (svg, frame) = render_svg(&series, &Zone::utc(), DEFAULT_SIZE);
        check_balanced(&svg);
        let t0 = unix_secs(parse_time("2026-11-28T21:00:00Z").unwrap());
        let x = |t: f64| map(&frame, t, 0.0).0;
        let lines = polylines(&svg, "temperature");
        // Before the gap; after it, split by the two stale readings.
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0].len(), 6);
        let nodata = rects(&svg, "nodata");
        assert_eq!(nodata.len(), 1);
        assert!((nodata[0].0 - x(t0 + 50.0)).abs() < 0.06);
        assert!((nodata[0].0 + nodata[0].1 - x(t0 + 660.0)).abs() < 0.11);
        assert_eq!(nodata[0].2, "url(#hatch-nodata)");
        let stale = rects(&svg, "stale");
        assert_eq!(stale.len(), 1);
        assert!((stale[0].0 - x(t0 + 680.0)).abs() < 0.06);
        assert!((stale[0].1 - (x(t0 + 700.0) - x(t0 + 680.0))).abs() < 0.11);
        assert_eq!(polylines(&svg, "band").len(), 0, "the band is a polygon");
        assert_eq!(svg.matches("class=\"band\"").count(), 2, "one band per run");
    }

    #[test]
    fn a_long_series_is_thinned_but_keeps_its_peaks() {
        let pts: Vec<(f64, f64)> = (0..60_000)
            .map(|i| {
                (
                    f64::from(i) * 10.0,
                    if i == 31_337 { 99.0 } else { f64::from(i % 7) },
                )
            })
            .collect();
        let out = decimate(&pts, 0.0, 600_000.0, 1000);
        assert!(out.len() <= 4000, "{}", out.len());
        assert!(out.contains(&(313_370.0, 99.0)), "the spike survives");
        assert_eq!(out.first(), pts.first());
        assert_eq!(out.last(), pts.last());
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "in time order");
        let few = &pts[..100];
        assert_eq!(decimate(few, 0.0, 1000.0, 1000), few.to_vec());
    }

    #[test]
    fn limits_are_simplified_within_tolerance() {
        let ramp: Vec<(f64, f64)> = (0..1000)
            .map(|i| (f64::from(i), 18.0 + f64::from(i) * 0.001))
            .collect();
        assert_eq!(simplify_collinear(&ramp, 1e-6), vec![ramp[0], ramp[999]]);
        let mut step: Vec<(f64, f64)> = (0..10).map(|i| (f64::from(i), 18.0)).collect();
        step.extend((10..20).map(|i| (f64::from(i), 19.0)));
        assert_eq!(
            simplify_collinear(&step, 1e-6),
            vec![(0.0, 18.0), (9.0, 18.0), (10.0, 19.0), (19.0, 19.0)]
        );
        // Every dropped point is within the tolerance of the drawn line.
        let wave: Vec<(f64, f64)> = (0..500)
            .map(|i| (f64::from(i), (f64::from(i) / 40.0).sin()))
            .collect();
        let kept = simplify_collinear(&wave, 0.01);
        assert!(kept.len() < 200, "{}", kept.len());
        for &(t, v) in &wave {
            let k = kept.partition_point(|p| p.0 < t).max(1).min(kept.len() - 1);
            let (a, b) = (kept[k - 1], kept[k]);
            let drawn = a.1 + (b.1 - a.1) * (t - a.0) / (b.0 - a.0);
            assert!((drawn - v).abs() <= 0.0101, "at {t}: {drawn} vs {v}");
        }
    }

    #[test]
    fn ticks_fall_on_local_hours_and_midnight_shows_the_date() {
        let plus1 = Zone::fixed(3600);
        // 20:10 to 02:50 UTC is 21:10 to 03:50 local.
        let t0 = unix_secs(parse_time("2026-11-28T20:10:00Z").unwrap());
        let t1 = unix_secs(parse_time("2026-11-29T02:50:00Z").unwrap());
        let (ticks, step) = time_ticks(t0, t1, &plus1, 8);
        assert_eq!(step, 3600.0);
        let labels: Vec<String> = ticks.iter().map(|t| tick_label(*t, step, &plus1)).collect();
        assert_eq!(
            labels,
            ["22:00", "23:00", "Sun 29 Nov", "01:00", "02:00", "03:00"]
        );
        assert_eq!(
            ticks[0],
            unix_secs(parse_time("2026-11-28T21:00:00Z").unwrap())
        );
        let (days, step) = time_ticks(t0, t0 + 7.0 * 86_400.0, &plus1, 10);
        assert_eq!(step, 86_400.0);
        assert!(days.iter().all(|t| tick_label(*t, step, &plus1).len() > 5));
        assert_eq!(days.len(), 7);
    }

    #[test]
    fn plot_writes_the_file_and_says_why_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let readings = dir.path().join(history::READINGS_FILE);
        let text: String = (0..30)
            .map(|i| {
                format!(
                    "{{\"time\":\"2026-11-28T21:{:02}:00.000Z\",\"temperature\":{},\"units\":\"F\",\"heater\":{{\"desired\":true,\"verified\":true}}}}\n",
                    i,
                    64.0 + f64::from(i) / 10.0
                )
            })
            .collect::<String>()
            + "torn{\n";
        fs::write(&readings, text).unwrap();
        let mut opts = PlotOptions::new(readings.clone(), dir.path().join("out.svg"));
        opts.zone = Zone::utc();
        let summary = plot(&opts).unwrap();
        assert_eq!(summary.readings, 30);
        assert_eq!(summary.stats.damaged, 1);
        let svg = fs::read_to_string(dir.path().join("out.svg")).unwrap();
        check_balanced(&svg);
        assert!(
            svg.contains(">temperature (°F)</text>"),
            "units as in the data"
        );
        assert!(
            svg.contains("28 Nov 2026 21:00 – 28 Nov 2026 21:29 (UTC)"),
            "the title"
        );
        assert!(
            !svg.contains("class=\"band\""),
            "old lines without limits: no band"
        );
        let text = summary.to_string();
        assert!(
            text.contains("30 readings") && text.contains("1 damaged line skipped"),
            "{text}"
        );

        opts.since = Some(parse_time("2026-11-29T00:00:00Z").unwrap());
        let e = plot(&opts).unwrap_err();
        assert!(matches!(e, PlotError::NoReadings { .. }));
        assert!(e.to_string().contains("--since"), "{e}");

        opts.since = None;
        opts.out = dir.path().join("no-such-dir/out.svg");
        let e = plot(&opts).unwrap_err();
        assert!(e.to_string().contains("no-such-dir") && std::error::Error::source(&e).is_some());
    }
}
