//! A simulated TP-Link plug that speaks the real protocols on loopback:
//!
//! * legacy Kasa plugs (HS100, HS110 with energy meter, HS300 six-outlet
//!   strip) on TCP with the XOR framing, answering UDP discovery on the same
//!   port (`sim/iot.rs`);
//! * KLAP devices over HTTP on the TCP port (`sim/klap.rs`): Tapo P100, P110,
//!   the P300 strip, Kasa KP125M and the EP40M strip with the SMART JSON
//!   (`sim/smart.rs`), and an HS100(UK) hw 4.1 with the legacy JSON inside KLAP
//!   v1, all answering the UDP 20002 probe with their `mgt_encrypt_schm`;
//! * AES ("securePassthrough") devices over HTTP (`sim/aes.rs`): a Tapo P110
//!   (EU) fw 1.2.3 and a Kasa EP25 (US) hw 2.6 with the SMART JSON;
//! * TPAP devices over HTTP (`sim/tpap.rs`): the Tapo P110 and Kasa KP125M
//!   on firmware 1.4.x, announcing `TPAP` in their 20002 answer (or, with
//!   `tpap_preferred: false`, announcing it but speaking KLAP);
//! * any device python-kasa recorded (`sim/fixture.rs`): a fixture JSON of
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

mod aes;
pub mod fixture;
mod iot;
mod klap;
mod smart;
mod tpap;

use std::fmt;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::kasa::credentials::{default_for, AuthHash, Credentials, KlapVersion};
use crate::kasa::discovery::probe::is_klap_probe;
use crate::kasa::transport::xor;

/// The simulated hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A single plug, `HS100(UK)`, legacy protocol on TCP.
    Hs100,
    /// A single plug with an energy meter, `HS110(EU)`.
    Hs110,
    /// A six-outlet strip with a meter per outlet, `HS300(US)`.
    Hs300,
    /// Tapo P100 (fw 1.4): SMART over KLAP v2, countdown only.
    P100,
    /// Tapo P110: SMART over KLAP v2, countdown and auto-off.
    P110,
    /// Tapo P300 three-outlet strip: SMART over KLAP v2, outlets with countdown and auto-off.
    P300,
    /// Kasa KP125M: SMART over KLAP v2, countdown and auto-off.
    Kp125m,
    /// Kasa EP40M two-outlet outdoor strip: SMART over KLAP v2, outlets with countdown.
    Ep40m,
    /// Kasa HS100(UK) hw 4.1: the legacy JSON inside KLAP v1.
    Hs100Klap,
    /// Tapo P110 (EU) fw 1.2.3: SMART over AES (login v2), countdown and auto-off.
    P110Aes,
    /// Kasa EP25 (US) hw 2.6: SMART over AES (login v2), countdown and auto-off.
    Ep25,
    /// Tapo P110 on firmware 1.4.x: SMART over TPAP (md5-crypt pre-hash,
    /// AES-128-CCM), countdown and auto-off.
    P110Tpap,
    /// Kasa KP125M on firmware 1.4.1: SMART over TPAP (sha256-crypt
    /// pre-hash, ChaCha20-Poly1305), countdown and auto-off.
    Kp125mTpap,
}

/// How a model's TCP port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// 4-byte length + XOR autokey (port 9999 on real plugs).
    Xor,
    /// HTTP with KLAP (port 80 on real plugs).
    Klap,
    /// HTTP with AES "securePassthrough" (port 80 on real plugs).
    Aes,
    /// HTTP with TPAP (port 80 on real plugs).
    Tpap,
}

impl Wire {
    /// The `encrypt_type` of the 20002 answer (`XOR` for the legacy port).
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Wire::Xor => "XOR",
            Wire::Klap => "KLAP",
            Wire::Aes => "AES",
            Wire::Tpap => "TPAP",
        }
    }
}

impl Model {
    /// Every model, in the order `--model` lists them.
    pub(crate) const ALL: [Model; 13] = [
        Model::Hs100,
        Model::Hs110,
        Model::Hs300,
        Model::P100,
        Model::P110,
        Model::P300,
        Model::Kp125m,
        Model::Ep40m,
        Model::Hs100Klap,
        Model::P110Aes,
        Model::Ep25,
        Model::P110Tpap,
        Model::Kp125mTpap,
    ];

