//! File operations that are safe to run as root on a tree someone else can write to.
//!
//! Every operation names a file by a root the user gave (which may itself be reached
//! through symlinks: the user chose it) and a path beneath it. The directories beneath the
//! root are opened one component at a time with `O_NOFOLLOW | O_DIRECTORY`, and the final
//! operation is an `*at` call on that directory descriptor, so a directory swapped for a
//! symlink between the scan and the action cannot redirect a delete or a write outside
//! the tree. Deletions only ever remove a regular file, a symlink itself (never its
//! target) or an empty directory; writes go to a temporary file in the same directory, get
//! their owner and mode, and are renamed into place (over a cache or a symlink, never over
//! a FIFO, device, socket or directory), so a crash leaves the old cache or the new one,
//! never half of one.

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
    #[error("{} is not beneath {}", crate::escape::path(.path), crate::escape::path(.root))]
    NotBeneath {
        path: std::path::PathBuf,
        root: std::path::PathBuf,
    },
    #[error("refusing to follow the symlink {}", crate::escape::path(.0))]
    Symlink(std::path::PathBuf),
    /// A path component that should be a directory is some other file.
    #[error("{} is {}, not a directory", crate::escape::path(.path), .kind.describe())]
    NotADirectory {
        path: std::path::PathBuf,
        kind: crate::read::FileKind,
    },
    /// Something that is not a cache file sits where one goes: never removed or replaced.
    #[error("it is {}, not a cache file; pycguard never removes or replaces it (remove it by hand)", .0.describe())]
    NotACacheFile(crate::read::FileKind),
    #[error("{}", crate::read::io_message(.0))]
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
                let path = root.join(rel.iter().take(i + 1).collect::<std::path::PathBuf>());
                // Say what it is: a symlink is refused, anything else is not a directory.
                let kind = rfs::statat(&fd, *part, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| crate::read::FileKind::from_mode(st.st_mode))
                    .unwrap_or(crate::read::FileKind::Symlink);
                return Err(match kind {
                    crate::read::FileKind::Symlink => SafeFsError::Symlink(path),
                    kind => SafeFsError::NotADirectory { path, kind },
                });
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

impl Dir {
    /// `lstat` of an entry.
    pub fn stat(&self, name: &OsStr) -> Result<rfs::Stat, SafeFsError> {
        Ok(rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?)
    }

