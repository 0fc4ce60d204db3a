//! Lowering of chunk ops onto device kernels, shared by the GPU backends (wgpu, CUDA).
//! Input: a chunk op's operands as (dtype, shape). Output: a one-op [`KernelIr`] for a lone
//! elementwise op, cast, where, fill, random draw or reduction partial (so it takes the same
//! generated-kernel path as a fused chain), or the strided [`Piece`]s of a movement op
//! (transpose, broadcast, strided slice, assemble) for a backend's copy kernel.
//!
//! [`split_reduction`] rewrites a reduction kernel with few output rows into one with more rows
//! (the reduced extent cut into `splits` slices), so a GPU runs many blocks per row; the backend
//! then combines the slices' partial fields (`ReduceCombine`).

use tessera_runtime::array::Region;
use tessera_runtime::chunk::BoundData;
use tessera_runtime::ir::{
    row_major_strides, Inst, InstKind, IrInput, IrReduce, KernelIr, KernelParams, RandomParam,
    ReduceKind,
};
use tessera_runtime::op::Dist;
use tessera_runtime::{DType, HostArray, Scalar};

/// Strides mapping an index space `space` onto a row-major array of `shape` (right-aligned
/// numpy broadcasting: stride 0 on broadcast axes).
pub fn broadcast_strides(space: &[usize], shape: &[usize]) -> Vec<usize> {
    let own = row_major_strides(shape);
    let off = space.len() - shape.len();
    (0..space.len())
        .map(|d| {
            if d < off || (shape[d - off] == 1 && space[d] != 1) {
                0
            } else {
                own[d - off]
            }
        })
        .collect()
}

/// A one-op kernel over `space` loading `inputs` (dtype, shape; broadcast into the space) and
/// computing `op` from their values.
pub fn one_op_ir(
    space: &[usize],
    inputs: &[(DType, &[usize])],
    op: impl FnOnce(&[u32]) -> Inst,
    reduce: Option<IrReduce>,
) -> KernelIr {
    let mut insts = Vec::new();
    let mut irin = Vec::new();
    let mut vals = Vec::new();
    for (i, (dtype, shape)) in inputs.iter().enumerate() {
        irin.push(IrInput {
            dtype: *dtype,
            strides: broadcast_strides(space, shape),
        });
        insts.push(Inst {
            kind: InstKind::Load(i as u32),
            dtype: *dtype,
        });
        vals.push(i as u32);
    }
    insts.push(op(&vals));
    KernelIr {
        shape: space.to_vec(),
        inputs: irin,
        result: (insts.len() - 1) as u32,
        insts,
        reduce,
    }
}

/// A reduction partial of an array of `dtype` and `shape` over `axes` (the value reduced is
/// the loaded element itself).
pub fn reduce_ir(dtype: DType, shape: &[usize], kind: ReduceKind, axes: &[usize]) -> KernelIr {
    let mut ir = one_op_ir(
        shape,
        &[(dtype, shape)],
        |_| Inst {
            kind: InstKind::Load(0),
            dtype,
        },
        Some(IrReduce {
            kind,
            axes: axes.to_vec(),
        }),
    );
    // The load alone is the value reduced.
    ir.insts.pop();
    ir.result = 0;
    ir
}

/// A fill of `value` over `shape`.
pub fn full_ir(shape: &[usize], value: Scalar, dtype: DType) -> KernelIr {
    one_op_ir(
        shape,
        &[],
        |_| Inst {
            kind: InstKind::Const(value),
            dtype,
        },
        None,
    )
}

/// Random draws of the chunk at `offset` of a tensor of `full`.
pub fn random_ir(
    seed: u64,
    stream: u64,
    dist: Dist,
    shape: &[usize],
    offset: &[usize],
    full: &[usize],
    dtype: DType,
) -> (KernelIr, KernelParams) {
    let fs = row_major_strides(full);
    let base: u64 = offset.iter().zip(&fs).map(|(&o, &s)| (o * s) as u64).sum();
    let gstrides = fs.iter().map(|&s| s as u64).collect();
    let ir = one_op_ir(
        shape,
        &[],
        |_| Inst {
            kind: InstKind::Random {
                dist,
                gstrides,
                param: 0,
            },
            dtype,
        },
        None,
    );
    let params = KernelParams {
        random: vec![RandomParam { seed, stream, base }],
        ..Default::default()
    };
    (ir, params)
}

