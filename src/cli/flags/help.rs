//! Help text, rendered from the declarations of [`Sub`]: the
//! summary, the usage lines, the subcommands, the positionals (with their
//! choices), the flags with their help and defaults, then the examples,
//! wrapped to [`WIDTH`] columns.

use super::decl::{path, Complete, Flag, Sub, VERSION};

/// The width help is wrapped to.
pub(crate) const WIDTH: usize = 80;

/// A label column wider than this puts its help on the next line.
const MAX_LABEL: usize = 24;

/// The help of the last command of `chain` (the root first).
pub(crate) fn render(chain: &[&Sub]) -> String {
    let sub = chain[chain.len() - 1];
    let is_root = chain.len() == 1;
    let command = path(chain);
    let mut out = String::new();
    if is_root {
        wrap(
            &format!("{command} {}: {}", VERSION, sub.summary),
            0,
            0,
            &mut out,
        );
    } else {
        wrap(sub.summary, 0, 0, &mut out);
    }
    if !sub.about.is_empty() {
        out.push('\n');
        wrap(sub.about, 0, 0, &mut out);
    }

    out.push('\n');
    for (i, line) in sub.usage.iter().enumerate() {
        let lead = if i == 0 { "Usage: " } else { "       " };
        let start = format!("{lead}{command} ");
        let indent = start.chars().count();
        out.push_str(&start);
        // Continued lines hang a little right of `Usage: `.
        wrap(&glue_groups(line), indent, 11, &mut out);
    }

    if !sub.subs.is_empty() {
        out.push_str("\nSubcommands:\n");
        let rows: Vec<Row> = sub
            .subs
            .iter()
            .map(|s| Row::new(s.name.to_string(), s.summary.to_string()))
            .collect();
        table(&rows, &mut out);
    }

    if !sub.positionals.is_empty() {
        out.push_str("\nArguments:\n");
        let rows: Vec<Row> = sub
            .positionals
            .iter()
            .map(|p| {
                let mut row = Row::new(p.name.to_string(), p.help.to_string());
                if let Complete::Choices(choices) = p.complete {
                    row.choices = choices.iter().map(|c| (c.name, c.help)).collect();
                }
                row
            })
            .collect();
        table(&rows, &mut out);
    }

    out.push_str("\nOptions:\n");
    let mut rows: Vec<Row> = sub
        .flags
        .iter()
        .filter(|f| !f.hidden)
        .map(|f| Row::new(flag_label(f), flag_help(f)))
        .collect();
    let help = if is_root {
        "Print this help (and `help SUBCOMMAND` a subcommand's)."
    } else {
        "Print this help."
    };
    rows.push(Row::new("-h, --help".into(), help.into()));
    if is_root {
        rows.push(Row::new(
            "-V, --version".into(),
            "Print the version.".into(),
        ));
    }
    table(&rows, &mut out);

    if !sub.after.is_empty() {
        out.push('\n');
        out.push_str(sub.after.trim_end());
        out.push('\n');
    }
    out.replace(GLUE, " ")
}

/// A usage line with the spaces inside `[...]` glued, so that wrapping
/// keeps each optional group whole.
fn glue_groups(line: &str) -> String {
    let mut depth = 0usize;
    line.chars()
        .map(|c| {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ' ' if depth > 0 => return GLUE,
                _ => {}
            }
            c
        })
        .collect()
}

/// `-c, --config FILE` or `    --json`: long names line up whether or not
/// a flag has a short one.
fn flag_label(f: &Flag) -> String {
    let mut label = match f.short {
        Some(c) => format!("-{c}, --{}", f.long),
        None => format!("    --{}", f.long),
    };
    if let Some(v) = f.value {
        label.push(' ');
        label.push_str(v);
    }
    label
}

/// Glues words that wrapping must not split; a space once rendered.
const GLUE: char = '\u{a0}';

fn flag_help(f: &Flag) -> String {
    match f.default {
        // `[default: Simulated plug]` stays on one line.
        Some(d) => format!("{} [default:{GLUE}{}]", f.help, d.replace(' ', "\u{a0}")),
        None => f.help.to_string(),
    }
}

/// One line of a two-column table, with an optional list of choices under it.
struct Row {
    label: String,
    help: String,
    choices: Vec<(&'static str, &'static str)>,
}

impl Row {
    fn new(label: String, help: String) -> Row {
        Row {
            label,
            help,
            choices: Vec::new(),
        }
    }
}

fn table(rows: &[Row], out: &mut String) {
    let width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .filter(|&w| w <= MAX_LABEL)
        .max()
        .unwrap_or(0);
    let indent = 2 + width + 2;
    for row in rows {
        out.push_str("  ");
        out.push_str(&row.label);
        let label = row.label.chars().count();
        if label > width {
            out.push('\n');
            spaces(indent, out);
        } else {
            spaces(width - label + 2, out);
        }
        wrap(&row.help, indent, indent, out);
        let name_width = row.choices.iter().map(|c| c.0.len()).max().unwrap_or(0);
        for (name, help) in &row.choices {
            spaces(indent + 2, out);
            out.push_str(name);
            if help.is_empty() {
                out.push('\n');
                continue;
            }
            spaces(name_width - name.len() + 2, out);
            let at = indent + 2 + name_width + 2;
            wrap(help, at, at, out);
        }
    }
}

fn spaces(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Appends `text` word-wrapped to [`WIDTH`], the first line starting at
/// column `col` (what is already on it), the others indented by `indent`;
/// ends with a newline. A line break in `text` starts a new line.
pub(crate) fn wrap(text: &str, col: usize, indent: usize, out: &mut String) {
    let mut col = col;
    for (n, line) in text.lines().enumerate() {
        if n > 0 {
            out.push('\n');
            spaces(indent, out);
            col = indent;
        }
        let mut line_start = true;
        // Split on spaces only: a GLUE joins words.
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            let w = word.chars().count();
            if !line_start && col + 1 + w > WIDTH {
                out.push('\n');
                spaces(indent, out);
                col = indent;
                line_start = true;
            }
            if !line_start {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += w;
            line_start = false;
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_the_width_with_a_hanging_indent() {
        let text = "word ".repeat(40);
        let mut out = String::from("  --flag  ");
        wrap(&text, 10, 10, &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 2, "{out}");
        for line in &lines {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
        for line in &lines[1..] {
            assert!(line.starts_with(&" ".repeat(10)), "{line:?}");
            assert!(!line[10..].starts_with(' '), "{line:?}");
        }
        assert_eq!(out.matches("word").count(), 40);
    }

    #[test]
    fn a_word_longer_than_the_line_stands_alone() {
        let long = "x".repeat(100);
        let mut out = String::new();
        wrap(&format!("a {long} b"), 0, 2, &mut out);
        assert_eq!(out, format!("a\n  {long}\n  b\n"));
    }

    #[test]
    fn usage_groups_stay_whole() {
        assert_eq!(
            glue_groups("A [--b C] [--d [E]]"),
            format!("A [--b{GLUE}C] [--d{GLUE}[E]]")
        );
    }

    #[test]
    fn line_breaks_are_kept() {
        let mut out = String::new();
        wrap("one\ntwo", 4, 4, &mut out);
        assert_eq!(out, "one\n    two\n");
    }
}
