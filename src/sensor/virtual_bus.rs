//! A virtual 1-wire bus: an open-drain line with a virtual clock and simulated
//! DS18B20s that answer at the slot level, so the `hal` read path (the real
//! one-wire-bus and ds18b20 crates, unchanged) runs in tests without hardware
//! and without sleeping.
//!
//! The master's side is a [`VirtualPin`] (embedded-hal 0.2 `InputPin` +
//! `OutputPin`) and a [`VirtualDelay`] (`DelayUs<u16>`, `DelayMs<u16>`) that
//! advances the clock instead of waiting. Each pin call can also cost
//! virtual time ([`VirtualBus::set_latency`]): that models the time a Linux
//! userspace GPIO call takes, and shows how much of it the protocol tolerates.
//!
//! Timing model of a device (typical values of the DS18B20 datasheet):
//! * a low pulse of 480 µs or more is a reset; a present device waits 30 µs
//!   after the rising edge and then holds the line low for 120 µs (presence);
//! * a slot starts at the master's falling edge; a receiving device samples
//!   the line 30 µs later (so the bit is 1 if the master released before that);
//! * a transmitting device sends a 0 by holding the line low for
//!   [`DEVICE_HOLD_US`] from the falling edge, and a 1 by doing nothing.
//!
//! Devices implement reset/presence, Search ROM (0xF0, with the wired-AND of
//! several devices), Match ROM (0x55), Skip ROM (0xCC), Read ROM (0x33),
//! Convert T (0x44, taking 93.75–750 ms of virtual time by resolution, busy
//! bits while converting), Read Scratchpad (0xBE, with CRC8), Write
//! Scratchpad (0x4E), Copy Scratchpad (0x48), Recall E² (0xB8) and Read Power
//! Supply (0xB4).

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use embedded_hal::blocking::delay::{DelayMs, DelayUs};
use embedded_hal::digital::v2::{InputPin, OutputPin};
use one_wire_bus::crc::crc8;

use super::ds18b20::{conversion_time_us, resolution_from_config};

/// How long a device holds the line low to send a 0, µs (datasheet minimum
/// 15 µs; real parts hold 25–50 µs).
pub const DEVICE_HOLD_US: u64 = 30;
/// When a receiving device samples a write slot, µs after the falling edge.
pub(crate) const DEVICE_SAMPLE_US: u64 = 30;
/// The shortest low pulse a device takes as a reset, µs.
pub(crate) const RESET_MIN_US: u64 = 480;
/// Presence pulse: delay after the reset's rising edge and length, µs.
pub(crate) const PRESENCE_US: (u64, u64) = (30, 120);

const NS_PER_US: u64 = 1_000;

/// A fault of one simulated device's scratchpad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceFault {
    /// Works.
    #[default]
    None,
    /// The device reset and conversions never complete: the scratchpad keeps
    /// its power-on content (85 °C, byte 6 = 0x0C).
    PowerOn,
    /// Every scratchpad byte reads 0 (a valid CRC).
    AllZero,
    /// The temperature bytes read FF FF (-0.0625 °C) with a valid CRC.
    LostGround,
}

#[derive(Debug, Clone)]
enum DevState {
    /// Waits for a reset.
    Idle,
    RomCmd {
        byte: u8,
        n: u8,
    },
    MatchRom {
        rom: u64,
        n: u8,
    },
    Search {
        bit: u8,
        step: u8,
    },
    FuncCmd {
        byte: u8,
        n: u8,
    },
    Send {
        bits: Vec<bool>,
        pos: usize,
    },
    Recv {
        data: Vec<u8>,
        byte: u8,
        n: u8,
    },
    Busy {
        until: u64,
    },
}

#[derive(Debug, Clone)]
struct Device {
    rom: u64,
    celsius: f64,
    present: bool,
    fault: DeviceFault,
    corrupt_reads: u32,
    th: u8,
    tl: u8,
    config: u8,
    eeprom: (u8, u8, u8),
    temp: [u8; 2],
    byte6: u8,
    converting: Option<u64>,
    conversions: u32,
    state: DevState,
    receiving: bool,
}

impl Device {
    fn new(rom: u64, celsius: f64) -> Device {
        Device {
            rom,
            celsius,
            present: true,
            fault: DeviceFault::None,
            corrupt_reads: 0,
            th: 0x4B,
            tl: 0x46,
            config: 0x7F,
            eeprom: (0x4B, 0x46, 0x7F),
            temp: [0x50, 0x05],
            byte6: 0x0C,
            converting: None,
            conversions: 0,
            state: DevState::Idle,
            receiving: false,
        }
    }

    fn bits(&self) -> u8 {
        resolution_from_config(self.config).unwrap_or(12)
    }

