//! Running the hook command: a child process in its own process group, with
//! its stdin fed and its stdout/stderr drained through non-blocking pipes in
//! one `poll(2)` loop (so a hook that floods its output or never reads its
//! input cannot block us), a time limit after which the whole group is
//! killed with SIGKILL and the child reaped, and bounded tails of its output
//! kept for the log.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use super::AlertError;

/// Bytes of the hook's stdout and of its stderr kept (the last ones).
pub const TAIL_BYTES: usize = 2048;
/// How often the loop looks at the child and the deadline while nothing happens.
const TICK: Duration = Duration::from_millis(20);
/// After the child exits, how long its pipes may stay open (a background
/// grandchild holding them) before we stop reading.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for a killed child to be reaped before giving up on it.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// How the hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEnd {
    /// It exited with this status code.
    Exited(i32),
    /// A signal it did not get from us ended it.
    Signaled(i32),
    /// It ran past `alerts.timeout_s` and its process group was killed.
    TimedOut,
    /// The service's shutdown deadline came first and its process group was killed.
    Cancelled,
}

impl fmt::Display for HookEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookEnd::Exited(code) => write!(f, "exit status {code}"),
            HookEnd::Signaled(sig) => write!(f, "killed by signal {sig}"),
            HookEnd::TimedOut => write!(f, "timed out, killed"),
            HookEnd::Cancelled => write!(f, "killed at the shutdown deadline"),
        }
    }
}

/// What one run of the hook did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    /// The program and its arguments, as run.
    pub command: Vec<String>,
    /// How it ended.
    pub end: HookEnd,
    /// From start to end (reaped).
    pub elapsed: Duration,
    /// The last [`TAIL_BYTES`] of its stdout (lossy UTF-8).
    pub stdout_tail: String,
    /// The last [`TAIL_BYTES`] of its stderr (lossy UTF-8).
    pub stderr_tail: String,
    /// What it was given on stdin (one line per event).
    pub stdin: String,
}

impl HookOutcome {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.end == HookEnd::Exited(0)
    }
    /// The stderr tail on one line, cut to `max` bytes (for a log line).
    pub fn stderr_line(&self, max: usize) -> String {
        let s = super::event::one_line(&self.stderr_tail, usize::MAX);
        if s.len() <= max {
            return s;
        }
        let mut start = s.len() - max;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &s[start..])
    }
}

/// The command as one shell-like string for logs (`/usr/bin/curl -fsS -d @- https://...`).
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:@=,+%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: {} after {:.2} s",
            display_command(&self.command),
            self.end,
            self.elapsed.as_secs_f64()
        )
    }
}

/// A bounded buffer keeping the last `TAIL_BYTES` written to it.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * TAIL_BYTES {
            let cut = self.0.len() - TAIL_BYTES;
            self.0.drain(..cut);
        }
    }
    fn text(&self) -> String {
        let start = self.0.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&self.0[start..]).into_owned()
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a pipe fd we own; F_GETFL/F_SETFL take and return ints.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Kills the child's whole process group (it leads one: `process_group(0)`)
/// and reaps the child. Returns whether it was reaped.
fn kill_and_reap(child: &mut Child) -> bool {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is the hook's own (its leader is our unreaped child, so the id
        // cannot have been reused).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let until = Instant::now() + REAP_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
            _ => return false,
        }
    }
}

/// One hook run's input.
pub(crate) struct HookInput<'a> {
    pub argv: &'a [String],
    pub stdin: &'a [u8],
    pub env: &'a [(&'static str, String)],
    pub timeout: Duration,
}

