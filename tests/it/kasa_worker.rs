//! The plug worker (DESIGN §4) against simulated plugs: every fault with its
//! outcome and attempt count, latest-wins queueing, supersede during retries,
//! strip outlets, the dead-man rule, and one check of the real 0/1/2 s schedule.

mod util;

use std::time::Duration;

use kasa_thermostat::config::PlugTiming;
use kasa_thermostat::kasa::{Fault, Model, Outlet, PlugCommand, SimOptions, SimPlug};
use util::kasa::{fast_timing, next_outcome, refused_port, sim, wait_for, worker};

fn set(on: bool) -> PlugCommand {
    PlugCommand::Set { on }
}

#[test]
fn set_verifies_in_one_attempt() {
    let plug = sim(Model::Hs100, None);
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!(o.command, set(true));
    assert_eq!(o.result, Ok(Some(true)));
    assert_eq!(o.attempts, 1);
    assert!(plug.state().relay());
    h.send(PlugCommand::Read);
    assert_eq!(next_outcome(&rx).result, Ok(Some(true)));
    // pre-read, set, read-back, then the read.
    assert_eq!(plug.state().requests(), 4);
}

/// Faults that fail every attempt: 3 attempts, an error naming host:port and the cause.
#[test]
fn persistent_faults_fail_after_three_attempts() {
    let cases = [
        (Fault::Blackhole, "timed out"),
        (Fault::Slow(Duration::from_millis(600)), "timed out"),
        (Fault::Drop, "mid-frame"),
        (Fault::Garbage, "not JSON"),
        (Fault::Err, "err_code -1"),
        (Fault::Stuck, "asked for on but the plug reads off"),
        (
            Fault::Lag(Duration::from_secs(5)),
            "asked for on but the plug reads off",
        ),
        (Fault::Flaky(5), "closed the connection without answering"),
    ];
    for (fault, want) in cases {
        let plug = sim(Model::Hs100, Some(fault.clone()));
        let (h, rx) = worker(plug.addr(), None, fast_timing());
        h.send(set(true));
        let o = next_outcome(&rx);
        assert_eq!(o.attempts, 3, "{fault:?}");
        let err = o.result.expect_err("must fail").last_error;
        assert!(err.contains(want), "{fault:?}: {err}");
        assert!(err.contains(&plug.addr().to_string()), "{fault:?}: {err}");
        if matches!(fault, Fault::Stuck | Fault::Lag(_)) {
            assert_eq!(plug.state().set_requests().len(), 3, "{fault:?}");
        }
    }
}

#[test]
fn transient_faults_recover() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((o.result, o.attempts), (Ok(Some(true)), 3));

    let plug = sim(Model::Hs100, Some(Fault::Slow(Duration::from_millis(5))));
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    assert_eq!(next_outcome(&rx).attempts, 1);

    // A relay slower than the spacing fails the read-back; a spacing longer
    // than the lag is what the pause is for.
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(20))));
    let mut timing = fast_timing();
    timing.spacing_s = 0.1;
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((o.result, o.attempts), (Ok(Some(true)), 1));
}

#[test]
fn refused_and_klap() {
    let (_guard, addr) = refused_port();
    let (h, rx) = worker(addr, None, fast_timing());
    h.send(PlugCommand::Read);
    let o = next_outcome(&rx);
    assert_eq!(o.attempts, 3);
    assert!(o
        .result
        .unwrap_err()
        .last_error
        .contains("connection refused"));

    let klap = SimPlug::start(SimOptions {
        klap_only: true,
        ..SimOptions::default()
    })
    .unwrap();
    let (h, rx) = worker(klap.addr(), None, fast_timing());
    h.send(set(false));
    let err = next_outcome(&rx).result.unwrap_err().last_error;
    assert!(
        err.contains("KLAP") && err.contains("Third-Party Compatibility"),
        "{err}"
    );
}

#[test]
fn queued_commands_coalesce_latest_wins() {
    let plug = sim(Model::Hs100, Some(Fault::Blackhole));
    let mut timing = fast_timing();
    timing.retry_sleeps_s = vec![0.0];
    timing.before_s = 0.3;
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    // The Set is now stuck in its pre-read on the blackhole; these pile up behind it.
    assert!(wait_for(Duration::from_secs(5), || plug.state().requests() == 1));
    h.send(PlugCommand::Read);
    h.send(PlugCommand::ArmDeadman {
        delay: Duration::from_secs(60),
    });
    h.send(PlugCommand::Read);
    h.send(PlugCommand::ClearDeadman);
    plug.set_fault(None);
    let first = next_outcome(&rx);
    assert_eq!((first.command, first.attempts), (set(true), 1));
    assert!(first.result.is_err());
    let second = next_outcome(&rx);
    assert_eq!(
        (second.command, second.result),
        (PlugCommand::Read, Ok(Some(false)))
    );
    let third = next_outcome(&rx);
    assert_eq!(
        (third.command, third.result),
        (PlugCommand::ClearDeadman, Ok(None))
    );
    drop(h);
    assert_eq!(
        rx.try_iter().count(),
        0,
        "two Reads and two dead-man ops coalesced"
    );
    assert!(
        plug.state().countdown_rules(None).is_empty(),
        "the Arm was replaced"
    );
}

