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
from dataclasses import dataclass

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")  # C0 and C1 controls, never text
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
# Where a printed page number may sit in a page's first or last line.
_EDGE_NUMBERS = (re.compile(r"^(\d{1,4})$"), re.compile(r"^(\d{1,4})\s+\S"), re.compile(r"\S\s+(\d{1,4})$"))
# A running header with its page number: "Chapter 9: R Bugs 46" (two words or more before
# it), "242 | Do While Loop" (a separator after it: "1 Introduction" is a chapter's heading).
_NUMBERED_HEADER = (re.compile(r"^\S+\s+\S.*\s(\d{1,4})$"), re.compile(r"^(\d{1,4})\s*[|·•—–]\s*\S"))


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


@dataclass(frozen=True)
class PageNumbering:
    """A book's printed page numbers: physical index - `offset`, printed at `edges` (0 the
    first line, -1 the last) of the pages from index `first` to `last`."""

    offset: int
    edges: frozenset[int]
    first: int
    last: int

    def label(self, index: int) -> str | None:
        """The number printed on page `index`, where the book numbers its pages."""
        return str(index - self.offset) if self.first <= index <= self.last else None


def printed_page_numbers(pages: list[list[str]], min_share: float = 0.25) -> PageNumbering | None:
    """How far printed page numbers lag the physical ones, and at which edge they sit.

    Why: a running header is found by repetition, but a chapter of one or two pages
    repeats its "Chapter 9: R Bugs 46" too rarely; its page number gives it away. And a
    PDF without page labels can still be cited by the numbers printed on its pages. Each
    page votes for (its index - a number at the start or end of its first or last line);
    the offset at least `min_share` of the pages agree on is the book's. The edges that
    carry it on a quarter of those pages or more are kept, so a body line at the other
    edge is never taken for a header; None if no agreement.
    """
    if len(pages) < 6:
        return None
    votes: Counter[int] = Counter()
    at_edge: Counter[tuple[int, int]] = Counter()
    voters: dict[int, list[int]] = {}
    for index, lines in enumerate(pages):
        content = [ln.strip() for ln in lines if ln.strip()]
        if not content:
            continue
        found = {
            (index - int(m.group(1)), edge)
            for edge in (0, -1)
            for pattern in _EDGE_NUMBERS
            if (m := pattern.search(content[edge]))
        }
        for offset in {offset for offset, _ in found}:
            votes[offset] += 1
            voters.setdefault(offset, []).append(index)
        at_edge.update(found)
    if not votes:
        return None
    offset, count = votes.most_common(1)[0]
    if count < max(3, len(pages) * min_share):
        return None
    edges = frozenset(edge for edge in (0, -1) if at_edge[offset, edge] * 4 >= count)
    return PageNumbering(offset, edges, voters[offset][0], voters[offset][-1])


def _is_numbered_header(line: str, printed_number: int) -> bool:
    line = line.strip()
    return len(line) <= 120 and any(
        (m := pattern.match(line)) and int(m.group(1)) == printed_number for pattern in _NUMBERED_HEADER
    )


_WORK_IT_OUT = object()  # strip_page_furniture's default: find the page numbering itself


def strip_page_furniture(pages: list[str], edge_lines: int = 2, min_share: float = 0.3,
                         numbering: PageNumbering | None | object = _WORK_IT_OUT) -> list[str]:
    """Drop bare page numbers and lines repeated at the top/bottom of many pages.

    A line counts as furniture when it sits among the first or last `edge_lines`
    non-empty lines of at least `min_share` of the pages (books of 6+ pages only), or
    when it carries the page's printed number ("Title 46", "46 | Title") at the edge where
    the book prints its page numbers (`numbering`: worked out here unless given, None
    included: a caller that found none need not have it looked for again).
    """
    split = [[ln for ln in p.split("\n")] for p in pages]
    if numbering is _WORK_IT_OUT:
        numbering = printed_page_numbers(split)
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
    for index, lines in enumerate(split):
        content_idx = [i for i, ln in enumerate(lines) if ln.strip()]
        edge_idx = set(content_idx[:edge_lines] + content_idx[-edge_lines:])
        numbered_idx = {content_idx[edge] for edge in (numbering.edges if numbering else ()) if content_idx}
        kept = [
            ln
            for i, ln in enumerate(lines)
            if not (i in edge_idx and (_margin_key(ln) in furniture or _BARE_PAGE_NUMBER.match(ln)))
            and not (i in numbered_idx and _is_numbered_header(ln, index - numbering.offset))
        ]
        cleaned.append("\n".join(kept).strip())
    return cleaned


