//! Adaptive tests: `etalon.CatEngine` and `etalon.Session` (the engine's `CatEngine` and `Session`),
//! and `etalon.simulate` (the library calls `etalon simulate` makes).

use crate::bank::Bank;
use crate::columns;
use crate::data::Responses;
use crate::errors;
use crate::json;
use crate::run;
use etalon_assessment::simulation;
use etalon_engine::config::SessionConfig;
use etalon_engine::session::{self, Next, StopReason};
use etalon_engine::simulate::{self as engine_simulate, DrawAll};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// Parse a session configuration (JSON text; every field optional).
fn parse_config(config: Option<&str>, default: SessionConfig) -> PyResult<SessionConfig> {
    match config {
        None => Ok(default),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| errors::config_msg(format!("session configuration: {e}")))
        }
    }
}

/// A bank and a session configuration, validated, with everything precomputed for fast selection.
/// Sessions are started, driven and ended through it; it is immutable and may be shared by threads.
///
/// Selection rules: `mfi` (maximum Fisher information I_j(θ̂)), `mpwi` (∫ I_j(θ) π(θ | x) dθ), `kl`
/// (posterior-weighted Kullback–Leibler), `urry` (closest difficulty), `random`; exposure control,
/// content balancing and stopping rules as in the configuration (see the README).
#[pyclass(frozen, module = "etalon", name = "CatEngine")]
pub struct CatEngine {
    inner: session::CatEngine,
    bank: Py<Bank>,
    config: String,
}

#[pymethods]
impl CatEngine {
    /// `config` is a session configuration — a dict, JSON text or the path of a JSON file (`{"estimator", "selection", "content",
    /// "stopping", "start"}`, every field optional); `None` for the defaults (EAP on 61 points in
    /// [-6, 6], MFI, at most 40 items, stop at SE ≤ 0.3, start at θ = 0).
    #[new]
    #[pyo3(signature = (bank, config = None))]
    fn new(bank: Bound<'_, Bank>, config: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let config = json::json_arg(config)?;
        let parsed = parse_config(config.as_deref(), SessionConfig::default())?;
        let text = serde_json::to_string(&parsed)
            .map_err(|e| errors::config_msg(format!("session configuration: {e}")))?;
        let inner = session::CatEngine::new(&bank.get().inner, parsed).map_err(errors::config)?;
        Ok(CatEngine {
            inner,
            bank: bank.unbind(),
            config: text,
        })
    }

    /// The bank.
    #[getter]
    fn bank(&self, py: Python<'_>) -> Py<Bank> {
        self.bank.clone_ref(py)
    }

    /// The configuration in force (every field), as JSON text.
    #[getter]
    fn config_json(&self) -> &str {
        &self.config
    }

    /// Start a session; every random choice (random start, exposure control) comes from `seed`.
    #[pyo3(signature = (seed = 0))]
    fn start(&self, seed: u64) -> Session {
        Session {
            inner: self.inner.start(seed),
        }
    }

    /// The item to administer next, or `None` once the test is over (`session.finished` says why).
    /// Calling it again before the answer is recorded returns the same item.
    fn next(&self, session: &Bound<'_, Session>) -> PyResult<Option<String>> {
        let mut s = session.borrow_mut();
        match self.inner.next(&mut s.inner).map_err(errors::session)? {
            Next::Item(id) => Ok(Some(id)),
            Next::Finished(_) => Ok(None),
        }
    }

    /// Record `response` (an original response code of the item) to the pending `item`; returns the
    /// new estimate `(theta, se)`. A rejected call raises `SessionError` and leaves the session as it
    /// was.
    fn record(&self, session: &Bound<'_, Session>, item: &str, response: i64) -> PyResult<(f64, f64)> {
        let mut s = session.borrow_mut();
        let e = self
            .inner
            .record(&mut s.inner, item, response)
            .map_err(errors::session)?;
        Ok((e.theta, e.se))
    }

