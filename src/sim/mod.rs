//! A simulated TP-Link plug that speaks the real protocols on loopback:
//!
//! * legacy Kasa plugs (HS100, HS110 with energy meter, HS300 six-outlet
//!   strip) on TCP with the XOR framing, answering UDP discovery on the same
//!   port (`sim/iot.rs`);
//! * KLAP devices over HTTP on the TCP port (`sim/klap/`): Tapo P100, P110,
//!   the P300 strip, Kasa KP125M and the EP40M strip with the SMART JSON
//!   (`sim/smart.rs`), and an HS100(UK) hw 4.1 with the legacy JSON inside KLAP
//!   v1, all answering the UDP 20002 probe with their `mgt_encrypt_schm`;
//! * AES ("securePassthrough") devices over HTTP (`sim/aes/`): a Tapo P110
//!   (EU) fw 1.2.3 and a Kasa EP25 (US) hw 2.6 with the SMART JSON;
//! * TPAP devices over HTTP (`sim/tpap/`): the Tapo P110 and Kasa KP125M
//!   on firmware 1.4.x, announcing `TPAP` in their 20002 answer (or, with
//!   `tpap_preferred: false`, announcing it but speaking KLAP);
//! * any device python-kasa recorded (`sim/fixture/`): a fixture JSON of
//!   its test suite served over the transport its discovery result names,
//!   with the relays live.
//!
//! It is not part of the client library: it uses `crate::kasa` (the codecs,
//! the HTTP parsers and the ciphers serve its server side) and the client
//! never uses it. Tests, the demo (`run --simulate`) and `simulate-plug` use it;
//! python-kasa's `kasa` CLI drives it in the interop gates, so its replies
//! follow what real devices send, errors included.
//!
//! Countdown rules, auto-off and lagging relays are evaluated lazily against
//! the clock whenever the state is looked at, and their transitions are
//! stamped with the instant they were due, so no timer thread is needed and
//! tests stay exact. Faults (`SimOptions::fault`, [`SimPlug::set_fault`])
//! make it misbehave the ways real plugs and Wi-Fi do.
//!
//! Files: `model.rs` (the hardware), `fault.rs` (the faults) and `state.rs`
//! (the live state and what the servers keep) are what the servers use;
//! what the state keeps of a server's is defined in that server's
//! data-only file (`klap/session.rs`, `aes/session.rs`, `tpap/session.rs`,
//! `fixture/recording.rs`), which uses neither `state.rs` nor the server.
//! This file starts a plug, accepts its connections, hands each to its
//! server and answers UDP, and is used by none of them.

mod aes;
mod fault;
pub mod fixture;
mod iot;
mod klap;
mod model;
mod smart;
mod state;
mod tpap;

use std::fmt;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::kasa::credentials::{Credentials, KlapVersion};
use crate::kasa::discovery::probe::is_klap_probe;
use crate::kasa::transport::xor;

pub use fault::Fault;
use klap::session::Sessions;
pub use model::Model;
use model::Wire;
use state::{hex_id, lock_or_recover, AutoOff, Inner, OutletState, Shared};
pub use state::{SimState, Transition};
use tpap::session::{Account, Flavour, Tpap};

/// How to start a simulated plug.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// TCP and UDP address; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The hardware.
    pub model: Model,
    /// A fault from the start.
    pub fault: Option<Fault>,
    /// The plug's name.
    pub alias: String,
    /// Emulate newer firmware of a legacy model: TCP refused, UDP answers
    /// the 20002 probe with KLAP.
    pub klap_only: bool,
    /// KLAP models: the TP-Link account the device is bound to. `None`: a
    /// device never bound to an account, which accepts its family's
    /// published default credentials.
    pub credentials: Option<Credentials>,
    /// SMART models: leave the `countdown` component out, as firmware that
    /// only has `auto_off` would (P110, KP125M and P300 keep auto-off).
    pub no_countdown: bool,
    /// Serve this python-kasa recording instead of `model` (its discovery
    /// result, if any, says which transport).
    pub fixture: Option<Arc<fixture::Fixture>>,
    /// TPAP models: `false` announces TPAP with `"tpap_preferred": false`
    /// and speaks KLAP, as some KP125M units do.
    pub tpap_preferred: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            model: Model::Hs100,
            fault: None,
            alias: "Simulated plug".into(),
            klap_only: false,
            credentials: None,
            no_countdown: false,
            fixture: None,
            tpap_preferred: true,
        }
    }
}

