//! Linear algebra: matmul, dot, tensordot.

use super::{broadcast_shapes, norm_axis, s, SliceArg, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::linalg::DenseOp;
use crate::op::Op;

impl Tensor {
    /// Batched matrix product with numpy's `matmul` rules (1-D operands promoted and the added
    /// axis removed; batch dims broadcast).
    ///
    /// # Errors
    /// `ShapeMismatch` when the inner dims differ or batch dims do not broadcast; 0-d operands.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (sa, sb) = (self.tn()?.shape.clone(), other.tn()?.shape.clone());
        if sa.is_empty() || sb.is_empty() {
            return Err(Error::invalid(
                "matmul",
                format!("input operand does not have enough dimensions (shapes {sa:?} and {sb:?})"),
            ));
        }
        let dt = DType::promote(self.dtype(), other.dtype());
        let mut a = self.astype(dt)?;
        let mut b = other.astype(dt)?;
        if sa.len() == 1 {
            a = a.expand_dims(0)?;
        }
        if sb.len() == 1 {
            b = b.expand_dims(-1)?;
        }
        let (ash, bsh) = (a.shape().to_vec(), b.shape().to_vec());
        let (m, k1) = (ash[ash.len() - 2], ash[ash.len() - 1]);
        let (k2, nn) = (bsh[bsh.len() - 2], bsh[bsh.len() - 1]);
        if k1 != k2 {
            return Err(Error::shape("matmul", &sa, &sb));
        }
        let batch = broadcast_shapes("matmul", &ash[..ash.len() - 2], &bsh[..bsh.len() - 2])
            .map_err(|_| Error::shape("matmul", &sa, &sb))?;
        let nd = batch.len() + 2;
        let lift = |t: Tensor| -> Result<Tensor> {
            let mut s: Vec<isize> = vec![1; nd - t.ndim()];
            s.extend(t.shape().iter().map(|&d| d as isize));
            t.reshape(&s)
        };
        let (a, b) = (lift(a)?, lift(b)?);
        let mut shape = batch.clone();
        shape.push(m);
        shape.push(nn);
        let mut out = self.record(Op::MatMul, &[&a, &b], shape.clone(), dt)?;
        if sa.len() == 1 || sb.len() == 1 {
            let mut s: Vec<isize> = batch.iter().map(|&d| d as isize).collect();
            if sa.len() != 1 {
                s.push(m as isize);
            }
            if sb.len() != 1 {
                s.push(nn as isize);
            }
            out = out.reshape(&s)?;
        }
        Ok(out)
    }

    /// numpy's `dot`.
    ///
    /// # Errors
    /// As `matmul`/`tensordot`.
    pub fn dot(&self, other: &Tensor) -> Result<Tensor> {
        match (self.ndim(), other.ndim()) {
            (0, _) | (_, 0) => self.mul(other),
            (_, 1) | (1, _) | (_, 2) => self.matmul(other),
            _ => self.tensordot(other, &[-1], &[-2]),
        }
    }

    /// numpy's `tensordot(a, b, axes=(axes_a, axes_b))`.
    ///
    /// # Errors
    /// Axis lists of different lengths, axes out of range, summed dims that differ.
    pub fn tensordot(&self, other: &Tensor, axes_a: &[isize], axes_b: &[isize]) -> Result<Tensor> {
        let (sa, sb) = (self.tn()?.shape.clone(), other.tn()?.shape.clone());
        if axes_a.len() != axes_b.len() {
            return Err(Error::invalid(
                "tensordot",
                "shape-mismatch for sum: axis lists differ in length",
            ));
        }
        let aa = axes_a
            .iter()
            .map(|&x| norm_axis("tensordot", x, sa.len(), &sa))
            .collect::<Result<Vec<_>>>()?;
        let ab = axes_b
            .iter()
            .map(|&x| norm_axis("tensordot", x, sb.len(), &sb))
            .collect::<Result<Vec<_>>>()?;
        if aa.iter().zip(&ab).any(|(&x, &y)| sa[x] != sb[y]) {
            return Err(Error::shape("tensordot", &sa, &sb));
        }
        let free_a: Vec<usize> = (0..sa.len()).filter(|x| !aa.contains(x)).collect();
        let free_b: Vec<usize> = (0..sb.len()).filter(|x| !ab.contains(x)).collect();
        let pa: Vec<isize> = free_a.iter().chain(&aa).map(|&x| x as isize).collect();
        let pb: Vec<isize> = ab.iter().chain(&free_b).map(|&x| x as isize).collect();
        let m: usize = free_a.iter().map(|&x| sa[x]).product();
        let k: usize = aa.iter().map(|&x| sa[x]).product();
        let nn: usize = free_b.iter().map(|&x| sb[x]).product();
        let a2 = self
            .transpose(Some(&pa))?
            .reshape(&[m as isize, k as isize])?;
        let b2 = other
            .transpose(Some(&pb))?
            .reshape(&[k as isize, nn as isize])?;
        let out: Vec<isize> = free_a
            .iter()
            .map(|&x| sa[x] as isize)
            .chain(free_b.iter().map(|&x| sb[x] as isize))
            .collect();
        a2.matmul(&b2)?.reshape(&out)
    }
    /// `tensordot(a, b, axes=n)`: the last `n` axes of `a` with the first `n` of `b`.
    ///
    /// # Errors
    /// As [`Tensor::tensordot`].
    pub fn tensordot_n(&self, other: &Tensor, n: usize) -> Result<Tensor> {
        let (na, nb) = (self.ndim(), other.ndim());
        if n > na || n > nb {
            return Err(Error::invalid(
                "tensordot",
                format!("axes={n} exceeds the dimensions of the operands"),
            ));
        }
        let aa: Vec<isize> = (na - n..na).map(|x| x as isize).collect();
        let ab: Vec<isize> = (0..n).map(|x| x as isize).collect();
        self.tensordot(other, &aa, &ab)
    }
}

