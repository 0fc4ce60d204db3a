//! tessera-cpu: the CPU backend. Runs chunk tasks on ndarray host arrays; rayon parallelizes
//! inside large chunks while the executor runs independent chunks side by side.

mod block;
pub mod cachedir;
mod elementwise;
mod fused;
mod gather;
mod gemm;
pub mod jit;
mod knn;
pub mod linalg;
mod memory;
mod movement;
mod reduce;
mod search;
mod sort;
mod source;

use tessera_runtime::chunk::{ChunkData, ChunkNode, ChunkOp};
use tessera_runtime::ir::ReduceKind;
use tessera_runtime::{Backend, DeviceInfo, Error, HostArray, Result};

pub use reduce::merge_moments;

/// The CPU backend: one device, or N virtual devices sharing the host (each gets its own
/// budget in scheduled runs, so multi-device placement and transfers run without GPUs).
#[derive(Debug, Clone)]
pub struct CpuBackend {
    devices: usize,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend::new()
    }
}

impl CpuBackend {
    /// A CPU backend using rayon's global pool, one device.
    pub fn new() -> Self {
        CpuBackend { devices: 1 }
    }
    /// A CPU backend exposing `n` virtual devices. `n == 0` is not replaced by 1: such a
    /// backend has no device and every run on it returns the error of
    /// [`CpuBackend::try_with_devices`].
    pub fn with_devices(n: usize) -> Self {
        CpuBackend { devices: n }
    }
    /// A CPU backend exposing `n` virtual devices.
    ///
    /// # Errors
    /// `InvalidArgument` when `n` is 0.
    pub fn try_with_devices(n: usize) -> Result<Self> {
        if n == 0 {
            return Err(no_devices());
        }
        Ok(CpuBackend { devices: n })
    }
}

fn no_devices() -> Error {
    Error::invalid_arg(
        "CpuBackend::with_devices",
        "a CPU backend needs at least 1 device, got 0",
    )
}

/// A row-major array of `shape` from `v` (lengths agree by construction).
pub(crate) fn shaped<T>(shape: &[usize], v: Vec<T>) -> ndarray::ArrayD<T> {
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), v).expect("length matches shape")
}

/// A 1-D array of `v`.
pub(crate) fn col<T>(v: Vec<T>) -> ndarray::ArrayD<T> {
    let n = v.len();
    shaped(&[n], v)
}

