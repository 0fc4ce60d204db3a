//! Block columns for the fused-kernel interpreter (`fused.rs`): typed registers that live for a
//! whole kernel run on one thread, typed views of them, and the loops that apply one
//! elementwise function to a block. The op tables in `elementwise.rs` pick the function; the
//! loops here run it over one block, writing straight into a register or into the kernel's
//! output buffer (never into a fresh allocation).

use std::mem::MaybeUninit;
use tessera_runtime::{DType, Elem, Error, HostArray, Result};

/// A register: one block-sized column of one dtype, reused from block to block.
#[derive(Debug)]
pub(crate) enum Column {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Default for Column {
    fn default() -> Self {
        Column::Bool(Vec::new())
    }
}

/// A read-only typed slice: a register, an input read in place, or a one-value scalar.
pub(crate) use tessera_runtime::HostSlice as Slice;

/// A typed destination that is written, never read: a register or a block of the kernel's
/// (uninitialized) output buffer.
pub(crate) enum Dest<'a> {
    Bool(&'a mut [MaybeUninit<bool>]),
    I32(&'a mut [MaybeUninit<i32>]),
    I64(&'a mut [MaybeUninit<i64>]),
    F32(&'a mut [MaybeUninit<f32>]),
    F64(&'a mut [MaybeUninit<f64>]),
}

/// An operand of one block: a column or one value for every element.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Opnd<'a, T> {
    Col(&'a [T]),
    Scalar(T),
}

/// A value as the interpreter sees it: a column, or a scalar (a slice of one value).
#[derive(Debug, Clone, Copy)]
pub(crate) enum View<'a> {
    Col(Slice<'a>),
    Scalar(Slice<'a>),
}

/// Element types of block columns: the dtype's variants of [`Slice`] and [`Dest`].
pub(crate) trait El: Elem {
    fn slice(s: Slice<'_>) -> Option<&[Self]>;
    fn dest(d: Dest<'_>) -> Option<&mut [MaybeUninit<Self>]>;
    fn to_dest(d: &mut [MaybeUninit<Self>]) -> Dest<'_>;
}

macro_rules! el {
    ($t:ty, $v:ident) => {
        impl El for $t {
            fn slice(s: Slice<'_>) -> Option<&[Self]> {
                match s {
                    Slice::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn dest(d: Dest<'_>) -> Option<&mut [MaybeUninit<Self>]> {
                match d {
                    Dest::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn to_dest(d: &mut [MaybeUninit<Self>]) -> Dest<'_> {
                Dest::$v(d)
            }
        }
    };
}
el!(bool, Bool);
el!(i32, I32);
el!(i64, I64);
el!(f32, F32);
el!(f64, F64);

/// Runs `$body` with `$x` bound to the inner value of a typed enum (Column, Slice, Dest).
macro_rules! on_typed {
    ($ty:ident, $val:expr, $x:ident => $body:expr) => {
        match $val {
            $ty::Bool($x) => $body,
            $ty::I32($x) => $body,
            $ty::I64($x) => $body,
            $ty::F32($x) => $body,
            $ty::F64($x) => $body,
        }
    };
}
pub(crate) use on_typed;

/// The dtype of a typed slice's elements.
fn dtype_of<T: Elem>(_: &[T]) -> DType {
    T::DTYPE
}

/// Views `v` as `&mut [MaybeUninit<T>]` for the write-only loops.
fn uninit_view<T>(v: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's size, alignment and layout. Every user of a `Dest` only
    // stores initialized values through it (`MaybeUninit::write`), so the memory behind `v`
    // stays initialized and `v` stays valid after the borrow ends.
    unsafe { &mut *(v as *mut [T] as *mut [MaybeUninit<T>]) }
}

impl Column {
    /// Makes this register a column of `dtype` holding at least `len` values (allocates only
    /// when the dtype changes or the column is too short).
    pub(crate) fn ensure(&mut self, dtype: DType, len: usize) {
        fn grow<T: Default + Clone>(v: &mut Vec<T>, len: usize) {
            if v.len() < len {
                v.resize(len, T::default());
            }
        }
        if self.dtype() != dtype {
            *self = match dtype {
                DType::Bool => Column::Bool(Vec::new()),
                DType::I32 => Column::I32(Vec::new()),
                DType::I64 => Column::I64(Vec::new()),
                DType::F32 => Column::F32(Vec::new()),
                DType::F64 => Column::F64(Vec::new()),
            };
        }
        on_typed!(Column, self, v => grow(v, len));
    }

    pub(crate) fn dtype(&self) -> DType {
        on_typed!(Column, self, v => dtype_of(v.as_slice()))
    }

    /// The first `len` values.
    pub(crate) fn slice(&self, len: usize) -> Slice<'_> {
        match self {
            Column::Bool(v) => Slice::Bool(&v[..len]),
            Column::I32(v) => Slice::I32(&v[..len]),
            Column::I64(v) => Slice::I64(&v[..len]),
            Column::F32(v) => Slice::F32(&v[..len]),
            Column::F64(v) => Slice::F64(&v[..len]),
        }
    }

    /// The first `len` values as a write-only destination.
    pub(crate) fn dest(&mut self, len: usize) -> Dest<'_> {
        match self {
            Column::Bool(v) => Dest::Bool(uninit_view(&mut v[..len])),
            Column::I32(v) => Dest::I32(uninit_view(&mut v[..len])),
            Column::I64(v) => Dest::I64(uninit_view(&mut v[..len])),
            Column::F32(v) => Dest::F32(uninit_view(&mut v[..len])),
            Column::F64(v) => Dest::F64(uninit_view(&mut v[..len])),
        }
    }

    /// The single value of a 0-d or one-element host array, as a one-value column.
    pub(crate) fn scalar_of(a: &HostArray) -> Column {
        fn first<T: Copy>(a: &ndarray::ArrayD<T>) -> Vec<T> {
            a.iter().take(1).copied().collect()
        }
        match a {
            HostArray::Bool(x) => Column::Bool(first(x)),
            HostArray::I32(x) => Column::I32(first(x)),
            HostArray::I64(x) => Column::I64(first(x)),
            HostArray::F32(x) => Column::F32(first(x)),
            HostArray::F64(x) => Column::F64(first(x)),
        }
    }

    /// A one-value column of the first value of `s`.
    pub(crate) fn one_of(s: Slice<'_>) -> Column {
        match s {
            Slice::Bool(x) => Column::Bool(x[..1].to_vec()),
            Slice::I32(x) => Column::I32(x[..1].to_vec()),
            Slice::I64(x) => Column::I64(x[..1].to_vec()),
            Slice::F32(x) => Column::F32(x[..1].to_vec()),
            Slice::F64(x) => Column::F64(x[..1].to_vec()),
        }
    }

    /// A 0-d host array of this column's first value.
    pub(crate) fn to_scalar_array(&self) -> HostArray {
        fn zero_d<T: Elem>(v: &[T]) -> HostArray {
            T::wrap(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), v[0]))
        }
        on_typed!(Column, self, v => zero_d(v))
    }
}

/// Values in a typed slice.
pub(crate) fn slice_len(s: &Slice<'_>) -> usize {
    on_typed!(Slice, s, x => x.len())
}

/// A typed slice's first value, for compiled kernels.
pub(crate) fn slice_ptr(s: &Slice<'_>) -> *const std::ffi::c_void {
    on_typed!(Slice, s, x => x.as_ptr().cast())
}

/// A destination's first slot, for compiled kernels.
pub(crate) fn dest_ptr(d: Dest<'_>) -> *mut std::ffi::c_void {
    on_typed!(Dest, d, x => x.as_mut_ptr().cast())
}

impl<'a> View<'a> {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            View::Col(s) | View::Scalar(s) => s.dtype(),
        }
    }

    /// The typed operand; `Err` when the dtype is not `T` (a kernel the fuser typed wrongly).
    pub(crate) fn typed<T: El>(self, op: &str) -> Result<Opnd<'a, T>> {
        let bad = || Error::Backend {
            backend: "cpu".into(),
            msg: format!(
                "fused {op}: operand is {}, expected {}",
                self.dtype(),
                T::DTYPE
            ),
        };
        Ok(match self {
            View::Col(s) => Opnd::Col(T::slice(s).ok_or_else(bad)?),
            View::Scalar(s) => Opnd::Scalar(T::slice(s).ok_or_else(bad)?[0]),
        })
    }
}

impl<'a> Dest<'a> {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Dest::Bool(_) => DType::Bool,
            Dest::I32(_) => DType::I32,
            Dest::I64(_) => DType::I64,
            Dest::F32(_) => DType::F32,
            Dest::F64(_) => DType::F64,
        }
    }

    /// The first `m` slots and the rest.
    pub(crate) fn split_at(self, m: usize) -> (Dest<'a>, Dest<'a>) {
        macro_rules! split {
            ($($v:ident),*) => {
                match self {
                    $(Dest::$v(x) => {
                        let (a, b) = x.split_at_mut(m);
                        (Dest::$v(a), Dest::$v(b))
                    })*
                }
            };
        }
        split!(Bool, I32, I64, F32, F64)
    }

    /// The typed destination; `Err` when its dtype is not `U`.
    pub(crate) fn typed<U: El>(self, op: &str) -> Result<&'a mut [MaybeUninit<U>]> {
        let dt = self.dtype();
        U::dest(self).ok_or_else(|| Error::Backend {
            backend: "cpu".into(),
            msg: format!("fused {op}: result is {}, destination is {dt}", U::DTYPE),
        })
    }
}

/// `out[i] = f(a[i])`.
#[inline]
pub(crate) fn run1<T: Copy, U: Copy>(
    a: Opnd<'_, T>,
    out: &mut [MaybeUninit<U>],
    f: impl Fn(T) -> U,
) {
    match a {
        Opnd::Col(x) => {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(f(v));
            }
        }
        Opnd::Scalar(v) => {
            let r = f(v);
            for o in out.iter_mut() {
                o.write(r);
            }
        }
    }
}

