//! The plug worker (docs/design.md §6): one thread per plug, so a dead heater plug
//! never delays the cooler. It runs each [`PlugCommand`] with up to three
//! attempts (sleeping 0, 1 and 2 s before them) and reports a [`PlugOutcome`].
//!
//! One attempt of a switch:
//!
//! 1. read the state (`before` timeout): the plug is reachable, and the log
//!    shows the state before;
//! 2. for a switch-on of a plug with a dead-man: arm the dead-man, **then**
//!    switch (together within one `before` timeout), so the relay never
//!    closes without a rule that opens it again;
//! 3. sleep `spacing` so the state propagates;
//! 4. read back (`after` timeout): the state must be the one asked for.
//!
//! After a verified switch-off of a plug with a dead-man, the rule is
//! removed. A switch that may have reached the plug and was not verified
//! reports [`PlugState::Unknown`]: unknown is not off.
//!
//! The worst case of a command is therefore, with A attempts and the retry
//! sleeps S: a read `A·before + ΣS`; a switch `A·(2·before + spacing + after)
//! + ΣS`, plus one `before` to remove the dead-man after a verified off
//! ([`Timing::worst_case`]). Each request's timeout bounds the connect, the
//! write, the read and any reconnect; a command sent with a deadline
//! ([`PlugHandle::send_by`], used at shutdown) ends by that deadline.
//!
//! A permanent failure (no relay, no such outlet, a reply that cannot be
//! used, a request the device does not support) ends the command at once:
//! retrying cannot help. A reply that answers another request than the one
//! sent (a late or stray frame) is not permanent: the attempt fails, the
//! connection is closed, and the next attempt starts on a fresh one; only
//! the same wrong answer on that fresh connection ends the command.
//!
//! The worker only acts on the latest wish: commands are kept per kind
//! (switch, read, dead-man), a newer one replaces a queued one of its kind in
//! place, and a `Set` that arrives while another `Set` is in its attempts
//! supersedes it at the next step. The superseded one reports
//! [`Completion::Superseded`] (with `Unknown` if its switch was sent).

use std::collections::VecDeque;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select_biased, Receiver, Sender};

use super::device::{Device, Outlet};
use super::error::{KasaError, ERROR_LOG_TARGET};
use super::transport::TransportKind;
use crate::error::chain;
use crate::msg::{
    Completion, DeadmanReport, FailureKind, PlugCommand, PlugFailure, PlugOutcome, PlugState, Role,
};

/// The durations of the worker's algorithm (docs/design.md §6). Tests scale them
/// down; the defaults are the real schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Connect timeout (a connect also fits within its request's timeout).
    pub connect: Duration,
    /// Timeout of the read before a switch, and of the switch itself.
    pub before: Duration,
    /// Timeout of the read-back after a switch.
    pub after: Duration,
    /// Pause between the switch and the read-back.
    pub spacing: Duration,
    /// Sleep before each attempt; its length is the number of attempts.
    pub retry_sleeps: Vec<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect: Duration::from_secs(3),
            before: Duration::from_secs(6),
            after: Duration::from_secs(5),
            spacing: Duration::from_millis(500),
            retry_sleeps: vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
        }
    }
}

impl Timing {
    /// Every duration multiplied by `factor` (tests run the schedule scaled down).
    pub fn scaled(&self, factor: f64) -> Timing {
        let f = |d: Duration| d.mul_f64(factor);
        Timing {
            connect: f(self.connect),
            before: f(self.before),
            after: f(self.after),
            spacing: f(self.spacing),
            retry_sleeps: self.retry_sleeps.iter().map(|d| f(*d)).collect(),
        }
    }

    /// The longest a command can take when every request runs into its
    /// timeout (see the module docs for the formula).
    pub fn worst_case(&self, cmd: &PlugCommand) -> Duration {
        let attempts = self.retry_sleeps.len() as u32;
        let sleeps: Duration = self.retry_sleeps.iter().sum();
        let attempt = match cmd {
            PlugCommand::Set { .. } => self.before * 2 + self.spacing + self.after,
            _ => self.before,
        };
        let extra = match cmd {
            PlugCommand::Set {
                on: false,
                deadman: Some(_),
            } => self.before,
            _ => Duration::ZERO,
        };
        attempt * attempts + sleeps + extra
    }
}

