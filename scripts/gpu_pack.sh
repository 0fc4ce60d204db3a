#!/usr/bin/env bash
# Builds everything a GPU run needs into .gpu/ (git-ignored) on a machine without a GPU; the
# GPU machine has no cargo and no registry. Then, with the device tool:
#   run(command="bash scripts/gpu_run.sh", carry=[".gpu"])
# .gpu/ holds stripped binaries (the carry limit is 64 MiB):
#   tessera      the CLI (release): `info`, `bench --backend cuda` beside CuPy
#   cuda_tests   tests/cuda.rs: conformance + out-of-core suites and CUDA checks on the GPU
#   wgpu_tests   tests/wgpu.rs on the GPU's Vulkan driver
#   cuda_run     kernels/tests/cuda_run.rs: every generated kernel against the CPU interpreter
#   cuda_bench   kernels/tests/cuda_bench.rs: generated kernels against copy bandwidth
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
exe() { sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1; }
put() { strip -o ".gpu/$2" "$1" 2>/dev/null || cp "$1" ".gpu/$2"; }

cargo build --release -j2
put target/release/tessera tessera
put "$(cargo test -j2 --test cuda --no-run --message-format=json 2>/dev/null | exe)" cuda_tests
put "$(cargo test -j2 --test wgpu --no-run --message-format=json 2>/dev/null | exe)" wgpu_tests
put "$(cargo test -j2 --release -p tessera-kernels --test cuda_run --no-run --message-format=json 2>/dev/null | exe)" cuda_run
put "$(cargo test -j2 --release -p tessera-kernels --test cuda_bench --no-run --message-format=json 2>/dev/null | exe)" cuda_bench
du -ch .gpu/* | tail -1
