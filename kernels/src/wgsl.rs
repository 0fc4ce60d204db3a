//! WGSL renderer: `KernelIr` -> WGSL compute shader text (for wgpu; validated with naga).
//!
//! # Kernel ABI (what a wgpu backend binds and dispatches)
//!
//! - Entry point `main`, `@workgroup_size(256)`.
//! - Bindings, all in `@group(0)`, numbered in this order:
//!   1. one `var<storage, read>` buffer per IR input, `binding = input index`;
//!   2. the output buffers (`read_write`): one for elementwise kernels and most reductions, two
//!      for var/std (mean, M2) and arg reductions (value, index) — see [`output_dtypes`];
//!   3. the params buffer, `var<storage, read> params: array<u32>`, binding = inputs + outputs.
//!
//!   Every binding is statically used, so an automatic pipeline layout has all of them.
//! - Element types in buffers: f32 -> `f32`, i32 -> `i32`, f64 -> `f64`, bool -> `u32` (0 or 1:
//!   the backend widens host bytes to u32 words and narrows them back), i64 -> `vec2<u32>`
//!   (lo, hi: the same bytes as a little-endian i64). i64 appears as an output (the index of
//!   arg reductions, integer sum/prod partials) and as an input that only casts read (to f64,
//!   f32, i32, bool); any other i64 *value* in a kernel is `Error::Unsupported` (WGSL has no
//!   64-bit integers).
//! - f64 is emitted only when the kernel uses it (f64 inputs, values, or f64 partials: float
//!   sum/prod, mean, var/std accumulate in f64 as `tile::partial_dtype` says); such a shader
//!   needs naga's `Capabilities::FLOAT64` (wgpu `Features::SHADER_F64`). f64 transcendental
//!   functions (exp, log, sin, pow, the normal distribution in f64, ...) are `Unsupported`:
//!   Vulkan's GLSL.std.450 defines them only for 16/32-bit floats.
//! - Params (u32 words): the 64-bit words of [`pack_params`] split as (lo, hi):
//!   `[n, arg_base, load_offset_0, .., load_offset_{inputs-1}, seed_0, stream_0, base_0,
//!   seed_1, ...]`, i.e. word `2k` is the low half of u64 word `k` ([`pack_params_u32`] builds
//!   it). `n` = elements of the index space (< 2^32). Input `i` is read at
//!   `load_offset_i + sum_d c[d] * strides[d]`, computed in u32: the backend keeps every load
//!   offset plus the input's span below 2^32 (only the low word is read).
//! - Elementwise kernels: a grid-stride loop over a 2-D dispatch, element
//!   `e = gid.x + gid.y * num_workgroups.x * 256`, stride `num_workgroups.x * num_workgroups.y
//!   * 256`; any dispatch size is correct (use `y > 1` past 65,535 workgroups). Output 0 is the
//!   contiguous row-major `shape` array.
//! - Reductions: one workgroup per output row (row = flat index over the kept axes, which is the
//!   flat index into the output of shape `out_shape()`), `row = wg.x + wg.y * num_workgroups.x`:
//!   dispatch at least `rows` workgroups (extra ones return). The 256 threads stride over the
//!   reduced extent, then combine in a tree in workgroup memory. var/std merge per-thread
//!   Welford states (count, mean, M2) by Chan's formula; arg keeps the lowest index on ties and
//!   the first NaN; min/max propagate NaN.
//!
//! - Random draws: element `g` of a draw taking `k` Philox words (`philox::words_per_value`)
//!   runs Philox4x32-10 on counter `g / (4 / k)` and uses words `(g % (4 / k)) * k ..`, the
//!   recipe of `runtime/src/philox.rs`; 64-bit counters and `mulhi` are emulated with u32 pairs.
//!
//! # Numerics
//! Integer ops wrap; integer floor_divide/remainder by zero give 0; float floor_divide and
//! remainder follow numpy's npy_divmod with an exact fmod; round is half-to-even; maximum and
//! minimum propagate NaN; casts float -> int truncate and saturate with NaN -> 0 (Rust `as`).
//! WGSL's transcendental builtins are not correctly rounded (results can differ from the CPU in
//! the last bits), domains are spelled out (log(0) = -inf, sqrt(-1) = NaN, ...), and WGSL does
//! not forbid FMA contraction, so `low + span * u` of a uniform draw may round once instead of
//! twice (the common `low = 0` case is emitted as a single product and stays exact).
//!
//! [`output_dtypes`]: crate::output_dtypes
//! [`pack_params`]: crate::pack_params
//! [`pack_params_u32`]: crate::pack_params_u32

use crate::common::{
    const_val, coord_expr, lin_form, off_expr, randint_range, suffix, uniform_f32, words_per_value,
    ConstVal, LinForm, Plan, RedPlan, WORKGROUP,
};
use crate::wgsl_helpers::HELPERS;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tessera_runtime::ir::{InstKind, KernelIr, ReduceKind, Renderer};
use tessera_runtime::op::{ArgOp, BinaryOp, Dist, ReduceOp, UnaryOp};
use tessera_runtime::{DType, Error, Result};

/// Renders `KernelIr` as WGSL (see the module docs for the ABI).
#[derive(Debug, Clone, Copy, Default)]
pub struct WgslRenderer;

impl Renderer for WgslRenderer {
    fn name(&self) -> &str {
        "wgsl"
    }
    fn render(&self, ir: &KernelIr) -> Result<String> {
        Gen::new(ir)?.render()
    }
}

fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported {
        op: what.into(),
        backend: "wgsl".into(),
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op: "render kernel".into(),
        msg: msg.into(),
    }
}

/// WGSL type of a value of dtype `d`.
fn vty(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::Bool => "bool",
        DType::I32 => "i32",
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => return Err(no_i64()),
    })
}

