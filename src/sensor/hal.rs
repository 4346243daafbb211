//! The `hal` backend: 1-wire bit-banged on a GPIO line, the way docs/design.md §8 asks.
//!
//! The line is requested from the character device (`/dev/gpiochip0`) as an
//! open-drain output through gpio-cdev, wrapped as linux-embedded-hal 0.3's
//! `CdevPin`, which implements the embedded-hal 0.2 pin traits that the
//! one-wire-bus and ds18b20 crates are written against (0.4+ implements
//! embedded-hal 1.0 and would need embedded-hal-compat in between).
//!
//! [`HalSensor`] is generic over the pin and the delay, so the same read path
//! (search, resolution, CRC retries) runs on the `virtual_bus` in
//! tests. The ds18b20 crate is used for addressing, configuration and the
//! conversion command; the scratchpad is read with one-wire-bus directly and
//! decoded here, because the crate's decoding is wrong below 0 °C and at
//! 9–11 bits, and its CRC error would hide the bytes we want to log.
//!
//! Timing: a userspace GPIO call costs a few microseconds and the scheduler
//! can preempt us mid-slot. During a 1-wire transaction the thread asks for
//! `SCHED_FIFO` when it is permitted (CAP_SYS_NICE or `LimitRTPRIO=` in the
//! unit) and says once, plainly, when it is not; CRC retries absorb the
//! occasional disturbed slot either way.

use std::fmt::Debug;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ds18b20::{Ds18b20, Resolution};
use embedded_hal::blocking::delay::{DelayMs, DelayUs};
use embedded_hal::digital::v2::{InputPin, OutputPin};
use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;
use one_wire_bus::crc::crc8;
use one_wire_bus::{Address, OneWire, OneWireError};

use super::backend::{pick_one, RawReading, Sensor};
use super::delay::SpinDelay;
use super::ds18b20::{config_for_resolution, decode_celsius, CRC_RETRIES, FAMILY_DS18B20};
use super::fault::hex_bytes;
use super::fault::SensorError;
use crate::msg::SensorFault;

/// Formats a ROM code as the kernel names the device: family, `-`, the
/// 48-bit serial in hex (`28-0316a2797aff`); the CRC byte is left out.
pub fn format_rom_id(rom: u64) -> String {
    format!("{:02x}-{:012x}", rom & 0xFF, (rom >> 8) & 0xFFFF_FFFF_FFFF)
}

/// Parses `28-0316a2797aff` back into a ROM code, computing the CRC byte.
pub fn parse_rom_id(id: &str) -> Option<u64> {
    let (family, serial) = id.split_once('-')?;
    if family.len() != 2 || serial.len() != 12 {
        return None;
    }
    let family = u64::from(u8::from_str_radix(family, 16).ok()?);
    let serial = u64::from_str_radix(serial, 16).ok()?;
    let without_crc = family | serial << 8;
    let crc = u64::from(crc8(&without_crc.to_le_bytes()[..7]));
    Some(without_crc | crc << 56)
}

fn map_err<E: Debug>(bus: &str, err: OneWireError<E>) -> SensorFault {
    match err {
        OneWireError::BusNotHigh => SensorFault::BusStuckLow {
            bus: bus.to_string(),
        },
        OneWireError::PinError(e) => SensorFault::Io {
            path: bus.to_string(),
            message: format!("GPIO error: {e:?}"),
        },
        OneWireError::UnexpectedResponse => SensorFault::Io {
            path: bus.to_string(),
            message: "inconsistent answer during the ROM search (noise, or a sensor added or \
                      removed meanwhile)"
                .to_string(),
        },
        OneWireError::CrcMismatch => SensorFault::Io {
            path: bus.to_string(),
            message: "a ROM code found by the search fails its CRC (noise on the line)".into(),
        },
        OneWireError::FamilyCodeMismatch => SensorFault::Io {
            path: bus.to_string(),
            message: "the device is not a DS18B20 (family code is not 28)".into(),
        },
        OneWireError::Timeout => SensorFault::Io {
            path: bus.to_string(),
            message: "the device did not finish in time".into(),
        },
    }
}

