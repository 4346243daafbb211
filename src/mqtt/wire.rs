//! MQTT 3.1.1 packets on the wire: the few this client sends, built with
//! the `mqttbytes` codec, and the decoding of what the broker sends, with
//! a size limit and one clear line for anything malformed.
//!
//! The codec does no I/O: `client.rs` owns the socket and feeds the bytes
//! read into [`decode`], which takes whole packets off the front of the
//! buffer and leaves a partial one for the next read.

use bytes::BytesMut;
use mqttbytes::v4::{self, Connect, LastWill, Packet, PubAck, Publish, Subscribe};
use mqttbytes::QoS;

/// The largest packet accepted from the broker (remaining length, bytes).
/// What the service subscribes to (commands, Home Assistant's status) is a
/// few bytes; a larger packet is refused from its fixed header, before its
/// body is read into memory.
pub const MAX_INCOMING: usize = 64 * 1024;

/// The largest topic or string MQTT can carry (a 16-bit length).
const MAX_STRING: usize = u16::MAX as usize;

/// What is wrong with the bytes the broker sent.
#[derive(Debug, Clone, PartialEq)]
pub enum WireError {
    /// A packet larger than [`MAX_INCOMING`]: a broker bug, or not an MQTT
    /// broker at all (check `mqtt.host` and `mqtt.port`).
    Oversize(usize),
    /// Bytes that are not an MQTT 3.1.1 packet (the codec's reason).
    Malformed(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Oversize(n) => write!(
                f,
                "the broker sent a packet of {n} bytes, over the limit of {MAX_INCOMING}"
            ),
            WireError::Malformed(why) => {
                write!(
                    f,
                    "the broker sent bytes that are not an MQTT packet ({why})"
                )
            }
        }
    }
}

impl std::error::Error for WireError {}

fn encode(write: impl FnOnce(&mut BytesMut) -> Result<usize, mqttbytes::Error>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    // Only oversize payloads fail, and every caller bounds its own.
    if write(&mut buf).is_err() {
        return Vec::new();
    }
    buf.to_vec()
}

