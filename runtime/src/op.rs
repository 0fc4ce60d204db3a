//! Operators of the coarse graph: one enum, grouped into sources, elementwise, reductions,
//! movement and library ops. Dtype rules live here so every backend sees operands already cast.

use crate::dtype::{DType, Scalar, F64};
use serde::{Deserialize, Serialize};

/// One-input elementwise operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum UnaryOp {
    Neg,
    Abs,
    Sign,
    Sqrt,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sin,
    Cos,
    Tan,
    Tanh,
    Arcsin,
    Arccos,
    Arctan,
    Floor,
    Ceil,
    Round,
    LogicalNot,
    IsNan,
    IsInf,
    IsFinite,
    Sinh,
    Cosh,
    Arcsinh,
    Arccosh,
    Arctanh,
    Log2,
    Log10,
    Exp2,
    Trunc,
    Cbrt,
    Square,
    Reciprocal,
    Signbit,
    Invert,
}

impl UnaryOp {
    /// Every unary operator, in declaration order (for lookup by name and for exhaustive tests).
    pub const ALL: &'static [UnaryOp] = &[
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Sqrt,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Expm1,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tan,
        UnaryOp::Tanh,
        UnaryOp::Arcsin,
        UnaryOp::Arccos,
        UnaryOp::Arctan,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::LogicalNot,
        UnaryOp::IsNan,
        UnaryOp::IsInf,
        UnaryOp::IsFinite,
        UnaryOp::Sinh,
        UnaryOp::Cosh,
        UnaryOp::Arcsinh,
        UnaryOp::Arccosh,
        UnaryOp::Arctanh,
        UnaryOp::Log2,
        UnaryOp::Log10,
        UnaryOp::Exp2,
        UnaryOp::Trunc,
        UnaryOp::Cbrt,
        UnaryOp::Square,
        UnaryOp::Reciprocal,
        UnaryOp::Signbit,
        UnaryOp::Invert,
    ];
    /// The operator numpy calls `name` (as [`UnaryOp::name`] spells it), if Tessera has it.
    pub fn from_name(name: &str) -> Option<UnaryOp> {
        Self::ALL.iter().copied().find(|op| op.name() == name)
    }
    /// numpy's name.
    pub fn name(self) -> &'static str {
        use UnaryOp::*;
        match self {
            Neg => "negative",
            Abs => "absolute",
            Sign => "sign",
            Sqrt => "sqrt",
            Exp => "exp",
            Log => "log",
            Log1p => "log1p",
            Expm1 => "expm1",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Tanh => "tanh",
            Arcsin => "arcsin",
            Arccos => "arccos",
            Arctan => "arctan",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            LogicalNot => "logical_not",
            IsNan => "isnan",
            IsInf => "isinf",
            IsFinite => "isfinite",
            Sinh => "sinh",
            Cosh => "cosh",
            Arcsinh => "arcsinh",
            Arccosh => "arccosh",
            Arctanh => "arctanh",
            Log2 => "log2",
            Log10 => "log10",
            Exp2 => "exp2",
            Trunc => "trunc",
            Cbrt => "cbrt",
            Square => "square",
            Reciprocal => "reciprocal",
            Signbit => "signbit",
            Invert => "invert",
        }
    }
    /// True for the transcendental functions that compute in floating point.
    pub fn is_transcendental(self) -> bool {
        use UnaryOp::*;
        matches!(
            self,
            Sqrt | Exp
                | Log
                | Log1p
                | Expm1
                | Sin
                | Cos
                | Tan
                | Tanh
                | Arcsin
                | Arccos
                | Arctan
                | Sinh
                | Cosh
                | Arcsinh
                | Arccosh
                | Arctanh
                | Log2
                | Log10
                | Exp2
                | Cbrt
        )
    }
    /// (dtype the operand is cast to, result dtype), or `None` when numpy rejects the dtype.
    pub fn dtypes(self, x: DType) -> Option<(DType, DType)> {
        use UnaryOp::*;
        match self {
            _ if self.is_transcendental() => Some((x.float_of(), x.float_of())),
            Neg | Sign if x == DType::Bool => None,
            // numpy rounds bool in float16, which Tessera lacks: float32, as for exp(bool).
            Round if x == DType::Bool => Some((DType::F32, DType::F32)),
            // numpy computes these on bool in int8, which Tessera lacks: the smallest integer it has.
            Square | Reciprocal if x == DType::Bool => Some((DType::I32, DType::I32)),
            Neg | Abs | Sign | Floor | Ceil | Round | Trunc | Square | Reciprocal => Some((x, x)),
            LogicalNot => Some((DType::Bool, DType::Bool)),
            IsNan | IsInf | IsFinite => Some((x, DType::Bool)),
            // numpy's signbit loops are float only: integers cast safely to a float first.
            Signbit if x.is_float() => Some((x, DType::Bool)),
            Signbit => Some((x.float_of(), DType::Bool)),
            Invert if x.is_float() => None,
            Invert => Some((x, x)),
            _ => None,
        }
    }
}

