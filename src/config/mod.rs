//! The configuration (docs/design.md §10): parse, don't validate.
//!
//! The file is read into the plain serde structs of `raw` (every default
//! filled in; unknown keys are an error that names the key with its path,
//! `heater.min_on`), then turned into a [`Config`] that holds `Duration`s,
//! temperatures in °C, a `log::LevelFilter` and the options structs of the
//! libraries (`kasa::Timing`, `sensor::SensorOptions`), with every bound
//! applied. Only a `Config` reaches `Service::start`, so a service cannot be
//! started with an invalid one. Every bad value gets one message naming the
//! key, the value and what is allowed.
//!
//! The bounds (also in the README):
//!
//! | key | allowed |
//! |---|---|
//! | `cycle_s` | 0.5 to 3600 |
//! | `rate_limit_s`, `switchover_delay_s` | 0 to 3600 |
//! | `reconcile_s` | 1 to 86400 (read at most once per cycle) |
//! | `heater/cooler.min_on_s`, `min_off_s` | 0 to 86400 |
//! | `heater/cooler.deadman_s` | 0 (off), or 3 × `cycle_s` to 86400 |
//! | `sensor.interval_s` | the conversion time of `resolution_bits` (0.094 to 0.75 s) to 3600 |
//! | `sensor.stale_after_s` | 2 × `interval_s` to 86400 |
//! | `sensor.offset` | ±10 °C; `sensor.max_step` above 0, at most 180 °C |
//! | `plug_timing.connect_s`, `before_s`, `after_s` | 0.01 to 60 |
//! | `plug_timing.spacing_s`, each of `retry_sleeps_s` | 0 to 60 (1 to 10 sleeps) |
//! | temperatures | what a DS18B20 reads: -55 to 125 °C (-67 to 257 °F) |
//!
//! NaN, infinities, trailing text after the JSON object, a top level that is
//! not an object are refused; a UTF-8 byte-order mark is skipped. The file
//! itself must be a regular file of at most 1 MiB.

pub(crate) mod control;
mod error;
mod instance;
pub(crate) mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;

pub use control::{AlgorithmName, ChamberSettings, RawChamberSensor, RawControl};
pub use error::ConfigError;
pub use raw::{
    OnOff, RawConfig, RawCredentials, RawMqtt, RawPlug, RawPlugTiming, RawSensor, RawWeb,
};

use crate::control::Mode;
use crate::kasa::{Outlet, PlugTarget, Timing, TransportKind};
use crate::msg::Role;
use crate::sensor::{Backend, SensorOptions};
use crate::units::Units;
use error::{fmt_num, invalid};

/// The largest config file read: a config is a few KiB.
pub(crate) const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Shortest and longest `cycle_s`.
pub(crate) const CYCLE_RANGE_S: (f64, f64) = (0.5, 3600.0);

/// One day, the longest most durations may be.
const DAY_S: f64 = 86_400.0;

/// The sensor settings: the backend's own options plus what the service
/// does with readings.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSettings {
    /// What the sensor library needs to open the backend.
    pub options: SensorOptions,
    /// Time between readings.
    pub interval: Duration,
    /// Calibration added to every reading, °C.
    pub offset_c: f64,
    /// Largest believable step between readings, °C.
    pub max_step_c: f64,
    /// No valid reading for this long sends every plug to its fault state.
    pub stale_after: Duration,
}

/// One configured plug.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugConfig {
    /// Where it is and how to talk to it.
    pub target: PlugTarget,
    /// Shortest on period.
    pub min_on: Duration,
    /// Shortest off period.
    pub min_off: Duration,
    /// Dead-man delay; `None` when off.
    pub deadman: Option<Duration>,
    /// State while the sensor has failed.
    pub fault_state: bool,
    /// State the service leaves the plug in.
    pub shutdown_state: bool,
}

impl PlugConfig {
    /// `host:port`, for messages.
    pub(crate) fn address(&self) -> String {
        self.target.address()
    }
}

