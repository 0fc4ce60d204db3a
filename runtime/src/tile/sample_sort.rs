//! Tiling of the sample sort of a 1-D array larger than a chunk (see `Op::SampleSort`).

use super::{split, Tiler};
use crate::chunk::{ChunkId, ChunkOp, Tiled};
use crate::dtype::DType;
use crate::error::{Error, Result};
use std::sync::Arc;

impl Tiler<'_> {
    /// The measuring stage: the input cut into segments of `seg`, each counted per bucket.
    pub(super) fn bucket_count(
        &mut self,
        t: &Tiled,
        seg: usize,
        pivots: &[(u64, u64)],
        descending: bool,
        in_dtype: DType,
    ) -> Result<Tiled> {
        let n: usize = t.grid[0].iter().sum();
        let cut = split(n, seg);
        let x = self.rechunk(t, std::slice::from_ref(&cut), in_dtype)?;
        let pivots: Arc<[(u64, u64)]> = pivots.into();
        let nb = pivots.len() + 1;
        let grid = vec![vec![1; cut.len()], vec![nb]];
        let starts = x.starts();
        self.per_chunk(grid, DType::I64, |i, _| {
            (
                ChunkOp::BucketCount {
                    pivots: pivots.clone(),
                    offset: starts[0][i[0]],
                    descending,
                },
                vec![x.at(&[i[0]])].into(),
            )
        })
    }

    /// The sort: every segment bucketized once, each bucket's pieces taken as fields and
    /// sorted in one task; buckets that hold nothing leave the grid.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sample_sort(
        &mut self,
        t: &Tiled,
        seg: usize,
        pivots: &[(u64, u64)],
        counts: &[usize],
        descending: bool,
        arg: bool,
        in_dtype: DType,
    ) -> Result<Tiled> {
        let n: usize = t.grid[0].iter().sum();
        let cut = split(n, seg);
        let nb = pivots.len() + 1;
        if counts.len() != cut.len() * nb {
            return Err(Error::invalid(
                "sort",
                format!(
                    "{} bucket counts for {} segments and {nb} buckets",
                    counts.len(),
                    cut.len()
                ),
            ));
        }
        let x = self.rechunk(t, std::slice::from_ref(&cut), in_dtype)?;
        self.reserve_grid(std::slice::from_ref(&cut), 1 + 2 * nb)?;
        let pivots: Arc<[(u64, u64)]> = pivots.into();
        let starts = x.starts();
        let mut pieces: Vec<Vec<ChunkId>> = vec![Vec::new(); nb];
        for (c, &len) in cut.iter().enumerate() {
            let b = self.push(
                ChunkOp::Bucketize {
                    pivots: pivots.clone(),
                    offset: starts[0][c],
                    descending,
                    arg,
                },
                vec![x.at(&[c])],
                vec![len],
                in_dtype,
            );
            for (k, piece) in pieces.iter_mut().enumerate() {
                let m = counts[c * nb + k];
                if m == 0 {
                    continue;
                }
                if arg {
                    piece.push(self.push(
                        ChunkOp::Field { index: 2 * k },
                        vec![b],
                        vec![m],
                        in_dtype,
                    ));
                    piece.push(self.push(
                        ChunkOp::Field { index: 2 * k + 1 },
                        vec![b],
                        vec![m],
                        DType::I64,
                    ));
                } else {
                    piece.push(self.push(ChunkOp::Field { index: k }, vec![b], vec![m], in_dtype));
                }
            }
        }
        let dt = if arg { DType::I64 } else { in_dtype };
        let (mut grid, mut chunks) = (Vec::new(), Vec::new());
        // Buckets are numbered in the sort's order (descending too).
        for k in 0..nb {
            let total: usize = (0..cut.len()).map(|c| counts[c * nb + k]).sum();
            if total == 0 {
                continue;
            }
            let ins = std::mem::take(&mut pieces[k]);
            chunks.push(self.push(
                ChunkOp::BucketSort { descending, arg },
                ins,
                vec![total],
                dt,
            ));
            grid.push(total);
        }
        debug_assert_eq!(grid.iter().sum::<usize>(), n);
        Ok(Tiled {
            grid: vec![grid],
            chunks,
        })
    }
}
