//! Philox4x32-10, the counter-based generator behind every random source.
//!
//! A value depends only on (seed, stream, flat element index), never on chunking or backend.
//! The WGSL and CUDA renderers emit the same rounds, so every backend draws the same bits.
//!
//! One Philox call gives four 32-bit words; values that need fewer share a call. Element `g`
//! of a draw that takes `k = words_per_value(dist, dtype)` words uses counter `g / (4 / k)` and
//! the words `(g % (4 / k)) * k .. + k` of its output:
//! - uniform f32: k = 1, `u01_f32(w0)`; other float dtypes draw f64 and cast;
//! - uniform f64: k = 2, `u01_f64(w0, w1)`;
//! - normal f32: k = 2, `normal_f32([w0, w1, ..])` (Box-Muller on two uniforms);
//! - normal f64: k = 4, `normal_f64(w)`;
//! - randint: k = 2, `randint(w0, w1)` (64 bits); integer dtypes cast from i64.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Ten Philox rounds on `ctr` with `key`; returns four 32-bit words.
#[inline]
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for _ in 0..10 {
        let p0 = (M0 as u64) * (ctr[0] as u64);
        let p1 = (M1 as u64) * (ctr[2] as u64);
        ctr = [
            ((p1 >> 32) as u32) ^ ctr[1] ^ key[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ ctr[3] ^ key[1],
            p0 as u32,
        ];
        key[0] = key[0].wrapping_add(W0);
        key[1] = key[1].wrapping_add(W1);
    }
    ctr
}