/// Two-input elementwise operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Xor,
    Arctan2,
    Hypot,
    Copysign,
    Nextafter,
    Logaddexp,
    BitAnd,
    BitOr,
    BitXor,
    LeftShift,
    RightShift,
}

impl BinaryOp {
    /// Every binary operator, in declaration order (for lookup by name and for exhaustive tests).
    pub const ALL: &'static [BinaryOp] = &[
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Xor,
        BinaryOp::Arctan2,
        BinaryOp::Hypot,
        BinaryOp::Copysign,
        BinaryOp::Nextafter,
        BinaryOp::Logaddexp,
        BinaryOp::BitAnd,
        BinaryOp::BitOr,
        BinaryOp::BitXor,
        BinaryOp::LeftShift,
        BinaryOp::RightShift,
    ];
    /// The operator numpy calls `name` (as [`BinaryOp::name`] spells it), if Tessera has it.
    pub fn from_name(name: &str) -> Option<BinaryOp> {
        Self::ALL.iter().copied().find(|op| op.name() == name)
    }
    /// numpy's name.
    pub fn name(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "add",
            Sub => "subtract",
            Mul => "multiply",
            Div => "true_divide",
            FloorDiv => "floor_divide",
            Mod => "remainder",
            Pow => "power",
            Maximum => "maximum",
            Minimum => "minimum",
            Eq => "equal",
            Ne => "not_equal",
            Lt => "less",
            Le => "less_equal",
            Gt => "greater",
            Ge => "greater_equal",
            And => "logical_and",
            Or => "logical_or",
            Xor => "logical_xor",
            Arctan2 => "arctan2",
            Hypot => "hypot",
            Copysign => "copysign",
            Nextafter => "nextafter",
            Logaddexp => "logaddexp",
            BitAnd => "bitwise_and",
            BitOr => "bitwise_or",
            BitXor => "bitwise_xor",
            LeftShift => "left_shift",
            RightShift => "right_shift",
        }
    }
    /// True for comparisons and logical ops (bool result).
    pub fn is_predicate(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor)
    }
    /// (dtype both operands are cast to, result dtype) given the promoted dtype, or `None` when
    /// numpy rejects it.
    pub fn dtypes(self, promoted: DType) -> Option<(DType, DType)> {
        use BinaryOp::*;
        match self {
            // True division: float32 stays, everything else (bool, ints) divides in float64.
            Div if promoted == DType::F32 => Some((DType::F32, DType::F32)),
            Div => Some((DType::F64, DType::F64)),
            And | Or | Xor => Some((DType::Bool, DType::Bool)),
            // Float-only functions: integers and bool compute in numpy's float for them.
            Arctan2 | Hypot | Copysign | Nextafter | Logaddexp => {
                Some((promoted.float_of(), promoted.float_of()))
            }
            BitAnd | BitOr | BitXor | LeftShift | RightShift if promoted.is_float() => None,
            BitAnd | BitOr | BitXor => Some((promoted, promoted)),
            Sub if promoted == DType::Bool => None,
            // numpy computes these in int8, which Tessera lacks: the smallest integer it has.
            FloorDiv | Mod | Pow | LeftShift | RightShift if promoted == DType::Bool => {
                Some((DType::I32, DType::I32))
            }
            _ if self.is_predicate() => Some((promoted, DType::Bool)),
            _ => Some((promoted, promoted)),
        }
    }
}

/// Reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ReduceOp {
    Sum,
    Prod,
    Mean,
    Var,
    Std,
    Min,
    Max,
    Any,
    All,
}

impl ReduceOp {
    /// numpy's name.
    pub fn name(self) -> &'static str {
        use ReduceOp::*;
        match self {
            Sum => "sum",
            Prod => "prod",
            Mean => "mean",
            Var => "var",
            Std => "std",
            Min => "min",
            Max => "max",
            Any => "any",
            All => "all",
        }
    }
    /// Result dtype (numpy: integer sums widen to int64, means of integers are float64).
    pub fn result_dtype(self, x: DType) -> DType {
        use ReduceOp::*;
        match self {
            Sum | Prod => match x {
                DType::Bool | DType::I32 | DType::I64 => DType::I64,
                d => d,
            },
            Mean | Var | Std => match x {
                DType::F32 => DType::F32,
                _ => DType::F64,
            },
            Min | Max => x,
            Any | All => DType::Bool,
        }
    }
    /// True when a reduction over zero elements has no identity.
    pub fn needs_nonempty(self) -> bool {
        matches!(self, ReduceOp::Min | ReduceOp::Max)
    }
}

/// Arg-reductions (index of the extreme along one axis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ArgOp {
    ArgMin,
    ArgMax,
}

/// Distributions of the random source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dist {
    /// Uniform in [low, high).
    Uniform {
        /// Lower bound.
        low: F64,
        /// Upper bound.
        high: F64,
    },
    /// Normal with mean and standard deviation.
    Normal {
        /// Mean.
        mean: F64,
        /// Standard deviation.
        std: F64,
    },
    /// Integers uniform in [low, high).
    RandInt {
        /// Lower bound.
        low: i64,
        /// Upper bound (exclusive).
        high: i64,
    },
}

/// One axis of a basic slice, normalized (numpy semantics) against the axis length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AxisSlice {
    /// First index taken.
    pub start: usize,
    /// Number of elements taken.
    pub len: usize,
    /// Step (never 0; negative walks backwards).
    pub step: isize,
}

impl AxisSlice {
    /// The index of the `i`-th element taken.
    pub fn index(&self, i: usize) -> usize {
        (self.start as isize + i as isize * self.step) as usize
    }
}

/// The bins of a histogram ([`Op::Histogram`]): numpy's rules, including the dtypes its
/// index arithmetic runs in, so that an element on or near an edge lands where numpy puts it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HistBins {
    /// The `n + 1` ascending edges, as the edges' dtype holds them; the last bin includes its
    /// right edge, elements outside `[edges[0], edges[n]]` (and NaN) count nowhere.
    pub edges: Vec<F64>,
    /// Equal bins between `first` and `last` (unrounded): the bin index is computed from
    /// `(x - first) / (last - first) * n`, then corrected against the edges; `None` finds the
    /// bin by binary search in `edges` (numpy's path for explicit edges).
    pub uniform: Option<(F64, F64)>,
    /// The edges (and the element subtraction) are float32: numpy's bin dtype for float32 data.
    pub single: bool,
    /// With `single`, the division and scaling still run in float64 (numpy's arithmetic when
    /// the range came as Python numbers rather than from the data's own float32 min and max).
    pub wide_div: bool,
}

