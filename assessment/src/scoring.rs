//! Scoring of response files: every person's θ̂ and SE (EAP, MAP, ML or WLE) from a response matrix or
//! an adaptive-test log, with levels when a level map is given, written as CSV to any writer; on a
//! multidimensional bank, every competence's θ̂ and SE from the multidimensional posterior.

use etalon_engine::estimate::{
    Answer, Estimate, EstimateKind, EstimationError, Estimator, EstimatorConfig, check_answers,
};
use etalon_engine::multidim::{MultiEstimate, MultiModel};
use etalon_items::levels::LevelMap;
use etalon_items::quadrature::Prior;
use etalon_items::{Bank, DataError, Responses};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;

/// The prior a bank's calibrated latent distribution gives — N(mean, variance) as mirt's `fscores`
/// uses after a Rasch or anchored calibration — or N(0, 1) when the bank records none.
pub fn bank_prior(bank: &Bank) -> Prior {
    match bank.latent() {
        Some(l) => Prior {
            mean: l.mean,
            sd: l.sd(),
        },
        None => Prior { mean: 0.0, sd: 1.0 },
    }
}

/// Scoring that cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoringError {
    /// The data do not fit the bank (unknown items, codes).
    #[error(transparent)]
    Data(#[from] DataError),
    /// Invalid estimator settings.
    #[error("estimator: {0}")]
    Estimator(#[from] EstimationError),
    /// The bank's latent structure cannot be used.
    #[error(transparent)]
    Multidimensional(#[from] etalon_engine::multidim::MultiError),
    /// Nobody could be scored.
    #[error("no person could be scored: person {person}: {reason}")]
    NobodyScored {
        /// The first person.
        person: String,
        /// Why.
        reason: EstimationError,
    },
}

/// One person's estimate, or the error when it cannot be computed: ML or WLE without answers, a
/// likelihood the method cannot maximise (`EstimationError::Unscorable`: numerically flat, or a score
/// that underflows to 0/0), an EAP posterior no grid refinement resolves (`GridTooCoarse`). Such a
/// person is counted in [`ScoreSummary::unscored`] and written with empty cells; no bound or other
/// method's value stands in.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonScore {
    /// Person id (the id column, else the 1-based row).
    pub person: String,
    /// The estimate.
    pub estimate: Result<Estimate, EstimationError>,
}

/// Counts over everybody scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// Persons.
    pub persons: usize,
    /// Items of the data.
    pub items: usize,
    /// Method.
    pub method: String,
    /// Mean of the finite estimates.
    pub mean_theta: Option<f64>,
    /// ML estimates at ±∞.
    pub infinite: usize,
    /// Estimates clipped at the θ range (modal optimum at or beyond a bound, or an EAP posterior piled
    /// against an end of the grid).
    pub bounded: usize,
    /// Persons who could not be scored.
    pub unscored: usize,
}

/// Every person's estimate, in data order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// Per person.
    pub persons: Vec<PersonScore>,
    /// Counts.
    pub summary: ScoreSummary,
}

