//! Finding the Python interpreters on this machine, and which one proves (or compiles) a
//! cache of a given magic number.
//!
//! Discovery needs no configuration: `--python PATH` first, then virtualenvs inside the
//! checked paths (`PATH/pyvenv.cfg`, `.venv`, `venv`, `env` and any direct subdirectory with
//! a `pyvenv.cfg`), pyenv versions (`$PYENV_ROOT`, `~/.pyenv`), uv-managed Pythons
//! (`$UV_PYTHON_INSTALL_DIR`, `$XDG_DATA_HOME/uv/python`, `~/.local/share/uv/python`), and
//! `python`, `python3`, `python3.X`, `python2.X` on `$PATH` (pyenv's shims are skipped:
//! the versions behind them are found directly). Executables that resolve to the same
//! file are asked once.
//!
//! Nothing found is started before [`trust`] allows it: an interpreter found on its own
//! must come from directories only root or the invoking user can change (one planted in a
//! user's tree is listed as refused, with why, and never run); an explicit `--python` must
//! not be writable by others. Each allowed one is asked, by a probe started as [`child`]
//! describes (isolated, in `/`, empty environment), for its implementation, version,
//! magic number, cache tag, executable and prefixes ([`answer::Answer`]). Plausible
//! answers are remembered in pycguard's cache directory ([`crate::store::probes`]) keyed
//! by the resolved executable's identity, so later runs only `stat` them; the worker that
//! later proves or compiles with an interpreter confirms the remembered answer in its
//! hello.
//!
//! Usable without `--deep`: the other commands find the interpreter for a magic number
//! with [`Interpreters::for_magic`].

pub mod answer;
pub mod child;
pub mod trust;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use answer::Answer;
pub use child::Flags;

use crate::pyc::magic::Series;
use crate::store::probes::ProbeMemo;
use crate::store::FileIdentity;
use trust::{Policy, Refusal};

/// How long one interpreter may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// Bytes of a probe's output read at most.
const PROBE_OUTPUT_LIMIT: usize = 64 * 1024;

/// Where an interpreter was found; also the order of preference between interpreters of
/// the same magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// `--python PATH`.
    Flag,
    /// A virtualenv inside the checked paths.
    Venv,
    Pyenv,
    Uv,
    /// `$PATH`.
    Path,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Flag => "--python",
            Origin::Venv => "venv",
            Origin::Pyenv => "pyenv",
            Origin::Uv => "uv",
            Origin::Path => "PATH",
        }
    }
}

/// One interpreter that answered the probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpreter {
    /// The executable as found.
    pub path: PathBuf,
    /// The executable with symlinks resolved: its identity, and the file that is run.
    pub resolved: PathBuf,
    /// The identity of that file when it was found (a rebuilt interpreter gets another).
    pub stamp: FileIdentity,
    /// `3.12.1`.
    pub version: String,
    /// The series its magic number belongs to (from pycguard's magic table); `None` for a
    /// magic pycguard does not know (a newer or pre-release interpreter).
    pub series: Option<Series>,
    /// `importlib.util.MAGIC_NUMBER` (2.7: `imp.get_magic()`).
    pub magic: [u8; 4],
    /// `sys.implementation.cache_tag`; `None` for Python 2.
    pub cache_tag: Option<String>,
    /// `cpython`, `pypy`… (`sys.implementation.name`).
    pub implementation: String,
    /// (major, minor) of `sys.version_info`.
    pub version_info: (u32, u32),
    pub origin: Origin,
    /// `sys.executable` as it answered (the resolved file, which is what is run).
    pub executable: PathBuf,
    /// `sys.prefix` and `sys.base_prefix` as it answered, symlinks resolved.
    pub prefixes: Vec<PathBuf>,
    /// The virtualenv it was found in (`PATH/../../pyvenv.cfg`), symlinks resolved.
    pub venv: Option<PathBuf>,
    /// pycguard's cache directory, when this answer was remembered there by an earlier
    /// run instead of asked in this one (a worker that contradicts it discards it).
    pub remembered_in: Option<PathBuf>,
}

