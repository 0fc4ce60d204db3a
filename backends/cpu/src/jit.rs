//! The CPU code generator: the elementwise body of a fused kernel rendered as one C loop,
//! compiled by the system C compiler into a shared library and loaded (the design of
//! PyTorch Inductor's C++ backend, for Tessera's KernelIr).
//!
//! The interpreter (`fused.rs`) evaluates a kernel one instruction at a time, each over a
//! block-sized register. That is one pass over L1/L2 per instruction: Monte Carlo pi makes
//! five of them per block after its two random draws. The compiled body makes one pass: every
//! intermediate stays in a vector register, and the compiler vectorizes the loop for the host
//! CPU (`-march=native`).
//!
//! What is compiled: every instruction the interpreter would compute into a register or into
//! the output, except the leaves (random draws, strided loads), which the interpreter still
//! produces into registers: Philox has its own vector code, and gathers are index walks. Its
//! operands (the kernel's leaves) are block columns (inputs read in place, leaf registers)
//! or scalars (folded constants, broadcast values), passed as pointers; constants are not
//! baked into the source, so `(x + 1) * 2` and `(x + 3) * 5` share one library.
//!
//! Exactness: the C renders each op as the interpreter's op table defines it (wrapping
//! integer arithmetic through unsigned types, numpy's NaN-propagating minimum/maximum,
//! saturating float-to-int casts), compiled without FMA contraction (`-ffp-contract=off`)
//! or any fast-math flag; transcendental functions call the same libm the Rust code calls.
//! Ops without such a rendering (integer floor division, modulo and power, float floor
//! division, modulo and round) leave the whole kernel to the interpreter. Tests check the
//! compiled kernels against the interpreter bit for bit.
//!
//! Kernel ABI: `void tessera_cpu_kernel(size_t n, const void *const *leaf, void *out)`;
//! `leaf[j]` points at `n` values of leaf `j` (a column) or at its one value (a scalar);
//! `out` receives `n` values of the result dtype. bool is one byte, 0 or 1.
//!
//! Libraries are cached in memory per process and on disk per machine (by a hash of the
//! source, the compiler command and the CPU it compiles for; the source is kept beside its
//! library), so a kernel compiles once. Where no compiler runs, or a compile fails or times
//! out, the interpreter runs the kernel (and [`status`] says why).
//!
//! The disk cache holds code, so nothing is loaded from it unproven: the folder must be this
//! user's and closed to other users' writes (`cachedir`; else each library is built in a
//! private temporary folder and not kept), and a library `k<hash>.so` is loaded only when its
//! bytes match the digest record `k<hash>.meta` written with it (the kernel's signature, length
//! and SHA-256) and, once loaded, its `tessera_kernel_key()` returns that signature. Anything
//! else (a library cut short, another kernel's library) is removed, compiled again and replaced.
//! Files are published by rename from unique temporaries (pid and token in the name), so a
//! published file never changes; temporaries of dead writers are removed when the cache opens.
//!
//! Settings: `TESSERA_CPU_JIT` = `0`/`off` (interpreter only), `auto` (default: kernels over
//! at least [`AUTO_MIN`] elements, where a compile pays off) or `always`; `TESSERA_CC` (the
//! compiler, default `cc`); `TESSERA_CC_TIMEOUT` (seconds, default 60); the disk cache is
//! `<cache root>/cpu-jit` with the cache root of `cachedir::root`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cachedir;
use tessera_runtime::ir::{InstKind, KernelIr};
use tessera_runtime::op::{BinaryOp, UnaryOp};
use tessera_runtime::DType;

/// Kernels smaller than this (elements) stay interpreted in `auto` mode.
pub const AUTO_MIN: usize = 1 << 16;

/// Most leaves a compiled kernel takes.
pub(crate) const MAX_LEAVES: usize = 32;

/// When fused kernels are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitMode {
    /// Never: the interpreter runs every kernel.
    Off,
    /// Kernels over at least [`AUTO_MIN`] elements.
    Auto,
    /// Every kernel that has a compiled form.
    Always,
}

/// 0 = not read from the environment yet.
static MODE: AtomicU8 = AtomicU8::new(0);

fn encode(m: JitMode) -> u8 {
    match m {
        JitMode::Off => 1,
        JitMode::Auto => 2,
        JitMode::Always => 3,
    }
}

/// The current mode (from `TESSERA_CPU_JIT` until [`set_mode`] is called).
pub fn mode() -> JitMode {
    match MODE.load(Ordering::Relaxed) {
        1 => JitMode::Off,
        2 => JitMode::Auto,
        3 => JitMode::Always,
        _ => {
            let m = match std::env::var("TESSERA_CPU_JIT").as_deref() {
                Ok("0") | Ok("off") => JitMode::Off,
                Ok("always") => JitMode::Always,
                _ => JitMode::Auto,
            };
            MODE.store(encode(m), Ordering::Relaxed);
            m
        }
    }
}

/// Sets when fused kernels are compiled (process-wide).
pub fn set_mode(m: JitMode) {
    MODE.store(encode(m), Ordering::Relaxed);
}

/// Whether a kernel over `n` elements should be compiled in the current mode.
pub(crate) fn wanted(n: usize) -> bool {
    match mode() {
        JitMode::Off => false,
        JitMode::Auto => n >= AUTO_MIN,
        JitMode::Always => true,
    }
}

