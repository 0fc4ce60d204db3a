//! Arrays that live outside Tessera's memory (a numpy buffer read in place, a file), read
//! chunk by chunk: a source node holds one, and each of its chunks is a box copied out of it
//! when a kernel needs it. Nothing copies the whole array, and the graph keeps the source
//! alive (and with it the buffer or file it reads) while a node refers to it.

use crate::array::{HostArray, HostSlice, Region};
use crate::dtype::DType;
use crate::error::Result;
use std::fmt;

/// Array data held outside Tessera, readable box by box from any thread.
pub trait ExternalArray: Send + Sync + fmt::Debug {
    /// Shape of the whole array.
    fn shape(&self) -> &[usize];
    /// Element dtype.
    fn dtype(&self) -> DType;
    /// A copy of the box `region` (one `(start, end)` per axis, within the shape).
    ///
    /// # Errors
    /// A box outside the array; a read that failed (a file gone or damaged).
    fn read(&self, region: &Region) -> Result<HostArray>;
    /// What it is, for messages (e.g. "numpy array of shape [4, 5] float64").
    fn describe(&self) -> String;
    /// The whole array as row-major elements where they are, when they are in memory in that
    /// layout: fused kernels then read them in place (as they read constants) instead of
    /// copying each chunk out first. `None` (the default): only [`ExternalArray::read`].
    fn flat(&self) -> Option<HostSlice<'_>> {
        None
    }
}

/// Where a result is written chunk by chunk (a file being written): each chunk's box as it
/// finishes, from any thread, in any order.
pub trait ChunkSink: Send + Sync + fmt::Debug {
    /// Writes `data`, the box `region` of the whole result.
    ///
    /// # Errors
    /// A failed write (a full disk, an unwritable folder), naming the file and the box.
    fn write(&self, region: &Region, data: &HostArray) -> Result<()>;
    /// What it is, for messages (e.g. "npy file out.npy").
    fn describe(&self) -> String;
}

/// Checks that `region` lies within `shape` (one range per axis, start <= end <= length).
///
/// # Errors
/// `InvalidArgument` naming the box and the shape.
pub fn check_region(what: &str, region: &Region, shape: &[usize]) -> Result<()> {
    let ok = region.len() == shape.len()
        && region
            .iter()
            .zip(shape)
            .all(|(&(s, e), &d)| s <= e && e <= d);
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            what,
            format!("box {region:?} is not within shape {shape:?}"),
        ))
    }
}

/// Rows (along the first axis) per block of a spilled array: blocks of about this many bytes.
const SPILL_BLOCK_BYTES: usize = 16 << 20;

/// A kept result moved out of host memory: blocks of rows written as spill files of a
/// private run folder of its own ([`crate::storage::SpillDir`]: random token, checksums, a
/// block is read back only as the one written), read box by box; the folder goes with the
/// value.
#[derive(Debug)]
pub struct SpilledArray {
    dir: crate::storage::SpillDir,
    shape: Vec<usize>,
    dtype: DType,
    /// Rows of the first axis per block (the whole array for 0-d).
    rows: usize,
}

impl SpilledArray {
    /// Writes `data` to a new run folder under `root` (default: the per-user spill root),
    /// within `capacity` bytes of disk.
    ///
    /// # Errors
    /// `Io` or `OutOfMemory { tier: Disk }` from the writes; nothing is left behind.
    pub fn write(
        data: &HostArray,
        root: Option<&std::path::Path>,
        capacity: Option<u64>,
    ) -> Result<Self> {
        let dir = crate::storage::SpillDir::create(root, capacity)?;
        let shape = data.shape().to_vec();
        let dtype = data.dtype();
        let rows = match shape.split_first() {
            None => 1,
            Some((&n, rest)) => {
                let row = rest.iter().product::<usize>().max(1) * dtype.size();
                (SPILL_BLOCK_BYTES / row).clamp(1, n.max(1))
            }
        };
        let spilled = SpilledArray {
            dir,
            shape,
            dtype,
            rows,
        };
        for b in 0..spilled.blocks() {
            let block = match spilled.block_rows(b) {
                None => data.clone(),
                Some(r) => {
                    let mut region: Region = spilled.shape.iter().map(|&d| (0, d)).collect();
                    region[0] = r;
                    data.slice_region(&region, None)
                }
            };
            spilled.dir.write(Self::id(b)?, &vec![block])?;
        }
        Ok(spilled)
    }

    fn id(b: usize) -> Result<crate::chunk::ChunkId> {
        u32::try_from(b).map(crate::chunk::ChunkId).map_err(|_| {
            crate::error::Error::invalid("spill", format!("block {b} past the block ids"))
        })
    }

    fn blocks(&self) -> usize {
        match self.shape.first() {
            None => 1,
            Some(&n) => n.div_ceil(self.rows).max(1),
        }
    }

    /// The rows of block `b` (`None` for a 0-d array).
    fn block_rows(&self, b: usize) -> Option<(usize, usize)> {
        let n = *self.shape.first()?;
        Some((b * self.rows, ((b + 1) * self.rows).min(n)))
    }

    fn block(&self, b: usize) -> Result<HostArray> {
        let mut shape = self.shape.clone();
        if let Some(r) = self.block_rows(b) {
            shape[0] = r.1 - r.0;
        }
        let mut d = self.dir.read_as(Self::id(b)?, self.dtype, &shape)?;
        Ok(d.swap_remove(0))
    }
}

impl ExternalArray for SpilledArray {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn read(&self, region: &Region) -> Result<HostArray> {
        check_region("kept result", region, &self.shape)?;
        let Some(&(s, e)) = region.first() else {
            return self.block(0);
        };
        let size: Vec<usize> = region.iter().map(|&(a, b)| b - a).collect();
        let mut out = HostArray::zeros(self.dtype, &size);
        if e == s {
            return Ok(out);
        }
        for b in s / self.rows..=(e - 1) / self.rows {
            let (bs, be) = self.block_rows(b).expect("an array of rank >= 1");
            let (lo, hi) = (s.max(bs), e.min(be));
            let mut sub = region.clone();
            sub[0] = (lo - bs, hi - bs);
            let piece = self.block(b)?.slice_region(&sub, None);
            let mut off = vec![0; size.len()];
            off[0] = lo - s;
            out.assign_region(&off, &piece);
        }
        Ok(out)
    }
    fn describe(&self) -> String {
        format!(
            "kept result of shape {:?} {} spilled to {}",
            self.shape,
            self.dtype,
            self.dir.path().display()
        )
    }
}
