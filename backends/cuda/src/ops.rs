//! Chunk ops on one lane: generated kernels (`KernelIr` -> CUDA C -> NVRTC), the library
//! kernels of `shaders/library.cu` (strided copy, tiled transpose, reshape gather) and cuBLAS.
//!
//! Launch shapes: elementwise kernels and copies use grid-stride loops over at most
//! 32 blocks of 256 threads per multiprocessor; reductions one block per output row. A
//! reduction with fewer rows than twice the multiprocessor count (a whole-chunk `sum`, say)
//! is split ([`lower::split_reduction`]): the reduced extent is cut into slices, one row each,
//! so every multiprocessor works, and the slices' partials (a few values) are combined on the
//! host exactly as partials of separate chunks are (`ReduceCombine`).

use crate::compile::PtxCache;
use crate::device::{backend_err, drv, elem_bytes, DevArray, Lane};
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use tessera_cpu::CpuBackend;
use tessera_kernels::lower::{self, Piece};
use tessera_kernels::{elements_per_thread, kernel_name, output_dtypes, pack_params, CudaRenderer};
use tessera_runtime::chunk::{grid_indices, BoundData, ChunkNode, ChunkOp};
use tessera_runtime::ir::{KernelIr, KernelParams, ReduceKind, Renderer};
use tessera_runtime::{Backend, DType, Error, HostArray, Result};

/// The library kernels' CUDA C.
pub(crate) const LIBRARY: &str = include_str!("../../../shaders/library.cu");
/// An entry of the library module (names its PTX file).
pub(crate) const LIBRARY_FIRST: &str = "tessera_copy_1_32";

const BLOCK: u32 = 256;
const MAXD: usize = 8;

/// What a chunk op runs with: its lane and the PTX cache.
pub(crate) struct Cx<'a> {
    pub lane: &'a Lane,
    pub ptx: &'a PtxCache,
}

/// `Unsupported` on the CUDA backend.
pub(crate) fn unsupported(op: impl Into<String>) -> Error {
    Error::Unsupported {
        op: op.into(),
        backend: "cuda".into(),
    }
}

/// Blocks of a grid-stride launch over `n` elements.
fn stride_grid(cx: &Cx, n: usize) -> u32 {
    let cap = cx.lane.gpu.sms * 32;
    n.div_ceil(BLOCK as usize).clamp(1, cap) as u32
}

fn empty(cx: &Cx, dtype: DType, shape: &[usize]) -> Result<DevArray> {
    let n: usize = shape.iter().product();
    Ok(DevArray {
        buf: cx
            .lane
            .alloc(&cx.lane.compute, n.max(1) * elem_bytes(dtype))?,
        dtype,
        shape: shape.to_vec(),
    })
}

// ---------------------------------------------------------------------------------------------
// Generated kernels

/// Runs a generated kernel on device inputs (one per IR input, in order); returns its output
/// fields (shape `ir.out_shape()`).
pub(crate) fn run_ir(
    cx: &Cx,
    ir: &KernelIr,
    params: &KernelParams,
    inputs: &[&DevArray],
) -> Result<Vec<DevArray>> {
    let out_shape = ir.out_shape();
    let rows: usize = out_shape.iter().product();
    if let (Some(r), true) = (&ir.reduce, rows > 0) {
        let per_row = ir.len() / rows;
        let sms = cx.lane.gpu.sms;
        if let (ReduceKind::Reduce(op), true) = (r.kind, rows < 2 * sms && per_row >= 1 << 16) {
            let e = ir.shape[r.axes[0]];
            let target = (4 * sms / rows).clamp(2, e);
            if let Some(s) = (2..=target).rev().find(|&s| e.is_multiple_of(s)) {
                let split = lower::split_reduction(ir, s).expect("divisor of a reduced axis");
                return run_split(cx, &split, params, inputs, op, s, r.axes[0], per_row / s);
            }
        }
    }
    launch_ir(cx, ir, params, inputs)
}

