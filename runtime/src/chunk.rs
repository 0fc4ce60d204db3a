//! The fine-grained chunk graph: what the Tiler produces and the Executor runs.
//! Each chunk node is one task on one backend: a source, an elementwise op on chunks, a
//! reduction partial/combine/final step, a movement piece, or a GEMM step.

use crate::array::{HostArray, Region};
use crate::dtype::{DType, Scalar};
use crate::ir::{KernelIr, KernelParams, ReduceKind};
use crate::op::{ArgOp, BinaryOp, Dist, ReduceOp, UnaryOp};
use std::sync::Arc;

/// Index of a chunk node in its chunk graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub u32);

/// The data of a chunk: one array, or several fields for reduction partials
/// (e.g. mean and M2 for var, value and index for argmax).
pub type ChunkData = Vec<HostArray>;

/// What a chunk node computes. Serializable (the wire form of a task for another executor,
/// [`crate::remote`]) except the ops holding user data or sinks: `Constant`, `External` and
/// `Write` run where the data is, and a `Fused` node's `bound` loads do not travel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ChunkOp {
    /// A box of user data.
    Constant {
        /// The whole constant.
        #[serde(serialize_with = "refuse", deserialize_with = "refuse_de")]
        data: Arc<HostArray>,
        /// The box this chunk holds.
        region: Region,
    },
    /// A box of data held outside Tessera, read when the chunk runs.
    External {
        /// The whole array.
        #[serde(serialize_with = "refuse", deserialize_with = "refuse_de")]
        data: Arc<dyn crate::external::ExternalArray>,
        /// The box this chunk holds.
        region: Region,
    },
    /// Every element `value` (cast to the chunk dtype).
    Full {
        /// The value.
        value: Scalar,
    },
    /// `start + (offset + i) * step`.
    Arange {
        /// First value of the whole tensor.
        start: f64,
        /// Step.
        step: f64,
        /// Index of this chunk's first element.
        offset: usize,
    },
    /// linspace values `start + (offset + i) * step`, with `stop` exactly at index `last`.
    Linspace {
        /// Start.
        start: f64,
        /// Step.
        step: f64,
        /// Stop value, placed at index `last` when `Some`.
        stop: Option<(usize, f64)>,
        /// Index of this chunk's first element.
        offset: usize,
    },
    /// Identity-like: 1 where `col - row == k`.
    Eye {
        /// Diagonal.
        k: i64,
        /// First row of this chunk.
        row0: usize,
        /// First column of this chunk.
        col0: usize,
    },
    /// Random values keyed by (seed, stream, global flat index).
    Random {
        /// Seed.
        seed: u64,
        /// Stream.
        stream: u64,
        /// Distribution.
        dist: Dist,
        /// Global coordinates of this chunk's first element.
        offset: Box<[usize]>,
        /// Shape of the whole tensor.
        full: Arc<[usize]>,
    },
    /// Unary elementwise.
    Unary(UnaryOp),
    /// Binary elementwise with numpy broadcasting between the two chunks.
    Binary(BinaryOp),
    /// `where(c, a, b)` with broadcasting.
    Where,
    /// Cast to the node dtype.
    Cast,
    /// Per-chunk partial of a reduction over `axes` (kept as size-1 axes).
    ReducePartial {
        /// Reduction.
        op: ReduceOp,
        /// Axes (of the chunk) reduced.
        axes: Vec<usize>,
    },
    /// Combines partials of equal shape; `counts[i]` = elements behind input `i` (var/std).
    ReduceCombine {
        /// Reduction.
        op: ReduceOp,
        /// Element counts per input.
        counts: Vec<f64>,
    },
    /// Turns a combined partial into the result.
    ReduceFinal {
        /// Reduction.
        op: ReduceOp,
        /// Reduced axes (size 1 in the partial).
        axes: Vec<usize>,
        /// Keep reduced axes.
        keepdims: bool,
        /// Delta degrees of freedom.
        ddof: u32,
        /// Total elements reduced into each output element.
        count: f64,
    },
    /// argmin/argmax partial: (value, global index) along `axis`, kept as size 1.
    ArgPartial {
        /// Which.
        op: ArgOp,
        /// Axis.
        axis: usize,
        /// Global index of the chunk's first element along `axis`.
        offset: usize,
    },
    /// Combines arg partials; ties go to the lower index.
    ArgCombine {
        /// Which.
        op: ArgOp,
    },
    /// Extracts the index field and drops `axis`.
    ArgFinal {
        /// Axis.
        axis: usize,
    },
    /// Axis permutation of one chunk.
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// Chunk-local reshape (only size-1 axes inserted or removed).
    Reshape,
    /// Broadcast one chunk to the node shape.
    BroadcastTo,
    /// A strided box of one chunk.
    Slice {
        /// Box in the input chunk.
        region: Region,
        /// Step per axis (negative walks the box backwards).
        steps: Vec<isize>,
    },
    /// Builds a chunk from boxes of several input chunks: input `i` contributes its box
    /// `pieces[i].0` at offset `pieces[i].1` of the output.
    Assemble {
        /// (source box, destination offset) per input.
        pieces: Vec<(Region, Vec<usize>)>,
    },
    /// General row-major reshape of a box: output box at `out_offset` of a tensor of shape
    /// `out_full`, gathered from input chunks at `in_offsets` of a tensor of shape `in_full`.
    ReshapeGather {
        /// Input tensor shape.
        in_full: Box<[usize]>,
        /// Global offset of each input chunk.
        in_offsets: Vec<Vec<usize>>,
        /// Output tensor shape.
        out_full: Box<[usize]>,
        /// Global offset of the output chunk.
        out_offset: Box<[usize]>,
    },
    /// A fused kernel (elementwise chain, random sources, optional reduction tail); inputs are
    /// the kernel's load buffers in order.
    Fused {
        /// The kernel.
        ir: Arc<KernelIr>,
        /// This chunk's run-time values (boxed: keeps every chunk node small).
        params: Box<KernelParams>,
        /// Loads served straight from user data, read in place: (load index, data). The node's
        /// inputs are the other loads, in order.
        #[serde(skip)]
        bound: Vec<(usize, BoundData)>,
    },
    /// Writes its input, the box `region` of a result, to a sink (a file being written chunk
    /// by chunk); its own output is empty (shape `[0]`).
    Write {
        /// Where the result goes.
        #[serde(serialize_with = "refuse", deserialize_with = "refuse_de")]
        sink: Arc<dyn crate::external::ChunkSink>,
        /// The box of the whole result its input holds.
        region: Region,
    },
    /// `out = a @ b (+ acc)` over broadcast batch dims.
    MatMul {
        /// When true a third input is added (the running sum over K).
        accumulate: bool,
    },
    /// A dense kernel on every matrix of the chunk (the last two axes whole).
    Dense(crate::linalg::DenseOp),
    /// The `k` best of every lane along `axis` of one chunk, best first (fewer where a lane is
    /// shorter): two fields, the values and their global int64 positions (`offset` + the
    /// position in the chunk). See [`crate::op::Op::TopK`] for the order.
    TopKPartial {
        /// The axis.
        axis: usize,
        /// How many.
        k: usize,
        /// Largest rather than smallest.
        largest: bool,
        /// Global position of the chunk's first element along `axis`.
        offset: usize,
    },
    /// The `k` nearest data rows of each query of a block, with their global positions (the
    /// data block's first row is `offset`): inputs the data block (nb x d) and the query
    /// block (mb x d); outputs the squared distances (mb x min(k, nb)) and the positions, as
    /// `TopKPartial`'s. See [`crate::op::Op::Knn`].
    KnnPartial {
        /// How many neighbours.
        k: usize,
        /// The data block's first row in the whole data.
        offset: usize,
    },
    /// The `k` best of the candidates of several top-k partials (their lanes concatenated
    /// along `axis`), best first; ties go to the lower global position.
    TopKCombine {
        /// The axis.
        axis: usize,
        /// How many.
        k: usize,
        /// Largest rather than smallest.
        largest: bool,
    },
    /// One field of a top-k result: the values (0) or the positions (1).
    TopKFinal {
        /// Which field.
        field: usize,
    },
    /// A stable sort (or argsort) of every lane along `axis`, which the chunk holds whole
    /// (see [`crate::op::Op::Sort`]).
    Sort {
        /// The axis.
        axis: usize,
        /// Largest first.
        descending: bool,
        /// Positions (int64) rather than values.
        arg: bool,
    },
    /// How many elements of a 1-D chunk fall in each bucket of `pivots` (see
    /// [`crate::op::Op::BucketCount`]): int64 of shape `[1, pivots + 1]`.
    BucketCount {
        /// The pivots, in the sort's order.
        pivots: Arc<[(u64, u64)]>,
        /// Global position of the chunk's first element.
        offset: usize,
        /// The sort's order is largest first.
        descending: bool,
    },
    /// Splits a 1-D chunk by `pivots` into one field per bucket (elements in input order);
    /// with `arg`, two fields per bucket: the values and their global int64 positions.
    Bucketize {
        /// The pivots, in the sort's order.
        pivots: Arc<[(u64, u64)]>,
        /// Global position of the chunk's first element.
        offset: usize,
        /// The sort's order is largest first.
        descending: bool,
        /// Also the positions.
        arg: bool,
    },
    /// Field `index` of its input's fields.
    Field {
        /// Which field.
        index: usize,
    },
    /// One bucket of a sample sort: its pieces from every segment in order (with `arg`, each
    /// piece's values then its positions), concatenated and sorted stably.
    BucketSort {
        /// Largest first.
        descending: bool,
        /// The positions rather than the values.
        arg: bool,
    },
    /// Cumulative sum (or product) of every lane along `axis`, starting from the second
    /// input (the carry from the chunks before, size 1 along `axis`) when there is one.
    Scan {
        /// The axis.
        axis: usize,
        /// Product rather than sum.
        prod: bool,
    },
    /// The sum (or product) of every lane along `axis`, kept as size 1, folded in order as
    /// [`ChunkOp::Scan`] folds, after the second input (the carry so far) when there is one:
    /// the carry of the chunks after.
    ScanTotal {
        /// The axis.
        axis: usize,
        /// Product rather than sum.
        prod: bool,
    },
    /// Gathers along `axis`: output position `i` takes the input slice at global position
    /// `positions[i]` from the input chunk whose global range along `axis` holds it (input
    /// `j` starts at `starts[j]` and is as long as its shape says); positions no input holds
    /// are filled with the additive identity that keeps every value (`-0.0`, `0`, `false`),
    /// so the partial gathers of several input groups add up exactly.
    Take {
        /// The axis.
        axis: usize,
        /// Global positions along `axis`, one per output position.
        positions: Arc<[i64]>,
        /// Global start of each input chunk along `axis`.
        starts: Vec<usize>,
    },
    /// `take_along_axis` of one chunk: inputs (x with `axis` whole, int64 idx).
    TakeAlong {
        /// The axis.
        axis: usize,
    },
    /// The rows (axis 0) of the first input where the second (1-D bool) is true; `count` is
    /// the number of true rows the stage measured (a different count is an error, never a
    /// wrong shape).
    Compact {
        /// True rows expected.
        count: usize,
    },
    /// For every element of the second input (a chunk of the values), the int64 number of
    /// elements of the first (a chunk of the sorted 1-D array) before it in numpy's order (with
    /// `right`, before or equal): its position within that chunk, found by binary search.
    SearchSortedPartial {
        /// numpy's `side='right'`.
        right: bool,
    },
    /// The counts (int64) of the values `offset..offset + len` in a chunk of a 1-D integer
    /// array, or the sums of a second input's float64 weights: a bincount partial for one
    /// chunk of the result. A value below 0 or from `total` on is an error, never skipped.
    BinCountPartial {
        /// The first value counted.
        offset: usize,
        /// How many values are counted (this result chunk's length).
        len: usize,
        /// The whole result's length.
        total: usize,
    },
    /// The histogram counts (int64) of every element of a chunk, or the sums of a second
    /// input's float64 weights (same shape): a histogram partial.
    HistogramPartial {
        /// The bins.
        bins: Arc<crate::op::HistBins>,
    },
    /// The elementwise sum of its inputs (same shape and dtype; `or` for bool), on the host:
    /// the combine step of searchsorted, bincount and histogram partials and of partial
    /// gathers (`take`).
    PartsSum,
    /// `out = a a^T (+ acc)` of a 2-D chunk: the symmetric product of a Gram matrix's diagonal
    /// block (half the flops of the general product).
    Syrk {
        /// When true a second input is added (the running sum over K).
        accumulate: bool,
    },
}

