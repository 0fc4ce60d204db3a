#!/usr/bin/env bash
# The Ray executor's benchmark (benches/ray_bench.py) on a local cluster of its own, in a
# loopback-only network namespace (as scripts/ray_tests.sh). Arguments go to the script, e.g.
#   PYTHON=target/venv/bin/python scripts/ray_bench.sh --workers 2 --out target/bench/ray.json
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
USERNS=""
[ "$(id -u)" = 0 ] || USERNS="-r"
# shellcheck disable=SC2016
exec unshare $USERNS -n -- sh -c 'ip link set lo up && exec "$0" benches/ray_bench.py "$@"' "$PY" "$@"
