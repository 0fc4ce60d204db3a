//! Chunk ops on one GPU: generated kernels (a fused `KernelIr`, or a one-op `KernelIr` built
//! here for a lone elementwise op, cast, where, fill, random draw or reduction partial) and the
//! library kernels of `shaders/` (strided copy, reshape gather, tiled GEMM).

use crate::data::{bytes, bytes_range, from_bytes, gpu_size, words};
use crate::gpu::{backend_err, Buf, Dispatch, Gpu, PipeKey};
use std::sync::Arc;
use tessera_kernels::lower::{self, read_window, Piece};
use tessera_kernels::{output_dtypes, pack_params_u32, uses_f64, WgslRenderer};
use tessera_runtime::array::Region;
use tessera_runtime::chunk::{grid_indices, ChunkNode, ChunkOp};
use tessera_runtime::ir::{KernelIr, KernelParams, Renderer};
use tessera_runtime::{DType, Error, HostArray, Result};

const COPY_WGSL: &str = include_str!("../../../shaders/copy.wgsl");
const GATHER_WGSL: &str = include_str!("../../../shaders/reshape_gather.wgsl");
const GEMM_WGSL: &str = include_str!("../../../shaders/gemm.wgsl");

/// `Unsupported` on the wgpu backend.
pub(crate) fn unsupported(op: impl Into<String>) -> Error {
    Error::Unsupported {
        op: op.into(),
        backend: "wgpu".into(),
    }
}

fn no_f64(gpu: &Gpu, what: &str) -> Error {
    unsupported(format!(
        "{what} in float64 (adapter {} lacks SHADER_F64)",
        gpu.info.name
    ))
}

// ---------------------------------------------------------------------------------------------
// Generated kernels

/// Runs a generated kernel on host inputs (one per IR input, in order); returns its output
/// fields (shape `ir.out_shape()`).
pub(crate) fn run_ir(
    gpu: &Gpu,
    ir: &KernelIr,
    params: &KernelParams,
    inputs: &[&HostArray],
) -> Result<Vec<HostArray>> {
    if !gpu.f64 && uses_f64(ir) {
        return Err(no_f64(gpu, "a kernel computing"));
    }
    let outs = output_dtypes(ir);
    let out_shape = ir.out_shape();
    let out_n: usize = out_shape.iter().product();
    if out_n == 0 {
        return Ok(outs
            .iter()
            .map(|&d| HostArray::zeros(d, &out_shape))
            .collect());
    }
    if ir.len() >= u32::MAX as usize {
        return Err(unsupported(format!(
            "kernels over {} elements (the WGSL ABI indexes in u32)",
            ir.len()
        )));
    }
    // Upload only the window each input is read at; its load offset becomes 0.
    let mut bufs: Vec<Buf> = Vec::new();
    for (i, x) in inputs.iter().enumerate() {
        let off = params.load_offsets.get(i).copied().unwrap_or(0);
        let (lo, hi) = read_window(ir, i, off);
        let hi = hi.min(x.len());
        let lo = lo.min(hi);
        bufs.push(gpu.upload(&bytes_range(x, lo, hi))?);
    }
    let pipeline = gpu.pipeline(PipeKey::Ir(ir.key().0), || {
        WgslRenderer.render(ir).map_err(|e| match e {
            Error::Unsupported { op, .. } => unsupported(op),
            e => e,
        })
    })?;
    for &d in &outs {
        bufs.push(gpu.output(out_n as u64 * gpu_size(d))?);
    }
    let local = KernelParams {
        load_offsets: vec![],
        ..params.clone()
    };
    bufs.push(gpu.upload_words(&pack_params_u32(ir, &local))?);
    let grid = match &ir.reduce {
        None => gpu.grid_for(ir.len() as u64)?,
        Some(_) => gpu.grid(out_n as u64)?,
    };
    let n_in = inputs.len();
    let reads: Vec<(&wgpu::Buffer, u64)> = outs
        .iter()
        .enumerate()
        .map(|(k, &d)| (bufs[n_in + k].buffer(), out_n as u64 * gpu_size(d)))
        .collect();
    let got = gpu.run(
        &[],
        &[Dispatch {
            pipeline,
            bindings: bufs.iter().map(Buf::buffer).collect(),
            grid,
        }],
        &reads,
    )?;
    outs.iter()
        .zip(&got)
        .map(|(&d, b)| from_bytes(d, &out_shape, b))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Movement: strided copies

fn copy_pipeline(gpu: &Gpu) -> Result<Arc<wgpu::ComputePipeline>> {
    gpu.pipeline(PipeKey::Library("copy"), || Ok(COPY_WGSL.to_string()))
}

fn to_i32(v: i64, what: &str) -> Result<u32> {
    i32::try_from(v).map(|x| x as u32).map_err(|_| {
        unsupported(format!(
            "{what} {v} beyond the i32 range of the copy kernel"
        ))
    })
}

fn to_u32(v: u64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| unsupported(format!("{what} {v} beyond u32")))
}

