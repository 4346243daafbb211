//! Fault classification shared by every backend (docs/design.md §8): turns a
//! [`RawReading`] into a [`Reading`] or says why it is not believable.
//!
//! Two DS18B20 values are ambiguous: 85.000 °C (the power-on scratchpad) and
//! -0.0625 °C (FF FF, what a sensor with a lost ground returns). Both are real
//! temperatures too, so they are rejected only when they appear out of nowhere
//! (a first reading, or a jump of more than [`SUSPECT_STEP_C`] from the last
//! accepted reading) and accepted when the temperature got there gradually.
//! The scratchpad's byte 6 (0x0C after a power-on, 0x10 after a conversion)
//! is deliberately not trusted for 85 °C: a first reading of exactly 85.000
//! is refused whatever the bytes say, because believing one would switch the
//! cooler on (or the heater off) on a sensor that has only reset.
//!
//! A spike (a step larger than `max_step`) is rejected, but if the new level
//! holds for [`REBASELINE_READINGS`] consecutive consistent readings it is
//! accepted as real: otherwise a genuine jump (sensor moved, a long outage)
//! would lock the service out of readings for ever.

use std::time::Instant;

use super::backend::RawReading;
use crate::msg::{Reading, SensorFault};

/// Largest step to or from a suspect value (85 °C power-on, -0.0625 °C lost
/// ground) that is still believed, °C.
pub(crate) const SUSPECT_STEP_C: f64 = 1.0;

/// Consecutive readings that agree with each other (within `max_step`) after
/// which a level that first looked like a spike is accepted.
pub(crate) const REBASELINE_READINGS: u32 = 3;

/// The DS18B20's measuring range, °C.
pub(crate) const RANGE_C: (f64, f64) = (-55.0, 125.0);

const POWER_ON_C: f64 = 85.0;
const LOST_GROUND_C: f64 = -0.0625;

/// Judges readings in sequence; one per sensor.
#[derive(Debug, Clone)]
pub struct Classifier {
    offset_c: f64,
    max_step_c: f64,
    /// Last accepted temperature, °C, before the offset.
    last: Option<f64>,
    /// A level that differs from `last` by more than `max_step`, with how
    /// many consecutive readings have agreed with it.
    candidate: Option<(f64, u32)>,
}

impl Classifier {
    /// A classifier adding `offset_c` to every reading and rejecting steps
    /// larger than `max_step_c` (0 or less disables the spike check).
    pub fn new(offset_c: f64, max_step_c: f64) -> Classifier {
        Classifier {
            offset_c,
            max_step_c,
            last: None,
            candidate: None,
        }
    }

    #[cfg(test)]
    /// The last accepted temperature, °C, offset applied.
    pub(crate) fn last_accepted(&self) -> Option<f64> {
        self.last.map(|c| c + self.offset_c)
    }

    /// Accepts or rejects one reading.
    pub fn classify(&mut self, raw: RawReading) -> Result<Reading, SensorFault> {
        let c = raw.celsius;
        let sensor = raw.sensor_id.clone();
        if let Some(sp) = &raw.scratchpad {
            if sp.iter().all(|b| *b == 0) {
                return Err(SensorFault::AllZero { sensor });
            }
            if sp.iter().all(|b| *b == 0xFF) {
                return Err(SensorFault::LostGround { sensor });
            }
        }
        if !c.is_finite() || c < RANGE_C.0 || c > RANGE_C.1 {
            return Err(SensorFault::OutOfRange { sensor, celsius: c });
        }
        let suddenly = |last: Option<f64>| match last {
            None => true,
            Some(prev) => (c - prev).abs() > SUSPECT_STEP_C,
        };
        if self.is_power_on(&raw) && suddenly(self.last) {
            return Err(SensorFault::PowerOnValue { sensor });
        }
        if is_lost_ground(&raw) && suddenly(self.last) {
            return Err(SensorFault::LostGround { sensor });
        }
        if let Some(prev) = self.last {
            if self.max_step_c > 0.0 && (c - prev).abs() > self.max_step_c {
                let agreeing = match self.candidate {
                    Some((level, n)) if (c - level).abs() <= self.max_step_c => n + 1,
                    _ => 1,
                };
                if agreeing < REBASELINE_READINGS {
                    self.candidate = Some((c, agreeing));
                    return Err(SensorFault::Spike {
                        sensor,
                        from: prev + self.offset_c,
                        to: c + self.offset_c,
                        max_step: self.max_step_c,
                    });
                }
                log::warn!(
                    "sensor {sensor}: {c:.3} °C held for {agreeing} readings after a jump from \
                     {prev:.3} °C; accepting it as the new level"
                );
            }
        }
        self.last = Some(c);
        self.candidate = None;
        Ok(Reading {
            celsius: c + self.offset_c,
            sensor_id: raw.sensor_id,
            at: Instant::now(),
        })
    }

    /// 85.000 °C is what a DS18B20 holds after a power-on reset, before any
    /// conversion. It is never believed as a first reading or as a jump,
    /// whatever the other scratchpad bytes say: a real kernel shows the
    /// reset bytes, but the rule must not rest on that.
    fn is_power_on(&self, raw: &RawReading) -> bool {
        raw.celsius == POWER_ON_C
    }
}

