//! The bad-input and fault catalogue (issue "Nothing lost, nothing trusted"): every case spawns the
//! real `etalon` binary on crafted files, under a deadline, and checks the documented behaviour —
//! exit 0 for valid use, 1 with a message naming the file (and line, item or field) for bad input,
//! 2 for arguments the parser rejects; never a panic, never a hang, never megabytes of message, never
//! a path said twice in one line, no temporary file left behind, and the inputs byte-identical.
//!
//! The cases are tables (one `#[test]` per class, each failure reported by case name); the faults
//! (killed mid-write, file-size limits, full disks, closed pipes, parallel writers, endless input)
//! are scenarios below them.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_etalon");
/// Every spawn finishes within this, or is killed and the case fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// Standard error of any run stays below this (messages never echo megabytes).
const MAX_STDERR: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// What a run did.
struct Ran {
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: String,
    stderr_len: usize,
    timed_out: bool,
    elapsed: Duration,
}

impl Ran {
    fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
    fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Read a stream to its end on a thread, keeping the first MiB and counting every byte.
fn drain(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0;
        if let Some(mut s) = stream {
            let mut buf = [0u8; 1 << 16];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
                if kept.len() < 1 << 20 {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
        (kept, total)
    })
}

/// Wait for `child` at most `deadline`, killing it then; collect what it wrote.
fn finish(mut child: Child, deadline: Duration) -> Ran {
    let start = Instant::now();
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() > deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let elapsed = start.elapsed();
    let (stdout, _) = out.join().unwrap_or_default();
    let (stderr, stderr_len) = err.join().unwrap_or_default();
    Ran {
        status,
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stderr_len,
        timed_out,
        elapsed,
    }
}

/// A command running `etalon args` in `dir` (under `wrap`, e.g. `prlimit …`, when given).
fn command(dir: &Path, wrap: &[String], args: &[String]) -> Command {
    let mut c = match wrap.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(args).current_dir(dir).env_remove("RUST_BACKTRACE");
    c
}

/// Run `etalon args` in `dir` with `stdin`, under the deadline.
fn run_in(dir: &Path, wrap: &[String], args: &[String], stdin: Option<&[u8]>) -> Ran {
    let mut c = command(dir, wrap, args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("the etalon binary starts");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        // A child that stops reading early closes the pipe: that is not an error here.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    finish(child, DEADLINE)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Fixtures: valid files every case directory starts with
// ---------------------------------------------------------------------------------------------

/// Valid inputs, made once with the binary itself.
fn fixtures() -> &'static BTreeMap<String, Vec<u8>> {
    static FIXTURES: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for args in [
            "bank example --out bank.json",
            "bank example --out bank.csv",
            "data generate --persons 200 --seed 7 --out data.csv",
            "data generate --persons 40 --format long --seed 8 --out long.csv",
            "campaign example --out camp.json",
            "campaign run --campaign camp.json --participants 3 --out results.jsonl --threads 1",
        ] {
            let ran = run_in(d, &[], &strings(&args.split(' ').collect::<Vec<_>>()), None);
            assert_eq!(ran.code(), Some(0), "fixture `{args}`: {}", ran.stderr);
        }
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(&path).unwrap());
        }
        let mut campaign: serde_json::Value = serde_json::from_slice(&files["camp.json"]).unwrap();
        campaign["bank"] = "bank.json".into();
        files.insert("campb.json".into(), serde_json::to_vec_pretty(&campaign).unwrap());
        for (name, text) in [
            ("thetas.csv", "theta\n-1\n0\n1\n"),
            (
                "levels.json",
                r#"{"cuts": [-1, 0, 1], "labels": ["a", "b", "c", "d"]}"#,
            ),
            (
                "session.json",
                r#"{"stopping": {"max_items": 10, "se_target": 0.4}}"#,
            ),
            ("design.json", r#"{"adaptive": {"stopping": {"max_items": 3}}}"#),
            ("spec.json", r#"{"model": "2pl", "em": {"max_cycles": 50}}"#),
            ("mirt.csv", "item,a,b,g,u\nm1,1.2,0.3,0,1\nm2,0.8,-0.5,0,1\n"),
        ] {
            files.insert(name.into(), text.as_bytes().to_vec());
        }
        files
    })
}

/// The bytes of fixture `name`.
/// Groups of the 200 persons of `data.csv`: the first half `a`, the rest `b`.
fn two_groups() -> Vec<u8> {
    let mut g = String::from("person,group\n");
    for p in 1..=200 {
        g.push_str(&format!("{p},{}\n", if p <= 100 { "a" } else { "b" }));
    }
    g.into_bytes()
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures()[name].clone()
}

/// The bank JSON as a value, to craft variants.
fn bank_value() -> serde_json::Value {
    serde_json::from_slice(&fixture("bank.json")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// A file a case writes before running.
#[derive(Clone)]
enum Content {
    Bytes(Vec<u8>),
    /// A sparse file of this many zero bytes (no disk space used).
    Sparse(u64),
    Symlink(String),
    Dir,
}

/// One catalogue entry.
#[derive(Clone)]
struct Case {
    name: String,
    args: Vec<String>,
    files: Vec<(String, Content)>,
    stdin: Option<Vec<u8>>,
    wrap: Vec<String>,
    code: i32,
    needles: Vec<String>,
    /// Files that must be byte-identical afterwards.
    keep: Vec<String>,
    /// Files that must exist afterwards.
    creates: Vec<String>,
}

/// A case running `etalon ARGS` (split on spaces); expected to succeed until told otherwise.
fn case(name: &str, args: &str) -> Case {
    Case {
        name: name.into(),
        args: args.split_whitespace().map(String::from).collect(),
        files: Vec::new(),
        stdin: None,
        wrap: Vec::new(),
        code: 0,
        needles: Vec::new(),
        keep: Vec::new(),
        creates: Vec::new(),
    }
}

impl Case {
    fn file(mut self, name: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.files
            .push((name.into(), Content::Bytes(bytes.as_ref().to_vec())));
        self
    }
    fn sparse(mut self, name: &str, len: u64) -> Self {
        self.files.push((name.into(), Content::Sparse(len)));
        self
    }
    fn link(mut self, name: &str, target: &str) -> Self {
        self.files.push((name.into(), Content::Symlink(target.into())));
        self
    }
    fn dir(mut self, name: &str) -> Self {
        self.files.push((name.into(), Content::Dir));
        self
    }
    fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }
    fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(bytes.as_ref().to_vec());
        self
    }
    /// Run under `prlimit --as=2000000000` (bounded memory).
    fn bounded_memory(mut self) -> Self {
        self.wrap = strings(&["prlimit", "--as=2000000000", "--"]);
        self
    }
    /// Succeeds; stdout or stderr mentions every needle.
    fn ok(mut self, needles: &[&str]) -> Self {
        self.code = 0;
        self.needles = strings(needles);
        self
    }
    /// Bad input: exit 1, stderr mentions every needle.
    fn err(mut self, needles: &[&str]) -> Self {
        self.code = 1;
        self.needles = strings(needles);
        self
    }
    /// Rejected by the argument parser: exit 2, stderr mentions every needle.
    fn usage(mut self, needles: &[&str]) -> Self {
        self.code = 2;
        self.needles = strings(needles);
        self
    }
    fn keeps(mut self, files: &[&str]) -> Self {
        self.keep.extend(strings(files));
        self
    }
    fn creates(mut self, files: &[&str]) -> Self {
        self.creates.extend(strings(files));
        self
    }
}

/// Lay out the fixtures and the case's files in a fresh directory.
fn prepare(case: &Case) -> (tempfile::TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut before = fixtures().clone();
    for (name, content) in &case.files {
        let path = dir.path().join(name);
        match content {
            Content::Bytes(b) => {
                before.insert(name.clone(), b.clone());
            }
            Content::Sparse(len) => {
                std::fs::File::create(&path).unwrap().set_len(*len).unwrap();
                before.remove(name);
            }
            Content::Symlink(target) => {
                std::os::unix::fs::symlink(target, &path).unwrap();
                before.remove(name);
            }
            Content::Dir => {
                std::fs::create_dir_all(&path).unwrap();
                before.remove(name);
            }
        }
    }
    for (name, bytes) in &before {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    (dir, before)
}

/// The words of a line that could be file names (split at anything but `[A-Za-z0-9_./-]`).
fn path_tokens(line: &str) -> Vec<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The (line, column) pairs a message mentions, as `line L, column C` or serde's `line L column C`.
fn positions(text: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("line ") {
        let rest = &text[i + 5..];
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let n = digits(rest);
        let Ok(line) = rest[..n].parse::<u64>() else {
            continue;
        };
        let after = &rest[n..];
        let Some(col) = after
            .strip_prefix(", column ")
            .or_else(|| after.strip_prefix(" column "))
        else {
            continue;
        };
        if let Ok(column) = col[..digits(col)].parse::<u64>() {
            out.push((line, column));
        }
    }
    out
}

/// The message checks every run passes, whatever its exit code.
fn check_messages(ran: &Ran, names: &[String]) -> Result<(), String> {
    if ran.timed_out {
        return Err(format!("did not finish within {DEADLINE:?}"));
    }
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "memory allocation of",
        "stack backtrace",
    ] {
        if ran.stderr.contains(bad) {
            return Err(format!("stderr contains `{bad}`: {}", cut(&ran.stderr)));
        }
    }
    if ran.stderr_len >= MAX_STDERR {
        return Err(format!(
            "stderr is {} bytes (at most {MAX_STDERR}): {}",
            ran.stderr_len,
            cut(&ran.stderr)
        ));
    }
    // The messages: `error: …` and `warning: …` lines and the problem lists under them.
    let messages = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("warning:") || l.starts_with("  - "));
    for line in messages {
        let tokens = path_tokens(line);
        for name in names {
            let n = tokens
                .iter()
                .filter(|t| *t == name || t.ends_with(&format!("/{name}")))
                .count();
            if n > 1 {
                return Err(format!("`{name}` appears {n} times in one line: {line}"));
            }
        }
        let positions = positions(line);
        if let Some(p) = positions
            .iter()
            .find(|p| positions.iter().filter(|q| q == p).count() > 1)
        {
            return Err(format!("position {p:?} said twice: {line}"));
        }
        let segments: Vec<&str> = line.split(": ").map(str::trim).collect();
        if let Some(w) = segments.windows(2).find(|w| w[0] == w[1] && !w[0].is_empty()) {
            return Err(format!("`{}` said twice in a row: {line}", w[0]));
        }
    }
    Ok(())
}

fn cut(s: &str) -> String {
    let s: String = s.chars().take(1500).collect();
    s.replace('\n', "\n      ")
}

