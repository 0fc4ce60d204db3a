//! CPU execution of a fused kernel (KernelIr), the numexpr design inside the chunk graph: the
//! index space is walked in blocks of a few thousand elements; each instruction writes one
//! block-sized column into a per-thread register that stays in cache, so no full-size temporary
//! is ever allocated. Blocks run in parallel (rayon); a reduction tail folds the blocks of each
//! row in order, exactly as the unfused reduction does.
//!
//! Before the first block, the plan decides where each value lives: constants (and ops of
//! constants, folded once) are scalars; contiguous inputs are read in place; every other value
//! gets a register, reused once its last reader has run (linear-scan allocation per dtype); the
//! result of an elementwise kernel is computed straight into the output buffer, which is
//! allocated uninitialized (the kernel writes every element), so a reused host buffer is never
//! zeroed first.

use crate::block::{self, Block1, Block2, Column, Dest, El, Slice, View};
use crate::elementwise;
use crate::jit;
use crate::reduce::{self, BLOCK};
use crate::source;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::Arc;
use tessera_runtime::chunk::BoundData;
use tessera_runtime::ir::{row_major_strides, InstKind, KernelIr, KernelParams};
use tessera_runtime::op::{BinaryOp, UnaryOp};
use tessera_runtime::{DType, Error, HostArray, Result};

/// Where an instruction's value lives while a block is evaluated.
#[derive(Debug)]
enum Val {
    /// Known before the kernel runs: constants, broadcast inputs and ops of those (one value).
    Scalar(Column),
    /// A contiguous input, read in place.
    Input(usize),
    /// Computed per block into register `r`.
    Reg(usize),
    /// The elementwise result, computed straight into the output buffer.
    Out,
}

/// Elements per sub-block: a block (the reduction's unit) is evaluated in pieces this long.
/// Measured on Zen 3 (2 cores): 1024 and 2048 (registers in L1) ran `(x+1)*2` and Monte Carlo
/// pi 5 to 25% slower than whole 4096-element blocks, the per-instruction dispatch costing
/// more than the L2 traffic saves, so a piece is a whole block.
const SUB: usize = BLOCK;

/// Static plans kept per thread.
const PLAN_CACHE: usize = 8;

thread_local! {
    /// Static plans of the kernels this thread ran last (the IR is held, so its address is
    /// not reused while it is a key): a graph of many small chunks of one kernel plans it once.
    static PLANS: RefCell<Vec<(Arc<KernelIr>, Arc<Static>)>> = const { RefCell::new(Vec::new()) };
    /// This thread's registers, kept from block to block and kernel to kernel.
    static REGS: RefCell<Vec<Column>> = const { RefCell::new(Vec::new()) };
}

fn internal(msg: String) -> Error {
    Error::Backend {
        backend: "cpu".into(),
        msg,
    }
}

/// Offsets `sum_d c[d] * strides[d]` of consecutive elements from flat position `p0` of
/// `pshape` (row-major), without allocating.
struct Offsets<'a> {
    pshape: &'a [usize],
    strides: &'a [u64],
    c: Vec<usize>,
    off: u64,
}

impl<'a> Offsets<'a> {
    fn new(pshape: &'a [usize], strides: &'a [u64], p0: usize) -> Self {
        let nd = pshape.len();
        let mut c = vec![0usize; nd];
        let mut r = p0;
        for d in (0..nd).rev() {
            c[d] = r % pshape[d].max(1);
            r /= pshape[d].max(1);
        }
        let off = (0..nd).map(|d| c[d] as u64 * strides[d]).sum();
        Offsets {
            pshape,
            strides,
            c,
            off,
        }
    }
}

impl Iterator for Offsets<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let here = self.off;
        for d in (0..self.pshape.len()).rev() {
            self.c[d] += 1;
            self.off = self.off.wrapping_add(self.strides[d]);
            if self.c[d] < self.pshape[d] {
                return Some(here);
            }
            self.off = self
                .off
                .wrapping_sub(self.strides[d] * self.pshape[d] as u64);
            self.c[d] = 0;
        }
        Some(here)
    }
}