    /// The `--model` name.
    pub(crate) fn cli_name(self) -> &'static str {
        match self {
            Model::Hs100 => "hs100",
            Model::Hs110 => "hs110",
            Model::Hs300 => "hs300",
            Model::P100 => "p100",
            Model::P110 => "p110",
            Model::P300 => "p300",
            Model::Kp125m => "kp125m",
            Model::Ep40m => "ep40m",
            Model::Hs100Klap => "hs100-klap",
            Model::P110Aes => "p110-aes",
            Model::Ep25 => "ep25",
            Model::P110Tpap => "p110-tpap",
            Model::Kp125mTpap => "kp125m-tpap",
        }
    }

    /// The model string in the sysinfo or device info.
    pub fn model_name(self) -> &'static str {
        match self {
            Model::Hs100 | Model::Hs100Klap => "HS100(UK)",
            Model::Hs110 => "HS110(EU)",
            Model::Hs300 => "HS300(US)",
            Model::P100 => "P100",
            Model::P110 | Model::P110Aes | Model::P110Tpap => "P110",
            Model::P300 => "P300",
            Model::Kp125m | Model::Kp125mTpap => "KP125M",
            Model::Ep40m => "EP40M",
            Model::Ep25 => "EP25",
        }
    }

    /// The model with its region, as the 20002 discovery answer names it.
    pub(crate) fn discovery_model(self) -> &'static str {
        match self {
            Model::P100 => "P100(US)",
            Model::P110 => "P110(UK)",
            Model::P300 => "P300(EU)",
            Model::Kp125m => "KP125M(US)",
            Model::Ep40m => "EP40M(US)",
            Model::P110Aes | Model::P110Tpap => "P110(EU)",
            Model::Ep25 => "EP25(US)",
            Model::Kp125mTpap => "KP125M(US)",
            other => other.model_name(),
        }
    }

    /// Whether it speaks the SMART JSON (otherwise the legacy JSON).
    pub fn is_smart(self) -> bool {
        matches!(
            self,
            Model::P100
                | Model::P110
                | Model::P300
                | Model::Kp125m
                | Model::Ep40m
                | Model::P110Aes
                | Model::Ep25
                | Model::P110Tpap
                | Model::Kp125mTpap
        )
    }

    /// What its TCP port speaks.
    pub(crate) fn wire(self) -> Wire {
        if matches!(self, Model::P110Aes | Model::Ep25) {
            Wire::Aes
        } else if matches!(self, Model::P110Tpap | Model::Kp125mTpap) {
            Wire::Tpap
        } else if self.is_smart() || self == Model::Hs100Klap {
            Wire::Klap
        } else {
            Wire::Xor
        }
    }

    /// The KLAP hash version of a KLAP model.
    pub(crate) fn klap_version(self) -> KlapVersion {
        if self.is_smart() {
            KlapVersion::V2
        } else {
            KlapVersion::V1
        }
    }

    /// `device_type` in discovery (`mic_type` in a legacy sysinfo).
    pub(crate) fn device_type(self) -> &'static str {
        match self {
            Model::P100 | Model::P110 | Model::P300 | Model::P110Aes | Model::P110Tpap => {
                "SMART.TAPOPLUG"
            }
            Model::Kp125m | Model::Ep40m | Model::Ep25 | Model::Kp125mTpap => "SMART.KASAPLUG",
            _ => "IOT.SMARTPLUGSWITCH",
        }
    }

    /// The credentials the device accepts when never bound to an account.
    /// AES devices take the `TAPO` default whatever their brand: it is the
    /// only one python-kasa's AES transport tries.
    pub fn default_credentials(self) -> Credentials {
        match self {
            Model::P100 | Model::P110 | Model::P300 | Model::P110Tpap => default_for("TAPO"),
            _ if self.wire() == Wire::Aes => default_for("TAPO"),
            _ => default_for("KASA"),
        }
    }

    fn outlets(self) -> usize {
        match self {
            Model::Hs300 => 6,
            Model::P300 => 3,
            Model::Ep40m => 2,
            _ => 1,
        }
    }

    fn has_emeter(self) -> bool {
        matches!(self, Model::Hs110 | Model::Hs300)
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        let s = s.to_ascii_lowercase();
        Model::ALL
            .into_iter()
            .find(|m| m.cli_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.cli_name()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

/// A way to misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Accepts connections and requests, never answers.
    Blackhole,
    /// Answers after this delay.
    Slow(Duration),
    /// Closes the connection in the middle of the reply.
    Drop,
    /// Answers a well-framed reply that is not JSON (on KLAP: correctly
    /// encrypted and signed).
    Garbage,
    /// Answers `err_code` -1 (`error_code` -1 on SMART) to every method.
    Err,
    /// Acknowledges a switch but the relay does not move.
    Stuck,
    /// The relay moves this long after a switch is acknowledged.
    Lag(Duration),
    /// The first N requests (after the fault is set) are dropped without an answer.
    Flaky(u32),
    /// KLAP, AES and TPAP: the device holds other credentials than the
    /// configured ones, so every handshake fails the client's check (KLAP) or
    /// every login is refused with `-1501` (AES) or `-2203` with the failed
    /// and remaining attempts (TPAP): a wrong password.
    BadAuth,
    /// KLAP, AES and TPAP: a session ends after this many requests, long
    /// before its announced `TIMEOUT`; the device then answers 403 (KLAP),
    /// `error_code` 9999 SESSION_TIMEOUT (AES) or -40401, 9999 and -40413 in
    /// turn (TPAP).
    Expire(u32),
    /// KLAP: every reply carries a corrupt signature. AES (which has no
    /// signature): every reply is encrypted with another key, so it does not
    /// decrypt (bad padding or garbage).
    BadSig,
    /// TPAP: every reply's authentication tag is wrong.
    BadTag,
    /// KLAP, AES and TPAP models, from the start only: TCP connections are
    /// refused until the device receives a UDP 20002 probe or this much time
    /// passes (a P110 on 1.4.6 after a power cut).
    Sleepy(Duration),
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
        let count = |a: &str| {
            a.parse::<u32>()
                .map_err(|_| format!("{kind}:{a}: not a whole number"))
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
                count(a).map(Fault::Flaky)
            }
            "badauth" => Ok(Fault::BadAuth),
            "badsig" => Ok(Fault::BadSig),
            "badtag" => Ok(Fault::BadTag),
            "sleepy" => {
                let a = arg.ok_or("sleepy needs seconds, e.g. sleepy:600")?;
                a.parse::<u64>()
                    .map(|s| Fault::Sleepy(Duration::from_secs(s)))
                    .map_err(|_| format!("sleepy:{a}: not a whole number of seconds"))
            }
            "expire" => match arg {
                None => Ok(Fault::Expire(2)),
                Some(a) => match count(a)? {
                    0 => Err("expire:0: a session must last at least one request".into()),
                    n => Ok(Fault::Expire(n)),
                },
            },
            _ => Err(
                "expected blackhole, slow:MS, drop, garbage, err, stuck, lag:MS, flaky:N, \
                 badauth, expire[:N], badsig, badtag or sleepy:S"
                    .into(),
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

/// A real relay change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When it happened (or was due, for countdowns, auto-off and lag).
    pub at: Instant,
    /// The strip outlet, `None` on a single plug.
    pub outlet: Option<usize>,
    /// The new state.
    pub on: bool,
}

/// A countdown rule (legacy `count_down` or SMART `countdown`).
#[derive(Debug, Clone)]
struct Rule {
    id: String,
    name: String,
    enable: bool,
    delay: u32,
    act: bool,
    armed: Instant,
}

impl Rule {
    fn due(&self) -> Instant {
        self.armed + Duration::from_secs(u64::from(self.delay))
    }

    fn remain(&self, now: Instant) -> u64 {
        if self.enable {
            self.due().saturating_duration_since(now).as_secs()
        } else {
            0
        }
    }
}

/// SMART `auto_off`: the relay opens `delay_min` after it closed.
#[derive(Debug, Clone, Copy)]
struct AutoOff {
    enable: bool,
    delay_min: u32,
    /// When it was last enabled: a timer runs from the later of this and the switch-on.
    since: Instant,
}

impl AutoOff {
    fn due(&self, on_since: Option<Instant>) -> Option<Instant> {
        let start = on_since?.max(self.since);
        self.enable
            .then(|| start + Duration::from_secs(u64::from(self.delay_min) * 60))
    }
}

#[derive(Debug)]
struct OutletState {
    alias: String,
    on: bool,
    on_since: Option<Instant>,
    rule: Option<Rule>,
    auto_off: AutoOff,
    pending: Option<(Instant, bool)>,
}

struct Inner {
    model: Model,
    alias: String,
    device_id: String,
    mac: String,
    led_off: bool,
    no_countdown: bool,
    outlets: Vec<OutletState>,
    transitions: Vec<Transition>,
    set_requests: Vec<Instant>,
    request_times: Vec<Instant>,
    requests: u64,
    connections: u64,
    handshakes: u64,
    fault: Option<Fault>,
    flaky_left: u32,
    ids: u64,
    /// The recording served in place of `model`.
    fixture: Option<Arc<fixture::Fixture>>,
    /// A TPAP model that prefers it (else it speaks KLAP).
    tpap_preferred: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    klap: Mutex<klap::Sessions<klap::Session>>,
    aes: Mutex<klap::Sessions<aes::Session>>,
    /// The auth hash the device holds (KLAP models).
    auth: AuthHash,
    /// The auth hash of the `badauth` fault: credentials no client has.
    bad_auth: AuthHash,
    /// The account the device holds (AES models check logins against it).
    creds: Credentials,
    /// The account of the `badauth` fault.
    bad_creds: Credentials,
    /// TPAP models: the device's record of the account, and of the
    /// `badauth` fault's account.
    tpap_accounts: Option<(tpap::Account, tpap::Account)>,
    tpap_flavour: tpap::Flavour,
    tpap: Mutex<tpap::Tpap>,
    tpap_sessions: Mutex<klap::Sessions<tpap::Session>>,
    /// The TCP port, which a TPAP device names in its `discover` answer.
    port: u16,
    /// The `sleepy` fault: the bound, not yet listening socket and when it
    /// wakes by itself.
    sleeper: Mutex<Option<(socket2::Socket, Instant)>>,
    /// Accept threads started when a sleepy device wakes.
    late_threads: Mutex<Vec<JoinHandle<()>>>,
    /// 20002 probes received.
    probes: AtomicU64,
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

/// Hex digits that differ per simulated plug (FNV-1a, stretched).
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
            tpap::Flavour::Sha256CryptChaCha
        } else {
            tpap::Flavour::Md5CryptAes
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
            klap: Mutex::new(klap::Sessions::default()),
            aes: Mutex::new(klap::Sessions::default()),
            auth: creds.auth_hash(version),
            bad_auth: bad.auth_hash(version),
            tpap_accounts: (wire_of_opts == Wire::Tpap && opts.tpap_preferred).then(|| {
                let mac_for = |c: &Credentials| tpap::Account::new(flavour, c, &mac_copy);
                (mac_for(&creds), mac_for(&bad))
            }),
            tpap_flavour: flavour,
            tpap: Mutex::new(tpap::Tpap::default()),
            tpap_sessions: Mutex::new(klap::Sessions::default()),
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
        *lock_or_recover(&self.shared.tpap_sessions) = klap::Sessions::default();
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

impl Inner {
    fn is_strip(&self) -> bool {
        self.outlets.len() > 1
    }

    /// Whether it answers the SMART JSON (else the legacy JSON).
    fn is_smart(&self) -> bool {
        match &self.fixture {
            Some(f) => f.is_smart(),
            None => self.model.is_smart(),
        }
    }

    /// What its TCP port speaks (KLAP for a TPAP model that does not prefer TPAP).
    fn wire(&self) -> Wire {
        match &self.fixture {
            Some(f) => f.wire(),
            None if self.model.wire() == Wire::Tpap && !self.tpap_preferred => Wire::Klap,
            None => self.model.wire(),
        }
    }

    /// Its KLAP hash version.
    fn klap_version(&self) -> KlapVersion {
        match &self.fixture {
            Some(f) => f.klap_version(),
            None => self.model.klap_version(),
        }
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

    /// A switch request as the device handles it, faults included.
    fn command(&mut self, index: usize, on: bool, now: Instant) {
        match self.fault {
            Some(Fault::Stuck) => {}
            Some(Fault::Lag(d)) => {
                // A repeated command does not restart a move already under way.
                let p = &mut self.outlets[index].pending;
                if !matches!(p, Some((_, want)) if *want == on) {
                    *p = Some((now + d, on));
                }
            }
            _ => self.switch(index, on, now),
        }
    }

    /// Runs what fell due, in time order per outlet: lagging relay moves,
    /// countdown rules and auto-off.
    fn apply_due(&mut self, now: Instant) {
        for i in 0..self.outlets.len() {
            // Each step may make the next one due (an auto-off after a lagged
            // switch-on), so loop until nothing is left before `now`.
            for _ in 0..8 {
                let o = &self.outlets[i];
                let lag = o.pending.filter(|(due, _)| *due <= now);
                let rule = o
                    .rule
                    .as_ref()
                    .filter(|r| r.enable && r.due() <= now)
                    .map(|r| (r.due(), r.act));
                let auto = o.auto_off.due(o.on_since).filter(|due| o.on && *due <= now);
                let next = [
                    lag.map(|(t, on)| (t, 0, on)),
                    rule.map(|(t, on)| (t, 1, on)),
                    auto.map(|t| (t, 2, false)),
                ]
                .into_iter()
                .flatten()
                .min_by_key(|(t, k, _)| (*t, *k));
                let Some((at, kind, on)) = next else { break };
                match kind {
                    0 => self.outlets[i].pending = None,
                    // Like a real plug: the rule stays in the table, disabled.
                    1 => {
                        if let Some(r) = self.outlets[i].rule.as_mut() {
                            r.enable = false;
                        }
                    }
                    _ => {}
                }
                self.switch(i, on, at);
            }
        }
    }

    fn on_time(&self, o: &OutletState, now: Instant) -> u64 {
        o.on_since
            .map(|t| now.saturating_duration_since(t).as_secs())
            .unwrap_or(0)
    }

    fn next_rule_id(&mut self) -> String {
        self.ids += 1;
        hex_id(&format!("rule{}{}", self.device_id, self.ids), 32)
    }
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
    fn model_and_fault_names_parse() {
        for m in Model::ALL {
            assert_eq!(m.cli_name().parse::<Model>(), Ok(m));
        }
        assert_eq!("HS100-KLAP".parse::<Model>(), Ok(Model::Hs100Klap));
        assert!("p999".parse::<Model>().unwrap_err().contains("kp125m"));
        assert_eq!("badauth".parse::<Fault>(), Ok(Fault::BadAuth));
        assert_eq!("badsig".parse::<Fault>(), Ok(Fault::BadSig));
        assert_eq!("expire".parse::<Fault>(), Ok(Fault::Expire(2)));
        assert_eq!("expire:5".parse::<Fault>(), Ok(Fault::Expire(5)));
        assert!("expire:0".parse::<Fault>().is_err());
        assert!("expire:x".parse::<Fault>().is_err());
        assert!("nonsense".parse::<Fault>().unwrap_err().contains("badsig"));
        assert_eq!("badtag".parse::<Fault>(), Ok(Fault::BadTag));
        assert_eq!(
            "sleepy:600".parse::<Fault>(),
            Ok(Fault::Sleepy(Duration::from_secs(600)))
        );
        assert!("sleepy".parse::<Fault>().unwrap_err().contains("seconds"));
        assert!("sleepy:x".parse::<Fault>().is_err());
        assert_eq!("kp125m-tpap".parse::<Model>(), Ok(Model::Kp125mTpap));
    }

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

    #[test]
    fn model_facts() {
        assert_eq!(Model::Hs100Klap.wire(), Wire::Klap);
        assert_eq!(Model::Hs100Klap.klap_version(), KlapVersion::V1);
        assert!(!Model::Hs100Klap.is_smart());
        assert_eq!(Model::P300.outlets(), 3);
        assert_eq!(Model::Ep40m.outlets(), 2);
        assert_eq!(Model::P110.klap_version(), KlapVersion::V2);
        assert_eq!(Model::Kp125m.device_type(), "SMART.KASAPLUG");
        assert_eq!(
            Model::P100.default_credentials().username,
            "test@tp-link.net"
        );
        assert_eq!(Model::Hs100.wire(), Wire::Xor);
        assert_eq!(Model::P110Aes.wire(), Wire::Aes);
        assert_eq!(Model::Ep25.wire(), Wire::Aes);
        assert!(Model::Ep25.is_smart());
        assert_eq!(Model::Ep25.device_type(), "SMART.KASAPLUG");
        assert_eq!(Model::P110Aes.discovery_model(), "P110(EU)");
        // AES devices take the only default python-kasa's AES transport tries.
        assert_eq!(Model::Ep25.default_credentials(), default_for("TAPO"));
        assert_eq!("p110-aes".parse::<Model>(), Ok(Model::P110Aes));
    }
}
