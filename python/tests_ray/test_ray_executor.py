"""The Ray executor on a local two-node cluster: programs from the conformance suite and the
seed workloads give the same bits as the local run; user data is put once while it lives;
kernel errors reach the caller as themselves; writes run on the driver."""

import numpy as np
import pytest

import tessera as ts

ray = pytest.importorskip("ray")


def bits(a):
    a = np.asarray(a)
    return a.dtype, a.shape, a.tobytes()


def run(program, executor, **options):
    ts.set_executor(executor, **options)
    try:
        with ts.config(chunk_size="64KiB"):
            out = program()
            if not isinstance(out, (tuple, list)):
                out = (out,)
            return [np.asarray(o) for o in out]
    finally:
        ts.set_executor("local")


def check_same(program, **options):
    want = run(program, "local")
    got = run(program, "ray", **options)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert bits(g) == bits(w), f"output {i}: {g!r} != {w!r}"
    return got


rng = np.random.default_rng(20261207)
DATA = rng.standard_normal((300, 200))
INTS = rng.integers(-50, 50, size=5000)


def elementwise_and_reductions():
    x = ts.random.default_rng(1).random((300, 200))
    y = (x + 1) * 2 - ts.sqrt(x)
    return y.sum(axis=0), x.std(), x.argmax(axis=1), ts.exp(-x).mean(axis=1), (x > 0.5).any(axis=0)


def user_data():
    a = ts.asarray(DATA)
    return (a * 3 + 1).max(axis=1), ts.cumsum(a, axis=0), a.T @ a


def sorting_and_searching():
    v = ts.asarray(INTS)
    x = ts.random.default_rng(2).random(40000)
    return (
        ts.sort(x),
        ts.argsort(v, stable=True),
        ts.unique(v),
        ts.nonzero(v > 40)[0],
        v[v < -45],
        ts.take(x, ts.asarray(INTS + 50)),
        ts.searchsorted(ts.sort(x), ts.asarray([0.1, 0.5, 0.9])),
    )


def seed_workloads():
    g = ts.random.default_rng(3)
    u = g.random((2, 200000))
    pi = 4 * ((u[0] ** 2 + u[1] ** 2) < 1).mean()
    a = g.random((400, 400), dtype="float32")
    std_expr = (a.dot(a.T) - a).std()
    add_mul = ((g.random(300000, dtype="float32") + 1) * 2).sum()
    return pi, std_expr, add_mul


def linear_algebra_and_knn():
    g = ts.random.default_rng(4)
    m = g.random((20000, 8))
    q, r = ts.linalg.qr(m)
    s = ts.linalg.svd(m, compute_uv=False)
    x = g.random((2000, 16), dtype="float32")
    d, i = ts.learn.NearestNeighbors(n_neighbors=5).fit(x).kneighbors(x[:300])
    return q, r, s, d, i


@pytest.mark.parametrize(
    "program",
    [elementwise_and_reductions, user_data, sorting_and_searching, seed_workloads, linear_algebra_and_knn],
)
def test_same_bits_as_local(cluster, program):
    check_same(program)


def test_group_budgets_give_the_same_bits(cluster):
    """No merging, and merging everything that fits 256 MiB: the same bits either way."""
    for gb in (0, 256 << 20):
        check_same(elementwise_and_reductions, group_bytes=gb)


def test_tasks_spread_and_stats(cluster):
    # SPREAD: round-robin over the nodes (Ray's default policy may keep a quick job on one).
    ts.set_executor("ray", group_bytes=0, scheduling="spread")
    try:
        with ts.config(chunk_size="64KiB"):
            x = ts.random.default_rng(5).random((2000, 500))
            float(((x + 1) * 2).sum())
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    assert st["tasks"] >= 30, st
    assert len(st["nodes"]) == 2, f"tasks ran on {st['nodes']}"
    assert st["driver_node"] not in st["nodes"], "the head node has no CPUs: no task runs there"
    assert st["first_task_after"] is not None and 0 <= st["first_task_after"] < st["seconds"]
    assert sum(st["bytes_by_link"].values()) > 0


