//! pycguard as a Python package, installed the ways Python developers install tools:
//! `pip install .` of this checkout into a fresh virtualenv (pip's PEP 517 build isolation,
//! maturin from PyPI), the wheel file into venvs of other Pythons, `pip install --target`
//! and `--user`, the sdist, `uv tool install .` and `pipx install .` — and what each gives:
//! a working `pycguard` on the environment's PATH, `python -m pycguard` that *is* the binary
//! (same exit status, same signals, the same process), and `pycguard.find_pycguard_bin()`.
//!
//! Builds reuse this repository's `target/` (`tools::build_env`), and the wheel is built
//! once for each content of the checkout (`tools::pycguard_wheel`), so a warm run only
//! installs. Without PyPI every test prints `SKIP:` and passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::tools::{self, output_with_timeout, report, ToolVenv, Wheel, PIP_QUIET};
use common::{set_mtime, Interp, Tree};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    output_with_timeout(cmd, Duration::from_secs(600))
}

fn wheel() -> Option<Wheel> {
    static WHEEL: OnceLock<Option<Wheel>> = OnceLock::new();
    WHEEL.get_or_init(tools::pycguard_wheel).clone()
}

/// A fresh venv in a temp dir (kept alive by the returned guard).
fn fresh_venv(python: &Interp) -> (Tree, ToolVenv) {
    let tree = Tree::new();
    let venv = ToolVenv::create(python, &tree.join("venv"));
    (tree, venv)
}

/// Install the wheel file into `venv`; the time pip took.
fn install_wheel(venv: &ToolVenv, wheel: &Wheel) -> Duration {
    let start = Instant::now();
    let out = run(venv
        .command(venv.python(), venv.dir())
        .args(["-m", "pip", "install"])
        .args(PIP_QUIET)
        .arg(&wheel.path));
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "pip install {} into {}:\n{}",
        wheel.path.display(),
        venv.dir().display(),
        text(&out)
    );
    took
}

/// The venv `pip install .` of the checkout made (once per test binary).
struct Installed {
    _tree: Tree,
    venv: ToolVenv,
}

fn installed() -> Option<&'static Installed> {
    static INSTALLED: OnceLock<Option<Installed>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // The shared wheel first: it is the build (cold: minutes); `pip install .`
            // then finds cargo's work done and only repackages.
            wheel()?;
            let python = tools::default_python()?;
            let (tree, venv) = fresh_venv(&python);
            let start = Instant::now();
            let _build = tools::build_lock();

            let out = run(tools::build_env(
                venv.command(venv.python(), tools::checkout())
                    .args(["-m", "pip", "install", "--quiet", "."]),
            ));
            assert!(
                out.status.success(),
                "pip install . into a fresh venv:\n{}",
                text(&out)
            );
            report(&format!(
                "PACKAGING: `pip install .` of the checkout into a fresh venv (pip {}, cargo warm) took {:.1}s\n",
                pip_version(&venv),
                start.elapsed().as_secs_f64()
            ));
            Some(Installed { _tree: tree, venv })
        })
        .as_ref()
}

fn pip_version(venv: &ToolVenv) -> String {
    let out = run(venv
        .command(venv.python(), venv.dir())
        .args(["-m", "pip", "--version"]));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned()
}

/// A tree with one stale cache (the source grew after it was written: a warning) and one
/// ghost (a legacy `.pyc` whose source was deleted: an error), written by `python`.
fn stale_and_ghost(python: &Interp) -> Tree {
    let tree = Tree::new();
    tree.write("app/__init__.py", b"");
    tree.write("app/mod.py", b"VALUE = 1\n");
    tree.write("app/gone.py", b"VALUE = 2\n");
    python.compile(tree.path(), &["app/mod.py"], "timestamp", 0);
    python.compile(tree.path(), &["app/gone.py"], "legacy", 0);
    fs::remove_file(tree.join("app/gone.py")).unwrap();
    tree.write("app/mod.py", b"VALUE = 100\n");
    tree
}

