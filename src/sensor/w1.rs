//! The `w1` backend: the kernel's w1-gpio driver (`dtoverlay=w1-gpio`) does
//! the 1-wire timing and exposes each sensor as `<w1_root>/<id>/w1_slave`.
//!
//! The file has two lines (docs/design.md §8):
//!
//! ```text
//! 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//! 72 01 4b 46 7f ff 0e 10 57 t=23125
//! ```
//!
//! Only a `YES` line is a reading; `NO` is a CRC mismatch (retried); an empty
//! file means the kernel's read failed. [`parse_w1_slave`] is pure so that
//! every case is tested on strings.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::backend::{pick_one, RawReading, Sensor};
use super::ds18b20::CRC_RETRIES;
use super::fault::hex_bytes;
use super::fault::SensorError;
use crate::msg::SensorFault;

/// A `w1_slave` file with a `YES` line.
#[derive(Debug, Clone, PartialEq)]
pub struct W1Slave {
    /// The scratchpad as the kernel read it, CRC byte last.
    pub scratchpad: [u8; 9],
    /// The `t=` value, in millidegrees Celsius.
    pub millidegrees: i32,
}

impl W1Slave {
    /// The temperature in °C.
    pub fn celsius(&self) -> f64 {
        f64::from(self.millidegrees) / 1000.0
    }
}

#[cfg(any(test, feature = "testkit"))]
/// The `w1_slave` text the kernel's w1_therm driver shows for a scratchpad
/// whose CRC checked out: the inverse of [`parse_w1_slave`], for fake sysfs
/// trees in tests, examples and demos.
pub fn format_w1_slave(scratchpad: &[u8; 9]) -> String {
    let hex = hex_bytes(scratchpad);
    // The driver's integer arithmetic: 1/16 °C counts times 1000, truncated.
    let milli = i32::from(i16::from_le_bytes([scratchpad[0], scratchpad[1]])) * 1000 / 16;
    format!("{hex} : crc={:02x} YES\n{hex} t={milli}\n", scratchpad[8])
}

/// Why a `w1_slave` text is not a reading.
#[derive(Debug, Clone, PartialEq)]
pub enum W1ParseError {
    /// The file is empty: the kernel's read of the sensor failed.
    Empty,
    /// The CRC line says `NO`: retry the read.
    CrcNo {
        /// The bytes as read.
        scratchpad: [u8; 9],
    },
    /// The text is not in the w1_therm format.
    Malformed {
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for W1ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            W1ParseError::Empty => {
                f.write_str("empty read: the kernel got no answer from the sensor")
            }
            W1ParseError::CrcNo { scratchpad } => {
                write!(f, "CRC mismatch ({})", hex_bytes(scratchpad))
            }
            W1ParseError::Malformed { reason } => {
                write!(f, "unexpected w1_slave content: {reason}")
            }
        }
    }
}

impl std::error::Error for W1ParseError {}

fn malformed(reason: impl Into<String>) -> W1ParseError {
    W1ParseError::Malformed {
        reason: reason.into(),
    }
}

/// Nine bytes as the kernel prints them: each two lower- or upper-case hex
/// digits and one space (`"72 01 4b 46 7f ff 0e 10 57 "`, 27 characters).
fn parse_bytes(text: &str, line: usize) -> Result<[u8; 9], W1ParseError> {
    let raw = text.as_bytes();
    if raw.len() < 27 {
        return Err(malformed(format!(
            "line {line} does not start with nine hex bytes: {:?}",
            text
        )));
    }
    let mut out = [0u8; 9];
    for (i, slot) in out.iter_mut().enumerate() {
        let word = &raw[i * 3..i * 3 + 3];
        let hex = std::str::from_utf8(&word[..2]).ok();
        *slot = match (hex, word[2]) {
            (Some(h), b' ') if h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u8::from_str_radix(h, 16).map_err(|_| malformed("unreachable"))?
            }
            _ => {
                return Err(malformed(format!(
                    "line {line}, byte {}: {:?} is not two hex digits and a space",
                    i + 1,
                    String::from_utf8_lossy(word)
                )))
            }
        };
    }
    Ok(out)
}

