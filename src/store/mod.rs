//! pycguard's cache directory and the stores in it: the [`scan_memo`] (cache files whose
//! body was found well-formed, so `check` of an unchanged tree costs a `stat` per cache),
//! the [`proven`] memo (pairs `check --deep` proved equal, by identity, so a warm proof
//! reads no file), the [`proofs`] of `check --deep` by content (shared by every tree with
//! the same files), and the interpreters' [`probes`] answers. The two memos are identity
//! [`table`]s: bounded on-disk hash tables read a page at a time, so memory does not grow
//! with the tree.
//!
//! The directory lives outside every checked tree (`--cache-dir`, `$PYCGUARD_CACHE_DIR`,
//! `$XDG_CACHE_HOME/pycguard`, `~/.cache/pycguard`; chosen by the configuration) and is
//! created, with any missing parent, with mode 0700 as the XDG base directory
//! specification asks, only when something is first written. Every store file is opened
//! the one way [`CacheDir`] offers: never through a symlink (`O_NOFOLLOW`), never waiting
//! on a FIFO or device (`O_NONBLOCK`, `O_NOCTTY`), only if the opened descriptor is a
//! regular file, and read only up to a bound (through [`crate::read`]); it is replaced
//! atomically (a temporary file in the directory, then a rename, which replaces whatever
//! was in the way — a link, a FIFO — and never writes through it).
//!
//! What the stores share: one [`FileIdentity`] and one racily-clean rule ([`identity`]),
//! one header convention for binary files ([`format`]: magic, format version, parameters,
//! checksum), safe locking ([`lock`]). A damaged, foreign or older file is ignored and
//! rebuilt, never believed; every failure is silent to the user, because a store can only
//! save work, never change a verdict. The [`StoreError`]s below are for the stores' own
//! decisions and for tests.

// Locking, opening and reading all go through rustix and std: nothing here needs it.
#![forbid(unsafe_code)]

pub mod format;
pub mod identity;
pub mod lock;
pub mod probes;
pub mod proofs;
pub mod proven;
pub mod scan_memo;
pub mod table;

use std::fs::{DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};
use rustix::io::Errno;

pub use identity::{FileIdentity, RunStart};

use crate::read::{self, FileKind, Follow, ReadError};
use crate::stat::FileStat;

/// Why a store file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the cache directory {}: {err}", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        err: io::Error,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
}

impl From<Errno> for StoreError {
    fn from(e: Errno) -> Self {
        StoreError::Io(e.into())
    }
}

/// How a store file is opened for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// An existing file, read and written in place (the scan memo's slots).
    ReadWrite,
    /// An existing file, appended to (new proof records).
    Append,
    /// Written, created (mode 0600) when missing, never truncated (a lock file).
    Create,
}

/// pycguard's cache directory (not created until something is written to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    path: PathBuf,
}

