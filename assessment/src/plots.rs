//! Plots of a bank for a psychometrician's report (`etalon plot`): item characteristic curves, item
//! and test information, the test characteristic curve, the conditional standard error, and a Wright
//! map of persons beside items — each as an SVG chart ([`crate::chart`]) and as the table of values it
//! draws, for people who plot elsewhere.
//!
//! Over θ ∈ [−4, 4] in steps of 0.1: P_jk(θ) and the expected score E_j(θ) = Σ_k k·P_jk(θ); item
//! information I_j(θ) = Σ_k P_jk (∂ log P_jk/∂θ)² and test information I(θ) = Σ_j I_j(θ); the test
//! characteristic curve T(θ) = Σ_j E_j(θ); the conditional standard error SE(θ) = 1/√I(θ) (Lord 1980,
//! *Applications of Item Response Theory*, ch. 5). The Wright map (Wright & Stone 1979) puts the
//! persons' θ̂ (a histogram in bins of 0.25) and the items' locations (b, or each threshold b_k of a
//! polytomous item) on one vertical θ scale.

use crate::chart::{
    CURVE_COLOURS, PlotLabels, Series, escape, line_plot, nice_ceiling, signed_label, svg_open, theta_grid,
};
use etalon_items::irt::ResponseFunction;
use etalon_items::{Bank, Item};

/// What to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// Item characteristic curves (category curves of one polytomous item).
    Icc,
    /// Item information (the items chosen) and test information.
    Information,
    /// Test characteristic curve.
    Tcc,
    /// Conditional standard error of measurement.
    Se,
    /// Persons beside items on one θ scale.
    Wright,
}

/// Why a plot cannot be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// An item asked for is not in the bank.
    #[error("item `{0}` is not in the bank")]
    UnknownItem(String),
    /// Too many curves for one legible chart.
    #[error("{0} items: a chart shows at most {MAX_CURVES} curves (choose them with --items)")]
    TooManyItems(usize),
    /// The Wright map needs the persons' scores.
    #[error("a Wright map needs the persons' θ (--scores SCORES.csv, as `etalon score` writes)")]
    NoScores,
}

/// The most curves drawn in one chart.
pub const MAX_CURVES: usize = 12;

/// A chart and the values it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The SVG document.
    pub svg: String,
    /// Column names of `rows`.
    pub columns: Vec<String>,
    /// The values, one row per point (θ first), or per bin and item for a Wright map.
    pub rows: Vec<Vec<String>>,
}

impl Plot {
    /// The values as CSV.
    pub fn write_csv(&self, output: impl std::io::Write) -> csv::Result<()> {
        let mut w = csv::Writer::from_writer(output);
        w.write_record(&self.columns)?;
        for r in &self.rows {
            w.write_record(r)?;
        }
        w.flush()?;
        Ok(())
    }
}

fn expected_score(item: &Item, theta: f64, p: &mut [f64]) -> f64 {
    let k = item.parameters.n_categories();
    item.parameters.category_probabilities(theta, &mut p[..k]);
    p[..k].iter().enumerate().map(|(c, v)| c as f64 * v).sum()
}

/// Series as a table: θ, then one column per series.
fn tabulate(series: &[Series]) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = std::iter::once("theta".to_string())
        .chain(series.iter().map(|s| s.name.clone()))
        .collect();
    let rows = (0..series.first().map_or(0, |s| s.points.len()))
        .map(|i| {
            std::iter::once(format!("{:.1}", series[0].points[i].0))
                .chain(series.iter().map(|s| s.points[i].1.to_string()))
                .collect()
        })
        .collect();
    (columns, rows)
}

fn curve(name: String, colour: usize, f: impl Fn(f64) -> f64) -> Series {
    Series {
        name,
        colour: CURVE_COLOURS[colour % CURVE_COLOURS.len()],
        points: theta_grid().map(|t| (t, f(t))).collect(),
    }
}

