#!/usr/bin/env python3
"""Reference baselines for Tessera: the Mars workloads in NumPy, Dask and (when it works) CuPy.

Workloads (the size argument is N):
  add_mul      (x + 1) * 2 over N f32, a fresh output array each run
  add_mul_sum  ((x + 1) * 2).sum() over N f32
  pi           4 * ((x**2 + y**2) < 1).sum() / N, x and y N uniform f32 randoms, generated
               inside the timed region in chunks of --pi-chunk points (memory stays bounded)
  std_expr     (a.dot(a.T) - a).std() with a an N x N f32 matrix
  sgemm        N x N f32 matrix product a @ b
  dgemm        the same product in f64
  knn          brute-force 10 nearest neighbours of N queries among N data rows, 64 f32 each
               (patterns ((31i + 17j) % 97) / 97 and ((29i + 13j + 5) % 97) / 97, as `tessera
               bench` builds them); squared distances |y|^2 - 2 y.x + |x|^2, argpartition; the
               value is the sum of every query's 10 smallest squared distances
  sort         the N f32 of the sort pattern q / 2^31, q = ((i^2 mod p) 48271 + 16807 i + 12345)
               mod p, p = 2^31 - 1 (as `tessera bench` builds it), sorted ascending:
               np.sort(kind='stable'); the value is an exact digest of the order (sort_digest)
  argsort      the same input, np.argsort(kind='stable'): positions, digest as for sort
  topk         the 10 largest of the same N f32 and their positions: np.argpartition, then the k
               sorted by value; dask: da.argtopk. The value is an exact digest of the values and
               positions (topk_digest: ties at the k-th value resolved to the lowest positions,
               untimed, as Tessera orders them). dask has no sort: sort/argsort absent there
  svd          U, S, Vt = svd(a) of an N x 32 f32 matrix uniform in [0, 1) (full_matrices=False),
               then the relative reconstruction error |U diag(S) Vt - a|_F / |a|_F (the value)
  tsqr         the singular values alone of the same N x 32 matrix (values-only gesdd; dask:
               tsqr(compute_svd=True)); the value is the largest
  limits       machine limits: copy bandwidth over N f32 (bytes read + written / time); on a GPU
               also pinned and pageable host<->device bandwidth and cuBLAS SGEMM GFLOP/s (TF32 off)

Backends:
  numpy        the reference semantics, on the host CPU
  cupy         the same NumPy expressions on the GPU (one kernel per operator, temporaries)
  cupy-fused   one kernel per expression made with CuPy's own generators (ElementwiseKernel /
               ReductionKernel), for add_mul, add_mul_sum and pi: the fusion level Mars gets from
               CuPy
  cupy-raw     hand-written CUDA (cupy.RawModule: grid-stride loops, float4 loads, one atomic per
               block) for the same workloads, plus pi:philox, which draws its randoms inside the
               kernel (counter-based Philox4x32-10) and materializes nothing: the roofline a
               fusing runtime such as Tessera should reach
  dask         dask.array, the chunked out-of-core library users would pick instead of Tessera,
               threaded scheduler (compute(scheduler="threads"), one thread per CPU). Chunks like
               Tessera's: vectors in chunks of --dask-chunk elements (default 2^22 f32 = 16 MiB,
               Tessera's default chunk budget and the pi chunk of `tessera bench`), matrices in
               --dask-block square blocks (default 1024, as `tessera bench` cuts them). Inputs
               are the same host arrays as numpy's, wrapped with da.from_array (not copied);
               pi draws with da.random.default_rng(seed) inside the timed region. add_mul
               and sgemm compute to one numpy array (the chunks are assembled: one more copy).
               Skipped with the reason printed when dask does not import.

Each case is warmed up once, then timed --repeat times (GPU: device synchronize before and after,
wall clock); the median is reported. Reductions report their value so that callers can check the
backends agree; add_mul and sgemm report a float64 checksum of the last output (untimed). Every
value is checked against numpy's at the same size (or the known result where numpy did not run):
relative 1e-3, and for pi (different random streams) 6 sigma of the difference of two estimates;
the record's "check" field and the note say the verdict.
Inputs of add_mul/add_mul_sum are the exact pattern x[i] = (i % 1024) / 1024, so the exact result
is known ("expected"); matrices come from a seeded NumPy generator, so NumPy and CuPy at the same
size see the same input.

Example:
  python3 benches/harness.py --workloads add_mul,pi --size add_mul=2e8 --size pi=1e8 \\
      --backends numpy,cupy --repeat 5 --json out.json
Sizes: --size WORKLOAD=N[,N...] for every backend, --size BACKEND:WORKLOAD=N[,N...] for one
(cupy-fused and cupy-raw fall back to the cupy: sizes). N accepts 1e9-style numbers.
"""

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Optional

import numpy as np

WORKLOADS = ["limits", "add_mul", "add_mul_sum", "pi", "std_expr", "sgemm", "dgemm", "svd", "tsqr",
             "knn",
             "sort", "argsort", "topk"]
BACKENDS = ["numpy", "cupy", "cupy-fused", "cupy-raw", "dask"]
FUSED_WORKLOADS = {"add_mul", "add_mul_sum", "pi"}
DEFAULT_SIZES = {
    "limits": [250_000_000],  # 1 GB of f32 copied
    "add_mul": [100_000_000],
    "add_mul_sum": [100_000_000],
    "pi": [100_000_000],
    "std_expr": [2000],
    "sgemm": [2000],
    "dgemm": [2000],
    "svd": [1_000_000],
    "tsqr": [1_000_000],
    "knn": [20_000],
    "sort": [10_000_000],
    "argsort": [10_000_000],
    "topk": [100_000_000],
}
SVD_COLS = 32
PATTERN_PERIOD = 1024
GB = 1e9


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

