//! Talking to systemd: readiness, watchdog pings and status text over the
//! `sd_notify(3)` datagram protocol, written by hand. The kept `sd-notify`
//! crate (0.5.0, checked 2026-11) connects to `$NOTIFY_SOCKET` with
//! `UnixDatagram::connect(path)`, which treats an abstract address
//! (`@name`, what systemd uses in containers and `systemd-nspawn`) as a file
//! name and fails with ENOENT, silently losing `READY=1`; here the `@` form
//! is sent to the abstract socket it names.
//!
//! The unit is `Type=notify` with `WatchdogSec=`: the service calls
//! [`Notifier::ready`] once its threads run and [`Notifier::watchdog`] from
//! the control loop only while that loop is healthy, so a hung service is
//! killed and restarted by systemd instead of leaving a heater on.
//!
//! Without `$NOTIFY_SOCKET` (run by hand, in tests) every call is a no-op.
//! `testkit::RecordingNotifier` records the calls so that the service tests can
//! assert on readiness and watchdog pings without systemd.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the service tells its supervisor. Implementations never fail loudly:
/// a supervisor that cannot be reached must not stop the thermostat, so
/// failures are logged (with their cause) and the call returns.
pub trait Notifier: Send + Sync {
    /// The service is up: the threads run and the first cycle can happen.
    fn ready(&self);
    /// The control loop is healthy; systemd restarts the service when these
    /// pings stop for longer than `WatchdogSec`.
    fn watchdog(&self);
    /// The service is shutting down (plugs are being put in their shutdown
    /// state).
    fn stopping(&self);
    /// A one-line status shown by `systemctl status`.
    fn status(&self, text: &str);
}

/// Why talking to systemd did not work.
#[derive(Debug)]
pub(crate) enum NotifyError {
    /// `$NOTIFY_SOCKET` holds something that is not a usable socket address.
    BadSocketAddress {
        /// The value of `$NOTIFY_SOCKET`.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The local datagram socket could not be created.
    Socket {
        /// The cause from the OS.
        source: io::Error,
    },
    /// A notification could not be delivered.
    Send {
        /// The socket address, as written in `$NOTIFY_SOCKET`.
        addr: String,
        /// The message, for example `WATCHDOG=1`.
        message: String,
        /// The cause from the OS.
        source: io::Error,
    },
    /// `$WATCHDOG_USEC` or `$WATCHDOG_PID` holds something unusable.
    BadWatchdog {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::BadSocketAddress { value, reason } => write!(
                f,
                "NOTIFY_SOCKET={value:?} is not a usable socket address ({reason}); \
                 systemd sets it for Type=notify units, unset it to run without systemd"
            ),
            NotifyError::Socket { .. } => {
                f.write_str("cannot create a datagram socket to notify systemd")
            }
            NotifyError::Send { addr, message, .. } => write!(
                f,
                "cannot send {message:?} to the systemd notify socket {addr} \
                 (is systemd still listening there?)"
            ),
            NotifyError::BadWatchdog { var, value, reason } => {
                write!(f, "{var}={value:?} is not usable: {reason}")
            }
        }
    }
}

impl StdError for NotifyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            NotifyError::Socket { source } | NotifyError::Send { source, .. } => Some(source),
            NotifyError::BadSocketAddress { .. } | NotifyError::BadWatchdog { .. } => None,
        }
    }
}

