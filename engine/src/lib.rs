//! # etalon-engine
//!
//! The person side of Etalon: IRT probabilities and information ([`irt`]), quadrature grids
//! ([`quadrature`]), ability estimators — EAP, MAP, ML, WLE ([`estimate`]) — adaptive sessions
//! ([`config`], [`session`]: selection, exposure control, content balancing, stopping) and
//! simulation ([`simulate`]), levels and competence profiles ([`levels`], [`profile`]) and
//! assessment campaigns ([`campaign`]). Pure: no file or network I/O, so it
//! embeds in a server, Python or WebAssembly.

pub mod campaign;
pub mod config;
pub mod estimate;
pub mod irt;
pub mod levels;
pub mod profile;
pub mod quadrature;
pub mod session;
pub mod simulate;

pub use config::{ConfigError, Exposure, SelectionRule, SessionConfig};
pub use estimate::{Answer, Estimate, EstimateKind, EstimationError, Estimator, EstimatorConfig, Method};
pub use irt::{LogLikTerms, ResponseFunction};
pub use quadrature::{Grid, GridSpec, Prior, Rule};
pub use session::{CatEngine, Next, Session, SessionError, SessionResult, StopReason};
