#!/usr/bin/env bash
# Builds the GPU benchmark of the generated CUDA kernels (kernels/tests/cuda_bench.rs) on a
# machine without a GPU, for running on one that has a CUDA driver but maybe no NVRTC:
#   - the release test binary, copied to .gpu/cuda_bench;
#   - the kernels' PTX (NVRTC, compute_90) in .gpu/ptx, and ptxas -v's resource report of each
#     kernel for sm_90 in .gpu/ptxas.txt (where ptxas exists).
# .gpu/ is git-ignored. NVRTC: TESSERA_NVRTC_LIB_DIR (default: the cuda-tools wheel folder of
# the target dir); ptxas: TESSERA_PTXAS or PATH.
#
# Then, on the GPU machine, from the repository root (the device tool: carry [".gpu"]):
#   nvidia-smi; TESSERA_PTX_DIR=.gpu/ptx .gpu/cuda_bench --ignored --nocapture --test-threads=1
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
tools="$target/cuda-tools/nvidia"
export TESSERA_NVRTC_LIB_DIR="${TESSERA_NVRTC_LIB_DIR:-$tools/cuda_nvrtc/lib}"
ptxas="${TESSERA_PTXAS:-$(command -v ptxas || echo "$tools/cuda_nvcc/bin/ptxas")}"

bin=$(cargo test --release -p tessera-kernels --test cuda_bench --no-run -j2 \
    --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "no test binary (run the cargo command above to see why)"; exit 1; }
rm -rf .gpu/ptx
mkdir -p .gpu/ptx
# Without debug info: the binary travels to the GPU machine (64 MiB limit there).
strip -o .gpu/cuda_bench "$bin" 2>/dev/null || cp "$bin" .gpu/cuda_bench
# Without a GPU here the test compiles the PTX, writes it and prints `skipped`.
TESSERA_PTX_OUT=.gpu/ptx .gpu/cuda_bench --ignored --nocapture --test-threads=1 generated_kernels_on_gpu
ls .gpu/ptx
if [ -x "$ptxas" ]; then
    for f in .gpu/ptx/*.ptx; do
        echo "== $(basename "$f" .ptx)"
        "$ptxas" -arch=sm_90 -v -o /dev/null "$f" 2>&1
    done | tee .gpu/ptxas.txt
fi
echo "on the GPU machine: nvidia-smi; TESSERA_PTX_DIR=.gpu/ptx .gpu/cuda_bench --ignored --nocapture --test-threads=1"