/// Parses a `$NOTIFY_SOCKET` value: an absolute path, or `@name` for a Linux
/// abstract socket (the leading `@` stands for the NUL byte).
pub(crate) fn parse_socket_address(value: &str) -> Result<SocketAddr, NotifyError> {
    let bad = |reason: String| NotifyError::BadSocketAddress {
        value: value.to_string(),
        reason,
    };
    if let Some(name) = value.strip_prefix('@') {
        if name.is_empty() {
            return Err(bad("an abstract address needs a name after '@'".into()));
        }
        return abstract_address(name.as_bytes()).map_err(|e| bad(e.to_string()));
    }
    if value.starts_with('/') {
        return SocketAddr::from_pathname(value).map_err(|e| bad(e.to_string()));
    }
    Err(bad(
        "expected an absolute path or '@' and an abstract name; vsock is not supported".into(),
    ))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// The one line of text that `STATUS=` may carry: a newline would start a
/// new assignment, so newlines become spaces.
fn status_message(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    format!("STATUS={one_line}")
}

/// The notifier for a service run by systemd: sends datagrams to
/// `$NOTIFY_SOCKET`, or does nothing when there is no such socket.
#[derive(Debug)]
pub(crate) struct SystemdNotifier {
    target: Option<Target>,
    /// Set while sends fail, so that a vanished socket gives one warning per
    /// outage instead of one per watchdog ping.
    failing: AtomicBool,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    text: String,
}

impl SystemdNotifier {
    /// Reads `$NOTIFY_SOCKET`. Unset or empty: a no-op notifier. Set to
    /// something unusable: an error, because a `Type=notify` unit that never
    /// hears `READY=1` would time out with a less clear message.
    pub(crate) fn from_env() -> Result<SystemdNotifier, NotifyError> {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Ok(SystemdNotifier::disabled()),
            Some(raw) if raw.is_empty() => Ok(SystemdNotifier::disabled()),
            Some(raw) => match raw.into_string() {
                Ok(value) => SystemdNotifier::connect(&value),
                Err(raw) => Err(NotifyError::BadSocketAddress {
                    value: raw.to_string_lossy().into_owned(),
                    reason: "not valid UTF-8".into(),
                }),
            },
        }
    }

    /// A notifier for the socket address `value`, written as in
    /// `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
    pub fn connect(value: &str) -> Result<SystemdNotifier, NotifyError> {
        let addr = parse_socket_address(value)?;
        // Unbound and unconnected: each message is addressed on its own, so a
        // socket that systemd re-creates (daemon-reexec) keeps working.
        let socket = UnixDatagram::unbound().map_err(|source| NotifyError::Socket { source })?;
        Ok(SystemdNotifier {
            target: Some(Target {
                socket,
                addr,
                text: value.to_string(),
            }),
            failing: AtomicBool::new(false),
        })
    }

    /// A notifier that does nothing (not run by systemd).
    pub(crate) fn disabled() -> SystemdNotifier {
        SystemdNotifier {
            target: None,
            failing: AtomicBool::new(false),
        }
    }

    /// Whether messages go anywhere.
    #[cfg(test)]
    fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (`KEY=value` lines) and reports failure; the
    /// [`Notifier`] methods call this and log what it returns.
    pub fn send(&self, message: &str) -> Result<(), NotifyError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        target
            .socket
            .send_to_addr(message.as_bytes(), &target.addr)
            .map(drop)
            .map_err(|source| NotifyError::Send {
                addr: target.text.clone(),
                message: message.to_string(),
                source,
            })
    }

    fn send_logged(&self, message: &str) {
        match self.send(message) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    log::info!("systemd notify socket reachable again");
                }
            }
            Err(err) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    log::warn!("{}", crate::error::chain(&err));
                }
            }
        }
    }
}

impl Notifier for SystemdNotifier {
    fn ready(&self) {
        self.send_logged("READY=1");
    }
    fn watchdog(&self) {
        self.send_logged("WATCHDOG=1");
    }
    fn stopping(&self) {
        self.send_logged("STOPPING=1");
    }
    fn status(&self, text: &str) {
        self.send_logged(&status_message(text));
    }
}

/// How often to ping the watchdog, from `$WATCHDOG_USEC` and
/// `$WATCHDOG_PID` as systemd sets them: half the timeout (as `sd_watchdog_enabled(3)`
/// advises), or `None` when the watchdog is off or meant for another process.
pub(crate) fn watchdog_interval() -> Result<Option<Duration>, NotifyError> {
    let usec = env_string("WATCHDOG_USEC")?;
    let pid = env_string("WATCHDOG_PID")?;
    parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())
}

fn env_string(var: &'static str) -> Result<Option<String>, NotifyError> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(raw) => raw
            .into_string()
            .map(Some)
            .map_err(|raw| NotifyError::BadWatchdog {
                var,
                value: raw.to_string_lossy().into_owned(),
                reason: "not valid UTF-8",
            }),
    }
}

/// The parsing half of [`watchdog_interval`]: `usec` and `pid` are the
/// variables' values, `own_pid` this process's id.
pub(crate) fn parse_watchdog(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let micros: u64 = usec.trim().parse().map_err(|_| NotifyError::BadWatchdog {
        var: "WATCHDOG_USEC",
        value: usec.to_string(),
        reason: "expected a whole number of microseconds",
    })?;
    if micros == 0 {
        return Err(NotifyError::BadWatchdog {
            var: "WATCHDOG_USEC",
            value: usec.to_string(),
            reason: "the timeout must be greater than 0",
        });
    }
    if let Some(pid) = pid.filter(|s| !s.is_empty()) {
        let target: u32 = pid.trim().parse().map_err(|_| NotifyError::BadWatchdog {
            var: "WATCHDOG_PID",
            value: pid.to_string(),
            reason: "expected a process id",
        })?;
        if target != own_pid {
            // Inherited from a parent that systemd watches, not us.
            return Ok(None);
        }
    }
    Ok(Some(Duration::from_micros(micros / 2)))
}

