//! The action subcommands as the user meets them: resolve their flags, run, print, and
//! turn the outcome into an exit code.

use std::io::{self, Write};

use std::time::Duration;

use crate::actions::clean::{self, CleanOptions, CleanOutcome};
use crate::actions::compile::{self, CompileOptions};
use crate::actions::fix::{self, Action, FixOptions};
use crate::actions::recompile::Mode;
use crate::check::{self, Keep};
use crate::cli::{CleanArgs, CompileArgs, FixArgs};
use crate::config::{ConfigError, ScanConfig};
use crate::deep::{self, DeepConfig};
use crate::exit::ExitCode;
use crate::interpreters::{Interpreters, Origin};
use crate::output::escape;
use crate::output::human::severity_style;
use crate::verdict::{Severity, State};

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

pub fn clean_options(
    args: &CleanArgs,
) -> Result<(ScanConfig, CleanOptions), Box<dyn std::error::Error>> {
    let scan = ScanConfig::resolve(&args.walk).map_err(ActionArgsError::from)?;
    let options = CleanOptions {
        states: parse_states(&args.state)?,
        tags: args
            .tag
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        debris: args.debris,
        dry_run: args.dry_run,
    };
    Ok((scan, options))
}

pub fn run_clean(
    scan: &ScanConfig,
    options: &CleanOptions,
    args: &CleanArgs,
) -> io::Result<ExitCode> {
    let outcome = clean::run(scan, options);
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    write_clean(
        &mut out,
        &outcome,
        options.dry_run,
        args.verbose || options.dry_run,
        args.quiet,
    )?;
    out.flush()?;
    Ok(
        if outcome.failed.is_empty() && outcome.scan_errors.is_empty() {
            ExitCode::Success
        } else {
            ExitCode::Problems
        },
    )
}

fn write_clean<W: Write>(
    out: &mut W,
    o: &CleanOutcome,
    dry: bool,
    list: bool,
    quiet: bool,
) -> io::Result<()> {
    let verb = if dry { "would remove" } else { "removed" };
    if list && !quiet {
        for p in &o.removed {
            writeln!(out, "{verb} {}", escape::path(p))?;
        }
        for p in &o.debris_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
        for p in &o.dirs_removed {
            writeln!(out, "{verb} {}/", escape::path(p))?;
        }
    }
    let err = severity_style(Severity::Error);
    for (p, message) in &o.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(p),
            escape::text(message)
        )?;
    }
    for (p, message) in &o.scan_errors {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(p),
            escape::text(message)
        )?;
    }
    let mut parts = vec![format!(
        "{verb} {} {}",
        o.removed.len(),
        if o.removed.len() == 1 {
            "cache"
        } else {
            "caches"
        }
    )];
    if !o.dirs_removed.is_empty() {
        parts.push(format!(
            "{} empty __pycache__ directories",
            o.dirs_removed.len()
        ));
    }
    if !o.debris_removed.is_empty() {
        parts.push(format!("{} tool-cache directories", o.debris_removed.len()));
    }
    if o.kept_sourceless > 0 {
        parts.push(format!(
            "kept {} sourceless (use --state sourceless to remove them)",
            o.kept_sourceless
        ));
    }
    if !o.failed.is_empty() {
        parts.push(format!("{err}{} failed{err:#}", o.failed.len()));
    }
    writeln!(out, "{}", parts.join(", "))?;
    match o.walk.skipped_line() {
        Some(line) if !quiet => writeln!(out, "{line}"),
        _ => Ok(()),
    }
}

/// Was the run stopped by SIGINT or SIGTERM (the workers are already stopped and reaped)?
/// The caller returns [`ExitCode::Interrupted`]; `app` says which signal and exits with it.
fn interrupted() -> bool {
    deep::interrupted()
}

fn mode_of(m: crate::cli::InvalidationMode) -> Mode {
    match m {
        crate::cli::InvalidationMode::Timestamp => Mode::Timestamp,
        crate::cli::InvalidationMode::CheckedHash => Mode::CheckedHash,
        crate::cli::InvalidationMode::UncheckedHash => Mode::UncheckedHash,
    }
}

