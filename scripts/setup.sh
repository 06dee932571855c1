#!/usr/bin/env bash
# Installs the Debian packages modc needs (only those missing; `apt-get update`
# runs once, and only when something must be installed), then configures and
# builds modc incrementally in $MODC_BUILD_DIR (default: build/).
# MODC_SANITIZE=1 configures an ASan+UBSan build instead (default directory:
# build-sanitize/; see -DMODC_SANITIZE in CMakeLists.txt).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitize=${MODC_SANITIZE:-0}
if [ "$sanitize" = 1 ]; then
  build=${MODC_BUILD_DIR:-$root/build-sanitize}
else
  build=${MODC_BUILD_DIR:-$root/build}
fi
llvm=/usr/lib/llvm-22

packages=(build-essential cmake ninja-build python3 clang-22 llvm-22-dev llvm-22-tools
          libmlir-22-dev mlir-22-tools libgtest-dev libsentencepiece-dev fortunes
          python3-matplotlib ccache libopenblas-dev libomp-22-dev nlohmann-json3-dev
          libclang-rt-22-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The CUDA toolkit here ships no cuobjdump; the tests that inspect compiled
# cubins use NVIDIA's from PyPI, installed into the build directory.
cuda_root=${CUDA_ROOT:-/usr/local/cuda}
if [ -x "$cuda_root/bin/ptxas" ] && [ ! -x "$cuda_root/bin/cuobjdump" ] \
   && ! command -v cuobjdump >/dev/null && [ ! -x "$build/pip/nvidia/cu13/bin/cuobjdump" ]; then
  echo "setup: installing cuobjdump (PyPI nvidia-cuda-cuobjdump) into $build/pip"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  mkdir -p "$build"
  python3 -m pip install -q --disable-pip-version-check --target "$build/pip" nvidia-cuda-cuobjdump 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages --target "$build/pip" nvidia-cuda-cuobjdump
fi

# ccache makes rebuilds in a fresh clone (CI) cheap: paths under the source
# root are hashed relative to it, so clones in other directories share hits.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1
if [ ! -f "$build/build.ninja" ]; then
  echo "setup: configuring $build"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
    -DCMAKE_BUILD_TYPE=Release -DMODC_SANITIZE=$([ "$sanitize" = 1 ] && echo ON || echo OFF) \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DMLIR_DIR=$llvm/lib/cmake/mlir \
    -DLLVM_EXTERNAL_LIT=$llvm/bin/lit >"$build/configure.log" 2>&1 \
    || { cat "$build/configure.log"; exit 1; }
fi
echo "setup: building (ninja -C $build)"
start=$SECONDS
# Progress lines are dropped; a failed build ends the script (with pipefail
# the pipeline's status is ninja's; grep finding nothing to print is no error).
if ! ninja -C "$build" -j"${MODC_JOBS:-$(nproc)}" | { grep -v '^\[' || true; }; then
  echo "setup: build failed in $build" >&2
  exit 1
fi
echo "setup: build up to date ($((SECONDS - start)) s)"
