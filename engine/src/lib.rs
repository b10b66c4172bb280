//! # etalon-engine
//!
//! The person side of Etalon: IRT probabilities and information ([`irt`]), quadrature grids
//! ([`quadrature`]), ability estimators — EAP, MAP, ML, WLE ([`estimate`]) — adaptive sessions,
//! exposure control, content balancing, levels and simulation. Pure: no file or network I/O, so it
//! embeds in a server, Python or WebAssembly.

pub mod estimate;
pub mod irt;
pub mod quadrature;

pub use estimate::{Answer, Estimate, EstimateKind, EstimationError, Estimator, EstimatorConfig, Method};
pub use irt::{LogLikTerms, ResponseFunction};
pub use quadrature::{Grid, GridSpec, Prior, Rule};
