//! Deploys that keep mtimes. `tar -x`, `rsync -t`, `cp -p` and `touch -r` (what a restore or
//! a careful release script does) put a new same-size source in place with the old mtime:
//! the header still matches, the interpreter runs the OLD cache, and only the source's
//! ctime shows that its inode changed after the cache was written. With every real
//! interpreter:
//!
//! - the service imports its module (writing the cache), a release replaces the source
//!   with `TIMEOUT = 30` (was 60, same size, same mtime) more than pycguard's 2 s tolerance
//!   later; the interpreter is asked and still returns 60; `check` (its scan memo warm from
//!   a check before the deploy) says `suspect`, naming the ctime; `check --deep` proves it
//!   `hidden-stale` ("constant 60 became 30");
//! - copying an untouched tree with `cp -a`, `rsync -a` or `tar -c | tar -x` leaves every
//!   cache `fresh` (and the interpreter runs the copied caches): a copy is not a deploy.
//!
//! A cache that was itself copied with its mtime kept (its ctime is that of the copy, not of
//! its writing) is not judged by ctime: a copy of a whole tree puts sources and caches
//! down in an order no tolerance bounds. A release into such a tree is left to the header
//! and to `check --deep`.
//!
//! `rsync -t` is run with `--checksum`: its quick check would skip a file whose size and
//! mtime match, which is why such a release needs it. Without `rsync` on the machine its
//! cases print `SKIP:`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use common::tools::{have_program, output_with_timeout, report};
use common::{by_path, check_json, set_mtime, Interp, Tree};

const OLD: &str = "TIMEOUT = 60\n";
const NEW: &str = "TIMEOUT = 30\n";

/// How a release puts the new source in place, keeping the old mtime.
#[derive(Clone, Copy, Debug)]
enum Deploy {
    TarExtract,
    CopyPreserve,
    RsyncTimes,
    TouchReference,
}

impl Deploy {
    const ALL: [Deploy; 4] = [
        Deploy::TarExtract,
        Deploy::CopyPreserve,
        Deploy::RsyncTimes,
        Deploy::TouchReference,
    ];

    fn name(self) -> &'static str {
        match self {
            Deploy::TarExtract => "tar-x",
            Deploy::CopyPreserve => "cp-p",
            Deploy::RsyncTimes => "rsync-t",
            Deploy::TouchReference => "touch-r",
        }
    }

    fn available(self) -> bool {
        match self {
            Deploy::RsyncTimes => have_program("rsync"),
            _ => true,
        }
    }

    /// Replace `app/settings.py` with `NEW`, keeping its mtime, as this tool does.
    fn run(self, app: &Path, work: &Path) {
        let live = app.join("settings.py");
        fs::create_dir_all(work).unwrap();
        // The release's file: new content, the mtime of the live one (a build that kept
        // mtimes, or a revert to a file with the same timestamp).
        let staged = work.join("settings.py");
        fs::write(&staged, NEW).unwrap();
        sh(Command::new("touch").arg("-r").arg(&live).arg(&staged));
        match self {
            Deploy::TarExtract => {
                let tarball = work.join("release.tar");
                sh(Command::new("tar")
                    .arg("-C")
                    .arg(work)
                    .arg("-cf")
                    .arg(&tarball)
                    .arg("settings.py"));
                sh(Command::new("tar")
                    .arg("-C")
                    .arg(app)
                    .arg("-xf")
                    .arg(&tarball));
            }
            Deploy::CopyPreserve => sh(Command::new("cp").arg("-p").arg(&staged).arg(&live)),
            Deploy::RsyncTimes => sh(Command::new("rsync")
                .args(["-t", "--checksum"])
                .arg(&staged)
                .arg(&live)),
            Deploy::TouchReference => {
                let reference = work.join("reference");
                fs::write(&reference, "").unwrap();
                sh(Command::new("touch").arg("-r").arg(&live).arg(&reference));
                fs::write(&live, NEW).unwrap();
                sh(Command::new("touch").arg("-r").arg(&reference).arg(&live));
            }
        }
        assert_eq!(
            fs::read_to_string(&live).unwrap(),
            NEW,
            "{self:?} deployed nothing"
        );
    }
}