/// Builds an output of `shape` and `dtype` from strided pieces of `inputs` (elements no piece
/// writes are zero).
pub(crate) fn copy_pieces(
    gpu: &Gpu,
    inputs: &[&HostArray],
    pieces: &[Piece],
    shape: &[usize],
    dtype: DType,
) -> Result<HostArray> {
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(HostArray::zeros(dtype, shape));
    }
    let wpe = words(dtype);
    let pipeline = copy_pipeline(gpu)?;
    let srcs: Vec<Buf> = inputs
        .iter()
        .map(|x| gpu.upload(&bytes(x)))
        .collect::<Result<_>>()?;
    let out_bytes = n as u64 * gpu_size(dtype);
    let dst = gpu.output(out_bytes)?;
    let mut param_bufs = Vec::new();
    let mut grids = Vec::new();
    for p in pieces {
        let count: usize = p.shape.iter().product();
        if count == 0 {
            continue;
        }
        let nd = p.shape.len();
        let mut w = vec![
            to_u32(count as u64, "copy of")?,
            nd as u32,
            wpe,
            to_i32(p.src_base, "source offset")?,
            to_u32(p.dst_base, "destination offset")?,
        ];
        for &s in &p.shape {
            w.push(to_u32(s as u64, "extent")?);
        }
        for &s in &p.src_strides {
            w.push(to_i32(s, "source stride")?);
        }
        for &s in &p.dst_strides {
            w.push(to_u32(s, "destination stride")?);
        }
        param_bufs.push((p.src, gpu.upload_words(&w)?));
        grids.push(gpu.grid_for(count as u64)?);
    }
    let dispatches: Vec<Dispatch> = param_bufs
        .iter()
        .zip(grids)
        .map(|((src, pb), grid)| Dispatch {
            pipeline: pipeline.clone(),
            bindings: vec![srcs[*src].buffer(), dst.buffer(), pb.buffer()],
            grid,
        })
        .collect();
    let covered: usize = pieces
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum();
    let clear: Vec<&wgpu::Buffer> = if covered < n {
        vec![dst.buffer()]
    } else {
        vec![]
    };
    let got = gpu.run(&clear, &dispatches, &[(dst.buffer(), out_bytes)])?;
    from_bytes(dtype, shape, &got[0])
}

/// Axis permutation.
pub(crate) fn transpose(gpu: &Gpu, x: &HostArray, perm: &[usize]) -> Result<HostArray> {
    let piece = lower::transpose_piece(x.shape(), perm);
    let shape = piece.shape.clone();
    copy_pieces(gpu, &[x], &[piece], &shape, x.dtype())
}

/// Broadcast to `shape`.
pub(crate) fn broadcast(gpu: &Gpu, x: &HostArray, shape: &[usize]) -> Result<HostArray> {
    let piece = lower::broadcast_piece(x.shape(), shape);
    copy_pieces(gpu, &[x], &[piece], shape, x.dtype())
}

