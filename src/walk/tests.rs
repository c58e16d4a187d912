use super::*;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;

fn options(engine: Engine, threads: usize, excludes: &[&str]) -> WalkOptions {
    let mut globs = globset::GlobSetBuilder::new();
    for e in excludes {
        globs.add(globset::Glob::new(e).unwrap());
    }
    WalkOptions {
        threads,
        excludes: globs.build().unwrap(),
        pycache_prefix: None,
        report_debris: true,
        report_sources: true,
        include_envs: false,
        engine,
        interrupt: Arc::new(AtomicBool::new(false)),
    }
}

/// Every event of a walk, as sorted "kind path" lines relative to `base`.
fn events(start: &Path, base: &Path, options: &WalkOptions) -> BTreeSet<String> {
    let seen = Mutex::new(BTreeSet::new());
    let root = Root {
        path: start.to_path_buf(),
        absolute_forms: vec![start.to_path_buf()],
    };
    let rel = |p: &Path| p.strip_prefix(base).unwrap_or(p).display().to_string();
    walk_root(&root, options, &|event, _| {
        let line = match event {
            WalkEvent::Cache(c) => format!(
                "cache {} <- {}{}",
                rel(&c.path),
                c.source.as_deref().map(rel).unwrap_or_default(),
                match c.found_as {
                    FoundAs::File => String::new(),
                    other => format!(" {other:?}"),
                }
            ),
            WalkEvent::Source { path, .. } => format!("source {}", rel(&path)),
            WalkEvent::Debris { path, .. } => format!("debris {}", rel(&path)),
            WalkEvent::Error { path, error } => {
                format!("error {} {}", rel(&path), crate::read::io_message(&error))
            }
        };
        seen.lock().unwrap().insert(line);
    });
    seen.into_inner().unwrap()
}

/// A FIFO at `path` (`mkfifo(1)`: rustix has no `mkfifoat` or `mknodat` on macOS).
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {path:?}");
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    for d in [
        "pkg/__pycache__",
        "pkg/sub/__pycache__",
        ".git/objects",
        ".pytest_cache/v",
        "skipme/__pycache__",
    ] {
        fs::create_dir_all(t.join(d)).unwrap();
    }
    for f in [
        "pkg/a.py",
        "pkg/__pycache__/a.cpython-312.pyc",
        "pkg/__pycache__/gone.cpython-312.pyc",
        "pkg/__pycache__/notes.txt",
        "pkg/README",
        "pkg/sub/b.py",
        "pkg/sub/__pycache__/b.cpython-39.opt-1.pyc",
        "pkg/legacy.pyc",
        ".git/objects/x.pyc",
        ".pytest_cache/v/y.pyc",
        "skipme/__pycache__/s.cpython-312.pyc",
    ] {
        fs::write(t.join(f), b"").unwrap();
    }
    symlink("..", t.join("pkg/loop")).unwrap();
    symlink("a.py", t.join("pkg/alias.py")).unwrap();
    symlink("__pycache__/a.cpython-312.pyc", t.join("pkg/link.pyc")).unwrap();
    mkfifo(&t.join("pkg/__pycache__/fifo.cpython-312.pyc"));
    fs::create_dir_all(t.join("pkg/__pycache__/dir.cpython-312.pyc")).unwrap();
    dir
}