/// A running simulated plug; dropping it stops its threads.
pub struct SimPlug {
    addr: SocketAddr,
    state: SimState,
    threads: Vec<JoinHandle<()>>,
    // Keeps the port taken (and refusing) in KLAP-only mode.
    _refusing: Option<socket2::Socket>,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl SimPlug {
    /// Binds TCP (and UDP on the same port) and starts serving.
    pub fn start(opts: SimOptions) -> std::io::Result<SimPlug> {
        let wire_of_opts = opts
            .fixture
            .as_ref()
            .map_or(opts.model.wire(), |f| f.wire());
        let sleepy = match opts.fault {
            Some(Fault::Sleepy(d)) if wire_of_opts != Wire::Xor => Some(d),
            _ => None,
        };
        let (listener, refusing, addr) = if opts.klap_only || sleepy.is_some() {
            // A bound socket that never listens makes connects fail with
            // "refused", like a plug whose port 9999 is closed.
            let s = socket2::Socket::new(
                socket2::Domain::for_address(opts.bind),
                socket2::Type::STREAM,
                None,
            )?;
            s.bind(&opts.bind.into())?;
            let addr = s
                .local_addr()?
                .as_socket()
                .ok_or_else(|| std::io::Error::other("bound to a non-IP address"))?;
            (None, Some(s), addr)
        } else {
            let l = TcpListener::bind(opts.bind)?;
            let addr = l.local_addr()?;
            (Some(l), None, addr)
        };
        let udp = UdpSocket::bind(addr)?;

        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let fx = opts.fixture.clone();
        let seed = format!("{:?}{}{}{serial}", opts.model, addr, std::process::id());
        let device_id = hex_id(&seed, 40);
        let mac_hex = hex_id(&format!("mac{seed}"), 6);
        let mac = format!(
            "50:C7:BF:{}:{}:{}",
            &mac_hex[0..2],
            &mac_hex[2..4],
            &mac_hex[4..6]
        );
        let now = Instant::now();
        let new_outlet = |alias: String, on: bool| OutletState {
            alias,
            on,
            on_since: on.then_some(now),
            rule: None,
            auto_off: AutoOff {
                enable: false,
                delay_min: 120,
                since: now,
            },
            pending: None,
        };
        let outlets = match &fx {
            Some(f) => f
                .outlets()
                .iter()
                .map(|o| new_outlet(o.alias.clone(), o.on))
                .collect(),
            None => (0..opts.model.outlets())
                .map(|i| {
                    let alias = if opts.model.outlets() > 1 {
                        format!("Plug {}", i + 1)
                    } else {
                        opts.alias.clone()
                    };
                    new_outlet(alias, false)
                })
                .collect(),
        };
        let flaky_left = match opts.fault {
            Some(Fault::Flaky(n)) => n,
            _ => 0,
        };
        let version = fx
            .as_ref()
            .map_or(opts.model.klap_version(), |f| f.klap_version());
        let creds = opts.credentials.clone().unwrap_or_else(|| match &fx {
            Some(f) => f.default_credentials(),
            None => opts.model.default_credentials(),
        });
        let bad = Credentials::new(format!("{}-other@example.com", device_id), "not-yours");
        let flavour = if opts.model == Model::Kp125mTpap {
            Flavour::Sha256CryptChaCha
        } else {
            Flavour::Md5CryptAes
        };
        let mac_copy = mac.clone();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                model: opts.model,
                alias: match &fx {
                    Some(f) => f
                        .outlets()
                        .first()
                        .map_or_else(|| f.model().to_string(), |o| o.alias.clone()),
                    None => opts.alias.clone(),
                },
                device_id,
                mac,
                led_off: false,
                no_countdown: opts.no_countdown,
                outlets,
                transitions: Vec::new(),
                set_requests: Vec::new(),
                request_times: Vec::new(),
                requests: 0,
                connections: 0,
                handshakes: 0,
                fault: opts.fault.clone(),
                flaky_left,
                ids: 0,
                fixture: fx.clone(),
                tpap_preferred: opts.tpap_preferred,
            }),
            klap: Mutex::new(Sessions::default()),
            aes: Mutex::new(Sessions::default()),
            auth: creds.auth_hash(version),
            bad_auth: bad.auth_hash(version),
            tpap_accounts: (wire_of_opts == Wire::Tpap && opts.tpap_preferred).then(|| {
                let mac_for = |c: &Credentials| Account::new(flavour, c, &mac_copy);
                (mac_for(&creds), mac_for(&bad))
            }),
            tpap_flavour: flavour,
            tpap: Mutex::new(Tpap::default()),
            tpap_sessions: Mutex::new(Sessions::default()),
            port: addr.port(),
            sleeper: Mutex::new(None),
            late_threads: Mutex::new(Vec::new()),
            probes: AtomicU64::new(0),
            creds,
            bad_creds: bad,
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let state = SimState { shared };
        let port = addr.port();
        let mut threads = Vec::new();
        let refusing = match (sleepy, refusing) {
            (Some(d), Some(sock)) if !opts.klap_only => {
                *lock_or_recover(&state.shared.sleeper) = Some((sock, Instant::now() + d));
                None
            }
            (_, r) => r,
        };
        if let Some(l) = listener {
            let st = state.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sim-accept-{port}"))
                    .spawn(move || accept_loop(l, st))?,
            );
        }
        let st = state.clone();
        let wire = wire_of_opts;
        let announce = opts.klap_only || wire != Wire::Xor;
        let legacy_udp = !opts.klap_only && wire == Wire::Xor;
        threads.push(
            std::thread::Builder::new()
                .name(format!("sim-udp-{port}"))
                .spawn(move || udp_loop(udp, st, announce, legacy_udp))?,
        );
        Ok(SimPlug {
            addr,
            state,
            threads,
            _refusing: refusing,
        })
    }

    /// Where it listens (TCP and UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A shareable view of its state, with controls.
    pub fn state(&self) -> SimState {
        self.state.clone()
    }

    /// Changes the fault (`None` heals it); `Flaky(n)` counts from now.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let mut g = self.state.lock();
        g.flaky_left = match fault {
            Some(Fault::Flaky(n)) => n,
            _ => 0,
        };
        g.fault = fault;
    }
}

