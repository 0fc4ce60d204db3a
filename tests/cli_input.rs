//! The `tessera` command refuses bad counts, byte sizes and device numbers with a clear message
//! (exit 1 or clap's usage error), and hostile sizes end in a typed error, not an abort.

use std::process::{Command, Output};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("the tessera binary runs")
}

/// Runs `args`, expects a failure whose stderr contains `want` and no panic or signal.
fn refused(args: &[&str], want: &str) {
    let out = tessera(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{args:?}: expected a refusal, got {:?}\n{err}",
        out.status
    );
    assert!(
        err.contains(want),
        "{args:?}: stderr lacks {want:?}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?}: panicked:\n{err}");
}

fn ran(args: &[&str]) -> String {
    let out = tessera(args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn counts_are_refused_not_rounded() {
    let pi = ["run", "pi", "--backend", "cpu"];
    for (n, want) in [
        ("1.9", "whole number"),
        ("-5", "at least 1"),
        ("0", "at least 1"),
        ("nan", "finite"),
        ("inf", "finite"),
        ("1e30", "larger than the largest count"),
        ("abc", "not a number"),
    ] {
        // `--n=VALUE`: clap would read a separate `-5` as a flag.
        let flag = format!("--n={n}");
        let mut args = pi.to_vec();
        args.push(&flag);
        refused(&args, want);
    }
    refused(
        &[
            "run",
            "pi",
            "--backend",
            "cpu",
            "--n",
            "100",
            "--chunk",
            "0",
        ],
        "at least 1",
    );
    refused(
        &[
            "run",
            "pi",
            "--backend",
            "cpu",
            "--n",
            "100",
            "--chunk",
            "2.5",
        ],
        "whole number",
    );
    refused(
        &[
            "run",
            "pi",
            "--backend",
            "cpu",
            "--n",
            "100",
            "--devices",
            "0",
        ],
        "at least 1",
    );
}

#[test]
fn hostile_sizes_are_typed_errors() {
    // 1e18 points in 4 Mi chunks: 2.4e11 chunks, refused before the chunk list is allocated.
    refused(
        &["run", "pi", "--backend", "cpu", "--n", "1e18"],
        "cut into chunks of [4194304]",
    );
    refused(
        &[
            "run",
            "add-mul-sum",
            "--backend",
            "cpu",
            "--n",
            "1e15",
            "--chunk",
            "1",
        ],
        "cut into chunks of [1]",
    );
}

#[test]
fn byte_sizes_accept_the_count_syntax() {
    for budget in ["1e9", "1.5GiB", "512MiB", "64000KB"] {
        let out = ran(&[
            "run",
            "pi",
            "--backend",
            "cpu",
            "--n",
            "1000",
            "--device-budget",
            budget,
        ]);
        assert!(out.contains("pi n=1000"), "{budget}: {out}");
    }
    let out = ran(&[
        "run",
        "pi",
        "--backend",
        "cpu",
        "--n",
        "2e3",
        "--host-budget",
        "1e9",
        "--devices",
        "2",
    ]);
    assert!(out.contains("pi n=2000"), "{out}");
    for (budget, want) in [
        ("1e30", "larger than"),
        ("1.5B", "whole number"),
        ("-1MiB", "must be a finite number"),
        ("12XB", "unknown unit"),
    ] {
        let flag = format!("--device-budget={budget}");
        refused(
            &["run", "pi", "--backend", "cpu", "--n", "1000", &flag],
            want,
        );
    }
}
