//! Random sources: values depend only on (seed, draw, element), never on chunking or session;
//! ranges and moments match the distribution.

use super::{values, Chunking, Cx};
use ndarray::ArrayD;
use rand::Rng;
use tessera::{DType, Error, Generator, Result, Tensor};

type Draw = fn(&Generator, &[usize]) -> Result<Tensor>;

/// Every distribution and dtype, as (name, draw, result dtype).
#[rustfmt::skip]
fn draws() -> Vec<(&'static str, Draw, DType)> {
    vec![
        ("rand f32", |g, sh| Ok(g.rand(sh, DType::F32)), DType::F32),
        ("rand f64", |g, sh| Ok(g.rand(sh, DType::F64)), DType::F64),
        ("randn f32", |g, sh| Ok(g.randn(sh, DType::F32)), DType::F32),
        ("randn f64", |g, sh| Ok(g.randn(sh, DType::F64)), DType::F64),
        ("uniform(-3, 5) f64", |g, sh| Ok(g.uniform(-3.0, 5.0, sh, DType::F64)), DType::F64),
        ("uniform(-3, 5) f32", |g, sh| Ok(g.uniform(-3.0, 5.0, sh, DType::F32)), DType::F32),
        ("normal(2, 0.5) f32", |g, sh| Ok(g.normal(2.0, 0.5, sh, DType::F32)), DType::F32),
        ("normal(2, 0.5) f64", |g, sh| Ok(g.normal(2.0, 0.5, sh, DType::F64)), DType::F64),
        ("randint(-5, 9) i32", |g, sh| g.randint(-5, 9, sh, DType::I32), DType::I32),
        ("randint(-5, 9) i64", |g, sh| g.randint(-5, 9, sh, DType::I64), DType::I64),
    ]
}

const SHAPES: [&[usize]; 3] = [&[13, 7], &[4, 9], &[6, 5, 7]];

/// The same seed gives the same values at any chunking, on any session.
pub fn random_same_seed_any_chunking(cx: &mut Cx) -> Result<()> {
    let other = cx.new_session();
    for (name, draw, dt) in draws() {
        for shape in SHAPES {
            let seed: u64 = cx.rng().gen();
            let what = format!("{name} {shape:?} seed {seed}");
            let got =
                cx.chunk_invariant(&what, |ch| ch.apply(draw(&cx.s.random(seed), shape)?, 0))?;
            assert_eq!(got.dtype(), dt, "{what}: dtype [{}]", cx.tag());
            assert_eq!(got.shape(), shape, "{what}: shape [{}]", cx.tag());
            let elsewhere = Chunking::Mixed
                .apply(draw(&other.random(seed), shape)?, 0)?
                .execute()?;
            cx.assert_bit_identical(&format!("{what} on another session"), &got, &elsewhere);
        }
    }
    Ok(())
}

fn in_range(cx: &Cx, what: &str, a: &ArrayD<f64>, lo: f64, hi: f64) {
    if let Some(v) = a.iter().find(|&&v| !(lo <= v && v < hi)) {
        panic!("{what}: value {v} outside [{lo}, {hi}) [{}]", cx.tag());
    }
}

/// Uniform draws lie in [low, high) (in float32, between the rounded bounds) and actually
/// spread over it.
pub fn random_ranges(cx: &mut Cx) -> Result<()> {
    let shape = [40, 25];
    for dt in [DType::F32, DType::F64] {
        let lo = cx.value(super::Dom::Range(-100.0, 100.0));
        let hi = lo + cx.value(super::Dom::Range(0.5, 50.0));
        let seed = cx.rng().gen();
        for (name, (l, h)) in [("rand", (0.0, 1.0)), ("uniform", (lo, hi))] {
            let what = format!("{name}({l}, {h}) {dt}");
            let got = cx.chunk_invariant(&what, |ch| {
                let g = cx.s.random(seed);
                ch.apply(
                    if name == "rand" {
                        g.rand(&shape, dt)
                    } else {
                        g.uniform(l, h, &shape, dt)
                    },
                    0,
                )
            })?;
            let v = values(&got);
            if dt == DType::F32 {
                // In float32 the bounds themselves round: `low` to the nearest float32 (which
                // may lie just below it), and `low + span * u` may round up to `high` (numpy
                // says as much of its float32 draws).
                let (l32, h32) = (l as f32 as f64, h as f32 as f64);
                if let Some(x) = v.iter().find(|&&x| !(l32 <= x && x <= h32)) {
                    panic!("{what}: value {x} outside [{l32}, {h32}] [{}]", cx.tag());
                }
            } else {
                in_range(cx, &what, &v, l, h);
            }
            let (mn, mx) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                });
            let span = h - l;
            assert!(
                mn < l + 0.01 * span && mx > h - 0.01 * span,
                "{what}: values span only [{mn}, {mx}] [{}]",
                cx.tag()
            );
        }
    }
    Ok(())
}

