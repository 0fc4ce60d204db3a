//! The lazy `Tensor`: numpy's names and semantics; every method records a node in the session's
//! graph (executing it at once in eager mode). Fallible methods return `Result`; the arithmetic
//! operators (`+ - * / %`) return a tensor that carries any error until it is used or executed.

use crate::array::{Elem, HostArray};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::graph::{Node, NodeId};
use crate::op::{ArgOp, AxisSlice, BinaryOp, Op, ReduceOp, UnaryOp};
use crate::session::Session;
use ndarray::ArrayD;

#[derive(Clone, Debug)]
struct TNode {
    id: NodeId,
    shape: Vec<usize>,
    dtype: DType,
}

/// A lazy n-d array in a session's graph.
#[derive(Clone)]
pub struct Tensor {
    sess: Session,
    state: std::result::Result<TNode, Error>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            Ok(n) => write!(
                f,
                "Tensor(node={}, shape={:?}, dtype={})",
                n.id.0, n.shape, n.dtype
            ),
            Err(e) => write!(f, "Tensor(error: {e})"),
        }
    }
}

/// A tensor or a weak scalar operand.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// A tensor.
    T(&'a Tensor),
    /// A Python-like scalar.
    S(Scalar),
}

impl<'a> From<&'a Tensor> for Operand<'a> {
    fn from(t: &'a Tensor) -> Self {
        Operand::T(t)
    }
}
macro_rules! operand_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Operand<'_> {
            fn from(v: $t) -> Self {
                Operand::S(Scalar::from(v))
            }
        }
    )*};
}
operand_from!(f64, f32, i64, i32, bool);
impl From<Scalar> for Operand<'_> {
    fn from(s: Scalar) -> Self {
        Operand::S(s)
    }
}

/// Axes of a reduction: all of them, or a list (negative counts from the end).
#[derive(Clone, Debug, PartialEq)]
pub enum Axes {
    /// Every axis (numpy `axis=None`).
    All,
    /// These axes.
    Some(Vec<isize>),
}
impl From<isize> for Axes {
    fn from(a: isize) -> Self {
        Axes::Some(vec![a])
    }
}
impl From<i32> for Axes {
    fn from(a: i32) -> Self {
        Axes::Some(vec![a as isize])
    }
}
impl From<Vec<isize>> for Axes {
    fn from(a: Vec<isize>) -> Self {
        Axes::Some(a)
    }
}
impl From<&[isize]> for Axes {
    fn from(a: &[isize]) -> Self {
        Axes::Some(a.to_vec())
    }
}
impl<const N: usize> From<[isize; N]> for Axes {
    fn from(a: [isize; N]) -> Self {
        Axes::Some(a.to_vec())
    }
}
impl<const N: usize> From<[i32; N]> for Axes {
    fn from(a: [i32; N]) -> Self {
        Axes::Some(a.iter().map(|&x| x as isize).collect())
    }
}
impl From<Option<isize>> for Axes {
    fn from(a: Option<isize>) -> Self {
        a.map_or(Axes::All, |x| Axes::Some(vec![x]))
    }
}

/// One entry of a numpy basic index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SliceArg {
    /// `start:stop:step` (None = numpy's default).
    Range {
        /// Start.
        start: Option<isize>,
        /// Stop.
        stop: Option<isize>,
        /// Step (not 0).
        step: isize,
    },
    /// An integer index (drops the axis).
    Index(isize),
    /// `np.newaxis`.
    NewAxis,
    /// `...`.
    Ellipsis,
}

/// `start:stop:step`.
pub fn s(start: Option<isize>, stop: Option<isize>, step: isize) -> SliceArg {
    SliceArg::Range { start, stop, step }
}
/// `:`.
pub fn all() -> SliceArg {
    s(None, None, 1)
}

/// numpy's broadcast of two shapes.
///
/// # Errors
/// `ShapeMismatch` naming `op` and both shapes.
pub fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shape(op, a, b)),
        };
    }
    Ok(out)
}

fn norm_axis(op: &str, axis: isize, ndim: usize, shape: &[usize]) -> Result<usize> {
    let a = if axis < 0 { axis + ndim as isize } else { axis };
    if a < 0 || a >= ndim as isize {
        return Err(Error::AxisOutOfRange {
            op: op.to_string(),
            axis,
            ndim,
            shape: shape.to_vec(),
        });
    }
    Ok(a as usize)
}

