//! The SMART JSON protocol of Tapo and newer Kasa devices (docs/design.md §7), as a
//! [`Device`] over any [`Transport`] (KLAP v2 today, AES later).
//!
//! A request is `{"method": M, "params": P, "request_time_milis": T,
//! "terminal_uuid": U}`; a reply is `{"error_code": C, "result": R}` with
//! `C == 0` for success (`error_name` has the known codes). What the worker
//! needs:
//!
//! * `component_nego` (once per session, batched with the first
//!   `get_device_info` in a `multipleRequest`) says what the device can do:
//!   `countdown`, `auto_off`, `child_device` for strips.
//! * `get_device_info`: `device_on`, `model`, `fw_ver`, `hw_ver`, `rssi`,
//!   `nickname` (base64).
//! * `set_device_info {"device_on": bool}` switches.
//! * Strips (P300, P304M, P306, TP25, EP40M) list their outlets with
//!   `get_child_device_list` (paged: `start_index`, `sum`) and address one
//!   with `control_child {"device_id", "requestData": <a request>}`. An
//!   outlet is chosen by its 0-based place in that list (what python-kasa's
//!   `--index` means; strips do not list outlets in socket order, each entry
//!   has a 1-based `position`) or by its `device_id`.
//!
//! A reply that names a method other than the one sent (a top-level
//! `method`, or an answer in a `multipleRequest` to a request that was not in
//! it) is [`KasaError::WrongReply`]: retried on a fresh session.
//!
//! Session-level error codes (`SESSION_TIMEOUT_ERROR` 9999 and the others
//! python-kasa retries) renew the transport's session and retry once within
//! the deadline; login errors become [`KasaError::Auth`]; every other code is
//! [`KasaError::Smart`], classified by `is_transient`.
//!
//! # What switches a heater off when the Pi dies
//!
//! The dead-man is armed before the relay closes and re-armed while it is on
//! (docs/design.md §4); if the Pi, its power or the Wi-Fi dies, the device itself
//! opens the relay when the dead-man runs out.
//!
//! | family | mechanism | granularity | can it be extended while on? |
//! |---|---|---|---|
//! | Kasa legacy (HS100/HS110/KP115, HS300/KP303 outlets, also inside KLAP v1) | `count_down` rule, `act` 0 | seconds | yes, by replacing the rule |
//! | Tapo plugs P100 (fw ≥ 1.1), P105, P110, P110M, P115, P125M, TP10, TP15; Kasa KP125M, EP25 | `countdown` component: `add_countdown_rule` / `edit_countdown_rule` with `desired_states.on = false` | seconds | yes, `edit_countdown_rule` restarts it |
//! | Strip outlets P300, P304M, P306, TP25, EP40M | the outlet's own `countdown` through `control_child` | seconds | yes |
//! | a device listing `auto_off` but no `countdown` | `set_auto_off_config {"enable": true, "delay_min": M}` | whole minutes, counted from each switch-on | no: the relay opens M minutes after it closed, whatever the Pi does; the service must switch it on again, so M must exceed the longest wanted heating run, and a dead Pi leaves the heater on for up to M minutes |
//! | a device with neither | none: [`Device::arm_deadman`] answers [`KasaError::Unsupported`] | — | — |
//!
//! Every SMART plug and strip outlet in python-kasa 0.12's recordings lists
//! `countdown` (ver 2, one rule: `countdown_rule_max_count` 1), so the
//! countdown is what they get; `auto_off` is the fallback. python-kasa does
//! not drive SMART countdowns; the request shapes here are those other Tapo
//! clients use. Because a firmware could cancel a countdown when the relay
//! switches, after switching a target on with a countdown armed the rule is
//! read back and re-armed if it is gone.

pub mod codes;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::credentials::base64_decode;
use super::device::{DeadmanKind, Device, Outlet, Status};
use super::error::{KasaError, ReplyError, StateError};
use super::transport::{Transport, TransportKind};
use codes::{error_name, is_session_error};

