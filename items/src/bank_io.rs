//! Reading and writing banks as CSV or JSON, the format chosen by the file extension
//! (`.csv`, `.json`, either optionally followed by `.gz`), and importing mirt's parameter tables.
//!
//! CSV columns (`FORMATS.md`): `id`, `model`, `a`, `b`, `c`, `d`, `b1` … `bK`, then optional
//! `competence`, `status`, `codes` (original response codes joined by `;`), `exposure`
//! (Sympson–Hetter parameter), `se_a`, `se_b`, … standard errors, and `latent_mean`,
//! `latent_variance` (the bank's latent distribution, the same on every row). Every problem of a file
//! is reported in one pass, each with its line, item and column.

use crate::bank::{Bank, Latent, Provenance};
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

/// The largest bank read, after decompression (256 MiB: about a million items in CSV).
pub const MAX_BANK_BYTES: u64 = 256 << 20;

/// Read a whole input, gunzipping it when it starts with the gzip magic bytes; more than
/// [`MAX_BANK_BYTES`] is an [`std::io::ErrorKind::InvalidData`] error (endless input such as
/// `/dev/zero`, or a gzip bomb, is refused in bounded memory).
pub(crate) fn read_all(input: impl Read) -> Result<Vec<u8>, std::io::Error> {
    let mut buf = Vec::new();
    crate::data::maybe_gunzip(input)?
        .take(MAX_BANK_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_BANK_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {}, the most a bank may hold: not an item bank?",
                crate::data::human_bytes(MAX_BANK_BYTES)
            ),
        ));
    }
    Ok(buf)
}

/// Error messages never echo megabytes: long serde messages and problem texts are cut, and serde's
/// own ` at line L column C` (the error already says where) is dropped.
fn shorten(e: BankError) -> BankError {
    match e {
        BankError::Json {
            path,
            line,
            column,
            message,
        } => BankError::Json {
            path,
            line,
            column,
            message: crate::data::cut(strip_position(&message), 300),
        },
        BankError::Invalid { path, mut problems } => {
            for p in &mut problems.0 {
                p.message = crate::data::cut(strip_position(&p.message), 300);
                p.item = p.item.as_deref().map(|i| crate::data::cut(i, 60));
                p.field = p.field.as_deref().map(|f| crate::data::cut(f, 60));
            }
            BankError::Invalid { path, problems }
        }
        other => other,
    }
}

/// The file `path` names once symbolic links are followed (even to a file that does not exist yet),
/// so that writing it replaces the file and keeps the link.
pub fn follow_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::read_link(&p) {
            Ok(target) if target.is_absolute() => p = target,
            Ok(target) => {
                p = p.parent().map_or_else(|| target.clone(), |dir| dir.join(&target));
            }
            Err(_) => break,
        }
    }
    p
}

/// `message` without serde_json's trailing ` at line L column C`.
pub fn strip_position(message: &str) -> &str {
    let mut message = message;
    // A nested error may carry its own position before the outer one.
    while let Some(i) = message.rfind(" at line ")
        && message[i + 9..].split_once(" column ").is_some_and(|(l, c)| {
            !l.is_empty()
                && !c.is_empty()
                && l.bytes().all(|b| b.is_ascii_digit())
                && c.bytes().all(|b| b.is_ascii_digit())
        })
    {
        message = &message[..i];
    }
    message
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
#[cfg(feature = "fs")]
pub fn read_bank(path: impl AsRef<Path>) -> Result<Bank, BankError> {
    let path = path.as_ref();
    let (format, _) = bank_format(path)?;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    read_bank_from(file, format, path)
}

/// Read a bank in `format` from any reader (an upload, a pipe, a file); `source` names it in errors.
/// Gzip-compressed input is recognised by its first bytes.
pub fn read_bank_from(
    input: impl Read,
    format: BankFormat,
    source: impl AsRef<Path>,
) -> Result<Bank, BankError> {
    let path = source.as_ref();
    let bytes = read_all(input).map_err(|e| io_error(path, e))?;
    let text = utf8_text(path, bytes)?;
    // A byte-order mark (some editors write one) is not part of the bank.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return Err(BankError::Empty {
            path: path.to_path_buf(),
        });
    }
    match format {
        BankFormat::Json => Bank::from_json(text, path),
        BankFormat::Csv => bank_from_csv(text, path),
    }
    .map_err(shorten)
}

/// Write a bank in `format` to any writer. CSV keeps parameters, competence, status, codes, exposure,
/// standard errors and the latent distribution; the framework, content, tutorials and tags need JSON.
pub fn write_bank_to(bank: &Bank, mut output: impl Write, format: BankFormat) -> std::io::Result<()> {
    let text = match format {
        BankFormat::Json => bank.to_json() + "\n",
        BankFormat::Csv => bank_to_csv(bank),
    };
    output.write_all(text.as_bytes())?;
    output.flush()
}