/// What the compiler has done in this process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JitStatus {
    /// Libraries compiled by this process.
    pub compiled: usize,
    /// Libraries loaded from the disk cache.
    pub loaded: usize,
    /// Compiles that failed.
    pub failed: usize,
    /// Disk cache entries that failed verification and were compiled again and replaced.
    pub replaced: usize,
    /// Kernel runs that used a compiled body.
    pub runs: usize,
    /// The last failure (compiler missing, or its message), if any.
    pub last_error: Option<String>,
}

static STATUS: Mutex<JitStatus> = Mutex::new(JitStatus {
    compiled: 0,
    loaded: 0,
    failed: 0,
    replaced: 0,
    runs: 0,
    last_error: None,
});

/// The compiler's record in this process.
pub fn status() -> JitStatus {
    STATUS.lock().map(|s| s.clone()).unwrap_or_default()
}

/// How a kernel reads one leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// `n` values, one per element.
    Col(DType),
    /// One value for every element.
    Scalar(DType),
}

/// Where the compiled body finds instruction `k`'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// Leaf `j` of the ABI.
    Leaf(usize),
    /// Computed in the loop.
    Body,
}

/// The compiled entry point.
type KernelFn = unsafe extern "C" fn(usize, *const *const c_void, *mut c_void);

/// A loaded kernel library.
pub(crate) struct Kernel {
    f: KernelFn,
    /// Keeps the code mapped for as long as `f` may be called.
    _lib: libloading::Library,
}

impl Kernel {
    /// Runs the kernel over `n` elements.
    ///
    /// # Safety
    /// `leaves[j]` must point at `n` readable values (a column leaf) or one (a scalar leaf)
    /// of the dtype the kernel was rendered with, and `out` at `n` writable values of the
    /// result dtype; `leaves` holds at least as many pointers as the kernel has leaves.
    pub(crate) unsafe fn call(&self, n: usize, leaves: &[*const c_void], out: *mut c_void) {
        // SAFETY: the caller's contract is the kernel's ABI (module docs).
        unsafe { (self.f)(n, leaves.as_ptr(), out) }
    }
}

/// C type of a value (bool is a 0/1 byte).
fn cty(d: DType) -> &'static str {
    match d {
        DType::Bool => "uint8_t",
        DType::I32 => "int32_t",
        DType::I64 => "int64_t",
        DType::F32 => "float",
        DType::F64 => "double",
    }
}

/// Unsigned twin of an integer C type (wrapping arithmetic).
fn uty(d: DType) -> &'static str {
    match d {
        DType::I32 => "uint32_t",
        _ => "uint64_t",
    }
}

/// libm name of a float function for `d` (`sqrt` -> `sqrtf` for f32).
fn fname(base: &str, d: DType) -> String {
    if d == DType::F32 {
        format!("{base}f")
    } else {
        base.to_string()
    }
}

fn zero(d: DType) -> &'static str {
    match d {
        DType::F32 => "0.0f",
        DType::F64 => "0.0",
        _ => "0",
    }
}

/// `op(a, b)` for operands of dtype `d`, as the interpreter's op tables define it.
fn binary(op: BinaryOp, d: DType, a: &str, b: &str) -> Option<String> {
    use BinaryOp::*;
    let z = zero(d);
    let logic = |op: BinaryOp| match op {
        Eq => Some(format!("({a} == {b})")),
        Ne => Some(format!("({a} != {b})")),
        Lt => Some(format!("({a} < {b})")),
        Le => Some(format!("({a} <= {b})")),
        Gt => Some(format!("({a} > {b})")),
        Ge => Some(format!("({a} >= {b})")),
        And => Some(format!("(({a} != {z}) & ({b} != {z}))")),
        Or => Some(format!("(({a} != {z}) | ({b} != {z}))")),
        Xor => Some(format!("(({a} != {z}) ^ ({b} != {z}))")),
        _ => None,
    };
    match d {
        DType::F32 | DType::F64 => {
            let t = cty(d);
            match op {
                Add => Some(format!("({a} + {b})")),
                Sub => Some(format!("({a} - {b})")),
                Mul => Some(format!("({a} * {b})")),
                Div => Some(format!("({a} / {b})")),
                Pow => Some(format!("{}({a}, {b})", fname("pow", d))),
                Maximum => Some(format!(
                    "((isnan({a}) || isnan({b})) ? ({t})NAN : ({a} >= {b} ? {a} : {b}))"
                )),
                Minimum => Some(format!(
                    "((isnan({a}) || isnan({b})) ? ({t})NAN : ({a} <= {b} ? {a} : {b}))"
                )),
                Arctan2 => Some(format!("{}({a}, {b})", fname("atan2", d))),
                Hypot => Some(format!("{}({a}, {b})", fname("hypot", d))),
                Copysign => Some(format!("{}({a}, {b})", fname("copysign", d))),
                Nextafter => Some(format!("{}({a}, {b})", fname("nextafter", d))),
                // Branchy (npy_logaddexp's cases): left to the interpreter.
                FloorDiv | Mod | Logaddexp => None,
                _ => logic(op),
            }
        }
        DType::I32 | DType::I64 => {
            let (t, u) = (cty(d), uty(d));
            match op {
                Add => Some(format!("({t})(({u}){a} + ({u}){b})")),
                Sub => Some(format!("({t})(({u}){a} - ({u}){b})")),
                Mul => Some(format!("({t})(({u}){a} * ({u}){b})")),
                Maximum => Some(format!("({a} > {b} ? {a} : {b})")),
                Minimum => Some(format!("({a} < {b} ? {a} : {b})")),
                BitAnd => Some(format!("({a} & {b})")),
                BitOr => Some(format!("({a} | {b})")),
                BitXor => Some(format!("({a} ^ {b})")),
                // numpy's npy_lshift/npy_rshift: a count outside 0..bits (negative ones are huge
                // as unsigned) gives 0, or -1 for a right shift of a negative value.
                LeftShift => Some(format!(
                    "(({u}){b} < {bits} ? ({t})(({u}){a} << ({u}){b}) : ({t})0)",
                    bits = d.size() * 8
                )),
                RightShift => Some(format!(
                    "(({u}){b} < {bits} ? ({t})({a} >> ({u}){b}) : ({t})({a} < 0 ? -1 : 0))",
                    bits = d.size() * 8
                )),
                Div | FloorDiv | Mod | Pow => None,
                _ => logic(op),
            }
        }
        DType::Bool => match op {
            Add | Or | Maximum | BitOr => Some(format!("({a} | {b})")),
            Mul | And | Minimum | BitAnd => Some(format!("({a} & {b})")),
            BitXor => Some(format!("({a} ^ {b})")),
            Eq => Some(format!("({a} == {b})")),
            Ne | Xor => Some(format!("({a} ^ {b})")),
            Lt => Some(format!("(({a} ^ 1) & {b})")),
            Le => Some(format!("({a} <= {b})")),
            Gt => Some(format!("({a} & ({b} ^ 1))")),
            Ge => Some(format!("({a} >= {b})")),
            _ => None,
        },
    }
}

