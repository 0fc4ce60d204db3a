//! The headline checks: the seed expression against an f64 reference, and Monte Carlo
//! pi independent of chunking.

use ndarray::Array2;
use tessera::{workloads, Axes, DType};

/// `(a.dot(a.T) - a).std()` for a 4000x4000 f32 `a` tiled 1000x1000 matches f64 to 1e-4.
#[test]
fn seed_expression_4000_matches_f64_reference() {
    let s = tessera::cpu_session();
    let seed: u64 = rand::random();
    let a = s
        .random(seed)
        .rand(&[4000, 4000], DType::F32)
        .with_chunks(&[1000])
        .unwrap();
    let got = workloads::std_expr(&a).unwrap();

    // Reference: the same values in f64 through ndarray alone (no tiler).
    let a64: Array2<f64> = a.to_array::<f64>().unwrap().into_dimensionality().unwrap();
    let prod = a64.dot(&a64.t()) - &a64;
    let n = prod.len() as f64;
    let mean = prod.sum() / n;
    let want = (prod.mapv(|v| (v - mean).powi(2)).sum() / n).sqrt();
    let rel = (got - want).abs() / want;
    assert!(
        rel < 1e-4,
        "seed {seed}: got {got}, f64 reference {want}, rel {rel:e}"
    );
}

/// Monte Carlo pi with 1e7 points: within 0.01 of pi and the same bits at two chunkings.
#[test]
fn monte_carlo_pi_is_chunking_independent() {
    let s = tessera::cpu_session();
    let seed: u64 = rand::random();
    let p1 = workloads::pi(&s, 10_000_000, 100_000, seed).unwrap();
    let p2 = workloads::pi(&s, 10_000_000, 1_000_000, seed).unwrap();
    assert!(
        (p1 - std::f64::consts::PI).abs() < 0.01,
        "seed {seed}: pi = {p1}"
    );
    assert_eq!(p1.to_bits(), p2.to_bits(), "seed {seed}: {p1} vs {p2}");
}

/// `(x + 1) * 2` summed: the fused-looking chain gives the f64 reference at two chunkings.
#[test]
fn add_mul_sum_matches_reference() {
    let s = tessera::cpu_session();
    let seed: u64 = rand::random();
    let x = s
        .random(seed)
        .rand(&[1_000_003], DType::F32)
        .with_chunks(&[65_536])
        .unwrap();
    let want: f64 = x
        .to_array::<f32>()
        .unwrap()
        .iter()
        .map(|&v| (v as f64 + 1.0) * 2.0)
        .sum();
    let got = ((&x + 1.0) * 2.0)
        .sum(Axes::All, false)
        .unwrap()
        .item()
        .unwrap();
    assert!(
        ((got - want) / want).abs() < 1e-6,
        "seed {seed}: {got} vs {want}"
    );
}