#[test]
fn newer_set_supersedes_one_in_its_retries() {
    let plug = sim(Model::Hs100, Some(Fault::Stuck));
    let mut timing = fast_timing();
    timing.retry_sleeps_s = vec![0.0, 5.0, 5.0];
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let st = plug.state();
    // Once the first switch was sent (and will not verify), ask for off.
    assert!(wait_for(Duration::from_secs(5), || st.set_requests().len() == 1));
    plug.set_fault(None);
    h.send(set(false));
    let o = next_outcome(&rx);
    assert_eq!(o.command, set(false), "the superseded Set reports nothing");
    assert_eq!((o.result, o.attempts), (Ok(Some(false)), 1));
    assert_eq!(st.set_requests().len(), 2, "no retry of the superseded Set");
    drop(h);
    assert_eq!(rx.try_iter().count(), 0);
}

#[test]
fn drop_stops_a_worker_in_its_retry_sleep() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(100)));
    let mut timing = fast_timing();
    timing.retry_sleeps_s = vec![0.0, 30.0, 30.0];
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    assert!(wait_for(Duration::from_secs(5), || plug.state().requests() == 1));
    let started = std::time::Instant::now();
    drop(h);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop waited for the sleep"
    );
    assert_eq!(rx.try_iter().count(), 0);
}

#[test]
fn strip_outlets_by_index_and_id() {
    let plug = sim(Model::Hs300, None);
    let st = plug.state();
    let (h, rx) = worker(plug.addr(), Some(Outlet::Index(3)), fast_timing());
    h.send(set(true));
    assert_eq!(next_outcome(&rx).result, Ok(Some(true)));
    assert!(st.outlet(3));
    assert!((0..6).filter(|&i| i != 3).all(|i| !st.outlet(i)));

    let (h2, rx2) = worker(plug.addr(), Some(Outlet::Id("05".into())), fast_timing());
    h2.send(set(true));
    assert_eq!(next_outcome(&rx2).result, Ok(Some(true)));
    assert!(st.outlet(5));
    st.set_outlet(5, false);
    h2.send(PlugCommand::Read);
    assert_eq!(next_outcome(&rx2).result, Ok(Some(false)));

    let (h3, rx3) = worker(plug.addr(), Some(Outlet::Index(6)), fast_timing());
    h3.send(set(true));
    let o = next_outcome(&rx3);
    let err = o.result.unwrap_err().last_error;
    assert!(err.contains("#6 not found"), "{err}");
    drop((h, h2, h3));
}

#[test]
fn deadman_rule_switches_the_plug_off() {
    for (model, outlet, idx) in [
        (Model::Hs100, None, None),
        (Model::Hs300, Some(Outlet::Index(2)), Some(2)),
    ] {
        let plug = sim(model, None);
        let st = plug.state();
        let (h, rx) = worker(plug.addr(), outlet, fast_timing());
        h.send(set(true));
        assert_eq!(next_outcome(&rx).result, Ok(Some(true)));
        // Arming twice leaves one rule (delete_all_rules first).
        h.send(PlugCommand::ArmDeadman {
            delay: Duration::from_secs(30),
        });
        assert_eq!(next_outcome(&rx).result, Ok(None));
        h.send(PlugCommand::ArmDeadman {
            delay: Duration::from_millis(200),
        });
        assert_eq!(next_outcome(&rx).result, Ok(None));
        let rules = st.countdown_rules(idx);
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0]["delay"], 1, "rounded up to whole seconds");
        assert_eq!(rules[0]["act"], 0);
        assert_eq!(rules[0]["name"], "kasa-thermostat deadman");
        let on = |st: &kasa_thermostat::kasa::SimState| st.outlet(idx.unwrap_or(0));
        assert!(wait_for(Duration::from_secs(3), || !on(&st)), "{model:?}");
        h.send(PlugCommand::ClearDeadman);
        assert_eq!(next_outcome(&rx).result, Ok(None));
        assert!(st.countdown_rules(idx).is_empty());
    }
}

/// The one test with the real retry sleeps: 0 s, 1 s, 2 s before attempts 1, 2, 3.
#[test]
fn real_retry_schedule() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let timing = PlugTiming {
        retry_sleeps_s: vec![0.0, 1.0, 2.0],
        ..PlugTiming::default().scaled(0.05)
    };
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((o.result, o.attempts), (Ok(Some(true)), 3));
    let t = plug.state().request_times();
    assert_eq!(
        t.len(),
        5,
        "2 failed pre-reads, then pre-read, set, read-back"
    );
    let gap1 = t[1].duration_since(t[0]).as_secs_f64();
    let gap2 = t[2].duration_since(t[1]).as_secs_f64();
    assert!((1.0..1.6).contains(&gap1), "sleep before attempt 2: {gap1}");
    assert!((2.0..2.6).contains(&gap2), "sleep before attempt 3: {gap2}");
    drop(h);
}