/// User data a fused kernel reads in place, whole: a constant, or an external array whose
/// elements are in memory in row-major order ([`crate::external::ExternalArray::flat`]).
/// The kernel's load offset and strides say where in it each chunk reads.
#[derive(Debug, Clone)]
pub enum BoundData {
    /// A constant's data.
    Host(Arc<HostArray>),
    /// An external array read in place.
    External(Arc<dyn crate::external::ExternalArray>),
}

impl BoundData {
    /// The elements in row-major order (`None` for a constant in another layout, or an
    /// external array that is not in memory).
    pub fn flat(&self) -> Option<crate::array::HostSlice<'_>> {
        match self {
            BoundData::Host(a) => crate::array::HostSlice::of(a),
            BoundData::External(e) => e.flat(),
        }
    }

    /// The bound chunk node's data and the box it holds: a constant, or an external array in
    /// memory; `None` for any other op.
    pub fn of_op(op: &ChunkOp) -> Option<(BoundData, &Region)> {
        match op {
            ChunkOp::Constant { data, region } => Some((BoundData::Host(data.clone()), region)),
            ChunkOp::External { data, region } if data.flat().is_some() => {
                Some((BoundData::External(data.clone()), region))
            }
            _ => None,
        }
    }

    /// Shape of the whole data.
    pub fn shape(&self) -> &[usize] {
        match self {
            BoundData::Host(a) => a.shape(),
            BoundData::External(e) => e.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// True when it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element dtype.
    pub fn dtype(&self) -> DType {
        match self {
            BoundData::Host(a) => a.dtype(),
            BoundData::External(e) => e.dtype(),
        }
    }

    /// A 1-d copy of the row-major elements `lo..hi` (clamped to the data), for a backend that
    /// moves what a kernel reads to its device.
    ///
    /// # Errors
    /// An external array that is not in memory (never bound: the fusers bind only those
    /// whose `flat` is `Some`).
    pub fn window(&self, lo: usize, hi: usize) -> crate::error::Result<HostArray> {
        let hi = hi.min(self.len());
        let lo = lo.min(hi);
        match (self, self.flat()) {
            (_, Some(s)) => Ok(s.sub(lo, hi - lo).to_host()),
            (BoundData::Host(a), None) => Ok(a.reshape(&[a.len()]).slice_region(&[(lo, hi)], None)),
            (BoundData::External(e), None) => Err(crate::error::Error::invalid(
                "fused kernel",
                format!("{} is not in memory to be read in place", e.describe()),
            )),
        }
    }
}

impl ChunkOp {
    /// True for the ops the GPU backends (wgpu, CUDA) run on the host (few values, index
    /// functions in f64, or kernels not written for the GPU yet: sorts, top-k, scans, gathers,
    /// factorizations, combines). A remote executor sends a task made only of these to a CPU
    /// worker: a GPU would not run it.
    pub fn gpu_host_step(&self) -> bool {
        matches!(
            self,
            ChunkOp::Constant { .. }
                | ChunkOp::External { .. }
                | ChunkOp::Write { .. }
                | ChunkOp::Arange { .. }
                | ChunkOp::Linspace { .. }
                | ChunkOp::Eye { .. }
                | ChunkOp::Reshape
                | ChunkOp::Dense(_)
                | ChunkOp::Sort { .. }
                | ChunkOp::TopKPartial { .. }
                | ChunkOp::KnnPartial { .. }
                | ChunkOp::TopKCombine { .. }
                | ChunkOp::TopKFinal { .. }
                | ChunkOp::SearchSortedPartial { .. }
                | ChunkOp::BinCountPartial { .. }
                | ChunkOp::HistogramPartial { .. }
                | ChunkOp::PartsSum
                | ChunkOp::Scan { .. }
                | ChunkOp::ScanTotal { .. }
                | ChunkOp::Take { .. }
                | ChunkOp::TakeAlong { .. }
                | ChunkOp::Compact { .. }
                | ChunkOp::BucketCount { .. }
                | ChunkOp::Bucketize { .. }
                | ChunkOp::Field { .. }
                | ChunkOp::BucketSort { .. }
                | ChunkOp::ReduceCombine { .. }
                | ChunkOp::ReduceFinal { .. }
                | ChunkOp::ArgCombine { .. }
                | ChunkOp::ArgFinal { .. }
        )
    }

    /// Short name for stats.
    pub fn name(&self) -> &'static str {
        match self {
            ChunkOp::Constant { .. } => "constant",
            ChunkOp::External { .. } => "external",
            ChunkOp::Write { .. } => "write",
            ChunkOp::Full { .. } => "full",
            ChunkOp::Arange { .. } => "arange",
            ChunkOp::Linspace { .. } => "linspace",
            ChunkOp::Eye { .. } => "eye",
            ChunkOp::Random { .. } => "random",
            ChunkOp::Unary(_) => "unary",
            ChunkOp::Binary(_) => "binary",
            ChunkOp::Where => "where",
            ChunkOp::Cast => "cast",
            ChunkOp::ReducePartial { .. } => "reduce_partial",
            ChunkOp::ReduceCombine { .. } => "reduce_combine",
            ChunkOp::ReduceFinal { .. } => "reduce_final",
            ChunkOp::ArgPartial { .. } => "arg_partial",
            ChunkOp::ArgCombine { .. } => "arg_combine",
            ChunkOp::ArgFinal { .. } => "arg_final",
            ChunkOp::Transpose { .. } => "transpose",
            ChunkOp::Reshape => "reshape",
            ChunkOp::BroadcastTo => "broadcast_to",
            ChunkOp::Slice { .. } => "slice",
            ChunkOp::Assemble { .. } => "assemble",
            ChunkOp::ReshapeGather { .. } => "reshape_gather",
            ChunkOp::MatMul { .. } => "matmul",
            ChunkOp::Dense(d) => d.name(),
            ChunkOp::Sort { arg: true, .. } => "argsort",
            ChunkOp::TopKPartial { .. } => "topk_partial",
            ChunkOp::KnnPartial { .. } => "knn_partial",
            ChunkOp::TopKCombine { .. } => "topk_combine",
            ChunkOp::TopKFinal { .. } => "topk_final",
            ChunkOp::Sort { arg: false, .. } => "sort",
            ChunkOp::SearchSortedPartial { .. } => "searchsorted_partial",
            ChunkOp::BinCountPartial { .. } => "bincount_partial",
            ChunkOp::HistogramPartial { .. } => "histogram_partial",
            ChunkOp::PartsSum => "parts_sum",
            ChunkOp::Syrk { .. } => "syrk",
            ChunkOp::Scan { prod: false, .. } => "cumsum",
            ChunkOp::Scan { prod: true, .. } => "cumprod",
            ChunkOp::ScanTotal { .. } => "scan_total",
            ChunkOp::Take { .. } => "take",
            ChunkOp::TakeAlong { .. } => "take_along_axis",
            ChunkOp::Compact { .. } => "compact",
            ChunkOp::BucketCount { .. } => "bucket_count",
            ChunkOp::Bucketize { .. } => "bucketize",
            ChunkOp::Field { .. } => "field",
            ChunkOp::BucketSort { arg: false, .. } => "bucket_sort",
            ChunkOp::BucketSort { arg: true, .. } => "bucket_argsort",
            ChunkOp::Fused { .. } => "fused",
        }
    }
}

