//! Host arrays to and from GPU buffer bytes: row-major, little-endian; bool widened to u32
//! words (the kernel ABI), int64 and float64 as 8 bytes (two u32 words).

use ndarray::{ArrayD, IxDyn};
use tessera_runtime::{DType, Elem, Error, HostArray, Result};

/// Bytes of one element in a GPU buffer.
pub(crate) fn gpu_size(d: DType) -> u64 {
    match d {
        DType::I64 | DType::F64 => 8,
        _ => 4,
    }
}

/// u32 words per element.
pub(crate) fn words(d: DType) -> u32 {
    (gpu_size(d) / 4) as u32
}

/// Elements `[lo, hi)` of `a` in row-major order, as buffer bytes.
pub(crate) fn bytes_range(a: &HostArray, lo: usize, hi: usize) -> Vec<u8> {
    fn pod<T: Elem + bytemuck::Pod>(x: &ArrayD<T>, lo: usize, hi: usize) -> Vec<u8> {
        match x.as_slice() {
            Some(s) => bytemuck::cast_slice(&s[lo..hi]).to_vec(),
            None => {
                let v: Vec<T> = x.iter().skip(lo).take(hi - lo).copied().collect();
                bytemuck::cast_slice(&v).to_vec()
            }
        }
    }
    match a {
        HostArray::Bool(x) => {
            let v: Vec<u32> = match x.as_slice() {
                Some(s) => s[lo..hi].iter().map(|&b| b as u32).collect(),
                None => x.iter().skip(lo).take(hi - lo).map(|&b| b as u32).collect(),
            };
            bytemuck::cast_slice(&v).to_vec()
        }
        HostArray::I32(x) => pod(x, lo, hi),
        HostArray::I64(x) => pod(x, lo, hi),
        HostArray::F32(x) => pod(x, lo, hi),
        HostArray::F64(x) => pod(x, lo, hi),
    }
}

/// All of `a` as buffer bytes.
pub(crate) fn bytes(a: &HostArray) -> Vec<u8> {
    bytes_range(a, 0, a.len())
}

/// A host array of `dtype` and `shape` from buffer bytes.
pub(crate) fn from_bytes(dtype: DType, shape: &[usize], b: &[u8]) -> Result<HostArray> {
    let n: usize = shape.iter().product();
    let need = n * gpu_size(dtype) as usize;
    if b.len() < need {
        return Err(Error::Backend {
            backend: "wgpu".into(),
            msg: format!("read back {} bytes, {need} expected", b.len()),
        });
    }
    let b = &b[..need];
    fn mk<T>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches shape")
    }
    Ok(match dtype {
        DType::Bool => {
            let w: Vec<u32> = bytemuck::pod_collect_to_vec(b);
            HostArray::Bool(mk(shape, w.into_iter().map(|x| x != 0).collect()))
        }
        DType::I32 => HostArray::I32(mk(shape, bytemuck::pod_collect_to_vec(b))),
        DType::I64 => HostArray::I64(mk(shape, bytemuck::pod_collect_to_vec(b))),
        DType::F32 => HostArray::F32(mk(shape, bytemuck::pod_collect_to_vec(b))),
        DType::F64 => HostArray::F64(mk(shape, bytemuck::pod_collect_to_vec(b))),
    })
}
