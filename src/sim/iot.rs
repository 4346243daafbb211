//! The legacy "IOT" JSON of Kasa plugs (docs/design.md §7): `system`, `count_down`,
//! `emeter`... as an HS100, HS110 or HS300 answers it, and the XOR-framed
//! TCP server of the legacy models. The HS100(UK) hw 4.1 model answers the
//! same JSON inside KLAP (see `klap/`).

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::fault::Fault;
use super::model::Model;
use super::state::{hex_id, Inner, Rule, SimState};
use crate::kasa::transport::xor;

/// Serves XOR-framed requests on one connection until it closes.
pub(super) fn serve(stream: &mut TcpStream, state: &SimState) {
    loop {
        let Ok(plain) = xor::read_frame(stream) else {
            return;
        };
        if state.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(req) = serde_json::from_slice::<Value>(&plain) else {
            // A real plug drops a connection that sends it nonsense.
            return;
        };
        let (now, fault) = state.arrive(is_switch(&req));
        let Some(fault) = fault else {
            return;
        };
        let reply = match &fault {
            Some(Fault::Blackhole) => continue,
            Some(Fault::Err) => error_reply(&req),
            _ => state.lock().handle_iot(&req, now),
        };
        if let Some(Fault::Slow(d)) = fault {
            std::thread::sleep(d);
        }
        let bytes = reply.to_string();
        let frame = match fault {
            Some(Fault::Garbage) => {
                let junk = garbage();
                let mut f = (junk.len() as u32).to_be_bytes().to_vec();
                f.extend(junk);
                f
            }
            _ => xor::frame(bytes.as_bytes()),
        };
        if fault == Some(Fault::Drop) {
            let _ = stream.write_all(&frame[..frame.len() / 2]);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Whether a legacy request switches a relay.
pub(super) fn is_switch(req: &Value) -> bool {
    req.pointer("/system/set_relay_state").is_some()
}

/// 64 bytes that are not JSON.
pub(super) fn garbage() -> Vec<u8> {
    (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect()
}

pub(super) fn rule_json(r: &Rule, now: Instant) -> Value {
    json!({
        "id": r.id, "name": r.name, "enable": u8::from(r.enable),
        "delay": r.delay, "act": u8::from(r.act), "remain": r.remain(now)
    })
}

pub(super) fn error_reply(req: &Value) -> Value {
    let mut out = Map::new();
    for (module, methods) in req.as_object().into_iter().flatten() {
        if module == "context" {
            continue;
        }
        let mut m = Map::new();
        for method in methods.as_object().into_iter().flat_map(|o| o.keys()) {
            m.insert(
                method.clone(),
                json!({"err_code": -1, "err_msg": "simulated failure"}),
            );
        }
        out.insert(module.clone(), Value::Object(m));
    }
    Value::Object(out)
}

fn ok(mut v: Value) -> Value {
    v["err_code"] = json!(0);
    v
}

pub(super) fn err(code: i64, msg: &str) -> Value {
    json!({"err_code": code, "err_msg": msg})
}

impl Inner {
    fn child_id(&self, i: usize) -> String {
        if let Some(id) = self.fixture.as_ref().and_then(|f| f.child_id(i)) {
            return id.to_string();
        }
        format!("{}{:02}", self.device_id, i)
    }

    pub(super) fn targets(&self, req: &Value) -> Result<Option<Vec<usize>>, String> {
        let Some(ids) = req.pointer("/context/child_ids").and_then(Value::as_array) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for id in ids {
            let id = id.as_str().unwrap_or_default();
            let found = (0..self.outlets.len())
                .filter(|_| self.is_strip())
                .find(|&i| {
                    let full = self.child_id(i);
                    full == id || (id.len() == 2 && full.ends_with(id))
                });
            match found {
                Some(i) => out.push(i),
                None => return Err(id.to_string()),
            }
        }
        Ok(Some(out))
    }

    pub(super) fn sysinfo(&self, now: Instant) -> Value {
        if self.fixture.is_some() {
            return self.fixture_sysinfo(now);
        }
        let (hw, sw, dev_name, feature) = match self.model {
            Model::Hs100 => (
                "2.1",
                "1.5.10 Build 191125 Rel.112046",
                "Smart Wi-Fi Plug",
                "TIM",
            ),
            // hw 4.1 closed port 9999 and speaks this JSON inside KLAP v1.
            Model::Hs100Klap => (
                "4.1",
                "1.1.0 Build 201016 Rel.175121",
                "Smart Wi-Fi Plug",
                "TIM",
            ),
            Model::Hs110 => (
                "2.0",
                "1.5.7 Build 191108 Rel.151931",
                "Smart Wi-Fi Plug With Energy Monitoring",
                "TIM:ENE",
            ),
            Model::Hs300 => (
                "1.0",
                "1.0.21 Build 210524 Rel.161309",
                "Smart Wi-Fi Power Strip",
                "TIM:ENE",
            ),
            // SMART models answer get_device_info instead (see smart.rs).
            _ => ("1.0", "1.0.0", "Smart Wi-Fi Plug", "TIM"),
        };
        let mut v = json!({
            "sw_ver": sw,
            "hw_ver": hw,
            "model": self.model.model_name(),
            "deviceId": self.device_id,
            "oemId": hex_id(&format!("oem{}", self.device_id), 32),
            "hwId": hex_id(&format!("hw{}", self.device_id), 32),
            "rssi": -52,
            "latitude_i": 515074,
            "longitude_i": -1278,
            "alias": self.alias,
            "status": "new",
            "obd_src": "tplink",
            "mic_type": "IOT.SMARTPLUGSWITCH",
            "feature": feature,
            "mac": self.mac,
            "updating": 0,
            "led_off": u8::from(self.led_off),
            "dev_name": dev_name,
            "icon_hash": "",
            "ntc_state": 0,
            "err_code": 0,
        });
        if self.is_strip() {
            let children: Vec<Value> = self
                .outlets
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    json!({
                        "id": self.child_id(i),
                        "state": u8::from(o.on),
                        "alias": o.alias,
                        "on_time": self.on_time(o, now),
                        "next_action": {"type": -1},
                    })
                })
                .collect();
            v["child_num"] = json!(children.len());
            v["children"] = Value::Array(children);
        } else {
            let o = &self.outlets[0];
            v["relay_state"] = json!(u8::from(o.on));
            v["on_time"] = json!(self.on_time(o, now));
            v["active_mode"] = json!("none");
            v["next_action"] = json!({"type": -1});
        }
        v
    }

    /// Answers one legacy request as the device would.
    pub(super) fn handle_iot(&mut self, req: &Value, now: Instant) -> Value {
        if self.fixture.is_some() {
            return self.fixture_iot(req, now);
        }
        let mut out = Map::new();
        let targets = self.targets(req);
        for (module, methods) in req.as_object().into_iter().flatten() {
            if module == "context" {
                continue;
            }
            let supported = matches!(
                module.as_str(),
                "system" | "count_down" | "time" | "cnCloud" | "schedule"
            ) || (module == "emeter" && self.model.has_emeter());
            if !supported {
                out.insert(module.clone(), err(-1, "module not support"));
                continue;
            }
            let mut m = Map::new();
            for (method, params) in methods.as_object().into_iter().flatten() {
                let answer = match &targets {
                    Err(_) => err(-14, "entry not exist"),
                    Ok(t) => self.iot_method(module, method, params, t.as_deref(), now),
                };
                m.insert(method.clone(), answer);
            }
            out.insert(module.clone(), Value::Object(m));
        }
        Value::Object(out)
    }

    pub(super) fn iot_method(
        &mut self,
        module: &str,
        method: &str,
        params: &Value,
        targets: Option<&[usize]>,
        now: Instant,
    ) -> Value {
        let all: Vec<usize> = (0..self.outlets.len()).collect();
        let first = targets.and_then(|t| t.first().copied()).unwrap_or(0);
        let int = |k: &str| params.get(k).and_then(Value::as_i64);
        match (module, method) {
            ("system", "get_sysinfo") => self.sysinfo(now),
            ("system", "set_relay_state") => {
                let Some(state) = int("state") else {
                    return err(-3, "invalid argument");
                };
                let on = state != 0;
                let which = targets.map(<[usize]>::to_vec).unwrap_or(all);
                for i in which {
                    self.command(i, on, now);
                }
                ok(json!({}))
            }
            ("system", "set_led_off") => {
                self.led_off = int("off").unwrap_or(0) != 0;
                ok(json!({}))
            }
            ("system", "set_dev_alias") => {
                let Some(alias) = params.get("alias").and_then(Value::as_str) else {
                    return err(-3, "invalid argument");
                };
                match targets {
                    Some(t) => t.iter().for_each(|&i| self.outlets[i].alias = alias.into()),
                    None => self.alias = alias.into(),
                }
                ok(json!({}))
            }
            ("system", "reboot" | "set_mac_addr" | "reset") => ok(json!({})),
            ("count_down", "get_rules") => {
                let rules: Vec<Value> = self.outlets[first]
                    .rule
                    .iter()
                    .map(|r| rule_json(r, now))
                    .collect();
                ok(json!({ "rule_list": rules }))
            }
            ("count_down", "add_rule") => {
                if self.outlets[first].rule.is_some() {
                    return err(-10, "table is full");
                }
                let (Some(delay), Some(act)) = (int("delay"), int("act")) else {
                    return err(-3, "invalid argument");
                };
                let id = self.next_rule_id();
                self.outlets[first].rule = Some(Rule {
                    id: id.clone(),
                    name: params
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    enable: int("enable").unwrap_or(1) != 0,
                    delay: delay.clamp(0, i64::from(u32::MAX)) as u32,
                    act: act != 0,
                    armed: now,
                });
                ok(json!({ "id": id }))
            }
            ("count_down", "edit_rule") => {
                let id = params.get("id").and_then(Value::as_str).unwrap_or_default();
                match self.outlets[first].rule.as_mut() {
                    Some(r) if r.id == id => {
                        if let Some(d) = int("delay") {
                            r.delay = d.clamp(0, i64::from(u32::MAX)) as u32;
                        }
                        if let Some(a) = int("act") {
                            r.act = a != 0;
                        }
                        if let Some(e) = int("enable") {
                            r.enable = e != 0;
                        }
                        r.armed = now;
                        ok(json!({}))
                    }
                    _ => err(-14, "entry not exist"),
                }
            }
            ("count_down", "delete_rule") => {
                let id = params.get("id").and_then(Value::as_str).unwrap_or_default();
                let slot = &mut self.outlets[first].rule;
                if slot.as_ref().is_some_and(|r| r.id == id) {
                    *slot = None;
                    ok(json!({}))
                } else {
                    err(-14, "entry not exist")
                }
            }
            ("count_down", "delete_all_rules") => {
                self.outlets[first].rule = None;
                ok(json!({}))
            }
            ("time", "get_time") => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let t = time::OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                ok(json!({
                    "year": t.year(), "month": u8::from(t.month()), "mday": t.day(),
                    "hour": t.hour(), "min": t.minute(), "sec": t.second()
                }))
            }
            ("time", "get_timezone") => {
                ok(json!({"index": 39, "zone_str": "UTC", "tz_str": "UTC0", "dst_offset": 0}))
            }
            ("time", "set_timezone") => ok(json!({})),
            ("cnCloud", "get_info") => ok(json!({
                "username": "", "server": "devs.tplinkcloud.com", "binded": 0,
                "cld_connection": 0, "illegalType": -1, "stopConnect": -1,
                "tcspStatus": -1, "fwDlPage": "", "tcspInfo": "", "fwNotifyType": 0
            })),
            ("schedule", "get_rules") => ok(json!({"rule_list": [], "version": 2, "enable": 0})),
            ("schedule", "get_next_action") => ok(json!({"type": -1})),
            ("schedule" | "emeter", "get_daystat") => ok(json!({"day_list": []})),
            ("schedule" | "emeter", "get_monthstat") => ok(json!({"month_list": []})),
            ("emeter", "get_realtime") => {
                let which = targets.map(<[usize]>::to_vec).unwrap_or(all);
                let on = which.iter().filter(|&&i| self.outlets[i].on).count() as u64;
                // 40 W per outlet that is on, at 230 V.
                let power_mw = on * 40_000;
                ok(json!({
                    "voltage_mv": 230_100, "current_ma": power_mw * 1000 / 230_100,
                    "power_mw": power_mw, "total_wh": 1234, "slot_id": first
                }))
            }
            ("emeter", "get_vgain_igain") => ok(json!({"vgain": 13462, "igain": 16835})),
            _ => err(-2, "member not support"),
        }
    }
}
