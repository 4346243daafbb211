//! Test helpers for the end-to-end service tests: a temporary directory shaped
//! like `/sys/bus/w1/devices` whose `w1_slave` the test rewrites, simulated
//! plugs on 127.0.0.1, and the real binary run as a child process with a
//! config whose durations are scaled down.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kasa_thermostat::sensor::scratchpad_for;
use kasa_thermostat::sensor::w1::format_w1_slave;
use kasa_thermostat::sim::{Fault, Model, SimOptions, SimPlug, Transition};
use serde_json::{json, Value};

/// The sensor id used in the fake w1 tree.
pub const SENSOR_ID: &str = "28-0316a2797aff";

/// The `w1_slave` text the kernel shows for a good 12-bit reading.
pub fn w1_text(celsius: f64) -> String {
    format_w1_slave(&scratchpad_for(celsius))
}

/// A directory shaped like `/sys/bus/w1/devices` with one DS18B20.
pub struct W1Tree {
    /// The root (`sensor.w1_root`).
    pub root: PathBuf,
}

impl W1Tree {
    /// Creates the tree under `dir` with a first temperature.
    pub fn new(dir: &Path, celsius: f64) -> W1Tree {
        let root = dir.join("w1/devices");
        fs::create_dir_all(root.join(SENSOR_ID)).unwrap();
        fs::create_dir_all(root.join("w1_bus_master1")).unwrap();
        let tree = W1Tree { root };
        tree.set(celsius);
        tree
    }

    /// Writes a new temperature (atomically, as the kernel's file never shows half a write).
    pub fn set(&self, celsius: f64) {
        self.write_raw(&w1_text(celsius));
    }

    /// Writes any text into `w1_slave` (an empty file is a failed read).
    pub fn write_raw(&self, text: &str) {
        let dir = self.root.join(SENSOR_ID);
        let tmp = dir.join(".w1_slave.tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, dir.join("w1_slave")).unwrap();
    }
}

/// Starts a simulated plug on 127.0.0.1:0.
pub fn sim(alias: &str, fault: Option<Fault>) -> SimPlug {
    SimPlug::start(SimOptions {
        model: Model::Hs100,
        alias: alias.into(),
        fault,
        ..SimOptions::default()
    })
    .unwrap()
}

/// The plug section for a simulated plug.
pub fn plug_json(sim: &SimPlug) -> Value {
    json!({ "host": "127.0.0.1", "port": sim.addr().port(), "deadman_s": 0 })
}

/// The shortest cycle the config allows (`cycle_s` is 0.5 to 3600 s).
pub const CYCLE_S: f64 = 0.5;

/// A config whose durations are scaled down 20x: a 0.5 s cycle (the
/// shortest allowed), a sensor read every 0.1 s (9 bits convert in 0.094 s)
/// and plug timeouts of 0.5 s. It always names its own `state_file`,
/// `overrides_file` and `control_socket` (the defaults are under /run and
/// /var/lib).
pub fn fast_config(dir: &Path, w1: &W1Tree) -> Value {
    json!({
        "mode": "heat",
        "low_limit": 18.0,
        "high_limit": 20.0,
        "cycle_s": CYCLE_S,
        "rate_limit_s": CYCLE_S,
        "switchover_delay_s": 0,
        "reconcile_s": 1.0,
        "sensor": {
            "backend": "w1",
            "id": SENSOR_ID,
            "w1_root": w1.root,
            "resolution_bits": 9,
            "interval_s": 0.1,
            "stale_after_s": 1.0,
            "max_step": 50.0
        },
        "plug_timing": { "connect_s": 0.5, "before_s": 0.5, "after_s": 0.5,
                         "spacing_s": 0.02, "retry_sleeps_s": [0, 0.05, 0.1] },
        "log_dir": dir.join("log"),
        "log_level": "debug",
        "state_file": dir.join("lib/state.json"),
        "overrides_file": dir.join("lib/overrides.json"),
        "control_socket": dir.join("control.sock"),
        "lock_dir": dir.join("locks"),
    })
}

/// One test's world: a temporary directory with a w1 tree and a fast config
/// that the test adjusts before starting the service.
pub struct Rig {
    /// Config, logs, state file and the w1 tree live here.
    pub dir: tempfile::TempDir,
    /// The sensor's files.
    pub w1: W1Tree,
    /// The config the service will get.
    pub config: Value,
}

impl Rig {
    /// A rig whose sensor reads `celsius`, in `heat` mode with no plug yet.
    pub fn new(celsius: f64) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let w1 = W1Tree::new(dir.path(), celsius);
        let config = fast_config(dir.path(), &w1);
        Rig { dir, w1, config }
    }

