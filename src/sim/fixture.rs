//! A simulated device that answers as one of python-kasa's recorded devices
//! (its test fixtures, `tests/fixtures/{iot,smart}/*.json` in its sdist;
//! fetched at test time, never copied here).
//!
//! An **iot** fixture is the legacy JSON by module and method
//! (`{"system": {"get_sysinfo": {...}}, "emeter": {...}}`); it is served over
//! the XOR port, or inside KLAP when its `discovery_result` says so
//! (HS100(UK) hw 4.1). A **smart** fixture is the SMART JSON by method
//! (`{"get_device_info": {...}, "component_nego": {...},
//! "get_child_device_list": {...}, "child_devices": {ID: {...}}}`), served
//! over KLAP or AES as its `discovery_result` says.
//!
//! What a client changes is kept: the relays (a plug's `relay_state` or
//! `device_on`, a strip's children), aliases, countdown rules and auto-off
//! (when the device lists those components), through the same live machinery
//! as the built-in models, faults included. Everything else is answered as
//! recorded; what the recording does not have gets the code a real device
//! uses for what it does not know (`-1 module not support`, `-2 member not
//! support` on the legacy JSON, `-1002` UNKNOWN_METHOD on SMART).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::iot::err;
use super::model::Wire;
use super::smart::reply;
use super::state::Inner;
use crate::kasa::credentials::{
    base64_decode, base64_encode, default_for, Credentials, KlapVersion,
};

/// Children of a child list page, as python-kasa's recordings page them.
const PAGE: usize = 10;

const UNKNOWN_METHOD: i64 = -1002;
const PARAMS_ERROR: i64 = -1008;

/// Why a file is not a usable fixture.
#[derive(Debug)]
pub enum FixtureError {
    /// The file could not be read.
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    Json {
        /// The file.
        path: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// JSON, but not an iot or smart recording this simulator can serve.
    Shape {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

impl fmt::Display for FixtureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixtureError::Io { path, .. } => write!(f, "{path}: cannot read the fixture"),
            FixtureError::Json { path, .. } => write!(f, "{path}: the fixture is not JSON"),
            FixtureError::Shape { path, what } => write!(f, "{path}: {what}"),
        }
    }
}

impl std::error::Error for FixtureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FixtureError::Io { source, .. } => Some(source),
            FixtureError::Json { source, .. } => Some(source),
            FixtureError::Shape { .. } => None,
        }
    }
}

/// One relay of a recorded device, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureOutlet {
    /// Its name (decoded from base64 on SMART devices).
    pub alias: String,
    /// Its recorded state.
    pub on: bool,
}

