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
//! library), so a kernel compiles once. Where no compiler runs, or a
//! compile fails, the interpreter runs the kernel (and [`status`] says why).
//!
//! Settings: `TESSERA_CPU_JIT` = `0`/`off` (interpreter only), `auto` (default: kernels over
//! at least [`AUTO_MIN`] elements, where a compile pays off) or `always`; `TESSERA_CC` (the
//! compiler, default `cc`); the disk cache is `$TESSERA_CACHE_DIR/cpu-jit`, else
//! `$XDG_CACHE_HOME/tessera/cpu-jit`, else `~/.cache/tessera/cpu-jit`.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    /// Kernel runs that used a compiled body.
    pub runs: usize,
    /// The last failure (compiler missing, or its message), if any.
    pub last_error: Option<String>,
}

static STATUS: Mutex<JitStatus> = Mutex::new(JitStatus {
    compiled: 0,
    loaded: 0,
    failed: 0,
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
                FloorDiv | Mod => None,
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
                Div | FloorDiv | Mod | Pow => None,
                _ => logic(op),
            }
        }
        DType::Bool => match op {
            Add | Or | Maximum => Some(format!("({a} | {b})")),
            Mul | And | Minimum => Some(format!("({a} & {b})")),
            Eq => Some(format!("({a} == {b})")),
            Ne | Xor => Some(format!("({a} ^ {b})")),
            Lt => Some(format!("(({a} ^ 1) & {b})")),
            Le => Some(format!("({a} <= {b})")),
            Gt => Some(format!("({a} & ({b} ^ 1))")),
            Ge => Some(format!("({a} >= {b})")),
            Sub | Div | FloorDiv | Mod | Pow => None,
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
            }
        }
        DType::I32 | DType::I64 => {
            let (t, u) = (cty(d), uty(d));
            match op {
                Neg => Some(format!("({t})(({u})0 - ({u}){a})")),
                Abs => Some(format!("({a} < 0 ? ({t})(({u})0 - ({u}){a}) : {a})")),
                Sign => Some(format!("({t})(({a} > 0) - ({a} < 0))")),
                Floor | Ceil | Round => Some(a.to_string()),
                LogicalNot => Some(format!("({a} == 0)")),
                IsNan | IsInf => Some("0".into()),
                IsFinite => Some("1".into()),
                _ => None,
            }
        }
        DType::Bool => match op {
            Abs | Floor | Ceil | Round => Some(a.to_string()),
            LogicalNot => Some(format!("({a} ^ 1)")),
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

/// The compiler command, read once per process.
struct Compiler {
    cc: String,
    /// Optimized for this CPU, no FMA contraction, no fast math.
    flags: &'static [&'static str],
    /// After the source. Linked against libm, so libm's functions bind to their current symbol
    /// versions (an unversioned reference binds to glibc's oldest `logf`, whose SVID error
    /// handling returns +NaN where the current one, and the interpreter, return -NaN).
    libs: &'static [&'static str],
    /// Everything besides the source that decides what a compile makes: the command and the
    /// CPU (part of the disk cache's key).
    key: String,
}

fn compiler() -> &'static Compiler {
    static C: OnceLock<Compiler> = OnceLock::new();
    C.get_or_init(|| {
        let cc = std::env::var("TESSERA_CC").unwrap_or_else(|_| "cc".into());
        let flags: &[&str] = &[
            "-O3",
            "-march=native",
            "-ffp-contract=off",
            "-fwrapv",
            "-fPIC",
            "-shared",
            "-std=c11",
        ];
        let libs: &[&str] = &["-lm"];
        let key = format!(
            "{cc}\n{}\n{}\n{}",
            flags.join(" "),
            libs.join(" "),
            cpu_tag()
        );
        Compiler {
            cc,
            flags,
            libs,
            key,
        }
    })
}

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TESSERA_CACHE_DIR") {
        return PathBuf::from(d).join("cpu-jit");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tessera").join("cpu-jit")
}

type Cache = Mutex<HashMap<u64, Option<Arc<Kernel>>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
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

/// Loads `path` and finds the entry point.
fn open(path: &std::path::Path) -> std::result::Result<Kernel, String> {
    // SAFETY: the library is one this module compiled from its own source (a C file with no
    // constructors), so loading it runs no foreign initialization code.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("load: {e}"))?;
    // SAFETY: the symbol is the entry point this module rendered, with the `KernelFn`
    // signature (module docs).
    let f: KernelFn = unsafe {
        *lib.get::<KernelFn>(b"tessera_cpu_kernel\0")
            .map_err(|e| format!("symbol: {e}"))?
    };
    Ok(Kernel { f, _lib: lib })
}

/// Compiles `source` to `so` (through a temporary file, renamed into place, so concurrent
/// processes never load a half-written library).
fn build(source: &str, so: &std::path::Path) -> std::result::Result<(), String> {
    let dir = so.parent().ok_or("cache path without a folder")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tag = format!("{}-{:?}", std::process::id(), std::thread::current().id())
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    let c = so.with_extension(format!("{tag}.c"));
    let tmp = so.with_extension(format!("{tag}.so.tmp"));
    std::fs::write(&c, source).map_err(|e| format!("{}: {e}", c.display()))?;
    let Compiler {
        cc, flags, libs, ..
    } = compiler();
    let out = std::process::Command::new(cc)
        .args(*flags)
        .arg("-o")
        .arg(&tmp)
        .arg(&c)
        .args(*libs)
        .output();
    // The source stays beside its library, for whoever reads what was compiled.
    let _ = std::fs::rename(&c, so.with_extension("c"));
    let out = out.map_err(|e| format!("cannot run `{cc}`: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "`{cc}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::rename(&tmp, so).map_err(|e| format!("{}: {e}", so.display()))
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

/// The compiled kernel of `source`: from this process's cache, the disk cache, or a compile.
/// `None` when it cannot be compiled here (recorded in [`status`]).
pub(crate) fn kernel(source: &str) -> Option<Arc<Kernel>> {
    let key = fnv1a(&[source, &compiler().key]);
    let mut map = cache().lock().ok()?;
    if let Some(k) = map.get(&key) {
        return k.clone();
    }
    let so = cache_dir().join(format!("k{key:016x}.so"));
    let got = if so.exists() {
        open(&so).inspect(|_| {
            if let Ok(mut s) = STATUS.lock() {
                s.loaded += 1;
            }
        })
    } else {
        Err(String::new())
    }
    .or_else(|_| {
        build(source, &so)?;
        let k = open(&so)?;
        if let Ok(mut s) = STATUS.lock() {
            s.compiled += 1;
        }
        Ok(k)
    });
    let k = match got {
        Ok(k) => Some(Arc::new(k)),
        Err(msg) => {
            note_failure(msg);
            None
        }
    };
    map.insert(key, k.clone());
    k
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
}
