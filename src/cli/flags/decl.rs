//! The declarations a command line is checked against: a [`Sub`] for each
//! (sub)command with its [`Flag`]s, [`Positional`]s and [`Rule`]s, and the
//! program's name and version. The parser (`flags/mod.rs`), the help
//! (`help.rs`) and the completions (`complete.rs`) all read these, so they
//! live in a file of their own that uses none of the three.

/// The program's name, as typed and as shown in help and errors.
pub(crate) const PROGRAM: &str = "kasa-thermostat";

/// The version, as `--version` prints it.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One value of a closed set (a positional such as `plug`'s ACTION, or a
/// flag's value), with the help shown beside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Choice {
    /// As typed.
    pub name: &'static str,
    /// One line; empty when the name says it all.
    pub help: &'static str,
}

impl Choice {
    /// A choice with its help.
    pub(crate) const fn new(name: &'static str, help: &'static str) -> Choice {
        Choice { name, help }
    }
}

/// What a value completes to in a shell.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Complete {
    /// Free text: nothing to offer.
    Nothing,
    /// A file name.
    File,
    /// A directory name.
    Dir,
    /// A host name.
    Host,
    /// An instance name (each `/etc/kasa-thermostat/NAME.json` but `config`).
    Instance,
    /// One of these.
    Choices(&'static [Choice]),
    /// The name of a subcommand (`help SUBCOMMAND`).
    Subcommand,
}

/// One flag: `--long` (and maybe `-s`), a switch or taking one value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    /// The name after `--`.
    pub long: &'static str,
    /// The one-letter name after `-`, if any.
    pub short: Option<char>,
    /// The value's name in help (`FILE`); `None` for a switch.
    pub value: Option<&'static str>,
    /// The help text (wrapped when shown).
    pub help: &'static str,
    /// The value when the flag is not given, shown as `[default: ...]` and
    /// parsed by the same parser as a given value.
    pub default: Option<&'static str>,
    /// Parsed, but not shown in help nor completed (test-only knobs).
    pub hidden: bool,
    /// How the value completes.
    pub complete: Complete,
    /// May be given more than once (`--plant A --plant B`).
    pub repeat: bool,
}

impl Flag {
    /// A switch: `--long`, no value.
    pub(crate) const fn switch(long: &'static str, help: &'static str) -> Flag {
        Flag {
            long,
            short: None,
            value: None,
            help,
            default: None,
            hidden: false,
            complete: Complete::Nothing,
            repeat: false,
        }
    }

    /// May be given more than once; read with
    /// [`Matches::values`](super::Matches::values).
    pub(crate) const fn repeatable(self) -> Flag {
        Flag {
            repeat: true,
            ..self
        }
    }

    /// A flag taking one value: `--long VALUE` or `--long=VALUE`.
    pub(crate) const fn takes(long: &'static str, value: &'static str, help: &'static str) -> Flag {
        Flag {
            value: Some(value),
            ..Flag::switch(long, help)
        }
    }

    /// With a one-letter name too.
    pub(crate) const fn short(self, short: char) -> Flag {
        Flag {
            short: Some(short),
            ..self
        }
    }

    /// With a default value.
    pub(crate) const fn default(self, default: &'static str) -> Flag {
        Flag {
            default: Some(default),
            ..self
        }
    }

    /// Not shown in help nor completions.
    pub(crate) const fn hidden(self) -> Flag {
        Flag {
            hidden: true,
            ..self
        }
    }

    /// Its value completes so.
    pub(crate) const fn complete(self, complete: Complete) -> Flag {
        Flag { complete, ..self }
    }

    /// `--long VALUE` (or `--long` for a switch), as errors name it.
    pub(crate) fn display(&self) -> String {
        match self.value {
            Some(v) => format!("--{} {v}", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// One positional argument (every positional is required unless marked).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Positional {
    /// Its name in usage and help (`ACTION`).
    pub name: &'static str,
    /// The help text.
    pub help: &'static str,
    /// May be left out.
    pub optional: bool,
    /// How it completes.
    pub complete: Complete,
}

impl Positional {
    /// A required positional.
    pub(crate) const fn new(
        name: &'static str,
        help: &'static str,
        complete: Complete,
    ) -> Positional {
        Positional {
            name,
            help,
            optional: false,
            complete,
        }
    }

    /// May be left out.
    pub(crate) const fn optional(self) -> Positional {
        Positional {
            optional: true,
            ..self
        }
    }
}

/// A rule between flags (by their long names), checked after parsing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rule {
    /// At most one of these.
    Exclusive(&'static [&'static str]),
    /// At least one of these (pair it with `Exclusive` for exactly one).
    AnyOf(&'static [&'static str]),
    /// The first only together with the second.
    Requires(&'static str, &'static str),
    /// This one must be given.
    Required(&'static str),
}

/// A (sub)command: everything the parser, the help and the completions know.
#[derive(Debug)]
pub(crate) struct Sub {
    /// As typed (`simulate-plug`); the root's is the program's name.
    pub name: &'static str,
    /// One line: what it does (in the subcommand list and atop its help).
    pub summary: &'static str,
    /// The usage lines, each without the command path (`--config FILE`).
    pub usage: &'static [&'static str],
    /// More description, wrapped; may be empty.
    pub about: &'static str,
    /// Text after the flags (examples), printed as written; may be empty.
    pub after: &'static str,
    /// Its positionals, in order.
    pub positionals: &'static [Positional],
    /// Its flags (`-h`/`--help` is implicit).
    pub flags: &'static [Flag],
    /// The rules between its flags.
    pub rules: &'static [Rule],
    /// Its subcommands (`profile show|restart`); a command has either
    /// subcommands or positionals and flags.
    pub subs: &'static [Sub],
}

impl Sub {
    /// The flag named `--long`, hidden ones included.
    pub(crate) fn flag(&self, long: &str) -> Option<&'static Flag> {
        self.flags.iter().find(|f| f.long == long)
    }

    pub(super) fn flag_index(&self, long: &str) -> Option<usize> {
        self.flags.iter().position(|f| f.long == long)
    }

    /// The subcommand named `name`.
    pub(crate) fn sub(&self, name: &str) -> Option<&'static Sub> {
        self.subs.iter().find(|s| s.name == name)
    }

    pub(super) fn show_flag(&self, long: &str) -> String {
        self.flag(long)
            .map(Flag::display)
            .unwrap_or_else(|| format!("--{long}"))
    }
}

/// The command path of a chain of subcommands from the root:
/// `kasa-thermostat profile show`.
pub(crate) fn path(chain: &[&Sub]) -> String {
    let mut words = vec![PROGRAM];
    words.extend(chain.iter().skip(1).map(|s| s.name));
    words.join(" ")
}