def test_user_data_is_put_once_while_it_lives(cluster):
    # ts.array copies: Tessera's own immutable data (ts.asarray shares the numpy array, which
    # may change between runs: it is read and put on each run, as a local run reads it).
    a = ts.array(rng.standard_normal((256, 256)))
    ts.set_executor("ray")
    try:
        with ts.config(chunk_size="64KiB"):
            first = np.asarray((a * 2).sum(axis=0))
            puts_first = ts.last_stats()["ray"]["puts"]
            second = np.asarray((a + 5).max(axis=1))
            puts_second = ts.last_stats()["ray"]["puts"]
            b = ((a + 1) * 3).execute()
            third = np.asarray((b - a).sum())
            puts_third = ts.last_stats()["ray"]["puts"]
            fourth = np.asarray((b * 2).sum())
            puts_fourth = ts.last_stats()["ray"]["puts"]
    finally:
        ts.set_executor("local")
    assert puts_first >= 8, "256 x 256 f64 in 64 KiB chunks: several boxes"
    shared = ts.asarray(np.ones((256, 256)))
    ts.set_executor("ray")
    try:
        with ts.config(chunk_size="64KiB"):
            float(shared.sum())
            float(shared.sum())
            puts_shared = ts.last_stats()["ray"]["puts"]
    finally:
        ts.set_executor("local")
    assert puts_shared >= 8, "a shared numpy array is put again on every run"
    assert puts_second == 0, "the same array's boxes are in the object store already"
    assert puts_third > 0, "the kept result b is put on first use"
    assert puts_fourth == 0, "and reused afterwards"
    np.testing.assert_allclose(first, (np.asarray(a) * 2).sum(axis=0))
    np.testing.assert_allclose(second, (np.asarray(a) + 5).max(axis=1))
    np.testing.assert_allclose(third, 2 * np.asarray(a).sum() + 3 * 256 * 256, rtol=1e-9)
    np.testing.assert_allclose(fourth, 6 * np.asarray(a).sum() + 6 * 256 * 256, rtol=1e-9)


def test_kernel_errors_keep_their_type(cluster):
    ts.set_executor("ray")
    try:
        singular = ts.asarray(np.ones((4, 4)))
        with pytest.raises(np.linalg.LinAlgError):
            ts.linalg.inv(singular).execute()
        # The session is usable afterwards.
        assert float(ts.asarray(np.arange(10.0)).sum()) == 45.0
    finally:
        ts.set_executor("local")


def test_writes_run_on_the_driver(cluster, tmp_path):
    ts.set_executor("ray")
    try:
        with ts.config(chunk_size="64KiB"):
            x = ts.random.default_rng(6).random((500, 100))
            ts.save(tmp_path / "x.npy", x * 2)
            back = np.load(tmp_path / "x.npy")
    finally:
        ts.set_executor("local")
    with ts.config(chunk_size="64KiB"):
        want = np.asarray(ts.random.default_rng(6).random((500, 100)) * 2)
    assert bits(back) == bits(want)


def test_executor_options_are_checked(cluster):
    with pytest.raises(TypeError, match="unknown option"):
        ts.set_executor("ray", group_size=3)
    with pytest.raises(ValueError, match="executor must be"):
        ts.set_executor("dask")
    assert ts.get_config()["executor"] == "local"
    with ts.config(executor="ray"):
        assert ts.get_config()["executor"] == "ray"
        assert float(ts.asarray(np.arange(4.0)).sum()) == 6.0
    assert ts.get_config()["executor"] == "local"


def test_memory_pressure_spills_in_ray(cluster):
    """A job whose live chunks exceed every node's object store (200 MiB each): Ray spills
    them to disk and the result is the local run's."""

    def program():
        with ts.config(chunk_size="16MiB"):
            x = ts.random.default_rng(8).random(25_000_000)  # 200 MB of float64
            y = ts.sort(x)
            return np.asarray(y[::1000]), np.asarray((x * 2).sum())

    want = program()
    ts.set_executor("ray", group_bytes=0)
    try:
        got = program()
        st = ts.last_stats()["ray"]
    finally:
        ts.set_executor("local")
    for g, w in zip(got, want):
        assert bits(g) == bits(w)
    assert st["tasks"] > 10
    # The raylets log each spill ("Spilled N MiB, M objects").
    import glob

    logs = glob.glob(f"{cluster.tmp}/session_*/logs/raylet*.out")
    spilled = [ln for f in logs for ln in open(f, errors="replace") if "Spilled " in ln]
    assert spilled, f"no spill in the raylets' logs ({len(logs)} logs)"
