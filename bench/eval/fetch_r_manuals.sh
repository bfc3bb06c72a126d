#!/usr/bin/env bash
# The second evaluation corpus: six R manuals (R 4.2.2, Debian package r-doc-pdf), books
# no retrieval choice was tuned on. Their questions are bench/eval/questions_r_manuals.json;
# the pages there are this edition's, so the script checks every file's checksum.
#
#   bench/eval/fetch_r_manuals.sh            # -> bench/.cache/r-manuals/*.pdf
#   cd backend && ../.venv/bin/python -m app.evaluation \
#       --corpus ../bench/.cache/r-manuals --questions ../bench/eval/questions_r_manuals.json
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dest="${1:-$here/../.cache/r-manuals}"
version="4.2.2.20221110-2"
deb="r-doc-pdf_${version}_all.deb"
pool="https://deb.debian.org/debian/pool/main/r/r-base/$deb"

declare -A sha256=(
  [R-intro.pdf]=337ccd0b490b1e66f7e783b45f4588d0599730b4206c0c051edfe1419c568c51
  [R-lang.pdf]=4a6120ba505021d7c208078b575fe3f5d5dc91636dcf17de8a4208adda90d7dc
  [R-data.pdf]=9381a39ffeb8545a745c2618ba955b4ae4e10b9c8373cd5bc1984fff8318f8ca
  [R-FAQ.pdf]=de8768520d4fb90dad64c28483ffb92dca7dd9d8dc8556905b35c2e62a939255
  [R-admin.pdf]=50e256b5f873bbee4c8482df3754fa8654f02ef693409fe5e30b2f114e3efe9f
  [R-exts.pdf]=792220b273d40e8629664d5dd0d6ae4151419d14f613a949aebe85b8c2a1f85c
)

all_present() {
  for name in "${!sha256[@]}"; do
    [ -f "$dest/$name" ] && echo "${sha256[$name]}  $dest/$name" | sha256sum --check --status || return 1
  done
}

if all_present; then
  echo "R manuals already in $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "Downloading $deb (10 MB) ..."
if ! { command -v apt-get >/dev/null && apt-get download "r-doc-pdf=$version" >/dev/null 2>&1; }; then
  curl -fsSL -o "$deb" "$pool" || {
    echo "Could not download $deb (apt-get download, then $pool)." >&2
    echo "Get that file by any means, put it in $work, and run this script again." >&2
    exit 1
  }
fi
if command -v dpkg-deb >/dev/null; then
  dpkg-deb -x "$deb" unpacked
else  # any system with binutils' ar and tar
  ar x "$deb" && mkdir unpacked && tar -xf data.tar.* -C unpacked
fi

mkdir -p "$dest"
for name in "${!sha256[@]}"; do
  cp "unpacked/usr/share/R/doc/manual/$name" "$dest/$name"
  echo "${sha256[$name]}  $dest/$name" | sha256sum --check --quiet
done
echo "R manuals in $dest: ${!sha256[*]}"
