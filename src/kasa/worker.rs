//! The plug worker (DESIGN §4): one thread per plug, so a dead heater plug never
//! delays the cooler. It runs each command with up to three attempts, each one
//! a pre-read, the switch, a pause, and a read-back that must show the state
//! asked for, and reports a [`PlugOutcome`] on a channel.
//!
//! It only acts on the latest wish: commands are kept per kind (switch, read,
//! dead-man), a newer one replaces a queued one of its kind in place, and a
//! `Set` that arrives while another `Set` is in its retries supersedes it at the
//! next step. **A superseded `Set` reports no outcome**: the control thread only
//! cares about the newest desired state, whose outcome always follows.

use std::collections::VecDeque;
use std::fmt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};

use super::client::Client;
use super::error::KasaError;
use super::ERROR_LOG_TARGET;
use crate::cli::error_chain;
use crate::config::{PlugConfig, PlugTiming};
use crate::Role;

/// The name of the dead-man countdown rule on the plug.
pub const DEADMAN_RULE_NAME: &str = "kasa-thermostat deadman";

/// One outlet of a power strip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outlet {
    /// By child id, in full (deviceId + "NN") or as the two-digit suffix.
    Id(String),
    /// By 0-based index in the sysinfo's `children`; resolved to an id on the first read.
    Index(usize),
}

impl fmt::Display for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outlet::Id(id) => write!(f, "id {id}"),
            Outlet::Index(i) => write!(f, "#{i}"),
        }
    }
}

/// Which plug (and outlet) a worker drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlugTarget {
    /// Its job, named in every log line.
    pub role: Role,
    /// Host name or IP.
    pub host: String,
    /// TCP port (9999 on real plugs).
    pub port: u16,
    /// The outlet of a power strip, `None` for a single plug.
    pub outlet: Option<Outlet>,
}

impl PlugTarget {
    /// The target of a configured plug; `child_id` wins over `outlet`.
    pub fn from_config(role: Role, cfg: &PlugConfig) -> PlugTarget {
        let outlet = cfg
            .child_id
            .clone()
            .map(Outlet::Id)
            .or(cfg.outlet.map(Outlet::Index));
        PlugTarget {
            role,
            host: cfg.host.clone(),
            port: cfg.port,
            outlet,
        }
    }

    /// `host:port` (IPv6 in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `heater 10.0.0.5:9999` or `heater 10.0.0.5:9999 outlet #2`, for logs.
    fn label(&self) -> String {
        match &self.outlet {
            Some(o) => format!("{} {} outlet {o}", self.role, self.address()),
            None => format!("{} {}", self.role, self.address()),
        }
    }
}

/// What the control thread asks of a plug.
#[derive(Debug, Clone, PartialEq)]
pub enum PlugCommand {
    /// Switch and verify.
    Set {
        /// The state wanted.
        on: bool,
    },
    /// Read the real state.
    Read,
    /// Replace the plug's countdown rules with one that switches it off after `delay`.
    ArmDeadman {
        /// Time until the plug switches itself off (rounded up to whole seconds, at least 1).
        delay: Duration,
    },
    /// Delete the plug's countdown rules.
    ClearDeadman,
}

impl PlugCommand {
    fn kind(&self) -> u8 {
        match self {
            PlugCommand::Set { .. } => 0,
            PlugCommand::Read => 1,
            PlugCommand::ArmDeadman { .. } | PlugCommand::ClearDeadman => 2,
        }
    }

    fn action(&self) -> String {
        match self {
            PlugCommand::Set { on: true } => "switch on".into(),
            PlugCommand::Set { on: false } => "switch off".into(),
            PlugCommand::Read => "read state".into(),
            PlugCommand::ArmDeadman { delay } => {
                format!("arm dead-man ({} s)", deadman_secs(*delay))
            }
            PlugCommand::ClearDeadman => "clear dead-man".into(),
        }
    }
}

fn deadman_secs(delay: Duration) -> u32 {
    (delay.as_secs_f64().ceil() as u32).max(1)
}

/// Why a command failed in the end.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugFailure {
    /// The last attempt's error with its causes on one line; names host:port.
    pub last_error: String,
}

/// What became of a command.
#[derive(Debug, Clone)]
pub struct PlugOutcome {
    /// The plug.
    pub role: Role,
    /// The command this answers.
    pub command: PlugCommand,
    /// Ok(Some(state)): the verified state after Set, the read state after Read;
    /// Ok(None) after ArmDeadman/ClearDeadman; Err after the last attempt failed.
    pub result: Result<Option<bool>, PlugFailure>,
    /// Attempts made (1 to 3).
    pub attempts: u32,
}

/// The owner of a plug worker thread: sending never blocks; dropping it stops
/// the worker at its next step or sleep and joins it.
pub struct PlugHandle {
    role: Role,
    tx: Option<Sender<PlugCommand>>,
    thread: Option<JoinHandle<()>>,
}

