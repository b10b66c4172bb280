//! `etalon.score`: every person's θ̂ and SE, the library call `etalon score` makes.

use crate::bank::Bank;
use crate::columns;
use crate::data::Responses;
use crate::errors;
use crate::json;
use crate::run;
use etalon_assessment::scoring::{self, PersonScore};
use etalon_engine::estimate::Method;
use etalon_items::levels::{LevelMap, Levels};
use etalon_items::quadrature::Rule;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The numeric columns of the result, built without the GIL: θ̂ and SE (NaN where unscored, NaN SE
/// for ±inf θ), and with a level map each person's level (−1 unscored) and its probability.
struct Columns {
    theta: Vec<f64>,
    se: Vec<f64>,
    level: Vec<i64>,
    probability: Vec<f64>,
}

impl Columns {
    fn new(persons: &[PersonScore], map: Option<&LevelMap>) -> Self {
        let n = persons.len();
        let mut c = Columns {
            theta: Vec::with_capacity(n),
            se: Vec::with_capacity(n),
            level: Vec::with_capacity(if map.is_some() { n } else { 0 }),
            probability: Vec::with_capacity(if map.is_some() { n } else { 0 }),
        };
        for p in persons {
            match &p.estimate {
                Ok(e) => {
                    c.theta.push(e.theta);
                    c.se.push(if e.se.is_finite() { e.se } else { f64::NAN });
                    if let Some(m) = map {
                        let l = m.level(e.theta);
                        c.level.push(l as i64);
                        c.probability.push(m.probabilities(e.theta, e.se)[l]);
                    }
                }
                Err(_) => {
                    c.theta.push(f64::NAN);
                    c.se.push(f64::NAN);
                    if map.is_some() {
                        c.level.push(-1);
                        c.probability.push(f64::NAN);
                    }
                }
            }
        }
        c
    }
}

/// Score `responses` against `bank`. Returns a dict of columns — `person` (object array of str),
/// `theta`, `se` (float arrays; NaN where a person could not be scored, ±inf θ with NaN SE for ML's
/// extreme patterns), with `levels` also `level` (int array, −1 unscored), `label` (object array,
/// `None` unscored) and `level_probability` — and `summary` (the counts `etalon score` prints, with
/// the prior used).
#[pyfunction]
#[pyo3(signature = (bank, responses, method = "eap", quadrature = 61, rule = "rectangle",
    theta_range = (-6.0, 6.0), prior_mean = None, prior_sd = None, levels = None, threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn score<'py>(
    py: Python<'py>,
    bank: &Bound<'py, Bank>,
    responses: &Bound<'py, Responses>,
    method: &str,
    quadrature: usize,
    rule: &str,
    theta_range: (f64, f64),
    prior_mean: Option<f64>,
    prior_sd: Option<f64>,
    levels: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let bank = &*bank.get().inner;
    let data = &*responses.get().inner;
    let method = Method::parse(method).ok_or_else(|| {
        errors::config_msg(format!(
            "unknown method {:?} (eap, map, ml, wle)",
            etalon_assessment::cut(method, 40)
        ))
    })?;
    let rule = parse_rule(rule)?;
    let levels: Option<Levels> = match json::json_arg(levels)? {
        Some(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| errors::config_msg(format!("level map: {e}")))?;
            Some(Levels::from_json(&value).map_err(errors::levels)?)
        }
        None => None,
    };
    if bank.structure().is_some() {
        return score_multidimensional(
            py,
            bank,
            data,
            method,
            prior_mean.or(prior_sd),
            levels.as_ref(),
            threads,
        );
    }
    let config = scoring::estimator_config(bank, method, prior_mean, prior_sd, quadrature, rule, theta_range)
        .map_err(errors::estimation)?;
    let map = levels.as_ref().map(|l| &l.default);
    let (scores, numbers) = run::detached(py, threads, || {
        scoring::score(bank, data, config).map(|s| {
            let c = Columns::new(&s.persons, map);
            (s, c)
        })
    })?
    .map_err(errors::scoring)?;
    let out = PyDict::new(py);
    out.set_item(
        "person",
        columns::strings(py, scores.persons.iter().map(|p| p.person.as_str())),
    )?;
    out.set_item("theta", PyArray1::from_vec(py, numbers.theta))?;
    out.set_item("se", PyArray1::from_vec(py, numbers.se))?;
    if let Some(m) = map {
        // One string per level, shared by the persons at that level.
        let names: Vec<Py<PyAny>> = (0..m.n_levels())
            .map(|l| PyString::new(py, m.label(l)).into_any().unbind())
            .collect();
        let label: Vec<Py<PyAny>> = numbers
            .level
            .iter()
            .map(|&l| match usize::try_from(l) {
                Ok(l) => names[l].clone_ref(py),
                Err(_) => py.None(),
            })
            .collect();
        out.set_item("level", PyArray1::from_vec(py, numbers.level))?;
        out.set_item("label", columns::objects(py, label))?;
        out.set_item("level_probability", PyArray1::from_vec(py, numbers.probability))?;
    }
    let summary = json::ser_to_py(py, &scores.summary)?;
    let prior = PyDict::new(py);
    prior.set_item("mean", config.prior.mean)?;
    prior.set_item("sd", config.prior.sd)?;
    summary.set_item("prior", prior)?;
    out.set_item("summary", summary)?;
    Ok(out)
}

