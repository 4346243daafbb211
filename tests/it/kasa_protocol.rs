//! The wire format on plain bytes and strings: codec vector and round trip,
//! framing limits, err_code at both levels, sysinfo, outlets and emeter units.

use kasa_thermostat::kasa::discovery::probe;
use kasa_thermostat::kasa::iot::{extract, Emeter, SysInfo};
use kasa_thermostat::kasa::transport::xor::{
    self, decrypt, encrypt, frame, frame_len, unframe, FrameError, MAX_FRAME,
};
use kasa_thermostat::kasa::{Outlet, ReplyError};
use serde_json::{json, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn design_test_vector() {
    let framed = frame(br#"{"system":{"get_sysinfo":{}}}"#);
    assert_eq!(
        hex(&framed),
        "0000001dd0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6"
    );
    assert_eq!(
        unframe(&framed).unwrap(),
        br#"{"system":{"get_sysinfo":{}}}"#
    );
}

#[test]
fn round_trip_on_many_inputs() {
    // A fixed xorshift sequence: reproducible, yet covers all byte values and lengths.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in 0..600usize {
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let enc = encrypt(&data);
        assert_eq!(enc.len(), data.len());
        assert_eq!(decrypt(&enc), data, "length {len}");
        assert_eq!(unframe(&frame(&data)).unwrap(), data);
    }
}

#[test]
fn oversize_header_is_refused_before_allocating() {
    assert!(
        matches!(frame_len([0xFF, 0xFF, 0xFF, 0xFF]), Err(FrameError::Oversize(n)) if n == u32::MAX as usize)
    );
    assert_eq!(
        frame_len((MAX_FRAME as u32).to_be_bytes()).unwrap(),
        MAX_FRAME
    );
    assert!(frame_len((MAX_FRAME as u32 + 1).to_be_bytes()).is_err());
    // Reading stops after the header: the body is never read or allocated.
    let mut bytes: &[u8] = &[0x7F, 0, 0, 0, 1, 2, 3];
    assert!(matches!(
        xor::read_frame(&mut bytes),
        Err(FrameError::Oversize(_))
    ));
    assert_eq!(bytes, &[1, 2, 3]);
}

#[test]
fn short_frames_say_whether_they_were_cut_mid_frame() {
    let mut empty: &[u8] = &[];
    assert!(matches!(
        xor::read_frame(&mut empty),
        Err(FrameError::Short { partial: false, .. })
    ));
    let framed = frame(b"{\"a\":1}");
    let mut cut: &[u8] = &framed[..6];
    assert!(matches!(
        xor::read_frame(&mut cut),
        Err(FrameError::Short { partial: true, .. })
    ));
}

#[test]
fn err_code_is_checked_at_module_and_method_level() {
    let module = json!({"emeter": {"err_code": -1, "err_msg": "module not support"}});
    match extract(&module, "emeter", "get_realtime") {
        Err(ReplyError::Device {
            method: None,
            code: -1,
            msg,
            ..
        }) => {
            assert_eq!(msg, "module not support")
        }
        other => panic!("expected a module error, got {other:?}"),
    }
    let method = json!({"count_down": {"add_rule": {"err_code": -10, "err_msg": "table is full"}}});
    match extract(&method, "count_down", "add_rule") {
        Err(ReplyError::Device {
            method: Some(m),
            code: -10,
            ..
        }) => assert_eq!(m, "add_rule"),
        other => panic!("expected a method error, got {other:?}"),
    }
    let missing_method = json!({"system": {}});
    assert!(matches!(
        extract(&missing_method, "system", "set_relay_state"),
        Err(ReplyError::Shape(_))
    ));
    assert!(matches!(
        extract(&json!({}), "system", "get_sysinfo"),
        Err(ReplyError::Shape(_))
    ));
    let fine = json!({"system": {"set_relay_state": {"err_code": 0}}});
    assert!(extract(&fine, "system", "set_relay_state").is_ok());
}

fn strip_reply() -> Value {
    json!({"system": {"get_sysinfo": {
        "alias": "Strip", "model": "HS300(US)", "mac": "AA:BB:CC:DD:EE:FF",
        "deviceId": "8006ABCDEF", "feature": "TIM:ENE", "err_code": 0, "child_num": 3,
        "children": [
            {"id": "8006ABCDEF00", "alias": "a", "state": 0, "on_time": 0},
            {"id": "8006ABCDEF01", "alias": "b", "state": 1, "on_time": 12},
            {"id": "02", "alias": "c", "state": 1, "on_time": 3}
        ]
    }}})
}

#[test]
fn strip_outlets_by_index_full_id_and_suffix() {
    let info = SysInfo::from_reply(&strip_reply()).unwrap();
    assert!(info.is_strip());
    assert_eq!(info.relay_state, None);
    assert!(!info.state_of(Some(&Outlet::Index(0))).unwrap());
    assert!(info.state_of(Some(&Outlet::Index(1))).unwrap());
    assert!(info
        .state_of(Some(&Outlet::Id("8006ABCDEF01".into())))
        .unwrap());
    assert!(info.state_of(Some(&Outlet::Id("01".into()))).unwrap());
    // Firmware that lists only the suffix still gets the full id in requests.
    assert_eq!(info.child_id(&Outlet::Index(2)).unwrap(), "8006ABCDEF02");
    assert!(info.state_of(None).is_err(), "a strip has no relay_state");
    let err = info
        .state_of(Some(&Outlet::Index(7)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("#7") && err.contains("3 outlets"), "{err}");
}

#[test]
fn single_plug_sysinfo_and_missing_keys() {
    let reply = json!({"system": {"get_sysinfo": {
        "alias": "Heater", "model": "HS100(UK)", "mac": "50:C7:BF:01:02:03",
        "deviceId": "X", "relay_state": 1, "rssi": -60, "on_time": 5, "err_code": 0,
        "type": "IOT.SMARTPLUGSWITCH"
    }}});
    let info = SysInfo::from_reply(&reply).unwrap();
    assert!(info.state_of(None).unwrap());
    assert_eq!(info.rssi, Some(-60));
    assert_eq!(info.extra["type"], "IOT.SMARTPLUGSWITCH");
    // Read liberally: a field the program does not need never makes the
    // reply unusable (a missing model is an empty one)...
    let no_model = json!({"system": {"get_sysinfo": {"alias": "x", "err_code": 0}}});
    let info = SysInfo::from_reply(&no_model).unwrap();
    assert_eq!((info.model.as_str(), info.relay_state), ("", None));
    // ...but the relay state it does need must be a state.
    let bad_relay = json!({"system": {"get_sysinfo": {"model": "HS100(UK)", "relay_state": "on", "err_code": 0}}});
    let err = SysInfo::from_reply(&bad_relay).unwrap_err().to_string();
    assert!(err.contains("expected 0 or 1"), "{err}");
    let no_sysinfo = json!({"system": {}});
    let err = SysInfo::from_reply(&no_sysinfo).unwrap_err().to_string();
    assert!(err.contains("get_sysinfo"), "{err}");
}

#[test]
fn emeter_both_unit_styles() {
    let floats = json!({"emeter": {"get_realtime": {
        "power": 41.5, "voltage": 229.9, "current": 0.18, "total": 1.25, "err_code": 0}}});
    let e = Emeter::from_reply(&floats).unwrap();
    assert_eq!(
        (e.power_w, e.voltage_v, e.current_a, e.total_kwh),
        (41.5, 229.9, 0.18, 1.25)
    );
    let ints = json!({"emeter": {"get_realtime": {
        "power_mw": 41500, "voltage_mv": 229900, "current_ma": 180, "total_wh": 1250, "err_code": 0}}});
    let e = Emeter::from_reply(&ints).unwrap();
    assert!((e.power_w - 41.5).abs() < 1e-9 && (e.voltage_v - 229.9).abs() < 1e-9);
    assert!((e.current_a - 0.18).abs() < 1e-9 && (e.total_kwh - 1.25).abs() < 1e-9);
    let neither = json!({"emeter": {"get_realtime": {"err_code": 0}}});
    assert!(Emeter::from_reply(&neither).is_err());
}

#[test]
fn klap_probe_reply_is_recognised() {
    let probe = probe::klap_probe_packet();
    assert!(probe::is_klap_probe(&probe));
    let mut reply = probe.to_vec();
    reply.extend_from_slice(
        br#"{"error_code":0,"result":{"mgt_encrypt_schm":{"encrypt_type":"KLAP"}}}"#,
    );
    assert_eq!(probe::parse_klap_reply(&reply).as_deref(), Some("KLAP"));
    assert_eq!(probe::parse_klap_reply(b"not a probe reply"), None);
}

#[test]
fn sim_fault_and_model_names_parse() {
    use kasa_thermostat::sim::{Fault, Model};
    use std::time::Duration;
    let cases = [
        ("blackhole", Fault::Blackhole),
        ("slow:250", Fault::Slow(Duration::from_millis(250))),
        ("drop", Fault::Drop),
        ("garbage", Fault::Garbage),
        ("err", Fault::Err),
        ("stuck", Fault::Stuck),
        ("lag:40", Fault::Lag(Duration::from_millis(40))),
        ("flaky:3", Fault::Flaky(3)),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Fault>().unwrap(), want, "{text}");
    }
    for bad in ["slow", "slow:x", "flaky:-1", "wobbly", ""] {
        assert!(bad.parse::<Fault>().is_err(), "{bad}");
    }
    assert_eq!("HS300".parse::<Model>().unwrap(), Model::Hs300);
    assert_eq!("hs110".parse::<Model>().unwrap().model_name(), "HS110(EU)");
    assert!("hs105".parse::<Model>().is_err());
}