/// Finds every DS18B20 on the line, as ids (`28-0316a2797aff`), sorted.
pub fn search<P, E, D>(
    wire: &mut OneWire<P>,
    delay: &mut D,
    bus: &str,
) -> Result<Vec<String>, SensorFault>
where
    P: InputPin<Error = E> + OutputPin<Error = E>,
    E: Debug,
    D: DelayUs<u16>,
{
    let mut ids = Vec::new();
    for found in wire.devices(false, delay) {
        let address = found.map_err(|e| map_err(bus, e))?;
        if address.family_code() == FAMILY_DS18B20 {
            ids.push(format_rom_id(address.0));
        }
    }
    ids.sort();
    Ok(ids)
}

/// The GPIO character device line `chip:line`, opened as a 1-wire master.
pub(crate) fn open_gpio_bus(
    chip: &Path,
    line: u32,
) -> Result<(OneWire<CdevPin>, String), SensorError> {
    let gpio_err = |source: Box<dyn std::error::Error + Send + Sync>| SensorError::Gpio {
        chip: chip.display().to_string(),
        line,
        source,
    };
    let mut gpio = Chip::new(chip).map_err(|e| gpio_err(Box::new(e)))?;
    let handle = gpio
        .get_line(line)
        .and_then(|l| {
            l.request(
                LineRequestFlags::OUTPUT | LineRequestFlags::OPEN_DRAIN,
                1,
                "kasa-thermostat",
            )
        })
        .map_err(|e| gpio_err(Box::new(e)))?;
    let pin = CdevPin::new(handle).map_err(|e| gpio_err(Box::new(e)))?;
    let bus = format!("{}:{line}", chip.display());
    let wire = OneWire::new(pin).map_err(|e| SensorError::Fault(map_err(&bus, e)))?;
    Ok((wire, bus))
}

/// Lists the DS18B20s on a GPIO line.
pub(crate) fn scan_gpio(chip: &Path, line: u32) -> Result<Vec<String>, SensorError> {
    let (mut wire, bus) = open_gpio_bus(chip, line)?;
    let _rt = RealtimeGuard::enter(true);
    Ok(search(&mut wire, &mut SpinDelay, &bus)?)
}

/// Opens the sensor `id` (or the only one) on a GPIO line at `bits` resolution.
pub(crate) fn open_gpio(
    chip: &Path,
    line: u32,
    id: Option<&str>,
    bits: u8,
) -> Result<HalSensor<CdevPin, SpinDelay>, SensorError> {
    let (wire, bus) = open_gpio_bus(chip, line)?;
    HalSensor::new(wire, SpinDelay, &bus, id, bits, true)
}

/// One DS18B20 on a 1-wire line driven through embedded-hal 0.2 traits.
pub struct HalSensor<P, D> {
    wire: OneWire<P>,
    delay: D,
    device: Ds18b20,
    id: String,
    bus: String,
    resolution: Resolution,
    config: u8,
    configured: bool,
    realtime: bool,
}

