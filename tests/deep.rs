//! `check --deep`, end to end, with every real interpreter on the machine: caches are
//! written by the interpreters themselves, then sources are edited in the ways that fool
//! the importer, and pycguard must prove (or disprove) each cache by compiling its source
//! with the interpreter that wrote it. Missing interpreters print `SKIP:` lines.
//!
//! Worker faults (a crash, a hang) are injected through the worker program's test-only
//! switch `PYCGUARD_TEST_WORKER_FAULT=1` (see `src/deep/worker.py`): a source containing
//! a marker makes the real worker process die or hang; nothing is faked.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{by_path, pycguard, set_mtime, snapshot, Interp, Tree};
use serde_json::Value;

const OLD: &[u8] = b"VALUE = 'old'\n\ndef get_timeout():\n    return 60\n";
const NEW_SAME_SIZE: &[u8] = b"VALUE = 'new'\n\ndef get_timeout():\n    return 60\n";

/// A base mtime for sources, well in the past.
/// A fixed past instant for this test process (1000 s before it started): every call
/// gives the same value, so a header and the source it describes never straddle a second.
fn base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| common::now_secs() - 1000)
}

/// Interpreters that can prove caches: 2.7 and 3.6+.
fn provers() -> Vec<Interp> {
    common::interpreters()
        .into_iter()
        .filter(|i| i.major == 2 || i.at_least(3, 6))
        .collect()
}

/// The cache path of `dir/module.py` for `interp`, relative to the tree (`./…`).
fn cache_of(interp: &Interp, dir: &str, module: &str, opt: u32) -> String {
    match interp.tag() {
        Some(tag) if opt > 0 => format!("./{dir}/__pycache__/{module}.{tag}.opt-{opt}.pyc"),
        Some(tag) => format!("./{dir}/__pycache__/{module}.{tag}.pyc"),
        None => format!("./{dir}/{module}.pyc"),
    }
}

/// The directory of one interpreter's modules inside a shared tree.
fn dir_of(interp: &Interp) -> String {
    format!("v{}{}", interp.major, interp.minor)
}

/// `check --deep --format json` with its own store directory.
fn deep(dir: &Path, store: &Path, args: &[&str]) -> (Value, i32, String) {
    let out = pycguard()
        .current_dir(dir)
        .args(["check", "--deep", "--format", "json", "--cache-dir"])
        .arg(store)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let value: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("bad json ({e}): {stdout}\nstderr: {stderr}"));
    (value, out.status.code().unwrap_or(-1), stderr)
}

fn entry<'a>(entries: &'a std::collections::BTreeMap<String, Value>, path: &str) -> &'a Value {
    entries.get(path).unwrap_or_else(|| {
        panic!(
            "{path} not reported; got {:?}",
            entries.keys().collect::<Vec<_>>()
        )
    })
}

fn state_of(e: &Value) -> (&str, &str, &str) {
    (
        e["state"].as_str().unwrap(),
        e["severity"].as_str().unwrap(),
        e["checked"].as_str().unwrap(),
    )
}

fn reason(e: &Value) -> &str {
    e["reason"].as_str().unwrap_or("")
}

/// Write `dir/name.py` with mtime `t` + `nanos`.
fn source(tree: &Tree, rel: &str, content: &[u8], t: u64, nanos: u32) {
    let p = tree.write(rel, content);
    set_mtime(&p, t, nanos);
}

/// Replace a source's content and give it back exactly its old mtime (a deploy with
/// `cp -p`, `rsync -t`, a revert…).
fn replace_keeping_mtime(path: &Path, content: &[u8]) {
    let (secs, nanos) = common::mtime(path);
    fs::write(path, content).unwrap();
    set_mtime(path, secs as u64, nanos as u32);
}

#[test]
fn same_size_edit_with_mtime_restored_is_hidden_stale_and_fresh_stays_fresh() {
    let interps = provers();
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    for i in &interps {
        let d = dir_of(i);
        source(&tree, &format!("{d}/edited.py"), OLD, t, 0);
        source(&tree, &format!("{d}/kept.py"), OLD, t, 0);
        i.compile(
            &tree.join(&d),
            &["edited.py", "kept.py"],
            if i.major == 2 { "legacy" } else { "timestamp" },
            0,
        );
        replace_keeping_mtime(&tree.join(format!("{d}/edited.py")), NEW_SAME_SIZE);
    }
    let (shallow, _) = common::check_json(tree.path(), &[]);
    let (report, code, stderr) = deep(tree.path(), store.path(), &[]);
    assert_eq!(code, 1, "{stderr}");
    let shallow = by_path(&shallow);
    let entries = by_path(&report);
    for i in &interps {
        let d = dir_of(i);
        let edited = cache_of(i, &d, "edited", 0);
        assert_eq!(
            state_of(entry(&shallow, &edited)).0,
            "fresh",
            "{}: the header alone is fooled",
            i.version
        );
        let e = entry(&entries, &edited);
        assert_eq!(
            state_of(e),
            ("hidden-stale", "error", "deep"),
            "{}: {e}",
            i.version
        );
        assert!(
            reason(e).contains("constant 'old' became 'new' at module level"),
            "{}: {}",
            i.version,
            reason(e)
        );
        let kept = entry(&entries, &cache_of(i, &d, "kept", 0));
        assert_eq!(
            state_of(kept),
            ("fresh", "ok", "deep"),
            "{}: {kept}",
            i.version
        );
        // The interpreter really does run the old code.
        assert_eq!(
            i.import_value(&tree.join(&d), "edited").as_deref(),
            Ok("old"),
            "{}",
            i.version
        );
    }
}

