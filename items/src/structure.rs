//! The latent structure of a multidimensional bank: which dimensions there are, and how they correlate.
//!
//! Between-item (simple-structure) multidimensional IRT: every item measures one dimension, its
//! `competence`, with the item's own model (2PL, 3PL, graded, GPCM…) on that dimension's scale; the
//! person's competences θ = (θ_1, …, θ_D) are multivariate normal N(0, R), means 0, variances 1, R the
//! latent correlation matrix. A unidimensional bank is the case D = 1, R = (1). The correlations are
//! what lets every answer inform every competence: the posterior of θ_k moves with an answer on
//! competence l in proportion to how related k and l are (Reckase 2009, *Multidimensional Item
//! Response Theory*, ch. 4; mirt's confirmatory `mirt.model` with `COV = F1*F2*…`).
//!
//! [`Spd`] holds the small symmetric positive-definite algebra the structure needs (Cholesky
//! factor, solves, inverse) without a linear-algebra dependency, so that the engine stays buildable
//! for WebAssembly.

use crate::error::Problem;
use serde::{Deserialize, Serialize};

/// Dimensions and their correlation matrix, as a bank records them (`"latent": {"dimensions",
/// "correlations"}` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    /// Dimension names (each one an item `competence`), in order.
    pub dimensions: Vec<String>,
    /// D × D correlation matrix, row by row: symmetric, unit diagonal, positive definite.
    pub correlations: Vec<Vec<f64>>,
}

impl Structure {
    /// Validate and build. Every problem is reported (field `latent`).
    pub fn new(dimensions: Vec<String>, correlations: Vec<Vec<f64>>) -> Result<Self, Vec<Problem>> {
        let s = Structure {
            dimensions,
            correlations,
        };
        let problems = s.problems();
        if problems.is_empty() { Ok(s) } else { Err(problems) }
    }

    /// Independent dimensions (R = I).
    pub fn independent(dimensions: Vec<String>) -> Self {
        let d = dimensions.len();
        let correlations = (0..d)
            .map(|i| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect();
        Structure {
            dimensions,
            correlations,
        }
    }

    /// The one-factor structure with loadings λ: r_kl = λ_k λ_l (a general factor behind the dimensions).
    pub fn one_factor(dimensions: Vec<String>, loadings: &[f64]) -> Result<Self, Vec<Problem>> {
        let correlations = (0..loadings.len())
            .map(|k| {
                (0..loadings.len())
                    .map(|l| if k == l { 1.0 } else { loadings[k] * loadings[l] })
                    .collect()
            })
            .collect();
        Structure::new(dimensions, correlations)
    }

    /// Number of dimensions D.
    pub fn len(&self) -> usize {
        self.dimensions.len()
    }

    /// Whether there is no dimension (never true of a validated structure).
    pub fn is_empty(&self) -> bool {
        self.dimensions.is_empty()
    }

    /// The structure of `names` only, in that order: the marginal of N(0, R) over a subset of its
    /// dimensions is N(0, R_SS), the rows and columns of those dimensions. `None` when a name is not a
    /// dimension, is given twice, or the list is empty.
    pub fn marginal(&self, names: &[String]) -> Option<Structure> {
        let at: Vec<usize> = names.iter().map(|n| self.dimension(n)).collect::<Option<_>>()?;
        let mut seen = at.clone();
        seen.sort_unstable();
        seen.dedup();
        if at.is_empty() || seen.len() != at.len() {
            return None;
        }
        Some(Structure {
            dimensions: names.to_vec(),
            correlations: at
                .iter()
                .map(|&k| at.iter().map(|&l| self.correlations[k][l]).collect())
                .collect(),
        })
    }

    /// Index of dimension `name`.
    pub fn dimension(&self, name: &str) -> Option<usize> {
        self.dimensions.iter().position(|d| d == name)
    }

    /// The correlation matrix as a flat row-major D × D array.
    pub fn matrix(&self) -> Vec<f64> {
        self.correlations.iter().flatten().copied().collect()
    }

    /// What is wrong with the structure, each problem in field `latent`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let d = self.dimensions.len();
        let mut say = |m: String| out.push(Problem::new(m).in_field("latent"));
        if d == 0 {
            say("a multidimensional latent structure needs at least one dimension".into());
            return out;
        }
        for (i, name) in self.dimensions.iter().enumerate() {
            if name.trim().is_empty() {
                say(format!("dimension {} has an empty name", i + 1));
            } else if self.dimensions[..i].contains(name) {
                say(format!("dimension `{name}` is listed twice"));
            }
        }
        if self.correlations.len() != d || self.correlations.iter().any(|r| r.len() != d) {
            say(format!(
                "correlations must be a {d} × {d} matrix (one row and column per dimension)"
            ));
            return out;
        }
        let mut shape_ok = true;
        for i in 0..d {
            let rii = self.correlations[i][i];
            if rii != 1.0 {
                say(format!("correlations[{i}][{i}] must be 1 (got {rii})"));
                shape_ok = false;
            }
            for j in 0..i {
                let (a, b) = (self.correlations[i][j], self.correlations[j][i]);
                if !(a.is_finite() && a > -1.0 && a < 1.0) {
                    say(format!("correlations[{i}][{j}] must be in (-1, 1) (got {a})"));
                    shape_ok = false;
                } else if !b.is_finite() || (a - b).abs() > 1e-9 {
                    say(format!(
                        "correlations must be symmetric: [{i}][{j}] = {a} but [{j}][{i}] = {b}"
                    ));
                    shape_ok = false;
                }
            }
        }
        if shape_ok && Spd::new(&self.matrix(), d).is_none() {
            say("correlations are not positive definite (not the correlations of any distribution)".into());
        }
        out
    }
}

