//! The wire format of the Kasa legacy protocol (DESIGN §3), with no I/O in the
//! parsers: the XOR autokey codec, the 4-byte length framing, request builders,
//! and typed replies (`SysInfo`, `Emeter`) with `err_code` checked at module and
//! method level. Everything here is tested on plain strings and byte slices.

use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::device::Outlet;

/// The largest frame accepted: a sysinfo is a few KiB, so anything bigger is a
/// broken or hostile peer and is refused before a buffer is allocated.
pub const MAX_FRAME: usize = 64 * 1024;

/// The first key of the autokey cipher.
const KEY: u8 = 171;

/// Encrypts with the autokey cipher: each plaintext byte is XOR-ed with the
/// previous ciphertext byte (171 for the first).
pub fn encrypt(plain: &[u8]) -> Vec<u8> {
    let mut key = KEY;
    plain
        .iter()
        .map(|&p| {
            key ^= p;
            key
        })
        .collect()
}

/// Decrypts the autokey cipher (the inverse of [`encrypt`]).
pub fn decrypt(cipher: &[u8]) -> Vec<u8> {
    let mut key = KEY;
    cipher
        .iter()
        .map(|&c| {
            let p = key ^ c;
            key = c;
            p
        })
        .collect()
}

/// Encrypts `plain` and prefixes the 4-byte big-endian length, so header and
/// body go out in one write (some plugs treat each TCP segment as a message).
///
/// The test vector of DESIGN §3:
///
/// ```
/// use kasa_thermostat::kasa::protocol::{frame, unframe};
///
/// let wire = frame(br#"{"system":{"get_sysinfo":{}}}"#);
/// let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
/// assert_eq!(
///     hex,
///     "0000001dd0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6"
/// );
/// assert_eq!(unframe(&wire).unwrap(), br#"{"system":{"get_sysinfo":{}}}"#);
/// ```
pub fn frame(plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + plain.len());
    out.extend_from_slice(&(plain.len() as u32).to_be_bytes());
    out.extend(encrypt(plain));
    out
}

/// The body length announced by a frame header, refused above [`MAX_FRAME`].
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        Err(FrameError::Oversize(len))
    } else {
        Ok(len)
    }
}

/// Splits one whole frame held in memory into its decrypted body.
pub fn unframe(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    if bytes.len() < 4 {
        return Err(FrameError::Short {
            got: bytes.len(),
            want: 4,
            partial: !bytes.is_empty(),
        });
    }
    let len = frame_len([bytes[0], bytes[1], bytes[2], bytes[3]])?;
    let body = &bytes[4..];
    if body.len() != len {
        return Err(FrameError::Short {
            got: body.len(),
            want: len,
            partial: true,
        });
    }
    Ok(decrypt(body))
}

/// Why a frame could not be read. The client adds the peer's address.
#[derive(Debug)]
pub enum FrameError {
    /// The header announces more than [`MAX_FRAME`] bytes.
    Oversize(usize),
    /// The peer closed the stream after `got` of `want` bytes.
    Short {
        /// Bytes received of the current part (header or body).
        got: usize,
        /// Bytes expected.
        want: usize,
        /// True once at least one byte of the frame had arrived (closed mid-frame).
        partial: bool,
    },
    /// The read failed (timeout, reset...); `partial` says whether any byte of
    /// the frame had arrived.
    Io {
        /// The I/O error.
        source: std::io::Error,
        /// True once at least one byte of the frame was read.
        partial: bool,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Oversize(len) => {
                write!(f, "frame of {len} bytes is over the {MAX_FRAME}-byte limit")
            }
            FrameError::Short { got, want, .. } => {
                write!(f, "stream closed after {got} of {want} bytes")
            }
            FrameError::Io { partial, .. } => {
                if *partial {
                    f.write_str("read failed in the middle of a frame")
                } else {
                    f.write_str("read failed")
                }
            }
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads exactly one frame (4 + N bytes) and returns the decrypted body.
pub fn read_frame<R: Read>(reader: &mut R) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 4];
    read_full(reader, &mut header, false)?;
    let len = frame_len(header)?;
    let mut body = vec![0u8; len];
    read_full(reader, &mut body, true)?;
    Ok(decrypt(&body))
}

