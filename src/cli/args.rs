//! Every flag of every subcommand, in one place (as ripgrep keeps its
//! `flags/`): the declarations (`flags::Sub` values: names, help,
//! defaults, rules), the structs each subcommand receives already parsed,
//! and the parsing of values. The engine that parses, prints help
//! and writes completions from the declarations is `flags/`; the
//! subcommands' code lives beside this module.
//!
//! clap (derive) did this until it pushed the static aarch64 binary past
//! its 1.5 MiB budget: with `clap_complete` it cost 212,064 bytes (207 KiB)
//! of the static aarch64-musl release binary, against about 33 KiB for
//! `lexopt`, `flags/` and the declarations together (cargo bloat).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::flags::{self, Choice, Complete, Flag, Matches, Positional, Rule, Sub, UsageError};
use crate::instance::Instance;
use crate::kasa::TransportKind;
use crate::sim::{Fault, Model};

/// The subcommands.
#[derive(Debug)]
pub enum Command {
    /// Run the service (or, with --simulate, a demo on loopback).
    Run(RunArgs),
    /// Check a config file and print the effective config (every default filled in).
    CheckConfig(CheckConfigArgs),
    /// Show the running service's state file.
    Status(StatusArgs),
    /// Find plugs on the LAN (UDP broadcast, legacy 9999 and the 20002 probe).
    Discover(DiscoverArgs),
    /// Read or switch one plug (or strip outlet), verified and retried as the service does.
    Plug(PlugArgs),
    /// Find or read the DS18B20 sensor.
    Sensor(SensorArgs),
    /// Serve a simulated plug on loopback (for tests and trying things out).
    SimulatePlug(SimulatePlugArgs),
    /// Draw readings.jsonl as an SVG: temperature, limits, plug spans, stale and alarm periods.
    Plot(PlotArgs),
    /// Plug health and chamber figures from readings.jsonl and plug-events.jsonl.
    Report(ReportArgs),
    /// Run the real controller in virtual time against plant models; score it.
    BenchControl(BenchControlArgs),
    /// Run the config's alerts command once with a test event.
    AlertTest(AlertTestArgs),
    /// Show or restart the config's temperature profile.
    Profile(ProfileCommand),
    /// Change the running service: mode, limits, overrides, profile.
    Set(SetArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

impl Command {
    /// The subcommand as typed (`simulate-plug`, `profile show`), for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::CheckConfig(_) => "check-config",
            Command::Status(_) => "status",
            Command::Discover(_) => "discover",
            Command::Plug(_) => "plug",
            Command::Sensor(_) => "sensor",
            Command::SimulatePlug(_) => "simulate-plug",
            Command::Plot(_) => "plot",
            Command::Report(_) => "report",
            Command::BenchControl(_) => "bench-control",
            Command::AlertTest(_) => "alert-test",
            Command::Profile(ProfileCommand::Show(_)) => "profile show",
            Command::Profile(ProfileCommand::Restart(_)) => "profile restart",
            Command::Set(_) => "set",
            Command::Completions(_) => "completions",
        }
    }
}

/// `plot`.
#[derive(Debug)]
pub struct PlotArgs {
    /// The service's log_dir (holding readings.jsonl).
    pub log_dir: PathBuf,
    /// The instance whose log_dir to use instead.
    pub instance: Option<Instance>,
    /// A readings.jsonl file to draw instead.
    pub readings: Option<PathBuf>,
    /// From when: 90m, 24h, 7d, 2w, a date (2026-11-20) or an RFC 3339 time.
    pub since: String,
    /// The SVG to write.
    pub out: PathBuf,
}

/// `report`.
#[derive(Debug)]
pub struct ReportArgs {
    /// The service's log_dir (holding readings.jsonl and plug-events.jsonl).
    pub log_dir: PathBuf,
    /// The instance whose log_dir to use instead.
    pub instance: Option<Instance>,
    /// From when: 90m, 24h, 7d, 2w, a date (2026-11-20) or an RFC 3339 time.
    pub since: String,
    /// Print JSON.
    pub json: bool,
}

/// `bench-control`.
#[derive(Debug)]
pub struct BenchControlArgs {
    /// Plant files (none: the built-in plants).
    pub plants: Vec<PathBuf>,
    /// The algorithms to run (none: hysteresis, cascade and off).
    pub algorithms: Vec<crate::bench::BenchAlgorithm>,
    /// Days to run, instead of each plant's own.
    pub days: Option<f64>,
    /// Print JSON.
    pub json: bool,
    /// Write one CSV trace per run into this directory.
    pub trace: Option<PathBuf>,
}

/// `set`.
#[derive(Debug)]
pub struct SetArgs {
    /// A new mode (`off`, `heat`, `cool`, `heat_cool`).
    pub mode: Option<String>,
    /// A new low limit (the config's units).
    pub low: Option<f64>,
    /// A new high limit (the config's units).
    pub high: Option<f64>,
    /// Back to the config's values.
    pub clear: bool,
    /// Start the profile over.
    pub profile_restart: bool,
    /// Skip to the profile's next step.
    pub profile_skip: bool,
    /// The control socket.
    pub control_socket: Option<PathBuf>,
    /// The config naming the control socket.
    pub config: Option<PathBuf>,
    /// The instance whose control socket to use.
    pub instance: Option<Instance>,
}

/// `alert-test`.
#[derive(Debug)]
pub struct AlertTestArgs {
    /// The config file with the `alerts` section.
    pub config: PathBuf,
}

/// `profile show|restart`.
#[derive(Debug)]
pub enum ProfileCommand {
    /// Print the plan: each step with its start and end in local time, and the limits now.
    Show(ProfileArgs),
    /// Start the profile over from now (written to profile_state_file; a running service follows).
    Restart(ProfileArgs),
}

/// The config of `profile show|restart`.
#[derive(Debug)]
pub struct ProfileArgs {
    /// The config file with the `profile` section.
    pub config: PathBuf,
}

/// `run`.
#[derive(Debug)]
pub struct RunArgs {
    /// The config file (JSON).
    pub config: Option<PathBuf>,
    /// Run the demo: a simulated chamber and two simulated plugs on loopback.
    pub simulate: bool,
    /// Demo only: model seconds per real second (above 0, at most 10000; default 10).
    pub speed: Option<f64>,
    /// Demo only: run a compressed temperature profile (a hold, a ramp, a step).
    pub profile: bool,
    /// Run as this instance: its config and path defaults.
    pub instance: Option<Instance>,
}

/// `check-config`.
#[derive(Debug)]
pub struct CheckConfigArgs {
    /// The config file (JSON); with `instance` alone, the instance's.
    pub file: Option<PathBuf>,
    /// Check it as this instance's (its path defaults).
    pub instance: Option<Instance>,
}

/// `status`.
#[derive(Debug)]
pub struct StatusArgs {
    /// The state file (the config's `state_file`); with neither it nor
    /// `instance`, every install on the machine is listed.
    pub state_file: Option<PathBuf>,
    /// The one instance to show.
    pub instance: Option<Instance>,
    /// Print the state file's JSON instead of the summary.
    pub json: bool,
}

/// `discover`.
#[derive(Debug)]
pub struct DiscoverArgs {
    /// The one address to ask (host and optional port).
    pub target: Option<String>,
    /// Seconds to listen for answers (above 0, at most 600).
    pub timeout: f64,
    /// Print JSON.
    pub json: bool,
}

/// What `plug` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug)]
pub struct PlugArgs {
    /// The plug's host and optional port.
    pub host: String,
    /// What to do.
    pub action: PlugAction,
    /// A power strip's outlet by its child id (or its two-digit suffix).
    pub child: Option<String>,
    /// A power strip's outlet by index, counted from 0 (the first outlet is 0).
    pub outlet: Option<usize>,
    /// The protocol: auto (learn it), legacy (TCP 9999), klap, aes or tpap (HTTP 80).
    pub protocol: TransportKind,
    /// TP-Link account for KLAP/AES plugs (else $KASA_USERNAME, else the devices' defaults).
    pub username: Option<String>,
    /// A file holding the account's password (else $KASA_PASSWORD).
    pub password_file: Option<PathBuf>,
    /// Print JSON.
    pub json: bool,
    /// Scale every plug timing (tests run the real schedule scaled down).
    pub timing_scale: f64,
}

