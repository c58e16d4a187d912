//! `pycguard watch`'s settings: those of `fix` (the config file's fix table, its
//! `delete`, `include`, `invalidation-mode`, `timeout`, `python`…), except that watch
//! always proves — a watch that leaves hidden-stale code is not one — and shows no
//! progress bar.

use super::{
    default_mode, discovery_of, format_among, mode_flag, prove_of, states_of, timeout_of, write_of,
    Environment, ScanConfig, SettingsError,
};
use crate::actions::fix::FixOptions;
use crate::actions::recompile::WriteOptions;
use crate::cli::{Format, WatchArgs};
use crate::interpreters::Discovery;
use crate::prove::ProveConfig;
use crate::settings::file::{CommandName, ConfigFile};

/// `pycguard watch`.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    pub scan: ScanConfig,
    pub format: Format,
    pub quiet: bool,
    pub discovery: Discovery,
    pub prove: ProveConfig,
    pub options: FixOptions,
    pub write: WriteOptions,
}

pub(super) fn resolve(
    args: &WatchArgs,
    file: &ConfigFile,
    env: &Environment,
    verbosity: crate::output::verbosity::Verbosity,
) -> Result<WatchConfig, SettingsError> {
    let layer = file.layer(CommandName::Fix);
    let scan = ScanConfig::resolve(&args.walk, &layer, env)?;
    let timeout = timeout_of(args.timeout, &layer);
    let options = FixOptions {
        delete: args.delete || layer.delete == Some(true),
        include: states_of(&[], layer.include.as_ref())?.unwrap_or_default(),
        mode: mode_flag(args.invalidation_mode, &layer),
        default_mode: default_mode(env),
        dry_run: false,
    };
    Ok(WatchConfig {
        format: match format_among(
            &args.output,
            &layer,
            "watch",
            &[Format::Human, Format::Json, Format::JsonLines],
        )? {
            // Its JSON is a stream of events, one object per line.
            Format::JsonLines => Format::Json,
            format => format,
        },
        // `-q` (global, as in every command): no line when watching starts.
        quiet: !verbosity.normal(),
        discovery: discovery_of(&args.python.pythons, &layer, &scan, env),
        prove: prove_of(&scan, timeout, crate::output::verbosity::Verbosity::Quiet),
        write: write_of(&scan, timeout, env),
        options,
        scan,
    })
}