/// A strided box (negative steps walk from the box's end, as ndarray does).
pub(crate) fn slice(
    gpu: &Gpu,
    x: &HostArray,
    region: &Region,
    steps: &[isize],
    shape: &[usize],
) -> Result<HostArray> {
    let piece = lower::slice_piece(x.shape(), region, steps, shape);
    copy_pieces(gpu, &[x], &[piece], shape, x.dtype())
}

/// Builds a chunk from boxes of several inputs (concatenate, rechunk).
pub(crate) fn assemble(
    gpu: &Gpu,
    inputs: &[&HostArray],
    pieces: &[(Region, Vec<usize>)],
    shape: &[usize],
    dtype: DType,
) -> Result<HostArray> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
    let ps = lower::assemble_pieces(&shapes, pieces, shape);
    copy_pieces(gpu, inputs, &ps, shape, dtype)
}

/// General row-major reshape of a box gathered from input chunks (`node` is a
/// `ChunkOp::ReshapeGather`).
pub(crate) fn reshape_gather(
    gpu: &Gpu,
    inputs: &[&HostArray],
    node: &ChunkNode,
) -> Result<HostArray> {
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
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(HostArray::zeros(dtype, shape));
    }
    let total: usize = in_full.iter().product();
    if total >= u32::MAX as usize {
        return Err(unsupported(format!(
            "reshape of a tensor of {total} elements (the gather kernel indexes in u32)"
        )));
    }
    let wpe = words(dtype);
    let pipeline = gpu.pipeline(PipeKey::Library("reshape_gather"), || {
        Ok(GATHER_WGSL.to_string())
    })?;
    let out_bytes = n as u64 * gpu_size(dtype);
    let dst = gpu.output(out_bytes)?;
    let mut bufs = Vec::new();
    for (x, off) in inputs.iter().zip(in_offsets) {
        if x.is_empty() {
            continue;
        }
        let mut w = vec![
            x.len() as u32,
            x.shape().len() as u32,
            out_full.len() as u32,
            wpe,
        ];
        w.extend(x.shape().iter().map(|&v| v as u32));
        w.extend(in_full.iter().map(|&v| v as u32));
        w.extend(off.iter().map(|&v| v as u32));
        w.extend(out_full.iter().map(|&v| v as u32));
        w.extend(out_offset.iter().map(|&v| v as u32));
        w.extend(shape.iter().map(|&v| v as u32));
        let grid = gpu.grid_for(x.len() as u64)?;
        bufs.push((gpu.upload(&bytes(x))?, gpu.upload_words(&w)?, grid));
    }
    let dispatches: Vec<Dispatch> = bufs
        .iter()
        .map(|(s, p, grid)| Dispatch {
            pipeline: pipeline.clone(),
            bindings: vec![s.buffer(), dst.buffer(), p.buffer()],
            grid: *grid,
        })
        .collect();
    let got = gpu.run(&[dst.buffer()], &dispatches, &[(dst.buffer(), out_bytes)])?;
    from_bytes(dtype, shape, &got[0])
}

// ---------------------------------------------------------------------------------------------
// GEMM

fn gemm_prelude(d: DType) -> Option<(&'static str, &'static str)> {
    Some(match d {
        DType::F32 => (
            "gemm_f32",
            "alias T = f32;\nconst ZERO: T = 0.0f;\nfn madd(c: T, a: T, b: T) -> T { return c + a * b; }\nfn comb(x: T, y: T) -> T { return x + y; }\n",
        ),
        DType::F64 => (
            "gemm_f64",
            "alias T = f64;\nconst ZERO: T = 0.0lf;\nfn madd(c: T, a: T, b: T) -> T { return c + a * b; }\nfn comb(x: T, y: T) -> T { return x + y; }\n",
        ),
        DType::I32 => (
            "gemm_i32",
            "alias T = i32;\nconst ZERO: T = 0i;\nfn madd(c: T, a: T, b: T) -> T { return c + a * b; }\nfn comb(x: T, y: T) -> T { return x + y; }\n",
        ),
        DType::Bool => (
            "gemm_bool",
            "alias T = u32;\nconst ZERO: T = 0u;\nfn madd(c: T, a: T, b: T) -> T { return c | (a & b); }\nfn comb(x: T, y: T) -> T { return x | y; }\n",
        ),
        DType::I64 => return None,
    })
}

