//! Shared fixtures for integration tests: discovering the real interpreters on this
//! machine, running them with a controlled environment, building temp trees, and running
//! the pycguard binary.
//!
//! Interpreters are the oracle: caches are written by them, and where it matters the test
//! asks them what they actually import. A missing interpreter is skipped with a visible
//! `SKIP:` line on stderr, never faked.
//!
//! With `PYCGUARD_TEST_REQUIRE=all-found` (what `.ci/run` sets) nothing the machine has
//! may be skipped: `.ci/run` lists the interpreters on the machine itself (not through
//! this discovery) and exports their series as `PYCGUARD_TEST_SERIES=2.7,3.6,…`, and the
//! capabilities it found as `PYCGUARD_TEST_CAPS=root,setpriv`. Then a test fails when a
//! listed series is not found here (or when the list is empty: at least one interpreter
//! must exist), and when a listed capability is not usable. Each test binary prints, at
//! exit, how many interpreter series its tests ran (one line, whatever the thread count).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub mod tools;

/// The interpreter series this machine is expected to have under ~/.pyenv/versions.
pub const EXPECTED: &[(u32, u32)] = &[
    (2, 7),
    (3, 6),
    (3, 7),
    (3, 8),
    (3, 9),
    (3, 10),
    (3, 11),
    (3, 12),
    (3, 13),
];

/// One real interpreter.
#[derive(Clone, Debug)]
pub struct Interp {
    pub path: PathBuf,
    pub major: u32,
    pub minor: u32,
    pub version: String,
}

impl Interp {
    /// `cpython-3.12`, as pycguard's JSON names it.
    pub fn id(&self) -> String {
        format!("cpython-{}.{}", self.major, self.minor)
    }

    /// `cpython-312`; `None` for Python 2.
    pub fn tag(&self) -> Option<String> {
        (self.major >= 3).then(|| format!("cpython-{}{}", self.major, self.minor))
    }

    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// A command for this interpreter with the cache-related environment cleared.
    pub fn command(&self, dir: &Path) -> Command {
        exercised(self.major, self.minor);
        let mut cmd = Command::new(&self.path);
        cmd.current_dir(dir)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env_remove("PYTHONPYCACHEPREFIX")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONOPTIMIZE")
            .env_remove("PYTHONCHECKHASHBASEDPYCS");
        cmd
    }