/// Serializing user data or a sink inside a chunk op is refused: such nodes run where the data
/// is (see [`crate::remote`]). A field attribute rather than a skipped variant: skipping
/// variants would shift the variant indices of index-based formats.
fn refuse<T, S: serde::Serializer>(_: &T, _: S) -> std::result::Result<S::Ok, S::Error> {
    Err(serde::ser::Error::custom(
        "user data and sinks do not travel in a chunk op; they run on the driver",
    ))
}

fn refuse_de<'de, T, D: serde::Deserializer<'de>>(_: D) -> std::result::Result<T, D::Error> {
    Err(serde::de::Error::custom(
        "user data and sinks do not travel in a chunk op; they run on the driver",
    ))
}

/// The inputs of a chunk node.
pub type ChunkInputs = smallvec::SmallVec<[ChunkId; 4]>;

/// The shape of a chunk node.
pub type ChunkShape = smallvec::SmallVec<[usize; 4]>;

/// One task of the chunk graph.
#[derive(Debug, Clone)]
pub struct ChunkNode {
    /// What it computes.
    pub op: ChunkOp,
    /// Input chunks (inline up to four: no allocation per node for the common case).
    pub inputs: ChunkInputs,
    /// Shape of the (first field of the) output (inline up to rank 4).
    pub shape: ChunkShape,
    /// Dtype of the (first field of the) output.
    pub dtype: DType,
}

