//! The commands as the user meets them, one file each: configuration → pipeline →
//! outcome → printer → exit status.
//!
//! [`run`] is the whole program: it installs the signal handlers, reads the environment
//! once, resolves the settings, runs the command, and is the only place that prints an
//! error (as its cause chain: `pycguard: error: what: why: deeper why`), that maps a
//! closed output pipe to a quiet exit 0, and that turns a signal into 130 or 143. Each
//! command returns the [`Tally`] of what it found and the [`Policy`] that judges it;
//! [`crate::exit`] decides the status.

pub mod check;
pub mod clean;
pub mod compile;
pub mod completions;
pub mod doctor;
pub mod fix;
pub mod inspect;
pub mod interpreters;
pub mod ps;
pub mod run;
pub mod watch;
pub mod why;

use std::io::{self, Write};

use crate::cli::{Cli, ColorWhen};
use crate::escape;
use crate::exit::{ExitStatus, Policy, Tally};
use crate::interpreters::{Discovery, Interpreters, Rejected};
use crate::output;
use crate::settings::{self, CommandConfig, Environment, SettingsError};
use crate::signals::{self, Interrupted};

/// Why a command could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad usage: a flag, PATH or config file that cannot be used (exit 2).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A `--python PATH` that is not a usable interpreter (exit 2).
    #[error("--python {}: {}", escape::path(&.0.path), escape::text(&.0.message))]
    BadPython(Rejected),
    /// `compile` found nothing to compile with (exit 2).
    #[error("no Python interpreter found (give one with --python PATH)")]
    NoInterpreter,
    /// `why` could not look for the module (a bad name, an interpreter that did not answer).
    #[error(transparent)]
    Why(#[from] crate::why::WhyError),
    /// `run` could not exec its command (exit 126, or 127 when it is not found).
    #[error("cannot run {}: {}", escape::path(.program), crate::read::io_message(.err))]
    Exec {
        program: std::path::PathBuf,
        status: ExitStatus,
        err: io::Error,
    },
    /// `watch` could not watch a PATH (exit 2).
    #[error(transparent)]
    Watch(crate::watch::WatchError),
    /// `pycguard man COMMAND` of a command that does not exist (exit 2).
    #[error("no command {0:?} (commands: {1})")]
    NoSuchCommand(String, String),
    /// Stopped by SIGINT or SIGTERM; whatever it started is stopped and reaped.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// `doctor` could not check what a user may write.
    #[error(transparent)]
    Doctor(#[from] doctor::DoctorError),
    /// The output could not be written (a closed pipe exits 0).
    #[error("cannot write output")]
    Output(#[from] io::Error),
}

/// What a command that ran to its end reports: what it counted, and how to judge it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Finished {
    pub tally: Tally,
    pub policy: Policy,
}

impl Finished {
    /// A run judged by the default policy.
    pub fn with(tally: Tally) -> Finished {
        Finished {
            tally,
            policy: Policy::default(),
        }
    }
}

/// The result of a command.
pub type CommandResult = Result<Finished, CommandError>;

/// Run a parsed command line to completion: the whole program after parsing.
pub fn run(cli: Cli) -> ExitStatus {
    // Before anything can block: SIGINT and SIGTERM end every command promptly.
    signals::install_signal_handlers();
    let env = Environment::from_process();
    crate::interpreters::child::pass_test_variables(env.test_variables.clone());
    let status = match settings::resolve(cli, &env) {
        Ok(settings) => {
            set_color(settings.color);
            match dispatch(settings.command) {
                Ok(finished) => finished.policy.status(&finished.tally),
                Err(err) => fail(&err),
            }
        }
        Err(err) => fail(&CommandError::Settings(err)),
    };
    if status == ExitStatus::Interrupted || signals::interrupted() {
        return stopped();
    }
    status
}

fn set_color(color: ColorWhen) {
    match color {
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
        ColorWhen::Auto => {}
    }
}

fn dispatch(command: CommandConfig) -> CommandResult {
    match command {
        CommandConfig::Check(config) => check::run(&config),
        CommandConfig::Fix(config) => fix::run(&config),
        CommandConfig::Clean(config) => clean::run(&config),
        CommandConfig::Compile(config) => compile::run(&config),
        CommandConfig::Inspect(config) => inspect::run(&config),
        CommandConfig::Interpreters(config) => interpreters::run(&config),
        CommandConfig::Why(config) => why::run(&config),
        CommandConfig::Ps(config) => ps::run(&config),
        CommandConfig::Doctor(config, format, verbosity) => doctor::run(&config, format, verbosity),
        CommandConfig::Watch(config) => watch::run(&config),
        CommandConfig::Run(config) => run::run(&config),
        CommandConfig::Completions(shell) => completions::completions(shell),
        CommandConfig::Man(command) => completions::man(command.as_deref()),
    }
}

/// Print an error that ended the command (the only place errors are printed) and return
/// its exit status.
fn fail(err: &CommandError) -> ExitStatus {
    match err {
        CommandError::Interrupted(_) => return ExitStatus::Interrupted,
        CommandError::Output(e) if output::is_broken_pipe(e) => return ExitStatus::Success,
        _ => {}
    }
    // Nothing more can be done when stderr itself is gone.
    let _ = writeln!(
        io::stderr(),
        "pycguard: error: {}",
        escape::text(&cause_chain(err))
    );
    match err {
        CommandError::Output(_) => ExitStatus::Problems,
        CommandError::Exec { status, .. } => *status,
        _ => ExitStatus::Usage,
    }
}

/// `error: cause: its cause…` on one line.
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The exit of a run stopped by a signal: 130 for SIGINT, 143 for SIGTERM.
fn stopped() -> ExitStatus {
    let (word, status) = if signals::received_signal() == Some(signal_hook::consts::SIGTERM) {
        ("terminated", ExitStatus::Terminated)
    } else {
        ("interrupted", ExitStatus::Interrupted)
    };
    let _ = writeln!(io::stderr(), "pycguard: {word}");
    status
}

/// Stop with [`Interrupted`] when a signal has arrived (the walks and pools it stopped
/// leave nothing that looks like a result).
fn stop_if_interrupted() -> Result<(), Interrupted> {
    if signals::interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Find the interpreters; a `--python` that is not usable is a usage error.
fn discover(discovery: &Discovery) -> Result<Interpreters, CommandError> {
    let interpreters = Interpreters::discover(discovery);
    match interpreters.rejected_flag() {
        Some(bad) => Err(CommandError::BadPython(bad.clone())),
        None => Ok(interpreters),
    }
}
