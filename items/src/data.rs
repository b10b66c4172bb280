//! Response data: who answered what.
//!
//! * [`ResponseMatrix`]: dense person × item matrix, one byte per cell, [`MISSING`] for a missing
//!   (not administered) cell — missing is never 0. Read from wide CSV.
//! * [`SparseResponses`]: each person's answers only, in compressed-row form; the natural shape of
//!   adaptive-test logs, read from long CSV (`person,item,response`).
//!
//! A cell holds a *category* 0 … K-1: the distinct integer codes observed for an item, in increasing
//! order, are its categories, and [`ResponseMatrix::codes`] keeps the original codes so that results
//! can be written back in the user's coding (`FORMATS.md`).

use crate::bank::Bank;
use crate::error::DataError;
use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;

/// The byte that marks a missing response.
pub const MISSING: u8 = u8::MAX;
/// The largest number of distinct codes per item in a data file.
pub const MAX_CODES: usize = 250;

/// The longest line a CSV response file may hold (16 MiB: a wide header of a million item ids fits).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A reader that fails, with an [`std::io::ErrorKind::InvalidData`] error naming the line, as soon as
/// a line grows longer than its limit: endless input without newlines (`/dev/zero`, a binary file, a
/// file of another kind) is refused in bounded memory instead of being buffered whole.
#[derive(Debug)]
pub struct LineLimit<R> {
    inner: R,
    limit: usize,
    /// Bytes since the last newline.
    since_newline: usize,
    /// Newlines seen.
    newlines: u64,
}

impl<R> LineLimit<R> {
    /// Wrap `inner`, allowing lines of at most `limit` bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        LineLimit {
            inner,
            limit,
            since_newline: 0,
            newlines: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut rest = &buf[..n];
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.since_newline + i > self.limit {
                return Err(self.too_long());
            }
            self.newlines += 1;
            self.since_newline = 0;
            rest = &rest[i + 1..];
        }
        self.since_newline += rest.len();
        if self.since_newline > self.limit {
            return Err(self.too_long());
        }
        Ok(n)
    }
}

impl<R> LineLimit<R> {
    fn too_long(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "line {} is longer than {}: not a CSV file of lines (a binary file?)",
                self.newlines + 1,
                human_bytes(self.limit as u64)
            ),
        )
    }
}

/// `n` bytes as people read them: `16 MiB`, `512 KiB`, `100 bytes`.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// `s` cut to at most `max` characters, with an ellipsis when cut (messages never echo megabytes).
pub(crate) fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Which CSV layout a response file uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataFormat {
    /// Header of item ids (optional first column `person`), one row per person.
    #[default]
    Wide,
    /// `person,item,response`, one row per answer.
    Long,
}

/// Dense responses: `n_persons × n_items` bytes, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseMatrix {
    item_ids: Vec<String>,
    person_ids: Option<Vec<String>>,
    codes: Vec<Vec<i64>>,
    n_persons: usize,
    cells: Vec<u8>,
}

/// Sparse responses in compressed-row form: person p answered `items[offsets[p]..offsets[p+1]]`
/// with categories `categories[offsets[p]..offsets[p+1]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseResponses {
    item_ids: Vec<String>,
    person_ids: Vec<String>,
    codes: Vec<Vec<i64>>,
    offsets: Vec<usize>,
    items: Vec<u32>,
    categories: Vec<u8>,
}

/// Either layout, as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Responses {
    /// From a wide file.
    Dense(ResponseMatrix),
    /// From a long file.
    Sparse(SparseResponses),
}

/// Maps each item's codes, as they are met, to provisional categories, then to sorted categories.
struct CodeBook {
    /// Per item: the distinct codes in order of first appearance.
    seen: Vec<Vec<i64>>,
    /// Per item: direct lookup for codes 0..=15 (the common case), 0 = unseen, else index + 1.
    small: Vec<[u8; 16]>,
}

impl CodeBook {
    fn new(n_items: usize) -> Self {
        CodeBook {
            seen: vec![Vec::new(); n_items],
            small: vec![[0; 16]; n_items],
        }
    }

