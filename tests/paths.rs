//! Files as PATHS: a source names every cache the walk would pair with it
//! (`__pycache__/NAME.*.pyc` of every tag and level, a legacy `NAME.pyc`, its cache under
//! the pycache prefix in effect), a cache names itself, and `fix`, `compile` and `clean`
//! act on them beneath the file's directory. Caches are written by the real interpreters,
//! and what `fix`/`compile` write is then imported by them.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Output;

use common::{pycguard, set_mtime, Interp, Tree};
use serde_json::Value;

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

/// The paths (and states) a `check --format json` run reports.
fn checked(dir: &Path, args: &[&str]) -> (BTreeSet<String>, Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = run(dir, &all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad json ({e}): {}", text(&out)));
    let paths = report["caches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_owned())
        .collect();
    (paths, report)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Two interpreters of 3.8+ (the newest and one other) and Python 2.7 when present.
fn interpreters() -> Option<(Interp, Interp, Option<Interp>)> {
    let all = common::interpreters();
    let mut py3: Vec<Interp> = all.iter().filter(|i| i.at_least(3, 8)).cloned().collect();
    py3.sort_by_key(|i| (i.major, i.minor));
    py3.dedup_by_key(|i| (i.major, i.minor));
    if py3.len() < 2 {
        eprintln!("SKIP: files as paths need two Python 3.8+ series");
        return None;
    }
    let newest = py3.pop().unwrap();
    let other = py3.remove(0);
    let py2 = all.into_iter().find(|i| i.major == 2);
    if py2.is_none() {
        eprintln!("SKIP: no Python 2.7: the legacy a.pyc of these tests is not written");
    }
    Some((newest, other, py2))
}

/// `app/a.py` and `app/b.py`, each with caches of `newest` (levels 0 and 1), `other`,
/// Python 2's legacy `.pyc`, and `newest`'s cache under `prefix`.
fn tree(newest: &Interp, other: &Interp, py2: Option<&Interp>) -> Tree {
    let tree = Tree::new();
    for m in ["a", "b"] {
        let p = tree.write(format!("app/{m}.py"), format!("VALUE = '{m}'\n").as_bytes());
        set_mtime(&p, T, 0);
    }
    let dir = tree.path();
    newest.compile(dir, &["app/a.py", "app/b.py"], "timestamp", 0);
    newest.compile(dir, &["app/a.py", "app/b.py"], "timestamp", 1);
    other.compile(dir, &["app/a.py", "app/b.py"], "timestamp", 0);
    if let Some(py2) = py2 {
        py2.compile(dir, &["app/a.py", "app/b.py"], "legacy", 0);
    }
    let out = newest
        .command(&tree.join("app"))
        .env("PYTHONPYCACHEPREFIX", tree.join("prefix"))
        .args(["-c", "import a, b"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tree
}

/// The prefix cache of `app/NAME.py` for `interp`, as a string.
fn prefix_cache(tree: &Tree, name: &str, interp: &Interp) -> String {
    let mut p = tree.join("prefix");
    p.extend(tree.join("app").components().skip(1));
    p.join(format!("{name}.{}.pyc", interp.tag().unwrap()))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn check_a_source_judges_every_cache_of_it() {
    let Some((newest, other, py2)) = interpreters() else {
        return;
    };
    let tree = tree(&newest, &other, py2.as_ref());
    let (t1, t2) = (newest.tag().unwrap(), other.tag().unwrap());
    let mut want = vec![
        format!("app/__pycache__/a.{t1}.pyc"),
        format!("app/__pycache__/a.{t1}.opt-1.pyc"),
        format!("app/__pycache__/a.{t2}.pyc"),
        prefix_cache(&tree, "a", &newest),
    ];
    if py2.is_some() {
        want.push("app/a.pyc".into());
    }
    let want: BTreeSet<String> = want.into_iter().collect();
    let prefix = tree.join("prefix");
    let prefix = prefix.to_str().unwrap();
    let (paths, report) = checked(tree.path(), &["--pycache-prefix", prefix, "app/a.py"]);
    assert_eq!(paths, want, "{report}");
    for c in report["caches"].as_array().unwrap() {
        assert_eq!(c["state"], "fresh", "{c}");
        assert_eq!(c["source"], "app/a.py", "{c}");
    }
    // From inside the directory, without a directory part; without the prefix.
    let (paths, report) = checked(&tree.join("app"), &["a.py"]);
    let mut here = vec![
        format!("__pycache__/a.{t1}.pyc"),
        format!("__pycache__/a.{t1}.opt-1.pyc"),
        format!("__pycache__/a.{t2}.pyc"),
    ];
    if py2.is_some() {
        here.push("a.pyc".into());
    }
    let here: BTreeSet<String> = here.into_iter().collect();
    assert_eq!(paths, here, "{report}");
    // A cache names exactly itself; two files name both.
    let cache = format!("app/__pycache__/a.{t2}.pyc");
    let (paths, _) = checked(tree.path(), &[&cache]);
    assert_eq!(paths, set(&[&cache]));
    let (paths, _) = checked(tree.path(), &["app/b.py", &cache]);
    assert!(paths.contains(&cache) && paths.contains(&format!("app/__pycache__/b.{t1}.pyc")));
    assert!(
        !paths.iter().any(|p| p.contains("/a.") && *p != cache),
        "{paths:?}"
    );
    // A stale cache of the named source makes the check fail; the other source's do not.
    let p = tree.write("app/b.py", b"VALUE = 'changed'\n");
    set_mtime(&p, T + 5, 0);
    let out = run(tree.path(), &["check", "--strict", "-q", "app/a.py"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(tree.path(), &["check", "--strict", "-q", "app/b.py"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// The tree of [`tree`] with both sources edited since (every cache of both is stale),
/// and the `--python` arguments for its two interpreters.
struct Edited {
    tree: Tree,
    newest: Interp,
    other: Interp,
    py2: Option<Interp>,
}

fn edited() -> Option<Edited> {
    let (newest, other, py2) = interpreters()?;
    let tree = tree(&newest, &other, py2.as_ref());
    for m in ["a", "b"] {
        let p = tree.write(
            format!("app/{m}.py"),
            format!("VALUE = '{m}{m}'\n").as_bytes(),
        );
        set_mtime(&p, T + 60, 0);
    }
    Some(Edited {
        tree,
        newest,
        other,
        py2,
    })
}

#[test]
fn fix_takes_a_source_or_a_cache() {
    let Some(Edited {
        tree,
        newest,
        other,
        ..
    }) = edited()
    else {
        return;
    };
    let dir = tree.path();
    let (t1, t2) = (newest.tag().unwrap(), other.tag().unwrap());
    let pythons = [
        "--python",
        newest.path.to_str().unwrap(),
        "--python",
        other.path.to_str().unwrap(),
    ];
    let b_before = fs::read(tree.join(format!("app/__pycache__/b.{t1}.pyc"))).unwrap();

    // fix app/a.py: a's caches repaired, b's left.
    let mut args = vec!["fix", "app/a.py"];
    args.extend_from_slice(&pythons);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The optimisation levels of one source share a line.
    for cache in [
        format!("app/__pycache__/a.{t1}.pyc + .opt-1"),
        format!("app/__pycache__/a.{t2}.pyc"),
    ] {
        assert!(
            text(&out).contains(&format!("recompiled {cache} (stale")),
            "{cache}: {}",
            text(&out)
        );
    }
    assert_eq!(
        fs::read(tree.join(format!("app/__pycache__/b.{t1}.pyc"))).unwrap(),
        b_before,
        "b's caches are not this fix's business"
    );
    assert_eq!(newest.import_value(&tree.join("app"), "a"), Ok("aa".into()));
    assert_eq!(other.import_value(&tree.join("app"), "a"), Ok("aa".into()));

    // fix one cache of b, named as the PATH.
    let b_cache = format!("app/__pycache__/b.{t1}.pyc");
    let mut args = vec!["fix", &b_cache];
    args.extend_from_slice(&pythons);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("recompiled {b_cache} (stale"))
            && text(&out).contains("repaired 1,"),
        "{}",
        text(&out)
    );
    assert_eq!(newest.import_value(&tree.join("app"), "b"), Ok("bb".into()));
}

#[test]
fn compile_takes_a_source() {
    let Some(Edited {
        tree,
        newest,
        other,
        ..
    }) = edited()
    else {
        return;
    };
    let dir = tree.path();
    let (t1, t2) = (newest.tag().unwrap(), other.tag().unwrap());
    let p = tree.write("app/new.py", b"VALUE = 'new'\n");
    set_mtime(&p, T, 0);
    let python = newest.path.to_str().unwrap();
    let out = run(dir, &["compile", "app/new.py", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("compiled 1, 0 up to date"),
        "{}",
        text(&out)
    );
    assert!(tree.join(format!("app/__pycache__/new.{t1}.pyc")).is_file());
    assert_eq!(
        newest.import_value(&tree.join("app"), "new"),
        Ok("new".into())
    );
    // Only that source: the stale caches of a and b are not compile's business here.
    let a = tree.join(format!("app/__pycache__/a.{t1}.pyc"));
    let out = run(
        &tree.join("app"),
        &["compile", "new.py", "--python", python],
    );
    assert!(
        text(&out).contains("compiled 0, 1 up to date"),
        "{}",
        text(&out)
    );
    // Without a directory part; the stale cache of the named source is recompiled.
    let out = run(&tree.join("app"), &["compile", "a.py", "--python", python]);
    assert!(
        text(&out).contains("compiled 1, 0 up to date"),
        "{}",
        text(&out)
    );
    assert!(a.is_file());
    assert_eq!(newest.import_value(&tree.join("app"), "a"), Ok("aa".into()));
    let p = tree.write("app/new2.py", b"VALUE = 'new2'\n");
    set_mtime(&p, T, 0);
    let out = run(
        &tree.join("app"),
        &[
            "compile",
            "new2.py",
            "--python",
            other.path.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(tree
        .join(format!("app/__pycache__/new2.{t2}.pyc"))
        .is_file());
    assert_eq!(
        other.import_value(&tree.join("app"), "new2"),
        Ok("new2".into())
    );
}

#[test]
fn clean_takes_sources_and_caches() {
    let Some(Edited {
        tree, other, py2, ..
    }) = edited()
    else {
        return;
    };
    let dir = tree.path();
    let t2 = other.tag().unwrap();
    // A source's caches (all tags, levels and the legacy one); b's stay.
    let out = run(dir, &["clean", "-v", "app/a.py"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let removed = if py2.is_some() { 4 } else { 3 };
    assert!(
        text(&out).contains(&format!("removed {removed} caches")),
        "{}",
        text(&out)
    );
    let left: BTreeSet<String> = fs::read_dir(tree.join("app/__pycache__"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.starts_with("a.")), "{left:?}");
    assert!(left.contains(&format!("b.{t2}.pyc")), "{left:?}");
    assert!(!tree.join("app/a.pyc").exists());
    assert!(tree.join("app/a.py").is_file() && tree.join("app/b.py").is_file());

    // Caches named as PATHS, down to the last one: the emptied __pycache__ goes.
    let names: Vec<String> = left
        .iter()
        .map(|n| format!("app/__pycache__/{n}"))
        .collect();
    let mut args = vec!["clean"];
    args.extend(names.iter().map(String::as_str));
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "removed {} caches, 1 empty __pycache__ directory",
            names.len()
        )),
        "{}",
        text(&out)
    );
    assert!(!tree.join("app/__pycache__").exists());
    assert!(tree.join("app/b.py").is_file());
}
