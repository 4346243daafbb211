//! `kasa-thermostat plot`: draws `readings.jsonl` as an SVG a person can read
//! in a browser or an image viewer: the temperature, the low/high band (which
//! moves when a profile moves the limits), the heater and cooler on-spans in
//! lanes under it (unknown states hatched), sensor-stale periods shaded, alarm
//! periods drawn in red, data gaps hatched grey, and a time axis in local time.
//!
//! Drawing is done by `plotters` with only its SVG backend (no fonts, no
//! bitmap code): it places axes, ticks and labels, and the viewer renders the
//! text. Two things plotters cannot say are added to its output: hatch
//! patterns (an `unknown` plug state must look different from `on` also in
//! grey-scale) and nothing else. A week at a 10 s cycle is 60 000 points; the
//! line keeps only each pixel column's extremes, so the file stays small and
//! no peak is lost.
//!
//! [`render_svg`] is pure (a [`Series`] in, SVG text out) so tests check the
//! drawing without files; [`plot`] reads the files and writes the SVG.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::datalog::{
    self, from_unix_secs, AlarmKind, DataLogError, PlugState, ReadStats, Sample, Series, Zone,
};

/// Why no plot was written.
#[derive(Debug)]
pub enum PlotError {
    /// The readings could not be read (see the cause).
    Data(DataLogError),
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
    /// The plotting library failed (a bug: please report it with the data).
    Draw(String),
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
                        datalog::format_time(*s)
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
            PlotError::Draw(e) => write!(f, "drawing the plot failed: {e}"),
        }
    }
}

impl std::error::Error for PlotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PlotError::Data(e) => Some(e),
            PlotError::Write { source, .. } => Some(source),
            PlotError::NoReadings { .. } | PlotError::Draw(_) => None,
        }
    }
}

impl From<DataLogError> for PlotError {
    fn from(e: DataLogError) -> Self {
        PlotError::Data(e)
    }
}

/// What `kasa-thermostat plot` was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// `readings.jsonl` (`--readings FILE`, or `--log-dir DIR` joined with
    /// [`datalog::READINGS_FILE`]); its rotated copies are read as needed.
    pub readings: PathBuf,
    /// The start of the range (`--since`, resolved with
    /// [`datalog::Since::resolve`]); `None`: everything.
    pub since: Option<SystemTime>,
    /// The end of the range (exclusive); `None`: up to the last line.
    pub until: Option<SystemTime>,
    /// Where the SVG goes (`--out`).
    pub out: PathBuf,
    /// The zone of the time axis ([`Zone::Local`] for people).
    pub zone: Zone,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

/// The default size: fits a laptop screen, readable on a phone.
pub const DEFAULT_SIZE: (u32, u32) = (1200, 640);

impl PlotOptions {
    /// Everything in `readings`, drawn to `out` in local time at
    /// [`DEFAULT_SIZE`].
    pub fn new(readings: PathBuf, out: PathBuf) -> PlotOptions {
        PlotOptions {
            readings,
            since: None,
            until: None,
            out,
            zone: Zone::Local,
            size: DEFAULT_SIZE,
        }
    }
}

/// Where the temperature chart's data space lands in the SVG, so that a test
/// (or a curious person) can map a reading to its pixel: plotters maps `t` to
/// `x_px.0 + floor((x_px.1 - x_px.0) * (t - t_range.0) / (t_range.1 - t_range.0) + 0.001)`
/// and `v` likewise onto `y_px` (which runs bottom to top, rounding with
/// `ceil(... - 0.001)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Pixel x of the start and the end of the time range.
    pub x_px: (i32, i32),
    /// Pixel y of the bottom and the top of the temperature range.
    pub y_px: (i32, i32),
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
            datalog::format_time(self.from),
            datalog::format_time(self.to),
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
    let (svg, frame) = render_svg(&series, &opts.zone, opts.size)?;
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

