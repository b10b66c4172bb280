//! `etalon.calibrate`: marginal maximum likelihood by EM, the library call `etalon calibrate` makes.

use crate::bank::Bank;
use crate::data::Responses;
use crate::errors;
use crate::json;
use crate::run;
use etalon_calibration::em::{Control, Progress};
use etalon_calibration::multidim::{MultiQuadrature, calibrate_multidimensional};
use etalon_calibration::{CalibrationSpec, calibrate as fit};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::BTreeMap;

/// A dimensions file (`item,dimension`, as `etalon calibrate --dimensions` reads it) as a dict item →
/// dimension; a bad line is a `CalibrationError` naming the file and line.
#[pyfunction]
pub fn read_dimensions(path: std::path::PathBuf) -> PyResult<BTreeMap<String, String>> {
    etalon_assessment::files::read_dimensions(&path).map_err(|e| errors::calibration_msg(e.to_string()))
}

/// Calibrate `responses` under `spec` (the JSON of a calibration spec: `{"model", "items", "em":
/// {"quadrature", "tol", "max_cycles", "priors"}, "standard_errors"}`), keeping the items of `anchor`
/// fixed. `progress(cycle, log_likelihood, change)` is called after every EM cycle. Returns a dict:
/// `bank`, `log_likelihood`, `aic`, `bic`, `parameters`, `persons`, `items`, `cycles`, `converged`,
/// `last_change`, `latent`, `item_fit`, `warnings`, `warning_details`. With `dimensions` (item →
/// dimension, each item measuring one), the between-item multidimensional model of `etalon calibrate
/// --dimensions` (correlated dimensions through a general factor, 21 × 21 Gauss–Hermite nodes per
/// dimension), and also `dimensions`, `correlations`, `general_loadings` (with standard errors,
/// `general_loadings_se`, `correlations_se`).
#[pyfunction]
#[pyo3(signature = (responses, spec, anchor = None, threads = None, progress = None, dimensions = None))]
#[allow(clippy::too_many_arguments)]
pub fn calibrate<'py>(
    py: Python<'py>,
    responses: &Bound<'py, Responses>,
    spec: &str,
    anchor: Option<&Bound<'py, Bank>>,
    threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    dimensions: Option<BTreeMap<String, String>>,
) -> PyResult<Bound<'py, PyDict>> {
    if dimensions.is_some() && anchor.is_some() {
        return Err(errors::calibration_msg(
            "dimensions cannot be combined with anchor (multidimensional linking is not built)",
        ));
    }
    let spec: CalibrationSpec = serde_json::from_str(spec)
        .map_err(|e| errors::calibration_msg(format!("calibration settings: {e}")))?;
    spec.em
        .check()
        .map_err(|e| errors::calibration_msg(e.to_string()))?;
    let data = &*responses.get().inner;
    let anchor = anchor.map(|b| b.get().inner.clone());
    let spec_ref = &spec;
    let anchor_ref = anchor.as_deref();
    let on_progress = |py: Python<'_>, p: Progress| -> PyResult<()> {
        if let Some(cb) = &progress {
            cb.call1((p.cycle, p.loglik, p.change))?;
        }
        let _ = py;
        Ok(())
    };
    let dimensions_ref = dimensions.as_ref();
    let (fitted, structure) = run::run(py, threads, on_progress, |watch| {
        let observer = |p: &Progress| {
            watch.report(*p);
            if watch.cancelled() {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        match dimensions_ref {
            Some(d) => calibrate_multidimensional(data, spec_ref, d, MultiQuadrature::default(), observer)
                .map(|m| {
                    let structure = (
                        m.dimensions,
                        m.correlations,
                        m.loadings,
                        m.loading_se,
                        m.correlation_se,
                    );
                    (m.calibration, Some(structure))
                }),
            None => fit(data, spec_ref, anchor_ref, observer).map(|c| (c, None)),
        }
    })?
    .map_err(errors::calibration)?;
    let out = PyDict::new(py);
    if let Some((dimensions, correlations, loadings, loading_se, correlation_se)) = structure {
        out.set_item("dimensions", dimensions)?;
        out.set_item("correlations", correlations)?;
        out.set_item("general_loadings", loadings)?;
        out.set_item("general_loadings_se", loading_se)?;
        out.set_item("correlations_se", correlation_se)?;
    }
    out.set_item("bank", Bank::new(fitted.bank))?;
    out.set_item("model", json::ser_to_py(py, &spec.model)?)?;
    out.set_item("log_likelihood", fitted.loglik)?;
    out.set_item("aic", fitted.aic)?;
    out.set_item("bic", fitted.bic)?;
    out.set_item("parameters", fitted.n_parameters)?;
    out.set_item("persons", fitted.persons)?;
    out.set_item("items", fitted.items)?;
    out.set_item("cycles", fitted.cycles)?;
    out.set_item("converged", fitted.converged)?;
    out.set_item("last_change", fitted.last_change)?;
    out.set_item("latent", (fitted.latent.mean, fitted.latent.variance))?;
    out.set_item("item_fit", json::ser_to_py(py, &fitted.item_fit)?)?;
    let warnings: Vec<String> = fitted.warnings.iter().map(ToString::to_string).collect();
    out.set_item("warnings", warnings)?;
    out.set_item("warning_details", json::ser_to_py(py, &fitted.warnings)?)?;
    Ok(out)
}
