"""Find a PDF's table-of-contents, back-of-book index and attribution pages, which are not indexed.

Why: a contents page is a list of every chapter title and an index page a list of
every term in the book, each with page numbers. Chunked and indexed, they match
questions by keyword but answer none, and a citation of "p. 322" (the index) sends a
student nowhere. Dropping dot-leader lines (normalize.py) catches most contents lines,
but not "3 A First Look at Interpretation 13", a title with its page number on the
next line, or an index ("comparison-based sorting, 218").

A page is judged by its lines, not by one heading: most of them must be entries (text
that ends in a page number, or a bare page number), and the entries must be in the
order such a list has: page numbers rising (contents) or terms alphabetical (index).
A page headed "Contents" or "Index", or following such a page, needs fewer entries,
so that the short last page of a list goes too; under a "Contents" heading a list of
short titles without page numbers (LibreTexts) is contents as well. Code listings and
tables of figures (lines that end in numbers too) fail the letters test below.
Connexions books close with "Attributions", a record per module ("Module:", "By:",
"URL:", "License:"): where the text came from, not what it says.
"""

from __future__ import annotations

import re

_ROMAN = r"[ivxlc]{1,7}"
_PAGE = rf"(?:\d{{1,4}}|{_ROMAN})"
_PAGE_RANGE = r"\d{1,4}(?:\s*[-–]\s*\d{1,4})?"
# "2.3 Types for Parsing 11", "Preface vi", "Hash tables ......... 42"
_CONTENTS_ENTRY = re.compile(
    rf"^(?P<title>.*?[^\W\d_].*?)(?:\s*(?:\.\s?){{2,}})?[\s.:]+(?P<page>{_PAGE})$", re.IGNORECASE
)
# A reference in an index: "218", "130-133", or a section and its page in parentheses,
# as Connexions books print them: "1.2.10(43)", "(3)".
_INDEX_REF = rf"(?:(?:\d{{1,3}}(?:\.\d{{1,3}})*\s*)?\(\d{{1,4}}\)|{_PAGE_RANGE})"
# "comparison-based sorting, 218", "child, 127, 130-133", "celebrity, see universal sink",
# "DRAM, 1.1.2(8), 1.1.7(20)" (the comma is required: "Machine A 41" is more often a table
# row than an index entry)
_INDEX_ENTRY = re.compile(
    rf"^(?P<title>[^\W\d_].*?),\s*(?:{_INDEX_REF}|see\b.*)(?:\s*,\s*{_INDEX_REF})*,?$",
    re.IGNORECASE,
)
# The references of a long entry wrapped onto the next line: "1.2.4(33), 1.2.5(34),"
_INDEX_CONTINUED = re.compile(rf"^(?=.*[(,]){_INDEX_REF}(?:\s*,\s*{_INDEX_REF})*,?$")
# A back-matter list of where each module came from and its licence (Connexions'
# "Attributions": "Module: ...", "By: ...", "URL: ...", "License: ...").
_ATTRIBUTION_LINE = re.compile(
    r"^(?:module|used here as|by|url|pages?|copyright|licen[cs]e|collection|edited by|attributions?)\s*:",
    re.IGNORECASE,
)
_MIN_ATTRIBUTION_SHARE = 0.6
_BARE_PAGE = re.compile(rf"^{_PAGE}$", re.IGNORECASE)
_CONTENTS_HEADING = re.compile(
    r"^(?:(?:table of|brief|detailed|short)\s+)?contents(?:\s+at a glance)?$"
    r"|^list of (?:figures|tables|listings|examples|algorithms|illustrations)$",
    re.IGNORECASE,
)
_INDEX_HEADING = re.compile(r"^(?:subject |general |author )?index(?: of keywords and terms)?$", re.IGNORECASE)
_HEADING_LINES = 3  # a heading may sit under a running header the furniture filter left

# On a page with no heading: at least this many lines, this share of them entries, ...
_MIN_LINES = 8
_MIN_SHARE = 0.6
# ... on a page under a heading or continuing a list: a lower share.
_MIN_SHARE_CONTINUED = 0.5
_MIN_SHARE_HEADED = 0.3
_MIN_ORDERED = 0.8  # share of neighbouring entries in order
_MIN_DISTINCT = 0.6  # distinct entry titles (a listing repeats its words on every line)
_MIN_LETTERS = 0.6  # letters among a title's non-space characters (code is digits and symbols)
# Under a contents heading, a list of titles without page numbers is contents too.
_TITLE_WORDS = 12
_MIN_TITLE_SHARE = 0.8


