//! # etalon-assessment
//!
//! Etalon's application layer: everything a front end calls, so that the command-line tool, the HTTP
//! service, LMS launches and the Python package stay thin and agree.
//!
//! - [`assessment`]: one person's assessment — start, current question (an [`ItemView`] without key
//!   or parameters), answer (a chosen option scored by the library), result, feedback, save, resume.
//! - [`campaign`]: campaigns (a bank, targets, settings; valid by construction), simulated
//!   participants, reports; [`results`]: the append-only results log; [`chart`]: SVG charts;
//!   [`certainty`]: level probabilities in words.
//! - [`scoring`]: scoring of response data to CSV; [`simulation`]: abilities and pre-drawn answers
//!   in, simulated tests out.
//! - [`presets`]: ready-made settings; [`files`]: safe writes and located reads for front ends with a
//!   file system.
//! - [`tables`]: response data from in-memory tables (numpy arrays, DataFrames, typed arrays), equal to
//!   what reading the same table as CSV gives.
//!
//! Dependencies flow one way: `etalon-items` ← `etalon-engine`, `etalon-calibration` ← this crate ←
//! front ends.

pub mod assessment;
pub mod campaign;
pub mod certainty;
pub mod chart;
pub mod files;
pub mod plots;
pub mod presets;
pub mod results;
pub mod scoring;
pub mod simulation;
pub mod tables;
pub mod xapi;

pub use assessment::{
    AnswerFeedback, Assessment, AssessmentError, AssessmentResult, Assessor, Design, Feedback, ItemView,
    Response,
};
pub use campaign::{Campaign, CampaignError, CampaignSpec, ParticipantResult, Report, ReportError, Target};
pub use files::FileError;

/// `s` cut to at most `max` characters, with an ellipsis when cut (error messages never echo
/// megabytes of input).
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