/// WGSL element type of a buffer holding dtype `d`.
fn bty(d: DType) -> &'static str {
    match d {
        DType::Bool => "u32",
        DType::I32 => "i32",
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "vec2<u32>",
    }
}

fn no_i64() -> Error {
    unsupported(
        "int64 values (WGSL has no 64-bit integers; only i64 outputs are emitted, as u32 pairs)",
    )
}

/// Float literal suffix.
fn lit(d: DType) -> &'static str {
    if d == DType::F64 {
        "lf"
    } else {
        "f"
    }
}

fn u64_lit(v: u64) -> String {
    format!("vec2<u32>({}u, {}u)", v as u32, (v >> 32) as u32)
}

fn f32_lit(v: f32) -> String {
    if v.is_nan() {
        "nan_f32()".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf_f32()" } else { "(-inf_f32())" }.into()
    } else if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        format!("bitcast<f32>({:#010x}u)", v.to_bits())
    } else {
        format!("{v:?}f")
    }
}

fn f64_lit(v: f64) -> String {
    if v.is_nan() {
        "nan_f64()".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf_f64()" } else { "(-inf_f64())" }.into()
    } else {
        format!("{v:?}lf")
    }
}

fn i32_lit(v: i32) -> String {
    if v == i32::MIN {
        "bitcast<i32>(0x80000000u)".into()
    } else {
        format!("{v}i")
    }
}

/// Where element offsets come from: the element index (elementwise) or row + reduced index.
enum Space<'p> {
    Elementwise,
    Reduce(&'p RedPlan),
}

struct Gen<'a> {
    p: Plan<'a>,
    helpers: BTreeMap<String, String>,
}

impl<'a> Gen<'a> {
    fn new(ir: &'a KernelIr) -> Result<Self> {
        let p = Plan::new(ir)?;
        // Indices are u32; keep head-room for `r + 256` and `e + stride`.
        if !p.fits_u32() || p.n >= (u32::MAX as u64) - 2 * WORKGROUP as u64 {
            return Err(unsupported(format!(
                "an index space of {} elements (WGSL kernels index with u32)",
                p.n
            )));
        }
        // int64 values exist only as loads (u32 pairs) that casts turn into other dtypes.
        for (k, inst) in ir.insts.iter().enumerate() {
            if inst.dtype != DType::I64 {
                continue;
            }
            let used_by_casts_only = ir.insts.iter().all(|u| match &u.kind {
                InstKind::Cast(_) => true,
                InstKind::Unary(_, a) => *a != k as u32,
                InstKind::Binary(_, a, b) => *a != k as u32 && *b != k as u32,
                InstKind::Where(c, a, b) => ![*c, *a, *b].contains(&(k as u32)),
                InstKind::Load(_) | InstKind::Const(_) | InstKind::Random { .. } => true,
            });
            if !matches!(inst.kind, InstKind::Load(_))
                || !used_by_casts_only
                || ir.result == k as u32
            {
                return Err(no_i64());
            }
        }
        Ok(Gen {
            p,
            helpers: BTreeMap::new(),
        })
    }

    /// Marks a helper (and its dependencies) as used; `name` may end in `_T` with `t` given.
    fn need(&mut self, name: &str, t: Option<DType>) -> String {
        let full = match (name.strip_suffix("_T"), t) {
            (Some(base), Some(t)) => format!("{base}_{}", suffix(t)),
            _ => name.to_string(),
        };
        if self.helpers.contains_key(&full) {
            return full;
        }
        let (text, deps) = if let Some((_, deps, text)) = HELPERS.iter().find(|h| h.0 == full) {
            (text.to_string(), *deps)
        } else {
            let (_, deps, text) = HELPERS
                .iter()
                .find(|h| h.0 == name)
                .unwrap_or_else(|| panic!("WGSL helper {name} is missing from the table"));
            let t = t.expect("generic helper needs a type");
            (text.replace("{T}", suffix(t)).replace("{L}", lit(t)), *deps)
        };
        self.helpers.insert(full.clone(), text);
        for d in deps {
            self.need(d, t);
        }
        full
    }

    fn dtype(&self, v: u32) -> DType {
        self.p.ir.insts[v as usize].dtype
    }

    fn render(mut self) -> Result<String> {
        let ir = self.p.ir;
        let n_in = ir.inputs.len();
        let n_out = self.p.outputs.len();
        let mut decl = String::new();
        for (k, inp) in ir.inputs.iter().enumerate() {
            let _ = writeln!(
                decl,
                "@group(0) @binding({k}) var<storage, read> in{k}: array<{}>;",
                bty(inp.dtype)
            );
        }
        for (k, d) in self.p.outputs.iter().enumerate() {
            let _ = writeln!(
                decl,
                "@group(0) @binding({}) var<storage, read_write> out{k}: array<{}>;",
                n_in + k,
                bty(*d)
            );
        }
        let _ = writeln!(
            decl,
            "@group(0) @binding({}) var<storage, read> params: array<u32>;",
            n_in + n_out
        );
        let body = match self.p.red.clone() {
            None => self.elementwise()?,
            Some(r) => self.reduction(&r)?,
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "// Tessera kernel {} (WGSL, generated by tessera-kernels; ABI in wgsl.rs).",
            crate::kernel_name(ir)
        );
        let _ = writeln!(s, "// {}", crate::describe(ir));
        s.push('\n');
        s.push_str(&decl);
        for h in self.helpers.values() {
            s.push('\n');
            s.push_str(h);
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&body);
        Ok(s)
    }

    /// Statements that read the random parameters and arg_base from `params`.
    fn param_reads(&self, out: &mut String, ind: &str) {
        let n_in = self.p.ir.inputs.len();
        for k in 0..n_in {
            if self.loaded(k) {
                let _ = writeln!(out, "{ind}let off{k} = params[{}];", 2 * (2 + k));
            }
        }
        for k in 0..self.p.num_random {
            for (j, name) in ["seed", "stream", "base"].iter().enumerate() {
                let w = 2 * (2 + n_in + 3 * k + j);
                let _ = writeln!(
                    out,
                    "{ind}let {name}{k} = vec2<u32>(params[{w}], params[{}]);",
                    w + 1
                );
            }
        }
    }

