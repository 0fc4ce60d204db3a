//! The conformance suite: test bodies shared by every backend, checked against references
//! computed in f64 with plain ndarray code (`reference`), independently of the tiler.
//!
//! `conformance_suite!(backend, factory)` instantiates the suite for one backend. `factory` is a
//! closure returning an `Option<Session>`, a `Result<Session, E: Display>` or a `Session`; when
//! it yields no session, every test prints `skipped: <backend>: <reason>` and passes.
//!
//! Most bodies are *chunked*: they run once per chunking (`chunking::*`) as separate tests.
//! Inputs are fresh random data each run; the seed is printed (shown on failure) and can be
//! fixed with `TESSERA_TEST_SEED=<seed>`. Elementwise results must be bit-identical to the
//! one-chunk run and match the reference within a tolerance fitting the result dtype.

pub mod reference;

mod creation;
mod elementwise;
mod errors;
mod factor;
mod gather;
mod linalg;
mod manipulation;
mod misc;
mod movement;
mod random;
mod reduction;
mod searching;
mod sorting;

/// Test bodies by name, as the suite macro refers to them.
pub mod cases {
    pub use super::creation::*;
    pub use super::elementwise::*;
    pub use super::errors::*;
    pub use super::factor::*;
    pub use super::gather::*;
    pub use super::linalg::*;
    pub use super::manipulation::*;
    pub use super::misc::*;
    pub use super::movement::*;
    pub use super::random::*;
    pub use super::reduction::*;
    pub use super::searching::*;
    pub use super::sorting::*;
}