/// Score every person of `responses` against `bank` with `config` (in parallel; the order and the
/// numbers do not depend on the thread count).
///
/// Every answer a person can give is one of the (data item, data category) pairs of the alignment:
/// they are turned into bank answers and checked once, per data item, so that each person's answers are
/// copied from that table without a check each ([`Estimator::estimate_many_checked`]). The persons'
/// labels (a string each) are made in parallel too.
pub fn score(bank: &Bank, responses: &Responses, config: EstimatorConfig) -> Result<Scores, ScoringError> {
    let alignment = responses.align(bank)?;
    let models: Vec<_> = bank.items().iter().map(|i| i.parameters.clone()).collect();
    // The bank answer of data item j's category c: `answers_of[j][c]`.
    let answers_of: Vec<Vec<Answer>> = alignment
        .columns
        .iter()
        .zip(&alignment.categories)
        .map(|(&column, categories)| {
            let answers: Vec<Answer> = categories
                .iter()
                .map(|&k| Answer::new(column, k as usize))
                .collect();
            check_answers(&models, &answers).map(|()| answers)
        })
        .collect::<Result<_, _>>()?;
    // The same table flat, `stride` answers per data item (the hot loop reads it for every answer).
    let stride = answers_of.iter().map(Vec::len).max().unwrap_or(0);
    let flat: Vec<Answer> = answers_of
        .iter()
        .flat_map(|a| {
            a.iter()
                .copied()
                .chain(std::iter::repeat_n(Answer::new(0, 0), stride - a.len()))
        })
        .collect();
    let estimator = Estimator::new(models, config)?;
    let results = match responses {
        // A matrix's rows straight from its cells (MISSING, 255, is above every stride).
        Responses::Dense(m) if m.n_items() > 0 => {
            estimator.estimate_rows(m.cells(), m.n_items(), &flat, stride)
        }
        _ => estimator.estimate_many_checked(responses.n_persons(), |p, answers| {
            responses.for_each_answer(p, |j, c| {
                debug_assert!(usize::from(c) < answers_of[j].len());
                answers.push(flat[j * stride + usize::from(c)]);
            });
        }),
    };
    let persons: Vec<PersonScore> = results
        .into_par_iter()
        .enumerate()
        .map(|(p, estimate)| PersonScore {
            person: responses.person_label(p),
            estimate,
        })
        .collect();
    let mut summary = ScoreSummary {
        persons: persons.len(),
        items: responses.item_ids().len(),
        method: config.method.name().to_string(),
        mean_theta: None,
        infinite: 0,
        bounded: 0,
        unscored: 0,
    };
    let (mut sum, mut finite) = (0.0, 0usize);
    for p in &persons {
        match &p.estimate {
            Ok(e) => {
                match e.kind {
                    EstimateKind::Infinite => summary.infinite += 1,
                    EstimateKind::Bounded => summary.bounded += 1,
                    EstimateKind::Finite => {}
                }
                if e.theta.is_finite() {
                    sum += e.theta;
                    finite += 1;
                }
            }
            Err(_) => summary.unscored += 1,
        }
    }
    summary.mean_theta = (finite > 0).then(|| sum / finite as f64);
    if summary.unscored == persons.len()
        && let Some(PersonScore {
            person,
            estimate: Err(reason),
        }) = persons.first()
    {
        return Err(ScoringError::NobodyScored {
            person: person.clone(),
            reason: reason.clone(),
        });
    }
    Ok(Scores { persons, summary })
}

/// Every person's multidimensional estimate, in data order.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiScores {
    /// The bank's dimensions, in order.
    pub dimensions: Vec<String>,
    /// Per person: id and posterior mode with its Laplace covariance.
    pub persons: Vec<(String, MultiEstimate)>,
    /// Counts (`mean_theta` is the mean general level).
    pub summary: ScoreSummary,
}

/// Gauss–Hermite nodes per dimension of a multidimensional EAP.
pub const MULTIDIMENSIONAL_EAP_POINTS: usize = 21;

/// The model of a multidimensional bank, once `method` is known to apply to it (checked before any
/// data are read): `map`, or `eap` when the dimensions are few enough for the grid; ML and WLE
/// estimate one θ and are refused.
pub fn multidimensional_model(
    bank: &Bank,
    method: etalon_engine::estimate::Method,
) -> Result<MultiModel, ScoringError> {
    use etalon_engine::estimate::Method;
    use etalon_engine::multidim::MultiError;
    let model = MultiModel::new(bank)?;
    match method {
        Method::Map => {}
        Method::Eap => {
            model.eap(&[], MULTIDIMENSIONAL_EAP_POINTS)?;
        }
        m => {
            return Err(MultiError::Config(format!(
                "{} estimates one θ; a multidimensional bank is scored by eap or map under N(0, R)",
                m.name()
            ))
            .into());
        }
    }
    Ok(model)
}

