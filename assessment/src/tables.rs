//! Response data from in-memory tables, for front ends that hold data in arrays rather than files
//! (the Python package's numpy arrays and pandas DataFrames; a WebAssembly page's typed arrays).
//!
//! The result is exactly the [`Responses`] that reading the same table written as CSV gives
//! (`etalon_items::read_responses_from`): item ids and person ids trimmed, each item's distinct codes
//! in increasing order as its categories 0 … K-1, the original codes kept, missing cells missing. So a
//! calibration or a scoring of an array gives the command line's numbers on the same data, to the bit.
//!
//! Wide tables whose items use the codes 0 … K-1 with every code observed (0/1 data, the common case)
//! are turned into the one-byte matrix directly; any other wide table, and every long table, goes
//! through the CSV reader itself, in memory.

use etalon_items::data::{ResponseMatrix, SparseResponses};
use etalon_items::{DataError, Responses};
use std::collections::HashSet;
use std::path::PathBuf;

/// A cell of an in-memory table: a response code, missing, or not a code.
pub trait Cell: Copy + Sync + std::fmt::Display {
    /// `Ok(None)` when missing, `Ok(Some(code))` for an integer code, `Err(())` for anything else
    /// (a fraction, an infinity, a number beyond ±2⁵³).
    #[allow(clippy::result_unit_err)]
    fn code(self) -> Result<Option<i64>, ()>;
}

/// Largest integer a float holds exactly.
const EXACT: f64 = 9_007_199_254_740_992.0;

impl Cell for f64 {
    /// NaN is missing; integral values are codes.
    fn code(self) -> Result<Option<i64>, ()> {
        if self.is_nan() {
            Ok(None)
        } else if self.is_finite() && self.fract() == 0.0 && self.abs() <= EXACT {
            Ok(Some(self as i64))
        } else {
            Err(())
        }
    }
}

impl Cell for f32 {
    /// NaN is missing; integral values are codes.
    fn code(self) -> Result<Option<i64>, ()> {
        f64::from(self).code()
    }
}

macro_rules! integer_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            /// Every value is a code.
            fn code(self) -> Result<Option<i64>, ()> {
                i64::try_from(self).map(Some).map_err(|_| ())
            }
        }
    )*};
}
integer_cell!(i8, i16, i32, i64, u8, u16, u32, u64);

impl Cell for bool {
    /// `false` is 0, `true` is 1.
    fn code(self) -> Result<Option<i64>, ()> {
        Ok(Some(i64::from(self)))
    }
}

fn format_error(source: &str, column: Option<&str>, message: String) -> DataError {
    DataError::Format {
        path: PathBuf::from(source),
        line: 0,
        column: column.map(|c| crate::cut(c, 60)),
        message,
    }
}

/// A cell that is not a code, named by its row and column.
fn bad_cell(
    source: &str,
    row: usize,
    person: Option<&str>,
    column: &str,
    cell: impl std::fmt::Display,
) -> DataError {
    let who = person.map_or_else(String::new, |p| format!(" (person `{}`)", crate::cut(p, 40)));
    format_error(
        source,
        Some(column),
        format!(
            "row {}{who}: `{}` is not an integer response code",
            row + 1,
            crate::cut(&cell.to_string(), 40)
        ),
    )
}

