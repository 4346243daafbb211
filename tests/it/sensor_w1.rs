//! The kernel w1 backend: `w1_slave` parsing on strings, and reads from a temp
//! dir shaped like /sys/bus/w1/devices.

use crate::util::sensor::{w1_yes, write_w1, ID_A, ID_B};
use kasa_thermostat::sensor::w1::{parse_w1_slave, scan, W1ParseError, W1Sensor};
use kasa_thermostat::sensor::{Classifier, Sensor, SensorError, SensorFault};

const GOOD: &str = "72 01 4b 46 7f ff 0e 10 57";
const NEGATIVE: &str = "5e ff 4b 46 7f ff 02 10 b6";
const POWER_ON: &str = "50 05 4b 46 7f ff 0c 10 1c";
const ZEROS: &str = "00 00 00 00 00 00 00 00 00";
const FF_FF: &str = "ff ff 4b 46 7f ff 01 10 9a";

fn classify_first(text: &str) -> String {
    let slave = parse_w1_slave(text).unwrap();
    let raw = kasa_thermostat::sensor::RawReading {
        celsius: slave.celsius(),
        scratchpad: Some(slave.scratchpad),
        sensor_id: ID_A.into(),
    };
    match Classifier::new(0.0, 5.0).classify(raw) {
        Ok(r) => format!("ok {}", r.celsius),
        Err(f) => f.kind().to_string(),
    }
}

#[test]
fn yes_line_is_a_reading() {
    let s = parse_w1_slave(&w1_yes(GOOD, 23125)).unwrap();
    assert_eq!(s.millidegrees, 23125);
    assert_eq!(s.celsius(), 23.125);
    assert_eq!(
        s.scratchpad,
        [0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57]
    );
    assert_eq!(classify_first(&w1_yes(GOOD, 23125)), "ok 23.125");
}

#[test]
fn no_line_is_a_crc_mismatch() {
    let text = format!("{GOOD} : crc=00 NO\n{GOOD} t=23125\n");
    match parse_w1_slave(&text) {
        Err(W1ParseError::CrcNo { scratchpad }) => assert_eq!(scratchpad[0], 0x72),
        other => panic!("expected CrcNo, got {other:?}"),
    }
}

#[test]
fn empty_file_is_a_failed_read() {
    assert_eq!(parse_w1_slave(""), Err(W1ParseError::Empty));
    assert_eq!(parse_w1_slave("\n"), Err(W1ParseError::Empty));
}

#[test]
fn negative_temperature() {
    let s = parse_w1_slave(&w1_yes(NEGATIVE, -10125)).unwrap();
    assert_eq!(s.celsius(), -10.125);
    assert_eq!(classify_first(&w1_yes(NEGATIVE, -10125)), "ok -10.125");
}

#[test]
fn power_on_85_is_rejected_as_first_reading() {
    let text = w1_yes(POWER_ON, 85000);
    let s = parse_w1_slave(&text).unwrap();
    assert_eq!(s.celsius(), 85.0);
    assert_eq!(s.scratchpad[6], 0x0c);
    assert_eq!(classify_first(&text), "power_on_value");
}

#[test]
fn all_zero_bytes_are_rejected() {
    assert_eq!(classify_first(&w1_yes(ZEROS, 0)), "all_zero");
}

#[test]
fn ff_ff_is_lost_ground() {
    let text = w1_yes(FF_FF, -62);
    assert_eq!(parse_w1_slave(&text).unwrap().millidegrees, -62);
    assert_eq!(classify_first(&text), "lost_ground");
}

#[test]
fn malformed_text_is_an_error_not_a_panic() {
    for text in [
        "garbage",
        "72 01 4b : crc=57 YES\n72 01 4b t=1\n",
        "zz 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 MAYBE\n",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=abc\n",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57\n",
    ] {
        assert!(
            matches!(parse_w1_slave(text), Err(W1ParseError::Malformed { .. })),
            "{text:?}"
        );
    }
}

#[test]
fn scan_lists_only_ds18b20_directories() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_B, &w1_yes(GOOD, 23125));
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    std::fs::create_dir(dir.path().join("w1_bus_master1")).unwrap();
    std::fs::create_dir(dir.path().join("00-400000000000")).unwrap();
    let mut want = vec![ID_A.to_string(), ID_B.to_string()];
    want.sort();
    assert_eq!(scan(dir.path()).unwrap(), want);
    assert!(matches!(
        scan(&dir.path().join("missing")),
        Err(SensorError::Io { .. })
    ));
}

