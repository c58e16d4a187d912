//! pycguard's pre-commit hooks (`.pre-commit-hooks.yaml`), run by real pre-commit from PyPI
//! against a throwaway git repository, offline from git (the hook repository is a local
//! path, never a remote):
//!
//! - `pre-commit try-repo <pycguard> pycguard --all-files` fails on a ghost `.pyc`;
//! - installed as a `pre-commit` hook, `git commit` is refused while the ghost is there and
//!   goes through once it is gone (a clean tree passes);
//! - `pycguard-fix`, installed for `post-checkout` and `post-merge`, removes the caches of a
//!   module the checked-out branch deletes and recompiles the cache of one it changes, on a
//!   real `git checkout` and a real `git merge`.
//!
//! The hook repository is a snapshot of this checkout's working tree (every file git
//! tracks or would track: `git ls-files --cached --others --exclude-standard`) committed
//! into a temporary repository: try-repo of a dirty checkout would use a shadow clone
//! without untracked files, and a clean CI clone is then tested exactly as it is.
//!
//! Build time: pre-commit `pip install`s the hook repository into each new hook
//! environment, which builds the Rust binary with maturin and cargo — pycguard's real
//! install path. pre-commit and pip pass the environment through, so `tools::hook_build_env`
//! can point cargo at a target directory of the test suite's (`target/test-tools/
//! hook-target`, its dependencies compiled once and reused by every later run) and make the
//! release profile cheap (opt-level 0, no LTO): pre-commit's fresh clone of the hook
//! repository always has sources newer than any earlier build, so the pycguard crate itself
//! is compiled for each hook environment, seconds this way instead of most of a minute.
//! try-repo makes an environment of its own; the installed hooks share one more (in the
//! test's `PRE_COMMIT_HOME`): two builds in all. (`tests/packaging.rs` builds and checks the
//! real release wheel.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::tools::{self, output_with_timeout, report, ToolVenv};
use common::{check_json, Tree};

const PRE_COMMIT: &str = "pre-commit==4.7.0";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The environment every git and pre-commit command of the test runs with: a git config
/// of its own (no user or system config: hooks paths, templates, signing), pre-commit's
/// store in the test's directory, builds as `tools::hook_build_env` makes them.
struct Env {
    home: PathBuf,
    gitconfig: PathBuf,
}

impl Env {
    fn new(tree: &Tree) -> Env {
        let gitconfig = tree.write(
            "gitconfig",
            b"[user]\n\tname = pycguard test\n\temail = test@pycguard.invalid\n\
              [init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        );
        Env {
            home: tree.join("pre-commit-home"),
            gitconfig,
        }
    }

    fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        tools::hook_build_env(cmd)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("PRE_COMMIT_HOME", &self.home)
            .env("PRE_COMMIT_COLOR", "never")
            .env("PYCGUARD_CACHE_DIR", common::test_cache_dir())
            .env("NO_COLOR", "1")
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env_remove("PYTHONPYCACHEPREFIX")
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        output_with_timeout(
            self.apply(Command::new("git").current_dir(dir).args(args)),
            Duration::from_secs(900),
        )
    }

    fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {}:\n{}",
            dir.display(),
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// This checkout's working tree committed into a new repository at `dest`; its HEAD.
/// `None` (after a `SKIP:` line) when the checkout is not a git work tree.
fn snapshot_of_checkout(env: &Env, dest: &Path) -> Option<String> {
    let listed = env.git(
        tools::checkout(),
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    );
    if !listed.status.success() {
        eprintln!(
            "SKIP: {} is not a git work tree: {}",
            tools::checkout().display(),
            text(&listed)
        );
        return None;
    }
    let mut copied = 0;
    for rel in listed.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).expect("UTF-8 file names in the repo"));
        let from = tools::checkout().join(rel);
        let Ok(meta) = fs::symlink_metadata(&from) else {
            continue; // deleted in the work tree, not yet in the index
        };
        let to = dest.join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from).unwrap(), &to).unwrap();
        } else if meta.is_file() {
            fs::copy(&from, &to).unwrap(); // keeps the mode (executable bits)
        }
        copied += 1;
    }
    assert!(
        dest.join(".pre-commit-hooks.yaml").is_file() && dest.join("pyproject.toml").is_file(),
        "the snapshot has no .pre-commit-hooks.yaml or pyproject.toml ({copied} files)"
    );
    env.git_ok(dest, &["init", "-q"]);
    env.git_ok(dest, &["add", "-A"]);
    env.git_ok(
        dest,
        &["commit", "-q", "-m", "snapshot of the pycguard checkout"],
    );
    Some(env.git_ok(dest, &["rev-parse", "HEAD"]))
}