/// The four words for element `index` of draw `stream` under `seed`.
#[inline]
pub fn draw(seed: u64, stream: u64, index: u64) -> [u32; 4] {
    philox4x32_10(
        [
            index as u32,
            (index >> 32) as u32,
            stream as u32,
            (stream >> 32) as u32,
        ],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// Words of one Philox output each value of `dist` in `dtype` takes.
pub fn words_per_value(dist: crate::op::Dist, dtype: crate::dtype::DType) -> usize {
    use crate::dtype::DType;
    use crate::op::Dist;
    match (dist, dtype) {
        (Dist::Uniform { .. }, DType::F32) => 1,
        (Dist::Uniform { .. }, _) => 2,
        (Dist::Normal { .. }, DType::F32) => 2,
        (Dist::Normal { .. }, _) => 4,
        (Dist::RandInt { .. }, _) => 2,
    }
}

/// The `k` words of element `g` (see the module docs), in the first `k` slots.
#[inline]
pub fn words_at(seed: u64, stream: u64, g: u64, k: usize) -> [u32; 4] {
    let per = (4 / k) as u64;
    let w = draw(seed, stream, g / per);
    let j = (g % per) as usize * k;
    let mut out = [0u32; 4];
    out[..k].copy_from_slice(&w[j..j + k]);
    out
}

/// Philox outputs for `n = out.len()` consecutive counters starting at `first` (the counter
/// wraps at 2^64 as in [`draw`]). Uses AVX-512 or AVX2 where the CPU has it, else a portable
/// loop.
pub fn draw_many(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: `available` checked that this CPU supports AVX-512F, the only target
        // feature `avx512::draw_many` enables.
        unsafe { avx512::draw_many(seed, stream, first, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: `available` checked that this CPU supports AVX2, the only target feature
        // `avx2::draw_many` enables.
        unsafe { avx2::draw_many(seed, stream, first, out) };
        return;
    }
    draw_many_portable(seed, stream, first, out);
}

/// [`draw_many`] without explicit SIMD: 64 lanes at a time (structure of arrays) so the
/// compiler can vectorize the rounds.
fn draw_many_portable(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
    const L: usize = 64;
    let key0 = [seed as u32, (seed >> 32) as u32];
    let (c2, c3) = (stream as u32, (stream >> 32) as u32);
    for (b, chunk) in out.chunks_mut(L).enumerate() {
        let base = first.wrapping_add((b * L) as u64);
        let mut x0 = [0u32; L];
        let mut x1 = [0u32; L];
        let mut x2 = [c2; L];
        let mut x3 = [c3; L];
        for l in 0..L {
            let c = base.wrapping_add(l as u64);
            x0[l] = c as u32;
            x1[l] = (c >> 32) as u32;
        }
        let mut k = key0;
        for _ in 0..10 {
            for l in 0..L {
                let p0 = (M0 as u64) * (x0[l] as u64);
                let p1 = (M1 as u64) * (x2[l] as u64);
                let n0 = ((p1 >> 32) as u32) ^ x1[l] ^ k[0];
                let n2 = ((p0 >> 32) as u32) ^ x3[l] ^ k[1];
                x1[l] = p1 as u32;
                x3[l] = p0 as u32;
                x0[l] = n0;
                x2[l] = n2;
            }
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for (l, o) in chunk.iter_mut().enumerate() {
            *o = [x0[l], x1[l], x2[l], x3[l]];
        }
    }
}

/// Philox4x32-10 on AVX2. Each 64-bit lane of a 256-bit register carries one counter, its
/// words in the low 32 bits (four counters per register, two registers in flight so that
/// independent multiplies overlap; three, four or six measured slower on Zen 3, where the
/// extra registers spill). `_mm256_mul_epu32` reads only those low halves, so the
/// 64-bit product can stand in for both its words: the high word is one shift away and the
/// low word is the product itself, whose high half nothing reads.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{M0, M1, W0, W1};
    use std::arch::x86_64::*;

    /// Counters per loop iteration: two registers of four.
    const N: usize = 8;

    /// Whether this CPU runs AVX2 (std caches the CPUID answer; with AVX2 enabled at compile
    /// time, as in this workspace's x86-64-v3 build, the check is a constant).
    #[inline]
    pub fn available() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// Per round, the two key words broadcast to every lane.
    type Keys = [[__m256i; 2]; 10];

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn keys(seed: u64) -> Keys {
        let (mut k0, mut k1) = (seed as u32, (seed >> 32) as u32);
        let mut ks = [[_mm256_setzero_si256(); 2]; 10];
        for k in ks.iter_mut() {
            *k = [_mm256_set1_epi32(k0 as i32), _mm256_set1_epi32(k1 as i32)];
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        ks
    }

    /// Stores one register's four counters (see [`fill`]) as four counter-major outputs.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store(x: [__m256i; 4], out: &mut [[u32; 4]; 4]) {
        // (w0, w1) and (w2, w3) pairs per 64-bit lane, then counter 0 | 2 and 1 | 3, then
        // the 128-bit halves swapped into counter order.
        let a = _mm256_blend_epi32::<0b1010_1010>(x[0], _mm256_slli_epi64::<32>(x[1]));
        let b = _mm256_blend_epi32::<0b1010_1010>(x[2], _mm256_slli_epi64::<32>(x[3]));
        let c02 = _mm256_unpacklo_epi64(a, b);
        let c13 = _mm256_unpackhi_epi64(a, b);
        let p = out.as_mut_ptr().cast::<__m256i>();
        // SAFETY: `out` is 4 x 16 = 64 writable bytes; two unaligned 32-byte stores at
        // offsets 0 and 32.
        _mm256_storeu_si256(p, _mm256_permute2x128_si256::<0x20>(c02, c13));
        _mm256_storeu_si256(p.add(1), _mm256_permute2x128_si256::<0x31>(c02, c13));
    }

    /// Philox outputs for the counters `first, first + 1, ..` (wrapping) into `out`, whose
    /// length is a multiple of `N`. Per iteration, register `a` holds counters `base .. + 4`
    /// and `b` the next four, word `j` of lane `l` in the low half of lane `l` of `a{j}`.
    #[target_feature(enable = "avx2")]
    unsafe fn fill(stream: u64, first: u64, ks: &Keys, out: &mut [[u32; 4]]) {
        let m0 = _mm256_set1_epi64x(M0 as i64);
        let m1 = _mm256_set1_epi64x(M1 as i64);
        let c2 = _mm256_set1_epi64x(stream as i64);
        let c3 = _mm256_set1_epi64x((stream >> 32) as i64);
        let lanes = _mm256_setr_epi64x(0, 1, 2, 3);
        let mut base = first;
        for block in out.chunks_exact_mut(N) {
            // 64-bit adds carry from the low counter word into the high one by themselves.
            let ctr = |r: u64| {
                _mm256_add_epi64(_mm256_set1_epi64x(base.wrapping_add(4 * r) as i64), lanes)
            };
            let (mut a0, mut b0) = (ctr(0), ctr(1));
            let (mut a1, mut b1) = (_mm256_srli_epi64::<32>(a0), _mm256_srli_epi64::<32>(b0));
            let (mut a2, mut b2) = (c2, c2);
            let (mut a3, mut b3) = (c3, c3);
            // One round on one register's four words (named variables rather than arrays
            // keep every word in a register).
            macro_rules! round {
                ($k:expr, $x0:ident, $x1:ident, $x2:ident, $x3:ident) => {
                    let p0 = _mm256_mul_epu32($x0, m0);
                    let p1 = _mm256_mul_epu32($x2, m1);
                    $x0 =
                        _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64::<32>(p1), $x1), $k[0]);
                    $x1 = p1;
                    $x2 =
                        _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64::<32>(p0), $x3), $k[1]);
                    $x3 = p0;
                };
            }
            // Unrolled: a rolled loop makes the rotation of words between registers cost
            // moves.
            macro_rules! all {
                ($($i:literal)*) => {$(
                    round!(ks[$i], a0, a1, a2, a3);
                    round!(ks[$i], b0, b1, b2, b3);
                )*};
            }
            all!(0 1 2 3 4 5 6 7 8 9);
            let (lo, hi) = block.split_at_mut(4);
            store([a0, a1, a2, a3], lo.try_into().expect("four counters"));
            store([b0, b1, b2, b3], hi.try_into().expect("four counters"));
            base = base.wrapping_add(N as u64);
        }
    }

    /// [`super::draw_many`] on AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn draw_many(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
        let ks = keys(seed);
        let whole = out.len() / N * N;
        let (body, rest) = out.split_at_mut(whole);
        fill(stream, first, &ks, body);
        if !rest.is_empty() {
            let mut tmp = [[0u32; 4]; N];
            fill(stream, first.wrapping_add(whole as u64), &ks, &mut tmp);
            rest.copy_from_slice(&tmp[..rest.len()]);
        }
    }
}

