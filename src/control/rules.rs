//! The thermostat rule (docs/design.md §4) as a pure function: what a plug's demand
//! is for a temperature, with hysteresis, before min on/off and the interlock.

use super::mode::Mode;
use crate::msg::Role;
use crate::units::Units;

/// A pair of limits in °C, `low_c < high_c`: the limits in force (fixed,
/// or from a temperature profile), and each step of a profile.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Band {
    /// The low limit, °C.
    pub low_c: f64,
    /// The high limit, °C.
    pub high_c: f64,
}

impl Band {
    /// The band `frac` of the way from `self` to `to` (0 = self, 1 = to).
    pub(crate) fn lerp(self, to: Band, frac: f64) -> Band {
        let frac = frac.clamp(0.0, 1.0);
        Band {
            low_c: self.low_c + (to.low_c - self.low_c) * frac,
            high_c: self.high_c + (to.high_c - self.high_c) * frac,
        }
    }

    /// `17.5..18.5 °C`, in `units`, one decimal.
    pub(crate) fn display(self, units: Units) -> String {
        format!(
            "{:.1}..{:.1} {}",
            units.from_c(self.low_c),
            units.from_c(self.high_c),
            units.symbol()
        )
    }
}

/// `on` or `off`, for the reasons in words.
pub(crate) fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Whether `role` takes part in `mode`.
pub(crate) fn used(mode: Mode, role: Role) -> bool {
    matches!(
        (mode, role),
        (Mode::Heat, Role::Heater) | (Mode::Cool, Role::Cooler) | (Mode::HeatCool, _)
    )
}

/// The demand of `role` at `t` °C, holding `held` between its thresholds,
/// with the reason in words.
///
/// * `heat`: heater on at <= low, off at >= high.
/// * `cool`: cooler on at >= high, off at <= low.
/// * `heat_cool`: heater on at <= low, off at >= the midpoint; cooler on at
///   >= high, off at <= the midpoint.
pub(crate) fn demand(
    mode: Mode,
    role: Role,
    limits: Band,
    t: f64,
    held: bool,
    units: Units,
) -> (bool, String) {
    if !used(mode, role) {
        return (false, format!("mode {mode}"));
    }
    let temp = |c: f64| format!("{:.2} {}", units.from_c(c), units.symbol());
    let mid = (limits.low_c + limits.high_c) / 2.0;
    let (on_at, off_at) = match (mode, role) {
        (Mode::Heat, _) => (limits.low_c, limits.high_c),
        (Mode::Cool, _) => (limits.high_c, limits.low_c),
        (_, Role::Heater) => (limits.low_c, mid),
        (_, _) => (limits.high_c, mid),
    };
    let heating = role == Role::Heater;
    let reach_on = if heating { t <= on_at } else { t >= on_at };
    let reach_off = if heating { t >= off_at } else { t <= off_at };
    let (cmp_on, cmp_off) = if heating { ("<=", ">=") } else { (">=", "<=") };
    if reach_on {
        (
            true,
            format!("{} {cmp_on} {}: {role} on", temp(t), temp(on_at)),
        )
    } else if reach_off {
        (
            false,
            format!("{} {cmp_off} {}: {role} off", temp(t), temp(off_at)),
        )
    } else {
        (
            held,
            format!("{} between limits: {role} holds {}", temp(t), on_off(held)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Band = Band {
        low_c: 18.0,
        high_c: 20.0,
    };

    #[test]
    fn thresholds_per_mode_and_role() {
        // (mode, role, temperature, held, demand)
        let table = [
            (Mode::Heat, Role::Heater, 18.0, false, true),
            (Mode::Heat, Role::Heater, 19.9, true, true),
            (Mode::Heat, Role::Heater, 19.9, false, false),
            (Mode::Heat, Role::Heater, 20.0, true, false),
            (Mode::Heat, Role::Cooler, 30.0, true, false),
            (Mode::Cool, Role::Cooler, 20.0, false, true),
            (Mode::Cool, Role::Cooler, 18.0, true, false),
            (Mode::HeatCool, Role::Heater, 19.0, true, false),
            (Mode::HeatCool, Role::Heater, 18.9, true, true),
            (Mode::HeatCool, Role::Cooler, 19.0, true, false),
            (Mode::HeatCool, Role::Cooler, 19.1, true, true),
            (Mode::Off, Role::Heater, 0.0, true, false),
        ];
        for (mode, role, t, held, want) in table {
            let (got, why) = demand(mode, role, L, t, held, Units::C);
            assert_eq!(got, want, "{mode} {role} at {t} held {held}: {why}");
        }
    }
}
