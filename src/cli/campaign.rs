//! `etalon campaign example | run | report` (FORMATS.md, Campaigns).

use crate::cli::common::{load_bank, set_threads};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use etalon::engine::campaign::{self, Campaign, ParticipantResult, Report, Target};
use etalon::engine::profile::{ProfileConfig, ProfileEngine};
use etalon::engine::simulate::derive_seed;
use etalon::items::Bank;
use rayon::prelude::*;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
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
        /// Number of participants.
        #[arg(long)]
        participants: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Results file (JSON lines, appended).
        #[arg(long)]
        out: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
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

/// The example campaign: every competence of the example bank, targets by domain.
fn example_campaign() -> Campaign {
    let bank = etalon::items::example::example_bank();
    let targets = bank
        .framework()
        .domains
        .iter()
        .enumerate()
        .flat_map(|(d, dom)| {
            dom.competences.iter().map(move |c| Target {
                competence: c.id.clone(),
                // Security and information handling matter most to the example organisation.
                target_level: if d == 3 || d == 0 { 4 } else { 3 },
            })
        })
        .collect();
    Campaign {
        id: "example-campaign".into(),
        name: "Digital competences of the staff (example)".into(),
        bank: None,
        targets,
        simulated_correlation: 0.5,
        assessment: ProfileConfig::default(),
    }
}

fn load_campaign(path: &Path) -> Result<(Campaign, Bank)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let c: Campaign =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid campaign", path.display()))?;
    c.validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bank = match &c.bank {
        Some(b) => {
            let p = path.parent().map_or_else(|| PathBuf::from(b), |d| d.join(b));
            load_bank(Some(&p))?
        }
        None => load_bank(None)?,
    };
    Ok((c, bank))
}