impl<P, E, D> HalSensor<P, D>
where
    P: InputPin<Error = E> + OutputPin<Error = E>,
    E: Debug,
    D: DelayUs<u16> + DelayMs<u16>,
{
    /// The sensor `id` on `wire` (or, with `None`, the only DS18B20 the ROM
    /// search finds), read at `bits` resolution. `realtime` asks for
    /// `SCHED_FIFO` during transactions (real GPIO only). A named sensor need
    /// not be present yet: reads report it missing until it is.
    pub fn new(
        mut wire: OneWire<P>,
        mut delay: D,
        bus: &str,
        id: Option<&str>,
        bits: u8,
        realtime: bool,
    ) -> Result<HalSensor<P, D>, SensorError> {
        let (resolution, config) = match (bits, config_for_resolution(bits)) {
            (9, Some(c)) => (Resolution::Bits9, c),
            (10, Some(c)) => (Resolution::Bits10, c),
            (11, Some(c)) => (Resolution::Bits11, c),
            (12, Some(c)) => (Resolution::Bits12, c),
            _ => return Err(SensorError::BadResolution { bits }),
        };
        let id = match id {
            Some(id) => id.to_string(),
            None => {
                let _rt = RealtimeGuard::enter(realtime);
                pick_one(bus, search(&mut wire, &mut delay, bus)?)?
            }
        };
        let rom = parse_rom_id(&id).ok_or_else(|| SensorError::BadId { id: id.clone() })?;
        let device =
            Ds18b20::new::<E>(Address(rom)).map_err(|_| SensorError::BadId { id: id.clone() })?;
        Ok(HalSensor {
            wire,
            delay,
            device,
            id,
            bus: bus.to_string(),
            resolution,
            config,
            configured: false,
            realtime,
        })
    }

    /// Gives back the line and the delay.
    pub fn into_parts(self) -> (OneWire<P>, D) {
        (self.wire, self.delay)
    }

    fn fault(&self, err: OneWireError<E>) -> SensorFault {
        map_err(&self.bus, err)
    }

    /// Reset; a missing presence pulse is a fault.
    fn reset(&mut self) -> Result<(), SensorFault> {
        match self.wire.reset(&mut self.delay) {
            Ok(true) => Ok(()),
            Ok(false) => Err(SensorFault::NoPresence {
                bus: self.bus.clone(),
            }),
            Err(e) => Err(self.fault(e)),
        }
    }

    /// One scratchpad read, CRC unchecked.
    fn read_scratchpad_once(&mut self) -> Result<[u8; 9], SensorFault> {
        self.reset()?;
        let mut sp = [0u8; 9];
        let d = &mut self.delay;
        self.wire
            .match_address(self.device.address(), d)
            .and_then(|_| self.wire.write_byte(ds18b20::commands::READ_SCRATCHPAD, d))
            .and_then(|_| self.wire.read_bytes(&mut sp, d))
            .map_err(|e| map_err(&self.bus, e))?;
        Ok(sp)
    }

    /// Reads the scratchpad, retrying CRC mismatches up to [`CRC_RETRIES`].
    fn read_scratchpad(&mut self) -> Result<[u8; 9], SensorFault> {
        let attempts = 1 + CRC_RETRIES;
        let mut last = [0u8; 9];
        for attempt in 1..=attempts {
            last = self.read_scratchpad_once()?;
            if crc8(&last) == 0 {
                return Ok(last);
            }
            log::debug!(
                "sensor {}: CRC mismatch on read {attempt} of {attempts} ({})",
                self.id,
                hex_bytes(&last)
            );
        }
        // All ones: nobody answered the match. Say whether the sensor is on
        // the line at all, which is the more useful message.
        if last.iter().all(|b| *b == 0xFF) {
            if let Ok(found) = search(&mut self.wire, &mut self.delay, &self.bus) {
                if !found.contains(&self.id) {
                    return Err(SensorFault::NoDevice {
                        sensor: self.id.clone(),
                        bus: self.bus.clone(),
                    });
                }
            }
        }
        Err(SensorFault::CrcMismatch {
            sensor: self.id.clone(),
            attempts,
            bytes: hex_bytes(&last),
        })
    }

    /// Writes the resolution, keeping the alarm bytes (TH, TL) as they are.
    /// It is not copied to EEPROM (wear); a sensor that power-cycles comes
    /// back at its EEPROM resolution, is noticed, and is configured again.
    fn configure(&mut self) -> Result<(), SensorFault> {
        let sp = self.read_scratchpad()?;
        let (th, tl) = (sp[2] as i8, sp[3] as i8);
        self.device
            .set_config(tl, th, self.resolution, &mut self.wire, &mut self.delay)
            .map_err(|e| map_err(&self.bus, e))?;
        self.configured = true;
        Ok(())
    }
}

