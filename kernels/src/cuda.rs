//! CUDA renderer: `KernelIr` -> CUDA C for NVRTC (compiled to PTX; checked with ptxas sm_90).
//!
//! # Kernel ABI (what a CUDA backend compiles and launches)
//!
//! - One `extern "C" __global__` function named [`kernel_name`] (`tessera_k<16 hex digits of
//!   the KernelKey>`). The source includes nothing: only NVRTC built-ins are used. Compile
//!   with default NVRTC options or `--fmad=false`, never `--use_fast_math` (float arithmetic
//!   that must round like the CPU already uses `__[fd]{add,sub,mul,div}_rn`, which is never
//!   contracted into FMA).
//! - Arguments, in order:
//!   1. one `const T* __restrict__ in<k>` per IR input (contiguous row-major buffers);
//!   2. the outputs `T* __restrict__ out<k>`: one for elementwise kernels and most reductions,
//!      two for var/std (mean, M2) and arg reductions (value, i64 index) — see
//!      [`output_dtypes`];
//!   3. by value, one `unsigned long long` per word of [`pack_params`]:
//!      `n, arg_base, load_off0, .., load_off{inputs-1}, seed0, stream0, base0, seed1, ...`
//!      (`n` = elements of the index space; one load offset per input, in elements, added to
//!      the input pointer; one (seed, stream, base) triple per random slot).
//! - Element types: f32 `float`, f64 `double`, i32 `int`, i64 `long long`, bool `unsigned char`
//!   (0/1, the host's bool bytes as they are).
//! - Launch: `blockDim = (256, 1, 1)`, no dynamic shared memory.
//!   Elementwise: a grid-stride loop, element `e = (blockIdx.y * gridDim.x + blockIdx.x) * 256 +
//!   threadIdx.x`, stride `gridDim.x * gridDim.y * 256`: any grid is correct (e.g.
//!   `min(ceil(n / (256 * elements_per_thread)), 32 * SMs)` blocks). Where an input is
//!   contiguous or a draw has unit global stride, a first loop takes groups of 4 consecutive
//!   elements per thread (group `t` = elements `4t .. 4t + 3`): 16-byte vector loads and stores
//!   (`float4`, `int4`, two `double2`/`longlong2`; `uchar4` for bool) and the group's draws
//!   from one shared Philox call per counter; it runs only when every pointer it reads or
//!   writes as a vector is aligned for it (checked at run time; no alignment promise in the
//!   ABI), and the scalar loop takes the tail (`n % 4`) or everything otherwise.
//!   Reductions: one block per output row (row = flat index over the kept axes = flat index into
//!   `out_shape()`), `row = blockIdx.y * gridDim.x + blockIdx.x`; launch at least `rows` blocks
//!   (extra blocks return). Threads stride over the reduced extent (in groups of 4 elements as
//!   below where the row is read contiguously or drawn with unit stride), then a shared-memory tree;
//!   var/std merge Welford states by Chan's formula; arg keeps the lowest index on ties and the
//!   first NaN; min/max propagate NaN. Float sum/prod/mean/var/std accumulate in f64, integer
//!   sum/prod in wrapping i64 (`tile::partial_dtype`).
//! - Random draws: element `g` of a draw taking `k` Philox words (`philox::words_per_value`)
//!   runs Philox4x32-10 (`__umulhi`) on counter `g / (4 / k)` and uses words
//!   `(g % (4 / k)) * k ..`, the recipe of `runtime/src/philox.rs`.
//!   In a 4-element group (elementwise or a reduction's row) starting at global index `gb`,
//!   the `k` calls on counters `gb / (4 / k) ..` (one more when `gb` is not a multiple of
//!   `4 / k`) serve all 4 elements: one call per counter, not one per element.
//! - Indices are 32-bit when the index space and every input offset fit (< 2^32 - 1024), else
//!   64-bit; random global indices are always 64-bit.
//!
//! Not done yet: warp-shuffle reduction trees.
//!
//! [`output_dtypes`]: crate::output_dtypes
//! [`pack_params`]: crate::pack_params
//! [`kernel_name`]: crate::kernel_name

use crate::common::{
    const_val, coord_expr, lin_form, off_expr, randint_range, suffix, uniform_f32, words_per_value,
    ConstVal, LinForm, Plan, RedPlan, WORKGROUP,
};
use crate::cuda_helpers::HELPERS;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tessera_runtime::ir::{InstKind, KernelIr, ReduceKind, Renderer};
use tessera_runtime::op::{ArgOp, BinaryOp, Dist, ReduceOp, UnaryOp};
use tessera_runtime::{DType, Error, Result};

/// Renders `KernelIr` as CUDA C (see the module docs for the ABI).
#[derive(Debug, Clone, Copy, Default)]
pub struct CudaRenderer;

impl Renderer for CudaRenderer {
    fn name(&self) -> &str {
        "cuda"
    }
    fn render(&self, ir: &KernelIr) -> Result<String> {
        Gen::new(ir)?.render()
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op: "render kernel".into(),
        msg: msg.into(),
    }
}

/// C type of a value.
fn vty(d: DType) -> &'static str {
    match d {
        DType::Bool => "bool",
        DType::I32 => "int",
        DType::I64 => "long long",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// C element type of a buffer.
fn bty(d: DType) -> &'static str {
    match d {
        DType::Bool => "unsigned char",
        d => vty(d),
    }
}

fn f32_lit(v: f32) -> String {
    if v.is_nan() {
        "__int_as_float(0x7fc00000)".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "__int_as_float(0x7f800000)".into()
        } else {
            "__int_as_float((int)0xff800000u)".into()
        }
    } else if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        format!("__int_as_float({:#010x})", v.to_bits())
    } else {
        format!("{v:?}f")
    }
}

fn f64_lit(v: f64) -> String {
    if v.is_nan() {
        "__longlong_as_double(0x7ff8000000000000ll)".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "__longlong_as_double(0x7ff0000000000000ll)".into()
        } else {
            "__longlong_as_double((long long)0xfff0000000000000ull)".into()
        }
    } else if v != 0.0 && v.abs() < f64::MIN_POSITIVE {
        format!("__longlong_as_double({:#018x}ll)", v.to_bits())
    } else {
        format!("{v:?}")
    }
}

fn i32_lit(v: i32) -> String {
    if v == i32::MIN {
        "(-2147483647 - 1)".into()
    } else {
        v.to_string()
    }
}

