//! Running the hook command: a child process in its own process group, with
//! its stdin fed and its stdout/stderr drained through non-blocking pipes in
//! one `poll(2)` loop (so a hook that floods its output or never reads its
//! input cannot block us), a time limit after which the whole group is
//! killed with SIGKILL and the child reaped, and bounded tails of its output
//! kept for the log.
//!
//! The child is started with `posix_spawnp(3)` directly rather than
//! `std::process::Command`: the service spawns nothing else, and std's
//! process machinery costs about 34 KiB in the static aarch64 binary against
//! a few KiB for these few calls.

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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

fn os_err(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in an argument or a variable",
        )
    })
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn pipe() -> io::Result<(File, File)> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are new descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(r), File::from(w)))
}

/// Initialised `posix_spawn_file_actions_t`, destroyed on drop; boxed so it
/// never moves after `init`.
struct FileActions(Box<MaybeUninit<libc::posix_spawn_file_actions_t>>);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut b = Box::new(MaybeUninit::uninit());
        // SAFETY: init writes a fresh object into the (uninitialised) box.
        os_err(unsafe { libc::posix_spawn_file_actions_init(b.as_mut_ptr()) })?;
        Ok(FileActions(b))
    }
    fn dup2(&mut self, fd: RawFd, to: RawFd) -> io::Result<()> {
        // SAFETY: the object was initialised in `new`.
        os_err(unsafe { libc::posix_spawn_file_actions_adddup2(self.0.as_mut_ptr(), fd, to) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

/// Initialised `posix_spawnattr_t`, destroyed on drop.
struct SpawnAttr(Box<MaybeUninit<libc::posix_spawnattr_t>>);

impl SpawnAttr {
    /// Own process group (pgid = its pid), no blocked signals, SIGPIPE back
    /// to its default (Rust ignores it, and ignored signals survive exec).
    fn new() -> io::Result<SpawnAttr> {
        let mut b = Box::new(MaybeUninit::uninit());
        // SAFETY: init writes a fresh object into the (uninitialised) box.
        os_err(unsafe { libc::posix_spawnattr_init(b.as_mut_ptr()) })?;
        let mut a = SpawnAttr(b);
        let p = a.0.as_mut_ptr();
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut pipe_only = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `p` is initialised; the sigsets are initialised by
        // sigemptyset before they are read.
        unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigemptyset(pipe_only.as_mut_ptr());
            libc::sigaddset(pipe_only.as_mut_ptr(), libc::SIGPIPE);
            os_err(libc::posix_spawnattr_setpgroup(p, 0))?;
            os_err(libc::posix_spawnattr_setsigmask(p, empty.as_ptr()))?;
            os_err(libc::posix_spawnattr_setsigdefault(p, pipe_only.as_ptr()))?;
            os_err(libc::posix_spawnattr_setflags(p, flags as libc::c_short))?;
        }
        Ok(a)
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// A started hook, leader of its own process group. Dropping it unreaped
/// kills the group and reaps it.
struct Child {
    pid: libc::pid_t,
    /// Reaped (or given up on): nothing more to wait for.
    reaped: bool,
}

/// How a reaped child ended, from its wait status.
fn decode(status: libc::c_int) -> HookEnd {
    if libc::WIFEXITED(status) {
        HookEnd::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        HookEnd::Signaled(libc::WTERMSIG(status))
    } else {
        HookEnd::Signaled(0)
    }
}

impl Child {
    /// Starts `argv` (a bare `argv[0]` is looked up in `PATH`) with the
    /// service's environment plus `env`, and pipes on its stdin, stdout and
    /// stderr: returns the child and our ends (stdin writer, stdout and
    /// stderr readers).
    fn spawn(
        argv: &[String],
        env: &[(&'static str, String)],
    ) -> io::Result<(Child, File, File, File)> {
        let args = argv
            .iter()
            .map(|a| cstring(a.clone().into_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let Some(program) = args.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
        };
        let mut vars = Vec::new();
        for (k, v) in std::env::vars_os() {
            if env
                .iter()
                .any(|(name, _)| k.as_os_str() == OsStr::new(name))
            {
                continue;
            }
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            vars.push(cstring(kv)?);
        }
        for (k, v) in env {
            vars.push(cstring(format!("{k}={v}").into_bytes())?);
        }
        let argp: Vec<*mut libc::c_char> = args
            .iter()
            .map(|c| c.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();
        let envp: Vec<*mut libc::c_char> = vars
            .iter()
            .map(|c| c.as_ptr().cast_mut())
            .chain(std::iter::once(std::ptr::null_mut()))
            .collect();

        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut actions = FileActions::new()?;
        // dup2 clears close-on-exec on 0, 1 and 2; every other pipe end is
        // close-on-exec, so the hook holds only its own three.
        actions.dup2(in_r.as_raw_fd(), 0)?;
        actions.dup2(out_w.as_raw_fd(), 1)?;
        actions.dup2(err_w.as_raw_fd(), 2)?;
        let attr = SpawnAttr::new()?;
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call: `program`, `argp` and
        // `envp` (NULL-terminated arrays of NUL-terminated strings that
        // outlive it), and the initialised actions and attributes.
        os_err(unsafe {
            libc::posix_spawnp(
                &mut pid,
                program.as_ptr(),
                actions.0.as_ptr(),
                attr.0.as_ptr(),
                argp.as_ptr(),
                envp.as_ptr(),
            )
        })?;
        // The child's ends are closed here, in the parent, as `in_r`,
        // `out_w` and `err_w` drop.
        Ok((Child { pid, reaped: false }, in_w, out_r, err_r))
    }

    /// Its status if it has ended (reaps it), without waiting.
    fn try_wait(&mut self) -> io::Result<Option<HookEnd>> {
        if self.reaped {
            return Ok(None);
        }
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid on our own unreaped child with a valid status pointer.
        match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
            0 => Ok(None),
            r if r == self.pid => {
                self.reaped = true;
                Ok(Some(decode(status)))
            }
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Kills its whole process group and reaps it. Returns whether it was reaped.
    fn kill_and_reap(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        // SAFETY: kill(2) with a negative pid signals that process group; the
        // group is the hook's own, and its leader is our unreaped child, so
        // the id cannot have been reused.
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        // And the leader itself, should the group be gone (it left it).
        // SAFETY: as above, the pid is our unreaped child's.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
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
                    log::error!(
                        "alert hook (pid {}) did not die after SIGKILL; left unreaped",
                        self.pid
                    );
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
    let (mut child, stdin_w, stdout_r, stderr_r) =
        Child::spawn(input.argv, input.env).map_err(spawn_err)?;
    for fd in [&stdin_w, &stdout_r, &stderr_r] {
        if let Err(e) = set_nonblocking(fd.as_raw_fd()) {
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