/// The operators of the coarse graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// User data, stored in the graph's constant table under this id.
    Constant {
        /// Constant id.
        id: u64,
    },
    /// Data outside Tessera (a numpy buffer read in place, a file), read chunk by chunk; held
    /// in the graph's external table under this id.
    External {
        /// External id (from the constants' counter).
        id: u64,
    },
    /// Every element equal to `value`.
    Full {
        /// The value.
        value: Scalar,
    },
    /// `start + i * step` (1-D).
    Arange {
        /// First value.
        start: F64,
        /// Step.
        step: F64,
    },
    /// numpy's linspace (1-D): `start + i * step`, last element exactly `stop` when `endpoint`.
    Linspace {
        /// First value.
        start: F64,
        /// Last value.
        stop: F64,
        /// Whether `stop` is included.
        endpoint: bool,
    },
    /// Ones on the `k`-th diagonal (2-D).
    Eye {
        /// Diagonal offset.
        k: i64,
    },
    /// Random values from the counter-based generator.
    Random {
        /// Seed.
        seed: u64,
        /// Draw number within the generator (so consecutive draws differ).
        stream: u64,
        /// Distribution.
        dist: Dist,
    },
    /// One-input elementwise op (operand already cast).
    Unary(UnaryOp),
    /// Two-input elementwise op with broadcasting (operands already cast to one dtype).
    Binary(BinaryOp),
    /// `where(cond, a, b)`: cond is bool, a and b share the result dtype.
    Where,
    /// `astype`; the target is the node's dtype.
    Cast,
    /// Reduction over a set of axes (sorted, unique).
    Reduce {
        /// The reduction.
        op: ReduceOp,
        /// Axes reduced.
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keepdims: bool,
        /// Delta degrees of freedom (var/std).
        ddof: u32,
    },
    /// argmin/argmax over one axis.
    ArgReduce {
        /// Which.
        op: ArgOp,
        /// The axis.
        axis: usize,
    },
    /// Row-major reshape; the target is the node's shape.
    Reshape,
    /// Axis permutation.
    Transpose {
        /// `out.axis(i) = in.axis(perm[i])`.
        perm: Vec<usize>,
    },
    /// Broadcast to the node's shape.
    BroadcastTo,
    /// Basic slicing, one entry per axis.
    Slice {
        /// Per-axis slices.
        axes: Vec<AxisSlice>,
    },
    /// Concatenation along an axis (operands share dtype).
    Concat {
        /// The axis.
        axis: usize,
    },
    /// Batched matrix product of two arrays of the same ndim (>= 2), batch dims broadcast.
    MatMul,
    /// A dense kernel over the last two axes (factorizations, solves), batched over the
    /// leading ones; several results are packed into one array ([`crate::linalg`]).
    Dense(crate::linalg::DenseOp),
    /// Change the chunking; the target chunk shape is the node's chunk hint.
    Rechunk,
    /// numpy's `searchsorted`: for every element of `inputs[1]` (any shape), the int64 number of
    /// elements of the sorted 1-D `inputs[0]` (same dtype) that sort before it (numpy's order:
    /// NaN after every number), or with `right` before or equal to it.
    SearchSorted {
        /// numpy's `side='right'`.
        right: bool,
    },
    /// numpy's `bincount` of the 1-D integer `inputs[0]` (non-negative, below `len`): int64
    /// counts of each value `0..len`, or with a float64 `inputs[1]` the sums of the weights.
    /// `len` was found by running an earlier stage (the largest value).
    BinCount {
        /// The result's length.
        len: usize,
    },
    /// numpy's `histogram` counts of `inputs[0]` (any shape, every element) over `bins`:
    /// int64, or with a float64 `inputs[1]` (same shape) the sums of the weights.
    Histogram {
        /// The bin edges and how an element finds its bin.
        bins: HistBins,
    },
    /// Stable sort along one axis (NaN after every number; `descending` reverses that order,
    /// equal elements keeping their input order); with `arg` the int64 positions instead.
    Sort {
        /// The axis.
        axis: usize,
        /// Largest first.
        descending: bool,
        /// The positions (argsort) rather than the values.
        arg: bool,
    },
    /// The `k` best elements of every lane along `axis`, best first: the largest (descending
    /// order: NaN first) or the smallest (NaN last); ties go to the lower position. With `arg`
    /// their int64 positions instead of the values.
    TopK {
        /// The axis.
        axis: usize,
        /// How many.
        k: usize,
        /// The largest rather than the smallest.
        largest: bool,
        /// The positions rather than the values.
        arg: bool,
    },
    /// Brute-force k nearest neighbours: inputs the data (n x d) and the queries (m x d),
    /// float32 or float64 of one dtype; per query the `k` smallest squared distances
    /// `max(|y|^2 - 2 y.x + |x|^2, 0)`, nearest first (NaN last, ties to the lower data row),
    /// or with `arg` their int64 data rows. One fused kernel per (query block, data block)
    /// computes its distance panels in cache and keeps only the k best per query, so the
    /// m x n distance matrix is never written; the blocks' candidates merge as top-k's do.
    Knn {
        /// How many neighbours.
        k: usize,
        /// The data rows rather than the distances.
        arg: bool,
    },
    /// Per segment of `seg` elements of a 1-D input, how many fall in each bucket that the
    /// sorted `pivots` cut (int64, one row per segment): the measuring stage of a sample sort.
    /// A pivot is (value bits, position): the value as f64 bits for floats, as i64 bits for
    /// integers and bool; an element (v, i) is in bucket `b` when exactly `b` pivots come
    /// before it in the stable sort order (value, then position), so equal values split by
    /// position and every bucket stays near its share.
    BucketCount {
        /// Elements per segment.
        seg: usize,
        /// The pivots, in the sort's order.
        pivots: Vec<(u64, u64)>,
        /// The sort's order is largest first (positions still ascending among equals).
        descending: bool,
    },
    /// A stable sort (or argsort) of a 1-D input larger than a chunk, by sample sort: each
    /// segment of `seg` elements split by the `pivots` into buckets whose sizes the measuring
    /// stage found (`counts`, segment-major), each bucket gathered from every segment and
    /// sorted on its own; the buckets in order are the result.
    SampleSort {
        /// Elements per segment.
        seg: usize,
        /// The pivots, ascending (see [`Op::BucketCount`]).
        pivots: Vec<(u64, u64)>,
        /// Elements of each segment in each bucket, segment-major.
        counts: Vec<usize>,
        /// Largest first.
        descending: bool,
        /// The positions rather than the values.
        arg: bool,
    },
    /// Cumulative sum (or product) along `axis`; the operand is already cast to the node's
    /// dtype.
    Scan {
        /// The axis.
        axis: usize,
        /// Product rather than sum.
        prod: bool,
    },
    /// The first input gathered along `axis` at the positions held by the second, a 1-D int64
    /// constant of positions already checked and made non-negative: its values are known when
    /// tiling, so each chunk reads only the input chunks its positions touch.
    Take {
        /// The axis.
        axis: usize,
    },
    /// numpy's `take_along_axis`: `out[.., i, ..] = x[.., idx[.., i, ..], ..]` along `axis`,
    /// the two inputs (x, int64 idx) of equal shape except along `axis`; an index out of
    /// range is an error when the chunk runs.
    TakeAlong {
        /// The axis.
        axis: usize,
    },
    /// The rows (along axis 0) of the first input where the second, a 1-D bool mask as long
    /// as axis 0, is true: a data-dependent length, measured by a stage run first (the mask's
    /// true count per segment of `seg` rows), so the node's shape is known when it is recorded.
    Compact {
        /// Rows per segment.
        seg: usize,
        /// True rows per segment, as the stage measured them (each chunk checks its own).
        counts: Vec<usize>,
    },
}