    fn elementwise(&mut self) -> Result<String> {
        let ir = self.p.ir;
        let mut s = String::new();
        s.push_str("@compute @workgroup_size(256)\n");
        s.push_str("fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n");
        self.phony_uses(&mut s);
        s.push_str("    let n = params[0];\n");
        self.param_reads(&mut s, "    ");
        s.push_str("    let stride = nwg.x * nwg.y * 256u;\n");
        s.push_str("    var e = gid.x + gid.y * nwg.x * 256u;\n");
        s.push_str("    loop {\n");
        s.push_str("        if e >= n {\n            break;\n        }\n");
        self.insts(&mut s, "        ", &Space::Elementwise)?;
        let res = ir.result;
        let val = if self.dtype(res) == DType::Bool {
            format!("select(0u, 1u, v{res})")
        } else {
            format!("v{res}")
        };
        let _ = writeln!(s, "        out0[e] = {val};");
        s.push_str("        if n - e <= stride {\n            break;\n        }\n");
        s.push_str("        e = e + stride;\n");
        s.push_str("    }\n}\n");
        Ok(s)
    }

    /// Whether some instruction loads input `k`.
    fn loaded(&self, k: usize) -> bool {
        self.p
            .ir
            .insts
            .iter()
            .any(|i| matches!(i.kind, InstKind::Load(j) if j as usize == k))
    }

    /// `_ = &in3;` for inputs no instruction loads, so automatic layouts keep their binding.
    fn phony_uses(&self, s: &mut String) {
        for k in 0..self.p.ir.inputs.len() {
            if !self.loaded(k) {
                let _ = writeln!(s, "    _ = &in{k};");
            }
        }
    }

    /// u64 (vec2<u32>) expression of a linear form over index `l`, or None when it is 0.
    fn off64_expr(&mut self, form: &LinForm, l: &str) -> Option<String> {
        let term = |g: &mut Self, c: String, w: u64| {
            if w == 1 {
                format!("vec2<u32>({c}, 0u)")
            } else {
                let f = g.need("mul64", None);
                format!("{f}(vec2<u32>({c}, 0u), {})", u64_lit(w))
            }
        };
        let parts: Vec<String> = match form {
            LinForm::Scaled(0) => vec![],
            LinForm::Scaled(s) => vec![term(self, l.to_string(), *s)],
            LinForm::Terms(ts) => ts
                .iter()
                .map(|t| term(self, coord_expr(t, l, "u"), t.weight))
                .collect(),
        };
        self.sum64(parts)
    }

    fn sum64(&mut self, parts: Vec<String>) -> Option<String> {
        let mut it = parts.into_iter();
        let first = it.next()?;
        Some(it.fold(first, |acc, p| {
            let f = self.need("add64", None);
            format!("{f}({acc}, {p})")
        }))
    }

    fn load_weights(&self, k: usize) -> Vec<u64> {
        self.p.input_weights(k)
    }

    /// Emits every instruction as `let vK: T = ...;`.
    fn insts(&mut self, s: &mut String, ind: &str, space: &Space) -> Result<()> {
        let ir = self.p.ir;
        let nd = ir.shape.len();
        let all: Vec<usize> = (0..nd).collect();
        for (k, inst) in ir.insts.iter().enumerate() {
            // An int64 load (checked in `new`: only casts read it) stays a (lo, hi) pair.
            let ty = match inst.dtype {
                DType::I64 => bty(DType::I64),
                d => vty(d)?,
            };
            let expr = match &inst.kind {
                InstKind::Load(i) => {
                    let i = *i as usize;
                    let w = self.load_weights(i);
                    // Element offset: the run-time load offset plus the strided part.
                    let (first, inner) = match space {
                        Space::Elementwise => (
                            format!("off{i}"),
                            off_expr(&lin_form(&all, &ir.shape, &w), "e", "u"),
                        ),
                        Space::Reduce(r) => (
                            format!("kb{i}"),
                            off_expr(&lin_form(&r.axes, &ir.shape, &w), "r", "u"),
                        ),
                    };
                    let off = if inner == "0u" {
                        first
                    } else {
                        format!("{first} + {inner}")
                    };
                    if inst.dtype == DType::Bool {
                        format!("in{i}[{off}] != 0u")
                    } else {
                        format!("in{i}[{off}]")
                    }
                }
                InstKind::Const(c) => match const_val(*c, inst.dtype) {
                    ConstVal::Bool(b) => b.to_string(),
                    ConstVal::I32(v) => i32_lit(v),
                    ConstVal::F32(v) => {
                        let l = f32_lit(v);
                        if !v.is_finite() {
                            self.need(if v.is_nan() { "nan_f32" } else { "inf_f32" }, None);
                        }
                        l
                    }
                    ConstVal::F64(v) => {
                        if !v.is_finite() {
                            self.need(if v.is_nan() { "nan_f64" } else { "inf_f64" }, None);
                        }
                        f64_lit(v)
                    }
                    ConstVal::I64(_) => return Err(no_i64()),
                },
                InstKind::Unary(op, a) => self.unary(*op, *a, inst.dtype)?,
                InstKind::Binary(op, a, b) => self.binary(*op, *a, *b)?,
                InstKind::Where(c, a, b) => format!("select(v{b}, v{a}, v{c})"),
                InstKind::Cast(a) => self.cast(self.dtype(*a), inst.dtype, &format!("v{a}"))?,
                InstKind::Random {
                    dist,
                    gstrides,
                    param,
                } => {
                    let g = match space {
                        Space::Elementwise => {
                            let part = self.off64_expr(&lin_form(&all, &ir.shape, gstrides), "e");
                            self.sum64(
                                [Some(format!("base{param}")), part]
                                    .into_iter()
                                    .flatten()
                                    .collect(),
                            )
                        }
                        Space::Reduce(r) => {
                            let part =
                                self.off64_expr(&lin_form(&r.axes, &ir.shape, gstrides), "r");
                            self.sum64(
                                [Some(format!("kg{k}")), part]
                                    .into_iter()
                                    .flatten()
                                    .collect(),
                            )
                        }
                    }
                    .expect("base is present");
                    let ws = self.philox_words(s, ind, k, &g, *param, *dist, inst.dtype);
                    self.random(*dist, inst.dtype, &ws)?
                }
            };
            let _ = writeln!(s, "{ind}let v{k}: {ty} = {expr};");
        }
        Ok(())
    }

