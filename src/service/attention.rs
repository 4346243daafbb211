//! Turning what the controller notices into alerts for a person (the
//! `alerts` hook): alarms, a stale sensor, a plug failing for N cycles in a
//! row, a plug without a dead-man, and the service's start and stop.
//!
//! Active conditions (an alarm, a stale sensor) are re-reported every cycle:
//! the alerter's gate suppresses repeats within `repeat_s` and turns a
//! condition that lasts into a reminder after it. Nothing here blocks the
//! control thread: [`Alerter::send`] only queues.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::alerts::{Alert, AlertSettings, Alerter};
use crate::control::{Alarm, Notice, Snapshot};
use crate::msg::Role;
use crate::units::Units;

/// The alerts side of the control loop.
pub(super) struct Attention {
    alerter: Alerter,
    units: Units,
    alarm_low_c: Option<f64>,
    alarm_high_c: Option<f64>,
    failing_after: u32,
    addresses: BTreeMap<Role, String>,
    stale_since: Option<Instant>,
    stale_detail: String,
}

impl Attention {
    /// Starts the alerts thread; `host` labels every alert (the host name,
    /// `HOST/NAME` for an instance).
    pub fn start(
        settings: AlertSettings,
        host: String,
        units: Units,
        alarms: (Option<f64>, Option<f64>),
        addresses: BTreeMap<Role, String>,
    ) -> std::io::Result<Attention> {
        let failing_after = settings.plug_failing_cycles();
        let alerter = Alerter::spawn(settings, host)?;
        Ok(Attention {
            alerter,
            units,
            alarm_low_c: alarms.0,
            alarm_high_c: alarms.1,
            failing_after,
            addresses,
            stale_since: None,
            stale_detail: String::new(),
        })
    }

    fn host(&self, role: Role) -> &str {
        self.addresses.get(&role).map(String::as_str).unwrap_or("")
    }

    /// The web page could not listen.
    pub(crate) fn web_unavailable(&self, detail: &str) {
        self.alerter.send(crate::alerts::Alert::new(
            crate::alerts::AlertKind::WebUnavailable,
            format!("the web page is not available: {detail}"),
        ));
    }

    /// The service runs.
    pub(crate) fn started(&self, detail: &str) {
        self.alerter.send(Alert::service_started(detail));
    }

    /// What the controller noticed.
    pub(crate) fn notices(&mut self, notices: &[Notice], now: Instant) {
        for n in notices {
            let alert = match n {
                Notice::Alarm {
                    alarm,
                    entered,
                    celsius,
                    ..
                } => self.alarm(*alarm, *celsius, !*entered),
                Notice::SensorStale { message } => {
                    self.stale_since.get_or_insert(now);
                    self.stale_detail = message.clone();
                    None
                }
                Notice::SensorRecovered { celsius } => {
                    let stale_for = self
                        .stale_since
                        .take()
                        .map(|s| now.saturating_duration_since(s))
                        .unwrap_or_default();
                    Some(Alert::sensor_recovered(*celsius, self.units, stale_for))
                }
                Notice::PlugFailed {
                    role,
                    consecutive,
                    error,
                } if *consecutive >= self.failing_after => Some(Alert::plug_failing(
                    *role,
                    self.host(*role),
                    *consecutive,
                    error,
                )),
                Notice::PlugFailed { .. } => None,
                Notice::PlugRecovered { role, after } if *after >= self.failing_after => {
                    Some(Alert::plug_recovered(*role, self.host(*role), *after))
                }
                Notice::PlugRecovered { .. } => None,
                Notice::DeadmanUnsupported { role, message } => {
                    Some(Alert::deadman_unsupported(*role, self.host(*role), message))
                }
                Notice::ChamberStale { message } => {
                    Some(Alert::chamber_sensor_stale(message, None))
                }
                Notice::ChamberRecovered { celsius } => Some(Alert::chamber_sensor_stale(
                    "",
                    Some((*celsius, self.units)),
                )),
            };
            if let Some(a) = alert {
                self.alerter.send(a);
            }
        }
    }

    fn alarm(&self, alarm: Alarm, celsius: f64, recovered: bool) -> Option<Alert> {
        match alarm {
            Alarm::High => self
                .alarm_high_c
                .map(|limit| Alert::alarm_high(celsius, limit, self.units, recovered)),
            Alarm::Low => self
                .alarm_low_c
                .map(|limit| Alert::alarm_low(celsius, limit, self.units, recovered)),
        }
    }

    /// After each cycle: conditions still active are reported again.
    pub(crate) fn cycle(&mut self, snap: &Snapshot, now: Instant) {
        if let (Some(alarm), Some(t)) = (snap.alarm, snap.temperature_c) {
            if let Some(a) = self.alarm(alarm, t, false) {
                self.alerter.send(a);
            }
        }
        if snap.sensor_stale {
            let since = *self.stale_since.get_or_insert(now);
            let stale_for = snap
                .reading_age
                .unwrap_or_else(|| now.saturating_duration_since(since));
            let detail = snap
                .sensor_fault
                .clone()
                .unwrap_or_else(|| self.stale_detail.clone());
            self.alerter.send(Alert::sensor_stale(stale_for, &detail));
        }
    }

    /// Shutdown begins.
    pub(crate) fn stopping(&self, detail: &str) {
        self.alerter.send(Alert::service_stopping(detail));
    }

    /// A plug whose shutdown state could not be verified.
    pub(crate) fn unverified(&self, role: Role, detail: &str) {
        self.alerter
            .send(Alert::shutdown_unverified(role, self.host(role), detail));
    }

    /// Delivers what is queued by `deadline`, then ends the alerts thread.
    pub fn finish(self, deadline: Instant) {
        self.alerter.finish(deadline);
    }
}

/// How long shutdown gives the alerts hook for the last events.
pub(super) const FINISH_WAIT: Duration = Duration::from_secs(3);
