//! Source kernels: constants, fills, ranges, eye and counter-based random numbers.

use crate::col;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use tessera_runtime::op::Dist;
use tessera_runtime::{philox, DType, Elem, HostArray, Scalar};

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

/// Values of `dist` in `dtype` for `n` elements whose Philox words are `ws[first + i*k ..]`
/// (recipes in `philox.rs`): f32 draws stay in f32, other float dtypes draw f64 and cast,
/// integers draw i64 and cast.
pub fn from_words(dist: Dist, dtype: DType, ws: &[u32], first: usize, n: usize) -> HostArray {
    let k = philox::words_per_value(dist, dtype);
    let w = &ws[first..first + n * k];
    let w4 = |c: &[u32]| {
        let mut v = [0u32; 4];
        v[..c.len()].copy_from_slice(c);
        v
    };
    match (dist, dtype) {
        (Dist::RandInt { low, high }, d) => HostArray::I64(col(w
            .chunks_exact(2)
            .map(|c| philox::randint(w4(c), low, high))
            .collect()))
        .cast(d),
        (Dist::Uniform { low, high }, DType::F32) => {
            let (lo, span) = (low.0 as f32, (high.0 - low.0) as f32);
            HostArray::F32(col(w
                .iter()
                .map(|&x| lo + span * philox::u01_f32(x))
                .collect()))
        }
        (Dist::Uniform { low, high }, d) => {
            let (lo, span) = (low.0, high.0 - low.0);
            HostArray::F64(col(w
                .chunks_exact(2)
                .map(|c| lo + span * philox::u01_f64(c[0], c[1]))
                .collect()))
            .cast(d)
        }
        (Dist::Normal { mean, std }, DType::F32) => {
            let (m, sd) = (mean.0 as f32, std.0 as f32);
            HostArray::F32(col(w
                .chunks_exact(2)
                .map(|c| m + sd * philox::normal_f32(w4(c)))
                .collect()))
        }
        (Dist::Normal { mean, std }, d) => {
            let (m, sd) = (mean.0, std.0);
            HostArray::F64(col(w
                .chunks_exact(4)
                .map(|c| m + sd * philox::normal_f64(w4(c)))
                .collect()))
            .cast(d)
        }
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
    let n: usize = shape.iter().product();
    let nd = shape.len();
    let k = philox::words_per_value(dist, dtype);
    let fstrides = tessera_runtime::ir::row_major_strides(full);
    let row = if nd == 0 { 1 } else { shape[nd - 1].max(1) };
    let cols: Vec<HostArray> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (s, e) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let mut ws: Vec<u32> = Vec::with_capacity((e - s) * k);
            let mut run = Vec::new();
            let mut p = s;
            while p < e {
                // One contiguous run: the rest of this row, within the block.
                let len = (row - p % row).min(e - p);
                let mut r = p;
                let mut g = 0u64;
                for d in (0..nd).rev() {
                    let c = r % shape[d];
                    r /= shape[d];
                    g += ((offset[d] + c) * fstrides[d]) as u64;
                }
                let first = philox::words_range(seed, stream, g, len, k, &mut run);
                ws.extend_from_slice(&run[first..first + len * k]);
                p += len;
            }
            from_words(dist, dtype, &ws, 0, e - s)
        })
        .collect();
    let views: Vec<_> = cols.iter().collect();
    concat_columns(&views, dtype).reshape(shape)
}

fn concat_columns(cols: &[&HostArray], dtype: DType) -> HostArray {
    if cols.is_empty() {
        return HostArray::zeros(dtype, &[0]);
    }
    fn go<T: Elem>(cols: &[&HostArray]) -> ArrayD<T> {
        let mut v = Vec::with_capacity(cols.iter().map(|c| c.len()).sum());
        for c in cols {
            v.extend(c.as_array::<T>().expect("same dtype").iter().copied());
        }
        col(v)
    }
    match dtype {
        DType::Bool => go::<bool>(cols).into(),
        DType::I32 => go::<i32>(cols).into(),
        DType::I64 => go::<i64>(cols).into(),
        DType::F32 => go::<f32>(cols).into(),
        DType::F64 => go::<f64>(cols).into(),
    }
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
    let mut ws = Vec::with_capacity(n);
    let first = philox::words_range(
        seed,
        stream,
        g0,
        n,
        philox::words_per_value(dist, dtype),
        &mut ws,
    );
    from_words(dist, dtype, &ws, first, n)
}

/// Random values at the global indices `g` (1-D), the same recipe as [`random`]; consecutive
/// indices share Philox calls.
pub fn random_at(seed: u64, stream: u64, dist: Dist, dtype: DType, g: &[u64]) -> HostArray {
    let k = philox::words_per_value(dist, dtype);
    if !g.is_empty() && g.windows(2).all(|w| w[1] == w[0] + 1) {
        return random_range(seed, stream, dist, dtype, g[0], g.len());
    }
    let ws: Vec<u32> = g
        .iter()
        .flat_map(|&i| philox::words_at(seed, stream, i, k)[..k].to_vec())
        .collect();
    from_words(dist, dtype, &ws, 0, g.len())
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
