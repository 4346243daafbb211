//! One plug, one master: an instance takes an exclusive `flock` on a file per
//! thing it drives (each plug, its sensor, a GPIO line) in a directory shared
//! by every instance, before it touches any of them. A second instance
//! configured with the same thing cannot take the lock and refuses to start,
//! naming the thing and the holder (which the holder wrote into the file).
//!
//! `flock` locks belong to the open file, so the kernel drops them when the
//! process dies however it dies: there is no stale lock to clean up, and a
//! lock file left behind is harmless.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A thing only one instance may drive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// A plug: host, port, and outlet (index or child id) when a strip.
    Plug {
        /// Host name or IP, as configured (compared without case).
        host: String,
        /// The port in use.
        port: u16,
        /// The outlet, as written (`#2`, a child id), or `None` for the whole plug.
        outlet: Option<String>,
    },
    /// A DS18B20 by its id: two instances may share a bus, not a sensor.
    Sensor {
        /// `28-0316a2797aff`.
        id: String,
    },
    /// A GPIO line bit-banged by the `hal` backend: one process per line.
    GpioLine {
        /// The character device (`/dev/gpiochip0`).
        chip: PathBuf,
        /// The line offset.
        line: u32,
    },
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Plug { host, port, outlet } => {
                if host.contains(':') {
                    write!(f, "plug [{host}]:{port}")?;
                } else {
                    write!(f, "plug {host}:{port}")?;
                }
                match outlet {
                    Some(o) => write!(f, " outlet {o}"),
                    None => Ok(()),
                }
            }
            Resource::Sensor { id } => write!(f, "sensor {id}"),
            Resource::GpioLine { chip, line } => {
                write!(f, "GPIO line {}:{line}", chip.display())
            }
        }
    }
}

impl Resource {
    /// The lock file's name: the thing in a filename-safe spelling (every
    /// byte outside `A-Za-z0-9.-` becomes `_`; hosts are lowercased so
    /// `Plug.lan` and `plug.lan` are one plug).
    pub fn file_name(&self) -> String {
        let raw = match self {
            Resource::Plug { host, port, outlet } => format!(
                "plug-{}-{port}{}",
                host.to_ascii_lowercase(),
                outlet
                    .as_ref()
                    .map(|o| format!("-outlet-{o}"))
                    .unwrap_or_default()
            ),
            Resource::Sensor { id } => format!("sensor-{}", id.to_ascii_lowercase()),
            Resource::GpioLine { chip, line } => format!("gpio-{}-{line}", chip.display()),
        };
        let safe: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.lock")
    }
}

/// Why the locks could not be taken. Nothing has been touched yet.
#[derive(Debug)]
pub enum LockError {
    /// The locks' directory could not be created or a lock file opened:
    /// check that `lock_dir` exists and the service's user may write it.
    File {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another instance drives this thing: give this one another plug,
    /// sensor or line, or stop that instance.
    Held {
        /// What is held.
        resource: Resource,
        /// Who holds it (unit name and pid, as it wrote them), or a note
        /// that the file does not say.
        holder: String,
        /// Its lock file.
        path: PathBuf,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::File { path, source } => {
                write!(f, "lock {}: {source}", path.display())
            }
            LockError::Held {
                resource, holder, ..
            } => write!(
                f,
                "{resource} is already driven by {holder}; one plug, one master: \
                 configure this instance with another one, or stop that one first"
            ),
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::File { source, .. } => Some(source),
            LockError::Held { .. } => None,
        }
    }
}

/// The locks an instance holds; dropping it releases them (and so does the
/// process's end, however it ends).
#[derive(Debug)]
pub struct Locks {
    held: Vec<(Resource, File)>,
}

impl Locks {
    /// What is held.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.held.iter().map(|(r, _)| r)
    }
}