/// What `sensor` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorAction {
    /// List the DS18B20 sensors found.
    Scan,
    /// Read each sensor once, with the service's fault checks.
    Read,
}

/// `sensor`.
#[derive(Debug)]
pub struct SensorArgs {
    /// What to do.
    pub action: SensorAction,
    /// Take the sensor settings from this config file.
    pub config: Option<PathBuf>,
    /// The kernel w1 backend with this root (default /sys/bus/w1/devices).
    pub w1_root: Option<PathBuf>,
    /// The hal backend on this GPIO line: CHIP:LINE (gpiochip0:4, /dev/gpiochip0:4, 0:4).
    pub gpio: Option<(PathBuf, u32)>,
}

/// `simulate-plug`.
#[derive(Debug)]
pub struct SimulatePlugArgs {
    /// TCP and UDP address to serve on; port 0 picks a free one (printed on stdout).
    pub bind: SocketAddr,
    /// The simulated hardware: hs100, hs110, hs300 (legacy); hs100-klap (legacy JSON in
    /// KLAP); p100, p110, p300, kp125m, ep40m (SMART in KLAP); p110-aes, ep25 (SMART in AES);
    /// p110-tpap, kp125m-tpap (SMART in TPAP).
    pub model: Model,
    /// Serve a python-kasa recording (tests/fixtures/{iot,smart}/*.json of its sdist)
    /// instead of `model`, over the transport its discovery result names.
    pub fixture: Option<PathBuf>,
    /// Misbehave: blackhole, slow:MS, drop, garbage, err, stuck, lag:MS, flaky:N,
    /// for KLAP, AES and TPAP devices badauth, expire:N, badsig (KLAP, AES), badtag
    /// (TPAP) and sleepy:S (refuse TCP until a UDP 20002 probe or S seconds).
    pub fault: Option<Fault>,
    /// The plug's name.
    pub alias: String,
    /// Emulate newer firmware: TCP 9999 refused, the UDP 20002 probe answered.
    pub klap_only: bool,
    /// The TP-Link account a KLAP, AES or TPAP device is bound to (else it takes the
    /// devices' published defaults, like a plug never bound to the cloud).
    pub username: Option<String>,
    /// The account's password (a test device: given on the command line).
    pub password: Option<String>,
    /// The device refuses countdown rules (to try a plug without a dead-man).
    pub no_countdown: bool,
    /// TPAP models: `false` announces TPAP with `"tpap_preferred": false`
    /// and speaks KLAP (as some KP125M units do).
    pub tpap_preferred: bool,
    /// Append every relay change to FILE as a JSON line
    /// (`{"t_ms": UNIX_MS, "outlet": N|null, "on": BOOL}`), and an off for
    /// each outlet still on when it stops (its power goes with it).
    pub transitions: Option<PathBuf>,
}

/// Shells `completions` can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// `completions`.
#[derive(Debug)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

// ------------------------------------------------------------ declarations

const ROOT_AFTER: &str = "\
Exit status: 0 done, 1 failed, 2 usage error.

More: `kasa-thermostat SUBCOMMAND --help` (or `kasa-thermostat help SUBCOMMAND`)
shows a subcommand's flags and examples; README.md has the set-up, the
configuration keys and the deployment (docs/ the alerts).";

/// The command tree: every subcommand, flag and rule.
pub(crate) static ROOT: Sub = Sub {
    name: flags::PROGRAM,
    summary: "Hold a temperature with a DS18B20 sensor and TP-Link Kasa smart plugs.",
    usage: &["SUBCOMMAND [OPTIONS] [ARGUMENTS]", "help [SUBCOMMAND]"],
    about: "",
    after: ROOT_AFTER,
    positionals: &[],
    flags: &[],
    rules: &[],
    subs: &[
        RUN,
        CHECK_CONFIG,
        STATUS,
        DISCOVER,
        PLUG,
        SENSOR,
        SIMULATE_PLUG,
        PLOT,
        REPORT,
        BENCH_CONTROL,
        ALERT_TEST,
        PROFILE,
        SET,
        COMPLETIONS,
        HELP,
    ],
};

/// A leaf subcommand with no description, examples, positionals, flags or
/// rules yet (the declarations below fill in theirs).
const LEAF: Sub = Sub {
    name: "",
    summary: "",
    usage: &[],
    about: "",
    after: "",
    positionals: &[],
    flags: &[],
    rules: &[],
    subs: &[],
};

const CONFIG_FILE: Flag = Flag::takes("config", "FILE", "The config file (JSON).")
    .short('c')
    .complete(Complete::File);

const JSON: Flag = Flag::switch("json", "Print JSON.");

const INSTANCE: Flag = Flag::takes(
    "instance",
    "NAME",
    "The instance kasa-thermostat@NAME: its config /etc/kasa-thermostat/NAME.json and its \
     paths (/run, /var/lib and /var/log/kasa-thermostat/NAME).",
)
.complete(Complete::Instance);

const SINCE_HELP: &str =
    "From when: a duration back (90m, 24h, 7d, 2w, 1d12h), a date (2026-11-20) or an RFC 3339 time.";

const RUN: Sub = Sub {
    name: "run",
    summary: "Run the service (or, with --simulate, a demo on loopback).",
    usage: &[
        "--config FILE",
        "--instance NAME [--config FILE]",
        "--simulate [--speed N] [--profile]",
    ],
    after: "\
Examples:
  kasa-thermostat run --config /etc/kasa-thermostat/config.json
  kasa-thermostat run --instance fermenter    (kasa-thermostat@fermenter)
  kasa-thermostat run --simulate --speed 20

The service stops on SIGTERM or SIGINT: every plug goes to its shutdown_state
within 15 s, and the exit status is 0 only if every plug was read back in it.",
    flags: &[
        CONFIG_FILE,
        INSTANCE,
        Flag::switch(
            "simulate",
            "Run the demo: a simulated chamber and two simulated plugs on loopback.",
        ),
        Flag::takes(
            "speed",
            "N",
            "Demo only: model seconds per real second (above 0, at most 10000; default 10).",
        ),
        Flag::switch(
            "profile",
            "Demo only: run a compressed temperature profile (a hold, a ramp, a step).",
        ),
    ],
    rules: &[
        Rule::Requires("speed", "simulate"),
        Rule::Requires("profile", "simulate"),
        Rule::AnyOf(&["config", "instance", "simulate"]),
        Rule::Exclusive(&["config", "simulate"]),
        Rule::Exclusive(&["instance", "simulate"]),
    ],
    ..LEAF
};

const CHECK_CONFIG: Sub = Sub {
    name: "check-config",
    summary: "Check a config file and print the effective config (every default filled in).",
    usage: &["FILE", "[FILE] --instance NAME"],
    about: "A config that is wrong exits 1 with one line naming the file, the key, the \
            value and what is allowed. With --instance, the paths default under NAME.",
    after: "\
Examples:
  kasa-thermostat check-config /etc/kasa-thermostat/config.json
  kasa-thermostat check-config --instance fermenter",
    positionals: &[Positional::new("FILE", "The config file (JSON).", Complete::File).optional()],
    flags: &[INSTANCE],
    ..LEAF
};

const STATUS: Sub = Sub {
    name: "status",
    summary: "Show the running service's state file, or one line per install.",
    usage: &["[NAME] [--json]", "--state-file F [--json]"],
    about: "Without NAME or --state-file: the single install's full status when it is \
            the only one, else one line for each install on the machine (the single one \
            and every /etc/kasa-thermostat/NAME.json).",
    after: "\
Examples:
  kasa-thermostat status
  kasa-thermostat status fermenter",
    positionals: &[Positional::new(
        "NAME",
        "The instance to show (kasa-thermostat@NAME).",
        Complete::Instance,
    )
    .optional()],
    flags: &[
        Flag::takes(
            "state-file",
            "F",
            "The state file (the config's `state_file`).",
        )
        .complete(Complete::File),
        Flag::switch(
            "json",
            "Print the state file's JSON instead of the summary.",
        ),
    ],
    ..LEAF
};

