//! The starting point of the overrides and reload tests (test builds only):
//! a leaf, so the tests of `overrides.rs` and `reload.rs` need not reach
//! back into `command/mod.rs`.

/// A configuration with only a heater, the starting point of the
/// overrides and reload tests.
pub(super) fn test_base() -> crate::config::RawConfig {
    crate::config::RawConfig {
        heater: Some(crate::config::RawPlug::new("10.0.0.5", None)),
        ..crate::config::RawConfig::default()
    }
}
