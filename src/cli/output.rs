//! Printing results: the FORMATS JSON object on a pipe or with `--json`, a readable summary on a
//! terminal. A closed pipe (`etalon … | head`) ends the program quietly, like other Unix tools; any
//! other write error (a full disk) is an error.

use serde_json::Value;
use std::io::{IsTerminal, Write};

static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Record the global `--json` flag.
pub fn set_json(flag: bool) {
    JSON.store(flag, std::sync::atomic::Ordering::Relaxed);
}

/// Whether to print JSON (`--json`, or standard output is not a terminal).
pub fn json_wanted() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed) || !std::io::stdout().is_terminal()
}

/// Print `value` as one JSON line, or as a readable summary on a terminal.
pub fn emit(value: &Value) -> anyhow::Result<()> {
    let text = if json_wanted() {
        format!("{value}\n")
    } else {
        human(value)
    };
    write_stdout(&text)
}

/// Write to standard output; a closed pipe exits quietly (status 0, as `head` expects).
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(anyhow::anyhow!("standard output: {e}")),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() => format_number(x),
            _ => n.to_string(),
        },
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// Four significant decimals for readable output (the JSON keeps every digit).
fn format_number(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e7) {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{x:.3e}")
    }
}

/// A JSON summary as aligned `key  value` lines; arrays of objects become tables, nested objects
/// indented blocks.
pub fn human(value: &Value) -> String {
    let mut out = String::new();
    render(value, 0, &mut out);
    out
}

fn render(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            let width = map.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (k, v) in map {
                let label = k.replace('_', " ");
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{label}:\n"));
                        render(v, indent + 2, out);
                    }
                    Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                        out.push_str(&format!("{pad}{label}:\n"));
                        table(a, indent + 2, out);
                    }
                    Value::Array(a) => {
                        let items: Vec<String> = a.iter().map(scalar).collect();
                        let joined = if items.is_empty() {
                            "-".into()
                        } else {
                            items.join(", ")
                        };
                        out.push_str(&format!(
                            "{pad}{label:<width$}  {}\n",
                            crate::cli::output::clip(&joined, 200)
                        ));
                    }
                    _ => out.push_str(&format!("{pad}{label:<width$}  {}\n", scalar(v))),
                }
            }
        }
        Value::Array(a) => table(a, indent, out),
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn table(rows: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| {
                    clip(
                        &r.get(c).map_or_else(String::new, |v| match v {
                            Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
                            Value::Object(_) => v.to_string(),
                            other => scalar(other),
                        }),
                        60,
                    )
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: &[String]| {
        let parts: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        format!("{pad}{}\n", parts.join("  ").trim_end())
    };
    out.push_str(&line(&columns));
    for r in &cells {
        out.push_str(&line(r));
    }
}

/// `s` cut to `max` characters.
pub fn clip(s: &str, max: usize) -> String {
    etalon::assessment::cut(s, max)
}

/// Write a CSV file safely (temporary file, synced, renamed): `fill` writes its records.
pub fn write_csv(
    path: &std::path::Path,
    fill: impl FnOnce(&mut csv::Writer<&mut dyn std::io::Write>) -> csv::Result<()>,
) -> anyhow::Result<()> {
    etalon::assessment::files::write_atomically(path, |w| {
        let mut c = csv::Writer::from_writer(w);
        fill(&mut c).map_err(std::io::Error::other)?;
        c.flush()
    })?;
    Ok(())
}