impl Drop for SimPlug {
    fn drop(&mut self) {
        self.state.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept and recv so their threads see the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Ok(u) = UdpSocket::bind(SocketAddr::new(self.addr.ip(), 0)) {
            let _ = u.send_to(b"stop", self.addr);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let late = std::mem::take(&mut *lock_or_recover(&self.state.shared.late_threads));
        for t in late {
            let _ = t.join();
        }
        let conns = std::mem::take(&mut *lock_or_recover(&self.state.shared.conns));
        for (s, _) in &conns {
            let _ = s.shutdown(Shutdown::Both);
        }
        for (_, t) in conns {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, state: SimState) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for stream in listener.incoming() {
        if state.shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        state.lock().connections += 1;
        let Ok(copy) = stream.try_clone() else {
            continue;
        };
        let st = state.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("sim-conn-{port}"))
            .spawn(move || serve_connection(stream, st));
        if let Ok(handle) = spawned {
            let mut conns = lock_or_recover(&state.shared.conns);
            conns.retain(|(_, h)| !h.is_finished());
            conns.push((copy, handle));
        }
    }
}

fn serve_connection(mut stream: TcpStream, state: SimState) {
    let _ = stream.set_nodelay(true);
    let wire = state.lock().wire();
    match wire {
        Wire::Xor => iot::serve(&mut stream, &state),
        Wire::Klap => klap::serve(&mut stream, &state),
        Wire::Aes => aes::serve(&mut stream, &state),
        Wire::Tpap => tpap::serve(&mut stream, &state),
    }
    // The accept loop holds a clone of this socket (to unblock it at drop), so
    // dropping ours would not close the connection: shut it down explicitly.
    let _ = stream.shutdown(Shutdown::Both);
}

fn udp_loop(sock: UdpSocket, state: SimState, announce: bool, legacy: bool) {
    // Drop wakes this thread with a datagram; the timeout is a backstop so a
    // lost wake-up can never hang the join.
    let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = vec![0u8; 4096];
    loop {
        let received = sock.recv_from(&mut buf);
        state.wake_if_due(false);
        let Ok((len, from)) = received else {
            if state.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        };
        if state.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let data = &buf[..len];
        if is_klap_probe(data) {
            state.shared.probes.fetch_add(1, Ordering::Relaxed);
            state.wake_if_due(true);
            if announce && state.lock().fault != Some(Fault::Blackhole) {
                let _ = sock.send_to(&state.probe_reply(from), from);
            }
            continue;
        }
        if !legacy {
            continue;
        }
        let Ok(req) = serde_json::from_slice::<Value>(&xor::decrypt(data)) else {
            continue;
        };
        if state.lock().fault == Some(Fault::Blackhole) {
            continue;
        }
        let reply = state.lock().handle_iot(&req, Instant::now());
        let _ = sock.send_to(&xor::encrypt(reply.to_string().as_bytes()), from);
    }
}

impl SimState {
    /// The `sleepy` fault: starts listening once a probe came (`probed`) or
    /// the sleep is over. Connections before that were refused.
    fn wake_if_due(&self, probed: bool) {
        let mut sleeper = lock_or_recover(&self.shared.sleeper);
        let due = sleeper
            .as_ref()
            .is_some_and(|(_, at)| probed || Instant::now() >= *at);
        if !due || self.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some((sock, _)) = sleeper.take() else {
            return;
        };
        drop(sleeper);
        if sock.listen(128).is_err() {
            return;
        }
        let listener: TcpListener = sock.into();
        let st = self.clone();
        let port = self.shared.port;
        if let Ok(h) = std::thread::Builder::new()
            .name(format!("sim-accept-{port}"))
            .spawn(move || accept_loop(listener, st))
        {
            lock_or_recover(&self.shared.late_threads).push(h);
        }
    }

