//! Every state, judged on caches written by each real interpreter on the machine, and —
//! where it matters — checked against what that interpreter then actually imports.

mod common;

use std::fs;
use std::path::Path;

use common::{by_path, check_json, set_mtime, Interp, Tree};
use serde_json::Value;

const OLD: &[u8] = b"VALUE = 'old'\n";
const NEW_SAME_SIZE: &[u8] = b"VALUE = 'new'\n";
const NEWER: &[u8] = b"VALUE = 'newer'\n";

/// A base mtime for sources, well in the past so cache files are newer.
fn base() -> u64 {
    common::now_secs() - 1000
}

fn cache(interp: &Interp, module: &str, opt: u32) -> String {
    match interp.tag() {
        Some(tag) if opt > 0 => format!("./pkg/__pycache__/{module}.{tag}.opt-{opt}.pyc"),
        Some(tag) => format!("./pkg/__pycache__/{module}.{tag}.pyc"),
        None => format!("./pkg/{module}.pyc"),
    }
}

fn state(entries: &std::collections::BTreeMap<String, Value>, path: &str) -> (String, String) {
    let e = entries.get(path).unwrap_or_else(|| {
        panic!(
            "{path} not reported; got {:?}",
            entries.keys().collect::<Vec<_>>()
        )
    });
    (
        e["state"].as_str().unwrap().to_owned(),
        e["severity"].as_str().unwrap().to_owned(),
    )
}

fn write_source(tree: &Tree, rel: &str, content: &[u8], t: u64) {
    let p = tree.write(rel, content);
    set_mtime(&p, t, 100_000_000);
}

/// Build a tree with one module per state, compiled by `interp`, then damaged so that each
/// module's cache is in its state. Returns the tree.
fn build_states(interp: &Interp) -> Tree {
    let tree = Tree::new();
    let t = base();
    let py3 = interp.major >= 3;
    let hash = interp.at_least(3, 7);
    let mut modules = vec![
        "fresh", "stale", "suspect", "gone", "broken", "short", "unk", "ghost",
    ];
    if hash {
        modules.extend(["hidden", "checked"]);
    }
    write_source(&tree, "pkg/__init__.py", b"", t);
    for m in &modules {
        write_source(&tree, &format!("pkg/{m}.py"), OLD, t);
    }
    let files: Vec<String> = modules
        .iter()
        .filter(|m| !["hidden", "checked", "ghost"].contains(m))
        .map(|m| format!("pkg/{m}.py"))
        .chain(std::iter::once("pkg/__init__.py".to_owned()))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    interp.compile(tree.path(), &files, "timestamp", 0);
    interp.compile(tree.path(), &["pkg/ghost.py"], "legacy", 0);
    if hash {
        interp.compile(tree.path(), &["pkg/hidden.py"], "unchecked_hash", 0);
        interp.compile(tree.path(), &["pkg/checked.py"], "checked_hash", 0);
    }
    if py3 {
        write_source(&tree, "pkg/leg.py", OLD, t);
        interp.compile(tree.path(), &["pkg/leg.py"], "legacy", 0);
        write_source(&tree, "pkg/opt.py", OLD, t);
        write_source(&tree, "pkg/foo.bar.py", OLD, t);
        interp.compile(tree.path(), &["pkg/opt.py"], "timestamp", 1);
        interp.compile(tree.path(), &["pkg/opt.py"], "timestamp", 2);
        interp.compile(tree.path(), &["pkg/foo.bar.py"], "timestamp", 0);
    }
    // A sourceless distribution: legacy caches only.
    write_source(&tree, "dist/lib.py", OLD, t);
    interp.compile(tree.path(), &["dist/lib.py"], "legacy", 0);
    fs::remove_file(tree.join("dist/lib.py")).unwrap();

    // stale: new content, new size, new mtime.
    write_source(&tree, "pkg/stale.py", NEWER, t + 50);
    // suspect: same size, same whole second, written after the cache file.
    let suspect_cache = tree.join(&cache(interp, "suspect", 0)[2..]);
    set_mtime(&suspect_cache, t, 200_000_000);
    let p = tree.write("pkg/suspect.py", NEW_SAME_SIZE);
    set_mtime(&p, t, 900_000_000);
    if hash {
        write_source(&tree, "pkg/hidden.py", NEW_SAME_SIZE, t);
        write_source(&tree, "pkg/checked.py", NEW_SAME_SIZE, t);
    }
    // orphan (py3) / ghost (legacy): sources deleted.
    fs::remove_file(tree.join("pkg/gone.py")).unwrap();
    fs::remove_file(tree.join("pkg/ghost.py")).unwrap();
    // corrupt (error): header intact, body cut short.
    let broken = tree.join(&cache(interp, "broken", 0)[2..]);
    let mut bytes = fs::read(&broken).unwrap();
    bytes.truncate(bytes.len().min(16 + 20).min(bytes.len() - 10));
    fs::write(&broken, &bytes).unwrap();
    // corrupt (warning): header cut short.
    let short = tree.join(&cache(interp, "short", 0)[2..]);
    let bytes = fs::read(&short).unwrap();
    fs::write(&short, &bytes[..6]).unwrap();
    // unknown: a magic number from the future (3650 = 3.15's range).
    let unk = tree.join(&cache(interp, "unk", 0)[2..]);
    let mut bytes = fs::read(&unk).unwrap();
    bytes[0] = 0x42;
    bytes[1] = 0x0e;
    fs::write(&unk, &bytes).unwrap();
    tree
}

