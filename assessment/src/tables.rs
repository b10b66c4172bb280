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
    // One pass, in parallel over blocks of rows: every cell a code, its byte (category = code when
    // each item's codes turn out to be exactly 0 … K-1), each item's smallest and largest code.
    let mut bytes = vec![0; cells.len()];
    let scan = scan_cells(cells, &mut bytes, n_items);
    if let Some(at) = scan.bad {
        let (p, j) = (at / n_items, at % n_items);
        let person = person_ids.as_ref().map(|ids| ids[p].as_str());
        return Err(bad_cell(source, p, person, &item_ids[j], cells[at]));
    }
    let contiguous =
        scan.small && (0..n_items).all(|j| codes_from_zero(&bytes, n_items, j, scan.min[j], scan.max[j]));
    if contiguous {
        // The scan's largest codes are the largest categories (codes 0 … K-1).
        let matrix = ResponseMatrix::from_categories_unchecked(item_ids, n_persons, bytes, &scan.max);
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

/// What one pass over wide cells finds: each item's smallest and largest code below 250 (`MISSING`
/// and 0 when it has none), whether every code is below 250, and the first cell (row-major index) that
/// is not a code.
struct CellScan {
    min: Vec<u8>,
    max: Vec<u8>,
    small: bool,
    bad: Option<usize>,
}

impl CellScan {
    fn new(n_items: usize) -> Self {
        CellScan {
            min: vec![etalon_items::MISSING; n_items],
            max: vec![0; n_items],
            small: true,
            bad: None,
        }
    }

    /// Both scans' findings.
    fn merge(mut self, other: CellScan) -> Self {
        for (m, &o) in self.min.iter_mut().zip(&other.min) {
            *m = (*m).min(o);
        }
        for (m, &o) in self.max.iter_mut().zip(&other.max) {
            *m = (*m).max(o);
        }
        self.small &= other.small;
        self.bad = match (self.bad, other.bad) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }
}

/// Cells per block of the parallel scan (whole rows).
const SCAN_BLOCK: usize = 1 << 16;

/// Scan `cells` (rows of `n_items`) and write each cell's byte into `bytes` (a code below 250 as it
/// is, `MISSING` for missing cells and other codes), in parallel over blocks of rows. The findings do
/// not depend on the blocks (minima, maxima, conjunction, the smallest bad index). The loop has no
/// branch, so that the compiler can vectorise it for integer cells; a row with a bad cell is
/// searched again for the first one.
fn scan_cells<T: Cell>(cells: &[T], bytes: &mut [u8], n_items: usize) -> CellScan {
    use etalon_items::MISSING;
    use rayon::prelude::*;
    let block = (SCAN_BLOCK / n_items).max(1) * n_items;
    bytes
        .par_chunks_mut(block)
        .zip(cells.par_chunks(block))
        .enumerate()
        .fold(
            || CellScan::new(n_items),
            |mut scan, (b, (out, cells))| {
                // A fold takes its blocks in order: a bad cell found, later ones do not matter.
                if scan.bad.is_some() {
                    return scan;
                }
                let rows = out.chunks_mut(n_items).zip(cells.chunks(n_items));
                for (r, (out, row)) in rows.enumerate() {
                    let mut bad = false;
                    let mut small = true;
                    let cols = out
                        .iter_mut()
                        .zip(row)
                        .zip(scan.min.iter_mut().zip(&mut scan.max));
                    for ((o, &cell), (lo, hi)) in cols {
                        let (byte, fits) = match cell.code() {
                            Ok(Some(code)) => {
                                let fits = (0..250).contains(&code);
                                (if fits { code as u8 } else { MISSING }, fits)
                            }
                            Ok(None) => (MISSING, true),
                            Err(()) => {
                                bad = true;
                                (MISSING, true)
                            }
                        };
                        *o = byte;
                        small &= fits;
                        *lo = (*lo).min(byte);
                        *hi = (*hi).max(if byte == MISSING { 0 } else { byte });
                    }
                    scan.small &= small;
                    if bad {
                        let j = row.iter().position(|c| c.code().is_err()).unwrap_or(0);
                        scan.bad = Some(b * block + r * n_items + j);
                        return scan;
                    }
                }
                scan
            },
        )
        .reduce(|| CellScan::new(n_items), CellScan::merge)
}

/// Whether item `j`'s codes (categories in `bytes`, rows of `n_items`) are exactly 0 … `max`: its
/// smallest code is 0, and (when `max` > 1) every code between occurs, found by reading the column
/// until each has appeared.
fn codes_from_zero(bytes: &[u8], n_items: usize, j: usize, min: u8, max: u8) -> bool {
    if min != 0 {
        return false;
    }
    if max <= 1 {
        return true;
    }
    let mut seen = [false; 256];
    let mut missing = usize::from(max) + 1;
    for &c in bytes.iter().skip(j).step_by(n_items) {
        if c != etalon_items::MISSING && !seen[usize::from(c)] {
            seen[usize::from(c)] = true;
            missing -= 1;
            if missing == 0 {
                return true;
            }
        }
    }
    false
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

    /// A table of `n` rows × 3 items as cells and as wide CSV: item 1 binary, item 2 codes 0 … 3, item
    /// 3 `code3(p)`; with `missing`, row `p` is missing on item 1 when `p % 7 == 3`.
    fn table(n: usize, missing: bool, code3: impl Fn(usize) -> i64) -> (Vec<f64>, String) {
        let mut cells = Vec::with_capacity(3 * n);
        let mut csv = String::from("q1,q2,q3\n");
        for p in 0..n {
            let (c1, c2, c3) = ((p * 31 % 5 % 2) as i64, (p * 17 % 4) as i64, code3(p));
            let missing = missing && p % 7 == 3;
            cells.extend([if missing { f64::NAN } else { c1 as f64 }, c2 as f64, c3 as f64]);
            let c1 = if missing { String::new() } else { c1.to_string() };
            csv.push_str(&format!("{c1},{c2},{c3}\n"));
        }
        (cells, csv)
    }

    #[test]
    fn tables_over_many_blocks_equal_their_csv() {
        // More cells than one block of the parallel scan: codes from 0 with every code present (one
        // byte per cell directly), a code absent or negative or beyond a byte (the CSV reader), as
        // floats and as integers.
        let n = 2 * SCAN_BLOCK / 3 + 123;
        // Item 3's code in row p of n.
        type Code = fn(usize, usize) -> i64;
        let cases: [(&str, Code); 4] = [
            ("0 … 2", |p, _| (p % 3) as i64),
            ("0 and 2", |p, _| (p % 2 * 2) as i64),
            ("-1 … 1", |p, _| (p % 3) as i64 - 1),
            ("0 … 300 at the end", |p, n| {
                if p + 1 == n { 300 } else { (p % 2) as i64 }
            }),
        ];
        for (what, code3) in cases {
            for missing in [true, false] {
                let (cells, csv) = table(n, missing, |p| code3(p, n));
                let from_csv = read_responses_from(csv.as_bytes(), DataFormat::Wide, "<t>").unwrap();
                let item_ids = ids(&["q1", "q2", "q3"]);
                let from_floats = wide_responses(item_ids.clone(), None, n, &cells, "<t>").unwrap();
                assert_eq!(from_floats, from_csv, "{what}");
                if !missing {
                    let ints: Vec<i32> = cells.iter().map(|&c| c as i32).collect();
                    let from_ints = wide_responses(item_ids.clone(), None, n, &ints, "<t>").unwrap();
                    assert_eq!(from_ints, from_csv, "{what}");
                    if cells.iter().all(|&c| c.abs() < 128.0) {
                        let bytes: Vec<i8> = cells.iter().map(|&c| c as i8).collect();
                        let from_bytes = wide_responses(item_ids, None, n, &bytes, "<t>").unwrap();
                        assert_eq!(from_bytes, from_csv, "{what}");
                    }
                }
            }
        }
        // The first bad cell is the one reported, wherever the blocks fall.
        let (mut cells, _) = table(n, true, |p| (p % 3) as i64);
        cells[3 * (n - 2) + 1] = 0.5;
        cells[3 * (n / 2) + 2] = f64::INFINITY;
        cells[3 * 5 + 2] = -0.25;
        let persons: Vec<String> = (0..n).map(|p| format!("p{p}")).collect();
        let e = wide_responses(ids(&["q1", "q2", "q3"]), Some(persons), n, &cells, "<t>").unwrap_err();
        assert_eq!(
            e.to_string(),
            "<t>: column `q3`: row 6 (person `p5`): `-0.25` is not an integer response code"
        );
        cells[3 * 5 + 2] = 1.0;
        let e = wide_responses(ids(&["q1", "q2", "q3"]), None, n, &cells, "<t>").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "<t>: column `q3`: row {}: `inf` is not an integer response code",
                n / 2 + 1
            )
        );
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
