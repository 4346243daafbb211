//! Test support that the shipped binary does not need: built for the
//! crate's own unit tests and, through the `testkit` feature, for the
//! integration tests and examples (see `Cargo.toml`).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::notify::{Notification, Notifier};

/// A notifier for tests: records every call in order and lets a test wait
/// for a condition on the record without sleeping.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    calls: Mutex<Vec<Notification>>,
    changed: Condvar,
}

impl RecordingNotifier {
    /// An empty record.
    pub fn new() -> RecordingNotifier {
        RecordingNotifier::default()
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Notification> {
        self.lock().clone()
    }

    /// How many recorded calls equal `which`.
    pub fn count(&self, which: &Notification) -> usize {
        self.lock().iter().filter(|n| *n == which).count()
    }

    /// Waits until `done` holds for the record or `timeout` passes; returns
    /// whether it held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Notification]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut calls = self.lock();
        loop {
            if done(&calls) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            calls = match self.changed.wait_timeout(calls, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Notification>> {
        // A test thread that panicked while holding the lock must not hide
        // the record from the test that reports it.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, n: Notification) {
        self.lock().push(n);
        self.changed.notify_all();
    }
}

impl Notifier for RecordingNotifier {
    fn ready(&self) {
        self.record(Notification::Ready);
    }
    fn watchdog(&self) {
        self.record(Notification::Watchdog);
    }
    fn stopping(&self) {
        self.record(Notification::Stopping);
    }
    fn status(&self, text: &str) {
        self.record(Notification::Status(text.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn recording_notifier_records_in_order_and_wakes_waiters() {
        let rec = Arc::new(RecordingNotifier::new());
        let worker = {
            let rec = Arc::clone(&rec);
            std::thread::Builder::new()
                .name("notify-test".into())
                .spawn(move || {
                    let n: &dyn Notifier = rec.as_ref();
                    n.ready();
                    n.watchdog();
                    n.watchdog();
                    n.status("ok");
                    n.stopping();
                })
                .unwrap()
        };
        let saw_stop = rec.wait_until(Duration::from_secs(10), |calls| {
            calls.contains(&Notification::Stopping)
        });
        worker.join().unwrap();
        assert!(saw_stop);
        assert_eq!(
            rec.calls(),
            vec![
                Notification::Ready,
                Notification::Watchdog,
                Notification::Watchdog,
                Notification::Status("ok".into()),
                Notification::Stopping,
            ]
        );
        assert_eq!(rec.count(&Notification::Watchdog), 2);
        assert!(!rec.wait_until(Duration::from_millis(10), |c| c.len() > 5));
    }
}