/// The most requests python-kasa puts in one `multipleRequest`.
const MAX_BATCH: usize = 5;

/// Bounds the child-list paging of a broken or hostile device.
const MAX_PAGES: usize = 16;

/// A SMART reply that is not success.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SmartReplyError {
    /// A non-zero `error_code`.
    Code(i64),
    /// Not the shape of a SMART reply.
    Shape(String),
}

/// Checks `error_code` (required, an integer) and returns `result`
/// (`Value::Null` when absent: `set_*` replies have none).
pub(crate) fn check_reply(reply: &Value) -> Result<&Value, SmartReplyError> {
    static NULL: Value = Value::Null;
    let obj = reply
        .as_object()
        .ok_or_else(|| SmartReplyError::Shape("the reply is not a JSON object".into()))?;
    let code = obj
        .get("error_code")
        .ok_or_else(|| SmartReplyError::Shape("no error_code in the reply".into()))?
        .as_i64()
        .ok_or_else(|| SmartReplyError::Shape("error_code is not an integer".into()))?;
    if code != 0 {
        return Err(SmartReplyError::Code(code));
    }
    Ok(obj.get("result").unwrap_or(&NULL))
}

/// What a device can do: `(component id, version)` from `component_nego`.
pub(crate) type Components = Vec<(String, i64)>;

/// One answer of a `multipleRequest`: the method and its result or code.
pub(crate) type MultiAnswer = (String, Result<Value, i64>);

/// The answers of a `multipleRequest` as `(method, answer)`. Devices stop at
/// the first failing request, so a method may be missing; a listed one that
/// failed carries its code.
pub(crate) fn split_multi(result: &Value) -> Result<Vec<MultiAnswer>, SmartReplyError> {
    let list = result
        .get("responses")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            SmartReplyError::Shape("multipleRequest answer has no responses list".into())
        })?;
    let mut out = Vec::new();
    for r in list {
        let Some(method) = r.get("method").and_then(Value::as_str) else {
            continue;
        };
        let answer = match check_reply(r) {
            Ok(v) => Ok(v.clone()),
            Err(SmartReplyError::Code(c)) => Err(c),
            Err(SmartReplyError::Shape(s)) => return Err(SmartReplyError::Shape(s)),
        };
        out.push((method.to_string(), answer));
    }
    Ok(out)
}

/// The component ids and versions from a `component_nego` result.
pub(crate) fn parse_components(result: &Value) -> Result<Components, String> {
    let list = result
        .get("component_list")
        .and_then(Value::as_array)
        .ok_or("component_nego has no component_list")?;
    Ok(list
        .iter()
        .filter_map(|c| {
            Some((
                c.get("id")?.as_str()?.to_string(),
                c.get("ver_code").and_then(Value::as_i64).unwrap_or(1),
            ))
        })
        .collect())
}

/// The nickname of a `get_device_info` result or child entry, decoded from base64.
pub fn nickname(info: &Value) -> Option<String> {
    let raw = info.get("nickname")?.as_str()?;
    Some(String::from_utf8_lossy(&base64_decode(raw)?).into_owned())
}

/// A SMART request envelope, with python-kasa's bookkeeping fields.
pub fn request(method: &str, params: Option<Value>, terminal_uuid: &str) -> Value {
    let mut m = Map::new();
    m.insert("method".into(), json!(method));
    if let Some(p) = params {
        m.insert("params".into(), p);
    }
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    m.insert("request_time_milis".into(), json!(ms));
    m.insert("terminal_uuid".into(), json!(terminal_uuid));
    Value::Object(m)
}

fn new_terminal_uuid() -> String {
    use md5::{Digest, Md5};
    let mut seed = [0u8; 16];
    if getrandom::fill(&mut seed).is_err() {
        // Any value works: it only names this client to the device.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        seed = t.to_le_bytes();
    }
    super::credentials::base64_encode(&Md5::digest(seed))
}

