//! Running a parsed command line: resolve the configuration, dispatch to the command,
//! print, and decide the exit code. The only place that prints errors (as a cause chain)
//! and that maps a closed output pipe to a quiet exit 0.

use std::io::{self, Write};
use std::time::Instant;

use crate::check::{self, Keep};
use crate::cli::{Cli, ColorWhen, Command, DeepArgs, Format, InspectArgs};
use crate::config::{self, CheckConfig};
use crate::deep;
use crate::exit::ExitCode;
use crate::inspect;
use crate::output::{self, escape, human, json};
use crate::verdict::Severity;

/// Run a command line to completion.
pub fn run(cli: Cli) -> ExitCode {
    // Before anything can block: SIGINT and SIGTERM end every command promptly.
    deep::install_signal_handlers();
    let code = run_command(cli);
    if code == ExitCode::Interrupted || deep::interrupted() {
        return stopped();
    }
    code
}

/// The exit of a run stopped by a signal: 130 for SIGINT, 143 for SIGTERM.
fn stopped() -> ExitCode {
    if deep::received_signal() == Some(signal_hook::consts::SIGTERM) {
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
            Ok(config) => run_check(&config, &args.deep),
            Err(err) => return usage_error(&err),
        },
        Command::Inspect(args) => run_inspect(&args),
        Command::Fix(args) => crate::actions::commands::run_fix(&args),
        Command::Compile(args) => crate::actions::commands::run_compile(&args),
        Command::Clean(args) => match crate::actions::commands::clean_options(&args) {
            Ok((scan, options)) => crate::actions::commands::run_clean(&scan, &options, &args),
            Err(err) => return usage_error(err.as_ref()),
        },
        Command::Interpreters(args) => match config::ScanConfig::resolve(&args.walk) {
            Ok(scan) => deep::listing::run(&scan, &args.python),
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

fn run_check(config: &CheckConfig, deep_args: &DeepArgs) -> io::Result<ExitCode> {
    let started = Instant::now();
    // A bad --python is a usage error even when --deep is not given.
    if let Err(bad) = crate::interpreters::check_flags(&deep_args.python.pythons) {
        eprintln!(
            "pycguard: error: --python {}: {}",
            bad.path.display(),
            bad.message
        );
        return Ok(ExitCode::Usage);
    }
    let keep = match config.format {
        // The deep stage upgrades fresh verdicts too, so it needs every entry.
        _ if deep_args.deep => Keep::All,
        Format::Json => Keep::All,
        Format::Human => Keep::Problems,
    };
    let mut report = check::run(&config.scan, keep);
    if deep::interrupted() {
        // A walk cut short: print nothing that looks like a result.
        return Ok(ExitCode::Interrupted);
    }
    let deep_summary = if deep_args.deep {
        match deep::run_stage(&mut report, deep_args, config) {
            Ok(summary) => Some(summary),
            Err(err @ deep::StageError::Usage { .. }) => return Ok(usage_error(&err)),
            // The workers are already stopped and reaped.
            Err(deep::StageError::Interrupted) => return Ok(ExitCode::Interrupted),
        }
    } else {
        None
    };
    let elapsed = started.elapsed();
    let mut out = anstream::stdout().lock();
    match config.format {
        Format::Json => json::write_report(&mut out, &report)?,
        Format::Human => {
            if !config.quiet {
                human::write_problems(&mut out, &report)?;
            }
            human::write_summary(&mut out, &report, elapsed)?;
            match &deep_summary {
                Some(summary) => human::write_deep_summary(&mut out, summary)?,
                None if !config.quiet => human::write_deep_hint(&mut out, &report)?,
                None => {}
            }
            if let (Some(line), false) = (report.walk.skipped_line(), config.quiet) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if let (Format::Json, Some(line), false) =
        (config.format, report.walk.skipped_line(), config.quiet)
    {
        eprintln!("pycguard: {line}");
    }
    if let (Format::Json, Some(summary)) = (config.format, &deep_summary) {
        human::write_deep_summary(&mut anstream::stderr().lock(), summary)?;
    }
    out.flush()?;
    if config.format == Format::Json || config.quiet {
        // Unreadable entries still reach the user on stderr when stdout is not for them.
        for error in &report.errors {
            eprintln!(
                "pycguard: {}: {}",
                escape::path(&error.path),
                escape::text(&error.message)
            );
        }
    }
    let worst = report.summary.worst;
    let failing = match worst {
        Some(Severity::Error) => true,
        Some(Severity::Warning) => config.strict,
        _ => false,
    } || !report.errors.is_empty();
    Ok(if failing && !config.exit_zero {
        ExitCode::Problems
    } else {
        ExitCode::Success
    })
}

fn run_inspect(args: &InspectArgs) -> io::Result<ExitCode> {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => return Ok(usage_error(&err)),
    };
    let prefix = config::pycache_prefix(args.pycache_prefix.as_deref(), &cwd);
    let mut out = anstream::stdout().lock();
    let mut any_error = false;
    if args.format == Format::Json {
        out.write_all(b"[")?;
    }
    for (n, file) in args.files.iter().enumerate() {
        let absolute = config::lexically_absolute(&cwd, file);
        let result = inspect::inspect(file, &absolute, prefix.as_deref());
        any_error |= result.is_error();
        match args.format {
            Format::Human => {
                if n > 0 {
                    writeln!(out)?;
                }
                inspect::write_human(&mut out, &result)?;
            }
            Format::Json => {
                out.write_all(if n == 0 { b"\n  " } else { b",\n  " })?;
                inspect::write_json(&mut out, &result)?;
            }
        }
    }
    if args.format == Format::Json {
        out.write_all(b"\n]\n")?;
    }
    out.flush()?;
    Ok(if any_error {
        ExitCode::Problems
    } else {
        ExitCode::Success
    })
}