fn expected() -> BTreeSet<String> {
    [
        "source pkg/a.py",
        "source pkg/alias.py",
        "source pkg/sub/b.py",
        "cache pkg/__pycache__/a.cpython-312.pyc <- pkg/a.py",
        "cache pkg/__pycache__/gone.cpython-312.pyc <- pkg/gone.py",
        "cache pkg/sub/__pycache__/b.cpython-39.opt-1.pyc <- pkg/sub/b.py",
        "cache pkg/legacy.pyc <- pkg/legacy.py",
        "cache pkg/link.pyc <- pkg/link.py Symlink",
        "cache pkg/__pycache__/fifo.cpython-312.pyc <- pkg/fifo.py Special(Fifo)",
        "cache pkg/__pycache__/dir.cpython-312.pyc <- pkg/dir.py Special(Directory)",
        "debris .pytest_cache",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn finds_sources_caches_and_debris_and_skips_vcs_symlinks_and_excludes(engine: Engine) {
    let dir = tree();
    let t = dir.path();
    let mut want = expected();
    for threads in [1, 2, 8] {
        let got = events(t, t, &options(engine, threads, &["skipme"]));
        assert_eq!(got, want, "threads={threads}");
    }
    want.insert("cache skipme/__pycache__/s.cpython-312.pyc <- skipme/s.py".into());
    assert_eq!(events(t, t, &options(engine, 2, &[])), want);
    // Excludes match names, paths relative to the start, and whole paths.
    let got = events(t, t, &options(engine, 2, &["pkg/sub", "*.txt", "skipme"]));
    assert!(!got.iter().any(|l| l.contains("pkg/sub")), "{got:?}");
}

fn a_file_or_a_symlinked_directory_can_be_the_start(engine: Engine) {
    let dir = tree();
    let t = dir.path();
    let cache = t.join("pkg/__pycache__/a.cpython-312.pyc");
    assert_eq!(
        events(&cache, t, &options(engine, 2, &[])),
        BTreeSet::from(["cache pkg/__pycache__/a.cpython-312.pyc <- pkg/a.py".to_owned()])
    );
    assert_eq!(
        events(&t.join("pkg/alias.py"), t, &options(engine, 2, &[])),
        BTreeSet::from(["source pkg/alias.py".to_owned()])
    );
    // A symlink or a FIFO named like a cache is reported as what it is.
    assert_eq!(
        events(&t.join("pkg/link.pyc"), t, &options(engine, 2, &[])),
        BTreeSet::from(["cache pkg/link.pyc <- pkg/link.py Symlink".to_owned()])
    );
    assert_eq!(
        events(
            &t.join("pkg/__pycache__/fifo.cpython-312.pyc"),
            t,
            &options(engine, 2, &[])
        ),
        BTreeSet::from([
            "cache pkg/__pycache__/fifo.cpython-312.pyc <- pkg/fifo.py Special(Fifo)".to_owned()
        ])
    );
    // A symlinked start directory is followed (the user named it).
    symlink(t.join("pkg/sub"), t.join("sublink")).unwrap();
    assert_eq!(
        events(&t.join("sublink"), t, &options(engine, 2, &[])),
        BTreeSet::from([
            "source sublink/b.py".to_owned(),
            "cache sublink/__pycache__/b.cpython-39.opt-1.pyc <- sublink/b.py".to_owned()
        ])
    );
}

fn stats_through_the_walkers_open_directory_match_plain_stats(engine: Engine) {
    let dir = tree();
    let t = dir.path();
    let checked = Mutex::new(0);
    let root = Root {
        path: t.to_path_buf(),
        absolute_forms: vec![],
    };
    assert!(
        DirContext::NONE
            .stat_near(&t.join("pkg/a.py"), true)
            .is_none(),
        "off the walk"
    );
    walk_root(
        &root,
        &options(engine, 2, &[]),
        &|event, dir: DirContext<'_>| {
            let WalkEvent::Cache(c) = event else { return };
            let near = dir
                .stat_near(&c.path, false)
                .expect("the cache is in the reading dir");
            let plain = fs::symlink_metadata(&c.path).unwrap();
            assert_eq!(near.unwrap(), FileStat::from(&plain), "{:?}", c.path);
            let source = c.source.unwrap();
            let near = dir
                .stat_near(&source, true)
                .expect("the source is beside or in it");
            match fs::metadata(&source) {
                Ok(m) => assert_eq!(near.unwrap(), FileStat::from(&m), "{source:?}"),
                Err(e) => assert_eq!(near.unwrap_err().kind(), e.kind(), "{source:?}"),
            }
            // A symlinked source is followed, an lstat is not.
            let alias = source.with_file_name("alias.py");
            if alias.parent().unwrap().ends_with("pkg") && c.path.ends_with("a.cpython-312.pyc") {
                let followed = dir.stat_near(&alias, true).unwrap().unwrap();
                assert!(followed.is_file);
                assert!(!dir.stat_near(&alias, false).unwrap().unwrap().is_file);
            }
            // Anything farther away takes its whole path.
            let elsewhere = t.join("pkg/sub/b.py");
            if !c.path.starts_with(t.join("pkg/sub")) {
                assert!(dir.stat_near(&elsewhere, true).is_none());
            }
            let plain = FileStat::from(&fs::metadata(&elsewhere).unwrap());
            assert_eq!(dir.stat(&elsewhere, true).unwrap(), plain);
            *checked.lock().unwrap() += 1;
        },
    );
    assert_eq!(*checked.lock().unwrap(), 8);
}

fn a_pycache_prefix_inside_the_tree_is_not_walked_as_part_of_it(engine: Engine) {
    let dir = tree();
    let t = dir.path();
    fs::create_dir_all(t.join("prefix/x/__pycache__")).unwrap();
    fs::write(t.join("prefix/x/__pycache__/z.cpython-312.pyc"), b"").unwrap();
    let mut with_prefix = options(engine, 2, &["skipme"]);
    with_prefix.pycache_prefix = Some(t.join("prefix"));
    assert_eq!(events(t, t, &with_prefix), expected());
    let got = events(t, t, &options(engine, 2, &["skipme"]));
    assert!(got.contains("cache prefix/x/__pycache__/z.cpython-312.pyc <- prefix/x/z.py"));
}

/// The events and the summary of a walk of `start`.
fn walk_with_summary(start: &Path, options: &WalkOptions) -> (BTreeSet<String>, WalkSummary) {
    let seen = Mutex::new(BTreeSet::new());
    let root = Root {
        path: start.to_path_buf(),
        absolute_forms: vec![start.to_path_buf()],
    };
    let rel = |p: &Path| p.strip_prefix(start).unwrap_or(p).display().to_string();
    let summary = walk_root(&root, options, &|event, _| {
        if let WalkEvent::Cache(c) = event {
            let line = format!(
                "{} <- {}",
                rel(&c.path),
                c.source.as_deref().map(rel).unwrap_or_default()
            );
            seen.lock().unwrap().insert(line);
        }
    });
    (seen.into_inner().unwrap(), summary)
}

fn environments_beneath_the_start_are_skipped_and_said(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    for f in [
        "pkg/__pycache__/a.cpython-312.pyc",
        "venv/lib/__pycache__/v.cpython-312.pyc",
        "venv/pyvenv.cfg",
        ".tox/py/__pycache__/t.cpython-312.pyc",
        "web/node_modules/n/__pycache__/n.cpython-312.pyc",
        "deep/er/env/pyvenv.cfg",
        "deep/er/env/__pycache__/e.cpython-312.pyc",
    ] {
        fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
        fs::write(t.join(f), b"").unwrap();
    }
    let mut opts = options(engine, 2, &[]);
    let (caches, summary) = walk_with_summary(t, &opts);
    assert_eq!(
        caches,
        BTreeSet::from(["pkg/__pycache__/a.cpython-312.pyc <- pkg/a.py".to_owned()])
    );
    let skipped: Vec<(String, bool)> = summary
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.strip_prefix(t).unwrap().display().to_string(),
                s.venv,
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (".tox".to_owned(), false),
            ("deep/er/env".to_owned(), true),
            ("venv".to_owned(), true),
            ("web/node_modules".to_owned(), false)
        ]
    );
    assert!(summary
        .skipped_line()
        .unwrap()
        .ends_with("--include-venvs to include them"));
    // A PATH that is an environment is walked; --include-venvs walks them all.
    let (caches, summary) = walk_with_summary(&t.join("venv"), &opts);
    assert_eq!(caches.len(), 1);
    assert!(summary.skipped.is_empty());
    opts.include_envs = true;
    let (caches, summary) = walk_with_summary(t, &opts);
    assert_eq!(caches.len(), 5);
    assert_eq!(summary.skipped_line(), None);
}

