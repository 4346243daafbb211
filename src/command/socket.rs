//! The control socket (`control_socket`, a Unix socket of mode 0660 in the
//! service's group): `kasa-thermostat set` writes one [`Command`] as a JSON
//! line and reads one [`Reply`] line back. The server is one thread that
//! answers one connection at a time, each bounded by timeouts and a size
//! cap, and hands the command to the control thread over the command path.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::msg::command::REPLY_WAIT;
use crate::msg::{Command, CommandSender, Reply, Source};

/// The longest request line read: a command is under 200 bytes.
const MAX_LINE: u64 = 4096;

/// How long a client may take to send its line.
const READ_WAIT: Duration = Duration::from_secs(2);

/// Why the control socket could not be served or reached.
#[derive(Debug)]
pub enum SocketError {
    /// Something that is not a socket is in the way: remove it or choose another `control_socket`.
    NotASocket(PathBuf),
    /// The socket could not be created: check that its directory exists and is the service's.
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// No service answers there: is it running, is this its `control_socket`,
    /// and is the user in the service's group?
    Connect {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The service did not answer properly (it stopped, or it is not this program).
    Answer {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::NotASocket(p) => write!(
                f,
                "control_socket {} exists and is not a socket; remove it or choose another path",
                p.display()
            ),
            SocketError::Bind { path, source } => write!(
                f,
                "cannot create the control socket {}: {source}",
                path.display()
            ),
            SocketError::Connect { path, source } => write!(
                f,
                "no service answers on {}: {source} (is it running, is this its control_socket, \
                 and are you in its group?)",
                path.display()
            ),
            SocketError::Answer { path, detail } => {
                write!(
                    f,
                    "the service on {} did not answer: {detail}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for SocketError {}

/// The serving thread; dropping it stops and joins the thread and removes
/// the socket file.
pub struct SocketServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SocketServer {
    /// Creates the socket at `path` (a stale socket file there is replaced)
    /// with mode 0660 and serves it on a thread.
    pub fn start(path: &Path, commands: CommandSender) -> Result<SocketServer, SocketError> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(SocketError::NotASocket(path.to_path_buf()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::Bind {
                    path: path.to_path_buf(),
                    source: io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "another service answers on it",
                    ),
                });
            }
            let _ = std::fs::remove_file(path);
        }
        let bind_err = |source| SocketError::Bind {
            path: path.to_path_buf(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(bind_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("control-socket".into())
            .spawn(move || serve(listener, commands, flag))
            .map_err(bind_err)?;
        Ok(SocketServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SocketServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept with a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(listener: UnixListener, commands: CommandSender, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        if let Err(e) = answer(stream, &commands) {
            log::debug!("control socket: a client went away: {e}");
        }
    }
}

/// Reads one command line and writes one reply line.
fn answer(stream: UnixStream, commands: &CommandSender) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_WAIT))?;
    stream.set_write_timeout(Some(READ_WAIT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Command>(line.trim()) {
        Ok(c) if c.is_empty() => Reply::refused(
            "nothing to do: give --mode, --low, --high, --clear or --profile-restart",
        ),
        Ok(c) => commands.send(Source::Cli, c),
        Err(e) if !line.ends_with('\n') && line.len() as u64 >= MAX_LINE => {
            Reply::refused(format!("the request is longer than {MAX_LINE} bytes ({e})"))
        }
        Err(e) => Reply::refused(format!("not a command: {e}")),
    };
    let mut text = serde_json::to_string(&reply).map_err(io::Error::other)?;
    text.push('\n');
    (&stream).write_all(text.as_bytes())
}

/// Sends `command` to the service listening on `path` and returns its reply.
pub fn send(path: &Path, command: &Command) -> Result<Reply, SocketError> {
    let connect = |source| SocketError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(path).map_err(connect)?;
    let answer = |detail: String| SocketError::Answer {
        path: path.to_path_buf(),
        detail,
    };
    // The service answers within its own wait for the control thread.
    let wait = REPLY_WAIT * 2 + READ_WAIT;
    stream
        .set_read_timeout(Some(wait))
        .and_then(|()| stream.set_write_timeout(Some(wait)))
        .map_err(connect)?;
    let mut text = serde_json::to_string(command).map_err(|e| answer(e.to_string()))?;
    text.push('\n');
    (&stream)
        .write_all(text.as_bytes())
        .map_err(|e| answer(e.to_string()))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_LINE))
        .read_line(&mut line)
        .map_err(|e| answer(e.to_string()))?;
    if line.is_empty() {
        return Err(answer("it closed the connection without a reply".into()));
    }
    serde_json::from_str(line.trim()).map_err(|e| answer(format!("{e} in {:?}", line.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_goes_to_the_control_side_and_its_reply_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let (tx, rx) = CommandSender::channel();
        let server = SocketServer::start(&path, tx).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let control = std::thread::spawn(move || {
            let req = rx.recv().unwrap();
            assert_eq!(req.source, Source::Cli);
            let msg = format!("mode {:?}", req.command.mode);
            req.reply.send(Reply::refused(msg)).unwrap();
        });
        let cmd = Command {
            mode: Some("cool".into()),
            ..Command::default()
        };
        let reply = send(&path, &cmd).unwrap();
        assert_eq!(reply, Reply::refused("mode Some(\"cool\")"));
        control.join().unwrap();
        drop(server);
        assert!(!path.exists(), "the socket file is removed");
        assert!(matches!(
            send(&path, &cmd),
            Err(SocketError::Connect { .. })
        ));
    }

    #[test]
    fn garbage_gets_a_refusal_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let (tx, _rx) = CommandSender::channel();
        let _server = SocketServer::start(&path, tx).unwrap();
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(b"{\"mode\": 7, \"x\"\n").unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        let reply: Reply = serde_json::from_str(&line).unwrap();
        assert!(
            !reply.ok && reply.message.starts_with("not a command"),
            "{line}"
        );
    }
}