/// Write a bank; the extension chooses the format (`.gz`: gzip-compressed). The bank is written to a
/// temporary file beside `path` (`.NAME.PID.tmp`), synced and renamed over `path`, so an interrupted
/// write, a full disk or a file-size limit leaves the previous file whole. A path that names no
/// regular file (`/dev/stdout`, a pipe) is written in place; a symbolic link is followed.
#[cfg(feature = "fs")]
pub fn write_bank(bank: &Bank, path: impl AsRef<Path>) -> Result<(), BankError> {
    let path = path.as_ref();
    let (format, gz) = bank_format(path)?;
    let io = |e| BankError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    write_replacing(path, |w| {
        if gz {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            write_bank_to(bank, &mut enc, format)?;
            enc.finish().map(|_| ())
        } else {
            write_bank_to(bank, w, format)
        }
    })
    .map_err(io)
}

/// Write `path` safely: `write` fills a temporary file beside it (`.NAME.PID.tmp`), which is synced
/// and renamed over `path` only when everything was written, and the directory synced; on any error
/// the previous file is untouched and the temporary file removed. A symbolic link is followed (the
/// file it names is replaced, the link kept); a path that names no regular file (`/dev/stdout`, a
/// pipe, `/dev/full`) is written in place, never replaced; a directory is an `IsADirectory` error.
#[cfg(feature = "fs")]
pub fn write_replacing(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // `metadata` follows links itself: `/dev/stdout` on a pipe is a pipe, written in place.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        if meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut w)?;
        return w.flush();
    }
    let target = follow_links(path);
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, std::fs::File::create(&tmp)?);
        write(&mut w)?;
        let file = w.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
    LatentMean,
    LatentVariance,
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
        "latent_mean" => Column::LatentMean,
        "latent_variance" => Column::LatentVariance,
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
    // The required columns first: when both are missing, the file is no bank at all.
    let not_a_bank = !seen.contains_key(&Column::Id) && !seen.contains_key(&Column::Model);
    for (k, (required, name)) in [(Column::Id, "id"), (Column::Model, "model")]
        .into_iter()
        .enumerate()
        .rev()
    {
        if !seen.contains_key(&required) {
            let hint = if not_a_bank && k == 0 {
                " (not an item bank? A bank has one row per item: id,model,a,b,…; response data go to \
                 `score` or `calibrate`)"
            } else {
                ""
            };
            problems.insert(
                0,
                Problem::new(format!("missing required column `{name}`{hint}"))
                    .at_line(1)
                    .in_field(name),
            );
        }
    }
    let latent_columns = match (seen.get(&Column::LatentMean), seen.get(&Column::LatentVariance)) {
        (Some(&m), Some(&v)) => Some((m, v)),
        (None, None) => None,
        (given, _) => {
            let (has, lacks) = if given.is_some() {
                ("latent_mean", "latent_variance")
            } else {
                ("latent_variance", "latent_mean")
            };
            problems.push(
                Problem::new(format!(
                    "column `{has}` without `{lacks}`: the latent distribution needs both"
                ))
                .at_line(1)
                .in_field(lacks),
            );
            None
        }
    };
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let n_fields = header.len();
    let mut items = Vec::new();
    let mut lines = Vec::new();
    // The latent moments (mean, variance) of the first data row and its line: every other row must
    // repeat them.
    type Moments = (Option<f64>, Option<f64>);
    let mut latent_row: Option<(Moments, u64)> = None;
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
        if let Some((im, iv)) = latent_columns {
            let mut cell = |i: usize, name: &str| match parse_number(rec.get(i).unwrap_or("")) {
                Ok(v) => Some(v),
                Err(m) => {
                    problems.push(at(Problem::new(m).in_field(name)));
                    None
                }
            };
            if let (Some(m), Some(v)) = (cell(im, "latent_mean"), cell(iv, "latent_variance")) {
                match latent_row {
                    None => latent_row = Some(((m, v), line)),
                    Some(((m0, v0), line0)) => {
                        let same =
                            |x: Option<f64>, y: Option<f64>| x.map(f64::to_bits) == y.map(f64::to_bits);
                        let show = |x: Option<f64>| x.map_or_else(|| "empty".to_string(), |x| x.to_string());
                        for (name, x, x0) in [("latent_mean", m, m0), ("latent_variance", v, v0)] {
                            if !same(x, x0) {
                                problems.push(at(Problem::new(format!(
                                    "{name} is {} but {} on line {line0}: a bank has one latent distribution, \
                                     written on every row",
                                    show(x),
                                    show(x0)
                                ))
                                .in_field(name)));
                            }
                        }
                    }
                }
            }
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
    let latent = match latent_row {
        None | Some(((None, None), _)) => None,
        Some(((Some(mean), Some(variance)), line)) => {
            let latent = Latent { mean, variance };
            for (name, problem) in [
                ("latent_mean", latent.mean_problem()),
                ("latent_variance", latent.variance_problem()),
            ] {
                if let Some(m) = problem {
                    problems.push(Problem::new(m).at_line(line).in_field(name));
                }
            }
            Some(latent)
        }
        Some(((m, _), line)) => {
            let (has, lacks) = if m.is_some() {
                ("latent_mean", "latent_variance")
            } else {
                ("latent_variance", "latent_mean")
            };
            problems.push(
                Problem::new(format!(
                    "{has} without {lacks}: the latent distribution needs both"
                ))
                .at_line(line)
                .in_field(lacks),
            );
            None
        }
    };
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
    Bank::new(id, Framework::default(), items, Provenance::default())
        .and_then(|bank| bank.with_latent(latent))
        .map_err(invalid)
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
            // The bank's latent distribution, read by `bank_from_csv`.
            Column::LatentMean | Column::LatentVariance => {}
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
        Column::LatentMean => "latent_mean".into(),
        Column::LatentVariance => "latent_variance".into(),
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
    if bank.latent().is_some() {
        cols.extend([Column::LatentMean, Column::LatentVariance]);
    }

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
                Column::LatentMean => bank.latent().map(|l| l.mean.to_string()).unwrap_or_default(),
                Column::LatentVariance => bank.latent().map(|l| l.variance.to_string()).unwrap_or_default(),
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

/// The layouts [`import_mirt`] reads, as its messages list them.
const MIRT_LAYOUTS: &str = "supported layouts: IRT parameters (item,a,b,g,u / item,a,b1..), \
     slope-intercept (item,a1,d,g,u / item,a1,d1..), SE tables (item,par,est,se)";

/// A parameter of a mirt table: a column of a wide table, a `par` of an SE table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum MirtPar {
    /// `a` (IRT form) or `a1` (slope-intercept form).
    Slope,
    /// `b`: difficulty of a dichotomous item.
    B,
    /// `b1`, `b2`, …: thresholds of a polytomous item.
    Threshold(usize),
    /// `g`: lower asymptote (Etalon's `c`).
    G,
    /// `u`: upper asymptote (Etalon's `d`).
    U,
    /// `d`: intercept of a dichotomous item, `a·θ + d = a(θ - b)`.
    D,
    /// `d0`, `d1`, …: category intercepts (graded: `d_k = -a·b_k`; gpcm: cumulative, `d_0 = 0`).
    Intercept(usize),
    /// `ak0`, `ak1`, …: category scores of mirt's gpcm (`ak_k = k`).
    Score(usize),
}

