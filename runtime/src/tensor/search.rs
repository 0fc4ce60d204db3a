//! Searching and counting: `searchsorted`, `bincount`, `histogram` (numpy's names and rules),
//! and `partition`/`argpartition` through the stable sort. `bincount` and `histogram` with a
//! range taken from the data run a small stage first (the data's min and max), then record a
//! node whose length is now known.

use super::{norm_axis, Axes, Tensor};
use crate::array::HostArray;
use crate::dtype::{DType, F64};
use crate::error::{Error, Result};
use crate::op::{HistBins, Op};

/// The first element of a one-element result as f64 (NaN stays NaN).
fn first_f64(h: &HostArray) -> f64 {
    h.to_f64().iter().next().copied().unwrap_or(f64::NAN)
}

/// numpy's `linspace(first, last, n + 1)` computed in f32 (`single`) or f64: `i * step +
/// first`, the last element exactly `last` (`i / n * delta` when the step underflows to 0).
fn linspace(first: f64, last: f64, n: usize, single: bool) -> Vec<f64> {
    if single {
        let (s, e) = (first as f32, last as f32);
        let delta = e - s;
        let step = delta / n as f32;
        let mut y: Vec<f64> = (0..=n)
            .map(|i| {
                let v = if step == 0.0 {
                    (i as f32 / n as f32) * delta
                } else {
                    i as f32 * step
                };
                (v + s) as f64
            })
            .collect();
        y[n] = e as f64;
        y
    } else {
        let delta = last - first;
        let step = delta / n as f64;
        let mut y: Vec<f64> = (0..=n)
            .map(|i| {
                let v = if step == 0.0 {
                    (i as f64 / n as f64) * delta
                } else {
                    i as f64 * step
                };
                v + first
            })
            .collect();
        y[n] = last;
        y
    }
}

impl Tensor {
    /// numpy's `searchsorted`: for every element of `v` (any shape), its insertion position in
    /// `self`, a sorted 1-D array: the number of elements before it (`right`: before or equal
    /// to it) in numpy's sort order, NaN after every number. Operands are compared in their
    /// promoted dtype. A chunked `self` is searched chunk by chunk and the positions summed,
    /// so it never has to be one chunk. The result is int64 of `v`'s shape; `self` unsorted
    /// gives unspecified positions (as numpy).
    ///
    /// # Errors
    /// `self` not 1-D; operands from different sessions; deferred errors.
    pub fn searchsorted(&self, v: &Tensor, right: bool) -> Result<Tensor> {
        let a = self.tn()?.clone();
        let vn = v.tn()?.clone();
        if a.shape.len() != 1 {
            return Err(Error::invalid(
                "searchsorted",
                format!(
                    "the sorted array must be 1-D, got shape {:?} (values shape {:?})",
                    a.shape, vn.shape
                ),
            ));
        }
        let dt = DType::promote(a.dtype, vn.dtype);
        let (aa, vv) = (self.astype(dt)?, v.astype(dt)?);
        self.record(
            Op::SearchSorted { right },
            &[&aa, &vv],
            vn.shape.clone(),
            DType::I64,
        )
    }

    /// Executes the min and max of `self` in one run (the first stage of an op whose length
    /// depends on the data).
    fn min_max(&self) -> Result<(HostArray, HostArray)> {
        let (mn, mx) = (self.min(Axes::All, false)?, self.max(Axes::All, false)?);
        let mut r = self.sess.execute_many(&[&mn, &mx])?;
        let mx = r.pop().expect("two results");
        let mn = r.pop().expect("two results");
        Ok((mn, mx))
    }

