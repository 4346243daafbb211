//! The plug worker (docs/design.md §6) against simulated plugs: every fault with its
//! outcome and attempt count, unknown after an unverified switch, the dead-man
//! armed before a switch-on, latest-wins queueing, supersede during retries,
//! strip outlets, the dead-man rule, and one check of the real 0/1/2 s schedule.

use std::time::{Duration, Instant};

use kasa_thermostat::kasa::{Outlet, Timing};
use kasa_thermostat::msg::{Completion, DeadmanKind, DeadmanReport, PlugCommand, PlugState};
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug, SimState};

use crate::util::kasa::{
    failure, fast_timing, next_outcome, refused_port, result, sim, wait_for, worker,
};

fn set(on: bool) -> PlugCommand {
    PlugCommand::Set { on, deadman: None }
}

const ON: (Completion, Option<PlugState>) = (Completion::Done, Some(PlugState::On));
const OFF: (Completion, Option<PlugState>) = (Completion::Done, Some(PlugState::Off));

#[test]
fn set_verifies_in_one_attempt() {
    let plug = sim(Model::Hs100, None);
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!(o.command, set(true));
    assert_eq!(result(&o), ON);
    assert_eq!(o.attempts, 1);
    assert_eq!(o.deadman, None, "no dead-man asked for, none touched");
    assert!(plug.state().relay());
    h.send(PlugCommand::Read);
    assert_eq!(result(&next_outcome(&rx)), ON);
    // pre-read, set, read-back, then the read.
    assert_eq!(plug.state().requests(), 4);
}

/// Faults that fail every attempt: 3 attempts, an error naming host:port and
/// the cause; a switch that went out and was not verified leaves the state
/// unknown, one that never went out leaves it as read (or not known).
#[test]
fn persistent_faults_fail_after_three_attempts() {
    let cases = [
        (Fault::Blackhole, "timed out", None),
        (Fault::Slow(Duration::from_millis(600)), "timed out", None),
        (Fault::Drop, "mid-frame", None),
        (Fault::Garbage, "not JSON", None),
        (
            Fault::Stuck,
            "asked for on but the plug reads off",
            Some(PlugState::Unknown),
        ),
        (
            Fault::Lag(Duration::from_secs(5)),
            "asked for on but the plug reads off",
            Some(PlugState::Unknown),
        ),
        (
            Fault::Flaky(5),
            "closed the connection without answering",
            None,
        ),
    ];
    for (fault, want, state) in cases {
        let plug = sim(Model::Hs100, Some(fault.clone()));
        let (h, rx) = worker(plug.addr(), None, fast_timing());
        h.send(set(true));
        let o = next_outcome(&rx);
        assert_eq!(o.attempts, 3, "{fault:?}");
        let err = failure(&o);
        assert!(err.contains(want), "{fault:?}: {err}");
        assert!(err.contains(&plug.addr().to_string()), "{fault:?}: {err}");
        assert_eq!(o.state, state, "{fault:?}");
        if matches!(fault, Fault::Stuck | Fault::Lag(_)) {
            assert_eq!(plug.state().set_requests().len(), 3, "{fault:?}");
        }
        drop(h);
    }
}

/// `err_code -1` ("module not support") to every request is a definite
/// answer, not a flaky network: the command fails at the first attempt.
#[test]
fn an_unsupported_request_is_not_retried() {
    let plug = sim(Model::Hs100, Some(Fault::Err));
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!(o.attempts, 1);
    let f = o.failure().expect("must fail");
    assert!(f.permanent, "{f:?}");
    assert!(f.message.contains("err_code -1"), "{}", f.message);
    assert_eq!(o.state, None, "nothing was switched");
    assert_eq!(plug.state().requests(), 1);
}

#[test]
fn transient_faults_recover() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((result(&o), o.attempts), (ON, 3));

    let plug = sim(Model::Hs100, Some(Fault::Slow(Duration::from_millis(5))));
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    assert_eq!(next_outcome(&rx).attempts, 1);

    // A relay slower than the spacing fails the read-back; a spacing longer
    // than the lag is what the pause is for.
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(20))));
    let mut timing = fast_timing();
    timing.spacing = Duration::from_millis(100);
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((result(&o), o.attempts), (ON, 1));
}