/// Parses the text of a `w1_slave` file. Only the exact shape the kernel's
/// w1_therm driver writes is a reading:
///
/// ```text
/// 72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
/// 72 01 4b 46 7f ff 0e 10 57 t=23125
/// ```
///
/// line 1: nine bytes, `: crc=` and two hex digits (the ninth byte when the
/// verdict is `YES`), a space, `YES` or `NO`; line 2: the same nine bytes,
/// `t=` and an integer, and the final newline. Anything else (a
/// corrupted read, a broken driver) is [`W1ParseError::Malformed`], never a
/// temperature.
pub fn parse_w1_slave(text: &str) -> Result<W1Slave, W1ParseError> {
    if text.trim().is_empty() {
        return Err(W1ParseError::Empty);
    }
    // The kernel ends the file with a newline: without it, the read was cut
    // off, perhaps inside the number.
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| malformed("no newline at the end (a cut-off read)"))?;
    let mut lines = body.split('\n');
    let (first, second) = match (lines.next(), lines.next(), lines.next()) {
        (Some(first), Some(second), None) => (first, second),
        (Some(_), None, _) => return Err(malformed("no second line with t=")),
        _ => return Err(malformed("more than two lines")),
    };
    let scratchpad = parse_bytes(first, 1)?;
    let verdict = &first[27..];
    let crc = verdict
        .strip_prefix(": crc=")
        .and_then(|rest| rest.get(..2).map(|h| (h, &rest[2..])))
        .filter(|(h, _)| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            malformed(format!(
                "line 1 has no `: crc=XX` after the bytes: {verdict:?}"
            ))
        })?;
    let (crc_hex, yes_no) = crc;
    let crc = u8::from_str_radix(crc_hex, 16).map_err(|_| malformed("unreachable"))?;
    let yes = match yes_no {
        " YES" => true,
        " NO" => false,
        other => {
            return Err(malformed(format!(
                "CRC verdict {:?}, not YES or NO",
                other.trim()
            )))
        }
    };
    if parse_bytes(second, 2)? != scratchpad {
        return Err(malformed("line 2's bytes differ from line 1's"));
    }
    let t = second[27..]
        .strip_prefix("t=")
        .ok_or_else(|| malformed(format!("no t= after the bytes of line 2: {second:?}")))?;
    let digits = t.strip_prefix('-').unwrap_or(t);
    // As the kernel's %d writes it: no sign but `-`, no leading zero.
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || leading_zero || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("t={t:?} is not an integer")));
    }
    let millidegrees = t
        .parse::<i32>()
        .map_err(|_| malformed(format!("t={t:?} is not an integer")))?;
    if !yes {
        return Err(W1ParseError::CrcNo { scratchpad });
    }
    if crc != scratchpad[8] {
        return Err(malformed(format!(
            "YES with crc={crc_hex}, but the ninth byte is {:02x}",
            scratchpad[8]
        )));
    }
    Ok(W1Slave {
        scratchpad,
        millidegrees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n";

    fn reason(text: &str) -> String {
        match parse_w1_slave(text) {
            Err(W1ParseError::Malformed { reason }) => reason,
            other => panic!("{text:?}: expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn the_kernel_shape_is_a_reading() {
        let s = parse_w1_slave(GOOD).unwrap();
        assert_eq!(s.millidegrees, 23125);
        assert_eq!(s.scratchpad[8], 0x57);
        // Upper-case hex and a negative value: still the shape.
        let s = parse_w1_slave(
            "5E FF 4B 46 7F FF 02 10 B6 : crc=B6 YES\n5E FF 4B 46 7F FF 02 10 B6 t=-10125\n",
        )
        .unwrap();
        assert_eq!(s.millidegrees, -10125);
    }

    /// The garbled file of issue 22: no CRC value and a `\r` on line 1, a
    /// three-digit "byte" and a `\r` on line 2. It used to read as 0.000 °C.
    #[test]
    fn the_garbled_file_is_a_named_fault_not_zero_degrees() {
        let garbled = "72 01 4b 46 7f ff 0e 10 :f\r crc= YES\n72 01 4db 46 7f ff 0e 10 \r57 t=0\n";
        let why = reason(garbled);
        assert!(why.contains("line 1"), "{why}");
        // Each defect alone is caught too.
        let no_crc_value =
            "72 01 4b 46 7f ff 0e 10 57 : crc= YES\n72 01 4b 46 7f ff 0e 10 57 t=0\n";
        assert!(reason(no_crc_value).contains("crc=XX"));
        let cr_in_line_1 =
            "72 01 4b 46 7f ff 0e 10 57 :f\r crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=0\n";
        assert!(reason(cr_in_line_1).contains("crc=XX"));
        let three_digits =
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4db 46 7f ff 0e 10 57 t=0\n";
        assert!(reason(three_digits).contains("line 2, byte 3"));
        let cr_before_byte =
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 \r57 t=0\n";
        assert!(reason(cr_before_byte).contains("line 2, byte 9"));
    }

    #[test]
    fn every_other_departure_from_the_shape_is_malformed() {
        for text in [
            // bytes
            "72 01 4b 46 7f ff 0e 10 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72  01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 5g : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 56 t=1\n",
            // crc and verdict
            "72 01 4b 46 7f ff 0e 10 57 : crc=5 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 yes\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES \n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=58 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            "72 01 4b 46 7f ff 0e 10 57 crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
            // t=
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1.5\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=+1\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1 \n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=99999999999\n",
            // lines
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\r\n72 01 4b 46 7f ff 0e 10 57 t=1\r\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=1\n\n",
            "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n\n72 01 4b 46 7f ff 0e 10 57 t=1\n",
        ] {
            reason(text);
        }
        // A NO verdict is a CRC mismatch (retried), but only in the kernel's shape.
        assert!(matches!(
            parse_w1_slave(
                "72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=1\n"
            ),
            Err(W1ParseError::CrcNo { .. })
        ));
        reason("72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n");
    }

    /// A cut-off read is an error (`t=2312` of `t=23125` is not a reading);
    /// every single-byte change of a good file is the good reading, an
    /// error, or (only inside the digits of `t=`, where the kernel's shape
    /// cannot tell) another value: never a panic.
    #[test]
    fn cut_or_mutated_files_never_panic_or_read_another_value() {
        for cut in 1..GOOD.len() {
            reason(&GOOD[..cut]);
        }
        let bytes = GOOD.as_bytes();
        for i in 0..bytes.len() {
            for b in [b' ', b'\r', b'0', b'f', b'x', b'-', b':', b'\n', 0xC3] {
                let mut m = bytes.to_vec();
                m[i] = b;
                let text = String::from_utf8_lossy(&m);
                let in_t_digits = (69..74).contains(&i);
                if let Ok(s) = parse_w1_slave(&text) {
                    assert!(
                        s.millidegrees == 23125 || in_t_digits,
                        "{text:?} read as {}",
                        s.millidegrees
                    );
                }
            }
        }
    }
}

/// Lists the DS18B20s (`28-*` directories) under `root`, sorted.
pub fn scan(root: &Path) -> Result<Vec<String>, SensorError> {
    let entries = std::fs::read_dir(root).map_err(|source| SensorError::Io {
        path: root.display().to_string(),
        source,
    })?;
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with("28-"))
        .collect();
    ids.sort();
    Ok(ids)
}

/// The largest `w1_slave` accepted: the kernel writes about 75 bytes, so
/// anything near this is not a w1_slave file (`/dev/zero`, a log...).
pub(crate) const W1_SLAVE_MAX: u64 = 4096;

/// One sensor read through the kernel's w1 driver.
#[derive(Debug, Clone)]
pub struct W1Sensor {
    root: PathBuf,
    id: String,
    slave: PathBuf,
}

impl W1Sensor {
    /// The sensor `id` under `root`, or the only `28-*` sensor there when
    /// `id` is `None`. A named sensor that is not there yet is not an error
    /// here: its reads report `no_device` until it appears.
    pub fn open(root: &Path, id: Option<&str>) -> Result<W1Sensor, SensorError> {
        let id = match id {
            Some(id) => id.to_string(),
            None => pick_one(&root.display().to_string(), scan(root)?)?,
        };
        Ok(W1Sensor::new(root, &id))
    }

    /// The sensor `id` under `root`, without looking at the file system.
    pub fn new(root: &Path, id: &str) -> W1Sensor {
        W1Sensor {
            root: root.to_path_buf(),
            id: id.to_string(),
            slave: root.join(id).join("w1_slave"),
        }
    }

    fn read_once(&self) -> Result<Result<W1Slave, W1ParseError>, SensorFault> {
        match crate::fsutil::read_text_capped(&self.slave, W1_SLAVE_MAX) {
            Ok(text) => Ok(parse_w1_slave(&text)),
            Err(e) if e.io_kind() == ErrorKind::NotFound => Err(SensorFault::NoDevice {
                sensor: self.id.clone(),
                bus: self.root.display().to_string(),
            }),
            Err(e) => Err(SensorFault::Io {
                path: self.slave.display().to_string(),
                message: e.to_string(),
            }),
        }
    }
}

impl Sensor for W1Sensor {
    fn id(&self) -> &str {
        &self.id
    }

    fn read(&mut self) -> Result<RawReading, SensorFault> {
        let attempts = 1 + CRC_RETRIES;
        let mut last_bytes = String::new();
        for attempt in 1..=attempts {
            match self.read_once()? {
                Ok(slave) => {
                    return Ok(RawReading {
                        celsius: slave.celsius(),
                        scratchpad: Some(slave.scratchpad),
                        sensor_id: self.id.clone(),
                    })
                }
                Err(W1ParseError::CrcNo { scratchpad }) => {
                    last_bytes = hex_bytes(&scratchpad);
                    log::debug!(
                        "sensor {}: CRC mismatch on read {attempt} of {attempts} ({last_bytes})",
                        self.id
                    );
                }
                Err(W1ParseError::Malformed { reason }) => {
                    return Err(SensorFault::Garbled {
                        path: self.slave.display().to_string(),
                        reason,
                    })
                }
                Err(other) => {
                    return Err(SensorFault::Io {
                        path: self.slave.display().to_string(),
                        message: other.to_string(),
                    })
                }
            }
        }
        Err(SensorFault::CrcMismatch {
            sensor: self.id.clone(),
            attempts,
            bytes: last_bytes,
        })
    }
}