#[test]
fn same_second_edit_is_hidden_stale() {
    let interps = provers();
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    for i in &interps {
        let d = dir_of(i);
        source(
            &tree,
            &format!("{d}/m.py"),
            b"def get_timeout():\n    return 60\n",
            t,
            100_000_000,
        );
        i.compile(
            &tree.join(&d),
            &["m.py"],
            if i.major == 2 { "legacy" } else { "timestamp" },
            0,
        );
        let pyc = tree.join(&cache_of(i, &d, "m", 0)[2..]);
        // The cache was written at .3 s, the source edited again at .7 s of the same second.
        set_mtime(&pyc, t, 300_000_000);
        source(
            &tree,
            &format!("{d}/m.py"),
            b"def get_timeout():\n    return 99\n",
            t,
            700_000_000,
        );
    }
    let (report, code, _) = deep(tree.path(), store.path(), &[]);
    assert_eq!(code, 1);
    let entries = by_path(&report);
    for i in &interps {
        let e = entry(&entries, &cache_of(i, &dir_of(i), "m", 0));
        assert_eq!(
            state_of(e),
            ("hidden-stale", "error", "deep"),
            "{}: {e}",
            i.version
        );
        assert!(
            reason(e).contains("constant 60 became 99 in function get_timeout"),
            "{}: {}",
            i.version,
            reason(e)
        );
    }
}

#[test]
fn comment_whitespace_and_nan_are_fresh_syntax_error_is_hidden_stale() {
    let interps = provers();
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    // The header must still match: the edit keeps the size (padded with a comment).
    let comment_old = format!(
        "def f(a):\n    return a + 1\n\nX = f(2)\n#{}\n",
        "-".repeat(60)
    );
    let mut comment_new = "# a comment that shifts every line\n\n\ndef f(a):\n    # explain\n    return a  +  1\n\n\nX = f(2)  # t\n#".to_owned();
    comment_new.push_str(&"+".repeat(comment_old.len() - comment_new.len() - 1));
    comment_new.push('\n');
    assert_eq!(comment_old.len(), comment_new.len());
    let (comment_old, comment_new) = (comment_old.as_bytes(), comment_new.as_bytes());
    let nan =
        b"NAN = 1e999 * 0\nPAIR = (-(1e999 * 0), 1e999 - 1e999)\ndef g():\n    return 1e999 * 0\n";
    for i in &interps {
        let d = dir_of(i);
        source(&tree, &format!("{d}/comment.py"), comment_old, t, 0);
        source(&tree, &format!("{d}/nan.py"), nan, t, 0);
        source(
            &tree,
            &format!("{d}/broken.py"),
            b"X = 1\nY = 2\nZ = 3\n",
            t,
            0,
        );
        i.compile(
            &tree.join(&d),
            &["comment.py", "nan.py", "broken.py"],
            if i.major == 2 { "legacy" } else { "timestamp" },
            0,
        );
        replace_keeping_mtime(&tree.join(format!("{d}/comment.py")), comment_new);
        // Same size, no longer compiles (an unclosed bracket on line 2).
        replace_keeping_mtime(
            &tree.join(format!("{d}/broken.py")),
            b"X = 1\nY = (\nZ = 3\n",
        );
    }
    let (report, _, _) = deep(tree.path(), store.path(), &[]);
    let entries = by_path(&report);
    for i in &interps {
        let d = dir_of(i);
        let c = entry(&entries, &cache_of(i, &d, "comment", 0));
        assert_eq!(
            state_of(c),
            ("fresh", "ok", "deep"),
            "{} comment/whitespace edit: {c}",
            i.version
        );
        let n = entry(&entries, &cache_of(i, &d, "nan", 0));
        assert_eq!(
            state_of(n),
            ("fresh", "ok", "deep"),
            "{} NaN constants: {n}",
            i.version
        );
        let b = entry(&entries, &cache_of(i, &d, "broken", 0));
        assert_eq!(
            state_of(b),
            ("hidden-stale", "error", "deep"),
            "{} syntax error: {b}",
            i.version
        );
        assert!(
            reason(b).contains("will run the old code; the source does not compile: broken.py:"),
            "{}: {}",
            i.version,
            reason(b)
        );
    }
}

