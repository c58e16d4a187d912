//! A pycache prefix is exclusive: with `PYTHONPYCACHEPREFIX` (or `--pycache-prefix`) in
//! effect, Python 3.8+ reads and writes only the prefix tree. `compile` must write there
//! (and not count the `__pycache__` caches it never reads as up to date), `fix` repairs
//! prefix caches in place, and a prefix tree inside the checked tree (written by a service
//! whose unit sets the variable) is the mirror of its sources even when the shell sets no
//! prefix. The oracle: the interpreter, run with the prefix, accepts pycguard's caches
//! without rewriting them and imports the current sources.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{by_path, pycguard, set_mtime, Interp, Tree};
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

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad json ({e}): {}", text(out)))
}

/// `PREFIX/<abs dir>/NAME.TAG.pyc`, as importlib names a source's cache under a prefix.
fn prefix_cache(prefix: &Path, source: &Path, tag: &str) -> PathBuf {
    let mut out = prefix.to_path_buf();
    out.extend(source.parent().unwrap().components().skip(1));
    let stem = source.file_stem().unwrap().to_str().unwrap();
    out.join(format!("{stem}.{tag}.pyc"))
}

/// (inode, mtime ns) of a file: an interpreter that rewrites a cache replaces its inode.
fn identity(path: &Path) -> (u64, i64) {
    let m = fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

/// Import `modules` with the prefix in effect and bytecode writing on (as a service
/// runs): prints each module's VALUE.
fn import_with_prefix(interp: &Interp, dir: &Path, prefix: &Path, modules: &[&str]) -> String {
    let code = format!(
        "import sys\n{}",
        modules
            .iter()
            .map(|m| format!("import {m}\nsys.stdout.write(str({m}.VALUE) + ' ')\n"))
            .collect::<String>()
    );
    let out = interp
        .command(dir)
        .env("PYTHONPYCACHEPREFIX", prefix)
        .args(["-c", &code])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        interp.version,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A deploy that keeps mtimes: `source` gets same-size `content` and its old mtime back.
/// The cache's inode is touched afterwards (its ctime is then the later one), so neither
/// the header nor the ctimes show the edit: only a proof does.
fn hidden_edit(source: &Path, content: &[u8], cache: &Path) {
    assert_eq!(fs::metadata(source).unwrap().len(), content.len() as u64);
    let (secs, nanos) = common::mtime(source);
    fs::write(source, content).unwrap();
    set_mtime(source, secs as u64, nanos as u32);
    let mode = fs::metadata(cache).unwrap().permissions();
    fs::set_permissions(cache, mode).unwrap();
}

/// `app/pkg/{__init__,mod}.py` with a fixed mtime.
fn app(tree: &Tree) -> PathBuf {
    let root = tree.join("app");
    for (rel, content) in [
        ("app/pkg/__init__.py", &b"VALUE = 'init'\n"[..]),
        ("app/pkg/mod.py", b"VALUE = 'old'\n"),
    ] {
        let p = tree.write(rel, content);
        set_mtime(&p, T, 0);
    }
    root
}

fn in_parallel(interps: &[Interp], test: fn(&Interp)) {
    std::thread::scope(|s| {
        let handles: Vec<_> = interps.iter().map(|i| s.spawn(move || test(i))).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// `compile` with a prefix in effect writes the prefix tree for 3.8+, even when the
/// `__pycache__` caches beside the sources are fresh (the prefixed interpreter never reads
/// them), and the interpreter then runs from those caches without rewriting them.
fn compile_writes_the_prefix_tree(interp: &Interp) {
    let tree = Tree::new();
    let root = app(&tree);
    let prefix = tree.join("prefix");
    let python = interp.path.to_str().unwrap();
    let tag = interp.tag().unwrap();
    // The caches beside the sources, fresh (written by the interpreter without a prefix).
    interp.compile(&root, &["pkg/__init__.py", "pkg/mod.py"], "timestamp", 0);
    let beside = root.join(format!("pkg/__pycache__/mod.{tag}.pyc"));
    let beside_before = identity(&beside);

    let out = pycguard()
        .current_dir(&root)
        .env("PYTHONPYCACHEPREFIX", &prefix)
        .args(["compile", "--python", python])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("compiled 2, 0 up to date, 0 failed"),
        "{}: the __pycache__ caches are not what a prefixed {} reads: {}",
        interp.version,
        interp.version,
        text(&out)
    );
    let cache = prefix_cache(&prefix, &root.join("pkg/mod.py"), &tag);
    assert!(
        cache.is_file(),
        "{} not written: {}",
        cache.display(),
        text(&out)
    );
    assert_eq!(
        identity(&beside),
        beside_before,
        "the beside caches are left"
    );
    // The interpreter with the prefix accepts them as they are.
    let written = identity(&cache);
    assert_eq!(
        import_with_prefix(interp, &root, &prefix, &["pkg.mod"]),
        "old"
    );
    assert_eq!(
        identity(&cache),
        written,
        "{} rewrote pycguard's cache",
        interp.version
    );
    // A second run has nothing to do; the flag works as the variable does.
    let prefix_arg = prefix.to_str().unwrap();
    let out = run(
        &root,
        &[
            "compile",
            "--python",
            python,
            "--pycache-prefix",
            prefix_arg,
        ],
    );
    assert!(
        text(&out).contains("compiled 0, 2 up to date"),
        "{}",
        text(&out)
    );
    // An edit: the prefix cache is recompiled in place; the interpreter then agrees.
    let p = tree.write("app/pkg/mod.py", b"VALUE = 'newer'\n");
    set_mtime(&p, T + 10, 0);
    let out = run(
        &root,
        &[
            "compile",
            "--python",
            python,
            "--pycache-prefix",
            prefix_arg,
        ],
    );
    assert!(
        text(&out).contains("compiled 1, 1 up to date"),
        "{}",
        text(&out)
    );
    let rewritten = identity(&cache);
    assert_eq!(
        import_with_prefix(interp, &root, &prefix, &["pkg.mod"]),
        "newer"
    );
    assert_eq!(identity(&cache), rewritten);
    // check with the prefix: both sets found; the __pycache__ ones judged as usual (the
    // unprefixed runs still read them: the edit made one stale).
    let out = run(
        &root,
        &["check", "--format", "json", "--pycache-prefix", prefix_arg],
    );
    let report = by_path(&json(&out));
    assert_eq!(report.len(), 4, "{report:?}");
    assert_eq!(report[cache.to_str().unwrap()]["state"], "fresh");
    assert_eq!(
        report[&format!("./pkg/__pycache__/mod.{tag}.pyc")]["state"],
        "stale"
    );
}

#[test]
fn compile_with_a_prefix_writes_the_prefix_tree() {
    let interps = common::interpreters_from(3, 8);
    if interps.is_empty() {
        eprintln!("SKIP: no Python 3.8+ to write a pycache prefix");
    }
    in_parallel(&interps, compile_writes_the_prefix_tree);
}

/// One `compile` for interpreters on both sides of 3.8 with a prefix in effect: each
/// gets its caches where it reads them (3.8+ under the prefix, older ones in
/// `__pycache__`, which they use even with the variable set).
#[test]
fn compile_writes_each_interpreter_where_it_reads() {
    let all = common::interpreters();
    let old: Vec<&Interp> = all
        .iter()
        .filter(|i| i.at_least(3, 2) && !i.at_least(3, 8))
        .collect();
    let Some(new) = all.iter().rfind(|i| i.at_least(3, 8)) else {
        eprintln!("SKIP: no Python 3.8+ to write a pycache prefix");
        return;
    };
    if old.is_empty() {
        eprintln!("SKIP: no Python 3.2-3.7 interpreter to keep its caches beside the sources");
    }
    let tree = Tree::new();
    let root = app(&tree);
    let prefix = tree.join("prefix");
    let mut args = vec!["compile".to_owned()];
    for i in old.iter().copied().chain([new]) {
        args.push("--python".into());
        args.push(i.path.to_str().unwrap().into());
    }
    args.push("--pycache-prefix".into());
    args.push(prefix.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&root, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut written = Vec::new();
    for interp in &old {
        let tag = interp.tag().unwrap();
        let cache = root.join(format!("pkg/__pycache__/mod.{tag}.pyc"));
        assert!(cache.is_file(), "{}", text(&out));
        assert!(!prefix_cache(&prefix, &root.join("pkg/mod.py"), &tag).exists());
        written.push((*interp, cache));
    }
    let tag = new.tag().unwrap();
    let cache = prefix_cache(&prefix, &root.join("pkg/mod.py"), &tag);
    assert!(cache.is_file(), "{}", text(&out));
    assert!(!root.join(format!("pkg/__pycache__/mod.{tag}.pyc")).exists());
    written.push((new, cache));
    for (interp, cache) in written {
        let before = identity(&cache);
        assert_eq!(
            import_with_prefix(interp, &root, &prefix, &["pkg.mod"]),
            "old"
        );
        assert_eq!(
            identity(&cache),
            before,
            "{} used the cache",
            interp.version
        );
    }
}

/// `fix` repairs caches under the prefix in effect where they are, beneath the prefix:
/// a stale one recompiled, an orphan deleted, and no `__pycache__` created.
fn fix_repairs_in_the_prefix(interp: &Interp) {
    let tree = Tree::new();
    let root = app(&tree);
    let gone = tree.write("app/pkg/gone.py", b"VALUE = 'gone'\n");
    set_mtime(&gone, T, 0);
    let other = tree.write("app/pkg/other.py", b"VALUE = 'one'\n");
    set_mtime(&other, T, 0);
    let prefix = tree.join("prefix");
    let tag = interp.tag().unwrap();
    import_with_prefix(
        interp,
        &root,
        &prefix,
        &["pkg.mod", "pkg.gone", "pkg.other"],
    );
    fs::remove_file(&gone).unwrap();
    let p = tree.write("app/pkg/mod.py", b"VALUE = 'new'\n");
    set_mtime(&p, T + 30, 0);
    let other_cache = prefix_cache(&prefix, &other, &tag);
    hidden_edit(&other, b"VALUE = 'two'\n", &other_cache);
    let out = run(
        &root,
        &[
            "fix",
            "--python",
            interp.path.to_str().unwrap(),
            "--pycache-prefix",
            prefix.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cache = prefix_cache(&prefix, &root.join("pkg/mod.py"), &tag);
    assert!(
        text(&out).contains(&format!("recompiled {} (stale", cache.display())),
        "{}",
        text(&out)
    );
    // The same-size edit with its mtime kept is proven hidden-stale and recompiled too.
    assert!(
        text(&out).contains(&format!(
            "recompiled {} (hidden-stale",
            other_cache.display()
        )),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("repaired 2, deleted 1"),
        "{}",
        text(&out)
    );
    assert!(!prefix_cache(&prefix, &gone, &tag).exists());
    assert!(!root.join("pkg/__pycache__").exists());
    let written = (identity(&cache), identity(&other_cache));
    assert_eq!(
        import_with_prefix(interp, &root, &prefix, &["pkg.mod", "pkg.other"]),
        "new two"
    );
    assert_eq!(
        (identity(&cache), identity(&other_cache)),
        written,
        "{} accepted the repairs",
        interp.version
    );
}

#[test]
fn fix_repairs_caches_beneath_the_prefix() {
    in_parallel(&common::interpreters_from(3, 8), fix_repairs_in_the_prefix);
}

/// Story 3: a service whose unit sets `PYTHONPYCACHEPREFIX=/opt/app/instance/tmp` fills
/// a prefix tree inside the application tree. `check` and `fix` run from a shell without
/// the variable recognise it by its layout: its caches are judged against the sources they
/// mirror (not orphans), and `fix` repairs them in place rather than deleting them.
fn prefix_inside_the_tree(interp: &Interp) {
    let tree = Tree::new();
    let root = app(&tree);
    let gone = tree.write("app/gone.py", b"VALUE = 'gone'\n");
    set_mtime(&gone, T, 0);
    let prefix = root.join("instance/tmp");
    let tag = interp.tag().unwrap();
    let python = interp.path.to_str().unwrap();
    // The service imports its modules (and the stdlib's land in the prefix too).
    import_with_prefix(interp, &root, &prefix, &["pkg.mod", "gone"]);
    fs::remove_file(&gone).unwrap();
    let cache = prefix_cache(&prefix, &root.join("pkg/mod.py"), &tag);
    assert!(cache.is_file());
    let rel = |p: &Path| format!("./{}", p.strip_prefix(&root).unwrap().display());

    let out = run(&root, &["check", "--format", "json"]);
    let report = json(&out);
    let caches = by_path(&report);
    assert!(caches.len() >= 3, "{report}");
    let mine = &caches[&rel(&cache)];
    assert_eq!(mine["state"], "fresh", "{mine}");
    assert_eq!(mine["source"], "./pkg/mod.py", "{mine}");
    let orphan = &caches[&rel(&prefix_cache(&prefix, &gone, &tag))];
    assert_eq!(orphan["state"], "orphan", "{orphan}");
    assert!(
        orphan["reason"]
            .as_str()
            .unwrap()
            .contains("gone.py does not exist"),
        "{orphan}"
    );
    for (path, entry) in &caches {
        if entry != orphan {
            // Ours and the stdlib's mirrors: every one judged against a real source.
            assert_eq!(entry["state"], "fresh", "{path}: {entry}");
            let source = entry["source"].as_str().unwrap();
            let source = if source.starts_with('/') {
                PathBuf::from(source)
            } else {
                root.join(source)
            };
            assert!(source.is_file(), "{path}: {entry}");
        }
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "an orphan is a warning: {report}"
    );

    // An edit in place, then `fix` from the shell (no prefix set).
    let p = tree.write("app/pkg/mod.py", b"VALUE = 'fixed'\n");
    set_mtime(&p, T + 20, 0);
    let out = run(&root, &["fix", "--python", python]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("recompiled {} (stale", rel(&cache))),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("repaired 1, deleted 1,"),
        "{}",
        text(&out)
    );
    assert!(cache.is_file(), "the live cache is kept");
    let written = identity(&cache);
    assert_eq!(
        import_with_prefix(interp, &root, &prefix, &["pkg.mod"]),
        "fixed"
    );
    assert_eq!(
        identity(&cache),
        written,
        "{} accepted the repair",
        interp.version
    );
    let out = run(&root, &["check", "-q", "--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // `clean --state orphan` no longer removes the live caches.
    let out = run(&root, &["clean", "--state", "orphan"]);
    assert!(text(&out).contains("removed 0 caches"), "{}", text(&out));
    assert!(cache.is_file());
    // A cache of the prefix given as the PATH is judged against its source too.
    let out = run(&root, &["check", "--format", "json", &rel(&cache)]);
    let report = json(&out);
    assert_eq!(report["summary"]["fresh"], 1, "{report}");
    let out = run(&root, &["inspect", &rel(&cache)]);
    assert!(
        text(&out).contains("verdict       fresh")
            && text(&out).contains(&format!(
                "source        {} (exists)",
                root.join("pkg/mod.py").display()
            )),
        "{}",
        text(&out)
    );
}

#[test]
fn a_prefix_tree_inside_the_checked_tree_is_the_mirror_of_its_sources() {
    in_parallel(&common::interpreters_from(3, 8), prefix_inside_the_tree);
}