/// One outlet's entry in the child list, resolved.
#[derive(Debug, Clone)]
struct Child {
    id: String,
    components: Option<Components>,
}

/// The dead-man this client armed, to check it survived the switch-on.
#[derive(Debug, Clone, Copy)]
struct Armed {
    secs: u32,
    at: Instant,
}

/// One SMART plug, or one outlet of a SMART strip.
pub struct SmartDevice<T: Transport> {
    t: T,
    kind: TransportKind,
    outlet: Option<Outlet>,
    terminal_uuid: String,
    /// `multipleRequest` works on this device (cleared when it refuses one).
    batch: bool,
    components: Option<Components>,
    model: String,
    child: Option<Child>,
    armed: Option<Armed>,
}

impl<T: Transport> std::fmt::Debug for SmartDevice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartDevice")
            .field("addr", &self.t.address())
            .field("outlet", &self.outlet)
            .field("model", &self.model)
            .finish()
    }
}

enum Call {
    Plain(Value),
    Code(i64),
}

impl<T: Transport> SmartDevice<T> {
    /// A device speaking SMART over `transport` (`kind` is what
    /// [`Device::transport_kind`] reports), for the whole plug (`outlet: None`)
    /// or one strip outlet.
    pub fn new(transport: T, kind: TransportKind, outlet: Option<Outlet>) -> SmartDevice<T> {
        SmartDevice {
            t: transport,
            kind,
            outlet,
            terminal_uuid: new_terminal_uuid(),
            // TPAP: plugp100, the one client its devices are known to serve,
            // never batches, so a server made to its measure may not know
            // `multipleRequest` and answer it with any code. One request
            // more at connect is cheaper than a refusal we did not foresee.
            batch: kind != TransportKind::Tpap,
            components: None,
            model: String::new(),
            child: None,
            armed: None,
        }
    }

    /// The transport, for its statistics.
    pub fn transport(&self) -> &T {
        &self.t
    }

    /// The components negotiated for the target (the outlet's own for a strip outlet).
    pub(crate) fn components(&self) -> Option<&Components> {
        match &self.child {
            Some(c) if c.components.is_some() => c.components.as_ref(),
            _ => self.components.as_ref(),
        }
    }

    fn addr(&self) -> String {
        self.t.address().to_string()
    }

    fn shape(&self, detail: impl Into<String>) -> KasaError {
        KasaError::BadReply {
            addr: self.addr(),
            source: ReplyError::Shape(detail.into()),
        }
    }

    fn wrong_reply(&self, sent: &str, got: &str) -> KasaError {
        KasaError::WrongReply {
            addr: self.addr(),
            sent: sent.to_string(),
            got: got.to_string(),
            repeated: false,
        }
    }

    fn code_error(&self, method: &str, code: i64) -> KasaError {
        KasaError::from_code(self.addr(), method, code)
    }

    /// Sends one request envelope; a session-level code renews the session
    /// and retries once. Returns the result, or the device's code.
    fn send(&mut self, req: &Value, method: &str, deadline: Instant) -> Result<Call, KasaError> {
        let mut renewed = false;
        loop {
            let reply = self.t.request(req, deadline)?;
            // A reply that names its method must name the one sent.
            if let Some(got) = reply.get("method").and_then(Value::as_str) {
                if got != method {
                    return Err(self.wrong_reply(method, got));
                }
            }
            match check_reply(&reply) {
                Ok(v) => return Ok(Call::Plain(v.clone())),
                Err(SmartReplyError::Code(c)) if is_session_error(c) && !renewed => {
                    renewed = true;
                    self.t.close();
                }
                Err(SmartReplyError::Code(c)) => return Ok(Call::Code(c)),
                Err(SmartReplyError::Shape(s)) => return Err(self.shape(format!("{method}: {s}"))),
            }
        }
    }