    /// Run `code` with `args`; panics with the interpreter's stderr on failure.
    pub fn run(&self, dir: &Path, code: &str, args: &[&OsStr]) -> String {
        let out = self.try_run(dir, code, args, &[]);
        assert!(
            out.status.success(),
            "{} failed: {}\n{}",
            self.version,
            String::from_utf8_lossy(&out.stderr),
            code
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn try_run(&self, dir: &Path, code: &str, args: &[&OsStr], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(dir);
        cmd.arg("-c").arg(code).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run interpreter")
    }

    /// Compile `files` (relative to `dir`) with py_compile. `mode` is `timestamp`,
    /// `checked_hash` or `unchecked_hash` (3.7+); `legacy` writes `name.pyc` beside.
    pub fn compile(&self, dir: &Path, files: &[&str], mode: &str, optimize: u32) {
        let code = r#"
import sys, py_compile
mode, opt, legacy = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
for f in sys.argv[4:]:
    kw = {}
    if sys.version_info >= (3, 7):
        kw["invalidation_mode"] = getattr(py_compile.PycInvalidationMode, mode.upper())
    if sys.version_info >= (3,):
        kw["optimize"] = opt
    if legacy or sys.version_info < (3,):
        kw["cfile"] = f + "c"
    py_compile.compile(f, doraise=True, **kw)
"#;
        let (mode, legacy) = match mode {
            "legacy" => ("timestamp", "1"),
            m => (m, "0"),
        };
        let opt = optimize.to_string();
        let mut args: Vec<&OsStr> = vec![OsStr::new(mode), OsStr::new(&opt), OsStr::new(legacy)];
        args.extend(files.iter().map(OsStr::new));
        self.run(dir, code, &args);
    }

    /// What the interpreter imports for `module`: `VALUE` of the module, or the error line.
    /// Runs with bytecode writing off, so the tree is not changed by asking.
    pub fn import_value(&self, dir: &Path, module: &str) -> Result<String, String> {
        let code = format!(
            "import sys\nsys.dont_write_bytecode = True\nimport {module} as m\nsys.stdout.write(str(m.VALUE))"
        );
        let out = self.try_run(dir, &code, &[], &[("PYTHONDONTWRITEBYTECODE", "1")]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(err.lines().last().unwrap_or("").to_owned())
        }
    }
}

fn probe(path: &Path) -> Option<Interp> {
    let out = Command::new(path)
        .args(["-c", "import sys; v = sys.version_info; sys.stdout.write('%d %d %s' % (v[0], v[1], sys.version.split()[0]))"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace();
    Some(Interp {
        path: path.to_path_buf(),
        major: parts.next()?.parse().ok()?,
        minor: parts.next()?.parse().ok()?,
        version: parts.next()?.to_owned(),
    })
}

/// Every interpreter on the machine: ~/.pyenv/versions/*/bin/python and the system
/// python3, distinct builds only. Prints a SKIP line for each expected series not found.
pub fn interpreters() -> Vec<Interp> {
    print_summary_at_exit();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(entries) = fs::read_dir(&versions) {
            let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            dirs.sort();
            candidates.extend(dirs.into_iter().map(|d| d.join("bin/python")));
        }
    }
    candidates.push(PathBuf::from("/usr/bin/python3"));
    let mut seen = Vec::new();
    let mut found = Vec::new();
    for c in candidates {
        let Ok(real) = fs::canonicalize(&c) else {
            continue;
        };
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        if let Some(i) = probe(&c) {
            found.push(i);
        }
    }
    require_series(found.iter().map(|i| (i.major, i.minor)));
    for (major, minor) in EXPECTED {
        if !found.iter().any(|i| i.major == *major && i.minor == *minor) {
            eprintln!("SKIP: no Python {major}.{minor} interpreter found (~/.pyenv/versions/*/bin/python, /usr/bin/python3)");
        }
    }
    found
}

/// Is `PYCGUARD_TEST_REQUIRE=all-found` set (CI: nothing the machine has may be skipped)?
pub fn require_all() -> bool {
    match std::env::var("PYCGUARD_TEST_REQUIRE") {
        Ok(v) if v == "all-found" => true,
        Ok(v) if v.is_empty() => false,
        Ok(v) => panic!("PYCGUARD_TEST_REQUIRE={v:?}: the only value is all-found"),
        Err(_) => false,
    }
}

/// The series `.ci/run` found on the machine (`PYCGUARD_TEST_SERIES`), in require mode.
fn required_series() -> Vec<(u32, u32)> {
    let list = std::env::var("PYCGUARD_TEST_SERIES").unwrap_or_default();
    let series: Vec<(u32, u32)> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (major, minor) = s
                .trim()
                .split_once('.')
                .unwrap_or_else(|| panic!("PYCGUARD_TEST_SERIES: bad series {s:?}"));
            (major.parse().unwrap(), minor.parse().unwrap())
        })
        .collect();
    assert!(
        !series.is_empty(),
        "PYCGUARD_TEST_REQUIRE=all-found needs PYCGUARD_TEST_SERIES (set by .ci/run from the interpreters on the machine), and at least one interpreter"
    );
    series
}

/// In require mode, fail unless every series the machine has is among `found`.
pub fn require_series(found: impl IntoIterator<Item = (u32, u32)>) {
    if !require_all() {
        return;
    }
    let found: BTreeSet<(u32, u32)> = found.into_iter().collect();
    let missing: Vec<String> = required_series()
        .into_iter()
        .filter(|s| !found.contains(s))
        .map(|(a, b)| format!("{a}.{b}"))
        .collect();
    assert!(
        missing.is_empty(),
        "PYCGUARD_TEST_REQUIRE=all-found: the machine has Python {} but the tests did not find it (HOME={:?})",
        missing.join(", "),
        std::env::var_os("HOME")
    );
}

/// A capability a test needs (`root`, `setpriv`): whether it is usable here. In require
/// mode, one that `.ci/run` listed in `PYCGUARD_TEST_CAPS` must be usable, or the test
/// fails instead of skipping.
pub fn capability(name: &str) -> bool {
    let usable = match name {
        "root" => effective_uid() == 0,
        "setpriv" => Path::new("/usr/bin/setpriv").exists(),
        other => panic!("unknown test capability {other:?}"),
    };
    if !usable && require_all() {
        let listed = std::env::var("PYCGUARD_TEST_CAPS").unwrap_or_default();
        assert!(
            !listed.split(',').any(|c| c.trim() == name),
            "PYCGUARD_TEST_REQUIRE=all-found: the machine has {name}, but this test cannot use it"
        );
    }
    usable
}

/// Root with setpriv: tests can run pycguard as an unprivileged user.
pub fn can_run_as_other_user() -> bool {
    capability("root") & capability("setpriv")
}

static EXERCISED: Mutex<BTreeSet<(u32, u32)>> = Mutex::new(BTreeSet::new());

/// Note that a test ran an interpreter of this series; the first call arranges the
/// summary line printed when the test binary exits.
pub fn exercised(major: u32, minor: u32) {
    print_summary_at_exit();
    EXERCISED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((major, minor));
}

/// Arrange for the per-suite summary line (once per test binary): it is printed when the
/// process exits, after every test thread is done.
pub fn print_summary_at_exit() {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registering a plain function to run at process exit.
        unsafe {
            libc::atexit(print_exercised);
        }
    });
}