fn i64_lit(v: i64) -> String {
    if v == i64::MIN {
        "(-9223372036854775807ll - 1)".into()
    } else {
        format!("{v}ll")
    }
}

enum Space<'p> {
    Elementwise,
    Reduce(&'p RedPlan),
}

/// Elements each thread of an elementwise kernel handles per step of its grid-stride loop:
/// 4 where the kernel reads or draws in groups of 4 (a grid of `ceil(n / 1024)` blocks then
/// covers `n`), else 1. Any grid is correct; this only sizes it.
pub fn elements_per_thread(ir: &KernelIr) -> usize {
    match Gen::new(ir) {
        Ok(g) if ir.reduce.is_none() && g.vec_plan().is_some() => 4,
        _ => 1,
    }
}

struct Gen<'a> {
    p: Plan<'a>,
    helpers: BTreeMap<String, String>,
    /// Index type and its literal suffix.
    idx: &'static str,
    suf: &'static str,
    /// While rendering lane `j` of a 4-element group: `j` and the group's plan.
    lane: Option<(usize, VecPlan)>,
}

/// What a 4-element group shares (see `Gen::vec_plan`).
#[derive(Clone)]
struct VecPlan {
    /// Inputs read as vectors.
    inputs: Vec<usize>,
    /// Random instructions whose Philox calls the 4 elements share.
    draws: Vec<usize>,
}

/// The vector type holding 4 elements of `d` (in `pieces` loads) and the alignment its loads
/// need, in bytes.
fn vec4(d: DType) -> (&'static str, usize, usize) {
    match d {
        DType::F32 => ("float4", 1, 16),
        DType::I32 => ("int4", 1, 16),
        DType::Bool => ("uchar4", 1, 4),
        DType::F64 => ("double2", 2, 16),
        DType::I64 => ("longlong2", 2, 16),
    }
}

/// Whether pointer expression `p` to elements of `d` is aligned for `vec4(d)` accesses.
fn align_cond(p: &str, d: DType) -> String {
    format!(
        "(((unsigned long long)({p}) & {}ull) == 0ull)",
        vec4(d).2 - 1
    )
}

/// Lane `j`'s element of the vector load of input `i`.
fn lane_elem(i: usize, j: usize, d: DType) -> String {
    let c = if vec4(d).1 == 1 {
        format!("L{i}.{}", ["x", "y", "z", "w"][j])
    } else {
        format!("L{i}{}.{}", ["a", "b"][j / 2], ["x", "y"][j % 2])
    };
    if d == DType::Bool {
        format!("{c} != 0")
    } else {
        c
    }
}

impl<'a> Gen<'a> {
    fn new(ir: &'a KernelIr) -> Result<Self> {
        let p = Plan::new(ir)?;
        let (idx, suf) = if p.fits_u32() {
            ("unsigned int", "u")
        } else {
            ("unsigned long long", "ull")
        };
        Ok(Gen {
            p,
            helpers: BTreeMap::new(),
            idx,
            suf,
            lane: None,
        })
    }

    /// Marks a helper (and its dependencies) as used; returns the instantiated name key.
    fn need(&mut self, name: &str, t: Option<DType>) {
        let full = match (name.strip_suffix("_T"), t) {
            (Some(base), Some(t)) => format!("{base}_{}", suffix(t)),
            _ => name.to_string(),
        };
        if self.helpers.contains_key(&full) {
            return;
        }
        let (text, deps) = if let Some((_, deps, text)) = HELPERS.iter().find(|h| h.0 == full) {
            (text.to_string(), *deps)
        } else {
            let (_, deps, text) = HELPERS
                .iter()
                .find(|h| h.0 == name)
                .unwrap_or_else(|| panic!("CUDA helper {name} is missing from the table"));
            let t = t.expect("generic helper needs a type");
            let (ty, f, pfx, ity, uty) = match t {
                DType::F32 => ("float", "f", "f", "", ""),
                DType::F64 => ("double", "", "d", "", ""),
                DType::I32 => ("", "", "", "int", "unsigned int"),
                _ => ("", "", "", "long long", "unsigned long long"),
            };
            (
                text.replace("{T}", ty)
                    .replace("{S}", suffix(t))
                    .replace("{F}", f)
                    .replace("{P}", pfx)
                    .replace("{I}", ity)
                    .replace("{U}", uty),
                *deps,
            )
        };
        // Dependencies first: C needs declarations before use.
        for d in deps {
            self.need(d, t);
        }
        let order = self.helpers.len();
        self.helpers.insert(full, format!("{order:03}\n{text}"));
    }

    fn dtype(&self, v: u32) -> DType {
        self.p.ir.insts[v as usize].dtype
    }

    fn render(mut self) -> Result<String> {
        let ir = self.p.ir;
        let name = crate::kernel_name(ir);
        let mut args: Vec<String> = ir
            .inputs
            .iter()
            .enumerate()
            .map(|(k, i)| format!("const {}* __restrict__ in{k}", bty(i.dtype)))
            .collect();
        for (k, d) in self.p.outputs.iter().enumerate() {
            args.push(format!("{}* __restrict__ out{k}", bty(*d)));
        }
        args.push("unsigned long long n".into());
        args.push("unsigned long long arg_base".into());
        for k in 0..ir.inputs.len() {
            args.push(format!("unsigned long long load_off{k}"));
        }
        for k in 0..self.p.num_random {
            for p in ["seed", "stream", "base"] {
                args.push(format!("unsigned long long {p}{k}"));
            }
        }
        let body = match self.p.red.clone() {
            None => self.elementwise()?,
            Some(r) => self.reduction(&r)?,
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "// Tessera kernel {name} (CUDA C for NVRTC, generated by tessera-kernels; ABI in cuda.rs)."
        );
        let _ = writeln!(s, "// {}", crate::describe(ir));
        // Helpers in first-use order (dependencies were inserted before their users).
        let mut hs: Vec<&String> = self.helpers.values().collect();
        hs.sort();
        for h in hs {
            s.push('\n');
            s.push_str(&h[4..]);
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "\nextern \"C\" __global__ void __launch_bounds__(256) {name}(\n    {}) {{",
            args.join(",\n    ")
        );
        for k in 0..ir.inputs.len() {
            // The run-time load offset, once: indices below stay in the (maybe 32-bit) idx type.
            let _ = writeln!(s, "    in{k} += load_off{k};");
        }
        s.push_str(&body);
        s.push_str("}\n");
        Ok(s)
    }