    /// The provisional category of `code` for `item`, or `None` when the item has too many codes.
    #[inline]
    fn provisional(&mut self, item: usize, code: i64) -> Option<u8> {
        if (0..16).contains(&code) {
            let slot = &mut self.small[item][code as usize];
            if *slot != 0 {
                return Some(*slot - 1);
            }
        }
        let seen = &mut self.seen[item];
        let idx = match seen.iter().position(|&c| c == code) {
            Some(i) => i,
            None => {
                if seen.len() >= MAX_CODES {
                    return None;
                }
                seen.push(code);
                seen.len() - 1
            }
        };
        if (0..16).contains(&code) {
            self.small[item][code as usize] = idx as u8 + 1;
        }
        Some(idx as u8)
    }

    /// Sorted codes per item and, per item, the map provisional → final category.
    fn finish(self) -> (Vec<Vec<i64>>, Vec<Vec<u8>>) {
        let mut codes = Vec::with_capacity(self.seen.len());
        let mut remap = Vec::with_capacity(self.seen.len());
        for seen in self.seen {
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            let map = seen
                .iter()
                .map(|c| sorted.binary_search(c).map_or(MISSING, |i| i as u8))
                .collect();
            codes.push(sorted);
            remap.push(map);
        }
        (codes, remap)
    }
}

/// Parse one cell: `Ok(None)` for empty / `NA`, the integer code otherwise.
#[inline]
fn parse_cell(cell: &[u8]) -> Result<Option<i64>, ()> {
    let t = cell.trim_ascii();
    if t.is_empty() || t == b"NA" {
        return Ok(None);
    }
    // Fast path for small non-negative integers.
    if t.len() <= 3 && t.iter().all(u8::is_ascii_digit) {
        return Ok(Some(
            t.iter().fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')),
        ));
    }
    std::str::from_utf8(t)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .map(Some)
        .ok_or(())
}

/// A reader that gunzips its input when it starts with the gzip magic bytes (so uploads and files
/// need no `.gz` name to be read), buffered.
pub fn maybe_gunzip<'a>(reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = std::io::BufReader::with_capacity(1 << 20, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Open a file for reading, with located errors.
#[cfg(feature = "fs")]
pub(crate) fn open_file(path: &Path) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            DataError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DataError::Format {
            path: path.to_path_buf(),
            line,
            column: None,
            message: format!(
                "{len} field{}, but the header has {expected_len}",
                if len == 1 { "" } else { "s" }
            ),
        },
        other => DataError::Format {
            path: path.to_path_buf(),
            line,
            column: None,
            message: format!("{other:?}"),
        },
    }
}

