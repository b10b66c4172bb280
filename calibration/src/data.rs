//! Response data prepared for calibration: categories per item, persons and items without any
//! answer set aside (with a warning), dense or sparse storage kept as read.

use etalon_items::{MISSING, ModelKind, ResponseMatrix, Responses, SparseResponses};

/// Why the data cannot be calibrated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A dichotomous model needs codes 0/1.
    #[error("item `{item}`: the {model} model needs responses coded 0/1, the data have codes {codes:?}")]
    NotDichotomous {
        /// Item id.
        item: String,
        /// Model.
        model: ModelKind,
        /// Codes found.
        codes: Vec<i64>,
    },
    /// Nothing to calibrate.
    #[error("no item has responses from at least one person")]
    NoData,
}

/// Calibration data: persons with at least one answer, items with at least one answer.
#[derive(Debug, Clone)]
pub struct CalibData {
    item_ids: Vec<String>,
    codes: Vec<Vec<i64>>,
    categories: Vec<usize>,
    n_persons: usize,
    /// Row of each kept person in the data it was prepared from.
    rows: Vec<usize>,
    /// The kept persons' answers, in categories, in the layout they were read in.
    responses: Responses,
    /// Items of the file left out (no answer), by id.
    pub dropped_items: Vec<String>,
    /// Persons of the file left out (no answer).
    pub dropped_persons: usize,
}

impl CalibData {
    /// Prepare `responses` for items of `models` (one model per data item, in data order).
    pub fn new(responses: &Responses, models: &[ModelKind]) -> Result<Self, DataError> {
        let ids = responses.item_ids();
        // Items with at least one answer.
        let mut answered = vec![0usize; ids.len()];
        let mut person_has = vec![false; responses.n_persons()];
        for (p, has) in person_has.iter_mut().enumerate() {
            responses.for_each_answer(p, |j, _| {
                answered[j] += 1;
                *has = true;
            });
        }
        let keep: Vec<usize> = (0..ids.len()).filter(|&j| answered[j] > 0).collect();
        if keep.is_empty() {
            return Err(DataError::NoData);
        }
        let dropped_items = (0..ids.len())
            .filter(|&j| answered[j] == 0)
            .map(|j| ids[j].clone())
            .collect();
        let mut new_index = vec![u32::MAX; ids.len()];
        for (n, &j) in keep.iter().enumerate() {
            new_index[j] = n as u32;
        }
        // Category maps: dichotomous models read codes 0/1 as categories 0/1.
        let mut codes = Vec::with_capacity(keep.len());
        let mut categories = Vec::with_capacity(keep.len());
        let mut remap: Vec<Vec<u8>> = Vec::with_capacity(keep.len());
        for &j in &keep {
            let c = responses.codes(j).to_vec();
            if models[j].is_polytomous() {
                categories.push(c.len().max(2));
                remap.push((0..c.len() as u8).collect());
                codes.push(c);
            } else {
                if c.iter().any(|&x| x != 0 && x != 1) {
                    return Err(DataError::NotDichotomous {
                        item: ids[j].clone(),
                        model: models[j],
                        codes: c,
                    });
                }
                categories.push(2);
                remap.push(c.iter().map(|&x| x as u8).collect());
                codes.push(vec![0, 1]);
            }
        }
        let persons: Vec<usize> = (0..responses.n_persons()).filter(|&p| person_has[p]).collect();
        let dropped_persons = responses.n_persons() - persons.len();
        let item_ids: Vec<String> = keep.iter().map(|&j| ids[j].clone()).collect();
        let n_persons = persons.len();
        let kept = match responses {
            Responses::Dense(m) => {
                let nj = keep.len();
                let mut cells = vec![MISSING; n_persons * nj];
                for (row, &p) in persons.iter().enumerate() {
                    let src = m.row(p);
                    for (n, &j) in keep.iter().enumerate() {
                        let c = src[j];
                        cells[row * nj + n] = if c == MISSING {
                            MISSING
                        } else {
                            remap[n][c as usize]
                        };
                    }
                }
                Responses::Dense(ResponseMatrix::from_categories(
                    item_ids.clone(),
                    n_persons,
                    cells,
                ))
            }
            Responses::Sparse(_) => {
                let (mut offsets, mut items, mut cats) = (vec![0], Vec::new(), Vec::new());
                for &p in &persons {
                    responses.for_each_answer(p, |j, c| {
                        let n = new_index[j];
                        items.push(n);
                        cats.push(remap[n as usize][c as usize]);
                    });
                    offsets.push(items.len());
                }
                let person_ids = persons.iter().map(|&p| responses.person_label(p)).collect();
                Responses::Sparse(SparseResponses::from_parts(
                    item_ids.clone(),
                    person_ids,
                    codes.clone(),
                    offsets,
                    items,
                    cats,
                ))
            }
        };
        let data = CalibData {
            item_ids,
            codes,
            categories,
            n_persons,
            rows: persons,
            responses: kept,
            dropped_items,
            dropped_persons,
        };
        Ok(data)
    }

