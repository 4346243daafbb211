//! The UDP 20002 probe of newer (KLAP/AES) firmware: the packet (a TDP
//! header with its CRC-32), what a device says about itself in its answer,
//! and sending it to one host. A leaf: the legacy transport asks it whether a
//! device that refuses port 9999 speaks KLAP or AES, discovery broadcasts it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// The UDP port newer firmware answers the binary probe on.
pub(crate) const KLAP_PORT: u16 = 20002;

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

/// Sends the 20002 probe to `ip` on each of `ports` and waits up to `timeout`
/// for an answer; returns the scheme it announced.
pub(crate) fn klap_probe(ip: IpAddr, ports: &[u16], timeout: Duration) -> Option<String> {
    probe(ip, ports, timeout).map(|p| p.scheme)
}

/// Sends the UDP 20002 probe to `ip` on `ports` and returns the first
/// answer's description, waiting at most `timeout`.
pub(crate) fn probe(ip: IpAddr, ports: &[u16], timeout: Duration) -> Option<ProbeInfo> {
    let bind: SocketAddr = if ip.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).ok()?;
    let probe = klap_probe_packet();
    for &p in ports {
        let _ = sock.send_to(&probe, (ip, p));
    }
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        let left = end.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        match sock.recv_from(&mut buf) {
            Ok((len, from)) if from.ip() == ip => {
                if let Some(p) = parse_probe_reply(&buf[..len]) {
                    return Some(p);
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(_) => return None,
        }
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
