"""The relevance decision alone: three numbers in, answer or decline and why out."""

from __future__ import annotations

import pytest

from app.retrieval.calibration import load_profile
from app.settings import GateSettings
from app.retrieval.gate import (
    CLOSE_IN_MEANING,
    FAR_FROM_EVERY_PASSAGE,
    GATE_OFF,
    KEYWORD_MATCH,
    NAMES_THE_UNKNOWN,
    NOTHING_INGESTED,
    decide,
)

MINILM = load_profile("all-MiniLM-L6-v2")  # cutoff 0.39, keyword floor 0.15, unknown words 0.6
COVERAGE = GateSettings.model_fields["keyword_gate_coverage"].default  # 0.6


@pytest.mark.parametrize("best, coverage, unknown, answer, reason", [
    (0.52, 0.0, [], True, CLOSE_IN_MEANING),             # a passage close in meaning
    (0.39, 0.0, [], True, CLOSE_IN_MEANING),             # the cutoff itself answers
    (0.30, 0.9, [], True, KEYWORD_MATCH),                # terse, but a page holds its words
    (0.35, 0.62, [], True, KEYWORD_MATCH),               # in a student's words, most of them the page's
    (0.30, 0.53, [], False, FAR_FROM_EVERY_PASSAGE),     # too few of its words (a near-topic question)
    (0.10, 1.0, [], False, FAR_FROM_EVERY_PASSAGE),      # all its words, but about something else
    (0.05, 0.0, [], False, FAR_FROM_EVERY_PASSAGE),      # "the French Revolution", asked of a CS book
    (0.50, 1.0, ["MongoDB"], False, NAMES_THE_UNKNOWN),  # near the topic, naming what is never mentioned
    (0.65, 0.0, ["memcached"], True, CLOSE_IN_MEANING),  # named, but very close
    (None, 0.0, [], False, NOTHING_INGESTED),
])
def test_the_gate_says_what_it_decided_and_why(best, coverage, unknown, answer, reason):
    decision = decide(best, coverage, unknown, MINILM.similarity_cutoff, MINILM, COVERAGE)
    assert (decision.answer, decision.reason) == (answer, reason)


def test_a_cutoff_of_minus_one_switches_it_off():
    assert decide(0.01, 0.0, ["MongoDB"], -1.0, MINILM, COVERAGE).reason == GATE_OFF


def test_a_lower_cutoff_answers_more():
    assert not decide(0.30, 0.0, [], 0.39, MINILM, COVERAGE).answer
    assert decide(0.30, 0.0, [], 0.25, MINILM, COVERAGE).answer
