//! `etalon.Bank`: an item bank, valid by construction, read and written as the command line does.

use crate::errors;
use crate::json;
use etalon_items::{BankFormat, bank_io};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::sync::Arc;

/// An item bank: items with their response models and parameters (logistic metric, no 1.702), a
/// competence framework, provenance, optional latent distribution and level map. Immutable; valid by
/// construction (every item and the bank are checked when read).
///
/// Models: `rasch`, `1pl`, `2pl`, `3pl`, `4pl` with
/// P(X = 1 | θ) = c + (d − c) / (1 + exp(−a(θ − b))), `graded` with
/// P(X ≥ k | θ) = 1 / (1 + exp(−a(θ − b_k))), `gpcm` with P(X = k | θ) ∝ exp(Σ_{v ≤ k} a(θ − b_v)).
#[pyclass(frozen, module = "etalon", name = "Bank")]
pub struct Bank {
    pub inner: Arc<etalon_items::Bank>,
}

impl Bank {
    /// Wrap a bank.
    pub fn new(bank: etalon_items::Bank) -> Self {
        Bank {
            inner: Arc::new(bank),
        }
    }
}

#[pymethods]
impl Bank {
    /// Read a bank file: `.csv` or `.json`, optionally `.gz` (the extension chooses the format).
    /// Every problem of an invalid file is reported at once (`BankError.problems`).
    #[staticmethod]
    fn read(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        py.detach(|| etalon_items::read_bank(&path))
            .map(Bank::new)
            .map_err(errors::bank)
    }

    /// Write the bank; the extension chooses the format (`.csv`, `.json`, optionally `.gz`). The file
    /// is replaced atomically.
    fn write(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let bank = &*self.inner;
        py.detach(|| etalon_items::write_bank(bank, &path))
            .map_err(errors::bank)
    }

    /// Parse a bank from JSON text (the `.json` bank format).
    #[staticmethod]
    #[pyo3(signature = (text, source = "<json>"))]
    fn from_json(text: &str, source: &str) -> PyResult<Self> {
        etalon_items::read_bank_from(text.as_bytes(), BankFormat::Json, source)
            .map(Bank::new)
            .map_err(errors::bank)
    }

    /// The bank as JSON text (everything: framework, content, tutorials, levels, provenance).
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// Parse a bank from CSV text (`id,model,a,b,c,d,b1,…`, see `docs/FORMATS.md`); `id` is the
    /// bank's id (a CSV bank's is its file name), which also names it in errors.
    #[staticmethod]
    #[pyo3(signature = (text, id = "bank"))]
    fn from_csv(text: &str, id: &str) -> PyResult<Self> {
        etalon_items::read_bank_from(text.as_bytes(), BankFormat::Csv, id)
            .map(Bank::new)
            .map_err(errors::bank)
    }

    /// The bank as CSV text, numbers in shortest round-trip form (CSV → bank → CSV is identical).
    /// CSV keeps parameters, competence, status, codes, exposure, standard errors and the latent
    /// distribution; the framework, content, tutorials and tags need JSON.
    fn to_csv(&self) -> String {
        bank_io::bank_to_csv(&self.inner)
    }

    /// A bank from a DataFrame with the CSV bank's columns (`id`, `model`, `a`, `b`, `c`, `d`,
    /// `b1` … `bK`, optional `competence`, `status`, `codes`, `exposure`, `se_*`, `latent_mean`,
    /// `latent_variance`); empty or NaN cells are absent. An `id` index is taken as the `id` column.
    /// `id` is the bank's id (a CSV bank's is its file name), which also names it in errors.
    #[staticmethod]
    #[pyo3(signature = (df, id = "bank"))]
    fn from_dataframe(py: Python<'_>, df: &Bound<'_, PyAny>, id: &str) -> PyResult<Self> {
        let text: String = py
            .import("etalon._frames")?
            .call_method1("dataframe_to_csv", (df,))?
            .extract()?;
        Self::from_csv(&text, id)
    }