impl PlugHandle {
    /// Spawns the worker thread, named "plug-<role>".
    pub fn spawn(
        target: PlugTarget,
        timing: PlugTiming,
        outcomes: Sender<PlugOutcome>,
    ) -> std::io::Result<PlugHandle> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let role = target.role;
        let worker = Worker {
            client: Client::new(&target.host, target.port, &timing),
            label: target.label(),
            target,
            timing,
            inbox: rx,
            outcomes,
            queue: VecDeque::new(),
            child_id: None,
        };
        let thread = std::thread::Builder::new()
            .name(format!("plug-{role}"))
            .spawn(move || worker.run())?;
        Ok(PlugHandle {
            role,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a command without blocking (see the module doc for what replaces what).
    pub fn send(&self, cmd: PlugCommand) {
        let Some(tx) = &self.tx else { return };
        if tx.send(cmd).is_err() {
            log::error!(
                "{} plug worker is gone (it panicked?); command dropped",
                self.role
            );
        }
    }

    /// The plug's role.
    pub fn role(&self) -> Role {
        self.role
    }
}

impl Drop for PlugHandle {
    fn drop(&mut self) {
        // A disconnected inbox is the worker's stop signal.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("{} plug worker thread panicked", self.role);
            }
        }
    }
}

/// What the worker waits for, folded into one enum.
enum Event {
    Command(PlugCommand),
    Deadline,
    Shutdown,
}

/// Why a command stopped before it finished.
enum Interrupt {
    /// A newer Set arrived.
    Superseded,
    /// The handle was dropped.
    Stop,
}

/// Why one attempt did not succeed.
enum AttemptError {
    Failed(KasaError),
    Interrupted(Interrupt),
}

impl From<KasaError> for AttemptError {
    fn from(e: KasaError) -> Self {
        AttemptError::Failed(e)
    }
}

impl From<Interrupt> for AttemptError {
    fn from(i: Interrupt) -> Self {
        AttemptError::Interrupted(i)
    }
}

struct Worker {
    target: PlugTarget,
    label: String,
    timing: PlugTiming,
    client: Client,
    inbox: Receiver<PlugCommand>,
    outcomes: Sender<PlugOutcome>,
    /// At most one command per kind, in order of first arrival.
    queue: VecDeque<PlugCommand>,
    /// The strip outlet's full child id, once resolved from a sysinfo.
    child_id: Option<String>,
}

impl Worker {
    fn next_event(&self, deadline: Option<Instant>) -> Event {
        let tick = match deadline {
            Some(d) => crossbeam_channel::at(d),
            None => crossbeam_channel::never(),
        };
        select! {
            recv(self.inbox) -> msg => match msg {
                Ok(cmd) => Event::Command(cmd),
                Err(_) => Event::Shutdown,
            },
            recv(tick) -> _ => Event::Deadline,
        }
    }

    fn enqueue(&mut self, cmd: PlugCommand) {
        match self.queue.iter_mut().find(|q| q.kind() == cmd.kind()) {
            Some(slot) => *slot = cmd,
            None => self.queue.push_back(cmd),
        }
    }

    fn run(mut self) {
        log::debug!("{}: worker started", self.label);
        loop {
            if self.queue.is_empty() {
                match self.next_event(None) {
                    Event::Command(cmd) => self.enqueue(cmd),
                    Event::Shutdown => break,
                    Event::Deadline => continue,
                }
            }
            if self.drain(false).is_err() {
                break;
            }
            let Some(cmd) = self.queue.pop_front() else {
                continue;
            };
            match self.execute(&cmd) {
                Ok(outcome) => {
                    // The control thread may already be gone at shutdown.
                    let _ = self.outcomes.send(outcome);
                }
                Err(Interrupt::Superseded) => {
                    log::info!(
                        "{}: {} superseded by a newer command",
                        self.label,
                        cmd.action()
                    );
                }
                Err(Interrupt::Stop) => break,
            }
        }
        log::debug!("{}: worker stopped", self.label);
    }