impl MirtPar {
    /// Parse a mirt parameter name; unsupported names give what they are, if known.
    fn parse(name: &str) -> Result<MirtPar, &'static str> {
        let index = |rest: &str| {
            (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
                .then(|| rest.parse::<usize>().ok())
                .flatten()
        };
        Ok(match name {
            "a" | "a1" => MirtPar::Slope,
            "b" => MirtPar::B,
            "g" => MirtPar::G,
            "u" => MirtPar::U,
            "d" => MirtPar::D,
            _ => {
                if let Some(k) = name.strip_prefix("ak").and_then(index) {
                    MirtPar::Score(k)
                } else if name.strip_prefix('a').and_then(index).is_some() {
                    return Err("multidimensional slopes");
                } else if let Some(k) = name.strip_prefix('b').and_then(index).filter(|&k| k >= 1) {
                    MirtPar::Threshold(k)
                } else if let Some(k) = name.strip_prefix('d').and_then(index) {
                    MirtPar::Intercept(k)
                } else if name.starts_with("MEAN_") || name.starts_with("COV_") {
                    return Err("latent distribution parameters");
                } else if name.starts_with("logit(") || name.starts_with("log(") {
                    return Err("transformed parameters");
                } else {
                    return Err("");
                }
            }
        })
    }

    /// The mirt name of the parameter.
    fn name(self) -> String {
        match self {
            MirtPar::Slope => "a".into(),
            MirtPar::B => "b".into(),
            MirtPar::Threshold(k) => format!("b{k}"),
            MirtPar::G => "g".into(),
            MirtPar::U => "u".into(),
            MirtPar::D => "d".into(),
            MirtPar::Intercept(k) => format!("d{k}"),
            MirtPar::Score(k) => format!("ak{k}"),
        }
    }

