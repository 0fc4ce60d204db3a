"""The worker's half of a remote run (what a Ray worker calls), without Ray: a session's runs go
to an in-process executor that hands every task its arguments as the object store does
(read-only numpy arrays), in each layout a worker may get. Fused kernels read C-ordered
arguments in place; other layouts and dtypes are copied; the bits equal the local run's."""

import numpy as np
import pytest

import tessera as ts
from tessera import _tessera


def _readonly(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _fortran(a):
    a = np.asfortranarray(a)
    a.flags.writeable = False
    return a


def _unaligned(a):
    """A copy whose buffer starts one byte into an allocation (not aligned for its type)."""
    a = np.ascontiguousarray(a)
    raw = np.empty(a.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    out.flags.writeable = False
    return out


LAYOUTS = {"c": _readonly, "fortran": _fortran, "unaligned": _unaligned}


def _executor(layout, calls):
    def run(plan):
        groups = plan.groups()
        values = [None] * len(groups)
        for g, (inputs, on_driver, _, _, _) in enumerate(groups):
            args = [values[k] for k in inputs]
            if on_driver:
                values[g] = plan.run_on_driver(g, args)
            else:
                shared = [[layout(f) for f in fields] for fields in args]
                values[g] = _tessera.run_task(plan.spec(g), shared, "cpu")
                calls.append(sum(len(f) for f in shared))
        return [values[g] for g in plan.output_groups]

    return run


def _programs(rng):
    x = rng.standard_normal((300, 40)).astype(np.float32)
    y = rng.standard_normal((300, 40))
    k = rng.integers(-50, 50, size=(300, 40), dtype=np.int64)
    b = x > 0

    def build():
        tx = ts.asarray(x, chunk_size=(64, 40))
        ty = ts.asarray(y, chunk_size=(64, 40))
        tk = ts.asarray(k, chunk_size=(64, 40))
        tb = ts.asarray(b, chunk_size=(64, 40))
        fused = (tx * 2 + 1).astype(ts.float64) - ty
        return [
            fused,  # elementwise over user data, then a reduction over the task outputs
            (fused * fused).sum(axis=0),
            ts.where(tb, tk, -tk).cumsum(axis=1),  # bool and int64 arguments, a scan
            ts.sort(tx, axis=1),  # a sort reads a copy
            (ts.sort(ty, axis=0)[::3] + 1.0).mean(axis=1),  # fused over a sort's output
        ]

    return build


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_worker_arguments_in_every_layout(layout, rng):
    build = _programs(rng)
    local = [np.asarray(t) for t in build()]
    calls = []
    _tessera.set_remote(_executor(LAYOUTS[layout], calls), 0)
    try:
        remote = [np.asarray(t) for t in build()]
    finally:
        _tessera.set_remote(None, 0)
    assert sum(calls) > 10, "tasks with arguments ran through the worker entry point"
    for i, (got, want) in enumerate(zip(remote, local)):
        assert got.dtype == want.dtype and got.shape == want.shape, i
        np.testing.assert_array_equal(got, want, err_msg=f"program {i}, {layout} arguments")