fn read_full<R: Read>(reader: &mut R, buf: &mut [u8], started: bool) -> Result<(), FrameError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(FrameError::Short {
                    got,
                    want: buf.len(),
                    partial: started || got > 0,
                })
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(FrameError::Io {
                    source,
                    partial: started || got > 0,
                })
            }
        }
    }
    Ok(())
}

/// The probe that newer (KLAP/AES) firmware answers on UDP 20002: a 16-byte
/// TDP header (version 2, probe op-code, no payload) whose last 4 bytes are the
/// CRC-32 of the header computed with those bytes set to 0x5A6B7C8D.
pub fn klap_probe_packet() -> [u8; 16] {
    let mut pkt = [
        0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x5A, 0x6B, 0x7C,
        0x8D,
    ];
    let crc = crc32(&pkt);
    pkt[12..16].copy_from_slice(&crc.to_be_bytes());
    pkt
}

/// Whether a datagram looks like the 20002 probe (version 2, op-code 1).
pub fn is_klap_probe(data: &[u8]) -> bool {
    data.len() >= 16 && data[0] == 0x02 && data[2..4] == [0x00, 0x01]
}

/// What a newer device says about itself in its UDP 20002 answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub(crate) struct ProbeInfo {
    /// The transport: `KLAP`, `AES` or `TPAP` (`mgt_encrypt_schm.encrypt_type`).
    pub scheme: String,
    /// The HTTP port of that transport (80 on real devices).
    pub http_port: Option<u16>,
    /// `IOT.SMARTPLUGSWITCH` (legacy JSON) or `SMART.TAPOPLUG`, `SMART.KASAPLUG`...
    pub device_type: String,
    /// The model (`P110(EU)`), when given.
    pub model: String,
    /// The MAC address, when given.
    pub mac: String,
    /// The device id, when given.
    pub device_id: String,
    /// The login version (`mgt_encrypt_schm.lv`): 2 on current firmware,
    /// absent on older AES firmware (AES login v1, KLAP v1 for IOT devices).
    pub lv: Option<u8>,
    /// TPAP devices: `false` when the device announces TPAP but does not
    /// prefer it (some KP125M units; KLAP works on those).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpap_preferred: Option<bool>,
    /// `is_support_https`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https: Option<bool>,
}

impl ProbeInfo {
    /// Whether it announces TPAP.
    pub fn is_tpap(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("TPAP")
    }

    /// What it announced, for messages: `TPAP (lv 2, HTTP port 80)`.
    pub fn announced(&self) -> String {
        let mut out = self.scheme.clone();
        let mut parts = Vec::new();
        if let Some(lv) = self.lv {
            parts.push(format!("lv {lv}"));
        }
        if let Some(p) = self.http_port {
            parts.push(format!("HTTP port {p}"));
        }
        if self.https == Some(true) {
            parts.push("HTTPS".into());
        }
        if self.tpap_preferred == Some(false) {
            parts.push("tpap_preferred false".into());
        }
        if !parts.is_empty() {
            out.push_str(&format!(" ({})", parts.join(", ")));
        }
        out
    }

    /// Whether the device speaks the SMART JSON (not the legacy IOT JSON).
    pub fn is_smart(&self) -> bool {
        self.device_type.starts_with("SMART")
    }
}