impl ChunkNode {
    /// Bytes of the output's first field (partials with two fields count twice).
    pub fn nbytes(&self) -> usize {
        let fields = match &self.op {
            ChunkOp::ReducePartial { op, .. } | ChunkOp::ReduceCombine { op, .. }
                if matches!(op, ReduceOp::Var | ReduceOp::Std) =>
            {
                2
            }
            ChunkOp::ArgPartial { .. } | ChunkOp::ArgCombine { .. } => 2,
            ChunkOp::Fused { ir, .. } => match ir.reduce.as_ref().map(|r| r.kind) {
                Some(ReduceKind::Arg(_))
                | Some(ReduceKind::Reduce(ReduceOp::Var | ReduceOp::Std)) => 2,
                _ => 1,
            },
            _ => 1,
        };
        let n = self.shape.iter().product::<usize>();
        if let ChunkOp::Bucketize { arg: true, .. } = self.op {
            // The values and their int64 positions, split into buckets.
            return n * (self.dtype.size() + 8);
        }
        if matches!(
            self.op,
            ChunkOp::TopKPartial { .. } | ChunkOp::KnnPartial { .. } | ChunkOp::TopKCombine { .. }
        ) {
            // The values and their int64 positions.
            return n * (self.dtype.size() + 8);
        }
        fields * n * self.dtype.size()
    }
}

