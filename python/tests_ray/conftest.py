"""A local Ray cluster for the Ray executor's tests: a head node that runs no tasks (the
driver's) and worker nodes of one CPU each, all on 127.0.0.1.

Run through scripts/ray_tests.sh, which puts the tests in a network namespace of their own
whose only interface is loopback: the cluster can reach nothing else and nothing else can
reach it. The cluster is stopped through its own handles (never `ray stop`, which would end
every Ray process of the machine)."""

import os
import shutil
import socket
import tempfile

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

import tessera as ts  # noqa: E402

# Node death is noticed in about 1.5 s instead of Ray's default 16 to 18 s.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def _loopback_only():
    """True when this process sees no network interface but loopback (the test namespace)."""
    names = [n for _, n in socket.if_nameindex()]
    return names == ["lo"]


def _check_namespace():
    if not _loopback_only() and os.environ.get("TESSERA_RAY_ANY_NETWORK") != "1":
        pytest.skip(
            "Ray tests run only in a loopback-only network namespace (scripts/ray_tests.sh); "
            f"this process sees interfaces {[n for _, n in socket.if_nameindex()]}"
        )


class LocalCluster:
    """A head node (no CPUs: the driver only), `workers` worker nodes of one CPU, and
    `gpu_workers` more that also declare one GPU to Ray (a resource only: this machine has
    none, so their tasks run the backend "auto" finds, the CPU)."""

    def __init__(self, workers, gpu_workers=0):
        _check_namespace()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.tmp = tempfile.mkdtemp(prefix="tsray")
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args=dict(
                num_cpus=0,
                node_ip_address="127.0.0.1",
                include_dashboard=False,
                temp_dir=self.tmp,
                _system_config=SYSTEM_CONFIG,
            ),
        )
        self.workers = [self.add_worker() for _ in range(workers)]
        self.gpu_workers = [self.add_worker(num_gpus=1) for _ in range(gpu_workers)]
        ray.init(address=self.cluster.address, _node_ip_address="127.0.0.1")

    def add_worker(self, num_gpus=0):
        return self.cluster.add_node(
            num_cpus=1,
            num_gpus=num_gpus,
            node_ip_address="127.0.0.1",
            object_store_memory=200 * 1024 * 1024,
        )

    def raylet_pid(self, node):
        return node.all_processes["raylet"][0].process.pid

    def shutdown(self):
        ts.set_executor("local")
        ray.shutdown()
        self.cluster.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = LocalCluster(workers=2)
    try:
        yield c
    finally:
        c.shutdown()
