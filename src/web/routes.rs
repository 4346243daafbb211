//! What each path answers (the table is in the module docs of `web`).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use super::auth::{self, Auth, Gate};
use super::context::Context;
use super::http::{form_value, Handler, Request, Response};
use crate::clock::{Since, Zone};
use crate::msg::{Command, Source};
use crate::outputs::StateFile;
use crate::records::READINGS_FILE;

const LOGIN_HTML: &str = include_str!("assets/login.html");
const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_CSS: &str = include_str!("assets/app.css");
const APP_JS: &str = include_str!("assets/app.js");

/// A wrong password is answered after this, so guessing is slow even
/// before the address is locked out.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(250);
/// The plug-health summary is recomputed at most this often (it reads a
/// week of `plug-events.jsonl`).
const REPORT_TTL: Duration = Duration::from_secs(60);
/// Points in `/api/readings` at most (a week of 10-s cycles thinned).
const MAX_POINTS: usize = 2000;
/// The chart's width when the page does not say (`w=`), and its bounds:
/// the page asks for its own width, so the text stays readable on a phone.
const CHART_WIDTH: (u32, u32, u32) = (900, 400, 1600);

/// The page: its context, the password and the sessions.
pub(super) struct Site {
    ctx: Context,
    auth: Auth,
    report: Mutex<Option<(Instant, String, Value)>>,
    alert_test: Mutex<()>,
    /// The local zone, read once: of the chart's axis and of `since` dates.
    zone: Zone,
}

impl Site {
    pub(super) fn new(ctx: Context, password: String) -> Site {
        Site {
            ctx,
            auth: Auth::new(password),
            report: Mutex::new(None),
            alert_test: Mutex::new(()),
            zone: Zone::local_or_utc(),
        }
    }
}

fn html(status: u16, body: &str) -> Response {
    Response::new(status, "text/html; charset=utf-8", body.as_bytes().to_vec())
}

fn login_page(status: u16, message: &str) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"err\" id=\"login-error\">{}</p>",
            escape(message)
        )
    };
    html(status, &LOGIN_HTML.replace("<!--NOTE-->", &note))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `since` as asked (`6h`, `7d`, a date: the clock's one grammar), or
/// `default`; a date is midnight in `zone`.
fn since(req: &Request, default: &str, zone: &Zone) -> Result<(String, SystemTime), Response> {
    let text = req
        .query_param("since")
        .unwrap_or_else(|| default.to_string());
    let parsed = Since::parse(&text).map_err(|e| Response::error(400, e.to_string()))?;
    Ok((text, parsed.resolve(SystemTime::now(), zone)))
}

impl Handler for Site {
    fn handle(&self, req: &Request) -> Response {
        let now = Instant::now();
        let session = self.auth.session(req.header("cookie"), now);
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/") => match session {
                Some(_) => html(200, INDEX_HTML),
                None => login_page(200, ""),
            },
            ("GET", "/app.css") => Response::new(200, "text/css; charset=utf-8", APP_CSS),
            ("POST", "/login") => self.login(req, now),
            (_, "/" | "/app.css" | "/login") => Response::error(405, "method not allowed"),
            _ => {
                let Some((token, csrf)) = session else {
                    return Response::error(401, "log in first (POST /login)");
                };
                if req.method == "POST" {
                    let sent = req.header("x-csrf-token").unwrap_or("");
                    if !auth::same_secret(sent, &csrf) {
                        return Response::error(
                            403,
                            "missing or wrong X-CSRF-Token (it comes with GET /api/status)",
                        );
                    }
                }
                self.private(req, &token, &csrf)
            }
        }
    }
}

impl Site {
    fn login(&self, req: &Request, now: Instant) -> Response {
        if let Gate::Locked(wait) = self.auth.gate(req.peer, now) {
            log::warn!(
                "web: login from {} refused: locked out for {} s after failed logins",
                req.peer,
                wait.as_secs() + 1
            );
            return login_page(
                429,
                &format!(
                    "Too many wrong passwords: try again in {} s.",
                    wait.as_secs() + 1
                ),
            )
            .with("Retry-After", (wait.as_secs() + 1).to_string());
        }
        let password = form_value(&req.body, "password").unwrap_or_default();
        match self.auth.login(req.peer, &password, now) {
            Ok(token) => {
                log::info!("web: login from {}", req.peer);
                Response::new(303, "text/plain", "logged in")
                    .with("Location", "/")
                    .with("Set-Cookie", auth::set_cookie(&token))
            }
            Err(0) => Response::error(503, "no randomness for a session token"),
            Err(n) => {
                log::warn!("web: wrong password from {} ({n} in a row)", req.peer);
                std::thread::sleep(FAILED_LOGIN_DELAY);
                login_page(401, "Wrong password.")
            }
        }
    }