/// The most nodes a chunk graph may hold: ids are `u32` and the count itself must fit one
/// (the Tiler refuses a tiling past it with a typed error).
pub const MAX_CHUNK_NODES: usize = u32::MAX as usize;

/// The fine-grained graph: chunk nodes in topological order.
#[derive(Debug, Clone, Default)]
pub struct ChunkGraph {
    /// Nodes; inputs always precede their users.
    pub nodes: Vec<ChunkNode>,
}

impl ChunkGraph {
    /// Appends a node.
    ///
    /// # Panics
    /// Past [`MAX_CHUNK_NODES`] nodes, which the Tiler refuses before tiling: an id that
    /// wrapped would silently name another chunk.
    pub fn push(&mut self, node: ChunkNode) -> ChunkId {
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| (i as usize) < MAX_CHUNK_NODES)
            .expect("chunk graph within MAX_CHUNK_NODES (bounded by the Tiler)");
        self.nodes.push(node);
        ChunkId(id)
    }
    /// The node.
    pub fn node(&self, id: ChunkId) -> &ChunkNode {
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
}

/// A tensor cut into chunks: chunk sizes per axis, and the chunk ids in row-major grid order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiled {
    /// Chunk sizes along each axis (they sum to the axis length).
    pub grid: Vec<Vec<usize>>,
    /// Chunk ids, row-major over the grid.
    pub chunks: Vec<ChunkId>,
}