    /// Number of persons (with at least one answer).
    pub fn n_persons(&self) -> usize {
        self.n_persons
    }
    /// Number of items (with at least one answer).
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    /// Item ids.
    pub fn item_ids(&self) -> &[String] {
        &self.item_ids
    }
    /// Original codes of item j's categories.
    pub fn codes(&self, j: usize) -> &[i64] {
        &self.codes[j]
    }
    /// Number of categories of item j.
    pub fn categories(&self, j: usize) -> usize {
        self.categories[j]
    }
    /// Dense cells (row-major persons × items), when the data came from a wide file.
    pub fn dense_cells(&self) -> Option<&[u8]> {
        match &self.responses {
            Responses::Dense(m) => Some(m.cells()),
            Responses::Sparse(_) => None,
        }
    }
    /// Person p's answers (sparse data; empty for dense data).
    pub fn sparse_person(&self, p: usize) -> (&[u32], &[u8]) {
        match &self.responses {
            Responses::Sparse(s) => s.person(p),
            Responses::Dense(_) => (&[], &[]),
        }
    }
    /// Call `f(item, category)` for each answer of person p.
    pub fn for_each_answer(&self, p: usize, mut f: impl FnMut(usize, usize)) {
        self.responses.for_each_answer(p, |j, c| f(j, c as usize));
    }
    /// Row, in the data it was prepared from, of each person kept (persons without any answer are
    /// left out).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }
    /// The same items (ids, codes, categories) for the kept persons `persons` (indices into this
    /// data's persons, in that order): one group of a multiple-group calibration. Items nobody of the
    /// subset answered stay, with every cell missing.
    pub fn subset(&self, persons: &[usize]) -> CalibData {
        let nj = self.n_items();
        let responses = match &self.responses {
            Responses::Dense(m) => {
                let cells = m.cells();
                let mut sub = Vec::with_capacity(persons.len() * nj);
                for &p in persons {
                    sub.extend_from_slice(&cells[p * nj..(p + 1) * nj]);
                }
                Responses::Dense(ResponseMatrix::from_categories(
                    self.item_ids.clone(),
                    persons.len(),
                    sub,
                ))
            }
            Responses::Sparse(s) => {
                let (mut offsets, mut items, mut cats) = (vec![0], Vec::new(), Vec::new());
                for &p in persons {
                    let (i, c) = s.person(p);
                    items.extend_from_slice(i);
                    cats.extend_from_slice(c);
                    offsets.push(items.len());
                }
                Responses::Sparse(SparseResponses::from_parts(
                    self.item_ids.clone(),
                    persons.iter().map(|&p| self.responses.person_label(p)).collect(),
                    self.codes.clone(),
                    offsets,
                    items,
                    cats,
                ))
            }
        };
        CalibData {
            item_ids: self.item_ids.clone(),
            codes: self.codes.clone(),
            categories: self.categories.clone(),
            n_persons: persons.len(),
            rows: persons.iter().map(|&p| self.rows[p]).collect(),
            responses,
            dropped_items: Vec::new(),
            dropped_persons: 0,
        }
    }
    /// Observed count of each category of each item.
    pub fn category_counts(&self) -> Vec<Vec<usize>> {
        let mut counts: Vec<Vec<usize>> = self.categories.iter().map(|&k| vec![0; k]).collect();
        for p in 0..self.n_persons {
            self.for_each_answer(p, |j, c| counts[j][c] += 1);
        }
        counts
    }
}
