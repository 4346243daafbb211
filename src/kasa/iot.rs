//! The legacy "IOT" JSON protocol (docs/design.md §7) as a [`Device`]: `get_sysinfo`,
//! `set_relay_state` (with the child context for a strip outlet) and the
//! `count_down` dead-man rule, over any [`Transport`] — the XOR transport on
//! port 9999, or KLAP v1 for the newer firmware that closed that port.
//!
//! The wire side has no I/O and is tested on plain values: request builders,
//! `err_code` checked at module and method level ([`extract`]), and the typed
//! replies ([`SysInfo`], [`CountdownRule`], [`Emeter`]), read liberally.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::device::{DeadmanKind, Device, Outlet, Status};
use super::error::{KasaError, ReplyError, StateError};
use super::transport::{Transport, TransportKind};
use crate::msg::plug::deadman_secs;

/// `{"system":{"get_sysinfo":{}}}`.
pub(crate) fn sysinfo_request() -> Value {
    json!({"system": {"get_sysinfo": {}}})
}

/// `{"module":{"method":params}}`, with the child context for a strip outlet.
pub fn request(child: Option<&str>, module: &str, method: &str, params: Value) -> Value {
    let mut req = json!({ module: { method: params } });
    if let Some(id) = child {
        req["context"] = json!({"child_ids": [id]});
    }
    req
}

fn device_error(v: &Value, module: &str, method: Option<&str>) -> Option<ReplyError> {
    let code = v.get("err_code")?;
    let code = code.as_i64().unwrap_or(-1);
    if code == 0 {
        return None;
    }
    Some(ReplyError::Device {
        module: module.to_string(),
        method: method.map(str::to_string),
        code,
        msg: v
            .get("err_msg")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string(),
    })
}

/// Picks `reply[module][method]`, checking `err_code` at both levels; a
/// missing module or method is an error, as is a non-object answer.
pub fn extract<'a>(reply: &'a Value, module: &str, method: &str) -> Result<&'a Value, ReplyError> {
    let m = reply
        .get(module)
        .ok_or_else(|| ReplyError::Shape(format!("no `{module}` in the reply")))?;
    if let Some(e) = device_error(m, module, None) {
        return Err(e);
    }
    let r = m
        .get(method)
        .ok_or_else(|| ReplyError::Shape(format!("no `{module}.{method}` in the reply")))?;
    if !r.is_object() {
        return Err(ReplyError::Shape(format!(
            "`{module}.{method}` is not an object"
        )));
    }
    if let Some(e) = device_error(r, module, Some(method)) {
        return Err(e);
    }
    Ok(r)
}

fn decode<T: for<'de> Deserialize<'de>>(v: &Value, what: &str) -> Result<T, ReplyError> {
    T::deserialize(v).map_err(|e| ReplyError::Shape(format!("{what}: {e}")))
}

/// One outlet of a power strip, from `children` in its sysinfo.
///
/// Only what the service needs is typed; a device's other fields (and
/// fields of a surprising type, such as the negative `on_time` of an HS300
/// on firmware 1.0.10) never make the reply unusable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// The child id: usually deviceId + two digits, on some firmware only the digits.
    pub id: String,
    /// The outlet's name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub alias: String,
    /// Whether the outlet is on (`state` 0/1).
    #[serde(deserialize_with = "flag")]
    pub state: bool,
    /// Everything else the device sent about the outlet.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// The answer of `system.get_sysinfo`: the fields the program uses, read
/// liberally (a field it does not need never makes the reply unusable).
/// `plug sysinfo` prints the device's own JSON, not this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SysInfo {
    /// On/off on single plugs; absent on strips, bulbs and sensors.
    #[serde(default, deserialize_with = "opt_flag")]
    pub relay_state: Option<bool>,
    /// The name given in the app.
    #[serde(default, deserialize_with = "lenient_string")]
    pub alias: String,
    /// For example `HS110(EU)`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub model: String,
    /// The MAC address (`mac`, or `mic_mac` on some firmware).
    #[serde(default, alias = "mic_mac", deserialize_with = "lenient_string")]
    pub mac: String,
    /// The device id (40 hex digits).
    #[serde(rename = "deviceId", default, deserialize_with = "lenient_string")]
    pub device_id: String,
    /// Strip outlets.
    #[serde(default, deserialize_with = "children")]
    pub children: Vec<Child>,
    /// Wi-Fi signal in dBm.
    #[serde(default, deserialize_with = "lenient")]
    pub rssi: Option<i64>,
    /// Everything else the device sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Takes any JSON value and keeps it only if it has the wanted type.
fn lenient<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    let v = Value::deserialize(de)?;
    Ok(T::deserialize(v).ok())
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(lenient::<D, String>(de)?.unwrap_or_default())
}