/// `lstsq`'s results: numpy's `(x, residuals, rank, s)`.
#[derive(Debug, Clone)]
pub struct Lstsq {
    /// The least-squares solution `(n, k)` (or `(n,)` for a vector `b`).
    pub x: Tensor,
    /// Squared residual norms per column of `b`, `(k,)`; numpy returns them only when the
    /// rank is `n` and `m > n` (the Python front applies that rule once the rank is known).
    pub residuals: Tensor,
    /// Number of singular values above the cutoff (int64, 0-d).
    pub rank: Tensor,
    /// Singular values of `a`, descending.
    pub s: Tensor,
}

impl Tensor {
    /// Records a dense kernel on `self` (and `others`): integer and bool operands are
    /// computed in float64, as numpy's linalg does.
    fn dense(&self, op: DenseOp, others: &[&Tensor]) -> Result<Tensor> {
        let mut dt = self.tn()?.dtype;
        for o in others {
            dt = DType::promote(dt, o.tn()?.dtype);
        }
        if !dt.is_float() {
            dt = DType::F64;
        }
        let ops: Vec<Tensor> = std::iter::once(self)
            .chain(others.iter().copied())
            .map(|t| t.astype(dt))
            .collect::<Result<_>>()?;
        let shapes: Vec<&[usize]> = ops.iter().map(|t| t.shape()).collect();
        let shape = op.out_shape(&shapes)?;
        let refs: Vec<&Tensor> = ops.iter().collect();
        self.record(Op::Dense(op), &refs, shape, dt)
    }

    /// The results packed in `packed`, the output of `op` on `self`.
    fn unpack(&self, packed: &Tensor, op: DenseOp) -> Result<Vec<Tensor>> {
        let sh = self.shape();
        let (m, n) = (sh[sh.len() - 2], sh[sh.len() - 1]);
        let parts = op.parts(m, n).expect("a packed op");
        let r = |a: usize, len: usize| s(Some(a as isize), Some((a + len) as isize), 1);
        parts
            .iter()
            .map(|p| {
                let rows = if p.vector {
                    SliceArg::Index(p.row0 as isize)
                } else {
                    r(p.row0, p.rows)
                };
                packed.slice(&[SliceArg::Ellipsis, rows, r(0, p.cols)])
            })
            .collect()
    }

    /// numpy's `linalg.qr`: `(Q, R)`, reduced (`complete = false`: Q `(.., m, k)`, R `(.., k,
    /// n)`) or complete (Q `(.., m, m)`, R `(.., m, n)`), with R's diagonal non-negative.
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn qr(&self, complete: bool) -> Result<(Tensor, Tensor)> {
        let op = DenseOp::Qr { complete };
        let p = self.dense(op, &[])?;
        let mut v = self.unpack(&p, op)?;
        let r = v.pop().expect("R");
        Ok((v.pop().expect("Q"), r))
    }

