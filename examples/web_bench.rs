//! What the web page costs and how it holds up: its threads, the process's
//! resident memory, and the latency of the page and of `/api/status`, idle
//! and with N idle connections open (default 500), against the real service
//! in-process (a simulated plug, a w1 directory, a 0.5-s cycle), plus the
//! control cycles counted meanwhile.
//!
//! ```sh
//! cargo run --release --example web_bench            # 500 idle connections
//! cargo run --release --example web_bench -- 2000
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kasa_thermostat::config::Config;
use kasa_thermostat::sensor::scratchpad_for;
use kasa_thermostat::sensor::w1::format_w1_slave;
use kasa_thermostat::service::{Options, Service};
use kasa_thermostat::sim::{SimOptions, SimPlug};
use kasa_thermostat::testkit::RecordingNotifier;

const ID: &str = "28-0316a2797aff";

fn proc_status(key: &str) -> String {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

fn threads_named(prefix: &str) -> usize {
    fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim().starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

fn get(addr: SocketAddr, path: &str, cookie: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let raw = format!("GET {path} HTTP/1.1\r\nHost: b\r\nCookie: {cookie}\r\n\r\n");
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let status = String::from_utf8_lossy(&out[..out.len().min(12)])
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn login(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = "password=bench";
    let raw = format!(
        "POST /login HTTP/1.1\r\nHost: b\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string()
}

fn spread(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<44} n={:<3} median {:>7.2}  p90 {:>7.2}  max {:>7.2}  ms",
        v.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn latency(addr: SocketAddr, path: &str, cookie: &str, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            let (status, _) = get(addr, path, cookie);
            assert_eq!(status, 200, "{path}");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn main() {
    let idle_n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N idle connections"))
        .unwrap_or(500);
    // SAFETY: getrlimit/setrlimit on a valid struct: room for the idle
    // connections on both ends.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
    let dir = std::env::temp_dir().join(format!("kasa-web-bench-{}", std::process::id()));
    let root = dir.join("w1");
    fs::create_dir_all(root.join(ID)).unwrap();
    fs::write(
        root.join(ID).join("w1_slave"),
        format_w1_slave(&scratchpad_for(19.0)),
    )
    .unwrap();
    fs::write(dir.join("pw"), "bench\n").unwrap();
    let plug = SimPlug::start(SimOptions::default()).unwrap();
    let config = |web: bool| {
        let mut v = serde_json::json!({
            "mode": "heat", "cycle_s": 0.5, "rate_limit_s": 0.5, "reconcile_s": 60,
            "sensor": {"backend": "w1", "id": ID, "w1_root": root, "interval_s": 0.1,
                       "resolution_bits": 9, "stale_after_s": 5, "max_step": 50},
            "heater": {"host": "127.0.0.1", "port": plug.addr().port(), "deadman_s": 0},
            "log_dir": dir.join("log"), "state_file": dir.join("state.json"),
            "overrides_file": dir.join("overrides.json"), "control_socket": dir.join("c.sock"),
        });
        if web {
            v["web"] =
                serde_json::json!({"listen": "127.0.0.1:0", "password_file": dir.join("pw")});
        }
        Config::from_json(&v.to_string()).unwrap()
    };
    let options = || Options {
        notifier: Arc::new(RecordingNotifier::new()),
        watchdog: None,
        observers: Vec::new(),
    };
    let t0 = Instant::now();
    let base = Service::start(config(false), None, options()).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let threads_without = proc_status("Threads:");
    let rss_without = proc_status("VmRSS:");
    base.shutdown();
    base.wait().unwrap();
    let svc = Service::start(config(true), None, options()).unwrap();
    let addr = svc.web_addr().expect("the page listens");
    std::thread::sleep(Duration::from_secs(2));
    println!("service without the page: threads {threads_without}, VmRSS {rss_without}");
    println!(
        "service with the page:    threads {} (web-*: {}), VmRSS {}",
        proc_status("Threads:"),
        threads_named("web-"),
        proc_status("VmRSS:")
    );
    let cookie = login(addr);
    spread(
        "GET / (the dashboard), idle",
        latency(addr, "/", &cookie, 50),
    );
    spread(
        "GET /api/status, idle",
        latency(addr, "/api/status", &cookie, 50),
    );
    let readings = || {
        fs::read_to_string(dir.join("log/readings.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let before = (readings(), Instant::now());
    let idle: Vec<TcpStream> = (0..idle_n)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "with {idle_n} idle connections:   threads {} (web-*: {}), VmRSS {}",
        proc_status("Threads:"),
        threads_named("web-"),
        proc_status("VmRSS:")
    );
    spread(
        &format!("GET / with {idle_n} idle connections"),
        latency(addr, "/", &cookie, 50),
    );
    spread(
        &format!("GET /api/status with {idle_n} idle connections"),
        latency(addr, "/api/status", &cookie, 50),
    );
    let (_, svg) = get(addr, "/chart.svg?since=24h&w=390", &cookie);
    println!("chart.svg (390 px): {} bytes", svg.len());
    std::thread::sleep(Duration::from_secs(3));
    let cycles = readings() - before.0;
    println!(
        "control cycles meanwhile: {cycles} in {:.1} s (cycle_s 0.5)",
        before.1.elapsed().as_secs_f64()
    );
    drop(idle);
    svc.shutdown();
    svc.wait().unwrap();
    let _ = fs::remove_dir_all(&dir);
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
}