const DISCOVER: Sub = Sub {
    name: "discover",
    summary: "Find plugs on the LAN (UDP broadcast, legacy 9999 and the 20002 probe).",
    usage: &["[--target ADDR] [--timeout S] [--json]"],
    after: "\
Examples:
  kasa-thermostat discover
  kasa-thermostat discover --target 10.0.0.5 --json",
    flags: &[
        Flag::takes(
            "target",
            "ADDR",
            "Ask one address (HOST[:PORT]) instead of broadcasting.",
        )
        .complete(Complete::Host),
        Flag::takes(
            "timeout",
            "S",
            "Seconds to listen for answers (above 0, at most 600).",
        )
        .default("3"),
        JSON,
    ],
    ..LEAF
};

const PLUG_ACTIONS: &[Choice] = &[
    Choice::new("state", "Read the relay state."),
    Choice::new("on", "Switch on and verify."),
    Choice::new("off", "Switch off and verify."),
    Choice::new("sysinfo", "Print the device's own description of itself."),
];

const PROTOCOLS: &[Choice] = &[
    Choice::new("auto", ""),
    Choice::new("legacy", ""),
    Choice::new("klap", ""),
    Choice::new("aes", ""),
    Choice::new("tpap", ""),
];

const PLUG: Sub = Sub {
    name: "plug",
    summary: "Read or switch one plug (or strip outlet), verified and retried as the service does.",
    usage: &[
        "HOST[:PORT] ACTION [--child ID | --outlet N] [--protocol P] [--username U] \
              [--password-file F] [--json]",
    ],
    after: "\
Examples:
  kasa-thermostat plug 10.0.0.5 state
  kasa-thermostat plug 10.0.0.5 on
  kasa-thermostat plug strip.lan:9999 off --outlet 2      (outlets count from 0)
  kasa-thermostat plug 10.0.0.5 sysinfo --json

`on` and `off` read the state back and exit 1 when it could not be verified.",
    positionals: &[
        Positional::new(
            "HOST[:PORT]",
            "The plug: HOST, HOST:PORT, [IPv6]:PORT.",
            Complete::Host,
        ),
        Positional::new("ACTION", "What to do:", Complete::Choices(PLUG_ACTIONS)),
    ],
    flags: &[
        Flag::takes(
            "child",
            "ID",
            "A power strip's outlet by its child id (or its two-digit suffix).",
        ),
        Flag::takes(
            "outlet",
            "N",
            "A power strip's outlet by index, counted from 0 (the first outlet is 0).",
        ),
        Flag::takes(
            "protocol",
            "P",
            "The protocol: auto (learn it), legacy (TCP 9999), klap, aes or tpap (HTTP 80).",
        )
        .default("auto")
        .complete(Complete::Choices(PROTOCOLS)),
        Flag::takes(
            "username",
            "U",
            "TP-Link account for KLAP/AES plugs (else $KASA_USERNAME, else the devices' \
             defaults).",
        ),
        Flag::takes(
            "password-file",
            "F",
            "A file holding the account's password (else $KASA_PASSWORD).",
        )
        .complete(Complete::File),
        JSON,
        Flag::takes(
            "timing-scale",
            "X",
            "Scale every plug timing (tests run the real schedule scaled down).",
        )
        .default("1")
        .hidden(),
    ],
    rules: &[Rule::Exclusive(&["child", "outlet"])],
    ..LEAF
};

const SENSOR_ACTIONS: &[Choice] = &[
    Choice::new("scan", "List the DS18B20 sensors found."),
    Choice::new(
        "read",
        "Read each sensor once, with the service's fault checks.",
    ),
];

const SENSOR: Sub = Sub {
    name: "sensor",
    summary: "Find or read the DS18B20 sensor.",
    usage: &["ACTION [--config FILE | --w1-root DIR | --gpio CHIP:LINE]"],
    after: "\
Examples:
  kasa-thermostat sensor scan
  kasa-thermostat sensor read --config /etc/kasa-thermostat/config.json
  kasa-thermostat sensor read --gpio gpiochip0:4",
    positionals: &[Positional::new(
        "ACTION",
        "What to do:",
        Complete::Choices(SENSOR_ACTIONS),
    )],
    flags: &[
        Flag::takes(
            "config",
            "FILE",
            "Take the sensor settings from this config file.",
        )
        .complete(Complete::File),
        Flag::takes(
            "w1-root",
            "DIR",
            "The kernel w1 backend with this root (default /sys/bus/w1/devices).",
        )
        .complete(Complete::Dir),
        Flag::takes(
            "gpio",
            "CHIP:LINE",
            "The hal backend on this GPIO line: CHIP:LINE (gpiochip0:4, /dev/gpiochip0:4, 0:4).",
        ),
    ],
    rules: &[Rule::Exclusive(&["config", "w1-root", "gpio"])],
    ..LEAF
};

/// The simulated models, as `--model` takes them (a test checks them
/// against [`Model::ALL`]).
const MODELS: &[Choice] = &[
    Choice::new("hs100", ""),
    Choice::new("hs110", ""),
    Choice::new("hs300", ""),
    Choice::new("hs100-klap", ""),
    Choice::new("p100", ""),
    Choice::new("p110", ""),
    Choice::new("p300", ""),
    Choice::new("kp125m", ""),
    Choice::new("ep40m", ""),
    Choice::new("p110-aes", ""),
    Choice::new("ep25", ""),
    Choice::new("p110-tpap", ""),
    Choice::new("kp125m-tpap", ""),
];

const BOOLS: &[Choice] = &[Choice::new("true", ""), Choice::new("false", "")];

/// The faults completions offer: those without an argument (`slow:MS` and
/// the like need a number typed).
const FAULTS: &[Choice] = &[
    Choice::new("blackhole", ""),
    Choice::new("drop", ""),
    Choice::new("garbage", ""),
    Choice::new("err", ""),
    Choice::new("stuck", ""),
    Choice::new("badauth", ""),
    Choice::new("expire", ""),
    Choice::new("badsig", ""),
    Choice::new("badtag", ""),
];

