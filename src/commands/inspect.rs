//! `pycguard inspect`: everything known about the given cache files, printed.

use std::io::{self, Write};

use crate::cli::{Format, InspectArgs};
use crate::commands::usage_error;
use crate::exit::ExitCode;
use crate::inspect;
use crate::settings;

pub fn run_inspect(args: &InspectArgs) -> io::Result<ExitCode> {
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(err) => return Ok(usage_error(&err)),
    };
    let prefix = settings::pycache_prefix(args.pycache_prefix.as_deref(), &cwd);
    let mut out = anstream::stdout().lock();
    let mut any_error = false;
    if args.format == Format::Json {
        out.write_all(b"[")?;
    }
    for (n, file) in args.files.iter().enumerate() {
        let absolute = crate::layout::lexically_absolute(&cwd, file);
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
