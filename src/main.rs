//! The `etalon` command-line tool. Every command prints its result summary as one JSON object on
//! standard output, progress on standard error, and exits non-zero with a clear message on bad input.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