    /// What the values of the parameter are, for messages.
    fn what(self) -> &'static str {
        match self {
            MirtPar::Slope => "slopes",
            MirtPar::B => "difficulties",
            MirtPar::Threshold(_) => "category thresholds",
            MirtPar::G => "lower asymptotes",
            MirtPar::U => "upper asymptotes",
            MirtPar::D => "intercepts",
            MirtPar::Intercept(_) => "category intercepts",
            MirtPar::Score(_) => "category scores",
        }
    }

    /// Whether a `model` item keeps this parameter.
    fn kept_by(self, model: ModelKind) -> bool {
        use ModelKind as K;
        match self {
            MirtPar::Slope => model != K::Rasch,
            MirtPar::B | MirtPar::D => !model.is_polytomous(),
            MirtPar::G => matches!(model, K::ThreePl | K::FourPl),
            MirtPar::U => model == K::FourPl,
            MirtPar::Threshold(_) | MirtPar::Intercept(1..) => model.is_polytomous(),
            MirtPar::Intercept(0) | MirtPar::Score(_) => model == K::Gpcm,
        }
    }

    /// The value a model that does not keep the parameter fixes it at (`None`: no value can be
    /// dropped).
    fn default_value(self) -> Option<f64> {
        match self {
            MirtPar::Slope | MirtPar::U => Some(1.0),
            MirtPar::G | MirtPar::Intercept(0) => Some(0.0),
            _ => None,
        }
    }

    /// The name of the parameter in Etalon's banks (`c` for `g`, `d` for `u`), for parameters the
    /// bank stores as read.
    fn bank_name(self) -> Option<String> {
        match self {
            MirtPar::Slope => Some("a".into()),
            MirtPar::B => Some("b".into()),
            MirtPar::Threshold(k) => Some(format!("b{k}")),
            MirtPar::G => Some("c".into()),
            MirtPar::U => Some("d".into()),
            MirtPar::D | MirtPar::Intercept(_) | MirtPar::Score(_) => None,
        }
    }
}

/// One value of a mirt table: the estimate, its standard error (SE tables) and where it was read.
#[derive(Debug, Clone)]
struct MirtCell {
    est: Option<f64>,
    se: Option<f64>,
    line: u64,
    /// The name as written (`a1` for a slope read from column `a1`).
    name: String,
}

/// The parameters of one item of a mirt table.
#[derive(Debug, Default)]
struct MirtRow {
    id: String,
    line: u64,
    cells: BTreeMap<MirtPar, MirtCell>,
    /// A cell of the item is not a number (already reported).
    broken: bool,
}

impl MirtRow {
    fn est(&self, par: MirtPar) -> Option<f64> {
        self.cells.get(&par).and_then(|c| c.est)
    }
    fn line_of(&self, par: MirtPar) -> u64 {
        self.cells.get(&par).map_or(self.line, |c| c.line)
    }
    /// The values of `par(1)`, `par(2)`, … up to the first missing one; a value after the gap (a
    /// `b3` given without `b2`) is a problem.
    fn sequence(&self, par: fn(usize) -> MirtPar) -> Result<Vec<f64>, Problem> {
        let mut out = Vec::new();
        while let Some(v) = self.est(par(out.len() + 1)) {
            out.push(v);
        }
        let gap = par(out.len() + 1);
        let after = self.cells.iter().find(|&(p, c)| {
            c.est.is_some() && std::mem::discriminant(p) == std::mem::discriminant(&gap) && *p > gap
        });
        match after {
            Some((_, c)) => Err(Problem::new(format!("{} given without {}", c.name, gap.name()))
                .at_line(c.line)
                .in_field(c.name.clone())),
            None => Ok(out),
        }
    }
}

/// A short form of `v` for messages (3 decimals), or its full form when the short one would read as
/// `default`.
fn short_number(v: f64, default: Option<f64>) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if default.is_some_and(|d| s.parse::<f64>().ok() == Some(d)) || s == "-0" {
        v.to_string()
    } else {
        s
    }
}

/// Do two values read from a table agree (the same up to the 15 significant digits mirt writes)?
fn agree(x: f64, y: f64) -> bool {
    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
}

