//! Finding the Python interpreters on this machine, and which one proves (or compiles) a
//! cache of a given magic number.
//!
//! Discovery needs no configuration: `--python PATH` first, then virtualenvs inside the
//! checked paths (`PATH/pyvenv.cfg`, `.venv`, `venv`, `env` and any direct subdirectory with
//! a `pyvenv.cfg`), pyenv versions (`$PYENV_ROOT`, `~/.pyenv`), uv-managed Pythons
//! (`$UV_PYTHON_INSTALL_DIR`, `$XDG_DATA_HOME/uv/python`, `~/.local/share/uv/python`), and
//! `python`, `python3`, `python3.X`, `python2.X` on `$PATH` (pyenv's shims are skipped:
//! the versions behind them are found directly). Executables that resolve to the same
//! file are asked once. Each is asked once for its implementation, version, magic number
//! and cache tag; the answers are remembered in pycguard's cache directory keyed by the
//! executable's resolved path, size and mtime, so later runs only `stat` them.
//!
//! Usable without `--deep`: the other commands find the interpreter for a magic number
//! with [`Interpreters::for_magic`].

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::pyc::magic::{self, Series};

/// File name of the remembered probe answers inside pycguard's cache directory.
pub const MEMO_FILE: &str = "interpreters-v2.json";
/// How long one interpreter may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

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
    /// The executable with symlinks resolved (its identity).
    pub resolved: PathBuf,
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

    /// Interpreter flags that isolate it from the user's environment and site-packages:
    /// `-I -S -B` where `-I` exists (3.4+), else `-E -s -S -B`.
    pub fn isolation_args(&self) -> &'static [&'static str] {
        if self.version_info >= (3, 4) {
            &["-I", "-S", "-B"]
        } else {
            &["-E", "-s", "-S", "-B"]
        }
    }

    /// What identifies the interpreter's compiler for remembered proofs.
    pub fn identity(&self) -> Vec<u8> {
        let mut id = self.resolved.as_os_str().as_bytes().to_vec();
        id.push(0);
        id.extend_from_slice(self.version.as_bytes());
        id.push(0);
        id.extend_from_slice(&self.magic);
        id
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
}

/// An executable that was asked and gave no usable answer.
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
    /// Per interpreter: `sys.prefix` and `sys.base_prefix`, symlinks resolved. Caches under
    /// them were most likely written by it (see [`Interpreters::for_cache`]).
    prefixes: Vec<Vec<PathBuf>>,
    pub rejected: Vec<Rejected>,
}

impl Interpreters {
    /// Find every interpreter (see the module docs).
    pub fn discover(discovery: &Discovery) -> Interpreters {
        enum Answer<'s> {
            Remembered(Probed),
            Probing(std::thread::ScopedJoinHandle<'s, Result<Probed, String>>),
        }
        let candidates = candidates(discovery);
        let memo = discovery.cache_dir.as_deref().map(ProbeMemo::load);
        let mut memo = memo.unwrap_or_default();
        let answers: Vec<Result<Probed, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = candidates
                .iter()
                .map(|c| match memo.get(&c.resolved, &c.stamp).cloned() {
                    // Remembered: no process, and no thread to wait for one.
                    Some(known) => Answer::Remembered(known),
                    None => Answer::Probing(s.spawn(move || probe(&c.path))),
                })
                .collect();
            handles
                .into_iter()
                .map(|answer| match answer {
                    Answer::Remembered(known) => Ok(known),
                    Answer::Probing(h) => h.join().unwrap_or_else(|_| Err("probe panicked".into())),
                })
                .collect()
        });
        let mut out = Interpreters::default();
        let mut seen = HashSet::new();
        for (candidate, answer) in candidates.into_iter().zip(answers) {
            match answer {
                Ok(probed) => {
                    memo.put(&candidate.resolved, &candidate.stamp, &probed);
                    // Two names for one executable (a venv's python and its base): keep
                    // the first found.
                    let executable = fs::canonicalize(&probed.executable)
                        .unwrap_or_else(|_| candidate.resolved.clone());
                    if !seen.insert(executable) {
                        continue;
                    }
                    out.prefixes.push(probed.prefixes.clone());
                    out.found.push(probed.into_interpreter(candidate));
                }
                Err(message) => out.rejected.push(Rejected {
                    path: candidate.path,
                    origin: candidate.origin,
                    message,
                }),
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
    /// those with exactly that magic, the one whose installation prefix holds the cache
    /// (the deepest), else the preferred one. Patch releases share a magic number but not
    /// always their compiler, so the one that most likely wrote the cache is chosen.
    pub fn for_cache(&self, raw: [u8; 4], path: &Path) -> Option<usize> {
        let same: Vec<usize> = (0..self.found.len())
            .filter(|&i| self.found[i].magic == raw)
            .collect();
        if same.len() <= 1 {
            return same.first().copied();
        }
        let absolute = fs::canonicalize(path).unwrap_or_else(|_| absolute(path));
        choose_by_prefix(&self.prefixes, &same, &absolute).or(same.first().copied())
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
            prefixes: vec![Vec::new(); found.len()],
            found,
            rejected: Vec::new(),
        }
    }
}

