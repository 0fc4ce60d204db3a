// What NVRTC provides built in and Tessera's generated CUDA C uses, for compiling that C as
// host C++ (tests/cuda_emu.rs). Arithmetic rounds as on the GPU: the `_rn` intrinsics are plain
// IEEE operations (the file is compiled with -ffp-contract=off, so nothing is fused into FMA),
// conversions truncate or round as their names say and saturate like the hardware's cvt.
#pragma once

#include <math.h>
#include <string.h>

#include <type_traits>

// Qualifiers: a kernel is a plain function run once per emulated thread.
#define __global__
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Shared memory: one copy per kernel function; blocks run one at a time, so every thread of
// the running block sees the same array (and, as on the GPU, its contents at block start are
// whatever was left there).
#define __shared__ static

// Thread coordinates: set by the emulator before it runs (or resumes) each thread. External
// linkage (not `static`) so the compiler reloads them after every opaque call.
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
static const int warpSize = 32;

// The block barrier: switches to the next emulated thread until all have reached it.
__attribute__((noinline)) void __syncthreads();

// Vector types with CUDA's sizes and alignments (a misaligned access is an error on the GPU;
// the emulator is built with -fsanitize=alignment so it is one here too). The make_ functions
// count their calls, so that the test sees which launches took a vector path.
extern unsigned long long tk_emu_vectors_made;
#define TK_VEC2(T, N, A)                                              \
    struct alignas(A) N##2 {                                          \
        T x, y;                                                       \
    };                                                                \
    static __forceinline__ N##2 make_##N##2(T x, T y) {               \
        N##2 r;                                                       \
        ++tk_emu_vectors_made;                                        \
        r.x = x;                                                      \
        r.y = y;                                                      \
        return r;                                                     \
    }
#define TK_VEC4(T, N, A)                                              \
    struct alignas(A) N##4 {                                          \
        T x, y, z, w;                                                 \
    };                                                                \
    static __forceinline__ N##4 make_##N##4(T x, T y, T z, T w) {     \
        N##4 r;                                                       \
        ++tk_emu_vectors_made;                                        \
        r.x = x;                                                      \
        r.y = y;                                                      \
        r.z = z;                                                      \
        r.w = w;                                                      \
        return r;                                                     \
    }
TK_VEC2(float, float, 8)
TK_VEC4(float, float, 16)
TK_VEC2(int, int, 8)
TK_VEC4(int, int, 16)
TK_VEC2(unsigned int, uint, 8)
TK_VEC4(unsigned int, uint, 16)
TK_VEC2(double, double, 16)
TK_VEC4(double, double, 16)
TK_VEC2(long long, longlong, 16)
TK_VEC4(long long, longlong, 16)
TK_VEC2(unsigned long long, ulonglong, 16)
TK_VEC4(unsigned long long, ulonglong, 16)
TK_VEC2(unsigned char, uchar, 2)
TK_VEC4(unsigned char, uchar, 4)
TK_VEC2(signed char, char, 2)
TK_VEC4(signed char, char, 4)
TK_VEC2(unsigned short, ushort, 4)
TK_VEC4(unsigned short, ushort, 8)
TK_VEC2(short, short, 4)
TK_VEC4(short, short, 8)
#undef TK_VEC2
#undef TK_VEC4
static_assert(sizeof(float4) == 16 && alignof(float4) == 16, "float4");
static_assert(sizeof(double2) == 16 && alignof(double2) == 16, "double2");
static_assert(sizeof(longlong2) == 16 && alignof(longlong2) == 16, "longlong2");
static_assert(sizeof(uchar4) == 4 && alignof(uchar4) == 4, "uchar4");

// Cache-hinted loads and stores are plain accesses.
template <class T>
static __forceinline__ T __ldg(const T* p) {
    return *p;
}
template <class T>
static __forceinline__ T __ldcs(const T* p) {
    return *p;
}
template <class T>
static __forceinline__ T __ldcg(const T* p) {
    return *p;
}
template <class T>
static __forceinline__ T __ldlu(const T* p) {
    return *p;
}
template <class T>
static __forceinline__ void __stcs(T* p, T v) {
    *p = v;
}
template <class T>
static __forceinline__ void __stcg(T* p, T v) {
    *p = v;
}
template <class T>
static __forceinline__ void __stwt(T* p, T v) {
    *p = v;
}

// min/max of integers (CUDA's overloads; mixed types convert as C does).
template <class A, class B, class = typename std::enable_if<std::is_integral<A>::value &&
                                                             std::is_integral<B>::value>::type>
static __forceinline__ typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a < (C)b ? (C)a : (C)b;
}
template <class A, class B, class = typename std::enable_if<std::is_integral<A>::value &&
                                                             std::is_integral<B>::value>::type>
static __forceinline__ typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a > (C)b ? (C)a : (C)b;
}

// Integer intrinsics.
static __forceinline__ unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static __forceinline__ int __mulhi(int a, int b) {
    return (int)(((long long)a * b) >> 32);
}
static __forceinline__ unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
static __forceinline__ long long __mul64hi(long long a, long long b) {
    return (long long)(((__int128)a * b) >> 64);
}
static __forceinline__ int __popc(unsigned int x) {
    return __builtin_popcount(x);
}
static __forceinline__ int __popcll(unsigned long long x) {
    return __builtin_popcountll(x);
}
static __forceinline__ int __clz(int x) {
    return x == 0 ? 32 : __builtin_clz((unsigned int)x);
}
static __forceinline__ int __clzll(long long x) {
    return x == 0 ? 64 : __builtin_clzll((unsigned long long)x);
}
static __forceinline__ int __ffs(int x) {
    return __builtin_ffs(x);
}
static __forceinline__ int __ffsll(long long x) {
    return __builtin_ffsll(x);
}
static __forceinline__ unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}

