//! `plug_bench HOST:PORT CYCLES`: verified on/off cycles over one kept-open
//! connection (set on, read back, check; set off, read back, check; no spacing
//! sleep), to compare the legacy device's CPU cost with python-kasa's. `sim`
//! as the address starts a simulated plug in this process (its CPU then
//! counts too; the client thread's own CPU is printed on the line before).
//!
//! The last line is `cycles=N wall_s=X cpu_s=Y` (process CPU from getrusage).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use kasa_thermostat::cli::args::parse_host_port;
use kasa_thermostat::error::chain;
use kasa_thermostat::kasa::iot::IotDevice;
use kasa_thermostat::kasa::transport::xor::XorTransport;
use kasa_thermostat::kasa::{Device, KasaError, Timing, TransportKind};
use kasa_thermostat::sim::{SimOptions, SimPlug};

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn cycle(d: &mut IotDevice<XorTransport>, timeout: Duration) -> Result<(), KasaError> {
    for on in [true, false] {
        d.set(on, Instant::now() + timeout)?;
        let got = d.read(Instant::now() + timeout)?.on;
        if got != on {
            return Err(KasaError::Mismatch {
                addr: d.address().to_string(),
                want: on,
                got,
            });
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(target), Some(cycles)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: plug_bench HOST:PORT|sim CYCLES");
        return ExitCode::from(2);
    };
    let _sim;
    let (host, port) = if target == "sim" {
        let sim = match SimPlug::start(SimOptions::default()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("plug_bench: cannot start the simulated plug: {e}");
                return ExitCode::FAILURE;
            }
        };
        let a = sim.addr();
        _sim = sim;
        (a.ip().to_string(), a.port())
    } else {
        match parse_host_port(target) {
            Ok((host, port)) => (host, port.unwrap_or(9999)),
            Err(e) => {
                eprintln!("plug_bench: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let timing = Timing::default();
    let mut device = IotDevice::new(
        XorTransport::new(&host, port, timing.connect),
        None,
        TransportKind::Legacy,
    );
    let timeout = timing.after;
    // One warm-up cycle opens the connection and faults in the code.
    if let Err(e) = cycle(&mut device, timeout) {
        eprintln!("plug_bench: {}", chain(&e));
        return ExitCode::FAILURE;
    }
    let cpu0 = cpu_seconds(libc::RUSAGE_SELF);
    let thread0 = cpu_seconds(libc::RUSAGE_THREAD);
    let start = Instant::now();
    for i in 0..cycles {
        if let Err(e) = cycle(&mut device, timeout) {
            eprintln!("plug_bench: cycle {i}: {}", chain(&e));
            return ExitCode::FAILURE;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(libc::RUSAGE_SELF) - cpu0;
    let thread = cpu_seconds(libc::RUSAGE_THREAD) - thread0;
    let per = |x: f64| x / cycles.max(1) as f64 * 1e3;
    println!(
        "client_thread_cpu_s={thread:.4} cpu_ms_per_cycle={:.4} client_thread_cpu_ms_per_cycle={:.4} wall_ms_per_cycle={:.4}",
        per(cpu),
        per(thread),
        per(wall)
    );
    println!("cycles={cycles} wall_s={wall:.4} cpu_s={cpu:.4}");
    ExitCode::SUCCESS
}