impl Interpreter {
    /// `Python 3.12.1` / `PyPy 3.9 (7.3.x)`.
    pub fn display_name(&self) -> String {
        match self.implementation.as_str() {
            "cpython" => format!("Python {}", self.version),
            "pypy" => format!("PyPy {}", self.version),
            other => format!("{other} {}", self.version),
        }
    }

    /// The magic number's 16-bit value.
    pub fn magic_value(&self) -> u16 {
        u16::from_le_bytes([self.magic[0], self.magic[1]])
    }

    /// The isolation flags it understands.
    pub fn flags(&self) -> Flags {
        Flags::for_version(self.version_info)
    }

    /// Interpreter flags that isolate it from the user's environment and site-packages:
    /// `-I -S -B` where `-I` exists (3.4+), else `-E -s -S -B`.
    pub fn isolation_args(&self) -> &'static [&'static str] {
        self.flags().args()
    }

    /// The isolated command that runs `program` with it (see [`child`]).
    pub fn command(&self, program: &str) -> Command {
        child::command(&self.resolved, self.flags(), program)
    }

    /// Its answer, as a worker's hello must repeat it.
    pub fn answer(&self) -> Answer {
        Answer {
            implementation: self.implementation.clone(),
            version_info: self.version_info,
            version: self.version.clone(),
            magic: self.magic,
            cache_tag: self.cache_tag.clone(),
            executable: self.executable.clone(),
            prefixes: self.prefixes.clone(),
        }
    }

    /// Take the version a worker reported when everything else it said agrees with what
    /// was remembered (see [`Answer::same_build`]).
    pub fn adopt_version(&mut self, answer: &Answer) {
        self.version.clone_from(&answer.version);
    }

    /// What identifies the interpreter's compiler build for remembered proofs: the
    /// resolved executable, that file's identity (a rebuild or reinstall changes it) and
    /// what its compiler depends on in its answer. Not `sys.prefix` or `sys.executable`:
    /// every virtualenv made from one interpreter runs the same binary, so proofs made in
    /// one are shared by all.
    pub fn identity(&self) -> Vec<u8> {
        let mut id = self.resolved.as_os_str().as_bytes().to_vec();
        let stamp = &self.stamp;
        for v in [stamp.dev, stamp.ino, stamp.size] {
            id.extend_from_slice(&v.to_le_bytes());
        }
        id.extend_from_slice(&stamp.mtime_ns.to_le_bytes());
        id.extend_from_slice(&stamp.ctime_ns.to_le_bytes());
        for field in [
            self.version.as_bytes(),
            &self.magic,
            self.implementation.as_bytes(),
            self.cache_tag.as_deref().unwrap_or("").as_bytes(),
        ] {
            id.push(0);
            id.extend_from_slice(field);
        }
        id
    }

    /// Where caches it most likely wrote live: its prefixes and its virtualenv.
    fn homes(&self) -> impl Iterator<Item = &Path> {
        self.prefixes
            .iter()
            .map(PathBuf::as_path)
            .chain(self.venv.as_deref())
    }

    fn from_answer(answer: Answer, c: &Candidate, remembered_in: Option<PathBuf>) -> Interpreter {
        Interpreter {
            series: answer.series(),
            path: c.path.clone(),
            resolved: c.resolved.clone(),
            stamp: c.stamp,
            version: answer.version,
            magic: answer.magic,
            cache_tag: answer.cache_tag,
            implementation: answer.implementation,
            version_info: answer.version_info,
            origin: c.origin,
            executable: answer.executable,
            prefixes: answer.prefixes,
            venv: c.venv.clone(),
            remembered_in,
        }
    }
}

impl crate::store::proofs::Prover for Interpreter {
    fn identity(&self) -> Vec<u8> {
        Interpreter::identity(self)
    }
}