/// The CONNECT: a clean session, `keep_alive_s`, the last will (`will_topic`
/// = `will_payload`, retained, QoS 1) and the broker account if any.
pub fn connect(
    client_id: &str,
    keep_alive_s: u16,
    will_topic: &str,
    will_payload: &str,
    login: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut c = Connect::new(client_id);
    c.keep_alive = keep_alive_s;
    c.clean_session = true;
    c.last_will = Some(LastWill::new(
        will_topic,
        will_payload.as_bytes().to_vec(),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some((user, password)) = login {
        c.set_login(user, password);
    }
    encode(|b| c.write(b))
}

/// A QoS 0 PUBLISH; `None` when the topic cannot be carried (longer than
/// 65535 bytes: config bounds keep ours far below).
pub fn publish(topic: &str, payload: &[u8], retain: bool) -> Option<Vec<u8>> {
    if topic.len() > MAX_STRING || topic.is_empty() {
        return None;
    }
    let mut p = Publish::new(topic, QoS::AtMostOnce, payload.to_vec());
    p.retain = retain;
    let out = encode(|b| p.write(b));
    (!out.is_empty()).then_some(out)
}

/// A SUBSCRIBE at QoS 0 to each filter, as packet `pkid`.
pub fn subscribe(pkid: u16, filters: &[String]) -> Vec<u8> {
    let mut s = Subscribe::empty_subscribe();
    s.pkid = pkid;
    for f in filters {
        s.add(f.clone(), QoS::AtMostOnce);
    }
    encode(|b| s.write(b))
}

/// The PUBACK for an incoming QoS 1 PUBLISH.
pub fn puback(pkid: u16) -> Vec<u8> {
    encode(|b| PubAck::new(pkid).write(b))
}

/// PINGREQ (keep-alive).
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
/// DISCONNECT (a clean end: the broker drops the last will).
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// Takes the next whole packet off the front of `buf`: `Ok(None)` when the
/// buffer holds only part of one (read more), an error when the bytes are
/// not a packet or one over [`MAX_INCOMING`]. After an error the
/// connection cannot be trusted (framing is lost): drop it.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Packet>, WireError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // The fixed header's type nibble first: 0 and 15 are reserved, and the
    // codec would only say so once the whole announced frame is buffered.
    let kind = buf[0] >> 4;
    if kind == 0 || kind == 15 {
        return Err(WireError::Malformed(format!(
            "reserved packet type {kind} in first byte {:#04x}",
            buf[0]
        )));
    }
    match v4::read(buf, MAX_INCOMING) {
        Ok(p) => Ok(Some(p)),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(n)) => Err(WireError::Oversize(n)),
        Err(e) => Err(WireError::Malformed(format!("{e:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqttbytes::v4::{ConnAck, ConnectReturnCode};

    fn buf(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes)
    }

    #[test]
    fn connect_carries_will_keepalive_and_login_as_the_spec_lays_them_out() {
        let bytes = connect("kt", 30, "p/availability", "offline", Some(("u", "pw")));
        // Fixed header: CONNECT, then the remaining length.
        assert_eq!(bytes[0], 0x10);
        assert_eq!(bytes[1] as usize, bytes.len() - 2);
        // Protocol name "MQTT", level 4.
        assert_eq!(&bytes[2..9], &[0, 4, b'M', b'Q', b'T', b'T', 4]);
        // Flags: user, password, will retain, will QoS 1, will, clean session.
        assert_eq!(bytes[9], 0b1110_1110);
        // Keep-alive, seconds, big-endian.
        assert_eq!(&bytes[10..12], &[0, 30]);
        let mut b = buf(&bytes);
        let Some(Packet::Connect(c)) = decode(&mut b).unwrap() else {
            panic!("not a CONNECT")
        };
        assert_eq!(c.client_id, "kt");
        let will = c.last_will.unwrap();
        assert_eq!(
            (will.topic.as_str(), &will.message[..], will.retain),
            ("p/availability", &b"offline"[..], true)
        );
        let login = c.login.unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("u", "pw")
        );
        assert!(b.is_empty());
    }

    #[test]
    fn connect_without_login_sets_no_user_flags() {
        let bytes = connect("kt", 30, "p/a", "offline", None);
        assert_eq!(bytes[9], 0b0010_1110);
    }

    #[test]
    fn publish_round_trips_with_retain_and_a_long_payload() {
        // 200 bytes of payload: a two-byte remaining length.
        let payload = vec![b'x'; 200];
        let bytes = publish("a/b", &payload, true).unwrap();
        assert_eq!(bytes[0], 0x31);
        assert_eq!(&bytes[1..3], &[0x80 | ((205 % 128) as u8), 1]);
        let Some(Packet::Publish(p)) = decode(&mut buf(&bytes)).unwrap() else {
            panic!("not a PUBLISH")
        };
        assert_eq!(
            (p.topic.as_str(), p.retain, p.payload.len()),
            ("a/b", true, 200)
        );
    }

    #[test]
    fn publish_refuses_a_topic_mqtt_cannot_carry() {
        assert!(publish(&"t".repeat(70_000), b"x", false).is_none());
        assert!(publish("", b"x", false).is_none());
    }

    #[test]
    fn a_partial_packet_waits_for_more_bytes_and_keeps_them() {
        let bytes = publish("a/b", b"hello", false).unwrap();
        for cut in [1, 2, bytes.len() - 1] {
            let mut b = buf(&bytes[..cut]);
            assert_eq!(decode(&mut b).unwrap(), None, "cut at {cut}");
            assert_eq!(b.len(), cut, "nothing consumed at {cut}");
            b.extend_from_slice(&bytes[cut..]);
            assert!(matches!(decode(&mut b), Ok(Some(Packet::Publish(_)))));
        }
    }

    #[test]
    fn two_packets_in_one_read_come_out_one_by_one() {
        let mut b = buf(&[0xD0, 0x00, 0x90, 0x03, 0x00, 0x01, 0x00]);
        assert_eq!(decode(&mut b).unwrap(), Some(Packet::PingResp));
        let Some(Packet::SubAck(s)) = decode(&mut b).unwrap() else {
            panic!("not a SUBACK")
        };
        assert_eq!(s.pkid, 1);
        assert_eq!(decode(&mut b).unwrap(), None);
    }

    #[test]
    fn an_oversize_packet_is_refused_from_its_header_alone() {
        // PUBLISH claiming 1 MiB, with only the fixed header present.
        let mut b = buf(&[0x30, 0x80, 0x80, 0x40]);
        assert_eq!(decode(&mut b), Err(WireError::Oversize(1 << 20)));
        let text = WireError::Oversize(1 << 20).to_string();
        assert!(text.contains("1048576 bytes"), "{text}");
    }

    #[test]
    fn garbage_is_refused_with_its_reason() {
        for bad in [
            &[0x00, 0x00][..],                     // reserved type 0
            &[0xF0, 0x00][..],                     // reserved type 15
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], // remaining length over 4 bytes
            &[0x20, 0x02, 0x00, 0x09][..],         // CONNACK with return code 9
            &[0x30, 0x03, 0x00, 0x05, b'a'][..],   // topic length past the packet
        ] {
            let mut b = buf(bad);
            assert!(
                matches!(decode(&mut b), Err(WireError::Malformed(_))),
                "{bad:02x?} was accepted"
            );
        }
    }

    #[test]
    fn a_connack_is_read_with_its_return_code() {
        let mut b = buf(&[0x20, 0x02, 0x00, 0x05]);
        assert_eq!(
            decode(&mut b).unwrap(),
            Some(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::NotAuthorized,
                false
            )))
        );
    }

    #[test]
    fn subscribe_and_puback_are_well_formed() {
        let s = subscribe(7, &["a/set/+".to_string(), "ha/status".to_string()]);
        // SUBSCRIBE has the reserved flags 0010.
        assert_eq!(s[0], 0x82);
        let Some(Packet::Subscribe(sub)) = decode(&mut buf(&s)).unwrap() else {
            panic!("not a SUBSCRIBE")
        };
        assert_eq!(sub.pkid, 7);
        assert_eq!(sub.filters.len(), 2);
        assert_eq!(puback(0x1234), vec![0x40, 0x02, 0x12, 0x34]);
    }
}
