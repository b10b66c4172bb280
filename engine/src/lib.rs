//! # etalon-engine
//!
//! The person side of Etalon: IRT probabilities and information ([`irt`]), quadrature grids
//! ([`quadrature`]), ability estimators — EAP, MAP, ML, WLE ([`estimate`]) — adaptive sessions
//! ([`config`], [`session`]: selection, exposure control, content balancing, stopping) and
//! simulation ([`simulate`]) and competence profiles ([`profile`]). The IRT kernel, quadrature and
//! level maps live in `etalon-items` (shared with calibration) and are re-exported here. Pure: no file or network I/O, so it
//! embeds in a server, Python or WebAssembly.

pub mod config;
pub mod estimate;
pub mod multidim;
pub mod profile;
#[cfg(not(feature = "parallel"))]
mod serial;
pub mod session;
pub mod simulate;

pub use config::{ConfigError, Exposure, SelectionRule, SessionConfig};
pub use estimate::{Answer, Estimate, EstimateKind, EstimationError, Estimator, EstimatorConfig, Method};
pub use etalon_items::irt::{self, LogLikTerms, ResponseFunction};
pub use etalon_items::levels;
pub use etalon_items::quadrature::{self, Grid, GridSpec, Prior, Rule};
pub use session::{CatEngine, Next, Session, SessionError, SessionResult, StopReason};
