//! Changing the service while it runs (docs/design.md, "Changing it while
//! it runs"): the overrides kept in `overrides_file`, the keys a SIGHUP
//! reload may change, and the control socket that `kasa-thermostat set`
//! talks to. The command itself ([`crate::msg::Command`]) is in `msg/`,
//! the vocabulary shared between threads; the control thread applies it.

pub mod overrides;
pub mod reload;
pub mod socket;

pub use overrides::{Overrides, OverridesError};

/// A configuration with only a heater, the starting point of the
/// overrides and reload tests.
#[cfg(test)]
fn test_base() -> crate::config::RawConfig {
    crate::config::RawConfig {
        heater: Some(crate::config::RawPlug::new("10.0.0.5", None)),
        ..crate::config::RawConfig::default()
    }
}
