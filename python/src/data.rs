//! `etalon.Responses`: response data as Etalon holds them (one byte per cell, or compressed rows for
//! long logs), read from files or built from arrays exactly as the command line reads the same table.

use crate::errors;
use etalon_assessment::tables::{self, Cell};
use etalon_items::{DataFormat, Responses as Data};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use std::sync::Arc;

/// Response data: persons × items, each item's distinct codes in increasing order as its categories,
/// missing cells missing. Build one with `etalon.responses(...)` (numpy arrays, DataFrames) or
/// `Responses.read(path)` (wide or long CSV, optionally gzip-compressed).
#[pyclass(frozen, module = "etalon", name = "Responses")]
pub struct Responses {
    pub inner: Arc<Data>,
}

#[pymethods]
impl Responses {
    /// Read a response file: `format="wide"` (header of item ids, optional first column `person`,
    /// empty or `NA` missing) or `"long"` (`person,item,response`), optionally `.gz`.
    #[staticmethod]
    #[pyo3(signature = (path, format = "wide"))]
    fn read(py: Python<'_>, path: std::path::PathBuf, format: &str) -> PyResult<Self> {
        let format = parse_format(format)?;
        py.detach(|| etalon_items::read_responses(&path, format))
            .map(|d| Responses { inner: Arc::new(d) })
            .map_err(errors::data)
    }

    /// Number of persons.
    #[getter]
    fn n_persons(&self) -> usize {
        self.inner.n_persons()
    }

    /// Item ids, in data order.
    #[getter]
    fn item_ids(&self) -> Vec<String> {
        self.inner.item_ids().to_vec()
    }

    /// Person labels (ids, else 1-based row numbers), in data order.
    #[getter]
    fn persons(&self) -> Vec<String> {
        (0..self.inner.n_persons())
            .map(|p| self.inner.person_label(p))
            .collect()
    }

    /// The original codes of each item's categories 0 … K-1.
    #[getter]
    fn codes(&self) -> Vec<Vec<i64>> {
        (0..self.inner.item_ids().len())
            .map(|j| self.inner.codes(j).to_vec())
            .collect()
    }

    /// `"wide"` (one byte per cell) or `"long"` (compressed rows).
    #[getter]
    fn layout(&self) -> &'static str {
        match &*self.inner {
            Data::Dense(_) => "wide",
            Data::Sparse(_) => "long",
        }
    }

    fn __len__(&self) -> usize {
        self.inner.n_persons()
    }

    fn __repr__(&self) -> String {
        format!(
            "<etalon.Responses: {} persons × {} items, {}>",
            self.inner.n_persons(),
            self.inner.item_ids().len(),
            self.layout()
        )
    }
}

/// `wide` or `long`.
pub fn parse_format(format: &str) -> PyResult<DataFormat> {
    match format.to_ascii_lowercase().as_str() {
        "wide" => Ok(DataFormat::Wide),
        "long" => Ok(DataFormat::Long),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "format must be \"wide\" or \"long\" (got {:?})",
            etalon_assessment::cut(other, 40)
        ))),
    }
}

fn wide_from<T: Cell + numpy::Element>(
    py: Python<'_>,
    cells: &PyReadonlyArray2<'_, T>,
    item_ids: Vec<String>,
    person_ids: Option<Vec<String>>,
    source: &str,
) -> PyResult<Data> {
    let view = cells.as_array();
    let (n_persons, n_columns) = view.dim();
    let owned;
    let slice = match view.as_slice() {
        Some(s) => s,
        None => {
            owned = view.as_standard_layout().into_owned();
            owned
                .as_slice()
                .ok_or_else(|| errors::data_msg("the array could not be laid out in rows"))?
        }
    };
    if n_columns != item_ids.len() {
        return Err(errors::data_msg(format!(
            "{source}: {} columns but {} item ids",
            n_columns,
            item_ids.len()
        )));
    }
    py.detach(|| tables::wide_responses(item_ids, person_ids, n_persons, slice, source))
        .map_err(errors::data)
}

/// Response data from a 2-D array (persons × items): float arrays with NaN as missing, integer or
/// boolean arrays. `item_ids` name the columns; `person_ids` the rows (else 1-based row numbers).
#[pyfunction]
#[pyo3(signature = (cells, item_ids, person_ids = None, source = "<array>"))]
pub fn responses_wide(
    py: Python<'_>,
    cells: &Bound<'_, PyAny>,
    item_ids: Vec<String>,
    person_ids: Option<Vec<String>>,
    source: &str,
) -> PyResult<Responses> {
    macro_rules! try_type {
        ($($t:ty),*) => {$(
            if let Ok(a) = cells.extract::<PyReadonlyArray2<'_, $t>>() {
                let data = wide_from(py, &a, item_ids, person_ids, source)?;
                return Ok(Responses { inner: Arc::new(data) });
            }
        )*};
    }
    try_type!(f64, f32, i64, i32, i16, i8, u8, u16, u32, u64, bool);
    Err(errors::data_msg(format!(
        "{source}: response data must be a 2-D numeric array (float with NaN as missing, integer or bool)"
    )))
}

/// Response data from the three columns of a long table (one answer per row; NaN responses skipped).
#[pyfunction]
#[pyo3(signature = (persons, items, responses, source = "<long table>"))]
pub fn responses_long(
    py: Python<'_>,
    persons: Vec<String>,
    items: Vec<String>,
    responses: &Bound<'_, PyAny>,
    source: &str,
) -> PyResult<Responses> {
    macro_rules! try_type {
        ($($t:ty),*) => {$(
            if let Ok(a) = responses.extract::<PyReadonlyArray1<'_, $t>>() {
                let view = a.as_array();
                let cells: Vec<$t> = view.iter().copied().collect();
                let data = py
                    .detach(|| tables::long_responses(&persons, &items, &cells, source))
                    .map_err(errors::data)?;
                return Ok(Responses { inner: Arc::new(data) });
            }
        )*};
    }
    try_type!(f64, f32, i64, i32, i16, i8, u8, u16, u32, u64, bool);
    Err(errors::data_msg(format!(
        "{source}: the response column must be a 1-D numeric array"
    )))
}