impl Tensor {
    pub(crate) fn from_node(sess: Session, id: NodeId, shape: Vec<usize>, dtype: DType) -> Tensor {
        Tensor {
            sess,
            state: Ok(TNode { id, shape, dtype }),
        }
    }
    pub(crate) fn failed(sess: &Session, e: Error) -> Tensor {
        Tensor {
            sess: sess.clone(),
            state: Err(e),
        }
    }
    fn tn(&self) -> Result<&TNode> {
        self.state.as_ref().map_err(|e| e.clone())
    }
    /// The graph node, or the error this tensor carries.
    ///
    /// # Errors
    /// The deferred error of a failed operator expression.
    pub fn node_id(&self) -> Result<NodeId> {
        Ok(self.tn()?.id)
    }
    /// The error this tensor carries, if any.
    pub fn error(&self) -> Option<&Error> {
        self.state.as_ref().err()
    }
    /// The session.
    pub fn session(&self) -> &Session {
        &self.sess
    }
    /// Shape (empty for a tensor carrying an error).
    pub fn shape(&self) -> &[usize] {
        self.state
            .as_ref()
            .map(|n| n.shape.as_slice())
            .unwrap_or(&[])
    }
    /// Dtype (bool for a tensor carrying an error).
    pub fn dtype(&self) -> DType {
        self.state.as_ref().map(|n| n.dtype).unwrap_or(DType::Bool)
    }
    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }
    /// Number of elements.
    pub fn size(&self) -> usize {
        self.shape().iter().product()
    }

    fn same_session(&self, other: &Tensor, op: &str) -> Result<()> {
        if std::sync::Arc::ptr_eq(&self.sess.inner, &other.sess.inner) {
            Ok(())
        } else {
            Err(Error::SessionMismatch { op: op.to_string() })
        }
    }

    fn record(
        &self,
        op: Op,
        inputs: &[&Tensor],
        shape: Vec<usize>,
        dtype: DType,
    ) -> Result<Tensor> {
        let mut ids = Vec::with_capacity(inputs.len());
        for t in inputs {
            self.same_session(t, &op.name())?;
            ids.push(t.tn()?.id);
        }
        self.sess.record(Node {
            op,
            inputs: ids,
            shape,
            dtype,
            chunk: None,
        })
    }

    /// Executes and returns the result on the host.
    ///
    /// # Errors
    /// The tensor's deferred error, tiling or backend errors.
    pub fn execute(&self) -> Result<HostArray> {
        Ok(self.sess.execute_many(&[self])?.pop().expect("one result"))
    }
    /// Executes and returns an `ArrayD<T>`, casting to `T`'s dtype when needed.
    ///
    /// # Errors
    /// As [`Tensor::execute`].
    pub fn to_array<T: Elem>(&self) -> Result<ArrayD<T>> {
        let a = self.execute()?.cast(T::DTYPE);
        Ok(T::peel(&a).expect("cast to T's dtype").clone())
    }
    /// Executes a one-element tensor and returns its value as f64.
    ///
    /// # Errors
    /// As [`Tensor::execute`]; `InvalidArgument` when the tensor has more than one element.
    pub fn item(&self) -> Result<f64> {
        let a = self.to_array::<f64>()?;
        if a.len() != 1 {
            return Err(Error::invalid(
                "item",
                format!("tensor of shape {:?} is not a scalar", a.shape()),
            ));
        }
        Ok(a.iter().next().copied().expect("one element"))
    }

    /// The same data cut into chunks of `chunk` (one size per axis, or one size for all).
    /// On a source this changes how it is generated; otherwise it records a rechunk.
    ///
    /// # Errors
    /// A chunk shape whose length fits neither, or with a zero extent.
    pub fn with_chunks(&self, chunk: &[usize]) -> Result<Tensor> {
        let n = self.tn()?;
        if chunk.contains(&0) {
            return Err(Error::invalid(
                "chunk_size",
                format!(
                    "chunk shape {chunk:?} has a zero extent (array shape {:?}); every chunk \
                     extent must be at least 1",
                    n.shape
                ),
            ));
        }
        if chunk.len() != 1 && chunk.len() != n.shape.len() {
            return Err(Error::invalid(
                "chunk_size",
                format!(
                    "chunk shape {chunk:?} does not fit array shape {:?}",
                    n.shape
                ),
            ));
        }
        let node = crate::exec::lock(&self.sess.inner.graph).node(n.id).clone();
        let new = if node.op.is_source() {
            Node {
                chunk: Some(chunk.to_vec()),
                ..node
            }
        } else {
            Node {
                op: Op::Rechunk,
                inputs: vec![n.id],
                shape: n.shape.clone(),
                dtype: n.dtype,
                chunk: Some(chunk.to_vec()),
            }
        };
        let id = crate::exec::lock(&self.sess.inner.graph).add(new)?;
        Ok(Tensor::from_node(
            self.sess.clone(),
            id,
            n.shape.clone(),
            n.dtype,
        ))
    }

    fn scalar(&self, s: Scalar, dtype: DType) -> Tensor {
        self.sess.full(&[], s, dtype)
    }

    /// `astype(dtype)`.
    ///
    /// # Errors
    /// The tensor's deferred error.
    pub fn astype(&self, dtype: DType) -> Result<Tensor> {
        let n = self.tn()?;
        if n.dtype == dtype {
            return Ok(self.clone());
        }
        self.record(Op::Cast, &[self], n.shape.clone(), dtype)
    }

    fn operand(&self, o: Operand<'_>, dtype: DType) -> Result<Tensor> {
        match o {
            Operand::T(t) => t.astype(dtype),
            Operand::S(s) => Ok(self.scalar(s, dtype)),
        }
    }

    fn promoted(&self, op: &str, a: Operand<'_>, b: Operand<'_>) -> Result<DType> {
        Ok(match (a, b) {
            (Operand::T(x), Operand::T(y)) => DType::promote(x.tn()?.dtype, y.tn()?.dtype),
            (Operand::T(x), Operand::S(s)) | (Operand::S(s), Operand::T(x)) => {
                x.tn()?.dtype.promote_weak(&s)
            }
            (Operand::S(_), Operand::S(_)) => {
                return Err(Error::invalid(op, "needs at least one tensor operand"))
            }
        })
    }

    fn dtype_of(o: &Operand<'_>) -> DType {
        match o {
            Operand::T(t) => t.dtype(),
            Operand::S(s) => s.default_dtype(),
        }
    }

    /// A binary elementwise op between two operands (tensor or scalar), with numpy broadcasting
    /// and promotion.
    ///
    /// # Errors
    /// `ShapeMismatch` for shapes that do not broadcast, `UnsupportedDType` for dtypes numpy
    /// rejects (e.g. subtracting booleans), `ScalarOverflow` for an integer scalar outside the
    /// integer dtype the arithmetic computes in (comparisons decide such scalars by value).
    pub fn binary_op<'a>(
        &self,
        op: BinaryOp,
        a: impl Into<Operand<'a>>,
        b: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let (a, b) = (a.into(), b.into());
        let promoted = self.promoted(op.name(), a, b)?;
        let (mut cdt, rdt) = op
            .dtypes(promoted)
            .ok_or_else(|| Error::dtype(op.name(), &[Self::dtype_of(&a), Self::dtype_of(&b)]))?;
        // NEP 50: a Python int the integer compute dtype cannot hold makes arithmetic fail
        // (numpy's OverflowError) but decides a comparison by value: compare in int64, which
        // holds every such scalar, instead of wrapping it.
        for o in [a, b] {
            if let Operand::S(Scalar::Int(v)) = o {
                if cdt.is_int() && !cdt.holds_int(v) {
                    if !op.is_predicate() {
                        return Err(Error::ScalarOverflow {
                            op: op.name().into(),
                            value: v,
                            dtype: cdt,
                        });
                    }
                    cdt = DType::I64;
                }
            }
        }
        let ta = self.operand(a, cdt)?;
        let tb = self.operand(b, cdt)?;
        let shape = broadcast_shapes(op.name(), ta.shape(), tb.shape())?;
        self.record(Op::Binary(op), &[&ta, &tb], shape, rdt)
    }

    fn bin<'a>(&self, op: BinaryOp, other: impl Into<Operand<'a>>) -> Result<Tensor> {
        let other: Operand<'_> = other.into();
        self.binary_op(op, Operand::T(self), other)
    }

    fn un(&self, op: UnaryOp) -> Result<Tensor> {
        let n = self.tn()?;
        let (cdt, rdt) = op
            .dtypes(n.dtype)
            .ok_or_else(|| Error::dtype(op.name(), &[n.dtype]))?;
        let x = self.astype(cdt)?;
        self.record(Op::Unary(op), &[&x], n.shape.clone(), rdt)
    }
}

