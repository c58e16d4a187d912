//! The command line, as clap derive types. Parsing only: [`crate::settings`] layers these
//! over the config file and the environment and resolves them into one immutable
//! configuration per command, checking paths and globs once. A flag that a config file may
//! also set is an `Option` (or an empty list) here, so that "not given" leaves the file's
//! value in place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Find, prove and repair Python bytecode caches that do not match their sources";

const LONG_ABOUT: &str = "\
Python trusts a __pycache__/*.pyc when two header fields (whole-second mtime and size) match \
the source. An edit in the same second, a deploy that preserves mtimes, an unchecked-hash \
cache or a deleted module's leftover .pyc make it run code that is not the source on disk. \
pycguard finds every cache, judges it exactly as the interpreter that wrote it would, and \
reports what the interpreter misses.";

/// The examples every `--help` ends with (`after_help`), one constant per command.
pub mod examples {
    pub const PYCGUARD: &str = "\
Examples:
  pycguard check               judge every cache under the current directory
  pycguard fix                 prove each cache, then repair exactly what is wrong
  pycguard completions bash    shell completions (also zsh, fish)";

    pub const CHECK: &str = "\
Examples:
  pycguard check                     judge every cache under the current directory
  pycguard check --deep src/         also prove each cache against its source
  pycguard check -q --format github  in CI: one annotation per problem";

    pub const INSPECT: &str = "\
Examples:
  pycguard inspect app/__pycache__/mod.cpython-312.pyc
  pycguard inspect --output-format json app/old.pyc";

    pub const INTERPRETERS: &str = "\
Examples:
  pycguard interpreters                         the Pythons found, what each proves
  pycguard interpreters --python /opt/py39/bin/python   add one not found on its own";

    pub const CLEAN: &str = "\
Examples:
  pycguard clean --dry-run          list every cache and directory it would remove
  pycguard clean --tag cpython-39   remove the caches a removed Python 3.9 left
  pycguard clean --state orphan,ghost --debris";

    pub const FIX: &str = "\
Examples:
  pycguard fix                       prove, then repair exactly what is wrong
  pycguard fix --dry-run /srv/app    list each repair; change nothing
  sudo pycguard fix -q /opt/app      repair a service's tree; print only what failed";

    pub const COMPILE: &str = "\
Examples:
  pycguard compile                                       what is missing or not fresh
  pycguard compile --invalidation-mode checked-hash -f   the interpreter checks edits
  pycguard compile --python /usr/bin/python3.12 -O src/";

    pub const COMPLETIONS: &str = "\
Examples:
  pycguard completions bash > ~/.local/share/bash-completion/completions/pycguard
  pycguard completions zsh > ~/.zfunc/_pycguard
  pycguard completions fish > ~/.config/fish/completions/pycguard.fish";

    pub const MAN: &str = "\
Examples:
  pycguard man | man -l -
  pycguard man > /usr/local/share/man/man1/pycguard.1
  pycguard man check > /usr/local/share/man/man1/pycguard-check.1";
    pub const WHY: &str = "\
Examples:
  pycguard why ingest.rss                           the file and the cache it runs
  pycguard why --python .venv/bin/python app.views  as that interpreter imports it
  pycguard why --path /srv/app -O app               as `python -O /srv/app/main.py` would";

    pub const PS: &str = "\
Examples:
  pycguard ps /opt/app                   processes that may run code older than the tree
  pycguard ps --all /opt/app             every Python process running code from it
  pycguard ps --output-format json /srv  for a script";

    pub const DOCTOR: &str = "\
Examples:
  pycguard doctor                              findings for the current directory
  sudo pycguard doctor --user svc /opt/app     what the service user cannot cache
  pycguard doctor --strict --output-format github   in CI: fail on warnings too";

    pub const WATCH: &str = "\
Examples:
  pycguard watch                       keep the caches under . right while you edit
  pycguard watch src tests             only these trees
  pycguard watch --output-format json  one JSON object per event";

