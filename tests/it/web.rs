//! The web page against the real service (a child process) on loopback:
//! the session, the password and the CSRF token; a change through the API;
//! `read_only`; a 10 MB body, 500 idle connections and malformed requests
//! while the cycles go on; a port that cannot be bound.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::service::*;

const WAIT: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse";

/// A rig with a heater and the page on 127.0.0.1:0.
fn web_rig(read_only: bool) -> (Rig, kasa_thermostat::sim::SimPlug) {
    let heater = sim("heater", None);
    let rig = Rig::new(19.0).plug("heater", &heater);
    let pw = rig.dir.path().join("web-password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let rig = rig.with(
        "web",
        json!({"listen": "127.0.0.1:0", "password_file": pw, "read_only": read_only}),
    );
    (rig, heater)
}

/// Where the service's page listens, from its log.
fn web_addr(svc: &Running) -> SocketAddr {
    let mut found = None;
    assert!(
        eventually(WAIT, || {
            found = svc.log().lines().find_map(|l| {
                let rest = l.split("web page on http://").nth(1)?;
                rest.split('/').next()?.parse().ok()
            });
            found.is_some()
        }),
        "{}",
        svc.log()
    );
    found.unwrap()
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn request(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse(&out)
}

fn parse(out: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    request(addr, raw.as_bytes())
}

/// Logs in; the `Cookie` header value.
fn login(addr: SocketAddr) -> String {
    let a = http(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "password=correct+horse",
    );
    assert_eq!(a.status, 303, "{}", a.head);
    let cookie = a
        .head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap()
        .to_string();
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Strict; Path=/"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

/// The session's CSRF token, once the service has written its state.
fn csrf(addr: SocketAddr, cookie: &str) -> String {
    let mut a = http(addr, "GET", "/api/status", &[("Cookie", cookie)], "");
    assert!(
        eventually(WAIT, || {
            a = http(addr, "GET", "/api/status", &[("Cookie", cookie)], "");
            a.status == 200
        }),
        "{}",
        a.body
    );
    let v: Value = serde_json::from_str(&a.body).unwrap();
    v["csrf_token"].as_str().unwrap().to_string()
}

#[test]
fn the_api_needs_a_session_and_a_csrf_token_and_changes_go_through_the_command_path() {
    let (rig, _heater) = web_rig(false);
    let svc = rig.start();
    let addr = web_addr(&svc);

    // Without a session: the login page, and 401 for everything else.
    let page = http(addr, "GET", "/", &[], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"password\""), "{}", page.body);
    for path in [
        "/api/status",
        "/api/readings?since=6h",
        "/chart.svg?since=24h",
        "/app.js",
    ] {
        assert_eq!(http(addr, "GET", path, &[], "").status, 401, "{path}");
    }
    assert_eq!(
        http(addr, "POST", "/api/control", &[], "{\"mode\":\"off\"}").status,
        401
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/status",
            &[("Cookie", "kt_session=forged")],
            ""
        )
        .status,
        401
    );

    // A wrong password: 401 and a log line naming the address.
    let wrong = http(addr, "POST", "/login", &[], "password=nope");
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong password"));
    assert!(
        svc.log()
            .contains("web: wrong password from 127.0.0.1 (1 in a row)"),
        "{}",
        svc.log()
    );

    let cookie = login(addr);
    let token = csrf(addr, &cookie);
    assert!(eventually(WAIT, || {
        let a = http(addr, "GET", "/api/status", &[("Cookie", &cookie)], "");
        serde_json::from_str::<Value>(&a.body).unwrap()["temperature"] == 19.0
    }));

    // POSTs need the token.
    let body = "{\"mode\":\"off\"}";
    assert_eq!(
        http(addr, "POST", "/api/control", &[("Cookie", &cookie)], body).status,
        403
    );
    assert_eq!(
        http(
            addr,
            "POST",
            "/api/control",
            &[("Cookie", &cookie), ("X-CSRF-Token", "0000")],
            body
        )
        .status,
        403
    );
    let auth = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", token.as_str()),
    ];
    let ok = http(
        addr,
        "POST",
        "/api/control",
        &auth,
        "{\"mode\":\"off\",\"low\":17,\"high\":19}",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(
        ok.body
            .contains("mode heat -> off; limits 18 .. 20 -> 17 .. 19"),
        "{}",
        ok.body
    );
    assert!(eventually(WAIT, || svc.state()["mode"] == "off"
        && svc.state()["low_limit"] == 17.0));
    let kept: Value = serde_json::from_str(
        &std::fs::read_to_string(rig.dir.path().join("lib/overrides.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(kept["mode"]["source"], "web");
    let refused = http(addr, "POST", "/api/control", &auth, "{\"low\":30}");
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("key `low_limit`: 30 must be below high_limit (19)"),
        "{}",
        refused.body
    );
    assert_eq!(
        http(addr, "POST", "/api/control", &auth, "{\"bogus\":1}").status,
        400
    );

    // The data: readings, the chart, the report.
    let r = http(
        addr,
        "GET",
        "/api/readings?since=6h",
        &[("Cookie", &cookie)],
        "",
    );
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert!(!v["readings"].as_array().unwrap().is_empty(), "{}", r.body);
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/readings?since=soon",
            &[("Cookie", &cookie)],
            ""
        )
        .status,
        400
    );
    let chart = http(
        addr,
        "GET",
        "/chart.svg?since=24h",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(chart.status, 200);
    assert!(chart.head.contains("Content-Type: image/svg+xml") && chart.body.starts_with("<svg"));
    let report = http(
        addr,
        "GET",
        "/api/report?since=7d",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(report.status, 200, "{}", report.body);
    assert!(report.body.contains("\"plugs\""));

    // Logout ends the session.
    assert_eq!(http(addr, "POST", "/logout", &auth, "").status, 200);
    assert_eq!(
        http(addr, "GET", "/api/status", &[("Cookie", &cookie)], "").status,
        401
    );
}

#[test]
fn read_only_refuses_every_change() {
    let (rig, _heater) = web_rig(true);
    let svc = rig.start();
    let addr = web_addr(&svc);
    let cookie = login(addr);
    let token = csrf(addr, &cookie);
    let auth = [
        ("Cookie", cookie.as_str()),
        ("X-CSRF-Token", token.as_str()),
    ];
    assert_eq!(
        http(addr, "POST", "/api/control", &auth, "{\"mode\":\"off\"}").status,
        403
    );
    assert_eq!(http(addr, "POST", "/api/alert-test", &auth, "").status, 403);
    assert_eq!(svc.state()["mode"], "heat");
}

/// Raises this process's open-file limit to its hard limit (500 idle
/// connections and the rest of the tests need more than 1024).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a valid struct.
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
}

#[test]
fn a_huge_body_idle_connections_and_garbage_do_not_stop_the_page_or_the_cycles() {
    raise_nofile();
    let (rig, _heater) = web_rig(false);
    let svc = rig.start();
    let addr = web_addr(&svc);
    assert!(eventually(WAIT, || svc.readings().len() >= 2));

    // 10 MB: 413, while the body is still coming.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let big = 10 * 1024 * 1024;
    s.write_all(
        format!("POST /api/control HTTP/1.1\r\nHost: x\r\nContent-Length: {big}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(big / chunk.len()) {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    assert_eq!(parse(&out).status, 413, "{}", String::from_utf8_lossy(&out));
    drop(s);
    feeder.join().unwrap();

    // 500 idle connections: the page still answers within 2 s.
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let cycles_before = svc.readings().len();
    let t0 = Instant::now();
    let page = http(addr, "GET", "/", &[], "");
    let took = t0.elapsed();
    assert_eq!(page.status, 200);
    assert!(
        took < Duration::from_secs(2),
        "the page took {took:?} behind 500 idle connections"
    );
    eprintln!("page with 500 idle connections open: {took:?}");
    assert!(
        eventually(WAIT, || svc.readings().len() >= cycles_before + 2),
        "cycles go on with 500 idle connections"
    );
    drop(idle);

    // Malformed requests: an answer or a close, never a dead server.
    let head_9k = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let fixed: Vec<(Vec<u8>, u16)> = vec![
        (head_9k.into_bytes(), 431),
        (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 505),
        (
            b"POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
            411,
        ),
        (
            b"POST /login HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(),
            400,
        ),
        (b"GARBAGE\r\n\r\n".to_vec(), 400),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n".to_vec(), 401),
    ];
    for (raw, status) in &fixed {
        assert_eq!(
            request(addr, raw).status,
            *status,
            "{:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(60)])
        );
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pieces: [&[u8]; 10] = [
        b"GET ",
        b"POST ",
        b"/api/control",
        b" HTTP/1.1",
        b"\r\n",
        b"Content-Length: 3\r\n",
        b"Cookie: kt_session=x\r\n",
        b"\x00\xff",
        b"%%%",
        b":",
    ];
    for _ in 0..200 {
        let mut raw = Vec::new();
        for _ in 0..(next() % 12) {
            raw.extend_from_slice(pieces[(next() % 10) as usize]);
        }
        raw.extend_from_slice(b"\r\n\r\n");
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&raw);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        if !out.is_empty() {
            let status = parse(&out).status;
            assert!(
                (400..=505).contains(&status),
                "{status} for {:?}",
                String::from_utf8_lossy(&raw)
            );
        }
    }
    assert_eq!(http(addr, "GET", "/", &[], "").status, 200, "still serving");
    let n = svc.readings().len();
    assert!(
        eventually(WAIT, || svc.readings().len() >= n + 2),
        "still cycling"
    );
}

#[test]
fn a_port_that_cannot_be_bound_is_an_error_and_control_goes_on() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let (rig, _heater) = web_rig(false);
    let mut rig = rig;
    rig.config["web"]["listen"] = taken.local_addr().unwrap().to_string().into();
    let svc = rig.start();
    assert!(
        eventually(WAIT, || svc.log().contains("[ERROR]")
            && svc.log().contains("cannot listen on web.listen")),
        "{}",
        svc.log()
    );
    let n = svc.readings().len();
    assert!(
        eventually(WAIT, || svc.readings().len() >= n + 2),
        "cycles go on"
    );
}