/// Element offset of batch matrix `bidx` (over the output's batch axes) of an operand of
/// `shape` (batch axes right-aligned; size-1 axes broadcast).
/// `a @ b (+ acc)` over broadcast batch axes; `shape` is the output chunk shape.
pub(crate) fn matmul(
    gpu: &Gpu,
    node: &ChunkNode,
    a: &HostArray,
    b: &HostArray,
    acc: Option<&HostArray>,
) -> Result<HostArray> {
    let shape = &node.shape;
    let d = a.dtype();
    if b.dtype() != d || a.shape().len() < 2 || b.shape().len() < 2 || shape.len() < 2 {
        return Err(Error::UnsupportedDType {
            op: "matmul".into(),
            dtypes: vec![a.dtype(), b.dtype()],
        });
    }
    let Some((name, prelude)) = gemm_prelude(d) else {
        return Err(unsupported("matmul of int64 (WGSL has no 64-bit integers)"));
    };
    if d == DType::F64 && !gpu.f64 {
        return Err(no_f64(gpu, "matmul"));
    }
    let nb = shape.len() - 2;
    let (m, n) = (shape[nb], shape[nb + 1]);
    let k = a.shape()[a.shape().len() - 1];
    let out_n: usize = shape.iter().product();
    if out_n == 0 {
        return Ok(HostArray::zeros(d, shape));
    }
    let batches = grid_indices(&shape[..nb]);
    let mut offs = Vec::with_capacity(batches.len() * 2);
    for bidx in &batches {
        offs.push(to_u32(
            lower::batch_offset(a.shape(), bidx),
            "matmul offset",
        )?);
        offs.push(to_u32(
            lower::batch_offset(b.shape(), bidx),
            "matmul offset",
        )?);
    }
    let max = gpu.limits.max_compute_workgroups_per_dimension as usize;
    let (gx, gy) = (n.div_ceil(64), m.div_ceil(64));
    if gx > max || gy > max {
        return Err(unsupported(format!(
            "matmul of a {m} x {n} block (more than {max} tiles of 64 per side)"
        )));
    }
    let pipeline = gpu.pipeline(PipeKey::Library(name), || {
        Ok(format!("{prelude}\n{GEMM_WGSL}"))
    })?;
    let ab = gpu.upload(&bytes(a))?;
    let bb = gpu.upload(&bytes(b))?;
    let accb = match acc {
        Some(c) => gpu.upload(&bytes(c))?,
        None => gpu.output(4)?,
    };
    let out_bytes = out_n as u64 * gpu_size(d);
    let cb = gpu.output(out_bytes)?;
    let mut pbufs = Vec::new();
    for z0 in (0..batches.len()).step_by(max) {
        let nz = (batches.len() - z0).min(max);
        let mut w = vec![
            m as u32,
            n as u32,
            k as u32,
            acc.is_some() as u32,
            z0 as u32,
        ];
        w.extend_from_slice(&offs);
        pbufs.push((gpu.upload_words(&w)?, nz as u32));
    }
    let dispatches: Vec<Dispatch> = pbufs
        .iter()
        .map(|(p, nz)| Dispatch {
            pipeline: pipeline.clone(),
            bindings: vec![
                ab.buffer(),
                bb.buffer(),
                accb.buffer(),
                cb.buffer(),
                p.buffer(),
            ],
            grid: [gx as u32, gy as u32, *nz],
        })
        .collect();
    let got = gpu.run(&[], &dispatches, &[(cb.buffer(), out_bytes)])?;
    if got[0].is_empty() {
        return Err(backend_err("matmul read back nothing"));
    }
    from_bytes(d, shape, &got[0])
}