    /// numpy's `bincount`: the int64 number of occurrences of each value `0..len` in `self`, a
    /// 1-D array of non-negative integers (bool counts as 0/1), with `len = max(self) + 1`, at
    /// least `minlength`; with `weights` (same length) the float64 sums of the weights instead.
    ///
    /// The length depends on the data: the min and max are executed first (one run), then the
    /// counts are recorded lazily; each chunk's counts are summed up a tree, and the result is
    /// cut into chunks by the session's budget.
    ///
    /// # Errors
    /// `UnsupportedDType` for float `self`; `InvalidArgument` for a negative value or `self`
    /// not 1-D; `ShapeMismatch` for weights of another shape; errors of the first stage.
    pub fn bincount(&self, weights: Option<&Tensor>, minlength: usize) -> Result<Tensor> {
        let x = self.tn()?.clone();
        if x.shape.len() != 1 {
            return Err(Error::invalid(
                "bincount",
                format!("the input must be 1-D, got shape {:?}", x.shape),
            ));
        }
        if x.dtype.is_float() {
            return Err(Error::dtype("bincount", &[x.dtype]));
        }
        let w = match weights {
            Some(w) => {
                let wn = w.tn()?;
                if wn.shape != x.shape {
                    return Err(Error::ShapeMismatch {
                        op: "bincount (weights)".into(),
                        lhs: x.shape.clone(),
                        rhs: wn.shape.clone(),
                    });
                }
                self.same_session(w, "bincount")?;
                Some(w.astype(DType::F64)?)
            }
            None => None,
        };
        // Bool counts as 0/1; int32 (not int64) keeps the min/max stage runnable on backends
        // without 64-bit integer arithmetic (wgpu).
        let xi = self.astype(if x.dtype == DType::Bool {
            DType::I32
        } else {
            x.dtype
        })?;
        let len = if x.shape[0] == 0 {
            minlength
        } else {
            let (mn, mx) = xi.min_max()?;
            let int = |h: HostArray| {
                h.cast(DType::I64)
                    .as_array::<i64>()
                    .and_then(|a| a.iter().next().copied())
                    .unwrap_or(0)
            };
            let (mn, mx) = (int(mn), int(mx));
            if mn < 0 {
                return Err(Error::invalid(
                    "bincount",
                    format!(
                        "'list' argument must have no negative elements (found {mn} in shape {:?})",
                        x.shape
                    ),
                ));
            }
            usize::try_from(mx)
                .ok()
                .and_then(|m| m.checked_add(1))
                .ok_or_else(|| Error::invalid("bincount", format!("maximum {mx} too large")))?
                .max(minlength)
        };
        let dtype = if w.is_some() { DType::F64 } else { DType::I64 };
        let mut ins = vec![&xi];
        ins.extend(w.as_ref());
        self.record(Op::BinCount { len }, &ins, vec![len], dtype)
    }

