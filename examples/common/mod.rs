//! CPU-time measurement shared by the transport benchmarks (`klap_bench`,
//! `tpap_bench`): each includes this file with `mod common;`.

use std::time::Instant;

use kasa_thermostat::kasa::credentials::Credentials;
use kasa_thermostat::sim::{Model, SimOptions, SimPlug};

/// This thread's CPU time (user + system) in seconds, NaN when the kernel
/// will not say. Per thread, so that a simulator running in the same
/// process does not count.
pub fn thread_cpu() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Runs `f` `n` times; returns (wall, cpu) per run in µs, or the first
/// failure named by `what` and the run.
pub fn per_run<E: std::fmt::Display>(
    what: &str,
    n: u64,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<(f64, f64), String> {
    let (w0, c0) = (Instant::now(), thread_cpu());
    for i in 0..n {
        f().map_err(|e| format!("{what}, run {i}: {e}"))?;
    }
    let wall = w0.elapsed().as_secs_f64() * 1e6 / n as f64;
    let cpu = (thread_cpu() - c0) * 1e6 / n as f64;
    Ok((wall, cpu))
}

/// Where a benchmark runs, from its arguments `[HOST:PORT|sim] [N]`: the
/// count (`default_n` when not given), the credentials, the simulated plug
/// of `model` started here for `sim` (kept alive by the caller), and the
/// host and port. A real device's credentials come from `KASA_USERNAME`
/// and `KASA_PASSWORD`.
pub fn bench_target(
    args: &[String],
    model: Model,
    default_n: u64,
) -> Result<(u64, Credentials, Option<SimPlug>, String, u16), String> {
    let target = args.first().map(String::as_str).unwrap_or("sim");
    let n: u64 = match args.get(1) {
        Some(s) => s.parse().map_err(|_| format!("{s}: not a count"))?,
        None => default_n,
    };
    if target == "sim" {
        let creds = Credentials::new("bench@example.com", "bench password");
        let sim = SimPlug::start(SimOptions {
            model,
            credentials: Some(creds.clone()),
            ..SimOptions::default()
        })
        .map_err(|e| format!("cannot start the simulated P110: {e}"))?;
        let a = sim.addr();
        Ok((n, creds, Some(sim), a.ip().to_string(), a.port()))
    } else {
        let (h, p) = target.rsplit_once(':').ok_or("expected HOST:PORT or sim")?;
        let p: u16 = p.parse().map_err(|_| format!("{p}: not a port"))?;
        let creds = Credentials::new(
            std::env::var("KASA_USERNAME").unwrap_or_default(),
            std::env::var("KASA_PASSWORD").unwrap_or_default(),
        );
        Ok((n, creds, None, h.to_string(), p))
    }
}
