//! The `w1` backend: the kernel's w1-gpio driver (`dtoverlay=w1-gpio`) does
//! the 1-wire timing and exposes each sensor as `<w1_root>/<id>/w1_slave`.
//!
//! The file has two lines (DESIGN §6):
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

use super::fault::hex_bytes;
use super::{RawReading, Sensor, SensorError, SensorFault, CRC_RETRIES};

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

fn parse_bytes(words: &[&str], line: &str) -> Result<[u8; 9], W1ParseError> {
    if words.len() < 9 {
        return Err(malformed(format!("fewer than 9 bytes in {line:?}")));
    }
    let mut out = [0u8; 9];
    for (slot, word) in out.iter_mut().zip(words) {
        *slot = u8::from_str_radix(word, 16)
            .map_err(|_| malformed(format!("{word:?} is not a hex byte in {line:?}")))?;
    }
    Ok(out)
}

/// Parses the text of a `w1_slave` file.
pub fn parse_w1_slave(text: &str) -> Result<W1Slave, W1ParseError> {
    if text.trim().is_empty() {
        return Err(W1ParseError::Empty);
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    let (bytes_part, crc_part) = first
        .split_once(':')
        .ok_or_else(|| malformed(format!("no `: crc=` in {first:?}")))?;
    let words: Vec<&str> = bytes_part.split_whitespace().collect();
    let scratchpad = parse_bytes(&words, first)?;
    let verdict = crc_part.split_whitespace().last().unwrap_or_default();
    match verdict {
        "YES" => {}
        "NO" => return Err(W1ParseError::CrcNo { scratchpad }),
        other => return Err(malformed(format!("CRC verdict {other:?}, not YES or NO"))),
    }
    let second = lines
        .next()
        .ok_or_else(|| malformed("no second line with t="))?;
    let t = second
        .split_whitespace()
        .find_map(|w| w.strip_prefix("t="))
        .ok_or_else(|| malformed(format!("no t= in {second:?}")))?;
    let millidegrees = t
        .parse::<i32>()
        .map_err(|_| malformed(format!("t={t:?} is not an integer")))?;
    Ok(W1Slave {
        scratchpad,
        millidegrees,
    })
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
            None => super::pick_one(&root.display().to_string(), scan(root)?)?,
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
