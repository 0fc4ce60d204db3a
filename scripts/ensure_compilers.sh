#!/usr/bin/env bash
# A C and a C++ compiler, installed through apt where missing: the CPU backend compiles fused
# kernels with cc (backends/cpu/src/jit.rs), and the Zarr reader's blosc codec (c-blosc, with
# its snappy part in C++) is built from source by the blosc-src crate.
set -euo pipefail
command -v cc >/dev/null && command -v c++ >/dev/null && exit 0
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
for try in 1 2 3; do
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc g++ libc6-dev && exit 0
  sleep 10
done
echo "apt-get install of gcc and g++ failed" >&2
exit 1
