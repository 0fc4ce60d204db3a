#!/usr/bin/env python3
"""Arrays on disk: Tessera reading and writing .npy files chunk by chunk, beside Dask array on
the same files in the same run, and against the disk's own sequential read bandwidth.

Measured, each in a child process of its own (so that its peak RSS is its own):
  1. write: Tessera writes a float32 vector of --gb gigabytes (uniform random draws) with
     ``ts.save`` chunk by chunk; bytes per second.
  2. disk: the file's sequential read bandwidth with ``dd iflag=direct`` (page cache bypassed),
     the machine's measured limit for the reads below.
  3. read: ``float(((x + 1) * 2).sum())`` over the file, cold (the file's pages dropped from the
     page cache with posix_fadvise before each run), with x = ``ts.load(path)`` for Tessera and
     ``da.from_array(np.load(path, mmap_mode='r'), chunks=...)`` for Dask (threaded scheduler,
     the same chunk size). Time, bytes per second against the disk's, peak RSS.
  4. zarr read: the same vector as an uncompressed Zarr v3 array (written by Tessera from the
     .npy file, chunk by chunk), the same expression cold through ``ts.from_zarr`` and
     ``da.from_zarr``.
  5. zarr std: ``(a.dot(a.T) - a).std()`` over a --matrix x --matrix float32 Zarr array (zstd,
     chunks of 1000 x 1000), with ``a.dot(a.T)`` written to Zarr first and read back, Tessera
     under a host budget of a quarter of the matrix (--budget), Dask with its threaded scheduler.
NumPy itself is not run: ``(x + 1) * 2`` over a memory map allocates the whole result.

With --gb above the machine's RAM the file cannot sit in the page cache, and neither the file
nor any result is ever whole in memory. The file is removed at the end (--keep to keep it).

Example:
  target/venv/bin/python benches/io_bench.py --gb 32 --dir /var/tmp
  target/venv/bin/python benches/io_bench.py --gb 2
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHUNK = 1 << 24  # elements per chunk: 64 MiB of float32, both sides


def child(code, *args):
    """Runs `code` in a fresh Python; returns the JSON line it prints last (its own time, value
    and peak RSS), which is also printed at once so that a later failure loses nothing."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    last = out.strip().splitlines()[-1]
    print(f"  {code.strip().splitlines()[-4][:60]} ... -> {last}", flush=True)
    return json.loads(last)


