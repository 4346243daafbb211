//! Error-chain formatting: an error and all its causes on one line, the form
//! every log line and every CLI error message uses. One small leaf module, so
//! the plug workers, the notifier and the command line share it without
//! depending on each other.

use std::error::Error;

/// Formats `err` with its `source()` chain as `outer: inner: innermost`,
/// skipping a cause whose text the message so far already contains (many
/// errors repeat their cause in their own message).
///
/// ```
/// use std::io;
/// let inner = io::Error::new(io::ErrorKind::NotFound, "no such file");
/// let outer = io::Error::new(io::ErrorKind::Other, inner);
/// assert_eq!(kasa_thermostat::error::chain(&outer), "no such file");
/// ```
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot read /etc/x.json")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_joined_and_repeats_skipped() {
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(chain(&e), "cannot read /etc/x.json: permission denied");
        let e = Outer(std::io::Error::other("/etc/x.json"));
        assert_eq!(chain(&e), "cannot read /etc/x.json");
    }
}