    /// Emits the Philox call of random instruction `k` at global index `g` and returns the
    /// expressions of the words its value uses: `per = 4 / words_per_value` consecutive elements
    /// share one call (counter `g / per`, words from `(g % per) * words_per_value`).
    #[allow(clippy::too_many_arguments)]
    fn philox_words(
        &mut self,
        s: &mut String,
        ind: &str,
        k: usize,
        g: &str,
        param: u32,
        dist: Dist,
        d: DType,
    ) -> [String; 4] {
        let f = self.need("philox", None);
        let kw = words_per_value(dist, d);
        let per = 4 / kw;
        if per == 1 {
            let _ = writeln!(s, "{ind}let w{k} = {f}({g}, stream{param}, seed{param});");
            return ["x", "y", "z", "w"].map(|c| format!("w{k}.{c}"));
        }
        let sh = per.trailing_zeros();
        let _ = writeln!(s, "{ind}let g{k} = {g};");
        let _ = writeln!(
            s,
            "{ind}let w{k} = {f}(vec2<u32>((g{k}.x >> {sh}u) | (g{k}.y << {}u), g{k}.y >> {sh}u), stream{param}, seed{param});",
            32 - sh
        );
        if kw == 1 {
            [
                format!("w{k}[g{k}.x & 3u]"),
                "0u".into(),
                "0u".into(),
                "0u".into(),
            ]
        } else {
            let _ = writeln!(
                s,
                "{ind}let p{k} = select(w{k}.xy, w{k}.zw, (g{k}.x & 1u) == 1u);"
            );
            [
                format!("p{k}.x"),
                format!("p{k}.y"),
                "0u".into(),
                "0u".into(),
            ]
        }
    }

    fn random(&mut self, dist: Dist, d: DType, w: &[String; 4]) -> Result<String> {
        let (w0, w1) = (&w[0], &w[1]);
        Ok(match (dist, d) {
            (Dist::Uniform { low, high }, DType::F32) => {
                let (lo, span) = uniform_f32(low.0, high.0);
                let u = format!("{}({w0})", self.need("u01_f32", None));
                affine(
                    &f32_lit(lo),
                    &f32_lit(span),
                    u,
                    lo == 0.0 && span > 0.0,
                    span == 1.0,
                )
            }
            (Dist::Uniform { low, high }, d) => {
                let (lo, span) = (low.0, high.0 - low.0);
                let u = format!("{}({w0}, {w1})", self.need("u01_f64", None));
                let v = affine(
                    &f64_lit(lo),
                    &f64_lit(span),
                    u,
                    lo == 0.0 && span > 0.0,
                    span == 1.0,
                );
                self.cast(DType::F64, d, &v)?
            }
            (Dist::Normal { mean, std }, DType::F32) => {
                let z = format!("{}({w0}, {w1})", self.need("normal_f32", None));
                let (m, sd) = (mean.0 as f32, std.0 as f32);
                affine(
                    &f32_lit(m),
                    &f32_lit(sd),
                    z,
                    m == 0.0 && sd > 0.0,
                    sd == 1.0,
                )
            }
            (Dist::Normal { .. }, d) => {
                return Err(unsupported(format!(
                    "normal random {d} (needs f64 log/cos, which WGSL lacks)"
                )))
            }
            (Dist::RandInt { low, high }, d) => {
                let f = self.need("randint64", None);
                let v = format!(
                    "{f}({w0}, {w1}, {}, {})",
                    u64_lit(low as u64),
                    u64_lit(randint_range(low, high))
                );
                let fits_i32 = low >= i32::MIN as i64 && high.saturating_sub(1) <= i32::MAX as i64;
                match d {
                    DType::I32 => format!("bitcast<i32>({v}.x)"),
                    DType::Bool => format!("any({v} != vec2<u32>(0u, 0u))"),
                    DType::F32 if fits_i32 => format!("f32(bitcast<i32>({v}.x))"),
                    DType::F64 if fits_i32 => format!("f64(bitcast<i32>({v}.x))"),
                    DType::F64 => {
                        return Err(unsupported(
                            "randint to float64 with bounds outside int32 (WGSL has no 64-bit integers)",
                        ))
                    }
                    DType::F32 => {
                        return Err(unsupported(
                            "randint to float32 with bounds outside int32 (WGSL has no 64-bit integers)",
                        ))
                    }
                    DType::I64 => return Err(no_i64()),
                }
            }
        })
    }