fn header_names(path: &Path, header: &csv::ByteRecord) -> Result<Vec<String>, DataError> {
    let mut names = Vec::with_capacity(header.len());
    let mut seen = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        // A byte-order mark (spreadsheets write one) is not part of the first name.
        let h = if i == 0 {
            h.strip_prefix("\u{feff}".as_bytes()).unwrap_or(h)
        } else {
            h
        };
        let name = std::str::from_utf8(h)
            .map_err(|_| DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: None,
                message: format!("header field {} is not UTF-8 text", i + 1),
            })?
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: None,
                message: format!("header field {} is empty", i + 1),
            });
        }
        if let Some(sep) = [('\t', "tab"), (';', "semicolon")]
            .into_iter()
            .find(|&(c, _)| name.contains(c) && (c == '\t' || header.len() == 1))
        {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: Some(cut(&name, 60)),
                message: format!(
                    "a column name with {}s in it: {}-separated? Response files are comma-separated CSV",
                    sep.1, sep.1
                ),
            });
        }
        if let Some(first) = seen.insert(name.clone(), i) {
            let hint = if name.parse::<f64>().is_ok() {
                ": no header? The first line must name the items (and `person`)"
            } else {
                ""
            };
            return Err(DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: Some(cut(&name, 60)),
                message: format!("duplicate column (also column {}){hint}", first + 1),
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// A CSV reader over a (possibly gunzipped) file.
type CsvReader<'a> = csv::Reader<Box<dyn std::io::Read + 'a>>;

/// Start reading CSV response data and read its header (empty input: [`DataError::Empty`]).
fn open_csv<'a>(input: impl Read + 'a, path: &Path) -> Result<(CsvReader<'a>, Vec<String>), DataError> {
    let input = maybe_gunzip(input).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let input: Box<dyn Read + 'a> = Box::new(LineLimit::new(input, MAX_LINE_BYTES));
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(input);
    let header = reader.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    if header.is_empty() || (header.len() == 1 && header[0].trim_ascii().is_empty()) {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    let names = header_names(path, &header)?;
    Ok((reader, names))
}

fn bad_code(path: &Path, line: u64, column: &str, cell: &[u8]) -> DataError {
    let cell = &cell[..cell.len().min(400)];
    DataError::Format {
        path: path.to_path_buf(),
        line,
        column: Some(cut(column, 60)),
        message: format!(
            "`{}` is not an integer response code",
            cut(&String::from_utf8_lossy(cell.trim_ascii()), 40)
        ),
    }
}

fn too_many_codes(path: &Path, line: u64, column: &str) -> DataError {
    DataError::Format {
        path: path.to_path_buf(),
        line,
        column: Some(cut(column, 60)),
        message: format!("more than {MAX_CODES} distinct response codes"),
    }
}

/// Read a response file in either layout (gzip-compressed or not).
#[cfg(feature = "fs")]
pub fn read_responses(path: impl AsRef<Path>, format: DataFormat) -> Result<Responses, DataError> {
    let path = path.as_ref();
    read_responses_from(open_file(path)?, format, path)
}

/// Read response data in either layout from any reader (an upload, a pipe, a file); `source` names it
/// in errors. Gzip-compressed input is recognised by its first bytes.
pub fn read_responses_from(
    input: impl Read,
    format: DataFormat,
    source: impl AsRef<Path>,
) -> Result<Responses, DataError> {
    match format {
        DataFormat::Wide => ResponseMatrix::read_wide_from(input, source).map(Responses::Dense),
        DataFormat::Long => SparseResponses::read_long_from(input, source).map(Responses::Sparse),
    }
}

/// Each item's largest category in row-major `cells` of `n_items` columns (0 where all are missing).
fn largest_categories(cells: &[u8], n_items: usize) -> Vec<u8> {
    let mut max = vec![0u8; n_items];
    // Branch-free (a missing cell counts as 0), so that the loop is vectorised.
    for row in cells.chunks(n_items.max(1)) {
        for (m, &c) in max.iter_mut().zip(row) {
            *m = (*m).max(if c == MISSING { 0 } else { c });
        }
    }
    max
}

impl ResponseMatrix {
    /// Build from categories already coded 0 … K-1 (`MISSING` for missing). Codes default to 0 … max.
    pub fn from_categories(item_ids: Vec<String>, n_persons: usize, cells: Vec<u8>) -> Self {
        assert_eq!(
            cells.len(),
            n_persons * item_ids.len(),
            "cells must be n_persons × n_items"
        );
        let max = largest_categories(&cells, item_ids.len());
        Self::from_categories_unchecked(item_ids, n_persons, cells, &max)
    }

    /// As [`ResponseMatrix::from_categories`], given each item's largest category (0 for an item
    /// without answers) by a caller that has already scanned the cells, so that they are not read
    /// again. The caller vouches for `max`: it is checked in debug builds only, and a wrong one gives
    /// items the wrong number of codes.
    ///
    /// # Panics
    /// If `cells` is not n_persons × n_items or `max` does not hold one value per item; in debug
    /// builds, if `max` is not the cells' largest categories.
    pub fn from_categories_unchecked(
        item_ids: Vec<String>,
        n_persons: usize,
        cells: Vec<u8>,
        max: &[u8],
    ) -> Self {
        let n_items = item_ids.len();
        assert_eq!(
            cells.len(),
            n_persons * n_items,
            "cells must be n_persons × n_items"
        );
        assert_eq!(max.len(), n_items, "one largest category per item");
        debug_assert_eq!(largest_categories(&cells, n_items), max);
        let codes = max.iter().map(|&m| (0..=i64::from(m)).collect()).collect();
        ResponseMatrix {
            item_ids,
            person_ids: None,
            codes,
            n_persons,
            cells,
        }
    }

    /// The same responses with an id per person (the `person` column of a wide file).
    ///
    /// # Panics
    /// If `ids` does not hold one id per person.
    pub fn with_person_ids(mut self, ids: Vec<String>) -> Self {
        assert_eq!(ids.len(), self.n_persons, "one id per person");
        self.person_ids = Some(ids);
        self
    }

    /// Write as a wide CSV file: the `person` column when the persons have ids, the item ids, each
    /// cell's code (empty when missing).
    pub fn write_wide(&self, output: impl std::io::Write) -> csv::Result<()> {
        let mut w = csv::Writer::from_writer(output);
        let ids = self.person_ids.as_deref();
        if ids.is_some() {
            w.write_field("person")?;
        }
        w.write_record(&self.item_ids)?;
        for p in 0..self.n_persons {
            if let Some(ids) = ids {
                w.write_field(&ids[p])?;
            }
            for (j, &c) in self.row(p).iter().enumerate() {
                if c == MISSING {
                    w.write_field("")?;
                } else {
                    w.write_field(self.codes[j][usize::from(c)].to_string())?;
                }
            }
            w.write_record(None::<&[u8]>)?;
        }
        w.flush()?;
        Ok(())
    }

    /// Read a wide CSV file (see `FORMATS.md`).
    #[cfg(feature = "fs")]
    pub fn read_wide(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        Self::read_wide_from(open_file(path)?, path)
    }

    /// Read wide CSV from any reader; `source` names it in errors.
    pub fn read_wide_from(input: impl Read, source: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = source.as_ref();
        let (mut reader, names) = open_csv(input, path)?;
        let mut lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        lower.sort();
        if lower == ["item", "person", "response"] {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: None,
                message: "the columns person,item,response are those of a long file: read it with \
                          `--format long` (a wide file names one column per item)"
                    .into(),
            });
        }
        let has_person = names[0].eq_ignore_ascii_case("person");
        let first_item = usize::from(has_person);
        let item_ids: Vec<String> = names[first_item..].to_vec();
        let n_items = item_ids.len();
        if n_items == 0 {
            return Err(DataError::Format {
                path: path.to_path_buf(),
                line: 1,
                column: None,
                message: "no item columns".into(),
            });
        }
        let mut book = CodeBook::new(n_items);
        let mut cells: Vec<u8> = Vec::new();
        let mut person_ids = has_person.then(Vec::new);
        let mut record = csv::ByteRecord::new();
        let mut n_persons = 0usize;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(path, e)),
            }
            let line = record.position().map_or(0, |p| p.line());
            if let Some(ids) = person_ids.as_mut() {
                ids.push(String::from_utf8_lossy(record[0].trim_ascii()).into_owned());
            }
            for (j, cell) in record.iter().skip(first_item).enumerate() {
                let v = match parse_cell(cell) {
                    Ok(None) => MISSING,
                    Ok(Some(code)) => book
                        .provisional(j, code)
                        .ok_or_else(|| too_many_codes(path, line, &item_ids[j]))?,
                    Err(()) => return Err(bad_code(path, line, &item_ids[j], cell)),
                };
                cells.push(v);
            }
            n_persons += 1;
        }
        let (codes, remap) = book.finish();
        if remap
            .iter()
            .any(|m| m.iter().enumerate().any(|(i, &v)| v as usize != i))
        {
            for row in cells.chunks_mut(n_items) {
                for (c, map) in row.iter_mut().zip(&remap) {
                    if *c != MISSING {
                        *c = map[*c as usize];
                    }
                }
            }
        }
        cells.shrink_to_fit();
        Ok(ResponseMatrix {
            item_ids,
            person_ids,
            codes,
            n_persons,
            cells,
        })
    }

    /// Number of persons (rows).
    pub fn n_persons(&self) -> usize {
        self.n_persons
    }
    /// Number of items (columns).
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    /// Item ids, in column order.
    pub fn item_ids(&self) -> &[String] {
        &self.item_ids
    }
    /// Person ids from the `person` column, if the file had one.
    pub fn person_ids(&self) -> Option<&[String]> {
        self.person_ids.as_deref()
    }
    /// The label of person `p`: the id, else the 1-based row number.
    pub fn person_label(&self, p: usize) -> String {
        match &self.person_ids {
            Some(ids) => ids[p].clone(),
            None => (p + 1).to_string(),
        }
    }
    /// Original codes of item `j`'s categories.
    pub fn codes(&self, j: usize) -> &[i64] {
        &self.codes[j]
    }
    /// Row `p`: one category (or `MISSING`) per item.
    pub fn row(&self, p: usize) -> &[u8] {
        let n = self.n_items();
        &self.cells[p * n..(p + 1) * n]
    }
    /// All cells, row-major.
    pub fn cells(&self) -> &[u8] {
        &self.cells
    }
    /// Bytes held by the cells.
    pub fn heap_bytes(&self) -> usize {
        self.cells.capacity()
    }
    /// The same responses in sparse form (missing cells dropped).
    pub fn to_sparse(&self) -> SparseResponses {
        let n = self.n_items();
        let mut offsets = Vec::with_capacity(self.n_persons + 1);
        offsets.push(0);
        let observed = self.cells.iter().filter(|&&c| c != MISSING).count();
        let mut items = Vec::with_capacity(observed);
        let mut categories = Vec::with_capacity(observed);
        for p in 0..self.n_persons {
            for (j, &c) in self.cells[p * n..(p + 1) * n].iter().enumerate() {
                if c != MISSING {
                    items.push(j as u32);
                    categories.push(c);
                }
            }
            offsets.push(items.len());
        }
        SparseResponses {
            item_ids: self.item_ids.clone(),
            person_ids: (0..self.n_persons).map(|p| self.person_label(p)).collect(),
            codes: self.codes.clone(),
            offsets,
            items,
            categories,
        }
    }
}

