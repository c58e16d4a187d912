//! `fix`, `clean` and `compile` against caches written by the real interpreters: each
//! repair is followed by `check --deep` and by asking the interpreter what it imports.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{pycguard, set_mtime, Interp, Tree};

const T: u64 = 1_700_000_000;

fn run(dir: &Path, args: &[&str]) -> Output {
    pycguard().current_dir(dir).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (inode, mtime secs, mtime nanos) of every cache file under `dir`.
fn cache_ids(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    common::snapshot(dir)
        .into_keys()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".pyc") || n.ends_with(".pyo")
        })
        .map(|p| {
            let m = fs::symlink_metadata(&p).unwrap();
            (p, (m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect()
}

/// Every file that is not a cache: path → content.
fn sources(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::snapshot(dir)
        .into_iter()
        .filter(|(p, _)| {
            let n = p.file_name().unwrap().to_string_lossy();
            p.is_file() && !n.ends_with(".pyc") && !n.ends_with(".pyo")
        })
        .map(|(p, (content, _, _))| (p, content))
        .collect()
}

/// A tree with a cache in every repairable state, written by `interp`.
fn broken_tree(interp: &Interp) -> Tree {
    let tree = Tree::new();
    let w = |rel: &str, content: &[u8]| {
        let p = tree.write(rel, content);
        set_mtime(&p, T, 0);
    };
    w("pkg/__init__.py", b"");
    for m in ["fresh", "stale", "suspect", "corrupt", "gone", "ghost"] {
        w(&format!("pkg/{m}.py"), b"VALUE = 'old'\n");
    }
    let hash = interp.at_least(3, 7);
    if hash {
        w("pkg/hidden.py", b"VALUE = 'old'\n");
    }
    interp.compile(
        tree.path(),
        &[
            "pkg/__init__.py",
            "pkg/fresh.py",
            "pkg/stale.py",
            "pkg/suspect.py",
            "pkg/corrupt.py",
            "pkg/gone.py",
        ],
        "timestamp",
        0,
    );
    interp.compile(tree.path(), &["pkg/ghost.py"], "legacy", 0);
    if hash {
        interp.compile(tree.path(), &["pkg/hidden.py"], "unchecked_hash", 0);
    }
    let tag = interp.tag().unwrap();
    let cache = |m: &str| tree.join(format!("pkg/__pycache__/{m}.{tag}.pyc"));
    w("pkg/stale.py", b"VALUE = 'newer'\n");
    set_mtime(&tree.join("pkg/stale.py"), T + 60, 0);
    set_mtime(&cache("suspect"), T, 200_000_000);
    let p = tree.write("pkg/suspect.py", b"VALUE = 'new'\n");
    set_mtime(&p, T, 900_000_000);
    if hash {
        w("pkg/hidden.py", b"VALUE = 'new'\n");
    }
    let bytes = fs::read(cache("corrupt")).unwrap();
    fs::write(cache("corrupt"), &bytes[..bytes.len() - 12]).unwrap();
    fs::remove_file(tree.join("pkg/gone.py")).unwrap();
    fs::remove_file(tree.join("pkg/ghost.py")).unwrap();
    tree
}

fn fix_repairs_every_state(interp: &Interp) {
    eprintln!("fix with Python {}", interp.version);
    let tree = broken_tree(interp);
    let dir = tree.path();
    let python = interp.path.to_str().unwrap();
    let tag = interp.tag().unwrap();
    let fresh_cache = tree.join(format!("pkg/__pycache__/fresh.{tag}.pyc"));
    let before_sources = sources(dir);
    let before_caches = cache_ids(dir);

    // --dry-run: every action listed, nothing changed.
    let out = run(dir, &["fix", "--dry-run", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listing = text(&out);
    for m in ["stale", "suspect", "corrupt"] {
        assert!(
            listing.contains(&format!("would recompile ./pkg/__pycache__/{m}.{tag}.pyc")),
            "{listing}"
        );
    }
    assert!(
        listing.contains(&format!("would delete ./pkg/__pycache__/gone.{tag}.pyc")),
        "{listing}"
    );
    assert!(
        listing.contains("would delete ./pkg/ghost.pyc"),
        "{listing}"
    );
    assert_eq!(cache_ids(dir), before_caches, "dry run changed nothing");

    let out = run(dir, &["fix", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = text(&out);
    let repaired = if interp.at_least(3, 7) { 4 } else { 3 };
    assert!(
        summary.contains(&format!("repaired {repaired}, deleted 2, left 0, failed 0")),
        "{summary}"
    );

    // Nothing left to fix, proven against the sources.
    let out = run(
        dir,
        &["check", "--deep", "--format", "json", "--python", python],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    for e in report["caches"].as_array().unwrap() {
        assert_eq!(e["state"], "fresh", "{e}");
        assert_eq!(e["checked"], "deep", "{e}");
    }
    // The interpreter imports the current sources.
    assert_eq!(interp.import_value(dir, "pkg.stale"), Ok("newer".into()));
    assert_eq!(interp.import_value(dir, "pkg.suspect"), Ok("new".into()));
    assert_eq!(interp.import_value(dir, "pkg.corrupt"), Ok("old".into()));
    assert!(
        interp.import_value(dir, "pkg.ghost").is_err(),
        "the ghost is gone"
    );
    if interp.at_least(3, 7) {
        assert_eq!(interp.import_value(dir, "pkg.hidden"), Ok("new".into()));
        let hidden = fs::read(tree.join(format!("pkg/__pycache__/hidden.{tag}.pyc"))).unwrap();
        assert_eq!(hidden[4], 1, "the unchecked-hash mode is kept");
    }
    // Sources byte-identical; the fresh cache untouched (same inode, same mtime).
    assert_eq!(sources(dir), before_sources);
    assert_eq!(cache_ids(dir)[&fresh_cache], before_caches[&fresh_cache]);
    assert!(!tree
        .join(format!("pkg/__pycache__/gone.{tag}.pyc"))
        .exists());
    // No temporary files are left behind.
    let leftovers: Vec<_> = fs::read_dir(tree.join("pkg/__pycache__"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".pyc"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

macro_rules! fix_tests {
    ($($name:ident: $major:literal, $minor:literal;)*) => {$(
        #[test]
        fn $name() {
            let found: Vec<Interp> = common::interpreters().into_iter().filter(|i| i.major == $major && i.minor == $minor).collect();
            if found.is_empty() {
                eprintln!("SKIP: fix test for Python {}.{}: interpreter not found", $major, $minor);
            }
            for interp in &found {
                fix_repairs_every_state(interp);
            }
        }
    )*};
}

fix_tests! {
    fix_python_3_6: 3, 6;
    fix_python_3_7: 3, 7;
    fix_python_3_8: 3, 8;
    fix_python_3_9: 3, 9;
    fix_python_3_10: 3, 10;
    fix_python_3_11: 3, 11;
    fix_python_3_12: 3, 12;
    fix_python_3_13: 3, 13;
}

fn newest() -> Option<Interp> {
    let found = common::interpreters_from(3, 7)
        .into_iter()
        .rev()
        .max_by_key(|i| (i.major, i.minor));
    if found.is_none() {
        eprintln!("SKIP: no Python 3.7+");
    }
    found
}

/// Python 2.7 legacy caches are recompiled in place by Python 2.7.
#[test]
fn fix_python_2_legacy_cache() {
    let Some(py2) = common::interpreters().into_iter().find(|i| i.major == 2) else {
        eprintln!("SKIP: no Python 2.7");
        return;
    };
    let tree = Tree::new();
    let p = tree.write("pkg/m.py", b"VALUE = 'old'\n");
    set_mtime(&p, T, 0);
    tree.write("pkg/__init__.py", b"");
    py2.compile(
        tree.path(),
        &["pkg/m.py", "pkg/__init__.py"],
        "timestamp",
        0,
    );
    let p = tree.write("pkg/m.py", b"VALUE = 'newer'\n");
    set_mtime(&p, T + 9, 0);
    let out = run(
        tree.path(),
        &["fix", "--python", py2.path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(py2.import_value(tree.path(), "pkg.m"), Ok("newer".into()));
    let (report, _) = common::check_json(tree.path(), &[]);
    assert_eq!(report["summary"]["fresh"], 2, "{report}");
}

/// Without the interpreter a cache is for, fix deletes it rather than leave stale code.
#[test]
fn fix_deletes_when_the_interpreter_is_absent() {
    let tree = Tree::new();
    tree.write("pkg/m.py", b"x = 1\n");
    // A Python 3.5 cache (magic 3351): no 3.5 exists on this machine.
    let mut pyc = vec![0x17, 0x0d, 0x0d, 0x0a];
    pyc.extend(0u32.to_le_bytes());
    pyc.extend(6u32.to_le_bytes());
    pyc.extend(b"N");
    tree.write("pkg/__pycache__/m.cpython-35.pyc", &pyc);
    let out = run(tree.path(), &["fix"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no Python 3.5 found"), "{}", text(&out));
    assert!(
        !tree.join("pkg/__pycache__").exists(),
        "emptied __pycache__ removed"
    );
    assert!(tree.join("pkg/m.py").exists());
}

/// An unwritable directory is reported, the rest is repaired, exit 1. Runs pycguard as
/// the unprivileged user `nobody` (via setpriv) so that permissions apply.
#[test]
fn fix_reports_an_unwritable_directory_and_repairs_the_rest() {
    if !common::can_run_as_other_user() {
        eprintln!("SKIP: needs root and setpriv to run as an unprivileged user");
        return;
    }
    // An interpreter `nobody` may run: pyenv's live under /root (mode 0700), so the
    // system one, world-executable under /usr.
    let Some(interp) = common::interpreters_from(3, 7)
        .into_iter()
        .find(|i| i.path.starts_with("/usr/"))
    else {
        eprintln!("SKIP: no Python 3.7+ under /usr that an unprivileged user can run");
        return;
    };
    let tree = Tree::new();
    for m in ["a", "b"] {
        let p = tree.write(format!("{m}/m.py"), b"VALUE = 'old'\n");
        set_mtime(&p, T, 0);
        interp.compile(tree.path(), &[&format!("{m}/m.py")], "timestamp", 0);
        let p = tree.write(format!("{m}/m.py"), b"VALUE = 'newer'\n");
        set_mtime(&p, T + 5, 0);
    }
    // Everything belongs to nobody except b/__pycache__, which stays root's (0755).
    let nobody = 65534;
    for entry in common::snapshot(tree.path())
        .into_keys()
        .chain([tree.path().to_path_buf()])
    {
        if !entry.starts_with(tree.join("b/__pycache__")) {
            std::os::unix::fs::lchown(&entry, Some(nobody), Some(nobody)).unwrap();
        }
    }
    fs::set_permissions(
        tree.join("b/__pycache__"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pycguard"))
        .args([
            "fix",
            "--no-cache",
            "--python",
            interp.path.to_str().unwrap(),
            ".",
        ])
        .current_dir(tree.path())
        .env("HOME", tree.path())
        .output()
        .unwrap();
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("failed to repair ./b/__pycache__/"),
        "{report}"
    );
    assert!(report.contains("permission denied"), "{report}");
    assert!(
        report.contains("repaired 1, deleted 0, left 0, failed 1"),
        "{report}"
    );
    assert_eq!(interp.import_value(tree.path(), "a.m"), Ok("newer".into()));
}

/// `sudo pycguard fix` on a service user's tree leaves caches that user owns.
#[test]
fn fix_as_root_gives_caches_to_the_source_directory_owner() {
    let Some(interp) = newest() else { return };
    if !common::capability("root") {
        eprintln!("SKIP: not running as root");
        return;
    }
    let tree = Tree::new();
    let p = tree.write("svc/m.py", b"VALUE = 'old'\n");
    set_mtime(&p, T, 0);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    interp.compile(tree.path(), &["svc/m.py"], "timestamp", 0);
    let p = tree.write("svc/m.py", b"VALUE = 'newer'\n");
    set_mtime(&p, T + 5, 0);
    fs::remove_dir_all(tree.join("svc/__pycache__")).unwrap();
    let p = tree.write("svc/other.py", b"VALUE = 1\n");
    set_mtime(&p, T, 0);
    interp.compile(tree.path(), &["svc/other.py"], "timestamp", 0);
    let p = tree.write("svc/other.py", b"VALUE = 22\n");
    set_mtime(&p, T + 5, 0);
    for entry in common::snapshot(&tree.join("svc"))
        .into_keys()
        .chain([tree.join("svc")])
    {
        std::os::unix::fs::lchown(&entry, Some(1234), Some(2345)).unwrap();
    }
    let out = run(
        tree.path(),
        &["fix", "--python", interp.path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = interp.tag().unwrap();
    let cache = fs::metadata(tree.join(format!("svc/__pycache__/other.{tag}.pyc"))).unwrap();
    assert_eq!((cache.uid(), cache.gid()), (1234, 2345));
    assert_eq!(
        cache.mode() & 0o777,
        0o644 & !0o022,
        "source mode | 0o200, & 0o666, minus umask"
    );
    // compile creates a missing __pycache__ for that user too.
    let out = run(
        tree.path(),
        &["compile", "--python", interp.path.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = fs::metadata(tree.join("svc/__pycache__")).unwrap();
    assert_eq!((dir.uid(), dir.gid()), (1234, 2345));
    let cache = fs::metadata(tree.join(format!("svc/__pycache__/m.{tag}.pyc"))).unwrap();
    assert_eq!(
        (cache.uid(), cache.mode() & 0o777),
        (1234, 0o640 & !0o022 | 0o200)
    );
}

/// A symlinked __pycache__ pointing outside the tree is never written through.
#[test]
fn fix_never_writes_through_a_symlink() {
    let Some(interp) = newest() else { return };
    let tree = Tree::new();
    let outside = Tree::new();
    let p = tree.write("pkg/m.py", b"VALUE = 'old'\n");
    set_mtime(&p, T, 0);
    interp.compile(tree.path(), &["pkg/m.py"], "timestamp", 0);
    let tag = interp.tag().unwrap();
    fs::rename(tree.join("pkg/__pycache__"), outside.join("real")).unwrap();
    std::os::unix::fs::symlink(outside.join("real"), tree.join("pkg/__pycache__")).unwrap();
    let p = tree.write("pkg/m.py", b"VALUE = 'newer'\n");
    set_mtime(&p, T + 5, 0);
    let before = common::snapshot(outside.path());
    let out = run(
        tree.path(),
        &["fix", "--python", interp.path.to_str().unwrap()],
    );
    assert_eq!(common::snapshot(outside.path()), before, "{}", text(&out));
    let _ = tag;
}

#[test]
fn clean_removes_caches_keeps_everything_else() {
    let Some(interp) = newest() else { return };
    let tree = Tree::new();
    let outside = Tree::new();
    outside.write("__pycache__/victim.cpython-312.pyc", b"keep");
    for m in ["a", "b"] {
        tree.write(format!("pkg/{m}.py"), b"x = 1\n");
    }
    interp.compile(tree.path(), &["pkg/a.py", "pkg/b.py"], "timestamp", 0);
    tree.write("pkg/__pycache__/NOTES.txt", b"not a cache");
    tree.write("only/__pycache__/x.cpython-39.pyc", b"junk");
    tree.write("dist/lib.py", b"x = 1\n");
    interp.compile(tree.path(), &["dist/lib.py"], "legacy", 0);
    fs::remove_file(tree.join("dist/lib.py")).unwrap();
    tree.write(".pytest_cache/v/cache/lastfailed", b"{}");
    tree.write(".mypy_cache/3.12/x.json", b"{}");
    std::os::unix::fs::symlink("..", tree.join("pkg/loop")).unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.join("pkg/outside")).unwrap();
    let before_sources = sources(tree.path());

    let dry = run(tree.path(), &["clean", "--dry-run", "--debris"]);
    assert_eq!(dry.status.code(), Some(0));
    let listing = text(&dry);
    assert!(
        listing.contains("would remove ./only/__pycache__/x.cpython-39.pyc"),
        "{listing}"
    );
    assert!(
        listing.contains("would remove ./.pytest_cache/"),
        "{listing}"
    );
    assert!(tree.join("only/__pycache__/x.cpython-39.pyc").exists());

    // --tag: only one interpreter's leftovers.
    let out = run(tree.path(), &["clean", "--tag", "cpython-39"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !tree.join("only/__pycache__").exists(),
        "emptied __pycache__ removed"
    );
    assert!(tree
        .join(format!("pkg/__pycache__/a.{}.pyc", interp.tag().unwrap()))
        .exists());

    let out = run(tree.path(), &["clean", "--debris"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("removed 2 caches"), "{}", text(&out));
    assert!(text(&out).contains("kept 1 sourceless"), "{}", text(&out));
    assert!(
        tree.join("pkg/__pycache__/NOTES.txt").exists(),
        "non-cache kept, so is its dir"
    );
    assert!(
        tree.join("dist/lib.pyc").exists(),
        "sourceless distribution kept"
    );
    assert!(!tree.join(".pytest_cache").exists() && !tree.join(".mypy_cache").exists());
    assert_eq!(
        sources(tree.path()).len(),
        before_sources.len() - 2,
        "only the debris files went"
    );
    assert!(outside.join("__pycache__/victim.cpython-312.pyc").exists());

    // --state picks judged states; sourceless only when named.
    let out = run(tree.path(), &["clean", "--state", "sourceless"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!tree.join("dist/lib.pyc").exists());
    let out = run(tree.path(), &["clean", "--state", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--tag` names one interpreter's caches exactly, with `--state` as without it: a tag is
/// never a prefix of another (`cpython-31` is Python 3.1's, not 3.11's), pytest's caches
/// are their interpreter's, and a value that is no cache tag is a usage error.
#[test]
fn clean_tag_matches_exactly_with_and_without_state() {
    let tree = Tree::new();
    tree.write("pkg/__pycache__/m.cpython-311.pyc", b"orphan");
    tree.write("pkg/__pycache__/t.cpython-311-pytest-8.3.4.pyc", b"orphan");
    tree.write("pkg/__pycache__/n.cpython-312.pyc", b"orphan");
    let removed = |args: &[&str]| {
        let mut all = vec!["clean", "--dry-run"];
        all.extend(args);
        let out = run(tree.path(), &all);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let listing = text(&out);
        let mut names: Vec<String> = listing
            .lines()
            .filter_map(|l| l.strip_prefix("would remove ./pkg/__pycache__/"))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    };
    let both = ["m.cpython-311.pyc", "t.cpython-311-pytest-8.3.4.pyc"];
    for state in [&[][..], &["--state", "orphan"]] {
        let with = |tag: &str| {
            let mut args = vec!["--tag", tag];
            args.extend(state);
            removed(&args)
        };
        assert!(with("cpython-31").is_empty(), "{state:?}");
        assert!(with("cpython-3").is_empty(), "{state:?}");
        assert_eq!(with("cpython-311"), both, "{state:?}");
        assert_eq!(with("cpython-312"), ["n.cpython-312.pyc"], "{state:?}");
    }
    for bad in ["cpython-3.11", "311", "cpython-311-pytest-8.3.4"] {
        let out = run(tree.path(), &["clean", "--dry-run", "--tag", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            text(&out).starts_with(&format!("pycguard: error: --tag {bad:?}: ")),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn clean_reports_a_failed_deletion_with_exit_1() {
    if !common::can_run_as_other_user() {
        eprintln!("SKIP: needs root and setpriv to run as an unprivileged user");
        return;
    }
    let tree = Tree::new();
    tree.write("a/__pycache__/x.cpython-312.pyc", b"junk");
    tree.write("b/__pycache__/y.cpython-312.pyc", b"junk");
    for entry in common::snapshot(tree.path())
        .into_keys()
        .chain([tree.path().to_path_buf()])
    {
        if !entry.starts_with(tree.join("b/__pycache__")) {
            std::os::unix::fs::lchown(&entry, Some(65534), Some(65534)).unwrap();
        }
    }
    fs::set_permissions(tree.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_pycguard"))
        .args(["clean", "--no-cache", "."])
        .current_dir(tree.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("failed ./b/__pycache__/y.cpython-312.pyc: permission denied"),
        "{}",
        text(&out)
    );
    assert!(!tree.join("a/__pycache__").exists());
}

#[test]
fn compile_fills_a_tree_and_then_does_nothing() {
    let Some(interp) = newest() else { return };
    let tree = Tree::new();
    for m in ["a", "b", "c"] {
        let p = tree.write(format!("pkg/{m}.py"), format!("VALUE = '{m}'\n").as_bytes());
        set_mtime(&p, T, 0);
    }
    tree.write("pkg/bad.py", b"def broken(:\n");
    let python = interp.path.to_str().unwrap();
    let out = run(tree.path(), &["compile", "--python", python]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad.py does not compile: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("compiled 3, 0 up to date, 1 failed"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("./pkg/bad.py:1: SyntaxError"),
        "{}",
        text(&out)
    );
    fs::remove_file(tree.join("pkg/bad.py")).unwrap();
    let out = run(tree.path(), &["check", "--deep", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ids = cache_ids(tree.path());
    let out = run(tree.path(), &["compile", "--python", python]);
    assert!(
        text(&out).contains("compiled 0, 3 up to date"),
        "{}",
        text(&out)
    );
    assert_eq!(cache_ids(tree.path()), ids, "a no-op run touches nothing");
    // Without --python: the interpreters whose caches the tree already holds.
    let out = run(tree.path(), &["compile", "-n"]);
    assert!(
        text(&out).contains("would compile 0, 3 up to date"),
        "{}",
        text(&out)
    );
    // The first interpreter found for the tag the caches carry (any build of the series).
    assert!(
        text(&out).contains(&format!("(Python {}.{}.", interp.major, interp.minor)),
        "{}",
        text(&out)
    );
    // -O, --invalidation-mode, --force.
    let out = run(
        tree.path(),
        &[
            "compile",
            "-O",
            "--invalidation-mode",
            "checked-hash",
            "--python",
            python,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = interp.tag().unwrap();
    let opt = fs::read(tree.join(format!("pkg/__pycache__/a.{tag}.opt-1.pyc"))).unwrap();
    assert_eq!(opt[4], 3, "checked-hash flags");
    let out = run(tree.path(), &["compile", "--force", "--python", python]);
    assert!(
        text(&out).contains("compiled 3, 0 up to date"),
        "{}",
        text(&out)
    );
    // SOURCE_DATE_EPOCH makes checked-hash the default, as py_compile does.
    fs::remove_dir_all(tree.join("pkg/__pycache__")).unwrap();
    let out = pycguard()
        .current_dir(tree.path())
        .env("SOURCE_DATE_EPOCH", "1")
        .args(["compile", "--python", python])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let a = fs::read(tree.join(format!("pkg/__pycache__/a.{tag}.pyc"))).unwrap();
    assert_eq!(a[4], 3);
    assert_eq!(interp.import_value(tree.path(), "pkg.a"), Ok("a".into()));
}

/// The no-op pass proves an up-to-date tree from one walk without keeping anything per
/// source; every way a tree can fall short of that — a cache missing, stale, of another
/// invalidation mode when one is asked for, at a path the importer never reads, a new
/// source — is still found and compiled, exactly that one.
#[test]
fn compile_no_op_pass_misses_no_cache_that_needs_compiling() {
    let Some(interp) = newest() else { return };
    let tag = interp.tag().unwrap();
    let tree = Tree::new();
    for m in ["a", "b", "c", "d"] {
        let p = tree.write(format!("pkg/{m}.py"), format!("VALUE = '{m}'\n").as_bytes());
        set_mtime(&p, T, 0);
    }
    let python = interp.path.to_str().unwrap();
    let compile = |extra: &[&str]| {
        let mut args = vec!["compile", "--python", python];
        args.extend_from_slice(extra);
        let out = run(tree.path(), &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    assert!(compile(&[]).contains("compiled 4, 0 up to date"));
    assert!(compile(&[]).contains("compiled 0, 4 up to date"));
    let cache = |m: &str| tree.join(format!("pkg/__pycache__/{m}.{tag}.pyc"));
    // One cache missing.
    fs::remove_file(cache("b")).unwrap();
    let out = compile(&[]);
    assert!(out.contains("compiled 1, 3 up to date"), "{out}");
    assert!(cache("b").is_file());
    // One source newer than its cache.
    set_mtime(&tree.join("pkg/c.py"), T + 5, 0);
    let out = compile(&[]);
    assert!(out.contains("compiled 1, 3 up to date"), "{out}");
    // Only at a path no importer reads (`opt-0`): still missing where it is read.
    fs::rename(
        cache("d"),
        tree.join(format!("pkg/__pycache__/d.{tag}.opt-0.pyc")),
    )
    .unwrap();
    let out = compile(&[]);
    assert!(out.contains("compiled 1, 3 up to date"), "{out}");
    // A new source, and a pytest cache that is no cache of the interpreter's.
    let p = tree.write("pkg/e.py", b"VALUE = 'e'\n");
    set_mtime(&p, T, 0);
    fs::copy(
        cache("a"),
        tree.join(format!("pkg/__pycache__/e.{tag}-pytest-8.3.4.pyc")),
    )
    .unwrap();
    let out = compile(&[]);
    assert!(out.contains("compiled 1, 4 up to date"), "{out}");
    // Another invalidation mode asked for: every fresh timestamp cache is converted.
    let out = compile(&["--invalidation-mode", "checked-hash"]);
    assert!(out.contains("compiled 5, 0 up to date"), "{out}");
    assert!(compile(&["--invalidation-mode", "checked-hash"]).contains("compiled 0, 5 up to date"));
    assert!(compile(&[]).contains("compiled 0, 5 up to date"));
    for m in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            interp.import_value(tree.path(), &format!("pkg.{m}")),
            Ok(m.to_owned())
        );
    }
}