    fn cast(&mut self, from: DType, to: DType, x: &str) -> Result<String> {
        use DType::*;
        Ok(match (from, to) {
            _ if from == to => x.to_string(),
            // From an int64 (lo, hi) pair: f64 rounds once (hi * 2^32 is exact); f32 rounds
            // the magnitude, twice above 2^32 (at most one ulp off); i32 wraps as Rust `as`.
            (I64, F64) => format!("(f64(bitcast<i32>({x}.y)) * 4294967296.0lf + f64({x}.x))"),
            (I64, F32) => format!("{}({x})", self.need("i64_to_f32", None)),
            (I64, I32) => format!("bitcast<i32>({x}.x)"),
            (I64, Bool) => format!("(({x}.x | {x}.y) != 0u)"),
            (_, I64) => return Err(no_i64()),
            (Bool, I32) => format!("select(0i, 1i, {x})"),
            (Bool, F32) => format!("select(0.0f, 1.0f, {x})"),
            (Bool, F64) => format!("select(0.0lf, 1.0lf, {x})"),
            (I32, Bool) => format!("({x} != 0i)"),
            (I32, F32) => format!("f32({x})"),
            (I32, F64) => format!("f64({x})"),
            (F32, Bool) => format!("!({x} == 0.0f)"),
            (F64, Bool) => format!("!({x} == 0.0lf)"),
            (F32, I32) => format!("{}({x})", self.need("f32_to_i32", None)),
            (F64, I32) => format!("{}({x})", self.need("f64_to_i32", None)),
            (F32, F64) => format!("f64({x})"),
            (F64, F32) => format!("f32({x})"),
            _ => unreachable!("all dtype pairs covered"),
        })
    }

    fn unary(&mut self, op: UnaryOp, a: u32, out: DType) -> Result<String> {
        use UnaryOp::*;
        let d = self.dtype(a);
        let x = format!("v{a}");
        let expect = match op {
            LogicalNot | IsNan | IsInf | IsFinite | Signbit => DType::Bool,
            _ => d,
        };
        if out != expect {
            return Err(invalid(format!(
                "{} of {d} gives {expect}, not {out}",
                op.name()
            )));
        }
        if d.is_float() {
            let l = lit(d);
            let f64_only = |op: UnaryOp| {
                unsupported(format!(
                    "{} on float64 (WGSL has f64 transcendentals only as 32-bit)",
                    op.name()
                ))
            };
            return Ok(match op {
                Neg => format!("(-{x})"),
                Abs => format!("abs({x})"),
                Sign => format!("{}({x})", self.need("sign_T", Some(d))),
                Sqrt => format!("{}({x})", self.need("sqrt_T", Some(d))),
                Floor => format!("floor({x})"),
                Ceil => format!("ceil({x})"),
                Round => format!("{}({x})", self.need("round_T", Some(d))),
                LogicalNot => format!("({x} == 0.0{l})"),
                IsNan => format!("{}({x})", self.need("isnan_T", Some(d))),
                IsInf => format!("{}({x})", self.need("isinf_T", Some(d))),
                IsFinite => format!("{}({x})", self.need("isfinite_T", Some(d))),
                // Through floor and ceil, which keep the sign of a zero result (trunc(-0.5) is
                // -0.0): Mesa's lavapipe (22.3) loses it in float64 trunc, and in `x * 0.0`.
                Trunc if d == DType::F64 => {
                    format!("select(ceil({x}), floor({x}), {x} >= 0.0{l})")
                }
                Trunc => format!("trunc({x})"),
                Square => format!("({x} * {x})"),
                Reciprocal => format!("(1.0{l} / {x})"),
                Invert => return Err(Error::dtype_unsupported(op.name(), d)),
                // WGSL cannot bitcast f64, and a NaN's sign shows in no comparison.
                Signbit if d == DType::F64 => {
                    return Err(unsupported("signbit on float64 (WGSL cannot bitcast f64)"))
                }
                Signbit => format!("{}({x})", self.need("signbit_f32", None)),
                _ if d == DType::F64 => return Err(f64_only(op)),
                Exp => format!("{}({x})", self.need("exp_f32", None)),
                Log => format!("{}({x})", self.need("log_f32", None)),
                Log1p => format!("{}({x})", self.need("log1p_f32", None)),
                Expm1 => format!("{}({x})", self.need("expm1_f32", None)),
                Sin => format!("{}({x})", self.need("sin_f32", None)),
                Cos => format!("{}({x})", self.need("cos_f32", None)),
                Tan => format!("{}({x})", self.need("tan_f32", None)),
                Tanh => format!("{}({x})", self.need("tanh_f32", None)),
                Arcsin => format!("{}({x})", self.need("asin_f32", None)),
                Arccos => format!("{}({x})", self.need("acos_f32", None)),
                Arctan => format!("{}({x})", self.need("atan_f32", None)),
                Sinh => format!("{}({x})", self.need("sinh_f32", None)),
                Cosh => format!("{}({x})", self.need("cosh_f32", None)),
                Arcsinh => format!("{}({x})", self.need("asinh_f32", None)),
                Arccosh => format!("{}({x})", self.need("acosh_f32", None)),
                Arctanh => format!("{}({x})", self.need("atanh_f32", None)),
                Log2 => format!("{}({x})", self.need("log2_f32", None)),
                Log10 => format!("{}({x})", self.need("log10_f32", None)),
                Exp2 => format!("{}({x})", self.need("exp2_f32", None)),
                Cbrt => format!("{}({x})", self.need("cbrt_f32", None)),
            });
        }
        if d == DType::I32 {
            return Ok(match op {
                Neg => format!("(0i - {x})"),
                Abs => format!("abs({x})"),
                Sign => format!("sign({x})"),
                Floor | Ceil | Round | Trunc => x,
                Square => format!("({x} * {x})"),
                Reciprocal => format!("{}({x})", self.need("recip_i32", None)),
                Invert => format!("(~{x})"),
                LogicalNot => format!("({x} == 0i)"),
                IsNan | IsInf => "false".into(),
                IsFinite => "true".into(),
                _ => {
                    return Err(invalid(format!(
                        "{} of int32 (the graph casts to float first)",
                        op.name()
                    )))
                }
            });
        }
        if d == DType::Bool {
            return Ok(match op {
                Abs | Floor | Ceil | Round | Trunc => x,
                LogicalNot | Invert => format!("!{x}"),
                IsNan | IsInf => "false".into(),
                IsFinite => "true".into(),
                _ => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
            });
        }
        Err(no_i64())
    }

