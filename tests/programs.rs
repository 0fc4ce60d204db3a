//! Random programs over the whole Tensor API, run in many configurations and checked against an
//! independent reference (issue 15: "a property-based test that keeps this fixed").
//!
//! Each case is a short program (sources, then up to a few ops) built from random words. It runs
//! under: lazy and eager mode, fusion on and off, the in-memory executor and the Scheduler on
//! several virtual CPU devices with tight budgets, two random chunkings and the default one.
//! Checks:
//! - every configuration gives the same bits, and the same typed error for a rejected op;
//! - results match a reference evaluator written here on ndarray (numpy's semantics: NEP 50
//!   promotion, wrapping integers, numpy's floor division and modulo), exactly where Tessera
//!   promises exact results, within a tracked error bound where rounding order may differ
//!   (float reductions and matrix products: see `Bound`);
//! - nothing panics and no case hangs (each case runs on a thread with a time limit).
//!
//! `TESSERA_PROPTEST_CASES` sets the number of cases (default `DEFAULT_CASES`).

use ndarray::{ArrayD, Dimension, IxDyn};
use proptest::prelude::*;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tessera::op::{BinaryOp, ReduceOp, UnaryOp};
use tessera::{
    concatenate, stack, Backend, CpuBackend, DType, Error, HostArray, MemoryConfig, Operand,
    Scalar, Session, SliceArg, Tensor,
};

const DEFAULT_CASES: u32 = 128;
/// A case that runs longer than this is a hang.
const CASE_LIMIT: Duration = Duration::from_secs(60);
/// Upper bound on the elements of one generated tensor.
const MAX_ELEMS: usize = 2048;

// ============================================================================================
// Host values of the reference
// ============================================================================================

/// A typed n-d array of the reference (the five dtypes).
#[derive(Clone, Debug)]
enum V {
    B(ArrayD<bool>),
    I(ArrayD<i32>),
    L(ArrayD<i64>),
    F(ArrayD<f32>),
    D(ArrayD<f64>),
}

macro_rules! each {
    ($v:expr, $x:ident => $e:expr) => {
        match $v {
            V::B($x) => $e,
            V::I($x) => $e,
            V::L($x) => $e,
            V::F($x) => $e,
            V::D($x) => $e,
        }
    };
}
macro_rules! each_v {
    ($v:expr, $x:ident => $e:expr) => {
        match $v {
            V::B($x) => V::B($e),
            V::I($x) => V::I($e),
            V::L($x) => V::L($e),
            V::F($x) => V::F($e),
            V::D($x) => V::D($e),
        }
    };
}

/// A scalar in a widest form: casts between dtypes go through it without loss.
#[derive(Clone, Copy, Debug)]
enum R {
    B(bool),
    I(i64),
    F(f64),
}

trait El: Copy + Default + std::fmt::Debug + PartialOrd + Send + Sync + 'static {
    fn r(self) -> R;
    /// numpy's `astype` (float to int saturates, NaN to 0: Tessera's documented cast).
    fn from_r(r: R) -> Self;
    fn wrap(a: ArrayD<Self>) -> V;
}
impl El for bool {
    fn r(self) -> R {
        R::B(self)
    }
    fn from_r(r: R) -> Self {
        match r {
            R::B(b) => b,
            R::I(i) => i != 0,
            R::F(f) => f != 0.0,
        }
    }
    fn wrap(a: ArrayD<Self>) -> V {
        V::B(a)
    }
}
macro_rules! el_int {
    ($t:ty, $var:ident) => {
        impl El for $t {
            fn r(self) -> R {
                R::I(self as i64)
            }
            fn from_r(r: R) -> Self {
                match r {
                    R::B(b) => b as $t,
                    R::I(i) => i as $t,
                    R::F(f) => f as $t,
                }
            }
            fn wrap(a: ArrayD<Self>) -> V {
                V::$var(a)
            }
        }
    };
}
el_int!(i32, I);
el_int!(i64, L);
macro_rules! el_float {
    ($t:ty, $var:ident) => {
        impl El for $t {
            fn r(self) -> R {
                R::F(self as f64)
            }
            fn from_r(r: R) -> Self {
                match r {
                    R::B(b) => b as u8 as $t,
                    R::I(i) => i as $t,
                    R::F(f) => f as $t,
                }
            }
            fn wrap(a: ArrayD<Self>) -> V {
                V::$var(a)
            }
        }
    };
}
el_float!(f32, F);
el_float!(f64, D);

impl V {
    fn dtype(&self) -> DType {
        match self {
            V::B(_) => DType::Bool,
            V::I(_) => DType::I32,
            V::L(_) => DType::I64,
            V::F(_) => DType::F32,
            V::D(_) => DType::F64,
        }
    }
    fn shape(&self) -> &[usize] {
        each!(self, a => a.shape())
    }
    fn len(&self) -> usize {
        each!(self, a => a.len())
    }
    fn cast(&self, dt: DType) -> V {
        fn go<T: El>(a: &ArrayD<T>, dt: DType) -> V {
            match dt {
                DType::Bool => V::B(a.mapv(|x| bool::from_r(x.r()))),
                DType::I32 => V::I(a.mapv(|x| i32::from_r(x.r()))),
                DType::I64 => V::L(a.mapv(|x| i64::from_r(x.r()))),
                DType::F32 => V::F(a.mapv(|x| f32::from_r(x.r()))),
                DType::F64 => V::D(a.mapv(|x| f64::from_r(x.r()))),
            }
        }
        each!(self, a => go(a, dt))
    }
    fn to_f64(&self) -> ArrayD<f64> {
        match self.cast(DType::F64) {
            V::D(a) => a,
            _ => unreachable!(),
        }
    }
    /// Largest finite magnitude (0 when there is none).
    fn mag(&self) -> f64 {
        self.to_f64()
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0, |m, x| m.max(x.abs()))
    }
    fn reshape(&self, shape: &[usize]) -> V {
        each_v!(self, a => {
            let flat: Vec<_> = a.iter().cloned().collect();
            ArrayD::from_shape_vec(IxDyn(shape), flat).unwrap()
        })
    }
    /// `out[idx] = self[map(idx)]` over `shape`.
    fn gather(&self, shape: &[usize], map: impl Fn(&[usize]) -> Vec<usize>) -> V {
        fn go<T: El>(
            a: &ArrayD<T>,
            shape: &[usize],
            map: &dyn Fn(&[usize]) -> Vec<usize>,
        ) -> ArrayD<T> {
            ArrayD::from_shape_fn(IxDyn(shape), |ix| a[IxDyn(&map(ix.slice()))])
        }
        each_v!(self, a => go(a, shape, &map))
    }
    fn from_host(h: &HostArray) -> V {
        match h {
            HostArray::Bool(a) => V::B(a.clone()),
            HostArray::I32(a) => V::I(a.clone()),
            HostArray::I64(a) => V::L(a.clone()),
            HostArray::F32(a) => V::F(a.clone()),
            HostArray::F64(a) => V::D(a.clone()),
        }
    }
    fn flat_r(&self) -> Vec<R> {
        each!(self, a => a.iter().map(|x| x.r()).collect())
    }
}

fn np_dtype(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::I32 => "int32",
        DType::I64 => "int64",
        DType::F32 => "float32",
        DType::F64 => "float64",
    }
}

fn fmt_r(r: R) -> String {
    match r {
        R::B(b) => if b { "True" } else { "False" }.into(),
        R::I(i) => i.to_string(),
        R::F(f) if f.is_nan() => "nan".into(),
        R::F(f) if f.is_infinite() => if f > 0.0 { "inf" } else { "-inf" }.into(),
        R::F(f) => format!("{f:?}"),
    }
}

fn fmt_v(v: &V) -> String {
    let vals = v.flat_r();
    let mut body: Vec<String> = vals.iter().take(32).map(|&r| fmt_r(r)).collect();
    if vals.len() > 32 {
        body.push(format!("... ({} values)", vals.len()));
    }
    format!(
        "np.array([{}], dtype=np.{}).reshape({})",
        body.join(", "),
        np_dtype(v.dtype()),
        fmt_shape(v.shape())
    )
}

fn fmt_shape(s: &[usize]) -> String {
    match s.len() {
        1 => format!("({},)", s[0]),
        _ => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ============================================================================================
// numpy's dtype rules, written out independently of Tessera's
// ============================================================================================

/// A Python scalar operand (weak, NEP 50).
#[derive(Clone, Copy, Debug)]
enum Sc {
    B(bool),
    I(i64),
    F(f64),
}

impl Sc {
    fn r(self) -> R {
        match self {
            Sc::B(b) => R::B(b),
            Sc::I(i) => R::I(i),
            Sc::F(f) => R::F(f),
        }
    }
    fn tess(self) -> Scalar {
        match self {
            Sc::B(b) => Scalar::Bool(b),
            Sc::I(i) => Scalar::Int(i),
            Sc::F(f) => Scalar::Float(f),
        }
    }
    fn default_dtype(self) -> DType {
        match self {
            Sc::B(_) => DType::Bool,
            Sc::I(_) => DType::I64,
            Sc::F(_) => DType::F64,
        }
    }
    fn py(self) -> String {
        match self {
            Sc::F(f) if f.is_nan() => "float('nan')".into(),
            Sc::F(f) if f.is_infinite() => {
                format!("float('{}inf')", if f < 0.0 { "-" } else { "" })
            }
            s => fmt_r(s.r()),
        }
    }
    fn to_v(self, dt: DType) -> V {
        V::D(ArrayD::from_elem(IxDyn(&[]), 0.0))
            .cast(dt)
            .map_r(|_| self.r())
    }
}

impl V {
    /// Replaces every element by `f(element)` cast back to this dtype.
    fn map_r(&self, f: impl Fn(R) -> R) -> V {
        each_v!(self, a => a.mapv(|x| El::from_r(f(x.r()))))
    }
}

fn is_int(d: DType) -> bool {
    matches!(d, DType::I32 | DType::I64)
}
fn is_float(d: DType) -> bool {
    matches!(d, DType::F32 | DType::F64)
}

/// numpy's `result_type` of two arrays.
fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    match (a, b) {
        (Bool, x) | (x, Bool) => x,
        (I32, I64) | (I64, I32) => I64,
        (F32, F64) | (F64, F32) => F64,
        // An int32/int64 with float32 needs float64 to hold every integer.
        _ => F64,
    }
}

/// NEP 50: the array's dtype wins unless the scalar's kind is higher.
fn promote_weak(d: DType, s: Sc) -> DType {
    match s {
        Sc::B(_) => d,
        Sc::I(_) if d == DType::Bool => DType::I64,
        Sc::I(_) => d,
        Sc::F(_) if is_float(d) => d,
        Sc::F(_) => DType::F64,
    }
}

fn is_compare(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, Eq | Ne | Lt | Le | Gt | Ge)
}
fn is_logical(op: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(op, And | Or | Xor)
}

/// (compute dtype, result dtype) of a binary ufunc given the promoted dtype.
fn binary_dtypes(op: BinaryOp, p: DType) -> Result<(DType, DType), String> {
    use BinaryOp::*;
    Ok(match op {
        Div if p == DType::F32 => (p, p),
        Div => (DType::F64, DType::F64),
        _ if is_logical(op) => (DType::Bool, DType::Bool),
        Sub if p == DType::Bool => return Err("subtract of booleans".into()),
        // README deviation: numpy computes these in int8, Tessera in int32.
        FloorDiv | Mod | Pow if p == DType::Bool => (DType::I32, DType::I32),
        _ if is_compare(op) => (p, DType::Bool),
        _ => (p, p),
    })
}

fn is_transcendental(op: UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(
        op,
        Sqrt | Exp | Log | Log1p | Expm1 | Sin | Cos | Tan | Tanh | Arcsin | Arccos | Arctan
    )
}

/// (compute dtype, result dtype) of a unary ufunc.
fn unary_dtypes(op: UnaryOp, d: DType) -> Result<(DType, DType), String> {
    use UnaryOp::*;
    Ok(match op {
        // README deviation: bool gives float32 (numpy float16).
        _ if is_transcendental(op) => {
            let f = match d {
                DType::Bool | DType::F32 => DType::F32,
                _ => DType::F64,
            };
            (f, f)
        }
        Neg | Sign if d == DType::Bool => return Err(format!("{op:?} of booleans")),
        // README deviation: numpy rounds bool in float16, Tessera in float32.
        Round if d == DType::Bool => (DType::F32, DType::F32),
        LogicalNot => (DType::Bool, DType::Bool),
        IsNan | IsInf | IsFinite => (d, DType::Bool),
        _ => (d, d),
    })
}

// ============================================================================================
// Error bounds
// ============================================================================================

/// How far Tessera's result may be from the reference, elementwise, in absolute terms:
/// `Some(0.0)` exact (same IEEE operations, or integers), `Some(e)` within `e` (float sums,
/// means, variances and matrix products: their accumulation order follows the chunking; f32
/// sums accumulate in f64 and come out bit-identical in practice, but float64 var/std (Chan's
/// merge) and matrix products accumulated per K chunk do differ in the last bits between
/// chunkings, so configurations are compared within the bound there too), `None` not comparable (a discontinuous op such as a comparison,
/// floor or cast to int applied to an inexact value can legitimately flip).
type Bound = Option<f64>;

/// Unit roundoff of a float dtype.
fn unit(d: DType) -> f64 {
    match d {
        DType::F32 => f32::EPSILON as f64 / 2.0,
        _ => f64::EPSILON / 2.0,
    }
}
/// Smallest subnormal of a float dtype.
fn tiny(d: DType) -> f64 {
    match d {
        DType::F32 => f32::from_bits(1) as f64,
        _ => f64::from_bits(1),
    }
}
/// One rounding to `d` of a value of magnitude `m`.
fn rounding(d: DType, m: f64) -> f64 {
    if is_float(d) {
        2.0 * unit(d) * m + tiny(d)
    } else {
        0.0
    }
}
fn finite(b: Bound) -> Bound {
    b.filter(|e| e.is_finite())
}

/// A reference value: the data and how closely Tessera must match it.
#[derive(Clone, Debug)]
struct RVal {
    v: V,
    err: Bound,
}

// ============================================================================================
// Programs
// ============================================================================================

#[derive(Clone, Debug)]
enum Src {
    Host(V),
    /// `Generator::rand` (uniform) / `randn` (normal) / `randint`; `skip` draws come first.
    Rand {
        seed: u64,
        skip: u8,
        normal: bool,
        dtype: DType,
    },
    RandInt {
        seed: u64,
        low: i64,
        high: i64,
        dtype: DType,
    },
    Arange {
        start: f64,
        stop: f64,
        step: f64,
        dtype: DType,
    },
    Linspace {
        start: f64,
        stop: f64,
        num: usize,
        endpoint: bool,
        dtype: DType,
    },
    Full {
        value: Sc,
        dtype: DType,
    },
    Eye {
        n: usize,
        m: Option<usize>,
        k: i64,
        dtype: DType,
    },
}