/// 0/1 (or false/true) as a flag; anything else is an error of this field.
fn flag<'de, D: serde::Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
    match Value::deserialize(de)? {
        Value::Bool(b) => Ok(b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        other => Err(serde::de::Error::custom(format!(
            "expected 0 or 1, found {other}"
        ))),
    }
}

fn opt_flag<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    flag(de).map(Some)
}

/// The strip's children; a device that sends something else has none we can use.
fn children<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<Child>, D::Error> {
    let v = Value::deserialize(de)?;
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                Child::deserialize(c)
                    .map_err(|e| serde::de::Error::custom(format!("children[{i}]: {e}")))
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

impl SysInfo {
    /// Parses a whole `get_sysinfo` reply (with its module and method levels).
    pub fn from_reply(reply: &Value) -> Result<SysInfo, ReplyError> {
        let v = extract(reply, "system", "get_sysinfo")?;
        decode(v, "get_sysinfo")
    }

    /// Whether this is a power strip.
    pub fn is_strip(&self) -> bool {
        !self.children.is_empty()
    }

    /// Whether the device has an energy meter.
    pub fn has_emeter(&self) -> bool {
        self.extra
            .get("feature")
            .and_then(Value::as_str)
            .is_some_and(|f| f.contains("ENE"))
    }

    /// The child addressed by `outlet`. An id matches in full (deviceId + "NN")
    /// or by its two-digit suffix, as real strips accept both.
    pub(crate) fn child(&self, outlet: &Outlet) -> Result<&Child, StateError> {
        if self.children.is_empty() {
            return Err(if self.relay_state.is_some() {
                StateError::NotAStrip {
                    model: self.model.clone(),
                }
            } else {
                StateError::NoRelay {
                    model: self.model.clone(),
                }
            });
        }
        let found = match outlet {
            Outlet::Index(i) => self.children.get(*i),
            Outlet::Id(id) => self.children.iter().find(|c| {
                c.id == *id
                    || (id.len() == 2 && c.id.ends_with(id.as_str()))
                    || (c.id.len() == 2 && id.ends_with(c.id.as_str()) && id.len() > 2)
            }),
        };
        found.ok_or_else(|| StateError::NoSuchOutlet {
            outlet: outlet.to_string(),
            available: self.children.iter().map(|c| c.id.clone()).collect(),
        })
    }

    /// The full child id to put in the request context for `outlet`.
    pub fn child_id(&self, outlet: &Outlet) -> Result<String, StateError> {
        let c = self.child(outlet)?;
        if c.id.len() == 2 && !self.device_id.is_empty() {
            Ok(format!("{}{}", self.device_id, c.id))
        } else {
            Ok(c.id.clone())
        }
    }

    /// The relay state (single plug) or the outlet's state (strip).
    pub fn state_of(&self, outlet: Option<&Outlet>) -> Result<bool, StateError> {
        match outlet {
            Some(o) => Ok(self.child(o)?.state),
            None => match (self.relay_state, self.is_strip()) {
                (Some(on), _) => Ok(on),
                (None, true) => Err(StateError::StripNeedsOutlet {
                    model: self.model.clone(),
                    outlets: Some(self.children.len()),
                }),
                (None, false) => Err(StateError::NoRelay {
                    model: self.model.clone(),
                }),
            },
        }
    }
}

/// A `count_down` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountdownRule {
    /// The rule id given by the device.
    #[serde(default)]
    pub id: String,
    /// The rule's name.
    #[serde(default)]
    pub name: String,
    /// 1 when armed.
    #[serde(default)]
    pub enable: u8,
    /// Seconds from arming to acting.
    #[serde(default)]
    pub delay: u32,
    /// The state it switches to (0 off, 1 on).
    #[serde(default)]
    pub act: u8,
    /// Seconds left, when the device reports it.
    #[serde(default)]
    pub remain: Option<u32>,
}

/// Parses a `count_down.get_rules` reply.
pub(crate) fn parse_countdown_rules(reply: &Value) -> Result<Vec<CountdownRule>, ReplyError> {
    let v = extract(reply, "count_down", "get_rules")?;
    let list = v
        .get("rule_list")
        .ok_or_else(|| ReplyError::Shape("no `rule_list` in count_down.get_rules".into()))?;
    decode(list, "count_down.get_rules rule_list")
}

/// An energy meter reading, in SI units whatever the firmware's style.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Emeter {
    /// Watts.
    pub power_w: f64,
    /// Volts.
    pub voltage_v: f64,
    /// Amperes.
    pub current_a: f64,
    /// Kilowatt-hours since the meter was reset.
    pub total_kwh: f64,
}

