//! `etalon dif`: differential item functioning between two groups of persons.

use crate::cli::data::Format;
use crate::cli::output::emit;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use etalon::assessment::files::{check_outputs, write_atomically};
use etalon::calibration::dif::{self, Adjustment};
use etalon::items::{self, Responses};
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
    /// Test: Mantel–Haenszel, matching on the total score.
    #[arg(long, value_enum, default_value_t = Method::Mh)]
    method: Method,
    /// Adjustment of p over the items.
    #[arg(long, value_enum, default_value_t = Adjust::Holm)]
    adjust: Adjust,
    /// Output CSV: item,statistic,df,p,p_adjusted,alpha_mh,delta_mh,class,var_log_alpha,strata,n_reference,n_focal.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Method {
    /// Mantel–Haenszel (as difR's difMH).
    Mh,
}

#[derive(Clone, Copy, ValueEnum)]
enum Adjust {
    /// Holm (family-wise error).
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    Bh,
    /// Bonferroni.
    Bonferroni,
    /// None.
    None,
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
    check_outputs(&[&args.out], &[&args.data, &args.groups])?;
    let data = items::read_responses(&args.data, args.format.into())?;
    let (focal, reference, focal_name) = read_groups(&args.groups, &data, args.reference.as_deref())?;
    let adjustment = match args.adjust {
        Adjust::Holm => Adjustment::Holm,
        Adjust::Bh => Adjustment::Bh,
        Adjust::Bonferroni => Adjustment::Bonferroni,
        Adjust::None => Adjustment::None,
    };
    let Method::Mh = args.method;
    let items =
        dif::mantel_haenszel(&data, &focal, adjustment).with_context(|| args.data.display().to_string())?;
    write_atomically(&args.out, |w| {
        let mut out = csv::Writer::from_writer(w);
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
        out.flush()
    })?;
    let flagged: Vec<_> = items
        .iter()
        .filter(|m| m.class != 'A')
        .map(|m| json!({"item": m.item, "class": m.class.to_string(), "delta_mh": m.delta_mh, "p_adjusted": m.p_adjusted}))
        .collect();
    let count = |f: bool| focal.iter().filter(|g| **g == Some(f)).count();
    emit(&json!({
        "method": "mh",
        "items": items.len(),
        "reference": {"group": reference, "persons": count(false)},
        "focal": {"group": focal_name, "persons": count(true)},
        "adjust": serde_json::to_value(adjustment)?,
        "flagged": flagged,
        "out": args.out.display().to_string(),
    }))
}
