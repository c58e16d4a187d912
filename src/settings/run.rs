//! `pycguard run`'s settings: those of `fix` (the config file's fix table: `delete`,
//! `include`, `invalidation-mode`, `exclude`, `jobs`, `cache-dir`…; found above the
//! current directory), the time budget, and what the command's interpreter will take from
//! the environment (`PATH`, `PYTHONOPTIMIZE`, `PYTHONPYCACHEPREFIX`). The PATHs are not
//! known here: `run` finds them from the command line it is given ([`crate::launch`]).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    default_mode, mode_flag, prove_of, states_of, write_of, Environment, ScanConfig, SettingsError,
};
use crate::actions::fix::FixOptions;
use crate::actions::recompile::WriteOptions;
use crate::cli::{RunArgs, WalkArgs};
use crate::interpreters::SearchPath;
use crate::launch::LaunchEnvironment;
use crate::prove::ProveConfig;
use crate::settings::file::{CommandName, ConfigFile};

/// The default `--timeout` of `run`: how long a start may wait for the check.
const DEFAULT_BUDGET_SECS: f64 = 30.0;

/// `pycguard run`.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// CMD and its arguments.
    pub command: Vec<OsString>,
    /// `--check`: report only.
    pub check_only: bool,
    pub strict: bool,
    /// `--timeout`: CMD starts after this long whatever the check is doing.
    pub budget: Duration,
    /// What CMD's interpreter takes from the environment.
    pub launch: LaunchEnvironment,
    /// The scan's settings; its roots are the command's trees, found when it runs.
    pub scan: ScanConfig,
    pub search: SearchPath,
    pub prove: ProveConfig,
    pub options: FixOptions,
    pub write: WriteOptions,
}

pub(super) fn resolve(
    args: &RunArgs,
    file: &ConfigFile,
    env: &Environment,
) -> Result<RunConfig, SettingsError> {
    let layer = file.layer(CommandName::Fix);
    let cwd = env.cwd().map_err(SettingsError::NoCurrentDir)?.clone();
    let walk = WalkArgs {
        paths: vec![cwd.clone()],
        exclude: Vec::new(),
        pycache_prefix: None,
        include_venvs: false,
        jobs: None,
        cache: crate::cli::CacheArgs {
            no_cache: args.cache.no_cache,
            cache_dir: args.cache.cache_dir.clone(),
        },
    };
    let mut scan = ScanConfig::resolve(&walk, &layer, env)?;
    scan.roots.clear();
    // The interpreter's prefix, not pycguard's: decided from the command line.
    scan.walk.pycache_prefix = None;
    let budget = Duration::from_secs_f64(args.timeout.unwrap_or(DEFAULT_BUDGET_SECS));
    // One file may not take longer than the whole start may.
    let per_file = budget.min(Duration::from_secs(60));
    Ok(RunConfig {
        command: args.command.clone(),
        check_only: args.check,
        strict: args.strict,
        budget,
        launch: LaunchEnvironment {
            cwd: cwd.clone(),
            path: env.path.clone(),
            python_optimize: env
                .python_optimize_raw
                .clone()
                .map(std::ffi::OsString::from),
            pycache_prefix: env.pycache_prefix.clone(),
        },
        search: env.search_path(),
        prove: prove_of(&scan, per_file, crate::output::verbosity::Verbosity::Quiet),
        write: write_of(&scan, per_file, env),
        options: FixOptions {
            delete: layer.delete == Some(true),
            include: states_of(&[], layer.include.as_ref())?.unwrap_or_default(),
            mode: mode_flag(None, &layer),
            default_mode: default_mode(env),
            dry_run: false,
        },
        scan,
    })
}

/// Where CMD's trees are resolved against.
impl RunConfig {
    pub fn cwd(&self) -> &PathBuf {
        &self.launch.cwd
    }
}
