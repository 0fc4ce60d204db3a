// Strided copy (Tessera wgpu library kernel): every movement op that is a pure re-indexing
// (transpose, broadcast, strided slice, one piece of an assemble/concatenate).
//
// Buffers are raw u32 words, so every dtype moves bit-exactly: bool as one u32 word, 32-bit
// types as one word, int64/float64 as two words (`wpe` = words per element).
// params (u32): [n, ndim, wpe, src_base (i32 bits), dst_base,
//                shape[0..ndim], src_stride[0..ndim] (i32 bits), dst_stride[0..ndim]]
// Element e of the index space `shape` (row-major) has coordinates c; it reads element
// src_base + sum c[d] * src_stride[d] (strides may be negative: reversed slices) and writes
// element dst_base + sum c[d] * dst_stride[d]. Grid-stride loop over a 2-D dispatch of 256-wide
// workgroups, so any dispatch size is correct.

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params[0];
    let nd = params[1];
    let wpe = params[2];
    let sbase = bitcast<i32>(params[3]);
    let dbase = params[4];
    let stride = nwg.x * nwg.y * 256u;
    for (var e = gid.x + gid.y * nwg.x * 256u; e < n; e = e + stride) {
        var r = e;
        var s = sbase;
        var d = dbase;
        for (var k = nd; k > 0u; k = k - 1u) {
            let ax = k - 1u;
            let size = params[5u + ax];
            let c = r % size;
            r = r / size;
            s = s + i32(c) * bitcast<i32>(params[5u + nd + ax]);
            d = d + c * params[5u + 2u * nd + ax];
        }
        let so = u32(s) * wpe;
        let dof = d * wpe;
        for (var w = 0u; w < wpe; w = w + 1u) {
            dst[dof + w] = src[so + w];
        }
    }
}