#[derive(Clone, Copy, Debug)]
enum Arg {
    T(usize),
    S(Sc),
}

/// Chunk hints of chunking A and B (`None`: the automatic chunking).
type Hints = [Option<Vec<usize>>; 2];

#[derive(Clone, Debug)]
enum Stmt {
    Source {
        src: Src,
        shape: Vec<usize>,
        chunks: Hints,
    },
    Binary {
        op: BinaryOp,
        a: Arg,
        b: Arg,
    },
    Unary {
        op: UnaryOp,
        a: usize,
    },
    Where {
        c: usize,
        a: Arg,
        b: Arg,
    },
    Clip {
        a: usize,
        lo: Arg,
        hi: Arg,
    },
    Astype {
        a: usize,
        dtype: DType,
    },
    Reduce {
        op: ReduceOp,
        a: usize,
        axes: Option<Vec<isize>>,
        keepdims: bool,
        ddof: u32,
    },
    ArgRed {
        max: bool,
        a: usize,
        axis: Option<isize>,
    },
    Reshape {
        a: usize,
        shape: Vec<isize>,
    },
    Transpose {
        a: usize,
        perm: Option<Vec<isize>>,
    },
    Swapaxes {
        a: usize,
        i: isize,
        j: isize,
    },
    ExpandDims {
        a: usize,
        axis: isize,
    },
    Squeeze {
        a: usize,
        axes: Option<Vec<isize>>,
    },
    BroadcastTo {
        a: usize,
        shape: Vec<usize>,
    },
    Slice {
        a: usize,
        args: Vec<SliceArg>,
    },
    Concat {
        xs: Vec<usize>,
        axis: isize,
    },
    Stack {
        xs: Vec<usize>,
        axis: isize,
    },
    Matmul {
        a: usize,
        b: usize,
    },
    Dot {
        a: usize,
        b: usize,
    },
    Tensordot {
        a: usize,
        b: usize,
        aa: Vec<isize>,
        ab: Vec<isize>,
    },
    Rechunk {
        a: usize,
        chunks: Hints,
    },
}

impl Stmt {
    fn inputs(&self) -> Vec<usize> {
        let arg = |a: &Arg| match a {
            Arg::T(i) => vec![*i],
            Arg::S(_) => vec![],
        };
        match self {
            Stmt::Source { .. } => vec![],
            Stmt::Binary { a, b, .. } => [arg(a), arg(b)].concat(),
            Stmt::Where { c, a, b } => [vec![*c], arg(a), arg(b)].concat(),
            Stmt::Clip { a, lo, hi } => [vec![*a], arg(lo), arg(hi)].concat(),
            Stmt::Concat { xs, .. } | Stmt::Stack { xs, .. } => xs.clone(),
            Stmt::Matmul { a, b } | Stmt::Dot { a, b } | Stmt::Tensordot { a, b, .. } => {
                vec![*a, *b]
            }
            Stmt::Unary { a, .. }
            | Stmt::Astype { a, .. }
            | Stmt::Reduce { a, .. }
            | Stmt::ArgRed { a, .. }
            | Stmt::Reshape { a, .. }
            | Stmt::Transpose { a, .. }
            | Stmt::Swapaxes { a, .. }
            | Stmt::ExpandDims { a, .. }
            | Stmt::Squeeze { a, .. }
            | Stmt::BroadcastTo { a, .. }
            | Stmt::Slice { a, .. }
            | Stmt::Rechunk { a, .. } => vec![*a],
        }
    }

    /// numpy-like source text.
    fn py(&self) -> String {
        let arg = |a: &Arg| match a {
            Arg::T(i) => format!("v{i}"),
            Arg::S(s) => s.py(),
        };
        let axes = |a: &Option<Vec<isize>>| match a {
            None => "None".to_string(),
            Some(v) => format!(
                "({})",
                v.iter().map(|x| format!("{x},")).collect::<String>()
            ),
        };
        let list = |xs: &[usize]| {
            xs.iter()
                .map(|x| format!("v{x}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hints = |h: &Hints| format!("chunks A={:?} B={:?}", h[0], h[1]);
        match self {
            Stmt::Source { src, shape, chunks } => {
                let s = match src {
                    Src::Host(v) => fmt_v(v),
                    Src::Rand {
                        seed,
                        skip,
                        normal,
                        dtype,
                    } => format!(
                        "ts.random({seed}).{}(shape={}, dtype=np.{})  # draw {skip}",
                        if *normal { "randn" } else { "rand" },
                        fmt_shape(shape),
                        np_dtype(*dtype)
                    ),
                    Src::RandInt {
                        seed,
                        low,
                        high,
                        dtype,
                    } => format!(
                        "ts.random({seed}).randint({low}, {high}, {}, dtype=np.{})",
                        fmt_shape(shape),
                        np_dtype(*dtype)
                    ),
                    Src::Arange {
                        start,
                        stop,
                        step,
                        dtype,
                    } => format!(
                        "np.arange({start:?}, {stop:?}, {step:?}, dtype=np.{})",
                        np_dtype(*dtype)
                    ),
                    Src::Linspace {
                        start,
                        stop,
                        num,
                        endpoint,
                        dtype,
                    } => format!(
                        "np.linspace({start:?}, {stop:?}, {num}, endpoint={}, dtype=np.{})",
                        if *endpoint { "True" } else { "False" },
                        np_dtype(*dtype)
                    ),
                    Src::Full { value, dtype } => format!(
                        "np.full({}, {}, dtype=np.{})",
                        fmt_shape(shape),
                        value.py(),
                        np_dtype(*dtype)
                    ),
                    Src::Eye { n, m, k, dtype } => {
                        format!("np.eye({n}, {m:?}, k={k}, dtype=np.{})", np_dtype(*dtype))
                    }
                };
                format!("{s}  # {}", hints(chunks))
            }
            Stmt::Binary { op, a, b } => format!("np.{}({}, {})", op.name(), arg(a), arg(b)),
            Stmt::Unary { op, a } => format!("np.{}(v{a})", op.name()),
            Stmt::Where { c, a, b } => format!("np.where(v{c}, {}, {})", arg(a), arg(b)),
            Stmt::Clip { a, lo, hi } => format!("np.clip(v{a}, {}, {})", arg(lo), arg(hi)),
            Stmt::Astype { a, dtype } => format!("v{a}.astype(np.{})", np_dtype(*dtype)),
            Stmt::Reduce {
                op,
                a,
                axes: ax,
                keepdims,
                ddof,
            } => {
                let d = if matches!(op, ReduceOp::Var | ReduceOp::Std) {
                    format!(", ddof={ddof}")
                } else {
                    String::new()
                };
                format!(
                    "np.{}(v{a}, axis={}, keepdims={}{d})",
                    op.name(),
                    axes(ax),
                    if *keepdims { "True" } else { "False" }
                )
            }
            Stmt::ArgRed { max, a, axis } => format!(
                "np.{}(v{a}, axis={axis:?})",
                if *max { "argmax" } else { "argmin" }
            ),
            Stmt::Reshape { a, shape } => format!("v{a}.reshape({shape:?})"),
            Stmt::Transpose { a, perm } => format!("np.transpose(v{a}, {})", axes(perm)),
            Stmt::Swapaxes { a, i, j } => format!("np.swapaxes(v{a}, {i}, {j})"),
            Stmt::ExpandDims { a, axis } => format!("np.expand_dims(v{a}, {axis})"),
            Stmt::Squeeze { a, axes: ax } => format!("np.squeeze(v{a}, {})", axes(ax)),
            Stmt::BroadcastTo { a, shape } => {
                format!("np.broadcast_to(v{a}, {})", fmt_shape(shape))
            }
            Stmt::Slice { a, args } => {
                let parts: Vec<String> = args
                    .iter()
                    .map(|s| match s {
                        SliceArg::Range { start, stop, step } => {
                            let o = |x: &Option<isize>| x.map_or(String::new(), |v| v.to_string());
                            format!("{}:{}:{}", o(start), o(stop), step)
                        }
                        SliceArg::Index(i) => i.to_string(),
                        SliceArg::NewAxis => "None".into(),
                        SliceArg::Ellipsis => "...".into(),
                    })
                    .collect();
                format!("v{a}[{}]", parts.join(", "))
            }
            Stmt::Concat { xs, axis } => format!("np.concatenate([{}], axis={axis})", list(xs)),
            Stmt::Stack { xs, axis } => format!("np.stack([{}], axis={axis})", list(xs)),
            Stmt::Matmul { a, b } => format!("np.matmul(v{a}, v{b})"),
            Stmt::Dot { a, b } => format!("np.dot(v{a}, v{b})"),
            Stmt::Tensordot { a, b, aa, ab } => {
                format!("np.tensordot(v{a}, v{b}, axes=({aa:?}, {ab:?}))")
            }
            Stmt::Rechunk { a, chunks } => format!("v{a}  # rechunk, {}", hints(chunks)),
        }
    }
}

#[derive(Clone, Debug)]
struct Program {
    /// A panic while the program was built (its reference evaluated).
    panic: Option<String>,
    stmts: Vec<Stmt>,
    /// Reference result of each statement (`Err`: numpy rejects it).
    refs: Vec<Result<RVal, String>>,
}

impl Program {
    /// Valid statements no later statement uses: the outputs that are executed.
    fn leaves(&self) -> Vec<usize> {
        let used: Vec<usize> = self.stmts.iter().flat_map(|s| s.inputs()).collect();
        (0..self.stmts.len())
            .filter(|i| self.refs[*i].is_ok() && !used.contains(i))
            .collect()
    }
    fn py(&self) -> String {
        let mut t = String::from("import numpy as np\n");
        for (i, (s, r)) in self.stmts.iter().zip(&self.refs).enumerate() {
            let note = match r {
                Ok(v) => format!(
                    "{} {}{}",
                    fmt_shape(v.v.shape()),
                    np_dtype(v.v.dtype()),
                    match v.err {
                        Some(0.0) => String::new(),
                        Some(e) => format!(", within {e:.3e}"),
                        None => ", not comparable".into(),
                    }
                ),
                Err(e) => format!("rejected: {e}"),
            };
            let _ = writeln!(t, "v{i} = {}    # -> {note}", s.py());
        }
        t
    }
}

// ============================================================================================
// The reference evaluator (ndarray only; Tessera is used only to draw random inputs)
// ============================================================================================

fn norm_axis(a: isize, nd: usize) -> Result<usize, String> {
    let x = if a < 0 { a + nd as isize } else { a };
    if x < 0 || x >= nd as isize {
        return Err(format!(
            "axis {a} is out of bounds for array of dimension {nd}"
        ));
    }
    Ok(x as usize)
}

fn bcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!(
                "operands could not be broadcast together: {a:?} {b:?}"
            )),
        })
        .collect()
}

fn bcast_to(v: &V, shape: &[usize]) -> V {
    let off = shape.len() - v.shape().len();
    let src = v.shape().to_vec();
    v.gather(shape, |ix| {
        (0..src.len())
            .map(|k| if src[k] == 1 { 0 } else { ix[k + off] })
            .collect()
    })
}

/// Elementwise `f` over two same-dtype arrays with broadcasting.
fn zip2<T: El, U: El>(a: &ArrayD<T>, b: &ArrayD<T>, f: impl Fn(T, T) -> U) -> ArrayD<U> {
    let sh = IxDyn(&bcast_shape(a.shape(), b.shape()).unwrap());
    let (x, y) = (a.broadcast(sh.clone()).unwrap(), b.broadcast(sh).unwrap());
    ndarray::Zip::from(&x).and(&y).map_collect(|&p, &q| f(p, q))
}

trait Fl:
    El
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Rem<Output = Self>
    + std::ops::Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn floor(self) -> Self;
    fn copysign(self, s: Self) -> Self;
    fn isnan(self) -> bool;
    fn powf(self, o: Self) -> Self;
    fn un(self, op: UnaryOp) -> Self;
}
macro_rules! fl_impl {
    ($t:ty) => {
        impl Fl for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn copysign(self, s: Self) -> Self {
                <$t>::copysign(self, s)
            }
            fn isnan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn powf(self, o: Self) -> Self {
                <$t>::powf(self, o)
            }
            fn un(self, op: UnaryOp) -> Self {
                use UnaryOp::*;
                let x = self;
                match op {
                    Neg => -x,
                    Abs => x.abs(),
                    Sign => {
                        if x.is_nan() {
                            x
                        } else if x > 0.0 {
                            1.0
                        } else if x < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    }
                    Sqrt => x.sqrt(),
                    Exp => x.exp(),
                    Log => x.ln(),
                    Log1p => x.ln_1p(),
                    Expm1 => x.exp_m1(),
                    Sin => x.sin(),
                    Cos => x.cos(),
                    Tan => x.tan(),
                    Tanh => x.tanh(),
                    Arcsin => x.asin(),
                    Arccos => x.acos(),
                    Arctan => x.atan(),
                    Floor => x.floor(),
                    Ceil => x.ceil(),
                    // numpy's round is rint: halves to even.
                    Round => x.round_ties_even(),
                    _ => unreachable!("{op:?} has a bool result"),
                }
            }
        }
    };
}
fl_impl!(f32);
fl_impl!(f64);

/// numpy's `npy_divmod` (floor quotient, remainder with the divisor's sign), and its
/// `floor_divide`/`remainder` for a zero divisor (a / 0 and fmod(a, 0)).
fn np_divmod<T: Fl>(a: T, b: T) -> (T, T) {
    let m = a % b;
    if b == T::ZERO {
        return (a / b, m);
    }
    let mut div = (a - m) / b;
    let mut m = m;
    if m != T::ZERO {
        if (b < T::ZERO) != (m < T::ZERO) {
            m = m + b;
            div = div - T::ONE;
        }
    } else {
        m = T::ZERO.copysign(b);
    }
    let fl = if div != T::ZERO {
        let mut f = div.floor();
        let half = T::ONE / (T::ONE + T::ONE);
        if div - f > half {
            f = f + T::ONE;
        }
        f
    } else {
        T::ZERO.copysign(a / b)
    };
    (fl, m)
}

fn nan_max<T: Fl>(x: T, y: T) -> T {
    if x.isnan() || y.isnan() {
        x + y
    } else if x >= y {
        x
    } else {
        y
    }
}
fn nan_min<T: Fl>(x: T, y: T) -> T {
    if x.isnan() || y.isnan() {
        x + y
    } else if x <= y {
        x
    } else {
        y
    }
}

fn cmp<T: El>(op: BinaryOp, x: T, y: T) -> bool {
    use BinaryOp::*;
    match op {
        Eq => x == y,
        Ne => x != y,
        Lt => x < y,
        Le => x <= y,
        Gt => x > y,
        Ge => x >= y,
        _ => unreachable!(),
    }
}

