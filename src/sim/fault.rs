//! The ways a simulated plug can misbehave ([`Fault`], `--fault`), as real
//! plugs and Wi-Fi do. A leaf of `sim/`.

use std::str::FromStr;
use std::time::Duration;

/// A way to misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Accepts connections and requests, never answers.
    Blackhole,
    /// Answers after this delay.
    Slow(Duration),
    /// Closes the connection in the middle of the reply.
    Drop,
    /// Answers a well-framed reply that is not JSON (on KLAP: correctly
    /// encrypted and signed).
    Garbage,
    /// Answers `err_code` -1 (`error_code` -1 on SMART) to every method.
    Err,
    /// Acknowledges a switch but the relay does not move.
    Stuck,
    /// The relay moves this long after a switch is acknowledged.
    Lag(Duration),
    /// The first N requests (after the fault is set) are dropped without an answer.
    Flaky(u32),
    /// KLAP, AES and TPAP: the device holds other credentials than the
    /// configured ones, so every handshake fails the client's check (KLAP) or
    /// every login is refused with `-1501` (AES) or `-2203` with the failed
    /// and remaining attempts (TPAP): a wrong password.
    BadAuth,
    /// KLAP, AES and TPAP: a session ends after this many requests, long
    /// before its announced `TIMEOUT`; the device then answers 403 (KLAP),
    /// `error_code` 9999 SESSION_TIMEOUT (AES) or -40401, 9999 and -40413 in
    /// turn (TPAP).
    Expire(u32),
    /// KLAP: every reply carries a corrupt signature. AES (which has no
    /// signature): every reply is encrypted with another key, so it does not
    /// decrypt (bad padding or garbage).
    BadSig,
    /// TPAP: every reply's authentication tag is wrong.
    BadTag,
    /// KLAP, AES and TPAP models, from the start only: TCP connections are
    /// refused until the device receives a UDP 20002 probe or this much time
    /// passes (a P110 on 1.4.6 after a power cut).
    Sleepy(Duration),
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let ms = |a: Option<&str>| -> Result<Duration, String> {
            let a = a.ok_or_else(|| format!("{kind} needs milliseconds, e.g. {kind}:500"))?;
            a.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{kind}:{a}: not a whole number of milliseconds"))
        };
        let count = |a: &str| {
            a.parse::<u32>()
                .map_err(|_| format!("{kind}:{a}: not a whole number"))
        };
        match kind {
            "blackhole" => Ok(Fault::Blackhole),
            "slow" => Ok(Fault::Slow(ms(arg)?)),
            "drop" => Ok(Fault::Drop),
            "garbage" => Ok(Fault::Garbage),
            "err" => Ok(Fault::Err),
            "stuck" => Ok(Fault::Stuck),
            "lag" => Ok(Fault::Lag(ms(arg)?)),
            "flaky" => {
                let a = arg.ok_or("flaky needs a count, e.g. flaky:2")?;
                count(a).map(Fault::Flaky)
            }
            "badauth" => Ok(Fault::BadAuth),
            "badsig" => Ok(Fault::BadSig),
            "badtag" => Ok(Fault::BadTag),
            "sleepy" => {
                let a = arg.ok_or("sleepy needs seconds, e.g. sleepy:600")?;
                a.parse::<u64>()
                    .map(|s| Fault::Sleepy(Duration::from_secs(s)))
                    .map_err(|_| format!("sleepy:{a}: not a whole number of seconds"))
            }
            "expire" => match arg {
                None => Ok(Fault::Expire(2)),
                Some(a) => match count(a)? {
                    0 => Err("expire:0: a session must last at least one request".into()),
                    n => Ok(Fault::Expire(n)),
                },
            },
            _ => Err(
                "expected blackhole, slow:MS, drop, garbage, err, stuck, lag:MS, flaky:N, \
                 badauth, expire[:N], badsig, badtag or sleepy:S"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_parse() {
        assert_eq!("badauth".parse::<Fault>(), Ok(Fault::BadAuth));
        assert_eq!("badsig".parse::<Fault>(), Ok(Fault::BadSig));
        assert_eq!("expire".parse::<Fault>(), Ok(Fault::Expire(2)));
        assert_eq!("expire:5".parse::<Fault>(), Ok(Fault::Expire(5)));
        assert!("expire:0".parse::<Fault>().is_err());
        assert!("expire:x".parse::<Fault>().is_err());
        assert!("nonsense".parse::<Fault>().unwrap_err().contains("badsig"));
        assert_eq!("badtag".parse::<Fault>(), Ok(Fault::BadTag));
        assert_eq!(
            "sleepy:600".parse::<Fault>(),
            Ok(Fault::Sleepy(Duration::from_secs(600)))
        );
        assert!("sleepy".parse::<Fault>().unwrap_err().contains("seconds"));
        assert!("sleepy:x".parse::<Fault>().is_err());
    }
}
