//! Several chambers on one machine: the instance name (`kasa-thermostat@NAME`),
//! the paths and labels derived from it, finding what is installed, and the
//! locks that keep one plug (or sensor, or GPIO line) to one instance
//! ([`lock`]).
//!
//! A leaf: it uses nothing else of the crate. The config asks it for the
//! defaults of an instance; the service asks [`lock`] for its locks; the
//! CLI asks [`installed`] what to list. Design: `docs/design-instances.md`.

pub mod lock;

use std::fmt;
use std::path::{Path, PathBuf};

/// Where configs live: `config.json` is the single install, `NAME.json` an instance.
pub const ETC_DIR: &str = "/etc/kasa-thermostat";
/// The single install's config, in [`ETC_DIR`].
pub const SINGLE_CONFIG: &str = "config.json";
/// The single install's unit, and the holder name of its locks.
pub const SINGLE_UNIT: &str = "kasa-thermostat";
/// Where the locks of every instance live (shared by all: it is how they see each other).
pub const DEFAULT_LOCK_DIR: &str = "/run/kasa-thermostat/locks";
/// The longest instance name (it ends up in paths, unit names and MQTT topics).
pub const MAX_NAME: usize = 32;
/// Names an instance may not take: they are the single install's config and
/// the locks' directory.
const RESERVED: &[&str] = &["config", "locks"];

/// A valid instance name: 1 to 32 of `A-Z a-z 0-9 _ -`, starting with a
/// letter or digit, not `config` or `locks`. Safe in a path, a systemd unit
/// name (`kasa-thermostat@NAME`, no escaping needed) and an MQTT topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instance(String);

/// Why a name is not a valid instance name: pick one that is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instance name {:?}: {}; a name is 1 to {MAX_NAME} of A-Z a-z 0-9 _ -, starting with a letter or digit",
            self.name, self.reason
        )
    }
}

impl std::error::Error for NameError {}

impl Instance {
    /// Checks `name` (see [`Instance`]).
    pub fn new(name: &str) -> Result<Instance, NameError> {
        let err = |reason: &str| NameError {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(err("it is empty"));
        }
        if name.len() > MAX_NAME {
            return Err(err(&format!("it is {} characters long", name.len())));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(err(&format!("{c:?} is not allowed")));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(err("it must start with a letter or digit"));
        }
        if RESERVED.contains(&name) {
            return Err(err(
                "it is reserved (config.json is the single install, locks/ the locks)",
            ));
        }
        Ok(Instance(name.to_string()))
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// `/etc/kasa-thermostat/NAME.json`.
    pub fn config_file(&self) -> PathBuf {
        Path::new(ETC_DIR).join(format!("{}.json", self.0))
    }

    /// `kasa-thermostat@NAME`: the unit, and the holder name of its locks.
    pub fn unit(&self) -> String {
        format!("{SINGLE_UNIT}@{}", self.0)
    }

    /// Default `log_dir`: `/var/log/kasa-thermostat/NAME` (the unit's `LogsDirectory=`).
    pub fn log_dir(&self) -> PathBuf {
        Path::new("/var/log/kasa-thermostat").join(&self.0)
    }

    /// The runtime directory: `/run/kasa-thermostat/NAME` (`RuntimeDirectory=`).
    pub fn runtime_dir(&self) -> PathBuf {
        Path::new("/run/kasa-thermostat").join(&self.0)
    }

    /// The state directory: `/var/lib/kasa-thermostat/NAME` (`StateDirectory=`).
    pub fn state_dir(&self) -> PathBuf {
        Path::new("/var/lib/kasa-thermostat").join(&self.0)
    }

    /// Default `state_file`.
    pub fn state_file(&self) -> PathBuf {
        self.runtime_dir().join("state.json")
    }

    /// Default `control_socket`.
    pub fn control_socket(&self) -> PathBuf {
        self.runtime_dir().join("control.sock")
    }

    /// Default `profile_state_file`.
    pub fn profile_state_file(&self) -> PathBuf {
        self.state_dir().join("profile.json")
    }

    /// Default `control_state_file` (the cascade's memory).
    pub fn control_state_file(&self) -> PathBuf {
        self.state_dir().join("control.json")
    }

    /// Default `overrides_file`.
    pub fn overrides_file(&self) -> PathBuf {
        self.state_dir().join("overrides.json")
    }

    /// The host label of its alerts: `HOST/NAME`, so a message says which chamber.
    pub fn alert_host(&self, hostname: &str) -> String {
        format!("{hostname}/{}", self.0)
    }

    /// Default MQTT `topic_prefix`: `kasa-thermostat/HOST/NAME`.
    pub fn mqtt_topic_prefix(&self, hostname: &str) -> String {
        format!("{SINGLE_UNIT}/{hostname}/{}", self.0)
    }
}

impl fmt::Display for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit (and lock holder) name of the single install or an instance.
pub fn unit_name(instance: Option<&Instance>) -> String {
    instance.map_or_else(|| SINGLE_UNIT.to_string(), Instance::unit)
}

/// One install found in the config directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// `None` for the single install (`config.json`).
    pub instance: Option<Instance>,
    /// Its config file.
    pub config: PathBuf,
}