/// Score every person of `responses` on a multidimensional bank under N(0, R), in parallel (the
/// numbers do not depend on the thread count): `eap`, the posterior mean and covariance on
/// [`MULTIDIMENSIONAL_EAP_POINTS`] nodes per dimension ([`MultiModel::eap`], up to three dimensions),
/// or `map`, the posterior mode and its Laplace covariance ([`MultiModel::map`]). ML and WLE estimate
/// one θ and are refused. A person without answers gets the prior (θ̂ = 0, SE 1).
pub fn score_multidimensional(
    bank: &Bank,
    responses: &Responses,
    method: etalon_engine::estimate::Method,
) -> Result<MultiScores, ScoringError> {
    use etalon_engine::estimate::Method;
    let model = multidimensional_model(bank, method)?;
    let alignment = responses.align(bank)?;
    let models: Vec<_> = bank.items().iter().map(|i| i.parameters.clone()).collect();
    for (&column, categories) in alignment.columns.iter().zip(&alignment.categories) {
        let answers: Vec<Answer> = categories
            .iter()
            .map(|&k| Answer::new(column, k as usize))
            .collect();
        check_answers(&models, &answers)?;
    }
    let persons: Vec<(String, MultiEstimate)> = (0..responses.n_persons())
        .into_par_iter()
        .map_init(Vec::new, |answers, p| {
            answers.clear();
            responses.for_each_answer(p, |j, c| {
                answers.push((alignment.columns[j], alignment.categories[j][c as usize] as usize));
            });
            let estimate = match method {
                Method::Eap => model
                    .eap(answers, MULTIDIMENSIONAL_EAP_POINTS)
                    .unwrap_or_else(|_| unreachable!("the grid was checked for the bank")),
                _ => model.map(answers, None),
            };
            (responses.person_label(p), estimate)
        })
        .collect();
    let mean = persons.iter().map(|(_, e)| e.general().0).sum::<f64>() / persons.len().max(1) as f64;
    Ok(MultiScores {
        dimensions: model.dimensions().to_vec(),
        summary: ScoreSummary {
            persons: persons.len(),
            items: responses.item_ids().len(),
            method: format!("{} (multidimensional)", method.name()),
            mean_theta: (!persons.is_empty()).then_some(mean),
            infinite: 0,
            bounded: 0,
            unscored: 0,
        },
        persons,
    })
}

/// One group of columns of a multidimensional scoring: the general level (`suffix` empty) or one
/// dimension (`suffix` `_DIM`), with θ̂ and SE per person and, with levels, the level on the group's
/// map (the default map for the general level, the competence's for a dimension), its label and
/// its probability P(level | θ̂, SE).
#[derive(Debug, Clone, PartialEq)]
pub struct MultiColumns {
    /// `""` for the general level, `_DIM` for dimension DIM.
    pub suffix: String,
    /// θ̂ per person.
    pub theta: Vec<f64>,
    /// SE per person.
    pub se: Vec<f64>,
    /// With levels: per person the level (0-based), its label and its probability.
    pub levels: Option<(Vec<usize>, Vec<String>, Vec<f64>)>,
}

impl MultiScores {
    /// The column groups `etalon score` writes (see [`write_multidimensional_scores_csv`]): the
    /// general level, then each dimension in the bank's order.
    pub fn columns(&self, levels: Option<&etalon_items::levels::Levels>) -> Vec<MultiColumns> {
        let group =
            |suffix: String, map: Option<&LevelMap>, estimate: &dyn Fn(&MultiEstimate) -> (f64, f64)| {
                let (theta, se): (Vec<f64>, Vec<f64>) = self.persons.iter().map(|(_, e)| estimate(e)).unzip();
                let levels = map.map(|m| {
                    let level: Vec<usize> = theta.iter().map(|&t| m.level(t)).collect();
                    let label = level.iter().map(|&l| m.label(l).to_string()).collect();
                    let probability = level
                        .iter()
                        .zip(theta.iter().zip(&se))
                        .map(|(&l, (&t, &s))| m.probabilities(t, s)[l])
                        .collect();
                    (level, label, probability)
                });
                MultiColumns {
                    suffix,
                    theta,
                    se,
                    levels,
                }
            };
        let mut groups = vec![group(String::new(), levels.map(|l| &l.default), &|e| e.general())];
        for (k, d) in self.dimensions.iter().enumerate() {
            groups.push(group(
                format!("_{d}"),
                levels.map(|l| l.for_competence(d)),
                &|e| (e.theta[k], e.se(k)),
            ));
        }
        groups
    }
}

