//! Tiling of matmul: chunk products accumulated along K in order, each step runnable as soon
//! as its product's inputs exist.

use super::{region_size, union_grid, Tiler};
use crate::chunk::{grid_boxes, ChunkId, ChunkInputs, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::Result;
use crate::linalg::DenseOp;

impl Tiler<'_> {
    pub(super) fn matmul(
        &mut self,
        a: &Tiled,
        b: &Tiled,
        sa: &[usize],
        sb: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let n = sa.len();
        let nb = n - 2;
        let mut grid: Vec<Vec<usize>> = Vec::new();
        let mut ga = Vec::new();
        let mut gb = Vec::new();
        for ax in 0..nb {
            let mut contrib = Vec::new();
            if sa[ax] != 1 {
                contrib.push(&a.grid[ax]);
            }
            if sb[ax] != 1 {
                contrib.push(&b.grid[ax]);
            }
            let u = if contrib.is_empty() {
                vec![1]
            } else {
                union_grid(&contrib)
            };
            ga.push(if sa[ax] == 1 { vec![1] } else { u.clone() });
            gb.push(if sb[ax] == 1 { vec![1] } else { u.clone() });
            grid.push(u);
        }
        let gk = union_grid(&[&a.grid[n - 1], &b.grid[n - 2]]);
        ga.push(a.grid[n - 2].clone());
        ga.push(gk.clone());
        gb.push(gk.clone());
        gb.push(b.grid[n - 1].clone());
        grid.push(a.grid[n - 2].clone());
        grid.push(b.grid[n - 1].clone());
        // One product per output chunk and K chunk.
        self.reserve_grid(&grid, gk.len())?;
        let a2 = self.rechunk(a, &ga, dtype)?;
        let b2 = self.rechunk(b, &gb, dtype)?;
        let mut chunks = Vec::new();
        for (idx, region) in grid_boxes(&grid) {
            let shape = region_size(&region);
            let mut acc: Option<ChunkId> = None;
            for k in 0..gk.len() {
                let mut ia: Vec<usize> = (0..nb)
                    .map(|x| if sa[x] == 1 { 0 } else { idx[x] })
                    .collect();
                ia.push(idx[nb]);
                ia.push(k);
                let mut ib: Vec<usize> = (0..nb)
                    .map(|x| if sb[x] == 1 { 0 } else { idx[x] })
                    .collect();
                ib.push(k);
                ib.push(idx[nb + 1]);
                let mut ins = vec![a2.at(&ia), b2.at(&ib)];
                if let Some(p) = acc {
                    ins.push(p);
                }
                acc = Some(self.push(
                    ChunkOp::MatMul {
                        accumulate: acc.is_some(),
                    },
                    ins,
                    shape.clone(),
                    dtype,
                ));
            }
            chunks.push(acc.expect("at least one K chunk"));
        }
        Ok(Tiled { grid, chunks })
    }
}

impl Tiler<'_> {
    /// A dense kernel: each operand's last two axes made whole (one matrix per chunk), its
    /// batch axes chunked as the first operand's; one kernel per batch chunk.
    pub(super) fn dense(
        &mut self,
        op: DenseOp,
        inputs: &[Tiled],
        in_shapes: &[Vec<usize>],
        in_dtypes: &[DType],
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let nd = in_shapes[0].len();
        if let Some(t) = self.tsqr(op, &inputs[0], &in_shapes[0], in_dtypes[0], dtype)? {
            return Ok(t);
        }
        if let Some(t) = self.blocked(op, inputs, in_shapes, in_dtypes, dtype)? {
            return Ok(t);
        }
        let batch: Vec<Vec<usize>> = inputs[0].grid[..nd - 2].to_vec();
        let mut ins = Vec::with_capacity(inputs.len());
        for ((t, s), &dt) in inputs.iter().zip(in_shapes).zip(in_dtypes) {
            let mut g = batch.clone();
            g.extend(s[nd - 2..].iter().map(|&d| vec![d]));
            ins.push(self.rechunk(t, &g, dt)?);
        }
        let mut grid = batch;
        grid.extend(shape[nd - 2..].iter().map(|&d| vec![d]));
        self.per_chunk(grid, dtype, |idx, _| {
            let mut at: Vec<usize> = idx[..nd - 2].to_vec();
            at.extend([0, 0]);
            (ChunkOp::Dense(op), ins.iter().map(|t| t.at(&at)).collect())
        })
    }
}