// Colours: the heater warm, the cooler cool, both distinguishable in grey
// scale by their lanes and labels; unknown states hatched.
const TEMP_LINE: RGBColor = RGBColor(0x1f, 0x3b, 0x73);
const BAND: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const HEATER: RGBColor = RGBColor(0xe4, 0x57, 0x2e);
const COOLER: RGBColor = RGBColor(0x2e, 0x86, 0xde);
const ALARM: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const STALE: RGBColor = RGBColor(0x80, 0x80, 0x80);
/// STALE at 25 % on white, for the legend's opaque swatch.
const STALE_LEGEND: RGBColor = RGBColor(0xdf, 0xdf, 0xdf);
const LANE_OFF: RGBColor = RGBColor(0xee, 0xee, 0xee);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
const AXIS: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Sentinel fills plotters writes as `fill="#FE0101"` etc.; replaced by
/// hatch patterns after drawing (plotters has no patterns). The colours are
/// nowhere else in the drawing.
const HATCHES: [(RGBColor, &str, &str, &str); 3] = [
    (RGBColor(0xfe, 0x01, 0x01), "hatch-heater", "#E4572E", "#FBE3DA"),
    (RGBColor(0x01, 0x01, 0xfe), "hatch-cooler", "#2E86DE", "#DCEAF9"),
    (RGBColor(0xfe, 0x01, 0xfe), "hatch-nodata", "#C8C8C8", "#FFFFFF"),
];
const HATCH_HEATER: RGBColor = HATCHES[0].0;
const HATCH_COOLER: RGBColor = HATCHES[1].0;
const HATCH_NODATA: RGBColor = HATCHES[2].0;

const FONT: &str = "sans-serif";
const LEFT_LABELS: u32 = 70;
const RIGHT_MARGIN: u32 = 28;

fn draw_err<E: fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

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
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
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
    let offset = |t: f64| f64::from(zone.offset_at(from_unix_secs(t)).whole_seconds());
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
        let f = time::macros::format_description!("[weekday repr:short] [day padding:none] [month repr:short]");
        dt.format(&f).unwrap_or_default()
    } else {
        let f = time::macros::format_description!("[hour]:[minute]");
        dt.format(&f).unwrap_or_default()
    }
}

fn title_time(t: f64, zone: &Zone) -> String {
    let dt = zone.datetime(from_unix_secs(t));
    let f = time::macros::format_description!("[day padding:none] [month repr:short] [year] [hour]:[minute]");
    dt.format(&f).unwrap_or_default()
}