#[test]
fn optimisation_levels_one_and_two() {
    let interps: Vec<Interp> = provers().into_iter().filter(|i| i.major >= 3).collect();
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    let old = b"def f():\n    \"\"\"Old words.\"\"\"\n    assert f\n    return 1\n";
    let new = b"def f():\n    \"\"\"New words.\"\"\"\n    assert f\n    return 1\n";
    let asserts = b"def f(x):\n    assert x > 0, 'x'\n    return x\n";
    let asserts_new = b"def f(x):\n    assert x > 9, 'x'\n    return x\n";
    for i in &interps {
        let d = dir_of(i);
        source(&tree, &format!("{d}/doc.py"), old, t, 0);
        source(&tree, &format!("{d}/asrt.py"), asserts, t, 0);
        for opt in [1, 2] {
            i.compile(&tree.join(&d), &["doc.py", "asrt.py"], "timestamp", opt);
        }
        replace_keeping_mtime(&tree.join(format!("{d}/doc.py")), new);
        replace_keeping_mtime(&tree.join(format!("{d}/asrt.py")), asserts_new);
    }
    let (report, _, _) = deep(tree.path(), store.path(), &[]);
    let entries = by_path(&report);
    for i in &interps {
        let d = dir_of(i);
        // -OO drops docstrings: a docstring-only edit compiles to the same code.
        let doc2 = entry(&entries, &cache_of(i, &d, "doc", 2));
        assert_eq!(
            state_of(doc2),
            ("fresh", "ok", "deep"),
            "{} .opt-2: {doc2}",
            i.version
        );
        // -O keeps docstrings: the same edit is a difference.
        let doc1 = entry(&entries, &cache_of(i, &d, "doc", 1));
        assert_eq!(
            state_of(doc1).0,
            "hidden-stale",
            "{} .opt-1: {doc1}",
            i.version
        );
        assert!(reason(doc1).contains("Old words."), "{}", reason(doc1));
        // Both drop asserts: an edit inside an assert is invisible at levels 1 and 2.
        for opt in [1, 2] {
            let a = entry(&entries, &cache_of(i, &d, "asrt", opt));
            assert_eq!(
                state_of(a),
                ("fresh", "ok", "deep"),
                "{} .opt-{opt}: {a}",
                i.version
            );
        }
    }
}

#[test]
fn pytest_caches_are_judged_by_header_only() {
    let Some(i) = provers().into_iter().find(|i| i.at_least(3, 7)) else {
        return;
    };
    let tree = Tree::new();
    let store = Tree::new();
    source(
        &tree,
        "pkg/test_m.py",
        b"def test_x():\n    assert 1\n",
        base(),
        0,
    );
    i.compile(&tree.join("pkg"), &["test_m.py"], "timestamp", 0);
    let tag = i.tag().unwrap();
    let plain = tree.join(format!("pkg/__pycache__/test_m.{tag}.pyc"));
    let pytest = tree.join(format!("pkg/__pycache__/test_m.{tag}-pytest-8.3.4.pyc"));
    fs::rename(&plain, &pytest).unwrap();
    let (report, _, stderr) = deep(tree.path(), store.path(), &[]);
    let e = &report["caches"][0];
    assert_eq!(state_of(e), ("fresh", "ok", "header"), "{e}");
    assert!(
        reason(e).contains("pytest") && reason(e).contains("judged by header only"),
        "{e}"
    );
    assert!(stderr.contains("1 cache could not be proven"), "{stderr}");
}

/// A killed worker: the run completes, the other files are proven, the file that kills
/// its worker every time is reported after one retry; a file that kills it only once is
/// proven on the retry.
#[test]
fn a_killed_worker_is_restarted_and_the_run_completes() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    let names = ["a", "b", "crash", "once", "c", "d"];
    for n in names {
        let body = match n {
            "crash" => "X = 'PYCGUARD-TEST-CRASH'\n".to_owned(),
            "once" => "X = 'PYCGUARD-TEST-CRASH-ONCE'\n".to_owned(),
            _ => format!("X = {n:?}\n"),
        };
        source(&tree, &format!("pkg/{n}.py"), body.as_bytes(), t, 0);
    }
    let files: Vec<String> = names.iter().map(|n| format!("{n}.py")).collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    i.compile(&tree.join("pkg"), &files, "timestamp", 0);
    let flag = store.join("crashed-once");
    let out = pycguard()
        .current_dir(tree.path())
        .env("PYCGUARD_TEST_WORKER_FAULT", "1")
        .env("PYCGUARD_TEST_WORKER_FLAG", &flag)
        .args([
            "check", "--deep", "--format", "json", "--jobs", "2", "--python",
        ])
        .arg(&i.path)
        .arg("--cache-dir")
        .arg(store.path())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let entries = by_path(&report);
    for n in ["a", "b", "c", "d", "once"] {
        let e = entry(&entries, &cache_of(&i, "pkg", n, 0));
        assert_eq!(state_of(e), ("fresh", "ok", "deep"), "{n}: {e}");
    }
    assert!(flag.exists(), "the worker really crashed once");
    let e = entry(&entries, &cache_of(&i, "pkg", "crash", 0));
    assert_eq!(state_of(e), ("fresh", "ok", "header"), "{e}");
    assert!(reason(e).contains("died on this file twice"), "{e}");
    assert!(stderr.contains("1 cache could not be proven"), "{stderr}");
    assert!(stderr.contains("1 failed"), "{stderr}");
}

/// A hung worker is stopped after --timeout, its file retried once and reported.
#[test]
fn a_hung_worker_times_out() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = Tree::new();
    let store = Tree::new();
    source(
        &tree,
        "pkg/hang.py",
        b"X = 'PYCGUARD-TEST-HANG'\n",
        base(),
        0,
    );
    source(&tree, "pkg/ok.py", b"X = 1\n", base(), 0);
    i.compile(&tree.join("pkg"), &["hang.py", "ok.py"], "timestamp", 0);
    let started = Instant::now();
    let out = pycguard()
        .current_dir(tree.path())
        .env("PYCGUARD_TEST_WORKER_FAULT", "1")
        .args([
            "check",
            "--deep",
            "--format",
            "json",
            "--timeout",
            "1",
            "--python",
        ])
        .arg(&i.path)
        .arg("--cache-dir")
        .arg(store.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = by_path(&report);
    let e = entry(&entries, &cache_of(&i, "pkg", "hang", 0));
    assert_eq!(state_of(e).2, "header", "{e}");
    assert!(reason(e).contains("no answer within 1 s, twice"), "{e}");
    let ok = entry(&entries, &cache_of(&i, "pkg", "ok", 0));
    assert_eq!(state_of(ok), ("fresh", "ok", "deep"));
    assert!(took < Duration::from_secs(20), "took {took:?}");
}