/// Run pre-commit in `dir`.
fn pre_commit(venv: &ToolVenv, env: &Env, dir: &Path, args: &[&str]) -> Output {
    output_with_timeout(
        env.apply(venv.command(venv.bin("pre-commit"), dir).args(args)),
        Duration::from_secs(900),
    )
}

/// The interpreter that writes the project's caches (the default 3.12).
fn compile(dir: &Path, files: &[&str]) {
    let python = tools::default_python().expect("Python 3.12");
    python.compile(dir, files, "timestamp", 0);
}

#[test]
fn check_hook_fails_on_a_ghost_and_fix_hook_repairs_after_checkout_and_merge() {
    let Some(venv) = tools::venv("pre-commit", &[PRE_COMMIT]) else {
        return;
    };
    if tools::default_python().is_none() {
        eprintln!("SKIP: no Python 3.12 to write the project's caches");
        return;
    }
    let tree = Tree::new();
    let env = Env::new(&tree);
    let hooks_repo = tree.join("pycguard-hooks");
    let Some(rev) = snapshot_of_checkout(&env, &hooks_repo) else {
        return;
    };

    // The project: a package, its config naming both hooks, and a branch that deletes
    // one module and changes another (made before any hook is installed).
    let proj = tree.join("project");
    let write = |rel: &str, text: &str| {
        let p = proj.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    write(".gitignore", "__pycache__/\n*.pyc\n");
    write("app/__init__.py", "");
    write("app/mod.py", "VALUE = 1\n");
    write("app/old.py", "OLD = 1\n");
    write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n- repo: {}\n  rev: {rev}\n  hooks:\n  - id: pycguard\n  - id: pycguard-fix\n",
            hooks_repo.display()
        ),
    );
    env.git_ok(&proj, &["init", "-q"]);
    env.git_ok(&proj, &["add", "-A"]);
    env.git_ok(&proj, &["commit", "-q", "-m", "app"]);
    env.git_ok(&proj, &["checkout", "-q", "-b", "drop-old"]);
    env.git_ok(&proj, &["rm", "-q", "app/old.py"]);
    write("app/mod.py", "VALUE = 22\n");
    env.git_ok(
        &proj,
        &["commit", "-q", "-am", "drop app/old.py, change app/mod.py"],
    );
    env.git_ok(&proj, &["checkout", "-q", "main"]);

    // A ghost: the legacy cache of a module whose source is gone.
    write("app/gone.py", "GONE = 1\n");
    let python = tools::default_python().unwrap();
    python.compile(&proj, &["app/gone.py"], "legacy", 0);
    fs::remove_file(proj.join("app/gone.py")).unwrap();
    assert!(proj.join("app/gone.pyc").is_file());

    // 1. try-repo: the check hook fails on the ghost.
    let start = Instant::now();
    let out = pre_commit(
        &venv,
        &env,
        &proj,
        &[
            "try-repo",
            hooks_repo.to_str().unwrap(),
            "pycguard",
            "--all-files",
        ],
    );
    let said = text(&out);
    report(&format!(
        "PRECOMMIT: try-repo (hook env built: pip install of the repo, maturin, cargo) took {:.1}s\n",
        start.elapsed().as_secs_f64()
    ));
    assert_eq!(out.status.code(), Some(1), "try-repo with a ghost:\n{said}");
    assert!(
        said.contains("pycguard check (bytecode caches)") && said.contains("Failed"),
        "{said}"
    );
    assert!(
        said.contains("ghost") && said.contains("app/gone.pyc"),
        "the ghost is not named:\n{said}"
    );

    // 2. Installed hooks: a commit is refused while the ghost is there…
    let out = pre_commit(
        &venv,
        &env,
        &proj,
        &[
            "install",
            "--hook-type",
            "pre-commit",
            "--hook-type",
            "post-checkout",
            "--hook-type",
            "post-merge",
        ],
    );
    assert!(out.status.success(), "pre-commit install:\n{}", text(&out));
    write("README", "project\n");
    env.git_ok(&proj, &["add", "README"]);
    let head = env.git_ok(&proj, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    let out = env.git(&proj, &["commit", "-m", "readme"]);
    report(&format!(
        "PRECOMMIT: first git commit (hook env built) took {:.1}s\n",
        start.elapsed().as_secs_f64()
    ));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "commit with a ghost:\n{said}");
    assert!(said.contains("app/gone.pyc"), "{said}");
    assert_eq!(
        env.git_ok(&proj, &["rev-parse", "HEAD"]),
        head,
        "committed anyway"
    );
    // …and goes through on a clean tree (the fix hook is not a pre-commit hook: the
    // ghost is still there until removed).
    assert!(proj.join("app/gone.pyc").is_file());
    fs::remove_file(proj.join("app/gone.pyc")).unwrap();
    let out = env.git(&proj, &["commit", "-m", "readme"]);
    assert!(
        out.status.success(),
        "commit on a clean tree:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("pycguard check (bytecode caches)") && text(&out).contains("Passed"),
        "{}",
        text(&out)
    );
    assert_ne!(env.git_ok(&proj, &["rev-parse", "HEAD"]), head);

    // 3. post-checkout: switching to the branch that deletes app/old.py and changes
    //    app/mod.py removes old.py's cache and recompiles mod.py's.
    compile(&proj, &["app/mod.py", "app/old.py"]);
    let old_cache = proj.join("app/__pycache__/old.cpython-312.pyc");
    let mod_cache = proj.join("app/__pycache__/mod.cpython-312.pyc");
    let init_cache = proj.join("app/__pycache__/__init__.cpython-312.pyc");
    compile(&proj, &["app/__init__.py"]);
    let init_before = fs::read(&init_cache).unwrap();
    let (before, _) = check_json(&proj, &["--no-cache"]);
    assert_eq!(before["summary"]["fresh"], 3, "{before}");
    let out = env.git(&proj, &["checkout", "drop-old"]);
    assert!(
        out.status.success(),
        "git checkout drop-old:\n{}",
        text(&out)
    );
    assert!(
        !old_cache.exists(),
        "post-checkout left {} behind:\n{}",
        old_cache.display(),
        text(&out)
    );
    let (after, code) = check_json(&proj, &["--no-cache", "--deep"]);
    assert_eq!(code, 0, "{after}");
    assert_eq!(after["summary"]["caches"], 2, "{after}");
    assert_eq!(after["summary"]["fresh"], 2, "{after}");
    assert_eq!(python.import_value(&proj, "app.mod"), Ok("22".into()));
    assert_eq!(
        fs::read(&init_cache).unwrap(),
        init_before,
        "a fresh cache was touched"
    );
    assert!(mod_cache.is_file());

    // 4. post-merge: back on main (old.py restored), its cache written again, then a
    //    merge of the branch deletes the module: the hook removes the cache.
    let out = env.git(&proj, &["checkout", "-q", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    compile(&proj, &["app/old.py"]);
    assert!(old_cache.is_file());
    let out = env.git(&proj, &["merge", "--no-edit", "drop-old"]);
    assert!(out.status.success(), "git merge:\n{}", text(&out));
    assert!(
        !old_cache.exists(),
        "post-merge left {} behind:\n{}",
        old_cache.display(),
        text(&out)
    );
    let (after, code) = check_json(&proj, &["--no-cache"]);
    assert_eq!(code, 0, "{after}");
    assert_eq!(python.import_value(&proj, "app.mod"), Ok("22".into()));
}
