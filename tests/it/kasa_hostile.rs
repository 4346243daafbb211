//! Hostile legacy plugs (issue 22): a frame nobody asked for is not a broken
//! plug. A late trailing frame after a good reply, a frame before the first
//! request, and a plug that always answers another method, each against the
//! worker with the real algorithm on a scaled-down schedule.

use kasa_thermostat::msg::{Completion, PlugCommand, PlugState};

use crate::util::kasa::{
    failure, fast_timing, next_outcome, result, worker, HostilePlug, Hostility,
};

fn set(on: bool) -> PlugCommand {
    PlugCommand::Set { on, deadman: None }
}

/// A good reply followed at once by a stale sysinfo with the relay the
/// other way: the next command on that connection must not read the stale
/// frame as its answer. It succeeds, verified, and the stale "off" never
/// becomes the state.
#[test]
fn a_late_trailing_frame_does_not_fail_the_next_command() {
    let plug = HostilePlug::start(Hostility::TrailingFrame);
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(PlugCommand::Read);
    let o = next_outcome(&rx);
    assert_eq!(
        result(&o),
        (Completion::Done, Some(PlugState::Off)),
        "{o:?}"
    );
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!(result(&o), (Completion::Done, Some(PlugState::On)), "{o:?}");
    assert!(plug.relay(), "the switch reached the plug");
    h.send(PlugCommand::Read);
    let o = next_outcome(&rx);
    assert_eq!(result(&o), (Completion::Done, Some(PlugState::On)), "{o:?}");
}

/// A frame before any request is read as the first request's answer and
/// answers another method: a transient error, so the command succeeds on
/// its second attempt, on a second connection.
#[test]
fn an_unsolicited_first_frame_costs_one_reconnect() {
    let plug = HostilePlug::start(Hostility::GreetFirst);
    let (h, rx) = worker(plug.addr(), None, fast_timing());
    h.send(set(true));
    let o = next_outcome(&rx);
    assert_eq!(result(&o), (Completion::Done, Some(PlugState::On)), "{o:?}");
    assert_eq!(o.attempts, 2, "{o:?}");
    assert_eq!(plug.connections(), 2);
    assert!(plug.relay());
}

/// A plug that answers every request as another method: the first wrong
/// answer is retried on a fresh connection; the same wrong answer there
/// ends the command with one clear, permanent failure, well within the
/// attempt schedule.
#[test]
fn a_plug_that_always_answers_another_method_fails_once_and_clearly() {
    let plug = HostilePlug::start(Hostility::WrongMethod);
    let timing = fast_timing();
    let (h, rx) = worker(plug.addr(), None, timing.clone());
    h.send(PlugCommand::Read);
    let o = next_outcome(&rx);
    assert_eq!(o.attempts, 2, "{o:?}");
    assert_eq!(
        plug.connections(),
        2,
        "the second attempt used a fresh connection"
    );
    let f = o.failure().expect("a failure").clone();
    assert!(f.permanent, "{f:?}");
    let text = failure(&o);
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        text.contains(&plug.addr().to_string())
            && text.contains("system.get_sysinfo")
            && text.contains("system.set_led_off")
            && text.contains("again on a fresh connection"),
        "{text}"
    );
    assert!(
        o.elapsed < timing.worst_case(&PlugCommand::Read),
        "{:?}",
        o.elapsed
    );
    assert_eq!(o.state, None, "nothing was read");
}
