//! Movement kernels: transpose, reshape, broadcast, strided slices, assembling boxes of
//! several chunks, and the general reshape gather.

use ndarray::{ArrayD, IxDyn};
use tessera_runtime::array::Region;
use tessera_runtime::{on_array, with_array, Elem, HostArray};

/// Axis permutation, materialized in standard layout.
pub fn transpose(x: &HostArray, perm: &[usize]) -> HostArray {
    with_array!(x, a => a.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned())
}

/// Broadcast to `shape`, materialized.
pub fn broadcast(x: &HostArray, shape: &[usize]) -> HostArray {
    with_array!(x, a => a.broadcast(IxDyn(shape)).expect("tiler checked broadcast").to_owned())
}

/// Builds a chunk of `shape` from boxes of inputs.
pub fn assemble(
    inputs: &[&HostArray],
    pieces: &[(Region, Vec<usize>)],
    shape: &[usize],
) -> HostArray {
    let mut out = HostArray::zeros(inputs[0].dtype(), shape);
    for (x, (src, dst)) in inputs.iter().zip(pieces) {
        out.assign_region(dst, &x.slice_region(src, None));
    }
    out
}

/// General reshape: writes every element of each input chunk (at `in_offsets` in a tensor of
/// `in_full`) that falls inside the output box (at `out_offset` in a tensor of `out_full`).
pub fn reshape_gather(
    inputs: &[&HostArray],
    in_full: &[usize],
    in_offsets: &[Vec<usize>],
    out_full: &[usize],
    out_offset: &[usize],
    shape: &[usize],
) -> HostArray {
    fn go<T: Elem>(
        inputs: &[&HostArray],
        in_full: &[usize],
        in_offsets: &[Vec<usize>],
        out_full: &[usize],
        out_offset: &[usize],
        shape: &[usize],
    ) -> ArrayD<T> {
        let mut out = ArrayD::<T>::default(IxDyn(shape));
        let out_slice = out.as_slice_mut().expect("fresh array is contiguous");
        let on = out_full.len();
        for (x, off) in inputs.iter().zip(in_offsets) {
            let a = x.as_array::<T>().expect("inputs share the dtype");
            let a = a.as_standard_layout();
            let ish = a.shape().to_vec();
            let nd = ish.len();
            let mut idx = vec![0usize; nd];
            for &v in a.iter() {
                // Global flat index of this input element, then its output coordinates.
                let mut f = 0usize;
                for d in 0..nd {
                    f = f * in_full[d] + off[d] + idx[d];
                }
                let mut local = 0usize;
                let mut inside = true;
                let mut rem = f;
                let mut stride = 1usize;
                for d in (0..on).rev() {
                    let c = rem % out_full[d];
                    rem /= out_full[d];
                    if c < out_offset[d] || c >= out_offset[d] + shape[d] {
                        inside = false;
                        break;
                    }
                    local += (c - out_offset[d]) * stride;
                    stride *= shape[d];
                }
                if inside {
                    out_slice[local] = v;
                }
                for d in (0..nd).rev() {
                    idx[d] += 1;
                    if idx[d] < ish[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
        }
        out
    }
    on_array!(inputs[0], _a => {
        match inputs[0].dtype() {
            tessera_runtime::DType::Bool => go::<bool>(inputs, in_full, in_offsets, out_full, out_offset, shape).into(),
            tessera_runtime::DType::I32 => go::<i32>(inputs, in_full, in_offsets, out_full, out_offset, shape).into(),
            tessera_runtime::DType::I64 => go::<i64>(inputs, in_full, in_offsets, out_full, out_offset, shape).into(),
            tessera_runtime::DType::F32 => go::<f32>(inputs, in_full, in_offsets, out_full, out_offset, shape).into(),
            tessera_runtime::DType::F64 => go::<f64>(inputs, in_full, in_offsets, out_full, out_offset, shape).into(),
        }
    })
}
