//! Source kernels: constants, fills, ranges, eye and counter-based random numbers.

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use tessera_runtime::op::Dist;
use tessera_runtime::{philox, DType, Elem, HostArray, Scalar};

const BLOCK: usize = 1 << 14;

/// Fills a chunk of `shape` at global `offset` in a tensor of shape `full`; `f` gets the
/// element's global row-major flat index. Parallel over blocks.
pub fn fill_indexed<T: Elem>(shape: &[usize], offset: &[usize], full: &[usize], f: impl Fn(u64) -> T + Sync) -> ArrayD<T> {
    let n: usize = shape.iter().product();
    let nd = shape.len();
    let mut strides = vec![1u64; nd];
    for d in (0..nd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * full[d + 1] as u64;
    }
    let mut data = vec![T::default(); n];
    data.par_chunks_mut(BLOCK).enumerate().for_each(|(b, out)| {
        // Unravel the block's first local index, then walk.
        let mut idx = vec![0usize; nd];
        let mut r = b * BLOCK;
        for d in (0..nd).rev() {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        for o in out.iter_mut() {
            let g: u64 = (0..nd).map(|d| (offset[d] + idx[d]) as u64 * strides[d]).sum();
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

/// How a distribution turns Philox words into a value of a dtype: f32 draws stay in f32, every
/// other float dtype draws in f64 and casts, integers draw in i64 and cast.
#[derive(Clone, Copy)]
enum Recipe {
    F32(fn(Dist, [u32; 4]) -> f32),
    F64(fn(Dist, [u32; 4]) -> f64),
    I64(fn(Dist, [u32; 4]) -> i64),
}

fn recipe(dist: Dist, dtype: DType) -> Recipe {
    match (dist, dtype) {
        (Dist::RandInt { .. }, _) => Recipe::I64(|d, w| match d {
            Dist::RandInt { low, high } => philox::randint(w, low, high),
            _ => unreachable!(),
        }),
        (_, DType::F32) => Recipe::F32(|d, w| match d {
            Dist::Uniform { low, high } => low.0 as f32 + (high.0 - low.0) as f32 * philox::u01_f32(w[0]),
            Dist::Normal { mean, std } => mean.0 as f32 + std.0 as f32 * philox::normal_f32(w),
            Dist::RandInt { .. } => unreachable!(),
        }),
        _ => Recipe::F64(|d, w| match d {
            Dist::Uniform { low, high } => low.0 + (high.0 - low.0) * philox::u01_f64(w[0], w[1]),
            Dist::Normal { mean, std } => mean.0 + std.0 * philox::normal_f64(w),
            Dist::RandInt { .. } => unreachable!(),
        }),
    }
}

/// Random values for a chunk: element value depends only on (seed, stream, global index).
pub fn random(seed: u64, stream: u64, dist: Dist, shape: &[usize], offset: &[usize], full: &[usize], dtype: DType) -> HostArray {
    let w = move |g: u64| philox::draw(seed, stream, g);
    match recipe(dist, dtype) {
        Recipe::F32(f) => HostArray::F32(fill_indexed(shape, offset, full, |g| f(dist, w(g)))),
        Recipe::F64(f) => HostArray::F64(fill_indexed(shape, offset, full, |g| f(dist, w(g)))).cast(dtype),
        Recipe::I64(f) => HostArray::I64(fill_indexed(shape, offset, full, |g| f(dist, w(g)))).cast(dtype),
    }
}

/// Random values at the given global indices (1-D), the same recipe as [`random`].
pub fn random_at(seed: u64, stream: u64, dist: Dist, dtype: DType, g: &[u64]) -> HostArray {
    let w = move |g: u64| philox::draw(seed, stream, g);
    fn col<T>(v: Vec<T>) -> ArrayD<T> {
        let n = v.len();
        ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-D")
    }
    match recipe(dist, dtype) {
        Recipe::F32(f) => HostArray::F32(col(g.iter().map(|&i| f(dist, w(i))).collect())),
        Recipe::F64(f) => HostArray::F64(col(g.iter().map(|&i| f(dist, w(i))).collect())).cast(dtype),
        Recipe::I64(f) => HostArray::I64(col(g.iter().map(|&i| f(dist, w(i))).collect())).cast(dtype),
    }
}

/// Ones where `col - row == k`.
pub fn eye(shape: &[usize], k: i64, row0: usize, col0: usize, dtype: DType) -> HostArray {
    let cols = shape[1];
    let a = fill_indexed::<bool>(shape, &[0, 0], shape, |g| {
        let (r, c) = ((g as usize / cols.max(1)) + row0, (g as usize % cols.max(1)) + col0);
        c as i64 - r as i64 == k
    });
    HostArray::Bool(a).cast(dtype)
}
