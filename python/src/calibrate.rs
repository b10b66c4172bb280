//! `etalon.calibrate`: marginal maximum likelihood by EM, the library call `etalon calibrate` makes.

use crate::bank::Bank;
use crate::data::Responses;
use crate::errors;
use crate::json;
use crate::run;
use etalon_calibration::em::{Control, Progress};
use etalon_calibration::{CalibrationSpec, calibrate as fit};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Calibrate `responses` under `spec` (the JSON of a calibration spec: `{"model", "items", "em":
/// {"quadrature", "tol", "max_cycles", "priors"}, "standard_errors"}`), keeping the items of `anchor`
/// fixed. `progress(cycle, log_likelihood, change)` is called after every EM cycle. Returns a dict:
/// `bank`, `log_likelihood`, `aic`, `bic`, `parameters`, `persons`, `items`, `cycles`, `converged`,
/// `last_change`, `latent`, `item_fit`, `warnings`, `warning_details`.
#[pyfunction]
#[pyo3(signature = (responses, spec, anchor = None, threads = None, progress = None))]
pub fn calibrate<'py>(
    py: Python<'py>,
    responses: &Bound<'py, Responses>,
    spec: &str,
    anchor: Option<&Bound<'py, Bank>>,
    threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
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
    let fitted = run::run(py, threads, on_progress, |watch| {
        fit(data, spec_ref, anchor_ref, |p: &Progress| {
            watch.report(*p);
            if watch.cancelled() {
                Control::Stop
            } else {
                Control::Continue
            }
        })
    })?
    .map_err(errors::calibration)?;
    let out = PyDict::new(py);
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
