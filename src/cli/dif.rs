//! `etalon dif`: differential item functioning between two groups of persons.

use crate::cli::data::Format;
use crate::cli::output::{emit, write_csv};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use etalon::assessment::files::check_outputs;
use etalon::calibration::CalibrationSpec;
use etalon::calibration::dif::{self, Adjustment};
use etalon::items::{self, ModelKind, Responses};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct DifArgs {
    /// Response data of 0/1 items (wide or long CSV, optionally .gz).
    data: PathBuf,
    /// Layout of the response file.
    #[arg(long, value_enum, default_value_t = Format::Wide)]
    format: Format,
    /// `person,group`: each person's group (person = the data's id, else the 1-based row number);
    /// two groups; persons not listed are left out.
    #[arg(long)]
    groups: PathBuf,
    /// The reference group (default: the first group met in the file).
    #[arg(long)]
    reference: Option<String>,
    /// Test: Mantel–Haenszel (matching on the total score) or the IRT likelihood ratio
    /// (multiple-group calibrations).
    #[arg(long, value_enum, default_value_t = Method::Mh)]
    method: Method,
    /// Likelihood ratio: the items' model (rasch, 2pl, 3pl, 4pl, graded, gpcm).
    #[arg(long, value_parser = crate::cli::bank::parse_model, default_value = "2pl")]
    model: ModelKind,
    /// Likelihood ratio: anchor items (comma-separated), assumed free of DIF; the others are tested
    /// one by one against them. Default: each item is tested against all the others.
    #[arg(long, value_delimiter = ',')]
    anchors: Option<Vec<String>>,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, allow_hyphen_values = true)]
    threads: Option<usize>,
    /// Adjustment of p over the items.
    #[arg(long, value_enum, default_value_t = Adjust::Holm)]
    adjust: Adjust,
    /// Output CSV. Mantel–Haenszel: item,statistic,df,p,p_adjusted,alpha_mh,delta_mh,class,
    /// var_log_alpha,strata,n_reference,n_focal. Likelihood ratio: item,statistic,df,p,p_adjusted,
    /// aic,bic,a_reference,b_reference,a_focal,b_focal,converged.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    /// Mantel–Haenszel (as difR's difMH).
    Mh,
    /// Likelihood ratio between multiple-group IRT calibrations (as mirt's DIF).
    Lr,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Adjust {
    /// Holm (family-wise error).
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    Bh,
    /// Bonferroni.
    Bonferroni,
    /// None.
    None,
}

impl From<Adjust> for Adjustment {
    fn from(a: Adjust) -> Self {
        match a {
            Adjust::Holm => Adjustment::Holm,
            Adjust::Bh => Adjustment::Bh,
            Adjust::Bonferroni => Adjustment::Bonferroni,
            Adjust::None => Adjustment::None,
        }
    }
}

/// Each person's group from `person,group`: (focal flag per data row, reference name, focal name).
fn read_groups(
    path: &Path,
    data: &Responses,
    reference: Option<&str>,
) -> Result<(Vec<Option<bool>>, String, String)> {
    let rows: HashMap<String, usize> = (0..data.n_persons()).map(|p| (data.person_label(p), p)).collect();
    let mut rdr = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let header = rdr.headers().with_context(|| path.display().to_string())?.clone();
    if header.len() < 2 || &header[0] != "person" || &header[1] != "group" {
        bail!("{}: the header must be `person,group`", path.display());
    }
    let mut names: Vec<String> = reference.map(str::to_string).into_iter().collect();
    let mut group = vec![None; data.n_persons()];
    for (line, record) in rdr.records().enumerate() {
        let line = line + 2;
        let r = record.with_context(|| format!("{}:{line}", path.display()))?;
        let (person, name) = (&r[0], &r[1]);
        let Some(&p) = rows.get(person) else {
            bail!("{}:{line}: person `{person}` is not in the data", path.display());
        };
        let k = match names.iter().position(|n| n == name) {
            Some(k) => k,
            None if names.len() < 2 => {
                names.push(name.to_string());
                names.len() - 1
            }
            None => bail!(
                "{}:{line}: a third group `{name}` (after `{}` and `{}`): DIF compares two groups",
                path.display(),
                names[0],
                names[1]
            ),
        };
        if group[p].replace(k == 1).is_some() {
            bail!("{}:{line}: person `{person}` is listed twice", path.display());
        }
    }
    match names.len() {
        2 => {
            let focal = names.pop().unwrap_or_default();
            Ok((group, names.pop().unwrap_or_default(), focal))
        }
        _ => bail!(
            "{}: {} group(s) found{}; DIF needs two",
            path.display(),
            names.len(),
            reference.map_or(String::new(), |r| format!(" (with --reference {r})"))
        ),
    }
}

