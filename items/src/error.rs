//! Located errors: every failure names the file and, where it can, the line, column or field and item.

use std::fmt;
use std::path::PathBuf;

/// One problem found while validating a bank: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the file (CSV), when known.
    pub line: Option<u64>,
    /// Item id, when the problem concerns one item.
    pub item: Option<String>,
    /// Column or field name (`a`, `b2`, `competence`, `items[3].parameters`, …).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            line: None,
            item: None,
            field: None,
            message: message.into(),
        }
    }
    /// Attach a line number.
    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }
    /// Attach an item id.
    pub fn for_item(mut self, item: impl Into<String>) -> Self {
        self.item = Some(item.into());
        self
    }
    /// Attach a field or column name.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        if let Some(i) = &self.item {
            parts.push(format!("item `{i}`"));
        }
        if let Some(c) = &self.field {
            parts.push(format!("field `{c}`"));
        }
        if parts.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", parts.join(", "), self.message)
        }
    }
}

/// The most problems (or item ids) an error message lists; the rest are counted.
pub const MAX_SHOWN: usize = 50;

/// `ids` joined by `, `, at most [`MAX_SHOWN`] of them, each cut to 80 characters.
fn list(ids: &[String]) -> String {
    let mut shown: Vec<String> = ids
        .iter()
        .take(MAX_SHOWN)
        .map(|s| match s.char_indices().nth(80) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.clone(),
        })
        .collect();
    if ids.len() > MAX_SHOWN {
        shown.push(format!("… ({} in all)", ids.len()));
    }
    shown.join(", ")
}

/// `line L, column `C`: ` (what is known of it; line 0 is unknown).
fn at_line(line: u64, column: Option<&str>) -> String {
    let mut parts = Vec::new();
    if line > 0 {
        parts.push(format!("line {line}"));
    }
    if let Some(c) = column {
        parts.push(format!("column `{c}`"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}: ", parts.join(", "))
    }
}

/// The list of problems of one file, displayed one per line (the first [`MAX_SHOWN`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in self.0.iter().take(MAX_SHOWN) {
            write!(f, "\n  - {p}")?;
        }
        if n > MAX_SHOWN {
            write!(f, "\n  - … and {} more", n - MAX_SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Reading, validating or writing an item bank failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// The file does not exist.
    #[error("{path}: no such file", path = .path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Any other I/O failure.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The path given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The extension names no bank format.
    #[error("{path}: unsupported extension (a bank is .csv or .json, optionally .gz)", path = .path.display())]
    UnsupportedExtension {
        /// The path given.
        path: PathBuf,
    },
    /// The file holds nothing.
    #[error("{path}: the file is empty", path = .path.display())]
    Empty {
        /// The path given.
        path: PathBuf,
    },
    /// The file is not UTF-8 text (a binary file, or another encoding).
    #[error("{path}: line {line}: not UTF-8 text (a binary file?)", path = .path.display())]
    NotUtf8 {
        /// The path given.
        path: PathBuf,
        /// Line of the first invalid byte.
        line: u64,
    },
    /// JSON syntax error or wrong structure.
    #[error("{path}: line {line}, column {column}: {message}", path = .path.display())]
    Json {
        /// The path given.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// The file was read but its content is invalid: every problem found, in file order.
    #[error("{path}: {problems}", path = .path.display())]
    Invalid {
        /// The path given (`<memory>` for banks built in code).
        path: PathBuf,
        /// All problems found.
        problems: Problems,
    },
}

impl BankError {
    /// The problems of an `Invalid` error (empty for the other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            BankError::Invalid { problems, .. } => &problems.0,
            _ => &[],
        }
    }
}

/// Reading or aligning response data failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file does not exist.
    #[error("{path}: no such file", path = .path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Any other I/O failure (including a corrupt gzip stream).
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The path given.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no header.
    #[error("{path}: the file is empty", path = .path.display())]
    Empty {
        /// The path given.
        path: PathBuf,
    },
    /// A malformed file: wrong header, wrong number of fields, a cell that is not a response code.
    #[error("{path}: {at}{message}", path = .path.display(), at = at_line(*.line, .column.as_deref()))]
    Format {
        /// The path given.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Column name, when the problem is in one cell.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The same person answered the same item twice (long format).
    #[error("{path}: person `{person}` has two responses to item `{item}`", path = .path.display())]
    DuplicateResponse {
        /// The path given.
        path: PathBuf,
        /// Person id.
        person: String,
        /// Item id.
        item: String,
    },
    /// Data columns that the bank does not have.
    #[error("items not in the bank: {}", list(.0))]
    UnknownItems(Vec<String>),
    /// A response code that the bank's item does not have.
    #[error("item `{item}`: response code {code} is not one of the item's codes {allowed:?}")]
    UnknownCode {
        /// Item id.
        item: String,
        /// The code found in the data.
        code: i64,
        /// The codes the bank records for the item.
        allowed: Vec<i64>,
    },
}