extern "C" fn print_exercised() {
    let series = EXERCISED.lock().unwrap_or_else(|e| e.into_inner());
    let suite = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| {
            n.rsplit_once('-')
                .map_or(n.clone(), |(name, _)| name.to_owned())
        })
        .unwrap_or_default();
    let list: Vec<String> = series.iter().map(|(a, b)| format!("{a}.{b}")).collect();
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SUMMARY: test suite {suite} exercised {} interpreter series ({})",
        list.len(),
        list.join(", ")
    );
}

/// Interpreters of at least `major.minor` (prints SKIP lines for missing ones).
pub fn interpreters_from(major: u32, minor: u32) -> Vec<Interp> {
    interpreters()
        .into_iter()
        .filter(|i| i.at_least(major, minor))
        .collect()
}

/// A temporary directory tree.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::Builder::new()
                .prefix("pycguard-test")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path().join(rel)
    }

    /// Write a file (creating directories).
    pub fn write(&self, rel: impl AsRef<Path>, content: &[u8]) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }
}

/// Set a file's mtime to `secs` + `nanos` since the epoch.
pub fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let t = UNIX_EPOCH + Duration::new(secs, nanos);
    fs::File::options()
        .write(true)
        .open(path)
        .or_else(|_| fs::File::open(path))
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// A file's mtime as (secs, nanos).
pub fn mtime(path: &Path) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// pycguard's cache directory for this test process (never the user's own).
pub fn test_cache_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("pycguard-cache")
            .tempdir()
            .unwrap()
    })
    .path()
}

/// The pycguard binary under test.
pub fn pycguard() -> Command {
    print_summary_at_exit();
    // PYCGUARD_TEST_BIN runs the suite against another build (e.g. an older commit, to
    // see a new test fail there).
    let bin = std::env::var_os("PYCGUARD_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pycguard")));
    let mut cmd = Command::new(bin);
    cmd.env("PYCGUARD_CACHE_DIR", test_cache_dir())
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env_remove("PYTHONPYCACHEPREFIX")
        .env_remove("CLICOLOR_FORCE");
    cmd
}

/// Run `pycguard check --format json` in `dir` on `args` and parse the output.
pub fn check_json(dir: &Path, args: &[&str]) -> (Value, i32) {
    let out = pycguard()
        .current_dir(dir)
        .args(["check", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).expect("utf-8 json");
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "bad json ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (value, out.status.code().unwrap_or(-1))
}

/// The cache entries of a JSON report by path.
pub fn by_path(report: &Value) -> BTreeMap<String, Value> {
    report["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

/// A snapshot of every file under `dir`: path → (content, mtime secs, mtime nanos).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            let p = e.path();
            if ft.is_dir() {
                stack.push(p.clone());
            }
            let content = if ft.is_file() {
                fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            use std::os::unix::fs::MetadataExt;
            let m = fs::symlink_metadata(&p).unwrap();
            out.insert(p, (content, m.mtime(), m.mtime_nsec()));
        }
    }
    out
}

/// This process's effective user id (read from /proc, keeping tests free of libc).
pub fn effective_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
