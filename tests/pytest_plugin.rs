//! The pytest plugin shipped in pycguard's wheel (`pycguard.pytest_plugin`, entry point
//! `pytest11`), run by real pytest from PyPI (9.2.0, and 8.3.4 with its timestamp rewrite
//! caches) in venvs holding pytest and the wheel built from this checkout.
//!
//! The project is story 4/5's: its `conftest.py` imports the package under test, and the
//! package's module has a hidden-stale cache (`VALUE = 60` edited to `VALUE = 30`, same
//! size, mtime put back, the cache written by the venv's own interpreter), so the old code
//! is imported before any test or fixture could repair it. What must happen:
//!
//! - without the plugin (or `--pycguard=off`, or off in the ini file) the first run fails
//!   on the old value, and the plugin runs nothing (not even a missing binary is noticed);
//! - `--pycguard=fix` (or `pycguard = "fix"` in `[tool.pytest.ini_options]`) repairs the
//!   cache before `conftest.py` is imported: the first run passes, and the report header
//!   says what was repaired;
//! - `--pycguard` (check) stops pytest with exit 4 naming the cache, its state and reason,
//!   and changes nothing; on a clean tree it passes with "N caches fresh" in the header;
//! - a cache `fix` cannot repair (the source now has a SyntaxError) stops pytest with 4;
//!   a missing binary and a bad ini value are clear usage errors; an xdist worker does
//!   nothing;
//! - pytest's own rewrite caches (`*-pytest-X.Y.Z.pyc`) are never touched, not even one
//!   pytest itself would now rewrite (a test file edited but not collected in this run).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::tools::{self, output_with_timeout, report, ToolVenv};
use common::{mtime, set_mtime, snapshot, Interp, Tree};

/// The pytest pins the plugin is tested with.
const PINS: &[&str] = &["9.2.0", "8.3.4"];

const SETTINGS_OLD: &str = "VALUE = 60\n";
const SETTINGS_NEW: &str = "VALUE = 30\n";
const SETTINGS_BROKEN: &str = "VALUE = 3(\n";
const CONFTEST: &str = "import app.settings\n";
const TEST_VALUE: &str =
    "import app.settings\n\n\ndef test_value():\n    assert app.settings.VALUE == 30\n";
const TEST_OTHER: &str = "def test_other():\n    assert True\n";
const TEST_OTHER_EDITED: &str = "def test_other():\n    assert 1 == 1\n";

struct Pytest {
    version: &'static str,
    venv: ToolVenv,
}

impl Pytest {
    fn label(&self) -> String {
        format!("pytest {}", self.version)
    }