/// The expected verdicts on [`stale_and_ghost`] from `check --format json`'s output.
fn assert_stale_and_ghost(label: &str, out: &Output) {
    assert_eq!(out.status.code(), Some(1), "{label}: {}", text(out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {}", text(out)));
    let summary = &report["summary"];
    assert_eq!(summary["caches"], 2, "{label}: {report}");
    assert_eq!(summary["stale"], 1, "{label}: {report}");
    assert_eq!(summary["ghost"], 1, "{label}: {report}");
    let states: Vec<(String, String)> = report["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&("./app/gone.pyc".into(), "ghost".into())),
        "{label}: {states:?}"
    );
    assert!(
        states.contains(&(
            "./app/__pycache__/mod.cpython-312.pyc".into(),
            "stale".into()
        )),
        "{label}: {states:?}"
    );
}

/// `command -v pycguard` under `venv.command`'s PATH.
fn which_pycguard(venv: &ToolVenv, dir: &Path) -> String {
    let out = run(venv
        .command("/bin/sh", dir)
        .args(["-c", "command -v pycguard"]));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn canonical(p: impl AsRef<Path>) -> PathBuf {
    fs::canonicalize(p.as_ref()).unwrap_or_else(|_| p.as_ref().to_path_buf())
}

#[test]
fn wheel_is_py3_none_platform_with_the_binary_the_package_the_plugin_and_the_licences() {
    let Some(wheel) = wheel() else { return };
    let name = wheel
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("pycguard-{VERSION}-py3-none-"))
            && (name.ends_with("linux_x86_64.whl") || name.contains("linux")),
        "wheel name {name}"
    );
    // Read it with the zipfile module of a real interpreter (what pip does).
    let python = tools::default_python().unwrap();
    let listing = python.run(
        Path::new("/"),
        r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
info = {i.filename: [i.file_size, i.external_attr >> 16] for i in z.infolist()}
meta = {}
for n in info:
    if n.endswith((".dist-info/WHEEL", ".dist-info/METADATA", ".dist-info/entry_points.txt")):
        meta[n.rsplit("/", 1)[1]] = z.read(n).decode()
sys.stdout.write(json.dumps({"files": info, "meta": meta}))
"#,
        &[wheel.path.as_os_str()],
    );
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let files = listing["files"].as_object().unwrap();
    let data = format!("pycguard-{VERSION}.data/scripts/pycguard");
    let info = format!("pycguard-{VERSION}.dist-info");
    for want in [
        data.as_str(),
        "pycguard/__init__.py",
        "pycguard/__main__.py",
        "pycguard/pytest_plugin.py",
        &format!("{info}/licenses/LICENSE-MIT"),
        &format!("{info}/licenses/LICENSE-APACHE"),
        &format!("{info}/entry_points.txt"),
    ] {
        assert!(files.contains_key(want), "{want} not in {name}: {files:?}");
    }
    // The binary is executable, stripped-sized, and nothing of the Rust tree rides along.
    let mode = files[&data][1].as_u64().unwrap();
    assert!(mode & 0o111 != 0, "scripts/pycguard mode {mode:o}");
    assert!(
        !files
            .keys()
            .any(|f| f.ends_with(".rs") || f.starts_with("src/")),
        "Rust sources in the wheel: {files:?}"
    );
    let meta = &listing["meta"];
    let wheel_meta = meta["WHEEL"].as_str().unwrap();
    assert!(
        wheel_meta
            .lines()
            .any(|l| l.starts_with("Tag: py3-none-") && l.contains("linux")),
        "{wheel_meta}"
    );
    assert!(
        wheel_meta.contains("Root-Is-Purelib: false"),
        "{wheel_meta}"
    );
    let entry_points = meta["entry_points.txt"].as_str().unwrap();
    assert!(
        entry_points.contains("[pytest11]")
            && entry_points
                .replace(' ', "")
                .contains("pycguard=pycguard.pytest_plugin"),
        "{entry_points}"
    );
    let metadata = meta["METADATA"].as_str().unwrap();
    for want in [
        "Name: pycguard".to_owned(),
        format!("Version: {VERSION}"),
        "Requires-Python: >=3.8".to_owned(),
        "License-Expression: MIT OR Apache-2.0".to_owned(),
        "Project-URL: Repository, https://github.com/pycguard/pycguard".to_owned(),
        "Summary: Find, prove and repair Python bytecode caches".to_owned(),
        "Classifier: Framework :: Pytest".to_owned(),
        "Description-Content-Type: text/markdown".to_owned(),
    ] {
        assert!(metadata.contains(&want), "METADATA lacks {want:?}");
    }
    assert!(metadata.contains("\n# pycguard\n"), "README as description");

    // Install time of the wheel file into a fresh venv.
    let (_tree, venv) = fresh_venv(&python);
    let took = install_wheel(&venv, &wheel);
    let size = fs::metadata(&wheel.path).unwrap().len();
    let binary = files[&data][0].as_u64().unwrap();
    report(&format!(
        "PACKAGING: wheel {name}: {:.2} MiB ({:.2} MiB binary unpacked; built by `pip wheel .` in {:.1}s); `pip install` of the wheel file into a fresh venv (pip {}): {:.2}s\n",
        size as f64 / 1048576.0,
        binary as f64 / 1048576.0,
        wheel.build_seconds,
        pip_version(&venv),
        took.as_secs_f64()
    ));
    let out = run(venv
        .command(venv.bin("pycguard"), venv.dir())
        .arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pycguard {VERSION}")
    );
}

#[test]
fn pip_install_dot_puts_a_working_pycguard_on_the_venv_path() {
    let Some(inst) = installed() else { return };
    let venv = &inst.venv;
    let python = tools::default_python().unwrap();
    let tree = stale_and_ghost(&python);
    // `pycguard` resolves to the venv's own binary through PATH…
    assert_eq!(
        canonical(which_pycguard(venv, tree.path())),
        canonical(venv.bin("pycguard"))
    );
    // …and judges a real tree: the stale cache and the ghost, exit status 1.
    let out = run(venv.command("pycguard", tree.path()).args([
        "check",
        "--format",
        "json",
        "--no-cache",
    ]));
    assert_stale_and_ghost("pycguard from the venv's PATH", &out);
    // `python -m pycguard` gives the same report and status.
    let out_m = run(venv.command(venv.python(), tree.path()).args([
        "-m",
        "pycguard",
        "check",
        "--format",
        "json",
        "--no-cache",
    ]));
    assert_stale_and_ghost("python -m pycguard", &out_m);
    assert_eq!(out.stdout, out_m.stdout);
    // --version through both.
    for cmd in [
        venv.command(venv.python(), tree.path())
            .args(["-m", "pycguard", "--version"])
            .output()
            .unwrap(),
        venv.command("pycguard", tree.path())
            .arg("--version")
            .output()
            .unwrap(),
    ] {
        assert!(cmd.status.success(), "{}", text(&cmd));
        assert_eq!(
            String::from_utf8_lossy(&cmd.stdout).trim(),
            format!("pycguard {VERSION}")
        );
    }
    // find_pycguard_bin() is the venv's binary.
    let out = run(venv.command(venv.python(), tree.path()).args([
        "-c",
        "import pycguard, sys; sys.stdout.write(pycguard.find_pycguard_bin())",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        canonical(String::from_utf8_lossy(&out.stdout).as_ref()),
        canonical(venv.bin("pycguard"))
    );
    // The tree was only read.
    assert!(tree.join("app/gone.pyc").is_file());
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command name: state, ppid, …
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(pid) {
            found.push(child);
        }
    }
    found
}

/// A tree whose one cache takes seconds to prove: a 300,000-line module behind a cache
/// whose header matches it (written for a same-size stand-in, the mtime put back).
fn slow_to_prove(python: &Interp) -> Tree {
    let tree = Tree::new();
    let big: String = (0..300_000).map(|i| format!("a{i} = {i}\n")).collect();
    let stand_in = format!("#{}\n", "x".repeat(big.len() - 2));
    assert_eq!(stand_in.len(), big.len());
    let path = tree.write("big.py", stand_in.as_bytes());
    set_mtime(&path, 1_700_000_000, 0);
    python.compile(tree.path(), &["big.py"], "timestamp", 0);
    fs::write(&path, big).unwrap();
    set_mtime(&path, 1_700_000_000, 0);
    tree
}

/// Start `cmd` on a slow-to-prove tree, wait until its deep worker runs, send `signal`;
/// the exit status and the executable the process was running when signalled.
fn signalled(mut cmd: Command, signal: i32) -> (Option<i32>, Option<i32>, PathBuf, String) {
    use std::os::unix::process::ExitStatusExt;
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    while children_of(pid).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{cmd:?} ended before its worker started: {status:?}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{cmd:?}: no worker after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    // SAFETY: sending a signal to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let sent = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if sent.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{cmd:?} still running 20 s after signal {signal}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{cmd:?} took {:?} to stop after signal {signal}",
        sent.elapsed()
    );
    (
        out.status.code(),
        out.status.signal(),
        exe,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn python_m_pycguard_is_the_binary_exit_status_and_signals() {
    let Some(inst) = installed() else { return };
    let venv = &inst.venv;
    let python = tools::default_python().unwrap();
    let binary = venv.bin("pycguard");
    let cache = Tree::new();
    // Usage errors and plain statuses pass through.
    for args in [
        &["check", "--no-such-flag"][..],
        &["no-such-command"],
        &["check", "/nonexistent-pycguard-path"],
    ] {
        let direct = run(venv.command(&binary, cache.path()).args(args));
        let via_m = run(venv
            .command(venv.python(), cache.path())
            .args(["-m", "pycguard"])
            .args(args));
        assert_eq!(direct.status.code(), Some(2), "{args:?}: {}", text(&direct));
        assert_eq!(via_m.status.code(), direct.status.code(), "{args:?}");
        assert_eq!(via_m.stdout, direct.stdout, "{args:?}");
        assert_eq!(via_m.stderr, direct.stderr, "{args:?}");
    }
    // Signals: SIGTERM and SIGINT while `check --deep` proves a big module. The process
    // `python -m pycguard` started is, by then, the binary itself (exec, same pid), and
    // it ends as the binary ends: 143 / 130, not killed by the signal.
    let tree = slow_to_prove(&python);
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let args = |cmd: &mut Command| {
            cmd.args(["check", "--deep", "--no-cache", "--python"])
                .arg(&python.path)
                .arg(".");
        };
        let mut direct = venv.command(&binary, tree.path());
        args(&mut direct);
        let (direct_code, direct_signal, direct_exe, err) = signalled(direct, signal);
        assert_eq!(
            (direct_code, direct_signal),
            (Some(code), None),
            "the binary itself after signal {signal}: {err}"
        );
        assert_eq!(canonical(&direct_exe), canonical(&binary));
        let mut via_m = venv.command(venv.python(), tree.path());
        via_m.args(["-m", "pycguard"]);
        args(&mut via_m);
        let (m_code, m_signal, m_exe, err) = signalled(via_m, signal);
        assert_eq!(
            canonical(&m_exe),
            canonical(&binary),
            "python -m pycguard did not exec the binary"
        );
        assert_eq!(
            (m_code, m_signal),
            (direct_code, direct_signal),
            "python -m pycguard after signal {signal}: {err}"
        );
    }
}

#[test]
fn pip_install_target_and_user_find_the_binary_and_a_missing_one_is_named() {
    let Some(wheel) = wheel() else { return };
    let python = tools::default_python().unwrap();
    let plain = |dir: &Path| {
        let mut cmd = python.command(dir);
        cmd.env_remove("PYTHONUSERBASE");
        cmd
    };
    let find = "import pycguard, sys; sys.stdout.write(pycguard.find_pycguard_bin())";
    let scripts = python.run(
        Path::new("/"),
        "import sysconfig, sys; sys.stdout.write(sysconfig.get_path('scripts'))",
        &[],
    );
    let base_has_one = Path::new(&scripts).join("pycguard").exists();

    // --target DIR: the package in DIR/pycguard, the binary in DIR/bin.
    let target = Tree::new();
    let out = run(python
        .command(target.path())
        .args(["-m", "pip", "install"])
        .args(PIP_QUIET)
        .arg("--target")
        .arg(target.join("t"))
        .arg(&wheel.path));
    assert!(out.status.success(), "pip install --target: {}", text(&out));
    assert!(target.join("t/bin/pycguard").is_file());
    assert!(target.join("t/pycguard/__init__.py").is_file());
    let t = target.join("t");
    if base_has_one {
        eprintln!("SKIP: {scripts}/pycguard exists: the --target binary cannot be the first found");
    } else {
        let out = plain(target.path())
            .env("PYTHONPATH", &t)
            .env("PYTHONUSERBASE", target.join("no-user-base"))
            .args(["-c", find])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            canonical(String::from_utf8_lossy(&out.stdout).as_ref()),
            canonical(t.join("bin/pycguard"))
        );
        let out = plain(target.path())
            .env("PYTHONPATH", &t)
            .env("PYTHONUSERBASE", target.join("no-user-base"))
            .args(["-m", "pycguard", "--version"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("pycguard {VERSION}"),
            "{}",
            text(&out)
        );
    }

    // --user with PYTHONUSERBASE: the binary in the user scheme's scripts directory.
    let user = Tree::new();
    let out = run(plain(user.path())
        .env("PYTHONUSERBASE", user.join("base"))
        .args(["-m", "pip", "install", "--user"])
        .args(PIP_QUIET)
        .arg(&wheel.path));
    assert!(out.status.success(), "pip install --user: {}", text(&out));
    assert!(user.join("base/bin/pycguard").is_file());
    if !base_has_one {
        let out = plain(user.path())
            .env("PYTHONUSERBASE", user.join("base"))
            .args(["-c", find])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            canonical(String::from_utf8_lossy(&out.stdout).as_ref()),
            canonical(user.join("base/bin/pycguard"))
        );
    }

    // The package without its binary: FileNotFoundError naming every place searched;
    // `python -m pycguard` says so and exits 127.
    if base_has_one {
        return;
    }
    fs::remove_file(t.join("bin/pycguard")).unwrap();
    let out = plain(target.path())
        .env("PYTHONPATH", &t)
        .env("PYTHONUSERBASE", target.join("no-user-base"))
        .args([
            "-c",
            "import pycguard\ntry:\n    pycguard.find_pycguard_bin()\nexcept FileNotFoundError as e:\n    print('FileNotFoundError:', e)\n",
        ])
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        said.contains("FileNotFoundError: the pycguard binary was not found"),
        "{said}"
    );
    for place in [
        format!("{scripts}/pycguard"),
        format!("{}/bin/pycguard", t.display()),
        format!("{}/no-user-base/bin/pycguard", target.path().display()),
    ] {
        assert!(said.contains(&place), "{place} not named in: {said}");
    }
    let out = plain(target.path())
        .env("PYTHONPATH", &t)
        .env("PYTHONUSERBASE", target.join("no-user-base"))
        .args(["-m", "pycguard", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("pycguard: the pycguard binary was not found"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_wheel_installs_on_every_python_it_claims_and_is_refused_below() {
    let Some(wheel) = wheel() else { return };
    let interps = common::interpreters();
    let pyenv = |major: u32, minor: u32| {
        interps
            .iter()
            .find(|i| (i.major, i.minor) == (major, minor))
            .cloned()
    };
    std::thread::scope(|s| {
        for (major, minor) in [(3, 8), (3, 13)] {
            let Some(python) = pyenv(major, minor) else {
                eprintln!("SKIP: no Python {major}.{minor} to install the wheel into");
                continue;
            };
            let wheel = wheel.clone();
            s.spawn(move || {
                let (_tree, venv) = fresh_venv(&python);
                install_wheel(&venv, &wheel);
                let out = run(venv
                    .command(venv.python(), venv.dir())
                    .args(["-m", "pycguard", "--version"]));
                assert_eq!(
                    String::from_utf8_lossy(&out.stdout).trim(),
                    format!("pycguard {VERSION}"),
                    "{}: {}",
                    python.version,
                    text(&out)
                );
                // Every module of the package compiles on this Python (the plugin needs
                // pytest to import, so it is compiled, not imported).
                let out = run(venv.command(venv.python(), venv.dir()).args([
                    "-c",
                    "import os, pycguard, pycguard.__main__\n\
                     d = os.path.dirname(pycguard.__file__)\n\
                     for n in sorted(os.listdir(d)):\n\
                     \x20   if n.endswith('.py'):\n\
                     \x20       compile(open(os.path.join(d, n)).read(), n, 'exec', dont_inherit=True)\n\
                     print(pycguard.find_pycguard_bin())\n",
                ]));
                assert!(out.status.success(), "{}: {}", python.version, text(&out));
                assert_eq!(
                    canonical(String::from_utf8_lossy(&out.stdout).trim()),
                    canonical(venv.bin("pycguard")),
                    "{}",
                    python.version
                );
            });
        }
        // Python 3.7 is below requires-python: pip refuses the wheel.
        match pyenv(3, 7) {
            Some(python) => {
                let wheel = wheel.clone();
                s.spawn(move || {
                    let (_tree, venv) = fresh_venv(&python);
                    let out = run(venv
                        .command(venv.python(), venv.dir())
                        .args(["-m", "pip", "install"])
                        .args(PIP_QUIET)
                        .arg(&wheel.path));
                    assert!(!out.status.success(), "pip installed it on 3.7");
                    assert!(
                        text(&out).contains("requires a different Python"),
                        "{}",
                        text(&out)
                    );
                });
            }
            None => eprintln!("SKIP: no Python 3.7 to see the wheel refused"),
        }
    });
}

#[test]
fn sdist_has_the_licences_and_what_a_build_needs_and_installs() {
    let Some(_wheel) = wheel() else { return };
    let Some(maturin) = tools::venv("maturin", &[tools::MATURIN]) else {
        return;
    };
    let out_dir = Tree::new();
    let out = run(tools::build_env(
        maturin
            .command(maturin.bin("maturin"), tools::checkout())
            .args(["sdist", "--out"])
            .arg(out_dir.path()),
    ));
    assert!(out.status.success(), "maturin sdist: {}", text(&out));
    let sdist = out_dir.join(format!("pycguard-{VERSION}.tar.gz"));
    assert!(sdist.is_file(), "{}", text(&out));
    let names = maturin.interp().run(
        Path::new("/"),
        "import sys, tarfile\nsys.stdout.write('\\n'.join(tarfile.open(sys.argv[1]).getnames()))",
        &[sdist.as_os_str()],
    );
    let names: Vec<&str> = names.lines().collect();
    let top = format!("pycguard-{VERSION}");
    for want in [
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        "README.md",
        "PKG-INFO",
        "src/main.rs",
        "src/lib.rs",
        "python/pycguard/__init__.py",
        "python/pycguard/__main__.py",
        "python/pycguard/pytest_plugin.py",
    ] {
        let path = format!("{top}/{want}");
        assert!(names.contains(&path.as_str()), "{path} not in the sdist");
    }
    assert!(
        !names.iter().any(|n| n.contains("/target/")),
        "build output in the sdist"
    );
    // pip builds and installs it (what `pip install pycguard` does on a platform without
    // a wheel).
    let python = tools::default_python().unwrap();
    let (_tree, venv) = fresh_venv(&python);
    let _build = tools::build_lock();
    let out = run(tools::build_env(
        venv.command(venv.python(), venv.dir())
            .args(["-m", "pip", "install", "--quiet"])
            .arg(&sdist),
    ));
    assert!(out.status.success(), "pip install sdist: {}", text(&out));
    let out = run(venv
        .command(venv.bin("pycguard"), venv.dir())
        .arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pycguard {VERSION}")
    );
}

#[test]
fn uv_tool_install_dot_gives_a_working_pycguard() {
    let Some(_wheel) = wheel() else { return };
    let Some(uv) = tools::venv("uv", &["uv==0.13.8"]) else {
        return;
    };
    let python = tools::default_python().unwrap();
    let home = Tree::new();
    let bin_dir = home.join("bin");
    let start = Instant::now();
    let _build = tools::build_lock();
    let out = run(tools::build_env(
        uv.command(uv.bin("uv"), tools::checkout())
            .args(["tool", "install", "--python"])
            .arg(&python.path)
            .arg(".")
            .env("UV_TOOL_DIR", home.join("tools"))
            .env("UV_TOOL_BIN_DIR", &bin_dir)
            // A cache of its own: uv keys a local project's built wheel by the mtimes
            // of its pyproject.toml (not by the Rust sources), so a shared cache could
            // install an older build.
            .env("UV_CACHE_DIR", home.join("uv-cache"))
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_CONFIG", "1")
            .env_remove("VIRTUAL_ENV"),
    ));
    if !out.status.success() && text(&out).contains("Failed to fetch") {
        eprintln!("SKIP: uv tool install . cannot reach PyPI: {}", text(&out));
        return;
    }
    assert!(out.status.success(), "uv tool install .: {}", text(&out));
    report(&format!(
        "PACKAGING: `uv tool install .` took {:.1}s\n",
        start.elapsed().as_secs_f64()
    ));
    let tree = stale_and_ghost(&python);
    let out = run(Command::new(bin_dir.join("pycguard"))
        .current_dir(tree.path())
        .args(["check", "--format", "json", "--no-cache"]));
    assert_stale_and_ghost("uv tool install .", &out);
}

#[test]
fn pipx_install_dot_gives_a_working_pycguard() {
    let Some(_wheel) = wheel() else { return };
    let Some(pipx) = tools::venv("pipx", &["pipx==1.18.4"]) else {
        return;
    };
    let python = tools::default_python().unwrap();
    let home = Tree::new();
    let bin_dir = home.join("bin");
    let start = Instant::now();
    let _build = tools::build_lock();
    let out = run(tools::build_env(
        pipx.command(pipx.bin("pipx"), tools::checkout())
            .args(["install", "--python"])
            .arg(&python.path)
            .arg(".")
            .env("PIPX_HOME", home.join("pipx"))
            .env("PIPX_BIN_DIR", &bin_dir)
            .env("PIPX_MAN_DIR", home.join("man"))
            .env_remove("VIRTUAL_ENV"),
    ));
    assert!(out.status.success(), "pipx install .: {}", text(&out));
    report(&format!(
        "PACKAGING: `pipx install .` took {:.1}s\n",
        start.elapsed().as_secs_f64()
    ));
    let tree = stale_and_ghost(&python);
    let out = run(Command::new(bin_dir.join("pycguard"))
        .current_dir(tree.path())
        .args(["check", "--format", "json", "--no-cache"]));
    assert_stale_and_ghost("pipx install .", &out);
}

#[test]
fn python_package_is_ruff_clean() {
    let Some(ruff) = tools::venv("ruff", &["ruff==0.17.5"]) else {
        return;
    };
    for args in [&["check", "python"][..], &["format", "--check", "python"]] {
        let out = run(ruff
            .command(ruff.bin("ruff"), tools::checkout())
            .args(args)
            .arg("--no-cache"));
        assert!(out.status.success(), "ruff {args:?}:\n{}", text(&out));
    }
}