class Backend:
    """An array module plus how to synchronize it, move host data to it and free its pools."""

    name = "numpy"
    fused = False  # cupy-fused: CuPy-generated single kernels
    raw = False    # cupy-raw: hand-written CUDA kernels
    is_gpu = False

    def __init__(self):
        self.xp = np
        self.device = cpu_description()

    def sync(self):
        pass

    def asarray(self, host_array):
        return host_array

    def free(self):
        gc.collect()


class DaskBackend(Backend):
    """dask.array on the threaded scheduler; inputs are numpy arrays cut into Tessera-like chunks."""

    name = "dask"

    def __init__(self, da, dask_version, args):
        self.xp = np  # host inputs are built with numpy, then wrapped by self.wrap
        self.da = da
        self.chunk = args.dask_chunk
        self.block = args.dask_block
        self.device = (f"{cpu_description()}, dask {dask_version} (threads scheduler, "
                       f"{os.cpu_count()} workers)")

    def wrap(self, host_array):
        chunks = self.chunk if host_array.ndim == 1 else self.block
        return self.da.from_array(host_array, chunks=chunks)

    @staticmethod
    def compute(lazy):
        return lazy.compute(scheduler="threads")


def load_dask():
    """Returns (dask.array module, version, None) or (None, None, reason). Never raises."""
    try:
        import dask
        import dask.array as da
        return da, dask.__version__, None
    except Exception as e:  # ImportError (not installed) or a broken install
        return None, None, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


class CupyBackend(Backend):
    def __init__(self, cp, name):
        self.xp = cp
        self.cp = cp
        self.name = name
        self.fused = name == "cupy-fused"
        self.raw = name == "cupy-raw"
        self.is_gpu = True
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        self.grid = props["multiProcessorCount"] * 2048 // RAW_BLOCK  # one full wave
        gpu = props["name"]
        gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
        rt = cp.cuda.runtime.runtimeGetVersion()
        self.device = (f"{gpu}, {props['totalGlobalMem'] / 2**30:.0f} GiB, "
                       f"CUDA runtime {rt // 1000}.{rt % 1000 // 10}, cupy {cp.__version__}")
        if self.fused:
            self.k_add_mul = cp.ElementwiseKernel(
                "float32 x", "float32 y", "y = (x + 1.0f) * 2.0f", "tessera_ref_add_mul")
            self.k_add_mul_sum = cp.ReductionKernel(
                "float32 x", "float64 s", "(double)((x + 1.0f) * 2.0f)", "a + b", "s = a", "0",
                "tessera_ref_add_mul_sum")
            self.k_pi_count = cp.ReductionKernel(
                "float32 x, float32 y", "int64 c", "(x * x + y * y < 1.0f) ? 1 : 0", "a + b",
                "c = a", "0", "tessera_ref_pi_count")
        if self.raw:
            module = cp.RawModule(code=RAW_CUDA)
            self.raw_kernels = {k: module.get_function(k) for k in
                                ("add_mul", "add_mul_sum", "pi_count", "pi_philox")}

    def launch(self, kernel, *args):
        """Launches a RAW_CUDA kernel over one full wave of blocks (arrays: 16-byte aligned)."""
        self.raw_kernels[kernel]((self.grid,), (RAW_BLOCK,), args)

    def sync(self):
        self.cp.cuda.Device().synchronize()

    def asarray(self, host_array):
        return self.cp.asarray(host_array)

    def free(self):
        gc.collect()
        self.sync()
        self.cp.get_default_memory_pool().free_all_blocks()
        self.cp.get_default_pinned_memory_pool().free_all_blocks()


