//! The running Python processes, read from `/proc` only.
//!
//! For `ps` and `doctor`: which processes run code from a tree, since when, under which
//! systemd unit, from which working directory and virtualenv. Everything comes from files
//! of `/proc/PID` — `exe` and `cwd` (link targets), `cmdline`, `stat` (the start time in
//! clock ticks after boot, with `/proc/stat`'s `btime`), `status` (uids), `environ` (where
//! readable: our own processes, or all as root) and `cgroup` (the unit). Nothing is
//! attached to (no ptrace), nothing of the target is executed or imported, and no file
//! the target names is run: needrestart's history (CVE-2024-48990…48992: running an
//! interpreter found through a target's environment gave root to local users) is why.
//! Files the target names (its script, its `pyvenv.cfg`) are only `stat`ed or looked up.
//!
//! A process is a Python one when its executable (`/proc/PID/exe`) has a CPython name
//! (`python`, `python3`, `python3.12`…; pyenv, uv-managed and venv interpreters all end
//! in one) and starts with the ELF magic, or when it is the resolved file of an
//! interpreter pycguard discovered. A name regex over `comm` or `argv[0]` is never used:
//! `exe` is what the kernel runs.
//!
//! **Start time resolution.** `/proc/PID/stat` gives the start in clock ticks after boot
//! (1/100 s on Linux) and `btime` the boot time in *whole* seconds (and the kernel's
//! estimate of it may move by a second between reads), so a start time is known to
//! [`start_tolerance_ns`]: 1 s plus one tick. A file changed within that window of a start
//! cannot be ordered with it; callers say so instead of guessing.

pub mod parse;
pub mod running;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use parse::{PythonCommand, Runs};

/// The start-time tolerance on this machine: one second (`btime`) plus one clock tick.
pub fn start_tolerance_ns() -> i128 {
    let hz = rustix::param::clock_ticks_per_second().max(1) as i128;
    1_000_000_000 + 1_000_000_000 / hz
}

/// No `/proc` file pycguard reads is larger than this (a `cmdline` or `environ` is at
/// most a few hundred KiB).
const PROC_READ_LIMIT: u64 = 4 << 20;

/// One Python process.
#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    /// `/proc/PID/exe`'s target (without ` (deleted)`).
    pub exe: PathBuf,
    /// The executable was deleted or replaced since the process started.
    pub exe_deleted: bool,
    pub argv: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    /// Its working directory was removed (a deleted release).
    pub cwd_deleted: bool,
    /// The start time in nanoseconds since the epoch, to [`start_tolerance_ns`].
    pub started_ns: i128,
    /// Real and effective uid.
    pub uids: Option<(u32, u32)>,
    /// `None` when `/proc/PID/environ` could not be read (another user's process).
    pub environ: Option<Vec<(OsString, OsString)>>,
    /// The systemd unit of its cgroup.
    pub unit: Option<String>,
    pub command: PythonCommand,
    /// The script it runs, absolute (against its cwd).
    pub script: Option<PathBuf>,
    /// The file `-m MODULE` names when it lies in the working directory (which `-m`
    /// puts first on `sys.path`).
    pub module_file: Option<PathBuf>,
    /// Its virtualenv: `argv[0]`'s `../pyvenv.cfg` (what Python itself reads), else
    /// `$VIRTUAL_ENV` of its environment.
    pub venv: Option<PathBuf>,
}

impl Process {
    /// A variable of its environment (`None` when unset or unreadable).
    pub fn env(&self, name: &str) -> Option<&OsStr> {
        self.environ
            .as_ref()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_os_str())
            .filter(|v| !v.is_empty())
    }

    /// Does it write caches? Not with `-B`, nor with `PYTHONDONTWRITEBYTECODE` (unless
    /// `-E`/`-I` hides it); unknown environments count as writing.
    pub fn writes_caches(&self) -> bool {
        if self.command.no_write {
            return false;
        }
        self.command.ignores_environment || self.env("PYTHONDONTWRITEBYTECODE").is_none()
    }

    /// Every path of it that may lie in a tree: script, module file, cwd, virtualenv.
    pub fn places(&self) -> impl Iterator<Item = &Path> {
        [&self.script, &self.module_file, &self.cwd, &self.venv]
            .into_iter()
            .filter_map(|p| p.as_deref())
    }
}

/// A process that could not be read (it may have ended meanwhile).
#[derive(Clone, Debug)]
pub struct Unreadable {
    pub pid: u32,
    pub message: String,
}

/// What listing the processes gave.
#[derive(Debug, Default)]
pub struct Listing {
    pub processes: Vec<Process>,
    /// Processes whose executable could not be read (another user's, without root).
    pub hidden: usize,
    pub unreadable: Vec<Unreadable>,
}

