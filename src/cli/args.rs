//! Every flag of every subcommand, in one place (as ripgrep keeps its
//! `flags/`): the clap definitions, their help text and the parsing of
//! values. The subcommands' code lives beside this module and receives these
//! structs already parsed.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::kasa::sim::{Fault, Model};
use crate::kasa::Protocol;

const AFTER_HELP: &str = "\
Exit status: 0 done, 1 failed, 2 usage error.
Design and configuration: see README.md (or `kasa-thermostat help SUBCOMMAND`).";

/// kasa-thermostat: hold a temperature with a DS18B20 sensor and TP-Link
/// Kasa / Tapo smart plugs.
#[derive(Debug, Parser)]
#[command(
    name = "kasa-thermostat",
    version,
    about = "Hold a temperature with a DS18B20 sensor and TP-Link Kasa smart plugs",
    after_help = AFTER_HELP,
    propagate_version = true,
    disable_help_subcommand = false,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (or, with --simulate, a demo on loopback).
    #[command(after_help = "\
Examples:
  kasa-thermostat run --config /etc/kasa-thermostat/config.json
  kasa-thermostat run --simulate --speed 20

The service stops on SIGTERM or SIGINT: every plug goes to its shutdown_state
within 15 s, and the exit status is 0 only if every plug was read back in it.")]
    Run(RunArgs),
    /// Check a config file and print the effective config (every default filled in).
    #[command(name = "check-config")]
    CheckConfig(CheckConfigArgs),
    /// Show the running service's state file.
    Status(StatusArgs),
    /// Find plugs on the LAN (UDP broadcast, legacy 9999 and the 20002 probe).
    Discover(DiscoverArgs),
    /// Read or switch one plug (or strip outlet), verified and retried as the service does.
    #[command(after_help = "\
Examples:
  kasa-thermostat plug 10.0.0.5 state
  kasa-thermostat plug 10.0.0.5 on
  kasa-thermostat plug strip.lan:9999 off --outlet 2      (outlets count from 0)
  kasa-thermostat plug 10.0.0.5 sysinfo --json

`on` and `off` read the state back and exit 1 when it could not be verified.")]
    Plug(PlugArgs),
    /// Find or read the DS18B20 sensor.
    Sensor(SensorArgs),
    /// Serve a simulated plug on loopback (for tests and trying things out).
    #[command(name = "simulate-plug")]
    SimulatePlug(SimulatePlugArgs),
    /// Draw readings.jsonl as an SVG: temperature, limits, plug spans, stale and alarm periods.
    #[command(after_help = "\
Examples:
  kasa-thermostat plot --since 24h --out /tmp/last-day.svg
  kasa-thermostat plot --readings readings.jsonl --since 2026-11-20
  rsvg-convert /tmp/last-day.svg -o /tmp/last-day.png      (a PNG for an image viewer)")]
    Plot(PlotArgs),
    /// Plug health and chamber figures from readings.jsonl and plug-events.jsonl.
    Report(ReportArgs),
    /// Run the config's alerts command once with a test event.
    #[command(name = "alert-test")]
    AlertTest(AlertTestArgs),
    /// Show or restart the config's temperature profile.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  kasa-thermostat completions bash > /etc/bash_completion.d/kasa-thermostat
  kasa-thermostat completions zsh > \"${fpath[1]}/_kasa-thermostat\"
  kasa-thermostat completions fish > ~/.config/fish/completions/kasa-thermostat.fish")]
    Completions(CompletionsArgs),
}

/// `plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The service's log_dir (holding readings.jsonl).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/log/kasa-thermostat",
        conflicts_with = "readings"
    )]
    pub log_dir: PathBuf,
    /// A readings.jsonl file to draw instead.
    #[arg(long, value_name = "FILE")]
    pub readings: Option<PathBuf>,
    /// From when: 90m, 24h, 7d, 2w, a date (2026-11-20) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "24h")]
    pub since: String,
    /// The SVG to write.
    #[arg(long, value_name = "FILE.svg", default_value = "readings.svg")]
    pub out: PathBuf,
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The service's log_dir (holding readings.jsonl and plug-events.jsonl).
    #[arg(long, value_name = "DIR", default_value = "/var/log/kasa-thermostat")]
    pub log_dir: PathBuf,
    /// From when: 90m, 24h, 7d, 2w, a date (2026-11-20) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", default_value = "7d")]
    pub since: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `alert-test`.
#[derive(Debug, Args)]
pub struct AlertTestArgs {
    /// The config file with the `alerts` section.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `profile show|restart`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the plan: each step with its start and end in local time, and the limits now.
    Show(ProfileArgs),
    /// Start the profile over from now (written to profile_state_file; a running service follows).
    Restart(ProfileArgs),
}