RAW_BLOCK = 256
RAW_CUDA = r"""
// Hand-written reference kernels: grid-stride loops over float4, block reduction, one atomic per
// block. Inputs come from the CuPy memory pool, so they are 256-byte aligned.
template <typename T> __device__ T block_sum(T v) {
    __shared__ T warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = (threadIdx.x < (blockDim.x >> 5)) ? warp_sums[lane] : T(0);
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

#define GRID_STRIDE_LOOP(i, start, end) \
    for (long long i = (start) + blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (end); \
         i += (long long)gridDim.x * blockDim.x)

__device__ __forceinline__ float add_mul(float v) { return (v + 1.0f) * 2.0f; }

extern "C" __global__ void add_mul(const float* __restrict__ x, float* __restrict__ y,
                                   long long n) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* y4 = reinterpret_cast<float4*>(y);
    GRID_STRIDE_LOOP(i, 0, n / 4) {
        float4 v = x4[i];
        y4[i] = make_float4(add_mul(v.x), add_mul(v.y), add_mul(v.z), add_mul(v.w));
    }
    GRID_STRIDE_LOOP(i, n / 4 * 4, n) y[i] = add_mul(x[i]);
}

extern "C" __global__ void add_mul_sum(const float* __restrict__ x, long long n, double* out) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    double s = 0.0;
    GRID_STRIDE_LOOP(i, 0, n / 4) {
        float4 v = x4[i];
        s += (double)(add_mul(v.x) + add_mul(v.y)) + (double)(add_mul(v.z) + add_mul(v.w));
    }
    GRID_STRIDE_LOOP(i, n / 4 * 4, n) s += add_mul(x[i]);
    s = block_sum(s);
    if (threadIdx.x == 0) atomicAdd(out, s);
}

__device__ __forceinline__ unsigned int inside(float x, float y) { return x * x + y * y < 1.0f; }

extern "C" __global__ void pi_count(const float* __restrict__ x, const float* __restrict__ y,
                                    long long n, unsigned long long* out) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const float4* y4 = reinterpret_cast<const float4*>(y);
    unsigned long long c = 0;
    GRID_STRIDE_LOOP(i, 0, n / 4) {
        float4 a = x4[i], b = y4[i];
        c += inside(a.x, b.x) + inside(a.y, b.y) + inside(a.z, b.z) + inside(a.w, b.w);
    }
    GRID_STRIDE_LOOP(i, n / 4 * 4, n) c += inside(x[i], y[i]);
    c = block_sum(c);
    if (threadIdx.x == 0) atomicAdd(out, c);
}

// Philox4x32-10 (Salmon et al., SC'11): counter = pair index, key = seed. One call, 2 points.
__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
    for (int r = 0; r < 10; ++r) {
        const unsigned int hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        const unsigned int hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += 0x9E3779B9u;
        k.y += 0xBB67AE85u;
    }
    return c;
}

__device__ __forceinline__ float uniform24(unsigned int u) { return (u >> 8) * 5.9604645e-08f; }

extern "C" __global__ void pi_philox(long long n, unsigned int seed, unsigned long long* out) {
    unsigned long long c = 0;
    GRID_STRIDE_LOOP(p, 0, (n + 1) / 2) {
        const uint4 r = philox4x32_10(make_uint4((unsigned int)p, (unsigned int)(p >> 32), 0u, 0u),
                                      make_uint2(seed, 0x7E55E8Au));
        c += inside(uniform24(r.x), uniform24(r.y));
        if (2 * p + 1 < n) c += inside(uniform24(r.z), uniform24(r.w));
    }
    c = block_sum(c);
    if (threadIdx.x == 0) atomicAdd(out, c);
}
"""


def cpu_description():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:
        pass
    return f"{model}, {os.cpu_count()} CPUs, numpy {np.__version__} ({blas})"


def load_cupy(allow_tf32):
    """Returns (cupy module, None) or (None, reason). Never raises."""
    # TF32 must be off for honest f32 GEMM numbers; both variables are read at import/handle
    # creation, so they are set before cupy is imported.
    os.environ["CUPY_TF32"] = "1" if allow_tf32 else "0"
    if not allow_tf32:
        os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
    try:
        import cupy as cp
        if cp.cuda.runtime.getDeviceCount() < 1:
            return None, "no CUDA device"
        probe = cp.arange(16, dtype=cp.float32)
        if float((probe * 2).sum()) != 240.0:  # exercises NVRTC compilation and a reduction
            return None, "probe kernel gave a wrong result"
        return cp, None
    except Exception as e:  # ImportError, CUDARuntimeError, CompileException, ...
        return None, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


# --------------------------------------------------------------------------------------------
# Workloads: each returns a list of (record name, Case); the runner times Case.run
# --------------------------------------------------------------------------------------------

@dataclass
class Case:
    run: Callable[[], object]                         # the timed work
    value: Optional[Callable[[object], float]] = None  # untimed: value from the last result
    nbytes: Optional[float] = None                    # compulsory bytes per run -> GB/s
    flops: Optional[float] = None                     # flops per run -> GFLOP/s
    items: Optional[float] = None                     # items per run -> G<items>/s in the note
    items_name: str = "items"
    expected: Optional[float] = None
    size: Optional[int] = None                        # record size when not the workload's N
    note: str = ""


