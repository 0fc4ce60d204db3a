//! WGSL helper functions emitted on demand by the WGSL renderer (only the ones a kernel uses,
//! so an f32 kernel never mentions f64). `{T}` is the float type, `{L}` its literal suffix.

/// (name, dependencies, text). A name ending in `_T` is generic over f32/f64; an exact
/// `_f32`/`_f64` entry overrides the generic one for that type.
pub(crate) const HELPERS: &[(&str, &[&str], &str)] = &[
    (
        "mulhilo",
        &[],
        "// (lo, hi) of the 64-bit product a * b (WGSL has no mulhi: 16-bit halves).
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return vec2<u32>(a * b, ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u));
}",
    ),
    (
        "add64",
        &[],
        "// u64 as vec2<u32>(lo, hi): wrapping add.
fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}",
    ),
    (
        "mul64",
        &["mulhilo"],
        "// u64 wrapping multiply (also i64: two's complement).
fn mul64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let p = mulhilo(a.x, b.x);
    return vec2<u32>(p.x, p.y + a.x * b.y + a.y * b.x);
}",
    ),
    (
        "mulhi64",
        &["mulhilo"],
        "// High 64 bits of the 128-bit product of two u64.
fn mulhi64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let ll = mulhilo(a.x, b.x);
    let lh = mulhilo(a.x, b.y);
    let hl = mulhilo(a.y, b.x);
    let hh = mulhilo(a.y, b.y);
    let c1a = ll.y + lh.x;
    let c1 = c1a + hl.x;
    let k1 = select(0u, 1u, c1a < ll.y) + select(0u, 1u, c1 < c1a);
    let c2a = hh.x + lh.y;
    let c2b = c2a + hl.y;
    let c2 = c2b + k1;
    let k2 = select(0u, 1u, c2a < hh.x) + select(0u, 1u, c2b < c2a) + select(0u, 1u, c2 < c2b);
    return vec2<u32>(c2, hh.y + k2);
}",
    ),
    (
        "philox",
        &["mulhilo"],
        "// Philox4x32-10 (runtime/src/philox.rs): counter (index lo, index hi, stream lo, stream hi),
// key (seed lo, seed hi).
fn philox(g: vec2<u32>, stream: vec2<u32>, seed: vec2<u32>) -> vec4<u32> {
    var c = vec4<u32>(g.x, g.y, stream.x, stream.y);
    var k = seed;
    for (var i = 0u; i < 10u; i = i + 1u) {
        let p0 = mulhilo(0xD2511F53u, c.x);
        let p1 = mulhilo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.y ^ c.y ^ k.x, p1.x, p0.y ^ c.w ^ k.y, p0.x);
        k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
    }
    return c;
}",
    ),
    (
        "u01_f32",
        &[],
        "// Uniform f32 in [0, 1) from the top 24 bits of a word.
fn u01_f32(w: u32) -> f32 {
    return f32(w >> 8u) * 5.9604644775390625e-8f;
}",
    ),
    (
        "u01_f64",
        &[],
        "// Uniform f64 in [0, 1) from 53 bits: ((hi << 21) ^ (lo >> 11)) * 2^-53, exact.
fn u01_f64(hi: u32, lo: u32) -> f64 {
    let top = hi >> 11u;
    let bot = (hi << 21u) | (lo >> 11u);
    return (f64(top) * 4294967296.0lf + f64(bot)) * 1.1102230246251565e-16lf;
}",
    ),
    (
        "normal_f32",
        &["u01_f32", "log_f32", "cos_f32"],
        "// Standard normal by Box-Muller in f32 (philox::normal_f32).
fn normal_f32(w0: u32, w1: u32) -> f32 {
    let u1 = 1.0f - u01_f32(w0);
    let u2 = u01_f32(w1);
    return sqrt(-2.0f * log_f32(u1)) * cos_f32(6.2831855f * u2);
}",
    ),
    (
        "randint64",
        &["add64", "mulhi64"],
        "// low + mulhi64((w0 << 32) | w1, span) as i64 bits (philox::randint).
fn randint64(w0: u32, w1: u32, low: vec2<u32>, span: vec2<u32>) -> vec2<u32> {
    return add64(low, mulhi64(vec2<u32>(w1, w0), span));
}",
    ),
    (
        "isnan_f32",
        &[],
        "fn isnan_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}",
    ),
    (
        "isinf_f32",
        &[],
        "fn isinf_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}",
    ),
    (
        "isfinite_f32",
        &[],
        "fn isfinite_f32(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
}",
    ),
    (
        "nan_f32",
        &[],
        "// Through a var so no constant folding sees a non-finite value.
fn nan_f32() -> f32 {
    var b = 0x7fc00000u;
    return bitcast<f32>(b);
}",
    ),
    (
        "inf_f32",
        &[],
        "fn inf_f32() -> f32 {
    var b = 0x7f800000u;
    return bitcast<f32>(b);
}",
    ),
    (
        "copysign0_f32",
        &[],
        "// +-0 with the sign bit of s.
fn copysign0_f32(s: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(s) & 0x80000000u);
}",
    ),
    (
        "isnan_f64",
        &[],
        "// WGSL cannot bitcast f64; ordered comparisons are false for NaN.
fn isnan_f64(x: f64) -> bool {
    return !(x == x);
}",
    ),
    (
        "isinf_f64",
        &[],
        "fn isinf_f64(x: f64) -> bool {
    return abs(x) > 1.7976931348623157e308lf;
}",
    ),
    (
        "isfinite_f64",
        &[],
        "fn isfinite_f64(x: f64) -> bool {
    return abs(x) <= 1.7976931348623157e308lf;
}",
    ),
    (
        "nan_f64",
        &["nan_f32"],
        "fn nan_f64() -> f64 {
    return f64(nan_f32());
}",
    ),
    (
        "inf_f64",
        &["inf_f32"],
        "fn inf_f64() -> f64 {
    return f64(inf_f32());
}",
    ),
    (
        "copysign0_f64",
        &[],
        "// +-0 with the sign of s (the sign of a zero shows in 1 / s).
fn copysign0_f64(s: f64) -> f64 {
    var neg = s < 0.0lf;
    if s == 0.0lf {
        neg = 1.0lf / s < 0.0lf;
    }
    return select(0.0lf, -0.0lf, neg);
}",
    ),
    (
        "fmod_T",
        &["isnan_T", "isinf_T", "nan_T"],
        "// C fmod, exact, by binary long division: each r - t has t <= r < 2t (Sterbenz), and
// scaling t by 2 is exact. (WGSL's % is x - y * trunc(x / y), not exact; frexp of an f64 would
// need 64-bit integers.)
fn fmod_{T}(a: {T}, b: {T}) -> {T} {
    if isnan_{T}(a) || isnan_{T}(b) || isinf_{T}(a) || b == 0.0{L} {
        return nan_{T}();
    }
    let y = abs(b);
    var r = abs(a);
    if isinf_{T}(y) || r < y {
        return a;
    }
    var t = y;
    loop {
        let t2 = t * 2.0{L};
        if t2 > r {
            break;
        }
        t = t2;
    }
    loop {
        if r >= t {
            r = r - t;
        }
        if t == y {
            break;
        }
        t = t * 0.5{L};
    }
    return select(r, -r, a < 0.0{L});
}",
    ),
    (
        "divmod_T",
        &["fmod_T", "copysign0_T"],
        "// numpy's npy_divmod: (floor_divide, remainder).
fn divmod_{T}(a: {T}, b: {T}) -> vec2<{T}> {
    let m = fmod_{T}(a, b);
    if b == 0.0{L} {
        return vec2<{T}>(a / b, m);
    }
    var div = (a - m) / b;
    var md = m;
    if !(md == 0.0{L}) {
        if (b < 0.0{L}) != (md < 0.0{L}) {
            md = md + b;
            div = div - 1.0{L};
        }
    } else {
        md = copysign0_{T}(b);
    }
    var fl = copysign0_{T}(a / b);
    if !(div == 0.0{L}) {
        fl = floor(div);
        if div - fl > 0.5{L} {
            fl = fl + 1.0{L};
        }
    }
    return vec2<{T}>(fl, md);
}",
    ),
    (
        "sign_T",
        &["isnan_T"],
        "// NaN -> NaN, else 1, -1 or +0 (the constants are built from bits: some drivers assume
// no signed zeros and would return x for x == -0).
fn sign_{T}(x: {T}) -> {T} {
    if isnan_{T}(x) {
        return x;
    }
    let one = select(0u, 0x3f800000u, x > 0.0{L} || x < 0.0{L});
    return {T}(bitcast<f32>(one | select(0u, 0x80000000u, x < 0.0{L})));
}",
    ),
    (
        "round_f32",
        &[],
        "// Half to even (WGSL round), keeping the sign of x on zero results (round(-0.4) = -0).
fn round_f32(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(round(x)) | (bitcast<u32>(x) & 0x80000000u));
}",
    ),
    (
        "round_f64",
        &["copysign0_f64"],
        "// Half to even, spelled out (lavapipe's f64 round takes some halves toward zero), keeping
// the sign of x on zero results (round(-0.4) = -0). x - floor(x) is exact; NaN and inf pass.
fn round_f64(x: f64) -> f64 {
    var r = floor(x);
    let d = x - r;
    if d > 0.5lf || (d == 0.5lf && r - 2.0lf * floor(r * 0.5lf) != 0.0lf) {
        r = r + 1.0lf;
    }
    if r == 0.0lf {
        return copysign0_f64(x);
    }
    return r;
}",
    ),
    (
        "maximum_T",
        &["isnan_T", "nan_T"],
        "// numpy maximum: NaN if either is NaN.
fn maximum_{T}(x: {T}, y: {T}) -> {T} {
    if isnan_{T}(x) || isnan_{T}(y) {
        return nan_{T}();
    }
    return select(y, x, x >= y);
}",
    ),
    (
        "minimum_T",
        &["isnan_T", "nan_T"],
        "// numpy minimum: NaN if either is NaN.
fn minimum_{T}(x: {T}, y: {T}) -> {T} {
    if isnan_{T}(x) || isnan_{T}(y) {
        return nan_{T}();
    }
    return select(y, x, x <= y);
}",
    ),
    (
        "sqrt_T",
        &["nan_T"],
        "fn sqrt_{T}(x: {T}) -> {T} {
    if x < 0.0{L} {
        return nan_{T}();
    }
    return sqrt(x);
}",
    ),
    (
        "exp_f32",
        &["isnan_f32"],
        "fn exp_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    return exp(x);
}",
    ),
    (
        "log_f32",
        &["isnan_f32", "isinf_f32", "nan_f32", "inf_f32"],
        "// GLSL log is undefined for x <= 0: spell out the IEEE results.
fn log_f32(x: f32) -> f32 {
    if isnan_f32(x) || x < 0.0f {
        return nan_f32();
    }
    if x == 0.0f {
        return -inf_f32();
    }
    if isinf_f32(x) {
        return x;
    }
    return log(x);
}",
    ),
    (
        "log1p_f32",
        &["log_f32", "isinf_f32", "isnan_f32", "nan_f32"],
        "// log(1 + x) without cancellation (Goldberg).
fn log1p_f32(x: f32) -> f32 {
    if isnan_f32(x) || x < -1.0f {
        return nan_f32();
    }
    let u = 1.0f + x;
    if u == 1.0f || isinf_f32(u) {
        return select(x, u, isinf_f32(u));
    }
    return log_f32(u) * (x / (u - 1.0f));
}",
    ),
    (
        "expm1_f32",
        &["exp_f32", "isinf_f32"],
        "// exp(x) - 1 without cancellation (Kahan).
fn expm1_f32(x: f32) -> f32 {
    let u = exp_f32(x);
    if u == 1.0f {
        return x;
    }
    let um1 = u - 1.0f;
    if um1 == -1.0f || isinf_f32(u) {
        return um1;
    }
    return um1 * x / log(u);
}",
    ),
    (
        "reduce2pi_f32",
        &[],
        "// x - k * 2pi with a two-part 2pi (Cody-Waite): WGSL's sin/cos are only accurate on [-pi, pi].
fn reduce2pi_f32(x: f32) -> f32 {
    if abs(x) <= 3.1415927f {
        return x;
    }
    let k = round(x * 0.15915494f);
    return (x - k * 6.28125f) - k * 0.0019353072f;
}",
    ),
    (
        "sin_f32",
        &["isfinite_f32", "nan_f32", "reduce2pi_f32"],
        "fn sin_f32(x: f32) -> f32 {
    if !isfinite_f32(x) {
        return nan_f32();
    }
    return sin(reduce2pi_f32(x));
}",
    ),
    (
        "cos_f32",
        &["isfinite_f32", "nan_f32", "reduce2pi_f32"],
        "fn cos_f32(x: f32) -> f32 {
    if !isfinite_f32(x) {
        return nan_f32();
    }
    return cos(reduce2pi_f32(x));
}",
    ),
    (
        "tan_f32",
        &["isfinite_f32", "nan_f32", "reduce2pi_f32"],
        "fn tan_f32(x: f32) -> f32 {
    if !isfinite_f32(x) {
        return nan_f32();
    }
    return tan(reduce2pi_f32(x));
}",
    ),
    (
        "tanh_f32",
        &["isnan_f32"],
        "// Saturate before exp-based implementations overflow; keep tiny x exact.
fn tanh_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    if abs(x) > 10.0f {
        return select(-1.0f, 1.0f, x > 0.0f);
    }
    if abs(x) < 0.0001f {
        return x;
    }
    return tanh(x);
}",
    ),
    (
        "i64_to_f32",
        &[],
        "// int64 (lo, hi) to f32 through its magnitude (no cancellation between the halves).
fn i64_to_f32(x: vec2<u32>) -> f32 {
    let neg = (x.y & 0x80000000u) != 0u;
    var lo = x.x;
    var hi = x.y;
    if neg {
        lo = ~x.x + 1u;
        hi = ~x.y + select(0u, 1u, lo == 0u);
    }
    let m = f32(hi) * 4294967296.0f + f32(lo);
    return select(m, -m, neg);
}",
    ),
    (
        "signed_f32",
        &[],
        "// |y| with the sign bit of x (odd functions keep -0).
fn signed_f32(y: f32, x: f32) -> f32 {
    return bitcast<f32>((bitcast<u32>(y) & 0x7fffffffu) | (bitcast<u32>(x) & 0x80000000u));
}",
    ),
    (
        "asin_f32",
        &["isnan_f32", "nan_f32", "signed_f32"],
        "// Cephes asinf (~2.5e-7 relative): WGSL only bounds asin/atan2 loosely and some
// implementations (lavapipe) are off by ~2e-5.
fn asin_f32(x: f32) -> f32 {
    if isnan_f32(x) || abs(x) > 1.0f {
        return nan_f32();
    }
    let a = abs(x);
    let big = a > 0.5f;
    var z = a * a;
    var s = a;
    if big {
        z = 0.5f * (1.0f - a);
        s = sqrt(z);
    }
    var p = ((((0.042163199048f * z + 0.024181311049f) * z + 0.045470025998f) * z
        + 0.074953002686f) * z + 0.16666752422f) * z * s + s;
    if big {
        p = 1.5707964f - (p + p);
    }
    return signed_f32(p, x);
}",
    ),
    (
        "acos_f32",
        &["isnan_f32", "nan_f32", "asin_f32"],
        "// Cephes acosf through asin_f32 on half-angle arguments (no cancellation near +-1).
fn acos_f32(x: f32) -> f32 {
    if isnan_f32(x) || abs(x) > 1.0f {
        return nan_f32();
    }
    if x < -0.5f {
        return 3.1415927f - 2.0f * asin_f32(sqrt(0.5f * (1.0f + x)));
    }
    if x > 0.5f {
        return 2.0f * asin_f32(sqrt(0.5f * (1.0f - x)));
    }
    return 1.5707964f - asin_f32(x);
}",
    ),
    (
        "atan_f32",
        &["isnan_f32", "signed_f32"],
        "// Cephes atanf (reduction at tan(3pi/8) and tan(pi/8), ~2e-7 relative), as asin_f32.
fn atan_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    var a = abs(x);
    var y0 = 0.0f;
    if a > 2.4142137f {
        y0 = 1.5707964f;
        a = -1.0f / a;
    } else if a > 0.41421357f {
        y0 = 0.7853982f;
        a = (a - 1.0f) / (a + 1.0f);
    }
    let z = a * a;
    let y = y0 + ((((0.0805374449538f * z - 0.138776856032f) * z + 0.199777106478f) * z
        - 0.333329491539f) * z * a + a);
    return signed_f32(y, x);
}",
    ),
    (
        "pow_f32",
        &["isnan_f32", "isinf_f32", "nan_f32", "inf_f32"],
        "// C pow semantics (WGSL pow is undefined for x < 0); exact for y in {1, 2, -1}.
fn pow_f32(x: f32, y: f32) -> f32 {
    if y == 0.0f || x == 1.0f {
        return 1.0f;
    }
    if isnan_f32(x) || isnan_f32(y) {
        return nan_f32();
    }
    if y == 1.0f {
        return x;
    }
    if y == 2.0f {
        return x * x;
    }
    if y == -1.0f {
        return 1.0f / x;
    }
    let yint = trunc(y) == y;
    if x < 0.0f && !yint && !isinf_f32(x) {
        return nan_f32();
    }
    let odd = yint && abs(y) < 16777216.0f && (i32(abs(y)) & 1i) == 1i;
    let ax = abs(x);
    var r: f32;
    if ax == 0.0f {
        r = select(0.0f, inf_f32(), y < 0.0f);
    } else if isinf_f32(y) {
        r = select(select(0.0f, inf_f32(), (ax > 1.0f) == (y > 0.0f)), 1.0f, ax == 1.0f);
    } else if isinf_f32(ax) {
        r = select(0.0f, inf_f32(), y > 0.0f);
    } else {
        r = exp2(y * log2(ax));
    }
    if odd && (bitcast<u32>(x) >> 31u) == 1u {
        return -r;
    }
    return r;
}",
    ),
    (
        "f32_to_i32",
        &["isnan_f32"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
fn f32_to_i32(x: f32) -> i32 {
    if isnan_f32(x) {
        return 0i;
    }
    if x >= 2147483648.0f {
        return 2147483647i;
    }
    if x <= -2147483648.0f {
        return bitcast<i32>(0x80000000u);
    }
    return i32(x);
}",
    ),
    (
        "f64_to_i32",
        &["isnan_f64"],
        "// Rust `as`: truncate, saturate, NaN -> 0.
fn f64_to_i32(x: f64) -> i32 {
    if isnan_f64(x) {
        return 0i;
    }
    if x >= 2147483648.0lf {
        return 2147483647i;
    }
    if x <= -2147483649.0lf {
        return bitcast<i32>(0x80000000u);
    }
    return i32(x);
}",
    ),
    (
        "floordiv_i32",
        &[],
        "// numpy floor_divide on int32: wrapping, x // 0 == 0.
fn floordiv_i32(a: i32, b: i32) -> i32 {
    if b == 0i {
        return 0i;
    }
    if b == -1i {
        return 0i - a;
    }
    let q = a / b;
    if a % b != 0i && ((a < 0i) != (b < 0i)) {
        return q - 1i;
    }
    return q;
}",
    ),
    (
        "mod_i32",
        &[],
        "// numpy remainder on int32: sign of the divisor, x % 0 == 0.
fn mod_i32(a: i32, b: i32) -> i32 {
    if b == 0i || b == -1i {
        return 0i;
    }
    let r = a % b;
    if r != 0i && ((r < 0i) != (b < 0i)) {
        return r + b;
    }
    return r;
}",
    ),
    (
        "pow_i32",
        &[],
        "// Integer power by squaring, wrapping; negative exponents as tessera-cpu.
fn pow_i32(b: i32, e: i32) -> i32 {
    if e < 0i {
        if b == 1i {
            return 1i;
        }
        if b == -1i {
            return select(-1i, 1i, (e & 1i) == 0i);
        }
        return 0i;
    }
    var acc = 1i;
    var base = b;
    var k = u32(e);
    loop {
        if k == 0u {
            break;
        }
        if (k & 1u) == 1u {
            acc = acc * base;
        }
        base = base * base;
        k = k >> 1u;
    }
    return acc;
}",
    ),
    (
        "sinh_f32",
        &["isnan_f32", "expm1_f32", "exp_f32", "signed_f32"],
        "// From expm1 so small |x| keeps its digits; exp(|x|/2)^2 past where exp(|x|) overflows.
fn sinh_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    let a = abs(x);
    var r: f32;
    if a > 20.0f {
        let h = exp_f32(0.5f * a);
        r = 0.5f * h * h;
    } else {
        let e = expm1_f32(a);
        r = 0.5f * (e + e / (e + 1.0f));
    }
    return signed_f32(r, x);
}",
    ),
    (
        "cosh_f32",
        &["isnan_f32", "exp_f32"],
        "fn cosh_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    let a = abs(x);
    if a > 20.0f {
        let h = exp_f32(0.5f * a);
        return 0.5f * h * h;
    }
    let e = exp_f32(a);
    return 0.5f * (e + 1.0f / e);
}",
    ),
    (
        "asinh_f32",
        &["isnan_f32", "isinf_f32", "log_f32", "log1p_f32", "signed_f32"],
        "// log1p form near zero; log(|x|) + ln 2 where x*x would overflow.
fn asinh_f32(x: f32) -> f32 {
    if isnan_f32(x) || isinf_f32(x) {
        return x;
    }
    let a = abs(x);
    var r: f32;
    if a > 1.0e9f {
        r = log_f32(a) + 0.6931472f;
    } else {
        r = log1p_f32(a + a * a / (1.0f + sqrt(1.0f + a * a)));
    }
    return signed_f32(r, x);
}",
    ),
    (
        "acosh_f32",
        &["isnan_f32", "nan_f32", "log_f32", "log1p_f32"],
        "fn acosh_f32(x: f32) -> f32 {
    if isnan_f32(x) || x < 1.0f {
        return nan_f32();
    }
    if x > 1.0e9f {
        return log_f32(x) + 0.6931472f;
    }
    let t = x - 1.0f;
    return log1p_f32(t + sqrt(2.0f * t + t * t));
}",
    ),
    (
        "atanh_f32",
        &["isnan_f32", "nan_f32", "log1p_f32", "signed_f32"],
        "fn atanh_f32(x: f32) -> f32 {
    if isnan_f32(x) || abs(x) > 1.0f {
        return nan_f32();
    }
    let a = abs(x);
    return signed_f32(0.5f * log1p_f32(2.0f * a / (1.0f - a)), x);
}",
    ),
    (
        "log2_f32",
        &["log_f32", "isinf_f32", "isnan_f32"],
        "// Exponent from the bits (subnormals too, whatever the device does with them), plus
// log2 from the exponent bits and the mantissa's log: exact on powers of two.
fn log2_f32(x: f32) -> f32 {
    if isnan_f32(x) || x <= 0.0f || isinf_f32(x) {
        return log_f32(x);
    }
    let b = bitcast<u32>(x);
    let e = (b >> 23u) & 0xffu;
    var m = b & 0x7fffffu;
    var k = i32(e) - 127;
    if e == 0u {
        let p = firstLeadingBit(m);
        k = i32(p) - 149;
        m = (m << (23u - p)) & 0x7fffffu;
    }
    var f = bitcast<f32>(m | 0x3f800000u);
    // The mantissa in [sqrt(1/2), sqrt(2)): just below 1, f is near 1 and k is 0, so the
    // result is not a difference of two nearly equal terms (0.918 - 1 lost 2 digits).
    if f > 1.4142135f {
        f = f * 0.5f;
        k = k + 1;
    }
    return f32(k) + log_f32(f) * 1.442695f;
}",
    ),
    (
        "log10_f32",
        &["log2_f32"],
        "fn log10_f32(x: f32) -> f32 {
    return log2_f32(x) * 0.30103f;
}",
    ),
    (
        "exp2_f32",
        &["isnan_f32", "exp_f32"],
        "// Exact for integers (ldexp), exp of the fraction otherwise.
fn exp2_f32(x: f32) -> f32 {
    if isnan_f32(x) {
        return x;
    }
    let c = clamp(x, -200.0f, 200.0f);
    let n = floor(c);
    return ldexp(exp_f32((c - n) * 0.6931472f), i32(n));
}",
    ),
    (
        "cbrt_f32",
        &["isnan_f32", "isinf_f32", "signed_f32", "exp2_f32", "log2_f32"],
        "// exp2(log2|x| / 3) refined by one Newton step.
fn cbrt_f32(x: f32) -> f32 {
    if isnan_f32(x) || isinf_f32(x) || x == 0.0f {
        return x;
    }
    let a = abs(x);
    var y = exp2_f32(log2_f32(a) / 3.0f);
    y = y - (y - a / (y * y)) / 3.0f;
    return signed_f32(y, x);
}",
    ),
    (
        "signbit_f32",
        &[],
        "fn signbit_f32(x: f32) -> bool {
    return (bitcast<u32>(x) >> 31u) == 1u;
}",
    ),
    (
        "copysign_f32",
        &[],
        "fn copysign_f32(x: f32, y: f32) -> f32 {
    return bitcast<f32>((bitcast<u32>(x) & 0x7fffffffu) | (bitcast<u32>(y) & 0x80000000u));
}",
    ),
    (
        "nextafter_f32",
        &["isnan_f32"],
        "// Steps the bit pattern by one towards y (C nextafterf, numpy's nextafter).
fn nextafter_f32(x: f32, y: f32) -> f32 {
    if isnan_f32(x) || isnan_f32(y) {
        return x + y;
    }
    if x == y {
        return y;
    }
    let bx = bitcast<u32>(x);
    if (bx & 0x7fffffffu) == 0u {
        return bitcast<f32>(1u | (bitcast<u32>(y) & 0x80000000u));
    }
    if (x < y) == (x > 0.0f) {
        return bitcast<f32>(bx + 1u);
    }
    return bitcast<f32>(bx - 1u);
}",
    ),
    (
        "hypot_f32",
        &["isnan_f32", "isinf_f32", "inf_f32"],
        "// Scaled by the larger magnitude so the squares neither overflow nor underflow.
fn hypot_f32(x: f32, y: f32) -> f32 {
    let a = abs(x);
    let b = abs(y);
    if isinf_f32(a) || isinf_f32(b) {
        return inf_f32();
    }
    if isnan_f32(a) || isnan_f32(b) {
        return a + b;
    }
    let m = max(a, b);
    if m == 0.0f {
        return 0.0f;
    }
    let p = a / m;
    let q = b / m;
    return m * sqrt(p * p + q * q);
}",
    ),
    (
        "atan2_f32",
        &["isnan_f32", "isinf_f32", "atan_f32", "signed_f32", "signbit_f32"],
        "// C's atan2f cases for zeros and infinities; atan_f32 of the ratio otherwise.
fn atan2_f32(y: f32, x: f32) -> f32 {
    if isnan_f32(x) || isnan_f32(y) {
        return x + y;
    }
    let pi = 3.1415927f;
    if y == 0.0f {
        return signed_f32(select(0.0f, pi, signbit_f32(x)), y);
    }
    if isinf_f32(y) {
        if isinf_f32(x) {
            return signed_f32(select(0.7853982f, 2.3561945f, x < 0.0f), y);
        }
        return signed_f32(1.5707964f, y);
    }
    if x == 0.0f {
        return signed_f32(1.5707964f, y);
    }
    if isinf_f32(x) {
        return signed_f32(select(0.0f, pi, x < 0.0f), y);
    }
    let r = atan_f32(abs(y / x));
    if x < 0.0f {
        return signed_f32(pi - r, y);
    }
    return signed_f32(r, y);
}",
    ),
    (
        "logaddexp_f32",
        &["exp_f32", "log1p_f32"],
        "// numpy's npy_logaddexp: exact for equal arguments (infinities included).
fn logaddexp_f32(x: f32, y: f32) -> f32 {
    if x == y {
        return x + 0.6931472f;
    }
    let d = x - y;
    if d > 0.0f {
        return x + log1p_f32(exp_f32(-d));
    }
    if d <= 0.0f {
        return y + log1p_f32(exp_f32(d));
    }
    return d;
}",
    ),
    (
        "recip_i32",
        &[],
        "// numpy's integer reciprocal (1.0 / x cast back; 0 gives INT32_MIN as on x86).
fn recip_i32(x: i32) -> i32 {
    if x == 1i || x == -1i {
        return x;
    }
    if x == 0i {
        return -2147483647i - 1i;
    }
    return 0i;
}",
    ),
];