    /// One method on the device itself.
    fn call(
        &mut self,
        method: &str,
        params: Option<Value>,
        deadline: Instant,
    ) -> Result<Value, KasaError> {
        let req = request(method, params, &self.terminal_uuid);
        match self.send(&req, method, deadline)? {
            Call::Plain(v) => Ok(v),
            Call::Code(c) => Err(self.code_error(method, c)),
        }
    }

    /// One method on the target: the device, or the outlet through `control_child`.
    fn call_target(
        &mut self,
        method: &str,
        params: Option<Value>,
        deadline: Instant,
    ) -> Result<Value, KasaError> {
        let Some(child) = self.child.as_ref().map(|c| c.id.clone()) else {
            return self.call(method, params, deadline);
        };
        let mut inner = Map::new();
        inner.insert("method".into(), json!(method));
        if let Some(p) = params {
            inner.insert("params".into(), p);
        }
        let outer = json!({"device_id": child, "requestData": Value::Object(inner)});
        let what = format!("control_child({method})");
        let result = self.call("control_child", Some(outer), deadline)?;
        let data = result
            .get("responseData")
            .ok_or_else(|| self.shape(format!("{what}: no responseData")))?;
        match check_reply(data) {
            Ok(v) => Ok(v.clone()),
            Err(SmartReplyError::Code(c)) => Err(self.code_error(&what, c)),
            Err(SmartReplyError::Shape(s)) => Err(self.shape(format!("{what}: {s}"))),
        }
    }

    /// Several methods, batched in `multipleRequest`s of at most
    /// [`MAX_BATCH`] where the device takes them, each missing answer asked
    /// alone. Every answer must be a success.
    fn multi(
        &mut self,
        methods: &[(&str, Option<Value>)],
        deadline: Instant,
    ) -> Result<Vec<(String, Value)>, KasaError> {
        let mut got: Vec<(String, Value)> = Vec::new();
        if self.batch && methods.len() > 1 {
            for chunk in methods.chunks(MAX_BATCH) {
                let reqs: Vec<Value> = chunk
                    .iter()
                    .map(|(m, p)| match p {
                        Some(p) => json!({"method": m, "params": p}),
                        None => json!({"method": m}),
                    })
                    .collect();
                let req = request(
                    "multipleRequest",
                    Some(json!({ "requests": reqs })),
                    &self.terminal_uuid,
                );
                let sent = match self.send(&req, "multipleRequest", deadline) {
                    // python-kasa saw a P300 never answer some batches: after
                    // a timeout, the next attempt asks one request at a time.
                    Err(e @ KasaError::TimedOut { .. }) => {
                        self.batch = false;
                        return Err(e);
                    }
                    other => other?,
                };
                match sent {
                    Call::Plain(v) => {
                        let answers = match split_multi(&v) {
                            Ok(a) => a,
                            Err(SmartReplyError::Shape(s)) => return Err(self.shape(s)),
                            Err(SmartReplyError::Code(c)) => {
                                return Err(self.code_error("multipleRequest", c))
                            }
                        };
                        let asked: Vec<&str> = chunk.iter().map(|(m, _)| *m).collect();
                        if let Some((m, _)) =
                            answers.iter().find(|(m, _)| !asked.contains(&m.as_str()))
                        {
                            let sent = format!("multipleRequest({})", asked.join("+"));
                            return Err(self.wrong_reply(&sent, m));
                        }
                        for (m, a) in answers {
                            match a {
                                Ok(v) => got.push((m, v)),
                                Err(c) => return Err(self.code_error(&m, c)),
                            }
                        }
                    }
                    // Devices that cannot take a batch (python-kasa saw
                    // these on P100; a TPAP server modelled on plugp100,
                    // which never batches, may answer -1008 or -1): ask one
                    // by one from now on.
                    Call::Code(c @ (-1003 | -1002 | -1001 | -1008 | -1 | 1200)) => {
                        log::info!(
                            "{}: multipleRequest refused ({c} {}); sending single requests",
                            self.addr(),
                            error_name(c)
                        );
                        self.batch = false;
                        break;
                    }
                    Call::Code(c) => return Err(self.code_error("multipleRequest", c)),
                }
            }
        }
        for (m, p) in methods {
            if !got.iter().any(|(k, _)| k == m) {
                let v = self.call(m, p.clone(), deadline)?;
                got.push((m.to_string(), v));
            }
        }
        Ok(got)
    }

