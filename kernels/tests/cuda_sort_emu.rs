//! The GPU lane sort of `shaders/sort.cu` run on the CPU: compiled as C++ by the system `g++`
//! with the emulator of `cuda_emu.rs` (its shim for NVRTC's built-ins and its launch driver:
//! 256-thread blocks as fibers, so every `__syncthreads()` is a real barrier), launched with
//! one block per lane, and compared with a stable sort written here: positions equal, values
//! equal bit for bit, for every dtype, both directions, lanes of 1 to 2048 elements (powers of
//! two and not), ties, NaN, -0.0 and infinities. Without a C++ compiler it prints `skipped:
//! <reason>` and passes.
#![cfg(unix)]

mod common;

use common::emu::{cxx, Scratch};

use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::process::Command;

const SHIM: &str = include_str!("cuda_emu/shim.h");
const DRIVER: &str = include_str!("cuda_emu/driver.cpp");
const SORT: &str = include_str!("../../shaders/sort.cu");

/// The kernels, in table order: (name, element bytes).
const KERNELS: [(&str, &str, usize); 4] = [
    ("f32", "float", 4),
    ("f64", "double", 8),
    ("i32", "int", 4),
    ("i64", "long long", 8),
];

/// numpy's order on the values as f64 (NaN last, all NaNs equal, -0.0 == 0.0).
fn order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("numbers"),
    }
}

/// One lane's elements: their bytes and their values as f64 (integers are small: exact).
fn lane(rng: &mut rand::rngs::StdRng, kind: usize, len: usize) -> (Vec<u8>, Vec<f64>) {
    let mut bytes = Vec::new();
    let mut vals = Vec::new();
    for _ in 0..len {
        let v: f64 = match rng.gen_range(0..10) {
            0 if kind < 2 => f64::NAN,
            1 if kind < 2 => -0.0,
            2 if kind < 2 => [f64::INFINITY, f64::NEG_INFINITY][rng.gen_range(0..2)],
            _ => rng.gen_range(-6..7) as f64 * if kind < 2 { 0.5 } else { 1.0 },
        };
        match kind {
            0 => bytes.extend((v as f32).to_le_bytes()),
            1 => bytes.extend(v.to_le_bytes()),
            2 => bytes.extend((v as i32).to_le_bytes()),
            _ => bytes.extend((v as i64).to_le_bytes()),
        }
        vals.push(v);
    }
    (bytes, vals)
}

fn words(out: &mut Vec<u8>, ws: &[u64]) {
    for w in ws {
        out.extend(w.to_le_bytes());
    }
}

