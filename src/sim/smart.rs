//! The SMART JSON as a Tapo P100/P110, the P300 strip, a Kasa KP125M and
//! the EP40M strip answer it: `component_nego`, `get_device_info`,
//! `set_device_info`, `multipleRequest`, the strip's child list and
//! `control_child`, `countdown` rules and `auto_off`, with the error codes
//! real devices use (`-1002` unknown method, `-1008` bad parameters).
//!
//! The component lists are a subset of the real devices' (python-kasa 0.12's
//! recordings): enough for python-kasa and our client, without modules
//! (energy, firmware, schedules) nobody here drives. Outlets are listed in
//! index order with `position` = index + 1.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::model::Model;
use super::state::{hex_id, AutoOff, Inner, Rule};
use crate::kasa::credentials::base64_encode;

/// How many children one `get_child_device_list` page holds. Real strips
/// send all of theirs at once; two makes every strip here page, so clients'
/// paging is exercised.
const PAGE: usize = 2;

const UNKNOWN_METHOD: i64 = -1002;
const PARAMS_ERROR: i64 = -1008;
const COUNTDOWN_ERROR: i64 = -1901;

/// A rule as `get_countdown_rules` lists it.
pub(super) fn rule_json(r: &Rule, now: Instant) -> Value {
    json!({
        "id": r.id, "enable": r.enable, "delay": r.delay,
        "desired_states": {"on": r.act}, "remain": r.remain(now)
    })
}

/// Whether a SMART request (or one inside it) switches a relay.
pub(super) fn is_switch(req: &Value) -> bool {
    match req.get("method").and_then(Value::as_str) {
        Some("set_device_info") => req.pointer("/params/device_on").is_some(),
        Some("control_child") => req.pointer("/params/requestData").is_some_and(is_switch),
        Some("multipleRequest") => req
            .pointer("/params/requests")
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(is_switch)),
        _ => false,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn components(list: &[(&str, i64)]) -> Value {
    let l: Vec<Value> = list
        .iter()
        .map(|(id, v)| json!({"id": id, "ver_code": v}))
        .collect();
    Value::Array(l)
}

/// Which outlet a method acts on: the plug's only one, a strip's child, or
/// the strip itself.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Outlet(usize),
    Strip,
}

impl Inner {
    fn has_auto_off(&self) -> bool {
        matches!(
            self.model,
            Model::P110 | Model::Kp125m | Model::P300 | Model::P110Aes | Model::Ep25
        )
    }

    fn has_countdown(&self) -> bool {
        !self.no_countdown
    }

    /// The SMART `device_id` of outlet `i` of a strip.
    pub(super) fn smart_child_id(&self, i: usize) -> String {
        format!("{}{:02}", self.device_id, i)
    }

    fn parent_components(&self) -> Vec<(&'static str, i64)> {
        let mut c = vec![
            ("device", 2),
            ("time", 1),
            ("cloud_connect", 1),
            ("default_states", 1),
        ];
        if self.is_strip() {
            c.extend([("child_device", 2), ("control_child", 2)]);
        } else {
            if self.has_countdown() {
                c.push(("countdown", 2));
            }
            if self.has_auto_off() {
                c.push(("auto_off", 2));
            }
        }
        c
    }

    fn child_components(&self) -> Vec<(&'static str, i64)> {
        let mut c = vec![("device", 2), ("default_states", 1)];
        if self.has_countdown() {
            c.push(("countdown", 2));
        }
        if self.has_auto_off() {
            c.push(("auto_off", 2));
        }
        c
    }

