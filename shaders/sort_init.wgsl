// Sort keys (Tessera wgpu library kernel, the first step of the bitonic lane sort in
// sort_bitonic.wgsl): each element of a lane becomes a (key, position) pair whose unsigned
// order is the sort's order, so the network compares plain u32 words.
//
// src: the chunk's 32-bit elements, lanes of `len` elements one after another (axis last).
// keys, idx: `total` entries; lane r occupies [r * P, r * P + P) with P a power of two; entries
// past a lane's `len` (and past `lanes * P`) are padding, keyed 0xffffffff with position
// 0xffffffff, so they sort after every element of their lane.
// params (u32): [lanes, len, P, total, mode]; mode bit 0: float32 (else int32), bit 1:
// descending.
// Keys: float32 NaNs become one quiet NaN (after every number), -0.0 becomes +0.0 (equal to
// 0.0, so the tie goes to the position: stable), then the usual sign flip makes the unsigned
// order the float order; int32 flips the sign bit. Descending inverts the key (NaN first, as
// the CPU backend) while positions still break ties upward (stable).

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
@group(0) @binding(3) var<storage, read> params: array<u32>;

fn key_of(b: u32, mode: u32) -> u32 {
    var x = b;
    if ((mode & 1u) != 0u) {
        if ((x & 0x7fffffffu) > 0x7f800000u) {
            x = 0x7fc00000u;
        }
        if (x == 0x80000000u) {
            x = 0u;
        }
        if ((x & 0x80000000u) != 0u) {
            x = ~x;
        } else {
            x = x | 0x80000000u;
        }
    } else {
        x = x ^ 0x80000000u;
    }
    if ((mode & 2u) != 0u) {
        x = ~x;
    }
    return x;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lanes = params[0];
    let len = params[1];
    let p2 = params[2];
    let total = params[3];
    let mode = params[4];
    let stride = nwg.x * nwg.y * 256u;
    for (var e = gid.x + gid.y * nwg.x * 256u; e < total; e = e + stride) {
        let r = e / p2;
        let p = e % p2;
        if (r < lanes && p < len) {
            keys[e] = key_of(src[r * len + p], mode);
            idx[e] = p;
        } else {
            keys[e] = 0xffffffffu;
            idx[e] = 0xffffffffu;
        }
    }
}
