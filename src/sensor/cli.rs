//! Subcommand `sensor scan|read [--config FILE | --w1-root DIR | --gpio CHIP:LINE]`.
//!
//! `scan` lists the DS18B20s it finds, one id a line. `read` prints each
//! sensor's temperature (`28-0316a2797aff 23.125 °C`); a reading the
//! classifier rejects is printed on stderr with the fault's kind and the
//! command exits 1. A standalone read is a first reading, so a sensor still
//! showing its 85 °C power-on value is rejected. Without a flag the kernel's
//! w1 tree at `/sys/bus/w1/devices` is used.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{CliError, CmdResult};
use crate::config::{Config, SensorBackend, SensorConfig, Units};

use super::hal::{open_gpio_bus, HalSensor};
use super::simulated::{Chamber, ChamberParams, SIMULATED_ID};
use super::{w1, Classifier, RawReading, Sensor, SensorFault};

enum Action {
    Scan,
    Read,
}

/// `kasa-thermostat sensor`.
pub fn sensor(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut action = None;
    let mut sources: Vec<(&'static str, Source)> = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if action.is_none() => {
                action = Some(match v.to_str() {
                    Some("scan") => Action::Scan,
                    Some("read") => Action::Read,
                    _ => {
                        return Err(CliError::Usage(format!(
                            "sensor: unknown action {v:?}, expected scan or read"
                        )))
                    }
                })
            }
            Long("config") => sources.push(("--config", Source::Config(parser.value()?.into()))),
            Long("w1-root") => sources.push(("--w1-root", Source::W1(parser.value()?.into()))),
            Long("gpio") => {
                let text: String = crate::cli::parse_flag(parser, "--gpio")?;
                let (chip, line) = parse_gpio(&text).ok_or_else(|| {
                    CliError::Usage(format!(
                        "--gpio {text:?}: expected CHIP:LINE, e.g. gpiochip0:4 or /dev/gpiochip0:4"
                    ))
                })?;
                sources.push(("--gpio", Source::Gpio(chip, line)))
            }
            Short('h') | Long("help") => {
                println!(
                    "kasa-thermostat sensor scan|read [--config FILE | --w1-root DIR | --gpio CHIP:LINE]"
                );
                return Ok(ExitCode::SUCCESS);
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let action = action.ok_or_else(|| CliError::Usage("sensor: scan or read?".into()))?;
    if sources.len() > 1 {
        let names: Vec<&str> = sources.iter().map(|(n, _)| *n).collect();
        return Err(CliError::Usage(format!(
            "sensor: give only one of {}",
            names.join(", ")
        )));
    }
    let (cfg, units) = match sources.pop().map(|(_, s)| s) {
        None => (SensorConfig::default(), Units::C),
        Some(Source::Config(path)) => {
            let config = Config::load(&path).map_err(CliError::failed)?;
            (config.sensor, config.units)
        }
        Some(Source::W1(root)) => (
            SensorConfig {
                backend: SensorBackend::W1,
                w1_root: root,
                ..SensorConfig::default()
            },
            Units::C,
        ),
        Some(Source::Gpio(chip, line)) => (
            SensorConfig {
                backend: SensorBackend::Hal,
                gpio_chip: chip,
                gpio_line: line,
                ..SensorConfig::default()
            },
            Units::C,
        ),
    };
    match action {
        Action::Scan => scan(&cfg),
        Action::Read => read(&cfg, units),
    }
}

enum Source {
    Config(PathBuf),
    W1(PathBuf),
    Gpio(PathBuf, u32),
}

/// `gpiochip0:4`, `/dev/gpiochip0:4` or `0:4`.
fn parse_gpio(text: &str) -> Option<(PathBuf, u32)> {
    let (chip, line) = text.rsplit_once(':')?;
    let line = line.parse().ok()?;
    let chip = if chip.is_empty() {
        return None;
    } else if chip.contains('/') {
        PathBuf::from(chip)
    } else if chip.bytes().all(|b| b.is_ascii_digit()) {
        PathBuf::from(format!("/dev/gpiochip{chip}"))
    } else {
        PathBuf::from("/dev").join(chip)
    };
    Some((chip, line))
}

fn scan_ids(cfg: &SensorConfig) -> Result<(String, Vec<String>), CliError> {
    match cfg.backend {
        SensorBackend::W1 => Ok((
            cfg.w1_root.display().to_string(),
            w1::scan(&cfg.w1_root).map_err(CliError::failed)?,
        )),
        SensorBackend::Hal => Ok((
            format!("{}:{}", cfg.gpio_chip.display(), cfg.gpio_line),
            super::hal::scan_gpio(&cfg.gpio_chip, cfg.gpio_line).map_err(CliError::failed)?,
        )),
        SensorBackend::Simulated => Ok(("simulated".into(), vec![SIMULATED_ID.to_string()])),
    }
}

fn scan(cfg: &SensorConfig) -> CmdResult {
    let (bus, ids) = scan_ids(cfg)?;
    if ids.is_empty() {
        return Err(CliError::failed(SensorFault::NoDevice {
            sensor: "any DS18B20".into(),
            bus,
        }));
    }
    for id in ids {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn read(cfg: &SensorConfig, units: Units) -> CmdResult {
    let ids = match &cfg.id {
        Some(id) => vec![id.clone()],
        None => {
            let (bus, ids) = scan_ids(cfg)?;
            if ids.is_empty() {
                return Err(CliError::failed(SensorFault::NoDevice {
                    sensor: "any DS18B20".into(),
                    bus,
                }));
            }
            ids
        }
    };
    let results = read_raw(cfg, &ids)?;
    let offset_c = units.delta_to_c(cfg.offset);
    let max_step_c = units.delta_to_c(cfg.max_step);
    let mut failed = false;
    for (id, result) in ids.iter().zip(results) {
        match result.and_then(|raw| Classifier::new(offset_c, max_step_c).classify(raw)) {
            Ok(reading) => println!(
                "{id} {:.3} {}",
                units.from_c(reading.celsius),
                units.symbol()
            ),
            Err(fault) => {
                failed = true;
                eprintln!("kasa-thermostat: sensor {id}: {}: {fault}", fault.kind());
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One raw read of each sensor in `ids`.
fn read_raw(
    cfg: &SensorConfig,
    ids: &[String],
) -> Result<Vec<Result<RawReading, SensorFault>>, CliError> {
    match cfg.backend {
        SensorBackend::W1 => Ok(ids
            .iter()
            .map(|id| w1::W1Sensor::new(&cfg.w1_root, id).read())
            .collect()),
        SensorBackend::Hal => {
            let (mut wire, bus) =
                open_gpio_bus(&cfg.gpio_chip, cfg.gpio_line).map_err(CliError::failed)?;
            let mut delay = super::delay::SpinDelay;
            let mut out = Vec::new();
            for id in ids {
                let mut sensor =
                    HalSensor::new(wire, delay, &bus, Some(id), cfg.resolution_bits, true)
                        .map_err(CliError::failed)?;
                out.push(sensor.read());
                (wire, delay) = sensor.into_parts();
            }
            Ok(out)
        }
        SensorBackend::Simulated => {
            let chamber = Chamber::new(
                ChamberParams::default(),
                1.0,
                Box::new(|| false),
                Box::new(|| false),
            );
            let mut sensor = chamber.sensor();
            Ok(ids.iter().map(|_| sensor.read()).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpio_flag_forms() {
        assert_eq!(
            parse_gpio("gpiochip0:4"),
            Some((PathBuf::from("/dev/gpiochip0"), 4))
        );
        assert_eq!(
            parse_gpio("/dev/gpiochip1:17"),
            Some((PathBuf::from("/dev/gpiochip1"), 17))
        );
        assert_eq!(
            parse_gpio("0:4"),
            Some((PathBuf::from("/dev/gpiochip0"), 4))
        );
        assert_eq!(parse_gpio("gpiochip0"), None);
        assert_eq!(parse_gpio(":4"), None);
        assert_eq!(parse_gpio("gpiochip0:x"), None);
    }
}
