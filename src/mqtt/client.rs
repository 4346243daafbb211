//! The MQTT thread: one blocking connection to the broker over a `std`
//! TCP stream with deadlines on every step, reconnected with backoff.
//!
//! A session: connect (bounded), CONNECT with the last will, wait for the
//! CONNACK (bounded), `online` (retained), SUBSCRIBE, the discovery configs
//! (retained), the state. Then one loop, woken every [`Timing::poll`] by the
//! socket's read timeout: the control thread's wake-up (the state file was
//! rewritten), incoming packets, keep-alive. Writes have a deadline, so a
//! broker that stops reading ends the session instead of this thread; the
//! control thread never waits on any of it (it only `try_send`s a wake-up).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::{Receiver, TryRecvError};
use log::{debug, info, warn};
use mqttbytes::v4::{ConnectReturnCode, Packet};

use super::topics::{Incoming, Node, StatePayload, OFFLINE, ONLINE};
use super::wire::{self, WireError};
use crate::msg::{CommandSender, Source};
use crate::outputs::StateFile;

/// The deadlines and periods of a session (shorter in tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// TCP connect.
    pub connect: Duration,
    /// From CONNECT to CONNACK.
    pub connack: Duration,
    /// Each write to the socket.
    pub write: Duration,
    /// The socket's read timeout: how often the loop looks at its channels.
    pub poll: Duration,
    /// MQTT keep-alive: a PINGREQ after this long without sending.
    pub keep_alive: Duration,
    /// How long a PINGREQ may go unanswered.
    pub ping_wait: Duration,
    /// The first wait before reconnecting, doubled up to `backoff_max`.
    pub backoff_min: Duration,
    /// The longest wait before reconnecting.
    pub backoff_max: Duration,
    /// A session that lasted this long resets the backoff.
    pub stable: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            connect: Duration::from_secs(5),
            connack: Duration::from_secs(10),
            write: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            keep_alive: Duration::from_secs(30),
            ping_wait: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable: Duration::from_secs(30),
        }
    }
}

/// Doubling waits between reconnects, `min` to `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next attempt; the one after is twice as long.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let w = self.next;
        self.next = (self.next * 2).min(self.max);
        w
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Everything the thread needs.
pub(crate) struct Link {
    pub addr: String,
    pub client_id: String,
    pub login: Option<(String, String)>,
    pub node: Node,
    pub timing: Timing,
    pub publish_every: Duration,
    pub state_file: std::path::PathBuf,
    pub commands: CommandSender,
    pub wake: Receiver<()>,
    pub stop: Receiver<()>,
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// Asked to stop (the service is stopping).
    Stop,
    /// The broker is gone or misbehaved: the reason, for the log.
    Lost(String),
}

/// Whether the broker is there, so that the log says once that it is lost
/// and once that it is back, not every retry.
#[derive(Debug, PartialEq)]
enum Health {
    Starting,
    Up,
    Down,
}

impl Link {
    pub(crate) fn run(self) {
        let mut backoff = Backoff::new(self.timing.backoff_min, self.timing.backoff_max);
        let mut health = Health::Starting;
        let mut connected_before = false;
        loop {
            let started = Instant::now();
            let end = match self.open() {
                Ok((stream, buf)) => {
                    match health {
                        Health::Down if connected_before => {
                            info!("mqtt: the broker {} is back", self.addr)
                        }
                        _ => info!("mqtt: connected to the broker {}", self.addr),
                    }
                    connected_before = true;
                    health = Health::Up;
                    let mut session = Session {
                        link: &self,
                        stream,
                        buf,
                        last_sent: Instant::now(),
                        ping_sent: None,
                        last_state: None,
                        last_publish: None,
                        chamber_announced: false,
                    };
                    let end = session.run();
                    if let End::Stop = end {
                        session.close();
                        return;
                    }
                    end
                }
                Err(End::Stop) => return,
                Err(lost) => lost,
            };
            let End::Lost(why) = end else { return };
            match health {
                Health::Up => warn!(
                    "mqtt: lost the broker {}: {why}; reconnecting every 1 to {} s (control goes on)",
                    self.addr,
                    self.timing.backoff_max.as_secs()
                ),
                Health::Starting => warn!(
                    "mqtt: cannot reach the broker {}: {why}; retrying every 1 to {} s (control goes on)",
                    self.addr,
                    self.timing.backoff_max.as_secs()
                ),
                Health::Down => debug!("mqtt: broker {} still unreachable: {why}", self.addr),
            }
            health = Health::Down;
            if started.elapsed() >= self.timing.stable {
                backoff.reset();
            }
            let wait = backoff.next_wait();
            // The state waits in the file; only stop matters now.
            crossbeam_channel::select! {
                recv(self.stop) -> _ => return,
                default(wait) => {}
            }
        }
    }

    fn stopped(&self) -> bool {
        !matches!(self.stop.try_recv(), Err(TryRecvError::Empty))
    }

