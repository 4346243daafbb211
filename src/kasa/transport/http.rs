//! The smallest HTTP/1.1 client that KLAP needs: `POST` a byte body to one
//! device, read one reply, keep the connection open for the next request when
//! the device allows it.
//!
//! Hand-written on socket2/std rather than a crate (ureq, minreq...): KLAP
//! uses one verb, no TLS, no redirects and no compression (a chunked reply,
//! which no plug sends but a small server standing in for one may, is read),
//! a general client would add tens of KiB to a binary that must stay under
//! 1.5 MiB, and none applies our deadline to connect, write and each read the
//! way every other plug request here does.
//!
//! The parsers ([`find_head_end`], `parse_response_head`,
//! [`parse_request_head`], `parse_set_cookie`) work on bytes with no I/O,
//! are strict (status line, header syntax, one `Content-Length`) and never
//! allocate more than `MAX_HEAD` + `MAX_BODY` bytes whatever the peer
//! announces. The simulated plug uses the same parsers for its server side.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::net::{address, idle_state, is_timeout, Idle};
use crate::kasa::error::KasaError;

/// The longest status line plus headers accepted. A device's head is a few
/// hundred bytes.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The largest body accepted. SMART replies are a few KiB; a strip's child
/// list page is under 16 KiB.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// The session cookie of KLAP devices.
pub(crate) const SESSION_COOKIE: &str = "TP_SESSIONID";

/// Why bytes are not an acceptable HTTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The status or request line is not `HTTP/1.x NNN reason` (`METHOD target HTTP/1.x`).
    StartLine(String),
    /// A header line is not `name: value`.
    Header(String),
    /// No end of headers within `MAX_HEAD` bytes.
    HeadTooLong,
    /// A body is expected but no `Content-Length` says how long.
    NoContentLength,
    /// `Content-Length` is not a number, or two disagree.
    BadContentLength(String),
    /// The announced body is over `MAX_BODY`.
    BodyTooLarge(u64),
    /// `Transfer-Encoding` other than identity or chunked (gzip: we never
    /// ask for it), or chunked together with a `Content-Length`.
    TransferEncoding(String),
    /// A chunked body whose framing is wrong (a size that is not hex, a
    /// chunk not ended by CRLF).
    Chunked(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::StartLine(l) => write!(f, "bad start line {l:?}"),
            HttpError::Header(l) => write!(f, "bad header line {l:?}"),
            HttpError::HeadTooLong => write!(f, "headers longer than {MAX_HEAD} bytes"),
            HttpError::NoContentLength => f.write_str("no Content-Length header"),
            HttpError::BadContentLength(v) => write!(f, "bad Content-Length {v:?}"),
            HttpError::BodyTooLarge(n) => {
                write!(f, "body of {n} bytes is over the {MAX_BODY}-byte limit")
            }
            HttpError::TransferEncoding(v) => {
                write!(f, "unsupported Transfer-Encoding {v:?}")
            }
            HttpError::Chunked(why) => write!(f, "bad chunked body: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The parts of a reply head that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// The body length, when announced.
    pub content_length: Option<usize>,
    /// The body comes in chunks (`Transfer-Encoding: chunked`).
    pub chunked: bool,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
    /// The `TP_SESSIONID` cookie, when set.
    pub session_id: Option<String>,
    /// The `TIMEOUT` cookie (session lifetime in seconds), when set.
    pub timeout_s: Option<u64>,
}

/// The parts of a request head the simulated plug needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `POST`, `GET`...
    pub method: String,
    /// The request target (`/app/request?seq=5`).
    pub target: String,
    /// The body length (0 when absent).
    pub content_length: usize,
    /// The `TP_SESSIONID` sent back in a `Cookie` header.
    pub session_id: Option<String>,
    /// Whether the client asked to close after this request.
    pub close: bool,
    /// The `Content-Type` value, without parameters, lower case.
    pub content_type: Option<String>,
}

/// A whole reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// The body (empty when the status is not 200 and no length was given).
    pub body: Vec<u8>,
    /// The `TP_SESSIONID` cookie, when set.
    pub session_id: Option<String>,
    /// The `TIMEOUT` cookie in seconds, when set.
    pub timeout_s: Option<u64>,
}

