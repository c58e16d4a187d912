//! Which executables pycguard may start: never one another user could have put there.
//!
//! pycguard runs as root (`sudo pycguard fix`, `ExecStartPre=+…`) on trees other users
//! own, and finds interpreters on its own: virtualenvs inside those trees, pyenv, uv,
//! `$PATH`. Starting an "interpreter" a user planted (`evil/pyvenv.cfg` + `evil/bin/python`,
//! a shell script) would run that user's code as root. So an interpreter found on its own
//! is started only when its resolved file and every directory above it are owned by root
//! or by the user pycguard runs as, and none of them is writable by its group or by
//! everyone — except a directory with the sticky bit (`/tmp`, mode 1777): there only an
//! entry's owner (or root) can rename or remove it, so it is exactly as safe as the owner
//! of the entry below it, which is checked in turn (a file another user created there
//! first is refused by its owner). The same holds for what the interpreter reads at start-up next to
//! itself: `pyvenv.cfg` and its standard library (`ROOT/lib`, `ROOT/lib/pythonX.Y`).
//! pycguard always starts the resolved file itself, never the symlink it was found as, so
//! the directories checked are the ones the executable really comes from.
//!
//! An explicit `--python PATH` is the user's choice: its owner is not checked, but one
//! that is writable by its group or by everyone (the file or any directory above it) is
//! still refused. Directories, non-executable and missing files are refused with a
//! message that says so. Only `lstat` is used; nothing here starts a process.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How strictly to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Found on its own: owner root or the invoking user, nothing writable by others.
    Discovered,
    /// `--python PATH`: any owner, nothing writable by others.
    Explicit,
}

/// Why an executable is not started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it does not exist")]
    Missing,
    #[error("cannot check {}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("it is a directory, not an interpreter")]
    Directory,
    #[error("it is not a regular file")]
    NotFile,
    #[error("it is not executable")]
    NotExecutable,
    #[error("not run: {} is owned by uid {uid}, neither root nor the user running pycguard", path.display())]
    Owner { path: PathBuf, uid: u32 },
    #[error("not run: {} is writable by {who} (mode {mode:04o})", path.display())]
    Writable {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
}

/// Checks executables, remembering the directories it already checked.
pub struct Checker {
    euid: u32,
    checked: HashMap<(PathBuf, bool), Result<(), Refusal>>,
}

impl Checker {
    /// A checker for a process whose effective uid is `euid`.
    pub fn new(euid: u32) -> Checker {
        Checker {
            euid,
            checked: HashMap::new(),
        }
    }