/// What to look for.
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// `--python PATH`, in order.
    pub pythons: Vec<PathBuf>,
    /// The checked paths (virtualenvs inside them are found).
    pub roots: Vec<PathBuf>,
    /// pycguard's cache directory, for remembered probe answers; `None` to probe every time.
    pub cache_dir: Option<PathBuf>,
    /// Where else to look, as the environment says.
    pub search: SearchPath,
}

/// The places the environment points interpreters at (read once by
/// [`crate::settings::Environment`]; nothing here reads the environment itself).
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    /// The current directory: relative `--python` paths and pyenv's `.python-version`
    /// lookup start there.
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    /// `$PATH`.
    pub path: Option<std::ffi::OsString>,
    /// `$PYENV_ROOT` (else `~/.pyenv`; for a shims directory on `PATH`, its parent).
    pub pyenv_root: Option<PathBuf>,
    /// `$PYENV_VERSION`.
    pub pyenv_version: Option<String>,
    /// `$UV_PYTHON_INSTALL_DIR`.
    pub uv_python_install_dir: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<PathBuf>,
}

impl SearchPath {
    /// pyenv's versions: `$PYENV_ROOT`, else `~/.pyenv`.
    fn pyenv_root(&self) -> Option<PathBuf> {
        self.pyenv_root
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".pyenv")))
    }

    /// uv-managed Pythons: `$UV_PYTHON_INSTALL_DIR`, `$XDG_DATA_HOME/uv/python`,
    /// `~/.local/share/uv/python`.
    fn uv_python_dir(&self) -> Option<PathBuf> {
        self.uv_python_install_dir
            .clone()
            .or_else(|| self.xdg_data_home.as_ref().map(|d| d.join("uv/python")))
            .or_else(|| self.home.as_ref().map(|h| h.join(".local/share/uv/python")))
    }

    /// `path` made absolute against the current directory.
    fn absolute(&self, p: &Path) -> PathBuf {
        if p.is_relative() {
            crate::layout::lexically_absolute(&self.cwd, p)
        } else {
            p.to_path_buf()
        }
    }

    /// The `python3` a shell in the current directory would run: the first on `PATH`;
    /// pyenv's shims stand for the version pyenv selects (`$PYENV_VERSION`, a
    /// `.python-version` in the current directory or above, then `$PYENV_ROOT/version`;
    /// `system` means the next `python3` on `PATH`). Read from files only: nothing is run.
    /// Returns the executable and how it was found.
    pub fn python3_on_path(&self) -> Option<(PathBuf, String)> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.as_ref()?;
        for dir in std::env::split_paths(path) {
            if is_pyenv_shims(&dir) {
                let shim = dir.join("python3");
                if !shim.is_file() {
                    continue;
                }
                // pyenv's root: `$PYENV_ROOT`, else the shims directory's parent.
                let Some(root) = self
                    .pyenv_root
                    .clone()
                    .or_else(|| dir.parent().map(Path::to_path_buf))
                else {
                    continue;
                };
                let Some((version, from)) = self.pyenv_version(&root) else {
                    continue;
                };
                if version == "system" {
                    continue;
                }
                let exe = root.join("versions").join(&version).join("bin/python3");
                if exe.is_file() {
                    return Some((
                        exe,
                        format!(
                            "{}: python3 on PATH, pyenv {version} from {from}",
                            shim.display()
                        ),
                    ));
                }
                continue;
            }
            let exe = dir.join("python3");
            let Ok(meta) = fs::metadata(&exe) else {
                continue;
            };
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Some((
                    exe.clone(),
                    format!("{}: the first python3 on PATH", exe.display()),
                ));
            }
        }
        None
    }

    /// The version pyenv (at `root`) selects in the current directory, and where that
    /// choice is written.
    fn pyenv_version(&self, root: &Path) -> Option<(String, String)> {
        let first_word = |text: &str| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ':'))
                .find(|w| !w.is_empty())
                .map(str::to_owned)
        };
        if let Some(v) = self.pyenv_version.as_deref().and_then(first_word) {
            return Some((v, "$PYENV_VERSION".into()));
        }
        for dir in self.cwd.ancestors() {
            let file = dir.join(".python-version");
            if let Some(v) = fs::read_to_string(&file)
                .ok()
                .as_deref()
                .and_then(first_word)
            {
                return Some((v, file.display().to_string()));
            }
        }
        let file = root.join("version");
        fs::read_to_string(&file)
            .ok()
            .as_deref()
            .and_then(first_word)
            .map(|v| (v, file.display().to_string()))
    }
}