/// Elements of input `i` read by `ir` when its load offset is `offset`: `[lo, hi)` (empty
/// when nothing is read).
pub fn read_window(ir: &KernelIr, i: usize, offset: u64) -> (usize, usize) {
    if ir.shape.contains(&0) {
        return (0, 0);
    }
    let span: usize = ir
        .shape
        .iter()
        .zip(&ir.inputs[i].strides)
        .map(|(&n, &s)| (n - 1) * s)
        .sum();
    (offset as usize, offset as usize + span + 1)
}

/// The windows of bound (user) data a fused kernel reads, copied out as 1-d arrays for a
/// device, and the params with those loads' offsets rebased onto the windows (0).
///
/// # Errors
/// Bound data that cannot be read in place ([`BoundData::window`]).
pub fn bound_windows(
    ir: &KernelIr,
    params: &KernelParams,
    bound: &[(usize, BoundData)],
) -> tessera_runtime::Result<(Vec<(usize, HostArray)>, KernelParams)> {
    let mut local = params.clone();
    local.load_offsets.resize(ir.inputs.len(), 0);
    let mut out = Vec::with_capacity(bound.len());
    for (k, data) in bound {
        let off = params.load_offsets.get(*k).copied().unwrap_or(0);
        let (lo, hi) = read_window(ir, *k, off);
        let lo = lo.min(hi.min(data.len()));
        out.push((*k, data.window(lo, hi)?));
        local.load_offsets[*k] = off - lo as u64;
    }
    Ok((out, local))
}

/// A reduction kernel with its reduced extent cut into `splits` slices: the first reduced
/// axis `a` (extent `e`, divisible by `splits`) becomes two axes `[splits, e / splits]`, the
/// outer one kept. The output gains that axis (at position `a`); slice `s` of it holds the
/// partial fields of elements `s * e / splits ..` along `a`, which `ReduceCombine` merges
/// (each slice stands for `1 / splits` of the elements). `None` when `ir` has no reduction, is
/// an arg reduction (its indices are per-axis) or `splits` does not divide the axis.
pub fn split_reduction(ir: &KernelIr, splits: usize) -> Option<KernelIr> {
    let r = ir.reduce.as_ref()?;
    if !matches!(r.kind, ReduceKind::Reduce(_)) || splits < 2 {
        return None;
    }
    let a = *r.axes.first()?;
    let e = ir.shape[a];
    if !e.is_multiple_of(splits) {
        return None;
    }
    let inner = e / splits;
    let split = |v: &[usize]| -> Vec<usize> {
        let mut out = v[..a].to_vec();
        out.push(v[a] * inner);
        out.push(v[a]);
        out.extend_from_slice(&v[a + 1..]);
        out
    };
    let mut shape = ir.shape[..a].to_vec();
    shape.push(splits);
    shape.push(inner);
    shape.extend_from_slice(&ir.shape[a + 1..]);
    let inputs = ir
        .inputs
        .iter()
        .map(|i| IrInput {
            dtype: i.dtype,
            strides: split(&i.strides),
        })
        .collect();
    let insts = ir
        .insts
        .iter()
        .map(|inst| match &inst.kind {
            InstKind::Random {
                dist,
                gstrides,
                param,
            } => {
                let mut g = gstrides[..a].to_vec();
                g.push(gstrides[a] * inner as u64);
                g.push(gstrides[a]);
                g.extend_from_slice(&gstrides[a + 1..]);
                Inst {
                    kind: InstKind::Random {
                        dist: *dist,
                        gstrides: g,
                        param: *param,
                    },
                    dtype: inst.dtype,
                }
            }
            _ => inst.clone(),
        })
        .collect();
    // Axis a (the slices) is kept; the old axes from a on move one place right.
    let axes = r
        .axes
        .iter()
        .map(|&x| if x >= a { x + 1 } else { x })
        .collect();
    Some(KernelIr {
        shape,
        inputs,
        insts,
        result: ir.result,
        reduce: Some(IrReduce { kind: r.kind, axes }),
    })
}

/// One strided copy from input `src` into the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Which input.
    pub src: usize,
    /// Index space.
    pub shape: Vec<usize>,
    /// First source element.
    pub src_base: i64,
    /// Source element strides (negative walks backwards).
    pub src_strides: Vec<i64>,
    /// First destination element.
    pub dst_base: u64,
    /// Destination element strides.
    pub dst_strides: Vec<u64>,
}

fn signed(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&s| s as i64).collect()
}