const SIMULATE_PLUG: Sub = Sub {
    name: "simulate-plug",
    summary: "Serve a simulated plug on loopback (for tests and trying things out).",
    usage: &["[--bind ADDR:PORT] [--model MODEL] [--fault KIND] [OPTIONS]"],
    about: "Prints the address it serves on as the first line of stdout, then serves \
            until SIGINT or SIGTERM.",
    after: "\
Examples:
  kasa-thermostat simulate-plug --model hs300
  kasa-thermostat simulate-plug --bind 127.0.0.1:9999 --fault slow:500
  kasa-thermostat simulate-plug --model p110 --username u --password p
  kasa-thermostat simulate-plug --fixture 'P110(EU)_1.0_1.2.3.json'",
    flags: &[
        Flag::takes(
            "bind",
            "ADDR:PORT",
            "TCP and UDP address to serve on; port 0 picks a free one (printed on stdout).",
        )
        .default("127.0.0.1:0"),
        Flag::takes(
            "model",
            "MODEL",
            "The simulated hardware: hs100, hs110, hs300 (legacy); hs100-klap (legacy JSON \
             in KLAP); p100, p110, p300, kp125m, ep40m (SMART in KLAP); p110-aes, ep25 \
             (SMART in AES); p110-tpap, kp125m-tpap (SMART in TPAP).",
        )
        .default("hs100")
        .complete(Complete::Choices(MODELS)),
        Flag::takes(
            "fixture",
            "FILE",
            "Serve a python-kasa recording (tests/fixtures/{iot,smart}/*.json of its sdist) \
             instead of --model, over the transport its discovery result names (legacy, \
             KLAP or AES), its relays live.",
        )
        .complete(Complete::File),
        Flag::takes(
            "fault",
            "KIND",
            "Misbehave: blackhole, slow:MS, drop, garbage, err, stuck, lag:MS, flaky:N, \
             for KLAP, AES and TPAP devices badauth, expire:N, badsig (KLAP, AES), badtag \
             (TPAP) and sleepy:S (refuse TCP until a UDP 20002 probe arrives or S seconds \
             pass).",
        )
        .complete(Complete::Choices(FAULTS)),
        Flag::takes("alias", "NAME", "The plug's name.").default("Simulated plug"),
        Flag::switch(
            "klap-only",
            "Emulate newer firmware: TCP 9999 refused, the UDP 20002 probe answered.",
        ),
        Flag::takes(
            "username",
            "U",
            "The TP-Link account a KLAP, AES or TPAP device is bound to (else it takes the \
             devices' published defaults, like a plug never bound to the cloud).",
        ),
        Flag::takes(
            "password",
            "P",
            "The account's password (a test device: given on the command line).",
        ),
        Flag::switch(
            "no-countdown",
            "The device refuses countdown rules (to try a plug without a dead-man).",
        ),
        Flag::takes(
            "tpap-preferred",
            "BOOL",
            "TPAP models: false announces TPAP with \"tpap_preferred\": false and speaks \
             KLAP (as some KP125M units do).",
        )
        .default("true")
        .complete(Complete::Choices(BOOLS)),
        Flag::takes(
            "transitions",
            "FILE",
            "Append every relay change to FILE as a JSON line ({\"t_ms\": UNIX_MS, \
             \"outlet\": N|null, \"on\": BOOL}), and an off for each outlet still on when \
             it stops (its power goes with it).",
        )
        .complete(Complete::File),
    ],
    rules: &[
        Rule::Requires("username", "password"),
        Rule::Requires("password", "username"),
        Rule::Exclusive(&["model", "fixture"]),
    ],
    ..LEAF
};

const LOG_DIR: Flag = Flag::takes(
    "log-dir",
    "DIR",
    "The service's log_dir (holding readings.jsonl and plug-events.jsonl).",
)
.default("/var/log/kasa-thermostat")
.complete(Complete::Dir);

const PLOT: Sub = Sub {
    name: "plot",
    summary: "Draw readings.jsonl as an SVG: temperature, limits, plug spans, stale and alarm \
              periods.",
    usage: &["[--log-dir DIR | --readings FILE | --instance NAME] [--since WHEN] [--out FILE.svg]"],
    after: "\
Examples:
  kasa-thermostat plot --since 24h --out /tmp/last-day.svg
  kasa-thermostat plot --readings readings.jsonl --since 2026-11-20
  rsvg-convert /tmp/last-day.svg -o /tmp/last-day.png    (a PNG, for a viewer)",
    flags: &[
        Flag::takes(
            "log-dir",
            "DIR",
            "The service's log_dir (holding readings.jsonl).",
        )
        .default("/var/log/kasa-thermostat")
        .complete(Complete::Dir),
        Flag::takes("readings", "FILE", "A readings.jsonl file to draw instead.")
            .complete(Complete::File),
        INSTANCE,
        Flag::takes("since", "WHEN", SINCE_HELP).default("24h"),
        Flag::takes("out", "FILE.svg", "The SVG to write.")
            .default("readings.svg")
            .complete(Complete::File),
    ],
    rules: &[Rule::Exclusive(&["log-dir", "readings", "instance"])],
    ..LEAF
};

const REPORT: Sub = Sub {
    name: "report",
    summary: "Plug health and chamber figures from readings.jsonl and plug-events.jsonl.",
    usage: &["[--log-dir DIR | --instance NAME] [--since WHEN] [--json]"],
    after: "\
Examples:
  kasa-thermostat report
  kasa-thermostat report --instance fermenter --since 2w --json",
    flags: &[
        LOG_DIR,
        INSTANCE,
        Flag::takes("since", "WHEN", SINCE_HELP).default("7d"),
        JSON,
    ],
    rules: &[Rule::Exclusive(&["log-dir", "instance"])],
    ..LEAF
};

const ALGORITHMS: &[Choice] = &[
    Choice::new(
        "hysteresis",
        "On at one limit, off at the other (or the midpoint).",
    ),
    Choice::new(
        "cascade",
        "A PID on the product sets the chamber setpoint, held on/off.",
    ),
    Choice::new("off", "Both plugs off: the plant left to itself."),
];

const BENCH_CONTROL: Sub = Sub {
    name: "bench-control",
    summary: "Run the real controller in virtual time against plant models; score it.",
    usage: &[
        "[--plant FILE]... [--algorithm hysteresis|cascade|off]... [--days N] [--json] \
              [--trace DIR]",
    ],
    after: "\
Without --plant the built-in plants run (an ale fermenter, a lager with a cold
crash, a reptile vivarium, a seed shelf); without --algorithm every algorithm.
Scores are the product's deviation from the target midpoint after the plant's
settle_h. The plant file format and equations are in README.md.

Examples:
  kasa-thermostat bench-control
  kasa-thermostat bench-control --plant mine.json --algorithm cascade --json
  kasa-thermostat bench-control --days 2 --trace /tmp/traces",
    flags: &[
        Flag::takes("plant", "FILE", "A plant file (JSON). Repeatable.")
            .repeatable()
            .complete(Complete::File),
        Flag::takes(
            "algorithm",
            "ALGORITHM",
            "hysteresis, cascade or off. Repeatable.",
        )
        .repeatable()
        .complete(Complete::Choices(ALGORITHMS)),
        Flag::takes(
            "days",
            "N",
            "Days to run instead of each plant's own (above 0, at most 365).",
        ),
        JSON,
        Flag::takes(
            "trace",
            "DIR",
            "Write one CSV per run into DIR (PLANT-ALGORITHM.csv).",
        )
        .complete(Complete::Dir),
    ],
    ..LEAF
};

const ALERT_TEST: Sub = Sub {
    name: "alert-test",
    summary: "Run the config's alerts command once with a test event.",
    usage: &["--config FILE"],
    flags: &[Flag::takes(
        "config",
        "FILE",
        "The config file with the `alerts` section.",
    )
    .short('c')
    .complete(Complete::File)],
    rules: &[Rule::Required("config")],
    ..LEAF
};

const PROFILE_CONFIG: Flag = Flag::takes(
    "config",
    "FILE",
    "The config file with the `profile` section.",
)
.short('c')
.complete(Complete::File);

const PROFILE: Sub = Sub {
    name: "profile",
    summary: "Show or restart the config's temperature profile.",
    usage: &["show|restart --config FILE"],
    subs: &[
        Sub {
            name: "show",
            summary: "Print the plan: each step with its start and end in local time, and \
                      the limits now.",
            usage: &["--config FILE"],
            flags: &[PROFILE_CONFIG],
            rules: &[Rule::Required("config")],
            ..LEAF
        },
        Sub {
            name: "restart",
            summary: "Start the profile over from now (written to profile_state_file; a \
                      running service follows).",
            usage: &["--config FILE"],
            flags: &[PROFILE_CONFIG],
            rules: &[Rule::Required("config")],
            ..LEAF
        },
    ],
    ..LEAF
};

const MODES: &[Choice] = &[
    Choice::new("off", "Both plugs off."),
    Choice::new("heat", "Heater only."),
    Choice::new("cool", "Cooler only."),
    Choice::new("heat_cool", "Heater and cooler, never both on."),
];

