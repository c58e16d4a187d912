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

/// A tree with, per interpreter (2.7, 3.6+), a fresh cache and a same-size edit with the
/// mtime restored (hidden-stale once proven), in a directory of its own.
fn proving_tree(interps: &[Interp]) -> Tree {
    let tree = Tree::new();
    let t = base();
    for i in interps {
        let dir = format!("v{}", i.version.replace('.', "_"));
        write_source(&tree, &format!("{dir}/fresh.py"), OLD, t);
        write_source(&tree, &format!("{dir}/edited.py"), OLD, t);
        i.compile(&tree.join(&dir), &["fresh.py", "edited.py"], "timestamp", 0);
        write_source(&tree, &format!("{dir}/edited.py"), NEW_SAME_SIZE, t);
    }
    tree
}

/// `check --deep --format json` of `tree` with pycguard's cache in `cache`, after removing
/// everything there but the probe memo (so every proof is made again): (path → state,
/// checked, reason), exit code.
fn deep_verdicts(tree: &Path, cache: &Path) -> (std::collections::BTreeMap<String, String>, i32) {
    for e in fs::read_dir(cache).into_iter().flatten().flatten() {
        if e.file_name() != "interpreters-v2.json" {
            let _ = fs::remove_file(e.path());
        }
    }
    let out = common::pycguard()
        .current_dir(tree)
        .args(["check", "--deep", "--format", "json", "--cache-dir"])
        .arg(cache)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let verdicts = by_path(&report)
        .into_iter()
        .map(|(p, e)| {
            (
                p,
                format!("{} {} {}", e["state"], e["checked"], e["reason"]),
            )
        })
        .collect();
    (verdicts, out.status.code().unwrap_or(-1))
}

/// The entries of a probe memo as (executable, answer), whatever the format's layout.
fn memo_answers(memo: &Value) -> std::collections::BTreeMap<String, Value> {
    memo["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            if e.is_array() {
                (e[0].as_str().unwrap().to_owned(), e[2].clone())
            } else {
                (
                    e["executable"].as_str().unwrap().to_owned(),
                    e["answer"].clone(),
                )
            }
        })
        .collect()
}

/// Chooses a memo entry's answer from its executable and its current answer.
type Pick = Box<dyn Fn(&str, &Value) -> Value>;

/// Give each entry of a memo the answer `pick` chooses (by executable).
fn rewrite_memo(path: &Path, pick: &dyn Fn(&str, &Value) -> Value) {
    let mut memo: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    for e in memo["entries"].as_array_mut().unwrap() {
        let (exe, slot) = if e.is_array() {
            (e[0].as_str().unwrap().to_owned(), &mut e[2])
        } else {
            (
                e["executable"].as_str().unwrap().to_owned(),
                &mut e["answer"],
            )
        };
        *slot = pick(&exe, slot);
    }
    fs::write(path, serde_json::to_vec(&memo).unwrap()).unwrap();
}

