//! Settings: one immutable configuration per command, resolved once from four layers —
//! defaults < config file ([`file`]) < environment ([`Environment`]) < command line.
//!
//! Everything after this point takes a `&…Config` and never looks at the command line,
//! the config file or the environment again: paths are checked to exist and made
//! absolute, globs compiled, the pycache prefix and pycguard's cache directory decided,
//! the thread count fixed, state and tag names checked.
//!
//! Where the layers meet:
//! - a flag given on the command line wins; a list flag (`--exclude`, `--python`,
//!   `--state`, `--tag`, `--include`) given replaces the file's list;
//! - `PYTHONPYCACHEPREFIX` overrides the file's `pycache-prefix`, `PYCGUARD_CACHE_DIR`
//!   its `cache-dir` (where the cache is; whether there is one, `no-cache`, is the
//!   file's or the flags' to say);
//! - `SOURCE_DATE_EPOCH` changes the default invalidation mode to checked-hash, as it
//!   does for `py_compile` (a default, so a file's `invalidation-mode` still decides);
//! - a boolean a file sets is turned back by its opposite flag where one exists
//!   (`check --shallow` after `deep = true`, `fix --deep` after `shallow = true`,
//!   `--exit-zero` after `strict = true` and back, `--cache-dir` after `no-cache`), else
//!   by `--isolated`.

pub mod environment;
pub mod file;
pub mod run;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSetBuilder};

use crate::actions::clean::CleanOptions;
use crate::actions::compile::CompileOptions;
use crate::actions::fix::FixOptions;
use crate::actions::recompile::{Mode, WriteOptions};
use crate::cli::{
    CacheArgs, CheckArgs, CleanArgs, Cli, ColorWhen, Command, CompileArgs, DeepArgs, DoctorArgs,
    FixArgs, Format, InspectArgs, InterpretersArgs, InvalidationMode, OutputArgs, PsArgs, WalkArgs,
    WhyArgs,
};
use clap::ValueEnum;

use crate::escape;
use crate::exit::Policy;
use crate::interpreters::Discovery;
use crate::layout::lexically_absolute;
use crate::output::verbosity::Verbosity;
use crate::prove::ProveConfig;
use crate::scan::TagError;
use crate::verdict::State;
use crate::walk::{Engine, Root, UnknownEngine, WalkOptions};
pub use environment::Environment;
use file::{CommandName, ConfigFile, FileError, Layer, Lookup};
pub use run::RunConfig;
pub use watch::WatchConfig;

/// The default `--timeout`, in seconds.
const DEFAULT_TIMEOUT_SECS: f64 = 60.0;