/// Draw `kind` for `items` (ids; `None`: the whole bank, or its first item for an ICC) with the
/// persons' `scores` (θ̂, Wright map only).
pub fn bank_plot(
    bank: &Bank,
    kind: PlotKind,
    items: Option<&[String]>,
    scores: Option<&[f64]>,
) -> Result<Plot, PlotError> {
    let chosen: Vec<&Item> = match items {
        Some(ids) => ids
            .iter()
            .map(|id| bank.item(id).ok_or_else(|| PlotError::UnknownItem(id.clone())))
            .collect::<Result<_, _>>()?,
        None if kind == PlotKind::Icc => bank.items().iter().take(1).collect(),
        None => bank.items().iter().collect(),
    };
    let title_of = |what: &str| match items {
        Some(ids) if ids.len() <= 3 => format!("{what} — {}", ids.join(", ")),
        Some(ids) => format!("{what} — {} items", ids.len()),
        None => format!("{what} — {}", bank.name().unwrap_or(bank.id())),
    };
    let max_k = chosen
        .iter()
        .map(|i| i.parameters.n_categories())
        .max()
        .unwrap_or(2);
    let information = |t: f64| chosen.iter().map(|i| i.parameters.information(t)).sum::<f64>();
    let (series, title, y, y_max): (Vec<Series>, String, &str, Option<f64>) = match kind {
        PlotKind::Icc if chosen.len() == 1 && max_k > 2 => {
            let item = chosen[0];
            let codes = item.response_codes();
            let series = (0..max_k)
                .map(|c| {
                    curve(format!("category {}", codes[c]), c, |t| {
                        item.parameters.log_prob(t, c).exp()
                    })
                })
                .collect();
            (
                series,
                title_of("Category characteristic curves"),
                "P(X = k | θ)",
                Some(1.0),
            )
        }
        PlotKind::Icc => {
            if chosen.len() > MAX_CURVES {
                return Err(PlotError::TooManyItems(chosen.len()));
            }
            let mut p = vec![0.0; max_k];
            let series = chosen
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let pts = theta_grid()
                        .map(|t| (t, expected_score(item, t, &mut p)))
                        .collect();
                    Series {
                        name: item.id.clone(),
                        colour: CURVE_COLOURS[i % CURVE_COLOURS.len()],
                        points: pts,
                    }
                })
                .collect();
            let y = if max_k == 2 {
                "P(correct | θ)"
            } else {
                "expected score E(X | θ)"
            };
            let y_max = (max_k == 2).then_some(1.0);
            (series, title_of("Item characteristic curves"), y, y_max)
        }
        PlotKind::Information => {
            let mut series = Vec::new();
            if items.is_some() {
                if chosen.len() > MAX_CURVES {
                    return Err(PlotError::TooManyItems(chosen.len()));
                }
                series.extend(
                    chosen
                        .iter()
                        .enumerate()
                        .map(|(i, item)| curve(item.id.clone(), i + 1, |t| item.parameters.information(t))),
                );
            }
            if chosen.len() > 1 || items.is_none() {
                series.insert(0, curve("test".into(), 0, information));
            }
            (series, title_of("Information"), "information I(θ)", None)
        }
        PlotKind::Tcc => {
            let mut p = vec![0.0; max_k];
            let max_score: f64 = chosen
                .iter()
                .map(|i| (i.parameters.n_categories() - 1) as f64)
                .sum();
            let points = theta_grid()
                .map(|t| (t, chosen.iter().map(|i| expected_score(i, t, &mut p)).sum()))
                .collect();
            let series = vec![Series {
                name: "expected total score".into(),
                colour: CURVE_COLOURS[0],
                points,
            }];
            (
                series,
                title_of("Test characteristic curve"),
                "expected total score T(θ)",
                Some(max_score.max(1.0)),
            )
        }
        PlotKind::Se => {
            let series = vec![curve("SE(θ) = 1/√I(θ)".into(), 0, |t| {
                1.0 / information(t).sqrt()
            })];
            let lowest = series[0].points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            // The SE grows without bound away from the items: show up to four times its minimum.
            (
                series,
                title_of("Conditional standard error"),
                "standard error",
                Some(nice_ceiling((4.0 * lowest).min(5.0))),
            )
        }
        PlotKind::Wright => {
            return wright(
                &chosen,
                scores.ok_or(PlotError::NoScores)?,
                &title_of("Wright map"),
            );
        }
    };
    let svg = line_plot(
        &series,
        PlotLabels {
            title: &title,
            x: "θ (ability)",
            y,
        },
        y_max,
    );
    let (columns, rows) = tabulate(&series);
    Ok(Plot { svg, columns, rows })
}

