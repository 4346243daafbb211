//! A config read for an instance (`run --instance NAME`): every path key the
//! file leaves out defaults under NAME (`/run/kasa-thermostat/NAME/...`),
//! so two chambers never share a file unless their configs say so. A key
//! that names the single install's own default (a config copied from
//! `config.json`, or the example) means the same: the instance's default;
//! two chambers writing one state file or one log is never what was meant.

use std::path::Path;

use super::error::{invalid, ConfigError};
use super::raw::RawConfig;
use super::{parse_raw, Config, MAX_CONFIG_BYTES};
use crate::instance::Instance;

impl Config {
    /// Reads `path` as the config of `instance` (the single install when
    /// `None`, exactly as [`Config::load`]).
    pub fn load_as(path: &Path, instance: Option<&Instance>) -> Result<Config, ConfigError> {
        let Some(instance) = instance else {
            return Config::load(path);
        };
        let text = crate::fsutil::read_text_capped(path, MAX_CONFIG_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Config::from_json_as(&text, instance).map_err(|e| e.in_file(path))
    }

    /// Parses JSON text as the config of `instance`.
    pub fn from_json_as(text: &str, instance: &Instance) -> Result<Config, ConfigError> {
        let mut raw = parse_raw(text)?;
        // parse_raw has accepted the text, so it is one JSON object; which
        // keys it names decides which defaults are the instance's.
        let given: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(text))
                .map_err(|e| invalid(".", e.to_string()))?;
        apply_defaults(&mut raw, &given, instance);
        let mut config = Config::from_raw(raw)?;
        config.instance = Some(instance.clone());
        Ok(config)
    }
}

