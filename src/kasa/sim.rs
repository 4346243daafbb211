//! A simulated Kasa plug (HS100, HS110 with energy meter, HS300 six-outlet
//! strip) that speaks the real legacy protocol on TCP and answers UDP discovery
//! on the same port. Tests, the demo (`run --simulate`) and `simulate-plug` use
//! it; python-kasa's `kasa` CLI drives it in the interop gate, so its replies
//! follow what real plugs send, errors included.
//!
//! Countdown rules and lagging relays are evaluated lazily against the clock
//! whenever the state is looked at, and their transitions are stamped with the
//! instant they were due, so no timer thread is needed and tests stay exact.
//! Faults (`SimOptions::fault`, [`SimPlug::set_fault`]) make it misbehave the
//! ways real plugs and Wi-Fi do.

use std::fmt;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::protocol;

/// The simulated hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A single plug, `HS100(UK)`.
    Hs100,
    /// A single plug with an energy meter, `HS110(EU)`.
    Hs110,
    /// A six-outlet strip with a meter per outlet, `HS300(US)`.
    Hs300,
}

impl Model {
    /// The model string in the sysinfo.
    pub fn model_name(self) -> &'static str {
        match self {
            Model::Hs100 => "HS100(UK)",
            Model::Hs110 => "HS110(EU)",
            Model::Hs300 => "HS300(US)",
        }
    }
    fn outlets(self) -> usize {
        match self {
            Model::Hs300 => 6,
            _ => 1,
        }
    }
    fn has_emeter(self) -> bool {
        !matches!(self, Model::Hs100)
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        match s.to_ascii_lowercase().as_str() {
            "hs100" => Ok(Model::Hs100),
            "hs110" => Ok(Model::Hs110),
            "hs300" => Ok(Model::Hs300),
            _ => Err("expected hs100, hs110 or hs300".into()),
        }
    }
}

/// A way to misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Accepts connections and requests, never answers.
    Blackhole,
    /// Answers after this delay.
    Slow(Duration),
    /// Closes the connection in the middle of the reply frame.
    Drop,
    /// Answers a well-framed reply that is not JSON.
    Garbage,
    /// Answers `err_code` -1 to every method.
    Err,
    /// Acknowledges `set_relay_state` but the relay does not move.
    Stuck,
    /// The relay moves this long after `set_relay_state` is acknowledged.
    Lag(Duration),
    /// The first N requests (after the fault is set) are dropped without an answer.
    Flaky(u32),
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let ms = |a: Option<&str>| -> Result<Duration, String> {
            let a = a.ok_or_else(|| format!("{kind} needs milliseconds, e.g. {kind}:500"))?;
            a.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{kind}:{a}: not a whole number of milliseconds"))
        };
        match kind {
            "blackhole" => Ok(Fault::Blackhole),
            "slow" => Ok(Fault::Slow(ms(arg)?)),
            "drop" => Ok(Fault::Drop),
            "garbage" => Ok(Fault::Garbage),
            "err" => Ok(Fault::Err),
            "stuck" => Ok(Fault::Stuck),
            "lag" => Ok(Fault::Lag(ms(arg)?)),
            "flaky" => {
                let a = arg.ok_or("flaky needs a count, e.g. flaky:2")?;
                a.parse::<u32>()
                    .map(Fault::Flaky)
                    .map_err(|_| format!("flaky:{a}: not a whole number"))
            }
            _ => Err(
                "expected blackhole, slow:MS, drop, garbage, err, stuck, lag:MS or flaky:N".into(),
            ),
        }
    }
}

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
    /// Emulate newer firmware: TCP refused, UDP answers the 20002 probe with KLAP.
    pub klap_only: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            model: Model::Hs100,
            fault: None,
            alias: "Simulated plug".into(),
            klap_only: false,
        }
    }
}

/// A real relay change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When it happened (or was due, for countdowns and lag).
    pub at: Instant,
    /// The strip outlet, `None` on a single plug.
    pub outlet: Option<usize>,
    /// The new state.
    pub on: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    name: String,
    enable: bool,
    delay: u32,
    act: bool,
    armed: Instant,
}

