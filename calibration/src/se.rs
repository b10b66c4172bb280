//! Standard errors of item parameters (placeholder replaced below).
use crate::data::CalibData;
use crate::em::Model;
use std::collections::BTreeMap;

/// Standard errors per item, by parameter name.
pub fn standard_errors(_data: &CalibData, model: &Model) -> Vec<BTreeMap<String, f64>> {
    vec![BTreeMap::new(); model.items.len()]
}