fn check_states(interp: &Interp) {
    eprintln!(
        "checking states with Python {} ({})",
        interp.version,
        interp.path.display()
    );
    let tree = build_states(interp);
    let dir = tree.path();
    let (report, code) = check_json(dir, &[]);
    let entries = by_path(&report);
    let s = |path: &str| state(&entries, path);
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());

    assert_eq!(s(&cache(interp, "fresh", 0)), pair("fresh", "ok"));
    assert_eq!(s(&cache(interp, "stale", 0)), pair("stale", "warning"));
    assert_eq!(s(&cache(interp, "suspect", 0)), pair("suspect", "warning"));
    assert_eq!(s(&cache(interp, "broken", 0)), pair("corrupt", "error"));
    assert_eq!(s(&cache(interp, "short", 0)), pair("corrupt", "warning"));
    assert_eq!(s("./pkg/ghost.pyc"), pair("ghost", "error"));
    assert_eq!(s("./dist/lib.pyc"), pair("sourceless", "info"));
    if interp.major >= 3 {
        assert_eq!(s(&cache(interp, "gone", 0)), pair("orphan", "warning"));
        // The tag names the interpreter that reads it, and it rejects any other magic.
        assert_eq!(s(&cache(interp, "unk", 0)), pair("stale", "warning"));
        assert_eq!(s("./pkg/leg.pyc"), pair("orphan", "warning"));
        for opt in [1, 2] {
            let e = &entries[&cache(interp, "opt", opt)];
            assert_eq!(e["state"], "fresh", "{e}");
            assert_eq!(e["optimization"], opt);
        }
        let dotted = &entries[&format!("./pkg/__pycache__/foo.bar.{}.pyc", interp.tag().unwrap())];
        assert_eq!(dotted["state"], "fresh", "{dotted}");
        assert_eq!(dotted["source"], "./pkg/foo.bar.py");
    } else {
        // Python 2: the legacy cache of a deleted source in a directory with sources is a ghost.
        assert_eq!(s("./pkg/gone.pyc"), pair("ghost", "error"));
        assert_eq!(s("./pkg/unk.pyc"), pair("unknown", "info"));
    }
    if interp.at_least(3, 7) {
        assert_eq!(
            s(&cache(interp, "hidden", 0)),
            pair("hidden-stale", "error")
        );
        assert_eq!(s(&cache(interp, "checked", 0)), pair("stale", "warning"));
        let hidden = &entries[&cache(interp, "hidden", 0)];
        assert_eq!(hidden["invalidation"], "unchecked-hash");
        assert_eq!(hidden["checked"], "hash");
        let fresh = &entries[&cache(interp, "fresh", 0)];
        assert_eq!(fresh["invalidation"], "timestamp");
    }
    for e in entries.values() {
        if e["path"].as_str().unwrap().contains("unk") {
            continue;
        }
        assert_eq!(e["interpreter"], interp.id(), "{e}");
        if e["state"] != "fresh" {
            assert!(e["reason"].is_string(), "non-fresh needs a reason: {e}");
        }
    }
    assert_eq!(code, 1, "errors present → exit 1");

    // The oracle: what the interpreter actually imports.
    let import = |m: &str| interp.import_value(dir, &format!("pkg.{m}"));
    assert_eq!(import("fresh"), Ok("old".into()));
    assert_eq!(
        import("stale"),
        Ok("newer".into()),
        "stale: the interpreter notices"
    );
    assert_eq!(
        import("suspect"),
        Ok("old".into()),
        "suspect: the interpreter trusts the old cache"
    );
    assert_eq!(
        import("ghost"),
        Ok("old".into()),
        "ghost: the deleted module still imports"
    );
    assert_eq!(
        import("short"),
        Ok("old".into()),
        "a short header is regenerated"
    );
    let broken = import("broken");
    assert!(
        broken.is_err(),
        "a damaged body fails the import: {broken:?}"
    );
    if interp.at_least(3, 7) {
        assert_eq!(
            import("hidden"),
            Ok("old".into()),
            "hidden-stale: old code runs"
        );
        assert_eq!(
            import("checked"),
            Ok("new".into()),
            "checked-hash: the interpreter notices"
        );
    }
    if interp.major >= 3 {
        assert!(import("gone").is_err(), "an orphan is never imported");
        assert_eq!(import("unk"), Ok("old".into()), "unknown magic: recompiled");
        assert_eq!(import("leg"), Ok("old".into()));
    }
}

