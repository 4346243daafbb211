//! CPU-time measurement shared by the transport benchmarks (`klap_bench`,
//! `tpap_bench`): each includes this file with `mod common;`.

use std::time::Instant;

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