    /// numpy's `linalg.qr(mode="r")`: R alone (`(.., k, n)`, diagonal non-negative), Q never
    /// formed (half the work of [`Tensor::qr`] for a tall matrix; TSQR keeps only R factors).
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn qr_r(&self) -> Result<Tensor> {
        self.dense(DenseOp::QrR, &[])
    }

    /// numpy's `linalg.svd`: `(U, S, Vh)`, singular values descending; thin or full.
    ///
    /// # Errors
    /// Fewer than two axes; at run time `LinAlg` for non-finite input.
    pub fn svd(&self, full_matrices: bool) -> Result<(Tensor, Tensor, Tensor)> {
        // A wide matrix through its transpose, which is tall (and so factored by TSQR when its
        // columns, the transpose's rows, span several chunks): A^T = U' S V'^T gives
        // A = V' S U'^T.
        let sh = self.tn()?.shape.clone();
        if sh.len() == 2 && sh[0] < sh[1] {
            let (u, s_, vh) = self.matrix_transpose()?.svd(full_matrices)?;
            return Ok((vh.matrix_transpose()?, s_, u.matrix_transpose()?));
        }
        let op = DenseOp::Svd {
            full: full_matrices,
        };
        let p = self.dense(op, &[])?;
        let mut v = self.unpack(&p, op)?.into_iter();
        let (u, s_, vh) = (v.next(), v.next(), v.next());
        Ok((u.expect("U"), s_.expect("S"), vh.expect("Vh")))
    }

    /// Singular values, descending (`linalg.svdvals`).
    ///
    /// # Errors
    /// As [`Tensor::svd`].
    pub fn svdvals(&self) -> Result<Tensor> {
        let sh = self.tn()?.shape.clone();
        if sh.len() == 2 && sh[0] < sh[1] {
            return self.matrix_transpose()?.svdvals();
        }
        self.dense(DenseOp::SvdVals, &[])
    }

    /// Cholesky factor (`linalg.cholesky`): lower, or upper with `upper`.
    ///
    /// # Errors
    /// A non-square matrix; at run time `LinAlg` when not positive definite.
    pub fn cholesky(&self, upper: bool) -> Result<Tensor> {
        self.dense(DenseOp::Cholesky { upper }, &[])
    }

    /// Symmetric eigendecomposition (`linalg.eigh`): `(eigenvalues ascending, eigenvectors
    /// as columns)`; the lower triangle is read.
    ///
    /// # Errors
    /// A non-square matrix; at run time `LinAlg` for non-finite input.
    pub fn eigh(&self) -> Result<(Tensor, Tensor)> {
        let p = self.dense(DenseOp::Eigh, &[])?;
        let mut v = self.unpack(&p, DenseOp::Eigh)?;
        let vecs = v.pop().expect("V");
        Ok((v.pop().expect("w"), vecs))
    }

    /// Eigenvalues of a symmetric matrix, ascending (`linalg.eigvalsh`).
    ///
    /// # Errors
    /// As [`Tensor::eigh`].
    pub fn eigvalsh(&self) -> Result<Tensor> {
        self.dense(DenseOp::EigvalsH, &[])
    }

    /// `linalg.solve(self, b)`: `b` a matrix `(.., n, k)` or, as the Array API says, a vector
    /// `(n,)` when it is 1-D; batch axes broadcast.
    ///
    /// # Errors
    /// Shapes that do not fit; at run time `LinAlg` for a singular matrix.
    pub fn solve(&self, b: &Tensor) -> Result<Tensor> {
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        if sa.len() < 2 {
            return Err(Error::invalid(
                "solve",
                format!("a must be at least two-dimensional (shapes {sa:?} and {sb:?})"),
            ));
        }
        let vector = sb.len() == 1;
        let bm = if vector {
            b.expand_dims(-1)?
        } else {
            b.clone()
        };
        if bm.ndim() < 2 || bm.shape()[bm.ndim() - 2] != sa[sa.len() - 1] {
            return Err(Error::shape("solve", &sa, &sb));
        }
        let batch = broadcast_shapes("solve", &sa[..sa.len() - 2], &bm.shape()[..bm.ndim() - 2])
            .map_err(|_| Error::shape("solve", &sa, &sb))?;
        let lift = |t: &Tensor| -> Result<Tensor> {
            let sh = t.shape();
            let mut s: Vec<usize> = batch.clone();
            s.extend(&sh[sh.len() - 2..]);
            t.broadcast_to(&s)
        };
        let x = lift(self)?.dense(DenseOp::Solve, &[&lift(&bm)?])?;
        if vector {
            x.squeeze(Some(&[-1]))
        } else {
            Ok(x)
        }
    }

