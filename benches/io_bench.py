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
    and peak RSS)."""
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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
t0 = time.perf_counter()
x = da.from_array(np.load(path, mmap_mode="r"), chunks=chunk)
with dask.config.set(scheduler="threads"):
    v = float(((x + 1) * 2).sum().compute())
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "value": v, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


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
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--json", default="target/bench/io_bench.json")
    a = ap.parse_args(argv)
    n = int(a.gb * 1e9) // 4
    path = os.path.join(a.dir, f"tessera-io-bench-{os.getpid()}.npy")
    rows = {}
    try:
        w = child(WRITE, path, n, CHUNK)
        size = os.path.getsize(path)
        rows["write"] = {"seconds": w["seconds"], "bytes_per_s": size / w["seconds"], "rss": w["rss"]}
        disk = disk_read_bandwidth(path, min(size, 8 << 30))
        rows["disk"] = {"bytes_per_s": disk}
        for name, code in [("tessera", READ_TS), ("dask", READ_DASK)]:
            if name == "dask" and a.no_dask:
                continue
            best = None
            for _ in range(a.repeat):
                r = child(code, path, CHUNK)
                if best is None or r["seconds"] < best["seconds"]:
                    best = r
            best["bytes_per_s"] = size / best["seconds"]
            best["of_disk"] = best["bytes_per_s"] / disk
            rows[name] = best
    finally:
        if not a.keep and os.path.exists(path):
            os.remove(path)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(f"file: {size / 1e9:.1f} GB float32 ({n:,} elements), RAM {mem / 2**30:.1f} GiB, chunks of {CHUNK:,}")
    print(f"write (ts.save of random draws): {rows['write']['seconds']:.1f} s, "
          f"{rows['write']['bytes_per_s'] / 1e9:.2f} GB/s, peak RSS {rows['write']['rss'] / 2**20:.0f} MiB")
    print(f"disk sequential read (dd iflag=direct): {disk / 1e9:.2f} GB/s")
    print(f"{'((x + 1) * 2).sum()':24} {'seconds':>9} {'GB/s':>7} {'of disk':>8} {'peak RSS':>10}  value")
    for name in ("tessera", "dask"):
        if name in rows:
            r = rows[name]
            print(f"{name:24} {r['seconds']:9.2f} {r['bytes_per_s'] / 1e9:7.2f} {r['of_disk']:8.0%} "
                  f"{r['rss'] / 2**20:8.0f} MiB  {r['value']:.6e}")
    if "dask" in rows:
        t, d = rows["tessera"], rows["dask"]
        agree = abs(t["value"] - d["value"]) <= 1e-3 * abs(d["value"])
        print(f"tessera vs dask: {d['seconds'] / t['seconds']:.2f}x faster, values {'agree' if agree else 'DIFFER'}")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"gb": a.gb, "n": n, "chunk": CHUNK, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
