"""Indexing, reshaping and the other movement functions against numpy."""

import numpy as np
import pytest

import tessera as ts
from conftest import CHUNKS, close

KEYS = [
    (1,), (-1,), (slice(None, None, 2),), (slice(None, None, -1),), (slice(1, -1), 2),
    (Ellipsis, 1), (None, slice(1, 3)), (0, None, Ellipsis, slice(None, None, -2)),
    (slice(-2, None), slice(None), -3), (Ellipsis,), (slice(5, 1, -1), None, 0),
    (slice(100, -100, -3),),
]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("key", KEYS, ids=str)
def test_basic_indexing(rng, mode, key, chunk):
    x = rng.standard_normal((6, 5, 4))
    t = ts.asarray(x, chunk_size=chunk)
    close(t[key], x[key])


def test_index_errors(mode):
    t = ts.zeros((3, 4))
    with pytest.raises(IndexError):
        t[3].execute()
    with pytest.raises(IndexError):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t[..., ...]
    with pytest.raises(IndexError, match="did not match"):
        t[ts.asarray(np.array([True, False]))]
    with pytest.raises(IndexError, match="out of bounds"):
        t[np.array([0, 3])]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_setitem(rng, mode, chunk):
    x = rng.standard_normal((5, 6))
    t = ts.asarray(x, chunk_size=chunk)
    x[1:3, 2:] = 7.0
    t[1:3, 2:] = 7.0
    x[-1] = np.arange(6)
    t[-1] = ts.arange(6)
    x[..., 0] = -1
    t[..., 0] = -1
    close(t, x)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_movement_functions(rng, mode, chunk):
    x = rng.standard_normal((4, 3, 5))
    t = ts.asarray(x, chunk_size=chunk)
    close(t.reshape(12, 5), x.reshape(12, 5))
    close(t.reshape((-1,)), x.reshape(-1))
    close(t.T, x.T)
    close(t.mT, np.swapaxes(x, -1, -2))
    close(ts.permute_dims(t, (2, 0, 1)), np.transpose(x, (2, 0, 1)))
    close(ts.moveaxis(t, 0, -1), np.moveaxis(x, 0, -1))
    close(ts.flip(t, axis=1), np.flip(x, axis=1))
    close(ts.flip(t), np.flip(x))
    close(ts.roll(t, 2, axis=2), np.roll(x, 2, axis=2))
    close(ts.roll(t, -5), np.roll(x, -5))
    close(ts.roll(t, (1, 2), axis=(0, 1)), np.roll(x, (1, 2), axis=(0, 1)))
    close(ts.tile(t, (2, 1, 2)), np.tile(x, (2, 1, 2)))
    close(ts.tile(t, 2), np.tile(x, 2))
    close(ts.repeat(t, 3, axis=1), np.repeat(x, 3, axis=1))
    close(ts.repeat(t, 2), np.repeat(x, 2))
    close(ts.expand_dims(t, axis=(0, 4)), np.expand_dims(x, axis=(0, 4)))
    close(ts.squeeze(ts.expand_dims(t, 1), axis=1), x)
    close(ts.concat([t, t], axis=1), np.concatenate([x, x], axis=1))
    close(ts.stack([t, t + 1], axis=-1), np.stack([x, x + 1], axis=-1))
    close(ts.broadcast_to(t[:, :1], (4, 3, 5)), np.broadcast_to(x[:, :1], (4, 3, 5)))
    for u, v in zip(ts.unstack(t, axis=1), [x[:, i] for i in range(3)]):
        close(u, v)
    close(ts.tril(t, k=1), np.tril(x, k=1))
    close(ts.triu(t, k=-1), np.triu(x, k=-1))
    close(ts.diff(t, axis=0), np.diff(x, axis=0))
    close(ts.diff(t, n=2), np.diff(x, n=2))


def test_meshgrid_and_broadcast_arrays(mode):
    a, b = np.arange(3.0), np.arange(4.0)
    for idx in ("xy", "ij"):
        for u, v in zip(ts.meshgrid(ts.asarray(a), ts.asarray(b), indexing=idx),
                        np.meshgrid(a, b, indexing=idx)):
            close(u, v)
    r = ts.broadcast_arrays(ts.ones((3, 1)), ts.zeros((1, 4)))
    assert [x.shape for x in r] == [(3, 4), (3, 4)]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_matmul_family(rng, mode, chunk):
    a = rng.standard_normal((7, 5))
    b = rng.standard_normal((5, 6))
    ta, tb = ts.asarray(a, chunk_size=chunk), ts.asarray(b, chunk_size=chunk)
    close(ta @ tb, a @ b)
    close(np.matmul(ta, tb), a @ b)
    close(ts.tensordot(ta, tb, axes=1), np.tensordot(a, b, axes=1))
    close(ts.vecdot(ta, ta), np.sum(a * a, axis=-1))
    close(ts.matrix_transpose(ta), a.T)
    close(ta.dot(tb), a.dot(b))
    v = rng.standard_normal(5)
    close(ta @ ts.asarray(v), a @ v)
    close(a @ tb, a @ b)  # numpy array on the left defers to the tensor


def test_len_iter_and_scalars(mode):
    x = np.arange(12.0).reshape(3, 4)
    t = ts.asarray(x)
    assert len(t) == 3
    rows = [np.asarray(r) for r in t]
    assert all((r == x[i]).all() for i, r in enumerate(rows))
    assert float(t[1, 2]) == 6.0
    assert int(t[2, 3]) == 11
    assert bool(t[0, 1])
    assert t.sum().item() == 66.0
    assert t.tolist() == x.tolist()
    with pytest.raises(TypeError):
        float(t)
