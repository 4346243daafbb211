//! The legacy transport (docs/design.md §7): TCP port 9999, each message a 4-byte
//! big-endian length and the autokey-XOR payload. The codec and the framing
//! ([`encrypt`], [`frame`], [`read_frame`]...) have no I/O and are tested on
//! byte slices; UDP discovery and the simulated plug use them too.
//!
//! [`XorTransport`] keeps one connection open between requests (a plug
//! answers in a few milliseconds on a warm socket) and drops it after any
//! error, so the next request starts on a fresh socket. A kept-open
//! connection carries a request only if nothing is waiting on it (a late
//! reply to an earlier request would otherwise be read as the answer), and
//! only if the last reply ended where its frame did. Every request is
//! bounded by its deadline: the connect (which also has its own, shorter
//! timeout), the write, every read, and the one reconnect after a kept-open
//! socket that the plug had closed all fit before it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::net::{address, ceil_ms, idle_state, is_timeout, remaining, Idle};
use super::{describe, Transport};
use crate::kasa::discovery::probe::{klap_probe, KLAP_PORT};
use crate::kasa::error::KasaError;

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
/// The test vector of docs/design.md §7:
///
/// ```
/// use kasa_thermostat::kasa::transport::xor::{frame, unframe};
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
            let scheme = probe_scheme(sa, probe);
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

    /// The kept-open connection if nothing is waiting on it, else a new one;
    /// says whether it is the kept-open one. Bytes waiting before a request
    /// is sent would be read as its answer, so such a connection is dropped.
    fn open(&mut self, deadline: Instant, op: &str) -> Result<(TcpStream, bool), KasaError> {
        if let Some(stream) = self.conn.take() {
            match idle_state(&stream) {
                Ok(Idle::Clean) => return Ok((stream, true)),
                Ok(Idle::Stray(n)) => log::debug!(
                    "{}: {n}{} stray bytes waiting on the kept-open connection before {op} \
                     (a late reply?): discarded with the connection",
                    self.addr,
                    if n == 64 { "+" } else { "" }
                ),
                Ok(Idle::Closed) => {
                    log::debug!("{}: the plug closed the idle connection", self.addr)
                }
                Err(e) => log::debug!("{}: the idle connection failed: {e}", self.addr),
            }
        }
        self.write_timeout = None;
        self.read_timeout = None;
        Ok((self.connect(deadline, op)?, false))
    }

    /// One request and its reply on an open (or opened) connection, which is
    /// kept for the next request only when the reply ended cleanly. Also
    /// says whether the connection was a kept-open one.
    fn exchange(
        &mut self,
        frame: &[u8],
        deadline: Instant,
        timeout: Duration,
        op: &str,
    ) -> (Result<Value, KasaError>, bool) {
        let (stream, reused) = match self.open(deadline, op) {
            Ok(s) => s,
            Err(e) => return (Err(e), false),
        };
        let result = self
            .send(&stream, frame, deadline, timeout, op)
            .and_then(|()| self.receive(&stream, deadline, timeout, op));
        match result {
            Ok((reply, true)) => {
                self.conn = Some(stream);
                (Ok(reply), reused)
            }
            Ok((reply, false)) => {
                log::debug!(
                    "{}: more bytes followed the reply to {op}: the connection is not kept",
                    self.addr
                );
                (Ok(reply), reused)
            }
            Err(e) => (Err(e), reused),
        }
    }

    fn timed_out(&self, op: &str, timeout: Duration) -> KasaError {
        KasaError::TimedOut {
            addr: self.addr.clone(),
            op: op.to_string(),
            after_ms: ceil_ms(timeout),
        }
    }

    /// Writes the whole frame. A request is far smaller than the socket
    /// buffer, so the write does not wait for the peer; what is left of the
    /// deadline bounds it.
    fn send(
        &mut self,
        stream: &TcpStream,
        frame: &[u8],
        deadline: Instant,
        timeout: Duration,
        op: &str,
    ) -> Result<(), KasaError> {
        let wt = at_least_1ms(remaining(deadline).ok_or_else(|| self.timed_out(op, timeout))?);
        let mut w = stream;
        let set = if self.write_timeout == Some(wt) {
            Ok(())
        } else {
            self.write_timeout = Some(wt);
            w.set_write_timeout(Some(wt))
        };
        set.and_then(|()| w.write_all(frame)).map_err(|source| {
            if is_timeout(&source) {
                self.timed_out(op, timeout)
            } else {
                KasaError::Io {
                    addr: self.addr.clone(),
                    op: format!("sending {op}"),
                    source,
                }
            }
        })
    }

    /// Reads one reply frame and decodes its JSON; also says whether the
    /// frame ended the bytes read (more bytes after it mean the connection
    /// is out of step with the plug and must not carry another request).
    fn receive(
        &mut self,
        stream: &TcpStream,
        deadline: Instant,
        timeout: Duration,
        op: &str,
    ) -> Result<(Value, bool), KasaError> {
        let mut reader = DeadlineReader {
            stream,
            deadline,
            set: &mut self.read_timeout,
        };
        let (plain, clean) = read_reply(&mut reader, &mut self.rbuf)
            .map_err(|e| self.frame_error(e, op, timeout))?;
        let reply = serde_json::from_slice(&plain).map_err(|e| KasaError::BadFrame {
            addr: self.addr.clone(),
            detail: format!("the decrypted reply to {op} is not JSON ({e})"),
        })?;
        Ok((reply, clean))
    }

    /// Names a framing failure as the error of this plug and request.
    fn frame_error(&self, e: FrameError, op: &str, timeout: Duration) -> KasaError {
        match e {
            FrameError::Oversize(len) => KasaError::Oversize {
                addr: self.addr.clone(),
                len,
                max: MAX_FRAME,
            },
            FrameError::Short { partial, .. } => KasaError::Closed {
                addr: self.addr.clone(),
                op: op.to_string(),
                mid_frame: partial,
            },
            FrameError::Io { source, .. } if is_timeout(&source) => self.timed_out(op, timeout),
            FrameError::Io { source, .. } => KasaError::Io {
                addr: self.addr.clone(),
                op: format!("reading the reply to {op}"),
                source,
            },
        }
    }
}

