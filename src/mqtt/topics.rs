//! What is published and what is taken, as pure functions: the topic
//! names, Home Assistant's discovery configs, the `<prefix>/state` payload
//! (from the state file the control thread writes anyway) and the parsing
//! of `<prefix>/set/...` commands. No I/O here, so all of it is tested in
//! microseconds.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::msg::{Command, Role};
use crate::outputs::StateFile;
use crate::units::Units;

/// What discovery needs to know of the service (fixed at start).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// `topic_prefix`.
    pub prefix: String,
    /// `discovery_prefix`.
    pub discovery_prefix: String,
    /// Home Assistant's `node_id`: the client id, reduced to `[A-Za-z0-9_-]`.
    pub node_id: String,
    /// The device's name in Home Assistant.
    pub device_name: String,
    /// The configured plugs, heater first.
    pub roles: Vec<Role>,
    /// The config's units.
    pub units: Units,
    /// Whether a profile is configured (its step sensor is announced).
    pub has_profile: bool,
}

/// The `availability` payloads (Home Assistant's defaults).
pub const ONLINE: &str = "online";
/// The last will's payload.
pub const OFFLINE: &str = "offline";

/// The temperature sensor's range in °C, which is also what the config
/// accepts for limits: HA's `min_temp`/`max_temp`.
const BOUNDS_C: (f64, f64) = (-55.0, 125.0);