fn dense(shape: &[usize]) -> Vec<u64> {
    row_major_strides(shape)
        .into_iter()
        .map(|s| s as u64)
        .collect()
}

/// Axis permutation of an array of `shape`.
pub fn transpose_piece(shape: &[usize], perm: &[usize]) -> Piece {
    let rs = row_major_strides(shape);
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    Piece {
        src: 0,
        src_base: 0,
        src_strides: perm.iter().map(|&p| rs[p] as i64).collect(),
        dst_base: 0,
        dst_strides: dense(&out),
        shape: out,
    }
}

/// Broadcast of an array of `from` to `to`.
pub fn broadcast_piece(from: &[usize], to: &[usize]) -> Piece {
    Piece {
        src: 0,
        src_base: 0,
        src_strides: signed(&broadcast_strides(to, from)),
        dst_base: 0,
        dst_strides: dense(to),
        shape: to.to_vec(),
    }
}

/// A strided box of an array of `from` (negative steps walk from the box's end, as ndarray
/// does); `out` is the result shape.
pub fn slice_piece(from: &[usize], region: &Region, steps: &[isize], out: &[usize]) -> Piece {
    let rs = row_major_strides(from);
    let mut base = 0i64;
    let mut st = Vec::new();
    for (d, (&(s, e), &step)) in region.iter().zip(steps).enumerate() {
        let first = if step > 0 { s } else { e.saturating_sub(1) };
        if e > s {
            base += (first * rs[d]) as i64;
        }
        st.push(step as i64 * rs[d] as i64);
    }
    Piece {
        src: 0,
        src_base: base,
        src_strides: st,
        dst_base: 0,
        dst_strides: dense(out),
        shape: out.to_vec(),
    }
}

/// The pieces of a chunk of `shape` built from boxes of several inputs (concatenate,
/// rechunk): input `i` of shape `in_shapes[i]` gives box `pieces[i].0` at output offset
/// `pieces[i].1`.
pub fn assemble_pieces(
    in_shapes: &[&[usize]],
    pieces: &[(Region, Vec<usize>)],
    shape: &[usize],
) -> Vec<Piece> {
    let out_rs = row_major_strides(shape);
    in_shapes
        .iter()
        .zip(pieces)
        .enumerate()
        .map(|(i, (xs, (src, dst)))| {
            let rs = row_major_strides(xs);
            Piece {
                src: i,
                shape: src.iter().map(|(a, b)| b - a).collect(),
                src_base: src.iter().zip(&rs).map(|((a, _), s)| (a * s) as i64).sum(),
                src_strides: signed(&rs),
                dst_base: dst.iter().zip(&out_rs).map(|(o, s)| (o * s) as u64).sum(),
                dst_strides: out_rs.iter().map(|&s| s as u64).collect(),
            }
        })
        .collect()
}

/// Element offset of the matrix at batch index `bidx` (of the output's batch axes) in an
/// operand of `shape` (`[.., rows, cols]`), whose batch axes broadcast against the output's.
pub fn batch_offset(shape: &[usize], bidx: &[usize]) -> u64 {
    let nb = shape.len() - 2;
    let skip = bidx.len() - nb;
    let mat = (shape[nb] * shape[nb + 1]) as u64;
    let mut off = 0u64;
    let mut stride = mat;
    for d in (0..nb).rev() {
        if shape[d] != 1 {
            off += bidx[skip + d] as u64 * stride;
        }
        stride *= shape[d] as u64;
    }
    off
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_runtime::op::ReduceOp;

    #[test]
    fn split_reduction_cuts_the_first_reduced_axis() {
        let ir = reduce_ir(
            DType::F32,
            &[6, 8],
            ReduceKind::Reduce(ReduceOp::Sum),
            &[0, 1],
        );
        let s = split_reduction(&ir, 3).expect("3 divides 6");
        assert_eq!(s.shape, vec![3, 2, 8]);
        assert_eq!(s.inputs[0].strides, vec![16, 8, 1]);
        assert_eq!(s.reduce.as_ref().unwrap().axes, vec![1, 2]);
        assert_eq!(s.out_shape(), vec![3, 1, 1]);
        assert!(split_reduction(&ir, 4).is_none(), "4 does not divide 6");
        let arg = reduce_ir(
            DType::F32,
            &[6, 8],
            ReduceKind::Arg(tessera_runtime::op::ArgOp::ArgMax),
            &[1],
        );
        assert!(split_reduction(&arg, 2).is_none());
    }
}
