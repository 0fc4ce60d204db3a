// Tessera CUDA library kernels: data movement that is not a generated KernelIr kernel.
// Compiled once per device by NVRTC (no includes; NVRTC built-ins only). Elements move as raw
// 1, 4 or 8-byte words, so every dtype moves bit-exactly (bool is one byte in the CUDA ABI).
// Launch: blockDim 256 (transpose: 32 x 8), grid-stride loops, so any grid is correct.
//
// tessera_copy_<w>_<i>: a strided copy (transpose, broadcast, strided slice, one piece of an
//   assemble/concatenate). Element e of the index space `shape` (row-major) with coordinates
//   c reads src[src_base + sum c[d] * src_stride[d]] (strides may be negative) and writes
//   dst[dst_base + sum c[d] * dst_stride[d]]. <w>: element bytes (1, 4, 8); <i>: index width
//   (32 when every offset fits in int32, else 64).
// tessera_transpose2d_<w>: dst (cols x rows) = src (rows x cols)^T through a 32 x 33 shared
//   tile (coalesced reads and writes); grid (ceil(cols/32), ceil(rows/32)).
// tessera_reshape_gather_<w>: a general row-major reshape of one input chunk into an output box
//   (see reshape_gather.wgsl); 64-bit global indices.

#define TESSERA_MAXD 8

struct CopyArgs {
    long long n;
    long long src_base;
    long long dst_base;
    long long shape[TESSERA_MAXD];
    long long src_stride[TESSERA_MAXD];
    long long dst_stride[TESSERA_MAXD];
    int nd;
};

struct GatherArgs {
    long long n;
    long long in_shape[TESSERA_MAXD];
    long long in_full[TESSERA_MAXD];
    long long in_off[TESSERA_MAXD];
    long long out_full[TESSERA_MAXD];
    long long out_off[TESSERA_MAXD];
    long long out_shape[TESSERA_MAXD];
    int nd_in;
    int nd_out;
};

template <typename T, typename I>
__device__ void copy_impl(const T* __restrict__ src, T* __restrict__ dst, const CopyArgs& a) {
    const I n = (I)a.n;
    const I stride = (I)gridDim.x * (I)blockDim.x;
    for (I e = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; e < n; e += stride) {
        I r = e;
        I s = (I)a.src_base;
        I d = (I)a.dst_base;
        for (int ax = a.nd - 1; ax >= 0; --ax) {
            const I size = (I)a.shape[ax];
            const I c = r % size;
            r /= size;
            s += c * (I)a.src_stride[ax];
            d += c * (I)a.dst_stride[ax];
        }
        dst[d] = src[s];
    }
}

template <typename T>
__device__ void transpose_impl(const T* __restrict__ src, T* __restrict__ dst, long long rows,
                               long long cols) {
    __shared__ T tile[32][33];
    const long long bx = (long long)blockIdx.x * 32;
    const long long by = (long long)blockIdx.y * 32;
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    for (int j = 0; j < 32; j += 8) {
        const long long x = bx + tx;
        const long long y = by + ty + j;
        if (x < cols && y < rows) {
            tile[ty + j][tx] = src[y * cols + x];
        }
    }
    __syncthreads();
    for (int j = 0; j < 32; j += 8) {
        const long long x = by + tx;
        const long long y = bx + ty + j;
        if (x < rows && y < cols) {
            dst[y * rows + x] = tile[tx][ty + j];
        }
    }
}

template <typename T>
__device__ void gather_impl(const T* __restrict__ src, T* __restrict__ dst, const GatherArgs& a) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < a.n; e += stride) {
        // Coordinates of e in the input chunk, folded into the global flat index.
        unsigned long long f = 0;
        unsigned long long r = e;
        unsigned long long mul = 1;
        for (int ax = a.nd_in - 1; ax >= 0; --ax) {
            const unsigned long long size = a.in_shape[ax];
            const unsigned long long c = r % size;
            r /= size;
            f += (a.in_off[ax] + c) * mul;
            mul *= a.in_full[ax];
        }
        unsigned long long local = 0;
        unsigned long long ostride = 1;
        bool inside = true;
        for (int ax = a.nd_out - 1; ax >= 0; --ax) {
            const unsigned long long full = a.out_full[ax];
            const unsigned long long c = f % full;
            f /= full;
            const unsigned long long lo = a.out_off[ax];
            const unsigned long long ext = a.out_shape[ax];
            if (c < lo || c >= lo + ext) {
                inside = false;
                break;
            }
            local += (c - lo) * ostride;
            ostride *= ext;
        }
        if (inside) {
            dst[local] = src[e];
        }
    }
}

#define TESSERA_COPY(W, T)                                                                     \
    extern "C" __global__ void tessera_copy_##W##_32(const T* src, T* dst, CopyArgs a) {       \
        copy_impl<T, int>(src, dst, a);                                                        \
    }                                                                                          \
    extern "C" __global__ void tessera_copy_##W##_64(const T* src, T* dst, CopyArgs a) {       \
        copy_impl<T, long long>(src, dst, a);                                                  \
    }                                                                                          \
    extern "C" __global__ void tessera_transpose2d_##W(const T* src, T* dst, long long rows,   \
                                                       long long cols) {                       \
        transpose_impl<T>(src, dst, rows, cols);                                               \
    }                                                                                          \
    extern "C" __global__ void tessera_reshape_gather_##W(const T* src, T* dst, GatherArgs a) { \
        gather_impl<T>(src, dst, a);                                                           \
    }

TESSERA_COPY(1, unsigned char)
TESSERA_COPY(4, unsigned int)
TESSERA_COPY(8, unsigned long long)
