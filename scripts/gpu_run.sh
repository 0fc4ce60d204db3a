#!/usr/bin/env bash
# One GPU call (device tool: carry [".gpu"], built here by scripts/gpu_pack.sh), ending within
# 7 minutes: device info; the CUDA conformance + out-of-core suites, every generated kernel
# against the CPU interpreter and the wgpu suite on the GPU's Vulkan driver (these three at
# once: they check, they do not time); then, alone on the GPU, the seed workloads beside CuPy,
# the machine's limits and the generated kernels' bandwidth. Steps are bounded (see
# gpu_common.sh); the summary table comes last. What failed or did not run is listed in
# $OUT/rerun.txt for scripts/gpu_rerun.sh. Without a driver every step runs and skips.
source "$(dirname "$0")/gpu_common.sh"
gpu_setup
step info 20
# The suites at once (16 cores; each test uses little of the GPU).
step cuda_tests 150 &
step cuda_run 150 &
step wgpu_tests 150 &
wait
step bench_device 90
step limits 30
step cuda_bench 45
step bench_host 60
step std_expr 120
summary