/// A directory of pyenv's shims (skipped: the versions behind them are found directly).
fn is_pyenv_shims(dir: &Path) -> bool {
    dir.ends_with("shims") && dir.to_string_lossy().contains("pyenv")
}

/// An executable that was refused or gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    pub path: PathBuf,
    pub origin: Origin,
    pub message: String,
}

/// The interpreters found, in order of preference.
#[derive(Clone, Debug, Default)]
pub struct Interpreters {
    found: Vec<Interpreter>,
    pub rejected: Vec<Rejected>,
    /// The current directory (a relative cache path is made absolute against it).
    cwd: PathBuf,
}

impl Interpreters {
    /// Find every interpreter (see the module docs).
    pub fn discover(discovery: &Discovery) -> Interpreters {
        Interpreters::find(discovery, true)
    }

    /// Find every interpreter and ask each one now, whatever was remembered (the answers
    /// are remembered anew): what `pycguard interpreters` shows.
    pub fn discover_asking_all(discovery: &Discovery) -> Interpreters {
        Interpreters::find(discovery, false)
    }

    fn find(discovery: &Discovery, use_memo: bool) -> Interpreters {
        let (candidates, rejected) = candidates(discovery, effective_uid());
        let mut memo = discovery
            .cache_dir
            .as_deref()
            .map(ProbeMemo::load)
            .unwrap_or_default();
        let remembered: Vec<Option<Answer>> = candidates
            .iter()
            .map(|c| memo.get(&c.resolved, &c.stamp).filter(|_| use_memo))
            .collect();
        let answers: Vec<Result<Answer, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = candidates
                .iter()
                .zip(&remembered)
                .map(|(c, known)| match known {
                    // Remembered: no process, and no thread to wait for one.
                    Some(_) => None,
                    None => Some(s.spawn(move || probe(&c.resolved))),
                })
                .collect();
            handles
                .into_iter()
                .zip(&remembered)
                .map(|(handle, known)| match (handle, known) {
                    (Some(h), _) => h.join().unwrap_or_else(|_| Err("probe panicked".into())),
                    (None, Some(known)) => Ok(known.clone()),
                    (None, None) => unreachable!("either remembered or probed"),
                })
                .collect()
        });
        let mut out = Interpreters {
            found: Vec::new(),
            rejected,
            cwd: discovery.search.cwd.clone(),
        };
        let mut seen = HashSet::new();
        for ((candidate, answer), known) in candidates.iter().zip(answers).zip(&remembered) {
            match answer {
                Ok(answer) => {
                    let remembered_in = match known {
                        Some(_) => discovery.cache_dir.clone(),
                        None => {
                            memo.put(&candidate.resolved, &candidate.stamp, &answer);
                            None
                        }
                    };
                    // Two names for one executable (a wrapper reporting another file as
                    // sys.executable): keep the first found.
                    let executable = if answer.executable == candidate.resolved {
                        candidate.resolved.clone()
                    } else {
                        fs::canonicalize(&answer.executable)
                            .unwrap_or_else(|_| candidate.resolved.clone())
                    };
                    if !seen.insert(executable) {
                        continue;
                    }
                    out.found
                        .push(Interpreter::from_answer(answer, candidate, remembered_in));
                }
                Err(message) => {
                    memo.forget(&candidate.resolved);
                    out.rejected.push(Rejected {
                        path: candidate.path.clone(),
                        origin: candidate.origin,
                        message,
                    });
                }
            }
        }
        if let Some(dir) = &discovery.cache_dir {
            memo.save(dir);
        }
        out
    }

    /// Every interpreter found, in order of preference.
    pub fn all(&self) -> &[Interpreter] {
        &self.found
    }

    /// The preferred interpreter that writes caches with exactly this magic number (only
    /// that one compiles the way the cache was compiled).
    pub fn for_magic(&self, raw: [u8; 4]) -> Option<&Interpreter> {
        self.found.iter().find(|i| i.magic == raw)
    }

    /// The interpreter to prove or rebuild the cache at `path` with magic `raw`: among
    /// those with exactly that magic, the one whose installation prefix (or virtualenv)
    /// holds the cache (the deepest), else the preferred one. Patch releases share a magic
    /// number but not always their compiler, so the one that most likely wrote the cache
    /// is chosen.
    pub fn for_cache(&self, raw: [u8; 4], path: &Path) -> Option<usize> {
        let same: Vec<usize> = (0..self.found.len())
            .filter(|&i| self.found[i].magic == raw)
            .collect();
        if same.len() <= 1 {
            return same.first().copied();
        }
        let absolute = fs::canonicalize(path).unwrap_or_else(|_| match path.is_relative() {
            true => crate::layout::lexically_absolute(&self.cwd, path),
            false => path.to_path_buf(),
        });
        choose_by_prefix(&self.found, &same, &absolute).or(same.first().copied())
    }

    /// The first `--python PATH` that is not a usable interpreter (a usage error).
    pub fn rejected_flag(&self) -> Option<&Rejected> {
        self.rejected.iter().find(|r| r.origin == Origin::Flag)
    }

    /// The preferred interpreter of a series (any magic of it).
    pub fn for_series(&self, series: Series) -> Option<&Interpreter> {
        self.found.iter().find(|i| i.series == Some(series))
    }

    /// Build a list directly (tests, callers with their own interpreters).
    pub fn from_list(found: Vec<Interpreter>) -> Interpreters {
        Interpreters {
            found,
            rejected: Vec::new(),
            cwd: PathBuf::from("/"),
        }
    }
}

