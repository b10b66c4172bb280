//! The item bank: a framework, items and the provenance of their parameters.
//!
//! A [`Bank`] is valid by construction: [`Bank::new`] (and therefore every reader) checks every item
//! and the bank as a whole and reports *all* problems at once.

use crate::error::{BankError, Problem, Problems};
use crate::framework::Framework;
use crate::item::{Item, Status};
use crate::model::ModelKind;
use crate::structure::Structure;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// How and when the item parameters were obtained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `illustrative`, `calibrated`, `imported`, `manual`, …
    #[serde(default)]
    pub method: String,
    /// Free description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When (ISO 8601 date or time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Software and version that produced the parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// Data the parameters were estimated from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Calibration details (settings, fit), as written by the calibrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<serde_json::Value>,
}

/// The latent (ability) distribution N(mean, variance) the item parameters are scaled to.
///
/// A bank without one is on the standard N(0, 1) scale. Calibrations that estimate the latent
/// moments (Rasch, anchored calibrations) record them here, because scoring needs them as the prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latent {
    /// Mean of the latent distribution.
    pub mean: f64,
    /// Variance of the latent distribution (> 0).
    pub variance: f64,
}

impl Latent {
    /// The standard normal N(0, 1): the scale of a bank that records no latent distribution.
    pub const STANDARD: Latent = Latent {
        mean: 0.0,
        variance: 1.0,
    };

    /// Whether this is exactly N(0, 1).
    pub fn is_standard(&self) -> bool {
        *self == Latent::STANDARD
    }

    /// Standard deviation (the square root of the variance).
    pub fn sd(&self) -> f64 {
        self.variance.sqrt()
    }

    /// Why the mean is invalid (it must be finite), if it is.
    pub(crate) fn mean_problem(&self) -> Option<String> {
        (!self.mean.is_finite()).then(|| format!("latent mean must be finite (got {})", self.mean))
    }

    /// Why the variance is invalid (it must be finite and > 0), if it is.
    pub(crate) fn variance_problem(&self) -> Option<String> {
        (!(self.variance.is_finite() && self.variance > 0.0))
            .then(|| format!("latent variance must be finite and > 0 (got {})", self.variance))
    }

    /// What is wrong with these moments (the mean must be finite, the variance finite and > 0),
    /// each problem in field `latent`.
    pub fn problems(&self) -> Vec<Problem> {
        [self.mean_problem(), self.variance_problem()]
            .into_iter()
            .flatten()
            .map(|m| Problem::new(m).in_field("latent"))
            .collect()
    }
}

/// A problem with the index of the item it concerns, if any.
pub(crate) type LocatedProblem = (Option<usize>, Problem);

/// Everything a bank file holds, before validation.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BankRepr<I> {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Framework::is_empty")]
    framework: Framework,
    #[serde(default)]
    provenance: Provenance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latent: Option<LatentRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    levels: Option<serde_json::Value>,
    items: Vec<I>,
}

/// The `latent` object of a bank file: `{"mean", "variance"}` (one dimension) or `{"dimensions",
/// "correlations"}` (a multidimensional bank, [`Structure`]).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatentRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dimensions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlations: Option<Vec<Vec<f64>>>,
}

impl LatentRepr {
    fn of(latent: Option<Latent>, structure: Option<&Structure>) -> Option<LatentRepr> {
        if latent.is_none() && structure.is_none() {
            return None;
        }
        Some(LatentRepr {
            mean: latent.map(|l| l.mean),
            variance: latent.map(|l| l.variance),
            dimensions: structure.map(|s| s.dimensions.clone()),
            correlations: structure.map(|s| s.correlations.clone()),
        })
    }