    /// Sets a top-level config key.
    pub fn with(mut self, key: &str, value: Value) -> Rig {
        self.config[key] = value;
        self
    }

    /// Configures `role` (`heater`, `cooler`) as the simulated plug.
    pub fn plug(self, role: &str, sim: &SimPlug) -> Rig {
        self.with(role, plug_json(sim))
    }

    /// Starts the service on this config.
    pub fn start(&self) -> Running {
        Running::start(self.dir.path(), &self.config)
    }
}

pub use super::bin;

/// The service running as a child process.
pub struct Running {
    /// Its temporary directory (config, logs, state).
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Running {
    /// Writes `config` and starts `kasa-thermostat run --config`.
    pub fn start(dir: &Path, config: &Value) -> Running {
        Running::start_with(dir, config, &[])
    }

    /// Writes `config` and starts `kasa-thermostat run --config` with `more`
    /// arguments (`--instance NAME`).
    pub fn start_with(dir: &Path, config: &Value, more: &[&str]) -> Running {
        let path = dir.join("config.json");
        fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
        let stderr = fs::File::create(dir.join("stderr.txt")).unwrap();
        let child = bin()
            .args(["run", "--config"])
            .arg(&path)
            .args(more)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Running {
            dir: dir.to_path_buf(),
            child: Some(child),
        }
    }

    /// Sends `signal` (SIGTERM, SIGINT, SIGKILL).
    pub fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// SIGTERM, then waits (up to 30 s) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(30))
    }

    /// Waits for the exit, killing the child after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the service did not exit within {limit:?}\n{}\n{}",
                    self.log(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kasa-thermostat.log`.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log/kasa-thermostat.log")).unwrap_or_default()
    }

    /// What the process wrote on stderr.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.txt")).unwrap_or_default()
    }

    /// `kasa_errors.log`.
    pub fn errors_log(&self) -> String {
        fs::read_to_string(self.dir.join("log/kasa_errors.log")).unwrap_or_default()
    }

    /// Every line of `readings.jsonl`.
    pub fn readings(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("log/readings.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every line of `plug-events.jsonl`.
    pub fn plug_events(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("log/plug-events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The config file's path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The control socket's path (as `fast_config` names it).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The state file's path.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("lib/state.json")
    }

    /// The state file.
    pub fn state(&self) -> Value {
        fs::read_to_string(self.state_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether
/// it held. (Waiting for a condition, not sleeping a fixed time.)
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the on-intervals of two plugs' transition logs ever overlap.
pub fn overlap(a: &[Transition], b: &[Transition], end: Instant) -> Option<Instant> {
    let intervals = |t: &[Transition]| {
        let mut out = Vec::new();
        let mut since = None;
        for tr in t {
            match (tr.on, since) {
                (true, None) => since = Some(tr.at),
                (false, Some(s)) => {
                    out.push((s, tr.at));
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(s) = since {
            out.push((s, end));
        }
        out
    };
    for (a0, a1) in intervals(a) {
        for (b0, b1) in intervals(b) {
            if a0 < b1 && b0 < a1 {
                return Some(a0.max(b0));
            }
        }
    }
    None
}