    fn common_info(&self) -> Map<String, Value> {
        let v = json!({
            "device_id": self.device_id,
            "fw_ver": match self.model {
                Model::P100 => "1.4.0 Build 20231017 Rel. 33876",
                Model::P110Aes => "1.2.3 Build 230425 Rel.142542",
                Model::Ep25 => "1.0.2 Build 231108 Rel.163012",
                Model::P110 => "1.3.0 Build 230905 Rel.152200",
                Model::P300 => "1.0.15 Build 231130 Rel.122554",
                Model::Kp125m => "1.2.3 Build 240624 Rel.154806",
                _ => "1.1.0 Build 240415 Rel.171219",
            },
            "hw_ver": match self.model {
                Model::P100 => "1.0.0",
                Model::Ep25 => "2.6",
                _ => "1.0",
            },
            "type": self.model.device_type(),
            "model": self.model.model_name(),
            "mac": self.mac.replace(':', "-"),
            "hw_id": hex_id(&format!("hw{}", self.device_id), 32),
            "fw_id": hex_id(&format!("fw{}", self.device_id), 32),
            "oem_id": hex_id(&format!("oem{}", self.device_id), 32),
            "ip": "127.0.0.1",
            "time_diff": 0,
            "ssid": base64_encode(b"simulated"),
            "rssi": -48,
            "signal_level": 3,
            "latitude": 0,
            "longitude": 0,
            "lang": "en_US",
            "avatar": "plug",
            "region": "UTC",
            "specs": "",
            "nickname": base64_encode(self.alias.as_bytes()),
            "has_set_location_info": false,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn outlet_fields(&self, m: &mut Map<String, Value>, i: usize, now: Instant) {
        let o = &self.outlets[i];
        m.insert("device_on".into(), json!(o.on));
        m.insert("on_time".into(), json!(self.on_time(o, now)));
        m.insert(
            "default_states".into(),
            json!({"type": "last_states", "state": {}}),
        );
        if self.has_auto_off() {
            let due = o.auto_off.due(o.on_since).filter(|_| o.on);
            m.insert(
                "auto_off_status".into(),
                json!(if due.is_some() { "on" } else { "off" }),
            );
            m.insert(
                "auto_off_remain_time".into(),
                json!(due.map_or(0, |d| d.saturating_duration_since(now).as_secs())),
            );
        }
    }

    /// The `get_device_info` result of the device (a strip's has no `device_on`).
    pub(super) fn device_info(&self, now: Instant) -> Value {
        let mut m = self.common_info();
        if !self.is_strip() {
            self.outlet_fields(&mut m, 0, now);
            m.insert("overheated".into(), json!(false));
        }
        Value::Object(m)
    }

    fn child_info(&self, i: usize, now: Instant) -> Value {
        let mut m = self.common_info();
        m.insert("device_id".into(), json!(self.smart_child_id(i)));
        m.insert("original_device_id".into(), json!(self.device_id));
        m.insert("mac".into(), json!(self.mac.replace(':', "")));
        m.insert(
            "nickname".into(),
            json!(base64_encode(self.outlets[i].alias.as_bytes())),
        );
        m.insert("category".into(), json!("plug.powerstrip.sub-plug"));
        m.insert("position".into(), json!(i + 1));
        m.insert("slot_number".into(), json!(self.outlets.len()));
        m.insert("bind_count".into(), json!(1));
        m.insert("overheat_status".into(), json!("normal"));
        m.insert("status_follow_edge".into(), json!(true));
        for k in ["ssid", "rssi", "signal_level", "ip", "time_diff"] {
            m.remove(k);
        }
        self.outlet_fields(&mut m, i, now);
        Value::Object(m)
    }

    fn page(list: Vec<Value>, key: &str, params: &Value) -> Value {
        let sum = list.len();
        let start = params
            .get("start_index")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let page: Vec<Value> = list.into_iter().skip(start).take(PAGE).collect();
        json!({ key: page, "start_index": start, "sum": sum })
    }

    /// Answers one SMART request envelope as the device would.
    pub(super) fn handle_smart(&mut self, req: &Value, now: Instant) -> Value {
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        let params = req.get("params").cloned().unwrap_or(Value::Null);
        if method == "multipleRequest" {
            let Some(list) = params.get("requests").and_then(Value::as_array) else {
                return json!({"error_code": PARAMS_ERROR});
            };
            let mut responses = Vec::new();
            for r in list {
                let m = r.get("method").and_then(Value::as_str).unwrap_or("");
                let p = r.get("params").cloned().unwrap_or(Value::Null);
                let mut answer = self.answer(m, &p, now);
                answer["method"] = json!(m);
                let failed = answer["error_code"] != json!(0);
                responses.push(answer);
                // Devices do not go on after a failing request.
                if failed {
                    break;
                }
            }
            return json!({"error_code": 0, "result": {"responses": responses}});
        }
        self.answer(method, &params, now)
    }

    fn answer(&mut self, method: &str, params: &Value, now: Instant) -> Value {
        if self.fixture.is_some() {
            return reply(self.fixture_method(None, method, params, now));
        }
        let target = if self.is_strip() {
            Target::Strip
        } else {
            Target::Outlet(0)
        };
        reply(self.method(target, method, params, now))
    }

    fn method(
        &mut self,
        target: Target,
        method: &str,
        params: &Value,
        now: Instant,
    ) -> Result<Option<Value>, i64> {
        let strip = target == Target::Strip;
        let outlet = match target {
            Target::Outlet(i) => Some(i),
            Target::Strip => None,
        };
        let child = self.is_strip() && outlet.is_some();
        match method {
            "component_nego" if !child => Ok(Some(json!({
                "component_list": components(&self.parent_components())
            }))),
            "get_device_info" => Ok(Some(match outlet {
                Some(i) if child => self.child_info(i, now),
                _ => self.device_info(now),
            })),
            "get_device_usage" => Ok(Some(json!({
                "time_usage": {"today": 0, "past7": 0, "past30": 0},
                "power_usage": {"today": 0, "past7": 0, "past30": 0},
                "saved_power": {"today": 0, "past7": 0, "past30": 0},
            }))),
            "get_device_time" if !child => Ok(Some(json!({
                "timestamp": unix_now(), "time_diff": 0, "region": "UTC"
            }))),
            "get_connect_cloud_state" if !child => Ok(Some(json!({"status": 0}))),
            "set_device_info" => {
                if let Some(name) = params.get("nickname").and_then(Value::as_str) {
                    let text = crate::kasa::credentials::base64_decode(name)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .ok_or(PARAMS_ERROR)?;
                    match outlet {
                        Some(i) if child => self.outlets[i].alias = text,
                        _ => self.alias = text,
                    }
                }
                if let Some(on) = params.get("device_on") {
                    let (Some(on), Some(i)) = (on.as_bool(), outlet) else {
                        return Err(PARAMS_ERROR);
                    };
                    self.command(i, on, now);
                }
                Ok(None)
            }
            "get_child_device_list" if strip => {
                let list = (0..self.outlets.len())
                    .map(|i| self.child_info(i, now))
                    .collect();
                Ok(Some(Self::page(list, "child_device_list", params)))
            }
            "get_child_device_component_list" if strip => {
                let comps = components(&self.child_components());
                let list = (0..self.outlets.len())
                    .map(|i| json!({"device_id": self.smart_child_id(i), "component_list": comps}))
                    .collect();
                Ok(Some(Self::page(list, "child_component_list", params)))
            }
            "control_child" if strip => {
                let id = params
                    .get("device_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let i = (0..self.outlets.len())
                    .find(|&i| self.smart_child_id(i) == id)
                    .ok_or(PARAMS_ERROR)?;
                let data = params.get("requestData").ok_or(PARAMS_ERROR)?;
                let m = data.get("method").and_then(Value::as_str).unwrap_or("");
                let p = data.get("params").cloned().unwrap_or(Value::Null);
                let inner = reply(self.method(Target::Outlet(i), m, &p, now));
                Ok(Some(json!({ "responseData": inner })))
            }
            m if m.ends_with("countdown_rule") || m.ends_with("countdown_rules") => match outlet {
                Some(i) if self.has_countdown() => self.countdown(i, m, params, now),
                _ => Err(UNKNOWN_METHOD),
            },
            "get_auto_off_config" | "set_auto_off_config" => match outlet {
                Some(i) if self.has_auto_off() => self.auto_off_method(i, method, params, now),
                _ => Err(UNKNOWN_METHOD),
            },
            _ => Err(UNKNOWN_METHOD),
        }
    }

    /// `get_auto_off_config` / `set_auto_off_config` on outlet `i`.
    pub(super) fn auto_off_method(
        &mut self,
        i: usize,
        method: &str,
        params: &Value,
        now: Instant,
    ) -> Result<Option<Value>, i64> {
        let a = &mut self.outlets[i].auto_off;
        if method == "set_auto_off_config" {
            let enable = params.get("enable").and_then(Value::as_bool);
            let delay = params.get("delay_min").and_then(Value::as_u64);
            if enable.is_none() && delay.is_none() {
                return Err(PARAMS_ERROR);
            }
            if let Some(d) = delay {
                if d == 0 || d > 24 * 60 * 7 {
                    return Err(PARAMS_ERROR);
                }
                a.delay_min = d as u32;
            }
            if let Some(e) = enable {
                if e && !a.enable {
                    a.since = now;
                }
                a.enable = e;
            }
            return Ok(None);
        }
        let AutoOff {
            enable, delay_min, ..
        } = *a;
        Ok(Some(json!({"enable": enable, "delay_min": delay_min})))
    }

    /// The countdown methods on outlet `i`.
    pub(super) fn countdown(
        &mut self,
        i: usize,
        method: &str,
        params: &Value,
        now: Instant,
    ) -> Result<Option<Value>, i64> {
        let delay = params.get("delay").and_then(Value::as_u64);
        let act = params
            .pointer("/desired_states/on")
            .and_then(Value::as_bool);
        let enable = params.get("enable").and_then(Value::as_bool);
        match method {
            "get_countdown_rules" => {
                let o = &self.outlets[i];
                let list: Vec<Value> = o.rule.iter().map(|r| rule_json(r, now)).collect();
                Ok(Some(json!({
                    "enable": o.rule.as_ref().is_some_and(|r| r.enable),
                    "countdown_rule_max_count": 1,
                    "rule_list": list
                })))
            }
            "add_countdown_rule" => {
                if self.outlets[i].rule.is_some() {
                    // One rule per outlet.
                    return Err(COUNTDOWN_ERROR);
                }
                let (Some(delay), Some(act)) = (delay, act) else {
                    return Err(PARAMS_ERROR);
                };
                let id = self.next_rule_id();
                self.outlets[i].rule = Some(Rule {
                    id: id.clone(),
                    name: String::new(),
                    enable: enable.unwrap_or(true),
                    delay: delay.min(u64::from(u32::MAX)) as u32,
                    act,
                    armed: now,
                });
                Ok(Some(json!({ "id": id })))
            }
            "edit_countdown_rule" => {
                let id = params.get("id").and_then(Value::as_str).unwrap_or("");
                match self.outlets[i].rule.as_mut() {
                    Some(r) if r.id == id => {
                        if let Some(d) = delay {
                            r.delay = d.min(u64::from(u32::MAX)) as u32;
                        }
                        if let Some(a) = act {
                            r.act = a;
                        }
                        if let Some(e) = enable {
                            r.enable = e;
                        }
                        r.armed = now;
                        Ok(None)
                    }
                    _ => Err(COUNTDOWN_ERROR),
                }
            }
            "remove_countdown_rules" => {
                self.outlets[i].rule = None;
                Ok(None)
            }
            _ => Err(UNKNOWN_METHOD),
        }
    }
}

/// A method's result as the device sends it.
pub(super) fn reply(r: Result<Option<Value>, i64>) -> Value {
    match r {
        Ok(Some(v)) => json!({"error_code": 0, "result": v}),
        Ok(None) => json!({"error_code": 0}),
        Err(code) => json!({"error_code": code}),
    }
}
