//! Linear algebra: matmul, dot, tensordot.

use super::{broadcast_shapes, norm_axis, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
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
