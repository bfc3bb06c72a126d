"""Text clean-up shared by every reader.

Why: PDFs and word processors emit ligatures (U+FB01 "ﬁ"), soft hyphens, words split
across line ends, stray control characters and page furniture (running headers,
page numbers, dot-leader table-of-contents lines). Left in, they break keyword
search and waste the embedder's 256 word pieces on junk.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_PDFIUM_SOFT_HYPHEN = re.compile(r"\x02\n?")
_HYPHEN_BREAK = re.compile(r"(\w)-\n(?=[a-z])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# "Hash tables ........ 42" and "3.2 Sorting . . . . . 117": table-of-contents lines.
_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*[\divxlcIVXLC]+\s*$")
_NUMBER_AT_EDGE = re.compile(r"^#\s*[|·•—–-]|[|·•—–-]\s*#$|^# \S|\S #$")
_BARE_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?[\divxlc]{1,6}(?:\s*(?:of|/)\s*\d+)?\s*$", re.IGNORECASE)


def normalize_text(text: str) -> str:
    """NFKC, invisible characters removed, whitespace repaired; paragraphs kept."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    # PDFium marks a word hyphenated at a line end with U+0002 and drops the line break.
    text = _PDFIUM_SOFT_HYPHEN.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _HYPHEN_BREAK.sub(r"\1", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    lines = [line for line in lines if not _DOT_LEADER.search(line)]
    text = "\n".join(lines)
    return _MANY_BLANK_LINES.sub("\n\n", text).strip()


def _margin_key(line: str) -> str:
    """A running header/footer with its page number replaced, so repeats compare equal."""
    return re.sub(r"\d+", "#", line.lower()).strip()


def strip_page_furniture(pages: list[str], edge_lines: int = 2, min_share: float = 0.3) -> list[str]:
    """Drop bare page numbers and lines repeated at the top/bottom of many pages.

    A line counts as furniture when it sits among the first or last `edge_lines`
    non-empty lines of at least `min_share` of the pages (books of 6+ pages only).
    """
    split = [[ln for ln in p.split("\n")] for p in pages]
    furniture: set[str] = set()
    if len(pages) >= 6:
        counts: Counter[str] = Counter()
        for lines in split:
            content = [ln for ln in lines if ln.strip()]
            edges = content[:edge_lines] + content[-edge_lines:]
            counts.update({_margin_key(ln) for ln in edges if len(ln) <= 120})
        threshold = max(3, int(len(pages) * min_share))
        # A running header that carries the page number ("Sorting | 117") changes with
        # the chapter, so it repeats on fewer pages; three is enough when it is numbered.
        numbered_threshold = max(3, len(pages) // 100)
        furniture = {
            key
            for key, n in counts.items()
            if key and (n >= threshold or (n >= numbered_threshold and _NUMBER_AT_EDGE.search(key)))
        }
    cleaned = []
    for lines in split:
        content_idx = [i for i, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(content_idx[:edge_lines] + content_idx[-edge_lines:])
        kept = [
            ln
            for i, ln in enumerate(lines)
            if not (i in edge_idx and (_margin_key(ln) in furniture or _BARE_PAGE_NUMBER.match(ln)))
        ]
        cleaned.append("\n".join(kept).strip())
    return cleaned