/// Settings that cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    WalkEngine(#[from] UnknownEngine),
    #[error("cannot read {}: {}", escape::path(.path), crate::read::io_message(.err))]
    UnreadableRoot { path: PathBuf, err: std::io::Error },
    #[error("invalid --exclude glob {glob:?}")]
    BadGlob {
        glob: String,
        #[source]
        err: globset::Error,
    },
    #[error("{} is {}: give a directory, a cache file (.pyc, .pyo) or a source file (.py)", escape::path(.path), .what)]
    NotScannable { path: PathBuf, what: &'static str },
    #[error("cannot determine the current directory")]
    NoCurrentDir(#[source] std::io::Error),
    #[error("unknown state {0:?} (states: fresh, stale, suspect, hidden-stale, ghost, sourceless, orphan, corrupt, unknown)")]
    UnknownState(String),
    #[error("--tag {tag:?}")]
    BadTag {
        tag: String,
        #[source]
        err: TagError,
    },
    #[error("-O may be given at most twice (-OO)")]
    TooOptimized,
    #[error("{flag} {}: not a directory", escape::path(.path))]
    NotADirectory { flag: &'static str, path: PathBuf },
    #[error("--output-format {format}: {command} writes {supported}")]
    UnsupportedFormat {
        command: &'static str,
        format: String,
        supported: String,
    },
    #[error("--user {0:?}: no such user")]
    UnknownUser(String),
    /// A filter the command can never match: an error, not a run that does nothing.
    #[error("{flag} {state}: {why}")]
    CannotMatch {
        flag: &'static str,
        state: &'static str,
        why: &'static str,
    },
}

/// A resolved command line: the colour choice and the command's configuration.
#[derive(Debug)]
pub struct Settings {
    pub color: ColorWhen,
    pub command: CommandConfig,
}

/// One command's configuration.
#[derive(Debug)]
pub enum CommandConfig {
    Check(CheckConfig),
    Fix(FixConfig),
    Clean(CleanConfig),
    Compile(CompileConfig),
    Inspect(InspectConfig),
    Interpreters(InterpretersConfig),
    Why(WhyConfig),
    Ps(PsConfig),
    /// The findings are printed in the `Format`; `-q` keeps the warnings and errors,
    /// `-qq` prints nothing.
    Doctor(DoctorConfig, Format, Verbosity),
    Watch(WatchConfig),
    Run(RunConfig),
    /// `pycguard completions SHELL`.
    Completions(clap_complete::Shell),
    /// `pycguard man [COMMAND]`.
    Man(Option<String>),
}

pub use crate::scan::ScanConfig;

/// `pycguard check`.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub verbosity: Verbosity,
    pub policy: Policy,
    /// Prove the caches (`--deep`).
    pub deep: bool,
    pub discovery: Discovery,
    pub prove: ProveConfig,
}

/// `pycguard fix`.
#[derive(Clone, Debug)]
pub struct FixConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub verbosity: Verbosity,
    /// Prove before repairing (the default; `--shallow` turns it off).
    pub prove_first: bool,
    pub discovery: Discovery,
    pub prove: ProveConfig,
    pub options: FixOptions,
    pub write: WriteOptions,
}

/// `pycguard clean`.
#[derive(Clone, Debug)]
pub struct CleanConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub verbosity: Verbosity,
    /// List every removed path (`--verbose`, and always in a dry run).
    pub list: bool,
    pub options: CleanOptions,
}

/// `pycguard compile`.
#[derive(Clone, Debug)]
pub struct CompileConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub verbosity: Verbosity,
    pub discovery: Discovery,
    pub options: CompileOptions,
    pub write: WriteOptions,
}

/// `pycguard inspect`.
#[derive(Clone, Debug)]
pub struct InspectConfig {
    /// Each file as given, and lexically absolute.
    pub files: Vec<(PathBuf, PathBuf)>,
    /// The absolute pycache prefix the files may live under.
    pub prefix: Option<PathBuf>,
    pub format: Format,
    pub verbosity: Verbosity,
}

/// `pycguard interpreters`.
#[derive(Clone, Debug)]
pub struct InterpretersConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub verbosity: Verbosity,
    pub discovery: Discovery,
}

/// `pycguard why`.
#[derive(Clone, Debug)]
pub struct WhyConfig {
    pub module: String,
    /// `--python` (else the file's first `python`); `None`: the `python3` on `PATH`.
    pub python: Option<PathBuf>,
    /// Where interpreters are found (the `python3` on `PATH`), and the probe memo.
    pub discovery: Discovery,
    /// How the interpreter would be started (its executable is filled in by the command).
    pub search: crate::why::Search,
    pub prove: ProveConfig,
    pub format: Format,
    /// `-qq`: nothing on stdout.
    pub verbosity: Verbosity,
}

/// `pycguard ps`.
#[derive(Clone, Debug)]
pub struct PsConfig {
    pub scan: ScanConfig,
    pub format: Format,
    /// `-qq`: nothing on stdout.
    pub verbosity: Verbosity,
    /// List every matching process, not only those that may run old code.
    pub all: bool,
    pub discovery: Discovery,
}

pub use crate::doctor::{CacheEnvironment, DoctorConfig};

