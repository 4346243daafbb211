//! The command-line layer as a user meets it: every subcommand answers
//! `--help` (and `help SUBCOMMAND`) with exit 0, usage errors exit 2,
//! completions are generated, and `status` / `check-config` on damaged,
//! foreign or hostile files fail fast, with exit 1 and one line naming the file.

use std::ffi::CString;
use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::util::bin;

/// Every subcommand.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "check-config",
    "status",
    "discover",
    "plug",
    "sensor",
    "simulate-plug",
    "plot",
    "report",
    "alert-test",
    "profile",
    "completions",
];

/// Runs the binary, failing the test (and killing the child) if it takes
/// longer than `limit`: a command that blocks on a FIFO must not hang the suite.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait for the binary"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child this test spawned and
            // has not reaped (the waiting thread is still blocked on it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "`kasa-thermostat {}` did not finish within {limit:?}",
                args.join(" ")
            );
        }
    }
}

fn run(args: &[&str]) -> Output {
    run_within(args, Duration::from_secs(10))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Asserts a failure of exit code 1 with one line on stderr naming `what`.
fn fails_with_one_line(o: &Output, what: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(what), "names {what}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn every_subcommand_answers_help_with_exit_0() {
    for sub in SUBCOMMANDS {
        for args in [vec![*sub, "--help"], vec![*sub, "-h"], vec!["help", *sub]] {
            let o = run(&args);
            let text = stdout(&o);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
            assert!(
                text.contains("Usage: kasa-thermostat") && text.contains(sub),
                "{args:?}: {text}"
            );
        }
    }
    // The subcommands that used to refuse --help ("invalid option").
    for sub in ["plug", "discover", "simulate-plug"] {
        let o = run(&[sub, "--help"]);
        assert!(stdout(&o).contains("Options:"), "{sub}: {}", stdout(&o));
    }
    let plug = stdout(&run(&["help", "plug"]));
    assert!(
        plug.contains("--outlet") && plug.contains("HOST[:PORT]"),
        "{plug}"
    );
}

#[test]
fn top_level_help_lists_every_subcommand_and_the_exit_codes() {
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "{sub} missing: {text}");
    }
    assert!(text.contains("Exit status"), "{text}");
    let o = run(&["help"]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("kasa-thermostat "), "{}", stdout(&o));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["run"],
        vec!["run", "--config", "x.json", "--simulate"],
        vec!["status", "--no-such-flag"],
        vec!["plug", "127.0.0.1"],
        vec!["plug", "127.0.0.1", "on", "--outlet", "x"],
        vec!["plug", "127.0.0.1", "on", "--outlet", "1", "--child", "01"],
        vec!["plug", "127.0.0.1", "on", "--timing-scale", "1e300"],
        vec!["plug", "127.0.0.1", "on", "--timing-scale", "0"],
        vec!["discover", "--timeout", "-1"],
        vec!["completions", "tcsh"],
        vec!["check-config"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?}: says why");
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// A usage error is one line naming what is wrong, then where to read
/// more: the help of the subcommand at fault.
#[test]
fn usage_errors_say_what_and_where_to_read_more() {
    for (args, first, hint) in [
        (
            &["plug", "127.0.0.1", "on", "--outlet", "x"][..],
            "--outlet",
            "plug",
        ),
        (&["status", "--stat-file", "f"], "--state-file?", "status"),
        (&["plot", "--since", "yesterday"], "--since", "plot"),
        (&["profile", "show"], "--config FILE", "profile show"),
        (&["frobnicate"], "\"frobnicate\"", ""),
    ] {
        let o = run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{args:?}: {err}");
        assert!(lines[0].starts_with("kasa-thermostat: "), "{err}");
        assert!(lines[0].contains(first), "{args:?}: {err}");
        let sub = if hint.is_empty() {
            String::new()
        } else {
            format!(" {hint}")
        };
        assert_eq!(lines[1], format!("(see kasa-thermostat{sub} --help)"));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("kasa-thermostat"), "{shell}: {script}");
        assert!(
            script.contains("simulate-plug") && script.contains("check-config"),
            "{shell}: the subcommands are completed"
        );
    }
    // Each script is in its shell's own form.
    assert!(stdout(&run(&["completions", "bash"])).contains("complete -F"));
    assert!(stdout(&run(&["completions", "zsh"])).starts_with("#compdef kasa-thermostat"));
    assert!(stdout(&run(&["completions", "fish"])).contains("complete -c kasa-thermostat"));
}

