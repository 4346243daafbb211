//! The legacy transport (DESIGN §3): TCP port 9999, each message a 4-byte
//! length and the autokey-XOR payload ([`super::protocol`] has the codec).
//!
//! [`XorTransport`] keeps one connection open between requests (a plug
//! answers in a few milliseconds on a warm socket) and drops it after any
//! error, so the next request starts on a fresh socket. Every request is
//! bounded by its deadline: the connect (which also has its own, shorter
//! timeout), the write, every read, and the one reconnect after a kept-open
//! socket that the plug had closed all fit before it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::KasaError;
use super::protocol::{self, FrameError};
use super::transport::Transport;

/// The longest wait for an answer to the UDP 20002 probe after a refused connect.
const KLAP_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The legacy transport to one plug at `host:port`.
pub struct XorTransport {
    host: String,
    port: u16,
    addr: String,
    connect_timeout: Duration,
    conn: Option<TcpStream>,
    /// The write timeout set on `conn`, to skip a setsockopt when it is unchanged.
    write_timeout: Option<Duration>,
    /// The read timeout set on `conn`.
    read_timeout: Option<Duration>,
    /// Reused for every reply: most replies arrive in one read into it.
    rbuf: Vec<u8>,
}

use super::net::address;
use super::net::{ceil_ms, is_timeout, remaining};

impl XorTransport {
    /// A transport for `host:port`. Nothing happens on the network until the
    /// first request; the host is resolved on every (re)connect, so a plug
    /// that moved to a new DHCP address is found again by name.
    /// `connect_timeout` caps a connect within a request's deadline.
    pub fn new(host: &str, port: u16, connect_timeout: Duration) -> XorTransport {
        XorTransport {
            host: host.to_string(),
            port,
            addr: address(host, port),
            connect_timeout: at_least_1ms(connect_timeout),
            conn: None,
            write_timeout: None,
            read_timeout: None,
            rbuf: Vec::new(),
        }
    }

    fn connect(&self, deadline: Instant, op: &str) -> Result<TcpStream, KasaError> {
        let refused = |sa: SocketAddr, deadline: Instant| {
            // A closed 9999 on a device that answers the 20002 probe speaks
            // KLAP or AES: say so, not "connection refused".
            let probe = KLAP_PROBE_TIMEOUT.min(remaining(deadline).unwrap_or_default());
            let scheme = klap_probe(sa, probe);
            KasaError::Refused {
                addr: self.addr.clone(),
                klap_hint: scheme.is_some(),
                scheme,
            }
        };
        super::net::connect(
            &self.host,
            self.port,
            &self.addr,
            self.connect_timeout,
            deadline,
            op,
            &refused,
        )
    }

    fn exchange(
        &mut self,
        body: &[u8],
        deadline: Instant,
        timeout: Duration,
        op: &str,
    ) -> Result<Value, KasaError> {
        let stream = match self.conn.take() {
            Some(s) => s,
            None => {
                self.write_timeout = None;
                self.read_timeout = None;
                self.connect(deadline, op)?
            }
        };
        let result = self.exchange_on(&stream, body, deadline, timeout, op);
        if result.is_ok() {
            self.conn = Some(stream);
        }
        result
    }

    fn exchange_on(
        &mut self,
        stream: &TcpStream,
        body: &[u8],
        deadline: Instant,
        timeout: Duration,
        op: &str,
    ) -> Result<Value, KasaError> {
        let timed_out = || KasaError::TimedOut {
            addr: self.addr.clone(),
            op: op.to_string(),
            after_ms: ceil_ms(timeout),
        };
        let frame = protocol::frame(body);
        // A request is far smaller than the socket buffer, so the write does
        // not wait for the peer; what is left of the deadline bounds it.
        let wt = at_least_1ms(remaining(deadline).ok_or_else(timed_out)?);
        let mut w = stream;
        let set = if self.write_timeout == Some(wt) {
            Ok(())
        } else {
            self.write_timeout = Some(wt);
            w.set_write_timeout(Some(wt))
        };
        set.and_then(|()| w.write_all(&frame)).map_err(|source| {
            if is_timeout(&source) {
                timed_out()
            } else {
                KasaError::Io {
                    addr: self.addr.clone(),
                    op: format!("sending {op}"),
                    source,
                }
            }
        })?;
        let mut reader = DeadlineReader {
            stream,
            deadline,
            set: &mut self.read_timeout,
        };
        let read = read_reply(&mut reader, &mut self.rbuf);
        let plain = read.map_err(|e| match e {
            FrameError::Oversize(len) => KasaError::Oversize {
                addr: self.addr.clone(),
                len,
            },
            FrameError::Short { partial, .. } => KasaError::Closed {
                addr: self.addr.clone(),
                op: op.to_string(),
                mid_frame: partial,
            },
            FrameError::Io { source, .. } if is_timeout(&source) => timed_out(),
            FrameError::Io { source, .. } => KasaError::Io {
                addr: self.addr.clone(),
                op: format!("reading the reply to {op}"),
                source,
            },
        })?;
        serde_json::from_slice(&plain).map_err(|e| KasaError::BadFrame {
            addr: self.addr.clone(),
            detail: format!("the decrypted reply to {op} is not JSON ({e})"),
        })
    }
}

