//! A small HTTP/1.1 server on plain threads, built for a page on a Pi that
//! must never get in the way of the control loop:
//!
//! * one thread (`web-accept`) accepts connections and reads their request
//!   heads with `poll(2)`, all at once, so idle or slow connections cost a
//!   file descriptor and a buffer, never a thread. At most
//!   [`MAX_PENDING`] wait for their head; past that the oldest is closed.
//!   A head must be complete within [`HEAD_DEADLINE`] and [`MAX_HEAD`] bytes
//!   (408 and 431 otherwise);
//! * [`WORKERS`] threads (`web-1`...) take complete heads from a bounded
//!   queue, read the body (at most [`MAX_BODY`], else 413; never chunked,
//!   411), call the handler and write the answer with read and write
//!   timeouts. Each connection carries one request (`Connection: close`).
//!
//! Nothing here panics on what a client sends: every malformed request is
//! a 4xx answer or a closed connection.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// The largest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// The largest request body.
pub const MAX_BODY: usize = 16 * 1024;
/// Connections waiting for their head, at most.
pub const MAX_PENDING: usize = 256;
/// A head must arrive within this after the connection.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Read and write timeout of a connection a worker serves.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Worker threads.
pub const WORKERS: usize = 4;
/// Complete heads waiting for a worker, at most (then 503).
const QUEUE: usize = 32;
/// Headers in one request, at most.
const MAX_HEADERS: usize = 64;

/// A request, head and body read.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query, without the `?`.
    pub query: String,
    /// The headers as sent (names compared without case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: IpAddr,
}

