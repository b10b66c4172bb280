//! Python exceptions for Etalon's errors: every one a subclass of `etalon.EtalonError`, itself a
//! `ValueError`, carrying the library's message (which names the file, line, item and field where it
//! can). Missing files are `FileNotFoundError`.

use etalon_assessment::scoring::ScoringError;
use etalon_calibration::CalibrationError;
use etalon_engine::{ConfigError, EstimationError, SessionError};
use etalon_items::{BankError, DataError, LevelError};
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The exception classes.
pub mod exc {
    use pyo3::exceptions::PyValueError;

    pyo3::create_exception!(
        etalon,
        EtalonError,
        PyValueError,
        "Base class of Etalon's errors (a ValueError): bad input, named where it is."
    );
    pyo3::create_exception!(
        etalon,
        BankError,
        EtalonError,
        "An item bank that cannot be read or is invalid. `problems` lists every problem found, each a dict with `line`, `item`, `field` and `message`."
    );
    pyo3::create_exception!(
        etalon,
        DataError,
        EtalonError,
        "Response data that cannot be read or do not fit the bank (unknown items or codes, a cell that is not a code)."
    );
    pyo3::create_exception!(
        etalon,
        CalibrationError,
        EtalonError,
        "A calibration that cannot run (invalid settings, data that cannot be calibrated, anchors that disagree with the data)."
    );
    pyo3::create_exception!(
        etalon,
        ScoringError,
        EtalonError,
        "Scoring that cannot run (invalid estimator settings, nobody scorable)."
    );
    pyo3::create_exception!(
        etalon,
        ConfigError,
        EtalonError,
        "An invalid session configuration or level map (the message names the field)."
    );
    pyo3::create_exception!(
        etalon,
        SessionError,
        EtalonError,
        "A call an adaptive session cannot accept (an item not offered, a code the item does not have, a session of another bank); the session is left unchanged."
    );
}

/// Add the exception classes to the module under their Python names.
pub fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("EtalonError", py.get_type::<exc::EtalonError>())?;
    m.add("BankError", py.get_type::<exc::BankError>())?;
    m.add("DataError", py.get_type::<exc::DataError>())?;
    m.add("CalibrationError", py.get_type::<exc::CalibrationError>())?;
    m.add("ScoringError", py.get_type::<exc::ScoringError>())?;
    m.add("ConfigError", py.get_type::<exc::ConfigError>())?;
    m.add("SessionError", py.get_type::<exc::SessionError>())?;
    Ok(())
}

/// A bank error; `problems` attached as a list of dicts.
pub fn bank(e: BankError) -> PyErr {
    if let BankError::NotFound { .. } = e {
        return PyFileNotFoundError::new_err(e.to_string());
    }
    let err = exc::BankError::new_err(e.to_string());
    Python::attach(|py| {
        let problems = PyList::empty(py);
        for p in e.problems() {
            let d = PyDict::new(py);
            let _ = d.set_item("line", p.line);
            let _ = d.set_item("item", p.item.as_deref());
            let _ = d.set_item("field", p.field.as_deref());
            let _ = d.set_item("message", &p.message);
            let _ = problems.append(d);
        }
        let _ = err.value(py).setattr("problems", problems);
    });
    err
}

/// A data error.
pub fn data(e: DataError) -> PyErr {
    match e {
        DataError::NotFound { .. } => PyFileNotFoundError::new_err(e.to_string()),
        _ => exc::DataError::new_err(e.to_string()),
    }
}

/// A calibration error (data that cannot be calibrated are a `DataError`).
pub fn calibration(e: CalibrationError) -> PyErr {
    match e {
        CalibrationError::Data(_) => exc::DataError::new_err(e.to_string()),
        _ => exc::CalibrationError::new_err(e.to_string()),
    }
}

/// A scoring error.
pub fn scoring(e: ScoringError) -> PyErr {
    match e {
        ScoringError::Data(d) => data(d),
        _ => exc::ScoringError::new_err(e.to_string()),
    }
}

/// Invalid estimator settings.
pub fn estimation(e: EstimationError) -> PyErr {
    exc::ScoringError::new_err(format!("estimator: {e}"))
}

/// A session configuration that does not fit the bank.
pub fn config(e: ConfigError) -> PyErr {
    exc::ConfigError::new_err(e.to_string())
}

/// A message about a configuration.
pub fn config_msg(message: impl Into<String>) -> PyErr {
    exc::ConfigError::new_err(message.into())
}

/// An invalid level map.
pub fn levels(e: LevelError) -> PyErr {
    exc::ConfigError::new_err(format!("level map: {e}"))
}

/// A refused session call.
pub fn session(e: SessionError) -> PyErr {
    exc::SessionError::new_err(e.to_string())
}

/// A message about a session.
pub fn session_msg(message: impl Into<String>) -> PyErr {
    exc::SessionError::new_err(message.into())
}

/// A message about calibration settings.
pub fn calibration_msg(message: impl Into<String>) -> PyErr {
    exc::CalibrationError::new_err(message.into())
}

/// A message about data.
pub fn data_msg(message: impl Into<String>) -> PyErr {
    exc::DataError::new_err(message.into())
}
