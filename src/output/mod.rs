//! Printers: human text (grouped problems, colour on a terminal) and the JSON contract.

pub mod escape;
pub mod human;
pub mod json;

use std::io;

/// Was this write error a closed pipe (`pycguard check | head`)? Then exit quietly.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}