impl SparseResponses {
    /// Read a long CSV file: header `person,item,response` (in any order), one row per answer.
    #[cfg(feature = "fs")]
    pub fn read_long(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        Self::read_long_from(open_file(path)?, path)
    }

    /// Read long CSV from any reader; `source` names it in errors.
    pub fn read_long_from(input: impl Read, source: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = source.as_ref();
        let (mut reader, names) = open_csv(input, path)?;
        let hint = if names.iter().any(|n| n.parse::<f64>().is_ok()) {
            "; no header? The first line must be person,item,response"
        } else if !names.iter().any(|h| h.eq_ignore_ascii_case("item")) {
            "; a wide file (one column per item)? Leave out `--format long`"
        } else {
            ""
        };
        let find = |n: &str| {
            names
                .iter()
                .position(|h| h.eq_ignore_ascii_case(n))
                .ok_or_else(|| DataError::Format {
                    path: path.to_path_buf(),
                    line: 1,
                    column: Some(n.to_string()),
                    message: format!("missing required column (a long file has person,item,response){hint}"),
                })
        };
        let (pc, ic, rc) = (find("person")?, find("item")?, find("response")?);
        let mut person_index: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut item_index: HashMap<Vec<u8>, u32> = HashMap::new();
        let (mut person_ids, mut item_ids) = (Vec::new(), Vec::new());
        let mut book = CodeBook::new(0);
        let (mut ps, mut is, mut cs) = (Vec::new(), Vec::new(), Vec::new());
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(path, e)),
            }
            let line = record.position().map_or(0, |p| p.line());
            let code = match parse_cell(&record[rc]) {
                Ok(Some(c)) => c,
                Ok(None) => continue, // an explicit missing answer carries no information
                Err(()) => return Err(bad_code(path, line, "response", &record[rc])),
            };
            let intern = |index: &mut HashMap<Vec<u8>, u32>, ids: &mut Vec<String>, key: &[u8]| -> u32 {
                let key = key.trim_ascii();
                if let Some(&i) = index.get(key) {
                    return i;
                }
                let i = ids.len() as u32;
                ids.push(String::from_utf8_lossy(key).into_owned());
                index.insert(key.to_vec(), i);
                i
            };
            let p = intern(&mut person_index, &mut person_ids, &record[pc]);
            let i = intern(&mut item_index, &mut item_ids, &record[ic]);
            if i as usize >= book.seen.len() {
                book.seen.push(Vec::new());
                book.small.push([0; 16]);
            }
            let c = book
                .provisional(i as usize, code)
                .ok_or_else(|| too_many_codes(path, line, &item_ids[i as usize]))?;
            ps.push(p);
            is.push(i);
            cs.push(c);
        }
        let (codes, remap) = book.finish();
        // Counting sort by person, keeping file order within a person.
        let n_persons = person_ids.len();
        let mut offsets = vec![0usize; n_persons + 1];
        for &p in &ps {
            offsets[p as usize + 1] += 1;
        }
        for k in 0..n_persons {
            offsets[k + 1] += offsets[k];
        }
        let mut next = offsets.clone();
        let mut items = vec![0u32; ps.len()];
        let mut categories = vec![0u8; ps.len()];
        for ((&p, &i), &c) in ps.iter().zip(&is).zip(&cs) {
            let at = next[p as usize];
            items[at] = i;
            categories[at] = remap[i as usize][c as usize];
            next[p as usize] += 1;
        }
        // Two answers of one person to one item are an error, never silently merged.
        let mut scratch = Vec::new();
        for p in 0..n_persons {
            scratch.clear();
            scratch.extend_from_slice(&items[offsets[p]..offsets[p + 1]]);
            scratch.sort_unstable();
            if let Some(w) = scratch.windows(2).find(|w| w[0] == w[1]) {
                return Err(DataError::DuplicateResponse {
                    path: path.to_path_buf(),
                    person: cut(&person_ids[p], 60),
                    item: cut(&item_ids[w[0] as usize], 60),
                });
            }
        }
        Ok(SparseResponses {
            item_ids,
            person_ids,
            codes,
            offsets,
            items,
            categories,
        })
    }

    /// Build from compressed rows: person p answered `items[offsets[p]..offsets[p+1]]` with
    /// `categories[…]`. Panics if the parts are inconsistent (a programming error, not user input).
    pub fn from_parts(
        item_ids: Vec<String>,
        person_ids: Vec<String>,
        codes: Vec<Vec<i64>>,
        offsets: Vec<usize>,
        items: Vec<u32>,
        categories: Vec<u8>,
    ) -> Self {
        assert_eq!(
            offsets.len(),
            person_ids.len() + 1,
            "one offset per person, plus one"
        );
        assert_eq!(codes.len(), item_ids.len(), "one code list per item");
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]) && offsets.first() == Some(&0));
        assert!(offsets.last() == Some(&items.len()) && items.len() == categories.len());
        assert!(items.iter().all(|&j| (j as usize) < item_ids.len()));
        SparseResponses {
            item_ids,
            person_ids,
            codes,
            offsets,
            items,
            categories,
        }
    }

    /// Number of persons.
    pub fn n_persons(&self) -> usize {
        self.person_ids.len()
    }
    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    /// Number of recorded answers.
    pub fn n_responses(&self) -> usize {
        self.items.len()
    }
    /// Item ids.
    pub fn item_ids(&self) -> &[String] {
        &self.item_ids
    }
    /// Person ids, in order of first appearance.
    pub fn person_ids(&self) -> &[String] {
        &self.person_ids
    }
    /// Original codes of item `j`'s categories.
    pub fn codes(&self, j: usize) -> &[i64] {
        &self.codes[j]
    }
    /// Person `p`'s answers: item indices and categories.
    pub fn person(&self, p: usize) -> (&[u32], &[u8]) {
        let r = self.offsets[p]..self.offsets[p + 1];
        (&self.items[r.clone()], &self.categories[r])
    }
}