/// randint stays in [low, high), hits every value, and rejects bad bounds and dtypes.
pub fn randint_bounds(cx: &mut Cx) -> Result<()> {
    for dt in [DType::I32, DType::I64] {
        let lo = cx.rng().gen_range(-20i64..20);
        let hi = lo + cx.rng().gen_range(1i64..8);
        let seed = cx.rng().gen();
        let what = format!("randint({lo}, {hi}) {dt}");
        let got = cx.chunk_invariant(&what, |ch| {
            ch.apply(cx.s.random(seed).randint(lo, hi, &[40, 25], dt)?, 0)
        })?;
        assert_eq!(got.dtype(), dt);
        let v = values(&got);
        in_range(cx, &what, &v, lo as f64, hi as f64);
        for k in lo..hi {
            assert!(
                v.iter().any(|&x| x == k as f64),
                "{what}: never drew {k} in 1000 draws [{}]",
                cx.tag()
            );
        }
    }
    let g = cx.s.random(1);
    crate::assert_err!(
        g.randint(3, 3, &[4], DType::I64),
        Error::InvalidArgument { .. }
    );
    crate::assert_err!(
        g.randint(5, -2, &[4], DType::I32),
        Error::InvalidArgument { .. }
    );
    crate::assert_err!(
        g.randint(0, 5, &[4], DType::F32),
        Error::InvalidArgument { .. }
    );
    crate::assert_err!(
        g.randint(0, 5, &[4], DType::Bool),
        Error::InvalidArgument { .. }
    );
    Ok(())
}

fn moments(a: &ArrayD<f64>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    (mean, (a.mapv(|x| (x - mean).powi(2)).sum() / n).sqrt())
}

/// Mean and standard deviation of 1e5 draws are within 6 standard errors of the expected.
pub fn random_moments(cx: &mut Cx) -> Result<()> {
    let shape = [2, 50_000];
    let n = 100_000f64;
    let twelfth = (1.0f64 / 12.0).sqrt();
    #[rustfmt::skip]
    let cases: Vec<(&str, Draw, f64, f64)> = vec![
        ("rand f32", |g, sh| Ok(g.rand(sh, DType::F32)), 0.5, twelfth),
        ("rand f64", |g, sh| Ok(g.rand(sh, DType::F64)), 0.5, twelfth),
        ("uniform(-2, 6) f64", |g, sh| Ok(g.uniform(-2.0, 6.0, sh, DType::F64)), 2.0, 8.0 * twelfth),
        ("randn f32", |g, sh| Ok(g.randn(sh, DType::F32)), 0.0, 1.0),
        ("randn f64", |g, sh| Ok(g.randn(sh, DType::F64)), 0.0, 1.0),
        ("normal(3, 0.5) f32", |g, sh| Ok(g.normal(3.0, 0.5, sh, DType::F32)), 3.0, 0.5),
        ("randint(0, 10) i64", |g, sh| g.randint(0, 10, sh, DType::I64), 4.5, (99.0f64 / 12.0).sqrt()),
    ];
    for (name, draw, mean, std) in cases {
        let seed = cx.rng().gen();
        let t = cx.ch.apply(draw(&cx.s.random(seed), &shape)?, 0)?;
        let (m, s) = moments(&values(&t.execute()?));
        let tol = 6.0 * std / n.sqrt();
        assert!(
            (m - mean).abs() < tol,
            "{name}: mean {m}, expected {mean} +- {tol} [{}]",
            cx.tag()
        );
        assert!(
            (s - std).abs() < tol,
            "{name}: std {s}, expected {std} +- {tol} [{}]",
            cx.tag()
        );
    }
    Ok(())
}