/// Philox4x32-10 on AVX-512 (F). The layout is the AVX2 one (each 64-bit lane carries one
/// counter, its words in the low halves) on 512-bit registers, with two differences that
/// measured 1.6 to 2.3 times faster on Zen 4 (1.4 against 2.3 to 3.3 ns per counter):
/// - one `vpternlogq` computes `hi ^ x ^ key`, so a round is six instructions (two
///   multiplies, two shifts, two ternary xors) instead of eight;
/// - 32 vector registers hold four groups of eight counters in flight without spilling, so
///   the rounds run at the multipliers' and shifters' throughput rather than the five-cycle
///   latency of one round's chain.
///
/// The words can be stored as they are or, for uniform f32 draws, turned into floats in
/// registers first ([`uniform_f32_into`]), so such a draw never stores its words.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{M0, M1, W0, W1};
    use std::arch::x86_64::*;

    /// Counters per loop iteration: four registers of eight.
    pub const N: usize = 32;

    /// Whether this CPU runs AVX-512F (std caches the CPUID answer).
    #[inline]
    pub fn available() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    /// Per round, the two key words broadcast to every lane.
    type Keys = [[__m512i; 2]; 10];

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn keys(seed: u64) -> Keys {
        let (mut k0, mut k1) = (seed as u32, (seed >> 32) as u32);
        let mut ks = [[_mm512_setzero_si512(); 2]; 10];
        for k in ks.iter_mut() {
            *k = [_mm512_set1_epi32(k0 as i32), _mm512_set1_epi32(k1 as i32)];
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        ks
    }

    /// What [`fill`] stores: the words, `lo + span * u01_f32(w)`, or `u01_f32(w)` (the
    /// same floats when `lo = 0` and `span = 1`: `1 * u` and `0 + u` are exact, so the
    /// multiply and add are skipped).
    const WORDS: u8 = 0;
    const AFFINE: u8 = 1;
    const UNIT: u8 = 2;

    /// Stores one register's eight counters as eight counter-major outputs (see [`WORDS`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store<const OUT: u8>(x: [__m512i; 4], lo: f32, span: f32, out: &mut [[u32; 4]]) {
        // (w0, w1) and (w2, w3) pairs per 64-bit lane, then counter c = (a[c], b[c]).
        let a = _mm512_mask_blend_epi32(0xAAAA, x[0], _mm512_slli_epi64::<32>(x[1]));
        let b = _mm512_mask_blend_epi32(0xAAAA, x[2], _mm512_slli_epi64::<32>(x[3]));
        let first = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), b);
        let second = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), b);
        let conv = |w: __m512i| {
            if OUT == WORDS {
                return w;
            }
            // u01_f32: the top 24 bits, exactly representable, times 2^-24 (exact); then one
            // rounded multiply and one rounded add, as the scalar recipe (no FMA).
            let u = _mm512_mul_ps(
                _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(w)),
                _mm512_set1_ps(1.0 / 16_777_216.0),
            );
            if OUT == UNIT {
                return _mm512_castps_si512(u);
            }
            _mm512_castps_si512(_mm512_add_ps(
                _mm512_set1_ps(lo),
                _mm512_mul_ps(_mm512_set1_ps(span), u),
            ))
        };
        let out: &mut [[u32; 4]; 8] = (&mut out[..8]).try_into().expect("eight counters");
        let p = out.as_mut_ptr().cast::<__m512i>();
        // SAFETY: `out` is 8 x 16 = 128 writable bytes; two unaligned 64-byte stores at
        // offsets 0 and 64.
        unsafe {
            _mm512_storeu_si512(p, conv(first));
            _mm512_storeu_si512(p.add(1), conv(second));
        }
    }

    /// Philox outputs for the counters `first, first + 1, ..` (wrapping) into `out`, whose
    /// length is a multiple of `N` (see [`WORDS`] for what is stored).
    #[target_feature(enable = "avx512f")]
    fn fill<const OUT: u8>(
        seed: u64,
        stream: u64,
        first: u64,
        lo: f32,
        span: f32,
        out: &mut [[u32; 4]],
    ) {
        let ks = keys(seed);
        let m0 = _mm512_set1_epi64(M0 as i64);
        let m1 = _mm512_set1_epi64(M1 as i64);
        let c2 = _mm512_set1_epi64(stream as i64);
        let c3 = _mm512_set1_epi64((stream >> 32) as i64);
        let lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        let mut base = first;
        for block in out.chunks_exact_mut(N) {
            // 64-bit adds carry from the low counter word into the high one by themselves.
            let group = |r: u64| {
                let c = _mm512_add_epi64(_mm512_set1_epi64(base.wrapping_add(8 * r) as i64), lanes);
                [c, _mm512_srli_epi64::<32>(c), c2, c3]
            };
            let (mut a, mut b, mut c, mut d) = (group(0), group(1), group(2), group(3));
            macro_rules! round {
                ($k:expr, $x:ident) => {
                    let p0 = _mm512_mul_epu32($x[0], m0);
                    let p1 = _mm512_mul_epu32($x[2], m1);
                    $x[0] = _mm512_ternarylogic_epi64::<0x96>(
                        _mm512_srli_epi64::<32>(p1),
                        $x[1],
                        $k[0],
                    );
                    $x[1] = p1;
                    $x[2] = _mm512_ternarylogic_epi64::<0x96>(
                        _mm512_srli_epi64::<32>(p0),
                        $x[3],
                        $k[1],
                    );
                    $x[3] = p0;
                };
            }
            // Unrolled, as in the AVX2 loop.
            macro_rules! all {
                ($($i:literal)*) => {$(
                    round!(ks[$i], a);
                    round!(ks[$i], b);
                    round!(ks[$i], c);
                    round!(ks[$i], d);
                )*};
            }
            all!(0 1 2 3 4 5 6 7 8 9);
            for (g, x) in [a, b, c, d].into_iter().enumerate() {
                store::<OUT>(x, lo, span, &mut block[8 * g..8 * g + 8]);
            }
            base = base.wrapping_add(N as u64);
        }
    }

    /// [`super::draw_many`] on AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn draw_many(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
        let whole = out.len() / N * N;
        let (body, rest) = out.split_at_mut(whole);
        fill::<WORDS>(seed, stream, first, 0.0, 0.0, body);
        if !rest.is_empty() {
            let mut tmp = [[0u32; 4]; N];
            fill::<WORDS>(
                seed,
                stream,
                first.wrapping_add(whole as u64),
                0.0,
                0.0,
                &mut tmp,
            );
            rest.copy_from_slice(&tmp[..rest.len()]);
        }
    }

    /// Uniform f32 values `lo + span * u01_f32(w)` of every word of the counters `first ..
    /// first + out.len() / 4`, in counter-major order; `out.len()` is a multiple of `4 * N`.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn uniform_f32(
        seed: u64,
        stream: u64,
        first: u64,
        lo: f32,
        span: f32,
        out: &mut [f32],
    ) {
        let out = bytemuck::cast_slice_mut(out);
        if lo.to_bits() == 0 && span == 1.0 {
            fill::<UNIT>(seed, stream, first, lo, span, out);
        } else {
            fill::<AFFINE>(seed, stream, first, lo, span, out);
        }
    }
}

