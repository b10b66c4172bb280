//! The campaign results log (`RESULTS.jsonl`, `docs/FORMATS.md`): one JSON line per finished participant.
//!
//! Reading ([`read_results`]) works on any reader: a truncated *last* line (a crash while writing) is
//! set aside and counted, any other bad line is an error naming it. Writing ([`ResultsLog`]) appends one
//! record per `write` call with its newline, synced to disk before the call returns, under an
//! exclusive file lock, so two runs appending to one file never interleave and never reuse a
//! participant number; a truncated last line left by a crash is moved to `<file>.truncated` before
//! anything is appended.

use crate::campaign::ParticipantResult;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A results log that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not a participant result.
    #[error("{path}: line {line}: not a participant result: {message}")]
    Line {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A line longer than [`MAX_LINE`].
    #[error("{path}: line {line} is longer than {}: not a results log", etalon_items::data::human_bytes(MAX_LINE as u64))]
    LineTooLong {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
}

/// The longest line a results log may hold (a participant with thousands of competences fits).
pub const MAX_LINE: usize = 4 << 20;

/// What a log holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadResults {
    /// The results, in file order, with the 1-based line of each.
    pub results: Vec<ParticipantResult>,
    /// Line number of each result.
    pub lines: Vec<usize>,
    /// Whether an incomplete last line was set aside.
    pub truncated_last_line: bool,
}