    /// Connects and does the handshake: a ready session's stream, and
    /// what was read after the CONNACK.
    fn open(&self) -> Result<(TcpStream, BytesMut), End> {
        let lost = |e: String| End::Lost(e);
        // Name resolution blocks this thread only.
        let addrs: Vec<SocketAddr> = self
            .addr
            .to_socket_addrs()
            .map_err(|e| lost(format!("cannot resolve {}: {e}", self.addr)))?
            .collect();
        let mut last = format!("{} resolves to no address", self.addr);
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, self.timing.connect) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("connect to {a}: {e}"),
            }
        }
        let mut stream = stream.ok_or_else(|| lost(last))?;
        let io = |e: io::Error| End::Lost(format!("socket: {e}"));
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_write_timeout(Some(self.timing.write))
            .map_err(io)?;
        stream
            .set_read_timeout(Some(self.timing.poll))
            .map_err(io)?;
        let keep_alive = self.timing.keep_alive.as_secs().clamp(1, u16::MAX as u64) as u16;
        let login = self.login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let connect = wire::connect(
            &self.client_id,
            keep_alive,
            &self.node.availability(),
            OFFLINE,
            login,
        );
        write_all(&mut stream, &connect)?;
        let deadline = Instant::now() + self.timing.connack;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            match wire::decode(&mut buf) {
                Ok(Some(Packet::ConnAck(ack))) => {
                    return match ack.code {
                        ConnectReturnCode::Success => Ok((stream, buf)),
                        code => Err(lost(refusal(code))),
                    }
                }
                Ok(Some(other)) => {
                    return Err(lost(format!(
                        "the broker answered CONNECT with {} instead of CONNACK",
                        kind(&other)
                    )))
                }
                Ok(None) => {}
                Err(e) => return Err(lost(e.to_string())),
            }
            if Instant::now() >= deadline {
                return Err(lost(format!(
                    "no CONNACK within {} s (a stalled broker, or not MQTT on this port)",
                    self.timing.connack.as_secs_f64()
                )));
            }
            if self.stopped() {
                return Err(End::Stop);
            }
            read_some(&mut stream, &mut buf)?;
        }
    }
}

/// The broker's refusal of CONNECT, with what to check.
fn refusal(code: ConnectReturnCode) -> String {
    let why = match code {
        ConnectReturnCode::RefusedProtocolVersion => "does not speak MQTT 3.1.1 (protocol level 4)",
        ConnectReturnCode::BadClientId => "refused the client id (check mqtt.client_id)",
        ConnectReturnCode::ServiceUnavailable => "is unavailable",
        ConnectReturnCode::BadUserNamePassword => {
            "refused the user name or password (check mqtt.username and mqtt.password_file)"
        }
        ConnectReturnCode::NotAuthorized => {
            "refused this client (not authorised: check the broker's ACL and mqtt.username)"
        }
        ConnectReturnCode::Success => "accepted",
    };
    format!("the broker {why}")
}

fn kind(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

fn write_all(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), End> {
    stream.write_all(bytes).map_err(|e| {
        End::Lost(match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                "a write timed out: the broker stopped reading (stalled)".to_string()
            }
            _ => format!("write: {e}"),
        })
    })
}

/// One read into `buf`: `Ok` also when the poll period passed with nothing.
fn read_some(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<(), End> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk) {
        Ok(0) => Err(End::Lost("the broker closed the connection".into())),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(End::Lost(format!("read: {e}"))),
    }
}

struct Session<'a> {
    link: &'a Link,
    stream: TcpStream,
    buf: BytesMut,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    last_state: Option<String>,
    last_publish: Option<Instant>,
    chamber_announced: bool,
}

