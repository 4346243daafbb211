//! Which job a plug does: the [`Role`] every message about a plug carries.
//! A leaf of `msg/` so that the message files can name it without going
//! through `msg/mod.rs`.

use std::fmt;

/// Which job a plug does. The control thread addresses plugs by role and every
/// log line about a plug names it, so that `kasa_errors.log` says which plug
/// failed, not only which address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The plug that heats (switched on when it is too cold).
    Heater,
    /// The plug that cools (switched on when it is too warm).
    Cooler,
    /// A plug switched by hand from the command line (`kasa-thermostat plug`).
    Manual,
}

impl Role {
    /// The lower-case name used in logs, the state file and the config keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Heater => "heater",
            Role::Cooler => "cooler",
            Role::Manual => "manual",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