/// Resolve a parsed command line against the config file and the environment.
pub fn resolve(cli: Cli, env: &Environment) -> Result<Settings, SettingsError> {
    let first_path = match &cli.command {
        Command::Check(a) => first(&a.walk.paths),
        Command::Fix(a) => first(&a.walk.paths),
        Command::Clean(a) => first(&a.walk.paths),
        Command::Compile(a) => first(&a.walk.paths),
        Command::Interpreters(a) => first(&a.walk.paths),
        Command::Inspect(a) => first(&a.files),
        Command::Why(a) => a.cwd.clone().unwrap_or_else(|| PathBuf::from(".")),
        Command::Ps(a) => first(&a.walk.paths),
        Command::Doctor(a) => first(&a.walk.paths),
        Command::Watch(a) => first(&a.walk.paths),
        Command::Run(_) => PathBuf::from("."),
        // They read no file: nothing of the project's matters to them.
        Command::Completions(args) => {
            return Ok(Settings {
                color: cli.color,
                command: CommandConfig::Completions(args.shell),
            })
        }
        Command::Man(args) => {
            return Ok(Settings {
                color: cli.color,
                command: CommandConfig::Man(args.command.clone()),
            })
        }
    };
    let file = load_config(cli.config.as_deref(), cli.isolated, &first_path, env)?;
    let v = &cli.verbosity;
    let verbosity = Verbosity::from_flags(v.quiet, v.silent, v.verbose);
    let command = match &cli.command {
        Command::Check(args) => CommandConfig::Check(check(args, &file, env, verbosity)?),
        Command::Fix(args) => CommandConfig::Fix(fix(args, &file, env, verbosity)?),
        Command::Clean(args) => CommandConfig::Clean(clean(args, &file, env, verbosity)?),
        Command::Compile(args) => CommandConfig::Compile(compile(args, &file, env, verbosity)?),
        Command::Inspect(args) => CommandConfig::Inspect(inspect(args, &file, env, verbosity)?),
        Command::Interpreters(args) => {
            CommandConfig::Interpreters(interpreters(args, &file, env, verbosity)?)
        }
        Command::Why(args) => CommandConfig::Why(why(args, &file, env, verbosity)?),
        Command::Ps(args) => CommandConfig::Ps(ps(args, &file, env, verbosity)?),
        Command::Doctor(args) => {
            let (config, format) = doctor(args, &file, env)?;
            CommandConfig::Doctor(config, format, verbosity)
        }
        Command::Watch(args) => CommandConfig::Watch(watch::resolve(args, &file, env, verbosity)?),
        Command::Run(args) => CommandConfig::Run(run::resolve(args, &file, env)?),
        Command::Completions(_) | Command::Man(_) => unreachable!("returned above"),
    };
    Ok(Settings {
        color: cli.color,
        command,
    })
}

fn first(paths: &[PathBuf]) -> PathBuf {
    paths.first().cloned().unwrap_or_else(|| PathBuf::from("."))
}

/// The config file: `--config`, none with `--isolated`, else the closest at or above
/// the first PATH (its directory, for a file).
fn load_config(
    flag: Option<&Path>,
    isolated: bool,
    first_path: &Path,
    env: &Environment,
) -> Result<ConfigFile, SettingsError> {
    let absolute = |p: &Path| -> Result<PathBuf, SettingsError> {
        if p.is_absolute() {
            Ok(lexically_absolute(Path::new("/"), p))
        } else {
            let cwd = env.cwd().map_err(SettingsError::NoCurrentDir)?;
            Ok(lexically_absolute(cwd, p))
        }
    };
    if isolated {
        return Ok(file::load(Lookup::None)?);
    }
    if let Some(path) = flag {
        return Ok(file::load(Lookup::File(&absolute(path)?))?);
    }
    // Without a current directory a relative PATH cannot be walked either; that error
    // comes when the roots are resolved.
    let Ok(start) = absolute(first_path) else {
        return Ok(ConfigFile::default());
    };
    let dir = if std::fs::metadata(&start).is_ok_and(|m| m.is_dir()) {
        start
    } else {
        start.parent().map_or(start.clone(), Path::to_path_buf)
    };
    Ok(file::load(Lookup::Above(&dir))?)
}

fn format_of(args: &OutputArgs, layer: &Layer) -> Format {
    args.format
        .or(layer.output_format.map(|c| c.0))
        .unwrap_or_default()
}