macro_rules! binary_methods {
    ($($(#[$m:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            $(#[$m])*
            ///
            /// # Errors
            /// Shapes that do not broadcast; dtypes numpy rejects.
            pub fn $name<'a>(&self, other: impl Into<Operand<'a>>) -> Result<Tensor> {
                self.bin(BinaryOp::$op, other)
            }
        )*}
    };
}
binary_methods! {
    /// `self + other`.
    add => Add,
    /// `self - other`.
    sub => Sub,
    /// `self * other`.
    mul => Mul,
    /// `self / other` (true division).
    div => Div,
    /// `self // other` (floor division, numpy semantics).
    floor_divide => FloorDiv,
    /// `self % other` (sign of the divisor, numpy semantics).
    rem => Mod,
    /// `self ** other`.
    pow => Pow,
    /// Elementwise maximum (NaN propagates).
    maximum => Maximum,
    /// Elementwise minimum (NaN propagates).
    minimum => Minimum,
    /// `self == other`.
    eq => Eq,
    /// `self != other`.
    ne => Ne,
    /// `self < other`.
    lt => Lt,
    /// `self <= other`.
    le => Le,
    /// `self > other`.
    gt => Gt,
    /// `self >= other`.
    ge => Ge,
    /// Logical and (truthiness of each operand).
    logical_and => And,
    /// Logical or.
    logical_or => Or,
    /// Logical xor.
    logical_xor => Xor,
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            #[doc = concat!("numpy's `", stringify!($name), "`.")]
            ///
            /// # Errors
            /// Dtypes numpy rejects (e.g. negating booleans).
            pub fn $name(&self) -> Result<Tensor> {
                self.un(UnaryOp::$op)
            }
        )*}
    };
}
unary_methods! {
    neg => Neg, abs => Abs, sign => Sign, sqrt => Sqrt, exp => Exp, log => Log, log1p => Log1p,
    expm1 => Expm1, sin => Sin, cos => Cos, tan => Tan, tanh => Tanh, arcsin => Arcsin,
    arccos => Arccos, arctan => Arctan, floor => Floor, ceil => Ceil, round => Round,
    logical_not => LogicalNot, isnan => IsNan, isinf => IsInf, isfinite => IsFinite,
}