    fn power_on_reset(&mut self) {
        self.temp = [0x50, 0x05];
        self.byte6 = 0x0C;
        (self.th, self.tl, self.config) = self.eeprom;
        self.converting = None;
    }

    /// Finishes a conversion whose time has come.
    fn settle(&mut self, now: u64) {
        if let Some(done) = self.converting {
            if now >= done {
                self.converting = None;
                if self.fault != DeviceFault::PowerOn {
                    let raw = (self.celsius * 16.0).round().clamp(-880.0, 2000.0) as i16;
                    let mask: i16 = match self.bits() {
                        9 => !7,
                        10 => !3,
                        11 => !1,
                        _ => !0,
                    };
                    let raw = raw & mask;
                    self.temp = raw.to_le_bytes();
                    self.byte6 = 0x10 - (raw & 0x0F) as u8;
                    self.conversions += 1;
                }
            }
        }
    }

    fn scratchpad(&mut self) -> [u8; 9] {
        let mut sp = [
            self.temp[0],
            self.temp[1],
            self.th,
            self.tl,
            self.config,
            0xFF,
            self.byte6,
            0x10,
            0,
        ];
        match self.fault {
            DeviceFault::AllZero => return [0; 9],
            DeviceFault::LostGround => {
                sp[0] = 0xFF;
                sp[1] = 0xFF;
            }
            DeviceFault::None | DeviceFault::PowerOn => {}
        }
        sp[8] = crc8(&sp[..8]);
        if self.corrupt_reads > 0 {
            sp[8] ^= 0x5A;
            if self.corrupt_reads != u32::MAX {
                self.corrupt_reads -= 1;
            }
        }
        sp
    }

    /// A falling edge at `now`: returns whether this device pulls the line
    /// low for this slot (it is sending a 0).
    fn on_fall(&mut self, now: u64) -> bool {
        self.receiving = false;
        if !self.present {
            return false;
        }
        let (bit, next) = match &mut self.state {
            DevState::Search { bit, step } if *step < 2 => {
                let b = self.rom >> *bit & 1 == 1;
                let send = if *step == 0 { b } else { !b };
                *step += 1;
                (send, None)
            }
            DevState::Send { bits, pos } => {
                let send = bits.get(*pos).copied().unwrap_or(true);
                *pos += 1;
                let done = *pos >= bits.len();
                (send, if done { Some(DevState::Idle) } else { None })
            }
            DevState::Busy { until } => (now >= *until, None),
            DevState::Idle => (true, None),
            _ => {
                self.receiving = true;
                (true, None)
            }
        };
        if let Some(next) = next {
            self.state = next;
        }
        !bit
    }

    /// The end of a slot in which this device was receiving.
    fn on_bit(&mut self, bit: bool, now: u64) {
        if !self.receiving || !self.present {
            return;
        }
        let b = u8::from(bit);
        let next = match &mut self.state {
            DevState::RomCmd { byte, n } => {
                *byte |= b << *n;
                *n += 1;
                if *n < 8 {
                    return;
                }
                match *byte {
                    0xF0 => DevState::Search { bit: 0, step: 0 },
                    0x55 => DevState::MatchRom { rom: 0, n: 0 },
                    0xCC => DevState::FuncCmd { byte: 0, n: 0 },
                    0x33 => DevState::Send {
                        bits: bits_of(&self.rom.to_le_bytes()),
                        pos: 0,
                    },
                    // Alarm search: no simulated device is in alarm.
                    _ => DevState::Idle,
                }
            }
            DevState::MatchRom { rom, n } => {
                *rom |= u64::from(b) << *n;
                *n += 1;
                if *n < 64 {
                    return;
                }
                if *rom == self.rom {
                    DevState::FuncCmd { byte: 0, n: 0 }
                } else {
                    DevState::Idle
                }
            }
            DevState::Search { bit: i, step } => {
                let mine = self.rom >> *i & 1 == 1;
                if bit != mine {
                    DevState::Idle
                } else if *i == 63 {
                    DevState::FuncCmd { byte: 0, n: 0 }
                } else {
                    *i += 1;
                    *step = 0;
                    return;
                }
            }
            DevState::FuncCmd { byte, n } => {
                *byte |= b << *n;
                *n += 1;
                if *n < 8 {
                    return;
                }
                let cmd = *byte;
                self.function(cmd, now)
            }
            DevState::Recv { data, byte, n } => {
                *byte |= b << *n;
                *n += 1;
                if *n < 8 {
                    return;
                }
                data.push(*byte);
                *byte = 0;
                *n = 0;
                if data.len() < 3 {
                    return;
                }
                self.th = data[0];
                self.tl = data[1];
                self.config = (data[2] & 0x60) | 0x1F;
                DevState::Idle
            }
            _ => return,
        };
        self.state = next;
    }

