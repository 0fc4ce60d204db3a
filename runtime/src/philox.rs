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

/// Philox outputs for `n = out.len()` consecutive counters starting at `first`, computed 64
/// lanes at a time (structure of arrays) so the compiler vectorizes the rounds.
pub fn draw_many(seed: u64, stream: u64, first: u64, out: &mut [[u32; 4]]) {
    const L: usize = 64;
    let key0 = [seed as u32, (seed >> 32) as u32];
    let (c2, c3) = (stream as u32, (stream >> 32) as u32);
    for (b, chunk) in out.chunks_mut(L).enumerate() {
        let base = first + (b * L) as u64;
        let mut x0 = [0u32; L];
        let mut x1 = [0u32; L];
        let mut x2 = [c2; L];
        let mut x3 = [c3; L];
        for l in 0..L {
            let c = base + l as u64;
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

/// The Philox outputs covering elements `g0 .. g0 + n` of a draw taking `k` words per value,
/// flattened: element `g0 + i` owns words `first + i*k .. first + i*k + k`. Returns `first`.
pub fn words_range(
    seed: u64,
    stream: u64,
    g0: u64,
    n: usize,
    k: usize,
    out: &mut Vec<u32>,
) -> usize {
    out.clear();
    if n == 0 {
        return 0;
    }
    let per = (4 / k) as u64;
    let c0 = g0 / per;
    let c1 = (g0 + n as u64 - 1) / per;
    let mut ctr = vec![[0u32; 4]; (c1 - c0 + 1) as usize];
    draw_many(seed, stream, c0, &mut ctr);
    out.extend_from_slice(ctr.as_flattened());
    (g0 % per) as usize * k
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
            let mut ws = Vec::new();
            let first = words_range(5, 9, 13, 21, k, &mut ws);
            for i in 0..21 {
                let w = words_at(5, 9, 13 + i as u64, k);
                assert_eq!(ws[first + i * k..first + i * k + k], w[..k], "k={k} i={i}");
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