fn float_bin<T: Fl>(op: BinaryOp, a: &ArrayD<T>, b: &ArrayD<T>) -> V {
    use BinaryOp::*;
    if is_compare(op) {
        return V::B(zip2(a, b, |x, y| cmp(op, x, y)));
    }
    T::wrap(match op {
        Add => zip2(a, b, |x, y| x + y),
        Sub => zip2(a, b, |x, y| x - y),
        Mul => zip2(a, b, |x, y| x * y),
        Div => zip2(a, b, |x, y| x / y),
        FloorDiv => zip2(a, b, |x, y| np_divmod(x, y).0),
        Mod => zip2(a, b, |x, y| np_divmod(x, y).1),
        Pow => zip2(a, b, |x, y| x.powf(y)),
        Maximum => zip2(a, b, nan_max),
        Minimum => zip2(a, b, nan_min),
        _ => unreachable!("{op:?}"),
    })
}

/// Integer ops in i128, wrapped to the dtype at the end (numpy's wrap-around).
fn int_bin<T: El>(op: BinaryOp, a: &ArrayD<T>, b: &ArrayD<T>) -> V {
    use BinaryOp::*;
    if is_compare(op) {
        return V::B(zip2(a, b, |x, y| cmp(op, x, y)));
    }
    let i = |x: T| match x.r() {
        R::I(v) => v as i128,
        _ => unreachable!(),
    };
    let back = |v: i128| T::from_r(R::I(v as i64));
    T::wrap(match op {
        Add => zip2(a, b, |x, y| back(i(x) + i(y))),
        Sub => zip2(a, b, |x, y| back(i(x) - i(y))),
        Mul => zip2(a, b, |x, y| back(i(x).wrapping_mul(i(y)))),
        FloorDiv | Mod => zip2(a, b, |x, y| {
            let (p, q) = (i(x), i(y));
            if q == 0 {
                return back(0);
            }
            let (mut d, mut m) = (p / q, p % q);
            if m != 0 && ((m < 0) != (q < 0)) {
                d -= 1;
                m += q;
            }
            back(if op == FloorDiv { d } else { m })
        }),
        Pow => zip2(a, b, |x, y| {
            let (base, e) = (i(x), i(y));
            if e < 0 {
                // README deviation: negative integer powers give 0 (±1 for bases ±1).
                return back(match base {
                    1 => 1,
                    -1 => {
                        if e % 2 == 0 {
                            1
                        } else {
                            -1
                        }
                    }
                    _ => 0,
                });
            }
            let mut acc: i64 = 1;
            let b64 = base as i64;
            for _ in 0..e.min(200) {
                acc = acc.wrapping_mul(b64);
            }
            if e > 200 {
                // Square-and-multiply for long exponents (same value mod 2^64).
                acc = 1;
                let (mut bb, mut ee) = (b64, e as u64);
                while ee > 0 {
                    if ee & 1 == 1 {
                        acc = acc.wrapping_mul(bb);
                    }
                    bb = bb.wrapping_mul(bb);
                    ee >>= 1;
                }
            }
            back(acc as i128)
        }),
        Maximum => zip2(a, b, |x, y| if x >= y { x } else { y }),
        Minimum => zip2(a, b, |x, y| if x <= y { x } else { y }),
        _ => unreachable!("{op:?}"),
    })
}

fn bool_bin(op: BinaryOp, a: &ArrayD<bool>, b: &ArrayD<bool>) -> V {
    use BinaryOp::*;
    V::B(match op {
        Add | Maximum | Or => zip2(a, b, |x, y| x | y),
        Mul | Minimum | And => zip2(a, b, |x, y| x & y),
        Xor => zip2(a, b, |x, y| x ^ y),
        _ if is_compare(op) => zip2(a, b, |x, y| cmp(op, x, y)),
        _ => unreachable!("{op:?} of booleans"),
    })
}

/// The value of an operand cast to `dt` (a scalar becomes a 0-d array).
fn operand(vals: &[Result<RVal, String>], a: &Arg, dt: DType) -> (V, Bound) {
    match a {
        Arg::T(i) => {
            let r = vals[*i].as_ref().unwrap();
            (r.v.cast(dt), r.err)
        }
        Arg::S(s) => (s.to_v(dt), Some(0.0)),
    }
}

fn arg_dtype(vals: &[Result<RVal, String>], a: &Arg) -> Option<DType> {
    match a {
        Arg::T(i) => Some(vals[*i].as_ref().unwrap().v.dtype()),
        Arg::S(_) => None,
    }
}

/// numpy's promotion of operands (tensors strong, scalars weak).
fn promote_args(vals: &[Result<RVal, String>], args: &[Arg]) -> DType {
    let strong: Vec<DType> = args.iter().filter_map(|a| arg_dtype(vals, a)).collect();
    let scalars: Vec<Sc> = args
        .iter()
        .filter_map(|a| match a {
            Arg::S(s) => Some(*s),
            Arg::T(_) => None,
        })
        .collect();
    if strong.is_empty() {
        return scalars
            .iter()
            .map(|s| s.default_dtype())
            .reduce(promote)
            .unwrap();
    }
    let mut d = strong.into_iter().reduce(promote).unwrap();
    // NEP 50: a weak scalar raises the kind only (the max over the scalars' kinds).
    for s in &scalars {
        d = promote_weak(d, *s);
    }
    d
}

/// A binary op's error bound: see `Bound`.
fn binary_bound(op: BinaryOp, x: (&V, Bound), y: (&V, Bound), out: &V) -> Bound {
    use BinaryOp::*;
    let (ex, ey) = (x.1?, y.1?);
    if ex == 0.0 && ey == 0.0 {
        return Some(0.0);
    }
    let r = rounding(out.dtype(), out.mag());
    finite(match op {
        Add | Sub => Some(ex + ey + r),
        Mul => Some(ex * y.0.mag() + ey * x.0.mag() + ex * ey + r),
        Div => {
            // |a/b - a'/b'| <= ea/(m - eb) + |a| eb / (m (m - eb)) with m = min |b|.
            let m =
                y.0.to_f64()
                    .iter()
                    .fold(f64::INFINITY, |m, v| m.min(v.abs()));
            (m > 2.0 * ey).then(|| ex / (m - ey) + x.0.mag() * ey / (m * (m - ey)) + r)
        }
        Maximum | Minimum => Some(ex.max(ey)),
        _ => None,
    })
}

fn unary_bound(op: UnaryOp, e: Bound, out: &V) -> Bound {
    use UnaryOp::*;
    let e = e?;
    if e == 0.0 {
        return Some(0.0);
    }
    let r = rounding(out.dtype(), out.mag());
    finite(match op {
        Neg | Abs => Some(e),
        Sin | Cos | Tanh | Arctan => Some(e + r),
        Exp | Expm1 if e < 0.1 => Some(e * (out.mag() + 1.0) * 1.2 + r),
        _ => None,
    })
}

/// Lanes of `a` over `axes` (row-major within a lane) and the kept shape.
fn lanes(v: &V, axes: &[usize]) -> (Vec<Vec<R>>, Vec<usize>) {
    let sh = v.shape().to_vec();
    let kept: Vec<usize> = (0..sh.len()).filter(|x| !axes.contains(x)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let inner: usize = axes.iter().map(|&x| sh[x]).product();
    let outer: usize = kept.iter().map(|&x| sh[x]).product();
    let flat: Vec<R> = each!(v, a => a
        .view()
        .permuted_axes(IxDyn(&perm))
        .iter()
        .map(|x| x.r())
        .collect());
    let ls = (0..outer)
        .map(|o| flat[o * inner..(o + 1) * inner].to_vec())
        .collect();
    (ls, kept.iter().map(|&x| sh[x]).collect())
}

fn rf(r: R) -> f64 {
    match r {
        R::B(b) => b as u8 as f64,
        R::I(i) => i as f64,
        R::F(f) => f,
    }
}
fn ri(r: R) -> i64 {
    match r {
        R::B(b) => b as i64,
        R::I(i) => i,
        R::F(_) => unreachable!(),
    }
}

fn reduce_ref(
    op: ReduceOp,
    x: &RVal,
    axes: &[usize],
    keepdims: bool,
    ddof: u32,
) -> Result<RVal, String> {
    use ReduceOp::*;
    let d = x.v.dtype();
    let (ls, kept) = lanes(&x.v, axes);
    let n = axes.iter().map(|&a| x.v.shape()[a]).product::<usize>();
    if matches!(op, Min | Max) && n == 0 {
        return Err("zero-size array to reduction operation which has no identity".into());
    }
    let out_dt = match op {
        Sum | Prod if !is_float(d) => DType::I64,
        Sum | Prod | Min | Max => d,
        Mean | Var | Std if d == DType::F32 => DType::F32,
        Mean | Var | Std => DType::F64,
        Any | All => DType::Bool,
    };
    let nf = n as f64;
    let e_in = x.err;
    // Per lane: (value, bound).
    let per: Vec<(R, Bound)> = ls
        .iter()
        .map(|l| {
            let abs_sum: f64 = l.iter().map(|&r| rf(r).abs()).sum();
            let acc = 2.0 * (nf + 1.0) * unit(DType::F64) * abs_sum;
            match op {
                Sum if !is_float(d) => (
                    R::I(l.iter().fold(0i64, |s, &r| s.wrapping_add(ri(r)))),
                    e_in,
                ),
                Prod if !is_float(d) => (
                    R::I(l.iter().fold(1i64, |s, &r| s.wrapping_mul(ri(r)))),
                    e_in,
                ),
                Sum => {
                    let s: f64 = l.iter().map(|&r| rf(r)).sum();
                    (R::F(s), e_in.map(|e| e * nf + acc))
                }
                Prod => {
                    let p: f64 = l.iter().map(|&r| rf(r)).product();
                    // Tessera may accumulate in the operand's dtype.
                    let b = p.abs() * 2.0 * (nf + 1.0) * unit(d) + (nf + 1.0) * tiny(d);
                    (R::F(p), e_in.and_then(|e| (e == 0.0).then_some(b)))
                }
                Mean => {
                    let s: f64 = l.iter().map(|&r| rf(r)).sum();
                    (R::F(s / nf), e_in.map(|e| e + acc / nf))
                }
                Var | Std => {
                    let m = l.iter().map(|&r| rf(r)).sum::<f64>() / nf;
                    let dev = l.iter().fold(0.0f64, |a, &r| a.max((rf(r) - m).abs()));
                    let ss: f64 = l.iter().map(|&r| (rf(r) - m) * (rf(r) - m)).sum();
                    let sq: f64 = l.iter().map(|&r| rf(r) * rf(r)).sum();
                    let div = (nf - ddof as f64).max(0.0);
                    let var = ss / div;
                    let bv = e_in.map(|e| {
                        ((2.0 * dev * e + e * e) * nf + 8.0 * (nf + 2.0) * unit(DType::F64) * sq)
                            / div.max(1.0)
                    });
                    if op == Var {
                        (R::F(var), bv)
                    } else {
                        let sd = var.sqrt();
                        let bs = bv.map(|b| {
                            if sd > 0.0 {
                                (b / sd).min(b.sqrt())
                            } else {
                                b.sqrt()
                            }
                        });
                        (R::F(sd), bs)
                    }
                }
                Min | Max => {
                    let v = if is_float(d) {
                        let f = |a: f64, b: f64| {
                            if op == Min {
                                nan_min(a, b)
                            } else {
                                nan_max(a, b)
                            }
                        };
                        R::F(l.iter().map(|&r| rf(r)).reduce(f).unwrap())
                    } else if d == DType::Bool {
                        let b = l.iter().map(|&r| rf(r) != 0.0);
                        R::B(if op == Min {
                            b.fold(true, |a, x| a & x)
                        } else {
                            b.fold(false, |a, x| a | x)
                        })
                    } else {
                        let i = l.iter().map(|&r| ri(r));
                        R::I(if op == Min {
                            i.min().unwrap()
                        } else {
                            i.max().unwrap()
                        })
                    };
                    (v, e_in)
                }
                Any | All => {
                    let t = l.iter().map(|&r| rf(r) != 0.0 || rf(r).is_nan());
                    let v = if op == Any {
                        t.fold(false, |a, x| a | x)
                    } else {
                        t.fold(true, |a, x| a & x)
                    };
                    (R::B(v), e_in.and_then(|e| (e == 0.0).then_some(0.0)))
                }
            }
        })
        .collect();
    let out_shape: Vec<usize> = if keepdims {
        (0..x.v.ndim())
            .map(|a| if axes.contains(&a) { 1 } else { x.v.shape()[a] })
            .collect()
    } else {
        kept
    };
    let vals: Vec<R> = per.iter().map(|p| p.0).collect();
    let v = V::D(ArrayD::from_elem(IxDyn(&out_shape), 0.0))
        .cast(out_dt)
        .fill_r(&vals);
    // Exact operands of exact reductions stay exact; otherwise the worst lane's bound plus the
    // final rounding.
    let mut err = Some(0.0f64);
    for (_, b) in &per {
        err = match (err, b) {
            (Some(a), Some(b)) => Some(a.max(*b)),
            _ => None,
        };
    }
    let approx = matches!(op, Mean | Var | Std) || (is_float(d) && matches!(op, Sum | Prod));
    if approx {
        err = err.map(|e| e + rounding(out_dt, v.mag()));
    }
    Ok(RVal {
        v,
        err: finite(err),
    })
}

impl V {
    fn ndim(&self) -> usize {
        self.shape().len()
    }
    /// This array's shape filled with `vals` (row-major).
    fn fill_r(&self, vals: &[R]) -> V {
        let mut it = vals.iter();
        each_v!(self, a => a.mapv(|_| El::from_r(*it.next().unwrap())))
    }
}

/// Matrix product of (..., m, k) and (..., k, n) with broadcast batch dims: floats accumulate in
/// f64 (rounded once), integers wrap, booleans or-and. Returns the product and, for floats, the
/// products of the magnitudes (for the error bound).
fn matmul_nd(a: &V, b: &V) -> (V, f64) {
    let dt = a.dtype();
    let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
    let nd = sa.len();
    let (m, k, n) = (sa[nd - 2], sa[nd - 1], sb[nd - 1]);
    let batch = bcast_shape(&sa[..nd - 2], &sb[..nd - 2]).unwrap();
    let full = |x, y| [batch.clone(), vec![x, y]].concat();
    let ab = bcast_to(a, &full(m, k)).flat_r();
    let bb = bcast_to(b, &full(k, n)).flat_r();
    let nb: usize = batch.iter().product();
    let mut out = Vec::with_capacity(nb * m * n);
    let mut absmax = 0.0f64;
    for t in 0..nb {
        for i in 0..m {
            for j in 0..n {
                let at = |p: usize| ab[t * m * k + i * k + p];
                let bt = |p: usize| bb[t * k * n + p * n + j];
                out.push(match dt {
                    DType::Bool => R::B((0..k).any(|p| rf(at(p)) != 0.0 && rf(bt(p)) != 0.0)),
                    DType::I32 | DType::I64 => R::I((0..k).fold(0i64, |s, p| {
                        s.wrapping_add(ri(at(p)).wrapping_mul(ri(bt(p))))
                    })),
                    _ => {
                        let s: f64 = (0..k).map(|p| rf(at(p)) * rf(bt(p))).sum();
                        let sabs: f64 = (0..k).map(|p| (rf(at(p)) * rf(bt(p))).abs()).sum();
                        absmax = absmax.max(sabs);
                        R::F(s)
                    }
                });
            }
        }
    }
    let mut shape = batch;
    shape.extend([m, n]);
    let v = V::D(ArrayD::from_elem(IxDyn(&shape), 0.0))
        .cast(dt)
        .fill_r(&out);
    (v, absmax)
}

fn matmul_bound(a: &RVal, b: &RVal, k: usize, out: &V, absprod: f64) -> Bound {
    let (ea, eb) = (a.err?, b.err?);
    let dt = out.dtype();
    if !is_float(dt) {
        return (ea == 0.0 && eb == 0.0).then_some(0.0);
    }
    let kf = k as f64;
    finite(Some(
        kf * (ea * b.v.mag() + eb * a.v.mag() + ea * eb)
            + 2.0 * (kf + 2.0) * unit(dt) * absprod
            + rounding(dt, out.mag()),
    ))
}

fn matmul_ref(a: &RVal, b: &RVal) -> Result<RVal, String> {
    let (sa, sb) = (a.v.shape().to_vec(), b.v.shape().to_vec());
    if sa.is_empty() || sb.is_empty() {
        return Err("matmul: input operand does not have enough dimensions".into());
    }
    let dt = promote(a.v.dtype(), b.v.dtype());
    let mut x = a.v.cast(dt);
    let mut y = b.v.cast(dt);
    if sa.len() == 1 {
        x = x.reshape(&[1, sa[0]]);
    }
    if sb.len() == 1 {
        y = y.reshape(&[sb[0], 1]);
    }
    let (xs, ys) = (x.shape().to_vec(), y.shape().to_vec());
    let k = xs[xs.len() - 1];
    if k != ys[ys.len() - 2] {
        return Err(format!("matmul: core dimension mismatch {sa:?} {sb:?}"));
    }
    let batch = bcast_shape(&xs[..xs.len() - 2], &ys[..ys.len() - 2])?;
    let nd = batch.len() + 2;
    let lift = |v: V| {
        let mut s = vec![1; nd - v.ndim()];
        s.extend_from_slice(v.shape());
        v.reshape(&s)
    };
    let (out, absprod) = matmul_nd(&lift(x), &lift(y));
    let mut shape = batch;
    if sa.len() != 1 {
        shape.push(xs[xs.len() - 2]);
    }
    if sb.len() != 1 {
        shape.push(ys[ys.len() - 1]);
    }
    let out = out.reshape(&shape);
    let err = matmul_bound(a, b, k, &out, absprod);
    Ok(RVal { v: out, err })
}

fn transpose_v(v: &V, perm: &[usize]) -> V {
    let sh = v.shape().to_vec();
    let out: Vec<usize> = perm.iter().map(|&p| sh[p]).collect();
    v.gather(&out, |ix| {
        let mut src = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            src[p] = ix[i];
        }
        src
    })
}

