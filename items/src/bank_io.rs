//! Reading and writing banks as CSV or JSON, the format chosen by the file extension
//! (`.csv`, `.json`, either optionally followed by `.gz`), and importing mirt's parameter tables.
//!
//! CSV columns (`FORMATS.md`): `id`, `model`, `a`, `b`, `c`, `d`, `b1` … `bK`, then optional
//! `competence`, `status`, `codes` (original response codes joined by `;`), `exposure`
//! (Sympson–Hetter parameter) and `se_a`, `se_b`, … standard errors. Every problem of a file is
//! reported in one pass, each with its line, item and column.

use crate::bank::{Bank, Provenance};
use crate::error::{BankError, Problem, Problems};
use crate::framework::Framework;
use crate::item::{Item, Status};
use crate::model::{ItemModel, ModelKind};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The two bank formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankFormat {
    /// One row per item.
    Csv,
    /// The full bank.
    Json,
}

/// The format and compression a path's extension names.
pub fn bank_format(path: &Path) -> Result<(BankFormat, bool), BankError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (stem, gz) = match name.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (name, false),
    };
    if stem.ends_with(".csv") {
        Ok((BankFormat::Csv, gz))
    } else if stem.ends_with(".json") {
        Ok((BankFormat::Json, gz))
    } else {
        Err(BankError::UnsupportedExtension {
            path: path.to_path_buf(),
        })
    }
}

/// Read a whole file (gunzipping `.gz`), mapping I/O failures to located errors.
pub(crate) fn read_bytes(path: &Path, gz: bool) -> Result<Vec<u8>, std::io::Error> {
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    if gz {
        flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)).read_to_end(&mut buf)?;
    } else {
        std::io::BufReader::new(file).read_to_end(&mut buf)?;
    }
    Ok(buf)
}

fn io_error(path: &Path, e: std::io::Error) -> BankError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BankError::NotFound {
            path: path.to_path_buf(),
        }
    } else {
        BankError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Bytes → text, or the line of the first invalid byte.
fn utf8_text(path: &Path, bytes: Vec<u8>) -> Result<String, BankError> {
    String::from_utf8(bytes).map_err(|e| {
        let upto = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..upto].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        BankError::NotUtf8 {
            path: path.to_path_buf(),
            line,
        }
    })
}

/// Read a bank; the extension chooses the format.
pub fn read_bank(path: impl AsRef<Path>) -> Result<Bank, BankError> {
    let path = path.as_ref();
    let (format, gz) = bank_format(path)?;
    let bytes = read_bytes(path, gz).map_err(|e| io_error(path, e))?;
    let text = utf8_text(path, bytes)?;
    if text.trim().is_empty() {
        return Err(BankError::Empty {
            path: path.to_path_buf(),
        });
    }
    match format {
        BankFormat::Json => Bank::from_json(&text, path),
        BankFormat::Csv => bank_from_csv(&text, path),
    }
}

/// Write a bank; the extension chooses the format. CSV keeps parameters, competence, status, codes,
/// exposure and standard errors; the framework, content, tutorials and tags need JSON.
pub fn write_bank(bank: &Bank, path: impl AsRef<Path>) -> Result<(), BankError> {
    let path = path.as_ref();
    let (format, gz) = bank_format(path)?;
    let text = match format {
        BankFormat::Json => bank.to_json() + "\n",
        BankFormat::Csv => bank_to_csv(bank),
    };
    let io = |e| BankError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    if gz {
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        enc.write_all(text.as_bytes()).map_err(io)?;
        enc.finish().map_err(io)?;
    } else {
        let mut w = std::io::BufWriter::new(file);
        w.write_all(text.as_bytes()).map_err(io)?;
        w.flush().map_err(io)?;
    }
    Ok(())
}

/// Known CSV bank columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Column {
    Id,
    Model,
    A,
    B,
    C,
    D,
    Threshold(usize),
    Competence,
    Status,
    Codes,
    Exposure,
    Se(String),
}

fn parse_column(name: &str) -> Option<Column> {
    let n = name.trim();
    Some(match n {
        "id" => Column::Id,
        "model" => Column::Model,
        "a" => Column::A,
        "b" => Column::B,
        "c" => Column::C,
        "d" => Column::D,
        "competence" => Column::Competence,
        "status" => Column::Status,
        "codes" => Column::Codes,
        "exposure" => Column::Exposure,
        _ => {
            if let Some(k) = n.strip_prefix("se_") {
                let valid = matches!(k, "a" | "b" | "c" | "d")
                    || k.strip_prefix('b')
                        .and_then(|x| x.parse::<usize>().ok())
                        .is_some_and(|x| x >= 1);
                return valid.then(|| Column::Se(k.to_string()));
            }
            let k = n.strip_prefix('b')?.parse::<usize>().ok()?;
            if k == 0 {
                return None;
            }
            Column::Threshold(k)
        }
    })
}

