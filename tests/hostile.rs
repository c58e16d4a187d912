//! Hostile trees: FIFOs, devices, sockets and directories where caches go, symlinks to
//! outside files, hard links, huge sparse files, deep nesting, control characters in
//! names, pycguard's own cache directory booby-trapped, a user-owned tree run as root,
//! concurrent runs, SIGKILL in the middle of `fix`, and signals.
//!
//! Every case runs every command that applies under a timeout (a hang fails the case, it
//! never stalls the suite) and checks its exit status, that nothing panicked (no
//! "panicked" on stderr), that no file was lost (every non-cache file bit for bit and
//! mtime for mtime; after read-only commands the whole tree), and that human output holds
//! no raw control character. What the importer does with each hazard is asked of the real
//! interpreters, under a timeout too. The binary prints the totals at exit:
//! `HOSTILE: N cases, M command runs, files lost 0, panics 0, hangs 0`.

mod common;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{pycguard, set_mtime, Interp, Tree};
use serde_json::Value;

const T: u64 = 1_700_000_000;
/// Any command taking longer than this on these tiny trees hangs.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

static CASES: AtomicUsize = AtomicUsize::new(0);
static RUNS: AtomicUsize = AtomicUsize::new(0);
static LOST: AtomicUsize = AtomicUsize::new(0);
static PANICS: AtomicUsize = AtomicUsize::new(0);
static HANGS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn print_totals() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "HOSTILE: {} cases, {} command runs, files lost {}, panics {}, hangs {}",
        CASES.load(Ordering::SeqCst),
        RUNS.load(Ordering::SeqCst),
        LOST.load(Ordering::SeqCst),
        PANICS.load(Ordering::SeqCst),
        HANGS.load(Ordering::SeqCst)
    );
}

fn new_case(name: &str) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(print_totals);
    });
    CASES.fetch_add(1, Ordering::SeqCst);
    eprintln!("case: {name}");
}

/// What one command run gave.
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    #[allow(dead_code)]
    took: Duration,
}

impl Ran {
    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    fn json(&self) -> Value {
        // Lone surrogates (surrogateescape'd bytes) are not strings serde_json accepts.
        let text = String::from_utf8_lossy(&self.stdout).replace("\\udc", "%dc");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad json ({e}): {}", self.text()))
    }
}

/// Wait for a child at most `limit`; kill it if it is still running then.
fn wait_for(
    mut child: Child,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, Vec<u8>, Vec<u8>) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().unwrap() {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    (status, reader.join().unwrap(), err_reader.join().unwrap())
}

/// Run pycguard with `args` in `dir` under the timeout; a hang, a panic or a raw control
/// character in human output fails the calling test (and is counted).
fn run_in(dir: &Path, args: &[&OsStr], cache_dir: &Path) -> Ran {
    RUNS.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let child = pycguard()
        .current_dir(dir)
        .env("PYCGUARD_CACHE_DIR", cache_dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stdout, stderr) = wait_for(child, COMMAND_TIMEOUT);
    let ran = Ran {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        took: started.elapsed(),
    };
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if status.is_none() {
        HANGS.fetch_add(1, Ordering::SeqCst);
        panic!("pycguard {shown:?} hung (killed after {COMMAND_TIMEOUT:?})");
    }
    if ran.text().contains("panicked") {
        PANICS.fetch_add(1, Ordering::SeqCst);
        panic!("pycguard {shown:?} panicked:\n{}", ran.text());
    }
    assert!(
        status.unwrap().code().is_some(),
        "pycguard {shown:?} was killed by a signal: {:?}\n{}",
        status,
        ran.text()
    );
    let json = args
        .windows(2)
        .any(|w| w[0] == "--format" && w[1] == "json");
    let colour = args
        .windows(2)
        .any(|w| w[0] == "--color" && w[1] == "always");
    for (stream, bytes) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
        if json && stream == "stdout" {
            continue;
        }
        if colour {
            // Colour codes only: every ESC starts an SGR sequence (ESC [ digits ; m).
            for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == 0x1b) {
                let rest = &bytes[i + 1..];
                let end = rest.iter().position(|&b| b == b'm').unwrap_or(0);
                assert!(
                    end > 0
                        && rest[0] == b'['
                        && rest[1..end]
                            .iter()
                            .all(|b| b.is_ascii_digit() || *b == b';'),
                    "pycguard {shown:?}: a non-colour escape sequence in: {}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        if let Some(b) = bytes
            .iter()
            .find(|&&b| (b < 0x20 && b != b'\n' && !(colour && b == 0x1b)) || b == 0x7f)
        {
            panic!(
                "pycguard {shown:?} wrote the raw control byte {b:#04x} to {stream}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(
            !String::from_utf8_lossy(bytes).contains('\u{9b}'),
            "raw C1 control on {stream}"
        );
    }
    ran
}

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

fn run(dir: &Path, list: &[&str], cache_dir: &Path) -> Ran {
    let owned = args(list);
    let refs: Vec<&OsStr> = owned.iter().map(OsString::as_os_str).collect();
    run_in(dir, &refs, cache_dir)
}

/// One entry of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Snap {
    /// Content (or, past 16 MiB, only the size), mtime.
    File(Option<Vec<u8>>, u64, i64, i64),
    Link(PathBuf),
    Dir(i64, i64),
    Other(u32, i64, i64),
}

/// Every entry under `dir` without following links or opening anything but regular files.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Snap> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let ft = m.file_type();
            let snap = if ft.is_symlink() {
                Snap::Link(fs::read_link(&p).unwrap())
            } else if ft.is_dir() {
                stack.push(p.clone());
                Snap::Dir(m.mtime(), m.mtime_nsec())
            } else if ft.is_file() {
                let content = (m.len() <= 16 << 20).then(|| fs::read(&p).unwrap());
                Snap::File(content, m.len(), m.mtime(), m.mtime_nsec())
            } else {
                Snap::Other(m.mode(), m.mtime(), m.mtime_nsec())
            };
            out.insert(p, snap);
        }
    }
    out
}

