//! The coarse graph: an arena of nodes with interning (one node per distinct subexpression).
//! Input: ops recorded by `Tensor` methods. Output: a static DAG the Tiler cuts into chunks.

use crate::array::HostArray;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::op::Op;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The element count of an array of `shape` and `dtype`, checked as numpy checks it: the
/// product of the non-zero extents times the dtype size must fit `isize::MAX` bytes (the most
/// an allocation, and ndarray, can address). Every path that makes a shape calls this, so a
/// shape whose count would wrap is refused when it is recorded, not executed wrongly.
///
/// # Errors
/// `InvalidArgument` naming `op`, the shape and the dtype when the array is too big.
pub fn checked_shape(op: &str, shape: &[usize], dtype: DType) -> Result<usize> {
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match nonzero.and_then(|n| n.checked_mul(dtype.size())) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(if shape.contains(&0) {
            0
        } else {
            bytes / dtype.size()
        }),
        _ => Err(Error::invalid(
            op,
            format!(
                "array is too big: shape {shape:?} of {dtype} ({} bytes per element) is larger \
                 than the maximum possible size ({} bytes)",
                dtype.size(),
                isize::MAX
            ),
        )),
    }
}

/// Index of a node in its graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// One operation with its operands, output shape and dtype.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Node {
    /// The operator.
    pub op: Op,
    /// Operand nodes.
    pub inputs: Vec<NodeId>,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Output dtype.
    pub dtype: DType,
    /// Requested chunk shape (Mars's `chunk_size=`), if any.
    pub chunk: Option<Vec<usize>>,
}

/// An arena of nodes; serializable so a graph can travel to another process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Graph {
    nodes: Vec<Node>,
    /// User data referenced by `Op::Constant`.
    constants: BTreeMap<u64, Arc<HostArray>>,
    #[serde(skip)]
    intern: HashMap<Node, NodeId>,
    next_constant: u64,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a node, or returns the existing identical one.
    pub fn add(&mut self, node: Node) -> NodeId {
        if let Some(&id) = self.intern.get(&node) {
            return id;
        }
        let id = NodeId(self.nodes.len() as u32);
        self.intern.insert(node.clone(), id);
        self.nodes.push(node);
        id
    }
    /// Adds user data as a constant node.
    pub fn add_constant(&mut self, data: HostArray, chunk: Option<Vec<usize>>) -> NodeId {
        let id = self.next_constant;
        self.next_constant += 1;
        let node = Node {
            op: Op::Constant { id },
            inputs: vec![],
            shape: data.shape().to_vec(),
            dtype: data.dtype(),
            chunk,
        };
        self.constants.insert(id, Arc::new(data));
        self.add(node)
    }
    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// The data of a constant.
    pub fn constant(&self, id: u64) -> Option<&Arc<HostArray>> {
        self.constants.get(&id)
    }
    /// All nodes in id order (a topological order: inputs always precede users).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// Serializes to JSON.
    ///
    /// # Errors
    /// `Error::Serde` when encoding fails.
    pub fn to_json(&self) -> Result<String> {
        serde_json_like::to_string(self)
    }
    /// Restores a graph serialized with [`Graph::to_json`], rebuilding the intern table.
    ///
    /// # Errors
    /// `Error::Serde` when the text is not a graph; `InvalidArgument` for a node whose shape
    /// is too big (see [`checked_shape`]).
    pub fn from_json(s: &str) -> Result<Graph> {
        let mut g: Graph = serde_json_like::from_str(s)?;
        // A graph from elsewhere gets the same shape checks as one recorded here.
        for n in &g.nodes {
            checked_shape(&n.op.name(), &n.shape, n.dtype)?;
        }
        g.rebuild_intern();
        Ok(g)
    }
    /// Rebuilds the interning table after deserialization.
    pub fn rebuild_intern(&mut self) {
        self.intern = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), NodeId(i as u32)))
            .collect();
    }
    /// The nodes reachable from `roots`, in topological order.
    pub fn reachable(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.0 as usize], true) {
                continue;
            }
            stack.extend(self.node(n).inputs.iter().copied());
        }
        (0..self.nodes.len() as u32)
            .filter(|&i| seen[i as usize])
            .map(NodeId)
            .collect()
    }
}

/// JSON through serde without tying the runtime's public API to serde_json's error type.
mod serde_json_like {
    use super::*;
    pub fn to_string(g: &Graph) -> Result<String> {
        serde_json::to_string(g).map_err(|e| Error::Serde(e.to_string()))
    }
    pub fn from_str(s: &str) -> Result<Graph> {
        serde_json::from_str(s).map_err(|e| Error::Serde(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_shape_refuses_counts_that_wrap() {
        assert_eq!(checked_shape("t", &[3, 4], DType::F32), Ok(12));
        assert_eq!(checked_shape("t", &[], DType::F64), Ok(1));
        assert_eq!(checked_shape("t", &[0, 7], DType::F64), Ok(0));
        // The largest bool array is isize::MAX bytes; one more element is too big.
        let max = isize::MAX as usize;
        assert_eq!(checked_shape("t", &[max], DType::Bool), Ok(max));
        for (shape, dt) in [
            (vec![1usize << 40, 1 << 30], DType::F32),
            (vec![1 << 32, 1 << 32], DType::F64),
            (vec![usize::MAX], DType::Bool),
            (vec![max / 4 + 1], DType::F32),
            (vec![1 << 62, 1 << 62, 0], DType::F32),
        ] {
            let e = checked_shape("zeros", &shape, dt).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("zeros")
                    && msg.contains(&format!("{shape:?}"))
                    && msg.contains("too big"),
                "{msg}"
            );
        }
    }

    #[test]
    fn from_json_checks_shapes() {
        let mut g = Graph::new();
        g.add(Node {
            op: Op::Full {
                value: crate::dtype::Scalar::Int(0),
            },
            inputs: vec![],
            shape: vec![1 << 40, 1 << 40],
            dtype: DType::F32,
            chunk: None,
        });
        let text = g.to_json().unwrap();
        assert!(matches!(
            Graph::from_json(&text),
            Err(Error::InvalidArgument { .. })
        ));
    }
}