/// Every Python process visible in `/proc` (see the module docs). `known` are the
/// resolved executables of the interpreters pycguard discovered.
pub fn python_processes(known: &[PathBuf]) -> Listing {
    python_processes_in(Path::new("/proc"), known)
}

fn python_processes_in(proc_root: &Path, known: &[PathBuf]) -> Listing {
    let mut listing = Listing::default();
    let boot = read_limited(&proc_root.join("stat"))
        .ok()
        .and_then(|b| parse::boot_time(&b));
    let hz = rustix::param::clock_ticks_per_second().max(1) as i128;
    let own = std::process::id();
    let Ok(entries) = fs::read_dir(proc_root) else {
        return listing;
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != own)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let exe_target = match fs::read_link(dir.join("exe")) {
            Ok(t) => t,
            // Kernel threads have no executable; another user's process hides it.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                listing.hidden += 1;
                continue;
            }
            Err(_) => continue,
        };
        let (exe, exe_deleted) = parse::strip_deleted(exe_target.as_os_str());
        if !is_python(&dir, &exe, known) {
            continue;
        }
        match read_process(pid, &dir, exe, exe_deleted, boot, hz) {
            Ok(p) => listing.processes.push(p),
            Err(message) => listing.unreadable.push(Unreadable { pid, message }),
        }
    }
    listing
}

/// A CPython executable: a known interpreter, or a CPython name and an ELF file (read
/// through `/proc/PID/exe`, which is the very file the process runs even when replaced).
fn is_python(dir: &Path, exe: &Path, known: &[PathBuf]) -> bool {
    if known.iter().any(|k| k == exe) {
        return true;
    }
    if !exe
        .file_name()
        .is_some_and(parse::is_python_executable_name)
    {
        return false;
    }
    let mut head = [0u8; 4];
    fs::File::open(dir.join("exe"))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == *b"\x7fELF"
}

fn read_process(
    pid: u32,
    dir: &Path,
    exe: PathBuf,
    exe_deleted: bool,
    boot: Option<i64>,
    hz: i128,
) -> Result<Process, String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {}", crate::read::io_message(&e));
    let argv =
        parse::nul_separated(&read_limited(&dir.join("cmdline")).map_err(|e| io("cmdline", e))?);
    let stat = read_limited(&dir.join("stat")).map_err(|e| io("stat", e))?;
    let ticks = parse::start_ticks(&stat).ok_or("stat: no start time")?;
    let boot = boot.ok_or("/proc/stat: no btime")?;
    let started_ns = boot as i128 * 1_000_000_000 + ticks as i128 * 1_000_000_000 / hz;
    let (cwd, cwd_deleted) = match fs::read_link(dir.join("cwd")) {
        Ok(t) => {
            let (p, d) = parse::strip_deleted(t.as_os_str());
            (Some(p), d)
        }
        Err(_) => (None, false),
    };
    let environ = read_limited(&dir.join("environ"))
        .ok()
        .map(|b| parse::environ(&b));
    let unit = read_limited(&dir.join("cgroup"))
        .ok()
        .and_then(|b| parse::systemd_unit(&b));
    let uids = read_limited(&dir.join("status"))
        .ok()
        .and_then(|b| parse::uids(&b));
    let command = parse::python_command(argv.get(1..).unwrap_or_default());
    let absolute = |p: &Path| -> Option<PathBuf> {
        if p.is_absolute() {
            Some(crate::layout::lexically_absolute(Path::new("/"), p))
        } else {
            cwd.as_deref()
                .map(|c| crate::layout::lexically_absolute(c, p))
        }
    };
    let script = match &command.runs {
        Runs::Script(s) => absolute(s),
        _ => None,
    };
    let module_file = match (&command.runs, &cwd) {
        (Runs::Module(m), Some(cwd)) => module_in(cwd, m),
        _ => None,
    };
    let mut process = Process {
        pid,
        exe,
        exe_deleted,
        argv,
        cwd,
        cwd_deleted,
        started_ns,
        uids,
        environ,
        unit,
        command,
        script,
        module_file,
        venv: None,
    };
    process.venv = venv_of(&process);
    Ok(process)
}

/// The file `-m module` runs when the module lies in `dir`: `a/b.py`, `a/b/__main__.py`.
fn module_in(dir: &Path, module: &str) -> Option<PathBuf> {
    let rel: PathBuf = module.split('.').collect();
    let as_file = dir.join(&rel).with_extension("py");
    if as_file.is_file() {
        return Some(as_file);
    }
    let package = dir.join(&rel).join("__main__.py");
    package.is_file().then_some(package)
}

