#!/usr/bin/env bash
# The main job (README): the headline workloads on the best backend present, beside NumPy (and
# CuPy where it imports) measured in the same run. Installs NumPy for the reference side.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import numpy" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check -r benches/requirements.txt \
    || echo "NumPy could not be installed: the table will say so" >&2
fi
scripts/ensure_compilers.sh
cargo run --release -- bench "$@"
# The Python rows: the same workloads written with `ts` in place of `np`, beside NumPy and the
# Rust path (benches/python_bench.py), when the package is installed in target/venv.
if [ -x target/venv/bin/python ] && target/venv/bin/python -c "import tessera" 2>/dev/null; then
  target/venv/bin/python benches/python_bench.py --repeat 5
else
  echo "Python rows skipped: tessera is not installed in target/venv (python3 -m venv target/venv && target/venv/bin/pip install ./python)"
fi