/// Fails the test unless `shell` can be run here: a completion test that
/// passed without its shell would check nothing (`.ci/shells.sh` installs
/// them).
fn require(shell: &str) {
    let ran = std::process::Command::new(shell)
        .args(["-c", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ran.as_ref().is_ok_and(|s| s.success()),
        "{shell} is needed to check its completion script and cannot be run ({ran:?}): \
         install it (`bash .ci/shells.sh`)"
    );
}

/// Runs `shell` with `args` (and a private HOME), failing the test if it
/// takes longer than 20 s; returns stdout, after asserting exit status 0.
fn shell_output(shell: &str, args: &[&str], home: &Path) -> String {
    let child = std::process::Command::new(shell)
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("ZDOTDIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {shell}: {e}"));
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out.expect("wait for the shell"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of a child this test spawned and
            // has not reaped (the waiting thread is still blocked on it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{shell} {args:?} did not finish within 20 s");
        }
    };
    assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
    stdout(&out)
}

/// What completing each command line (the cursor at its end) offers, and
/// what a shell's answers must be, word sets compared sorted (file names
/// without their directory: shells differ there). `{dir}` is a directory
/// holding `config.json`, `readings.jsonl` and `conf.d/`.
const COMPLETION_CASES: &[(&str, &str)] = &[
    ("kasa-thermostat pl", "plot plug"),
    ("kasa-thermostat plug 10.0.0.5 ", "off on state sysinfo"),
    (
        "kasa-thermostat plug --outlet 1 10.0.0.5 ",
        "off on state sysinfo",
    ),
    (
        "kasa-thermostat plug 10.0.0.5 on --protocol ",
        "aes auto klap legacy tpap",
    ),
    ("kasa-thermostat sensor ", "read scan"),
    ("kasa-thermostat completions ", "bash fish zsh"),
    ("kasa-thermostat profile ", "restart show"),
    (
        "kasa-thermostat simulate-plug --model hs1",
        "hs100 hs100-klap hs110",
    ),
    ("kasa-thermostat status --j", "--json"),
    ("kasa-thermostat plug --outlet 1 10.0.0.5 on --ch", ""),
    ("kasa-thermostat check-config {dir}/config.", "config.json"),
    ("kasa-thermostat report --log-dir {dir}/con", "conf.d"),
];

/// A shell's answer, as a sorted set of words.
fn words(text: &str) -> Vec<String> {
    let mut w: Vec<String> = text
        .split_whitespace()
        // Directories come back with a trailing slash from some shells,
        // and files with their directory from some.
        .map(|w| {
            let w = w.trim_end_matches('/');
            w.rsplit('/').next().unwrap_or(w).to_string()
        })
        .collect();
    w.sort();
    w.dedup();
    w
}

/// Checks the answers, which `answers` gives as blocks started by `== LINE`.
fn check_answers(shell: &str, answers: &str, skip: &[usize]) {
    let blocks: Vec<&str> = answers.split("== ").skip(1).collect();
    assert_eq!(blocks.len(), COMPLETION_CASES.len(), "{shell}: {answers}");
    for (i, ((line, want), block)) in COMPLETION_CASES.iter().zip(blocks).enumerate() {
        if skip.contains(&i) {
            continue;
        }
        let got = block.split_once('\n').map_or("", |(_, rest)| rest);
        assert_eq!(words(got), words(want), "{shell}: {line:?}");
    }
}

/// A scratch directory for one completion test: a private HOME, the files
/// `{dir}` stands for in [`COMPLETION_CASES`] and the scripts written.
struct CompletionBed {
    tmp: tempfile::TempDir,
    home: std::path::PathBuf,
    /// The cases' command lines with `{dir}` filled in.
    lines: Vec<String>,
}

impl CompletionBed {
    fn new() -> CompletionBed {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("files");
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        fs::write(dir.join("config.json"), "{}").unwrap();
        fs::write(dir.join("readings.jsonl"), "").unwrap();
        let home = tmp.path().join("home");
        fs::create_dir(&home).unwrap();
        let dir = dir.to_str().unwrap();
        let lines = COMPLETION_CASES
            .iter()
            .map(|(line, _)| line.replace("{dir}", dir))
            .collect();
        CompletionBed { tmp, home, lines }
    }

    /// Writes `shell`'s completion script and returns its path.
    fn script(&self, shell: &str) -> std::path::PathBuf {
        let path = self.tmp.path().join(format!("completion.{shell}"));
        fs::write(&path, stdout(&run(&["completions", shell]))).unwrap();
        path
    }
}

