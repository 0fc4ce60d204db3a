//! matmul (2-D with uneven chunks on M, K and N; batched with broadcast batch dims; 1-D
//! operands), dot, tensordot; integer and bool products exact.

use super::reference as r;
use super::{values, Cx, Dom, Tol};
use ndarray::ArrayD;
use tessera::{DType, Result, Tensor};

use DType::{Bool, F32, F64, I32, I64};

type Product = fn(&Tensor, &Tensor) -> Result<Tensor>;
type Reference = fn(&ArrayD<f64>, &ArrayD<f64>) -> ArrayD<f64>;

/// Checks `op(a, b)` for fresh `a` of `sa` and `b` of `sb` (dtype `dt`) against `reference`;
/// `k` is the number of summed terms (for the tolerance).
#[allow(clippy::too_many_arguments)]
fn product(
    cx: &mut Cx,
    name: &str,
    op: Product,
    reference: Reference,
    sa: &[usize],
    sb: &[usize],
    dt: DType,
    k: usize,
) -> Result<()> {
    let dom = match dt {
        Bool => Dom::Bool(0.3),
        I32 | I64 => Dom::Int(-10, 10),
        _ => Dom::Range(-2.0, 2.0),
    };
    let (a, b) = (cx.host(sa, dom, dt), cx.host(sb, dom, dt));
    let mut want = reference(&values(&a), &values(&b));
    if dt == Bool {
        want.mapv_inplace(|v| r::b(v != 0.0));
    }
    let what = format!("{name}({dt} {sa:?}, {dt} {sb:?})");
    cx.approx(
        &what,
        &[&a, &b],
        |t| op(&t[0], &t[1]),
        dt,
        &want,
        Tol::accumulated(dt, k, 4.0),
    )
}

fn matmul_shapes(
    cx: &mut Cx,
    cases: &[(&[usize], &[usize], usize)],
    dtypes: &[DType],
) -> Result<()> {
    for &dt in dtypes {
        for &(sa, sb, k) in cases {
            product(cx, "matmul", Tensor::matmul, r::matmul, sa, sb, dt, k)?;
        }
    }
    Ok(())
}

/// 2-D products whose M, K and N are cut unevenly (K grids disagree under `mixed`).
pub fn matmul_2d(cx: &mut Cx) -> Result<()> {
    matmul_shapes(
        cx,
        &[
            (&[13, 11], &[11, 7], 11),
            (&[4, 9], &[9, 13], 9),
            (&[7, 1], &[1, 5], 1),
            (&[1, 20], &[20, 1], 20),
        ],
        &[F32, F64],
    )
}

/// Batched products with broadcast batch dims and a 2-D operand against a 3-D one.
pub fn matmul_batched(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[3, 1, 5, 4], &[2, 4, 6], 4),
        (&[2, 5, 4], &[4, 6], 4),
        (&[4, 6], &[3, 6, 2], 6),
        (&[2, 3, 5, 4], &[2, 3, 4, 3], 4),
        (&[1, 3, 5, 4], &[2, 1, 4, 3], 4),
    ];
    matmul_shapes(cx, cases, &[F32, F64])
}

/// 1-D @ 2-D, 2-D @ 1-D, 1-D @ 1-D (0-d result), N-D @ 1-D and 1-D @ N-D.
pub fn matmul_vector(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[11], &[11, 7], 11),
        (&[13, 11], &[11], 11),
        (&[11], &[11], 11),
        (&[2, 13, 11], &[11], 11),
        (&[11], &[3, 11, 4], 11),
    ];
    matmul_shapes(cx, cases, &[F64, F32])
}

/// Integer products are exact (int32, int64), bool products are logical, mixed dtypes promote.
pub fn matmul_int(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[13, 11], &[11, 7], 11),
        (&[2, 5, 4], &[4, 6], 4),
        (&[11], &[11, 7], 11),
    ];
    matmul_shapes(cx, cases, &[I32, I64, Bool])?;
    let a = cx.host(&[13, 11], Dom::Int(-10, 10), I32);
    let b = cx.host(&[11, 7], Dom::Range(-2.0, 2.0), F32);
    let want = r::matmul(&values(&a), &values(&b));
    cx.approx(
        "matmul(i32, f32) -> f64",
        &[&a, &b],
        |t| t[0].matmul(&t[1]),
        F64,
        &want,
        Tol::accumulated(F64, 11, 20.0),
    )
}