impl Responses {
    /// Number of persons.
    pub fn n_persons(&self) -> usize {
        match self {
            Responses::Dense(m) => m.n_persons(),
            Responses::Sparse(s) => s.n_persons(),
        }
    }
    /// Item ids.
    pub fn item_ids(&self) -> &[String] {
        match self {
            Responses::Dense(m) => m.item_ids(),
            Responses::Sparse(s) => s.item_ids(),
        }
    }
    /// Original codes of item `j`.
    pub fn codes(&self, j: usize) -> &[i64] {
        match self {
            Responses::Dense(m) => m.codes(j),
            Responses::Sparse(s) => s.codes(j),
        }
    }
    /// Label of person `p` (id, else 1-based row number).
    pub fn person_label(&self, p: usize) -> String {
        match self {
            Responses::Dense(m) => m.person_label(p),
            Responses::Sparse(s) => s.person_ids[p].clone(),
        }
    }
    /// Call `f(item, category)` for each answer of person `p` (data item indices).
    #[inline]
    pub fn for_each_answer(&self, p: usize, mut f: impl FnMut(usize, u8)) {
        match self {
            Responses::Dense(m) => {
                for (j, &c) in m.row(p).iter().enumerate() {
                    if c != MISSING {
                        f(j, c);
                    }
                }
            }
            Responses::Sparse(s) => {
                let (items, cats) = s.person(p);
                for (&j, &c) in items.iter().zip(cats) {
                    f(j as usize, c);
                }
            }
        }
    }

