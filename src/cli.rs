//! The command line, as clap derive types. Parsing only: [`crate::config`] resolves these
//! into an immutable configuration, checking paths and globs once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Find, prove and repair Python bytecode caches that do not match their sources";

const LONG_ABOUT: &str = "\
Python trusts a __pycache__/*.pyc when two header fields (whole-second mtime and size) match \
the source. An edit in the same second, a deploy that preserves mtimes, an unchecked-hash \
cache or a deleted module's leftover .pyc make it run code that is not the source on disk. \
pycguard finds every cache, judges it exactly as the interpreter that wrote it would, and \
reports what the interpreter misses.";

#[derive(Debug, Parser)]
#[command(name = "pycguard", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to colour output
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find every bytecode cache under PATHS and judge it as its interpreter would
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
    Inspect(InspectArgs),

    /// List the Python interpreters found and how many caches under PATHS each can prove
    #[command(long_about = "\
List the Python interpreters pycguard finds (--python PATH, virtualenvs inside PATHS, pyenv \
versions, uv-managed Pythons, python/python3/python3.X on $PATH) with version, magic number \
and cache tag, and how many caches under PATHS each one can prove with `check --deep`.")]
    Interpreters(InterpretersArgs),
}

/// Which interpreters prove caches (`check --deep`, `interpreters`).
#[derive(Debug, Args)]
pub struct PythonArgs {
    /// Use this Python interpreter too, before any found on its own (repeatable)
    #[arg(long = "python", value_name = "PATH")]
    pub pythons: Vec<PathBuf>,
}

/// `check --deep`.
#[derive(Debug, Args)]
pub struct DeepArgs {
    /// Prove every cache the interpreter would run by compiling its source with the interpreter that wrote it and comparing the code
    #[arg(long)]
    pub deep: bool,

    #[command(flatten)]
    pub python: PythonArgs,

    /// With --deep: seconds one file may take before its worker is stopped
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub timeout: f64,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[derive(Debug, Args)]
pub struct InterpretersArgs {
    #[command(flatten)]
    pub walk: WalkArgs,

    #[command(flatten)]
    pub python: PythonArgs,
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

    /// Also find caches under this pycache prefix [default: $PYTHONPYCACHEPREFIX]
    #[arg(long, value_name = "DIR")]
    pub pycache_prefix: Option<PathBuf>,

    /// Threads for the walk [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
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

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Print only the summary line
    #[arg(short, long)]
    pub quiet: bool,

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

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// The pycache prefix the files may live under [default: $PYTHONPYCACHEPREFIX]
    #[arg(long, value_name = "DIR")]
    pub pycache_prefix: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}
