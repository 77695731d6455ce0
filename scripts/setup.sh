#!/usr/bin/env bash
# Sets up dfptrain on Debian 12: installs the Debian packages that the build, the tests, the
# benchmarks and the main job need (only those missing; apt-get update once, only then), and
# builds everything in Release into build/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake make                  # toolchain (OpenMP comes with g++: libgomp)
  libdnnl-dev ocl-icd-opencl-dev  # oneDNN: FP32/bf16 primitives and baselines (its CMake config needs OpenCL)
  zlib1g-dev                      # gzip IDX files
  libturbojpeg0-dev pkg-config    # image folders (JPEG); CMake finds libturbojpeg with pkg-config
  nlohmann-json3-dev libcli11-dev # JSON output, command line
  libgtest-dev librapidcheck-dev  # tests, property tests
  libbenchmark-dev                # bench/
  libopenmpi-dev openmpi-bin      # data-parallel training (src/dist/): MPI library and mpirun
  clang-14 libclang-rt-14-dev     # fuzz/: libFuzzer with the address and UB sanitizers
  dataset-fashion-mnist           # the real data of the main job and of the end-to-end tests
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
