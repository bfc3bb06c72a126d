"""The query path's search side, top to bottom: understand → search → relevance decision.

Why one class runs the stages: the chat service, the evaluation harness and the
benchmarks all retrieve through this one path, so what we measure is what runs. Each
stage is a module of its own with a typed input and output (understand.py: Question,
search.py: Found and the ranked passages, gate.py: Decision); this class only puts them
in order. What a conversation makes of a declined search (small talk, a follow-up about
the last answer, a new subject) is the chat's (app/chat/policy.py). Calls are
synchronous (torch and pymilvus are); the API runs them in a thread.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from app.embedding.encoder import Embedder
from app.retrieval.calibration import Calibration, resolve
from app.retrieval.chatter import ChatterFilter
from app.retrieval.gate import GATE_OFF, NOTHING_INGESTED, Decision, decide
from app.retrieval.keyword_index import KeywordIndex
from app.retrieval.reranker import Reranker
from app.retrieval.search import Search
from app.retrieval.sources import Source
from app.retrieval.understand import Understanding
from app.retrieval.vocabulary import Vocabulary
from app.settings import Settings
from app.storage.chunk_store import ChunkStore


@dataclass
class Retrieval:
    """One search and its verdict: the passages (none when declined), and what the
    decision was made from."""

    query: str
    sources: list[Source]
    candidates: int
    collection_empty: bool
    elapsed_ms: float
    best_similarity: float | None = None  # the relevance decision's inputs: best dense cosine,
    keyword_coverage: float = 0.0         # and how much of the question the best keyword match holds,
    unknown_words: list[str] = field(default_factory=list)  # and its rare words the materials never use
    declined: bool = False                # nothing relevant enough: the chat says so
    reason: str = ""                      # why (app/retrieval/gate.py)
    # the question's rare words the materials never use, however little text they are (the
    # gate counts them only from unknown_word_min_chunks up)
    absent_words: list[str] = field(default_factory=list)
    indexed_chunks: int = 0               # how much text the keyword index measured that against
    timings: dict[str, float] = field(default_factory=dict)
    search_text: str = ""                 # what was searched: the query without its chatter
    vector: np.ndarray | None = field(default=None, repr=False)  # what was searched, as a vector


class Retriever:
    """The stages of a search, in order; each is reachable for those who need it alone
    (`understanding`, `searcher`, `vocabulary`, `chatter`)."""

    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder,
                 keyword_index: KeywordIndex | None = None, reranker: Reranker | None = None):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.keyword_index = keyword_index
        self._calibration: Calibration | None = None
        self.vocabulary = Vocabulary(embedder.whole_words, keyword_index)
        self.chatter = ChatterFilter(
            encode=lambda texts: np.asarray(embedder.encode_queries(texts)),
            best_similarities=lambda vectors: [
                max((score for _, score in found), default=-1.0)
                for found in self.store.search_many(vectors.tolist(), 1, ["file_path"])],
        )
        self.understanding = Understanding(settings, embedder, self.chatter, keyword_index, self.vocabulary)
        self.searcher = Search(settings, store, embedder, keyword_index, reranker)

    @property
    def reranker(self) -> Reranker | None:
        return self.searcher.reranker

    @reranker.setter
    def reranker(self, reranker: Reranker | None) -> None:
        self.searcher.reranker = reranker

    def search(self, query: str, top_k: int | None = None, cutoff: float | None = None,
               mode: str | None = None, rerank: bool | None = None,
               hypothetical: str | None = None, as_written: bool = False,
               asking_words: Collection[str] = ()) -> Retrieval:
        """The passages for `query`, best first, or none when the relevance gate declines
        it. `cutoff`: the gate's similarity threshold; -1 turns the gate off (the
        evaluation ranks every question, and judges the gate from the returned signals).
        `hypothetical`: a passage the LLM wrote to answer it (app/retrieval/expansion.py);
        the dense search then uses the mean of both vectors, the gate the question alone.
        `as_written`: `query` is already without chatter (a follow-up joined to the
        question before it, each stripped on its own by `question_text`). `asking_words`:
        words that ask how to answer, not about what ("counterexample" in a follow-up about
        the last answer): never counted as words the materials do not use."""
        started = time.perf_counter()
        settings = self.settings
        top_k = top_k or settings.retrieval.top_k
        mode = self.searcher.mode(mode)
        if not self.store.exists():
            return Retrieval(query, [], 0, True, (time.perf_counter() - started) * 1000,
                             reason=NOTHING_INGESTED)

        question = self.understanding.understand(query, as_written)
        pool = max(settings.retrieval.retrieval_candidates, top_k)
        found = self.searcher.find(question, pool, mode)
        t = time.perf_counter()
        absent = self.vocabulary.absent(found.keyword, found.best_passages(), asking_words)
        # absence says something only of enough text (about 30 pages); in a few lectures
        # even a fair question's rare words are often not there ("recursion")
        unknown = absent if found.keyword.indexed_chunks >= settings.gate.unknown_word_min_chunks else []
        decision = self.decide(found.best_similarity, found.keyword.coverage, unknown, cutoff)
        gate_ms = (time.perf_counter() - t) * 1000
        result = Retrieval(query, [], len(found.candidates), False, 0.0,
                           best_similarity=found.best_similarity, keyword_coverage=found.keyword.coverage,
                           unknown_words=unknown, declined=not decision.answer, reason=decision.reason,
                           absent_words=absent, indexed_chunks=found.keyword.indexed_chunks,
                           timings={**question.timings, **found.timings, "gate_ms": gate_ms},
                           search_text=question.text,
                           vector=question.vector)
        if decision.answer:
            if hypothetical and mode != "keyword":
                found = self.searcher.steered(found, hypothetical, pool)
                result.timings.update(found.timings)
            rerank = self.reranker is not None if rerank is None else rerank
            result.sources, rank_timings = self.searcher.rank(found, top_k, rerank)
            result.timings.update(rank_timings)
        result.elapsed_ms = (time.perf_counter() - started) * 1000
        return result

    def decide(self, best: float | None, coverage: float, unknown_words, cutoff: float | None = None) -> Decision:
        """The relevance decision (gate.py) with this embedder's calibration; `cutoff`
        overrides its similarity cutoff, and RAG_RELEVANCE_GATE=false answers everything."""
        if not self.settings.gate.relevance_gate:
            return Decision(True, GATE_OFF)
        c = self.calibration
        return decide(best, coverage, unknown_words, c.similarity_cutoff if cutoff is None else cutoff,
                      c, self.settings.gate.keyword_gate_coverage)

    def question_text(self, message: str) -> str:
        """The question in a student's message, without its greetings, thanks and pleas
        for help (app/retrieval/chatter.py), where that is configured."""
        return self.understanding.question_text(message)

    def prepare(self) -> None:
        """Build now what a student's first question would otherwise wait for (~0.15 s on
        CPU): the chatter examples' vectors, the list of common words, the calibration."""
        if self.settings.chat.strip_chatter:
            self.chatter.prepare()
        self.vocabulary.prepare()
        self.calibration  # noqa: B018 (resolved now: its warning belongs to the start)

    @property
    def calibration(self) -> Calibration:
        """The embedder's thresholds (app/retrieval/calibration.py): its profile, or ones
        derived from it, with explicit settings winning."""
        if self._calibration is None:
            self._calibration = resolve(self.settings, self.embedder.encode)
        return self._calibration
