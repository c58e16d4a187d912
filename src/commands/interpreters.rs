//! `pycguard interpreters`: the interpreters found, and how many caches under the given
//! paths each one can prove with `check --deep`; also those refused (an executable others
//! could have planted, one that gave no usable answer), each with why. Every interpreter
//! is asked afresh here (isolated, as always), so the listing never shows a remembered
//! answer.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anstyle::Style;

use crate::cli::PythonArgs;
use crate::exit::ExitCode;
use crate::interpreters::{Discovery, Interpreters};
use crate::prove;
use crate::pyc::magic;
use crate::scan::{self, Keep};
use crate::settings::ScanConfig;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// Run the command.
pub fn run(scan: &ScanConfig, python: &PythonArgs) -> io::Result<ExitCode> {
    // Every interpreter is asked now: the listing shows what they say, not what an
    // earlier run remembered (and the memo is rewritten with it).
    let interpreters = Interpreters::discover_asking_all(&Discovery {
        pythons: python.pythons.clone(),
        roots: scan.roots.iter().map(|r| r.path.clone()).collect(),
        cache_dir: scan.cache_dir.clone(),
    });
    if let Some(bad) = interpreters.rejected_flag() {
        eprintln!(
            "pycguard: error: --python {}: {}",
            crate::output::escape::path(&bad.path),
            crate::output::escape::text(&bad.message)
        );
        return Ok(ExitCode::Usage);
    }
    let report = scan::run(scan, Keep::All);
    let mut provable = vec![0usize; interpreters.all().len()];
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &report.entries {
        if !prove::provable(entry) || entry.name.is_pytest() {
            continue;
        }
        let Some(raw) = read_magic(&entry.path) else {
            continue;
        };
        match interpreters.for_cache(raw, &entry.path) {
            Some(i) => provable[i] += 1,
            None => {
                let who = magic::lookup(raw).map_or_else(
                    || format!("magic {}", u16::from_le_bytes([raw[0], raw[1]])),
                    |m| m.series.to_string(),
                );
                *missing.entry(who).or_default() += 1;
            }
        }
    }
    let mut out = anstream::stdout().lock();
    let rows: Vec<[String; 6]> = interpreters
        .all()
        .iter()
        .zip(&provable)
        .map(|(i, n)| {
            [
                crate::output::escape::path_string(&i.path),
                crate::output::escape::text(&i.version).into_owned(),
                format!("{} ({})", i.magic_value(), hex(&i.magic)),
                i.cache_tag.clone().unwrap_or_else(|| "-".into()),
                i.origin.name().to_owned(),
                n.to_string(),
            ]
        })
        .collect();
    let heads = ["PATH", "VERSION", "MAGIC", "TAG", "FOUND VIA", "CACHES"];
    let mut widths = heads.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String; 6]| {
        let mut s = String::new();
        for (k, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if k == 5 {
                s.push_str(&format!("{cell:>w$}"));
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{BOLD}{}{BOLD:#}", line(&heads.map(str::to_owned)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no Python interpreter found; pass --python PATH)")?;
    }
    for (who, n) in &missing {
        writeln!(
            out,
            "{n} {} need {who}, which was not found (add --python PATH)",
            if *n == 1 { "cache" } else { "caches" }
        )?;
    }
    for r in &interpreters.rejected {
        writeln!(
            out,
            "{DIM}ignored {} ({}): {}{DIM:#}",
            crate::output::escape::path(&r.path),
            r.origin.name(),
            crate::output::escape::text(&r.message)
        )?;
    }
    out.flush()?;
    Ok(ExitCode::Success)
}

fn read_magic(path: &std::path::Path) -> Option<[u8; 4]> {
    // Without blocking on a FIFO swapped in since the check.
    let head = crate::read::read_head(path, crate::read::Follow::Yes, 4).ok()?;
    head.try_into().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
