//! Changing the service while it runs (docs/design.md, "Changing it while
//! it runs"): the overrides kept in `overrides_file`, the keys a SIGHUP
//! reload may change, and the control socket that `kasa-thermostat set`
//! talks to. The command itself ([`crate::msg::Command`]) is in `msg/`,
//! the vocabulary shared between threads; the control thread applies it.

pub mod overrides;
pub mod reload;
pub mod socket;
#[cfg(test)]
mod test_base;

pub use overrides::{Overrides, OverridesError};