fn sh(cmd: &mut Command) {
    let out = output_with_timeout(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The service starts: the interpreter imports `settings` and writes its cache.
fn service_start(interp: &Interp, app: &Path) {
    fs::create_dir_all(app).unwrap();
    let p = app.join("settings.py");
    fs::write(&p, OLD).unwrap();
    set_mtime(&p, 1_700_000_000, 400_000_000);
    let out = interp.try_run(app, "import settings", &[], &[]);
    assert!(
        out.status.success(),
        "{}: {}",
        interp.version,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cache_rel(interp: &Interp, stem: &str) -> String {
    match interp.tag() {
        Some(tag) => format!("__pycache__/{stem}.{tag}.pyc"),
        None => format!("{stem}.pyc"),
    }
}

/// What the interpreter runs for `settings` in `app` now (nothing written): the value, and
/// whether it ran the cache (from its `-v` trace).
fn ask(interp: &Interp, app: &Path) -> (String, bool) {
    let mut cmd = interp.command(app);
    cmd.args([
        "-v",
        "-B",
        "-c",
        "import sys\nimport settings\nsys.stdout.write(str(settings.TIMEOUT))",
    ]);
    let out = output_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", interp.version);
    let cache = app.join(cache_rel(interp, "settings"));
    let ran_cache = stderr.lines().any(|l| {
        l.strip_prefix("# code object from ")
            .is_some_and(|p| Path::new(p.trim().trim_matches('\'')) == cache)
            || l.starts_with("import settings # precompiled from ")
    });
    (String::from_utf8_lossy(&out.stdout).into_owned(), ran_cache)
}

fn entry(entries: &BTreeMap<String, Value>, key: &str) -> Value {
    entries
        .get(key)
        .unwrap_or_else(|| {
            panic!(
                "{key} not reported: {:?}",
                entries.keys().collect::<Vec<_>>()
            )
        })
        .clone()
}

/// Every deploy, on one interpreter, in one tree (one `check` and one `check --deep`).
fn deploys_on(interp: &Interp, deploys: &[Deploy]) -> String {
    let tree = Tree::new();
    let apps: Vec<(Deploy, PathBuf)> = deploys
        .iter()
        .map(|d| (*d, tree.join(d.name()).join("app")))
        .collect();
    for (_, app) in &apps {
        service_start(interp, app);
    }
    // Before the release every cache is fresh (and pycguard's scan memo now knows them).
    let (report, _) = check_json(tree.path(), &[]);
    assert_eq!(
        report["summary"]["fresh"], report["summary"]["caches"],
        "{}: {report}",
        interp.version
    );
    // The release comes later than the tolerance for tree-wide tools (2 s).
    std::thread::sleep(Duration::from_millis(2_100));
    for (d, app) in &apps {
        d.run(app, &tree.join(d.name()).join("release"));
    }
    let (shallow, _) = check_json(tree.path(), &[]);
    let (deep, _) = check_json(tree.path(), &["--deep"]);
    let (shallow, deep) = (by_path(&shallow), by_path(&deep));
    let mut text = String::new();
    for (d, app) in &apps {
        let label = format!("{} on Python {}", d.name(), interp.version);
        let (value, ran_cache) = ask(interp, app);
        assert_eq!(
            (value.as_str(), ran_cache),
            ("60", true),
            "{label}: the interpreter runs the old cache"
        );
        let key = format!("./{}/app/{}", d.name(), cache_rel(interp, "settings"));
        let e = entry(&shallow, &key);
        let reason = e["reason"].as_str().unwrap_or("");
        assert_eq!(
            (e["state"].as_str(), e["severity"].as_str()),
            (Some("suspect"), Some("warning")),
            "{label}: {e}"
        );
        assert!(
            reason.contains("(its ctime)") && reason.contains("runs the cached code"),
            "{label}: {reason}"
        );
        if interp.major == 2 {
            assert!(!reason.contains("and size"), "{label}: {reason}");
        }
        let e = entry(&deep, &key);
        let reason = e["reason"].as_str().unwrap_or("");
        assert_eq!(e["state"], "hidden-stale", "{label} --deep: {e}");
        assert!(
            reason.contains("constant 60 became 30"),
            "{label}: {reason}"
        );
        text.push_str(&format!(
            "  {label}: interpreter runs TIMEOUT=60; check: suspect; --deep: hidden-stale\n"
        ));
    }
    text
}

#[test]
fn deploys_that_keep_mtimes_are_suspect_then_proven() {
    let deploys: Vec<Deploy> = Deploy::ALL
        .into_iter()
        .filter(|d| {
            let ok = d.available();
            if !ok {
                eprintln!("SKIP: {}: the tool is not installed", d.name());
            }
            ok
        })
        .collect();
    let interps = common::interpreters();
    let text = std::sync::Mutex::new(String::from("deploys that keep mtimes:\n"));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(interp) = interps.get(n) else { break };
                let t = deploys_on(interp, &deploys);
                text.lock().unwrap().push_str(&t);
            });
        }
    });
    report(&text.into_inner().unwrap());
}