impl Tensor {
    /// `clip(self, lo, hi)` = `minimum(maximum(self, lo), hi)`, computed in numpy's result dtype
    /// of all three operands.
    ///
    /// # Errors
    /// As the binary ops; `ScalarOverflow` for an integer bound inside neither the array's
    /// range nor beyond it on its own side (e.g. a lower bound above int32's maximum).
    pub fn clip<'a>(
        &self,
        lo: impl Into<Operand<'a>>,
        hi: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let xdt = self.tn()?.dtype;
        // numpy drops a Python-int bound beyond an integer array's range: it clips nothing
        // there, and keeping it would overflow the dtype.
        let keep = |o: Operand<'a>, low: bool| match o {
            Operand::S(Scalar::Int(v)) if xdt.is_int() => {
                let (min, max) = if xdt == DType::I32 {
                    (i32::MIN as i64, i32::MAX as i64)
                } else {
                    (i64::MIN, i64::MAX)
                };
                let beyond = if low { v <= min } else { v >= max };
                (!beyond).then_some(o)
            }
            _ => Some(o),
        };
        let bounds = [keep(lo.into(), true), keep(hi.into(), false)];
        // One result dtype from all three operands (numpy's result_type, scalars weak), so
        // nothing promotes twice or rounds through an intermediate dtype.
        let mut dt = xdt;
        for b in bounds.iter().flatten() {
            if let Operand::T(t) = b {
                dt = DType::promote(dt, t.tn()?.dtype);
            }
        }
        for b in bounds.iter().flatten() {
            if let Operand::S(s) = b {
                dt = dt.promote_weak(s);
            }
        }
        let mut out = self.astype(dt)?;
        if let Some(lo) = bounds[0] {
            out = out.maximum(lo)?;
        }
        if let Some(hi) = bounds[1] {
            out = out.minimum(hi)?;
        }
        Ok(out)
    }

    /// numpy's `where(self, a, b)` with `self` as the condition (cast to bool).
    ///
    /// # Errors
    /// Shapes that do not broadcast.
    pub fn where_<'a>(
        &self,
        a: impl Into<Operand<'a>>,
        b: impl Into<Operand<'a>>,
    ) -> Result<Tensor> {
        let (a, b) = (a.into(), b.into());
        let cond = self.astype(DType::Bool)?;
        let dt = match (a, b) {
            (Operand::S(x), Operand::S(y)) => DType::promote(x.default_dtype(), y.default_dtype()),
            _ => self.promoted("where", a, b)?,
        };
        // numpy's where casts a Python int to the result dtype C-style: one beyond int32 wraps
        // (`np.where(c, int32_arr, 2**40)` holds 0 there), unlike arithmetic, which raises.
        let wrap = |o: Operand<'a>| match o {
            Operand::S(Scalar::Int(v)) if dt == DType::I32 => {
                Operand::S(Scalar::Int(v as i32 as i64))
            }
            o => o,
        };
        let ta = self.operand(wrap(a), dt)?;
        let tb = self.operand(wrap(b), dt)?;
        let s1 = broadcast_shapes("where", cond.shape(), ta.shape())?;
        let shape = broadcast_shapes("where", &s1, tb.shape())?;
        self.record(Op::Where, &[&cond, &ta, &tb], shape, dt)
    }

    fn norm_axes(&self, op: &str, axes: Axes) -> Result<Vec<usize>> {
        let shape = self.shape().to_vec();
        let nd = shape.len();
        let mut v = match axes {
            Axes::All => (0..nd).collect::<Vec<_>>(),
            Axes::Some(list) => list
                .iter()
                .map(|&a| norm_axis(op, a, nd, &shape))
                .collect::<Result<Vec<_>>>()?,
        };
        let n = v.len();
        v.sort_unstable();
        v.dedup();
        if v.len() != n {
            return Err(Error::invalid(op, "duplicate value in 'axis'"));
        }
        Ok(v)
    }

    /// A reduction over `axes` (numpy semantics for dtype, keepdims and ddof).
    ///
    /// # Errors
    /// Axes out of range or repeated; min/max over an empty extent.
    pub fn reduce(
        &self,
        op: ReduceOp,
        axes: impl Into<Axes>,
        keepdims: bool,
        ddof: u32,
    ) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let axes = self.norm_axes(op.name(), axes.into())?;
        if op.needs_nonempty() && axes.iter().any(|&a| n.shape[a] == 0) {
            return Err(Error::EmptyReduction {
                op: op.name().into(),
                shape: n.shape.clone(),
            });
        }
        let shape: Vec<usize> = n
            .shape
            .iter()
            .enumerate()
            .filter_map(|(a, &d)| {
                if axes.contains(&a) {
                    keepdims.then_some(1)
                } else {
                    Some(d)
                }
            })
            .collect();
        self.record(
            Op::Reduce {
                op,
                axes,
                keepdims,
                ddof,
            },
            &[self],
            shape,
            op.result_dtype(n.dtype),
        )
    }
    /// Sum.
    ///
    /// # Errors
    /// Bad axes.
    pub fn sum(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdims, 0)
    }
    /// Product.
    ///
    /// # Errors
    /// Bad axes.
    pub fn prod(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Prod, axes, keepdims, 0)
    }
    /// Mean.
    ///
    /// # Errors
    /// Bad axes.
    pub fn mean(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axes, keepdims, 0)
    }
    /// Variance with `ddof`.
    ///
    /// # Errors
    /// Bad axes.
    pub fn var(&self, axes: impl Into<Axes>, keepdims: bool, ddof: u32) -> Result<Tensor> {
        self.reduce(ReduceOp::Var, axes, keepdims, ddof)
    }
    /// Standard deviation with `ddof`.
    ///
    /// # Errors
    /// Bad axes.
    pub fn std(&self, axes: impl Into<Axes>, keepdims: bool, ddof: u32) -> Result<Tensor> {
        self.reduce(ReduceOp::Std, axes, keepdims, ddof)
    }
    /// Minimum.
    ///
    /// # Errors
    /// Bad axes; an empty extent.
    pub fn min(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axes, keepdims, 0)
    }
    /// Maximum.
    ///
    /// # Errors
    /// Bad axes; an empty extent.
    pub fn max(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axes, keepdims, 0)
    }
    /// True where any element is truthy.
    ///
    /// # Errors
    /// Bad axes.
    pub fn any(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Any, axes, keepdims, 0)
    }
    /// True where all elements are truthy.
    ///
    /// # Errors
    /// Bad axes.
    pub fn all(&self, axes: impl Into<Axes>, keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::All, axes, keepdims, 0)
    }

    fn arg(&self, op: ArgOp, axis: Option<isize>) -> Result<Tensor> {
        let name = if op == ArgOp::ArgMax {
            "argmax"
        } else {
            "argmin"
        };
        let x = match axis {
            None => self.reshape(&[-1])?,
            // numpy ravels a 0-d operand: axis 0 and -1 are valid, and the answer is 0.
            Some(_) if self.tn()?.shape.is_empty() => self.reshape(&[1])?,
            Some(_) => self.clone(),
        };
        let n = x.tn()?.clone();
        let axis = norm_axis(name, axis.unwrap_or(0), n.shape.len(), &n.shape)?;
        if n.shape[axis] == 0 {
            return Err(Error::EmptyReduction {
                op: name.into(),
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = n.shape.clone();
        shape.remove(axis);
        x.record(Op::ArgReduce { op, axis }, &[&x], shape, DType::I64)
    }
    /// Index of the minimum along `axis` (`None`: of the flattened array). NaN counts as minimal.
    ///
    /// # Errors
    /// Axis out of range; an empty extent.
    pub fn argmin(&self, axis: Option<isize>) -> Result<Tensor> {
        self.arg(ArgOp::ArgMin, axis)
    }
    /// Index of the maximum along `axis` (`None`: of the flattened array). NaN counts as maximal.
    ///
    /// # Errors
    /// Axis out of range; an empty extent.
    pub fn argmax(&self, axis: Option<isize>) -> Result<Tensor> {
        self.arg(ArgOp::ArgMax, axis)
    }

    /// Row-major reshape; one entry may be -1.
    ///
    /// # Errors
    /// `BadReshape` when the sizes differ or the shape is malformed.
    pub fn reshape(&self, shape: &[isize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let size: usize = n.shape.iter().product();
        let bad = || Error::BadReshape {
            from: n.shape.clone(),
            from_size: size,
            to: shape.to_vec(),
        };
        let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
        if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad());
        }
        // Checked: a product that wraps could match `size` by accident. An overflowing product
        // with a zero extent is 0 (and the recorded shape is then checked for its size).
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
            .or_else(|| shape.contains(&0).then_some(0))
            .ok_or_else(bad)?;
        let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        if let Some(&u) = unknown.first() {
            if known == 0 || !size.is_multiple_of(known) {
                return Err(bad());
            }
            out[u] = size / known;
        } else if known != size {
            return Err(bad());
        }
        if out == n.shape {
            return Ok(self.clone());
        }
        self.record(Op::Reshape, &[self], out, n.dtype)
    }
    /// Permutes axes (`None` reverses them).
    ///
    /// # Errors
    /// `InvalidArgument` when `axes` is not a permutation.
    pub fn transpose(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let perm: Vec<usize> = match axes {
            None => (0..nd).rev().collect(),
            Some(a) => {
                if a.len() != nd {
                    return Err(Error::invalid(
                        "transpose",
                        format!("axes {a:?} don't match array of shape {:?}", n.shape),
                    ));
                }
                a.iter()
                    .map(|&x| norm_axis("transpose", x, nd, &n.shape))
                    .collect::<Result<_>>()?
            }
        };
        let mut seen = vec![false; nd];
        for &p in &perm {
            if std::mem::replace(&mut seen[p], true) {
                return Err(Error::invalid(
                    "transpose",
                    format!("repeated axis in transpose {perm:?}"),
                ));
            }
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let shape = perm.iter().map(|&p| n.shape[p]).collect();
        self.record(Op::Transpose { perm }, &[self], shape, n.dtype)
    }
    /// `.T`: all axes reversed.
    ///
    /// # Errors
    /// The tensor's deferred error.
    #[allow(non_snake_case)]
    pub fn T(&self) -> Result<Tensor> {
        self.transpose(None)
    }
    /// Swaps two axes.
    ///
    /// # Errors
    /// Axes out of range.
    pub fn swapaxes(&self, a: isize, b: isize) -> Result<Tensor> {
        let nd = self.ndim();
        let a = norm_axis("swapaxes", a, nd, self.shape())?;
        let b = norm_axis("swapaxes", b, nd, self.shape())?;
        let mut perm: Vec<isize> = (0..nd as isize).collect();
        perm.swap(a, b);
        self.transpose(Some(&perm))
    }
    /// Inserts a size-1 axis at `axis` (counted in the result).
    ///
    /// # Errors
    /// Axis out of range.
    pub fn expand_dims(&self, axis: isize) -> Result<Tensor> {
        let mut shape: Vec<isize> = self.tn()?.shape.iter().map(|&d| d as isize).collect();
        let a = norm_axis("expand_dims", axis, shape.len() + 1, self.shape())?;
        shape.insert(a, 1);
        self.reshape(&shape)
    }
    /// Removes size-1 axes (all of them, or the given ones, which must have size 1).
    ///
    /// # Errors
    /// An axis out of range or of size other than 1.
    pub fn squeeze(&self, axes: Option<&[isize]>) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let drop: Vec<usize> = match axes {
            None => (0..nd).filter(|&a| n.shape[a] == 1).collect(),
            Some(list) => {
                let v = list
                    .iter()
                    .map(|&a| norm_axis("squeeze", a, nd, &n.shape))
                    .collect::<Result<Vec<_>>>()?;
                if let Some(&a) = v.iter().find(|&&a| n.shape[a] != 1) {
                    return Err(Error::invalid(
                        "squeeze",
                        format!("cannot select an axis to squeeze out which has size not equal to one (axis {a} of shape {:?})", n.shape),
                    ));
                }
                v
            }
        };
        let shape: Vec<isize> = (0..nd)
            .filter(|a| !drop.contains(a))
            .map(|a| n.shape[a] as isize)
            .collect();
        self.reshape(&shape)
    }
    /// Broadcasts to `shape`.
    ///
    /// # Errors
    /// `ShapeMismatch` when the shape is not reachable by broadcasting.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let b = broadcast_shapes("broadcast_to", &n.shape, shape)?;
        if b != shape {
            return Err(Error::shape("broadcast_to", &n.shape, shape));
        }
        if n.shape == shape {
            return Ok(self.clone());
        }
        self.record(Op::BroadcastTo, &[self], shape.to_vec(), n.dtype)
    }

    /// numpy basic indexing: ranges with steps, negative indices, integers, newaxis, ellipsis.
    ///
    /// # Errors
    /// Too many indices, an integer index out of bounds, a zero step.
    pub fn slice(&self, args: &[SliceArg]) -> Result<Tensor> {
        let n = self.tn()?.clone();
        let nd = n.shape.len();
        let consumed = args
            .iter()
            .filter(|a| matches!(a, SliceArg::Range { .. } | SliceArg::Index(_)))
            .count();
        if args.iter().filter(|a| **a == SliceArg::Ellipsis).count() > 1 {
            return Err(Error::invalid(
                "index",
                "an index can only have a single ellipsis ('...')",
            ));
        }
        if consumed > nd {
            return Err(Error::invalid(
                "index",
                format!("too many indices for array: array is {nd}-dimensional, but {consumed} were indexed"),
            ));
        }
        // Expand the ellipsis (or pad at the end) with full slices.
        let mut full: Vec<SliceArg> = Vec::new();
        let mut expanded = false;
        for a in args {
            if *a == SliceArg::Ellipsis {
                full.extend(std::iter::repeat_n(all(), nd - consumed));
                expanded = true;
            } else {
                full.push(*a);
            }
        }
        if !expanded {
            full.extend(std::iter::repeat_n(all(), nd - consumed));
        }
        let mut axes = Vec::new();
        let mut out_shape: Vec<isize> = Vec::new();
        let mut ax = 0;
        for a in &full {
            match *a {
                SliceArg::NewAxis => out_shape.push(1),
                SliceArg::Index(i) => {
                    let d = n.shape[ax] as isize;
                    let j = if i < 0 { i + d } else { i };
                    if j < 0 || j >= d {
                        return Err(Error::invalid(
                            "index",
                            format!("index {i} is out of bounds for axis {ax} with size {d} (shape {:?})", n.shape),
                        ));
                    }
                    axes.push(AxisSlice {
                        start: j as usize,
                        len: 1,
                        step: 1,
                    });
                    ax += 1;
                }
                SliceArg::Range { start, stop, step } => {
                    if step == 0 {
                        return Err(Error::invalid("slice", "slice step cannot be zero"));
                    }
                    let sl = adjust_slice(start, stop, step, n.shape[ax]);
                    out_shape.push(sl.len as isize);
                    axes.push(sl);
                    ax += 1;
                }
                SliceArg::Ellipsis => unreachable!("expanded above"),
            }
        }
        let identity = axes
            .iter()
            .zip(&n.shape)
            .all(|(s, &d)| s.start == 0 && s.step == 1 && s.len == d);
        let sliced = if identity {
            self.clone()
        } else {
            let shape = axes.iter().map(|s| s.len).collect();
            self.record(Op::Slice { axes }, &[self], shape, n.dtype)?
        };
        sliced.reshape(&out_shape)
    }

    /// Batched matrix product with numpy's `matmul` rules (1-D operands promoted and the added
    /// axis removed; batch dims broadcast).
    ///
    /// # Errors
    /// `ShapeMismatch` when the inner dims differ or batch dims do not broadcast; 0-d operands.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (sa, sb) = (self.tn()?.shape.clone(), other.tn()?.shape.clone());
        if sa.is_empty() || sb.is_empty() {
            return Err(Error::invalid(
                "matmul",
                format!("input operand does not have enough dimensions (shapes {sa:?} and {sb:?})"),
            ));
        }
        let dt = DType::promote(self.dtype(), other.dtype());
        let mut a = self.astype(dt)?;
        let mut b = other.astype(dt)?;
        if sa.len() == 1 {
            a = a.expand_dims(0)?;
        }
        if sb.len() == 1 {
            b = b.expand_dims(-1)?;
        }
        let (ash, bsh) = (a.shape().to_vec(), b.shape().to_vec());
        let (m, k1) = (ash[ash.len() - 2], ash[ash.len() - 1]);
        let (k2, nn) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
        if k1 != k2 {
            return Err(Error::shape("matmul", &sa, &sb));
        }
        let batch = broadcast_shapes("matmul", &ash[..ash.len() - 2], &bsh[..bsh.len() - 2])
            .map_err(|_| Error::shape("matmul", &sa, &sb))?;
        let nd = batch.len() + 2;
        let lift = |t: Tensor| -> Result<Tensor> {
            let mut s: Vec<isize> = vec![1; nd - t.ndim()];
            s.extend(t.shape().iter().map(|&d| d as isize));
            t.reshape(&s)
        };
        let (a, b) = (lift(a)?, lift(b)?);
        let mut shape = batch.clone();
        shape.push(m);
        shape.push(nn);
        let mut out = self.record(Op::MatMul, &[&a, &b], shape.clone(), dt)?;
        if sa.len() == 1 || sb.len() == 1 {
            let mut s: Vec<isize> = batch.iter().map(|&d| d as isize).collect();
            if sa.len() != 1 {
                s.push(m as isize);
            }
            if sb.len() != 1 {
                s.push(nn as isize);
            }
            out = out.reshape(&s)?;
        }
        Ok(out)
    }

    /// numpy's `dot`.
    ///
    /// # Errors
    /// As `matmul`/`tensordot`.
    pub fn dot(&self, other: &Tensor) -> Result<Tensor> {
        match (self.ndim(), other.ndim()) {
            (0, _) | (_, 0) => self.mul(other),
            (_, 1) | (1, _) | (_, 2) => self.matmul(other),
            _ => self.tensordot(other, &[-1], &[-2]),
        }
    }

    /// numpy's `tensordot(a, b, axes=(axes_a, axes_b))`.
    ///
    /// # Errors
    /// Axis lists of different lengths, axes out of range, summed dims that differ.
    pub fn tensordot(&self, other: &Tensor, axes_a: &[isize], axes_b: &[isize]) -> Result<Tensor> {
        let (sa, sb) = (self.tn()?.shape.clone(), other.tn()?.shape.clone());
        if axes_a.len() != axes_b.len() {
            return Err(Error::invalid(
                "tensordot",
                "shape-mismatch for sum: axis lists differ in length",
            ));
        }
        let aa = axes_a
            .iter()
            .map(|&x| norm_axis("tensordot", x, sa.len(), &sa))
            .collect::<Result<Vec<_>>>()?;
        let ab = axes_b
            .iter()
            .map(|&x| norm_axis("tensordot", x, sb.len(), &sb))
            .collect::<Result<Vec<_>>>()?;
        if aa.iter().zip(&ab).any(|(&x, &y)| sa[x] != sb[y]) {
            return Err(Error::shape("tensordot", &sa, &sb));
        }
        let free_a: Vec<usize> = (0..sa.len()).filter(|x| !aa.contains(x)).collect();
        let free_b: Vec<usize> = (0..sb.len()).filter(|x| !ab.contains(x)).collect();
        let pa: Vec<isize> = free_a.iter().chain(&aa).map(|&x| x as isize).collect();
        let pb: Vec<isize> = ab.iter().chain(&free_b).map(|&x| x as isize).collect();
        let m: usize = free_a.iter().map(|&x| sa[x]).product();
        let k: usize = aa.iter().map(|&x| sa[x]).product();
        let nn: usize = free_b.iter().map(|&x| sb[x]).product();
        let a2 = self
            .transpose(Some(&pa))?
            .reshape(&[m as isize, k as isize])?;
        let b2 = other
            .transpose(Some(&pb))?
            .reshape(&[k as isize, nn as isize])?;
        let out: Vec<isize> = free_a
            .iter()
            .map(|&x| sa[x] as isize)
            .chain(free_b.iter().map(|&x| sb[x] as isize))
            .collect();
        a2.matmul(&b2)?.reshape(&out)
    }
    /// `tensordot(a, b, axes=n)`: the last `n` axes of `a` with the first `n` of `b`.
    ///
    /// # Errors
    /// As [`Tensor::tensordot`].
    pub fn tensordot_n(&self, other: &Tensor, n: usize) -> Result<Tensor> {
        let (na, nb) = (self.ndim(), other.ndim());
        if n > na || n > nb {
            return Err(Error::invalid(
                "tensordot",
                format!("axes={n} exceeds the dimensions of the operands"),
            ));
        }
        let aa: Vec<isize> = (na - n..na).map(|x| x as isize).collect();
        let ab: Vec<isize> = (0..n).map(|x| x as isize).collect();
        self.tensordot(other, &aa, &ab)
    }
}

