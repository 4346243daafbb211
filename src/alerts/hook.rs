//! Running the hook command: a child process in its own process group, with
//! its stdin fed and its stdout/stderr drained through non-blocking pipes in
//! one `poll(2)` loop (so a hook that floods its output or never reads its
//! input cannot block us), a time limit after which the whole group is
//! killed with SIGKILL and the child reaped, and bounded tails of its output
//! kept for the log.
//!
//! `std::process::Command` starts it (`process_group(0)`: the hook leads a
//! group of its own, so a timeout kills what it started too; std also resets
//! SIGPIPE, which Rust ignores, to its default and empties the signal mask,
//! as a child expects). What std does not offer is waiting on three pipes and
//! a deadline at once without a thread per pipe, and killing a group: those
//! are the three `libc` calls below (`fcntl`, `poll`, `kill`). The
//! hand-written `posix_spawnp` this replaced kept 12 more `unsafe` blocks to
//! save a few KiB of the static binary (docs/design.md §11, §13.1).
//!
//! [`AlertError`] lives here, with what fails: a hook that cannot be
//! started or that fails; `mod.rs` re-exports it.

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Bytes of the hook's stdout and of its stderr kept (the last ones).
pub const TAIL_BYTES: usize = 2048;
/// How often the loop looks at the child and the deadline while nothing happens.
const TICK: Duration = Duration::from_millis(20);
/// After the child exits, how long its pipes may stay open (a background
/// grandchild holding them) before we stop reading.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// How long to wait for a killed child to be reaped before giving up on it.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// Why an alert could not be delivered.
#[derive(Debug)]
pub enum AlertError {
    /// The hook's program is missing or not executable: install it, or fix
    /// `alerts.command[0]`.
    Program {
        /// `alerts.command[0]`.
        program: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The hook could not be started (fork/exec failed).
    Spawn {
        /// The command, as a shell-like string.
        command: String,
        /// The cause from the OS.
        source: io::Error,
    },
    /// The hook ran but failed (non-zero exit, signal, timeout): its stderr
    /// tail says why; fix the command or the service it talks to.
    Failed(Box<HookOutcome>),
}

impl fmt::Display for AlertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlertError::Program { program, reason } => write!(
                f,
                "alert hook program `{program}` {reason}; install it or fix alerts.command[0]"
            ),
            AlertError::Spawn { command, source } => write!(
                f,
                "cannot start the alert hook `{command}`: {source}; check alerts.command"
            ),
            AlertError::Failed(o) => {
                write!(f, "the alert hook failed: {o}")?;
                let err = o.stderr_line(300);
                if !err.is_empty() {
                    write!(f, "; stderr: {err}")?;
                }
                Ok(())
            }
        }
    }
}

impl StdError for AlertError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            AlertError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

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
    /// It ended but its exit status could not be read (see the log).
    Unknown,
}

