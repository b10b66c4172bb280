//! `etalon campaign example | run | report` (FORMATS.md, Campaigns).

use crate::cli::common::set_threads;
use crate::cli::output::emit;
use anyhow::{Context, Result};
use clap::Subcommand;
use etalon::assessment::Assessor;
use etalon::assessment::campaign;
use etalon::assessment::files::{campaign_bank_path, check_outputs, load_campaign, write_atomically};
use etalon::assessment::results::{ResultsLog, read_results, run_simulated};
use etalon::assessment::{chart, presets};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Write a ready campaign over the embedded example bank.
    Example {
        /// Output campaign file (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run simulated participants; append one JSON line per finished participant.
    Run {
        /// Campaign file.
        #[arg(long)]
        campaign: PathBuf,
        /// Number of participants (1 to 10000000).
        #[arg(long, allow_hyphen_values = true)]
        participants: usize,
        /// Seed.
        #[arg(long, allow_hyphen_values = true, default_value_t = 1)]
        seed: u64,
        /// Results file (JSON lines, appended).
        #[arg(long)]
        out: PathBuf,
        /// Worker threads (default: all cores; at most 4 per core).
        #[arg(long, allow_hyphen_values = true)]
        threads: Option<usize>,
    },
    /// Aggregate results into a report (and an SVG chart of the level distributions).
    Report {
        /// Results file (JSON lines).
        results: PathBuf,
        /// Campaign file.
        #[arg(long)]
        campaign: PathBuf,
        /// Output report (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Output chart (SVG).
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

/// The most participants of one run.
const MAX_PARTICIPANTS: usize = 10_000_000;

pub fn run(cmd: CampaignCommand) -> Result<()> {
    match cmd {
        CampaignCommand::Example { out } => {
            check_svg_or_json(&out, "json")?;
            check_outputs(&[&out], &[])?;
            let c = presets::example_campaign();
            let text = serde_json::to_string_pretty(&c)? + "\n";
            write_atomically(&out, |w| w.write_all(text.as_bytes()))?;
            emit(
                &json!({"campaign": c.id(), "competences": c.targets().len(), "out": out.display().to_string()}),
            )?;
        }
        CampaignCommand::Run {
            campaign,
            participants,
            seed,
            out,
            threads,
        } => {
            set_threads(threads)?;
            crate::cli::common::check_count("--participants", participants, 1, MAX_PARTICIPANTS)?;
            check_outputs(&[&out], &[&campaign])?;
            let start = Instant::now();
            let (c, bank) = load_campaign(&campaign)?;
            if let Some(b) = campaign_bank_path(&campaign, &c) {
                check_outputs(&[&out], &[&campaign, &b])?;
            }
            let assessor = Assessor::new(&bank, c.design(&bank)?)?;
            let mut log = ResultsLog::open(&out)?;
            if log.set_aside_bytes() > 0 {
                note!(
                    "warning: {}: an incomplete last line ({} bytes) was moved to {}.truncated",
                    out.display(),
                    log.set_aside_bytes(),
                    out.display()
                );
            }
            let summary = run_simulated(&mut log, &assessor, &c, participants, seed)?;
            emit(&json!({
                "participants": summary.participants,
                "first_participant": summary.first_participant.map(|n| format!("P{n}")),
                "competences": c.targets().len(),
                "design": assessor.design_name(),
                "exact_level_agreement": summary.exact_level_agreement,
                "mean_items_per_competence": summary.mean_items_per_competence,
                "mean_items_per_participant": summary.mean_items_per_participant,
                "classify": c.assessment().classify,
                "elapsed_s": start.elapsed().as_secs_f64(),
                "out": out.display().to_string(),
            }))?;
        }
        CampaignCommand::Report {
            results,
            campaign,
            out,
            svg,
        } => {
            check_svg_or_json(&out, "json")?;
            let mut outputs = vec![out.as_path()];
            if let Some(s) = &svg {
                check_svg_or_json(s, "svg")?;
                outputs.push(s);
            }
            check_outputs(&outputs, &[&results, &campaign])?;
            let (c, bank) = load_campaign(&campaign)?;
            if let Some(b) = campaign_bank_path(&campaign, &c) {
                check_outputs(&outputs, &[&results, &campaign, &b])?;
            }
            let file = std::fs::File::open(&results)
                .with_context(|| format!("{}: cannot read", results.display()))?;
            let read = read_results(file, &results)?;
            let report = campaign::report(&c, &bank, &read.results, Some(&read.lines))
                .with_context(|| results.display().to_string())?;
            let skipped = usize::from(read.truncated_last_line);
            let mut value = serde_json::to_value(&report)?;
            value["skipped_lines"] = json!(skipped);
            let text = serde_json::to_string_pretty(&value)? + "\n";
            write_atomically(&out, |w| w.write_all(text.as_bytes()))?;
            if let Some(svg) = &svg {
                let chart = chart::campaign_chart(&report, &c);
                write_atomically(svg, |w| w.write_all(chart.as_bytes()))?;
            }
            if skipped > 0 {
                note!("warning: skipped {skipped} truncated last line");
            }
            emit(&json!({
                "participants": report.participants,
                "competences": report.competences.len(),
                "training_needs": report.training_needs,
                "skipped_lines": skipped,
                "out": out.display().to_string(),
            }))?;
        }
    }
    Ok(())
}

/// Refuse an output whose extension says another format (`--svg chart.png`).
pub fn check_svg_or_json(path: &std::path::Path, ext: &str) -> Result<()> {
    let ok = path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext));
    if !ok {
        anyhow::bail!(
            "{}: this output is written as {}; give a file name ending in .{ext}",
            path.display(),
            ext.to_uppercase()
        );
    }
    Ok(())
}