impl Op {
    /// A short name for errors and stats.
    pub fn name(&self) -> String {
        match self {
            Op::Unary(u) => u.name().to_string(),
            Op::Binary(b) => b.name().to_string(),
            Op::Reduce { op, .. } => op.name().to_string(),
            Op::ArgReduce { op, .. } => format!("{op:?}").to_lowercase(),
            Op::Dense(d) => d.name().to_string(),
            Op::Sort { arg: true, .. } => "argsort".to_string(),
            Op::Sort { arg: false, .. } => "sort".to_string(),
            Op::TopK { .. } => "topk".to_string(),
            Op::Knn { .. } => "knn".to_string(),
            Op::Scan { prod: false, .. } => "cumsum".to_string(),
            Op::Scan { prod: true, .. } => "cumprod".to_string(),
            Op::TakeAlong { .. } => "take_along_axis".to_string(),
            Op::SampleSort { arg: true, .. } => "argsort".to_string(),
            Op::SampleSort { arg: false, .. } => "sort".to_string(),
            Op::BucketCount { .. } => "sort (measuring buckets)".to_string(),
            o => format!("{o:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("op")
                .to_lowercase(),
        }
    }
    /// True for ops that create data with no inputs.
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            Op::Constant { .. }
                | Op::External { .. }
                | Op::Full { .. }
                | Op::Arange { .. }
                | Op::Linspace { .. }
                | Op::Eye { .. }
                | Op::Random { .. }
        )
    }
    /// True for elementwise ops.
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Where | Op::Cast)
    }
}