impl Request {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query parameter `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_value(self.query.as_bytes(), name)
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// More headers (`Set-Cookie`, `Location`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A JSON body.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Response::new(status, "application/json", body)
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Response {
        Response::json(status, &serde_json::json!({ "error": message.into() }))
    }

    /// With one more header.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        // A picture carries its own styles; a page may load only its own
        // script and styles, and never be framed.
        let csp = if self.content_type.starts_with("image/svg") {
            "default-src 'none'; style-src 'unsafe-inline'"
        } else {
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
        };
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
             Referrer-Policy: no-referrer\r\nContent-Security-Policy: {csp}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            // A header value never carries a line break (it would split the head).
            let clean: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
            head.push_str(&format!("{name}: {clean}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// What answers requests (called on the worker threads).
pub trait Handler: Send + Sync + 'static {
    /// The answer to one request.
    fn handle(&self, request: &Request) -> Response;
}

/// A parsed head.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query.
    pub query: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
}

/// Parses a request head (without its closing empty line); `Err` is the
/// status to answer with.
pub fn parse_head(bytes: &[u8]) -> Result<Head, u16> {
    let text = std::str::from_utf8(bytes).map_err(|_| 400u16)?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(400);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(if version.starts_with("HTTP/") {
            505
        } else {
            400
        });
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(400);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(400u16)?;
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(400);
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(400);
        }
        headers.push((name.to_string(), value.trim().to_string()));
        if headers.len() > MAX_HEADERS {
            return Err(431);
        }
    }
    Ok(Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
    })
}

/// The value of `name` in a `application/x-www-form-urlencoded` text (also
/// a query), decoded; `None` when absent or not UTF-8.
pub fn form_value(text: &[u8], name: &str) -> Option<String> {
    text.split(|b| *b == b'&').find_map(|pair| {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let key = decode(it.next()?)?;
        (key == name).then(|| decode(it.next().unwrap_or(b"")))?
    })
}

fn decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A connection with its head read, on its way to a worker.
struct Job {
    stream: TcpStream,
    head: Head,
    rest: Vec<u8>,
    peer: IpAddr,
}

/// A connection still sending its head.
struct Pending {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
    peer: IpAddr,
}

/// The running server: dropping it stops and joins every thread.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` with `handler`.
    pub fn start(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (wake, wake_rx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(QUEUE);
        let mut threads = Vec::new();
        for i in 1..=WORKERS {
            let queue = queue.clone();
            let handler = handler.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("web-{i}"))
                    .spawn(move || work(queue, handler))?,
            );
        }
        let flag = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("web-accept".into())
                .spawn(move || accept(listener, wake_rx, flag, jobs))?,
        );
        Ok(Server {
            addr,
            stop,
            wake,
            threads,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = (&self.wake).write_all(b"x");
        // The accept thread drops the job sender when it ends, which ends
        // the workers once their current request is answered.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Writes a short error answer without waiting (the socket is
/// non-blocking: what does not fit is dropped with the connection).
fn refuse_now(stream: &mut TcpStream, status: u16) {
    let _ = stream.write(&Response::error(status, reason(status)).bytes());
}

fn accept(listener: TcpListener, wake: UnixStream, stop: Arc<AtomicBool>, jobs: Sender<Job>) {
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let timeout_ms = pending
            .iter()
            .map(|p| p.deadline.saturating_duration_since(now))
            .min()
            .map_or(-1, |d| d.as_millis().min(60_000) as i32 + 1);
        fds.clear();
        for fd in [listener.as_raw_fd(), wake.as_raw_fd()]
            .into_iter()
            .chain(pending.iter().map(|p| p.stream.as_raw_fd()))
        {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that
        // outlives the call; the descriptors are owned by live objects.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("web: poll failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // Heads first (their indices follow `pending` as polled).
        let ready: Vec<bool> = fds[2..].iter().map(|f| f.revents != 0).collect();
        let mut keep = VecDeque::with_capacity(pending.len());
        for (mut p, is_ready) in pending.drain(..).zip(ready) {
            if is_ready {
                match read_head(&mut p) {
                    HeadState::More => {}
                    HeadState::Closed => continue,
                    HeadState::Bad(status) => {
                        refuse_now(&mut p.stream, status);
                        continue;
                    }
                    HeadState::Done(head, rest) => {
                        let job = Job {
                            stream: p.stream,
                            head,
                            rest,
                            peer: p.peer,
                        };
                        match jobs.try_send(job) {
                            Ok(()) => {}
                            Err(TrySendError::Full(mut job)) => refuse_now(&mut job.stream, 503),
                            Err(TrySendError::Disconnected(_)) => return,
                        }
                        continue;
                    }
                }
            }
            if p.deadline <= Instant::now() {
                refuse_now(&mut p.stream, 408);
                continue;
            }
            keep.push_back(p);
        }
        pending = keep;
        if fds[0].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        if stream.set_nonblocking(true).is_err() {
                            continue;
                        }
                        if pending.len() >= MAX_PENDING {
                            // The oldest has had the longest to send its head.
                            pending.pop_front();
                        }
                        pending.push_back(Pending {
                            stream,
                            buf: Vec::new(),
                            deadline: Instant::now() + HEAD_DEADLINE,
                            peer: peer.ip(),
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // Out of descriptors (EMFILE) and the like: the
                        // pending heads go on; try again at the next poll.
                        log::warn!("web: accept failed: {e}");
                        if pending.len() > MAX_PENDING / 2 {
                            pending.pop_front();
                        }
                        // Do not spin on a listener that stays readable.
                        std::thread::sleep(Duration::from_millis(10));
                        break;
                    }
                }
            }
        }
    }
}

enum HeadState {
    More,
    Closed,
    Bad(u16),
    Done(Head, Vec<u8>),
}

