//! The lazy `Tensor`: numpy's names and semantics; every method records a node in the session's
//! graph (executing it at once in eager mode). Fallible methods return `Result`; the arithmetic
//! operators (`+ - * / %`) return a tensor that carries any error until it is used or executed.

mod elementwise;
mod gather;
pub use gather::Unique;
mod linalg;
pub use linalg::Lstsq;
mod manipulation;
mod movement;
mod reduction;
mod search;
mod sorting;

pub use elementwise::where_;
pub use manipulation::{broadcast_arrays, meshgrid};
pub use movement::{concatenate, stack};

use crate::array::{Elem, HostArray};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::graph::{Node, NodeId};
use crate::op::Op;
use crate::session::Session;
use ndarray::ArrayD;
use std::sync::Arc;

#[derive(Clone, Debug)]
struct TNode {
    id: NodeId,
    shape: Vec<usize>,
    dtype: DType,
    /// This tensor's reference on its node: the node (and what only it needs) is dropped
    /// from the graph when the last clone of the tensor goes.
    _handle: Arc<Handle>,
}

/// One reference on a graph node, given back when dropped.
struct Handle {
    sess: Session,
    id: NodeId,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({})", self.id.0)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        crate::exec::lock(&self.sess.inner.graph).release(self.id);
    }
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
    /// A tensor on node `id`, taking over the reference [`crate::graph::Graph::add`] gave.
    pub(crate) fn from_node(sess: Session, id: NodeId, shape: Vec<usize>, dtype: DType) -> Tensor {
        let handle = Arc::new(Handle {
            sess: sess.clone(),
            id,
        });
        Tensor {
            sess,
            state: Ok(TNode {
                id,
                shape,
                dtype,
                _handle: handle,
            }),
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
    /// The chunk shape requested for this tensor (`with_chunks`, Mars's `chunk_size=`), or
    /// `None` when its chunks are sized from the session's byte budget.
    pub fn chunk_hint(&self) -> Option<Vec<usize>> {
        let id = self.tn().ok()?.id;
        crate::exec::lock(&self.sess.inner.graph)
            .node(id)
            .chunk
            .clone()
    }
    /// What running this tensor's graph would compute: the number of elements of every node
    /// behind it that is not already held (user data, kept results). `repr` uses it to show
    /// the values of tensors that are cheap to compute, never running a large graph.
    pub fn pending_elements(&self) -> usize {
        let Ok(n) = self.tn() else { return 0 };
        let g = crate::exec::lock(&self.sess.inner.graph);
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![n.id];
        let mut total = 0usize;
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            let node = g.node(id);
            if matches!(node.op, Op::Constant { .. } | Op::External { .. }) {
                continue;
            }
            total = total.saturating_add(node.shape.iter().product::<usize>());
            stack.extend(node.inputs.iter().copied());
        }
        total
    }
    /// True when the tensor's value is held in the graph (user data, an eager result, or an
    /// executed result kept by the session), so using it costs no recomputation.
    pub fn is_materialized(&self) -> bool {
        let Ok(n) = self.tn() else { return false };
        matches!(
            crate::exec::lock(&self.sess.inner.graph).node(n.id).op,
            Op::Constant { .. } | Op::External { .. }
        )
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

    /// Executes once and keeps the result in the graph (Mars's `execute`): later graphs that
    /// use this tensor read the kept data instead of recomputing it, and the data is freed
    /// with the tensor (its last clone). A tensor already held (user data, eager or kept
    /// results) returns its data without running anything.
    ///
    /// # Errors
    /// As [`Tensor::execute`].
    pub fn materialize(&self) -> Result<Arc<HostArray>> {
        let id = self.node_id()?;
        {
            let g = crate::exec::lock(&self.sess.inner.graph);
            match g.node(id).op {
                Op::Constant { id: c } => {
                    if let Some(d) = g.constant(c) {
                        return Ok(d.clone());
                    }
                }
                // Data read in place stays where it is: reading it is the computation, and a
                // kept copy would double it.
                Op::External { .. } => {
                    drop(g);
                    return Ok(Arc::new(self.execute()?));
                }
                _ => {}
            }
        }
        let data = Arc::new(self.execute()?);
        crate::exec::lock(&self.sess.inner.graph).keep(id, data.clone())?;
        self.sess.spill_kept()?;
        Ok(data)
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
}