/// Ctrl-C stops the run with exit 130 and leaves no worker behind.
#[test]
fn ctrl_c_stops_cleanly() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = Tree::new();
    let store = Tree::new();
    source(
        &tree,
        "pkg/hang.py",
        b"X = 'PYCGUARD-TEST-HANG'\n",
        base(),
        0,
    );
    i.compile(&tree.join("pkg"), &["hang.py"], "timestamp", 0);
    let marker = format!("ctrl-c-{}", std::process::id());
    let mut child = pycguard()
        .current_dir(tree.path())
        .env("PYCGUARD_TEST_WORKER_FAULT", "1")
        .env("PYCGUARD_TEST_MARKER", &marker)
        .args(["check", "--deep", "--timeout", "60", "--python"])
        .arg(&i.path)
        .arg("--cache-dir")
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a worker runs (it carries the marker in its environment).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !processes_with(&marker)
        .iter()
        .any(|pid| cmdline(*pid).contains("pycguard deep worker"))
    {
        assert!(Instant::now() < deadline, "no worker started");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        processes_with(&marker).is_empty(),
        "workers left behind: {:?}",
        processes_with(&marker)
    );
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .into_owned()
}

/// Pids of live processes whose environment holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let needle = format!("PYCGUARD_TEST_MARKER={marker}");
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = fs::read(e.path().join("environ")) else {
            continue;
        };
        let zombie = fs::read_to_string(e.path().join("stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if !zombie && env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

/// A tree built for the store tests: `n` modules compiled by one interpreter.
fn module_tree(i: &Interp, n: usize) -> Tree {
    let tree = Tree::new();
    let t = base();
    let mut files = Vec::new();
    for k in 0..n {
        let name = format!("m{k}.py");
        source(
            &tree,
            &format!("pkg/{name}"),
            format!("VALUE = {k}\n").as_bytes(),
            t,
            0,
        );
        files.push(name);
    }
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    i.compile(&tree.join("pkg"), &files, "timestamp", 0);
    tree
}

fn human_deep(dir: &Path, store: &Path) -> String {
    let out = pycguard()
        .current_dir(dir)
        .args(["check", "--deep", "--cache-dir"])
        .arg(store)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The second run proves from the store; an edit re-proves only the edited file.
#[test]
fn the_store_makes_a_second_run_incremental() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 6);
    let store = Tree::new();
    assert!(human_deep(tree.path(), store.path())
        .contains("6 caches proven against their source (6 compiled now, 0 remembered"));
    assert!(store.join(pycguard::store::proofs::FILE_NAME).is_file());
    assert!(human_deep(tree.path(), store.path()).contains("(0 compiled now, 6 remembered"));
    replace_keeping_mtime(&tree.join("pkg/m3.py"), b"VALUE = 9\n");
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(1 compiled now, 5 remembered"), "{text}");
    assert!(
        text.contains("m3.") && text.contains("constant 3 became 9"),
        "{text}"
    );
    // The remembered difference is served again, still as hidden-stale.
    let (report, code, _) = deep(tree.path(), store.path(), &[]);
    assert_eq!(code, 1);
    let e = entry(&by_path(&report), &cache_of(&i, "pkg", "m3", 0)).clone();
    assert_eq!(state_of(&e), ("hidden-stale", "error", "deep"));
}

/// A damaged store (flipped bytes, truncation, garbage, an older format) is never
/// believed: verdicts stay right, and the store is rebuilt.
#[test]
fn a_damaged_store_is_ignored_and_rebuilt() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 4);
    let store = Tree::new();
    replace_keeping_mtime(&tree.join("pkg/m1.py"), b"VALUE = 7\n");
    let expect = |report: &Value| {
        let entries = by_path(report);
        for k in 0..4 {
            let e = entry(&entries, &cache_of(&i, "pkg", &format!("m{k}"), 0));
            let want = if k == 1 { "hidden-stale" } else { "fresh" };
            assert_eq!(state_of(e).0, want, "m{k}: {e}");
            assert_eq!(state_of(e).2, "deep", "m{k}: {e}");
        }
    };
    let (report, _, _) = deep(tree.path(), store.path(), &[]);
    expect(&report);
    let file = store.join(pycguard::store::proofs::FILE_NAME);
    let good = fs::read(&file).unwrap();
    let mut damages: Vec<Vec<u8>> = Vec::new();
    for at in [20usize, 40, 60, good.len() / 2, good.len() - 3] {
        let mut d = good.clone();
        d[at] ^= 0x5a;
        damages.push(d);
    }
    damages.push(good[..good.len() - 7].to_vec());
    damages.push(b"not a store at all".to_vec());
    let mut older = good.clone();
    older[8] = 0;
    damages.push(older);
    for damaged in damages {
        fs::write(&file, &damaged).unwrap();
        let (report, _, _) = deep(tree.path(), store.path(), &[]);
        expect(&report);
    }
    // After the last run the store is whole again and serves every proof.
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(0 compiled now, 4 remembered"), "{text}");
}

/// Two runs at once on the same store: both right, and the store stays usable.
#[test]
fn two_concurrent_runs_share_the_store() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 12);
    let store = Tree::new();
    replace_keeping_mtime(&tree.join("pkg/m5.py"), b"VALUE = 0\n");
    let spawn = || {
        pycguard()
            .current_dir(tree.path())
            .args(["check", "--deep", "--format", "json", "--cache-dir"])
            .arg(store.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["summary"]["hidden-stale"], 1, "{report}");
        assert_eq!(report["summary"]["fresh"], 11, "{report}");
    }
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(0 compiled now, 12 remembered"), "{text}");
}