/// `out[i] = f(a[i], b[i])`.
#[inline]
pub(crate) fn run2<T: Copy, U: Copy>(
    a: Opnd<'_, T>,
    b: Opnd<'_, T>,
    out: &mut [MaybeUninit<U>],
    f: impl Fn(T, T) -> U,
) {
    match (a, b) {
        (Opnd::Col(x), Opnd::Col(y)) => {
            for (o, (&p, &q)) in out.iter_mut().zip(x.iter().zip(y)) {
                o.write(f(p, q));
            }
        }
        (Opnd::Col(x), Opnd::Scalar(q)) => {
            for (o, &p) in out.iter_mut().zip(x) {
                o.write(f(p, q));
            }
        }
        (Opnd::Scalar(p), Opnd::Col(y)) => {
            for (o, &q) in out.iter_mut().zip(y) {
                o.write(f(p, q));
            }
        }
        (Opnd::Scalar(p), Opnd::Scalar(q)) => {
            let r = f(p, q);
            for o in out.iter_mut() {
                o.write(r);
            }
        }
    }
}

/// `out[i] = c[i] ? a[i] : b[i]`.
pub(crate) fn where_(c: View<'_>, a: View<'_>, b: View<'_>, out: Dest<'_>) -> Result<()> {
    fn go<T: El>(c: Opnd<'_, bool>, a: View<'_>, b: View<'_>, out: Dest<'_>) -> Result<()> {
        let (a, b) = (a.typed::<T>("where")?, b.typed::<T>("where")?);
        let out = out.typed::<T>("where")?;
        let at = |o: Opnd<'_, T>, i: usize| match o {
            Opnd::Col(x) => x[i],
            Opnd::Scalar(v) => v,
        };
        match c {
            Opnd::Scalar(c) => run1(if c { a } else { b }, out, |v| v),
            Opnd::Col(c) => match (a, b) {
                (Opnd::Col(x), Opnd::Col(y)) => {
                    for (o, ((&c, &p), &q)) in out.iter_mut().zip(c.iter().zip(x).zip(y)) {
                        o.write(if c { p } else { q });
                    }
                }
                _ => {
                    for (i, (o, &c)) in out.iter_mut().zip(c).enumerate() {
                        o.write(if c { at(a, i) } else { at(b, i) });
                    }
                }
            },
        }
        Ok(())
    }
    let c = c.typed::<bool>("where")?;
    match a.dtype() {
        DType::Bool => go::<bool>(c, a, b, out),
        DType::I32 => go::<i32>(c, a, b, out),
        DType::I64 => go::<i64>(c, a, b, out),
        DType::F32 => go::<f32>(c, a, b, out),
        DType::F64 => go::<f64>(c, a, b, out),
    }
}