    /// The whole child list, following `start_index` pages.
    fn child_pages(
        &mut self,
        method: &str,
        list_key: &str,
        first: Option<Value>,
        deadline: Instant,
    ) -> Result<Vec<Value>, KasaError> {
        let first = match first {
            Some(v) => v,
            None => self.call(method, Some(json!({"start_index": 0})), deadline)?,
        };
        let list_of = |v: &Value| v.get(list_key).and_then(Value::as_array).cloned();
        let mut all =
            list_of(&first).ok_or_else(|| self.shape(format!("{method}: no {list_key}")))?;
        let sum = first.get("sum").and_then(Value::as_u64).unwrap_or(0) as usize;
        let mut pages = 1;
        while all.len() < sum && pages < MAX_PAGES {
            let next = self.call(method, Some(json!({"start_index": all.len()})), deadline)?;
            let more =
                list_of(&next).ok_or_else(|| self.shape(format!("{method}: no {list_key}")))?;
            if more.is_empty() {
                break;
            }
            all.extend(more);
            pages += 1;
        }
        Ok(all)
    }

    fn find_child<'a>(&self, list: &'a [Value], outlet: &Outlet) -> Result<&'a Value, KasaError> {
        let found = match outlet {
            Outlet::Index(i) => list.get(*i),
            Outlet::Id(id) => list.iter().find(|c| {
                let cid = c
                    .get("device_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                cid == id || (id.len() <= 2 && !id.is_empty() && cid.ends_with(id.as_str()))
            }),
        };
        found.ok_or_else(|| KasaError::Outlet {
            addr: self.addr(),
            source: StateError::NoSuchOutlet {
                outlet: outlet.to_string(),
                available: list
                    .iter()
                    .map(|c| {
                        c.get("device_id")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                            .to_string()
                    })
                    .collect(),
            },
        })
    }

    /// Reads the device (and the outlet, for a strip), negotiating first in
    /// a fresh session. Returns the device info and the target's entry.
    fn refresh(&mut self, deadline: Instant) -> Result<(Value, Value), KasaError> {
        let mut methods: Vec<(&str, Option<Value>)> = Vec::new();
        if self.components.is_none() {
            methods.push(("component_nego", None));
        }
        methods.push(("get_device_info", None));
        if self.outlet.is_some() {
            methods.push(("get_child_device_list", Some(json!({"start_index": 0}))));
        }
        let mut got = self.multi(&methods, deadline)?;
        let mut take = |name: &str| {
            got.iter()
                .position(|(k, _)| k == name)
                .map(|i| got.swap_remove(i).1)
        };
        if let Some(c) = take("component_nego") {
            let comps = parse_components(&c).map_err(|e| self.shape(e))?;
            self.components = Some(comps);
        }
        let info = take("get_device_info")
            .filter(Value::is_object)
            .ok_or_else(|| self.shape("get_device_info: no result object"))?;
        if let Some(m) = info.get("model").and_then(Value::as_str) {
            self.model = m.to_string();
        }
        // A bulb or light strip has `device_on` too, but it is no relay.
        if is_light(&info) {
            return Err(self.no_relay(self.model.clone()));
        }
        let Some(outlet) = self.outlet.clone() else {
            let parent = self.has_child_device() && info.get("device_on").is_none();
            if parent {
                // A strip's children are outlets; a hub's are sensors and valves.
                let list = self.child_pages(
                    "get_child_device_list",
                    "child_device_list",
                    take("get_child_device_list"),
                    deadline,
                )?;
                let relays = list.iter().filter(|c| c.get("device_on").is_some()).count();
                return Err(if relays == 0 {
                    self.no_relay(self.model.clone())
                } else {
                    KasaError::Outlet {
                        addr: self.addr(),
                        source: StateError::StripNeedsOutlet {
                            model: self.model.clone(),
                            outlets: Some(list.len()),
                        },
                    }
                });
            }
            return Ok((info.clone(), info));
        };
        let first = take("get_child_device_list");
        let list = self.child_pages(
            "get_child_device_list",
            "child_device_list",
            first,
            deadline,
        )?;
        let entry = self.find_child(&list, &outlet)?.clone();
        let id = entry
            .get("device_id")
            .and_then(Value::as_str)
            .ok_or_else(|| self.shape("child entry without device_id"))?
            .to_string();
        if self.child.as_ref().is_none_or(|c| c.id != id) {
            self.child = Some(Child {
                id,
                components: None,
            });
        }
        Ok((info, entry))
    }

    fn no_relay(&self, model: String) -> KasaError {
        KasaError::Outlet {
            addr: self.addr(),
            source: StateError::NoRelay { model },
        }
    }

    fn status_of(&self, info: &Value, entry: &Value) -> Result<Status, KasaError> {
        let on = entry
            .get("device_on")
            .and_then(Value::as_bool)
            .ok_or_else(|| {
                // A hub's sensor, a vacuum, a chime: nothing to switch.
                let model = ["model", "device_model", "category"]
                    .iter()
                    .find_map(|k| entry.get(*k).and_then(Value::as_str))
                    .unwrap_or(&self.model);
                self.no_relay(model.to_string())
            })?;
        Ok(Status {
            on,
            rssi: info.get("rssi").and_then(Value::as_i64),
            model: self.model.clone(),
        })
    }

    /// Makes sure the outlet is resolved and the target's components known.
    fn ensure_target(&mut self, deadline: Instant) -> Result<(), KasaError> {
        if self.components.is_none() || (self.outlet.is_some() && self.child.is_none()) {
            self.refresh(deadline)?;
        }
        let needs_child_components = self.child.as_ref().is_some_and(|c| c.components.is_none());
        if needs_child_components {
            let list = self.child_pages(
                "get_child_device_component_list",
                "child_component_list",
                None,
                deadline,
            )?;
            let id = self
                .child
                .as_ref()
                .map(|c| c.id.clone())
                .unwrap_or_default();
            let entry = list
                .iter()
                .find(|e| e.get("device_id").and_then(Value::as_str) == Some(id.as_str()))
                .ok_or_else(|| self.shape(format!("no component list for child {id}")))?;
            let comps = parse_components(entry).map_err(|e| self.shape(e))?;
            if let Some(c) = self.child.as_mut() {
                c.components = Some(comps);
            }
        }
        Ok(())
    }

    fn has(&self, component: &str) -> bool {
        self.components()
            .is_some_and(|c| c.iter().any(|(id, _)| id == component))
    }

    /// The countdown rules of the target: `(id, enabled)` of each.
    fn countdown_rules(&mut self, deadline: Instant) -> Result<Vec<(String, bool)>, KasaError> {
        let r = self.call_target("get_countdown_rules", None, deadline)?;
        let list = r
            .get("rule_list")
            .and_then(Value::as_array)
            .ok_or_else(|| self.shape("get_countdown_rules: no rule_list"))?;
        Ok(list
            .iter()
            .filter_map(|rule| {
                Some((
                    rule.get("id")?.as_str()?.to_string(),
                    rule.get("enable").and_then(Value::as_bool).unwrap_or(false),
                ))
            })
            .collect())
    }

    fn put_countdown(&mut self, secs: u32, deadline: Instant) -> Result<(), KasaError> {
        let rules = self.countdown_rules(deadline)?;
        let rule = json!({
            "delay": secs, "desired_states": {"on": false}, "enable": true, "remain": secs
        });
        match rules.first() {
            // One rule per target: replace it in place.
            Some((id, _)) => {
                let mut p = rule;
                p["id"] = json!(id);
                self.call_target("edit_countdown_rule", Some(p), deadline)?;
            }
            None => {
                self.call_target("add_countdown_rule", Some(rule), deadline)?;
            }
        }
        Ok(())
    }
}