/// Consecutive draws of one generator differ; so do generators with different seeds.
pub fn random_draws_differ(cx: &mut Cx) -> Result<()> {
    let shape = [13, 7];
    for (name, draw, _) in draws() {
        let seed: u64 = cx.rng().gen();
        let g = cx.s.random(seed);
        let first = values(&cx.ch.apply(draw(&g, &shape)?, 0)?.execute()?);
        let second = values(&cx.ch.apply(draw(&g, &shape)?, 0)?.execute()?);
        let other = values(
            &cx.ch
                .apply(draw(&cx.s.random(seed ^ 1), &shape)?, 0)?
                .execute()?,
        );
        let same =
            |a: &ArrayD<f64>, b: &ArrayD<f64>| a.iter().zip(b).filter(|(x, y)| x == y).count();
        // randint over 14 values repeats by chance about 1 time in 14.
        let limit = if name.starts_with("randint") { 20 } else { 0 };
        assert!(
            same(&first, &second) <= limit,
            "{name}: consecutive draws agree in {} places [{}]",
            same(&first, &second),
            cx.tag()
        );
        assert!(
            same(&first, &other) <= limit,
            "{name}: seeds {seed} and {} agree in {} places [{}]",
            seed ^ 1,
            same(&first, &other),
            cx.tag()
        );
        let distinct = {
            let mut v: Vec<u64> = first.iter().map(|x| x.to_bits()).collect();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        assert!(
            distinct > if limit > 0 { 10 } else { 85 },
            "{name}: only {distinct} distinct values [{}]",
            cx.tag()
        );
    }
    Ok(())
}

/// numpy's float-only draws refuse integer and bool dtypes (no silent zeros or all-true), a
/// negative normal scale and a non-finite uniform range; randint refuses bounds outside its
/// dtype (numpy: "high is out of bounds for int32") and accepts a high one past the maximum.
pub fn random_rejects_bad_arguments(cx: &mut Cx) -> Result<()> {
    use crate::conformance::exec_err;
    let seed = cx.rng().gen();
    let g = cx.s.random(seed);
    for dt in [DType::I32, DType::I64, DType::Bool] {
        for (name, t) in [
            ("rand", g.rand(&[4], dt)),
            ("randn", g.randn(&[4], dt)),
            ("uniform", g.uniform(0.0, 2.0, &[4], dt)),
            ("normal", g.normal(0.0, 1.0, &[4], dt)),
        ] {
            let e = exec_err(Ok(t));
            assert!(
                matches!(&e, Error::UnsupportedDType { op, dtypes } if op == name && dtypes == &[dt]),
                "{name} {dt}: {e:?}"
            );
        }
    }
    for (what, t) in [
        ("normal(0, -1)", g.normal(0.0, -1.0, &[4], DType::F64)),
        (
            "uniform(0, inf)",
            g.uniform(0.0, f64::INFINITY, &[4], DType::F64),
        ),
        (
            "uniform(nan, 1)",
            g.uniform(f64::NAN, 1.0, &[4], DType::F32),
        ),
        (
            "uniform(-1e308, 1e308)",
            g.uniform(-1e308, 1e308, &[4], DType::F64),
        ),
    ] {
        let e = exec_err(Ok(t));
        assert!(matches!(e, Error::InvalidArgument { .. }), "{what}: {e:?}");
    }
    let big = 1i64 << 40;
    for (lo, hi, dt) in [
        (0, big, DType::I32),
        (-big, 5, DType::I32),
        (0, i32::MAX as i64 + 2, DType::I32),
        (i32::MIN as i64 - 1, 0, DType::I32),
    ] {
        let e = crate::assert_err!(g.randint(lo, hi, &[4], dt), Error::InvalidArgument { .. });
        assert!(e.to_string().contains("out of bounds"), "{e}");
    }
    // The widest int32 range numpy allows: [-2^31, 2^31).
    let lo = i32::MIN as i64;
    let hi = i32::MAX as i64 + 1;
    let v = g.randint(lo, hi, &[4000], DType::I32)?.to_array::<i32>()?;
    assert!(v.iter().any(|&x| x < -(1 << 30)) && v.iter().any(|&x| x > 1 << 30));
    // A NaN scale is numpy's NaN values, not an error.
    let nan = g
        .normal(0.0, f64::NAN, &[3], DType::F64)
        .to_array::<f64>()?;
    assert!(nan.iter().all(|v| v.is_nan()));
    Ok(())
}