#[test]
fn sensor_reads_the_file_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    let mut s = W1Sensor::open(dir.path(), None).unwrap();
    assert_eq!(s.id(), ID_A);
    let raw = s.read().unwrap();
    assert_eq!(raw.celsius, 23.125);
    assert_eq!(raw.scratchpad.unwrap()[8], 0x57);

    write_w1(
        dir.path(),
        ID_A,
        &format!("{GOOD} : crc=00 NO\n{GOOD} t=23125\n"),
    );
    match s.read() {
        Err(SensorFault::CrcMismatch {
            attempts, bytes, ..
        }) => {
            assert_eq!(attempts, 3);
            assert_eq!(bytes, GOOD);
        }
        other => panic!("expected a CRC mismatch, got {other:?}"),
    }

    write_w1(dir.path(), ID_A, "");
    match s.read() {
        Err(f @ SensorFault::Io { .. }) => assert!(f.to_string().contains("w1_slave"), "{f}"),
        other => panic!("expected an I/O fault, got {other:?}"),
    }

    std::fs::remove_dir_all(dir.path().join(ID_A)).unwrap();
    match s.read() {
        Err(f @ SensorFault::NoDevice { .. }) => assert!(f.to_string().contains(ID_A), "{f}"),
        other => panic!("expected no_device, got {other:?}"),
    }
}

#[test]
fn open_needs_one_sensor_or_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let err = W1Sensor::open(dir.path(), None).unwrap_err();
    assert!(
        matches!(err, SensorError::Fault(SensorFault::NoDevice { .. })),
        "{err}"
    );
    // A named sensor opens even before it appears.
    assert!(W1Sensor::open(dir.path(), Some(ID_A)).is_ok());
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 1));
    write_w1(dir.path(), ID_B, &w1_yes(GOOD, 1));
    let err = W1Sensor::open(dir.path(), None).unwrap_err();
    assert!(
        err.to_string().contains(ID_A) && err.to_string().contains(ID_B),
        "{err}"
    );
}

#[test]
fn format_is_the_inverse_of_parse() {
    use kasa_thermostat::sensor::scratchpad_for;
    use kasa_thermostat::sensor::w1::format_w1_slave;
    for celsius in [23.125, -10.125, 0.0625, 85.0, -55.0, 125.0] {
        let pad = scratchpad_for(celsius);
        let text = format_w1_slave(&pad);
        let parsed = parse_w1_slave(&text).unwrap();
        assert_eq!(parsed.scratchpad, pad);
        assert!((parsed.celsius() - celsius).abs() < 0.001, "{text}");
    }
    assert_eq!(
        format_w1_slave(&[0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0x57]),
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
    );
}

/// `w1_slave` is read only when it is a regular file of at most 4 KiB: a
/// FIFO (which would block the read for ever), a device (`/dev/zero`, which
/// would grow memory without bound) or an oversized file is a fault, at once.
#[test]
fn a_fifo_a_device_or_a_huge_w1_slave_is_a_fault_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let slave = dir.path().join(ID_A).join("w1_slave");
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    let mut s = W1Sensor::open(dir.path(), Some(ID_A)).unwrap();
    assert_eq!(s.read().unwrap().celsius, 23.125);

    let replace = |make: &dyn Fn(&std::path::Path)| {
        std::fs::remove_file(&slave).unwrap();
        make(&slave);
    };
    let fifo = |p: &std::path::Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    let zero = |p: &std::path::Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap();
    let huge = |p: &std::path::Path| std::fs::write(p, "0".repeat(64 * 1024)).unwrap();
    for (name, make) in [
        ("fifo", &fifo as &dyn Fn(&std::path::Path)),
        ("/dev/zero", &zero),
        ("64 KiB", &huge),
    ] {
        replace(make);
        let started = std::time::Instant::now();
        match s.read() {
            Err(f @ SensorFault::Io { .. }) => {
                assert!(f.to_string().contains("w1_slave"), "{name}: {f}")
            }
            other => panic!("{name}: expected an I/O fault, got {other:?}"),
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{name}"
        );
    }
}

/// The garbled file of issue 22 (no CRC value and a `\r` on line 1, a
/// three-digit byte and a `\r` on line 2) used to read as 0.000 °C: it is the
/// named fault `garbled`, naming the file, and never a temperature.
#[test]
fn a_garbled_w1_slave_is_a_named_fault_never_a_temperature() {
    let garbled = "72 01 4b 46 7f ff 0e 10 :f\r crc= YES\n72 01 4db 46 7f ff 0e 10 \r57 t=0\n";
    assert!(matches!(
        parse_w1_slave(garbled),
        Err(W1ParseError::Malformed { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    write_w1(dir.path(), ID_A, garbled);
    let mut s = W1Sensor::open(dir.path(), Some(ID_A)).unwrap();
    match s.read() {
        Err(f @ SensorFault::Garbled { .. }) => {
            assert_eq!(f.kind(), "garbled");
            let text = f.to_string();
            assert!(
                text.contains("w1_slave") && text.contains("garbled"),
                "{text}"
            );
        }
        other => panic!("a garbled file must be a fault, got {other:?}"),
    }
    // The same sensor reads again once the file is whole.
    write_w1(dir.path(), ID_A, &w1_yes(GOOD, 23125));
    assert_eq!(s.read().unwrap().celsius, 23.125);
}
