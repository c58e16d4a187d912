//! The command line as a user meets it: exit codes, the JSON contract (snapshots), human
//! output, read-only guarantee, symlinks, excludes, unreadable entries, broken pipes.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{check_json, pycguard, set_mtime, Interp, Tree};

const T: u64 = 1_700_000_000;

/// Any interpreter of series 3.11 (the one every machine of this project has).
fn python311() -> Option<Interp> {
    let found = common::interpreters()
        .into_iter()
        .find(|i| i.major == 3 && i.minor == 11);
    if found.is_none() {
        eprintln!("SKIP: no Python 3.11 for snapshot fixtures");
    }
    found
}

/// A small tree with one cache in most states, at fixed mtimes, compiled by `interp`.
fn fixture(interp: &Interp) -> Tree {
    let tree = Tree::new();
    for (rel, content) in [
        ("app/__init__.py", &b""[..]),
        ("app/fresh.py", b"VALUE = 'old'\n"),
        ("app/stale.py", b"VALUE = 'old'\n"),
        ("app/hidden.py", b"VALUE = 'old'\n"),
        ("app/gone.py", b"VALUE = 'old'\n"),
        ("app/ghost.py", b"VALUE = 'old'\n"),
    ] {
        let p = tree.write(rel, content);
        set_mtime(&p, T, 0);
    }
    interp.compile(
        tree.path(),
        &[
            "app/__init__.py",
            "app/fresh.py",
            "app/stale.py",
            "app/gone.py",
        ],
        "timestamp",
        0,
    );
    interp.compile(tree.path(), &["app/hidden.py"], "unchecked_hash", 0);
    interp.compile(tree.path(), &["app/ghost.py"], "legacy", 0);
    let p = tree.write("app/stale.py", b"VALUE = 'newer'\n");
    set_mtime(&p, T + 3600, 0);
    let p = tree.write("app/hidden.py", b"VALUE = 'new'\n");
    set_mtime(&p, T, 0);
    fs::remove_file(tree.join("app/gone.py")).unwrap();
    fs::remove_file(tree.join("app/ghost.py")).unwrap();
    tree.write("app/__pycache__/notes.txt", b"not a cache\n");
    tree
}

fn stdout_of(tree: &Tree, args: &[&str]) -> (String, i32) {
    let out = pycguard()
        .current_dir(tree.path())
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let text = regex_lite_replace_elapsed(&text);
    (text, out.status.code().unwrap())
}

