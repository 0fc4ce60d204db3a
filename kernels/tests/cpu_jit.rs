//! The CPU backend's compiled fused kernels (`tessera_cpu::jit`) against its interpreter, bit
//! for bit, over every representative kernel and every op per dtype (the matrix the GPU
//! renderers are checked with), on fresh random inputs mixed with the special values every op
//! must handle (NaN, infinities, signed zeros, integer extremes). Kernels whose ops have no C
//! rendering must fall back to the interpreter, never fail. Where no C compiler runs, the
//! test prints why it skipped.

mod common;

use common::{col, run_cpu, span};
use rand::{Rng, SeedableRng};
use tessera_cpu::jit::{self, JitMode};
use tessera_cpu::CpuBackend;
use tessera_runtime::ir::{KernelParams, RandomParam};
use tessera_runtime::{DType, HostArray};

/// `n` random values of `d`, with special values at fixed positions.
fn input(d: DType, n: usize, rng: &mut impl Rng) -> HostArray {
    match d {
        DType::Bool => HostArray::Bool(col((0..n).map(|_| rng.gen_bool(0.4)).collect())),
        DType::I32 => HostArray::I32(col((0..n)
            .map(|i| match i % 89 {
                5 => 0,
                6 => -1,
                7 => i32::MIN,
                8 => i32::MAX,
                9 => rng.gen(),
                _ => rng.gen_range(-300..300),
            })
            .collect())),
        DType::I64 => HostArray::I64(col((0..n)
            .map(|i| match i % 89 {
                5 => 0,
                7 => i64::MIN,
                8 => i64::MAX,
                9 => rng.gen(),
                _ => rng.gen_range(-1_000_000_000_000..1_000_000_000_000),
            })
            .collect())),
        DType::F32 => HostArray::F32(col((0..n)
            .map(|i| match i % 101 {
                3 => f32::NAN,
                4 => f32::INFINITY,
                5 => f32::NEG_INFINITY,
                6 => -0.0,
                7 => 0.5,
                8 => 0.0,
                9 => 3e9,
                10 => -2.5,
                _ => rng.gen_range(-8.0f32..8.0),
            })
            .collect())),
        DType::F64 => HostArray::F64(col((0..n)
            .map(|i| match i % 101 {
                3 => f64::NAN,
                4 => f64::INFINITY,
                6 => -0.0,
                8 => 0.0,
                9 => 1e300,
                10 => -1e19,
                _ => rng.gen_range(-8.0..8.0),
            })
            .collect())),
    }
}

/// Every output's bytes (bool as 0/1, floats by their bits), for exact comparison.
fn bits(out: &[HostArray]) -> Vec<Vec<u64>> {
    out.iter()
        .map(|a| match a {
            HostArray::Bool(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::I32(x) => x.iter().map(|&v| v as u32 as u64).collect(),
            HostArray::I64(x) => x.iter().map(|&v| v as u64).collect(),
            HostArray::F32(x) => x.iter().map(|&v| v.to_bits() as u64).collect(),
            HostArray::F64(x) => x.iter().map(|&v| v.to_bits()).collect(),
        })
        .collect()
}

#[test]
fn compiled_kernels_equal_the_interpreter_bit_for_bit() {
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cpu = CpuBackend::new();
    let mut compiled = Vec::new();
    let mut interpreted = Vec::new();
    let mut failures = Vec::new();
    for (name, ir) in common::cuda_all() {
        let nrand = tessera_kernels::num_random_params(&ir);
        let params = KernelParams {
            random: (0..nrand)
                .map(|k| RandomParam {
                    seed: rng.gen(),
                    stream: 3 + k as u64,
                    base: rng.gen_range(0..1 << 40),
                })
                .collect(),
            arg_base: 40,
            load_offsets: vec![3; ir.inputs.len()],
        };
        let inputs: Vec<HostArray> = (0..ir.inputs.len())
            .map(|i| input(ir.inputs[i].dtype, span(&ir, i) + 3, &mut rng))
            .collect();
        jit::set_mode(JitMode::Off);
        let want = run_cpu(&cpu, &ir, &params, &inputs);
        jit::set_mode(JitMode::Always);
        let before = jit::status();
        let got = run_cpu(&cpu, &ir, &params, &inputs);
        let after = jit::status();
        if after.failed > before.failed {
            if after.compiled + after.loaded == 0 {
                println!(
                    "skipped: no kernel compiles here: {}",
                    after.last_error.unwrap_or_default()
                );
                return;
            }
            failures.push(format!("{name}: compile failed: {:?}", after.last_error));
            continue;
        }
        if after.runs > before.runs {
            compiled.push(name.clone());
        } else {
            interpreted.push(name.clone());
        }
        match (want, got) {
            (Ok(w), Ok(g)) => {
                let (wb, gb) = (bits(&w), bits(&g));
                if wb != gb {
                    let first = wb
                        .iter()
                        .zip(&gb)
                        .flat_map(|(a, b)| a.iter().zip(b).enumerate())
                        .find(|(_, (a, b))| a != b)
                        .map(|(i, (a, b))| format!("element {i}: {a:#x} vs {b:#x}"));
                    failures.push(format!("{name}: differs at {first:?}"));
                }
            }
            (Err(w), Err(g)) => {
                if w.to_string() != g.to_string() {
                    failures.push(format!("{name}: errors differ: {w} vs {g}"));
                }
            }
            (w, g) => failures.push(format!("{name}: {:?} vs {:?}", w.err(), g.err())),
        }
    }
    jit::set_mode(JitMode::Auto);
    println!("compiled: {}: {compiled:?}", compiled.len());
    println!("interpreted: {}: {interpreted:?}", interpreted.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The headline chains and every cheap op compile; ops without a C rendering do not.
    for must in [
        "add_mul_f32",
        "where_compare",
        "cast_i32_f32",
        "mc_pi",
        "broadcast_add",
        "rand_strided",
    ] {
        assert!(
            compiled.iter().any(|n| n == must),
            "{must} was not compiled"
        );
    }
    for never in ["divmod_i32", "divmod_f64", "unary_round_float32"] {
        assert!(
            interpreted.iter().any(|n| n == never),
            "{never} has no C rendering but was compiled"
        );
    }
    assert!(
        compiled.len() > 100,
        "only {} kernels compiled",
        compiled.len()
    );
}
