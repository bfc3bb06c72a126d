"""Searching the materials: dense and keyword search fused, then one passage per page, reranked.

The second stage of the query path, in two steps so that the relevance decision can
sit between them: `find` runs both searches and fuses them (what the gate needs to
decide: raw scores), `rank` orders the passages a student is shown (one per page, then
the reranker), which a declined question never pays for. It knows nothing of the
conversation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from app.embedding.encoder import Embedder
from app.retrieval.keyword_index import KeywordHit, KeywordIndex, KeywordResult
from app.retrieval.reranker import Reranker
from app.retrieval.sources import Source
from app.retrieval.understand import Question
from app.settings import Settings
from app.storage.chunk_store import ChunkStore

_ROW_FIELDS = ["text", "embedding", "file_path", "page_start", "page_end", "page_label", "heading", "ocr_pages"]
_DENSE_FIELDS = [f for f in _ROW_FIELDS if f != "embedding"]  # dense hits come with their score


@dataclass
class Candidate:
    """A chunk either search found, with its fused score and (once fetched) its row."""

    chunk_id: str
    fused: float = 0.0
    similarity: float | None = None
    row: dict | None = None


@dataclass
class Found:
    """Both searches' results for one question, fused, with their raw scores."""

    question: Question
    vector: np.ndarray                 # what dense search used (the question's, or steered by a passage)
    dense: list[Candidate]
    keyword: KeywordResult
    candidates: dict[str, Candidate]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def best_similarity(self) -> float | None:
        """The best dense cosine: how close the closest passage is in meaning."""
        return max((c.similarity for c in self.dense), default=None)

    def best_passages(self) -> list[str]:
        """The dense hits' texts, best first."""
        return [c.row.get("text") or "" for c in self.dense]