impl<T: Transport> Device for SmartDevice<T> {
    fn is_smart(&self) -> bool {
        true
    }

    fn address(&self) -> &str {
        self.t.address()
    }

    fn transport_kind(&self) -> TransportKind {
        self.kind
    }

    fn read(&mut self, deadline: Instant) -> Result<Status, KasaError> {
        let (info, entry) = self.refresh(deadline)?;
        self.status_of(&info, &entry)
    }

    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError> {
        self.ensure_target(deadline)?;
        self.call_target(
            "set_device_info",
            Some(json!({ "device_on": on })),
            deadline,
        )?;
        if let (true, Some(a)) = (on, self.armed) {
            if self.has("countdown") {
                // Guard against firmware that cancels a countdown when the
                // relay switches: the rule armed before must still run.
                let running = self.countdown_rules(deadline)?.iter().any(|(_, e)| *e);
                if !running {
                    let left =
                        Duration::from_secs(u64::from(a.secs)).saturating_sub(a.at.elapsed());
                    let secs = (left.as_secs_f64().ceil() as u32).max(1);
                    log::warn!(
                        "{}: the countdown armed before switching on was gone; re-armed for {secs} s",
                        self.addr()
                    );
                    self.put_countdown(secs, deadline)?;
                }
            }
        }
        Ok(())
    }

