"""The relevance decision: answer from the passages found, or say the materials don't cover it.

Why a stage of its own: the search ranks whatever it is asked, and a small LLM answers
from whatever it is shown, so something has to say "nothing here is about this" before
the prompt is built. It decides from three numbers the search measured (the best dense
cosine, how much of the question the best keyword match holds, and the question's rare
words the materials never use) against the embedder's calibration, and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.retrieval.calibration import Calibration

# Why a question was answered or declined (Decision.reason).
CLOSE_IN_MEANING = "close_in_meaning"        # a passage is at least the cutoff close
KEYWORD_MATCH = "keyword_match"              # a passage holds nearly all its words, and is loosely related
NAMES_THE_UNKNOWN = "names_the_unknown"      # it names rare words the materials never use, and nothing is very close
FAR_FROM_EVERY_PASSAGE = "far_from_every_passage"
NOTHING_INGESTED = "nothing_ingested"
GATE_OFF = "gate_off"                        # the gate is switched off: every question is answered


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one search, and the reason for it."""

    answer: bool
    reason: str


def decide(best: float | None, coverage: float, unknown_words: Sequence[str], cutoff: float,
           calibration: Calibration, keyword_coverage: float) -> Decision:
    """Answer when a passage is close in meaning (`cutoff`), or when one contains nearly
    all of the question's rarity-weighted words (`keyword_coverage`) and is at least
    loosely related in meaning. A question naming something the materials never mention
    ("MongoDB", "OAuth") must be much closer in meaning: near-topic questions ("when should
    I use MongoDB instead of a relational database?" asked of a database book) otherwise
    pass on their shared words (docs/DESIGN.md, "The relevance gate"). A cutoff of -1
    switches the gate off."""
    if cutoff <= -1.0:
        return Decision(True, GATE_OFF)
    if best is None:
        return Decision(False, NOTHING_INGESTED)
    if unknown_words:
        if best >= max(cutoff, calibration.unknown_word_similarity):
            return Decision(True, CLOSE_IN_MEANING)
        return Decision(False, NAMES_THE_UNKNOWN)
    if best >= cutoff:
        return Decision(True, CLOSE_IN_MEANING)
    if coverage >= keyword_coverage and best >= calibration.keyword_gate_min_similarity:
        return Decision(True, KEYWORD_MATCH)
    return Decision(False, FAR_FROM_EVERY_PASSAGE)