/// Run one case; `Err` says what went wrong.
fn run_case(case: &Case) -> Result<Duration, String> {
    let (dir, before) = prepare(case);
    let ran = run_in(dir.path(), &case.wrap, &case.args, case.stdin.as_deref());
    if std::env::var_os("CATALOGUE_SHOW").is_some() {
        // `CATALOGUE_SHOW=1 cargo test --test catalogue -- --nocapture`: every case's message.
        let first = ran.stderr.lines().find(|l| l.starts_with("error"));
        eprintln!("      {} → {:?}: {}", case.name, ran.code(), first.unwrap_or(""));
    }
    let mut names: Vec<String> = before.keys().cloned().collect();
    names.extend(case.files.iter().map(|(n, _)| n.clone()));
    names.extend(
        case.args
            .iter()
            .filter(|a| a.contains('.') && !a.starts_with('-'))
            .cloned(),
    );
    check_messages(&ran, &names)?;
    if ran.code() != Some(case.code) {
        return Err(format!(
            "exit {:?} (signal {:?}), expected {}; stderr: {}",
            ran.code(),
            ran.signal(),
            case.code,
            cut(&ran.stderr)
        ));
    }
    let haystack = if case.code == 0 {
        format!("{}\n{}", ran.stdout_text(), ran.stderr)
    } else {
        ran.stderr.clone()
    };
    for n in &case.needles {
        if !haystack.contains(n.as_str()) {
            return Err(format!("output lacks `{n}`: {}", cut(&haystack)));
        }
    }
    if case.code == 1 && !ran.stderr.lines().any(|l| l.starts_with("error: ")) {
        return Err(format!("no `error: ` line: {}", cut(&ran.stderr)));
    }
    for name in &case.keep {
        let now = std::fs::read(dir.path().join(name)).map_err(|e| format!("{name}: {e}"))?;
        if Some(&now) != before.get(name) {
            return Err(format!("{name} changed"));
        }
    }
    for name in &case.creates {
        if !dir.path().join(name).exists() {
            return Err(format!("{name} was not written"));
        }
    }
    let leftovers = temporary_files(dir.path());
    if !leftovers.is_empty() {
        return Err(format!("temporary files left behind: {leftovers:?}"));
    }
    Ok(ran.elapsed)
}

