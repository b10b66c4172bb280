//! Item fit (placeholder replaced below).
use crate::data::CalibData;
use crate::em::Model;
use serde::Serialize;

/// S-X² of one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemFit {
    /// Item id.
    pub item: String,
}

/// S-X² for every item.
pub fn s_x2(_data: &CalibData, _model: &Model) -> Vec<ItemFit> {
    Vec::new()
}