fn tensordot_ref(a: &RVal, b: &RVal, aa: &[isize], ab: &[isize]) -> Result<RVal, String> {
    let (sa, sb) = (a.v.shape().to_vec(), b.v.shape().to_vec());
    if aa.len() != ab.len() {
        return Err("tensordot: shape-mismatch for sum".into());
    }
    let xa = aa
        .iter()
        .map(|&x| norm_axis(x, sa.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let xb = ab
        .iter()
        .map(|&x| norm_axis(x, sb.len()))
        .collect::<Result<Vec<_>, _>>()?;
    if xa.iter().zip(&xb).any(|(&p, &q)| sa[p] != sb[q]) {
        return Err("tensordot: shape-mismatch for sum".into());
    }
    let fa: Vec<usize> = (0..sa.len()).filter(|x| !xa.contains(x)).collect();
    let fb: Vec<usize> = (0..sb.len()).filter(|x| !xb.contains(x)).collect();
    let m: usize = fa.iter().map(|&x| sa[x]).product();
    let k: usize = xa.iter().map(|&x| sa[x]).product();
    let n: usize = fb.iter().map(|&x| sb[x]).product();
    let dt = promote(a.v.dtype(), b.v.dtype());
    let pa: Vec<usize> = fa.iter().chain(&xa).copied().collect();
    let pb: Vec<usize> = xb.iter().chain(&fb).copied().collect();
    let x = transpose_v(&a.v.cast(dt), &pa).reshape(&[m, k]);
    let y = transpose_v(&b.v.cast(dt), &pb).reshape(&[k, n]);
    let (out, absprod) = matmul_nd(&x, &y);
    let shape: Vec<usize> = fa
        .iter()
        .map(|&x| sa[x])
        .chain(fb.iter().map(|&x| sb[x]))
        .collect();
    let out = out.reshape(&shape);
    let err = matmul_bound(a, b, k, &out, absprod);
    Ok(RVal { v: out, err })
}

/// CPython's `PySlice_AdjustIndices`: (start, step, length).
fn adjust(start: Option<isize>, stop: Option<isize>, step: isize, len: usize) -> (isize, usize) {
    let len = len as isize;
    let fix = |v: isize| {
        if v < 0 {
            let v = v + len;
            if v < 0 {
                if step < 0 {
                    -1
                } else {
                    0
                }
            } else {
                v
            }
        } else if v >= len {
            if step < 0 {
                len - 1
            } else {
                len
            }
        } else {
            v
        }
    };
    let s = start.map_or(if step < 0 { len - 1 } else { 0 }, fix);
    let e = stop.map_or(if step < 0 { -1 } else { len }, fix);
    let n = if step < 0 {
        if e < s {
            (s - e - 1) / (-step) + 1
        } else {
            0
        }
    } else if s < e {
        (e - s - 1) / step + 1
    } else {
        0
    };
    (s, n as usize)
}

fn slice_ref(x: &RVal, args: &[SliceArg]) -> Result<RVal, String> {
    let sh = x.v.shape().to_vec();
    let nd = sh.len();
    let used = args
        .iter()
        .filter(|a| matches!(a, SliceArg::Range { .. } | SliceArg::Index(_)))
        .count();
    let ells = args.iter().filter(|a| **a == SliceArg::Ellipsis).count();
    if used > nd {
        return Err("too many indices for array".into());
    }
    if ells > 1 {
        return Err("an index can only have a single ellipsis".into());
    }
    let mut full = Vec::new();
    for a in args {
        if *a == SliceArg::Ellipsis {
            full.extend(std::iter::repeat_n(
                SliceArg::Range {
                    start: None,
                    stop: None,
                    step: 1,
                },
                nd - used,
            ));
        } else {
            full.push(*a);
        }
    }
    if ells == 0 {
        full.extend(std::iter::repeat_n(
            SliceArg::Range {
                start: None,
                stop: None,
                step: 1,
            },
            nd - used,
        ));
    }
    // Per output axis: Some((input axis, start, step)) or None for a new axis; fixed indices.
    let mut out_axes: Vec<Option<(usize, isize, isize)>> = Vec::new();
    let mut out_shape = Vec::new();
    let mut fixed = vec![0usize; nd];
    let mut ax = 0;
    for a in &full {
        match *a {
            SliceArg::NewAxis => {
                out_axes.push(None);
                out_shape.push(1);
            }
            SliceArg::Index(i) => {
                let d = sh[ax] as isize;
                let j = if i < 0 { i + d } else { i };
                if j < 0 || j >= d {
                    return Err(format!(
                        "index {i} is out of bounds for axis {ax} with size {d}"
                    ));
                }
                fixed[ax] = j as usize;
                ax += 1;
            }
            SliceArg::Range { start, stop, step } => {
                if step == 0 {
                    return Err("slice step cannot be zero".into());
                }
                let (s, n) = adjust(start, stop, step, sh[ax]);
                out_axes.push(Some((ax, s, step)));
                out_shape.push(n);
                ax += 1;
            }
            SliceArg::Ellipsis => unreachable!(),
        }
    }
    let v = x.v.gather(&out_shape, |ix| {
        let mut src = fixed.clone();
        for (o, a) in out_axes.iter().enumerate() {
            if let Some((axis, s, step)) = a {
                src[*axis] = (s + ix[o] as isize * step) as usize;
            }
        }
        src
    });
    Ok(RVal { v, err: x.err })
}

fn concat_ref(parts: &[&RVal], axis: isize) -> Result<RVal, String> {
    let s0 = parts[0].v.shape().to_vec();
    if s0.is_empty() {
        return Err("zero-dimensional arrays cannot be concatenated".into());
    }
    let ax = norm_axis(axis, s0.len())?;
    let mut dt = parts[0].v.dtype();
    let mut err = Some(0.0f64);
    for p in parts {
        let s = p.v.shape();
        if s.len() != s0.len() || (0..s.len()).any(|i| i != ax && s[i] != s0[i]) {
            return Err(format!("concatenate: dimensions differ {s0:?} {s:?}"));
        }
        dt = promote(dt, p.v.dtype());
        err = match (err, p.err) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let mut vals = Vec::new();
    let mut shape = s0.clone();
    shape[ax] = parts.iter().map(|p| p.v.shape()[ax]).sum();
    let casts: Vec<V> = parts.iter().map(|p| p.v.cast(dt)).collect();
    // Row-major over the output: outer index, then each part's block along the axis.
    let outer: usize = s0[..ax].iter().product();
    for o in 0..outer {
        for c in &casts {
            let flat = c.flat_r();
            let block = flat.len() / outer.max(1);
            vals.extend_from_slice(&flat[o * block..(o + 1) * block]);
        }
    }
    let v = V::D(ArrayD::from_elem(IxDyn(&shape), 0.0))
        .cast(dt)
        .fill_r(&vals);
    Ok(RVal { v, err })
}

/// The reference result of statement `st` given earlier results.
fn eval(st: &Stmt, vals: &[Result<RVal, String>]) -> Result<RVal, String> {
    let get = |i: usize| vals[i].as_ref().unwrap();
    let exact = |v: V| Ok(RVal { v, err: Some(0.0) });
    match st {
        Stmt::Source { src, shape, .. } => match src {
            Src::Host(v) => exact(v.clone()),
            // numpy draws uniform and normal values as floats only.
            Src::Rand { dtype, .. } if !is_float(*dtype) => {
                Err(format!("rand/randn of {dtype}: floats only"))
            }
            Src::RandInt {
                low, high, dtype, ..
            } if !is_int(*dtype)
                || low >= high
                || (*dtype == DType::I32
                    && (i32::try_from(*low).is_err() || i32::try_from(*high - 1).is_err())) =>
            {
                Err(format!("randint({low}, {high}) of {dtype}: out of bounds"))
            }
            Src::Rand { .. } | Src::RandInt { .. } => exact(draw(src, shape)),
            Src::Arange {
                start, step, dtype, ..
            } => {
                // numpy's fill: the first two values `start` and `start + step` are cast to
                // the dtype, then element i is `a0 + i * (a1 - a0)` in the dtype's arithmetic.
                let v: Vec<R> = if *dtype == DType::F32 {
                    let (a0, a1) = (*start as f32, (start + step) as f32);
                    let d = a1 - a0;
                    (0..shape[0])
                        .map(|i| {
                            R::F(match i {
                                0 => a0,
                                1 => a1,
                                _ => a0 + i as f32 * d,
                            } as f64)
                        })
                        .collect()
                } else {
                    let (a0, a1) = (*start, start + step);
                    let d = a1 - a0;
                    (0..shape[0])
                        .map(|i| {
                            R::F(match i {
                                0 => a0,
                                1 => a1,
                                _ => a0 + i as f64 * d,
                            })
                        })
                        .collect()
                };
                exact(
                    V::D(ArrayD::from_elem(IxDyn(shape), 0.0))
                        .cast(*dtype)
                        .fill_r(&v),
                )
            }
            Src::Linspace {
                start,
                stop,
                num,
                endpoint,
                dtype,
            } => {
                let div = if *endpoint {
                    num.saturating_sub(1)
                } else {
                    *num
                };
                let delta = stop - start;
                let step = delta / div as f64;
                let v: Vec<R> = (0..*num)
                    .map(|i| {
                        let y = if div > 0 {
                            if step == 0.0 {
                                i as f64 / div as f64 * delta + start
                            } else {
                                i as f64 * step + start
                            }
                        } else {
                            i as f64 * delta + start
                        };
                        let y = if *endpoint && *num > 1 && i == num - 1 {
                            *stop
                        } else {
                            y
                        };
                        // numpy floors before an integer cast.
                        R::F(if is_int(*dtype) { y.floor() } else { y })
                    })
                    .collect();
                exact(
                    V::D(ArrayD::from_elem(IxDyn(shape), 0.0))
                        .cast(*dtype)
                        .fill_r(&v),
                )
            }
            // A fill an integer dtype cannot hold: numpy's scalar conversion raises (an int
            // beyond the range: OverflowError; NaN, infinity or a float beyond the range:
            // ValueError/OverflowError), where `np.full` would leave it to an undefined C cast.
            Src::Full {
                value: Sc::I(v),
                dtype: DType::I32,
            } if i32::try_from(*v).is_err() => Err(format!(
                "[ScalarOverflow] full({v}) of int32: out of bounds"
            )),
            Src::Full {
                value: Sc::F(f),
                dtype,
            } if is_int(*dtype) && {
                let half = if *dtype == DType::I32 {
                    2f64.powi(31)
                } else {
                    2f64.powi(63)
                };
                !(-half..half).contains(&f.trunc())
            } =>
            {
                Err(format!(
                    "[InvalidArgument] full({f}) of {dtype}: not an integer in range"
                ))
            }
            Src::Full { value, dtype } => exact(
                V::D(ArrayD::from_elem(IxDyn(shape), 0.0))
                    .cast(*dtype)
                    .map_r(|_| value.r()),
            ),
            Src::Eye { k, dtype, .. } => {
                let v = ArrayD::from_shape_fn(IxDyn(shape), |ix| {
                    (ix[1] as i64 - ix[0] as i64 == *k) as u8 as f64
                });
                exact(V::D(v).cast(*dtype))
            }
        },
        Stmt::Binary { op, a, b } => {
            let p = promote_args(vals, &[*a, *b]);
            let (mut cdt, _rdt) = binary_dtypes(*op, p)?;
            // NEP 50: a Python int outside the integer compute dtype makes arithmetic raise
            // (OverflowError); comparisons decide it by value.
            for o in [a, b] {
                if let Arg::S(Sc::I(v)) = o {
                    if cdt == DType::I32 && i32::try_from(*v).is_err() {
                        if !is_compare(*op) {
                            return Err(format!("Python integer {v} out of bounds for int32"));
                        }
                        cdt = DType::I64;
                    }
                }
            }
            let (x, ex) = operand(vals, a, cdt);
            let (y, ey) = operand(vals, b, cdt);
            bcast_shape(x.shape(), y.shape())?;
            let v = match (&x, &y) {
                (V::B(p), V::B(q)) => bool_bin(*op, p, q),
                (V::I(p), V::I(q)) => int_bin(*op, p, q),
                (V::L(p), V::L(q)) => int_bin(*op, p, q),
                (V::F(p), V::F(q)) => float_bin(*op, p, q),
                (V::D(p), V::D(q)) => float_bin(*op, p, q),
                _ => unreachable!(),
            };
            let err = binary_bound(*op, (&x, ex), (&y, ey), &v);
            Ok(RVal { v, err })
        }
        Stmt::Unary { op, a } => {
            let x = get(*a);
            let (cdt, _) = unary_dtypes(*op, x.v.dtype())?;
            let c = x.v.cast(cdt);
            use UnaryOp::*;
            let v = match (op, &c) {
                (LogicalNot, _) => V::B(c.to_f64().mapv(|f| f == 0.0)),
                (IsNan, _) => V::B(c.to_f64().mapv(|f| f.is_nan())),
                (IsInf, _) => V::B(c.to_f64().mapv(|f| f.is_infinite())),
                (IsFinite, _) => V::B(c.to_f64().mapv(|f| f.is_finite())),
                (_, V::F(p)) => V::F(p.mapv(|f| f.un(*op))),
                (_, V::D(p)) => V::D(p.mapv(|f| f.un(*op))),
                // numpy keeps bool for absolute, floor and ceil.
                (Abs | Floor | Ceil, V::B(p)) => V::B(p.clone()),
                (_, V::I(_) | V::L(_)) => c.map_r(|r| {
                    let i = ri(r) as i128;
                    R::I(match op {
                        Neg => -i,
                        Abs => i.abs(),
                        Sign => i.signum(),
                        _ => i, // floor, ceil, round of an integer
                    } as i64)
                }),
                _ => return Err(format!("{op:?} of {}", c.dtype())),
            };
            let err = unary_bound(*op, x.err, &v);
            Ok(RVal { v, err })
        }
        Stmt::Where { c, a, b } => {
            let cond = get(*c);
            let dt = promote_args(vals, &[*a, *b]);
            let (x, ex) = operand(vals, a, dt);
            let (y, ey) = operand(vals, b, dt);
            let cb = cond.v.cast(DType::Bool);
            let s1 = bcast_shape(cb.shape(), x.shape())?;
            let sh = bcast_shape(&s1, y.shape())?;
            let (cb, x, y) = (bcast_to(&cb, &sh), bcast_to(&x, &sh), bcast_to(&y, &sh));
            let cf = cb.flat_r();
            let (xf, yf) = (x.flat_r(), y.flat_r());
            let out: Vec<R> = (0..cf.len())
                .map(|i| if rf(cf[i]) != 0.0 { xf[i] } else { yf[i] })
                .collect();
            let err = match (cond.err, ex, ey) {
                (Some(0.0), Some(p), Some(q)) => Some(p.max(q)),
                _ => None,
            };
            Ok(RVal {
                v: x.fill_r(&out),
                err,
            })
        }
        Stmt::Clip { a, lo, hi } => {
            // numpy: one promotion over all three, then minimum(maximum(a, lo), hi); a Python
            // int bound beyond an integer array's range on its own side clips nothing and is
            // dropped, one beyond the other side raises.
            let x = get(*a);
            let xdt = x.v.dtype();
            let keep = |o: &Arg, low: bool| -> Result<Option<Arg>, String> {
                match o {
                    Arg::S(Sc::I(v)) if is_int(xdt) => {
                        let (min, max) = if xdt == DType::I32 {
                            (i32::MIN as i64, i32::MAX as i64)
                        } else {
                            (i64::MIN, i64::MAX)
                        };
                        let (gone, bad) = if low {
                            (*v <= min, *v > max)
                        } else {
                            (*v >= max, *v < min)
                        };
                        if bad {
                            return Err(format!("Python integer {v} out of bounds for {xdt}"));
                        }
                        Ok((!gone).then_some(*o))
                    }
                    _ => Ok(Some(*o)),
                }
            };
            let (lo, hi) = (keep(lo, true)?, keep(hi, false)?);
            let mut args = vec![Arg::T(*a)];
            args.extend(lo.iter().chain(&hi).copied());
            let dt = promote_args(vals, &args);
            // A dropped bound clips nothing: -inf/inf cast to the (integer or float) dtype.
            let lo = lo.unwrap_or(Arg::S(Sc::F(f64::NEG_INFINITY)));
            let hi = hi.unwrap_or(Arg::S(Sc::F(f64::INFINITY)));
            let (l, el) = operand(vals, &lo, dt);
            let (h, eh) = operand(vals, &hi, dt);
            let xv = x.v.cast(dt);
            bcast_shape(xv.shape(), l.shape())?;
            let m = match (&xv, &l) {
                (V::B(p), V::B(q)) => bool_bin(BinaryOp::Maximum, p, q),
                (V::I(p), V::I(q)) => int_bin(BinaryOp::Maximum, p, q),
                (V::L(p), V::L(q)) => int_bin(BinaryOp::Maximum, p, q),
                (V::F(p), V::F(q)) => float_bin(BinaryOp::Maximum, p, q),
                (V::D(p), V::D(q)) => float_bin(BinaryOp::Maximum, p, q),
                _ => unreachable!(),
            };
            bcast_shape(m.shape(), h.shape())?;
            let v = match (&m, &h) {
                (V::B(p), V::B(q)) => bool_bin(BinaryOp::Minimum, p, q),
                (V::I(p), V::I(q)) => int_bin(BinaryOp::Minimum, p, q),
                (V::L(p), V::L(q)) => int_bin(BinaryOp::Minimum, p, q),
                (V::F(p), V::F(q)) => float_bin(BinaryOp::Minimum, p, q),
                (V::D(p), V::D(q)) => float_bin(BinaryOp::Minimum, p, q),
                _ => unreachable!(),
            };
            let err = match (x.err, el, eh) {
                (Some(p), Some(q), Some(r)) => Some(p.max(q).max(r)),
                _ => None,
            };
            Ok(RVal { v, err })
        }
        Stmt::Astype { a, dtype } => {
            let x = get(*a);
            let v = x.v.cast(*dtype);
            let from = x.v.dtype();
            let err = match x.err {
                Some(0.0) => Some(0.0),
                Some(e) if is_float(from) && is_float(*dtype) => {
                    finite(Some(e + rounding(*dtype, v.mag())))
                }
                _ => None,
            };
            Ok(RVal { v, err })
        }
        Stmt::Reduce {
            op,
            a,
            axes,
            keepdims,
            ddof,
        } => {
            let x = get(*a);
            let nd = x.v.ndim();
            let mut ax: Vec<usize> = match axes {
                None => (0..nd).collect(),
                Some(l) => l
                    .iter()
                    .map(|&v| norm_axis(v, nd))
                    .collect::<Result<_, _>>()?,
            };
            let n = ax.len();
            ax.sort_unstable();
            ax.dedup();
            if ax.len() != n {
                return Err("duplicate value in 'axis'".into());
            }
            reduce_ref(*op, x, &ax, *keepdims, *ddof)
        }
        Stmt::ArgRed { max, a, axis } => {
            let x = get(*a);
            let (v, ax) = match axis {
                None => (x.v.reshape(&[x.v.len()]), 0),
                // numpy ravels a 0-d operand: axis 0 and -1 are valid.
                Some(k) if x.v.ndim() == 0 => (x.v.reshape(&[1]), norm_axis(*k, 1)?),
                Some(k) => (x.v.clone(), norm_axis(*k, x.v.ndim())?),
            };
            if v.shape()[ax] == 0 {
                return Err("attempt to get argmin/argmax of an empty sequence".into());
            }
            let (ls, kept) = lanes(&v, &[ax]);
            let idx: Vec<R> = ls
                .iter()
                .map(|l| {
                    // First extreme; the first NaN wins (numpy).
                    let mut best = 0;
                    for i in 0..l.len() {
                        let (c, b) = (l[i], l[best]);
                        let better = match (c, b) {
                            (R::F(c), R::F(b)) => {
                                !b.is_nan() && (c.is_nan() || if *max { c > b } else { c < b })
                            }
                            (R::I(c), R::I(b)) => {
                                if *max {
                                    c > b
                                } else {
                                    c < b
                                }
                            }
                            (R::B(c), R::B(b)) => {
                                if *max {
                                    c & !b
                                } else {
                                    !c & b
                                }
                            }
                            _ => unreachable!(),
                        };
                        if better {
                            best = i;
                        }
                    }
                    R::I(best as i64)
                })
                .collect();
            let out = V::L(ArrayD::from_elem(IxDyn(&kept), 0)).fill_r(&idx);
            Ok(RVal {
                v: out,
                err: x.err.and_then(|e| (e == 0.0).then_some(0.0)),
            })
        }
        Stmt::Reshape { a, shape } => {
            let x = get(*a);
            let size = x.v.len();
            let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
            if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
                return Err("can only specify one unknown dimension".into());
            }
            let known: usize = shape
                .iter()
                .filter(|&&d| d >= 0)
                .map(|&d| d as usize)
                .product();
            let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            if let Some(&u) = unknown.first() {
                if known == 0 || size % known != 0 {
                    return Err(format!(
                        "cannot reshape array of size {size} into {shape:?}"
                    ));
                }
                out[u] = size / known;
            } else if known != size {
                return Err(format!(
                    "cannot reshape array of size {size} into {shape:?}"
                ));
            }
            Ok(RVal {
                v: x.v.reshape(&out),
                err: x.err,
            })
        }
        Stmt::Transpose { a, perm } => {
            let x = get(*a);
            let nd = x.v.ndim();
            let p: Vec<usize> = match perm {
                None => (0..nd).rev().collect(),
                Some(p) => {
                    if p.len() != nd {
                        return Err("axes don't match array".into());
                    }
                    p.iter()
                        .map(|&v| norm_axis(v, nd))
                        .collect::<Result<_, _>>()?
                }
            };
            let mut seen = vec![false; nd];
            for &q in &p {
                if std::mem::replace(&mut seen[q], true) {
                    return Err("repeated axis in transpose".into());
                }
            }
            Ok(RVal {
                v: transpose_v(&x.v, &p),
                err: x.err,
            })
        }
        Stmt::Swapaxes { a, i, j } => {
            let x = get(*a);
            let nd = x.v.ndim();
            let (i, j) = (norm_axis(*i, nd)?, norm_axis(*j, nd)?);
            let mut p: Vec<usize> = (0..nd).collect();
            p.swap(i, j);
            Ok(RVal {
                v: transpose_v(&x.v, &p),
                err: x.err,
            })
        }
        Stmt::ExpandDims { a, axis } => {
            let x = get(*a);
            let ax = norm_axis(*axis, x.v.ndim() + 1)?;
            let mut s = x.v.shape().to_vec();
            s.insert(ax, 1);
            Ok(RVal {
                v: x.v.reshape(&s),
                err: x.err,
            })
        }
        Stmt::Squeeze { a, axes } => {
            let x = get(*a);
            let sh = x.v.shape().to_vec();
            let drop: Vec<usize> = match axes {
                None => (0..sh.len()).filter(|&i| sh[i] == 1).collect(),
                Some(l) => {
                    let v = l
                        .iter()
                        .map(|&k| norm_axis(k, sh.len()))
                        .collect::<Result<Vec<_>, _>>()?;
                    if v.iter().any(|&k| sh[k] != 1) {
                        return Err(
                            "cannot select an axis to squeeze out which has size not equal to one"
                                .into(),
                        );
                    }
                    v
                }
            };
            let s: Vec<usize> = (0..sh.len())
                .filter(|i| !drop.contains(i))
                .map(|i| sh[i])
                .collect();
            Ok(RVal {
                v: x.v.reshape(&s),
                err: x.err,
            })
        }
        Stmt::BroadcastTo { a, shape } => {
            let x = get(*a);
            let sh = x.v.shape();
            let ok = shape.len() >= sh.len()
                && sh
                    .iter()
                    .zip(&shape[shape.len() - sh.len()..])
                    .all(|(&d, &t)| d == t || d == 1);
            if !ok {
                return Err(format!("cannot broadcast {sh:?} to {shape:?}"));
            }
            Ok(RVal {
                v: bcast_to(&x.v, shape),
                err: x.err,
            })
        }
        Stmt::Slice { a, args } => slice_ref(get(*a), args),
        Stmt::Concat { xs, axis } => {
            let parts: Vec<&RVal> = xs.iter().map(|&i| get(i)).collect();
            concat_ref(&parts, *axis)
        }
        Stmt::Stack { xs, axis } => {
            let parts: Vec<&RVal> = xs.iter().map(|&i| get(i)).collect();
            let s0 = parts[0].v.shape().to_vec();
            if parts.iter().any(|p| p.v.shape() != s0.as_slice()) {
                return Err("all input arrays must have the same shape".into());
            }
            let ax = norm_axis(*axis, s0.len() + 1)?;
            let mut s = s0.clone();
            s.insert(ax, 1);
            let ex: Vec<RVal> = parts
                .iter()
                .map(|p| RVal {
                    v: p.v.reshape(&s),
                    err: p.err,
                })
                .collect();
            concat_ref(&ex.iter().collect::<Vec<_>>(), ax as isize)
        }
        Stmt::Matmul { a, b } => matmul_ref(get(*a), get(*b)),
        Stmt::Dot { a, b } => {
            let (x, y) = (get(*a), get(*b));
            match (x.v.ndim(), y.v.ndim()) {
                (0, _) | (_, 0) => eval(
                    &Stmt::Binary {
                        op: BinaryOp::Mul,
                        a: Arg::T(*a),
                        b: Arg::T(*b),
                    },
                    vals,
                ),
                (_, 1) => tensordot_ref(x, y, &[-1], &[0]),
                (1, _) => tensordot_ref(x, y, &[0], &[-2]),
                _ => tensordot_ref(x, y, &[-1], &[-2]),
            }
        }
        Stmt::Tensordot { a, b, aa, ab } => tensordot_ref(get(*a), get(*b), aa, ab),
        Stmt::Rechunk { a, .. } => Ok(get(*a).clone()),
    }
}

/// A random source's values: drawn by Tessera on a plain session (the reference cannot
/// reproduce Philox independently), then checked for their range and finiteness; the
/// configurations must reproduce them bit for bit whatever the chunking.
fn draw(src: &Src, shape: &[usize]) -> V {
    let s = tessera::cpu_session();
    let t = make_source(&s, src, shape).expect("a generated source is valid");
    let v = V::from_host(&t.execute().expect("drawing a source"));
    match src {
        Src::Rand { normal: false, .. } => {
            let f = v.to_f64();
            assert!(
                f.iter().all(|&x| (0.0..1.0).contains(&x)),
                "rand outside [0, 1): {}",
                fmt_v(&v)
            );
        }
        Src::Rand { normal: true, .. } => {
            assert!(
                v.to_f64().iter().all(|x| x.is_finite()),
                "randn: {}",
                fmt_v(&v)
            );
        }
        Src::RandInt { low, high, .. } => {
            assert!(
                v.flat_r().iter().all(|&r| (*low..*high).contains(&ri(r))),
                "randint outside [{low}, {high}): {}",
                fmt_v(&v)
            );
        }
        _ => {}
    }
    v
}

// ============================================================================================
// Running a program on Tessera
// ============================================================================================

fn make_source(s: &Session, src: &Src, shape: &[usize]) -> tessera::Result<Tensor> {
    Ok(match src {
        Src::Host(v) => {
            let h = match v {
                V::B(a) => HostArray::Bool(a.clone()),
                V::I(a) => HostArray::I32(a.clone()),
                V::L(a) => HostArray::I64(a.clone()),
                V::F(a) => HostArray::F32(a.clone()),
                V::D(a) => HostArray::F64(a.clone()),
            };
            s.from_host(h)
        }
        Src::Rand {
            seed,
            skip,
            normal,
            dtype,
        } => {
            let g = s.random(*seed);
            for _ in 0..*skip {
                let _ = g.rand(&[1], DType::F32);
            }
            if *normal {
                g.randn(shape, *dtype)
            } else {
                g.rand(shape, *dtype)
            }
        }
        Src::RandInt {
            seed,
            low,
            high,
            dtype,
        } => s.random(*seed).randint(*low, *high, shape, *dtype)?,
        Src::Arange {
            start,
            stop,
            step,
            dtype,
        } => s.arange(*start, *stop, *step, *dtype)?,
        Src::Linspace {
            start,
            stop,
            num,
            endpoint,
            dtype,
        } => s.linspace(*start, *stop, *num, *endpoint, *dtype),
        Src::Full { value, dtype } => s.full(shape, value.tess(), *dtype),
        Src::Eye { n, m, k, dtype } => s.eye(*n, *m, *k, *dtype),
    })
}

/// One way of running a program.
#[derive(Clone, Copy, Debug)]
struct Cfg {
    eager: bool,
    fusion: bool,
    /// Virtual devices under the Scheduler with tight budgets (0: the in-memory executor).
    devices: usize,
    /// Chunk hints A (0), B (1) or none (2).
    chunking: usize,
}

const CONFIGS: &[Cfg] = &[
    Cfg {
        eager: false,
        fusion: true,
        devices: 0,
        chunking: 0,
    },
    Cfg {
        eager: false,
        fusion: false,
        devices: 0,
        chunking: 1,
    },
    Cfg {
        eager: true,
        fusion: true,
        devices: 0,
        chunking: 1,
    },
    Cfg {
        eager: false,
        fusion: true,
        devices: 2,
        chunking: 1,
    },
    Cfg {
        eager: true,
        fusion: false,
        devices: 3,
        chunking: 0,
    },
    Cfg {
        eager: false,
        fusion: true,
        devices: 1,
        chunking: 0,
    },
    Cfg {
        eager: false,
        fusion: false,
        devices: 0,
        chunking: 2,
    },
];

/// Per statement: Ok or the error's variant; then the executed leaves (or the error).
type Outcome = (
    Vec<Result<(Vec<usize>, DType), String>>,
    tessera::Result<Vec<HostArray>>,
    usize,
);

fn variant(e: &Error) -> String {
    format!("{e:?}")
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_string()
}

static SPILL_CASE: AtomicUsize = AtomicUsize::new(0);

fn run_cfg(p: &Program, cfg: Cfg, budget: u64) -> Outcome {
    let backend: Arc<dyn Backend> = Arc::new(CpuBackend::with_devices(cfg.devices.max(1)));
    let s = Session::new(backend);
    s.set_eager(cfg.eager);
    s.set_fusion(cfg.fusion);
    let dir = std::env::temp_dir().join(format!(
        "tessera-programs-{}-{}",
        std::process::id(),
        SPILL_CASE.fetch_add(1, Ordering::Relaxed)
    ));
    if cfg.devices > 0 {
        // Automatically sized chunks small enough for the budget too.
        s.set_chunk_bytes((budget / 4) as usize)
            .expect("budgets are at least 256 bytes");
        s.set_memory(Some(MemoryConfig {
            device_bytes: Some(budget),
            host_bytes: Some(budget * 2),
            spill_dir: Some(dir.clone()),
            ..Default::default()
        }));
    }
    let mut ts: Vec<Option<Tensor>> = Vec::new();
    let mut status = Vec::new();
    for st in &p.stmts {
        // An operand lost to an out-of-memory error in a budgeted run: skip what uses it.
        if st.inputs().iter().any(|&i| ts[i].is_none()) {
            status.push(Err("Skipped".into()));
            ts.push(None);
            continue;
        }
        // A tensor carrying a deferred error counts as that error.
        let r = record(&s, st, &ts, cfg.chunking).and_then(|t| match t.error() {
            Some(e) => Err(e.clone()),
            None => Ok(t),
        });
        status.push(
            r.as_ref()
                .map(|t| (t.shape().to_vec(), t.dtype()))
                .map_err(variant),
        );
        ts.push(r.ok());
    }
    let leaves: Vec<&Tensor> = p.leaves().iter().filter_map(|&i| ts[i].as_ref()).collect();
    let out = s.execute_many(&leaves);
    let _ = std::fs::remove_dir_all(&dir);
    let spills = s.last_stats().memory.map_or(0, |m| m.spills);
    (status, out, spills)
}

fn hint(t: tessera::Result<Tensor>, h: &Hints, chunking: usize) -> tessera::Result<Tensor> {
    match h.get(chunking).cloned().flatten() {
        Some(c) => t?.with_chunks(&c),
        None => t,
    }
}

fn record(
    s: &Session,
    st: &Stmt,
    ts: &[Option<Tensor>],
    chunking: usize,
) -> tessera::Result<Tensor> {
    let t = |i: usize| ts[i].as_ref().expect("an operand that was recorded");
    let op = |a: &Arg| -> Operand<'_> {
        match a {
            Arg::T(i) => Operand::T(ts[*i].as_ref().expect("recorded")),
            Arg::S(x) => Operand::S(x.tess()),
        }
    };
    match st {
        Stmt::Source { src, shape, chunks } => hint(make_source(s, src, shape), chunks, chunking),
        Stmt::Binary { op: o, a, b } => {
            // The method on whichever operand is a tensor (a scalar may come first).
            let host = match (a, b) {
                (Arg::T(i), _) | (_, Arg::T(i)) => t(*i),
                _ => unreachable!(),
            };
            host.binary_op(*o, op(a), op(b))
        }
        Stmt::Unary { op: o, a } => {
            use UnaryOp::*;
            let x = t(*a);
            match o {
                Neg => x.neg(),
                Abs => x.abs(),
                Sign => x.sign(),
                Sqrt => x.sqrt(),
                Exp => x.exp(),
                Log => x.log(),
                Log1p => x.log1p(),
                Expm1 => x.expm1(),
                Sin => x.sin(),
                Cos => x.cos(),
                Tan => x.tan(),
                Tanh => x.tanh(),
                Arcsin => x.arcsin(),
                Arccos => x.arccos(),
                Arctan => x.arctan(),
                Floor => x.floor(),
                Ceil => x.ceil(),
                Round => x.round(),
                LogicalNot => x.logical_not(),
                IsNan => x.isnan(),
                IsInf => x.isinf(),
                IsFinite => x.isfinite(),
                // The generator draws only the ops above; the Array API additions have their
                // own conformance cases.
                _ => x.unary(*o),
            }
        }
        Stmt::Where { c, a, b } => t(*c).where_(op(a), op(b)),
        Stmt::Clip { a, lo, hi } => t(*a).clip(op(lo), op(hi)),
        Stmt::Astype { a, dtype } => t(*a).astype(*dtype),
        Stmt::Reduce {
            op: o,
            a,
            axes,
            keepdims,
            ddof,
        } => {
            let ax = match axes {
                None => tessera::Axes::All,
                Some(v) => tessera::Axes::Some(v.clone()),
            };
            t(*a).reduce(*o, ax, *keepdims, *ddof)
        }
        Stmt::ArgRed { max, a, axis } => {
            if *max {
                t(*a).argmax(*axis)
            } else {
                t(*a).argmin(*axis)
            }
        }
        Stmt::Reshape { a, shape } => t(*a).reshape(shape),
        Stmt::Transpose { a, perm } => t(*a).transpose(perm.as_deref()),
        Stmt::Swapaxes { a, i, j } => t(*a).swapaxes(*i, *j),
        Stmt::ExpandDims { a, axis } => t(*a).expand_dims(*axis),
        Stmt::Squeeze { a, axes } => t(*a).squeeze(axes.as_deref()),
        Stmt::BroadcastTo { a, shape } => t(*a).broadcast_to(shape),
        Stmt::Slice { a, args } => t(*a).slice(args),
        Stmt::Concat { xs, axis } => {
            concatenate(&xs.iter().map(|&i| t(i)).collect::<Vec<_>>(), *axis)
        }
        Stmt::Stack { xs, axis } => stack(&xs.iter().map(|&i| t(i)).collect::<Vec<_>>(), *axis),
        Stmt::Matmul { a, b } => t(*a).matmul(t(*b)),
        Stmt::Dot { a, b } => t(*a).dot(t(*b)),
        Stmt::Tensordot { a, b, aa, ab } => t(*a).tensordot(t(*b), aa, ab),
        Stmt::Rechunk { a, chunks } => hint(Ok(t(*a).clone()), chunks, chunking),
    }
}

// ============================================================================================
// Comparing
// ============================================================================================

/// Checks `got` against the reference value `want` (zero signs and NaN payloads aside).
fn check_ref(got: &V, want: &RVal) -> Result<(), String> {
    if got.dtype() != want.v.dtype() || got.shape() != want.v.shape() {
        return Err(format!(
            "dtype/shape {} {:?}, reference {} {:?}",
            got.dtype(),
            got.shape(),
            want.v.dtype(),
            want.v.shape()
        ));
    }
    let Some(bound) = want.err else {
        return Ok(());
    };
    let (g, w) = (got.flat_r(), want.v.flat_r());
    let dt = got.dtype();
    let max_finite = if dt == DType::F32 {
        f32::MAX as f64
    } else {
        f64::MAX
    };
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = match (a, b) {
            (R::F(x), R::F(y)) if bound == 0.0 => x == y || (x.is_nan() && y.is_nan()),
            (R::F(x), R::F(y)) => {
                if !y.is_finite() && !x.is_finite() {
                    x.is_nan() == y.is_nan() && (x.is_nan() || x == y)
                } else if y.abs() + 2.0 * bound >= max_finite || y.is_nan() {
                    // Near overflow, or NaN from an order-dependent inf - inf: not comparable.
                    true
                } else {
                    (x - y).abs() <= 2.0 * bound
                }
            }
            (R::I(x), R::I(y)) => x == y,
            (R::B(x), R::B(y)) => x == y,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "element {i}: got {}, reference {} (bound {bound:e})\n  got {}\n  ref {}",
                fmt_r(a),
                fmt_r(b),
                fmt_v(got),
                fmt_v(&want.v)
            ));
        }
    }
    Ok(())
}

