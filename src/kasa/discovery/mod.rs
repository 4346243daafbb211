//! UDP discovery: the unframed XOR `get_sysinfo` sent to 255.255.255.255:9999
//! (or one target), answered by every legacy plug with its whole sysinfo; and
//! the binary-header probe on UDP 20002 that newer KLAP/AES firmware answers
//! with its model, device type and transport (`mgt_encrypt_schm`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

pub mod probe;

use super::iot::{sysinfo_request, SysInfo};
use super::transport::xor::{decrypt, encrypt, MAX_FRAME};
use probe::{klap_probe_packet, parse_probe_reply, ProbeInfo, KLAP_PORT};

/// The default discovery target.
pub(crate) const BROADCAST: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), 9999);

/// How many times the query is sent over the timeout window (UDP gets lost).
const PACKETS: u32 = 3;

/// A device that answered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Found {
    /// Where the answer came from.
    pub addr: SocketAddr,
    /// Its sysinfo (legacy devices).
    pub sysinfo: Option<SysInfo>,
    /// Its UDP 20002 answer (newer devices): model, type, transport.
    pub probe: Option<ProbeInfo>,
}

impl Found {
    /// The protocol to reach it with (`legacy`, `klap`, `aes`; the
    /// announced scheme in lower case for anything else).
    pub fn protocol(&self) -> String {
        match (&self.sysinfo, &self.probe) {
            (Some(_), _) | (None, None) => "legacy".into(),
            (None, Some(p)) => p.scheme.to_ascii_lowercase(),
        }
    }

    /// Whether it needs TP-Link credentials (KLAP, AES and TPAP do; legacy does not).
    pub(crate) fn needs_credentials(&self) -> bool {
        self.sysinfo.is_none() && self.probe.is_some()
    }

    /// The model: the sysinfo's, else the 20002 answer's `device_model`.
    pub fn model(&self) -> String {
        match (&self.sysinfo, &self.probe) {
            (Some(s), _) if !s.model.is_empty() => s.model.clone(),
            (_, Some(p)) if !p.model.is_empty() => p.model.clone(),
            _ => String::new(),
        }
    }
}

/// Why discovery could not run.
#[derive(Debug)]
pub(crate) struct DiscoveryError {
    /// What failed (bind, send...).
    pub op: String,
    /// The socket error.
    pub source: std::io::Error,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "discovery: {} failed", self.op)
    }
}

impl std::error::Error for DiscoveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Sends the legacy query to `target` and the 20002 probe to the same host
/// (and to `target` itself, where a simulated plug answers it) a few times
/// over `timeout`, and returns every device that answered, in order.
pub(crate) fn discover(
    target: SocketAddr,
    timeout: Duration,
) -> Result<Vec<Found>, DiscoveryError> {
    let err = |op: &str| {
        let op = op.to_string();
        move |source| DiscoveryError { op, source }
    };
    let bind: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(err("bind"))?;
    sock.set_broadcast(true).map_err(err("enable broadcast"))?;
    let query = encrypt(sysinfo_request().to_string().as_bytes());
    let probe = klap_probe_packet();
    let mut probe_targets = vec![SocketAddr::new(target.ip(), KLAP_PORT)];
    if target.port() != KLAP_PORT && target.port() != 9999 {
        probe_targets.push(target);
    }

    let start = Instant::now();
    let end = start + timeout;
    let mut found: Vec<Found> = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    for n in 0..PACKETS {
        sock.send_to(&query, target).map_err(err("send"))?;
        for t in &probe_targets {
            // A probe nobody listens for may bounce back as ICMP; that is not an error here.
            let _ = sock.send_to(&probe, t);
        }
        let next = start + timeout.mul_f64(f64::from(n + 1) / f64::from(PACKETS));
        loop {
            let now = Instant::now();
            if now >= next.min(end) {
                break;
            }
            sock.set_read_timeout(Some(next - now))
                .map_err(err("set timeout"))?;
            match sock.recv_from(&mut buf) {
                Ok((len, from)) => record(&mut found, from, &buf[..len]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // ICMP port unreachable from a probe target surfaces as a refused recv.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(err("receive")(e)),
            }
        }
    }
    Ok(found)
}

/// Adds one datagram to the list, merging the legacy and 20002 answers of a host.
fn record(found: &mut Vec<Found>, from: SocketAddr, data: &[u8]) {
    let (sysinfo, probe) = if let Some(p) = parse_probe_reply(data) {
        (None, Some(p))
    } else {
        let plain = decrypt(data);
        match serde_json::from_slice::<Value>(&plain)
            .ok()
            .and_then(|v| SysInfo::from_reply(&v).ok())
        {
            Some(info) => (Some(info), None),
            None => {
                log::debug!("discovery: ignoring a datagram from {from} that is not a Kasa reply");
                return;
            }
        }
    };
    if let Some(info) = sysinfo {
        // Repeated packets bring repeated answers: one entry per address.
        if let Some(f) = found
            .iter_mut()
            .find(|f| f.addr == from && f.sysinfo.is_some())
        {
            f.sysinfo = Some(info);
        } else if let Some(f) = found
            .iter_mut()
            .find(|f| f.addr.ip() == from.ip() && f.sysinfo.is_none())
        {
            f.addr = from;
            f.sysinfo = Some(info);
        } else {
            found.push(Found {
                addr: from,
                sysinfo: Some(info),
                probe: None,
            });
        }
    } else if let Some(f) = found.iter_mut().find(|f| f.addr.ip() == from.ip()) {
        f.probe = f.probe.take().or(probe);
    } else {
        found.push(Found {
            addr: from,
            sysinfo: None,
            probe,
        });
    }
}