/// The config of `profile show|restart`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The config file with the `profile` section.
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (JSON).
    #[arg(
        short,
        long,
        value_name = "FILE",
        conflicts_with = "simulate",
        required_unless_present = "simulate"
    )]
    pub config: Option<PathBuf>,
    /// Run the demo: a simulated chamber and two simulated plugs on loopback.
    #[arg(long)]
    pub simulate: bool,
    /// Demo only: model seconds per real second (above 0, at most 10000; default 10).
    #[arg(long, value_name = "N", value_parser = parse_speed, requires = "simulate")]
    pub speed: Option<f64>,
    /// Demo only: run a compressed temperature profile (a hold, a ramp, a step).
    #[arg(long, requires = "simulate")]
    pub profile: bool,
}

/// `check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The config file (JSON).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The state file (the config's `state_file`).
    #[arg(long, value_name = "F", default_value = crate::config::raw::DEFAULT_STATE_FILE)]
    pub state_file: PathBuf,
    /// Print the state file's JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The one address to ask (host and optional port).
    #[arg(
        long,
        value_name = "ADDR",
        help = "Ask one address (HOST[:PORT]) instead of broadcasting"
    )]
    pub target: Option<String>,
    /// Seconds to listen for answers (above 0, at most 600).
    #[arg(long, value_name = "S", default_value_t = 3.0, value_parser = parse_discover_timeout)]
    pub timeout: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `plug` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlugAction {
    /// Read the relay state.
    State,
    /// Switch on and verify.
    On,
    /// Switch off and verify.
    Off,
    /// Print the device's own description of itself.
    Sysinfo,
}

/// `plug`.
#[derive(Debug, Args)]
pub struct PlugArgs {
    /// The plug's host and optional port.
    #[arg(
        value_name = "HOST[:PORT]",
        help = "The plug: HOST, HOST:PORT, [IPv6]:PORT"
    )]
    pub host: String,
    /// What to do.
    #[arg(value_enum)]
    pub action: PlugAction,
    /// A power strip's outlet by its child id (or its two-digit suffix).
    #[arg(long, value_name = "ID", conflicts_with = "outlet")]
    pub child: Option<String>,
    /// A power strip's outlet by index, counted from 0 (the first outlet is 0).
    #[arg(long, value_name = "N")]
    pub outlet: Option<usize>,
    /// The protocol: auto (learn it), legacy (TCP 9999), klap or aes (HTTP 80).
    #[arg(long, value_name = "P", default_value = "auto", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// TP-Link account for KLAP/AES plugs (else $KASA_USERNAME, else the devices' defaults).
    #[arg(long, value_name = "U")]
    pub username: Option<String>,
    /// A file holding the account's password (else $KASA_PASSWORD).
    #[arg(long, value_name = "F")]
    pub password_file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Scale every plug timing (tests run the real schedule scaled down).
    #[arg(long, hide = true, default_value_t = 1.0, value_parser = parse_scale)]
    pub timing_scale: f64,
}

/// What `sensor` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SensorAction {
    /// List the DS18B20 sensors found.
    Scan,
    /// Read each sensor once, with the service's fault checks.
    Read,
}

/// `sensor`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").args(["config", "w1_root", "gpio"]))]
pub struct SensorArgs {
    /// What to do.
    #[arg(value_enum)]
    pub action: SensorAction,
    /// Take the sensor settings from this config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The kernel w1 backend with this root (default /sys/bus/w1/devices).
    #[arg(long, value_name = "DIR")]
    pub w1_root: Option<PathBuf>,
    /// The hal backend on this GPIO line: CHIP:LINE (gpiochip0:4, /dev/gpiochip0:4, 0:4).
    #[arg(long, value_name = "CHIP:LINE", value_parser = parse_gpio)]
    pub gpio: Option<(PathBuf, u32)>,
}

