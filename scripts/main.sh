#!/usr/bin/env bash
# The main job (README): the headline workloads on the best backend present, beside NumPy (and
# CuPy where it imports) measured in the same run. Installs NumPy for the reference side.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import numpy" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r benches/requirements.txt \
    || echo "NumPy could not be installed: the table will say so" >&2
fi
cargo run --release -- bench "$@"