#[test]
fn the_skipped_line_names_what_it_skipped() {
    let summary = WalkSummary {
        skipped: vec![Skipped {
            path: PathBuf::from("./.venv"),
            venv: true,
        }],
        found_prefixes: vec![],
    };
    assert_eq!(
        summary.skipped_line().unwrap(),
        "skipped 1 virtual environment (.venv); --include-venvs to include it"
    );
    let many = WalkSummary {
        skipped: (0..5)
            .map(|i| Skipped {
                path: PathBuf::from(format!("e{i}")),
                venv: i != 0,
            })
            .collect(),
        found_prefixes: vec![],
    };
    assert_eq!(
        many.skipped_line().unwrap(),
        "skipped 4 virtual environments (e1, e2, e3, 1 more) and 1 tool environment directory (e0); --include-venvs to include them"
    );
}

fn a_prefix_tree_in_the_walk_is_recognised_by_its_layout(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    let prefix = t.join("instance/tmp");
    let mut mirror = prefix.clone();
    mirror.extend(t.components().skip(1));
    for f in ["src/pkg/m.py", "src/other.py"] {
        fs::create_dir_all(t.join(f).parent().unwrap()).unwrap();
        fs::write(t.join(f), b"").unwrap();
    }
    for f in [
        "src/pkg/m.cpython-312.pyc",
        "src/pkg/m.cpython-312.opt-1.pyc",
        "src/pkg/m.cpython-312.pyc.123456",
        // The only cache of its directory, for a deleted source: decided at the end.
        "src/gone.cpython-312.pyc",
    ] {
        fs::create_dir_all(mirror.join(f).parent().unwrap()).unwrap();
        fs::write(mirror.join(f), b"").unwrap();
    }
    // A misplaced cache beside its source is no prefix.
    fs::write(t.join("src/other.cpython-312.pyc"), b"").unwrap();
    let m = mirror.strip_prefix(t).unwrap().display().to_string();
    for threads in [1, 2, 8] {
        let (caches, summary) = walk_with_summary(t, &options(engine, threads, &[]));
        let want: BTreeSet<String> = [
            format!("{m}/src/pkg/m.cpython-312.pyc <- src/pkg/m.py"),
            format!("{m}/src/pkg/m.cpython-312.opt-1.pyc <- src/pkg/m.py"),
            format!("{m}/src/pkg/m.cpython-312.pyc.123456 <- "),
            format!("{m}/src/gone.cpython-312.pyc <- src/gone.py"),
            "src/other.cpython-312.pyc <- ".to_owned(),
        ]
        .into_iter()
        .collect();
        assert_eq!(caches, want, "threads={threads}");
        assert_eq!(summary.found_prefixes, vec![prefix.clone()]);
    }
    // Walked from inside the prefix tree, and as one file of it.
    let (caches, _) = walk_with_summary(&mirror.join("src"), &options(engine, 2, &[]));
    assert!(
        caches.contains(&format!(
            "pkg/m.cpython-312.pyc <- {}",
            t.join("src/pkg/m.py").display()
        )),
        "{caches:?}"
    );
    let (caches, _) = walk_with_summary(
        &mirror.join("src/pkg/m.cpython-312.pyc"),
        &options(engine, 2, &[]),
    );
    let want = format!(" <- {}", t.join("src/pkg/m.py").display());
    assert_eq!(caches, BTreeSet::from([want]));
}