    pub const RUN: &str = "\
Examples:
  pycguard run -- python app.py                     fix, then exec the command
  pycguard run --check --strict -- .venv/bin/uvicorn app:main   refuse to start on a problem
  pycguard run --timeout 10 -- python -m worker     start anyway after 10 s";
}

#[derive(Debug, Parser)]
#[command(name = "pycguard", version, about = ABOUT, long_about = LONG_ABOUT, after_help = examples::PYCGUARD)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Read settings from this file (pycguard.toml, or pyproject.toml's [tool.pycguard]) instead of the one found above the first PATH
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "isolated")]
    pub config: Option<PathBuf>,

    /// Ignore every config file
    #[arg(long, global = true)]
    pub isolated: bool,

    #[command(flatten)]
    pub verbosity: VerbosityArgs,
}

/// `-q`, `-qq`/`--silent`, `-v`: one meaning in every command (see
/// [`crate::output::verbosity`]). Global, so `pycguard -q check` and `pycguard check -q`
/// are the same; a subcommand must not define its own `-q`, `-s` or `-v`.
#[derive(Debug, Args)]
pub struct VerbosityArgs {
    /// Print the problems and nothing else (no summary, no notes, no progress bar); -qq: print nothing
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// Print nothing: the exit status says it all (same as -qq)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub silent: bool,

    /// Also list fresh caches and what was skipped
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every bytecode cache under PATHS and judge it as its interpreter would
    #[command(after_help = examples::CHECK)]
    #[command(long_about = "\
Find every bytecode cache under PATHS (default: .) and judge it as the interpreter that wrote \
it would: __pycache__ caches of every tag and optimisation level, legacy .pyc/.pyo files beside \
sources, and caches under a pycache prefix. Each cache gets one state:

  fresh         matches its source as far as was checked                        (ok)
  stale         does not match; the interpreter will notice and recompile       (warning)
  suspect       header matches but the source changed after the cache was written (warning)
  hidden-stale  proven not to match, yet the interpreter will run it            (error)
  ghost         legacy .pyc whose source was deleted; still imported            (error)
  sourceless    legacy caches in a directory without sources                    (info)
  orphan        a cache no interpreter will ever use                            (warning)
  corrupt       not usable: import fails (error) or it is regenerated (warning)
  unknown       magic number of no known interpreter                            (info)

Exit status: 0 when no cache has error severity, 1 when one does (with --strict: also a \
warning; also when an entry could not be read), 2 on bad usage or an unreadable PATH.")]
    Check(CheckArgs),

    /// Show everything known about cache files: header, source, verdict, code inside
    #[command(after_help = examples::INSPECT)]
    Inspect(InspectArgs),

    /// List the Python interpreters found and how many caches under PATHS each can prove
    #[command(after_help = examples::INTERPRETERS)]
    #[command(long_about = "\
List the Python interpreters pycguard finds (--python PATH, virtualenvs inside PATHS, pyenv \
versions, uv-managed Pythons, python/python3/python3.X on $PATH) with version, magic number \
and cache tag, and how many caches under PATHS each one can prove with `check --deep`.")]
    Interpreters(InterpretersArgs),

    /// Remove bytecode caches (all, some states, or one interpreter's) and tool caches
    #[command(after_help = examples::CLEAN)]
    #[command(long_about = "\
Remove bytecode caches under PATHS (default: .): every cache by default, or only those in the \
given --state, or only one interpreter's (--tag cpython-39: the leftovers of a removed Python). \
Sourceless distributions (legacy .pyc files in a directory without sources) are kept unless \
--state sourceless names them. __pycache__ directories this run emptied are removed; nothing \
else is. Symlinks are never followed.

--debris also removes the tool caches .pytest_cache, .mypy_cache, .ruff_cache, .pytype and \
.pyre (never build outputs, virtual environments or notebook checkpoints).

Exit status: 0 when everything selected was removed, 1 when a removal failed (or an entry \
could not be read), 2 on bad usage.")]
    Clean(CleanArgs),

