#!/usr/bin/env bash
# Our evaluation corpora besides the nine textbooks: books no retrieval choice was tuned
# on, taken from Debian packages (exact versions: the questions' pages and evidence are
# theirs, so the package's checksum is checked).
#
#   bench/eval/fetch_corpus.sh r-manuals     # six R 4.2.2 manuals (PDF)  -> bench/.cache/r-manuals/
#   bench/eval/fetch_corpus.sh python-docs   # Python 3.11 tutorial and HOWTOs (HTML) -> bench/.cache/python-docs/
#   bench/eval/fetch_corpus.sh NAME DEST     # somewhere else
#
# Then, from backend/:
#   ../.venv/bin/python -m app.evaluation --corpus ../bench/.cache/r-manuals \
#       --questions ../bench/eval/questions_r_manuals.json
#   ../.venv/bin/python -m app.evaluation --corpus ../bench/.cache/python-docs --types html \
#       --questions ../bench/eval/questions_python_docs.json
set -euo pipefail

name="${1:-}"
case "$name" in
  r-manuals)
    package=r-doc-pdf version=4.2.2.20221110-2 pool=r/r-base
    sha256=beb104ad5818d261f280a868294645ca31d7c63365f2c9a55aa3ca9aad5aa71d
    inside=usr/share/R/doc/manual
    files=(R-intro.pdf R-lang.pdf R-data.pdf R-FAQ.pdf R-admin.pdf R-exts.pdf) ;;
  python-docs)
    package=python3.11-doc version=3.11.2-6+deb12u9 pool=p/python3.11
    sha256=5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be
    inside=usr/share/doc/python3.11/html
    files=(tutorial/*.html howto/*.html) ;;
  *)
    echo "usage: $0 r-manuals|python-docs [DEST]" >&2
    exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
dest="${2:-$here/../.cache/$name}"
deb="${package}_${version}_all.deb"

if [ -f "$dest/.fetched" ] && [ "$(cat "$dest/.fetched")" = "$sha256" ]; then
  echo "$name already in $dest"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "Downloading $deb ..."
if ! { command -v apt-get >/dev/null && apt-get download "$package=$version" >/dev/null 2>&1; }; then
  for archive in debian/pool/main debian-security/pool/updates/main; do
    curl -fsSL -o "$deb" "https://deb.debian.org/$archive/$pool/${deb//+/%2B}" 2>/dev/null && break
  done
  [ -s "$deb" ] || {
    echo "Could not download $deb (apt-get download, then deb.debian.org)." >&2
    echo "It may have left the archive; snapshot.debian.org keeps every version." >&2
    exit 1
  }
fi
echo "$sha256  $deb" | sha256sum --check --quiet || { echo "$deb is not the expected file" >&2; exit 1; }
if command -v dpkg-deb >/dev/null; then
  dpkg-deb -x "$deb" unpacked
else  # any system with binutils' ar and tar
  ar x "$deb" && mkdir unpacked && tar -xf data.tar.* -C unpacked
fi

mkdir -p "$dest"
cd "unpacked/$inside"
for pattern in "${files[@]}"; do
  for f in $pattern; do
    mkdir -p "$dest/$(dirname "$f")"
    cp "$f" "$dest/$f"
  done
done
echo "$sha256" > "$dest/.fetched"
echo "$name in $dest ($(find "$dest" -type f ! -name .fetched | wc -l) files)"