/// `op(a)` for an operand of dtype `d`, as the interpreter's op tables define it.
fn unary(op: UnaryOp, d: DType, a: &str) -> Option<String> {
    use UnaryOp::*;
    let call = |f: &str| Some(format!("{}({a})", fname(f, d)));
    match d {
        DType::F32 | DType::F64 => {
            let (one, z) = if d == DType::F32 {
                ("1.0f", "0.0f")
            } else {
                ("1.0", "0.0")
            };
            match op {
                Neg => Some(format!("(-{a})")),
                Abs => call("fabs"),
                Sign => Some(format!(
                    "(isnan({a}) ? {a} : ({a} > {z} ? {one} : ({a} < {z} ? -{one} : {z})))"
                )),
                Sqrt => call("sqrt"),
                Exp => call("exp"),
                Log => call("log"),
                Log1p => call("log1p"),
                Expm1 => call("expm1"),
                Sin => call("sin"),
                Cos => call("cos"),
                Tan => call("tan"),
                Tanh => call("tanh"),
                Arcsin => call("asin"),
                Arccos => call("acos"),
                Arctan => call("atan"),
                Floor => call("floor"),
                Ceil => call("ceil"),
                // numpy's half-to-even rounding differs from rint on signed zeros.
                Round => None,
                LogicalNot => Some(format!("({a} == {z})")),
                IsNan => Some(format!("(isnan({a}) != 0)")),
                IsInf => Some(format!("(isinf({a}) != 0)")),
                IsFinite => Some(format!("(isfinite({a}) != 0)")),
                Sinh => call("sinh"),
                Cosh => call("cosh"),
                // Rust's own formulas for these differ from libm's by an ulp (and in a NaN's
                // sign): left to the interpreter so compiled and interpreted results agree.
                Arcsinh | Arccosh | Arctanh | Cbrt => None,
                Log2 => call("log2"),
                Log10 => call("log10"),
                Exp2 => call("exp2"),
                Trunc => call("trunc"),
                Square => Some(format!("({a} * {a})")),
                Reciprocal => Some(format!("({one} / {a})")),
                Signbit => Some(format!("(signbit({a}) != 0)")),
                Invert => None,
            }
        }
        DType::I32 | DType::I64 => {
            let (t, u) = (cty(d), uty(d));
            match op {
                Neg => Some(format!("({t})(({u})0 - ({u}){a})")),
                Abs => Some(format!("({a} < 0 ? ({t})(({u})0 - ({u}){a}) : {a})")),
                Sign => Some(format!("({t})(({a} > 0) - ({a} < 0))")),
                Floor | Ceil | Round | Trunc => Some(a.to_string()),
                Square => Some(format!("({t})(({u}){a} * ({u}){a})")),
                Invert => Some(format!("({t})(~{a})")),
                LogicalNot => Some(format!("({a} == 0)")),
                IsNan | IsInf => Some("0".into()),
                IsFinite => Some("1".into()),
                _ => None,
            }
        }
        DType::Bool => match op {
            Abs | Floor | Ceil | Round | Trunc => Some(a.to_string()),
            LogicalNot | Invert => Some(format!("({a} ^ 1)")),
            IsNan | IsInf => Some("0".into()),
            IsFinite => Some("1".into()),
            _ => None,
        },
    }
}

/// `a` (dtype `s`) as dtype `t`, with `HostArray::cast`'s semantics.
fn cast(s: DType, t: DType, a: &str) -> String {
    match (s, t) {
        _ if s == t => a.to_string(),
        (_, DType::Bool) => format!("({a} != {})", zero(s)),
        (DType::Bool, _) => format!("({})({a})", cty(t)),
        (DType::F32 | DType::F64, DType::I32) => format!("tsr_f2i32((double)({a}))"),
        (DType::F32 | DType::F64, DType::I64) => format!("tsr_f2i64((double)({a}))"),
        (DType::I32 | DType::I64, DType::F32 | DType::F64) => {
            format!("({})(int64_t)({a})", cty(t))
        }
        _ => format!("({})({a})", cty(t)),
    }
}