class Search:
    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder,
                 keyword_index: KeywordIndex | None = None, reranker: Reranker | None = None):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.keyword_index = keyword_index
        self.reranker = reranker

    def mode(self, asked: str | None) -> str:
        """The retrieval mode to run: `asked`, or the settings'; dense without a keyword index."""
        mode = asked or self.settings.retrieval.retrieval_mode
        return "dense" if mode in ("hybrid", "keyword") and self.keyword_index is None else mode

    def find(self, question: Question, pool: int, mode: str) -> Found:
        """Dense and (in hybrid or keyword mode) keyword search, `pool` each, fused."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        dense = self._dense(question.vector, pool)
        timings["dense_ms"] = (time.perf_counter() - t) * 1000
        keyword = KeywordResult([])
        if mode in ("hybrid", "keyword"):
            t = time.perf_counter()
            keyword = self.keyword_index.search(question.text, pool)
            timings["keyword_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        candidates = self.fuse([] if mode == "keyword" else dense, keyword.hits, dense)
        timings["fusion_ms"] = (time.perf_counter() - t) * 1000
        return Found(question, question.vector, dense, keyword, candidates, timings)

    def steered(self, found: Found, passage: str, pool: int) -> Found:
        """`found` searched again with `passage` (a hypothetical answer the LLM wrote,
        app/retrieval/expansion.py) steering dense search: the mean of both vectors. The
        keyword hits stay the question's."""
        t = time.perf_counter()
        vector = _unit(found.vector + self.embedder.encode_query(passage))
        dense = self._dense(vector, pool)
        candidates = self.fuse(dense, found.keyword.hits, dense)
        timings = {**found.timings, "expanded_search_ms": (time.perf_counter() - t) * 1000}
        return Found(found.question, vector, dense, found.keyword, candidates, timings)

    def rank(self, found: Found, top_k: int, rerank: bool) -> tuple[list[Source], dict[str, float]]:
        """The `top_k` passages to show, best first: one per page, reranked where `rerank`
        (and a reranker is loaded). Returns them and the time of each step: fetching the
        passages (one per page) and reranking them."""
        rerank = rerank and self.reranker is not None
        t = time.perf_counter()
        ranked = sorted(found.candidates.values(), key=lambda c: c.fused, reverse=True)
        keep = max(top_k, self.settings.retrieval.rerank_candidates or self.reranker.candidates) if rerank else top_k
        ranked = self.one_per_page(ranked, keep, found.vector)
        timings: dict[str, float] = {"fetch_ms": (time.perf_counter() - t) * 1000}
        if rerank:
            t = time.perf_counter()
            scores = self.reranker.score(found.question.text, [c.row["text"] for c in ranked],
                                         [c.fused for c in ranked])
            ranked = [c for _, c in sorted(zip(scores, ranked), key=lambda p: p[0], reverse=True)]
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        return [_source(i + 1, c) for i, c in enumerate(ranked[:top_k])], timings

    def fuse(self, dense: list[Candidate], hits: list[KeywordHit],
             all_dense: list[Candidate]) -> dict[str, Candidate]:
        """Merge the two result lists into one score per chunk.

        Relative score fusion (default): each list's scores are divided by that list's
        best, so "as good as the best dense match" and "as good as the best keyword
        match" weigh the same, then mixed with `dense_weight`. Unlike rank fusion it keeps
        how far ahead a clear winner is. Measured on the evaluation set (docs/DESIGN.md).
        """
        s = self.settings
        if s.retrieval.fusion == "rrf":
            dense_scores = [1.0 / (s.retrieval.rrf_k + rank + 1) for rank in range(len(dense))]
            keyword_scores = [1.0 / (s.retrieval.rrf_k + rank + 1) for rank in range(len(hits))]
        else:
            top_dense = max((c.similarity for c in dense), default=0.0) or 1.0
            top_keyword = max((h.score for h in hits), default=0.0) or 1.0
            weight = s.retrieval.dense_weight if dense and hits else (1.0 if dense else 0.0)
            dense_scores = [weight * c.similarity / top_dense for c in dense]
            keyword_scores = [(1 - weight) * h.score / top_keyword for h in hits]
        known = {c.chunk_id: c for c in all_dense}  # keyword hits that dense search also saw
        out: dict[str, Candidate] = {}
        for c, score in zip(dense, dense_scores):
            c.fused = score
            out[c.chunk_id] = c
        for h, score in zip(hits, keyword_scores):
            c = out.get(h.chunk_id)
            if c is None:
                c = out[h.chunk_id] = known.get(h.chunk_id) or Candidate(h.chunk_id)
                c.fused = 0.0
            c.fused += score
        return out

    def one_per_page(self, ranked: list[Candidate], keep: int, vector) -> list[Candidate]:
        """The best chunk of each page only: overlapping neighbours from one page say the
        same thing, and five different places are more useful to cite (and to check). The
        same passage in two files (a book copied into two folders) counts once too."""
        chosen: list[Candidate] = []
        seen: set[tuple] = set()
        said: set[str] = set()
        start = 0
        while len(chosen) < keep and start < len(ranked):
            batch = ranked[start:start + 2 * keep]
            start += len(batch)
            self._fill_rows(batch, vector)
            for c in batch:
                key = (c.row.get("file_path"), c.row.get("page_start"), c.row.get("heading"))
                text = " ".join((c.row.get("text") or "").split())
                if key in seen or text in said:
                    continue
                seen.add(key)
                said.add(text)
                chosen.append(c)
                if len(chosen) == keep:
                    break
        return chosen

    def _dense(self, vector, limit: int) -> list[Candidate]:
        return [Candidate(row.pop("id"), similarity=score, row=row)
                for row, score in self.store.search(vector.tolist(), limit, _DENSE_FIELDS)]

    def _fill_rows(self, candidates: list[Candidate], vector) -> None:
        """Keyword-only hits lack text and a similarity: fetch both in one call."""
        missing = [c for c in candidates if c.row is None]
        if not missing:
            return
        rows = self.store.client.get(self.store.collection, ids=[c.chunk_id for c in missing],
                                     output_fields=_ROW_FIELDS)
        by_id = {r["id"]: r for r in rows}
        for c in missing:
            row = by_id.get(c.chunk_id) or {"text": ""}
            embedding = row.pop("embedding", None)
            if embedding is not None:
                c.similarity = float(np.dot(vector, np.asarray(embedding, dtype=np.float32)))
            c.row = row
        candidates[:] = [c for c in candidates if c.row.get("text")]  # deleted meanwhile


def _source(number: int, c: Candidate) -> Source:
    row = c.row
    return Source(
        number=number,
        chunk_id=c.chunk_id,
        file=row.get("file_path") or "",
        page_start=_int(row.get("page_start")),
        page_end=_int(row.get("page_end")),
        page_label=row.get("page_label"),
        heading=row.get("heading"),
        ocr=bool(row.get("ocr_pages")),
        score=round(c.similarity if c.similarity is not None else 0.0, 4),
        text=row.get("text") or "",
    )


def _unit(vector):
    return vector / (float(np.linalg.norm(vector)) or 1.0)


def _int(value) -> int | None:
    return None if value in (None, "") else int(value)
