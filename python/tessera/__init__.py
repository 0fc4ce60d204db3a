"""Tessera: numpy code, run as a lazy graph that is tiled into chunks, fused into kernels and
scheduled across GPU memory, host memory and disk.

    import tessera as ts
    a = ts.random.rand(4000, 4000, chunk_size=1000)
    print(float((a.dot(a.T) - a).std()))

Everything follows numpy's names and semantics (and the Array API standard, 2024.12); a tensor
is computed when it is converted (``np.asarray(t)``, ``float(t)``) or executed (``t.execute()``).
"""

import math as _math
import os as _os

from . import _tessera
from ._dtypes import (  # noqa: F401
    bool,
    can_cast,
    complex64,
    complex128,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)
from ._tensor import Tensor  # noqa: F401
from ._api import *  # noqa: F401,F403,E402
from ._api import Device, _device  # noqa: F401
from ._api import abs, all, any, max, min, pow, round, sum  # noqa: F401,A004
from ._io import load, save, fromfile, from_zarr, to_zarr  # noqa: F401
from ._config import config, get_config, set_backend, backends, last_stats  # noqa: F401
from ._config import set_executor, ExecutorError  # noqa: F401
from ._info import __array_namespace_info__  # noqa: F401
from . import random  # noqa: F401
from . import linalg  # noqa: F401
from . import learn  # noqa: F401

__array_api_version__ = "2024.12"

e = _math.e
inf = _math.inf
nan = _math.nan
pi = _math.pi
newaxis = None

ndarray = Tensor


def execute(*tensors):
    """Executes several tensors in one run (work they share is done once); returns them."""
    todo = [t for t in tensors if t._value is None]
    if todo:
        values = _tessera.execute_many([t._t for t in todo])
        if not _tessera.memory_budgeted():  # else the session holds them (see Tensor.execute)
            for t, v in zip(todo, values):
                t._value = v
    return tensors[0] if len(tensors) == 1 else tensors


# A child of fork() has none of the parent's worker threads: calls there raise a clear error
# instead of waiting forever for threads that do not exist (see the README).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_tessera._after_fork_in_child)
