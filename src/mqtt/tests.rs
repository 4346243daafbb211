//! The client against an in-process fake broker on 127.0.0.1:0, with
//! deadlines of milliseconds: the handshake, a command from a `set` topic,
//! and a broker that stalls, sends garbage or an oversize packet. In every
//! case the control thread's side ([`Wake::state_changed`]) returns at once
//! and the client drops the bad connection and connects again.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::Receiver;
use mqttbytes::v4::Packet;

use super::*;
use crate::msg::{Reply, Request, Source};

fn settings(port: u16) -> MqttSettings {
    MqttSettings {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password_file: None,
        client_id: "kt-test".into(),
        topic_prefix: "kt/test".into(),
        discovery_prefix: "homeassistant".into(),
        publish: Duration::from_secs(30),
    }
}

fn fast() -> Timing {
    Timing {
        connect: Duration::from_millis(500),
        connack: Duration::from_millis(150),
        write: Duration::from_millis(150),
        poll: Duration::from_millis(10),
        keep_alive: Duration::from_millis(60),
        ping_wait: Duration::from_millis(100),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        stable: Duration::from_secs(30),
    }
}

const STATE: &str = r#"{"updated":"2026-01-01T00:00:00.000Z","updated_unix":1.0,"pid":1,"units":"C",
"mode":"heat","low_limit":18.0,"high_limit":20.0,"temperature":19.0,"reading_age_s":1.0,
"sensor_stale":false,"sensor_fault":null,"alarm":null,"reason":"r","shutting_down":false,
"plugs":{"heater":{"host":"h:1","state":"off","verified":false,"desired":false,"switching":null,
"state_for_s":1.0,"deadman":"clear","deadman_remaining_s":null,"last_error":null}}}"#;

/// A client on `listener`'s port, its command receiver and its temp dir.
fn client(listener: &TcpListener) -> (MqttClient, Receiver<Request>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    std::fs::write(&state_file, STATE).unwrap();
    let (commands, rx) = CommandSender::channel();
    let ctx = Context {
        commands,
        state_file,
        units: Units::C,
        roles: vec![Role::Heater],
        has_profile: false,
        instance: None,
    };
    let port = listener.local_addr().unwrap().port();
    let c = MqttClient::start_with(&settings(port), ctx, fast()).unwrap();
    (c, rx, dir)
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// The next connection, within a second.
fn accept(l: &TcpListener) -> TcpStream {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                return s;
            }
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("the client did not connect: {e}"),
        }
    }
}