    /// Remove a regular file, or a symlink itself (never its target); anything else
    /// (a FIFO, device, socket or directory) is refused.
    pub fn remove_file(&self, name: &OsStr) -> Result<(), SafeFsError> {
        let st = self.stat(name)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile | FileType::Symlink => {}
            _ => {
                return Err(SafeFsError::NotACacheFile(
                    crate::read::FileKind::from_mode(st.st_mode),
                ))
            }
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
        // Replace a cache or a symlink (the link itself), never a FIFO, device, socket or
        // directory that sits where the cache goes.
        match self.stat(name) {
            Ok(st)
                if !matches!(
                    FileType::from_raw_mode(st.st_mode),
                    FileType::RegularFile | FileType::Symlink
                ) =>
            {
                return Err(SafeFsError::NotACacheFile(
                    crate::read::FileKind::from_mode(st.st_mode),
                ))
            }
            _ => {}
        }
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

    /// Remove a whole subtree without following any symlink inside it (symlinks are
    /// removed as links). Used for tool caches such as `.pytest_cache`.
    ///
    /// Iterative, holding one directory open at a time, so neither the stack nor the
    /// descriptor table limits the depth (a `.pytest_cache` nested 5,000 levels deep is
    /// removed like any other). It climbs back with `..`, and checks that each parent it
    /// reaches is the very directory it came from (device and inode): a directory moved
    /// while it is being removed ends the removal with an error instead of deleting
    /// elsewhere.
    pub fn remove_tree(&self, name: &OsStr) -> Result<(), SafeFsError> {
        let st = self.stat(name)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            rfs::unlinkat(&self.fd, name, AtFlags::empty())?;
            return Ok(());
        }
        /// One directory on the way down: its name in its parent, its identity, and the
        /// subdirectories not yet removed.
        struct Frame {
            name: OsString,
            id: (u64, u64),
            subdirs: Vec<OsString>,
        }
        let open_sub = |parent: &OwnedFd, name: &OsStr| {
            rfs::openat(
                parent,
                name,
                OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let identity = |fd: &OwnedFd| -> Result<(u64, u64), SafeFsError> {
            let st = rfs::fstat(fd)?;
            Ok((st.st_dev as u64, st.st_ino as u64))
        };
        // Remove the files of the open directory; return its subdirectories.
        let empty_files = |fd: &OwnedFd| -> Result<Vec<OsString>, SafeFsError> {
            let mut subdirs = Vec::new();
            let dup = rfs::openat(
                fd,
                ".",
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            for entry in rfs::Dir::read_from(&dup)? {
                let entry = entry?;
                let n = entry.file_name().to_bytes();
                if n == b"." || n == b".." {
                    continue;
                }
                let n = OsStr::from_bytes(n);
                let is_dir = match entry.file_type() {
                    FileType::Directory => true,
                    FileType::Unknown => rfs::statat(fd, n, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                    _ => false,
                };
                if is_dir {
                    subdirs.push(n.to_os_string());
                } else {
                    match rfs::unlinkat(fd, n, AtFlags::empty()) {
                        Ok(()) | Err(Errno::NOENT) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(subdirs)
        };
        let mut current = open_sub(&self.fd, name)?;
        let mut frames = vec![Frame {
            name: name.to_os_string(),
            id: identity(&current)?,
            subdirs: empty_files(&current)?,
        }];
        loop {
            let top = frames.last_mut().expect("never empty here");
            if let Some(sub) = top.subdirs.pop() {
                current = match open_sub(&current, &sub) {
                    Ok(fd) => fd,
                    // Gone meanwhile, or no longer a directory: removed as a file.
                    Err(Errno::NOENT) => continue,
                    Err(Errno::NOTDIR) | Err(Errno::LOOP) => {
                        match rfs::unlinkat(&current, &sub, AtFlags::empty()) {
                            Ok(()) | Err(Errno::NOENT) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    Err(e) => return Err(e.into()),
                };
                let id = identity(&current)?;
                let subdirs = empty_files(&current)?;
                frames.push(Frame {
                    name: sub,
                    id,
                    subdirs,
                });
                continue;
            }
            // `current` is empty now: climb to its parent and remove it.
            let done = frames.pop().expect("never empty here");
            let Some(parent) = frames.last() else {
                match rfs::unlinkat(&self.fd, &done.name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
            };
            let up = open_sub(&current, OsStr::new(".."))?;
            if identity(&up)? != parent.id {
                return Err(SafeFsError::Io(io::Error::other(
                    "a directory was moved while it was being removed; stopped",
                )));
            }
            current = up;
            match rfs::unlinkat(&current, &done.name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let _ = done.id;
        }
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
        // A symlink is removed as a link; its target is kept.
        dir.remove_file(OsStr::new("link.pyc")).unwrap();
        assert!(fs::symlink_metadata(t.path().join("link.pyc")).is_err());
        assert!(matches!(
            dir.remove_file(OsStr::new("d.pyc")),
            Err(SafeFsError::NotACacheFile(crate::read::FileKind::Directory))
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
    fn a_regular_file_in_a_directory_s_place_is_not_called_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("__pycache__"), b"not a dir").unwrap();
        let err = open_dir_beneath(t.path(), &t.path().join("__pycache__"), None)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .ends_with("__pycache__ is a regular file, not a directory"),
            "{err}"
        );
    }

    #[test]
    fn removes_a_tree_deeper_than_the_stack_or_the_descriptor_limit() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join(".pytest_cache");
        fs::create_dir(&top).unwrap();
        let mut fd = rfs::open(&top, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        for _ in 0..5000 {
            rfs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).unwrap();
            let f = rfs::openat(
                &fd,
                "f",
                OFlags::CREATE | OFlags::WRONLY,
                Mode::from_raw_mode(0o644),
            )
            .unwrap();
            drop(f);
            fd = rfs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        }
        drop(fd);
        let dir = open_dir_beneath(t.path(), t.path(), None).unwrap();
        // On a small thread stack, as a recursive removal would overflow it.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || dir.remove_tree(OsStr::new(".pytest_cache")).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(!top.exists());
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
