"""The Ray executor's overhead, measured (BENCHMARKS.md, "Ray executor").

Runs on a local cluster it starts itself: a head node without CPUs (the driver's) and
`--workers` worker nodes, all on 127.0.0.1. Run it through scripts/ray_bench.sh, which puts it in
a loopback-only network namespace. Reports, each as the best of `--repeat` runs:

- the seed workloads through Ray against the same process run locally (the overhead ratio),
  bit-identical results checked;
- tasks per second and the time from `execute()` to the first task, for graphs of 10 to
  100,000 chunk tasks (`group_bytes=0`: one Ray task per chunk task; and with the default
  grouping, which merges tiny chunk tasks);
- the failover time: the same job with one worker node killed mid-job.

Prints a Markdown table and writes JSON to `--out`.
"""

import argparse
import json
import os
import shutil
import signal
import tempfile
import threading
import time

import numpy as np
import ray
from ray.cluster_utils import Cluster

import tessera as ts

SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def start(workers, cpus, store):
    tmp = tempfile.mkdtemp(prefix="tsrayb")
    c = Cluster(
        initialize_head=True,
        head_node_args=dict(
            num_cpus=0,
            node_ip_address="127.0.0.1",
            include_dashboard=False,
            temp_dir=tmp,
            _system_config=SYSTEM_CONFIG,
        ),
    )
    nodes = [
        c.add_node(num_cpus=cpus, node_ip_address="127.0.0.1", object_store_memory=store)
        for _ in range(workers)
    ]
    ray.init(address=c.address, _node_ip_address="127.0.0.1")
    return c, nodes, tmp


def best(f, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def workloads(scale):
    def add_mul():
        x = ts.random.default_rng(1).random(int(4e7 * scale), dtype="float32")
        return float(((x + 1) * 2).sum())

    def pi():
        u = ts.random.default_rng(2).random((2, int(5e7 * scale)))
        return float(4 * ((u[0] ** 2 + u[1] ** 2) < 1).mean())

    def std_expr():
        n = int(3000 * scale**0.5)
        a = ts.random.default_rng(3).random((n, n), dtype="float32")
        return float((a.dot(a.T) - a).std())

    def sort():
        x = ts.random.default_rng(4).random(int(1e7 * scale))
        return np.asarray(ts.sort(x))[:: int(1e5)]

    def svd():
        m = ts.random.default_rng(5).random((int(2e6 * scale), 32), dtype="float32")
        return np.asarray(ts.linalg.svd(m, compute_uv=False))

    def knn():
        x = ts.random.default_rng(6).random((int(2e4 * scale), 64), dtype="float32")
        d, i = ts.learn.NearestNeighbors(n_neighbors=10).fit(x).kneighbors(x[:2000])
        return np.asarray(i)

    return dict(add_mul=add_mul, pi=pi, std_expr=std_expr, sort=sort, svd=svd, knn=knn)


def failover_job(n=3600):
    """`(a @ a.T) * 0.5 - a` column stds over 900 x 900 f64 blocks: 64 block products."""
    with ts.config(chunk_size=900 * 900 * 8):
        a = ts.random.default_rng(11).random((n, n))
        return np.asarray(((a @ a.T) * 0.5 - a).std(axis=0))


def task_rate(chunks, group_bytes):
    """A sum over `chunks` chunks of 64 float64: `chunks` partial kernels plus the combine
    tree, as Ray tasks."""

    def f():
        with ts.config(chunk_size=512):
            x = ts.random.default_rng(9).random(chunks * 64)
            return float((x * 2).sum())

    ts.set_executor("ray", group_bytes=group_bytes)
    try:
        t = time.perf_counter()
        f()
        secs = time.perf_counter() - t
        st = ts.last_stats()
        return secs, st["tasks"], st["ray"]["first_task_after"], st["ray"]["submit_seconds"]
    finally:
        ts.set_executor("local")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus", type=int, default=1, help="CPUs per worker node")
    p.add_argument("--store", type=float, default=2e9, help="object store bytes per node")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--chunks", default="10,100,1000,10000,100000")
    p.add_argument("--out", default="ray-bench.json")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: workloads,rates,failover")
    args = p.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster, nodes, tmp = start(args.workers, args.cpus, int(args.store))
    res = {"workers": args.workers, "cpus_per_worker": args.cpus, "workloads": {}, "rates": []}
    try:
        # Start the worker processes first (a second or two each), outside every timing.
        ts.set_executor("ray", group_bytes=0)
        failover_job(1000)
        ts.set_executor("local")
        # Workloads: local (this process, all cores) against Ray (the worker nodes).
        skip = set(args.skip.split(","))
        for name, f in workloads(args.scale).items():
            if "workloads" in skip:
                break
            ts.set_executor("local")
            t_local, want = best(f, args.repeat)
            ts.set_executor("ray")
            t_ray, got = best(f, args.repeat)
            st = ts.last_stats()
            ts.set_executor("local")
            same = np.asarray(got).tobytes() == np.asarray(want).tobytes()
            res["workloads"][name] = dict(
                local_s=t_local, ray_s=t_ray, ratio=t_ray / t_local, same_bits=same,
                ray_tasks=st["ray"]["tasks"], chunk_tasks=st["ray"]["chunk_nodes"],
                bytes_between_nodes=sum(st["ray"]["bytes_by_link"].values()),
            )
            print(f"{name}: local {t_local:.3f} s, ray {t_ray:.3f} s ({t_ray / t_local:.2f}x), "
                  f"{st['ray']['tasks']} ray tasks, same bits: {same}", flush=True)
        for n in [int(c) for c in args.chunks.split(",")] if "rates" not in skip else []:
            for gb in (0, 4 << 20):
                secs, tasks, first, submit = task_rate(n, gb)
                res["rates"].append(dict(chunks=n, group_bytes=gb, seconds=secs, ray_tasks=tasks,
                                         tasks_per_s=tasks / secs, first_task_after=first,
                                         submit_seconds=submit))
                print(f"{n} chunks, group_bytes {gb}: {tasks} ray tasks in {secs:.2f} s "
                      f"({tasks / secs:.0f}/s; submitted in {submit:.2f} s), first task after "
                      f"{first:.3f} s", flush=True)
        # Failover: a job of several seconds with one worker node killed 1 s in.
        if "failover" not in skip:
            failover(res, nodes)
    finally:
        ts.set_executor("local")
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)


def failover(res, nodes):
    """The failover job, plain and with a worker node's raylet killed 1 s in."""
    ts.set_executor("ray")
    t_plain, want = best(failover_job, 1)
    pid = nodes[0].all_processes["raylet"][0].process.pid
    killer = threading.Timer(1.0, lambda: os.kill(pid, signal.SIGKILL))
    killer.start()
    t_fail, got = best(failover_job, 1)
    killer.join()
    ts.set_executor("local")
    same = got.tobytes() == want.tobytes()
    res["failover"] = dict(plain_s=t_plain, killed_s=t_fail, same_bits=same)
    print(f"failover: {t_plain:.2f} s without a fault, {t_fail:.2f} s with a node killed at "
          f"1 s; same bits: {same}", flush=True)


if __name__ == "__main__":
    main()
