//! `pycguard why MODULE`: choose the interpreter, locate the module
//! ([`crate::why::locate`]), judge and prove the cache the interpreter would load for it
//! (the scan's judge and the deep stage, as `check --deep` does for one file), print, and
//! count: an error-severity cache or a module that cannot be imported exits 1, a
//! warning-severity cache counts as a warning.

use std::path::{Path, PathBuf};

use crate::commands::{discover, stop_if_interrupted, CommandError, CommandResult, Finished};
use crate::exit::Tally;
use crate::facts::DirSources;
use crate::interpreters::{Discovery, Interpreter, Interpreters, SearchPath};
use crate::layout::lexically_absolute;
use crate::output::why::{print, CacheOutcome, WhyOutput};
use crate::prove;
use crate::report::Report;
use crate::scan;
use crate::settings::WhyConfig;
use crate::store::scan_memo::Memo;
use crate::verdict::Severity;
use crate::walk;
use crate::why::importer::End;
use crate::why::{self, CacheLocation};

/// Run `why`.
pub fn run(config: &WhyConfig) -> CommandResult {
    if !why::valid_module_name(&config.module) {
        return Err(why::WhyError::BadName(config.module.clone()).into());
    }
    let (interpreter, executable, chosen) = choose(config)?;
    let mut search = config.search.clone();
    search.executable = Some(executable.clone());
    let located = match why::locate(&config.module, &interpreter, &search) {
        Ok(located) => located,
        // A probe stopped by SIGINT/SIGTERM is an interruption, not a failed probe.
        Err(e) => {
            stop_if_interrupted()?;
            return Err(e.into());
        }
    };
    stop_if_interrupted()?;
    let cache = match &located.cache {
        Some(location) => Some(judge(location, &interpreter, config)?),
        None => None,
    };
    print(
        &mut config.verbosity.stdout(),
        &WhyOutput {
            module: &config.module,
            interpreter: &interpreter,
            executable: &executable,
            chosen: &chosen,
            located: &located,
            cache: cache.as_ref(),
            format: config.format,
        },
    )?;
    let severity = cache
        .as_ref()
        .and_then(|c| c.entry.as_ref())
        .map(|e| e.verdict.severity);
    // `import` fails (a submodule of a builtin or frozen module is only not followed).
    let not_found = matches!(
        located.resolution.end,
        End::NotFound { .. } | End::NotAPackage { .. }
    );
    Ok(Finished::with(Tally {
        problems: usize::from(not_found || severity == Some(Severity::Error)),
        warnings: usize::from(severity == Some(Severity::Warning)),
        unreadable: usize::from(cache.as_ref().is_some_and(|c| c.error.is_some())),
    }))
}

/// The interpreter, the executable as the user runs it, and why it was chosen:
/// `--python` (the file's `python`), else the `python3` on `PATH` among the interpreters
/// discovery trusts.
fn choose(config: &WhyConfig) -> Result<(Interpreter, PathBuf, String), CommandError> {
    let search = &config.discovery.search;
    if let Some(python) = &config.python {
        let only = Discovery {
            pythons: vec![python.clone()],
            roots: Vec::new(),
            cache_dir: config.discovery.cache_dir.clone(),
            search: SearchPath {
                cwd: search.cwd.clone(),
                ..SearchPath::default()
            },
        };
        let found = discover(&only)?;
        let interpreter = found
            .all()
            .first()
            .cloned()
            .ok_or(CommandError::NoInterpreter)?;
        let executable = lexically_absolute(&search.cwd, python);
        return Ok((interpreter, executable, "--python".into()));
    }
    let Some((exe, how)) = search.python3_on_path() else {
        return Err(CommandError::NoInterpreter);
    };
    let found = discover(&config.discovery)?;
    let resolved = std::fs::canonicalize(&exe).map_err(|_| CommandError::NoInterpreter)?;
    let interpreter = found
        .all()
        .iter()
        .find(|i| i.resolved == resolved)
        .cloned()
        .ok_or(CommandError::NoInterpreter)?;
    Ok((interpreter, exe, how))
}

/// Judge the cache at `location` as `check` would, then prove it as `check --deep` does.
fn judge(
    location: &CacheLocation,
    interpreter: &Interpreter,
    config: &WhyConfig,
) -> Result<CacheOutcome, CommandError> {
    let path = &location.path;
    let mut outcome = CacheOutcome {
        location: location.clone(),
        exists: std::fs::symlink_metadata(path).is_ok(),
        entry: None,
        error: None,
    };
    if !outcome.exists {
        return Ok(outcome);
    }
    let absolute = lexically_absolute(&config.search.cwd, path);
    let Some(candidate) =
        walk::candidate_for_file(path, &absolute, location.prefix.as_deref().map(Path::new))
    else {
        outcome.error = Some("not named like a cache".into());
        return Ok(outcome);
    };
    let entry = match scan::judge_candidate(
        candidate,
        walk::DirContext::NONE,
        &DirSources::default(),
        &Memo::disabled(),
    ) {
        Ok(entry) => entry,
        Err(e) => {
            outcome.error = Some(e.message);
            return Ok(outcome);
        }
    };
    let mut report = Report {
        entries: vec![entry],
        ..Report::default()
    };
    report.summary.add(&report.entries[0].verdict);
    let provers = Interpreters::from_list(vec![interpreter.clone()]);
    let recall = prove::Recall::open(config.prove.cache_dir.as_deref(), &provers);
    prove::run(&mut report, &config.prove, &provers, &recall)?;
    outcome.entry = report.entries.pop();
    if let Some(e) = report.errors.pop() {
        outcome.error = Some(e.message);
    }
    Ok(outcome)
}