const PRELUDE: &str = "\
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Rust's saturating float-to-int `as`: NaN is 0, out-of-range values clamp. */
static inline int32_t tsr_f2i32(double v) {
    return v != v ? 0 : v >= 2147483647.0 ? INT32_MAX : v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
}
static inline int64_t tsr_f2i64(double v) {
    return v != v ? 0
         : v >= 9223372036854775807.0 ? INT64_MAX
         : v <= -9223372036854775808.0 ? INT64_MIN : (int64_t)v;
}
";

/// The C source of `ir`'s body, or `None` when an instruction has no rendering.
///
/// `src[k]` says where instruction `k`'s value comes from (`None`: nobody reads it in the
/// body); `leaves[j]` how leaf `j` is passed. The result must be `Body`.
pub(crate) fn render(ir: &KernelIr, src: &[Option<Src>], leaves: &[Leaf]) -> Option<String> {
    let result = ir.result as usize;
    if src.get(result) != Some(&Some(Src::Body)) || leaves.len() > MAX_LEAVES {
        return None;
    }
    let mut s = String::from(PRELUDE);
    s.push_str("\nvoid tessera_cpu_kernel(size_t n, const void *const *leaf, void *out_) {\n");
    for (j, l) in leaves.iter().enumerate() {
        let _ = match l {
            Leaf::Col(d) => writeln!(
                s,
                "    const {t} *restrict l{j} = (const {t} *)leaf[{j}];",
                t = cty(*d)
            ),
            Leaf::Scalar(d) => writeln!(
                s,
                "    const {t} l{j} = *(const {t} *)leaf[{j}];",
                t = cty(*d)
            ),
        };
    }
    let rt = cty(ir.insts[result].dtype);
    let _ = writeln!(s, "    {rt} *restrict out = ({rt} *)out_;");
    s.push_str("    for (size_t i = 0; i < n; i++) {\n");
    let name = |v: u32| -> Option<String> {
        match src.get(v as usize).copied().flatten()? {
            Src::Leaf(j) => Some(match leaves[j] {
                Leaf::Col(_) => format!("l{j}[i]"),
                Leaf::Scalar(_) => format!("l{j}"),
            }),
            Src::Body => Some(format!("v{v}")),
        }
    };
    for (k, inst) in ir.insts.iter().enumerate() {
        if src[k] != Some(Src::Body) {
            continue;
        }
        let dt = |v: &u32| ir.insts[*v as usize].dtype;
        // Operand and result dtypes as the op tables require them; anything else is left to
        // the interpreter, which reports it as a typed error (C would convert silently).
        let logical =
            |d: DType, bool_result: bool| inst.dtype == if bool_result { DType::Bool } else { d };
        let e = match &inst.kind {
            InstKind::Unary(op, a) => {
                use UnaryOp::*;
                let b = matches!(op, LogicalNot | IsNan | IsInf | IsFinite);
                if !logical(dt(a), b) {
                    return None;
                }
                unary(*op, dt(a), &name(*a)?)?
            }
            InstKind::Binary(op, a, b) => {
                use BinaryOp::*;
                let cmp = matches!(op, Eq | Ne | Lt | Le | Gt | Ge | And | Or | Xor);
                if dt(a) != dt(b) || !logical(dt(a), cmp) {
                    return None;
                }
                binary(*op, dt(a), &name(*a)?, &name(*b)?)?
            }
            InstKind::Where(c, a, b) => {
                if dt(c) != DType::Bool || dt(a) != dt(b) || dt(a) != inst.dtype {
                    return None;
                }
                format!("({} ? {} : {})", name(*c)?, name(*a)?, name(*b)?)
            }
            InstKind::Cast(a) => cast(dt(a), inst.dtype, &name(*a)?),
            InstKind::Load(_) | InstKind::Const(_) | InstKind::Random { .. } => return None,
        };
        let _ = writeln!(s, "        const {} v{k} = {e};", cty(inst.dtype));
    }
    let _ = writeln!(s, "        out[i] = v{result};\n    }}\n}}");
    Some(s)
}

/// FNV-1a, 64-bit: a hash that is the same in every process and build (the disk cache's key).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Optimized for this CPU, no FMA contraction, no fast math.
const FLAGS: &[&str] = &[
    "-O3",
    "-march=native",
    "-ffp-contract=off",
    "-fwrapv",
    "-fPIC",
    "-shared",
    "-std=c11",
];

/// After the source. Linked against libm, so libm's functions bind to their current symbol
/// versions (an unversioned reference binds to glibc's oldest `logf`, whose SVID error
/// handling returns +NaN where the current one, and the interpreter, return -NaN).
const LIBS: &[&str] = &["-lm"];

/// How long one compile may run before it is killed (`TESSERA_CC_TIMEOUT`, seconds, overrides):
/// a hung compiler must not hang Tessera.
pub const CC_TIMEOUT: Duration = Duration::from_secs(60);

/// Most bytes of a cached library read for its digest (kernel libraries are tens of KiB).
const MAX_LIBRARY: u64 = 64 << 20;

/// The compiler command.
struct Compiler {
    cc: String,
    timeout: Duration,
    /// Everything besides the source that decides what a compile makes: the command and the
    /// CPU (part of the disk cache's key).
    key: String,
}

