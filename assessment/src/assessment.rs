//! Assessments of one person: the flow every front end runs — the terminal test, the web page, an LMS
//! launch, the HTTP API.
//!
//! An [`Assessor`] is built once from a bank and a [`Design`] — a single adaptive test over the bank
//! ([`SessionConfig`], the engine's `CatEngine`), a competence profile with one adaptive test per
//! competence ([`ProfileConfig`], the engine's `ProfileEngine`), the multidimensional profile of a bank
//! with a latent structure ([`MultiConfig`]), or one θ with every competence's level read from it
//! ([`Design::General`], PIX's reading) — and shared by every person. A person's
//! [`Assessment`] is a plain serialisable value: [`Assessor::start`] → [`Assessor::current`] (the item
//! to show, as an [`ItemView`]: question, choices, competence name; never the key nor the parameters) →
//! [`Assessor::answer`] (a chosen option, scored by the library, or a response code) → … →
//! [`Assessor::result`] (θ̂, SE, per-competence levels, tutorials of missed items, next steps).
//! [`Assessor::save`] / [`Assessor::resume`] carry it across processes with a schema version; a
//! rejected call leaves the assessment exactly as it was.

use etalon_engine::estimate::{Answer, EapTable};
use etalon_engine::multidim::{MultiConfig, MultiEngine, MultiError, MultiSession};
use etalon_engine::profile::{
    CompetenceResult, ProfileConfig, ProfileEngine, ProfileError, ProfileSession, competence_profile,
    general_profile,
};
use etalon_engine::session::{CatEngine, Next, Session, SessionError, StopReason};
use etalon_engine::{ConfigError, SessionConfig};
use etalon_items::levels::Levels;
use etalon_items::quadrature::Grid;
use etalon_items::{Bank, Item, Tutorial};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Format version of saved assessments (the engine's sessions inside carry their own).
pub const ASSESSMENT_SCHEMA: u32 = 1;

/// What an assessment runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Design {
    /// One adaptive test over the whole bank (one θ), with its content rules; the result adds a
    /// per-competence reading of the same answers.
    Adaptive(SessionConfig),
    /// A competence profile: one adaptive test per competence, routed between competences.
    Profile(ProfileConfig),
    /// A multidimensional profile over a bank with a latent structure: every answer informs every
    /// competence through their correlations, each question goes where the profile is least certain.
    Multidimensional(MultiConfig),
    /// One adaptive test over the bank (one θ), every competence's level read from that θ on its own
    /// level map — PIX certification's reading of 16 levels from one θ, for organisations that want to
    /// compare it with the profiles. `content.competences` (when set) lists the competences read.
    General(SessionConfig),
}

impl Design {
    /// Read a design from JSON: `{"profile": PROFILE_CONFIG}`, `{"adaptive": SESSION_CONFIG}`, or a
    /// plain session configuration (what `etalon simulate --config` reads), taken as `adaptive`.
    pub fn from_json(text: &str) -> Result<Design, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let tagged = value.as_object().is_some_and(|o| {
            o.len() == 1
                && (o.contains_key("profile")
                    || o.contains_key("adaptive")
                    || o.contains_key("multidimensional")
                    || o.contains_key("general"))
        });
        // Parse the text again (not the value) so that errors keep their line and column.
        if tagged {
            serde_json::from_str(text)
        } else {
            serde_json::from_str(text).map(Design::Adaptive)
        }
    }
}

