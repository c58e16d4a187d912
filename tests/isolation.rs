//! No user code ever runs: every interpreter pycguard starts (probes, deep and compile
//! workers) is isolated from the directory pycguard runs in and from its environment.
//!
//! A "hostile" directory holds modules named like the standard-library modules the probe
//! and the worker import (and the ones Python imports at start-up), `sitecustomize`,
//! `usercustomize`, `site`, package shadows (`importlib/`, `encodings/`, `collections/`)
//! and a `.pth` file; each one, if executed, appends a marker file naming itself and the
//! interpreter that ran it. `check --deep`, `interpreters`, `fix --dry-run --deep`, `fix`,
//! `compile --dry-run` and `compile` then run on a tree with caches of every interpreter
//! on the machine, three times on identical trees: from a clean directory with a clean
//! environment, from the hostile directory, and with the hostile directory (and a hostile
//! user base, start-up file, home, locale…) in pycguard's own environment. Every run uses a
//! fresh pycguard cache directory, so every interpreter is really probed. Then: no marker
//! exists, nothing was written in the hostile directories, and every output is the same
//! as the clean run's (tree paths aside) — for every interpreter.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use common::{pycguard, set_mtime, snapshot, Interp, Tree};

/// Modules a shadow is planted for: what the probe and the worker import, what the
/// interpreters import while starting, and what `site` would run.
const SHADOWS: &[&str] = &[
    "binascii",
    "struct",
    "copyreg",
    "copy_reg",
    "_bootlocale",
    "sitecustomize",
    "usercustomize",
    "site",
    "os",
    "marshal",
    "imp",
    "signal",
    "warnings",
    "codecs",
    "io",
    "abc",
    "types",
    "stat",
    "posixpath",
    "genericpath",
    "_collections_abc",
    "_sitebuiltins",
    "zipimport",
    "linecache",
    "traceback",
    "re",
    "time",
    "locale",
    "functools",
    "keyword",
    "operator",
    "reprlib",
    "heapq",
    "enum",
    "tokenize",
    "token",
    "weakref",
    "_weakrefset",
    "copy",
    "string",
    "opcode",
    "dis",
    "inspect",
    "ast",
    "contextlib",
    "sre_compile",
    "sre_parse",
    "sre_constants",
    "fnmatch",
    "threading",
    "UserDict",
    "_abcoll",
    "__future__",
    "importlib/__init__",
    "importlib/util",
    "importlib/machinery",
    "importlib/_bootstrap_external",
    "encodings/__init__",
    "encodings/utf_8",
    "encodings/aliases",
    "encodings/ascii",
    "collections/__init__",
    "startup",
];

/// The code of a shadow module: record who ran it, using only the built-in `sys` and
/// `posix` (it may run before `open` exists, as `encodings` does at start-up).
fn shadow_code(markers: &Path, name: &str) -> String {
    format!(
        "import sys, posix\nposix.close(posix.open({:?} + '/' + {:?} + '@' + sys.version.split()[0], posix.O_CREAT | posix.O_WRONLY, 420))\n",
        markers.display().to_string(),
        name.replace('/', "."),
    )
}

/// The hostile directory (cwd variant) and a hostile user base with a `.pth`.
struct Hostile {
    dir: Tree,
    userbase: Tree,
    markers: Tree,
}

fn hostile(interps: &[Interp]) -> Hostile {
    let h = Hostile {
        dir: Tree::new(),
        userbase: Tree::new(),
        markers: Tree::new(),
    };
    for name in SHADOWS {
        h.dir.write(
            format!("{name}.py"),
            shadow_code(h.markers.path(), name).as_bytes(),
        );
    }
    let pth = format!(
        "import sys, posix; posix.close(posix.open({:?} + '/pth@' + sys.version.split()[0], posix.O_CREAT | posix.O_WRONLY, 420))\n",
        h.markers.path().display().to_string()
    );
    h.dir.write("evil.pth", pth.as_bytes());
    for i in interps {
        let site = format!("lib/python{}.{}/site-packages", i.major, i.minor);
        h.userbase.write(format!("{site}/evil.pth"), pth.as_bytes());
        h.userbase.write(
            format!("{site}/usercustomize.py"),
            shadow_code(h.markers.path(), "usercustomize").as_bytes(),
        );
    }
    h
}

