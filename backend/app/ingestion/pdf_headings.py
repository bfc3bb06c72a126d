"""Section headings of a PDF without an outline, read from the size of its type.

Why: citations should name the section ("book.pdf, p. 118, 2.4.7 Memory Access
Patterns"), as they do for PDFs with an outline (bookmarks). A third of the corpus books,
and most slides and handouts exported from Word or PowerPoint, carry no outline, but
set their headings (and slide titles) in larger type than the text. So: the body size
is the size most of the text is set in; a short line set clearly larger, in a size used
for several headings but little text, is a heading; the larger, the higher the level.
Unlike outline headings these are not embedded with the text: guessed headings cost
dense retrieval more than they gave (docs/DESIGN.md).
"""

from __future__ import annotations

import ctypes
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

_MIN_RATIO = 1.15  # a heading's size over the body size
_MAX_WORDS = 14
_MAX_CHARS = 100
_MAX_LEVELS = 3
_MAX_SHARE = 0.2  # a heading size carries less than this share of the text (slides: titles carry more)
_MIN_USES = 3  # headings in a size before it counts as a level
_MAX_PAGES_PER_TEXT = 3  # the same line at heading size on more pages is a running header
_SUPERSCRIPT = 0.8  # characters smaller than this share of the line's size (footnote marks) are dropped
_SAMPLE = 40  # characters per line whose size is measured


@dataclass
class FontLine:
    """One line of a page as drawn: its raw text and the size of its type."""

    page: int
    position: int  # line number on the page
    text: str
    size: float  # in points, after the text matrix
    chars: int


def _char_size(raw, textpage, index: int) -> float:
    """The size a character is drawn at: its font size scaled by its text matrix."""
    size = raw.FPDFText_GetFontSize(textpage, index)
    matrix = raw.FS_MATRIX()
    if raw.FPDFText_GetMatrix(textpage, index, ctypes.byref(matrix)):
        size *= math.hypot(matrix.c, matrix.d) or 1.0
    return round(size * 2) / 2  # half points: the same style measures the same


def page_font_lines(textpage, page: int) -> list[FontLine]:
    """The lines of one page (a pypdfium2 PdfTextPage) with their type size."""
    import pypdfium2.raw as raw

    handle = textpage.raw
    count = raw.FPDFText_CountChars(handle)
    if count <= 0:
        return []
    buffer = ctypes.create_string_buffer((count + 1) * 2)
    got = raw.FPDFText_GetText(handle, 0, count, ctypes.cast(buffer, ctypes.POINTER(ctypes.c_ushort)))
    text = buffer.raw[: max(0, got - 1) * 2].decode("utf-16-le", errors="replace")
    if len(text) != count:  # characters outside the BMP shift indexes; skip such a page
        return []
    lines: list[FontLine] = []
    start = 0
    for end in [i for i, ch in enumerate(text) if ch in "\r\n"] + [count]:
        indexes = [i for i in range(start, end) if text[i].isalnum()]
        start = end + 1
        if not indexes:
            continue
        measured = {i: _char_size(raw, handle, i) for i in indexes[:_SAMPLE]}
        size = sorted(measured.values())[len(measured) // 2]
        if size <= 0:
            continue
        smallest = size * _SUPERSCRIPT
        kept = "".join(text[i] for i in range(indexes[0], end) if measured.get(i, size) >= smallest)
        lines.append(FontLine(page, len(lines), kept, size, len(indexes)))
    return lines


def _is_heading_text(text: str) -> bool:
    words = text.split()
    return (
        0 < len(words) <= _MAX_WORDS
        and len(text) <= _MAX_CHARS
        and re.search(r"[^\W\d_]{2,}", text) is not None
        and not text.endswith((".", ",", ";", ":"))
    )


def _key(text: str) -> str:
    return re.sub(r"\d+", "#", text.lower())


def font_headings(
    lines: list[FontLine], page_count: int, skip_pages: set[int], clean: Callable[[str], str]
) -> list[str | None]:
    """Per page, the heading path in force at its end ("2.3 Eliminating Clutter ›
    2.3.1 Introduction"); all None when no heading sizes stand out. Lines on
    `skip_pages` (contents, index) are not headings; `clean` normalizes a line's text."""
    weight: Counter[float] = Counter()
    for line in lines:
        weight[line.size] += line.chars
    if not weight:
        return headings_by_page({}, page_count)
    body = weight.most_common(1)[0][0]
    total = sum(weight.values())
    candidates = []
    for line in lines:
        rare_and_large = line.size >= body * _MIN_RATIO and weight[line.size] / total < _MAX_SHARE
        if line.page in skip_pages or not rare_and_large:
            continue
        text = clean(line.text)
        if _is_heading_text(text):
            candidates.append(FontLine(line.page, line.position, text, line.size, line.chars))
    pages_with: dict[str, set[int]] = {}
    for line in candidates:
        pages_with.setdefault(_key(line.text), set()).add(line.page)

    # A title wrapped over two lines is one heading.
    merged: list[FontLine] = []
    for line in candidates:
        if len(pages_with[_key(line.text)]) > _MAX_PAGES_PER_TEXT:
            continue  # a running header
        last = merged[-1] if merged else None
        if last and (last.page, last.size) == (line.page, line.size) and last.position + 1 == line.position:
            merged[-1] = FontLine(line.page, line.position, f"{last.text} {line.text}", line.size, line.chars)
        else:
            merged.append(line)
    # Levels: the largest sizes used for several headings (a cover title is not a level).
    uses = Counter(line.size for line in merged)
    sizes = sorted((size for size, n in uses.items() if n >= _MIN_USES), reverse=True)[:_MAX_LEVELS]
    level_of = {size: level for level, size in enumerate(sizes)}

    starts: dict[int, str] = {}
    trail: list[str] = []
    for line in merged:
        if line.size in level_of:
            trail = trail[: level_of[line.size]] + [line.text]
            starts[line.page] = " › ".join(trail)
    return headings_by_page(starts, page_count)


def headings_by_page(starts: dict[int, str], page_count: int) -> list[str | None]:
    """Each page's heading from the headings starting on some pages: the one starting on
    it, else the one in force from before (None before the first). Shared by the outline
    and the type-size readings."""
    result: list[str | None] = []
    for index in range(page_count):
        result.append(starts.get(index, result[-1] if result else None))
    return result
