#!/usr/bin/env bash
# The second GPU call: reruns only what the first listed in its rerun.txt (copy it from the
# first call's output to .gpu/rerun.txt, or name the file): single tests by their exact
# names, other steps whole. Same deadline and outputs as scripts/gpu_run.sh.
#   run(command="bash scripts/gpu_rerun.sh", carry=[".gpu"])
list="${1:-.gpu/rerun.txt}"
[ -f "$list" ] || { echo "no rerun list at $list"; exit 2; }
list="$(cd "$(dirname "$list")" && pwd)/$(basename "$list")"
source "$(dirname "$0")/gpu_common.sh"
gpu_setup
declare -A limits=([info]=20 [cuda_tests]=150 [cuda_run]=150 [wgpu_tests]=150
    [bench_device]=90 [limits]=30 [cuda_bench]=45 [bench_host]=60 [std_expr]=120)
for name in info cuda_tests cuda_run wgpu_tests bench_device limits cuda_bench bench_host std_expr; do
    if grep -qx "$name" "$list"; then
        step "$name" "${limits[$name]}"
    elif grep -q "^$name"$'\t' "$list"; then
        mapfile -t tests < <(sed -n "s/^$name\t//p" "$list")
        step "$name" "${limits[$name]}" --exact "${tests[@]}"
    fi
done
summary
