//! Opening a TCP connection to a plug within a request's deadline, shared by
//! the legacy transport and the HTTP client of KLAP and AES: the host is
//! resolved on every connect (a plug that moved to a new DHCP address is
//! found again by name), the connect waits at most the connect timeout and
//! never past the deadline, and every failure names `host:port`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::kasa::error::KasaError;

/// `host:port`, with IPv6 literals in brackets.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves `host` (a name or an IP literal) and `port` to the first address.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    })
}

/// What is left until `deadline`, `None` when nothing is.
pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Whether an I/O error is a timeout (a socket timeout reads as WouldBlock).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Whole milliseconds, rounded up: a timeout measured a hair short of the
/// configured one (the deadline was set a few microseconds earlier) still
/// reads as configured.
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    (d.as_secs_f64() * 1000.0).ceil() as u64
}

/// A refused connect: what the caller adds to the error (the legacy
/// transport asks the UDP 20002 probe whether the device speaks KLAP).
pub(crate) type OnRefused<'a> = &'a dyn Fn(SocketAddr, Instant) -> KasaError;

/// Connects to `host:port` (labelled `addr` in errors) within
/// `connect_timeout` and `deadline`, with TCP_NODELAY (small request/reply
/// messages: Nagle would only add latency). `op` names what the connect is
/// for when no time is left.
pub(crate) fn connect(
    host: &str,
    port: u16,
    addr: &str,
    connect_timeout: Duration,
    deadline: Instant,
    op: &str,
    on_refused: OnRefused<'_>,
) -> Result<TcpStream, KasaError> {
    let sa = resolve(host, port).map_err(|source| KasaError::Resolve {
        host: host.to_string(),
        port,
        source,
    })?;
    let left = remaining(deadline).ok_or_else(|| KasaError::NoTime {
        addr: addr.to_string(),
        op: format!("connecting for {op}"),
    })?;
    let timeout = connect_timeout.min(left).max(Duration::from_millis(1));
    let io_err = |what: &str, source: io::Error| KasaError::Io {
        addr: addr.to_string(),
        op: what.to_string(),
        source,
    };
    let sock = Socket::new(Domain::for_address(sa), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| io_err("socket", e))?;
    match sock.connect_timeout(&SockAddr::from(sa), timeout) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(on_refused(sa, deadline))
        }
        Err(e) if is_timeout(&e) => {
            return Err(KasaError::TimedOut {
                addr: addr.to_string(),
                op: "connect".into(),
                after_ms: ceil_ms(timeout),
            })
        }
        Err(source) => {
            return Err(KasaError::Connect {
                addr: addr.to_string(),
                source,
            })
        }
    }
    sock.set_tcp_nodelay(true)
        .map_err(|e| io_err("set TCP_NODELAY", e))?;
    Ok(sock.into())
}

/// What a kept-open connection holds just before a request goes out.
pub(crate) enum Idle {
    /// Nothing: it can carry the request.
    Clean,
    /// Bytes nobody asked for (at least this many): a late reply to an
    /// earlier request, or a frame the plug sent on its own.
    Stray(usize),
    /// The plug closed it while it was idle.
    Closed,
}

/// Looks at a kept-open connection without waiting and without taking
/// anything from it.
pub(crate) fn idle_state(stream: &TcpStream) -> io::Result<Idle> {
    stream.set_nonblocking(true)?;
    let mut probe = [0u8; 64];
    let peeked = stream.peek(&mut probe);
    stream.set_nonblocking(false)?;
    match peeked {
        Ok(0) => Ok(Idle::Closed),
        Ok(n) => Ok(Idle::Stray(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Idle::Clean),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn idle_state_sees_waiting_bytes_and_a_closed_peer_without_taking_them() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut server, _) = l.accept().unwrap();
        assert!(matches!(idle_state(&client).unwrap(), Idle::Clean));
        server.write_all(b"late").unwrap();
        // A blocking peek waits for the bytes to arrive; idle_state must
        // then see them, and leave them there.
        let mut buf = [0u8; 4];
        assert_eq!(client.peek(&mut buf).unwrap(), 4);
        assert!(matches!(idle_state(&client).unwrap(), Idle::Stray(4)));
        assert!(matches!(idle_state(&client).unwrap(), Idle::Stray(4)));
        // Still a blocking socket afterwards.
        let mut r = &client;
        std::io::Read::read_exact(&mut r, &mut buf).unwrap();
        assert_eq!(&buf, b"late");
        drop(server);
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(client.peek(&mut buf).unwrap(), 0, "the close arrived");
        assert!(matches!(idle_state(&client).unwrap(), Idle::Closed));
    }
}