def pattern(xp, n):
    """x[i] = (i % 1024) / 1024 as f32: exact in f32, so (x + 1) * 2 and its sum are exact."""
    base = xp.arange(PATTERN_PERIOD, dtype=xp.float32) / PATTERN_PERIOD
    return xp.tile(base, -(-n // PATTERN_PERIOD))[:n]


def pattern_add_mul_sum(n):
    """Exact sum over i < n of 2 * (1 + (i % 1024) / 1024) = sum of (2 + k / 512)."""
    full, rem = divmod(n, PATTERN_PERIOD)
    per_period = Fraction(2 * PATTERN_PERIOD) + Fraction(PATTERN_PERIOD * (PATTERN_PERIOD - 1), 2 * 512)
    tail = Fraction(2 * rem) + Fraction(rem * (rem - 1), 2 * 512)
    return float(full * per_period + tail)


def checksum(xp):
    return lambda out: float(out.sum(dtype=xp.float64))


def wl_add_mul(be, n, args):
    xp = be.xp
    x = pattern(xp, n)
    if be.name == "dask":
        dx = be.wrap(x)
        run = lambda: be.compute((dx + 1) * 2)
        how = f"dask, chunks of {be.chunk:,}, one fused task per chunk, result assembled"
    elif be.raw:
        def run():
            y = xp.empty_like(x)
            be.launch("add_mul", x, y, np.int64(n))
            return y
        how = "hand-written float4 kernel"
    elif be.fused:
        run = lambda: be.k_add_mul(x)
        how = "one ElementwiseKernel"
    else:
        run = lambda: (x + 1) * 2
        how = "unfused: temporary x+1, 4 passes over memory"
    return [("add_mul", Case(
        run=run, value=checksum(xp), nbytes=8.0 * n, expected=pattern_add_mul_sum(n),
        note=f"fresh output each run; {how}; GB/s counts 8N bytes; value = f64 checksum"))]


def wl_add_mul_sum(be, n, args):
    xp = be.xp
    x = pattern(xp, n)
    if be.name == "dask":
        dx = be.wrap(x)
        run = lambda: float(be.compute(((dx + 1) * 2).sum()))
        how = f"dask, chunks of {be.chunk:,}, f32 sums per chunk"
    elif be.raw:
        def run():
            out = xp.zeros(1, dtype=xp.float64)
            be.launch("add_mul_sum", x, np.int64(n), out)
            return float(out[0])
        how = "hand-written float4 reduction, f64 accumulator"
    elif be.fused:
        run = lambda: float(be.k_add_mul_sum(x))
        how = "one ReductionKernel, f64 accumulator"
    else:
        run = lambda: float(((x + 1) * 2).sum())
        how = "unfused, f32 sum"
    return [("add_mul_sum", Case(
        run=run, nbytes=4.0 * n, expected=pattern_add_mul_sum(n),
        note=f"{how}; GB/s counts 4N bytes"))]


def wl_pi(be, n, args):
    xp = be.xp
    chunk = min(n, args.pi_chunk)
    sigma = 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / n)
    if be.name == "dask":
        da = be.da
        dchunk = min(n, be.chunk)

        def run_dask():
            rng = da.random.default_rng(args.seed)
            x = rng.random(n, dtype=np.float32, chunks=dchunk)
            y = rng.random(n, dtype=np.float32, chunks=dchunk)
            return 4.0 * int(be.compute(((x ** 2 + y ** 2) < 1).sum())) / n
        return [("pi", Case(
            run=run_dask, items=float(n), items_name="points", expected=math.pi,
            note=(f"dask: da.random.default_rng({args.seed}) draws x and y in chunks of "
                  f"{dchunk:,} inside the timed region; expected pi +- {sigma:.1e} (1 sigma)")))]
    if be.is_gpu:
        rs = be.cp.random.RandomState(args.seed)
        draw = lambda m: rs.random_sample(m, dtype=xp.float32)  # cuRAND, default generator
    else:
        rng = np.random.default_rng(args.seed)
        draw = lambda m: rng.random(m, dtype=np.float32)

    if be.raw:
        def count(x, y):
            out = xp.zeros(1, dtype=xp.uint64)
            be.launch("pi_count", x, y, np.int64(x.size), out)
            return out[0]
        how = "hand-written float4 count kernel"
    elif be.fused:
        count = lambda x, y: be.k_pi_count(x, y)
        how = "one ReductionKernel (two inputs) for the count"
    else:
        count = lambda x, y: ((x ** 2 + y ** 2) < 1).sum()
        how = "unfused"

    def run():
        total = 0  # on the GPU this stays a device scalar until the end: no sync per chunk
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            total = total + count(draw(m), draw(m))
        return 4.0 * int(total) / n

    cases = [("pi", Case(
        run=run, items=float(n), items_name="points", expected=math.pi,
        note=(f"{how}; includes generating 2N f32 uniforms, in {-(-n // chunk)} chunk(s) of "
              f"{chunk:,} points ({8 * chunk / GB:.2f} GB of x,y per chunk); "
              f"expected pi +- {sigma:.1e} (1 sigma)")))]
    if be.raw:
        def run_philox():
            out = xp.zeros(1, dtype=xp.uint64)
            be.launch("pi_philox", np.int64(n), np.uint32(args.seed), out)
            return 4.0 * int(out[0]) / n
        cases.append(("pi:philox", Case(
            run=run_philox, items=float(n), items_name="points", expected=math.pi,
            note=("one kernel, randoms drawn in-kernel (Philox4x32-10, 24-bit uniforms), "
                  f"nothing materialized; expected pi +- {sigma:.1e} (1 sigma)"))))
    return cases


MATRIX = {"kind": "random"}


def host_matrix(n, seed, k=0):
    """The n x n f32 input: random (seeded) or, with --matrix pattern, the exact pattern
    a[i, j] = ((31 i + 17 j + 7 k) % 97) / 97 that Tessera's own bench builds, so that both sides
    compute on the same numbers."""
    if MATRIX["kind"] == "pattern":
        return pattern_rect(n, n, 31, 17, 7 * k)
    return np.random.default_rng(seed + k).random((n, n), dtype=np.float32)


def wl_std_expr(be, n, args):
    a = be.asarray(host_matrix(n, args.seed))
    kind = f"U[0,1) f32 (seed {args.seed})" if MATRIX["kind"] == "random" else "pattern f32"
    note = (f"a = {kind}, {4 * n * n / GB:.2f} GB per n x n copy; "
            "GFLOP/s counts 2N^3")
    if be.name == "dask":
        da_ = be.wrap(a)
        return [("std_expr", Case(run=lambda: float(be.compute((da_.dot(da_.T) - da_).std())),
                                  flops=2.0 * n ** 3,
                                  note=note + f"; dask blocks {be.block}x{be.block}"))]
    if not be.is_gpu:
        note += " (numpy's a.dot(a.T) uses BLAS SYRK, symmetric result: about half the flops)"
    return [("std_expr", Case(run=lambda: float((a.dot(a.T) - a).std()),
                              flops=2.0 * n ** 3, note=note))]


def wl_dgemm(be, n, args):
    return wl_sgemm(be, n, args, np.float64)


def wl_sgemm(be, n, args, dtype=np.float32):
    name = "sgemm" if dtype == np.float32 else "dgemm"
    a = be.asarray(host_matrix(n, args.seed, 0).astype(dtype))
    b = be.asarray(host_matrix(n, args.seed, 1).astype(dtype))
    note = "fresh output each run; value = f64 checksum of a @ b"
    if be.name == "dask":
        da_, db_ = be.wrap(a), be.wrap(b)
        return [(name, Case(run=lambda: be.compute(da_ @ db_), value=checksum(np),
                               flops=2.0 * n ** 3,
                               note=note + f"; dask blocks {be.block}x{be.block}, result assembled"))]
    if be.is_gpu:
        note += f"; CUPY_TF32={os.environ.get('CUPY_TF32')}"
    return [(name, Case(run=lambda: a @ b, value=checksum(be.xp), flops=2.0 * n ** 3,
                        note=note))]


def pattern_rect(rows, cols, a, b, c):
    """((a i + b j + c) % 97) / 97 as f32 (exact), as `tessera bench` builds it."""
    i = np.arange(rows, dtype=np.int64)[:, None]
    j = np.arange(cols, dtype=np.int64)[None, :]
    return ((a * i + b * j + c) % 97).astype(np.float32) / np.float32(97)


def wl_knn(be, n, args):
    """Brute-force kNN as users write it in NumPy/CuPy: the whole distance matrix, then
    argpartition per row."""
    xp = be.xp
    k, d = 10, 64
    x = be.asarray(pattern_rect(n, d, 31, 17, 0))
    y = be.asarray(pattern_rect(n, d, 29, 13, 5))

    def run():
        d2 = (y * y).sum(1)[:, None] - 2 * (y @ x.T) + (x * x).sum(1)[None, :]
        idx = xp.argpartition(d2, k - 1, axis=1)[:, :k]
        return float(xp.take_along_axis(d2, idx, 1).astype(xp.float64).sum())

    return [("knn", Case(run=run, flops=2.0 * n * n * d,
                         note=f"k={k}, d={d}; the {n}x{n} f32 distance matrix is "
                              f"{4 * n * n / GB:.1f} GB; value = sum of the k smallest squared "
                              "distances per query"))]


SORT_P = 2 ** 31 - 1
TOPK_K = 10
BLOCK = 1 << 24  # elements per block where a whole-array temporary would be large


def sort_pattern(n):
    """q / 2^31 as f32, q = ((i^2 mod p) 48271 + 16807 i + 12345) mod p, p = 2^31 - 1: integer
    arithmetic (exact in int64 for i < 3e9), one rounding to f32, a power-of-two scale, so the
    bits equal those `tessera bench` builds. Made in blocks: no N-sized int64 temporaries."""
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, BLOCK):
        i = np.arange(s, min(n, s + BLOCK), dtype=np.int64)
        q = ((i * i) % SORT_P * 48271 + 16807 * i + 12345) % SORT_P
        out[s:s + len(i)] = q.astype(np.float32) * np.float32(2.0 ** -31)
    return out


