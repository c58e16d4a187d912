//! Pure parsers for the `/proc` files `ps` and `doctor` read: `stat` (the start time in
//! clock ticks), `/proc/stat`'s `btime`, NUL-separated `cmdline` and `environ`, `cgroup`
//! (→ the systemd unit), and a Python command line (→ its script, `-m` module or `-c`).
//! No I/O: [`super::read`] hands the bytes in.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// The start time field of `/proc/PID/stat`: clock ticks after boot (field 22). The
/// command name (field 2) is in parentheses and may hold spaces and `)`, so fields are
/// counted after the *last* `)`.
pub fn start_ticks(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After `)`: field 3 (state) is the first; field 22 is the 20th.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// `btime` of `/proc/stat`: the boot time in whole seconds since the epoch.
pub fn boot_time(proc_stat: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(proc_stat).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The real, effective uids of `/proc/PID/status`'s `Uid:` line.
pub fn uids(status: &[u8]) -> Option<(u32, u32)> {
    let text = String::from_utf8_lossy(status);
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    let mut ids = line.split_ascii_whitespace().map(|v| v.parse::<u32>().ok());
    Some((ids.next()??, ids.next()??))
}

/// NUL-separated strings (`cmdline`, `environ`); a trailing NUL ends the last one.
pub fn nul_separated(bytes: &[u8]) -> Vec<OsString> {
    let mut parts: Vec<OsString> = bytes
        .split(|&b| b == 0)
        .map(|p| OsStr::from_bytes(p).to_os_string())
        .collect();
    if bytes.last() == Some(&0) || bytes.is_empty() {
        parts.pop();
    }
    parts
}

/// `NAME=VALUE` pairs of an `environ` (entries without `=` are dropped).
pub fn environ(bytes: &[u8]) -> Vec<(OsString, OsString)> {
    nul_separated(bytes)
        .into_iter()
        .filter_map(|entry| {
            let raw = entry.as_bytes();
            let eq = raw.iter().position(|&b| b == b'=')?;
            Some((
                OsStr::from_bytes(&raw[..eq]).to_os_string(),
                OsStr::from_bytes(&raw[eq + 1..]).to_os_string(),
            ))
        })
        .collect()
}

/// The systemd unit a process belongs to, from `/proc/PID/cgroup`: the last component of
/// its cgroup path that names a unit (`.service`, `.scope`, `.socket`, `.mount`,
/// `.swap`) — `0::/system.slice/app.service` → `app.service`, and in a user's manager
/// `…/user@1000.service/app.slice/web.service` → `web.service`. The unified hierarchy
/// (`0::`) is preferred; else the `name=systemd` line of cgroup v1.
pub fn systemd_unit(cgroup: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(cgroup);
    let path_of = |line: &str| -> Option<String> {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{controllers}\0{path}"))
    };
    let lines: Vec<String> = text.lines().filter_map(path_of).collect();
    let pick = |want: &str| {
        lines
            .iter()
            .find(|l| l.split('\0').next() == Some(want))
            .map(|l| l.split('\0').nth(1).unwrap_or("").to_owned())
    };
    const UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];
    let unit_in = |path: String| {
        path.split('/')
            .rev()
            .find(|c| {
                UNIT_SUFFIXES
                    .iter()
                    .any(|s| c.ends_with(s) && c.len() > s.len())
            })
            .map(str::to_owned)
    };
    // Hybrid hierarchies leave the unified one at `/`: systemd's is the v1 `name=systemd`.
    pick("")
        .and_then(unit_in)
        .or_else(|| pick("name=systemd").and_then(unit_in))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runs {
    /// `python [OPTIONS] SCRIPT ARGS…` (a file, a directory or a zip with `__main__`).
    Script(PathBuf),
    /// `python -m MODULE`.
    Module(String),
    /// `python -c CODE`.
    Command,
    /// `python -` or no argument: stdin (an interactive interpreter).
    Stdin,
}

/// A Python command line, as the interpreter reads its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonCommand {
    pub runs: Runs,
    /// `-B` given (or combined, `-BE`): it writes no caches.
    pub no_write: bool,
    /// `-I` or `-E`: it ignores `PYTHON*` variables.
    pub ignores_environment: bool,
    /// The number of `-O`s.
    pub optimize: u8,
    /// `-X pycache_prefix=DIR`.
    pub pycache_prefix: Option<PathBuf>,
}

/// Read the options of `python ARGV…` (argv[0] excluded) as CPython's `getopt` does:
/// single-letter flags may be combined (`-BOu`), `-c`, `-m`, `-W`, `-X` take an argument
/// (attached or next), `--check-hash-based-pycs` takes one, `--` ends the options, and
/// the first other word is the script.
pub fn python_command(args: &[OsString]) -> PythonCommand {
    let mut out = PythonCommand {
        runs: Runs::Stdin,
        no_write: false,
        ignores_environment: false,
        optimize: 0,
        pycache_prefix: None,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            if let Some(script) = args.get(i) {
                out.runs = script_or_stdin(script);
            }
            return out;
        }
        if arg.starts_with(b"--") {
            // Long options: only one takes a separate argument.
            if arg == b"--check-hash-based-pycs" {
                i += 1;
            }
            continue;
        }
        if arg == b"-" || !arg.starts_with(b"-") {
            out.runs = script_or_stdin(&args[i - 1]);
            return out;
        }
        let mut k = 1;
        while k < arg.len() {
            let flag = arg[k];
            k += 1;
            match flag {
                b'c' | b'm' | b'W' | b'X' => {
                    let value: OsString = if k < arg.len() {
                        OsStr::from_bytes(&arg[k..]).to_os_string()
                    } else {
                        i += 1;
                        args.get(i - 1).cloned().unwrap_or_default()
                    };
                    match flag {
                        b'c' => {
                            out.runs = Runs::Command;
                            return out;
                        }
                        b'm' => {
                            out.runs = Runs::Module(value.to_string_lossy().into_owned());
                            return out;
                        }
                        b'X' => {
                            if let Some(dir) = value.as_bytes().strip_prefix(b"pycache_prefix=") {
                                out.pycache_prefix = Some(PathBuf::from(OsStr::from_bytes(dir)));
                            }
                        }
                        _ => {}
                    }
                    break;
                }
                b'B' => out.no_write = true,
                b'I' | b'E' => out.ignores_environment = true,
                b'O' => out.optimize = out.optimize.saturating_add(1),
                _ => {}
            }
        }
    }
    out
}