fn run_series(major: u32, minor: u32) {
    let found: Vec<Interp> = common::interpreters()
        .into_iter()
        .filter(|i| i.major == major && i.minor == minor)
        .collect();
    if found.is_empty() {
        eprintln!("SKIP: states test for Python {major}.{minor}: interpreter not found");
        return;
    }
    for interp in &found {
        check_states(interp);
    }
}

macro_rules! series_tests {
    ($($name:ident: $major:literal, $minor:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run_series($major, $minor);
            }
        )*
    };
}

series_tests! {
    states_python_2_7: 2, 7;
    states_python_3_6: 3, 6;
    states_python_3_7: 3, 7;
    states_python_3_8: 3, 8;
    states_python_3_9: 3, 9;
    states_python_3_10: 3, 10;
    states_python_3_11: 3, 11;
    states_python_3_12: 3, 12;
    states_python_3_13: 3, 13;
}

/// A checked-hash cache written by each interpreter 3.7+ is judged fresh by hash: pycguard's
/// SipHash (2-4 before 3.11, 1-3 from 3.11) equals the interpreter's `source_hash`.
#[test]
fn hash_caches_match_every_interpreters_source_hash() {
    for interp in common::interpreters_from(3, 7) {
        let tree = Tree::new();
        let sources: [(&str, &[u8]); 3] = [
            ("pkg/a.py", b"x = 1\n"),
            ("pkg/b.py", b""),
            ("pkg/c.py", "s = 'h\u{e9}llo \u{1f600}'\n".as_bytes()),
        ];
        for (rel, content) in sources {
            tree.write(rel, content);
        }
        interp.compile(
            tree.path(),
            &["pkg/a.py", "pkg/b.py", "pkg/c.py"],
            "checked_hash",
            0,
        );
        let (report, code) = check_json(tree.path(), &[]);
        assert_eq!(code, 0);
        for e in report["caches"].as_array().unwrap() {
            assert_eq!(e["state"], "fresh", "{} {e}", interp.version);
            assert_eq!(e["checked"], "hash");
            assert_eq!(e["invalidation"], "checked-hash");
        }
        // The interpreter's own source_hash of the spec's vector is what the header holds.
        let expected = interp.run(
            tree.path(),
            "import importlib.util, sys; sys.stdout.write(importlib.util.source_hash(b'x = 1\\n').hex())",
            &[],
        );
        let pyc = fs::read(tree.join(format!("pkg/__pycache__/a.{}.pyc", interp.tag().unwrap())))
            .unwrap();
        let stored: String = pyc[8..16].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(stored, expected);
    }
}

/// The interpreter writes `int(st_mtime)` of the float mtime: a source whose mtime is a
/// hair before a second boundary gets the *next* second in the header. pycguard must agree.
#[test]
fn mtime_float_rounding_matches_the_interpreter() {
    for interp in common::interpreters_from(3, 6) {
        let tree = Tree::new();
        let p = tree.write("pkg/m.py", b"x = 1\n");
        set_mtime(&p, 1_700_000_000, 999_999_999);
        interp.compile(tree.path(), &["pkg/m.py"], "timestamp", 0);
        let (report, _) = check_json(tree.path(), &[]);
        let e = &report["caches"][0];
        assert_eq!(e["state"], "fresh", "{} {e}", interp.version);
        let pyc = fs::read(tree.join(format!("pkg/__pycache__/m.{}.pyc", interp.tag().unwrap())))
            .unwrap();
        let at = if interp.at_least(3, 7) { 8 } else { 4 };
        let header = u32::from_le_bytes(pyc[at..at + 4].try_into().unwrap());
        assert_eq!(header, 1_700_000_001, "{} rounds up", interp.version);
    }
}

