"""Options: the backend, the executor, chunk sizes, eager mode, fusion and memory budgets."""

import contextlib

from . import _tessera as _raw

_KEYS = (
    "eager",
    "fusion",
    "chunk_size",
    "device_budget",
    "host_budget",
    "disk_budget",
    "spill_dir",
    "devices",
    "executor",
)

ExecutorError = _raw.ExecutorError

# The executor later runs go to: 'local' (this process) or 'ray'.
_executor = {"name": "local"}


def set_executor(name="local", address=None, **options):
    """Where runs go: ``'local'`` (this process, the default) or ``'ray'``: the same tiled
    and fused chunk graph runs as Ray tasks across the cluster at ``address`` (``None``:
    Ray's default: a running local cluster, else a new one; ignored when Ray is already
    initialized). Options of the Ray executor: ``group_bytes`` (work up to which connected
    chunk tasks share one Ray task, default 4 MiB), ``num_cpus`` and ``num_gpus`` per task
    (``num_gpus=None``: 1 where the cluster has GPUs), ``max_retries`` (default 3) and
    ``gpu_backend`` ('auto', 'cuda' or 'wgpu') and ``scheduling`` ('DEFAULT', Ray's
    hybrid policy, or 'SPREAD': round-robin over the nodes). Memory budgets do not apply to Ray runs: Ray
    spills its object store. Returns the previous executor's name."""
    prev = _executor["name"]
    if name == "local":
        if prev == "ray":
            from . import _ray

            _ray.stop()
    elif name == "ray":
        from . import _ray

        _ray.start(address, **options)
    else:
        raise ValueError(f"executor must be 'local' or 'ray', got {name!r}")
    if name == "local" and options:
        raise TypeError(f"the local executor takes no options, got {sorted(options)}")
    _executor["name"] = name
    return prev


def _bytes(v, key):
    """A byte count: an int, or a string such as '64MiB', '2GB', '1e9'."""
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError(f"{key}: expected a byte count, got {v!r}")
    if isinstance(v, (int, float)):
        if v < 0 or v != v:
            raise ValueError(f"{key}: {v!r} is not a byte count")
        return int(v)
    s = str(v).strip()
    units = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
    num = s.rstrip("BbIiKkMmGgTt ")
    unit = s[len(num):].strip().lower().rstrip("b")
    try:
        n = float(num)
    except ValueError:
        raise ValueError(f"{key}: {v!r} is not a byte count") from None
    if unit and unit not in units:
        raise ValueError(f"{key}: unknown unit in {v!r}")
    n *= units.get(unit, 1)
    if n < 0 or n != n or n != int(n):
        raise ValueError(f"{key}: {v!r} is not a whole number of bytes")
    return int(n)


def get_config():
    """The current options as a dict (``chunk_size`` is the chunk byte budget)."""
    c = dict(_raw.get_config())
    c["chunk_size"] = c.pop("chunk_bytes")
    c["executor"] = _executor["name"]
    return c


def _apply(c):
    if c["executor"] != _executor["name"]:
        set_executor(c["executor"])
    _raw.set_config(
        bool(c["eager"]),
        bool(c["fusion"]),
        _bytes(c["chunk_size"], "chunk_size"),
        _bytes(c["device_budget"], "device_budget"),
        _bytes(c["host_budget"], "host_budget"),
        _bytes(c["disk_budget"], "disk_budget"),
        None if c["spill_dir"] is None else str(c["spill_dir"]),
        None if c["devices"] is None else int(c["devices"]),
    )


class config(contextlib.ContextDecorator):
    """Sets options now; as a context manager, restores the previous ones on exit.

    ``ts.config(chunk_size='64MiB', eager=False, fusion=True, device_budget=None,
    host_budget=None, disk_budget=None, spill_dir=None, devices=None, executor='local')``;
    an option left out keeps its value. ``chunk_size`` is the byte budget of automatically
    sized chunks; ``executor='ray'`` is ``set_executor('ray')`` with its defaults."""

    def __init__(self, **options):
        unknown = set(options) - set(_KEYS)
        if unknown:
            raise TypeError(f"config: unknown option(s) {sorted(unknown)}; known: {list(_KEYS)}")
        self._saved = get_config()
        new = dict(self._saved)
        new.update(options)
        _apply(new)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _apply(self._saved)
        return False


def set_backend(name="auto"):
    """Runs later work on ``name``: 'auto' (CUDA, else a hardware wgpu adapter, else the CPU),
    'cpu', 'wgpu' or 'cuda'. Returns the backend's name. Options carry over."""
    return _raw.set_backend(name)


def backends():
    """The backends compiled in: name -> None when usable here, else the reason it is not."""
    return {n: (None if ok else why) for n, ok, why in _raw.backends()}


def last_stats():
    """Statistics of the last run: tasks, peak bytes, tasks per op, chunks, seconds; under
    the Ray executor also ``ray``: Ray tasks, puts, seconds, the time to the first task, the
    nodes used and the bytes moved per link between nodes."""
    s = dict(_raw.last_stats())
    if _executor["name"] == "ray":
        from . import _ray

        s["ray"] = _ray.last_stats()
    return s
