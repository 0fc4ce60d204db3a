//! CUDA C helper functions emitted on demand by the CUDA renderer. Generic entries (name ending
//! in `_T`) are instantiated for f32/f64 (`{T}` type, `{S}` suffix, `{F}` libm suffix `f` or
//! empty, `{P}` intrinsic letter `f`/`d`) or i32/i64 (`{I}` type, `{U}` unsigned type).
//! Arithmetic that must round like the CPU uses `__[fd]{add,sub,mul,div}_rn`, which NVRTC never
//! contracts into FMA.

/// (name, dependencies, text).
pub(crate) const HELPERS: &[(&str, &[&str], &str)] = &[
    (
        "u4",
        &[],
        "struct tk_u4 {
    unsigned int x, y, z, w;
};",
    ),
    (
        "philox",
        &["u4"],
        "// Philox4x32-10 (runtime/src/philox.rs): counter (g lo, g hi, stream lo, stream hi), key seed.
static __device__ __forceinline__ tk_u4 tk_philox(unsigned long long g, unsigned long long stream,
                                                  unsigned long long seed) {
    unsigned int c0 = (unsigned int)g, c1 = (unsigned int)(g >> 32);
    unsigned int c2 = (unsigned int)stream, c3 = (unsigned int)(stream >> 32);
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);
#pragma unroll
    for (int i = 0; i < 10; ++i) {
        const unsigned int hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const unsigned int n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    tk_u4 r = {c0, c1, c2, c3};
    return r;
}",
    ),
    (
        "words",
        &["u4"],
        "// Word q of the concatenated outputs of consecutive Philox calls (a 4-element group's
// shared draws): selects, no indexed array, so nothing goes to local memory.
static __device__ __forceinline__ unsigned int tk_word(tk_u4 w, unsigned int i) {
    return i == 0u ? w.x : i == 1u ? w.y : i == 2u ? w.z : w.w;
}
static __device__ __forceinline__ unsigned int tk_word2(tk_u4 a, tk_u4 b, unsigned int q) {
    return tk_word(q < 4u ? a : b, q & 3u);
}
static __device__ __forceinline__ unsigned int tk_word3(tk_u4 a, tk_u4 b, tk_u4 c, unsigned int q) {
    return tk_word(q < 4u ? a : (q < 8u ? b : c), q & 3u);
}",
    ),
    (
        "u01_f32",
        &[],
        "static __device__ __forceinline__ float tk_u01_f32(unsigned int w) {
    return __fmul_rn((float)(w >> 8), 5.9604644775390625e-8f);
}",
    ),
    (
        "u01_f64",
        &[],
        "static __device__ __forceinline__ double tk_u01_f64(unsigned int hi, unsigned int lo) {
    const unsigned long long bits = ((unsigned long long)hi << 21) ^ ((unsigned long long)lo >> 11);
    return __dmul_rn((double)bits, 1.1102230246251565e-16);
}",
    ),
    (
        "normal_f32",
        &["u01_f32"],
        "// Box-Muller in f32 (philox::normal_f32).
static __device__ __forceinline__ float tk_normal_f32(unsigned int w0, unsigned int w1) {
    const float u1 = __fsub_rn(1.0f, tk_u01_f32(w0));
    const float u2 = tk_u01_f32(w1);
    return __fmul_rn(__fsqrt_rn(__fmul_rn(-2.0f, logf(u1))), cosf(__fmul_rn(6.2831855f, u2)));
}",
    ),
    (
        "normal_f64",
        &["u01_f64"],
        "// Box-Muller in f64 (philox::normal_f64).
static __device__ __forceinline__ double tk_normal_f64(unsigned int w0, unsigned int w1,
                                                     unsigned int w2, unsigned int w3) {
    const double u1 = __dsub_rn(1.0, tk_u01_f64(w0, w1));
    const double u2 = tk_u01_f64(w2, w3);
    return __dmul_rn(__dsqrt_rn(__dmul_rn(-2.0, log(u1))), cos(__dmul_rn(6.283185307179586, u2)));
}",
    ),
    (
        "randint",
        &[],
        "// low + ((w0 << 32 | w1) * span) >> 64, wrapping (philox::randint).
static __device__ __forceinline__ long long tk_randint(unsigned int w0, unsigned int w1, long long low,
                                                      unsigned long long span) {
    const unsigned long long r = ((unsigned long long)w0 << 32) | w1;
    return (long long)((unsigned long long)low + __umul64hi(r, span));
}",
    ),
    (
        "isnan_f32",
        &[],
        "static __device__ __forceinline__ bool tk_isnan_f32(float x) {
    return (__float_as_uint(x) & 0x7fffffffu) > 0x7f800000u;
}",
    ),
    (
        "isinf_f32",
        &[],
        "static __device__ __forceinline__ bool tk_isinf_f32(float x) {
    return (__float_as_uint(x) & 0x7fffffffu) == 0x7f800000u;
}",
    ),
    (
        "isfinite_f32",
        &[],
        "static __device__ __forceinline__ bool tk_isfinite_f32(float x) {
    return (__float_as_uint(x) & 0x7fffffffu) < 0x7f800000u;
}",
    ),
    (
        "isnan_f64",
        &[],
        "static __device__ __forceinline__ bool tk_isnan_f64(double x) {
    return ((unsigned long long)__double_as_longlong(x) & 0x7fffffffffffffffull) > 0x7ff0000000000000ull;
}",
    ),
    (
        "isinf_f64",
        &[],
        "static __device__ __forceinline__ bool tk_isinf_f64(double x) {
    return ((unsigned long long)__double_as_longlong(x) & 0x7fffffffffffffffull) == 0x7ff0000000000000ull;
}",
    ),
    (
        "isfinite_f64",
        &[],
        "static __device__ __forceinline__ bool tk_isfinite_f64(double x) {
    return ((unsigned long long)__double_as_longlong(x) & 0x7fffffffffffffffull) < 0x7ff0000000000000ull;
}",
    ),
    (
        "divmod_T",
        &[],
        "// numpy's npy_divmod: (floor_divide, remainder).
struct tk_dm_{S} {
    {T} q, r;
};
static __device__ __forceinline__ tk_dm_{S} tk_divmod_{S}({T} a, {T} b) {
    const {T} m = fmod{F}(a, b);
    tk_dm_{S} out;
    if (b == ({T})0) {
        out.q = __{P}div_rn(a, b);
        out.r = m;
        return out;
    }
    {T} div = __{P}div_rn(__{P}sub_rn(a, m), b);
    {T} md = m;
    if (md != ({T})0) {
        if ((b < ({T})0) != (md < ({T})0)) {
            md = __{P}add_rn(md, b);
            div = __{P}sub_rn(div, ({T})1);
        }
    } else {
        md = copysign{F}(({T})0, b);
    }
    {T} fl;
    if (div != ({T})0) {
        fl = floor{F}(div);
        if (__{P}sub_rn(div, fl) > ({T})0.5) {
            fl = __{P}add_rn(fl, ({T})1);
        }
    } else {
        fl = copysign{F}(({T})0, __{P}div_rn(a, b));
    }
    out.q = fl;
    out.r = md;
    return out;
}",
    ),
    (
        "sign_T",
        &["isnan_T"],
        "static __device__ __forceinline__ {T} tk_sign_{S}({T} x) {
    if (tk_isnan_{S}(x)) return x;
    if (x > ({T})0) return ({T})1;
    if (x < ({T})0) return ({T})-1;
    return ({T})0;
}",
    ),
    (
        "maximum_T",
        &["isnan_T", "nan_T"],
        "// numpy maximum: NaN if either is NaN.
static __device__ __forceinline__ {T} tk_maximum_{S}({T} x, {T} y) {
    if (tk_isnan_{S}(x) || tk_isnan_{S}(y)) return tk_nan_{S}();
    return x >= y ? x : y;
}",
    ),
    (
        "minimum_T",
        &["isnan_T", "nan_T"],
        "// numpy minimum: NaN if either is NaN.
static __device__ __forceinline__ {T} tk_minimum_{S}({T} x, {T} y) {
    if (tk_isnan_{S}(x) || tk_isnan_{S}(y)) return tk_nan_{S}();
    return x <= y ? x : y;
}",
    ),
    (
        "extreme_T",
        &["isnan_T"],
        "// NaN-propagating extreme of a reduction (tessera-cpu `extreme`).
static __device__ __forceinline__ {T} tk_fmax_red_{S}({T} a, {T} b) {
    if (tk_isnan_{S}(a)) return a;
    if (tk_isnan_{S}(b)) return b;
    return b > a ? b : a;
}
static __device__ __forceinline__ {T} tk_fmin_red_{S}({T} a, {T} b) {
    if (tk_isnan_{S}(a)) return a;
    if (tk_isnan_{S}(b)) return b;
    return b < a ? b : a;
}",
    ),
    (
        "nan_f32",
        &[],
        "static __device__ __forceinline__ float tk_nan_f32() {
    return __int_as_float(0x7fc00000);
}",
    ),
    (
        "nan_f64",
        &[],
        "static __device__ __forceinline__ double tk_nan_f64() {
    return __longlong_as_double(0x7ff8000000000000ll);
}",
    ),
    (
        "pow_T",
        &[],
        "// C pow; the common exact cases spelled out (CUDA pow is not correctly rounded).
static __device__ __forceinline__ {T} tk_pow_{S}({T} x, {T} y) {
    if (y == ({T})2) return __{P}mul_rn(x, x);
    if (y == ({T})1) return x;
    return pow{F}(x, y);
}",
    ),
    (
        "f32_to_i32",
        &["isnan_f32"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
static __device__ __forceinline__ int tk_f32_to_i32(float x) {
    if (tk_isnan_f32(x)) return 0;
    if (x >= 2147483648.0f) return 2147483647;
    if (x <= -2147483648.0f) return (-2147483647 - 1);
    return __float2int_rz(x);
}",
    ),
    (
        "f64_to_i32",
        &["isnan_f64"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
static __device__ __forceinline__ int tk_f64_to_i32(double x) {
    if (tk_isnan_f64(x)) return 0;
    if (x >= 2147483648.0) return 2147483647;
    if (x <= -2147483649.0) return (-2147483647 - 1);
    return __double2int_rz(x);
}",
    ),
    (
        "f32_to_i64",
        &["isnan_f32"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
static __device__ __forceinline__ long long tk_f32_to_i64(float x) {
    if (tk_isnan_f32(x)) return 0;
    if (x >= 9223372036854775808.0f) return 9223372036854775807ll;
    if (x <= -9223372036854775808.0f) return (-9223372036854775807ll - 1);
    return __float2ll_rz(x);
}",
    ),
    (
        "f64_to_i64",
        &["isnan_f64"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
static __device__ __forceinline__ long long tk_f64_to_i64(double x) {
    if (tk_isnan_f64(x)) return 0;
    if (x >= 9223372036854775808.0) return 9223372036854775807ll;
    if (x <= -9223372036854775808.0) return (-9223372036854775807ll - 1);
    return __double2ll_rz(x);
}",
    ),
    (
        "intops_T",
        &[],
        "// numpy integer ops: wrapping; floor_divide and remainder by zero give 0.
static __device__ __forceinline__ {I} tk_add_{S}({I} a, {I} b) {
    return ({I})(({U})a + ({U})b);
}
static __device__ __forceinline__ {I} tk_sub_{S}({I} a, {I} b) {
    return ({I})(({U})a - ({U})b);
}
static __device__ __forceinline__ {I} tk_mul_{S}({I} a, {I} b) {
    return ({I})(({U})a * ({U})b);
}
static __device__ __forceinline__ {I} tk_neg_{S}({I} a) {
    return ({I})(({U})0 - ({U})a);
}
static __device__ __forceinline__ {I} tk_abs_{S}({I} a) {
    return a < 0 ? tk_neg_{S}(a) : a;
}
static __device__ __forceinline__ {I} tk_floordiv_{S}({I} a, {I} b) {
    if (b == 0) return 0;
    if (b == -1) return tk_neg_{S}(a);
    const {I} q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) return q - 1;
    return q;
}
static __device__ __forceinline__ {I} tk_mod_{S}({I} a, {I} b) {
    if (b == 0 || b == -1) return 0;
    const {I} r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) return r + b;
    return r;
}
static __device__ __forceinline__ {I} tk_pow_{S}({I} b, {I} e) {
    if (e < 0) {
        if (b == 1) return 1;
        if (b == -1) return (e & 1) == 0 ? 1 : -1;
        return 0;
    }
    {U} acc = 1, base = ({U})b, k = ({U})e;
    while (k != 0) {
        if (k & 1) acc *= base;
        base *= base;
        k >>= 1;
    }
    return ({I})acc;
}",
    ),
    (
        "intbits_T",
        &[],
        "// numpy's npy_lshift/npy_rshift: a count outside 0..bits (negative ones are huge as unsigned)
// gives 0, or -1 shifting a negative value right.
static __device__ __forceinline__ {I} tk_shl_{S}({I} a, {I} b) {
    return ({U})b < 8 * sizeof({I}) ? ({I})(({U})a << ({U})b) : ({I})0;
}
static __device__ __forceinline__ {I} tk_shr_{S}({I} a, {I} b) {
    return ({U})b < 8 * sizeof({I}) ? ({I})(a >> ({U})b) : ({I})(a < 0 ? -1 : 0);
}
// numpy's integer reciprocal: 1.0 / x cast back (0 gives the minimum, as on x86).
static __device__ __forceinline__ {I} tk_recip_{S}({I} a) {
    if (a == 1 || a == -1) return a;
    return a == 0 ? ({I})(({U})1 << (8 * sizeof({I}) - 1)) : ({I})0;
}",
    ),
    (
        "logaddexp_T",
        &[],
        "// numpy's npy_logaddexp: exact for equal arguments (infinities included).
static __device__ __forceinline__ {T} tk_logaddexp_{S}({T} x, {T} y) {
    if (x == y) return x + ({T})0.693147180559945309417232121458176568;
    const {T} d = x - y;
    if (d > ({T})0) return x + log1p{F}(exp{F}(-d));
    if (d <= ({T})0) return y + log1p{F}(exp{F}(d));
    return d;
}",
    ),
];