/// A split reduction: the slices' partials are combined on the host (a few values per row).
#[allow(clippy::too_many_arguments)]
fn run_split(
    cx: &Cx,
    split: &KernelIr,
    params: &KernelParams,
    inputs: &[&DevArray],
    op: tessera_runtime::op::ReduceOp,
    slices: usize,
    axis: usize,
    per_slice: usize,
) -> Result<Vec<DevArray>> {
    let parts = launch_ir(cx, split, params, inputs)?;
    let host: Vec<HostArray> = parts
        .iter()
        .map(|p| cx.lane.download(p))
        .collect::<Result<_>>()?;
    let shape = host[0].shape().to_vec();
    let mut out_shape = shape.clone();
    out_shape.remove(axis);
    let slice_parts: Vec<Vec<HostArray>> = (0..slices)
        .map(|s| {
            let region: Vec<(usize, usize)> = shape
                .iter()
                .enumerate()
                .map(|(d, &n)| if d == axis { (s, s + 1) } else { (0, n) })
                .collect();
            host.iter()
                .map(|f| f.slice_region(&region, None).reshape(&out_shape))
                .collect()
        })
        .collect();
    let node = ChunkNode {
        op: ChunkOp::ReduceCombine {
            op,
            counts: vec![per_slice as f64; slices],
        },
        inputs: Default::default(),
        shape: out_shape.into(),
        dtype: host[0].dtype(),
    };
    let refs: Vec<&Vec<HostArray>> = slice_parts.iter().collect();
    let combined = CpuBackend::new().run_chunk(&node, &refs)?;
    combined.iter().map(|f| cx.lane.upload(f)).collect()
}

/// One launch of a generated kernel.
fn launch_ir(
    cx: &Cx,
    ir: &KernelIr,
    params: &KernelParams,
    inputs: &[&DevArray],
) -> Result<Vec<DevArray>> {
    let out_shape = ir.out_shape();
    let out_n: usize = out_shape.iter().product();
    let mut outs: Vec<DevArray> = output_dtypes(ir)
        .iter()
        .map(|&d| empty(cx, d, &out_shape))
        .collect::<Result<_>>()?;
    if out_n == 0 {
        return Ok(outs);
    }
    for (i, (x, want)) in inputs.iter().zip(&ir.inputs).enumerate() {
        let off = params.load_offsets.get(i).copied().unwrap_or(0);
        let (_, hi) = lower::read_window(ir, i, off);
        if x.dtype != want.dtype || x.len() < hi {
            return Err(backend_err(format!(
                "kernel input {i}: {} {:?} where {} with {hi} elements is read",
                x.dtype, x.shape, want.dtype
            )));
        }
    }
    let name = kernel_name(ir);
    let f = cx
        .lane
        .gpu
        .function(cx.ptx, &name, &name, || CudaRenderer.render(ir))?;
    let words = pack_params(ir, params);
    let grid = match &ir.reduce {
        None => (
            stride_grid(cx, ir.len().div_ceil(elements_per_thread(ir))),
            1,
            1,
        ),
        Some(_) => {
            let x = out_n.min(i32::MAX as usize);
            (x as u32, out_n.div_ceil(x) as u32, 1)
        }
    };
    let cfg = LaunchConfig {
        grid_dim: grid,
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    let stream = &cx.lane.compute;
    let mut b = stream.launch_builder(&f);
    for x in inputs {
        b.arg(&x.buf);
    }
    for o in outs.iter_mut() {
        b.arg(&mut o.buf);
    }
    for w in &words {
        b.arg(w);
    }
    // SAFETY: the arguments follow the kernel ABI (tessera-kernels cuda.rs): one buffer per IR
    // input holding at least the elements the kernel reads (checked above), the output
    // buffers of `out_shape` for each output dtype, then the u64 params words.
    unsafe { b.launch(cfg) }.map_err(drv("launching a generated kernel"))?;
    Ok(outs)
}

// ---------------------------------------------------------------------------------------------
// Movement: the library kernels

/// Arguments of `tessera_copy_*` (layout of `CopyArgs` in library.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CopyArgs {
    n: i64,
    src_base: i64,
    dst_base: i64,
    shape: [i64; MAXD],
    src_stride: [i64; MAXD],
    dst_stride: [i64; MAXD],
    nd: i32,
    pad: i32,
}

// SAFETY: plain #[repr(C)] integers, laid out as the C struct (8-byte fields, then an int and
// its padding), passed by value as a kernel argument.
unsafe impl DeviceRepr for CopyArgs {}

/// Arguments of `tessera_reshape_gather_*` (layout of `GatherArgs` in library.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct GatherArgs {
    n: i64,
    in_shape: [i64; MAXD],
    in_full: [i64; MAXD],
    in_off: [i64; MAXD],
    out_full: [i64; MAXD],
    out_off: [i64; MAXD],
    out_shape: [i64; MAXD],
    nd_in: i32,
    nd_out: i32,
}