impl Compiler {
    fn new(cc: String, timeout: Duration) -> Self {
        let key = format!(
            "{cc}\n{}\n{}\n{}",
            FLAGS.join(" "),
            LIBS.join(" "),
            cpu_tag()
        );
        Compiler { cc, timeout, key }
    }
}

/// Where compiled libraries are kept.
enum Store {
    /// A folder proven private to this user (`cachedir::private_dir`): libraries persist.
    Disk(PathBuf),
    /// No folder may hold code: each library is built in a fresh 0700 temporary folder,
    /// removed once the library is loaded.
    Private,
}

/// How [`Builder::get`] obtained a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A verified library from the disk cache.
    Loaded,
    /// Compiled (no cache entry).
    Compiled,
    /// The cache entry failed verification: removed, compiled again and replaced.
    Replaced,
}

/// The compiler with its disk cache: one per process ([`global`]); tests make their own.
struct Builder {
    cc: Compiler,
    store: Store,
    /// Set once a compile timed out: later kernels are not compiled (each would wait again).
    stalled: AtomicBool,
}

/// The digest record written beside a library (`k<hash>.meta`): which kernel it is and what its
/// bytes must be. A library is loaded only when its bytes reproduce this record exactly.
fn meta_text(key: u64, sig: &str, lib: &[u8]) -> String {
    format!(
        "tessera-cpu-jit 1\nkey k{key:016x}\nkernel {sig}\nlen {}\nsha256 {}\n",
        lib.len(),
        cachedir::sha256_hex(lib)
    )
}

/// Reads `path` (at most [`MAX_LIBRARY`] bytes) after checking it is this user's and private.
fn read_private(path: &Path) -> std::result::Result<Option<Vec<u8>>, String> {
    cachedir::read_private(path, MAX_LIBRARY)
}

/// Whether the cache entry `stem` is present (`Ok(false)`: no library) and proven to be the
/// kernel `sig` with the bytes recorded when it was written; `Err`: damaged.
fn verify(dir: &Path, stem: &str, key: u64, sig: &str) -> std::result::Result<bool, String> {
    let so = dir.join(format!("{stem}.so"));
    let Some(lib) = read_private(&so)? else {
        return Ok(false);
    };
    let meta = dir.join(format!("{stem}.meta"));
    let recorded = read_private(&meta)?.ok_or_else(|| format!("{} is missing", meta.display()))?;
    if recorded != meta_text(key, sig, &lib).as_bytes() {
        return Err(format!(
            "{} does not match its digest record {}",
            so.display(),
            meta.display()
        ));
    }
    Ok(true)
}

/// Removes cache entry `stem` (library, digest record, source): names this module gives its
/// own files, in a folder proven to be this user's.
fn remove_entry(dir: &Path, stem: &str) {
    for ext in ["so", "meta", "c"] {
        let _ = std::fs::remove_file(dir.join(format!("{stem}.{ext}")));
    }
}

