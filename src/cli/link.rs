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
pub(crate) enum Method {
    /// Means of slopes and difficulties.
    MeanMean,
    /// Mean and SD of the difficulties.
    MeanSigma,
    /// Item characteristic curves.
    Haebara,
    /// Test characteristic curve.
    StockingLord,
}

/// A bank file, its errors located.
pub(crate) fn read(path: &PathBuf) -> Result<items::Bank> {
    items::read_bank(path).map_err(|e| anyhow::anyhow!("{e}"))
}

impl From<Method> for LinkingMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::MeanMean => LinkingMethod::MeanMean,
            Method::MeanSigma => LinkingMethod::MeanSigma,
            Method::Haebara => LinkingMethod::Haebara,
            Method::StockingLord => LinkingMethod::StockingLord,
        }
    }
}

pub fn run(args: LinkArgs) -> Result<()> {
    check_outputs(&[&args.out], &[&args.bank, &args.new])?;
    let (bank, new) = (read(&args.bank)?, read(&args.new)?);
    let method = args.method.into();
    let context = || format!("linking {} to {}", args.new.display(), args.bank.display());
    let mut linking = linking::link(&bank, &new, method).with_context(context)?;
    linking.standard_errors = linking::constant_errors(&bank, &new, &linking);
    let linked = linking::transform_bank(&new, &linking).with_context(context)?;
    items::write_bank(&linked, &args.out).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut value = serde_json::to_value(&linking)?;
    value["common_items"] = json!(linking.common_items.len());
    value["items"] = json!(linked.len());
    value["out"] = json!(args.out.display().to_string());
    emit(&value)
}