/// Trimmed, non-empty, distinct item ids (as a CSV header is read).
fn check_item_ids(source: &str, ids: Vec<String>) -> Result<Vec<String>, DataError> {
    if ids.is_empty() {
        return Err(format_error(source, None, "no item columns".into()));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        let id = id.trim().to_string();
        if id.is_empty() {
            return Err(format_error(
                source,
                None,
                format!("item column {} has an empty name", i + 1),
            ));
        }
        if id.eq_ignore_ascii_case("person") {
            return Err(format_error(
                source,
                Some(&id),
                "`person` names the person ids, not an item: give them as the person ids".into(),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(format_error(source, Some(&id), "duplicate item column".into()));
        }
        out.push(id);
    }
    Ok(out)
}

/// Response data from a wide table: `cells` row-major, `n_persons` rows × `item_ids.len()` columns,
/// optionally one id per person (else persons are labelled by their 1-based row, as in a file without a
/// `person` column). `source` names the table in errors (`<DataFrame>`). Equal to what
/// [`etalon_items::read_responses_from`] reads from the same table written as wide CSV.
pub fn wide_responses<T: Cell>(
    item_ids: Vec<String>,
    person_ids: Option<Vec<String>>,
    n_persons: usize,
    cells: &[T],
    source: &str,
) -> Result<Responses, DataError> {
    let item_ids = check_item_ids(source, item_ids)?;
    let n_items = item_ids.len();
    if cells.len() != n_persons * n_items {
        return Err(format_error(
            source,
            None,
            format!("{} cells for {n_persons} persons × {n_items} items", cells.len()),
        ));
    }
    let person_ids: Option<Vec<String>> =
        person_ids.map(|ids| ids.into_iter().map(|p| p.trim().to_string()).collect());
    if let Some(ids) = &person_ids
        && ids.len() != n_persons
    {
        return Err(format_error(
            source,
            Some("person"),
            format!("{} person ids for {n_persons} rows", ids.len()),
        ));
    }
    // One pass: every cell a code, and whether each item's codes are exactly 0 … K-1.
    let mut seen = vec![[false; 256]; n_items];
    let mut small = true;
    for (p, row) in cells.chunks(n_items).enumerate() {
        for (j, &cell) in row.iter().enumerate() {
            match cell.code() {
                Ok(None) => {}
                Ok(Some(code)) => {
                    if (0..250).contains(&code) {
                        seen[j][code as usize] = true;
                    } else {
                        small = false;
                    }
                }
                Err(()) => {
                    let person = person_ids.as_ref().map(|ids| ids[p].as_str());
                    return Err(bad_cell(source, p, person, &item_ids[j], cell));
                }
            }
        }
    }
    let contiguous = small
        && seen.iter().all(|s| {
            let k = s.iter().take_while(|&&x| x).count();
            k > 0 && s[k..].iter().all(|&x| !x)
        });
    if contiguous {
        let bytes: Vec<u8> = cells
            .iter()
            .map(|&c| match c.code() {
                Ok(Some(code)) => code as u8,
                _ => etalon_items::MISSING,
            })
            .collect();
        let matrix = ResponseMatrix::from_categories(item_ids, n_persons, bytes);
        return Ok(Responses::Dense(match person_ids {
            Some(ids) => matrix.with_person_ids(ids),
            None => matrix,
        }));
    }
    // Other codes: the CSV reader assigns the categories.
    let mut w = csv::Writer::from_writer(Vec::with_capacity(cells.len() * 2 + 64));
    let csv_err = |e: csv::Error| format_error(source, None, e.to_string());
    if person_ids.is_some() {
        w.write_field("person").map_err(csv_err)?;
    }
    w.write_record(&item_ids).map_err(csv_err)?;
    for (p, row) in cells.chunks(n_items).enumerate() {
        if let Some(ids) = &person_ids {
            w.write_field(&ids[p]).map_err(csv_err)?;
        }
        for &c in row {
            match c.code() {
                Ok(Some(code)) => w.write_field(code.to_string()),
                _ => w.write_field(""),
            }
            .map_err(csv_err)?;
        }
        w.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    let text = w
        .into_inner()
        .map_err(|e| format_error(source, None, e.to_string()))?;
    ResponseMatrix::read_wide_from(text.as_slice(), source).map(Responses::Dense)
}

/// Response data from a long table — one answer per row: `persons[i]` answered `items[i]` with
/// `responses[i]` (missing answers skipped, as in a file) — equal to what
/// [`etalon_items::read_responses_from`] reads from the same rows written as long CSV: persons and
/// items in order of first appearance, each item's codes in increasing order, two answers of one
/// person to one item an error.
pub fn long_responses<T: Cell>(
    persons: &[String],
    items: &[String],
    responses: &[T],
    source: &str,
) -> Result<Responses, DataError> {
    if persons.len() != items.len() || items.len() != responses.len() {
        return Err(format_error(
            source,
            None,
            format!(
                "columns of different lengths: person {}, item {}, response {}",
                persons.len(),
                items.len(),
                responses.len()
            ),
        ));
    }
    let mut w = csv::Writer::from_writer(Vec::with_capacity(responses.len() * 16 + 32));
    let csv_err = |e: csv::Error| format_error(source, None, e.to_string());
    w.write_record(["person", "item", "response"]).map_err(csv_err)?;
    for (i, ((p, j), &r)) in persons.iter().zip(items).zip(responses).enumerate() {
        let code = match r.code() {
            Ok(Some(code)) => code.to_string(),
            Ok(None) => String::new(),
            Err(()) => return Err(bad_cell(source, i, Some(p), "response", r)),
        };
        w.write_record([p.as_str(), j.as_str(), code.as_str()])
            .map_err(csv_err)?;
    }
    let text = w
        .into_inner()
        .map_err(|e| format_error(source, None, e.to_string()))?;
    SparseResponses::read_long_from(text.as_slice(), source).map(Responses::Sparse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etalon_items::{DataFormat, read_responses_from};

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wide_tables_equal_their_csv() {
        let nan = f64::NAN;
        // 0/1 data with a missing cell (direct path), Likert codes 1–4 and a code never seen in one
        // item (through the CSV reader), with and without person ids.
        let cases: Vec<(Vec<f64>, &str)> = vec![
            (vec![0.0, 1.0, 1.0, nan, 0.0, 1.0], "q1,q2\n0,1\n1,\n0,1\n"),
            (vec![1.0, 4.0, 2.0, 3.0, 4.0, 1.0], "q1,q2\n1,4\n2,3\n4,1\n"),
            (vec![0.0, 2.0, 2.0, 0.0, 0.0, 2.0], "q1,q2\n0,2\n2,0\n0,2\n"),
            (vec![-1.0, 7.0, 300.0, nan, nan, 1.0], "q1,q2\n-1,7\n300,\n,1\n"),
        ];
        for (cells, csv) in cases {
            let from_csv = read_responses_from(csv.as_bytes(), DataFormat::Wide, "<t>").unwrap();
            let from_table = wide_responses(ids(&["q1", " q2"]), None, 3, &cells, "<t>").unwrap();
            assert_eq!(from_table, from_csv, "{csv}");
            let with_ids = format!("person,{}", csv.replace('\n', "\nP,").trim_end_matches("P,"));
            let with_ids = with_ids
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        l.to_string()
                    } else {
                        l.replacen("P", &format!("p{i}"), 1)
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let from_csv = read_responses_from(with_ids.as_bytes(), DataFormat::Wide, "<t>").unwrap();
            let persons = Some(ids(&["p1", "p2", "p3"]));
            let from_table = wide_responses(ids(&["q1", "q2"]), persons, 3, &cells, "<t>").unwrap();
            assert_eq!(from_table, from_csv, "{with_ids}");
        }
    }

    #[test]
    fn bad_cells_and_names_are_located_errors() {
        let e = wide_responses(ids(&["q1", "q2"]), None, 1, &[0.0, 0.5], "<DataFrame>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "<DataFrame>: column `q2`: row 1: `0.5` is not an integer response code"
        );
        let e = wide_responses(ids(&["q1", "q1"]), None, 1, &[0, 1], "<t>").unwrap_err();
        assert!(e.to_string().contains("duplicate item column"), "{e}");
        let e = wide_responses(ids(&["q1"]), None, 2, &[0i64], "<t>").unwrap_err();
        assert!(e.to_string().contains("1 cells for 2 persons × 1 items"), "{e}");
        let e = long_responses(&ids(&["a"]), &ids(&["q"]), &[f64::INFINITY], "<t>").unwrap_err();
        assert!(e.to_string().contains("row 1 (person `a`): `inf` is not"), "{e}");
    }

    #[test]
    fn long_tables_equal_their_csv() {
        let csv = "person,item,response\nb,q2,3\na,q1,1\nb,q1,2\na,q3,\n";
        let from_csv = read_responses_from(csv.as_bytes(), DataFormat::Long, "<t>").unwrap();
        let from_table = long_responses(
            &ids(&["b", "a", "b", "a"]),
            &ids(&["q2", "q1", "q1", "q3"]),
            &[3.0, 1.0, 2.0, f64::NAN],
            "<t>",
        )
        .unwrap();
        assert_eq!(from_table, from_csv);
        let e = long_responses(&ids(&["a", "a"]), &ids(&["q", "q"]), &[1, 0], "<t>").unwrap_err();
        assert!(e.to_string().contains("two responses"), "{e}");
    }
}
