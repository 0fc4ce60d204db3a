//! The headline workloads from Mars's talks, written against the Tensor API; shared by the CLI,
//! the tests and the benchmarks.

use crate::{Axes, DType, Result, Session, Tensor};

/// Monte Carlo pi: `4 * ((x**2 + y**2) < 1).sum() / n`, `x`, `y` uniform f32 from `seed`.
///
/// # Errors
/// Graph or backend errors.
pub fn pi(s: &Session, n: usize, chunk: usize, seed: u64) -> Result<f64> {
    let rng = s.random(seed);
    let x = rng.rand(&[n], DType::F32).with_chunks(&[chunk])?;
    let y = rng.rand(&[n], DType::F32).with_chunks(&[chunk])?;
    let inside = (&x * &x + &y * &y).lt(1.0)?.sum(Axes::All, false)?;
    (4.0 * inside / n as f64).item()
}

/// The seed expression `(a.dot(a.T) - a).std()` for an `n`×`n` f32 `a` uniform in [0, 1).
///
/// # Errors
/// Graph or backend errors.
pub fn std_expr(a: &Tensor) -> Result<f64> {
    (a.dot(&a.T()?)? - a).std(Axes::All, false, 0)?.item()
}

/// `((x + 1) * 2).sum()` over `n` f32 uniform values.
///
/// # Errors
/// Graph or backend errors.
pub fn add_mul_sum(s: &Session, n: usize, chunk: usize, seed: u64) -> Result<f64> {
    let x = s
        .random(seed)
        .rand(&[n], DType::F32)
        .with_chunks(&[chunk])?;
    ((x + 1.0) * 2.0).sum(Axes::All, false)?.item()
}

/// `((x + 1) * 2).sum()` over a tensor (a file, say); with `output`, `(x + 1) * 2` is first
/// written there chunk by chunk (`.npy`) and the sum is taken over the written file.
///
/// # Errors
/// Graph, backend and file errors.
pub fn add_mul_sum_over(x: &Tensor, output: Option<&std::path::Path>) -> Result<f64> {
    let y = (x + 1.0) * 2.0;
    match output {
        Some(p) => {
            y.to_npy(p)?;
            let chunks = x.chunk_hint();
            crate::io::load_npy(x.session(), p, chunks.as_deref())?
                .sum(Axes::All, false)?
                .item()
        }
        None => y.sum(Axes::All, false)?.item(),
    }
}

/// The seed expression over a tensor (a file, say); with `output`, `a.dot(a.T)` is first
/// written there chunk by chunk (`.npy`) and the expression reads the written file.
///
/// # Errors
/// Graph, backend and file errors.
pub fn std_expr_over(a: &Tensor, output: Option<&std::path::Path>) -> Result<f64> {
    match output {
        Some(p) => {
            let g = a.dot(&a.T()?)?;
            g.to_npy(p)?;
            let chunks = a.chunk_hint();
            let g = crate::io::load_npy(a.session(), p, chunks.as_deref())?;
            (g - a).std(Axes::All, false, 0)?.item()
        }
        None => std_expr(a),
    }
}