/// `check --deep` only reads: every file keeps its bytes and its mtime, and no cache or
/// `__pycache__` appears (the workers run with -B and never import).
#[test]
fn the_tree_is_identical_after_deep() {
    let interps = provers();
    let tree = Tree::new();
    let store = Tree::new();
    let t = base();
    for i in &interps {
        let d = dir_of(i);
        source(&tree, &format!("{d}/m.py"), OLD, t, 0);
        source(&tree, &format!("{d}/never_compiled.py"), b"X = 1\n", t, 0);
        i.compile(
            &tree.join(&d),
            &["m.py"],
            if i.major == 2 { "legacy" } else { "timestamp" },
            0,
        );
        replace_keeping_mtime(&tree.join(format!("{d}/m.py")), NEW_SAME_SIZE);
    }
    let before = snapshot(tree.path());
    let (_, code, _) = deep(tree.path(), store.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(snapshot(tree.path()), before);
}

/// A cache whose interpreter is absent keeps its header verdict, and the summary names
/// the interpreter that would prove it; `pycguard interpreters` lists what was found.
#[test]
fn missing_interpreters_are_named_and_listed() {
    let interps = provers();
    let (Some(first), Some(second)) = (
        interps.iter().find(|i| i.major >= 3),
        interps.iter().rev().find(|i| i.major >= 3),
    ) else {
        return;
    };
    if first.minor == second.minor {
        return;
    }
    let tree = Tree::new();
    let store = Tree::new();
    let empty_home = Tree::new();
    for i in [first, second] {
        let d = dir_of(i);
        source(&tree, &format!("{d}/m.py"), b"X = 1\n", base(), 0);
        i.compile(&tree.join(&d), &["m.py"], "timestamp", 0);
    }
    // Nothing to find on its own: only --python SECOND.
    let run = |args: &[&str]| {
        pycguard()
            .current_dir(tree.path())
            .env("HOME", empty_home.path())
            .env("PATH", "/nonexistent")
            .env_remove("PYENV_ROOT")
            .env_remove("UV_PYTHON_INSTALL_DIR")
            .env_remove("XDG_DATA_HOME")
            .args(args)
            .arg("--python")
            .arg(&second.path)
            .arg("--cache-dir")
            .arg(store.path())
            .output()
            .unwrap()
    };
    let out = run(&["check", "--deep"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let who = format!("Python {}.{}", first.major, first.minor);
    assert!(
        text.contains(&format!("1 cache could not be proven and is judged by header only: 1 needs {who}, which was not found")),
        "{text}"
    );
    let out = run(&["interpreters"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&second.version) && text.contains("--python"),
        "{text}"
    );
    assert!(text.contains(&format!("1 cache need {who}")), "{text}");
    // A --python that is not an interpreter is a usage error.
    let out = pycguard()
        .current_dir(tree.path())
        .args(["check", "--deep", "--python", "/nonexistent/python"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--python /nonexistent/python"));
}

/// Non-UTF-8 and newline file names cross the worker protocol as bytes.
#[test]
fn odd_file_names_are_proven() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = Tree::new();
    let store = Tree::new();
    let pkg = tree.join("pkg");
    fs::create_dir_all(&pkg).unwrap();
    let names: [&[u8]; 2] = [b"caf\xe9", b"new\nline"];
    for n in names {
        let mut file = n.to_vec();
        file.extend_from_slice(b".py");
        let path = pkg.join(OsStr::from_bytes(&file));
        fs::write(&path, b"X = 1\n").unwrap();
        set_mtime(&path, base(), 0);
    }
    // Compile through the interpreter with byte paths.
    i.run(
        &pkg,
        "import os, py_compile\nfor f in os.listdir(b'.'):\n    py_compile.compile(os.fsdecode(f), doraise=True)\n",
        &[],
    );
    for n in names {
        let mut file = n.to_vec();
        file.extend_from_slice(b".py");
        replace_keeping_mtime(&pkg.join(OsStr::from_bytes(&file)), b"X = 2\n");
    }
    // serde_json rejects the lone surrogates pycguard writes for non-UTF-8 bytes (as
    // Python does), so read the summary as text.
    let out = pycguard()
        .current_dir(tree.path())
        .args(["check", "--deep", "--format", "json", "--cache-dir"])
        .arg(store.path())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "\"caches\": 2, \"fresh\": 0, \"stale\": 0, \"suspect\": 0, \"hidden-stale\": 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(r"caf\udce9.py") && text.contains(r"new\nline.py"),
        "{text}"
    );
    assert_eq!(text.matches("\"checked\": \"deep\"").count(), 2, "{text}");
}

/// The store remembers cache files by identity (so an unchanged tree does not read them
/// again), but a cache rewritten in place — same size, mtime restored — is read again
/// (its ctime changed) and judged by its new content.
#[test]
fn a_cache_rewritten_in_place_is_not_served_from_the_store() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 4);
    let store = Tree::new();
    // Files changed within 2 s of a run are never remembered by identity: wait that out.
    std::thread::sleep(Duration::from_millis(2100));
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(4 compiled now, 0 remembered"), "{text}");
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(0 compiled now, 4 remembered"), "{text}");
    // Put m3's code into m2's cache, keeping m2's header, size and mtime.
    let m2 = tree.join(&cache_of(&i, "pkg", "m2", 0)[2..]);
    let m3 = tree.join(&cache_of(&i, "pkg", "m3", 0)[2..]);
    let (secs, nanos) = common::mtime(&m2);
    let mut bytes = fs::read(&m2).unwrap();
    let other = fs::read(&m3).unwrap();
    assert_eq!(bytes.len(), other.len());
    bytes[16..].copy_from_slice(&other[16..]);
    fs::write(&m2, &bytes).unwrap();
    set_mtime(&m2, secs as u64, nanos as u32);
    let (report, code, _) = deep(tree.path(), store.path(), &[]);
    assert_eq!(code, 1);
    let e = entry(&by_path(&report), &cache_of(&i, "pkg", "m2", 0)).clone();
    assert_eq!(state_of(&e), ("hidden-stale", "error", "deep"), "{e}");
    assert!(reason(&e).contains("constant 3 became 2"), "{e}");
}

/// The pool's compile operation (used by `fix` and `compile`) builds caches each real
/// interpreter accepts as they are: a cache compiled from other source bytes than the
/// file's, under the file's mtime and size (or unchecked-hash), is what the interpreter then
/// runs; a checked-hash cache carries the hash importlib computes; a source that does not
/// compile is a SyntaxError with its line.
#[test]
fn the_pool_compiles_caches_the_interpreter_imports() {
    use pycguard::interpreters::{Discovery, Interpreters, Origin};
    use pycguard::worker::pool::{Invalidation, Job, JobOutcome, Pool};
    for i in provers() {
        let found = Interpreters::discover(&Discovery {
            pythons: vec![i.path.clone()],
            roots: vec![],
            cache_dir: None,
            ..Discovery::default()
        });
        let interp = found
            .all()
            .iter()
            .find(|x| x.origin == Origin::Flag)
            .unwrap_or_else(|| panic!("{} not found by discovery", i.version))
            .clone();
        let tree = Tree::new();
        let on_disk = b"VALUE = 'src'\n";
        let other = b"VALUE = 'pyc'\n";
        let hash = i.at_least(3, 7);
        let modules: &[&str] = if hash { &["t", "u", "c"] } else { &["t"] };
        // One instant for the sources and the header (base() moves with the clock).
        let t0 = base();
        for m in modules {
            source(&tree, &format!("pkg/{m}.py"), on_disk, t0, 0);
        }
        let compile = |source: &[u8], invalidation| Job::Compile {
            source: source.to_vec(),
            filename: "pkg/x.py".into(),
            optimize: 0,
            invalidation,
        };
        let mut jobs = vec![compile(
            other,
            Invalidation::Timestamp {
                mtime: t0 as u32,
                size: on_disk.len() as u32,
            },
        )];
        if hash {
            jobs.push(compile(other, Invalidation::UncheckedHash));
            jobs.push(compile(on_disk, Invalidation::CheckedHash));
        }
        jobs.push(compile(b"X = 1\nY = (\n", Invalidation::CheckedHash));
        let n = jobs.len();
        let mut pool = Pool::start(&interp, 2, Duration::from_secs(30)).unwrap();
        let mut outcomes = vec![None; n];
        pool.run(jobs, |k, outcome| outcomes[k] = Some(outcome))
            .unwrap();
        drop(pool);
        for (k, m) in modules.iter().enumerate() {
            let pyc = match outcomes[k].clone() {
                Some(JobOutcome::Compiled { pyc }) => pyc,
                other => panic!("{}: job {k}: {other:?}", i.version),
            };
            let path = tree.join(&cache_of(&i, "pkg", m, 0)[2..]);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, pyc).unwrap();
        }
        for m in ["t", "u"].iter().filter(|m| modules.contains(m)) {
            assert_eq!(
                i.import_value(&tree.join("pkg"), m).as_deref(),
                Ok("pyc"),
                "{} {m}: the interpreter did not run the cache as written",
                i.version
            );
        }
        if hash {
            let (report, _, _) = deep(tree.path(), &tree.join("store"), &[]);
            let c = entry(&by_path(&report), &cache_of(&i, "pkg", "c", 0)).clone();
            assert_eq!(state_of(&c), ("fresh", "ok", "deep"), "{}: {c}", i.version);
            assert_eq!(c["invalidation"], "checked-hash", "{}: {c}", i.version);
        }
        assert!(
            matches!(
                &outcomes[n - 1],
                Some(JobOutcome::SyntaxError { line: Some(2), .. })
            ),
            "{}: {:?}",
            i.version,
            outcomes[n - 1]
        );
    }
}

/// A virtualenv inside the checked path is found (and preferred for the caches under it).
#[test]
fn a_virtualenv_in_the_checked_path_is_found() {
    let Some(i) = provers().into_iter().rev().find(|i| i.at_least(3, 6)) else {
        return;
    };
    let tree = Tree::new();
    i.run(
        tree.path(),
        "import sys, venv\nvenv.create(sys.argv[1], with_pip=False, symlinks=True)",
        &[std::ffi::OsStr::new(".venv")],
    );
    let out = pycguard()
        .current_dir(tree.path())
        .args(["interpreters", "--no-cache", "."])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(".venv/bin/python"))
        .unwrap_or_else(|| panic!("venv not listed:\n{text}"));
    assert!(line.contains(&i.version) && line.contains("venv"), "{line}");
}

/// How many records an identity table of the store holds (decoded slot by slot).
fn table_records(store: &Path, name: &str) -> usize {
    use pycguard::store::table::{decode_slot, HEADER_LEN, SLOT_LEN};
    let Ok(bytes) = fs::read(store.join(name)) else {
        return 0;
    };
    bytes[HEADER_LEN as usize..]
        .chunks_exact(SLOT_LEN as usize)
        .filter(|s| decode_slot(s).is_some())
        .count()
}

fn proven_records(store: &Path) -> usize {
    table_records(store, pycguard::store::proven::FILE_NAME)
}

/// Like git's index: once proven (and past the racy window), an unchanged pair is
/// recalled by identity — for every interpreter — and each change of a file's bytes
/// proves again; a change of identity alone (chmod, a rewrite with the same bytes) is
/// proven again by content, without compiling.
#[test]
fn unchanged_files_are_recalled_by_identity_and_every_change_proves_again() {
    let interps = provers();
    let trees: Vec<(Interp, Tree, Tree)> = interps
        .into_iter()
        .map(|i| {
            let tree = module_tree(&i, 4);
            (i, tree, Tree::new())
        })
        .collect();
    // Files changed within 2 s of a run are never remembered by identity: wait that out.
    std::thread::sleep(Duration::from_millis(2100));
    for (i, tree, store) in &trees {
        let who = &i.version;
        let text = human_deep(tree.path(), store.path());
        assert!(
            text.contains("(4 compiled now, 0 remembered"),
            "{who}: {text}"
        );
        assert_eq!(proven_records(store.path()), 4, "{who}");
        let text = human_deep(tree.path(), store.path());
        assert!(
            text.contains("(0 compiled now, 4 remembered"),
            "{who}: {text}"
        );
        // A same-size edit with the mtime restored: the header still matches, the
        // identity does not (the ctime moved), so m1 is compiled again — and found out.
        replace_keeping_mtime(&tree.join("pkg/m1.py"), b"VALUE = 7\n");
        let (report, code, _) = deep(tree.path(), store.path(), &[]);
        assert_eq!(code, 1, "{who}");
        let entries = by_path(&report);
        for k in 0..4 {
            let e = entry(&entries, &cache_of(i, "pkg", &format!("m{k}"), 0));
            let want = if k == 1 { "hidden-stale" } else { "fresh" };
            assert_eq!(state_of(e).0, want, "{who} m{k}: {e}");
        }
        let text = human_deep(tree.path(), store.path());
        assert!(
            text.contains("(0 compiled now, 4 remembered"),
            "{who}: {text}"
        );
        // Only the identity changes (chmod moves the ctime, a rewrite with the same bytes
        // the inode's times): proven again by content, nothing compiled, still fresh.
        let m2 = tree.join("pkg/m2.py");
        let mode = fs::metadata(&m2).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&m2, fs::Permissions::from_mode(mode.mode() ^ 0o040)).unwrap();
        let m3 = tree.join(&cache_of(i, "pkg", "m3", 0)[2..]);
        replace_keeping_mtime(&m3, &fs::read(&m3).unwrap());
        let (report, _, _) = deep(tree.path(), store.path(), &[]);
        let entries = by_path(&report);
        for k in [0, 2, 3] {
            let e = entry(&entries, &cache_of(i, "pkg", &format!("m{k}"), 0));
            assert_eq!(state_of(e), ("fresh", "ok", "deep"), "{who} m{k}: {e}");
        }
        let text = human_deep(tree.path(), store.path());
        assert!(
            text.contains("(0 compiled now, 4 remembered"),
            "{who}: {text}"
        );
    }
}

