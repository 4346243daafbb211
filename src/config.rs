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

/// Temperature units of the config file, the logs and the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Units {
    /// Degrees Celsius.
    #[default]
    C,
    /// Degrees Fahrenheit.
    F,
}

impl Units {
    /// Converts a temperature in these units to °C.
    pub fn to_c(self, t: f64) -> f64 {
        match self {
            Units::C => t,
            Units::F => (t - 32.0) * 5.0 / 9.0,
        }
    }
    /// Converts a temperature in °C to these units.
    pub fn from_c(self, t: f64) -> f64 {
        match self {
            Units::C => t,
            Units::F => t * 9.0 / 5.0 + 32.0,
        }
    }
    /// Converts a temperature difference in these units to kelvins.
    pub fn delta_to_c(self, d: f64) -> f64 {
        match self {
            Units::C => d,
            Units::F => d * 5.0 / 9.0,
        }
    }
    /// The unit symbol, for logs: `°C` or `°F`.
    pub fn symbol(self) -> &'static str {
        match self {
            Units::C => "°C",
            Units::F => "°F",
        }
    }
}

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
        Ok(())
    }
}

/// `kasa-thermostat check-config FILE`.
pub fn cli_check_config(_parser: &mut lexopt::Parser) -> crate::cli::CmdResult {
    Err(crate::cli::CliError::Usage(
        "check-config: not built yet".into(),
    ))
}
