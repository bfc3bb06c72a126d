"""The conversation policy's word rules, and the LLM client's token estimate."""

from __future__ import annotations

import pytest

from app.chat.policy import leans_back, points_back
from app.llm.client import estimated_tokens


@pytest.mark.parametrize("question, leans", [
    ("what is its worst case?", True),
    ("how is that value chosen?", True),
    ("which algorithm should I use instead?", True),
    ("and how does the table grow?", True),       # carries on
    ("what about linear probing?", True),
    ("What is a hash table?", False),
    ("Explain a stack.", False),
    ("Who won the 2018 FIFA World Cup?", False),
    ("iterating over items", False),             # "it" inside a word points nowhere
])
def test_a_question_that_leans_back_needs_the_one_before(question, leans):
    assert leans_back(question) is leans


def test_carrying_on_is_not_pointing_back():
    assert leans_back("what about linear probing?") and not points_back("what about linear probing?")


@pytest.mark.parametrize("text, at_least, at_most", [
    ("", 1, 1),
    ("What is a hash table?", 6, 9),
    ("def f(x): return x ** 2", 10, 16),
])
def test_a_token_estimate_errs_long(text, at_least, at_most):
    assert at_least <= estimated_tokens(text) <= at_most