impl Node {
    /// `<prefix>/availability`.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.prefix)
    }

    /// `<prefix>/state`.
    pub fn state(&self) -> String {
        format!("{}/state", self.prefix)
    }

    /// `<prefix>/set/<what>`.
    pub fn set(&self, what: &str) -> String {
        format!("{}/set/{what}", self.prefix)
    }

    /// `<discovery_prefix>/status`, where Home Assistant says `online`.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }

    /// What the client subscribes to.
    pub fn subscriptions(&self) -> Vec<String> {
        vec![self.set("+"), self.ha_status()]
    }

    /// The climate modes the configured plugs allow.
    pub fn modes(&self) -> Vec<&'static str> {
        let heater = self.roles.contains(&Role::Heater);
        let cooler = self.roles.contains(&Role::Cooler);
        let mut m = vec!["off"];
        if heater {
            m.push("heat");
        }
        if cooler {
            m.push("cool");
        }
        if heater && cooler {
            m.push("heat_cool");
        }
        m
    }

    fn device(&self) -> Value {
        json!({
            "identifiers": [self.node_id],
            "name": self.device_name,
            "model": "kasa-thermostat",
            "manufacturer": "kasa-thermostat",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    fn topic(&self, component: &str, object_id: &str) -> String {
        format!(
            "{}/{component}/{}/{object_id}/config",
            self.discovery_prefix, self.node_id
        )
    }

    /// The keys every entity has: name, ids, device, availability.
    fn common(&self, object_id: &str, name: &str) -> serde_json::Map<String, Value> {
        let v = json!({
            "name": name,
            "unique_id": format!("{}_{object_id}", self.node_id),
            "object_id": format!("{}_{object_id}", self.node_id),
            "device": self.device(),
            "availability_topic": self.availability(),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
        });
        match v {
            Value::Object(m) => m,
            _ => unreachable!("json! of an object"),
        }
    }

    fn climate(&self) -> Value {
        let u = self.units;
        let state = self.state();
        let mut m = self.common("thermostat", "Thermostat");
        let more = json!({
            "modes": self.modes(),
            "mode_command_topic": self.set("mode"),
            "mode_state_topic": state,
            "mode_state_template": "{{ value_json.mode }}",
            "current_temperature_topic": state,
            "current_temperature_template": "{{ value_json.temperature }}",
            "temperature_command_topic": self.set("target"),
            "temperature_state_topic": state,
            "temperature_state_template": "{{ value_json.target }}",
            "temperature_low_command_topic": self.set("low"),
            "temperature_low_state_topic": state,
            "temperature_low_state_template": "{{ value_json.low }}",
            "temperature_high_command_topic": self.set("high"),
            "temperature_high_state_topic": state,
            "temperature_high_state_template": "{{ value_json.high }}",
            "action_topic": state,
            "action_template": "{{ value_json.action }}",
            "min_temp": round2(u.from_c(BOUNDS_C.0)),
            "max_temp": round2(u.from_c(BOUNDS_C.1)),
            "temperature_unit": u.as_str(),
            "precision": 0.1,
            "temp_step": 0.1,
            "optimistic": false,
            "retain": false,
            "qos": 0,
        });
        if let Value::Object(o) = more {
            m.extend(o);
        }
        Value::Object(m)
    }

    fn sensor(&self, object_id: &str, name: &str, template: &str, temperature: bool) -> Value {
        let mut m = self.common(object_id, name);
        m.insert("state_topic".into(), json!(self.state()));
        m.insert("value_template".into(), json!(template));
        if temperature {
            m.insert("device_class".into(), json!("temperature"));
            m.insert("state_class".into(), json!("measurement"));
            m.insert("unit_of_measurement".into(), json!(self.units.symbol()));
            m.insert("suggested_display_precision".into(), json!(1));
        }
        Value::Object(m)
    }

    /// Every discovery config: `(topic, payload)`, to be published
    /// retained. `chamber` adds the chamber sensors (published once the
    /// state carries chamber readings).
    pub fn discovery(&self, chamber: bool) -> Vec<(String, String)> {
        let mut out = vec![
            (self.topic("climate", "thermostat"), self.climate()),
            (
                self.topic("sensor", "temperature"),
                self.sensor(
                    "temperature",
                    "Temperature",
                    "{{ value_json.temperature }}",
                    true,
                ),
            ),
        ];
        if chamber {
            out.push((
                self.topic("sensor", "chamber_temperature"),
                self.sensor(
                    "chamber_temperature",
                    "Chamber temperature",
                    "{{ value_json.chamber_temperature }}",
                    true,
                ),
            ));
            out.push((
                self.topic("sensor", "chamber_setpoint"),
                self.sensor(
                    "chamber_setpoint",
                    "Chamber setpoint",
                    "{{ value_json.chamber_setpoint }}",
                    true,
                ),
            ));
        }
        if self.has_profile {
            out.push((
                self.topic("sensor", "profile_step"),
                self.sensor(
                    "profile_step",
                    "Profile step",
                    "{{ value_json.profile_step }}",
                    false,
                ),
            ));
        }
        for role in &self.roles {
            let r = role.as_str();
            let title = capitalised(r);
            let mut state = self.common(&format!("{r}_state"), &format!("{title} plug"));
            state.insert("state_topic".into(), json!(self.state()));
            state.insert(
                "value_template".into(),
                json!(format!("{{{{ value_json.plugs.{r}.state }}}}")),
            );
            state.insert("device_class".into(), json!("enum"));
            state.insert("options".into(), json!(["on", "off", "unknown"]));
            out.push((
                self.topic("sensor", &format!("{r}_state")),
                Value::Object(state),
            ));
            let mut armed =
                self.common(&format!("{r}_deadman"), &format!("{title} dead-man armed"));
            armed.insert("state_topic".into(), json!(self.state()));
            armed.insert(
                "value_template".into(),
                json!(format!(
                    "{{{{ 'ON' if value_json.plugs.{r}.deadman_armed else 'OFF' }}}}"
                )),
            );
            armed.insert("payload_on".into(), json!("ON"));
            armed.insert("payload_off".into(), json!("OFF"));
            armed.insert("entity_category".into(), json!("diagnostic"));
            out.push((
                self.topic("binary_sensor", &format!("{r}_deadman")),
                Value::Object(armed),
            ));
        }
        out.into_iter().map(|(t, v)| (t, v.to_string())).collect()
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The device's name in Home Assistant: `kasa-thermostat HOST`, and the
/// instance's name after it when there is one (`kasa-thermostat pi keg`), so
/// two chambers on one Pi are told apart by more than their node ids.
pub fn device_name(host: &str, instance: Option<&str>) -> String {
    match instance {
        Some(name) => format!("kasa-thermostat {host} {name}"),
        None => format!("kasa-thermostat {host}"),
    }
}

/// Home Assistant's `node_id` from the client id: `[A-Za-z0-9_-]` only.
pub fn node_id(client_id: &str) -> String {
    client_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One plug in `<prefix>/state`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlugPayload {
    /// `on`, `off` or `unknown`.
    pub state: String,
    /// The dead-man: `off`, `unknown`, `clear`, `armed` or `unsupported`.
    pub deadman: String,
    /// Whether the dead-man countdown is armed.
    pub deadman_armed: bool,
}

/// `<prefix>/state`: what Home Assistant's templates read. It leaves out
/// what changes every cycle without meaning anything (ages, timestamps), so
/// an unchanged payload is not republished before `publish_s`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatePayload {
    /// `C` or `F`.
    pub units: &'static str,
    /// The product temperature, rounded to 0.01.
    pub temperature: Option<f64>,
    /// The chamber temperature (cascade control), when the state has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chamber_temperature: Option<f64>,
    /// The chamber setpoint (cascade control), when the state has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chamber_setpoint: Option<f64>,
    /// `off`, `heat`, `cool` or `heat_cool`.
    pub mode: String,
    /// The lower limit in force.
    pub low: f64,
    /// The upper limit in force.
    pub high: f64,
    /// The middle of the band (HA's single target).
    pub target: f64,
    /// `heating`, `cooling`, `idle` or `off` (HA's `hvac_action`).
    pub action: &'static str,
    /// Each plug by role.
    pub plugs: BTreeMap<String, PlugPayload>,
    /// The profile's step (`2/4 hold`, `waiting`, `ended`), when one runs.
    pub profile_step: Option<String>,
    /// `low` or `high` when the temperature is past an alarm limit.
    pub alarm: Option<String>,
    /// Everything that needs a person: `alarm_low`, `alarm_high`,
    /// `sensor_stale`, `sensor_fault`.
    pub alarms: Vec<String>,
    /// No valid reading for `sensor.stale_after_s`.
    pub sensor_stale: bool,
    /// The service is stopping.
    pub shutting_down: bool,
}

fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl StatePayload {
    /// The payload of a state file. `extra` is the same file as loose JSON,
    /// where the chamber fields are found once cascade control writes them
    /// (`chamber_temperature`, `chamber_setpoint`).
    pub fn of(s: &StateFile, extra: Option<&Value>) -> StatePayload {
        let plug_on = |role: &str| s.plugs.get(role).is_some_and(|p| p.state == "on");
        let action = if s.mode.as_str() == "off" {
            "off"
        } else if plug_on("heater") {
            "heating"
        } else if plug_on("cooler") {
            "cooling"
        } else {
            "idle"
        };
        let plugs = s
            .plugs
            .iter()
            .map(|(role, p)| {
                (
                    role.clone(),
                    PlugPayload {
                        state: p.state.clone(),
                        deadman: p.deadman.clone(),
                        deadman_armed: p.deadman == "armed",
                    },
                )
            })
            .collect();
        let profile_step = s.profile.as_ref().map(|p| match p.step {
            Some(i) => format!("{}/{} {}", i + 1, p.steps, p.phase),
            None => p.phase.clone(),
        });
        let mut alarms = Vec::new();
        if let Some(a) = &s.alarm {
            alarms.push(format!("alarm_{a}"));
        }
        if s.sensor_stale {
            alarms.push("sensor_stale".into());
        }
        if s.sensor_fault.is_some() {
            alarms.push("sensor_fault".into());
        }
        let number = |key: &str| {
            extra
                .and_then(|v| v.get(key))
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite())
                .map(r2)
        };
        StatePayload {
            units: s.units.as_str(),
            temperature: s.temperature.map(r2),
            chamber_temperature: number("chamber_temperature"),
            chamber_setpoint: number("chamber_setpoint"),
            mode: s.mode.as_str().to_string(),
            low: r2(s.low_limit),
            high: r2(s.high_limit),
            target: r2((s.low_limit + s.high_limit) / 2.0),
            action,
            plugs,
            profile_step,
            alarm: s.alarm.clone(),
            alarms,
            sensor_stale: s.sensor_stale,
            shutting_down: s.shutting_down,
        }
    }

    /// Whether the chamber sensors are to be announced.
    pub fn has_chamber(&self) -> bool {
        self.chamber_temperature.is_some() || self.chamber_setpoint.is_some()
    }

    /// The JSON text published.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// What a message on a subscribed topic asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A change, for the command path.
    Command(Command),
    /// A `set` message that cannot be a command: the reason, logged.
    Refused(String),
    /// Home Assistant (re)started: announce everything again.
    HaOnline,
    /// Nothing for us (another status, a retained status, a foreign topic).
    Ignore,
}

/// The largest command payload taken (a mode or a number).
const MAX_COMMAND: usize = 64;

impl Node {
    /// What `payload` on `topic` asks for. `retained` messages on the
    /// status topic are old news (a birth message kept by the broker).
    pub fn incoming(&self, topic: &str, payload: &[u8], retained: bool) -> Incoming {
        if topic == self.ha_status() {
            return if !retained && payload == ONLINE.as_bytes() {
                Incoming::HaOnline
            } else {
                Incoming::Ignore
            };
        }
        let Some(what) = topic
            .strip_prefix(&self.prefix)
            .and_then(|t| t.strip_prefix("/set/"))
        else {
            return Incoming::Ignore;
        };
        match parse_set(what, payload, &self.modes()) {
            Ok(c) => Incoming::Command(c),
            Err(e) => Incoming::Refused(format!("{topic}: {e}")),
        }
    }
}

/// A `set/<what>` payload as a command; the error says what was wrong.
/// Range checks (limits, band width, a mode's plug) stay with the control
/// thread, which applies the config's own rules.
pub fn parse_set(what: &str, payload: &[u8], modes: &[&str]) -> Result<Command, String> {
    if payload.len() > MAX_COMMAND {
        return Err(format!(
            "a payload of {} bytes; at most {MAX_COMMAND}",
            payload.len()
        ));
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| "the payload is not UTF-8 text".to_string())?
        .trim();
    let number = || -> Result<f64, String> {
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!(
                "{text:?} is not a temperature (a number like 19.5)"
            )),
        }
    };
    let mut c = Command::default();
    match what {
        "mode" => {
            if !modes.contains(&text) {
                return Err(format!(
                    "{text:?} is not a mode of this thermostat ({})",
                    modes.join(", ")
                ));
            }
            c.mode = Some(text.to_string());
        }
        "low" => c.low = Some(number()?),
        "high" => c.high = Some(number()?),
        "target" => c.target = Some(number()?),
        other => {
            return Err(format!(
                "set/{other} is not a command (set/mode, set/low, set/high, set/target)"
            ))
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(roles: Vec<Role>) -> Node {
        Node {
            prefix: "kt/pi".into(),
            discovery_prefix: "homeassistant".into(),
            node_id: "kasa-thermostat-pi".into(),
            device_name: "kasa-thermostat pi".into(),
            roles,
            units: Units::C,
            has_profile: false,
        }
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn modes_follow_the_plugs() {
        assert_eq!(node(vec![]).modes(), ["off"]);
        assert_eq!(node(vec![Role::Heater]).modes(), ["off", "heat"]);
        assert_eq!(node(vec![Role::Cooler]).modes(), ["off", "cool"]);
        assert_eq!(
            node(vec![Role::Heater, Role::Cooler]).modes(),
            ["off", "heat", "cool", "heat_cool"]
        );
    }

    #[test]
    fn climate_discovery_names_every_topic_and_bound() {
        let n = node(vec![Role::Heater, Role::Cooler]);
        let all = n.discovery(false);
        let (topic, payload) = &all[0];
        assert_eq!(
            topic,
            "homeassistant/climate/kasa-thermostat-pi/thermostat/config"
        );
        let c = parse(payload);
        assert_eq!(c["unique_id"], "kasa-thermostat-pi_thermostat");
        assert_eq!(c["mode_command_topic"], "kt/pi/set/mode");
        assert_eq!(c["temperature_low_command_topic"], "kt/pi/set/low");
        assert_eq!(c["temperature_high_command_topic"], "kt/pi/set/high");
        assert_eq!(c["temperature_command_topic"], "kt/pi/set/target");
        assert_eq!(c["mode_state_topic"], "kt/pi/state");
        assert_eq!(c["action_template"], "{{ value_json.action }}");
        assert_eq!(c["availability_topic"], "kt/pi/availability");
        assert_eq!(c["temperature_unit"], "C");
        assert_eq!(c["precision"], 0.1);
        assert_eq!(
            (c["min_temp"].as_f64(), c["max_temp"].as_f64()),
            (Some(-55.0), Some(125.0))
        );
        assert_eq!(c["device"]["model"], "kasa-thermostat");
        assert_eq!(c["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(c["modes"], json!(["off", "heat", "cool", "heat_cool"]));
    }

    #[test]
    fn fahrenheit_bounds_and_unit() {
        let mut n = node(vec![Role::Heater]);
        n.units = Units::F;
        let c = parse(&n.discovery(false)[0].1);
        assert_eq!(c["temperature_unit"], "F");
        assert_eq!(
            (c["min_temp"].as_f64(), c["max_temp"].as_f64()),
            (Some(-67.0), Some(257.0))
        );
    }

    #[test]
    fn each_plug_gets_a_state_and_a_deadman_entity_with_unique_ids() {
        let n = node(vec![Role::Heater, Role::Cooler]);
        let all = n.discovery(false);
        let topics: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
        assert!(topics.contains(&"homeassistant/sensor/kasa-thermostat-pi/heater_state/config"));
        assert!(topics
            .contains(&"homeassistant/binary_sensor/kasa-thermostat-pi/cooler_deadman/config"));
        assert!(!topics.iter().any(|t| t.contains("chamber")));
        assert!(!topics.iter().any(|t| t.contains("profile")));
        let mut ids: Vec<String> = all
            .iter()
            .map(|(_, p)| parse(p)["unique_id"].as_str().unwrap().to_string())
            .collect();
        let n_ids = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n_ids, "unique ids repeat");
        let heater = parse(
            &all.iter()
                .find(|(t, _)| t.contains("heater_state"))
                .unwrap()
                .1,
        );
        assert_eq!(heater["options"], json!(["on", "off", "unknown"]));
        assert_eq!(
            heater["value_template"],
            "{{ value_json.plugs.heater.state }}"
        );
    }

    #[test]
    fn chamber_and_profile_sensors_only_when_there_is_something_to_show() {
        let mut n = node(vec![Role::Heater]);
        n.has_profile = true;
        let topics: Vec<String> = n.discovery(true).into_iter().map(|(t, _)| t).collect();
        for want in ["chamber_temperature", "chamber_setpoint", "profile_step"] {
            assert!(
                topics
                    .iter()
                    .any(|t| t.ends_with(&format!("/{want}/config"))),
                "{want} missing"
            );
        }
    }

    fn state_file(mode: &str, heater: &str, deadman: &str) -> StateFile {
        let text = format!(
            r#"{{"updated":"2026-01-01T00:00:00.000Z","updated_unix":1.0,"pid":1,"units":"C",
            "mode":"{mode}","low_limit":18.0,"high_limit":20.5,"temperature":19.1234,
            "reading_age_s":1.0,"sensor_stale":false,"sensor_fault":null,"alarm":"low",
            "reason":"r","shutting_down":false,
            "plugs":{{"heater":{{"host":"h:1","state":"{heater}","verified":null,"desired":null,
            "switching":null,"state_for_s":null,"deadman":"{deadman}",
            "deadman_remaining_s":null,"last_error":null}}}}}}"#
        );
        StateFile::parse(&text).unwrap()
    }

    #[test]
    fn state_payload_has_action_target_plugs_and_alarms() {
        let p = StatePayload::of(&state_file("heat", "on", "armed"), None);
        assert_eq!(p.action, "heating");
        assert_eq!((p.low, p.high, p.target), (18.0, 20.5, 19.25));
        assert_eq!(p.temperature, Some(19.12));
        assert!(p.plugs["heater"].deadman_armed);
        assert_eq!(p.alarms, ["alarm_low"]);
        assert!(!p.has_chamber());
        let v = parse(&p.to_json());
        assert!(v.get("chamber_temperature").is_none());
        assert_eq!(v["plugs"]["heater"]["state"], "on");
        assert_eq!(
            StatePayload::of(&state_file("heat", "off", "clear"), None).action,
            "idle"
        );
        assert_eq!(
            StatePayload::of(&state_file("off", "unknown", "unknown"), None).action,
            "off"
        );
    }

    #[test]
    fn chamber_fields_are_taken_when_the_state_has_them() {
        let extra = json!({"chamber_temperature": 17.333, "chamber_setpoint": 16.5});
        let p = StatePayload::of(&state_file("heat", "off", "clear"), Some(&extra));
        assert_eq!(
            (p.chamber_temperature, p.chamber_setpoint),
            (Some(17.33), Some(16.5))
        );
        assert!(p.has_chamber());
    }

    #[test]
    fn set_topics_become_commands() {
        let n = node(vec![Role::Heater, Role::Cooler]);
        let cmd = |t: &str, p: &str| n.incoming(t, p.as_bytes(), false);
        assert_eq!(
            cmd("kt/pi/set/mode", "heat_cool"),
            Incoming::Command(Command {
                mode: Some("heat_cool".into()),
                ..Command::default()
            })
        );
        assert_eq!(
            cmd("kt/pi/set/low", " 18.5\n"),
            Incoming::Command(Command {
                low: Some(18.5),
                ..Command::default()
            })
        );
        assert_eq!(
            cmd("kt/pi/set/target", "19"),
            Incoming::Command(Command {
                target: Some(19.0),
                ..Command::default()
            })
        );
        assert!(
            matches!(cmd("kt/pi/set/high", "21"), Incoming::Command(c) if c.high == Some(21.0))
        );
    }

    #[test]
    fn bad_commands_are_refused_with_the_reason() {
        let n = node(vec![Role::Heater]);
        let refused = |t: &str, p: &[u8]| match n.incoming(t, p, false) {
            Incoming::Refused(why) => why,
            other => panic!("{t} {p:?} gave {other:?}"),
        };
        assert!(refused("kt/pi/set/mode", b"cool")
            .contains("not a mode of this thermostat (off, heat)"));
        assert!(refused("kt/pi/set/low", b"warm").contains("not a temperature"));
        assert!(refused("kt/pi/set/low", b"NaN").contains("not a temperature"));
        assert!(refused("kt/pi/set/high", b"inf").contains("not a temperature"));
        assert!(refused("kt/pi/set/low", &[0xff, 0xfe]).contains("not UTF-8"));
        assert!(refused("kt/pi/set/low", &[b'1'; 65]).contains("65 bytes"));
        assert!(refused("kt/pi/set/fan", b"on").contains("set/fan is not a command"));
    }

    #[test]
    fn ha_status_online_republishes_only_when_live() {
        let n = node(vec![Role::Heater]);
        assert_eq!(
            n.incoming("homeassistant/status", b"online", false),
            Incoming::HaOnline
        );
        assert_eq!(
            n.incoming("homeassistant/status", b"online", true),
            Incoming::Ignore
        );
        assert_eq!(
            n.incoming("homeassistant/status", b"offline", false),
            Incoming::Ignore
        );
        assert_eq!(n.incoming("other/topic", b"x", false), Incoming::Ignore);
        assert_eq!(n.subscriptions(), ["kt/pi/set/+", "homeassistant/status"]);
    }

    #[test]
    fn an_instance_names_its_device() {
        assert_eq!(device_name("pi", None), "kasa-thermostat pi");
        assert_eq!(device_name("pi", Some("keg")), "kasa-thermostat pi keg");
    }

    #[test]
    fn node_id_keeps_only_what_ha_allows() {
        assert_eq!(
            node_id("kasa-thermostat-pi.local"),
            "kasa-thermostat-pi_local"
        );
    }
}
