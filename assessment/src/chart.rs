//! Charts as SVG: the level distribution of a campaign, per competence (stacked bars, the target
//! marked); a person's profile (level reached per competence against the target); line plots of
//! item response functions (category characteristic curves, item information). Plain text output,
//! embeddable in a web page (each chart has a `viewBox`, `role="img"` and a `<title>`, so it scales
//! to the screen and a screen reader names it) or written as a file for a report.

use crate::campaign::{Campaign, Report};
use etalon_items::Item;
use etalon_items::irt::ResponseFunction;

/// Escape text for SVG/XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The words of a [`campaign_chart_in`] (in the reader's language).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignChartWords<'a> {
    /// After the campaign's name, before the number of participants ("levels of").
    pub levels_of: &'a str,
    /// After the number ("participants").
    pub participants: &'a str,
    /// "level" in the tooltip of a bar segment.
    pub level: &'a str,
    /// Below the chart, before the greatest training need.
    pub legend: &'a str,
}

impl CampaignChartWords<'static> {
    /// In English.
    pub const ENGLISH: Self = CampaignChartWords {
        levels_of: "levels of",
        participants: "participants",
        level: "level",
        legend: "Black mark: share below the target level. Greatest training need:",
    };
}

/// Horizontal stacked bars: one per competence, the share of participants at each level, the target
/// level marked (in English).
pub fn campaign_chart(report: &Report, campaign: &Campaign) -> String {
    campaign_chart_in(report, campaign, CampaignChartWords::ENGLISH)
}

/// [`campaign_chart`] with its words in another language.
pub fn campaign_chart_in(report: &Report, campaign: &Campaign, words: CampaignChartWords<'_>) -> String {
    let (left, width, row) = (330.0, 600.0, 28.0);
    let height = 90.0 + row * report.competences.len() as f64 + 40.0;
    let mut s = svg_open(left + width + 30.0, height, campaign.name());
    s += &format!(
        "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{} — {} {} {}</text>\n",
        escape(campaign.name()),
        escape(words.levels_of),
        report.participants,
        escape(words.participants)
    );
    let labels = campaign.assessment().levels.default.labels();
    let step = (left + width - 10.0) / labels.len() as f64;
    for (k, colour) in LEVEL_COLOURS.iter().enumerate().take(labels.len()) {
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
                    "<rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"22\" fill=\"{}\"><title>{} {k}: {n}</title></rect>\n",
                    LEVEL_COLOURS[k.min(8)],
                    escape(words.level)
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
        "<text x=\"10\" y=\"{:.1}\">{} {}</text>\n",
        height - 15.0,
        escape(words.legend),
        escape(report.training_needs.first().map_or("-", String::as_str))
    );
    s += "</svg>\n";
    s
}

/// Colour of level `k` (red to green, 9 levels; higher levels reuse the last).
pub const LEVEL_COLOURS: [&str; 9] = [
    "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850",
];

/// The opening of an SVG document of `width` × `height` named `title`.
pub(crate) fn svg_open(width: f64, height: f64, title: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">\n<title>{}</title>\n",
        escape(title)
    )
}

/// An SVG chart without its XML declaration, to put inside an HTML page.
pub fn inline(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

/// One competence of a person's profile chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileBar {
    /// What the row says (competence id and name).
    pub name: String,
    /// Level reached (0 … levels − 1).
    pub level: usize,
    /// Its label, written in the bar.
    pub label: String,
    /// Number of levels of the competence's map.
    pub levels: usize,
    /// The organisation's target level, if any (a black mark).
    pub target: Option<usize>,
}

/// The bars of a person's profile chart: each competence of `result` with its level map in `levels`
/// and its target, if `targets` names it.
pub fn profile_bars(
    result: &crate::AssessmentResult,
    levels: &etalon_items::levels::Levels,
    targets: &[crate::Target],
) -> Vec<ProfileBar> {
    result
        .competences
        .iter()
        .map(|(id, c)| ProfileBar {
            name: format!("{id} {}", c.name),
            level: c.result.level,
            label: c.result.label.clone(),
            levels: levels.for_competence(id).labels().len(),
            target: targets
                .iter()
                .find(|t| &t.competence == id)
                .map(|t| t.target_level),
        })
        .collect()
}

/// A person's profile: one bar per competence whose length is the level reached (out of the
/// competence's levels), coloured by level, with the target level marked. `title` names the chart
/// and `legend` explains the mark (both in the reader's language).
pub fn profile_chart(bars: &[ProfileBar], title: &str, legend: &str) -> String {
    let (left, width, row) = (300.0, 420.0, 30.0);
    let height = 40.0 + row * bars.len() as f64 + 30.0;
    let mut s = svg_open(left + width + 20.0, height, title);
    for (i, b) in bars.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let top = (b.levels.max(2) - 1) as f64;
        s += &format!(
            "<text x=\"10\" y=\"{:.1}\">{}</text>\n",
            y + 16.0,
            escape(&crate::cut(&b.name, 44))
        );
        s += &format!(
            "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{width}\" height=\"22\" fill=\"#f2f2f2\" stroke=\"#767676\"/>\n"
        );
        let w = width * (b.level as f64 / top).clamp(0.0, 1.0);
        if w > 0.0 {
            s += &format!(
                "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"22\" fill=\"{}\"/>\n",
                LEVEL_COLOURS[b.level.min(8)]
            );
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{} {}</text>\n",
            left + 6.0,
            y + 16.0,
            b.level,
            escape(&b.label)
        );
        if let Some(t) = b.target {
            let tx = left + width * (t as f64 / top).clamp(0.0, 1.0);
            s += &format!(
                "<line x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"black\" stroke-width=\"3\"/>\n",
                y - 3.0,
                y + 25.0
            );
        }
    }
    s += &format!(
        "<text x=\"10\" y=\"{:.1}\">{}</text>\n</svg>\n",
        height - 10.0,
        escape(legend)
    );
    s
}

