//! Subcommands `discover`, `plug` and `simulate-plug`.
//!
//! `plug ... on|off|state` go through the same worker as the service (three
//! attempts, read-back verification), so what works here works in the service.

use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::client::Client;
use super::credentials::Credentials;
use super::discovery::{self, Found};
use super::sim::{Fault, Model, SimOptions, SimPlug};
use super::worker::{Outlet, PlugCommand, PlugHandle, PlugTarget};
use crate::cli::{parse_flag, CliError, CmdResult};
use crate::config::PlugTiming;
use crate::Role;

/// Splits `HOST[:PORT]` (IPv6 as `[::1]:9999` or bare `::1`), defaulting the port.
pub fn parse_host_port(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("{text:?}: port {p:?} is not a number from 1 to 65535");
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse::<u16>().map_err(|_| bad_port(p))?,
            None if after.is_empty() => default_port,
            None => return Err(format!("{text:?}: expected ]:PORT")),
        };
        return Ok((host.to_string(), port));
    }
    match text.matches(':').count() {
        0 => Ok((text.to_string(), default_port)),
        1 => {
            let (h, p) = text.split_once(':').unwrap_or((text, ""));
            let port = p.parse::<u16>().map_err(|_| bad_port(p))?;
            if h.is_empty() {
                return Err(format!("{text:?}: the host is empty"));
            }
            Ok((h.to_string(), port))
        }
        // A bare IPv6 address.
        _ => Ok((text.to_string(), default_port)),
    }
}

/// A plug command that did not verify: one line naming host:port.
#[derive(Debug)]
struct PlugCmdError(String);

impl fmt::Display for PlugCmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlugCmdError {}

