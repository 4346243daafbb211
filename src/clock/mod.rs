//! Time, written once: the one local zone type, the one RFC 3339 parser and
//! formatter, the one duration grammar and the one human-duration style.
//!
//! A leaf: it depends on nothing else in the crate, so every layer may use
//! it. What lives where:
//!
//! * [`zone`]: [`Zone`], a time zone on tz-rs (the machine's, a POSIX rule,
//!   UTC or a fixed offset), its offsets and abbreviations, local civil times
//!   turned into instants across DST changes, and local times for people;
//! * [`rfc3339`]: [`parse_rfc3339`] and [`format_rfc3339`], the form of every
//!   time in the files this program writes and reads, and [`Stamp`], an
//!   instant that serializes that way;
//! * [`duration`]: [`parse_duration`], the grammar of every duration a person
//!   writes (`45s`, `90m`, `36h`, `4d`, `2w`, `1d12h`: profile steps,
//!   `--since`), and its canonical form [`format_duration`];
//! * [`mod@human`]: [`human()`], a span of time for people (`1 min 33 s`,
//!   `3 h 05 min`), as `status`, `report` and `profile show` print it;
//! * [`since`]: [`Since`], what `--since` names (a duration back, a date, an
//!   instant);
//! * [`unix`]: instants as Unix seconds, the plot's and the report's axis.
//!
//! The submodules name each other directly (`super::rfc3339::...`), never
//! through this file, which only re-exports: no import circle.

pub mod duration;
pub mod human;
pub mod rfc3339;
pub mod since;
pub mod unix;
pub mod zone;

pub use duration::{format_duration, parse_duration, DurationError};
pub use human::human;
pub use rfc3339::{format_rfc3339, parse_rfc3339, Precision, Rfc3339Error, Stamp};
pub use since::{Since, SinceError};
pub use unix::{from_unix_secs, unix_secs};
pub use zone::{local_string, Zone, ZoneError};