/// Runs the hook to its end. `cancel_at` is read on every turn of the loop:
/// when it returns a time that has passed, the hook is killed ([`HookEnd::Cancelled`]).
/// Errors only when the hook cannot be started.
pub(crate) fn run(
    input: &HookInput<'_>,
    cancel_at: &dyn Fn() -> Option<Instant>,
) -> Result<HookOutcome, AlertError> {
    let start = Instant::now();
    let spawn_err = |source: io::Error| AlertError::Spawn {
        command: display_command(input.argv),
        source,
    };
    let (program, args) = input
        .argv
        .split_first()
        .ok_or_else(|| spawn_err(io::Error::new(io::ErrorKind::InvalidInput, "empty command")))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the hook and everything it
        // started, and a Ctrl-C meant for the service does not reach it.
        .process_group(0);
    for (k, v) in input.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let mut stdout: Option<ChildStdout> = child.stdout.take();
    let mut stderr: Option<ChildStderr> = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|s| s.as_raw_fd()),
        stdout.as_ref().map(|s| s.as_raw_fd()),
        stderr.as_ref().map(|s| s.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = set_nonblocking(fd) {
            kill_and_reap(&mut child);
            return Err(spawn_err(e));
        }
    }
    let (mut out_tail, mut err_tail) = (Tail::default(), Tail::default());
    let mut written = 0;
    if input.stdin.is_empty() {
        stdin = None;
    }
    let limit = start + input.timeout;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut buf = [0u8; 4096];

    let end = loop {
        let now = Instant::now();
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => exited = Some((status, now)),
                Ok(None) => {}
                Err(e) => log::warn!(
                    "alert hook `{}`: cannot check whether it exited: {e}",
                    display_command(input.argv)
                ),
            }
        }
        if let Some((status, at)) = exited {
            let drained = stdout.is_none() && stderr.is_none();
            if drained || now >= at + DRAIN_GRACE {
                break match (status.code(), status.signal()) {
                    (Some(code), _) => HookEnd::Exited(code),
                    (None, Some(sig)) => HookEnd::Signaled(sig),
                    (None, None) => HookEnd::Signaled(0),
                };
            }
        } else {
            let cancel = cancel_at().filter(|c| *c < limit);
            if now >= limit {
                kill_and_reap(&mut child);
                break HookEnd::TimedOut;
            }
            if cancel.is_some_and(|c| now >= c) {
                kill_and_reap(&mut child);
                break HookEnd::Cancelled;
            }
        }

        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3);
        let mut slots = [None; 3];
        if let Some(s) = &stdin {
            slots[0] = Some(fds.len());
            fds.push(libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        for (i, fd) in [
            (1, stdout.as_ref().map(|s| s.as_raw_fd())),
            (2, stderr.as_ref().map(|s| s.as_raw_fd())),
        ] {
            if let Some(fd) = fd {
                slots[i] = Some(fds.len());
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let wait = limit.saturating_duration_since(now).min(TICK);
        let ms = libc::c_int::try_from(wait.as_millis())
            .unwrap_or(libc::c_int::MAX)
            .max(1);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs that
        // lives across the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                log::warn!("alert hook: poll failed: {e}");
                std::thread::sleep(TICK);
            }
            continue;
        }
        let ready = |slot: Option<usize>| slot.is_some_and(|i| fds[i].revents != 0);

        if ready(slots[0]) {
            if let Some(s) = stdin.as_mut() {
                match s.write(&input.stdin[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // EPIPE: the hook does not read its stdin; that is its business.
                    Err(_) => written = input.stdin.len(),
                }
            }
            if written >= input.stdin.len() {
                stdin = None; // closes it: the hook sees end of input
            }
        }
        if ready(slots[1]) && drain(&mut stdout, &mut out_tail, &mut buf) {
            stdout = None;
        }
        if ready(slots[2]) && drain(&mut stderr, &mut err_tail, &mut buf) {
            stderr = None;
        }
    };

    Ok(HookOutcome {
        command: input.argv.to_vec(),
        end,
        elapsed: start.elapsed(),
        stdout_tail: out_tail.text(),
        stderr_tail: err_tail.text(),
        stdin: String::from_utf8_lossy(input.stdin).into_owned(),
    })
}

/// Reads what is available into `tail`; returns `true` at end of file (or error).
fn drain<R: Read>(pipe: &mut Option<R>, tail: &mut Tail, buf: &mut [u8]) -> bool {
    let Some(p) = pipe.as_mut() else { return true };
    loop {
        match p.read(buf) {
            Ok(0) => return true,
            Ok(n) => tail.push(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        for i in 0..10_000u32 {
            t.push(format!("{i}\n").as_bytes());
        }
        let text = t.text();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("9998\n9999\n"), "{text}");
        assert!(t.0.len() <= 2 * TAIL_BYTES);
    }

    #[test]
    fn commands_are_shown_quoted_when_needed() {
        let argv: Vec<String> = ["/usr/bin/curl", "-H", "Title: it's hot", "-d", "@-", ""]
            .map(String::from)
            .to_vec();
        assert_eq!(
            display_command(&argv),
            r#"/usr/bin/curl -H 'Title: it'\''s hot' -d @- ''"#
        );
    }

    #[test]
    fn stderr_line_keeps_the_end() {
        let o = HookOutcome {
            command: vec!["x".into()],
            end: HookEnd::Exited(1),
            elapsed: Duration::ZERO,
            stdout_tail: String::new(),
            stderr_tail: "first line\nsecond line\nthe real error\n".into(),
            stdin: String::new(),
        };
        assert_eq!(o.stderr_line(200), "first line second line the real error");
        assert_eq!(o.stderr_line(14), "…the real error");
        assert!(!o.success());
    }
}
