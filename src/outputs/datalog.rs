//! An append-only JSON-lines file that never tears: each line is written
//! whole or not at all.
//!
//! A full disk (or any write error) can leave half a line at the end of a
//! file; the next line would then be glued to it, and a reader such as
//! `pd.read_json(lines=True)` fails on the whole file. So after a failed
//! write the file is cut back to the length it had before, and a file that
//! does not end in a newline when it is opened (torn by an older version, a
//! power cut in the middle of a write-back) is cut back to its last newline.
//! The length is taken before every write rather than remembered, because
//! logrotate's `copytruncate` may shrink the file behind our back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A JSON-lines file open for appending.
#[derive(Debug)]
pub(crate) struct DataLog {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl DataLog {
    /// Opens (creating it and its directory) `path` for appending and cuts a
    /// torn last line.
    pub fn open(path: &Path) -> io::Result<DataLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        repair_tail(&mut file)?;
        Ok(DataLog {
            path: path.to_path_buf(),
            file,
            buf: Vec::with_capacity(512),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` (which must not contain a newline) and a newline, in
    /// one write; on failure the file is cut back to where it was.
    pub(crate) fn append(&mut self, line: &str) -> io::Result<()> {
        debug_assert!(!line.contains('\n'));
        self.buf.clear();
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        append_whole(&mut self.file, &self.buf)
    }
}

/// What appending needs of a file, so the cut-back is tested without
/// filling a disk.
trait Sink {
    fn len(&self) -> io::Result<u64>;
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

fn append_whole(sink: &mut impl Sink, bytes: &[u8]) -> io::Result<()> {
    let len = sink.len()?;
    match sink.write_all(bytes) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Cutting back needs no space; if even that fails, the next
            // open repairs the tail.
            let _ = sink.set_len(len);
            Err(e)
        }
    }
}

/// Cuts the file back to just after its last newline (or to empty), if it
/// does not end with one.
fn repair_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    // Look back in blocks for the last newline.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|b| *b == b'\n') {
            let keep = start + i as u64 + 1;
            log::warn!("data log: cutting a torn last line ({} bytes)", len - keep);
            return file.set_len(keep);
        }
        end = start;
    }
    log::warn!("data log: cutting a torn line ({len} bytes, no newline at all)");
    file.set_len(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/readings.jsonl");
        let mut log = DataLog::open(&p).unwrap();
        log.append(r#"{"a":1}"#).unwrap();
        log.append(r#"{"a":2}"#).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn a_torn_tail_is_cut_back_to_the_last_newline_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        fs::write(&p, "{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let mut log = DataLog::open(&p).unwrap();
        log.append(r#"{"a":3}"#).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
        fs::write(&p, "no newline at all").unwrap();
        DataLog::open(&p).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "");
    }

    /// A disk with room for `room` more bytes: a write that does not fit
    /// writes what fits, then fails with ENOSPC, as a real full disk does.
    struct FullDisk {
        data: Vec<u8>,
        room: usize,
    }

    impl Sink for FullDisk {
        fn len(&self) -> io::Result<u64> {
            Ok(self.data.len() as u64)
        }
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            let n = bytes.len().min(self.room);
            self.data.extend_from_slice(&bytes[..n]);
            self.room -= n;
            if n < bytes.len() {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            Ok(())
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_leaves_no_half_line() {
        let mut disk = FullDisk {
            data: Vec::new(),
            room: 30,
        };
        append_whole(&mut disk, b"{\"a\":1}\n").unwrap();
        let e = append_whole(&mut disk, b"{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(disk.data, b"{\"a\":1}\n", "cut back to the last whole line");
        disk.room = 100;
        append_whole(&mut disk, b"{\"a\":2}\n").unwrap();
        let text = String::from_utf8(disk.data).unwrap();
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert_eq!(text.lines().count(), 2);
    }
}