/// Number of complete lines already in a results file (participants are numbered after them).
fn existing_lines(path: &Path) -> usize {
    std::fs::File::open(path)
        .map(|f| {
            std::io::BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .unwrap_or(0)
}

pub fn run(cmd: CampaignCommand) -> Result<()> {
    match cmd {
        CampaignCommand::Example { out } => {
            let c = example_campaign();
            std::fs::write(&out, serde_json::to_string_pretty(&c)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            crate::cli::print_json(
                &json!({"campaign": c.id, "competences": c.targets.len(), "out": out.display().to_string()}),
            );
        }
        CampaignCommand::Run {
            campaign,
            participants,
            seed,
            out,
            threads,
        } => {
            set_threads(threads)?;
            let start = Instant::now();
            let (c, bank) = load_campaign(&campaign)?;
            let engine = ProfileEngine::new(&bank, c.profile_config())?;
            let first = existing_lines(&out);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .with_context(|| format!("cannot open {}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let (mut agree, mut cells, mut items) = (0usize, 0usize, 0usize);
            // Chunks run in parallel; lines are written in participant order and flushed one by one.
            for chunk_start in (0..participants).step_by(256) {
                let chunk: Vec<ParticipantResult> = (chunk_start..(chunk_start + 256).min(participants))
                    .into_par_iter()
                    .map(|i| {
                        let id = format!("P{}", first + i + 1);
                        campaign::simulate_participant(
                            &engine,
                            &c,
                            &id,
                            derive_seed(seed, (first + i) as u64),
                        )
                    })
                    .collect::<Result<_, _>>()?;
                for r in &chunk {
                    for (cid, comp) in &r.competences {
                        let map = c.assessment.levels.for_competence(cid);
                        if let Some(t) = comp.true_theta {
                            agree += usize::from(map.level(t) == comp.level);
                        }
                        cells += 1;
                        items += comp.items;
                    }
                    writeln!(w, "{}", serde_json::to_string(r)?)?;
                    w.flush()?;
                }
            }
            let per = cells.max(1) as f64;
            crate::cli::print_json(&json!({
                "participants": participants,
                "first_participant": format!("P{}", first + 1),
                "competences": engine.competences().len(),
                "exact_level_agreement": agree as f64 / per,
                "mean_items_per_competence": items as f64 / per,
                "mean_items_per_participant": items as f64 / participants.max(1) as f64,
                "classify": c.assessment.classify,
                "elapsed_s": start.elapsed().as_secs_f64(),
                "out": out.display().to_string(),
            }));
        }
        CampaignCommand::Report {
            results,
            campaign,
            out,
            svg,
        } => {
            let (c, bank) = load_campaign(&campaign)?;
            let (rows, skipped) = read_results(&results)?;
            if rows.is_empty() {
                bail!("{}: no participant result", results.display());
            }
            let report = campaign::report(&c, &bank, &rows);
            let mut value = serde_json::to_value(&report)?;
            value["skipped_lines"] = json!(skipped);
            std::fs::write(&out, serde_json::to_string_pretty(&value)? + "\n")
                .with_context(|| format!("cannot write {}", out.display()))?;
            if let Some(svg) = &svg {
                std::fs::write(svg, chart(&report, &c))
                    .with_context(|| format!("cannot write {}", svg.display()))?;
            }
            if skipped > 0 {
                eprintln!("warning: skipped {skipped} truncated last line");
            }
            crate::cli::print_json(&json!({
                "participants": report.participants,
                "competences": report.competences.len(),
                "training_needs": report.training_needs,
                "skipped_lines": skipped,
                "out": out.display().to_string(),
            }));
        }
    }
    Ok(())
}

/// Read results; a truncated or unparsable *last* line (a crash while writing) is skipped and counted,
/// any other bad line is an error naming it.
fn read_results(path: &Path) -> Result<(Vec<ParticipantResult>, usize)> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut rows = Vec::with_capacity(lines.len());
    let mut skipped = 0;
    for (k, (n, line)) in lines.iter().enumerate() {
        match serde_json::from_str::<ParticipantResult>(line) {
            Ok(r) => rows.push(r),
            Err(_) if k + 1 == lines.len() => skipped += 1,
            Err(e) => bail!("{}: line {}: {e}", path.display(), n + 1),
        }
    }
    Ok((rows, skipped))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal stacked bars: one per competence, the share of participants at each level, the target
/// level marked.
fn chart(report: &Report, campaign: &Campaign) -> String {
    const COLOURS: [&str; 9] = [
        "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850",
    ];
    let (left, width, row) = (330.0, 600.0, 28.0);
    let height = 90.0 + row * report.competences.len() as f64 + 40.0;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 30.0
    );
    s += &format!("<title>{}</title>\n", escape(&campaign.name));
    s += &format!(
        "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{} — levels of {} participants</text>\n",
        escape(&campaign.name),
        report.participants
    );
    let labels = campaign.assessment.levels.default.labels();
    let step = (left + width - 10.0) / labels.len() as f64;
    for (k, colour) in COLOURS.iter().enumerate().take(labels.len()) {
        let x = 10.0 + k as f64 * step;
        s += &format!(
            "<rect x=\"{x:.1}\" y=\"40\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"50\" font-size=\"10\">{k} {}</text>\n",
            x + 15.0,
            escape(&labels[k])
        );
    }
    for (i, c) in report.competences.iter().enumerate() {
        let y = 70.0 + row * i as f64;
        s += &format!(
            "<text x=\"10\" y=\"{:.1}\">{} {}</text>\n",
            y + 17.0,
            escape(&c.id),
            escape(&c.name)
        );
        let total = c.level_counts.iter().sum::<usize>().max(1) as f64;
        let mut x = left;
        for (k, &n) in c.level_counts.iter().enumerate() {
            let w = width * n as f64 / total;
            if w > 0.0 {
                s += &format!(
                    "<rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"22\" fill=\"{}\"><title>level {k}: {n}</title></rect>\n",
                    COLOURS[k.min(8)]
                );
            }
            x += w;
        }
        let below: usize = c.level_counts.iter().take(c.target_level).sum();
        let tx = left + width * below as f64 / total;
        s += &format!(
            "<line x1=\"{tx:.2}\" y1=\"{:.1}\" x2=\"{tx:.2}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"2\"/>\n",
            y - 2.0,
            y + 24.0
        );
    }
    s += &format!(
        "<text x=\"10\" y=\"{:.1}\">Black mark: share below the target level. Greatest training need: {}</text>\n",
        height - 15.0,
        escape(report.training_needs.first().map_or("-", String::as_str))
    );
    s += "</svg>\n";
    s
}