/// A node of the TSQR tree: its packed QR chunk, its row count and its `k` (rows of its R).
#[derive(Clone, Copy)]
struct TreeNode {
    packed: ChunkId,
    rows: usize,
    k: usize,
}

impl Tiler<'_> {
    /// Tall-skinny QR (and the SVD on top of it) for a 2-D matrix whose rows span several
    /// chunks: a QR per row block, the R factors stacked and factored again up a tree, Q as
    /// each block's Q times the product of the tree's Q blocks on its path; the SVD is that of
    /// the final small R, with its U folded into the top of the tree. `None` when the op or
    /// the input's chunking does not call for it (the matrix then goes whole to one kernel).
    fn tsqr(
        &mut self,
        op: DenseOp,
        a: &Tiled,
        shape: &[usize],
        in_dtype: DType,
        dtype: DType,
    ) -> Result<Option<Tiled>> {
        let wanted = matches!(
            op,
            DenseOp::Qr { complete: false }
                | DenseOp::QrR
                | DenseOp::Svd { full: false }
                | DenseOp::SvdVals
        );
        // Only R is wanted (the singular values, or numpy's `mode="r"`): every QR of the tree
        // is R-only, no Q is formed or kept.
        let r_only = matches!(op, DenseOp::QrR | DenseOp::SvdVals);
        if !wanted || shape.len() != 2 || a.grid[0].len() < 2 || shape[0] < shape[1] {
            return Ok(None);
        }
        let (m, n) = (shape[0], shape[1]);
        // A matrix that fits one chunk's budget goes whole to the dense kernel: one call,
        // and its small singular values carry no extra rounding from a tree.
        let bytes = m.saturating_mul(n).saturating_mul(dtype.size());
        if bytes <= self.chunk_bytes {
            return Ok(None);
        }
        let a = self.rechunk(a, &[a.grid[0].clone(), vec![n]], in_dtype)?;
        let qr = if r_only {
            DenseOp::QrR
        } else {
            DenseOp::Qr { complete: false }
        };
        // Rows of Q in a node's packed output (none when R-only).
        let q_rows = |rows: usize| if r_only { 0 } else { rows };
        // A node's R: its whole chunk when R-only, else cut out of its packed QR (so that
        // stacking R factors holds only them in memory, not the blocks' Q factors too).
        let r_of = |t: &mut Self, c: TreeNode| {
            if r_only {
                c.packed
            } else {
                t.slice2(c.packed, (c.rows, c.rows + c.k), (0, n), dtype)
            }
        };
        // Leaves: one QR per row block.
        let mut leaves = Vec::with_capacity(a.chunks.len());
        for (i, &rows) in a.grid[0].iter().enumerate() {
            let k = rows.min(n);
            let packed = self.push(
                ChunkOp::Dense(qr),
                vec![a.at(&[i, 0])],
                vec![q_rows(rows) + k, n],
                dtype,
            );
            leaves.push(TreeNode { packed, rows, k });
        }
        // Fan-in: as many stacked R factors as fit one chunk, 2 to 16.
        let es = dtype.size().max(1);
        let fan = (self.chunk_bytes / (n * n * es).max(1)).clamp(2, 16);
        // Up the tree: groups of `fan` nodes' R factors stacked and factored.
        let mut levels: Vec<Vec<TreeNode>> = vec![leaves];
        while levels.last().map_or(0, Vec::len) > 1 {
            let below = levels.last().expect("a level").clone();
            let mut up = Vec::new();
            for group in below.chunks(fan) {
                let rows: usize = group.iter().map(|c| c.k).sum();
                let mut pieces = Vec::with_capacity(group.len());
                let mut ins = Vec::with_capacity(group.len());
                let mut off = 0;
                for &c in group {
                    ins.push(r_of(self, c));
                    pieces.push((vec![(0, c.k), (0, n)], vec![off, 0]));
                    off += c.k;
                }
                let stacked = self.push(ChunkOp::Assemble { pieces }, ins, vec![rows, n], dtype);
                let k = rows.min(n);
                let packed = self.push(
                    ChunkOp::Dense(qr),
                    vec![stacked],
                    vec![q_rows(rows) + k, n],
                    dtype,
                );
                up.push(TreeNode { packed, rows, k });
            }
            levels.push(up);
        }
        let root = levels.last().expect("a level")[0];
        let k = root.k;
        let r = r_of(self, root);
        if op == DenseOp::QrR {
            return Ok(Some(Tiled {
                grid: vec![vec![k], vec![n]],
                chunks: vec![r],
            }));
        }
        if op == DenseOp::SvdVals {
            let s = self.push(ChunkOp::Dense(op), vec![r], vec![k], dtype);
            return Ok(Some(Tiled {
                grid: vec![vec![k]],
                chunks: vec![s],
            }));
        }
        // The SVD of R: R = U_r S V^T, so A = (Q U_r) S V^T.
        let (top, svd_tail) = if op == (DenseOp::Svd { full: false }) {
            let packed = self.push(
                ChunkOp::Dense(DenseOp::Svd { full: false }),
                vec![r],
                vec![k + 1 + k, n],
                dtype,
            );
            let cut = |t: &mut Self, r0: usize, rows: usize, cols: usize| {
                t.slice2(packed, (r0, r0 + rows), (0, cols), dtype)
            };
            let u_r = cut(self, 0, k, k);
            let s_row = cut(self, k, 1, n);
            let vt = cut(self, k + 1, k, n);
            (Some(u_r), Some((s_row, vt)))
        } else {
            (None, None)
        };
        // Down the tree: `t[c]` is the (k_c x k) factor that node c's Q is multiplied by.
        let mut factor: Vec<Option<ChunkId>> = vec![top];
        for lv in (0..levels.len() - 1).rev() {
            let parents = &levels[lv + 1];
            let mut next = Vec::with_capacity(levels[lv].len());
            for (p, group) in levels[lv].chunks(fan).enumerate() {
                let parent = parents[p];
                let mut off = 0;
                for c in group {
                    // Rows of the parent's Q that belong to child c.
                    let slice = self.slice2(parent.packed, (off, off + c.k), (0, parent.k), dtype);
                    off += c.k;
                    let f = match factor[p] {
                        None => slice,
                        Some(t) => self.push(
                            ChunkOp::MatMul { accumulate: false },
                            vec![slice, t],
                            vec![c.k, k],
                            dtype,
                        ),
                    };
                    next.push(Some(f));
                }
            }
            factor = next;
        }
        // Each block's Q (its leaf's Q) times its factor.
        let mut chunks = Vec::with_capacity(levels[0].len() + 3);
        for (leaf, f) in levels[0].iter().zip(&factor) {
            let q = self.slice2(leaf.packed, (0, leaf.rows), (0, leaf.k), dtype);
            chunks.push(match f {
                None => q,
                Some(f) => self.push(
                    ChunkOp::MatMul { accumulate: false },
                    vec![q, *f],
                    vec![leaf.rows, k],
                    dtype,
                ),
            });
        }
        let mut rows = a.grid[0].clone();
        match svd_tail {
            None => {
                chunks.push(r);
                rows.push(k);
            }
            Some((s_row, vt)) => {
                chunks.push(s_row);
                chunks.push(vt);
                rows.extend([1, k]);
            }
        }
        debug_assert_eq!(rows.iter().sum::<usize>(), op.out_shape(&[shape])?[0]);
        Ok(Some(Tiled {
            grid: vec![rows, vec![n]],
            chunks,
        }))
    }
}

