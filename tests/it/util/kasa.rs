//! Test helpers for the kasa tests: simulated plugs on 127.0.0.1:0, fast plug
//! timings, workers with their outcome channel, and hostile raw peers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kasa_thermostat::kasa::credentials::Credentials;
use kasa_thermostat::kasa::device::Device;
use kasa_thermostat::kasa::{Outlet, PlugHandle, PlugTarget, Timing, TransportKind};
use kasa_thermostat::msg::{Completion, PlugOutcome, PlugState};
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug};
use kasa_thermostat::Role;

/// The real schedule at 1/100 (sleeps 0/10/20 ms, spacing 5 ms), with 250 ms
/// timeouts so that a busy CI machine does not turn a healthy reply into a failure.
pub fn fast_timing() -> Timing {
    Timing {
        connect: Duration::from_millis(250),
        before: Duration::from_millis(250),
        after: Duration::from_millis(250),
        ..Timing::default().scaled(0.01)
    }
}

/// A deadline for one request on loopback: generous, since a busy CI
/// machine is slow, yet bounded so that a hang fails the test.
pub fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// Switches `d` on and off `n` times, each time reading back the state it
/// was just given: enough requests to outlive short sessions.
pub fn toggle_and_read_back(d: &mut impl Device, n: usize) {
    for i in 0..n {
        d.set(i % 2 == 0, soon()).unwrap();
        assert_eq!(d.read(soon()).unwrap().on, i % 2 == 0);
    }
}

/// A simulated plug on 127.0.0.1:0.
pub fn sim(model: Model, fault: Option<Fault>) -> SimPlug {
    SimPlug::start(SimOptions {
        model,
        fault,
        ..SimOptions::default()
    })
    .expect("start the simulated plug")
}

/// The TP-Link account the KLAP and AES simulators are bound to.
pub const USER: &str = "heater@example.com";
/// Its password.
pub const PASS: &str = "correct horse";

/// The account's credentials.
pub fn creds() -> Credentials {
    Credentials::new(USER, PASS)
}

/// A simulated device on 127.0.0.1:0 bound to the test account.
pub fn sim_with_account(model: Model, fault: Option<Fault>) -> SimPlug {
    SimPlug::start(SimOptions {
        model,
        fault,
        alias: "Heat mat".into(),
        credentials: Some(creds()),
        ..SimOptions::default()
    })
    .expect("start the simulated device")
}

/// A worker for `sim` (and `outlet`), with its outcome channel.
pub fn worker(
    addr: SocketAddr,
    outlet: Option<Outlet>,
    timing: Timing,
) -> (PlugHandle, Receiver<PlugOutcome>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let target = PlugTarget {
        role: Role::Heater,
        host: addr.ip().to_string(),
        port: Some(addr.port()),
        outlet,
        transport: TransportKind::Legacy,
    };
    let device = kasa_thermostat::kasa::open_device(&target, &timing, None);
    (
        PlugHandle::spawn(target, timing, device, tx).expect("spawn worker"),
        rx,
    )
}

/// How a command ended and the state it left, for one-line assertions:
/// `(Completion::Done, Some(PlugState::On))` is a verified on.
pub fn result(o: &PlugOutcome) -> (Completion, Option<PlugState>) {
    (o.completion.clone(), o.state)
}

/// The failure message of an outcome that must have failed.
pub fn failure(o: &PlugOutcome) -> String {
    match o.failure() {
        Some(f) => f.message.clone(),
        None => panic!("expected a failure, got {o:?}"),
    }
}

/// The next outcome; the 20 s bound only catches a hung worker.
pub fn next_outcome(rx: &Receiver<PlugOutcome>) -> PlugOutcome {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the worker reported an outcome")
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// A port on 127.0.0.1 that refuses connections for as long as the guard lives.
pub fn refused_port() -> (socket2::Socket, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

/// A peer that answers every request with `reply` (raw bytes), once per connection.
pub fn raw_peer(reply: Vec<u8>) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::Builder::new()
        .name("raw-peer".into())
        .spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&reply);
                let _ = s.flush();
                // Hold the connection until the client gives up.
                let _ = s.read(&mut buf);
            }
        })
        .unwrap();
    (addr, t)
}