/// Among `candidates` (indices into `prefixes`), the one with the deepest prefix holding `path`.
fn choose_by_prefix(prefixes: &[Vec<PathBuf>], candidates: &[usize], path: &Path) -> Option<usize> {
    candidates
        .iter()
        .filter_map(|&i| {
            let depth = prefixes[i]
                .iter()
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
    stamp: Stamp,
    origin: Origin,
}

/// Size and mtime of the resolved executable: a changed file is asked again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
}

fn candidates(d: &Discovery) -> Vec<Candidate> {
    let mut paths: Vec<(PathBuf, Origin)> = Vec::new();
    for p in &d.pythons {
        paths.push((absolute(p), Origin::Flag));
    }
    for root in &d.roots {
        for venv in venvs_in(root) {
            for exe in ["bin/python", "bin/python3"] {
                paths.push((absolute(&venv.join(exe)), Origin::Venv));
            }
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let pyenv_root = env("PYENV_ROOT").or_else(|| home.as_ref().map(|h| h.join(".pyenv")));
    if let Some(root) = pyenv_root {
        for dir in sorted_dirs(&root.join("versions")) {
            paths.push((dir.join("bin/python"), Origin::Pyenv));
            paths.push((dir.join("bin/python3"), Origin::Pyenv));
        }
    }
    let uv = env("UV_PYTHON_INSTALL_DIR")
        .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("uv/python")))
        .or_else(|| home.as_ref().map(|h| h.join(".local/share/uv/python")));
    if let Some(uv) = uv {
        for dir in sorted_dirs(&uv) {
            paths.push((dir.join("bin/python3"), Origin::Uv));
            paths.push((dir.join("bin/python"), Origin::Uv));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.ends_with("shims") && dir.to_string_lossy().contains("pyenv") {
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
                    .map(|n| (absolute(&dir.join(n)), Origin::Path)),
            );
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (path, origin) in paths {
        let explicit = origin == Origin::Flag;
        let Ok(resolved) = fs::canonicalize(&path) else {
            if explicit {
                out.push(Candidate {
                    resolved: path.clone(),
                    path,
                    stamp: Stamp {
                        size: 0,
                        mtime_ns: 0,
                    },
                    origin,
                });
            }
            continue;
        };
        let Ok(meta) = fs::metadata(&resolved) else {
            continue;
        };
        if !meta.is_file() || (meta.mode() & 0o111 == 0 && !explicit) {
            continue;
        }
        if !seen.insert(resolved.clone()) {
            continue;
        }
        out.push(Candidate {
            path,
            resolved,
            stamp: Stamp {
                size: meta.size(),
                mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            },
            origin,
        });
    }
    out
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

fn absolute(p: &Path) -> PathBuf {
    match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => crate::config::lexically_absolute(&cwd, p),
        _ => p.to_path_buf(),
    }
}

/// The probe program: runs on 2.7 and every 3.x, imports nothing from the user.
const PROBE: &str = r#"import sys, binascii, os
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
sys.stdout.write("pycguard-probe-2\n%s\n%d.%d\n%s\n%s\n%s\n%s\n%s\n" % (name, v[0], v[1], sys.version.split()[0], binascii.hexlify(magic).decode("ascii"), tag, sys.executable, "\0".join(prefixes)))
"#;

/// One probe's answer, as remembered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Probed {
    implementation: String,
    version_info: (u32, u32),
    version: String,
    magic: [u8; 4],
    cache_tag: Option<String>,
    executable: PathBuf,
    prefixes: Vec<PathBuf>,
}

impl Probed {
    fn into_interpreter(self, c: Candidate) -> Interpreter {
        Interpreter {
            series: magic::lookup(self.magic).map(|m| m.series),
            path: c.path,
            resolved: c.resolved,
            version: self.version,
            magic: self.magic,
            cache_tag: self.cache_tag,
            implementation: self.implementation,
            version_info: self.version_info,
            origin: c.origin,
        }
    }
}

fn probe(path: &Path) -> Result<Probed, String> {
    let mut child = Command::new(path)
        .args(["-E", "-s", "-S", "-c", PROBE])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {}", crate::facts::io_message(&e)))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "not a usable Python ({}: {})",
            out.status,
            err.lines().last().unwrap_or("").trim()
        ));
    }
    parse_probe(&out.stdout).ok_or_else(|| "not a Python interpreter (unexpected answer)".into())
}

