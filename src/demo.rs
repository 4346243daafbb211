//! `kasa-thermostat run --simulate`: the real service against a simulated
//! chamber and two simulated plugs on loopback, all in this process, with a
//! line per cycle on stdout.
//!
//! Only the chamber is accelerated (`--speed`, model seconds per real second):
//! the plugs speak the real protocol with the real retry and read-back timing,
//! so what scrolls by is what the service does with real plugs.

/// `println!` that survives a closed stdout (`run --simulate | head`): the
/// lines are for a watching human, and the chamber must go on (and its
/// plugs end off) whether anyone still reads them or not; `println!` would
/// panic the control thread that calls the observer.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Config, RawConfig, RawPlug};
use crate::control::{Mode, Snapshot};
use crate::msg::PlugOutcome;
use crate::notify::SystemdNotifier;
use crate::outputs::status::state_word;
use crate::sensor::simulated::{Chamber, ChamberParams};
use crate::sensor::Backend;
use crate::service::{self, Observer, Options, ServiceError};
use crate::sim::{Model, SimOptions, SimPlug};
use crate::units::Units;

/// The demo's config: heat_cool between 18 and 20 °C, short cycles.
pub(crate) fn demo_config(heater: &SimPlug, cooler: &SimPlug, dir: &Path, speed: f64) -> Config {
    let plug = |sim: &SimPlug| {
        let mut p = RawPlug::new(sim.addr().ip().to_string(), Some(sim.addr().port()));
        p.protocol = "legacy".into();
        p.deadman_s = 30.0;
        p
    };
    let mut raw = RawConfig {
        mode: Mode::HeatCool,
        low_limit: 18.0,
        high_limit: 20.0,
        cycle_s: 2.0,
        rate_limit_s: 2.0,
        switchover_delay_s: 20.0,
        reconcile_s: 30.0,
        heater: Some(plug(heater)),
        cooler: Some(plug(cooler)),
        log_dir: dir.to_path_buf(),
        state_file: dir.join("state.json"),
        overrides_file: dir.join("overrides.json"),
        control_socket: dir.join("control.sock"),
        ..RawConfig::default()
    };
    raw.sensor.backend = Backend::Simulated;
    raw.sensor.interval_s = 1.0;
    raw.sensor.stale_after_s = 10.0;
    // The accelerated chamber moves faster than a real one: a believable
    // step between readings grows with the speed.
    raw.sensor.max_step = (5.0 * (speed / 10.0).max(1.0)).min(100.0);
    Config::from_raw(raw).expect("the demo config is valid")
}

