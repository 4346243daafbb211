//! The live state of a simulated plug: its outlets with their rules,
//! auto-off and lagging moves ([`Inner`], evaluated lazily against the
//! clock), the counters tests read, and what its servers keep between
//! requests ([`Shared`], behind the cheap handle [`SimState`]).
//!
//! What it holds of the servers' (sessions, the TPAP account, the
//! recording) is defined in their data-only files (`klap/session.rs`,
//! `aes/session.rs`, `tpap/session.rs`, `fixture/recording.rs`), which do
//! not use this file; the servers' handlers do.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::aes::session as aes;
use super::fault::Fault;
use super::fixture::recording::Fixture;
use super::klap::session::{self as klap, Sessions};
use super::model::{Model, Wire};
use super::tpap::session as tpap;
use crate::kasa::credentials::{AuthHash, Credentials, KlapVersion};

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
pub(super) struct Rule {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) enable: bool,
    pub(super) delay: u32,
    pub(super) act: bool,
    pub(super) armed: Instant,
}

impl Rule {
    pub(super) fn due(&self) -> Instant {
        self.armed + Duration::from_secs(u64::from(self.delay))
    }

    pub(super) fn remain(&self, now: Instant) -> u64 {
        if self.enable {
            self.due().saturating_duration_since(now).as_secs()
        } else {
            0
        }
    }
}

/// SMART `auto_off`: the relay opens `delay_min` after it closed.
#[derive(Debug, Clone, Copy)]
pub(super) struct AutoOff {
    pub(super) enable: bool,
    pub(super) delay_min: u32,
    /// When it was last enabled: a timer runs from the later of this and the switch-on.
    pub(super) since: Instant,
}

impl AutoOff {
    pub(super) fn due(&self, on_since: Option<Instant>) -> Option<Instant> {
        let start = on_since?.max(self.since);
        self.enable
            .then(|| start + Duration::from_secs(u64::from(self.delay_min) * 60))
    }
}

/// One relay: a plug has one, a strip one per outlet.
#[derive(Debug)]
pub(super) struct OutletState {
    pub(super) alias: String,
    pub(super) on: bool,
    pub(super) on_since: Option<Instant>,
    pub(super) rule: Option<Rule>,
    pub(super) auto_off: AutoOff,
    pub(super) pending: Option<(Instant, bool)>,
}

/// The device itself, as the protocols read and switch it (behind `Shared::inner`).
pub(super) struct Inner {
    pub(super) model: Model,
    pub(super) alias: String,
    pub(super) device_id: String,
    pub(super) mac: String,
    pub(super) led_off: bool,
    pub(super) no_countdown: bool,
    pub(super) outlets: Vec<OutletState>,
    pub(super) transitions: Vec<Transition>,
    pub(super) set_requests: Vec<Instant>,
    pub(super) request_times: Vec<Instant>,
    pub(super) requests: u64,
    pub(super) connections: u64,
    pub(super) handshakes: u64,
    pub(super) fault: Option<Fault>,
    pub(super) flaky_left: u32,
    pub(super) ids: u64,
    /// The recording served in place of `model`.
    pub(super) fixture: Option<Arc<Fixture>>,
    /// A TPAP model that prefers it (else it speaks KLAP).
    pub(super) tpap_preferred: bool,
}

/// Everything the plug's threads share: the device, and what each server
/// keeps between requests.
pub(super) struct Shared {
    pub(super) inner: Mutex<Inner>,
    pub(super) klap: Mutex<Sessions<klap::Session>>,
    pub(super) aes: Mutex<Sessions<aes::Session>>,
    /// The auth hash the device holds (KLAP models).
    pub(super) auth: AuthHash,
    /// The auth hash of the `badauth` fault: credentials no client has.
    pub(super) bad_auth: AuthHash,
    /// The account the device holds (AES models check logins against it).
    pub(super) creds: Credentials,
    /// The account of the `badauth` fault.
    pub(super) bad_creds: Credentials,
    /// TPAP models: the device's record of the account, and of the
    /// `badauth` fault's account.
    pub(super) tpap_accounts: Option<(tpap::Account, tpap::Account)>,
    pub(super) tpap_flavour: tpap::Flavour,
    pub(super) tpap: Mutex<tpap::Tpap>,
    pub(super) tpap_sessions: Mutex<Sessions<tpap::Session>>,
    /// The TCP port, which a TPAP device names in its `discover` answer.
    pub(super) port: u16,
    /// The `sleepy` fault: the bound, not yet listening socket and when it
    /// wakes by itself.
    pub(super) sleeper: Mutex<Option<(socket2::Socket, Instant)>>,
    /// Accept threads started when a sleepy device wakes.
    pub(super) late_threads: Mutex<Vec<JoinHandle<()>>>,
    /// 20002 probes received.
    pub(super) probes: AtomicU64,
    pub(super) stop: AtomicBool,
    pub(super) conns: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

/// A cheap, shareable view of a simulated plug, with controls.
#[derive(Clone)]
pub struct SimState {
    pub(super) shared: Arc<Shared>,
}

/// Hex digits that differ per simulated plug (FNV-1a, stretched).
pub(super) fn hex_id(seed: &str, digits: usize) -> String {
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

/// Locks `m`, recovering the data if a thread panicked while holding it.
pub(super) fn lock_or_recover<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not cascade into others.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(super) fn is_strip(&self) -> bool {
        self.outlets.len() > 1
    }

    /// Whether it answers the SMART JSON (else the legacy JSON).
    pub(super) fn is_smart(&self) -> bool {
        match &self.fixture {
            Some(f) => f.is_smart(),
            None => self.model.is_smart(),
        }
    }

    /// What its TCP port speaks (KLAP for a TPAP model that does not prefer TPAP).
    pub(super) fn wire(&self) -> Wire {
        match &self.fixture {
            Some(f) => f.wire(),
            None if self.model.wire() == Wire::Tpap && !self.tpap_preferred => Wire::Klap,
            None => self.model.wire(),
        }
    }

    /// Its KLAP hash version.
    pub(super) fn klap_version(&self) -> KlapVersion {
        match &self.fixture {
            Some(f) => f.klap_version(),
            None => self.model.klap_version(),
        }
    }

    pub(super) fn switch(&mut self, index: usize, on: bool, at: Instant) {
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
    pub(super) fn command(&mut self, index: usize, on: bool, now: Instant) {
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
    pub(super) fn apply_due(&mut self, now: Instant) {
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

    pub(super) fn on_time(&self, o: &OutletState, now: Instant) -> u64 {
        o.on_since
            .map(|t| now.saturating_duration_since(t).as_secs())
            .unwrap_or(0)
    }

    pub(super) fn next_rule_id(&mut self) -> String {
        self.ids += 1;
        hex_id(&format!("rule{}{}", self.device_id, self.ids), 32)
    }
}
