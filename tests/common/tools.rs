//! Real tools from PyPI for the tests that need them (pytest today; pre-commit, maturin,
//! supervisor, setuptools… tomorrow): each set of pinned requirements gets its own
//! virtualenv, owned by the test suite, created once and reused by every later run.
//!
//! ```ignore
//! let Some(venv) = tools::venv("pytest-9.2", &["pytest==9.2.0"]) else { return };
//! let out = venv.command(venv.bin("pytest"), dir).arg("-q").output().unwrap();
//! ```
//!
//! Where: `target/test-tools/<name>-<hash>/`, the hash covering the base interpreter (path
//! and version) and the requirements, so a changed pin or interpreter gets a new venv and
//! an unchanged one is never rebuilt. How it stays safe when several test binaries (or
//! threads) ask at once: an exclusive `flock` on `<dir>.lock` while building, and a
//! `.complete` marker written (atomically, by rename) only after `pip install` succeeded;
//! a directory without the marker is a build that died and is removed and built again.
//! The venv is built in place rather than in a temporary directory renamed at the end,
//! because pip writes the venv's absolute path into every console script's `#!` line: a
//! renamed venv's `bin/pytest` would point at a directory that no longer exists.
//!
//! When PyPI cannot be reached (or a pin cannot be found there), [`venv`] prints a `SKIP:`
//! line and returns `None`; any other pip failure panics with pip's output.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::Interp;

/// A virtualenv with pinned packages installed.
#[derive(Clone, Debug)]
pub struct ToolVenv {
    dir: PathBuf,
    base: Interp,
}

impl ToolVenv {
    /// The venv's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin/python")
    }

    /// A console script or executable the venv's packages installed (`bin/NAME`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// The base interpreter the venv was made from.
    pub fn base(&self) -> &Interp {
        &self.base
    }

    /// The venv's interpreter as an [`Interp`] (same series and version as the base).
    pub fn interp(&self) -> Interp {
        Interp {
            path: self.python(),
            ..self.base.clone()
        }
    }

    /// A command for `program` in `dir` with the environment that changes how caches are
    /// written or read cleared (as [`Interp::command`] does), and the venv first on `PATH`.
    pub fn command(&self, program: impl AsRef<Path>, dir: &Path) -> Command {
        let mut cmd = Command::new(program.as_ref());
        cmd.current_dir(dir)
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env_remove("PYTHONPYCACHEPREFIX")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONOPTIMIZE")
            .env_remove("PYTHONCHECKHASHBASEDPYCS")
            .env_remove("PYTEST_ADDOPTS")
            .env_remove("PYTEST_PLUGINS")
            .env("VIRTUAL_ENV", &self.dir)
            .env("PATH", path_with(&self.dir.join("bin")));
        cmd
    }
}

fn path_with(bin: &Path) -> std::ffi::OsString {
    let mut paths = vec![bin.to_path_buf()];
    if let Some(old) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&old));
    }
    std::env::join_paths(paths).expect("PATH entries")
}

/// The interpreter tool venvs are made from by default: pyenv's 3.12, else any 3.12.
pub fn default_python() -> Option<Interp> {
    let found = super::interpreters();
    found
        .iter()
        .find(|i| (i.major, i.minor) == (3, 12) && i.path.starts_with(pyenv_root()))
        .or_else(|| found.iter().find(|i| (i.major, i.minor) == (3, 12)))
        .cloned()
}

fn pyenv_root() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".pyenv"))
        .unwrap_or_default()
}

/// A venv called `name` made from the default Python 3.12 with `requirements` installed.
/// `None` (after a `SKIP:` line) when there is no 3.12 or PyPI cannot be reached.
pub fn venv(name: &str, requirements: &[&str]) -> Option<ToolVenv> {
    let Some(python) = default_python() else {
        eprintln!("SKIP: no Python 3.12 to make the {name} venv from");
        return None;
    };
    venv_with(&python, name, requirements)
}

