"""The question file: answerable questions with their pages, follow-up pairs, and
questions the materials do not answer.

Why forgiving on the way in and strict about meaning: question files are written by
hand, by us and by people evaluating the appliance on their own books. Extra keys,
"page": 12 instead of "pages": [12], a missing id or a book named by its file name
alone are accepted; a missing question or file is an error that names the entry.
Every evidence phrase is checked against the page it names (`check`), so a typo
cannot silently turn a question into a miss."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path


class QuestionFileError(ValueError):
    """The question file cannot be used; the message names the entry and the fix."""


@dataclass
class Question:
    id: str
    question: str
    file: str
    pages: list[int]
    evidence: str = ""
    # "dev": the questions every retrieval choice was measured on; "holdout": written
    # later from randomly drawn pages, to check that those choices generalise.
    split: str = "dev"
    # In a file without pages (Markdown, HTML, Word): the sections (heading paths) whose
    # text holds the evidence phrase; filled in by `check`. They play the part a PDF's
    # listed pages play.
    sections: frozenset = frozenset()


@dataclass
class FollowUp:
    """A question asked after others in one conversation. `earlier`: the student's
    questions before it, oldest first ("first" in the file for one, "earlier" for several:
    a follow-up to a follow-up, or a new topic after an old one)."""

    id: str
    earlier: list[str]
    follow_up: str
    file: str
    pages: list[int]
    evidence: str = ""
    sections: frozenset = frozenset()

    @property
    def target(self) -> Question:
        return Question(self.id, self.follow_up, self.file, self.pages, self.evidence, sections=self.sections)


@dataclass
class OutOfCorpus:
    """A question the books do not answer: the chat should decline it. `split` groups
    them in the report (ours: "dev", far from the books' field, and "near": computing
    topics the books never cover, which share words with them)."""

    question: str
    split: str = "dev"


@dataclass
class QuestionSet:
    answerable: list[Question]
    follow_ups: list[FollowUp]
    out_of_corpus: list[OutOfCorpus]
    # follow-ups about the last answer with no subject of their own ("What is the worst
    # case?"): asked after each conversation's first question, they should be answered
    generic_follow_ups: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> QuestionSet:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise QuestionFileError(f"{path}: no such question file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise QuestionFileError(f"{path}: not valid JSON ({exc})") from None
        if isinstance(data, list):  # the older flat format: answerable questions only
            data = {"answerable": data}
        if not isinstance(data, dict):
            raise QuestionFileError(f"{path}: expected an object with 'answerable', 'follow_ups', 'out_of_corpus'")
        answerable = [_question(e, f"answerable[{i}]", f"q{i + 1:03d}")
                      for i, e in enumerate(data.get("answerable") or [])]
        follow_ups = [_follow_up(e, f"follow_ups[{i}]", f"f{i + 1:02d}")
                      for i, e in enumerate(data.get("follow_ups") or [])]
        outside = [OutOfCorpus(_text(e, "question", f"out_of_corpus[{i}]"), str(e.get("split") or "dev"))
                   if isinstance(e, dict) else OutOfCorpus(str(e))
                   for i, e in enumerate(data.get("out_of_corpus") or [])]
        generic = [_text({"question": e}, "question", f"generic_follow_ups[{i}]")
                   for i, e in enumerate(data.get("generic_follow_ups") or [])]
        if not answerable and not follow_ups and not outside:
            raise QuestionFileError(f"{path}: no questions in it")
        return cls(answerable, follow_ups, outside, generic)


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise QuestionFileError(f"{where}: needs '{key}' (text)")
    return value.strip()


def _pages(entry: dict, where: str) -> list[int]:
    """Physical page numbers (the PDF's 1st page is 1): "pages": [3, 4], "pages": 3 or "page": 3."""
    value = entry.get("pages", entry.get("page"))
    values = value if isinstance(value, list) else [value]
    try:
        pages = [int(v) for v in values if v is not None and str(v).strip() != ""]
    except (TypeError, ValueError):
        raise QuestionFileError(f"{where}: 'pages' must be page numbers, got {value!r}") from None
    if not pages and not entry.get("evidence"):
        raise QuestionFileError(f"{where}: needs 'pages' (physical page numbers) or an 'evidence' phrase")
    return pages


def _question(entry, where: str, default_id: str) -> Question:
    if not isinstance(entry, dict):
        raise QuestionFileError(f"{where}: expected an object, got {entry!r}")
    return Question(str(entry.get("id") or default_id), _text(entry, "question", where), _text(entry, "file", where),
                    _pages(entry, where), str(entry.get("evidence") or ""), str(entry.get("split") or "dev"))


def _follow_up(entry, where: str, default_id: str) -> FollowUp:
    if not isinstance(entry, dict):
        raise QuestionFileError(f"{where}: expected an object, got {entry!r}")
    if "earlier" in entry:
        earlier = entry["earlier"]
        if not (isinstance(earlier, list) and earlier
                and all(isinstance(q, str) and q.strip() for q in earlier)):
            raise QuestionFileError(f"{where}: 'earlier' must be a list of the questions asked before")
        earlier = [q.strip() for q in earlier]
    else:
        earlier = [_text(entry, "first", where)]
    return FollowUp(str(entry.get("id") or default_id), earlier,
                    _text(entry, "follow_up", where), _text(entry, "file", where), _pages(entry, where),
                    str(entry.get("evidence") or ""))


_NOT_LETTERS = re.compile(r"[\W_]+")


def phrase_key(text: str) -> str:
    """Letters and digits only, lower case: a phrase copied from a PDF viewer matches the
    extracted text whatever became of its ligatures, hyphens, quotes and line breaks
    ("ﬁle-based" and "file based" alike)."""
    return _NOT_LETTERS.sub("", unicodedata.normalize("NFKC", text).lower())


def contains_phrase(text: str, phrase: str) -> bool:
    key = phrase_key(phrase)
    return bool(key) and key in phrase_key(text)


# A section counts as the answer's place only when it is no longer than the three pages
# a PDF hit may come from (the listed page, one either side); a longer one, or text with
# no headings at all, is recognised by the evidence phrase alone.
MAX_SECTION_CHARS = 8000


def check(questions: QuestionSet, files: list[str], read_pages, read_sections=None) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the question file against the ingested books.

    Errors: a question's book is not among `files`. A book named by its file name alone
    is resolved to its path when only one file has that name. A question on a file
    without pages (Markdown, HTML, Word, text: `read_pages` puts their text under 0)
    needs an evidence phrase that is in the file; with `read_sections(file) -> [(heading,
    text)]` the sections holding it are noted on the question (`Question.sections`).
    Warnings: an evidence phrase on none of its listed pages (`read_pages(file) ->
    {page: text}`); such a question still counts by its pages."""
    errors: list[str] = []
    warnings: list[str] = []
    by_name: dict[str, list[str]] = {}
    for f in files:
        by_name.setdefault(Path(f).name.lower(), []).append(f)
    pages_of: dict[str, dict[int, str]] = {}
    for q in [*questions.answerable, *questions.follow_ups]:
        if q.file not in files:
            matches = by_name.get(Path(q.file).name.lower(), [])
            if len(matches) != 1:
                some = ", ".join(sorted(files)[:5]) + (" ..." if len(files) > 5 else "")
                errors.append(f"{q.id}: '{q.file}' is not among the books ({some or 'none'})")
                continue
            q.file = matches[0]
        if q.file not in pages_of:
            pages_of[q.file] = read_pages(q.file)
        pages = pages_of[q.file]
        if pages and not any(pages):  # read, and no page numbers in it
            if not q.evidence:
                errors.append(f"{q.id}: '{q.file}' has no pages (only PDFs do), so a passage from it can only be "
                              f"recognised by an 'evidence' phrase copied from the answer; add one")
            elif not contains_phrase(pages[0], q.evidence):
                errors.append(f"{q.id}: evidence '{q.evidence}' is not in {q.file} (which has no pages, so the "
                              f"phrase is the only way to recognise the answer)")
            elif read_sections is not None:
                q.sections = frozenset(heading for heading, text in read_sections(q.file)
                                       if heading and len(text) <= MAX_SECTION_CHARS
                                       and contains_phrase(text, q.evidence))
            continue
        if not q.evidence or not q.pages:
            continue
        if pages and not any(contains_phrase(pages.get(p, ""), q.evidence) for p in q.pages):
            warnings.append(f"{q.id}: evidence '{q.evidence}' not found on page(s) "
                            f"{', '.join(map(str, q.pages))} of {q.file}")
    return errors, warnings