/// The next packet the client sends; `None` when it closed the connection.
fn next(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Packet> {
    loop {
        if let Some(p) = wire::decode(buf).expect("the client sent a bad packet") {
            return Some(p);
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads the CONNECT and answers CONNACK accepted.
fn handshake(s: &mut TcpStream, buf: &mut BytesMut) {
    match next(s, buf) {
        Some(Packet::Connect(c)) => {
            assert_eq!(c.client_id, "kt-test");
            let will = c.last_will.expect("no last will");
            assert_eq!(will.topic, "kt/test/availability");
            assert_eq!(&will.message[..], b"offline");
            assert!(will.retain);
        }
        other => panic!("expected CONNECT, got {other:?}"),
    }
    s.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
}

/// Until the client closes the connection (or `within` passes: a failure).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut chunk = [0u8; 4096];
    let end = Instant::now() + within;
    while Instant::now() < end {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
    false
}

/// `state_changed` never waits, whatever the MQTT thread is doing.
fn assert_wake_is_instant(c: &MqttClient) {
    let wake = c.wake();
    let start = Instant::now();
    for _ in 0..1000 {
        wake.state_changed();
    }
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "1000 wake-ups took {:?}",
        start.elapsed()
    );
}

#[test]
fn connects_announces_and_takes_a_command_from_a_set_topic() {
    let l = listener();
    let (c, commands, _dir) = client(&l);
    let mut s = accept(&l);
    let mut buf = BytesMut::new();
    handshake(&mut s, &mut buf);
    let mut seen = Vec::new();
    let mut subscribed = false;
    while !(subscribed
        && seen
            .iter()
            .any(|(t, _): &(String, bool)| t == "kt/test/state"))
    {
        match next(&mut s, &mut buf) {
            Some(Packet::Publish(p)) => seen.push((p.topic.clone(), p.retain)),
            Some(Packet::Subscribe(sub)) => {
                let filters: Vec<&str> = sub.filters.iter().map(|f| f.path.as_str()).collect();
                assert_eq!(filters, ["kt/test/set/+", "homeassistant/status"]);
                s.write_all(&[0x90, 0x04, 0x00, sub.pkid as u8, 0x00, 0x00])
                    .unwrap();
                subscribed = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen[0], ("kt/test/availability".to_string(), true));
    assert!(seen.contains(&(
        "homeassistant/climate/kt-test/thermostat/config".to_string(),
        true
    )));
    // HA sets the mode; the control thread refuses it; the state comes again.
    s.write_all(&wire::publish("kt/test/set/mode", b"heat", false).unwrap())
        .unwrap();
    let req = commands
        .recv_timeout(Duration::from_secs(2))
        .expect("no command");
    assert_eq!(req.source, Source::Mqtt);
    assert_eq!(req.command.mode.as_deref(), Some("heat"));
    req.reply.send(Reply::refused("test")).unwrap();
    loop {
        match next(&mut s, &mut buf) {
            Some(Packet::Publish(p)) if p.topic == "kt/test/state" => {
                let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                assert_eq!(v["mode"], "heat");
                break;
            }
            Some(_) => {}
            None => panic!("the client closed the connection"),
        }
    }
    // A clean stop: `offline`, retained, then DISCONNECT.
    drop(c);
    let mut offline = false;
    loop {
        match next(&mut s, &mut buf) {
            Some(Packet::Publish(p)) if p.topic == "kt/test/availability" => {
                offline = &p.payload[..] == b"offline" && p.retain;
            }
            Some(Packet::Disconnect) => break,
            Some(_) => {}
            None => panic!("no DISCONNECT"),
        }
    }
    assert!(offline, "no retained offline before DISCONNECT");
}

#[test]
fn a_broker_that_never_answers_connect_is_dropped_and_tried_again() {
    let l = listener();
    let (c, _commands, _dir) = client(&l);
    let mut first = accept(&l);
    assert_wake_is_instant(&c);
    // No CONNACK: the client gives up after `connack` and reconnects.
    assert!(closed_within(&mut first, Duration::from_secs(2)));
    let _second = accept(&l);
}

#[test]
fn a_broker_that_stops_answering_pings_is_dropped_and_tried_again() {
    let l = listener();
    let (c, _commands, _dir) = client(&l);
    let mut s = accept(&l);
    let mut buf = BytesMut::new();
    handshake(&mut s, &mut buf);
    // Read what comes (a PINGREQ among it) and never answer.
    let start = Instant::now();
    let mut pinged = false;
    while let Some(p) = next(&mut s, &mut buf) {
        pinged |= p == Packet::PingReq;
        assert_wake_is_instant(&c);
    }
    assert!(pinged, "no PINGREQ before the client gave up");
    assert!(start.elapsed() < Duration::from_secs(2));
    let _second = accept(&l);
}

#[test]
fn garbage_from_the_broker_drops_the_connection() {
    let l = listener();
    let (c, _commands, _dir) = client(&l);
    let mut s = accept(&l);
    let mut buf = BytesMut::new();
    handshake(&mut s, &mut buf);
    s.write_all(&[0x00, 0x00, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    assert_wake_is_instant(&c);
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    let _second = accept(&l);
}

#[test]
fn an_oversize_packet_drops_the_connection_before_its_body() {
    let l = listener();
    let (_c, _commands, _dir) = client(&l);
    let mut s = accept(&l);
    let mut buf = BytesMut::new();
    handshake(&mut s, &mut buf);
    // A PUBLISH announcing 200 MB; only its header is sent.
    s.write_all(&[0x30, 0x80, 0x80, 0x80, 0x60]).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    let _second = accept(&l);
}

#[test]
fn a_broker_that_is_not_there_costs_the_control_thread_nothing() {
    // A port with nothing on it: bound, then closed.
    let port = listener().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (commands, _rx) = CommandSender::channel();
    let ctx = Context {
        commands,
        state_file: dir.path().join("none.json"),
        units: Units::C,
        roles: vec![],
        has_profile: false,
        instance: None,
    };
    let c = MqttClient::start_with(&settings(port), ctx, fast()).unwrap();
    assert_wake_is_instant(&c);
    let start = Instant::now();
    drop(c);
    assert!(
        start.elapsed() < STOP_WAIT,
        "stopping took {:?}",
        start.elapsed()
    );
}
