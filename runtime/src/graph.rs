//! The coarse graph: an arena of nodes with interning (one node per distinct subexpression).
//! Input: ops recorded by `Tensor` methods. Output: a static DAG the Tiler cuts into chunks.

use crate::array::HostArray;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::external::ExternalArray;
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

/// The most nodes a graph may hold: ids are `u32` and the count itself must fit one.
pub const MAX_NODES: usize = u32::MAX as usize;

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
    /// Data outside Tessera referenced by `Op::External` (it stays in this process: a graph
    /// sent elsewhere names it, and tiling it there is an error).
    #[serde(skip)]
    externals: BTreeMap<u64, Arc<dyn ExternalArray>>,
    /// Constants that are kept results (`keep`), not user data: what a memory budget is
    /// charged for and what may be spilled.
    #[serde(skip)]
    kept: std::collections::HashSet<u64>,
    #[serde(skip)]
    intern: HashMap<Node, NodeId>,
    next_constant: u64,
    /// A lower node bound than [`MAX_NODES`], for tests.
    #[serde(skip)]
    node_limit: Option<usize>,
    /// References to each node: the handles of live tensors (one per [`Graph::add`]) plus
    /// its live consumers. When [`Graph::release`] takes a count to 0 the node is dropped:
    /// its constant data is freed, its inputs are released in turn, and it leaves the
    /// interning table, so the graph holds only what live tensors can reach. Ids are never
    /// reused: a dropped node keeps its slot (a few bytes), never its data.
    #[serde(skip)]
    refs: Vec<u32>,
    #[serde(skip)]
    dropped: Vec<bool>,
    #[serde(skip)]
    n_dropped: usize,
    /// Live nodes reading each constant (a rechunked source shares its data).
    #[serde(skip)]
    const_users: HashMap<u64, u32>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a node, or returns the existing identical one.
    ///
    /// # Errors
    /// `InvalidArgument` naming the node's op when the graph already holds [`MAX_NODES`]
    /// nodes (a `NodeId` would wrap and name another node).
    pub fn add(&mut self, node: Node) -> Result<NodeId> {
        if let Some(&id) = self.intern.get(&node) {
            self.refs[id.0 as usize] += 1;
            return Ok(id);
        }
        let id = match u32::try_from(self.nodes.len()) {
            Ok(i) if self.nodes.len() < self.node_bound() => NodeId(i),
            _ => {
                return Err(Error::invalid(
                    &node.op.name(),
                    format!(
                        "the graph already holds {} nodes, the most one session can record; \
                         execute what is needed and start a new session",
                        self.nodes.len()
                    ),
                ))
            }
        };
        self.intern.insert(node.clone(), id);
        self.sync_refs();
        for i in &node.inputs {
            if let Some(r) = self.refs.get_mut(i.0 as usize) {
                *r += 1;
            }
        }
        if let Op::Constant { id: c } | Op::External { id: c } = node.op {
            *self.const_users.entry(c).or_default() += 1;
        }
        self.nodes.push(node);
        self.refs.push(1);
        self.dropped.push(false);
        Ok(id)
    }
    /// Sizes the reference table after deserialization (no handles: nothing is ever dropped
    /// unless released) by counting consumers.
    fn sync_refs(&mut self) {
        if self.refs.len() == self.nodes.len() {
            return;
        }
        self.refs = vec![0; self.nodes.len()];
        self.dropped = vec![false; self.nodes.len()];
        self.const_users.clear();
        for n in &self.nodes {
            for i in &n.inputs {
                if let Some(r) = self.refs.get_mut(i.0 as usize) {
                    *r += 1;
                }
            }
            if let Op::Constant { id: c } | Op::External { id: c } = n.op {
                *self.const_users.entry(c).or_default() += 1;
            }
        }
    }
    /// One more handle on `id` (a tensor cloned into another owner that releases it).
    pub fn retain(&mut self, id: NodeId) {
        self.sync_refs();
        self.refs[id.0 as usize] += 1;
    }
    /// Gives up one handle on `id` (a tensor dropped); drops every node no longer referenced.
    pub fn release(&mut self, id: NodeId) {
        self.sync_refs();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            let k = n.0 as usize;
            let Some(r) = self.refs.get_mut(k) else {
                continue;
            };
            if *r == 0 || self.dropped[k] {
                continue;
            }
            *r -= 1;
            if *r > 0 {
                continue;
            }
            self.dropped[k] = true;
            self.n_dropped += 1;
            if self.intern.get(&self.nodes[k]) == Some(&n) {
                self.intern.remove(&self.nodes[k]);
            }
            let node = &mut self.nodes[k];
            if let Op::Constant { id } | Op::External { id } = node.op {
                let users = self.const_users.entry(id).or_insert(1);
                *users = users.saturating_sub(1);
                if *users == 0 {
                    self.const_users.remove(&id);
                    self.constants.remove(&id);
                    self.externals.remove(&id);
                    self.kept.remove(&id);
                }
            }
            stack.extend(std::mem::take(&mut node.inputs));
            node.chunk = None;
        }
    }
    /// Replaces node `id` by `data`, its value (an executed result kept, as Mars keeps
    /// executed tileables): later graphs read it instead of recomputing, and the node's
    /// inputs are released (dropped unless something else needs them).
    ///
    /// # Errors
    /// `InvalidArgument` when `data` does not have the node's shape and dtype.
    pub fn keep(&mut self, id: NodeId, data: Arc<HostArray>) -> Result<()> {
        self.sync_refs();
        let k = id.0 as usize;
        let node = &self.nodes[k];
        if self.dropped[k] || data.shape() != node.shape.as_slice() || data.dtype() != node.dtype {
            return Err(Error::invalid(
                "keep",
                format!(
                    "a result of shape {:?} and dtype {} for node {} of shape {:?} and dtype {}",
                    data.shape(),
                    data.dtype(),
                    id.0,
                    node.shape,
                    node.dtype
                ),
            ));
        }
        // Data the graph holds already, or reads in place (a kept copy would double it).
        if matches!(node.op, Op::Constant { .. } | Op::External { .. }) {
            return Ok(());
        }
        if self.intern.get(node) == Some(&id) {
            self.intern.remove(node);
        }
        let cid = self.next_constant;
        self.next_constant += 1;
        self.constants.insert(cid, data);
        self.const_users.insert(cid, 1);
        self.kept.insert(cid);
        let node = &mut self.nodes[k];
        node.op = Op::Constant { id: cid };
        let inputs = std::mem::take(&mut node.inputs);
        self.intern.insert(self.nodes[k].clone(), id);
        for i in inputs {
            // The consumer reference this node held on its input.
            self.release(i);
        }
        Ok(())
    }
    /// True when node `id` was dropped (no live tensor could reach it).
    pub fn is_dropped(&self, id: NodeId) -> bool {
        self.dropped.get(id.0 as usize).copied().unwrap_or(false)
    }
    /// Number of nodes not dropped.
    pub fn live_len(&self) -> usize {
        self.nodes.len() - self.n_dropped
    }
    /// Bytes of constant data the graph holds (user data, eager and kept results).
    pub fn constant_bytes(&self) -> usize {
        self.constants.values().map(|a| a.nbytes()).sum()
    }
    /// The most nodes this graph may hold.
    fn node_bound(&self) -> usize {
        self.node_limit.map_or(MAX_NODES, |l| l.min(MAX_NODES))
    }
    /// Sets a lower node bound than [`MAX_NODES`] (tests of the bound).
    #[cfg(test)]
    pub(crate) fn set_node_limit(&mut self, limit: usize) {
        self.node_limit = Some(limit);
    }
    /// Adds user data as a constant node.
    ///
    /// # Errors
    /// As [`Graph::add`].
    pub fn add_constant(&mut self, data: HostArray, chunk: Option<Vec<usize>>) -> Result<NodeId> {
        let (shape, dtype) = (data.shape().to_vec(), data.dtype());
        let (node_id, id) = self.add_data_node(|id| Op::Constant { id }, shape, dtype, chunk)?;
        self.constants.insert(id, Arc::new(data));
        Ok(node_id)
    }
    /// A source node reading data of this graph under a new data id (`op` makes the op from
    /// it); the caller stores the data once the node exists.
    fn add_data_node(
        &mut self,
        op: impl FnOnce(u64) -> Op,
        shape: Vec<usize>,
        dtype: DType,
        chunk: Option<Vec<usize>>,
    ) -> Result<(NodeId, u64)> {
        let id = self.next_constant;
        self.next_constant += 1;
        let node = Node {
            op: op(id),
            inputs: vec![],
            shape,
            dtype,
            chunk,
        };
        Ok((self.add(node)?, id))
    }
    /// Adds data held outside Tessera as a source node (read chunk by chunk, never copied
    /// whole); the graph keeps `data` while a node refers to it.
    ///
    /// # Errors
    /// As [`Graph::add`].
    pub fn add_external(
        &mut self,
        data: Arc<dyn ExternalArray>,
        chunk: Option<Vec<usize>>,
    ) -> Result<NodeId> {
        let (shape, dtype) = (data.shape().to_vec(), data.dtype());
        let (node_id, id) = self.add_data_node(|id| Op::External { id }, shape, dtype, chunk)?;
        self.externals.insert(id, data);
        Ok(node_id)
    }
    /// Bytes of kept results held in memory.
    pub fn kept_bytes(&self) -> u64 {
        self.kept
            .iter()
            .filter_map(|c| self.constants.get(c))
            .map(|a| a.nbytes() as u64)
            .sum()
    }
    /// The largest kept result held in memory, with its constant id.
    pub fn largest_kept(&self) -> Option<(u64, Arc<HostArray>)> {
        self.kept
            .iter()
            .filter_map(|&c| self.constants.get(&c).map(|a| (c, a.clone())))
            .max_by_key(|(c, a)| (a.nbytes(), *c))
    }
    /// Replaces kept result `cid` by `data`, the same values held elsewhere (spilled): every
    /// node reading the constant reads `data` from now on, and the graph lets the in-memory
    /// copy go.
    pub fn spill_constant(&mut self, cid: u64, data: Arc<dyn ExternalArray>) {
        for k in 0..self.nodes.len() {
            if self.dropped.get(k).copied().unwrap_or(false)
                || self.nodes[k].op != (Op::Constant { id: cid })
            {
                continue;
            }
            let id = NodeId(k as u32);
            if self.intern.get(&self.nodes[k]) == Some(&id) {
                self.intern.remove(&self.nodes[k]);
            }
            self.nodes[k].op = Op::External { id: cid };
            self.intern.insert(self.nodes[k].clone(), id);
        }
        self.constants.remove(&cid);
        self.kept.remove(&cid);
        self.externals.insert(cid, data);
    }
    /// The data of an external source.
    pub fn external(&self, id: u64) -> Option<&Arc<dyn ExternalArray>> {
        self.externals.get(&id)
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
    /// is too big (see [`checked_shape`]) or for more than [`MAX_NODES`] nodes.
    pub fn from_json(s: &str) -> Result<Graph> {
        let mut g: Graph = serde_json_like::from_str(s)?;
        if g.nodes.len() > MAX_NODES {
            return Err(Error::invalid(
                "from_json",
                format!("{} nodes; a graph holds at most {MAX_NODES}", g.nodes.len()),
            ));
        }
        // A graph from elsewhere gets the same checks as one recorded here: shapes, fill
        // values, and inputs that precede their users (the arena's order; any other id would
        // be read out of bounds or form a cycle).
        for (i, n) in g.nodes.iter().enumerate() {
            checked_shape(&n.op.name(), &n.shape, n.dtype)?;
            if let Op::Full { value } = n.op {
                value.check_fill(&n.op.name(), n.dtype)?;
            }
            if let Some(bad) = n.inputs.iter().find(|x| x.0 as usize >= i) {
                return Err(Error::invalid(
                    "from_json",
                    format!(
                        "node {i} ({}) names input {} that does not precede it",
                        n.op.name(),
                        bad.0
                    ),
                ));
            }
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
        // A set, not a flag per node: the arena keeps the slots of dropped nodes, so its length
        // grows with everything a long session ever recorded, while a run reaches only a few.
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if seen.insert(n.0) {
                stack.extend(self.node(n).inputs.iter().copied());
            }
        }
        let mut ids: Vec<u32> = seen.into_iter().collect();
        ids.sort_unstable();
        ids.into_iter().map(NodeId).collect()
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
    fn node_count_is_bounded_not_wrapped() {
        let full = |v: i64| Node {
            op: Op::Full {
                value: crate::dtype::Scalar::Int(v),
            },
            inputs: vec![],
            shape: vec![3],
            dtype: DType::F32,
            chunk: None,
        };
        let mut g = Graph::new();
        g.set_node_limit(2);
        assert_eq!(g.add(full(1)), Ok(NodeId(0)));
        assert_eq!(g.add(full(2)), Ok(NodeId(1)));
        // The third distinct node is refused (ids never wrap to name an existing node); an
        // interned node still resolves, and the graph is unchanged.
        let e = g.add(full(3)).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { op, msg } if op == "full" && msg.contains("2 nodes")),
            "{e}"
        );
        assert_eq!(g.add(full(2)), Ok(NodeId(1)));
        assert!(g
            .add_constant(HostArray::zeros(DType::F32, &[2]), None)
            .is_err());
        assert_eq!(g.len(), 2);
        // The bound never exceeds what a u32 id can number, whatever the hook says.
        g.set_node_limit(usize::MAX);
        assert_eq!(g.node_bound(), u32::MAX as usize);
        assert_eq!(Graph::new().node_bound(), u32::MAX as usize);
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
        })
        .unwrap();
        let text = g.to_json().unwrap();
        assert!(matches!(
            Graph::from_json(&text),
            Err(Error::InvalidArgument { .. })
        ));
        // A fill its dtype cannot hold, as `Session::full` refuses it.
        let mut g = Graph::new();
        g.add(Node {
            op: Op::Full {
                value: crate::dtype::Scalar::Int(1 << 40),
            },
            inputs: vec![],
            shape: vec![2],
            dtype: DType::I32,
            chunk: None,
        })
        .unwrap();
        let text = g.to_json().unwrap();
        assert!(matches!(
            Graph::from_json(&text),
            Err(Error::ScalarOverflow { value, .. }) if value == 1 << 40
        ));
        // An input that does not precede its user (here: itself).
        let mut g = Graph::new();
        g.add(Node {
            op: Op::Rechunk,
            inputs: vec![NodeId(0)],
            shape: vec![2],
            dtype: DType::F32,
            chunk: None,
        })
        .unwrap();
        let e = Graph::from_json(&g.to_json().unwrap()).unwrap_err();
        assert!(e.to_string().contains("input 0"), "{e}");
    }
}
