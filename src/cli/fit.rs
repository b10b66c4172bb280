//! `etalon fit`: how well a bank fits response data (items, persons, local dependence, reliability).

use crate::cli::common::{DataArgs, load_bank};
use crate::cli::output::{emit, write_csv};
use anyhow::{Context, Result};
use clap::Args;
use etalon::assessment::files::check_outputs;
use etalon::calibration::diagnostics;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct FitArgs {
    /// Item bank (.csv or .json); the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Item fit CSV: item,s_x2,df,p,rmsea (S-X², as mirt's itemfit).
    #[arg(long)]
    out: PathBuf,
    /// Person fit CSV: person,lz,theta,se,answers (Zh, as mirt's personfit, at the EAP θ̂).
    #[arg(long)]
    persons: Option<PathBuf>,
    /// Yen's Q3 matrix CSV: item and one column per item.
    #[arg(long)]
    q3: Option<PathBuf>,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, allow_hyphen_values = true)]
    threads: Option<usize>,
}

pub fn run(args: FitArgs) -> Result<()> {
    crate::cli::common::set_threads(args.threads)?;
    let outputs: Vec<&std::path::Path> = std::iter::once(args.out.as_path())
        .chain(args.persons.as_deref())
        .chain(args.q3.as_deref())
        .collect();
    let inputs: Vec<&std::path::Path> = std::iter::once(args.data.path())
        .chain(args.bank.as_deref())
        .collect();
    check_outputs(&outputs, &inputs)?;
    let bank = load_bank(args.bank.as_deref())?;
    let start = Instant::now();
    let data = args.data.read()?;
    let d = diagnostics::diagnose(&bank, &data).with_context(|| args.data.path().display().to_string())?;
    write_csv(&args.out, |c| {
        c.write_record(["item", "s_x2", "df", "p", "rmsea"])?;
        for f in &d.items {
            c.write_record([
                f.item.clone(),
                f.s_x2.to_string(),
                f.df.to_string(),
                f.p_value.to_string(),
                f.rmsea.to_string(),
            ])?;
        }
        Ok(())
    })?;
    if let Some(path) = &args.persons {
        write_csv(path, |c| {
            c.write_record(["person", "lz", "theta", "se", "answers"])?;
            for p in &d.persons {
                c.write_record([
                    p.person.clone(),
                    p.zh.to_string(),
                    p.theta.to_string(),
                    p.se.to_string(),
                    p.answers.to_string(),
                ])?;
            }
            Ok(())
        })?;
    }
    if let (Some(path), Some(ld)) = (&args.q3, &d.local_dependence) {
        write_csv(path, |c| {
            c.write_field("item")?;
            c.write_record(&ld.items)?;
            for (i, id) in ld.items.iter().enumerate() {
                c.write_field(id)?;
                c.write_record(
                    ld.matrix[i * ld.items.len()..(i + 1) * ld.items.len()]
                        .iter()
                        .map(f64::to_string),
                )?;
            }
            Ok(())
        })?;
    }
    let misfitting: Vec<_> = d
        .items
        .iter()
        .filter(|f| f.p_value < 0.05)
        .map(|f| json!({"item": f.item, "s_x2": f.s_x2, "df": f.df, "p": f.p_value, "rmsea": f.rmsea}))
        .collect();
    let aberrant = d.persons.iter().filter(|p| p.zh < -1.96).count();
    let ld = d.local_dependence.as_ref();
    let mut value = json!({
        "persons": data.n_persons(),
        "items": data.item_ids().len(),
        "marginal_reliability": d.marginal_reliability,
        "standard_errors": d.standard_errors,
        "empirical_reliability": d.empirical_reliability,
        "items_misfitting_at_05": misfitting,
        "persons_lz_below_-1.96": aberrant,
        "q3_mean": ld.map(|l| l.mean),
        "q3_max": ld.and_then(|l| l.max.clone()),
        "q3_flagged": ld.map(|l| l.flagged.iter().take(20).cloned().collect::<Vec<_>>()),
        "elapsed_s": start.elapsed().as_secs_f64(),
        "out": args.out.display().to_string(),
    });
    match (&d.model_fit, &d.model_fit_skipped) {
        (Some(m), _) => value["m2"] = json!(m),
        (None, Some(reason)) => value["m2_skipped"] = json!(reason.to_string()),
        (None, None) => {}
    }
    if let Some(reason) = d.item_fit_skipped {
        value["item_fit_skipped"] = json!(reason.to_string());
    }
    emit(&value)
}