/// A symmetric positive-definite n × n matrix by its Cholesky factor L (A = L Lᵀ), for the small
/// matrices of a latent structure (n ≤ a few dozen).
#[derive(Debug, Clone, PartialEq)]
pub struct Spd {
    n: usize,
    /// Lower-triangular factor, row-major n × n.
    l: Vec<f64>,
}

impl Spd {
    /// Factor the row-major `a` (n × n, only its lower triangle is read); `None` unless positive definite.
    pub fn new(a: &[f64], n: usize) -> Option<Spd> {
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
                let v = a[i * n + j] - s;
                if i == j {
                    if !(v > 0.0 && v.is_finite()) {
                        return None;
                    }
                    l[i * n + i] = v.sqrt();
                } else {
                    l[i * n + j] = v / l[j * n + j];
                }
            }
        }
        Some(Spd { n, l })
    }

    /// Dimension n.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// log det A = 2 Σ log L_ii.
    pub fn log_det(&self) -> f64 {
        (0..self.n).map(|i| 2.0 * self.l[i * self.n + i].ln()).sum()
    }

    /// Solve A x = b in place.
    pub fn solve_in_place(&self, b: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let s: f64 = (0..i).map(|k| self.l[i * n + k] * b[k]).sum();
            b[i] = (b[i] - s) / self.l[i * n + i];
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| self.l[k * n + i] * b[k]).sum();
            b[i] = (b[i] - s) / self.l[i * n + i];
        }
    }

    /// A⁻¹, row-major.
    pub fn inverse(&self) -> Vec<f64> {
        let n = self.n;
        let mut inv = vec![0.0; n * n];
        let mut col = vec![0.0; n];
        for j in 0..n {
            col.iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = f64::from(u8::from(i == j)));
            self.solve_in_place(&mut col);
            for i in 0..n {
                inv[i * n + j] = col[i];
            }
        }
        inv
    }

    /// x = L z (turns independent standard normals z into N(0, A) draws).
    pub fn lower_times(&self, z: &[f64], x: &mut [f64]) {
        let n = self.n;
        for (i, xi) in x.iter_mut().enumerate().take(n) {
            *xi = (0..=i).map(|k| self.l[i * n + k] * z[k]).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_inverse_and_determinant() {
        let a = [4.0, 2.0, 0.6, 2.0, 3.0, 0.4, 0.6, 0.4, 2.0];
        let s = Spd::new(&a, 3).unwrap();
        let inv = s.inverse();
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!(
                    (p - f64::from(u8::from(i == j))).abs() < 1e-12,
                    "A·A⁻¹ at ({i},{j}) = {p}"
                );
            }
        }
        // det = 4(6 − 0.16) − 2(4 − 0.24) + 0.6(0.8 − 1.8) = 23.36 − 7.52 − 0.6 = 15.24
        assert!((s.log_det() - 15.24f64.ln()).abs() < 1e-12);
        assert!(Spd::new(&[1.0, 2.0, 2.0, 1.0], 2).is_none());
    }

    #[test]
    fn invalid_structures_are_refused_with_every_problem() {
        let bad = Structure::new(
            vec!["A".into(), "A".into(), " ".into()],
            vec![vec![1.0, 0.5, 0.2], vec![0.4, 1.0, 0.3], vec![0.2, 0.3, 2.0]],
        )
        .unwrap_err();
        let text: Vec<String> = bad.iter().map(|p| p.to_string()).collect();
        assert!(text.iter().any(|t| t.contains("listed twice")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("empty name")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("symmetric")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("must be 1")), "{text:?}");
        // Valid entries, yet not a correlation matrix: r12 = r13 = 0.9, r23 = −0.9.
        let npd = Structure::new(
            vec!["A".into(), "B".into(), "C".into()],
            vec![vec![1.0, 0.9, 0.9], vec![0.9, 1.0, -0.9], vec![0.9, -0.9, 1.0]],
        )
        .unwrap_err();
        assert!(npd[0].to_string().contains("positive definite"), "{npd:?}");
        assert!(Structure::new(vec!["A".into()], vec![vec![1.0]]).is_ok());
    }
}
