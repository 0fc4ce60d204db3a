# Sourced by scripts/gpu_run.sh and scripts/gpu_rerun.sh: the GPU machine's set-up, the steps of
# a GPU run and the bookkeeping that lets a second call rerun only what failed.
#
# The GPU machine has no cargo and no registry; scripts/gpu_pack.sh builds everything into
# .gpu/ here (carry [".gpu"]). Every step has a time limit and the whole call a deadline
# (TESSERA_GPU_DEADLINE seconds of steps, default 400: with the set-up the call ends within
# 7 minutes); a step the deadline leaves no time for is recorded as not run. Logs go to
# $OUT/<step>.log, one line per step to $OUT/steps.tsv, and what a rerun should take to
# $OUT/rerun.txt (a step name, or "step<TAB>test name" for single tests).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-/tmp/tessera-gpu-out}"
mkdir -p "$OUT"
: > "$OUT/steps.tsv"
: > "$OUT/rerun.txt"
T0=$SECONDS
DEADLINE="${TESSERA_GPU_DEADLINE:-400}"
# Steps whose command is a libtest binary: a rerun can name single tests.
TEST_STEPS="cuda_run cuda_tests wgpu_tests"

gpu_setup() {
    # The binaries travel xz-compressed (scripts/gpu_pack.sh); unpacked outside the checkout,
    # so that a rehearsal here leaves nothing in .gpu/ to carry.
    export GPU_BIN=/tmp/tessera-gpu-bin
    mkdir -p "$GPU_BIN"
    chmod 700 "$GPU_BIN"
    for f in .gpu/*.xz; do
        [ -f "$f" ] || continue
        local b
        b="$GPU_BIN/$(basename "$f" .xz)"
        [ -x "$b" ] && [ "$b" -nt "$f" ] && continue
        if command -v xz > /dev/null; then
            xz -dc "$f" > "$b"
        else
            python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$f" "$b"
        fi
        chmod +x "$b"
    done
    # cudarc opens libnvrtc.so / libcublas.so by their unversioned or .so.12 names; the machine's
    # CUDA libraries may carry other versions (NVIDIA's pip wheels), so links with those names
    # go into a private folder on LD_LIBRARY_PATH.
    local libs=/tmp/tessera-cuda-libs
    mkdir -p "$libs"
    local roots
    roots="$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local/cuda/lib64 /usr/local/nvidia/lib64"
    for name in nvrtc cublas cublasLt nvrtc-builtins; do
        # shellcheck disable=SC2086
        f=$(find $roots -name "lib$name.so.*" 2>/dev/null | sort | tail -1)
        if [ -n "$f" ]; then
            ln -sf "$f" "$libs/lib$name.so"
            ln -sf "$f" "$libs/$(basename "$f")"
            echo "lib$name: $f"
        else
            echo "lib$name: not found"
        fi
    done > "$OUT/libs.txt"
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    [ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/local/nvidia/lib64"
    # The Vulkan loader (libvulkan.so.1) for wgpu: the machine's, else the one carried in
    # .gpu/gl, unpacked into a private folder (never over /).
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 '; then
        local gl=/tmp/tessera-gl
        mkdir -p "$gl"
        for f in .gpu/gl/*.deb; do [ -f "$f" ] && dpkg -x "$f" "$gl"; done
        export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$gl/usr/lib/x86_64-linux-gnu"
        echo "vulkan loader: carried ($(ls "$gl"/usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || echo missing))" >> "$OUT/libs.txt"
    else
        echo "vulkan loader: the machine's" >> "$OUT/libs.txt"
    fi
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -f "$icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
        export VK_DRIVER_FILES="$icd"
        echo "vulkan driver: $icd" >> "$OUT/libs.txt"
    fi
    # One PTX cache for the call, so the benchmarks reuse what the tests compiled; TF32 off
    # everywhere: SGEMM figures are FP32.
    export TESSERA_CACHE_DIR=/tmp/tessera-gpu-cache CUPY_TF32=0 NVIDIA_TF32_OVERRIDE=0 PYTHONUNBUFFERED=1
    mkdir -p "$TESSERA_CACHE_DIR"
    chmod 700 "$TESSERA_CACHE_DIR"
}

# Steps that need the GPU itself skip where there is none (a rehearsal here); the CUDA test
# binaries run everywhere and skip test by test without a driver.
skip_without_gpu() {
    nvidia-smi -L > /dev/null 2>&1 || {
        echo "skipped: no NVIDIA driver here (nvidia-smi -L fails)"
        exit 0
    }
}

# The steps. Test binaries take libtest filters after their own arguments.
cmd_info() {
    nvidia-smi || echo "no NVIDIA driver here"
    cat "$OUT/libs.txt"
    "$GPU_BIN"/tessera info
}
cmd_cuda_run() { "$GPU_BIN"/cuda_run --test-threads=1 "$@"; }
cmd_cuda_tests() { "$GPU_BIN"/cuda_tests --test-threads=8 "$@"; }
cmd_wgpu_tests() {
    skip_without_gpu
    "$GPU_BIN"/wgpu_tests --test-threads=8 "$@"
}
cmd_cuda_bench() { "$GPU_BIN"/cuda_bench --ignored --nocapture --test-threads=1 "$@"; }
# Machine limits beside the benchmarks: device copy, pinned/pageable PCIe, cuBLAS SGEMM.
cmd_limits() {
    skip_without_gpu
    python3 benches/harness.py --workloads limits --backends cupy --repeat 5 \
        --json "$OUT/limits.json"
}
# On the device: (x+1)*2 (3.6e9 f32 = 14.4 GB in and out), Monte Carlo pi (1e10 points),
# SGEMM 8192 beside CuPy as written, CuPy's own fused kernels and hand-written CUDA.
cmd_bench_device() {
    skip_without_gpu
    "$GPU_BIN"/tessera bench --backend cuda --repeat 3 --baselines cupy,cupy-fused,cupy-raw \
        --out "$OUT/bench_device" --workloads add_mul,pi,sgemm \
        --size add_mul=3.6e9 --size pi=1e10 --size sgemm=8192
}
# From host memory: ((x+1)*2).sum() over 1.44e10 f32 (57.6 GB; CuPy as written needs it all on
# the device twice over), against the pinned PCIe rate of `limits`.
cmd_bench_host() {
    skip_without_gpu
    "$GPU_BIN"/tessera bench --backend cuda --repeat 3 --no-python --out "$OUT/bench_host" \
        --workloads add_mul_sum --size add_mul_sum=1.44e10
}
# (a.dot(a.T) - a).std() with a 100,000² f32 (40 GB; a and a.dot(a.T) exceed the device), once.
cmd_std_expr() {
    skip_without_gpu
    "$GPU_BIN"/tessera bench --backend cuda --warmup 0 --repeat 1 --no-python --out "$OUT/std_expr" \
        --workloads std_expr --size std_expr=100000
}

# step NAME LIMIT [FILTERS...]: runs cmd_NAME within min(LIMIT, time left before the deadline).
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - (SECONDS - T0)))
    if [ "$left" -lt 15 ]; then
        printf '%s\t-\t0\tnot run: the call deadline (%s s) was reached\n' "$name" "$DEADLINE" >> "$OUT/steps.tsv"
        echo "$name" >> "$OUT/rerun.txt"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$SECONDS
    echo "== $name (limit $limit s)"
    timeout -k 5 "$limit" bash -c "$(declare -f "cmd_$name" skip_without_gpu); OUT='$OUT'; cmd_$name \"\$@\"" _ "$@" \
        > "$OUT/$name.log" 2>&1
    local rc=$?
    local secs=$((SECONDS - t0)) what
    what=$(grep -E '^test result' "$OUT/$name.log" | tail -1)
    [ -z "$what" ] && what=$(grep -E '^(skipped|results:)' "$OUT/$name.log" | tail -1)
    local skips
    skips=$(grep -c 'skipped' "$OUT/$name.log")
    case $rc in
        0) if [ "$skips" -gt 0 ]; then
               what="SKIPPED ($skips skip lines)${what:+; $what}"
           else
               what="passed${what:+; $what}"
           fi ;;
        124 | 137) what="TIMED OUT after $limit s${what:+; $what}" ;;
        *) what="FAILED rc=$rc${what:+; $what}" ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$what" >> "$OUT/steps.tsv"
    [ "$rc" -eq 0 ] || note_rerun "$name" "$@"
}

# What a rerun takes from a failed step: for a test binary the tests that failed or never
# finished (the whole step when none can be named), else the step.
note_rerun() {
    local name=$1
    shift
    case " $TEST_STEPS " in
        *" $name "*) ;;
        *)
            echo "$name" >> "$OUT/rerun.txt"
            return
            ;;
    esac
    local log="$OUT/$name.log" bin
    bin=$(declare -f "cmd_$name" | grep -o 'GPU_BIN"/[a-z_]*' | head -1 | sed "s|GPU_BIN\"|$GPU_BIN|")
    local failed done_ all
    failed=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
    done_=$(sed -n 's/^test \(.*\) \.\.\. \(ok\|FAILED\|ignored\)$/\1/p' "$log" | sort -u)
    all=$("$bin" --list "$@" 2>/dev/null | sed -n 's/: test$//p' | sort -u)
    local unfinished
    unfinished=$(comm -23 <(echo "$all") <(echo "$done_") | sed '/^$/d')
    if [ -z "$failed$unfinished" ]; then
        echo "$name" >> "$OUT/rerun.txt"
    else
        printf '%s\n%s\n' "$failed" "$unfinished" | sed '/^$/d' | sort -u |
            sed "s/^/$name\t/" >> "$OUT/rerun.txt"
    fi
}

# The bench tables, then the step table (the device tool returns the output's end).
summary() {
    for d in bench_device bench_host std_expr; do
        [ -f "$OUT/$d.log" ] && { echo "== $d"; grep -vE '^(tessera|numpy/cupy):' "$OUT/$d.log" | tail -12; }
    done
    [ -f "$OUT/cuda_bench.log" ] && { echo "== cuda_bench"; grep -E 'GB/s|ms|skipped' "$OUT/cuda_bench.log" | tail -14; }
    [ -f "$OUT/limits.log" ] && { echo "== limits"; grep -E '^limits' "$OUT/limits.log" | tail -8; }
    echo
    printf '%-14s %5s %6s  %s\n' step rc secs result
    while IFS=$'\t' read -r name rc secs what; do
        printf '%-14s %5s %6s  %s\n' "$name" "$rc" "$secs" "$what"
    done < "$OUT/steps.tsv"
    nvidia-smi -L > /dev/null 2>&1 ||
        echo "NO NVIDIA DRIVER: the CUDA test steps passed by skipping every test (libtest hides their 'skipped:' lines)"
    local n
    n=$(wc -l < "$OUT/rerun.txt")
    echo "rerun list: $n line(s) in rerun.txt (copy it to .gpu/rerun.txt; bash scripts/gpu_rerun.sh)"
    echo "total $((SECONDS - T0)) s of steps; logs in $OUT"
}
