//! `etalon data items` and `etalon data key`: classical item analysis, scoring with a key.

use crate::cli::data::{Format, write_output};
use crate::cli::output::emit;
use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::assessment::files::check_outputs;
use etalon::calibration::classical;
use etalon::items::{self, Responses};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ItemsArgs {
    /// Response data (wide or long CSV, optionally .gz); raw choices with --key.
    data: PathBuf,
    /// Layout of the file.
    #[arg(long, value_enum, default_value_t = Format::Wide)]
    format: Format,
    /// `item,key`: the data are raw choices, scored 1 for the key and 0 otherwise (wide files).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Output CSV: item,n,categories,mean,sd,total_r,rest_r,alpha_if_deleted.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output CSV of every choice (needs --key): item,choice,correct,n,proportion,mean_total.
    #[arg(long)]
    distractors: Option<PathBuf>,
}

#[derive(Args)]
pub struct KeyArgs {
    /// Raw choices (wide CSV, optionally .gz).
    data: PathBuf,
    /// `item,key`: the code of each item's right choice.
    #[arg(long)]
    key: PathBuf,
    /// Scored 0/1 data (wide CSV; .gz compresses).
    #[arg(long)]
    out: PathBuf,
}

/// `item,key` → item id → code.
fn read_key(path: &Path) -> Result<HashMap<String, i64>> {
    let mut rdr = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let header = rdr.headers().with_context(|| path.display().to_string())?.clone();
    if header.len() < 2 || &header[0] != "item" || &header[1] != "key" {
        bail!("{}: the header must be `item,key`", path.display());
    }
    let mut key = HashMap::new();
    for (line, record) in rdr.records().enumerate() {
        let line = line + 2;
        let r = record.with_context(|| format!("{}:{line}", path.display()))?;
        let code: i64 = r[1].trim().parse().with_context(|| {
            format!(
                "{}:{line}: key `{}` of item `{}` is not an integer code",
                path.display(),
                &r[1],
                &r[0]
            )
        })?;
        if key.insert(r[0].to_string(), code).is_some() {
            bail!("{}:{line}: item `{}` has two keys", path.display(), &r[0]);
        }
    }
    Ok(key)
}

/// The raw matrix of a wide file.
fn read_raw(path: &Path) -> Result<items::ResponseMatrix> {
    match items::read_responses(path, items::DataFormat::Wide)? {
        Responses::Dense(m) => Ok(m),
        Responses::Sparse(_) => bail!("{}: raw choices must be a wide file", path.display()),
    }
}

pub fn items(args: ItemsArgs) -> Result<()> {
    if args.distractors.is_some() && args.key.is_none() {
        bail!("--distractors needs --key (the raw choices and their key)");
    }
    let outputs: Vec<&Path> = args
        .out
        .iter()
        .chain(&args.distractors)
        .map(PathBuf::as_path)
        .collect();
    let inputs: Vec<&Path> = std::iter::once(args.data.as_path())
        .chain(args.key.as_deref())
        .collect();
    check_outputs(&outputs, &inputs)?;
    let (data, choices) = match &args.key {
        Some(key_path) => {
            if matches!(args.format, Format::Long) {
                bail!("--key reads raw choices from a wide file (--format wide)");
            }
            let key = read_key(key_path)?;
            let raw = read_raw(&args.data)?;
            let scored =
                classical::score_with_key(&raw, &key).with_context(|| key_path.display().to_string())?;
            let choices = classical::distractors(&raw, &key)?;
            (Responses::Dense(scored), Some(choices))
        }
        None => (items::read_responses(&args.data, args.format.into())?, None),
    };
    let (stats, test) = classical::item_analysis(&data).with_context(|| args.data.display().to_string())?;
    if let Some(out) = &args.out {
        write_output(out, |w| {
            let mut c = csv::Writer::from_writer(w);
            for s in &stats {
                c.serialize(s)?;
            }
            c.flush()?;
            Ok(())
        })?;
    }
    if let (Some(out), Some(choices)) = (&args.distractors, &choices) {
        write_output(out, |w| {
            let mut c = csv::Writer::from_writer(w);
            for s in choices {
                c.serialize(s)?;
            }
            c.flush()?;
            Ok(())
        })?;
    }
    // Distractors chosen by at least 5% of the item's answers, by persons stronger on average than
    // those who chose the key: a likely miskey.
    let suspicious: Vec<_> = choices
        .iter()
        .flatten()
        .filter(|c| !c.correct && c.proportion >= 0.05)
        .filter(|c| {
            choices
                .iter()
                .flatten()
                .any(|k| k.item == c.item && k.correct && c.mean_total > k.mean_total)
        })
        .map(|c| json!({"item": c.item, "choice": c.choice, "n": c.n, "mean_total": c.mean_total}))
        .collect();
    let mut value = serde_json::to_value(&test)?;
    value["items_table"] = serde_json::to_value(&stats)?;
    if args.key.is_some() {
        value["distractors_above_key"] = json!(suspicious);
    }
    emit(&value)
}

pub fn key(args: KeyArgs) -> Result<()> {
    check_outputs(&[&args.out], &[&args.data, &args.key])?;
    let key = read_key(&args.key)?;
    let raw = read_raw(&args.data)?;
    let scored = classical::score_with_key(&raw, &key).with_context(|| args.key.display().to_string())?;
    write_output(&args.out, |w| scored.write_wide(w))?;
    let right = scored.cells().iter().filter(|&&c| c == 1).count();
    let missing = scored.cells().iter().filter(|&&c| c == items::MISSING).count();
    emit(&json!({
        "persons": scored.n_persons(),
        "items": scored.n_items(),
        "right": right,
        "wrong": scored.cells().len() - right - missing,
        "missing": missing,
        "out": args.out.display().to_string(),
    }))
}