/// Persons (a histogram of θ̂ on the left) and item locations (on the right) on one vertical θ scale.
fn wright(items: &[&Item], scores: &[f64], title: &str) -> Result<Plot, PlotError> {
    let locations: Vec<(String, f64)> = items
        .iter()
        .flat_map(|item| match item.parameters.polytomous() {
            Some(p) => p
                .thresholds()
                .iter()
                .enumerate()
                .map(|(k, b)| (format!("{}.{}", item.id, k + 1), *b))
                .collect::<Vec<_>>(),
            None => vec![(item.id.clone(), item.parameters.location())],
        })
        .collect();
    let finite: Vec<f64> = scores.iter().copied().filter(|t| t.is_finite()).collect();
    let lo = finite
        .iter()
        .chain(locations.iter().map(|l| &l.1))
        .fold(-3.0_f64, |a, &b| a.min(b))
        .max(-6.0)
        .floor();
    let hi = finite
        .iter()
        .chain(locations.iter().map(|l| &l.1))
        .fold(3.0_f64, |a, &b| a.max(b))
        .min(6.0)
        .ceil();
    const BIN: f64 = 0.25;
    let bins = ((hi - lo) / BIN).round() as usize;
    let mut counts = vec![0usize; bins];
    for t in &finite {
        let b = (((t - lo) / BIN).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let per_bin_items: Vec<Vec<&str>> = (0..bins)
        .map(|b| {
            locations
                .iter()
                .filter(|(_, t)| (((t - lo) / BIN).floor().max(0.0) as usize).min(bins - 1) == b)
                .map(|(id, _)| id.as_str())
                .collect()
        })
        .collect();
    let (width, top, row) = (640.0, 44.0, 14.0);
    let axis = 240.0;
    let height = top + row * bins as f64 + 40.0;
    let mut s = svg_open(width, height, title);
    s += &format!(
        "<text x=\"20\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    );
    s += &format!(
        "<text x=\"{:.1}\" y=\"38\" text-anchor=\"end\">persons ({}, per {BIN} logit)</text><text x=\"{:.1}\" y=\"38\">items ({})</text>\n",
        axis - 10.0,
        finite.len(),
        axis + 12.0,
        locations.len()
    );
    let y_of = |b: usize| top + row * (bins - 1 - b) as f64;
    let most = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    s += &format!(
        "<line x1=\"{axis}\" y1=\"{top}\" x2=\"{axis}\" y2=\"{:.1}\" stroke=\"#444\"/>\n",
        top + row * bins as f64
    );
    for b in 0..bins {
        let y = y_of(b);
        let theta = lo + BIN * b as f64;
        if (theta - theta.round()).abs() < 1e-9 {
            s += &format!(
                "<line x1=\"{:.1}\" y1=\"{1:.1}\" x2=\"{2:.1}\" y2=\"{1:.1}\" stroke=\"#444\"/><text x=\"{3:.1}\" y=\"{4:.1}\" text-anchor=\"end\">{5}</text>\n",
                axis - 4.0,
                y + row,
                axis + 4.0,
                axis - 200.0,
                y + row + 4.0,
                signed_label(theta)
            );
        }
        if counts[b] > 0 {
            let w = 180.0 * counts[b] as f64 / most;
            s += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>θ {:.2} to {:.2}: {} persons</title></rect>\n",
                axis - 6.0 - w,
                y + 1.0,
                row - 2.0,
                CURVE_COLOURS[0],
                theta,
                theta + BIN,
                counts[b]
            );
        }
        if !per_bin_items[b].is_empty() {
            let text = per_bin_items[b].join("  ");
            s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>\n",
                axis + 10.0,
                y + row - 3.0,
                CURVE_COLOURS[1],
                escape(&crate::cut(&text, 70))
            );
        }
    }
    s += &format!(
        "<text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">θ (logits)</text>\n",
        top + row * bins as f64 / 2.0
    );
    s += "</svg>\n";
    let mut rows: Vec<Vec<String>> = (0..bins)
        .map(|b| {
            vec![
                "persons".into(),
                format!("{:.2} to {:.2}", lo + BIN * b as f64, lo + BIN * (b + 1) as f64),
                format!("{:.3}", lo + BIN * (b as f64 + 0.5)),
                counts[b].to_string(),
            ]
        })
        .collect();
    rows.extend(
        locations
            .iter()
            .map(|(id, t)| vec!["item".into(), id.clone(), t.to_string(), String::new()]),
    );
    Ok(Plot {
        svg: s,
        columns: vec!["kind".into(), "label".into(), "theta".into(), "count".into()],
        rows,
    })
}

/// Axis range [lo, hi] covering `values` with a margin, rounded out to whole or half units.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.1);
    let (lo, hi) = ((lo - pad) * 2.0, (hi + pad) * 2.0);
    (lo.floor() / 2.0, hi.ceil() / 2.0)
}