/// The values an instruction reads.
fn operands(kind: &InstKind) -> Vec<u32> {
    match kind {
        InstKind::Load(_) | InstKind::Const(_) | InstKind::Random { .. } => vec![],
        InstKind::Unary(_, a) | InstKind::Cast(a) => vec![*a],
        InstKind::Binary(_, a, b) => vec![*a, *b],
        InstKind::Where(c, a, b) => vec![*c, *a, *b],
    }
}

struct Plan<'a> {
    ir: &'a KernelIr,
    params: &'a KernelParams,
    /// Input data: each load's elements in row-major order.
    data: Vec<Slice<'a>>,
    /// What depends on the kernel's structure alone (shared by every chunk of one IR).
    st: Arc<Static>,
}

/// The part of a plan that depends on the kernel's structure alone.
struct Static {
    /// Iteration shape (kept axes, then reduced axes).
    pshape: Vec<usize>,
    /// Per input: strides in iteration order.
    load_strides: Vec<Vec<u64>>,
    /// Per instruction that draws random numbers: global strides in iteration order, and
    /// whether they are the contiguous ones (global index = base + position).
    rand_strides: Vec<Option<(Vec<u64>, bool)>>,
    /// Where each instruction's value lives.
    vals: Vec<Val>,
    /// Number of registers.
    nregs: usize,
    /// The compiled body, where the kernel has one (`jit.rs`).
    jit: Option<Jit>,
}

/// A compiled body and the values it takes.
struct Jit {
    kernel: std::sync::Arc<jit::Kernel>,
    /// Per instruction: computed by the compiled body (the interpreter skips it).
    body: Vec<bool>,
    /// The instructions whose values the body reads, in ABI order.
    leaves: Vec<u32>,
}

impl Jit {
    /// The compiled body of `ir` under the placement `vals`, if it has one and the current
    /// mode wants it.
    fn new(ir: &KernelIr, vals: &[Val]) -> Option<Jit> {
        if !jit::wanted(ir.len()) || !matches!(vals.get(ir.result as usize), Some(Val::Out)) {
            return None;
        }
        // Everything the interpreter would compute, except draws and gathers, is the body.
        let body: Vec<bool> = ir
            .insts
            .iter()
            .zip(vals)
            .map(|(i, v)| {
                matches!(v, Val::Reg(_) | Val::Out)
                    && !matches!(i.kind, InstKind::Random { .. } | InstKind::Load(_))
            })
            .collect();
        let mut src = vec![None; ir.insts.len()];
        let mut leaves = Vec::new();
        let mut kinds = Vec::new();
        for (k, inst) in ir.insts.iter().enumerate() {
            if !body[k] {
                continue;
            }
            src[k] = Some(jit::Src::Body);
            for o in operands(&inst.kind) {
                let o = o as usize;
                if src[o].is_none() {
                    let dt = ir.insts[o].dtype;
                    kinds.push(match vals[o] {
                        Val::Scalar(_) => jit::Leaf::Scalar(dt),
                        _ => jit::Leaf::Col(dt),
                    });
                    src[o] = Some(jit::Src::Leaf(leaves.len()));
                    leaves.push(o as u32);
                }
            }
        }
        let source = jit::render(ir, &src, &kinds)?;
        let kernel = jit::kernel(&source)?;
        jit::note_run();
        Some(Jit {
            kernel,
            body,
            leaves,
        })
    }
}

