//! Facts about the DS18B20 chip that more than one backend needs: its family
//! code, the CRC retry count, how a scratchpad decodes to °C, and the
//! resolution's configuration register and conversion time. A leaf of
//! `sensor/` (pure functions, no I/O).

/// The DS18B20 family code: the `28` of `28-0316a2797aff`.
pub(crate) const FAMILY_DS18B20: u8 = 0x28;

/// How many times a read is retried after a CRC mismatch (docs/design.md §8).
pub(crate) const CRC_RETRIES: u32 = 2;

/// Decodes the temperature from a scratchpad: bytes 0 and 1 are a signed
/// 1/16 °C count; at 9 to 11 bits the lowest bits are undefined and are
/// masked (the ds18b20 crate divides differently per resolution and reads the
/// count as unsigned, which breaks below 0 °C, so we decode ourselves).
pub(crate) fn decode_celsius(scratchpad: &[u8; 9]) -> f64 {
    let raw = i16::from_le_bytes([scratchpad[0], scratchpad[1]]);
    let mask: i16 = match resolution_from_config(scratchpad[4]) {
        Some(9) => !7,
        Some(10) => !3,
        Some(11) => !1,
        _ => !0,
    };
    f64::from(raw & mask) / 16.0
}

#[cfg(any(test, feature = "testkit"))]
/// A 12-bit scratchpad holding `celsius` (rounded to 1/16 °C) with a valid
/// CRC, as a healthy DS18B20 returns it.
pub fn scratchpad_for(celsius: f64) -> [u8; 9] {
    let raw = (celsius * 16.0).round() as i16;
    let [lsb, msb] = raw.to_le_bytes();
    let mut pad = [lsb, msb, 0x4B, 0x46, 0x7F, 0xFF, 0x10, 0x10, 0];
    pad[8] = one_wire_bus::crc::crc8(&pad[..8]);
    pad
}

/// The resolution in bits encoded by a configuration register (byte 4).
pub(crate) fn resolution_from_config(config: u8) -> Option<u8> {
    match config {
        0x1F => Some(9),
        0x3F => Some(10),
        0x5F => Some(11),
        0x7F => Some(12),
        _ => None,
    }
}

/// The configuration register (byte 4) for a resolution of 9 to 12 bits.
pub(crate) fn config_for_resolution(bits: u8) -> Option<u8> {
    match bits {
        9 => Some(0x1F),
        10 => Some(0x3F),
        11 => Some(0x5F),
        12 => Some(0x7F),
        _ => None,
    }
}

/// The DS18B20's worst-case conversion time at a resolution, in microseconds
/// (93.75 / 187.5 / 375 / 750 ms for 9 / 10 / 11 / 12 bits).
pub(crate) fn conversion_time_us(bits: u8) -> u64 {
    match bits {
        9 => 93_750,
        10 => 187_500,
        11 => 375_000,
        _ => 750_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(lsb: u8, msb: u8, config: u8) -> [u8; 9] {
        [lsb, msb, 0x4B, 0x46, config, 0xFF, 0x0C, 0x10, 0]
    }

    #[test]
    fn decodes_positive_negative_and_masks_low_resolutions() {
        assert_eq!(decode_celsius(&pad(0x91, 0x01, 0x7F)), 25.0625);
        assert_eq!(decode_celsius(&pad(0x5E, 0xFF, 0x7F)), -10.125);
        assert_eq!(decode_celsius(&pad(0x90, 0xFC, 0x7F)), -55.0);
        assert_eq!(decode_celsius(&pad(0xD0, 0x07, 0x7F)), 125.0);
        // 9 bits: the three lowest bits are undefined.
        assert_eq!(decode_celsius(&pad(0x97, 0x01, 0x1F)), 25.0);
        assert_eq!(decode_celsius(&pad(0xFF, 0xFF, 0x7F)), -0.0625);
    }

    #[test]
    fn resolution_round_trips() {
        for bits in 9..=12 {
            let cfg = config_for_resolution(bits).unwrap();
            assert_eq!(resolution_from_config(cfg), Some(bits));
        }
        assert_eq!(config_for_resolution(13), None);
        assert_eq!(resolution_from_config(0), None);
    }
}