/// One call on a [`Notifier`], as recorded by `testkit::RecordingNotifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// [`Notifier::ready`].
    Ready,
    /// [`Notifier::watchdog`].
    Watchdog,
    /// [`Notifier::stopping`].
    Stopping,
    /// [`Notifier::status`] with its text.
    Status(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A bound receiving socket standing in for systemd's.
    fn listener(dir: &tempfile::TempDir) -> (UnixDatagram, String) {
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind test socket");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        (sock, path.to_str().expect("utf-8 temp path").to_string())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a datagram within 5 s");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8 datagram")
    }

    #[test]
    fn sends_each_message_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let (sock, path) = listener(&dir);
        let n = SystemdNotifier::connect(&path).unwrap();
        assert!(n.is_enabled());
        n.ready();
        assert_eq!(recv(&sock), "READY=1");
        n.watchdog();
        assert_eq!(recv(&sock), "WATCHDOG=1");
        n.status("holding 19.5 C\nheater on");
        assert_eq!(recv(&sock), "STATUS=holding 19.5 C heater on");
        n.stopping();
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "kasa-thermostat-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let addr = abstract_address(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = SystemdNotifier::connect(&format!("@{name}")).unwrap();
        n.watchdog();
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }

    #[test]
    fn keeps_working_when_the_socket_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let (sock, path) = listener(&dir);
        let n = SystemdNotifier::connect(&path).unwrap();
        n.ready();
        assert_eq!(recv(&sock), "READY=1");
        drop(sock);
        std::fs::remove_file(&path).unwrap();
        assert!(n.send("WATCHDOG=1").is_err());
        let (sock, _) = listener(&dir);
        n.watchdog();
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }

    #[test]
    fn a_missing_socket_is_an_error_naming_it_and_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let n = SystemdNotifier::connect(path.to_str().unwrap()).unwrap();
        let err = n.send("READY=1").unwrap_err();
        let text = crate::error::chain(&err);
        assert!(text.contains("gone.sock"), "{text}");
        assert!(text.contains("READY=1"), "{text}");
        assert!(err.source().is_some());
        // The trait methods log and return.
        n.ready();
        n.watchdog();
        assert!(n.failing.load(Ordering::Relaxed));
    }

    #[test]
    fn disabled_notifier_does_nothing() {
        let n = SystemdNotifier::disabled();
        assert!(!n.is_enabled());
        assert!(n.send("READY=1").is_ok());
        n.ready();
        n.status("x");
    }

    #[test]
    fn bad_socket_addresses_are_errors_naming_the_value() {
        for value in [
            "relative/sock",
            "@",
            "vsock:2:1234",
            &format!("/{}", "x".repeat(200)),
        ] {
            let err = parse_socket_address(value).unwrap_err();
            match &err {
                NotifyError::BadSocketAddress { value: v, .. } => assert_eq!(v, value),
                other => panic!("{value}: unexpected {other:?}"),
            }
            assert!(err.to_string().contains("NOTIFY_SOCKET="), "{err}");
        }
        assert!(parse_socket_address("/run/systemd/notify").is_ok());
        assert!(parse_socket_address("@abstract").is_ok());
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout() {
        assert_eq!(parse_watchdog(None, None, 7).unwrap(), None);
        assert_eq!(parse_watchdog(Some(""), None, 7).unwrap(), None);
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7).unwrap(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            parse_watchdog(Some("1000"), Some("7"), 7).unwrap(),
            Some(Duration::from_micros(500))
        );
    }

    #[test]
    fn watchdog_for_another_process_is_ignored() {
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("8"), 7).unwrap(),
            None
        );
    }

    #[test]
    fn bad_watchdog_values_are_errors_naming_the_variable() {
        let cases = [
            (Some("soon"), None, "WATCHDOG_USEC"),
            (Some("0"), None, "WATCHDOG_USEC"),
            (Some("-5"), None, "WATCHDOG_USEC"),
            (Some("1000"), Some("me"), "WATCHDOG_PID"),
        ];
        for (usec, pid, var) in cases {
            let err = parse_watchdog(usec, pid, 7).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }
}
