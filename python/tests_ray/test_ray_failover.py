"""Faults under the Ray executor: a worker node killed mid-job (its raylet, by its own pid) is
survived through Ray's retries and lineage reconstruction with the same bits; past the retry
limit the run raises ExecutorError naming the lost chunk task."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import tessera as ts

ray = pytest.importorskip("ray")

from conftest import LocalCluster  # noqa: E402


def job(n=2400):
    """64 products of 600 x 600 blocks and their sums (several seconds on two one-CPU nodes),
    with intermediate values spread over both workers."""
    with ts.config(chunk_size="2.9MB"):
        a = ts.random.default_rng(11).random((n, n))
        return np.asarray(((a @ a.T) * 0.5 - a).std(axis=0))


def kill_when_busy(cluster, node, delay):
    """Kills `node`'s raylet (SIGKILL, by pid) `delay` seconds from now."""
    pid = cluster.raylet_pid(node)

    def kill():
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=kill, daemon=True)
    t.start()
    return t


@pytest.fixture
def fresh():
    c = LocalCluster(workers=2)
    try:
        # Start the worker processes (a second or two each) so that the job's tasks start at
        # once and the node is killed while it runs them.
        ts.set_executor("ray", group_bytes=0)
        job(600)
        ts.set_executor("local")
        yield c
    finally:
        c.shutdown()


def test_node_lost_mid_job_same_bits(fresh):
    want = job()  # local
    # Round-robin placement: the node to be killed gets its share of the tasks from the start
    # (the job runs past the kill), so some are lost with it and retried elsewhere.
    ts.set_executor("ray", max_retries=3, scheduling="spread")
    t0 = time.time()
    killed = fresh.workers[0]
    killer = kill_when_busy(fresh, killed, 1.0)
    try:
        got = job()
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    killer.join()
    elapsed = time.time() - t0
    assert elapsed > 1.0, f"the job ended ({elapsed:.1f} s) before the node was killed"
    # (st["nodes"] lists the nodes of the tasks that returned: the killed node is there only
    # when one of its tasks finished before it died, which a slow machine may not reach.)
    assert st["tasks"] > 0 and st["nodes"], st
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    print(f"\nfailover: job with one node killed at 1 s took {elapsed:.1f} s; {st['tasks']} tasks")


def test_past_the_retry_limit_is_a_clear_error(fresh):
    ts.set_executor("ray", max_retries=0)
    killer = kill_when_busy(fresh, fresh.workers[1], 1.0)
    try:
        with pytest.raises(ts.ExecutorError, match=r"chunk task \d+ of \d+ \(.*\) failed after 0 retries"):
            job()
    finally:
        ts.set_executor("local")
    killer.join()
