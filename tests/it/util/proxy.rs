//! A TCP proxy in front of a simulated plug that cuts the client's
//! connection right after it has forwarded a `set_relay_state` to the plug:
//! the switch reaches the relay, the answer never reaches the client. It is
//! the failure the "unknown is not off" issue names besides a lagging relay.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use kasa_thermostat::kasa::transport::xor;

/// The proxy; dropping it stops it.
pub struct CutProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes(head) as usize;
    if len > 64 * 1024 {
        return None;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    let mut frame = head.to_vec();
    frame.extend(body);
    Some(frame)
}

fn relay(mut client: TcpStream, upstream: SocketAddr, cuts: &AtomicU64) {
    let Ok(mut plug) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
        return;
    };
    let _ = plug.set_read_timeout(Some(Duration::from_secs(5)));
    while let Some(request) = read_frame(&mut client) {
        let plain = xor::unframe(&request).unwrap_or_default();
        let is_set = String::from_utf8_lossy(&plain).contains("set_relay_state");
        if plug.write_all(&request).is_err() {
            return;
        }
        let Some(reply) = read_frame(&mut plug) else {
            return;
        };
        if is_set {
            // The plug has switched; its answer is lost on the way back.
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        if client.write_all(&reply).is_err() {
            return;
        }
    }
}

impl CutProxy {
    /// A proxy on 127.0.0.1:0 in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (st, cu) = (stop.clone(), cuts.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let cu = cu.clone();
                    std::thread::spawn(move || relay(c, upstream, &cu));
                }
            }
        });
        CutProxy {
            addr,
            stop,
            cuts,
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many switches it has cut the answer of.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