impl Transport for XorTransport {
    fn address(&self) -> &str {
        &self.addr
    }

    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError> {
        let op = describe(request);
        let body = request.to_string();
        let timeout = remaining(deadline).unwrap_or_default();
        let reused = self.conn.is_some();
        match self.exchange(body.as_bytes(), deadline, timeout, &op) {
            Ok(v) => Ok(v),
            // A plug closes idle connections on its own; a kept-open socket
            // that turns out dead before any reply byte is not the plug's
            // fault, so one retry on a fresh socket is part of the same
            // request, within the same deadline.
            Err(e) if reused && stale_socket(&e) => {
                self.exchange(body.as_bytes(), deadline, timeout, &op)
            }
            Err(e) => Err(e),
        }
    }

    fn close(&mut self) {
        self.conn = None;
    }
}

/// Whether an error on a reused socket means the plug had closed it.
fn stale_socket(e: &KasaError) -> bool {
    match e {
        KasaError::Closed {
            mid_frame: false, ..
        } => true,
        KasaError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// A short name for a request in messages: `system.set_relay_state`.
pub fn describe(req: &Value) -> String {
    let Some(obj) = req.as_object() else {
        return "request".into();
    };
    obj.iter()
        .filter(|(k, _)| k.as_str() != "context")
        .flat_map(|(module, methods)| {
            let names: Vec<String> = match methods.as_object() {
                Some(m) => m.keys().map(|k| format!("{module}.{k}")).collect(),
                None => vec![module.clone()],
            };
            names
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// Reads one frame (4 + N bytes) through `buf`, usually in a single read,
/// and returns the decrypted body. The length is checked before the buffer grows.
fn read_reply<R: Read>(reader: &mut R, buf: &mut Vec<u8>) -> Result<Vec<u8>, FrameError> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut have = 0;
    let mut want = 4;
    let mut header_done = false;
    loop {
        if have >= want {
            if header_done {
                return Ok(protocol::decrypt(&buf[4..want]));
            }
            let len = protocol::frame_len([buf[0], buf[1], buf[2], buf[3]])?;
            header_done = true;
            want = 4 + len;
            if buf.len() < want {
                buf.resize(want, 0);
            }
            continue;
        }
        match reader.read(&mut buf[have..]) {
            Ok(0) => {
                let (got, of) = if header_done {
                    (have - 4, want - 4)
                } else {
                    (have, 4)
                };
                return Err(FrameError::Short {
                    got,
                    want: of,
                    partial: have > 0,
                });
            }
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(FrameError::Io {
                    source,
                    partial: have > 0,
                })
            }
        }
    }
}

/// Reads with a read timeout set to what is left of the request's deadline,
/// so a peer that dribbles bytes cannot stretch a request beyond it.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    set: &'a mut Option<Duration>,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "request deadline passed"))?;
        // Whole milliseconds, so that back-to-back requests with the same
        // timeout usually find it already set and skip the setsockopt.
        let want = Some(at_least_1ms(Duration::from_millis(left.as_millis() as u64)));
        if *self.set != want {
            *self.set = None;
            self.stream.set_read_timeout(want)?;
            *self.set = want;
        }
        let mut s = self.stream;
        s.read(buf)
    }
}

fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Sends the 20002 probe to the plug's IP (on 20002, and on the plug's own
/// port, where the simulated plug listens) and returns the announced scheme.
fn klap_probe(sa: SocketAddr, timeout: Duration) -> Option<String> {
    if timeout.is_zero() {
        return None;
    }
    let mut ports = vec![super::discovery::KLAP_PORT];
    if sa.port() != super::discovery::KLAP_PORT && sa.port() != 9999 {
        ports.push(sa.port());
    }
    super::discovery::klap_probe(sa.ip(), &ports, timeout)
}