fn read_head(p: &mut Pending) -> HeadState {
    let mut chunk = [0u8; 2048];
    loop {
        match p.stream.read(&mut chunk) {
            Ok(0) => return HeadState::Closed,
            Ok(n) => {
                p.buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = find_end(&p.buf) {
                    if end > MAX_HEAD {
                        return HeadState::Bad(431);
                    }
                    let rest = p.buf.split_off(end + 4);
                    p.buf.truncate(end);
                    return match parse_head(&p.buf) {
                        Ok(head) => HeadState::Done(head, rest),
                        Err(status) => HeadState::Bad(status),
                    };
                }
                if p.buf.len() > MAX_HEAD {
                    return HeadState::Bad(431);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return HeadState::More,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return HeadState::Closed,
        }
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn work(queue: Receiver<Job>, handler: Arc<dyn Handler>) {
    for job in queue {
        serve(job, handler.as_ref());
    }
}

fn serve(job: Job, handler: &dyn Handler) {
    let Job {
        mut stream,
        head,
        mut rest,
        peer,
    } = job;
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
    {
        return;
    }
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some() {
        return refuse(
            stream,
            411,
            "send a Content-Length; chunked bodies are not taken",
        );
    }
    let length = match header("content-length") {
        None => 0,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return refuse(stream, 400, "Content-Length is not a number"),
        },
    };
    if length > MAX_BODY as u64 {
        return refuse(
            stream,
            413,
            &format!("the body is larger than {MAX_BODY} bytes"),
        );
    }
    let length = length as usize;
    if rest.len() > length {
        // Pipelined bytes after the body: one request per connection.
        rest.truncate(length);
    }
    let mut body = rest;
    if body.len() < length {
        let mut more = vec![0u8; length - body.len()];
        if stream.read_exact(&mut more).is_err() {
            return refuse(stream, 408, "the body did not arrive in time");
        }
        body.extend_from_slice(&more);
    }
    let request = Request {
        method: head.method,
        path: head.path,
        query: head.query,
        headers: head.headers,
        body,
        peer,
    };
    let response = handler.handle(&request);
    let _ = stream.write_all(&response.bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

/// Answers with an error while the client may still be sending: the answer
/// is written, then what the client sends is read and dropped for a moment,
/// so that closing does not reset the connection before it reads the answer.
fn refuse(mut stream: TcpStream, status: u16, message: &str) {
    let _ = stream.write_all(&Response::error(status, message).bytes());
    let _ = stream.shutdown(Shutdown::Write);
    let end = Instant::now() + Duration::from_secs(2);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 16 * 1024];
    let mut drained = 0usize;
    while Instant::now() < end && drained < 64 * 1024 * 1024 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_parses_into_method_path_query_and_headers() {
        let h =
            parse_head(b"GET /api/readings?since=6h HTTP/1.1\r\nHost: x\r\nCookie: a=b").unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/api/readings");
        assert_eq!(h.query, "since=6h");
        assert_eq!(
            h.headers,
            vec![("Host".into(), "x".into()), ("Cookie".into(), "a=b".into())]
        );
    }

    #[test]
    fn malformed_heads_get_their_status() {
        for (head, status) in [
            (&b"GET / HTTP/2.0"[..], 505),
            (b"GET /", 400),
            (b"get / HTTP/1.1", 400),
            (b"GET x HTTP/1.1", 400),
            (b"GET / HTTP/1.1\r\nNo colon", 400),
            (b"GET / HTTP/1.1\r\n: empty", 400),
            (b"GET / HTTP/1.1\r\nA: b\x01c", 400),
            (b"GET /\xff HTTP/1.1", 400),
            (b"GET  / HTTP/1.1", 400),
        ] {
            assert_eq!(
                parse_head(head),
                Err(status),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"a=1&password=p%40ss+w", "password").as_deref(),
            Some("p@ss w")
        );
        assert_eq!(form_value(b"password=%zz", "password"), None);
        assert_eq!(form_value(b"password=%e2%82", "password"), None);
        assert_eq!(form_value(b"other=1", "password"), None);
    }

    #[test]
    fn random_heads_never_panic() {
        // A small xorshift, so the run is the same every time.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"GETPOST /?=&%:\r\n\t\x00\xffHTTP/1.0abc";
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if parse_head(&bytes).is_ok() {
                parsed += 1;
            }
            let _ = form_value(&bytes, "a");
        }
        // Mostly garbage: nearly everything is refused, nothing panicked.
        assert!(parsed < 20_000);
    }
}