impl fmt::Display for HookEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookEnd::Exited(code) => write!(f, "exit status {code}"),
            HookEnd::Signaled(sig) => write!(f, "killed by signal {sig}"),
            HookEnd::TimedOut => write!(f, "timed out, killed"),
            HookEnd::Cancelled => write!(f, "killed at the shutdown deadline"),
            HookEnd::Unknown => write!(f, "ended with an unknown status"),
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
    pub(crate) fn stderr_line(&self, max: usize) -> String {
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
pub(crate) fn display_command(argv: &[String]) -> String {
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
    // SAFETY: fcntl on a pipe fd we own; F_GETFL/F_SETFL take and return
    // ints and touch no memory.
    let rc = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
        }
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A started hook, leader of its own process group, and our ends of its
/// pipes. Dropping it unreaped kills the group and reaps it: a `std` child
/// dropped unwaited would stay a zombie, and its group would run on.
struct Child {
    child: std::process::Child,
    /// Reaped (or given up on): nothing more to wait for.
    reaped: bool,
}

/// How a reaped child ended, from its exit status.
fn decode(status: ExitStatus) -> HookEnd {
    match (status.code(), status.signal()) {
        (Some(code), _) => HookEnd::Exited(code),
        (None, Some(sig)) => HookEnd::Signaled(sig),
        (None, None) => HookEnd::Signaled(0),
    }
}

/// Our ends of the hook's pipes: its stdin, stdout and stderr.
type Pipes = (
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr,
);

impl Child {
    /// Starts `argv` (a bare `argv[0]` is looked up in `PATH`) with the
    /// service's environment plus `env`, in a process group of its own, and
    /// pipes on its stdin, stdout and stderr: returns the child and our ends.
    fn spawn(argv: &[String], env: &[(&'static str, String)]) -> io::Result<(Child, Pipes)> {
        let Some((program, args)) = argv.split_first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        };
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let mut child = Child {
            child,
            reaped: false,
        };
        match pipes {
            (Some(i), Some(o), Some(e)) => Ok((child, (i, o, e))),
            _ => {
                child.kill_and_reap();
                Err(io::Error::other("the hook's pipes were not created"))
            }
        }
    }

    /// Its status if it has ended (reaps it), without waiting.
    fn try_wait(&mut self) -> io::Result<Option<HookEnd>> {
        if self.reaped {
            return Ok(None);
        }
        let end = self.child.try_wait()?.map(decode);
        self.reaped = end.is_some();
        Ok(end)
    }

    /// Kills its whole process group and reaps it. Returns whether it was reaped.
    fn kill_and_reap(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is the hook's own, and its leader is our unreaped child, so
        // the id cannot have been reused. std has no call for a group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        // And the leader itself, should the group be gone (it left it).
        let _ = self.child.kill();
        let until = Instant::now() + REAP_LIMIT;
        loop {
            match self.try_wait() {
                Ok(Some(_)) => return true,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                // ECHILD: reaped by someone else; it is gone either way.
                Err(_) => {
                    self.reaped = true;
                    return true;
                }
                Ok(None) => {
                    log::error!("alert hook (pid {pid}) did not die after SIGKILL; left unreaped");
                    self.reaped = true; // given up: drop must not wait again
                    return false;
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_and_reap();
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
    let (mut child, (stdin_w, stdout_r, stderr_r)) =
        Child::spawn(input.argv, input.env).map_err(spawn_err)?;
    for fd in [
        stdin_w.as_raw_fd(),
        stdout_r.as_raw_fd(),
        stderr_r.as_raw_fd(),
    ] {
        if let Err(e) = set_nonblocking(fd) {
            child.kill_and_reap();
            return Err(spawn_err(e));
        }
    }
    let mut stdin = Some(stdin_w);
    let mut stdout = Some(stdout_r);
    let mut stderr = Some(stderr_r);
    let (mut out_tail, mut err_tail) = (Tail::default(), Tail::default());
    let mut written = 0;
    if input.stdin.is_empty() {
        stdin = None;
    }
    let limit = start + input.timeout;
    let mut exited: Option<(HookEnd, Instant)> = None;
    let mut buf = [0u8; 4096];

    let end = loop {
        let now = Instant::now();
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => exited = Some((status, now)),
                Ok(None) => {}
                // ECHILD: something else reaped it (SIGCHLD ignored?). There
                // is nothing left to wait for, only its status is lost.
                Err(e) => {
                    log::warn!(
                        "alert hook `{}`: cannot read its exit status: {e}",
                        display_command(input.argv)
                    );
                    child.reaped = true;
                    exited = Some((HookEnd::Unknown, now));
                }
            }
        }
        if let Some((end, at)) = exited {
            let drained = stdout.is_none() && stderr.is_none();
            if drained || now >= at + DRAIN_GRACE {
                break end;
            }
        } else {
            let cancel = cancel_at().filter(|c| *c < limit);
            if now >= limit {
                child.kill_and_reap();
                break HookEnd::TimedOut;
            }
            if cancel.is_some_and(|c| now >= c) {
                child.kill_and_reap();
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
