//! Scans (cumulative sums and products), gathers and row compaction on host chunks.

use crate::sort::{axis_back, axis_last};
use ndarray::{ArrayD, Axis, IxDyn};
use rayon::prelude::*;
use tessera_runtime::{DType, Error, HostArray, Result};

/// Element arithmetic of a scan: numpy's, wrapping for integers.
trait ScanElem: Copy + Send + Sync + 'static {
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
}

macro_rules! scan_int {
    ($($t:ty),*) => {$(
        impl ScanElem for $t {
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
        }
    )*};
}
scan_int!(i32, i64);

macro_rules! scan_float {
    ($($t:ty),*) => {$(
        impl ScanElem for $t {
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
        }
    )*};
}
scan_float!(f32, f64);

/// Runs `$body` with `$a` the array of a numeric host array (`$b` the same-typed second one
/// when given) and `$w` its wrapper; bool is an error naming `$op`.
macro_rules! numeric {
    ($op:expr, $x:expr, |$a:ident, $w:ident| $body:expr) => {
        match $x {
            HostArray::I32($a) => {
                let $w = HostArray::I32;
                $body
            }
            HostArray::I64($a) => {
                let $w = HostArray::I64;
                $body
            }
            HostArray::F32($a) => {
                let $w = HostArray::F32;
                $body
            }
            HostArray::F64($a) => {
                let $w = HostArray::F64;
                $body
            }
            other => return Err(Error::dtype_unsupported($op, other.dtype())),
        }
    };
}

fn peel<'a, T: tessera_runtime::Elem>(op: &str, x: &'a HostArray) -> Result<&'a ArrayD<T>> {
    T::peel(x).ok_or_else(|| Error::dtype_unsupported(op, x.dtype()))
}

/// Running sums (products) of every lane of `x` along `axis`, each lane starting from its
/// element of `carry` (size 1 along `axis`) when given: `acc = acc (+) x[i]`, in order.
pub fn scan(
    x: &HostArray,
    carry: Option<&HostArray>,
    axis: usize,
    prod: bool,
) -> Result<HostArray> {
    fn go<T: ScanElem + tessera_runtime::Elem>(
        a: &ArrayD<T>,
        carry: Option<&ArrayD<T>>,
        axis: usize,
        prod: bool,
    ) -> ArrayD<T> {
        let len = a.shape()[axis];
        if len == 0 || a.is_empty() {
            return a.clone();
        }
        let f: fn(T, T) -> T = if prod { T::mul } else { T::add };
        let (perm, lanes) = axis_last(a, axis);
        let pshape = lanes.shape().to_vec();
        let mut v = lanes.as_slice().expect("standard layout").to_vec();
        let c = carry.map(|c| axis_last(c, axis).1.as_slice().expect("standard").to_vec());
        v.par_chunks_mut(len).enumerate().for_each(|(i, lane)| {
            let mut acc = match &c {
                Some(c) => f(c[i], lane[0]),
                None => lane[0],
            };
            lane[0] = acc;
            for e in &mut lane[1..] {
                acc = f(acc, *e);
                *e = acc;
            }
        });
        axis_back(v, &pshape, &perm)
    }
    numeric!("cumsum", x, |a, w| {
        let c = carry
            .map(|c| peel(if prod { "cumprod" } else { "cumsum" }, c))
            .transpose()?;
        Ok(w(go(a, c, axis, prod)))
    })
}

/// The sum (product) of every lane along `axis`, folded in order, kept as size 1; after the
/// lane's element of `carry` (size 1 along `axis`) when given.
pub fn scan_total(
    x: &HostArray,
    carry: Option<&HostArray>,
    axis: usize,
    prod: bool,
) -> Result<HostArray> {
    fn go<T: ScanElem + tessera_runtime::Elem>(
        a: &ArrayD<T>,
        carry: Option<&ArrayD<T>>,
        axis: usize,
        prod: bool,
    ) -> ArrayD<T> {
        let len = a.shape()[axis];
        let f: fn(T, T) -> T = if prod { T::mul } else { T::add };
        let (perm, lanes) = axis_last(a, axis);
        let mut pshape = lanes.shape().to_vec();
        let flat = lanes.as_slice().expect("standard layout");
        let identity = if prod { T::from_i64(1) } else { T::from_i64(0) };
        let mut v: Vec<T> = if len == 0 {
            vec![identity; flat.len()]
        } else {
            flat.par_chunks(len)
                .map(|lane| lane[1..].iter().fold(lane[0], |acc, &e| f(acc, e)))
                .collect()
        };
        if let Some(c) = carry {
            let c = axis_last(c, axis).1;
            for (t, &c) in v.iter_mut().zip(c.as_slice().expect("standard layout")) {
                *t = f(c, *t);
            }
        }
        *pshape.last_mut().expect("an axis") = 1;
        axis_back(v, &pshape, &perm)
    }
    numeric!("cumsum", x, |a, w| {
        let c = carry.map(|c| peel("cumsum", c)).transpose()?;
        Ok(w(go(a, c, axis, prod)))
    })
}