pub fn run(args: DifArgs) -> Result<()> {
    crate::cli::common::set_threads(args.threads)?;
    check_outputs(&[&args.out], &[&args.data, &args.groups])?;
    let data = items::read_responses(&args.data, args.format.into())?;
    let (focal, reference, focal_name) = read_groups(&args.groups, &data, args.reference.as_deref())?;
    let adjustment: Adjustment = args.adjust.into();
    let count = |f: bool| focal.iter().filter(|g| **g == Some(f)).count();
    let mut summary = json!({
        "items": data.item_ids().len(),
        "reference": {"group": reference, "persons": count(false)},
        "focal": {"group": focal_name, "persons": count(true)},
        "adjust": serde_json::to_value(adjustment)?,
        "out": args.out.display().to_string(),
    });
    let context = || args.data.display().to_string();
    match args.method {
        Method::Mh => {
            if args.anchors.is_some() {
                bail!("--anchors applies to --method lr (Mantel–Haenszel matches on the total score)");
            }
            let items = dif::mantel_haenszel(&data, &focal, adjustment).with_context(context)?;
            write_csv(&args.out, |out| {
                out.write_record([
                    "item",
                    "statistic",
                    "df",
                    "p",
                    "p_adjusted",
                    "alpha_mh",
                    "delta_mh",
                    "class",
                    "var_log_alpha",
                    "strata",
                    "n_reference",
                    "n_focal",
                ])?;
                for m in &items {
                    out.write_record([
                        m.item.clone(),
                        m.statistic.to_string(),
                        m.df.to_string(),
                        m.p.to_string(),
                        m.p_adjusted.to_string(),
                        m.alpha_mh.to_string(),
                        m.delta_mh.to_string(),
                        m.class.to_string(),
                        m.var_log_alpha.to_string(),
                        m.strata.to_string(),
                        m.n.0.to_string(),
                        m.n.1.to_string(),
                    ])?;
                }
                Ok(())
            })?;
            summary["method"] = json!("mh");
            summary["flagged"] = items
                .iter()
                .filter(|m| m.class != 'A')
                .map(|m| json!({"item": m.item, "class": m.class.to_string(), "delta_mh": m.delta_mh, "p_adjusted": m.p_adjusted}))
                .collect();
        }
        Method::Lr => {
            let spec = CalibrationSpec::new(args.model);
            let lr = dif::likelihood_ratio(&data, &focal, &spec, args.anchors.as_deref(), adjustment)
                .with_context(context)?;
            write_csv(&args.out, |out| {
                out.write_record([
                    "item",
                    "statistic",
                    "df",
                    "p",
                    "p_adjusted",
                    "aic",
                    "bic",
                    "a_reference",
                    "b_reference",
                    "a_focal",
                    "b_focal",
                    "converged",
                ])?;
                for t in &lr.items {
                    out.write_record([
                        t.item.clone(),
                        t.statistic.to_string(),
                        t.df.to_string(),
                        t.p.to_string(),
                        t.p_adjusted.to_string(),
                        t.aic.to_string(),
                        t.bic.to_string(),
                        t.reference.0.to_string(),
                        t.reference.1.to_string(),
                        t.focal.0.to_string(),
                        t.focal.1.to_string(),
                        t.converged.to_string(),
                    ])?;
                }
                Ok(())
            })?;
            let base = &lr.baseline;
            summary["method"] = json!("lr");
            summary["model"] = json!(args.model);
            summary["anchors"] = json!(lr.anchors);
            summary["baseline"] = json!({
                "log_likelihood": base.loglik,
                "parameters": base.n_parameters,
                "focal_mean": base.groups[1].latent.mean,
                "focal_variance": base.groups[1].latent.variance,
                "cycles": base.cycles,
                "converged": base.converged,
            });
            summary["warnings"] = base.warnings.iter().map(|w| json!(w.to_string())).collect();
            summary["flagged"] = lr
                .items
                .iter()
                .filter(|t| t.p_adjusted < 0.05 && t.converged)
                .map(|t| json!({"item": t.item, "statistic": t.statistic, "p_adjusted": t.p_adjusted}))
                .collect();
            // Items one group never answered, and fits that did not converge: no conclusion.
            summary["not_tested"] = lr
                .items
                .iter()
                .filter(|t| t.statistic.is_nan())
                .map(|t| json!(t.item))
                .collect();
            summary["not_converged"] = lr
                .items
                .iter()
                .filter(|t| !t.converged && !t.statistic.is_nan())
                .map(|t| json!(t.item))
                .collect();
        }
    }
    emit(&summary)
}
