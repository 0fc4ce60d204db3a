//! Factorizations and solves (`qr`, `svd`, `eigh`, `cholesky`, `solve`, `inv`, `det`, ...),
//! checked by their defining properties in f64 (orthonormal factors, triangular factors,
//! reconstruction) and against independent f64 references written here: cyclic Jacobi for
//! symmetric eigenvalues (and singular values through `A^T A`), Gaussian elimination with
//! partial pivoting for solves, inverses and determinants. Tolerances scale with the dtype's
//! epsilon, the matrix size and its magnitude; inputs are fresh random matrices.

// Index loops read clearer than zipped iterators over several parallel arrays here.
#![allow(clippy::needless_range_loop)]

use super::{values, Cx, Dom};
use ndarray::{s, Array2, ArrayD, Axis, Dimension, Ix2, IxDyn};
use tessera::{DType, Error, Result, Tensor};

use DType::{F32, F64};

fn eps(dt: DType) -> f64 {
    if dt == F32 {
        f32::EPSILON as f64
    } else {
        f64::EPSILON
    }
}

/// Allowed error for a factorization of an `n`-sized problem with entries up to `scale`.
fn tol(dt: DType, n: usize, scale: f64) -> f64 {
    200.0 * eps(dt) * (n.max(1) as f64) * scale.max(1.0)
}

fn get(t: &Tensor) -> Result<ArrayD<f64>> {
    Ok(values(&t.execute()?))
}

/// The matrices of a batched array `(.., m, n)`.
fn mats(a: &ArrayD<f64>) -> Vec<Array2<f64>> {
    let nd = a.ndim();
    let (m, n) = (a.shape()[nd - 2], a.shape()[nd - 1]);
    let b: usize = a.shape()[..nd - 2].iter().product();
    let flat = a
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(&[b, m, n]))
        .expect("reshape");
    flat.axis_iter(Axis(0))
        .map(|x| x.into_dimensionality::<Ix2>().expect("2-D").to_owned())
        .collect()
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

fn close(what: &str, got: &Array2<f64>, want: &Array2<f64>, tol: f64) {
    let d = max_diff(got, want);
    assert!(
        d <= tol,
        "{what}: off by {d:e} (tolerance {tol:e})\n got {got:?}\n want {want:?}"
    );
}

fn eye(n: usize) -> Array2<f64> {
    Array2::eye(n)
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (f64), ascending.
fn jacobi_eigvals(a: &Array2<f64>) -> Vec<f64> {
    let n = a.nrows();
    let mut a = a.clone();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]] * a[[i, j]])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[[p, q]].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * a[[p, q]]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut w: Vec<f64> = (0..n).map(|i| a[[i, i]]).collect();
    w.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    w
}

/// Gaussian elimination with partial pivoting: `(x = a^-1 b, det a)`, `None` when singular.
fn ge(a: &Array2<f64>, b: &Array2<f64>) -> (Option<Array2<f64>>, f64) {
    let n = a.nrows();
    let (mut a, mut b) = (a.clone(), b.clone());
    let mut det = 1.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[[i, c]].abs().partial_cmp(&a[[j, c]].abs()).unwrap())
            .unwrap();
        if a[[p, c]] == 0.0 {
            return (None, 0.0);
        }
        if p != c {
            for k in 0..n {
                a.swap([p, k], [c, k]);
            }
            for k in 0..b.ncols() {
                b.swap([p, k], [c, k]);
            }
            det = -det;
        }
        det *= a[[c, c]];
        for i in c + 1..n {
            let f = a[[i, c]] / a[[c, c]];
            for k in c..n {
                a[[i, k]] -= f * a[[c, k]];
            }
            for k in 0..b.ncols() {
                b[[i, k]] -= f * b[[c, k]];
            }
        }
    }
    let mut x = b.clone();
    for i in (0..n).rev() {
        for k in 0..x.ncols() {
            let mut v = x[[i, k]];
            for j in i + 1..n {
                v -= a[[i, j]] * x[[j, k]];
            }
            x[[i, k]] = v / a[[i, i]];
        }
    }
    (Some(x), det)
}

fn random_matrix(cx: &mut Cx, shape: &[usize], dt: DType) -> tessera::HostArray {
    cx.host(shape, Dom::Range(-1.0, 1.0), dt)
}