/// A fresh folder only this user can use, for one compile outside the disk cache.
fn private_temp() -> std::result::Result<PathBuf, String> {
    let d = std::env::temp_dir().join(format!(
        "tessera-jit-{}-{:016x}",
        std::process::id(),
        cachedir::token()
    ));
    // Not recursive: creation fails if the name exists, so the folder is new and ours.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&d)
        .map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

impl Builder {
    fn new(cc: Compiler, store: Store) -> Self {
        Builder {
            cc,
            store,
            stalled: AtomicBool::new(false),
        }
    }

    /// The kernel of `source`: a verified library from the disk cache, else a compile (which
    /// replaces a damaged entry). No process-wide lock is held here.
    fn get(&self, source: &str) -> std::result::Result<(Kernel, Origin), String> {
        let key = fnv1a(&[source, &self.cc.key]);
        let sig = cachedir::signature(&[source, &self.cc.key]);
        let text = format!(
            "{source}\n/* The kernel's identity, checked after loading (jit.rs). */\n\
             const char *tessera_kernel_key(void) {{ return \"{sig}\"; }}\n"
        );
        let stem = format!("k{key:016x}");
        let Store::Disk(dir) = &self.store else {
            let tmp = private_temp()?;
            let k = self.build(&text, key, &sig, &tmp, &stem, false);
            // The folder was created above by this call: removing it removes only our files
            // (the loaded library stays mapped).
            let _ = std::fs::remove_dir_all(&tmp);
            return k.map(|k| (k, Origin::Compiled));
        };
        let mut origin = Origin::Compiled;
        match verify(dir, &stem, key, &sig) {
            Ok(true) => match open(&dir.join(format!("{stem}.so")), &sig) {
                Ok(k) => return Ok((k, Origin::Loaded)),
                Err(_) => {
                    remove_entry(dir, &stem);
                    origin = Origin::Replaced;
                }
            },
            Ok(false) => {}
            Err(_) => {
                remove_entry(dir, &stem);
                origin = Origin::Replaced;
            }
        }
        let k = self.build(&text, key, &sig, dir, &stem, true)?;
        Ok((k, origin))
    }

    /// Compiles `text` in `dir` under temporary names, loads and checks the result, and with
    /// `publish` renames library, digest record and source into place (library first: a
    /// library without its record is treated as damaged, never loaded).
    fn build(
        &self,
        text: &str,
        key: u64,
        sig: &str,
        dir: &Path,
        stem: &str,
        publish: bool,
    ) -> std::result::Result<Kernel, String> {
        if self.stalled.load(Ordering::Relaxed) {
            return Err(format!(
                "`{}` timed out earlier in this process and is not run again",
                self.cc.cc
            ));
        }
        let c = dir.join(cachedir::temp_name(stem, "c"));
        let so = dir.join(cachedir::temp_name(stem, "so"));
        let r = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&c)
                .map_err(|e| format!("{}: {e}", c.display()))?;
            f.write_all(text.as_bytes())
                .map_err(|e| format!("{}: {e}", c.display()))?;
            drop(f);
            self.run_cc(&c, &so)?;
            let lib = match std::fs::File::open(&so) {
                Ok(f) => {
                    // The compiler made it with the umask's mode (group-writable under umask
                    // 002), which the load check would refuse: private, as the cache requires.
                    f.set_permissions(std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| format!("{}: {e}", so.display()))?;
                    // On disk in full before it is published under its cache name.
                    f.sync_all().map_err(|e| format!("{}: {e}", so.display()))?;
                    read_private(&so)?.unwrap_or_default()
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(format!(
                        "`{}` exited 0 but produced no library at {}",
                        self.cc.cc,
                        so.display()
                    ))
                }
                Err(e) => return Err(format!("{}: {e}", so.display())),
            };
            let k = open(&so, sig)?;
            if publish {
                // A cache that cannot be written is only slower: the kernel is loaded already.
                let _ = std::fs::rename(&so, dir.join(format!("{stem}.so")))
                    .and_then(|()| {
                        cachedir::write_atomic(
                            dir,
                            &format!("{stem}.meta"),
                            meta_text(key, sig, &lib).as_bytes(),
                        )
                    })
                    // The source stays beside its library, for whoever reads what was compiled.
                    .and_then(|()| std::fs::rename(&c, dir.join(format!("{stem}.c"))))
                    .and_then(|()| std::fs::File::open(dir)?.sync_all());
            }
            Ok(k)
        })();
        // Whatever was not renamed into place (all of it on failure).
        let _ = std::fs::remove_file(&c);
        let _ = std::fs::remove_file(&so);
        r
    }

    /// Runs the compiler on `c` into `so`, killed after the timeout.
    fn run_cc(&self, c: &Path, so: &Path) -> std::result::Result<(), String> {
        use std::os::unix::process::CommandExt;
        let cc = &self.cc.cc;
        let mut child = std::process::Command::new(cc)
            .args(FLAGS)
            .arg("-o")
            .arg(so)
            .arg(c)
            .args(LIBS)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // Its own process group, so a timeout kills the compiler's children (cc1, as, ld)
            // with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run `{cc}`: {e}"))?;
        // Read on a thread, so a compiler that fills the pipe never blocks.
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(mut err) = child.stderr.take() {
            std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = err.read_to_end(&mut b);
                let _ = tx.send(b);
            });
        }
        let deadline = Instant::now() + self.cc.timeout;
        let mut nap = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for `{cc}`: {e}")),
            }
            if Instant::now() >= deadline {
                if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                    // SAFETY: the group is the one the child leads (process_group(0)); the
                    // child is not reaped yet, so its id cannot name anyone else's group.
                    unsafe { libc::kill(-pid, libc::SIGKILL) };
                }
                let _ = child.kill();
                let _ = child.wait();
                self.stalled.store(true, Ordering::Relaxed);
                return Err(format!(
                    "`{cc}` did not finish in {:.0} s (TESSERA_CC_TIMEOUT) and was killed",
                    self.cc.timeout.as_secs_f64()
                ));
            }
            std::thread::sleep(nap.min(deadline.saturating_duration_since(Instant::now())));
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        if status.success() {
            return Ok(());
        }
        let how = match status.code() {
            Some(code) => format!("status {code}"),
            None => status.to_string(),
        };
        let err = rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
        let err = String::from_utf8_lossy(&err);
        let err = err.trim();
        if err.is_empty() {
            Err(format!("`{cc}` exited with {how} and printed nothing"))
        } else {
            let cut: String = err.chars().take(4000).collect();
            Err(format!("`{cc}` exited with {how}: {cut}"))
        }
    }
}

/// This process's compiler, from the environment (`TESSERA_CC`, `TESSERA_CC_TIMEOUT`, the cache
/// folder rule of `cachedir`), read once on the first compiled kernel.
fn global() -> &'static Builder {
    static B: OnceLock<Builder> = OnceLock::new();
    B.get_or_init(|| {
        let cc = std::env::var("TESSERA_CC")
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "cc".into());
        let timeout = std::env::var("TESSERA_CC_TIMEOUT")
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 1e9)
            .map_or(CC_TIMEOUT, Duration::from_secs_f64);
        let store = match cachedir::private_dir("cpu-jit") {
            Ok(d) => Store::Disk(d),
            Err(why) => {
                eprintln!(
                    "tessera: CPU kernel cache not used: {why}; kernels are compiled in a \
                     private temporary folder instead"
                );
                Store::Private
            }
        };
        Builder::new(Compiler::new(cc, timeout), store)
    })
}

fn note_failure(msg: String) {
    if let Ok(mut s) = STATUS.lock() {
        if s.failed == 0 {
            eprintln!("tessera: CPU kernel compiler: {msg}; the interpreter runs these kernels");
        }
        s.failed += 1;
        s.last_error = Some(msg);
    }
}

/// The signature of `tessera_kernel_key`: the kernel's identity string.
type KeyFn = unsafe extern "C" fn() -> *const std::ffi::c_char;

