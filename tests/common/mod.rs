//! Helpers shared by the end-to-end tests: run the `etalon` binary, locate `reference/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `reference/` in the repository: data sets and mirt/catR/toolkit reference values.
pub fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference")
}

/// Run `etalon` with these arguments.
pub fn etalon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args(args)
        .output()
        .expect("the etalon binary runs")
}

/// Run `etalon` with these arguments (paths among them).
pub fn etalon_os(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etalon"))
        .args(args)
        .output()
        .expect("the etalon binary runs")
}

/// Run `etalon ARGS --json` (arguments that may be paths) and parse its summary.
pub fn etalon_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    json_out(
        &Command::new(env!("CARGO_BIN_EXE_etalon"))
            .args(args)
            .arg("--json")
            .output()
            .expect("the etalon binary runs"),
    )
}

/// Standard output parsed as one JSON object (panics with stderr shown otherwise).
pub fn json_out(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "etalon failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Assert a clean failure: exit code 1, no panic, stderr containing every `needle`.
pub fn assert_fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`: {err}");
    }
}

/// Assert an argument rejected by the parser: non-zero exit (clap uses 2), no panic, a message.
pub fn assert_rejects_argument(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "expected failure, stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
}