fn csv_error_problem(e: &csv::Error) -> Problem {
    let line = e.position().map(|p| p.line());
    let msg = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_string(),
        _ => e.to_string(),
    };
    let mut p = Problem::new(msg);
    p.line = line;
    p
}

fn parse_number(cell: &str) -> Result<Option<f64>, String> {
    let t = cell.trim();
    if t.is_empty() || t == "NA" {
        return Ok(None);
    }
    t.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("`{t}` is not a number"))
}

/// Parse a CSV bank (see the module docs), collecting every problem.
pub fn bank_from_csv(text: &str, path: &Path) -> Result<Bank, BankError> {
    let invalid = |problems: Vec<Problem>| BankError::Invalid {
        path: path.to_path_buf(),
        problems: Problems(problems),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(invalid(vec![csv_error_problem(&e)])),
        None => {
            return Err(BankError::Empty {
                path: path.to_path_buf(),
            });
        }
    };
    let mut problems = Vec::new();
    let mut columns: Vec<Option<Column>> = Vec::with_capacity(header.len());
    let mut seen: HashMap<Column, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        match parse_column(name) {
            None => {
                problems.push(
                    Problem::new(format!("unknown column `{name}`"))
                        .at_line(1)
                        .in_field(name),
                );
                columns.push(None);
            }
            Some(col) => {
                if let Some(first) = seen.insert(col.clone(), i) {
                    problems.push(
                        Problem::new(format!("duplicate column (also column {})", first + 1))
                            .at_line(1)
                            .in_field(name.trim()),
                    );
                    columns.push(None);
                } else {
                    columns.push(Some(col));
                }
            }
        }
    }
    for (required, name) in [(Column::Id, "id"), (Column::Model, "model")] {
        if !seen.contains_key(&required) {
            problems.push(
                Problem::new(format!("missing required column `{name}`"))
                    .at_line(1)
                    .in_field(name),
            );
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let n_fields = header.len();
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_error_problem(&e));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec.get(0).is_some_and(|s| s.trim().is_empty()) {
            continue; // blank line
        }
        let id = seen
            .get(&Column::Id)
            .and_then(|&i| rec.get(i))
            .unwrap_or("")
            .trim()
            .to_string();
        let at = |p: Problem| {
            let p = p.at_line(line);
            if id.is_empty() { p } else { p.for_item(id.clone()) }
        };
        if rec.len() != n_fields {
            problems.push(at(Problem::new(format!(
                "{} fields, but the header has {n_fields}",
                rec.len()
            ))));
            continue;
        }
        match item_from_record(&rec, &columns) {
            Ok(item) => {
                items.push(item);
                lines.push(line);
            }
            Err(ps) => problems.extend(ps.into_iter().map(at)),
        }
    }
    let (bank_problems, _) = Bank::check(&Framework::default(), &items);
    problems.extend(bank_problems.into_iter().map(|(i, p)| match i {
        Some(i) => p.at_line(lines[i]),
        None => p,
    }));
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line.unwrap_or(0));
        return Err(invalid(problems));
    }
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("bank")
        .trim_end_matches(".csv")
        .to_string();
    Bank::new(id, Framework::default(), items, Provenance::default()).map_err(invalid)
}

