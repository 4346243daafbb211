//! `kasa-thermostat run --simulate`: the real service against a simulated
//! chamber and two simulated plugs on loopback, all in this process.
//!
//! Only the chamber is accelerated (`--speed`, model seconds per real second):
//! the plugs speak the real protocol with the real retry and read-back timing,
//! so what scrolls by is what the service does with real plugs.

use std::sync::Arc;

use crate::config::{Config, Mode, PlugConfig, SensorBackend};
use crate::kasa::sim::{Model, SimOptions, SimPlug};
use crate::notify::SystemdNotifier;
use crate::sensor::simulated::{Chamber, ChamberParams};
use crate::service::{self, Options, ServiceError};

/// The demo's config: heat_cool between 18 and 20 °C, short cycles.
pub fn demo_config(heater: &SimPlug, cooler: &SimPlug, dir: &std::path::Path) -> Config {
    let plug = |sim: &SimPlug| {
        let mut p = PlugConfig::new(sim.addr().ip().to_string(), sim.addr().port());
        p.deadman_s = 30.0;
        p
    };
    let mut config = Config {
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
        ..Config::default()
    };
    config.sensor.backend = SensorBackend::Simulated;
    config.sensor.interval_s = 1.0;
    config.sensor.stale_after_s = 10.0;
    config
}

/// Runs the demo until Ctrl-C.
pub fn run(speed: f64) -> Result<(), ServiceError> {
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
    let config = demo_config(&heater, &cooler, &dir);
    config.validate().map_err(ServiceError::Config)?;
    service::init_logging(&config, Some(log::LevelFilter::Warn))?;
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
    println!(
        "kasa-thermostat demo: a simulated chamber ({speed}x time) held at 18..20 °C in heat_cool mode\n\
         heater plug 127.0.0.1:{} and cooler plug 127.0.0.1:{} speak the real Kasa protocol \
         (try: kasa-thermostat plug 127.0.0.1:{} state)\n\
         logs: {dir}/kasa-thermostat.log, readings: {dir}/readings.jsonl\n\
         status: kasa-thermostat status --state-file {dir}/state.json\n\
         Ctrl-C stops (every plug is switched off and verified first).\n",
        heater.addr().port(),
        cooler.addr().port(),
        heater.addr().port(),
        dir = dir.display()
    );
    let options = Options {
        notifier: Arc::new(SystemdNotifier::disabled()),
        watchdog: None,
        echo: true,
    };
    let result = service::serve(config, Some(chamber.sensor()), options);
    println!(
        "demo stopped: heater {}, cooler {}",
        if heater.state().relay() { "ON" } else { "off" },
        if cooler.state().relay() { "ON" } else { "off" }
    );
    result
}