fn one(x: HostArray) -> ChunkData {
    vec![x]
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        let n = self.devices;
        (0..n)
            .map(|d| DeviceInfo {
                name: if n == 1 {
                    format!("host CPU ({} threads)", rayon::current_num_threads())
                } else {
                    format!("virtual CPU device {d} of {n}")
                },
                kind: "cpu".into(),
                // Device memory is host RAM: each device may use its share of one half of it
                // (the host tier gets the other half in scheduled runs).
                memory_bytes: tessera_runtime::storage::host_memory() / (2 * n as u64),
                details: vec![("threads".into(), rayon::current_num_threads().to_string())],
            })
            .collect()
    }

    fn run_chunk(&self, node: &ChunkNode, inputs: &[&ChunkData]) -> Result<ChunkData> {
        if self.devices == 0 {
            return Err(no_devices());
        }
        let shape = &node.shape;
        let dt = node.dtype;
        let x = |i: usize| -> &HostArray { &inputs[i][0] };
        Ok(match &node.op {
            ChunkOp::Constant { data, region } => one(data.slice_region(region, None)),
            ChunkOp::External { data, region } => one(data.read(region)?),
            ChunkOp::Write { sink, region } => {
                sink.write(region, x(0))?;
                one(HostArray::zeros(node.dtype, shape))
            }
            ChunkOp::Full { value } => one(source::full(shape, *value, dt)),
            ChunkOp::Arange {
                start,
                step,
                offset,
            } => one(source::arange(shape[0], *offset, *start, *step, dt)),
            ChunkOp::Linspace {
                start,
                step,
                stop,
                offset,
            } => {
                let (a, s, stop) = (*start, *step, *stop);
                // numpy >= 2 floors linspace values for integer dtypes; bool is not one (a
                // value in (0, 1) is True).
                let floor = dt.is_int();
                one(source::ramp(shape[0], *offset, dt, |i| {
                    let v = match stop {
                        Some((last, v)) if i == last => v,
                        _ => a + i as f64 * s,
                    };
                    if floor {
                        v.floor()
                    } else {
                        v
                    }
                }))
            }
            ChunkOp::Eye { k, row0, col0 } => one(source::eye(shape, *k, *row0, *col0, dt)),
            ChunkOp::Random {
                seed,
                stream,
                dist,
                offset,
                full,
            } => one(source::random(
                *seed, *stream, *dist, shape, offset, full, dt,
            )),
            ChunkOp::Unary(op) => one(elementwise::unary(*op, x(0))?),
            ChunkOp::Binary(op) => one(elementwise::binary(*op, x(0), x(1), shape)?),
            ChunkOp::Where => one(elementwise::where_(x(0), x(1), x(2), shape)?),
            ChunkOp::Cast => one(x(0).cast(dt)),
            ChunkOp::ReducePartial { op, axes } => {
                reduce::partial(ReduceKind::Reduce(*op), x(0), axes)
            }
            ChunkOp::ReduceCombine { op, counts } => reduce::combine(*op, inputs, counts)?,
            ChunkOp::ReduceFinal {
                op, ddof, count, ..
            } => one(reduce::finalize(*op, inputs[0], *count, *ddof, shape, dt)),
            ChunkOp::ArgPartial { op, axis, offset } => {
                reduce::arg_partial(*op, x(0), *axis, *offset)
            }
            ChunkOp::ArgCombine { op } => reduce::arg_combine(*op, inputs),
            ChunkOp::ArgFinal { axis } => one(reduce::arg_final(inputs[0], *axis)),
            ChunkOp::Transpose { perm } => one(movement::transpose(x(0), perm)),
            ChunkOp::Reshape => one(x(0).reshape(shape)),
            ChunkOp::BroadcastTo => one(movement::broadcast(x(0), shape)),
            ChunkOp::Slice { region, steps } => one(x(0).slice_region(region, Some(steps))),
            ChunkOp::Assemble { pieces } => {
                let ins: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                one(movement::assemble(&ins, pieces, shape))
            }
            ChunkOp::ReshapeGather {
                in_full,
                in_offsets,
                out_full,
                out_offset,
            } => {
                let ins: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                one(movement::reshape_gather(
                    &ins, in_full, in_offsets, out_full, out_offset, shape,
                ))
            }
            ChunkOp::Fused { ir, params, bound } => {
                let chunks: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                fused::run_task(ir, params, bound, &chunks)?
            }
            ChunkOp::MatMul { accumulate } => {
                let acc = if *accumulate { Some(x(2)) } else { None };
                one(gemm::matmul(x(0), x(1), acc, shape)?)
            }
            ChunkOp::Syrk { accumulate } => {
                let acc = if *accumulate { Some(x(1)) } else { None };
                one(gemm::syrk(x(0), acc)?)
            }
            ChunkOp::Dense(d) => {
                let ins: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                one(linalg::dense(*d, &ins, shape)?)
            }
            ChunkOp::Sort {
                axis,
                descending,
                arg,
            } => one(sort::sort(x(0), *axis, *descending, *arg)),
            ChunkOp::TopKPartial {
                axis,
                k,
                largest,
                offset,
            } => sort::topk_partial(x(0), *axis, *k, *largest, *offset),
            ChunkOp::KnnPartial { k, offset } => knn::knn_partial(x(0), x(1), *k, *offset)?,
            ChunkOp::TopKCombine { axis, k, largest } => {
                sort::topk_combine(inputs, *axis, *k, *largest)?
            }
            ChunkOp::TopKFinal { field } => one(inputs[0][*field].clone()),
            ChunkOp::SearchSortedPartial { right } => {
                one(search::searchsorted(x(0), x(1), *right)?)
            }
            ChunkOp::BinCountPartial { offset, len, total } => one(search::bincount(
                x(0),
                inputs.get(1).map(|d| &d[0]),
                *offset,
                *len,
                *total,
            )?),
            ChunkOp::HistogramPartial { bins } => {
                one(search::histogram(x(0), inputs.get(1).map(|d| &d[0]), bins))
            }
            ChunkOp::PartsSum => {
                let ins: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                one(search::parts_sum(&ins)?)
            }
            ChunkOp::Scan { axis, prod } => {
                let carry = if inputs.len() > 1 { Some(x(1)) } else { None };
                one(gather::scan(x(0), carry, *axis, *prod)?)
            }
            ChunkOp::ScanTotal { axis, prod } => {
                let carry = if inputs.len() > 1 { Some(x(1)) } else { None };
                one(gather::scan_total(x(0), carry, *axis, *prod)?)
            }
            ChunkOp::Take {
                axis,
                positions,
                starts,
            } => {
                let ins: Vec<&HostArray> = inputs.iter().map(|d| &d[0]).collect();
                one(gather::take(&ins, *axis, positions, starts, shape)?)
            }
            ChunkOp::TakeAlong { axis } => one(gather::take_along(x(0), x(1), *axis)?),
            ChunkOp::Compact { count } => one(gather::compact(x(0), x(1), *count)?),
            ChunkOp::BucketCount {
                pivots,
                offset,
                descending,
            } => one(sort::bucket_count(x(0), pivots, *offset, *descending)),
            ChunkOp::Bucketize {
                pivots,
                offset,
                descending,
                arg,
            } => sort::bucketize(x(0), pivots, *offset, *descending, *arg),
            ChunkOp::Field { index } => one(inputs[0]
                .get(*index)
                .cloned()
                .ok_or_else(|| Error::invalid_arg("field", format!("no field {index}")))?),
            ChunkOp::BucketSort { descending, arg } => {
                one(sort::bucket_sort(inputs, *descending, *arg)?)
            }
        })
    }
}