impl<'a> Plan<'a> {
    /// Plans `ir` over `inputs`.
    ///
    /// # Errors
    /// Dtype errors of folded constant expressions.
    fn new(
        ir_arc: &'a Arc<KernelIr>,
        params: &'a KernelParams,
        inputs: &[Slice<'a>],
    ) -> Result<Self> {
        let ir: &'a KernelIr = ir_arc;
        let data = inputs.to_vec();
        // The static part is the same for every chunk of this IR unless an input is read as
        // one broadcast value (folded from the data): then it is planned per chunk.
        let cacheable = ir
            .inputs
            .iter()
            .all(|inp| inp.strides.iter().any(|&s| s != 0));
        if cacheable {
            let hit = PLANS.with_borrow(|c| {
                c.iter()
                    .rev()
                    .find(|(k, _)| Arc::ptr_eq(k, ir_arc))
                    .map(|(_, st)| st.clone())
            });
            if let Some(st) = hit {
                return Ok(Plan {
                    ir,
                    params,
                    data,
                    st,
                });
            }
        }
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
        let contiguous: Vec<u64> = row_major_strides(&pshape)
            .into_iter()
            .map(|s| s as u64)
            .collect();
        let load_strides: Vec<Vec<u64>> = ir
            .inputs
            .iter()
            .map(|inp| perm.iter().map(|&d| inp.strides[d] as u64).collect())
            .collect();
        let rand_strides = ir
            .insts
            .iter()
            .map(|i| match &i.kind {
                InstKind::Random { gstrides, .. } => {
                    let s: Vec<u64> = perm.iter().map(|&d| gstrides[d]).collect();
                    let linear = s == contiguous;
                    Some((s, linear))
                }
                _ => None,
            })
            .collect();
        let nonempty = !ir.is_empty();

        // Scalars (folded once), inputs read in place, and values that need a column.
        let mut vals: Vec<Option<Val>> = Vec::with_capacity(ir.insts.len());
        for inst in &ir.insts {
            let scalar = |v: &u32| match &vals[*v as usize] {
                Some(Val::Scalar(c)) => Some(c.to_scalar_array()),
                _ => None,
            };
            let folded = match &inst.kind {
                InstKind::Const(s) => Some(source::full(&[], *s, inst.dtype)),
                InstKind::Load(i) => {
                    let i = *i as usize;
                    let v = if nonempty && load_strides[i].iter().all(|&s| s == 0) {
                        // Broadcast everywhere: one value.
                        let base = params.load_offsets.get(i).copied().unwrap_or(0) as usize;
                        Some(Val::Scalar(Column::one_of(data[i].sub(base, 1))))
                    } else if load_strides[i] == contiguous {
                        Some(Val::Input(i))
                    } else {
                        None
                    };
                    vals.push(v);
                    continue;
                }
                InstKind::Unary(op, a) => match scalar(a) {
                    Some(x) => Some(elementwise::unary(*op, &x)?),
                    None => None,
                },
                InstKind::Cast(a) => scalar(a).map(|x| x.cast(inst.dtype)),
                InstKind::Binary(op, a, b) => match (scalar(a), scalar(b)) {
                    (Some(x), Some(y)) => Some(elementwise::binary(*op, &x, &y, &[])?),
                    _ => None,
                },
                InstKind::Where(c, a, b) => match (scalar(c), scalar(a), scalar(b)) {
                    (Some(c), Some(x), Some(y)) => Some(elementwise::where_(&c, &x, &y, &[])?),
                    _ => None,
                },
                InstKind::Random { .. } => None,
            };
            vals.push(folded.map(|h| Val::Scalar(Column::scalar_of(&h))));
        }

        // Last reader of each value (the result is read after the last instruction).
        let result = ir.result as usize;
        let mut last = vec![None::<usize>; ir.insts.len()];
        for (k, inst) in ir.insts.iter().enumerate() {
            for v in operands(&inst.kind) {
                last[v as usize] = Some(k);
            }
        }
        let result_read = last[result].is_some();
        last[result] = Some(usize::MAX);

        // Linear-scan register allocation per dtype. An instruction's register is taken
        // before its operands' registers are released, so a register is never read and
        // written by the same instruction.
        let mut free: Vec<(DType, usize)> = Vec::new();
        let mut nregs = 0;
        let mut take = |dt: DType, free: &mut Vec<(DType, usize)>| {
            if let Some(p) = free.iter().position(|&(d, _)| d == dt) {
                free.swap_remove(p).1
            } else {
                nregs += 1;
                nregs - 1
            }
        };
        let mut out = Vec::with_capacity(vals.len());
        for (k, (v, inst)) in vals.into_iter().zip(&ir.insts).enumerate() {
            let v = match v {
                Some(v) => v,
                None => {
                    let direct = !matches!(inst.kind, InstKind::Random { .. });
                    if k == result && direct && !result_read {
                        Val::Out
                    } else {
                        Val::Reg(take(inst.dtype, &mut free))
                    }
                }
            };
            out.push(v);
            let mut ops = operands(&inst.kind);
            ops.sort_unstable();
            ops.dedup();
            for o in ops {
                if last[o as usize] == Some(k) {
                    if let Val::Reg(r) = out[o as usize] {
                        free.push((ir.insts[o as usize].dtype, r));
                    }
                }
            }
        }
        let jit = Jit::new(ir, &out);
        if let Some(j) = &jit {
            // The body reads every leaf after all of them are drawn or gathered, so leaves
            // cannot share registers as they may in interpreter order: one each.
            nregs = 0;
            for (v, &b) in out.iter_mut().zip(&j.body) {
                if let (Val::Reg(r), false) = (v, b) {
                    *r = nregs;
                    nregs += 1;
                }
            }
        }
        let st = Arc::new(Static {
            pshape,
            load_strides,
            rand_strides,
            vals: out,
            nregs,
            jit,
        });
        if cacheable {
            PLANS.with_borrow_mut(|c| {
                if c.len() >= PLAN_CACHE {
                    c.remove(0);
                }
                c.push((ir_arc.clone(), st.clone()));
            });
        }
        Ok(Plan {
            ir,
            params,
            data,
            st,
        })
    }

    fn base(&self, i: usize) -> usize {
        self.params.load_offsets.get(i).copied().unwrap_or(0) as usize
    }

    /// Value `v` for the block of `len` elements at iteration position `p0`.
    fn view<'s>(&'s self, regs: &'s [Column], v: u32, p0: usize, len: usize) -> Result<View<'s>> {
        Ok(match &self.st.vals[v as usize] {
            Val::Scalar(c) => View::Scalar(c.slice(1)),
            Val::Input(i) => View::Col(self.data[*i].sub(self.base(*i) + p0, len)),
            Val::Reg(r) => View::Col(regs[*r].slice(len)),
            Val::Out => {
                return Err(internal(format!(
                    "fused kernel reads value {v}, which only the output holds"
                )))
            }
        })
    }

    /// Computes instruction `k` (not a random draw) into `out`.
    fn exec(&self, k: usize, regs: &[Column], p0: usize, len: usize, out: Dest<'_>) -> Result<()> {
        let v = |id: &u32| self.view(regs, *id, p0, len);
        match &self.ir.insts[k].kind {
            InstKind::Load(i) => {
                let i = *i as usize;
                let offs = Offsets::new(&self.st.pshape, &self.st.load_strides[i], p0);
                block::gather(self.data[i], self.base(i), offs, out)
            }
            InstKind::Unary(op, a) => unary(*op, v(a)?, out),
            InstKind::Binary(op, a, b) => binary(*op, v(a)?, v(b)?, out),
            InstKind::Where(c, a, b) => block::where_(v(c)?, v(a)?, v(b)?, out),
            InstKind::Cast(a) => block::cast(v(a)?, out),
            InstKind::Const(_) | InstKind::Random { .. } => Err(internal(format!(
                "fused kernel: instruction {k} has no block form"
            ))),
        }
    }

    /// Draws random instruction `k` into register column `col`.
    fn random(&self, k: usize, p0: usize, len: usize, col: &mut Column) -> Result<()> {
        let InstKind::Random { dist, param, .. } = &self.ir.insts[k].kind else {
            return Err(internal(format!("instruction {k} is not a random draw")));
        };
        let rp = self.params.random[*param as usize];
        let (st, linear) = self.st.rand_strides[k].as_ref().expect("random strides");
        if *linear {
            return source::random_block(rp.seed, rp.stream, *dist, rp.base + p0 as u64, len, col);
        }
        let g: Vec<u64> = Offsets::new(&self.st.pshape, st, p0)
            .take(len)
            .map(|o| o + rp.base)
            .collect();
        let h = source::random_at(rp.seed, rp.stream, *dist, col.dtype(), &g);
        block::copy(View::Col(Slice::of_host(&h, 0, len)), col.dest(len))
    }

    /// Evaluates every column-valued instruction of the block at `p0`; the result goes to
    /// `out` when the plan computes it there.
    fn compute(
        &self,
        regs: &mut [Column],
        p0: usize,
        len: usize,
        mut out: Option<Dest<'_>>,
    ) -> Result<()> {
        for (k, inst) in self.ir.insts.iter().enumerate() {
            if self.st.jit.as_ref().is_some_and(|j| j.body[k]) {
                continue;
            }
            match self.st.vals[k] {
                Val::Reg(r) => {
                    // The register is moved out while the instruction runs, so its operands
                    // (other registers) stay readable.
                    let mut col = std::mem::take(&mut regs[r]);
                    col.ensure(inst.dtype, len);
                    let res = if matches!(inst.kind, InstKind::Random { .. }) {
                        self.random(k, p0, len, &mut col)
                    } else {
                        self.exec(k, regs, p0, len, col.dest(len))
                    };
                    regs[r] = col;
                    res?;
                }
                Val::Out => {
                    let dest = out
                        .take()
                        .ok_or_else(|| internal("fused kernel: no output block".into()))?;
                    self.exec(k, regs, p0, len, dest)?;
                }
                Val::Scalar(_) | Val::Input(_) => {}
            }
        }
        if let Some(j) = &self.st.jit {
            let dest = out
                .take()
                .ok_or_else(|| internal("fused kernel: no output block".into()))?;
            let want = self.ir.result_dtype();
            if dest.dtype() != want || dest_len(&dest) != len {
                return Err(internal(format!(
                    "compiled kernel: output block is {} x {}, expected {want} x {len}",
                    dest.dtype(),
                    dest_len(&dest)
                )));
            }
            let mut ptrs = [std::ptr::null::<std::ffi::c_void>(); jit::MAX_LEAVES];
            for (p, &v) in ptrs.iter_mut().zip(&j.leaves) {
                *p = match self.view(regs, v, p0, len)? {
                    View::Col(s) => {
                        if block::slice_len(&s) != len {
                            return Err(internal(format!("compiled kernel: leaf {v} is short")));
                        }
                        block::slice_ptr(&s)
                    }
                    View::Scalar(s) => block::slice_ptr(&s),
                };
            }
            // SAFETY: every leaf pointer comes from a slice of its instruction's dtype (the
            // dtype the body was rendered with) holding `len` values (a column, checked
            // above) or one value (a scalar, `Column::one_of`/`scalar_of` hold one); `dest`
            // holds `len` writable slots of the result dtype (checked above); the body
            // writes each of them once and reads nothing else.
            unsafe { j.kernel.call(len, &ptrs, block::dest_ptr(dest)) };
        }
        Ok(())
    }

    /// Evaluates the block at `p0` into `dest`, in sub-blocks of [`SUB`] elements so that
    /// every register of a sub-block stays in L1.
    fn block_into(&self, regs: &mut [Column], p0: usize, dest: Dest<'_>) -> Result<()> {
        let result = self.ir.result;
        let len = dest_len(&dest);
        let mut rest = dest;
        let mut s = 0;
        while s < len {
            let m = SUB.min(len - s);
            let (here, tail) = rest.split_at(m);
            rest = tail;
            if let Val::Out = self.st.vals[result as usize] {
                self.compute(regs, p0 + s, m, Some(here))?;
            } else {
                self.compute(regs, p0 + s, m, None)?;
                block::copy(self.view(regs, result, p0 + s, m)?, here)?;
            }
            s += m;
        }
        Ok(())
    }
}

fn dest_len(d: &Dest<'_>) -> usize {
    block::on_typed!(Dest, d, x => x.len())
}

/// `op(a)` over one block.
fn unary(op: UnaryOp, a: View<'_>, out: Dest<'_>) -> Result<()> {
    let name = op.name();
    fn arg<'x, T: El>(a: View<'x>, out: Dest<'x>, op: &'static str) -> Result<Block1<'x, T>> {
        Ok(Block1 {
            a: a.typed::<T>(op)?,
            out,
            op,
        })
    }
    match a.dtype() {
        DType::F32 => elementwise::float_unary(op, arg::<f32>(a, out, name)?)?,
        DType::F64 => elementwise::float_unary(op, arg::<f64>(a, out, name)?)?,
        DType::I32 => elementwise::int_unary(op, arg::<i32>(a, out, name)?)?,
        DType::I64 => elementwise::int_unary(op, arg::<i64>(a, out, name)?)?,
        DType::Bool => elementwise::bool_unary(op, arg::<bool>(a, out, name)?)?,
    }
}

