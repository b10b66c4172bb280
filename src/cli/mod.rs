//! Command-line definitions (clap) and dispatch.

mod bank;
mod data;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  etalon bank example --out bank.json          write the embedded example bank
  etalon bank validate bank.json               check a bank, print a JSON summary
  etalon bank convert bank.json bank.csv       convert between JSON and CSV
  etalon bank convert --from mirt --model 2pl SAT12_2PL.csv bank.csv
                                               import a mirt coefficient table
  etalon data info responses.csv.gz            read a response file and summarise it";

/// Etalon: adaptive competency assessment — item banks, ability estimation, adaptive tests, calibration.
#[derive(Parser)]
#[command(name = "etalon", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Item banks: validate, convert, write the example.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Response data: read and summarise.
    #[command(subcommand)]
    Data(data::DataCommand),
}

/// Print a JSON value on standard output as one line.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// Parse the command line, run the command, and turn errors into a message and exit code 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bank(cmd) => bank::run(cmd),
        Command::Data(cmd) => data::run(cmd).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