/// The hostile variables set in pycguard's own environment.
fn hostile_env(h: &Hostile) -> Vec<(&'static str, OsString)> {
    let dir = h.dir.path().as_os_str().to_owned();
    let mut startup = dir.clone();
    startup.push("/startup.py");
    vec![
        ("PYTHONPATH", dir.clone()),
        ("PYTHONHOME", dir.clone()),
        ("PYTHONSTARTUP", startup),
        ("PYTHONUSERBASE", h.userbase.path().as_os_str().to_owned()),
        ("PYTHONPLATLIBDIR", dir.clone()),
        ("PYTHONINSPECT", "1".into()),
        ("PYTHONWARNINGS", "error".into()),
        ("PYTHONIOENCODING", "ascii".into()),
        ("PYTHONOPTIMIZE", "2".into()),
        ("PYTHONCASEOK", "1".into()),
        ("PYTHONHASHSEED", "1".into()),
        ("LC_ALL", "POSIX".into()),
        ("LANG", "C".into()),
        ("LD_LIBRARY_PATH", dir),
    ]
}

/// A tree with, per interpreter, a fresh cache, a same-size edit with the mtime restored
/// (hidden-stale under --deep), a stale cache, a source without cache and (3.x) a
/// non-ASCII module without cache. Identical (but for its path) each time it is built.
fn build_tree(interps: &[Interp], t: u64) -> Tree {
    let tree = Tree::new();
    for i in interps {
        let d = dir_of(i);
        let mut files = vec!["fresh.py", "edited.py", "stale.py"];
        for f in &files {
            let p = tree.write(format!("{d}/{f}"), b"VALUE = 'old'\n");
            set_mtime(&p, t, 0);
        }
        i.compile(&tree.join(&d), &files, "timestamp", 0);
        files.clear();
        if i.major >= 3 {
            // No cache: `compile` writes it, naming the source as the importer would.
            let p = tree.write(format!("{d}/na\u{ef}ve.py"), b"VALUE = 'old'\n");
            set_mtime(&p, t, 0);
        }
        let p = tree.write(format!("{d}/edited.py"), b"VALUE = 'new'\n");
        set_mtime(&p, t, 0);
        let p = tree.write(format!("{d}/stale.py"), b"VALUE = 'newer'\n");
        set_mtime(&p, t + 10, 0);
        let p = tree.write(format!("{d}/missing.py"), b"VALUE = 'no cache'\n");
        set_mtime(&p, t, 0);
    }
    tree
}

fn dir_of(i: &Interp) -> String {
    format!("v{}", i.version.replace('.', "_"))
}

/// One pycguard run: `args` then the tree, from `cwd`, with `env` added and a fresh cache
/// directory. Returns (exit code, stdout + stderr with the tree path replaced by TREE).
fn run(cwd: &Path, env: &[(&str, OsString)], args: &[&str], tree: &Path) -> (i32, String) {
    let cache = Tree::new();
    let mut cmd = pycguard();
    cmd.current_dir(cwd)
        .env("PYCGUARD_CACHE_DIR", cache.path())
        .env_remove("PYTHONDONTWRITEBYTECODE")
        .args(args)
        .arg(tree);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text
        .replace(&tree.display().to_string(), "TREE")
        .lines()
        .filter(|l| !l.contains(" checked in ")) // timings
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    (out.status.code().unwrap_or(-1), text)
}