/// Bits of two configurations' results: identical where the reference is exact (every NaN
/// alike), within twice the bound where it is not.
fn check_same(a: &V, b: &V, want: &RVal) -> Result<(), String> {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return Err(format!(
            "{} {:?} vs {} {:?}",
            a.dtype(),
            a.shape(),
            b.dtype(),
            b.shape()
        ));
    }
    let Some(bound) = want.err else {
        return Ok(());
    };
    if bound > 0.0 && verbose() {
        let same = a
            .flat_r()
            .iter()
            .zip(&b.flat_r())
            .all(|(x, y)| rf(*x).to_bits() == rf(*y).to_bits() || rf(*x).is_nan());
        eprintln!("  inexact leaf bit-identical across configurations: {same}");
    }
    for (i, (&x, &y)) in a.flat_r().iter().zip(&b.flat_r()).enumerate() {
        let ok = match (x, y) {
            (R::F(p), R::F(q)) if bound == 0.0 => {
                (p.is_nan() && q.is_nan()) || p.to_bits() == q.to_bits()
            }
            (R::F(p), R::F(q)) => {
                p == q || (p.is_nan() && q.is_nan()) || (p - q).abs() <= 4.0 * bound
            }
            (R::I(p), R::I(q)) => p == q,
            (R::B(p), R::B(q)) => p == q,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "element {i}: {} vs {}\n  {}\n  {}",
                fmt_r(x),
                fmt_r(y),
                fmt_v(a),
                fmt_v(b)
            ));
        }
    }
    Ok(())
}

