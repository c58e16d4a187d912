//! The `pycguard` binary: parse the command line and run it (everything else is in
//! [`pycguard::run`]).

fn main() -> std::process::ExitCode {
    pycguard::run()
}
