//! Tiling of scans (cumulative sums and products), gathers and row compaction.

use super::{boundaries, region_size, split, Tiler};
use crate::chunk::{grid_indices, ChunkId, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Input chunks one gather task reads at most; more are gathered in groups whose partial
/// results are added (each position is filled by exactly one group).
const TAKE_GROUP: usize = 8;

impl Tiler<'_> {
    /// A scan along `axis`: every chunk scans its lanes in parallel with the others, starting
    /// from the carry of the chunks before it (their totals combined in order), so the data is
    /// read twice but no chunk waits for another's scan.
    pub(super) fn scan(
        &mut self,
        t: &Tiled,
        axis: usize,
        prod: bool,
        dtype: DType,
    ) -> Result<Tiled> {
        self.reserve_grid(&t.grid, 3)?;
        let counts = t.counts();
        let starts = t.starts();
        // Row-major order visits each lane's chunks along `axis` in order.
        let mut carries: HashMap<Vec<usize>, ChunkId> = HashMap::new();
        let mut chunks = Vec::with_capacity(t.chunks.len());
        for idx in grid_indices(&counts) {
            let shape = region_size(&t.region_in(&starts, &idx));
            let mut key = idx.clone();
            key[axis] = 0;
            let x = t.at(&idx);
            let carry = carries.get(&key).copied();
            let mut ins = vec![x];
            ins.extend(carry);
            chunks.push(self.push(ChunkOp::Scan { axis, prod }, ins, shape.clone(), dtype));
            if idx[axis] + 1 < counts[axis] {
                let mut tshape = shape;
                tshape[axis] = 1;
                // The carry for the next chunk: this one's total after the carry so far (a
                // host task: a GPU backend need not have int64 arithmetic).
                let mut tins = vec![x];
                tins.extend(carry);
                let next = self.push(ChunkOp::ScanTotal { axis, prod }, tins, tshape, dtype);
                carries.insert(key, next);
            }
        }
        Ok(Tiled {
            grid: t.grid.clone(),
            chunks,
        })
    }

    /// A gather along `axis` at known `positions` (checked, non-negative): the result is cut
    /// along `axis` as the input is, and each result chunk reads only the input chunks its
    /// positions fall in (in groups of [`TAKE_GROUP`], added up).
    pub(super) fn take(
        &mut self,
        t: &Tiled,
        positions: &[i64],
        axis: usize,
        dtype: DType,
    ) -> Result<Tiled> {
        let piece = t.grid[axis].iter().copied().max().unwrap_or(1).max(1);
        let mut grid = t.grid.clone();
        grid[axis] = split(positions.len(), piece);
        self.reserve_grid(&grid, 2)?;
        let bounds = boundaries(&t.grid[axis]);
        let len = *bounds.last().expect("one boundary at least");
        // Per segment of the result's axis: its positions and the input chunks they touch.
        let mut segs = Vec::with_capacity(grid[axis].len());
        let mut at = 0;
        for &n in &grid[axis] {
            let pos: Arc<[i64]> = positions[at..at + n].into();
            at += n;
            let mut touched = Vec::new();
            for &p in pos.iter() {
                let p = usize::try_from(p)
                    .ok()
                    .filter(|&p| p < len)
                    .ok_or_else(|| {
                        Error::invalid("take", format!("position {p} outside an axis of {len}"))
                    })?;
                touched.push(bounds.partition_point(|&b| b <= p) - 1);
            }
            touched.sort_unstable();
            touched.dedup();
            segs.push((pos, touched));
        }
        let counts: Vec<usize> = grid.iter().map(Vec::len).collect();
        let out = Tiled {
            grid: grid.clone(),
            chunks: Vec::new(),
        };
        let ostarts = out.starts();
        let mut chunks = Vec::new();
        for idx in grid_indices(&counts) {
            let shape = region_size(&out.region_in(&ostarts, &idx));
            let (pos, touched) = &segs[idx[axis]];
            let mut parts = Vec::new();
            // Groups of input chunks of at most TAKE_GROUP chunks and about two chunk
            // budgets of bytes (a task's inputs are in memory together).
            let in_bytes = |j: usize| {
                let mut i = idx.clone();
                i[axis] = j;
                self.cg.node(t.at(&i)).nbytes()
            };
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let mut bytes = 0usize;
            for &j in touched {
                let b = in_bytes(j);
                match groups.last_mut() {
                    Some(g) if g.len() < TAKE_GROUP && bytes + b <= 2 * self.chunk_bytes => {
                        g.push(j);
                        bytes += b;
                    }
                    _ => {
                        groups.push(vec![j]);
                        bytes = b;
                    }
                }
            }
            for group in &groups {
                let ins: Vec<ChunkId> = group
                    .iter()
                    .map(|&j| {
                        let mut i = idx.clone();
                        i[axis] = j;
                        t.at(&i)
                    })
                    .collect();
                let op = ChunkOp::Take {
                    axis,
                    positions: pos.clone(),
                    starts: group.iter().map(|&j| bounds[j]).collect(),
                };
                parts.push(self.push(op, ins, shape.clone(), dtype));
            }
            // An n-ary sum on the host (any dtype; a GPU backend need not have int64).
            chunks.push(self.tree(parts, |_| ChunkOp::PartsSum, shape, dtype));
        }
        Ok(Tiled { grid, chunks })
    }

    /// `take_along_axis`: the input's lanes whole along `axis`, the indices cut along it as
    /// they come; the other axes follow the input's chunks.
    pub(super) fn take_along(
        &mut self,
        x: &Tiled,
        idx: &Tiled,
        axis: usize,
        x_dtype: DType,
    ) -> Result<Tiled> {
        let mut gx = x.grid.clone();
        gx[axis] = vec![gx[axis].iter().sum()];
        let mut gi = gx.clone();
        gi[axis] = idx.grid[axis].clone();
        let xt = self.rechunk(x, &gx, x_dtype)?;
        let it = self.rechunk(idx, &gi, DType::I64)?;
        self.per_chunk(gi, x_dtype, |i, _| {
            let mut xi = i.to_vec();
            xi[axis] = 0;
            (
                ChunkOp::TakeAlong { axis },
                vec![xt.at(&xi), it.at(i)].into(),
            )
        })
    }

    /// Row compaction: the rows and the mask cut into the measured segments along axis 0;
    /// each segment keeps its measured count of rows (segments that keep none leave the grid).
    pub(super) fn compact(
        &mut self,
        x: &Tiled,
        mask: &Tiled,
        seg: usize,
        counts: &[usize],
        dtype: DType,
    ) -> Result<Tiled> {
        let n: usize = x.grid[0].iter().sum();
        let cut = split(n, seg);
        if cut.len() != counts.len() {
            return Err(Error::invalid(
                "compact",
                format!(
                    "{} segment counts for {n} rows in segments of {seg}",
                    counts.len()
                ),
            ));
        }
        let mut gx = x.grid.clone();
        gx[0] = cut.clone();
        let xt = self.rechunk(x, &gx, dtype)?;
        let mt = self.rechunk(mask, &[cut], DType::Bool)?;
        let kept: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
        let mut grid = gx.clone();
        grid[0] = kept.iter().map(|&i| counts[i]).collect();
        self.per_chunk(grid, dtype, |i, _| {
            let s = kept[i[0]];
            let mut xi = i.to_vec();
            xi[0] = s;
            (
                ChunkOp::Compact { count: counts[s] },
                vec![xt.at(&xi), mt.at(&[s])].into(),
            )
        })
    }
}