use ndarray::{ArrayD, Dimension, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tessera::{DType, Error, HostArray, Result, Session, Tensor};

/// Instantiates the conformance suite for one backend: `conformance_suite!(cpu, || ...)`.
///
/// Chunked cases expand to a module with one test per chunking; a case may list its chunkings
/// explicitly to put attributes (e.g. `#[ignore = "BUG: ..."]`) on some of them:
/// `name [one_chunk, uneven, #[ignore = "BUG: ..."] unit, mixed, budget]`.
///
/// A third argument `accept_unsupported` lets a case end early with the backend's own
/// `Error::Unsupported` (a dtype or op the backend documents as missing, e.g. int64 arithmetic
/// on wgpu): the case prints `unsupported: ...` and passes. Every other error still fails, and
/// backends without the flag must run everything.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $factory:expr) => {
        $crate::conformance_suite!(@suite $backend, $factory, false);
    };
    ($backend:ident, $factory:expr, accept_unsupported) => {
        $crate::conformance_suite!(@suite $backend, $factory, true);
    };
    (@suite $backend:ident, $factory:expr, $accept:expr) => {
        mod $backend {
            fn session() -> Option<tessera::Session> {
                $crate::conformance::open(stringify!($backend), $factory)
            }
            /// Whether the backend's own `Unsupported` errors end a case without failing it.
            const ACCEPT_UNSUPPORTED: bool = $accept;
            $crate::conformance_suite!(@chunked session;
                // creation
                arange, arange_numpy_bits, linspace, eye, full_zeros_ones, from_vec_and_array,
                from_external, external_in_place, npy_round_trip,
                // random
                random_same_seed_any_chunking, random_ranges, random_moments, random_draws_differ,
                randint_bounds,
                // unary elementwise
                neg, abs, sign, sqrt, exp, log, log1p, expm1, sin, cos, tan, tanh, arcsin, arccos,
                arctan, floor, ceil, round, logical_not, isnan, isinf, isfinite,
                sinh, cosh, arcsinh, arccosh, arctanh, log2, log10, exp2, cbrt, trunc, square,
                reciprocal, signbit, bitwise_invert,
                // binary elementwise (same shape, broadcast across chunks, scalars)
                add, sub, mul, div, floor_divide, rem, pow, maximum, minimum, eq, ne, lt, le, gt, ge,
                logical_and, logical_or, logical_xor, arctan2, hypot, copysign, logaddexp,
                nextafter, bitwise_and, bitwise_or, bitwise_xor, bitwise_left_shift,
                bitwise_right_shift, bitwise_edges, float_edges,
                // other elementwise
                promotion, operators, where_, clip, astype, fused_chain, weak_int_out_of_range,
                weak_scalar_kinds, clip_promotes_once, bool_int_ops_dtype,
                // reductions
                sum, prod, mean, var, std_dev, min, max, any, all, argmin, argmax, reduce_of_expression,
                // searching and counting
                searchsorted_positions, bincount_counts, histogram_equal_bins,
                histogram_explicit_edges, partition_invariants,
                // sorting
                sort_argsort, sort_in_expressions, topk_values_and_positions, knn_matches_brute_force,
                // scans, gathers, data-dependent lengths
                cumsum_cumprod, take_gathers, take_along_axis_cases, nonzero_and_masks,
                unique_all_cases,
                // movement
                reshape, transpose, transpose_t, swapaxes, expand_dims_squeeze, broadcast_to,
                slice_steps, slice_negative_steps, slice_index_newaxis_ellipsis, slice_empty,
                slice_random, concatenate, stack, rechunk,
                // Array API composites
                flip, roll, tile, repeat, moveaxis_permute, unstack_broadcast_arrays, tril_triu,
                meshgrid_cases, diff, vecdot_count_nonzero,
                // linear algebra
                matmul_2d, matmul_batched, matmul_vector, matmul_int, dot, tensordot_axes,
                tensordot_n, gram_matrix, qr_factors, svd_factors, eigh_factors, cholesky_solve_inv_det,
                blocked_cholesky_and_triangular_solves,
                tsqr_r_only,
                linalg_composites,
                // zero-size arrays, eager mode
                zero_size_reductions, zero_size_movement, zero_size_elementwise, eager_matches_lazy,
                // large arrays, column-major inputs, several outputs at once
                large_arrays, non_standard_layout_input, execute_many_shared, fusion_chains,
                fusion_matches_unfused,
            );
            $crate::conformance_suite!(@plain session;
                floor_divide_mod_signs, round_half_to_even, nan_propagation, division_by_zero,
                int_sum_dtype, argminmax_ties_first_index, chunkings_cut_inputs,
                error_broadcast_mismatch, error_matmul_shapes, error_axis_out_of_range,
                error_bad_reshape, error_unsupported_dtype, error_index_out_of_bounds,
                error_empty_reduction, error_invalid_arguments, error_deferred_in_operators,
                error_session_mismatch,
                sort_errors,
                topk_errors,
                searchsorted_errors, bincount_errors, histogram_errors,
                gather_errors,
                sample_sort_large_1d,
                graph_json_round_trip,
                linspace_single_point,
                linspace_int_floors,
                bool_true_divide_dtype,
                arange_rejects_bad_arguments, random_rejects_bad_arguments, argminmax_zero_dim,
                full_checks_the_value,
                graph_json_non_finite,
                graph_json_float_precision,
                reshape_gather_reads_only_overlapping_chunks,
                integer_min_floor_divide, zero_length_axes_chunked, error_overflowing_shapes,
                error_hostile_sizes, error_zero_chunk_extent, error_messages_name_the_call,
                error_manipulation, linalg_errors,
            );
        }
    };
    (@chunked $session:ident; $($name:ident $([$($list:tt)*])?),* $(,)?) => {
        $($crate::conformance_suite!(@case $session; $name $([$($list)*])?);)*
    };
    (@case $session:ident; $name:ident) => {
        $crate::conformance_suite!(@case $session; $name [one_chunk, uneven, unit, mixed, budget]);
    };
    (@case $session:ident; $name:ident [$($(#[$m:meta])* $chunking:ident),* $(,)?]) => {
        mod $name {
            $(
                $(#[$m])*
                #[test]
                fn $chunking() {
                    $crate::conformance::run_with(
                        super::$session,
                        super::ACCEPT_UNSUPPORTED,
                        $crate::conformance::chunking::$chunking,
                        $crate::conformance::cases::$name,
                    );
                }
            )*
        }
    };
    (@plain $session:ident; $($(#[$m:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$m])*
            #[test]
            fn $name() {
                $crate::conformance::run_with(
                    $session,
                    ACCEPT_UNSUPPORTED,
                    $crate::conformance::Chunking::One,
                    $crate::conformance::cases::$name,
                );
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------------
// Sessions and running a body

/// What a backend factory may return.
pub trait IntoSession {
    /// The session, or why there is none.
    fn into_session(self) -> std::result::Result<Session, String>;
}
impl IntoSession for Session {
    fn into_session(self) -> std::result::Result<Session, String> {
        Ok(self)
    }
}
impl IntoSession for Option<Session> {
    fn into_session(self) -> std::result::Result<Session, String> {
        self.ok_or_else(|| "backend not available on this machine".to_string())
    }
}
impl<E: std::fmt::Display> IntoSession for std::result::Result<Session, E> {
    fn into_session(self) -> std::result::Result<Session, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Calls the factory; prints why the backend is skipped when it yields no session.
pub fn open<S: IntoSession>(backend: &str, factory: impl FnOnce() -> S) -> Option<Session> {
    match factory().into_session() {
        Ok(s) => Some(s),
        Err(reason) => {
            println!("skipped: {backend}: {reason}");
            None
        }
    }
}

/// A test body.
pub type Body = fn(&mut Cx) -> Result<()>;

/// True when `e` is the session's own backend saying it lacks a dtype or op.
fn backend_unsupported(s: &Session, e: &Error) -> bool {
    matches!(e, Error::Unsupported { backend, .. } if backend == s.backend().name())
}

/// Runs `body` at `chunking` on a fresh session (nothing when the backend is absent). With
/// `accept_unsupported`, the backend's own `Error::Unsupported` ends the case with a printed
/// `unsupported: ...` line instead of a failure.
pub fn run_with(
    session: fn() -> Option<Session>,
    accept_unsupported: bool,
    chunking: Chunking,
    body: Body,
) {
    let Some(s) = session() else { return };
    let seed = std::env::var("TESSERA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("seed {seed} (rerun with TESSERA_TEST_SEED={seed}), chunking {chunking:?}");
    s.set_chunk_bytes(chunking.chunk_bytes())
        .expect("a chunking's byte budget is positive");
    let mut cx = Cx {
        s,
        ch: chunking,
        seed,
        rng: StdRng::seed_from_u64(seed),
        session,
        accept_unsupported,
    };
    match body(&mut cx) {
        Err(e) if accept_unsupported && backend_unsupported(&cx.s, &e) => {
            let test = std::thread::current().name().unwrap_or("?").to_string();
            println!(
                "unsupported: {test}: rest of the case skipped: {e}  [{}]",
                cx.tag()
            );
        }
        Err(e) => panic!("unexpected error: {e:?}\n  [{}]", cx.tag()),
        Ok(()) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Chunkings

/// How a test cuts its inputs into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// No chunk hint: every test array fits one chunk.
    One,
    /// Chunks that do not divide the extents: `d / 3 + 1` per axis ((13, 7) -> (5, 3)).
    Uneven,
    /// Chunk size 1 on the smallest axis (if it has at most 64 elements), about half the extent
    /// elsewhere ((4, 9) -> (1, 4)).
    Unit,
    /// A different chunk shape per operand (`d / (2 + k) + 1` for operand `k`), so operand
    /// grids disagree and must be rechunked against each other.
    Mixed,
    /// No chunk hints, but a session chunk budget of 64 bytes: every node the session sizes
    /// itself (sources, broadcasts, reshapes, eager results) is cut into many small chunks.
    Budget,
}

/// The chunkings under the names of the generated tests.
#[allow(non_upper_case_globals)]
pub mod chunking {
    use super::Chunking;
    /// [`Chunking::One`].
    pub const one_chunk: Chunking = Chunking::One;
    /// [`Chunking::Uneven`].
    pub const uneven: Chunking = Chunking::Uneven;
    /// [`Chunking::Unit`].
    pub const unit: Chunking = Chunking::Unit;
    /// [`Chunking::Mixed`].
    pub const mixed: Chunking = Chunking::Mixed;
    /// [`Chunking::Budget`].
    pub const budget: Chunking = Chunking::Budget;
}

impl Chunking {
    /// The chunk shape of operand `k` of `shape`, or `None` to leave it to the session.
    pub fn chunk_shape(self, shape: &[usize], k: usize) -> Option<Vec<usize>> {
        if shape.is_empty() {
            return None;
        }
        match self {
            Chunking::One | Chunking::Budget => None,
            Chunking::Uneven => Some(shape.iter().map(|&d| d / 3 + 1).collect()),
            Chunking::Mixed => Some(shape.iter().map(|&d| d / (2 + k) + 1).collect()),
            Chunking::Unit => {
                let small = (0..shape.len())
                    .filter(|&a| shape[a] > 1 && shape[a] <= 64)
                    .min_by_key(|&a| shape[a]);
                Some(
                    (0..shape.len())
                        .map(|a| {
                            if Some(a) == small {
                                1
                            } else {
                                (shape[a] / 2).max(1)
                            }
                        })
                        .collect(),
                )
            }
        }
    }
    /// The session's chunk byte budget under this chunking.
    pub fn chunk_bytes(self) -> usize {
        match self {
            Chunking::Budget => 64,
            _ => tessera::Config::default().chunk_bytes,
        }
    }
    /// `t` cut for operand `k`.
    pub fn apply(self, t: Tensor, k: usize) -> Result<Tensor> {
        match self.chunk_shape(t.shape(), k) {
            Some(c) => t.with_chunks(&c),
            None => Ok(t),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random test data

/// Distributions of test data (drawn in f64, then cast to the tensor dtype).
#[derive(Clone, Copy, Debug)]
pub enum Dom {
    /// Uniform in [lo, hi).
    Range(f64, f64),
    /// Magnitude uniform in [lo, hi), random sign (divisors).
    Away(f64, f64),
    /// Few distinct values (multiples of 0.5 in [-2, 2], including 0) and some NaN: many ties.
    Ties,
    /// Integers uniform in [lo, hi).
    Int(i64, i64),
    /// True with probability p (as 1.0 / 0.0).
    Bool(f64),
    /// Half exact halves `k + 0.5`, half uniform in [-6, 6).
    Halves,
    /// Uniform in [-3, 3) with NaN, +inf and -inf sprinkled in.
    Special,
    /// Uniform in [lo, hi) with some NaN.
    WithNan(f64, f64),
    /// Mostly +-1, sometimes +-2 (integer products that stay exact).
    Units,
}

/// `a` as a host array of dtype `dt` (floats to ints truncate, non-zero is true).
pub fn to_host(a: &ArrayD<f64>, dt: DType) -> HostArray {
    match dt {
        DType::Bool => HostArray::Bool(a.mapv(|v| v != 0.0)),
        DType::I32 => HostArray::I32(a.mapv(|v| v as i32)),
        DType::I64 => HostArray::I64(a.mapv(|v| v as i64)),
        DType::F32 => HostArray::F32(a.mapv(|v| v as f32)),
        DType::F64 => HostArray::F64(a.clone()),
    }
}

/// `v` as a dtype-`dt` element would hold it, back in f64.
pub fn fit(v: f64, dt: DType) -> f64 {
    match dt {
        DType::Bool => (v != 0.0) as u8 as f64,
        DType::I32 => v as i32 as f64,
        DType::I64 => v as i64 as f64,
        DType::F32 => v as f32 as f64,
        DType::F64 => v,
    }
}

/// A host array's values in f64.
pub fn values(h: &HostArray) -> ArrayD<f64> {
    match h {
        HostArray::Bool(a) => a.mapv(|v| v as u8 as f64),
        HostArray::I32(a) => a.mapv(|v| v as f64),
        HostArray::I64(a) => a.mapv(|v| v as f64),
        HostArray::F32(a) => a.mapv(|v| v as f64),
        HostArray::F64(a) => a.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tolerances and comparisons

/// Allowed error: `|got - want| <= abs + rel * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// Relative part.
    pub rel: f64,
    /// Absolute part.
    pub abs: f64,
}

impl Tol {
    /// Exact equality.
    pub const EXACT: Tol = Tol { rel: 0.0, abs: 0.0 };
    /// One elementwise op computed in the result dtype (f32: a few ulps).
    pub fn elementwise(dt: DType) -> Tol {
        match dt {
            DType::F32 => Tol {
                rel: 1e-6,
                abs: 1e-7,
            },
            DType::F64 => Tol {
                rel: 1e-12,
                abs: 1e-14,
            },
            _ => Tol::EXACT,
        }
    }
    /// A reduction or dot product over `n` terms of magnitude up to `scale`.
    pub fn accumulated(dt: DType, n: usize, scale: f64) -> Tol {
        let n = n.max(1) as f64;
        match dt {
            DType::F32 => Tol {
                rel: 1e-5,
                abs: 1e-6 * n * scale,
            },
            DType::F64 => Tol {
                rel: 1e-12,
                abs: 1e-14 * n * scale,
            },
            _ => Tol::EXACT,
        }
    }
}

/// Largest finite magnitude in `a` (1 when there is none).
pub fn max_abs(a: &ArrayD<f64>) -> f64 {
    a.iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1.0)
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The test context: session, chunking, seeded data source.
pub struct Cx {
    /// The session under test.
    pub s: Session,
    /// This test's chunking.
    pub ch: Chunking,
    /// The seed of `rng`.
    pub seed: u64,
    rng: StdRng,
    session: fn() -> Option<Session>,
    accept_unsupported: bool,
}

impl Cx {
    /// "seed ..., chunking ..." for failure messages.
    pub fn tag(&self) -> String {
        format!("seed {}, chunking {:?}", self.seed, self.ch)
    }
    /// The seeded random source.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
    /// Another session of the backend under test (with this test's chunk budget).
    pub fn new_session(&self) -> Session {
        let s = (self.session)().expect("the backend was available a moment ago");
        s.set_chunk_bytes(self.ch.chunk_bytes())
            .expect("a chunking's byte budget is positive");
        s
    }
    /// Runs `f` with the session's chunk budget set for `chunking`.
    pub fn under<T>(&self, chunking: Chunking, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.s.set_chunk_bytes(chunking.chunk_bytes())?;
        let r = f();
        self.s.set_chunk_bytes(self.ch.chunk_bytes())?;
        r
    }

    /// One value from `dom`.
    pub fn value(&mut self, dom: Dom) -> f64 {
        let r = &mut self.rng;
        match dom {
            Dom::Range(lo, hi) => r.gen_range(lo..hi),
            Dom::Away(lo, hi) => {
                let m = r.gen_range(lo..hi);
                if r.gen_bool(0.5) {
                    m
                } else {
                    -m
                }
            }
            Dom::Ties => {
                if r.gen_bool(0.05) {
                    f64::NAN
                } else {
                    r.gen_range(-4..=4) as f64 * 0.5
                }
            }
            Dom::Int(lo, hi) => r.gen_range(lo..hi) as f64,
            Dom::Bool(p) => r.gen_bool(p) as u8 as f64,
            Dom::Halves => {
                if r.gen_bool(0.5) {
                    r.gen_range(-6..6) as f64 + 0.5
                } else {
                    r.gen_range(-6.0..6.0)
                }
            }
            Dom::Special => match r.gen_range(0..20) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => r.gen_range(-3.0..3.0),
            },
            Dom::WithNan(lo, hi) => {
                if r.gen_bool(0.05) {
                    f64::NAN
                } else {
                    r.gen_range(lo..hi)
                }
            }
            Dom::Units => {
                let m = if r.gen_bool(0.1) { 2.0 } else { 1.0 };
                if r.gen_bool(0.5) {
                    m
                } else {
                    -m
                }
            }
        }
    }
    /// An array of `shape` drawn from `dom`, in f64.
    pub fn data(&mut self, shape: &[usize], dom: Dom) -> ArrayD<f64> {
        let n = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| self.value(dom)).collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches")
    }
    /// An array of `shape` drawn from `dom`, as dtype `dt`.
    pub fn host(&mut self, shape: &[usize], dom: Dom, dt: DType) -> HostArray {
        to_host(&self.data(shape, dom), dt)
    }
    /// A scalar drawn from `dom` that a dtype-`dt` tensor holds exactly.
    pub fn scalar(&mut self, dom: Dom, dt: DType) -> f64 {
        let v = self.value(dom);
        fit(v, dt)
    }

    /// `h` as operand `k` of an expression, cut by `chunking`.
    pub fn tensor_at(&self, chunking: Chunking, h: &HostArray, k: usize) -> Result<Tensor> {
        chunking.apply(self.s.from_host(h.clone()), k)
    }
    /// `h` as operand `k` of an expression, cut by this test's chunking.
    pub fn tensor(&self, h: &HostArray, k: usize) -> Result<Tensor> {
        self.tensor_at(self.ch, h, k)
    }
    /// Runs `build` on `inputs` (operand `k` cut for `k`) at `chunking`.
    pub fn eval(
        &self,
        chunking: Chunking,
        inputs: &[&HostArray],
        build: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    ) -> Result<HostArray> {
        let ts = inputs
            .iter()
            .enumerate()
            .map(|(k, h)| self.tensor_at(chunking, h, k))
            .collect::<Result<Vec<_>>>()?;
        self.under(chunking, || build(&ts)?.execute())
    }

    /// Checks an elementwise-like expression (also sources and data movement): result dtype,
    /// values against `want` within the dtype's elementwise tolerance, and bit-identity with
    /// the one-chunk result.
    pub fn ew(
        &self,
        what: &str,
        inputs: &[&HostArray],
        build: impl Fn(&[Tensor]) -> Result<Tensor>,
        dtype: DType,
        want: &ArrayD<f64>,
    ) -> Result<()> {
        self.ew_tol(what, inputs, build, dtype, want, Tol::elementwise(dtype))
    }
    /// [`Cx::ew`] with an explicit tolerance.
    pub fn ew_tol(
        &self,
        what: &str,
        inputs: &[&HostArray],
        build: impl Fn(&[Tensor]) -> Result<Tensor>,
        dtype: DType,
        want: &ArrayD<f64>,
        tol: Tol,
    ) -> Result<()> {
        let Some(got) = self.skip_unsupported(what, self.eval(self.ch, inputs, &build))? else {
            return Ok(());
        };
        if self.ch != Chunking::One {
            let one = self.eval(Chunking::One, inputs, &build)?;
            self.assert_bit_identical(what, &got, &one);
        }
        self.assert_close(what, &got, dtype, want, tol);
        Ok(())
    }
    /// [`Cx::ew`] demanding exact values (data movement).
    pub fn exact(
        &self,
        what: &str,
        inputs: &[&HostArray],
        build: impl Fn(&[Tensor]) -> Result<Tensor>,
        dtype: DType,
        want: &ArrayD<f64>,
    ) -> Result<()> {
        self.ew_tol(what, inputs, build, dtype, want, Tol::EXACT)
    }
    /// Runs a source expression (`build` cuts what it makes by the chunking it is given) at
    /// this test's chunking, checks it is bit-identical to the one-chunk run, returns it.
    pub fn chunk_invariant(
        &self,
        what: &str,
        build: impl Fn(Chunking) -> Result<Tensor>,
    ) -> Result<HostArray> {
        let got = build(self.ch)?.execute()?;
        if self.ch != Chunking::One {
            let one = self.under(Chunking::One, || build(Chunking::One)?.execute())?;
            self.assert_bit_identical(what, &got, &one);
        }
        Ok(got)
    }
    /// [`Cx::chunk_invariant`], then checks dtype and values against `want`.
    pub fn source(
        &self,
        what: &str,
        build: impl Fn(Chunking) -> Result<Tensor>,
        dtype: DType,
        want: &ArrayD<f64>,
    ) -> Result<()> {
        let got = self.chunk_invariant(what, build)?;
        self.assert_close(what, &got, dtype, want, Tol::elementwise(dtype));
        Ok(())
    }
    /// Checks an expression whose rounding may depend on the chunking (reductions, matmul):
    /// result dtype and values against `want` within `tol`.
    pub fn approx(
        &self,
        what: &str,
        inputs: &[&HostArray],
        build: impl Fn(&[Tensor]) -> Result<Tensor>,
        dtype: DType,
        want: &ArrayD<f64>,
        tol: Tol,
    ) -> Result<()> {
        let Some(got) = self.skip_unsupported(what, self.eval(self.ch, inputs, &build))? else {
            return Ok(());
        };
        self.assert_close(what, &got, dtype, want, tol);
        Ok(())
    }

    /// `Ok(None)` (and a printed `unsupported: ...` line) when the suite accepts the backend's
    /// own `Unsupported` errors and `r` is one; otherwise `r`.
    pub fn skip_unsupported<T>(&self, what: &str, r: Result<T>) -> Result<Option<T>> {
        match r {
            Err(e) if self.accept_unsupported && backend_unsupported(&self.s, &e) => {
                println!("unsupported: {what}: {e}  [{}]", self.tag());
                Ok(None)
            }
            r => r.map(Some),
        }
    }

    /// Asserts two results have the same dtype, shape and bits.
    pub fn assert_bit_identical(&self, what: &str, got: &HostArray, one: &HostArray) {
        assert_eq!(
            got.dtype(),
            one.dtype(),
            "{what}: dtype differs from the one-chunk run [{}]",
            self.tag()
        );
        assert_eq!(
            got.shape(),
            one.shape(),
            "{what}: shape differs from the one-chunk run [{}]",
            self.tag()
        );
        let (g, o) = (values(got), values(one));
        if let Some((i, (a, b))) = g
            .indexed_iter()
            .zip(o.iter())
            .map(|((i, a), b)| (i, (a, b)))
            .find(|(_, (a, b))| !same_bits(**a, **b))
        {
            panic!(
                "{what}: not bit-identical to the one-chunk run at {:?}: {a:e} vs {b:e} [{}]",
                i.slice(),
                self.tag()
            );
        }
    }

    /// Asserts `got` has dtype `dtype`, the shape of `want` and values within `tol` (NaN
    /// matches NaN; infinities must be equal).
    pub fn assert_close(
        &self,
        what: &str,
        got: &HostArray,
        dtype: DType,
        want: &ArrayD<f64>,
        tol: Tol,
    ) {
        assert_eq!(got.dtype(), dtype, "{what}: dtype [{}]", self.tag());
        assert_eq!(got.shape(), want.shape(), "{what}: shape [{}]", self.tag());
        let g = values(got);
        for ((i, &a), &b) in g.indexed_iter().zip(want.iter()) {
            let ok = if b.is_nan() {
                a.is_nan()
            } else if b.is_infinite() {
                a == b
            } else {
                (a - b).abs() <= tol.abs + tol.rel * b.abs()
            };
            assert!(
                ok,
                "{what}: at {:?} got {a:e}, want {b:e} (tolerance {tol:?})\n  got  {g:?}\n  want {want:?}\n  [{}]",
                i.slice(),
                self.tag()
            );
        }
    }
}

/// Asserts `r` failed with an error matching `pat` (and `cond`), printing it.
#[macro_export]
macro_rules! assert_err {
    ($r:expr, $pat:pat $(if $cond:expr)?) => {{
        match $r {
            Err(e) => {
                let ok = matches!(&e, $pat $(if $cond)?);
                assert!(ok, "{}: wrong error {e:?}", stringify!($r));
                e
            }
            Ok(v) => panic!("{}: expected an error, got {v:?}", stringify!($r)),
        }
    }};
}

/// Executes a tensor expression and expects an error matching `pat`.
pub fn exec_err(t: Result<Tensor>) -> Error {
    match t.and_then(|t| t.execute()) {
        Err(e) => e,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}