/// "The cache can only save work, never change a verdict": a well-formed probe memo whose
/// answers are swapped between interpreters (3.11.7 and the system's 3.11.2, same magic;
/// 3.12 and 3.11; every answer moved to the next interpreter) gives the same verdicts as
/// a clean run, and is rebuilt with the true answers.
#[test]
fn a_swapped_probe_memo_changes_no_verdict_and_is_rebuilt() {
    let interps: Vec<Interp> = common::interpreters()
        .into_iter()
        .filter(|i| i.major == 2 || i.at_least(3, 6))
        .collect();
    if interps.len() < 2 {
        eprintln!("SKIP: swapped memo test needs two interpreters");
        return;
    }
    let tree = proving_tree(&interps);
    let cache = Tree::new();
    let memo_path = cache.join("interpreters-v2.json");
    let (baseline, code) = deep_verdicts(tree.path(), cache.path());
    assert_eq!(code, 1, "the edited caches are hidden-stale");
    assert!(baseline.values().any(|v| v.contains("hidden-stale")));
    let truth = memo_answers(&serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap());
    let find = |needle: &str| truth.keys().find(|k| k.contains(needle)).cloned();
    let mut swaps: Vec<(String, String, String)> = Vec::new();
    match (find("3.11.7/"), find("/usr/bin/python3.11")) {
        (Some(a), Some(b)) => swaps.push(("3.11.7 <-> 3.11.2".into(), a, b)),
        _ => eprintln!("SKIP: swapped memo: no 3.11.7 and /usr/bin/python3.11 pair"),
    }
    match (find("3.12"), find("3.11.7/")) {
        (Some(a), Some(b)) => swaps.push(("3.12 <-> 3.11.7".into(), a, b)),
        _ => eprintln!("SKIP: swapped memo: no 3.12 and 3.11.7 pair"),
    }
    let keys: Vec<String> = truth.keys().cloned().collect();
    let mut cases: Vec<(String, Pick)> = swaps
        .into_iter()
        .map(|(label, a, b)| {
            let truth = truth.clone();
            let pick: Pick = Box::new(move |exe, answer| {
                if exe == a {
                    truth[&b].clone()
                } else if exe == b {
                    truth[&a].clone()
                } else {
                    answer.clone()
                }
            });
            (label, pick)
        })
        .collect();
    let rotated = truth.clone();
    cases.push((
        "every answer moved to the next interpreter".into(),
        Box::new(move |exe, _| {
            let k = keys.iter().position(|k| k == exe).unwrap();
            rotated[&keys[(k + 1) % keys.len()]].clone()
        }),
    ));
    for (label, pick) in &cases {
        rewrite_memo(&memo_path, pick.as_ref());
        let (verdicts, code_now) = deep_verdicts(tree.path(), cache.path());
        for (path, v) in &baseline {
            assert_eq!(verdicts.get(path), Some(v), "{label}: {path}");
        }
        assert_eq!(verdicts.len(), baseline.len(), "{label}");
        assert_eq!(code_now, code, "{label}");
        let rebuilt =
            memo_answers(&serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap());
        assert_eq!(
            rebuilt, truth,
            "{label}: the memo is rebuilt with the true answers"
        );
    }
}