impl Transport for XorTransport {
    fn address(&self) -> &str {
        &self.addr
    }

    fn request(&mut self, request: &Value, deadline: Instant) -> Result<Value, KasaError> {
        let op = describe(request);
        let frame = frame(request.to_string().as_bytes());
        let timeout = remaining(deadline).unwrap_or_default();
        match self.exchange(&frame, deadline, timeout, &op) {
            // A plug closes idle connections on its own; a kept-open socket
            // that turns out dead before any reply byte is not the plug's
            // fault, so one retry on a fresh socket is part of the same
            // request, within the same deadline.
            (Err(e), true) if stale_socket(&e) => self.exchange(&frame, deadline, timeout, &op).0,
            (result, _) => result,
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

/// Reads one frame (4 + N bytes) through `buf`, usually in a single read,
/// and returns the decrypted body, and whether the frame ended the bytes read
/// (`false`: bytes of something else came with it). The length is checked
/// before the buffer grows.
fn read_reply<R: Read>(reader: &mut R, buf: &mut Vec<u8>) -> Result<(Vec<u8>, bool), FrameError> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut have = 0;
    let mut want = 4;
    let mut header_done = false;
    loop {
        if have >= want {
            if header_done {
                return Ok((decrypt(&buf[4..want]), have == want));
            }
            let len = frame_len([buf[0], buf[1], buf[2], buf[3]])?;
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
fn probe_scheme(sa: SocketAddr, timeout: Duration) -> Option<String> {
    if timeout.is_zero() {
        return None;
    }
    let mut ports = vec![KLAP_PORT];
    if sa.port() != KLAP_PORT && sa.port() != 9999 {
        ports.push(sa.port());
    }
    klap_probe(sa.ip(), &ports, timeout)
}