/// The words of elements `g0 .. g0 + n` of a draw taking `k` words per value, written straight
/// into `out` (`n = out.len() / k`): element `g0 + i` gets `out[i*k .. i*k + k]`.
pub fn words_into(seed: u64, stream: u64, g0: u64, k: usize, out: &mut [u32]) {
    let per = (4 / k) as u64;
    let mut ctr = g0 / per;
    let mut out = out;
    // A first counter shared with elements before g0: only its last words belong here.
    let skip = (g0 % per) as usize * k;
    if skip > 0 && !out.is_empty() {
        let w = draw(seed, stream, ctr);
        let m = (4 - skip).min(out.len());
        out[..m].copy_from_slice(&w[skip..skip + m]);
        out = &mut out[m..];
        ctr += 1;
    }
    let whole = out.len() / 4 * 4;
    let (body, tail) = out.split_at_mut(whole);
    draw_many(seed, stream, ctr, bytemuck::cast_slice_mut(body));
    if !tail.is_empty() {
        let w = draw(seed, stream, ctr + (whole / 4) as u64);
        tail.copy_from_slice(&w[..tail.len()]);
    }
}

/// The uniform f32 values `lo + span * u01_f32(w)` of elements `g0 .. g0 + out.len()` of a
/// draw (one word per value, as [`words_into`] with `k = 1` gives them), computed without
/// storing the words where the CPU has AVX-512.
pub fn uniform_f32_into(seed: u64, stream: u64, g0: u64, lo: f32, span: f32, out: &mut [f32]) {
    // Elements `g ..` through their words, a stack buffer at a time.
    let via_words = |g: u64, out: &mut [f32]| {
        let mut ws = [0u32; 256];
        for (c, o) in out.chunks_mut(ws.len()).enumerate() {
            words_into(
                seed,
                stream,
                g + (c * ws.len()) as u64,
                1,
                &mut ws[..o.len()],
            );
            for (v, &w) in o.iter_mut().zip(&ws) {
                *v = lo + span * u01_f32(w);
            }
        }
    };
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // Elements before the first counter boundary, then whole vector iterations, then the
        // rest.
        let head = ((4 - g0 % 4) % 4).min(out.len() as u64) as usize;
        let body = (out.len() - head) / (4 * avx512::N) * (4 * avx512::N);
        let (h, rest) = out.split_at_mut(head);
        let (b, t) = rest.split_at_mut(body);
        via_words(g0, h);
        let g1 = g0 + head as u64;
        // SAFETY: `available` checked that this CPU supports AVX-512F.
        unsafe { avx512::uniform_f32(seed, stream, g1 / 4, lo, span, b) };
        via_words(g1 + body as u64, t);
        return;
    }
    via_words(g0, out);
}

