//! Result columns for pandas: numbers go out as numpy arrays built from Rust vectors
//! (`PyArray1::from_vec`, no copy); strings as numpy object arrays, which pandas takes without first
//! copying a list into an array.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

/// Python objects as a numpy object array — or, when there are none, an empty list, which pandas
/// gives the type it always gave these columns (an empty object array would be typed otherwise).
pub fn objects(py: Python<'_>, objects: Vec<Py<PyAny>>) -> Bound<'_, PyAny> {
    if objects.is_empty() {
        PyList::empty(py).into_any()
    } else {
        PyArray1::from_vec(py, objects).into_any()
    }
}

/// Strings as a column of `str` ([`objects`]).
pub fn strings<'py, 'a>(py: Python<'py>, strings: impl IntoIterator<Item = &'a str>) -> Bound<'py, PyAny> {
    let column = strings
        .into_iter()
        .map(|s| PyString::new(py, s).into_any().unbind())
        .collect();
    objects(py, column)
}
