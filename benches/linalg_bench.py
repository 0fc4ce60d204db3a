#!/usr/bin/env python3
"""Linear algebra, Tessera beside NumPy (OpenBLAS/LAPACK) in the same run, same inputs.

Square n x n float64 (and float32) factorizations and solves through ``ts.linalg`` and
``np.linalg``; a tall-skinny SVD (TSQR when the rows span several chunks) checked by
reconstruction, ``U @ diag(S) @ Vt`` against the input. Best of --repeat runs after one
warm-up; each Tessera result is converted to numpy inside the timed region (so it is computed),
and compared with NumPy's where the result is unique.

Example:
  target/venv/bin/python benches/linalg_bench.py --n 2000 --tall 2000000x32
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import tessera as ts


def best(f, repeat):
    f()
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="side of the square matrices")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--tall", default="2000000x32", help="rows x cols of the tall-skinny SVD ('' to skip)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="comma list of cases to run")
    ap.add_argument("--json", default="target/bench/linalg_bench.json")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    n, dt = a.n, np.dtype(a.dtype)
    x = rng.standard_normal((n, n)).astype(dt)
    spd = (x @ x.T + n * np.eye(n)).astype(dt)
    sym = ((x + x.T) / 2).astype(dt)
    b = rng.standard_normal((n, 8)).astype(dt)
    tx, tspd, tsym, tb = (ts.asarray(v) for v in (x, spd, sym, b))
    cases = {
        "qr": (lambda: np.asarray(ts.linalg.qr(tx).R), lambda: np.linalg.qr(x).R, "abs"),
        "cholesky": (lambda: np.asarray(ts.linalg.cholesky(tspd)), lambda: np.linalg.cholesky(spd), "value"),
        "solve": (lambda: np.asarray(ts.linalg.solve(tx, tb)), lambda: np.linalg.solve(x, b), "value"),
        "inv": (lambda: np.asarray(ts.linalg.inv(tx)), lambda: np.linalg.inv(x), "value"),
        "eigh": (lambda: np.asarray(ts.linalg.eigvalsh(tsym)), lambda: np.linalg.eigvalsh(sym), "value"),
        "svd": (lambda: np.asarray(ts.linalg.svdvals(tx)), lambda: np.linalg.svd(x, compute_uv=False), "value"),
        "det": (lambda: float(ts.linalg.slogdet(tx).logabsdet), lambda: float(np.linalg.slogdet(x).logabsdet), "value"),
    }
    only = [c for c in a.only.split(",") if c]
    rows = {}
    print(f"n = {n}, {dt}, best of {a.repeat}; {os.cpu_count()} CPUs; numpy {np.__version__}")
    print(f"{'case':10} {'tessera s':>10} {'numpy s':>10} {'vs numpy':>9}  check")
    for name, (tf, nf, how) in cases.items():
        if only and name not in only:
            continue
        tt, tv = best(tf, a.repeat)
        nt, nv = best(nf, a.repeat)
        tv, nv = np.asarray(tv, dtype=np.float64), np.asarray(nv, dtype=np.float64)
        if how == "abs":
            tv, nv = np.abs(tv), np.abs(nv)
        err = float(np.max(np.abs(tv - nv)) / max(1.0, float(np.max(np.abs(nv)))))
        ok = err < (1e-3 if dt == np.float32 else 1e-7)
        rows[name] = {"tessera_s": tt, "numpy_s": nt, "rel_err": err, "agrees": ok}
        print(f"{name:10} {tt:10.3f} {nt:10.3f} {nt / tt:8.2f}x  {'agrees' if ok else 'DIFFERS'} ({err:.1e})",
              flush=True)
    if a.tall and (not only or "tall_svd" in only):
        m, k = (int(float(v)) for v in a.tall.split("x"))
        tall = rng.standard_normal((m, k)).astype(dt)
        chunk = max(k, (16 << 20) // (k * dt.itemsize))

        def tess():
            u, s, vt = ts.linalg.svd(ts.asarray(tall, chunk_size=(chunk, k)), full_matrices=False)
            return np.asarray(u), np.asarray(s), np.asarray(vt)

        tt, (u, s, vt) = best(tess, a.repeat)
        nt, (nu, ns, nvt) = best(lambda: np.linalg.svd(tall, full_matrices=False), a.repeat)
        rec = float(np.max(np.abs((u * s) @ vt - tall)))
        serr = float(np.max(np.abs(s - ns)) / ns[0])
        ok = rec < (1e-3 if dt == np.float32 else 1e-9) and serr < (1e-4 if dt == np.float32 else 1e-10)
        gbs = tall.nbytes / tt / 1e9
        rows["tall_svd"] = {"m": m, "k": k, "tessera_s": tt, "numpy_s": nt, "reconstruction": rec,
                            "s_rel_err": serr, "agrees": ok, "input_GB_per_s": gbs}
        print(f"tall svd {m}x{k} ({tall.nbytes / 1e9:.2f} GB, row blocks of {chunk}): tessera {tt:.3f} s "
              f"({gbs:.2f} GB/s of input), numpy {nt:.3f} s, {nt / tt:.2f}x; max |U S Vt - A| {rec:.1e}, "
              f"S rel err {serr:.1e} {'agrees' if ok else 'DIFFERS'}")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"n": n, "dtype": str(dt), "rows": rows}, f, indent=1)
    return 0 if all(r["agrees"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