/// A uniform f32 in [0, 1) from the top 24 bits of a word.
#[inline]
pub fn u01_f32(w: u32) -> f32 {
    (w >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A uniform f64 in [0, 1) from 53 bits of two words.
#[inline]
pub fn u01_f64(hi: u32, lo: u32) -> f64 {
    let bits = ((hi as u64) << 21) ^ ((lo as u64) >> 11);
    bits as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// A standard normal f64 by Box-Muller from the element's four words.
#[inline]
pub fn normal_f64(w: [u32; 4]) -> f64 {
    // 1 - u keeps the log argument in (0, 1].
    let u1 = 1.0 - u01_f64(w[0], w[1]);
    let u2 = u01_f64(w[2], w[3]);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A standard normal f32 by Box-Muller (computed in f32).
#[inline]
pub fn normal_f32(w: [u32; 4]) -> f32 {
    let u1 = 1.0 - u01_f32(w[0]);
    let u2 = u01_f32(w[1]);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// An integer uniform in [low, high) (high > low) by 64-bit multiply-shift.
#[inline]
pub fn randint(w: [u32; 4], low: i64, high: i64) -> i64 {
    let range = (high as i128 - low as i128) as u128;
    let r = ((w[0] as u64) << 32) | w[1] as u64;
    low.wrapping_add(((r as u128 * range) >> 64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn known_answer_random123() {
        // Known-answer vectors of Random123 (philox4x32_10).
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }
    #[test]
    fn batched_draws_equal_single_draws() {
        let mut many = vec![[0u32; 4]; 37];
        draw_many(11, 3, 1 << 33, &mut many);
        for (i, w) in many.iter().enumerate() {
            assert_eq!(*w, draw(11, 3, (1 << 33) + i as u64));
        }
        for k in [1, 2, 4] {
            for (g0, n) in [(13, 21), (0, 8), (3, 1), (2, 2), (1 << 32, 37), (5, 0)] {
                let mut ws = vec![0u32; n * k];
                words_into(5, 9, g0, k, &mut ws);
                for i in 0..n {
                    let w = words_at(5, 9, g0 + i as u64, k);
                    assert_eq!(ws[i * k..i * k + k], w[..k], "k={k} g0={g0} i={i}");
                }
            }
        }
    }
    /// SplitMix64, a test-local source of arbitrary seeds, streams and counters.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Every batched implementation this CPU can run, by name.
    #[allow(clippy::type_complexity)]
    fn batched() -> Vec<(&'static str, fn(u64, u64, u64, &mut [[u32; 4]]))> {
        let mut v: Vec<(&'static str, fn(u64, u64, u64, &mut [[u32; 4]]))> =
            vec![("dispatch", draw_many), ("portable", draw_many_portable)];
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            fn go(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
                // SAFETY: only registered after `avx2::available()` returned true.
                unsafe { avx2::draw_many(seed, stream, first, out) }
            }
            v.push(("avx2", go));
        }
        #[cfg(target_arch = "x86_64")]
        if avx512::available() {
            fn go512(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
                // SAFETY: only registered after `avx512::available()` returned true.
                unsafe { avx512::draw_many(seed, stream, first, out) }
            }
            v.push(("avx512", go512));
        } else {
            eprintln!("philox: this CPU has no AVX-512F; its path is not tested here");
        }
        v
    }

    #[test]
    fn batched_draws_bit_identical_to_scalar() {
        let mut st = 0x5EED_u64;
        // Starts just below a 2^32 boundary of the counter (the carry into its high word), at
        // the very top of the 64-bit range (wrapping to 0), and arbitrary; odd lengths leave
        // partial vector groups.
        let mut cases: Vec<(u64, u64, u64, usize)> = vec![
            (0, 0, 0, 1),
            (1, 2, (1 << 32) - 5, 29),
            (3, 4, (7 << 32) - 13, 64),
            (5, 6, u64::MAX - 9, 23),
            (7, u64::MAX, u32::MAX as u64, 17),
        ];
        for _ in 0..40 {
            let seed = splitmix(&mut st);
            let stream = splitmix(&mut st);
            let first = splitmix(&mut st);
            // Up to several vector iterations of every implementation (32 counters for
            // AVX-512), plus a partial one.
            let len = (splitmix(&mut st) % 300) as usize;
            cases.push((seed, stream, first, len));
            // The same draw straddling the next 2^32 boundary of the counter.
            let near = (first | 0xFFFF_FFFF).wrapping_sub(len as u64 / 2);
            cases.push((seed, stream, near, len));
        }
        for (name, f) in batched() {
            for &(seed, stream, first, len) in &cases {
                let mut out = vec![[0u32; 4]; len];
                f(seed, stream, first, &mut out);
                for (i, w) in out.iter().enumerate() {
                    let c = first.wrapping_add(i as u64);
                    let ctr = [
                        c as u32,
                        (c >> 32) as u32,
                        stream as u32,
                        (stream >> 32) as u32,
                    ];
                    let key = [seed as u32, (seed >> 32) as u32];
                    assert_eq!(
                        *w,
                        philox4x32_10(ctr, key),
                        "{name}: seed={seed} stream={stream} counter={c}"
                    );
                }
            }
        }
    }
    #[test]
    fn uniform_f32_into_equals_words_then_convert() {
        let mut st = 0xF10A7_u64;
        // Starts on and off a counter boundary; lengths below, at and across whole vector
        // iterations (128 values on AVX-512), including the 2^32 carry of the counter.
        let mut cases: Vec<(u64, u64, u64, usize)> = vec![
            (1, 2, 0, 0),
            (1, 2, 3, 1),
            (3, 4, 0, 128),
            (3, 4, 1, 128),
            (5, 6, 2, 4096),
            (7, 8, (4 << 32) - 203, 1001),
        ];
        for _ in 0..30 {
            let (seed, stream, g0) = (splitmix(&mut st), splitmix(&mut st), splitmix(&mut st) >> 2);
            cases.push((seed, stream, g0, (splitmix(&mut st) % 700) as usize));
        }
        for (lo, span) in [(0.0f32, 1.0f32), (-2.5, 7.25), (1e-3, 3e4)] {
            for &(seed, stream, g0, n) in &cases {
                let mut got = vec![f32::NAN; n];
                uniform_f32_into(seed, stream, g0, lo, span, &mut got);
                let mut ws = vec![0u32; n];
                words_into(seed, stream, g0, 1, &mut ws);
                for (i, (&v, &w)) in got.iter().zip(&ws).enumerate() {
                    let want = lo + span * u01_f32(w);
                    assert_eq!(
                        v.to_bits(),
                        want.to_bits(),
                        "seed={seed} g0={g0} n={n} i={i}"
                    );
                }
            }
        }
    }
    #[test]
    fn uniforms_in_range() {
        for i in 0..1000 {
            let w = draw(7, 0, i);
            let a = u01_f32(w[0]);
            let b = u01_f64(w[0], w[1]);
            assert!((0.0..1.0).contains(&a) && (0.0..1.0).contains(&b));
            let r = randint(w, -3, 5);
            assert!((-3..5).contains(&r));
        }
    }
}