/// Parses a 20002 answer: a 16-byte header, then JSON with `result`.
pub(crate) fn parse_probe_reply(data: &[u8]) -> Option<ProbeInfo> {
    if data.len() < 16 || data[0] != 0x02 {
        return None;
    }
    let v: Value = serde_json::from_slice(&data[16..]).ok()?;
    let result = v.get("result")?;
    let schm = result.get("mgt_encrypt_schm")?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(ProbeInfo {
        scheme: schm
            .get("encrypt_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string(),
        http_port: schm
            .get("http_port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
        device_type: text(result, "device_type"),
        model: text(result, "device_model"),
        mac: text(result, "mac"),
        device_id: text(result, "device_id"),
        lv: schm
            .get("lv")
            .and_then(Value::as_u64)
            .and_then(|v| u8::try_from(v).ok()),
        // Looked for beside encrypt_type and at the top of the result: the
        // reports do not say where units put it.
        tpap_preferred: schm
            .get("tpap_preferred")
            .or_else(|| result.get("tpap_preferred"))
            .and_then(Value::as_bool),
        https: schm.get("is_support_https").and_then(Value::as_bool),
    })
}

/// The encryption scheme named in a 20002 reply (`KLAP`, `AES`), if it is one.
pub fn parse_klap_reply(data: &[u8]) -> Option<String> {
    parse_probe_reply(data).map(|p| p.scheme)
}

/// CRC-32 (IEEE), bitwise: 16-byte probes do not need a table.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

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

/// Why a reply could not be used. The client adds the peer's address.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyError {
    /// The device answered a non-zero `err_code` (module level when `method` is `None`).
    Device {
        /// The module (`system`, `count_down`...).
        module: String,
        /// The method, or `None` when the module itself was refused.
        method: Option<String>,
        /// The device's error code.
        code: i64,
        /// The device's message.
        msg: String,
    },
    /// The reply lacks a key or has the wrong shape.
    Shape(String),
}

/// `device refused system.set_relay_state: err_code -2 (member not support)`,
/// the one wording of a device error for [`ReplyError`] and `KasaError`.
pub(crate) fn device_refused(module: &str, method: Option<&str>, code: i64, msg: &str) -> String {
    let at = match method {
        Some(m) => format!("{module}.{m}"),
        None => module.to_string(),
    };
    format!("device refused {at}: err_code {code} ({msg})")
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Device {
                module,
                method,
                code,
                msg,
            } => f.write_str(&device_refused(module, method.as_deref(), *code, msg)),
            ReplyError::Shape(detail) => write!(f, "unexpected reply: {detail}"),
        }
    }
}

impl std::error::Error for ReplyError {}

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

/// Why a state could not be taken from a sysinfo. Each of these is
/// permanent: trying again cannot help, so the worker fails at once.
#[derive(Debug, Clone, PartialEq)]
pub enum StateError {
    /// The device has no relay at all (a bulb, a light strip, a sensor).
    NoRelay {
        /// The model, as the device names it.
        model: String,
    },
    /// A power strip addressed without an outlet.
    StripNeedsOutlet {
        /// The model.
        model: String,
        /// How many outlets it has, when known.
        outlets: Option<usize>,
    },
    /// An outlet was asked of a device that is not a power strip.
    NotAStrip {
        /// The model.
        model: String,
    },
    /// The outlet is not among the children.
    NoSuchOutlet {
        /// The outlet asked for.
        outlet: String,
        /// The ids the device has.
        available: Vec<String>,
    },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: &str| {
            if m.is_empty() {
                "this device".to_string()
            } else {
                m.to_string()
            }
        };
        match self {
            StateError::NoRelay { model } => write!(
                f,
                "{} has no relay this service can switch (a bulb, hub or sensor, not a plug or switch)",
                name(model)
            ),
            StateError::StripNeedsOutlet { model, outlets } => match outlets {
                Some(n) => write!(
                    f,
                    "{} is a power strip with {n} outlets: give --outlet N (counted from 0: \
                     0 to {}) or --child ID (config: outlet or child_id)",
                    name(model),
                    n.saturating_sub(1)
                ),
                None => write!(
                    f,
                    "{} is a power strip: give --outlet N (counted from 0) or --child ID \
                     (config: outlet or child_id)",
                    name(model)
                ),
            },
            StateError::NotAStrip { model } => write!(
                f,
                "{} is not a power strip: leave out --outlet/--child (config: outlet, child_id)",
                name(model)
            ),
            StateError::NoSuchOutlet { outlet, available } => {
                write!(
                    f,
                    "outlet {outlet} not found; the device has {} outlets",
                    available.len()
                )?;
                if !available.is_empty() {
                    write!(
                        f,
                        " (--outlet 0 to {}, counted from 0; ids {})",
                        available.len() - 1,
                        available.join(", ")
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StateError {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn probe_matches_python_kasa_constant() {
        // python-kasa's former DISCOVERY_QUERY_2 constant.
        let want = [
            0x02, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x46, 0x3c, 0xb5, 0xd3,
        ];
        assert_eq!(klap_probe_packet(), want);
        assert!(is_klap_probe(&want));
    }
}