impl Emeter {
    /// Parses an `emeter.get_realtime` reply in either unit style: floats
    /// (`power`, `voltage`, `current`, `total` in W, V, A, kWh: HS110 hw1) or
    /// integers (`power_mw`, `voltage_mv`, `current_ma`, `total_wh`: later models).
    pub fn from_reply(reply: &Value) -> Result<Emeter, ReplyError> {
        let v = extract(reply, "emeter", "get_realtime")?;
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        let pick = |milli: &str, unit: &str, scale: f64| -> Result<f64, ReplyError> {
            if let Some(x) = num(milli) {
                Ok(x / scale)
            } else if let Some(x) = num(unit) {
                Ok(x)
            } else {
                Err(ReplyError::Shape(format!(
                    "emeter.get_realtime has neither `{milli}` nor `{unit}`"
                )))
            }
        };
        Ok(Emeter {
            power_w: pick("power_mw", "power", 1000.0)?,
            voltage_v: pick("voltage_mv", "voltage", 1000.0)?,
            current_a: pick("current_ma", "current", 1000.0)?,
            total_kwh: pick("total_wh", "total", 1000.0)?,
        })
    }
}

/// Whether `reply` answers `module.method`: it has the module, and in it
/// the method or a module-level `err_code`. A JSON object that answers
/// something else (a late reply to an earlier request, a frame the plug sent
/// on its own) is [`KasaError::WrongReply`]; anything that is not an object
/// is left to [`extract`] to name.
pub(crate) fn check_answers(
    addr: &str,
    reply: &Value,
    module: &str,
    method: &str,
) -> Result<(), KasaError> {
    let Some(obj) = reply.as_object() else {
        return Ok(());
    };
    let answered = obj
        .get(module)
        .is_some_and(|m| m.get(method).is_some() || m.get("err_code").is_some());
    if answered {
        return Ok(());
    }
    let got = super::transport::describe(reply);
    Err(KasaError::WrongReply {
        addr: addr.to_string(),
        sent: format!("{module}.{method}"),
        got: if obj.is_empty() {
            "nothing (an empty object)".into()
        } else {
            got
        },
        repeated: false,
    })
}

/// The name of the dead-man countdown rule on the plug.
pub(crate) const DEADMAN_RULE_NAME: &str = "kasa-thermostat deadman";

/// A legacy plug, or one outlet of a legacy strip.
pub struct IotDevice<T> {
    transport: T,
    kind: TransportKind,
    outlet: Option<Outlet>,
    /// The outlet's full child id, once resolved from a sysinfo.
    child_id: Option<String>,
}

impl<T: Transport> IotDevice<T> {
    /// The device behind `transport`, addressing `outlet` on a strip.
    /// `kind` names the transport in use, for messages.
    pub fn new(transport: T, outlet: Option<Outlet>, kind: TransportKind) -> IotDevice<T> {
        IotDevice {
            transport,
            kind,
            outlet,
            child_id: None,
        }
    }

    fn addr(&self) -> String {
        self.transport.address().to_string()
    }

    /// Sends `req` (for `module.method`) and returns the whole reply, once
    /// it is known to answer that request.
    fn exchange(
        &mut self,
        req: &Value,
        module: &str,
        method: &str,
        deadline: Instant,
    ) -> Result<Value, KasaError> {
        let reply = self.transport.request(req, deadline)?;
        check_answers(self.transport.address(), &reply, module, method)?;
        Ok(reply)
    }