    /// Moves whatever is in the inbox into the queue without waiting. With
    /// `setting`, a newly arrived Set interrupts the running one.
    fn drain(&mut self, setting: bool) -> Result<(), Interrupt> {
        let mut superseded = false;
        loop {
            match self.inbox.try_recv() {
                Ok(cmd) => {
                    superseded |= setting && cmd.kind() == 0;
                    self.enqueue(cmd);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return Err(Interrupt::Stop),
            }
        }
        if superseded {
            Err(Interrupt::Superseded)
        } else {
            Ok(())
        }
    }

    /// Sleeps for `d` while still taking commands (so a stop or a newer Set
    /// ends the sleep at once).
    fn pause(&mut self, d: Duration, setting: bool) -> Result<(), Interrupt> {
        self.drain(setting)?;
        if d.is_zero() {
            return Ok(());
        }
        let until = Instant::now() + d;
        loop {
            match self.next_event(Some(until)) {
                Event::Deadline => return Ok(()),
                Event::Shutdown => return Err(Interrupt::Stop),
                Event::Command(cmd) => {
                    let supersedes = setting && cmd.kind() == 0;
                    self.enqueue(cmd);
                    if supersedes {
                        return Err(Interrupt::Superseded);
                    }
                }
            }
        }
    }

    fn execute(&mut self, cmd: &PlugCommand) -> Result<PlugOutcome, Interrupt> {
        let setting = matches!(cmd, PlugCommand::Set { .. });
        let sleeps = self.timing.retry_sleeps();
        let total = sleeps.len().max(1) as u32;
        let mut last: Option<KasaError> = None;
        for (i, sleep) in sleeps.iter().enumerate() {
            let n = i as u32 + 1;
            self.pause(*sleep, setting)?;
            let result = match cmd {
                PlugCommand::Set { on } => self.set_attempt(*on).map(Some),
                PlugCommand::Read => self.read_attempt().map(Some),
                PlugCommand::ArmDeadman { delay } => self.arm_attempt(Some(*delay)).map(|()| None),
                PlugCommand::ClearDeadman => self.arm_attempt(None).map(|()| None),
            };
            match result {
                Ok(state) => {
                    let shown = match state {
                        Some(true) => ": on",
                        Some(false) => ": off",
                        None => "",
                    };
                    log::info!(
                        "{}: {} ok{shown} (attempt {n}/{total})",
                        self.label,
                        cmd.action()
                    );
                    return Ok(PlugOutcome {
                        role: self.target.role,
                        command: cmd.clone(),
                        result: Ok(state),
                        attempts: n,
                    });
                }
                Err(AttemptError::Interrupted(i)) => return Err(i),
                Err(AttemptError::Failed(e)) => {
                    self.client.close();
                    log::warn!(
                        "{}: {} attempt {n}/{total} failed: {}",
                        self.label,
                        cmd.action(),
                        error_chain(&e)
                    );
                    last = Some(e);
                }
            }
        }
        let last_error = match &last {
            Some(e) => error_chain(e),
            None => "no attempt was made (plug_timing.retry_sleeps_s is empty)".to_string(),
        };
        log::error!(
            target: ERROR_LOG_TARGET,
            "{}: {} FAILED after {} attempts: {last_error}",
            self.label,
            cmd.action(),
            sleeps.len()
        );
        Ok(PlugOutcome {
            role: self.target.role,
            command: cmd.clone(),
            result: Err(PlugFailure { last_error }),
            attempts: sleeps.len() as u32,
        })
    }

    fn outlet_error(&self, source: super::protocol::StateError) -> KasaError {
        KasaError::Outlet {
            addr: self.target.address(),
            source,
        }
    }

    /// Reads the state, and resolves the outlet's child id on the way.
    fn read_state(&mut self, timeout: Duration) -> Result<bool, KasaError> {
        let info = self.client.get_sysinfo(timeout)?;
        if let Some(o) = &self.target.outlet {
            let id = info.child_id(o).map_err(|e| self.outlet_error(e))?;
            self.child_id = Some(id);
        }
        info.state_of(self.target.outlet.as_ref())
            .map_err(|e| self.outlet_error(e))
    }

    fn set_attempt(&mut self, on: bool) -> Result<bool, AttemptError> {
        let before = self.read_state(self.timing.before())?;
        log::info!(
            "{}: state before switching: {}",
            self.label,
            if before { "on" } else { "off" }
        );
        self.drain(true)?;
        self.client
            .set_relay_state(self.child_id.as_deref(), on, self.timing.before())?;
        self.pause(self.timing.spacing(), true)?;
        let got = self.read_state(self.timing.after())?;
        if got != on {
            return Err(KasaError::Mismatch {
                addr: self.target.address(),
                want: on,
                got,
            }
            .into());
        }
        Ok(got)
    }

    fn read_attempt(&mut self) -> Result<bool, AttemptError> {
        Ok(self.read_state(self.timing.before())?)
    }

    /// Arms (with a delay) or clears (without) the dead-man countdown rule.
    fn arm_attempt(&mut self, delay: Option<Duration>) -> Result<(), AttemptError> {
        if self.target.outlet.is_some() && self.child_id.is_none() {
            self.read_state(self.timing.before())?;
        }
        let timeout = self.timing.before();
        let child = self.child_id.clone();
        self.client
            .countdown_delete_all(child.as_deref(), timeout)?;
        if let Some(d) = delay {
            self.client.countdown_add_rule(
                child.as_deref(),
                deadman_secs(d),
                false,
                DEADMAN_RULE_NAME,
                timeout,
            )?;
        }
        Ok(())
    }
}
