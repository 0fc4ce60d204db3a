//! KernelIr: one fused kernel, the same for every backend. Input: a chain of elementwise chunk
//! ops (plus random sources and an optional reduction tail) chosen by the Fuser. Output: the
//! CPU interprets it block-wise; the renderers (tessera-kernels) turn it into WGSL or CUDA C.
//!
//! Semantics. The kernel runs over an index space `shape` (row-major). Element `e` has
//! coordinates `c = unravel(e, shape)`. Instruction values are per element, in SSA order:
//! - `Load(i)` reads input buffer `i` (a contiguous row-major array) at offset
//!   `params.load_offsets[i] + sum_d c[d] * inputs[i].strides[d]` (stride 0 on broadcast axes);
//! - `Const`, `Unary`, `Binary`, `Where`, `Cast` follow the CPU backend's numpy semantics (see
//!   `op.rs`): the operands of `Binary` already share a dtype;
//! - `Random { dist, gstrides, param }` draws from Philox4x32-10 with key `(seed, stream)` of
//!   `params.random[param]` at global index `g = base + sum_d c[d] * gstrides[d]` (see `philox.rs`
//!   for the exact bit recipe per dist and dtype).
//!
//! Without `reduce`, the value `result` of every element is stored to output 0 (shape `shape`,
//! dtype of `result`). With `reduce`, the elements are reduced over `reduce.axes` and the kernel
//! stores the same partial fields as the CPU's `ReducePartial` / `ArgPartial` (shape `shape`
//! with the reduced axes set to 1): field dtypes from `tile::partial_dtype`, var/std as (mean, M2)
//! in f64, arg as (value, global index along the axis = `params.arg_base` + local index).
//! `params` are per-chunk run-time values; everything else is structure, hashed into the
//! `KernelKey` so one compiled kernel serves every chunk of the same shape.

use crate::dtype::{DType, Scalar};
use crate::error::Result;
use crate::op::{ArgOp, BinaryOp, Dist, ReduceOp, UnaryOp};
use std::hash::{Hash, Hasher};

/// Index of an instruction (its value) in a kernel.
pub type ValueId = u32;

/// One input buffer of a kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IrInput {
    /// Element dtype.
    pub dtype: DType,
    /// Element stride per index-space axis (0 where the input is broadcast).
    pub strides: Vec<usize>,
}

/// What an instruction computes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InstKind {
    /// Element of input buffer `i`.
    Load(u32),
    /// A constant.
    Const(Scalar),
    /// Unary op.
    Unary(UnaryOp, ValueId),
    /// Binary op (operands share a dtype).
    Binary(BinaryOp, ValueId, ValueId),
    /// `c ? a : b`.
    Where(ValueId, ValueId, ValueId),
    /// Cast to the instruction dtype.
    Cast(ValueId),
    /// Counter-based random value.
    Random {
        /// Distribution.
        dist: Dist,
        /// Global-index stride per index-space axis.
        gstrides: Vec<u64>,
        /// Index into `KernelParams::random`.
        param: u32,
    },
}

/// An SSA instruction with its result dtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Inst {
    /// Operation.
    pub kind: InstKind,
    /// Result dtype.
    pub dtype: DType,
}

/// The reduction tail of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReduceKind {
    /// sum, prod, mean, var/std partials, min, max, any, all.
    Reduce(ReduceOp),
    /// argmin/argmax over one axis.
    Arg(ArgOp),
}

/// A reduction over some axes of the index space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IrReduce {
    /// Which reduction.
    pub kind: ReduceKind,
    /// Axes reduced (sorted; exactly one for `Arg`).
    pub axes: Vec<usize>,
}

/// A fused kernel (structure only; per-chunk values are in `KernelParams`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KernelIr {
    /// Index space.
    pub shape: Vec<usize>,
    /// Input buffers.
    pub inputs: Vec<IrInput>,
    /// Instructions, operands before users.
    pub insts: Vec<Inst>,
    /// The value stored (or reduced).
    pub result: ValueId,
    /// Optional reduction tail.
    pub reduce: Option<IrReduce>,
}

/// Key and base of one random source.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct RandomParam {
    /// Philox key.
    pub seed: u64,
    /// Draw number (counter words 2 and 3).
    pub stream: u64,
    /// Global index of the chunk's first element.
    pub base: u64,
}

/// Run-time values of one launch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct KernelParams {
    /// One per `Random` param index.
    pub random: Vec<RandomParam>,
    /// Global index of the first element along the arg-reduction axis.
    pub arg_base: u64,
    /// Element offset added to every load of each input (a load may read a window of a larger
    /// buffer, e.g. a chunk of user data read in place). Empty means all zero.
    pub load_offsets: Vec<u64>,
}

/// Hash of a kernel's structure (IR + dtypes), for compile caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelKey(pub u64);

impl KernelIr {
    /// Number of elements of the index space.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when the index space is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The compile-cache key (FNV-1a over the structure; stable across runs).
    pub fn key(&self) -> KernelKey {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        self.hash(&mut h);
        KernelKey(h.0)
    }
    /// Dtype of the result value.
    pub fn result_dtype(&self) -> DType {
        self.insts[self.result as usize].dtype
    }
    /// Shape of the output (reduced axes kept as 1).
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = self.shape.clone();
        if let Some(r) = &self.reduce {
            for &a in &r.axes {
                s[a] = 1;
            }
        }
        s
    }
    /// Row-major strides of the index space.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        row_major_strides(&self.shape)
    }
}

/// Row-major strides of `shape`.
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Turns a kernel into source text for a device compiler.
pub trait Renderer {
    /// Short name ("wgsl", "cuda").
    fn name(&self) -> &str;
    /// Renders `ir` to source.
    ///
    /// # Errors
    /// `Error::Unsupported` for dtypes or ops the target language lacks.
    fn render(&self, ir: &KernelIr) -> Result<String>;
}