fn is_cache_name(p: &Path) -> bool {
    let n = p.file_name().unwrap().as_bytes();
    n.ends_with(b".pyc") || n.ends_with(b".pyo") || n.windows(5).any(|w| w == b".pyc.")
}

/// The non-cache files and links of a snapshot (what no command may change).
fn precious(s: &BTreeMap<PathBuf, Snap>) -> BTreeMap<PathBuf, Snap> {
    s.iter()
        .filter(|(p, snap)| !matches!(snap, Snap::Dir(..)) && !is_cache_name(p))
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect()
}

fn assert_nothing_lost(
    before: &BTreeMap<PathBuf, Snap>,
    after: &BTreeMap<PathBuf, Snap>,
    what: &str,
) {
    let before = precious(before);
    let after = precious(after);
    let lost: Vec<_> = before
        .iter()
        .filter(|(p, s)| after.get(*p) != Some(s))
        .map(|(p, _)| p.clone())
        .collect();
    if !lost.is_empty() {
        LOST.fetch_add(lost.len(), Ordering::SeqCst);
        panic!("{what}: files lost or changed: {lost:?}");
    }
}

/// Run every read-only command on `tree` (the whole tree must stay bit for bit and mtime
/// for mtime), then `fix`, `compile` and `clean` (non-cache files must stay). Returns the
/// JSON report of the first check.
fn run_every_command(tree: &Path, cache_dir: &Path, inspect: &[&Path]) -> Value {
    let before = snapshot(tree);
    let report = run(tree, &["check", "--format", "json"], cache_dir);
    assert!(matches!(report.code, Some(0 | 1)), "{}", report.text());
    let json = report.json();
    for list in [
        &["check"][..],
        &["check", "--color", "always"],
        &["check", "--deep"],
        &["check", "--deep", "--format", "json"],
        &["interpreters"],
        &["fix", "--dry-run"],
        &["fix", "--deep", "--dry-run"],
        &["clean", "--dry-run", "--debris"],
        &["clean", "--dry-run", "--state", "ghost,orphan,corrupt"],
        &["compile", "--dry-run"],
        &["doctor", "--user", "nobody"],
        &["ps", "--all"],
    ] {
        let ran = run(tree, list, cache_dir);
        assert!(matches!(ran.code, Some(0 | 1)), "{list:?}: {}", ran.text());
    }
    for file in inspect {
        let mut list = args(&["inspect"]);
        list.push(file.as_os_str().to_owned());
        let refs: Vec<&OsStr> = list.iter().map(OsString::as_os_str).collect();
        let ran = run_in(tree, &refs, cache_dir);
        assert!(matches!(ran.code, Some(0 | 1)), "{}", ran.text());
    }
    let after = snapshot(tree);
    if before != after {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|p| before.get(*p) != after.get(*p))
            .collect();
        LOST.fetch_add(changed.len(), Ordering::SeqCst);
        panic!("a read-only command changed the tree: {changed:?}");
    }
    for list in [
        &["fix"][..],
        &["compile"],
        &["fix", "--deep"],
        &["clean", "--debris"],
    ] {
        let ran = run(tree, list, cache_dir);
        assert!(matches!(ran.code, Some(0 | 1)), "{list:?}: {}", ran.text());
        assert_nothing_lost(&before, &snapshot(tree), &format!("{list:?}"));
    }
    json
}

fn entries(report: &Value) -> BTreeMap<String, Value> {
    common::by_path(report)
}

fn state(report: &Value, path: &str) -> (String, String, String) {
    let e = entries(report);
    let e = e
        .get(path)
        .unwrap_or_else(|| panic!("{path} not reported: {report}"));
    (
        e["state"].as_str().unwrap().to_owned(),
        e["severity"].as_str().unwrap().to_owned(),
        e["reason"].as_str().unwrap_or("").to_owned(),
    )
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// A character device like /dev/zero (1, 5); `None` where mknod is not allowed.
fn mknod_zero(path: &Path) -> bool {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(1, 5),
    )
    .is_ok()
}

fn newest() -> Interp {
    common::interpreters()
        .into_iter()
        .filter(|i| i.major == 3)
        .max_by_key(|i| (i.major, i.minor))
        .expect("no Python 3 interpreter on this machine: the hostile suite needs one")
}

fn source(tree: &Tree, rel: &str, content: &[u8]) -> PathBuf {
    let p = tree.write(rel, content);
    set_mtime(&p, T, 0);
    p
}