    /// Map the data onto a bank: for each data item, its bank position and the bank category of each
    /// data category. Codes go through the bank's recorded codes; for an item without recorded codes,
    /// data codes 0 … K-1 are taken as they are, and otherwise, for a polytomous item (Likert 1–4 for a
    /// 4-category item, say), the observed codes in increasing order are the categories if there are
    /// exactly K of them. Dichotomous items without recorded codes take 0/1 only.
    pub fn align(&self, bank: &Bank) -> Result<Alignment, DataError> {
        let ids = self.item_ids();
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| bank.position(id).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(DataError::UnknownItems(missing));
        }
        let mut columns = Vec::with_capacity(ids.len());
        let mut categories = Vec::with_capacity(ids.len());
        for (j, id) in ids.iter().enumerate() {
            let pos = bank.position(id).unwrap_or_else(|| unreachable!("checked above"));
            let item = &bank.items()[pos];
            let data_codes = self.codes(j);
            let k = item.parameters.categories();
            let in_range = data_codes.iter().all(|&c| item.category_of(c).is_some());
            let map: Vec<u8> = if in_range {
                data_codes
                    .iter()
                    .map(|&c| item.category_of(c).map_or(MISSING, |x| x as u8))
                    .collect()
            } else if item.codes.is_none() && item.parameters.kind().is_polytomous() && data_codes.len() == k
            {
                (0..k as u8).collect()
            } else {
                let code = data_codes
                    .iter()
                    .copied()
                    .find(|&c| item.category_of(c).is_none())
                    .unwrap_or_default();
                return Err(DataError::UnknownCode {
                    item: id.clone(),
                    code,
                    allowed: item.response_codes(),
                });
            };
            columns.push(pos);
            categories.push(map);
        }
        Ok(Alignment { columns, categories })
    }
}

