//! Who may use the page: one password (from `web.password_file`), compared
//! in constant time; sessions in an `HttpOnly; SameSite=Strict; Path=/`
//! cookie, each with its own CSRF token that every POST must carry in
//! `X-CSRF-Token`; failed logins limited per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "kt_session";
/// A session unused this long ends.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the least recently used goes first).
const MAX_SESSIONS: usize = 64;
/// Failed logins from one address before it must wait.
const FREE_FAILURES: u32 = 5;
/// The first wait; it doubles with each further failure.
const FIRST_LOCK: Duration = Duration::from_secs(30);
/// The longest wait.
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Addresses tracked at most.
const MAX_CLIENTS: usize = 1024;

/// Whether `a` and `b` are equal, in a time that does not depend on where
/// they differ (both are hashed first, so not on their lengths either).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    let diff = x
        .iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q));
    std::hint::black_box(diff) == 0
}

/// 32 random bytes as hex; `None` when the system has no randomness.
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

struct Session {
    csrf: String,
    last: Instant,
}

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// What a login attempt may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the password.
    Open,
    /// Too many failures: wait this long.
    Locked(Duration),
}

/// The password, the sessions and the failed-login counts.
pub struct Auth {
    password: String,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Auth {
    /// With this password.
    pub fn new(password: String) -> Auth {
        Auth {
            password,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `peer` may try a password now.
    pub fn gate(&self, peer: IpAddr, now: Instant) -> Gate {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&peer).and_then(|f| f.locked_until) {
            Some(until) if until > now => Gate::Locked(until - now),
            _ => Gate::Open,
        }
    }

    /// Checks `password` from `peer`: a new session's cookie value on
    /// success; on failure the count of failures in a row from there.
    pub fn login(&self, peer: IpAddr, password: &str, now: Instant) -> Result<String, u32> {
        if same_secret(password, &self.password) {
            self.failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&peer);
            let (Some(token), Some(csrf)) = (random_token(), random_token()) else {
                return Err(0);
            };
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.retain(|_, s| now.duration_since(s.last) < SESSION_IDLE);
            if sessions.len() >= MAX_SESSIONS {
                if let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last)
                    .map(|(k, _)| k.clone())
                {
                    sessions.remove(&oldest);
                }
            }
            sessions.insert(token.clone(), Session { csrf, last: now });
            return Ok(token);
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        if failures.len() >= MAX_CLIENTS && !failures.contains_key(&peer) {
            if let Some(oldest) = failures.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k) {
                failures.remove(&oldest);
            }
        }
        let f = failures.entry(peer).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        f.count += 1;
        f.last = now;
        if f.count >= FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES).min(10);
            let wait = (FIRST_LOCK * 2u32.pow(doublings)).min(MAX_LOCK);
            f.locked_until = Some(now + wait);
        }
        Err(f.count)
    }

    /// The CSRF token of the session whose cookie is in `cookie_header`,
    /// touching it; `None` without a live session.
    pub fn session(&self, cookie_header: Option<&str>, now: Instant) -> Option<(String, String)> {
        let token = cookie_value(cookie_header?, COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let s = sessions.get_mut(token)?;
        if now.duration_since(s.last) >= SESSION_IDLE {
            sessions.remove(token);
            return None;
        }
        s.last = now;
        Some((token.to_string(), s.csrf.clone()))
    }

    /// Ends the session `token`.
    pub fn logout(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("hunter2", "hunter2"));
        assert!(!same_secret("hunter2", "hunter3"));
        assert!(!same_secret("", "hunter2"));
    }

    #[test]
    fn a_login_gives_a_session_with_its_own_csrf_token() {
        let auth = Auth::new("pw".into());
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let now = Instant::now();
        let token = auth.login(peer, "pw", now).unwrap();
        let header = format!("x=1; {COOKIE}={token}");
        let (t, csrf) = auth.session(Some(&header), now).unwrap();
        assert_eq!(t, token);
        assert_eq!(csrf.len(), 64);
        assert_ne!(csrf, token);
        assert!(auth.session(Some("kt_session=forged"), now).is_none());
        auth.logout(&token);
        assert!(auth.session(Some(&header), now).is_none());
        assert!(set_cookie(&token).contains("HttpOnly; SameSite=Strict; Path=/"));
    }

    #[test]
    fn failed_logins_lock_the_address_out_for_longer_each_time() {
        let auth = Auth::new("pw".into());
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let now = Instant::now();
        for n in 1..FREE_FAILURES {
            assert_eq!(auth.login(peer, "no", now), Err(n));
            assert_eq!(auth.gate(peer, now), Gate::Open);
        }
        assert_eq!(auth.login(peer, "no", now), Err(FREE_FAILURES));
        assert_eq!(auth.gate(peer, now), Gate::Locked(FIRST_LOCK));
        assert_eq!(auth.gate(other, now), Gate::Open);
        let later = now + FIRST_LOCK;
        assert_eq!(auth.gate(peer, later), Gate::Open);
        assert!(auth.login(peer, "no", later).is_err());
        assert_eq!(auth.gate(peer, later), Gate::Locked(FIRST_LOCK * 2));
        assert!(auth.login(peer, "pw", later + FIRST_LOCK * 2).is_ok());
        assert_eq!(auth.gate(peer, later + FIRST_LOCK * 2), Gate::Open);
    }
}
