//! Ready-made settings: the interactive test of `etalon assess`, the example campaign.

use crate::campaign::{Campaign, CampaignSpec, Target};
use etalon_engine::SessionConfig;
use etalon_engine::multidim::MultiConfig;
use etalon_engine::profile::ProfileConfig;
use etalon_items::Bank;

/// A short competence profile for one person at a terminal or in a browser: every competence visited,
/// 1 to 2 questions each (stopping early when classified), so 16 competences take 16 to 32 questions.
pub fn quick_profile() -> ProfileConfig {
    ProfileConfig {
        max_items_per_competence: 2,
        min_items_per_competence: 1,
        ..ProfileConfig::default()
    }
}

/// A multidimensional competence profile for one person ([`MultiConfig`]): up to 2 questions per
/// competence on average (at most 32), at most 3 on any one, each question where the profile is least
/// certain; a competence is done once classified (its 60% interval in one level band) after at least
/// one question of its own, and the test ends when every competence is done.
pub fn quick_multidimensional(bank: &Bank) -> MultiConfig {
    let d = bank.structure().map_or(16, |s| s.len());
    MultiConfig {
        max_items: (2 * d).clamp(1, 32),
        min_items: d.min(16),
        max_items_per_competence: 3,
        ..MultiConfig::default()
    }
}

/// The design of an assessment when none is given: the multidimensional profile when the bank records
/// a latent structure (every answer informs every competence), otherwise [`quick_profile`].
pub fn default_design(bank: &Bank) -> crate::assessment::Design {
    if bank.structure().is_some() {
        crate::assessment::Design::Multidimensional(quick_multidimensional(bank))
    } else {
        crate::assessment::Design::Profile(quick_profile())
    }
}

/// A single adaptive test over a bank: visit every competence once (up to 16), then stop at SE ≤ 0.35
/// or 24 items; no two consecutive items of one competence, one item per skill tag.
pub fn interactive_adaptive(bank: &Bank) -> SessionConfig {
    let mut c = SessionConfig::default();
    let competences = bank
        .items()
        .iter()
        .filter_map(|i| i.competence.as_ref())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    c.stopping.max_items = 24;
    c.stopping.min_items = competences.clamp(1, 16);
    c.stopping.se_target = Some(0.35);
    c.content.visit_all = competences > 1;
    c.content.avoid_consecutive = true;
    c.content.one_per_tag_prefix = "skill:".into();
    c
}

/// The example campaign: every competence of the embedded example bank, targets by domain.
pub fn example_campaign() -> Campaign {
    let bank = etalon_items::example::example_bank();
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
    Campaign::new(CampaignSpec {
        id: "example-campaign".into(),
        name: "Digital competences of the staff (example)".into(),
        bank: None,
        targets,
        simulated_correlation: 0.5,
        assessment: ProfileConfig::default(),
        feedback: false,
        design: Default::default(),
    })
    .unwrap_or_else(|e| unreachable!("the example campaign is valid: {e}"))
}