/// The length of the head including its final blank line, once `buf` holds it.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `(name, value)` pairs of a head, in order.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// Splits a head (without or with its final blank line) into the start line
/// and its headers, checking the syntax of each line.
fn split_head(head: &[u8]) -> Result<(&str, Headers<'_>), HttpError> {
    let text =
        std::str::from_utf8(head).map_err(|_| HttpError::Header("not ASCII/UTF-8".into()))?;
    let text = text.strip_suffix("\r\n\r\n").unwrap_or(text);
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or_default();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| HttpError::Header(line.chars().take(80).collect()))?;
        if !is_token(name) || value.contains(['\r', '\n']) {
            return Err(HttpError::Header(line.chars().take(80).collect()));
        }
        headers.push((name, value.trim_matches([' ', '\t'])));
    }
    Ok((start, headers))
}

/// One `Content-Length` value, or an error when several disagree.
fn content_length(headers: &[(&str, &str)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 18 {
            return Err(HttpError::BadContentLength(v.to_string()));
        }
        let n: u64 = v
            .parse()
            .map_err(|_| HttpError::BadContentLength(v.to_string()))?;
        if found.is_some_and(|f| f != n) {
            return Err(HttpError::BadContentLength(v.to_string()));
        }
        found = Some(n);
    }
    Ok(found)
}

/// The `TP_SESSIONID` and `TIMEOUT` pairs of a `Set-Cookie` value. Devices
/// send both in one header (`TP_SESSIONID=AB12;TIMEOUT=86400`), which a
/// strict cookie parser would read as one cookie with an unknown attribute,
/// so every `name=value` pair is looked at. Some AES firmware names the
/// session cookie `SESSIONID`; python-kasa takes it when `TP_SESSIONID` is
/// absent, and sends it back as `TP_SESSIONID`, as is done here.
pub(crate) fn parse_set_cookie(value: &str) -> (Option<String>, Option<u64>) {
    let mut session = None;
    let mut fallback = None;
    let mut timeout = None;
    for pair in value.split(';') {
        let Some((name, v)) = pair.split_once('=') else {
            continue;
        };
        let (name, v) = (name.trim(), v.trim().trim_matches('"'));
        if name == SESSION_COOKIE && !v.is_empty() {
            session = Some(v.to_string());
        } else if name == "SESSIONID" && !v.is_empty() {
            fallback = Some(v.to_string());
        } else if name.eq_ignore_ascii_case("TIMEOUT") {
            timeout = v.parse().ok();
        }
    }
    (session.or(fallback), timeout)
}

/// Parses a reply head (status line and headers).
pub(crate) fn parse_response_head(head: &[u8]) -> Result<ResponseHead, HttpError> {
    let (start, headers) = split_head(head)?;
    let bad = || HttpError::StartLine(start.chars().take(80).collect());
    let mut parts = start.splitn(3, ' ');
    let version = parts.next().ok_or_else(bad)?;
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(bad()),
    };
    let code = parts.next().ok_or_else(bad)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&status) {
        return Err(bad());
    }
    let mut keep_alive = minor == 1;
    let mut session_id = None;
    let mut timeout_s = None;
    let mut chunked = false;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.split(',').any(|t| t.trim() == "close") {
                keep_alive = false;
            } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case("set-cookie") {
            let (s, t) = parse_set_cookie(value);
            session_id = s.or(session_id);
            timeout_s = t.or(timeout_s);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let v = value.trim();
            if v.eq_ignore_ascii_case("chunked") && minor == 1 {
                chunked = true;
            } else if !v.eq_ignore_ascii_case("identity") {
                return Err(HttpError::TransferEncoding(value.to_string()));
            }
        }
    }
    let content_length = match content_length(&headers)? {
        // Both framings at once is how responses are smuggled (RFC 9112
        // §6.1): refused rather than one of them believed.
        Some(_) if chunked => {
            return Err(HttpError::TransferEncoding(
                "chunked with a Content-Length".into(),
            ))
        }
        Some(n) if n > MAX_BODY as u64 => return Err(HttpError::BodyTooLarge(n)),
        Some(n) => Some(n as usize),
        None => None,
    };
    Ok(ResponseHead {
        status,
        content_length,
        chunked,
        keep_alive,
        session_id,
        timeout_s,
    })
}