/// Every value kept exactly by `+` (`-0.0 + x == x` for every float, `-0.0` included).
fn fill(dtype: DType, shape: &[usize]) -> HostArray {
    match dtype {
        DType::F32 => HostArray::F32(ArrayD::from_elem(IxDyn(shape), -0.0)),
        DType::F64 => HostArray::F64(ArrayD::from_elem(IxDyn(shape), -0.0)),
        d => HostArray::zeros(d, shape),
    }
}

/// Gathers along `axis` at global `positions` from the input chunks starting at `starts`
/// (ascending); positions no input holds keep [`fill`]'s identity.
pub fn take(
    inputs: &[&HostArray],
    axis: usize,
    positions: &[i64],
    starts: &[usize],
    shape: &[usize],
) -> Result<HostArray> {
    fn go<T: tessera_runtime::Elem>(
        ins: &[&ArrayD<T>],
        out: &mut ArrayD<T>,
        axis: usize,
        positions: &[i64],
        starts: &[usize],
    ) {
        let ends: Vec<usize> = ins
            .iter()
            .zip(starts)
            .map(|(a, &s)| s + a.shape()[axis])
            .collect();
        let one_d = out.ndim() == 1;
        for (i, &p) in positions.iter().enumerate() {
            let p = p as usize;
            let j = starts.partition_point(|&s| s <= p);
            if j == 0 || p >= ends[j - 1] {
                continue;
            }
            let (src, local) = (ins[j - 1], p - starts[j - 1]);
            if one_d {
                out[[i]] = src[[local]];
            } else {
                out.index_axis_mut(Axis(axis), i)
                    .assign(&src.index_axis(Axis(axis), local));
            }
        }
    }
    let dtype = inputs[0].dtype();
    let mut out = fill(dtype, shape);
    tessera_runtime::on_array!(&mut out, o => {
        let ins = inputs
            .iter()
            .map(|x| {
                x.as_array().ok_or_else(|| Error::UnsupportedDType {
                    op: "take".into(),
                    dtypes: vec![dtype, x.dtype()],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        go(&ins, o, axis, positions, starts);
    });
    Ok(out)
}

/// `take_along_axis` of one chunk: `x` holds `axis` whole; `idx` (int64) has `x`'s shape off
/// `axis`.
pub fn take_along(x: &HostArray, idx: &HostArray, axis: usize) -> Result<HostArray> {
    fn go<T: tessera_runtime::Elem>(
        a: &ArrayD<T>,
        idx: &ArrayD<i64>,
        axis: usize,
    ) -> Result<ArrayD<T>> {
        let len = a.shape()[axis];
        let k = idx.shape()[axis];
        let (perm, xl) = axis_last(a, axis);
        let (_, il) = axis_last(idx, axis);
        let pshape = il.shape().to_vec();
        let xs = xl.as_slice().expect("standard layout");
        let is = il.as_slice().expect("standard layout");
        let mut out = vec![T::default(); is.len()];
        if k > 0 && !is.is_empty() {
            let bad = std::sync::Mutex::new(None);
            out.par_chunks_mut(k).enumerate().for_each(|(lane, o)| {
                let src = &xs[lane * len..(lane + 1) * len];
                for (e, &i) in o.iter_mut().zip(&is[lane * k..(lane + 1) * k]) {
                    let p = if i < 0 { i + len as i64 } else { i };
                    if p < 0 || p >= len as i64 {
                        *bad.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
                        return;
                    }
                    *e = src[p as usize];
                }
            });
            if let Some(i) = bad.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return Err(Error::IndexOutOfBounds {
                    op: "take_along_axis".into(),
                    index: i,
                    axis,
                    len,
                    shape: a.shape().to_vec(),
                });
            }
        }
        Ok(axis_back(out, &pshape, &perm))
    }
    let idx = peel::<i64>("take_along_axis", idx)?;
    Ok(tessera_runtime::with_array!(x, a => go(a, idx, axis)?))
}

/// The rows (axis 0) of `x` where `mask` is true; `count` is the number the stage measured.
pub fn compact(x: &HostArray, mask: &HostArray, count: usize) -> Result<HostArray> {
    let m = peel::<bool>("compact", mask)?;
    let rows: Vec<usize> = m
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| b.then_some(i))
        .collect();
    if rows.len() != count {
        return Err(Error::invalid_arg(
            "compact",
            format!(
                "a mask segment keeps {} rows where the stage before measured {count}: its \
                 value changed between the two runs",
                rows.len()
            ),
        ));
    }
    Ok(tessera_runtime::with_array!(x, a => a.select(Axis(0), &rows)))
}