    fn elementwise(&mut self) -> Result<String> {
        let ir = self.p.ir;
        let (idx, suf) = (self.idx, self.suf);
        let res = ir.result;
        let val = if self.dtype(res) == DType::Bool {
            format!("(unsigned char)(v{res} ? 1 : 0)")
        } else {
            format!("v{res}")
        };
        let mut s = String::new();
        s.push_str("    const unsigned long long stride = (unsigned long long)gridDim.x * gridDim.y * 256ull;\n");
        s.push_str("    const unsigned long long gid = ((unsigned long long)blockIdx.y * gridDim.x + blockIdx.x) * 256ull + threadIdx.x;\n");
        let mut first = "gid";
        if let Some(vp) = self.vec_plan() {
            // Groups of 4 consecutive elements while every vector access is aligned; the
            // scalar loop below takes the rest (and everything when a pointer is not).
            let out = self.p.outputs[0];
            let mut conds = vec![align_cond("out0", out)];
            conds.extend(
                vp.inputs
                    .iter()
                    .map(|&i| align_cond(&format!("in{i}"), ir.inputs[i].dtype)),
            );
            let _ = writeln!(
                s,
                "    const unsigned long long n4 = ({}) ? n >> 2 : 0ull;",
                conds.join(" && ")
            );
            s.push_str("    for (unsigned long long t = gid; t < n4; t += stride) {\n");
            let _ = writeln!(s, "        const {idx} eb = ({idx})(t << 2);");
            let ty = bty(out);
            let _ = writeln!(s, "        {ty} r0, r1, r2, r3;");
            let load_at = |_: usize| "eb".to_string();
            let g_at = |_: usize, p: u32| format!("base{p} + (unsigned long long)eb");
            let tail = |j: usize| vec![format!("r{j} = {val};")];
            self.group(
                &mut s,
                "        ",
                &vp,
                &Space::Elementwise,
                ("e", "eb", suf),
                &load_at,
                &g_at,
                &tail,
            )?;
            let (vt, pieces, _) = vec4(out);
            if pieces == 1 {
                let _ = writeln!(
                    s,
                    "        *({vt}*)(out0 + eb) = make_{vt}(r0, r1, r2, r3);"
                );
            } else {
                let _ = writeln!(s, "        (({vt}*)(out0 + eb))[0] = make_{vt}(r0, r1);");
                let _ = writeln!(s, "        (({vt}*)(out0 + eb))[1] = make_{vt}(r2, r3);");
            }
            s.push_str("    }\n");
            first = "(n4 << 2) + gid";
        }
        let _ = writeln!(
            s,
            "    for (unsigned long long e64 = {first}; e64 < n; e64 += stride) {{"
        );
        let _ = writeln!(s, "        const {idx} e = ({idx})e64;");
        self.insts(&mut s, "        ", &Space::Elementwise)?;
        let _ = writeln!(s, "        out0[e] = {val};");
        s.push_str("    }\n");
        Ok(s)
    }

    /// The 4-elements-per-thread plan, or None when no input and no draw gains from it: the
    /// inputs with unit stride over the loop's axes (read as 16-byte vectors; bool as 4 bytes)
    /// and the draws with unit global stride taking fewer than 4 Philox words a value (the 4
    /// elements share one or two Philox calls instead of one call each).
    fn vec_plan(&self) -> Option<VecPlan> {
        let ir = self.p.ir;
        let axes: Vec<usize> = match &self.p.red {
            None => (0..ir.shape.len()).collect(),
            Some(r) => r.axes.clone(),
        };
        let unit = |w: &[u64]| lin_form(&axes, &ir.shape, w) == LinForm::Scaled(1);
        let mut inputs = Vec::new();
        let mut draws = Vec::new();
        for (k, inst) in ir.insts.iter().enumerate() {
            match &inst.kind {
                InstKind::Load(i) => {
                    let i = *i as usize;
                    if !inputs.contains(&i) && unit(&self.load_weights(i)) {
                        inputs.push(i);
                    }
                }
                InstKind::Random { dist, gstrides, .. }
                    if unit(gstrides) && words_per_value(*dist, inst.dtype) < 4 =>
                {
                    draws.push(k);
                }
                _ => {}
            }
        }
        (!inputs.is_empty() || !draws.is_empty()).then_some(VecPlan { inputs, draws })
    }

    /// Emits one group of 4 consecutive elements: the vector loads (input `i` at
    /// `in{i} + load_at(i)`), the Philox calls the group's draws share (draw `k` of slot `p`
    /// starting at global index `g_at(k, p)`), then the 4 lanes, each in a scope of its own
    /// with `var = base + j`, its values, and `tail(j)`.
    #[allow(clippy::too_many_arguments)]
    fn group(
        &mut self,
        s: &mut String,
        ind: &str,
        vp: &VecPlan,
        space: &Space,
        (var, base, suf): (&str, &str, &str),
        load_at: &dyn Fn(usize) -> String,
        g_at: &dyn Fn(usize, u32) -> String,
        tail: &dyn Fn(usize) -> Vec<String>,
    ) -> Result<()> {
        let ir = self.p.ir;
        for &i in &vp.inputs {
            let (vt, pieces, _) = vec4(ir.inputs[i].dtype);
            let at = format!("in{i} + {}", load_at(i));
            if pieces == 1 {
                let _ = writeln!(s, "{ind}const {vt} L{i} = *(const {vt}*)({at});");
            } else {
                let _ = writeln!(s, "{ind}const {vt} L{i}a = ((const {vt}*)({at}))[0];");
                let _ = writeln!(s, "{ind}const {vt} L{i}b = ((const {vt}*)({at}))[1];");
            }
        }
        for &k in &vp.draws {
            let inst = &ir.insts[k];
            let InstKind::Random { dist, param, .. } = &inst.kind else {
                unreachable!("vec_plan lists draws only")
            };
            self.need("philox", None);
            self.need("words", None);
            let kw = words_per_value(*dist, inst.dtype);
            let per = 4 / kw;
            let p = *param;
            // Element `gb + j` uses words `kw * (o + j) ..` of the calls on counters
            // `c, c + 1, ..`: `kw` calls when `gb` is a multiple of `per`, one more otherwise.
            let _ = writeln!(s, "{ind}const unsigned long long gb{k} = {};", g_at(k, p));
            let _ = writeln!(
                s,
                "{ind}const unsigned int o{k} = (unsigned int)gb{k} & {}u;",
                per - 1
            );
            let _ = writeln!(
                s,
                "{ind}const unsigned long long c{k} = gb{k} >> {};",
                per.trailing_zeros()
            );
            for m in 0..kw {
                let _ = writeln!(
                    s,
                    "{ind}const tk_u4 w{k}_{m} = tk_philox(c{k} + {m}ull, stream{p}, seed{p});"
                );
            }
            let _ = writeln!(s, "{ind}tk_u4 w{k}_{kw} = w{k}_{};", kw - 1);
            let _ = writeln!(
                s,
                "{ind}if (o{k} != 0u) w{k}_{kw} = tk_philox(c{k} + {kw}ull, stream{p}, seed{p});"
            );
            let calls = (0..=kw)
                .map(|m| format!("w{k}_{m}"))
                .collect::<Vec<_>>()
                .join(", ");
            for j in 0..4 {
                for w in 0..kw {
                    let _ = writeln!(
                        s,
                        "{ind}const unsigned int q{k}_{j}_{w} = tk_word{}({calls}, (o{k} + {j}u) * {kw}u + {w}u);",
                        kw + 1
                    );
                }
            }
        }
        let idx = self.idx;
        for j in 0..4 {
            let _ = writeln!(s, "{ind}{{");
            let inner = format!("{ind}    ");
            let _ = writeln!(s, "{inner}const {idx} {var} = {base} + {j}{suf};");
            let _ = writeln!(s, "{inner}(void){var};");
            self.lane = Some((j, vp.clone()));
            let r = self.insts(s, &inner, space);
            self.lane = None;
            r?;
            for l in tail(j) {
                let _ = writeln!(s, "{inner}{l}");
            }
            let _ = writeln!(s, "{ind}}}");
        }
        Ok(())
    }

