//! The sensor thread (docs/design.md §2): reads every `interval`, classifies, and hands
//! the result to the control thread without ever blocking on it. With a
//! chamber sensor (cascade control) it reads both, in turn, on the one bus,
//! each with its own classifier and channel.
//!
//! The channel to the control thread is a `bounded(1)` slot that holds the
//! latest event: before each send the thread pops whatever the control thread
//! has not taken yet (through a clone of the receiver) so a slow control
//! thread sees the newest reading, never a backlog. Every result is sent,
//! faults included; whether the sensor is stale is the controller's call,
//! made in one place from the time of the last valid reading.
//!
//! A read itself is not interruptible (about 1 s for a 12-bit conversion,
//! and forever if a broken driver or a FIFO in place of `w1_slave` blocks),
//! but the wait between reads is. So stopping is bounded: dropping the
//! handle (or [`SensorHandle::stop`]) waits a short while for the thread and
//! then leaves a thread that is stuck in a read behind, rather than hang the
//! shutdown that must switch the plugs off.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};

use super::backend::Sensor;
use super::classify::Classifier;
use crate::msg::{Probe, SensorEvent, SensorFault};

/// How long dropping the handle waits for a thread that is in the middle of a
/// read: longer than a healthy 12-bit conversion (750 ms).
pub(crate) const STOP_WAIT: Duration = Duration::from_millis(1500);

/// Owns the sensor thread: dropping it stops and joins the thread.
pub struct SensorHandle {
    stop: Option<Sender<()>>,
    /// Disconnects when the thread ends (the worker holds the sender).
    done: Receiver<()>,
    join: Option<JoinHandle<()>>,
}

impl SensorHandle {
    /// Spawns thread `sensor`. `tx` and `rx_for_overwrite` are the two ends
    /// of a `bounded(1)` channel whose receiver the control thread also
    /// holds; see [`SensorHandle::spawn_with_channel`] to get one made.
    /// Because the thread holds a receiver, the channel never disconnects
    /// under it: the thread ends when the handle is dropped.
    pub fn spawn(
        sensor: Box<dyn Sensor>,
        classifier: Classifier,
        interval: Duration,
        tx: Sender<SensorEvent>,
        rx_for_overwrite: Receiver<SensorEvent>,
    ) -> std::io::Result<SensorHandle> {
        let product = ProbeWorker::new(Probe::Product, sensor, classifier, tx, rx_for_overwrite);
        SensorHandle::spawn_probes(vec![product], interval)
    }

    /// Spawns thread `sensor` reading the product sensor and then the
    /// chamber sensor (one bus: never both at once) every `interval`; each
    /// has its own latest-value channel. Returns the receivers, product first.
    pub fn spawn_pair(
        product: (Box<dyn Sensor>, Classifier),
        chamber: (Box<dyn Sensor>, Classifier),
        interval: Duration,
    ) -> std::io::Result<(SensorHandle, Receiver<SensorEvent>, Receiver<SensorEvent>)> {
        let (ptx, prx) = bounded(1);
        let (ctx, crx) = bounded(1);
        let probes = vec![
            ProbeWorker::new(Probe::Product, product.0, product.1, ptx, prx.clone()),
            ProbeWorker::new(Probe::Chamber, chamber.0, chamber.1, ctx, crx.clone()),
        ];
        let handle = SensorHandle::spawn_probes(probes, interval)?;
        Ok((handle, prx, crx))
    }

    fn spawn_probes(probes: Vec<ProbeWorker>, interval: Duration) -> std::io::Result<SensorHandle> {
        let (stop_tx, stop_rx) = bounded(1);
        let (done_tx, done_rx) = bounded(0);
        let worker = Worker {
            probes,
            interval,
            _done: done_tx,
            stop: stop_rx,
        };
        let join = std::thread::Builder::new()
            .name("sensor".into())
            .spawn(move || worker.run())?;
        Ok(SensorHandle {
            stop: Some(stop_tx),
            done: done_rx,
            join: Some(join),
        })
    }

    /// Like [`SensorHandle::spawn`], creating the `bounded(1)` channel and
    /// returning the receiver for the control thread.
    pub fn spawn_with_channel(
        sensor: Box<dyn Sensor>,
        classifier: Classifier,
        interval: Duration,
    ) -> std::io::Result<(SensorHandle, Receiver<SensorEvent>)> {
        let (tx, rx) = bounded(1);
        let handle = SensorHandle::spawn(sensor, classifier, interval, tx, rx.clone())?;
        Ok((handle, rx))
    }

    /// Whether the thread has ended (the control side hung up, or it panicked).
    pub(crate) fn is_finished(&self) -> bool {
        match &self.join {
            Some(join) => join.is_finished(),
            None => true,
        }
    }
}

