//! The JSON configuration (DESIGN §9): types, defaults, loading and validation.
//!
//! Every key has a default except the plugs' hosts, so a minimal file is a mode
//! and a heater. Unknown keys are an error that names the key with its path
//! (`heater.min_on`), and every bad value gets one message naming the key, the
//! value and what is allowed. Temperatures in the file are in `units`; the rest
//! of the program works in °C, so use the `*_c` accessors, not the raw fields.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::units::Units;

/// What the control loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Both plugs off.
    Off,
    /// Heater only.
    #[default]
    Heat,
    /// Cooler only.
    Cool,
    /// Heater and cooler, never both on.
    HeatCool,
}

impl Mode {
    /// The name used in the config file and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Heat => "heat",
            Mode::Cool => "cool",
            Mode::HeatCool => "heat_cool",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plug state named in the config (`fault_state`, `shutdown_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnOff {
    /// Relay open.
    #[default]
    Off,
    /// Relay closed.
    On,
}

impl OnOff {
    /// `true` for on.
    pub fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// Which sensor backend reads the DS18B20 (DESIGN §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SensorBackend {
    /// Bit-banged 1-wire on a GPIO line through linux-embedded-hal.
    Hal,
    /// The kernel's w1-gpio driver under `w1_root`.
    #[default]
    W1,
    /// A thermal model of a chamber (the demo and tests).
    Simulated,
}

/// The `sensor` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// Backend: `hal`, `w1` or `simulated`.
    pub backend: SensorBackend,
    /// Sensor id (`28-0316a2797aff`); `null` takes the only sensor found.
    pub id: Option<String>,
    /// Root of the kernel's w1 devices (w1 backend).
    pub w1_root: PathBuf,
    /// GPIO character device (hal backend).
    pub gpio_chip: PathBuf,
    /// GPIO line offset on `gpio_chip` (hal backend).
    pub gpio_line: u32,
    /// DS18B20 resolution, 9 to 12 bits.
    pub resolution_bits: u8,
    /// Seconds between readings.
    pub interval_s: f64,
    /// Calibration added to every reading (in `units`, a difference).
    pub offset: f64,
    /// Largest believable step between two readings (in `units`, a difference).
    pub max_step: f64,
    /// Seconds without a valid reading before the plugs go to `fault_state`.
    pub stale_after_s: f64,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            backend: SensorBackend::W1,
            id: None,
            w1_root: PathBuf::from("/sys/bus/w1/devices"),
            gpio_chip: PathBuf::from("/dev/gpiochip0"),
            gpio_line: 4,
            resolution_bits: 12,
            interval_s: 5.0,
            offset: 0.0,
            max_step: 5.0,
            stale_after_s: 60.0,
        }
    }
}

impl SensorConfig {
    /// Time between readings.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_s)
    }
    /// How long without a valid reading before the sensor counts as failed.
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs_f64(self.stale_after_s)
    }
}

/// One plug (`heater` or `cooler`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlugConfig {
    /// Host name or IP address of the plug (give it a DHCP reservation).
    pub host: String,
    /// TCP port of the legacy protocol.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Outlet of a power strip by its child id.
    #[serde(default)]
    pub child_id: Option<String>,
    /// Outlet of a power strip by its index (0-based), when `child_id` is not given.
    #[serde(default)]
    pub outlet: Option<usize>,
    /// Shortest time on once switched on (compressor protection).
    #[serde(default)]
    pub min_on_s: f64,
    /// Shortest time off once switched off (compressor protection).
    #[serde(default)]
    pub min_off_s: f64,
    /// Dead-man countdown: the plug switches itself off this long after the last
    /// re-arm if the service stops talking to it. 0 disables.
    #[serde(default = "default_deadman")]
    pub deadman_s: f64,
    /// State while the sensor has failed.
    #[serde(default)]
    pub fault_state: OnOff,
    /// State the service leaves the plug in when it stops.
    #[serde(default)]
    pub shutdown_state: OnOff,
}

fn default_port() -> u16 {
    9999
}
fn default_deadman() -> f64 {
    120.0
}

impl PlugConfig {
    /// A plug at `host:port` with every other key at its default.
    pub fn new(host: impl Into<String>, port: u16) -> PlugConfig {
        PlugConfig {
            host: host.into(),
            port,
            child_id: None,
            outlet: None,
            min_on_s: 0.0,
            min_off_s: 0.0,
            deadman_s: default_deadman(),
            fault_state: OnOff::Off,
            shutdown_state: OnOff::Off,
        }
    }
    /// `host:port` as written, for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
    /// Resolves the host to a socket address.
    pub fn socket_addr(&self) -> std::io::Result<SocketAddr> {
        resolve(&self.host, self.port)
    }
}

/// Resolves `host` (a name or an IP literal) and `port` to the first address.
pub fn resolve(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    })
}

/// The durations of the plug worker's algorithm (DESIGN §4), in seconds.
/// Tests scale them down; the defaults are the real schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlugTiming {
    /// TCP connect timeout.
    pub connect_s: f64,
    /// Timeout of the `get_sysinfo` before a switch.
    pub before_s: f64,
    /// Timeout of the read-back `get_sysinfo` after a switch.
    pub after_s: f64,
    /// Pause between the switch and the read-back, so the state propagates.
    pub spacing_s: f64,
    /// Sleep before each attempt; its length is the number of attempts.
    pub retry_sleeps_s: Vec<f64>,
}

impl Default for PlugTiming {
    fn default() -> Self {
        PlugTiming {
            connect_s: 3.0,
            before_s: 6.0,
            after_s: 5.0,
            spacing_s: 0.5,
            retry_sleeps_s: vec![0.0, 1.0, 2.0],
        }
    }
}

impl PlugTiming {
    /// Connect timeout.
    pub fn connect(&self) -> Duration {
        Duration::from_secs_f64(self.connect_s)
    }
    /// Timeout of the read before a switch.
    pub fn before(&self) -> Duration {
        Duration::from_secs_f64(self.before_s)
    }
    /// Timeout of the read-back.
    pub fn after(&self) -> Duration {
        Duration::from_secs_f64(self.after_s)
    }
    /// Pause between switch and read-back.
    pub fn spacing(&self) -> Duration {
        Duration::from_secs_f64(self.spacing_s)
    }
    /// Sleeps before attempts 1, 2, 3...
    pub fn retry_sleeps(&self) -> Vec<Duration> {
        self.retry_sleeps_s
            .iter()
            .map(|s| Duration::from_secs_f64(*s))
            .collect()
    }
    /// Every duration multiplied by `factor` (tests run the schedule scaled down).
    pub fn scaled(&self, factor: f64) -> PlugTiming {
        PlugTiming {
            connect_s: self.connect_s * factor,
            before_s: self.before_s * factor,
            after_s: self.after_s * factor,
            spacing_s: self.spacing_s * factor,
            retry_sleeps_s: self.retry_sleeps_s.iter().map(|s| s * factor).collect(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `C` or `F`, for every temperature in the file, the logs and the state file.
    pub units: Units,
    /// `off`, `heat`, `cool` or `heat_cool`.
    pub mode: Mode,
    /// Lower limit (heater on at or below).
    pub low_limit: f64,
    /// Upper limit (cooler on at or above).
    pub high_limit: f64,
    /// Seconds between control cycles.
    pub cycle_s: f64,
    /// The same successful command to the same plug is not repeated within this.
    pub rate_limit_s: f64,
    /// Delay between the heater's verified off and the cooler's on (and back).
    pub switchover_delay_s: f64,
    /// Seconds between reads of each plug's real state.
    pub reconcile_s: f64,
    /// Warn below this temperature.
    pub alarm_low: Option<f64>,
    /// Warn above this temperature.
    pub alarm_high: Option<f64>,
    /// The sensor.
    pub sensor: SensorConfig,
    /// The heater plug, if any.
    pub heater: Option<PlugConfig>,
    /// The cooler plug, if any.
    pub cooler: Option<PlugConfig>,
    /// Durations of the plug worker.
    pub plug_timing: PlugTiming,
    /// Directory of `kasa-thermostat.log`, `kasa_errors.log`, `readings.jsonl`.
    pub log_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// The state file, rewritten atomically every cycle.
    pub state_file: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            units: Units::C,
            mode: Mode::Heat,
            low_limit: 18.0,
            high_limit: 20.0,
            cycle_s: 10.0,
            rate_limit_s: 10.0,
            switchover_delay_s: 300.0,
            reconcile_s: 60.0,
            alarm_low: None,
            alarm_high: None,
            sensor: SensorConfig::default(),
            heater: None,
            cooler: None,
            plug_timing: PlugTiming::default(),
            log_dir: PathBuf::from("/var/log/kasa-thermostat"),
            log_level: "info".to_string(),
            state_file: PathBuf::from("/var/lib/kasa-thermostat/state.json"),
        }
    }
}

/// Why a configuration could not be used. Each variant names the file or key.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read: check the path and its permissions.
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape (unknown key, wrong type).
    Parse {
        /// The config file, if it came from one.
        path: Option<PathBuf>,
        /// The dotted key path (`heater.port`), or `.` for the top level.
        key: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// A value is out of its allowed range: the message names key, value and what is allowed.
    Invalid {
        /// The dotted key path.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, .. } => {
                write!(f, "cannot read config file {}", path.display())
            }
            ConfigError::Parse { path, key, message } => {
                if let Some(p) = path {
                    write!(f, "{}: ", p.display())?;
                }
                if key == "." {
                    write!(f, "{message}")
                } else {
                    write!(f, "key `{key}`: {message}")
                }
            }
            ConfigError::Invalid { key, message } => write!(f, "key `{key}`: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The accepted `log_level` values.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message,
    }
}

fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if !v.is_finite() || v <= 0.0 {
        return Err(invalid(
            key,
            format!("{v} must be a number of seconds above 0"),
        ));
    }
    Ok(())
}

fn non_negative(key: &str, v: f64) -> Result<(), ConfigError> {
    if !v.is_finite() || v < 0.0 {
        return Err(invalid(
            key,
            format!("{v} must be a number of seconds, 0 or more"),
        ));
    }
    Ok(())
}

/// Whether `host` is an IP literal or a syntactically valid DNS name.
fn host_parses(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn validate_plug(key: &str, p: &PlugConfig, cycle_s: f64) -> Result<(), ConfigError> {
    if !host_parses(&p.host) {
        return Err(invalid(
            &format!("{key}.host"),
            format!("{:?} is not an IP address or host name", p.host),
        ));
    }
    if p.port == 0 {
        return Err(invalid(
            &format!("{key}.port"),
            "0 is not a TCP port (the Kasa default is 9999)".into(),
        ));
    }
    if p.child_id.is_some() && p.outlet.is_some() {
        return Err(invalid(
            &format!("{key}.outlet"),
            "give either child_id or outlet for a power strip outlet, not both".into(),
        ));
    }
    if let Some(id) = &p.child_id {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(
                &format!("{key}.child_id"),
                format!("{id:?} is not a child id (hex digits: the deviceId plus a two-digit index, or the index alone)"),
            ));
        }
    }
    if let Some(n) = p.outlet {
        if n > 15 {
            return Err(invalid(
                &format!("{key}.outlet"),
                format!("{n} is not an outlet index (0 to 15; 0 is the first outlet)"),
            ));
        }
    }
    non_negative(&format!("{key}.min_on_s"), p.min_on_s)?;
    non_negative(&format!("{key}.min_off_s"), p.min_off_s)?;
    non_negative(&format!("{key}.deadman_s"), p.deadman_s)?;
    if p.deadman_s > 0.0 && p.deadman_s < 3.0 * cycle_s {
        return Err(invalid(
            &format!("{key}.deadman_s"),
            format!(
                "{} is too short: it must be 0 (off) or at least 3 control cycles ({} s) so it is re-armed in time",
                p.deadman_s,
                3.0 * cycle_s
            ),
        ));
    }
    if p.deadman_s > 86_400.0 {
        return Err(invalid(
            &format!("{key}.deadman_s"),
            format!(
                "{} is longer than a day; a dead-man that late protects nothing",
                p.deadman_s
            ),
        ));
    }
    Ok(())
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_json(&text).map_err(|e| match e {
            ConfigError::Parse { key, message, .. } => ConfigError::Parse {
                path: Some(path.to_path_buf()),
                key,
                message,
            },
            other => other,
        })
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let config: Config =
            serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Parse {
                path: None,
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let u = self.units;
        let temp = |key: &str, v: f64| -> Result<(), ConfigError> {
            let c = u.to_c(v);
            if !v.is_finite() || !(-55.0..=125.0).contains(&c) {
                return Err(invalid(
                    key,
                    format!(
                        "{v} is not a temperature a DS18B20 can read ({} to {} {})",
                        u.from_c(-55.0),
                        u.from_c(125.0),
                        u.symbol()
                    ),
                ));
            }
            Ok(())
        };
        temp("low_limit", self.low_limit)?;
        temp("high_limit", self.high_limit)?;
        if self.low_limit >= self.high_limit {
            return Err(invalid(
                "low_limit",
                format!(
                    "{} must be below high_limit ({})",
                    self.low_limit, self.high_limit
                ),
            ));
        }
        positive("cycle_s", self.cycle_s)?;
        non_negative("rate_limit_s", self.rate_limit_s)?;
        non_negative("switchover_delay_s", self.switchover_delay_s)?;
        positive("reconcile_s", self.reconcile_s)?;
        if let Some(v) = self.alarm_low {
            temp("alarm_low", v)?;
        }
        if let Some(v) = self.alarm_high {
            temp("alarm_high", v)?;
        }
        if let (Some(lo), Some(hi)) = (self.alarm_low, self.alarm_high) {
            if lo >= hi {
                return Err(invalid(
                    "alarm_low",
                    format!("{lo} must be below alarm_high ({hi})"),
                ));
            }
        }
        self.validate_sensor()?;
        for (key, plug) in [("heater", &self.heater), ("cooler", &self.cooler)] {
            if let Some(plug) = plug {
                validate_plug(key, plug, self.cycle_s)?;
            }
        }
        if let (Some(h), Some(c)) = (&self.heater, &self.cooler) {
            let same_outlet = h.child_id == c.child_id && h.outlet == c.outlet;
            if h.host == c.host && h.port == c.port && same_outlet {
                return Err(invalid(
                    "cooler.host",
                    format!(
                        "{} is the heater's plug too; heater and cooler need different plugs or outlets",
                        c.address()
                    ),
                ));
            }
        }
        if let (Some(h), Some(c)) = (&self.heater, &self.cooler) {
            for (key, both) in [
                (
                    "fault_state",
                    h.fault_state.is_on() && c.fault_state.is_on(),
                ),
                (
                    "shutdown_state",
                    h.shutdown_state.is_on() && c.shutdown_state.is_on(),
                ),
            ] {
                if both {
                    return Err(invalid(
                        &format!("cooler.{key}"),
                        "\"on\" for both heater and cooler would run them together; at most one may be on".to_string(),
                    ));
                }
            }
        }
        let needs: &[(&str, bool)] = match self.mode {
            Mode::Off => &[],
            Mode::Heat => &[("heater", self.heater.is_some())],
            Mode::Cool => &[("cooler", self.cooler.is_some())],
            Mode::HeatCool => &[
                ("heater", self.heater.is_some()),
                ("cooler", self.cooler.is_some()),
            ],
        };
        for (plug, present) in needs {
            if !present {
                return Err(invalid(
                    "mode",
                    format!(
                        "\"{}\" needs a `{plug}` plug, and none is configured",
                        self.mode
                    ),
                ));
            }
        }
        self.validate_timing()?;
        if !LOG_LEVELS.contains(&self.log_level.as_str()) {
            return Err(invalid(
                "log_level",
                format!(
                    "{:?} is not one of {}",
                    self.log_level,
                    LOG_LEVELS.join(", ")
                ),
            ));
        }
        if self.log_dir.as_os_str().is_empty() {
            return Err(invalid("log_dir", "must name a directory".into()));
        }
        if self.state_file.as_os_str().is_empty() || self.state_file.file_name().is_none() {
            return Err(invalid("state_file", "must name a file".into()));
        }
        Ok(())
    }

    fn validate_sensor(&self) -> Result<(), ConfigError> {
        let s = &self.sensor;
        positive("sensor.interval_s", s.interval_s)?;
        positive("sensor.stale_after_s", s.stale_after_s)?;
        if s.stale_after_s <= s.interval_s {
            return Err(invalid(
                "sensor.stale_after_s",
                format!(
                    "{} must be longer than sensor.interval_s ({}), or every reading would be stale",
                    s.stale_after_s, s.interval_s
                ),
            ));
        }
        if !(9..=12).contains(&s.resolution_bits) {
            return Err(invalid(
                "sensor.resolution_bits",
                format!("{} is not allowed: 9, 10, 11 or 12", s.resolution_bits),
            ));
        }
        if !s.offset.is_finite() || self.units.delta_to_c(s.offset).abs() > 10.0 {
            return Err(invalid(
                "sensor.offset",
                format!(
                    "{} is not a plausible calibration (at most ±{} {})",
                    s.offset,
                    10.0 / self.units.delta_to_c(1.0),
                    self.units.symbol()
                ),
            ));
        }
        positive("sensor.max_step", s.max_step)?;
        if let Some(id) = &s.id {
            if id.trim().is_empty() || id.contains('/') {
                return Err(invalid(
                    "sensor.id",
                    format!("{id:?} is not a sensor id (like \"28-0316a2797aff\")"),
                ));
            }
        }
        if s.backend == SensorBackend::W1 && s.w1_root.as_os_str().is_empty() {
            return Err(invalid("sensor.w1_root", "must name a directory".into()));
        }
        if s.backend == SensorBackend::Hal && s.gpio_chip.as_os_str().is_empty() {
            return Err(invalid(
                "sensor.gpio_chip",
                "must name a GPIO character device".into(),
            ));
        }
        Ok(())
    }

    fn validate_timing(&self) -> Result<(), ConfigError> {
        let t = &self.plug_timing;
        positive("plug_timing.connect_s", t.connect_s)?;
        positive("plug_timing.before_s", t.before_s)?;
        positive("plug_timing.after_s", t.after_s)?;
        non_negative("plug_timing.spacing_s", t.spacing_s)?;
        for (key, v) in [
            ("plug_timing.connect_s", t.connect_s),
            ("plug_timing.before_s", t.before_s),
            ("plug_timing.after_s", t.after_s),
            ("plug_timing.spacing_s", t.spacing_s),
        ] {
            if v > 60.0 {
                return Err(invalid(key, format!("{v} s is too long (at most 60 s)")));
            }
        }
        if t.retry_sleeps_s.is_empty() || t.retry_sleeps_s.len() > 10 {
            return Err(invalid(
                "plug_timing.retry_sleeps_s",
                format!(
                    "{:?} must list 1 to 10 sleeps (one per attempt)",
                    t.retry_sleeps_s
                ),
            ));
        }
        for (i, v) in t.retry_sleeps_s.iter().enumerate() {
            if !v.is_finite() || *v < 0.0 || *v > 60.0 {
                return Err(invalid(
                    &format!("plug_timing.retry_sleeps_s[{i}]"),
                    format!("{v} must be 0 to 60 seconds"),
                ));
            }
        }
        Ok(())
    }

    /// `low_limit` in °C.
    pub fn low_c(&self) -> f64 {
        self.units.to_c(self.low_limit)
    }
    /// `high_limit` in °C.
    pub fn high_c(&self) -> f64 {
        self.units.to_c(self.high_limit)
    }
    /// `alarm_low` in °C.
    pub fn alarm_low_c(&self) -> Option<f64> {
        self.alarm_low.map(|t| self.units.to_c(t))
    }
    /// `alarm_high` in °C.
    pub fn alarm_high_c(&self) -> Option<f64> {
        self.alarm_high.map(|t| self.units.to_c(t))
    }
    /// `sensor.offset` in kelvins.
    pub fn sensor_offset_c(&self) -> f64 {
        self.units.delta_to_c(self.sensor.offset)
    }
    /// `sensor.max_step` in kelvins.
    pub fn sensor_max_step_c(&self) -> f64 {
        self.units.delta_to_c(self.sensor.max_step)
    }
    /// The configured plugs with their roles.
    pub fn plugs(&self) -> Vec<(crate::Role, &PlugConfig)> {
        let mut out = Vec::new();
        if let Some(h) = &self.heater {
            out.push((crate::Role::Heater, h));
        }
        if let Some(c) = &self.cooler {
            out.push((crate::Role::Cooler, c));
        }
        out
    }
}

/// `kasa-thermostat check-config FILE`: prints the effective config (every
/// default filled in) and exits 0, or prints the problem and exits 1.
pub fn cli_check_config(parser: &mut lexopt::Parser) -> crate::cli::CmdResult {
    use crate::cli::CliError;
    use lexopt::prelude::*;
    let mut file: Option<PathBuf> = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            Short('h') | Long("help") => {
                println!("usage: kasa-thermostat check-config FILE");
                return Ok(std::process::ExitCode::SUCCESS);
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let file = file.ok_or_else(|| CliError::Usage("check-config needs a FILE".into()))?;
    let config = Config::load(&file).map_err(CliError::failed)?;
    let text = serde_json::to_string_pretty(&config).map_err(CliError::failed)?;
    println!("{text}");
    eprintln!("{}: the config is valid", file.display());
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEATER: &str = r#""heater":{"host":"192.0.2.10"}"#;

    fn err(text: &str) -> String {
        Config::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn minimal_file_gets_every_default() {
        let c = Config::from_json(&format!("{{{HEATER}}}")).unwrap();
        assert_eq!(c.mode, Mode::Heat);
        assert_eq!(c.cycle_s, 10.0);
        assert_eq!(c.plug_timing, PlugTiming::default());
        let h = c.heater.unwrap();
        assert_eq!((h.port, h.deadman_s), (9999, 120.0));
        assert_eq!(h.fault_state, OnOff::Off);
    }

    #[test]
    fn the_design_example_is_valid() {
        let text = r#"{
          "units": "C", "mode": "heat", "low_limit": 18.0, "high_limit": 20.0,
          "cycle_s": 10, "rate_limit_s": 10, "switchover_delay_s": 300, "reconcile_s": 60,
          "alarm_low": null, "alarm_high": null,
          "sensor": { "backend": "w1", "id": "28-0316a2797aff", "w1_root": "/sys/bus/w1/devices",
            "gpio_chip": "/dev/gpiochip0", "gpio_line": 4, "resolution_bits": 12,
            "interval_s": 5, "offset": 0.0, "max_step": 5.0, "stale_after_s": 60 },
          "heater": { "host": "192.168.1.50", "port": 9999, "child_id": null, "outlet": null,
              "min_on_s": 0, "min_off_s": 0, "deadman_s": 120,
              "fault_state": "off", "shutdown_state": "off" },
          "cooler": null,
          "plug_timing": { "connect_s": 3, "before_s": 6, "after_s": 5, "spacing_s": 0.5,
                           "retry_sleeps_s": [0, 1, 2] },
          "log_dir": "/var/log/kasa-thermostat", "log_level": "info",
          "state_file": "/var/lib/kasa-thermostat/state.json"
        }"#;
        let c = Config::from_json(text).unwrap();
        assert_eq!(c.sensor.id.as_deref(), Some("28-0316a2797aff"));
        // The effective config round-trips.
        let again = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn each_bad_value_names_its_key() {
        // (config body after the heater, words the message must contain)
        let cases: &[(&str, &[&str])] = &[
            (r#""colour":1"#, &["unknown field `colour`"]),
            (r#""sensor":{"intervl_s":1}"#, &["sensor", "intervl_s"]),
            (r#""units":"K""#, &["units", "K"]),
            (r#""mode":"warm""#, &["mode", "warm"]),
            (r#""low_limit":21"#, &["low_limit", "21", "high_limit"]),
            (r#""cycle_s":0"#, &["cycle_s", "above 0"]),
            (r#""rate_limit_s":-1"#, &["rate_limit_s"]),
            (r#""alarm_low":30,"alarm_high":10"#, &["alarm_low"]),
            (r#""high_limit":300"#, &["high_limit", "300"]),
            (
                r#""sensor":{"resolution_bits":8}"#,
                &["sensor.resolution_bits", "8"],
            ),
            (r#""sensor":{"stale_after_s":5}"#, &["sensor.stale_after_s"]),
            (r#""mode":"cool""#, &["mode", "cooler"]),
            (r#""log_level":"loud""#, &["log_level", "loud"]),
            (
                r#""plug_timing":{"retry_sleeps_s":[]}"#,
                &["plug_timing.retry_sleeps_s"],
            ),
            (
                r#""plug_timing":{"retry_sleeps_s":[0,-1]}"#,
                &["retry_sleeps_s[1]"],
            ),
            (
                r#""plug_timing":{"connect_s":0}"#,
                &["plug_timing.connect_s"],
            ),
            (
                r#""heater":{"host":"bad host!"}"#,
                &["heater.host", "bad host!"],
            ),
            (r#""heater":{"host":"10.0.0.5","port":0}"#, &["heater.port"]),
            (
                r#""heater":{"host":"h","outlet":1,"child_id":"01"}"#,
                &["heater.outlet"],
            ),
            (
                r#""heater":{"host":"h","deadman_s":5}"#,
                &["heater.deadman_s", "30"],
            ),
            (
                r#""heater":{"host":"h","min_on_s":-5}"#,
                &["heater.min_on_s"],
            ),
            (
                r#""heater":{"host":"h","fault_state":"maybe"}"#,
                &["heater.fault_state"],
            ),
            (r#""heater":{"port":9999}"#, &["heater", "host"]),
            (
                r#""heater":{"host":"a","fault_state":"on"},"cooler":{"host":"b","fault_state":"on"}"#,
                &["cooler.fault_state"],
            ),
            (
                r#""mode":"heat_cool","cooler":{"host":"192.0.2.10"}"#,
                &["cooler.host", "heater"],
            ),
        ];
        for (body, words) in cases {
            let text = if body.starts_with(r#""heater""#) {
                format!("{{{body}}}")
            } else {
                format!("{{{HEATER},{body}}}")
            };
            let msg = err(&text);
            for w in *words {
                assert!(msg.contains(w), "{body}: {msg:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn fahrenheit_converts_limits_and_deltas() {
        let c = Config::from_json(&format!(
            r#"{{{HEATER},"units":"F","low_limit":64.4,"high_limit":68,"sensor":{{"max_step":9}}}}"#
        ))
        .unwrap();
        assert!((c.low_c() - 18.0).abs() < 1e-9);
        assert!((c.high_c() - 20.0).abs() < 1e-9);
        assert!((c.sensor_max_step_c() - 5.0).abs() < 1e-9);
        // 20 °F is below what a DS18B20 can hold as a limit? No: -6.7 °C is fine.
        assert!(Config::from_json(&format!(
            r#"{{{HEATER},"units":"F","low_limit":20,"high_limit":30}}"#
        ))
        .is_ok());
        assert!(err(&format!(
            r#"{{{HEATER},"units":"F","low_limit":-80,"high_limit":30}}"#
        ))
        .contains("°F"));
    }

    #[test]
    fn load_names_the_file() {
        let msg = Config::load(Path::new("/nonexistent/kasa.json"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/kasa.json"), "{msg}");
    }
}