/// `.NAME.PID.tmp` files in `dir`.
fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Run a class of cases; fail listing every failed case by name.
fn run_class(class: &str, cases: Vec<Case>) {
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case name {}", c.name);
    }
    let start = Instant::now();
    let mut failures = Vec::new();
    for c in &cases {
        match run_case(c) {
            Ok(t) => eprintln!("ok    {class} / {} ({:.0} ms)", c.name, t.as_secs_f64() * 1e3),
            Err(e) => {
                eprintln!("FAIL  {class} / {}: {e}", c.name);
                failures.push(format!("{}: {e}", c.name));
            }
        }
    }
    eprintln!(
        "{class}: {} cases, {} failed, {:.1} s",
        cases.len(),
        failures.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} {class} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Class 1: every command and documented option — valid use runs, invalid values are refused clearly
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
fn options_cases() -> Vec<Case> {
    let mut v = vec![
        // Help and version: every command, with defaults and allowed values.
        case("help", "--help").ok(&["Usage: etalon", "calibrate", "campaign"]),
        case("version", "--version").ok(&["etalon"]),
        case("help of assess", "assess --help").ok(&["--save"]),
        case("help of bank", "bank --help").ok(&["validate", "convert", "example"]),
        case("help of bank validate", "bank validate --help").ok(&["BANK"]),
        case("help of bank convert", "bank convert --help").ok(&["--from", "mirt"]),
        case("help of bank example", "bank example --help").ok(&["--out"]),
        case("help of calibrate", "calibrate --help").ok(&["--quadrature", "3 to 1001", "--prior-guessing", "--dimensions"]),
        case("help of campaign", "campaign --help").ok(&["example", "run", "report"]),
        case("help of campaign run", "campaign run --help").ok(&["--participants", "[default: 1]"]),
        case("help of campaign report", "campaign report --help").ok(&["--svg"]),
        case("help of campaign example", "campaign example --help").ok(&["--out"]),
        case("help of data generate", "data generate --help").ok(&["--persons", "--answers"]),
        case("help of data info", "data info --help").ok(&["--format"]),
        case("help of data items", "data items --help").ok(&["--key", "--distractors", "--out"]),
        case("help of data key", "data key --help").ok(&["--key", "--out"]),
        case("help of score", "score --help").ok(&["[default: 61]", "[default: -6,6]", "eap, map, ml, wle"]),
        case("help of simulate", "simulate --help").ok(&["--exposure", "randomesque:K"]),
        case("help of serve", "serve --help").ok(&["--listen", "--db", "--max-body", "--no-demo", "--log-json"]),
        case("help of org create", "org create --help").ok(&["NAME", "--db"]),
        case("help of bench serve", "bench serve --help").ok(&["--participants", "--seconds", "--max-answers", "--timeout-ms", "--code", "--url", "--seed"]),
        // The service's commands: every option's bad values are refused naming it (a running server is
        // tested in tests/service*.rs).
        case("org create", "org create acme --db sqlite:o.db").ok(&["acme", "etk_"]).creates(&["o.db"]),
        case("org create unreachable postgres", "org create acme --db postgres://nobody@127.0.0.1:1/x").err(&["storage unavailable"]),
        case("org create in a directory", "org create acme --db sqlite:d").dir("d").err(&["d"]),
        case("serve max-body zero", "serve --max-body 0").err(&["--max-body"]),
        case("serve bad listen", "serve --listen 256.0.0.1:80").usage(&["--listen"]),
        case("serve empty sqlite path", "serve --db sqlite:").err(&["needs a file path"]),
        case("serve unreachable postgres", "serve --db postgres://nobody@127.0.0.1:1/x").err(&["storage unavailable"]),
        case("bench seconds zero", "bench serve --seconds 0").err(&["--seconds"]),
        case("bench unreachable", "bench serve --url http://127.0.0.1:1 --seconds 1").err(&["unreachable"]),
        case("bench no participants", "bench serve --participants 0 --seconds 1").err(&["participant"]),
        case("bench https", "bench serve --url https://x --seconds 1").err(&["https"]),
        case("bench timeout zero", "bench serve --timeout-ms 0 --seconds 1").err(&["timeout"]),
        case("bench max-answers not a number", "bench serve --max-answers x").usage(&["--max-answers"]),
        case("help of fit", "fit --help").ok(&["--persons", "--q3", "--responses", "--threads"]),
        case("help of plot", "plot --help").ok(&["--kind", "wright", "--scores", "--csv", "--items"]),
        case("help of dif", "dif --help").ok(&["--groups", "--reference", "--adjust", "holm", "bh"]),
        case("help of link", "link --help").ok(&["--new", "mean-mean", "stocking-lord"]),
        case("help subcommand", "help score").ok(&["--responses"]),
        // Valid use of every command.
        case("bank validate example", "bank validate").ok(&["\"items\":64"]),
        case("bank validate json", "bank validate bank.json").ok(&["fingerprint"]),
        case("bank validate csv", "bank validate bank.csv").ok(&["fingerprint"]),
        case("bank convert json to csv", "bank convert bank.json out.csv").ok(&["out.csv"]).creates(&["out.csv"]).keeps(&["bank.json"]),
        case("bank convert csv to gz json", "bank convert bank.csv out.json.gz").ok(&["written"]).creates(&["out.json.gz"]),
        case("bank convert from mirt", "bank convert --from mirt --model 2pl mirt.csv m.csv").ok(&["\"items\":2"]).creates(&["m.csv"]),
        case("bank example csv", "bank example --out b.csv").ok(&["b.csv"]).creates(&["b.csv"]),
        case("calibrate 2pl", "calibrate data.csv --model 2pl --out fit.csv").ok(&["\"converged\""]).creates(&["fit.csv"]).keeps(&["data.csv"]),
        case("calibrate long with options", "calibrate long.csv --format long --model rasch --out fit.json --quadrature 21 --tol 1e-3 --max-cycles 20 --threads 1").ok(&["\"model\":\"rasch\""]).creates(&["fit.json"]),
        case("calibrate spec and priors", "calibrate data.csv --spec spec.json --out fit.csv --prior-slope 0,0.5 --prior-intercept 0,3 --time-limit 20").ok(&["\"cycles\""]),
        case("calibrate anchored", "calibrate data.csv --model 2pl --anchor bank.csv --out fit.csv").ok(&["\"items\""]),
        case("calibrate 3pl no guessing prior", "calibrate data.csv --model 3pl --prior-guessing none --max-cycles 5 --out fit.csv").ok(&["3pl"]),
        case("calibrate negative prior mean", "calibrate data.csv --model 3pl --prior-guessing -1.5,1 --max-cycles 5 --out fit.csv").ok(&["3pl"]),
        case("score eap", "score --responses data.csv --out s.csv").ok(&["\"persons\":200"]).creates(&["s.csv"]),
        case("score every option", "score --bank bank.csv --responses data.csv --method map --out s.csv --prior-mean -0.5 --prior-sd 1.5 --quadrature 41 --quadrature-rule gauss-hermite --theta-range -4,4 --threads 1 --levels levels.json").ok(&["\"method\":\"map\""]),
        case("score long ml", "score --responses long.csv --format long --method ml --out s.csv").ok(&["\"method\":\"ml\""]),
        case("score wle", "score --responses data.csv --method wle --quadrature-rule trapezoid --out s.csv").ok(&["wle"]),
        case("simulate examinees", "simulate --examinees 20 --out sim.csv").ok(&["mean_length"]).creates(&["sim.csv"]),
        case("simulate every option", "simulate --bank bank.json --thetas thetas.csv --config session.json --select kl --exposure randomesque:3 --estimator map --quadrature 31 --quadrature-rule trapezoid --theta-range -5,5 --prior-mean 0 --prior-sd 1 --stop-se 0.5 --max-items 8 --min-items 2 --start-theta -0.5 --cuts -1,0,1 --seed 3 --threads 1").ok(&["rmse"]),
        case("simulate predrawn", "simulate --examinees 5 --responses data.csv --max-items 5").ok(&["examinees"]),
        case("simulate exposure calibration", "simulate --examinees 30 --calibrate-exposure 0.5 --bank-out controlled.json --max-items 5").ok(&["bank_out"]).creates(&["controlled.json"]),
        case("simulate pix exposure", "simulate --examinees 10 --exposure pix --select urry").ok(&["examinees"]),
        case("data generate long gz", "data generate --persons 30 --answers 5 --format long --seed 2 --out g.csv.gz --thetas-out t.csv").ok(&["\"persons\":30"]).creates(&["g.csv.gz", "t.csv"]),
        case("data info wide", "data info data.csv").ok(&["\"persons\":200"]),
        case("fit every option", "fit --bank bank.csv --responses data.csv --out if.csv --persons pf.csv --q3 q3.csv --threads 1").ok(&["marginal_reliability"]).creates(&["if.csv", "pf.csv", "q3.csv"]).keeps(&["bank.csv", "data.csv"]),
        case("fit long incomplete", "fit --responses long.csv --format long --out if.csv").ok(&["empirical_reliability"]),
        case("fit unknown item", "fit --bank b.csv --responses data.csv --out if.csv").file("b.csv", b"id,model,a,b\nzz,2pl,1,0\n").err(&["data.csv"]),
        case("fit output over input", "fit --responses data.csv --out data.csv").err(&["data.csv"]).keeps(&["data.csv"]),
        case("plot every option", "plot bank.json --kind icc --items q1-1-1,q1-1-2 --out p.svg --csv p.csv").ok(&["\"series\":2"]).creates(&["p.svg", "p.csv"]).keeps(&["bank.json"]),
        case("plot information", "plot bank.csv --kind information --out p.svg").ok(&["\"rows\":81"]),
        case("plot tcc", "plot bank.csv --kind tcc --out p.svg").ok(&["p.svg"]),
        case("plot se", "plot bank.csv --kind se --out p.svg").ok(&["p.svg"]),
        case("plot wright", "plot bank.csv --kind wright --scores s.csv --out p.svg").file("s.csv", b"person,theta,se\n1,0.5,0.3\n2,-inf,\n3,-1,0.4\n").ok(&["p.svg"]),
        case("plot wright without theta", "plot bank.csv --kind wright --scores s.csv --out p.svg").file("s.csv", b"person,score\n1,3\n").err(&["no `theta` column"]),
        case("plot unknown kind", "plot bank.csv --kind pie --out p.svg").usage(&["--kind"]),
        case("dif mh every option", "dif data.csv --groups g.csv --reference b --method mh --adjust bh --out dif.csv").file("g.csv", two_groups()).ok(&["\"group\":\"b\""]).creates(&["dif.csv"]).keeps(&["g.csv"]),
        case("dif long", "dif long.csv --format long --groups g.csv --adjust none --out dif.csv").file("g.csv", b"person,group\np1,x\np2,y\np3,x\np4,y\n").ok(&["\"items\""]),
        case("dif unknown method", "dif data.csv --groups g.csv --method lr2 --out dif.csv").file("g.csv", two_groups()).usage(&["--method"]),
        case("dif unknown adjustment", "dif data.csv --groups g.csv --adjust fdr --out dif.csv").file("g.csv", two_groups()).usage(&["--adjust"]),
        case("dif reference not a group", "dif data.csv --groups g.csv --reference zz --out dif.csv").file("g.csv", two_groups()).err(&["a third group"]),
        case("dif missing groups file", "dif data.csv --groups none.csv --out dif.csv").err(&["none.csv"]),
        case("link every method", "link --bank bank.csv --new bank.json --method haebara --out linked.csv").ok(&["\"common_items\":64"]).creates(&["linked.csv"]).keeps(&["bank.csv", "bank.json"]),
        case("link mean-mean", "link --bank bank.csv --new bank.json --method mean-mean --out linked.json").ok(&["mean-mean"]).creates(&["linked.json"]),
        case("link unknown method", "link --bank bank.csv --new bank.json --method sigma --out linked.csv").usage(&["--method"]),
        case("link onto itself", "link --bank bank.csv --new bank.csv --out bank.csv").err(&["bank.csv"]).keeps(&["bank.csv"]),
        case("data info long", "data info long.csv --format long").ok(&["\"persons\":40"]),
        case("data items", "data items data.csv --out items.csv").ok(&["\"alpha\""]).creates(&["items.csv"]).keeps(&["data.csv"]),
        case("data items long", "data items long.csv --format long").ok(&["\"alpha\""]),
        case("data items with a key", "data items raw.csv --key key.csv --out items.csv --distractors choices.csv").file("raw.csv", b"a,b,c\n1,2,3\n2,2,1\n1,3,3\n3,2,3\n").file("key.csv", b"item,key\na,1\nb,2\nc,3\n").ok(&["distractors_above_key"]).creates(&["items.csv", "choices.csv"]),
        case("data items distractors without key", "data items data.csv --distractors choices.csv").err(&["--distractors needs --key"]),
        case("data key", "data key raw.csv --key key.csv --out scored.csv.gz").file("raw.csv", b"a,b\n1,2\n2,\n").file("key.csv", b"item,key\na,1\nb,2\n").ok(&["\"right\":2", "\"missing\":1"]).creates(&["scored.csv.gz"]),
        case("data key without an item's key", "data key raw.csv --key key.csv --out scored.csv").file("raw.csv", b"a,b\n1,2\n").file("key.csv", b"item,key\na,1\n").err(&["item `b` has no key"]),
        case("data key not a code", "data key raw.csv --key key.csv --out scored.csv").file("raw.csv", b"a\n1\n").file("key.csv", b"item,key\na,B\n").err(&["key.csv:2", "not an integer code"]),
        case("data key twice", "data key raw.csv --key key.csv --out scored.csv").file("raw.csv", b"a\n1\n").file("key.csv", b"item,key\na,1\na,2\n").err(&["two keys"]),
        case("campaign example", "campaign example --out c.json").ok(&["example-campaign"]).creates(&["c.json"]),
        case("campaign run", "campaign run --campaign camp.json --participants 4 --seed 9 --out r.jsonl --threads 2").ok(&["\"participants\":4"]).creates(&["r.jsonl"]),
        case("campaign run appends", "campaign run --campaign campb.json --participants 2 --out results.jsonl").ok(&["\"first_participant\":\"P4\""]),
        case("campaign report", "campaign report results.jsonl --campaign camp.json --out rep.json --svg chart.svg").ok(&["training_needs"]).creates(&["rep.json", "chart.svg"]),
        case("assess quit at once", "assess --seed 1 --config design.json").stdin("q\n").ok(&["Stopped after 0 answers"]),
        case("assess to the end", "assess --seed 1 --config design.json --json").stdin("1\n1\n1\n1\n").ok(&["\"theta\""]),
        case("assess with standard input closed", "assess --seed 1").err(&["input ended before the test finished"]),
        case("assess retries a bad answer", "assess --seed 1 --config design.json").stdin("7\nx\n1\n2\n3\n").ok(&["please type a number from 1 to 4"]),
        case("assess save", "assess --seed 1 --save saved.json").stdin("1\n2\nq\n").ok(&["Saved after 2 answers"]).creates(&["saved.json"]),
    ];
    // Malformed values: refused by the parser (exit 2) with the option named.
    for (name, args, needle) in [
        ("threads negative", "calibrate data.csv --model 2pl --out f.csv --threads -1", "--threads"),
        ("threads not a number", "campaign run --campaign camp.json --participants 2 --out r.jsonl --threads many", "--threads"),
        ("threads beyond usize", "simulate --examinees 2 --threads 99999999999999999999", "--threads"),
        ("score theta range reversed", "score --responses data.csv --out s.csv --theta-range 1,-1", "lo < hi"),
        ("score theta range nan", "score --responses data.csv --out s.csv --theta-range nan,1", "--theta-range"),
        ("score theta range inf", "score --responses data.csv --out s.csv --theta-range -inf,inf", "finite"),
        ("score theta range one number", "score --responses data.csv --out s.csv --theta-range 3", "lo,hi"),
        ("score prior sd text", "score --responses data.csv --out s.csv --prior-sd wide", "--prior-sd"),
        ("score method", "score --responses data.csv --out s.csv --method bayes", "eap, map, ml, wle"),
        ("score format", "score --responses data.csv --out s.csv --format tall", "wide, long"),
        ("score quadrature rule", "score --responses data.csv --out s.csv --quadrature-rule simpson", "rectangle, trapezoid, gauss-hermite"),
        ("score quadrature negative", "score --responses data.csv --out s.csv --quadrature -5", "--quadrature"),
        ("score missing out", "score --responses data.csv", "--out"),
        ("calibrate tol text", "calibrate data.csv --model 2pl --out f.csv --tol small", "--tol"),
        ("calibrate prior guessing", "calibrate data.csv --model 3pl --out f.csv --prior-guessing x", "MEAN,SD"),
        ("calibrate prior slope sd 0", "calibrate data.csv --model 2pl --out f.csv --prior-slope 0,0", "SD > 0"),
        ("calibrate prior intercept one number", "calibrate data.csv --model 2pl --out f.csv --prior-intercept 1", "MEAN,SD"),
        ("calibrate model", "calibrate data.csv --model 9pl --out f.csv", "rasch, 1pl, 2pl"),
        ("calibrate format", "calibrate data.csv --model 2pl --out f.csv --format sparse", "--format"),
        ("calibrate no data", "calibrate --model 2pl --out f.csv", "<DATA>"),
        ("simulate exposure randomesque 0", "simulate --examinees 5 --exposure randomesque:0", "K ≥ 1"),
        ("simulate exposure unknown", "simulate --examinees 5 --exposure fair", "none, randomesque:K"),
        ("simulate cuts equal", "simulate --examinees 5 --cuts 1,1", "strictly increasing"),
        ("simulate cuts decreasing", "simulate --examinees 5 --cuts 1,0", "strictly increasing"),
        ("simulate cuts text", "simulate --examinees 5 --cuts low,high", "not a number"),
        ("simulate select", "simulate --examinees 5 --select best", "mfi, mpwi, kl, urry, random"),
        ("simulate estimator", "simulate --examinees 5 --estimator mle", "eap, map, ml, wle"),
        ("simulate thetas and examinees", "simulate --examinees 5 --thetas thetas.csv", "cannot be used with"),
        ("simulate bank out alone", "simulate --examinees 5 --bank-out b.json", "--calibrate-exposure"),
        ("campaign run participants text", "campaign run --campaign camp.json --participants ten --out r.jsonl", "--participants"),
        ("campaign run seed negative", "campaign run --campaign camp.json --participants 2 --seed -1 --out r.jsonl", "--seed"),
        ("assess seed text", "assess --seed abc", "--seed"),
        ("unknown command", "grade --responses data.csv", "unrecognized subcommand"),
        ("unknown option", "score --responses data.csv --out s.csv --colour", "--colour"),
        ("no command", "", "Usage"),
        ("bank convert from unknown", "bank convert --from excel a.csv b.csv", "etalon, mirt"),
        ("bank convert mirt model", "bank convert --from mirt --model 5pl mirt.csv b.csv", "unknown model"),
    ] {
        v.push(case(&format!("malformed: {name}"), args).usage(&[needle]).keeps(&["data.csv"]));
    }
    // Well-formed values out of range: refused before any work (exit 1) with the option named.
    for (name, args, needle) in [
        ("threads 0", "score --responses data.csv --out s.csv --threads 0", "--threads must be at least 1"),
        ("threads 100000", "score --responses data.csv --out s.csv --threads 100000", "more than this machine can use"),
        ("calibrate threads 100000", "calibrate data.csv --model 2pl --out f.csv --threads 100000", "--threads"),
        ("score quadrature 0", "score --responses data.csv --out s.csv --quadrature 0", "--quadrature must be in 2..=10000"),
        ("score quadrature 1", "score --responses data.csv --out s.csv --quadrature 1", "--quadrature"),
        ("score quadrature 100000", "score --responses data.csv --out s.csv --quadrature 100000", "(got 100000)"),
        ("score prior sd 0", "score --responses data.csv --out s.csv --prior-sd 0", "prior SD"),
        ("score prior sd negative", "score --responses data.csv --out s.csv --prior-sd -1", "--prior-sd"),
        ("score prior sd nan", "score --responses data.csv --out s.csv --prior-sd nan", "--prior-sd"),
        ("score prior mean inf", "score --responses data.csv --out s.csv --prior-mean inf", "--prior-mean must be a finite number"),
        ("calibrate quadrature 0", "calibrate data.csv --model 2pl --out f.csv --quadrature 0", "--quadrature must be in 3..=1001"),
        ("calibrate quadrature 1", "calibrate data.csv --model 2pl --out f.csv --quadrature 1", "quadrature"),
        ("calibrate quadrature 100000", "calibrate data.csv --model 2pl --out f.csv --quadrature 100000", "(got 100000)"),
        ("calibrate tol 0", "calibrate data.csv --model 2pl --out f.csv --tol 0", "--tol must be a finite number > 0"),
        ("calibrate tol negative", "calibrate data.csv --model 2pl --out f.csv --tol -1", "--tol"),
        ("calibrate tol nan", "calibrate data.csv --model 2pl --out f.csv --tol nan", "--tol"),
        ("calibrate max cycles 0", "calibrate data.csv --model 2pl --out f.csv --max-cycles 0", "--max-cycles"),
        ("calibrate time limit negative", "calibrate data.csv --model 2pl --out f.csv --time-limit -1", "--time-limit"),
        ("calibrate time limit 0", "calibrate data.csv --model 2pl --out f.csv --time-limit 0", "--time-limit must be a finite number > 0"),
        ("simulate calibrate exposure 2", "simulate --examinees 5 --calibrate-exposure 2 --bank-out b.json", "(0, 1]"),
        ("simulate calibrate exposure 0", "simulate --examinees 5 --calibrate-exposure 0 --bank-out b.json", "--calibrate-exposure"),
        ("simulate calibrate exposure nan", "simulate --examinees 5 --calibrate-exposure nan --bank-out b.json", "(0, 1]"),
        ("simulate stop se 0", "simulate --examinees 5 --stop-se 0", "--stop-se"),
        ("simulate stop se negative", "simulate --examinees 5 --stop-se -1", "--stop-se must be a finite number > 0"),
        ("simulate max items 0", "simulate --examinees 5 --max-items 0", "--max-items"),
        ("simulate examinees 0", "simulate --examinees 0", "--examinees"),
        ("simulate examinees huge", "simulate --examinees 100000000000", "--examinees must be in 1..=1000000"),
        ("simulate start theta nan", "simulate --examinees 5 --start-theta nan", "--start-theta"),
        ("simulate prior sd 0", "simulate --examinees 5 --prior-sd 0", "--prior-sd"),
        ("simulate quadrature 1", "simulate --examinees 5 --quadrature 1", "--quadrature"),
        ("data generate persons 0", "data generate --persons 0 --out g.csv", "--persons"),
        ("data generate persons huge", "data generate --persons 99999999999 --out g.csv", "--persons must be in 1..=10000000"),
        ("data generate answers 0", "data generate --persons 5 --answers 0 --out g.csv", "--answers"),
        ("campaign run participants 0", "campaign run --campaign camp.json --participants 0 --out r.jsonl", "--participants"),
        ("campaign run participants huge", "campaign run --campaign camp.json --participants 99999999999 --out r.jsonl", "--participants must be in"),
    ] {
        v.push(case(&format!("out of range: {name}"), args).err(&[needle]).keeps(&["data.csv"]));
    }
    // Settings the parser cannot see alone: exit 1 with the option or file named.
    v.extend([
        case("calibrate without model", "calibrate data.csv --out f.csv").err(&["--model"]),
        case("calibrate out extension", "calibrate data.csv --model 2pl --out f.txt").err(&["f.txt", "unsupported extension"]),
        case("simulate without examinees", "simulate").err(&["--thetas", "--examinees"]),
        case("simulate calibrate exposure without bank out", "simulate --examinees 5 --calibrate-exposure 0.3").err(&["--bank-out"]),
        case("simulate min above max", "simulate --examinees 5 --min-items 10 --max-items 5").err(&["--min-items 10 exceeds --max-items 5"]),
        case("simulate bank out extension", "simulate --examinees 5 --calibrate-exposure 0.5 --bank-out b.txt").err(&["b.txt", "unsupported extension"]),
        case("campaign report out extension", "campaign report results.jsonl --campaign camp.json --out rep.txt").err(&["rep.txt", ".json"]),
        case("campaign report svg extension", "campaign report results.jsonl --campaign camp.json --out rep.json --svg chart.png").err(&["chart.png", ".svg"]),
        case("campaign example extension", "campaign example --out c.yaml").err(&["c.yaml", ".json"]),
        case("bank convert out extension", "bank convert bank.json b.yaml").err(&["b.yaml", "unsupported extension"]),
        case("bank example out extension", "bank example --out b.xml").err(&["b.xml", "unsupported extension"]),
        case("bank convert mirt without model", "bank convert --from mirt mirt.csv b.csv").err(&["--model"]),
        case("score ml in a narrow range", "score --responses data.csv --method ml --theta-range -3,3 --out s.csv").ok(&["\"method\":\"ml\""]),
        case("calibrate time limit beyond any clock", "calibrate data.csv --model rasch --out f.csv --time-limit 1e300").ok(&["\"converged\""]),
    ]);
    v
}