#[derive(Debug)]
struct OutletState {
    alias: String,
    on: bool,
    on_since: Option<Instant>,
    rule: Option<Rule>,
    pending: Option<(Instant, bool)>,
}

struct Inner {
    model: Model,
    alias: String,
    device_id: String,
    mac: String,
    led_off: bool,
    outlets: Vec<OutletState>,
    transitions: Vec<Transition>,
    set_requests: Vec<Instant>,
    request_times: Vec<Instant>,
    requests: u64,
    connections: u64,
    fault: Option<Fault>,
    flaky_left: u32,
    ids: u64,
}

struct Shared {
    inner: Mutex<Inner>,
    stop: AtomicBool,
    conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

/// A cheap, shareable view of a simulated plug, with controls.
#[derive(Clone)]
pub struct SimState {
    shared: Arc<Shared>,
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

/// 40 hex digits that differ per simulated plug (FNV-1a, stretched).
fn hex_id(seed: &str, digits: usize) -> String {
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut round = 0u8;
    while out.len() < digits {
        for b in seed.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016X}"));
        round += 1;
    }
    out.truncate(digits);
    out
}

impl SimPlug {
    /// Binds TCP (and UDP on the same port) and starts serving.
    pub fn start(opts: SimOptions) -> std::io::Result<SimPlug> {
        let (listener, refusing, addr) = if opts.klap_only {
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
        let seed = format!("{:?}{}{}{serial}", opts.model, addr, std::process::id());
        let device_id = hex_id(&seed, 40);
        let mac_hex = hex_id(&format!("mac{seed}"), 6);
        let mac = format!(
            "50:C7:BF:{}:{}:{}",
            &mac_hex[0..2],
            &mac_hex[2..4],
            &mac_hex[4..6]
        );
        let outlets = (0..opts.model.outlets())
            .map(|i| OutletState {
                alias: if opts.model.outlets() > 1 {
                    format!("Plug {}", i + 1)
                } else {
                    opts.alias.clone()
                },
                on: false,
                on_since: None,
                rule: None,
                pending: None,
            })
            .collect();
        let flaky_left = match opts.fault {
            Some(Fault::Flaky(n)) => n,
            _ => 0,
        };
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                model: opts.model,
                alias: opts.alias.clone(),
                device_id,
                mac,
                led_off: false,
                outlets,
                transitions: Vec::new(),
                set_requests: Vec::new(),
                request_times: Vec::new(),
                requests: 0,
                connections: 0,
                fault: opts.fault.clone(),
                flaky_left,
                ids: 0,
            }),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let state = SimState { shared };
        let port = addr.port();
        let mut threads = Vec::new();
        if let Some(l) = listener {
            let st = state.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sim-accept-{port}"))
                    .spawn(move || accept_loop(l, st))?,
            );
        }
        let st = state.clone();
        let klap = opts.klap_only;
        threads.push(
            std::thread::Builder::new()
                .name(format!("sim-udp-{port}"))
                .spawn(move || udp_loop(udp, st, klap))?,
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
        let conns = std::mem::take(&mut *lock_or_recover(&self.state.shared.conns));
        for (s, _) in &conns {
            let _ = s.shutdown(Shutdown::Both);
        }
        for (_, t) in conns {
            let _ = t.join();
        }
    }
}

fn lock_or_recover<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not cascade into others.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
    serve(&mut stream, &state);
    // The accept loop holds a clone of this socket (to unblock it at drop), so
    // dropping ours would not close the connection: shut it down explicitly.
    let _ = stream.shutdown(Shutdown::Both);
}

