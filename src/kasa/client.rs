//! A blocking client for one plug: socket2 TCP with a connect timeout, a
//! deadline per request (applied to every write and read), TCP_NODELAY, and one
//! connection kept open between requests and dropped after any error, so the
//! next request starts on a fresh socket.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::error::KasaError;
use super::protocol::{self, CountdownRule, Emeter, FrameError, SysInfo};
use crate::config::PlugTiming;

pub use super::protocol::Child;

/// The longest wait for an answer to the UDP 20002 probe after a refused connect.
const KLAP_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection to one plug at `host:port`.
pub struct Client {
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

impl Client {
    /// A client for `host:port`. Nothing happens on the network until the first
    /// request; the host is resolved on every (re)connect, so a plug that moved
    /// to a new DHCP address is found again by name.
    pub fn new(host: &str, port: u16, timing: &PlugTiming) -> Client {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Client {
            host: host.to_string(),
            port,
            addr,
            connect_timeout: at_least_1ms(timing.connect()),
            conn: None,
            write_timeout: None,
            read_timeout: None,
            rbuf: Vec::new(),
        }
    }

    /// `host:port`, as used in every error.
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// Closes the kept-open connection (the next request opens a new one).
    pub fn close(&mut self) {
        self.conn = None;
    }

    fn connect(&self) -> Result<TcpStream, KasaError> {
        let sa =
            crate::config::resolve(&self.host, self.port).map_err(|source| KasaError::Resolve {
                host: self.host.clone(),
                port: self.port,
                source,
            })?;
        let io_err = |op: &str, source: io::Error| KasaError::Io {
            addr: self.addr.clone(),
            op: op.to_string(),
            source,
        };
        let sock = Socket::new(Domain::for_address(sa), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| io_err("socket", e))?;
        match sock.connect_timeout(&SockAddr::from(sa), self.connect_timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let scheme = klap_probe(sa, self.connect_timeout.min(KLAP_PROBE_TIMEOUT));
                return Err(KasaError::Refused {
                    addr: self.addr.clone(),
                    klap_hint: scheme.is_some(),
                    scheme,
                });
            }
            Err(e) if is_timeout(&e) => {
                return Err(KasaError::TimedOut {
                    addr: self.addr.clone(),
                    op: "connect".into(),
                    after_ms: self.connect_timeout.as_millis() as u64,
                })
            }
            Err(source) => {
                return Err(KasaError::Connect {
                    addr: self.addr.clone(),
                    source,
                })
            }
        }
        // Small request/reply messages: Nagle would only add latency.
        sock.set_tcp_nodelay(true)
            .map_err(|e| io_err("set TCP_NODELAY", e))?;
        Ok(sock.into())
    }

    /// Sends `json` and returns the decoded reply, within `timeout` (connect
    /// excluded: it has its own timeout).
    pub fn request(&mut self, json: &Value, timeout: Duration) -> Result<Value, KasaError> {
        let op = describe(json);
        let body = json.to_string();
        let reused = self.conn.is_some();
        match self.exchange(body.as_bytes(), timeout, &op) {
            Ok(v) => Ok(v),
            // A plug closes idle connections on its own; a kept-open socket that
            // turns out dead before any reply byte is not the plug's fault, so
            // one immediate retry on a fresh socket is part of the same request.
            Err(KasaError::Closed {
                mid_frame: false, ..
            }) if reused => self.exchange(body.as_bytes(), timeout, &op),
            Err(KasaError::Io { ref source, .. })
                if reused
                    && matches!(
                        source.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                    ) =>
            {
                self.exchange(body.as_bytes(), timeout, &op)
            }
            Err(e) => Err(e),
        }
    }

    fn exchange(&mut self, body: &[u8], timeout: Duration, op: &str) -> Result<Value, KasaError> {
        let stream = match self.conn.take() {
            Some(s) => s,
            None => {
                self.write_timeout = None;
                self.read_timeout = None;
                self.connect()?
            }
        };
        let deadline = Instant::now() + timeout;
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
            after_ms: timeout.as_millis() as u64,
        };
        let frame = protocol::frame(body);
        // A request is far smaller than the socket buffer, so the write does not
        // wait for the peer; the request's timeout bounds it without resetting
        // it before every write.
        let wt = at_least_1ms(timeout);
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
            first: Some(at_least_1ms(timeout)),
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