/// What is installed under `etc` (normally [`ETC_DIR`]): the single install
/// when `config.json` is there, then every `NAME.json` whose NAME is a valid
/// instance name, by name. Other files (the password file, editor
/// backups, `x.json.dpkg-old`) are not installs and are skipped.
pub fn installed(etc: &Path) -> std::io::Result<Vec<Installed>> {
    let mut found = Vec::new();
    let mut single = None;
    for entry in std::fs::read_dir(etc)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == SINGLE_CONFIG {
            single = Some(Installed {
                instance: None,
                config: entry.path(),
            });
        } else if let Some(stem) = name.strip_suffix(".json") {
            if let Ok(instance) = Instance::new(stem) {
                found.push(Installed {
                    instance: Some(instance),
                    config: entry.path(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(single.into_iter().chain(found).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_with_a_reason() {
        for ok in ["brew", "keg-fridge", "f1", "A_2", &"x".repeat(MAX_NAME)] {
            assert_eq!(Instance::new(ok).unwrap().name(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("../etc", "'.' is not allowed"),
            ("a b", "' ' is not allowed"),
            ("a/b", "'/' is not allowed"),
            ("-x", "start with a letter or digit"),
            ("_x", "start with a letter or digit"),
            ("config", "reserved"),
            ("locks", "reserved"),
            ("ferm\u{e9}", "is not allowed"),
        ] {
            let e = Instance::new(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let long = "y".repeat(MAX_NAME + 1);
        assert!(Instance::new(&long)
            .unwrap_err()
            .reason
            .contains("33 characters"));
    }

    #[test]
    fn paths_and_labels_derive_from_the_name() {
        let i = Instance::new("keg").unwrap();
        assert_eq!(i.config_file(), Path::new("/etc/kasa-thermostat/keg.json"));
        assert_eq!(i.unit(), "kasa-thermostat@keg");
        assert_eq!(i.log_dir(), Path::new("/var/log/kasa-thermostat/keg"));
        assert_eq!(
            i.state_file(),
            Path::new("/run/kasa-thermostat/keg/state.json")
        );
        assert_eq!(
            i.control_socket(),
            Path::new("/run/kasa-thermostat/keg/control.sock")
        );
        assert_eq!(
            i.profile_state_file(),
            Path::new("/var/lib/kasa-thermostat/keg/profile.json")
        );
        assert_eq!(
            i.overrides_file(),
            Path::new("/var/lib/kasa-thermostat/keg/overrides.json")
        );
        assert_eq!(i.alert_host("pi"), "pi/keg");
        assert_eq!(i.mqtt_topic_prefix("pi"), "kasa-thermostat/pi/keg");
        assert_eq!(unit_name(None), "kasa-thermostat");
        assert_eq!(unit_name(Some(&i)), "kasa-thermostat@keg");
    }

    #[test]
    fn installed_lists_the_single_install_first_then_instances_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "keg.json",
            "config.json",
            "brew.json",
            "tplink-password",
            "bad name.json",
            "x.json.bak",
            "locks.json",
        ] {
            std::fs::write(dir.path().join(f), "{}").unwrap();
        }
        let got = installed(dir.path()).unwrap();
        let names: Vec<String> = got.iter().map(|i| unit_name(i.instance.as_ref())).collect();
        assert_eq!(
            names,
            [
                "kasa-thermostat",
                "kasa-thermostat@brew",
                "kasa-thermostat@keg"
            ]
        );
        assert_eq!(got[1].config, dir.path().join("brew.json"));
    }
}
