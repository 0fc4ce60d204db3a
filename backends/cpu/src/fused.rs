//! CPU execution of a fused kernel (KernelIr), the numexpr design inside the chunk graph: the
//! index space is walked in blocks of a few thousand elements; each instruction produces one
//! block-sized column that stays in cache, so no full-size temporary is ever allocated. Blocks
//! run in parallel (rayon); a reduction tail folds the blocks of each row in order, exactly as
//! the unfused reduction does.

use crate::col;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use std::borrow::Cow;
use tessera_runtime::ir::{row_major_strides, InstKind, KernelIr, KernelParams};
use tessera_runtime::{on_array, DType, Elem, Error, HostArray, Result};

use crate::elementwise;
use crate::reduce::{self, BLOCK};
use crate::source;

struct Plan<'a> {
    ir: &'a KernelIr,
    params: &'a KernelParams,
    /// Input data, standard layout.
    data: Vec<Cow<'a, HostArray>>,
    /// Iteration shape (kept axes, then reduced axes).
    pshape: Vec<usize>,
    /// Per input: strides in iteration order, and whether they are the contiguous ones.
    load_strides: Vec<(Vec<usize>, bool)>,
    /// Per instruction that draws random numbers: global strides in iteration order, and
    /// whether they are the contiguous ones (global index = base + position).
    rand_strides: Vec<Option<(Vec<u64>, bool)>>,
}

/// Offsets `sum_d c[d] * strides[d]` of `len` consecutive elements from flat position `p0`.
fn offsets(pshape: &[usize], p0: usize, strides: &[u64], len: usize) -> Vec<u64> {
    let nd = pshape.len();
    let mut c = vec![0usize; nd];
    let mut r = p0;
    for d in (0..nd).rev() {
        c[d] = r % pshape[d];
        r /= pshape[d];
    }
    let mut off: u64 = (0..nd).map(|d| c[d] as u64 * strides[d]).sum();
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(off);
        for d in (0..nd).rev() {
            c[d] += 1;
            off = off.wrapping_add(strides[d]);
            if c[d] < pshape[d] {
                break;
            }
            off = off.wrapping_sub(strides[d] * pshape[d] as u64);
            c[d] = 0;
        }
    }
    out
}