    /// Whether the `sleepy` fault still refuses connections.
    pub fn asleep(&self) -> bool {
        lock_or_recover(&self.shared.sleeper).is_some()
    }

    /// The number of UDP 20002 probes received.
    pub fn probes(&self) -> u64 {
        self.shared.probes.load(Ordering::Relaxed)
    }

    /// TPAP: forgets every session, as a restart would; the next request
    /// on one is answered HTTP 401.
    pub fn forget_tpap_sessions(&self) {
        *lock_or_recover(&self.shared.tpap_sessions) = Sessions::default();
    }

    /// TPAP: the failed logins the device has counted since the last good one.
    pub fn failed_logins(&self) -> i64 {
        lock_or_recover(&self.shared.tpap).failed
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut g = lock_or_recover(&self.shared.inner);
        g.apply_due(Instant::now());
        g
    }

    /// The relay of a single plug (outlet 0 of a strip).
    pub fn relay(&self) -> bool {
        self.outlet(0)
    }

    /// An outlet's state (false for an outlet the model does not have).
    pub fn outlet(&self, index: usize) -> bool {
        self.lock().outlets.get(index).is_some_and(|o| o.on)
    }

    /// Switches the relay as the button or the app would (no protocol).
    pub fn set_relay(&self, on: bool) {
        self.set_outlet(0, on);
    }

    /// Switches one outlet as the button or the app would.
    pub fn set_outlet(&self, index: usize, on: bool) {
        let mut g = self.lock();
        if index < g.outlets.len() {
            g.switch(index, on, Instant::now());
        }
    }

    /// Every real relay change, in order.
    pub fn transitions(&self) -> Vec<Transition> {
        let mut t = self.lock().transitions.clone();
        t.sort_by_key(|t| t.at);
        t
    }

    /// Arrival time of every switch request (`set_relay_state`, or
    /// `set_device_info` with `device_on`), faulty or not.
    pub fn set_requests(&self) -> Vec<Instant> {
        self.lock().set_requests.clone()
    }

    /// Arrival time of every request (a legacy frame, or a KLAP
    /// `/app/request`), answered or not.
    pub fn request_times(&self) -> Vec<Instant> {
        self.lock().request_times.clone()
    }

    /// The number of requests received (as [`SimState::request_times`]), answered or not.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// The number of TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    /// The number of KLAP `handshake1` requests received.
    pub fn handshakes(&self) -> u64 {
        self.lock().handshakes
    }

    /// The countdown rules of a plug (`None`) or an outlet, as `get_rules`
    /// (legacy) or `get_countdown_rules` (SMART) shows them.
    pub fn countdown_rules(&self, outlet: Option<usize>) -> Vec<Value> {
        let g = self.lock();
        let now = Instant::now();
        let smart = g.is_smart();
        g.outlets
            .get(outlet.unwrap_or(0))
            .and_then(|o| o.rule.as_ref())
            .map(|r| {
                vec![if smart {
                    smart::rule_json(r, now)
                } else {
                    iot::rule_json(r, now)
                }]
            })
            .unwrap_or_default()
    }

    /// Deletes the countdown rule of a plug (`None`) or outlet, as the app
    /// would (or firmware that drops a countdown when the relay switches).
    pub fn clear_countdown(&self, outlet: Option<usize>) {
        if let Some(o) = self.lock().outlets.get_mut(outlet.unwrap_or(0)) {
            o.rule = None;
        }
    }