// SAFETY: as for CopyArgs.
unsafe impl DeviceRepr for GatherArgs {}

fn dims(v: &[i64]) -> Result<[i64; MAXD]> {
    if v.len() > MAXD {
        return Err(unsupported(format!(
            "data movement over {} dimensions (the copy kernels take {MAXD})",
            v.len()
        )));
    }
    let mut a = [0i64; MAXD];
    a[..v.len()].copy_from_slice(v);
    Ok(a)
}

fn library(cx: &Cx, name: &str) -> Result<cudarc::driver::CudaFunction> {
    cx.lane
        .gpu
        .function(cx.ptx, LIBRARY_FIRST, name, || Ok(LIBRARY.to_string()))
}

/// Builds an output of `shape` and `dtype` from strided pieces of `inputs` (elements no piece
/// writes are zero).
pub(crate) fn copy_pieces(
    cx: &Cx,
    inputs: &[&DevArray],
    pieces: &[Piece],
    shape: &[usize],
    dtype: DType,
) -> Result<DevArray> {
    let mut out = empty(cx, dtype, shape)?;
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(out);
    }
    let stream = &cx.lane.compute;
    let covered: usize = pieces
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    if covered < n {
        stream
            .memset_zeros(&mut out.buf)
            .map_err(drv("clearing an output"))?;
    }
    let w = elem_bytes(dtype);
    for p in pieces {
        let count: usize = p.shape.iter().product();
        if count == 0 {
            continue;
        }
        let reach = |base: i64, st: &mut dyn Iterator<Item = i64>| -> i64 {
            base.abs()
                + p.shape
                    .iter()
                    .zip(st)
                    .map(|(&e, s)| (e as i64 - 1) * s.abs())
                    .sum::<i64>()
        };
        let src_reach = reach(p.src_base, &mut p.src_strides.iter().copied());
        let dst_reach = reach(
            p.dst_base as i64,
            &mut p.dst_strides.iter().map(|&s| s as i64),
        );
        let narrow = src_reach.max(dst_reach).max(count as i64) < i32::MAX as i64;
        let args = CopyArgs {
            n: count as i64,
            src_base: p.src_base,
            dst_base: p.dst_base as i64,
            shape: dims(&p.shape.iter().map(|&e| e as i64).collect::<Vec<_>>())?,
            src_stride: dims(&p.src_strides)?,
            dst_stride: dims(&p.dst_strides.iter().map(|&s| s as i64).collect::<Vec<_>>())?,
            nd: p.shape.len() as i32,
            pad: 0,
        };
        let f = library(
            cx,
            &format!("tessera_copy_{w}_{}", if narrow { 32 } else { 64 }),
        )?;
        let cfg = LaunchConfig {
            grid_dim: (stride_grid(cx, count), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = stream.launch_builder(&f);
        b.arg(&inputs[p.src].buf);
        b.arg(&mut out.buf);
        b.arg(&args);
        // SAFETY: source offsets stay inside the input (the piece was built from its shape)
        // and destination offsets inside the output of `shape`; the struct matches CopyArgs.
        unsafe { b.launch(cfg) }.map_err(drv("launching a strided copy"))?;
    }
    Ok(out)
}

/// Axis permutation: the shared-memory tiled kernel for a matrix transpose, the strided copy
/// otherwise.
pub(crate) fn transpose(cx: &Cx, x: &DevArray, perm: &[usize]) -> Result<DevArray> {
    if let (&[r, c], [1, 0]) = (x.shape.as_slice(), perm) {
        if r > 0 && c > 0 && r.div_ceil(32) <= 65_535 {
            let w = elem_bytes(x.dtype);
            let mut out = empty(cx, x.dtype, &[c, r])?;
            let f = library(cx, &format!("tessera_transpose2d_{w}"))?;
            let cfg = LaunchConfig {
                grid_dim: (c.div_ceil(32) as u32, r.div_ceil(32) as u32, 1),
                block_dim: (32, 8, 1),
                shared_mem_bytes: 0,
            };
            let (rows, cols) = (r as i64, c as i64);
            let mut b = cx.lane.compute.launch_builder(&f);
            b.arg(&x.buf);
            b.arg(&mut out.buf);
            b.arg(&rows);
            b.arg(&cols);
            // SAFETY: src holds rows x cols elements and out cols x rows of the same width;
            // the kernel bounds-checks every tile edge.
            unsafe { b.launch(cfg) }.map_err(drv("launching a transpose"))?;
            return Ok(out);
        }
    }
    let piece = lower::transpose_piece(&x.shape, perm);
    let shape = piece.shape.clone();
    copy_pieces(cx, &[x], &[piece], &shape, x.dtype)
}

/// General row-major reshape of a box gathered from input chunks (`node` is a
/// `ChunkOp::ReshapeGather`).
pub(crate) fn reshape_gather(cx: &Cx, inputs: &[&DevArray], node: &ChunkNode) -> Result<DevArray> {
    let ChunkOp::ReshapeGather {
        in_full,
        in_offsets,
        out_full,
        out_offset,
    } = &node.op
    else {
        return Err(backend_err("reshape_gather called on another op"));
    };
    let (shape, dtype) = (&node.shape, node.dtype);
    let mut out = empty(cx, dtype, shape)?;
    if shape.contains(&0) {
        return Ok(out);
    }
    let i64s = |v: &[usize]| dims(&v.iter().map(|&e| e as i64).collect::<Vec<_>>());
    let f = library(cx, &format!("tessera_reshape_gather_{}", elem_bytes(dtype)))?;
    for (x, off) in inputs.iter().zip(in_offsets) {
        if x.len() == 0 {
            continue;
        }
        let args = GatherArgs {
            n: x.len() as i64,
            in_shape: i64s(&x.shape)?,
            in_full: i64s(in_full)?,
            in_off: i64s(off)?,
            out_full: i64s(out_full)?,
            out_off: i64s(out_offset)?,
            out_shape: i64s(shape)?,
            nd_in: x.shape.len() as i32,
            nd_out: out_full.len() as i32,
        };
        let cfg = LaunchConfig {
            grid_dim: (stride_grid(cx, x.len()), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = cx.lane.compute.launch_builder(&f);
        b.arg(&x.buf);
        b.arg(&mut out.buf);
        b.arg(&args);
        // SAFETY: reads the input's own elements; writes only positions inside the output box
        // (the kernel checks every coordinate against it).
        unsafe { b.launch(cfg) }.map_err(drv("launching a reshape gather"))?;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Matrix products: cuBLAS

/// `a @ b (+ acc)` over broadcast batch axes with cuBLAS (f32: SGEMM, TF32 only when allowed;
/// f64: DGEMM). `None` for dtypes cuBLAS lacks (integers, bool): the caller runs them on the
/// host.
pub(crate) fn matmul(
    cx: &Cx,
    node: &ChunkNode,
    a: &DevArray,
    b: &DevArray,
    acc: Option<&DevArray>,
) -> Result<Option<DevArray>> {
    let shape = &node.shape;
    let d = a.dtype;
    if b.dtype != d || a.shape.len() < 2 || b.shape.len() < 2 || shape.len() < 2 {
        return Err(Error::UnsupportedDType {
            op: "matmul".into(),
            dtypes: vec![a.dtype, b.dtype],
        });
    }
    match d {
        DType::F32 => gemm::<f32>(cx, shape, a, b, acc, 1.0, 0.0).map(Some),
        DType::F64 => gemm::<f64>(cx, shape, a, b, acc, 1.0, 0.0).map(Some),
        _ => Ok(None),
    }
}

fn gemm<T>(
    cx: &Cx,
    shape: &[usize],
    a: &DevArray,
    b: &DevArray,
    acc: Option<&DevArray>,
    one: T,
    zero: T,
) -> Result<DevArray>
where
    T: DeviceRepr + Copy,
    cudarc::cublas::CudaBlas: Gemm<T>,
{
    let nb = shape.len() - 2;
    let (m, n) = (shape[nb], shape[nb + 1]);
    let k = a.shape[a.shape.len() - 1];
    let dtype = a.dtype;
    let stream = &cx.lane.compute;
    let mut out = match acc {
        // C starts as the running sum and cuBLAS adds A @ B to it (beta = 1).
        Some(c) => {
            let mut buf = cx.lane.alloc(stream, c.buf.len())?;
            stream
                .memcpy_dtod(&c.buf, &mut buf)
                .map_err(drv("copying the accumulator"))?;
            DevArray {
                buf,
                dtype,
                shape: shape.to_vec(),
            }
        }
        None => empty(cx, dtype, shape)?,
    };
    let out_n: usize = shape.iter().product();
    if out_n == 0 {
        return Ok(out);
    }
    if k == 0 {
        if acc.is_none() {
            stream
                .memset_zeros(&mut out.buf)
                .map_err(drv("clearing a product"))?;
        }
        return Ok(out);
    }
    let int = |v: usize| -> Result<i32> {
        i32::try_from(v).map_err(|_| unsupported(format!("matmul with a dimension of {v}")))
    };
    let beta = if acc.is_some() { one } else { zero };
    // Row-major C = A B is column-major C^T = B^T A^T: cuBLAS gets (B, A) with m and n swapped.
    let cfg = GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_N,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: int(n)?,
        n: int(m)?,
        k: int(k)?,
        alpha: one,
        lda: int(n)?,
        ldb: int(k)?,
        beta,
        ldc: int(n)?,
    };
    let size = std::mem::size_of::<T>();
    let count = |x: &DevArray| x.buf.len() / size;
    // SAFETY: the buffers hold `count` elements of T (dtype checked by the caller).
    let av = unsafe { a.buf.transmute::<T>(count(a)) }.ok_or_else(|| backend_err("view of A"))?;
    // SAFETY: as above.
    let bv = unsafe { b.buf.transmute::<T>(count(b)) }.ok_or_else(|| backend_err("view of B"))?;
    let cn = count(&out);
    // SAFETY: as above.
    let mut cv =
        unsafe { out.buf.transmute_mut::<T>(cn) }.ok_or_else(|| backend_err("view of C"))?;
    let blas = cx.lane.blas.lock().expect("cublas");
    let batches = grid_indices(&shape[..nb]);
    let full = |x: &DevArray| x.shape.len() == shape.len() && x.shape[..nb] == shape[..nb];
    let blas_err = |e| backend_err(format!("cuBLAS GEMM: {e:?}"));
    if batches.len() > 1 && full(a) && full(b) {
        let cfg = StridedBatchedConfig {
            gemm: cfg,
            batch_size: int(batches.len())?,
            stride_a: (k * n) as i64,
            stride_b: (m * k) as i64,
            stride_c: (m * n) as i64,
        };
        // SAFETY: every batch's matrices lie inside the buffers (full batch axes, dense
        // row-major); the leading dimensions match the shapes.
        unsafe { blas.gemm_strided_batched(cfg, &bv, &av, &mut cv) }.map_err(blas_err)?;
        return Ok(out);
    }
    for (i, bidx) in batches.iter().enumerate() {
        let ao = lower::batch_offset(&a.shape, bidx) as usize;
        let bo = lower::batch_offset(&b.shape, bidx) as usize;
        let co = i * m * n;
        let asl = av.slice(ao..ao + m * k);
        let bsl = bv.slice(bo..bo + k * n);
        let mut csl = cv.slice_mut(co..co + m * n);
        // SAFETY: the slices hold exactly one m x k, k x n and m x n matrix.
        unsafe { blas.gemm(cfg, &bsl, &asl, &mut csl) }.map_err(blas_err)?;
    }
    drop(blas);
    Ok(out)
}

/// Uploads the windows of bound (user) data a fused kernel reads; returns the device arrays
/// and the params with those inputs' load offsets rebased to 0.
pub(crate) fn bind_inputs(
    cx: &Cx,
    ir: &KernelIr,
    params: &KernelParams,
    bound: &[(usize, BoundData)],
) -> Result<(Vec<(usize, DevArray)>, KernelParams)> {
    let (windows, local) = lower::bound_windows(ir, params, bound)?;
    let mut out = Vec::with_capacity(windows.len());
    for (k, window) in windows {
        out.push((k, cx.lane.upload(&window)?));
    }
    Ok((out, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The argument structs match the C layout of library.cu (tests/compile.rs reads the same
    /// sizes off the PTX parameter declarations).
    #[test]
    fn argument_structs_have_the_c_layout() {
        assert_eq!(std::mem::size_of::<CopyArgs>(), 224);
        assert_eq!(std::mem::size_of::<GatherArgs>(), 400);
        assert_eq!(std::mem::align_of::<CopyArgs>(), 8);
    }
}
