//! Reading input files defensively and writing results atomically. Every file the tool reads
//! from a user (checkpoints, datasets, manifests) goes through [`open_regular`]: a FIFO, a device
//! or a directory is refused by name instead of hanging the tool or reading without end, and a
//! file larger than what it could sensibly be is refused before it is read. Every result goes
//! through [`write_atomic`]: a uniquely named temporary file beside the target, synced, then
//! renamed over it, so readers never see half a file and a failed write leaves nothing behind.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Why a path cannot be read, in words (a symlink loop is not "no such file").
fn describe_open_error(path: &Path, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::ELOOP) => "a loop of symbolic links".to_string(),
        Some(libc::ENOENT) => "no such file".to_string(),
        Some(libc::EACCES) => "permission denied".to_string(),
        _ => e.to_string(),
    };
    format!("cannot read {}: {why}", path.display())
}

/// Opens `path` for reading if it is a regular file (after following links) of at most
/// `max_bytes`; returns it with its size.
pub fn open_regular(path: &Path, max_bytes: u64) -> Result<(File, u64)> {
    let meta =
        std::fs::metadata(path).map_err(|e| anyhow::anyhow!(describe_open_error(path, &e)))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device?)"
        };
        bail!("{}: {what}", path.display());
    }
    if meta.len() > max_bytes {
        bail!(
            "{}: {} bytes, more than the {max_bytes} such a file can sensibly hold",
            path.display(),
            meta.len()
        );
    }
    // O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not block.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| anyhow::anyhow!(describe_open_error(path, &e)))?;
    let now = file.metadata().with_context(|| format!("cannot read {}", path.display()))?;
    if !now.is_file() {
        bail!("{}: not a regular file", path.display());
    }
    Ok((file, now.len().min(max_bytes)))
}

/// The bytes of a regular file of at most `max_bytes` (see [`open_regular`]).
pub fn read_regular(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path, max_bytes)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // take(): a file that grows while being read still stops at the cap.
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        bail!("{}: more than {max_bytes} bytes", path.display());
    }
    Ok(bytes)
}

/// A text file of at most `max_bytes` (manifests, index files, reports).
pub fn read_text(path: &Path, max_bytes: u64) -> Result<String> {
    String::from_utf8(read_regular(path, max_bytes)?)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))
}

/// What kind of thing a file type is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Whether `path` may be written: it does not exist, or it is a regular file. A directory, a
/// device, a FIFO, a socket or a symbolic link there is refused whatever the flags (`--overwrite`
/// replaces results, never other things). Every writer checks through here, before any work.
pub fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => bail!(
            "{} exists and is {}: gnn-soup writes only regular files; choose another path",
            path.display(),
            kind_of(m.file_type())
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => bail!("cannot write {}: {e}", path.display()),
    }
}

/// Writes `bytes` to `path` through a uniquely named temporary file in the same directory,
/// synced to disk before it is renamed over `path`. On any error the temporary file is removed
/// and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes).map_err(Into::into))
}

/// As [`write_atomic`], for content written piece by piece (too large to hold in memory twice):
/// `write` gets the temporary file, positioned at its start.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    check_replaceable(path)?;
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            parent.to_path_buf()
        }
        None => std::path::PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    write(tmp.as_file_mut())
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))?;
    // Again at the last moment: the rename would replace whatever is there now.
    check_replaceable(path)?;
    tmp.persist(path).map_err(|e| {
        anyhow::anyhow!("cannot move the new {} into place: {}", path.display(), e.error)
    })?;
    Ok(())
}

/// A JSON-lines log that `tui --attach` follows (`events.jsonl`, `train-events.jsonl`): one record
/// a line, flushed as it is written, shared by threads. Opened with O_NOFOLLOW, so a link planted
/// at its path does not send the log elsewhere. A log is not worth failing a run for: the first
/// write that fails is reported once and the log stops.
pub struct JsonLines {
    path: std::path::PathBuf,
    file: std::sync::Mutex<Option<File>>,
}

impl JsonLines {
    /// A new log at `path`, replacing any there.
    pub fn create(path: &Path) -> Result<JsonLines> {
        JsonLines::open(path, false)
    }

    /// The log at `path` continued (created when missing): a resumed run goes on with its log.
    pub fn append(path: &Path) -> Result<JsonLines> {
        JsonLines::open(path, true)
    }

    fn open(path: &Path, append: bool) -> Result<JsonLines> {
        use std::os::unix::fs::OpenOptionsExt;
        check_replaceable(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).custom_flags(libc::O_NOFOLLOW);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let file =
            options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(JsonLines { path: path.to_path_buf(), file: std::sync::Mutex::new(Some(file)) })
    }

    pub fn write<T: serde::Serialize>(&self, record: &T) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(f) = file.as_mut() else { return };
        // One write per line, so that a follower never sees two records' pieces interleaved.
        let written = serde_json::to_string(record)
            .map_err(std::io::Error::from)
            .and_then(|line| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            tracing::warn!("cannot write {} ({e}); `tui --attach` stops here", self.path.display());
            *file = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_logs_append_or_replace_and_do_not_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        JsonLines::create(&path).unwrap().write(&serde_json::json!({"a": 1}));
        JsonLines::append(&path).unwrap().write(&serde_json::json!({"b": 2}));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        JsonLines::create(&path).unwrap().write(&serde_json::json!({"c": 3}));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"c\":3}\n");
        let outside = tempfile::tempdir().unwrap();
        let link = dir.path().join("train-events.jsonl");
        std::os::unix::fs::symlink(outside.path().join("victim"), &link).unwrap();
        for open in [JsonLines::create, JsonLines::append] {
            let e = open(&link).err().expect("a planted link is refused").to_string();
            assert!(e.contains("train-events.jsonl"), "{e}");
        }
        assert!(!outside.path().join("victim").exists());
    }

    #[test]
    fn fifos_directories_loops_and_oversized_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.safetensors");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 100).unwrap_err().to_string();
        assert!(e.contains("pipe.safetensors") && e.contains("not a regular file"), "{e}");
        let e = read_regular(dir.path(), 100).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        let a = dir.path().join("a");
        std::os::unix::fs::symlink(dir.path().join("b"), &a).unwrap();
        std::os::unix::fs::symlink(&a, dir.path().join("b")).unwrap();
        let e = read_regular(&a, 100).unwrap_err().to_string();
        assert!(e.contains("loop of symbolic links"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![0u8; 101]).unwrap();
        assert!(read_regular(&big, 100).unwrap_err().to_string().contains("101 bytes"));
        assert_eq!(read_regular(&big, 101).unwrap().len(), 101);
    }

    #[test]
    fn atomic_writes_leave_no_temporary_files_and_do_not_follow_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.json");
        // A user's file named like the old fixed temporary name is not touched.
        std::fs::write(dir.path().join("report.json.tmp"), b"mine").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("victim"),
            dir.path().join(".report.json.partial"),
        )
        .unwrap();
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(std::fs::read(dir.path().join("report.json.tmp")).unwrap(), b"mine");
        assert!(!outside.path().join("victim").exists());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        // A write that cannot happen (the directory is a file) fails naming it, leaving nothing.
        let e = write_atomic(&target.join("x"), b"1").unwrap_err().to_string();
        assert!(e.contains("report.json"), "{e}");
    }
}