const COMMANDS: &[&[&str]] = &[
    &["check", "--deep"],
    &["check", "--deep", "--format", "json"],
    &["interpreters"],
    &["fix", "--dry-run", "--deep"],
    &["fix"],
    &["compile", "--dry-run"],
    &["compile"],
    &["check", "--deep", "--format", "json"],
];

/// Run every command in order on `tree`; the outputs by step.
fn run_all(cwd: &Path, env: &[(&str, OsString)], tree: &Path) -> Vec<(String, i32, String)> {
    COMMANDS
        .iter()
        .map(|args| {
            let (code, out) = run(cwd, env, args, tree);
            (args.join(" "), code, out)
        })
        .collect()
}

/// Markers found, by interpreter version.
fn markers(h: &Hostile) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in fs::read_dir(h.markers.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let (module, version) = name.split_once('@').unwrap_or((&name, "?"));
        by.entry(version.to_owned())
            .or_default()
            .push(module.to_owned());
    }
    by
}

/// Whether the `co_filename` in a cache is `source` as an interpreter in a UTF-8 locale
/// names it (`os.fsdecode`): "True" or what it is instead. Read in a clean environment.
fn co_filename_matches(i: &Interp, cache: &Path, source: &Path) -> String {
    let code = "import sys, marshal, os\n\
        d = open(sys.argv[1], 'rb').read()\n\
        c = marshal.loads(d[16 if sys.version_info >= (3, 7) else 12:])\n\
        sys.stdout.write('True' if c.co_filename == os.fsdecode(sys.argv[2]) else ascii(c.co_filename))\n";
    i.run(
        Path::new("/"),
        code,
        &[cache.as_os_str(), source.as_os_str()],
    )
    .trim()
    .to_owned()
}