impl Tiler<'_> {
    /// True when a matmul's operands are `a` and `a.T` (2-D): a Gram matrix, symmetric.
    pub(super) fn is_gram(&self, inputs: &[crate::graph::NodeId]) -> bool {
        let g = self.graph;
        let (a, b) = (g.node(inputs[0]), g.node(inputs[1]));
        a.shape.len() == 2
            && matches!(&b.op, crate::op::Op::Transpose { perm } if perm == &[1, 0])
            && b.inputs.first() == Some(&inputs[0])
    }

    /// `a @ a.T` as NumPy computes it (a symmetric rank-k update): the blocks below the
    /// diagonal are general products accumulated along K, the diagonal blocks symmetric
    /// products (half the flops), the blocks above the diagonal transposes of those below.
    pub(super) fn syrk(&mut self, a: &Tiled, dtype: DType) -> Result<Tiled> {
        let (gm, gk) = (a.grid[0].clone(), a.grid[1].clone());
        let grid = vec![gm.clone(), gm.clone()];
        self.reserve_grid(&grid, gk.len() + 1)?;
        let nb = gm.len();
        // a's blocks transposed, made once each where a block below the diagonal needs them.
        let mut at: Vec<Vec<Option<ChunkId>>> = vec![vec![None; gk.len()]; nb];
        let mut out: Vec<Option<ChunkId>> = vec![None; nb * nb];
        for i in 0..nb {
            for j in 0..=i {
                let mut acc: Option<ChunkId> = None;
                for (p, &kp) in gk.iter().enumerate() {
                    let ai = a.at(&[i, p]);
                    acc = Some(if i == j {
                        let mut ins = vec![ai];
                        ins.extend(acc);
                        self.push(
                            ChunkOp::Syrk {
                                accumulate: acc.is_some(),
                            },
                            ins,
                            vec![gm[i], gm[i]],
                            dtype,
                        )
                    } else {
                        let t = match at[j][p] {
                            Some(t) => t,
                            None => {
                                let t = self.push(
                                    ChunkOp::Transpose { perm: vec![1, 0] },
                                    vec![a.at(&[j, p])],
                                    vec![kp, gm[j]],
                                    dtype,
                                );
                                at[j][p] = Some(t);
                                t
                            }
                        };
                        let mut ins = vec![ai, t];
                        ins.extend(acc);
                        self.push(
                            ChunkOp::MatMul {
                                accumulate: acc.is_some(),
                            },
                            ins,
                            vec![gm[i], gm[j]],
                            dtype,
                        )
                    });
                }
                let c = match acc {
                    Some(c) => c,
                    // K is empty: zeros, as the general product gives.
                    None => self.push(
                        ChunkOp::Full {
                            value: crate::dtype::Scalar::Int(0),
                        },
                        ChunkInputs::new(),
                        vec![gm[i], gm[j]],
                        dtype,
                    ),
                };
                out[i * nb + j] = Some(c);
            }
        }
        for i in 0..nb {
            for j in i + 1..nb {
                let below = out[j * nb + i].expect("tiled above");
                out[i * nb + j] = Some(self.push(
                    ChunkOp::Transpose { perm: vec![1, 0] },
                    vec![below],
                    vec![gm[i], gm[j]],
                    dtype,
                ));
            }
        }
        Ok(Tiled {
            grid,
            chunks: out.into_iter().map(|c| c.expect("every block")).collect(),
        })
    }
}