#[test]
fn refused_and_klap() {
    let (_guard, addr) = refused_port();
    let (h, rx) = worker(addr, None, fast_timing());
    h.send(PlugCommand::Read);
    let o = next_outcome(&rx);
    assert_eq!(o.attempts, 3);
    assert!(failure(&o).contains("connection refused"), "{o:?}");
    assert_eq!(o.state, None);
    drop(h);

    let klap = SimPlug::start(SimOptions {
        klap_only: true,
        ..SimOptions::default()
    })
    .unwrap();
    let (h, rx) = worker(klap.addr(), None, fast_timing());
    h.send(set(false));
    let o = next_outcome(&rx);
    let err = failure(&o);
    assert!(
        err.contains("KLAP") && err.contains("Third-Party Compatibility"),
        "{err}"
    );
    assert_eq!(o.attempts, 1, "another protocol is not retried");
}

#[test]
fn queued_commands_coalesce_latest_wins() {
    let plug = sim(Model::Hs100, Some(Fault::Blackhole));
    let mut timing = fast_timing();
    timing.retry_sleeps = vec![Duration::ZERO];
    timing.before = Duration::from_millis(300);
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
    assert_eq!((first.command.clone(), first.attempts), (set(true), 1));
    assert!(first.failure().is_some(), "{first:?}");
    assert_eq!(first.state, None, "the switch never went out");
    let second = next_outcome(&rx);
    assert_eq!(
        (second.command.clone(), result(&second)),
        (PlugCommand::Read, OFF)
    );
    let third = next_outcome(&rx);
    assert_eq!(
        (third.command.clone(), result(&third)),
        (PlugCommand::ClearDeadman, (Completion::Done, None))
    );
    assert_eq!(third.deadman, Some(DeadmanReport::Cleared));
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
    timing.retry_sleeps = vec![
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_secs(5),
    ];
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let st = plug.state();
    // Once the first switch was sent (and will not verify), ask for off.
    assert!(wait_for(Duration::from_secs(5), || st.set_requests().len() == 1));
    plug.set_fault(None);
    h.send(set(false));
    // The superseded Set reports that it was, and that its switch went out
    // unverified: unknown, not off.
    let o = next_outcome(&rx);
    assert_eq!(o.command, set(true));
    assert_eq!(
        result(&o),
        (Completion::Superseded, Some(PlugState::Unknown))
    );
    let o = next_outcome(&rx);
    assert_eq!(o.command, set(false));
    assert_eq!((result(&o), o.attempts), (OFF, 1));
    assert_eq!(st.set_requests().len(), 2, "no retry of the superseded Set");
    drop(h);
    assert_eq!(rx.try_iter().count(), 0);
}

#[test]
fn drop_stops_a_worker_in_its_retry_sleep() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(100)));
    let mut timing = fast_timing();
    timing.retry_sleeps = vec![
        Duration::ZERO,
        Duration::from_secs(30),
        Duration::from_secs(30),
    ];
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    assert!(wait_for(Duration::from_secs(5), || plug.state().requests() == 1));
    let started = Instant::now();
    drop(h);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drop waited for the sleep"
    );
    assert_eq!(rx.try_iter().count(), 0);
}

/// A command sent with a deadline (shutdown) ends by it, even against a
/// plug that never answers and with retry sleeps far beyond it.
#[test]
fn a_command_with_a_deadline_ends_by_it() {
    let plug = sim(Model::Hs100, Some(Fault::Blackhole));
    let mut timing = fast_timing();
    timing.before = Duration::from_secs(2);
    timing.retry_sleeps = vec![
        Duration::ZERO,
        Duration::from_secs(5),
        Duration::from_secs(5),
    ];
    let (h, rx) = worker(plug.addr(), None, timing);
    let start = Instant::now();
    h.send_by(set(false), start + Duration::from_millis(300));
    let o = next_outcome(&rx);
    let took = start.elapsed();
    assert!(took < Duration::from_millis(800), "{took:?}");
    assert!(o.failure().is_some(), "{o:?}");
}