/// [`score`] on a multidimensional bank: every competence's θ̂ and SE under the bank's N(0, R), and
/// the general level (their mean), as `etalon score` writes them (`theta, se` then `theta_DIM,
/// se_DIM`; with levels `level, label, level_probability` after each). A one-θ prior (`prior`: the
/// value of `prior_mean` or `prior_sd` if given) is refused, as the command refuses its options.
fn score_multidimensional<'py>(
    py: Python<'py>,
    bank: &etalon_items::Bank,
    data: &etalon_items::Responses,
    method: Method,
    prior: Option<f64>,
    levels: Option<&Levels>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    if prior.is_some() {
        return Err(errors::config_msg(
            "prior_mean and prior_sd set a one-θ prior: a multidimensional bank's prior is its N(0, R) \
             (`latent` in the bank)",
        ));
    }
    scoring::multidimensional_model(bank, method).map_err(errors::scoring)?;
    let (scores, groups) = run::detached(py, threads, || {
        scoring::score_multidimensional(bank, data, method).map(|s| {
            let groups = s.columns(levels);
            (s, groups)
        })
    })?
    .map_err(errors::scoring)?;
    let out = PyDict::new(py);
    out.set_item(
        "person",
        columns::strings(py, scores.persons.iter().map(|(p, _)| p.as_str())),
    )?;
    for g in groups {
        out.set_item(format!("theta{}", g.suffix), PyArray1::from_vec(py, g.theta))?;
        out.set_item(format!("se{}", g.suffix), PyArray1::from_vec(py, g.se))?;
        if let Some((level, label, probability)) = g.levels {
            let level: Vec<i64> = level.into_iter().map(|l| l as i64).collect();
            out.set_item(format!("level{}", g.suffix), PyArray1::from_vec(py, level))?;
            out.set_item(
                format!("label{}", g.suffix),
                columns::strings(py, label.iter().map(String::as_str)),
            )?;
            out.set_item(
                format!("level_probability{}", g.suffix),
                PyArray1::from_vec(py, probability),
            )?;
        }
    }
    let summary = json::ser_to_py(py, &scores.summary)?;
    summary.set_item("dimensions", scores.dimensions.clone())?;
    out.set_item("summary", summary)?;
    Ok(out)
}

/// `rectangle`, `trapezoid` or `gauss-hermite`.
pub fn parse_rule(rule: &str) -> PyResult<Rule> {
    serde_json::from_value(serde_json::Value::String(rule.to_ascii_lowercase())).map_err(|_| {
        errors::config_msg(format!(
            "unknown quadrature rule {:?} (rectangle, trapezoid, gauss-hermite)",
            etalon_assessment::cut(rule, 40)
        ))
    })
}
