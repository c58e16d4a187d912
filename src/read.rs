//! Reading files that someone else may control, without hanging, without following a link
//! where none may be, and without reading more than any real file of that kind holds.
//!
//! Every file of a checked tree (caches, sources) and every file of pycguard's own cache
//! directory is opened here: `O_NONBLOCK` (a FIFO opens at once instead of waiting for a
//! writer), `O_NOCTTY` (a terminal never becomes ours), `O_CLOEXEC`, and `O_NOFOLLOW` where
//! the path must not be a link. The opened descriptor is `fstat`ed, and anything that is not
//! a regular file (FIFO, device, socket, directory) is refused by its kind before a single
//! byte is read, so a swap between the walk and the open cannot make a read block or stream
//! forever. Reads are bounded: a file whose size exceeds the caller's limit is refused from
//! its `fstat` (a 3 GiB sparse "cache" is never read into memory), and one that grows past
//! the limit while being read is refused too.
//!
//! [`MAX_FILE_BYTES`] is the documented bound for caches and sources: 64 MiB, far above
//! any real `.pyc` or `.py` (CPython's own largest generated sources are a few MiB).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

use crate::stat::FileStat;

/// The largest cache or source pycguard reads (64 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

pub use crate::stat::FileKind;

/// An I/O error as one short phrase ("permission denied", "no such file or directory").
pub fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    // Drop Rust's " (os error N)" suffix and lowercase the first letter.
    let text = text.split(" (os error").next().unwrap_or(&text).to_owned();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}", io_message(.0))]
    Io(#[from] io::Error),
    /// Not a regular file (after following a link, when links are followed).
    #[error("{} is {}, not a regular file", what, .kind.describe())]
    NotRegular { kind: FileKind, what: &'static str },
    #[error("{size} bytes, more than the {limit}-byte limit for one file; not read")]
    TooLarge { size: u64, limit: u64 },
}

impl ReadError {
    /// The kind of a non-regular file; `None` for other errors.
    pub fn not_regular(&self) -> Option<FileKind> {
        match self {
            ReadError::NotRegular { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Was it "no such file or directory" (vanished, or a dangling link)?
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// A symlink that cannot be followed (dangling or a loop).
    pub fn is_dangling(&self) -> bool {
        match self {
            ReadError::Io(e) => {
                e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP)
            }
            _ => false,
        }
    }
}

impl From<Errno> for ReadError {
    fn from(e: Errno) -> Self {
        ReadError::Io(e.into())
    }
}

/// Follow a final symlink when opening?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Read through a symlink, as the importer does (tree files).
    Yes,
    /// The path must not be a symlink (pycguard's own files): a link is refused.
    No,
}

fn flags(follow: Follow) -> OFlags {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    if follow == Follow::No {
        flags |= OFlags::NOFOLLOW;
    }
    flags
}

/// Check that an opened descriptor is a regular file; its stat.
pub fn check_regular(fd: &OwnedFd, what: &'static str) -> Result<FileStat, ReadError> {
    let st = rfs::fstat(fd)?;
    let kind = FileKind::from_stat(&st);
    if kind != FileKind::Regular {
        return Err(ReadError::NotRegular { kind, what });
    }
    Ok(FileStat::from(&st))
}

/// Open `path` for reading without blocking; refuse anything but a regular file. `what`
/// names the file in the error ("the cache", "the source").
pub fn open(
    path: &Path,
    follow: Follow,
    what: &'static str,
) -> Result<(File, FileStat), ReadError> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let fd = match rfs::open(path, flags(follow), Mode::empty()) {
        Ok(fd) => fd,
        // O_NOFOLLOW on a symlink.
        Err(Errno::LOOP) if follow == Follow::No => {
            return Err(ReadError::NotRegular {
                kind: FileKind::Symlink,
                what,
            })
        }
        // O_NONBLOCK open of a FIFO for writing has no reader; for reading it never fails
        // this way, but a device may answer ENXIO: report it by its kind.
        Err(Errno::NXIO) => {
            let kind = rfs::stat(path)
                .map(|st| FileKind::from_stat(&st))
                .unwrap_or(FileKind::Unknown);
            return Err(ReadError::NotRegular { kind, what });
        }
        Err(e) => return Err(e.into()),
    };
    let st = check_regular(&fd, what)?;
    Ok((File::from(fd), st))
}

/// Read an opened regular file of fstat size `size` into `buf` (cleared first), at most
/// `limit` bytes. A file that grew meanwhile is read to its end if that is within `limit`.
pub fn read_opened(
    file: &mut File,
    size: u64,
    limit: u64,
    buf: &mut Vec<u8>,
) -> Result<(), ReadError> {
    buf.clear();
    if size > limit {
        return Err(ReadError::TooLarge { size, limit });
    }
    // Never hold more than one byte past the limit.
    let cap = limit.saturating_add(1);
    // One byte more than fstat said lets a short read prove EOF without a second call.
    buf.resize((size + 1) as usize, 0);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() as u64 >= cap {
                break;
            }
            // It grew since the fstat: go on in steps, never past the cap.
            let next = (buf.len() as u64).saturating_mul(2).min(cap);
            buf.resize(next as usize, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                let asked = buf.len() - filled;
                filled += n;
                if n < asked && filled as u64 >= size {
                    // A short read of a regular file at its fstat size is its end.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.clear();
                return Err(e.into());
            }
        }
    }
    if filled as u64 > limit {
        buf.clear();
        return Err(ReadError::TooLarge {
            size: filled as u64,
            limit,
        });
    }
    buf.truncate(filled);
    Ok(())
}