    /// numpy's `histogram` with `bins` equal bins: (counts, edges). The range is `range`, or
    /// the data's min and max (executed first; an empty array gives `(0, 1)`, equal ends are
    /// widened by 0.5). Edges are numpy's `linspace` in the bin dtype (float32 for float32
    /// data, else float64), and an element's bin is numpy's: `(x - first) / (last - first) *
    /// bins` corrected against the edges, the last bin including its right edge; elements
    /// outside the range (and NaN) count nowhere. Counts are int64; with `weights` (same
    /// shape) the sums of the weights, in the weights' dtype; `density` divides by the total
    /// and the bin widths (float64).
    ///
    /// # Errors
    /// `InvalidArgument` for `bins == 0`, a reversed or non-finite range, an autodetected
    /// range that is not finite (NaN or infinity in the data), bins too narrow for the dtype;
    /// `ShapeMismatch` for weights of another shape.
    pub fn histogram(
        &self,
        bins: usize,
        range: Option<(f64, f64)>,
        weights: Option<&Tensor>,
        density: bool,
    ) -> Result<(Tensor, Tensor)> {
        let x = self.hist_data()?;
        let n = x.tn()?.clone();
        if bins == 0 {
            return Err(Error::invalid(
                "histogram",
                "`bins` must be positive, when an integer",
            ));
        }
        let single = n.dtype == DType::F32;
        // numpy's dtypes: a range from the data is float32 numbers for float32 data, so the
        // edges and the whole index arithmetic run in float32; a range given as numbers (or
        // the default (0, 1) of empty data) makes the edges float64 rounded to float32 and the
        // division float64.
        let (first, last, from_data) = match range {
            Some((lo, hi)) => {
                if lo > hi {
                    return Err(Error::invalid(
                        "histogram",
                        format!("max must be larger than min in range parameter ({lo}, {hi})"),
                    ));
                }
                if !(lo.is_finite() && hi.is_finite()) {
                    return Err(Error::invalid(
                        "histogram",
                        format!("supplied range of [{lo}, {hi}] is not finite"),
                    ));
                }
                (lo, hi, false)
            }
            None if n.shape.iter().product::<usize>() == 0 => (0.0, 1.0, false),
            None => {
                let (mn, mx) = x.min_max()?;
                let (lo, hi) = (first_f64(&mn), first_f64(&mx));
                if !(lo.is_finite() && hi.is_finite()) {
                    return Err(Error::invalid(
                        "histogram",
                        format!("autodetected range of [{lo}, {hi}] is not finite"),
                    ));
                }
                (lo, hi, true)
            }
        };
        let (first, last) = if first == last {
            if single && from_data {
                ((first as f32 - 0.5) as f64, (last as f32 + 0.5) as f64)
            } else {
                (first - 0.5, last + 0.5)
            }
        } else {
            (first, last)
        };
        let mut edges = linspace(first, last, bins, single && from_data);
        if single {
            edges.iter_mut().for_each(|e| *e = *e as f32 as f64);
        }
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "histogram",
                format!(
                    "Too many bins for data range. Cannot create {bins} finite-sized bins \
                     in [{first}, {last}]"
                ),
            ));
        }
        let hb = HistBins {
            edges: edges.iter().map(|&e| F64(e)).collect(),
            uniform: Some((F64(first), F64(last))),
            single,
            wide_div: single && !from_data,
        };
        let edge_t = if single {
            self.sess
                .from_vec(edges.iter().map(|&e| e as f32).collect(), &[bins + 1])?
        } else {
            self.sess.from_vec(edges, &[bins + 1])?
        };
        let hist = x.hist_record(hb, weights)?;
        Ok((Self::hist_density(hist, &edge_t, density)?, edge_t))
    }

    /// numpy's `histogram` with explicit bin edges (1-D, non-decreasing; executed now): an
    /// element `x` counts in bin `i` when `edges[i] <= x < edges[i + 1]`, the last bin also
    /// holding `x == edges[n]`; comparisons in the promoted dtype of data and edges. Returns
    /// (counts, the edges given); counts and `density` as [`Tensor::histogram`].
    ///
    /// # Errors
    /// `InvalidArgument` for edges not 1-D, fewer than 2 or decreasing; `ShapeMismatch` for
    /// weights of another shape.
    pub fn histogram_edges(
        &self,
        edges: &Tensor,
        weights: Option<&Tensor>,
        density: bool,
    ) -> Result<(Tensor, Tensor)> {
        let e = edges.tn()?.clone();
        if e.shape.len() != 1 {
            return Err(Error::invalid(
                "histogram",
                format!("`bins` must be 1d, when an array (got shape {:?})", e.shape),
            ));
        }
        if e.shape[0] < 2 {
            return Err(Error::invalid(
                "histogram",
                format!("`bins` needs at least 2 edges, got {}", e.shape[0]),
            ));
        }
        let x = self.hist_data()?;
        let dt = DType::promote(x.dtype(), e.dtype);
        let ev: Vec<f64> = edges.execute()?.cast(dt).to_f64().iter().copied().collect();
        if ev
            .windows(2)
            .any(|w| w[0] > w[1] || w[0].is_nan() || w[1].is_nan())
        {
            return Err(Error::invalid(
                "histogram",
                "`bins` must increase monotonically, when an array",
            ));
        }
        let hb = HistBins {
            edges: ev.iter().map(|&v| F64(v)).collect(),
            uniform: None,
            single: dt == DType::F32,
            wide_div: false,
        };
        let hist = x.astype(dt)?.hist_record(hb, weights)?;
        Ok((Self::hist_density(hist, edges, density)?, edges.clone()))
    }

    /// The data of a histogram: bool counted as integers (numpy's uint8 conversion; int32
    /// keeps the min/max stage runnable without 64-bit integer arithmetic).
    fn hist_data(&self) -> Result<Tensor> {
        if self.tn()?.dtype == DType::Bool {
            self.astype(DType::I32)
        } else {
            Ok(self.clone())
        }
    }

    /// Records the histogram node (weights checked and cast), counts in numpy's dtype.
    fn hist_record(&self, bins: HistBins, weights: Option<&Tensor>) -> Result<Tensor> {
        let n = bins.edges.len() - 1;
        let Some(w) = weights else {
            return self.record(Op::Histogram { bins }, &[self], vec![n], DType::I64);
        };
        let (xs, wn) = (self.shape().to_vec(), w.tn()?.clone());
        if wn.shape != xs {
            return Err(Error::ShapeMismatch {
                op: "histogram (weights should have the same shape as a)".into(),
                lhs: xs,
                rhs: wn.shape,
            });
        }
        let wf = w.astype(DType::F64)?;
        let sums = self.record(Op::Histogram { bins }, &[self, &wf], vec![n], DType::F64)?;
        // numpy accumulates in the weights' dtype; for bool weights its `+=` is a logical or.
        match wn.dtype {
            DType::Bool => sums.ne(0.0),
            d => sums.astype(d),
        }
    }

    /// `hist / diff(edges) / hist.sum()` in float64 when `density`, else `hist`.
    fn hist_density(hist: Tensor, edges: &Tensor, density: bool) -> Result<Tensor> {
        if !density {
            return Ok(hist);
        }
        let db = edges.diff(1, 0, None, None)?.astype(DType::F64)?;
        // Summed in f64 (exact for counts below 2^53): no int64 arithmetic, which some
        // backends (wgpu) lack.
        let h = hist.astype(DType::F64)?;
        let total = h.sum(Axes::All, false)?;
        h.div(&db)?.div(&total)
    }

    fn partition_op(&self, name: &str, kth: &[isize], axis: isize, arg: bool) -> Result<Tensor> {
        let n = self.tn()?.clone();
        if n.shape.is_empty() {
            return Err(Error::invalid(
                name,
                "a 0-d array has no axis to partition along (shape [])",
            ));
        }
        let ax = norm_axis(name, axis, n.shape.len(), &n.shape)?;
        let len = n.shape[ax] as isize;
        if let Some(k) = kth.iter().find(|&&k| k < -len || k >= len) {
            return Err(Error::invalid(
                name,
                format!(
                    "kth(={k}) out of bounds ({len}) for axis {axis} of shape {:?}",
                    n.shape
                ),
            ));
        }
        if arg {
            self.argsort(ax as isize, false)
        } else {
            self.sort(ax as isize, false)
        }
    }

    /// numpy's `partition`: every `kth` element (negative counts from the end) where the sort
    /// puts it, smaller ones before, larger after. This returns the stable sort along `axis`,
    /// which satisfies those invariants for every `kth` at once.
    ///
    /// # Errors
    /// A 0-d tensor; an axis out of range; a `kth` outside `-len..len`.
    pub fn partition(&self, kth: &[isize], axis: isize) -> Result<Tensor> {
        self.partition_op("partition", kth, axis, false)
    }

    /// numpy's `argpartition`: int64 positions that partition `self` (the stable argsort).
    ///
    /// # Errors
    /// As [`Tensor::partition`].
    pub fn argpartition(&self, kth: &[isize], axis: isize) -> Result<Tensor> {
        self.partition_op("argpartition", kth, axis, true)
    }
}