fn a_missing_start_is_one_error(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let got = events(
        &dir.path().join("nope"),
        dir.path(),
        &options(engine, 2, &[]),
    );
    assert_eq!(
        got,
        BTreeSet::from(["error nope no such file or directory".to_owned()])
    );
}

fn a_panicking_sink_ends_the_walk_instead_of_hanging_it(engine: Engine) {
    let dir = tree();
    let root = Root {
        path: dir.path().to_path_buf(),
        absolute_forms: vec![],
    };
    let outcome = std::panic::catch_unwind(|| {
        walk_root(&root, &options(engine, 2, &[]), &|event, _| {
            if matches!(event, WalkEvent::Cache(_)) {
                panic!("sink failed");
            }
        })
    });
    assert!(outcome.is_err());
}

fn a_directory_larger_than_one_read_buffer_is_read_whole(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("__pycache__");
    fs::create_dir(&cache_dir).unwrap();
    // About 64 bytes per entry: three times the 32 KiB that `getdents.rs` (and glibc's
    // readdir) reads at once.
    let n = 3 * 32 * 1024 / 64;
    for i in 0..n {
        let name = format!("module_with_a_long_name_{i:06}.cpython-312.pyc");
        fs::write(cache_dir.join(name), b"").unwrap();
    }
    let got = events(dir.path(), dir.path(), &options(engine, 2, &[]));
    assert_eq!(got.len(), n);
}

