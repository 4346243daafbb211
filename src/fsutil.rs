//! Reading small files that someone else controls (the config, the kernel's
//! `w1_slave`, the state file, the profile state) without trusting what they
//! are: only a regular file is read, never a FIFO or a device that could
//! block for ever (`open` itself blocks on a FIFO without `O_NONBLOCK`) or
//! never end (`/dev/zero`), and never more than a size cap.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// It is not a regular file (a FIFO, a device, a directory, a socket).
    NotRegular {
        /// What it is instead, for the message.
        what: &'static str,
    },
    /// It is larger than the cap: not the file it should be.
    TooLarge {
        /// The cap in bytes.
        max: u64,
    },
    /// Opening or reading failed.
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NotRegular { what } => {
                write!(f, "it is {what}, not a regular file")
            }
            ReadError::TooLarge { max } => write!(f, "it is larger than {max} bytes"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl ReadError {
    /// The I/O error kind, `Other` when the file is the wrong kind or size.
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        match self {
            ReadError::Io(e) => e.kind(),
            _ => io::ErrorKind::Other,
        }
    }
}

fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without blocking on a FIFO, and checks that it
/// is a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<File, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Io)?;
    let ft = file.metadata().map_err(ReadError::Io)?.file_type();
    if !ft.is_file() {
        return Err(ReadError::NotRegular { what: describe(ft) });
    }
    Ok(file)
}

/// Reads a regular file of at most `max` bytes.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let mut buf = Vec::new();
    // One byte more than allowed tells "too large" from "exactly the cap",
    // and a file that grows while being read is still bounded.
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(buf)
}

/// Reads a regular UTF-8 text file of at most `max` bytes.
pub(crate) fn read_text_capped(path: &Path, max: u64) -> Result<String, ReadError> {
    let bytes = read_capped(path, max)?;
    String::from_utf8(bytes)
        .map_err(|e| ReadError::Io(io::Error::new(io::ErrorKind::InvalidData, e.utf8_error())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text_capped(&p, 5).unwrap(), "hello");
        let e = read_text_capped(&p, 4).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { max: 4 }), "{e}");
    }

    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Nobody writes to it: a plain open would block here for ever.
        let e = read_capped(&fifo, 10).unwrap_err();
        assert_eq!(e.to_string(), "it is a FIFO, not a regular file");
        let e = read_capped(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file"
        );
        let e = read_capped(dir.path(), 10).unwrap_err();
        assert_eq!(e.to_string(), "it is a directory, not a regular file");
    }

    #[test]
    fn a_missing_file_keeps_its_io_kind() {
        let e = read_capped(Path::new("/nonexistent/x"), 10).unwrap_err();
        assert_eq!(e.io_kind(), io::ErrorKind::NotFound);
    }
}
