# Sourced by the scripts that build llama.cpp: keep its AMX kernels out.
#
# Why: llama.cpp built for the machine it compiles on (GGML_NATIVE, the default) turns on
# its AMX matrix kernels on Intel CPUs that report AMX (Sapphire Rapids and later), and
# on some of them, virtual machines among them, those kernels crash the first longer
# prompt with a segmentation fault (github.com/ggml-org/llama.cpp/issues/20824; on such a
# virtual machine the LLM server crashed on every answer). Without AMX, llama.cpp uses its
# AVX-512 or AVX2 kernels, as on every other CPU.

# The compiler flags that leave AMX out ("" where the compiler does not know them: not x86).
no_amx_flags() {
  local flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  if echo 'int x;' | "${CC:-cc}" $flags -x c -c -o /dev/null - >/dev/null 2>&1; then
    echo "$flags"
  fi
}

# Whether llama.cpp libraries under FOLDER (a llama-cpp-python install or a llama-server
# build) hold the AMX kernels: an installation from before this fix, or from a cached wheel.
has_amx_kernels() {
  grep -rqs --include='*.so*' --include='llama-server' ggml_backend_amx_mul_mat "$1"
}

# Reinstall llama-cpp-python==$2 into the Python at $1, compiled without AMX (CMAKE_ARGS: $3,
# e.g. "-DGGML_CUDA=on"); not from pip's wheel cache, whose wheel may be the build with AMX.
rebuild_llama_cpp_without_amx() {
  local flags
  flags="$(no_amx_flags)"
  CMAKE_ARGS="${3:-}" CFLAGS="$flags" CXXFLAGS="$flags" "$1" -m pip install --quiet --force-reinstall \
    --no-cache-dir --no-deps "llama-cpp-python==$2"
}

# The folder of the llama_cpp package the Python at $1 imports ("" when it has none).
llama_cpp_folder() {
  "$1" -c 'import importlib.util as u; s = u.find_spec("llama_cpp"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null
}
