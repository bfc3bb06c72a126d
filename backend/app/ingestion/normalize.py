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
# A word split at a line end: PDFium marks the hyphen with U+0002 and drops the line
# break; other sources keep "-\n" (then only before a lower-case letter: not a list dash).
_LINE_END_HYPHEN = re.compile(r"([^\W\d_]+)(?:\x02\n?|-\n(?=[a-z]))([^\W\d_]+)")
_WORD_OR_COMPOUND = re.compile(r"(?<![\w-])[^\W\d_]+(?:-[^\W\d_]+)?(?![\w-])")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
# "Hash tables ........ 42" and "3.2 Sorting . . . . . 117": table-of-contents lines.
_DOT_LEADER = re.compile(r"(?:\.\s?){4,}\s*[\divxlcIVXLC]+\s*$")
_NUMBER_AT_EDGE = re.compile(r"^#\s*[|·•—–-]|[|·•—–-]\s*#$|^# \S|\S #$")
_BARE_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?[\divxlc]{1,6}(?:\s*(?:of|/)\s*\d+)?\s*$", re.IGNORECASE)


def _unified(text: str) -> str:
    """NFKC (ligature glyphs become letters), invisible characters gone, one kind of line break."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")


def hyphenated_compounds(texts: list[str]) -> frozenset[str]:
    """The words split at a line end that the document itself writes with a hyphen
    (more often than without) where no line ends: "comparison-based", "floating-point".

    Why: a hyphen at a line end is usually the typesetter's ("imple-mentation") and goes,
    but a compound broken at its own hyphen must keep it, or "floatingpoint" matches
    neither "floating" nor "point" in keyword search. The document's own spelling
    decides, so no dictionary or language is assumed; a split word the document never
    writes elsewhere is joined, as most are hyphenations."""
    text = _unified("\n".join(texts))  # the form normalize_text matches split words in
    split = {(a + b).lower(): f"{a}-{b}".lower() for a, b in _LINE_END_HYPHEN.findall(text)}
    if not split:
        return frozenset()
    counts = Counter(w.lower() for w in _WORD_OR_COMPOUND.findall(_LINE_END_HYPHEN.sub(" ", text)))
    return frozenset(compound for joined, compound in split.items() if counts[compound] > counts[joined])


def normalize_text(text: str, compounds: frozenset[str] = frozenset()) -> str:
    """NFKC, invisible characters removed, words split at line ends rejoined (keeping
    the hyphen of `compounds`), whitespace repaired; paragraphs kept."""
    text = _unified(text)

    def rejoin(m: re.Match) -> str:
        compound = f"{m.group(1)}-{m.group(2)}"
        return compound if compound.lower() in compounds else m.group(1) + m.group(2)

    text = _LINE_END_HYPHEN.sub(rejoin, text)
    text = _PDFIUM_SOFT_HYPHEN.sub("", text)  # any left (not between letters)
    text = _CONTROL.sub(" ", text)
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