/// A venv called `name` made from `python` with `requirements` (pip requirement strings,
/// pinned) installed; created on first use, reused afterwards.
pub fn venv_with(python: &Interp, name: &str, requirements: &[&str]) -> Option<ToolVenv> {
    let root = tools_root();
    fs::create_dir_all(&root).expect("create target/test-tools");
    let mut key = blake3::Hasher::new();
    key.update(b"tool-venv-v1\0");
    key.update(python.path.as_os_str().as_encoded_bytes());
    key.update(b"\0");
    key.update(python.version.as_bytes());
    for r in requirements {
        key.update(b"\0");
        key.update(r.as_bytes());
    }
    let hash = &key.finalize().to_hex()[..16];
    let dir = root.join(format!("{name}-{hash}"));
    let venv = ToolVenv {
        dir: dir.clone(),
        base: python.clone(),
    };
    let marker = dir.join(".complete");
    if marker.is_file() {
        return Some(venv);
    }
    let lock = File::create(root.join(format!("{name}-{hash}.lock"))).expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    if marker.is_file() {
        return Some(venv); // built by another process while we waited
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove a half-built venv");
    }
    let made = run_logged(
        Command::new(&python.path)
            .args(["-m", "venv"])
            .arg(&dir)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME"),
        Duration::from_secs(300),
    );
    assert!(
        made.status.success(),
        "{}: python -m venv {} failed:\n{}",
        python.version,
        dir.display(),
        String::from_utf8_lossy(&made.stderr)
    );
    let installed = run_logged(
        Command::new(venv.python())
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
                "--retries",
                "2",
                "--timeout",
                "60",
            ])
            .args(requirements)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env_remove("PYTHONPYCACHEPREFIX")
            .env_remove("SOURCE_DATE_EPOCH"),
        Duration::from_secs(900),
    );
    if !installed.status.success() {
        let err = String::from_utf8_lossy(&installed.stderr);
        let _ = fs::remove_dir_all(&dir);
        if unreachable(&err) {
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            eprintln!(
                "SKIP: cannot install {} from PyPI for the {name} venv ({}): {last}",
                requirements.join(" "),
                python.version
            );
            return None;
        }
        panic!(
            "pip install {} into {} failed:\n{err}",
            requirements.join(" "),
            dir.display()
        );
    }
    let tmp = dir.join(".complete.tmp");
    fs::write(&tmp, requirements.join("\n")).expect("write marker");
    fs::rename(&tmp, &marker).expect("publish marker");
    Some(venv)
}

/// Does pip's error say the index could not be reached (or had no such pin)?
fn unreachable(pip_stderr: &str) -> bool {
    [
        "Could not find a version that satisfies",
        "No matching distribution found",
        "NewConnectionError",
        "Max retries exceeded",
        "Temporary failure in name resolution",
        "Network is unreachable",
        "Connection refused",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "Could not fetch URL",
    ]
    .iter()
    .any(|marker| pip_stderr.contains(marker))
}

/// `target/test-tools` of this build (`CARGO_TARGET_TMPDIR` is `target/tmp`).
pub fn tools_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-tools")
}

fn run_logged(cmd: &mut Command, limit: Duration) -> Output {
    output_with_timeout(cmd.stdin(Stdio::null()), limit)
}

/// Run `cmd` to completion, capturing stdout and stderr; kill it and panic when it takes
/// longer than `limit` (a hung interpreter must fail the test, not hang it).
pub fn output_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = pipe(Box::new(child.stdout.take().expect("stdout")));
    let err = pipe(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} took longer than {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Is `program` on `PATH`? (For tests that need a system tool such as `rsync`.)
pub fn have_program(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            fs::metadata(&candidate).is_ok_and(|m| m.is_file())
        })
    })
}

/// Write `text` to stderr in one piece (tests running in parallel interleave lines).
pub fn report(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