/// The one problem of a table with parameters Etalon cannot read: `names` with what they are.
fn unsupported_problem(source: &Path, word: &str, names: &[(String, &'static str, u64)]) -> Problem {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, what, _) in names {
        match groups.iter_mut().find(|(w, _)| w == what) {
            Some((_, ns)) => ns.push(name),
            None => groups.push((what, vec![name])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(what, ns)| {
            let list = ns.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            if what.is_empty() {
                list
            } else {
                format!("{list} ({what})")
            }
        })
        .collect();
    let (plural, verb) = if names.len() == 1 {
        ("", "is")
    } else {
        ("s", "are")
    };
    let (first, _, line) = &names[0];
    Problem::new(format!(
        "cannot read mirt table {}: {word}{plural} {} {verb} not supported; {MIRT_LAYOUTS}",
        source.display(),
        parts.join(", ")
    ))
    .at_line(*line)
    .in_field(first.clone())
}

/// Import a parameter table exported from R's mirt (written with an `item` column, or R's unnamed
/// row-name column) as a bank of `model` items. Three layouts are recognised from the header:
///
/// * IRT parameters, `coef(fit, IRTpars = TRUE, simplify = TRUE)$items`: `item,a,b,g,u` for
///   dichotomous models, `item,a,b1,b2,…` for graded and gpcm;
/// * slope-intercept parameters, `coef(fit, simplify = TRUE)$items`: `item,a1,d,g,u`
///   (b = -d/a), `item,a1,d1,d2,…` for graded (b_k = -d_k/a) and `item,a1,ak0,…,akK,d0,…,dK` (or
///   `item,a1,d1,…`) for gpcm, whose intercepts are cumulative (b_k = -(d_k - d_{k-1})/a, d_0 = 0);
/// * SE tables in long form, `item,par,est,se` (IRT parameters, `NA` for fixed ones): the
///   estimates become the items, the standard errors their `standard_errors` (mirt's `g` as `c`,
///   `u` as `d`); rows of item `GroupPars` (`MEAN_1`, `COV_11`) give the bank's latent distribution
///   when it is not N(0, 1).
///
/// Every parameter read is kept: a table whose `g`, `u` (or, for `rasch`, `a`) are not the values
/// `model` fixes them at is refused with the model that keeps them, and a column Etalon cannot read
/// (the `a2` of a multidimensional model) is refused in one problem.
#[cfg(feature = "fs")]
pub fn import_mirt(path: impl AsRef<Path>, model: ModelKind) -> Result<Bank, BankError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    import_mirt_from(file, model, path)
}

/// [`import_mirt`] from any reader; `source` names it in errors and gives the bank its id.
pub fn import_mirt_from(
    input: impl Read,
    model: ModelKind,
    source: impl AsRef<Path>,
) -> Result<Bank, BankError> {
    let path = source.as_ref();
    let bytes = read_all(input).map_err(|e| io_error(path, e))?;
    mirt_table(&utf8_text(path, bytes)?, model, path).map_err(shorten)
}

/// [`import_mirt`] of the text of a table; `path` names it in errors and gives the bank its id.
fn mirt_table(text: &str, model: ModelKind, path: &Path) -> Result<Bank, BankError> {
    let invalid = |mut problems: Vec<Problem>| {
        problems.sort_by_key(|p| p.line.unwrap_or(0));
        BankError::Invalid {
            path: PathBuf::from(path),
            problems: Problems(problems),
        }
    };
    if text.trim().is_empty() {
        return Err(BankError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| invalid(vec![csv_error_problem(&e)]))?
        .clone();
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let col = |name: &str| names.iter().position(|h| *h == name);
    // `item`, or the unnamed first column of R's `write.csv` with row names.
    let id_col = col("item").or_else(|| (names.first() == Some(&"")).then_some(0));
    let Some(id_col) = id_col else {
        return Err(invalid(vec![
            Problem::new("missing column `item` (the item names)")
                .at_line(1)
                .in_field("item"),
        ]));
    };
    let long = col("par").is_some();
    let word = if long { "parameter" } else { "column" };
    let mut problems = Vec::new();
    let mut unsupported: Vec<(String, &'static str, u64)> = Vec::new();
    let mut rows: Vec<MirtRow> = Vec::new();
    let mut latent = (None, None);

    if long {
        let (par_col, est_col, se_col) = (col("par"), col("est"), col("se"));
        for (i, name) in names.iter().enumerate() {
            if i != id_col && ![par_col, est_col, se_col].contains(&Some(i)) {
                unsupported.push((name.to_string(), "", 1));
            }
        }
        if !unsupported.is_empty() {
            return Err(invalid(vec![unsupported_problem(path, "column", &unsupported)]));
        }
        let (Some(par_col), Some(est_col)) = (par_col, est_col) else {
            return Err(invalid(vec![
                Problem::new("an SE table needs columns `item`, `par`, `est` (and `se`)")
                    .at_line(1)
                    .in_field("est"),
            ]));
        };
        let mut index: HashMap<String, usize> = HashMap::new();
        // Items with a cell that is not a number (their later rows too).
        let mut broken = std::collections::HashSet::new();
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
            let par = rec.get(par_col).unwrap_or("").trim().to_string();
            let at = |p: Problem| p.at_line(line).for_item(id.clone());
            let number = |i: Option<usize>, field: &str| match i.and_then(|i| rec.get(i)) {
                None => Ok(None),
                Some(cell) => parse_number(cell).map_err(|m| at(Problem::new(m).in_field(field))),
            };
            let (est, se) = match (number(Some(est_col), "est"), number(se_col, "se")) {
                (Ok(est), Ok(se)) => (est, se),
                (est, se) => {
                    problems.extend(est.err().into_iter().chain(se.err()));
                    if let Some(&r) = index.get(&id) {
                        rows[r].broken = true;
                    }
                    broken.insert(id);
                    continue;
                }
            };
            if id == "GroupPars" {
                match par.as_str() {
                    "MEAN_1" => latent.0 = est.map(|v| (v, line)),
                    "COV_11" => latent.1 = est.map(|v| (v, line)),
                    _ => unsupported.push((par, "multidimensional latent distribution", line)),
                }
                continue;
            }
            let p = match MirtPar::parse(&par) {
                Ok(p) => p,
                Err(what) => {
                    if !unsupported.iter().any(|(n, _, _)| *n == par) {
                        unsupported.push((par, what, line));
                    }
                    continue;
                }
            };
            let r = *index.entry(id.clone()).or_insert_with(|| {
                rows.push(MirtRow {
                    id: id.clone(),
                    line,
                    broken: broken.contains(&id),
                    ..MirtRow::default()
                });
                rows.len() - 1
            });
            let cell = MirtCell {
                est,
                se,
                line,
                name: par.clone(),
            };
            if let Some(first) = rows[r].cells.insert(p, cell) {
                problems.push(at(Problem::new(format!(
                    "parameter `{par}` given twice (first on line {})",
                    first.line
                ))
                .in_field(par)));
            }
        }
    } else {
        let mut columns: Vec<(usize, MirtPar)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if i == id_col {
                continue;
            }
            match MirtPar::parse(name) {
                Ok(p) => match columns.iter().find(|(_, q)| *q == p) {
                    Some(&(j, _)) => problems.push(
                        Problem::new(format!(
                            "column `{name}` repeats column `{}` ({})",
                            names[j],
                            p.what()
                        ))
                        .at_line(1)
                        .in_field(*name),
                    ),
                    None => columns.push((i, p)),
                },
                Err(what) => unsupported.push((name.to_string(), what, 1)),
            }
        }
        if !unsupported.is_empty() {
            return Err(invalid(vec![unsupported_problem(path, word, &unsupported)]));
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
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
            let mut row = MirtRow {
                id: id.clone(),
                line,
                ..MirtRow::default()
            };
            for &(i, p) in &columns {
                let name = names[i];
                match parse_number(rec.get(i).unwrap_or("")) {
                    Ok(est) => {
                        let cell = MirtCell {
                            est,
                            se: None,
                            line,
                            name: name.to_string(),
                        };
                        row.cells.insert(p, cell);
                    }
                    Err(m) => {
                        problems.push(Problem::new(m).at_line(line).for_item(id.clone()).in_field(name));
                        row.broken = true;
                    }
                }
            }
            rows.push(row);
        }
    }
    if !unsupported.is_empty() {
        return Err(invalid(vec![unsupported_problem(path, word, &unsupported)]));
    }

    // The parameters the table holds, with the name they were first read under.
    let mut present: BTreeMap<MirtPar, String> = BTreeMap::new();
    for row in &rows {
        for (p, c) in &row.cells {
            present.entry(*p).or_insert_with(|| c.name.clone());
        }
    }
    // Parameters the model cannot keep: the first value that is not the one the model fixes, once per
    // kind of parameter (`b1` stands for `b2`, `b3`, …).
    let mut dropped: Vec<(MirtPar, &MirtRow, f64)> = Vec::new();
    for &p in present.keys().filter(|p| !p.kept_by(model)) {
        if dropped
            .iter()
            .any(|(q, _, _)| std::mem::discriminant(q) == std::mem::discriminant(&p))
        {
            continue;
        }
        let first = rows
            .iter()
            .find_map(|r| r.est(p).filter(|&v| Some(v) != p.default_value()).map(|v| (r, v)));
        if let Some((r, v)) = first {
            dropped.push((p, r, v));
        }
    }
    if !dropped.is_empty() {
        let has = |f: fn(MirtPar) -> bool| dropped.iter().any(|(p, _, _)| f(*p));
        let slopes: Vec<f64> = rows.iter().filter_map(|r| r.est(MirtPar::Slope)).collect();
        let suggestion = if has(|p| matches!(p, MirtPar::Score(_) | MirtPar::Intercept(0)))
            || present.keys().any(|p| matches!(p, MirtPar::Score(_)))
        {
            "gpcm"
        } else if has(|p| matches!(p, MirtPar::Threshold(_) | MirtPar::Intercept(_))) {
            "graded (or --model gpcm)"
        } else if has(|p| p == MirtPar::U) {
            "4pl"
        } else if has(|p| p == MirtPar::G) {
            "3pl"
        } else if has(|p| p == MirtPar::Slope) && slopes.windows(2).all(|w| w[0] == w[1]) {
            "1pl"
        } else {
            "2pl"
        };
        problems.extend(dropped.iter().map(|&(p, r, v)| {
            let name = &present[&p];
            Problem::new(format!(
                "{word} `{name}` holds {} (e.g. {} for item {}) that a {model} item cannot keep: \
                     import with --model {suggestion}",
                p.what(),
                short_number(v, p.default_value()),
                r.id
            ))
            .at_line(r.line_of(p))
            .for_item(r.id.clone())
            .in_field(name.clone())
        }));
        return Err(invalid(problems));
    }
    // 1pl items share one slope.
    if model == ModelKind::OnePl {
        let mut slopes = rows.iter().filter_map(|r| r.est(MirtPar::Slope).map(|a| (r, a)));
        if let Some((r0, a0)) = slopes.next()
            && let Some((r, a)) = slopes.find(|&(_, a)| a != a0)
        {
            let name = &present[&MirtPar::Slope];
            problems.push(
                Problem::new(format!(
                    "{word} `{name}` holds different slopes ({} for item {}, {} for item {}) but 1pl items \
                     share one slope: import with --model 2pl",
                    short_number(a0, None),
                    r0.id,
                    short_number(a, None),
                    r.id
                ))
                .at_line(r.line_of(MirtPar::Slope))
                .for_item(r.id.clone())
                .in_field(name.clone()),
            );
            return Err(invalid(problems));
        }
    }
    // Parameters the model needs.
    let has = |f: fn(&MirtPar) -> bool| present.keys().any(f);
    let mut missing = Vec::new();
    if model != ModelKind::Rasch && !has(|p| *p == MirtPar::Slope) {
        missing.push(("a", "`a` (or `a1`)"));
    }
    if model.is_polytomous() {
        if !has(|p| matches!(p, MirtPar::Threshold(_) | MirtPar::Intercept(1..))) {
            missing.push(("b1", "`b1`, `b2`, … (or `d1`, `d2`, …)"));
        }
    } else if !has(|p| matches!(p, MirtPar::B | MirtPar::D)) {
        missing.push(("b", "`b` (or `d`)"));
    }
    if matches!(model, ModelKind::ThreePl | ModelKind::FourPl) && !has(|p| *p == MirtPar::G) {
        missing.push(("g", "`g` (lower asymptotes)"));
    }
    if model == ModelKind::FourPl && !has(|p| *p == MirtPar::U) {
        missing.push(("u", "`u` (upper asymptotes)"));
    }
    if !missing.is_empty() {
        problems.extend(missing.into_iter().map(|(field, what)| {
            Problem::new(format!("a {model} table needs {word} {what}"))
                .at_line(1)
                .in_field(field)
        }));
        return Err(invalid(problems));
    }
    // Standard errors of intercepts cannot become standard errors of thresholds without the
    // covariance of the slope and the intercept.
    let direct_b = has(|p| matches!(p, MirtPar::B | MirtPar::Threshold(_)));
    if !direct_b
        && let Some((r, c)) = rows.iter().find_map(|r| {
            r.cells
                .iter()
                .find(|(p, c)| matches!(p, MirtPar::D | MirtPar::Intercept(_)) && c.se.is_some())
                .map(|(_, c)| (r, c))
        })
    {
        problems.push(
            Problem::new(format!(
                "standard errors of intercepts (`{}`) cannot be turned into standard errors of difficulties \
                 without their covariance with the slope: export the SE table with IRTpars = TRUE",
                c.name
            ))
            .at_line(c.line)
            .for_item(r.id.clone())
            .in_field(c.name.clone()),
        );
        return Err(invalid(problems));
    }

    let mut items = Vec::with_capacity(rows.len());
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows.iter().filter(|r| !r.broken) {
        match mirt_item(row, model) {
            Ok(item) => {
                items.push(item);
                lines.push(row.line);
            }
            Err(p) => problems.push(p.for_item(row.id.clone())),
        }
    }
    let (bank_problems, _) = Bank::check(&Framework::default(), &items);
    problems.extend(bank_problems.into_iter().map(|(i, p)| match i {
        Some(i) => p.at_line(lines[i]),
        None => p,
    }));
    let latent = match latent {
        (None, None) => None,
        (mean, variance) => {
            let l = Latent {
                mean: mean.map_or(0.0, |(m, _)| m),
                variance: variance.map_or(1.0, |(v, _)| v),
            };
            for (field, problem, at) in [
                ("MEAN_1", l.mean_problem(), mean),
                ("COV_11", l.variance_problem(), variance),
            ] {
                if let (Some(m), Some((_, line))) = (problem, at) {
                    problems.push(
                        Problem::new(m)
                            .at_line(line)
                            .for_item("GroupPars")
                            .in_field(field),
                    );
                }
            }
            (!l.is_standard()).then_some(l)
        }
    };
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let layout = if long {
        "parameter estimates and standard errors"
    } else if direct_b {
        "IRT parameters"
    } else {
        "slope-intercept parameters"
    };
    let provenance = Provenance {
        method: "imported".into(),
        description: Some(format!(
            "{model} parameters imported from a mirt table of {layout}"
        )),
        software: Some("mirt".into()),
        data: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ..Provenance::default()
    };
    let id = path
        .file_stem()
        .map_or_else(|| "bank".into(), |s| s.to_string_lossy().into_owned());
    Bank::new(id, Framework::default(), items, provenance)
        .and_then(|bank| bank.with_latent(latent))
        .map_err(invalid)
}

/// One item of a mirt table (whose parameters `model` keeps, as checked by the caller); problems come
/// with their line and field.
fn mirt_item(row: &MirtRow, model: ModelKind) -> Result<Item, Problem> {
    let at = |p: MirtPar, message: String| {
        Problem::new(message)
            .at_line(row.line_of(p))
            .in_field(row.cells.get(&p).map_or_else(|| p.name(), |c| c.name.clone()))
    };
    let a = if model == ModelKind::Rasch {
        None
    } else {
        row.est(MirtPar::Slope)
    };
    // The slope the intercepts are divided by (1 for Rasch; a missing slope is reported below).
    let slope = a.unwrap_or(1.0);
    let (mut b, mut thresholds) = (None, Vec::new());
    if model.is_polytomous() {
        let given = row.sequence(MirtPar::Threshold)?;
        let intercepts = row.sequence(MirtPar::Intercept)?;
        let mut previous = row.est(MirtPar::Intercept(0)).unwrap_or(0.0);
        let mut from_d = Vec::with_capacity(intercepts.len());
        for d in intercepts {
            from_d.push(if model == ModelKind::Gpcm {
                -(d - std::mem::replace(&mut previous, d)) / slope
            } else {
                -d / slope
            });
        }
        if model == ModelKind::Gpcm {
            for (&p, c) in &row.cells {
                if let (MirtPar::Score(k), Some(v)) = (p, c.est)
                    && v != k as f64
                {
                    return Err(at(
                        p,
                        format!(
                            "{} = {v}: only gpcm scores (ak_k = k) can be imported; a nominal model is not supported",
                            c.name
                        ),
                    ));
                }
            }
        }
        if given.is_empty() {
            thresholds = from_d;
        } else {
            for (k, (&t, &u)) in given.iter().zip(&from_d).enumerate() {
                if !agree(t, u) {
                    let p = MirtPar::Intercept(k + 1);
                    return Err(at(
                        p,
                        format!("intercept gives b{} = {u}, but b{} = {t}", k + 1, k + 1),
                    ));
                }
            }
            if !from_d.is_empty() && from_d.len() != given.len() {
                let p = MirtPar::Intercept(1);
                return Err(at(
                    p,
                    format!("{} intercepts for {} thresholds", from_d.len(), given.len()),
                ));
            }
            thresholds = given;
        }
    } else {
        let from_d = row.est(MirtPar::D).map(|d| -d / slope);
        b = row.est(MirtPar::B).or(from_d);
        if let (Some(b), Some(u)) = (row.est(MirtPar::B), from_d)
            && !agree(b, u)
        {
            return Err(at(
                MirtPar::D,
                format!("intercept gives b = -d/a = {u}, but b = {b}"),
            ));
        }
    }
    let kept = |p: MirtPar| if p.kept_by(model) { row.est(p) } else { None };
    let parameters = ItemModel::from_parts(model, a, b, kept(MirtPar::G), kept(MirtPar::U), thresholds)
        .map_err(|e| {
            let field = e.field();
            let p = match field.as_str() {
                "a" => MirtPar::Slope,
                "c" => MirtPar::G,
                "d" => MirtPar::U,
                f => MirtPar::parse(f).unwrap_or(MirtPar::B),
            };
            let name = row.cells.get(&p).map_or(field, |c| c.name.clone());
            Problem::new(e.to_string()).at_line(row.line_of(p)).in_field(name)
        })?;
    let mut item = Item::new(row.id.clone(), parameters);
    for (&p, c) in &row.cells {
        if let (Some(se), true, Some(name)) = (c.se, p.kept_by(model), p.bank_name()) {
            item.standard_errors.insert(name, se);
        }
    }
    Ok(item)
}
