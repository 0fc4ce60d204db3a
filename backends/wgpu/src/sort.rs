//! Stable lane sort on the GPU: a bitonic network over (key, position) pairs
//! (shaders/sort_init.wgsl, shaders/sort_bitonic.wgsl), stages of up to 512 entries in
//! workgroup memory, longer steps in global memory. float32 and int32 lanes; the positions come
//! back and the host gathers the values (or returns the positions, for argsort). Other dtypes,
//! and lanes too long for one binding, stay host steps.

use crate::data::bytes;
use crate::gpu::{Buf, Dispatch, Gpu, PipeKey};
use ndarray::{ArrayD, IxDyn};
use std::sync::Arc;
use tessera_runtime::{DType, HostArray, Result};

const INIT_WGSL: &str = include_str!("../../../shaders/sort_init.wgsl");
const BITONIC_WGSL: &str = include_str!("../../../shaders/sort_bitonic.wgsl");

/// Entries one workgroup sorts in workgroup memory.
const BLOCK: u64 = 512;

fn pipelines(gpu: &Gpu) -> Result<[Arc<wgpu::ComputePipeline>; 3]> {
    let init = gpu.pipeline(PipeKey::Library("sort_init"), || Ok(INIT_WGSL.to_string()))?;
    let local = gpu.pipeline(PipeKey::Library("sort_local"), || {
        Ok(BITONIC_WGSL.replace("fn bitonic_local(", "fn main("))
    })?;
    let step = gpu.pipeline(PipeKey::Library("sort_step"), || {
        Ok(BITONIC_WGSL.replace("fn bitonic_step(", "fn main("))
    })?;
    Ok([init, local, step])
}

/// `x` with `axis` moved last, row-major, and the permutation that did it.
fn axis_last<T: Clone>(x: &ArrayD<T>, axis: usize) -> (Vec<usize>, ArrayD<T>) {
    let mut perm: Vec<usize> = (0..x.ndim()).filter(|&d| d != axis).collect();
    perm.push(axis);
    let v = x.view().permuted_axes(IxDyn(&perm));
    (perm, v.as_standard_layout().into_owned())
}

/// Undoes [`axis_last`]'s permutation.
fn restore<T: Clone>(y: ArrayD<T>, perm: &[usize]) -> ArrayD<T> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    y.permuted_axes(IxDyn(&inv))
        .as_standard_layout()
        .into_owned()
}