fn serve(stream: &mut TcpStream, state: &SimState) {
    loop {
        let Ok(plain) = protocol::read_frame(stream) else {
            return;
        };
        if state.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(req) = serde_json::from_slice::<Value>(&plain) else {
            // A real plug drops a connection that sends it nonsense.
            return;
        };
        let now = Instant::now();
        let (fault, flaky_drop) = {
            let mut g = state.lock();
            g.requests += 1;
            g.request_times.push(now);
            if req.pointer("/system/set_relay_state").is_some() {
                g.set_requests.push(now);
            }
            let drop_it = g.flaky_left > 0;
            if drop_it {
                g.flaky_left -= 1;
            }
            (g.fault.clone(), drop_it)
        };
        if flaky_drop {
            return;
        }
        let reply = match &fault {
            Some(Fault::Blackhole) => continue,
            Some(Fault::Err) => error_reply(&req),
            _ => state.handle(&req, now),
        };
        if let Some(Fault::Slow(d)) = fault {
            std::thread::sleep(d);
        }
        let bytes = reply.to_string();
        let frame = match fault {
            Some(Fault::Garbage) => {
                let junk: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
                let mut f = (junk.len() as u32).to_be_bytes().to_vec();
                f.extend(junk);
                f
            }
            _ => protocol::frame(bytes.as_bytes()),
        };
        if fault == Some(Fault::Drop) {
            let _ = stream.write_all(&frame[..frame.len() / 2]);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

fn udp_loop(sock: UdpSocket, state: SimState, klap_only: bool) {
    // Drop wakes this thread with a datagram; the timeout is a backstop so a
    // lost wake-up can never hang the join.
    let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = sock.recv_from(&mut buf) else {
            if state.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            continue;
        };
        if state.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let data = &buf[..len];
        if protocol::is_klap_probe(data) {
            if klap_only {
                let _ = sock.send_to(&state.klap_reply(from), from);
            }
            continue;
        }
        if klap_only {
            continue;
        }
        let Ok(req) = serde_json::from_slice::<Value>(&protocol::decrypt(data)) else {
            continue;
        };
        if state.lock().fault == Some(Fault::Blackhole) {
            continue;
        }
        let reply = state.handle(&req, Instant::now());
        let _ = sock.send_to(&protocol::encrypt(reply.to_string().as_bytes()), from);
    }
}

fn error_reply(req: &Value) -> Value {
    let mut out = Map::new();
    for (module, methods) in req.as_object().into_iter().flatten() {
        if module == "context" {
            continue;
        }
        let mut m = Map::new();
        for method in methods.as_object().into_iter().flat_map(|o| o.keys()) {
            m.insert(
                method.clone(),
                json!({"err_code": -1, "err_msg": "simulated failure"}),
            );
        }
        out.insert(module.clone(), Value::Object(m));
    }
    Value::Object(out)
}

fn ok(mut v: Value) -> Value {
    v["err_code"] = json!(0);
    v
}

fn err(code: i64, msg: &str) -> Value {
    json!({"err_code": code, "err_msg": msg})
}

impl SimState {
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

    /// Arrival time of every `set_relay_state` request, faulty or not.
    pub fn set_requests(&self) -> Vec<Instant> {
        self.lock().set_requests.clone()
    }

    /// Arrival time of every TCP request, answered or not.
    pub fn request_times(&self) -> Vec<Instant> {
        self.lock().request_times.clone()
    }

    /// The number of TCP requests received, answered or not.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// The number of TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.lock().connections
    }

    /// The countdown rules of a plug (`None`) or an outlet, as `get_rules` shows them.
    pub fn countdown_rules(&self, outlet: Option<usize>) -> Vec<Value> {
        let g = self.lock();
        let now = Instant::now();
        g.outlets
            .get(outlet.unwrap_or(0))
            .and_then(|o| o.rule.as_ref())
            .map(|r| vec![rule_json(r, now)])
            .unwrap_or_default()
    }

    /// The whole sysinfo, as `get_sysinfo` answers it.
    pub fn sysinfo(&self) -> Value {
        self.lock().sysinfo(Instant::now())
    }

    fn klap_reply(&self, from: SocketAddr) -> Vec<u8> {
        let g = self.lock();
        let body = json!({
            "error_code": 0,
            "result": {
                "device_id": g.device_id,
                "owner": "",
                "device_type": "IOT.SMARTPLUGSWITCH",
                "device_model": g.model.model_name(),
                "ip": from.ip().to_string(),
                "mac": g.mac.replace(':', "-"),
                "is_support_iot_cloud": true,
                "obd_src": "tplink",
                "factory_default": false,
                "mgt_encrypt_schm": {
                    "is_support_https": false,
                    "encrypt_type": "KLAP",
                    "http_port": 80,
                    "lv": 2
                }
            }
        })
        .to_string();
        let mut pkt = vec![0x02, 0x00, 0x00, 0x01];
        pkt.extend_from_slice(&(body.len() as u16).to_be_bytes());
        pkt.extend_from_slice(&[0x11, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
        pkt.extend_from_slice(body.as_bytes());
        pkt
    }

    /// Answers one request as the device would.
    fn handle(&self, req: &Value, now: Instant) -> Value {
        self.lock().handle(req, now)
    }
}

fn rule_json(r: &Rule, now: Instant) -> Value {
    let due = r.armed + Duration::from_secs(u64::from(r.delay));
    let remain = if r.enable {
        due.saturating_duration_since(now).as_secs()
    } else {
        0
    };
    json!({
        "id": r.id, "name": r.name, "enable": u8::from(r.enable),
        "delay": r.delay, "act": u8::from(r.act), "remain": remain
    })
}

impl Inner {
    fn is_strip(&self) -> bool {
        self.outlets.len() > 1
    }

    fn switch(&mut self, index: usize, on: bool, at: Instant) {
        let strip = self.is_strip();
        let o = &mut self.outlets[index];
        if o.on != on {
            o.on = on;
            o.on_since = on.then_some(at);
            self.transitions.push(Transition {
                at,
                outlet: strip.then_some(index),
                on,
            });
        }
    }

    /// Runs what fell due: lagging relay moves and countdown rules.
    fn apply_due(&mut self, now: Instant) {
        for i in 0..self.outlets.len() {
            if let Some((due, on)) = self.outlets[i].pending {
                if due <= now {
                    self.outlets[i].pending = None;
                    self.switch(i, on, due);
                }
            }
            let fire = match &self.outlets[i].rule {
                Some(r) if r.enable => {
                    let due = r.armed + Duration::from_secs(u64::from(r.delay));
                    (due <= now).then_some((due, r.act))
                }
                _ => None,
            };
            if let Some((due, act)) = fire {
                // Like a real plug: the rule stays in the table, disabled.
                if let Some(r) = self.outlets[i].rule.as_mut() {
                    r.enable = false;
                }
                self.switch(i, act, due);
            }
        }
    }

    fn child_id(&self, i: usize) -> String {
        format!("{}{:02}", self.device_id, i)
    }

    /// Maps the request context to outlet indices; `Err` names an unknown id.
    fn targets(&self, req: &Value) -> Result<Option<Vec<usize>>, String> {
        let Some(ids) = req.pointer("/context/child_ids").and_then(Value::as_array) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for id in ids {
            let id = id.as_str().unwrap_or_default();
            let found = (0..self.outlets.len())
                .filter(|_| self.is_strip())
                .find(|&i| {
                    let full = self.child_id(i);
                    full == id || (id.len() == 2 && full.ends_with(id))
                });
            match found {
                Some(i) => out.push(i),
                None => return Err(id.to_string()),
            }
        }
        Ok(Some(out))
    }

    fn on_time(&self, o: &OutletState, now: Instant) -> u64 {
        o.on_since
            .map(|t| now.saturating_duration_since(t).as_secs())
            .unwrap_or(0)
    }

    fn sysinfo(&self, now: Instant) -> Value {
        let (hw, sw, dev_name, feature) = match self.model {
            Model::Hs100 => (
                "2.1",
                "1.5.10 Build 191125 Rel.112046",
                "Smart Wi-Fi Plug",
                "TIM",
            ),
            Model::Hs110 => (
                "2.0",
                "1.5.7 Build 191108 Rel.151931",
                "Smart Wi-Fi Plug With Energy Monitoring",
                "TIM:ENE",
            ),
            Model::Hs300 => (
                "1.0",
                "1.0.21 Build 210524 Rel.161309",
                "Smart Wi-Fi Power Strip",
                "TIM:ENE",
            ),
        };
        let mut v = json!({
            "sw_ver": sw,
            "hw_ver": hw,
            "model": self.model.model_name(),
            "deviceId": self.device_id,
            "oemId": hex_id(&format!("oem{}", self.device_id), 32),
            "hwId": hex_id(&format!("hw{}", self.device_id), 32),
            "rssi": -52,
            "latitude_i": 515074,
            "longitude_i": -1278,
            "alias": self.alias,
            "status": "new",
            "obd_src": "tplink",
            "mic_type": "IOT.SMARTPLUGSWITCH",
            "feature": feature,
            "mac": self.mac,
            "updating": 0,
            "led_off": u8::from(self.led_off),
            "dev_name": dev_name,
            "icon_hash": "",
            "ntc_state": 0,
            "err_code": 0,
        });
        if self.is_strip() {
            let children: Vec<Value> = self
                .outlets
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    json!({
                        "id": self.child_id(i),
                        "state": u8::from(o.on),
                        "alias": o.alias,
                        "on_time": self.on_time(o, now),
                        "next_action": {"type": -1},
                    })
                })
                .collect();
            v["child_num"] = json!(children.len());
            v["children"] = Value::Array(children);
        } else {
            let o = &self.outlets[0];
            v["relay_state"] = json!(u8::from(o.on));
            v["on_time"] = json!(self.on_time(o, now));
            v["active_mode"] = json!("none");
            v["next_action"] = json!({"type": -1});
        }
        v
    }

    fn handle(&mut self, req: &Value, now: Instant) -> Value {
        let mut out = Map::new();
        let targets = self.targets(req);
        for (module, methods) in req.as_object().into_iter().flatten() {
            if module == "context" {
                continue;
            }
            let supported = matches!(
                module.as_str(),
                "system" | "count_down" | "time" | "cnCloud" | "schedule"
            ) || (module == "emeter" && self.model.has_emeter());
            if !supported {
                out.insert(module.clone(), err(-1, "module not support"));
                continue;
            }
            let mut m = Map::new();
            for (method, params) in methods.as_object().into_iter().flatten() {
                let answer = match &targets {
                    Err(_) => err(-14, "entry not exist"),
                    Ok(t) => self.method(module, method, params, t.as_deref(), now),
                };
                m.insert(method.clone(), answer);
            }
            out.insert(module.clone(), Value::Object(m));
        }
        Value::Object(out)
    }

    fn method(
        &mut self,
        module: &str,
        method: &str,
        params: &Value,
        targets: Option<&[usize]>,
        now: Instant,
    ) -> Value {
        let all: Vec<usize> = (0..self.outlets.len()).collect();
        let first = targets.and_then(|t| t.first().copied()).unwrap_or(0);
        let int = |k: &str| params.get(k).and_then(Value::as_i64);
        match (module, method) {
            ("system", "get_sysinfo") => self.sysinfo(now),
            ("system", "set_relay_state") => {
                let Some(state) = int("state") else {
                    return err(-3, "invalid argument");
                };
                let on = state != 0;
                let which = targets.map(<[usize]>::to_vec).unwrap_or(all);
                match self.fault {
                    Some(Fault::Stuck) => {}
                    Some(Fault::Lag(d)) => {
                        for i in which {
                            // A repeated command does not restart a move already under way.
                            let p = &mut self.outlets[i].pending;
                            if !matches!(p, Some((_, want)) if *want == on) {
                                *p = Some((now + d, on));
                            }
                        }
                    }
                    _ => {
                        for i in which {
                            self.switch(i, on, now);
                        }
                    }
                }
                ok(json!({}))
            }
            ("system", "set_led_off") => {
                self.led_off = int("off").unwrap_or(0) != 0;
                ok(json!({}))
            }
            ("system", "set_dev_alias") => {
                let Some(alias) = params.get("alias").and_then(Value::as_str) else {
                    return err(-3, "invalid argument");
                };
                match targets {
                    Some(t) => t.iter().for_each(|&i| self.outlets[i].alias = alias.into()),
                    None => self.alias = alias.into(),
                }
                ok(json!({}))
            }
            ("system", "reboot" | "set_mac_addr" | "reset") => ok(json!({})),
            ("count_down", "get_rules") => {
                let rules: Vec<Value> = self.outlets[first]
                    .rule
                    .iter()
                    .map(|r| rule_json(r, now))
                    .collect();
                ok(json!({ "rule_list": rules }))
            }
            ("count_down", "add_rule") => {
                if self.outlets[first].rule.is_some() {
                    return err(-10, "table is full");
                }
                let (Some(delay), Some(act)) = (int("delay"), int("act")) else {
                    return err(-3, "invalid argument");
                };
                self.ids += 1;
                let id = hex_id(&format!("rule{}{}", self.device_id, self.ids), 32);
                self.outlets[first].rule = Some(Rule {
                    id: id.clone(),
                    name: params
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    enable: int("enable").unwrap_or(1) != 0,
                    delay: delay.clamp(0, i64::from(u32::MAX)) as u32,
                    act: act != 0,
                    armed: now,
                });
                ok(json!({ "id": id }))
            }
            ("count_down", "edit_rule") => {
                let id = params.get("id").and_then(Value::as_str).unwrap_or_default();
                match self.outlets[first].rule.as_mut() {
                    Some(r) if r.id == id => {
                        if let Some(d) = int("delay") {
                            r.delay = d.clamp(0, i64::from(u32::MAX)) as u32;
                        }
                        if let Some(a) = int("act") {
                            r.act = a != 0;
                        }
                        if let Some(e) = int("enable") {
                            r.enable = e != 0;
                        }
                        r.armed = now;
                        ok(json!({}))
                    }
                    _ => err(-14, "entry not exist"),
                }
            }
            ("count_down", "delete_rule") => {
                let id = params.get("id").and_then(Value::as_str).unwrap_or_default();
                let slot = &mut self.outlets[first].rule;
                if slot.as_ref().is_some_and(|r| r.id == id) {
                    *slot = None;
                    ok(json!({}))
                } else {
                    err(-14, "entry not exist")
                }
            }
            ("count_down", "delete_all_rules") => {
                self.outlets[first].rule = None;
                ok(json!({}))
            }
            ("time", "get_time") => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                let t = time::OffsetDateTime::from_unix_timestamp(secs)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                ok(json!({
                    "year": t.year(), "month": u8::from(t.month()), "mday": t.day(),
                    "hour": t.hour(), "min": t.minute(), "sec": t.second()
                }))
            }
            ("time", "get_timezone") => {
                ok(json!({"index": 39, "zone_str": "UTC", "tz_str": "UTC0", "dst_offset": 0}))
            }
            ("time", "set_timezone") => ok(json!({})),
            ("cnCloud", "get_info") => ok(json!({
                "username": "", "server": "devs.tplinkcloud.com", "binded": 0,
                "cld_connection": 0, "illegalType": -1, "stopConnect": -1,
                "tcspStatus": -1, "fwDlPage": "", "tcspInfo": "", "fwNotifyType": 0
            })),
            ("schedule", "get_rules") => ok(json!({"rule_list": [], "version": 2, "enable": 0})),
            ("schedule", "get_next_action") => ok(json!({"type": -1})),
            ("schedule" | "emeter", "get_daystat") => ok(json!({"day_list": []})),
            ("schedule" | "emeter", "get_monthstat") => ok(json!({"month_list": []})),
            ("emeter", "get_realtime") => {
                let which = targets.map(<[usize]>::to_vec).unwrap_or(all);
                let on = which.iter().filter(|&&i| self.outlets[i].on).count() as u64;
                // 40 W per outlet that is on, at 230 V.
                let power_mw = on * 40_000;
                ok(json!({
                    "voltage_mv": 230_100, "current_ma": power_mw * 1000 / 230_100,
                    "power_mw": power_mw, "total_wh": 1234, "slot_id": first
                }))
            }
            ("emeter", "get_vgain_igain") => ok(json!({"vgain": 13462, "igain": 16835})),
            _ => err(-2, "member not support"),
        }
    }
}

impl fmt::Debug for SimPlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlug").field("addr", &self.addr).finish()
    }
}
