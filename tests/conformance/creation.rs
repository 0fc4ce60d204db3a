//! Creation functions: arange, linspace, eye, full/zeros/ones, from_vec/from_array.

use super::{fit, to_host, values, Cx, Dom, Tol};
use ndarray::{ArrayD, IxDyn};
use rand::Rng;
use tessera::{DType, Result, Tensor};

fn ramp(n: usize, f: impl Fn(usize) -> f64, dt: DType) -> ArrayD<f64> {
    ArrayD::from_shape_fn(IxDyn(&[n]), |i| fit(f(i[0]), dt))
}

/// numpy's arange: `ceil((stop - start) / step)` elements filled as numpy's `arange` does.
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
        let want = match dt {
            DType::F32 | DType::F64 => {
                let bits = numpy_arange_bits(start, step, n, dt);
                ramp(
                    n,
                    |i| match dt {
                        DType::F32 => f32::from_bits(bits[i] as u32) as f64,
                        _ => f64::from_bits(bits[i]),
                    },
                    dt,
                )
            }
            // numpy truncates start and start + step, then steps by their difference.
            _ => {
                let (x0, x1) = (start.trunc(), (start + step).trunc());
                ramp(n, |i| x0 + i as f64 * (x1 - x0), dt)
            }
        };
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

/// `full` stores exactly what numpy stores and refuses a value the dtype cannot hold (issue 15):
/// an int beyond int32 is `ScalarOverflow` (numpy's OverflowError); a NaN, infinite or
/// out-of-range float into an integer dtype is `InvalidArgument` (numpy's scalar conversion
/// raises; `np.full` casts it to an undefined value). In range: finite floats truncate toward
/// zero, int64 keeps every bit, bool is the value's truthiness. Each accepted value is checked
/// as a source and fused into an expression, at a random chunking.
pub fn full_checks_the_value(cx: &mut Cx) -> Result<()> {
    use tessera::{Error, Scalar};
    let (i32_max, i32_min) = (i64::from(i32::MAX), i64::from(i32::MIN));
    let rng = cx.rng();
    let beyond = rng.gen_range(i32_max + 1..=i64::MAX);
    let below = rng.gen_range(i64::MIN..i32_min);
    let any64 = rng.gen::<i64>();
    let any32 = rng.gen::<i32>();
    let frac = rng.gen_range(-2e9..2e9f64);
    let n = rng.gen_range(1..40usize);
    let chunk = rng.gen_range(1..=n);
    let s = cx.s.clone();
    for (v, dt) in [
        (Scalar::Int(1 << 40), DType::I32),
        (Scalar::Int(i32_max + 1), DType::I32),
        (Scalar::Int(i32_min - 1), DType::I32),
        (Scalar::Int(beyond), DType::I32),
        (Scalar::Int(below), DType::I32),
    ] {
        let Scalar::Int(big) = v else { unreachable!() };
        let t = s.full(&[n], v, dt);
        crate::assert_err!(
            t.execute(),
            Error::ScalarOverflow { op, value, dtype } if op == "full" && *value == big && *dtype == dt
        );
        // The error travels into expressions built on the tensor.
        crate::assert_err!(t.mul(1), Error::ScalarOverflow { .. });
        crate::assert_err!(s.ones(&[n], dt).add(&t), Error::ScalarOverflow { .. });
    }
    for (f, dt, says) in [
        (f64::INFINITY, DType::I32, "infinity"),
        (f64::NEG_INFINITY, DType::I64, "infinity"),
        (f64::NAN, DType::I32, "NaN"),
        (f64::NAN, DType::I64, "NaN"),
        (2147483648.0, DType::I32, "out of bounds"),
        (-2147483649.0, DType::I32, "out of bounds"),
        (3e9 + frac.abs(), DType::I32, "out of bounds"),
        (9.3e18, DType::I64, "out of bounds"),
        (-1e19, DType::I64, "out of bounds"),
    ] {
        let e = crate::assert_err!(
            s.full(&[n], f, dt).execute(),
            Error::InvalidArgument { op, msg } if op == "full" && msg.contains(says)
        );
        assert!(e.to_string().contains(says), "{e}");
    }
    // Floats take any int (through float64, as numpy converts a Python int) and any float.
    let got = s.full(&[n], i64::MAX, DType::F32).to_array::<f32>()?;
    assert!(got.iter().all(|&x| x == 9.223372e18f32), "{got}");
    let got = s.full(&[n], 1e300, DType::F32).to_array::<f32>()?;
    assert!(got.iter().all(|&x| x == f32::INFINITY), "{got}");
    // Accepted: (value, dtype, the value numpy stores, as i64); int64 last, as a backend
    // without 64-bit integers ends the case there.
    let cases: Vec<(Scalar, DType, i64)> = vec![
        (Scalar::Int(i32_max), DType::I32, i32_max),
        (Scalar::Int(i32_min), DType::I32, i32_min),
        (Scalar::Int(any32.into()), DType::I32, any32.into()),
        (Scalar::Float(2.7), DType::I32, 2),
        (Scalar::Float(-2.7), DType::I32, -2),
        (Scalar::Float(2147483647.9), DType::I32, i32_max),
        (Scalar::Float(-2147483648.9), DType::I32, i32_min),
        (Scalar::Bool(true), DType::I32, 1),
        (Scalar::Int(2), DType::Bool, 1),
        (Scalar::Int(1 << 40), DType::Bool, 1),
        (Scalar::Int(beyond), DType::Bool, 1),
        (Scalar::Int(0), DType::Bool, 0),
        (Scalar::Float(f64::NAN), DType::Bool, 1),
        (Scalar::Float(-0.0), DType::Bool, 0),
        (Scalar::Float(0.25), DType::Bool, 1),
        (Scalar::Int(i64::MAX), DType::I64, i64::MAX),
        (Scalar::Int(i64::MIN), DType::I64, i64::MIN),
        (Scalar::Int(any64), DType::I64, any64),
        (Scalar::Float(frac), DType::I64, frac.trunc() as i64),
        (Scalar::Float(9.2e18), DType::I64, 9_200_000_000_000_000_000),
        (Scalar::Float(i64::MIN as f64), DType::I64, i64::MIN),
    ];
    for (v, dt, want) in cases {
        let what = format!("full([{n}], {v:?}, {dt}) chunk {chunk}");
        let t = s.full(&[n], v, dt).with_chunks(&[chunk])?;
        assert_eq!(t.dtype(), dt, "{what}");
        let got = t.to_array::<i64>()?;
        assert!(got.iter().all(|&x| x == want), "{what}: {got} != {want}");
        // Fused: the fill becomes a constant inside the kernel.
        let m = t.maximum(&t)?;
        assert_eq!(m.dtype(), dt, "{what}");
        let got = m.to_array::<i64>()?;
        assert!(
            got.iter().all(|&x| x == want),
            "{what} fused: {got} != {want}"
        );
    }
    Ok(())
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

/// FNV-1a over the little-endian bytes of every element (numpy's `tobytes()` on this machine).
fn fnv1a(h: &tessera::HostArray) -> u64 {
    use tessera::HostArray as H;
    let bytes: Vec<u8> = match h {
        H::Bool(a) => a.iter().map(|&v| v as u8).collect(),
        H::I32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        H::I64(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        H::F32(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
        H::F64(a) => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// numpy's arange fill, transcribed: `x0 = start`, `x1 = start + step` stored in the dtype,
/// element `i >= 2` is `x0 + i * (x1 - x0)` in the dtype.
fn numpy_arange_bits(start: f64, step: f64, n: usize, dt: DType) -> Vec<u64> {
    let next = start + step;
    (0..n)
        .map(|i| match dt {
            DType::F64 => match i {
                0 => start,
                1 => next,
                _ => start + i as f64 * (next - start),
            }
            .to_bits(),
            _ => {
                let (x0, x1) = (start as f32, next as f32);
                match i {
                    0 => x0,
                    1 => x1,
                    _ => x0 + i as f32 * (x1 - x0),
                }
                .to_bits() as u64
            }
        })
        .collect()
}

/// arange agrees with numpy bit for bit: fixtures written by numpy 2.4 (length and an FNV-1a
/// hash of `np.arange(...).tobytes()`) for steps like 0.1, 1/3 and 1e-7 at large starts, where
/// `start + i * step` differs in the last bits; then fresh random awkward cases against numpy's
/// fill formula.
pub fn arange_numpy_bits(cx: &mut Cx) -> Result<()> {
    use DType::{Bool, F32, F64, I32, I64};
    #[rustfmt::skip]
    let fixtures: [(f64, f64, f64, DType, usize, u64); 20] = [
        (0.0, 1.0, 0.1, F64, 10, 0xd29d6271a1a107ea),
        (1e6, 1e6 + 3.0, 0.1, F64, 30, 0xe54feb9edbe03b79),
        (1e9, 1e9 + 10.0, 1.0 / 3.0, F64, 30, 0x236c7fd02b58f53e),
        (12345.678, 12345.678 + 1e-5, 1e-7, F64, 100, 0xe7b55904f6dd35aa),
        (-7.3, 9.1, 1.0 / 3.0, F64, 50, 0x0c6332674b96adb9),
        (3.0, -2.0, -0.3, F64, 17, 0xdd1af158bf0cc897),
        (0.0, 1.0, 0.1, F32, 10, 0x01d52bed36197d13),
        (1e6, 1e6 + 3.0, 0.1, F32, 30, 0x29dd7b78fc6e25cb),
        (16777216.0, 16777216.0 + 40.0, 3.3, F32, 13, 0x0b74cda20319e874),
        (-7.3, 9.1, 1.0 / 3.0, F32, 50, 0x23a80131b2f81603),
        (100.5, 100.5 + 1e-3, 1e-5, F32, 101, 0x24a3b0b371752fd6),
        (0.5, 5.0, 0.7, I64, 7, 0x8e0ce641141d6c82),
        (-2.5, 3.0, 1.5, I32, 4, 0x9df2e24e35a61e2d),
        (-0.5, 3.0, 1.0, I64, 4, 0x0c8210784d8af5a5),
        // The quotient underflows to +0 (kept: one element) or -0 (empty), as in numpy.
        (0.0, 1e-300, 1e300, F64, 1, 0xa8c7f832281a39c5),
        (0.0, -1e-300, 1e300, F64, 0, 0xcbf29ce484222325),
        (0.0, 5.0, f64::INFINITY, F64, 1, 0xa8c7f832281a39c5),
        (0.0, 5.0, f64::NEG_INFINITY, F64, 0, 0xcbf29ce484222325),
        (5.0, 5.0, 1.0, F64, 0, 0xcbf29ce484222325),
        (0.0, -1.0, -0.5, Bool, 2, 0x08328707b4eb6e3a),
    ];
    for (start, stop, step, dt, n, hash) in fixtures {
        let what = format!("arange({start}, {stop}, {step}, {dt})");
        let got =
            cx.chunk_invariant(&what, |ch| ch.apply(cx.s.arange(start, stop, step, dt)?, 0))?;
        assert_eq!(got.dtype(), dt, "{what}: dtype [{}]", cx.tag());
        assert_eq!(got.shape(), &[n], "{what}: numpy's length [{}]", cx.tag());
        assert_eq!(
            fnv1a(&got),
            hash,
            "{what}: bits differ from numpy's {:?} [{}]",
            values(&got),
            cx.tag()
        );
    }
    for dt in [F32, F64] {
        for _ in 0..4 {
            let start = cx.value(Dom::Range(-1e7, 1e7));
            let step = [0.1, 1.0 / 3.0, 1e-7, 0.7][cx.rng().gen_range(0..4)]
                * cx.value(Dom::Range(0.5, 2.0))
                * if cx.rng().gen() { 1.0 } else { -1.0 };
            let n_want = cx.rng().gen_range(2..300usize);
            let stop = start + step * (n_want as f64 - 0.5);
            let n = ((stop - start) / step).ceil() as usize;
            let what = format!("arange({start}, {stop}, {step}, {dt})");
            let got =
                cx.chunk_invariant(&what, |ch| ch.apply(cx.s.arange(start, stop, step, dt)?, 0))?;
            let bits: Vec<u64> = match &got {
                tessera::HostArray::F64(a) => a.iter().map(|v| v.to_bits()).collect(),
                tessera::HostArray::F32(a) => a.iter().map(|v| v.to_bits() as u64).collect(),
                other => panic!("{what}: dtype {}", other.dtype()),
            };
            assert_eq!(
                bits,
                numpy_arange_bits(start, step, n, dt),
                "{what}: numpy's fill [{}]",
                cx.tag()
            );
        }
    }
    Ok(())
}

/// Arguments numpy's arange refuses are typed errors: NaN anywhere, an infinite start or
/// stop, a zero step, integers out of the dtype, a bool result longer than 2.
pub fn arange_rejects_bad_arguments(cx: &mut Cx) -> Result<()> {
    use tessera::Error;
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    for (start, stop, step, dt) in [
        (0.0, nan, 1.0, DType::F64),
        (nan, 5.0, 1.0, DType::F64),
        (0.0, 5.0, nan, DType::F32),
        (0.0, 0.0, nan, DType::F64),
        (0.0, inf, 1.0, DType::F64),
        (0.0, -inf, -1.0, DType::F64),
        (inf, 5.0, -1.0, DType::F64),
        (0.0, 5.0, 0.0, DType::F64),
        (0.0, 0.0, 0.0, DType::I32),
        (-1e308, 1e308, 1.0, DType::F64),
        (3e9, 0.0, -1e9, DType::I32),
        (2147483646.0, 2147483650.0, 2.0, DType::I32),
        (0.0, 3.0, 1.0, DType::Bool),
    ] {
        crate::assert_err!(
            cx.s.arange(start, stop, step, dt),
            Error::InvalidArgument { op, .. } if op == "arange"
        );
    }
    // In bounds: numpy's `np.arange(0, 3e9, 1e9, dtype=np.int32)`.
    let got = cx.s.arange(0.0, 3e9, 1e9, DType::I32)?.to_array::<i32>()?;
    assert_eq!(got.as_slice().unwrap(), &[0, 1_000_000_000, 2_000_000_000]);
    Ok(())
}

/// Data held outside Tessera for `from_external`: counts its reads and the largest box read;
/// with `in_memory` it also offers its elements to be read in place.
#[derive(Debug)]
struct Held {
    data: tessera::HostArray,
    reads: std::sync::atomic::AtomicUsize,
    largest: std::sync::atomic::AtomicUsize,
    in_memory: bool,
}

impl Held {
    fn new(data: tessera::HostArray, in_memory: bool) -> Held {
        Held {
            data,
            reads: 0.into(),
            largest: 0.into(),
            in_memory,
        }
    }
}

impl tessera::external::ExternalArray for Held {
    fn shape(&self) -> &[usize] {
        self.data.shape()
    }
    fn dtype(&self) -> DType {
        self.data.dtype()
    }
    fn read(&self, region: &tessera::array::Region) -> Result<tessera::HostArray> {
        use std::sync::atomic::Ordering;
        tessera::external::check_region("held", region, self.data.shape())?;
        let n: usize = region.iter().map(|&(s, e)| e - s).product();
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(n, Ordering::Relaxed);
        Ok(self.data.slice_region(region, None))
    }
    fn describe(&self) -> String {
        format!("held array of shape {:?}", self.data.shape())
    }
    fn flat(&self) -> Option<tessera::HostSlice<'_>> {
        self.in_memory
            .then(|| tessera::HostSlice::of(&self.data))
            .flatten()
    }
}

/// A source over data held outside Tessera (a numpy buffer read in place, a file) gives its
/// values at every chunking, reads it box by box (never the whole array when it is chunked),
/// and is let go once no tensor refers to it.
pub fn from_external(cx: &mut Cx) -> Result<()> {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    for dt in [DType::Bool, DType::I32, DType::I64, DType::F32, DType::F64] {
        for shape in [&[13usize, 7][..], &[6, 5, 7], &[11]] {
            let dom = if dt == DType::Bool {
                Dom::Bool(0.5)
            } else {
                Dom::Range(-1e3, 1e3)
            };
            let h = to_host(&cx.data(shape, dom), dt);
            let want = values(&h);
            let held = Arc::new(Held::new(h, false));
            let s = cx.s.clone();
            let src = held.clone();
            cx.source(
                &format!("from_external({shape:?}, {dt})"),
                |ch| ch.apply(s.from_external(src.clone()), 0),
                dt,
                &want,
            )?;
            drop(src);
            let size: usize = shape.iter().product();
            let reads = held.reads.load(Ordering::Relaxed);
            assert!(reads > 0, "[{}]", cx.tag());
            if !matches!(cx.ch, super::Chunking::One) {
                assert!(reads > 1, "read box by box, not whole [{}]", cx.tag());
            }
            assert!(held.largest.load(Ordering::Relaxed) <= size);
            assert_eq!(
                Arc::strong_count(&held),
                1,
                "the graph let the data go with its last tensor [{}]",
                cx.tag()
            );
        }
    }
    // A box outside the data is an error naming it, never a read out of bounds.
    let held = Held::new(
        to_host(&cx.data(&[4, 3], Dom::Range(-1.0, 1.0)), DType::F64),
        false,
    );
    let e = tessera::external::ExternalArray::read(&held, &vec![(0, 5), (0, 3)]).unwrap_err();
    assert!(e.to_string().contains("[4, 3]"), "{e}");
    Ok(())
}

/// An external array whose elements are in memory in row-major order (a numpy buffer) is read
/// in place by the fused kernels that consume it, as a constant is: an elementwise chain and a
/// reduction over it copy no box out of it, at every chunking, and give the bits of the same
/// program over a copy of the data.
pub fn external_in_place(cx: &mut Cx) -> Result<()> {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    for dt in [DType::I32, DType::I64, DType::F32, DType::F64] {
        for shape in [&[13usize, 7][..], &[6, 5, 7], &[11]] {
            let h = cx.host(shape, Dom::Range(-1e3, 1e3), dt);
            let vx = values(&h);
            let held = Arc::new(Held::new(h.clone(), true));
            let ch = cx.ch;
            let chain = |x: Tensor| (x * 2.0 + 1.0).astype(dt);
            let programs: [(&str, &dyn Fn(Tensor) -> Result<Tensor>); 2] = [
                ("x * 2 + 1", &|x| chain(x)),
                ("sum(x * 2 + 1, axis=0)", &|x| chain(x)?.sum(0, false)),
            ];
            for (k, (name, program)) in programs.iter().enumerate() {
                let what = format!("{name} over {shape:?} {dt} read in place");
                held.reads.store(0, Ordering::Relaxed);
                let ext = ch.apply(cx.s.from_external(held.clone()), 0)?;
                let Some(got) =
                    cx.skip_unsupported(&what, program(ext).and_then(|t| t.execute()))?
                else {
                    continue;
                };
                // A remote executor copies each box on the driver by design: the data has to
                // travel to the worker (the values are still checked).
                if cx.s.remote().is_none() {
                    assert_eq!(
                        held.reads.load(Ordering::Relaxed),
                        0,
                        "{what}: a box was copied out of data the kernel reads in place [{}]",
                        cx.tag()
                    );
                }
                let copy = program(cx.tensor(&h, 0)?)?.execute()?;
                cx.assert_bit_identical(&what, &got, &copy);
                let ew = vx.mapv(|v| fit(v * 2.0 + 1.0, dt));
                let (want, rdt, n) = if k == 0 {
                    (ew, dt, 2)
                } else {
                    // numpy sums int32 to int64.
                    let rdt = if dt == DType::I32 { DType::I64 } else { dt };
                    (ew.sum_axis(ndarray::Axis(0)), rdt, shape[0])
                };
                cx.assert_close(&what, &got, rdt, &want, Tol::accumulated(rdt, n, 2e3));
            }
            // The source itself (no kernel consumes it) is read box by box, as before.
            let v = ch.apply(cx.s.from_external(held.clone()), 0)?.execute()?;
            cx.assert_bit_identical("in-memory external source", &v, &h);
            assert_eq!(
                Arc::strong_count(&held),
                1,
                "the graph let the data go [{}]",
                cx.tag()
            );
        }
    }
    Ok(())
}

/// A result written to a `.npy` file and to a Zarr array chunk by chunk and read back from them
/// chunk by chunk is bit-identical to the result executed in memory, on every backend and
/// chunking.
pub fn npy_round_trip(cx: &mut Cx) -> Result<()> {
    let token: u64 = cx.rng().gen();
    let dir = std::env::temp_dir().join(format!("tessera-conformance-npy-{token:016x}"));
    std::fs::create_dir(&dir).map_err(tessera::Error::from)?;
    let out = (|| -> Result<()> {
        for dt in [DType::I32, DType::F32, DType::F64] {
            for shape in [&[13usize, 7][..], &[6, 5, 7], &[11]] {
                let h = cx.host(shape, Dom::Range(-1e3, 1e3), dt);
                let what = format!("npy round trip of x * 2 + 1, {shape:?} {dt}");
                let path = dir.join("r.npy");
                let expr = |x: Tensor| (x * 2.0 + 1.0).astype(dt);
                let Some(want) =
                    cx.skip_unsupported(&what, expr(cx.tensor(&h, 0)?).and_then(|t| t.execute()))?
                else {
                    continue;
                };
                expr(cx.tensor(&h, 0)?)?.to_npy(&path)?;
                let back = cx.ch.apply(tessera::io::load_npy(&cx.s, &path, None)?, 1)?;
                let got = back.execute()?;
                cx.assert_bit_identical(&what, &got, &want);
                std::fs::remove_file(&path).map_err(tessera::Error::from)?;
                let zpath = dir.join("r.zarr");
                let o = tessera::io::ZarrOptions {
                    overwrite: true,
                    checksum: true,
                    ..Default::default()
                };
                expr(cx.tensor(&h, 0)?)?.to_zarr(&zpath, &o)?;
                let back = cx
                    .ch
                    .apply(tessera::io::from_zarr(&cx.s, &zpath, None)?, 1)?;
                cx.assert_bit_identical(&format!("{what} (Zarr)"), &back.execute()?, &want);
                let names: Vec<_> = std::fs::read_dir(&dir)
                    .map_err(tessera::Error::from)?
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<std::io::Result<_>>()
                    .map_err(tessera::Error::from)?;
                assert_eq!(
                    names.len(),
                    1,
                    "{what}: only the file, no temporary left [{}]",
                    cx.tag()
                );
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    out
}