# A section number before or after a title in a running header: "§5.1 Hash Tables",
# "Linear Probing §5.2", "CHAPTER 11 FUNCTIONAL DEPENDENCIES • 63", "3.2. Sorting".
_TITLE_NUMBERING = re.compile(r"^(?:§\s*|chapter\s+|section\s+)?\d+(?:\.\d+)*\.?(?:\s+|$)|(?:^|\s+)§?\s*\d+(?:\.\d+)*\.?$",
                              re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")


def _title_key(text: str) -> str:
    """A title or header line compared on its words alone: numbering, case and
    punctuation dropped ("§5.1 Hash Tables" and "5 Hash Tables" -> "hashtables")."""
    text = text.strip()
    previous = None
    while previous != text:
        previous, text = text, _TITLE_NUMBERING.sub("", text).strip()
    return _NOT_ALNUM.sub("", text.lower())


def strip_running_titles(pages: list[str], headings: list[str | None], min_length: int = 4) -> list[str]:
    """Drop a page's first or last line when it only repeats the title of a section the
    page is inside of, one that started on an earlier page: a running header or footer.

    Why: LaTeX and many publishers print the chapter's or section's title at the top of
    every page ("§5.1 Hash Tables", "Linear Probing §5.2", "First Steps"). The title changes
    with each section, so it rarely repeats enough to count as furniture, and its page
    number may sit elsewhere; left in, every page of a section matches the section's
    words in keyword search and crowds out the passage that explains. `headings`: per
    page, the section path in force at its end ("Hash Tables › Linear Probing"), from the
    PDF outline or the type size; a section's title on the page where it starts is its
    heading, and stays."""
    first_page: dict[tuple[str, ...], int] = {}
    for index, heading in enumerate(headings):
        parts = heading.split(" › ") if heading else []
        for depth in range(1, len(parts) + 1):
            first_page.setdefault(tuple(parts[:depth]), index)
    cleaned = []
    for index, text in enumerate(pages):
        titles: set[str] = set()
        for heading in {headings[index], headings[index - 1] if index else None} - {None}:
            parts = heading.split(" › ")
            for depth in range(1, len(parts) + 1):
                key = _title_key(parts[depth - 1])
                if len(key) >= min_length and first_page[tuple(parts[:depth])] < index:
                    titles.add(key)
        lines = text.split("\n")
        content = [i for i, line in enumerate(lines) if line.strip()]
        edges = {content[0], content[-1]} if content and titles else set()
        kept = [line for i, line in enumerate(lines) if not (i in edges and _title_key(line) in titles)]
        cleaned.append("\n".join(kept).strip())
    return cleaned


def strip_lines(pages: list[str], lines: set[str] | frozenset[str]) -> list[str]:
    """Drop every line that is, case and spacing aside, one of `lines`: the bylines an
    outline gives away ("Dave Braunschweig" under each section's title), which name the
    author, not the topic, and would open the section's first passage."""
    drop = {" ".join(line.split()).casefold() for line in lines}
    return ["\n".join(ln for ln in text.split("\n") if " ".join(ln.split()).casefold() not in drop).strip()
            for text in pages]


_CODE_CHARACTERS = re.compile(r"[{}();=]")
_LINK = re.compile(r"\b(?:https?://|www\.)\S*")
_FOOTNOTE_MARK = re.compile(r"^\d{1,3}(?=[^\W\d_])")


def _boilerplate_key(line: str) -> str:
    """A line without its footnote mark and the numbers in its links, so that Connexions'
    "1This content is available online at <http://cnx.org/content/m32709/1.1/>." repeats.
    Other digits count: "case number 3" and "case number 4" are different sentences, and
    so are two links to different pages."""
    line = _LINK.sub(lambda link: re.sub(r"\d+", "#", link.group()), _FOOTNOTE_MARK.sub("", line.strip()))
    return " ".join(line.lower().split())


def strip_boilerplate_lines(pages: list[str], min_length: int = 30, min_share: float = 0.1,
                            min_pages: int = 8, max_share_of_text: float = 0.05) -> list[str]:
    """Drop sentences a book repeats on many of its pages, wherever on the page they sit.

    Why: the page-furniture filter looks at the top and bottom lines only, but some
    boilerplate sits among the footnotes or closes each chapter: Connexions books footnote
    every module with "This content is available online at <http://cnx.org/content/m32709/1.1/>."
    (78 of Severance's 288 pages), Pressbooks chapters end with the same reference list
    ("cnx.org: Programming Fundamentals - A Modular Structured Approach", 74 of Busbee's
    397). Left in, a question that shares their words matches dozens of pages that do not
    answer it. A line counts when, footnote marks and links aside, it repeats on `min_share`
    of the pages (and at least `min_pages`) and is long enough to be a sentence; code is
    kept ("public static void main(String[] args) {" on every page of a Java book is
    content). Boilerplate is a sliver of a book: when the repeats add up to more than
    `max_share_of_text` of its lines, they are what the document says (a form, a log), and
    all stay.
    """
    if len(pages) < min_pages:
        return pages
    split = [text.split("\n") for text in pages]
    # each line's key, once; None for a line too short to be a sentence, or code
    keys = [[_boilerplate_key(ln) if len(ln.strip()) >= min_length and not _CODE_CHARACTERS.search(ln)
             else None for ln in lines] for lines in split]
    counts = Counter(key for page in keys for key in set(page) - {None})
    threshold = max(min_pages, int(len(pages) * min_share))
    boilerplate = {key for key, n in counts.items() if n >= threshold}
    if not boilerplate:
        return pages
    dropped = sum(key in boilerplate for page in keys for key in page)
    if dropped > max_share_of_text * sum(1 for lines in split for ln in lines if ln.strip()):
        return pages
    return ["\n".join(ln for ln, key in zip(lines, page) if key not in boilerplate).strip()
            for lines, page in zip(split, keys)]