fn script_or_stdin(word: &OsStr) -> Runs {
    if word.as_bytes() == b"-" {
        Runs::Stdin
    } else {
        Runs::Script(PathBuf::from(word))
    }
}

/// Is this executable file name a CPython's (`python`, `python3`, `python3.12`,
/// `python2.7`, with pyenv's and Debian's debug or ABI suffixes `python3.12d`,
/// `python3.13t`)? A path whose link target was deleted ends in ` (deleted)`, which is
/// not part of the name.
pub fn is_python_executable_name(name: &OsStr) -> bool {
    let raw = name.as_bytes();
    let raw = raw.strip_suffix(b" (deleted)").unwrap_or(raw);
    let Some(rest) = raw.strip_prefix(b"python") else {
        return false;
    };
    let rest = rest
        .strip_suffix(b"d")
        .or_else(|| rest.strip_suffix(b"t"))
        .or_else(|| rest.strip_suffix(b"m"))
        .unwrap_or(rest);
    rest.iter().all(|&b| b.is_ascii_digit() || b == b'.')
        && !rest.starts_with(b".")
        && !rest.ends_with(b".")
        && !rest.windows(2).any(|w| w == b"..")
}

/// A link target from `/proc` without its ` (deleted)` mark, and whether it had one.
pub fn strip_deleted(target: &OsStr) -> (PathBuf, bool) {
    match target.as_bytes().strip_suffix(b" (deleted)") {
        Some(rest) => (PathBuf::from(OsStr::from_bytes(rest)), true),
        None => (PathBuf::from(target), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = b"4242 (py thon) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(start_ticks(b"12 (short) S 1"), None);
        assert_eq!(start_ticks(b"garbage"), None);
    }

    #[test]
    fn boot_time_and_uids() {
        assert_eq!(
            boot_time(b"cpu  1 2 3\nbtime 1764633600\nprocesses 9\n"),
            Some(1764633600)
        );
        assert_eq!(boot_time(b"cpu 1\n"), None);
        assert_eq!(
            uids(b"Name:\tpython3\nUid:\t1001\t1002\t1002\t1002\nGid:\t5\n"),
            Some((1001, 1002))
        );
        assert_eq!(uids(b"Name: x\n"), None);
    }

    #[test]
    fn nul_lists_and_environ() {
        assert_eq!(
            nul_separated(b"python3\0-m\0app\0"),
            os(&["python3", "-m", "app"])
        );
        assert_eq!(nul_separated(b""), Vec::<OsString>::new());
        assert_eq!(nul_separated(b"a\0\0b\0"), os(&["a", "", "b"]));
        let env = environ(b"A=1\0B=x=y\0junk\0C=\0");
        assert_eq!(
            env,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
    }

    #[test]
    fn units_from_cgroups() {
        assert_eq!(
            systemd_unit(b"0::/system.slice/wa-monitor-prod.service\n").as_deref(),
            Some("wa-monitor-prod.service")
        );
        assert_eq!(
            systemd_unit(
                b"0::/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n"
            )
            .as_deref(),
            Some("web.service")
        );
        assert_eq!(
            systemd_unit(b"0::/user.slice/user-0.slice/session-3.scope\n").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(
            systemd_unit(b"12:pids:/x\n1:name=systemd:/system.slice/old.service\n").as_deref(),
            Some("old.service")
        );
        assert_eq!(systemd_unit(b"0::/\n"), None);
        // Hybrid: the unified hierarchy at the root, the unit in systemd's own.
        assert_eq!(
            systemd_unit(b"9:name=systemd:/system.slice/app.service\n4:memory:/x\n0::/\n")
                .as_deref(),
            Some("app.service")
        );
        assert_eq!(systemd_unit(b"0::/docker/abc123\n"), None);
        assert_eq!(systemd_unit(b""), None);
    }

    #[test]
    fn python_command_lines() {
        let p = |v: &[&str]| python_command(&os(v));
        assert_eq!(
            p(&["app.py", "-m", "x"]).runs,
            Runs::Script("app.py".into())
        );
        assert_eq!(
            p(&["-m", "uvicorn", "main:app"]).runs,
            Runs::Module("uvicorn".into())
        );
        assert_eq!(
            p(&["-mhttp.server"]).runs,
            Runs::Module("http.server".into())
        );
        let c = p(&[
            "-BOO",
            "-X",
            "pycache_prefix=/tmp/pc",
            "-W",
            "ignore",
            "s.py",
        ]);
        assert_eq!(c.runs, Runs::Script("s.py".into()));
        assert!(c.no_write);
        assert_eq!(c.optimize, 2);
        assert_eq!(c.pycache_prefix, Some(PathBuf::from("/tmp/pc")));
        assert_eq!(p(&["-c", "import x", "y.py"]).runs, Runs::Command);
        assert_eq!(p(&["-uc", "pass"]).runs, Runs::Command);
        assert_eq!(p(&[]).runs, Runs::Stdin);
        assert_eq!(p(&["-"]).runs, Runs::Stdin);
        assert_eq!(p(&["--", "-odd.py"]).runs, Runs::Script("-odd.py".into()));
        assert_eq!(
            p(&["--check-hash-based-pycs", "always", "r.py"]).runs,
            Runs::Script("r.py".into())
        );
        assert!(p(&["-I", "r.py"]).ignores_environment);
        assert!(
            !p(&["r.py", "-B"]).no_write,
            "options after the script are its own"
        );
    }

    #[test]
    fn python_executable_names() {
        for ok in [
            "python",
            "python3",
            "python3.12",
            "python2.7",
            "python3.13t",
            "python3.12d",
            "python3.11 (deleted)",
        ] {
            assert!(is_python_executable_name(OsStr::new(ok)), "{ok}");
        }
        for no in [
            "ipython",
            "python3-config",
            "python3.",
            "pythonw",
            "bash",
            "python3..1",
        ] {
            assert!(!is_python_executable_name(OsStr::new(no)), "{no}");
        }
        assert_eq!(
            strip_deleted(OsStr::new("/srv/r1 (deleted)")),
            (PathBuf::from("/srv/r1"), true)
        );
    }
}
