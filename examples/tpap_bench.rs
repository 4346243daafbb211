//! `tpap_bench [HOST:PORT|sim] [N] [--plugp100 PYTHON]`: what TPAP costs the client.
//!
//! Against a simulated P110 on firmware 1.4.x started in this process
//! (`sim`, the default) or a TPAP device at HOST:PORT (credentials from
//! `KASA_USERNAME` and `KASA_PASSWORD`), it measures, on the calling thread
//! only (its own CPU from `getrusage(RUSAGE_THREAD)`, so the in-process
//! simulator does not count):
//!
//! * one session setup plus one request: `discover`, `pake_register`,
//!   `pake_share` (PBKDF2, two scalar multiplications and a few more for
//!   the shares, the key schedule) and a sealed `get_device_info`;
//! * one `get_device_info` round trip on an open session;
//! * sealing and opening a typical reply in memory (the crypto alone).
//!
//! With `--plugp100 PYTHON` (a Python with plugp100 6.0.2, as the TPAP
//! interop gate's venv has), plugp100's client is then run against the same
//! plug (`.ci/plugp100_tpap.py bench`) and its figures are printed below
//! ours. Its CPU is the whole Python process's; the plug's work is not in
//! it either, since the simulator runs in this process.
//!
//! Build with `--release`; the numbers are per operation.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use serde_json::json;

use kasa_thermostat::kasa::transport::tpap::crypto::{Sealer, SessionCipher, Suite};
use kasa_thermostat::kasa::transport::tpap::TpapTransport;
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::sim::Model;

mod common;

/// Runs `f` `n` times; prints (wall, cpu) per run in µs.
fn measure<E: std::fmt::Display>(
    what: &str,
    n: u64,
    f: impl FnMut() -> Result<(), E>,
) -> Result<(), String> {
    let (wall, cpu) = common::per_run(what, n, f)?;
    println!("ours     {what:<38} n={n:<6} wall_us={wall:>9.1} cpu_us={cpu:>9.1}");
    Ok(())
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let python = match args.iter().position(|a| a == "--plugp100") {
        Some(i) => {
            let p = args
                .get(i + 1)
                .cloned()
                .ok_or("--plugp100 needs a PYTHON")?;
            args.drain(i..i + 2);
            Some(p)
        }
        None => None,
    };
    let (n, creds, _sim, host, port) = common::bench_target(&args, Model::P110Tpap, 200)?;
    let deadline = || Instant::now() + Duration::from_secs(5);
    let new_transport =
        || TpapTransport::new(&host, port, Some(creds.clone()), Duration::from_secs(3));
    let req = json!({"method": "get_device_info"});

    println!("tpap_bench against {host}:{port}");
    // Warm-up: the first connection, page faults.
    new_transport()
        .request(&req, deadline())
        .map_err(|e| e.to_string())?;
    measure("session setup + 1 request", n, || {
        let mut t = new_transport();
        t.request(&req, deadline()).map(drop)
    })?;
    let mut t = new_transport();
    t.request(&req, deadline()).map_err(|e| e.to_string())?;
    measure("request round trip (get_device_info)", n * 10, || {
        t.request(&req, deadline()).map(drop)
    })?;

    let reply = serde_json::to_vec(&json!({"error_code": 0, "result": {
        "device_id": "80225A5B6C7D8E9F00112233445566778899AABB", "device_on": true,
        "fw_ver": "1.4.6 Build 250101 Rel.120000", "hw_ver": "1.0", "model": "P110",
        "nickname": "SGVhdCBtYXQ=", "rssi": -48, "on_time": 1234, "type": "SMART.TAPOPLUG",
        "mac": "50-C7-BF-00-00-00", "region": "Europe/London", "signal_level": 3}}))
    .map_err(|e| e.to_string())?;
    let suite = Suite::from_id(1).map_err(|e| e.to_string())?;
    for cipher in [SessionCipher::Aes128Ccm, SessionCipher::ChaCha20Poly1305] {
        let s = Sealer::new(suite, cipher, &[7u8; 32]);
        let mut seq = 0u32;
        measure(
            &format!("seal + open {} B, {}", reply.len(), cipher.name()),
            n * 50,
            || {
                seq += 1;
                s.open_reply(seq, &s.seal(seq, &reply)).map(drop)
            },
        )?;
    }

    if let Some(py) = python {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/plugp100_tpap.py");
        let out = Command::new(&py)
            .args([
                script,
                "bench",
                &format!("{host}:{port}"),
                &creds.username,
                &creds.password,
                &n.to_string(),
            ])
            .output()
            .map_err(|e| format!("cannot run {py}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "plugp100's bench failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tpap_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