/// Loads `path`, checks it is kernel `sig` and finds the entry point.
fn open(path: &Path, sig: &str) -> std::result::Result<Kernel, String> {
    // SAFETY: the library is one this module compiled from its own source (a C file with no
    // constructors), in a folder only this user can write, and a cached one has just been
    // checked against the digest recorded when it was written; loading it runs no foreign
    // initialization code.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("load: {e}"))?;
    // SAFETY: every library this module renders exports `tessera_kernel_key` with the `KeyFn`
    // signature; it returns a pointer to a NUL-terminated string literal in the library.
    let got = unsafe {
        let f = *lib
            .get::<KeyFn>(b"tessera_kernel_key\0")
            .map_err(|e| format!("symbol: {e}"))?;
        std::ffi::CStr::from_ptr(f()).to_bytes().to_vec()
    };
    if got != sig.as_bytes() {
        return Err(format!("{} is another kernel", path.display()));
    }
    // SAFETY: the symbol is the entry point this module rendered, with the `KernelFn`
    // signature (module docs).
    let f: KernelFn = unsafe {
        *lib.get::<KernelFn>(b"tessera_cpu_kernel\0")
            .map_err(|e| format!("symbol: {e}"))?
    };
    Ok(Kernel { f, _lib: lib })
}
/// Counts one kernel run with a compiled body.
pub(crate) fn note_run() {
    if let Ok(mut s) = STATUS.lock() {
        s.runs += 1;
    }
}

