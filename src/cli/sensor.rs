//! `sensor scan|read [--config FILE | --w1-root DIR | --gpio CHIP:LINE]`:
//! find the DS18B20s on a bus, or read each once through the same fault
//! classification as the service. Without a source, the kernel's w1 tree at
//! its default root is used.

use std::process::ExitCode;

use super::args::{SensorAction, SensorArgs};
use super::error::{CliError, CmdResult};
use crate::config::Config;
use crate::sensor::hal::{open_gpio_bus, HalSensor};
use crate::sensor::simulated::{Chamber, ChamberParams, SIMULATED_ID};
use crate::sensor::{w1, Backend, Classifier, RawReading, Sensor, SensorFault, SensorOptions};
use crate::units::Units;

/// The sensor settings the subcommand works with.
struct Setup {
    options: SensorOptions,
    units: Units,
    offset_c: f64,
    max_step_c: f64,
}

/// `kasa-thermostat sensor ...`.
pub(crate) fn sensor(a: SensorArgs) -> CmdResult {
    let default = |options| Setup {
        options,
        units: Units::C,
        offset_c: 0.0,
        max_step_c: 5.0,
    };
    let setup = if let Some(path) = &a.config {
        let config = Config::load(path).map_err(CliError::failed)?;
        Setup {
            options: config.sensor.options.clone(),
            units: config.units,
            offset_c: config.sensor.offset_c,
            max_step_c: config.sensor.max_step_c,
        }
    } else if let Some(root) = a.w1_root {
        default(SensorOptions {
            backend: Backend::W1,
            w1_root: root,
            ..SensorOptions::default()
        })
    } else if let Some((chip, line)) = a.gpio {
        default(SensorOptions {
            backend: Backend::Hal,
            gpio_chip: chip,
            gpio_line: line,
            ..SensorOptions::default()
        })
    } else {
        default(SensorOptions::default())
    };
    match a.action {
        SensorAction::Scan => scan(&setup.options),
        SensorAction::Read => read(&setup),
    }
}

fn scan_ids(cfg: &SensorOptions) -> Result<(String, Vec<String>), CliError> {
    match cfg.backend {
        Backend::W1 => Ok((
            cfg.w1_root.display().to_string(),
            w1::scan(&cfg.w1_root).map_err(CliError::failed)?,
        )),
        Backend::Hal => Ok((
            format!("{}:{}", cfg.gpio_chip.display(), cfg.gpio_line),
            crate::sensor::hal::scan_gpio(&cfg.gpio_chip, cfg.gpio_line)
                .map_err(CliError::failed)?,
        )),
        Backend::Simulated => Ok(("simulated".into(), vec![SIMULATED_ID.to_string()])),
    }
}

fn none_found(bus: String) -> CliError {
    CliError::failed(SensorFault::NoDevice {
        sensor: "any DS18B20".into(),
        bus,
    })
}

fn scan(cfg: &SensorOptions) -> CmdResult {
    let (bus, ids) = scan_ids(cfg)?;
    if ids.is_empty() {
        return Err(none_found(bus));
    }
    for id in ids {
        outln!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn read(setup: &Setup) -> CmdResult {
    let cfg = &setup.options;
    let ids = match &cfg.id {
        Some(id) => vec![id.clone()],
        None => {
            let (bus, ids) = scan_ids(cfg)?;
            if ids.is_empty() {
                return Err(none_found(bus));
            }
            ids
        }
    };
    let results = read_raw(cfg, &ids)?;
    let units = setup.units;
    let mut failed = false;
    for (id, result) in ids.iter().zip(results) {
        let mut classifier = Classifier::new(setup.offset_c, setup.max_step_c);
        match result.and_then(|raw| classifier.classify(raw)) {
            Ok(reading) => outln!(
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

fn read_raw(
    cfg: &SensorOptions,
    ids: &[String],
) -> Result<Vec<Result<RawReading, SensorFault>>, CliError> {
    match cfg.backend {
        Backend::W1 => Ok(ids
            .iter()
            .map(|id| w1::W1Sensor::new(&cfg.w1_root, id).read())
            .collect()),
        Backend::Hal => {
            let (mut wire, bus) =
                open_gpio_bus(&cfg.gpio_chip, cfg.gpio_line).map_err(CliError::failed)?;
            let mut delay = crate::sensor::delay::SpinDelay;
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
        Backend::Simulated => {
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