/// The virtualenv of a process (see [`Process::venv`]); `pyvenv.cfg` is only looked at.
fn venv_of(p: &Process) -> Option<PathBuf> {
    let argv0 = p.argv.first()?;
    if argv0.as_bytes().contains(&b'/') {
        let path = match &p.cwd {
            Some(cwd) => crate::layout::lexically_absolute(cwd, Path::new(argv0)),
            None => PathBuf::from(argv0),
        };
        if let Some(root) = path.parent().and_then(Path::parent) {
            if root.join("pyvenv.cfg").is_file() {
                return Some(root.to_path_buf());
            }
        }
    }
    if let Some(root) = p.exe.parent().and_then(Path::parent) {
        if root.join("pyvenv.cfg").is_file() {
            return Some(root.to_path_buf());
        }
    }
    p.env("VIRTUAL_ENV")
        .map(PathBuf::from)
        .filter(|v| v.is_absolute() && v.join("pyvenv.cfg").is_file())
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    fs::File::open(path)?
        .take(PROC_READ_LIMIT)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A release directory a `current` symlink no longer points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldRelease {
    /// The release directory holding the working directory.
    pub release: PathBuf,
    /// The `current` symlink.
    pub link: PathBuf,
    /// Where it points now.
    pub points_to: PathBuf,
}

/// Is `cwd` inside a release directory (`…/releases/R`) that a `current` symlink beside
/// the releases (`…/current`, or `…/releases/current`) no longer points to? The symlink
/// is only read, never followed into anything that is run.
pub fn old_release(cwd: &Path) -> Option<OldRelease> {
    for release in cwd.ancestors() {
        let Some(releases) = release.parent() else {
            break;
        };
        if release.file_name().is_none() {
            break;
        }
        let candidates = [
            Some(releases.join("current")),
            releases.parent().map(|g| g.join("current")),
        ];
        for link in candidates.into_iter().flatten() {
            let Ok(meta) = fs::symlink_metadata(&link) else {
                continue;
            };
            if !meta.file_type().is_symlink() || link == release {
                continue;
            }
            let Ok(target) = fs::canonicalize(&link) else {
                continue;
            };
            let canonical_releases = fs::canonicalize(releases).unwrap_or(releases.to_path_buf());
            if target.parent() != Some(canonical_releases.as_path()) {
                continue;
            }
            let here = canonical_releases.join(release.file_name()?);
            if target != here {
                return Some(OldRelease {
                    release: release.to_path_buf(),
                    link,
                    points_to: target,
                });
            }
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn this_test_is_not_python_but_its_own_proc_entry_reads() {
        let dir = PathBuf::from(format!("/proc/{}", std::process::id()));
        let exe = fs::read_link(dir.join("exe")).unwrap();
        assert!(!is_python(&dir, &exe, &[]));
        // Known as an interpreter: then it is one, whatever its name.
        assert!(is_python(&dir, &exe, std::slice::from_ref(&exe)));
        let hz = rustix::param::clock_ticks_per_second() as i128;
        let boot = parse::boot_time(&read_limited(Path::new("/proc/stat")).unwrap());
        let p = read_process(std::process::id(), &dir, exe, false, boot, hz).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i128;
        assert!(
            p.started_ns <= now + start_tolerance_ns(),
            "started in the past"
        );
        assert!(
            now - p.started_ns < 24 * 3600 * 1_000_000_000,
            "not a day ago"
        );
        assert_eq!(p.cwd, std::env::current_dir().ok());
        assert!(p.environ.is_some());
    }

    #[test]
    fn old_releases_are_found_by_their_current_link() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().canonicalize().unwrap();
        fs::create_dir_all(app.join("releases/r1/src")).unwrap();
        fs::create_dir_all(app.join("releases/r2")).unwrap();
        symlink("releases/r2", app.join("current")).unwrap();
        let old = old_release(&app.join("releases/r1/src")).unwrap();
        assert_eq!(old.release, app.join("releases/r1"));
        assert_eq!(old.link, app.join("current"));
        assert_eq!(old.points_to, app.join("releases/r2"));
        assert_eq!(old_release(&app.join("releases/r2")), None);
        // A deleted release (cwd gone) is still an old one.
        assert!(old_release(&app.join("releases/r0")).is_some());
        // Without a current link: nothing to say.
        fs::remove_file(app.join("current")).unwrap();
        assert_eq!(old_release(&app.join("releases/r1")), None);
        // A link inside the releases directory counts too.
        symlink("r2", app.join("releases/current")).unwrap();
        assert!(old_release(&app.join("releases/r1")).is_some());
    }
}