    /// `x` with `t x = b` (or `x t = b` when `!left`), `t` the lower (or upper) triangle of
    /// `self`, transposed first when `trans` (scipy's `solve_triangular`).
    ///
    /// # Errors
    /// Shapes that do not fit.
    pub fn solve_triangular(
        &self,
        b: &Tensor,
        lower: bool,
        trans: bool,
        left: bool,
    ) -> Result<Tensor> {
        self.dense(DenseOp::TriSolve { lower, trans, left }, &[b])
    }

    /// Inverse (`linalg.inv`).
    ///
    /// # Errors
    /// A non-square matrix; at run time `LinAlg` for a singular one.
    pub fn inv(&self) -> Result<Tensor> {
        self.dense(DenseOp::Inv, &[])
    }

    /// Determinant (`linalg.det`).
    ///
    /// # Errors
    /// A non-square matrix.
    pub fn det(&self) -> Result<Tensor> {
        self.dense(DenseOp::Det, &[])
    }

    /// `(sign, log|det|)` (`linalg.slogdet`).
    ///
    /// # Errors
    /// A non-square matrix.
    pub fn slogdet(&self) -> Result<(Tensor, Tensor)> {
        let p = self.dense(DenseOp::Slogdet, &[])?;
        let at = |i| p.slice(&[SliceArg::Ellipsis, SliceArg::Index(i)]);
        Ok((at(0)?, at(1)?))
    }

