"""The Ray executor: the same tiled and fused chunk graph, run as Ray tasks across nodes.

The driver (this process) records, tiles and fuses as for a local run; the runtime cuts the
chunk graph into groups (``tessera.remote`` in Rust: a chunk kernel, or a small connected group
of them so that tiny chunks do not pay Ray's per-task cost each). Each group is one Ray task:
its spec (the chunk nodes' serde form) and the object refs of its input groups go to a worker,
which runs it on its best local backend through the extension module and returns the value as
numpy arrays in the object store. User data is put from the driver, once per array and chunk
while the array lives; writes to files run on the driver as their chunks arrive.

Ray does the rest: placement by locality of large arguments, GPUs as resources, task retries
and lineage reconstruction of lost objects, spilling under memory pressure. A task lost past
its retries raises :class:`tessera.ExecutorError` naming the chunk task; an error raised by a
kernel (an ``IndexError``, a ``LinAlgError``) reaches the caller as itself.
"""

import time

from . import _tessera as _raw

ExecutorError = _raw.ExecutorError

_DEFAULTS = {
    # Work (bytes read and written) up to which connected chunk tasks share one Ray task.
    "group_bytes": 4 << 20,
    # CPUs and GPUs each task asks for (None: 1 GPU when the cluster has GPUs, else 0).
    "num_cpus": 1,
    "num_gpus": None,
    # Ray's retries of a task whose worker or node died (lineage reconstruction re-runs
    # tasks whose outputs were lost, within the same limit).
    "max_retries": 3,
    # The backend a task with a GPU uses ('auto': CUDA, else wgpu); tasks without one use
    # the CPU backend.
    "gpu_backend": "auto",
    # Ray's scheduling strategy for the tasks: "DEFAULT" (Ray's hybrid policy: fill nodes
    # near the inputs first, spread when they are busy) or "SPREAD" (round-robin over nodes).
    "scheduling": "DEFAULT",
}

_state = {"options": dict(_DEFAULTS), "last": None, "task": None, "started": False}


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Ray executor needs Ray: pip install 'ray>=2.40' (on the driver and every node)"
        ) from e
    return ray


def _task(spec, backend, *args):
    """A Ray task: runs one group's chunk nodes here; returns the value and (node, start,
    end) for the run's statistics."""
    import ray

    from tessera import _tessera

    t0 = time.time()
    if backend != "cpu" and not ray.get_gpu_ids():
        backend = "cpu"
    out = _tessera.run_task(spec, list(args), backend)
    return out, (ray.get_runtime_context().get_node_id(), t0, time.time())


def _remote_task():
    if _state["task"] is None:
        _state["task"] = _ray().remote(_task)
    return _state["task"]


def start(address=None, **options):
    """Sends later runs to Ray: joins the cluster at ``address`` (``None``: Ray's default, a
    running local cluster or a new one) unless Ray is already initialized, and sets the
    executor's options (``group_bytes``, ``num_cpus``, ``num_gpus``, ``max_retries``,
    ``gpu_backend``, ``scheduling``)."""
    ray = _ray()
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"ray executor: unknown option(s) {sorted(unknown)}; known: {list(_DEFAULTS)}")
    opts = dict(_DEFAULTS)
    opts.update(options)
    if int(opts["group_bytes"]) < 0:
        raise ValueError(f"group_bytes must be at least 0, got {opts['group_bytes']}")
    if str(opts["scheduling"]).upper() not in ("DEFAULT", "SPREAD"):
        raise ValueError(f"scheduling must be 'DEFAULT' or 'SPREAD', got {opts['scheduling']!r}")
    opts["scheduling"] = str(opts["scheduling"]).upper()
    if not ray.is_initialized():
        ray.init(address=address)
        _state["started"] = True
    _state["options"] = opts
    _raw.clear_put_cache()
    _raw.set_remote(_run_plan, int(opts["group_bytes"]))


def stop():
    """Runs later work in this process again (a cluster this module started is shut down)."""
    _raw.set_remote(None, 0)
    _raw.clear_put_cache()
    _state["last"] = None
    if _state["started"]:
        _ray().shutdown()
        _state["started"] = False
    _state["task"] = None


def _lost(ray, plan, metas, error):
    """The ExecutorError for a run that failed in Ray, naming the first chunk task (in
    topological order) that failed."""
    for g, m in metas:
        ready, _ = ray.wait([m], timeout=0)
        if not ready:
            continue
        try:
            ray.get(m)
        except ray.exceptions.RayError as e:
            return ExecutorError(
                f"chunk task {g} of {len(plan)} ({plan.label(g)}) failed after "
                f"{_state['options']['max_retries']} retries: {type(e).__name__}: {e}"
            )
    return ExecutorError(f"the run failed in Ray: {type(error).__name__}: {error}")