#[test]
fn strip_outlets_by_index_and_id() {
    let plug = sim(Model::Hs300, None);
    let st = plug.state();
    let (h, rx) = worker(plug.addr(), Some(Outlet::Index(3)), fast_timing());
    h.send(set(true));
    assert_eq!(result(&next_outcome(&rx)), ON);
    assert!(st.outlet(3));
    assert!((0..6).filter(|&i| i != 3).all(|i| !st.outlet(i)));

    let (h2, rx2) = worker(plug.addr(), Some(Outlet::Id("05".into())), fast_timing());
    h2.send(set(true));
    assert_eq!(result(&next_outcome(&rx2)), ON);
    assert!(st.outlet(5));
    st.set_outlet(5, false);
    h2.send(PlugCommand::Read);
    assert_eq!(result(&next_outcome(&rx2)), OFF);

    let (h3, rx3) = worker(plug.addr(), Some(Outlet::Index(6)), fast_timing());
    h3.send(set(true));
    let o = next_outcome(&rx3);
    let err = failure(&o);
    assert!(err.contains("#6 not found"), "{err}");
    assert_eq!(o.attempts, 1, "a missing outlet is not retried");
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
        assert_eq!(result(&next_outcome(&rx)), ON);
        // Arming twice leaves one rule (delete_all_rules first).
        h.send(PlugCommand::ArmDeadman {
            delay: Duration::from_secs(30),
        });
        assert_eq!(result(&next_outcome(&rx)), (Completion::Done, None));
        h.send(PlugCommand::ArmDeadman {
            delay: Duration::from_millis(200),
        });
        let o = next_outcome(&rx);
        assert_eq!(result(&o), (Completion::Done, None));
        assert_eq!(
            o.deadman,
            Some(DeadmanReport::Armed(DeadmanKind::Countdown { secs: 1 }))
        );
        let rules = st.countdown_rules(idx);
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(rules[0]["delay"], 1, "rounded up to whole seconds");
        assert_eq!(rules[0]["act"], 0);
        assert_eq!(rules[0]["name"], "kasa-thermostat deadman");
        let on = |st: &SimState| st.outlet(idx.unwrap_or(0));
        assert!(wait_for(Duration::from_secs(3), || !on(&st)), "{model:?}");
        h.send(PlugCommand::ClearDeadman);
        assert_eq!(result(&next_outcome(&rx)), (Completion::Done, None));
        assert!(st.countdown_rules(idx).is_empty());
    }
}

/// A switch-on of a plug with a dead-man puts the rule on the plug before
/// the switch request; a verified switch-off removes it.
#[test]
fn set_on_arms_the_deadman_first_and_off_clears_it() {
    let plug = sim(Model::Hs100, None);
    let st = plug.state();
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    let deadman = Some(Duration::from_secs(30));
    h.send(PlugCommand::on(deadman));
    let o = next_outcome(&rx);
    assert_eq!(result(&o), ON);
    assert_eq!(
        o.deadman,
        Some(DeadmanReport::Armed(DeadmanKind::Countdown { secs: 30 }))
    );
    assert_eq!(st.countdown_rules(None).len(), 1);
    // pre-read, delete_all_rules, add_rule, then the switch: three requests
    // reached the plug before the switch did.
    let set_at = st.set_requests()[0];
    let before = st.request_times().iter().filter(|t| **t < set_at).count();
    assert_eq!(before, 3, "the dead-man is armed before the relay closes");

    h.send(PlugCommand::off(deadman));
    let o = next_outcome(&rx);
    assert_eq!(result(&o), OFF);
    assert_eq!(o.deadman, Some(DeadmanReport::Cleared));
    assert!(st.countdown_rules(None).is_empty());
}

/// The safety case of "unknown is not off": the plug acknowledges the
/// switch-on but its relay closes only after every read-back has given up.
/// The outcome says unknown, and the dead-man that was armed before the
/// switch opens the relay again.
#[test]
fn an_unverified_on_is_unknown_and_bounded_by_the_deadman() {
    let plug = sim(Model::Hs100, Some(Fault::Lag(Duration::from_millis(150))));
    let st = plug.state();
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(PlugCommand::on(Some(Duration::from_secs(1))));
    let o = next_outcome(&rx);
    assert_eq!(o.attempts, 3);
    assert_eq!(o.state, Some(PlugState::Unknown), "{o:?}");
    assert!(failure(&o).contains("asked for on but the plug reads off"));
    assert!(
        matches!(o.deadman, Some(DeadmanReport::Armed(_))),
        "{:?}",
        o.deadman
    );
    assert!(
        wait_for(Duration::from_secs(2), || st.relay()),
        "it closes late"
    );
    assert!(
        wait_for(Duration::from_secs(3), || !st.relay()),
        "the dead-man opens it"
    );
    let t = st.transitions();
    assert!(t.len() >= 2 && !t.last().unwrap().on, "{t:?}");
}

/// The one test with the real retry sleeps: 0 s, 1 s, 2 s before attempts 1, 2, 3.
#[test]
fn real_retry_schedule() {
    let plug = sim(Model::Hs100, Some(Fault::Flaky(2)));
    let timing = Timing {
        retry_sleeps: vec![
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(2),
        ],
        ..Timing::default().scaled(0.05)
    };
    let (h, rx) = worker(plug.addr(), None, timing);
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!((result(&o), o.attempts), (ON, 3));
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