/// What `-march=native` compiles for on this machine: the CPU's identity and vector features,
/// part of the disk cache's key, so a cache shared by different machines (a network home)
/// never hands one a library with instructions it lacks (read once, by [`compiler`]).
fn cpu_tag() -> String {
    let mut t = String::new();
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        for key in ["vendor_id", "cpu family", "model", "model name", "flags"] {
            if let Some(line) = info
                .lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(key))
            {
                t.push_str(line);
                t.push('\n');
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    for (name, on) in [
        ("avx2", is_x86_feature_detected!("avx2")),
        ("fma", is_x86_feature_detected!("fma")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
        ("avx512bw", is_x86_feature_detected!("avx512bw")),
        ("avx512vl", is_x86_feature_detected!("avx512vl")),
    ] {
        let _ = write!(t, "{name}={on} ");
    }
    t.push_str(std::env::consts::ARCH);
    t
}

/// Compiled kernels of this process by key: one cell per kernel, so a compile holds no lock
/// that other kernels wait on (threads wanting the same kernel wait for its one compile).
type Cache = Mutex<HashMap<u64, Arc<OnceLock<Option<Arc<Kernel>>>>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The compiled kernel of `source`: from this process's cache, the disk cache, or a compile.
/// `None` when it cannot be compiled here (recorded in [`status`]).
pub(crate) fn kernel(source: &str) -> Option<Arc<Kernel>> {
    let b = global();
    let key = fnv1a(&[source, &b.cc.key]);
    let cell = cache().lock().ok()?.entry(key).or_default().clone();
    cell.get_or_init(|| match b.get(source) {
        Ok((k, origin)) => {
            if let Ok(mut s) = STATUS.lock() {
                match origin {
                    Origin::Loaded => s.loaded += 1,
                    Origin::Compiled => s.compiled += 1,
                    Origin::Replaced => {
                        s.compiled += 1;
                        s.replaced += 1;
                    }
                }
            }
            Some(Arc::new(k))
        }
        Err(msg) => {
            note_failure(msg);
            None
        }
    })
    .clone()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_supported_op_and_refuses_the_rest() {
        for d in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
            assert!(binary(BinaryOp::Lt, DType::F32, "a", "b").is_some());
            assert_eq!(
                binary(BinaryOp::FloorDiv, d, "a", "b"),
                None,
                "floor division of {d} stays interpreted"
            );
        }
        assert_eq!(unary(UnaryOp::Round, DType::F32, "a"), None);
        assert_eq!(binary(BinaryOp::Div, DType::I32, "a", "b"), None);
        assert_eq!(
            binary(BinaryOp::Add, DType::I32, "a", "b").as_deref(),
            Some("(int32_t)((uint32_t)a + (uint32_t)b)")
        );
    }

    #[test]
    fn hash_is_stable() {
        // The disk cache relies on the same key in every process and build.
        assert_eq!(fnv1a(&["a"]), 0x089b_e207_b544_f1e4);
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
    }

    /// A kernel in the ABI: `out[i] = a[i] * m + 1` over f32.
    fn scale_source(m: u32) -> String {
        format!(
            "#include <stddef.h>\n\
             void tessera_cpu_kernel(size_t n, const void *const *leaf, void *out_) {{\n\
             const float *a = (const float *)leaf[0];\n    float *o = (float *)out_;\n\
             for (size_t i = 0; i < n; i++) o[i] = a[i] * {m}.0f + 1.0f;\n}}\n"
        )
    }

    /// A fresh private folder for one test's cache.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tessera-jit-{name}-{:016x}", cachedir::token()));
        std::fs::DirBuilder::new().mode(0o700).create(&d).unwrap();
        d
    }

    fn builder(dir: &Path, cc: &str, timeout: Duration) -> Builder {
        Builder::new(
            Compiler::new(cc.into(), timeout),
            Store::Disk(dir.to_path_buf()),
        )
    }

    /// Runs `k` on fresh random inputs and checks it computes `a * m + 1` (Rust's f32 rounds
    /// each step as the C does without contraction).
    fn check_scale(k: &Kernel, m: u32) {
        let mut s = cachedir::token();
        let a: Vec<f32> = (0..1000)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 100.0
            })
            .collect();
        let mut out = vec![0f32; a.len()];
        // SAFETY: one column leaf of a.len() f32 values and as many output values, the ABI of
        // `scale_source`.
        unsafe { k.call(a.len(), &[a.as_ptr().cast()], out.as_mut_ptr().cast()) };
        for (x, y) in a.iter().zip(&out) {
            assert_eq!(y.to_bits(), (x * m as f32 + 1.0).to_bits(), "{x} * {m} + 1");
        }
    }

    /// The cache entry files of `src` in `dir`.
    fn entry(b: &Builder, dir: &Path, src: &str) -> (PathBuf, PathBuf) {
        let key = fnv1a(&[src, &b.cc.key]);
        (
            dir.join(format!("k{key:016x}.so")),
            dir.join(format!("k{key:016x}.meta")),
        )
    }

    /// Whether a C compiler runs here (else the test skips); where one does, kernels must
    /// compile.
    fn compiles(b: &Builder) -> bool {
        let cc = std::process::Command::new("cc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !cc {
            println!("skipped: no C compiler `cc` runs here");
            return false;
        }
        if let Err(e) = b.get(&scale_source(1)) {
            panic!("`cc` runs but a kernel does not compile: {e}");
        }
        true
    }

    #[test]
    fn a_library_cut_short_is_replaced_never_loaded() {
        let dir = scratch("cut");
        let b = builder(&dir, "cc", CC_TIMEOUT);
        if !compiles(&b) {
            return;
        }
        let src = scale_source(3);
        let (k, o) = b.get(&src).unwrap();
        assert_eq!(o, Origin::Compiled);
        check_scale(&k, 3);
        drop(k);
        let (so, _) = entry(&b, &dir, &src);
        let good = std::fs::read(&so).unwrap();
        // As `head -c 12000 good.so > k.so` leaves it (a new file: this process may still map
        // the old one).
        let cut = (good.len() - 1).min(12000);
        std::fs::remove_file(&so).unwrap();
        std::fs::write(&so, &good[..cut]).unwrap();
        let (k, o) = builder(&dir, "cc", CC_TIMEOUT).get(&src).unwrap();
        assert_eq!(o, Origin::Replaced);
        check_scale(&k, 3);
        assert_eq!(std::fs::metadata(&so).unwrap().len(), good.len() as u64);
        let key = fnv1a(&[src.as_str(), &b.cc.key]);
        let sig = cachedir::signature(&[&src, &b.cc.key]);
        assert_eq!(verify(&dir, &format!("k{key:016x}"), key, &sig), Ok(true));
        let (k, o) = builder(&dir, "cc", CC_TIMEOUT).get(&src).unwrap();
        assert_eq!(o, Origin::Loaded);
        check_scale(&k, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_kernels_library_is_detected_and_replaced() {
        let dir = scratch("swap");
        let b = builder(&dir, "cc", CC_TIMEOUT);
        if !compiles(&b) {
            return;
        }
        let (s5, s7) = (scale_source(5), scale_source(7));
        drop(b.get(&s5).unwrap());
        drop(b.get(&s7).unwrap());
        let (so5, meta5) = entry(&b, &dir, &s5);
        let (so7, meta7) = entry(&b, &dir, &s7);
        // The library alone, then library and digest record together.
        for with_meta in [false, true] {
            std::fs::copy(&so7, dir.join("x")).unwrap();
            std::fs::rename(dir.join("x"), &so5).unwrap();
            if with_meta {
                std::fs::copy(&meta7, &meta5).unwrap();
            }
            let (k, o) = builder(&dir, "cc", CC_TIMEOUT).get(&s5).unwrap();
            assert_eq!(o, Origin::Replaced, "with_meta {with_meta}");
            check_scale(&k, 5);
        }
        // The loaded library's own key is checked too.
        let e = open(&so7, &cachedir::signature(&[&s5, &b.cc.key])).err();
        assert!(e.is_some_and(|e| e.contains("another kernel")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hung_compiler_is_killed_after_the_timeout() {
        let dir = scratch("hang");
        let cc = dir.join("slow-cc");
        std::fs::write(&cc, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&cc, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let b = builder(&dir, cc.to_str().unwrap(), Duration::from_millis(500));
        let t = Instant::now();
        let e = b.get(&scale_source(2)).err().unwrap();
        assert!(e.contains("did not finish"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        // Later kernels do not wait for it again.
        let t = Instant::now();
        let e = b.get(&scale_source(3)).err().unwrap();
        assert!(e.contains("timed out earlier"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        // Nothing but the script is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_compiler_is_reported_with_its_status() {
        let dir = scratch("fail");
        let e = builder(&dir, "/bin/false", CC_TIMEOUT)
            .get(&scale_source(2))
            .err()
            .unwrap();
        assert!(
            e.contains("exited with status 1 and printed nothing"),
            "{e}"
        );
        let e = builder(&dir, "/bin/true", CC_TIMEOUT)
            .get(&scale_source(2))
            .err()
            .unwrap();
        assert!(e.contains("exited 0 but produced no library at"), "{e}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_private_folder_kernels_still_compile_and_nothing_is_kept() {
        let b = Builder::new(Compiler::new("cc".into(), CC_TIMEOUT), Store::Private);
        if compiles(&b) {
            let (k, o) = b.get(&scale_source(9)).unwrap();
            assert_eq!(o, Origin::Compiled);
            check_scale(&k, 9);
        }
    }
}
