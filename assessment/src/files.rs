//! Files for front ends that have a file system (the CLI, the server's start-up): safe writes —
//! a temporary file in the same directory, synced, then renamed over the target, so a crash, a full
//! disk or a size limit leaves the previous file whole — output paths checked before any work, and
//! readers of banks, campaigns and JSON settings with located errors and bounded memory.

use crate::campaign::{Campaign, CampaignError};
use etalon_items::{Bank, BankError};
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest settings or campaign file read (JSON configurations are small).
pub const MAX_SETTINGS_BYTES: u64 = 16 << 20;

/// A file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A line of a dimensions file (`item,dimension`) that cannot be used.
    #[error("{path}, line {line}: {message}")]
    Dimensions {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output that is also an input.
    #[error("{}", output_is_input(output, input))]
    OutputIsInput {
        /// The output path.
        output: PathBuf,
        /// The input it names.
        input: PathBuf,
    },
    /// An output whose directory does not exist, or that is a directory.
    #[error("{path}: {reason}")]
    BadOutput {
        /// The output path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file larger than allowed.
    #[error("{path}: larger than {}, more than any {what}", etalon_items::data::human_bytes(*.limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
        /// What was expected.
        what: &'static str,
    },
    /// Invalid JSON, or JSON of the wrong shape.
    #[error("{path}: {}invalid {what}: {message}", position(*.line, *.column))]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A bank that cannot be read.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// A campaign that does not fit its bank.
    #[error("{path}: {source}")]
    Campaign {
        /// The campaign file.
        path: PathBuf,
        /// Why.
        source: CampaignError,
    },
}

/// `line L, column C: `, or nothing when serde did not know where (a value rejected after parsing).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}, column {column}: ")
    }
}

fn output_is_input(output: &Path, input: &Path) -> String {
    if output == input || output.file_name() == input.file_name() {
        format!(
            "{}: this output is also an input; refusing to overwrite it",
            output.display()
        )
    } else {
        format!(
            "{}: this output is the same file as the input {}; refusing to overwrite it",
            output.display(),
            input.display()
        )
    }
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether two paths name the same existing file (same device and inode on Unix).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                x.dev() == y.dev() && x.ino() == y.ino()
            }
            #[cfg(not(unix))]
            {
                let _ = (x, y);
                std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
            }
        }
        _ => false,
    }
}

/// Check, before any work, that each output can be written: its directory exists, it is not a
/// directory, and it is none of the inputs (nor another output).
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<(), FileError> {
    for (k, out) in outputs.iter().enumerate() {
        if out.as_os_str().is_empty() {
            return Err(FileError::BadOutput {
                path: out.to_path_buf(),
                reason: "empty output path".into(),
            });
        }
        if out.is_dir() {
            return Err(FileError::BadOutput {
                path: out.to_path_buf(),
                reason: "is a directory".into(),
            });
        }
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(FileError::BadOutput {
                path: out.to_path_buf(),
                reason: format!("directory {} does not exist", dir.display()),
            });
        }
        for input in inputs.iter().chain(&outputs[..k]) {
            if same_file(out, input) || (out == input) {
                return Err(FileError::OutputIsInput {
                    output: out.to_path_buf(),
                    input: input.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

/// Write `path` safely: `write` fills a temporary file beside it (`.NAME.PID.tmp`), which is synced
/// and renamed over `path` only when everything was written; on any error the previous file is
/// untouched and the temporary file removed. A symbolic link is followed (the file it names is
/// replaced, the link kept); a path that names no regular file (`/dev/stdout`, a pipe, `/dev/full`)
/// is written in place, never replaced.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), FileError> {
    etalon_items::bank_io::write_replacing(path, write).map_err(|source| {
        if source.kind() == std::io::ErrorKind::IsADirectory {
            FileError::BadOutput {
                path: path.to_path_buf(),
                reason: "is a directory".into(),
            }
        } else {
            FileError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Read a whole (small) file, refusing more than `limit` bytes.
pub fn read_limited(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf).map_err(io_at(path))?;
    if buf.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
            what,
        });
    }
    Ok(buf)
}

/// Read a JSON settings file (a session configuration, a campaign, a level map…) into `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, FileError> {
    let bytes = read_limited(path, MAX_SETTINGS_BYTES, what)?;
    // A byte-order mark (some editors write one) is not part of the JSON.
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    serde_json::from_slice(bytes).map_err(|e| FileError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        what,
        message: crate::cut(etalon_items::bank_io::strip_position(&e.to_string()), 300),
    })
}

/// A bank file, or the embedded example bank.
pub fn load_bank(path: Option<&Path>) -> Result<Bank, FileError> {
    match path {
        Some(p) => Ok(etalon_items::read_bank(p)?),
        None => Ok(etalon_items::example::example_bank()),
    }
}

/// The bank file a campaign names, resolved beside the campaign file (`None`: the example bank).
pub fn campaign_bank_path(campaign_path: &Path, campaign: &Campaign) -> Option<PathBuf> {
    campaign.bank_file().map(|b| {
        campaign_path
            .parent()
            .map_or_else(|| PathBuf::from(b), |d| d.join(b))
    })
}

/// A campaign file and its bank, checked against each other, the campaign resolved on the bank (its
/// design and default level maps: [`Campaign::resolved`]).
pub fn load_campaign(path: &Path) -> Result<(Campaign, Bank), FileError> {
    let campaign: Campaign = read_json(path, "campaign")?;
    let bank = load_bank(campaign_bank_path(path, &campaign).as_deref())?;
    let refuse = |source| FileError::Campaign {
        path: path.to_path_buf(),
        source,
    };
    campaign.check_bank(&bank).map_err(refuse)?;
    let campaign = campaign.resolved(&bank).map_err(refuse)?;
    Ok((campaign, bank))
}

/// A dimensions file, `item,dimension` (header first; a simple structure: each item measures one
/// dimension): item → dimension. An empty field, an item listed twice, a missing header or a short
/// row is refused with its line.
pub fn read_dimensions(path: &Path) -> Result<std::collections::BTreeMap<String, String>, FileError> {
    let bytes = read_limited(path, MAX_SETTINGS_BYTES, "dimensions file")?;
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let at = |line: u64, message: String| FileError::Dimensions {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = rdr.headers().map_err(|e| at(1, e.to_string()))?.clone();
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(ci), Some(cd)) = (col("item"), col("dimension")) else {
        return Err(at(
            1,
            "the header must name the columns `item` and `dimension`".into(),
        ));
    };
    let mut out = std::collections::BTreeMap::new();
    let mut first_line = std::collections::HashMap::new();
    for record in rdr.records() {
        let record = record.map_err(|e| at(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let (Some(item), Some(dim)) = (record.get(ci), record.get(cd)) else {
            return Err(at(line, "a row needs an item and a dimension".into()));
        };
        let (item, dim) = (item.trim(), dim.trim());
        if item.is_empty() || dim.is_empty() {
            return Err(at(line, "empty item or dimension".into()));
        }
        if let Some(first) = first_line.insert(item.to_string(), line) {
            return Err(at(
                line,
                format!("item `{item}` is listed twice (first on line {first})"),
            ));
        }
        out.insert(item.to_string(), dim.to_string());
    }
    if out.is_empty() {
        return Err(at(1, "no item is listed".into()));
    }
    Ok(out)
}