impl<'a> Plan<'a> {
    fn new(ir: &'a KernelIr, params: &'a KernelParams, inputs: &[&'a HostArray]) -> Self {
        let nd = ir.shape.len();
        let axes: Vec<usize> = ir
            .reduce
            .as_ref()
            .map(|r| r.axes.clone())
            .unwrap_or_default();
        let perm: Vec<usize> = (0..nd)
            .filter(|a| !axes.contains(a))
            .chain(axes.iter().copied())
            .collect();
        let pshape: Vec<usize> = perm.iter().map(|&d| ir.shape[d]).collect();
        let contiguous = row_major_strides(&pshape);
        let load_strides = ir
            .inputs
            .iter()
            .map(|inp| {
                let s: Vec<usize> = perm.iter().map(|&d| inp.strides[d]).collect();
                let c = s == contiguous;
                (s, c)
            })
            .collect();
        let rand_strides = ir
            .insts
            .iter()
            .map(|i| match &i.kind {
                InstKind::Random { gstrides, .. } => {
                    let s: Vec<u64> = perm.iter().map(|&d| gstrides[d]).collect();
                    let linear = s.iter().zip(&contiguous).all(|(&a, &b)| a == b as u64);
                    Some((s, linear))
                }
                _ => None,
            })
            .collect();
        let data = inputs
            .iter()
            .map(|x| {
                let standard = on_array!(*x, a => a.is_standard_layout());
                if standard {
                    Cow::Borrowed(*x)
                } else {
                    Cow::Owned(x.reshape(x.shape()))
                }
            })
            .collect();
        Plan {
            ir,
            params,
            data,
            pshape,
            load_strides,
            rand_strides,
        }
    }

    fn load(&self, i: usize, p0: usize, len: usize) -> HostArray {
        let (strides, contiguous) = &self.load_strides[i];
        let base = self.params.load_offsets.get(i).copied().unwrap_or(0) as usize;
        let x = self.data[i].as_ref();
        if *contiguous {
            return on_array!(x, a => {
                let s = a.as_slice().expect("standard layout");
                col(s[base + p0..base + p0 + len].to_vec()).into()
            });
        }
        let st: Vec<u64> = strides.iter().map(|&s| s as u64).collect();
        let offs = offsets(&self.pshape, p0, &st, len);
        on_array!(x, a => {
            let s = a.as_slice().expect("standard layout");
            col(offs.iter().map(|&o| s[base + o as usize]).collect()).into()
        })
    }

    /// Evaluates the block of `len` elements starting at iteration position `p0`.
    fn eval(&self, p0: usize, len: usize) -> Result<HostArray> {
        let shape = [len];
        let mut vals: Vec<HostArray> = Vec::with_capacity(self.ir.insts.len());
        for (k, inst) in self.ir.insts.iter().enumerate() {
            let v = |id: u32| &vals[id as usize];
            let out = match &inst.kind {
                InstKind::Load(i) => self.load(*i as usize, p0, len),
                InstKind::Const(s) => source::full(&[], *s, inst.dtype),
                InstKind::Unary(op, a) => elementwise::unary(*op, v(*a))?,
                InstKind::Binary(op, a, b) => elementwise::binary(*op, v(*a), v(*b), &shape)?,
                InstKind::Where(c, a, b) => elementwise::where_(v(*c), v(*a), v(*b), &shape)?,
                InstKind::Cast(a) => v(*a).cast(inst.dtype),
                InstKind::Random { dist, param, .. } => {
                    let rp = self.params.random[*param as usize];
                    let (st, linear) = self.rand_strides[k].as_ref().expect("random strides");
                    if *linear {
                        source::random_range(
                            rp.seed,
                            rp.stream,
                            *dist,
                            inst.dtype,
                            rp.base + p0 as u64,
                            len,
                        )
                    } else {
                        let g: Vec<u64> = offsets(&self.pshape, p0, st, len)
                            .into_iter()
                            .map(|o| o + rp.base)
                            .collect();
                        source::random_at(rp.seed, rp.stream, *dist, inst.dtype, &g)
                    }
                }
            };
            vals.push(out);
        }
        let r = vals.swap_remove(self.ir.result as usize);
        Ok(if r.len() == len {
            r
        } else {
            on_array!(&r, a => a.broadcast(IxDyn(&shape)).expect("scalar result").to_owned().into())
        })
    }
}

fn elementwise_out<T: Elem>(plan: &Plan, n: usize) -> Result<HostArray> {
    let mut data = crate::memory::zeroed_vec::<T>(n);
    data.par_chunks_mut(BLOCK)
        .enumerate()
        .try_for_each(|(b, out)| -> Result<()> {
            let v = plan.eval(b * BLOCK, out.len())?;
            let a = v
                .as_array::<T>()
                .ok_or_else(|| Error::dtype_unsupported("fused", v.dtype()))?;
            out.copy_from_slice(a.as_slice().expect("fresh column"));
            Ok(())
        })?;
    Ok(T::wrap(
        ArrayD::from_shape_vec(IxDyn(&plan.ir.shape), data).expect("kernel shape"),
    ))
}

/// The values of a block column of dtype `T`, moved out without a copy when contiguous.
fn into_vec<T: Elem>(v: HostArray) -> Vec<T> {
    on_array!(v, a => {
        let mut slot = Some(a);
        let a = (&mut slot as &mut dyn std::any::Any)
            .downcast_mut::<Option<ArrayD<T>>>()
            .and_then(Option::take)
            .expect("result dtype");
        if a.is_standard_layout() {
            let n = a.len();
            match a.into_raw_vec_and_offset() {
                (mut v, Some(0)) => {
                    v.truncate(n);
                    v
                }
                (v, off) => {
                    let o = off.unwrap_or(0);
                    v[o..o + n].to_vec()
                }
            }
        } else {
            a.iter().copied().collect()
        }
    })
}

fn reduce_out<T: Elem>(plan: &Plan, outer: usize, inner: usize) -> Result<Vec<HostArray>> {
    let r = plan.ir.reduce.as_ref().expect("reduction tail");
    // Evaluation errors are dtype errors the fuser already excluded; surface them anyway.
    let err = std::sync::Mutex::new(None);
    let accs = reduce::reduce_rows::<T, _>(r.kind, outer, inner, |row, start, len| {
        match plan.eval(row * inner + start, len) {
            Ok(v) => Cow::Owned(into_vec::<T>(v)),
            Err(e) => {
                *err.lock().expect("error slot") = Some(e);
                Cow::Owned(vec![T::default(); len])
            }
        }
    });
    if let Some(e) = err.into_inner().expect("error slot") {
        return Err(e);
    }
    let mut fields = reduce::fields(r.kind, &accs, &plan.ir.out_shape());
    if plan.params.arg_base > 0 {
        if let Some(HostArray::I64(ix)) = fields.get_mut(1) {
            ix.mapv_inplace(|i| i + plan.params.arg_base as i64);
        }
    }
    Ok(fields)
}

/// Runs a fused kernel on host inputs; returns its output (or the partial fields).
///
/// # Errors
/// Dtype combinations the elementwise kernels reject.
pub fn run(ir: &KernelIr, params: &KernelParams, inputs: &[&HostArray]) -> Result<Vec<HostArray>> {
    let plan = Plan::new(ir, params, inputs);
    let n = ir.len();
    let dt = ir.result_dtype();
    match &ir.reduce {
        None => Ok(vec![match dt {
            DType::Bool => elementwise_out::<bool>(&plan, n)?,
            DType::I32 => elementwise_out::<i32>(&plan, n)?,
            DType::I64 => elementwise_out::<i64>(&plan, n)?,
            DType::F32 => elementwise_out::<f32>(&plan, n)?,
            DType::F64 => elementwise_out::<f64>(&plan, n)?,
        }]),
        Some(r) => {
            let inner: usize = r.axes.iter().map(|&a| ir.shape[a]).product();
            let outer = n
                .checked_div(inner)
                .unwrap_or_else(|| ir.out_shape().iter().product());
            match dt {
                DType::Bool => reduce_out::<bool>(&plan, outer, inner),
                DType::I32 => reduce_out::<i32>(&plan, outer, inner),
                DType::I64 => reduce_out::<i64>(&plan, outer, inner),
                DType::F32 => reduce_out::<f32>(&plan, outer, inner),
                DType::F64 => reduce_out::<f64>(&plan, outer, inner),
            }
        }
    }
}