/// `op(a, b)` over one block; the operands share a dtype.
fn binary(op: BinaryOp, a: View<'_>, b: View<'_>, out: Dest<'_>) -> Result<()> {
    let name = op.name();
    if a.dtype() != b.dtype() {
        return Err(Error::UnsupportedDType {
            op: name.into(),
            dtypes: vec![a.dtype(), b.dtype()],
        });
    }
    fn args<'x, T: El>(
        a: View<'x>,
        b: View<'x>,
        out: Dest<'x>,
        op: &'static str,
    ) -> Result<Block2<'x, T>> {
        Ok(Block2 {
            a: a.typed::<T>(op)?,
            b: b.typed::<T>(op)?,
            out,
            op,
        })
    }
    match a.dtype() {
        DType::F32 => elementwise::float_binary(op, args::<f32>(a, b, out, name)?)?,
        DType::F64 => elementwise::float_binary(op, args::<f64>(a, b, out, name)?)?,
        DType::I32 => elementwise::int_binary(op, args::<i32>(a, b, out, name)?)?,
        DType::I64 => elementwise::int_binary(op, args::<i64>(a, b, out, name)?)?,
        DType::Bool => elementwise::bool_binary(op, args::<bool>(a, b, out, name)?)?,
    }
}

/// This thread's registers, with room for `n` of them.
fn with_regs<R>(n: usize, f: impl FnOnce(&mut [Column]) -> R) -> R {
    REGS.with_borrow_mut(|regs| {
        if regs.len() < n {
            regs.resize_with(n, Column::default);
        }
        f(regs)
    })
}

