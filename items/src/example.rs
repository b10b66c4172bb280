//! The embedded example bank: a digital-competence framework in the spirit of PIX with
//! illustrative (not calibrated) 2PL parameters. It is the default bank of the `etalon` commands.

use crate::bank::Bank;

/// The example bank as JSON text.
pub const EXAMPLE_BANK_JSON: &str = include_str!("../data/example_bank.json");

/// The example bank, parsed and validated.
pub fn example_bank() -> Bank {
    Bank::from_json(EXAMPLE_BANK_JSON, "<embedded example bank>")
        .unwrap_or_else(|e| unreachable!("the embedded example bank is valid (tested): {e}"))
}