/// One curve of a [`line_plot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour.
    pub colour: &'static str,
    /// Points (x, y), in x order.
    pub points: Vec<(f64, f64)>,
}

/// Labels of a [`line_plot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotLabels<'a> {
    /// Title.
    pub title: &'a str,
    /// Horizontal axis.
    pub x: &'a str,
    /// Vertical axis.
    pub y: &'a str,
}

/// Colours of successive curves (distinguishable, dark enough on white).
pub const CURVE_COLOURS: [&str; 8] = [
    "#1f4e9c", "#c0392b", "#1e7b34", "#8e44ad", "#b35900", "#00707a", "#7f6000", "#444444",
];

/// A line plot with axes, ticks, axis labels and a legend: the curves of `series` over the x range
/// of their points, y from 0 to the largest value (or `y_max`).
pub fn line_plot(series: &[Series], labels: PlotLabels<'_>, y_max: Option<f64>) -> String {
    let (left, top, w, h) = (60.0, 36.0, 460.0, 240.0);
    let legend_rows = series.len().div_ceil(3) as f64;
    let height = top + h + 50.0 + 18.0 * legend_rows;
    let mut s = svg_open(left + w + 20.0, height, labels.title);
    let (x0, x1) = series
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (-4.0, 4.0) };
    let y1 = y_max.unwrap_or_else(|| {
        let m = series
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        nice_ceiling(m)
    });
    let px = |x: f64| left + w * (x - x0) / (x1 - x0);
    let py = |y: f64| top + h - h * (y / y1).clamp(0.0, 1.0);
    s += &format!(
        "<text x=\"{left}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(labels.title)
    );
    s += &format!(
        "<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#767676\"/>\n"
    );
    let step = tick_step(y1);
    let ticks = (y1 / step).round() as usize;
    for k in 0..=ticks {
        let y = step * k as f64;
        s += &format!(
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#e0e0e0\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>\n",
            py(y),
            left + w,
            left - 6.0,
            py(y) + 4.0,
            tick_label(y)
        );
    }
    let mut x = x0.ceil();
    while x <= x1 {
        s += &format!(
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#767676\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
            px(x),
            top + h,
            top + h + 5.0,
            top + h + 18.0,
            signed_label(x)
        );
        x += 1.0;
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
        left + w / 2.0,
        top + h + 36.0,
        escape(labels.x)
    );
    s += &format!(
        "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        top + h / 2.0,
        escape(labels.y)
    );
    for (i, c) in series.iter().enumerate() {
        let path: Vec<String> = c
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>\n",
            c.colour,
            path.join(" "),
            escape(&c.name)
        );
        let lx = left + (i % 3) as f64 * (w / 3.0);
        let ly = top + h + 54.0 + 18.0 * (i / 3) as f64;
        s += &format!(
            "<line x1=\"{lx:.1}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"{2}\" stroke-width=\"3\"/><text x=\"{3:.1}\" y=\"{4:.1}\">{5}</text>\n",
            ly - 4.0,
            lx + 20.0,
            c.colour,
            lx + 26.0,
            ly,
            escape(&c.name)
        );
    }
    s += "</svg>\n";
    s
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `m` (an axis maximum).
pub(crate) fn nice_ceiling(m: f64) -> f64 {
    if m.is_nan() || m <= 0.0 || !m.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(m.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * p)
        .find(|&v| v >= m * (1.0 - 1e-12))
        .unwrap_or(10.0 * p)
}

/// The step between ticks of an axis from 0 to `max` (a [`nice_ceiling`]): 4 or 5 round steps.
pub(crate) fn tick_step(max: f64) -> f64 {
    let p = 10f64.powf(max.log10().floor());
    let m = max / p;
    let step = if m <= 1.0 + 1e-9 {
        0.2
    } else if m <= 2.5 + 1e-9 {
        0.5
    } else if m <= 5.0 + 1e-9 {
        1.0
    } else {
        2.0
    };
    step * p
}