    fn arm_deadman(
        &mut self,
        delay: Duration,
        deadline: Instant,
    ) -> Result<DeadmanKind, KasaError> {
        self.ensure_target(deadline)?;
        let secs = (delay.as_secs_f64().ceil().min(f64::from(u32::MAX)) as u32).max(1);
        if self.has("countdown") {
            self.put_countdown(secs, deadline)?;
            self.armed = Some(Armed {
                secs,
                at: Instant::now(),
            });
            Ok(DeadmanKind::Countdown { secs })
        } else if self.has("auto_off") {
            let minutes = secs.div_ceil(60).max(1);
            self.call_target(
                "set_auto_off_config",
                Some(json!({"enable": true, "delay_min": minutes})),
                deadline,
            )?;
            Ok(DeadmanKind::AutoOff { minutes })
        } else {
            Err(KasaError::Unsupported {
                addr: self.addr(),
                model: self.model.clone(),
                what: "countdown or auto-off, so no dead-man can be armed".into(),
            })
        }
    }

    fn clear_deadman(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.ensure_target(deadline)?;
        self.armed = None;
        if self.has("countdown") {
            let r = self.call_target("get_countdown_rules", None, deadline)?;
            let rules: Vec<Value> = r
                .get("rule_list")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for rule in rules {
                if rule.get("enable").and_then(Value::as_bool) != Some(true) {
                    continue;
                }
                let Some(id) = rule.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let p = json!({
                    "id": id,
                    "enable": false,
                    "delay": rule.get("delay").cloned().unwrap_or(json!(0)),
                    "desired_states": rule.get("desired_states").cloned()
                        .unwrap_or(json!({"on": false})),
                    "remain": 0,
                });
                self.call_target("edit_countdown_rule", Some(p), deadline)?;
            }
            Ok(())
        } else if self.has("auto_off") {
            let cur = self.call_target("get_auto_off_config", None, deadline)?;
            let minutes = cur.get("delay_min").and_then(Value::as_u64).unwrap_or(120);
            self.call_target(
                "set_auto_off_config",
                Some(json!({"enable": false, "delay_min": minutes})),
                deadline,
            )?;
            Ok(())
        } else {
            Ok(())
        }
    }

