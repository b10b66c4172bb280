//! # etalon (Python)
//!
//! The native module `etalon._etalon`: a thin PyO3 layer over Etalon's crates — banks
//! (`etalon-items`), calibration (`etalon-calibration`), scoring and simulation (`etalon-assessment`),
//! adaptive sessions (`etalon-engine`). It holds no psychometrics of its own: every number comes from
//! the same library calls the `etalon` command line makes, with the same defaults, so the package
//! reproduces the command line's numbers exactly. The pythonic surface (DataFrames, keyword
//! arguments, result objects) is in `etalon/__init__.py`.
//!
//! Long calls (calibration, scoring, simulation) run without the GIL; calibration is watched from the
//! calling thread, which polls for Ctrl-C (KeyboardInterrupt stops the EM loop through its observer)
//! and forwards progress to an optional Python callback.

mod bank;
mod calibrate;
mod cat;
mod columns;
mod data;
mod errors;
mod json;
mod run;
mod score;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _etalon(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Start rayon's worker threads now, at import, rather than inside the first timed call (as numpy
    // starts its BLAS threads at import): every thread runs once, its stack touched.
    py.detach(|| rayon::broadcast(|_| ()));
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(py, m)?;
    m.add_class::<bank::Bank>()?;
    m.add_class::<data::Responses>()?;
    m.add_class::<cat::CatEngine>()?;
    m.add_class::<cat::Session>()?;
    m.add_function(wrap_pyfunction!(data::responses_wide, m)?)?;
    m.add_function(wrap_pyfunction!(data::responses_long, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate::calibrate, m)?)?;
    m.add_function(wrap_pyfunction!(calibrate::read_dimensions, m)?)?;
    m.add_function(wrap_pyfunction!(score::score, m)?)?;
    m.add_function(wrap_pyfunction!(cat::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(cat::draw_thetas, m)?)?;
    Ok(())
}