    fn binary(&mut self, op: BinaryOp, a: u32, b: u32) -> Result<String> {
        use BinaryOp::*;
        let d = self.dtype(a);
        let (x, y) = (format!("v{a}"), format!("v{b}"));
        if d.is_float() {
            let l = lit(d);
            let truthy = |v: &str| format!("!({v} == 0.0{l})");
            return Ok(match op {
                Add => format!("({x} + {y})"),
                Sub => format!("({x} - {y})"),
                Mul => format!("({x} * {y})"),
                Div => format!("({x} / {y})"),
                FloorDiv => format!("{}({x}, {y}).x", self.need("divmod_T", Some(d))),
                Mod => format!("{}({x}, {y}).y", self.need("divmod_T", Some(d))),
                Pow if d == DType::F64 => {
                    return Err(unsupported(
                        "power on float64 (WGSL has f64 transcendentals only as 32-bit)",
                    ))
                }
                Pow => format!("{}({x}, {y})", self.need("pow_f32", None)),
                Maximum => format!("{}({x}, {y})", self.need("maximum_T", Some(d))),
                Minimum => format!("{}({x}, {y})", self.need("minimum_T", Some(d))),
                Eq => format!("({x} == {y})"),
                // `!=` on floats is an ordered compare in naga's SPIR-V: NaN != NaN would be false.
                Ne => format!("!({x} == {y})"),
                Lt => format!("({x} < {y})"),
                Le => format!("({x} <= {y})"),
                Gt => format!("({x} > {y})"),
                Ge => format!("({x} >= {y})"),
                And => format!("({} && {})", truthy(&x), truthy(&y)),
                Or => format!("({} || {})", truthy(&x), truthy(&y)),
                Xor => format!("({} != {})", truthy(&x), truthy(&y)),
                BitAnd | BitOr | BitXor | LeftShift | RightShift => {
                    return Err(Error::dtype_unsupported(op.name(), d))
                }
                Arctan2 | Hypot | Copysign | Nextafter | Logaddexp if d == DType::F64 => {
                    return Err(unsupported(format!(
                        "{} on float64 (WGSL has f64 transcendentals only as 32-bit and cannot \
                         bitcast f64)",
                        op.name()
                    )))
                }
                Arctan2 => format!("{}({x}, {y})", self.need("atan2_f32", None)),
                Hypot => format!("{}({x}, {y})", self.need("hypot_f32", None)),
                Copysign => format!("{}({x}, {y})", self.need("copysign_f32", None)),
                Nextafter => format!("{}({x}, {y})", self.need("nextafter_f32", None)),
                Logaddexp => format!("{}({x}, {y})", self.need("logaddexp_f32", None)),
            });
        }
        if d == DType::I32 {
            return Ok(match op {
                Add => format!("({x} + {y})"),
                Sub => format!("({x} - {y})"),
                Mul => format!("({x} * {y})"),
                Div => {
                    return Err(invalid(
                        "true_divide of int32 (the graph casts to float first)",
                    ))
                }
                FloorDiv => format!("{}({x}, {y})", self.need("floordiv_i32", None)),
                Mod => format!("{}({x}, {y})", self.need("mod_i32", None)),
                Pow => format!("{}({x}, {y})", self.need("pow_i32", None)),
                Maximum => format!("max({x}, {y})"),
                Minimum => format!("min({x}, {y})"),
                Eq => format!("({x} == {y})"),
                Ne => format!("({x} != {y})"),
                Lt => format!("({x} < {y})"),
                Le => format!("({x} <= {y})"),
                Gt => format!("({x} > {y})"),
                Ge => format!("({x} >= {y})"),
                And => format!("(({x} != 0i) && ({y} != 0i))"),
                Or => format!("(({x} != 0i) || ({y} != 0i))"),
                Xor => format!("(({x} != 0i) != ({y} != 0i))"),
                BitAnd => format!("({x} & {y})"),
                BitOr => format!("({x} | {y})"),
                BitXor => format!("({x} ^ {y})"),
                // WGSL masks the count to 5 bits; numpy gives 0 (or -1 shifting a negative value
                // right) for counts outside 0..32, negative ones included (huge as u32).
                LeftShift => format!("select(0i, {x} << u32({y}), u32({y}) < 32u)"),
                RightShift => {
                    format!("select(select(0i, -1i, {x} < 0i), {x} >> u32({y}), u32({y}) < 32u)")
                }
                Arctan2 | Hypot | Copysign | Nextafter | Logaddexp => {
                    return Err(invalid(format!(
                        "{} of int32 (the graph casts to float first)",
                        op.name()
                    )))
                }
            });
        }
        if d == DType::Bool {
            return Ok(match op {
                Add | Or | Maximum | BitOr => format!("({x} || {y})"),
                Mul | And | Minimum | BitAnd => format!("({x} && {y})"),
                Eq => format!("({x} == {y})"),
                Ne | Xor | BitXor => format!("({x} != {y})"),
                Lt => format!("(!{x} && {y})"),
                Le => format!("(!{x} || {y})"),
                Gt => format!("({x} && !{y})"),
                Ge => format!("({x} || !{y})"),
                Sub | Div | FloorDiv | Mod | Pow | LeftShift | RightShift | Arctan2 | Hypot
                | Copysign | Nextafter | Logaddexp => {
                    return Err(Error::dtype_unsupported(op.name(), DType::Bool))
                }
            });
        }
        Err(no_i64())
    }