    fn info(&mut self, deadline: Instant) -> Result<Value, KasaError> {
        let (mut info, _) = match self.refresh(deadline) {
            Err(KasaError::Outlet {
                source: StateError::StripNeedsOutlet { .. } | StateError::NoRelay { .. },
                ..
            }) => {
                // A strip asked as a whole (its info plus its outlets), or a
                // device with nothing to switch: what it says of itself.
                let info = self.call("get_device_info", None, deadline)?;
                (info, Value::Null)
            }
            other => other?,
        };
        if self.has_child_device() {
            let list =
                self.child_pages("get_child_device_list", "child_device_list", None, deadline)?;
            info["child_device_list"] = Value::Array(list);
        }
        Ok(info)
    }

    fn close(&mut self) {
        self.t.close();
        self.components = None;
        self.child = None;
    }
}

/// Whether a `get_device_info` is a bulb or light strip's (`SMART.TAPOBULB`,
/// `SMART.KASABULB`...): their `device_on` switches a light, not a relay.
pub(crate) fn is_light(info: &Value) -> bool {
    info.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.contains("BULB") || t.contains("LIGHT"))
}

impl<T: Transport> SmartDevice<T> {
    fn has_child_device(&self) -> bool {
        self.components
            .as_ref()
            .is_some_and(|c| c.iter().any(|(id, _)| id == "child_device"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_and_shapes() {
        let ok = json!({"error_code": 0, "result": {"device_on": true}});
        assert_eq!(check_reply(&ok).unwrap()["device_on"], json!(true));
        assert_eq!(
            check_reply(&json!({"error_code": 0})).unwrap(),
            &Value::Null
        );
        assert_eq!(
            check_reply(&json!({"error_code": -1008})),
            Err(SmartReplyError::Code(-1008))
        );
        for bad in [json!([]), json!({"result": {}}), json!({"error_code": "0"})] {
            assert!(
                matches!(check_reply(&bad), Err(SmartReplyError::Shape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn multi_answers_by_method() {
        let r = json!({"responses": [
            {"method": "get_device_info", "error_code": 0, "result": {"model": "P110"}},
            {"method": "get_countdown_rules", "error_code": -1002},
            {"error_code": 0}
        ]});
        let m = split_multi(&r).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "get_device_info");
        assert_eq!(m[0].1.as_ref().unwrap()["model"], "P110");
        assert_eq!(m[1], ("get_countdown_rules".to_string(), Err(-1002)));
        assert!(split_multi(&json!({})).is_err());
    }

    #[test]
    fn components_and_nickname() {
        let c = parse_components(&json!({"component_list": [
            {"id": "countdown", "ver_code": 2}, {"id": "device"}, {"x": 1}
        ]}))
        .unwrap();
        assert_eq!(c, [("countdown".to_string(), 2), ("device".to_string(), 1)]);
        assert!(parse_components(&json!({})).is_err());
        assert_eq!(
            nickname(&json!({"nickname": "I01BU0tFRF9OQU1FIw=="})).as_deref(),
            Some("#MASKED_NAME#")
        );
        assert_eq!(nickname(&json!({"nickname": "%%"})), None);
    }

    #[test]
    fn request_envelope() {
        let r = request("set_device_info", Some(json!({"device_on": true})), "UU");
        assert_eq!(r["method"], "set_device_info");
        assert_eq!(r["params"]["device_on"], true);
        assert_eq!(r["terminal_uuid"], "UU");
        assert!(r["request_time_milis"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(request("get_device_info", None, "UU")
            .get("params")
            .is_none());
        assert_eq!(new_terminal_uuid().len(), 24);
    }
}