/// A symmetric positive definite batch `b b^T + n I`.
fn spd(cx: &mut Cx, batch: &[usize], n: usize, dt: DType) -> tessera::HostArray {
    let mut shape = batch.to_vec();
    shape.extend([n, n]);
    let b = values(&random_matrix(cx, &shape, F64));
    let ms: Vec<Array2<f64>> = mats(&b)
        .iter()
        .map(|m| m.dot(&m.t()) + eye(n) * n as f64)
        .collect();
    let flat: Vec<f64> = ms.iter().flat_map(|m| m.iter().copied()).collect();
    super::to_host(
        &ArrayD::from_shape_vec(IxDyn(&shape), flat).expect("shape"),
        dt,
    )
}

/// QR, reduced and complete: Q orthonormal, R upper triangular with a non-negative diagonal,
/// Q R = A; batched, wide, tall, square and 1 x 1.
pub fn qr_factors(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64] {
        for shape in [
            vec![7usize, 4],
            vec![4, 6],
            vec![5, 5],
            vec![1, 1],
            vec![3, 6, 3],
        ] {
            let h = random_matrix(cx, &shape, dt);
            let a = values(&h);
            let t = cx.tensor(&h, 0)?;
            // R alone (numpy's mode="r"; TSQR keeps only R factors): the reduced R (unique
            // with its diagonal non-negative), to rounding.
            let r_alone = get(&t.qr_r()?)?;
            let r_reduced = get(&t.qr(false)?.1)?;
            assert_eq!(r_alone.shape(), r_reduced.shape(), "qr_r {dt} {shape:?}");
            let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
            for (x, y) in mats(&r_alone).iter().zip(mats(&r_reduced).iter()) {
                close(
                    &format!("qr_r {dt} {shape:?}"),
                    x,
                    y,
                    tol(dt, m.max(n), 4.0 * max_abs2(y)),
                );
            }
            for complete in [false, true] {
                let (q, r) = t.qr(complete)?;
                assert_eq!((q.dtype(), r.dtype()), (dt, dt));
                let (qv, rv) = (get(&q)?, get(&r)?);
                let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
                let k = if complete { m } else { m.min(n) };
                let tl = tol(dt, m.max(n), 1.0);
                for ((qm, rm), am) in mats(&qv).iter().zip(mats(&rv)).zip(mats(&a).iter()) {
                    let what = format!("qr({dt} {shape:?}, complete={complete})");
                    assert_eq!(qm.dim(), (m, k), "{what}: Q shape");
                    assert_eq!(rm.dim(), (k, n), "{what}: R shape");
                    close(&format!("{what}: Q^T Q"), &qm.t().dot(qm), &eye(k), tl);
                    close(&format!("{what}: Q R"), &qm.dot(&rm), am, tl);
                    for i in 0..k {
                        for j in 0..n.min(i) {
                            assert_eq!(rm[[i, j]], 0.0, "{what}: R below its diagonal");
                        }
                        if i < n {
                            assert!(rm[[i, i]] >= 0.0, "{what}: R's diagonal is non-negative");
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// SVD (thin and full) and svdvals: singular values descending, equal to the square roots of
/// the Jacobi eigenvalues of `A^T A`; U and Vh orthonormal; `U diag(S) Vh = A`.
pub fn svd_factors(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64] {
        for shape in [
            vec![7usize, 4],
            vec![3, 6],
            vec![5, 5],
            vec![1, 1],
            vec![2, 5, 3],
        ] {
            let h = random_matrix(cx, &shape, dt);
            let a = values(&h);
            let t = cx.tensor(&h, 0)?;
            let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
            let k = m.min(n);
            let tl = tol(dt, m.max(n), 1.0);
            let sv = get(&t.svdvals()?)?;
            for full in [false, true] {
                let what = format!("svd({dt} {shape:?}, full_matrices={full})");
                let (u, s_, vh) = t.svd(full)?;
                let (uv, sv2, vv) = (get(&u)?, get(&s_)?, get(&vh)?);
                let svals: Vec<Vec<f64>> = sv2
                    .as_standard_layout()
                    .into_owned()
                    .into_shape_with_order(IxDyn(&[sv2.len() / k.max(1), k]))
                    .expect("2-D")
                    .outer_iter()
                    .map(|r| r.iter().copied().collect())
                    .collect();
                let (uc, vr) = if full { (m, n) } else { (k, k) };
                for (((um, vm), am), s_i) in mats(&uv)
                    .iter()
                    .zip(mats(&vv))
                    .zip(mats(&a).iter())
                    .zip(&svals)
                {
                    assert_eq!(um.dim(), (m, uc), "{what}: U shape");
                    assert_eq!(vm.dim(), (vr, n), "{what}: Vh shape");
                    close(&format!("{what}: U^T U"), &um.t().dot(um), &eye(uc), tl);
                    close(&format!("{what}: Vh Vh^T"), &vm.dot(&vm.t()), &eye(vr), tl);
                    let mut us = um.slice(s![.., ..k]).to_owned();
                    for j in 0..k {
                        us.column_mut(j).mapv_inplace(|v| v * s_i[j]);
                    }
                    close(
                        &format!("{what}: U S Vh"),
                        &us.dot(&vm.slice(s![..k, ..])),
                        am,
                        tl,
                    );
                    let gram = if m >= n {
                        am.t().dot(am)
                    } else {
                        am.dot(&am.t())
                    };
                    let mut want: Vec<f64> = jacobi_eigvals(&gram)
                        .iter()
                        .map(|v| v.max(0.0).sqrt())
                        .collect();
                    want.reverse();
                    // The reference squares A: its eigenvalues carry an error near
                    // eps * n * s_max^2, which the square root turns into up to that over
                    // 2 s_j (at most its square root) for a small singular value s_j.
                    let c = 10.0 * f64::EPSILON * (m.max(n) as f64) * want[0].powi(2);
                    for j in 0..k {
                        assert!(j == 0 || s_i[j] <= s_i[j - 1], "{what}: descending {s_i:?}");
                        let ref_err = c.sqrt().min(c / (2.0 * want[j].max(f64::MIN_POSITIVE)));
                        assert!(
                            (s_i[j] - want[j]).abs() <= tl + ref_err,
                            "{what}: S {s_i:?} vs {want:?}"
                        );
                    }
                }
            }
            let flat_s: Vec<f64> = sv.iter().copied().collect();
            let flat_ref: Vec<f64> = get(&t.svd(false)?.1)?.iter().copied().collect();
            for (x, y) in flat_s.iter().zip(&flat_ref) {
                assert!(
                    (x - y).abs() <= tl,
                    "svdvals {flat_s:?} vs svd's S {flat_ref:?}"
                );
            }
        }
    }
    Ok(())
}

/// eigh and eigvalsh of symmetric matrices: eigenvalues ascending, equal to Jacobi's; A V = V
/// diag(w); V orthonormal.
pub fn eigh_factors(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64] {
        for shape in [vec![6usize, 6], vec![1, 1], vec![3, 4, 4]] {
            let b = values(&random_matrix(cx, &shape, F64));
            let mut bt = b.view();
            bt.swap_axes(shape.len() - 2, shape.len() - 1);
            let sym = (&b + &bt) / 2.0;
            let h = super::to_host(&sym, dt);
            let a = values(&h);
            let t = cx.tensor(&h, 0)?;
            let n = shape[shape.len() - 1];
            let tl = tol(dt, n, 1.0);
            let what = format!("eigh({dt} {shape:?})");
            let (w, v) = t.eigh()?;
            let (wv, vv) = (get(&w)?, get(&v)?);
            let wl = get(&t.eigvalsh()?)?;
            let ws: Vec<Vec<f64>> = wv
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order(IxDyn(&[wv.len() / n, n]))
                .expect("2-D")
                .outer_iter()
                .map(|r| r.iter().copied().collect())
                .collect();
            for ((vm, am), wi) in mats(&vv).iter().zip(mats(&a).iter()).zip(&ws) {
                close(&format!("{what}: V^T V"), &vm.t().dot(vm), &eye(n), tl);
                let mut vw = vm.clone();
                for j in 0..n {
                    vw.column_mut(j).mapv_inplace(|x| x * wi[j]);
                }
                close(&format!("{what}: A V = V diag(w)"), &am.dot(vm), &vw, tl);
                let want = jacobi_eigvals(am);
                for j in 0..n {
                    assert!(
                        (wi[j] - want[j]).abs() <= tl,
                        "{what}: w {wi:?} vs {want:?}"
                    );
                }
            }
            for (x, y) in wl.iter().zip(wv.iter()) {
                assert!((x - y).abs() <= tl, "{what}: eigvalsh vs eigh");
            }
        }
    }
    Ok(())
}

/// Cholesky, solve (matrix and vector right-hand sides, broadcast batches), inv, det and
/// slogdet of symmetric positive definite and general matrices, against Gaussian elimination.
pub fn cholesky_solve_inv_det(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64] {
        for (batch, n) in [(vec![], 5usize), (vec![3usize], 4), (vec![], 1)] {
            let h = spd(cx, &batch, n, dt);
            let a = values(&h);
            let t = cx.tensor(&h, 0)?;
            let scale = 2.0 * n as f64;
            let tl = tol(dt, n, scale);
            let what = format!("{dt} {batch:?} n={n}");
            let l = get(&t.cholesky(false)?)?;
            let u = get(&t.cholesky(true)?)?;
            for ((lm, um), am) in mats(&l).iter().zip(mats(&u)).zip(mats(&a).iter()) {
                for i in 0..n {
                    for j in i + 1..n {
                        assert_eq!(lm[[i, j]], 0.0, "cholesky {what}: L above its diagonal");
                    }
                }
                close(&format!("cholesky {what}: L L^T"), &lm.dot(&lm.t()), am, tl);
                close(
                    &format!("cholesky {what}: upper"),
                    &um,
                    &lm.t().to_owned(),
                    0.0,
                );
            }
            // A general matrix (random plus a diagonal shift keeps it well conditioned).
            let mut shape = batch.clone();
            shape.extend([n, n]);
            let g = values(&random_matrix(cx, &shape, F64));
            let g = g + &ArrayD::from_shape_fn(IxDyn(&shape), |ix| {
                let nd = ix.as_array_view().len();
                if ix[nd - 1] == ix[nd - 2] {
                    3.0
                } else {
                    0.0
                }
            });
            let gh = super::to_host(&g, dt);
            let g = values(&gh);
            let gt = cx.tensor(&gh, 0)?;
            let mut bshape = batch.clone();
            bshape.extend([n, 2]);
            let bh = random_matrix(cx, &bshape, dt);
            let b = values(&bh);
            let bt = cx.tensor(&bh, 1)?;
            let x = get(&gt.solve(&bt)?)?;
            let inv = get(&gt.inv()?)?;
            let det = get(&gt.det()?)?;
            let (sign, logdet) = gt.slogdet()?;
            let (sign, logdet) = (get(&sign)?, get(&logdet)?);
            for (i, (gm, bm)) in mats(&g).iter().zip(mats(&b)).enumerate() {
                let (want_x, want_det) = ge(gm, &bm);
                let (want_inv, _) = ge(gm, &eye(n));
                let tl = tol(dt, n, 4.0 * n as f64);
                close(&format!("solve {what}"), &mats(&x)[i], &want_x.unwrap(), tl);
                close(
                    &format!("inv {what}"),
                    &mats(&inv)[i],
                    &want_inv.unwrap(),
                    tl,
                );
                let d = det.iter().copied().collect::<Vec<_>>()[i];
                assert!(
                    (d - want_det).abs() <= tl * want_det.abs(),
                    "det {what}: {d} vs {want_det}"
                );
                let sg: Vec<f64> = sign.iter().copied().collect();
                let lg: Vec<f64> = logdet.iter().copied().collect();
                assert_eq!(sg[i], want_det.signum(), "slogdet {what}: sign");
                assert!(
                    (lg[i] - want_det.abs().ln()).abs() <= tl,
                    "slogdet {what}: {} vs {}",
                    lg[i],
                    want_det.abs().ln()
                );
            }
            // A vector right-hand side (2-D matrices): x of shape (n,).
            if batch.is_empty() {
                let vh = random_matrix(cx, &[n], dt);
                let v = values(&vh);
                let xv = get(&gt.solve(&cx.tensor(&vh, 1)?)?)?;
                assert_eq!(xv.shape(), &[n]);
                let (want, _) = ge(
                    &mats(&g)[0],
                    &v.clone()
                        .into_shape_with_order(IxDyn(&[n, 1]))
                        .unwrap()
                        .into_dimensionality::<Ix2>()
                        .unwrap(),
                );
                let want = want.unwrap();
                for j in 0..n {
                    assert!(
                        (xv[[j]] - want[[j, 0]]).abs() <= tol(dt, n, 4.0 * n as f64),
                        "solve vector {what}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// pinv, matrix_rank and lstsq of rank-deficient and tall matrices; matrix_power; diagonal
/// and trace at several offsets.
pub fn linalg_composites(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64] {
        // Rank 2, 6 x 5: a sum of two outer products.
        let u = values(&random_matrix(cx, &[6, 2], F64));
        let v = values(&random_matrix(cx, &[2, 5], F64));
        let (u2, v2) = (
            u.into_dimensionality::<Ix2>().unwrap(),
            v.into_dimensionality::<Ix2>().unwrap(),
        );
        let low = u2.dot(&v2).into_dyn();
        let h = super::to_host(&low, dt);
        let a = mats(&values(&h)).remove(0);
        let t = cx.tensor(&h, 0)?;
        // The default cutoff, max(m, n) * eps * max(s) (6 eps here), is within a few
        // roundings of the zero singular values' computed size, more so through the TSQR
        // tree (the `budget` chunking): an explicit cutoff well above rounding.
        let rtol = Some(if dt == F32 { 1e-4 } else { 1e-10 });
        let rank = t.matrix_rank(rtol)?.execute()?;
        assert_eq!(
            values(&rank).iter().copied().collect::<Vec<_>>(),
            vec![2.0],
            "{dt} rank"
        );
        let p = mats(&get(&t.pinv(rtol)?)?).remove(0);
        close(
            &format!("pinv {dt}: A A+ A"),
            &a.dot(&p).dot(&a),
            &a,
            tol(dt, 6, 4.0),
        );
        close(
            &format!("pinv {dt}: A+ A A+"),
            &p.dot(&a).dot(&p),
            &p,
            tol(dt, 6, 4.0) * max_abs2(&p).powi(2),
        );
        // lstsq of a tall full-rank matrix: the normal equations hold.
        let th = random_matrix(cx, &[8, 3], dt);
        let tall = mats(&values(&th)).remove(0);
        let bh = random_matrix(cx, &[8, 2], dt);
        let b = mats(&values(&bh)).remove(0);
        let ls = cx.tensor(&th, 0)?.lstsq(&cx.tensor(&bh, 1)?, None)?;
        let x = mats(&get(&ls.x)?).remove(0);
        let resid = tall.dot(&x) - &b;
        close(
            &format!("lstsq {dt}: A^T (A x - b)"),
            &tall.t().dot(&resid),
            &Array2::zeros((3, 2)),
            tol(dt, 8, 8.0),
        );
        let rr = get(&ls.residuals)?;
        for j in 0..2 {
            let want: f64 = resid.column(j).iter().map(|v| v * v).sum();
            assert!(
                (rr[[j]] - want).abs() <= tol(dt, 8, 8.0),
                "lstsq {dt}: residuals"
            );
        }
        assert_eq!(
            values(&ls.rank.execute()?)
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![3.0]
        );
        // matrix_power against repeated products.
        let sh = random_matrix(cx, &[2, 4, 4], dt);
        let sq = values(&sh);
        let st = cx.tensor(&sh, 0)?;
        for (pw, want) in [
            (0i64, mats(&sq).iter().map(|_| eye(4)).collect::<Vec<_>>()),
            (1, mats(&sq)),
            (3, mats(&sq).iter().map(|m| m.dot(m).dot(m)).collect()),
            (
                6,
                mats(&sq)
                    .iter()
                    .map(|m| {
                        let m3 = m.dot(m).dot(m);
                        m3.dot(&m3)
                    })
                    .collect(),
            ),
        ] {
            let got = mats(&get(&st.matrix_power(pw)?)?);
            for (g, w) in got.iter().zip(&want) {
                close(
                    &format!("matrix_power({pw}) {dt}"),
                    g,
                    w,
                    tol(dt, 4, 16.0 * max_abs2(w)),
                );
            }
        }
        // diagonal and trace: exact.
        for (shape, offsets) in [
            (vec![4usize, 6], vec![0i64, 2, -3, 5, -4, 7]),
            (vec![3, 5, 5], vec![0, 1, -1]),
        ] {
            let h = random_matrix(cx, &shape, dt);
            let a = values(&h);
            let t = cx.tensor(&h, 0)?;
            for &k in &offsets {
                let d = get(&t.diagonal(k)?)?;
                let tr = get(&t.trace(k)?)?;
                for (i, m) in mats(&a).iter().enumerate() {
                    let want: Vec<f64> = (0..m.nrows())
                        .filter_map(|r| {
                            let c = r as i64 + k;
                            (c >= 0 && (c as usize) < m.ncols()).then(|| m[[r, c as usize]])
                        })
                        .collect();
                    let got: Vec<f64> = if shape.len() == 2 {
                        d.iter().copied().collect()
                    } else {
                        d.index_axis(Axis(0), i).iter().copied().collect()
                    };
                    assert_eq!(got, want, "diagonal({k}) {dt} {shape:?}");
                    let trv: Vec<f64> = tr.iter().copied().collect();
                    let sum: f64 = want.iter().sum();
                    assert!((trv[i] - sum).abs() <= tol(dt, 8, 1.0), "trace({k}) {dt}");
                }
            }
        }
    }
    Ok(())
}

fn max_abs2(a: &Array2<f64>) -> f64 {
    a.iter().fold(1.0f64, |m, v| m.max(v.abs()))
}

/// Singular and non-positive-definite matrices, non-finite input to SVD/eigh, bad shapes:
/// typed errors naming the op (numpy's `LinAlgError` cases) and shapes; integer input runs in
/// float64; zero-size matrices.
pub fn linalg_errors(cx: &mut Cx) -> Result<()> {
    let s = &cx.s;
    let sing = s.from_vec(vec![1.0f64, 2.0, 2.0, 4.0], &[2, 2])?;
    let b = s.from_vec(vec![1.0f64, 1.0], &[2])?;
    for (what, r) in [
        ("solve", sing.solve(&b).and_then(|t| t.execute())),
        ("inv", sing.inv().and_then(|t| t.execute())),
    ] {
        match r {
            Err(Error::LinAlg { op, msg }) => {
                assert_eq!(op, what);
                assert!(msg.contains("Singular matrix"), "{msg}");
            }
            other => panic!("{what} of a singular matrix: {other:?}"),
        }
    }
    assert_eq!(
        values(&sing.det()?.execute()?)
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![0.0]
    );
    let notpd = s.from_vec(vec![1.0f64, 2.0, 2.0, 1.0], &[2, 2])?;
    let e = notpd.cholesky(false)?.execute().unwrap_err();
    assert!(
        matches!(&e, Error::LinAlg { msg, .. } if msg.contains("positive definite")),
        "{e}"
    );
    let nan = s.from_vec(vec![1.0f64, f64::NAN, 0.0, 1.0], &[2, 2])?;
    for r in [nan.svdvals(), nan.svd(false).map(|x| x.1), nan.eigvalsh()] {
        let e = r?.execute().unwrap_err();
        assert!(matches!(e, Error::LinAlg { .. }), "{e}");
    }
    // NaN propagates through solve and det, as in numpy.
    let x = values(&nan.solve(&b)?.execute()?);
    assert!(x.iter().any(|v| v.is_nan()), "{x:?}");
    let rect = s.from_vec(vec![1.0f64; 6], &[2, 3])?;
    for (what, r) in [
        ("det", rect.det().map(|_| ())),
        ("inv", rect.inv().map(|_| ())),
        ("cholesky", rect.cholesky(false).map(|_| ())),
        ("eigh", rect.eigh().map(|_| ())),
    ] {
        let e = r.unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains(what) && m.contains("square") && m.contains("[2, 3]"),
            "{m}"
        );
    }
    let v = s.from_vec(vec![1.0f64; 3], &[3])?;
    let e = v.qr(false).unwrap_err();
    assert!(e.to_string().contains("two-dimensional"), "{e}");
    let sq = s.from_vec(vec![1.0f64; 9], &[3, 3])?;
    let e = sq.solve(&s.from_vec(vec![1.0f64; 4], &[4])?).unwrap_err();
    assert!(
        e.to_string().contains("[3, 3]") && e.to_string().contains("[4]"),
        "{e}"
    );
    // Integers are factored in float64.
    let ints = s.from_vec(vec![2i64, 1, 1, 3], &[2, 2])?;
    let d = ints.det()?;
    assert_eq!(d.dtype(), F64);
    assert!((values(&d.execute()?)[[]] - 5.0).abs() < 1e-12);
    // Zero-size matrices.
    let empty = s.from_vec(Vec::<f64>::new(), &[0, 0])?;
    assert_eq!(values(&empty.det()?.execute()?)[[]], 1.0);
    let wide0 = s.from_vec(Vec::<f64>::new(), &[0, 3])?;
    let (q, r) = wide0.qr(false)?;
    assert_eq!((q.shape(), r.shape()), (&[0usize, 0][..], &[0usize, 3][..]));
    assert_eq!(q.execute()?.shape(), &[0, 0]);
    let tall0 = s.from_vec(Vec::<f64>::new(), &[3, 0])?;
    assert_eq!(tall0.svdvals()?.execute()?.shape(), &[0]);
    let (q, _) = tall0.qr(true)?;
    close(
        "complete Q of a 3 x 0 matrix",
        &mats(&values(&q.execute()?))[0],
        &eye(3),
        0.0,
    );
    let _ = &cx.rng();
    Ok(())
}

/// R alone and the singular values of a tall matrix in row blocks under a small chunk budget:
/// TSQR with R-only QRs at every node of its tree (no Q is formed: the plan has no full QR),
/// equal within tolerance to the dense kernel on the whole matrix.
pub fn tsqr_r_only(cx: &mut Cx) -> Result<()> {
    restoring_chunk_bytes(cx, tsqr_r_only_cases)
}

/// Runs `cases`, which set their own chunk budgets, and restores the suite's afterwards.
fn restoring_chunk_bytes(cx: &mut Cx, cases: fn(&mut Cx) -> Result<()>) -> Result<()> {
    let before = cx.s.config().chunk_bytes;
    let r = cases(cx);
    cx.s.set_chunk_bytes(before)?;
    r
}

fn tsqr_r_only_cases(cx: &mut Cx) -> Result<()> {
    use tessera::chunk::ChunkOp;
    use tessera::linalg::DenseOp;
    let (m, n, blk) = (600usize, 5usize, 40usize);
    for dt in [F32, F64] {
        let h = random_matrix(cx, &[m, n], dt);
        cx.s.set_chunk_bytes(16 << 20)?;
        let whole = cx.s.from_host(h.clone());
        let (r0, s0) = (
            mats(&get(&whole.qr_r()?)?).remove(0),
            values(&whole.svdvals()?.execute()?),
        );
        // 15 row blocks, each under the 1 KiB budget; the matrix is far over it.
        cx.s.set_chunk_bytes(1 << 10)?;
        let t = cx.s.from_host(h.clone()).with_chunks(&[blk, n])?;
        let (rt, st) = (t.qr_r()?, t.svdvals()?);
        for (what, x) in [("qr_r", &rt), ("svdvals", &st)] {
            let (cg, _) = cx.s.plan(&[x])?;
            let dense: Vec<DenseOp> = cg
                .nodes
                .iter()
                .filter_map(|nd| match &nd.op {
                    ChunkOp::Dense(op) => Some(*op),
                    _ => None,
                })
                .collect();
            let r_qrs = dense.iter().filter(|&&op| op == DenseOp::QrR).count();
            assert!(
                r_qrs > m / blk,
                "{what} {dt}: {r_qrs} R-only QRs for {} row blocks ({dense:?})",
                m / blk
            );
            assert!(
                !dense.iter().any(|op| matches!(op, DenseOp::Qr { .. })),
                "{what} {dt}: a QR forming Q in an R-only tree ({dense:?})"
            );
        }
        let r = mats(&get(&rt)?).remove(0);
        assert_eq!(r.dim(), (n, n), "qr_r {dt}: R shape");
        let tl = tol(dt, m, 4.0) * max_abs2(&r0);
        close(&format!("tsqr qr_r {dt}"), &r, &r0, tl);
        let sv = values(&st.execute()?);
        let (sv, s0): (Vec<f64>, Vec<f64>) =
            (sv.iter().copied().collect(), s0.iter().copied().collect());
        assert_eq!(sv.len(), n);
        for (a, b) in sv.iter().zip(&s0) {
            assert!((a - b).abs() <= tl, "tsqr svdvals {dt}: {sv:?} vs {s0:?}");
        }
    }
    Ok(())
}

/// Cholesky and triangular solves of a matrix cut into a grid of blocks under a chunk budget
/// smaller than the matrix: the blocked algorithms over the chunk grid run (no chunk holds the
/// whole matrix: the plan's dense kernels see single blocks), and their results hold the
/// defining properties in f64 and equal the dense kernel's within tolerance.
pub fn blocked_cholesky_and_triangular_solves(cx: &mut Cx) -> Result<()> {
    restoring_chunk_bytes(cx, blocked_cases)
}

fn blocked_cases(cx: &mut Cx) -> Result<()> {
    let (n, blk, rhs) = (37usize, 12usize, 5usize);
    for dt in [F32, F64] {
        let h = spd(cx, &[], n, dt);
        let a = mats(&values(&h)).remove(0);
        let bh = random_matrix(cx, &[n, rhs], dt);
        let b = mats(&values(&bh)).remove(0);
        // The dense kernel on the whole matrix (one chunk, the default budget).
        cx.s.set_chunk_bytes(16 << 20)?;
        let dense_l = mats(&get(&cx.s.from_host(h.clone()).cholesky(false)?)?).remove(0);
        // Blocks of 12 (the last one 1 wide) and a budget far under the matrix.
        cx.s.set_chunk_bytes(64)?;
        let t = cx.s.from_host(h.clone()).with_chunks(&[blk, blk])?;
        let lt = t.cholesky(false)?;
        let (cg, _) = cx.s.plan(&[&lt])?;
        for node in &cg.nodes {
            if let tessera::chunk::ChunkOp::Dense(op) = &node.op {
                assert!(
                    node.shape.iter().all(|&d| d <= blk),
                    "blocked cholesky ({dt}): a dense kernel over {:?} ({op:?})",
                    node.shape
                );
            }
        }
        let l = mats(&get(&lt)?).remove(0);
        let u = mats(&get(&t.cholesky(true)?)?).remove(0);
        let what = format!("blocked cholesky {dt} n={n}");
        for i in 0..n {
            for j in i + 1..n {
                assert_eq!(l[[i, j]], 0.0, "{what}: L above its diagonal");
            }
        }
        let tl = tol(dt, n, 2.0 * n as f64);
        close(&format!("{what}: L L^T"), &l.dot(&l.t()), &a, tl);
        close(&format!("{what}: upper"), &u, &l.t().to_owned(), 0.0);
        close(
            &format!("{what}: against the dense kernel"),
            &l,
            &dense_l,
            tl,
        );
        // Triangular solves with L (lower) and U = L^T (upper), either transposed.
        let bt = cx.s.from_host(bh.clone()).with_chunks(&[blk, 2])?;
        for lower in [true, false] {
            let tri = if lower { &l } else { &u };
            let th = super::to_host(&tri.clone().into_dyn(), dt);
            let tt = cx.s.from_host(th).with_chunks(&[blk, blk])?;
            for trans in [false, true] {
                let xt = tt.solve_triangular(&bt, lower, trans, true)?;
                let (cg, _) = cx.s.plan(&[&xt])?;
                assert!(
                    cg.nodes.iter().all(|nd| !matches!(nd.op, tessera::chunk::ChunkOp::Dense(_))
                        || nd.shape.iter().all(|&d| d <= blk)),
                    "blocked solve_triangular ({dt}, lower={lower}, trans={trans}): a whole-matrix kernel"
                );
                let x = mats(&get(&xt)?).remove(0);
                let op_t = if trans {
                    tri.t().to_owned()
                } else {
                    tri.clone()
                };
                // L is well conditioned (A = B B^T + n I): the residual is at rounding level.
                close(
                    &format!("solve_triangular {dt} lower={lower} trans={trans}: op(T) X = B"),
                    &op_t.dot(&x),
                    &b,
                    tol(dt, n, 4.0 * n as f64),
                );
            }
        }
    }
    Ok(())
}