/// A pair proven while either file was racily clean (changed within 2 s of the run's
/// start) is remembered by content only, never by identity; once the window has
/// passed, the next run remembers it by identity too.
#[test]
fn racily_clean_files_are_not_remembered_by_identity() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 3);
    let store = Tree::new();
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(3 compiled now, 0 remembered"), "{text}");
    assert_eq!(
        proven_records(store.path()),
        0,
        "the sources were just written"
    );
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(0 compiled now, 3 remembered"), "{text}");
    std::thread::sleep(Duration::from_millis(2100));
    human_deep(tree.path(), store.path());
    assert_eq!(proven_records(store.path()), 3);
}

/// Proofs belong to the compiler build, not to one tree or one virtualenv: a copy of the
/// tree (new inodes, same bytes) is proven by content without compiling, and a
/// virtualenv's interpreter shares the proofs of the interpreter it was made from; a
/// rebuilt interpreter (its binary replaced) proves everything again.
#[test]
fn proofs_are_shared_by_copies_and_virtualenvs_and_not_by_another_build() {
    // One whose series no other interpreter here has (two builds of one series, such
    // as a system 3.11 beside pyenv's, are rightly told apart).
    let all = provers();
    let unique = |i: &&Interp| {
        all.iter()
            .filter(|o| (o.major, o.minor) == (i.major, i.minor))
            .count()
            == 1
    };
    let Some(i) = all
        .iter()
        .rev()
        .find(|i| i.at_least(3, 6) && unique(i))
        .cloned()
    else {
        return;
    };
    let tree = module_tree(&i, 3);
    let store = Tree::new();
    let text = human_deep(tree.path(), store.path());
    assert!(text.contains("(3 compiled now, 0 remembered"), "{text}");
    // A copy, mtimes kept (cp -a): new identities, same bytes.
    let copy = Tree::new();
    fs::create_dir_all(copy.join("pkg/__pycache__")).unwrap();
    for rel in walk_files(&tree.join("pkg")) {
        let from = tree.join("pkg").join(&rel);
        let to = copy.join("pkg").join(&rel);
        fs::copy(&from, &to).unwrap();
        let (secs, nanos) = common::mtime(&from);
        set_mtime(&to, secs as u64, nanos as u32);
    }
    let text = human_deep(copy.path(), store.path());
    assert!(text.contains("(0 compiled now, 3 remembered"), "{text}");
    // The same tree inside a virtualenv made from the interpreter (symlinked binary):
    // its interpreter is chosen, and shares the proofs.
    let venvs = Tree::new();
    let venv = venvs.join("v");
    let make_venv = |dir: &Path, symlinks: bool| {
        i.run(
            venvs.path(),
            "import sys, venv\nvenv.create(sys.argv[1], with_pip=False, symlinks=sys.argv[2] == '1')",
            &[dir.as_os_str(), std::ffi::OsStr::new(if symlinks { "1" } else { "0" })],
        );
    };
    make_venv(&venv, true);
    let inside = |venv: &Path| {
        let pkg = venv.join("pkg");
        fs::create_dir_all(pkg.join("__pycache__")).unwrap();
        for rel in walk_files(&tree.join("pkg")) {
            let from = tree.join("pkg").join(&rel);
            fs::copy(&from, pkg.join(&rel)).unwrap();
            let (secs, nanos) = common::mtime(&from);
            set_mtime(&pkg.join(&rel), secs as u64, nanos as u32);
        }
    };
    inside(&venv);
    let text = human_deep(&venv, store.path());
    assert!(text.contains("(0 compiled now, 3 remembered"), "{text}");
    // A virtualenv with a copied binary: another file, so another build as far as
    // pycguard can tell — everything is proven again (and the proofs are right).
    let copied = venvs.join("c");
    make_venv(&copied, false);
    inside(&copied);
    let text = human_deep(&copied, store.path());
    assert!(text.contains("(3 compiled now, 0 remembered"), "{text}");
    let text = human_deep(&copied, store.path());
    assert!(text.contains("(0 compiled now, 3 remembered"), "{text}");
    // Rebuilt in place: each copied binary replaced by a new file with the same bytes.
    let bins: Vec<_> = fs::read_dir(copied.join("bin"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            fs::symlink_metadata(p).unwrap().file_type().is_file()
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("python")
        })
        .collect();
    assert!(!bins.is_empty(), "a copied python binary");
    for bin in bins {
        let bytes = fs::read(&bin).unwrap();
        let mode = fs::metadata(&bin).unwrap().permissions();
        fs::remove_file(&bin).unwrap();
        fs::write(&bin, &bytes).unwrap();
        fs::set_permissions(&bin, mode).unwrap();
    }
    let text = human_deep(&copied, store.path());
    assert!(text.contains("(3 compiled now, 0 remembered"), "{text}");
}

/// Files under `dir`, relative to it.
fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let rel = std::path::PathBuf::from(e.file_name());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()).into_iter().map(|r| rel.join(r)));
        } else {
            out.push(rel);
        }
    }
    out
}