fn is_lost_ground(raw: &RawReading) -> bool {
    match &raw.scratchpad {
        Some(sp) => sp[0] == 0xFF && sp[1] == 0xFF,
        None => raw.celsius == LOST_GROUND_C,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "28-0316a2797aff";

    fn raw(c: f64) -> RawReading {
        RawReading {
            celsius: c,
            scratchpad: None,
            sensor_id: ID.to_string(),
        }
    }

    fn with_pad(c: f64, pad: [u8; 9]) -> RawReading {
        RawReading {
            celsius: c,
            scratchpad: Some(pad),
            sensor_id: ID.to_string(),
        }
    }

    const POWER_ON_PAD: [u8; 9] = [0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10, 0x1C];
    const REAL_85_PAD: [u8; 9] = [0x50, 0x05, 0x4B, 0x46, 0x7F, 0xFF, 0x10, 0x10, 0];

    fn kind(r: Result<Reading, SensorFault>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(f) => f.kind(),
        }
    }

    #[test]
    fn power_on_value_as_first_reading_is_rejected() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(
            kind(c.classify(with_pad(85.0, POWER_ON_PAD))),
            "power_on_value"
        );
        assert_eq!(kind(c.classify(raw(85.0))), "power_on_value");
        assert_eq!(c.last_accepted(), None);
    }

    #[test]
    fn power_on_value_as_a_jump_is_rejected_even_with_a_huge_max_step() {
        let mut c = Classifier::new(0.0, 100.0);
        assert_eq!(kind(c.classify(raw(20.0))), "ok");
        assert_eq!(
            kind(c.classify(with_pad(85.0, POWER_ON_PAD))),
            "power_on_value"
        );
        // Repeated power-on values never become a new level.
        for _ in 0..5 {
            assert_eq!(kind(c.classify(raw(85.0))), "power_on_value");
        }
        assert_eq!(c.last_accepted(), Some(20.0));
    }

    #[test]
    fn eighty_five_reached_gradually_is_accepted() {
        let mut c = Classifier::new(0.0, 5.0);
        for t in [80.0, 82.0, 84.0, 84.5] {
            assert_eq!(kind(c.classify(raw(t))), "ok");
        }
        assert_eq!(kind(c.classify(with_pad(85.0, POWER_ON_PAD))), "ok");
        assert_eq!(c.last_accepted(), Some(85.0));
    }

    #[test]
    fn eighty_five_is_never_a_first_reading_whatever_the_bytes_say() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(
            kind(c.classify(with_pad(85.0, REAL_85_PAD))),
            "power_on_value"
        );
        // Nor a jump, even with converted-looking bytes.
        assert_eq!(kind(c.classify(raw(20.0))), "ok");
        assert_eq!(
            kind(c.classify(with_pad(85.0, REAL_85_PAD))),
            "power_on_value"
        );
    }

    #[test]
    fn all_zero_scratchpad_is_rejected() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(with_pad(0.0, [0; 9]))), "all_zero");
        // A plain 0.000 °C without scratchpad (simulated) is fine.
        assert_eq!(kind(c.classify(raw(0.0))), "ok");
    }

    #[test]
    fn lost_ground_ff_ff_is_rejected_unless_gradual() {
        let pad = [0xFF, 0xFF, 0x4B, 0x46, 0x7F, 0xFF, 0x01, 0x10, 0x9A];
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(with_pad(-0.0625, pad))), "lost_ground");
        assert_eq!(kind(c.classify(raw(20.0))), "ok");
        assert_eq!(kind(c.classify(with_pad(-0.0625, pad))), "lost_ground");
        assert_eq!(
            kind(c.classify(with_pad(-0.0625, [0xFF; 9]))),
            "lost_ground"
        );
        let mut cold = Classifier::new(0.0, 5.0);
        assert_eq!(kind(cold.classify(raw(0.5))), "ok");
        assert_eq!(kind(cold.classify(with_pad(-0.0625, pad))), "ok");
    }

    #[test]
    fn out_of_range_is_rejected() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(raw(125.5))), "out_of_range");
        assert_eq!(kind(c.classify(raw(-56.0))), "out_of_range");
        assert_eq!(kind(c.classify(raw(f64::NAN))), "out_of_range");
        assert_eq!(kind(c.classify(raw(125.0))), "ok");
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(raw(-55.0))), "ok");
    }

    #[test]
    fn spike_is_rejected_and_a_single_glitch_leaves_the_baseline() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(raw(20.0))), "ok");
        match c.classify(raw(40.0)) {
            Err(SensorFault::Spike {
                from, to, max_step, ..
            }) => {
                assert_eq!((from, to, max_step), (20.0, 40.0, 5.0));
            }
            other => panic!("expected a spike, got {other:?}"),
        }
        assert_eq!(kind(c.classify(raw(20.5))), "ok");
        assert_eq!(kind(c.classify(raw(25.5))), "ok", "exactly within 5 °C");
    }

    #[test]
    fn a_new_level_that_holds_is_accepted_after_three_readings() {
        let mut c = Classifier::new(0.0, 5.0);
        assert_eq!(kind(c.classify(raw(20.0))), "ok");
        assert_eq!(kind(c.classify(raw(40.0))), "spike");
        assert_eq!(kind(c.classify(raw(40.5))), "spike");
        assert_eq!(kind(c.classify(raw(41.0))), "ok");
        assert_eq!(c.last_accepted(), Some(41.0));
    }

    #[test]
    fn offset_is_applied_to_readings_and_spikes() {
        let mut c = Classifier::new(-0.5, 5.0);
        let r = c.classify(raw(20.0)).unwrap();
        assert_eq!(r.celsius, 19.5);
        assert_eq!(r.sensor_id, ID);
        match c.classify(raw(30.0)) {
            Err(SensorFault::Spike { from, to, .. }) => assert_eq!((from, to), (19.5, 29.5)),
            other => panic!("expected a spike, got {other:?}"),
        }
    }
}