impl CacheDir {
    pub fn new(path: &Path) -> CacheDir {
        CacheDir {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Create the directory and any missing parent, each with mode 0700 (an existing one
    /// is left as it is).
    pub fn create(&self) -> Result<(), StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|err| StoreError::CreateDir {
                path: self.path.clone(),
                err,
            })
    }

    /// Open a store file for reading (see the module docs); its stat.
    pub fn open_read(
        &self,
        name: &str,
        what: &'static str,
    ) -> Result<(File, FileStat), StoreError> {
        Ok(read::open(&self.path.join(name), Follow::No, what)?)
    }

    /// Read a whole store file of at most `limit` bytes (a larger one is not ours).
    pub fn read(&self, name: &str, what: &'static str, limit: u64) -> Result<Vec<u8>, StoreError> {
        Ok(read::read(&self.path.join(name), Follow::No, what, limit)?)
    }

    /// Open a store file for writing, as `access` says, with the same guarantees as
    /// [`CacheDir::open_read`].
    pub fn open_write(
        &self,
        name: &str,
        what: &'static str,
        access: Access,
    ) -> Result<(File, FileStat), StoreError> {
        let mut flags = OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
        flags |= match access {
            Access::ReadWrite => OFlags::RDWR,
            Access::Append => OFlags::WRONLY | OFlags::APPEND,
            Access::Create => OFlags::WRONLY | OFlags::CREATE,
        };
        let path = self.path.join(name);
        let fd = match rfs::open(&path, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            // O_NOFOLLOW on a symlink; a directory opened for writing; a FIFO without a
            // reader (or a device) opened for writing without blocking: by its kind.
            Err(e @ (Errno::LOOP | Errno::ISDIR | Errno::NXIO)) => {
                let kind = match e {
                    Errno::LOOP => FileKind::Symlink,
                    Errno::ISDIR => FileKind::Directory,
                    _ => rfs::lstat(&path)
                        .map(|st| FileKind::from_mode(st.st_mode))
                        .unwrap_or(FileKind::Unknown),
                };
                return Err(ReadError::NotRegular { kind, what }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let st = read::check_regular(&fd, what)?;
        Ok((File::from(fd), st))
    }

    /// Replace `name` atomically with a file that `fill` writes (created with mode 0600
    /// in this directory, which is created first if missing, then renamed over `name`).
    pub fn replace(
        &self,
        name: &str,
        fill: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        self.create()?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.path)?;
        fill(tmp.as_file_mut())?;
        tmp.persist(self.path.join(name)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Remove the files of earlier formats, if any are left (failures are ignored).
    pub fn remove_old(&self, names: &[&str]) {
        for name in names {
            let _ = std::fs::remove_file(self.path.join(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    #[test]
    fn the_directory_and_its_missing_parents_are_created_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(&base.path().join("home/.cache/pycguard"));
        dir.replace("f", |f| f.write_all(b"x")).unwrap();
        for d in ["home", "home/.cache", "home/.cache/pycguard"] {
            let mode = std::fs::metadata(base.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
        let mode = std::fs::metadata(dir.path().join("f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(dir.read("f", "the file", 10).unwrap(), b"x");
    }

    #[test]
    fn links_fifos_devices_and_directories_are_refused_without_blocking() {
        let base = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(base.path());
        let outside = base.path().join("victim");
        std::fs::write(&outside, b"keep me").unwrap();
        std::os::unix::fs::symlink(&outside, base.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", base.path().join("zero")).unwrap();
        rfs::mkfifoat(
            rfs::CWD,
            base.path().join("fifo"),
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        std::fs::create_dir(base.path().join("dir")).unwrap();
        let started = Instant::now();
        for name in ["link", "zero", "fifo", "dir"] {
            assert!(dir.open_read(name, "the store").is_err(), "{name}");
            for access in [Access::ReadWrite, Access::Append, Access::Create] {
                let err = dir.open_write(name, "the store", access).unwrap_err();
                let kind = match err {
                    StoreError::Read(ReadError::NotRegular { kind, .. }) => kind,
                    other => panic!("{name} {access:?}: {other}"),
                };
                let expected = match name {
                    "fifo" => FileKind::Fifo,
                    "dir" => FileKind::Directory,
                    _ => FileKind::Symlink,
                };
                assert_eq!(kind, expected, "{name} {access:?}");
            }
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // Replacing one puts a regular file in its place and leaves the target alone.
        for name in ["link", "fifo"] {
            dir.replace(name, |f| f.write_all(b"new")).unwrap();
            let (mut f, st) = dir.open_read(name, "the store").unwrap();
            assert!(st.is_file);
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            assert_eq!(text, "new");
        }
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep me");
        assert!(dir.replace("dir", |f| f.write_all(b"new")).is_err());
    }

    #[test]
    fn bounded_reads_refuse_an_oversized_file_from_its_size() {
        let base = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(base.path());
        File::create(base.path().join("huge"))
            .unwrap()
            .set_len(3 << 30)
            .unwrap();
        let started = Instant::now();
        let err = dir.read("huge", "the store", 1 << 20).unwrap_err();
        assert!(
            matches!(err, StoreError::Read(ReadError::TooLarge { .. })),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_created_file_is_private_and_kept() {
        let base = tempfile::tempdir().unwrap();
        let dir = CacheDir::new(base.path());
        let (mut f, _) = dir.open_write("lock", "the lock", Access::Create).unwrap();
        f.write_all(b"a").unwrap();
        drop(dir.open_write("lock", "the lock", Access::Create).unwrap());
        assert_eq!(std::fs::read(base.path().join("lock")).unwrap(), b"a");
        let mode = std::fs::metadata(base.path().join("lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (mut f, _) = dir.open_write("lock", "the lock", Access::Append).unwrap();
        f.write_all(b"b").unwrap();
        assert_eq!(std::fs::read(base.path().join("lock")).unwrap(), b"ab");
        assert!(dir.open_write("absent", "x", Access::Append).is_err());
    }
}
