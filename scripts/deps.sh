#!/usr/bin/env bash
# Makes sure the Debian packages a tokenmix task needs are installed.
#   scripts/deps.sh test|demo|fuzz|bench|portability
# As root it installs what is missing with apt-get; otherwise it prints the exact install
# line and fails, so nothing is half-built on a machine that lacks a dependency.
set -euo pipefail

base=(cmake make g++ pkg-config libeigen3-dev nlohmann-json3-dev)
case "${1:-test}" in
  # libpng-dev: PNG input of the classify-image example (tested end to end).
  test)  packages=("${base[@]}" catch2 libpng-dev) ;;
  demo)  packages=("${base[@]}" libpng-dev) ;;
  fuzz)  packages=("${base[@]}" clang libclang-rt-14-dev) ;;
  # gcc and clang for the x86 cells, the aarch64 cross compiler and qemu-user to run its tests.
  portability) packages=("${base[@]}" catch2 clang g++-aarch64-linux-gnu qemu-user) ;;
  # Debian's oneDNN is built with its OpenCL GPU runtime, so its CMake package requires
  # OpenCL (we use only the CPU): without the two OpenCL packages the anchor is skipped.
  bench) packages=("${base[@]}" catch2 libbenchmark-dev libfftw3-dev libopenblas-dev
                   libdnnl-dev ocl-icd-opencl-dev opencl-c-headers python3-matplotlib
                   python3-numpy) ;;
  *) echo "usage: scripts/deps.sh test|demo|fuzz|bench|portability" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "tokenmix needs these Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get update && sudo $line" >&2
  exit 1
fi
echo "tokenmix: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; refresh them before installing.
apt-get update -qq
$line
