//! `klap_bench [HOST:PORT|sim] [REQUESTS]`: what KLAP costs the client.
//!
//! Against a simulated P110 started in this process (`sim`, the default) or
//! a KLAP device at HOST:PORT (credentials from `KASA_USERNAME` and
//! `KASA_PASSWORD`), it measures, on the calling thread only (its own CPU
//! from `getrusage(RUSAGE_THREAD)`, so the in-process simulator does not
//! count):
//!
//! * one `get_device_info` round trip through `KlapTransport` on an open
//!   session (sealing, HTTP, signature check, decryption, JSON);
//! * one verified on/off cycle through `SmartDevice` (set on, read back,
//!   set off, read back; no spacing sleep), as `plug_bench` does for the
//!   legacy protocol;
//! * one session setup (handshake1 + handshake2) apart;
//! * sealing and opening a typical reply in memory (the crypto alone).
//!
//! Build with `--release`; the numbers are per operation.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use kasa_thermostat::kasa::credentials::KlapVersion;
use kasa_thermostat::kasa::device::Device;
use kasa_thermostat::kasa::smart::SmartDevice;
use kasa_thermostat::kasa::transport::klap::{KlapCipher, KlapTransport};
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::kasa::TransportKind;
use kasa_thermostat::sim::Model;

mod common;

/// Runs `f` `n` times; prints (wall, cpu) per run in µs.
fn measure<E: std::fmt::Display>(
    what: &str,
    n: u64,
    f: impl FnMut() -> Result<(), E>,
) -> Result<(), String> {
    let (wall, cpu) = common::per_run(what, n, f)?;
    println!("{what:<44} n={n:<6} wall_us={wall:>9.1} client_cpu_us={cpu:>9.1}");
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (n, creds, _sim, host, port) = common::bench_target(&args, Model::P110, 2000)?;
    let deadline = || Instant::now() + Duration::from_secs(5);
    let new_transport = || {
        KlapTransport::new(
            &host,
            port,
            Some(creds.clone()),
            KlapVersion::V2,
            Duration::from_secs(3),
        )
    };

    println!("klap_bench against {host}:{port}");
    let mut t = new_transport();
    let req = json!({"method": "get_device_info"});
    t.request(&req, deadline()).map_err(|e| e.to_string())?;
    measure("request round trip (get_device_info)", n, || {
        t.request(&req, deadline()).map(drop)
    })?;

    let mut d = SmartDevice::new(new_transport(), TransportKind::Klap, None);
    d.read(deadline()).map_err(|e| e.to_string())?;
    measure("verified on/off cycle (4 requests)", n / 4, || {
        for on in [true, false] {
            d.set(on, deadline())?;
            let got = d.read(deadline())?.on;
            if got != on {
                return Err(kasa_thermostat::kasa::KasaError::Mismatch {
                    addr: d.address().to_string(),
                    want: on,
                    got,
                });
            }
        }
        Ok(())
    })?;
    // Leave a real device as it was found.
    let _ = d.set(false, deadline());

    let mut h = new_transport();
    measure("session setup (handshake1 + handshake2)", n / 10, || {
        h.handshake(deadline())
    })?;

    let reply = serde_json::to_vec(&json!({"error_code": 0, "result": {
        "device_id": "80225A5B6C7D8E9F00112233445566778899AABB", "device_on": true,
        "fw_ver": "1.3.0 Build 230905 Rel.152200", "hw_ver": "1.0", "model": "P110",
        "nickname": "SGVhdCBtYXQ=", "rssi": -48, "on_time": 1234, "type": "SMART.TAPOPLUG",
        "mac": "50-C7-BF-00-00-00", "region": "Europe/London", "signal_level": 3}}))
    .map_err(|e| e.to_string())?;
    let mut k = KlapCipher::new(&[1u8; 16], &[2u8; 16], &[3u8; 32]);
    measure(
        &format!("seal + open a {}-byte reply in memory", reply.len()),
        n * 5,
        || {
            let (body, seq) = k.encrypt(&reply);
            k.open(seq, &body).map(drop)
        },
    )?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("klap_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