/// Checks that a chunk result has the shape and dtype the tiler planned.
pub fn check_chunk(node: &ChunkNode, out: &ChunkData) -> Result<()> {
    match out.first() {
        Some(a) if a.shape() == node.shape.as_slice() && a.dtype() == node.dtype => Ok(()),
        Some(a) => Err(Error::Backend {
            backend: "cpu".into(),
            msg: format!(
                "{} produced {:?} {} where {:?} {} was planned",
                node.op.name(),
                a.shape(),
                a.dtype(),
                node.shape,
                node.dtype
            ),
        }),
        None => Err(Error::Backend {
            backend: "cpu".into(),
            msg: format!("{} produced no data", node.op.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tessera_runtime::{Axes, DType, MemoryConfig, Session};

    /// Zero devices is refused with a typed error, never run as one device.
    #[test]
    fn zero_devices_is_an_error_not_one_device() {
        let e = CpuBackend::try_with_devices(0).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        assert!(e.to_string().contains("got 0"), "{e}");
        assert_eq!(CpuBackend::try_with_devices(3).unwrap().devices().len(), 3);
        let b = CpuBackend::with_devices(0);
        assert!(b.devices().is_empty());
        let s = Session::new(Arc::new(b));
        let r = s.ones(&[5], DType::F64).sum(Axes::All, false).unwrap();
        let e = r.execute().unwrap_err();
        assert!(e.to_string().contains("at least 1 device"), "{e}");
        // The same through a memory config asking for 0 devices of a real backend.
        let s = Session::new(Arc::new(CpuBackend::with_devices(2)));
        s.set_memory(Some(MemoryConfig {
            devices: Some(0),
            ..MemoryConfig::default()
        }));
        let r = s.ones(&[5], DType::F64).sum(Axes::All, false).unwrap();
        let e = r.execute().unwrap_err();
        assert!(e.to_string().contains("at least 1 device"), "{e}");
        s.set_memory(None);
        assert_eq!(r.item().unwrap(), 5.0);
    }
}