/// The output format of a command that writes only some of them (`why` answers with one
/// document, `watch` writes a stream of events): another one is a usage error, not a
/// silently different output.
fn format_among(
    args: &OutputArgs,
    layer: &Layer,
    command: &'static str,
    supported: &'static [Format],
) -> Result<Format, SettingsError> {
    let format = format_of(args, layer);
    if supported.contains(&format) {
        Ok(format)
    } else {
        Err(SettingsError::UnsupportedFormat {
            command,
            format: format
                .to_possible_value()
                .map_or_else(String::new, |v| v.get_name().to_owned()),
            supported: supported
                .iter()
                .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_owned()))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

fn timeout_of(flag: Option<f64>, layer: &Layer) -> Duration {
    let secs = flag
        .or(layer.timeout.map(|t| t.0))
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Duration::from_secs_f64(secs)
}

/// The default invalidation mode of written caches: checked-hash when
/// `SOURCE_DATE_EPOCH` is set, else timestamp (`py_compile`'s rule).
fn default_mode(env: &Environment) -> Mode {
    if env.source_date_epoch {
        Mode::CheckedHash
    } else {
        Mode::Timestamp
    }
}

fn mode_of(m: InvalidationMode) -> Mode {
    match m {
        InvalidationMode::Timestamp => Mode::Timestamp,
        InvalidationMode::CheckedHash => Mode::CheckedHash,
        InvalidationMode::UncheckedHash => Mode::UncheckedHash,
    }
}

fn mode_flag(flag: Option<InvalidationMode>, layer: &Layer) -> Option<Mode> {
    flag.or(layer.invalidation_mode.map(|c| c.0)).map(mode_of)
}

/// `--python` (relative paths are resolved by discovery against the current directory),
/// else the file's `python` (already absolute).
fn discovery_of(
    pythons: &[PathBuf],
    layer: &Layer,
    scan: &ScanConfig,
    env: &Environment,
) -> Discovery {
    Discovery {
        pythons: if pythons.is_empty() {
            layer.python.clone().unwrap_or_default()
        } else {
            pythons.to_vec()
        },
        roots: scan.roots.iter().map(|r| r.path.clone()).collect(),
        cache_dir: scan.cache_dir.clone(),
        search: env.search_path(),
    }
}

fn prove_of(scan: &ScanConfig, timeout: Duration, verbosity: Verbosity) -> ProveConfig {
    ProveConfig {
        workers: scan.walk.threads,
        timeout,
        cache_dir: scan.cache_dir.clone(),
        progress: verbosity.normal(),
    }
}

fn write_of(scan: &ScanConfig, timeout: Duration, env: &Environment) -> WriteOptions {
    WriteOptions {
        workers: scan.walk.threads,
        timeout,
        cwd: env.cwd_or_root(),
        progress: indicatif::ProgressBar::hidden(),
    }
}

fn check(
    args: &CheckArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<CheckConfig, SettingsError> {
    let layer = file.layer(CommandName::Check);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    let file_bool = |b: &Option<toml::Spanned<bool>>| b.as_ref().is_some_and(|s| *s.get_ref());
    let policy = if args.strict {
        Policy {
            strict: true,
            exit_zero: false,
        }
    } else if args.exit_zero {
        Policy {
            strict: false,
            exit_zero: true,
        }
    } else {
        Policy {
            strict: file_bool(&layer.strict),
            exit_zero: file_bool(&layer.exit_zero),
        }
    };
    let deep = proving(&args.deep, &layer, false);
    let timeout = timeout_of(args.deep.timeout, &layer);
    Ok(CheckConfig {
        format: format_of(&args.output, &layer),
        verbosity,
        policy,
        deep,
        discovery: discovery_of(&args.deep.python.pythons, &layer, &scan, env),
        prove: prove_of(&scan, timeout, verbosity),
        scan,
    })
}

/// Does the command prove (`--deep`, `--shallow`, the file's `deep`/`shallow`, else
/// `default`)?
fn proving(args: &DeepArgs, layer: &Layer, default: bool) -> bool {
    if args.deep {
        return true;
    }
    if args.shallow {
        return false;
    }
    match (&layer.deep, &layer.shallow) {
        (Some(deep), _) => *deep.get_ref(),
        (None, Some(shallow)) => !*shallow.get_ref(),
        (None, None) => default,
    }
}

fn states_of(
    names: &[String],
    layer: Option<&Vec<file::StateName>>,
) -> Result<Option<Vec<State>>, SettingsError> {
    if names.is_empty() {
        return Ok(layer.map(|list| list.iter().map(|s| s.0).collect()));
    }
    names
        .iter()
        .map(|n| State::from_name(n.trim()).ok_or_else(|| SettingsError::UnknownState(n.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn fix(
    args: &FixArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<FixConfig, SettingsError> {
    let layer = file.layer(CommandName::Fix);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    let timeout = timeout_of(args.deep.timeout, &layer);
    let include = states_of(&args.include, layer.include.as_ref())?.unwrap_or_default();
    if let Some(state) = include
        .iter()
        .find(|s| !matches!(s, State::Sourceless | State::Unknown))
    {
        return Err(SettingsError::CannotMatch {
            flag: "--include",
            state: state.name(),
            why: if *state == State::Fresh {
                "fix never touches a fresh cache (--include takes sourceless or unknown)"
            } else {
                "fix already repairs these (--include takes the states it leaves alone: sourceless, unknown)"
            },
        });
    }
    let options = FixOptions {
        delete: args.delete || layer.delete == Some(true),
        include,
        mode: mode_flag(args.invalidation_mode, &layer),
        default_mode: default_mode(env),
        dry_run: args.dry_run,
    };
    Ok(FixConfig {
        format: format_of(&args.output, &layer),
        verbosity,
        // Proving is the default: a fix that leaves hidden-stale code is not a fix. The
        // proofs are remembered, so a second run only hashes.
        prove_first: proving(&args.deep, &layer, true),
        discovery: discovery_of(&args.deep.python.pythons, &layer, &scan, env),
        prove: prove_of(&scan, timeout, verbosity),
        write: write_of(&scan, timeout, env),
        options,
        scan,
    })
}

fn clean(
    args: &CleanArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<CleanConfig, SettingsError> {
    let layer = file.layer(CommandName::Clean);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    // An empty `--tag ""` is checked (and refused), not dropped: dropped, it would leave
    // every cache selected.
    let given: Vec<String> = args.tag.iter().map(|t| t.trim().to_owned()).collect();
    let tags = if given.is_empty() {
        layer
            .tag
            .as_ref()
            .map(|list| list.iter().map(|t| t.0.clone()).collect())
            .unwrap_or_default()
    } else {
        for tag in &given {
            crate::scan::check_tag(tag).map_err(|err| SettingsError::BadTag {
                tag: tag.clone(),
                err,
            })?;
        }
        given
    };
    let states = states_of(&args.state, layer.state.as_ref())?;
    if states
        .as_deref()
        .unwrap_or_default()
        .contains(&State::HiddenStale)
    {
        return Err(SettingsError::CannotMatch {
            flag: "--state",
            state: "hidden-stale",
            why: "clean judges caches by their header, as the interpreter does, and so never finds one; `pycguard fix` proves each cache and repairs those",
        });
    }
    Ok(CleanConfig {
        format: format_of(&args.output, &layer),
        verbosity,
        list: verbosity.verbose() || args.dry_run,
        options: CleanOptions {
            states,
            tags,
            debris: args.debris || layer.debris == Some(true),
            dry_run: args.dry_run,
            progress: indicatif::ProgressBar::hidden(),
        },
        scan,
    })
}

fn compile(
    args: &CompileArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<CompileConfig, SettingsError> {
    let layer = file.layer(CommandName::Compile);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    if args.optimize > 2 {
        return Err(SettingsError::TooOptimized);
    }
    let timeout = timeout_of(args.timeout, &layer);
    let asked = mode_flag(args.invalidation_mode, &layer);
    let options = CompileOptions {
        levels: vec![args.optimize],
        mode: asked.unwrap_or_else(|| default_mode(env)),
        // A mode asked for converts the fresh caches of another mode (else it would
        // convert nothing without --force).
        convert: asked.is_some(),
        force: args.force,
        dry_run: args.dry_run,
        prefix: scan.walk.pycache_prefix.clone(),
    };
    Ok(CompileConfig {
        format: format_of(&args.output, &layer),
        verbosity,
        discovery: discovery_of(&args.python.pythons, &layer, &scan, env),
        write: write_of(&scan, timeout, env),
        options,
        scan,
    })
}

fn inspect(
    args: &InspectArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<InspectConfig, SettingsError> {
    let layer = file.layer(CommandName::Inspect);
    let cwd = env.cwd().map_err(SettingsError::NoCurrentDir)?;
    Ok(InspectConfig {
        files: args
            .files
            .iter()
            .map(|f| (f.clone(), lexically_absolute(cwd, f)))
            .collect(),
        prefix: pycache_prefix(args.pycache_prefix.as_deref(), &layer, env, cwd),
        format: format_of(&args.output, &layer),
        verbosity,
    })
}

fn interpreters(
    args: &InterpretersArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<InterpretersConfig, SettingsError> {
    let layer = file.layer(CommandName::Interpreters);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    Ok(InterpretersConfig {
        format: format_of(&args.output, &layer),
        verbosity,
        discovery: discovery_of(&args.python.pythons, &layer, &scan, env),
        scan,
    })
}

fn why(
    args: &WhyArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<WhyConfig, SettingsError> {
    let layer = file.layer(CommandName::Why);
    let here = env.cwd().map_err(SettingsError::NoCurrentDir)?;
    let cwd = match &args.cwd {
        Some(dir) => {
            let dir = lexically_absolute(here, dir);
            if !std::fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
                return Err(SettingsError::NotADirectory {
                    flag: "--cwd",
                    path: dir,
                });
            }
            dir
        }
        None => here.clone(),
    };
    let path0 = if args.paths.is_empty() {
        vec![cwd.clone()]
    } else {
        // A script path is relative to the process's working directory.
        args.paths
            .iter()
            .map(|p| lexically_absolute(&cwd, p))
            .collect()
    };
    let pythonpath = env
        .python_path
        .as_ref()
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    let user_base = env
        .python_user_base
        .clone()
        .or_else(|| env.home.as_ref().map(|h| h.join(".local")));
    let cache = cache_dir(&args.cache, &layer, env, here);
    let timeout = timeout_of(args.timeout, &layer);
    let python = args
        .python
        .clone()
        .or_else(|| layer.python.as_ref().and_then(|l| l.first().cloned()));
    Ok(WhyConfig {
        verbosity,
        module: args.module.clone(),
        discovery: Discovery {
            pythons: python.iter().cloned().collect(),
            roots: Vec::new(),
            cache_dir: cache.clone(),
            search: env.search_path(),
        },
        python,
        search: crate::why::Search {
            executable: None,
            path0,
            cwd,
            pythonpath,
            user_base,
            no_user_site: env.python_no_user_site,
            safe_path: env.python_safe_path,
            optimize: args.optimize.max(env.python_optimize),
            pycache_prefix: pycache_prefix(args.pycache_prefix.as_deref(), &layer, env, here),
        },
        prove: ProveConfig {
            workers: 1,
            timeout,
            cache_dir: cache,
            progress: false,
        },
        format: format_among(&args.output, &layer, "why", &[Format::Human, Format::Json])?,
    })
}

/// `ps` reads the shared settings and `[check]`'s table (it has none of its own).
fn ps(
    args: &PsArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: Verbosity,
) -> Result<PsConfig, SettingsError> {
    let layer = file.layer(CommandName::Check);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    Ok(PsConfig {
        verbosity,
        format: format_of(&args.output, &layer),
        all: args.all,
        discovery: discovery_of(&args.python.pythons, &layer, &scan, env),
        scan,
    })
}

/// `doctor` reads the shared settings and `[check]`'s table (it has none of its own).
fn doctor(
    args: &DoctorArgs,
    file: &ConfigFile,
    env: &Environment,
) -> Result<(DoctorConfig, Format), SettingsError> {
    let layer = file.layer(CommandName::Check);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    let cwd = env.cwd().map_err(SettingsError::NoCurrentDir)?.clone();
    let user = match &args.user {
        None => None,
        Some(name) => {
            let found = nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| SettingsError::UnknownUser(name.clone()))?;
            Some((name.clone(), found.uid.as_raw()))
        }
    };
    // PYTHONOPTIMIZE: an integer is that many -O, any other non-empty value one.
    let optimize_level = env.python_optimize;
    let timeout = timeout_of(args.timeout, &layer);
    let format = format_of(&args.output, &layer);
    let config = DoctorConfig {
        policy: Policy {
            strict: args.strict,
            exit_zero: false,
        },
        discovery: discovery_of(&args.python.pythons, &layer, &scan, env),
        prove: prove_of(&scan, timeout, crate::output::verbosity::Verbosity::Quiet),
        user,
        environment: CacheEnvironment {
            dont_write_bytecode: env.python_dont_write_bytecode,
            pycache_prefix: env
                .pycache_prefix
                .as_ref()
                .map(|p| lexically_absolute(&cwd, p)),
            source_date_epoch: env.source_date_epoch,
            optimize: env.python_optimize_raw.clone(),
            python_path: env.python_path.clone(),
        },
        optimize_level,
        cwd,
        timeout,
        scan,
    };
    Ok((config, format))
}

impl ScanConfig {
    fn resolve(
        args: &WalkArgs,
        layer: &Layer,
        env: &Environment,
    ) -> Result<ScanConfig, SettingsError> {
        let cwd = env.cwd().map_err(SettingsError::NoCurrentDir)?;
        let roots = args
            .paths
            .iter()
            .map(|path| root(path, cwd))
            .collect::<Result<Vec<_>, _>>()?;
        let excludes: Vec<String> = if args.exclude.is_empty() {
            layer
                .exclude
                .as_ref()
                .map(|list| list.iter().map(|g| g.0.clone()).collect())
                .unwrap_or_default()
        } else {
            args.exclude.clone()
        };
        let mut globs = GlobSetBuilder::new();
        for glob in &excludes {
            globs.add(Glob::new(glob).map_err(|err| SettingsError::BadGlob {
                glob: glob.clone(),
                err,
            })?);
        }
        let excludes = globs.build().map_err(|err| SettingsError::BadGlob {
            glob: excludes.join(" "),
            err,
        })?;
        let threads = args
            .jobs
            .or(layer.jobs.map(|j| j.0))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        Ok(ScanConfig {
            roots,
            walk: WalkOptions {
                threads,
                excludes,
                pycache_prefix: pycache_prefix(args.pycache_prefix.as_deref(), layer, env, cwd),
                report_debris: false,
                report_sources: false,
                include_envs: args.include_venvs || layer.include_venvs == Some(true),
                engine: Engine::from_setting(env.walk_engine.as_deref())?,
                interrupt: crate::signals::interrupt_flag(),
            },
            cache_dir: cache_dir(&args.cache, layer, env, cwd),
        })
    }
}

/// One PATH argument, checked: stat only (never an open: a FIFO given as PATH cannot
/// block), a directory or a file named like a cache or a source.
fn root(path: &Path, cwd: &Path) -> Result<Root, SettingsError> {
    let meta = std::fs::metadata(path).map_err(|err| SettingsError::UnreadableRoot {
        path: path.to_path_buf(),
        err,
    })?;
    if !meta.is_dir() && !names_a_cache_or_source(path) {
        use std::os::unix::fs::MetadataExt;
        return Err(SettingsError::NotScannable {
            path: path.to_path_buf(),
            what: match crate::read::FileKind::from_mode(meta.mode()) {
                crate::read::FileKind::Regular => "a file that is neither a cache nor a source",
                kind => kind.describe(),
            },
        });
    }
    let lexical = lexically_absolute(cwd, path);
    let mut absolute_forms = vec![lexical.clone()];
    if let Ok(real) = std::fs::canonicalize(path) {
        if real != lexical {
            absolute_forms.push(real);
        }
    }
    Ok(Root {
        path: path.to_path_buf(),
        absolute_forms,
    })
}

/// Can a file of this name be a cache or a source (a PATH that is not a directory)?
fn names_a_cache_or_source(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    path.file_name().is_some_and(|name| {
        name.as_bytes().ends_with(b".py")
            || crate::layout::classify(name, true).is_some()
            || crate::layout::classify(name, false).is_some()
    })
}

/// pycguard's own cache directory: `--cache-dir`, else `$PYCGUARD_CACHE_DIR`, else the
/// file's `cache-dir`, else `$XDG_CACHE_HOME/pycguard`, else `~/.cache/pycguard`; `None`
/// with `--no-cache` or the file's `no-cache = true` (unless `--cache-dir` is given).
fn cache_dir(args: &CacheArgs, layer: &Layer, env: &Environment, cwd: &Path) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache_dir {
        return Some(lexically_absolute(cwd, dir));
    }
    if layer.no_cache.as_ref().is_some_and(|s| *s.get_ref()) {
        return None;
    }
    let dir = env
        .pycguard_cache_dir
        .clone()
        .or_else(|| layer.cache_dir.as_ref().map(|s| s.get_ref().clone()))
        .or_else(|| env.default_cache_dir())?;
    Some(lexically_absolute(cwd, &dir))
}

/// The pycache prefix: the flag, else a non-empty `$PYTHONPYCACHEPREFIX`, else the file's
/// `pycache-prefix`, made absolute against the current directory as Python does at
/// startup.
fn pycache_prefix(
    flag: Option<&Path>,
    layer: &Layer,
    env: &Environment,
    cwd: &Path,
) -> Option<PathBuf> {
    let raw = flag
        .map(Path::to_path_buf)
        .or_else(|| env.pycache_prefix.clone())
        .or_else(|| layer.pycache_prefix.clone())?;
    Some(lexically_absolute(cwd, &raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment::from_lookup(Ok(PathBuf::from("/w")), move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
        })
    }

    #[test]
    fn prefix_flag_wins_and_is_absolute() {
        let layer = Layer {
            pycache_prefix: Some(PathBuf::from("/from/file")),
            ..Layer::default()
        };
        let cwd = Path::new("/w");
        let with_env = env(&[("PYTHONPYCACHEPREFIX", "envdir")]);
        assert_eq!(
            pycache_prefix(Some(Path::new("cache")), &layer, &with_env, cwd),
            Some(PathBuf::from("/w/cache"))
        );
        assert_eq!(
            pycache_prefix(None, &layer, &with_env, cwd),
            Some(PathBuf::from("/w/envdir"))
        );
        assert_eq!(
            pycache_prefix(None, &layer, &env(&[]), cwd),
            Some(PathBuf::from("/from/file"))
        );
    }

    #[test]
    fn cache_dir_layers() {
        let cwd = Path::new("/w");
        let none = CacheArgs {
            no_cache: false,
            cache_dir: None,
        };
        let file = Layer {
            cache_dir: Some(toml::Spanned::new(0..1, PathBuf::from("/file/cache"))),
            ..Layer::default()
        };
        let home = env(&[("HOME", "/home/u")]);
        assert_eq!(
            cache_dir(&none, &Layer::default(), &home, cwd),
            Some(PathBuf::from("/home/u/.cache/pycguard"))
        );
        assert_eq!(
            cache_dir(&none, &file, &home, cwd),
            Some(PathBuf::from("/file/cache"))
        );
        let both = env(&[("HOME", "/home/u"), ("PYCGUARD_CACHE_DIR", "/env/cache")]);
        assert_eq!(
            cache_dir(&none, &file, &both, cwd),
            Some(PathBuf::from("/env/cache"))
        );
        let flag = CacheArgs {
            no_cache: false,
            cache_dir: Some(PathBuf::from("c")),
        };
        assert_eq!(
            cache_dir(&flag, &file, &both, cwd),
            Some(PathBuf::from("/w/c"))
        );
        let off = Layer {
            no_cache: Some(toml::Spanned::new(0..1, true)),
            ..Layer::default()
        };
        assert_eq!(cache_dir(&none, &off, &both, cwd), None);
        assert_eq!(
            cache_dir(&flag, &off, &both, cwd),
            Some(PathBuf::from("/w/c"))
        );
    }
}
