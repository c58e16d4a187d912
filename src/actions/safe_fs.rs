//! File operations that are safe to run as root on a tree someone else can write to.
//!
//! Every operation names a file by a root the user gave (which may itself be reached
//! through symlinks: the user chose it) and a path beneath it. The directories beneath the
//! root are opened one component at a time with `O_NOFOLLOW | O_DIRECTORY`, and the final
//! operation is an `*at` call on that directory descriptor, so a directory swapped for a
//! symlink between the scan and the action cannot redirect a delete or a write outside
//! the tree. Deletions only ever remove a regular file (or an empty directory); writes go
//! to a temporary file in the same directory, get their owner and mode, and are renamed
//! into place, so a crash leaves the old cache or the new one, never half of one.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a file operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("{} is not beneath {}", .path.display(), .root.display())]
    NotBeneath {
        path: std::path::PathBuf,
        root: std::path::PathBuf,
    },
    #[error("refusing to follow the symlink {}", .0.display())]
    Symlink(std::path::PathBuf),
    #[error("not a regular file")]
    NotAFile,
    #[error("{}", crate::facts::io_message(.0))]
    Io(#[from] io::Error),
}

impl From<Errno> for SafeFsError {
    fn from(e: Errno) -> Self {
        SafeFsError::Io(e.into())
    }
}

/// An open directory beneath a root.
pub struct Dir {
    fd: OwnedFd,
}

/// Open `dir` (a path starting with `root`) without following any symlink below `root`.
/// With `create`, a missing last component named `__pycache__` is created (mode 0777
/// before umask, as importlib does) and handed to `owner` when given.
pub fn open_dir_beneath(
    root: &Path,
    dir: &Path,
    create_pycache: Option<Option<(u32, u32)>>,
) -> Result<Dir, SafeFsError> {
    let rel = dir
        .strip_prefix(root)
        .map_err(|_| SafeFsError::NotBeneath {
            path: dir.to_path_buf(),
            root: root.to_path_buf(),
        })?;
    let root_path: &Path = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    let mut fd = rfs::open(
        root_path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let parts: Vec<&OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p),
            _ => None,
        })
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
        fd = match rfs::openat(&fd, *part, flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) if last && *part == "__pycache__" && create_pycache.is_some() => {
                match rfs::mkdirat(&fd, *part, Mode::from_raw_mode(0o777)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                if let Some(Some((uid, gid))) = create_pycache {
                    chown_at(&fd, part, uid, gid)?;
                }
                rfs::openat(&fd, *part, flags, Mode::empty())?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                return Err(SafeFsError::Symlink(
                    root.join(rel.iter().take(i + 1).collect::<std::path::PathBuf>()),
                ))
            }
            Err(e) => return Err(e.into()),
        };
    }
    Ok(Dir { fd })
}