#[test]
fn class_1_commands_and_options() {
    run_class("options", options_cases());
}

// ---------------------------------------------------------------------------------------------
// Class 2: bad files
// ---------------------------------------------------------------------------------------------

/// 3,000 bytes that are neither text nor UTF-8.
fn binary() -> Vec<u8> {
    (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect()
}

/// Line `n` (from 1) of the fixture results log, as JSON.
fn results_line(n: usize) -> serde_json::Value {
    let text = String::from_utf8(fixture("results.jsonl")).unwrap();
    serde_json::from_str(text.lines().nth(n - 1).unwrap()).unwrap()
}

/// The fixture log with a record of the wrong shape on line 2.
fn results_with_bad_line_2() -> Vec<u8> {
    let mut r = fixture("results.jsonl");
    let first = r.iter().position(|&b| b == b'\n').unwrap() + 1;
    r.splice(first..first, b"{\"participant\": 3}\n".iter().copied());
    r
}

/// The fixture log and half a record after it (a crash inside a write).
fn results_with_partial_last_line() -> Vec<u8> {
    let mut r = fixture("results.jsonl");
    r.extend_from_slice(b"{\"participant\": \"P4\", \"compet");
    r
}

/// An assessment of the example bank saved after one answer (it does not resume on another bank).
fn saved_example_assessment() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let args = strings(&["assess", "--seed", "1", "--save", "s.json"]);
    let ran = run_in(dir.path(), &[], &args, Some(b"1\nq\n"));
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    std::fs::read(dir.path().join("s.json")).unwrap()
}

