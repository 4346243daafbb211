//! The `limits_at` table (tests/profile_cases): every row's step, limits and
//! time to the next step. `cargo run --example profile_table` prints it.

use crate::profile_cases;

use profile_cases::{cases, evaluate, markdown_table};

#[test]
fn limits_at_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let o = evaluate(&case);
        let band_ok = match (o.band, case.band) {
            (Some((l, h)), Some((el, eh))) => (l - el).abs() < 1e-9 && (h - eh).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        };
        if o.step != case.step || !band_ok || o.next.as_deref() != case.next {
            failures.push(format!(
                "{}: got step {} band {:?} next {:?}; want step {} band {:?} next {:?}",
                case.name, o.step, o.band, o.next, case.step, case.band, case.next
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        markdown_table()
    );
}

#[test]
fn the_table_has_a_row_per_case() {
    let table = markdown_table();
    assert_eq!(table.lines().count(), cases().len() + 2);
    assert!(table.contains("| 02:30 skipped in spring: begins at the jump, 03:00 CEST | AT_0230 | 2026-03-29T01:00:00Z | 2026-03-29 03:00:00 CEST | 1 hold | 18.00..19.00 | 11h30m |"), "{table}");
}