def sort_digest(out):
    """Exact digest of sorted values or positions: sum of (key_i mod 1021) (i mod 1024 + 1),
    key = value * 2^31 (an integer for the sort pattern) or the position; below 2^53."""
    total = 0
    for s in range(0, len(out), BLOCK):
        b = np.asarray(out[s:s + BLOCK])
        key = (b.astype(np.float64) * 2.0 ** 31).astype(np.int64) if b.dtype.kind == "f" \
            else b.astype(np.int64)
        w = np.arange(s, s + len(b), dtype=np.int64) % 1024 + 1
        total += int(((key % 1021) * w).sum())
    return float(total)


def topk_digest(x, pos, k):
    """Exact digest of a top-k given any k positions of the k largest of host array x: ties at
    the k-th value resolved to the lowest positions, ordered by value (largest first) and
    position, as Tessera's topk orders them; sum of (j + 1) (value_j 2^31 + 3 position_j)."""
    pos = np.asarray(pos, dtype=np.int64)
    v = x[pos]
    t = v.min()
    above = pos[v > t]
    ties = np.flatnonzero(x == t)[:k - len(above)]
    p = np.concatenate([above, ties])
    p = p[np.lexsort((p, -x[p].astype(np.float64)))]
    q = (x[p].astype(np.float64) * 2.0 ** 31).astype(np.int64)
    return float(sum((j + 1) * (int(q[j]) + 3 * int(p[j])) for j in range(len(p))))


def wl_sort(be, n, args, arg=False):
    """Stable ascending sort (values, or with arg the positions) of the sort pattern."""
    name = "argsort" if arg else "sort"
    if be.name == "dask":
        raise NotImplementedError(f"dask.array has no {name}")
    xp = be.xp
    x = be.asarray(sort_pattern(n))
    if be.is_gpu:  # CuPy's sort and argsort are stable (radix sorts); no kind= accepted
        run = (lambda: xp.argsort(x)) if arg else (lambda: xp.sort(x))
        how = f"cupy.{name}"
    else:
        run = (lambda: np.argsort(x, kind="stable")) if arg else \
            (lambda: np.sort(x, kind="stable"))
        how = f"np.{name}(kind='stable'), one thread"
    value = (lambda out: sort_digest(be.cp.asnumpy(out))) if be.is_gpu else sort_digest
    return [(name, Case(run=run, value=value, nbytes=4.0 * n,
                        note=f"{how}; fresh output each run; GB/s counts the input once; "
                             "value = exact digest of the order"))]


def wl_argsort(be, n, args):
    return wl_sort(be, n, args, arg=True)


