//! Arrays that live outside Tessera's memory (a numpy buffer read in place, a file), read
//! chunk by chunk: a source node holds one, and each of its chunks is a box copied out of it
//! when a kernel needs it. Nothing copies the whole array, and the graph keeps the source
//! alive (and with it the buffer or file it reads) while a node refers to it.

use crate::array::{HostArray, Region};
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
