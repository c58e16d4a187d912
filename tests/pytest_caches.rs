//! pytest's assertion-rewrite caches, written by real pytest installed from PyPI
//! (`tests/common/tools.rs`), judged the way that pytest version reads them:
//!
//! - pytest ≥ 9.2 writes checked-hash caches (flags 0x3, `importlib.util.source_hash` of
//!   the source) and `_read_pyc` accepts nothing else; pytest ≤ 9.1 writes timestamp caches
//!   (flags 0, mtime and size masked to 32 bits) and accepts nothing else.
//! - After a test run, `check` calls every cache fresh, `check --deep` keeps the pytest
//!   ones (a plain compile cannot reproduce rewritten code) and `fix` touches nothing.
//! - A same-size edit of a test file with its mtime restored: pytest 9.2 notices (the hash
//!   differs) and runs the new code, so its cache is `stale`; pytest 8.3 runs the OLD
//!   rewritten code, so its cache is `suspect` (the file's ctime says it was replaced).
//! - A timestamp cache under a 9.2 name, and a checked-hash cache under a ≤ 9.1 name, are
//!   rewritten by that pytest: `stale`.
//!
//! pytest 9.2.0 runs on 3.10, 3.12 and 3.13 here, 8.3.4 on 3.8, 3.12 and 3.13, 9.1.1 on
//! 3.12; each pin gets its own venv. Without PyPI the test prints `SKIP:` and passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use common::tools::{self, output_with_timeout, report, ToolVenv};
use common::{by_path, check_json, mtime, pycguard, set_mtime, snapshot, Interp, Tree};

/// The pins, and the interpreter series each runs on.
const PINS: &[(&str, &[(u32, u32)])] = &[
    ("9.2.0", &[(3, 10), (3, 12), (3, 13)]),
    ("9.1.1", &[(3, 12)]),
    ("8.3.4", &[(3, 8), (3, 12), (3, 13)]),
];

const TEST_OLD: &str = "VALUE = 1\n\n\ndef test_value():\n    assert VALUE == 1\n";
const TEST_NEW: &str = "VALUE = 2\n\n\ndef test_value():\n    assert VALUE == 1\n";

/// One pytest version on one interpreter.
struct Setup {
    version: &'static str,
    venv: ToolVenv,
}

impl Setup {
    fn checked_hash(&self) -> bool {
        let mut parts = self.version.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap()) >= (9, 2)
    }

    fn label(&self) -> String {
        format!(
            "pytest {} on Python {}",
            self.version,
            self.venv.base().version
        )
    }

    fn tag(&self) -> String {
        format!(
            "{}-pytest-{}",
            self.venv.base().tag().unwrap(),
            self.version
        )
    }

    /// `tests/__pycache__/STEM.TAG-pytest-X.Y.Z.pyc`, relative to the project.
    fn cache(&self, stem: &str) -> String {
        format!("tests/__pycache__/{stem}.{}.pyc", self.tag())
    }

    /// Run pytest in `proj`; `write` false runs it with bytecode writing off (asking what
    /// it does without changing the tree). Returns its exit code.
    fn pytest(&self, proj: &Path, write: bool) -> (i32, String) {
        let mut cmd = self.venv.command(self.venv.bin("pytest"), proj);
        cmd.args(["-q", "-p", "no:cacheprovider"]);
        if !write {
            cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        }
        let out = output_with_timeout(&mut cmd, Duration::from_secs(120));
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// Every pinned pytest on every interpreter it runs on here (venvs built in parallel).
fn setups() -> Vec<Setup> {
    let interps = common::interpreters();
    let pick = |(major, minor): (u32, u32)| -> Option<Interp> {
        let home = std::env::var_os("HOME").unwrap_or_default();
        let pyenv = Path::new(&home).join(".pyenv");
        interps
            .iter()
            .find(|i| (i.major, i.minor) == (major, minor) && i.path.starts_with(&pyenv))
            .or_else(|| {
                interps
                    .iter()
                    .find(|i| (i.major, i.minor) == (major, minor))
            })
            .cloned()
    };
    let mut wanted = Vec::new();
    for (version, series) in PINS {
        for s in *series {
            match pick(*s) {
                Some(i) => wanted.push((*version, i)),
                None => eprintln!(
                    "SKIP: pytest {version} on Python {}.{}: no such interpreter",
                    s.0, s.1
                ),
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let made = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((version, interp)) = wanted.get(n) else {
                    break;
                };
                let name = format!("pytest-{version}-py{}{}", interp.major, interp.minor);
                let pin = format!("pytest=={version}");
                if let Some(venv) = tools::venv_with(interp, &name, &[&pin]) {
                    made.lock().unwrap().push((n, Setup { version, venv }));
                }
            });
        }
    });
    let mut made = made.into_inner().unwrap();
    made.sort_by_key(|(n, _)| *n);
    made.into_iter().map(|(_, s)| s).collect()
}

