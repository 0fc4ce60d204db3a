// Tiled batched GEMM (Tessera wgpu library kernel): c = a @ b (+ acc) per batch matrix.
//
// The backend prepends a prelude defining the element type and arithmetic:
//   alias T = f32 | f64 | i32 | u32 (bool as 0/1 words);
//   const ZERO: T;  fn madd(c: T, a: T, b: T) -> T;  fn comb(acc: T, sum: T) -> T;
// (f64 needs SHADER_F64; i32 wraps like the CPU; bool is `c | (a & b)`).
//
// A 16x16 workgroup computes a 64x64 tile of c, each thread a 4x4 block; the K dimension is
// walked 16 at a time through workgroup memory (As: 16x64 slice of a, transposed, Bs: 16x64
// slice of b). Workgroup (x, y, z) covers columns 64x.., rows 64y.., batch matrix z + z_base.
// params (u32): [m, n, k, accumulate, z_base, a_off[0], b_off[0], a_off[1], b_off[1], ...]
// (element offsets of each batch matrix of a and b; c and acc are contiguous [batch, m, n]).

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read> acc: array<T>;
@group(0) @binding(3) var<storage, read_write> c: array<T>;
@group(0) @binding(4) var<storage, read> params: array<u32>;

var<workgroup> As: array<T, 1024>;
var<workgroup> Bs: array<T, 1024>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = params[0];
    let n = params[1];
    let k = params[2];
    let accumulate = params[3];
    let z = wg.z + params[4];
    let aoff = params[5u + 2u * z];
    let boff = params[6u + 2u * z];
    let coff = z * m * n;
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    let tid = lid.y * 16u + lid.x;
    var sum: array<T, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        sum[i] = ZERO;
    }
    for (var t = 0u; t < k; t = t + 16u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = tid + i * 256u;
            // a tile: 64 rows x 16 columns, stored transposed (As[col * 64 + row]).
            let ar = e / 16u;
            let ac = e % 16u;
            var av = ZERO;
            if row0 + ar < m && t + ac < k {
                av = a[aoff + (row0 + ar) * k + t + ac];
            }
            As[ac * 64u + ar] = av;
            // b tile: 16 rows x 64 columns.
            let br = e / 64u;
            let bc = e % 64u;
            var bv = ZERO;
            if t + br < k && col0 + bc < n {
                bv = b[boff + (t + br) * n + col0 + bc];
            }
            Bs[br * 64u + bc] = bv;
        }
        workgroupBarrier();
        for (var p = 0u; p < 16u; p = p + 1u) {
            var ar: array<T, 4>;
            var br: array<T, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                ar[i] = As[p * 64u + lid.y * 4u + i];
                br[i] = Bs[p * 64u + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    sum[i * 4u + j] = madd(sum[i * 4u + j], ar[i], br[j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = col0 + lid.x * 4u + j;
            if r < m && col < n {
                let o = coff + r * n + col;
                var v = sum[i * 4u + j];
                if accumulate != 0u {
                    v = comb(acc[o], v);
                }
                c[o] = v;
            }
        }
    }
}