fn item_from_record(rec: &csv::StringRecord, columns: &[Option<Column>]) -> Result<Item, Vec<Problem>> {
    let mut problems = Vec::new();
    let (mut id, mut model) = (String::new(), None);
    let (mut a, mut b, mut c, mut d) = (None, None, None, None);
    let mut thresholds: BTreeMap<usize, f64> = BTreeMap::new();
    let (mut competence, mut status, mut codes, mut exposure) = (None, Status::Active, None, None);
    let mut se = BTreeMap::new();
    for (cell, col) in rec.iter().zip(columns) {
        let Some(col) = col else { continue };
        let name = column_name(col);
        let mut number = |slot: &mut Option<f64>| match parse_number(cell) {
            Ok(v) => *slot = v,
            Err(m) => problems.push(Problem::new(m).in_field(name.clone())),
        };
        match col {
            Column::Id => id = cell.to_string(),
            Column::Model => match ModelKind::parse(cell) {
                Some(k) => model = Some(k),
                None => problems.push(
                    Problem::new(format!(
                        "unknown model `{}` (expected one of rasch, 1pl, 2pl, 3pl, 4pl, graded, gpcm)",
                        cell.trim()
                    ))
                    .in_field("model"),
                ),
            },
            Column::A => number(&mut a),
            Column::B => number(&mut b),
            Column::C => number(&mut c),
            Column::D => number(&mut d),
            Column::Exposure => number(&mut exposure),
            Column::Threshold(k) => {
                let mut v = None;
                number(&mut v);
                if let Some(v) = v {
                    thresholds.insert(*k, v);
                }
            }
            Column::Se(p) => {
                let mut v = None;
                number(&mut v);
                if let Some(v) = v {
                    se.insert(p.clone(), v);
                }
            }
            Column::Competence => {
                let t = cell.trim();
                if !t.is_empty() {
                    competence = Some(t.to_string());
                }
            }
            Column::Status => {
                if !cell.trim().is_empty() {
                    match Status::parse(cell) {
                        Some(s) => status = s,
                        None => problems.push(
                            Problem::new(format!(
                                "unknown status `{}` (active, pretest or retired)",
                                cell.trim()
                            ))
                            .in_field("status"),
                        ),
                    }
                }
            }
            Column::Codes => {
                let t = cell.trim();
                if !t.is_empty() {
                    match t
                        .split(';')
                        .map(|x| x.trim().parse::<i64>())
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(v) => codes = Some(v),
                        Err(_) => problems.push(
                            Problem::new(format!("`{t}` is not a list of integer codes joined by `;`"))
                                .in_field("codes"),
                        ),
                    }
                }
            }
        }
    }
    // Thresholds must be b1 … bK without gaps.
    let mut ts = Vec::with_capacity(thresholds.len());
    for (expected, (k, v)) in (1..).zip(thresholds) {
        if k != expected {
            problems.push(
                Problem::new(format!("threshold b{k} given without b{expected}")).in_field(format!("b{k}")),
            );
            break;
        }
        ts.push(v);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let Some(model) = model else {
        return Err(vec![Problem::new("empty model").in_field("model")]);
    };
    let parameters = ItemModel::from_parts(model, a, b, c, d, ts)
        .map_err(|e| vec![Problem::new(e.to_string()).in_field(e.field())])?;
    let mut item = Item::new(id, parameters);
    item.competence = competence;
    item.status = status;
    item.codes = codes;
    item.exposure = exposure;
    item.standard_errors = se;
    Ok(item)
}

fn column_name(col: &Column) -> String {
    match col {
        Column::Id => "id".into(),
        Column::Model => "model".into(),
        Column::A => "a".into(),
        Column::B => "b".into(),
        Column::C => "c".into(),
        Column::D => "d".into(),
        Column::Threshold(k) => format!("b{k}"),
        Column::Competence => "competence".into(),
        Column::Status => "status".into(),
        Column::Codes => "codes".into(),
        Column::Exposure => "exposure".into(),
        Column::Se(p) => format!("se_{p}"),
    }
}