/// One panel of the drift chart: old (x) against new on the old scale (y), the identity line,
/// ±1.96 combined SE bars, drifted items in red and named.
fn drift_panel(
    s: &mut String,
    left: f64,
    title: &str,
    points: &[&etalon_calibration::drift::ParameterDrift],
    drifted: &[String],
) {
    let (top, w, h) = (40.0, 300.0, 300.0);
    // The range covers the estimates; a bar longer than the panel (an item its data barely identify,
    // whose SE may be huge) is cut at the frame.
    let (lo, hi) = padded_range(points.iter().flat_map(|p| [p.old, p.new]));
    let clip = |v: f64| v.clamp(lo, hi);
    let px = |v: f64| left + w * (v - lo) / (hi - lo);
    let py = |v: f64| top + h - h * (v - lo) / (hi - lo);
    *s += &format!(
        "<text x=\"{left}\" y=\"28\" font-size=\"13\" font-weight=\"bold\">{}</text>\n<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#767676\"/>\n",
        escape(title)
    );
    // A round step giving at most 10 intervals, whatever the range.
    let unit = 10f64.powf(((hi - lo) / 10.0).log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * unit)
        .find(|&st| (hi - lo) / st <= 10.0 + 1e-9)
        .unwrap_or(hi - lo);
    let first = (lo / step).ceil() as i64;
    for i in 0..=((hi - lo) / step).floor().min(11.0) as i64 {
        let t = (first + i) as f64 * step;
        if t > hi + 1e-9 {
            break;
        }
        *s += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#e0e0e0\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n<line x1=\"{5}\" y1=\"{6:.1}\" x2=\"{7}\" y2=\"{6:.1}\" stroke=\"#e0e0e0\"/><text x=\"{8}\" y=\"{9:.1}\" text-anchor=\"end\">{4}</text>\n",
            px(t),
            top,
            top + h,
            top + h + 16.0,
            signed_label(t),
            left,
            py(t),
            left + w,
            left - 5.0,
            py(t) + 4.0
        );
    }
    *s += &format!(
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#444444\" stroke-dasharray=\"5 4\"><title>no drift: new = old</title></line>\n",
        px(lo),
        py(lo),
        px(hi),
        py(hi)
    );
    *s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">old calibration</text>\n<text transform=\"translate({:.1} {:.1}) rotate(-90)\" text-anchor=\"middle\">new calibration, linked</text>\n",
        left + w / 2.0,
        top + h + 34.0,
        left - 36.0,
        top + h / 2.0
    );
    for p in points.iter().filter(|p| p.old.is_finite() && p.new.is_finite()) {
        let moved = drifted.contains(&p.item);
        let colour = if moved { CURVE_COLOURS[1] } else { CURVE_COLOURS[0] };
        let e = 1.96 * (p.old_se.powi(2) + p.new_se.powi(2)).sqrt();
        let e = if e.is_finite() { e } else { 0.0 };
        let (x, y) = (px(p.old), py(p.new));
        *s += &format!(
            "<g><title>{} {}: old {:.3}, new {:.3} (z = {:.2}){}</title><line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{}\" fill=\"{colour}\"/></g>\n",
            escape(&p.item),
            escape(&p.parameter),
            p.old,
            p.new,
            p.z,
            if moved { ", drifted" } else { "" },
            py(clip(p.new - e)),
            py(clip(p.new + e)),
            if moved { 4.5 } else { 3.0 }
        );
        if moved {
            *s += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" font-weight=\"bold\">{}</text>\n",
                x + 6.0,
                y - 6.0,
                escape(&p.item)
            );
        }
    }
}

