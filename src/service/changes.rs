//! The control thread's side of changes made while running: a command from
//! the web page, `set` or MQTT, and a config re-read on SIGHUP. Both end in
//! one place, [`ControlLoop::take_config`], which gives the controller the
//! config with the overrides applied; it takes effect at the next cycle.
//! Nothing here waits: the files written are a few hundred bytes.

use std::time::SystemTime;

use crossbeam_channel::tick;
use log::{error, info, warn};

use super::control_loop::ControlLoop;
use crate::command::reload::{restart_keys, RELOADABLE};
use crate::command::Overrides;
use crate::config::Config;
use crate::msg::{Command, ProfileAction, Reply, Request, Source};

impl ControlLoop {
    /// Answers one command on its own reply channel.
    pub(super) fn command(&mut self, request: Request) {
        let Request {
            source,
            command,
            reply,
        } = request;
        let answer = self.change(source, &command);
        if answer.ok {
            info!(target: "command", "{source}: {}", answer.message);
        } else {
            warn!(target: "command", "{source}: refused: {}", answer.message);
        }
        // The sender may have given up waiting; the change stands.
        let _ = reply.try_send(answer);
    }

    fn change(&mut self, source: Source, command: &Command) -> Reply {
        let at = crate::clock::format_rfc3339(SystemTime::now(), crate::clock::Precision::Millis);
        let touches_overrides = command.clear
            || command.mode.is_some()
            || command.low.is_some()
            || command.high.is_some()
            || command.target.is_some();
        let mut said = Vec::new();
        let next = if touches_overrides {
            match self
                .p
                .overrides
                .with(command, self.p.config.effective(), source, &at)
            {
                Ok((next, changes)) => {
                    said = changes;
                    Some(next)
                }
                Err(m) => return Reply::refused(m),
            }
        } else {
            None
        };
        if command.profile.is_some() && self.p.config.profile.is_none() {
            return Reply::refused("no profile is configured (the config has no `profile`)");
        }
        if let Some(next) = next {
            if next != self.p.overrides {
                if let Err(e) = next.save(&self.p.config.overrides_file) {
                    error!(
                        "overrides_file {}: {e}",
                        self.p.config.overrides_file.display()
                    );
                    return Reply::refused(format!(
                        "cannot keep the change in overrides_file {}: {e}; nothing changed",
                        self.p.config.overrides_file.display()
                    ));
                }
                self.p.overrides = next;
                self.take_config();
            }
        }
        if let (Some(action), Some(profile)) = (command.profile, &self.p.config.profile) {
            let now = time::OffsetDateTime::now_utc();
            let path = &self.p.config.profile_state_file;
            let done = match action {
                ProfileAction::Restart => crate::profile::restart_command(profile, path, now),
                ProfileAction::Skip => crate::profile::skip_command(profile, path, now),
            };
            match done {
                Ok(line) => said.push(line),
                Err(e) => {
                    let m = e.to_string();
                    if said.is_empty() {
                        return Reply::refused(m);
                    }
                    said.push(format!("but the profile: {m}"));
                }
            }
        }
        if said.is_empty() {
            return Reply::applied("nothing changed: that is already in force");
        }
        Reply::applied(said.join("; "))
    }

    /// A config re-read on SIGHUP (valid: the signal thread refused an
    /// invalid one with `check-config`'s message).
    pub(super) fn reload(&mut self, config: Config) {
        let keys = restart_keys(self.p.config.effective(), config.effective());
        if !keys.is_empty() {
            error!(
                "reload refused: {} changed, which needs a restart (systemctl restart kasa-thermostat); \
                 the running config stays",
                keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            );
            return;
        }
        let changed: Vec<&str> = RELOADABLE
            .iter()
            .copied()
            .filter(|k| {
                let get = |c: &Config| {
                    let v = serde_json::to_value(c.effective()).unwrap_or_default();
                    k.split('.')
                        .fold(v, |v, part| v.get(part).cloned().unwrap_or_default())
                };
                get(&self.p.config) != get(&config)
            })
            .collect();
        let mut overrides = self.p.overrides.clone();
        let notes = overrides.drop_superseded(config.effective());
        // The overrides must still make a valid config with the new file.
        let overrides = match Config::from_raw(overrides.apply(config.effective())) {
            Ok(_) => overrides,
            Err(e) => {
                warn!(
                    "the overrides do not fit the reloaded config ({e}): every override is cleared"
                );
                Overrides::default()
            }
        };
        for n in &notes {
            info!(target: "command", "{n}");
        }
        if overrides != self.p.overrides {
            if let Err(e) = overrides.save(&self.p.config.overrides_file) {
                error!(
                    "overrides_file {}: {e}",
                    self.p.config.overrides_file.display()
                );
            }
        }
        if changed.is_empty() {
            info!("reload: the config is valid; nothing changed");
        } else {
            info!(
                "reload: applied from the next cycle: {}",
                changed
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        self.p.config = config;
        self.p.overrides = overrides;
        self.take_config();
    }

    /// Gives the controller the config with the overrides applied.
    fn take_config(&mut self) {
        let config = match Config::from_raw(self.p.overrides.apply(self.p.config.effective())) {
            Ok(c) => c,
            Err(e) => {
                // `Overrides::with` checked this; keep what runs.
                error!("the overrides make an invalid config ({e}); nothing changed");
                return;
            }
        };
        if config.cycle != self.p.cycle {
            self.p.cycle = config.cycle;
            self.ticker = tick(config.cycle);
        }
        self.p.controller.reconfigure(config.control_settings());
        self.p
            .outputs
            .set_overrides(self.p.overrides.lines(config.units));
        let now = std::time::Instant::now();
        let snap = self.p.controller.snapshot(now);
        self.p
            .outputs
            .refresh_state(&snap, SystemTime::now(), self.profile_status.clone());
        if let Some(m) = &self.p.mqtt {
            m.state_changed();
        }
    }
}

/// The overrides in force at start, from `overrides_file`, and the config
/// they make: a damaged file is ignored, an override the config has since
/// changed is cleared (the log says so), and overrides that no longer fit
/// the config are all cleared.
pub(super) fn start_overrides(config: &Config) -> (Overrides, Config) {
    let path = &config.overrides_file;
    let loaded = match Overrides::load(path) {
        Ok(o) => o,
        Err(e) => {
            warn!(
                "overrides_file {}: {e}; ignored: the config's values hold",
                path.display()
            );
            Overrides::default()
        }
    };
    let mut overrides = loaded.clone();
    for note in overrides.drop_superseded(config.effective()) {
        info!(target: "command", "{note}");
    }
    let effective = match Config::from_raw(overrides.apply(config.effective())) {
        Ok(c) => c,
        Err(e) => {
            warn!(
                "the overrides in {} do not fit the config ({e}): every override is cleared",
                path.display()
            );
            overrides = Overrides::default();
            config.clone()
        }
    };
    if overrides != loaded {
        if let Err(e) = overrides.save(path) {
            error!("overrides_file {}: {e}", path.display());
        }
    }
    for line in overrides.lines(config.units) {
        info!(target: "command", "override in force: {line}");
    }
    (overrides, effective)
}