    /// The unidimensional moments and the structure, or what is wrong (field `latent`).
    fn split(self) -> (Option<Latent>, Option<Structure>, Vec<Problem>) {
        let mut problems = Vec::new();
        let latent = match (self.mean, self.variance) {
            (Some(mean), Some(variance)) => Some(Latent { mean, variance }),
            (None, None) => None,
            _ => {
                problems.push(
                    Problem::new("latent needs both `mean` and `variance` (or neither)").in_field("latent"),
                );
                None
            }
        };
        if self.mean.is_none()
            && self.variance.is_none()
            && self.dimensions.is_none()
            && self.correlations.is_none()
        {
            problems.push(
                Problem::new(
                    "latent is empty: give `mean` and `variance`, or `dimensions` and `correlations`",
                )
                .in_field("latent"),
            );
        }
        let structure = match (self.dimensions, self.correlations) {
            (Some(dimensions), Some(correlations)) => Some(Structure {
                dimensions,
                correlations,
            }),
            (None, None) => None,
            _ => {
                problems.push(
                    Problem::new("latent needs both `dimensions` and `correlations` (or neither)")
                        .in_field("latent"),
                );
                None
            }
        };
        (latent, structure, problems)
    }
}

/// A validated item bank.
#[derive(Debug, Clone, PartialEq)]
pub struct Bank {
    id: String,
    version: String,
    name: Option<String>,
    framework: Framework,
    provenance: Provenance,
    latent: Option<Latent>,
    structure: Option<Structure>,
    levels: Option<crate::levels::Levels>,
    items: Vec<Item>,
    index: HashMap<String, usize>,
}