/// Draws `series` as an SVG of `size` pixels, times in `zone`. Returns the
/// SVG text and where the temperature chart's data space is in it.
pub fn render_svg(
    series: &Series,
    zone: &Zone,
    size: (u32, u32),
) -> Result<(String, Frame), PlotError> {
    let samples = &series.samples;
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return Err(PlotError::Draw("no samples".into()));
    };
    let (w, h) = (size.0.max(400), size.1.max(300));
    let mut t0 = first.t;
    let mut t1 = last.t;
    if t1 - t0 < 60.0 {
        // One line (or a few seconds of them): show a minute around them.
        t0 -= 30.0;
        t1 = t0 + 60.0;
    }
    // The temperature range: the data and the limits, padded.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in samples {
        for v in [s.temp, s.low, s.high].into_iter().flatten() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.25);
    let (y0, y1) = (lo - pad, hi + pad);

    let has_heater = samples.iter().any(|s| s.heater.is_some());
    let has_cooler = samples.iter().any(|s| s.cooler.is_some());
    let mut lanes: Vec<(&str, RGBColor, RGBColor, fn(&Sample) -> Option<PlugState>)> = Vec::new();
    if has_heater {
        lanes.push(("heater", HEATER, HATCH_HEATER, |s| s.heater));
    }
    if has_cooler {
        lanes.push(("cooler", COOLER, HATCH_COOLER, |s| s.cooler));
    }
    let stale_spans = spans(series, |s| s.stale.then_some(()));
    let alarm_present = samples.iter().any(|s| s.alarm.is_some());
    let gap_spans = gaps(series);
    let band_present = samples.iter().any(|s| s.low.is_some() && s.high.is_some());

    // The legend: only what the plot shows, wrapped into rows.
    let unit = series.units.symbol();
    let present = |f: fn(&Sample) -> Option<PlugState>, st: PlugState| {
        samples.iter().any(|s| f(s) == Some(st))
    };
    let mut items: Vec<(Swatch, String)> =
        vec![(Swatch::Line(TEMP_LINE, 2), format!("temperature ({unit})"))];
    if band_present {
        items.push((Swatch::Band, "low–high limits".into()));
    }
    for (name, _, hatch, f) in &lanes {
        let color = if *name == "heater" { HEATER } else { COOLER };
        if present(*f, PlugState::On) {
            items.push((Swatch::Fill(color), format!("{name} on")));
        }
        if present(*f, PlugState::Unknown) {
            items.push((Swatch::Fill(*hatch), format!("{name} unknown (counts as on)")));
        }
    }
    if !lanes.is_empty() {
        items.push((Swatch::Fill(LANE_OFF), "off".into()));
    }
    if alarm_present {
        items.push((Swatch::Line(ALARM, 4), "alarm".into()));
    }
    if !stale_spans.is_empty() {
        items.push((Swatch::Fill(STALE_LEGEND), "sensor stale".into()));
    }
    if !gap_spans.is_empty() {
        items.push((Swatch::Fill(HATCH_NODATA), "no data".into()));
    }
    let legend_room = (w - LEFT_LABELS - 20) as i32;
    let mut legend_rows: Vec<Vec<(Swatch, String)>> = vec![Vec::new()];
    let mut used = 0;
    for item in items {
        let iw = legend_item_width(&item.1);
        if used + iw > legend_room && used > 0 {
            legend_rows.push(Vec::new());
            used = 0;
        }
        used += iw;
        legend_rows.last_mut().expect("a row").push(item);
    }

    let plot_w = (w - LEFT_LABELS - RIGHT_MARGIN - 10) as usize;
    let (ticks, step) = time_ticks(t0, t1, zone, (plot_w / 95).max(2));
    let label_of = |t: &f64| tick_label(*t, step, zone);

    let mut svg = String::new();
    let frame;
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let title = format!(
            "Temperature and plugs, {} – {} ({})",
            title_time(first.t, zone),
            title_time(last.t, zone),
            zone.describe(from_unix_secs(last.t))
        );
        let body = root
            .titled(&title, (FONT, 22).into_font().color(&BLACK))
            .map_err(draw_err)?;
        let lane_h = 26u32;
        let lanes_h = lane_h * lanes.len() as u32 + 34;
        let legend_h = LEGEND_ROW_H * legend_rows.len() as u32 + 10;
        let (_, body_h) = body.dim_in_pixel();
        let main_h = body_h.saturating_sub(lanes_h + legend_h).max(100);
        let (main, rest) = body.split_vertically(main_h);
        let (lanes_area, legend_area) = rest.split_vertically(lanes_h);

        // The temperature chart.
        let mut chart = ChartBuilder::on(&main)
            .margin_left(10)
            .margin_right(RIGHT_MARGIN)
            .margin_top(4)
            .y_label_area_size(LEFT_LABELS)
            .x_label_area_size(0)
            .build_cartesian_2d(Axis::new(t0, t1, ticks.clone()), y0..y1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .y_desc(format!("temperature ({unit})"))
            .y_label_formatter(&|v: &f64| format!("{v:.1}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(draw_err)?;
        let area = chart.plotting_area();
        let (xr, yr) = area.get_pixel_range();
        frame = Frame {
            x_px: (xr.start, xr.end - 1),
            y_px: (yr.end - 1, yr.start),
            t_range: (t0, t1),
            y_range: (y0, y1),
        };
        chart
            .draw_series(
                gap_spans
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, y0), (b, y1)], HATCH_NODATA.filled())),
            )
            .map_err(draw_err)?;
        chart
            .draw_series(
                stale_spans
                    .iter()
                    .map(|&(a, b, ())| Rectangle::new([(a, y0), (b, y1)], STALE.mix(0.25).filled())),
            )
            .map_err(draw_err)?;
        let runs = runs(series);
        // The band, and its edges: straight between lines, so a profile's
        // ramp is a slope (and a step takes one cycle, invisible at this
        // scale).
        for r in &runs {
            let run = &samples[r.clone()];
            let upper: Vec<(f64, f64)> = run.iter().filter_map(|s| Some((s.t, s.high?))).collect();
            let lower: Vec<(f64, f64)> = run.iter().filter_map(|s| Some((s.t, s.low?))).collect();
            if upper.len() < 2 || lower.len() < 2 {
                continue;
            }
            let tol = (y1 - y0) * 1e-4;
            let upper = simplify_collinear(&upper, tol);
            let lower = simplify_collinear(&lower, tol);
            let mut poly = upper.clone();
            poly.extend(lower.iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(poly, BAND.mix(0.14).filled())))
                .map_err(draw_err)?;
            for edge in [upper, lower] {
                chart
                    .draw_series(std::iter::once(PathElement::new(edge, BAND.mix(0.75).stroke_width(1))))
                    .map_err(draw_err)?;
            }
        }
        // The temperature, one line per run of valid readings.
        let cols = plot_w.max(100);
        let mut alarm_runs: Vec<Vec<(f64, f64)>> = Vec::new();
        for r in &runs {
            let mut line: Vec<(f64, f64)> = Vec::new();
            let mut alarm_line: Vec<(f64, f64)> = Vec::new();
            let mut flush = |line: &mut Vec<(f64, f64)>| -> Result<(), PlotError> {
                if line.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(line[0], 2, TEMP_LINE.filled())))
                        .map_err(draw_err)?;
                } else if line.len() > 1 {
                    let pts = decimate(line, t0, t1, cols);
                    chart
                        .draw_series(std::iter::once(PathElement::new(pts, TEMP_LINE.stroke_width(2))))
                        .map_err(draw_err)?;
                }
                line.clear();
                Ok(())
            };
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
                        flush(&mut line)?;
                        if !alarm_line.is_empty() {
                            alarm_runs.push(std::mem::take(&mut alarm_line));
                        }
                    }
                }
            }
            flush(&mut line)?;
            if !alarm_line.is_empty() {
                alarm_runs.push(alarm_line);
            }
        }
        for a in alarm_runs {
            let pts = decimate(&a, t0, t1, cols);
            if pts.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(pts[0], 4, ALARM.filled())))
                    .map_err(draw_err)?;
            } else {
                chart
                    .draw_series(std::iter::once(PathElement::new(pts, ALARM.stroke_width(4))))
                    .map_err(draw_err)?;
            }
        }

        // The plug lanes, sharing the time axis.
        let n = lanes.len().max(1) as f64;
        let centers: Vec<f64> = (0..lanes.len()).map(|i| n - i as f64 - 0.5).collect();
        let lane_names: Vec<&str> = lanes.iter().map(|l| l.0).collect();
        let lane_label = |v: &f64| {
            let i = (n - v - 0.5).round() as usize;
            lane_names.get(i).copied().unwrap_or("").to_string()
        };
        let mut lane_chart = ChartBuilder::on(&lanes_area)
            .margin_left(10)
            .margin_right(RIGHT_MARGIN)
            .y_label_area_size(LEFT_LABELS)
            .x_label_area_size(30)
            .build_cartesian_2d(
                Axis::new(t0, t1, ticks.clone()),
                Axis::new(0.0, n, centers),
            )
            .map_err(draw_err)?;
        lane_chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .axis_style(AXIS)
            .x_label_formatter(&label_of)
            .y_label_formatter(&lane_label)
            .label_style((FONT, 15))
            .draw()
            .map_err(draw_err)?;
        for (i, (_, color, hatch, state)) in lanes.iter().enumerate() {
            let top = n - i as f64 - 0.12;
            let bottom = n - i as f64 - 0.88;
            let lane_spans = spans(series, |s| state(s));
            lane_chart
                .draw_series(lane_spans.iter().map(|&(a, b, st)| {
                    let fill = match st {
                        PlugState::On => *color,
                        PlugState::Unknown => *hatch,
                        PlugState::Off => LANE_OFF,
                    };
                    Rectangle::new([(a, bottom), (b, top)], fill.filled())
                }))
                .map_err(draw_err)?;
        }

        let mut rows_y = 8;
        for row in &legend_rows {
            let mut x = LEFT_LABELS as i32 + 10;
            let y = rows_y;
            for (swatch, text) in row {
                let frame_color = RGBColor(0xbb, 0xbb, 0xbb);
                let swatch_box = [(x, y), (x + 22, y + 12)];
                match swatch {
                    Swatch::Line(c, width) => legend_area
                        .draw(&PathElement::new(
                            vec![(x, y + 6), (x + 22, y + 6)],
                            c.stroke_width(*width),
                        ))
                        .map_err(draw_err)?,
                    Swatch::Band => {
                        legend_area
                            .draw(&Rectangle::new(swatch_box, BAND.mix(0.14).filled()))
                            .map_err(draw_err)?;
                        legend_area
                            .draw(&Rectangle::new(swatch_box, BAND.mix(0.75)))
                            .map_err(draw_err)?;
                    }
                    Swatch::Fill(c) => {
                        legend_area
                            .draw(&Rectangle::new(swatch_box, c.filled()))
                            .map_err(draw_err)?;
                        legend_area
                            .draw(&Rectangle::new(swatch_box, frame_color))
                            .map_err(draw_err)?;
                    }
                }
                legend_area
                    .draw(&Text::new(text.clone(), (x + 28, y - 1), (FONT, 15)))
                    .map_err(draw_err)?;
                x += legend_item_width(text);
            }
            rows_y += LEGEND_ROW_H as i32;
        }
        root.present().map_err(draw_err)?;
    }
    Ok((add_hatches(&svg), frame))
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