/// Create every missing directory from `root` down to `dir` (a path starting with `root`),
/// never following a symlink below `root`, with mode 0777 before the umask (as importlib
/// creates the directories of a pycache prefix). With `inherit_owner` (running as root),
/// each new directory gets the owner and group of the directory it was made in: a prefix
/// a service may write keeps belonging to that service. Returns the directories created,
/// outermost first.
pub fn create_dirs_beneath(
    root: &Path,
    dir: &Path,
    inherit_owner: bool,
) -> Result<Vec<std::path::PathBuf>, SafeFsError> {
    let rel = dir
        .strip_prefix(root)
        .map_err(|_| SafeFsError::NotBeneath {
            path: dir.to_path_buf(),
            root: root.to_path_buf(),
        })?;
    let mut fd = rfs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut created = Vec::new();
    let mut here = root.to_path_buf();
    for part in rel.components() {
        let Component::Normal(part) = part else {
            continue;
        };
        here.push(part);
        fd = match rfs::openat(&fd, part, flags, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) => {
                match rfs::mkdirat(&fd, part, Mode::from_raw_mode(0o777)) {
                    Ok(()) => {
                        created.push(here.clone());
                        if inherit_owner {
                            let st = rfs::fstat(&fd)?;
                            chown_at(&fd, part, st.st_uid, st.st_gid)?;
                        }
                    }
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rfs::openat(&fd, part, flags, Mode::empty())?
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => return Err(SafeFsError::Symlink(here)),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(created)
}

fn chown_at(dir: &impl AsFd, name: &OsStr, uid: u32, gid: u32) -> Result<(), SafeFsError> {
    let (uid, gid) = ids(uid, gid);
    rfs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn ids(uid: u32, gid: u32) -> (rustix::process::Uid, rustix::process::Gid) {
    (
        rustix::process::Uid::from_raw(uid),
        rustix::process::Gid::from_raw(gid),
    )
}

/// Owner, group and permission bits of a file, not following a final symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Dir {
    /// `lstat` of an entry.
    pub fn stat(&self, name: &OsStr) -> Result<rfs::Stat, SafeFsError> {
        Ok(rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?)
    }

    /// The directory's own owner and mode.
    pub fn ownership(&self) -> Result<Ownership, SafeFsError> {
        let st = rfs::fstat(&self.fd)?;
        Ok(Ownership {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
        })
    }

    /// Remove a regular file (never a symlink's target, never a directory).
    pub fn remove_file(&self, name: &OsStr) -> Result<(), SafeFsError> {
        let st = self.stat(name)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(SafeFsError::NotAFile);
        }
        rfs::unlinkat(&self.fd, name, AtFlags::empty())?;
        Ok(())
    }

    /// Remove an empty subdirectory; `Ok(false)` when it is not empty.
    pub fn remove_empty_dir(&self, name: &OsStr) -> Result<bool, SafeFsError> {
        match rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace (or create) `name` atomically with `data`: a temporary file named the way
    /// importlib names its own (`NAME.DIGITS`, which pycguard reports as an orphan should a
    /// crash leave one), then `fchown`/`fchmod`, then `renameat` over `name`.
    pub fn write_atomically(
        &self,
        name: &OsStr,
        data: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), SafeFsError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut tmp = OsString::from(name);
        tmp.push(format!(
            ".{}{:06}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = rfs::openat(
            &self.fd,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let result = (|| -> Result<(), SafeFsError> {
            let mut written = 0;
            while written < data.len() {
                written += rustix::io::write(&file, &data[written..])?;
            }
            if let Some((uid, gid)) = owner {
                let (uid, gid) = ids(uid, gid);
                rfs::fchown(&file, Some(uid), Some(gid))?;
            }
            rfs::fchmod(&file, Mode::from_raw_mode(mode))?;
            rfs::renameat(&self.fd, &tmp, &self.fd, name)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rfs::unlinkat(&self.fd, &tmp, AtFlags::empty());
        }
        result
    }

    /// Names in this directory (for "is it empty now?" and debris).
    pub fn is_empty(&self) -> Result<bool, SafeFsError> {
        let dup = rfs::openat(
            &self.fd,
            ".",
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for entry in rfs::Dir::read_from(&dup)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Remove a whole subtree without following any symlink inside it (symlinks are
    /// removed as links). Used for tool caches such as `.pytest_cache`.
    pub fn remove_tree(&self, name: &OsStr) -> Result<(), SafeFsError> {
        let st = self.stat(name)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sub = Dir {
                    fd: rfs::openat(
                        &self.fd,
                        name,
                        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?,
                };
                let mut names = Vec::new();
                for entry in rfs::Dir::read_from(&sub.fd)? {
                    let entry = entry?;
                    let n = entry.file_name().to_bytes();
                    if n != b"." && n != b".." {
                        names.push(OsStr::from_bytes(n).to_os_string());
                    }
                }
                for n in names {
                    sub.remove_tree(&n)?;
                }
                rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?;
            }
            _ => rfs::unlinkat(&self.fd, name, AtFlags::empty())?,
        }
        Ok(())
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The process umask (read without changing it for long).
pub fn umask() -> u32 {
    let old = rustix::process::umask(Mode::from_raw_mode(0o022));
    rustix::process::umask(old);
    old.bits()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn refuses_symlinked_directories_beneath_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("x.cpython-312.pyc"), b"victim").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("__pycache__")).unwrap();
        let err = open_dir_beneath(t.path(), &t.path().join("__pycache__"), None)
            .err()
            .unwrap();
        assert!(matches!(err, SafeFsError::Symlink(_)), "{err}");
        assert!(outside.path().join("x.cpython-312.pyc").exists());
    }

    #[test]
    fn removes_only_regular_files() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("target"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.path().join("target"), t.path().join("link.pyc"))
            .unwrap();
        fs::create_dir(t.path().join("d.pyc")).unwrap();
        fs::write(t.path().join("f.pyc"), b"x").unwrap();
        let dir = open_dir_beneath(t.path(), t.path(), None).unwrap();
        assert!(matches!(
            dir.remove_file(OsStr::new("link.pyc")),
            Err(SafeFsError::NotAFile)
        ));
        assert!(matches!(
            dir.remove_file(OsStr::new("d.pyc")),
            Err(SafeFsError::NotAFile)
        ));
        dir.remove_file(OsStr::new("f.pyc")).unwrap();
        assert!(!t.path().join("f.pyc").exists());
        assert_eq!(fs::read(outside.path().join("target")).unwrap(), b"keep");
    }

    #[test]
    fn writes_atomically_with_mode_and_no_leftovers() {
        let t = tempfile::tempdir().unwrap();
        let dir = open_dir_beneath(t.path(), &t.path().join("__pycache__"), Some(None)).unwrap();
        dir.write_atomically(OsStr::new("m.cpython-312.pyc"), b"new", 0o644, None)
            .unwrap();
        let p = t.path().join("__pycache__/m.cpython-312.pyc");
        assert_eq!(fs::read(&p).unwrap(), b"new");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // A symlink in the target's place is replaced, its target untouched.
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("t"), b"keep").unwrap();
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(outside.path().join("t"), &p).unwrap();
        dir.write_atomically(OsStr::new("m.cpython-312.pyc"), b"newer", 0o644, None)
            .unwrap();
        assert_eq!(fs::read(outside.path().join("t")).unwrap(), b"keep");
        assert_eq!(fs::read(&p).unwrap(), b"newer");
        let names: Vec<_> = fs::read_dir(t.path().join("__pycache__"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("m.cpython-312.pyc")]);
    }

    #[test]
    fn removes_trees_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), b"k").unwrap();
        fs::create_dir_all(t.path().join(".pytest_cache/v/cache")).unwrap();
        fs::write(t.path().join(".pytest_cache/v/cache/lastfailed"), b"{}").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join(".pytest_cache/v/out")).unwrap();
        let dir = open_dir_beneath(t.path(), t.path(), None).unwrap();
        dir.remove_tree(OsStr::new(".pytest_cache")).unwrap();
        assert!(!t.path().join(".pytest_cache").exists());
        assert!(outside.path().join("keep").exists());
    }
}