fn elementwise_out<T: El>(plan: &Plan, n: usize) -> Result<HostArray> {
    let mut data = crate::memory::uninit_vec::<T>(n);
    if n <= BLOCK {
        // One block: on this thread (a parallel iterator of one item costs more than a tiny
        // chunk's kernel).
        with_regs(plan.st.nregs, |regs| {
            plan.block_into(regs, 0, T::to_dest(&mut data.spare_capacity_mut()[..n]))
        })?;
    } else {
        data.spare_capacity_mut()[..n]
            .par_chunks_mut(BLOCK)
            .enumerate()
            .try_for_each(|(b, out)| {
                with_regs(plan.st.nregs, |regs| {
                    plan.block_into(regs, b * BLOCK, T::to_dest(out))
                })
            })?;
    }
    // SAFETY: the capacity is at least n, and every block of [0, n) was written: the single
    // block_into (n <= BLOCK) or try_for_each over all blocks returned Ok, so block_into
    // succeeded for each, and a successful block_into writes every element of its destination
    // (each loop writes one value per destination slot).
    unsafe { data.set_len(n) };
    Ok(T::wrap(
        ArrayD::from_shape_vec(IxDyn(&plan.ir.shape), data).expect("kernel shape"),
    ))
}

fn reduce_out<T: El>(plan: &Plan, outer: usize, inner: usize) -> Result<Vec<HostArray>> {
    let r = plan.ir.reduce.as_ref().expect("reduction tail");
    // The block's values go to one more register, which the reduction then reads.
    let res = plan.st.nregs;
    let accs = reduce::reduce_rows::<T, _>(r.kind, outer, inner, |row, start, len| {
        with_regs(res + 1, |regs| {
            let mut col = std::mem::take(&mut regs[res]);
            col.ensure(T::DTYPE, len);
            let done = plan.block_into(regs, row * inner + start, col.dest(len));
            regs[res] = col;
            done?;
            let vals = T::slice(regs[res].slice(len)).expect("register of the result dtype");
            Ok(reduce::block_acc(r.kind, vals, start as u64))
        })
    })?;
    let mut fields = reduce::fields(r.kind, &accs, &plan.ir.out_shape());
    if plan.params.arg_base > 0 {
        if let Some(HostArray::I64(ix)) = fields.get_mut(1) {
            ix.mapv_inplace(|i| i + plan.params.arg_base as i64);
        }
    }
    Ok(fields)
}