impl Tiled {
    /// Number of chunks along each axis.
    pub fn counts(&self) -> Vec<usize> {
        self.grid.iter().map(|g| g.len()).collect()
    }
    /// The chunk at grid index `idx`.
    pub fn at(&self, idx: &[usize]) -> ChunkId {
        // `ravel` over the chunk counts, without collecting them (called once per chunk).
        let flat = idx
            .iter()
            .zip(&self.grid)
            .fold(0, |acc, (&i, g)| acc * g.len() + i);
        self.chunks[flat]
    }
    /// The box of the chunk at grid index `idx` (O(index); loops use `starts` + `region_in`).
    pub fn region(&self, idx: &[usize]) -> Region {
        idx.iter()
            .zip(&self.grid)
            .map(|(&i, g)| {
                let s: usize = g[..i].iter().sum();
                (s, s + g[i])
            })
            .collect()
    }
    /// Start offset of every chunk along each axis (prefix sums of the grid).
    pub fn starts(&self) -> Vec<Vec<usize>> {
        self.grid
            .iter()
            .map(|g| {
                let mut acc = 0;
                g.iter()
                    .map(|&x| {
                        let s = acc;
                        acc += x;
                        s
                    })
                    .collect()
            })
            .collect()
    }
    /// The box of the chunk at `idx`, given `starts()`: O(rank).
    pub fn region_in(&self, starts: &[Vec<usize>], idx: &[usize]) -> Region {
        idx.iter()
            .enumerate()
            .map(|(a, &i)| (starts[a][i], starts[a][i] + self.grid[a][i]))
            .collect()
    }
}

/// Row-major flat index of `idx` in a grid of `dims`.
pub fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Every chunk of a grid (chunk sizes per axis): its index and its box, row-major.
pub fn grid_boxes(grid: &[Vec<usize>]) -> Vec<(Vec<usize>, Region)> {
    let t = Tiled {
        grid: grid.to_vec(),
        chunks: vec![],
    };
    let starts = t.starts();
    grid_indices(&t.counts())
        .into_iter()
        .map(|idx| {
            let r = t.region_in(&starts, &idx);
            (idx, r)
        })
        .collect()
}

/// Every multi-index of a grid of `dims`, row-major.
pub fn grid_indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..total {
        out.push(idx.clone());
        for a in (0..dims.len()).rev() {
            idx[a] += 1;
            if idx[a] < dims[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}
