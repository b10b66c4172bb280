//! Command-line definitions (clap) and dispatch.

/// `eprintln!` that never panics: a closed or full standard error loses the message, nothing more.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod assess;
mod bank;
mod calibrate;
mod campaign;
mod classical;
mod common;
mod data;
mod dif;
mod drift;
mod fit;
mod link;
mod output;
mod plot;
mod score;
mod serve;
mod simulate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  etalon assess                                take an adaptive test on the example bank
  etalon bank example --out bank.json          write the embedded example bank
  etalon bank validate bank.json               check a bank, print a JSON summary
  etalon bank convert bank.json bank.csv       convert between JSON and CSV
  etalon bank convert --from mirt --model 2pl SAT12_2PL.csv bank.csv
                                               import a mirt coefficient table
  etalon calibrate responses.csv --model 2pl --out bank.csv --se
                                               fit item parameters (MML-EM)
  etalon campaign example --out campaign.json && etalon campaign run --campaign campaign.json \
      --participants 1000 --out results.jsonl && etalon campaign report results.jsonl \
      --campaign campaign.json --out report.json --svg levels.svg
                                               an assessment campaign, simulated
  etalon data info responses.csv.gz            read a response file and summarise it
  etalon score --bank bank.csv --responses data.csv --method eap --out scores.csv
                                               estimate every person's ability
  etalon simulate --bank bank.csv --examinees 10000 --stop-se 0.3 --out results.csv
                                               simulate adaptive tests";

/// Etalon: adaptive competency assessment — item banks, ability estimation, adaptive tests, calibration.
#[derive(Parser)]
#[command(name = "etalon", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print results as JSON (the default when standard output is not a terminal; a terminal gets a
    /// readable summary).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Take an adaptive test in the terminal (the embedded example bank by default).
    Assess(assess::AssessArgs),
    /// Item banks: validate, convert, write the example.
    #[command(subcommand)]
    Bank(bank::BankCommand),
    /// Fit item parameters by marginal maximum likelihood (EM) and write a bank.
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Assessment campaigns: example, run (simulated participants), report.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Response data: read and summarise.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// How well a bank fits response data: item fit (S-X²), person fit (lz), local dependence (Q3),
    /// M2 with RMSEA, SRMSR, TLI and CFI, marginal and empirical reliability.
    Fit(fit::FitArgs),
    /// Differential item functioning between two groups (Mantel–Haenszel, or the IRT likelihood
    /// ratio between multiple-group calibrations).
    Dif(dif::DifArgs),
    /// Item parameter drift between two calibrations of the same items, after linking (with a chart).
    Drift(drift::DriftArgs),
    /// Put a new calibration on a bank's scale through common items (mean/mean, mean/sigma, Haebara,
    /// Stocking–Lord).
    Link(link::LinkArgs),
    /// Plot a bank: item characteristic curves, information, test characteristic curve, conditional
    /// SE, Wright map (SVG, and the values as CSV).
    Plot(plot::PlotArgs),
    /// Estimate every person's ability (EAP, MAP, ML or WLE) from a response file.
    Score(score::ScoreArgs),
    /// Simulate adaptive tests for examinees of known ability.
    Simulate(Box<simulate::SimulateArgs>),
    /// Run the assessment service (HTTP API v1) on SQLite or PostgreSQL.
    Serve(serve::ServeArgs),
    /// Organisations of the service: create one and print its API key.
    #[command(subcommand)]
    Org(serve::OrgCommand),
    /// Benchmarks: load a running server.
    #[command(subcommand)]
    Bench(serve::BenchCommand),
}

/// Parse the command line, run the command, and turn errors into a message and exit code 1 (2 for
/// arguments the parser rejects).
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(&e),
    };
    output::set_json(cli.json);
    let result = match cli.command {
        Command::Assess(args) => assess::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bank(cmd) => bank::run(cmd),
        Command::Calibrate(args) => calibrate::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Campaign(cmd) => campaign::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Data(cmd) => data::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Score(args) => score::run(args).map(|()| ExitCode::SUCCESS),
        Command::Fit(args) => fit::run(args).map(|()| ExitCode::SUCCESS),
        Command::Dif(args) => dif::run(args).map(|()| ExitCode::SUCCESS),
        Command::Drift(args) => drift::run(args).map(|()| ExitCode::SUCCESS),
        Command::Plot(args) => plot::run(args).map(|()| ExitCode::SUCCESS),
        Command::Link(args) => link::run(args).map(|()| ExitCode::SUCCESS),
        Command::Simulate(args) => simulate::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::serve(args).map(|()| ExitCode::SUCCESS),
        Command::Org(cmd) => serve::org(cmd).map(|()| ExitCode::SUCCESS),
        Command::Bench(cmd) => serve::bench(cmd).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            note!("error: {}", message(&e));
            ExitCode::from(1)
        }
    }
}

/// `--help` and `--version` go to standard output like any result (a closed pipe ends quietly, a full
/// disk is an error); other parse errors go to standard error with clap's exit code (2).
fn parse_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match output::write_stdout(&e.render().to_string()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    note!("error: {err}");
                    ExitCode::from(1)
                }
            }
        }
        _ => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}

/// The most characters of one message line, and lines of a message, printed.
const MAX_LINE_CHARS: usize = 1000;
const MAX_LINES: usize = 60;

/// An error and its causes as one message a person can act on: a cause already said by the message
/// is not repeated (`x.csv: x.csv: …`, `A: A`), control characters are shown escaped, and long lines
/// and long lists are cut (a message never echoes megabytes of input).
pub fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        match parts.iter().position(|p| text.contains(p.as_str())) {
            Some(i) => parts[i] = text,
            None => parts.push(text),
        }
    }
    let joined = parts.join(": ");
    let mut lines: Vec<String> = joined
        .lines()
        .map(|line| {
            let shown: String = line
                .chars()
                .flat_map(|c| {
                    if c.is_control() {
                        c.escape_default().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            output::clip(&shown, MAX_LINE_CHARS)
        })
        .collect();
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("  … and {more} more lines"));
    }
    lines.join("\n")
}