const SET: Sub = Sub {
    name: "set",
    summary: "Change the running service: mode, limits, overrides, profile.",
    usage: &[
        "[--mode M] [--low T] [--high T] [--clear] [--profile-restart|--profile-skip] \
         [--control-socket PATH | --config FILE | --instance NAME]",
    ],
    about: "The change goes to the running service over its control socket and is \
            checked like the config; it is kept in overrides_file (so it survives a \
            restart) until --clear or an edit of the same key in the config. Prints what \
            the service applied, or its refusal (exit 1); exit 1 too when no service answers.",
    after: "\
Examples:
  kasa-thermostat set --mode cool
  kasa-thermostat set --low 17.5 --high 18.5
  kasa-thermostat set --clear
  kasa-thermostat set --profile-skip -c /etc/kasa-thermostat/config.json
  kasa-thermostat set --instance fermenter --mode heat",
    flags: &[
        Flag::takes("mode", "M", "The mode: off, heat, cool or heat_cool.")
            .complete(Complete::Choices(MODES)),
        Flag::takes("low", "T", "The low limit, in the config's units."),
        Flag::takes("high", "T", "The high limit, in the config's units."),
        Flag::switch("clear", "Drop every override: back to the config's values."),
        Flag::switch("profile-restart", "Start the profile over from now."),
        Flag::switch(
            "profile-skip",
            "Skip to the start of the profile's next step.",
        ),
        Flag::takes(
            "control-socket",
            "PATH",
            "The service's control socket (default: the config's control_socket, else \
             /run/kasa-thermostat/control.sock).",
        )
        .complete(Complete::File),
        Flag::takes(
            "config",
            "FILE",
            "The config file naming the control socket.",
        )
        .short('c')
        .complete(Complete::File),
        INSTANCE,
    ],
    rules: &[
        Rule::Exclusive(&["control-socket", "config", "instance"]),
        Rule::Exclusive(&["profile-restart", "profile-skip"]),
    ],
    ..LEAF
};

const SHELLS: &[Choice] = &[
    Choice::new("bash", "GNU bash."),
    Choice::new("zsh", "Z shell."),
    Choice::new("fish", "fish."),
];

const COMPLETIONS: Sub = Sub {
    name: "completions",
    summary: "Print a shell completion script.",
    usage: &["SHELL"],
    after: "\
Examples:
  kasa-thermostat completions bash > /etc/bash_completion.d/kasa-thermostat
  kasa-thermostat completions zsh > \"${fpath[1]}/_kasa-thermostat\"
  kasa-thermostat completions fish \\
      > ~/.config/fish/completions/kasa-thermostat.fish
  source <(kasa-thermostat completions bash)      (this shell only)",
    positionals: &[Positional::new(
        "SHELL",
        "The shell:",
        Complete::Choices(SHELLS),
    )],
    ..LEAF
};

/// `help`: parsed by the engine itself (it names a command, not flags);
/// declared for the subcommand list and the completions.
const HELP: Sub = Sub {
    name: "help",
    summary: "Print this help, or a subcommand's.",
    usage: &["[SUBCOMMAND]"],
    positionals: &[Positional::new(
        "SUBCOMMAND",
        "The subcommand (and `profile show|restart`).",
        Complete::Subcommand,
    )
    .optional()],
    ..LEAF
};

// ------------------------------------------------------------ parsing

/// What a command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Print this help on stdout; exit 0.
    Help(String),
    /// Print the version on stdout; exit 0.
    Version,
    /// No subcommand: print this help on stderr; exit 2.
    NoCommand(String),
    /// Run this.
    Run(Command),
}

/// Parses a command line (without the program name).
pub fn parse(args: Vec<OsString>) -> Result<Parsed, UsageError> {
    Ok(match flags::parse(&ROOT, args)? {
        flags::Outcome::Help(text) => Parsed::Help(text),
        flags::Outcome::Version => Parsed::Version,
        flags::Outcome::NoCommand(text) => Parsed::NoCommand(text),
        flags::Outcome::Run(m) => Parsed::Run(build(&m)?),
    })
}

/// The `*Args` of the subcommand `m` is for, its values parsed.
fn build(m: &Matches) -> Result<Command, UsageError> {
    let name = m.name();
    Ok(match name.as_str() {
        "run" => Command::Run(RunArgs {
            config: m.path("config")?,
            simulate: m.on("simulate")?,
            speed: m.value("speed", parse_speed)?,
            profile: m.on("profile")?,
            instance: m.value("instance", parse_instance)?,
        }),
        "check-config" => Command::CheckConfig(CheckConfigArgs {
            file: m.positional_opt(0, |s| Ok(PathBuf::from(s)))?,
            instance: m.value("instance", parse_instance)?,
        }),
        "status" => Command::Status(StatusArgs {
            state_file: m.path("state-file")?,
            instance: m.positional_opt(0, parse_instance)?,
            json: m.on("json")?,
        }),
        "discover" => Command::Discover(DiscoverArgs {
            target: m.value("target", text)?,
            timeout: m.value_or_default("timeout", parse_discover_timeout)?,
            json: m.on("json")?,
        }),
        "plug" => Command::Plug(PlugArgs {
            host: m.positional(0, text)?,
            action: m.positional(1, |s| choose(s, PLUG_ACTIONS, &PlugAction::ALL))?,
            child: m.value("child", text)?,
            outlet: m.value("outlet", parse_outlet)?,
            protocol: m.value_or_default("protocol", parse_protocol)?,
            username: m.value("username", text)?,
            password_file: m.path("password-file")?,
            json: m.on("json")?,
            timing_scale: m.value_or_default("timing-scale", parse_scale)?,
        }),
        "sensor" => Command::Sensor(SensorArgs {
            action: m.positional(0, |s| choose(s, SENSOR_ACTIONS, &SensorAction::ALL))?,
            config: m.path("config")?,
            w1_root: m.path("w1-root")?,
            gpio: m.value("gpio", parse_gpio)?,
        }),
        "simulate-plug" => Command::SimulatePlug(SimulatePlugArgs {
            bind: m.value_or_default("bind", parse_bind)?,
            model: m.value_or_default("model", parse_model)?,
            fixture: m.path("fixture")?,
            fault: m.value("fault", parse_fault)?,
            alias: m.value_or_default("alias", text)?,
            klap_only: m.on("klap-only")?,
            username: m.value("username", text)?,
            password: m.value("password", text)?,
            no_countdown: m.on("no-countdown")?,
            tpap_preferred: m.value_or_default("tpap-preferred", parse_bool)?,
            transitions: m.path("transitions")?,
        }),
        "plot" => Command::Plot(PlotArgs {
            log_dir: m.path_or_default("log-dir")?,
            instance: m.value("instance", parse_instance)?,
            readings: m.path("readings")?,
            since: m.value_or_default("since", text)?,
            out: m.path_or_default("out")?,
        }),
        "report" => Command::Report(ReportArgs {
            log_dir: m.path_or_default("log-dir")?,
            instance: m.value("instance", parse_instance)?,
            since: m.value_or_default("since", text)?,
            json: m.on("json")?,
        }),
        "bench-control" => Command::BenchControl(BenchControlArgs {
            plants: m.values("plant", |s| Ok(PathBuf::from(s)))?,
            algorithms: m.values("algorithm", |s| {
                choose(s, ALGORITHMS, &crate::bench::BenchAlgorithm::ALL)
            })?,
            days: m.value("days", parse_days)?,
            json: m.on("json")?,
            trace: m.path("trace")?,
        }),
        "alert-test" => Command::AlertTest(AlertTestArgs {
            config: m.required_path("config")?,
        }),
        "profile show" => Command::Profile(ProfileCommand::Show(ProfileArgs {
            config: m.required_path("config")?,
        })),
        "profile restart" => Command::Profile(ProfileCommand::Restart(ProfileArgs {
            config: m.required_path("config")?,
        })),
        "set" => Command::Set(SetArgs {
            mode: m
                .value("mode", |s| {
                    choose(s, MODES, &["off", "heat", "cool", "heat_cool"])
                })?
                .map(str::to_string),
            low: m.value("low", parse_temperature)?,
            high: m.value("high", parse_temperature)?,
            clear: m.on("clear")?,
            profile_restart: m.on("profile-restart")?,
            profile_skip: m.on("profile-skip")?,
            control_socket: m.path("control-socket")?,
            config: m.path("config")?,
            instance: m.value("instance", parse_instance)?,
        }),
        "completions" => Command::Completions(CompletionsArgs {
            shell: m.positional(0, |s| choose(s, SHELLS, &Shell::ALL))?,
        }),
        _ => return Err(m.internal(format!("{name:?} is declared but not built"))),
    })
}

