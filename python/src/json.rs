//! JSON values as Python objects (results and summaries come back as dicts and lists), and Python
//! values given as JSON text.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

/// `value` as Python: `None`, `bool`, `int`, `float`, `str`, `list`, `dict`.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(a) => {
            let list = PyList::empty(py);
            for v in a {
                list.append(to_py(py, v)?)?;
            }
            list.into_any()
        }
        Value::Object(o) => {
            let dict = PyDict::new(py);
            for (k, v) in o {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any serialisable value as Python.
pub fn ser_to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(format!("serialising a result: {e}")))?;
    to_py(py, &v)
}

/// A JSON argument given as a dict (or any JSON-serialisable value), as JSON text (a string starting
/// with `{`), or as the path of a JSON file (a string or `os.PathLike`); `None` stays `None`.
pub fn json_arg(arg: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(obj) = arg else {
        return Ok(None);
    };
    if obj.is_none() {
        return Ok(None);
    }
    let py = obj.py();
    if let Ok(text) = obj.extract::<String>() {
        if text.trim_start().starts_with('{') {
            return Ok(Some(text));
        }
        return read_file(&text).map(Some);
    }
    let os = py.import("os")?;
    if obj.is_instance(&os.getattr("PathLike")?)? {
        let path: String = os.call_method1("fspath", (obj,))?.extract()?;
        return read_file(&path).map(Some);
    }
    py.import("json")?
        .call_method1("dumps", (obj,))?
        .extract()
        .map(Some)
}

fn read_file(path: &str) -> PyResult<String> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            pyo3::exceptions::PyFileNotFoundError::new_err(format!("{path}: no such file"))
        } else {
            pyo3::exceptions::PyOSError::new_err(format!("{path}: {e}"))
        }
    })
}