/// Fills the path keys `given` leaves out, or sets to the single install's
/// default, with `instance`'s.
fn apply_defaults(
    raw: &mut RawConfig,
    given: &serde_json::Map<String, serde_json::Value>,
    instance: &Instance,
) {
    let single = RawConfig::default();
    let own = |key: &str, now: &Path, single: &Path| !given.contains_key(key) || now == single;
    if own("log_dir", &raw.log_dir, &single.log_dir) {
        raw.log_dir = instance.log_dir();
    }
    if own("state_file", &raw.state_file, &single.state_file) {
        raw.state_file = instance.state_file();
    }
    if own(
        "control_socket",
        &raw.control_socket,
        &single.control_socket,
    ) {
        raw.control_socket = instance.control_socket();
    }
    if own(
        "profile_state_file",
        &raw.profile_state_file,
        &single.profile_state_file,
    ) {
        raw.profile_state_file = instance.profile_state_file();
    }
    if own(
        "overrides_file",
        &raw.overrides_file,
        &single.overrides_file,
    ) {
        raw.overrides_file = instance.overrides_file();
    }
    if own(
        "control_state_file",
        &raw.control_state_file,
        &single.control_state_file,
    ) {
        raw.control_state_file = instance.control_state_file();
    }
    // Two clients with one id throw each other off the broker, and one
    // prefix would mix two chambers' states (the Home Assistant node id
    // comes from the client id).
    if let Some(m) = raw.mqtt.as_mut() {
        let host = super::mqtt_hostname();
        if m.topic_prefix.is_none() {
            m.topic_prefix = Some(instance.mqtt_topic_prefix(&host));
        }
        if m.client_id.is_none() {
            m.client_id = Some(format!("kasa-thermostat-{host}-{}", instance.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const MIN: &str = r#"{"mode": "heat", "heater": {"host": "10.0.0.5"}}"#;

    #[test]
    fn an_instance_s_paths_default_under_its_name_unless_the_file_sets_them() {
        let keg = Instance::new("keg").unwrap();
        let c = Config::from_json_as(MIN, &keg).unwrap();
        assert_eq!(c.instance, Some(keg.clone()));
        assert_eq!(c.log_dir, PathBuf::from("/var/log/kasa-thermostat/keg"));
        assert_eq!(
            c.state_file,
            PathBuf::from("/run/kasa-thermostat/keg/state.json")
        );
        assert_eq!(
            c.control_socket,
            PathBuf::from("/run/kasa-thermostat/keg/control.sock")
        );
        assert_eq!(
            c.profile_state_file,
            PathBuf::from("/var/lib/kasa-thermostat/keg/profile.json")
        );
        assert_eq!(
            c.overrides_file,
            PathBuf::from("/var/lib/kasa-thermostat/keg/overrides.json")
        );
        assert_eq!(
            c.control_state_file,
            PathBuf::from("/var/lib/kasa-thermostat/keg/control.json")
        );
        // Shared by all instances, on purpose.
        assert_eq!(c.lock_dir, PathBuf::from("/run/kasa-thermostat/locks"));
        // The effective config shows them.
        let eff = serde_json::to_value(c.effective()).unwrap();
        assert_eq!(eff["state_file"], "/run/kasa-thermostat/keg/state.json");

        let set = r#"{"mode": "heat", "heater": {"host": "10.0.0.5"}, "state_file": "/tmp/s.json", "log_dir": "/tmp/l"}"#;
        let c = Config::from_json_as(set, &keg).unwrap();
        assert_eq!(c.state_file, PathBuf::from("/tmp/s.json"));
        assert_eq!(c.log_dir, PathBuf::from("/tmp/l"));
        assert_eq!(
            c.control_socket,
            PathBuf::from("/run/kasa-thermostat/keg/control.sock")
        );

        // The single install's own paths, as in a copied config.json or the
        // example: the instance's.
        let copied = r#"{"mode": "heat", "heater": {"host": "10.0.0.5"},
            "log_dir": "/var/log/kasa-thermostat", "state_file": "/run/kasa-thermostat/state.json"}"#;
        let c = Config::from_json_as(copied, &keg).unwrap();
        assert_eq!(c.log_dir, PathBuf::from("/var/log/kasa-thermostat/keg"));
        assert_eq!(
            c.state_file,
            PathBuf::from("/run/kasa-thermostat/keg/state.json")
        );
        let example = include_str!("../../deploy/config.example.json");
        let c = Config::from_json_as(example, &keg).unwrap();
        assert_eq!(
            c.state_file,
            PathBuf::from("/run/kasa-thermostat/keg/state.json")
        );

        // The single install keeps its paths.
        let single = Config::from_json(MIN).unwrap();
        assert_eq!(single.instance, None);
        assert_eq!(
            single.state_file,
            PathBuf::from("/run/kasa-thermostat/state.json")
        );
        assert_eq!(single.log_dir, PathBuf::from("/var/log/kasa-thermostat"));
    }

    #[test]
    fn an_instance_s_mqtt_prefix_and_client_id_carry_its_name() {
        let host = crate::config::mqtt_hostname();
        let text =
            r#"{"mode": "heat", "heater": {"host": "10.0.0.5"}, "mqtt": {"host": "127.0.0.1"}}"#;
        let c = Config::from_json_as(text, &Instance::new("keg").unwrap()).unwrap();
        let m = c.mqtt.as_ref().unwrap();
        assert_eq!(m.topic_prefix, format!("kasa-thermostat/{host}/keg"));
        assert_eq!(m.client_id, format!("kasa-thermostat-{host}-keg"));
        let single = Config::from_json(text).unwrap();
        let s = single.mqtt.as_ref().unwrap();
        assert_eq!(s.topic_prefix, format!("kasa-thermostat/{host}"));
        assert_eq!(s.client_id, format!("kasa-thermostat-{host}"));
        // What the file sets stays.
        let set = r#"{"mode": "heat", "heater": {"host": "10.0.0.5"},
            "mqtt": {"host": "127.0.0.1", "topic_prefix": "brew/keg", "client_id": "k"}}"#;
        let c = Config::from_json_as(set, &Instance::new("keg").unwrap()).unwrap();
        let m = c.mqtt.as_ref().unwrap();
        assert_eq!(
            (m.topic_prefix.as_str(), m.client_id.as_str()),
            ("brew/keg", "k")
        );
    }

    #[test]
    fn a_bad_file_is_named_as_for_the_single_install() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keg.json");
        std::fs::write(
            &f,
            r#"{"mode": "heat", "heater": {"host": "10.0.0.5"}, "bogus": 1}"#,
        )
        .unwrap();
        let e = Config::load_as(&f, Some(&Instance::new("keg").unwrap())).unwrap_err();
        assert!(
            e.to_string().contains("keg.json") && e.to_string().contains("bogus"),
            "{e}"
        );
    }
}