/// Decodes a chunked body (RFC 9112 §7.1) at the start of `buf`:
/// `Ok(None)` while it is incomplete, `Ok(Some((body, used)))` once the
/// last chunk and the end of the trailers (which are skipped) are in, `used`
/// being how many bytes of `buf` it took. Chunk extensions are ignored; the
/// body may not grow over `MAX_BODY`, nor a size or trailer line over 1 KiB.
pub(crate) fn decode_chunked(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    const MAX_LINE: usize = 1024;
    let line_at = |pos: usize| -> Result<Option<usize>, HttpError> {
        match buf[pos..].windows(2).position(|w| w == b"\r\n") {
            Some(n) if n <= MAX_LINE => Ok(Some(n)),
            None if buf.len() - pos <= MAX_LINE => Ok(None),
            _ => Err(HttpError::Chunked("a line over 1 KiB".into())),
        }
    };
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(n) = line_at(pos)? else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&buf[pos..pos + n]);
        let digits = line
            .split(';')
            .next()
            .unwrap_or("")
            .trim_matches([' ', '\t']);
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HttpError::Chunked(format!(
                "chunk size {:?} is not hex",
                line.chars().take(40).collect::<String>()
            )));
        }
        let size = usize::from_str_radix(digits, 16)
            .map_err(|_| HttpError::Chunked(format!("chunk size {digits:?}")))?;
        pos += n + 2;
        if size == 0 {
            // Trailer lines up to an empty one.
            loop {
                let Some(n) = line_at(pos)? else {
                    return Ok(None);
                };
                pos += n + 2;
                if n == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(HttpError::BodyTooLarge((body.len() + size) as u64));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(HttpError::Chunked(format!(
                "a chunk of {size} bytes not followed by CRLF"
            )));
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// Parses a request head (for the simulated plug's server side).
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, HttpError> {
    let (start, headers) = split_head(head)?;
    let bad = || HttpError::StartLine(start.chars().take(80).collect());
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !is_token(method) || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let mut session_id = None;
    let mut close = version == "HTTP/1.0";
    let mut content_type = None;
    for (name, value) in &headers {
        if name.eq_ignore_ascii_case("content-type") {
            let media = value.split(';').next().unwrap_or_default();
            content_type = Some(media.trim().to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("cookie") {
            for pair in value.split(';') {
                if let Some((n, v)) = pair.split_once('=') {
                    if n.trim() == SESSION_COOKIE {
                        session_id = Some(v.trim().to_string());
                    }
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::TransferEncoding(value.to_string()));
        }
    }
    let content_length = match content_length(&headers)? {
        Some(n) if n > MAX_BODY as u64 => return Err(HttpError::BodyTooLarge(n)),
        Some(n) => n as usize,
        None => 0,
    };
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        content_length,
        session_id,
        close,
        content_type,
    })
}

#[cfg(test)]
/// Parses a whole reply held in memory (head and exactly its body).
pub(crate) fn parse_response(bytes: &[u8]) -> Result<Response, HttpError> {
    let end = match find_head_end(bytes) {
        Some(e) if e <= MAX_HEAD => e,
        _ => return Err(HttpError::HeadTooLong),
    };
    let head = parse_response_head(&bytes[..end])?;
    let body = &bytes[end..];
    let body = match head.content_length {
        Some(n) if body.len() == n => body.to_vec(),
        Some(n) => {
            return Err(HttpError::BadContentLength(format!(
                "{n} announced, {} present",
                body.len()
            )))
        }
        // The connection's end ends the body (RFC 9112 §6.3).
        None if head.status == 200 && !head.keep_alive => body.to_vec(),
        None if head.status == 200 => return Err(HttpError::NoContentLength),
        None => Vec::new(),
    };
    Ok(Response {
        status: head.status,
        body,
        session_id: head.session_id,
        timeout_s: head.timeout_s,
    })
}

#[cfg(test)]
/// The bytes of a `POST` with its body, in one buffer so they go out in one write.
pub(crate) fn build_post(
    authority: &str,
    target: &str,
    body: &[u8],
    cookie: Option<&str>,
) -> Vec<u8> {
    build_post_as(authority, target, body, cookie, &BINARY)
}

/// How a body is labelled: its `Content-Type`, `Accept` and any extra
/// headers a device wants (the AES transport's `requestByApp: true`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyKind {
    /// The `Content-Type` value.
    pub content_type: &'static str,
    /// The `Accept` value.
    pub accept: &'static str,
    /// More `name: value` headers.
    pub extra: &'static [(&'static str, &'static str)],
}

/// KLAP's opaque bytes.
pub(crate) const BINARY: BodyKind = BodyKind {
    content_type: "application/octet-stream",
    accept: "*/*",
    extra: &[],
};

/// [`build_post`] with the body labelled as `kind` says.
pub(crate) fn build_post_as(
    authority: &str,
    target: &str,
    body: &[u8],
    cookie: Option<&str>,
    kind: &BodyKind,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(200 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\nAccept: ");
    out.extend_from_slice(kind.accept.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(kind.content_type.as_bytes());
    for (name, value) in kind.extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    if let Some(c) = cookie {
        out.extend_from_slice(b"\r\nCookie: ");
        out.extend_from_slice(SESSION_COOKIE.as_bytes());
        out.push(b'=');
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// A blocking HTTP/1.1 connection to one device, kept open between requests
/// when the device allows it, dropped after any error.
pub(crate) struct HttpClient {
    host: String,
    port: u16,
    addr: String,
    connect_timeout: Duration,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("addr", &self.addr)
            .field("open", &self.conn.is_some())
            .finish()
    }
}

/// `r` when its status is 200, else the error naming `op` and the status.
pub(crate) fn expect_ok(addr: &str, op: &str, r: Response) -> Result<Response, KasaError> {
    if r.status == 200 {
        Ok(r)
    } else {
        Err(KasaError::HttpStatus {
            addr: addr.to_string(),
            op: op.to_string(),
            status: r.status,
        })
    }
}

/// Passes `result` on; when it is an error, drops `session` and closes
/// `http`, because whatever failed, neither is trusted further.
pub(crate) fn distrust_on_err<T, S>(
    result: Result<T, KasaError>,
    session: &mut Option<S>,
    http: &mut HttpClient,
) -> Result<T, KasaError> {
    if result.is_err() {
        *session = None;
        http.close();
    }
    result
}

/// What went wrong on the wire, before it is named as a [`KasaError`].
enum Failure {
    Kasa(KasaError),
    /// The peer closed or reset a kept-open connection before answering: a
    /// fresh connection may well work.
    Stale(KasaError),
}

impl HttpClient {
    /// A client for `host:port`; nothing happens on the network until the
    /// first request. The host is resolved on every (re)connect.
    pub fn new(host: &str, port: u16, connect_timeout: Duration) -> HttpClient {
        HttpClient {
            host: host.to_string(),
            port,
            addr: address(host, port),
            connect_timeout: connect_timeout.max(Duration::from_millis(1)),
            conn: None,
            buf: Vec::new(),
        }
    }

    /// `host:port`, as named in every error.
    pub(crate) fn address(&self) -> &str {
        &self.addr
    }

    /// Drops the kept-open connection.
    pub(crate) fn close(&mut self) {
        self.conn = None;
    }

    /// Posts `body` to `target` (with the session cookie when given) and reads
    /// the reply, all before `deadline`. `op` names the step in errors.
    ///
    /// A kept-open connection that the device closed while idle is replaced
    /// by a fresh one once, within the same deadline: that is not the device's
    /// fault and must not fail the request.
    pub(crate) fn post(
        &mut self,
        target: &str,
        body: &[u8],
        cookie: Option<&str>,
        deadline: Instant,
        op: &str,
    ) -> Result<Response, KasaError> {
        self.post_as(target, body, cookie, &BINARY, deadline, op)
    }

    /// [`HttpClient::post`] with the body labelled as `kind` says.
    pub(crate) fn post_as(
        &mut self,
        target: &str,
        body: &[u8],
        cookie: Option<&str>,
        kind: &BodyKind,
        deadline: Instant,
        op: &str,
    ) -> Result<Response, KasaError> {
        let started = Instant::now();
        let request = build_post_as(&self.addr, target, body, cookie, kind);
        let reused = self.conn.is_some();
        match self.exchange(&request, deadline, started, op) {
            Ok(r) => Ok(r),
            Err(Failure::Stale(_)) if reused => {
                match self.exchange(&request, deadline, started, op) {
                    Ok(r) => Ok(r),
                    Err(Failure::Kasa(e) | Failure::Stale(e)) => Err(e),
                }
            }
            Err(Failure::Kasa(e) | Failure::Stale(e)) => Err(e),
        }
    }

    fn timed_out(&self, op: &str, started: Instant) -> KasaError {
        KasaError::TimedOut {
            addr: self.addr.clone(),
            op: op.to_string(),
            after_ms: started.elapsed().as_millis() as u64,
        }
    }

    fn remaining(
        &self,
        deadline: Instant,
        op: &str,
        started: Instant,
    ) -> Result<Duration, KasaError> {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| *d >= Duration::from_millis(1))
            .ok_or_else(|| self.timed_out(op, started))
    }

    fn connect(
        &self,
        deadline: Instant,
        started: Instant,
        op: &str,
    ) -> Result<TcpStream, KasaError> {
        // No time left is a timeout of this request, as the reads count it.
        self.remaining(deadline, op, started)?;
        let refused = |_: std::net::SocketAddr, _: Instant| KasaError::Refused {
            addr: self.addr.clone(),
            klap_hint: false,
            scheme: None,
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
        request: &[u8],
        deadline: Instant,
        started: Instant,
        op: &str,
    ) -> Result<Response, Failure> {
        // A kept-open connection with bytes already waiting (a late reply)
        // would hand them to this request as its answer: drop it.
        let kept = self.conn.take().filter(|s| match idle_state(s) {
            Ok(Idle::Clean) => true,
            Ok(Idle::Stray(n)) => {
                log::debug!(
                    "{}: stray bytes ({n}) waiting on the kept-open connection before {op}: \
                     discarded with the connection",
                    self.addr
                );
                false
            }
            Ok(Idle::Closed) | Err(_) => false,
        });
        let (stream, reused) = match kept {
            Some(s) => (s, true),
            None => (
                self.connect(deadline, started, op).map_err(Failure::Kasa)?,
                false,
            ),
        };
        let (result, keep) = self.exchange_on(&stream, request, deadline, started, op, reused);
        if keep {
            self.conn = Some(stream);
        }
        // Do not keep a large buffer after an unusually large reply.
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        result
    }

    /// One request on `stream`; also says whether the connection may be kept.
    fn exchange_on(
        &mut self,
        stream: &TcpStream,
        request: &[u8],
        deadline: Instant,
        started: Instant,
        op: &str,
        reused: bool,
    ) -> (Result<Response, Failure>, bool) {
        let at = Wire {
            stream,
            deadline,
            started,
            op,
            reused,
        };
        let head = self
            .send_request(&at, request)
            .and_then(|()| self.read_head(&at));
        let (head_end, head) = match head {
            Ok(h) => h,
            Err(f) => return (Err(f), false),
        };
        if head.chunked {
            return match self.read_chunked(&at, head_end) {
                Ok((body, extra)) => (Ok(response(&head, body)), head.keep_alive && !extra),
                Err(f) => (Err(f), false),
            };
        }
        let Some(len) = head.content_length else {
            if head.status == 200 && !head.keep_alive {
                // HTTP/1.0 or `Connection: close` without a length: the body
                // ends where the connection does (RFC 9112 §6.3), as aiohttp
                // (plugp100's client) reads it and as a small Python server
                // writes it. A kept-alive reply without a length still fails:
                // its end could only be guessed at the deadline.
                return (
                    self.read_to_close(&at, head_end)
                        .map(|b| response(&head, b)),
                    false,
                );
            }
            if head.status == 200 {
                return (
                    Err(Failure::Kasa(self.http_err(op, HttpError::NoContentLength))),
                    false,
                );
            }
            // A refusal without a length: its body is of no use, and the
            // connection cannot be reused without knowing where it ends.
            return (Ok(response(&head, Vec::new())), false);
        };
        match self.read_body(&at, head_end, len) {
            // Bytes past the announced body mean the peer and we disagree on
            // framing: never reuse such a connection.
            Ok((body, extra)) => (Ok(response(&head, body)), head.keep_alive && !extra),
            Err(f) => (Err(f), false),
        }
    }

    /// Names an I/O error of this exchange. A reset or broken pipe on a
    /// kept-open connection before any reply byte is [`Failure::Stale`].
    fn io_failure(&self, at: &Wire<'_>, e: io::Error, what: String, got_any: bool) -> Failure {
        if is_timeout(&e) {
            return Failure::Kasa(self.timed_out(at.op, at.started));
        }
        let stale = at.reused
            && !got_any
            && matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            );
        let err = KasaError::Io {
            addr: self.addr.clone(),
            op: what,
            source: e,
        };
        if stale {
            Failure::Stale(err)
        } else {
            Failure::Kasa(err)
        }
    }

    /// Writes the whole request in one write, bounded by the deadline.
    fn send_request(&self, at: &Wire<'_>, request: &[u8]) -> Result<(), Failure> {
        let left = self
            .remaining(at.deadline, at.op, at.started)
            .map_err(Failure::Kasa)?;
        let mut w = at.stream;
        w.set_write_timeout(Some(left))
            .and_then(|()| w.write_all(request))
            .map_err(|e| self.io_failure(at, e, format!("sending {}", at.op), false))
    }

    /// Reads into `self.buf` until the end of the head, and parses it;
    /// returns where the head ends in `self.buf` and the parsed head.
    fn read_head(&mut self, at: &Wire<'_>) -> Result<(usize, ResponseHead), Failure> {
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = find_head_end(&self.buf) {
                break end;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(Failure::Kasa(self.http_err(at.op, HttpError::HeadTooLong)));
            }
            match self.read_some(at, &mut chunk) {
                Ok(0) => {
                    let partial = !self.buf.is_empty();
                    let e = KasaError::Closed {
                        addr: self.addr.clone(),
                        op: at.op.to_string(),
                        mid_frame: partial,
                    };
                    return Err(if at.reused && !partial {
                        Failure::Stale(e)
                    } else {
                        Failure::Kasa(e)
                    });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(ReadErr::Kasa(e)) => return Err(Failure::Kasa(e)),
                Err(ReadErr::Io(e)) => {
                    let any = !self.buf.is_empty();
                    let what = format!("reading the reply to {}", at.op);
                    return Err(self.io_failure(at, e, what, any));
                }
            }
        };
        if head_end > MAX_HEAD {
            return Err(Failure::Kasa(self.http_err(at.op, HttpError::HeadTooLong)));
        }
        let head = parse_response_head(&self.buf[..head_end])
            .map_err(|e| Failure::Kasa(self.http_err(at.op, e)))?;
        Ok((head_end, head))
    }

    /// The body of `len` bytes (checked against `MAX_BODY` by the head's
    /// parser): what `self.buf` already holds past the head, then the rest.
    /// Also says whether bytes past the body had arrived.
    fn read_body(
        &mut self,
        at: &Wire<'_>,
        head_end: usize,
        len: usize,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let mut body = Vec::with_capacity(len);
        let already = (self.buf.len() - head_end).min(len);
        body.extend_from_slice(&self.buf[head_end..head_end + already]);
        let extra = self.buf.len() - head_end > len;
        let mut chunk = [0u8; 4096];
        while body.len() < len {
            let want = (len - body.len()).min(chunk.len());
            match self.read_body_bytes(at, &mut chunk[..want])? {
                0 => return Err(self.closed_mid_body(at)),
                n => body.extend_from_slice(&chunk[..n]),
            }
        }
        Ok((body, extra))
    }

    /// A chunked body: what `self.buf` holds past the head, then more until
    /// the last chunk, within the deadline. Also says whether bytes past the
    /// body had arrived.
    fn read_chunked(&mut self, at: &Wire<'_>, head_end: usize) -> Result<(Vec<u8>, bool), Failure> {
        let mut chunk = [0u8; 4096];
        loop {
            match decode_chunked(&self.buf[head_end..]) {
                Ok(Some((body, used))) => return Ok((body, head_end + used < self.buf.len())),
                Ok(None) => {}
                Err(e) => return Err(Failure::Kasa(self.http_err(at.op, e))),
            }
            match self.read_body_bytes(at, &mut chunk)? {
                0 => return Err(self.closed_mid_body(at)),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The body of a reply that ends when the peer closes: what `self.buf`
    /// holds past the head, then everything until end of file, at most
    /// `MAX_BODY` bytes, within the deadline.
    fn read_to_close(&mut self, at: &Wire<'_>, head_end: usize) -> Result<Vec<u8>, Failure> {
        let mut body = self.buf[head_end..].to_vec();
        let mut chunk = [0u8; 4096];
        loop {
            if body.len() > MAX_BODY {
                let n = body.len() as u64;
                return Err(Failure::Kasa(
                    self.http_err(at.op, HttpError::BodyTooLarge(n)),
                ));
            }
            match self.read_body_bytes(at, &mut chunk)? {
                0 => return Ok(body),
                n => body.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// One read of body bytes (the head has arrived, so nothing here is a
    /// stale kept-open connection); 0 at the peer's end of file.
    fn read_body_bytes(&self, at: &Wire<'_>, buf: &mut [u8]) -> Result<usize, Failure> {
        self.read_some(at, buf).map_err(|e| match e {
            ReadErr::Kasa(e) => Failure::Kasa(e),
            ReadErr::Io(e) => {
                let what = format!("reading the reply to {}", at.op);
                self.io_failure(at, e, what, true)
            }
        })
    }

    /// The peer closed before the body it announced was whole.
    fn closed_mid_body(&self, at: &Wire<'_>) -> Failure {
        Failure::Kasa(KasaError::Closed {
            addr: self.addr.clone(),
            op: at.op.to_string(),
            mid_frame: true,
        })
    }

    fn read_some(&self, at: &Wire<'_>, buf: &mut [u8]) -> Result<usize, ReadErr> {
        let left = self
            .remaining(at.deadline, at.op, at.started)
            .map_err(ReadErr::Kasa)?;
        at.stream
            .set_read_timeout(Some(left))
            .map_err(ReadErr::Io)?;
        let mut r = at.stream;
        loop {
            match r.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map_err(ReadErr::Io),
            }
        }
    }

    fn http_err(&self, op: &str, e: HttpError) -> KasaError {
        KasaError::Http {
            addr: self.addr.clone(),
            op: op.to_string(),
            detail: e.to_string(),
        }
    }
}

enum ReadErr {
    Kasa(KasaError),
    Io(io::Error),
}

/// The connection and bounds of one exchange, shared by its steps.
struct Wire<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
    /// When the request began, for the time a timeout reports.
    started: Instant,
    /// The step, named in errors.
    op: &'a str,
    /// The connection was kept open from an earlier request.
    reused: bool,
}

/// A [`Response`] of `head` with `body`.
fn response(head: &ResponseHead, body: Vec<u8>) -> Response {
    Response {
        status: head.status,
        body,
        session_id: head.session_id.clone(),
        timeout_s: head.timeout_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\
Set-Cookie: TP_SESSIONID=0123ABCD;TIMEOUT=86400\r\nContent-Length: 5\r\n\r\nhello";

    #[test]
    fn parses_a_device_reply_with_both_cookies_in_one_header() {
        let r = parse_response(OK).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.session_id.as_deref(), Some("0123ABCD"));
        assert_eq!(r.timeout_s, Some(86400));
        let head = parse_response_head(&OK[..find_head_end(OK).unwrap()]).unwrap();
        assert!(head.keep_alive);
    }

    #[test]
    fn cookies_in_separate_headers_and_connection_close() {
        let raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: TP_SESSIONID=S1; Path=/\r\n\
set-cookie: TIMEOUT=1440\r\nConnection: close\r\ncontent-length: 0\r\n\r\n";
        let end = find_head_end(raw).unwrap();
        let h = parse_response_head(&raw[..end]).unwrap();
        assert_eq!(h.session_id.as_deref(), Some("S1"));
        assert_eq!(h.timeout_s, Some(1440));
        assert!(!h.keep_alive);
        assert_eq!(h.content_length, Some(0));
        let h10 = parse_response_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!h10.keep_alive, "HTTP/1.0 closes by default");
    }

    #[test]
    fn strict_about_the_start_line_and_headers() {
        for bad in [
            &b"HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 099 Odd\r\n\r\n",
        ] {
            assert!(
                matches!(parse_response_head(bad), Err(HttpError::StartLine(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
            Err(HttpError::Header(_))
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            Err(HttpError::Header(_))
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 200 OK\r\n\xff\xfe: x\r\n\r\n"),
            Err(HttpError::Header(_))
        ));
    }

    #[test]
    fn content_length_is_required_checked_and_capped() {
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\n\r\nbody"),
            Err(HttpError::NoContentLength)
        );
        // Unless the connection's end ends the body.
        for raw in [
            &b"HTTP/1.0 200 OK\r\n\r\nbody"[..],
            &b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody"[..],
        ] {
            assert_eq!(parse_response(raw).unwrap().body, b"body");
        }
        // A refusal without a length is fine: its body is not needed.
        assert_eq!(
            parse_response(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                .unwrap()
                .status,
            403
        );
        for v in ["-1", "1e3", "", "12 3", "0x10", "99999999999999999999"] {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n");
            assert!(
                matches!(
                    parse_response_head(raw.as_bytes()),
                    Err(HttpError::BadContentLength(_))
                ),
                "{v}"
            );
        }
        assert!(matches!(
            parse_response_head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"
            ),
            Err(HttpError::BadContentLength(_))
        ));
        assert!(parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"
        )
        .is_ok());
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n"),
            Err(HttpError::BodyTooLarge(4_294_967_296))
        );
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"),
            Err(HttpError::BadContentLength(_))
        ));
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .chunked
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        ] {
            assert!(
                matches!(
                    parse_response_head(bad),
                    Err(HttpError::TransferEncoding(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunked_bodies_are_decoded_once_complete() {
        let whole = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let (body, used) = decode_chunked(whole).unwrap().unwrap();
        assert_eq!(body, b"hello, world");
        assert_eq!(&whole[used..], b"NEXT");
        // Every proper prefix is incomplete, never an error or a short body.
        let end = whole.len() - 4;
        for cut in 0..end {
            assert_eq!(decode_chunked(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            decode_chunked(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap(),
            Some((b"0123456789".to_vec(), 20))
        );
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"-5\r\nhello\r\n",
            b"123456789\r\n",
        ] {
            assert!(
                matches!(decode_chunked(bad), Err(HttpError::Chunked(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = format!("{:x}\r\n", MAX_BODY + 1);
        assert!(matches!(
            decode_chunked(huge.as_bytes()),
            Err(HttpError::BodyTooLarge(_))
        ));
        let long_line = vec![b'1'; 2000];
        assert!(matches!(
            decode_chunked(&long_line),
            Err(HttpError::Chunked(_))
        ));
    }

    #[test]
    fn head_must_end_within_the_limit() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        while raw.len() <= MAX_HEAD {
            raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        assert_eq!(parse_response(&raw), Err(HttpError::HeadTooLong));
        assert_eq!(find_head_end(b"HTTP/1.1 200 OK\r\n"), None);
    }

    #[test]
    fn set_cookie_pairs() {
        assert_eq!(
            parse_set_cookie("TP_SESSIONID=ABC;TIMEOUT=1440"),
            (Some("ABC".into()), Some(1440))
        );
        assert_eq!(parse_set_cookie("OTHER=1; Path=/"), (None, None));
        assert_eq!(parse_set_cookie("TP_SESSIONID=;TIMEOUT=x"), (None, None));
        // AES firmware that names it SESSIONID; TP_SESSIONID wins when both are there.
        assert_eq!(
            parse_set_cookie("SESSIONID=S1;TIMEOUT=1440"),
            (Some("S1".into()), Some(1440))
        );
        assert_eq!(
            parse_set_cookie("SESSIONID=S1;TP_SESSIONID=T2"),
            (Some("T2".into()), None)
        );
    }

    #[test]
    fn a_json_post_carries_its_labels() {
        const JSON: BodyKind = BodyKind {
            content_type: "application/json",
            accept: "application/json",
            extra: &[("requestByApp", "true")],
        };
        let req = build_post_as("h:80", "/app?token=T", b"{}", Some("SID"), &JSON);
        let end = find_head_end(&req).unwrap();
        let head = String::from_utf8(req[..end].to_vec()).unwrap();
        assert!(head.starts_with("POST /app?token=T HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\nContent-Type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nrequestByApp: true\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Length: 2\r\n"), "{head}");
        assert_eq!(&req[end..], b"{}");
        let parsed = parse_request_head(&req[..end]).unwrap();
        assert_eq!(parsed.session_id.as_deref(), Some("SID"));
        assert_eq!(parsed.content_length, 2);
    }

    #[test]
    fn request_head_for_the_server_side() {
        let req = build_post("127.0.0.1:80", "/app/request?seq=-5", b"0123", Some("SID"));
        let end = find_head_end(&req).unwrap();
        assert_eq!(&req[end..], b"0123");
        let h = parse_request_head(&req[..end]).unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/app/request?seq=-5");
        assert_eq!(h.content_length, 4);
        assert_eq!(h.session_id.as_deref(), Some("SID"));
        assert!(!h.close);
        assert!(parse_request_head(b"POST nope HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_request_head(b"POST / HTTP/1.1 extra\r\n\r\n").is_err());
        assert!(matches!(
            parse_request_head(b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n"),
            Err(HttpError::BodyTooLarge(_))
        ));
    }

    /// Every prefix and every single-byte corruption of a good reply either
    /// parses or fails with an `HttpError`: no panic, whatever the bytes.
    #[test]
    fn mutated_replies_never_panic() {
        for cut in 0..OK.len() {
            let _ = parse_response(&OK[..cut]);
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut m = OK.to_vec();
            let i = (seed as usize) % m.len();
            m[i] = (seed >> 32) as u8;
            if seed & 0x100 != 0 {
                m.truncate((seed >> 40) as usize % (m.len() + 1));
            }
            if let Ok(r) = parse_response(&m) {
                assert!(r.body.len() <= MAX_BODY);
            }
        }
    }
}