/// numpy's `concatenate(tensors, axis)`.
///
/// # Errors
/// No tensors, 0-d tensors, dims that differ off the axis, axis out of range.
pub fn concatenate(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("concatenate", "need at least one array"))?;
    let s0 = first.tn()?.shape.clone();
    if s0.is_empty() {
        return Err(Error::invalid(
            "concatenate",
            "zero-dimensional arrays cannot be concatenated",
        ));
    }
    let ax = norm_axis("concatenate", axis, s0.len(), &s0)?;
    let mut dt = first.dtype();
    for t in &tensors[1..] {
        let s = t.tn()?.shape.clone();
        if s.len() != s0.len() || (0..s.len()).any(|i| i != ax && s[i] != s0[i]) {
            return Err(Error::shape("concatenate", &s0, &s));
        }
        dt = DType::promote(dt, t.dtype());
    }
    let cast: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.astype(dt))
        .collect::<Result<_>>()?;
    let mut shape = s0.clone();
    // Checked: the recorded shape's size is checked, but a wrapped extent would pass.
    shape[ax] = cast
        .iter()
        .try_fold(0usize, |acc, t| acc.checked_add(t.shape()[ax]))
        .ok_or_else(|| {
            Error::invalid(
                "concatenate",
                format!(
                    "the extents along axis {ax} add up to more than {}",
                    usize::MAX
                ),
            )
        })?;
    let refs: Vec<&Tensor> = cast.iter().collect();
    first.record(Op::Concat { axis: ax }, &refs, shape, dt)
}