/// Takes an exclusive lock on each of `resources` in `dir` (created if
/// missing, mode 0770 so every instance's user in the group may lock), for
/// `holder` (`kasa-thermostat@NAME`). All or none: on the first one held
/// elsewhere, the ones taken so far are released and the error names it.
pub fn acquire(dir: &Path, holder: &str, resources: &[Resource]) -> Result<Locks, LockError> {
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o770)
            .create(dir)
            .map_err(|source| LockError::File {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let mut resources = resources.to_vec();
    // One order for everyone, so two instances starting together cannot
    // each take half; duplicates (heater and cooler on one strip's
    // outlets are distinct; one sensor named twice is not) collapse.
    resources.sort();
    resources.dedup();
    let mut held = Vec::with_capacity(resources.len());
    for resource in resources {
        let path = dir.join(resource.file_name());
        let file_err = |source| LockError::File {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o660)
            .open(&path)
            .map_err(file_err)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(file_err(e));
            }
            let mut text = String::new();
            let _ = file.take(200).read_to_string(&mut text);
            let text = text.trim();
            let holder = if text.is_empty() {
                "another process (its lock file does not say which)".to_string()
            } else {
                text.to_string()
            };
            return Err(LockError::Held {
                resource,
                holder,
                path,
            });
        }
        let record = format!("{holder} (pid {})\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| file.write_all(record.as_bytes()))
            .map_err(file_err)?;
        held.push((resource, file));
    }
    Ok(Locks { held })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plug(port: u16, outlet: Option<&str>) -> Resource {
        Resource::Plug {
            host: "127.0.0.1".into(),
            port,
            outlet: outlet.map(str::to_string),
        }
    }

    #[test]
    fn a_held_plug_is_refused_naming_it_and_its_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), "kasa-thermostat@brew", &[plug(9999, None)]).unwrap();
        let e = acquire(dir.path(), "kasa-thermostat@keg", &[plug(9999, None)]).unwrap_err();
        let line = e.to_string();
        assert!(
            line.contains("plug 127.0.0.1:9999 is already driven by kasa-thermostat@brew (pid "),
            "{line}"
        );
        assert!(!line.contains('\n'));
        // Another port, another outlet: another plug.
        let b = acquire(
            dir.path(),
            "kasa-thermostat@keg",
            &[plug(9998, None), plug(9999, Some("#1"))],
        )
        .unwrap();
        assert_eq!(b.resources().count(), 2);
        drop(a);
        let c = acquire(dir.path(), "kasa-thermostat@keg", &[plug(9999, None)]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(plug(9999, None).file_name())).unwrap();
        assert!(text.starts_with("kasa-thermostat@keg (pid "), "{text}");
        drop(c);
    }

    #[test]
    fn all_or_none_a_refusal_releases_what_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let sensor = Resource::Sensor { id: "28-aa".into() };
        let _held = acquire(dir.path(), "kasa-thermostat", std::slice::from_ref(&sensor)).unwrap();
        // plug-... sorts after sensor-... ? Resource order: Plug < Sensor, so
        // the plug is taken first, then the sensor is refused.
        let e = acquire(
            dir.path(),
            "kasa-thermostat@b",
            &[sensor.clone(), plug(1, None)],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sensor 28-aa is already driven by kasa-thermostat (pid"),
            "{e}"
        );
        acquire(dir.path(), "kasa-thermostat@c", &[plug(1, None)]).expect("the plug was released");
    }

    #[test]
    fn a_gpio_line_is_one_process_s() {
        let dir = tempfile::tempdir().unwrap();
        let line = Resource::GpioLine {
            chip: "/dev/gpiochip0".into(),
            line: 4,
        };
        let _a = acquire(dir.path(), "kasa-thermostat@a", std::slice::from_ref(&line)).unwrap();
        let e = acquire(dir.path(), "kasa-thermostat@b", &[line]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("GPIO line /dev/gpiochip0:4 is already driven by kasa-thermostat@a"),
            "{e}"
        );
        let other = Resource::GpioLine {
            chip: "/dev/gpiochip0".into(),
            line: 17,
        };
        acquire(dir.path(), "kasa-thermostat@b", &[other]).unwrap();
    }

    #[test]
    fn file_names_are_safe_and_case_blind_for_hosts() {
        let r = Resource::Plug {
            host: "Plug.LAN".into(),
            port: 80,
            outlet: Some("8006xx/01".into()),
        };
        assert_eq!(r.file_name(), "plug-plug.lan-80-outlet-8006xx_01.lock");
        let v6 = Resource::Plug {
            host: "fe80::1%eth0".into(),
            port: 9999,
            outlet: None,
        };
        assert_eq!(v6.file_name(), "plug-fe80__1_eth0-9999.lock");
        assert_eq!(
            Resource::GpioLine {
                chip: "/dev/gpiochip4".into(),
                line: 4
            }
            .file_name(),
            "gpio-_dev_gpiochip4-4.lock"
        );
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = acquire(&file.join("locks"), "x", &[plug(1, None)]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("lock {}", file.join("locks").display())),
            "{e}"
        );
    }
}
