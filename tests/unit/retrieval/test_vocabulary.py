"""Rare words by the embedder's vocabulary, and which of them a search says are absent."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.retrieval.keyword_index import Analyzer, KeywordResult
from app.retrieval.vocabulary import Vocabulary

COMMON = ["table", "tall", "paragraph", "hash", "queue", "search", "breadth", "first", "counter"]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(lambda: COMMON, SimpleNamespace(analyzer=Analyzer()))


@pytest.mark.parametrize("words, names, rare", [
    (["tall", "paragraphs", "tables"], (), []),        # common, or a common word's stem
    (["MongoDB", "tables"], (), ["MongoDB"]),
    (["Rust", "hash"], {"Rust"}, ["Rust"]),            # written as a name
    ([], (), []),
])
def test_rare_words_are_not_whole_words_of_the_embedders_vocabulary(vocabulary, words, names, rare):
    assert vocabulary.rare(words, names) == rare


def test_an_acronym_a_best_passage_spells_out_is_not_absent(vocabulary):
    searched = KeywordResult([], unknown_words=["BFS", "MongoDB"])
    passages = ["Breadth-first search (BFS) uses a queue.", "Hash tables."]
    assert vocabulary.absent(searched, ["Breadth-first search uses a queue."]) == ["MongoDB"]
    assert vocabulary.absent(searched, passages[1:]) == ["BFS", "MongoDB"]
    assert vocabulary.absent(searched, passages[1:], asking_words={"MongoDB"}) == ["BFS"]


def test_without_a_vocabulary_only_names_are_rare():
    bare = Vocabulary(lambda: [], SimpleNamespace(analyzer=Analyzer()))
    assert bare.rare(["MongoDB", "Rust"], {"Rust"}) == ["Rust"]
