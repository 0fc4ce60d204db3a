#!/usr/bin/env bash
# Runs on the GPU machine (device tool; carry [".gpu"], built by scripts/gpu_pack.sh): the CUDA
# suites, then the benchmarks beside CuPy. Builds nothing. Logs and results go to $OUT.
#
# That machine's CUDA libraries are version 13 (NVIDIA's pip wheels); cudarc opens
# libnvrtc.so / libcublas.so by their unversioned or .so.12 names, so links with those names
# are made in a private folder on LD_LIBRARY_PATH. The PTX cache lives in .gpu/cache, so the
# benchmarks reuse what the tests compiled.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/tessera-gpu-out}"
mkdir -p "$OUT"
libs=/tmp/tessera-cuda-libs
mkdir -p "$libs"
roots="$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda/lib64 /usr/local/nvidia/lib64"
for name in nvrtc cublas cublasLt nvrtc-builtins; do
  f=$(find $roots -name "lib$name.so.*" 2>/dev/null | sort | tail -1)
  if [ -n "$f" ]; then
    ln -sf "$f" "$libs/lib$name.so"
    ln -sf "$f" "$libs/$(basename "$f")"
    echo "lib$name: $f"
  else
    echo "lib$name: not found"
  fi
done | tee "$OUT/libs.txt"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TESSERA_CACHE_DIR="$PWD/.gpu/cache" CUPY_TF32=0 NVIDIA_TF32_OVERRIDE=0
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1

step() { # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "== $name" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "   rc=$rc $((SECONDS - t0)) s; $(grep -E '^test result' "$OUT/$name.txt" | tail -1)" | tee -a "$OUT/summary.txt"
}

step info 60 .gpu/tessera info
step cuda_run 300 .gpu/cuda_run --nocapture
step cuda_tests 900 .gpu/cuda_tests --test-threads=4
step wgpu_tests 600 .gpu/wgpu_tests --test-threads=4
step bench 900 .gpu/tessera bench --backend cuda --repeat 5 --out "$OUT/bench" \
  --workloads add_mul,add_mul_sum,pi,std_expr,sgemm \
  --size add_mul=3.6e9 --size add_mul_sum=1.44e10 --size pi=1e10 \
  --size std_expr=16384 --size sgemm=8192
step cuda_bench 300 .gpu/cuda_bench --ignored --nocapture --test-threads=1
cat "$OUT/summary.txt"