/// Runs every configuration of `p` and checks them; `Err` describes the first failure.
fn check_program(p: &Program) -> Result<(), String> {
    let leaves = p.leaves();
    let bytes: u64 = p
        .refs
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| (r.v.len() * r.v.dtype().size()) as u64)
        .sum();
    // Tight budgets, a fraction of the program's data: very tight on two devices (spills
    // often, and some kernels do not fit: a typed OutOfMemory, which skips that run), looser
    // on the others so that most runs finish.
    let budget = |devices: usize| match devices {
        2 => (bytes / 8).max(256),
        3 => (bytes / 3).max(2048),
        _ => (bytes / 5).max(1024),
    };
    if verbose() {
        let errs: Vec<Bound> = leaves
            .iter()
            .map(|&i| p.refs[i].as_ref().unwrap().err)
            .collect();
        eprintln!(
            "  stats: leaves exact {} within-bound {} not-comparable {}, rejected {}",
            errs.iter().filter(|e| **e == Some(0.0)).count(),
            errs.iter()
                .filter(|e| matches!(e, Some(x) if *x > 0.0))
                .count(),
            errs.iter().filter(|e| e.is_none()).count(),
            p.refs.iter().filter(|r| r.is_err()).count()
        );
    }
    let mut first: Option<(Cfg, Vec<V>)> = None;
    for &cfg in CONFIGS {
        let p2 = p.clone();
        let b = budget(cfg.devices);
        let res = std::panic::catch_unwind(move || run_cfg(&p2, cfg, b));
        let (status, out, spills) = match res {
            Ok(o) => o,
            Err(e) => {
                return Err(format!("{cfg:?}: PANIC: {}", panic_text(&*e)));
            }
        };
        let oom = |v: &str| v == "OutOfMemory";
        if verbose() {
            let n_oom = status
                .iter()
                .filter(|s| matches!(s, Err(e) if oom(e)))
                .count();
            let ex = match &out {
                Ok(_) => "ok".to_string(),
                Err(e) => variant(e),
            };
            eprintln!("  {cfg:?}: {n_oom} statements out of memory, execute {ex}, spills {spills}");
        }
        for (i, (st, want)) in status.iter().zip(&p.refs).enumerate() {
            match (st, want) {
                (Ok((shape, dt)), Ok(w)) => {
                    if shape.as_slice() != w.v.shape() || *dt != w.v.dtype() {
                        return Err(format!(
                            "{cfg:?}: v{i} recorded as {dt} {shape:?}, reference {} {:?}",
                            w.v.dtype(),
                            w.v.shape()
                        ));
                    }
                }
                (Err(e), _) if cfg.devices > 0 && (oom(e) || e == "Skipped") => {}
                (Err(e), Ok(_)) => {
                    return Err(format!("{cfg:?}: v{i} rejected ({e}), numpy accepts it"))
                }
                (Ok(_), Err(e)) => {
                    return Err(format!("{cfg:?}: v{i} accepted, numpy rejects it: {e}"))
                }
                // A reference error that names its variant (`[ScalarOverflow] ...`) must be
                // that typed error.
                (Err(e), Err(w)) => {
                    if let Some((v, _)) = w.strip_prefix('[').and_then(|w| w.split_once(']')) {
                        if e != v {
                            return Err(format!("{cfg:?}: v{i} rejected with {e}, want {w}"));
                        }
                    }
                }
            }
        }
        if status.iter().any(|s| matches!(s, Err(e) if oom(e))) {
            continue;
        }
        let out = match out {
            Ok(o) => o,
            Err(e) if cfg.devices > 0 && oom(&variant(&e)) => continue,
            Err(e) => return Err(format!("{cfg:?}: execute failed: {e}")),
        };
        let got: Vec<V> = out.iter().map(V::from_host).collect();
        for (k, &i) in leaves.iter().enumerate() {
            let want = p.refs[i].as_ref().unwrap();
            check_ref(&got[k], want).map_err(|e| format!("{cfg:?}: v{i} vs reference: {e}"))?;
            if let Some((c0, g0)) = &first {
                check_same(&g0[k], &got[k], want)
                    .map_err(|e| format!("v{i}: {c0:?} and {cfg:?} differ: {e}"))?;
            }
        }
        // Errors must be the same variant in every configuration.
        if first.is_none() {
            first = Some((cfg, got));
        }
    }
    Ok(())
}