/// Runs a fused chunk task: load `k` reads the bound data of index `k` where `bound` has one
/// (user data read in place), else the next of `chunks` (the task's chunk inputs, in order).
/// Returns its output (or the partial fields).
///
/// # Errors
/// Fewer chunks than unbound loads; dtype combinations the elementwise kernels reject.
pub fn run_task(
    ir: &Arc<KernelIr>,
    params: &KernelParams,
    bound: &[(usize, BoundData)],
    chunks: &[&HostArray],
) -> Result<Vec<HostArray>> {
    enum In<'a> {
        Chunk(&'a HostArray),
        Bound(&'a BoundData),
    }
    let mut next = chunks.iter();
    let ins: Vec<In<'_>> = (0..ir.inputs.len())
        .map(|k| match bound.iter().find(|(i, _)| *i == k) {
            Some((_, data)) => Ok(In::Bound(data)),
            None => next.next().map(|c| In::Chunk(c)).ok_or_else(|| {
                internal(format!(
                    "fused kernel with {} loads got {} chunk inputs and {} bound",
                    ir.inputs.len(),
                    chunks.len(),
                    bound.len()
                ))
            }),
        })
        .collect::<Result<_>>()?;
    // A chunk in another layout, and bound data not in memory in row-major order, are copied
    // to row-major order first.
    let copies: Vec<Option<HostArray>> = ins
        .iter()
        .map(|x| match x {
            In::Chunk(a) if Slice::of(a).is_none() => Ok(Some(a.reshape(a.shape()))),
            In::Bound(b) if b.flat().is_none() => b.window(0, b.len()).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    let slices: Vec<Slice<'_>> = ins
        .iter()
        .zip(&copies)
        .map(|(x, c)| match (c, x) {
            (Some(c), _) => Slice::of(c),
            (None, In::Chunk(a)) => Slice::of(a),
            (None, In::Bound(b)) => b.flat(),
        })
        .map(|s| s.ok_or_else(|| internal("fused kernel input not in row-major order".into())))
        .collect::<Result<_>>()?;
    run(ir, params, &slices)
}

/// Runs a fused kernel on inputs in row-major order; returns its output (or the partial
/// fields).
///
/// # Errors
/// Dtype combinations the elementwise kernels reject.
pub fn run(
    ir: &Arc<KernelIr>,
    params: &KernelParams,
    inputs: &[Slice<'_>],
) -> Result<Vec<HostArray>> {
    let n = ir.len();
    let dt = ir.result_dtype();
    let plan = Plan::new(ir, params, inputs)?;
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