/// Replace the elapsed time in the summary line, which varies run to run.
fn regex_lite_replace_elapsed(text: &str) -> String {
    text.lines()
        .map(|line| match line.find(" checked in ") {
            Some(at) => {
                let rest = &line[at + 12..];
                let end = rest.find('s').map_or(0, |e| e + 1);
                format!("{} checked in [elapsed]{}", &line[..at], &rest[end..])
            }
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn json_contract_snapshot() {
    let Some(interp) = python311() else { return };
    let tree = fixture(&interp);
    let (json, code) = stdout_of(&tree, &["check", "--format", "json"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!("json_contract", json);
    // Every cache object carries exactly the contract's keys.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["schema"], 1);
    let keys = [
        "path",
        "source",
        "state",
        "severity",
        "reason",
        "interpreter",
        "tag",
        "invalidation",
        "optimization",
        "checked",
        "future_source_mtime",
    ];
    for c in value["caches"].as_array().unwrap() {
        let obj = c.as_object().unwrap();
        assert_eq!(obj.len(), keys.len(), "{c}");
        for k in keys {
            assert!(obj.contains_key(k), "{k} missing in {c}");
        }
    }
    let summary = value["summary"].as_object().unwrap();
    let total: u64 = summary
        .iter()
        .filter(|(k, _)| *k != "caches")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum();
    assert_eq!(summary["caches"].as_u64().unwrap(), total);
}

#[test]
fn human_output_snapshot() {
    let Some(interp) = python311() else { return };
    let tree = fixture(&interp);
    let (text, code) = stdout_of(&tree, &["check"]);
    assert_eq!(code, 1);
    insta::assert_snapshot!("human_output", text);
    // -q: the problems of the full output, and nothing after them.
    let (quiet, _) = stdout_of(&tree, &["check", "-q"]);
    assert!(!quiet.is_empty() && text.starts_with(&quiet), "{quiet}");
    assert!(
        !quiet.contains("checked in"),
        "-q printed the summary: {quiet}"
    );
}

#[test]
fn exit_codes() {
    let tree = Tree::new();
    // Nothing found: 0.
    let out = pycguard()
        .current_dir(tree.path())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 caches checked"));
    // Unreadable root: 2, with a one-line message.
    let out = pycguard()
        .current_dir(tree.path())
        .args(["check", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "pycguard: error: cannot read nope: no such file or directory\n"
    );
    // Bad usage: 2.
    for args in [
        &["check", "--format", "xml"][..],
        &["check", "--exclude", "a[b"],
        &["check", "--jobs", "0"],
        &["frobnicate"],
        &["check", "--strict", "--exit-zero"],
    ] {
        let out = pycguard()
            .current_dir(tree.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    // Warnings only (an orphan): 0; with --strict: 1.
    tree.write("__pycache__/gone.cpython-312.pyc", b"whatever");
    let (_, code) = check_json(tree.path(), &[]);
    assert_eq!(code, 0);
    let (_, code) = check_json(tree.path(), &["--strict"]);
    assert_eq!(code, 1);
    // An error (a ghost): 1; with --exit-zero: 0.
    tree.write("src.py", b"");
    tree.write("ghost.pyc", b"\x03\xf3\r\n\0\0\0\0c");
    let (_, code) = check_json(tree.path(), &[]);
    assert_eq!(code, 1);
    let (_, code) = check_json(tree.path(), &["--exit-zero"]);
    assert_eq!(code, 0);
}

#[test]
fn check_leaves_the_tree_bit_for_bit() {
    let Some(interp) = common::interpreters_from(3, 7).into_iter().next() else {
        return;
    };
    let tree = fixture(&interp);
    let before = common::snapshot(tree.path());
    for args in [
        &["check"][..],
        &["check", "--format", "json"],
        &["check", "-q", "--strict"],
    ] {
        pycguard()
            .current_dir(tree.path())
            .args(args)
            .output()
            .unwrap();
    }
    let inspect_target = tree.join(format!(
        "app/__pycache__/fresh.{}.pyc",
        interp.tag().unwrap()
    ));
    pycguard()
        .arg("inspect")
        .arg(&inspect_target)
        .output()
        .unwrap();
    assert_eq!(before, common::snapshot(tree.path()));
}

#[test]
fn symlinks_are_never_followed() {
    let tree = Tree::new();
    let outside = Tree::new();
    outside.write("__pycache__/out.cpython-312.pyc", b"junk");
    tree.write("pkg/m.py", b"");
    tree.write("pkg/__pycache__/x.cpython-312.pyc", b"junk");
    std::os::unix::fs::symlink("..", tree.join("pkg/loop")).unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.join("pkg/outside")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("__pycache__/out.cpython-312.pyc"),
        tree.join("pkg/__pycache__/m.cpython-312.pyc"),
    )
    .unwrap();
    let (report, _) = check_json(tree.path(), &[]);
    let entries = common::by_path(&report);
    let paths: Vec<_> = entries.keys().cloned().collect();
    // Symlinked directories are not walked; a symlinked cache file is reported, judged by
    // its target as the importer reads it (see tests/hostile.rs).
    assert_eq!(
        paths,
        vec![
            "./pkg/__pycache__/m.cpython-312.pyc".to_owned(),
            "./pkg/__pycache__/x.cpython-312.pyc".to_owned()
        ]
    );
    // Garbage magic under a known tag: Python 3.12 rejects it and recompiles (stale).
    assert_eq!(
        entries["./pkg/__pycache__/m.cpython-312.pyc"]["state"],
        "stale"
    );
}

#[test]
fn vcs_directories_and_excludes_are_skipped() {
    let tree = Tree::new();
    for rel in [
        ".git/objects/__pycache__/a.cpython-312.pyc",
        ".hg/__pycache__/a.cpython-312.pyc",
        "build/__pycache__/a.cpython-312.pyc",
        "src/__pycache__/a.cpython-312.pyc",
        "src/vendored/__pycache__/b.cpython-312.pyc",
        "src/__pycache__/c.cpython-39.pyc",
    ] {
        tree.write(rel, b"junk");
    }
    let (report, _) = check_json(
        tree.path(),
        &[
            "--exclude",
            "build",
            "--exclude",
            "src/vendored",
            "--exclude",
            "*-39.pyc",
        ],
    );
    let paths: Vec<_> = common::by_path(&report).into_keys().collect();
    assert_eq!(
        paths,
        vec!["./src/__pycache__/a.cpython-312.pyc".to_owned()]
    );
}

#[test]
fn several_paths_and_a_single_file() {
    let tree = Tree::new();
    tree.write("a/__pycache__/x.cpython-312.pyc", b"junk");
    tree.write("b/__pycache__/y.cpython-312.pyc", b"junk");
    let (report, _) = check_json(tree.path(), &["a", "b/__pycache__/y.cpython-312.pyc"]);
    let paths: Vec<_> = common::by_path(&report).into_keys().collect();
    assert_eq!(
        paths,
        vec![
            "a/__pycache__/x.cpython-312.pyc",
            "b/__pycache__/y.cpython-312.pyc"
        ]
    );
    let abs = tree.join("a");
    let (report, _) = check_json(tree.path(), &[abs.to_str().unwrap()]);
    let path = report["caches"][0]["path"].as_str().unwrap().to_owned();
    assert!(
        path.starts_with('/'),
        "absolute PATH gives absolute paths: {path}"
    );
}

/// Run as an unprivileged user so that permissions apply (the suite may run as root).
fn as_nobody(args: &[&str], dir: &std::path::Path) -> Option<std::process::Output> {
    let root = common::effective_uid() == 0;
    let mut cmd = if root {
        if !common::capability("setpriv") {
            eprintln!("SKIP: running as root without setpriv; cannot test unreadable files");
            return None;
        }
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_pycguard"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_pycguard"))
    };
    cmd.env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .args(args);
    Some(cmd.output().unwrap())
}

#[test]
fn unreadable_entries_are_reported_and_the_scan_goes_on() {
    let tree = Tree::new();
    fs::set_permissions(tree.path(), fs::Permissions::from_mode(0o755)).unwrap();
    tree.write("pkg/a.py", b"");
    tree.write("pkg/__pycache__/a.cpython-312.pyc", b"junk");
    let locked = tree.write("pkg/__pycache__/b.cpython-312.pyc", b"junk");
    tree.write("pkg/b.py", b"");
    let locked_dir = tree.join("pkg/private");
    tree.write("pkg/private/__pycache__/c.cpython-312.pyc", b"junk");
    for d in [
        tree.join("pkg"),
        tree.join("pkg/__pycache__"),
        tree.join("pkg/private/__pycache__"),
    ] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in [
        tree.join("pkg/a.py"),
        tree.join("pkg/b.py"),
        tree.join("pkg/__pycache__/a.cpython-312.pyc"),
    ] {
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(&locked_dir, fs::Permissions::from_mode(0o000)).unwrap();
    let Some(out) = as_nobody(&["check", "--format", "json"], tree.path()) else {
        return;
    };
    fs::set_permissions(&locked_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["summary"]["caches"], 1, "{report}");
    let errors = report["errors"].as_array().unwrap();
    let messages: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e["path"].as_str().unwrap(),
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        messages,
        vec![
            "./pkg/__pycache__/b.cpython-312.pyc: cannot read cache: permission denied".to_owned(),
            "./pkg/private: permission denied".to_owned(),
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("b.cpython-312.pyc: cannot read cache: permission denied"),
        "{stderr}"
    );
}

#[test]
fn broken_pipe_exits_quietly() {
    let tree = Tree::new();
    for i in 0..3000 {
        tree.write(format!("p/__pycache__/m{i}.cpython-312.pyc"), b"junk");
    }
    let mut child = pycguard()
        .current_dir(tree.path())
        .args(["check", "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn hostile_files_get_a_verdict_each_and_no_panic() {
    let tree = Tree::new();
    tree.write("m.py", b"");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..300 {
        let len = (next() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if i % 3 == 0 && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&[0xcb, 0x0d, 0x0d, 0x0a]);
            if bytes.len() >= 8 {
                bytes[4..8].fill(0);
            }
        }
        tree.write(
            format!("__pycache__/m.cpython-312.opt-{}.pyc", i % 250),
            &bytes,
        );
        tree.write(format!("x{i}.pyc"), &bytes);
    }
    let (report, code) = check_json(tree.path(), &[]);
    assert!(code == 0 || code == 1, "{code}");
    assert!(report["errors"].as_array().unwrap().is_empty());
    assert_eq!(report["summary"]["caches"], 550);
}

#[test]
fn help_and_version() {
    let out = pycguard().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("check") && help.contains("inspect"), "{help}");
    let out = pycguard().args(["check", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("hidden-stale") && help.contains("Exit status"),
        "{help}"
    );
    let out = pycguard().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pycguard "));
}

/// The scan memo may only save work: after it has learned a tree, a cache damaged in place
/// (same size, mtime restored) is still found, because its ctime changed.
#[test]
fn the_scan_memo_never_hides_a_change() {
    let Some(interp) = common::interpreters_from(3, 7).into_iter().last() else {
        return;
    };
    let tree = Tree::new();
    let cache_dir = Tree::new();
    let p = tree.write("pkg/m.py", b"VALUE = 'old'\n");
    set_mtime(&p, T, 0);
    interp.compile(tree.path(), &["pkg/m.py"], "timestamp", 0);
    let pyc = tree.join(format!("pkg/__pycache__/m.{}.pyc", interp.tag().unwrap()));
    let check = || {
        let out = pycguard()
            .current_dir(tree.path())
            .env("PYCGUARD_CACHE_DIR", cache_dir.path())
            .args(["check", "--format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["caches"][0]["state"].as_str().unwrap().to_owned(),
            v["caches"][0]["severity"].as_str().unwrap().to_owned(),
        )
    };
    // Files changed within 2 s of a run are never remembered: wait that out once.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(check(), ("fresh".into(), "ok".into()));
    let table =
        fs::read(cache_dir.join(pycguard::store::scan_memo::FILE_NAME)).expect("memo written");
    assert!(table[4096..].iter().any(|&b| b != 0), "memo holds a record");
    assert_eq!(
        check(),
        ("fresh".into(), "ok".into()),
        "served from the memo"
    );
    // Damage the body in place, keep size and mtime.
    let (secs, nanos) = common::mtime(&pyc);
    let mut bytes = fs::read(&pyc).unwrap();
    let n = bytes.len();
    bytes[n - 40..].fill(b'?');
    fs::write(&pyc, &bytes).unwrap();
    set_mtime(&pyc, secs as u64, nanos as u32);
    assert_eq!(check(), ("corrupt".into(), "error".into()));
    // And --no-cache never writes a memo.
    let fresh_dir = Tree::new();
    pycguard()
        .current_dir(tree.path())
        .env("PYCGUARD_CACHE_DIR", fresh_dir.path())
        .args(["check", "--no-cache"])
        .output()
        .unwrap();
    assert!(fs::read_dir(fresh_dir.path()).unwrap().next().is_none());
}