fn parse_probe(out: &[u8]) -> Option<Probed> {
    let text = std::str::from_utf8(out).ok()?;
    let mut lines = text.split('\n');
    if lines.next()? != "pycguard-probe-2" {
        return None;
    }
    let implementation = lines.next()?.to_owned();
    let (major, minor) = lines.next()?.split_once('.')?;
    let version = lines.next()?.to_owned();
    let hex = lines.next()?;
    let mut magic = [0u8; 4];
    if hex.len() != 8 {
        return None;
    }
    for (i, b) in magic.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let tag = lines.next()?;
    let executable = PathBuf::from(lines.next()?);
    let mut prefixes: Vec<PathBuf> = Vec::new();
    for p in lines.next()?.split('\0').filter(|p| !p.is_empty()) {
        if !prefixes.iter().any(|q| q.as_os_str() == p) {
            prefixes.push(PathBuf::from(p));
        }
    }
    Some(Probed {
        implementation,
        version_info: (major.parse().ok()?, minor.parse().ok()?),
        version,
        magic,
        cache_tag: (!tag.is_empty()).then(|| tag.to_owned()),
        executable,
        prefixes,
    })
}

/// Remembered probe answers, keyed by resolved executable + stamp.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ProbeMemo {
    format: u32,
    entries: Vec<(PathBuf, Stamp, Probed)>,
    #[serde(skip)]
    changed: bool,
}

impl ProbeMemo {
    fn load(dir: &Path) -> ProbeMemo {
        fs::read(dir.join(MEMO_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<ProbeMemo>(&b).ok())
            .filter(|m| m.format == 1)
            .unwrap_or_default()
    }

    fn get(&self, resolved: &Path, stamp: &Stamp) -> Option<&Probed> {
        self.entries
            .iter()
            .find(|(p, s, _)| p == resolved && s == stamp)
            .map(|(_, _, probed)| probed)
    }

    fn put(&mut self, resolved: &Path, stamp: &Stamp, probed: &Probed) {
        if self.get(resolved, stamp) == Some(probed) {
            return;
        }
        self.entries.retain(|(p, _, _)| p != resolved);
        self.entries
            .push((resolved.to_path_buf(), stamp.clone(), probed.clone()));
        self.changed = true;
    }

    /// Write atomically (temp file + rename); failures are silent (it only saves time).
    fn save(&mut self, dir: &Path) {
        if !self.changed {
            return;
        }
        self.format = 1;
        self.entries.truncate(256);
        let Ok(json) = serde_json::to_vec(self) else {
            return;
        };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            if tmp.write_all(&json).is_ok() {
                let _ = tmp.persist(dir.join(MEMO_FILE));
            }
        }
    }
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
    fn probe_answers_parse() {
        let p = parse_probe(
            b"pycguard-probe-2\ncpython\n3.12\n3.12.1\ncb0d0d0a\ncpython-312\n/usr/bin/python3.12\n/v\0/usr\n",
        )
        .unwrap();
        assert_eq!(p.magic, [0xcb, 0x0d, 0x0d, 0x0a]);
        assert_eq!(p.version_info, (3, 12));
        assert_eq!(p.cache_tag.as_deref(), Some("cpython-312"));
        assert_eq!(p.prefixes, [PathBuf::from("/v"), PathBuf::from("/usr")]);
        let p2 =
            parse_probe(b"pycguard-probe-2\ncpython\n2.7\n2.7.18\n03f30d0a\n\n/x/python\n/x\0/x\n")
                .unwrap();
        assert_eq!(p2.cache_tag, None);
        assert_eq!(p2.prefixes, [PathBuf::from("/x")]);
        assert!(parse_probe(b"Python 3.12.1\n").is_none());
        assert!(
            parse_probe(b"pycguard-probe-2\ncpython\n3.12\n3.12.1\ncb0d\n\n/x\n/x\n").is_none()
        );
    }

    #[test]
    fn preference_and_magic_lookup() {
        let mk = |v: &str, magic: [u8; 4], origin| Interpreter {
            path: PathBuf::from(format!("/p/{v}")),
            resolved: PathBuf::from(format!("/p/{v}")),
            version: v.into(),
            series: magic::lookup(magic).map(|m| m.series),
            magic,
            cache_tag: None,
            implementation: "cpython".into(),
            version_info: (3, 12),
            origin,
        };
        let mut list = Interpreters::from_list(vec![
            mk("3.12.1", [0xcb, 0x0d, 0x0d, 0x0a], Origin::Venv),
            mk("3.12.4", [0xcb, 0x0d, 0x0d, 0x0a], Origin::Path),
        ]);
        list.prefixes = vec![
            vec![PathBuf::from("/prefix/3.12.1")],
            vec![PathBuf::from("/prefix/3.12.4")],
        ];
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
    }
}