/// A small project: a test file and a conftest (both rewritten by pytest) and a package
/// the test imports (cached by the interpreter itself).
fn project(tree: &Tree, name: &str) -> PathBuf {
    let proj = tree.join(name);
    let write = |rel: &str, text: &str| {
        let p = proj.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        set_mtime(&p, 1_700_000_000, 250_000_000);
    };
    write("pytest.ini", "[pytest]\npythonpath = .\n");
    write("tests/conftest.py", "import app.helper\n");
    write("tests/test_value.py", TEST_OLD);
    write("app/__init__.py", "");
    write("app/helper.py", "HELP = 'yes'\n");
    proj
}

fn entry<'a>(entries: &'a std::collections::BTreeMap<String, Value>, rel: &str) -> &'a Value {
    let key = format!("./{rel}");
    entries.get(&key).unwrap_or_else(|| {
        panic!(
            "{key} not reported; got {:?}",
            entries.keys().collect::<Vec<_>>()
        )
    })
}

/// The flags word of a cache file.
fn flags(path: &Path) -> u32 {
    let bytes = fs::read(path).unwrap();
    u32::from_le_bytes(bytes[4..8].try_into().unwrap())
}

/// pytest writes its caches, and pycguard leaves them as they are.
fn after_a_test_run(s: &Setup, tree: &Tree) -> PathBuf {
    let label = s.label();
    let proj = project(tree, &format!("{}-{}", s.version, s.venv.base().version));
    let (code, out) = s.pytest(&proj, true);
    assert_eq!(code, 0, "{label}: {out}");
    let test_cache = proj.join(s.cache("test_value"));
    assert!(
        test_cache.is_file(),
        "{label} wrote no {}: {out}",
        test_cache.display()
    );
    assert_eq!(
        flags(&test_cache),
        if s.checked_hash() { 3 } else { 0 },
        "{label}: the flags pytest writes"
    );

    let (report, _) = check_json(&proj, &[]);
    let entries = by_path(&report);
    for rel in [s.cache("test_value"), s.cache("conftest")] {
        let e = entry(&entries, &rel);
        assert_eq!(e["state"], "fresh", "{label}: {e}");
        assert_eq!(
            e["invalidation"],
            if s.checked_hash() {
                "checked-hash"
            } else {
                "timestamp"
            },
            "{label}: {e}"
        );
    }
    let interp_tag = s.venv.base().tag().unwrap();
    let helper = entry(
        &entries,
        &format!("app/__pycache__/helper.{interp_tag}.pyc"),
    );
    assert_eq!(helper["state"], "fresh", "{label}: {helper}");
    assert_eq!(
        report["summary"]["fresh"], report["summary"]["caches"],
        "{label}: {report}"
    );

    // --deep: pytest's caches are not recompiled (their code is rewritten) and stay fresh.
    let (deep, _) = check_json(&proj, &["--deep"]);
    let deep_entries = by_path(&deep);
    let e = entry(&deep_entries, &s.cache("test_value"));
    assert_eq!(e["state"], "fresh", "{label} --deep: {e}");
    if s.checked_hash() {
        assert_eq!(e["checked"], "hash", "{label} --deep: {e}");
        assert_eq!(
            e["reason"],
            Value::Null,
            "{label}: verified by its hash, nothing unproven: {e}"
        );
    } else {
        assert_eq!(e["checked"], "header", "{label} --deep: {e}");
        assert!(
            e["reason"]
                .as_str()
                .unwrap_or("")
                .contains("pytest rewrites"),
            "{label} --deep: {e}"
        );
    }
    let helper = entry(
        &deep_entries,
        &format!("app/__pycache__/helper.{interp_tag}.pyc"),
    );
    assert_eq!(
        (helper["state"].as_str(), helper["checked"].as_str()),
        (Some("fresh"), Some("deep")),
        "{label}: {helper}"
    );

    // fix: nothing to repair; every file stays as it was, mtime for mtime.
    let before = snapshot(&proj);
    let out = pycguard().current_dir(&proj).arg("fix").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{label}: fix: {text}");
    // (fix proves by default: its summary may say pytest's caches are judged by header.)
    assert!(
        !text.lines().any(|l| !l.starts_with("deep:")
            && !l.contains("could not be proven")
            && l.contains("pytest")),
        "{label}: fix touched a pytest cache: {text}"
    );
    assert_eq!(
        snapshot(&proj),
        before,
        "{label}: fix changed the tree: {text}"
    );
    proj
}

