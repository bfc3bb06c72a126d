"""Fusing dense and keyword results (app/retrieval/search.py), without a store."""

from __future__ import annotations

import pytest

from app.retrieval.keyword_index import KeywordHit
from app.retrieval.search import Candidate, Search
from app.settings import Settings


def search(**values) -> Search:
    return Search(Settings(_env_file=None, **values), store=None, embedder=None)


def dense(*pairs) -> list[Candidate]:
    return [Candidate(chunk_id, similarity=score, row={"text": chunk_id}) for chunk_id, score in pairs]


def test_relative_fusion_weighs_each_list_by_its_best():
    fused = search(dense_weight=0.5).fuse(dense(("a", 0.8), ("b", 0.4)),
                                          [KeywordHit("b", 10.0), KeywordHit("c", 5.0)], [])
    assert fused["a"].fused == pytest.approx(0.5)         # the best dense match, no keyword hit
    assert fused["b"].fused == pytest.approx(0.25 + 0.5)  # half as close, the best keyword match
    assert fused["c"].fused == pytest.approx(0.25)        # keyword only
    assert fused["c"].row is None                         # fetched later, when it is shown


def test_one_list_alone_counts_whole():
    only_dense = search(dense_weight=0.3).fuse(dense(("a", 0.6)), [], [])
    assert only_dense["a"].fused == pytest.approx(1.0)
    only_keyword = search(dense_weight=0.3).fuse([], [KeywordHit("k", 2.0)], [])
    assert only_keyword["k"].fused == pytest.approx(1.0)


def test_a_keyword_hit_dense_search_saw_keeps_its_row():
    seen = dense(("a", 0.7))
    fused = search().fuse([], [KeywordHit("a", 3.0)], seen)  # keyword mode: dense results kept aside
    assert fused["a"].row == {"text": "a"} and fused["a"].similarity == 0.7


def test_reciprocal_rank_fusion_counts_places_only():
    fused = search(fusion="rrf", rrf_k=60).fuse(dense(("a", 0.9), ("b", 0.1)),
                                                [KeywordHit("b", 9.0), KeywordHit("a", 0.1)], [])
    assert fused["a"].fused == pytest.approx(fused["b"].fused)  # first once, second once


@pytest.mark.parametrize("asked, with_index, runs", [
    (None, True, "hybrid"), ("keyword", True, "keyword"), ("dense", True, "dense"),
    ("hybrid", False, "dense"), ("keyword", False, "dense"),
])
def test_the_mode_falls_back_to_dense_without_a_keyword_index(asked, with_index, runs):
    s = Search(Settings(_env_file=None), None, None, keyword_index=object() if with_index else None)
    assert s.mode(asked) == runs
