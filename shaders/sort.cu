// Stable lane sort on the GPU: block `b` (blockIdx.x + blockIdx.y * gridDim.x) sorts lane `b` of
// `len` elements (contiguous, row-major lanes) in shared memory with a bitonic network over
// (key, position) pairs, so equal keys keep their input order. Keys are order-preserving
// unsigned integers: numpy's order for floats (NaN after every number, all NaNs equal, -0.0 ==
// 0.0), offset two's complement for integers; `desc` complements the key, which reverses the
// value order while positions still break ties ascending (the Array API's stable descending
// sort). Outputs: the positions (int64) and, when `vals` is not null, the values read back from
// the input at those positions (bits kept: NaN payloads, -0.0). Lanes longer than
// TK_SORT_MAX are the host's (the sample sort splits a long 1-D sort into buckets first).
//
// Launch: one block of 256 threads per lane; grid (x, y) with x * y >= lanes.

#define TK_SORT_MAX 2048

__device__ __forceinline__ unsigned int tk_sort_key(float v, int desc) {
    unsigned int u;
    if (v != v) {
        u = 0xFFFFFFFFu;
    } else {
        u = v == 0.0f ? 0u : __float_as_uint(v);
        u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    }
    return desc ? ~u : u;
}

__device__ __forceinline__ unsigned long long tk_sort_key(double v, int desc) {
    unsigned long long u;
    if (v != v) {
        u = 0xFFFFFFFFFFFFFFFFull;
    } else {
        u = v == 0.0 ? 0ull : (unsigned long long)__double_as_longlong(v);
        u = (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
    }
    return desc ? ~u : u;
}

__device__ __forceinline__ unsigned int tk_sort_key(int v, int desc) {
    const unsigned int u = (unsigned int)v ^ 0x80000000u;
    return desc ? ~u : u;
}

__device__ __forceinline__ unsigned long long tk_sort_key(long long v, int desc) {
    const unsigned long long u = (unsigned long long)v ^ 0x8000000000000000ull;
    return desc ? ~u : u;
}

template <typename T, typename K>
__device__ __forceinline__ void tk_lane_sort(const T* src, T* vals, long long* idx, long long len,
                                             int desc, K* keys, int* pos) {
    const long long lane = (long long)blockIdx.x + (long long)blockIdx.y * gridDim.x;
    const T* in = src + lane * len;
    int n = 1;
    while (n < len) n <<= 1;
    // Padding sorts after every element (the largest key, later positions).
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        keys[i] = i < len ? tk_sort_key(in[i], desc) : (K)~(K)0;
        pos[i] = i;
    }
    __syncthreads();
    for (int k = 2; k <= n; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n; i += blockDim.x) {
                const int p = i ^ j;
                if (p > i) {
                    const K ka = keys[i], kb = keys[p];
                    const int pa = pos[i], pb = pos[p];
                    const bool a_after = ka > kb || (ka == kb && pa > pb);
                    // Ascending runs where bit k of i is clear, descending where it is set.
                    if (a_after == ((i & k) == 0)) {
                        keys[i] = kb;
                        keys[p] = ka;
                        pos[i] = pb;
                        pos[p] = pa;
                    }
                }
            }
            __syncthreads();
        }
    }
    for (int i = threadIdx.x; i < len; i += blockDim.x) {
        idx[lane * len + i] = pos[i];
        if (vals) vals[lane * len + i] = in[pos[i]];
    }
}

#define TK_LANE_SORT(NAME, T, K)                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                        \
        tessera_lane_sort_##NAME(const T* src, T* vals, long long* idx, long long len,       \
                                 long long desc) {                                           \
        __shared__ K keys[TK_SORT_MAX];                                                      \
        __shared__ int pos[TK_SORT_MAX];                                                     \
        tk_lane_sort<T, K>(src, vals, idx, len, (int)desc, keys, pos);                       \
    }

TK_LANE_SORT(f32, float, unsigned int)
TK_LANE_SORT(f64, double, unsigned long long)
TK_LANE_SORT(i32, int, unsigned int)
TK_LANE_SORT(i64, long long, unsigned long long)
