//! # etalon
//!
//! Adaptive competency assessment: item banks, the IRT kernel and level maps ([`items`]), the person
//! side — ability estimation, adaptive sessions, profiles, simulation ([`engine`]) — the item side,
//! calibration by marginal maximum likelihood ([`calibration`]), and the application layer every
//! front end calls — assessments, campaigns, reports, scoring of files ([`assessment`]). This crate
//! re-exports the four and builds the `etalon` command-line tool.

pub use etalon_assessment as assessment;
pub use etalon_calibration as calibration;
pub use etalon_engine as engine;
pub use etalon_items as items;