    /// The bank as a DataFrame with the CSV bank's columns (one row per item; only the columns some
    /// item uses), numbers exactly as in the bank.
    fn to_dataframe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("etalon._frames")?
            .call_method1("csv_to_dataframe", (self.to_csv(),))
    }

    /// Import a parameter table written by R's mirt (`coef(fit, IRTpars = TRUE, simplify = TRUE)` or the
    /// slope–intercept form, or an SE table `item,par,est,se`) as a bank of `model` items, as
    /// `etalon bank convert --from mirt --model MODEL` does.
    #[staticmethod]
    fn from_mirt(py: Python<'_>, path: std::path::PathBuf, model: &str) -> PyResult<Self> {
        let kind = etalon_items::ModelKind::parse(model).ok_or_else(|| {
            errors::config_msg(format!(
                "unknown model {:?} (rasch, 1pl, 2pl, 3pl, 4pl, graded, gpcm)",
                etalon_assessment::cut(model, 40)
            ))
        })?;
        py.detach(|| etalon_items::import_mirt(&path, kind))
            .map(Bank::new)
            .map_err(errors::bank)
    }

    /// The embedded example bank: a digital-competence framework (5 domains, 16 competences) with 64
    /// multiple-choice questions and illustrative, not calibrated, 2PL parameters.
    #[staticmethod]
    fn example() -> Self {
        Bank::new(etalon_items::example::example_bank())
    }

    /// Bank id.
    #[getter]
    fn id(&self) -> &str {
        self.inner.id()
    }

    /// Bank version.
    #[getter]
    fn version(&self) -> &str {
        self.inner.version()
    }

    /// Bank name, if any.
    #[getter]
    fn name(&self) -> Option<&str> {
        self.inner.name()
    }

    /// Fingerprint of the bank's items and parameters (a session records it and refuses another bank).
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }

    /// Item ids, in bank order.
    #[getter]
    fn item_ids(&self) -> Vec<String> {
        self.inner.items().iter().map(|i| i.id.clone()).collect()
    }

    /// The latent distribution the parameters are scaled to, `(mean, variance)`, when the bank records
    /// one (Rasch and anchored calibrations); scoring then uses N(mean, variance) as its default prior.
    #[getter]
    fn latent(&self) -> Option<(f64, f64)> {
        self.inner.latent().map(|l| (l.mean, l.variance))
    }

    /// What `etalon bank validate` prints: counts per model, competence and status, warnings.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json::ser_to_py(py, &self.inner.summary())
    }

    /// Valid but worth a look: items that discriminate negatively.
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }

    /// One item as a dict (the JSON bank's item: `id`, `parameters`, `competence`, `status`, …).
    fn item<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.item(id) {
            Some(item) => json::ser_to_py(py, item),
            None => Err(pyo3::exceptions::PyKeyError::new_err(format!(
                "no item `{}` in bank `{}`",
                etalon_assessment::cut(id, 60),
                self.inner.id()
            ))),
        }
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, id: &str) -> bool {
        self.inner.item(id).is_some()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Bank>()
            .is_ok_and(|o| o.get().inner.to_json() == self.inner.to_json())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.fingerprint().hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        let s = self.inner.summary();
        let models: Vec<String> = s.models.iter().map(|(m, n)| format!("{n} {m}")).collect();
        let latent = self
            .inner
            .latent()
            .map(|l| format!(", latent N({}, {})", l.mean, l.variance))
            .unwrap_or_default();
        format!(
            "<etalon.Bank {:?}: {} items ({}){latent}, fingerprint {}>",
            self.inner.id(),
            self.inner.len(),
            models.join(", "),
            s.fingerprint
        )
    }

    /// Pickled as its JSON text.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from_json = py.get_type::<Bank>().getattr("from_json")?;
        let args = PyTuple::new(py, [slf.get().inner.to_json()])?;
        PyTuple::new(py, [from_json.into_any(), args.into_any()])
    }
}