impl<P, E, D> Sensor for HalSensor<P, D>
where
    P: InputPin<Error = E> + OutputPin<Error = E> + Send,
    E: Debug,
    D: DelayUs<u16> + DelayMs<u16> + Send,
{
    fn id(&self) -> &str {
        &self.id
    }

    fn read(&mut self) -> Result<RawReading, SensorFault> {
        {
            let _rt = RealtimeGuard::enter(self.realtime);
            self.reset()?;
            if !self.configured {
                self.configure()?;
            }
            self.device
                .start_temp_measurement(&mut self.wire, &mut self.delay)
                .map_err(|e| map_err(&self.bus, e))?;
        }
        // The conversion wait sleeps (DelayMs); no real-time priority needed.
        self.resolution.delay_for_measurement_time(&mut self.delay);
        let sp = {
            let _rt = RealtimeGuard::enter(self.realtime);
            self.read_scratchpad()?
        };
        if sp[4] != self.config && sp.iter().any(|b| *b != 0) {
            log::info!(
                "sensor {}: resolution register is {:#04x}, not {:#04x} (it power-cycled?); \
                 configuring it again",
                self.id,
                sp[4],
                self.config
            );
            self.configured = false;
        }
        Ok(RawReading {
            celsius: decode_celsius(&sp),
            scratchpad: Some(sp),
            sensor_id: self.id.clone(),
        })
    }
}

static REALTIME_DENIED: AtomicBool = AtomicBool::new(false);

/// `SCHED_FIFO` for the calling thread while it lives, when permitted.
struct RealtimeGuard {
    restore: Option<(libc::c_int, libc::sched_param)>,
}

/// The `SCHED_FIFO` priority asked for: above ordinary real-time helpers,
/// below the kernel's own threads (which sit at 50 and 99).
const RT_PRIORITY: libc::c_int = 40;

impl RealtimeGuard {
    fn enter(wanted: bool) -> RealtimeGuard {
        if !wanted || REALTIME_DENIED.load(Ordering::Relaxed) {
            return RealtimeGuard { restore: None };
        }
        // SAFETY: plain syscalls on the calling thread (pid 0) with
        // initialised arguments.
        unsafe {
            let old_policy = libc::sched_getscheduler(0);
            let mut old_param: libc::sched_param = std::mem::zeroed();
            if old_policy < 0 || libc::sched_getparam(0, &mut old_param) != 0 {
                return RealtimeGuard { restore: None };
            }
            // Zeroed then set: musl's sched_param has extra fields.
            let mut param: libc::sched_param = std::mem::zeroed();
            param.sched_priority = RT_PRIORITY;
            if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 {
                return RealtimeGuard {
                    restore: Some((old_policy, old_param)),
                };
            }
        }
        let err = std::io::Error::last_os_error();
        if !REALTIME_DENIED.swap(true, Ordering::Relaxed) {
            log::info!(
                "1-wire: real-time priority not permitted ({err}); reading at normal priority, \
                 CRC retries cover disturbed slots (grant it with LimitRTPRIO={RT_PRIORITY} or \
                 CAP_SYS_NICE)"
            );
        }
        RealtimeGuard { restore: None }
    }
}

impl Drop for RealtimeGuard {
    fn drop(&mut self) {
        if let Some((policy, param)) = self.restore.take() {
            // SAFETY: as in `enter`.
            unsafe {
                libc::sched_setscheduler(0, policy, &param);
            }
        }
    }
}

/// One 1-wire line with several sensors on it, read in turn from one thread
/// (the sensor thread): each [`LineProbe`] borrows the line for its read.
/// A line can be requested from the kernel once only, so the product and
/// the chamber sensor share this one.
pub(crate) struct SharedLine<P, D> {
    parts: Option<(OneWire<P>, D)>,
    bus: String,
    bits: u8,
    realtime: bool,
}