/// Open and read a whole regular file into `buf`, at most `limit` bytes; its stat (from
/// the opened descriptor, so it describes the bytes read).
pub fn read_into(
    path: &Path,
    follow: Follow,
    what: &'static str,
    limit: u64,
    buf: &mut Vec<u8>,
) -> Result<FileStat, ReadError> {
    let (mut file, st) = open(path, follow, what)?;
    read_opened(&mut file, st.size, limit, buf)?;
    Ok(st)
}

/// [`read_into`] a new vector.
pub fn read(
    path: &Path,
    follow: Follow,
    what: &'static str,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_into(path, follow, what, limit, &mut buf)?;
    Ok(buf)
}

/// Read at most `n` leading bytes of a regular file (for a magic number).
pub fn read_head(path: &Path, follow: Follow, n: usize) -> Result<Vec<u8>, ReadError> {
    let (file, _) = open(path, follow, "the file")?;
    let mut head = Vec::with_capacity(n);
    file.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_are_read_whole_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, Follow::No, "the file", 100).unwrap(), b"hello");
        let err = read(&p, Follow::No, "the file", 4).unwrap_err();
        assert!(
            matches!(err, ReadError::TooLarge { size: 5, limit: 4 }),
            "{err}"
        );
        // A huge sparse file is refused from its size, without reading it.
        let big = dir.path().join("big");
        fs::File::create(&big).unwrap().set_len(3 << 30).unwrap();
        let started = Instant::now();
        let err = read(&big, Follow::No, "the cache", MAX_FILE_BYTES).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.cpython-312.pyc");
        // mkfifo(1): rustix has no `mkfifoat` or `mknodat` on macOS.
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {fifo:?}");
        let err = read(&fifo, Follow::Yes, "the cache", 100).unwrap_err();
        assert_eq!(err.not_regular(), Some(FileKind::Fifo), "{err}");
        assert_eq!(
            err.to_string(),
            "the cache is a FIFO (named pipe), not a regular file"
        );
        let err = read(Path::new("/dev/zero"), Follow::Yes, "the cache", 100).unwrap_err();
        assert_eq!(err.not_regular(), Some(FileKind::CharDevice), "{err}");
        let err = read(dir.path(), Follow::Yes, "the cache", 100).unwrap_err();
        assert_eq!(err.not_regular(), Some(FileKind::Directory), "{err}");
    }

    #[test]
    fn links_are_followed_or_refused_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, b"x").unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read(&link, Follow::Yes, "f", 10).unwrap(), b"x");
        let err = read(&link, Follow::No, "f", 10).unwrap_err();
        assert_eq!(err.not_regular(), Some(FileKind::Symlink));
        let dangling = dir.path().join("d");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(read(&dangling, Follow::Yes, "f", 10)
            .unwrap_err()
            .is_dangling());
    }
}