/// What `import module` does with `interp` in `dir`, within `limit`: `None` when it hangs.
fn import_within(
    interp: &Interp,
    dir: &Path,
    module: &str,
    limit: Duration,
) -> Option<Result<String, String>> {
    let code = format!("import sys\nsys.dont_write_bytecode = True\nimport {module} as m\nsys.stdout.write(str(m.VALUE))");
    let mut cmd = interp.command(dir);
    cmd.arg("-c")
        .arg(code)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Memory bounded: a device read "until memory runs out" stops at 512 MiB.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 512 << 20,
                rlim_max: 512 << 20,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let (status, stdout, stderr) = wait_for(cmd.spawn().unwrap(), limit);
    let status = status?;
    Some(if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_owned())
    })
}

#[test]
fn not_a_file_where_a_cache_goes_every_interpreter() {
    // What each interpreter does on `import` with a FIFO, a device and a symlink to a
    // device where its cache goes, and what pycguard says about each.
    let interps = common::interpreters();
    assert!(!interps.is_empty(), "no interpreter on this machine");
    std::thread::scope(|s| {
        for i in &interps {
            s.spawn(move || not_a_file_with(i));
        }
    });
}

fn not_a_file_with(i: &Interp) {
    new_case(&format!(
        "FIFO, device, socket, directory where {} caches go",
        i.version
    ));
    let tree = Tree::new();
    let cache_dir = Tree::new();
    for m in ["fifo", "dev", "devlink", "sock", "dir", "ok"] {
        source(
            &tree,
            &format!("{m}.py"),
            format!("VALUE = '{m}'\n").as_bytes(),
        );
    }
    let cache = |m: &str| -> PathBuf {
        match i.tag() {
            Some(tag) => tree.join(format!("__pycache__/{m}.{tag}.pyc")),
            None => tree.join(format!("{m}.pyc")),
        }
    };
    i.compile(tree.path(), &["ok.py"], "timestamp", 0);
    fs::create_dir_all(tree.join("__pycache__")).unwrap();
    mkfifo(&cache("fifo"));
    let have_dev = mknod_zero(&cache("dev"));
    symlink("/dev/zero", cache("devlink")).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(cache("sock")).unwrap();
    fs::create_dir(cache("dir")).unwrap();
    let rel = |p: PathBuf| format!("./{}", p.strip_prefix(tree.path()).unwrap().display());

    // The interpreter is the oracle.
    let limit = Duration::from_secs(5);
    assert_eq!(
        import_within(i, tree.path(), "fifo", limit),
        None,
        "Python {}: `import fifo` should hang on the FIFO",
        i.version
    );
    let dev = import_within(i, tree.path(), "devlink", Duration::from_secs(20));
    if i.major == 3 {
        // Python 3 reads the whole "cache": /dev/zero until memory runs out.
        assert!(
            matches!(&dev, None | Some(Err(_))),
            "Python {}: reading /dev/zero as a cache: {dev:?}",
            i.version
        );
    } else {
        // Python 2 reads the four bytes of a magic number and falls back to the source.
        assert_eq!(dev, Some(Ok("devlink".into())));
    }
    assert_eq!(
        import_within(i, tree.path(), "dir", limit),
        Some(Ok("dir".into()))
    );

    let report = run(
        tree.path(),
        &["check", "--format", "json"],
        cache_dir.path(),
    );
    assert_eq!(report.code, Some(1), "{}", report.text());
    let json = report.json();
    let (st, sev, reason) = state(&json, &rel(cache("fifo")));
    assert_eq!(
        (st.as_str(), sev.as_str()),
        ("corrupt", "error"),
        "{reason}"
    );
    assert!(
        reason.contains("FIFO") && reason.contains("blocks forever"),
        "{reason}"
    );
    if have_dev {
        let (st, sev, reason) = state(&json, &rel(cache("dev")));
        let want = if i.major == 3 {
            ("corrupt", "error")
        } else {
            ("orphan", "warning")
        };
        assert_eq!((st.as_str(), sev.as_str()), want, "{reason}");
        assert!(reason.contains("character device"), "{reason}");
    }
    let (st, sev, reason) = state(&json, &rel(cache("devlink")));
    let want = if i.major == 3 {
        ("corrupt", "error")
    } else {
        ("orphan", "warning")
    };
    assert_eq!((st.as_str(), sev.as_str()), want, "{reason}");
    assert!(
        reason.starts_with("a symlink to a character device"),
        "{reason}"
    );
    if i.major == 3 {
        // (A legacy name that is a directory is a directory to Python 2: not reported.)
        let (st, _, reason) = state(&json, &rel(cache("dir")));
        assert_eq!(st, "corrupt", "{reason}");
    }
    let mut inspect = vec![cache("fifo"), cache("devlink"), cache("dir")];
    if have_dev {
        inspect.push(cache("dev"));
    }
    let inspect: Vec<&Path> = inspect.iter().map(PathBuf::as_path).collect();
    run_every_command(tree.path(), cache_dir.path(), &inspect);
    // Nothing that is not a cache file was replaced or removed.
    assert!(fs::symlink_metadata(cache("fifo"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    // The symlink to a device was replaced by a real cache (or, a legacy orphan, removed):
    // the link itself, never what it points to.
    assert!(!fs::symlink_metadata(cache("devlink")).is_ok_and(|m| m.file_type().is_symlink()));
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[test]
fn a_fifo_swapped_in_for_a_source_or_given_as_path_never_blocks() {
    new_case("FIFO in place of a source; FIFO and device given as PATH");
    let i = newest();
    let tree = Tree::new();
    let cache_dir = Tree::new();
    source(&tree, "pkg/a.py", b"VALUE = 1\n");
    source(&tree, "pkg/b.py", b"VALUE = 2\n");
    i.compile(&tree.join("pkg"), &["a.py", "b.py"], "checked_hash", 0);
    // The sources become FIFOs after their caches were written: a hash-based cache makes
    // check read its source, --deep reads both.
    fs::remove_file(tree.join("pkg/a.py")).unwrap();
    mkfifo(&tree.join("pkg/a.py"));
    run_every_command(tree.path(), cache_dir.path(), &[&tree.join("pkg/a.py")]);
    let fifo = tree.join("fifo");
    mkfifo(&fifo);
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        for cmd in ["check", "fix", "clean", "compile"] {
            let mut list = args(&[cmd]);
            list.push(path.as_os_str().to_owned());
            let refs: Vec<&OsStr> = list.iter().map(OsString::as_os_str).collect();
            let ran = run_in(tree.path(), &refs, cache_dir.path());
            assert_eq!(ran.code, Some(2), "{cmd} {path:?}: {}", ran.text());
            assert!(
                ran.text().contains("give a directory, a cache file"),
                "{}",
                ran.text()
            );
        }
    }
}

#[test]
fn pycguards_own_cache_files_booby_trapped() {
    use pycguard::store::{proofs, proven, scan_memo};
    let i = newest();
    for (trap, what) in [
        (proofs::FILE_NAME, "fifo"),
        (proofs::LOCK_NAME, "fifo"),
        (scan_memo::FILE_NAME, "fifo"),
        (proven::FILE_NAME, "fifo"),
        (proofs::FILE_NAME, "sparse"),
        (scan_memo::FILE_NAME, "sparse"),
        (proven::FILE_NAME, "sparse"),
        (proofs::FILE_NAME, "symlink"),
        (proven::FILE_NAME, "symlink"),
        (scan_memo::FILE_NAME, "dir"),
        (proven::FILE_NAME, "dir"),
    ] {
        new_case(&format!("{trap} is a {what}"));
        let tree = Tree::new();
        let cache_dir = Tree::new();
        let outside = Tree::new();
        let victim = outside.write("victim", b"keep me");
        source(&tree, "m.py", b"VALUE = 1\n");
        i.compile(tree.path(), &["m.py"], "timestamp", 0);
        let path = cache_dir.join(trap);
        match what {
            "fifo" => mkfifo(&path),
            "sparse" => fs::File::create(&path).unwrap().set_len(3 << 30).unwrap(),
            "symlink" => symlink(&victim, &path).unwrap(),
            _ => fs::create_dir(&path).unwrap(),
        }
        for list in [
            &["check", "--deep"][..],
            &["check"],
            &["fix", "--deep"],
            &["compile"],
        ] {
            let ran = run(tree.path(), list, cache_dir.path());
            assert_eq!(ran.code, Some(0), "{trap} {what} {list:?}: {}", ran.text());
        }
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }
}

/// Run `cmd` as a shell line under an address-space limit (bytes).
fn run_limited(dir: &Path, cache_dir: &Path, list: &[&str], limit: u64) -> Ran {
    RUNS.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let mut cmd = pycguard();
    cmd.current_dir(dir)
        .env("PYCGUARD_CACHE_DIR", cache_dir)
        .args(list)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            libc::setrlimit(libc::RLIMIT_AS, &l);
            Ok(())
        });
    }
    let (status, stdout, stderr) = wait_for(cmd.spawn().unwrap(), COMMAND_TIMEOUT);
    if status.is_none() {
        HANGS.fetch_add(1, Ordering::SeqCst);
        panic!("{list:?} hung");
    }
    let ran = Ran {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
        took: started.elapsed(),
    };
    if ran.text().contains("panicked") || ran.text().contains("memory allocation") {
        PANICS.fetch_add(1, Ordering::SeqCst);
        panic!("{list:?} crashed: {}", ran.text());
    }
    ran
}