    /// The auto-off setting of a plug (`None`) or outlet: `(enabled, minutes)`.
    pub fn auto_off(&self, outlet: Option<usize>) -> Option<(bool, u32)> {
        let g = self.lock();
        g.outlets
            .get(outlet.unwrap_or(0))
            .map(|o| (o.auto_off.enable, o.auto_off.delay_min))
    }

    /// The whole sysinfo (legacy models) or `get_device_info` result (SMART).
    pub fn sysinfo(&self) -> Value {
        let g = self.lock();
        let now = Instant::now();
        if g.fixture.is_some() && g.is_smart() {
            g.fixture_device_info(now)
        } else if g.is_smart() {
            g.device_info(now)
        } else {
            g.sysinfo(now)
        }
    }

    /// The SMART `device_id` of a strip outlet (`None` for other models).
    pub fn child_id(&self, index: usize) -> Option<String> {
        let g = self.lock();
        if let Some(f) = &g.fixture {
            return f.outlet_child_id(index).map(str::to_string);
        }
        (g.is_smart() && g.is_strip() && index < g.outlets.len()).then(|| g.smart_child_id(index))
    }

    fn probe_reply(&self, from: SocketAddr) -> Vec<u8> {
        let g = self.lock();
        if let Some(f) = &g.fixture {
            return probe_packet(&f.probe_answer(from));
        }
        let wire = g.model.wire();
        let mut schm = json!({
            "is_support_https": false,
            // A legacy model with klap_only emulates KLAP firmware.
            "encrypt_type": match wire {
                Wire::Aes => "AES",
                Wire::Tpap => "TPAP",
                _ => "KLAP",
            },
            "http_port": 80,
        });
        if matches!(wire, Wire::Aes | Wire::Tpap) || g.model.klap_version() == KlapVersion::V2 {
            schm["lv"] = json!(2);
        }
        if wire == Wire::Tpap && !g.tpap_preferred {
            schm["tpap_preferred"] = json!(false);
        }
        let body = json!({
            "error_code": 0,
            "result": {
                "device_id": hex_id(&format!("discovery{}", g.device_id), 32),
                "owner": "",
                "device_type": g.model.device_type(),
                "device_model": g.model.discovery_model(),
                "ip": from.ip().to_string(),
                "mac": g.mac.replace(':', "-"),
                "is_support_iot_cloud": true,
                "obd_src": "tplink",
                "factory_default": false,
                "mgt_encrypt_schm": schm
            }
        });
        probe_packet(&body)
    }

    /// Counts one request arriving now and decides what its fault does:
    /// `None` drops it unanswered (flaky), otherwise the fault in force.
    fn arrive(&self, switch: bool) -> (Instant, Option<Option<Fault>>) {
        let now = Instant::now();
        let mut g = self.lock();
        g.requests += 1;
        g.request_times.push(now);
        if switch {
            g.set_requests.push(now);
        }
        if g.flaky_left > 0 {
            g.flaky_left -= 1;
            return (now, None);
        }
        (now, Some(g.fault.clone()))
    }
}

/// A 20002 answer: the 16-byte header, then the JSON.
fn probe_packet(body: &Value) -> Vec<u8> {
    let body = body.to_string();
    let mut pkt = vec![0x02, 0x00, 0x00, 0x01];
    pkt.extend_from_slice(&(body.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    pkt.extend_from_slice(&[0x11, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    pkt.extend_from_slice(body.as_bytes());
    pkt
}

impl fmt::Debug for SimPlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlug").field("addr", &self.addr).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpap_models_announce_tpap() {
        for (preferred, speaks) in [(true, Wire::Tpap), (false, Wire::Klap)] {
            let sim = SimPlug::start(SimOptions {
                model: Model::Kp125mTpap,
                tpap_preferred: preferred,
                ..SimOptions::default()
            })
            .unwrap();
            let st = sim.state();
            assert_eq!(st.lock().wire(), speaks);
            let answer = st.probe_reply(sim.addr());
            let info = crate::kasa::discovery::probe::parse_probe_reply(&answer).unwrap();
            assert!(info.is_tpap(), "{info:?}");
            assert_eq!(info.model, "KP125M(US)");
            assert_eq!(
                info.tpap_preferred,
                (!preferred).then_some(false),
                "{info:?}"
            );
        }
        assert_eq!(Model::P110Tpap.device_type(), "SMART.TAPOPLUG");
        assert!(Model::P110Tpap.is_smart());
    }
}