    /// Run pytest in `proj` (bytecode writing on, pycguard's cache directory the test's).
    fn run(&self, proj: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.venv.command(self.venv.bin("pytest"), proj);
        cmd.args(["-p", "no:cacheprovider"])
            .args(args)
            .env("PYCGUARD_CACHE_DIR", common::test_cache_dir())
            .env_remove("PYTEST_XDIST_WORKER")
            .env_remove("PYTEST_DISABLE_PLUGIN_AUTOLOAD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        output_with_timeout(&mut cmd, Duration::from_secs(300))
    }

    fn python(&self) -> Interp {
        self.venv.interp()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every pin in a venv made from the default 3.12 with the wheel installed.
fn pytests() -> Vec<Pytest> {
    let Some(wheel) = tools::pycguard_wheel() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = PINS
            .iter()
            .map(|version| {
                let wheel = &wheel;
                s.spawn(move || {
                    let pin = format!("pytest=={version}");
                    let name = format!("pytest-plugin-{version}");
                    let venv = tools::venv(&name, &[&pin])?;
                    venv.ensure_wheel(wheel);
                    Some(Pytest { version, venv })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}

/// A project whose `app/settings.py` has a hidden-stale cache, and whose pytest rewrite
/// caches exist (written by a first pytest run on the old code), with one of them
/// (`tests/test_other.py`'s) stale for pytest: the file was edited after it.
fn stale_project(pytest: &Pytest, tree: &Tree, name: &str, ini: &str) -> PathBuf {
    let proj = tree.join(name);
    let write = |rel: &str, text: &str| {
        let p = proj.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        set_mtime(&p, 1_700_000_000, 0);
    };
    write(
        "pyproject.toml",
        &format!("[tool.pytest.ini_options]\n{ini}"),
    );
    write("conftest.py", CONFTEST);
    write("app/__init__.py", "");
    write("app/settings.py", SETTINGS_OLD);
    write("tests/test_value.py", TEST_VALUE);
    write("tests/test_other.py", TEST_OTHER);
    // The first run writes every cache: the interpreter's for app/, pytest's for the
    // conftest and the tests (the test fails on the old value; that is not this run's
    // point).
    let out = pytest.run(&proj, &["--pycguard=off"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let cache = settings_cache(pytest, &proj);
    assert!(
        cache.is_file(),
        "{}: no {}",
        pytest.label(),
        cache.display()
    );
    // Same size, mtime put back: Python keeps trusting the cache of the old code.
    let settings = proj.join("app/settings.py");
    let (secs, nanos) = mtime(&settings);
    fs::write(&settings, SETTINGS_NEW).unwrap();
    set_mtime(&settings, secs as u64, nanos as u32);
    assert_eq!(
        pytest.python().import_value(&proj, "app.settings"),
        Ok("60".into()),
        "{}: the interpreter should still run the old code",
        pytest.label()
    );
    // A pytest cache that pytest itself would now rewrite (pytest 9.2 by hash, older ones
    // by size): only pytest may do that.
    write("tests/test_other.py", TEST_OTHER_EDITED);
    let other = pytest_caches(&proj)
        .into_keys()
        .find(|p| p.to_string_lossy().contains("test_other."))
        .expect("pytest's cache of test_other.py");
    assert!(other.is_file());
    proj
}

fn settings_cache(pytest: &Pytest, proj: &Path) -> PathBuf {
    let base = pytest.venv.base();
    proj.join(format!(
        "app/__pycache__/settings.cpython-{}{}.pyc",
        base.major, base.minor
    ))
}

/// pytest's rewrite caches under `proj`, with their bytes and mtimes.
fn pytest_caches(proj: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64, i64)> {
    snapshot(proj)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("-pytest-"))
        .collect()
}

/// The lines of pytest's report header that the plugin added.
fn header(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| !l.starts_with("pycguard: "))
        .take_while(|l| l.starts_with("pycguard: ") || l.starts_with("  "))
        .map(str::to_owned)
        .collect()
}

fn for_each_pytest(body: impl Fn(&Pytest) + Sync) {
    let pytests = pytests();
    if pytests.is_empty() {
        eprintln!("SKIP: no pytest venv with pycguard's wheel (PyPI or Python 3.12 missing)");
        return;
    }
    std::thread::scope(|s| {
        for p in &pytests {
            let body = &body;
            s.spawn(move || {
                let start = Instant::now();
                body(p);
                report(&format!(
                    "PYTEST-PLUGIN: {}: {:.1}s\n",
                    p.label(),
                    start.elapsed().as_secs_f64()
                ));
            });
        }
    });
}

#[test]
fn without_the_plugin_the_first_run_fails_and_nothing_is_run() {
    for_each_pytest(|pytest| {
        let tree = Tree::new();
        for (name, args, ini) in [
            ("default", &[][..], ""),
            ("off-flag", &["--pycguard=off"], ""),
            ("off-over-ini", &["--pycguard=off"], "pycguard = \"fix\"\n"),
            ("off-in-ini", &[], "pycguard = \"off\"\n"),
        ] {
            let proj = stale_project(pytest, &tree, name, ini);
            let before = snapshot(&proj);
            let out = pytest.run(&proj, args, &[]);
            let said = text(&out);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} {name}: {said}",
                pytest.label()
            );
            assert!(said.contains("assert 60 == 30"), "{name}: {said}");
            assert!(header(&out).is_empty(), "{name}: {:?}", header(&out));
            // Nothing was written, not even the caches pytest keeps (all were fresh).
            let after = snapshot(&proj);
            assert_eq!(
                before.keys().collect::<Vec<_>>(),
                after.keys().collect::<Vec<_>>(),
                "{name}"
            );
            let cache = settings_cache(pytest, &proj);
            assert_eq!(before[&cache], after[&cache], "{name}: settings cache");
        }
        // `pytest --help` and `--version` import no test code: nothing to repair for.
        let proj = stale_project(pytest, &tree, "help", "pycguard = \"fix\"\n");
        let cache = settings_cache(pytest, &proj);
        let old = fs::read(&cache).unwrap();
        for flag in ["--help", "--version"] {
            let out = pytest.run(&proj, &[flag], &[]);
            assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out));
            assert_eq!(fs::read(&cache).unwrap(), old, "{flag} ran fix");
        }
        // Off means off: with the binary gone, an off run is unaffected (nothing is looked
        // up, no subprocess), and asking for the plugin is a clear usage error.
        missing_binary(pytest, &tree);
    });
}

/// The package installed with `--target` minus its binary, on `PYTHONPATH` of a venv
/// that has only pytest.
fn missing_binary(pytest: &Pytest, tree: &Tree) {
    let Some(wheel) = tools::pycguard_wheel() else {
        return;
    };
    let Some(bare) = tools::venv(
        &format!("pytest-{}-py312", pytest.version),
        &[&format!("pytest=={}", pytest.version)],
    ) else {
        return;
    };
    let target = tree.join("target-install");
    let out = output_with_timeout(
        bare.command(bare.python(), tree.path())
            .args(["-m", "pip", "install"])
            .args(tools::PIP_QUIET)
            .arg("--target")
            .arg(&target)
            .arg(&wheel.path),
        Duration::from_secs(300),
    );
    assert!(out.status.success(), "{}", text(&out));
    fs::remove_file(target.join("bin/pycguard")).unwrap();
    let bare = Pytest {
        version: pytest.version,
        venv: bare,
    };
    let proj = stale_project(pytest, tree, "missing-binary", "");
    let env = [
        ("PYTHONPATH", target.to_str().unwrap()),
        ("PYTHONUSERBASE", "/nonexistent-pycguard-user-base"),
    ];
    let out = bare.run(&proj, &[], &env);
    assert_eq!(out.status.code(), Some(1), "off, no binary: {}", text(&out));
    let out = bare.run(&proj, &["--pycguard=fix"], &env);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(4), "fix, no binary: {said}");
    assert!(
        said.contains(
            "pycguard: --pycguard=fix needs the pycguard binary: the pycguard binary was not found"
        ),
        "{said}"
    );
}

#[test]
fn fix_repairs_before_conftest_imports_the_package_and_leaves_pytest_caches_alone() {
    for_each_pytest(|pytest| {
        let tree = Tree::new();
        for (name, args, ini) in [
            ("flag", &["--pycguard=fix"][..], ""),
            ("ini", &[], "pycguard = \"fix\"\n"),
            (
                "ini-over-check",
                &["--pycguard=fix"],
                "pycguard = \"check\"\n",
            ),
        ] {
            let label = format!("{} {name}", pytest.label());
            let proj = stale_project(pytest, &tree, name, ini);
            let ours = pytest_caches(&proj);
            let cache = settings_cache(pytest, &proj);
            let old = fs::read(&cache).unwrap();
            // The first run. Only tests/test_value.py is collected, so pytest leaves
            // test_other's (now stale) rewrite cache alone.
            let out = pytest.run(&proj, &[args, &["tests/test_value.py"]].concat(), &[]);
            let said = text(&out);
            assert_eq!(out.status.code(), Some(0), "{label}: {said}");
            let header = header(&out);
            assert_eq!(
                header.first().map(String::as_str),
                Some("pycguard: fix: repaired 1, deleted 0, left 0, failed 0"),
                "{label}: {said}"
            );
            assert!(
                header.iter().any(|l| l.starts_with("  recompiled ")
                    && l.contains("settings.cpython-312.pyc (hidden-stale")),
                "{label}: {header:?}"
            );
            assert_ne!(
                fs::read(&cache).unwrap(),
                old,
                "{label}: cache not rewritten"
            );
            assert_eq!(
                pytest.python().import_value(&proj, "app.settings"),
                Ok("30".into()),
                "{label}"
            );
            // pytest's rewrite caches, byte for byte and mtime for mtime — including the
            // one pytest would rewrite and `pycguard fix` on its own would delete.
            assert_eq!(
                pytest_caches(&proj),
                ours,
                "{label}: pytest's caches changed"
            );
        }
    });
}

#[test]
fn check_stops_with_exit_4_naming_the_cache_and_passes_a_clean_tree() {
    for_each_pytest(|pytest| {
        let tree = Tree::new();
        for (name, args, ini) in [
            ("flag", &["--pycguard"][..], ""),
            ("flag-check", &["--pycguard=check"], ""),
            ("ini", &[], "pycguard = \"check\"\n"),
            (
                "ini-over-fix",
                &["--pycguard=check"],
                "pycguard = \"fix\"\n",
            ),
        ] {
            let label = format!("{} {name}", pytest.label());
            let proj = stale_project(pytest, &tree, name, ini);
            let before = snapshot(&proj);
            let out = pytest.run(&proj, args, &[]);
            let said = text(&out);
            assert_eq!(out.status.code(), Some(4), "{label}: {said}");
            assert!(
                said.contains("app/__pycache__/settings.cpython-312.pyc: hidden-stale: the cached code is not the source's: constant 60 became 30"),
                "{label}: {said}"
            );
            assert!(
                said.contains("Repair with `pytest --pycguard=fix` or `pycguard fix --deep "),
                "{label}: {said}"
            );
            assert!(!said.contains("assert 60 == 30"), "{label}: tests ran");
            assert!(
                !said.contains("-pytest-"),
                "{label}: pytest's caches listed"
            );
            assert_eq!(snapshot(&proj), before, "{label}: check changed the tree");
        }
        // After a repair the same check passes, with the count in the header.
        let proj = stale_project(pytest, &tree, "clean", "");
        let out = pytest.run(&proj, &["--pycguard=fix", "tests/test_value.py"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = pytest.run(&proj, &["tests/test_value.py", "--pycguard"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(
            header(&out).first().map(String::as_str),
            Some("pycguard: check: 2 caches fresh"),
            "{}",
            text(&out)
        );
        // A warning (a stale cache: Python recompiles it itself) does not stop the run;
        // the header names it.
        fs::write(proj.join("app/__init__.py"), "# the package\n").unwrap();
        let out = pytest.run(&proj, &["tests/test_value.py", "--pycguard"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let header = header(&out);
        assert_eq!(
            header.first().map(String::as_str),
            Some("pycguard: check: 2 caches: 1 fresh, 1 stale"),
            "{}",
            text(&out)
        );
        assert!(
            header
                .iter()
                .any(|l| l.starts_with("  app/__pycache__/__init__.cpython-312.pyc: stale: ")),
            "{header:?}"
        );
    });
}

#[test]
fn unrepairable_cache_missing_binary_bad_ini_and_xdist_workers() {
    for_each_pytest(|pytest| {
        let tree = Tree::new();
        // The source now has a SyntaxError (same size, mtime kept): fix cannot recompile,
        // the old code would run: exit 4, naming the failure and the cache.
        let proj = stale_project(pytest, &tree, "broken", "");
        let settings = proj.join("app/settings.py");
        let (secs, nanos) = mtime(&settings);
        fs::write(&settings, SETTINGS_BROKEN).unwrap();
        set_mtime(&settings, secs as u64, nanos as u32);
        let out = pytest.run(&proj, &["--pycguard=fix"], &[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(4), "{said}");
        assert!(
            said.contains("pycguard: fix could not repair everything:")
                && said.contains("failed to repair ./app/__pycache__/settings.cpython-312.pyc")
                && said.contains("app/__pycache__/settings.cpython-312.pyc: hidden-stale")
                && said.contains("Correct the source (or delete the cache) and run again."),
            "{said}"
        );
        // A bad ini value.
        let proj = stale_project(pytest, &tree, "bad-ini", "pycguard = \"sometimes\"\n");
        let out = pytest.run(&proj, &[], &[]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(4), "{said}");
        assert!(
            said.contains(
                "pycguard: the ini option pycguard = 'sometimes' is not one of off, check, fix"
            ),
            "{said}"
        );
        // A bad flag value.
        let out = pytest.run(&proj, &["--pycguard=sometimes"], &[]);
        assert_eq!(out.status.code(), Some(4), "{}", text(&out));
        assert!(text(&out).contains("invalid choice: 'sometimes'"));
        // An xdist worker does nothing (the controller repaired already).
        let proj = stale_project(pytest, &tree, "worker", "");
        let before = snapshot(&proj);
        let out = pytest.run(
            &proj,
            &["--pycguard=fix"],
            &[("PYTEST_XDIST_WORKER", "gw0")],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let cache = settings_cache(pytest, &proj);
        assert_eq!(snapshot(&proj)[&cache], before[&cache]);
    });
}