/// Check `--python PATH` values without starting anything: the same refusals discovery
/// gives them (missing, a directory, not executable, writable by others), for commands
/// that would otherwise not look at them.
pub fn check_flags(discovery: &Discovery) -> Result<(), Rejected> {
    let (_, rejected) = candidates(
        &Discovery {
            pythons: discovery.pythons.clone(),
            search: SearchPath {
                cwd: discovery.search.cwd.clone(),
                ..SearchPath::default()
            },
            ..Discovery::default()
        },
        effective_uid(),
    );
    match rejected.into_iter().find(|r| r.origin == Origin::Flag) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

/// Among `candidates` (indices into `found`), the one with the deepest home holding `path`.
fn choose_by_prefix(found: &[Interpreter], candidates: &[usize], path: &Path) -> Option<usize> {
    candidates
        .iter()
        .filter_map(|&i| {
            let depth = found[i]
                .homes()
                .filter(|p| path.starts_with(p))
                .map(|p| p.components().count())
                .max()?;
            Some((depth, std::cmp::Reverse(i)))
        })
        .max()
        .map(|(_, std::cmp::Reverse(i))| i)
}

/// An executable to ask.
#[derive(Clone, Debug)]
struct Candidate {
    path: PathBuf,
    resolved: PathBuf,
    stamp: FileIdentity,
    origin: Origin,
    venv: Option<PathBuf>,
}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Every path an interpreter may be found at, in order of preference (see the module
/// docs), not yet checked.
fn candidate_paths(d: &Discovery) -> Vec<(PathBuf, Origin)> {
    let mut paths: Vec<(PathBuf, Origin)> = Vec::new();
    let search = &d.search;
    for p in &d.pythons {
        paths.push((search.absolute(p), Origin::Flag));
    }
    for root in &d.roots {
        for venv in venvs_in(root) {
            for exe in ["bin/python", "bin/python3"] {
                paths.push((search.absolute(&venv.join(exe)), Origin::Venv));
            }
        }
    }
    if let Some(root) = search.pyenv_root() {
        for dir in sorted_dirs(&root.join("versions")) {
            paths.push((dir.join("bin/python"), Origin::Pyenv));
            paths.push((dir.join("bin/python3"), Origin::Pyenv));
        }
    }
    if let Some(uv) = search.uv_python_dir() {
        for dir in sorted_dirs(&uv) {
            paths.push((dir.join("bin/python3"), Origin::Uv));
            paths.push((dir.join("bin/python"), Origin::Uv));
        }
    }
    if let Some(path) = &search.path {
        for dir in std::env::split_paths(path) {
            if is_pyenv_shims(&dir) {
                continue;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<_> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|n| is_python_name(n))
                .collect();
            names.sort();
            paths.extend(
                names
                    .into_iter()
                    .map(|n| (search.absolute(&dir.join(n)), Origin::Path)),
            );
        }
    }
    paths
}

/// Every executable to ask, and those refused before being asked.
fn candidates(d: &Discovery, euid: u32) -> (Vec<Candidate>, Vec<Rejected>) {
    let paths = candidate_paths(d);
    let mut checker = trust::Checker::new(euid);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut rejected = Vec::new();
    for (path, origin) in paths {
        let explicit = origin == Origin::Flag;
        let refuse = |rejected: &mut Vec<Rejected>, message: String| {
            rejected.push(Rejected {
                path: path.clone(),
                origin,
                message,
            })
        };
        let resolved = match fs::canonicalize(&path) {
            Ok(r) => r,
            Err(e) if explicit => {
                let message = match e.kind() {
                    std::io::ErrorKind::NotFound => Refusal::Missing.to_string(),
                    _ => crate::read::io_message(&e),
                };
                refuse(&mut rejected, message);
                continue;
            }
            Err(_) => continue,
        };
        if !seen.insert(resolved.clone()) {
            continue;
        }
        let policy = if explicit {
            Policy::Explicit
        } else {
            Policy::Discovered
        };
        match checker.check(&resolved, policy) {
            Ok(()) => {}
            // A found name that is no executable file is simply not an interpreter.
            Err(
                Refusal::Missing | Refusal::Directory | Refusal::NotFile | Refusal::NotExecutable,
            ) if !explicit => continue,
            Err(refusal) => {
                let message = match &refusal {
                    Refusal::Owner { .. } | Refusal::Writable { .. } if resolved != path => {
                        format!("{refusal} (it resolves to {})", resolved.display())
                    }
                    _ => refusal.to_string(),
                };
                refuse(&mut rejected, message);
                continue;
            }
        }
        let Ok(meta) = fs::metadata(&resolved) else {
            continue;
        };
        out.push(Candidate {
            venv: venv_of(&path),
            path,
            resolved,
            stamp: FileIdentity::of_metadata(&meta),
            origin,
        });
    }
    (out, rejected)
}

/// The virtualenv an executable found as `VENV/bin/python` belongs to.
fn venv_of(path: &Path) -> Option<PathBuf> {
    let root = path.parent()?.parent()?;
    root.join("pyvenv.cfg")
        .is_file()
        .then(|| fs::canonicalize(root).ok())
        .flatten()
}

/// `python`, `python3`, `python3.12`, `python2.7` (not `python3-config`, `python3.12d`…).
fn is_python_name(name: &OsStr) -> bool {
    let Some(rest) = name.as_bytes().strip_prefix(b"python") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let mut parts = rest.split(|&b| b == b'.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next();
    parts.next().is_none()
        && !major.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.map_or(true, |m| !m.is_empty() && m.iter().all(u8::is_ascii_digit))
}

/// Virtualenvs at or directly inside a checked path.
fn venvs_in(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return out;
    }
    if root.join("pyvenv.cfg").is_file() {
        out.push(root.to_path_buf());
    }
    for dir in sorted_dirs(root) {
        if dir.join("pyvenv.cfg").is_file() {
            out.push(dir);
        }
    }
    out
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// The probe program (after [`child::PATH_GUARD`]): runs on 2.7 and every 3.x and imports
/// only the standard library.
const PROBE: &str = r#"import binascii, os
try:
    import importlib.util as u
    magic = u.MAGIC_NUMBER
except ImportError:
    import imp
    magic = imp.get_magic()
impl = getattr(sys, "implementation", None)
name = impl.name if impl else ("pypy" if "__pypy__" in sys.builtin_module_names else "cpython")
tag = (impl.cache_tag if impl else None) or ""
v = sys.version_info
prefixes = [os.path.realpath(p) for p in (sys.prefix, getattr(sys, "base_prefix", sys.prefix))]
out = "pycguard-probe-3\n%s\n%d.%d\n%s\n%s\n%s\n%s\n%s\n" % (name, v[0], v[1], sys.version.split()[0], binascii.hexlify(magic).decode("ascii"), tag, sys.executable, "\0".join(prefixes))
if v[0] >= 3:
    sys.stdout.buffer.write(out.encode("utf-8", "surrogateescape"))
else:
    sys.stdout.write(out)
"#;

/// Why one probe attempt failed.
enum ProbeFailure {
    /// The interpreter does not know `-I` (Python 2, 3.0–3.3): ask again with `-E -s`.
    UnknownOption,
    Other(String),
}

/// Ask the executable `resolved` for its [`Answer`], isolated (see [`child`]).
fn probe(resolved: &Path) -> Result<Answer, String> {
    let python2 = resolved
        .file_name()
        .is_some_and(|n| n.as_bytes().starts_with(b"python2"));
    let first = if python2 {
        Flags::Legacy
    } else {
        Flags::Isolated
    };
    match probe_with(resolved, first) {
        Ok(answer) => Ok(answer),
        Err(ProbeFailure::UnknownOption) if first == Flags::Isolated => {
            probe_with(resolved, Flags::Legacy).map_err(|e| match e {
                ProbeFailure::UnknownOption => {
                    "not a usable Python (it knows neither -I nor -E)".into()
                }
                ProbeFailure::Other(message) => message,
            })
        }
        Err(ProbeFailure::UnknownOption) => Err("not a usable Python (unknown option)".into()),
        Err(ProbeFailure::Other(message)) => Err(message),
    }
}

fn probe_with(resolved: &Path, flags: Flags) -> Result<Answer, ProbeFailure> {
    let program = format!("{}{PROBE}", child::PATH_GUARD);
    let mut child = child::command(resolved, flags, &program)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            ProbeFailure::Other(format!("cannot run it: {}", crate::read::io_message(&e)))
        })?;
    // Read both pipes on their own threads (bounded), so a chatty child cannot block.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || read_limited(&mut stdout));
    let err_reader = std::thread::spawn(move || read_limited(&mut stderr));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProbeFailure::Other(format!(
                    "no answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                )));
            }
            Ok(None) if crate::signals::interrupted() => {
                // SIGINT/SIGTERM: never leave a probe running behind pycguard.
                let _ = child.kill();
                let _ = child.wait();
                return Err(ProbeFailure::Other("interrupted".into()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(ProbeFailure::Other(e.to_string())),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    if !status.success() {
        let err = String::from_utf8_lossy(&err);
        if flags == Flags::Isolated && status.code() == Some(2) && err.contains("-I") {
            return Err(ProbeFailure::UnknownOption);
        }
        return Err(ProbeFailure::Other(format!(
            "not a usable Python ({status}: {})",
            err.lines().last().unwrap_or("").trim()
        )));
    }
    answer::parse_probe(&out)
        .ok_or_else(|| ProbeFailure::Other("not a Python interpreter (unexpected answer)".into()))
}

/// Everything a pipe gives until it closes, keeping at most [`PROBE_OUTPUT_LIMIT`] bytes.
fn read_limited(pipe: &mut impl std::io::Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        let room = PROBE_OUTPUT_LIMIT.saturating_sub(out.len());
        out.extend_from_slice(&buf[..n.min(room)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_names() {
        for ok in ["python", "python3", "python3.12", "python2.7", "python3.10"] {
            assert!(is_python_name(OsStr::new(ok)), "{ok}");
        }
        for no in [
            "python3-config",
            "python3.12d",
            "python3.",
            "pythonw",
            "python3.12.1",
            "ipython",
            "python3.11-config",
        ] {
            assert!(!is_python_name(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn preference_and_magic_lookup() {
        let mk = |v: &str, magic: [u8; 4], origin| Interpreter {
            path: PathBuf::from(format!("/p/{v}")),
            resolved: PathBuf::from(format!("/p/{v}")),
            stamp: Default::default(),
            version: v.into(),
            series: crate::pyc::magic::lookup(magic).map(|m| m.series),
            magic,
            cache_tag: None,
            implementation: "cpython".into(),
            version_info: (3, 12),
            origin,
            executable: PathBuf::from(format!("/p/{v}")),
            prefixes: vec![PathBuf::from(format!("/prefix/{v}"))],
            venv: None,
            remembered_in: None,
        };
        let mut list = Interpreters::from_list(vec![
            mk("3.12.1", [0xcb, 0x0d, 0x0d, 0x0a], Origin::Venv),
            mk("3.12.4", [0xcb, 0x0d, 0x0d, 0x0a], Origin::Path),
        ]);
        assert_eq!(
            list.for_magic([0xcb, 0x0d, 0x0d, 0x0a]).unwrap().version,
            "3.12.1"
        );
        assert!(list.for_magic([0xf3, 0x0d, 0x0d, 0x0a]).is_none());
        assert!(list.for_series(Series::cpython(3, 12)).is_some());
        assert_eq!(list.all()[0].isolation_args(), ["-I", "-S", "-B"]);
        // Same magic: the one whose prefix holds the cache wins, else the preferred one.
        let cache = Path::new("/prefix/3.12.4/lib/python3.12/__pycache__/os.cpython-312.pyc");
        assert_eq!(list.for_cache([0xcb, 0x0d, 0x0d, 0x0a], cache), Some(1));
        let elsewhere = Path::new("/srv/app/__pycache__/m.cpython-312.pyc");
        assert_eq!(list.for_cache([0xcb, 0x0d, 0x0d, 0x0a], elsewhere), Some(0));
        assert_eq!(list.for_cache([0xf3, 0x0d, 0x0d, 0x0a], elsewhere), None);
        // A virtualenv holding the cache counts as that interpreter's home.
        list.found[1].venv = Some(PathBuf::from("/srv/app"));
        assert_eq!(list.for_cache([0xcb, 0x0d, 0x0d, 0x0a], elsewhere), Some(1));
        // The identity is the compiler build's: the binary (as a file) and what its
        // answer says of its compiler, not the prefixes or executable of a virtualenv
        // made from it (every virtualenv of one interpreter shares its proofs).
        let base = &list.found[0];
        let mut venv = base.clone();
        venv.prefixes = vec![PathBuf::from("/srv/venv")];
        venv.executable = PathBuf::from("/srv/venv/bin/python");
        assert_eq!(venv.identity(), base.identity());
        let rebuilt = |change: fn(&mut Interpreter)| {
            let mut other = base.clone();
            change(&mut other);
            other.identity()
        };
        for (what, change) in [
            (
                "binary replaced",
                (|i| i.stamp.ctime_ns += 1) as fn(&mut Interpreter),
            ),
            ("binary of another size", |i| i.stamp.size += 1),
            ("another file", |i| {
                i.resolved = PathBuf::from("/opt/python3.12")
            }),
            ("another version", |i| i.version = "3.12.2".into()),
            ("another magic", |i| i.magic = [0xcc, 0x0d, 0x0d, 0x0a]),
            ("another implementation", |i| {
                i.implementation = "pypy".into()
            }),
            ("another tag", |i| i.cache_tag = Some("cpython-313".into())),
        ] {
            assert_ne!(rebuilt(change), base.identity(), "{what}");
        }
    }
}
