"""The question file: answerable questions with their pages, follow-up pairs, and
questions the materials do not answer. Every evidence phrase is checked against the
page it names, so a typo cannot silently make a question unanswerable."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Question:
    id: str
    question: str
    file: str
    pages: list[int]
    evidence: str
    # "dev": the questions every retrieval choice was measured on; "holdout": written
    # later from randomly drawn pages, to check that those choices generalise.
    split: str = "dev"


@dataclass
class FollowUp:
    id: str
    first: str
    follow_up: str
    file: str
    pages: list[int]
    evidence: str

    @property
    def target(self) -> Question:
        return Question(self.id, self.follow_up, self.file, self.pages, self.evidence)


@dataclass
class QuestionSet:
    answerable: list[Question]
    follow_ups: list[FollowUp]
    out_of_corpus: list[str]

    @classmethod
    def load(cls, path: Path) -> "QuestionSet":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # the older flat format: answerable questions only
            data = {"answerable": data}
        return cls(
            [Question(**q) for q in data.get("answerable", [])],
            [FollowUp(**f) for f in data.get("follow_ups", [])],
            [q["question"] for q in data.get("out_of_corpus", [])],
        )


def flat(text: str) -> str:
    """Whitespace- and case-insensitive form for phrase matching."""
    return " ".join(text.split()).lower()


def validate(questions: QuestionSet, corpus: Path) -> list[str]:
    """Problems with the file: a missing book, or evidence not on any listed page."""
    from app.ingestion.readers import read_document

    problems = []
    pages_of: dict[str, dict[int, str]] = {}
    for q in [*questions.answerable, *(f.target for f in questions.follow_ups)]:
        if q.file not in pages_of:
            path = corpus / q.file
            if not path.is_file():
                problems.append(f"{q.id}: {q.file} is not in {corpus}")
                pages_of[q.file] = {}
                continue
            pages_of[q.file] = {s.page: flat(s.text) for s in read_document(path).sections if s.page}
        if pages_of[q.file] and not any(flat(q.evidence) in pages_of[q.file].get(p, "") for p in q.pages):
            problems.append(f"{q.id}: evidence '{q.evidence}' not found on pages {q.pages} of {q.file}")
    return problems
