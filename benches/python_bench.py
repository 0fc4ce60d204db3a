#!/usr/bin/env python3
"""The Python front of Tessera: the seed workloads as numpy code with `ts` in place of `np`.

Three things are measured in one run, on one machine:
  1. The seed workloads of benches/harness.py (same definitions, same default sizes), written as
     numpy code with `import tessera as ts` in place of numpy, timed beside the same code in
     NumPy; every Tessera value is checked against NumPy's (relative 1e-3; pi, whose random
     streams differ, within 6 sigma of the difference of two estimates).
  2. The Rust path: `tessera bench --no-python` (target/release/tessera, or --tessera-bin) runs
     the same workloads at the same sizes in a child process, so that the table says whether the
     Python path stays within 5% of the Rust path on the large workloads.
  3. The per-call overhead of a small op, `x + 1` over 1,000 f32 elements: NumPy, Tessera eager
     (ts.config(eager=True)), Tessera lazy plus execute, and Tessera lazy recording alone, in
     microseconds per call.

Chunks on the Tessera side are those `tessera bench` uses, so both paths run the same chunk
graph: add_mul one chunk (the kernel writes the output directly), add_mul_sum the default chunk
budget, pi 2^22 points per chunk, matrices 1024 x 1024 blocks. Matrices are the exact pattern
a[i, j] = ((31 i + 17 j + 7 k) % 97) / 97 that `tessera bench` builds (harness --matrix pattern),
so NumPy, the Python path and the Rust path compute on the same numbers.

Each case is warmed up once and timed --repeat times; the median and the minimum are reported
(the Rust path reports its median). Results go to --json (default target/bench/python_bench.json;
target/bench/python.json is the file `tessera bench` has the NumPy harness write) and a table is
printed.

Example:
  target/venv/bin/python benches/python_bench.py --repeat 5
  target/venv/bin/python benches/python_bench.py --workloads add_mul_sum,pi --size pi=2e7
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (the workload definitions and inputs are shared with the harness)

WORKLOADS = ["add_mul", "add_mul_sum", "pi", "pi_xx", "std_expr", "sgemm"]
# pi_xx is pi with x * x for x ** 2, the form `tessera bench` runs: it separates the cost of the
# Python path from the cost of the power op.
RUST_NAME = {"pi_xx": "pi"}
PI_CHUNK = 1 << 22   # points per chunk, as `tessera bench` draws them
BLOCK = 1024         # matrix block side, as `tessera bench` cuts them
SMALL_N = 1000       # elements of the per-call overhead op
WITHIN = 1.05        # the Python path must stay within 5% of the Rust path


def timed(run, repeat):
    """One warm-up, then `repeat` timed runs. Returns (times, last result)."""
    times, result = [], None
    for i in range(repeat + 1):
        result = None  # the previous output is freed first: every run makes a fresh one
        t0 = time.perf_counter()
        result = run()
        t1 = time.perf_counter()
        if i > 0:
            times.append(t1 - t0)
    return times, result


def checksum(a):
    return float(np.asarray(a).sum(dtype=np.float64))


def agrees(workload, n, ours, ref):
    if workload.startswith("pi"):
        one = 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / n)
        return abs(ours - ref) <= 6 * math.sqrt(2) * one
    return abs(ours - ref) <= 1e-3 * max(abs(ref), 1e-12)


# --------------------------------------------------------------------------------------------
# Workloads: (numpy run, tessera run, value of a result). The code inside the numpy and the
# tessera runs is the same numpy code, `xp` being numpy or tessera.
# --------------------------------------------------------------------------------------------

def wl_add_mul(ts, n, seed):
    x_np = harness.pattern(np, n)
    x_ts = ts.asarray(x_np, chunk_size=n)
    return ((lambda: (x_np + 1) * 2),
            (lambda: ((x_ts + 1) * 2).execute()),
            checksum)


def wl_add_mul_sum(ts, n, seed):
    x_np = harness.pattern(np, n)
    x_ts = ts.asarray(x_np)
    return ((lambda: float(((x_np + 1) * 2).sum())),
            (lambda: float(((x_ts + 1) * 2).sum())),
            float)


def wl_pi(ts, n, seed, square=lambda v: v ** 2):
    def pi(xp, **chunks):
        rng = xp.random.default_rng(seed)
        x = rng.random(n, dtype=xp.float32, **chunks)
        y = rng.random(n, dtype=xp.float32, **chunks)
        return float(4 * ((square(x) + square(y)) < 1).sum() / n)
    return ((lambda: pi(np)), (lambda: pi(ts, chunk_size=min(n, PI_CHUNK))), float)


def wl_pi_xx(ts, n, seed):
    return wl_pi(ts, n, seed, square=lambda v: v * v)


def matrices(n, count):
    harness.MATRIX["kind"] = "pattern"
    return [harness.host_matrix(n, 0, k) for k in range(count)]


def wl_std_expr(ts, n, seed):
    (a_np,) = matrices(n, 1)
    a_ts = ts.asarray(a_np, chunk_size=BLOCK)
    return ((lambda: float((a_np.dot(a_np.T) - a_np).std())),
            (lambda: float((a_ts.dot(a_ts.T) - a_ts).std())),
            float)


def wl_sgemm(ts, n, seed):
    a_np, b_np = matrices(n, 2)
    a_ts, b_ts = ts.asarray(a_np, chunk_size=BLOCK), ts.asarray(b_np, chunk_size=BLOCK)
    return ((lambda: a_np @ b_np), (lambda: (a_ts @ b_ts).execute()), checksum)


WORKLOAD_FUNCS = {"add_mul": wl_add_mul, "add_mul_sum": wl_add_mul_sum, "pi": wl_pi, "pi_xx": wl_pi_xx,
                  "std_expr": wl_std_expr, "sgemm": wl_sgemm}


def run_rust(binary, workloads, sizes, repeat):
    """`tessera bench --no-python` for the same workloads and sizes: {workload: (median, value)},
    or a string saying why not."""
    if not binary or not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        return f"no tessera binary at {binary} (cargo build --release)"
    runs = {}  # Rust workload -> its size; pi_xx shares pi's row (they must share a size)
    for w in workloads:
        runs.setdefault(RUST_NAME.get(w, w), sizes[w])
    with tempfile.TemporaryDirectory(prefix="tessera-python-bench-") as out:
        cmd = [binary, "bench", "--no-python", "--backend", "cpu", "--repeat", str(repeat),
               "--out", out, "--workloads", ",".join(runs)]
        for w, n in runs.items():
            cmd += ["--size", f"{w}={n}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return f"tessera bench failed (exit {proc.returncode}): {last}"
        with open(os.path.join(out, "results.json")) as f:
            doc = json.load(f)
    rows = {r["workload"]: (r["tessera_s"], r["value"], r["size"]) for r in doc["rows"]}
    return {w: rows[RUST_NAME.get(w, w)][:2] for w in workloads
            if rows.get(RUST_NAME.get(w, w), (0, 0, None))[2] == sizes[w]}


# --------------------------------------------------------------------------------------------
# Per-call overhead of a small op
# --------------------------------------------------------------------------------------------

def overhead(ts, calls, repeat, seed):
    x_np = np.random.default_rng(seed).random(SMALL_N, dtype=np.float32)
    x_ts = ts.asarray(x_np)
    want = x_np + 1

    def per_call(op):
        def run():
            for _ in range(calls):
                op()
        times, _ = timed(run, repeat)
        return [t / calls * 1e6 for t in times]

    def lazy_execute():
        return (x_ts + 1).execute()

    rows = []
    rows.append(("numpy", per_call(lambda: x_np + 1), True))
    with ts.config(eager=True):
        ok = np.array_equal(np.asarray(x_ts + 1), want)
        rows.append(("tessera eager", per_call(lambda: x_ts + 1), ok))
    ok = np.array_equal(np.asarray(lazy_execute()), want)
    rows.append(("tessera lazy + execute", per_call(lazy_execute), ok))
    rows.append(("tessera lazy, record only", per_call(lambda: x_ts + 1), True))
    return rows


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def main(argv=None):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--workloads", default="all", help="comma list, or 'all' (default)")
    p.add_argument("--size", action="append", metavar="WORKLOAD=N",
                   help="size override (accepts 1e8); defaults: benches/harness.py's")
    p.add_argument("--repeat", type=int, default=5, help="timed runs after one warm-up")
    p.add_argument("--calls", type=int, default=2000, help="small-op calls per timed run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tessera-bin", default=os.path.join(root, "target", "release", "tessera"),
                   help="the CLI whose `bench` gives the Rust path (default target/release)")
    p.add_argument("--no-rust", action="store_true", help="skip the Rust path")
    p.add_argument("--json", default=os.path.join(root, "target", "bench", "python_bench.json"))
    args = p.parse_args(argv)
    if args.repeat < 1 or args.calls < 1:
        raise SystemExit("--repeat and --calls must be at least 1")

    workloads = harness.parse_list(args.workloads, WORKLOADS, "workload")
    sizes = {w: harness.DEFAULT_SIZES[RUST_NAME.get(w, w)][0] for w in workloads}
    for spec in args.size or []:
        w, _, v = spec.partition("=")
        if w not in WORKLOADS or not v:
            raise SystemExit(f"bad --size {spec!r}: want WORKLOAD=N")
        sizes[w] = harness.parse_count(v)
        if w == "pi" and "pi_xx" in sizes and f"pi_xx={v}" not in (args.size or []):
            sizes["pi_xx"] = sizes[w]  # same size as pi unless given

    try:
        import tessera as ts
    except ImportError as e:
        raise SystemExit(f"tessera does not import ({e}); install it: pip install ./python")
    backend = ts.set_backend("cpu")
    print(f"python {platform.python_version()}, numpy {np.__version__}, tessera backend "
          f"{backend}; host: {harness.cpu_description()}", flush=True)

    rust = "skipped (--no-rust)" if args.no_rust else run_rust(
        args.tessera_bin, workloads, sizes, args.repeat)
    if isinstance(rust, str):
        print(f"Rust path: {rust}")

    doc = {"date": time.strftime("%Y-%m-%d"), "host": harness.cpu_description(),
           "repeat": args.repeat, "workloads": [], "overhead": [],
           "rust_error": rust if isinstance(rust, str) else None}
    hdr = (f"{'workload':<12} {'size':>12} {'numpy med':>10} {'ts med':>10} {'ts min':>10} "
           f"{'rust med':>10} {'ts/numpy':>9} {'ts/rust':>8}  check")
    print(hdr)
    for w in workloads:
        n = sizes[w]
        run_np, run_ts, value_of = WORKLOAD_FUNCS[w](ts, n, args.seed)
        t_np, r_np = timed(run_np, args.repeat)
        v_np = value_of(r_np)
        r_np = None
        t_ts, r_ts = timed(run_ts, args.repeat)
        v_ts = value_of(r_ts)
        run_np = run_ts = r_ts = None  # drop the inputs before the next workload
        med_np, med_ts = statistics.median(t_np), statistics.median(t_ts)
        rust_s, rust_v = rust.get(w, (None, None)) if isinstance(rust, dict) else (None, None)
        checks = ["agrees with numpy" if agrees(w, n, v_ts, v_np)
                  else f"DISAGREES with numpy ({v_ts:.10g} vs {v_np:.10g})"]
        if rust_v is not None and not agrees(w, n, rust_v, v_np):
            checks.append(f"Rust path DISAGREES with numpy ({rust_v:.10g})")
        ratio_rust = med_ts / rust_s if rust_s else None
        if ratio_rust is not None:
            checks.append("within 5% of Rust" if ratio_rust <= WITHIN
                          else f"NOT within 5% of Rust ({(ratio_rust - 1) * 100:+.1f}%)")
        rec = {"workload": w, "size": n, "numpy_median_s": med_np, "numpy_min_s": min(t_np),
               "tessera_median_s": med_ts, "tessera_min_s": min(t_ts), "rust_median_s": rust_s,
               "numpy_value": v_np, "tessera_value": v_ts, "rust_value": rust_v,
               "tessera_over_rust": ratio_rust, "check": "; ".join(checks)}
        doc["workloads"].append(rec)
        print(f"{w:<12} {n:>12,} {med_np:>10.4f} {med_ts:>10.4f} {min(t_ts):>10.4f} "
              f"{harness.fmt(rust_s, '.4f'):>10} {med_np / med_ts:>8.2f}x "
              f"{harness.fmt(ratio_rust, '.3f'):>8}  {rec['check']}", flush=True)

    print(f"\nper-call overhead of x + 1 over {SMALL_N:,} f32 ({args.calls} calls per run, "
          f"median and min of {args.repeat} runs)")
    print(f"{'mode':<28} {'median us':>10} {'min us':>10} {'vs numpy':>9}  check")
    rows = overhead(ts, args.calls, args.repeat, args.seed)
    np_med = statistics.median(rows[0][1])
    for mode, us, ok in rows:
        med = statistics.median(us)
        doc["overhead"].append({"mode": mode, "elements": SMALL_N, "calls": args.calls,
                                "median_us": med, "min_us": min(us), "values_ok": ok})
        print(f"{mode:<28} {med:>10.2f} {min(us):>10.2f} {med / np_med:>8.1f}x  "
              f"{'values equal numpy' if ok else 'VALUES DIFFER from numpy'}")

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    tmp = f"{args.json}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, args.json)  # a failed write never leaves a complete-looking file
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)  # ours: named after this process
        raise
    print(f"\nwrote {args.json}")
    bad = [r for r in doc["workloads"] if "DISAGREES" in r["check"]]
    bad += [r for r in doc["overhead"] if not r["values_ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