/// Counts of a bank's items, as `etalon bank validate` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BankSummary {
    /// Bank id.
    pub id: String,
    /// Bank fingerprint (see [`Bank::fingerprint`]).
    pub fingerprint: String,
    /// Number of items.
    pub items: usize,
    /// Items per model name.
    pub models: BTreeMap<String, usize>,
    /// Items per competence (`(none)` for items without one).
    pub competences: BTreeMap<String, usize>,
    /// Items per status.
    pub statuses: BTreeMap<String, usize>,
    /// The latent distribution the parameters are scaled to, when the bank records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent: Option<Latent>,
    /// The latent structure of a multidimensional bank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structure: Option<Structure>,
    /// What is valid but deserves a look (items that discriminate negatively).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Bank {
    /// Validate and build a bank. All problems are collected; `Err` lists every one of them.
    pub fn new(
        id: impl Into<String>,
        framework: Framework,
        items: Vec<Item>,
        provenance: Provenance,
    ) -> Result<Bank, Vec<Problem>> {
        let (problems, index) = Self::check(&framework, &items);
        if !problems.is_empty() {
            return Err(problems.into_iter().map(|(_, p)| p).collect());
        }
        Ok(Bank {
            id: id.into(),
            version: String::new(),
            name: None,
            framework,
            provenance,
            latent: None,
            structure: None,
            levels: None,
            items,
            index,
        })
    }

    /// Check items and framework; each problem comes with the index of the item it concerns.
    pub(crate) fn check(
        framework: &Framework,
        items: &[Item],
    ) -> (Vec<LocatedProblem>, HashMap<String, usize>) {
        let mut problems: Vec<LocatedProblem> = framework.problems().into_iter().map(|p| (None, p)).collect();
        let mut index = HashMap::with_capacity(items.len());
        let mut shared_1pl: Option<(f64, String)> = None;
        for (i, item) in items.iter().enumerate() {
            if item.id.trim().is_empty() {
                problems.push((Some(i), Problem::new("empty item id").in_field("id")));
            } else if item.id != item.id.trim() {
                problems.push((
                    Some(i),
                    Problem::new("item id has leading or trailing spaces")
                        .for_item(&item.id)
                        .in_field("id"),
                ));
            } else if let Some(&first) = index.get(&item.id) {
                problems.push((
                    Some(i),
                    Problem::new(format!("duplicate item id (first used by item #{})", first + 1))
                        .for_item(&item.id)
                        .in_field("id"),
                ));
            } else {
                index.insert(item.id.clone(), i);
            }
            problems.extend(item.problems().into_iter().map(|p| (Some(i), p)));
            if let Some(c) = &item.competence
                && !framework.is_empty()
                && framework.competence(c).is_none()
            {
                problems.push((
                    Some(i),
                    Problem::new(format!("competence `{c}` is not in the bank's framework"))
                        .for_item(&item.id)
                        .in_field("competence"),
                ));
            }
            if item.parameters.kind() == ModelKind::OnePl {
                let a = item.parameters.slope();
                match &shared_1pl {
                    None => shared_1pl = Some((a, item.id.clone())),
                    Some((a0, first)) if *a0 != a => problems.push((
                        Some(i),
                        Problem::new(format!(
                            "1pl items share one slope: a = {a} differs from a = {a0} of item `{first}`"
                        ))
                        .for_item(&item.id)
                        .in_field("a"),
                    )),
                    Some(_) => {}
                }
            }
        }
        (problems, index)
    }

    /// Builder: set the version string.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Builder: set the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Builder: attach a level map (free JSON, validated by the engine's level module).
    pub fn with_levels(mut self, levels: Option<crate::levels::Levels>) -> Self {
        self.levels = levels;
        self
    }

    /// Builder: record the latent distribution N(mean, variance) the parameters are scaled to
    /// (`None`: the standard N(0, 1) scale). A mean that is not finite or a variance that is not
    /// finite and > 0 is refused with its problems (field `latent`); the bank is then dropped.
    pub fn with_latent(mut self, latent: Option<Latent>) -> Result<Self, Vec<Problem>> {
        let mut problems = latent.map(|l| l.problems()).unwrap_or_default();
        if let Some(s) = &self.structure {
            problems.extend(Self::structure_problems(s, latent, &self.items));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.latent = latent;
        Ok(self)
    }

    /// Builder: make the bank multidimensional with `structure` (`None`: unidimensional). Refused with
    /// every problem when the structure is invalid, an item's competence is not one of its dimensions,
    /// or the bank also records unidimensional latent moments.
    pub fn with_structure(mut self, structure: Option<Structure>) -> Result<Self, Vec<Problem>> {
        let problems = structure
            .as_ref()
            .map(|s| Self::structure_problems(s, self.latent, &self.items))
            .unwrap_or_default();
        if !problems.is_empty() {
            return Err(problems);
        }
        self.structure = structure;
        Ok(self)
    }

    fn structure_problems(s: &Structure, latent: Option<Latent>, items: &[Item]) -> Vec<Problem> {
        let mut problems = s.problems();
        if latent.is_some_and(|l| !l.is_standard()) {
            problems.push(
                Problem::new(
                    "a multidimensional bank's dimensions have means 0 and variances 1: `mean` and \
                     `variance` cannot be set with `dimensions`",
                )
                .in_field("latent"),
            );
        }
        for item in items {
            match item.competence.as_deref() {
                Some(c) if s.dimension(c).is_some() => {}
                Some(c) => problems.push(
                    Problem::new(format!("competence `{c}` is not one of the latent dimensions"))
                        .for_item(&item.id)
                        .in_field("competence"),
                ),
                None => problems.push(
                    Problem::new("a multidimensional bank's items each measure one dimension: no competence")
                        .for_item(&item.id)
                        .in_field("competence"),
                ),
            }
        }
        problems
    }

    /// The bank of the items that measure `competences` only, with the latent structure's marginal
    /// over them ([`Structure::marginal`]): what an assessment of some of a multidimensional bank's
    /// competences runs on. Same id, version, name, framework, levels and provenance; its own
    /// fingerprint. Refused (field `competences`) when a competence is not a dimension of the
    /// structure (or, without one, is measured by no item), or is given twice.
    pub fn restricted(&self, competences: &[String]) -> Result<Bank, Vec<Problem>> {
        let refuse = |m: String| vec![Problem::new(m).in_field("competences")];
        let structure = match &self.structure {
            Some(s) => Some(s.marginal(competences).ok_or_else(|| {
                refuse(format!(
                    "competences {competences:?} are not distinct dimensions of the bank's structure {:?}",
                    s.dimensions
                ))
            })?),
            None => None,
        };
        let keep = |i: &&Item| {
            i.competence
                .as_deref()
                .is_some_and(|c| competences.iter().any(|x| x == c))
        };
        let items: Vec<Item> = self.items.iter().filter(keep).cloned().collect();
        if let Some(c) = competences
            .iter()
            .find(|c| !items.iter().any(|i| i.competence.as_deref() == Some(c.as_str())))
        {
            return Err(refuse(format!(
                "no item of bank `{}` measures competence `{c}`",
                self.id
            )));
        }
        let mut bank = Bank::new(
            self.id.clone(),
            self.framework.clone(),
            items,
            self.provenance.clone(),
        )?
        .with_latent(self.latent)?
        .with_structure(structure)?
        .with_levels(self.levels.clone())
        .with_version(self.version.clone());
        bank.name = self.name.clone();
        Ok(bank)
    }

    /// The latent structure of a multidimensional bank (`None`: unidimensional).
    pub fn structure(&self) -> Option<&Structure> {
        self.structure.as_ref()
    }

    /// Bank identifier.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Bank version.
    pub fn version(&self) -> &str {
        &self.version
    }
    /// Display name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The competence framework.
    pub fn framework(&self) -> &Framework {
        &self.framework
    }
    /// Provenance of the parameters.
    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }
    /// Replace the provenance.
    pub fn set_provenance(&mut self, provenance: Provenance) {
        self.provenance = provenance;
    }
    /// The latent distribution the parameters are scaled to, if the bank records one
    /// (`None`: the standard N(0, 1)).
    pub fn latent(&self) -> Option<Latent> {
        self.latent
    }
    /// The level map stored in the bank, if any.
    pub fn levels(&self) -> Option<&crate::levels::Levels> {
        self.levels.as_ref()
    }
    /// Items in bank order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether the bank has no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// The position of item `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.position(id).map(|i| &self.items[i])
    }

    /// Apply `edit` to a copy of the items and keep the result only if the bank stays valid:
    /// on error the bank is unchanged.
    pub fn update_items(&mut self, edit: impl FnOnce(&mut Vec<Item>)) -> Result<(), Vec<Problem>> {
        let mut items = self.items.clone();
        edit(&mut items);
        let (problems, index) = Self::check(&self.framework, &items);
        let mut problems: Vec<Problem> = problems.into_iter().map(|(_, p)| p).collect();
        if let Some(s) = &self.structure {
            problems.extend(Self::structure_problems(s, self.latent, &items));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        self.items = items;
        self.index = index;
        Ok(())
    }

    /// A 64-bit FNV-1a hash of the framework, the items' ids, models, parameters, competences and
    /// statuses, and the latent distribution, as 16 hex digits: sessions record it and refuse to run
    /// on another bank. A latent distribution that is absent or exactly N(0, 1) adds nothing, so banks
    /// without one keep the fingerprint they had before banks recorded it.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        eat(self.id.as_bytes());
        for c in self.framework.competences() {
            eat(c.id.as_bytes());
        }
        for item in &self.items {
            eat(item.id.as_bytes());
            eat(item.parameters.kind().name().as_bytes());
            for (_, v) in item.parameters.named_parameters() {
                eat(&v.to_bits().to_le_bytes());
            }
            eat(item.competence.as_deref().unwrap_or("").as_bytes());
            eat(item.status.name().as_bytes());
            for t in &item.tags {
                eat(t.as_bytes());
            }
            if let Some(e) = item.exposure {
                eat(&e.to_bits().to_le_bytes());
            }
        }
        if let Some(l) = self.latent.filter(|l| !l.is_standard()) {
            eat(b"latent");
            eat(&l.mean.to_bits().to_le_bytes());
            eat(&l.variance.to_bits().to_le_bytes());
        }
        if let Some(s) = &self.structure {
            eat(b"structure");
            for d in &s.dimensions {
                eat(d.as_bytes());
            }
            for r in s.correlations.iter().flatten() {
                eat(&r.to_bits().to_le_bytes());
            }
        }
        format!("{h:016x}")
    }

    /// Items per model, competence and status.
    pub fn summary(&self) -> BankSummary {
        let mut models = BTreeMap::new();
        let mut competences = BTreeMap::new();
        let mut statuses = BTreeMap::new();
        for item in &self.items {
            *models
                .entry(item.parameters.kind().name().to_string())
                .or_insert(0) += 1;
            *competences
                .entry(item.competence.clone().unwrap_or_else(|| "(none)".into()))
                .or_insert(0) += 1;
            *statuses.entry(item.status.name().to_string()).or_insert(0) += 1;
        }
        for s in [Status::Active, Status::Pretest, Status::Retired] {
            statuses.entry(s.name().to_string()).or_insert(0);
        }
        BankSummary {
            id: self.id.clone(),
            fingerprint: self.fingerprint(),
            items: self.items.len(),
            models,
            competences,
            statuses,
            latent: self.latent,
            structure: self.structure.clone(),
            warnings: self.warnings(),
        }
    }

    /// Items that discriminate negatively (slope a < 0: the more able answer them worse, the sign of a
    /// miskey or a badly written item). Valid, and scored as the model says, but adaptive tests leave
    /// them out unless configured to (`selection.allow_negative_slopes`).
    pub fn negative_slopes(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.parameters.slope() < 0.0)
    }

    /// Sentences about what is valid but deserves a look.
    pub fn warnings(&self) -> Vec<String> {
        self.negative_slopes()
            .map(|i| {
                format!(
                    "item `{}` discriminates negatively (a = {:.3}): check its key; adaptive tests leave it out",
                    i.id,
                    i.parameters.slope()
                )
            })
            .collect()
    }

    /// The bank as pretty JSON.
    pub fn to_json(&self) -> String {
        let repr = BankRepr {
            id: self.id.clone(),
            version: self.version.clone(),
            name: self.name.clone(),
            framework: self.framework.clone(),
            provenance: self.provenance.clone(),
            latent: LatentRepr::of(self.latent, self.structure.as_ref()),
            levels: self.levels.as_ref().map(|l| {
                serde_json::to_value(l).unwrap_or_else(|e| unreachable!("level maps serialise: {e}"))
            }),
            items: self.items.clone(),
        };
        serde_json::to_string_pretty(&repr).unwrap_or_else(|e| unreachable!("a bank always serialises: {e}"))
    }

    /// Parse a bank from JSON text. Every item is checked, and every problem reported, in one pass.
    pub fn from_json(text: &str, path: impl Into<PathBuf>) -> Result<Bank, BankError> {
        let path = path.into();
        let repr: BankRepr<serde_json::Value> = serde_json::from_str(text).map_err(|e| BankError::Json {
            path: path.clone(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let mut problems = Vec::new();
        let mut items = Vec::with_capacity(repr.items.len());
        for (i, value) in repr.items.into_iter().enumerate() {
            let id = value.get("id").and_then(|v| v.as_str()).map(str::to_string);
            match serde_json::from_value::<Item>(value) {
                Ok(item) => items.push(item),
                Err(e) => {
                    let mut p = Problem::new(e.to_string()).in_field(format!("items[{i}]"));
                    p.item = id;
                    problems.push(p);
                }
            }
        }
        let (bank_problems, index) = Self::check(&repr.framework, &items);
        problems.extend(bank_problems.into_iter().map(|(_, p)| p));
        let (latent, structure, latent_problems) = repr.latent.map(LatentRepr::split).unwrap_or_default();
        problems.extend(latent_problems);
        if let Some(l) = &latent {
            problems.extend(l.problems());
        }
        if let Some(s) = &structure {
            problems.extend(Self::structure_problems(s, latent, &items));
        }
        let levels = match repr.levels.as_ref().map(crate::levels::Levels::from_json) {
            Some(Ok(l)) => Some(l),
            Some(Err(e)) => {
                problems.push(Problem::new(e.to_string()).in_field("levels"));
                None
            }
            None => None,
        };
        if !problems.is_empty() {
            return Err(BankError::Invalid {
                path,
                problems: Problems(problems),
            });
        }
        Ok(Bank {
            id: repr.id,
            version: repr.version,
            name: repr.name,
            framework: repr.framework,
            provenance: repr.provenance,
            latent,
            structure,
            levels,
            items,
            index,
        })
    }
}