impl PlugAction {
    /// In the order of [`PLUG_ACTIONS`].
    const ALL: [PlugAction; 4] = [
        PlugAction::State,
        PlugAction::On,
        PlugAction::Off,
        PlugAction::Sysinfo,
    ];
}

impl SensorAction {
    /// In the order of [`SENSOR_ACTIONS`].
    const ALL: [SensorAction; 2] = [SensorAction::Scan, SensorAction::Read];
}

impl Shell {
    /// In the order of [`SHELLS`].
    const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];
}

/// The value of `values` at the place of `s` among `choices`.
fn choose<T: Copy>(s: &str, choices: &[Choice], values: &[T]) -> Result<T, String> {
    choices
        .iter()
        .position(|c| c.name == s)
        .and_then(|i| values.get(i).copied())
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|c| c.name).collect();
            format!("{s:?} is not {}", flags::or_list(&names))
        })
}

fn parse_instance(s: &str) -> Result<Instance, String> {
    Instance::new(s).map_err(|e| e.to_string())
}

fn text(s: &str) -> Result<String, String> {
    Ok(s.to_string())
}

fn parse_outlet(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an outlet index (0, 1, 2, ...)"))
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not ADDR:PORT (e.g. 127.0.0.1:0, [::1]:9999)"))
}

fn parse_days(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 365.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be above 0 and at most 365"))
    }
}

/// A temperature for `set`: a finite number (its range is the config's
/// rule, which the service applies).
fn parse_temperature(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a temperature (a number like 18.5)")),
    }
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

fn parse_protocol(s: &str) -> Result<TransportKind, String> {
    s.parse()
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse()
}