/// Statement errors must be the same typed variant in every configuration (a separate pass so
/// that a mismatch names both).
fn check_errors_agree(p: &Program) -> Result<(), String> {
    let mut seen: Option<(Cfg, Vec<Option<String>>)> = None;
    for &cfg in &CONFIGS[..3] {
        let p2 = p.clone();
        let (status, _, _) = std::panic::catch_unwind(move || run_cfg(&p2, cfg, u64::MAX))
            .map_err(|_| format!("{cfg:?}: PANIC"))?;
        let errs: Vec<Option<String>> = status.into_iter().map(|s| s.err()).collect();
        if let Some((c0, e0)) = &seen {
            if *e0 != errs {
                return Err(format!("errors differ: {c0:?} {e0:?} vs {cfg:?} {errs:?}"));
            }
        } else {
            seen = Some((cfg, errs));
        }
    }
    Ok(())
}

// ============================================================================================
// Building programs from random words
// ============================================================================================

/// Reads choices from the words proptest generated (and shrinks), then from a generator seeded
/// by them once they run out.
struct Pick<'a> {
    words: &'a [u32],
    i: usize,
    state: u64,
}

impl Pick<'_> {
    fn word(&mut self) -> u32 {
        if self.i < self.words.len() {
            self.i += 1;
            return self.words[self.i - 1];
        }
        // splitmix64
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.word() as usize) % n.max(1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn of<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
    fn dtype(&mut self) -> DType {
        self.of(&[DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64])
    }
    fn axis(&mut self, nd: usize) -> isize {
        // Mostly valid (negative too); now and then out of range.
        if self.chance(5) {
            return nd as isize + self.below(2) as isize;
        }
        let a = self.below(nd.max(1)) as isize;
        if self.chance(40) {
            a - nd as isize
        } else {
            a
        }
    }
}

struct Builder {
    stmts: Vec<Stmt>,
    refs: Vec<Result<RVal, String>>,
    panic: Option<String>,
}

const DIMS: &[usize] = &[1, 2, 3, 4, 5, 0, 7, 8, 1, 3, 13, 32];

impl Builder {
    fn push(&mut self, st: Stmt) -> usize {
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eval(&st, &self.refs)
        })) {
            Ok(r) => r,
            Err(e) => {
                // The reference (or a random draw it asks Tessera for) panicked: keep the
                // program so far for the report.
                let msg = format!("PANIC in the reference or a draw: {}", panic_text(&*e));
                self.panic.get_or_insert(msg.clone());
                Err(msg)
            }
        };
        self.stmts.push(st);
        self.refs.push(r);
        self.refs.len() - 1
    }
    fn valid(&self) -> Vec<usize> {
        (0..self.refs.len())
            .filter(|&i| self.refs[i].is_ok())
            .collect()
    }
    fn shape_of(&self, i: usize) -> Vec<usize> {
        self.refs[i].as_ref().unwrap().v.shape().to_vec()
    }
    fn dtype_of(&self, i: usize) -> DType {
        self.refs[i].as_ref().unwrap().v.dtype()
    }

    fn random_shape(pk: &mut Pick) -> Vec<usize> {
        let nd = pk.of(&[0, 1, 1, 2, 2, 2, 3, 3, 4]);
        let mut s: Vec<usize> = (0..nd).map(|_| pk.of(DIMS)).collect();
        while s.iter().product::<usize>() > MAX_ELEMS {
            let k = s.iter().enumerate().max_by_key(|x| x.1).unwrap().0;
            s[k] /= 2;
        }
        s
    }

    fn hints(pk: &mut Pick, shape: &[usize]) -> Hints {
        let one = |pk: &mut Pick| -> Option<Vec<usize>> {
            match pk.below(4) {
                0 => None,
                1 => Some(vec![1 + pk.below(6)]),
                // At least one element per chunk (with_chunks(&[0]) is issue 15's "values
                // silently replaced": not generated).
                _ if !shape.is_empty() => Some(
                    shape
                        .iter()
                        .map(|&d| 1 + pk.below(d.max(1) + 1).min(d.max(1)))
                        .collect(),
                ),
                _ => Some(vec![1 + pk.below(3)]),
            }
        };
        [one(pk), one(pk)]
    }

    fn host_data(pk: &mut Pick, dt: DType, shape: &[usize]) -> V {
        let n: usize = shape.iter().product();
        let ints = |pk: &mut Pick, lo: i64, hi: i64| -> i64 {
            if pk.chance(4) {
                pk.of(&[lo, hi, -1, 0])
            } else {
                pk.below(21) as i64 - 10
            }
        };
        let float = |pk: &mut Pick| -> f64 {
            match pk.below(40) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => -0.0,
                4 => 1e30,
                5 => 2.5,
                6 => -0.5,
                7..=14 => pk.below(17) as f64 - 8.0,
                _ => (pk.word() as f64 / u32::MAX as f64 - 0.5) * 8.0,
            }
        };
        let vals: Vec<R> = (0..n)
            .map(|_| match dt {
                DType::Bool => R::B(pk.chance(50)),
                DType::I32 => R::I(ints(pk, i32::MIN as i64, i32::MAX as i64)),
                DType::I64 => R::I(ints(pk, i64::MIN, i64::MAX)),
                _ => R::F(float(pk)),
            })
            .collect();
        V::D(ArrayD::from_elem(IxDyn(shape), 0.0))
            .cast(dt)
            .fill_r(&vals)
    }

    /// A new source of `shape` (random kind where the shape allows).
    fn source(&mut self, pk: &mut Pick, shape: Vec<usize>, dt: Option<DType>) -> usize {
        let dt = dt.unwrap_or_else(|| pk.dtype());
        let kind = pk.below(10);
        let src = match kind {
            // Now and then a dtype numpy refuses (a typed error).
            0 if is_float(dt) || pk.chance(10) => Src::Rand {
                seed: pk.below(1000) as u64,
                skip: pk.below(2) as u8,
                normal: pk.chance(50),
                dtype: dt,
            },
            1 if is_int(dt) || pk.chance(10) => {
                let low = pk.below(11) as i64 - 5;
                Src::RandInt {
                    seed: pk.below(1000) as u64,
                    low,
                    // Now and then beyond int32 or empty (typed errors for int32).
                    high: if pk.chance(10) {
                        pk.of(&[1 << 40, low, (1 << 31) + 1])
                    } else {
                        low + 1 + pk.below(20) as i64
                    },
                    dtype: dt,
                }
            }
            // Every scalar, those an integer dtype cannot hold included (typed errors), and
            // now and then a float beyond int32 or int64.
            2 => Src::Full {
                value: match Self::scalar(pk, dt) {
                    Sc::F(_) if pk.chance(10) => Sc::F(pk.of(&[3e9, -2147483649.0, 1e19])),
                    v => v,
                },
                dtype: dt,
            },
            _ => Src::Host(Self::host_data(pk, dt, &shape)),
        };
        let chunks = Self::hints(pk, &shape);
        let i = self.push(Stmt::Source {
            src,
            shape: shape.clone(),
            chunks,
        });
        if self.refs[i].is_ok() {
            return i;
        }
        // A refused draw stays in the program (its typed error is checked); callers get
        // host data of the same shape instead.
        let src = Src::Host(Self::host_data(pk, dt, &shape));
        let chunks = Self::hints(pk, &shape);
        self.push(Stmt::Source { src, shape, chunks })
    }

    /// A standalone 1-D/2-D creation function.
    fn creation(&mut self, pk: &mut Pick) -> usize {
        let dt = pk.dtype();
        let (src, shape) = match pk.below(3) {
            0 if dt != DType::Bool => {
                // Decimal steps too (the last bits follow numpy's fill formula); integer
                // dtypes with integer arguments only (numpy fills those from the first two
                // values cast to the dtype, a rule too odd to be worth mirroring).
                let start = pk.below(9) as f64 - 4.0 + pk.of(&[0.0, 0.0, 0.1, -0.3]);
                let step = pk.of(&[1.0, 2.0, -1.0, 0.5, 0.25, -0.5, 3.0, 0.1, -0.3, 0.7]);
                let stop = start + step * pk.below(40) as f64 - pk.below(2) as f64 * 0.125;
                let n = ((stop - start) / step).ceil().max(0.0) as usize;
                let dt = if is_int(dt) && (step.fract() != 0.0 || start.fract() != 0.0) {
                    DType::F64
                } else {
                    dt
                };
                (
                    Src::Arange {
                        start,
                        stop,
                        step,
                        dtype: dt,
                    },
                    vec![n],
                )
            }
            1 => {
                let num = pk.below(30);
                (
                    Src::Linspace {
                        start: pk.below(9) as f64 - 4.0,
                        stop: pk.below(41) as f64 / 4.0 - 3.0,
                        num,
                        endpoint: pk.chance(60),
                        dtype: dt,
                    },
                    vec![num],
                )
            }
            _ => {
                let n = pk.below(9);
                let m = if pk.chance(50) {
                    Some(pk.below(9))
                } else {
                    None
                };
                (
                    Src::Eye {
                        n,
                        m,
                        k: pk.below(7) as i64 - 3,
                        dtype: dt,
                    },
                    vec![n, m.unwrap_or(n)],
                )
            }
        };
        let chunks = Self::hints(pk, &shape);
        self.push(Stmt::Source { src, shape, chunks })
    }

    /// A Python scalar for an operand of dtype `dt`.
    fn scalar(pk: &mut Pick, dt: DType) -> Sc {
        match pk.below(6) {
            0 => Sc::B(pk.chance(50)),
            1 | 2 => {
                if pk.chance(15) && dt != DType::Bool {
                    // Edges of int32 and int64, and Python ints beyond int32 (NEP 50: arithmetic
                    // raises, comparisons decide by value, clip drops a bound beyond the range).
                    Sc::I(pk.of(&[
                        i32::MIN as i64,
                        i32::MAX as i64,
                        1 << 31,
                        1 << 40,
                        -(1 << 40),
                        i64::MAX,
                        i64::MIN,
                    ]))
                } else {
                    Sc::I(pk.below(11) as i64 - 5)
                }
            }
            _ => Sc::F(pk.of(&[
                0.5,
                -1.5,
                2.0,
                1e-3,
                3.0,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                7.25,
            ])),
        }
    }

    /// A shape that broadcasts against `s`: some dims replaced by 1, some leading ones dropped.
    fn bshape(pk: &mut Pick, s: &[usize]) -> Vec<usize> {
        let drop = pk.below(s.len() + 1).min(pk.below(3));
        s[drop..]
            .iter()
            .map(|&d| if pk.chance(30) { 1 } else { d })
            .collect()
    }

    /// Another operand for `a`: an existing value whose shape broadcasts, or a new source.
    fn partner(&mut self, pk: &mut Pick, a: usize, scalar_ok: bool) -> Arg {
        let s = self.shape_of(a);
        if scalar_ok && pk.chance(30) {
            return Arg::S(Self::scalar(pk, self.dtype_of(a)));
        }
        let cands: Vec<usize> = self
            .valid()
            .into_iter()
            .filter(|&i| bcast_shape(&s, &self.shape_of(i)).is_ok())
            .collect();
        if !cands.is_empty() && pk.chance(60) {
            return Arg::T(pk.of(&cands));
        }
        let sh = if pk.chance(10) {
            Self::random_shape(pk)
        } else {
            Self::bshape(pk, &s)
        };
        Arg::T(self.source(pk, sh, None))
    }

    /// A random program step; returns false when nothing could be built.
    fn step(&mut self, pk: &mut Pick) {
        let valid = self.valid();
        if valid.is_empty() || pk.chance(8) {
            if pk.chance(70) {
                let sh = Self::random_shape(pk);
                self.source(pk, sh, None);
            } else {
                self.creation(pk);
            }
            return;
        }
        // Prefer the latest values, so programs are chains more than forests.
        let a = if pk.chance(60) {
            *valid.last().unwrap()
        } else {
            pk.of(&valid)
        };
        let sa = self.shape_of(a);
        let da = self.dtype_of(a);
        let nd = sa.len();
        let st = match pk.below(22) {
            0..=3 => {
                use BinaryOp::*;
                let op = pk.of(&[
                    Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt,
                    Ge, And, Or, Xor,
                ]);
                let b = self.partner(pk, a, true);
                let (a, b) = if pk.chance(25) {
                    (b, Arg::T(a))
                } else {
                    (Arg::T(a), b)
                };
                Stmt::Binary { op, a, b }
            }
            4 | 5 => {
                use UnaryOp::*;
                let op = pk.of(&[
                    Neg, Abs, Sign, Sqrt, Exp, Log, Log1p, Expm1, Sin, Cos, Tan, Tanh, Arcsin,
                    Arccos, Arctan, Floor, Ceil, Round, LogicalNot, IsNan, IsInf, IsFinite,
                ]);
                Stmt::Unary { op, a }
            }
            6 => {
                let x = self.partner(pk, a, true);
                let y = self.partner(pk, a, true);
                let c = if pk.chance(50) {
                    a
                } else {
                    match self.partner(pk, a, false) {
                        Arg::T(i) => i,
                        Arg::S(_) => a,
                    }
                };
                Stmt::Where { c, a: x, b: y }
            }
            7 => {
                let lo = self.partner(pk, a, true);
                let hi = self.partner(pk, a, true);
                Stmt::Clip { a, lo, hi }
            }
            8 => Stmt::Astype {
                a,
                dtype: pk.dtype(),
            },
            9 | 10 => {
                use ReduceOp::*;
                let op = pk.of(&[Sum, Prod, Mean, Var, Std, Min, Max, Any, All]);
                let axes = if pk.chance(30) || nd == 0 {
                    None
                } else {
                    let k = 1 + pk.below(nd);
                    let mut ax: Vec<isize> = (0..nd as isize).collect();
                    for i in 0..nd {
                        ax.swap(i, pk.below(nd));
                    }
                    let mut v: Vec<isize> = ax[..k].to_vec();
                    for x in v.iter_mut() {
                        if pk.chance(30) {
                            *x -= nd as isize;
                        }
                    }
                    if pk.chance(4) {
                        v.push(pk.axis(nd));
                    }
                    Some(v)
                };
                Stmt::Reduce {
                    op,
                    a,
                    axes,
                    keepdims: pk.chance(40),
                    ddof: pk.below(2) as u32,
                }
            }
            11 => Stmt::ArgRed {
                max: pk.chance(50),
                a,
                axis: if pk.chance(30) {
                    None
                } else {
                    Some(pk.axis(nd.max(1)))
                },
            },
            12 => {
                let size: usize = sa.iter().product();
                let mut dims = Vec::new();
                if size == 0 {
                    let k = 1 + pk.below(3);
                    for _ in 0..k {
                        dims.push(pk.of(&[0, 1, 2, 3]));
                    }
                    if !dims.contains(&0) {
                        dims[0] = 0;
                    }
                } else {
                    // Split the size into factors, in random order, with 1s sprinkled in.
                    let mut rest = size;
                    let mut f = 2;
                    while rest > 1 {
                        if rest.is_multiple_of(f) {
                            let mut d = f;
                            rest /= f;
                            while rest.is_multiple_of(f) && pk.chance(50) {
                                d *= f;
                                rest /= f;
                            }
                            dims.push(d);
                        } else {
                            f += 1;
                        }
                    }
                    if pk.chance(30) {
                        dims.insert(pk.below(dims.len() + 1), 1);
                    }
                    for i in 0..dims.len() {
                        let j = pk.below(dims.len());
                        dims.swap(i, j);
                    }
                }
                let mut shape: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
                if !shape.is_empty() && pk.chance(30) {
                    let k = pk.below(shape.len());
                    shape[k] = -1;
                }
                if pk.chance(5) && !shape.is_empty() {
                    shape[0] += 1;
                }
                Stmt::Reshape { a, shape }
            }
            13 => {
                if pk.chance(30) {
                    Stmt::Transpose { a, perm: None }
                } else {
                    let mut p: Vec<isize> = (0..nd as isize).collect();
                    for i in 0..nd {
                        p.swap(i, pk.below(nd));
                    }
                    for x in p.iter_mut() {
                        if pk.chance(25) {
                            *x -= nd as isize;
                        }
                    }
                    Stmt::Transpose { a, perm: Some(p) }
                }
            }
            14 => Stmt::Swapaxes {
                a,
                i: pk.axis(nd),
                j: pk.axis(nd),
            },
            15 => {
                if pk.chance(50) {
                    Stmt::ExpandDims {
                        a,
                        axis: pk.axis(nd + 1),
                    }
                } else {
                    let ones: Vec<isize> = (0..nd)
                        .filter(|&i| sa[i] == 1)
                        .map(|i| i as isize)
                        .collect();
                    let axes = if ones.is_empty() || pk.chance(40) {
                        if pk.chance(10) && nd > 0 {
                            Some(vec![pk.axis(nd)])
                        } else {
                            None
                        }
                    } else {
                        Some(vec![pk.of(&ones)])
                    };
                    Stmt::Squeeze { a, axes }
                }
            }
            16 => {
                let mut shape: Vec<usize> =
                    (0..pk.below(3)).map(|_| pk.of(&[1, 2, 3, 0])).collect();
                shape.extend(sa.iter().map(|&d| {
                    if d == 1 && pk.chance(50) {
                        pk.of(&[2, 3, 0])
                    } else {
                        d
                    }
                }));
                if shape.iter().product::<usize>() > MAX_ELEMS || pk.chance(5) {
                    shape = sa.iter().map(|&d| d + 1).collect();
                }
                Stmt::BroadcastTo { a, shape }
            }
            17 => {
                let mut args = Vec::new();
                let mut used = 0;
                let ell = nd > 0 && pk.chance(20);
                for (k, &dk) in sa.iter().enumerate() {
                    if ell && k == nd / 2 {
                        args.push(SliceArg::Ellipsis);
                        break;
                    }
                    if pk.chance(10) {
                        args.push(SliceArg::NewAxis);
                    }
                    let d = dk as isize;
                    let pos = |pk: &mut Pick| -> Option<isize> {
                        if pk.chance(30) {
                            None
                        } else {
                            Some(pk.below(2 * d as usize + 3) as isize - d - 1)
                        }
                    };
                    match pk.below(6) {
                        0 if d > 0 => {
                            args.push(SliceArg::Index(pk.below(2 * d as usize) as isize - d))
                        }
                        0 if pk.chance(20) => args.push(SliceArg::Index(0)),
                        1 => args.push(SliceArg::Range {
                            start: None,
                            stop: None,
                            step: 1,
                        }),
                        _ => {
                            let step = pk.of(&[1, 1, 2, -1, -2, 3, -3, 5]);
                            let step = if pk.chance(3) { 0 } else { step };
                            args.push(SliceArg::Range {
                                start: pos(pk),
                                stop: pos(pk),
                                step,
                            });
                        }
                    }
                    used += 1;
                    if used > 0 && pk.chance(15) {
                        break;
                    }
                }
                if pk.chance(10) {
                    args.push(SliceArg::NewAxis);
                }
                Stmt::Slice { a, args }
            }
            18 => {
                // Parts matching `a` off the axis: `a` itself, other values, or new sources.
                let axis = if nd == 0 { 0 } else { pk.axis(nd) };
                let ax = if nd == 0 {
                    0
                } else {
                    norm_axis(axis, nd).unwrap_or(0)
                };
                let mut xs = vec![a];
                for _ in 0..pk.below(3) {
                    if pk.chance(40) || nd == 0 {
                        xs.push(a);
                    } else {
                        let mut s = sa.clone();
                        s[ax] = pk.of(&[0, 1, 2, 5]);
                        let dt = if pk.chance(70) { Some(da) } else { None };
                        xs.push(self.source(pk, s, dt));
                    }
                }
                for i in 0..xs.len() {
                    let j = pk.below(xs.len());
                    xs.swap(i, j);
                }
                Stmt::Concat { xs, axis }
            }
            19 => {
                let n = 1 + pk.below(3);
                let mut xs = vec![a; n];
                if pk.chance(50) {
                    let dt = if pk.chance(70) { Some(da) } else { None };
                    let b = self.source(pk, sa.clone(), dt);
                    xs.push(b);
                }
                Stmt::Stack {
                    xs,
                    axis: pk.axis(nd + 1),
                }
            }
            20 => {
                // A right operand with a matching contraction axis (a new source).
                let k = if nd == 0 { 1 } else { sa[nd - 1] };
                let n = pk.of(&[1, 2, 3, 5, 0, 8]);
                let mut sb: Vec<usize> = match pk.below(3) {
                    0 => vec![k],
                    1 => vec![k, n],
                    _ => {
                        let batch: Vec<usize> = if nd > 2 {
                            Self::bshape(pk, &sa[..nd - 2])
                        } else {
                            vec![pk.of(&[1, 2, 3])]
                        };
                        [batch, vec![k, n]].concat()
                    }
                };
                if pk.chance(5) {
                    sb[0] += 1;
                }
                if sb.iter().product::<usize>() > MAX_ELEMS {
                    sb = vec![k];
                }
                let dt = if pk.chance(60) { Some(da) } else { None };
                let b = self.source(pk, sb, dt);
                if pk.chance(60) {
                    Stmt::Matmul { a, b }
                } else {
                    Stmt::Dot { a, b }
                }
            }
            _ => {
                if pk.chance(50) && nd > 0 {
                    let r = pk.below(nd.min(2)) + 1;
                    // Contract the last r axes of a with the first r of a new b (in a random
                    // order of the pairs).
                    let mut aa: Vec<isize> = ((nd - r)..nd).map(|x| x as isize).collect();
                    let mut bs: Vec<usize> = sa[nd - r..].to_vec();
                    let ab: Vec<isize> = (0..r as isize).collect();
                    if pk.chance(50) {
                        // Pair the axes in the other order: a's reversed with b's sizes
                        // reversed to match.
                        aa.reverse();
                        bs.reverse();
                    }
                    if pk.chance(40) {
                        bs.push(pk.of(&[1, 2, 4]));
                    }
                    if bs.iter().product::<usize>() > MAX_ELEMS {
                        bs = sa[nd - r..].to_vec();
                    }
                    let dt = if pk.chance(60) { Some(da) } else { None };
                    let b = self.source(pk, bs, dt);
                    Stmt::Tensordot { a, b, aa, ab }
                } else {
                    Stmt::Rechunk {
                        a,
                        chunks: Self::hints(pk, &sa),
                    }
                }
            }
        };
        self.push(st);
    }
}

