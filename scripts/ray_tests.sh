#!/usr/bin/env bash
# The Ray executor's tests (python/tests_ray) in a network namespace of their own whose only
# interface is loopback (brought up here): the test cluster binds 127.0.0.1 and can neither
# reach nor be reached from any other address. Without root, a user namespace maps us to root
# inside it (`unshare -r`). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
USERNS=""
[ "$(id -u)" = 0 ] || USERNS="-r"
# shellcheck disable=SC2016
exec unshare $USERNS -n -- sh -c 'ip link set lo up && exec "$0" -m pytest python/tests_ray -q -p no:cacheprovider "$@"' "$PY" "$@"