    fn reduction(&mut self, r: &RedPlan) -> Result<String> {
        let ir = self.p.ir;
        let d = ir.result_dtype();
        vty(d)?;
        let acc = Acc::new(self, r.kind, d)?;
        let mut s = String::new();
        for (k, t) in acc.shared.iter().enumerate() {
            let _ = writeln!(s, "var<workgroup> sh{k}: array<{t}, 256>;");
        }
        s.push('\n');
        s.push_str(&acc.combine);
        s.push_str("\n\n@compute @workgroup_size(256)\n");
        s.push_str("fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {\n");
        self.phony_uses(&mut s);
        s.push_str("    _ = params[0];\n");
        self.param_reads(&mut s, "    ");
        if matches!(r.kind, ReduceKind::Arg(_)) {
            s.push_str("    let arg_base = vec2<u32>(params[2], params[3]);\n");
        }
        s.push_str("    let row = wid.x + wid.y * nwg.x;\n");
        let _ = writeln!(s, "    if row >= {}u {{\n        return;\n    }}", r.rows);
        // Row parts of the offsets, once per thread.
        for k in 0..ir.inputs.len() {
            let form = lin_form(&r.kept, &ir.shape, &self.load_weights(k));
            if self.loaded(k) {
                let _ = match form {
                    LinForm::Scaled(0) => writeln!(s, "    let kb{k} = off{k};"),
                    _ => writeln!(
                        s,
                        "    let kb{k} = off{k} + {};",
                        off_expr(&form, "row", "u")
                    ),
                };
            }
        }
        for (k, inst) in ir.insts.iter().enumerate() {
            if let InstKind::Random {
                gstrides, param, ..
            } = &inst.kind
            {
                let part = self.off64_expr(&lin_form(&r.kept, &ir.shape, gstrides), "row");
                let g = self
                    .sum64(
                        [Some(format!("base{param}")), part]
                            .into_iter()
                            .flatten()
                            .collect(),
                    )
                    .expect("base is present");
                let _ = writeln!(s, "    let kg{k} = {g};");
            }
        }
        for l in &acc.init {
            let _ = writeln!(s, "    {l}");
        }
        s.push_str("    var r = lid;\n    loop {\n");
        let _ = writeln!(
            s,
            "        if r >= {}u {{\n            break;\n        }}",
            r.extent
        );
        self.insts(&mut s, "        ", &Space::Reduce(r))?;
        for l in &acc.update {
            let _ = writeln!(s, "        {}", l.replace("$v", &format!("v{}", ir.result)));
        }
        s.push_str("        r = r + 256u;\n    }\n");
        for l in &acc.store {
            let _ = writeln!(s, "    {l}");
        }
        s.push_str("    workgroupBarrier();\n");
        let mut step = WORKGROUP / 2;
        while step > 0 {
            let _ = writeln!(
                s,
                "    if lid < {step}u {{\n        combine(lid, lid + {step}u);\n    }}\n    workgroupBarrier();"
            );
            step /= 2;
        }
        s.push_str("    if lid == 0u {\n");
        for l in &acc.output {
            let _ = writeln!(s, "        {l}");
        }
        s.push_str("    }\n}\n");
        Ok(s)
    }
}

/// `lo + span * u`, with the exact forms for lo = 0 (one rounding even under FMA contraction).
fn affine(lo: &str, span: &str, u: String, lo_zero: bool, span_one: bool) -> String {
    match (lo_zero, span_one) {
        (true, true) => u,
        (true, false) => format!("{span} * {u}"),
        _ => format!("{lo} + {span} * {u}"),
    }
}

/// The accumulator of a reduction: per-thread state, shared arrays, combine and output.
struct Acc {
    shared: Vec<String>,
    init: Vec<String>,
    /// Lines in the loop; `$v` is the value.
    update: Vec<String>,
    store: Vec<String>,
    combine: String,
    output: Vec<String>,
}

