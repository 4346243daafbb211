//! How much per-GPIO-call latency the 1-wire read tolerates (the margin a
//! Pi's userspace GPIO has to fit in), measured on the virtual bus.

use std::time::Duration;

use kasa_thermostat::sensor::virtual_bus::{
    full_read_works_with_latency, max_tolerated_latency, DEVICE_HOLD_US,
};

#[test]
fn reads_work_with_small_latency_and_fail_with_large() {
    assert!(full_read_works_with_latency(Duration::ZERO));
    assert!(full_read_works_with_latency(Duration::from_micros(2)));
    assert!(!full_read_works_with_latency(Duration::from_micros(20)));
}

#[test]
fn tolerance_matches_the_read_slot_budget() {
    // A read slot samples 15 µs plus two pin calls after its falling edge and
    // must do so while the device still holds its 0 (DEVICE_HOLD_US): the
    // budget is (30 - 15) / 2 = 7.5 µs per call.
    let max = max_tolerated_latency(Duration::from_nanos(250), Duration::from_micros(30))
        .expect("zero latency works");
    let budget = Duration::from_nanos((DEVICE_HOLD_US * 1000 - 15_000) / 2);
    assert!(max < budget, "{max:?} vs {budget:?}");
    assert!(
        max + Duration::from_micros(1) >= budget,
        "{max:?} vs {budget:?}"
    );
}