/// `kasa-thermostat discover [--target ADDR] [--timeout S] [--json]`.
pub fn discover(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut target = discovery::BROADCAST;
    let mut timeout = 3.0f64;
    let mut as_json = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("target") => {
                let text: String = parse_flag(parser, "--target")?;
                let (host, port) = parse_host_port(&text, 9999).map_err(CliError::Usage)?;
                target = crate::config::resolve(&host, port).map_err(|e| {
                    CliError::Usage(format!("--target {text:?}: cannot resolve: {e}"))
                })?;
            }
            Long("timeout") => timeout = parse_flag(parser, "--timeout")?,
            Long("json") => as_json = true,
            other => return Err(other.unexpected().into()),
        }
    }
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 600.0) {
        return Err(CliError::Usage(format!(
            "--timeout {timeout}: expected seconds, more than 0 and at most 600"
        )));
    }
    let found =
        discovery::discover(target, Duration::from_secs_f64(timeout)).map_err(CliError::failed)?;
    if as_json {
        let list: Vec<_> = found.iter().map(found_json).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        print!("{}", discovery_table(&found));
        if found.is_empty() {
            eprintln!("no device answered on {target} within {timeout} s");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn found_json(f: &Found) -> serde_json::Value {
    match &f.sysinfo {
        Some(s) => json!({
            "host": f.addr.ip().to_string(), "port": f.addr.port(),
            "alias": s.alias, "model": s.model, "mac": s.mac,
            "device_id": s.device_id,
            "state": s.relay_state.map(|r| r != 0),
            "outlets": s.children.iter().map(|c| json!({
                "id": c.id, "alias": c.alias, "state": c.state != 0
            })).collect::<Vec<_>>(),
            "protocol": "legacy",
        }),
        None => json!({
            "host": f.addr.ip().to_string(), "port": f.addr.port(),
            "protocol": f.klap.clone().unwrap_or_default(),
        }),
    }
}

/// The human table of `discover`.
pub fn discovery_table(found: &[Found]) -> String {
    let mut rows = vec![[
        "ALIAS".to_string(),
        "MODEL".into(),
        "HOST".into(),
        "MAC".into(),
        "STATE".into(),
        "OUTLETS".into(),
    ]];
    for f in found {
        match &f.sysinfo {
            Some(s) => {
                let state = match s.relay_state {
                    Some(r) => if r != 0 { "on" } else { "off" }.to_string(),
                    None => "-".into(),
                };
                let outlets = if s.children.is_empty() {
                    "-".to_string()
                } else {
                    s.children
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{i}:{}", if c.state != 0 { "on" } else { "off" }))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                rows.push([
                    s.alias.clone(),
                    s.model.clone(),
                    f.addr.to_string(),
                    s.mac.clone(),
                    state,
                    outlets,
                ]);
            }
            None => rows.push([
                "(needs KLAP; see Third-Party Compatibility)".into(),
                f.klap.clone().unwrap_or_default(),
                f.addr.ip().to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
        }
    }
    let widths: Vec<usize> = (0..6)
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
pub fn plug(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut positional: Vec<String> = Vec::new();
    let mut outlet: Option<Outlet> = None;
    let mut as_json = false;
    let mut scale = 1.0f64;
    while let Some(arg) = parser.next()? {
        match arg {
            Long("child") | Long("outlet") if outlet.is_some() => {
                return Err(CliError::Usage(
                    "give either --child ID or --outlet N, once".into(),
                ))
            }
            Long("child") => outlet = Some(Outlet::Id(parse_flag(parser, "--child")?)),
            Long("outlet") => outlet = Some(Outlet::Index(parse_flag(parser, "--outlet")?)),
            Long("json") => as_json = true,
            // Hidden: tests run the real schedule scaled down.
            Long("timing-scale") => scale = parse_flag(parser, "--timing-scale")?,
            Value(v) => positional.push(v.string()?),
            other => return Err(other.unexpected().into()),
        }
    }
    let [addr, action] = positional.as_slice() else {
        return Err(CliError::Usage(
            "plug: expected HOST[:PORT] and one of state, on, off, sysinfo".into(),
        ));
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(CliError::Usage(
            "--timing-scale: expected a positive number".into(),
        ));
    }
    let (host, port) = parse_host_port(addr, 9999).map_err(CliError::Usage)?;
    let timing = PlugTiming::default().scaled(scale);
    let target = PlugTarget {
        role: Role::Manual,
        host,
        port,
        outlet,
    };
    let cmd = match action.as_str() {
        "on" => PlugCommand::Set { on: true },
        "off" => PlugCommand::Set { on: false },
        "state" => PlugCommand::Read,
        "sysinfo" => return sysinfo(&target, &timing, as_json),
        other => {
            return Err(CliError::Usage(format!(
                "plug: unknown action {other:?} (expected state, on, off or sysinfo)"
            )))
        }
    };
    let address = target.address();
    let outlet_text = target.outlet.as_ref().map(ToString::to_string);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let handle = PlugHandle::spawn(target, timing, tx).map_err(CliError::failed)?;
    handle.send(cmd.clone());
    let outcome = rx.recv().map_err(|_| {
        CliError::failed(PlugCmdError(format!(
            "{address}: the plug worker stopped without an answer"
        )))
    })?;
    drop(handle);
    match outcome.result {
        Ok(Some(on)) => {
            if as_json {
                println!(
                    "{}",
                    json!({"host": address, "outlet": outlet_text, "on": on,
                           "verified": cmd != PlugCommand::Read, "attempts": outcome.attempts})
                );
            } else {
                let what = if cmd == PlugCommand::Read {
                    ""
                } else {
                    " (verified)"
                };
                println!("{address}: {}{what}", if on { "on" } else { "off" });
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(f) => Err(CliError::failed(PlugCmdError(format!(
            "{} failed after {} attempts: {}",
            match cmd {
                PlugCommand::Set { on: true } => "switching on",
                PlugCommand::Set { on: false } => "switching off",
                _ => "reading the state",
            },
            outcome.attempts,
            f.last_error
        )))),
    }
}

fn sysinfo(target: &PlugTarget, timing: &PlugTiming, as_json: bool) -> CmdResult {
    let mut client = Client::new(&target.host, target.port, timing);
    let info = client
        .get_sysinfo(timing.before())
        .map_err(CliError::failed)?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string(&info).map_err(CliError::failed)?
        );
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&info).map_err(CliError::failed)?
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `kasa-thermostat simulate-plug [--bind ADDR:PORT] [--model M] [--fault KIND]
/// [--username U --password P]`:
/// prints the address on the first line of stdout, then serves until SIGINT/SIGTERM.
pub fn simulate_plug(parser: &mut lexopt::Parser) -> CmdResult {
    use lexopt::prelude::*;
    let mut opts = SimOptions::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("bind") => opts.bind = parse_flag::<SocketAddr>(parser, "--bind")?,
            Long("model") => opts.model = parse_flag::<Model>(parser, "--model")?,
            Long("fault") => opts.fault = Some(parse_flag::<Fault>(parser, "--fault")?),
            Long("alias") => opts.alias = parse_flag(parser, "--alias")?,
            Long("klap-only") => opts.klap_only = true,
            Long("username") => {
                let user: String = parse_flag(parser, "--username")?;
                let pass = opts.credentials.take().map(|c| c.password);
                opts.credentials = Some(Credentials::new(user, pass.unwrap_or_default()));
            }
            Long("password") => {
                let pass: String = parse_flag(parser, "--password")?;
                let user = opts.credentials.take().map(|c| c.username);
                opts.credentials = Some(Credentials::new(user.unwrap_or_default(), pass));
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(CliError::failed)?;
    }
    let bind = opts.bind;
    let model = opts.model;
    let sim = SimPlug::start(opts).map_err(|e| {
        CliError::failed(PlugCmdError(format!(
            "simulate-plug: cannot bind {bind}: {e}"
        )))
    })?;
    println!("{}", sim.addr());
    eprintln!(
        "simulated {} on {} (tcp and udp); Ctrl-C stops it",
        model.model_name(),
        sim.addr()
    );
    // stdout may be a pipe read by a script waiting for the address.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(sim);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_host_port;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("plug.lan", 9999),
            Ok(("plug.lan".into(), 9999))
        );
        assert_eq!(
            parse_host_port("10.0.0.5:80", 9999),
            Ok(("10.0.0.5".into(), 80))
        );
        assert_eq!(parse_host_port("[::1]:7", 9999), Ok(("::1".into(), 7)));
        assert_eq!(parse_host_port("[::1]", 9999), Ok(("::1".into(), 9999)));
        assert_eq!(
            parse_host_port("fe80::1", 9999),
            Ok(("fe80::1".into(), 9999))
        );
        assert!(parse_host_port("h:99999", 9999).is_err());
        assert!(parse_host_port(":5", 9999).is_err());
    }
}
