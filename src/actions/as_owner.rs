//! Opening a source with the file-system credentials of the user who will own its cache.
//!
//! Run as root, `fix` and `compile` give each new cache the owner of its directory (so a
//! service user can replace it later). That must not let this owner read, through the
//! cache's constants, a source they could not read themselves: a user-owned tree whose
//! `x.py` is a symlink to a root-only file would otherwise get a readable copy of it. So
//! as root every source whose cache goes to another user is opened *as that user*: by a
//! helper thread that switches its own credentials (uid, gid and supplementary groups
//! from the user database, via the per-thread `setresuid`/`setresgid`/`setgroups`
//! system calls — Linux credentials are per thread at that level, and a thread whose
//! uids are all non-zero has no capabilities left) and opens the file
//! `O_RDONLY | O_NONBLOCK`. The kernel then applies every rule — modes, ACLs, directory
//! search permission along the symlink's way, LSMs — exactly as for that user. The
//! returned descriptor is what root reads and compiles, so a symlink swapped after the
//! check cannot point root at something else. A source the owner cannot open is not
//! compiled; the caller reports it.
//!
//! One thread per owner lives as long as the [`Opener`]; it only ever opens files.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

/// The group used for a uid that has no entry in the user database (nobody's group).
const NO_GROUP: u32 = 65534;

/// Why a source could not be opened as its cache's owner.
#[derive(Debug, thiserror::Error)]
pub enum AsOwnerError {
    /// The owner may not read it (permission denied to that user).
    #[error("its owner uid {uid} cannot read the source")]
    Denied { uid: u32 },
    /// Opening failed for another reason (vanished, …).
    #[error("cannot open the source: {0}")]
    Open(std::io::Error),
    /// The helper thread could not take the owner's credentials (then nothing is read).
    #[error("cannot take the credentials of uid {uid} to check the source: {message}")]
    Credentials { uid: u32, message: String },
}

type Request = (PathBuf, Sender<Result<OwnedFd, Errno>>);

struct Helper {
    requests: Sender<Request>,
    /// Set when the thread could not switch credentials.
    failed: Receiver<String>,
}

/// Opens files as other users (see the module docs).
#[derive(Default)]
pub struct Opener {
    helpers: HashMap<u32, Helper>,
}

impl Opener {
    pub fn new() -> Opener {
        Opener::default()
    }

    /// Open `path` (following symlinks, as the importer does) read-only and non-blocking
    /// with the credentials of `uid`.
    pub fn open(&mut self, uid: u32, path: &Path) -> Result<OwnedFd, AsOwnerError> {
        let helper = self.helpers.entry(uid).or_insert_with(|| spawn(uid));
        let (reply, answer) = mpsc::channel();
        // A failed send drops `reply`, so `recv` below reports the helper's end.
        let _ = helper.requests.send((path.to_path_buf(), reply));
        match answer.recv() {
            Ok(Ok(fd)) => Ok(fd),
            Ok(Err(Errno::ACCESS | Errno::PERM)) => Err(AsOwnerError::Denied { uid }),
            Ok(Err(e)) => Err(AsOwnerError::Open(e.into())),
            Err(_) => {
                let message = helper
                    .failed
                    .try_recv()
                    .unwrap_or_else(|_| "the helper thread ended".into());
                // The next caller starts a new helper (and learns the same).
                self.helpers.remove(&uid);
                Err(AsOwnerError::Credentials { uid, message })
            }
        }
    }
}

fn spawn(uid: u32) -> Helper {
    let (requests, incoming) = mpsc::channel::<Request>();
    let (fail, failed) = mpsc::channel();
    let (gid, groups) = credentials(uid);
    std::thread::Builder::new()
        .name(format!("as-uid-{uid}"))
        .spawn(move || {
            if let Err(e) = become_user(uid, gid, &groups) {
                let _ = fail.send(e.to_string());
                return; // Dropping `incoming` fails every request.
            }
            for (path, reply) in incoming {
                let opened = rustix::fs::open(
                    &path,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
                    Mode::empty(),
                );
                let _ = reply.send(opened);
            }
        })
        // A thread that cannot be started drops `incoming`: every request then fails.
        .ok();
    Helper { requests, failed }
}

/// Switch this thread (only) to `uid`, `gid` and `groups`; groups first, uid last (after
/// it, no capability is left to change the others).
pub(crate) fn become_user(uid: u32, gid: u32, groups: &[u32]) -> Result<(), Errno> {
    let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
    rustix::thread::set_thread_groups(&groups)?;
    let g = Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(g, g, g)?;
    let u = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(u, u, u)?;
    Ok(())
}

/// The primary group and supplementary groups of `uid` from the user database; a uid
/// without an entry gets nobody's group and no others.
pub(crate) fn credentials(uid: u32) -> (u32, Vec<u32>) {
    use nix::unistd::{getgrouplist, User};
    let Ok(Some(user)) = User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return (NO_GROUP, Vec::new());
    };
    let gid = user.gid.as_raw();
    let groups = std::ffi::CString::new(user.name.as_bytes())
        .ok()
        .and_then(|name| getgrouplist(&name, user.gid).ok())
        .map(|groups| groups.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    (gid, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_as_another_user_only_what_they_may_read() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("SKIP: opens_as_another_user_only_what_they_may_read needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let secret = private.join("secret.py");
        std::fs::write(&secret, b"S = 1\n").unwrap();
        let open = dir.path().join("open.py");
        std::fs::write(&open, b"O = 1\n").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut opener = Opener::new();
        // nobody (65534) may read the open file but not the one in a 0700 directory.
        assert!(opener.open(65534, &open).is_ok());
        assert!(matches!(
            opener.open(65534, &secret),
            Err(AsOwnerError::Denied { uid: 65534 })
        ));
        // Root's own credentials are untouched: this thread still reads it.
        assert!(std::fs::read(&secret).is_ok());
        assert!(matches!(
            opener.open(65534, &dir.path().join("missing.py")),
            Err(AsOwnerError::Open(_))
        ));
    }
}