#[rustfmt::skip]
fn bad_files_cases() -> Vec<Case> {
    let five_mb = "7".repeat(5 << 20);
    let long_name = "q".repeat(5 << 20);
    let wide_header: String = (0..100_000).map(|j| format!("i{j}")).collect::<Vec<_>>().join(",");
    let mut v = Vec::new();
    // Missing files, for every input of every command.
    for (name, args, file) in [
        ("data info", "data info none.csv", "none.csv"),
        ("score responses", "score --responses none.csv --out s.csv", "none.csv"),
        ("score bank", "score --bank none.json --responses data.csv --out s.csv", "none.json"),
        ("score levels", "score --responses data.csv --levels none.json --out s.csv", "none.json"),
        ("calibrate data", "calibrate none.csv --model 2pl --out f.csv", "none.csv"),
        ("calibrate spec", "calibrate data.csv --spec none.json --out f.csv", "none.json"),
        ("calibrate anchor", "calibrate data.csv --model 2pl --anchor none.csv --out f.csv", "none.csv"),
        ("simulate thetas", "simulate --thetas none.csv", "none.csv"),
        ("simulate config", "simulate --examinees 3 --config none.json", "none.json"),
        ("simulate responses", "simulate --examinees 3 --responses none.csv", "none.csv"),
        ("bank validate", "bank validate none.json", "none.json"),
        ("bank convert", "bank convert none.csv b.json", "none.csv"),
        ("campaign run", "campaign run --campaign none.json --participants 2 --out r.jsonl", "none.json"),
        ("campaign report results", "campaign report none.jsonl --campaign camp.json --out rep.json", "none.jsonl"),
        ("assess config", "assess --config none.json", "none.json"),
        ("assess bank", "assess --bank none.csv", "none.csv"),
        ("data generate bank", "data generate --bank none.json --persons 3 --out g.csv", "none.json"),
    ] {
        v.push(case(&format!("missing: {name}"), args).err(&[file]));
    }
    // A directory given as a file.
    for (name, args, file) in [
        ("data info", "data info d.csv", "d.csv"),
        ("bank validate", "bank validate d.json", "d.json"),
        ("simulate config", "simulate --examinees 3 --config d.json", "d.json"),
        ("simulate thetas", "simulate --thetas d.csv", "d.csv"),
        ("campaign report", "campaign report d.jsonl --campaign camp.json --out rep.json", "d.jsonl"),
        ("score out", "score --responses data.csv --out d.csv", "d.csv"),
        ("assess save", "assess --save d.json", "d.json"),
    ] {
        v.push(case(&format!("directory: {name}"), args).dir(file).err(&[file]));
    }
    // Empty files.
    for (name, args, file, needle) in [
        ("data info", "data info e.csv", "e.csv", "empty"),
        ("bank json", "bank validate e.json", "e.json", "empty"),
        ("bank csv", "bank validate e.csv", "e.csv", "empty"),
        ("session config", "simulate --examinees 3 --config e.json", "e.json", "line 1"),
        ("thetas", "simulate --thetas e.csv", "e.csv", "theta"),
        ("results log", "campaign report e.jsonl --campaign camp.json --out rep.json", "e.jsonl", "no participant"),
        ("levels", "score --responses data.csv --levels e.json --out s.csv", "e.json", "level map"),
        ("spec", "calibrate data.csv --spec e.json --out f.csv", "e.json", "calibration spec"),
        ("campaign", "campaign run --campaign e.json --participants 2 --out r.jsonl", "e.json", "campaign"),
        ("saved assessment", "assess --save e.json", "e.json", "resume"),
        ("mirt table", "bank convert --from mirt --model 2pl e.csv b.csv", "e.csv", "empty"),
        ("only a newline", "data info e.csv", "e.csv", "empty"),
    ] {
        let bytes: &[u8] = if name == "only a newline" { b"\n" } else { b"" };
        v.push(case(&format!("empty: {name}"), args).file(file, bytes).err(&[file, needle]));
    }
    // Binary and non-UTF-8 files.
    for (name, args, file, needle) in [
        ("data info", "data info b.csv", "b.csv", "UTF-8"),
        ("bank json", "bank validate b.json", "b.json", "not UTF-8"),
        ("bank csv", "bank validate b.csv", "b.csv", "not UTF-8"),
        ("session config", "simulate --examinees 3 --config b.json", "b.json", "session configuration"),
        ("thetas", "simulate --thetas b.csv", "b.csv", "b.csv"),
        ("results log", "campaign report b.jsonl --campaign camp.json --out rep.json", "b.jsonl", "line 1"),
        ("campaign", "campaign run --campaign b.json --participants 2 --out r.jsonl", "b.json", "campaign"),
        ("mirt table", "bank convert --from mirt --model 2pl b.csv out.csv", "b.csv", "UTF-8"),
        ("anchor", "calibrate data.csv --model 2pl --anchor b.csv --out f.csv", "b.csv", "UTF-8"),
    ] {
        v.push(case(&format!("binary: {name}"), args).file(file, binary()).err(&[file, needle]));
    }
    v.extend([
        case("latin-1 cell", "data info l.csv").file("l.csv", b"q1,q2\n1,\xe9\n").err(&["l.csv", "line 2", "q2"]),
        case("latin-1 header", "data info l.csv").file("l.csv", b"q1,caf\xe9\n1,0\n").err(&["l.csv", "line 1", "UTF-8"]),
        case("latin-1 bank", "bank validate l.csv").file("l.csv", b"id,model,b\nq\xe9,rasch,0\n").err(&["l.csv", "line 2", "UTF-8"]),
        case("latin-1 config", "simulate --examinees 3 --config l.json").file("l.json", b"{\"selection\": {\"rule\": \"caf\xe9\"}}").err(&["l.json", "line 1"]),
        case("corrupt gzip", "data info c.csv.gz").file("c.csv.gz", b"\x1f\x8b\x08\x00garbage").err(&["c.csv.gz"]),
        case("corrupt gzip bank", "bank validate c.json.gz").file("c.json.gz", b"\x1f\x8b\x08\x00garbage").err(&["c.json.gz"]),
    ]);
    // Truncated and wrongly shaped JSON; unknown fields (typos).
    let bank = String::from_utf8(fixture("bank.json")).unwrap();
    let mut typo = bank_value();
    typo["itmes"] = typo["items"].take();
    typo.as_object_mut().unwrap().remove("items");
    let mut item_typo = bank_value();
    let params = item_typo["items"][2]["parameters"].take();
    item_typo["items"][2].as_object_mut().unwrap().remove("parameters");
    item_typo["items"][2]["paramters"] = params;
    let mut bad_param = bank_value();
    bad_param["items"][5]["parameters"]["a"] = (0.0).into();
    // A negative slope is valid since items that discriminate the wrong way are kept (with a warning).
    let mut reversed = bank_value();
    reversed["items"][5]["parameters"]["a"] = (-1.0).into();
    v.extend([
        case("truncated bank", "bank validate t.json").file("t.json", &bank[..bank.len() / 2]).err(&["t.json", "line", "column", "EOF"]),
        case("bank of the wrong shape", "bank validate t.json").file("t.json", "[1, 2, 3]").err(&["t.json", "line 1"]),
        case("bank field typo", "bank validate t.json").file("t.json", typo.to_string()).err(&["t.json", "unknown field `itmes`"]),
        case("bank item field typo", "bank validate t.json").file("t.json", item_typo.to_string()).err(&["t.json", "q1-1-3", "items[2]", "paramters"]),
        case("bank zero slope", "score --bank t.json --responses data.csv --out s.csv").file("t.json", bad_param.to_string()).err(&["t.json", "q1-2-2", "non-zero"]),
        case("bank negative slope", "bank validate t.json").file("t.json", reversed.to_string()).ok(&["q1-2-2", "discriminates negatively"]),
        case("truncated session config", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"max_items": 5"#).err(&["t.json", "line 1", "column"]),
        case("session config typo", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stoping": {}}"#).err(&["t.json", "unknown field `stoping`"]),
        case("session config nested typo", "simulate --examinees 3 --config t.json").file("t.json", "{\"stopping\":\n {\"max_itemz\": 5}}").err(&["t.json", "line 2", "max_itemz"]),
        case("session config wrong type", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"max_items": "five"}}"#).err(&["t.json", "invalid type"]),
        case("session config invalid value", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"se_target": -1}}"#).err(&["t.json", "se_target"]),
        case("design typo", "assess --config t.json").file("t.json", r#"{"profile": {"bogus": 1}}"#).err(&["t.json", "bogus"]),
        case("design wrong shape", "assess --config t.json").file("t.json", "42").err(&["t.json", "assessment design"]),
        case("levels wrong shape", "score --responses data.csv --levels t.json --out s.csv").file("t.json", r#"{"cuts": "x"}"#).err(&["t.json", "level map"]),
        case("levels not increasing", "score --responses data.csv --levels t.json --out s.csv").file("t.json", r#"{"cuts": [0, -1], "labels": ["a", "b", "c"]}"#).err(&["t.json"]),
        case("levels typo", "score --responses data.csv --levels t.json --out s.csv").file("t.json", r#"{"cuts": [0], "lables": ["a", "b"]}"#).err(&["t.json", "labels"]),
        case("spec typo", "calibrate data.csv --spec t.json --out f.csv").file("t.json", r#"{"modle": "2pl"}"#).err(&["t.json", "modle"]),
        case("spec wrong type", "calibrate data.csv --spec t.json --out f.csv").file("t.json", r#"{"model": 3}"#).err(&["t.json", "calibration spec"]),
        case("spec quadrature", "calibrate data.csv --spec t.json --out f.csv").file("t.json", r#"{"model": "2pl", "em": {"quadrature": 1}}"#).err(&["t.json", "em.quadrature"]),
        case("spec prior sd 0", "calibrate data.csv --spec t.json --out f.csv").file("t.json", r#"{"model": "2pl", "em": {"priors": {"slope": {"mean": 0, "sd": 0}}}}"#).err(&["t.json", "em.priors.slope"]),
        case("campaign truncated", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", &String::from_utf8(fixture("camp.json")).unwrap()[..200]).err(&["t.json", "line", "campaign"]),
        case("campaign typo", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", String::from_utf8(fixture("camp.json")).unwrap().replace("\"targets\"", "\"target\"")).err(&["t.json", "target"]),
        case("campaign unknown competence", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", String::from_utf8(fixture("camp.json")).unwrap().replace("\"1.1\"", "\"9.9\"")).err(&["t.json", "9.9"]),
        case("campaign names a missing bank", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", String::from_utf8(fixture("campb.json")).unwrap().replace("bank.json", "gone.json")).err(&["gone.json"]),
        case("results of another shape", "campaign report camp.json --campaign camp.json --out rep.json").err(&["camp.json", "line 1", "one participant per line"]),
        case("results bad middle line", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", results_with_bad_line_2()).err(&["r.jsonl", "line 2"]),
        case("results truncated last line is skipped", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", results_with_partial_last_line()).ok(&["\"skipped_lines\":1", "truncated"]),
        case("saved assessment garbage", "assess --save s.json").file("s.json", "garbage").err(&["s.json", "cannot resume"]),
        case("saved assessment of another bank", "assess --save s.json --bank bank.csv").file("s.json", saved_example_assessment()).err(&["s.json", "cannot resume"]),
    ]);
    // Wrong extensions.
    v.extend([
        case("bank extension", "bank validate bank.txt").file("bank.txt", fixture("bank.csv")).err(&["bank.txt", "unsupported extension"]),
        case("score bank extension", "score --bank b.yaml --responses data.csv --out s.csv").file("b.yaml", "x").err(&["b.yaml", ".csv or .json"]),
        case("bank json read as csv", "bank validate j.csv").file("j.csv", fixture("bank.json")).err(&["j.csv", "unknown column"]),
        case("bank csv read as json", "bank validate c.json").file("c.json", fixture("bank.csv")).err(&["c.json", "line 1"]),
        case("response data given as a bank", "bank validate data.csv").err(&[
            "data.csv",
            "unknown column",
            "missing required column `id`",
        ]),
    ]);
    // CSV response files: separators, layouts, headers, cells.
    v.extend([
        case("tab-separated", "data info t.csv").file("t.csv", "q1-1-1\tq1-1-2\n1\t0\n").err(&["t.csv", "line 1", "tab-separated?"]),
        case("tab-separated scored", "score --responses t.csv --out s.csv").file("t.csv", "person\tq1-1-1\np1\t1\n").err(&["t.csv", "tab-separated?"]),
        case("tab-separated calibrated", "calibrate t.csv --model 2pl --out f.csv").file("t.csv", "a\tb\tc\n1\t0\t1\n").err(&["t.csv", "tab-separated?"]),
        case("semicolon-separated", "data info t.csv").file("t.csv", "q1;q2;q3\n1;0;1\n").err(&["t.csv", "semicolon-separated?"]),
        case("long file read as wide", "data info long.csv").err(&["long.csv", "--format long"]),
        case("long file scored as wide", "score --responses long.csv --out s.csv").err(&["long.csv", "--format long"]),
        case("long file calibrated as wide", "calibrate long.csv --model 2pl --out f.csv").err(&["long.csv", "--format long"]),
        case("wide file read as long", "data info data.csv --format long").err(&["data.csv", "Leave out `--format long`"]),
        case("missing header", "data info t.csv").file("t.csv", "1,0,1,1\n0,1,1,0\n").err(&["t.csv", "line 1", "no header?"]),
        case("missing header long", "data info t.csv --format long").file("t.csv", "p1,q1,1\np2,q1,0\n").err(&["t.csv", "no header?"]),
        case("duplicate columns", "data info t.csv").file("t.csv", "q1,q2,q1\n1,0,1\n").err(&["t.csv", "line 1", "`q1`", "duplicate column"]),
        case("empty column name", "data info t.csv").file("t.csv", "q1,,q3\n1,0,1\n").err(&["t.csv", "line 1", "header field 2 is empty"]),
        case("only a person column", "data info t.csv").file("t.csv", "person\np1\n").err(&["t.csv", "no item columns"]),
        case("non-numeric cell", "data info t.csv").file("t.csv", "q1,q2\n1,0\n1,yes\n").err(&["t.csv", "line 3", "`q2`", "`yes`"]),
        case("decimal cell", "data info t.csv").file("t.csv", "q1,q2\n1,0.5\n").err(&["t.csv", "line 2", "0.5"]),
        case("ragged row", "data info t.csv").file("t.csv", "q1,q2\n1,0\n1\n").err(&["t.csv", "line 3", "1 field, but the header has 2"]),
        case("too many codes", "data info t.csv").file("t.csv", format!("q1\n{}", (0..300).map(|i| format!("{i}\n")).collect::<String>())).err(&["t.csv", "line 252", "250"]),
        case("long duplicate answer", "data info t.csv --format long").file("t.csv", "person,item,response\np1,q1,1\np1,q1,0\n").err(&["t.csv", "p1", "q1", "two responses"]),
        case("long bad response", "data info t.csv --format long").file("t.csv", "person,item,response\np1,q1,right\n").err(&["t.csv", "line 2", "right"]),
        case("items not in the bank", "score --responses t.csv --out s.csv").file("t.csv", "q1-1-1,zz9\n1,0\n").err(&["t.csv", "zz9"]),
        case("code not in the bank", "score --responses t.csv --out s.csv").file("t.csv", "q1-1-1,q1-1-2\n1,0\n3,1\n").err(&["t.csv", "q1-1-1", "code 3"]),
        case("byte-order mark", "score --responses t.csv --out s.csv").file("t.csv", [b"\xef\xbb\xbf".as_slice(), &fixture("data.csv")].concat()).ok(&["\"persons\":200"]),
        case("crlf line ends", "data info t.csv").file("t.csv", "q1,q2\r\n1,0\r\n0,1\r\n").ok(&["\"persons\":2"]),
        case("quoted ids with commas", "data info t.csv").file("t.csv", "person,\"q,1\"\n\"Doe, J\",1\n").ok(&["\"items\":1"]),
        case("unicode ids", "data info t.csv").file("t.csv", "person,réponse,問題\nélève,1,0\n").ok(&["\"items\":2"]),
        case("control characters in ids", "score --responses t.csv --out s.csv").file("t.csv", "q1-1-1,q\x1b[31mred\n1,0\n").err(&["t.csv", "\\u{1b}"]),
        case("a bell in a cell", "data info t.csv").file("t.csv", "q1\n1\x07\n").err(&["t.csv", "line 2", "\\u{7}"]),
        case("100000-column header", "data info t.csv").file("t.csv", format!("{wide_header}\n{}\n", vec!["1"; 100_000].join(","))).ok(&["\"items\":100000"]),
        case("100000 unknown items", "score --responses t.csv --out s.csv").file("t.csv", format!("{wide_header}\n{}\n", vec!["1"; 100_000].join(","))).err(&["t.csv", "items not in the bank", "(100000 in all)"]),
        case("100000-column bank header", "bank validate t.csv").file("t.csv", format!("{wide_header}\n")).err(&["t.csv", "100002 problems", "more"]),
        case("5 MB cell", "data info t.csv").file("t.csv", format!("q1,q2\n1,{five_mb}x\n")).err(&["t.csv", "line 2", "q2", "…"]),
        case("5 MB column name", "score --responses t.csv --out s.csv").file("t.csv", format!("q1-1-1,{long_name}\n1,0\n")).err(&["t.csv", "…"]),
        case("5 MB duplicate column name", "data info t.csv").file("t.csv", format!("{long_name},{long_name}\n1,0\n")).err(&["t.csv", "duplicate column"]),
        case("5 MB bank cell", "bank validate t.csv").file("t.csv", format!("id,model,b\nq1,rasch,{five_mb}x\n")).err(&["t.csv", "line 2", "field `b`", "…"]),
        case("5 MB bank id", "bank validate t.csv").file("t.csv", format!("id,model,b\n{long_name},rasch,x\n")).err(&["t.csv", "line 2", "…"]),
        case("5 MB theta cell", "simulate --thetas t.csv").file("t.csv", format!("theta\n{five_mb}x\n")).err(&["t.csv", "line 2"]),
        case("5 MB JSON key", "simulate --examinees 3 --config t.json").file("t.json", format!("{{\"{long_name}\": 1}}")).err(&["t.json", "unknown field", "…"]),
        case("5 MB bank JSON key", "bank validate t.json").file("t.json", format!("{{\"{long_name}\": 1}}")).err(&["t.json", "unknown field", "…"]),
        case("5 MB results line", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", format!("{{\"participant\": \"{long_name}\"}}\n")).err(&["r.jsonl", "line 1", "longer than"]),
        case("5 MB answer on stdin", "assess --seed 1 --config design.json").stdin(&five_mb).err(&["answer longer than"]),
    ]);
    // CSV banks and mirt tables.
    v.extend([
        case("bank unknown model", "bank validate t.csv").file("t.csv", "id,model,b\nq1,rasch,0\nq2,5pl,1\n").err(&["t.csv", "line 3", "q2", "unknown model `5pl`"]),
        case("bank duplicate ids", "bank validate t.csv").file("t.csv", "id,model,b\nq1,rasch,0\nq1,rasch,1\n").err(&["t.csv", "line 3", "q1"]),
        case("bank non-numeric parameter", "bank validate t.csv").file("t.csv", "id,model,a,b\nq1,2pl,high,0\n").err(&["t.csv", "line 2", "field `a`", "`high`"]),
        case("bank missing id column", "bank validate t.csv").file("t.csv", "model,b\nrasch,0\n").err(&["t.csv", "line 1", "`id`"]),
        case("bank duplicate column", "bank validate t.csv").file("t.csv", "id,model,b,b\nq1,rasch,0,1\n").err(&["t.csv", "line 1", "duplicate column"]),
        case("bank ragged row", "bank validate t.csv").file("t.csv", "id,model,b\nq1,rasch\n").err(&["t.csv", "line 2", "fields"]),
        case("bank unordered thresholds", "bank validate t.csv").file("t.csv", "id,model,a,b1,b2\nq1,graded,1,1,-1\n").err(&["t.csv", "line 2", "q1"]),
        case("bank threshold gap", "bank validate t.csv").file("t.csv", "id,model,a,b1,b3\nq1,graded,1,-1,1\n").err(&["t.csv", "b3"]),
        case("bank tab-separated", "bank validate t.csv").file("t.csv", "id\tmodel\tb\nq1\trasch\t0\n").err(&["t.csv", "line 1", "unknown column"]),
        case("bank byte-order mark", "bank validate t.csv").file("t.csv", [b"\xef\xbb\xbf".as_slice(), &fixture("bank.csv")].concat()).ok(&["fingerprint"]),
        case("bank json byte-order mark", "bank validate t.json").file("t.json", [b"\xef\xbb\xbf".as_slice(), &fixture("bank.json")].concat()).ok(&["fingerprint"]),
        case("design byte-order mark", "assess --seed 1 --config t.json").file("t.json", [b"\xef\xbb\xbf".as_slice(), &fixture("design.json")].concat()).stdin("q\n").ok(&["Stopped after 0 answers"]),
        case("config byte-order mark", "simulate --examinees 3 --config t.json").file("t.json", [b"\xef\xbb\xbf".as_slice(), &fixture("session.json")].concat()).ok(&["examinees"]),
        case("mirt table of another layout", "bank convert --from mirt --model 2pl t.csv b.csv").file("t.csv", "x,y\n1,2\n").err(&["t.csv"]),
        case("thetas without the column", "simulate --thetas t.csv").file("t.csv", "ability\n0\n").err(&["t.csv", "theta"]),
        case("thetas not a number", "simulate --thetas t.csv").file("t.csv", "theta\n0\nhigh\n").err(&["t.csv", "line 3", "high"]),
        case("thetas infinite", "simulate --thetas t.csv").file("t.csv", "theta\ninf\n").err(&["t.csv", "line 2"]),
        case("predrawn too few rows", "simulate --examinees 5 --responses t.csv").file("t.csv", "q1-1-1\n1\n").err(&["t.csv", "1 rows for 5 examinees"]),
    ]);
    // JSON at the edges of the parser, numbers at the edges of their types.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let mut other_campaign = results_line(1);
    other_campaign["campaign"] = "another-campaign".into();
    v.extend([
        case("deeply nested bank", "bank validate t.json").file("t.json", &deep).err(&["t.json", "line 1"]),
        case("deeply nested config", "simulate --examinees 3 --config t.json").file("t.json", &deep).err(&["t.json", "invalid session configuration"]),
        case("deeply nested results line", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", format!("{deep}\n")).err(&["r.jsonl", "line 1"]),
        case("number beyond f64 in config", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"se_target": 1e400}}"#).err(&["t.json", "number out of range"]),
        case("number beyond usize in config", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"max_items": 1e400}}"#).err(&["t.json", "line 1, column 32", "number out of range"]),
        case("huge max items is capped by the bank", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"max_items": 18446744073709551615}}"#).ok(&["examinees"]),
        case("duplicate field in config", "simulate --examinees 3 --config t.json").file("t.json", r#"{"stopping": {"max_items": 3, "max_items": 4}}"#).err(&["t.json", "duplicate field `max_items`"]),
        case("campaign value out of range", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", {
            let mut c: serde_json::Value = serde_json::from_slice(&fixture("camp.json")).unwrap();
            c["simulated_correlation"] = 2.into();
            c.to_string()
        }).err(&["t.json", "simulated_correlation"]),
        case("campaign bank of another kind", "campaign run --campaign t.json --participants 2 --out r.jsonl").file("t.json", String::from_utf8(fixture("campb.json")).unwrap().replace("bank.json", "data.csv")).err(&["data.csv", "unknown column"]),
        case("bank parameter beyond f64", "bank validate t.csv").file("t.csv", "id,model,a,b\nq1,2pl,1,1e400\n").err(&["t.csv", "line 2", "q1", "field `b`", "finite"]),
        case("bank parameter NaN", "bank validate t.csv").file("t.csv", "id,model,a,b\nq1,2pl,NaN,0\n").err(&["t.csv", "line 2", "field `a`"]),
        case("bank JSON parameter NaN", "bank validate t.json").file("t.json", bank_value().to_string().replacen("\"a\":0.9", "\"a\":\"NaN\"", 1)).err(&["t.json", "q1-1-1"]),
        case("response code beyond i64", "data info t.csv").file("t.csv", "q1,q2\n1,99999999999999999999\n").err(&["t.csv", "line 2", "`q2`"]),
        case("negative response codes are codes", "data info t.csv").file("t.csv", "q1\n-1\n1\n").ok(&["\"max_categories\":2"]),
        case("level map given the bank", "score --responses data.csv --levels bank.json --out s.csv").err(&["bank.json", "level map", "cuts"]),
        case("results of another campaign", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", format!("{other_campaign}\n")).err(&["r.jsonl", "another-campaign"]),
        case("results with a participant twice", "campaign report r.jsonl --campaign camp.json --out rep.json").file("r.jsonl", format!("{}\n{}\n", results_line(1), results_line(1))).err(&["r.jsonl", "P1"]),
        case("more thetas than a run simulates", "simulate --thetas t.csv --max-items 1").file("t.csv", format!("theta\n{}", "0\n".repeat(1_000_001))).err(&["t.csv", "1000001 examinees", "at most 1000000"]),
        case("output path ending in a slash", "score --responses data.csv --out s.csv/").err(&["s.csv/"]),
        case("output directory with a slash", "score --responses data.csv --out d/").dir("d").err(&["d/", "is a directory"]),
        case("save in a missing directory", "assess --save nowhere/s.json").err(&["nowhere/s.json", "does not exist"]),
    ]);
    v
}

#[test]
fn class_2_bad_files() {
    run_class("bad files", bad_files_cases());
}

// ---------------------------------------------------------------------------------------------
// Class 3: no command destroys its input
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
fn own_input_cases() -> Vec<Case> {
    let refused = ["this output", "refusing to overwrite"];
    let mut v = Vec::new();
    for (name, args, input) in [
        ("score out = responses", "score --responses data.csv --out data.csv", "data.csv"),
        ("score out = responses, other spelling", "score --responses data.csv --out ./data.csv", "data.csv"),
        ("score out = bank", "score --bank bank.csv --responses data.csv --out bank.csv", "bank.csv"),
        ("score out = levels", "score --responses data.csv --levels levels.json --out levels.json", "levels.json"),
        ("calibrate out = data", "calibrate data.csv --model 2pl --out data.csv", "data.csv"),
        ("calibrate out = data, other spelling", "calibrate ./data.csv --model 2pl --out data.csv", "data.csv"),
        ("calibrate out = spec", "calibrate data.csv --spec spec.json --out spec.json", "spec.json"),
        ("calibrate out = anchor", "calibrate data.csv --model 2pl --anchor bank.csv --out bank.csv", "bank.csv"),
        ("campaign run out = campaign", "campaign run --campaign camp.json --participants 2 --out camp.json", "camp.json"),
        ("campaign run out = its bank", "campaign run --campaign campb.json --participants 2 --out bank.json", "bank.json"),
        ("campaign report out = campaign", "campaign report results.jsonl --campaign camp.json --out camp.json", "camp.json"),
        ("campaign report out = its bank", "campaign report results.jsonl --campaign campb.json --out bank.json", "bank.json"),
        ("bank convert onto itself", "bank convert bank.csv bank.csv", "bank.csv"),
        ("bank convert onto itself, other spelling", "bank convert bank.json ./bank.json", "bank.json"),
        ("simulate out = thetas", "simulate --thetas thetas.csv --out thetas.csv", "thetas.csv"),
        ("simulate out = config", "simulate --examinees 3 --config session.json --out session.json", "session.json"),
        ("simulate out = predrawn", "simulate --examinees 3 --responses data.csv --out data.csv", "data.csv"),
        ("simulate bank out = bank", "simulate --bank bank.json --examinees 5 --calibrate-exposure 0.5 --bank-out bank.json", "bank.json"),
        ("simulate bank out = example bank file", "simulate --bank bank.csv --examinees 5 --calibrate-exposure 0.5 --bank-out ./bank.csv", "bank.csv"),
        ("data generate out = bank", "data generate --bank bank.csv --persons 5 --out bank.csv", "bank.csv"),
        ("assess save = bank", "assess --bank bank.json --save bank.json", "bank.json"),
        ("assess save = design", "assess --config design.json --save design.json", "design.json"),
    ] {
        v.push(case(&format!("refused: {name}"), args).keeps(&[input]).err(&[input, refused[0]]));
    }
    v.extend([
        case("refused: score out = symlink to responses", "score --responses data.csv --out l.csv").link("l.csv", "data.csv").err(&["l.csv", "same file as the input data.csv"]).keeps(&["data.csv"]),
        case("refused: simulate out = bank out", "simulate --examinees 5 --calibrate-exposure 0.5 --bank-out x.csv --out x.csv").err(&["x.csv", refused[0]]),
        case("refused: data generate out = thetas out", "data generate --persons 5 --out g.csv --thetas-out g.csv").err(&["g.csv", refused[0]]),
        case("refused: campaign report svg = out", "campaign report results.jsonl --campaign camp.json --out r.json --svg r.json").err(&["r.json"]),
        case("refused: output in a missing directory", "score --responses data.csv --out nowhere/s.csv").err(&["nowhere/s.csv", "does not exist"]),
        case("refused: empty output name", "score --responses data.csv").arg("--out").arg("").usage(&["--out"]),
        case("written through a symlink", "score --responses data.csv --out l.csv").link("l.csv", "scores.csv").ok(&["\"persons\":200"]).creates(&["scores.csv"]),
        case("written to /dev/stdout in place", "score --responses data.csv --out /dev/stdout").ok(&["person,theta,se"]),
        case("written through a link to /dev/stdout", "bank convert bank.json o.csv").link("o.csv", "/dev/stdout").ok(&["id,model,a,b"]),
        case("campaign run appends, never truncates", "campaign run --campaign camp.json --participants 1 --out results.jsonl").ok(&["P4"]),
    ]);
    v
}

#[test]
fn class_3_no_command_destroys_its_input() {
    run_class("own inputs", own_input_cases());
    // A hard link to the data: the same file under another name.
    let c = case("hard link", "calibrate data.csv --model 2pl --out h.csv");
    let (dir, before) = prepare(&c);
    std::fs::hard_link(dir.path().join("data.csv"), dir.path().join("h.csv")).unwrap();
    let ran = run_in(dir.path(), &[], &c.args, None);
    check_messages(&ran, &["data.csv".into(), "h.csv".into()]).unwrap();
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("h.csv: this output is the same file as the input data.csv"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read(dir.path().join("data.csv")).unwrap(),
        before["data.csv"]
    );
}

// ---------------------------------------------------------------------------------------------
// Class 4 and 5: faults and memory — scenarios
// ---------------------------------------------------------------------------------------------

/// Files of `dir` other than `.NAME.tmp` temporaries and the ones listed.
fn unexpected_files(dir: &Path, expected: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let temporary = n.starts_with('.') && n.ends_with(".tmp");
            !temporary && !expected.contains(&n.as_str())
        })
        .collect();
    out.sort();
    out
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    command(dir, &[], &strings(args))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kill_after(mut child: Child, ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

/// `etalon campaign report r.jsonl --campaign camp.json --out rep.json` in `d`, which must succeed.
fn report(d: &Path) -> Ran {
    etalon_ok(
        d,
        &[
            "campaign",
            "report",
            "r.jsonl",
            "--campaign",
            "camp.json",
            "--out",
            "rep.json",
        ],
    )
}

fn etalon_ok(dir: &Path, args: &[&str]) -> Ran {
    let ran = run_in(dir, &[], &strings(args), None);
    assert!(check_messages(&ran, &[]).is_ok(), "{args:?}: {}", ran.stderr);
    assert_eq!(ran.code(), Some(0), "{args:?}: {}", ran.stderr);
    ran
}

/// `calibrate --out BANK` killed at several moments: the previous bank is whole (or the new one is),
/// and nothing but a `.*.tmp` is left behind.
#[test]
fn fault_calibrate_killed_mid_run_keeps_the_previous_bank() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    etalon_ok(
        d,
        &[
            "data",
            "generate",
            "--persons",
            "3000",
            "--seed",
            "4",
            "--out",
            "big.csv",
        ],
    );
    etalon_ok(d, &["bank", "example", "--out", "fit.csv"]);
    let old = std::fs::read(d.join("fit.csv")).unwrap();
    for ms in [30, 150, 400, 900, 1600, 2500] {
        let child = spawn(
            d,
            &[
                "calibrate",
                "big.csv",
                "--model",
                "3pl",
                "--se",
                "--out",
                "fit.csv",
                "--threads",
                "1",
            ],
        );
        kill_after(child, ms);
        let now = std::fs::read(d.join("fit.csv")).unwrap();
        if now != old {
            // Replaced only by a whole new bank.
            etalon_ok(d, &["bank", "validate", "fit.csv"]);
        }
        assert_eq!(
            unexpected_files(d, &["big.csv", "fit.csv"]),
            Vec::<String>::new(),
            "after {ms} ms"
        );
    }
    // A run left to finish replaces the bank and leaves no temporary file.
    etalon_ok(d, &["calibrate", "big.csv", "--model", "2pl", "--out", "fit.csv"]);
    assert!(temporary_files(d).iter().all(|n| n.starts_with('.')));
}

/// `campaign run` killed mid-run: the log holds complete lines only and reports; a truncated last line
/// (a crash inside a write) is moved to `<file>.truncated` by the next run.
#[test]
fn fault_campaign_run_killed_mid_run_leaves_a_readable_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("camp.json"), fixture("camp.json")).unwrap();
    for ms in [200, 600] {
        let child = spawn(
            d,
            &[
                "campaign",
                "run",
                "--campaign",
                "camp.json",
                "--participants",
                "1000000",
                "--out",
                "r.jsonl",
                "--threads",
                "1",
            ],
        );
        kill_after(child, ms);
        let text = std::fs::read_to_string(d.join("r.jsonl")).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "an incomplete line after a kill at {ms} ms"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }
    etalon_ok(
        d,
        &[
            "campaign",
            "run",
            "--campaign",
            "camp.json",
            "--participants",
            "2",
            "--out",
            "r.jsonl",
        ],
    );
    let ran = report(d);
    let lines = std::fs::read_to_string(d.join("r.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        ran.stdout_text().contains(&format!("\"participants\":{lines}")),
        "{}",
        ran.stdout_text()
    );
    // A crash inside a write: half a line at the end.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("r.jsonl"))
        .unwrap();
    f.write_all(b"{\"participant\": \"P99\", \"compe").unwrap();
    drop(f);
    let ran = report(d);
    assert!(
        ran.stderr.contains("skipped 1 truncated last line"),
        "{}",
        ran.stderr
    );
    let ran = etalon_ok(
        d,
        &[
            "campaign",
            "run",
            "--campaign",
            "camp.json",
            "--participants",
            "1",
            "--out",
            "r.jsonl",
        ],
    );
    assert!(
        ran.stderr.contains("moved to r.jsonl.truncated"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stdout_text()
            .contains(&format!("\"first_participant\":\"P{}\"", lines + 1))
    );
    assert_eq!(
        std::fs::read_to_string(d.join("r.jsonl.truncated")).unwrap(),
        "{\"participant\": \"P99\", \"compe\n"
    );
    let ran = report(d);
    assert!(
        ran.stdout_text()
            .contains(&format!("\"participants\":{}", lines + 1))
    );
}

/// `assess --save` killed between answers: the saved file resumes.
#[test]
fn fault_assess_killed_resumes_from_the_saved_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut child = command(d, &[], &strings(&["assess", "--seed", "11", "--save", "s.json"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The questions go to standard error; question k+1 is shown only once answer k is saved.
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = std::sync::Arc::clone(&shown);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let wait_for = |text: &str| {
        let start = Instant::now();
        while !shown.lock().unwrap().contains(text) {
            assert!(
                start.elapsed() < DEADLINE,
                "no `{text}`: {}",
                shown.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    for k in 1..=3 {
        wait_for(&format!("Question {k} of"));
        stdin.write_all(b"1\n").unwrap();
        stdin.flush().unwrap();
    }
    wait_for("Question 4 of");
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    assert_eq!(unexpected_files(d, &["s.json"]), Vec::<String>::new());
    let ran = run_in(d, &[], &strings(&["assess", "--save", "s.json"]), Some(b"q\n"));
    assert!(check_messages(&ran, &[]).is_ok(), "{}", ran.stderr);
    assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("Resuming s.json after 3 answers"),
        "{}",
        ran.stderr
    );
    // A save file cut in half (not something etalon writes) is refused, not trusted.
    let text = std::fs::read(d.join("s.json")).unwrap();
    std::fs::write(d.join("half.json"), &text[..text.len() / 2]).unwrap();
    let ran = run_in(d, &[], &strings(&["assess", "--save", "half.json"]), Some(b"q\n"));
    assert!(check_messages(&ran, &[]).is_ok(), "{}", ran.stderr);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("half.json: cannot resume"), "{}", ran.stderr);
}

/// A wrapper running the child under a file-size limit, with SIGXFSZ ignored (as `trap '' XFSZ`
/// does; an ignored signal stays ignored across exec) so that the write fails with EFBIG.
fn fsize_wrap(bytes: u64, ignore_signal: bool) -> Vec<String> {
    let trap = if ignore_signal { "trap '' XFSZ; " } else { "" };
    let script = if Path::new("/usr/bin/prlimit").exists() || which("prlimit") {
        format!("{trap}exec prlimit --fsize={bytes} -- \"$@\"")
    } else {
        format!("{trap}ulimit -f {}; exec \"$@\"", bytes.div_ceil(1024))
    };
    strings(&["bash", "-c", &script, "etalon"])
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
}

/// Every file-writing command under a file-size limit: the output is refused with an error, the
/// previous file is intact and no temporary file is left.
#[test]
fn fault_file_size_limit_refuses_the_output_and_keeps_the_previous_file() {
    let old = b"previous content\n".to_vec();
    let mut cases = Vec::new();
    for (name, args, out) in [
        ("score", "score --responses data.csv --out s.csv", "s.csv"),
        ("calibrate", "calibrate data.csv --model 2pl --out f.csv", "f.csv"),
        (
            "calibrate json",
            "calibrate data.csv --model 2pl --out f.json",
            "f.json",
        ),
        (
            "data generate",
            "data generate --persons 500 --out g.csv",
            "g.csv",
        ),
        (
            "data generate gz",
            "data generate --persons 500 --out g.csv.gz",
            "g.csv.gz",
        ),
        ("simulate", "simulate --examinees 200 --out sim.csv", "sim.csv"),
        (
            "simulate bank out",
            "simulate --examinees 20 --calibrate-exposure 0.5 --bank-out b.json",
            "b.json",
        ),
        ("bank convert", "bank convert bank.csv b.json", "b.json"),
        ("bank example", "bank example --out b.json", "b.json"),
        ("campaign example", "campaign example --out c.json", "c.json"),
        (
            "campaign report",
            "campaign report results.jsonl --campaign camp.json --out rep.json",
            "rep.json",
        ),
    ] {
        let mut c = case(&format!("file-size limit: {name}"), args)
            .file(out, &old)
            .err(&[out, "File too large"])
            .keeps(&[out]);
        c.wrap = fsize_wrap(2000, true);
        cases.push(c);
    }
    // Without the signal ignored the kernel kills the process (SIGXFSZ): the previous file still stands.
    let mut killed = case(
        "file-size limit, signal not ignored",
        "score --responses data.csv --out s.csv",
    )
    .file("s.csv", &old);
    killed.wrap = fsize_wrap(2000, false);
    let (dir, _) = prepare(&killed);
    let ran = run_in(dir.path(), &killed.wrap, &killed.args, None);
    assert!(
        !ran.timed_out && ran.code() != Some(0),
        "{:?} {}",
        ran.status,
        ran.stderr
    );
    assert_eq!(std::fs::read(dir.path().join("s.csv")).unwrap(), old);
    // The campaign log is appended in whole lines: a record that does not fit is not written at all.
    let mut log = case(
        "file-size limit: campaign run",
        "campaign run --campaign camp.json --participants 50 --out r.jsonl",
    )
    .err(&["r.jsonl", "File too large"]);
    log.wrap = fsize_wrap(fixture("results.jsonl").len() as u64 / 2, true);
    let (dir, _) = prepare(&log);
    let ran = run_in(dir.path(), &log.wrap, &log.args, None);
    assert!(check_messages(&ran, &[]).is_ok(), "{}", ran.stderr);
    assert_eq!(ran.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("File too large"), "{}", ran.stderr);
    let text = std::fs::read_to_string(dir.path().join("r.jsonl")).unwrap();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    run_class("file-size limit", cases);
}

/// Standard output on a full disk: an error, never a panic and never success.
#[test]
fn fault_full_disk_on_standard_output_is_an_error() {
    if !Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    let mut failures = Vec::new();
    let (d, _) = prepare(&case("full", ""));
    for args in [
        "bank validate",
        "bank validate bank.csv",
        "data info data.csv",
        "simulate --examinees 20",
        "score --responses data.csv --out s.csv",
        "campaign example --out c.json",
        "campaign report results.jsonl --campaign camp.json --out rep.json",
        "calibrate data.csv --model rasch --out f.csv",
        "--help",
        "--version",
        "score --help",
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let child = command(
            d.path(),
            &[],
            &strings(&args.split_whitespace().collect::<Vec<_>>()),
        )
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let ran = finish(child, DEADLINE);
        let verdict = check_messages(&ran, &[]).and_then(|()| {
            if ran.code() == Some(1) && ran.stderr.contains("No space left on device") {
                Ok(())
            } else {
                Err(format!("exit {:?}: {}", ran.code(), ran.stderr))
            }
        });
        match verdict {
            Ok(()) => eprintln!("ok    full disk / {args}"),
            Err(e) => failures.push(format!("{args}: {e}")),
        }
    }
    // An output file on a full disk (a link to /dev/full): an error, the link left alone.
    std::os::unix::fs::symlink("/dev/full", d.path().join("full.csv")).unwrap();
    let ran = run_in(
        d.path(),
        &[],
        &strings(&["score", "--responses", "data.csv", "--out", "full.csv"]),
        None,
    );
    if !(ran.code() == Some(1) && ran.stderr.contains("full.csv: No space left on device")) {
        failures.push(format!(
            "score --out a link to /dev/full: exit {:?}: {}",
            ran.code(),
            ran.stderr
        ));
    }
    assert!(
        std::fs::symlink_metadata(d.path().join("full.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Standard error on a full disk: the error is lost but the exit code still says it.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let child = command(d.path(), &[], &strings(&["data", "info", "none.csv"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(full)
        .spawn()
        .unwrap();
    let ran = finish(child, DEADLINE);
    if ran.code() != Some(1) {
        failures.push(format!("stderr on /dev/full: exit {:?}", ran.code()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `etalon … | head -c 1`: a closed pipe ends the program quietly (exit 0, no message).
#[test]
fn fault_closed_pipe_ends_quietly() {
    let (d, _) = prepare(&case("pipe", ""));
    let mut failures = Vec::new();
    for args in [
        "bank validate",
        "bank validate bank.json",
        "data info data.csv",
        "simulate --examinees 50",
        "score --responses data.csv --out s.csv",
        "campaign run --campaign camp.json --participants 2 --out r.jsonl",
        "--help",
        "calibrate --help",
        "assess --seed 1 --config design.json --json",
    ] {
        let mut child = command(
            d.path(),
            &[],
            &strings(&args.split_whitespace().collect::<Vec<_>>()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // Read one byte at most, then close the pipe (as `head -c 1` does).
        let mut out = child.stdout.take().unwrap();
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"1\n1\n1\n");
        }
        let mut one = [0u8; 1];
        let _ = out.read(&mut one);
        drop(out);
        let ran = finish(child, DEADLINE);
        let verdict = check_messages(&ran, &[]).and_then(|()| match ran.code() {
            Some(0) if !ran.stderr.contains("error") => Ok(()),
            _ => Err(format!(
                "exit {:?} signal {:?}: {}",
                ran.code(),
                ran.signal(),
                ran.stderr
            )),
        });
        match verdict {
            Ok(()) => eprintln!("ok    closed pipe / {args}"),
            Err(e) => failures.push(format!("{args}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two `campaign run` on one results file at once: participant numbers never collide, every line is
/// a whole JSON record.
#[test]
fn fault_parallel_campaign_runs_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("camp.json"), fixture("camp.json")).unwrap();
    let args = |seed: &str| {
        strings(&[
            "campaign",
            "run",
            "--campaign",
            "camp.json",
            "--participants",
            "40",
            "--seed",
            seed,
            "--out",
            "r.jsonl",
            "--threads",
            "1",
        ])
    };
    let spawn_run = |seed: &str| {
        command(d, &[], &args(seed))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b, c) = (spawn_run("1"), spawn_run("2"), spawn_run("3"));
    for ran in [finish(a, DEADLINE), finish(b, DEADLINE), finish(c, DEADLINE)] {
        assert!(check_messages(&ran, &[]).is_ok(), "{}", ran.stderr);
        assert_eq!(ran.code(), Some(0), "{}", ran.stderr);
    }
    let text = std::fs::read_to_string(d.join("r.jsonl")).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            ids.insert(v["participant"].as_str().unwrap().to_string()),
            "duplicate {}",
            v["participant"]
        );
    }
    assert_eq!(ids.len(), 120);
    let expected: std::collections::BTreeSet<String> = (1..=120).map(|n| format!("P{n}")).collect();
    assert_eq!(ids, expected);
}

/// Endless or oversized input, in bounded memory: refused with a clear error within seconds, the
/// process exiting by itself (not killed by the memory limit).
#[rustfmt::skip]
fn endless_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (name, args, file) in [
        ("data info", "data info z.csv", "z.csv"),
        ("score responses", "score --responses z.csv --out s.csv", "z.csv"),
        ("calibrate data", "calibrate z.csv --model 2pl --out f.csv", "z.csv"),
        ("calibrate long data", "calibrate z.csv --format long --model 2pl --out f.csv", "z.csv"),
        ("bank json", "bank validate z.json", "z.json"),
        ("bank csv", "bank validate z.csv", "z.csv"),
        ("score bank", "score --bank z.json --responses data.csv --out s.csv", "z.json"),
        ("mirt table", "bank convert --from mirt --model 2pl z.csv b.csv", "z.csv"),
        ("session config", "simulate --examinees 3 --config z.json", "z.json"),
        ("design", "assess --config z.json", "z.json"),
        ("levels", "score --responses data.csv --levels z.json --out s.csv", "z.json"),
        ("spec", "calibrate data.csv --spec z.json --out f.csv", "z.json"),
        ("campaign", "campaign run --campaign z.json --participants 2 --out r.jsonl", "z.json"),
        ("thetas", "simulate --thetas z.csv", "z.csv"),
        ("predrawn", "simulate --examinees 3 --responses z.csv", "z.csv"),
        ("results log", "campaign report z.jsonl --campaign camp.json --out rep.json", "z.jsonl"),
        ("saved assessment", "assess --save z.json", "z.json"),
    ] {
        v.push(case(&format!("/dev/zero: {name}"), args).link(file, "/dev/zero").bounded_memory().err(&[file]));
    }
    v.push(case("/dev/zero on standard input", "assess --seed 1").stdin(vec![0u8; 1 << 20]).bounded_memory().err(&["answer longer than"]));
    // Large files (sparse: no disk used) beyond the stated limits.
    v.extend([
        case("bank above 256 MiB", "bank validate big.json").sparse("big.json", (256 << 20) + 1).bounded_memory().err(&["big.json", "256 MiB"]),
        case("CSV line above 16 MiB", "data info big.csv").sparse("big.csv", (16 << 20) + 2).bounded_memory().err(&["big.csv", "line 1 is longer than 16 MiB"]),
        case("settings above 16 MiB", "simulate --examinees 3 --config big.json").sparse("big.json", (16 << 20) + 1).bounded_memory().err(&["big.json", "larger than"]),
        case("saved assessment above 64 MiB", "assess --save big.json").sparse("big.json", (64 << 20) + 1).bounded_memory().err(&["big.json", "larger than"]),
        case("gzip bomb, data", "data info bomb.csv.gz").file("bomb.csv.gz", gzip_zeros(64 << 20)).bounded_memory().err(&["bomb.csv.gz", "longer than 16 MiB"]),
        case("gzip bomb, bank", "bank validate bomb.json.gz").file("bomb.json.gz", gzip_zeros(300 << 20)).bounded_memory().err(&["bomb.json.gz", "256 MiB"]),
        case("campaign bank is /dev/zero", "campaign run --campaign c.json --participants 2 --out r.jsonl").file("c.json", String::from_utf8(fixture("campb.json")).unwrap().replace("bank.json", "zero.json")).link("zero.json", "/dev/zero").bounded_memory().err(&["zero.json", "256 MiB"]),
        case("anchor is /dev/zero", "calibrate data.csv --model 2pl --anchor z.csv --out f.csv").link("z.csv", "/dev/zero").bounded_memory().err(&["z.csv", "256 MiB"]),
        case("calibrate into /dev/zero's name", "calibrate data.csv --model rasch --out z.csv").link("z.csv", "/dev/zero").bounded_memory().ok(&["converged"]),
        case("a CSV line of 2 MiB is fine", "data info wide.csv").file("wide.csv", format!("q1\n{}1\n", " ".repeat(2 << 20))).bounded_memory().ok(&["\"persons\":1"]),
    ]);
    v
}

/// `n` zero bytes, gzip-compressed.
fn gzip_zeros(n: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let block = vec![0u8; 1 << 20];
    for _ in 0..n / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn fault_endless_and_oversized_input_in_bounded_memory() {
    if !which("prlimit") {
        eprintln!("no prlimit here: the memory bound is not enforced");
    }
    let mut cases = endless_cases();
    if !which("prlimit") {
        for c in &mut cases {
            c.wrap.clear();
        }
    }
    run_class("endless input", cases);
}

/// The catalogue's size: at least 150 table cases plus the scenarios.
#[test]
fn the_catalogue_holds_at_least_150_cases() {
    let tables =
        options_cases().len() + bad_files_cases().len() + own_input_cases().len() + endless_cases().len();
    eprintln!("{tables} table cases");
    assert!(tables >= 150, "{tables} cases");
}
