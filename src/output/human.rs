//! Human output: problems grouped by state (worst first) with path and reason, then one
//! summary line; coloured on a terminal, plain otherwise (anstream honours `NO_COLOR`).
//!
//! Shared by the other printers: [`write_skipped`] (what the walk did not enter, one line
//! or with `-v` one per directory), [`group_levels`] and [`also_levels`] (the caches of one
//! source that differ only by optimisation level, on one line:
//! `./app/__pycache__/a.cpython-312.pyc + .opt-1, .opt-2`).

use std::io::{self, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anstyle::{AnsiColor, Style};

use crate::messages;
use crate::output::escape;
use crate::prove::DeepSummary;
use crate::report::Report;
use crate::verdict::{Severity, State};

/// The order problem groups are printed in: what runs wrong code first.
const GROUP_ORDER: [State; 8] = [
    State::HiddenStale,
    State::Ghost,
    State::Corrupt,
    State::Suspect,
    State::Stale,
    State::Orphan,
    State::Unknown,
    State::Sourceless,
];

pub fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Error => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Cyan.on_default(),
        Severity::Ok => AnsiColor::Green.on_default(),
    }
}

const DIM: Style = Style::new().dimmed();
const BOLD: Style = Style::new().bold();

/// Print every problem entry of the report, grouped by state.
pub fn write_problems<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    for state in GROUP_ORDER {
        let entries: Vec<_> = report
            .entries
            .iter()
            .filter(|e| e.verdict.state == state)
            .collect();
        if entries.is_empty() {
            continue;
        }
        let worst = entries
            .iter()
            .map(|e| e.verdict.severity)
            .max()
            .unwrap_or(Severity::Info);
        let style = severity_style(worst);
        writeln!(
            out,
            "{style}{}{style:#} ({}): {DIM}{}{DIM:#}",
            state.name(),
            entries.len(),
            state.meaning()
        )?;
        // The optimisation levels of one source with the same reason: one line.
        let reasons: Vec<Option<String>> = entries
            .iter()
            .map(|e| messages::reason(&e.verdict))
            .collect();
        let numbered: Vec<(usize, &&crate::report::Entry)> = entries.iter().enumerate().collect();
        for ((k, entry), others) in group_levels(&numbered, |(_, e)| &e.path, |(k, _)| &reasons[*k])
        {
            writeln!(
                out,
                "  {}{}",
                escape::path(&entry.path),
                also_levels(&others)
            )?;
            if let Some(reason) = &reasons[*k] {
                writeln!(out, "      {}", escape::text(reason))?;
            }
        }
        writeln!(out)?;
    }
    if !report.errors.is_empty() {
        let style = severity_style(Severity::Error);
        writeln!(
            out,
            "{style}unreadable{style:#} ({}): {DIM}could not be judged{DIM:#}",
            report.errors.len()
        )?;
        for error in &report.errors {
            writeln!(out, "  {}", escape::path(&error.path))?;
            writeln!(out, "      {}", escape::text(&error.message))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A cache's optimisation level and its name without it: `a.cpython-311.opt-2.pyc` →
/// (`a.cpython-311.pyc`, 2); any other name is level 0 of itself.
pub fn level_of(path: &Path) -> (PathBuf, u8) {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    for level in 1..=9u8 {
        let suffix = format!(".opt-{level}.pyc");
        if let Some(base) = bytes.strip_suffix(suffix.as_bytes()) {
            let mut name = base.to_vec();
            name.extend_from_slice(b".pyc");
            return (PathBuf::from(std::ffi::OsString::from_vec(name)), level);
        }
    }
    (path.to_path_buf(), 0)
}

/// Group `items` whose paths differ only by optimisation level and whose `key` is equal,
/// in the order each group first appears: its lowest level's item, and the other levels.
pub fn group_levels<'a, T, K: Eq + std::hash::Hash>(
    items: &'a [T],
    path: impl Fn(&T) -> &Path,
    key: impl Fn(&T) -> K,
) -> Vec<(&'a T, Vec<u8>)> {
    let mut groups: Vec<(u8, &'a T, Vec<u8>)> = Vec::new();
    let mut index: std::collections::HashMap<(PathBuf, K), usize> =
        std::collections::HashMap::new();
    for item in items {
        let (base, level) = level_of(path(item));
        match index.entry((base, key(item))) {
            std::collections::hash_map::Entry::Occupied(slot) => {
                let group = &mut groups[*slot.get()];
                if level < group.0 {
                    group.2.push(group.0);
                    group.0 = level;
                    group.1 = item;
                } else {
                    group.2.push(level);
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push((level, item, Vec::new()));
            }
        }
    }
    groups
        .into_iter()
        .map(|(_, item, mut others)| {
            others.sort_unstable();
            (item, others)
        })
        .collect()
}

/// ` + .opt-1, .opt-2` after the first path of a group; empty for a group of one.
pub fn also_levels(others: &[u8]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let levels: Vec<String> = others.iter().map(|l| format!(".opt-{l}")).collect();
    format!(" + {}", levels.join(", "))
}

/// With `-v`: the fresh caches, as one more group before the problems.
pub fn write_fresh<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    let fresh: Vec<_> = report
        .entries
        .iter()
        .filter(|e| e.verdict.state == State::Fresh)
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    let style = severity_style(Severity::Ok);
    writeln!(
        out,
        "{style}fresh{style:#} ({}): {DIM}{}{DIM:#}",
        fresh.len(),
        State::Fresh.meaning()
    )?;
    for entry in fresh {
        writeln!(out, "  {}", escape::path(&entry.path))?;
    }
    writeln!(out)
}

/// What the walk did not enter: one line (how to include it), or with `-v` one line per
/// directory. Nothing below [`Verbosity::Normal`].
pub fn write_skipped<W: Write>(
    out: &mut W,
    walk: &crate::walk::WalkSummary,
    verbosity: crate::output::verbosity::Verbosity,
) -> io::Result<()> {
    if !verbosity.normal() {
        return Ok(());
    }
    if verbosity.verbose() {
        for skipped in &walk.skipped {
            writeln!(
                out,
                "skipped {}/ ({}; --include-venvs walks it)",
                escape::path(&skipped.path),
                if skipped.venv {
                    "a virtual environment"
                } else {
                    "a tool's environments"
                }
            )?;
        }
    } else if let Some(line) = walk.skipped_line() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The summary line, then the header-only note when it applies.
pub fn write_summary<W: Write>(out: &mut W, report: &Report, elapsed: Duration) -> io::Result<()> {
    let s = &report.summary;
    let total = s.total();
    write!(
        out,
        "{BOLD}{total} {}{BOLD:#} checked in {:.2}s",
        if total == 1 { "cache" } else { "caches" },
        elapsed.as_secs_f64()
    )?;
    let mut parts = Vec::new();
    for state in State::ALL {
        let n = s.count(state);
        if n > 0 {
            let style = if state == State::Fresh {
                severity_style(Severity::Ok)
            } else {
                severity_style(crate::verdict::default_severity(state))
            };
            parts.push(format!("{style}{n} {}{style:#}", state.name()));
        }
    }
    if !report.errors.is_empty() {
        let style = severity_style(Severity::Error);
        parts.push(format!(
            "{style}{} unreadable{style:#}",
            report.errors.len()
        ));
    }
    if !parts.is_empty() {
        write!(out, ": {}", parts.join(", "))?;
    }
    writeln!(out)?;
    if s.header_only > 0 {
        // Python 2 and 3.0–3.2 headers hold no size: those caches were judged by mtime alone.
        let fields = if s.header_only_unsized == 0 {
            "mtime and size".to_owned()
        } else if s.header_only_unsized == s.header_only {
            "mtime only, as Python 2 headers hold no size".to_owned()
        } else {
            format!(
                "mtime and size; mtime only for the {} Python 2 caches, whose headers hold no size",
                s.header_only_unsized
            )
        };
        writeln!(
            out,
            "{DIM}{} judged by header only ({fields}, as the interpreter does); the code inside was not compared with the source.{DIM:#}",
            if s.header_only == 1 {
                "1 cache was".to_owned()
            } else {
                format!("{} caches were", s.header_only)
            }
        )?;
    }
    if s.future_source_mtimes > 0 {
        writeln!(
            out,
            "{DIM}clock skew: {} an mtime later than now (set by a tool or a skewed clock), which says nothing about when {} changed; `--format json` lists them (future_source_mtime).{DIM:#}",
            if s.future_source_mtimes == 1 {
                "1 cache's source has".to_owned()
            } else {
                format!("{} caches' sources have", s.future_source_mtimes)
            },
            if s.future_source_mtimes == 1 { "it" } else { "they" }
        )?;
    }
    Ok(())
}

/// After a shallow check that judged caches by header only: how to prove them.
pub fn write_deep_hint<W: Write>(out: &mut W, report: &Report) -> io::Result<()> {
    if report.summary.header_only > 0 {
        writeln!(
            out,
            "{DIM}Run `pycguard check --deep` to prove them: it compiles each source with the interpreter that wrote the cache and compares the code.{DIM:#}"
        )?;
    }
    Ok(())
}

/// After `check --deep`: how many caches were proven, and which could not be, and why.
pub fn write_deep_summary<W: Write>(out: &mut W, deep: &DeepSummary) -> io::Result<()> {
    let proven = deep.compiled + deep.remembered;
    writeln!(
        out,
        "{BOLD}deep:{BOLD:#} {proven} {} proven against {} source ({} compiled now, {} remembered from earlier runs)",
        if proven == 1 { "cache" } else { "caches" },
        if proven == 1 { "its" } else { "their" },
        deep.compiled,
        deep.remembered
    )?;
    let unproven = deep.unproven();
    if unproven == 0 {
        return Ok(());
    }
    let mut why = Vec::new();
    let missing: usize = deep.missing_interpreter.values().sum();
    match deep.missing_interpreter.len() {
        0 => {}
        1 => {
            let interpreter = deep.missing_interpreter.keys().next().expect("one");
            why.push(format!(
                "{missing} {} {}, which was not found (add --python PATH)",
                if missing == 1 { "needs" } else { "need" },
                escape::text(interpreter)
            ));
        }
        _ => {
            // Each interpreter named once, with its count.
            let each: Vec<String> = deep
                .missing_interpreter
                .iter()
                .map(|(interpreter, n)| format!("{n} {}", escape::text(interpreter)))
                .collect();
            why.push(format!(
                "{missing} need interpreters that were not found ({}; add --python PATH)",
                each.join(", ")
            ));
        }
    }
    if deep.pytest > 0 {
        why.push(format!("{} rewritten by pytest", deep.pytest));
    }
    if !deep.failed.is_empty() {
        why.push(format!("{} failed", deep.failed.len()));
    }
    if !deep.other.is_empty() {
        why.push(format!("{} cannot be reproduced", deep.other.len()));
    }
    let style = severity_style(Severity::Warning);
    writeln!(
        out,
        "{style}{unproven} {} could not be proven{style:#} and {} judged by header only: {}",
        if unproven == 1 { "cache" } else { "caches" },
        if unproven == 1 { "is" } else { "are" },
        why.join(", ")
    )?;
    const SHOWN: usize = 20;
    for (path, reason) in deep.failed.iter().chain(&deep.other).take(SHOWN) {
        writeln!(out, "  {}", escape::path(path))?;
        writeln!(out, "      {}", escape::text(reason))?;
    }
    let listed = deep.failed.len() + deep.other.len();
    if listed > SHOWN {
        writeln!(
            out,
            "  {DIM}… and {} more (see --format json){DIM:#}",
            listed - SHOWN
        )?;
    }
    Ok(())
}