#[test]
fn gpu_lane_sort_matches_a_stable_sort() {
    let cxx = match cxx() {
        Ok(c) => c,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let mut scratch = Scratch::new();
    let (shim, driver, tu, exe) = (
        scratch.path("shim.h"),
        scratch.path("driver.cpp"),
        scratch.path("sort_emu.cpp"),
        scratch.path("sort_emu"),
    );
    std::fs::write(&shim, SHIM).unwrap();
    std::fs::write(&driver, DRIVER).unwrap();
    let mut src = String::from("#include \"shim.h\"\n#include <limits.h>\n");
    src.push_str(SORT);
    src.push_str(
        "typedef void (*TkCall)(void* const*, const unsigned long long*);\n\
         struct TkEntry {\n    const char* name;\n    TkCall call;\n    \
         unsigned long long bufs, words;\n    bool barriers;\n};\n",
    );
    let mut table = String::new();
    for (k, (name, cty, _)) in KERNELS.iter().enumerate() {
        src.push_str(&format!(
            "static void tk_call_{k}(void* const* b, const unsigned long long* w) {{\n    \
             tessera_lane_sort_{name}((const {cty}*)b[0], ({cty}*)b[1], (long long*)b[2], \
             (long long)w[0], (long long)w[1]);\n}}\n"
        ));
        table.push_str(&format!(
            "    {{\"lane_sort_{name}\", tk_call_{k}, 3ull, 2ull, true}},\n"
        ));
    }
    src.push_str(&format!(
        "static const TkEntry tk_emu_table[] = {{\n{table}}};\n\
         static const unsigned long long tk_emu_count = {};\n#include \"driver.cpp\"\n",
        KERNELS.len()
    ));
    std::fs::write(&tu, src).unwrap();
    let out = Command::new(&cxx)
        // -O0: the emulator names a barrier by its return address, and optimized code may
        // duplicate one `__syncthreads()` into several call sites (threads taking different
        // branches would then wait at "different" barriers that are one on the GPU).
        .args([
            "-std=c++17",
            "-O0",
            "-ffp-contract=off",
            "-fwrapv",
            "-fno-strict-aliasing",
            "-w",
        ])
        .arg("-I")
        .arg(&scratch.dir)
        .arg("-o")
        .arg(&exe)
        .arg(&tu)
        .output()
        .expect("run the C++ compiler");
    assert!(
        out.status.success(),
        "shaders/sort.cu does not compile as C++ with the shim:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Jobs: every kernel, both directions, lanes of several lengths, 3 lanes each on a (2, 2)
    // grid (the fourth block sorts a fourth lane: every block has a lane).
    let seed: u64 = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut jobs = Vec::new();
    let mut expect = Vec::new();
    for (k, (name, _, size)) in KERNELS.iter().enumerate() {
        for len in [1usize, 2, 5, 200, 256, 257, 1000, 2048] {
            for desc in [0u64, 1] {
                let lanes = 4;
                let (mut bytes, mut vals) = (Vec::new(), Vec::new());
                for _ in 0..lanes {
                    let (b, v) = lane(&mut rng, k, len);
                    bytes.extend(b);
                    vals.push(v);
                }
                let mut job = Vec::new();
                words(&mut job, &[k as u64, 2, 2, 3, 2, len as u64, desc]);
                for (data, out) in [(&bytes, false), (&vec![0u8; bytes.len()], true)] {
                    words(&mut job, &[data.len() as u64, out as u64]);
                    job.extend(data.iter());
                    job.resize(job.len() + (8 - data.len() % 8) % 8, 0);
                }
                let ib = lanes * len * 8;
                words(&mut job, &[ib as u64, 1]);
                job.resize(job.len() + ib, 0);
                jobs.push(job);
                // The reference: positions by (value order, position), descending reversing
                // the values only.
                let mut want_idx = Vec::new();
                let mut want_bytes = Vec::new();
                for (l, v) in vals.iter().enumerate() {
                    let mut p: Vec<usize> = (0..len).collect();
                    p.sort_by(|&a, &b| {
                        let o = order(v[a], v[b]);
                        (if desc == 1 { o.reverse() } else { o }).then(a.cmp(&b))
                    });
                    for &i in &p {
                        want_idx.push(i as i64);
                        let at = (l * len + i) * size;
                        want_bytes.extend_from_slice(&bytes[at..at + size]);
                    }
                }
                expect.push((
                    format!("{name} len {len} desc {desc}"),
                    want_bytes,
                    want_idx,
                ));
            }
        }
    }
    let (jobs_file, outs_file) = (scratch.path("jobs"), scratch.path("outs"));
    let mut all = b"TKEMU001".to_vec();
    words(&mut all, &[jobs.len() as u64]);
    for j in &jobs {
        all.extend(j);
    }
    std::fs::write(&jobs_file, all).unwrap();
    let run = Command::new(&exe)
        .arg(&jobs_file)
        .arg(&outs_file)
        .output()
        .expect("run the emulator");
    assert!(
        run.status.success(),
        "emulated launches failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let outs = std::fs::read(&outs_file).unwrap();
    let mut at = 0;
    for (what, want_vals, want_idx) in &expect {
        let vb = want_vals.len();
        let got_vals = &outs[at..at + vb];
        at += vb + (8 - vb % 8) % 8;
        let got_idx: Vec<i64> = outs[at..at + want_idx.len() * 8]
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        at += want_idx.len() * 8 + 8; // the vector-call count
        assert_eq!(&got_idx, want_idx, "{what}: positions [seed {seed}]");
        assert_eq!(got_vals, &want_vals[..], "{what}: value bits [seed {seed}]");
    }
    assert_eq!(at, outs.len(), "every output read");
}