    fn function(&mut self, cmd: u8, now: u64) -> DevState {
        match cmd {
            0x44 => {
                let done = now + conversion_time_us(self.bits()) * NS_PER_US;
                self.converting = Some(done);
                DevState::Busy { until: done }
            }
            0xBE => {
                self.settle(now);
                let sp = self.scratchpad();
                DevState::Send {
                    bits: bits_of(&sp),
                    pos: 0,
                }
            }
            0x4E => DevState::Recv {
                data: Vec::new(),
                byte: 0,
                n: 0,
            },
            0x48 => {
                self.eeprom = (self.th, self.tl, self.config);
                DevState::Busy {
                    until: now + 10_000 * NS_PER_US,
                }
            }
            0xB8 => {
                (self.th, self.tl, self.config) = self.eeprom;
                DevState::Busy { until: now }
            }
            0xB4 => DevState::Send {
                bits: vec![true],
                pos: 0,
            },
            _ => DevState::Idle,
        }
    }
}

fn bits_of(bytes: &[u8]) -> Vec<bool> {
    bytes
        .iter()
        .flat_map(|byte| (0..8).map(move |i| byte >> i & 1 == 1))
        .collect()
}

#[derive(Debug, Default)]
struct BusState {
    now: u64,
    latency: u64,
    stuck_low: bool,
    master_low: bool,
    /// The master's falling edge, when the devices saw it as one.
    fall: Option<u64>,
    drives: Vec<(u64, u64)>,
    devices: Vec<Device>,
    pin_calls: u64,
}

impl BusState {
    fn line_low(&self, t: u64) -> bool {
        self.master_low || self.stuck_low || self.drives.iter().any(|(s, e)| *s <= t && t < *e)
    }

    fn call(&mut self) {
        self.now += self.latency;
        self.pin_calls += 1;
        let now = self.now;
        self.drives.retain(|(_, e)| *e > now);
    }

    fn set_low(&mut self) {
        self.call();
        if self.master_low {
            return;
        }
        let now = self.now;
        let edge = !self.line_low(now);
        self.master_low = true;
        self.fall = None;
        if !edge {
            return;
        }
        self.fall = Some(now);
        for dev in &mut self.devices {
            if dev.on_fall(now) {
                self.drives.push((now, now + DEVICE_HOLD_US * NS_PER_US));
            }
        }
    }

    fn set_high(&mut self) {
        self.call();
        if !self.master_low {
            return;
        }
        self.master_low = false;
        let Some(fall) = self.fall.take() else {
            return;
        };
        if self.stuck_low {
            return;
        }
        let now = self.now;
        let low = now - fall;
        if low >= RESET_MIN_US * NS_PER_US {
            let start = now + PRESENCE_US.0 * NS_PER_US;
            let end = start + PRESENCE_US.1 * NS_PER_US;
            for dev in &mut self.devices {
                dev.receiving = false;
                if dev.present {
                    dev.state = DevState::RomCmd { byte: 0, n: 0 };
                    self.drives.push((start, end));
                } else {
                    dev.state = DevState::Idle;
                }
            }
        } else {
            let bit = low <= DEVICE_SAMPLE_US * NS_PER_US;
            for dev in &mut self.devices {
                dev.on_bit(bit, now);
            }
        }
    }

    fn is_high(&mut self) -> bool {
        self.call();
        !self.line_low(self.now)
    }
}

/// The bus; clones share it. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct VirtualBus {
    state: Arc<Mutex<BusState>>,
}

impl VirtualBus {
    /// An empty bus, idle high (the pull-up), clock at 0.
    pub fn new() -> VirtualBus {
        VirtualBus::default()
    }