    fn load_weights(&self, k: usize) -> Vec<u64> {
        self.p.input_weights(k)
    }

    /// 64-bit global-index expression of a form over `l` (None when it is 0).
    fn off64(form: &LinForm, l: &str) -> Option<String> {
        let l64 = format!("(unsigned long long){l}");
        match form {
            LinForm::Scaled(0) => None,
            LinForm::Scaled(1) => Some(l64),
            LinForm::Scaled(s) => Some(format!("{l64} * {s}ull")),
            LinForm::Terms(ts) => Some(
                ts.iter()
                    .map(|t| {
                        let c = coord_expr(t, &l64, "ull");
                        if t.weight == 1 {
                            c
                        } else {
                            format!("{c} * {}ull", t.weight)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" + "),
            ),
        }
    }

    /// Whether the current lane reads input `i` from its group's vector load.
    fn lane_reads(&self, i: usize) -> bool {
        self.lane
            .as_ref()
            .is_some_and(|(_, vp)| vp.inputs.contains(&i))
    }

    /// Whether the current lane takes draw `k`'s words from its group's shared Philox calls.
    fn lane_draws(&self, k: usize) -> bool {
        self.lane
            .as_ref()
            .is_some_and(|(_, vp)| vp.draws.contains(&k))
    }

    fn insts(&mut self, s: &mut String, ind: &str, space: &Space) -> Result<()> {
        let ir = self.p.ir;
        let nd = ir.shape.len();
        let all: Vec<usize> = (0..nd).collect();
        let suf = self.suf;
        for (k, inst) in ir.insts.iter().enumerate() {
            let ty = vty(inst.dtype);
            let expr = match &inst.kind {
                InstKind::Load(i) if self.lane_reads(*i as usize) => {
                    let j = self.lane.as_ref().expect("in a lane").0;
                    lane_elem(*i as usize, j, inst.dtype)
                }
                InstKind::Random { dist, .. } if self.lane_draws(k) => {
                    let j = self.lane.as_ref().expect("in a lane").0;
                    let kw = words_per_value(*dist, inst.dtype) as usize;
                    let ws = [0, 1, 2, 3].map(|w| {
                        if w < kw {
                            format!("q{k}_{j}_{w}")
                        } else {
                            "0u".to_string()
                        }
                    });
                    self.random(*dist, inst.dtype, &ws)
                }
                InstKind::Load(i) => {
                    let i = *i as usize;
                    let w = self.load_weights(i);
                    let off = match space {
                        Space::Elementwise => off_expr(&lin_form(&all, &ir.shape, &w), "e", suf),
                        Space::Reduce(r) => {
                            let inner = off_expr(&lin_form(&r.axes, &ir.shape, &w), "r", suf);
                            let kept = lin_form(&r.kept, &ir.shape, &w);
                            match (kept == LinForm::Scaled(0), inner == format!("0{suf}")) {
                                (true, _) => inner,
                                (false, true) => format!("kb{i}"),
                                (false, false) => format!("kb{i} + {inner}"),
                            }
                        }
                    };
                    if inst.dtype == DType::Bool {
                        format!("in{i}[{off}] != 0")
                    } else {
                        format!("in{i}[{off}]")
                    }
                }
                InstKind::Const(c) => match const_val(*c, inst.dtype) {
                    ConstVal::Bool(b) => b.to_string(),
                    ConstVal::I32(v) => i32_lit(v),
                    ConstVal::I64(v) => i64_lit(v),
                    ConstVal::F32(v) => f32_lit(v),
                    ConstVal::F64(v) => f64_lit(v),
                },
                InstKind::Unary(op, a) => self.unary(*op, *a, inst.dtype)?,
                InstKind::Binary(op, a, b) => self.binary(*op, *a, *b)?,
                InstKind::Where(c, a, b) => format!("v{c} ? v{a} : v{b}"),
                InstKind::Cast(a) => self.cast(self.dtype(*a), inst.dtype, &format!("v{a}")),
                InstKind::Random {
                    dist,
                    gstrides,
                    param,
                } => {
                    let (first, part) = match space {
                        Space::Elementwise => (
                            format!("base{param}"),
                            Self::off64(&lin_form(&all, &ir.shape, gstrides), "e"),
                        ),
                        Space::Reduce(r) => (
                            format!("kg{k}"),
                            Self::off64(&lin_form(&r.axes, &ir.shape, gstrides), "r"),
                        ),
                    };
                    let g = match part {
                        Some(p) => format!("{first} + {p}"),
                        None => first,
                    };
                    let ws = self.philox_words(s, ind, k, &g, *param, *dist, inst.dtype);
                    self.random(*dist, inst.dtype, &ws)
                }
            };
            let _ = writeln!(s, "{ind}const {ty} v{k} = {expr};");
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
        self.need("philox", None);
        let kw = words_per_value(dist, d);
        let per = 4 / kw;
        if per == 1 {
            let _ = writeln!(
                s,
                "{ind}const tk_u4 w{k} = tk_philox({g}, stream{param}, seed{param});"
            );
            return ["x", "y", "z", "w"].map(|c| format!("w{k}.{c}"));
        }
        let sh = per.trailing_zeros();
        let _ = writeln!(s, "{ind}const unsigned long long g{k} = {g};");
        let _ = writeln!(
            s,
            "{ind}const tk_u4 w{k} = tk_philox(g{k} >> {sh}, stream{param}, seed{param});"
        );
        let _ = writeln!(
            s,
            "{ind}const unsigned int j{k} = (unsigned int)g{k} & {}u;",
            per - 1
        );
        if kw == 1 {
            [
                format!(
                    "(j{k} == 0u ? w{k}.x : j{k} == 1u ? w{k}.y : j{k} == 2u ? w{k}.z : w{k}.w)"
                ),
                "0u".into(),
                "0u".into(),
                "0u".into(),
            ]
        } else {
            [
                format!("(j{k} ? w{k}.z : w{k}.x)"),
                format!("(j{k} ? w{k}.w : w{k}.y)"),
                "0u".into(),
                "0u".into(),
            ]
        }
    }

    fn random(&mut self, dist: Dist, d: DType, w: &[String; 4]) -> String {
        let (w0, w1) = (&w[0], &w[1]);
        match (dist, d) {
            (Dist::Uniform { low, high }, DType::F32) => {
                let (lo, span) = uniform_f32(low.0, high.0);
                self.need("u01_f32", None);
                affine(
                    "f",
                    &f32_lit(lo),
                    &f32_lit(span),
                    format!("tk_u01_f32({w0})"),
                    lo == 0.0 && span > 0.0,
                    span == 1.0,
                )
            }
            (Dist::Uniform { low, high }, d) => {
                self.need("u01_f64", None);
                let (lo, span) = (low.0, high.0 - low.0);
                let v = affine(
                    "d",
                    &f64_lit(lo),
                    &f64_lit(span),
                    format!("tk_u01_f64({w0}, {w1})"),
                    lo == 0.0 && span > 0.0,
                    span == 1.0,
                );
                self.cast(DType::F64, d, &v)
            }
            (Dist::Normal { mean, std }, DType::F32) => {
                self.need("normal_f32", None);
                let (m, sd) = (mean.0 as f32, std.0 as f32);
                affine(
                    "f",
                    &f32_lit(m),
                    &f32_lit(sd),
                    format!("tk_normal_f32({w0}, {w1})"),
                    m == 0.0 && sd > 0.0,
                    sd == 1.0,
                )
            }
            (Dist::Normal { mean, std }, d) => {
                self.need("normal_f64", None);
                let v = affine(
                    "d",
                    &f64_lit(mean.0),
                    &f64_lit(std.0),
                    format!("tk_normal_f64({})", w.join(", ")),
                    mean.0 == 0.0 && std.0 > 0.0,
                    std.0 == 1.0,
                );
                self.cast(DType::F64, d, &v)
            }
            (Dist::RandInt { low, high }, d) => {
                self.need("randint", None);
                let v = format!(
                    "tk_randint({w0}, {w1}, {}, {}ull)",
                    i64_lit(low),
                    randint_range(low, high)
                );
                self.cast(DType::I64, d, &v)
            }
        }
    }

    fn cast(&mut self, from: DType, to: DType, x: &str) -> String {
        use DType::*;
        match (from, to) {
            _ if from == to => x.to_string(),
            (Bool, I32) => format!("({x} ? 1 : 0)"),
            (Bool, I64) => format!("({x} ? 1ll : 0ll)"),
            (Bool, F32) => format!("({x} ? 1.0f : 0.0f)"),
            (Bool, F64) => format!("({x} ? 1.0 : 0.0)"),
            (_, Bool) => format!("({x} != 0)"),
            (I32 | I64, _) => format!("({})({x})", vty(to)),
            (F32 | F64, F32 | F64) => format!("({})({x})", vty(to)),
            (F32 | F64, I32 | I64) => {
                let h = format!("{}_to_{}", suffix(from), suffix(to));
                self.need(&h, None);
                format!("tk_{h}({x})")
            }
        }
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
            let (f, sx) = if d == DType::F32 {
                ("f", "f32")
            } else {
                ("", "f64")
            };
            let p = if d == DType::F32 { "f" } else { "d" };
            let helper = |g: &mut Self, h: &str| {
                g.need(h, Some(d));
                format!("tk_{}_{sx}({x})", h.trim_end_matches("_T"))
            };
            return Ok(match op {
                Neg => format!("(-{x})"),
                Abs => format!("fabs{f}({x})"),
                Sign => helper(self, "sign_T"),
                Sqrt => format!("__{p}sqrt_rn({x})"),
                Exp => format!("exp{f}({x})"),
                Log => format!("log{f}({x})"),
                Log1p => format!("log1p{f}({x})"),
                Expm1 => format!("expm1{f}({x})"),
                Sin => format!("sin{f}({x})"),
                Cos => format!("cos{f}({x})"),
                Tan => format!("tan{f}({x})"),
                Tanh => format!("tanh{f}({x})"),
                Arcsin => format!("asin{f}({x})"),
                Arccos => format!("acos{f}({x})"),
                Arctan => format!("atan{f}({x})"),
                Floor => format!("floor{f}({x})"),
                Ceil => format!("ceil{f}({x})"),
                // rint: round half to even, as numpy.
                Round => format!("rint{f}({x})"),
                LogicalNot => format!("({x} == 0)"),
                IsNan => helper(self, "isnan_T"),
                IsInf => helper(self, "isinf_T"),
                IsFinite => helper(self, "isfinite_T"),
                Sinh => format!("sinh{f}({x})"),
                Cosh => format!("cosh{f}({x})"),
                Arcsinh => format!("asinh{f}({x})"),
                Arccosh => format!("acosh{f}({x})"),
                Arctanh => format!("atanh{f}({x})"),
                Log2 => format!("log2{f}({x})"),
                Log10 => format!("log10{f}({x})"),
                Exp2 => format!("exp2{f}({x})"),
                Trunc => format!("trunc{f}({x})"),
                Cbrt => format!("cbrt{f}({x})"),
                Square => format!("__{p}mul_rn({x}, {x})"),
                Reciprocal => format!("__{p}div_rn(1.0{f}, {x})"),
                Signbit => format!("(signbit({x}) != 0)"),
                Invert => return Err(Error::dtype_unsupported(op.name(), d)),
            });
        }
        if d.is_int() {
            let sx = suffix(d);
            return Ok(match op {
                Neg => {
                    self.need("intops_T", Some(d));
                    format!("tk_neg_{sx}({x})")
                }
                Abs => {
                    self.need("intops_T", Some(d));
                    format!("tk_abs_{sx}({x})")
                }
                Sign => format!("({})(({x} > 0) - ({x} < 0))", vty(d)),
                Floor | Ceil | Round | Trunc => x,
                Square => {
                    self.need("intops_T", Some(d));
                    format!("tk_mul_{sx}({x}, {x})")
                }
                Reciprocal => {
                    self.need("intbits_T", Some(d));
                    format!("tk_recip_{sx}({x})")
                }
                Invert => format!("(~{x})"),
                LogicalNot => format!("({x} == 0)"),
                IsNan | IsInf => "false".into(),
                IsFinite => "true".into(),
                _ => {
                    return Err(invalid(format!(
                        "{} of {d} (the graph casts to float first)",
                        op.name()
                    )))
                }
            });
        }
        Ok(match op {
            Abs | Floor | Ceil | Round | Trunc => x,
            LogicalNot | Invert => format!("!{x}"),
            IsNan | IsInf => "false".into(),
            IsFinite => "true".into(),
            _ => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
        })
    }

    fn binary(&mut self, op: BinaryOp, a: u32, b: u32) -> Result<String> {
        use BinaryOp::*;
        let d = self.dtype(a);
        let (x, y) = (format!("v{a}"), format!("v{b}"));
        let sx = suffix(d);
        let cmp = |o: &str| format!("({x} {o} {y})");
        match op {
            Eq => return Ok(cmp("==")),
            Ne => return Ok(cmp("!=")),
            Lt if d != DType::Bool => return Ok(cmp("<")),
            Le if d != DType::Bool => return Ok(cmp("<=")),
            Gt if d != DType::Bool => return Ok(cmp(">")),
            Ge if d != DType::Bool => return Ok(cmp(">=")),
            And => return Ok(format!("(({x} != 0) && ({y} != 0))")),
            Or => return Ok(format!("(({x} != 0) || ({y} != 0))")),
            Xor => return Ok(format!("(({x} != 0) != ({y} != 0))")),
            _ => {}
        }
        if d.is_float() {
            let p = if d == DType::F32 { "f" } else { "d" };
            let f = if d == DType::F32 { "f" } else { "" };
            return Ok(match op {
                Add => format!("__{p}add_rn({x}, {y})"),
                Sub => format!("__{p}sub_rn({x}, {y})"),
                Mul => format!("__{p}mul_rn({x}, {y})"),
                Div => format!("__{p}div_rn({x}, {y})"),
                FloorDiv => {
                    self.need("divmod_T", Some(d));
                    format!("tk_divmod_{sx}({x}, {y}).q")
                }
                Mod => {
                    self.need("divmod_T", Some(d));
                    format!("tk_divmod_{sx}({x}, {y}).r")
                }
                Pow => {
                    self.need("pow_T", Some(d));
                    format!("tk_pow_{sx}({x}, {y})")
                }
                Maximum => {
                    self.need("maximum_T", Some(d));
                    format!("tk_maximum_{sx}({x}, {y})")
                }
                Minimum => {
                    self.need("minimum_T", Some(d));
                    format!("tk_minimum_{sx}({x}, {y})")
                }
                Arctan2 => format!("atan2{f}({x}, {y})"),
                Hypot => format!("hypot{f}({x}, {y})"),
                Copysign => format!("copysign{f}({x}, {y})"),
                Nextafter => format!("nextafter{f}({x}, {y})"),
                Logaddexp => {
                    self.need("logaddexp_T", Some(d));
                    format!("tk_logaddexp_{sx}({x}, {y})")
                }
                BitAnd | BitOr | BitXor | LeftShift | RightShift => {
                    return Err(Error::dtype_unsupported(op.name(), d))
                }
                _ => unreachable!("comparisons handled above"),
            });
        }
        if d.is_int() {
            if op == Div {
                return Err(invalid(format!(
                    "true_divide of {d} (the graph casts to float first)"
                )));
            }
            let f = match op {
                Add => "add",
                Sub => "sub",
                Mul => "mul",
                FloorDiv => "floordiv",
                Mod => "mod",
                Pow => "pow",
                Maximum => return Ok(format!("({x} > {y} ? {x} : {y})")),
                Minimum => return Ok(format!("({x} < {y} ? {x} : {y})")),
                BitAnd => return Ok(format!("({x} & {y})")),
                BitOr => return Ok(format!("({x} | {y})")),
                BitXor => return Ok(format!("({x} ^ {y})")),
                LeftShift | RightShift => {
                    self.need("intbits_T", Some(d));
                    let f = if op == LeftShift { "shl" } else { "shr" };
                    return Ok(format!("tk_{f}_{sx}({x}, {y})"));
                }
                Arctan2 | Hypot | Copysign | Nextafter | Logaddexp => {
                    return Err(invalid(format!(
                        "{} of {d} (the graph casts to float first)",
                        op.name()
                    )))
                }
                _ => unreachable!("handled above"),
            };
            self.need("intops_T", Some(d));
            return Ok(format!("tk_{f}_{sx}({x}, {y})"));
        }
        Ok(match op {
            Add | Maximum | BitOr => format!("({x} || {y})"),
            Mul | Minimum | BitAnd => format!("({x} && {y})"),
            BitXor => format!("({x} != {y})"),
            Lt => format!("(!{x} && {y})"),
            Le => format!("(!{x} || {y})"),
            Gt => format!("({x} && !{y})"),
            Ge => format!("({x} || !{y})"),
            _ => return Err(Error::dtype_unsupported(op.name(), DType::Bool)),
        })
    }

    fn reduction(&mut self, r: &RedPlan) -> Result<String> {
        let ir = self.p.ir;
        let d = ir.result_dtype();
        let (idx, suf) = (self.idx, self.suf);
        let acc = Acc::new(self, r.kind, d);
        let mut s = String::new();
        for (k, t) in acc.shared.iter().enumerate() {
            let _ = writeln!(s, "    __shared__ {t} sh{k}[256];");
        }
        s.push_str("    const unsigned int lid = threadIdx.x;\n");
        s.push_str("    const unsigned long long row64 = (unsigned long long)blockIdx.y * gridDim.x + blockIdx.x;\n");
        let _ = writeln!(s, "    if (row64 >= {}ull) return;", r.rows);
        let _ = writeln!(s, "    const {idx} row = ({idx})row64;");
        for k in 0..ir.inputs.len() {
            let form = lin_form(&r.kept, &ir.shape, &self.load_weights(k));
            if form != LinForm::Scaled(0) {
                let _ = writeln!(
                    s,
                    "    const {idx} kb{k} = {};",
                    off_expr(&form, "row", suf)
                );
            }
        }
        for (k, inst) in ir.insts.iter().enumerate() {
            if let InstKind::Random {
                gstrides, param, ..
            } = &inst.kind
            {
                let g = match Self::off64(&lin_form(&r.kept, &ir.shape, gstrides), "row") {
                    Some(p) => format!("base{param} + {p}"),
                    None => format!("base{param}"),
                };
                let _ = writeln!(s, "    const unsigned long long kg{k} = {g};");
            }
        }
        for l in &acc.init {
            let _ = writeln!(s, "    {l}");
        }
        let mut first = "lid";
        if let Some(vp) = self.vec_plan() {
            // Each thread takes groups of 4 consecutive elements of the row while the row's
            // vector reads are aligned, then the scalar loop takes the rest.
            let has_kb = |i: usize| {
                lin_form(&r.kept, &ir.shape, &self.load_weights(i)) != LinForm::Scaled(0)
            };
            let conds: Vec<String> = vp
                .inputs
                .iter()
                .map(|&i| {
                    let p = if has_kb(i) {
                        format!("in{i} + kb{i}")
                    } else {
                        format!("in{i}")
                    };
                    align_cond(&p, ir.inputs[i].dtype)
                })
                .collect();
            let e4 = r.extent / 4 * 4;
            if conds.is_empty() {
                let _ = writeln!(s, "    const {idx} e4 = {e4}{suf};");
            } else {
                let _ = writeln!(
                    s,
                    "    const {idx} e4 = ({}) ? {e4}{suf} : 0{suf};",
                    conds.join(" && ")
                );
            }
            let _ = writeln!(
                s,
                "    for ({idx} rb = ({idx})lid * 4{suf}; rb < e4; rb += 1024{suf}) {{"
            );
            let kbs: Vec<bool> = (0..ir.inputs.len()).map(has_kb).collect();
            let load_at = |i: usize| {
                if kbs[i] {
                    format!("kb{i} + rb")
                } else {
                    "rb".to_string()
                }
            };
            let g_at = |k: usize, _: u32| format!("kg{k} + (unsigned long long)rb");
            let update: Vec<String> = acc
                .update
                .iter()
                .map(|l| l.replace("$v", &format!("v{}", ir.result)))
                .collect();
            let tail = |_: usize| update.clone();
            self.group(
                &mut s,
                "        ",
                &vp,
                &Space::Reduce(r),
                ("r", "rb", suf),
                &load_at,
                &g_at,
                &tail,
            )?;
            s.push_str("    }\n");
            first = "e4 + lid";
        }
        let _ = writeln!(
            s,
            "    for ({idx} r = {first}; r < {}{suf}; r += 256{suf}) {{",
            r.extent
        );
        self.insts(&mut s, "        ", &Space::Reduce(r))?;
        for l in &acc.update {
            let _ = writeln!(s, "        {}", l.replace("$v", &format!("v{}", ir.result)));
        }
        s.push_str("    }\n");
        for l in &acc.store {
            let _ = writeln!(s, "    {l}");
        }
        s.push_str("    __syncthreads();\n");
        let _ = writeln!(
            s,
            "    for (unsigned int step = {}u; step > 0u; step >>= 1) {{",
            WORKGROUP / 2
        );
        s.push_str(
            "        if (lid < step) {\n            const unsigned int i = lid, j = lid + step;\n",
        );
        for l in &acc.combine {
            let _ = writeln!(s, "            {l}");
        }
        s.push_str("        }\n        __syncthreads();\n    }\n");
        s.push_str("    if (lid == 0) {\n");
        for l in &acc.output {
            let _ = writeln!(s, "        {l}");
        }
        s.push_str("    }\n");
        Ok(s)
    }
}

/// `lo + span * u` rounding twice like the CPU (`p`: `f` or `d` intrinsics); for `lo = 0`,
/// `span > 0` the sum is exact and left out.
fn affine(p: &str, lo: &str, span: &str, u: String, lo_zero: bool, span_one: bool) -> String {
    match (lo_zero, span_one) {
        (true, true) => u,
        (true, false) => format!("__{p}mul_rn({span}, {u})"),
        _ => format!("__{p}add_rn({lo}, __{p}mul_rn({span}, {u}))"),
    }
}

/// The accumulator of a reduction.
struct Acc {
    shared: Vec<String>,
    init: Vec<String>,
    /// Loop lines; `$v` is the value.
    update: Vec<String>,
    store: Vec<String>,
    /// Lines merging element `j` into `i` of the shared arrays.
    combine: Vec<String>,
    output: Vec<String>,
}

impl Acc {
    fn new(g: &mut Gen, kind: ReduceKind, d: DType) -> Acc {
        let as_f64 = match d {
            DType::Bool => "($v ? 1.0 : 0.0)".to_string(),
            DType::F64 => "$v".into(),
            _ => "(double)$v".into(),
        };
        let as_u64 = match d {
            DType::Bool => "($v ? 1ull : 0ull)".to_string(),
            _ => "(unsigned long long)(long long)$v".into(),
        };
        let t = vty(d);
        let simple = |t: &str, init: &str, upd: String, comb: String, out: &str| Acc {
            shared: vec![t.into()],
            init: vec![format!("{t} acc = {init};")],
            update: vec![upd],
            store: vec!["sh0[lid] = acc;".into()],
            combine: vec![format!("sh0[i] = {comb};")],
            output: vec![format!("out0[row] = {out};")],
        };
        match kind {
            ReduceKind::Reduce(op) => match op {
                ReduceOp::Sum | ReduceOp::Mean if op == ReduceOp::Mean || d.is_float() => simple(
                    "double",
                    "0.0",
                    format!("acc += {as_f64};"),
                    "sh0[i] + sh0[j]".into(),
                    "sh0[0]",
                ),
                ReduceOp::Prod if d.is_float() => simple(
                    "double",
                    "1.0",
                    format!("acc *= {as_f64};"),
                    "sh0[i] * sh0[j]".into(),
                    "sh0[0]",
                ),
                // Mean always takes the f64 arm above.
                ReduceOp::Sum | ReduceOp::Mean => simple(
                    "unsigned long long",
                    "0ull",
                    format!("acc += {as_u64};"),
                    "sh0[i] + sh0[j]".into(),
                    "(long long)sh0[0]",
                ),
                ReduceOp::Prod => simple(
                    "unsigned long long",
                    "1ull",
                    format!("acc *= {as_u64};"),
                    "sh0[i] * sh0[j]".into(),
                    "(long long)sh0[0]",
                ),
                ReduceOp::Var | ReduceOp::Std => Acc {
                    shared: vec!["double".into(); 3],
                    init: vec!["double acc_n = 0.0, acc_mean = 0.0, acc_m2 = 0.0;".into()],
                    update: vec![
                        format!("const double x = {as_f64};"),
                        "acc_n += 1.0;".into(),
                        "const double dx = x - acc_mean;".into(),
                        "acc_mean += dx / acc_n;".into(),
                        "acc_m2 += dx * (x - acc_mean);".into(),
                    ],
                    store: vec![
                        "sh0[lid] = acc_n;".into(),
                        "sh1[lid] = acc_mean;".into(),
                        "sh2[lid] = acc_m2;".into(),
                    ],
                    combine: vec![
                        "// Chan et al.: merge Welford state j into i.".into(),
                        "const double na = sh0[i], nb = sh0[j], nn = na + nb;".into(),
                        "if (nn != 0.0) {".into(),
                        "    const double dd = sh1[j] - sh1[i];".into(),
                        "    sh1[i] = sh1[i] + dd * nb / nn;".into(),
                        "    sh2[i] = sh2[i] + sh2[j] + dd * dd * na * nb / nn;".into(),
                        "    sh0[i] = nn;".into(),
                        "}".into(),
                    ],
                    output: vec!["out0[row] = sh1[0];".into(), "out1[row] = sh2[0];".into()],
                },
                ReduceOp::Min | ReduceOp::Max => {
                    let max = op == ReduceOp::Max;
                    let (ident, f) = match d {
                        DType::F32 | DType::F64 => {
                            g.need("extreme_T", Some(d));
                            let inf = if d == DType::F32 {
                                f32_lit(if max {
                                    f32::NEG_INFINITY
                                } else {
                                    f32::INFINITY
                                })
                            } else {
                                f64_lit(if max {
                                    f64::NEG_INFINITY
                                } else {
                                    f64::INFINITY
                                })
                            };
                            let f = format!(
                                "tk_f{}_red_{}",
                                if max { "max" } else { "min" },
                                suffix(d)
                            );
                            (inf, f)
                        }
                        DType::I32 => (
                            i32_lit(if max { i32::MIN } else { i32::MAX }),
                            String::new(),
                        ),
                        DType::I64 => (
                            i64_lit(if max { i64::MIN } else { i64::MAX }),
                            String::new(),
                        ),
                        DType::Bool => ((!max).to_string(), String::new()),
                    };
                    let pick = |a: &str, b: &str| {
                        if f.is_empty() {
                            let c = if max { ">" } else { "<" };
                            format!("({b} {c} {a} ? {b} : {a})")
                        } else {
                            format!("{f}({a}, {b})")
                        }
                    };
                    let out = if d == DType::Bool {
                        "(unsigned char)(sh0[0] ? 1 : 0)"
                    } else {
                        "sh0[0]"
                    };
                    simple(
                        t,
                        &ident,
                        format!("acc = {};", pick("acc", "$v")),
                        pick("sh0[i]", "sh0[j]"),
                        out,
                    )
                }
                ReduceOp::Any | ReduceOp::All => {
                    let any = op == ReduceOp::Any;
                    let truth = if d == DType::Bool { "$v" } else { "($v != 0)" };
                    simple(
                        "bool",
                        if any { "false" } else { "true" },
                        format!("acc = acc {} {truth};", if any { "||" } else { "&&" }),
                        format!("sh0[i] {} sh0[j]", if any { "||" } else { "&&" }),
                        "(unsigned char)(sh0[0] ? 1 : 0)",
                    )
                }
            },
            ReduceKind::Arg(op) => {
                let c = if op == ArgOp::ArgMax { ">" } else { "<" };
                // better(cand, best): NaN beats everything and is never beaten.
                if d.is_float() {
                    g.need("isnan_T", Some(d));
                }
                let better = |cand: &str, best: &str| {
                    if d.is_float() {
                        let sx = suffix(d);
                        format!(
                            "(!tk_isnan_{sx}({best}) && (tk_isnan_{sx}({cand}) || {cand} {c} {best}))"
                        )
                    } else {
                        format!("({cand} {c} {best})")
                    }
                };
                let out = if d == DType::Bool {
                    "(unsigned char)(sh0[0] ? 1 : 0)"
                } else {
                    "sh0[0]"
                };
                Acc {
                    shared: vec![t.into(), "unsigned long long".into()],
                    init: vec![
                        format!("{t} best = ({t})0;"),
                        "unsigned long long best_i = ~0ull;".into(),
                    ],
                    update: vec![
                        format!("if (best_i == ~0ull || {}) {{", better("$v", "best")),
                        "    best = $v;".into(),
                        "    best_i = r;".into(),
                        "}".into(),
                    ],
                    store: vec!["sh0[lid] = best;".into(), "sh1[lid] = best_i;".into()],
                    combine: vec![
                        "// Keep the better value; on ties (or two NaNs) the lower index.".into(),
                        "const unsigned long long ai = sh1[i], bi = sh1[j];".into(),
                        format!(
                            "if (bi != ~0ull && (ai == ~0ull || {} || (!{} && bi < ai))) {{",
                            better("sh0[j]", "sh0[i]"),
                            better("sh0[i]", "sh0[j]")
                        ),
                        "    sh0[i] = sh0[j];".into(),
                        "    sh1[i] = bi;".into(),
                        "}".into(),
                    ],
                    output: vec![
                        format!("out0[row] = {out};"),
                        "out1[row] = (long long)(arg_base + sh1[0]);".into(),
                    ],
                }
            }
        }
    }
}