/// The stable sort order of two encoded (value, position) pairs of dtype `dt`: NaN after
/// every number, `-0.0 == 0.0` (all reversed when `descending`), then the position.
pub fn pivot_order(
    dt: DType,
    descending: bool,
    a: &(u64, u64),
    b: &(u64, u64),
) -> std::cmp::Ordering {
    let v = if dt.is_float() {
        let (x, y) = (f64::from_bits(a.0), f64::from_bits(b.0));
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        }
    } else {
        (a.0 as i64).cmp(&(b.0 as i64))
    };
    let v = if descending { v.reverse() } else { v };
    v.then(a.1.cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    // One arm per variant, numbered 0..n: these stop compiling when a variant is added, and the
    // test then fails until `ALL` lists it.
    fn unary_index(op: UnaryOp) -> usize {
        use UnaryOp::*;
        match op {
            Neg => 0,
            Abs => 1,
            Sign => 2,
            Sqrt => 3,
            Exp => 4,
            Log => 5,
            Log1p => 6,
            Expm1 => 7,
            Sin => 8,
            Cos => 9,
            Tan => 10,
            Tanh => 11,
            Arcsin => 12,
            Arccos => 13,
            Arctan => 14,
            Floor => 15,
            Ceil => 16,
            Round => 17,
            LogicalNot => 18,
            IsNan => 19,
            IsInf => 20,
            IsFinite => 21,
            Sinh => 22,
            Cosh => 23,
            Arcsinh => 24,
            Arccosh => 25,
            Arctanh => 26,
            Log2 => 27,
            Log10 => 28,
            Exp2 => 29,
            Trunc => 30,
            Cbrt => 31,
            Square => 32,
            Reciprocal => 33,
            Signbit => 34,
            Invert => 35,
        }
    }
    const UNARY_COUNT: usize = 36;
    fn binary_index(op: BinaryOp) -> usize {
        use BinaryOp::*;
        match op {
            Add => 0,
            Sub => 1,
            Mul => 2,
            Div => 3,
            FloorDiv => 4,
            Mod => 5,
            Pow => 6,
            Maximum => 7,
            Minimum => 8,
            Eq => 9,
            Ne => 10,
            Lt => 11,
            Le => 12,
            Gt => 13,
            Ge => 14,
            And => 15,
            Or => 16,
            Xor => 17,
            Arctan2 => 18,
            Hypot => 19,
            Copysign => 20,
            Nextafter => 21,
            Logaddexp => 22,
            BitAnd => 23,
            BitOr => 24,
            BitXor => 25,
            LeftShift => 26,
            RightShift => 27,
        }
    }
    const BINARY_COUNT: usize = 28;

    #[test]
    fn every_op_is_listed_once_and_found_by_its_numpy_name() {
        let mut u: Vec<usize> = UnaryOp::ALL.iter().map(|&o| unary_index(o)).collect();
        u.sort_unstable();
        assert_eq!(u, (0..UNARY_COUNT).collect::<Vec<_>>());
        let mut b: Vec<usize> = BinaryOp::ALL.iter().map(|&o| binary_index(o)).collect();
        b.sort_unstable();
        assert_eq!(b, (0..BINARY_COUNT).collect::<Vec<_>>());
        for &op in UnaryOp::ALL {
            assert_eq!(UnaryOp::from_name(op.name()), Some(op), "{op:?}");
        }
        for &op in BinaryOp::ALL {
            assert_eq!(BinaryOp::from_name(op.name()), Some(op), "{op:?}");
        }
        assert_eq!(UnaryOp::from_name("absolute"), Some(UnaryOp::Abs));
        assert_eq!(BinaryOp::from_name("true_divide"), Some(BinaryOp::Div));
        assert_eq!(UnaryOp::from_name("add"), None);
        assert_eq!(BinaryOp::from_name("no_such_op"), None);
    }
}
