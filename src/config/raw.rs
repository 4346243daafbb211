//! The config file as written (docs/design.md §10): plain serde structs with every
//! default filled in, in the user's `units` and seconds. Nothing here is
//! checked beyond JSON types and unknown keys; [`super::Config::from_raw`]
//! turns this into the typed config with every bound applied.
//!
//! The same structs print the effective config (`check-config`), so what is
//! printed is exactly what could be written back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::control::Mode;
use crate::sensor::Backend;
use crate::units::Units;

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
    pub(crate) fn is_on(self) -> bool {
        self == OnOff::On
    }
}

/// The `sensor` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSensor {
    /// Backend: `hal`, `w1` or `simulated`.
    pub backend: Backend,
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

impl Default for RawSensor {
    fn default() -> Self {
        let o = crate::sensor::SensorOptions::default();
        RawSensor {
            backend: o.backend,
            id: o.id,
            w1_root: o.w1_root,
            gpio_chip: o.gpio_chip,
            gpio_line: o.gpio_line,
            resolution_bits: o.resolution_bits,
            interval_s: 5.0,
            offset: 0.0,
            max_step: 5.0,
            stale_after_s: 60.0,
        }
    }
}

/// One plug (`heater` or `cooler`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlug {
    /// Host name or IP address of the plug (give it a DHCP reservation).
    pub host: String,
    /// `auto`, `legacy`, `klap` or `aes`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// TCP port; `null` takes the protocol's default (9999 legacy, 80 otherwise).
    #[serde(default)]
    pub port: Option<u16>,
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
    /// Dead-man countdown: the plug switches itself off this long after the
    /// last re-arm if the service stops talking to it. 0 disables.
    #[serde(default = "default_deadman")]
    pub deadman_s: f64,
    /// State while the sensor has failed.
    #[serde(default)]
    pub fault_state: OnOff,
    /// State the service leaves the plug in when it stops.
    #[serde(default)]
    pub shutdown_state: OnOff,
}

fn default_protocol() -> String {
    "auto".to_string()
}

/// The default dead-man delay, seconds.
pub(crate) const DEFAULT_DEADMAN_S: f64 = 120.0;

fn default_deadman() -> f64 {
    DEFAULT_DEADMAN_S
}

impl RawPlug {
    /// A plug at `host:port` with every other key at its default.
    pub fn new(host: impl Into<String>, port: Option<u16>) -> RawPlug {
        RawPlug {
            host: host.into(),
            protocol: default_protocol(),
            port,
            child_id: None,
            outlet: None,
            min_on_s: 0.0,
            min_off_s: 0.0,
            deadman_s: DEFAULT_DEADMAN_S,
            fault_state: OnOff::Off,
            shutdown_state: OnOff::Off,
        }
    }
}

/// The durations of the plug worker's algorithm (docs/design.md §6), in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPlugTiming {
    /// TCP connect timeout.
    pub connect_s: f64,
    /// Timeout of the `get_sysinfo` before a switch, and of the switch.
    pub before_s: f64,
    /// Timeout of the read-back `get_sysinfo` after a switch.
    pub after_s: f64,
    /// Pause between the switch and the read-back, so the state propagates.
    pub spacing_s: f64,
    /// Sleep before each attempt; its length is the number of attempts.
    pub retry_sleeps_s: Vec<f64>,
}

