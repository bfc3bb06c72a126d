"""What counts as finding the answer, and the usual ranking measures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.evaluation.questions import Question, contains_phrase

if TYPE_CHECKING:  # only a type here: the metrics stay importable without the storage stack
    from app.retrieval.sources import Source


def is_hit(question: Question, source: Source) -> bool:
    """A chunk of the right file within one page of a listed page, or, in a file without
    pages, from the section that holds the evidence phrase; or one that contains the
    evidence phrase."""
    if source.file != question.file:
        return False
    if source.page_start is not None:
        end = source.page_end if source.page_end is not None else source.page_start
        if any(source.page_start - 1 <= p <= end + 1 for p in question.pages):
            return True
    elif source.heading is not None and source.heading in question.sections:
        return True
    return contains_phrase(source.text, question.evidence)


def first_hit_rank(question: Question, sources: list[Source]) -> int | None:
    return next((i + 1 for i, s in enumerate(sources) if is_hit(question, s)), None)


@dataclass
class RankSummary:
    ranks: list[int | None] = field(default_factory=list)

    def add(self, rank: int | None) -> None:
        self.ranks.append(rank)

    def hit_at(self, k: int) -> float:
        return sum(1 for r in self.ranks if r and r <= k) / max(1, len(self.ranks))

    @property
    def mrr10(self) -> float:
        return sum(1 / r for r in self.ranks if r and r <= 10) / max(1, len(self.ranks))

    @property
    def count(self) -> int:
        return len(self.ranks)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
