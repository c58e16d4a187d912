//! `fix` proves by default: on the README's own demo (a deploy changes `TIMEOUT = 60` to
//! `30`, same size, mtime kept) a plain `pycguard fix` must leave the interpreter running
//! 30. Proofs are remembered, so the next run compiles nothing; `--shallow` judges by
//! header only and says what it skipped; `--deep` is still accepted.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::{pycguard, set_mtime, Interp, Tree};

const T: u64 = 1_700_000_000;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Replace `source` with same-size `content`, keeping its mtime (as `tar -x`, `rsync -t`
/// or `cp -p` of a new release do), then touch the cache's inode so that its ctime is the
/// later one: neither the header nor the ctimes show the edit.
fn deploy_keeping_mtime(source: &Path, content: &[u8], cache: &Path) {
    assert_eq!(fs::metadata(source).unwrap().len(), content.len() as u64);
    let (secs, nanos) = common::mtime(source);
    fs::write(source, content).unwrap();
    set_mtime(source, secs as u64, nanos as u32);
    let mode = fs::metadata(cache).unwrap().permissions();
    fs::set_permissions(cache, mode).unwrap();
}

fn demo(interp: &Interp) {
    let tree = Tree::new();
    let dir = tree.path();
    let cache_dir = tempfile::tempdir().unwrap();
    let python = interp.path.to_str().unwrap();
    let fix = |extra: &[&str]| -> Output {
        pycguard()
            .current_dir(dir)
            .env("PYCGUARD_CACHE_DIR", cache_dir.path())
            .args(["fix", "--python", python])
            .args(extra)
            .output()
            .unwrap()
    };
    let settings = tree.write("app/settings.py", b"TIMEOUT = 60\nVALUE = TIMEOUT\n");
    set_mtime(&settings, T, 0);
    interp.compile(dir, &["app/settings.py"], "timestamp", 0);
    let tag = interp.tag().unwrap();
    let cache = tree.join(format!("app/__pycache__/settings.{tag}.pyc"));
    let app = tree.join("app");
    assert_eq!(interp.import_value(&app, "settings"), Ok("60".into()));
    deploy_keeping_mtime(&settings, b"TIMEOUT = 30\nVALUE = TIMEOUT\n", &cache);
    assert_eq!(
        interp.import_value(&app, "settings"),
        Ok("60".into()),
        "{}: the interpreter runs the old cache",
        interp.version
    );

    // Plain fix proves, finds the hidden-stale cache and repairs it.
    let out = fix(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "recompiled ./app/__pycache__/settings.{tag}.pyc (hidden-stale; with Python {}",
            interp.version
        )),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("repaired 1, deleted 0"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("deep: 1 cache proven against its source (1 compiled now"),
        "{}",
        text(&out)
    );
    assert_eq!(
        interp.import_value(&app, "settings"),
        Ok("30".into()),
        "{}: after fix the new value runs",
        interp.version
    );

    // The next deploy: --shallow does what the interpreter does, and says what it skipped.
    deploy_keeping_mtime(&settings, b"TIMEOUT = 45\nVALUE = TIMEOUT\n", &cache);
    let out = fix(&["--shallow"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("repaired 0, deleted 0")
            && text(&out).contains(
                "--shallow: 1 cache was judged by header only (mtime and size, as the interpreter does)"
            ),
        "{}",
        text(&out)
    );
    assert_eq!(interp.import_value(&app, "settings"), Ok("30".into()));
    let out = fix(&[]);
    assert!(
        text(&out).contains("repaired 1, deleted 0"),
        "{}",
        text(&out)
    );
    assert_eq!(interp.import_value(&app, "settings"), Ok("45".into()));

    // The proof of the repaired cache is made once and remembered: the third run
    // compiles nothing (--deep is accepted and changes nothing).
    let out = fix(&[]);
    assert!(
        text(&out).contains("repaired 0, deleted 0"),
        "{}",
        text(&out)
    );
    let out = fix(&["--deep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("repaired 0, deleted 0")
            && text(&out).contains("(0 compiled now, 1 remembered from earlier runs)"),
        "{}",
        text(&out)
    );
    let out = fix(&["--deep", "--shallow"]);
    assert_eq!(out.status.code(), Some(2), "contradictory: {}", text(&out));
}

#[test]
fn fix_proves_by_default_on_the_readme_demo() {
    let found: Vec<Interp> = common::interpreters_from(3, 7);
    let mut picked: Vec<&Interp> = Vec::new();
    // The oldest and the newest of the series with a size field (3.7+): enough to show it.
    if let Some(first) = found.iter().min_by_key(|i| (i.major, i.minor)) {
        picked.push(first);
    }
    if let Some(last) = found.iter().max_by_key(|i| (i.major, i.minor)) {
        if picked.iter().all(|p| p.version != last.version) {
            picked.push(last);
        }
    }
    if picked.is_empty() {
        eprintln!("SKIP: no Python 3.7+ for the README demo");
    }
    std::thread::scope(|s| {
        for interp in picked {
            s.spawn(move || demo(interp));
        }
    });
}