/// The typed, bounded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Units of the file, the logs, the state file and the data log.
    pub units: Units,
    /// The control mode.
    pub mode: Mode,
    /// Lower limit, °C.
    pub low_c: f64,
    /// Upper limit, °C.
    pub high_c: f64,
    /// Time between control cycles.
    pub cycle: Duration,
    /// A successful command is not repeated within this.
    pub rate_limit: Duration,
    /// Between one plug's verified off and the other's on.
    pub switchover_delay: Duration,
    /// Between reads of each plug's real state.
    pub reconcile: Duration,
    /// Alarm below this, °C.
    pub alarm_low_c: Option<f64>,
    /// Alarm above this, °C.
    pub alarm_high_c: Option<f64>,
    /// The sensor.
    pub sensor: SensorSettings,
    /// The heater plug.
    pub heater: Option<PlugConfig>,
    /// The cooler plug.
    pub cooler: Option<PlugConfig>,
    /// The plug worker's durations.
    pub plug_timing: Timing,
    /// Directory of the logs and the data logs.
    pub log_dir: PathBuf,
    /// Log level of the main log and stderr.
    pub log_level: LevelFilter,
    /// The state file.
    pub state_file: PathBuf,
    /// The credentials section, as written (the password is read at start).
    pub credentials: Option<RawCredentials>,
    /// The temperature profile, when one is configured.
    pub profile: Option<crate::profile::Profile>,
    /// Where the profile's start survives restarts.
    pub profile_state_file: PathBuf,
    /// The chamber sensor (cascade control), when one is configured.
    pub chamber: Option<ChamberSettings>,
    /// What makes the demand.
    pub(crate) algorithm: crate::control::Algorithm,
    /// Where what cascade control learned survives restarts.
    pub control_state_file: PathBuf,
    /// The alerts hook, when one is configured.
    pub alerts: Option<crate::alerts::AlertSettings>,
    /// Where changes made while running are kept (`overrides_file`).
    pub overrides_file: PathBuf,
    /// The Unix socket of `kasa-thermostat set` (`control_socket`).
    pub control_socket: PathBuf,
    /// The web page, when configured.
    pub web: Option<WebSettings>,
    /// The directory of the plug and sensor locks (`lock_dir`).
    pub lock_dir: PathBuf,
    /// The instance this config runs as (`run --instance NAME`), whose
    /// name gave the path defaults; `None`: the single install.
    pub instance: Option<crate::instance::Instance>,
    /// The MQTT broker, when configured.
    pub mqtt: Option<MqttSettings>,
    /// The file as written, with every default filled in.
    raw: RawConfig,
}

/// The `web` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSettings {
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// The file holding the password.
    pub password_file: PathBuf,
    /// Refuse every change with 403.
    pub read_only: bool,
    /// The demo: when `listen` is taken, take any free port instead, and
    /// print the page's address on stdout.
    pub(crate) demo: bool,
}

/// The accepted `log_level` values.
pub(crate) const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// `v` seconds within `[lo, hi]`, as a Duration; NaN and infinities refused.
fn seconds(key: &str, v: f64, lo: f64, hi: f64) -> Result<Duration, ConfigError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(invalid(
            key,
            format!(
                "{v} is out of range: allowed {} to {} seconds",
                fmt_num(lo),
                fmt_num(hi)
            ),
        ));
    }
    Ok(Duration::from_secs_f64(v))
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

