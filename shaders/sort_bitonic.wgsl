// Bitonic sort of (key, position) pairs in lanes of P entries, P a power of two (Tessera wgpu
// library kernels; keys from sort_init.wgsl). A pair is greater when its key is, or its key is
// equal and its position greater: the order is total, so the sort is stable.
//
// Two entry points, each made `main` for its own pipeline:
// - `bitonic_local`: one workgroup of 256 threads per block of 512 entries, in workgroup memory.
//   params[2] == 0: the whole network for stages k = 2 .. min(P, 512) (every lane of up to 512
//   entries sorted, longer lanes in sorted runs of 512); params[2] == k > 512: the steps
//   j = 256 .. 1 of stage k.
// - `bitonic_step`: one step j >= 512 of stage k in global memory, a thread per pair.
// params (u32): [total, P, k, j]; `total` is a multiple of 512.

@group(0) @binding(0) var<storage, read_write> keys: array<u32>;
@group(0) @binding(1) var<storage, read_write> idx: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<u32>;

var<workgroup> sk: array<u32, 512>;
var<workgroup> si: array<u32, 512>;

fn greater(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia > ib);
}

// Compare-exchange of local thread t for step j of stage k (block starting at entry `base`).
fn local_cx(t: u32, j: u32, k: u32, base: u32, p2: u32) {
    let l = (t / j) * 2u * j + (t % j);
    let r = l + j;
    let up = (((base + l) & (p2 - 1u)) & k) == 0u;
    let ka = sk[l];
    let kb = sk[r];
    let ia = si[l];
    let ib = si[r];
    if (greater(ka, ia, kb, ib) == up) {
        sk[l] = kb;
        sk[r] = ka;
        si[l] = ib;
        si[r] = ia;
    }
}

@compute @workgroup_size(256)
fn bitonic_local(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let total = params[0];
    let p2 = params[1];
    let stage = params[2];
    let base = (wid.x + wid.y * nwg.x) * 512u;
    if (base >= total) {
        return;
    }
    let t = lid.x;
    sk[t] = keys[base + t];
    si[t] = idx[base + t];
    sk[t + 256u] = keys[base + t + 256u];
    si[t + 256u] = idx[base + t + 256u];
    workgroupBarrier();
    if (stage == 0u) {
        let kmax = min(p2, 512u);
        for (var k = 2u; k <= kmax; k = k << 1u) {
            for (var j = k >> 1u; j > 0u; j = j >> 1u) {
                local_cx(t, j, k, base, p2);
                workgroupBarrier();
            }
        }
    } else {
        for (var j = 256u; j > 0u; j = j >> 1u) {
            local_cx(t, j, stage, base, p2);
            workgroupBarrier();
        }
    }
    keys[base + t] = sk[t];
    idx[base + t] = si[t];
    keys[base + t + 256u] = sk[t + 256u];
    idx[base + t + 256u] = si[t + 256u];
}

@compute @workgroup_size(256)
fn bitonic_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let total = params[0];
    let p2 = params[1];
    let k = params[2];
    let j = params[3];
    let stride = nwg.x * nwg.y * 256u;
    for (var t = gid.x + gid.y * nwg.x * 256u; t < total / 2u; t = t + stride) {
        let l = (t / j) * 2u * j + (t % j);
        let r = l + j;
        let up = ((l & (p2 - 1u)) & k) == 0u;
        let ka = keys[l];
        let kb = keys[r];
        let ia = idx[l];
        let ib = idx[r];
        if (greater(ka, ia, kb, ib) == up) {
            keys[l] = kb;
            keys[r] = ka;
            idx[l] = ib;
            idx[r] = ia;
        }
    }
}