#[test]
fn a_huge_sparse_cache_or_source_is_reported_not_read() {
    new_case("3 GiB sparse cache and source under a 2 GiB address-space limit");
    let i = newest();
    let tag = i.tag().unwrap();
    let tree = Tree::new();
    let cache_dir = Tree::new();
    source(&tree, "big.py", b"VALUE = 1\n");
    source(&tree, "hashed.py", b"VALUE = 2\n");
    i.compile(tree.path(), &["hashed.py"], "checked_hash", 0);
    let big = tree.join(format!("__pycache__/big.{tag}.pyc"));
    fs::File::create(&big).unwrap().set_len(3 << 30).unwrap();
    // The hashed cache's source becomes a 3 GiB sparse file.
    fs::File::options()
        .write(true)
        .open(tree.join("hashed.py"))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    for list in [
        &["check", "--format", "json"][..],
        &["check", "--deep", "--format", "json"],
        &["inspect", "--format", "json"],
        &["fix", "--dry-run"],
    ] {
        let mut list = list.to_vec();
        let name = format!("__pycache__/big.{tag}.pyc");
        if list[0] == "inspect" {
            list.push(&name);
        }
        let ran = run_limited(tree.path(), cache_dir.path(), &list, 2 << 30);
        assert_eq!(ran.code, Some(1), "{list:?}: {}", ran.text());
        assert!(
            ran.text().contains("more than the 67108864-byte limit"),
            "{list:?}: {}",
            ran.text()
        );
    }
    run_every_command(tree.path(), cache_dir.path(), &[&big]);
}

