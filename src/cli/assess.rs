//! `etalon assess`: an assessment in the terminal, on the application layer's assessment API. Questions
//! and progress go to standard error; at the end the profile is printed (JSON with `--json` or on a
//! pipe).

use crate::cli::common::load_bank;
use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::assessment::files::{read_limited, write_atomically};
use etalon::assessment::{Assessment, AssessmentResult, Assessor, Design, ItemView, Response, presets};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct AssessArgs {
    /// Item bank; the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    /// Design (JSON): `{"profile": PROFILE_CONFIG}`, `{"adaptive": SESSION_CONFIG}` or a plain session
    /// configuration (one adaptive test over the bank, as `simulate --config` reads). Default: a
    /// competence profile — every competence of the bank is visited; each stops once its level is
    /// classified (its 60% interval within one level band) or after 2 questions, so the test asks at
    /// most 2 questions per competence (32 on the example bank).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of every random choice (default: from the clock).
    #[arg(long, allow_hyphen_values = true)]
    seed: Option<u64>,
    /// Save the assessment here after every answer, and resume from it if it exists.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// The longest answer line read (an answer is a number or `q`).
const MAX_ANSWER_BYTES: u64 = 4096;

/// Ask until a valid answer: a choice number, a response code, or `q`.
enum Input {
    Answer(Response),
    Quit,
}

fn ask(view: &ItemView, max: usize, input: &mut dyn BufRead, ui: &mut dyn Write) -> Result<Input> {
    let competence = view
        .competence_name
        .as_deref()
        .or(view.competence.as_deref())
        .unwrap_or("-");
    writeln!(ui, "\nQuestion {} of at most {max} — {competence}", view.position)?;
    match &view.prompt {
        Some(p) => writeln!(ui, "{p}")?,
        None => writeln!(ui, "item {} (no text)", view.item)?,
    }
    for (i, choice) in view.choices.iter().enumerate() {
        writeln!(ui, "  {}) {choice}", i + 1)?;
    }
    if view.choices.is_empty() {
        writeln!(ui, "type the response code ({})", join(&view.codes))?;
    }
    loop {
        write!(ui, "> ")?;
        ui.flush()?;
        let mut bytes = Vec::new();
        let n = std::io::Read::take(&mut *input, MAX_ANSWER_BYTES)
            .read_until(b'\n', &mut bytes)
            .context("reading the answer from standard input")?;
        if n == 0 {
            writeln!(ui)?;
            bail!("input ended before the test finished");
        }
        if bytes.last() != Some(&b'\n') && n as u64 == MAX_ANSWER_BYTES {
            writeln!(ui)?;
            bail!("an answer longer than {MAX_ANSWER_BYTES} bytes on standard input: not an answer");
        }
        let line = String::from_utf8_lossy(&bytes);
        let t = line.trim();
        if t.eq_ignore_ascii_case("q") {
            return Ok(Input::Quit);
        }
        match t.parse::<i64>() {
            Ok(k) if !view.choices.is_empty() && k >= 1 && (k as usize) <= view.choices.len() => {
                return Ok(Input::Answer(Response::Choice(k as usize - 1)));
            }
            Ok(code) if view.choices.is_empty() && view.codes.contains(&code) => {
                return Ok(Input::Answer(Response::Code(code)));
            }
            _ if view.choices.is_empty() => {
                writeln!(ui, "please type one of {} (q to quit)", join(&view.codes))?
            }
            _ => writeln!(
                ui,
                "please type a number from 1 to {} (q to quit)",
                view.choices.len()
            )?,
        }
    }
}

fn join(codes: &[i64]) -> String {
    codes.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// The profile as a person reads it.
fn print_profile(result: &AssessmentResult, ui: &mut dyn Write) -> Result<()> {
    writeln!(
        ui,
        "\nDone: {} questions. Overall ability θ = {:.2} (SE {:.2}), score {:.0}.",
        result.items.len(),
        result.theta,
        result.se,
        result.score
    )?;
    if !result.competences.is_empty() {
        writeln!(ui, "\nYour profile (level per competence, and how sure it is):")?;
        for (id, c) in &result.competences {
            writeln!(
                ui,
                "  {id:<5} {:<50} level {} — {} {} ({:.0}%)",
                etalon::assessment::cut(&c.name, 50),
                c.result.level,
                etalon::assessment::certainty::Certainty::of(c.result.level_probability).english(),
                c.result.label,
                100.0 * c.result.level_probability
            )?;
            if let Some(t) = c.next_steps.first() {
                writeln!(ui, "        next step: {} <{}>", t.title, t.url)?;
            }
        }
    }
    if !result.tutorials.is_empty() {
        writeln!(ui, "\nTo learn from the questions you missed:")?;
        for t in &result.tutorials {
            writeln!(ui, "  - {} <{}>", t.title, t.url)?;
        }
    }
    Ok(())
}

pub fn run(args: AssessArgs) -> Result<()> {
    let bank = load_bank(args.bank.as_deref())?;
    let design = match &args.config {
        Some(p) => {
            let bytes = read_limited(
                p,
                etalon::assessment::files::MAX_SETTINGS_BYTES,
                "assessment design",
            )?;
            let text = String::from_utf8_lossy(&bytes);
            Design::from_json(text.strip_prefix('\u{feff}').unwrap_or(&text)).map_err(|e| {
                anyhow::anyhow!(
                    "{}: line {}, column {}: invalid assessment design: {}",
                    p.display(),
                    e.line(),
                    e.column(),
                    etalon::assessment::cut(etalon::items::bank_io::strip_position(&e.to_string()), 300)
                )
            })?
        }
        None => presets::default_design(&bank),
    };
    let assessor = Assessor::new(&bank, design)?;
    if let Some(p) = &args.save {
        let mut inputs = Vec::new();
        inputs.extend(args.bank.as_deref());
        inputs.extend(args.config.as_deref());
        etalon::assessment::files::check_outputs(&[p], &inputs)?;
    }
    let mut ui = std::io::stderr();
    let mut assessment: Assessment = match &args.save {
        Some(p) if p.exists() => {
            let text = read_limited(p, 64 << 20, "saved assessment")?;
            let text = String::from_utf8_lossy(&text);
            let a = assessor
                .resume(&text)
                .with_context(|| format!("{}: cannot resume", p.display()))?;
            writeln!(ui, "Resuming {} after {} answers.", p.display(), a.answered())?;
            a
        }
        _ => {
            let seed = args.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            assessor.start(seed)
        }
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    writeln!(
        ui,
        "{} — adaptive assessment, at most {} questions. Type the number of your answer, q to {}.",
        bank.name().unwrap_or(bank.id()),
        assessor.max_items(),
        if args.save.is_some() {
            "save and quit"
        } else {
            "quit"
        }
    )?;
    while let Some(view) = assessor.current(&mut assessment)? {
        match ask(&view, assessor.max_items(), &mut input, &mut ui)? {
            Input::Quit => {
                match &args.save {
                    Some(p) => writeln!(
                        ui,
                        "Saved after {} answers. Resume with: etalon assess --save {}{}",
                        assessment.answered(),
                        p.display(),
                        args.bank
                            .as_ref()
                            .map_or(String::new(), |b| format!(" --bank {}", b.display()))
                    )?,
                    None => writeln!(
                        ui,
                        "Stopped after {} answers (nothing saved: use --save FILE to resume later).",
                        assessment.answered()
                    )?,
                }
                return Ok(());
            }
            Input::Answer(response) => {
                let feedback = assessor.answer(&mut assessment, &view.item, response)?;
                if let Some(p) = &args.save {
                    let text = assessor.save(&assessment);
                    write_atomically(p, |w| w.write_all(text.as_bytes()))?;
                }
                if feedback.finished {
                    break;
                }
            }
        }
    }
    let result = assessor.result(&assessment);
    if crate::cli::output::json_wanted() {
        crate::cli::output::write_stdout(&format!("{}\n", json!(result)))?;
    } else {
        let mut out = Vec::new();
        print_profile(&result, &mut out)?;
        crate::cli::output::write_stdout(&String::from_utf8_lossy(&out))?;
    }
    Ok(())
}