// Round-to-nearest arithmetic: IEEE operations, never contracted (-ffp-contract=off).
static __forceinline__ float __fadd_rn(float a, float b) {
    return a + b;
}
static __forceinline__ float __fsub_rn(float a, float b) {
    return a - b;
}
static __forceinline__ float __fmul_rn(float a, float b) {
    return a * b;
}
static __forceinline__ float __fdiv_rn(float a, float b) {
    return a / b;
}
static __forceinline__ float __frcp_rn(float a) {
    return 1.0f / a;
}
static __forceinline__ float __fsqrt_rn(float a) {
    return sqrtf(a);
}
static __forceinline__ float __fmaf_rn(float a, float b, float c) {
    return fmaf(a, b, c);
}
static __forceinline__ double __dadd_rn(double a, double b) {
    return a + b;
}
static __forceinline__ double __dsub_rn(double a, double b) {
    return a - b;
}
static __forceinline__ double __dmul_rn(double a, double b) {
    return a * b;
}
static __forceinline__ double __ddiv_rn(double a, double b) {
    return a / b;
}
static __forceinline__ double __drcp_rn(double a) {
    return 1.0 / a;
}
static __forceinline__ double __dsqrt_rn(double a) {
    return sqrt(a);
}
static __forceinline__ double __fma_rn(double a, double b, double c) {
    return fma(a, b, c);
}

// Bit casts.
template <class To, class From>
static __forceinline__ To tk_shim_bits(From x) {
    static_assert(sizeof(To) == sizeof(From), "same size");
    To r;
    memcpy(&r, &x, sizeof r);
    return r;
}
static __forceinline__ float __int_as_float(int x) {
    return tk_shim_bits<float>(x);
}
static __forceinline__ float __uint_as_float(unsigned int x) {
    return tk_shim_bits<float>(x);
}
static __forceinline__ int __float_as_int(float x) {
    return tk_shim_bits<int>(x);
}
static __forceinline__ unsigned int __float_as_uint(float x) {
    return tk_shim_bits<unsigned int>(x);
}
static __forceinline__ double __longlong_as_double(long long x) {
    return tk_shim_bits<double>(x);
}
static __forceinline__ long long __double_as_longlong(double x) {
    return tk_shim_bits<long long>(x);
}
static __forceinline__ int __double2hiint(double x) {
    return (int)(__double_as_longlong(x) >> 32);
}
static __forceinline__ int __double2loint(double x) {
    return (int)__double_as_longlong(x);
}
static __forceinline__ double __hiloint2double(int hi, int lo) {
    return __longlong_as_double((long long)(((unsigned long long)(unsigned int)hi << 32) |
                                            (unsigned int)lo));
}

// Float -> integer, truncating: the GPU's cvt.rzi saturates and maps NaN to 0.
template <class I, class F>
static __forceinline__ I tk_shim_f2i_rz(F x, F lo, F hi_excl, I imin, I imax) {
    if (x != x) return 0;
    if (x >= hi_excl) return imax;
    if (x <= lo) return imin;
    return (I)x;
}
static __forceinline__ int __float2int_rz(float x) {
    return tk_shim_f2i_rz<int, float>(x, -2147483648.0f, 2147483648.0f, (-2147483647 - 1),
                                      2147483647);
}
static __forceinline__ unsigned int __float2uint_rz(float x) {
    return tk_shim_f2i_rz<unsigned int, float>(x, 0.0f, 4294967296.0f, 0u, 4294967295u);
}
static __forceinline__ long long __float2ll_rz(float x) {
    return tk_shim_f2i_rz<long long, float>(x, -9223372036854775808.0f, 9223372036854775808.0f,
                                            (-9223372036854775807ll - 1), 9223372036854775807ll);
}
static __forceinline__ unsigned long long __float2ull_rz(float x) {
    return tk_shim_f2i_rz<unsigned long long, float>(x, 0.0f, 18446744073709551616.0f, 0ull,
                                                     18446744073709551615ull);
}
static __forceinline__ int __double2int_rz(double x) {
    return tk_shim_f2i_rz<int, double>(x, -2147483648.0, 2147483648.0, (-2147483647 - 1),
                                       2147483647);
}
static __forceinline__ unsigned int __double2uint_rz(double x) {
    return tk_shim_f2i_rz<unsigned int, double>(x, 0.0, 4294967296.0, 0u, 4294967295u);
}
static __forceinline__ long long __double2ll_rz(double x) {
    return tk_shim_f2i_rz<long long, double>(x, -9223372036854775808.0, 9223372036854775808.0,
                                             (-9223372036854775807ll - 1), 9223372036854775807ll);
}
static __forceinline__ unsigned long long __double2ull_rz(double x) {
    return tk_shim_f2i_rz<unsigned long long, double>(x, 0.0, 18446744073709551616.0, 0ull,
                                                      18446744073709551615ull);
}
// Integer -> float, round to nearest (the host's default rounding mode).
static __forceinline__ float __int2float_rn(int x) {
    return (float)x;
}
static __forceinline__ float __uint2float_rn(unsigned int x) {
    return (float)x;
}
static __forceinline__ float __ll2float_rn(long long x) {
    return (float)x;
}
static __forceinline__ float __ull2float_rn(unsigned long long x) {
    return (float)x;
}
static __forceinline__ double __ll2double_rn(long long x) {
    return (double)x;
}
static __forceinline__ double __ull2double_rn(unsigned long long x) {
    return (double)x;
}
static __forceinline__ float __double2float_rn(double x) {
    return (float)x;
}
