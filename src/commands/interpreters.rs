//! `pycguard interpreters`: the interpreters found, and how many caches under the given
//! paths each one can prove with `check --deep`; also those refused (an executable others
//! could have planted, one that gave no usable answer), each with why. Every interpreter
//! is asked afresh here (isolated, as always), so the listing never shows a remembered
//! answer. The exit status is 0 unless a `--python` is unusable (2).

use std::collections::BTreeMap;

use crate::commands::{CommandError, CommandResult, Finished};
use crate::exit::Tally;
use crate::interpreters::Interpreters;
use crate::output::interpreters::{print, Provable};
use crate::prove;
use crate::pyc::magic;
use crate::report::Report;
use crate::scan::{self, Keep};
use crate::settings::InterpretersConfig;

/// Run `interpreters`.
pub fn run(config: &InterpretersConfig) -> CommandResult {
    // Every interpreter is asked now: the listing shows what they say, not what an
    // earlier run remembered (and the memo is rewritten with it).
    let interpreters = Interpreters::discover_asking_all(&config.discovery);
    if let Some(bad) = interpreters.rejected_flag() {
        return Err(CommandError::BadPython(bad.clone()));
    }
    let report = scan::run(&config.scan, Keep::All);
    let provable = count_provable(&report, &interpreters);
    print(
        &mut config.verbosity.stdout(),
        &interpreters,
        &provable,
        config.format,
        config.verbosity,
    )?;
    Ok(Finished::with(Tally::default()))
}

/// How many caches of `report` each interpreter can prove, and how many need one that
/// was not found.
fn count_provable(report: &Report, interpreters: &Interpreters) -> Provable {
    let mut per_interpreter = vec![0usize; interpreters.all().len()];
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &report.entries {
        if !prove::provable(entry) || entry.name.is_pytest() {
            continue;
        }
        let Some(raw) = read_magic(&entry.path) else {
            continue;
        };
        match interpreters.for_cache(raw, &entry.path) {
            Some(i) => per_interpreter[i] += 1,
            None => {
                let who = magic::lookup(raw).map_or_else(
                    || format!("magic {}", u16::from_le_bytes([raw[0], raw[1]])),
                    |m| m.series.to_string(),
                );
                *missing.entry(who).or_default() += 1;
            }
        }
    }
    Provable {
        per_interpreter,
        missing,
    }
}

fn read_magic(path: &std::path::Path) -> Option<[u8; 4]> {
    // Without blocking on a FIFO swapped in since the check.
    let head = crate::read::read_head(path, crate::read::Follow::Yes, 4).ok()?;
    head.try_into().ok()
}
