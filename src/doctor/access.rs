//! Can a given user create or write a cache directory? Asked of the kernel, never by
//! writing.
//!
//! Why this way: the answer must be the one the kernel gives that user — mode bits, the
//! owner and group, POSIX ACLs, search permission on every directory on the way, a
//! read-only mount, LSMs. Recomputing that from mode bits (and parsing ACL xattrs by
//! hand) would miss some of it; writing a probe file would change the tree. So a helper
//! thread takes the user's credentials — uid, primary group and supplementary groups
//! from the user database, with the per-thread `setgroups`/`setresgid`/`setresuid`
//! system calls that [`crate::actions::as_owner`] uses (Linux credentials are per thread
//! at that level, and a thread whose uids are all non-zero has no capabilities left) —
//! and calls `access(W_OK | X_OK)` on the directory: real and effective ids are then the
//! user's, so the kernel applies exactly that user's rights (`faccessat` without
//! `AT_EACCESS` suffices, since the two agree). The thread only ever calls `access`;
//! nothing is opened, created or run.
//!
//! A `__pycache__` that exists must be writable and searchable; one that does not must
//! be creatable: its parent writable and searchable (`os.makedirs` under a pycache
//! prefix: the nearest existing ancestor).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use rustix::fs::Access;
use rustix::io::Errno;

use crate::actions::as_owner;

/// Why a user cannot make or write a cache directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// The directory the kernel refused: the cache directory, or the existing directory
    /// it would be created in.
    pub at: PathBuf,
    /// The cache directory exists (else it would have to be created).
    pub exists: bool,
    /// The kernel's answer (`EACCES`, `EROFS`…), in words.
    pub reason: String,
}

/// Why the checker could not work.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("cannot take the credentials of uid {uid}: {message}")]
    Credentials { uid: u32, message: String },
}

type Request = (PathBuf, Sender<Result<(), Errno>>);

/// Asks the kernel, as one user, whether directories are writable (see the module docs).
pub struct Checker {
    uid: u32,
    requests: Sender<Request>,
    failed: Receiver<String>,
}

impl Checker {
    /// A checker for `uid` (its thread starts now).
    pub fn new(uid: u32) -> Checker {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (fail, failed) = mpsc::channel();
        let (gid, groups) = as_owner::credentials(uid);
        std::thread::Builder::new()
            .name(format!("access-uid-{uid}"))
            .spawn(move || {
                if let Err(e) = as_owner::become_user(uid, gid, &groups) {
                    let _ = fail.send(e.to_string());
                    return;
                }
                for (path, reply) in incoming {
                    let _ = reply.send(rustix::fs::access(
                        &path,
                        Access::WRITE_OK | Access::EXEC_OK,
                    ));
                }
            })
            .ok();
        Checker {
            uid,
            requests,
            failed,
        }
    }

    /// May the user write (and search) `dir`?
    fn writable(&self, dir: &Path) -> Result<Result<(), Errno>, AccessError> {
        let (reply, answer) = mpsc::channel();
        let _ = self.requests.send((dir.to_path_buf(), reply));
        answer.recv().map_err(|_| AccessError::Credentials {
            uid: self.uid,
            message: self
                .failed
                .try_recv()
                .unwrap_or_else(|_| "the helper thread ended".into()),
        })
    }

    /// Can the user write caches into `cache_dir` (creating it, and the directories
    /// above it up to the nearest existing one, when missing)? `None`: yes.
    pub fn cache_dir(&self, cache_dir: &Path) -> Result<Option<Denied>, AccessError> {
        let exists = std::fs::symlink_metadata(cache_dir).is_ok_and(|m| m.is_dir());
        let at = if exists {
            cache_dir.to_path_buf()
        } else {
            // A relative path's last ancestor is "": the current directory.
            let existing = cache_dir
                .ancestors()
                .skip(1)
                .map(|a| {
                    if a.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        a
                    }
                })
                .find(|a| std::fs::symlink_metadata(a).is_ok());
            match existing {
                Some(a) => a.to_path_buf(),
                None => return Ok(None),
            }
        };
        Ok(match self.writable(&at)? {
            Ok(()) => None,
            Err(errno) => Some(Denied {
                at,
                exists,
                reason: crate::read::io_message(&errno.into()),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn asks_the_kernel_as_the_user() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("SKIP: asks_the_kernel_as_the_user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let nobody = Checker::new(65534);
        // Root may write anything; nobody only the 0777 directory.
        assert_eq!(nobody.cache_dir(&open.join("__pycache__")).unwrap(), None);
        let denied = nobody
            .cache_dir(&dir.path().join("__pycache__"))
            .unwrap()
            .unwrap();
        assert_eq!(denied.at, dir.path());
        assert!(!denied.exists);
        std::fs::create_dir(dir.path().join("__pycache__")).unwrap();
        let denied = nobody
            .cache_dir(&dir.path().join("__pycache__"))
            .unwrap()
            .unwrap();
        assert!(denied.exists);
        // Nothing was written by asking.
        assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
        assert_eq!(
            Checker::new(0).cache_dir(&dir.path().join("x")).unwrap(),
            None
        );
    }
}