impl Default for RawPlugTiming {
    fn default() -> Self {
        RawPlugTiming {
            connect_s: 3.0,
            before_s: 6.0,
            after_s: 5.0,
            spacing_s: 0.5,
            retry_sleeps_s: vec![0.0, 1.0, 2.0],
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
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
    /// Delay between one plug's verified off and the other's on.
    pub switchover_delay_s: f64,
    /// Seconds between reads of each plug's real state.
    pub reconcile_s: f64,
    /// Warn below this temperature.
    pub alarm_low: Option<f64>,
    /// Warn above this temperature.
    pub alarm_high: Option<f64>,
    /// The sensor.
    pub sensor: RawSensor,
    /// The TP-Link account for plugs that need one (KLAP, AES).
    pub credentials: Option<RawCredentials>,
    /// The heater plug, if any.
    pub heater: Option<RawPlug>,
    /// The cooler plug, if any.
    pub cooler: Option<RawPlug>,
    /// Durations of the plug worker.
    pub plug_timing: RawPlugTiming,
    /// Directory of the logs and the data logs.
    pub log_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// The state file, rewritten atomically every cycle (a runtime file).
    pub state_file: PathBuf,
    /// A schedule of limits over days; without it the limits are fixed.
    pub profile: Option<crate::profile::RawProfile>,
    /// Where the profile's start survives restarts.
    pub profile_state_file: PathBuf,
    /// A command to run when something needs a person.
    pub alerts: Option<crate::alerts::RawAlerts>,
    /// A second sensor, in the chamber's air (cascade control).
    pub chamber_sensor: Option<super::control::RawChamberSensor>,
    /// Which algorithm makes the demand, and its tuning.
    pub control: super::control::RawControl,
    /// Where what cascade control learned survives restarts.
    pub control_state_file: PathBuf,
    /// Changes made while running (web, `set`, MQTT), kept across restarts.
    pub overrides_file: PathBuf,
    /// The Unix socket `kasa-thermostat set` talks to.
    pub control_socket: PathBuf,
    /// The web page; `null`: nothing listens.
    pub web: Option<RawWeb>,
    /// Where every instance on the machine keeps its plug and sensor locks
    /// (one directory for all of them: that is how they see each other).
    pub lock_dir: PathBuf,
    /// The MQTT broker (Home Assistant); `null`: no MQTT.
    pub mqtt: Option<RawMqtt>,
}

/// The `mqtt` section: the broker, and the topics under which the service
/// publishes its state and takes commands (Home Assistant discovery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// The broker's host name or IP address.
    pub host: String,
    /// The broker's TCP port.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// The broker account, if it wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the broker account's password (needs `username`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The MQTT client id; `null`: `kasa-thermostat-<hostname>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topics go under this; `null`: `kasa-thermostat/<hostname>`.
    #[serde(default)]
    pub topic_prefix: Option<String>,
    /// Home Assistant's discovery prefix.
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// The state is republished at least this often, seconds (at once on a change).
    #[serde(default = "default_publish_s")]
    pub publish_s: f64,
}

fn default_mqtt_port() -> u16 {
    1883
}

fn default_discovery_prefix() -> String {
    "homeassistant".to_string()
}

fn default_publish_s() -> f64 {
    30.0
}

/// The `web` section: the page and its JSON API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Address and port to listen on (`0.0.0.0:8080`).
    pub listen: String,
    /// A file holding the page's password (readable by the service alone).
    pub password_file: PathBuf,
    /// Refuse every change (403): the page only shows.
    #[serde(default)]
    pub read_only: bool,
}

/// The default `overrides_file`.
pub(crate) const DEFAULT_OVERRIDES_FILE: &str = "/var/lib/kasa-thermostat/overrides.json";

/// The default `control_socket`.
pub(crate) const DEFAULT_CONTROL_SOCKET: &str = "/run/kasa-thermostat/control.sock";

/// The `credentials` section: the TP-Link account of newer plugs. The
/// password lives only in `password_file`, never in the config itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredentials {
    /// The account's e-mail address.
    pub username: String,
    /// A file holding the password (readable by the service alone).
    pub password_file: PathBuf,
}

/// The default `state_file`: runtime status under `/run` (`RuntimeDirectory=`
/// in the unit), so the SD card does not carry a rewrite every cycle.
pub(crate) const DEFAULT_STATE_FILE: &str = "/run/kasa-thermostat/state.json";

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
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
            sensor: RawSensor::default(),
            credentials: None,
            heater: None,
            cooler: None,
            plug_timing: RawPlugTiming::default(),
            log_dir: PathBuf::from("/var/log/kasa-thermostat"),
            log_level: "info".to_string(),
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            profile: None,
            profile_state_file: PathBuf::from(crate::profile::DEFAULT_STATE_FILE),
            alerts: None,
            chamber_sensor: None,
            control: super::control::RawControl::default(),
            control_state_file: PathBuf::from(DEFAULT_CONTROL_STATE_FILE),
            overrides_file: PathBuf::from(DEFAULT_OVERRIDES_FILE),
            control_socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            web: None,
            lock_dir: PathBuf::from(crate::instance::DEFAULT_LOCK_DIR),
            mqtt: None,
        }
    }
}

/// The default `control_state_file`, next to the profile's.
pub(crate) const DEFAULT_CONTROL_STATE_FILE: &str = "/var/lib/kasa-thermostat/control.json";