/// After a same-size edit with the mtime restored: does this pytest run the old code?
fn after_an_edit_that_keeps_mtime(s: &Setup, proj: &Path) -> String {
    let label = s.label();
    let test = proj.join("tests/test_value.py");
    let (secs, nanos) = mtime(&test);
    fs::write(&test, TEST_NEW).unwrap();
    set_mtime(&test, secs as u64, nanos as u32);
    let (code, out) = s.pytest(proj, false);
    let ran_old = code == 0;
    assert_eq!(
        ran_old,
        !s.checked_hash(),
        "{label}: expected it to run the {} code: {out}",
        if s.checked_hash() { "new" } else { "old" }
    );
    let (report, _) = check_json(proj, &[]);
    let e = entry(&by_path(&report), &s.cache("test_value")).clone();
    let reason = e["reason"].as_str().unwrap_or("").to_owned();
    if ran_old {
        assert_eq!(
            e["state"], "suspect",
            "{label} runs the old rewritten code: {e}"
        );
        assert!(
            reason.contains("(its ctime)")
                && reason.contains("pytest runs the cached rewritten code"),
            "{label}: {reason}"
        );
        let (deep, _) = check_json(proj, &["--deep"]);
        let d = entry(&by_path(&deep), &s.cache("test_value")).clone();
        assert_eq!(
            d["state"], "suspect",
            "{label} --deep cannot prove it otherwise: {d}"
        );
    } else {
        assert_eq!(e["state"], "stale", "{label} rewrites it: {e}");
        assert!(
            reason.contains("pytest checks it and rewrites it"),
            "{label}: {reason}"
        );
    }
    format!(
        "  {label}: after a same-size edit with the mtime kept pytest ran the {} code; pycguard: {}\n",
        if ran_old { "OLD" } else { "new" },
        e["state"]
    )
}

/// A cache of the other format under this version's name: pycguard says stale, and this
/// pytest, run with writing on, rewrites it in its own format.
fn foreign_format(s: &Setup, other: &Setup, tree: &Tree) -> String {
    let label = s.label();
    let proj = project(
        tree,
        &format!("foreign-{}-{}", s.version, s.venv.base().version),
    );
    let donor = project(
        tree,
        &format!("donor-{}-{}", other.version, s.venv.base().version),
    );
    let (code, out) = other.pytest(&donor, true);
    assert_eq!(code, 0, "{}: {out}", other.label());
    let target = proj.join(s.cache("test_value"));
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    fs::copy(donor.join(other.cache("test_value")), &target).unwrap();
    let (report, _) = check_json(&proj, &[]);
    let e = entry(&by_path(&report), &s.cache("test_value")).clone();
    assert_eq!(
        e["state"],
        "stale",
        "{label} given a {} cache: {e}",
        other.label()
    );
    let before = flags(&target);
    let (code, out) = s.pytest(&proj, true);
    assert_eq!(code, 0, "{label}: {out}");
    let after = flags(&target);
    assert_ne!(
        before, after,
        "{label} kept the foreign cache (flags {before})"
    );
    assert_eq!(after, if s.checked_hash() { 3 } else { 0 }, "{label}");
    format!(
        "  {label}: a cache in {}'s format (flags {before}) is rewritten (flags {after}); pycguard: stale\n",
        other.label()
    )
}

#[test]
fn pytest_caches_are_judged_as_pytest_reads_them() {
    let setups = setups();
    if setups.is_empty() {
        eprintln!("SKIP: no pytest venv could be made");
        return;
    }
    let tree = Tree::new();
    let projects: Vec<PathBuf> = {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|sc| {
            for _ in 0..2 {
                sc.spawn(|| loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(s) = setups.get(n) else { break };
                    let proj = after_a_test_run(s, &tree);
                    done.lock().unwrap().push((n, proj));
                });
            }
        });
        let mut done = done.into_inner().unwrap();
        done.sort_by_key(|(n, _)| *n);
        done.into_iter().map(|(_, p)| p).collect()
    };
    // The edit must come later than the caches' own ctime by more than pycguard's
    // tolerance for tools that touch a whole tree at once (2 s).
    std::thread::sleep(Duration::from_millis(2_100));
    let mut text = String::from("pytest caches:\n");
    for (s, proj) in setups.iter().zip(&projects) {
        text.push_str(&after_an_edit_that_keeps_mtime(s, proj));
    }
    // What each format's reader does with the other's cache, on the same interpreter.
    for s in &setups {
        if let Some(other) = setups.iter().find(|o| {
            o.checked_hash() != s.checked_hash() && o.venv.base().version == s.venv.base().version
        }) {
            text.push_str(&foreign_format(s, other, &tree));
        }
    }
    report(&text);
}
