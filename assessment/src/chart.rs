//! Charts as SVG: the level distribution of a campaign, per competence (stacked bars, the target
//! marked). Plain text output, embeddable in a web page or a report.

use crate::campaign::{Campaign, Report};

/// Escape text for SVG/XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal stacked bars: one per competence, the share of participants at each level, the target
/// level marked.
pub fn campaign_chart(report: &Report, campaign: &Campaign) -> String {
    const COLOURS: [&str; 9] = [
        "#d73027", "#f46d43", "#fdae61", "#fee08b", "#ffffbf", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850",
    ];
    let (left, width, row) = (330.0, 600.0, 28.0);
    let height = 90.0 + row * report.competences.len() as f64 + 40.0;
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        left + width + 30.0
    );
    s += &format!("<title>{}</title>\n", escape(campaign.name()));
    s += &format!(
        "<text x=\"10\" y=\"24\" font-size=\"16\" font-weight=\"bold\">{} — levels of {} participants</text>\n",
        escape(campaign.name()),
        report.participants
    );
    let labels = campaign.assessment().levels.default.labels();
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
