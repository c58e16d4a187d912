//! Running a parsed command line: resolve the configuration, dispatch to the command,
//! print, and decide the exit code. The only place that prints errors (as a cause chain)
//! and that maps a closed output pipe to a quiet exit 0.

pub mod check;
pub mod clean;
pub mod compile;
pub mod fix;
pub mod inspect;
pub mod interpreters;

use std::time::Duration;

use crate::actions::recompile::Mode;
use crate::cli::{Cli, ColorWhen, Command};
use crate::exit::ExitCode;
use crate::interpreters::Interpreters;
use crate::output::{self, escape};
use crate::prove::{self, DeepConfig};
use crate::settings::{self, CheckConfig, ConfigError, ScanConfig};
use crate::signals;
use crate::verdict::State;

/// Run a command line to completion.
pub fn run(cli: Cli) -> ExitCode {
    // Before anything can block: SIGINT and SIGTERM end every command promptly.
    signals::install_signal_handlers();
    let code = run_command(cli);
    if code == ExitCode::Interrupted || signals::interrupted() {
        return stopped();
    }
    code
}

/// The exit of a run stopped by a signal: 130 for SIGINT, 143 for SIGTERM.
fn stopped() -> ExitCode {
    if signals::received_signal() == Some(signal_hook::consts::SIGTERM) {
        eprintln!("pycguard: terminated");
        ExitCode::Terminated
    } else {
        eprintln!("pycguard: interrupted");
        ExitCode::Interrupted
    }
}

fn run_command(cli: Cli) -> ExitCode {
    match cli.color {
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
        ColorWhen::Auto => {}
    }
    let outcome = match cli.command {
        Command::Check(args) => match CheckConfig::resolve(&args) {
            Ok(config) => check::run_check(&config, &args.deep),
            Err(err) => return usage_error(&err),
        },
        Command::Inspect(args) => inspect::run_inspect(&args),
        Command::Fix(args) => fix::run_fix(&args),
        Command::Compile(args) => compile::run_compile(&args),
        Command::Clean(args) => match clean::clean_options(&args) {
            Ok((scan, options)) => clean::run_clean(&scan, &options, &args),
            Err(err) => return usage_error(err.as_ref()),
        },
        Command::Interpreters(args) => match settings::ScanConfig::resolve(&args.walk) {
            Ok(scan) => interpreters::run(&scan, &args.python),
            Err(err) => return usage_error(&err),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::Success,
        Err(err) => {
            eprintln!("pycguard: error: cannot write output: {err}");
            ExitCode::Problems
        }
    }
}

/// A flag value that names nothing pycguard knows.
#[derive(Debug, thiserror::Error)]
pub enum ActionArgsError {
    #[error("unknown state {0:?} (states: fresh, stale, suspect, hidden-stale, ghost, sourceless, orphan, corrupt, unknown)")]
    UnknownState(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Parse `--state` values.
pub fn parse_states(names: &[String]) -> Result<Option<Vec<State>>, ActionArgsError> {
    if names.is_empty() {
        return Ok(None);
    }
    names
        .iter()
        .map(|n| State::from_name(n.trim()).ok_or_else(|| ActionArgsError::UnknownState(n.clone())))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Was the run stopped by SIGINT or SIGTERM (the workers are already stopped and reaped)?
/// The caller returns [`ExitCode::Interrupted`]; `app` says which signal and exits with it.
pub(crate) fn interrupted() -> bool {
    signals::interrupted()
}

pub(crate) fn mode_of(m: crate::cli::InvalidationMode) -> Mode {
    match m {
        crate::cli::InvalidationMode::Timestamp => Mode::Timestamp,
        crate::cli::InvalidationMode::CheckedHash => Mode::CheckedHash,
        crate::cli::InvalidationMode::UncheckedHash => Mode::UncheckedHash,
    }
}

/// The interpreters for `fix` and `compile`, and the deep configuration that found them.
pub(crate) fn interpreters_for(
    scan: &ScanConfig,
    pythons: &[std::path::PathBuf],
    timeout: f64,
    progress: bool,
) -> Result<(DeepConfig, Interpreters), ExitCode> {
    let config = DeepConfig {
        pythons: pythons.to_vec(),
        roots: scan.roots.iter().map(|r| r.path.clone()).collect(),
        workers: scan.walk.threads,
        timeout: Duration::from_secs_f64(timeout),
        cache_dir: scan.cache_dir.clone(),
        progress,
    };
    let interpreters = prove::discover(&config);
    if let Some(bad) = interpreters.rejected_flag() {
        eprintln!(
            "pycguard: error: --python {}: {}",
            escape::path(&bad.path),
            escape::text(&bad.message)
        );
        return Err(ExitCode::Usage);
    }
    Ok((config, interpreters))
}

pub(crate) fn usage_error(err: &dyn std::error::Error) -> ExitCode {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    eprintln!("pycguard: error: {}", escape::text(&message));
    ExitCode::Usage
}
