//! # etalon-items
//!
//! The item side of Etalon's data: item response models with validated parameters, items and their
//! metadata, competence frameworks, item banks, and response data — with CSV and JSON I/O whose
//! errors name the file, line, item and field. No randomness, no threads, no estimation: those live
//! in `etalon-engine` and `etalon-calibration`.
//!
//! ```
//! use etalon_items::{Bank, Item, ItemModel, Framework, Provenance};
//! let items = vec![Item::new("q1", ItemModel::two_pl(1.2, -0.5).unwrap())];
//! let bank = Bank::new("demo", Framework::default(), items, Provenance::default()).unwrap();
//! assert_eq!(bank.item("q1").unwrap().parameters.slope(), 1.2);
//! ```

pub mod bank;
pub mod bank_io;
pub mod data;
pub mod error;
pub mod example;
pub mod framework;
pub mod irt;
pub mod item;
pub mod levels;
pub mod model;
pub mod quadrature;
pub mod structure;

pub use bank::{Bank, BankSummary, Latent as BankLatent, Provenance};
pub use bank_io::{BankFormat, bank_format, import_mirt_from, read_bank_from, write_bank_to};
#[cfg(feature = "fs")]
pub use bank_io::{import_mirt, read_bank, write_bank};
#[cfg(feature = "fs")]
pub use data::read_responses;
pub use data::{
    Alignment, DataFormat, MISSING, ResponseMatrix, Responses, SparseResponses, maybe_gunzip,
    read_responses_from,
};
pub use error::{BankError, DataError, Problem, Problems};
pub use framework::{Competence, Domain, Framework};
pub use irt::{LogLikTerms, ResponseFunction};
pub use item::{Content, Item, Status, Tutorial};
pub use levels::{LevelError, LevelMap, Levels};
pub use model::{ItemModel, Logistic, ModelError, ModelKind, PartsError, Polytomous};
pub use quadrature::{Grid, GridSpec, Prior, Rule};
pub use structure::{Spd, Structure};