/// A remembered answer that passes every check pycguard can make without running the
/// interpreter, but gives the wrong patch version, is corrected by the worker's hello: the
/// proof names the real version, and the remembered answer is discarded (and shown
/// correctly by `pycguard interpreters`, which asks every interpreter).
#[test]
fn a_wrong_remembered_version_is_corrected_by_the_worker() {
    let interps: Vec<Interp> = common::interpreters()
        .into_iter()
        .filter(|i| i.major == 2 || i.at_least(3, 6))
        .collect();
    let Some(newest) = interps.iter().max_by_key(|i| (i.major, i.minor)).cloned() else {
        eprintln!("SKIP: no interpreter");
        return;
    };
    let tree = proving_tree(std::slice::from_ref(&newest));
    let cache = Tree::new();
    let memo_path = cache.join("interpreters-v2.json");
    let (baseline, _) = deep_verdicts(tree.path(), cache.path());
    let lie = format!("{}.{}.99", newest.major, newest.minor);
    let truth = memo_answers(&serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap());
    rewrite_memo(&memo_path, &|_, answer| {
        let mut a = answer.clone();
        if a["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(&format!("{}.{}.", newest.major, newest.minor)))
        {
            a["version"] = Value::from(lie.clone());
        }
        a
    });
    let (verdicts, _) = deep_verdicts(tree.path(), cache.path());
    assert_eq!(verdicts, baseline);
    let stale = verdicts
        .values()
        .find(|v| v.contains("hidden-stale"))
        .expect("a hidden-stale cache");
    assert!(
        stale.contains(&format!("Python {})", newest.version)) && !stale.contains(&lie),
        "{stale}"
    );
    let memo = fs::read(&memo_path).unwrap();
    assert!(
        !String::from_utf8_lossy(&memo).contains(&lie),
        "the contradicted answer is discarded"
    );
    // Whatever is remembered, the listing asks every interpreter.
    rewrite_memo(&memo_path, &|_, answer| {
        let mut a = answer.clone();
        if a["version"]
            .as_str()
            .is_some_and(|v| v.starts_with(&format!("{}.{}.", newest.major, newest.minor)))
        {
            a["version"] = Value::from(lie.clone());
        }
        a
    });
    let out = common::pycguard()
        .args(["interpreters", "--cache-dir"])
        .arg(cache.path())
        .arg(tree.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        !listing.contains(&lie) && listing.contains(&newest.version),
        "{listing}"
    );
    let rebuilt = memo_answers(&serde_json::from_slice(&fs::read(&memo_path).unwrap()).unwrap());
    assert_eq!(rebuilt, truth);
}

/// `python -OOO` (or `PYTHONOPTIMIZE=3`, or `-OOOO`) really writes and reads `.opt-3`
/// (`.opt-4`) caches, compiled as at level 2. pycguard proves them fresh, finds a
/// same-size edit in them, and `fix` rebuilds them so that the interpreter loads them —
/// for every 3.x interpreter.
#[test]
fn optimisation_levels_above_two_are_proven_and_repaired() {
    const SOURCE: &[u8] =
        b"\"\"\"doc\"\"\"\nassert len(__doc__ or 'x') > 100, 'no'\nVALUE = 'old'\ndef f():\n    \"\"\"fdoc\"\"\"\n    if __debug__:\n        return 1\n    return 2\n";
    const EDITED: &[u8] =
        b"\"\"\"doc\"\"\"\nassert len(__doc__ or 'x') > 100, 'no'\nVALUE = 'new'\ndef f():\n    \"\"\"fdoc\"\"\"\n    if __debug__:\n        return 1\n    return 2\n";
    let interps = common::interpreters_from(3, 6);
    std::thread::scope(|s| {
        for i in &interps {
            s.spawn(move || {
                let tree = Tree::new();
                let pkg = tree.join("pkg");
                let t = base();
                write_source(&tree, "pkg/m.py", SOURCE, t);
                let tag = i.tag().unwrap();
                // How Python is asked for each level; it writes only m's cache.
                type Variant<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], u32);
                let variants: [Variant; 3] = [
                    (&["-OOO"], &[], 3),
                    (&[], &[("PYTHONOPTIMIZE", "3")], 3),
                    (&["-OOOO"], &[], 4),
                ];
                let import = |flags: &[&str], env: &[(&str, &str)], verbose: bool| {
                    let code = format!(
                        "import sys\nsys.dont_write_bytecode = False\nsys.path.insert(0, {:?})\nimport m\nsys.stdout.write(m.VALUE + ' ' + str(sys.flags.optimize))",
                        pkg.display().to_string()
                    );
                    let mut cmd = i.command(Path::new("/"));
                    cmd.args(flags)
                        .args(if verbose { &["-v"][..] } else { &[] })
                        .env("PYTHONDONTWRITEBYTECODE", "1")
                        .arg("-c")
                        .arg(code);
                    for (k, v) in env {
                        cmd.env(k, v);
                    }
                    let out = cmd.output().unwrap();
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                    (
                        String::from_utf8_lossy(&out.stdout).into_owned(),
                        String::from_utf8_lossy(&out.stderr).into_owned(),
                    )
                };
                for (flags, env, level) in variants {
                    let (value, _) = import(flags, env, false);
                    assert_eq!(value, format!("old {level}"), "{}", i.version);
                    let cache = pkg.join(format!("__pycache__/m.{tag}.opt-{level}.pyc"));
                    assert!(cache.exists(), "{} wrote {}", i.version, cache.display());
                }
                let name3 = format!("./pkg/__pycache__/m.{tag}.opt-3.pyc");
                let name4 = format!("./pkg/__pycache__/m.{tag}.opt-4.pyc");
                let store = Tree::new();
                let deep = |what: &str| {
                    let (verdicts, _) = deep_verdicts(tree.path(), store.path());
                    for name in [&name3, &name4] {
                        let v = verdicts.get(name.as_str()).unwrap_or_else(|| panic!("{name}: {verdicts:?}"));
                        assert!(v.starts_with(what), "Python {}: {name}: {v}", i.version);
                    }
                    verdicts
                };
                deep("\"fresh\" \"deep\"");
                write_source(&tree, "pkg/m.py", EDITED, t);
                let verdicts = deep("\"hidden-stale\"");
                assert!(verdicts[&name3].contains("'old' became 'new'"), "{}", verdicts[&name3]);
                let out = common::pycguard()
                    .current_dir(tree.path())
                    .args(["fix", "--deep", "--cache-dir"])
                    .arg(store.path())
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                assert_eq!(out.status.code(), Some(0), "{}: {text}", i.version);
                assert!(text.contains("repaired 2"), "{}: {text}", i.version);
                deep("\"fresh\" \"deep\"");
                // The interpreter loads the rebuilt caches (no recompile) and runs the edit.
                for (flags, env, level) in variants {
                    let (value, log) = import(flags, env, true);
                    assert_eq!(value, format!("new {level}"), "{}", i.version);
                    let loaded = format!("code object from '{}", pkg.join("__pycache__").join(format!("m.{tag}.opt-{level}.pyc")).display());
                    assert!(log.contains(&loaded), "Python {} did not load the cache:\n{log}", i.version);
                }
            });
        }
    });
}
