//! Items: a model with its parameters plus the metadata a test needs (competence, status, content,
//! tutorials, tags, original response codes, standard errors, exposure control parameter).

use crate::Problem;
use crate::model::ItemModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an item is used, tried out, or kept only for the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Operational: selected and scored.
    #[default]
    Active,
    /// Being tried out: may be seeded into tests, never scored.
    Pretest,
    /// Withdrawn: never selected.
    Retired,
}

impl Status {
    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Pretest => "pretest",
            Status::Retired => "retired",
        }
    }
    /// Parse a status name, case-insensitively.
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Some(Status::Active),
            "pretest" => Some(Status::Pretest),
            "retired" => Some(Status::Retired),
            _ => None,
        }
    }
}

/// A learning resource linked to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tutorial {
    /// Title shown to the learner.
    pub title: String,
    /// Where to find it.
    pub url: String,
}

/// Question content for standalone use (items delivered through an LMS carry none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// The question.
    pub prompt: String,
    /// Answer choices, in display order. For a polytomous item, one per category.
    #[serde(default)]
    pub choices: Vec<String>,
    /// 0-based index of the correct choice (dichotomous multiple-choice items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct: Option<usize>,
}

/// An item of a bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Identifier, unique in the bank.
    pub id: String,
    /// Response model and parameters.
    pub parameters: ItemModel,
    /// Competence measured (an id of the bank's framework).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub competence: Option<String>,
    /// Operational status.
    #[serde(default)]
    pub status: Status,
    /// Question content, for standalone delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Tutorials to recommend when the item is missed or just above the person's level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tutorials: Vec<Tutorial>,
    /// Free tags; a tag may name a skill (at most one item per skill in a test).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Original response codes, one per category, increasing (for instance Likert 1–4).
    /// Absent: the categories are coded 0 … K-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes: Option<Vec<i64>>,
    /// Standard errors of the parameters, by parameter name (`a`, `b`, `c`, `d`, `b1`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub standard_errors: BTreeMap<String, f64>,
    /// Sympson–Hetter exposure control parameter: P(administer | selected), in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<f64>,
}

impl Item {
    /// An active item with no metadata.
    pub fn new(id: impl Into<String>, parameters: ItemModel) -> Self {
        Item {
            id: id.into(),
            parameters,
            competence: None,
            status: Status::Active,
            content: None,
            tutorials: Vec::new(),
            tags: Vec::new(),
            codes: None,
            standard_errors: BTreeMap::new(),
            exposure: None,
        }
    }

    /// Set the competence (builder style).
    pub fn with_competence(mut self, competence: impl Into<String>) -> Self {
        self.competence = Some(competence.into());
        self
    }

    /// The response codes of the categories: the recorded codes, else 0 … K-1.
    pub fn response_codes(&self) -> Vec<i64> {
        match &self.codes {
            Some(c) => c.clone(),
            None => (0..self.parameters.categories() as i64).collect(),
        }
    }

    /// The original response code of category `category` (0 … K-1): `response_codes()[category]`
    /// without building the list.
    ///
    /// # Panics
    /// If the item has no such category.
    pub fn response_code(&self, category: usize) -> i64 {
        match &self.codes {
            Some(c) => c[category],
            None => {
                assert!(category < self.parameters.categories(), "no category {category}");
                category as i64
            }
        }
    }

    /// The category (0 … K-1) of an original response code, if the item has it.
    pub fn category_of(&self, code: i64) -> Option<usize> {
        match &self.codes {
            Some(c) => c.iter().position(|&x| x == code),
            None => (code >= 0 && (code as usize) < self.parameters.categories()).then_some(code as usize),
        }
    }

    /// Problems of this item on its own (the bank checks ids and competences across items).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let p = |m: String| Problem::new(m).for_item(self.id.clone());
        if let Some(codes) = &self.codes {
            let k = self.parameters.categories();
            if codes.len() != k {
                out.push(p(format!("{} response codes for {k} categories", codes.len())).in_field("codes"));
            }
            if codes.windows(2).any(|w| w[0] >= w[1]) {
                out.push(p("response codes must be strictly increasing".into()).in_field("codes"));
            }
        }
        if let Some(c) = &self.content
            && let Some(k) = c.correct
            && k >= c.choices.len()
        {
            let msg = format!("correct choice {k} but only {} choices", c.choices.len());
            out.push(p(msg).in_field("content.correct"));
        }
        for (i, t) in self.tutorials.iter().enumerate() {
            if t.url.trim().is_empty() || t.title.trim().is_empty() {
                out.push(p("a tutorial needs a title and a url".into()).in_field(format!("tutorials[{i}]")));
            }
        }
        if let Some(e) = self.exposure
            && !(e > 0.0 && e <= 1.0)
        {
            out.push(p(format!("exposure parameter must be in (0, 1] (got {e})")).in_field("exposure"));
        }
        let names: Vec<String> = self
            .parameters
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for (name, se) in &self.standard_errors {
            if !names.contains(name) {
                out.push(
                    p(format!(
                        "standard error for `{name}`, which is not a parameter of a {} item",
                        self.parameters.kind()
                    ))
                    .in_field(format!("se_{name}")),
                );
            } else if !(se.is_finite() && *se >= 0.0) {
                out.push(
                    p(format!("standard error must be finite and ≥ 0 (got {se})"))
                        .in_field(format!("se_{name}")),
                );
            }
        }
        out
    }
}