    /// May `resolved` (an absolute path without symlinks: the file that would be run) be
    /// started under `policy`?
    pub fn check(&mut self, resolved: &Path, policy: Policy) -> Result<(), Refusal> {
        let meta = match fs::symlink_metadata(resolved) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Refusal::Missing),
            Err(e) => {
                return Err(Refusal::Unreadable {
                    path: resolved.to_path_buf(),
                    message: crate::read::io_message(&e),
                })
            }
        };
        if meta.is_dir() {
            return Err(Refusal::Directory);
        }
        if !meta.is_file() {
            return Err(Refusal::NotFile);
        }
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(Refusal::NotExecutable);
        }
        self.owner_and_mode(resolved, &meta, policy)?;
        let strict = policy == Policy::Discovered;
        for dir in resolved.ancestors().skip(1) {
            if dir.as_os_str().is_empty() {
                continue;
            }
            self.dir(dir, policy, strict)?;
        }
        // What the interpreter reads at start-up from beside itself.
        let bin = resolved.parent();
        let root = bin.and_then(Path::parent);
        for cfg in [bin, root].into_iter().flatten() {
            self.optional(&cfg.join("pyvenv.cfg"), policy)?;
        }
        if let (Some(root), Some(stdlib)) = (root, stdlib_name(resolved)) {
            self.optional(&root.join("lib"), policy)?;
            self.optional(&root.join("lib").join(stdlib), policy)?;
        }
        Ok(())
    }

    fn dir(&mut self, dir: &Path, policy: Policy, strict: bool) -> Result<(), Refusal> {
        let key = (dir.to_path_buf(), strict);
        if let Some(known) = self.checked.get(&key) {
            return known.clone();
        }
        let result = match fs::symlink_metadata(dir) {
            Ok(meta) => self.owner_and_mode(dir, &meta, policy),
            Err(e) => Err(Refusal::Unreadable {
                path: dir.to_path_buf(),
                message: crate::read::io_message(&e),
            }),
        };
        self.checked.insert(key, result.clone());
        result
    }

    /// A file or directory that need not exist; when it does, the same rules apply.
    fn optional(&mut self, path: &Path, policy: Policy) -> Result<(), Refusal> {
        match fs::symlink_metadata(path) {
            Ok(meta) => self.owner_and_mode(path, &meta, policy),
            Err(_) => Ok(()),
        }
    }

    fn owner_and_mode(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        policy: Policy,
    ) -> Result<(), Refusal> {
        if policy == Policy::Discovered && meta.uid() != 0 && meta.uid() != self.euid {
            return Err(Refusal::Owner {
                path: path.to_path_buf(),
                uid: meta.uid(),
            });
        }
        let mode = meta.mode() & 0o7777;
        // A symlink's own mode bits mean nothing (and it is not followed here).
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        // Sticky directory: only an entry's owner can replace it; the entry's own owner
        // and mode are checked on the next step down.
        if meta.is_dir() && mode & 0o1000 != 0 {
            return Ok(());
        }
        let who = if mode & 0o002 != 0 {
            "everyone"
        } else if mode & 0o020 != 0 {
            "its group"
        } else {
            return Ok(());
        };
        Err(Refusal::Writable {
            path: path.to_path_buf(),
            who,
            mode,
        })
    }
}

