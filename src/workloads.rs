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

/// Columns of the `svd` workload's tall-skinny matrix.
pub const SVD_COLS: usize = 32;

/// The `svd` seed workload over a tall-skinny `a`: `U, S, Vt = svd(a)` (reduced), multiplied
/// back; returns the relative reconstruction error `|U diag(S) Vt - a|_F / |a|_F` (f32
/// rounding puts it near 1e-7), both sums in one run.
///
/// # Errors
/// Graph or backend errors.
pub fn svd_error(a: &Tensor) -> Result<f64> {
    let (u, s, vt) = a.svd(false)?;
    let d = (u * s).matmul(&vt)? - a;
    let num = (&d * &d).astype(DType::F64)?.sum(Axes::All, false)?;
    let den = (a * a).astype(DType::F64)?.sum(Axes::All, false)?;
    (num / den).sqrt()?.item()
}

/// The `tsqr` workload over a tall-skinny `a`: its singular values alone (TSQR with R-only
/// QRs: one pass over the input, no Q formed); returns the largest.
///
/// # Errors
/// Graph or backend errors.
pub fn largest_singular_value(a: &Tensor) -> Result<f64> {
    a.svdvals()?
        .max(Axes::All, false)?
        .astype(DType::F64)?
        .item()
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
/// written there chunk by chunk (`.npy`, or Zarr for a `.zarr` path) and the sum is taken over the written file.
///
/// # Errors
/// Graph, backend and file errors.
pub fn add_mul_sum_over(x: &Tensor, output: Option<&std::path::Path>) -> Result<f64> {
    let y = (x + 1.0) * 2.0;
    match output {
        Some(p) => write_and_read(&y, p, x.chunk_hint())?
            .sum(Axes::All, false)?
            .item(),
        None => y.sum(Axes::All, false)?.item(),
    }
}

/// The seed expression over a tensor (a file, say); with `output`, `a.dot(a.T)` is first
/// written there chunk by chunk (`.npy`, or Zarr for a `.zarr` path) and the expression reads the written file.
///
/// # Errors
/// Graph, backend and file errors.
pub fn std_expr_over(a: &Tensor, output: Option<&std::path::Path>) -> Result<f64> {
    match output {
        Some(p) => {
            let g = write_and_read(&a.dot(&a.T()?)?, p, a.chunk_hint())?;
            (g - a).std(Axes::All, false, 0)?.item()
        }
        None => std_expr(a),
    }
}

/// True for a path that names a Zarr array: a folder, or a name ending in `.zarr`.
pub fn is_zarr(p: &std::path::Path) -> bool {
    p.is_dir() || p.extension().is_some_and(|e| e == "zarr")
}

/// Reads the array at `p` (`.npy`, or Zarr for [`is_zarr`] paths), cut into `chunks`.
///
/// # Errors
/// File errors.
pub fn read_array(s: &Session, p: &std::path::Path, chunks: Option<&[usize]>) -> Result<Tensor> {
    if is_zarr(p) {
        crate::io::from_zarr(s, p, chunks)
    } else {
        crate::io::load_npy(s, p, chunks)
    }
}

/// Writes `t` to `p` chunk by chunk (`.npy`, or Zarr v3 for [`is_zarr`] paths, replacing an
/// existing Zarr array) and returns the written array, cut into `chunks`.
fn write_and_read(t: &Tensor, p: &std::path::Path, chunks: Option<Vec<usize>>) -> Result<Tensor> {
    if is_zarr(p) {
        let o = crate::io::ZarrOptions {
            overwrite: true,
            ..Default::default()
        };
        t.to_zarr(p, &o)?;
    } else {
        t.to_npy(p)?;
    }
    read_array(t.session(), p, chunks.as_deref())
}
