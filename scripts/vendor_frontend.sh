#!/usr/bin/env bash
# Refresh the browser UI's third-party files in frontend/vendor/ from the npm registry.
#
# Why vendored: the pod serves the UI with no Node.js and no build step, and offline
# (a pod behind a firewall, this CPU machine) the page must not need a CDN. Only
# maintainers run this script; the files it writes are committed.
set -euo pipefail

MARKED=18.2.1          # Markdown -> HTML
DOMPURIFY=3.4.18       # sanitises that HTML before it touches the page
HIGHLIGHT=11.12.0      # code highlighting (@highlightjs/cdn-assets: browser build)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/frontend/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "marked@$MARKED" "dompurify@$DOMPURIFY" "@highlightjs/cdn-assets@$HIGHLIGHT" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}"; tar xzf "$f" -C "${f%.tgz}"; done

mkdir -p "$DEST"
cp "marked-$MARKED/package/lib/marked.umd.js" "$DEST/marked.umd.js"
cp "marked-$MARKED/package/LICENSE.md" "$DEST/LICENSE.marked.md" 2>/dev/null || cp "marked-$MARKED/package/LICENSE" "$DEST/LICENSE.marked"
cp "dompurify-$DOMPURIFY/package/dist/purify.min.js" "$DEST/purify.min.js"
cp "dompurify-$DOMPURIFY/package/LICENSE" "$DEST/LICENSE.dompurify"
cp "highlightjs-cdn-assets-$HIGHLIGHT/package/highlight.min.js" "$DEST/highlight.min.js"
cp "highlightjs-cdn-assets-$HIGHLIGHT/package/styles/github.min.css" "$DEST/hljs-light.css"
cp "highlightjs-cdn-assets-$HIGHLIGHT/package/styles/github-dark.min.css" "$DEST/hljs-dark.css"
cp "highlightjs-cdn-assets-$HIGHLIGHT/package/LICENSE" "$DEST/LICENSE.highlightjs"
cat > "$DEST/VERSIONS" <<V
marked $MARKED
dompurify $DOMPURIFY
@highlightjs/cdn-assets $HIGHLIGHT
V
echo "frontend/vendor refreshed:"; cat "$DEST/VERSIONS"