/// `python3.12` → `python3.12` (the standard library's directory name under `ROOT/lib`).
fn stdlib_name(resolved: &Path) -> Option<String> {
    let name = resolved.file_name()?.to_str()?;
    let rest = name.strip_prefix("python")?;
    let version = rest.trim_end_matches(|c: char| c.is_ascii_lowercase());
    let (major, minor) = version.split_once('.')?;
    (!major.is_empty()
        && !minor.is_empty()
        && major.bytes().all(|b| b.is_ascii_digit())
        && minor.bytes().all(|b| b.is_ascii_digit()))
    .then(|| format!("python{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A private directory (0700) holding ROOT/bin/python3.12, all modes safe.
    fn layout() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        chmod(&base, 0o700);
        let exe = base.join("root/bin/python3.12");
        fs::create_dir_all(exe.parent().unwrap()).unwrap();
        fs::create_dir_all(base.join("root/lib/python3.12")).unwrap();
        for d in ["root", "root/bin", "root/lib", "root/lib/python3.12"] {
            chmod(&base.join(d), 0o755);
        }
        fs::write(&exe, b"#!/bin/sh\n").unwrap();
        chmod(&exe, 0o755);
        (dir, exe)
    }

    fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// Whether every directory above the temp dir is safe (it is on this machine's /tmp
    /// only when /tmp itself is not world-writable, which it always is): the tests below
    /// check the temp dir's own subtree with a checker that trusts what is above it.
    fn checker_trusting_above(base: &Path) -> Checker {
        let mut c = Checker::new(euid());
        for dir in base.ancestors().skip(1) {
            for strict in [true, false] {
                c.checked.insert((dir.to_path_buf(), strict), Ok(()));
            }
        }
        c
    }

    #[test]
    fn a_safe_layout_is_accepted_even_beneath_a_sticky_tmp() {
        let (dir, exe) = layout();
        let base = fs::canonicalize(dir.path()).unwrap();
        let mut c = checker_trusting_above(&base);
        assert_eq!(c.check(&exe, Policy::Discovered), Ok(()));
        assert_eq!(c.check(&exe, Policy::Explicit), Ok(()));
        // The real /tmp (1777) above it: sticky, so only the temp dir's owner (us) can
        // replace what is in it.
        assert_eq!(Checker::new(euid()).check(&exe, Policy::Discovered), Ok(()));
        // A sticky directory inside the layout is accepted too; a plain 0777 one is not.
        chmod(&base.join("root"), 0o1777);
        assert_eq!(
            checker_trusting_above(&base).check(&exe, Policy::Discovered),
            Ok(())
        );
        chmod(&base.join("root"), 0o777);
        assert!(matches!(
            checker_trusting_above(&base).check(&exe, Policy::Discovered),
            Err(Refusal::Writable {
                who: "everyone",
                ..
            })
        ));
    }

    #[test]
    fn writable_file_directory_stdlib_or_pyvenv_cfg_is_refused() {
        for (what, mode) in [
            ("root/bin/python3.12", 0o757),
            ("root/bin/python3.12", 0o775),
            ("root/bin", 0o777),
            ("root", 0o775),
            ("root/lib", 0o777),
            ("root/lib/python3.12", 0o777),
        ] {
            let (dir, exe) = layout();
            let base = fs::canonicalize(dir.path()).unwrap();
            chmod(&base.join(what), mode);
            for policy in [Policy::Discovered, Policy::Explicit] {
                let err = checker_trusting_above(&base)
                    .check(&exe, policy)
                    .unwrap_err();
                match &err {
                    Refusal::Writable { path, .. } => assert_eq!(path, &base.join(what)),
                    other => panic!("{what} {mode:o}: {other}"),
                }
                assert!(err.to_string().starts_with("not run: "), "{err}");
            }
        }
        let (dir, exe) = layout();
        let base = fs::canonicalize(dir.path()).unwrap();
        let cfg = base.join("root/pyvenv.cfg");
        fs::write(&cfg, b"home = /x\n").unwrap();
        chmod(&cfg, 0o666);
        assert!(matches!(
            checker_trusting_above(&base).check(&exe, Policy::Discovered),
            Err(Refusal::Writable { .. })
        ));
    }

    #[test]
    fn not_an_executable_file() {
        let (dir, exe) = layout();
        let base = fs::canonicalize(dir.path()).unwrap();
        let mut c = checker_trusting_above(&base);
        assert_eq!(
            c.check(&base.join("root/bin"), Policy::Explicit),
            Err(Refusal::Directory)
        );
        assert_eq!(
            c.check(&base.join("root/bin/nope"), Policy::Explicit),
            Err(Refusal::Missing)
        );
        chmod(&exe, 0o644);
        assert_eq!(c.check(&exe, Policy::Explicit), Err(Refusal::NotExecutable));
    }

    #[test]
    fn another_owner_is_refused_only_when_discovered() {
        if euid() != 0 {
            eprintln!("SKIP: another_owner_is_refused_only_when_discovered needs root (chown)");
            return;
        }
        let (dir, exe) = layout();
        let base = fs::canonicalize(dir.path()).unwrap();
        std::os::unix::fs::chown(&exe, Some(65534), None).unwrap();
        let mut c = checker_trusting_above(&base);
        assert_eq!(
            c.check(&exe, Policy::Discovered),
            Err(Refusal::Owner {
                path: exe.clone(),
                uid: 65534
            })
        );
        assert_eq!(c.check(&exe, Policy::Explicit), Ok(()));
        std::os::unix::fs::chown(&exe, Some(0), None).unwrap();
        std::os::unix::fs::chown(base.join("root"), Some(65534), None).unwrap();
        let mut c = checker_trusting_above(&base);
        assert!(matches!(
            c.check(&exe, Policy::Discovered),
            Err(Refusal::Owner { uid: 65534, .. })
        ));
    }

    #[test]
    fn stdlib_names() {
        assert_eq!(
            stdlib_name(Path::new("/r/bin/python3.12")).as_deref(),
            Some("python3.12")
        );
        assert_eq!(
            stdlib_name(Path::new("/r/bin/python3.6m")).as_deref(),
            Some("python3.6")
        );
        assert_eq!(stdlib_name(Path::new("/r/bin/python")), None);
        assert_eq!(stdlib_name(Path::new("/r/bin/pypy3.10")), None);
    }
}
