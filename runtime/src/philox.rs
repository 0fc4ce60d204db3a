//! Philox4x32-10, the counter-based generator behind every random source.
//!
//! A value depends only on (seed, stream, flat element index), never on chunking or backend.
//! The WGSL and CUDA renderers emit the same rounds, so every backend draws the same bits.

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