/// Caches under a pycache prefix (3.8+) are found and mapped to their sources, from the flag
/// and from $PYTHONPYCACHEPREFIX.
#[test]
fn pycache_prefix_layout() {
    for interp in common::interpreters_from(3, 8) {
        let tree = Tree::new();
        let root = tree.join("app");
        let prefix = tree.join("prefix");
        write_source(&tree, "app/pkg/__init__.py", b"", base());
        write_source(&tree, "app/pkg/mod.py", OLD, base());
        let out = interp
            .command(&root)
            .env("PYTHONPYCACHEPREFIX", &prefix)
            .args(["-c", "import pkg.mod"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!root.join("pkg/__pycache__").exists());
        let tag = interp.tag().unwrap();
        let mirror = common::snapshot(&prefix);
        assert!(
            mirror
                .keys()
                .any(|p| p.ends_with(format!("pkg/mod.{tag}.pyc"))),
            "{mirror:?}"
        );
        let prefix_arg = prefix.to_str().unwrap();
        let (report, code) = check_json(&root, &["--pycache-prefix", prefix_arg]);
        assert_eq!(code, 0);
        let caches = report["caches"].as_array().unwrap();
        assert_eq!(caches.len(), 2, "{report}");
        for e in caches {
            assert_eq!(e["state"], "fresh", "{e}");
            assert!(e["path"].as_str().unwrap().starts_with(prefix_arg), "{e}");
            assert!(e["source"].as_str().unwrap().starts_with("./pkg/"), "{e}");
        }
        // From the environment, and an edit makes it stale.
        write_source(&tree, "app/pkg/mod.py", NEWER, base() + 5);
        let out = common::pycguard()
            .current_dir(&root)
            .env("PYTHONPYCACHEPREFIX", &prefix)
            .args(["check", "--format", "json"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let states: Vec<_> = report["caches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["source"].as_str().unwrap().to_owned(),
                    e["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(
            states.contains(&("./pkg/mod.py".into(), "stale".into())),
            "{states:?}"
        );
        // Without a prefix the caches are not found at all.
        let (report, _) = check_json(&root, &[]);
        assert_eq!(report["summary"]["caches"], 0);
    }
}

/// A source that is a symlink is judged by its target's stat, as the importer does.
#[test]
fn symlinked_source_uses_the_target_stat() {
    for interp in common::interpreters_from(3, 7)
        .into_iter()
        .take(1)
        .chain(common::interpreters().into_iter().filter(|i| i.major == 2))
    {
        let tree = Tree::new();
        write_source(&tree, "real/mod.py", OLD, base());
        fs::create_dir_all(tree.join("pkg")).unwrap();
        std::os::unix::fs::symlink(tree.join("real/mod.py"), tree.join("pkg/mod.py")).unwrap();
        interp.compile(tree.path(), &["pkg/mod.py"], "timestamp", 0);
        let (report, _) = check_json(tree.path(), &["pkg"]);
        assert_eq!(report["caches"][0]["state"], "fresh", "{report}");
        write_source(&tree, "real/mod.py", NEWER, base() + 9);
        let (report, _) = check_json(tree.path(), &["pkg"]);
        assert_eq!(report["caches"][0]["state"], "stale", "{report}");
    }
}

/// Non-UTF-8 file names work, and JSON paths round-trip through Python's surrogateescape.
#[test]
fn non_utf8_names_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    let Some(interp) = common::interpreters_from(3, 7).into_iter().last() else {
        eprintln!("SKIP: no Python 3.7+");
        return;
    };
    let tree = Tree::new();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9.py");
    let src = tree.join("pkg").join(name);
    fs::create_dir_all(src.parent().unwrap()).unwrap();
    fs::write(&src, OLD).unwrap();
    interp.run(
        tree.path(),
        "import os, py_compile\nfor f in os.listdir(b'pkg'):\n    py_compile.compile(os.fsdecode(b'pkg/' + f), doraise=True)",
        &[],
    );
    let out = common::pycguard()
        .current_dir(tree.path())
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json_path = tree.join("report.json");
    fs::write(&json_path, &out.stdout).unwrap();
    let roundtrip = interp.run(
        tree.path(),
        "import json, os, sys\nr = json.load(open('report.json'))\nc = r['caches'][0]\nsys.stdout.write(repr((os.fsencode(c['path']), os.path.exists(os.fsencode(c['path'])), os.path.exists(os.fsencode(c['source'])), c['state'])))",
        &[],
    );
    let tag = interp.tag().unwrap();
    assert_eq!(
        roundtrip,
        format!("(b'./pkg/__pycache__/caf\\xe9.{tag}.pyc', True, True, 'fresh')")
    );
    let _ = Path::new("");
}
