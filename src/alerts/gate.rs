//! The rate limit and the coalescing of alerts, as a pure state machine with
//! the clock passed in (`at` / `now`), so that every rule is a table test.
//!
//! Rules (per condition: the kind's [`AlertKind::condition`] plus the plug role):
//! - **Filter**: a condition not in `alerts.events` is dropped (`test` always passes).
//! - **Repeat**: a firing goes out if this condition's last firing went out
//!   `repeat` or longer ago (or never). Within `repeat`, while the person
//!   already knows (the last thing sent was a firing), it is suppressed; the
//!   caller may re-report an active condition every cycle, and after
//!   `repeat` that goes out again as a reminder.
//! - **Flapping**: a firing within `repeat` after its recovery went out is
//!   deferred to `last firing + repeat`, and sent then if no recovery came in
//!   between (so at most one firing per `repeat`, and the last word is never
//!   a stale "recovered").
//! - **Recovery**: never suppressed, but sent only if its firing was sent;
//!   a recovery of a deferred firing cancels both.
//! - **Coalescing**: what passes is held for `window` after the first of them
//!   and then leaves as one batch (one hook run); at most [`MAX_BATCH`] per
//!   batch, the rest leave in the next one right away.
//! - `test` is never filtered, suppressed or remembered.

use std::time::{Duration, Instant};

use super::event::{Alert, AlertKind, KindSet};
use crate::Role;

/// The most alerts in one hook run (keeps the environment variables small).
pub(crate) const MAX_BATCH: usize = 20;

/// What the gate did with an offered alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It will go out in the current batch.
    Queued,
    /// Dropped: its condition is not in `alerts.events`.
    Filtered,
    /// Dropped: the same condition went out less than `repeat` ago and is still active.
    Suppressed,
    /// Held until its repeat interval ends (it fired again soon after a recovery).
    Deferred,
    /// A recovery whose firing was deferred: both are dropped.
    Cancelled,
    /// A recovery whose firing never went out (filtered, or never reported).
    Unmatched,
}

type Key = (AlertKind, Option<Role>);

#[derive(Debug, Default)]
struct Condition {
    /// The last thing sent for this condition was a firing (the person thinks it is active).
    notified: bool,
    /// When its last firing went out (was queued).
    last_fired: Option<Instant>,
    /// A firing waiting for `last_fired + repeat`.
    deferred: Option<Alert>,
}

/// The rate limit and coalescing state (see the module doc).
#[derive(Debug)]
pub(crate) struct Gate {
    repeat: Duration,
    window: Duration,
    filter: KindSet,
    /// Per condition; a few dozen at most (kinds × plugs), so a list.
    conditions: Vec<(Key, Condition)>,
    outbox: Vec<Alert>,
    /// When the first alert of the current batch was queued.
    opened: Option<Instant>,
}

impl Gate {
    /// A gate with no history.
    pub fn new(repeat: Duration, window: Duration, filter: KindSet) -> Gate {
        Gate {
            repeat,
            window,
            filter,
            conditions: Vec::new(),
            outbox: Vec::new(),
            opened: None,
        }
    }

    fn queue(&mut self, alert: Alert, at: Instant) {
        if self.outbox.is_empty() {
            self.opened = Some(at);
        }
        self.outbox.push(alert);
    }