/// Why an assessment call was refused. The assessment is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AssessmentError {
    /// The adaptive-test configuration does not fit the bank.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The profile configuration does not fit the bank.
    #[error("profile configuration: {0}")]
    Profile(#[from] ProfileError),
    /// The multidimensional design does not fit the bank.
    #[error(transparent)]
    Multidimensional(#[from] MultiError),
    /// The engine refused the call (wrong bank, item not offered, impossible response, corrupt state…).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A choice index the item does not have.
    #[error(
        "item `{item}`: choice {choice} does not exist (the item has {choices} choices, numbered from 0)"
    )]
    NoSuchChoice {
        /// Item.
        item: String,
        /// The choice given.
        choice: usize,
        /// How many there are.
        choices: usize,
    },
    /// A choice given for an item that has no choices.
    #[error("item `{0}` has no choices: answer with a response code")]
    NoChoices(String),
    /// A saved assessment that cannot be read.
    #[error("saved assessment: {0}")]
    Saved(String),
    /// A saved assessment of another kind (adaptive vs profile) than this assessor runs.
    #[error("saved assessment is a {found} assessment, this one runs {expected}")]
    WrongKind {
        /// Kind found.
        found: &'static str,
        /// Kind expected.
        expected: &'static str,
    },
}

/// An answer as a person gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// The 0-based index of the chosen option of a multiple-choice item; the library scores it with
    /// the item's key (or, for an item without a key, choice k is category k).
    Choice(usize),
    /// An original response code of the item (its `codes`, by default 0 … K-1).
    Code(i64),
}

/// An item as a person sees it: no key, no parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// 1-based position of this question in the test.
    pub position: usize,
    /// Item id (to send back with the answer).
    pub item: String,
    /// Competence id.
    pub competence: Option<String>,
    /// Competence name from the bank's framework.
    pub competence_name: Option<String>,
    /// The question (absent for items without text).
    pub prompt: Option<String>,
    /// The options, in display order (empty: answer with a response code).
    pub choices: Vec<String>,
    /// The response codes accepted, for items without choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<i64>,
}

/// What the person learns right after an answer (a front end may show it or not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerFeedback {
    /// The item answered.
    pub item: String,
    /// The response code recorded.
    pub response: i64,
    /// Right or wrong, for keyed items.
    pub correct: Option<bool>,
    /// The item's tutorials when the answer was in its lowest category.
    pub tutorials: Vec<Tutorial>,
    /// Answers so far.
    pub answered: usize,
    /// Whether the assessment is over.
    pub finished: bool,
}

/// Immediate feedback on one recorded answer: right or wrong, and what to read when it was missed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// Right or wrong, for keyed items (`None` when the item has no key, e.g. a rating).
    pub correct: Option<bool>,
    /// The item's tutorials when the answer was in its lowest category.
    pub tutorials: Vec<Tutorial>,
}

impl Feedback {
    /// The feedback on response code `code` to `item`: right when its category is above the lowest.
    pub fn of(item: &Item, code: i64) -> Feedback {
        let category = item.category_of(code).unwrap_or(0);
        let keyed = item.content.as_ref().is_some_and(|c| c.correct.is_some());
        Feedback {
            correct: keyed.then_some(category > 0),
            tutorials: if category == 0 {
                item.tutorials.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// A tutorial of a missed item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedTutorial {
    /// The item missed.
    pub item: String,
    /// Title.
    pub title: String,
    /// Address.
    pub url: String,
}

/// One competence in a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompetenceView {
    /// Competence name from the framework.
    pub name: String,
    /// θ̂, SE, level, label, level probability, items, points and stop reason.
    #[serde(flatten)]
    pub result: CompetenceResult,
    /// Tutorials of items just above the person's level.
    pub next_steps: Vec<Tutorial>,
}

/// The outcome of an assessment (so far, while it runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentResult {
    /// Overall θ̂ (EAP of every scored answer on the bank's scale).
    pub theta: f64,
    /// Its SE.
    pub se: f64,
    /// The items administered, in order.
    pub items: Vec<String>,
    /// Why it ended (`None` while it runs).
    pub stop_reason: Option<StopReason>,
    /// Per competence.
    pub competences: BTreeMap<String, CompetenceView>,
    /// PIX-style score: the sum of the competences' points.
    pub score: f64,
    /// Tutorials of the items missed.
    pub tutorials: Vec<MissedTutorial>,
    /// Whether it is over.
    pub finished: bool,
}

#[derive(Debug, Clone)]
enum Engine {
    Adaptive(Box<CatEngine>),
    Profile(Box<ProfileEngine>),
    Multi(Box<MultiEngine>),
}

impl Engine {
    /// The bank the engine runs on (a multidimensional subset runs on its competences' items).
    fn bank(&self) -> &Bank {
        match self {
            Engine::Adaptive(e) => e.bank(),
            Engine::Profile(e) => e.bank(),
            Engine::Multi(e) => e.bank(),
        }
    }
}

/// A person's assessment: a plain value, saved and resumed as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// State of a single adaptive test.
    Adaptive(Box<Session>),
    /// State of a competence profile.
    Profile(ProfileSession),
    /// State of a multidimensional profile.
    Multidimensional(MultiSession),
}