/// numpy's dot for every combination of ranks.
pub fn dot(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[13, 11], &[11, 7], 11),
        (&[11], &[11], 11),
        (&[13, 11], &[11], 11),
        (&[11], &[11, 7], 11),
        (&[], &[13, 7], 1),
        (&[13, 7], &[], 1),
        (&[6, 5, 7], &[7, 4], 7),
        (&[4, 7], &[3, 7, 5], 7),
        (&[2, 3, 4], &[5, 4, 6], 4),
        (&[7], &[3, 7, 5], 7),
    ];
    for &dt in &[F64, F32, I64] {
        for &(sa, sb, k) in cases {
            product(cx, "dot", Tensor::dot, r::dot, sa, sb, dt, k)?;
        }
    }
    Ok(())
}

/// tensordot with explicit axis lists (negative, reordered, empty).
pub fn tensordot_axes(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], &[isize], &[isize])] = &[
        (&[3, 4, 5], &[4, 5, 6], &[1, 2], &[0, 1]),
        (&[3, 4, 5], &[6, 2, 3], &[0], &[2]),
        (&[3, 4, 5], &[5, 2, 3], &[-1, 0], &[0, -1]),
        (&[3, 4, 5], &[4, 5, 6], &[2, 1], &[1, 0]),
        (&[3, 4], &[5], &[], &[]),
        (&[13, 7], &[13, 7], &[0, 1], &[0, 1]),
    ];
    for &dt in &[F64, F32, I32] {
        for &(sa, sb, aa, ab) in cases {
            let k: usize = aa.iter().map(|&x| sa[r::axis(x, sa.len())]).product();
            let (a, b) = (
                cx.host(sa, Dom::Range(-2.0, 2.0), dt),
                cx.host(sb, Dom::Range(-2.0, 2.0), dt),
            );
            let want = r::tensordot(&values(&a), &values(&b), aa, ab);
            let what = format!("tensordot({dt} {sa:?}, {sb:?}, axes=({aa:?}, {ab:?}))");
            cx.approx(
                &what,
                &[&a, &b],
                |t| t[0].tensordot(&t[1], aa, ab),
                dt,
                &want,
                Tol::accumulated(dt, k, 4.0),
            )?;
        }
    }
    Ok(())
}

/// tensordot with an integer axis count: 0 (outer product) to all axes (a 0-d result).
pub fn tensordot_n(cx: &mut Cx) -> Result<()> {
    let cases: &[(&[usize], &[usize], usize)] = &[
        (&[3, 4, 5], &[4, 5, 6], 2),
        (&[13, 7], &[7, 11], 1),
        (&[3, 4], &[5], 0),
        (&[2, 3, 4], &[2, 3, 4], 3),
    ];
    for &dt in &[F64, F32] {
        for &(sa, sb, n) in cases {
            let aa: Vec<isize> = (sa.len() - n..sa.len()).map(|x| x as isize).collect();
            let ab: Vec<isize> = (0..n).map(|x| x as isize).collect();
            let k: usize = sa[sa.len() - n..].iter().product();
            let (a, b) = (
                cx.host(sa, Dom::Range(-2.0, 2.0), dt),
                cx.host(sb, Dom::Range(-2.0, 2.0), dt),
            );
            let want = r::tensordot(&values(&a), &values(&b), &aa, &ab);
            let what = format!("tensordot_n({dt} {sa:?}, {sb:?}, {n})");
            cx.approx(
                &what,
                &[&a, &b],
                |t| t[0].tensordot_n(&t[1], n),
                dt,
                &want,
                Tol::accumulated(dt, k, 4.0),
            )?;
        }
    }
    Ok(())
}

/// `a @ a.T` (a Gram matrix, tiled as a symmetric product: lower blocks, symmetric diagonal
/// blocks, mirrored upper blocks) for uneven M and K grids, every dtype; the result is
/// exactly symmetric.
pub fn gram_matrix(cx: &mut Cx) -> Result<()> {
    for dt in [F32, F64, I32, I64, Bool] {
        for shape in [[13usize, 11], [7, 20], [1, 5], [9, 1]] {
            let dom = match dt {
                Bool => Dom::Bool(0.3),
                I32 | I64 => Dom::Int(-10, 10),
                _ => Dom::Range(-2.0, 2.0),
            };
            let a = cx.host(&shape, dom, dt);
            let av = values(&a);
            let mut want = r::matmul(&av, &av.t().to_owned());
            if dt == Bool {
                want.mapv_inplace(|v| r::b(v != 0.0));
            }
            let what = format!("gram({dt} {shape:?})");
            let build = |t: &[Tensor]| t[0].matmul(&t[0].matrix_transpose()?);
            cx.approx(
                &what,
                &[&a],
                build,
                dt,
                &want,
                Tol::accumulated(dt, shape[1], 4.0),
            )?;
            let got = values(&cx.eval(cx.ch, &[&a], &build)?);
            assert_eq!(got, got.t(), "{what}: symmetric [{}]", cx.tag());
        }
    }
    Ok(())
}
