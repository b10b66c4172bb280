//! `etalon assess`: an adaptive test in the terminal. Questions, choices and progress go to standard
//! error (the terminal); the final result is one JSON object on standard output, like every command.

use crate::cli::common::load_bank;
use anyhow::{Context, Result, bail};
use clap::Args;
use etalon::engine::config::SessionConfig;
use etalon::engine::session::{CatEngine, Next, Session};
use etalon::items::Item;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct AssessArgs {
    /// Item bank; the embedded example bank when omitted.
    #[arg(long)]
    bank: Option<PathBuf>,
    /// Session configuration (JSON); default: EAP, MFI, content balanced over the competences, stop at
    /// SE ≤ 0.4 or 20 items.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Save the session here after every answer, and resume from it if it exists.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// The default configuration of an interactive test: short, visiting every competence once (up to 16)
/// before stopping at SE ≤ 0.35 or 24 items.
fn default_config(bank: &etalon::items::Bank) -> SessionConfig {
    let mut c = SessionConfig::default();
    let competences = bank
        .items()
        .iter()
        .filter_map(|i| i.competence.as_ref())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    c.stopping.max_items = 24;
    c.stopping.min_items = competences.clamp(1, 16);
    c.stopping.se_target = Some(0.35);
    c.content.visit_all = competences > 1;
    c.content.avoid_consecutive = true;
    c.content.one_per_tag_prefix = "skill:".into();
    c
}

/// Per-competence profile from a finished session: EAP of each competence's own answers on the session
/// grid, its level on the bank's level map (PIX's by default), the probability of that level, and the
/// next-step tutorials.
fn profile(engine: &CatEngine, session: &Session) -> Result<Vec<serde_json::Value>> {
    use etalon::engine::estimate::{Answer, EapTable};
    use etalon::engine::levels::Levels;
    let bank = engine.bank();
    let levels = match bank.levels() {
        Some(v) => Levels::from_json(v).map_err(|e| anyhow::anyhow!("bank levels: {e}"))?,
        None => Levels::default(),
    };
    let table: &EapTable = engine.table();
    let mut by_comp: std::collections::BTreeMap<String, Vec<Answer>> = std::collections::BTreeMap::new();
    for r in session.history().iter().filter(|r| r.scored) {
        if let (Some(j), Some(c)) = (
            bank.position(&r.item),
            bank.item(&r.item).and_then(|i| i.competence.clone()),
        ) {
            by_comp
                .entry(c)
                .or_default()
                .push(Answer::new(j, r.category as usize));
        }
    }
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for (c, answers) in by_comp {
        let e = table.eap(&answers, &mut buf);
        let map = levels.for_competence(&c);
        let level = map.level(e.theta);
        let name = bank
            .framework()
            .competence(&c)
            .map_or_else(|| c.clone(), |x| x.name.clone());
        let next = etalon::engine::profile::next_step_tutorials(bank, &c, e.theta, map);
        out.push(json!({
            "competence": c, "name": name, "theta": e.theta, "se": e.se, "level": level,
            "label": map.label(level), "level_probability": map.probabilities(e.theta, e.se)[level],
            "items": answers.len(), "next_steps": next,
        }));
    }
    Ok(out)
}

fn ask(item: &Item, n: usize, input: &mut dyn BufRead, ui: &mut dyn Write) -> Result<i64> {
    let content = item.content.as_ref();
    writeln!(
        ui,
        "\nQuestion {n}  [{}]",
        item.competence.as_deref().unwrap_or("-")
    )?;
    match content {
        Some(c) => {
            writeln!(ui, "{}", c.prompt)?;
            for (i, choice) in c.choices.iter().enumerate() {
                writeln!(ui, "  {}) {choice}", i + 1)?;
            }
        }
        None => writeln!(ui, "item {} (no text): type the response code", item.id)?,
    }
    let codes = item.response_codes();
    loop {
        write!(ui, "> ")?;
        ui.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            bail!("input ended before the test finished");
        }
        let t = line.trim();
        if t.eq_ignore_ascii_case("q") {
            bail!("test abandoned");
        }
        match (content, t.parse::<i64>()) {
            (Some(c), Ok(k)) if k >= 1 && (k as usize) <= c.choices.len() => {
                let chosen = k as usize - 1;
                return Ok(match c.correct {
                    Some(right) => i64::from(chosen == right),
                    None => codes.get(chosen).copied().unwrap_or(chosen as i64),
                });
            }
            (None, Ok(code)) if codes.contains(&code) => return Ok(code),
            _ => {
                let n = content.map_or(codes.len(), |c| c.choices.len());
                writeln!(ui, "please type a number from 1 to {n} (q to quit)")?;
            }
        }
    }
}

