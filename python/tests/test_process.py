"""Ctrl-C stops a run and leaves the session usable; fork and spawn after use."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import tessera as ts

LONG_RUN = textwrap.dedent(
    """
    import signal, sys, threading, time, os
    # Python installs its KeyboardInterrupt handler only when SIGINT is not ignored at start,
    # and a shell's background job (`cmd &` without job control) starts with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import tessera as ts
    ts.set_backend("cpu")
    g = ts.random.default_rng(0)
    # Long enough (tens of seconds) that the run is surely still going when the signal comes.
    x = g.random(8_000_000_000, dtype=ts.float32, chunk_size=4_000_000)
    print("ready", flush=True)
    t0 = time.time()
    try:
        float(((x * x + 1) ** 0.5).sum())
        print(f"finished {time.time() - t0:.3f} s", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted {time.time() - t0:.3f}", flush=True)
    # The session is usable afterwards.
    print("after", float(ts.arange(10).sum()), flush=True)
    """
)


def test_ctrl_c_stops_a_long_run_within_a_second():
    p = subprocess.Popen([sys.executable, "-c", LONG_RUN], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        sent = time.time()
        p.send_signal(signal.SIGINT)
        out = p.stdout.readline().strip()
        stopped = time.time() - sent
        assert out.startswith("interrupted"), out
        assert stopped < 1.5, f"took {stopped:.2f} s to stop"
        assert p.stdout.readline().strip() == "after 45.0"
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()


def _child_sum(q):
    try:
        q.put(float(ts.arange(5).sum()))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        q.put(f"{type(e).__name__}: {e}")


def test_fork_after_use_fails_clearly_and_spawn_works():
    assert float(ts.ones(4).sum()) == 4.0  # the parent has used tessera
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_sum, args=(q,))
    p.start()
    p.join(timeout=60)
    assert p.exitcode == 0, "the forked child hung or died"
    msg = q.get(timeout=5)
    assert isinstance(msg, str) and "spawn" in msg and "fork" in msg, msg
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child_sum, args=(q,))
    p.start()
    p.join(timeout=120)
    assert q.get(timeout=5) == 10.0


def test_gil_is_released_while_a_graph_runs():
    import threading

    x = ts.random.default_rng(2).random(20_000_000, dtype=ts.float32, chunk_size=2_000_000)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.time())
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        for _ in range(3):
            float((x * 2 + 1).sum())
    finally:
        done.set()
        t.join()
    assert len(ticks) > 10, "the Python thread could not run while the graph ran"