WRITE = """
import json, sys, time, resource
import tessera as ts
path, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = ts.random.default_rng(0).random(n, dtype="float32", chunk_size=chunk)
t0 = time.perf_counter()
ts.save(path, x)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

DROP = """
import os
def drop(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
"""

READ_TS = DROP + """
import json, sys, time, resource
import tessera as ts
path, chunk = sys.argv[1], int(sys.argv[2])
drop(path)
t0 = time.perf_counter()
x = ts.load(path, chunk_size=chunk)
v = float(((x + 1) * 2).sum())
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

READ_DASK = DROP + """
import json, sys, time, resource
import numpy as np
import dask
import dask.array as da
path, chunk = sys.argv[1], int(sys.argv[2])
drop(path)
class Blocks:
    # A read-only memory map behind an object without .copy(): dask's from_array copies any
    # array-like that has one (a whole memory map into memory), so it gets this view instead.
    def __init__(self, m):
        self.m, self.shape, self.dtype, self.ndim = m, m.shape, m.dtype, m.ndim
    def __getitem__(self, key):
        return np.array(self.m[key])
t0 = time.perf_counter()
# name=False: a random name instead of hashing the object (which reads the whole file).
x = da.from_array(Blocks(np.load(path, mmap_mode="r")), chunks=chunk, name=False)
with dask.config.set(scheduler="threads"):
    v = float(((x + 1) * 2).sum().compute())
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


ZARR_WRITE = """
import json, sys, time, resource
import tessera as ts
src, dst = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
x = (ts.random.default_rng(0).random(int(src), dtype="float32", chunk_size=1 << 24)
     if src.isdigit() else ts.load(src))
ts.to_zarr(x, dst, compressor=None)
print(json.dumps({"seconds": time.perf_counter() - t0, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

DROP_TREE = DROP + """
import os
def drop_tree(root):
    for d, _, files in os.walk(root):
        for f in files:
            drop(os.path.join(d, f))
"""

ZARR_READ_TS = DROP_TREE + """
import json, sys, time, resource
import tessera as ts
path = sys.argv[1]
drop_tree(path)
t0 = time.perf_counter()
v = float(((ts.from_zarr(path) + 1) * 2).sum())
print(json.dumps({"seconds": time.perf_counter() - t0, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

ZARR_READ_DASK = DROP_TREE + """
import json, sys, time, resource
import dask
import dask.array as da
path = sys.argv[1]
drop_tree(path)
t0 = time.perf_counter()
with dask.config.set(scheduler="threads"):
    v = float(((da.from_zarr(path) + 1) * 2).sum().compute())
print(json.dumps({"seconds": time.perf_counter() - t0, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

MATRIX_WRITE = """
import sys
import tessera as ts
path, n = sys.argv[1], int(sys.argv[2])
a = ts.random.default_rng(1).random((n, n), dtype="float32", chunk_size=1000)
ts.to_zarr(a, path, chunks=(1000, 1000))
print("{}")
"""

STD_TS = """
import json, sys, time, resource
import tessera as ts
path, out, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
with ts.config(host_budget=budget, device_budget=budget // 2):
    a = ts.from_zarr(path)
    ts.to_zarr(a.dot(a.T), out)
    v = float((ts.from_zarr(out) - a).std())
print(json.dumps({"seconds": time.perf_counter() - t0, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

STD_DASK = """
import json, sys, time, resource
import dask
import dask.array as da
path, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
with dask.config.set(scheduler="threads"):
    a = da.from_zarr(path)
    a.dot(a.T).to_zarr(out)
    v = float((da.from_zarr(out) - a).std().compute())
print(json.dumps({"seconds": time.perf_counter() - t0, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def rmtree(path):
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path)


def disk_read_bandwidth(path, limit):
    """Bytes per second of `dd iflag=direct` over the first `limit` bytes of `path`."""
    bs = 16 << 20
    count = max(1, limit // bs)
    t0 = time.perf_counter()
    subprocess.run(
        ["dd", f"if={path}", "of=/dev/null", f"bs={bs}", f"count={count}", "iflag=direct"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return count * bs / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=2.0, help="file size in gigabytes (1e9 bytes)")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="folder for the file")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("--matrix", type=int, default=8000, help="side of the Zarr matrix (0: skip)")
    ap.add_argument("--no-zarr", action="store_true")
    ap.add_argument("--no-npy", action="store_true",
                    help="Zarr only: the Zarr vector written from random draws (half the disk space)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", default="target/bench/io_bench.json")
    a = ap.parse_args(argv)
    n = int(a.gb * 1e9) // 4
    path = os.path.join(a.dir, f"tessera-io-bench-{os.getpid()}.npy")
    rows = {}
    size = n * 4
    try:
        if a.no_npy:
            # The disk's bandwidth over a probe file of 4 GiB written with dd.
            probe = path + ".probe"
            subprocess.run(["dd", "if=/dev/zero", f"of={probe}", "bs=16M", "count=256", "oflag=direct"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            disk = disk_read_bandwidth(probe, 4 << 30)
            os.remove(probe)
        else:
            w = child(WRITE, path, n, CHUNK)
            size = os.path.getsize(path)
            rows["write"] = {"seconds": w["seconds"], "bytes_per_s": size / w["seconds"], "rss": w["rss"]}
            disk = disk_read_bandwidth(path, min(size, 8 << 30))
        rows["disk"] = {"bytes_per_s": disk}
        def best_of(key, cases, *args):
            for name, code in cases:
                if name == "dask" and a.no_dask:
                    continue
                best = None
                for _ in range(a.repeat):
                    r = child(code, *args)
                    if best is None or r["seconds"] < best["seconds"]:
                        best = r
                rows[f"{key}{name}"] = best

        def rate(*names):
            for name in names:
                if name in rows:
                    rows[name]["bytes_per_s"] = size / rows[name]["seconds"]
                    rows[name]["of_disk"] = rows[name]["bytes_per_s"] / disk

        if not a.no_npy:
            best_of("", [("tessera", READ_TS), ("dask", READ_DASK)], path, CHUNK)
            rate("tessera", "dask")
        if not a.no_zarr:
            zpath = path[:-4] + ".zarr"
            zw = child(ZARR_WRITE, n if a.no_npy else path, zpath)
            rows["zarr write"] = {"seconds": zw["seconds"], "bytes_per_s": size / zw["seconds"], "rss": zw["rss"]}
            best_of("zarr ", [("tessera", ZARR_READ_TS), ("dask", ZARR_READ_DASK)], zpath)
            rmtree(zpath)
            rate("zarr tessera", "zarr dask")
        if not a.no_zarr and a.matrix > 0:
            mpath = path[:-4] + "-matrix.zarr"
            child(MATRIX_WRITE, mpath, a.matrix)
            # A quarter of the matrix, and room for a matmul step of 1000 x 1000 blocks.
            budget = max(a.matrix * a.matrix * 4 // 4, 48 << 20)
            for name, code, extra in [("tessera", STD_TS, [budget]), ("dask", STD_DASK, [])]:
                if name == "dask" and a.no_dask:
                    continue
                out = path[:-4] + f"-gram-{name}.zarr"
                r = child(code, mpath, out, *extra)
                rmtree(out)
                rows[f"std {name}"] = r
            rmtree(mpath)
            rows["std budget"] = budget
    finally:
        if not a.keep and os.path.exists(path):
            os.remove(path)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"file: {size / 1e9:.1f} GB float32 ({n:,} elements), RAM {mem / 2**30:.1f} GiB, chunks of {CHUNK:,}")
    if "write" in rows:
        print(f"write (ts.save of random draws): {rows['write']['seconds']:.1f} s, "
              f"{rows['write']['bytes_per_s'] / 1e9:.2f} GB/s, peak RSS {rows['write']['rss'] / 2**20:.0f} MiB")
    print(f"disk sequential read (dd iflag=direct): {disk / 1e9:.2f} GB/s")
    print(f"{'((x + 1) * 2).sum()':24} {'seconds':>9} {'GB/s':>7} {'of disk':>8} {'peak RSS':>10}  value")
    def read_rows(*names):
        for name in names:
            if name in rows:
                r = rows[name]
                print(f"{name:24} {r['seconds']:9.2f} {r['bytes_per_s'] / 1e9:7.2f} {r['of_disk']:8.0%} "
                      f"{r['rss'] / 2**20:8.0f} MiB  {r['value']:.6e}")

    read_rows("tessera", "dask")
    if "zarr write" in rows:
        w = rows["zarr write"]
        src = "random draws" if a.no_npy else "the .npy file"
        print(f"zarr v3 uncompressed written from {src} by Tessera: {w['seconds']:.1f} s, "
              f"{w['bytes_per_s'] / 1e9:.2f} GB/s")
        read_rows("zarr tessera", "zarr dask")
    if "std tessera" in rows:
        n = a.matrix
        print(f"(a.dot(a.T) - a).std() over a {n} x {n} float32 Zarr array ({n * n * 4 / 1e9:.2f} GB), "
              f"a.dot(a.T) written to Zarr; Tessera's host budget {rows['std budget'] / 2**20:.0f} MiB")
        for name in ("std tessera", "std dask"):
            if name in rows:
                r = rows[name]
                print(f"{name:24} {r['seconds']:9.2f} s  peak RSS {r['rss'] / 2**20:8.0f} MiB  {r['value']:.6e}")
    for a_, b_ in [("tessera", "dask"), ("zarr tessera", "zarr dask"), ("std tessera", "std dask")]:
        if a_ in rows and b_ in rows:
            t, d = rows[a_], rows[b_]
            agree = abs(t["value"] - d["value"]) <= 1e-3 * abs(d["value"])
            print(f"{a_} vs {b_}: {d['seconds'] / t['seconds']:.2f}x faster, peak RSS "
                  f"{t['rss'] / 2**20:.0f} vs {d['rss'] / 2**20:.0f} MiB, values {'agree' if agree else 'DIFFER'}")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"gb": a.gb, "n": n, "chunk": CHUNK, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