    /// Repair exactly what is wrong: recompile stale caches, delete ghosts and orphans
    #[command(after_help = examples::FIX)]
    #[command(mut_arg("deep", |a| a.help("Prove every cache against its source (the default for fix; overrides a config file's shallow = true)")))]
    #[command(mut_arg("shallow", |a| a.help("Judge by header only, as the interpreter does (no proof: hidden-stale caches are left)")))]
    #[command(long_about = "\
Check the caches under PATHS (default: .), prove each one the interpreter would run against \
its source (as `check --deep` does: hidden-stale caches are found; proofs are remembered, so a \
second run only hashes; --shallow judges by header only), and repair each by its state: hidden-stale, stale, \
suspect and corrupt caches are recompiled with the interpreter they are for, keeping their \
invalidation mode and optimisation level (deleted when that interpreter is not found, or with \
--delete); ghosts and orphans are deleted; sourceless and unknown caches are left alone unless \
--include names them; fresh caches are never touched. Only bytecode caches are ever written or \
deleted, symlinks are never followed, writes are atomic, and when run as root new caches belong \
to the owner of the source's directory.

Exit status: 0 when everything was repaired, 1 when anything could not be (each is listed with \
its reason), 2 on bad usage.")]
    Fix(FixArgs),

    /// Compile what is missing or not fresh (a pycguard-judged `python -m compileall`)
    #[command(after_help = examples::COMPILE)]
    #[command(long_about = "\
Compile every source under PATHS (default: .) whose cache is missing or not fresh, for each \
interpreter the tree already holds caches for (or each --python; for a tree without caches: the \
virtualenv inside it, else the python3 on PATH, pyenv's shims followed; it says which and why), \
in parallel through long-lived workers. With a pycache prefix in effect (--pycache-prefix, \
$PYTHONPYCACHEPREFIX), Python 3.8+ gets its caches under the prefix, where it reads them, and \
older interpreters in __pycache__. An up-to-date tree compiles nothing and starts no interpreter \
(once pycguard has asked each interpreter on the machine for its cache tag: the answers are \
remembered in its cache directory). --invalidation-mode checked-hash makes the interpreter \
itself verify every later edit (see README).

Exit status: 0 when everything compiled, 1 when anything failed, 2 on bad usage.")]
    Compile(CompileArgs),

    /// Which file `import MODULE` loads and which cache then runs (none of your code runs)
    #[command(after_help = examples::WHY)]
    #[command(long_about = "\
Which file `import MODULE` loads with an interpreter (--python, else the python3 on PATH), and \
which cache it then executes. The interpreter is asked once, isolated (-I -S), for its base \
sys.path, builtin and frozen modules and import suffixes; what site would add (virtualenv, user \
site, site-packages, .pth files, setuptools editable finders, egg-links) is computed by pycguard: \
.pth import lines are listed, never run. The importer's order is then followed component by \
component, and every candidate that loses is listed. The cache the interpreter would load for the \
winning file (its tag, -O level, pycache prefix) is judged and proven as `check --deep` does.

sys.path[0] is the current directory (as for python -c / -m) unless --path gives the script's \
directory. PYTHONPATH, PYTHONSAFEPATH, PYTHONUSERBASE, PYTHONNOUSERSITE, PYTHONOPTIMIZE and \
PYTHONPYCACHEPREFIX are read as the interpreter would read them.

Exit status: 0 when the module is found and its cache (if any) is not of error severity, 1 when \
the cache is (hidden-stale, ghost, corrupt…) or the module is not found, 2 on bad usage.")]
    Why(WhyArgs),

    /// List the Python processes running code from PATHS that may be older than the tree
    #[command(after_help = examples::PS)]
    #[command(long_about = "\
List the Python processes running code from PATHS (default: .) -- their script, -m module, \
working directory or virtualenv lies under a PATH -- whose code may be older than the tree: \
sources or caches under PATHS changed after the process started (by mtime, or ctime for a \
replacement that kept its mtime), or a working directory in a release that a `current` \
symlink no longer points to. Read from /proc only (cmdline, cwd, exe, stat, environ, \
cgroup): nothing of the processes is attached to or run. A start time is known to about \
1 s (the kernel's boot time is whole seconds); files changed within that window of a \
start are counted, not listed.

Exit status: 0 when no process may run old code, 1 when one may, 2 on bad usage.")]
    Ps(PsArgs),

    /// Diagnose the caches, interpreters, environment, service user and processes of PATHS
    #[command(after_help = examples::DOCTOR)]
    #[command(long_about = "\
Diagnose what decides which code Python runs from PATHS (default: .), as findings, each with \
a severity, its evidence and a remedy: the interpreters found and the caches each owns, caches \
of a Python that is not installed, environment variables that change cache behaviour \
(PYTHONDONTWRITEBYTECODE, PYTHONPYCACHEPREFIX, SOURCE_DATE_EPOCH, PYTHONOPTIMIZE, PYTHONPATH), \
caches that are not fresh (proven against their sources, as `check --deep`), sources without \
caches, future mtimes, sources replaced with their mtime kept, and the processes running code \
from PATHS that may be older than the tree (as `ps`).

--user NAME (a service account): every __pycache__ (or pycache-prefix directory) that user \
cannot create or write — so each start of the service compiles those modules again — with the \
measured cost of compiling them (in memory, nothing is written), and caches owned by root in \
directories the user owns. Asked of the kernel as that user (modes, ACLs, read-only mounts), \
never by writing.

Exit status: 0 without error findings, 1 with one (with --strict: also a warning), 2 on bad \
usage.")]
    Doctor(DoctorArgs),

    /// Watch PATHS and repair a cache as soon as its source changes (for edit-reload loops)
    #[command(after_help = examples::WATCH)]
    #[command(long_about = "\
Watch the trees under PATHS (default: .) and, whenever a source changes or is replaced (an \
editor's atomic save, a formatter rewriting or rolling back a file, git checkout), judge and \
prove that source's caches once the writes have settled (50 ms without another event) and \
repair a wrong one exactly as `fix` does: recompiled with the interpreter it is for, in its \
invalidation mode and optimisation level, or deleted when its source is gone. Each repair is \
one line. The trees are first brought in order by one `fix` of PATHS. New directories are \
watched as they appear; VCS directories, --exclude globs and virtual environments are left \
alone as the walk leaves them. Settings come from the config file's fix table.

Runs until Ctrl-C (exit 130) or SIGTERM (exit 143).")]
    Watch(WatchArgs),

    /// Repair the caches a command's interpreter imports, then exec the command
    #[command(after_help = examples::RUN)]
    #[command(long_about = "\
Find the Python interpreter CMD starts, without running it (`python app.py`, `python -m app`, \
a virtualenv's `bin/uvicorn` by its #! line), with the options that decide which caches it \
reads (-O, -I/-E, -X pycache_prefix, $PYTHONOPTIMIZE, $PYTHONPYCACHEPREFIX), and the trees it \
imports from: the script's directory, the current directory (unless it is /) and its \
virtualenv. Then fix (the default) or --check those caches of that interpreter, proving each, \
print one line per problem to stderr, and exec CMD: same process id, exit status and signals.

A problem that cannot be repaired (a stray module with a syntax error) never stops the start \
unless --strict; after --timeout seconds CMD is started anyway, and that is said. A CMD that is \
not a Python program pycguard recognises is started unchecked, with a line saying so.

Exit status: CMD's own, once started; 1 with --strict when a problem remains; 2 on bad usage; \
126 when CMD cannot be executed, 127 when it is not found.")]
    Run(RunArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),

    /// Print the man page (roff), of pycguard or of one of its commands
    #[command(after_help = examples::MAN)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The module, as `import` names it (dotted: ingest.rss)
    #[arg(value_name = "MODULE")]
    pub module: String,

    /// The interpreter that imports it [default: the python3 on PATH]
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// The script's directory, first on sys.path as for `python DIR/script.py` (repeatable) [default: the current directory, as for `python -c` and `-m`]
    #[arg(long = "path", value_name = "DIR")]
    pub paths: Vec<PathBuf>,

    /// The process's working directory [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// The interpreter is started with -O (-OO: twice); the higher of this and $PYTHONOPTIMIZE counts
    #[arg(short = 'O', action = clap::ArgAction::Count)]
    pub optimize: u8,

    /// The pycache prefix in effect [default: $PYTHONPYCACHEPREFIX]
    #[arg(long, value_name = "DIR")]
    pub pycache_prefix: Option<PathBuf>,

    /// Seconds the proof of the cache may take [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,

    #[command(flatten)]
    pub cache: CacheArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Check what this user (a service account) can cache: unwritable cache directories, root-owned caches
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Exit 1 on warnings too
    #[arg(long)]
    pub strict: bool,

    /// Seconds one file may take before its worker is stopped [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// List every process running code from PATHS, not only those that may run old code
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (pycguard-COMMAND(1)) [default: pycguard(1)]
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// How written caches are invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InvalidationMode {
    Timestamp,
    CheckedHash,
    UncheckedHash,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub deep: DeepArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Delete caches that would be recompiled instead
    #[arg(long)]
    pub delete: bool,

    /// Also delete these states, left alone by default (comma-separated: sourceless,unknown)
    #[arg(long, value_name = "STATES", value_delimiter = ',')]
    pub include: Vec<String>,

    /// Write recompiled caches in this mode instead of the one they had
    #[arg(long, value_enum, value_name = "MODE")]
    pub invalidation_mode: Option<InvalidationMode>,

    /// Print every action it would take; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Repair the caches before starting CMD (the default)
    #[arg(long, conflicts_with = "check")]
    pub fix: bool,

    /// Only report them
    #[arg(long)]
    pub check: bool,

    /// Do not start CMD while a problem remains that could not be repaired (exit 1)
    #[arg(long)]
    pub strict: bool,

    /// Start CMD anyway after this many seconds (with --strict: exit 1 instead) [default: 30]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,

    #[command(flatten)]
    pub cache: CacheArgs,

    /// The command to run, and its arguments (after --)
    #[arg(
        value_name = "CMD",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,

    /// Seconds one file may take to prove or compile before its worker is stopped [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,

    /// Delete caches that would be recompiled instead
    #[arg(long)]
    pub delete: bool,

    /// Write recompiled caches in this mode instead of the one they had
    #[arg(long, value_enum, value_name = "MODE")]
    pub invalidation_mode: Option<InvalidationMode>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,

    /// Invalidation mode [default: checked-hash when SOURCE_DATE_EPOCH is set, else timestamp]
    #[arg(long, value_enum, value_name = "MODE")]
    pub invalidation_mode: Option<InvalidationMode>,

    /// Optimisation: -O writes .opt-1 caches, -OO .opt-2 (like python -O/-OO)
    #[arg(short = 'O', action = clap::ArgAction::Count)]
    pub optimize: u8,

    /// Compile every source, fresh or not
    #[arg(short, long)]
    pub force: bool,

    /// Seconds one file may take before its worker is stopped [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// List what would be compiled; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    /// Only caches in these states (comma-separated: stale,orphan,ghost,...)
    #[arg(long, value_name = "STATES", value_delimiter = ',')]
    pub state: Vec<String>,

    /// Only caches of these interpreters (comma-separated cache tags: cpython-39,pypy310)
    #[arg(long, value_name = "TAGS", value_delimiter = ',')]
    pub tag: Vec<String>,

    /// Also remove tool caches (.pytest_cache, .mypy_cache, .ruff_cache, .pytype, .pyre)
    #[arg(long)]
    pub debris: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// List what would be removed; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// Which interpreters prove caches (`check --deep`, `interpreters`).
#[derive(Debug, Args)]
pub struct PythonArgs {
    /// Use this Python interpreter too, before any found on its own (repeatable)
    #[arg(long = "python", value_name = "PATH")]
    pub pythons: Vec<PathBuf>,
}

/// `check --deep`, `fix` (which proves unless `--shallow`).
#[derive(Debug, Args)]
pub struct DeepArgs {
    /// Prove every cache the interpreter would run by compiling its source with the interpreter that wrote it and comparing the code
    #[arg(long)]
    pub deep: bool,

    /// Judge by header only, as the interpreter does (no proof: hidden-stale caches are left); the default for check unless a config file sets deep = true
    #[arg(long, conflicts_with = "deep")]
    pub shallow: bool,

    #[command(flatten)]
    pub python: PythonArgs,

    /// With --deep: seconds one file may take before its worker is stopped [default: 60]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<f64>,
}

/// `--output-format` (every command).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format: human, json, json-lines (one object per cache or action), github (Actions annotations) [default: human]
    #[arg(
        long = "output-format",
        alias = "format",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: Option<Format>,
}

/// The longest `--timeout` (a year): any longer and deadlines computed from it could
/// overflow the clock.
pub const MAX_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Is this a usable `--timeout` (also checked for a config file's `timeout`)?
pub fn valid_timeout(secs: f64) -> bool {
    secs > 0.0 && secs <= MAX_TIMEOUT_SECS
}

/// What a usable `--timeout` is, for messages.
pub const TIMEOUT_RANGE: &str = "a number of seconds greater than 0 and at most 31536000 (a year)";

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if valid_timeout(v) => Ok(v),
        _ => Err(format!("{s:?} is not {TIMEOUT_RANGE}")),
    }
}

/// The most threads (and workers per interpreter) `--jobs` may ask for.
pub const MAX_JOBS: usize = 1024;

/// What a usable `--jobs` is, for messages.
pub const JOBS_RANGE: &str = "a number from 1 to 1024";

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not {JOBS_RANGE}")),
    }
}

#[derive(Debug, Args)]
pub struct InterpretersArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Which files to look at.
#[derive(Debug, Args)]
pub struct WalkArgs {
    /// Files or directories to scan
    #[arg(value_name = "PATHS", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Skip files and directories matching GLOB (name or path relative to PATH; repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// The pycache prefix in effect: its caches are found and judged, and Python 3.8+ reads only those (`compile` writes there) [default: $PYTHONPYCACHEPREFIX]
    #[arg(long, value_name = "DIR")]
    pub pycache_prefix: Option<PathBuf>,

    /// Also walk virtual environments (directories holding pyvenv.cfg), .tox, .nox and node_modules found beneath PATHS
    #[arg(long)]
    pub include_venvs: bool,

    /// Threads for the walk [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,

    #[command(flatten)]
    pub cache: CacheArgs,
}

/// pycguard's own cache (never inside the scanned tree).
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Do not read or write pycguard's cache directory
    #[arg(long)]
    pub no_cache: bool,

    /// pycguard's cache directory [default: $PYCGUARD_CACHE_DIR, else $XDG_CACHE_HOME/pycguard, else ~/.cache/pycguard]
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Exit 1 on warnings too
    #[arg(long, conflicts_with = "exit_zero")]
    pub strict: bool,

    /// Always exit 0 unless the command line is wrong
    #[arg(long)]
    pub exit_zero: bool,

    #[command(flatten)]
    pub deep: DeepArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Cache files to inspect
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// The pycache prefix the files may live under [default: $PYTHONPYCACHEPREFIX]
    #[arg(long, value_name = "DIR")]
    pub pycache_prefix: Option<PathBuf>,
}

pub use crate::output::Format;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}