#[test]
fn no_user_code_runs_from_the_directory_or_the_environment() {
    let interps = common::interpreters();
    if interps.is_empty() {
        eprintln!("SKIP: no interpreter found");
        return;
    }
    let h = hostile(&interps);
    let clean_cwd = Tree::new();
    let before_dir = snapshot(h.dir.path());
    let before_userbase = snapshot(h.userbase.path());
    let t = common::now_secs() - 1000;
    let trees = [
        build_tree(&interps, t),
        build_tree(&interps, t),
        build_tree(&interps, t),
    ];
    let hostile_vars = hostile_env(&h);
    let (clean, (from_dir, from_env)) = std::thread::scope(|s| {
        let clean = s.spawn(|| run_all(clean_cwd.path(), &[], trees[0].path()));
        let from_dir = s.spawn(|| run_all(h.dir.path(), &[], trees[1].path()));
        let from_env = run_all(clean_cwd.path(), &hostile_vars, trees[2].path());
        (clean.join().unwrap(), (from_dir.join().unwrap(), from_env))
    });
    let hit = markers(&h);
    let mut failures = Vec::new();
    for i in &interps {
        let markers = hit.get(&i.version).cloned().unwrap_or_default();
        let listed = clean[2]
            .2
            .lines()
            .any(|l| l.contains(&format!(" {} ", i.version)));
        eprintln!(
            "isolation: Python {} ({}): {} marker(s){}; listed by `interpreters`: {listed}",
            i.version,
            i.path.display(),
            markers.len(),
            if markers.is_empty() {
                String::new()
            } else {
                format!(" ({})", markers.join(", "))
            }
        );
        if !markers.is_empty() {
            failures.push(format!(
                "Python {} executed {}",
                i.version,
                markers.join(", ")
            ));
        }
        if !listed {
            failures.push(format!("Python {} not listed:\n{}", i.version, clean[2].2));
        }
    }
    if let Some(other) = hit
        .keys()
        .find(|v| !interps.iter().any(|i| &i.version == *v))
    {
        failures.push(format!("markers of {other}: {:?}", hit[other]));
    }
    for (variant, runs) in [
        ("from the hostile directory", &from_dir),
        ("with the hostile environment", &from_env),
    ] {
        for ((cmd, code, out), (_, clean_code, clean_out)) in runs.iter().zip(&clean) {
            if code != clean_code || out != clean_out {
                failures.push(format!(
                    "`{cmd}` {variant} differs (exit {code} vs {clean_code}):\n--- clean\n{clean_out}--- {variant}\n{out}"
                ));
            }
        }
    }
    // The clean run did prove and repair something (so the comparisons mean something).
    assert!(clean[0].2.contains("hidden-stale"), "{}", clean[0].2);
    assert!(clean[4].2.contains("recompiled"), "{}", clean[4].2);
    // Nothing was written in the hostile directories (no cache of any shadow module).
    if snapshot(h.dir.path()) != before_dir {
        failures.push("the hostile directory changed (caches written?)".into());
    }
    if snapshot(h.userbase.path()) != before_userbase {
        failures.push("the hostile user base changed".into());
    }
    // Caches compiled with a hostile locale name the source the way a clean run does.
    for i in interps.iter().filter(|i| i.major >= 3) {
        let tag = i.tag().unwrap();
        for tree in [&trees[0], &trees[2]] {
            let source = tree.join(dir_of(i)).join("na\u{ef}ve.py");
            let cache = tree
                .join(dir_of(i))
                .join("__pycache__")
                .join(format!("na\u{ef}ve.{tag}.pyc"));
            let named = co_filename_matches(i, &cache, &source);
            if named != "True" {
                failures.push(format!(
                    "Python {}: the compiled co_filename is {named}, not {}",
                    i.version,
                    source.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The explicit --python error is the same for every command, and nothing is run.
#[test]
fn unusable_python_flags_are_usage_errors_for_every_command() {
    let tree = Tree::new();
    tree.write("pkg/m.py", b"X = 1\n");
    let not_exec = tree.write("notexec", b"#!/bin/sh\n");
    let private = Tree::new();
    let marker = private.join("ran");
    let writable = private.write(
        "python3",
        format!("#!/bin/sh\ntouch {}\n", marker.display()).as_bytes(),
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o777)).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (tree.path().to_path_buf(), "is a directory"),
        (not_exec, "not executable"),
        (tree.join("no-such-python"), "does not exist"),
        (writable.clone(), "writable by everyone"),
    ];
    for (python, why) in &cases {
        for cmd in [
            &["check"][..],
            &["check", "--deep"],
            &["fix"],
            &["fix", "--dry-run"],
            &["compile"],
            &["compile", "--dry-run"],
            &["interpreters"],
        ] {
            let out = pycguard()
                .current_dir(tree.path())
                .args(cmd)
                .arg("--python")
                .arg(python)
                .arg(".")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{cmd:?} {}: {err}",
                python.display()
            );
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(
                err.starts_with("pycguard: error: --python ") && err.contains(why),
                "{cmd:?}: {err}"
            );
        }
    }
    assert!(!marker.exists(), "the writable --python was run");
    assert!(!tree.join("pkg/__pycache__").exists());
}

/// The uid and gid of a service user made for these tests (created once, idempotently).
fn service_user(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        // Another test may create it at the same time: look again whatever this says.
        let _ = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .output();
    }
    Some((id("-u")?, id("-g")?))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for e in fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn as_root() -> bool {
    if common::effective_uid() == 0 {
        return true;
    }
    eprintln!("SKIP: this test runs pycguard as root on a tree another user owns");
    false
}

/// A user-owned tree holding an "interpreter" of its own (`evil/pyvenv.cfg` +
/// `evil/bin/python`, a shell script), one owned by root in a user-owned directory, one in
/// a world-writable directory, and virtualenvs whose `bin/python` links to each real
/// interpreter but whose `pyvenv.cfg` points `home` at a user-owned copy of the standard
/// library: run as root, no command ever runs the scripts or the user's library, the
/// listing says why each script was refused, and the linked interpreters are still used.
#[test]
fn interpreters_planted_in_a_users_tree_are_never_run_as_root() {
    if !as_root() {
        return;
    }
    let Some((uid, gid)) = service_user("pgt-iso") else {
        eprintln!("SKIP: cannot create the user pgt-iso");
        return;
    };
    let interps = common::interpreters();
    let base = Tree::new();
    chmod(base.path(), 0o755);
    let markers = Tree::new();
    let tree = base.join("tree");
    let script = |name: &str| {
        format!(
            "#!/bin/sh\ntouch {}/{name}\necho pwned\n",
            markers.path().display()
        )
    };
    for (dir, marker) in [("evil", "evil"), ("evil2", "evil2"), ("evil3", "evil3")] {
        let bin = tree.join(dir).join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(tree.join(dir).join("pyvenv.cfg"), b"home = /usr/bin\n").unwrap();
        fs::write(bin.join("python"), script(marker)).unwrap();
        chmod(&bin.join("python"), 0o755);
        std::os::unix::fs::symlink("python", bin.join("python3")).unwrap();
    }
    let mut venvs = Vec::new();
    for i in interps.iter().filter(|i| i.major >= 3) {
        let name = format!("venv_{}", i.version.replace('.', "_"));
        let home = tree.join(format!("home_{}", i.version.replace('.', "_")));
        let lib = home.join(format!("lib/python{}.{}", i.major, i.minor));
        for shadow in SHADOWS {
            let p = lib.join(format!("{shadow}.py"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, shadow_code(markers.path(), shadow)).unwrap();
        }
        fs::create_dir_all(home.join("bin")).unwrap();
        let bin = tree.join(&name).join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(
            tree.join(&name).join("pyvenv.cfg"),
            format!("home = {}\n", home.join("bin").display()),
        )
        .unwrap();
        std::os::unix::fs::symlink(fs::canonicalize(&i.path).unwrap(), bin.join("python")).unwrap();
        venvs.push((name, i.clone()));
    }
    // Something to prove, repair and compile with every interpreter.
    let t = common::now_secs() - 1000;
    for i in &interps {
        let d = tree
            .join("pkg")
            .join(format!("v{}", i.version.replace('.', "_")));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("m.py"), b"X = 1\n").unwrap();
        set_mtime(&d.join("m.py"), t, 0);
        i.compile(&d, &["m.py"], "timestamp", 0);
        fs::write(d.join("m.py"), b"X = 22\n").unwrap();
        fs::write(d.join("n.py"), b"Y = 1\n").unwrap();
    }
    chown_tree(&tree, uid, gid);
    // evil2: root's script in the user's directory; evil3: in a world-writable directory.
    std::os::unix::fs::lchown(tree.join("evil2/bin/python"), Some(0), Some(0)).unwrap();
    chown_tree(&tree.join("evil3"), 0, 0);
    chmod(&tree.join("evil3/bin"), 0o777);
    for args in [
        &["interpreters"][..],
        &["check", "--deep"],
        &["fix", "--deep"],
        &["compile"],
    ] {
        let cache = Tree::new();
        let out = pycguard()
            .current_dir(&tree)
            .env("PYCGUARD_CACHE_DIR", cache.path())
            .args(args)
            .arg(".")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ran: Vec<_> = fs::read_dir(markers.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(ran.is_empty(), "`{}` ran {ran:?}:\n{text}", args.join(" "));
        assert!(!text.contains("pwned"), "{text}");
        if args == ["interpreters"] {
            for (dir, why) in [
                ("evil", format!("owned by uid {uid}")),
                (
                    "evil2",
                    format!("{} is owned by uid {uid}", tree.join("evil2/bin").display()),
                ),
                (
                    "evil3",
                    format!(
                        "{} is writable by everyone",
                        tree.join("evil3/bin").display()
                    ),
                ),
            ] {
                let line = text
                    .lines()
                    .find(|l| l.contains(&format!("{}/bin/python ", tree.join(dir).display())))
                    .unwrap_or_else(|| panic!("{dir} not listed as refused:\n{text}"));
                assert!(
                    line.starts_with("ignored")
                        && line.contains("not run: ")
                        && line.contains(&why),
                    "{line}"
                );
            }
            for (name, i) in &venvs {
                let line = text
                    .lines()
                    .find(|l| l.contains(&format!("{name}/bin/python ")))
                    .unwrap_or_else(|| panic!("{name} not listed:\n{text}"));
                assert!(line.contains(&i.version) && line.contains("venv"), "{line}");
            }
        }
        if args == ["fix", "--deep"] {
            assert!(out.status.success(), "{text}");
            assert!(
                text.contains(&format!("repaired {}", interps.len())),
                "{text}"
            );
        }
    }
}

/// Set a POSIX ACL (`system.posix_acl_access`) giving `uid` `perm` (4 = r, 5 = r-x) on a
/// file whose owner keeps `owner_perm` and everyone else nothing.
fn grant_acl(path: &Path, uid: u32, owner_perm: u16, perm: u16) {
    let mut acl = 2u32.to_le_bytes().to_vec();
    let mut entry = |tag: u16, perm: u16, id: u32| {
        acl.extend_from_slice(&tag.to_le_bytes());
        acl.extend_from_slice(&perm.to_le_bytes());
        acl.extend_from_slice(&id.to_le_bytes());
    };
    const UNDEFINED: u32 = u32::MAX;
    entry(0x01, owner_perm, UNDEFINED); // user::
    entry(0x02, perm, uid); // user:uid:
    entry(0x04, 0, UNDEFINED); // group::
    entry(0x10, perm, UNDEFINED); // mask::
    entry(0x20, 0, UNDEFINED); // other::
    rustix::fs::setxattr(
        path,
        "system.posix_acl_access",
        &acl,
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (path, (content, _, _)) in snapshot(dir) {
        if content.windows(needle.len()).any(|w| w == needle) {
            out.push(path);
        }
    }
    out
}

/// As root, `compile` and `fix` of a user-owned tree whose `x.py` is a symlink to a
/// root-only file (0600 in a 0700 directory) write no cache of it — the user would read
/// the secret's constants in it — and say why; a source the user may read through an ACL,
/// and an ordinary one, are compiled and given to the user.
#[test]
fn root_never_writes_a_cache_its_owner_could_not_read_the_source_of() {
    if !as_root() {
        return;
    }
    let Some((uid, gid)) = service_user("pgt-iso") else {
        eprintln!("SKIP: cannot create the user pgt-iso");
        return;
    };
    let Some(i) = common::interpreters_from(3, 7).into_iter().last() else {
        eprintln!("SKIP: no Python 3.7+");
        return;
    };
    let tag = i.tag().unwrap();
    let base = Tree::new();
    chmod(base.path(), 0o755);
    let secret_word = format!("hunter2-{}", std::process::id());
    let secret = base.write(
        "secret/s.py",
        format!("SECRET = {secret_word:?}\n").as_bytes(),
    );
    chmod(&secret, 0o600);
    chmod(&base.join("secret"), 0o700);
    let shared_word = format!("shared-{}", std::process::id());
    let shared = base.write("acl/t.py", format!("SHARED = {shared_word:?}\n").as_bytes());
    chmod(&shared, 0o600);
    chmod(&base.join("acl"), 0o700);
    grant_acl(&base.join("acl"), uid, 7, 5);
    grant_acl(&shared, uid, 6, 4);
    let tree = base.join("tree");
    let pkg = tree.join("pkg");
    fs::create_dir_all(&pkg).unwrap();
    // x.py had a cache once (now stale): `fix` wants to rebuild it from the secret.
    fs::write(pkg.join("x.py"), b"SECRET = 'none'\n").unwrap();
    set_mtime(&pkg.join("x.py"), common::now_secs() - 1000, 0);
    i.compile(&pkg, &["x.py"], "timestamp", 0);
    fs::remove_file(pkg.join("x.py")).unwrap();
    std::os::unix::fs::symlink(&secret, pkg.join("x.py")).unwrap();
    std::os::unix::fs::symlink(&shared, pkg.join("z.py")).unwrap();
    fs::write(pkg.join("y.py"), b"Y = 1\n").unwrap();
    chown_tree(&tree, uid, gid);
    let cache_x = pkg.join(format!("__pycache__/x.{tag}.pyc"));
    let before_x = fs::read(&cache_x).unwrap();
    // The oracle: the user really cannot read the secret, and can read the shared file.
    let read_as_user = |p: &Path| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                &gid.to_string(),
                "--clear-groups",
                "cat",
            ])
            .arg(p)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!read_as_user(&pkg.join("x.py")) && read_as_user(&pkg.join("z.py")));
    let refusal = format!("not written: its owner uid {uid} cannot read the source");
    for args in [&["fix"][..], &["compile"]] {
        let out = pycguard()
            .current_dir(&tree)
            .args(args)
            .arg("--python")
            .arg(&i.path)
            .arg(".")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {text}");
        let line = text
            .lines()
            .find(|l| l.contains("x.py") || l.contains(&format!("x.{tag}.pyc")))
            .unwrap_or_else(|| panic!("{args:?}: x not reported:\n{text}"));
        assert!(
            line.starts_with("failed") && line.contains(&refusal),
            "{line}"
        );
        assert!(
            text.contains("1 failed") || text.contains("failed 1"),
            "{text}"
        );
        assert!(
            files_containing(&tree, secret_word.as_bytes()).is_empty(),
            "{args:?}: the secret leaked into the tree"
        );
        assert_eq!(
            fs::read(&cache_x).unwrap(),
            before_x,
            "x's old cache is left alone"
        );
    }
    // z (readable through the ACL) and y were compiled and given to the user.
    for m in ["y", "z"] {
        let c = pkg.join(format!("__pycache__/{m}.{tag}.pyc"));
        let meta = fs::metadata(&c).unwrap_or_else(|_| panic!("{m} not compiled"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{m}");
        assert!(read_as_user(&c), "{m}'s cache is the user's to read");
    }
    assert_eq!(files_containing(&tree, shared_word.as_bytes()).len(), 1);
}

/// A FIFO, a device or a huge file in place of the probe memo is neither waited on nor
/// read: the commands finish promptly, and the memo is written anew as a regular file.
#[test]
fn a_fifo_or_device_in_place_of_the_probe_memo_does_not_hang() {
    let tree = Tree::new();
    tree.write("pkg/m.py", b"X = 1\n");
    for kind in ["fifo", "device", "huge"] {
        let cache = Tree::new();
        let memo = cache.join("interpreters-v2.json");
        match kind {
            "fifo" => rustix::fs::mkfifoat(
                rustix::fs::CWD,
                &memo,
                rustix::fs::Mode::from_raw_mode(0o600),
            )
            .unwrap(),
            "device" => std::os::unix::fs::symlink("/dev/zero", &memo).unwrap(),
            _ => fs::File::create(&memo).unwrap().set_len(3 << 30).unwrap(),
        }
        for args in [&["interpreters"][..], &["compile", "--dry-run"]] {
            let mut child = pycguard()
                .current_dir(tree.path())
                .env("PYCGUARD_CACHE_DIR", cache.path())
                .args(args)
                .arg(".")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{kind}: `{}` hangs", args.join(" "));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            assert!(status.success(), "{kind}: {args:?}");
        }
        let meta = fs::symlink_metadata(&memo).unwrap();
        assert!(
            meta.is_file() && meta.len() < 1 << 20,
            "{kind}: the memo is rewritten"
        );
    }
}