/// `out = a.astype(out's dtype)` with `HostArray::cast`'s semantics (floats convert through
/// f64, integers through i64, bools through 0/1; anything to bool is its truthiness).
pub(crate) fn cast(a: View<'_>, out: Dest<'_>) -> Result<()> {
    fn from<S: El>(a: Opnd<'_, S>, out: Dest<'_>) -> Result<()> {
        fn conv<S: Elem, T: Elem>(v: S) -> T {
            match S::DTYPE {
                DType::F32 | DType::F64 => T::from_f64(v.to_f64()),
                DType::Bool => T::from_bool(v.to_bool()),
                DType::I32 | DType::I64 => T::from_i64(v.to_i64()),
            }
        }
        match out {
            Dest::Bool(o) => run1(a, o, |v| v.to_bool()),
            Dest::I32(o) => run1(a, o, conv::<S, i32>),
            Dest::I64(o) => run1(a, o, conv::<S, i64>),
            Dest::F32(o) => run1(a, o, conv::<S, f32>),
            Dest::F64(o) => run1(a, o, conv::<S, f64>),
        }
        Ok(())
    }
    match a.dtype() {
        DType::Bool => from(a.typed::<bool>("cast")?, out),
        DType::I32 => from(a.typed::<i32>("cast")?, out),
        DType::I64 => from(a.typed::<i64>("cast")?, out),
        DType::F32 => from(a.typed::<f32>("cast")?, out),
        DType::F64 => from(a.typed::<f64>("cast")?, out),
    }
}