/// A linear axis with the tick positions given (local-time hours, lane
/// centres), mapped exactly like plotters' own `f64` axis.
struct Axis {
    inner: RangedCoordf64,
    keys: Vec<f64>,
}

impl Axis {
    fn new(lo: f64, hi: f64, keys: Vec<f64>) -> Axis {
        Axis {
            inner: (lo..hi).into(),
            keys,
        }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light (minor) grid lines are not wanted.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// A legend row's height.
const LEGEND_ROW_H: u32 = 22;

/// The room a legend item takes: swatch, gap, text (about 7 px a character
/// at 13 px in the common sans-serif fonts), space.
fn legend_item_width(text: &str) -> i32 {
    22 + 6 + text.chars().count() as i32 * 7 + 20
}

enum Swatch {
    Line(RGBColor, u32),
    Band,
    Fill(RGBColor),
}

/// Puts the hatch patterns in and points the sentinel fills at them.
fn add_hatches(svg: &str) -> String {
    let mut defs = String::from("<defs>");
    let mut body = svg.to_string();
    for (sentinel, id, stripe, ground) in HATCHES {
        defs.push_str(&format!(
            "<pattern id=\"{id}\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" \
             patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"{ground}\"/>\
             <rect width=\"2.5\" height=\"6\" fill=\"{stripe}\"/></pattern>"
        ));
        let from = format!(
            "fill=\"#{:02X}{:02X}{:02X}\"",
            sentinel.0, sentinel.1, sentinel.2
        );
        body = body.replace(&from, &format!("fill=\"url(#{id})\""));
    }
    defs.push_str("</defs>");
    match body.find("<svg").and_then(|i| body[i..].find('>').map(|j| i + j + 1)) {
        Some(at) => {
            body.insert_str(at, &defs);
            body
        }
        None => body,
    }
}

/// The alarm kinds present, for the summary.
pub fn alarm_kinds(series: &Series) -> Vec<AlarmKind> {
    let mut kinds = Vec::new();
    for s in &series.samples {
        if let Some(a) = s.alarm {
            if !kinds.contains(&a) {
                kinds.push(a);
            }
        }
    }
    kinds
}
