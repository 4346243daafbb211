//! What an AES ("securePassthrough") session costs: RSA-1024 key
//! generation (once per process), the RSA decryption of the handshake key,
//! a whole session setup (handshake and login) and one request, against the
//! simulated Tapo P110 (EU) fw 1.2.3 on loopback.
//!
//! ```text
//! cargo run --release --example aes_bench [KEYGENS]
//! cargo build --release --target aarch64-unknown-linux-musl --example aes_bench
//! qemu-aarch64 target/aarch64-unknown-linux-musl/release/examples/aes_bench 20
//! ```
//!
//! Key generation time is random (it searches for primes): the spread is
//! printed, not only the median.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use kasa_thermostat::kasa::credentials::Credentials;
use kasa_thermostat::kasa::transport::aes::{self, AesTransport, KeyPair, LoginVersion};
use kasa_thermostat::kasa::transport::Transport;
use kasa_thermostat::sim::{Model, SimOptions, SimPlug};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `min / median / p90 / max` of the samples, in ms.
fn spread(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<34} n={:<4} min {:>8.2}  median {:>8.2}  p90 {:>8.2}  max {:>8.2}  ms",
        v.len(),
        at(0.0),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keygens: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30)
        .max(1);

    let mut v = Vec::new();
    let mut last = None;
    for _ in 0..keygens {
        let t = Instant::now();
        let k = KeyPair::generate()?;
        v.push(ms(t.elapsed()));
        last = Some(k);
    }
    spread("RSA-1024 key generation", v);
    let key = Arc::new(last.ok_or("no key")?);

    // The device's side and ours of the key exchange, apart.
    let key_iv = [7u8; aes::KEY_IV_LEN];
    let mut seal = Vec::new();
    let mut open = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let sealed = aes::seal_handshake_key(key.public_pem(), &key_iv)?;
        seal.push(ms(t.elapsed()));
        let t = Instant::now();
        key.open_handshake_key(&sealed)?;
        open.push(ms(t.elapsed()));
    }
    spread("RSA encrypt (the device's side)", seal);
    spread("RSA decrypt of the handshake key", open);

    let creds = Credentials::new("bench@example.com", "bench password");
    let sim = SimPlug::start(SimOptions {
        model: Model::P110Aes,
        credentials: Some(creds.clone()),
        ..SimOptions::default()
    })?;
    let addr = sim.addr();
    let mut t = AesTransport::new(
        &addr.ip().to_string(),
        addr.port(),
        Some(creds),
        LoginVersion::V2,
        Duration::from_secs(2),
    )
    .with_key(Arc::clone(&key));
    let deadline = || Instant::now() + Duration::from_secs(5);
    let mut setup = Vec::new();
    for _ in 0..30 {
        t.close();
        let s = Instant::now();
        t.connect(deadline())?;
        setup.push(ms(s.elapsed()));
    }
    spread("session setup (handshake + login)", setup);
    let mut req = Vec::new();
    let get = json!({"method": "get_device_info"});
    for _ in 0..200 {
        let s = Instant::now();
        t.request(&get, deadline())?;
        req.push(ms(s.elapsed()));
    }
    spread("one request (get_device_info)", req);
    println!(
        "(client and simulated device share this process and its CPU; \
         {} handshakes, {} logins)",
        t.handshakes(),
        t.logins()
    );
    Ok(())
}
