//! Dense matrix kernels (factorizations, solves) as graph and chunk ops, and the layout of
//! their packed results.
//!
//! A [`DenseOp`] works on the last two axes of its operands, batched over the leading ones; in
//! a chunk each matrix is whole. Ops with several results (Q and R, U, S and Vt, eigenvalues
//! and eigenvectors, sign and log-determinant) produce one *packed* array, each result a box
//! of it (see [`DenseOp::parts`]), so that a result is a plain slice of the packed node and
//! the graph keeps one output per node.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A dense kernel over the last two axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DenseOp {
    /// QR: packed `[Q; R]`. Reduced: Q `(m, k)`, R `(k, n)`, `k = min(m, n)`; complete: Q
    /// `(m, m)`, R `(m, n)`. R's diagonal is made non-negative (a unique factorization for
    /// full-rank inputs, whatever the kernel).
    Qr {
        /// Complete (Q square) rather than reduced.
        complete: bool,
    },
    /// The R factor of a reduced QR alone, `(k, n)`, diagonal non-negative (numpy's
    /// `qr(mode="r")`): Q is never formed, half the work of [`DenseOp::Qr`] for a tall matrix.
    QrR,
    /// SVD: packed `[U; S; Vt]`, singular values descending. Thin: U `(m, k)`, Vt `(k, n)`;
    /// full: U `(m, m)`, Vt `(n, n)`.
    Svd {
        /// Full matrices rather than thin.
        full: bool,
    },
    /// Singular values, descending: `(k,)`.
    SvdVals,
    /// Cholesky factor of a symmetric positive definite matrix (its lower triangle is read):
    /// L, or U = L^T when `upper`.
    Cholesky {
        /// Upper factor.
        upper: bool,
    },
    /// Symmetric eigendecomposition (lower triangle read): packed `[w; V]`, eigenvalues
    /// ascending, eigenvectors as columns of V.
    Eigh,
    /// Eigenvalues of a symmetric matrix, ascending.
    EigvalsH,
    /// `solve(a, b)`: a `(n, n)`, b `(n, k)`; LU with partial pivoting.
    Solve,
    /// Inverse (LU with partial pivoting).
    Inv,
    /// Determinant (LU with partial pivoting): batch shape.
    Det,
    /// `(sign, log|det|)` packed along a last axis of 2.
    Slogdet,
    /// `x` with `t x = b` (`left`) or `x t = b`, `t` triangular: its lower triangle (`lower`)
    /// or upper one, transposed first when `trans`.
    TriSolve {
        /// Lower rather than upper triangle of the first operand.
        lower: bool,
        /// The triangle is transposed.
        trans: bool,
        /// Solves `t x = b` rather than `x t = b`.
        left: bool,
    },
}

/// One result of a packed array: rows `row0..row0 + rows`, columns `0..cols` of the last two
/// axes (a vector result is one row: `rows == 1`, kept as a vector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// First row in the packed matrix.
    pub row0: usize,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// A vector (drop the row axis).
    pub vector: bool,
}

fn mat(row0: usize, rows: usize, cols: usize) -> Part {
    Part {
        row0,
        rows,
        cols,
        vector: false,
    }
}

fn vec_part(row0: usize, cols: usize) -> Part {
    Part {
        row0,
        rows: 1,
        cols,
        vector: true,
    }
}