fn clock() -> String {
    let t = time::OffsetDateTime::from(SystemTime::now());
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn echo_line(snap: &Snapshot, units: Units) -> String {
    let t = snap
        .temperature_c
        .map(|t| format!("{:6.2} {}", units.from_c(t), units.symbol()))
        .unwrap_or_else(|| "   --    ".into());
    let plugs: Vec<String> = snap
        .plugs
        .iter()
        .map(|p| format!("{} {}", p.role, state_word(p.state)))
        .collect();
    format!(
        "{:>8}  {t}  {}  | {}",
        clock(),
        plugs.join("  "),
        snap.reason
    )
}

/// Prints a line per cycle and each verified switch.
struct Echo {
    units: Units,
}

impl Observer for Echo {
    fn cycle(&mut self, snap: &Snapshot) {
        say!("{}", echo_line(snap, self.units));
    }

    fn outcome(&mut self, o: &PlugOutcome) {
        if let (Some(on), true) = (o.command.set_to(), o.is_done()) {
            say!(
                "{:>8}  {} switched {} (verified, attempt {})",
                clock(),
                o.role,
                if on { "ON" } else { "off" },
                o.attempts
            );
        }
    }
}

/// Where the demo's page listens first; a taken port falls back to a free one.
pub(crate) const DEMO_WEB: &str = "127.0.0.1:8080";

/// The demo's web page: on loopback, with a fresh random password written
/// to a file of mode 0600 in the demo's directory; returns the password.
fn demo_web(config: &mut Config, dir: &Path) -> Result<String, ServiceError> {
    use std::os::unix::fs::OpenOptionsExt;
    let spawn_err = ServiceError::spawn("web");
    let password: String = crate::web::auth::random_token()
        .map(|t| t[..16].to_string())
        .ok_or_else(|| std::io::Error::other("no randomness for the web password"))
        .map_err(spawn_err)?;
    std::fs::create_dir_all(dir).map_err(ServiceError::spawn("web"))?;
    let file = dir.join("web-password");
    let _ = std::fs::remove_file(&file);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{password}\n").as_bytes()))
        .map_err(ServiceError::spawn("web"))?;
    config.web = Some(crate::config::WebSettings {
        listen: DEMO_WEB.parse().expect("a socket address"),
        password_file: file,
        read_only: false,
        demo: true,
    });
    Ok(password)
}

/// Runs the demo until Ctrl-C; with `profile`, the limits follow a
/// compressed temperature profile (a hold, a ramp, a step) at `speed`.
pub(crate) fn run(speed: f64, profile: bool) -> Result<(), ServiceError> {
    let spawn = |alias: &str| {
        SimPlug::start(SimOptions {
            model: Model::Hs100,
            alias: alias.to_string(),
            ..SimOptions::default()
        })
        .map_err(ServiceError::spawn(format!("simulated plug {alias}")))
    };
    let heater = spawn("demo heater")?;
    let cooler = spawn("demo cooler")?;
    let dir = std::env::temp_dir().join(format!("kasa-thermostat-demo-{}", std::process::id()));
    let mut config = demo_config(&heater, &cooler, &dir, speed);
    if profile {
        let p = crate::profile::demo_profile(speed).map_err(ServiceError::Profile)?;
        say!(
            "{}",
            crate::profile::render_plan(
                &p,
                None,
                time::OffsetDateTime::now_utc(),
                &crate::clock::Zone::local_or_utc(),
                config.units,
            )
        );
        config.profile = Some(p);
        config.profile_state_file = dir.join("profile.json");
    }
    let password = demo_web(&mut config, &dir)?;
    crate::logging::init(
        &config.log_dir,
        config.log_level,
        Some(log::LevelFilter::Warn),
    )
    .map_err(ServiceError::Output)?;
    let (h, c) = (heater.state(), cooler.state());
    // A compressed day in a garage: the ambient swings between 10 and 28 °C
    // every model hour, so the heater works first and the cooler later.
    let params = ChamberParams {
        ambient_c: 19.0,
        ambient_swing_c: 9.0,
        ambient_period_s: 3600.0,
        start_c: 16.0,
        ..ChamberParams::default()
    };
    let chamber = Chamber::new(
        params,
        speed,
        Box::new(move || h.relay()),
        Box::new(move || c.relay()),
    );
    say!(
        "kasa-thermostat demo: a simulated chamber ({speed}x time) held at 18..20 °C in heat_cool mode\n\
         heater plug 127.0.0.1:{} and cooler plug 127.0.0.1:{} speak the real Kasa protocol \
         (try: kasa-thermostat plug 127.0.0.1:{} state)\n\
         logs: {dir}/kasa-thermostat.log, readings: {dir}/readings.jsonl\n\
         status: kasa-thermostat status --state-file {dir}/state.json\n\
         change it: kasa-thermostat set --control-socket {dir}/control.sock --mode heat\n\
         web page password: {password}\n\
         Ctrl-C stops (every plug is switched off and verified first).\n",
        heater.addr().port(),
        cooler.addr().port(),
        heater.addr().port(),
        dir = dir.display()
    );
    let options = Options {
        notifier: Arc::new(SystemdNotifier::disabled()),
        watchdog: None,
        observers: vec![Box::new(Echo {
            units: config.units,
        })],
    };
    let result = service::serve(config, None, Some(chamber.sensor()), options);
    say!(
        "demo stopped: heater {}, cooler {}",
        if heater.state().relay() { "ON" } else { "off" },
        if cooler.state().relay() { "ON" } else { "off" }
    );
    result
}