#[test]
fn bash_completion_script_completes() {
    require("bash");
    let bed = CompletionBed::new();
    // Each line is split into words as readline does (a trailing space
    // makes an empty word), then the function is called.
    let bash_script = bed.script("bash");
    let mut driver = format!(
        "source '{}'\ncomplete -p kasa-thermostat\n",
        bash_script.display()
    );
    for line in &bed.lines {
        driver.push_str(&format!(
            "echo '== {line}'\nCOMP_WORDS=({line}{})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             COMPREPLY=()\n_kasa_thermostat\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            if line.ends_with(' ') { " ''" } else { "" }
        ));
    }
    let out = shell_output("bash", &["--norc", "--noprofile", "-c", &driver], &bed.home);
    assert!(
        out.starts_with("complete -F _kasa_thermostat kasa-thermostat\n"),
        "{out}"
    );
    // Case 9 is zsh's alone: only zsh's `_arguments` leaves out a flag
    // that cannot go with one given (--child after --outlet); bash and fish
    // still offer it, and the parser refuses it.
    check_answers("bash", &out, &[9]);
}

#[test]
fn zsh_completion_script_completes() {
    require("zsh");
    let bed = CompletionBed::new();
    // Load the script after compinit, then complete each line in a
    // pseudo-terminal (zpty), printing what `compadd` would add.
    let zsh_script = bed.script("zsh");
    let init = bed.tmp.path().join("init.zsh");
    fs::write(
        &init,
        format!(
            r#"PROMPT=''
RPROMPT=''
autoload -U compinit
compinit -u -d '{dump}'
source '{script}'
compadd () {{
    if [[ ${{@[1,(i)(-|--)]}} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return $?
    fi
    local -a hits
    builtin compadd -A hits "$@"
    (( $#hits )) || return 1
    print -l -- "<hit>"${{^hits}}
}}
"#,
            dump = bed.tmp.path().join("zcompdump").display(),
            script = zsh_script.display()
        ),
    )
    .unwrap();
    let loaded = shell_output(
        "zsh",
        &[
            "-f",
            "-c",
            &format!(
                "source '{}'; print -r -- $_comps[kasa-thermostat]",
                init.display()
            ),
        ],
        &bed.home,
    );
    assert_eq!(loaded.trim(), "_kasa-thermostat");
    // The markers are printed by arithmetic, so that the echo of the
    // typed command does not match them; each read waits for the next
    // prompt, so that zle is reading when the next line is typed (the
    // test's 20 s limit bounds the blocking reads). Without the zpty
    // module nothing could be completed: that fails the test.
    let driver = r#"
zmodload zsh/zpty || { print 'no zpty'; exit 0 }
zpty z zsh -f -i
zpty -w z "source '$1'; PROMPT='zsh-prompt> '; print ready-\$((6*7))"
shift
local out
zpty -r z out '*ready-42*zsh-prompt> *'
for query in "$@"; do
    print -r -- "== $query"
    zpty -w -n z "$query"$'\t'
    zpty -w z $'\C-u'"print done-\$((6*7))"
    zpty -r z out '*done-42*zsh-prompt> *'
    for line in "${(@f)out}"; do
        [[ $line == *'<hit>'* ]] && print -r -- ${${line##*<hit>}%%$'\r'*}
    done
done
zpty -d z
"#;
    let init = init.to_str().unwrap();
    let mut args = vec!["-f", "-c", driver, "zsh", init];
    args.extend(bed.lines.iter().map(String::as_str));
    let out = shell_output("zsh", &args, &bed.home);
    assert!(
        !out.starts_with("no zpty"),
        "zsh has no zpty module: its completion script cannot be driven"
    );
    assert!(!out.contains("timed out"), "{out}");
    check_answers("zsh", &out, &[]);
}

#[test]
fn fish_completion_script_completes() {
    require("fish");
    let bed = CompletionBed::new();
    // Source the script and ask `complete -C` for each line.
    let fish_script = bed.script("fish");
    let driver = format!(
        "source '{}'\nfor q in $argv\n    echo \"== $q\"\n    \
         complete -C $q | string replace -r '\\t.*' ''\nend",
        fish_script.display()
    );
    let mut args = vec!["-c", driver.as_str(), "--"];
    args.extend(bed.lines.iter().map(String::as_str));
    // fish passes the words after `-c CMD` as $argv.
    let out = shell_output("fish", &args, &bed.home);
    check_answers("fish", &out, &[9]);
}

/// A state file as the service writes it.
fn good_state() -> serde_json::Value {
    serde_json::json!({
        "updated": "2024-05-01T12:00:00.000Z",
        "updated_unix": 1714564800.0,
        "pid": 4242,
        "units": "C",
        "mode": "heat",
        "low_limit": 18.0,
        "high_limit": 20.0,
        "temperature": 19.25,
        "reading_age_s": 1.5,
        "sensor_stale": false,
        "sensor_fault": null,
        "alarm": null,
        "reason": "19.25 °C between limits: heater holds off",
        "shutting_down": false,
        "plugs": {
            "heater": {
                "host": "127.0.0.1:9999",
                "state": "unknown",
                "verified": null,
                "desired": false,
                "switching": null,
                "state_for_s": null,
                "deadman": "armed",
                "deadman_remaining_s": 100.0,
                "last_error": "127.0.0.1:9999: switch on FAILED"
            }
        }
    })
}

#[test]
fn status_shows_a_good_state_file_and_says_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, good_state().to_string()).unwrap();
    let p = path.to_str().unwrap();
    let o = run(&["status", "--state-file", p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("19.25 °C") && text.contains("127.0.0.1:9999"),
        "{text}"
    );
    assert!(
        text.contains("UNKNOWN (counted as on)"),
        "an unknown plug is not shown as off: {text}"
    );
    let o = run(&["status", "--state-file", p, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["plugs"]["heater"]["state"], "unknown");
}

/// `status | grep -q`, `report | head`: a reader that stops early is not a
/// failure of the command (exit 0, no panic on stderr). The pipe is closed
/// before the child writes, so its first write meets EPIPE every time.
#[test]
fn a_closed_stdout_ends_status_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fs::write(&path, good_state().to_string()).unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["status", "--state-file", p],
        vec!["status", "--state-file", p, "--json"],
    ] {
        let mut child = bin()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the binary");
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn status_on_a_damaged_or_foreign_state_file_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let with = |key: &str, value: serde_json::Value| {
        let mut v = good_state();
        v[key] = value;
        v.to_string()
    };
    let mut heater_state = good_state();
    heater_state["plugs"]["heater"]["state"] = "maybe".into();
    let mut cases = vec![
        file("negative-age.json", &with("reading_age_s", (-1).into())),
        file("not-json.json", "this is not JSON"),
        file("empty.json", ""),
        file("truncated.json", &good_state().to_string()[..40]),
        file("foreign.json", r#"{"name": "some other program"}"#),
        file("array.json", "[1, 2, 3]"),
        file("bad-plug-state.json", &heater_state.to_string()),
        file("bad-mode.json", &with("mode", "warm".into())),
        file("binary.json", "\u{0}\u{1}\u{2}"),
        dir.path().join("missing.json"),
    ];
    let sub = dir.path().join("a-directory");
    fs::create_dir(&sub).unwrap();
    cases.push(sub);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    cases.push(fifo);
    cases.push("/dev/zero".into());
    for path in cases {
        let p = path.to_str().unwrap();
        for json in [false, true] {
            let mut args = vec!["status", "--state-file", p];
            if json {
                args.push("--json");
            }
            let o = run_within(&args, Duration::from_secs(5));
            fails_with_one_line(&o, p);
            assert!(stdout(&o).is_empty(), "{p}: {}", stdout(&o));
        }
    }
}

#[test]
fn check_config_refuses_hostile_files_fast_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    mkfifo(&fifo);
    let sub = dir.path().join("config.d");
    fs::create_dir(&sub).unwrap();
    let big = dir.path().join("big.json");
    fs::write(&big, " ".repeat(1024 * 1024 + 1)).unwrap();
    for path in [
        fifo.to_str().unwrap(),
        "/dev/zero",
        sub.to_str().unwrap(),
        big.to_str().unwrap(),
        "/nonexistent/config.json",
    ] {
        let o = run_within(&["check-config", path], Duration::from_secs(5));
        fails_with_one_line(&o, path);
        let o = run_within(&["run", "--config", path], Duration::from_secs(5));
        fails_with_one_line(&o, path);
    }
}

#[test]
fn check_config_refuses_what_is_not_exactly_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let ok = r#"{"mode": "off", "state_file": "/nonexistent-kasa-test/state.json"}"#;
    let path = dir.path().join("c.json");
    for (text, what) in [
        (format!("{ok} xyz"), "text after"),
        (format!("{ok}\n{ok}"), "text after"),
        (format!("[{ok}]"), "one JSON object"),
        ("".to_string(), "empty"),
        (ok.replace("\"off\"", "\"of\""), "mode"),
        (ok.replace("{", "{\"cycle_s\": 1e999, "), "cycle_s"),
    ] {
        fs::write(&path, &text).unwrap();
        let o = run(&["check-config", path.to_str().unwrap()]);
        fails_with_one_line(&o, path.to_str().unwrap());
        assert!(stderr(&o).contains(what), "{text:?}: {}", stderr(&o));
    }
    // A UTF-8 byte-order mark is accepted as whitespace.
    fs::write(&path, format!("\u{feff}{ok}")).unwrap();
    let o = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Each duration has bounds, and `check-config` names the key, the value and
/// the allowed range (values that used to pass and then panic at start).
#[test]
fn check_config_applies_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    let base = serde_json::json!({
        "mode": "heat",
        "heater": {"host": "127.0.0.1", "port": 9999},
        "state_file": dir.path().join("state.json"),
        "log_dir": dir.path().join("log"),
    });
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("cycle_s", 0.000001.into(), "0.5 to 3600"),
        ("cycle_s", 0.2.into(), "0.5 to 3600"),
        ("cycle_s", 1e20.into(), "0.5 to 3600"),
        ("reconcile_s", 1e20.into(), "reconcile_s"),
        ("rate_limit_s", 1e20.into(), "rate_limit_s"),
        ("switchover_delay_s", (-1.0).into(), "switchover_delay_s"),
        ("sensor", serde_json::json!({"interval_s": 0.5}), "0.75"),
        (
            "sensor",
            serde_json::json!({"interval_s": 1e20}),
            "sensor.interval_s",
        ),
        (
            "sensor",
            serde_json::json!({"resolution_bits": 9, "interval_s": 0.05}),
            "0.09",
        ),
        (
            "sensor",
            serde_json::json!({"interval_s": 5, "stale_after_s": 9}),
            "sensor.stale_after_s",
        ),
        (
            "plug_timing",
            serde_json::json!({"before_s": 0.001}),
            "plug_timing.before_s",
        ),
        (
            "heater",
            serde_json::json!({"host": "127.0.0.1", "deadman_s": 1e20}),
            "heater.deadman_s",
        ),
    ];
    for (key, value, want) in cases {
        let mut v = base.clone();
        v[*key] = value.clone();
        fs::write(&path, v.to_string()).unwrap();
        let o = run(&["check-config", path.to_str().unwrap()]);
        fails_with_one_line(&o, path.to_str().unwrap());
        assert!(stderr(&o).contains(want), "{key}={value}: {}", stderr(&o));
    }
    // The fast test timings are inside the bounds.
    let mut v = base.clone();
    v["cycle_s"] = 0.5.into();
    v["sensor"] =
        serde_json::json!({"resolution_bits": 9, "interval_s": 0.1, "stale_after_s": 0.2});
    v["plug_timing"] = serde_json::json!({"connect_s": 0.01, "before_s": 0.01, "after_s": 0.01,
                                          "spacing_s": 0, "retry_sleeps_s": [0]});
    fs::write(&path, v.to_string()).unwrap();
    let o = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `--since` takes the one duration grammar (issue 16): `1d12h` reaches back
/// 36 hours, so of lines 40 h, 30 h and 1 h old only the last two are used.
#[test]
fn since_takes_combined_durations_like_1d12h() {
    use kasa_thermostat::clock::{format_rfc3339, parse_rfc3339, Precision};
    use std::time::SystemTime;
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let line = |hours_ago: u64, temp: f64| {
        let t = now - Duration::from_secs(hours_ago * 3600);
        format!(
            r#"{{"time":"{}","temperature":{temp},"units":"C","mode":"heat","low_limit":18.0,"high_limit":20.0,"reason":"r","alarm":null,"sensor_stale":false}}"#,
            format_rfc3339(t, Precision::Millis)
        )
    };
    let text = [line(40, 10.0), line(30, 19.0), line(1, 19.5)].join("\n") + "\n";
    fs::write(dir.path().join("readings.jsonl"), text).unwrap();
    fs::write(dir.path().join("plug-events.jsonl"), "").unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["report", "--log-dir", d, "--since", "1d12h", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let since = parse_rfc3339(v["since"].as_str().unwrap()).unwrap();
    let back = now.duration_since(since).unwrap().as_secs_f64();
    assert!(
        (back - 36.0 * 3600.0).abs() < 120.0,
        "since is {back} s back"
    );
    assert_eq!(v["readings"]["used"], 2, "{v}");
    // A bad combination is a usage error naming the flag.
    let o = run(&["report", "--log-dir", d, "--since", "12h1d"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--since 12h1d"), "{}", stderr(&o));
}