/// The interpreters for `fix` and `compile`, and the deep configuration that found them.
fn interpreters_for(
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
    let interpreters = deep::discover(&config);
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

pub fn run_fix(args: &FixArgs) -> io::Result<ExitCode> {
    let scan = match ScanConfig::resolve(&args.walk) {
        Ok(s) => s,
        Err(e) => return Ok(crate::app::usage_error(&e)),
    };
    let include = match parse_states(&args.include) {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return Ok(crate::app::usage_error(&e)),
    };
    let options = FixOptions {
        delete: args.delete,
        include,
        mode: args.invalidation_mode.map(mode_of),
        dry_run: args.dry_run,
    };
    // Proving is the default: a fix that leaves hidden-stale code is not a fix. The proofs
    // are remembered, so a second run only hashes. `--deep` is accepted and changes nothing.
    let prove = !args.shallow;
    let keep = if prove { Keep::All } else { Keep::Problems };
    let mut report = check::run(&scan, keep);
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let (deep_config, interpreters) = match interpreters_for(
        &scan,
        &args.deep.python.pythons,
        args.deep.timeout,
        !args.quiet,
    ) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let deep_summary = if prove {
        match deep::run(&mut report, &deep_config, &interpreters) {
            Ok(summary) => Some(summary),
            Err(_) => return Ok(ExitCode::Interrupted),
        }
    } else {
        None
    };
    let header_only = report.summary.header_only;
    let walked = std::mem::take(&mut report.walk);
    let scan_errors = std::mem::take(&mut report.errors);
    let entries: Vec<_> = report
        .entries
        .into_iter()
        .filter(|e| e.verdict.state != State::Fresh)
        .collect();
    let outcome = fix::run(
        entries,
        &interpreters,
        &options,
        deep_config.workers,
        deep_config.timeout,
    );
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    let err = severity_style(Severity::Error);
    for d in &outcome.done {
        let (verb, detail) = match (&d.action, args.dry_run) {
            (Action::Recompile { interpreter, .. }, dry) => (
                if dry { "would recompile" } else { "recompiled" },
                format!(
                    "with {}",
                    escape::text(&interpreters.all()[*interpreter].display_name())
                ),
            ),
            (Action::Delete { why }, dry) => {
                (if dry { "would delete" } else { "deleted" }, why.clone())
            }
            (Action::Leave { why, .. }, _) => ("left", why.clone()),
        };
        match &d.error {
            Some(message) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(message)
            )?,
            None if matches!(d.action, Action::Leave { failure: true, .. }) => writeln!(
                out,
                "{err}failed{err:#} to repair {} ({}): {}",
                escape::path(&d.path),
                d.state,
                escape::text(&detail)
            )?,
            None if !args.quiet => writeln!(
                out,
                "{verb} {} ({}; {})",
                escape::path(&d.path),
                d.state,
                escape::text(&detail)
            )?,
            None => {}
        }
    }
    for e in &scan_errors {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(&e.path),
            escape::text(&e.message)
        )?;
    }
    let prefix = if args.dry_run { "would have " } else { "" };
    writeln!(
        out,
        "{prefix}repaired {}, deleted {}, left {}, failed {}{}",
        if args.dry_run {
            outcome.count(|d| matches!(d.action, Action::Recompile { .. }))
        } else {
            outcome.repaired()
        },
        if args.dry_run {
            outcome.count(|d| matches!(d.action, Action::Delete { .. }))
        } else {
            outcome.deleted()
        },
        outcome.left(),
        outcome.failed(),
        if outcome.dirs_removed.is_empty() {
            String::new()
        } else {
            format!(
                "; removed {} empty __pycache__ directories",
                outcome.dirs_removed.len()
            )
        }
    )?;
    if !args.quiet {
        match &deep_summary {
            Some(summary) => crate::output::human::write_deep_summary(&mut out, summary)?,
            None if header_only > 0 => writeln!(
                out,
                "--shallow: {header_only} {} judged by header only (mtime and size, as the interpreter does) and left as {}; without --shallow, fix proves {} against {} source",
                if header_only == 1 { "cache was" } else { "caches were" },
                if header_only == 1 { "it was" } else { "they were" },
                if header_only == 1 { "it" } else { "them" },
                if header_only == 1 { "its" } else { "their" },
            )?,
            None => {}
        }
        if let Some(line) = walked.skipped_line() {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(if outcome.failed() == 0 && scan_errors.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}

pub fn run_compile(args: &CompileArgs) -> io::Result<ExitCode> {
    let scan = match ScanConfig::resolve(&args.walk) {
        Ok(s) => s,
        Err(e) => return Ok(crate::app::usage_error(&e)),
    };
    if args.optimize > 2 {
        eprintln!("pycguard: error: -O may be given at most twice (-OO)");
        return Ok(ExitCode::Usage);
    }
    let discover = || interpreters_for(&scan, &args.python.pythons, args.timeout, !args.quiet);
    let (found_tree, discovered) = if args.python.pythons.is_empty() {
        // Finding the interpreters (a few stats, probes remembered) overlaps the walk.
        std::thread::scope(|s| {
            let discovering = s.spawn(discover);
            let found_tree = compile::find_sources(&scan);
            let discovered = discovering
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (found_tree, discovered)
        })
    } else {
        // A bad --python is reported before any walk.
        match discover() {
            Ok(discovered) => (compile::find_sources(&scan), Ok(discovered)),
            Err(code) => return Ok(code),
        }
    };
    let (deep_config, found) = match discovered {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let tags = found_tree.tags.clone();
    let scan_errors = found_tree.errors.clone();
    let walked = found_tree.walk.clone();
    // --python given: exactly those; else the interpreters whose caches the tree holds;
    // else the one the tree is for (its virtualenv, else python3 on PATH).
    let chosen: Vec<(crate::interpreters::Interpreter, String)> = if !args.python.pythons.is_empty()
    {
        found
            .all()
            .iter()
            .filter(|i| i.origin == Origin::Flag)
            .map(|i| (i.clone(), "--python".to_owned()))
            .collect()
    } else {
        let mut by_tag: Vec<(crate::interpreters::Interpreter, String)> = Vec::new();
        for i in found.all() {
            let Some(tag) = i.cache_tag.as_ref().filter(|t| tags.contains(*t)) else {
                continue;
            };
            if !by_tag.iter().any(|(a, _)| a.cache_tag == i.cache_tag) {
                by_tag.push((i.clone(), format!("the tree holds {tag} caches")));
            }
        }
        if by_tag.is_empty() {
            let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
            choose_for_tree(&found, &scan.roots, &cwd)
                .into_iter()
                .collect()
        } else {
            by_tag
        }
    };
    if chosen.is_empty() {
        eprintln!("pycguard: error: no Python interpreter found (give one with --python PATH)");
        return Ok(ExitCode::Usage);
    }
    if !args.quiet {
        let mut out = anstream::stdout().lock();
        for (interpreter, why) in &chosen {
            writeln!(out, "compiling for {} ({why})", interpreter.display_name())?;
        }
        out.flush()?;
    }
    let chosen: Vec<crate::interpreters::Interpreter> =
        chosen.into_iter().map(|(i, _)| i).collect();
    let options = CompileOptions {
        levels: vec![args.optimize],
        mode: args
            .invalidation_mode
            .map_or_else(Mode::py_compile_default, mode_of),
        force: args.force,
        dry_run: args.dry_run,
        prefix: scan.walk.pycache_prefix.clone(),
    };
    let outcome = compile::run(
        found_tree,
        &chosen,
        &options,
        deep_config.workers,
        deep_config.timeout,
    );
    if interrupted() {
        return Ok(ExitCode::Interrupted);
    }
    let mut out = anstream::stdout().lock();
    if args.dry_run && !args.quiet {
        for p in &outcome.planned {
            writeln!(
                out,
                "would compile {} -> {} with {} ({})",
                escape::path(&p.task.source),
                escape::path(&p.task.cache),
                escape::text(&chosen[p.interpreter].display_name()),
                p.why
            )?;
        }
    }
    let err = severity_style(Severity::Error);
    for (path, message) in &outcome.failed {
        writeln!(
            out,
            "{err}failed{err:#} {}: {}",
            escape::path(path),
            escape::text(message)
        )?;
    }
    let unreadable: Vec<_> = outcome.scan_errors.iter().chain(&scan_errors).collect();
    for (path, message) in &unreadable {
        writeln!(
            out,
            "{err}unreadable{err:#} {}: {}",
            escape::path(path),
            escape::text(message)
        )?;
    }
    let names: Vec<String> = chosen
        .iter()
        .map(|i| escape::text(&i.display_name()).into_owned())
        .collect();
    writeln!(
        out,
        "{} {}, {} up to date, {} failed{} ({})",
        if args.dry_run {
            "would compile"
        } else {
            "compiled"
        },
        outcome.planned.len()
            - if args.dry_run {
                0
            } else {
                outcome.failed.len()
            },
        outcome.up_to_date,
        outcome.failed.len(),
        if unreadable.is_empty() {
            String::new()
        } else {
            format!(", {} unreadable", unreadable.len())
        },
        names.join(", ")
    )?;
    if !args.quiet {
        if scan.walk.pycache_prefix.is_none() {
            for prefix in &walked.found_prefixes {
                writeln!(
                    out,
                    "note: {} holds the caches a pycache prefix gives these sources (a service's PYTHONPYCACHEPREFIX?); with --pycache-prefix {} compile writes them there",
                    prefix.display(),
                    prefix.display()
                )?;
            }
        }
        if let Some(line) = walked.skipped_line() {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(if outcome.failed.is_empty() && unreadable.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Problems
    })
}

/// The interpreter a tree without caches is for, and why, as a user would expect: the
/// virtualenv inside the tree, else the `python3` that `PATH` runs (through pyenv's shims
/// too), else the first interpreter found.
fn choose_for_tree(
    found: &Interpreters,
    roots: &[crate::walk::Root],
    cwd: &std::path::Path,
) -> Option<(crate::interpreters::Interpreter, String)> {
    use crate::interpreters::Interpreter;
    let shown = |path: &std::path::Path| -> String {
        for root in roots {
            let Some(abs) = root.absolute_forms.first() else {
                continue;
            };
            if let Ok(rest) = path.strip_prefix(abs) {
                let inside = root.path.join(rest);
                let text = inside.to_string_lossy().into_owned();
                return text.strip_prefix("./").unwrap_or(&text).to_owned();
            }
        }
        path.display().to_string()
    };
    if let Some(venv) = found.all().iter().find(|i| i.origin == Origin::Venv) {
        let holder = venv
            .path
            .parent()
            .and_then(std::path::Path::parent)
            .unwrap_or(&venv.path);
        let is_root = roots
            .iter()
            .any(|r| r.absolute_forms.first().is_some_and(|a| a == holder));
        let why = if is_root {
            "this tree is a virtualenv"
        } else {
            "the virtualenv in this tree"
        };
        return Some((venv.clone(), format!("{}: {why}", shown(&venv.path))));
    }
    let by_executable = |exe: &std::path::Path| -> Option<&Interpreter> {
        let resolved = std::fs::canonicalize(exe).ok()?;
        found.all().iter().find(|i| i.resolved == resolved)
    };
    if let Some((exe, how)) = path_python3(cwd) {
        if let Some(interpreter) = by_executable(&exe) {
            return Some((interpreter.clone(), how));
        }
    }
    found.all().first().map(|i| {
        (
            i.clone(),
            "the first Python found: no virtualenv in the tree, no python3 on PATH".to_owned(),
        )
    })
}

/// The `python3` a shell in `cwd` would run: the first on `PATH`; pyenv's shims stand for
/// the version pyenv selects (`$PYENV_VERSION`, a `.python-version` in `cwd` or above,
/// then `$PYENV_ROOT/version`; `system` means the next `python3` on `PATH`). Read from
/// files only: nothing is run. Returns the executable and how it was found.
fn path_python3(cwd: &std::path::Path) -> Option<(std::path::PathBuf, String)> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        if dir.ends_with("shims") && dir.to_string_lossy().contains("pyenv") {
            let shim = dir.join("python3");
            if !shim.is_file() {
                continue;
            }
            let Some(root) = pyenv_root(&dir) else {
                continue;
            };
            let Some((version, from)) = pyenv_version(cwd, &root) else {
                continue;
            };
            if version == "system" {
                continue;
            }
            let exe = root.join("versions").join(&version).join("bin/python3");
            if exe.is_file() {
                return Some((
                    exe,
                    format!(
                        "{}: python3 on PATH, pyenv {version} from {from}",
                        shim.display()
                    ),
                ));
            }
            continue;
        }
        let exe = dir.join("python3");
        let Ok(meta) = std::fs::metadata(&exe) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Some((
                exe.clone(),
                format!("{}: the first python3 on PATH", exe.display()),
            ));
        }
    }
    None
}

/// pyenv's root for a shims directory: `$PYENV_ROOT`, else the shims directory's parent.
fn pyenv_root(shims: &std::path::Path) -> Option<std::path::PathBuf> {
    std::env::var_os("PYENV_ROOT")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| shims.parent().map(std::path::Path::to_path_buf))
}

/// The version pyenv (at `root`) selects in `cwd`, and where that choice is written.
fn pyenv_version(cwd: &std::path::Path, root: &std::path::Path) -> Option<(String, String)> {
    let first_word = |text: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ':'))
            .find(|w| !w.is_empty())
            .map(str::to_owned)
    };
    if let Some(v) = std::env::var("PYENV_VERSION")
        .ok()
        .as_deref()
        .and_then(first_word)
    {
        return Some((v, "$PYENV_VERSION".into()));
    }
    for dir in cwd.ancestors() {
        let file = dir.join(".python-version");
        if let Some(v) = std::fs::read_to_string(&file)
            .ok()
            .as_deref()
            .and_then(first_word)
        {
            return Some((v, file.display().to_string()));
        }
    }
    let file = root.join("version");
    std::fs::read_to_string(&file)
        .ok()
        .as_deref()
        .and_then(first_word)
        .map(|v| (v, file.display().to_string()))
}