impl Config {
    /// Reads, parses and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::fsutil::read_text_capped(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Config::from_json(&text).map_err(|e| e.in_file(path))
    }

    /// Parses and checks a config from JSON text.
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        Config::from_raw(parse_raw(text)?)
    }

    /// Checks every value of a raw config and builds the typed one; the
    /// first problem found is returned.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        // Each step checks its part and names the key at fault; the order
        // is the order in which a file's mistakes are reported.
        let u = raw.units;
        let (low_c, high_c) = limits(&raw)?;
        let cycle = seconds("cycle_s", raw.cycle_s, CYCLE_RANGE_S.0, CYCLE_RANGE_S.1)?;
        let rate_limit = seconds("rate_limit_s", raw.rate_limit_s, 0.0, 3600.0)?;
        let switchover_delay = seconds("switchover_delay_s", raw.switchover_delay_s, 0.0, 3600.0)?;
        let reconcile = seconds("reconcile_s", raw.reconcile_s, 1.0, DAY_S)?;
        let (alarm_low_c, alarm_high_c) = alarms(&raw)?;
        let sensor = sensor_settings(&raw.sensor, u)?;
        let (algorithm, chamber) = control::control_settings(
            &raw.control,
            raw.chamber_sensor.as_ref(),
            raw.sensor.backend,
            raw.sensor.id.as_deref(),
            u,
        )?;
        if raw.control.algorithm == AlgorithmName::Cascade
            && (raw.control_state_file.as_os_str().is_empty()
                || raw.control_state_file.file_name().is_none())
        {
            return Err(invalid("control_state_file", "must name a file".into()));
        }
        let mut raw = raw;
        raw.control = raw.control.filled(u);
        let (heater, cooler) = plugs(&raw)?;
        check_mode_has_plugs(raw.mode, heater.is_some(), cooler.is_some())?;
        let plug_timing = timing(&raw.plug_timing)?;
        let log_level = log_level(&raw.log_level)?;
        check_paths(&raw)?;
        check_credentials(&raw)?;
        let profile = profile(&raw)?;
        let alerts = alerts(&raw)?;
        let path_key = |key: &str, p: &Path| -> Result<PathBuf, ConfigError> {
            if p.as_os_str().is_empty() || p.file_name().is_none() {
                return Err(invalid(key, "must name a file".into()));
            }
            Ok(p.to_path_buf())
        };
        let overrides_file = path_key("overrides_file", &raw.overrides_file)?;
        let control_socket = path_key("control_socket", &raw.control_socket)?;
        // sun_path holds 108 bytes with its terminating NUL.
        if control_socket.as_os_str().len() > 107 {
            return Err(invalid(
                "control_socket",
                format!(
                    "{} is too long for a Unix socket (at most 107 bytes)",
                    control_socket.display()
                ),
            ));
        }
        let web = raw.web.as_ref().map(web_settings).transpose()?;
        let mqtt = raw.mqtt.as_ref().map(mqtt_settings).transpose()?;
        if let (Some(m), Some(r)) = (&mqtt, &mut raw.mqtt) {
            // Print the defaults as they came out on this machine.
            r.client_id = Some(m.client_id.clone());
            r.topic_prefix = Some(m.topic_prefix.clone());
        }
        let lock_dir = path_key("lock_dir", &raw.lock_dir)?;
        Ok(Config {
            chamber,
            algorithm,
            control_state_file: raw.control_state_file.clone(),
            mqtt,
            overrides_file,
            control_socket,
            web,
            lock_dir,
            instance: None,
            profile,
            profile_state_file: raw.profile_state_file.clone(),
            alerts,
            units: u,
            mode: raw.mode,
            low_c,
            high_c,
            cycle,
            rate_limit,
            switchover_delay,
            reconcile,
            alarm_low_c,
            alarm_high_c,
            sensor,
            heater,
            cooler,
            plug_timing,
            log_dir: raw.log_dir.clone(),
            log_level,
            state_file: raw.state_file.clone(),
            credentials: raw.credentials.clone(),
            raw,
        })
    }

    /// Notes for `check-config` about what the file means beyond its values
    /// (the limits a profile overrides).
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.profile.is_some() {
            notes.push(
                "low_limit and high_limit are ignored while the profile runs: its steps set the limits"
                    .to_string(),
            );
        }
        notes
    }

    /// The config as written, every default filled in: what `check-config`
    /// prints (it holds no password: that lives only in its file).
    pub(crate) fn effective(&self) -> &RawConfig {
        &self.raw
    }

    /// What the controller needs, in °C and `Duration`s.
    pub(crate) fn control_settings(&self) -> crate::control::Settings {
        let plugs = self
            .plugs()
            .into_iter()
            .map(|(role, p)| {
                let settings = crate::control::PlugSettings {
                    address: p.address(),
                    min_on: p.min_on,
                    min_off: p.min_off,
                    deadman: p.deadman,
                    fault_state: p.fault_state,
                    shutdown_state: p.shutdown_state,
                };
                (role, settings)
            })
            .collect();
        let worst = self
            .plug_timing
            .worst_case(&crate::msg::PlugCommand::on(Some(Duration::from_secs(1))));
        crate::control::Settings {
            mode: self.mode,
            limits: crate::control::Band {
                low_c: self.low_c,
                high_c: self.high_c,
            },
            alarm_low_c: self.alarm_low_c,
            alarm_high_c: self.alarm_high_c,
            rate_limit: self.rate_limit,
            switchover_delay: self.switchover_delay,
            reconcile: self.reconcile,
            stale_after: self.sensor.stale_after,
            lost_after: worst + Duration::from_secs(10),
            units: self.units,
            plugs,
            algorithm: self.algorithm,
        }
    }

    /// The configured plugs, heater first.
    pub(crate) fn plugs(&self) -> Vec<(Role, &PlugConfig)> {
        let mut out = Vec::new();
        if let Some(h) = &self.heater {
            out.push((Role::Heater, h));
        }
        if let Some(c) = &self.cooler {
            out.push((Role::Cooler, c));
        }
        out
    }

    /// Checks that `log_dir` and `state_file` are what they must be, where
    /// they exist already: a directory, and a file (or nothing yet) in a
    /// directory. The service does this before anything is switched, and
    /// `check-config` reports it too.
    pub(crate) fn check_paths(&self) -> Result<(), ConfigError> {
        let kind = |p: &Path| std::fs::metadata(p).ok().map(|m| m.file_type());
        if let Some(ft) = kind(&self.log_dir) {
            if !ft.is_dir() {
                return Err(invalid(
                    "log_dir",
                    format!(
                        "{} exists and is not a directory; point log_dir at a directory",
                        self.log_dir.display()
                    ),
                ));
            }
        }
        if let Some(ft) = kind(&self.state_file) {
            if !ft.is_file() {
                return Err(invalid(
                    "state_file",
                    format!(
                        "{} exists and is not a regular file (a directory?); state_file must name a file",
                        self.state_file.display()
                    ),
                ));
            }
        }
        if let Some(dir) = self
            .state_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            if let Some(ft) = kind(dir) {
                if !ft.is_dir() {
                    return Err(invalid(
                        "state_file",
                        format!("{} is not a directory", dir.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The largest password file read.
const MAX_PASSWORD_BYTES: u64 = 4096;

/// Reads a password file: its first line, without the line end. The file
/// must be a regular file of at most 4 KiB and not empty.
pub(crate) fn read_password(path: &Path) -> Result<String, ConfigError> {
    read_password_for("credentials.password_file", "the TP-Link password", path)
}

/// [`read_password`] for the file of `key`, which holds `what`.
pub(crate) fn read_password_for(key: &str, what: &str, path: &Path) -> Result<String, ConfigError> {
    let text = crate::fsutil::read_text_capped(path, MAX_PASSWORD_BYTES).map_err(|source| {
        ConfigError::Read {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(invalid(
            key,
            format!("{} is empty; it must hold {what}", path.display()),
        ));
    }
    Ok(line.to_string())
}

impl Config {
    /// The TP-Link account of the `credentials` section, with the password
    /// read from its file; `None` without the section (the devices' default
    /// credentials are tried).
    pub fn credentials(&self) -> Result<Option<crate::kasa::Credentials>, ConfigError> {
        match &self.credentials {
            None => Ok(None),
            Some(c) => {
                let password = read_password(&c.password_file)?;
                Ok(Some(crate::kasa::Credentials::new(
                    c.username.clone(),
                    password,
                )))
            }
        }
    }

    /// A warning when the password file may be read by other users.
    pub(crate) fn password_file_warning(&self) -> Option<String> {
        let c = self.credentials.as_ref()?;
        password_file_warning("credentials.password_file", &c.password_file)
    }
}

/// A warning when the password file of `key` may be read by other users.
pub(crate) fn password_file_warning(key: &str, path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{key} {} is readable by other users (mode {:o}); \
             `chmod 600` it and give it to the service user",
            path.display(),
            mode & 0o777
        )
    })
}

/// JSON text to the raw config: a UTF-8 byte-order mark is skipped, the top
/// level must be one object, and nothing may follow it.
pub(crate) fn parse_raw(text: &str) -> Result<RawConfig, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parse_err = |message: String| ConfigError::Parse {
        path: None,
        key: ".".into(),
        message,
    };
    match text.trim_start().chars().next() {
        Some('{') => {}
        Some(_) => {
            return Err(parse_err(
                "the config must be one JSON object: `{ \"mode\": ..., ... }`".into(),
            ))
        }
        None => {
            return Err(parse_err(
                "the file is empty; it must hold a JSON object".into(),
            ))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let raw: RawConfig =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ConfigError::Parse {
            path: None,
            key: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    de.end().map_err(|e| {
        parse_err(format!(
            "text after the JSON object ({e}); the file must hold exactly one object"
        ))
    })?;
    Ok(raw)
}

fn web_settings(w: &RawWeb) -> Result<WebSettings, ConfigError> {
    let listen = w.listen.parse().map_err(|_| {
        invalid(
            "web.listen",
            format!(
                "{:?} is not ADDRESS:PORT (like \"0.0.0.0:8080\" or \"[::]:8080\")",
                w.listen
            ),
        )
    })?;
    if w.password_file.as_os_str().is_empty() {
        return Err(invalid(
            "web.password_file",
            "must name the file that holds the page's password".into(),
        ));
    }
    Ok(WebSettings {
        listen,
        password_file: w.password_file.clone(),
        read_only: w.read_only,
        demo: false,
    })
}

/// The `mqtt` section, checked (see `crate::mqtt` for what it does).
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    /// The broker's host.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// The broker account.
    pub username: Option<String>,
    /// The file holding its password.
    pub password_file: Option<PathBuf>,
    /// The client id.
    pub client_id: String,
    /// The prefix of the service's own topics.
    pub topic_prefix: String,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// The state is republished at least this often.
    pub publish: Duration,
}

impl MqttSettings {
    /// The password from `password_file`, if one is configured.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        self.password_file
            .as_deref()
            .map(|p| read_password_for("mqtt.password_file", "the broker password", p))
            .transpose()
    }
}

/// This machine's host name reduced to what a client id and a topic level
/// may hold (`[A-Za-z0-9_-]`), `localhost` when it has none.
pub(crate) fn mqtt_hostname() -> String {
    let name: String = crate::alerts::hostname()
        .chars()
        .take_while(|c| *c != '.')
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name == "?" {
        "localhost".into()
    } else {
        name
    }
}

/// Checks a topic prefix: a topic name of its own without wildcards, never
/// empty or starting or ending with `/`.
fn check_topic_prefix(key: &str, p: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| invalid(key, format!("{p:?} {why}"));
    if p.is_empty() {
        return Err(bad(
            "is empty; it must be a topic like \"kasa-thermostat/pi\"",
        ));
    }
    if p.len() > 200 {
        return Err(bad("is longer than 200 bytes"));
    }
    if p.contains(['+', '#']) {
        return Err(bad("holds a wildcard (+ or #); a prefix is a plain topic"));
    }
    if p.starts_with('/') || p.ends_with('/') || p.contains("//") {
        return Err(bad("has an empty level (a leading, trailing or double /)"));
    }
    if p.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("holds a space or a control character"));
    }
    Ok(p.to_string())
}

fn mqtt_settings(m: &RawMqtt) -> Result<MqttSettings, ConfigError> {
    if !host_parses(&m.host) {
        return Err(invalid(
            "mqtt.host",
            format!("{:?} is not an IP address or host name", m.host),
        ));
    }
    if m.port == 0 {
        return Err(invalid(
            "mqtt.port",
            "0 is not a TCP port (leave it out for 1883)".into(),
        ));
    }
    if let Some(u) = &m.username {
        if u.is_empty() || u.len() > 256 {
            return Err(invalid(
                "mqtt.username",
                "must be the broker account's name (1 to 256 bytes), or left out".into(),
            ));
        }
    }
    match (&m.username, &m.password_file) {
        (None, Some(_)) => {
            return Err(invalid(
                "mqtt.password_file",
                "needs mqtt.username (MQTT 3.1.1 sends no password without a user name)".into(),
            ))
        }
        (_, Some(p)) if p.as_os_str().is_empty() => {
            return Err(invalid(
                "mqtt.password_file",
                "must name the file that holds the broker password".into(),
            ))
        }
        _ => {}
    }
    let host = mqtt_hostname();
    let client_id = m
        .client_id
        .clone()
        .unwrap_or_else(|| format!("kasa-thermostat-{host}"));
    let id_ok = !client_id.is_empty()
        && client_id.len() <= 128
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        return Err(invalid(
            "mqtt.client_id",
            format!("{client_id:?} is not a client id: 1 to 128 of A-Z a-z 0-9 - _ ."),
        ));
    }
    let topic = m
        .topic_prefix
        .clone()
        .unwrap_or_else(|| format!("kasa-thermostat/{host}"));
    let topic_prefix = check_topic_prefix("mqtt.topic_prefix", &topic)?;
    let discovery_prefix = check_topic_prefix("mqtt.discovery_prefix", &m.discovery_prefix)?;
    let publish = seconds("mqtt.publish_s", m.publish_s, 1.0, 3600.0)?;
    Ok(MqttSettings {
        host: m.host.clone(),
        port: m.port,
        username: m.username.clone(),
        password_file: m.password_file.clone(),
        client_id,
        topic_prefix,
        discovery_prefix,
        publish,
    })
}

/// `v` in `u` as °C, within what a DS18B20 can read.
fn temperature(u: Units, key: &str, v: f64) -> Result<f64, ConfigError> {
    let c = u.to_c(v);
    if !v.is_finite() || !(-55.0..=125.0).contains(&c) {
        return Err(invalid(
            key,
            format!(
                "{v} is not a temperature a DS18B20 can read ({} to {} {})",
                fmt_num(u.from_c(-55.0)),
                fmt_num(u.from_c(125.0)),
                u.symbol()
            ),
        ));
    }
    Ok(c)
}

/// `low_limit` and `high_limit`, °C, the low one below the high one.
fn limits(raw: &RawConfig) -> Result<(f64, f64), ConfigError> {
    let low_c = temperature(raw.units, "low_limit", raw.low_limit)?;
    let high_c = temperature(raw.units, "high_limit", raw.high_limit)?;
    if raw.low_limit >= raw.high_limit {
        return Err(invalid(
            "low_limit",
            format!(
                "{} must be below high_limit ({})",
                raw.low_limit, raw.high_limit
            ),
        ));
    }
    Ok((low_c, high_c))
}

/// `alarm_low` and `alarm_high`, °C, each optional, the low one below the
/// high one.
fn alarms(raw: &RawConfig) -> Result<(Option<f64>, Option<f64>), ConfigError> {
    let u = raw.units;
    let low = raw
        .alarm_low
        .map(|v| temperature(u, "alarm_low", v))
        .transpose()?;
    let high = raw
        .alarm_high
        .map(|v| temperature(u, "alarm_high", v))
        .transpose()?;
    if let (Some(lo), Some(hi)) = (raw.alarm_low, raw.alarm_high) {
        if lo >= hi {
            return Err(invalid(
                "alarm_low",
                format!("{lo} must be below alarm_high ({hi})"),
            ));
        }
    }
    Ok((low, high))
}

/// The heater and the cooler, each optional; two are never the same plug
/// and never both on at a fault or a shutdown.
fn plugs(raw: &RawConfig) -> Result<(Option<PlugConfig>, Option<PlugConfig>), ConfigError> {
    let heater = raw
        .heater
        .as_ref()
        .map(|p| plug_config("heater", Role::Heater, p, raw.cycle_s))
        .transpose()?;
    let cooler = raw
        .cooler
        .as_ref()
        .map(|p| plug_config("cooler", Role::Cooler, p, raw.cycle_s))
        .transpose()?;
    if let (Some(h), Some(c)) = (&heater, &cooler) {
        let (ht, ct) = (&h.target, &c.target);
        if ht.host == ct.host && ht.port() == ct.port() && ht.outlet == ct.outlet {
            return Err(invalid(
                "cooler.host",
                format!(
                    "{} is the heater's plug too; heater and cooler need different plugs or outlets",
                    ct.address()
                ),
            ));
        }
        for (key, both) in [
            ("fault_state", h.fault_state && c.fault_state),
            ("shutdown_state", h.shutdown_state && c.shutdown_state),
        ] {
            if both {
                return Err(invalid(
                    &format!("cooler.{key}"),
                    "\"on\" for both heater and cooler would run them together; at most one may be on".to_string(),
                ));
            }
        }
    }
    Ok((heater, cooler))
}

/// The mode's plugs are configured.
fn check_mode_has_plugs(mode: Mode, heater: bool, cooler: bool) -> Result<(), ConfigError> {
    let needs: &[(&str, bool)] = match mode {
        Mode::Off => &[],
        Mode::Heat => &[("heater", heater)],
        Mode::Cool => &[("cooler", cooler)],
        Mode::HeatCool => &[("heater", heater), ("cooler", cooler)],
    };
    for (plug, present) in needs {
        if !present {
            return Err(invalid(
                "mode",
                format!("\"{mode}\" needs a `{plug}` plug, and none is configured"),
            ));
        }
    }
    Ok(())
}

/// `log_level`, one of [`LOG_LEVELS`].
fn log_level(name: &str) -> Result<LevelFilter, ConfigError> {
    Ok(match name {
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        other => {
            return Err(invalid(
                "log_level",
                format!("{other:?} is not one of {}", LOG_LEVELS.join(", ")),
            ))
        }
    })
}

/// `log_dir` names a directory and `state_file` a file.
fn check_paths(raw: &RawConfig) -> Result<(), ConfigError> {
    if raw.log_dir.as_os_str().is_empty() {
        return Err(invalid("log_dir", "must name a directory".into()));
    }
    if raw.state_file.as_os_str().is_empty() || raw.state_file.file_name().is_none() {
        return Err(invalid("state_file", "must name a file".into()));
    }
    Ok(())
}

/// `credentials`, when given, name an account and a password file.
fn check_credentials(raw: &RawConfig) -> Result<(), ConfigError> {
    if let Some(c) = &raw.credentials {
        if c.username.trim().is_empty() {
            return Err(invalid(
                "credentials.username",
                "must be the TP-Link account's e-mail address".into(),
            ));
        }
        if c.password_file.as_os_str().is_empty() {
            return Err(invalid(
                "credentials.password_file",
                "must name the file that holds the password".into(),
            ));
        }
    }
    Ok(())
}

/// `profile`, checked by [`crate::profile::Profile::from_raw`], and its
/// `profile_state_file`.
fn profile(raw: &RawConfig) -> Result<Option<crate::profile::Profile>, ConfigError> {
    let profile = raw
        .profile
        .as_ref()
        .map(|p| crate::profile::Profile::from_raw(p, raw.units))
        .transpose()
        .map_err(|e| match e {
            crate::profile::ProfileError::Invalid { key, message } => ConfigError::Invalid {
                path: None,
                key,
                message,
            },
            other => invalid("profile", other.to_string()),
        })?;
    if profile.is_some()
        && (raw.profile_state_file.as_os_str().is_empty()
            || raw.profile_state_file.file_name().is_none())
    {
        return Err(invalid("profile_state_file", "must name a file".into()));
    }
    Ok(profile)
}

/// `alerts`, checked by [`crate::alerts::AlertSettings::from_raw`].
fn alerts(raw: &RawConfig) -> Result<Option<crate::alerts::AlertSettings>, ConfigError> {
    raw.alerts
        .as_ref()
        .map(crate::alerts::AlertSettings::from_raw)
        .transpose()
        .map_err(|e| ConfigError::Invalid {
            path: None,
            message: e.message(),
            key: e.key,
        })
}

fn sensor_settings(s: &RawSensor, u: Units) -> Result<SensorSettings, ConfigError> {
    if !(9..=12).contains(&s.resolution_bits) {
        return Err(invalid(
            "sensor.resolution_bits",
            format!("{} is not allowed: 9, 10, 11 or 12", s.resolution_bits),
        ));
    }
    let conversion = crate::sensor::conversion_time_us(s.resolution_bits) as f64 / 1e6;
    let interval =
        seconds("sensor.interval_s", s.interval_s, conversion, 3600.0).map_err(|_| {
            invalid(
                "sensor.interval_s",
                format!(
                "{} is out of range: allowed {} (the conversion time at {} bits) to 3600 seconds",
                s.interval_s,
                fmt_num(conversion),
                s.resolution_bits
            ),
            )
        })?;
    let stale_after = seconds(
        "sensor.stale_after_s",
        s.stale_after_s,
        2.0 * s.interval_s,
        DAY_S,
    )
    .map_err(|_| {
        invalid(
            "sensor.stale_after_s",
            format!(
                "{} is out of range: allowed 2 × sensor.interval_s ({}) to 86400 seconds",
                s.stale_after_s,
                fmt_num(2.0 * s.interval_s)
            ),
        )
    })?;
    let offset_c = u.delta_to_c(s.offset);
    if !s.offset.is_finite() || offset_c.abs() > 10.0 {
        return Err(invalid(
            "sensor.offset",
            format!(
                "{} is not a plausible calibration (at most ±{} {})",
                s.offset,
                fmt_num(10.0 / u.delta_to_c(1.0)),
                u.symbol()
            ),
        ));
    }
    let max_step_c = u.delta_to_c(s.max_step);
    if !s.max_step.is_finite() || s.max_step <= 0.0 || max_step_c > 180.0 {
        return Err(invalid(
            "sensor.max_step",
            format!(
                "{} is out of range: above 0, at most {} {}",
                s.max_step,
                fmt_num(180.0 / u.delta_to_c(1.0)),
                u.symbol()
            ),
        ));
    }
    if let Some(id) = &s.id {
        if id.trim().is_empty() || id.contains('/') || id.len() > 64 {
            return Err(invalid(
                "sensor.id",
                format!("{id:?} is not a sensor id (like \"28-0316a2797aff\")"),
            ));
        }
    }
    if s.backend == Backend::W1 && s.w1_root.as_os_str().is_empty() {
        return Err(invalid("sensor.w1_root", "must name a directory".into()));
    }
    if s.backend == Backend::Hal && s.gpio_chip.as_os_str().is_empty() {
        return Err(invalid(
            "sensor.gpio_chip",
            "must name a GPIO character device".into(),
        ));
    }
    Ok(SensorSettings {
        options: SensorOptions {
            backend: s.backend,
            id: s.id.clone(),
            w1_root: s.w1_root.clone(),
            gpio_chip: s.gpio_chip.clone(),
            gpio_line: s.gpio_line,
            resolution_bits: s.resolution_bits,
        },
        interval,
        offset_c,
        max_step_c,
        stale_after,
    })
}

fn plug_config(
    key: &str,
    role: Role,
    p: &RawPlug,
    cycle_s: f64,
) -> Result<PlugConfig, ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    if !host_parses(&p.host) {
        return Err(invalid(
            &k("host"),
            format!("{:?} is not an IP address or host name", p.host),
        ));
    }
    let protocol: TransportKind = p
        .protocol
        .parse()
        .map_err(|e: String| invalid(&k("protocol"), e))?;
    if p.port == Some(0) {
        return Err(invalid(
            &k("port"),
            "0 is not a TCP port (leave it out for the protocol's default: 9999 legacy, 80 otherwise)"
                .into(),
        ));
    }
    if p.child_id.is_some() && p.outlet.is_some() {
        return Err(invalid(
            &k("outlet"),
            "give either child_id or outlet for a power strip outlet, not both".into(),
        ));
    }
    if let Some(id) = &p.child_id {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(invalid(
                &k("child_id"),
                format!("{id:?} is not a child id (the deviceId plus a two-digit index, or the index alone; `kasa-thermostat plug HOST sysinfo` lists them)"),
            ));
        }
    }
    if let Some(n) = p.outlet {
        if n > 15 {
            return Err(invalid(
                &k("outlet"),
                format!("{n} is not an outlet index (0 to 15; 0 is the first outlet)"),
            ));
        }
    }
    let min_on = seconds(&k("min_on_s"), p.min_on_s, 0.0, DAY_S)?;
    let min_off = seconds(&k("min_off_s"), p.min_off_s, 0.0, DAY_S)?;
    let deadman = if p.deadman_s == 0.0 {
        None
    } else {
        let lo = 3.0 * cycle_s;
        if !p.deadman_s.is_finite() || p.deadman_s < 0.0 {
            return Err(invalid(
                &k("deadman_s"),
                format!("{} must be 0 (off) or a number of seconds", p.deadman_s),
            ));
        }
        if p.deadman_s < lo {
            return Err(invalid(
                &k("deadman_s"),
                format!(
                    "{} is too short: it must be 0 (off) or at least 3 control cycles ({} s) so it is re-armed in time",
                    p.deadman_s,
                    fmt_num(lo)
                ),
            ));
        }
        if p.deadman_s > DAY_S {
            return Err(invalid(
                &k("deadman_s"),
                format!(
                    "{} is longer than a day (86400 s); a dead-man that late protects nothing",
                    p.deadman_s
                ),
            ));
        }
        Some(Duration::from_secs_f64(p.deadman_s))
    };
    let outlet = p
        .child_id
        .clone()
        .map(Outlet::Id)
        .or(p.outlet.map(Outlet::Index));
    Ok(PlugConfig {
        target: PlugTarget {
            role,
            host: p.host.clone(),
            port: p.port,
            outlet,
            transport: protocol,
        },
        min_on,
        min_off,
        deadman,
        fault_state: p.fault_state.is_on(),
        shutdown_state: p.shutdown_state.is_on(),
    })
}

fn timing(t: &RawPlugTiming) -> Result<Timing, ConfigError> {
    let connect = seconds("plug_timing.connect_s", t.connect_s, 0.01, 60.0)?;
    let before = seconds("plug_timing.before_s", t.before_s, 0.01, 60.0)?;
    let after = seconds("plug_timing.after_s", t.after_s, 0.01, 60.0)?;
    let spacing = seconds("plug_timing.spacing_s", t.spacing_s, 0.0, 60.0)?;
    if t.retry_sleeps_s.is_empty() || t.retry_sleeps_s.len() > 10 {
        return Err(invalid(
            "plug_timing.retry_sleeps_s",
            format!(
                "{:?} must list 1 to 10 sleeps (one per attempt)",
                t.retry_sleeps_s
            ),
        ));
    }
    let retry_sleeps = t
        .retry_sleeps_s
        .iter()
        .enumerate()
        .map(|(i, v)| seconds(&format!("plug_timing.retry_sleeps_s[{i}]"), *v, 0.0, 60.0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Timing {
        connect,
        before,
        after,
        spacing,
        retry_sleeps,
    })
}

#[cfg(test)]
mod tests;