/// Which plug (and outlet) a worker drives, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlugTarget {
    /// Its job, named in every log line.
    pub role: Role,
    /// Host name or IP.
    pub host: String,
    /// TCP port; `None` takes the protocol's default (9999 legacy, 80 otherwise).
    pub port: Option<u16>,
    /// The outlet of a power strip, `None` for a single plug.
    pub outlet: Option<Outlet>,
    /// The transport (config `protocol`), or `Auto` to learn it.
    pub transport: TransportKind,
}

impl PlugTarget {
    /// The port in use: the given one, or the protocol's default.
    pub(crate) fn port(&self) -> u16 {
        self.port.unwrap_or(self.transport.default_port())
    }

    /// `host:port` (IPv6 in brackets).
    pub(crate) fn address(&self) -> String {
        super::transport::net::address(&self.host, self.port())
    }

    /// `heater 10.0.0.5:9999` or `heater 10.0.0.5:9999 outlet #2`, for logs.
    pub(crate) fn label(&self) -> String {
        match &self.outlet {
            Some(o) => format!("{} {} outlet {o}", self.role, self.address()),
            None => format!("{} {}", self.role, self.address()),
        }
    }
}

/// A command with the time by which it must be over.
struct Request {
    cmd: PlugCommand,
    deadline: Option<Instant>,
}