/// `x` to three decimals with a typographic minus.
fn signed(x: f64) -> String {
    let s = format!("{x:.3}");
    s.strip_prefix('-').map_or(s.clone(), |r| format!("−{r}"))
}

/// The drift of two calibrations as a chart — difficulties (b and thresholds) and, when the items
/// have them, slopes: old against new carried to the old scale, with ±1.96 SE bars, drifted items
/// in red — and its values as a table (`item,parameter,old,old_se,new,new_se,z,p_adjusted,drifted`).
pub fn drift_plot(d: &etalon_calibration::drift::Drift) -> Plot {
    let locations: Vec<_> = d
        .parameters
        .iter()
        .filter(|p| p.parameter.starts_with('b'))
        .collect();
    let slopes: Vec<_> = d.parameters.iter().filter(|p| p.parameter == "a").collect();
    let panels = 1 + usize::from(!slopes.is_empty());
    let width = 20.0 + 380.0 * panels as f64;
    let title = format!(
        "Parameter drift — {} of {} common items drifted (A = {:.3}, B = {:.3})",
        d.drifted.len(),
        d.parameters
            .iter()
            .map(|p| &p.item)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        d.linking.a,
        d.linking.b
    );
    let mut s = svg_open(width.max(700.0), 426.0, &title);
    drift_panel(&mut s, 60.0, "Difficulty b", &locations, &d.drifted);
    if !slopes.is_empty() {
        drift_panel(&mut s, 440.0, "Slope a", &slopes, &d.drifted);
    }
    let method = format!(
        "Linked by {} through {} items: A = {}, B = {}.",
        d.linking.method.name(),
        d.linking.common_items.len(),
        signed(d.linking.a),
        signed(d.linking.b)
    );
    let rule = format!(
        "Bars: ±1.96 combined SE. Drifted (red): p < {} after {} adjustment{}.",
        d.alpha,
        match d.adjustment {
            etalon_calibration::dif::Adjustment::Holm => "Holm",
            etalon_calibration::dif::Adjustment::Bh => "Benjamini–Hochberg",
            etalon_calibration::dif::Adjustment::Bonferroni => "Bonferroni",
            _ => "no",
        },
        if d.drifted.is_empty() { " — none" } else { "" }
    );
    s += &format!(
        "<text x=\"60\" y=\"400\">{}</text>\n<text x=\"60\" y=\"416\">{}</text>\n</svg>\n",
        escape(&method),
        escape(&rule)
    );
    let columns = [
        "item",
        "parameter",
        "old",
        "old_se",
        "new",
        "new_se",
        "difference",
        "z",
        "p",
        "p_adjusted",
        "drifted",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    let rows = d
        .parameters
        .iter()
        .map(|p| {
            vec![
                p.item.clone(),
                p.parameter.clone(),
                p.old.to_string(),
                p.old_se.to_string(),
                p.new.to_string(),
                p.new_se.to_string(),
                p.difference.to_string(),
                p.z.to_string(),
                p.p.to_string(),
                p.p_adjusted.to_string(),
                d.drifted.contains(&p.item).to_string(),
            ]
        })
        .collect();
    Plot {
        svg: s,
        columns,
        rows,
    }
}