/// Read a results log from any reader; `source` names it in errors.
pub fn read_results(input: impl Read, source: impl AsRef<Path>) -> Result<ReadResults, ResultsError> {
    let path = source.as_ref();
    let io = |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = std::io::BufReader::new(input.take(u64::MAX));
    let mut out = ReadResults {
        results: Vec::new(),
        lines: Vec::new(),
        truncated_last_line: false,
    };
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line += 1;
        let complete = buf.last() == Some(&b'\n');
        if !complete && buf.len() > MAX_LINE {
            return Err(ResultsError::LineTooLong {
                path: path.to_path_buf(),
                line,
            });
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ParticipantResult>(&text) {
            Ok(r) => {
                out.results.push(r);
                out.lines.push(line);
            }
            // No newline: the writer was interrupted in this line. It is the last one by construction
            // (and a record: anything else, a binary file say, is not a results log).
            Err(_) if !complete && text.trim_start().starts_with('{') => out.truncated_last_line = true,
            Err(e) => {
                let hint = if matches!(text.trim(), "{" | "[") {
                    " (a JSON document spread over lines? A results log holds one participant per line)"
                } else {
                    ""
                };
                return Err(ResultsError::Line {
                    path: path.to_path_buf(),
                    line,
                    message: format!(
                        "{}{hint}",
                        crate::cut(etalon_items::bank_io::strip_position(&e.to_string()), 300)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// One result as its log line, newline included.
pub fn result_line(result: &ParticipantResult) -> String {
    let mut s = serde_json::to_string(result)
        .unwrap_or_else(|e| unreachable!("a participant result serialises: {e}"));
    s.push('\n');
    s
}

/// A results log open for appending (see the module documentation for the guarantees).
#[derive(Debug)]
pub struct ResultsLog {
    path: PathBuf,
    file: std::fs::File,
    /// Bytes of the file already counted in `lines`.
    counted: u64,
    /// Complete lines in the file.
    lines: usize,
    /// Bytes of an incomplete last line set aside on opening.
    set_aside: u64,
}

impl ResultsLog {
    /// Open (creating it if needed); an incomplete last line is moved to `<file>.truncated`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ResultsError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| ResultsError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io)?;
        let mut log = ResultsLog {
            path: path.clone(),
            file,
            counted: 0,
            lines: 0,
            set_aside: 0,
        };
        log.file.lock().map_err(io)?;
        let repaired = log.repair_and_count();
        let unlocked = log.file.unlock();
        repaired.map_err(io)?;
        unlocked.map_err(io)?;
        Ok(log)
    }

    /// Bytes of an incomplete last line that opening set aside (0 when the log was whole).
    pub fn set_aside_bytes(&self) -> u64 {
        self.set_aside
    }

    /// Complete lines in the log (as of the last open or append).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Count the lines appended by others since we last looked; move an incomplete tail aside.
    fn repair_and_count(&mut self) -> std::io::Result<()> {
        let len = self.file.metadata()?.len();
        if len <= self.counted {
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(self.counted))?;
        let mut reader = std::io::BufReader::new(&self.file);
        let mut buf = Vec::new();
        let mut offset = self.counted;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                offset += n as u64;
                if !buf.trim_ascii().is_empty() {
                    self.lines += 1;
                }
            } else {
                // An incomplete last line: keep it beside the log, then cut it off.
                let mut aside = self.path.clone().into_os_string();
                aside.push(".truncated");
                let mut side = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(PathBuf::from(aside))?;
                side.write_all(&buf)?;
                side.write_all(b"\n")?;
                side.sync_all()?;
                self.file.set_len(offset)?;
                self.set_aside += buf.len() as u64;
                break;
            }
        }
        self.counted = offset;
        Ok(())
    }

    /// Append one result, numbering it `{prefix}{n}` where n is one more than the lines already in the
    /// log (read under the lock, so concurrent writers never reuse a number). The line is written in
    /// one call and synced before this returns. Returns the number given.
    pub fn append_numbered(
        &mut self,
        result: &mut ParticipantResult,
        prefix: &str,
    ) -> Result<usize, ResultsError> {
        self.append_with(|n| {
            result.participant = format!("{prefix}{n}");
            result_line(result)
        })
    }

    /// Append one result as it is (its participant id kept).
    pub fn append(&mut self, result: &ParticipantResult) -> Result<usize, ResultsError> {
        self.append_with(|_| result_line(result))
    }

    fn append_with(&mut self, line: impl FnOnce(usize) -> String) -> Result<usize, ResultsError> {
        let path = self.path.clone();
        let io = |source| ResultsError::Io {
            path: path.clone(),
            source,
        };
        self.file.lock().map_err(io)?;
        let written = (|| {
            self.repair_and_count()?;
            let n = self.lines + 1;
            let text = line(n);
            // A write that fails part way (a full disk, a file-size limit) is taken back, so that
            // the log only ever holds whole lines.
            if let Err(e) = self
                .file
                .write_all(text.as_bytes())
                .and_then(|()| self.file.sync_data())
            {
                let _ = self.file.set_len(self.counted);
                return Err(e);
            }
            self.counted += text.len() as u64;
            self.lines = n;
            Ok(n)
        })();
        let unlocked = self.file.unlock();
        let n = written.map_err(io)?;
        unlocked.map_err(io)?;
        Ok(n)
    }
}

/// What a simulated campaign run did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// Participants simulated.
    pub participants: usize,
    /// The first participant number given.
    pub first_participant: Option<usize>,
    /// Share of (participant, competence) pairs whose level equals the level of the true θ.
    pub exact_level_agreement: f64,
    /// Mean items per competence.
    pub mean_items_per_competence: f64,
    /// Mean items per participant.
    pub mean_items_per_participant: f64,
}

/// A simulated run that stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A participant's test failed.
    #[error(transparent)]
    Assessment(#[from] crate::AssessmentError),
    /// The log could not be written.
    #[error(transparent)]
    Log(#[from] ResultsError),
}

/// Simulate `participants` participants of `campaign` (in parallel, one per worker at a time) and
/// append each to `log` as soon as it finishes, numbered after the lines already there; participant i
/// (counting from the log's existing lines) draws from `derive_seed(seed, i)`.
pub fn run_simulated(
    log: &mut ResultsLog,
    assessor: &crate::Assessor,
    campaign: &crate::campaign::Campaign,
    participants: usize,
    seed: u64,
) -> Result<RunSummary, RunError> {
    use rayon::prelude::*;
    let first = log.lines();
    let (mut agree, mut cells, mut items) = (0usize, 0usize, 0usize);
    let mut first_number = None;
    let chunk = rayon::current_num_threads().max(1);
    for chunk_start in (0..participants).step_by(chunk) {
        let results: Vec<ParticipantResult> = (chunk_start..(chunk_start + chunk).min(participants))
            .into_par_iter()
            .map(|i| {
                crate::campaign::simulate_participant(
                    assessor,
                    campaign,
                    "",
                    etalon_engine::simulate::derive_seed(seed, (first + i) as u64),
                )
            })
            .collect::<Result<_, _>>()?;
        for mut r in results {
            for (cid, comp) in &r.competences {
                let map = campaign.assessment().levels.for_competence(cid);
                if let Some(t) = comp.true_theta {
                    agree += usize::from(map.level(t) == comp.level);
                }
                cells += 1;
                items += comp.items;
            }
            let n = log.append_numbered(&mut r, "P")?;
            first_number.get_or_insert(n);
        }
    }
    let per = cells.max(1) as f64;
    Ok(RunSummary {
        participants,
        first_participant: first_number,
        exact_level_agreement: agree as f64 / per,
        mean_items_per_competence: items as f64 / per,
        mean_items_per_participant: items as f64 / participants.max(1) as f64,
    })
}

/// Results as CSV, one row per participant and competence:
/// `participant,competence,theta,se,level,label,items,score` (`score` is the participant's total).
pub fn write_results_csv(results: &[ParticipantResult], output: impl Write) -> csv::Result<()> {
    let mut w = csv::Writer::from_writer(output);
    w.write_record([
        "participant",
        "competence",
        "theta",
        "se",
        "level",
        "label",
        "items",
        "score",
    ])?;
    for r in results {
        for (c, pc) in &r.competences {
            w.write_record([
                r.participant.as_str(),
                c,
                &pc.theta.to_string(),
                &pc.se.to_string(),
                &pc.level.to_string(),
                &pc.label,
                &pc.items.to_string(),
                &r.score.to_string(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}