/// Write a multidimensional scoring as CSV: `person,theta,se` (the general level: the mean of the
/// competences) then `theta_DIM,se_DIM` per dimension; with `levels`, `level,label,level_probability`
/// after the general level (on the default map) and `level_DIM,label_DIM,level_probability_DIM` after
/// each dimension (on its competence's map).
pub fn write_multidimensional_scores_csv(
    scores: &MultiScores,
    levels: Option<&etalon_items::levels::Levels>,
    output: impl Write,
) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(output);
    let groups = scores.columns(levels);
    let mut header = vec!["person".to_string()];
    for g in &groups {
        header.extend([format!("theta{}", g.suffix), format!("se{}", g.suffix)]);
        if g.levels.is_some() {
            header.extend(["level", "label", "level_probability"].map(|c| format!("{c}{}", g.suffix)));
        }
    }
    w.write_record(&header)?;
    for (p, (person, _)) in scores.persons.iter().enumerate() {
        let mut row = vec![person.clone()];
        for g in &groups {
            row.extend([g.theta[p].to_string(), g.se[p].to_string()]);
            if let Some((level, label, probability)) = &g.levels {
                row.extend([level[p].to_string(), label[p].clone(), probability[p].to_string()]);
            }
        }
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// θ and SE as FORMATS.md writes them: `-inf`/`inf` with an empty SE for infinite ML.
pub fn format_estimate(theta: f64, se: f64) -> (String, String) {
    let t = if theta == f64::INFINITY {
        "inf".to_string()
    } else if theta == f64::NEG_INFINITY {
        "-inf".to_string()
    } else {
        theta.to_string()
    };
    let s = if se.is_finite() {
        se.to_string()
    } else {
        String::new()
    };
    (t, s)
}

/// Write `person,theta,se` (plus `level,label,level_probability` with a level map) through a CSV
/// writer: ids with commas, quotes or newlines are quoted. Unscored persons get empty cells.
pub fn write_scores_csv(scores: &Scores, levels: Option<&LevelMap>, output: impl Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(output);
    let mut header = vec!["person", "theta", "se"];
    if levels.is_some() {
        header.extend(["level", "label", "level_probability"]);
    }
    w.write_record(&header)?;
    for p in &scores.persons {
        let mut row: Vec<String> = vec![p.person.clone()];
        match &p.estimate {
            Ok(e) => {
                let (t, s) = format_estimate(e.theta, e.se);
                row.push(t);
                row.push(s);
                if let Some(map) = levels {
                    let level = map.level(e.theta);
                    row.push(level.to_string());
                    row.push(map.label(level).to_string());
                    row.push(map.probabilities(e.theta, e.se)[level].to_string());
                }
            }
            Err(_) => row.resize(if levels.is_some() { 6 } else { 3 }, String::new()),
        }
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// The estimator settings `etalon score` builds from its options: `method`; the prior N(mean, sd²),
/// each part defaulting to the bank's latent distribution ([`bank_prior`]); `points` grid points
/// placed by `rule` on the θ range `range`, which also bounds the modal estimates (MAP, ML, WLE).
/// Validated. Front ends that score with the command line's defaults (61 points, `rectangle`,
/// [-6, 6]) get its numbers.
pub fn estimator_config(
    bank: &Bank,
    method: etalon_engine::estimate::Method,
    prior_mean: Option<f64>,
    prior_sd: Option<f64>,
    points: usize,
    rule: etalon_items::quadrature::Rule,
    range: (f64, f64),
) -> Result<EstimatorConfig, EstimationError> {
    estimator_config_with(
        bank_prior(bank),
        method,
        prior_mean,
        prior_sd,
        points,
        rule,
        range,
    )
}

/// [`estimator_config`] with the prior's defaults given (`default_prior`) rather than read from a bank.
pub fn estimator_config_with(
    default_prior: Prior,
    method: etalon_engine::estimate::Method,
    prior_mean: Option<f64>,
    prior_sd: Option<f64>,
    points: usize,
    rule: etalon_items::quadrature::Rule,
    range: (f64, f64),
) -> Result<EstimatorConfig, EstimationError> {
    let config = EstimatorConfig {
        method,
        prior: Prior {
            mean: prior_mean.unwrap_or(default_prior.mean),
            sd: prior_sd.unwrap_or(default_prior.sd),
        },
        grid: etalon_items::quadrature::GridSpec {
            lower: range.0,
            upper: range.1,
            points,
            rule,
        },
        bounds: range,
    };
    config.validate()?;
    Ok(config)
}