/// Identical caches of identical sources in one tree (a copied package, hard links, the
/// same virtualenv twice) are compiled once: the others get the same proof.
#[test]
fn twins_in_one_tree_are_compiled_once() {
    let Some(i) = provers().into_iter().rev().find(|i| i.major >= 3) else {
        return;
    };
    let tree = module_tree(&i, 3);
    replace_keeping_mtime(&tree.join("pkg/m1.py"), b"VALUE = 8\n");
    for copy in ["pkg2", "pkg3"] {
        fs::create_dir_all(tree.join(copy).join("__pycache__")).unwrap();
        for rel in walk_files(&tree.join("pkg")) {
            let from = tree.join("pkg").join(&rel);
            let to = tree.join(copy).join(&rel);
            fs::copy(&from, &to).unwrap();
            let (secs, nanos) = common::mtime(&from);
            set_mtime(&to, secs as u64, nanos as u32);
        }
    }
    let store = Tree::new();
    let text = human_deep(tree.path(), store.path());
    assert!(
        text.contains("9 caches proven against their source (3 compiled now, 6 remembered"),
        "{text}"
    );
    // The twins of the edited module are found out like it.
    let (report, _, _) = deep(tree.path(), store.path(), &[]);
    let entries = by_path(&report);
    for dir in ["pkg", "pkg2", "pkg3"] {
        for k in 0..3 {
            let e = entry(&entries, &cache_of(&i, dir, &format!("m{k}"), 0));
            let want = if k == 1 { "hidden-stale" } else { "fresh" };
            assert_eq!(state_of(e).0, want, "{dir}/m{k}: {e}");
        }
    }
}