    /// The result so far (final once the test is over): `theta`, `se`, `length` (scored items),
    /// `items` (every administered item, in order), `reason` (why it ended, `None` while it runs),
    /// `per_competence`.
    fn result<'py>(&self, py: Python<'py>, session: &Bound<'py, Session>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.inner.result(&session.borrow().inner);
        let out = PyDict::new(py);
        out.set_item("theta", r.theta)?;
        out.set_item("se", r.se)?;
        out.set_item("length", r.length)?;
        out.set_item("items", r.items)?;
        out.set_item("reason", r.reason.map(StopReason::name))?;
        out.set_item("per_competence", r.per_competence)?;
        Ok(out)
    }

    /// Verify a session read from outside against this engine now (it is verified at the next call
    /// anyway): it must replay from its seed to the stored state.
    fn verify(&self, session: &Bound<'_, Session>) -> PyResult<()> {
        let mut s = session.borrow_mut();
        self.inner.verify(&mut s.inner).map_err(errors::session)
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!(
            "<etalon.CatEngine on bank {:?} ({} items): {} selection, {} estimation, at most {} items{}>",
            self.bank.get().inner.id(),
            self.bank.get().inner.len(),
            serde_json::to_value(c.selection.rule)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            c.estimator.method.name(),
            c.stopping.max_items,
            c.stopping
                .se_target
                .map(|s| format!(", stop at SE ≤ {s}"))
                .unwrap_or_default()
        )
    }

    /// Pickled as its bank and configuration.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        let args = PyTuple::new(
            py,
            [
                this.bank.clone_ref(py).into_bound(py).into_any(),
                this.config.clone().into_pyobject(py)?.into_any(),
            ],
        )?;
        PyTuple::new(py, [py.get_type::<CatEngine>().into_any(), args.into_any()])
    }
}

/// The state of one adaptive test: configuration, random-generator state, history with θ̂ and SE
/// after each answer. Saved as JSON after any answer and resumed anywhere, it makes exactly the choices
/// the uninterrupted session would.
#[pyclass(module = "etalon", name = "Session")]
pub struct Session {
    inner: session::Session,
}

#[pymethods]
impl Session {
    /// The session as JSON text (with a schema version; read by every later version of Etalon).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner)
            .map_err(|e| errors::session_msg(format!("the session cannot be saved: {e}")))
    }

    /// Read a session saved by `to_json`. It is verified against the engine at its next use (replayed
    /// from its seed): an edited or damaged session raises `SessionError`.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        serde_json::from_str(text)
            .map(|inner| Session { inner })
            .map_err(|e| errors::session_msg(format!("not a saved session: {e}")))
    }

    /// The seed the session was started with.
    #[getter]
    fn seed(&self) -> u64 {
        self.inner.seed()
    }

    /// The id of the session's bank.
    #[getter]
    fn bank_id(&self) -> &str {
        self.inner.bank_id()
    }

    /// The item offered and not yet answered.
    #[getter]
    fn pending(&self) -> Option<&str> {
        self.inner.pending()
    }

    /// Why the test ended (`max-items`, `precision`, `classified`, `bank-exhausted`), else `None`.
    #[getter]
    fn finished(&self) -> Option<&'static str> {
        self.inner.finished().map(StopReason::name)
    }

    /// Current `(theta, se)`: after the last scored answer, else the start θ with the prior SD.
    #[getter]
    fn estimate(&self) -> (f64, f64) {
        self.inner.estimate()
    }

    /// Number of scored answers.
    #[getter]
    fn length(&self) -> usize {
        self.inner.scored_count()
    }

    /// Every answer so far: dicts `item`, `response`, `category`, `scored`, `theta`, `se`.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for r in self.inner.history() {
            let d = PyDict::new(py);
            d.set_item("item", &r.item)?;
            d.set_item("response", r.response)?;
            d.set_item("category", r.category)?;
            d.set_item("scored", r.scored)?;
            d.set_item("theta", r.theta)?;
            d.set_item("se", r.se)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Session>()
            .is_ok_and(|o| o.borrow().inner == self.inner)
    }

    fn __repr__(&self) -> String {
        let (theta, se) = self.inner.estimate();
        let state = match (self.inner.finished(), self.inner.pending()) {
            (Some(r), _) => format!("finished ({})", r.name()),
            (None, Some(p)) => format!("pending `{p}`"),
            (None, None) => "running".to_string(),
        };
        format!(
            "<etalon.Session on bank {:?}, seed {}: {} answers, θ̂ = {theta:.4}, SE = {se:.4}, {state}>",
            self.inner.bank_id(),
            self.inner.seed(),
            self.inner.history().len()
        )
    }

    /// Pickled as its JSON text.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from_json = py.get_type::<Session>().getattr("from_json")?;
        let args = PyTuple::new(py, [slf.borrow().to_json()?])?;
        PyTuple::new(py, [from_json.into_any(), args.into_any()])
    }
}