    fn lock(&self) -> MutexGuard<'_, BusState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn with_device<T>(&self, rom: u64, f: impl FnOnce(&mut Device) -> T) -> Option<T> {
        let mut state = self.lock();
        state.devices.iter_mut().find(|d| d.rom == rom).map(f)
    }

    /// Adds a DS18B20 with ROM code `rom` (see `hal::parse_rom_id`) at
    /// `celsius`. Its scratchpad starts at the power-on value, as a real one.
    pub fn add_device(&self, rom: u64, celsius: f64) {
        self.lock().devices.push(Device::new(rom, celsius));
    }

    /// The master's end of the line.
    pub fn pin(&self) -> VirtualPin {
        VirtualPin { bus: self.clone() }
    }

    /// A delay that advances the virtual clock.
    pub fn delay(&self) -> VirtualDelay {
        VirtualDelay { bus: self.clone() }
    }

    /// The virtual time since the bus was made.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.lock().now)
    }

    /// Virtual time each pin call costs before it takes effect.
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency.as_nanos().min(u128::from(u64::MAX)) as u64;
    }

    /// Holds the line low (a short to ground).
    pub fn set_stuck_low(&self, stuck: bool) {
        self.lock().stuck_low = stuck;
    }

    /// Sets the temperature the device measures at its next conversion.
    pub fn set_temperature(&self, rom: u64, celsius: f64) {
        self.with_device(rom, |d| d.celsius = celsius);
    }

    /// Connects or disconnects a device.
    pub fn set_present(&self, rom: u64, present: bool) {
        self.with_device(rom, |d| {
            d.present = present;
            d.state = DevState::Idle;
            if present {
                // Reconnecting powers it up again.
                d.power_on_reset();
            }
        });
    }

    /// Corrupts the CRC of the next `reads` scratchpad reads (`u32::MAX`: all).
    pub fn corrupt_crc(&self, rom: u64, reads: u32) {
        self.with_device(rom, |d| d.corrupt_reads = reads);
    }

    /// Sets a scratchpad fault. `PowerOn` also resets the scratchpad.
    pub fn set_fault(&self, rom: u64, fault: DeviceFault) {
        self.with_device(rom, |d| {
            d.fault = fault;
            if fault == DeviceFault::PowerOn {
                d.power_on_reset();
            }
        });
    }

    /// The device's resolution in bits (from its configuration register).
    pub fn resolution(&self, rom: u64) -> Option<u8> {
        self.with_device(rom, |d| d.bits())
    }

    /// How many conversions the device has completed.
    pub fn conversions(&self, rom: u64) -> Option<u32> {
        self.with_device(rom, |d| d.conversions)
    }
}

/// The master's open-drain pin on a [`VirtualBus`]: `set_high` releases the
/// line, `set_low` pulls it down, `is_high` reads the wired-AND of everyone.
#[derive(Debug, Clone)]
pub struct VirtualPin {
    bus: VirtualBus,
}

impl OutputPin for VirtualPin {
    type Error = Infallible;

    fn set_low(&mut self) -> Result<(), Infallible> {
        self.bus.lock().set_low();
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.bus.lock().set_high();
        Ok(())
    }
}

impl InputPin for VirtualPin {
    type Error = Infallible;

    fn is_high(&self) -> Result<bool, Infallible> {
        Ok(self.bus.lock().is_high())
    }

    fn is_low(&self) -> Result<bool, Infallible> {
        Ok(!self.bus.lock().is_high())
    }
}

/// Advances the bus's virtual clock instead of waiting.
#[derive(Debug, Clone)]
pub struct VirtualDelay {
    bus: VirtualBus,
}

impl VirtualDelay {
    fn advance(&mut self, ns: u64) {
        let mut state = self.bus.lock();
        state.now += ns;
    }
}

impl DelayUs<u16> for VirtualDelay {
    fn delay_us(&mut self, us: u16) {
        self.advance(u64::from(us) * NS_PER_US);
    }
}

impl DelayUs<u32> for VirtualDelay {
    fn delay_us(&mut self, us: u32) {
        self.advance(u64::from(us) * NS_PER_US);
    }
}

impl DelayMs<u16> for VirtualDelay {
    fn delay_ms(&mut self, ms: u16) {
        self.advance(u64::from(ms) * 1_000 * NS_PER_US);
    }
}

/// Whether a complete read (ROM search, resolution write, conversion, CRC
/// checked scratchpad) of a 21.5 °C sensor among two succeeds when every pin
/// call costs `latency`.
pub fn full_read_works_with_latency(latency: Duration) -> bool {
    use super::backend::Sensor;
    use super::hal::{parse_rom_id, HalSensor};

    let bus = VirtualBus::new();
    let (Some(a), Some(b)) = (
        parse_rom_id("28-0316a2797aff"),
        parse_rom_id("28-01144f3a8caa"),
    ) else {
        return false;
    };
    bus.add_device(a, 21.5);
    bus.add_device(b, -3.0);
    bus.set_latency(latency);
    let Ok(mut wire) = one_wire_bus::OneWire::new(bus.pin()) else {
        return false;
    };
    match super::hal::search(&mut wire, &mut bus.delay(), "virtual") {
        Ok(found) if found.len() == 2 => {}
        _ => return false,
    }
    let Ok(mut sensor) = HalSensor::new(
        wire,
        bus.delay(),
        "virtual",
        Some("28-0316a2797aff"),
        12,
        false,
    ) else {
        return false;
    };
    (0..2).all(|_| matches!(sensor.read(), Ok(raw) if raw.celsius == 21.5))
}

/// The largest per-call latency, in `step`s up to `limit`, at which
/// [`full_read_works_with_latency`] still holds (and holds for every smaller
/// step too).
pub fn max_tolerated_latency(step: Duration, limit: Duration) -> Option<Duration> {
    let mut best = None;
    let mut latency = Duration::ZERO;
    while latency <= limit {
        if !full_read_works_with_latency(latency) {
            break;
        }
        best = Some(latency);
        latency += step;
    }
    best
}