/// One sensor on a [`SharedLine`].
pub(crate) struct LineProbe<P, D> {
    line: std::sync::Arc<std::sync::Mutex<SharedLine<P, D>>>,
    id: String,
}

impl<P, E, D> Sensor for LineProbe<P, D>
where
    P: InputPin<Error = E> + OutputPin<Error = E> + Send,
    E: Debug,
    D: DelayUs<u16> + DelayMs<u16> + Send,
{
    fn id(&self) -> &str {
        &self.id
    }

    fn read(&mut self) -> Result<RawReading, SensorFault> {
        // A poisoned lock means a read panicked; the line is still usable.
        let mut line = self
            .line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bus = line.bus.clone();
        let Some((wire, delay)) = line.parts.take() else {
            return Err(SensorFault::Io {
                path: bus,
                message: "the 1-wire line was lost by an earlier failed read".into(),
            });
        };
        // The id and resolution were checked at open, so this cannot fail
        // (and give up the line); a failure is reported, not unwrapped.
        match HalSensor::new(wire, delay, &bus, Some(&self.id), line.bits, line.realtime) {
            Ok(mut sensor) => {
                let result = sensor.read();
                line.parts = Some(sensor.into_parts());
                result
            }
            Err(e) => Err(SensorFault::Io {
                path: bus,
                message: e.to_string(),
            }),
        }
    }
}

/// Opens `ids` on one GPIO line at `bits` resolution: one sensor each, all
/// sharing the line (read them from one thread).
pub(crate) fn open_gpio_probes(
    chip: &Path,
    line: u32,
    ids: &[&str],
    bits: u8,
) -> Result<Vec<Box<dyn Sensor>>, SensorError> {
    if config_for_resolution(bits).is_none() {
        return Err(SensorError::BadResolution { bits });
    }
    for id in ids {
        match parse_rom_id(id) {
            Some(rom) if rom & 0xFF == u64::from(FAMILY_DS18B20) => {}
            _ => return Err(SensorError::BadId { id: id.to_string() }),
        }
    }
    let (wire, bus) = open_gpio_bus(chip, line)?;
    let shared = std::sync::Arc::new(std::sync::Mutex::new(SharedLine {
        parts: Some((wire, SpinDelay)),
        bus,
        bits,
        realtime: true,
    }));
    Ok(ids
        .iter()
        .map(|id| {
            Box::new(LineProbe {
                line: shared.clone(),
                id: id.to_string(),
            }) as Box<dyn Sensor>
        })
        .collect())
}

#[cfg(any(test, feature = "testkit"))]
/// The same over any line (the virtual bus in tests).
pub fn probes_on<P, E, D>(
    wire: OneWire<P>,
    delay: D,
    bus: &str,
    ids: &[&str],
    bits: u8,
) -> Vec<Box<dyn Sensor>>
where
    P: InputPin<Error = E> + OutputPin<Error = E> + Send + 'static,
    E: Debug + 'static,
    D: DelayUs<u16> + DelayMs<u16> + Send + 'static,
{
    let shared = std::sync::Arc::new(std::sync::Mutex::new(SharedLine {
        parts: Some((wire, delay)),
        bus: bus.to_string(),
        bits,
        realtime: false,
    }));
    ids.iter()
        .map(|id| {
            Box::new(LineProbe {
                line: shared.clone(),
                id: id.to_string(),
            }) as Box<dyn Sensor>
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rom_ids_round_trip_with_the_kernel_format() {
        let rom = parse_rom_id("28-0316a2797aff").unwrap();
        assert_eq!(rom & 0xFF, 0x28);
        assert_eq!(format_rom_id(rom), "28-0316a2797aff");
        assert_eq!(crc8(&rom.to_le_bytes()), 0, "the CRC byte is valid");
        assert_eq!(parse_rom_id("28-0316a2797af"), None);
        assert_eq!(parse_rom_id("280316a2797aff"), None);
        assert_eq!(parse_rom_id("28-0316a2797xff"), None);
    }
}
