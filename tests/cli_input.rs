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

#[test]
fn run_reads_and_writes_npy_files() {
    let seed: u64 = rand::random();
    let dir = std::env::temp_dir().join(format!("tessera-cli-io-{seed:016x}"));
    std::fs::create_dir(&dir).unwrap();
    let s = tessera::cpu_session();
    // x[i] = i % 7 as f32: ((x + 1) * 2).sum() is exact in f32 for this size.
    let n = 10_000usize;
    let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let input = dir.join("x.npy");
    s.from_vec(x.clone(), &[n]).unwrap().to_npy(&input).unwrap();
    let want: f64 = x.iter().map(|&v| ((v + 1.0) * 2.0) as f64).sum();
    let (i, o) = (input.to_str().unwrap(), dir.join("y.npy"));
    let out = ran(&[
        "run",
        "add-mul-sum",
        "--backend",
        "cpu",
        "--chunk",
        "999",
        "--input",
        i,
    ]);
    assert!(out.contains(&format!(": {want} in")), "{out}");
    let out = ran(&[
        "run",
        "add-mul-sum",
        "--backend",
        "cpu",
        "--input",
        i,
        "--output",
        o.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!(": {want} in")), "{out}");
    let y = tessera::io::load_npy(&s, &o, None)
        .unwrap()
        .to_array::<f32>()
        .unwrap();
    assert!(y.iter().zip(&x).all(|(&y, &x)| y == (x + 1.0) * 2.0));
    refused(
        &["run", "pi", "--output", o.to_str().unwrap()],
        "reads no array",
    );
    refused(
        &["run", "std-expr", "--backend", "cpu", "--input", i],
        "not a square matrix",
    );
    refused(
        &[
            "run",
            "add-mul-sum",
            "--input",
            dir.join("none.npy").to_str().unwrap(),
        ],
        "none.npy",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
