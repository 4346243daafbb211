//! The web page (docs/design.md, "The web page"): a dashboard, a live chart
//! and controls for a phone or a desktop, and the JSON API under it, served
//! by a small HTTP server on its own bounded threads (`http.rs`). Off unless
//! the config has a `web` section; `run --simulate` serves it on 127.0.0.1.
//!
//! The page only reads files the service writes anyway (the state file,
//! `readings.jsonl`, `plug-events.jsonl`) and sends changes down the one
//! command path ([`crate::msg::CommandSender`]), so it never holds up a
//! control cycle. Every asset is compiled in: the Pi may be offline.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the dashboard, or the login page without a session |
//! | `POST /login` | form field `password`: a session cookie and 303 to `/` |
//! | `POST /logout` | ends the session |
//! | `GET /api/status` | the state file's struct plus `csrf_token` and `read_only` |
//! | `GET /api/readings?since=6h` | the readings since then, as JSON |
//! | `GET /chart.svg?since=24h` | the chart `plot` draws |
//! | `GET /api/report?since=7d` | plug health and chamber figures (`report --json`) |
//! | `POST /api/control` | a command: JSON `mode`, `low`, `high`, `target`, `clear`, `profile` |
//! | `POST /api/alert-test` | runs the alerts command once with a test event |
//!
//! 401 without a session, 403 without the CSRF token (`X-CSRF-Token`) or
//! when `read_only`, 413 past the body limit.

pub mod auth;
mod context;
pub mod http;
mod routes;

pub use context::Context;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::config::{ConfigError, WebSettings};

/// Why the page is not served.
#[derive(Debug)]
pub enum WebError {
    /// `web.password_file` cannot be used: the message says why.
    Password(ConfigError),
    /// `web.listen` cannot be bound: is another program on that port, or is
    /// the address not this machine's?
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server's threads could not be started.
    Spawn(std::io::Error),
}

impl fmt::Display for WebError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebError::Password(e) => write!(f, "{e}"),
            WebError::Bind { addr, source } => {
                write!(f, "cannot listen on web.listen {addr}: {source}")
            }
            WebError::Spawn(e) => write!(f, "cannot start the web threads: {e}"),
        }
    }
}

impl std::error::Error for WebError {}

/// The running page: dropping it stops and joins its threads.
pub struct WebServer {
    server: http::Server,
}

impl WebServer {
    /// Reads the password and serves the page on `settings.listen`.
    pub fn start(settings: &WebSettings, ctx: Context) -> Result<WebServer, WebError> {
        let password = crate::config::read_password_for(
            "web.password_file",
            "the web page's password",
            &settings.password_file,
        )
        .map_err(WebError::Password)?;
        if let Some(w) =
            crate::config::password_file_warning("web.password_file", &settings.password_file)
        {
            log::warn!("{w}");
        }
        let listener = match TcpListener::bind(settings.listen) {
            Ok(l) => l,
            Err(e) if settings.demo => {
                log::info!(
                    "web: {} is taken ({e}); taking a free port",
                    settings.listen
                );
                TcpListener::bind(SocketAddr::new(settings.listen.ip(), 0)).map_err(|source| {
                    WebError::Bind {
                        addr: settings.listen,
                        source,
                    }
                })?
            }
            Err(source) => {
                return Err(WebError::Bind {
                    addr: settings.listen,
                    source,
                })
            }
        };
        let site = routes::Site::new(ctx, password);
        let server = http::Server::start(listener, Arc::new(site)).map_err(WebError::Spawn)?;
        let addr = server.local_addr();
        log::info!(
            "web page on http://{addr}/ ({})",
            if settings.read_only {
                "read only"
            } else {
                "changes allowed"
            }
        );
        if settings.demo {
            // Demo only; a closed stdout must not stop the page.
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout().lock(), "web page: http://{addr}/");
        }
        Ok(WebServer { server })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }
}