/// numpy's `stack(tensors, axis)`.
///
/// # Errors
/// No tensors; shapes that differ.
pub fn stack(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("stack", "need at least one array"))?;
    let s0 = first.tn()?.shape.clone();
    for (i, t) in tensors.iter().enumerate() {
        if t.tn()?.shape != s0 {
            // numpy: "all input arrays must have the same shape"; name the operands.
            return Err(Error::shape(
                &format!("stack (operand 0 and operand {i})"),
                &s0,
                t.shape(),
            ));
        }
    }
    // The axis is counted in the result, which has one more dimension.
    norm_axis("stack", axis, s0.len() + 1, &s0)?;
    let ex: Vec<Tensor> = tensors
        .iter()
        .map(|t| t.expand_dims(axis))
        .collect::<Result<_>>()?;
    concatenate(&ex.iter().collect::<Vec<_>>(), axis)
}

/// numpy's `where(cond, a, b)`.
///
/// # Errors
/// Shapes that do not broadcast.
pub fn where_<'a>(
    cond: &Tensor,
    a: impl Into<Operand<'a>>,
    b: impl Into<Operand<'a>>,
) -> Result<Tensor> {
    cond.where_(a, b)
}

/// numpy's slice normalization (`PySlice_AdjustIndices`).
fn adjust_slice(start: Option<isize>, stop: Option<isize>, step: isize, len: usize) -> AxisSlice {
    let len = len as isize;
    let clamp = |v: isize, lo: isize, hi: isize| v.max(lo).min(hi);
    let (lo_def, hi_def) = if step > 0 { (0, len) } else { (len - 1, -1) };
    let fix = |v: Option<isize>, def: isize| -> isize {
        match v {
            None => def,
            Some(x) => {
                let x = if x < 0 { x + len } else { x };
                if step > 0 {
                    clamp(x, 0, len)
                } else {
                    clamp(x, -1, len - 1)
                }
            }
        }
    };
    let s = fix(start, lo_def);
    let e = fix(stop, hi_def);
    // In i128: `step` may be isize::MIN or isize::MAX, where `-step` or `e - s + step`
    // overflow isize.
    let (s128, e128, st) = (s as i128, e as i128, step as i128);
    let n = if step > 0 {
        if e > s {
            (e128 - s128 + st - 1) / st
        } else {
            0
        }
    } else if s > e {
        (s128 - e128 - st - 1) / -st
    } else {
        0
    };
    AxisSlice {
        start: if n == 0 { 0 } else { s as usize },
        len: n as usize,
        step,
    }
}