/// How data columns map onto a bank (see [`Responses::align`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Bank position of each data item.
    pub columns: Vec<usize>,
    /// For each data item, bank category of each data category.
    pub categories: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_limit_passes_short_lines_and_refuses_a_long_one_naming_it() {
        let text = b"a,b\n1,0\n0123456789\n";
        let mut out = Vec::new();
        LineLimit::new(&text[..], 10).read_to_end(&mut out).unwrap();
        assert_eq!(out, text);
        let mut out = Vec::new();
        let e = LineLimit::new(&text[..], 9).read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().starts_with("line 3 is longer than 9 bytes"), "{e}");
        // Endless input without newlines stops after the limit.
        let mut endless = LineLimit::new(std::io::repeat(0), 1 << 16);
        let e = std::io::copy(&mut endless, &mut std::io::sink()).unwrap_err();
        assert!(e.to_string().starts_with("line 1 is longer than 64 KiB"), "{e}");
    }

    #[test]
    fn header_hints_name_the_likely_cause() {
        let err = |text: &str, format| {
            read_responses_from(text.as_bytes(), format, "x.csv")
                .unwrap_err()
                .to_string()
        };
        assert!(err("q1\tq2\n1\t0\n", DataFormat::Wide).contains("tab-separated"));
        assert!(err("q1;q2\n1;0\n", DataFormat::Wide).contains("semicolon-separated"));
        assert!(err("person,item,response\np,q,1\n", DataFormat::Wide).contains("--format long"));
        assert!(err("1,0,1\n0,1,1\n", DataFormat::Wide).contains("no header?"));
        assert!(err("q1,q2\n1,0\n", DataFormat::Long).contains("Leave out `--format long`"));
        let cell = "9".repeat(1 << 20);
        assert!(err(&format!("q1\n{cell}x\n"), DataFormat::Wide).len() < 300);
        // A byte-order mark is not part of the first column's name.
        let r =
            read_responses_from("\u{feff}person,q1\np,1\n".as_bytes(), DataFormat::Wide, "x.csv").unwrap();
        assert_eq!(r.item_ids(), ["q1"]);
    }
}