/// A tick value without trailing zeros (0.25, 0.5, 1, 10).
pub(crate) fn tick_label(y: f64) -> String {
    let s = format!("{y:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() { "0".into() } else { s.to_string() }
}

/// A tick value with a typographic minus (−1, 0, 2.5).
pub(crate) fn signed_label(x: f64) -> String {
    if x < 0.0 {
        format!("−{}", tick_label(-x))
    } else {
        tick_label(x)
    }
}

/// θ from −4 to 4 in 81 steps: where item curves are drawn.
pub(crate) fn theta_grid() -> impl Iterator<Item = f64> {
    (0..=80).map(|i| -4.0 + 0.1 * i as f64)
}

/// An item's category characteristic curves P(X = k | θ) (one curve, P(correct), for a dichotomous
/// item), as a [`line_plot`]. `category` names category k in the reader's language.
pub fn item_characteristic_chart(
    item: &Item,
    labels: PlotLabels<'_>,
    category: impl Fn(usize) -> String,
) -> String {
    let model = &item.parameters;
    let k = model.n_categories();
    let mut p = vec![0.0; k];
    let mut curves: Vec<Vec<(f64, f64)>> = vec![Vec::with_capacity(81); k];
    for theta in theta_grid() {
        model.category_probabilities(theta, &mut p);
        for (c, &v) in curves.iter_mut().zip(&p) {
            c.push((theta, v));
        }
    }
    let shown: Vec<Series> = if k == 2 {
        vec![Series {
            name: category(1),
            colour: CURVE_COLOURS[0],
            points: curves.swap_remove(1),
        }]
    } else {
        curves
            .into_iter()
            .enumerate()
            .map(|(c, points)| Series {
                name: category(c),
                colour: CURVE_COLOURS[c % CURVE_COLOURS.len()],
                points,
            })
            .collect()
    };
    line_plot(&shown, labels, Some(1.0))
}

/// An item's Fisher information I(θ) = Σ_k P_k (∂ log P_k/∂θ)² over θ, as a [`line_plot`].
pub fn item_information_chart(item: &Item, labels: PlotLabels<'_>, name: &str) -> String {
    let points = theta_grid()
        .map(|theta| (theta, item.parameters.information(theta)))
        .collect();
    line_plot(
        &[Series {
            name: name.to_string(),
            colour: CURVE_COLOURS[0],
            points,
        }],
        labels,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(0.25), 0.05);
        assert_eq!(tick_step(1.0), 0.2);
        assert_eq!(tick_step(2.0), 0.5);
        assert_eq!(tick_step(5.0), 1.0);
        assert_eq!(tick_label(0.15000000000000002), "0.15");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(10.0), "10");
    }

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(0.42), 0.5);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.3), 2.0);
        assert_eq!(nice_ceiling(2.2), 2.5);
        assert_eq!(nice_ceiling(7.0), 10.0);
    }

    #[test]
    fn a_2pl_curve_crosses_one_half_at_its_difficulty_and_its_information_peaks_there() {
        let item = Item::new("x", etalon_items::ItemModel::two_pl(1.5, 0.5).unwrap());
        let labels = PlotLabels {
            title: "t",
            x: "θ",
            y: "P",
        };
        let svg = item_characteristic_chart(&item, labels, |k| format!("cat {k}"));
        assert!(svg.contains("viewBox") && svg.contains("role=\"img\"") && svg.contains("<title>t</title>"));
        // One curve for a dichotomous item, its legend the correct category.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("cat 1") && !svg.contains("cat 0"));
        // At θ = b = 0.5 the curve is at y = 1/2: halfway down the plot (top 36, height 240).
        let px = 60.0 + 460.0 * (0.5 + 4.0) / 8.0;
        assert!(svg.contains(&format!("{px:.1},156.0")), "{svg}");
        let info = item_information_chart(&item, labels, "I");
        // Peak a²/4 = 0.5625 → axis maximum 1 (nice ceiling), peak drawn at θ = 0.5.
        assert!(
            info.contains(">1</text>") && info.contains(">0.8</text>"),
            "{info}"
        );
        let y_peak = 36.0 + 240.0 - 240.0 * 0.5625;
        assert!(info.contains(&format!("{px:.1},{y_peak:.1}")), "{info}");
    }

    #[test]
    fn a_graded_item_has_one_curve_per_category() {
        let item = Item::new(
            "g",
            etalon_items::ItemModel::graded(1.2, vec![-1.0, 0.0, 1.0]).unwrap(),
        );
        let svg = item_characteristic_chart(
            &item,
            PlotLabels {
                title: "t",
                x: "x",
                y: "y",
            },
            |k| format!("c{k}"),
        );
        assert_eq!(svg.matches("<polyline").count(), 4);
    }

    #[test]
    fn a_profile_bar_is_as_long_as_the_level_and_marks_the_target() {
        let bars = [ProfileBar {
            name: "1.1 Search".into(),
            level: 3,
            label: "independent".into(),
            levels: 7,
            target: Some(4),
        }];
        let svg = profile_chart(&bars, "Profile", "mark = target");
        assert!(svg.contains("width=\"210.0\""), "{svg}"); // 3/6 of 420
        assert!(svg.contains("x1=\"580.0\""), "{svg}"); // 300 + 4/6 of 420
        assert!(svg.contains("3 independent") && svg.contains("mark = target"));
        assert!(inline(&svg).starts_with("<svg"));
    }
}