impl Tiler<'_> {
    /// Rows `r0..r1` and columns `c0..c1` of a 2-D chunk.
    fn slice2(
        &mut self,
        src: ChunkId,
        (r0, r1): (usize, usize),
        (c0, c1): (usize, usize),
        dtype: DType,
    ) -> ChunkId {
        self.push(
            ChunkOp::Slice {
                region: vec![(r0, r1), (c0, c1)],
                steps: vec![1, 1],
            },
            vec![src],
            vec![r1 - r0, c1 - c0],
            dtype,
        )
    }

    /// The 2-D transpose of a chunk of shape `(rows, cols)`.
    fn transpose2(&mut self, src: ChunkId, rows: usize, cols: usize, dtype: DType) -> ChunkId {
        self.push(
            ChunkOp::Transpose { perm: vec![1, 0] },
            vec![src],
            vec![cols, rows],
            dtype,
        )
    }

    /// `x - acc`, elementwise (`acc` absent: `x`).
    fn minus(
        &mut self,
        x: ChunkId,
        acc: Option<ChunkId>,
        shape: Vec<usize>,
        dtype: DType,
    ) -> ChunkId {
        match acc {
            None => x,
            Some(p) => self.push(
                ChunkOp::Binary(crate::op::BinaryOp::Sub),
                vec![x, p],
                shape,
                dtype,
            ),
        }
    }

    /// Cholesky factors and triangular solves of one matrix (2-D, no batch axes) larger than
    /// a chunk, over its chunk grid, so that it never has to be one chunk: a matrix larger than
    /// memory streams through the Scheduler block by block. `None` for other ops, batches, and
    /// matrices that fit one chunk or are one chunk already (the dense kernel takes those).
    fn blocked(
        &mut self,
        op: DenseOp,
        inputs: &[Tiled],
        in_shapes: &[Vec<usize>],
        in_dtypes: &[DType],
        dtype: DType,
    ) -> Result<Option<Tiled>> {
        let shape = &in_shapes[0];
        if shape.len() != 2 || shape[0] != shape[1] {
            return Ok(None);
        }
        let a = &inputs[0];
        let n = shape[0];
        let g = union_grid(&[&a.grid[0], &a.grid[1]]);
        let big = n.saturating_mul(n).saturating_mul(dtype.size()) > self.chunk_bytes;
        if !big || g.len() < 2 {
            return Ok(None);
        }
        match op {
            DenseOp::Cholesky { upper } => {
                let a = self.rechunk(a, &[g.clone(), g.clone()], in_dtypes[0])?;
                Ok(Some(self.blocked_cholesky(&a, &g, upper, dtype)?))
            }
            DenseOp::TriSolve {
                lower,
                trans,
                left: true,
            } => {
                let b = &inputs[1];
                let t = self.rechunk(a, &[g.clone(), g.clone()], in_dtypes[0])?;
                let bg = vec![g.clone(), b.grid[1].clone()];
                let b = self.rechunk(b, &bg, in_dtypes[1])?;
                Ok(Some(
                    self.blocked_trisolve(&t, &b, &bg, lower, trans, dtype)?,
                ))
            }
            _ => Ok(None),
        }
    }

    /// Left-looking blocked Cholesky over the square grid `g`: for each block column k,
    /// `L_kk = chol(A_kk - sum_j L_kj L_kj^T)` and below it
    /// `L_ik = (A_ik - sum_j L_ij L_kj^T) L_kk^-T` (a triangular solve from the right), j < k;
    /// the blocks above the diagonal are zeros. `upper`: U = L^T, block by block.
    fn blocked_cholesky(
        &mut self,
        a: &Tiled,
        g: &[usize],
        upper: bool,
        dtype: DType,
    ) -> Result<Tiled> {
        let nb = g.len();
        self.reserve_grid(&[g.to_vec(), g.to_vec()], nb + 2)?;
        let mut l: Vec<Option<ChunkId>> = vec![None; nb * nb];
        // L_kj^T, made once where a block below needs it.
        let mut lt: Vec<Option<ChunkId>> = vec![None; nb * nb];
        for k in 0..nb {
            let mut acc = None;
            for j in 0..k {
                let mut ins = vec![l[k * nb + j].expect("left of the diagonal")];
                ins.extend(acc);
                acc = Some(self.push(
                    ChunkOp::Syrk {
                        accumulate: acc.is_some(),
                    },
                    ins,
                    vec![g[k], g[k]],
                    dtype,
                ));
            }
            let s = self.minus(a.at(&[k, k]), acc, vec![g[k], g[k]], dtype);
            let lkk = self.push(
                ChunkOp::Dense(DenseOp::Cholesky { upper: false }),
                vec![s],
                vec![g[k], g[k]],
                dtype,
            );
            l[k * nb + k] = Some(lkk);
            for i in k + 1..nb {
                let mut acc = None;
                for j in 0..k {
                    let t = match lt[k * nb + j] {
                        Some(t) => t,
                        None => {
                            let t =
                                self.transpose2(l[k * nb + j].expect("done"), g[k], g[j], dtype);
                            lt[k * nb + j] = Some(t);
                            t
                        }
                    };
                    let mut ins = vec![l[i * nb + j].expect("done"), t];
                    ins.extend(acc);
                    acc = Some(self.push(
                        ChunkOp::MatMul {
                            accumulate: acc.is_some(),
                        },
                        ins,
                        vec![g[i], g[k]],
                        dtype,
                    ));
                }
                let rhs = self.minus(a.at(&[i, k]), acc, vec![g[i], g[k]], dtype);
                l[i * nb + k] = Some(self.push(
                    ChunkOp::Dense(DenseOp::TriSolve {
                        lower: true,
                        trans: true,
                        left: false,
                    }),
                    vec![lkk, rhs],
                    vec![g[i], g[k]],
                    dtype,
                ));
            }
        }
        let mut chunks = Vec::with_capacity(nb * nb);
        for i in 0..nb {
            for j in 0..nb {
                // U_ij = (L_ji)^T.
                let (bi, bj) = if upper { (j, i) } else { (i, j) };
                chunks.push(if bi >= bj {
                    let c = l[bi * nb + bj].expect("every block on or below the diagonal");
                    if upper {
                        self.transpose2(c, g[bi], g[bj], dtype)
                    } else {
                        c
                    }
                } else {
                    self.push(
                        ChunkOp::Full {
                            value: crate::dtype::Scalar::Int(0),
                        },
                        ChunkInputs::new(),
                        vec![g[i], g[j]],
                        dtype,
                    )
                });
            }
        }
        Ok(Tiled {
            grid: vec![g.to_vec(), g.to_vec()],
            chunks,
        })
    }

    /// `op(T) X = B` over the grid: `op(T)` is T or T^T, lower when exactly one of `lower` and
    /// `trans` holds (forward substitution) and upper otherwise (backward):
    /// `X_i = op(T)_ii^-1 (B_i - sum_j op(T)_ij X_j)` over the blocks already solved, each
    /// column block of B on its own.
    fn blocked_trisolve(
        &mut self,
        t: &Tiled,
        b: &Tiled,
        bg: &[Vec<usize>],
        lower: bool,
        trans: bool,
        dtype: DType,
    ) -> Result<Tiled> {
        let (g, gc) = (&bg[0], &bg[1]);
        let nb = g.len();
        self.reserve_grid(bg, nb + 1)?;
        let forward = lower != trans;
        let order: Vec<usize> = if forward {
            (0..nb).collect()
        } else {
            (0..nb).rev().collect()
        };
        // op(T)_ij: T_ij, or T_ji transposed (made once each).
        let mut opt: Vec<Option<ChunkId>> = vec![None; nb * nb];
        let mut x: Vec<Option<ChunkId>> = vec![None; nb * gc.len()];
        for (c, &w) in gc.iter().enumerate() {
            for (step, &i) in order.iter().enumerate() {
                let mut acc = None;
                for &j in &order[..step] {
                    let tij = match opt[i * nb + j] {
                        Some(m) => m,
                        None => {
                            let m = if trans {
                                self.transpose2(t.at(&[j, i]), g[j], g[i], dtype)
                            } else {
                                t.at(&[i, j])
                            };
                            opt[i * nb + j] = Some(m);
                            m
                        }
                    };
                    let mut ins = vec![tij, x[j * gc.len() + c].expect("solved before")];
                    ins.extend(acc);
                    acc = Some(self.push(
                        ChunkOp::MatMul {
                            accumulate: acc.is_some(),
                        },
                        ins,
                        vec![g[i], w],
                        dtype,
                    ));
                }
                let rhs = self.minus(b.at(&[i, c]), acc, vec![g[i], w], dtype);
                x[i * gc.len() + c] = Some(self.push(
                    ChunkOp::Dense(DenseOp::TriSolve {
                        lower,
                        trans,
                        left: true,
                    }),
                    vec![t.at(&[i, i]), rhs],
                    vec![g[i], w],
                    dtype,
                ));
            }
        }
        Ok(Tiled {
            grid: bg.to_vec(),
            chunks: x.into_iter().map(|c| c.expect("every block")).collect(),
        })
    }
}