fn a_wide_and_deep_tree_is_walked_completely_by_many_threads(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let mut want = 0;
    for i in 0..40 {
        let mut d = dir.path().join(format!("d{i}"));
        for depth in 0..(i % 7) {
            d = d.join(format!("n{depth}"));
        }
        fs::create_dir_all(d.join("__pycache__")).unwrap();
        for j in 0..5 {
            fs::write(d.join(format!("m{j}.py")), b"").unwrap();
            fs::write(d.join(format!("__pycache__/m{j}.cpython-312.pyc")), b"").unwrap();
            want += 2;
        }
    }
    for threads in [1, 3, 16] {
        let got = events(dir.path(), dir.path(), &options(engine, threads, &[]));
        assert_eq!(got.len(), want, "threads={threads}");
    }
}

fn an_interrupt_ends_the_walk_at_the_next_entry(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    for i in 0..20 {
        fs::create_dir_all(t.join(format!("d{i}/__pycache__"))).unwrap();
        for j in 0..5 {
            fs::write(
                t.join(format!("d{i}/__pycache__/m{j}.cpython-312.pyc")),
                b"",
            )
            .unwrap();
        }
    }
    let root = Root {
        path: t.to_path_buf(),
        absolute_forms: vec![t.to_path_buf()],
    };
    for threads in [1, 4] {
        let opts = options(engine, threads, &[]);
        // Set before the walk: no directory is read.
        opts.interrupt.store(true, Ordering::SeqCst);
        assert_eq!(events(t, t, &opts), BTreeSet::new());
        // Set by the first event: each thread stops at its next entry.
        opts.interrupt.store(false, Ordering::SeqCst);
        let seen = std::sync::atomic::AtomicUsize::new(0);
        walk_root(&root, &opts, &|_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
            opts.interrupt.store(true, Ordering::SeqCst);
        });
        let seen = seen.into_inner();
        assert!(
            (1..=threads).contains(&seen),
            "threads={threads}: {seen} events"
        );
    }
}

