//! The command-line engine, after ripgrep's `flags/`: every subcommand is
//! declared once, as a [`Sub`] (its name, summary, usage, positionals, flags
//! with their help and defaults, and the rules between flags; the types are
//! in [`decl`]), and that one declaration drives the parsing (over `lexopt`,
//! in [`parse`]), the help ([`help`]) and the shell completions
//! ([`complete`]). So a flag cannot be parsed but missing from the help, or
//! documented but not completed.
//!
//! What the flags *mean* (the declarations themselves, the `*Args` structs
//! and the value parsers) lives in `args.rs`; this module knows no flag by
//! name. It replaces clap, which cost 207 KiB of the static aarch64
//! binary (see `args.rs`).

pub(crate) mod complete;
pub(crate) mod decl;
pub(crate) mod help;

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use decl::path;
pub(crate) use decl::{Choice, Complete, Flag, Positional, Rule, Sub, PROGRAM, VERSION};

/// A command line that cannot be run as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// The command path whose help explains it (`kasa-thermostat plug`).
    pub path: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl UsageError {
    fn new(chain: &[&Sub], message: impl Into<String>) -> UsageError {
        UsageError {
            path: path(chain),
            message: message.into(),
        }
    }

    /// Where to read more: `(see kasa-thermostat plug --help)`.
    pub(crate) fn hint(&self) -> String {
        format!("(see {} --help)", self.path)
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// What a command line asks for.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Print this help on stdout; exit 0.
    Help(String),
    /// Print the version on stdout; exit 0.
    Version,
    /// No subcommand at all: print this help on stderr; exit 2.
    NoCommand(String),
    /// Run the subcommand with these flags and positionals.
    Run(Matches),
}

/// The flags and positionals given to one subcommand, not yet interpreted:
/// `args.rs` turns them into its `*Args` struct with its value parsers.
#[derive(Debug)]
pub(crate) struct Matches {
    chain: Vec<&'static Sub>,
    /// One slot per flag of the subcommand: `Some` when given (empty for a
    /// switch; the first value of a repeatable flag).
    values: Vec<Option<OsString>>,
    /// One slot per flag: every value of a repeatable flag, in order.
    repeated: Vec<Vec<OsString>>,
    positionals: Vec<OsString>,
}

impl Matches {
    /// The subcommand, as a path below the root (`profile show`).
    pub(crate) fn name(&self) -> String {
        let names: Vec<&str> = self.chain.iter().skip(1).map(|s| s.name).collect();
        names.join(" ")
    }

    fn sub(&self) -> &'static Sub {
        self.chain[self.chain.len() - 1]
    }

    fn error(&self, message: String) -> UsageError {
        UsageError::new(&self.chain, message)
    }

    fn slot(&self, long: &str) -> Result<(&'static Flag, Option<&OsStr>), UsageError> {
        let sub = self.sub();
        match sub.flag_index(long) {
            Some(i) => Ok((&sub.flags[i], self.values[i].as_deref())),
            // A flag `args.rs` reads but never declared: a bug, said so.
            None => Err(self.error(format!("internal error: {} has no flag --{long}", sub.name))),
        }
    }

    /// Whether the switch `--long` was given.
    pub(crate) fn on(&self, long: &str) -> Result<bool, UsageError> {
        Ok(self.slot(long)?.1.is_some())
    }

    /// `--long`'s value as a path, if given.
    pub(crate) fn path(&self, long: &str) -> Result<Option<PathBuf>, UsageError> {
        Ok(self.slot(long)?.1.map(PathBuf::from))
    }

    /// `--long`'s value as a path, which a [`Rule::Required`] makes sure of.
    pub(crate) fn required_path(&self, long: &str) -> Result<PathBuf, UsageError> {
        self.path(long)?
            .ok_or_else(|| self.internal(format!("--{long} is required but not declared so")))
    }

    /// An error that is a bug in the declarations, said so.
    pub(crate) fn internal(&self, message: String) -> UsageError {
        self.error(format!("internal error: {message}"))
    }

    /// `--long`'s value as a path, else its default.
    pub(crate) fn path_or_default(&self, long: &str) -> Result<PathBuf, UsageError> {
        let (flag, value) = self.slot(long)?;
        match (value, flag.default) {
            (Some(v), _) => Ok(PathBuf::from(v)),
            (None, Some(d)) => Ok(PathBuf::from(d)),
            (None, None) => Err(self.error(format!("internal error: --{long} has no default"))),
        }
    }

    /// `--long`'s value parsed with `parse`, if given. A bad value is an
    /// error naming the flag.
    pub(crate) fn value<T>(
        &self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, UsageError> {
        let (flag, value) = self.slot(long)?;
        value
            .map(|v| self.parse_as(&format!("--{}", flag.long), v, &parse))
            .transpose()
    }

    /// Every value of the repeatable `--long`, each parsed with `parse`, in order.
    pub(crate) fn values<T>(
        &self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Vec<T>, UsageError> {
        let (flag, _) = self.slot(long)?;
        let i = self.sub().flag_index(long).unwrap_or(0);
        self.repeated[i]
            .iter()
            .map(|v| self.parse_as(&format!("--{}", flag.long), v, &parse))
            .collect()
    }

    /// `--long`'s value parsed with `parse`, else its default parsed the same way.
    pub(crate) fn value_or_default<T>(
        &self,
        long: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        let (flag, value) = self.slot(long)?;
        match (value, flag.default) {
            (Some(v), _) => self.parse_as(&format!("--{long}"), v, &parse),
            (None, Some(d)) => parse(d)
                .map_err(|e| self.error(format!("internal error: the default of --{long}: {e}"))),
            (None, None) => Err(self.error(format!("internal error: --{long} has no default"))),
        }
    }

    /// Optional positional `index` parsed with `parse`; `None` when left out.
    pub(crate) fn positional_opt<T>(
        &self,
        index: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, UsageError> {
        if index >= self.positionals.len() {
            return Ok(None);
        }
        self.positional(index, parse).map(Some)
    }

    /// Positional `index` parsed with `parse`.
    pub(crate) fn positional<T>(
        &self,
        index: usize,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        let value = self.positional_os(index)?;
        let name = self
            .sub()
            .positionals
            .get(index)
            .map_or("argument", |p| p.name);
        self.parse_as(name, value, &parse)
    }

    fn positional_os(&self, index: usize) -> Result<&OsStr, UsageError> {
        self.positionals
            .get(index)
            .map(OsString::as_os_str)
            .ok_or_else(|| self.error(format!("internal error: no positional {index}")))
    }

    fn parse_as<T>(
        &self,
        name: &str,
        value: &OsStr,
        parse: &impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        let text = value.to_str().ok_or_else(|| {
            self.error(format!("invalid value for {name}: {value:?} is not UTF-8"))
        })?;
        parse(text).map_err(|e| {
            // Name the value too, unless the parser's message does.
            let message = if e.contains(text) {
                format!("invalid value for {name}: {e}")
            } else {
                format!("invalid value for {name}: {text:?}: {e}")
            };
            self.error(message)
        })
    }
}

/// One token of the command line, owned (a `lexopt::Arg` borrows its parser).
enum Token {
    Short(char),
    Long(String),
    Value(OsString),
}

fn next(p: &mut lexopt::Parser, chain: &[&Sub]) -> Result<Option<Token>, UsageError> {
    match p.next() {
        Ok(None) => Ok(None),
        Ok(Some(lexopt::Arg::Short(c))) => Ok(Some(Token::Short(c))),
        Ok(Some(lexopt::Arg::Long(l))) => Ok(Some(Token::Long(l.to_string()))),
        Ok(Some(lexopt::Arg::Value(v))) => Ok(Some(Token::Value(v))),
        Err(e) => Err(lexopt_error(chain, e)),
    }
}

fn lexopt_error(chain: &[&Sub], e: lexopt::Error) -> UsageError {
    let message = match e {
        lexopt::Error::MissingValue { option: Some(o) } => {
            let long = o.trim_start_matches('-');
            let sub = chain[chain.len() - 1];
            let flag = sub
                .flags
                .iter()
                .find(|f| f.long == long || (o.len() == 2 && f.short == o.chars().nth(1)));
            match flag.and_then(|f| f.value) {
                Some(v) => format!("{o} needs a value ({o} {v})"),
                None => format!("{o} needs a value"),
            }
        }
        lexopt::Error::UnexpectedValue { option, value } => {
            format!("{option} takes no value (got {value:?})")
        }
        lexopt::Error::NonUnicodeValue(v) => format!("{v:?} is not UTF-8"),
        other => other.to_string(),
    };
    UsageError::new(chain, message)
}

/// Parses `args` (without the program name) against the command tree `root`.
pub fn parse(root: &'static Sub, args: Vec<OsString>) -> Result<Outcome, UsageError> {
    let mut p = lexopt::Parser::from_args(args);
    let mut chain: Vec<&'static Sub> = vec![root];
    loop {
        let sub = chain[chain.len() - 1];
        if sub.subs.is_empty() {
            return parse_leaf(chain, &mut p);
        }
        // A command of subcommands takes only -h, -V and a subcommand.
        let token = match next(&mut p, &chain)? {
            Some(t) => t,
            None if chain.len() == 1 => return Ok(Outcome::NoCommand(help::render(&chain))),
            None => {
                let names: Vec<&str> = sub.subs.iter().map(|s| s.name).collect();
                let message = format!("{} needs a subcommand: {}", sub.name, or_list(&names));
                return Err(UsageError::new(&chain, message));
            }
        };
        match token {
            t if is_help(&t) => return Ok(Outcome::Help(help::render(&chain))),
            Token::Short('V') => return Ok(Outcome::Version),
            Token::Long(l) if l == "version" => return Ok(Outcome::Version),
            Token::Value(v) => {
                let name = v.to_string_lossy();
                if chain.len() == 1 && name == "help" {
                    return help_command(root, &mut p);
                }
                match sub.sub(&name) {
                    Some(s) => chain.push(s),
                    None => {
                        let mut message = format!("unknown subcommand {name:?}");
                        let names = sub.subs.iter().map(|s| s.name);
                        if let Some(near) = nearest(&name, names) {
                            message.push_str(&format!(" (did you mean {near:?}?)"));
                        }
                        return Err(UsageError::new(&chain, message));
                    }
                }
            }
            Token::Long(l) => {
                let mut message = format!("unknown flag --{l}");
                if root.subs.iter().any(|s| s.flag(&l).is_some()) {
                    message.push_str(" (flags go after the subcommand)");
                } else if let Some(near) = nearest(&l, ["help", "version"].into_iter()) {
                    message.push_str(&format!(" (did you mean --{near}?)"));
                }
                return Err(UsageError::new(&chain, message));
            }
            Token::Short(c) => {
                return Err(UsageError::new(&chain, format!("unknown flag -{c}")));
            }
        }
    }
}

fn is_help(token: &Token) -> bool {
    match token {
        Token::Short(c) => *c == 'h',
        Token::Long(l) => l == "help",
        Token::Value(_) => false,
    }
}

/// `help [SUBCOMMAND [SUBCOMMAND]]`: the help of that command.
fn help_command(root: &'static Sub, p: &mut lexopt::Parser) -> Result<Outcome, UsageError> {
    let mut chain: Vec<&'static Sub> = vec![root];
    while let Some(token) = next(p, &chain)? {
        match token {
            Token::Value(v) => {
                let name = v.to_string_lossy();
                let sub = chain[chain.len() - 1];
                match sub.sub(&name) {
                    Some(s) => chain.push(s),
                    None => {
                        let mut message = format!("no help for {name:?}: not a subcommand");
                        if let Some(near) = nearest(&name, sub.subs.iter().map(|s| s.name)) {
                            message.push_str(&format!(" (did you mean {near:?}?)"));
                        }
                        return Err(UsageError::new(&chain, message));
                    }
                }
            }
            // `help -h`, `help plug --help`: the help asked for so far.
            t if is_help(&t) => break,
            Token::Short(c) => return Err(UsageError::new(&chain, format!("unknown flag -{c}"))),
            Token::Long(l) => return Err(UsageError::new(&chain, format!("unknown flag --{l}"))),
        }
    }
    Ok(Outcome::Help(help::render(&chain)))
}

fn parse_leaf(chain: Vec<&'static Sub>, p: &mut lexopt::Parser) -> Result<Outcome, UsageError> {
    let sub = chain[chain.len() - 1];
    let mut values: Vec<Option<OsString>> = vec![None; sub.flags.len()];
    let mut repeated: Vec<Vec<OsString>> = vec![Vec::new(); sub.flags.len()];
    let mut positionals = Vec::new();
    while let Some(token) = next(p, &chain)? {
        let index = match token {
            t if is_help(&t) => return Ok(Outcome::Help(help::render(&chain))),
            Token::Short('V') => return Ok(Outcome::Version),
            Token::Long(l) if l == "version" => return Ok(Outcome::Version),
            Token::Value(v) => {
                if positionals.len() == sub.positionals.len() {
                    let message = format!("unexpected argument {:?}", v.to_string_lossy());
                    return Err(UsageError::new(&chain, message));
                }
                positionals.push(v);
                continue;
            }
            Token::Long(l) => sub
                .flag_index(&l)
                .ok_or_else(|| unknown_flag(&chain, &format!("--{l}")))?,
            Token::Short(c) => sub
                .flags
                .iter()
                .position(|f| f.short == Some(c))
                .ok_or_else(|| unknown_flag(&chain, &format!("-{c}")))?,
        };
        let flag = &sub.flags[index];
        if flag.repeat {
            let v = p.value().map_err(|e| lexopt_error(&chain, e))?;
            values[index].get_or_insert_with(|| v.clone());
            repeated[index].push(v);
            continue;
        }
        if values[index].is_some() {
            let message = format!("--{} is given twice", flag.long);
            return Err(UsageError::new(&chain, message));
        }
        values[index] = Some(match flag.value {
            Some(_) => p.value().map_err(|e| lexopt_error(&chain, e))?,
            None => OsString::new(),
        });
    }
    if let Some(missing) = sub.positionals.get(positionals.len()) {
        if !missing.optional {
            let mut message = format!("missing {}", missing.name);
            if let Complete::Choices(choices) = missing.complete {
                let names: Vec<&str> = choices.iter().map(|c| c.name).collect();
                message.push_str(&format!(": {}", or_list(&names)));
            }
            return Err(UsageError::new(&chain, message));
        }
    }
    check_rules(&chain, &values)?;
    Ok(Outcome::Run(Matches {
        chain,
        values,
        repeated,
        positionals,
    }))
}

fn unknown_flag(chain: &[&Sub], typed: &str) -> UsageError {
    let sub = chain[chain.len() - 1];
    let mut message = format!("unknown flag {typed}");
    if let Some(long) = typed.strip_prefix("--") {
        let names = sub
            .flags
            .iter()
            .filter(|f| !f.hidden)
            .map(|f| f.long)
            .chain(["help"]);
        if let Some(near) = nearest(long, names) {
            message.push_str(&format!(" (did you mean --{near}?)"));
        }
    }
    UsageError::new(chain, message)
}

fn check_rules(chain: &[&Sub], values: &[Option<OsString>]) -> Result<(), UsageError> {
    let sub = chain[chain.len() - 1];
    let given = |long: &str| sub.flag_index(long).is_some_and(|i| values[i].is_some());
    let fail = |message: String| Err(UsageError::new(chain, message));
    for rule in sub.rules {
        match *rule {
            Rule::Exclusive(set) | Rule::AnyOf(set) => {
                let present: Vec<&str> = set.iter().copied().filter(|l| given(l)).collect();
                if present.len() > 1 && matches!(rule, Rule::Exclusive(_)) {
                    return fail(format!(
                        "--{} cannot be used with --{}",
                        present[1], present[0]
                    ));
                }
                if present.is_empty() && matches!(rule, Rule::AnyOf(_)) {
                    let names: Vec<String> = set.iter().map(|l| sub.show_flag(l)).collect();
                    let names: Vec<&str> = names.iter().map(String::as_str).collect();
                    return fail(format!("{} needs {}", sub.name, or_list(&names)));
                }
            }
            Rule::Requires(a, b) => {
                if given(a) && !given(b) {
                    return fail(format!("--{a} needs {}", sub.show_flag(b)));
                }
            }
            Rule::Required(a) => {
                if !given(a) {
                    return fail(format!("{} needs {}", sub.name, sub.show_flag(a)));
                }
            }
        }
    }
    Ok(())
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn or_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The candidate nearest to what was typed, if it is near enough to be a
/// typo of it (or what was typed is the start of it).
pub(crate) fn nearest<'a>(
    typed: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let typed_len = typed.chars().count();
    candidates
        .map(|c| (edit_distance(typed, c), c))
        .filter(|&(d, c)| {
            let len = typed_len.max(c.chars().count());
            d <= 2 && d < len || d * 3 <= len || (typed_len >= 3 && c.starts_with(typed))
        })
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("confg", "config"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggestions_are_near_or_a_prefix() {
        let names = ["config", "simulate", "speed", "profile"];
        assert_eq!(nearest("confg", names.into_iter()), Some("config"));
        assert_eq!(nearest("simulat", names.into_iter()), Some("simulate"));
        assert_eq!(nearest("spe", names.into_iter()), Some("speed"));
        assert_eq!(nearest("no-such-flag", names.into_iter()), None);
        assert_eq!(nearest("x", names.into_iter()), None);
    }

    #[test]
    fn or_lists() {
        assert_eq!(or_list(&["a"]), "a");
        assert_eq!(or_list(&["a", "b"]), "a or b");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
    }
}
