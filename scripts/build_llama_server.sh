#!/usr/bin/env bash
# Build llama.cpp's native llama-server from the llama.cpp source vendored in the pinned
# llama-cpp-python sdist (same llama.cpp revision as the Python package; no other download).
#   ./scripts/build_llama_server.sh [--cuda]     ->  build/llama-server/bin/llama-server
# Skips the build when the binary is already there. About 8 minutes on 2 cores; with CUDA
# on 16 cores (H100 machine, one GPU architecture) 4 minutes.
# Offline machines: set LLAMA_CPP_SOURCE to an unpacked llama.cpp source folder (the sdist's
# vendor/llama.cpp) to build from it instead of downloading the sdist.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="0.3.36"
OUT="$ROOT/build/llama-server"
BIN="$OUT/bin/llama-server"
PY="${APPLIANCE_VENV:-$ROOT/.venv}/bin/python"
source "$ROOT/scripts/amx.sh"
NO_AMX="$(no_amx_flags)"  # scripts/amx.sh says why
CUDA=OFF
[ "${1:-}" = "--cuda" ] && CUDA=ON

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  if ! has_amx_kernels "$OUT/bin"; then
    echo "$BIN"
    exit 0
  fi
  echo "==> the llama-server built before holds AMX kernels, which crash on some CPUs: rebuilding it" >&2
  rm -rf "$OUT"
fi
command -v cmake >/dev/null || { echo "cmake is required (apt-get install cmake)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "${LLAMA_CPP_SOURCE:-}" ]; then
  [ -f "$LLAMA_CPP_SOURCE/CMakeLists.txt" ] || { echo "LLAMA_CPP_SOURCE=$LLAMA_CPP_SOURCE is not a llama.cpp source folder" >&2; exit 1; }
  src="$LLAMA_CPP_SOURCE"
else
  echo "==> fetching the llama-cpp-python $VERSION source" >&2
  "$PY" -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$work" >&2
  tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
fi
LOG="$ROOT/build/llama-server-build.log"
mkdir -p "$ROOT/build"
failed() { tail -n 25 "$LOG" >&2; echo "llama-server build failed (the end of the log is above; all of it: $LOG)" >&2; exit 1; }
echo "==> building llama-server (CUDA=$CUDA), a few minutes; log: $LOG" >&2
cmake -S "$src" -B "$OUT" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=ON -DGGML_CUDA="$CUDA" \
  -DCMAKE_C_FLAGS="$NO_AMX" -DCMAKE_CXX_FLAGS="$NO_AMX" >"$LOG" 2>&1 || failed
cmake --build "$OUT" --target llama-server -j"$(nproc)" >>"$LOG" 2>&1 || failed
"$BIN" --version >/dev/null 2>&1 || { echo "llama-server was built but does not run" >&2; exit 1; }
echo "$BIN"
