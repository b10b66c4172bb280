//! Competence frameworks: domains that group competences, in the shape of PIX's
//! 5 domains and 16 competences (itself modelled on the European DigComp framework).

use serde::{Deserialize, Serialize};

/// One measurable competence (a unidimensional latent trait of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competence {
    /// Identifier, unique in the framework (for instance `1.1`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Optional longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A domain: a named group of competences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// Identifier, unique in the framework.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The competences of the domain.
    pub competences: Vec<Competence>,
}

/// A competence framework: domains → competences. An empty framework (no domains) is allowed:
/// a bank read from CSV has none, and its items' competences are then free labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// Identifier of the framework.
    #[serde(default)]
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub name: String,
    /// Domains, in display order.
    #[serde(default)]
    pub domains: Vec<Domain>,
}

impl Framework {
    /// Whether the framework defines no competence.
    pub fn is_empty(&self) -> bool {
        self.domains.iter().all(|d| d.competences.is_empty())
    }

    /// All competences in display order.
    pub fn competences(&self) -> impl Iterator<Item = &Competence> {
        self.domains.iter().flat_map(|d| d.competences.iter())
    }

    /// The competence with this id.
    pub fn competence(&self, id: &str) -> Option<&Competence> {
        self.competences().find(|c| c.id == id)
    }

    /// The domain holding competence `id`.
    pub fn domain_of(&self, id: &str) -> Option<&Domain> {
        self.domains
            .iter()
            .find(|d| d.competences.iter().any(|c| c.id == id))
    }

    /// Problems of the framework itself: empty or duplicate ids.
    pub fn problems(&self) -> Vec<crate::Problem> {
        use crate::Problem;
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in self.domains.iter().enumerate() {
            if d.id.trim().is_empty() {
                out.push(Problem::new("empty domain id").in_field(format!("framework.domains[{i}].id")));
            } else if !seen.insert(format!("domain:{}", d.id)) {
                out.push(
                    Problem::new(format!("duplicate domain id `{}`", d.id)).in_field("framework.domains"),
                );
            }
            for (j, c) in d.competences.iter().enumerate() {
                if c.id.trim().is_empty() {
                    out.push(
                        Problem::new("empty competence id")
                            .in_field(format!("framework.domains[{i}].competences[{j}].id")),
                    );
                } else if !seen.insert(format!("competence:{}", c.id)) {
                    out.push(
                        Problem::new(format!("duplicate competence id `{}`", c.id))
                            .in_field("framework.competences"),
                    );
                }
            }
        }
        out
    }
}