def _run_plan(plan):
    """The session's runs come here (set by ``start``): submits every group of ``plan`` as a
    Ray task (driver groups run here) and returns the output groups' values."""
    ray = _ray()
    opts = _state["options"]
    t_start = time.time()
    groups = plan.groups()
    outputs = plan.output_groups
    num_gpus = opts["num_gpus"]
    if num_gpus is None:
        num_gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
    # rayon sizes its pool from RAYON_NUM_THREADS, not from Ray's OMP_NUM_THREADS.
    env = {"env_vars": {"RAYON_NUM_THREADS": str(max(1, int(opts["num_cpus"])))}}
    common = dict(num_returns=2, num_cpus=opts["num_cpus"], max_retries=int(opts["max_retries"]),
                  runtime_env=env, scheduling_strategy=opts["scheduling"])
    cpu_task = _remote_task().options(num_gpus=0, **common)
    # A task with device work asks for a GPU where the cluster has them; one made only of
    # steps the GPU backends run on the host (sorts, gathers, factorizations, combines) goes to
    # any CPU, so CPU-only nodes of a mixed cluster get work too.
    gpu_task = _remote_task().options(num_gpus=num_gpus, **common) if num_gpus else cpu_task
    uses = [0] * len(groups)
    for inputs, _, _, _, _ in groups:
        for k in inputs:
            uses[k] += 1
    keep = set(outputs)
    refs = [None] * len(groups)
    local = {}
    metas = []
    gpu_groups = set()
    tails = []
    puts = 0
    try:
        for g, (inputs, on_driver, _, _, device) in enumerate(groups):
            if on_driver:
                if inputs:
                    # A write: runs when the value it writes arrives.
                    tails.append(g)
                    continue
                ref = plan.cached_put(g)
                if ref is None:
                    value = plan.run_on_driver(g, [])
                    ref = ray.put(value)
                    plan.cache_put(g, ref)
                    puts += 1
                refs[g] = ref
            else:
                on_gpu = bool(num_gpus and device)
                task = gpu_task if on_gpu else cpu_task
                backend = opts["gpu_backend"] if on_gpu else "cpu"
                ref, meta = task.remote(plan.spec(g), backend, *[refs[k] for k in inputs])
                refs[g] = ref
                metas.append((g, meta))
                if on_gpu:
                    gpu_groups.add(g)
            for k in inputs:
                uses[k] -= 1
                if uses[k] == 0 and k not in keep:
                    # Ray holds it for the tasks that read it; the driver needs it no more.
                    refs[k] = None
        t_submitted = time.time()
        for g in tails:
            inputs = groups[g][0]
            args = ray.get([refs[k] for k in inputs])
            local[g] = plan.run_on_driver(g, args)
        remote_out = [g for g in outputs if g not in local]
        values = dict(zip(remote_out, ray.get([refs[g] for g in remote_out])))
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            # A kernel's own error (bad input): the caller sees it as a local run raises it.
            raise cause from None
        raise _lost(ray, plan, metas, e) from e
    except ray.exceptions.RayError as e:
        raise _lost(ray, plan, metas, e) from e
    # Not the plan itself: it holds the run's chunk graph (and a writer's sink, which must be
    # free once the run ends).
    _state["last"] = {
        "groups": groups,
        "outputs": outputs,
        "metas": metas,
        "gpu_groups": gpu_groups,
        "start": t_start,
        "submitted": t_submitted,
        "end": time.time(),
        "puts": puts,
        "driver_node": ray.get_runtime_context().get_node_id(),
    }
    return [local[g] if g in local else values[g] for g in outputs]


def last_stats():
    """The last Ray run: tasks, puts, seconds (and the driver's share submitting tasks), time
    from the run's start to its first task, the nodes that ran tasks, and the bytes moved per
    link between nodes (as placed)."""
    last = _state["last"]
    if last is None:
        return None
    ray = _ray()
    groups, metas = last["groups"], last["metas"]
    info = dict(zip([g for g, _ in metas], ray.get([m for _, m in metas])))
    driver = last["driver_node"]
    where = {g: info[g][0] if g in info else driver for g in range(len(groups))}
    links = {}
    for g, (inputs, _, _, _, _) in enumerate(groups):
        for k in inputs:
            a, b = where[k], where[g]
            if a != b:
                links[(a, b)] = links.get((a, b), 0) + groups[k][2]
    for g in set(last["outputs"]):
        if where[g] != driver:
            key = (where[g], driver)
            links[key] = links.get(key, 0) + groups[g][2]
    starts = [v[1] for v in info.values()]
    busy = sum(v[2] - v[1] for v in info.values())
    return {
        "tasks": len(metas),
        "groups": len(groups),
        "chunk_nodes": sum(n for _, _, _, n, _ in groups),
        "gpu_tasks": len(last["gpu_groups"]),
        # Where the GPU tasks and the CPU tasks ran.
        "gpu_task_nodes": sorted({info[g][0] for g in last["gpu_groups"]}),
        "cpu_task_nodes": sorted({info[g][0] for g in info if g not in last["gpu_groups"]}),
        "puts": last["puts"],
        "seconds": last["end"] - last["start"],
        # The driver's own time to submit every task (and put user data).
        "submit_seconds": last["submitted"] - last["start"],
        "first_task_after": (min(starts) - last["start"]) if starts else None,
        # Seconds the tasks' bodies ran on the workers, summed (the rest is Ray and transfers).
        "task_seconds": busy,
        "nodes": sorted({v[0] for v in info.values()}),
        "driver_node": driver,
        "bytes_by_link": links,
    }
