"""Placement in a mixed cluster: one node with a GPU (declared to Ray), one without. Tasks
with device work ask for the GPU; tasks made only of steps the GPU backends run on the host
(sorts, combines, gathers) go to any CPU, so the CPU-only node gets work too."""

import numpy as np
import pytest

import tessera as ts

ray = pytest.importorskip("ray")

from conftest import LocalCluster  # noqa: E402


@pytest.fixture(scope="module")
def mixed():
    c = LocalCluster(workers=1, gpu_workers=1)
    try:
        yield c
    finally:
        c.shutdown()


def test_gpu_tasks_on_gpu_nodes_host_steps_anywhere(mixed):
    def program():
        with ts.config(chunk_size="256KiB"):
            x = ts.random.default_rng(12).random(400_000)
            return np.asarray(ts.sort(x)[::100]), np.asarray(((x + 1) * 2).sum())

    want = program()
    ts.set_executor("ray", group_bytes=0)
    try:
        got = program()
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()
    gpu_node = mixed.gpu_workers[0].node_id
    cpu_node = mixed.workers[0].node_id
    assert st["gpu_tasks"] > 0
    assert st["gpu_task_nodes"] == [gpu_node], "device work runs only where the GPU is"
    assert st["tasks"] > st["gpu_tasks"], "the sort's host steps are CPU tasks"
    assert cpu_node in st["cpu_task_nodes"], "the CPU-only node ran host steps"


def test_num_gpus_zero_runs_everything_on_cpus(mixed):
    ts.set_executor("ray", num_gpus=0, group_bytes=0)
    try:
        with ts.config(chunk_size="256KiB"):
            float((ts.random.default_rng(13).random(400_000) * 3).sum())
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    assert st["gpu_tasks"] == 0
    assert st["tasks"] > 0
    # With no GPU asked for, the GPU node runs no task as a GPU task (where Ray places the
    # CPU tasks, one node or both, is its choice).
    assert not st["gpu_task_nodes"]


def test_fractional_gpus_share_the_gpu_node(mixed):
    """``num_gpus=0.25``: four chunk tasks may share one GPU; device work still goes only to
    the node that has one, with the local run's bits."""

    def program():
        with ts.config(chunk_size="256KiB"):
            return np.asarray((ts.random.default_rng(14).random(400_000) * 3 - 1).sum())

    want = program()
    ts.set_executor("ray", num_gpus=0.25, group_bytes=0)
    try:
        got = program()
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    assert got.tobytes() == want.tobytes()
    assert st["gpu_tasks"] > 0
    assert st["gpu_task_nodes"] == [mixed.gpu_workers[0].node_id]