def wl_topk(be, n, args):
    """The 10 largest of the sort pattern and their positions, largest first."""
    k = min(TOPK_K, n)
    host = sort_pattern(n)
    if be.name == "dask":
        dx = be.wrap(host)
        run = lambda: be.compute(be.da.argtopk(dx, k))
        how = f"da.argtopk, chunks of {be.chunk:,}"
    else:
        xp = be.xp
        x = be.asarray(host)

        def run():
            idx = xp.argpartition(x, n - k)[n - k:]
            return idx[xp.argsort(-x[idx])]
        how = "argpartition, then the k sorted"
    value = lambda pos: topk_digest(host, pos.get() if be.is_gpu else pos, k)
    return [("topk", Case(run=run, value=value, nbytes=4.0 * n,
                          note=f"k={k}; {how}; GB/s counts the input once; value = exact digest "
                               "of values and positions (ties at the k-th value: lowest "
                               "positions)"))]


def wl_svd(be, n, args):
    """The SVD of a tall-skinny matrix, multiplied back and compared with the input."""
    xp = be.xp
    a = be.asarray(np.random.default_rng(args.seed).random((n, SVD_COLS), dtype=np.float32))

    def error(a_):
        u, s_, vt = xp.linalg.svd(a_, full_matrices=False)
        d = (u * s_) @ vt - a_
        return float(xp.sqrt((d * d).sum() / (a_ * a_).sum()))

    if be.name == "dask":
        da_ = be.wrap(a).rechunk((args.dask_chunk // SVD_COLS, SVD_COLS))

        def run():
            u, s_, vt = be.da.linalg.svd(da_)
            d = (u * s_) @ vt - da_
            return float(be.compute(be.da.sqrt((d * d).sum() / (da_ * da_).sum())))
        how = "dask.array.linalg.svd (TSQR), row blocks"
    else:
        run = lambda: error(a)
        how = "LAPACK gesdd on the whole matrix" if not be.is_gpu else "cuSOLVER gesvd"
    return [("svd", Case(run=run, nbytes=4.0 * SVD_COLS * n, flops=None,
                         note=f"{how}; value = relative reconstruction error; GB/s counts the "
                              f"input once ({4 * SVD_COLS * n / GB:.2f} GB)"))]


def wl_tsqr(be, n, args):
    """The singular values alone of a tall-skinny matrix (Tessera: TSQR with R-only QRs, one
    pass over the input); the value is the largest."""
    xp = be.xp
    a = be.asarray(np.random.default_rng(args.seed).random((n, SVD_COLS), dtype=np.float32))
    if be.name == "dask":
        da_ = be.wrap(a).rechunk((args.dask_chunk // SVD_COLS, SVD_COLS))
        run = lambda: float(be.compute(be.da.linalg.tsqr(da_, compute_svd=True)[1][0]))
        how = "dask.array.linalg.tsqr(compute_svd=True), row blocks"
    else:
        run = lambda: float(xp.linalg.svd(a, compute_uv=False)[0])
        how = "LAPACK gesdd (values only) on the whole matrix" if not be.is_gpu else "cuSOLVER"
    return [("tsqr", Case(run=run, nbytes=4.0 * SVD_COLS * n, flops=None,
                          note=f"{how}; value = the largest singular value; GB/s counts the "
                               f"input once ({4 * SVD_COLS * n / GB:.2f} GB)"))]


def wl_limits(be, n, args):
    xp = be.xp
    src = xp.full(n, 1.0, dtype=xp.float32)
    dst = xp.zeros(n, dtype=xp.float32)  # zeros + fill: pages touched before timing
    dst.fill(0)
    cases = [("limits:copy", Case(
        run=lambda: xp.copyto(dst, src), nbytes=2.0 * src.nbytes,
        note=f"copyto into a preallocated array; {src.nbytes / GB:.2f} GB read + written"
             + ("" if be.is_gpu else "; numpy copies on one thread")))]
    if not be.is_gpu:
        return cases

    cp = be.cp
    import ctypes
    cases.append(("limits:copy_memcpy", Case(
        run=lambda: dst.data.copy_from_device(src.data, src.nbytes), nbytes=2.0 * src.nbytes,
        note="cudaMemcpy device to device; bytes read + written")))

    nbytes = min(4 * n, args.transfer_bytes)
    dev = cp.empty(nbytes, dtype=cp.uint8)
    pinned = cp.cuda.alloc_pinned_memory(nbytes)
    np.frombuffer(pinned, dtype=np.uint8, count=nbytes)[:] = 1
    pinned_ptr = ctypes.c_void_p(pinned.ptr)
    pageable = np.ones(nbytes, dtype=np.uint8)
    pageable_ptr = ctypes.c_void_p(pageable.ctypes.data)
    for kind, ptr in (("pinned", pinned_ptr), ("pageable", pageable_ptr)):
        keep = pinned if kind == "pinned" else pageable
        cases.append((f"limits:h2d_{kind}", Case(
            run=lambda p=ptr, k=keep: dev.data.copy_from_host(p, nbytes), nbytes=float(nbytes),
            size=nbytes, note=f"cudaMemcpy host to device from {kind} memory; size in bytes")))
        cases.append((f"limits:d2h_{kind}", Case(
            run=lambda p=ptr, k=keep: dev.data.copy_to_host(p, nbytes), nbytes=float(nbytes),
            size=nbytes, note=f"cudaMemcpy device to host into {kind} memory; size in bytes")))

    g = args.limits_gemm_n
    a = cp.asarray(host_matrix(g, args.seed, 0))
    b = cp.asarray(host_matrix(g, args.seed, 1))
    c = cp.empty((g, g), dtype=cp.float32)
    cases.append(("limits:sgemm_cublas", Case(
        run=lambda: cp.matmul(a, b, out=c), flops=2.0 * g ** 3, size=g,
        note=f"cuBLAS SGEMM {g}x{g} into a preallocated output; {tf32_check(cp, args.seed)}")))
    return cases


def tf32_check(cp, seed, n=1024):
    """Relative error of a GPU f32 GEMM against float64: ~1e-7 in FP32, ~1e-3 with TF32."""
    a, b = host_matrix(n, seed, 2), host_matrix(n, seed, 3)
    got = cp.asnumpy(cp.asarray(a) @ cp.asarray(b)).astype(np.float64)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    verdict = "FP32 (TF32 off)" if err < 1e-5 else "TF32 or lower precision ON"
    return f"rel err vs f64 at {n}: {err:.1e} -> {verdict}; CUPY_TF32={os.environ.get('CUPY_TF32')}"


WORKLOAD_FUNCS = {
    "limits": wl_limits,
    "add_mul": wl_add_mul,
    "add_mul_sum": wl_add_mul_sum,
    "pi": wl_pi,
    "std_expr": wl_std_expr,
    "sgemm": wl_sgemm,
    "dgemm": wl_dgemm,
    "svd": wl_svd,
    "tsqr": wl_tsqr,
    "knn": wl_knn,
    "sort": wl_sort,
    "argsort": wl_argsort,
    "topk": wl_topk,
}


# --------------------------------------------------------------------------------------------
# Runner, table, JSON
# --------------------------------------------------------------------------------------------

def measure(be, case, repeat):
    """Warm up once, then time `repeat` runs. Returns (times, value)."""
    times, result = [], None
    for i in range(repeat + 1):
        result = None  # drop the previous output first: every run allocates a fresh one
        be.sync()
        t0 = time.perf_counter()
        result = case.run()
        be.sync()
        t1 = time.perf_counter()
        if i > 0:
            times.append(t1 - t0)
    if case.value is not None:
        value = case.value(result)
    elif isinstance(result, (int, float)):
        value = float(result)
    else:
        value = None
    return times, value


def make_record(workload, be, size, repeat, **fields):
    rec = {"workload": workload, "backend": be.name, "size": size, "median_s": None,
           "min_s": None, "value": None, "expected": None, "gbps": None, "gflops": None,
           "note": "", "repeat": repeat, "device": be.device}
    rec.update(fields)
    return rec


def run_cases(be, workload, size, args):
    """Runs one workload at one size; yields records. Errors become records, never crashes."""
    cases = case = None
    try:
        cases = WORKLOAD_FUNCS[workload](be, size, args)
        for name, case in cases:
            try:
                times, value = measure(be, case, args.repeat)
            except Exception as e:
                yield make_record(name, be, case.size or size, args.repeat, note=error_note(e))
                continue
            med = statistics.median(times)
            note = case.note
            if case.items:
                note += f"; {case.items / med / 1e9:.2f} G{case.items_name}/s"
            yield make_record(
                name, be, case.size or size, args.repeat, median_s=med, min_s=min(times), value=value,
                expected=case.expected,
                gbps=case.nbytes / med / GB if case.nbytes else None,
                gflops=case.flops / med / 1e9 if case.flops else None, note=note)
    except Exception as e:  # setup failed (typically out of memory)
        yield make_record(workload, be, size, args.repeat, note=error_note(e))
    finally:
        cases = case = None  # drop the inputs before freeing pooled memory
        be.free()


def check_record(rec, records):
    """Compares rec's value with numpy's at the same workload and size (else the known result).
    Returns the verdict, or None when there is nothing to compare."""
    if rec["value"] is None or rec["backend"] == "numpy":
        return None
    ref = next((r for r in records if r["backend"] == "numpy" and r["workload"] == rec["workload"]
                and r["size"] == rec["size"] and r["value"] is not None), None)
    what, want = ("numpy", ref["value"]) if ref else ("expected", rec["expected"])
    if want is None:
        return None
    if rec["workload"] == "svd":
        # Reconstruction errors: both at the f32 rounding level (within 10x of numpy's, or
        # under 1e-5), not equal.
        ok = rec["value"] <= max(10 * want, 1e-5)
        return (f"agrees with {what}" if ok
                else f"DISAGREES with {what} (error {rec['value']:.3g} vs {want:.3g})")
    if rec["workload"] in ("sort", "argsort", "topk"):
        # Exact digests of the order: equal or not.
        return (f"agrees with {what}" if rec["value"] == want
                else f"DISAGREES with {what} ({rec['value']:.17g} vs {want:.17g})")
    if rec["workload"].startswith("pi"):
        # Independent random streams: both estimates carry the binomial error (an exact target
        # carries none).
        one = 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / rec["size"])
        tol = 6 * one * (math.sqrt(2) if ref else 1)
    else:
        tol = 1e-3 * max(abs(want), 1e-12)
    diff = abs(rec["value"] - want)
    return (f"agrees with {what}" if diff <= tol
            else f"DISAGREES with {what} ({rec['value']:.10g} vs {want:.10g})")


def error_note(e):
    if isinstance(e, NotImplementedError):  # the library has no such operation
        return f"absent: {e}"
    text = str(e).strip().splitlines()
    kind = "out of memory" if isinstance(e, MemoryError) or "out of memory" in str(e).lower() \
        else "error"
    return f"{kind}: {type(e).__name__}: {text[0][:160] if text else ''}"


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_header():
    print(f"{'workload':<20} {'backend':<10} {'size':>14} {'median_s':>10} {'value':>16} "
          f"{'expected':>16} {'GB/s':>8} {'GFLOP/s':>9}  note")


def print_record(r):
    print(f"{r['workload']:<20} {r['backend']:<10} {r['size']:>14,} {fmt(r['median_s'], '.4g'):>10} "
          f"{fmt(r['value'], '.10g'):>16} {fmt(r['expected'], '.10g'):>16} {fmt(r['gbps'], '.1f'):>8} {fmt(r['gflops'], '.0f'):>9}  "
          f"{r['note']}", flush=True)


def parse_count(text):
    v = float(text)
    if v < 1 or v != int(v):
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text}")
    return int(v)


def parse_sizes(specs):
    """['pi=1e8,1e10', 'numpy:sgemm=4096'] -> {(None, 'pi'): [...], ('numpy', 'sgemm'): [...]}"""
    sizes = {}
    for spec in specs or []:
        key, _, values = spec.partition("=")
        backend, _, workload = key.rpartition(":")
        if workload not in WORKLOADS or (backend and backend not in BACKENDS) or not values:
            raise SystemExit(f"bad --size {spec!r}: want [BACKEND:]WORKLOAD=N[,N...]")
        sizes[(backend or None, workload)] = [parse_count(v) for v in values.split(",")]
    return sizes


def sizes_for(sizes, backend, workload):
    for key in ((backend, workload), ("cupy" if backend.startswith("cupy") else backend, workload),
                (None, workload)):
        if key in sizes:
            return sizes[key]
    return DEFAULT_SIZES[workload]


def parse_list(text, allowed, what):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["all"]:
        return list(allowed)
    bad = [t for t in items if t not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (known: {', '.join(allowed)})")
    return items


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--workloads", default="all", help="comma list, or 'all' (default)")
    p.add_argument("--backends", default="numpy,cupy,dask",
                   help="comma list of numpy,cupy,cupy-fused,cupy-raw,dask, or 'all'")
    p.add_argument("--size", action="append", metavar="[BACKEND:]WORKLOAD=N[,N...]")
    p.add_argument("--repeat", type=int, default=5, help="timed runs after one warm-up")
    p.add_argument("--json", help="write the records here (rewritten after every case)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--matrix", choices=["random", "pattern"], default="random",
                   help="std_expr/sgemm input: seeded random, or the exact pattern Tessera uses")
    p.add_argument("--pi-chunk", type=parse_count, default=2 ** 27,
                   help="points generated per chunk in pi (default 2^27: 1.07 GB of x,y f32)")
    p.add_argument("--transfer-bytes", type=parse_count, default=2 ** 31,
                   help="cap on the host<->device transfer size in limits (default 2 GiB)")
    p.add_argument("--limits-gemm-n", type=parse_count, default=8192)
    p.add_argument("--dask-chunk", type=parse_count, default=2 ** 22,
                   help="dask: elements per chunk of a vector (default 2^22 f32 = 16 MiB)")
    p.add_argument("--dask-block", type=parse_count, default=1024,
                   help="dask: side of the square blocks of a matrix (default 1024)")
    p.add_argument("--allow-tf32", action="store_true", help="let cuBLAS use TF32 (off by default)")
    args = p.parse_args(argv)
    MATRIX["kind"] = args.matrix

    workloads = parse_list(args.workloads, WORKLOADS, "workload")
    backend_names = parse_list(args.backends, BACKENDS, "backend")
    sizes = parse_sizes(args.size)

    print(f"python {platform.python_version()}, numpy {np.__version__}, host: {cpu_description()}")
    backends, cupy_load = [], None
    for name in backend_names:
        if name == "numpy":
            backends.append(Backend())
            continue
        if name == "dask":
            da, version, why = load_dask()
            if da is None:
                print(f"dask unavailable: {why} (skipping the dask backend; "
                      "pip install -r benches/requirements.txt)")
                continue
            be = DaskBackend(da, version, args)
            print(f"dask: {be.device}; chunks {be.chunk:,} elements, blocks {be.block}")
            backends.append(be)
            continue
        if cupy_load is None:
            cupy_load = load_cupy(args.allow_tf32)
            if cupy_load[0] is None:
                print(f"cupy unavailable: {cupy_load[1]} (skipping the cupy backends)")
        cp = cupy_load[0]
        if cp is None:
            continue
        try:
            be = CupyBackend(cp, name)
        except Exception as e:  # e.g. the RawModule does not compile
            print(f"{name} unavailable: {error_note(e)}")
            continue
        print(f"{name}: {be.device}; CUPY_TF32={os.environ['CUPY_TF32']}, "
              f"CUPY_ACCELERATORS={os.environ.get('CUPY_ACCELERATORS', '(default)')}")
        backends.append(be)

    records = []
    print_header()
    for workload in workloads:
        for be in backends:
            if (be.fused or be.raw) and workload not in FUSED_WORKLOADS:
                continue
            if be.name == "dask" and workload == "limits":
                continue  # machine limits are measured by numpy/cupy; dask adds nothing there
            for size in sizes_for(sizes, be.name, workload):
                for rec in run_cases(be, workload, size, args):
                    rec["check"] = check_record(rec, records)
                    if rec["check"]:
                        rec["note"] = f"{rec['check']}; {rec['note']}"
                    records.append(rec)
                    print_record(rec)
                    if args.json:
                        with open(args.json, "w") as f:
                            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
