//! Why a configuration could not be used, and the helpers that word its
//! messages: the one error of `config/`, used by its children (`control.rs`,
//! `instance.rs`) and re-exported as `config::ConfigError`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a configuration could not be used. Each variant names the file or key.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read: check the path, its permissions, and that
    /// it is a regular file.
    Read {
        /// The config file.
        path: PathBuf,
        /// Why.
        source: crate::fsutil::ReadError,
    },
    /// The file is not valid JSON of the expected shape (unknown key, wrong type).
    Parse {
        /// The config file, if it came from one.
        path: Option<PathBuf>,
        /// The dotted key path (`heater.port`), or `.` for the top level.
        key: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// A value is out of its allowed range: the message names key, value and what is allowed.
    Invalid {
        /// The config file, if it came from one.
        path: Option<PathBuf>,
        /// The dotted key path.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl ConfigError {
    /// The same error, naming `file`.
    pub(super) fn in_file(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Parse { key, message, .. } => ConfigError::Parse {
                path: Some(file.to_path_buf()),
                key,
                message,
            },
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid {
                path: Some(file.to_path_buf()),
                key,
                message,
            },
            other => other,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, .. } => {
                write!(f, "cannot read config file {}", path.display())
            }
            ConfigError::Parse { path, key, message } => {
                if let Some(p) = path {
                    write!(f, "{}: ", p.display())?;
                }
                if key == "." {
                    write!(f, "{message}")
                } else {
                    write!(f, "key `{key}`: {message}")
                }
            }
            ConfigError::Invalid { path, key, message } => {
                if let Some(p) = path {
                    write!(f, "{}: ", p.display())?;
                }
                write!(f, "key `{key}`: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A bad value of `key`: `message` says what is wrong and what is allowed.
pub(super) fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: None,
        key: key.to_string(),
        message,
    }
}

/// Numbers in messages as people write them: `0.5`, `3600`, not `3600.0`.
pub(super) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