    /// Offers an alert that arrived at `at` (non-decreasing from call to call).
    pub(crate) fn offer(&mut self, alert: Alert, at: Instant) -> Verdict {
        if alert.kind == AlertKind::Test {
            self.queue(alert, at);
            return Verdict::Queued;
        }
        if !self.filter.passes(alert.kind) {
            return Verdict::Filtered;
        }
        let key = (alert.kind.condition(), alert.plug.as_ref().map(|(r, _)| *r));
        let repeat = self.repeat;
        let i = match self.conditions.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.conditions.push((key, Condition::default()));
                self.conditions.len() - 1
            }
        };
        let c = &mut self.conditions[i].1;
        if alert.recovered {
            if c.deferred.take().is_some() {
                return Verdict::Cancelled;
            }
            if !c.notified {
                return Verdict::Unmatched;
            }
            c.notified = false;
            self.queue(alert, at);
            return Verdict::Queued;
        }
        let due = c
            .last_fired
            .is_none_or(|t| at.saturating_duration_since(t) >= repeat);
        if due {
            c.last_fired = Some(at);
            c.notified = true;
            c.deferred = None;
            self.queue(alert, at);
            Verdict::Queued
        } else if c.notified {
            Verdict::Suppressed
        } else {
            c.deferred = Some(alert);
            Verdict::Deferred
        }
    }

    /// Moves deferred firings whose time has come into the batch.
    fn promote(&mut self, now: Instant) {
        let repeat = self.repeat;
        let mut ready = Vec::new();
        for (_, c) in &mut self.conditions {
            let Some(last) = c.last_fired else { continue };
            if now < last + repeat {
                continue;
            }
            if let Some(alert) = c.deferred.take() {
                c.last_fired = Some(last + repeat);
                c.notified = true;
                ready.push((last + repeat, alert));
            }
        }
        // In due order (there is rarely more than one; no sort machinery).
        while let Some(i) = (0..ready.len()).min_by_key(|&i| ready[i].0) {
            let (due, alert) = ready.swap_remove(i);
            self.queue(alert, due);
        }
    }

    /// When [`Gate::take_batch`] will next have something (`None`: nothing is waiting).
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let batch = self.opened.map(|t| t + self.window);
        let deferred = self
            .conditions
            .iter()
            .map(|(_, c)| c)
            .filter(|c| c.deferred.is_some())
            .filter_map(|c| c.last_fired.map(|t| t + self.repeat))
            .min();
        match (batch, deferred) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The batch to send at `now`, if its window has ended.
    pub(crate) fn take_batch(&mut self, now: Instant) -> Option<Vec<Alert>> {
        self.promote(now);
        let opened = self.opened?;
        if now < opened + self.window {
            return None;
        }
        Some(self.take(now))
    }

    /// The batch to send at `now` without waiting for the window (shutdown).
    /// Deferred firings that are not yet due stay deferred (never sent).
    pub(crate) fn take_now(&mut self, now: Instant) -> Option<Vec<Alert>> {
        self.promote(now);
        self.opened?;
        Some(self.take(now))
    }

    fn take(&mut self, now: Instant) -> Vec<Alert> {
        let n = self.outbox.len().min(MAX_BATCH);
        let batch: Vec<Alert> = self.outbox.drain(..n).collect();
        // The rest has waited long enough: it leaves on the next call.
        self.opened = if self.outbox.is_empty() {
            None
        } else {
            Some(now.checked_sub(self.window).unwrap_or(now))
        };
        batch
    }

    /// Alerts waiting in the current batch.
    pub(crate) fn pending(&self) -> usize {
        self.outbox.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Units;
    use AlertKind as K;
    use Verdict as V;

    const REPEAT: Duration = Duration::from_secs(3600);
    const WINDOW: Duration = Duration::from_secs(2);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn high(recovered: bool) -> Alert {
        Alert::alarm_high(31.0, 30.0, Units::C, recovered)
    }
    fn plug(role: Role, recovered: bool) -> Alert {
        if recovered {
            Alert::plug_recovered(role, "h", 3)
        } else {
            Alert::plug_failing(role, "h", 3, "timeout")
        }
    }

    /// Runs `steps` (seconds after t0, alert) through a gate, checking each
    /// verdict, and returns what left in batches, as (kind, recovered) per batch,
    /// polling every second as the alerter would.
    fn run(
        filter: KindSet,
        steps: &[(u64, Alert, Verdict)],
        until: u64,
    ) -> Vec<(u64, Vec<(AlertKind, bool)>)> {
        let t0 = Instant::now();
        let mut gate = Gate::new(REPEAT, WINDOW, filter);
        let mut out = Vec::new();
        let mut steps = steps.iter().peekable();
        for sec in 0..=until {
            while let Some((at, alert, want)) = steps.next_if(|(at, _, _)| *at == sec) {
                let got = gate.offer(alert.clone(), t0 + s(*at));
                assert_eq!(
                    got, *want,
                    "at {at} s: {} recovered={}",
                    alert.kind, alert.recovered
                );
            }
            while let Some(b) = gate.take_batch(t0 + s(sec)) {
                out.push((sec, b.iter().map(|a| (a.kind, a.recovered)).collect()));
            }
        }
        assert!(steps.next().is_none(), "steps past `until`");
        out
    }

    #[test]
    fn a_firing_is_sent_after_the_window_and_repeats_are_suppressed() {
        let out = run(
            KindSet::all(),
            &[
                (0, high(false), V::Queued),
                (10, high(false), V::Suppressed),
                (3599, high(false), V::Suppressed),
            ],
            3700,
        );
        assert_eq!(out, [(2, vec![(K::AlarmHigh, false)])]);
    }

    #[test]
    fn a_still_active_condition_re_reported_after_repeat_is_a_reminder() {
        let out = run(
            KindSet::all(),
            &[
                (0, high(false), V::Queued),
                (3599, high(false), V::Suppressed),
                (3600, high(false), V::Queued),
                (3610, high(false), V::Suppressed),
                (7200, high(false), V::Queued),
            ],
            7300,
        );
        let times: Vec<u64> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [2, 3602, 7202]);
    }

    #[test]
    fn a_recovery_is_never_suppressed_when_its_firing_was_sent() {
        let out = run(
            KindSet::all(),
            &[
                (0, high(false), V::Queued),
                (5, high(true), V::Queued),
                // A recovery again (no new firing): the person already knows.
                (6, high(true), V::Unmatched),
            ],
            10,
        );
        assert_eq!(
            out,
            [
                (2, vec![(K::AlarmHigh, false)]),
                (7, vec![(K::AlarmHigh, true)])
            ]
        );
    }

    #[test]
    fn firing_and_recovery_in_one_window_leave_together() {
        let out = run(
            KindSet::all(),
            &[(0, high(false), V::Queued), (1, high(true), V::Queued)],
            10,
        );
        assert_eq!(
            out,
            [(2, vec![(K::AlarmHigh, false), (K::AlarmHigh, true)])]
        );
    }

    #[test]
    fn a_recovery_without_a_sent_firing_is_not_sent() {
        let only_high: KindSet = [K::AlarmHigh].into_iter().collect();
        let out = run(
            only_high,
            &[
                (
                    0,
                    Alert::sensor_recovered(20.0, Units::C, s(60)),
                    V::Filtered,
                ),
                (1, high(true), V::Unmatched),
            ],
            10,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn flapping_is_deferred_to_the_repeat_interval_and_cancelled_by_its_recovery() {
        let out = run(
            KindSet::all(),
            &[
                (0, high(false), V::Queued),
                (60, high(true), V::Queued),
                // Fires again soon after: held.
                (120, high(false), V::Deferred),
                // Recovers before its time: both dropped.
                (180, high(true), V::Cancelled),
                // Fires again and stays: goes out when the hour is up.
                (240, high(false), V::Deferred),
                (300, high(false), V::Deferred),
            ],
            3700,
        );
        assert_eq!(
            out,
            [
                (2, vec![(K::AlarmHigh, false)]),
                (62, vec![(K::AlarmHigh, true)]),
                (3602, vec![(K::AlarmHigh, false)]),
            ]
        );
    }

    #[test]
    fn after_a_deferred_firing_goes_out_its_recovery_does_too() {
        let out = run(
            KindSet::all(),
            &[
                (0, high(false), V::Queued),
                (10, high(true), V::Queued),
                (20, high(false), V::Deferred),
                (3650, high(true), V::Queued),
            ],
            3700,
        );
        let kinds: Vec<_> = out.iter().map(|(t, b)| (*t, b[0].1)).collect();
        assert_eq!(kinds, [(2, false), (12, true), (3602, false), (3652, true)]);
    }

    #[test]
    fn deferred_firings_due_together_leave_in_due_order() {
        let t0 = Instant::now();
        let low = |rec| Alert::alarm_low(5.0, 6.0, Units::C, rec);
        let mut gate = Gate::new(REPEAT, WINDOW, KindSet::all());
        // alarm_low is remembered first but falls due last.
        assert_eq!(gate.offer(low(true), t0), V::Unmatched);
        assert_eq!(gate.offer(high(false), t0), V::Queued);
        assert_eq!(gate.offer(low(false), t0 + s(10)), V::Queued);
        assert_eq!(gate.offer(high(true), t0 + s(11)), V::Queued);
        assert_eq!(gate.offer(low(true), t0 + s(12)), V::Queued);
        assert_eq!(gate.take_batch(t0 + s(20)).map(|b| b.len()), Some(4));
        assert_eq!(gate.offer(low(false), t0 + s(20)), V::Deferred);
        assert_eq!(gate.offer(high(false), t0 + s(21)), V::Deferred);
        assert_eq!(gate.next_due(), Some(t0 + REPEAT));
        let b = gate.take_batch(t0 + s(3700)).unwrap();
        let kinds: Vec<_> = b.iter().map(|a| (a.kind, a.recovered)).collect();
        assert_eq!(kinds, [(K::AlarmHigh, false), (K::AlarmLow, false)]);
    }

    #[test]
    fn conditions_are_per_kind_and_per_plug() {
        let out = run(
            KindSet::all(),
            &[
                (0, plug(Role::Heater, false), V::Queued),
                (0, plug(Role::Cooler, false), V::Queued),
                (0, high(false), V::Queued),
                (1, plug(Role::Heater, false), V::Suppressed),
                (1, Alert::new(K::AlarmLow, "low"), V::Queued),
                (30, plug(Role::Cooler, true), V::Queued),
                (31, plug(Role::Heater, false), V::Suppressed),
            ],
            40,
        );
        assert_eq!(
            out,
            [
                (
                    2,
                    vec![
                        (K::PlugFailing, false),
                        (K::PlugFailing, false),
                        (K::AlarmHigh, false),
                        (K::AlarmLow, false)
                    ]
                ),
                (32, vec![(K::PlugRecovered, true)]),
            ]
        );
    }

    #[test]
    fn the_filter_keeps_a_recovery_with_its_condition() {
        let stale_only: KindSet = [K::SensorStale].into_iter().collect();
        let out = run(
            stale_only,
            &[
                (0, Alert::sensor_stale(s(60), "crc"), V::Queued),
                (0, high(false), V::Filtered),
                (0, Alert::service_started("heat"), V::Filtered),
                (0, Alert::test(), V::Queued),
                (9, Alert::sensor_recovered(20.0, Units::C, s(70)), V::Queued),
            ],
            20,
        );
        assert_eq!(
            out,
            [
                (2, vec![(K::SensorStale, false), (K::Test, false)]),
                (11, vec![(K::SensorRecovered, true)]),
            ]
        );
    }

    #[test]
    fn test_alerts_are_never_suppressed() {
        let out = run(
            KindSet::empty(),
            &[(0, Alert::test(), V::Queued), (1, Alert::test(), V::Queued)],
            5,
        );
        assert_eq!(out, [(2, vec![(K::Test, false), (K::Test, false)])]);
    }

    #[test]
    fn a_big_burst_is_split_into_batches_of_max_batch_without_waiting_again() {
        let t0 = Instant::now();
        let mut gate = Gate::new(REPEAT, WINDOW, KindSet::all());
        for _ in 0..(MAX_BATCH + 5) {
            assert_eq!(gate.offer(Alert::test(), t0), V::Queued);
        }
        assert_eq!(gate.take_batch(t0 + s(1)), None);
        assert_eq!(gate.next_due(), Some(t0 + WINDOW));
        assert_eq!(gate.take_batch(t0 + s(2)).map(|b| b.len()), Some(MAX_BATCH));
        assert_eq!(gate.take_batch(t0 + s(2)).map(|b| b.len()), Some(5));
        assert_eq!(gate.take_batch(t0 + s(2)), None);
        assert_eq!(gate.next_due(), None);
    }

    #[test]
    fn take_now_ignores_the_window_but_not_the_repeat_interval() {
        let t0 = Instant::now();
        let mut gate = Gate::new(REPEAT, WINDOW, KindSet::all());
        gate.offer(high(false), t0);
        gate.offer(high(true), t0);
        assert_eq!(gate.take_batch(t0 + s(2)).map(|b| b.len()), Some(2));
        assert_eq!(gate.offer(high(false), t0 + s(3)), V::Deferred);
        assert_eq!(
            gate.offer(Alert::service_stopping("SIGTERM"), t0 + s(3)),
            V::Queued
        );
        assert_eq!(gate.take_batch(t0 + s(3)), None, "the window is still open");
        let b = gate.take_now(t0 + s(3)).unwrap();
        assert_eq!(
            b.iter().map(|a| a.kind).collect::<Vec<_>>(),
            [K::ServiceStopping]
        );
        assert_eq!(gate.take_now(t0 + s(3)), None);
        assert_eq!(
            gate.next_due(),
            Some(t0 + REPEAT),
            "the deferred firing still waits"
        );
    }
}