/// `out = a` (same dtype).
pub(crate) fn copy(a: View<'_>, out: Dest<'_>) -> Result<()> {
    fn go<T: El>(a: View<'_>, out: Dest<'_>) -> Result<()> {
        run1(a.typed::<T>("copy")?, out.typed::<T>("copy")?, |v| v);
        Ok(())
    }
    match a.dtype() {
        DType::Bool => go::<bool>(a, out),
        DType::I32 => go::<i32>(a, out),
        DType::I64 => go::<i64>(a, out),
        DType::F32 => go::<f32>(a, out),
        DType::F64 => go::<f64>(a, out),
    }
}

/// `out[j] = src[base + offset_j]` for the offsets a walker yields.
pub(crate) fn gather(
    src: Slice<'_>,
    base: usize,
    offsets: impl Iterator<Item = u64>,
    out: Dest<'_>,
) -> Result<()> {
    fn go<T: El>(
        s: &[T],
        base: usize,
        offsets: impl Iterator<Item = u64>,
        out: Dest<'_>,
    ) -> Result<()> {
        for (o, off) in out.typed::<T>("load")?.iter_mut().zip(offsets) {
            o.write(s[base + off as usize]);
        }
        Ok(())
    }
    on_typed!(Slice, src, x => go(x, base, offsets, out))
}

/// The applier the op tables drive for one block of a fused kernel (unary ops).
pub(crate) struct Block1<'a, T> {
    pub a: Opnd<'a, T>,
    pub out: Dest<'a>,
    pub op: &'static str,
}

/// The applier for one block of a binary op.
pub(crate) struct Block2<'a, T> {
    pub a: Opnd<'a, T>,
    pub b: Opnd<'a, T>,
    pub out: Dest<'a>,
    pub op: &'static str,
}

impl<T: El> crate::elementwise::Apply1<T> for Block1<'_, T> {
    type Out = Result<()>;
    fn apply<U: El>(self, f: impl Fn(T) -> U + Sync + Send + Copy) -> Result<()> {
        run1(self.a, self.out.typed::<U>(self.op)?, f);
        Ok(())
    }
}

impl<T: El> crate::elementwise::Apply2<T> for Block2<'_, T> {
    type Out = Result<()>;
    fn apply<U: El>(self, f: impl Fn(T, T) -> U + Sync + Send + Copy) -> Result<()> {
        run2(self.a, self.b, self.out.typed::<U>(self.op)?, f);
        Ok(())
    }
}