/// `CHIP:LINE` for `--gpio`: `gpiochip0:4`, `/dev/gpiochip0:4` or `0:4`.
pub(crate) fn parse_gpio(text: &str) -> Result<(PathBuf, u32), String> {
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

    fn parse_args(args: &[&str]) -> Result<Parsed, UsageError> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn command(args: &[&str]) -> Command {
        match parse_args(args) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn usage_error(args: &[&str]) -> UsageError {
        match parse_args(args) {
            Err(e) => e,
            other => panic!("{args:?} should be a usage error: {other:?}"),
        }
    }

    fn help(args: &[&str]) -> String {
        match parse_args(args) {
            Ok(Parsed::Help(text)) => text,
            other => panic!("{args:?} should print help: {other:?}"),
        }
    }

    /// The least each subcommand needs, so that every declaration is built
    /// (and every default parsed by its parser) at least once.
    const MINIMAL: &[&[&str]] = &[
        &["run", "--simulate"],
        &["check-config", "c.json"],
        &["status"],
        &["discover"],
        &["plug", "h", "on"],
        &["sensor", "scan"],
        &["simulate-plug"],
        &["plot"],
        &["report"],
        &["bench-control"],
        &["alert-test", "-c", "c.json"],
        &["profile", "show", "-c", "c.json"],
        &["profile", "restart", "--config", "c.json"],
        &["set", "--clear"],
        &["completions", "fish"],
    ];

    #[test]
    fn every_declared_subcommand_is_built_with_its_defaults() {
        let mut built: Vec<&str> = MINIMAL.iter().map(|a| command(a).name()).collect();
        built.sort_unstable();
        let mut declared = Vec::new();
        for sub in ROOT.subs.iter().filter(|s| s.name != "help") {
            if sub.subs.is_empty() {
                declared.push(sub.name.to_string());
            }
            for child in sub.subs {
                declared.push(format!("{} {}", sub.name, child.name));
            }
        }
        declared.sort_unstable();
        assert_eq!(built, declared);

        let Command::Set(a) = command(&["set", "--mode", "heat_cool", "--low", "17.5"]) else {
            panic!()
        };
        assert_eq!(a.mode.as_deref(), Some("heat_cool"));
        assert_eq!((a.low, a.high, a.clear), (Some(17.5), None, false));

        let Command::Status(a) = command(&["status"]) else {
            panic!()
        };
        assert_eq!(a.state_file, None);
        assert!(!a.json);
        let Command::Discover(a) = command(&["discover"]) else {
            panic!()
        };
        assert_eq!((a.target, a.timeout, a.json), (None, 3.0, false));
        let Command::Plug(a) = command(&["plug", "h", "on"]) else {
            panic!()
        };
        assert_eq!((a.protocol, a.timing_scale), (TransportKind::Auto, 1.0));
        assert_eq!((a.child, a.outlet, a.username), (None, None, None));
        let Command::SimulatePlug(a) = command(&["simulate-plug"]) else {
            panic!()
        };
        assert_eq!(a.bind, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        assert_eq!(
            (a.model, a.alias.as_str()),
            (Model::Hs100, "Simulated plug")
        );
        assert!(a.fault.is_none() && !a.klap_only && !a.no_countdown);
        let Command::Plot(a) = command(&["plot"]) else {
            panic!()
        };
        assert_eq!(a.log_dir, PathBuf::from("/var/log/kasa-thermostat"));
        assert_eq!(
            (a.since.as_str(), a.out),
            ("24h", PathBuf::from("readings.svg"))
        );
        let Command::Report(a) = command(&["report"]) else {
            panic!()
        };
        assert_eq!(a.since, "7d");
        let Command::Run(a) = command(&["run", "--simulate"]) else {
            panic!()
        };
        assert_eq!((a.config, a.speed, a.profile), (None, None, false));
    }

    #[test]
    fn every_flag_reaches_its_field() {
        let Command::Plug(a) = command(&[
            "plug",
            "[::1]:9999",
            "sysinfo",
            "--outlet=2",
            "--protocol",
            "klap",
            "--username",
            "me",
            "--password-file",
            "/p",
            "--json",
            "--timing-scale",
            "0.01",
        ]) else {
            panic!()
        };
        assert_eq!(a.host, "[::1]:9999");
        assert_eq!(a.action, PlugAction::Sysinfo);
        assert_eq!((a.outlet, a.protocol), (Some(2), TransportKind::Klap));
        assert_eq!(a.username.as_deref(), Some("me"));
        assert_eq!(a.password_file, Some(PathBuf::from("/p")));
        assert!(a.json);
        assert_eq!(a.timing_scale, 0.01);
        let Command::Plug(a) = command(&["plug", "--child", "01", "h", "off"]) else {
            panic!()
        };
        assert_eq!(
            (a.child.as_deref(), a.action),
            (Some("01"), PlugAction::Off)
        );

        let Command::Run(a) = command(&["run", "-cc.json"]) else {
            panic!()
        };
        assert_eq!(
            (a.config, a.simulate),
            (Some(PathBuf::from("c.json")), false)
        );
        let Command::Run(a) = command(&["run", "--simulate", "--speed", "20", "--profile"]) else {
            panic!()
        };
        assert_eq!((a.simulate, a.speed, a.profile), (true, Some(20.0), true));

        let Command::Sensor(a) = command(&["sensor", "read", "--gpio", "0:4"]) else {
            panic!()
        };
        assert_eq!(a.action, SensorAction::Read);
        assert_eq!(a.gpio, Some((PathBuf::from("/dev/gpiochip0"), 4)));
        assert_eq!((a.config, a.w1_root), (None, None));
        let Command::Sensor(a) = command(&["sensor", "scan", "--w1-root", "/w"]) else {
            panic!()
        };
        assert_eq!(a.w1_root, Some(PathBuf::from("/w")));
        let Command::Sensor(a) = command(&["sensor", "scan", "--config", "c"]) else {
            panic!()
        };
        assert_eq!(a.config, Some(PathBuf::from("c")));

        let Command::SimulatePlug(a) = command(&[
            "simulate-plug",
            "--bind",
            "127.0.0.1:9999",
            "--model",
            "p110",
            "--fault",
            "slow:500",
            "--alias",
            "Heater",
            "--klap-only",
            "--username",
            "u",
            "--password",
            "p",
            "--no-countdown",
            "--transitions",
            "/t.jsonl",
        ]) else {
            panic!()
        };
        assert_eq!(a.bind.port(), 9999);
        assert_eq!(a.model, Model::P110);
        assert_eq!(
            a.fault,
            Some(Fault::Slow(std::time::Duration::from_millis(500)))
        );
        assert_eq!(a.alias, "Heater");
        assert!(a.klap_only && a.no_countdown);
        assert_eq!(
            (a.username.as_deref(), a.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(a.transitions, Some(PathBuf::from("/t.jsonl")));

        let Command::Discover(a) = command(&[
            "discover",
            "--target",
            "10.0.0.5",
            "--timeout",
            "0.5",
            "--json",
        ]) else {
            panic!()
        };
        assert_eq!(
            (a.target.as_deref(), a.timeout, a.json),
            (Some("10.0.0.5"), 0.5, true)
        );

        let Command::Plot(a) = command(&["plot", "--readings", "r", "--since", "2d", "--out", "o"])
        else {
            panic!()
        };
        assert_eq!(
            (a.readings, a.since.as_str()),
            (Some(PathBuf::from("r")), "2d")
        );
        assert_eq!(a.out, PathBuf::from("o"));
        let Command::Report(a) = command(&["report", "--log-dir", "/l", "--json"]) else {
            panic!()
        };
        assert_eq!((a.log_dir, a.json), (PathBuf::from("/l"), true));
        let Command::Status(a) = command(&["status", "--state-file", "s", "--json"]) else {
            panic!()
        };
        assert_eq!((a.state_file, a.json), (Some(PathBuf::from("s")), true));
        let Command::Profile(ProfileCommand::Restart(a)) =
            command(&["profile", "restart", "-c", "p.json"])
        else {
            panic!()
        };
        assert_eq!(a.config, PathBuf::from("p.json"));
        let Command::CheckConfig(a) = command(&["check-config", "--", "-odd.json"]) else {
            panic!()
        };
        assert_eq!(a.file, Some(PathBuf::from("-odd.json")));
        for (name, shell) in [
            ("bash", Shell::Bash),
            ("zsh", Shell::Zsh),
            ("fish", Shell::Fish),
        ] {
            let Command::Completions(a) = command(&["completions", name]) else {
                panic!()
            };
            assert_eq!(a.shell, shell);
        }
    }

    #[test]
    fn the_rules_between_flags_hold() {
        for (args, want) in [
            (
                &["run"][..],
                "run needs --config FILE, --instance NAME or --simulate",
            ),
            (
                &["run", "-c", "x", "--simulate"],
                "--simulate cannot be used with --config",
            ),
            (
                &["run", "-c", "x", "--speed", "2"],
                "--speed needs --simulate",
            ),
            (
                &["run", "-c", "x", "--profile"],
                "--profile needs --simulate",
            ),
            (
                &["plug", "h", "on", "--child", "1", "--outlet", "1"],
                "cannot be used with",
            ),
            (
                &["sensor", "read", "--config", "c", "--gpio", "0:4"],
                "cannot be used with",
            ),
            (
                &["sensor", "read", "--w1-root", "w", "--config", "c"],
                "cannot be used with",
            ),
            (
                &["plot", "--log-dir", "d", "--readings", "r"],
                "cannot be used with",
            ),
            (
                &["simulate-plug", "--password", "p"],
                "--password needs --username U",
            ),
            (&["alert-test"], "alert-test needs --config FILE"),
            (
                &["set", "--mode", "warm"],
                "\"warm\" is not off, heat, cool or heat_cool",
            ),
            (&["set", "--low", "cold"], "\"cold\" is not a temperature"),
            (&["set", "--low", "NaN"], "\"NaN\" is not a temperature"),
            (
                &["set", "--clear", "--control-socket", "s", "--config", "c"],
                "cannot be used with",
            ),
            (
                &["set", "--profile-restart", "--profile-skip"],
                "cannot be used with",
            ),
            (&["profile", "show"], "show needs --config FILE"),
            (&["profile"], "profile needs a subcommand: show or restart"),
        ] {
            let e = usage_error(args);
            assert!(e.message.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn usage_errors_name_the_flag_and_the_help_to_read() {
        let e = usage_error(&["discover", "--timeout", "-1"]);
        assert!(
            e.message.contains("--timeout") && e.message.contains("-1"),
            "{e}"
        );
        assert_eq!(e.hint(), "(see kasa-thermostat discover --help)");
        let e = usage_error(&["profile", "show", "--bogus"]);
        assert_eq!(e.hint(), "(see kasa-thermostat profile show --help)");
        let Command::SimulatePlug(a) = command(&["simulate-plug", "--fixture", "P110(EU).json"])
        else {
            panic!("not simulate-plug")
        };
        assert_eq!(a.fixture, Some(PathBuf::from("P110(EU).json")));
        let e = usage_error(&["simulate-plug", "--model", "p110", "--fixture", "f.json"]);
        assert!(
            e.message.contains("--fixture cannot be used with --model"),
            "{e}"
        );
        let e = usage_error(&["simulate-plug", "--model", "hs999"]);
        assert!(
            e.message.contains("--model") && e.message.contains("hs999"),
            "{e}"
        );
        let e = usage_error(&["plug", "h", "dance"]);
        assert!(
            e.message.contains("ACTION") && e.message.contains("sysinfo"),
            "{e}"
        );
        let e = usage_error(&["plug", "h"]);
        assert_eq!(e.message, "missing ACTION: state, on, off or sysinfo");
        let e = usage_error(&["check-config", "a", "b"]);
        assert_eq!(e.message, "unexpected argument \"b\"");
        let e = usage_error(&["status", "--json", "--json"]);
        assert_eq!(e.message, "--json is given twice");
        let e = usage_error(&["status", "--json=yes"]);
        assert!(e.message.contains("--json takes no value"), "{e}");
        let e = usage_error(&["status", "--state-file"]);
        assert_eq!(e.message, "--state-file needs a value (--state-file F)");
        let e = usage_error(&["--config", "x", "run"]);
        assert!(e.message.contains("after the subcommand"), "{e}");
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let e = usage_error(&["status", "--stat-file", "x"]);
        assert_eq!(
            e.message,
            "unknown flag --stat-file (did you mean --state-file?)"
        );
        let e = usage_error(&["plug", "h", "on", "--outlte", "1"]);
        assert!(e.message.ends_with("(did you mean --outlet?)"), "{e}");
        let e = usage_error(&["simulate-plug", "--klap"]);
        assert!(e.message.ends_with("(did you mean --klap-only?)"), "{e}");
        let e = usage_error(&["status", "--no-such-flag"]);
        assert_eq!(e.message, "unknown flag --no-such-flag");
        let e = usage_error(&["simulate-plugs"]);
        assert!(
            e.message.ends_with("(did you mean \"simulate-plug\"?)"),
            "{e}"
        );
        // A hidden flag is not suggested.
        let e = usage_error(&["plug", "h", "on", "--timing"]);
        assert!(!e.message.contains("timing-scale"), "{e}");
    }

    #[test]
    fn help_and_version_win_wherever_they_are() {
        for args in [
            &["plug", "--help"][..],
            &["plug", "h", "dance", "-h"],
            &["help", "plug"],
            &["plug", "--outlet", "x", "--help"],
        ] {
            let text = help(args);
            assert!(
                text.contains("Usage: kasa-thermostat plug HOST[:PORT] ACTION"),
                "{text}"
            );
        }
        assert!(help(&["help", "profile", "show"]).contains("Usage: kasa-thermostat profile show"));
        assert!(help(&["profile", "restart", "-h"]).contains("profile restart --config FILE"));
        assert!(help(&["profile", "--help"]).contains("Subcommands:\n  show"));
        assert!(help(&["help"]).contains("Subcommands:"));
        assert!(help(&["-h"]).starts_with("kasa-thermostat "));
        assert!(matches!(parse_args(&["-V"]), Ok(Parsed::Version)));
        assert!(matches!(
            parse_args(&["status", "--version"]),
            Ok(Parsed::Version)
        ));
        assert!(matches!(parse_args(&[]), Ok(Parsed::NoCommand(_))));
        assert!(usage_error(&["help", "nope"]).message.contains("\"nope\""));
    }

    #[test]
    fn instance_names_are_checked_where_they_are_given() {
        let Command::Status(a) = command(&["status", "brew"]) else {
            panic!("status")
        };
        assert_eq!(
            a.instance.map(|i| i.name().to_string()),
            Some("brew".into())
        );
        let Command::Run(a) = command(&["run", "--instance", "keg", "-c", "k.json"]) else {
            panic!("run")
        };
        assert_eq!(
            (a.instance.unwrap().name(), a.config),
            ("keg", Some(PathBuf::from("k.json")))
        );
        let Command::Report(a) = command(&["report", "--instance", "keg"]) else {
            panic!("report")
        };
        assert_eq!(a.instance.unwrap().name(), "keg");
        let Command::Plot(a) = command(&["plot", "--instance", "keg"]) else {
            panic!("plot")
        };
        assert_eq!(a.instance.unwrap().name(), "keg");
        let Command::Set(a) = command(&["set", "--instance", "keg", "--clear"]) else {
            panic!("set")
        };
        assert_eq!(a.instance.unwrap().name(), "keg");
        let Command::CheckConfig(a) = command(&["check-config", "--instance", "keg"]) else {
            panic!("check-config")
        };
        assert_eq!((a.file, a.instance.unwrap().name()), (None, "keg"));
        for bad in [
            &["run", "--instance", "../x"][..],
            &["status", "a b"],
            &["report", "--instance", "config"],
        ] {
            let e = usage_error(bad);
            assert!(
                e.message.contains("instance name"),
                "{bad:?}: {}",
                e.message
            );
        }
        assert!(usage_error(&["run", "--instance", "a", "--simulate"])
            .message
            .contains("cannot be used with"));
        assert!(
            usage_error(&["report", "--instance", "a", "--log-dir", "/l"])
                .message
                .contains("cannot be used with")
        );
    }

    #[test]
    fn help_shows_defaults_and_hides_hidden_flags() {
        let text = help(&["simulate-plug", "--help"]);
        assert!(text.contains("[default: Simulated plug]"), "{text}");
        assert!(text.contains("[default: 127.0.0.1:0]"), "{text}");
        let text = help(&["plug", "--help"]);
        assert!(text.contains("[default: auto]"), "{text}");
        assert!(!text.contains("timing-scale"), "{text}");
        let text = help(&["report", "--help"]);
        assert!(
            text.contains("[default: /var/log/kasa-thermostat]"),
            "{text}"
        );
    }

    /// Every help, wrapped to 80 columns (the examples included).
    #[test]
    fn every_help_fits_in_80_columns() {
        let mut chains: Vec<Vec<&Sub>> = vec![vec![&ROOT]];
        for sub in ROOT.subs {
            chains.push(vec![&ROOT, sub]);
            for child in sub.subs {
                chains.push(vec![&ROOT, sub, child]);
            }
        }
        for chain in chains {
            let text = flags::help::render(&chain);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{:?}: {line:?}",
                    chain[chain.len() - 1].name
                );
            }
        }
    }

    /// The declarations agree with themselves: names are unique, rules name
    /// declared flags, every flag is documented, and a flag name takes a
    /// value in every subcommand or in none (the completion scripts skip
    /// values by flag name, whatever the subcommand).
    #[test]
    fn the_declarations_are_consistent() {
        let mut takes_value = std::collections::HashMap::new();
        let mut stack: Vec<&Sub> = vec![&ROOT];
        while let Some(sub) = stack.pop() {
            stack.extend(sub.subs.iter());
            assert!(
                !sub.summary.is_empty() && !sub.usage.is_empty(),
                "{}",
                sub.name
            );
            assert!(sub.subs.is_empty() || sub.flags.is_empty() && sub.positionals.is_empty());
            let mut names = std::collections::HashSet::new();
            for f in sub.flags {
                assert!(!f.help.is_empty(), "--{}", f.long);
                assert!(names.insert(f.long.to_string()), "--{} twice", f.long);
                assert_ne!(f.long, "help");
                assert_ne!(f.long, "version");
                if let Some(c) = f.short {
                    assert!(names.insert(c.to_string()), "-{c} twice");
                    assert!(c != 'h' && c != 'V');
                }
                for name in std::iter::once(f.long.to_string()).chain(f.short.map(String::from)) {
                    let old = takes_value.insert(name.clone(), f.value.is_some());
                    assert!(old.is_none_or(|v| v == f.value.is_some()), "{name}");
                }
                assert!(f.default.is_none() || f.value.is_some(), "--{}", f.long);
            }
            for rule in sub.rules {
                let named: Vec<&str> = match *rule {
                    Rule::Exclusive(set) | Rule::AnyOf(set) => set.to_vec(),
                    Rule::Requires(a, b) => vec![a, b],
                    Rule::Required(a) => vec![a],
                };
                for long in named {
                    assert!(
                        sub.flag(long).is_some(),
                        "{}: a rule names --{long}",
                        sub.name
                    );
                }
            }
            let optional = sub.positionals.iter().position(|p| p.optional);
            if let Some(i) = optional {
                assert!(
                    sub.positionals[i..].iter().all(|p| p.optional),
                    "{}",
                    sub.name
                );
            }
        }
    }

    #[test]
    fn the_value_lists_match_the_types() {
        let mut models: Vec<&str> = Model::ALL.iter().map(|m| m.cli_name()).collect();
        let mut listed: Vec<&str> = MODELS.iter().map(|c| c.name).collect();
        models.sort_unstable();
        listed.sort_unstable();
        assert_eq!(models, listed);
        for c in PROTOCOLS {
            assert_eq!(
                parse_protocol(c.name).map(TransportKind::as_str),
                Ok(c.name)
            );
        }
        for c in FAULTS {
            assert!(parse_fault(c.name).is_ok(), "{}", c.name);
        }
        assert_eq!(PLUG_ACTIONS.len(), PlugAction::ALL.len());
        assert_eq!(SENSOR_ACTIONS.len(), SensorAction::ALL.len());
        assert_eq!(SHELLS.len(), Shell::ALL.len());
        assert_eq!(
            choose("off", PLUG_ACTIONS, &PlugAction::ALL),
            Ok(PlugAction::Off)
        );
        assert_eq!(
            choose("read", SENSOR_ACTIONS, &SensorAction::ALL),
            Ok(SensorAction::Read)
        );
        assert!(choose("OFF", PLUG_ACTIONS, &PlugAction::ALL).is_err());
    }

    #[test]
    fn outlets_and_bind_addresses() {
        assert_eq!(parse_outlet("0"), Ok(0));
        assert!(parse_outlet("-1").is_err());
        assert!(parse_outlet("one").is_err());
        assert_eq!(parse_bind("[::1]:80").map(|a| a.port()), Ok(80));
        assert!(parse_bind("localhost:80").is_err());
        assert!(parse_discover_timeout("600").is_ok());
        assert!(parse_discover_timeout("600.1").is_err());
        assert!(parse_discover_timeout("0").is_err());
    }

    /// The generated scripts name every subcommand and every visible flag,
    /// and leave hidden ones out (their loading in each shell is checked by
    /// the integration tests).
    #[test]
    fn completions_cover_the_declarations() {
        let scripts = [
            flags::complete::bash(&ROOT),
            flags::complete::zsh(&ROOT),
            flags::complete::fish(&ROOT),
        ];
        for script in &scripts {
            for sub in ROOT.subs {
                assert!(script.contains(sub.name), "{}", sub.name);
                for f in sub.flags.iter().filter(|f| !f.hidden) {
                    assert!(script.contains(f.long), "--{}", f.long);
                }
            }
            assert!(script.contains("hs100-klap") && script.contains("sysinfo"));
        }
        // A hidden flag is not offered, only skipped with its value when
        // counting positionals.
        assert!(!scripts[1].contains("timing-scale"));
        assert!(
            !scripts[0].contains("--timing-scale --"),
            "not among the offered flags"
        );
    }
}