/// `n` true abilities drawn from N(0, 1) with a generator seeded from `seed` (the stream `etalon
/// simulate --examinees N --seed SEED` uses).
#[pyfunction]
pub fn draw_thetas<'py>(py: Python<'py>, n: usize, seed: u64) -> Bound<'py, PyArray1<f64>> {
    PyArray1::from_vec(py, simulation::draw_thetas(n, seed))
}

/// Simulate adaptive tests for examinees of true abilities `thetas`, as `etalon simulate`: each
/// examinee's seed derives from `seed` and its index (results do not depend on the thread count);
/// answers drawn from the model (X = 1{P(θ) ≥ U}), or taken from `responses` (pre-drawn, one row per
/// examinee). `config` is a session configuration (dict, JSON text or file), `None` for `etalon simulate`'s
/// defaults. Returns a dict of columns `examinee`, `true_theta`, `theta`, `se`, `length`, `items`
/// (object array of the ids joined by `;`) and `summary` (what `etalon simulate` prints).
#[pyfunction]
#[pyo3(signature = (bank, thetas, config = None, responses = None, seed = 1, threads = None))]
pub fn simulate<'py>(
    py: Python<'py>,
    bank: &Bound<'py, Bank>,
    thetas: PyReadonlyArray1<'py, f64>,
    config: Option<&Bound<'py, PyAny>>,
    responses: Option<&Bound<'py, Responses>>,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let bank = &*bank.get().inner;
    let thetas: Vec<f64> = thetas.as_array().iter().copied().collect();
    if let Some(t) = thetas.iter().find(|t| !t.is_finite()) {
        return Err(errors::data_msg(format!(
            "true abilities must be finite (got {t})"
        )));
    }
    let config = json::json_arg(config)?;
    let config = parse_config(config.as_deref(), simulation::default_config())?;
    let engine = session::CatEngine::new(bank, config.clone()).map_err(errors::config)?;
    let predrawn = match responses {
        Some(r) => Some(
            simulation::predrawn(&r.get().inner, bank, thetas.len(), "<responses>").map_err(errors::data)?,
        ),
        None => None,
    };
    let cuts = config.stopping.classification.as_ref().map(|c| c.cuts.as_slice());
    let (tests, summary) = run::detached(py, threads, || {
        let tests = match &predrawn {
            Some(m) => engine_simulate::simulate(&engine, &thetas, seed, m),
            None => engine_simulate::simulate(&engine, &thetas, seed, &DrawAll),
        }?;
        let summary = engine_simulate::summarise(&engine, &tests, cuts);
        Ok((tests, summary))
    })?
    .map_err(errors::session)?;
    let out = PyDict::new(py);
    out.set_item(
        "examinee",
        PyArray1::from_vec(py, tests.iter().map(|t| t.examinee as i64).collect()),
    )?;
    out.set_item(
        "true_theta",
        PyArray1::from_vec(py, tests.iter().map(|t| t.true_theta).collect()),
    )?;
    out.set_item(
        "theta",
        PyArray1::from_vec(py, tests.iter().map(|t| t.result.theta).collect()),
    )?;
    out.set_item(
        "se",
        PyArray1::from_vec(
            py,
            tests
                .iter()
                .map(|t| {
                    if t.result.se.is_finite() {
                        t.result.se
                    } else {
                        f64::NAN
                    }
                })
                .collect(),
        ),
    )?;
    out.set_item(
        "length",
        PyArray1::from_vec(py, tests.iter().map(|t| t.result.length as i64).collect()),
    )?;
    let items: Vec<String> = tests.iter().map(|t| t.result.items.join(";")).collect();
    out.set_item("items", columns::strings(py, items.iter().map(String::as_str)))?;
    out.set_item("summary", json::ser_to_py(py, &summary)?)?;
    Ok(out)
}