impl DenseOp {
    /// A short name for errors and stats (numpy's).
    pub fn name(self) -> &'static str {
        match self {
            DenseOp::Qr { .. } | DenseOp::QrR => "qr",
            DenseOp::Svd { .. } => "svd",
            DenseOp::SvdVals => "svdvals",
            DenseOp::Cholesky { .. } => "cholesky",
            DenseOp::Eigh => "eigh",
            DenseOp::EigvalsH => "eigvalsh",
            DenseOp::Solve => "solve",
            DenseOp::Inv => "inv",
            DenseOp::Det => "det",
            DenseOp::Slogdet => "slogdet",
            DenseOp::TriSolve { .. } => "solve_triangular",
        }
    }

    /// Operands: 2 for solves, 1 otherwise.
    pub fn arity(self) -> usize {
        match self {
            DenseOp::Solve | DenseOp::TriSolve { .. } => 2,
            _ => 1,
        }
    }

    /// True when the op needs square matrices.
    fn square(self) -> bool {
        !matches!(
            self,
            DenseOp::Qr { .. } | DenseOp::QrR | DenseOp::Svd { .. } | DenseOp::SvdVals
        )
    }

    /// The result's shape for one matrix `(m, n)` (and, for solves, a right-hand side
    /// `(bm, bn)`); batch axes excluded. For packed ops, the packed matrix.
    fn core_shape(self, m: usize, n: usize, rhs: Option<(usize, usize)>) -> Vec<usize> {
        let k = m.min(n);
        match self {
            DenseOp::Qr { complete } => {
                let (qc, rr) = if complete { (m, m) } else { (k, k) };
                vec![m + rr, qc.max(n)]
            }
            DenseOp::Svd { full } => {
                let (uc, vr) = if full { (m, n) } else { (k, k) };
                vec![m + 1 + vr, uc.max(n)]
            }
            DenseOp::SvdVals => vec![k],
            DenseOp::QrR => vec![k, n],
            DenseOp::Cholesky { .. } | DenseOp::Inv => vec![n, n],
            DenseOp::Eigh => vec![n + 1, n],
            DenseOp::EigvalsH => vec![n],
            DenseOp::Det => vec![],
            DenseOp::Slogdet => vec![2],
            DenseOp::Solve | DenseOp::TriSolve { .. } => {
                let (bm, bn) = rhs.unwrap_or((n, 0));
                vec![bm, bn]
            }
        }
    }

    /// The results inside the packed matrix of one `(m, n)` operand, in numpy's order
    /// (Q, R; U, S, Vt; w, V), or `None` for ops with one result.
    pub fn parts(self, m: usize, n: usize) -> Option<Vec<Part>> {
        let k = m.min(n);
        Some(match self {
            DenseOp::Qr { complete } => {
                let (qc, rr) = if complete { (m, m) } else { (k, k) };
                vec![mat(0, m, qc), mat(m, rr, n)]
            }
            DenseOp::Svd { full } => {
                let (uc, vr) = if full { (m, n) } else { (k, k) };
                vec![mat(0, m, uc), vec_part(m, k), mat(m + 1, vr, n)]
            }
            DenseOp::Eigh => vec![vec_part(0, n), mat(1, n, n)],
            _ => return None,
        })
    }

    /// Checks the operands' shapes and returns the result's (batch axes broadcast for
    /// solves).
    ///
    /// # Errors
    /// Fewer than two axes, a non-square matrix where one is needed, a right-hand side that
    /// does not fit: a `ShapeMismatch`/`InvalidArgument` naming the op and shapes.
    pub fn out_shape(self, shapes: &[&[usize]]) -> Result<Vec<usize>> {
        let name = self.name();
        if shapes.len() != self.arity() {
            return Err(Error::invalid(
                name,
                format!("{} operands (takes {})", shapes.len(), self.arity()),
            ));
        }
        let a = shapes[0];
        if a.len() < 2 {
            return Err(Error::invalid(
                name,
                format!(
                    "{}-dimensional array given; array must be at least two-dimensional \
                     (shape {a:?})",
                    a.len()
                ),
            ));
        }
        let (m, n) = (a[a.len() - 2], a[a.len() - 1]);
        if self.square() && m != n {
            return Err(Error::invalid(
                name,
                format!("last 2 dimensions of the array must be square (shape {a:?})"),
            ));
        }
        let batch = &a[..a.len() - 2];
        if self.arity() == 1 {
            let mut s = batch.to_vec();
            s.extend(self.core_shape(m, n, None));
            return Ok(s);
        }
        let b = shapes[1];
        if b.len() != a.len() || b[..b.len() - 2] != *batch {
            return Err(Error::shape(name, a, b));
        }
        let (bm, bn) = (b[b.len() - 2], b[b.len() - 1]);
        let left = !matches!(self, DenseOp::TriSolve { left: false, .. });
        if (left && bm != n) || (!left && bn != n) {
            return Err(Error::shape(name, a, b));
        }
        let mut s = batch.to_vec();
        s.extend(self.core_shape(m, n, Some((bm, bn))));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_parts_tile_the_packed_matrix() {
        for (m, n) in [(5usize, 3usize), (3, 5), (4, 4), (1, 1), (0, 3), (3, 0)] {
            for op in [
                DenseOp::Qr { complete: false },
                DenseOp::Qr { complete: true },
                DenseOp::Svd { full: false },
                DenseOp::Svd { full: true },
            ] {
                let packed = op.out_shape(&[&[2, m, n]]).unwrap();
                assert_eq!(packed[0], 2);
                let parts = op.parts(m, n).unwrap();
                let mut row = 0;
                for p in &parts {
                    assert_eq!(p.row0, row, "{op:?} {m}x{n}: parts are consecutive rows");
                    assert!(p.cols <= packed[2], "{op:?} {m}x{n}: {p:?} fits {packed:?}");
                    row += p.rows;
                }
                assert_eq!(row, packed[1], "{op:?} {m}x{n}");
            }
        }
        let e = DenseOp::Eigh.out_shape(&[&[3, 4]]).unwrap_err();
        assert!(
            e.to_string().contains("square") && e.to_string().contains("[3, 4]"),
            "{e}"
        );
        let e = DenseOp::Solve.out_shape(&[&[3, 3], &[4, 1]]).unwrap_err();
        assert!(e.to_string().contains("[4, 1]"), "{e}");
        assert_eq!(
            DenseOp::Solve.out_shape(&[&[2, 3, 3], &[2, 3, 5]]).unwrap(),
            vec![2, 3, 5]
        );
        assert!(DenseOp::Det.out_shape(&[&[4]]).is_err());
    }
}