/// The owner of a plug worker thread: sending never blocks; dropping it stops
/// the worker at its next step or sleep and joins it.
pub struct PlugHandle {
    role: Role,
    tx: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl PlugHandle {
    /// Spawns the worker thread, named `plug-<role>`, driving `device`.
    pub fn spawn(
        target: PlugTarget,
        timing: Timing,
        device: Box<dyn Device>,
        outcomes: Sender<PlugOutcome>,
    ) -> std::io::Result<PlugHandle> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let role = target.role;
        let worker = Worker {
            label: target.label(),
            role,
            timing,
            device,
            inbox: rx,
            outcomes,
            queue: VecDeque::new(),
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
        self.push(Request {
            cmd,
            deadline: None,
        });
    }

    /// Queues a command that must be over by `deadline`: no attempt, sleep
    /// or request runs past it.
    pub fn send_by(&self, cmd: PlugCommand, deadline: Instant) {
        self.push(Request {
            cmd,
            deadline: Some(deadline),
        });
    }

    fn push(&self, req: Request) {
        let Some(tx) = &self.tx else { return };
        if tx.send(req).is_err() {
            log::error!(
                "{} plug worker is gone (it panicked?); command dropped",
                self.role
            );
        }
    }

    /// Whether the worker thread has ended (it only ends early by panicking).
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for PlugHandle {
    fn drop(&mut self) {
        // A disconnected inbox is the worker's stop signal; a request under
        // way ends within its own timeout.
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
    Command(Request),
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

/// What a command has learned so far, across its attempts.
#[derive(Default)]
struct Progress {
    /// A switch request went out: from here on, not verified means unknown.
    sent: bool,
    /// The last state read.
    read: Option<bool>,
    rssi: Option<i64>,
    deadman: Option<DeadmanReport>,
}

struct Worker {
    label: String,
    role: Role,
    timing: Timing,
    device: Box<dyn Device>,
    inbox: Receiver<Request>,
    outcomes: Sender<PlugOutcome>,
    /// At most one command per kind, in order of first arrival.
    queue: VecDeque<Request>,
}

/// Whether `new` interrupts the command running (a Set when `setting`).
fn supersedes(setting: bool, new: &Request) -> bool {
    kind(&new.cmd) == 0 && (setting || new.deadline.is_some())
}

fn kind(cmd: &PlugCommand) -> u8 {
    match cmd {
        PlugCommand::Set { .. } => 0,
        PlugCommand::Read => 1,
        PlugCommand::ArmDeadman { .. } | PlugCommand::ClearDeadman => 2,
    }
}

impl Worker {
    fn next_event(&self, deadline: Option<Instant>) -> Event {
        let tick = match deadline {
            Some(d) => crossbeam_channel::at(d),
            None => crossbeam_channel::never(),
        };
        select_biased! {
            recv(self.inbox) -> msg => match msg {
                Ok(req) => Event::Command(req),
                Err(_) => Event::Shutdown,
            },
            recv(tick) -> _ => Event::Deadline,
        }
    }

    fn enqueue(&mut self, req: Request) {
        match self
            .queue
            .iter_mut()
            .find(|q| kind(&q.cmd) == kind(&req.cmd))
        {
            Some(slot) => *slot = req,
            None => self.queue.push_back(req),
        }
    }

    fn run(mut self) {
        log::debug!("{}: worker started", self.label);
        loop {
            if self.queue.is_empty() {
                match self.next_event(None) {
                    Event::Command(req) => self.enqueue(req),
                    Event::Shutdown => break,
                    Event::Deadline => continue,
                }
            }
            // Nothing runs here, so only a stop matters.
            if let Err(Interrupt::Stop) = self.drain(false) {
                break;
            }
            let Some(req) = self.queue.pop_front() else {
                continue;
            };
            match self.execute(&req) {
                Some(outcome) => {
                    // The control thread may already be gone at shutdown.
                    let _ = self.outcomes.send(outcome);
                }
                None => break,
            }
        }
        self.device.close();
        log::debug!("{}: worker stopped", self.label);
    }

    /// Moves whatever is in the inbox into the queue without waiting. With
    /// `setting`, a newly arrived Set interrupts the running one; a Set with
    /// a deadline (shutdown) interrupts whatever is running.
    fn drain(&mut self, setting: bool) -> Result<(), Interrupt> {
        let mut superseded = false;
        loop {
            match self.inbox.try_recv() {
                Ok(req) => {
                    superseded |= supersedes(setting, &req);
                    self.enqueue(req);
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

    /// Sleeps until `until` while still taking commands (so a stop or a
    /// newer Set ends the sleep at once).
    fn pause_until(&mut self, until: Instant, setting: bool) -> Result<(), Interrupt> {
        self.drain(setting)?;
        while Instant::now() < until {
            match self.next_event(Some(until)) {
                Event::Deadline => return Ok(()),
                Event::Shutdown => return Err(Interrupt::Stop),
                Event::Command(req) => {
                    let interrupt = supersedes(setting, &req);
                    self.enqueue(req);
                    if interrupt {
                        return Err(Interrupt::Superseded);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs one command; `None` when the worker must stop.
    fn execute(&mut self, req: &Request) -> Option<PlugOutcome> {
        let cmd = &req.cmd;
        let setting = matches!(cmd, PlugCommand::Set { .. });
        let sleeps = self.timing.retry_sleeps.clone();
        let total = sleeps.len() as u32;
        let start = Instant::now();
        let mut progress = Progress::default();
        let mut times = Vec::new();
        let mut last: Option<KasaError> = None;
        let mut interrupt = None;
        for (i, sleep) in sleeps.iter().enumerate() {
            let n = i as u32 + 1;
            let wake = Instant::now() + *sleep;
            if req.deadline.is_some_and(|d| wake >= d) {
                last = Some(KasaError::NoTime {
                    addr: self.device.address().to_string(),
                    op: format!("{cmd} attempt {n}"),
                });
                break;
            }
            if let Err(i) = self.pause_until(wake, setting) {
                interrupt = Some(i);
                break;
            }
            let began = Instant::now();
            let result = self.attempt(cmd, req.deadline, &mut progress);
            times.push(began.elapsed());
            match result {
                Ok(()) => {
                    let shown = match (cmd, progress.read) {
                        (PlugCommand::Set { .. } | PlugCommand::Read, Some(on)) => {
                            format!(": {}", if on { "on" } else { "off" })
                        }
                        _ => String::new(),
                    };
                    log::info!("{}: {cmd} ok{shown} (attempt {n}/{total})", self.label);
                    return Some(self.outcome(cmd, Completion::Done, &progress, times, start));
                }
                Err(AttemptError::Interrupted(i)) => {
                    interrupt = Some(i);
                    break;
                }
                Err(AttemptError::Failed(mut e)) => {
                    // The next attempt starts on a fresh connection; a wrong
                    // answer that a fresh connection repeats is permanent.
                    self.device.close();
                    if let Some(earlier) = &last {
                        e.repeats(earlier);
                    }
                    let permanent = e.is_permanent();
                    log::warn!(
                        "{}: {cmd} attempt {n}/{total} failed{}: {}",
                        self.label,
                        if permanent {
                            " (permanent, not retried)"
                        } else {
                            ""
                        },
                        chain(&e)
                    );
                    last = Some(e);
                    if permanent {
                        break;
                    }
                }
            }
        }
        match interrupt {
            Some(Interrupt::Stop) => return None,
            Some(Interrupt::Superseded) => {
                log::info!("{}: {cmd} superseded by a newer command", self.label);
                return Some(self.outcome(cmd, Completion::Superseded, &progress, times, start));
            }
            None => {}
        }
        let failure = match &last {
            Some(e) => PlugFailure {
                kind: e.kind(),
                permanent: e.is_permanent(),
                message: chain(e),
            },
            None => PlugFailure {
                kind: FailureKind::OutOfTime,
                permanent: false,
                message: format!(
                    "{}: no attempt was made (plug_timing.retry_sleeps_s is empty)",
                    self.device.address()
                ),
            },
        };
        let state_note = match (cmd, progress.sent) {
            (PlugCommand::Set { .. }, true) => "; its state is unknown",
            _ => "",
        };
        log::error!(
            target: ERROR_LOG_TARGET,
            "{}: {cmd} FAILED after {} attempt{}{state_note}: {}",
            self.label,
            times.len(),
            if times.len() == 1 { "" } else { "s" },
            failure.message
        );
        Some(self.outcome(cmd, Completion::Failed(failure), &progress, times, start))
    }

    fn outcome(
        &self,
        cmd: &PlugCommand,
        completion: Completion,
        progress: &Progress,
        attempt_times: Vec<Duration>,
        start: Instant,
    ) -> PlugOutcome {
        let done = completion == Completion::Done;
        let state = match cmd {
            // Verified, or possibly changed by a switch that went out.
            PlugCommand::Set { on, .. } if done => Some(PlugState::from_on(*on)),
            PlugCommand::Set { .. } if progress.sent => Some(PlugState::Unknown),
            // Nothing went out: the last read is what the plug is.
            PlugCommand::Set { .. } | PlugCommand::Read => progress.read.map(PlugState::from_on),
            _ => None,
        };
        PlugOutcome {
            role: self.role,
            command: cmd.clone(),
            completion,
            state,
            deadman: progress.deadman.clone(),
            attempts: attempt_times.len() as u32,
            attempt_times,
            elapsed: start.elapsed(),
            rssi: progress.rssi,
        }
    }

    /// The deadline of one step: its timeout, cut by the command's deadline.
    fn step(
        &self,
        timeout: Duration,
        command: Option<Instant>,
        op: &str,
    ) -> Result<Instant, KasaError> {
        let now = Instant::now();
        let d = now + timeout;
        match command {
            Some(c) if c <= now => Err(KasaError::NoTime {
                addr: self.device.address().to_string(),
                op: op.to_string(),
            }),
            Some(c) => Ok(d.min(c)),
            None => Ok(d),
        }
    }

    fn read(
        &mut self,
        timeout: Duration,
        command: Option<Instant>,
        progress: &mut Progress,
    ) -> Result<bool, KasaError> {
        let deadline = self.step(timeout, command, "reading the state")?;
        let status = self.device.read(deadline)?;
        progress.read = Some(status.on);
        if status.rssi.is_some() {
            progress.rssi = status.rssi;
        }
        Ok(status.on)
    }

    fn attempt(
        &mut self,
        cmd: &PlugCommand,
        command: Option<Instant>,
        progress: &mut Progress,
    ) -> Result<(), AttemptError> {
        let before = self.timing.before;
        match cmd {
            PlugCommand::Read => {
                self.read(before, command, progress)?;
                Ok(())
            }
            PlugCommand::Set { on, deadman } => self.set_attempt(*on, *deadman, command, progress),
            PlugCommand::ArmDeadman { delay } => {
                let deadline = self.step(before, command, "arming the dead-man")?;
                let armed = self.device.arm_deadman(*delay, deadline);
                Ok(record_deadman(progress, armed.map(DeadmanReport::Armed))?)
            }
            PlugCommand::ClearDeadman => {
                let deadline = self.step(before, command, "clearing the dead-man")?;
                let cleared = self.device.clear_deadman(deadline);
                Ok(record_deadman(
                    progress,
                    cleared.map(|()| DeadmanReport::Cleared),
                )?)
            }
        }
    }

    fn set_attempt(
        &mut self,
        on: bool,
        deadman: Option<Duration>,
        command: Option<Instant>,
        progress: &mut Progress,
    ) -> Result<(), AttemptError> {
        let before = self.read(self.timing.before, command, progress)?;
        log::info!(
            "{}: state before switching: {}",
            self.label,
            if before { "on" } else { "off" }
        );
        self.drain(true)?;
        // The arm and the switch share one `before` timeout.
        let deadline = self.step(self.timing.before, command, "switching")?;
        if let (true, Some(delay)) = (on, deadman) {
            // A plug that refuses countdown rules is switched anyway (the
            // control thread says loudly that it has no dead-man); any other
            // failure stops the switch: never close the relay without the
            // rule that opens it again.
            let armed = self.device.arm_deadman(delay, deadline);
            record_deadman(progress, armed.map(DeadmanReport::Armed))?;
        }
        progress.sent = true;
        self.device.set(on, deadline)?;
        let spacing = Instant::now() + self.timing.spacing;
        if command.is_some_and(|c| spacing >= c) {
            return Err(KasaError::NoTime {
                addr: self.device.address().to_string(),
                op: "the read-back".into(),
            }
            .into());
        }
        self.pause_until(spacing, true)?;
        let got = self.read(self.timing.after, command, progress)?;
        if got != on {
            return Err(KasaError::Mismatch {
                addr: self.device.address().to_string(),
                want: on,
                got,
            }
            .into());
        }
        if let (false, Some(_)) = (on, deadman) {
            // Verified off: the rule has done its job. Failing to remove it
            // does not fail the switch (the plug is off either way).
            let removed = self
                .step(self.timing.before, command, "clearing the dead-man")
                .and_then(|d| self.device.clear_deadman(d));
            progress.deadman = Some(match removed {
                Ok(()) => DeadmanReport::Cleared,
                Err(e) => {
                    log::warn!(
                        "{}: could not remove the dead-man after switching off: {}",
                        self.label,
                        chain(&e)
                    );
                    deadman_failure(&e)
                }
            });
        }
        Ok(())
    }
}

/// Records the answer to a dead-man step in `progress`. A plug that has no
/// dead-man is a definite answer, not a failure to retry: the control thread
/// says it once and retries only at reconcile. Any other error is returned.
fn record_deadman(
    progress: &mut Progress,
    result: Result<DeadmanReport, KasaError>,
) -> Result<(), KasaError> {
    match result {
        Ok(report) => {
            progress.deadman = Some(report);
            Ok(())
        }
        Err(e) => {
            progress.deadman = Some(deadman_failure(&e));
            if e.kind() == FailureKind::Unsupported {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

fn deadman_failure(e: &KasaError) -> DeadmanReport {
    if e.kind() == FailureKind::Unsupported {
        DeadmanReport::Unsupported(chain(e))
    } else {
        DeadmanReport::Failed(chain(e))
    }
}