pub fn run(args: AssessArgs) -> Result<()> {
    let bank = load_bank(args.bank.as_deref())?;
    let config = match &args.config {
        Some(p) => serde_json::from_str(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .with_context(|| format!("{}: invalid session configuration", p.display()))?,
        None => default_config(&bank),
    };
    let engine = CatEngine::new(&bank, config)?;
    let mut session: Session = match &args.save {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{}: not a saved session", p.display()))?
        }
        _ => {
            let seed = args.seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            engine.start(seed)
        }
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut ui = std::io::stderr();
    writeln!(
        ui,
        "{} — adaptive test. Type the number of your answer, q to quit.",
        bank.name().unwrap_or(bank.id())
    )?;
    loop {
        let id = match engine.next(&mut session)? {
            Next::Finished(_) => break,
            Next::Item(id) => id,
        };
        let item = bank.item(&id).context("the engine offered an unknown item")?;
        let response = ask(item, session.history().len() + 1, &mut input, &mut ui)?;
        let e = engine.record(&mut session, &id, response)?;
        writeln!(ui, "  estimate so far: θ = {:.2} (SE {:.2})", e.theta, e.se)?;
        if let Some(p) = &args.save {
            std::fs::write(p, serde_json::to_string(&session)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
    }
    let result = engine.result(&session);
    let missed: Vec<&Item> = session
        .history()
        .iter()
        .filter(|r| r.scored && r.category == 0)
        .filter_map(|r| bank.item(&r.item))
        .collect();
    writeln!(
        ui,
        "\nDone: {} questions. Ability θ = {:.2}, SE {:.2}.",
        result.length, result.theta, result.se
    )?;
    let tutorials: Vec<serde_json::Value> = missed
        .iter()
        .flat_map(|i| {
            i.tutorials
                .iter()
                .map(move |t| json!({"item": i.id, "title": t.title, "url": t.url}))
        })
        .collect();
    if !tutorials.is_empty() {
        writeln!(ui, "To learn from the questions you missed:")?;
        for t in &tutorials {
            writeln!(
                ui,
                "  - {} <{}>",
                t["title"].as_str().unwrap_or(""),
                t["url"].as_str().unwrap_or("")
            )?;
        }
    }
    let profile = profile(&engine, &session)?;
    if !profile.is_empty() {
        writeln!(
            ui,
            "\nYour profile (one answer or two per competence: read the certainty):"
        )?;
        for p in &profile {
            writeln!(
                ui,
                "  {:<4} {:<48} level {} ({}), {:.0}% sure",
                p["competence"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or(""),
                p["level"],
                p["label"].as_str().unwrap_or(""),
                100.0 * p["level_probability"].as_f64().unwrap_or(0.0)
            )?;
            if let Some(t) = p["next_steps"].as_array().and_then(|a| a.first()) {
                writeln!(
                    ui,
                    "         next step: {} <{}>",
                    t["title"].as_str().unwrap_or(""),
                    t["url"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    crate::cli::print_json(&json!({
        "profile": profile,
        "theta": result.theta,
        "se": result.se,
        "length": result.length,
        "reason": result.reason,
        "items": result.items,
        "per_competence": result.per_competence,
        "tutorials": tutorials,
    }));
    Ok(())
}