fn a_directory_that_became_a_symlink_after_its_listing_is_not_followed(engine: Engine) {
    let dir = tree();
    let t = dir.path();
    // `pkg/sub` was listed as a directory, then swapped for a link out of the tree.
    let outside = tree();
    fs::rename(t.join("pkg/sub"), t.join("pkg/sub.old")).unwrap();
    symlink(outside.path().join("pkg"), t.join("pkg/sub")).unwrap();
    let opts = options(engine, 1, &[]);
    let state = WalkState::default();
    let walk = Walk {
        root: t,
        root_abs: t,
        options: &opts,
        state: &state,
    };
    let job = |path: PathBuf, is_start| DirJob { path, is_start };
    let shared = Shared {
        backlog: Mutex::new(Backlog {
            jobs: vec![job(t.join("pkg/sub"), false)],
            busy: 0,
            idle: 0,
            done: false,
        }),
        wakeup: Condvar::new(),
        start: t,
        root: t,
        options: &opts,
        walk: &walk,
        mode: Mode::Tree,
        skip_dir: None,
    };
    let seen = Mutex::new(Vec::new());
    let mut sink = |event: WalkEvent, _: DirContext<'_>| {
        seen.lock().unwrap().push(match event {
            WalkEvent::Error { path, error } => {
                format!("error {} {:?}", path.display(), error.kind())
            }
            other => format!("{other:?}"),
        })
    };
    match engine {
        #[cfg(all(target_os = "linux", feature = "getdents"))]
        Engine::Getdents => shared.work(crate::walk::getdents::Getdents::new(), &mut sink),
        Engine::Portable => shared.work(crate::walk::portable::Portable, &mut sink),
    }
    // Refused when opened (ENOTDIR on Linux, ELOOP elsewhere): one error, nothing of
    // what the link leads to.
    let seen = seen.into_inner().unwrap();
    let refused = format!("error {}", t.join("pkg/sub").display());
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with(&refused), "{seen:?}");
    assert!(
        seen[0].contains("NotADirectory") || seen[0].contains("FilesystemLoop"),
        "{seen:?}"
    );
    // Named as the start, a symlinked directory is followed (the user named it).
    let got = events(&t.join("pkg/sub"), t, &opts);
    assert!(got.contains("source pkg/sub/a.py"), "{got:?}");
}

#[test]
fn the_engine_setting_names_an_engine_of_this_build() {
    let setting = |value: &str| Engine::from_setting(Some(OsStr::new(value)));
    assert_eq!(Engine::from_setting(None).unwrap(), Engine::default());
    assert_eq!(setting("").unwrap(), Engine::default());
    assert_eq!(setting("portable").unwrap(), Engine::Portable);
    #[cfg(all(target_os = "linux", feature = "getdents"))]
    {
        assert_eq!(Engine::default(), Engine::Getdents);
        assert_eq!(setting("getdents").unwrap(), Engine::Getdents);
        assert_eq!(
            setting("readdir").unwrap_err().to_string(),
            "unknown walk engine \"readdir\" in PYCGUARD_WALK_ENGINE \
             (this build has: getdents, portable)"
        );
    }
    #[cfg(not(all(target_os = "linux", feature = "getdents")))]
    {
        assert_eq!(Engine::default(), Engine::Portable);
        assert_eq!(
            setting("getdents").unwrap_err().to_string(),
            "unknown walk engine \"getdents\" in PYCGUARD_WALK_ENGINE \
             (this build has: portable)"
        );
    }
}

/// Every walk test above, once per engine this build has: `walk::tests::getdents::NAME`
/// and `walk::tests::portable::NAME`.
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        #[cfg(all(target_os = "linux", feature = "getdents"))]
        mod getdents {
            $(#[test]
            fn $name() {
                super::$name(super::Engine::Getdents)
            })*
        }
        mod portable {
            $(#[test]
            fn $name() {
                super::$name(super::Engine::Portable)
            })*
        }
    };
}

on_every_engine!(
    finds_sources_caches_and_debris_and_skips_vcs_symlinks_and_excludes,
    a_file_or_a_symlinked_directory_can_be_the_start,
    stats_through_the_walkers_open_directory_match_plain_stats,
    a_pycache_prefix_inside_the_tree_is_not_walked_as_part_of_it,
    environments_beneath_the_start_are_skipped_and_said,
    a_prefix_tree_in_the_walk_is_recognised_by_its_layout,
    a_missing_start_is_one_error,
    a_panicking_sink_ends_the_walk_instead_of_hanging_it,
    a_directory_larger_than_one_read_buffer_is_read_whole,
    a_wide_and_deep_tree_is_walked_completely_by_many_threads,
    an_interrupt_ends_the_walk_at_the_next_entry,
    a_directory_that_became_a_symlink_after_its_listing_is_not_followed,
);