/// A python-kasa recording, ready to serve.
#[derive(Debug, Clone)]
pub struct Fixture {
    name: String,
    data: Map<String, Value>,
    smart: bool,
    wire: Wire,
    lv: Option<u8>,
    device_type: String,
    model: String,
    /// The `result` of the recorded 20002 answer.
    discovery: Option<Map<String, Value>>,
    outlets: Vec<FixtureOutlet>,
    /// Legacy strips: each outlet's child id. SMART: every child's device_id.
    child_ids: Vec<String>,
    /// SMART: for each entry of the child list, the relay it is (if any).
    child_outlet: Vec<Option<usize>>,
    /// The device itself is relay 0 (a plug, not a strip).
    single: bool,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

fn decode_nickname(v: Option<&Value>) -> String {
    let raw = text(v);
    base64_decode(&raw)
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or(raw)
}

impl Fixture {
    /// Reads and checks a fixture file.
    pub(crate) fn load(path: &Path) -> Result<Fixture, FixtureError> {
        let shown = path.display().to_string();
        let body = std::fs::read_to_string(path).map_err(|source| FixtureError::Io {
            path: shown.clone(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        Fixture::parse(&name, &body).map_err(|e| match e {
            FixtureError::Json { source, .. } => FixtureError::Json {
                path: shown.clone(),
                source,
            },
            FixtureError::Shape { what, .. } => FixtureError::Shape {
                path: shown.clone(),
                what,
            },
            other => other,
        })
    }

    /// Parses a fixture's text; `name` names it in errors and messages.
    pub fn parse(name: &str, json_text: &str) -> Result<Fixture, FixtureError> {
        let shape = |what: &str| FixtureError::Shape {
            path: name.to_string(),
            what: what.to_string(),
        };
        let data = match serde_json::from_str::<Value>(json_text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(shape("the fixture is not a JSON object")),
            Err(source) => {
                return Err(FixtureError::Json {
                    path: name.to_string(),
                    source,
                })
            }
        };
        let discovery = data.get("discovery_result").and_then(|d| {
            d.get("result")
                .unwrap_or(d)
                .as_object()
                .cloned()
                .filter(|m| m.contains_key("mgt_encrypt_schm") || m.contains_key("device_type"))
        });
        let schm = discovery.as_ref().and_then(|d| d.get("mgt_encrypt_schm"));
        let scheme = text(schm.and_then(|s| s.get("encrypt_type"))).to_ascii_uppercase();
        let lv = schm
            .and_then(|s| s.get("lv"))
            .and_then(Value::as_u64)
            .and_then(|v| u8::try_from(v).ok());
        let sysinfo = data
            .get("system")
            .and_then(|s| s.get("get_sysinfo"))
            .and_then(Value::as_object);
        let smart = match (sysinfo, data.get("get_device_info")) {
            (Some(_), _) => false,
            (None, Some(Value::Object(_))) if data.contains_key("component_nego") => true,
            _ => {
                return Err(shape(
                    "not a python-kasa iot or smart recording (no system.get_sysinfo, \
                     no get_device_info with component_nego; camera recordings are not served)",
                ))
            }
        };
        let wire = match (scheme.as_str(), smart) {
            ("KLAP", _) => Wire::Klap,
            ("AES", _) => Wire::Aes,
            ("" | "XOR", false) => Wire::Xor,
            (other, false) => {
                return Err(shape(&format!(
                    "the legacy device announces {other:?}, which the simulator does not speak"
                )))
            }
            ("", true) => Wire::Klap,
            (other, true) => {
                return Err(shape(&format!(
                    "the SMART device announces {other:?}, which the simulator does not speak"
                )))
            }
        };
        let discovered = |k: &str| text(discovery.as_ref().and_then(|d| d.get(k)));
        let mut fx = Fixture {
            name: name.to_string(),
            smart,
            wire,
            lv,
            device_type: discovered("device_type"),
            model: discovered("device_model"),
            discovery: discovery.clone(),
            outlets: Vec::new(),
            child_ids: Vec::new(),
            child_outlet: Vec::new(),
            single: false,
            data: Map::new(),
        };
        if let Some(si) = sysinfo {
            if fx.device_type.is_empty() {
                fx.device_type = text(si.get("mic_type").or_else(|| si.get("type")));
            }
            if fx.model.is_empty() {
                fx.model = text(si.get("model"));
            }
            let children = si.get("children").and_then(Value::as_array);
            if let Some(on) = flag(si.get("relay_state")) {
                fx.single = true;
                fx.outlets.push(FixtureOutlet {
                    alias: text(si.get("alias")),
                    on,
                });
            } else if let Some(children) = children.filter(|c| !c.is_empty()) {
                for (i, c) in children.iter().enumerate() {
                    let id = text(c.get("id"));
                    if id.is_empty() {
                        return Err(shape(&format!("children[{i}] has no id")));
                    }
                    fx.child_ids.push(id);
                    fx.outlets.push(FixtureOutlet {
                        alias: text(c.get("alias")),
                        on: flag(c.get("state")).unwrap_or(false),
                    });
                }
            }
        } else {
            let info = data.get("get_device_info").cloned().unwrap_or(Value::Null);
            if fx.device_type.is_empty() {
                fx.device_type = text(info.get("type"));
            }
            if fx.model.is_empty() {
                fx.model = text(info.get("model"));
            }
            let children: Vec<Value> = data
                .get("get_child_device_list")
                .and_then(|l| l.get("child_device_list"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in &children {
                fx.child_ids.push(text(c.get("device_id")));
                let relay = flag(c.get("device_on")).map(|on| {
                    fx.outlets.push(FixtureOutlet {
                        alias: decode_nickname(c.get("nickname")),
                        on,
                    });
                    fx.outlets.len() - 1
                });
                fx.child_outlet.push(relay);
            }
            if let Some(on) = flag(info.get("device_on")) {
                if fx.outlets.is_empty() {
                    fx.single = true;
                    fx.outlets.push(FixtureOutlet {
                        alias: decode_nickname(info.get("nickname")),
                        on,
                    });
                }
            }
        }
        fx.data = data;
        Ok(fx)
    }

    /// Whether it speaks the SMART JSON (else the legacy JSON).
    pub fn is_smart(&self) -> bool {
        self.smart
    }

    /// What its TCP port speaks.
    pub(crate) fn wire(&self) -> Wire {
        self.wire
    }

    /// Its login version (`lv`), when the discovery result gives one.
    pub fn lv(&self) -> Option<u8> {
        self.lv
    }

    /// The KLAP hash version: v2 for SMART devices and `lv: 2`, else v1.
    pub(crate) fn klap_version(&self) -> KlapVersion {
        if self.smart || self.lv == Some(2) {
            KlapVersion::V2
        } else {
            KlapVersion::V1
        }
    }

    /// The model (`P110(EU)` from discovery, else as the device names itself).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Its relays, as recorded: one for a plug or wall switch, one per
    /// outlet of a strip, none for a bulb, sensor or hub.
    pub fn outlets(&self) -> &[FixtureOutlet] {
        &self.outlets
    }

    /// Whether it is a power strip (several relays, each a child).
    pub fn is_strip(&self) -> bool {
        !self.single && !self.outlets.is_empty()
    }

    /// The child id of legacy outlet `i` (the recorded one).
    pub fn child_id(&self, i: usize) -> Option<&str> {
        if self.smart {
            return None;
        }
        self.child_ids.get(i).map(String::as_str)
    }

    /// The SMART `device_id` of relay `index` of a strip (`None` otherwise).
    pub(crate) fn outlet_child_id(&self, index: usize) -> Option<&str> {
        if !self.smart {
            return None;
        }
        let ci = self.child_outlet.iter().position(|o| *o == Some(index))?;
        self.child_ids.get(ci).map(String::as_str)
    }

    /// The account a device of this family accepts out of the box: `TAPO`
    /// for Tapo devices and every AES device (python-kasa's AES transport
    /// tries no other), `KASA` for the rest.
    pub fn default_credentials(&self) -> Credentials {
        if self.wire == Wire::Aes || self.device_type.contains("TAPO") {
            default_for("TAPO")
        } else {
            default_for("KASA")
        }
    }

    /// One line for logs and the sweep: model, family, transport.
    pub fn describe(&self) -> String {
        let family = if self.smart { "SMART" } else { "legacy" };
        let wire = match self.wire {
            Wire::Xor => "XOR port".to_string(),
            Wire::Klap => self.klap_version().to_string(),
            Wire::Aes => format!("AES login v{}", self.lv.unwrap_or(1)),
            Wire::Tpap => "TPAP".to_string(),
        };
        format!(
            "{} ({}, {family} JSON over {wire}, {} relay{})",
            self.name,
            self.device_type,
            self.outlets.len(),
            if self.outlets.len() == 1 { "" } else { "s" }
        )
    }

    /// The 20002 answer: the recorded one, with the asker's address.
    pub(crate) fn probe_answer(&self, from: SocketAddr) -> Value {
        let mut result = self.discovery.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("device_type".into(), json!(self.device_type));
            m.insert("device_model".into(), json!(self.model));
            m.insert(
                "mgt_encrypt_schm".into(),
                json!({"encrypt_type": self.wire.scheme(), "http_port": 80, "is_support_https": false}),
            );
            m
        });
        result.insert("ip".into(), json!(from.ip().to_string()));
        json!({"error_code": 0, "result": result})
    }

    fn recorded(&self, method: &str) -> Option<&Value> {
        self.data.get(method).filter(|v| !v.is_null())
    }

    /// The components a SMART device (or child `id`) lists.
    fn components(&self, child: Option<&str>) -> Vec<String> {
        let list = match child {
            None => self.data.get("component_nego"),
            Some(id) => self
                .data
                .get("get_child_device_component_list")
                .and_then(|l| l.get("child_component_list"))
                .and_then(Value::as_array)
                .and_then(|l| {
                    l.iter()
                        .find(|e| e.get("device_id").and_then(Value::as_str) == Some(id))
                })
                .or_else(|| {
                    self.data
                        .get("child_devices")
                        .and_then(|c| c.get(id))
                        .and_then(|c| c.get("component_nego"))
                }),
        };
        list.and_then(|l| l.get("component_list"))
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `get_emeter_data` / `get_emeter_vgain_igain` of a metering device
    /// whose recording lacks them.
    fn meter(&self, method: &str, on: bool) -> Option<Value> {
        let recorded_w = self
            .recorded("get_current_power")
            .and_then(|p| p.get("current_power"))
            .and_then(Value::as_f64)
            .map(|w| w * 1000.0)
            .or_else(|| {
                self.recorded("get_energy_usage")
                    .and_then(|u| u.get("current_power"))
                    .and_then(Value::as_f64)
            })
            .unwrap_or(0.0);
        let power_mw = if on { recorded_w.round() as i64 } else { 0 };
        let voltage_mv: i64 = if self.model.contains("(US)") {
            120_000
        } else {
            230_000
        };
        match method {
            "get_emeter_data" => Some(json!({
                "power_mw": power_mw,
                "voltage_mv": voltage_mv,
                "current_ma": power_mw * 1000 / voltage_mv,
                "energy_wh": self
                    .recorded("get_energy_usage")
                    .and_then(|u| u.get("today_energy"))
                    .cloned()
                    .unwrap_or(json!(0)),
            })),
            "get_emeter_vgain_igain" => Some(json!({"vgain": 118_000, "igain": 11_000})),
            _ => None,
        }
    }

    /// What child `id` recorded for `method` (its own fixture, when kept).
    fn child_recorded(&self, id: &str, method: &str) -> Option<&Value> {
        self.data
            .get("child_devices")
            .and_then(|c| c.get(id))
            .and_then(|c| c.get(method))
            .filter(|v| !v.is_null())
    }
}

/// One page of a recorded list (`start_index`, `sum`), as devices page.
fn page(mut result: Value, key: &str, list: Vec<Value>, params: &Value) -> Value {
    let start = params
        .get("start_index")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let sum = list.len();
    let page: Vec<Value> = list.into_iter().skip(start).take(PAGE).collect();
    result[key] = Value::Array(page);
    result["start_index"] = json!(start);
    result["sum"] = json!(sum);
    result
}

fn is_countdown(method: &str) -> bool {
    method.ends_with("countdown_rule") || method.ends_with("countdown_rules")
}

impl Inner {
    fn fx(&self) -> Option<std::sync::Arc<Fixture>> {
        self.fixture.clone()
    }

    /// The recorded sysinfo with the live relays, aliases and on-times.
    pub(super) fn fixture_sysinfo(&self, now: Instant) -> Value {
        let Some(fx) = self.fx() else {
            return Value::Null;
        };
        let mut v = fx
            .data
            .get("system")
            .and_then(|s| s.get("get_sysinfo"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        if fx.single {
            if let Some(o) = self.outlets.first() {
                v["relay_state"] = json!(u8::from(o.on));
                v["on_time"] = json!(self.on_time(o, now));
                v["alias"] = json!(self.alias);
            }
        } else if let Some(children) = v.get_mut("children").and_then(Value::as_array_mut) {
            for (c, o) in children.iter_mut().zip(&self.outlets) {
                c["state"] = json!(u8::from(o.on));
                c["on_time"] = json!(self.on_time(o, now));
                c["alias"] = json!(o.alias);
            }
        }
        v
    }

    /// Answers one legacy request: the relays, aliases and countdown live,
    /// the rest as recorded.
    pub(super) fn fixture_iot(&mut self, req: &Value, now: Instant) -> Value {
        let Some(fx) = self.fx() else {
            return json!({});
        };
        let relays = !self.outlets.is_empty();
        let targets = self.targets(req);
        let mut out = Map::new();
        for (module, methods) in req.as_object().into_iter().flatten() {
            if module == "context" {
                continue;
            }
            let recorded = fx.data.get(module).and_then(Value::as_object);
            let live_module = module == "system" || (module == "count_down" && relays);
            if recorded.is_none() && !live_module {
                out.insert(module.clone(), err(-1, "module not support"));
                continue;
            }
            let mut m = Map::new();
            for (method, params) in methods.as_object().into_iter().flatten() {
                let live = match (module.as_str(), method.as_str()) {
                    ("system", "get_sysinfo" | "set_dev_alias" | "set_led_off") => true,
                    ("system", "set_relay_state") | ("count_down", _) => relays,
                    _ => false,
                };
                let answer = if live {
                    match &targets {
                        Err(_) => err(-14, "entry not exist"),
                        Ok(t) => self.iot_method(module, method, params, t.as_deref(), now),
                    }
                } else {
                    match recorded.and_then(|r| r.get(method)) {
                        Some(v) if v.is_object() => v.clone(),
                        _ => err(-2, "member not support"),
                    }
                };
                m.insert(method.clone(), answer);
            }
            out.insert(module.clone(), Value::Object(m));
        }
        Value::Object(out)
    }

    /// The recorded `get_device_info` with the live relay.
    pub(super) fn fixture_device_info(&self, now: Instant) -> Value {
        match self.fx() {
            Some(fx) => self.fixture_info(&fx, None, now),
            None => Value::Null,
        }
    }

    /// The recorded device info (or child entry `ci`) with the live relay.
    fn fixture_info(&self, fx: &Fixture, child: Option<usize>, now: Instant) -> Value {
        let (mut v, relay) = match child {
            None => (
                fx.recorded("get_device_info").cloned().unwrap_or(json!({})),
                fx.single.then_some(0),
            ),
            Some(ci) => (
                fx.data
                    .get("get_child_device_list")
                    .and_then(|l| l.get("child_device_list"))
                    .and_then(|l| l.get(ci))
                    .cloned()
                    .unwrap_or(json!({})),
                fx.child_outlet.get(ci).copied().flatten(),
            ),
        };
        if let Some(o) = relay.and_then(|i| self.outlets.get(i)) {
            v["device_on"] = json!(o.on);
            if v.get("on_time").is_some() {
                v["on_time"] = json!(self.on_time(o, now));
            }
            v["nickname"] = json!(base64_encode(o.alias.as_bytes()));
        }
        v
    }

    /// One SMART method on the device (`child: None`) or on child entry
    /// `child` of its list, as the recorded device answers it.
    pub(super) fn fixture_method(
        &mut self,
        child: Option<usize>,
        method: &str,
        params: &Value,
        now: Instant,
    ) -> Result<Option<Value>, i64> {
        let Some(fx) = self.fx() else {
            return Err(UNKNOWN_METHOD);
        };
        let child_id = child.and_then(|ci| fx.child_ids.get(ci).cloned());
        let relay = match child {
            None => fx.single.then_some(0),
            Some(ci) => fx.child_outlet.get(ci).copied().flatten(),
        }
        .filter(|&i| i < self.outlets.len());
        let has = |c: &str| fx.components(child_id.as_deref()).iter().any(|x| x == c);
        match method {
            "control_child" if child.is_none() && !fx.child_ids.is_empty() => {
                let id = params
                    .get("device_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let ci = fx
                    .child_ids
                    .iter()
                    .position(|c| c == id)
                    .ok_or(PARAMS_ERROR)?;
                let data = params.get("requestData").ok_or(PARAMS_ERROR)?;
                let m = data.get("method").and_then(Value::as_str).unwrap_or("");
                let p = data.get("params").cloned().unwrap_or(Value::Null);
                let inner = reply(self.fixture_method(Some(ci), m, &p, now));
                Ok(Some(json!({ "responseData": inner })))
            }
            "get_device_info" => Ok(Some(self.fixture_info(&fx, child, now))),
            "set_device_info" => {
                if let Some(on) = params.get("device_on") {
                    let (Some(on), Some(i)) = (on.as_bool(), relay) else {
                        return Err(PARAMS_ERROR);
                    };
                    self.command(i, on, now);
                }
                if let Some(name) = params.get("nickname").and_then(Value::as_str) {
                    let text = base64_decode(name)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or(PARAMS_ERROR)?;
                    match relay {
                        Some(i) => self.outlets[i].alias = text,
                        None => self.alias = text,
                    }
                }
                Ok(None)
            }
            "get_child_device_list" if child.is_none() => {
                let rec = fx.recorded(method).cloned().ok_or(UNKNOWN_METHOD)?;
                let list = (0..fx.child_ids.len())
                    .map(|ci| self.fixture_info(&fx, Some(ci), now))
                    .collect();
                Ok(Some(page(rec, "child_device_list", list, params)))
            }
            "get_child_device_component_list" if child.is_none() => {
                let rec = fx.recorded(method).cloned().ok_or(UNKNOWN_METHOD)?;
                let list = rec
                    .get("child_component_list")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                Ok(Some(page(rec, "child_component_list", list, params)))
            }
            m if is_countdown(m) => match relay {
                Some(i) if has("countdown") => self.countdown(i, m, params, now),
                _ => Err(UNKNOWN_METHOD),
            },
            "get_auto_off_config" | "set_auto_off_config" => match relay {
                Some(i) if has("auto_off") => self.auto_off_method(i, method, params, now),
                _ => Err(UNKNOWN_METHOD),
            },
            m => {
                let recorded = match &child_id {
                    None => fx.recorded(m),
                    Some(id) => fx.child_recorded(id, m),
                };
                if recorded.is_none() && has("energy_monitoring") {
                    // Older recordings lack the meter's raw reading, which
                    // every metering device answers: make it from the
                    // recorded power, and nothing while the relay is open.
                    let on = relay
                        .and_then(|i| self.outlets.get(i))
                        .is_some_and(|o| o.on);
                    if let Some(v) = fx.meter(m, on) {
                        return Ok(Some(v));
                    }
                }
                match recorded {
                    Some(v) => Ok(Some(v.clone())),
                    // A setter whose getter is recorded: accepted.
                    None if m.starts_with("set_") => {
                        let getter = format!("get_{}", &m[4..]);
                        let known = match &child_id {
                            None => fx.recorded(&getter).is_some(),
                            Some(id) => fx.child_recorded(id, &getter).is_some(),
                        };
                        if known {
                            Ok(None)
                        } else {
                            Err(UNKNOWN_METHOD)
                        }
                    }
                    None => Err(UNKNOWN_METHOD),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_start_index() {
        let list: Vec<Value> = (0..25).map(|i| json!(i)).collect();
        let p = page(json!({"x": [], "sum": 99}), "x", list.clone(), &json!({}));
        assert_eq!(p["x"].as_array().unwrap().len(), PAGE);
        assert_eq!(
            (p["sum"].clone(), p["start_index"].clone()),
            (json!(25), json!(0))
        );
        let p = page(json!({}), "x", list.clone(), &json!({"start_index": 20}));
        assert_eq!(p["x"], json!([20, 21, 22, 23, 24]));
        let p = page(json!({}), "x", list, &json!({"start_index": 99}));
        assert_eq!(p["x"], json!([]));
    }

    #[test]
    fn meters_missing_from_a_recording_follow_the_relay() {
        let fx = Fixture::parse(
            "m",
            r#"{"component_nego": {"component_list": [{"id": "energy_monitoring", "ver_code": 2}]},
                "get_device_info": {"device_on": true, "type": "SMART.TAPOPLUG", "model": "P110"},
                "get_current_power": {"current_power": 12},
                "discovery_result": {"result": {"device_model": "P110(UK)",
                    "mgt_encrypt_schm": {"encrypt_type": "KLAP", "lv": 2}}}}"#,
        )
        .unwrap();
        let on = fx.meter("get_emeter_data", true).unwrap();
        assert_eq!(on["power_mw"], 12_000);
        assert_eq!(on["voltage_mv"], 230_000);
        assert_eq!(fx.meter("get_emeter_data", false).unwrap()["power_mw"], 0);
        assert!(fx.meter("get_something_else", true).is_none());
        assert_eq!(fx.klap_version(), KlapVersion::V2);
        assert_eq!(fx.wire(), Wire::Klap);
        assert_eq!(fx.outlet_child_id(0), None);
    }
}
