//! The part of a file's `stat` that verdicts and the scan memo use, from either std's
//! `Metadata` or a raw `stat` (see [`crate::walk::DirContext::stat`]).

use std::fs;
use std::os::unix::fs::MetadataExt;

use rustix::fs::{FileType, Stat};

/// The metadata a verdict or the memo needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub is_file: bool,
    pub mtime_secs: i64,
    pub mtime_nsec: u32,
    pub ctime_secs: i64,
    pub ctime_nsec: u32,
}

impl FileStat {
    /// Modification time in nanoseconds since the epoch.
    pub fn mtime_ns(&self) -> i128 {
        i128::from(self.mtime_secs) * 1_000_000_000 + i128::from(self.mtime_nsec)
    }

    /// Status-change time in nanoseconds since the epoch.
    pub fn ctime_ns(&self) -> i128 {
        i128::from(self.ctime_secs) * 1_000_000_000 + i128::from(self.ctime_nsec)
    }
}

impl From<&fs::Metadata> for FileStat {
    fn from(meta: &fs::Metadata) -> FileStat {
        FileStat {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            is_file: meta.is_file(),
            mtime_secs: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ctime_secs: meta.ctime(),
            ctime_nsec: meta.ctime_nsec() as u32,
        }
    }
}

impl From<&Stat> for FileStat {
    #[allow(clippy::unnecessary_cast)] // field widths differ between targets
    fn from(st: &Stat) -> FileStat {
        FileStat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            is_file: FileType::from_raw_mode(st.st_mode as _) == FileType::RegularFile,
            mtime_secs: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as u32,
            ctime_secs: st.st_ctime as i64,
            ctime_nsec: st.st_ctime_nsec as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_stat_and_metadata_agree() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.py");
        fs::write(&file, b"x = 1\n").unwrap();
        let raw = rustix::fs::stat(&file).unwrap();
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(FileStat::from(&raw), FileStat::from(&meta));
        assert!(FileStat::from(&raw).is_file);
        let dir_stat = FileStat::from(&rustix::fs::stat(dir.path()).unwrap());
        assert!(!dir_stat.is_file);
    }
}

/// What a path turned out to be when opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    Regular,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    /// A symlink that was not followed, or one that leads nowhere (dangling or a loop).
    Symlink,
    Unknown,
}

impl FileKind {
    pub fn from_file_type(ft: FileType) -> FileKind {
        match ft {
            FileType::RegularFile => FileKind::Regular,
            FileType::Directory => FileKind::Directory,
            FileType::Fifo => FileKind::Fifo,
            FileType::Socket => FileKind::Socket,
            FileType::CharacterDevice => FileKind::CharDevice,
            FileType::BlockDevice => FileKind::BlockDevice,
            FileType::Symlink => FileKind::Symlink,
            _ => FileKind::Unknown,
        }
    }

    /// From `std`'s `MetadataExt::mode` (always a `u32`).
    pub fn from_mode(mode: u32) -> FileKind {
        FileKind::from_file_type(FileType::from_raw_mode(mode as _))
    }

    /// From a raw `stat` (whose mode is a `u16` on macOS and the BSDs).
    pub fn from_stat(st: &Stat) -> FileKind {
        FileKind::from_file_type(FileType::from_raw_mode(st.st_mode))
    }

    /// "a FIFO (named pipe)", "a character device"…
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Symlink => "a symlink",
            FileKind::Unknown => "not a regular file",
        }
    }
}