/// The stable sort (or argsort) of every lane of `x` along `axis` on the GPU; `None` where this
/// kernel does not apply (a dtype other than float32/int32, lanes of fewer than 2 elements, or
/// more than a binding holds), for the caller's host step.
///
/// # Errors
/// The device's errors.
pub(crate) fn sort(
    gpu: &Gpu,
    x: &HostArray,
    axis: usize,
    descending: bool,
    arg: bool,
) -> Result<Option<HostArray>> {
    let float = match x.dtype() {
        DType::F32 => true,
        DType::I32 => false,
        _ => return Ok(None),
    };
    let shape = x.shape().to_vec();
    let len = shape.get(axis).copied().unwrap_or(0) as u64;
    let n = x.len() as u64;
    if len < 2 || n == 0 || len > 1 << 31 {
        return Ok(None);
    }
    let lanes = n / len;
    let p2 = len.next_power_of_two();
    let total = match lanes.checked_mul(p2) {
        Some(t) => t.div_ceil(BLOCK) * BLOCK,
        None => return Ok(None),
    };
    if total > u32::MAX as u64 || total * 4 > gpu.max_binding() {
        return Ok(None);
    }
    let (perm, lanes_data) = match x {
        HostArray::F32(a) => {
            let (p, v) = axis_last(a, axis);
            (p, HostArray::F32(v))
        }
        HostArray::I32(a) => {
            let (p, v) = axis_last(a, axis);
            (p, HostArray::I32(v))
        }
        _ => unreachable!("dtype checked above"),
    };
    let [init, local, step] = pipelines(gpu)?;
    let src = gpu.upload(&bytes(&lanes_data))?;
    let keys = gpu.output(total * 4)?;
    let idx = gpu.output(total * 4)?;
    let mode = u32::from(float) | (u32::from(descending) << 1);
    let mut params: Vec<Buf> =
        vec![gpu.upload_words(&[lanes as u32, len as u32, p2 as u32, total as u32, mode])?];
    // (pipeline, params index, grid) of every dispatch, in order.
    let mut plan: Vec<(Arc<wgpu::ComputePipeline>, usize, [u32; 3])> =
        vec![(init, 0, gpu.grid_for(total)?)];
    let blocks = gpu.grid(total / BLOCK)?;
    let pairs = gpu.grid_for(total / 2)?;
    params.push(gpu.upload_words(&[total as u32, p2 as u32, 0, 0])?);
    plan.push((local.clone(), params.len() - 1, blocks));
    let mut k = 2 * BLOCK;
    while k <= p2 {
        let mut j = k / 2;
        while j >= BLOCK {
            params.push(gpu.upload_words(&[total as u32, p2 as u32, k as u32, j as u32])?);
            plan.push((step.clone(), params.len() - 1, pairs));
            j /= 2;
        }
        params.push(gpu.upload_words(&[total as u32, p2 as u32, k as u32, 0])?);
        plan.push((local.clone(), params.len() - 1, blocks));
        k *= 2;
    }
    let dispatches: Vec<Dispatch> = plan
        .iter()
        .enumerate()
        .map(|(i, (pipeline, pi, grid))| Dispatch {
            pipeline: pipeline.clone(),
            bindings: if i == 0 {
                vec![
                    src.buffer(),
                    keys.buffer(),
                    idx.buffer(),
                    params[*pi].buffer(),
                ]
            } else {
                vec![keys.buffer(), idx.buffer(), params[*pi].buffer()]
            },
            grid: *grid,
        })
        .collect();
    let got = gpu.run(&[], &dispatches, &[(idx.buffer(), lanes * p2 * 4)])?;
    let pos: Vec<u32> = bytemuck::pod_collect_to_vec(&got[0]);
    let (len, p2) = (len as usize, p2 as usize);
    let lane_shape = lanes_data.shape().to_vec();
    // The first `len` entries of each lane are its elements' positions, in sorted order.
    let order = |r: usize| &pos[r * p2..r * p2 + len];
    fn gather<T: Copy>(
        a: &ArrayD<T>,
        lane_shape: &[usize],
        len: usize,
        order: impl Fn(usize) -> Vec<usize>,
    ) -> ArrayD<T> {
        let flat = a.as_slice().expect("row-major");
        let mut out = Vec::with_capacity(flat.len());
        for (r, lane) in flat.chunks(len).enumerate() {
            out.extend(order(r).into_iter().map(|p| lane[p]));
        }
        ArrayD::from_shape_vec(IxDyn(lane_shape), out).expect("same shape")
    }
    let order_vec = |r: usize| order(r).iter().map(|&p| p as usize).collect::<Vec<_>>();
    // Every lane's positions are a permutation of its elements (padding sorts last): checked,
    // so that a kernel fault is an error, never wrong data.
    let mut seen = vec![false; len];
    for r in 0..lanes as usize {
        seen.iter_mut().for_each(|s| *s = false);
        for &p in order(r) {
            match seen.get_mut(p as usize) {
                Some(s) if !*s => *s = true,
                _ => {
                    return Err(crate::gpu::backend_err(format!(
                        "the GPU sort returned position {p} twice or past its lane of {len}"
                    )))
                }
            }
        }
    }
    let out = if arg {
        let v: Vec<i64> = (0..lanes as usize)
            .flat_map(|r| order(r).iter().map(|&p| p as i64).collect::<Vec<_>>())
            .collect();
        HostArray::I64(restore(
            ArrayD::from_shape_vec(IxDyn(&lane_shape), v).expect("same shape"),
            &perm,
        ))
    } else {
        match &lanes_data {
            HostArray::F32(a) => {
                HostArray::F32(restore(gather(a, &lane_shape, len, order_vec), &perm))
            }
            HostArray::I32(a) => {
                HostArray::I32(restore(gather(a, &lane_shape, len, order_vec), &perm))
            }
            _ => unreachable!("dtype checked above"),
        }
    };
    Ok(Some(out))
}
