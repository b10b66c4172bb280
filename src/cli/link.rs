//! `etalon link`: a new calibration put on a bank's scale through their common items.

use crate::cli::output::emit;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use etalon::assessment::files::check_outputs;
use etalon::calibration::linking::{self, LinkingMethod};
use etalon::items;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct LinkArgs {
    /// The bank whose scale is kept (.csv or .json).
    #[arg(long)]
    bank: PathBuf,
    /// The new calibration to carry to it; common items are those with the same id.
    #[arg(long)]
    new: PathBuf,
    /// How A and B are found (θ_bank = A·θ_new + B).
    #[arg(long, value_enum, default_value_t = Method::StockingLord)]
    method: Method,
    /// The new bank on the bank's scale.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    /// Means of slopes and difficulties.
    MeanMean,
    /// Mean and SD of the difficulties.
    MeanSigma,
    /// Item characteristic curves.
    Haebara,
    /// Test characteristic curve.
    StockingLord,
}

pub fn run(args: LinkArgs) -> Result<()> {
    check_outputs(&[&args.out], &[&args.bank, &args.new])?;
    let read = |p: &PathBuf| items::read_bank(p).map_err(|e| anyhow::anyhow!("{e}"));
    let (bank, new) = (read(&args.bank)?, read(&args.new)?);
    let method = match args.method {
        Method::MeanMean => LinkingMethod::MeanMean,
        Method::MeanSigma => LinkingMethod::MeanSigma,
        Method::Haebara => LinkingMethod::Haebara,
        Method::StockingLord => LinkingMethod::StockingLord,
    };
    let context = || format!("linking {} to {}", args.new.display(), args.bank.display());
    let linking = linking::link(&bank, &new, method).with_context(context)?;
    let linked = linking::transform_bank(&new, &linking).with_context(context)?;
    items::write_bank(&linked, &args.out).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut value = serde_json::to_value(&linking)?;
    value["common_items"] = json!(linking.common_items.len());
    value["items"] = json!(linked.len());
    value["out"] = json!(args.out.display().to_string());
    emit(&value)
}