#[test]
fn deep_nesting() {
    new_case(".pytest_cache nested 5,000 levels, and a tree 2,500 directories deep");
    let tree = Tree::new();
    let cache_dir = Tree::new();
    source(&tree, "keep.py", b"VALUE = 1\n");
    for top in [".pytest_cache", "deep"] {
        let mut fd = rustix::fs::open(
            tree.path(),
            rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        rustix::fs::mkdirat(&fd, top, rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
        fd = rustix::fs::openat(
            &fd,
            top,
            rustix::fs::OFlags::DIRECTORY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        // The walk reports what lies beyond PATH_MAX (about 2,000 levels here) as
        // unreadable; 2,500 levels show that without the quadratic cost of 5,000.
        let depth = if top == "deep" { 2500 } else { 5000 };
        for _ in 0..depth {
            rustix::fs::mkdirat(&fd, "d", rustix::fs::Mode::from_raw_mode(0o755)).unwrap();
            drop(
                rustix::fs::openat(
                    &fd,
                    "x.pyc",
                    rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY,
                    rustix::fs::Mode::from_raw_mode(0o644),
                )
                .unwrap(),
            );
            fd = rustix::fs::openat(
                &fd,
                "d",
                rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
        }
    }
    for list in [&["check"][..], &["clean", "--dry-run", "--debris"]] {
        let ran = run(tree.path(), list, cache_dir.path());
        assert!(matches!(ran.code, Some(0 | 1)), "{list:?}: {}", ran.text());
    }
    let ran = run(tree.path(), &["clean", "--debris"], cache_dir.path());
    assert!(
        !tree.join(".pytest_cache").exists(),
        "clean --debris left .pytest_cache: {}",
        ran.text()
    );
    assert!(tree.join("keep.py").exists());
    // Path-based removal of the too-deep tree for the temp dir's own cleanup.
    let _ = Command::new("rm")
        .arg("-rf")
        .arg(tree.join("deep"))
        .status();
}

#[test]
fn control_characters_in_names_are_escaped_everywhere() {
    new_case("ESC, CR, BEL, DEL, C1 and non-UTF-8 bytes in file names");
    let i = newest();
    let tag = i.tag().unwrap();
    let tree = Tree::new();
    let cache_dir = Tree::new();
    let names: [&[u8]; 6] = [
        b"\x1b[2J\x1b]0;owned\x07",
        b"cr\rhidden",
        b"bel\x07",
        b"del\x7f",
        "c1\u{9b}2J".as_bytes(),
        b"bad\xff\xfe",
    ];
    let dir = tree.join("pkg");
    fs::create_dir_all(dir.join("__pycache__")).unwrap();
    for (k, name) in names.iter().enumerate() {
        let mut stem = name.to_vec();
        stem.extend(format!("{k}").as_bytes());
        let mut py = stem.clone();
        py.extend(b".py");
        let src = dir.join(OsStr::from_bytes(&py));
        fs::write(&src, b"VALUE = 1\n").unwrap();
        set_mtime(&src, T, 0);
        // An orphan cache (no source) and a stale one, both with the hostile name.
        let mut gone = stem.clone();
        gone.extend(format!("-gone.{tag}.pyc").as_bytes());
        fs::write(
            dir.join("__pycache__").join(OsStr::from_bytes(&gone)),
            b"junk",
        )
        .unwrap();
        let mut stale = stem.clone();
        stale.extend(format!(".{tag}.pyc").as_bytes());
        fs::write(
            dir.join("__pycache__").join(OsStr::from_bytes(&stale)),
            b"\x00\x00",
        )
        .unwrap();
    }
    let first = dir.join("__pycache__").join(OsStr::from_bytes(
        &[names[0], format!("0.{tag}.pyc").as_bytes()].concat(),
    ));
    let ran = run(
        tree.path(),
        &["check", "--color", "never"],
        cache_dir.path(),
    );
    let text = ran.text();
    assert!(text.contains("\\x1b[2J\\x1b]0;owned\\x07"), "{text}");
    assert!(text.contains("cr\\rhidden"), "{text}");
    assert!(text.contains("bad\\xff\\xfe"), "{text}");
    assert!(text.contains("c1\\u{9b}2J"), "{text}");
    run_every_command(tree.path(), cache_dir.path(), &[&first]);
    // An error message naming a hostile PATH is escaped too.
    let mut list = args(&["check"]);
    list.push(OsString::from_vec_lossless(b"no\x1b[2Jsuch"));
    let refs: Vec<&OsStr> = list.iter().map(OsString::as_os_str).collect();
    let ran = run_in(tree.path(), &refs, cache_dir.path());
    assert_eq!(ran.code, Some(2));
    assert!(ran.text().contains("no\\x1b[2Jsuch"), "{}", ran.text());
}

trait FromVec {
    fn from_vec_lossless(v: &[u8]) -> OsString;
}

impl FromVec for OsString {
    fn from_vec_lossless(v: &[u8]) -> OsString {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(v.to_vec())
    }
}

#[test]
fn symlinks_and_hard_links_to_outside_files() {
    new_case("symlinked and hard-linked caches to files outside the tree");
    let i = newest();
    let tag = i.tag().unwrap();
    let tree = Tree::new();
    let outside = Tree::new();
    let cache_dir = Tree::new();
    // Valid caches written outside, then linked into the tree.
    for m in ["fresh", "stale", "ghost", "hard"] {
        source(&outside, &format!("{m}.py"), b"VALUE = 'outside'\n");
    }
    i.compile(
        outside.path(),
        &["fresh.py", "stale.py", "hard.py"],
        "timestamp",
        0,
    );
    i.compile(outside.path(), &["ghost.py"], "legacy", 0);
    let out_cache = |m: &str| outside.join(format!("__pycache__/{m}.{tag}.pyc"));
    source(&tree, "fresh.py", b"VALUE = 'outside'\n");
    source(&tree, "stale.py", b"VALUE = 'changed!'\n");
    source(&tree, "hard.py", b"VALUE = 'changed!'\n");
    source(&tree, "other.py", b"VALUE = 0\n");
    fs::create_dir_all(tree.join("__pycache__")).unwrap();
    let in_cache = |m: &str| tree.join(format!("__pycache__/{m}.{tag}.pyc"));
    symlink(out_cache("fresh"), in_cache("fresh")).unwrap();
    symlink(out_cache("stale"), in_cache("stale")).unwrap();
    symlink(outside.join("ghost.pyc"), tree.join("ghost.pyc")).unwrap();
    fs::hard_link(out_cache("hard"), in_cache("hard")).unwrap();
    let outside_before = snapshot(outside.path());
    // The importer reads through the links.
    assert_eq!(i.import_value(tree.path(), "ghost"), Ok("outside".into()));
    assert_eq!(i.import_value(tree.path(), "fresh"), Ok("outside".into()));
    let (json, code) = common::check_json(tree.path(), &[]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(
        state(&json, &format!("./__pycache__/fresh.{tag}.pyc")).0,
        "fresh"
    );
    assert_eq!(
        state(&json, &format!("./__pycache__/stale.{tag}.pyc")).0,
        "stale"
    );
    assert_eq!(
        state(&json, &format!("./__pycache__/hard.{tag}.pyc")).0,
        "stale"
    );
    let (st, sev, _) = state(&json, "./ghost.pyc");
    assert_eq!((st.as_str(), sev.as_str()), ("ghost", "error"));
    run_every_command(
        tree.path(),
        cache_dir.path(),
        &[&in_cache("fresh"), &tree.join("ghost.pyc")],
    );
    // fix replaced or removed the links themselves, never their targets.
    assert_eq!(
        snapshot(outside.path()),
        outside_before,
        "a file outside the tree changed"
    );
    assert!(fs::symlink_metadata(tree.join("ghost.pyc")).is_err());
    assert!(!fs::symlink_metadata(in_cache("stale")).is_ok_and(|m| m.file_type().is_symlink()));
    let (json, code) = common::check_json(tree.path(), &[]);
    assert_eq!(code, 0, "{json}");
}

fn ensure_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status();
    }
    (id("-u").expect("useradd"), id("-g").expect("useradd"))
}

#[test]
fn a_user_owned_tree_run_as_root() {
    if !common::capability("root") {
        eprintln!("SKIP: not running as root");
        return;
    }
    new_case("a user-owned tree with hostile entries, run as root");
    let i = newest();
    let tag = i.tag().unwrap();
    let (uid, gid) = ensure_user("pgt-hostile");
    let tree = Tree::new();
    let cache_dir = Tree::new();
    let secret_dir = Tree::new();
    let secret = secret_dir.write("secret", b"root only");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    source(&tree, "pkg/m.py", b"VALUE = 1\n");
    source(&tree, "pkg/n.py", b"VALUE = 2\n");
    source(&tree, "other/o.py", b"VALUE = 3\n");
    i.compile(&tree.join("pkg"), &["m.py", "n.py"], "timestamp", 0);
    // Make n's cache stale, point a __pycache__ outside, and put a file where one goes.
    source(&tree, "pkg/n.py", b"VALUE = 22\n");
    symlink(secret_dir.path(), tree.join("other/__pycache__")).unwrap();
    tree.write("plain/p.py", b"VALUE = 4\n");
    tree.write("plain/__pycache__", b"a file, not a directory");
    symlink(&secret, tree.join(format!("pkg/__pycache__/s.{tag}.pyc"))).unwrap();
    source(&tree, "pkg/s.py", b"VALUE = 5\n");
    Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(tree.path())
        .status()
        .unwrap();
    let secret_before = snapshot(secret_dir.path());
    run_every_command(tree.path(), cache_dir.path(), &[]);
    assert_eq!(
        snapshot(secret_dir.path()),
        secret_before,
        "root wrote outside the tree"
    );
    // clean removed every cache; compile writes them again, owned by the tree's owner.
    let py = i.path.to_string_lossy().into_owned();
    let ran = run(tree.path(), &["compile", "--python", &py], cache_dir.path());
    let n = tree.join(format!("pkg/__pycache__/n.{tag}.pyc"));
    assert_eq!(
        fs::metadata(&n).unwrap().uid(),
        uid,
        "the cache belongs to the user: {}",
        ran.text()
    );
    assert!(
        ran.text()
            .contains("plain/__pycache__ is a regular file, not a directory"),
        "{}",
        ran.text()
    );
    assert!(
        !ran.text()
            .contains("refusing to follow the symlink ./plain"),
        "{}",
        ran.text()
    );
    assert!(
        ran.text().contains("refusing to follow the symlink"),
        "{}",
        ran.text()
    );
}

/// A tree of `n` modules compiled by `i`, then edited so every cache is stale.
fn stale_tree(i: &Interp, n: usize) -> Tree {
    let tree = Tree::new();
    let mut files = Vec::new();
    for k in 0..n {
        source(
            &tree,
            &format!("pkg/m{k}.py"),
            format!("VALUE = {k}\n").as_bytes(),
        );
        files.push(format!("m{k}.py"));
    }
    source(&tree, "pkg/__init__.py", b"");
    let refs: Vec<&str> = files.iter().map(String::as_str).collect();
    i.compile(&tree.join("pkg"), &refs, "timestamp", 0);
    for k in 0..n {
        let p = tree.write(
            format!("pkg/m{k}.py"),
            format!("VALUE = {}\n", k + 1000).as_bytes(),
        );
        set_mtime(&p, T + 10, 0);
    }
    // Orphans too, so that concurrent runs race to delete them.
    for k in 0..5 {
        tree.write(
            format!("pkg/__pycache__/gone{k}.{}.pyc", i.tag().unwrap()),
            b"x",
        );
    }
    tree
}

#[test]
fn four_concurrent_fixes_on_one_tree() {
    new_case("4 concurrent fix runs on one tree, 20 rounds");
    let i = newest();
    for round in 0..20 {
        let tree = stale_tree(&i, 12);
        let cache_dir = Tree::new();
        let before = snapshot(tree.path());
        let children: Vec<Child> = (0..4)
            .map(|_| {
                RUNS.fetch_add(1, Ordering::SeqCst);
                pycguard()
                    .current_dir(tree.path())
                    .env("PYCGUARD_CACHE_DIR", cache_dir.path())
                    .args(["fix", "-q"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let (status, out, err) = wait_for(child, COMMAND_TIMEOUT);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
            if status.is_none() {
                HANGS.fetch_add(1, Ordering::SeqCst);
            }
            if text.contains("panicked") {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(0),
                "round {round}: {text}"
            );
        }
        assert_nothing_lost(&before, &snapshot(tree.path()), "concurrent fix");
        let (json, code) = common::check_json(tree.path(), &["--no-cache"]);
        assert_eq!(code, 0, "round {round}: {json}");
        assert_eq!(
            json["summary"]["caches"], json["summary"]["fresh"],
            "{json}"
        );
        assert_eq!(i.import_value(&tree.join("pkg"), "m3"), Ok("1003".into()));
    }
}

#[test]
fn sigkill_in_the_middle_of_fix() {
    new_case("SIGKILL while fix writes");
    let i = newest();
    let tag = i.tag().unwrap();
    for delay_ms in [150, 400, 900] {
        let tree = stale_tree(&i, 200);
        let cache_dir = Tree::new();
        let before = snapshot(tree.path());
        RUNS.fetch_add(1, Ordering::SeqCst);
        let mut child = pycguard()
            .current_dir(tree.path())
            .env("PYCGUARD_CACHE_DIR", cache_dir.path())
            .args(["fix", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Let workers that lost their parent finish.
        std::thread::sleep(Duration::from_millis(200));
        assert_nothing_lost(&before, &snapshot(tree.path()), "after SIGKILL");
        // Every cache is the old one or a complete new one.
        let (json, _) = common::check_json(tree.path(), &["--no-cache"]);
        for e in json["caches"].as_array().unwrap() {
            let path = e["path"].as_str().unwrap();
            let state = e["state"].as_str().unwrap();
            let name = Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ok = match state {
                "fresh" | "stale" => name.ends_with(&format!(".{tag}.pyc")),
                // The temp file of a write cut short, or the orphans made on purpose.
                "orphan" => name.contains(".pyc.") || name.starts_with("gone"),
                _ => false,
            };
            assert!(ok, "after SIGKILL at {delay_ms} ms: {e}");
        }
        // The next fix repairs everything and removes leftover temp files.
        let ran = run(tree.path(), &["fix"], cache_dir.path());
        assert_eq!(ran.code, Some(0), "{}", ran.text());
        let (json, code) = common::check_json(tree.path(), &["--no-cache"]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(
            json["summary"]["caches"], json["summary"]["fresh"],
            "{json}"
        );
        assert_nothing_lost(&before, &snapshot(tree.path()), "after the next fix");
    }
}

/// A tree of `n` directories of 100 caches each (a walk that takes a while).
fn wide_tree(n: usize) -> Tree {
    let tree = Tree::new();
    for d in 0..n {
        let dir = tree.join(format!("p{d}/__pycache__"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            fs::write(tree.join(format!("p{d}/m{f}.py")), b"").unwrap();
            fs::write(dir.join(format!("m{f}.cpython-312.pyc")), b"").unwrap();
        }
    }
    tree
}

fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn sigterm_and_sigint_end_every_command_promptly() {
    new_case("SIGTERM and SIGINT during walks, and during a probe that never answers");
    let tree = wide_tree(600);
    let cache_dir = Tree::new();
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        for cmd in [
            &["check", "--no-cache", "-j", "1"][..],
            &["clean", "--dry-run", "-j", "1"],
            &["fix", "--dry-run", "--no-cache", "-j", "1"],
        ] {
            RUNS.fetch_add(1, Ordering::SeqCst);
            let child = pycguard()
                .current_dir(tree.path())
                .env("PYCGUARD_CACHE_DIR", cache_dir.path())
                .args(cmd)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            signal(&child, sig);
            let sent = Instant::now();
            let (status, _, err) = wait_for(child, Duration::from_secs(20));
            let took = sent.elapsed();
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(code),
                "{cmd:?} after {sig}: {status:?} {}",
                String::from_utf8_lossy(&err)
            );
            assert!(
                took < Duration::from_secs(3),
                "{cmd:?} took {took:?} after {sig}"
            );
        }
    }
    // A --python that never answers its probe: SIGTERM still ends the run at once.
    let script_dir = Tree::new();
    let marker = format!("pgt-hostile-sleeper-{}", std::process::id());
    let script = script_dir.write(
        "python3.99",
        format!("#!/bin/sh\nexec sleep 30 # {marker}\n").as_bytes(),
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let small = Tree::new();
    source(&small, "m.py", b"VALUE = 1\n");
    for cmd in ["check", "fix", "compile"] {
        RUNS.fetch_add(1, Ordering::SeqCst);
        let mut c = pycguard();
        c.current_dir(small.path())
            .env("PYCGUARD_CACHE_DIR", cache_dir.path())
            .arg(cmd);
        if cmd == "check" {
            c.arg("--deep");
        }
        let child = c
            .arg("--python")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        signal(&child, "-TERM");
        let sent = Instant::now();
        let (status, _, err) = wait_for(child, Duration::from_secs(30));
        let took = sent.elapsed();
        let _ = Command::new("pkill").args(["-f", &marker]).status();
        if status.is_none() {
            HANGS.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(143),
            "{cmd} --python <never answers> after SIGTERM: {status:?} {}",
            String::from_utf8_lossy(&err)
        );
        assert!(
            took < Duration::from_secs(5),
            "{cmd} took {took:?} after SIGTERM"
        );
    }
}

#[test]
fn bad_arguments_are_usage_errors_not_panics() {
    new_case("--timeout 1e30, 2^64, inf; --jobs 0 and huge; PATH a FIFO");
    let tree = Tree::new();
    let cache_dir = Tree::new();
    source(&tree, "m.py", b"VALUE = 1\n");
    for list in [
        &["check", "--deep", "--timeout", "1e30"][..],
        &["check", "--deep", "--timeout", "18446744073709551616"],
        &["compile", "--timeout", "1e300"],
        &["fix", "--timeout", "inf"],
        &["check", "--jobs", "0"],
        &["check", "--jobs", "100000000"],
    ] {
        let ran = run(tree.path(), list, cache_dir.path());
        assert_eq!(ran.code, Some(2), "{list:?}: {}", ran.text());
    }
}

#[test]
fn misleading_messages() {
    new_case("__pycache__ that is a regular file; compile with an unreadable entry");
    let i = newest();
    let tag = i.tag().unwrap();
    let tree = Tree::new();
    let cache_dir = Tree::new();
    source(&tree, "a/m.py", b"VALUE = 1\n");
    tree.write("a/__pycache__", b"not a directory");
    let ran = run(tree.path(), &["compile"], cache_dir.path());
    assert_eq!(ran.code, Some(1), "{}", ran.text());
    assert!(
        ran.text()
            .contains("a/__pycache__ is a regular file, not a directory"),
        "{}",
        ran.text()
    );
    assert!(!ran.text().contains("symlink"), "{}", ran.text());
    // A walk failure is counted in compile's summary, never "0 failed" alone.
    if common::can_run_as_other_user() {
        let (uid, gid) = ensure_user("pgt-hostile");
        let t2 = Tree::new();
        source(&t2, "ok.py", b"VALUE = 1\n");
        source(&t2, "locked/x.py", b"VALUE = 1\n");
        i.compile(t2.path(), &["ok.py"], "timestamp", 0);
        fs::set_permissions(t2.join("locked"), fs::Permissions::from_mode(0o700)).unwrap();
        Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(t2.path())
            .status()
            .unwrap();
        Command::new("chown")
            .arg("root:root")
            .arg(t2.join("locked"))
            .status()
            .unwrap();
        fs::set_permissions(t2.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("setpriv")
            .args([
                "--reuid",
                &uid.to_string(),
                "--regid",
                &gid.to_string(),
                "--clear-groups",
            ])
            .arg(env!("CARGO_BIN_EXE_pycguard"))
            .args([
                "compile",
                "--dry-run",
                "--no-cache",
                "--python",
                "/usr/bin/python3",
            ])
            .current_dir(t2.path())
            .output()
            .unwrap();
        RUNS.fetch_add(1, Ordering::SeqCst);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("1 unreadable"), "{text}");
        let _ = tag;
    }
}