def _is_wordy(title: str) -> bool:
    chars = [c for c in title if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    has_word = re.search(r"[^\W\d_]{2,}", title) is not None
    return bool(chars) and letters / len(chars) >= _MIN_LETTERS and has_word


def _share_in_order(values: list) -> float:
    pairs = list(zip(values, values[1:]))
    return sum(b >= a for a, b in pairs) / len(pairs) if pairs else 1.0


def _distinct(titles: list[str]) -> float:
    keys = [re.sub(r"[\W\d_]+", " ", t).strip().lower() for t in titles]
    return len(set(keys)) / len(keys) if keys else 0.0


def _looks_like_contents(lines: list[str], min_share: float, min_lines: int, min_entries: int = 3) -> bool:
    """Entries are "Title 42" on one line, or a title (or author) line then "42" alone."""
    entry_lines: set[int] = set()
    numbers: list[int] = []
    one_line_titles: list[str] = []
    entries = 0
    for i, line in enumerate(lines):
        if _BARE_PAGE.match(line):
            if i == 0 or _BARE_PAGE.match(lines[i - 1]) or not _is_wordy(lines[i - 1]):
                continue  # a column of numbers, not entries
            entry_lines.update((i - 1, i))
            page = line
        elif (match := _CONTENTS_ENTRY.match(line)) and _is_wordy(match["title"]):
            entry_lines.add(i)
            one_line_titles.append(match["title"])
            page = match["page"]
        else:
            continue
        entries += 1
        if page.isdigit():
            numbers.append(int(page))
    return (
        len(lines) >= min_lines
        and len(entry_lines) / len(lines) >= min_share
        and entries >= min_entries
        and _share_in_order(numbers) >= _MIN_ORDERED
        and (len(one_line_titles) < 3 or _distinct(one_line_titles) >= _MIN_DISTINCT)
    )


def _looks_like_index(lines: list[str], min_share: float, min_lines: int) -> bool:
    titles = [m["title"] for line in lines if (m := _INDEX_ENTRY.match(line)) and _is_wordy(m["title"])]
    wrapped = sum(1 for line in lines if _INDEX_CONTINUED.match(line))
    initials = [t[0].lower() for t in titles]
    return (
        len(lines) >= min_lines
        and (len(titles) + wrapped) / len(lines) >= min_share
        and len(titles) >= 3
        and _share_in_order(initials) >= _MIN_ORDERED
        and _distinct(titles) >= _MIN_DISTINCT
    )


def _looks_like_title_list(lines: list[str], min_lines: int) -> bool:
    """A contents page without page numbers (LibreTexts): short title lines, no prose."""
    titles = [line for line in lines if len(line.split()) <= _TITLE_WORDS and not line.endswith(".")]
    return len(lines) >= min_lines and len(titles) / len(lines) >= _MIN_TITLE_SHARE


def _looks_like_attributions(lines: list[str], min_lines: int) -> bool:
    records = sum(1 for line in lines if _ATTRIBUTION_LINE.match(line))
    return len(lines) >= min_lines and records / len(lines) >= _MIN_ATTRIBUTION_SHARE


def _headed(lines: list[str], heading: re.Pattern[str]) -> bool:
    return any(heading.match(line) for line in lines[:_HEADING_LINES])


def find_contents_and_index_pages(pages: list[str]) -> set[int]:
    """0-based numbers of the pages that are a table of contents, an index or attributions."""
    found: set[int] = set()
    previous: str | None = None  # "contents", "titles" or "index" when the last page with text was one
    for number, text in enumerate(pages):
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        if not lines:
            continue
        kind = None
        if _looks_like_contents(lines, _MIN_SHARE, _MIN_LINES):
            kind = "contents"
        elif _looks_like_index(lines, _MIN_SHARE, _MIN_LINES):
            kind = "index"
        elif _looks_like_attributions(lines, 5):
            kind = "attributions"
        elif _headed(lines, _CONTENTS_HEADING) and _looks_like_contents(lines, _MIN_SHARE_HEADED, 3):
            kind = "contents"
        elif _headed(lines, _INDEX_HEADING) and _looks_like_index(lines, _MIN_SHARE_CONTINUED, 3):
            kind = "index"
        elif _headed(lines, _CONTENTS_HEADING) and _looks_like_title_list(lines, 5):
            kind = "titles"
        elif previous == "contents" and _looks_like_contents(lines, _MIN_SHARE_CONTINUED, 1, min_entries=2):
            kind = "contents"
        elif previous == "index" and _looks_like_index(lines, _MIN_SHARE_CONTINUED, 1):
            kind = "index"
        elif previous == "titles" and _looks_like_title_list(lines, 3):
            kind = "titles"
        if kind:
            found.add(number)
        previous = kind
    return found