/// The bank as CSV text: only the columns some item uses, in the order of the module docs.
/// Numbers are written in Rust's shortest round-trip form, so reading back gives the same bits.
pub fn bank_to_csv(bank: &Bank) -> String {
    let items = bank.items();
    let any = |f: &dyn Fn(&Item) -> bool| items.iter().any(f);
    let kinds = |ks: &[ModelKind]| any(&|i: &Item| ks.contains(&i.parameters.kind()));
    let max_k = items
        .iter()
        .map(|i| i.parameters.polytomous().map_or(0, |p| p.thresholds().len()))
        .max()
        .unwrap_or(0);
    let mut cols = vec![Column::Id, Column::Model];
    if any(&|i: &Item| i.parameters.kind() != ModelKind::Rasch) {
        cols.push(Column::A);
    }
    if any(&|i: &Item| i.parameters.logistic().is_some()) {
        cols.push(Column::B);
    }
    if kinds(&[ModelKind::ThreePl, ModelKind::FourPl]) {
        cols.push(Column::C);
    }
    if kinds(&[ModelKind::FourPl]) {
        cols.push(Column::D);
    }
    cols.extend((1..=max_k).map(Column::Threshold));
    if any(&|i: &Item| i.competence.is_some()) {
        cols.push(Column::Competence);
    }
    cols.push(Column::Status);
    if any(&|i: &Item| i.codes.is_some()) {
        cols.push(Column::Codes);
    }
    if any(&|i: &Item| i.exposure.is_some()) {
        cols.push(Column::Exposure);
    }
    let mut se_names: Vec<String> = Vec::new();
    for name in ["a", "b", "c", "d"]
        .into_iter()
        .map(String::from)
        .chain((1..=max_k).map(|k| format!("b{k}")))
    {
        if any(&|i: &Item| i.standard_errors.contains_key(&name)) {
            se_names.push(name);
        }
    }
    cols.extend(se_names.into_iter().map(Column::Se));

    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let header: Vec<String> = cols.iter().map(column_name).collect();
    let write_err = |e: csv::Error| -> ! { unreachable!("writing CSV to memory cannot fail: {e}") };
    w.write_record(&header).unwrap_or_else(|e| write_err(e));
    for item in items {
        let params: HashMap<String, f64> = item.parameters.named_parameters().into_iter().collect();
        let row: Vec<String> = cols
            .iter()
            .map(|col| match col {
                Column::Id => item.id.clone(),
                Column::Model => item.parameters.kind().name().to_string(),
                Column::Competence => item.competence.clone().unwrap_or_default(),
                Column::Status => item.status.name().to_string(),
                Column::Codes => item
                    .codes
                    .as_ref()
                    .map(|c| c.iter().map(i64::to_string).collect::<Vec<_>>().join(";"))
                    .unwrap_or_default(),
                Column::Exposure => item.exposure.map(|e| e.to_string()).unwrap_or_default(),
                Column::Se(p) => item
                    .standard_errors
                    .get(p)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                other => params
                    .get(&column_name(other))
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            })
            .collect();
        w.write_record(&row).unwrap_or_else(|e| write_err(e));
    }
    let bytes = w
        .into_inner()
        .unwrap_or_else(|e| unreachable!("in-memory CSV writer: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| unreachable!("CSV of UTF-8 strings is UTF-8: {e}"))
}

/// Import a parameter table exported from R's mirt (`coef(fit, IRTpars = TRUE, simplify = TRUE)$items`
/// written with an `item` column: `item,a,b,g,u` for dichotomous models, `item,a,b1,b2,…` for graded
/// and gpcm) as a bank of `model` items.
pub fn import_mirt(path: impl AsRef<Path>, model: ModelKind) -> Result<Bank, BankError> {
    let path = path.as_ref();
    let bytes =
        read_bytes(path, path.extension().is_some_and(|e| e == "gz")).map_err(|e| io_error(path, e))?;
    let text = utf8_text(path, bytes)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let invalid = |problems: Vec<Problem>| BankError::Invalid {
        path: PathBuf::from(path),
        problems: Problems(problems),
    };
    let header = reader
        .headers()
        .map_err(|e| invalid(vec![csv_error_problem(&e)]))?
        .clone();
    if header.is_empty() || header.iter().all(|h| h.trim().is_empty()) {
        return Err(BankError::Empty {
            path: path.to_path_buf(),
        });
    }
    let col = |name: &str| header.iter().position(|h| h == name);
    let Some(id_col) = col("item") else {
        return Err(invalid(vec![
            Problem::new("missing column `item`").at_line(1).in_field("item"),
        ]));
    };
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_error_problem(&e));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let id = rec.get(id_col).unwrap_or("").to_string();
        let num = |name: &str| -> Result<Option<f64>, Problem> {
            match col(name).and_then(|i| rec.get(i)) {
                None => Ok(None),
                Some(cell) => parse_number(cell).map_err(|m| Problem::new(m).in_field(name)),
            }
        };
        let build = || -> Result<ItemModel, Problem> {
            let a = num("a")?;
            let mut ts = Vec::new();
            for k in 1.. {
                match num(&format!("b{k}"))? {
                    Some(v) => ts.push(v),
                    None => break,
                }
            }
            let (b, g, u) = (num("b")?, num("g")?, num("u")?);
            let (a, c, d) = match model {
                ModelKind::Rasch => (None, None, None),
                ModelKind::OnePl | ModelKind::TwoPl | ModelKind::Graded | ModelKind::Gpcm => (a, None, None),
                ModelKind::ThreePl => (a, g, None),
                ModelKind::FourPl => (a, g, u),
            };
            ItemModel::from_parts(model, a, b, c, d, ts)
                .map_err(|e| Problem::new(e.to_string()).in_field(e.field()))
        };
        match build() {
            Ok(m) => items.push(Item::new(id, m)),
            Err(p) => problems.push(p.at_line(line).for_item(id)),
        }
    }
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let provenance = Provenance {
        method: "imported".into(),
        description: Some(format!(
            "{model} parameters imported from a mirt coefficient table"
        )),
        software: Some("mirt".into()),
        data: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..Provenance::default()
    };
    let id = path
        .file_stem()
        .map_or_else(|| "bank".into(), |s| s.to_string_lossy().into_owned());
    Bank::new(id, Framework::default(), items, provenance).map_err(invalid)
}