    /// The cutoff numpy and the Array API use for small singular values: `rtol * max(s)`
    /// with `rtol` by default `max(m, n) * eps`.
    fn cutoff(&self, s: &Tensor, rtol: Option<f64>) -> Result<Tensor> {
        let sh = self.shape();
        let (m, n) = (sh[sh.len() - 2], sh[sh.len() - 1]);
        let eps = if s.dtype() == DType::F32 {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        let rtol = rtol.unwrap_or(m.max(n) as f64 * eps);
        s.max(-1, true)?.mul(rtol)
    }

    /// The thin SVD `(U, s, Vh)` with which singular values are above `rtol * max(s)` and
    /// their reciprocals (0 at or below the cutoff): what `pinv` and `lstsq` share.
    fn svd_cut(&self, rtol: Option<f64>) -> Result<(Tensor, Tensor, Tensor, Tensor, Tensor)> {
        let (u, sv, vh) = self.svd(false)?;
        let cut = self.cutoff(&sv, rtol)?;
        let keep = sv.gt(&cut)?;
        let inv = keep.where_(&sv.reciprocal()?, 0.0)?;
        Ok((u, sv, vh, keep, inv))
    }

    /// Moore-Penrose pseudo-inverse (`linalg.pinv`) through the SVD; singular values at or
    /// below `rtol * max(s)` are treated as zero.
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn pinv(&self, rtol: Option<f64>) -> Result<Tensor> {
        let (u, _, vh, _, inv) = self.svd_cut(rtol)?;
        // V diag(1/s) U^T.
        let scaled = vh.matrix_transpose()?.mul(&inv.expand_dims(-2)?)?;
        scaled.matmul(&u.matrix_transpose()?)
    }

    /// Number of singular values above `rtol * max(s)` (`linalg.matrix_rank`), int64.
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn matrix_rank(&self, rtol: Option<f64>) -> Result<Tensor> {
        let sv = self.svdvals()?;
        let cut = self.cutoff(&sv, rtol)?;
        sv.gt(&cut)?.astype(DType::I64)?.sum(-1, false)
    }

    /// Least squares through the SVD (`linalg.lstsq`); `rcond` as numpy's (default
    /// `max(m, n) * eps`). A tall matrix cut into row chunks goes through TSQR, so `a` never
    /// has to be one chunk.
    ///
    /// # Errors
    /// Shapes that do not fit (a 2-D `a`, `b` with as many rows).
    pub fn lstsq(&self, b: &Tensor, rcond: Option<f64>) -> Result<Lstsq> {
        let (sa, sb) = (self.shape().to_vec(), b.shape().to_vec());
        if sa.len() != 2 || sb.is_empty() || sb.len() > 2 || sb[0] != sa[0] {
            return Err(Error::shape("lstsq", &sa, &sb));
        }
        let vector = sb.len() == 1;
        let bm = if vector {
            b.expand_dims(-1)?
        } else {
            b.clone()
        };
        // x = V diag(1/s) (U^T b) over the singular values above the cutoff: one SVD (TSQR
        // for a tall matrix in row chunks) serves x, the rank and s, and only U^T b (k x nrhs)
        // is formed, never the n x m pseudo-inverse.
        let (u, sv, vh, keep, inv) = self.svd_cut(rcond)?;
        let dt = sv.dtype();
        let utb = u.matrix_transpose()?.matmul(&bm.astype(dt)?)?;
        let x = vh
            .matrix_transpose()?
            .matmul(&utb.mul(&inv.expand_dims(-1)?)?)?;
        let r = self.astype(dt)?.matmul(&x)?.sub(&bm)?;
        let residuals = r.mul(&r)?.sum(0, false)?;
        let s_ = sv;
        let rank = keep.astype(DType::I64)?.sum(-1, false)?;
        let x = if vector { x.squeeze(Some(&[-1]))? } else { x };
        Ok(Lstsq {
            x,
            residuals,
            rank,
            s: s_,
        })
    }

    /// `self` to the integer power `n` (`linalg.matrix_power`): repeated squaring; `n < 0`
    /// inverts first.
    ///
    /// # Errors
    /// A non-square matrix.
    pub fn matrix_power(&self, n: i64) -> Result<Tensor> {
        let sh = self.shape().to_vec();
        if sh.len() < 2 || sh[sh.len() - 1] != sh[sh.len() - 2] {
            return Err(Error::invalid(
                "matrix_power",
                format!("last 2 dimensions of the array must be square (shape {sh:?})"),
            ));
        }
        if n == 0 {
            let k = sh[sh.len() - 1];
            let eye = self.session().eye(k, None, 0, self.dtype());
            return eye.broadcast_to(&sh);
        }
        let mut base = if n < 0 { self.inv()? } else { self.clone() };
        let mut e = n.unsigned_abs();
        let mut acc: Option<Tensor> = None;
        while e > 0 {
            if e & 1 == 1 {
                acc = Some(match acc {
                    None => base.clone(),
                    Some(a) => a.matmul(&base)?,
                });
            }
            e >>= 1;
            if e > 0 {
                base = base.matmul(&base)?;
            }
        }
        Ok(acc.expect("n != 0"))
    }

    /// The `offset`-th diagonal of the last two axes (`linalg.diagonal`, numpy's
    /// `diagonal(axis1=-2, axis2=-1)`), a strided view of the flattened matrices.
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn diagonal(&self, offset: i64) -> Result<Tensor> {
        let sh = self.shape().to_vec();
        let nd = sh.len();
        if nd < 2 {
            return Err(Error::invalid(
                "diagonal",
                format!("diag requires an array of at least two dimensions (shape {sh:?})"),
            ));
        }
        let (m, n) = (sh[nd - 2] as i64, sh[nd - 1] as i64);
        let (r0, c0) = if offset >= 0 {
            (0, offset)
        } else {
            (-offset, 0)
        };
        let len = (m - r0).min(n - c0).max(0);
        let mut flat: Vec<isize> = sh[..nd - 2].iter().map(|&d| d as isize).collect();
        flat.push((m * n) as isize);
        let mut out: Vec<isize> = sh[..nd - 2].iter().map(|&d| d as isize).collect();
        out.push(len as isize);
        if len == 0 {
            return self
                .reshape(&flat)?
                .slice(&[SliceArg::Ellipsis, s(Some(0), Some(0), 1)]);
        }
        let start = r0 * n + c0;
        let stop = start + (len - 1) * (n + 1) + 1;
        self.reshape(&flat)?.slice(&[
            SliceArg::Ellipsis,
            s(Some(start as isize), Some(stop as isize), (n + 1) as isize),
        ])
    }

    /// Sum of the `offset`-th diagonal (`linalg.trace`).
    ///
    /// # Errors
    /// Fewer than two axes.
    pub fn trace(&self, offset: i64) -> Result<Tensor> {
        self.diagonal(offset)?.sum(-1, false)
    }
}
