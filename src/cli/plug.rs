//! `plug`, `discover` and `simulate-plug`.
//!
//! `plug ... on|off|state` go through the same worker as the service (three
//! attempts, read-back verification), so what works here works in the service.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::args::{parse_host_port, DiscoverArgs, PlugAction, PlugArgs, SimulatePlugArgs};
use super::error::{CliError, CmdResult, Message};
use crate::kasa::discovery::{self, Found};
use crate::kasa::{Credentials, Outlet, PlugHandle, PlugTarget, Timing};
use crate::msg::{Completion, PlugCommand, Role};
use crate::sim::fixture::Fixture;
use crate::sim::{SimOptions, SimPlug};

/// `kasa-thermostat discover [--target ADDR] [--timeout S] [--json]`.
pub(crate) fn discover(a: DiscoverArgs) -> CmdResult {
    let target = match &a.target {
        None => discovery::BROADCAST,
        Some(text) => {
            let (host, port) = parse_host_port(text).map_err(CliError::Usage)?;
            crate::kasa::transport::net::resolve(&host, port.unwrap_or(9999))
                .map_err(|e| CliError::Usage(format!("--target {text:?}: cannot resolve: {e}")))?
        }
    };
    let found = discovery::discover(target, Duration::from_secs_f64(a.timeout))
        .map_err(CliError::failed)?;
    if a.json {
        let list: Vec<_> = found.iter().map(found_json).collect();
        outln!("{}", serde_json::Value::Array(list));
    } else {
        out!("{}", discovery_table(&found));
        if found.is_empty() {
            eprintln!("no device answered on {target} within {} s", a.timeout);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn found_json(f: &Found) -> serde_json::Value {
    let mut v = match &f.sysinfo {
        Some(s) => json!({
            "alias": s.alias, "mac": s.mac,
            "device_id": s.device_id,
            "state": s.relay_state,
            "outlets": s.children.iter().map(|c| json!({
                "id": c.id, "alias": c.alias, "state": c.state
            })).collect::<Vec<_>>(),
        }),
        None => {
            let p = f.probe.clone().unwrap_or_default();
            let mut v = json!({
                "mac": p.mac, "device_id": p.device_id, "device_type": p.device_type,
                "http_port": p.http_port, "login_version": p.lv,
            });
            if let Some(pref) = p.tpap_preferred {
                v["tpap_preferred"] = json!(pref);
            }
            v
        }
    };
    v["host"] = json!(f.addr.ip().to_string());
    v["port"] = json!(f.addr.port());
    v["model"] = json!(f.model());
    v["protocol"] = json!(f.protocol());
    v["credentials"] = json!(f.needs_credentials());
    v
}

/// The human table of `discover`.
pub(crate) fn discovery_table(found: &[Found]) -> String {
    const COLS: usize = 8;
    let mut rows = vec![[
        "ALIAS".to_string(),
        "MODEL".into(),
        "HOST".into(),
        "PROTOCOL".into(),
        "CREDENTIALS".into(),
        "MAC".into(),
        "STATE".into(),
        "OUTLETS".into(),
    ]];
    let on_off = |on: bool| if on { "on" } else { "off" };
    for f in found {
        let creds = if f.needs_credentials() { "needed" } else { "-" };
        match &f.sysinfo {
            Some(s) => {
                let state = s.relay_state.map(on_off).unwrap_or("-").to_string();
                let outlets = if s.children.is_empty() {
                    "-".to_string()
                } else {
                    s.children
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{i}:{}", on_off(c.state)))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                rows.push([
                    s.alias.clone(),
                    f.model(),
                    f.addr.to_string(),
                    f.protocol(),
                    creds.into(),
                    s.mac.clone(),
                    state,
                    outlets,
                ]);
            }
            None => {
                let p = f.probe.clone().unwrap_or_default();
                let model = f.model();
                rows.push([
                    // The 20002 answer has no name; `plug HOST sysinfo` shows it.
                    "-".into(),
                    if model.is_empty() {
                        p.device_type.clone()
                    } else {
                        model
                    },
                    // A real device answers from 20002 and serves HTTP on 80;
                    // a simulated one answers from the port it serves on.
                    if f.addr.port() == discovery::probe::KLAP_PORT {
                        f.addr.ip().to_string()
                    } else {
                        f.addr.to_string()
                    },
                    f.protocol(),
                    creds.into(),
                    if p.mac.is_empty() { "-".into() } else { p.mac },
                    "-".into(),
                    "-".into(),
                ])
            }
        }
    }
    let widths: Vec<usize> = (0..COLS)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `kasa-thermostat plug HOST[:PORT] state|on|off|sysinfo [--child ID | --outlet N] [--json]`.
pub(crate) fn plug(a: PlugArgs) -> CmdResult {
    let (host, port) = parse_host_port(&a.host).map_err(CliError::Usage)?;
    let timing = Timing::default().scaled(a.timing_scale);
    let outlet = match (a.child, a.outlet) {
        (Some(id), _) => Some(Outlet::Id(id)),
        (None, Some(n)) => Some(Outlet::Index(n)),
        (None, None) => None,
    };
    let target = PlugTarget {
        role: Role::Manual,
        host,
        port,
        outlet,
        transport: a.protocol,
    };
    let credentials = credentials(a.username, a.password_file)?;
    let mut device = crate::kasa::open_device(&target, &timing, credentials);
    let cmd = match a.action {
        PlugAction::On => PlugCommand::on(None),
        PlugAction::Off => PlugCommand::off(None),
        PlugAction::State => PlugCommand::Read,
        PlugAction::Sysinfo => {
            let info = device
                .info(Instant::now() + timing.before)
                .map_err(CliError::failed)?;
            let text = if a.json {
                serde_json::to_string(&info)
            } else {
                serde_json::to_string_pretty(&info)
            };
            outln!("{}", text.map_err(CliError::failed)?);
            return Ok(ExitCode::SUCCESS);
        }
    };
    // The outlet's own name, as the app shows it (one more request on the
    // same session; if it fails, the worker's command says why).
    let alias = match &target.outlet {
        Some(o) => device
            .info(Instant::now() + timing.before)
            .ok()
            .and_then(|info| outlet_alias(&info, o)),
        None => None,
    };
    let name = match &target.outlet {
        Some(o) => format!("{} outlet {o}", target.address()),
        None => target.address(),
    };
    let shown = match &alias {
        Some(a) => format!("{name} {a:?}"),
        None => name.clone(),
    };
    let outlet_json = target.outlet.as_ref().map(ToString::to_string);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let handle = PlugHandle::spawn(target, timing, device, tx).map_err(CliError::failed)?;
    handle.send(cmd.clone());
    let outcome = rx.recv().map_err(|_| {
        CliError::failed(Message(format!(
            "{name}: the plug worker stopped without an answer"
        )))
    })?;
    drop(handle);
    let verified = cmd != PlugCommand::Read;
    match (&outcome.completion, outcome.state.and_then(|s| s.known())) {
        (Completion::Done, Some(on)) => {
            if a.json {
                outln!(
                    "{}",
                    json!({"host": name, "outlet": outlet_json, "alias": alias, "on": on,
                           "verified": verified, "attempts": outcome.attempts})
                );
            } else {
                let what = if verified { " (verified)" } else { "" };
                outln!("{shown}: {}{what}", if on { "on" } else { "off" });
            }
            Ok(ExitCode::SUCCESS)
        }
        (Completion::Failed(f), _) => {
            let what = match cmd {
                PlugCommand::Set { on: true, .. } => "switching on",
                PlugCommand::Set { on: false, .. } => "switching off",
                _ => "reading the state",
            };
            let how = if f.permanent && outcome.attempts == 1 {
                "failed (not retried: trying again cannot help)".to_string()
            } else {
                format!("failed after {} attempts", outcome.attempts)
            };
            let unknown = if outcome.state == Some(crate::msg::PlugState::Unknown) {
                "; its state is unknown"
            } else {
                ""
            };
            Err(CliError::failed(Message(format!(
                "{what} {how}{unknown}: {}",
                f.message
            ))))
        }
        _ => Err(CliError::failed(Message(format!(
            "{name}: no state in the answer"
        )))),
    }
}

/// The alias of `outlet` in a strip's info: the legacy sysinfo's
/// `children[].alias`, or the SMART `child_device_list[].nickname` (base64).
fn outlet_alias(info: &serde_json::Value, outlet: &Outlet) -> Option<String> {
    let (list, smart) = match info.get("children").and_then(|c| c.as_array()) {
        Some(l) => (l, false),
        None => (info.get("child_device_list")?.as_array()?, true),
    };
    let child = match outlet {
        Outlet::Index(i) => list.get(*i)?,
        Outlet::Id(id) => list.iter().find(|c| {
            let cid = c
                .get(if smart { "device_id" } else { "id" })
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            cid == id || (id.len() <= 2 && !id.is_empty() && cid.ends_with(id.as_str()))
        })?,
    };
    if smart {
        crate::kasa::smart::nickname(child)
    } else {
        child.get("alias")?.as_str().map(str::to_string)
    }
}

/// The TP-Link account for a KLAP/AES plug: `--username` and
/// `--password-file`, else `$KASA_USERNAME` and `$KASA_PASSWORD`
/// (python-kasa's names), else none (the devices' defaults are tried).
fn credentials(
    username: Option<String>,
    password_file: Option<std::path::PathBuf>,
) -> Result<Option<Credentials>, CliError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let username = username.or_else(|| env("KASA_USERNAME"));
    let password = match &password_file {
        Some(path) => Some(crate::config::read_password(path).map_err(CliError::failed)?),
        None => env("KASA_PASSWORD"),
    };
    match (username, password) {
        (Some(u), Some(p)) => Ok(Some(Credentials::new(u, p))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CliError::Usage(
            "--username needs --password-file F (or $KASA_PASSWORD)".into(),
        )),
        (None, Some(_)) => Err(CliError::Usage(
            "a password needs --username U (or $KASA_USERNAME)".into(),
        )),
    }
}

/// `kasa-thermostat simulate-plug [--bind ADDR:PORT] [--model M] [--fault KIND]`:
/// prints the address on the first line of stdout, then serves until SIGINT/SIGTERM.
pub(crate) fn simulate_plug(a: SimulatePlugArgs) -> CmdResult {
    let fixture = match &a.fixture {
        Some(path) => Some(Arc::new(Fixture::load(path).map_err(CliError::failed)?)),
        None => None,
    };
    let what = match &fixture {
        Some(f) => f.describe(),
        None => a.model.model_name().to_string(),
    };
    let opts = SimOptions {
        bind: a.bind,
        model: a.model,
        fault: a.fault,
        alias: a.alias,
        klap_only: a.klap_only,
        credentials: match (a.username, a.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            _ => None,
        },
        no_countdown: a.no_countdown,
        fixture,
        tpap_preferred: a.tpap_preferred,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(CliError::failed)?;
    }
    let bind = opts.bind;
    let mut log = match &a.transitions {
        Some(path) => Some(TransitionLog::open(path).map_err(|e| {
            CliError::failed(Message(format!(
                "simulate-plug: cannot write {}: {e}",
                path.display()
            )))
        })?),
        None => None,
    };
    let sim = SimPlug::start(opts).map_err(|e| {
        CliError::failed(Message(format!("simulate-plug: cannot bind {bind}: {e}")))
    })?;
    // stdout may be a pipe read by a script waiting for the address (and
    // flushed for it); a script that has read it and closed the pipe still
    // wants the plug served.
    let _ = super::output::write_out(format_args!("{}\n", sim.addr()));
    eprintln!(
        "simulated {what} on {} (tcp and udp); Ctrl-C stops it",
        sim.addr()
    );
    let state = sim.state();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(log) = &mut log {
            log.catch_up(&state.transitions());
        }
    }
    drop(sim);
    if let Some(log) = &mut log {
        log.catch_up(&state.transitions());
        log.power_off(&state.transitions());
    }
    Ok(ExitCode::SUCCESS)
}

/// `simulate-plug --transitions FILE`: the relay's changes, with wall-clock
/// times, for tests that check invariants across processes.
struct TransitionLog {
    file: crate::outputs::DataLog,
    written: usize,
}

impl TransitionLog {
    fn open(path: &std::path::Path) -> std::io::Result<TransitionLog> {
        Ok(TransitionLog {
            file: crate::outputs::DataLog::open(path)?,
            written: 0,
        })
    }

    fn unix_ms(at: Instant) -> f64 {
        let wall = std::time::SystemTime::now()
            .checked_sub(at.elapsed())
            .unwrap_or(std::time::UNIX_EPOCH);
        wall.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    }

    fn catch_up(&mut self, all: &[crate::sim::Transition]) {
        for t in all.iter().skip(self.written) {
            let line = json!({"t_ms": Self::unix_ms(t.at), "outlet": t.outlet, "on": t.on});
            let _ = self.file.append(&line.to_string());
        }
        self.written = all.len();
    }

    /// Every outlet whose last change was on goes off with the process.
    fn power_off(&mut self, all: &[crate::sim::Transition]) {
        let mut last: std::collections::BTreeMap<Option<usize>, bool> = Default::default();
        for t in all {
            last.insert(t.outlet, t.on);
        }
        for (outlet, on) in last {
            if on {
                let line = json!({"t_ms": Self::unix_ms(Instant::now()), "outlet": outlet, "on": false, "exit": true});
                let _ = self.file.append(&line.to_string());
            }
        }
    }
}
