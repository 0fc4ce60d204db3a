//! Source kernels: constants, fills, ranges, eye and counter-based random numbers.

use crate::block::{self, Column, Slice, View};
use crate::col;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use tessera_runtime::op::Dist;
use tessera_runtime::{philox, DType, Elem, HostArray, Result, Scalar};

const BLOCK: usize = 1 << 14;

/// Fills a chunk of `shape` at global `offset` in a tensor of shape `full`; `f` gets the
/// element's global row-major flat index. Parallel over blocks.
pub fn fill_indexed<T: Elem>(
    shape: &[usize],
    offset: &[usize],
    full: &[usize],
    f: impl Fn(u64) -> T + Sync,
) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    let nd = shape.len();
    let mut strides = vec![1u64; nd];
    for d in (0..nd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * full[d + 1] as u64;
    }
    let mut data = crate::memory::zeroed_vec::<T>(n);
    data.par_chunks_mut(BLOCK).enumerate().for_each(|(b, out)| {
        // Unravel the block's first local index, then walk.
        let mut idx = vec![0usize; nd];
        let mut r = b * BLOCK;
        for d in (0..nd).rev() {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        for o in out.iter_mut() {
            let g: u64 = (0..nd)
                .map(|d| (offset[d] + idx[d]) as u64 * strides[d])
                .sum();
            *o = f(g);
            for d in (0..nd).rev() {
                idx[d] += 1;
                if idx[d] < shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    });
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("length matches shape")
}

/// An array of `value` cast to `dtype`.
pub fn full(shape: &[usize], value: Scalar, dtype: DType) -> HostArray {
    let sh = IxDyn(shape);
    match dtype {
        DType::Bool => HostArray::Bool(ArrayD::from_elem(sh, value.as_bool())),
        DType::I32 => HostArray::I32(ArrayD::from_elem(sh, value.as_i64() as i32)),
        DType::I64 => HostArray::I64(ArrayD::from_elem(sh, value.as_i64())),
        DType::F32 => HostArray::F32(ArrayD::from_elem(sh, value.as_f64() as f32)),
        DType::F64 => HostArray::F64(ArrayD::from_elem(sh, value.as_f64())),
    }
}

/// A 1-D chunk whose element `i` is `f(offset + i)` (f64), cast to `dtype`.
pub fn ramp(len: usize, offset: usize, dtype: DType, f: impl Fn(usize) -> f64 + Sync) -> HostArray {
    let v = fill_indexed::<f64>(&[len], &[offset], &[offset + len], |g| f(g as usize));
    HostArray::F64(v).cast(dtype)
}

/// numpy's arange values at `offset .. offset + len` in `dtype`: element 0 is `start` and
/// element 1 is `start + step` (computed in f64, then stored in `dtype`); element `i >= 2` is
/// `x0 + i * (x1 - x0)` computed in `dtype` from those stored values, as numpy's fill does, so
/// the last bits agree with numpy's. Integer dtypes truncate (the session checked the range);
/// bool has at most two elements.
pub fn arange(len: usize, offset: usize, start: f64, step: f64, dtype: DType) -> HostArray {
    let (sh, off, full) = ([len], [offset], [offset + len]);
    let next = start + step;
    match dtype {
        DType::F64 => {
            let d = next - start;
            HostArray::F64(fill_indexed(&sh, &off, &full, |i| match i {
                0 => start,
                1 => next,
                _ => start + i as f64 * d,
            }))
        }
        DType::F32 => {
            let (x0, x1) = (start as f32, next as f32);
            let d = x1 - x0;
            HostArray::F32(fill_indexed(&sh, &off, &full, |i| match i {
                0 => x0,
                1 => x1,
                _ => x0 + i as f32 * d,
            }))
        }
        DType::I32 | DType::I64 => {
            let (x0, x1) = (start as i64, next as i64);
            // The difference wraps in the element type, the product and sum in 64 bits.
            let d = if dtype == DType::I32 {
                (x1 as i32).wrapping_sub(x0 as i32) as i64
            } else {
                x1.wrapping_sub(x0)
            };
            let v = fill_indexed(&sh, &off, &full, |i| {
                x0.wrapping_add((i as i64).wrapping_mul(d))
            });
            HostArray::I64(v).cast(dtype)
        }
        DType::Bool => HostArray::Bool(fill_indexed(&sh, &off, &full, |i| {
            if i == 0 {
                start != 0.0
            } else {
                next != 0.0
            }
        })),
    }
}

/// The dtype a draw of `dist` in `dtype` computes in (recipes in `philox.rs`): f32 draws stay
/// in f32, other float dtypes draw f64 and cast, integers draw i64 and cast.
fn draw_dtype(dist: Dist, dtype: DType) -> DType {
    match (dist, dtype) {
        (Dist::RandInt { .. }, _) => DType::I64,
        (_, DType::F32) => DType::F32,
        _ => DType::F64,
    }
}

/// An element type draws compute in (see [`draw_dtype`]).
trait Draw: Elem {
    /// Values of `dist` into `out` from the words `ws`, `k = words_per_value(dist, Self)` per
    /// value.
    fn values(dist: Dist, ws: &[u32], out: &mut [Self]);
    /// Draws the values at `g0 ..` straight into `out` without a words buffer, where this
    /// type and `dist` have such a path; `false` when they do not.
    fn direct(_seed: u64, _stream: u64, _dist: Dist, _g0: u64, _out: &mut [Self]) -> bool {
        false
    }
}

fn w4(c: &[u32]) -> [u32; 4] {
    let mut v = [0u32; 4];
    v[..c.len()].copy_from_slice(c);
    v
}

impl Draw for f32 {
    fn values(dist: Dist, ws: &[u32], out: &mut [f32]) {
        match dist {
            Dist::Uniform { low, high } => {
                let (lo, span) = (low.0 as f32, (high.0 - low.0) as f32);
                for (o, &x) in out.iter_mut().zip(ws) {
                    *o = lo + span * philox::u01_f32(x);
                }
            }
            Dist::Normal { mean, std } => {
                let (m, sd) = (mean.0 as f32, std.0 as f32);
                for (o, c) in out.iter_mut().zip(ws.chunks_exact(2)) {
                    *o = m + sd * philox::normal_f32(w4(c));
                }
            }
            Dist::RandInt { .. } => unreachable!("integer draws compute in i64"),
        }
    }
    fn direct(seed: u64, stream: u64, dist: Dist, g0: u64, out: &mut [f32]) -> bool {
        match dist {
            Dist::Uniform { low, high } => {
                let (lo, span) = (low.0 as f32, (high.0 - low.0) as f32);
                philox::uniform_f32_into(seed, stream, g0, lo, span, out);
                true
            }
            _ => false,
        }
    }
}

impl Draw for f64 {
    fn values(dist: Dist, ws: &[u32], out: &mut [f64]) {
        match dist {
            Dist::Uniform { low, high } => {
                let (lo, span) = (low.0, high.0 - low.0);
                for (o, c) in out.iter_mut().zip(ws.chunks_exact(2)) {
                    *o = lo + span * philox::u01_f64(c[0], c[1]);
                }
            }
            Dist::Normal { mean, std } => {
                let (m, sd) = (mean.0, std.0);
                for (o, c) in out.iter_mut().zip(ws.chunks_exact(4)) {
                    *o = m + sd * philox::normal_f64(w4(c));
                }
            }
            Dist::RandInt { .. } => unreachable!("integer draws compute in i64"),
        }
    }
}

impl Draw for i64 {
    fn values(dist: Dist, ws: &[u32], out: &mut [i64]) {
        match dist {
            Dist::RandInt { low, high } => {
                for (o, c) in out.iter_mut().zip(ws.chunks_exact(2)) {
                    *o = philox::randint(w4(c), low, high);
                }
            }
            _ => unreachable!("float draws compute in f32 or f64"),
        }
    }
}

thread_local! {
    /// Per-thread scratch for the Philox words of one block (they stay in cache).
    static WORDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Values at the global indices `g0 .. g0 + out.len()`, computed in `T` (see [`draw_dtype`]).
fn range_into<T: Draw>(seed: u64, stream: u64, dist: Dist, g0: u64, out: &mut [T]) {
    if T::direct(seed, stream, dist, g0, out) {
        return;
    }
    let k = philox::words_per_value(dist, T::DTYPE);
    WORDS.with_borrow_mut(|ws| {
        ws.resize(out.len() * k, 0);
        philox::words_into(seed, stream, g0, k, ws);
        T::values(dist, ws, out);
    });
}

/// The values at global indices `g0 .. g0 + len` of a draw in `dtype`, into the first `len`
/// values of a block register of that dtype (fused kernels). Draws whose compute dtype is the
/// register's write straight into it; the others (f64 draws cast to f32 are not among them,
/// integers cast from i64 are) go through a column of the draw dtype.
pub(crate) fn random_block(
    seed: u64,
    stream: u64,
    dist: Dist,
    g0: u64,
    len: usize,
    reg: &mut Column,
) -> Result<()> {
    match (draw_dtype(dist, reg.dtype()), &mut *reg) {
        (DType::F32, Column::F32(v)) => range_into(seed, stream, dist, g0, &mut v[..len]),
        (DType::F64, Column::F64(v)) => range_into(seed, stream, dist, g0, &mut v[..len]),
        (DType::I64, Column::I64(v)) => range_into(seed, stream, dist, g0, &mut v[..len]),
        _ => {
            let h = random_range(seed, stream, dist, reg.dtype(), g0, len);
            return block::copy(View::Col(Slice::of_host(&h, 0, len)), reg.dest(len));
        }
    }
    Ok(())
}

/// `v` (in the draw dtype) as `dtype`; a no-op when they agree.
fn cast_to(v: HostArray, dtype: DType) -> HostArray {
    if v.dtype() == dtype {
        v
    } else {
        v.cast(dtype)
    }
}

/// Random values for a chunk of `shape` at `offset` in a tensor of shape `full`: each value
/// depends only on (seed, stream, global flat index).
pub fn random(
    seed: u64,
    stream: u64,
    dist: Dist,
    shape: &[usize],
    offset: &[usize],
    full: &[usize],
    dtype: DType,
) -> HostArray {
    fn go<T: Draw>(
        seed: u64,
        stream: u64,
        dist: Dist,
        shape: &[usize],
        offset: &[usize],
        full: &[usize],
    ) -> HostArray {
        let n: usize = shape.iter().product();
        let nd = shape.len();
        let fstrides = tessera_runtime::ir::row_major_strides(full);
        let row = if nd == 0 { 1 } else { shape[nd - 1].max(1) };
        let mut data = crate::memory::zeroed_vec::<T>(n);
        data.par_chunks_mut(BLOCK).enumerate().for_each(|(b, out)| {
            let s = b * BLOCK;
            let mut p = 0;
            while p < out.len() {
                // One contiguous run: the rest of this row, within the block.
                let len = (row - (s + p) % row).min(out.len() - p);
                let mut r = s + p;
                let mut g = 0u64;
                for d in (0..nd).rev() {
                    let c = r % shape[d];
                    r /= shape[d];
                    g += ((offset[d] + c) * fstrides[d]) as u64;
                }
                range_into(seed, stream, dist, g, &mut out[p..p + len]);
                p += len;
            }
        });
        T::wrap(ArrayD::from_shape_vec(IxDyn(shape), data).expect("length matches shape"))
    }
    let v = match draw_dtype(dist, dtype) {
        DType::F32 => go::<f32>(seed, stream, dist, shape, offset, full),
        DType::I64 => go::<i64>(seed, stream, dist, shape, offset, full),
        _ => go::<f64>(seed, stream, dist, shape, offset, full),
    };
    cast_to(v, dtype)
}

/// Random values at the global indices `g0 .. g0 + n` (1-D).
pub fn random_range(
    seed: u64,
    stream: u64,
    dist: Dist,
    dtype: DType,
    g0: u64,
    n: usize,
) -> HostArray {
    fn go<T: Draw>(seed: u64, stream: u64, dist: Dist, g0: u64, n: usize) -> HostArray {
        let mut v = vec![T::default(); n];
        range_into(seed, stream, dist, g0, &mut v);
        T::wrap(col(v))
    }
    let v = match draw_dtype(dist, dtype) {
        DType::F32 => go::<f32>(seed, stream, dist, g0, n),
        DType::I64 => go::<i64>(seed, stream, dist, g0, n),
        _ => go::<f64>(seed, stream, dist, g0, n),
    };
    cast_to(v, dtype)
}

/// Random values at the global indices `g` (1-D), the same recipe as [`random`]; consecutive
/// indices share Philox calls.
pub fn random_at(seed: u64, stream: u64, dist: Dist, dtype: DType, g: &[u64]) -> HostArray {
    if !g.is_empty() && g.windows(2).all(|w| w[1] == w[0] + 1) {
        return random_range(seed, stream, dist, dtype, g[0], g.len());
    }
    fn go<T: Draw>(seed: u64, stream: u64, dist: Dist, g: &[u64]) -> HostArray {
        let k = philox::words_per_value(dist, T::DTYPE);
        let ws: Vec<u32> = g
            .iter()
            .flat_map(|&i| philox::words_at(seed, stream, i, k)[..k].to_vec())
            .collect();
        let mut v = vec![T::default(); g.len()];
        T::values(dist, &ws, &mut v);
        T::wrap(col(v))
    }
    let v = match draw_dtype(dist, dtype) {
        DType::F32 => go::<f32>(seed, stream, dist, g),
        DType::I64 => go::<i64>(seed, stream, dist, g),
        _ => go::<f64>(seed, stream, dist, g),
    };
    cast_to(v, dtype)
}

/// Ones where `col - row == k`.
pub fn eye(shape: &[usize], k: i64, row0: usize, col0: usize, dtype: DType) -> HostArray {
    let cols = shape[1];
    let a = fill_indexed::<bool>(shape, &[0, 0], shape, |g| {
        let (r, c) = (
            (g as usize / cols.max(1)) + row0,
            (g as usize % cols.max(1)) + col0,
        );
        c as i64 - r as i64 == k
    });
    HostArray::Bool(a).cast(dtype)
}