#[derive(Serialize, Deserialize)]
struct Saved {
    /// [`ASSESSMENT_SCHEMA`].
    schema: u32,
    /// `general` for a [`Design::General`] assessment (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reading: Option<String>,
    #[serde(flatten)]
    assessment: Assessment,
}

impl Assessment {
    fn kind(&self) -> &'static str {
        match self {
            Assessment::Adaptive(_) => "adaptive",
            Assessment::Profile(_) => "profile",
            Assessment::Multidimensional(_) => "multidimensional",
        }
    }
    /// Answers so far.
    pub fn answered(&self) -> usize {
        match self {
            Assessment::Adaptive(s) => s.history().len(),
            Assessment::Profile(s) => s.answered(),
            Assessment::Multidimensional(s) => s.history().len(),
        }
    }
}

/// A bank and a design, ready to assess any number of people (cheap to share across threads).
#[derive(Debug, Clone)]
pub struct Assessor {
    engine: Engine,
    levels: Levels,
    /// The general design's competences (`Some`): levels read from the one θ.
    general: Option<Vec<String>>,
    /// EAP table of the whole bank on the design's grid and prior (the overall θ̂ of a profile).
    table: EapTable,
}

impl Assessor {
    /// Validate `design` against `bank` and build the engines.
    pub fn new(bank: &Bank, design: Design) -> Result<Self, AssessmentError> {
        let levels = bank.levels().cloned().unwrap_or_default();
        // A design that keeps the default level maps reads levels on the bank's, when it has some.
        let bank_levels_by_default = |l: &mut Levels| {
            if bank.levels().is_some() && *l == Levels::default() {
                *l = levels.clone();
            }
        };
        // The general design reads its levels from the one θ of an adaptive test.
        let general = match &design {
            Design::General(config) => Some(config.content.competences.clone()),
            _ => None,
        };
        let (engine, estimator) = match design {
            Design::General(config) | Design::Adaptive(config) => {
                let estimator = config.estimator;
                (
                    Engine::Adaptive(Box::new(CatEngine::new(bank, config)?)),
                    estimator,
                )
            }
            Design::Profile(mut config) => {
                bank_levels_by_default(&mut config.levels);
                let estimator = config.session.estimator;
                (
                    Engine::Profile(Box::new(ProfileEngine::new(bank, config)?)),
                    estimator,
                )
            }
            Design::Multidimensional(mut config) => {
                bank_levels_by_default(&mut config.levels);
                (
                    Engine::Multi(Box::new(MultiEngine::new(bank, config)?)),
                    SessionConfig::default().estimator,
                )
            }
        };
        let levels = match &engine {
            Engine::Profile(p) => p.config().levels.clone(),
            Engine::Multi(m) => m.config().levels.clone(),
            Engine::Adaptive(_) => levels,
        };
        let grid = Grid::new(estimator.grid, estimator.prior)
            .map_err(|e| ConfigError::Estimator(etalon_engine::EstimationError::from(e)))?;
        let models: Vec<_> = engine
            .bank()
            .items()
            .iter()
            .map(|i| i.parameters.clone())
            .collect();
        Ok(Assessor {
            engine,
            levels,
            general,
            table: EapTable::new(&models, grid),
        })
    }

    /// The bank.
    pub fn bank(&self) -> &Bank {
        self.engine.bank()
    }

