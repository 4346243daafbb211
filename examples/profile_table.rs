//! Prints the table of `limits_at` cases (the same rows that
//! `tests/profile_table.rs` asserts) as Markdown:
//!
//! ```sh
//! cargo run --example profile_table
//! ```

#[path = "../tests/it/profile_cases/mod.rs"]
mod profile_cases;

fn main() {
    print!("{}", profile_cases::markdown_table());
}
