// Reshape gather (Tessera wgpu library kernel): a general row-major reshape of one input chunk
// into an output box. Each element of the input chunk (at `in_off` in a tensor of `in_full`)
// has a global row-major flat index; unravelled over `out_full` it lands at output coordinates,
// and it is written when they fall inside the output box (at `out_off`, extent `out_shape`).
//
// Raw u32 words (`wpe` words per element), as in copy.wgsl. The global flat index is computed
// in u32: the backend checks the tensor has fewer than 2^32 elements.
// params (u32): [n, nd_in, nd_out, wpe, in_shape[nd_in], in_full[nd_in], in_off[nd_in],
//                out_full[nd_out], out_off[nd_out], out_shape[nd_out]]

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = params[0];
    let ni = params[1];
    let no = params[2];
    let wpe = params[3];
    let p_ishape = 4u;
    let p_ifull = 4u + ni;
    let p_ioff = 4u + 2u * ni;
    let p_ofull = 4u + 3u * ni;
    let p_ooff = p_ofull + no;
    let p_oshape = p_ofull + 2u * no;
    let stride = nwg.x * nwg.y * 256u;
    for (var e = gid.x + gid.y * nwg.x * 256u; e < n; e = e + stride) {
        // Coordinates of e in the input chunk, folded into the global flat index.
        var f = 0u;
        var r = e;
        var mul = 1u;
        for (var k = ni; k > 0u; k = k - 1u) {
            let ax = k - 1u;
            let size = params[p_ishape + ax];
            let c = r % size;
            r = r / size;
            f = f + (params[p_ioff + ax] + c) * mul;
            mul = mul * params[p_ifull + ax];
        }
        var local = 0u;
        var ostride = 1u;
        var inside = true;
        for (var k = no; k > 0u; k = k - 1u) {
            let ax = k - 1u;
            let full = params[p_ofull + ax];
            let c = f % full;
            f = f / full;
            let lo = params[p_ooff + ax];
            let ext = params[p_oshape + ax];
            if c < lo || c >= lo + ext {
                inside = false;
                break;
            }
            local = local + (c - lo) * ostride;
            ostride = ostride * ext;
        }
        if inside {
            for (var w = 0u; w < wpe; w = w + 1u) {
                dst[local * wpe + w] = src[e * wpe + w];
            }
        }
    }
}