impl Session<'_> {
    fn send(&mut self, bytes: &[u8]) -> Result<(), End> {
        write_all(&mut self.stream, bytes)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    fn publish(&mut self, topic: &str, payload: &str, retain: bool) -> Result<(), End> {
        match wire::publish(topic, payload.as_bytes(), retain) {
            Some(p) => self.send(&p),
            None => {
                warn!("mqtt: cannot publish on {topic:?} (not a topic MQTT can carry)");
                Ok(())
            }
        }
    }

    fn announce(&mut self, chamber: bool) -> Result<(), End> {
        for (topic, payload) in self.link.node.discovery(chamber) {
            self.publish(&topic, &payload, true)?;
        }
        self.chamber_announced = chamber;
        Ok(())
    }

    fn run(&mut self) -> End {
        match self.start() {
            Ok(()) => {}
            Err(e) => return e,
        }
        loop {
            if let Err(e) = self.step() {
                return e;
            }
        }
    }

    fn start(&mut self) -> Result<(), End> {
        self.publish(&self.link.node.availability(), ONLINE, true)?;
        let subscribe = wire::subscribe(1, &self.link.node.subscriptions());
        self.send(&subscribe)?;
        self.announce(false)?;
        self.publish_state(true)?;
        // Packets that came with the CONNACK.
        self.handle_buffered()
    }

    fn step(&mut self) -> Result<(), End> {
        let woken = match self.link.wake.try_recv() {
            Ok(()) => true,
            Err(TryRecvError::Empty) => false,
            // The control thread is gone: nothing more to publish.
            Err(TryRecvError::Disconnected) => return Err(End::Stop),
        };
        if self.link.stopped() {
            return Err(End::Stop);
        }
        let due = self
            .last_publish
            .is_none_or(|t| t.elapsed() >= self.link.publish_every);
        if woken || due {
            self.publish_state(due)?;
        }
        let now = Instant::now();
        if let Some(sent) = self.ping_sent {
            if now.duration_since(sent) >= self.link.timing.ping_wait {
                return Err(End::Lost(format!(
                    "no answer to a ping within {} s (a stalled broker)",
                    self.link.timing.ping_wait.as_secs_f64()
                )));
            }
        } else if now.duration_since(self.last_sent) >= self.link.timing.keep_alive {
            self.send(&wire::PINGREQ)?;
            self.ping_sent = Some(Instant::now());
        }
        read_some(&mut self.stream, &mut self.buf)?;
        self.handle_buffered()
    }

    fn handle_buffered(&mut self) -> Result<(), End> {
        loop {
            match wire::decode(&mut self.buf) {
                Ok(Some(p)) => self.handle(p)?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let what = match e {
                        WireError::Oversize(_) => "refused an oversize packet",
                        WireError::Malformed(_) => "refused a malformed packet",
                    };
                    warn!("mqtt: {what}: {e}; dropping the connection");
                    return Err(End::Lost(e.to_string()));
                }
            }
        }
    }

    fn handle(&mut self, p: Packet) -> Result<(), End> {
        match p {
            Packet::PingResp => self.ping_sent = None,
            Packet::SubAck(ack) => {
                let filters = self.link.node.subscriptions();
                for (i, code) in ack.return_codes.iter().enumerate() {
                    if *code == mqttbytes::v4::SubscribeReasonCode::Failure {
                        warn!(
                            "mqtt: the broker refused the subscription to {} (check its ACL); \
                             commands from there will not arrive",
                            filters.get(i).map(String::as_str).unwrap_or("?")
                        );
                    }
                }
            }
            Packet::Publish(msg) => {
                if msg.qos != mqttbytes::QoS::AtMostOnce {
                    self.send(&wire::puback(msg.pkid))?;
                }
                match self
                    .link
                    .node
                    .incoming(&msg.topic, &msg.payload, msg.retain)
                {
                    Incoming::Ignore => {}
                    Incoming::HaOnline => {
                        info!("mqtt: Home Assistant is online; announcing the entities again");
                        let chamber = self.chamber_announced;
                        self.announce(chamber)?;
                        self.publish_state(true)?;
                    }
                    Incoming::Refused(why) => {
                        warn!(target: "command", "mqtt: refused: {why}");
                        self.publish_state(true)?;
                    }
                    Incoming::Command(c) => {
                        // Retained commands are stale: whoever set them is
                        // not asking now.
                        if msg.retain {
                            info!(
                                "mqtt: ignored a retained command on {} (clear it with an empty retained message)",
                                msg.topic
                            );
                            return Ok(());
                        }
                        // The control thread logs the change or the refusal.
                        let reply = self.link.commands.send(Source::Mqtt, c);
                        if !reply.ok {
                            debug!("mqtt: {} refused: {}", msg.topic, reply.message);
                        }
                        self.publish_state(true)?;
                    }
                }
            }
            Packet::PubAck(_) | Packet::UnsubAck(_) => {}
            other => {
                let e = format!(
                    "the broker sent a {} packet, which a broker never sends",
                    kind(&other)
                );
                warn!("mqtt: refused a packet: {e}; dropping the connection");
                return Err(End::Lost(e));
            }
        }
        Ok(())
    }

    /// Reads the state file and publishes it when it changed, or when
    /// `force`d (due, a refused command, HA restarted).
    fn publish_state(&mut self, force: bool) -> Result<(), End> {
        let text = match crate::fsutil::read_text_capped(
            &self.link.state_file,
            crate::outputs::state_file::MAX_STATE_BYTES,
        ) {
            Ok(t) => t,
            // Not written yet (the first cycle), or being replaced.
            Err(_) => return Ok(()),
        };
        let Ok(state) = StateFile::parse(&text) else {
            return Ok(());
        };
        let extra = text
            .contains("\"chamber_")
            .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
            .flatten();
        let payload = StatePayload::of(&state, extra.as_ref());
        if payload.has_chamber() && !self.chamber_announced {
            self.announce(true)?;
        }
        let json = payload.to_json();
        if !force && self.last_state.as_deref() == Some(json.as_str()) {
            return Ok(());
        }
        let topic = self.link.node.state();
        self.publish(&topic, &json, false)?;
        self.last_state = Some(json);
        self.last_publish = Some(Instant::now());
        Ok(())
    }

    /// A clean end: the last state, `offline` (retained), DISCONNECT.
    fn close(&mut self) {
        let _ = self.publish_state(false);
        let topic = self.link.node.availability();
        let _ = self.publish(&topic, OFFLINE, true);
        let _ = self.send(&wire::DISCONNECT);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }

    #[test]
    fn refusals_say_what_to_check() {
        assert!(refusal(ConnectReturnCode::BadUserNamePassword).contains("mqtt.password_file"));
        assert!(refusal(ConnectReturnCode::NotAuthorized).contains("ACL"));
    }
}
