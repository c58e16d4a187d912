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
//!
//! pycguard's own wheel ([`pycguard_wheel`]) is built the way a user's `pip install .`
//! builds it — pip, PEP 517 build isolation, maturin from PyPI — once for each distinct
//! content of the files that go into it (sources, `Cargo.*`, `pyproject.toml`, `python/`,
//! README, licences), under `target/test-tools/wheel-<hash>/`, with the same locking as the
//! venvs. Every build a test starts (that one, `pip install .`, pre-commit's hook
//! environments, `uv tool install .`) goes through [`build_env`]: cargo's target directory
//! is this repository's `target/` (`CARGO_TARGET_DIR`; release artifacts in
//! `target/release/`, so `cargo test`'s debug build is not touched) and maturin is pinned
//! by constraint files, so a warm build only re-links nothing and takes seconds.
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
    /// A new, empty virtualenv at `dir` (which must not exist yet) made from `python`
    /// with `python -m venv`: the pip it gets is the one `ensurepip` bundles, what a user's
    /// fresh venv has. Not cached; the caller owns `dir`.
    pub fn create(python: &Interp, dir: &Path) -> ToolVenv {
        let made = run_logged(
            Command::new(&python.path)
                .args(["-m", "venv"])
                .arg(dir)
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
        ToolVenv {
            dir: dir.to_path_buf(),
            base: python.clone(),
        }
    }

    /// The venv's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make sure pycguard's `wheel` is what is installed in this venv (once per wheel:
    /// `pip install --force-reinstall --no-deps`, recorded in `.pycguard-wheel`), so one
    /// venv serves every build of the checkout instead of one venv per build.
    pub fn ensure_wheel(&self, wheel: &Wheel) {
        let marker = self.dir.join(".pycguard-wheel");
        let want = wheel.path.to_string_lossy().into_owned();
        if fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
            return;
        }
        let mut lock_path = self.dir.clone().into_os_string();
        lock_path.push(".wheel-lock");
        let lock = File::create(lock_path).expect("lock file");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        if fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
            return;
        }
        let out = run_logged(
            self.command(self.python(), &self.dir)
                .args(["-m", "pip", "install", "--force-reinstall"])
                .args(PIP_QUIET)
                .arg(&wheel.path),
            Duration::from_secs(300),
        );
        assert!(
            out.status.success(),
            "pip install {} into {}:\n{}",
            wheel.path.display(),
            self.dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let tmp = self.dir.join(".pycguard-wheel.tmp");
        fs::write(&tmp, &want).expect("write wheel marker");
        fs::rename(&tmp, &marker).expect("publish wheel marker");
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
pub fn unreachable(pip_stderr: &str) -> bool {
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

/// The build backend every build a test starts uses (pinned through constraint files, so a
/// new maturin release cannot change what a test builds or make cargo rebuild).
pub const MATURIN: &str = "maturin==1.16.0";
/// The pip the shared wheel is built with.
const BUILDER_PIP: &str = "pip==26.3";

/// This checkout: the directory with `Cargo.toml` and `pyproject.toml`.
pub fn checkout() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// cargo's target directory of this build (`target/`).
pub fn target_dir() -> PathBuf {
    tools_root()
        .parent()
        .expect("target/test-tools has a parent")
        .to_path_buf()
}

/// The constraint file pinning maturin (written once; its content never changes).
fn build_constraints() -> PathBuf {
    let root = tools_root();
    fs::create_dir_all(&root).expect("create target/test-tools");
    let path = root.join("build-constraints.txt");
    let want = format!("{MATURIN}\n");
    if fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
        let tmp = root.join(format!("build-constraints.txt.{}", std::process::id()));
        fs::write(&tmp, &want).expect("write build constraints");
        fs::rename(&tmp, &path).expect("publish build constraints");
    }
    path
}

/// Held while a build into [`target_dir`] runs: cargo locks its own build, but maturin
/// then moves `target/release/pycguard` into `target/maturin/`, so two builds at once
/// (the shared wheel, `pip install .`, `uv tool install .`, `pipx install .` run as
/// parallel tests) race for that file. Every such build takes this lock (`flock`, so
/// test processes exclude each other too).
pub struct BuildLock(#[allow(dead_code)] File);

/// Wait for, and take, the [`BuildLock`].
pub fn build_lock() -> BuildLock {
    let root = tools_root();
    fs::create_dir_all(&root).expect("create target/test-tools");
    let lock = File::create(root.join("release-build.lock")).expect("build lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    BuildLock(lock)
}

/// Make `cmd` (pip, pre-commit, uv, pipx: anything that may build pycguard from source)
/// build the way the tests' shared wheel is built: cargo's target directory is this
/// repository's `target/` (so a build of any copy of the checkout reuses its compiled
/// dependencies, and an unchanged checkout re-links nothing), maturin is pinned (pip
/// before 25.3 reads `PIP_CONSTRAINT` into its isolated build environments, later pip
/// `PIP_BUILD_CONSTRAINT`; uv `UV_BUILD_CONSTRAINT`), and no pip or maturin option from the
/// caller's environment leaks in.
pub fn build_env(cmd: &mut Command) -> &mut Command {
    let constraints = build_constraints();
    cmd.env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("PIP_CONSTRAINT", &constraints)
        .env("PIP_BUILD_CONSTRAINT", &constraints)
        .env("UV_BUILD_CONSTRAINT", &constraints)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env_remove("PIP_REQUIRE_VIRTUALENV")
        .env_remove("PIP_USER")
        .env_remove("PIP_TARGET")
        .env_remove("PIP_PREFIX")
        .env_remove("MATURIN_PEP517_ARGS")
}

/// Like [`build_env`], for builds of *copies* of the checkout that only need a working
/// binary, not the release one: pre-commit's hook environments (`pip install` of a fresh
/// clone). A clone's sources are always newer than any earlier build, so cargo recompiles
/// the pycguard crate every time; with the release profile (thin LTO) that is most of a
/// minute per hook environment. Here the release profile is overridden through cargo's
/// `CARGO_PROFILE_RELEASE_*` variables (opt-level 0, no LTO, no debug info) and builds go to
/// a target directory of their own (`target/test-tools/hook-target`), so the real release
/// artifacts in `target/release/` are never replaced by these.
pub fn hook_build_env(cmd: &mut Command) -> &mut Command {
    build_env(cmd)
        .env("CARGO_TARGET_DIR", tools_root().join("hook-target"))
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
}

/// pycguard's wheel, built from this checkout by pip with maturin from PyPI.
#[derive(Clone, Debug)]
pub struct Wheel {
    /// `…/pycguard-0.1.0-py3-none-<platform>.whl`
    pub path: PathBuf,
    /// How long `pip wheel .` took when it was built (this run or an earlier one).
    pub build_seconds: f64,
}

/// The files that go into the wheel (and the sdist's build), for the cache key.
fn wheel_inputs() -> Vec<PathBuf> {
    let root = checkout();
    let mut files: Vec<PathBuf> = [
        "Cargo.toml",
        "Cargo.lock",
        "pyproject.toml",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "build.rs",
    ]
    .iter()
    .map(|f| root.join(f))
    .filter(|p| p.is_file())
    .collect();
    let mut stack = vec![root.join("src"), root.join("python")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && entry.file_name() != "__pycache__" {
                stack.push(path);
            } else if kind.is_file() && !matches!(path.extension(), Some(e) if e == "pyc") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Build (once for each content of the checkout's wheel inputs, shared by every test
/// binary and later runs) and return pycguard's wheel: `pip wheel --no-deps .` with
/// PEP 517 build isolation, exactly the build `pip install .` does. `None` (after a
/// `SKIP:` line) when there is no Python 3.12 or PyPI cannot be reached; any other build
/// failure panics with pip's output.
pub fn pycguard_wheel() -> Option<Wheel> {
    let python = default_python().or_else(|| {
        eprintln!("SKIP: no Python 3.12 to build pycguard's wheel with");
        None
    })?;
    let builder = venv_with(&python, "wheel-builder", &[BUILDER_PIP])?;
    let mut key = blake3::Hasher::new();
    key.update(b"pycguard-wheel-v1\0");
    key.update(MATURIN.as_bytes());
    key.update(b"\0");
    key.update(python.version.as_bytes());
    for file in wheel_inputs() {
        key.update(b"\0");
        key.update(
            file.strip_prefix(checkout())
                .unwrap_or(&file)
                .as_os_str()
                .as_encoded_bytes(),
        );
        key.update(b"\0");
        key.update(&fs::read(&file).expect("read a wheel input"));
    }
    let hash = &key.finalize().to_hex()[..16];
    let root = tools_root();
    let dir = root.join(format!("wheel-{hash}"));
    let marker = dir.join(".complete");
    let found = |dir: &Path| -> Option<Wheel> {
        let wheel = fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))?;
        let build_seconds = fs::read_to_string(dir.join(".complete"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Wheel {
            path: wheel,
            build_seconds,
        })
    };
    if marker.is_file() {
        return found(&dir);
    }
    let lock = File::create(root.join(format!("wheel-{hash}.lock"))).expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    if marker.is_file() {
        return found(&dir);
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("remove a half-built wheel dir");
    }
    fs::create_dir_all(&dir).expect("create the wheel dir");
    let start = Instant::now();
    let build = build_lock();
    let built = output_with_timeout(
        build_env(
            builder
                .command(builder.python(), checkout())
                .args(["-m", "pip", "wheel", "--no-deps", "--retries", "2"])
                .args(["--timeout", "60", "-w"])
                .arg(&dir)
                .arg(checkout()),
        ),
        Duration::from_secs(1800),
    );
    drop(build);
    let seconds = start.elapsed().as_secs_f64();
    if !built.status.success() {
        let err = String::from_utf8_lossy(&built.stderr);
        let _ = fs::remove_dir_all(&dir);
        if unreachable(&err) {
            eprintln!("SKIP: cannot build pycguard's wheel: PyPI cannot be reached for {MATURIN}");
            return None;
        }
        panic!(
            "pip wheel {} failed:\n{}\n{err}",
            checkout().display(),
            String::from_utf8_lossy(&built.stdout)
        );
    }
    let tmp = dir.join(".complete.tmp");
    fs::write(&tmp, format!("{seconds:.1}\n")).expect("write marker");
    fs::rename(&tmp, &marker).expect("publish marker");
    report(&format!(
        "WHEEL: built {} in {seconds:.1}s (pip wheel ., {MATURIN})\n",
        dir.display()
    ));
    found(&dir)
}

/// The pip-install options the tests use for an install from a wheel file.
pub const PIP_QUIET: &[&str] = &[
    "--disable-pip-version-check",
    "--no-input",
    "--quiet",
    "--no-deps",
];