/// `simulate-plug`.
#[derive(Debug, Args)]
pub struct SimulatePlugArgs {
    /// TCP and UDP address to serve on; port 0 picks a free one (printed on stdout).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// The simulated hardware: hs100, hs110, hs300 (legacy); hs100-klap (legacy JSON in
    /// KLAP); p100, p110, p300, kp125m, ep40m (SMART in KLAP).
    #[arg(long, value_name = "MODEL", default_value = "hs100", value_parser = parse_model)]
    pub model: Model,
    /// Misbehave: blackhole, slow:MS, drop, garbage, err, stuck, lag:MS, flaky:N,
    /// and for KLAP models badauth, expire:N, badsig.
    #[arg(long, value_name = "KIND", value_parser = parse_fault)]
    pub fault: Option<Fault>,
    /// The plug's name.
    #[arg(long, value_name = "NAME", default_value = "Simulated plug")]
    pub alias: String,
    /// Emulate newer firmware: TCP 9999 refused, the UDP 20002 probe answered.
    #[arg(long)]
    pub klap_only: bool,
    /// The TP-Link account a KLAP model is bound to (else it takes the
    /// devices' published defaults, like a plug never bound to the cloud).
    #[arg(long, value_name = "U", requires = "password")]
    pub username: Option<String>,
    /// The account's password (a test device: given on the command line).
    #[arg(long, value_name = "P", requires = "username")]
    pub password: Option<String>,
    /// The device refuses countdown rules (to try a plug without a dead-man).
    #[arg(long)]
    pub no_countdown: bool,
    /// Append every relay change to FILE as a JSON line
    /// (`{"t_ms": UNIX_MS, "outlet": N|null, "on": BOOL}`), and an off for
    /// each outlet still on when it stops (its power goes with it).
    #[arg(long, value_name = "FILE")]
    pub transitions: Option<PathBuf>,
}

/// Shells `completions` can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 10_000.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be above 0 and at most 10000"))
    }
}

fn parse_discover_timeout(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 600.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s}: expected seconds, more than 0 and at most 600"
        ))
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && (0.001..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s}: expected a factor from 0.001 to 1"))
    }
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
}

/// `CHIP:LINE` for `--gpio`: `gpiochip0:4`, `/dev/gpiochip0:4` or `0:4`.
pub fn parse_gpio(text: &str) -> Result<(PathBuf, u32), String> {
    let bad = || format!("{text:?}: expected CHIP:LINE, e.g. gpiochip0:4 or /dev/gpiochip0:4");
    let (chip, line) = text.rsplit_once(':').ok_or_else(bad)?;
    let line = line.parse().map_err(|_| bad())?;
    let chip = if chip.is_empty() {
        return Err(bad());
    } else if chip.contains('/') {
        PathBuf::from(chip)
    } else if chip.bytes().all(|b| b.is_ascii_digit()) {
        PathBuf::from(format!("/dev/gpiochip{chip}"))
    } else {
        PathBuf::from("/dev").join(chip)
    };
    Ok((chip, line))
}

/// Splits `HOST[:PORT]` (IPv6 as `[::1]:9999` or bare `::1`); `None` when
/// no port is given.
pub fn parse_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let bad_port = |p: &str| format!("{text:?}: port {p:?} is not a number from 1 to 65535");
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad_port(p))?,
            ),
            None if after.is_empty() => None,
            None => return Err(format!("{text:?}: expected ]:PORT")),
        };
        return Ok((host.to_string(), port));
    }
    match text.matches(':').count() {
        0 if text.is_empty() => Err("the host is empty".into()),
        0 => Ok((text.to_string(), None)),
        1 => {
            let (h, p) = text.split_once(':').unwrap_or((text, ""));
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad_port(p))?;
            if h.is_empty() {
                return Err(format!("{text:?}: the host is empty"));
            }
            Ok((h.to_string(), Some(port)))
        }
        // A bare IPv6 address.
        _ => Ok((text.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(parse_host_port("plug.lan"), Ok(("plug.lan".into(), None)));
        assert_eq!(
            parse_host_port("10.0.0.5:80"),
            Ok(("10.0.0.5".into(), Some(80)))
        );
        assert_eq!(parse_host_port("[::1]:7"), Ok(("::1".into(), Some(7))));
        assert_eq!(parse_host_port("[::1]"), Ok(("::1".into(), None)));
        assert_eq!(parse_host_port("fe80::1"), Ok(("fe80::1".into(), None)));
        assert!(parse_host_port("h:99999").is_err());
        assert!(parse_host_port("h:0").is_err());
        assert!(parse_host_port(":5").is_err());
    }

    #[test]
    fn gpio_flag_forms() {
        assert_eq!(
            parse_gpio("gpiochip0:4"),
            Ok((PathBuf::from("/dev/gpiochip0"), 4))
        );
        assert_eq!(
            parse_gpio("/dev/gpiochip1:17"),
            Ok((PathBuf::from("/dev/gpiochip1"), 17))
        );
        assert_eq!(parse_gpio("0:4"), Ok((PathBuf::from("/dev/gpiochip0"), 4)));
        assert!(parse_gpio("gpiochip0").is_err());
        assert!(parse_gpio(":4").is_err());
    }

    #[test]
    fn scales_and_speeds_are_bounded() {
        assert!(parse_scale("1e300").is_err());
        assert!(parse_scale("0").is_err());
        assert!(parse_scale("NaN").is_err());
        assert_eq!(parse_scale("0.01"), Ok(0.01));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("inf").is_err());
    }
}