impl Acc {
    fn new(g: &mut Gen, kind: ReduceKind, d: DType) -> Result<Acc> {
        // The value as f64 (sum/mean/var partials), as i64 bits (integer sums), as stored.
        let as_f64 = match d {
            DType::Bool => "select(0.0lf, 1.0lf, $v)".to_string(),
            DType::F64 => "$v".into(),
            _ => "f64($v)".into(),
        };
        let as_i64 = match d {
            DType::Bool => "vec2<u32>(select(0u, 1u, $v), 0u)".to_string(),
            _ => "vec2<u32>(bitcast<u32>($v), select(0u, 0xffffffffu, $v < 0i))".into(),
        };
        let stored = if d == DType::Bool {
            "select(0u, 1u, $v)".to_string()
        } else {
            "$v".into()
        };
        let sty = bty(d);
        let simple = |t: &str, init: String, upd: String, comb: String| Acc {
            shared: vec![t.into()],
            init: vec![format!("var acc: {t} = {init};")],
            update: vec![upd],
            store: vec!["sh0[lid] = acc;".into()],
            combine: format!("fn combine(i: u32, j: u32) {{\n    sh0[i] = {comb};\n}}"),
            output: vec!["out0[row] = sh0[0];".into()],
        };
        Ok(match kind {
            ReduceKind::Reduce(op) => match op {
                ReduceOp::Sum | ReduceOp::Mean if op == ReduceOp::Mean || d.is_float() => simple(
                    "f64",
                    "0.0lf".into(),
                    format!("acc = acc + {as_f64};"),
                    "sh0[i] + sh0[j]".into(),
                ),
                ReduceOp::Prod if d.is_float() => simple(
                    "f64",
                    "1.0lf".into(),
                    format!("acc = acc * {as_f64};"),
                    "sh0[i] * sh0[j]".into(),
                ),
                // Mean always takes the f64 arm above.
                ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Prod => {
                    let f = g.need(
                        if op == ReduceOp::Sum {
                            "add64"
                        } else {
                            "mul64"
                        },
                        None,
                    );
                    let one = if op == ReduceOp::Sum { "0u" } else { "1u" };
                    simple(
                        "vec2<u32>",
                        format!("vec2<u32>({one}, 0u)"),
                        format!("acc = {f}(acc, {as_i64});"),
                        format!("{f}(sh0[i], sh0[j])"),
                    )
                }
                ReduceOp::Var | ReduceOp::Std => Acc {
                    shared: vec!["f64".into(); 3],
                    init: vec![
                        "var acc_n = 0.0lf;".into(),
                        "var acc_mean = 0.0lf;".into(),
                        "var acc_m2 = 0.0lf;".into(),
                    ],
                    update: vec![
                        format!("let x = {as_f64};"),
                        "acc_n = acc_n + 1.0lf;".into(),
                        "let dx = x - acc_mean;".into(),
                        "acc_mean = acc_mean + dx / acc_n;".into(),
                        "acc_m2 = acc_m2 + dx * (x - acc_mean);".into(),
                    ],
                    store: vec![
                        "sh0[lid] = acc_n;".into(),
                        "sh1[lid] = acc_mean;".into(),
                        "sh2[lid] = acc_m2;".into(),
                    ],
                    combine: "// Chan et al.: merge Welford state j into i.
fn combine(i: u32, j: u32) {
    let na = sh0[i];
    let nb = sh0[j];
    let n = na + nb;
    if n == 0.0lf {
        return;
    }
    let d = sh1[j] - sh1[i];
    sh1[i] = sh1[i] + d * nb / n;
    sh2[i] = sh2[i] + sh2[j] + d * d * na * nb / n;
    sh0[i] = n;
}"
                    .into(),
                    output: vec!["out0[row] = sh1[0];".into(), "out1[row] = sh2[0];".into()],
                },
                ReduceOp::Min | ReduceOp::Max => {
                    let max = op == ReduceOp::Max;
                    let (ident, f) = match d {
                        DType::F32 | DType::F64 => {
                            let inf = g.need(
                                if d == DType::F32 {
                                    "inf_f32"
                                } else {
                                    "inf_f64"
                                },
                                None,
                            );
                            let isnan = g.need("isnan_T", Some(d));
                            let t = bty(d);
                            let cmp = if max { ">" } else { "<" };
                            let name = if max { "fmax_red" } else { "fmin_red" };
                            let text = format!(
                                "// NaN-propagating extreme (tessera-cpu `extreme`).
fn {name}(a: {t}, b: {t}) -> {t} {{
    if {isnan}(a) {{
        return a;
    }}
    if {isnan}(b) {{
        return b;
    }}
    return select(a, b, b {cmp} a);
}}"
                            );
                            g.helpers.insert(name.into(), text);
                            (
                                format!("{}{inf}()", if max { "-" } else { "" }),
                                name.to_string(),
                            )
                        }
                        DType::I32 => (
                            if max {
                                i32_lit(i32::MIN)
                            } else {
                                i32_lit(i32::MAX)
                            },
                            if max { "max" } else { "min" }.to_string(),
                        ),
                        _ => (
                            if max { "0u" } else { "1u" }.to_string(),
                            if max { "max" } else { "min" }.to_string(),
                        ),
                    };
                    simple(
                        sty,
                        ident,
                        format!("acc = {f}(acc, {stored});"),
                        format!("{f}(sh0[i], sh0[j])"),
                    )
                }
                ReduceOp::Any | ReduceOp::All => {
                    let truth = match d {
                        DType::Bool => "$v".to_string(),
                        DType::I32 => "$v != 0i".into(),
                        DType::F32 => "!($v == 0.0f)".into(),
                        _ => "!($v == 0.0lf)".into(),
                    };
                    let (init, o) = if op == ReduceOp::Any {
                        ("0u", "|")
                    } else {
                        ("1u", "&")
                    };
                    simple(
                        "u32",
                        init.into(),
                        format!("acc = acc {o} select(0u, 1u, {truth});"),
                        format!("sh0[i] {o} sh0[j]"),
                    )
                }
            },
            ReduceKind::Arg(op) => {
                let cmp = if op == ArgOp::ArgMax { ">" } else { "<" };
                let better = if d.is_float() {
                    let isnan = g.need("isnan_T", Some(d));
                    format!(
                        "// Is c better than b? NaN beats everything and is never beaten.
fn better(c: {sty}, b: {sty}) -> bool {{
    if {isnan}(b) {{
        return false;
    }}
    if {isnan}(c) {{
        return true;
    }}
    return c {cmp} b;
}}"
                    )
                } else {
                    format!("fn better(c: {sty}, b: {sty}) -> bool {{\n    return c {cmp} b;\n}}")
                };
                g.helpers.insert("better".into(), better);
                let add = g.need("add64", None);
                Acc {
                    shared: vec![sty.into(), "u32".into()],
                    init: vec![
                        format!("var best: {sty};"),
                        "var best_i = 0xffffffffu;".into(),
                    ],
                    update: vec![
                        format!("let x = {stored};"),
                        "if best_i == 0xffffffffu || better(x, best) {".into(),
                        "    best = x;".into(),
                        "    best_i = r;".into(),
                        "}".into(),
                    ],
                    store: vec!["sh0[lid] = best;".into(), "sh1[lid] = best_i;".into()],
                    combine: "// Keep the better value; on ties (or two NaNs) the lower index.
fn combine(i: u32, j: u32) {
    let bi = sh1[j];
    let ai = sh1[i];
    if bi == 0xffffffffu {
        return;
    }
    var take = ai == 0xffffffffu;
    if !take {
        let av = sh0[i];
        let bv = sh0[j];
        take = better(bv, av) || (!better(av, bv) && bi < ai);
    }
    if take {
        sh0[i] = sh0[j];
        sh1[i] = bi;
    }
}"
                    .into(),
                    output: vec![
                        "out0[row] = sh0[0];".into(),
                        format!("out1[row] = {add}(arg_base, vec2<u32>(sh1[0], 0u));"),
                    ],
                }
            }
        })
    }
}
