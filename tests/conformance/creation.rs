//! Creation functions: arange, linspace, eye, full/zeros/ones, from_vec/from_array.

use super::{fit, to_host, values, Cx, Dom};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use tessera::{DType, Result};

fn ramp(n: usize, f: impl Fn(usize) -> f64, dt: DType) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n]), |i| fit(f(i[0]), dt))
}

/// numpy's arange: `ceil((stop - start) / step)` elements `start + i * step`.
pub fn arange(cx: &mut Cx) -> Result<()> {
    let mut cases = vec![
        (0.0, 13.0, 1.0, DType::I64),
        (-2.0, 3.0, 1.0, DType::I32),
        (5.0, 0.0, -1.0, DType::I32),
        (-3.5, 9.2, 0.7, DType::F64),
        (10.0, -3.0, -1.5, DType::F32),
        (0.0, 1.0, 0.1, DType::F64),
        (5.0, 0.0, 1.0, DType::F64), // empty
    ];
    for dt in [DType::F32, DType::F64] {
        let start = cx.value(Dom::Range(-10.0, 10.0));
        let step = cx.value(Dom::Away(0.1, 2.0));
        let stop = start + step * cx.value(Dom::Range(0.0, 30.0));
        cases.push((start, stop, step, dt));
    }
    for (start, stop, step, dt) in cases {
        let n = ((stop - start) / step).ceil().max(0.0) as usize;
        let want = ramp(n, |i| start + i as f64 * step, dt);
        let what = format!("arange({start}, {stop}, {step}, {dt})");
        cx.source(
            &what,
            |ch| ch.apply(cx.s.arange(start, stop, step, dt)?, 0),
            dt,
            &want,
        )?;
    }
    Ok(())
}

/// numpy's linspace with and without the endpoint (the endpoint is exactly `stop`).
pub fn linspace(cx: &mut Cx) -> Result<()> {
    let mut cases = vec![
        (0.0, 1.0, 11usize, true, DType::F64),
        (-2.0, 5.0, 13, false, DType::F64),
        (3.0, -3.0, 7, true, DType::F32),
        (0.0, 10.0, 6, true, DType::I32),
        (1.0, 2.0, 2, true, DType::F64),
        (1.0, 2.0, 0, true, DType::F64),
    ];
    for endpoint in [true, false] {
        let (a, b) = (
            cx.value(Dom::Range(-10.0, 10.0)),
            cx.value(Dom::Range(-10.0, 10.0)),
        );
        let num = cx.rng().gen_range(2..40);
        cases.push((a, b, num, endpoint, DType::F64));
        cases.push((a, b, num, endpoint, DType::F32));
    }
    for (start, stop, num, endpoint, dt) in cases {
        let div = if endpoint { num.saturating_sub(1) } else { num };
        let step = (stop - start) / div as f64;
        let want = ramp(
            num,
            |i| {
                if endpoint && i == num - 1 {
                    stop
                } else {
                    start + i as f64 * step
                }
            },
            dt,
        );
        let what = format!("linspace({start}, {stop}, {num}, endpoint={endpoint}, {dt})");
        if endpoint && num > 1 {
            let got =
                cx.s.linspace(start, stop, num, endpoint, DType::F64)
                    .execute()?;
            assert_eq!(
                values(&got)[[num - 1]],
                stop,
                "{what}: the endpoint is exactly stop"
            );
        }
        cx.source(
            &what,
            |ch| ch.apply(cx.s.linspace(start, stop, num, endpoint, dt), 0),
            dt,
            &want,
        )?;
    }
    Ok(())
}

/// numpy's eye(n, m, k): ones where `col - row == k`, for diagonals inside and outside.
pub fn eye(cx: &mut Cx) -> Result<()> {
    let cases = [
        (5, None, 0, DType::F64),
        (4, Some(6), 2, DType::I32),
        (6, Some(4), -1, DType::F32),
        (3, Some(5), 7, DType::Bool),
        (7, Some(7), -6, DType::I64),
        (9, Some(13), 4, DType::F64),
    ];
    for (n, m, k, dt) in cases {
        let cols = m.unwrap_or(n);
        let want = ArrayD::from_shape_fn(IxDyn(&[n, cols]), |i| {
            ((i[1] as i64 - i[0] as i64) == k) as u8 as f64
        });
        let what = format!("eye({n}, {m:?}, k={k}, {dt})");
        cx.source(&what, |ch| ch.apply(cx.s.eye(n, m, k, dt), 0), dt, &want)?;
    }
    Ok(())
}

