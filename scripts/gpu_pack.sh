#!/usr/bin/env bash
# Builds everything a GPU call needs into .gpu/ (git-ignored) on a machine without a GPU; the
# GPU machine has no cargo and no registry. Then, with the device tool:
#   run(command="bash scripts/gpu_run.sh", carry=[".gpu"], timeout_s=450)
# and, for what failed (its rerun.txt copied to .gpu/rerun.txt):
#   run(command="bash scripts/gpu_rerun.sh", carry=[".gpu"])
# .gpu/ holds stripped binaries, xz-compressed (the working tree and carry together must stay
# under 64 MiB; scripts/gpu_common.sh unpacks them on the GPU machine):
#   tessera      the CLI (release): `info`, `bench --backend cuda` beside CuPy
#   cuda_tests   tests/cuda.rs: conformance + out-of-core suites and CUDA checks on the GPU
#   wgpu_tests   tests/wgpu.rs on the GPU's Vulkan driver
#   cuda_run     kernels/tests/cuda_run.rs: every generated kernel against the CPU interpreter
#   cuda_bench   kernels/tests/cuda_bench.rs: generated kernels against copy bandwidth
#   gl/          the Vulkan loader's Debian package (used where the machine has no libvulkan.so.1)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
exe() { sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1; }
put() {
    strip -o ".gpu/$2" "$1" 2>/dev/null || cp "$1" ".gpu/$2"
    xz -T2 -6 -f ".gpu/$2"
}

cargo build --release -j2
put target/release/tessera tessera
put "$(cargo test -j2 --test cuda --no-run --message-format=json 2>/dev/null | exe)" cuda_tests
put "$(cargo test -j2 --test wgpu --no-run --message-format=json 2>/dev/null | exe)" wgpu_tests
put "$(cargo test -j2 --release -p tessera-kernels --test cuda_run --no-run --message-format=json 2>/dev/null | exe)" cuda_run
put "$(cargo test -j2 --release -p tessera-kernels --test cuda_bench --no-run --message-format=json 2>/dev/null | exe)" cuda_bench
mkdir -p .gpu/gl
(cd .gpu/gl && ls libvulkan1_*.deb >/dev/null 2>&1 || apt-get download libvulkan1 2>/dev/null) ||
    echo "libvulkan1 not downloaded: the wgpu suite needs the GPU machine's own loader"
rm -f .gpu/rerun.txt
rm -rf .gpu/bin
size=$(du -sb .gpu --exclude=cache | cut -f1)
echo ".gpu: $((size >> 20)) MiB (the device tool carries at most 64 MiB with the working tree)"
[ "$size" -lt $((60 << 20)) ] || { echo "too large to carry"; exit 1; }