    /// The design's name, as its JSON tag: `adaptive`, `profile`, `multidimensional` or `general`.
    pub fn design_name(&self) -> &'static str {
        match (&self.engine, &self.general) {
            (Engine::Adaptive(_), Some(_)) => "general",
            (Engine::Adaptive(_), None) => "adaptive",
            (Engine::Profile(_), _) => "profile",
            (Engine::Multi(_), _) => "multidimensional",
        }
    }

    /// The level maps results are read on.
    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// The most questions a person can be asked.
    pub fn max_items(&self) -> usize {
        match &self.engine {
            Engine::Adaptive(e) => e.config().stopping.max_items,
            Engine::Profile(e) => e.competences().len() * e.config().max_items_per_competence,
            Engine::Multi(e) => e.config().max_items,
        }
    }

    /// Start an assessment; every random choice follows from `seed`.
    pub fn start(&self, seed: u64) -> Assessment {
        match &self.engine {
            Engine::Adaptive(e) => Assessment::Adaptive(Box::new(e.start(seed))),
            Engine::Profile(e) => Assessment::Profile(e.start(seed)),
            Engine::Multi(e) => Assessment::Multidimensional(e.start(seed)),
        }
    }

    fn kind(&self) -> &'static str {
        self.design_name()
    }

    fn next(&self, a: &mut Assessment) -> Result<Next, AssessmentError> {
        match (&self.engine, a) {
            (Engine::Adaptive(e), Assessment::Adaptive(s)) => Ok(e.next(s)?),
            (Engine::Profile(e), Assessment::Profile(s)) => Ok(e.next(s)?),
            (Engine::Multi(e), Assessment::Multidimensional(s)) => Ok(e.next(s)?),
            (_, a) => Err(AssessmentError::WrongKind {
                found: a.kind(),
                expected: self.kind(),
            }),
        }
    }

    /// The question to show now, or `None` when the assessment is over. Asking twice gives the same
    /// question until it is answered.
    pub fn current(&self, a: &mut Assessment) -> Result<Option<ItemView>, AssessmentError> {
        let id = match self.next(a)? {
            Next::Finished(_) => return Ok(None),
            Next::Item(id) => id,
        };
        let item = self
            .bank()
            .item(&id)
            .unwrap_or_else(|| unreachable!("the engine offers items of its bank"));
        Ok(Some(self.view(item, a.answered() + 1)))
    }

    /// How `item` is shown at `position`.
    pub fn view(&self, item: &Item, position: usize) -> ItemView {
        let competence_name = item.competence.as_deref().map(|c| {
            self.bank()
                .framework()
                .competence(c)
                .map_or_else(|| c.to_string(), |x| x.name.clone())
        });
        let (prompt, choices) = match &item.content {
            Some(c) => (Some(c.prompt.clone()), c.choices.clone()),
            None => (None, Vec::new()),
        };
        ItemView {
            position,
            item: item.id.clone(),
            competence: item.competence.clone(),
            competence_name,
            prompt,
            codes: if choices.is_empty() {
                item.response_codes()
            } else {
                Vec::new()
            },
            choices,
        }
    }

    /// The response code a person's answer to `item` stands for.
    pub fn score_response(&self, item: &Item, response: Response) -> Result<i64, AssessmentError> {
        let codes = item.response_codes();
        match response {
            Response::Code(c) => Ok(c),
            Response::Choice(k) => {
                let content = item
                    .content
                    .as_ref()
                    .filter(|c| !c.choices.is_empty())
                    .ok_or_else(|| AssessmentError::NoChoices(item.id.clone()))?;
                if k >= content.choices.len() {
                    return Err(AssessmentError::NoSuchChoice {
                        item: item.id.clone(),
                        choice: k,
                        choices: content.choices.len(),
                    });
                }
                let category = match content.correct {
                    Some(right) => usize::from(k == right),
                    None => k,
                };
                codes.get(category).copied().ok_or(AssessmentError::NoSuchChoice {
                    item: item.id.clone(),
                    choice: k,
                    choices: codes.len(),
                })
            }
        }
    }

    /// Record the answer to the question shown (`item` must be it).
    pub fn answer(
        &self,
        a: &mut Assessment,
        item: &str,
        response: Response,
    ) -> Result<AnswerFeedback, AssessmentError> {
        let it = self
            .bank()
            .item(item)
            .ok_or_else(|| SessionError::UnknownItem(item.to_string()))?;
        let code = self.score_response(it, response)?;
        match (&self.engine, &mut *a) {
            (Engine::Adaptive(e), Assessment::Adaptive(s)) => {
                e.record(s, item, code)?;
            }
            (Engine::Profile(e), Assessment::Profile(s)) => {
                e.record(s, item, code)?;
            }
            (Engine::Multi(e), Assessment::Multidimensional(s)) => {
                e.record(s, item, code)?;
            }
            (_, a) => {
                return Err(AssessmentError::WrongKind {
                    found: a.kind(),
                    expected: self.kind(),
                });
            }
        }
        let Feedback { correct, tutorials } = Feedback::of(it, code);
        let mut probe = a.clone();
        let finished = matches!(self.next(&mut probe)?, Next::Finished(_));
        if finished {
            // Settle the stop reason in the state itself (the engines record it when asked for next).
            *a = probe;
        }
        Ok(AnswerFeedback {
            item: item.to_string(),
            response: code,
            correct,
            tutorials,
            answered: a.answered(),
            finished,
        })
    }

    /// Scored answers as (bank position, category), in order.
    fn scored_answers(&self, a: &Assessment) -> Vec<(String, Answer)> {
        let bank = self.bank();
        if let Assessment::Multidimensional(s) = a {
            return s
                .history()
                .iter()
                .filter_map(|r| Some((r.item.clone(), Answer::new(bank.position(&r.item)?, r.category))))
                .collect();
        }
        let histories: Vec<&etalon_engine::session::Record> = match a {
            Assessment::Adaptive(s) => s.history().iter().collect(),
            Assessment::Profile(s) => {
                let mut next = vec![0usize; s.sessions().len()];
                s.order()
                    .iter()
                    .filter_map(|&c| {
                        let r = s.sessions().get(c)?.history().get(next[c]);
                        next[c] += 1;
                        r
                    })
                    .collect()
            }
            Assessment::Multidimensional(_) => Vec::new(),
        };
        histories
            .into_iter()
            .filter(|r| r.scored)
            .filter_map(|r| {
                Some((
                    r.item.clone(),
                    Answer::new(bank.position(&r.item)?, r.category as usize),
                ))
            })
            .collect()
    }

    /// The result so far (final once the assessment is over).
    pub fn result(&self, a: &Assessment) -> AssessmentResult {
        let bank = self.bank();
        let answers = self.scored_answers(a);
        let plain: Vec<Answer> = answers.iter().map(|(_, x)| *x).collect();
        let (theta, se, items, stop_reason, competences) = match (&self.engine, a) {
            (Engine::Adaptive(e), Assessment::Adaptive(s)) => {
                let r = e.result(s);
                let profile = match &self.general {
                    Some(c) => general_profile(bank, &self.levels, c, (r.theta, r.se), &plain),
                    None => competence_profile(bank, &self.table, &self.levels, &plain),
                };
                (r.theta, r.se, r.items, r.reason, profile)
            }
            (Engine::Profile(e), Assessment::Profile(s)) => {
                let r = e.result(s);
                let overall = self.table.eap(&plain, &mut Vec::new());
                let items = answers.iter().map(|(id, _)| id.clone()).collect();
                let reason = r.finished.then_some(StopReason::EveryCompetence);
                (overall.theta, overall.se, items, reason, r.competences)
            }
            (Engine::Multi(e), Assessment::Multidimensional(s)) => {
                // The overall θ̂ stays the EAP of every answer on the bank's scale (what the other
                // designs report); the competences come from the multidimensional posterior.
                let overall = self.table.eap(&plain, &mut Vec::new());
                let items = answers.iter().map(|(id, _)| id.clone()).collect();
                let competences = e.result(s).map(|r| r.competences).unwrap_or_default();
                (overall.theta, overall.se, items, s.finished(), competences)
            }
            _ => {
                let overall = self.table.eap(&plain, &mut Vec::new());
                (overall.theta, overall.se, Vec::new(), None, BTreeMap::new())
            }
        };
        let score = competences.values().map(|c| c.score).sum();
        let competences = competences
            .into_iter()
            .map(|(c, result)| {
                let map = self.levels.for_competence(&c);
                let name = bank
                    .framework()
                    .competence(&c)
                    .map_or_else(|| c.clone(), |x| x.name.clone());
                let next_steps = etalon_engine::profile::next_step_tutorials(bank, &c, result.theta, map);
                (
                    c,
                    CompetenceView {
                        name,
                        result,
                        next_steps,
                    },
                )
            })
            .collect();
        let mut tutorials = Vec::new();
        for (id, answer) in &answers {
            if answer.category == 0
                && let Some(item) = bank.item(id)
            {
                for t in &item.tutorials {
                    tutorials.push(MissedTutorial {
                        item: id.clone(),
                        title: t.title.clone(),
                        url: t.url.clone(),
                    });
                }
            }
        }
        AssessmentResult {
            theta,
            se,
            items,
            finished: stop_reason.is_some(),
            stop_reason,
            competences,
            score,
            tutorials,
        }
    }

    /// The assessment as JSON, with its schema version.
    pub fn save(&self, a: &Assessment) -> String {
        serde_json::to_string(&Saved {
            schema: ASSESSMENT_SCHEMA,
            reading: self.general.as_ref().map(|_| "general".to_string()),
            assessment: a.clone(),
        })
        .unwrap_or_else(|e| unreachable!("an assessment serialises: {e}"))
    }

    /// Read a saved assessment and check it against this assessor's bank and design; a damaged or
    /// foreign one is an error, never a different test.
    pub fn resume(&self, json: &str) -> Result<Assessment, AssessmentError> {
        let saved: Saved = serde_json::from_str(json).map_err(|e| AssessmentError::Saved(e.to_string()))?;
        if saved.schema == 0 || saved.schema > ASSESSMENT_SCHEMA {
            return Err(AssessmentError::Saved(format!(
                "format version {} is not supported (this version reads 1 to {ASSESSMENT_SCHEMA})",
                saved.schema
            )));
        }
        // A general (one θ, PIX reading) assessment is saved as an adaptive one with its reading: it
        // resumes only under the general design, and a plain adaptive one never under it.
        let found = match (&saved.reading, &saved.assessment) {
            (Some(r), Assessment::Adaptive(_)) if r == "general" => "general",
            (Some(r), _) => {
                return Err(AssessmentError::Saved(format!(
                    "field `reading`: unknown reading `{r}`"
                )));
            }
            (None, a) => a.kind(),
        };
        if found != self.kind() && (found == "general" || self.kind() == "general") {
            return Err(AssessmentError::WrongKind {
                found,
                expected: self.kind(),
            });
        }
        let mut a = saved.assessment;
        // The engines verify bank, configuration and content by replaying the saved answers from the
        // seed (a damaged or edited state is `SessionError::Corrupt`, naming the field); the verified
        // state is kept, so later calls do not replay it again.
        match (&self.engine, &mut a) {
            (Engine::Adaptive(e), Assessment::Adaptive(s)) => e.verify(s)?,
            (Engine::Profile(e), Assessment::Profile(s)) => e.verify(s)?,
            (Engine::Multi(e), Assessment::Multidimensional(s)) => e.verify(s)?,
            (_, a) => {
                return Err(AssessmentError::WrongKind {
                    found: a.kind(),
                    expected: self.kind(),
                });
            }
        }
        // And asking for the next item must work (on a copy: resuming changes nothing).
        self.next(&mut a.clone())?;
        Ok(a)
    }
}