    fn call(
        &mut self,
        child: Option<&str>,
        module: &str,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, KasaError> {
        let req = protocol::request(child, module, method, params);
        let reply = self.request(&req, timeout)?;
        protocol::extract(&reply, module, method)
            .cloned()
            .map_err(|e| KasaError::from_reply(&self.addr, e))
    }

    /// `system.get_sysinfo`.
    pub fn get_sysinfo(&mut self, timeout: Duration) -> Result<SysInfo, KasaError> {
        let reply = self.request(&protocol::sysinfo_request(), timeout)?;
        SysInfo::from_reply(&reply).map_err(|e| KasaError::from_reply(&self.addr, e))
    }

    /// `system.set_relay_state`, for one outlet when `child` is given.
    pub fn set_relay_state(
        &mut self,
        child: Option<&str>,
        on: bool,
        timeout: Duration,
    ) -> Result<(), KasaError> {
        let state = u8::from(on);
        self.call(
            child,
            "system",
            "set_relay_state",
            json!({ "state": state }),
            timeout,
        )
        .map(drop)
    }

    /// `count_down.get_rules`.
    pub fn countdown_get_rules(
        &mut self,
        child: Option<&str>,
        timeout: Duration,
    ) -> Result<Vec<CountdownRule>, KasaError> {
        let req = protocol::request(child, "count_down", "get_rules", json!({}));
        let reply = self.request(&req, timeout)?;
        protocol::parse_countdown_rules(&reply).map_err(|e| KasaError::from_reply(&self.addr, e))
    }

    /// `count_down.add_rule`: after `delay_s` seconds the relay goes to `act_on`.
    pub fn countdown_add_rule(
        &mut self,
        child: Option<&str>,
        delay_s: u32,
        act_on: bool,
        name: &str,
        timeout: Duration,
    ) -> Result<(), KasaError> {
        let params = json!({"enable": 1, "delay": delay_s, "act": u8::from(act_on), "name": name});
        self.call(child, "count_down", "add_rule", params, timeout)
            .map(drop)
    }

    /// `count_down.delete_all_rules`.
    pub fn countdown_delete_all(
        &mut self,
        child: Option<&str>,
        timeout: Duration,
    ) -> Result<(), KasaError> {
        self.call(child, "count_down", "delete_all_rules", json!({}), timeout)
            .map(drop)
    }

    /// `emeter.get_realtime`, normalised to W, V, A and kWh.
    pub fn emeter_realtime(
        &mut self,
        child: Option<&str>,
        timeout: Duration,
    ) -> Result<Emeter, KasaError> {
        let req = protocol::request(child, "emeter", "get_realtime", json!({}));
        let reply = self.request(&req, timeout)?;
        Emeter::from_reply(&reply).map_err(|e| KasaError::from_reply(&self.addr, e))
    }
}

/// A short name for a request in messages: `system.set_relay_state`.
fn describe(req: &Value) -> String {
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

/// Reads with a read timeout set to what is left of the request's deadline, so
/// a peer that dribbles bytes cannot stretch a request beyond its timeout.
///
/// The first read of a request uses the whole timeout, which is usually what
/// the socket already has, so the common one-read reply costs no setsockopt.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    first: Option<Duration>,
    set: &'a mut Option<Duration>,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.first.take() {
            Some(whole) => whole,
            None => self
                .deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::TimedOut, "request deadline passed")
                })?,
        };
        let want = Some(at_least_1ms(want));
        if *self.set != want {
            *self.set = None;
            self.stream.set_read_timeout(want)?;
            *self.set = want;
        }
        let mut s = self.stream;
        s.read(buf)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

/// Sends the 20002 probe to the plug's IP (on 20002, and on the plug's own
/// port, where the simulated plug listens) and returns the announced scheme.
fn klap_probe(sa: SocketAddr, timeout: Duration) -> Option<String> {
    let mut ports = vec![super::discovery::KLAP_PORT];
    if sa.port() != super::discovery::KLAP_PORT && sa.port() != 9999 {
        ports.push(sa.port());
    }
    super::discovery::klap_probe(sa.ip(), &ports, timeout)
}