/// An untouched tree of several modules, compiled by `interp`.
fn untouched(interp: &Interp, root: &Path) {
    for (rel, text) in [
        ("settings.py", OLD),
        ("pkg/__init__.py", ""),
        ("pkg/a.py", "A = 1\n"),
        ("pkg/b.py", "from pkg import a\nB = a.A + 1\n"),
        ("pkg/sub/__init__.py", ""),
        ("pkg/sub/c.py", "C = 'c' * 3\n"),
    ] {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
    }
    let out = interp.try_run(root, "import settings, pkg.b, pkg.sub.c", &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn copies_of_an_untouched_tree_stay_fresh() {
    let interps = common::interpreters();
    let rsync = have_program("rsync");
    if !rsync {
        eprintln!("SKIP: rsync -a copy: rsync is not installed");
    }
    let text = std::sync::Mutex::new(String::from("copies of an untouched tree:\n"));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(interp) = interps.get(n) else { break };
                let tree = Tree::new();
                let orig = tree.join("orig");
                untouched(interp, &orig);
                // Copies made well after the caches were written, as a backup or a
                // release of the whole tree would be.
                std::thread::sleep(Duration::from_millis(2_100));
                sh(Command::new("cp").arg("-a").arg(&orig).arg(tree.join("cp-a")));
                if rsync {
                    sh(Command::new("rsync")
                        .arg("-a")
                        .arg(format!("{}/", orig.display()))
                        .arg(tree.join("rsync-a")));
                }
                let tarball = tree.join("tree.tar");
                sh(Command::new("tar").arg("-C").arg(&orig).arg("-cf").arg(&tarball).arg("."));
                fs::create_dir(tree.join("tar-x")).unwrap();
                sh(Command::new("tar").arg("-C").arg(tree.join("tar-x")).arg("-xf").arg(&tarball));
                let (report, _) = check_json(tree.path(), &[]);
                let total = report["summary"]["caches"].as_u64().unwrap();
                let copies = if rsync { 4 } else { 3 };
                assert_eq!(total, copies * 6, "{}: {report}", interp.version);
                assert_eq!(
                    report["summary"]["fresh"].as_u64().unwrap(),
                    total,
                    "{}: a copy made a cache look changed: {report}",
                    interp.version
                );
                for copy in ["cp-a", "rsync-a", "tar-x"] {
                    let dir = tree.join(copy);
                    if !dir.exists() {
                        continue;
                    }
                    let (value, ran_cache) = ask(interp, &dir);
                    assert_eq!((value.as_str(), ran_cache), ("60", true), "{copy} on {}", interp.version);
                }
                text.lock().unwrap().push_str(&format!(
                    "  Python {}: cp -a{}, tar -c | tar -x: {total} caches, all fresh; the interpreter runs the copies\n",
                    interp.version,
                    if rsync { ", rsync -a" } else { "" }
                ));
            });
        }
    });
    report(&text.into_inner().unwrap());
}