    fn private(&self, req: &Request, token: &str, csrf: &str) -> Response {
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/app.js") => Response::new(200, "text/javascript; charset=utf-8", APP_JS),
            ("POST", "/logout") => {
                self.auth.logout(token);
                Response::json(200, &json!({"ok": true})).with("Set-Cookie", auth::clear_cookie())
            }
            ("GET", "/api/status") => self.status(csrf),
            ("GET", "/api/readings") => self.readings(req),
            ("GET", "/chart.svg") => self.chart(req),
            ("GET", "/api/report") => self.report(req),
            ("POST", "/api/control") => self.control(req),
            ("POST", "/api/alert-test") => self.alert_test(),
            (
                _,
                "/app.js" | "/logout" | "/api/status" | "/api/readings" | "/chart.svg"
                | "/api/report" | "/api/control" | "/api/alert-test",
            ) => Response::error(405, "method not allowed"),
            _ => Response::error(404, "no such page"),
        }
    }

    fn status(&self, csrf: &str) -> Response {
        let state = match StateFile::read(&self.ctx.state_file) {
            Ok(s) => s,
            // Before the first cycle: no state yet, but the token already.
            Err(e) => {
                return Response::json(
                    503,
                    &json!({"error": e.to_string(), "csrf_token": csrf, "read_only": self.ctx.read_only}),
                )
            }
        };
        let mut v = serde_json::to_value(&state).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.remove("log_dir");
            map.insert("csrf_token".into(), Value::String(csrf.to_string()));
            map.insert("read_only".into(), Value::Bool(self.ctx.read_only));
            map.insert("alerts".into(), Value::Bool(self.ctx.alerts.is_some()));
        }
        Response::json(200, &v)
    }

    fn readings(&self, req: &Request) -> Response {
        let (_, from) = match since(req, "6h", &self.zone) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let path = self.ctx.log_dir.join(READINGS_FILE);
        let mut points = Vec::new();
        let read = crate::history::read_readings(&path, Some(from), None, |r| points.push(r));
        if let Err(e) = read {
            return Response::error(503, e.to_string());
        }
        let step = points.len().div_ceil(MAX_POINTS).max(1);
        let thinned: Vec<_> = points.into_iter().step_by(step).collect();
        Response::json(
            200,
            &json!({"units": self.ctx.units.as_str(), "readings": thinned}),
        )
    }

    fn chart(&self, req: &Request) -> Response {
        let (text, from) = match since(req, "24h", &self.zone) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let path = self.ctx.log_dir.join(READINGS_FILE);
        match crate::history::Series::load(&path, Some(from), None) {
            Ok(series) if !series.samples.is_empty() => {
                let w = req
                    .query_param("w")
                    .and_then(|w| w.parse::<u32>().ok())
                    .unwrap_or(CHART_WIDTH.0)
                    .clamp(CHART_WIDTH.1, CHART_WIDTH.2);
                let h = (w * 11 / 20).max(300);
                let (svg, _) = crate::plot::render_svg(&series, &self.zone, (w, h));
                Response::new(200, "image/svg+xml", svg)
            }
            Ok(_) => Response::error(404, format!("no readings in the last {text} yet")),
            Err(e) => Response::error(503, e.to_string()),
        }
    }

    fn report(&self, req: &Request) -> Response {
        let (text, from) = match since(req, "7d", &self.zone) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let mut cache = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, key, v)) = cache.as_ref() {
            if *key == text && at.elapsed() < REPORT_TTL {
                return Response::json(200, v);
            }
        }
        let mut opts = crate::report::ReportOptions::new(self.ctx.log_dir.clone());
        opts.since = Some(from);
        match crate::report::report(&opts) {
            Ok(r) => {
                let v = serde_json::to_value(&r).unwrap_or(Value::Null);
                *cache = Some((Instant::now(), text, v.clone()));
                Response::json(200, &v)
            }
            Err(e) => Response::error(503, e.to_string()),
        }
    }

    fn control(&self, req: &Request) -> Response {
        if self.ctx.read_only {
            return Response::error(403, "the page is read only (web.read_only)");
        }
        let command: Command = match serde_json::from_slice(&req.body) {
            Ok(c) => c,
            Err(e) => return Response::error(400, format!("not a command: {e}")),
        };
        if command.is_empty() {
            return Response::error(
                400,
                "nothing to do: give mode, low, high, target, clear or profile",
            );
        }
        let reply = self.ctx.commands.send(Source::Web, command);
        Response::json(if reply.ok { 200 } else { 400 }, &reply)
    }

    fn alert_test(&self) -> Response {
        if self.ctx.read_only {
            return Response::error(403, "the page is read only (web.read_only)");
        }
        let Some(settings) = &self.ctx.alerts else {
            return Response::error(
                400,
                "no alerts command is configured (the config has no `alerts`)",
            );
        };
        // One at a time: the hook may take its whole timeout.
        let Ok(_one) = self.alert_test.try_lock() else {
            return Response::error(429, "a test alert is already being sent");
        };
        match crate::alerts::send_test(settings) {
            Ok(_) => {
                log::info!(target: "command", "web: test alert sent");
                Response::json(200, &json!({"ok": true, "message": "test alert sent"}))
            }
            Err(e) => {
                let m = crate::error::chain(&e);
                log::warn!(target: "command", "web: test alert failed: {m}");
                Response::json(200, &json!({"ok": false, "message": m}))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_assets_stay_small() {
        // The page must weigh under 100 KB with a chart; the assets are
        // the fixed part of it.
        let total = INDEX_HTML.len() + APP_JS.len() + APP_CSS.len();
        assert!(total < 40 * 1024, "{total} bytes of assets");
        assert!(LOGIN_HTML.len() < 4 * 1024);
        // No inline script or style: the Content-Security-Policy forbids them.
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(
                !page.contains("<script>") && !page.contains("style="),
                "inline code"
            );
        }
    }

    #[test]
    fn the_login_notice_is_escaped() {
        let r = login_page(401, "<b>&");
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("&lt;b&gt;&amp;") && !body.contains("<b>&"));
    }
}