fn build(words: &[u32], steps: usize) -> Program {
    let mut pk = Pick {
        words,
        i: 0,
        state: words
            .iter()
            .fold(0x1234_5678u64, |h, &w| h.rotate_left(7) ^ w as u64),
    };
    let mut b = Builder {
        stmts: Vec::new(),
        refs: Vec::new(),
        panic: None,
    };
    let sh = Builder::random_shape(&mut pk);
    b.source(&mut pk, sh, None);
    for _ in 0..steps {
        if b.panic.is_some() {
            break;
        }
        b.step(&mut pk);
    }
    Program {
        stmts: b.stmts,
        refs: b.refs,
        panic: b.panic,
    }
}

/// Builds and checks one case on a thread of its own, failing on a panic or a hang.
fn run_case(words: Vec<u32>, steps: usize) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let w2 = words.clone();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(move || {
            let p = build(&w2, steps);
            let r = match &p.panic {
                Some(m) => Err(m.clone()),
                None => check_program(&p).and_then(|_| check_errors_agree(&p)),
            };
            (p.py(), r)
        });
        let _ = tx.send(r);
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(Ok((py, Ok(())))) => {
            if verbose() {
                eprintln!("passed:\n{py}");
            }
            Ok(())
        }
        Ok(Ok((py, Err(e)))) => Err(format!("{e}\nprogram:\n{py}")),
        Ok(Err(_)) => {
            // A panic while building (the reference or a random draw): show the program.
            let prog = std::panic::catch_unwind(|| build(&words, steps).py())
                .unwrap_or_else(|_| "(the program could not be rebuilt)".into());
            Err(format!(
                "panic while building or checking\nprogram:\n{prog}"
            ))
        }
        Err(_) => {
            let prog = std::panic::catch_unwind(|| build(&words, steps).py())
                .unwrap_or_else(|_| "(the program could not be rebuilt)".into());
            Err(format!(
                "HANG: the case ran over {CASE_LIMIT:?}\nprogram:\n{prog}"
            ))
        }
    }
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The proptest seed: `TESSERA_PROPTEST_SEED`, else a fixed one.
fn seed() -> u64 {
    std::env::var("TESSERA_PROPTEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_206)
}

/// `TESSERA_PROPTEST_VERBOSE=1` prints every program and what each configuration did.
fn verbose() -> bool {
    std::env::var_os("TESSERA_PROPTEST_VERBOSE").is_some_and(|v| v != "0")
}

fn cases() -> u32 {
    std::env::var("TESSERA_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// linspace with dtype=bool is the truthiness of the float values (numpy floors only for
/// integer dtypes): found by `random_programs`, where values in (0, 1) came out False.
#[test]
fn linspace_bool_is_truthiness() {
    let s = tessera::cpu_session();
    let got = s
        .linspace(0.0, 1.0, 5, true, DType::Bool)
        .execute()
        .unwrap();
    assert_eq!(
        V::from_host(&got)
            .flat_r()
            .iter()
            .map(|&r| rf(r))
            .collect::<Vec<_>>(),
        [0.0, 1.0, 1.0, 1.0, 1.0]
    );
    let seed: u64 = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed}");
    let words: Vec<u32> = (0..64u64)
        .map(|i| (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 32)) as u32 ^ i as u32)
        .collect();
    let mut pk = Pick {
        words: &words,
        i: 0,
        state: seed,
    };
    for _ in 0..20 {
        let (num, endpoint) = (pk.below(40), pk.chance(50));
        let start = pk.below(1000) as f64 / 100.0 - 5.0;
        let stop = pk.below(1000) as f64 / 100.0 - 5.0;
        let src = Src::Linspace {
            start,
            stop,
            num,
            endpoint,
            dtype: DType::Bool,
        };
        let st = Stmt::Source {
            src: src.clone(),
            shape: vec![num],
            chunks: [None, None],
        };
        let want = eval(&st, &[]).unwrap();
        let t = make_source(&s, &src, &[num])
            .unwrap()
            .with_chunks(&[1 + pk.below(7)])
            .unwrap();
        let got = V::from_host(&t.execute().unwrap());
        check_ref(&got, &want).unwrap_or_else(|e| panic!("{}: {e}", st.py()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        // A fixed seed, so CI runs the same programs every time (a new finding must not turn
        // an unrelated change red); TESSERA_PROPTEST_SEED=<u64> explores other programs.
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed()),
        ..ProptestConfig::default()
    })]

    /// Random programs: every configuration agrees bit for bit, with the reference within its
    /// bound, with the same typed errors, and without panics or hangs.
    #[test]
    fn random_programs(words in proptest::collection::vec(any::<u32>(), 0..400), steps in 1usize..=6) {
        if let Err(e) = run_case(words, steps) {
            prop_assert!(false, "{}", e);
        }
    }
}