// ---- operators: `&a + &b`, `&a * 2.0`, `1.0 - &a`, ... (errors deferred into the tensor) ----

macro_rules! op_impls {
    ($($tr:ident $m:ident $op:ident),*) => {$(
        impl std::ops::$tr<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                self.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
            }
        }
        impl std::ops::$tr<Tensor> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(self, &o)
            }
        }
        impl std::ops::$tr<&Tensor> for Tensor {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                std::ops::$tr::$m(&self, o)
            }
        }
        impl std::ops::$tr<Tensor> for Tensor {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(&self, &o)
            }
        }
        op_impls!(@scalars $tr $m $op; f64, i64);
    )*};
    (@scalars $tr:ident $m:ident $op:ident; $($s:ty),*) => {$(
        impl std::ops::$tr<$s> for &Tensor {
            type Output = Tensor;
            fn $m(self, o: $s) -> Tensor {
                self.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
            }
        }
        impl std::ops::$tr<$s> for Tensor {
            type Output = Tensor;
            fn $m(self, o: $s) -> Tensor {
                std::ops::$tr::$m(&self, o)
            }
        }
        impl std::ops::$tr<&Tensor> for $s {
            type Output = Tensor;
            fn $m(self, o: &Tensor) -> Tensor {
                o.binary_op(BinaryOp::$op, self, o).unwrap_or_else(|e| Tensor::failed(&o.sess, e))
            }
        }
        impl std::ops::$tr<Tensor> for $s {
            type Output = Tensor;
            fn $m(self, o: Tensor) -> Tensor {
                std::ops::$tr::$m(self, &o)
            }
        }
    )*};
}
op_impls!(Add add Add, Sub sub Sub, Mul mul Mul, Div div Div, Rem rem Mod);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self).unwrap_or_else(|e| Tensor::failed(&self.sess, e))
    }
}
impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        -&self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numpy_slice_normalization() {
        let a = adjust_slice(None, None, -1, 5);
        assert_eq!((a.start, a.len, a.step), (4, 5, -1));
        let a = adjust_slice(Some(-2), None, 1, 5);
        assert_eq!((a.start, a.len), (3, 2));
        let a = adjust_slice(Some(1), Some(100), 3, 10);
        assert_eq!((a.start, a.len), (1, 3));
        let a = adjust_slice(Some(3), Some(1), 1, 10);
        assert_eq!(a.len, 0);
        let a = adjust_slice(Some(8), Some(-12), -3, 10);
        assert_eq!((a.start, a.len), (8, 3));
        // Extreme steps: one element, no overflow.
        let a = adjust_slice(None, None, isize::MAX, 10);
        assert_eq!((a.start, a.len), (0, 1));
        let a = adjust_slice(None, None, isize::MIN, 10);
        assert_eq!((a.start, a.len), (9, 1));
        let a = adjust_slice(Some(isize::MIN), Some(isize::MAX), 1, 10);
        assert_eq!((a.start, a.len), (0, 10));
    }
}
