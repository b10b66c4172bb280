//! # etalon
//!
//! Adaptive competency assessment: item banks ([`items`]), the person side — IRT probabilities,
//! ability estimation, adaptive sessions, simulation ([`engine`]) — and the item side, calibration
//! by marginal maximum likelihood ([`calibration`]). This crate re-exports the three and builds the
//! `etalon` command-line tool.

pub use etalon_calibration as calibration;
pub use etalon_engine as engine;
pub use etalon_items as items;
