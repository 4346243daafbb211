//! Changes made while the service runs (docs/design.md, "Changing it while
//! it runs"): one typed [`Command`] that the web page, `kasa-thermostat set`
//! (over the control socket) and MQTT send to the control thread, and the
//! [`Reply`] that comes back on the request's own channel.
//!
//! The control thread validates a command with the config's own rules, so a
//! refusal reads exactly like `check-config`'s message for the same value.

use std::fmt;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

/// Who asked for a change: logged with it and kept in `overrides_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The web page or its JSON API.
    Web,
    /// `kasa-thermostat set`, over the control socket.
    Cli,
    /// An MQTT `set` topic.
    Mqtt,
}

impl Source {
    /// The name in logs and files.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Web => "web",
            Source::Cli => "cli",
            Source::Mqtt => "mqtt",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with the temperature profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileAction {
    /// Start it over from now.
    Restart,
    /// Jump to the start of its next step.
    Skip,
}

/// One change, all of whose parts are applied together or not at all.
/// Temperatures are in the config's `units`. The wire form (control socket,
/// `POST /api/control`) is this struct's JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// A new mode, as written in the config (`off`, `heat`, `cool`,
    /// `heat_cool`); checked by the control thread like the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A new lower limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    /// A new upper limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    /// A new target: the middle of the band, which keeps its width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Drop every override first: back to the config's values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear: bool,
    /// Restart the profile or skip to its next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileAction>,
}

impl Command {
    /// Whether it asks for nothing.
    pub fn is_empty(&self) -> bool {
        self == &Command::default()
    }
}

/// The control thread's answer: what it applied, or why not, in one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Applied (`true`) or refused.
    pub ok: bool,
    /// What was applied, or the refusal.
    pub message: String,
}

impl Reply {
    /// An applied change.
    pub fn applied(message: impl Into<String>) -> Reply {
        Reply {
            ok: true,
            message: message.into(),
        }
    }

    /// A refused change.
    pub fn refused(message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            message: message.into(),
        }
    }
}

/// A command on its way to the control thread, with where to answer.
#[derive(Debug)]
pub struct Request {
    /// Who asked.
    pub source: Source,
    /// What.
    pub command: Command,
    /// The answer goes here (a channel of one, per request).
    pub reply: Sender<Reply>,
}

/// How long a sender waits for the control thread's reply: it answers
/// within a cycle's work, so this only bounds a service that is stuck.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// The sending side of the command path, cloned by each source.
#[derive(Debug, Clone)]
pub struct CommandSender {
    tx: Sender<Request>,
}

impl CommandSender {
    /// A command path: the sender for the sources, the receiver for the
    /// control thread. Bounded, so a flood of requests waits on its senders,
    /// never on the control thread.
    pub fn channel() -> (CommandSender, Receiver<Request>) {
        let (tx, rx) = crossbeam_channel::bounded(16);
        (CommandSender { tx }, rx)
    }

    /// Sends `command` and waits for the reply, at most [`REPLY_WAIT`].
    pub fn send(&self, source: Source, command: Command) -> Reply {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let request = Request {
            source,
            command,
            reply,
        };
        if self.tx.send_timeout(request, REPLY_WAIT).is_err() {
            return Reply::refused("the control thread is not taking commands (busy or stopping)");
        }
        answer
            .recv_timeout(REPLY_WAIT)
            .unwrap_or_else(|_| Reply::refused("the control thread did not answer in time"))
    }
}