    /// Sends one request and picks `module.method` out of the reply,
    /// checking `err_code` at both levels.
    pub fn call(
        &mut self,
        module: &str,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value, KasaError> {
        let req = request(self.child_id.as_deref(), module, method, params);
        let reply = self.exchange(&req, module, method, deadline)?;
        extract(&reply, module, method)
            .cloned()
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// `system.get_sysinfo`, parsed.
    pub fn sysinfo(&mut self, deadline: Instant) -> Result<SysInfo, KasaError> {
        let reply = self.exchange(&sysinfo_request(), "system", "get_sysinfo", deadline)?;
        SysInfo::from_reply(&reply).map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// The state of the target, resolving the outlet's child id on the way.
    fn state(&mut self, deadline: Instant) -> Result<(bool, SysInfo), KasaError> {
        let info = self.sysinfo(deadline)?;
        let outlet_err = |source| KasaError::Outlet {
            addr: self.addr(),
            source,
        };
        if let Some(o) = &self.outlet {
            self.child_id = Some(info.child_id(o).map_err(outlet_err)?);
        }
        let on = info
            .state_of(self.outlet.as_ref())
            .map_err(|source| KasaError::Outlet {
                addr: self.addr(),
                source,
            })?;
        Ok((on, info))
    }

    /// A strip outlet is addressed by its child id, learned from a sysinfo.
    fn resolve(&mut self, deadline: Instant) -> Result<(), KasaError> {
        if self.outlet.is_some() && self.child_id.is_none() {
            self.state(deadline)?;
        }
        Ok(())
    }

    /// `count_down.get_rules` of the target.
    pub fn countdown_rules(&mut self, deadline: Instant) -> Result<Vec<CountdownRule>, KasaError> {
        self.resolve(deadline)?;
        let req = request(
            self.child_id.as_deref(),
            "count_down",
            "get_rules",
            json!({}),
        );
        let reply = self.exchange(&req, "count_down", "get_rules", deadline)?;
        parse_countdown_rules(&reply)
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// `emeter.get_realtime` of the target, in W, V, A and kWh.
    pub fn emeter(&mut self, deadline: Instant) -> Result<Emeter, KasaError> {
        self.resolve(deadline)?;
        let req = request(
            self.child_id.as_deref(),
            "emeter",
            "get_realtime",
            json!({}),
        );
        let reply = self.exchange(&req, "emeter", "get_realtime", deadline)?;
        Emeter::from_reply(&reply).map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }
}

impl<T: Transport> Device for IotDevice<T> {
    fn address(&self) -> &str {
        self.transport.address()
    }

    fn transport_kind(&self) -> TransportKind {
        self.kind
    }

    fn read(&mut self, deadline: Instant) -> Result<Status, KasaError> {
        let (on, info) = self.state(deadline)?;
        Ok(Status {
            on,
            rssi: info.rssi,
            model: info.model,
        })
    }

    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError> {
        self.resolve(deadline)?;
        self.call(
            "system",
            "set_relay_state",
            json!({ "state": u8::from(on) }),
            deadline,
        )
        .map(drop)
    }

    /// A plug holds one countdown rule (`add_rule` on a full table answers
    /// `-10 table is full`), so the old rules go first, in their own request:
    /// the order of two methods inside one request is up to the firmware.
    fn arm_deadman(
        &mut self,
        delay: Duration,
        deadline: Instant,
    ) -> Result<DeadmanKind, KasaError> {
        self.resolve(deadline)?;
        let secs = deadman_secs(delay);
        self.call("count_down", "delete_all_rules", json!({}), deadline)?;
        let params = json!({"enable": 1, "delay": secs, "act": 0, "name": DEADMAN_RULE_NAME});
        self.call("count_down", "add_rule", params, deadline)?;
        Ok(DeadmanKind::Countdown { secs })
    }

    fn clear_deadman(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.resolve(deadline)?;
        self.call("count_down", "delete_all_rules", json!({}), deadline)
            .map(drop)
    }

    fn info(&mut self, deadline: Instant) -> Result<Value, KasaError> {
        let reply = self.exchange(&sysinfo_request(), "system", "get_sysinfo", deadline)?;
        extract(&reply, "system", "get_sysinfo")
            .cloned()
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    fn close(&mut self) {
        self.transport.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_answers_its_request_or_is_a_wrong_reply() {
        let ok = json!({"system": {"set_relay_state": {"err_code": 0}}});
        assert!(check_answers("h:1", &ok, "system", "set_relay_state").is_ok());
        // A module-level error answers the request too (extract names it).
        let refused = json!({"emeter": {"err_code": -1, "err_msg": "module not support"}});
        assert!(check_answers("h:1", &refused, "emeter", "get_realtime").is_ok());
        // Not an object: left for extract to name as a bad shape.
        assert!(check_answers("h:1", &json!(5), "system", "get_sysinfo").is_ok());
        let late = json!({"system": {"get_sysinfo": {"relay_state": 1, "err_code": 0}}});
        match check_answers("h:1", &late, "system", "set_relay_state") {
            Err(e @ KasaError::WrongReply { .. }) => {
                assert!(!e.is_permanent(), "the first wrong answer is retried");
                let text = e.to_string();
                assert!(
                    text.contains("h:1")
                        && text.contains("system.set_relay_state")
                        && text.contains("answers system.get_sysinfo"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        match check_answers("h:1", &json!({}), "count_down", "get_rules") {
            Err(KasaError::WrongReply { got, .. }) => assert!(got.contains("empty"), "{got}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_same_wrong_answer_on_a_fresh_connection_is_permanent() {
        let wrong = |sent: &str, got: &str| KasaError::WrongReply {
            addr: "h:1".into(),
            sent: sent.into(),
            got: got.into(),
            repeated: false,
        };
        let first = wrong("system.get_sysinfo", "system.set_led_off");
        let mut other = wrong("system.get_sysinfo", "count_down.get_rules");
        other.repeats(&first);
        assert!(
            !other.is_permanent(),
            "another wrong answer is another stray frame"
        );
        let mut again = wrong("system.get_sysinfo", "system.set_led_off");
        again.repeats(&first);
        assert!(again.is_permanent());
        assert!(
            again.to_string().contains("again on a fresh connection"),
            "{again}"
        );
    }
}