impl SensorHandle {
    /// Stops the thread, waiting at most `within` for a read in progress.
    /// Returns `false` when the thread was still stuck in a read and has been
    /// left behind (it ends with the process).
    pub fn stop(mut self, within: Duration) -> bool {
        self.stop_within(within)
    }

    fn stop_within(&mut self, within: Duration) -> bool {
        // Dropping the sender disconnects the stop channel, which ends the
        // interval wait at once.
        drop(self.stop.take());
        let Some(join) = self.join.take() else {
            return true;
        };
        match self.done.recv_timeout(within) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if join.join().is_err() {
                    log::error!("the sensor thread panicked; see the message above");
                }
                true
            }
            // The worker never sends on `done`; only its end disconnects it.
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                log::warn!(
                    "the sensor thread is stuck in a read for over {:.1} s; leaving it behind",
                    within.as_secs_f64()
                );
                false
            }
        }
    }
}

impl Drop for SensorHandle {
    fn drop(&mut self) {
        self.stop_within(STOP_WAIT);
    }
}

enum Event {
    Tick,
    Shutdown,
}

struct Worker {
    /// The sensors on the bus, read in turn.
    probes: Vec<ProbeWorker>,
    interval: Duration,
    /// Dropped when the thread ends, which tells the handle it is over.
    _done: Sender<()>,
    stop: Receiver<()>,
}

/// One sensor on the bus and its channel to the control thread.
struct ProbeWorker {
    probe: Probe,
    sensor: Box<dyn Sensor>,
    classifier: Classifier,
    tx: Sender<SensorEvent>,
    rx_for_overwrite: Receiver<SensorEvent>,
    last_kind: Option<&'static str>,
    repeats: u64,
}

impl ProbeWorker {
    fn new(
        probe: Probe,
        sensor: Box<dyn Sensor>,
        classifier: Classifier,
        tx: Sender<SensorEvent>,
        rx_for_overwrite: Receiver<SensorEvent>,
    ) -> ProbeWorker {
        ProbeWorker {
            probe,
            sensor,
            classifier,
            tx,
            rx_for_overwrite,
            last_kind: None,
            repeats: 0,
        }
    }

    /// Reads, classifies and sends; `false` when the control thread is gone.
    fn read_and_send(&mut self) -> bool {
        let event = match self.sensor.read() {
            Ok(raw) => self.classifier.classify(raw),
            Err(fault) => Err(fault),
        };
        let event = match event {
            Ok(reading) => {
                self.note_ok();
                Ok(reading)
            }
            Err(fault) => {
                self.note_fault(&fault);
                Err(fault)
            }
        };
        self.send_latest(event)
    }
}

impl Worker {
    /// Waits until `deadline` or a stop; a disconnected stop channel (the
    /// handle dropped) is a stop too.
    fn next_event(&self, deadline: Instant) -> Event {
        select! {
            recv(self.stop) -> _ => Event::Shutdown,
            recv(crossbeam_channel::at(deadline)) -> _ => Event::Tick,
        }
    }

    fn run(mut self) {
        let mut next = Instant::now();
        loop {
            if let Event::Shutdown = self.next_event(next) {
                return;
            }
            next += self.interval;
            // After a long stall (suspend, a read that hung) do not fire a
            // burst of catch-up reads.
            let now = Instant::now();
            if next < now {
                next = now + self.interval;
            }
            for probe in self.probes.iter_mut() {
                if !probe.read_and_send() {
                    log::debug!("sensor thread: the control thread hung up; stopping");
                    return;
                }
            }
        }
    }
}

impl ProbeWorker {
    /// Replaces any event the control thread has not taken. Returns `false`
    /// when the control thread is gone.
    fn send_latest(&self, event: SensorEvent) -> bool {
        let _ = self.rx_for_overwrite.try_recv();
        match self.tx.try_send(event) {
            Ok(()) => true,
            // Only this thread sends, so after the pop the slot is free; if
            // it is somehow full, the newer event is dropped, not waited on.
            Err(TrySendError::Full(_)) => true,
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn note_ok(&mut self) {
        if let Some(kind) = self.last_kind.take() {
            log::info!(
                "{} {}: valid readings again after {} {kind} fault(s)",
                self.probe.label(),
                self.sensor.id(),
                self.repeats
            );
        }
        self.repeats = 0;
    }

    /// Logs a fault when its kind changes and every 60th repeat, so a sensor
    /// that stays broken for days does not flood the log.
    fn note_fault(&mut self, fault: &SensorFault) {
        if self.last_kind == Some(fault.kind()) {
            self.repeats += 1;
            if self.repeats % 60 == 0 {
                log::warn!(
                    "{} fault {} (x{}): {fault}",
                    self.probe.label(),
                    fault.kind(),
                    self.repeats
                );
            }
        } else {
            log::warn!("{} fault {}: {fault}", self.probe.label(), fault.kind());
            self.last_kind = Some(fault.kind());
            self.repeats = 1;
        }
    }
}