/// How a [`HostilePlug`] misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Right after each reply, a second frame nobody asked for: a sysinfo
    /// with the relay the other way (what a late reply to a timed-out
    /// request looks like on a kept-open connection).
    TrailingFrame,
    /// On its first connection only, a frame before any request.
    GreetFirst,
    /// Every request is answered as if it were another method.
    WrongMethod,
}

/// A legacy (XOR, TCP) plug on 127.0.0.1:0 that answers `get_sysinfo` and
/// `set_relay_state` correctly but misbehaves as its [`Hostility`] says.
/// Dropping it stops its threads.
pub struct HostilePlug {
    addr: SocketAddr,
    shared: std::sync::Arc<HostileShared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct HostileShared {
    relay: std::sync::atomic::AtomicBool,
    connections: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
    peers: std::sync::Mutex<Vec<(std::net::TcpStream, JoinHandle<()>)>>,
}

impl HostilePlug {
    /// Starts it.
    pub fn start(how: Hostility) -> HostilePlug {
        use std::sync::atomic::Ordering;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let shared = std::sync::Arc::new(HostileShared::default());
        let s = std::sync::Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("hostile-plug".into())
            .spawn(move || {
                for conn in l.incoming() {
                    if s.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let first = s.connections.fetch_add(1, Ordering::SeqCst) == 0;
                    let keep = conn.try_clone().unwrap();
                    let peer = std::sync::Arc::clone(&s);
                    let t = std::thread::Builder::new()
                        .name("hostile-conn".into())
                        .spawn(move || hostile_conn(conn, how, first, &peer))
                        .unwrap();
                    s.peers.lock().unwrap().push((keep, t));
                }
            })
            .unwrap();
        HostilePlug {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether its relay is closed.
    pub fn relay(&self) -> bool {
        self.shared.relay.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> u64 {
        self.shared
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for HostilePlug {
    fn drop(&mut self) {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        let peers = std::mem::take(&mut *self.shared.peers.lock().unwrap());
        for (stream, thread) in peers {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            let _ = thread.join();
        }
    }
}

fn sysinfo_reply(on: bool) -> serde_json::Value {
    serde_json::json!({"system": {"get_sysinfo": {
        "alias": "hostile", "model": "HS100(UK)", "relay_state": u8::from(on), "err_code": 0
    }}})
}

fn hostile_conn(mut s: std::net::TcpStream, how: Hostility, first: bool, shared: &HostileShared) {
    use kasa_thermostat::kasa::transport::xor;
    use std::sync::atomic::Ordering;
    if how == Hostility::GreetFirst && first {
        // A late answer to a dead-man query that was never sent on this connection.
        let greet =
            serde_json::json!({"count_down": {"get_rules": {"rule_list": [], "err_code": 0}}});
        let _ = s.write_all(&xor::frame(greet.to_string().as_bytes()));
    }
    while let Ok(plain) = xor::read_frame(&mut s) {
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(&plain) else {
            return;
        };
        let reply = if how == Hostility::WrongMethod {
            serde_json::json!({"system": {"set_led_off": {"err_code": 0}}})
        } else if let Some(state) = req.pointer("/system/set_relay_state/state") {
            shared.relay.store(state == 1, Ordering::SeqCst);
            serde_json::json!({"system": {"set_relay_state": {"err_code": 0}}})
        } else {
            sysinfo_reply(shared.relay.load(Ordering::SeqCst))
        };
        let mut out = xor::frame(reply.to_string().as_bytes());
        if how == Hostility::TrailingFrame {
            // Sent at once, in the same write as the reply, not 300 ms
            // later: to the client it is the same thing (bytes waiting that
            // answer nothing it is about to ask), and one write makes them
            // arrive together however slowly the client runs (under qemu).
            let stale = sysinfo_reply(!shared.relay.load(Ordering::SeqCst));
            out.extend_from_slice(&xor::frame(stale.to_string().as_bytes()));
        }
        if s.write_all(&out).is_err() {
            return;
        }
    }
}
