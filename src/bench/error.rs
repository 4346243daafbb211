//! The error of `bench-control`: a plant file that cannot be used, a trace
//! that cannot be written. A leaf of `bench/`: `plant.rs` and `builtin.rs`
//! report through it without importing the run in `mod.rs`.

use std::fmt;
use std::path::PathBuf;

/// What went wrong, and what to do about it.
#[derive(Debug)]
pub enum BenchError {
    /// A plant file cannot be used: fix the key the message names.
    Plant {
        /// The file (or the built-in plant's name).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The trace could not be written: check the directory.
    Trace {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Plant { file, message } => write!(f, "plant {file}: {message}"),
            BenchError::Trace { path, error } => {
                write!(f, "cannot write the trace {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for BenchError {}
