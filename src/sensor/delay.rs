//! Delays for bit-banged 1-wire: microseconds busy-wait, milliseconds sleep.
//!
//! A 1-wire slot is 60–120 µs and the master must sample within 15 µs of its
//! falling edge; `thread::sleep` overshoots by 50 µs or more, so microsecond
//! delays spin on `Instant`. The conversion wait (up to 750 ms) sleeps: it has
//! no tight bound and spinning would burn a core.

use std::time::{Duration, Instant};

use embedded_hal::blocking::delay::{DelayMs, DelayUs};

/// `DelayUs` spins, `DelayMs` sleeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpinDelay;

impl SpinDelay {
    /// Busy-waits `d`.
    pub(crate) fn spin(d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
    }
}

impl DelayUs<u16> for SpinDelay {
    fn delay_us(&mut self, us: u16) {
        SpinDelay::spin(Duration::from_micros(u64::from(us)));
    }
}

impl DelayUs<u32> for SpinDelay {
    fn delay_us(&mut self, us: u32) {
        SpinDelay::spin(Duration::from_micros(u64::from(us)));
    }
}

impl DelayMs<u16> for SpinDelay {
    fn delay_ms(&mut self, ms: u16) {
        std::thread::sleep(Duration::from_millis(u64::from(ms)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_waits_at_least_the_asked_time() {
        let mut d = SpinDelay;
        let t = Instant::now();
        DelayUs::<u16>::delay_us(&mut d, 500);
        assert!(t.elapsed() >= Duration::from_micros(500));
        let t = Instant::now();
        DelayMs::<u16>::delay_ms(&mut d, 2);
        assert!(t.elapsed() >= Duration::from_millis(2));
    }
}
