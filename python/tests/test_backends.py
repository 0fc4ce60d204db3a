"""The same numpy programs on every backend the wheel has: CPU always; wgpu where an adapter is
present (Mesa's lavapipe in CI); CUDA where a driver is. A backend that is not usable here is
skipped with the reason the extension gives."""

import numpy as np
import pytest

import tessera as ts

BACKENDS = ["cpu", "wgpu", "cuda"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    have = ts.backends()
    if name not in have:
        pytest.skip(f"{name}: not compiled into this wheel")
    if have[name] is not None:
        pytest.skip(f"{name}: {have[name]}")
    ts.set_backend(name)
    try:
        yield name
    finally:
        ts.set_backend("auto")


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("chunk", [None, 128, (100, 48)])
def test_elementwise_and_reductions_match_numpy(backend, chunk):
    a = _data((300, 200), 1)
    b = _data((200,), 2)
    x = ts.asarray(a, chunk_size=chunk)
    y = ts.asarray(b)
    np.testing.assert_allclose(((x + 1) * 2).to_numpy(), (a + 1) * 2, rtol=1e-6)
    np.testing.assert_allclose((ts.exp(x) - x * y).to_numpy(), np.exp(a) - a * b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(((x + 1) * 2).sum(axis=0).to_numpy(), ((a + 1) * 2).sum(axis=0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(float(x.std()), float(a.astype(np.float64).std()), rtol=1e-4)
    assert int(ts.argmax(x[:, 3])) == int(np.argmax(a[:, 3]))
    np.testing.assert_array_equal(np.asarray(x[::-3, 5:40:7].T), a[::-3, 5:40:7].T)


def test_matmul_and_the_seed_expression_match_numpy(backend):
    a = _data((256, 256), 3)
    x = ts.asarray(a, chunk_size=64)
    want = a.astype(np.float64) @ a.T.astype(np.float64)
    np.testing.assert_allclose((x @ x.T).to_numpy(), want, rtol=1e-4, atol=1e-3)
    got = float((x.dot(x.T) - x).std())
    np.testing.assert_allclose(got, float((want - a).std()), rtol=1e-4)


def test_random_draws_are_the_cpus_bits(backend):
    # Random draws are bit-identical across backends and chunkings (Philox counters).
    got = ts.random.default_rng(7).random((1000, 30), dtype="float32", chunk_size=(300, 30)).to_numpy()
    ts.set_backend("cpu")
    want = ts.random.default_rng(7).random((1000, 30), dtype="float32").to_numpy()
    np.testing.assert_array_equal(got, want)
    assert 0.0 <= got.min() and got.max() < 1.0 and got.std() > 0.25


def test_executed_results_are_reused_on_the_backend(backend):
    a = _data((128, 128), 4)
    x = ts.asarray(a, chunk_size=64)
    b = (x @ x).execute()
    got = float((b + 1).sum())
    assert ts.last_stats()["per_op"].get("matmul", 0) == 0, ts.last_stats()
    np.testing.assert_allclose(got, float((a.astype(np.float64) @ a + 1).sum()), rtol=1e-3)