/// full/zeros/ones in every dtype, including 0-d and NaN fills.
pub fn full_zeros_ones(cx: &mut Cx) -> Result<()> {
    let s = cx.s.clone();
    for dt in [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64] {
        for shape in [&[13usize, 7][..], &[4, 9], &[6, 5, 7], &[]] {
            let w = |v: f64| ArrayD::from_elem(IxDyn(shape), fit(v, dt));
            cx.source(
                &format!("zeros({shape:?}, {dt})"),
                |ch| ch.apply(s.zeros(shape, dt), 0),
                dt,
                &w(0.0),
            )?;
            cx.source(
                &format!("ones({shape:?}, {dt})"),
                |ch| ch.apply(s.ones(shape, dt), 0),
                dt,
                &w(1.0),
            )?;
            let v = cx.value(Dom::Range(-100.0, 100.0));
            cx.source(
                &format!("full({shape:?}, {v}, {dt})"),
                |ch| ch.apply(s.full(shape, v, dt), 0),
                dt,
                &w(v),
            )?;
            let i = cx.rng().gen_range(-1000i64..1000);
            cx.source(
                &format!("full({shape:?}, {i}, {dt})"),
                |ch| ch.apply(s.full(shape, i, dt), 0),
                dt,
                &w(i as f64),
            )?;
        }
    }
    let nan = ArrayD::from_elem(IxDyn(&[13, 7]), f64::NAN);
    cx.source(
        "full(NaN)",
        |ch| ch.apply(s.full(&[13, 7], f64::NAN, DType::F32), 0),
        DType::F32,
        &nan,
    )?;
    let t = ArrayD::from_elem(IxDyn(&[4, 9]), 1.0);
    cx.source(
        "full(true)",
        |ch| ch.apply(s.full(&[4, 9], true, DType::Bool), 0),
        DType::Bool,
        &t,
    )
}

/// from_vec and from_array round-trip user data in every dtype.
pub fn from_vec_and_array(cx: &mut Cx) -> Result<()> {
    for dt in [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64] {
        for shape in [&[13usize, 7][..], &[6, 5, 7], &[11]] {
            let data = cx.data(
                shape,
                if dt == DType::Bool {
                    Dom::Bool(0.5)
                } else {
                    Dom::Range(-1e3, 1e3)
                },
            );
            let h = to_host(&data, dt);
            let want = values(&h);
            let what = format!("from_vec({shape:?}, {dt})");
            let s = cx.s.clone();
            let make = |ch: super::Chunking| -> Result<tessera::Tensor> {
                let t = match &h {
                    tessera::HostArray::Bool(a) => {
                        s.from_vec(a.iter().copied().collect(), shape)?
                    }
                    tessera::HostArray::I32(a) => s.from_vec(a.iter().copied().collect(), shape)?,
                    tessera::HostArray::I64(a) => s.from_vec(a.iter().copied().collect(), shape)?,
                    tessera::HostArray::F32(a) => s.from_vec(a.iter().copied().collect(), shape)?,
                    tessera::HostArray::F64(a) => s.from_vec(a.iter().copied().collect(), shape)?,
                };
                ch.apply(t, 0)
            };
            cx.source(&what, make, dt, &want)?;
            cx.source(
                &format!("from_array({shape:?}, {dt})"),
                |ch| ch.apply(s.from_host(h.clone()), 0),
                dt,
                &want,
            )?;
        }
    }
    let a: ArrayD<f32> = cx.data(&[4, 9], Dom::Range(-1.0, 1.0)).mapv(|v| v as f32);
    let want = a.mapv(|v| v as f64);
    cx.source(
        "from_array::<f32>",
        |ch| ch.apply(cx.s.from_array(a.clone()), 0),
        DType::F32,
        &want,
    )?;
    let back =
        cx.s.from_array(a.clone())
            .with_chunks(&[3, 2])?
            .to_array::<f32>()?;
    assert_eq!(back, a, "to_array gives the data back [{}]", cx.tag());
    Ok(())
}

/// linspace(start, stop, 1) is `[start]` in numpy.
pub fn linspace_single_point(cx: &mut Cx) -> Result<()> {
    for endpoint in [true, false] {
        let got =
            cx.s.linspace(2.0, 5.0, 1, endpoint, DType::F64)
                .to_array::<f64>()?;
        assert_eq!(
            got.as_slice().unwrap(),
            &[2.0],
            "linspace(2, 5, 1, endpoint={endpoint})"
        );
    }
    Ok(())
}

/// numpy >= 2.0 floors (not truncates) linspace values for integer dtypes.
pub fn linspace_int_floors(cx: &mut Cx) -> Result<()> {
    let got =
        cx.s.linspace(-1.0, 1.0, 4, true, DType::I32)
            .to_array::<i32>()?;
    assert_eq!(
        got.as_slice().unwrap(),
        &[-1, -1, 0, 1],
        "np.linspace(-1, 1, 4, dtype=int32)"
    );
    Ok(())
}
