"""Retrieval: dense + keyword search fused, optionally reranked, gated for relevance.

Why a class of its own: the chat service, the evaluation harness and the
benchmarks all retrieve through this one path, so what we measure is what runs.
Calls are synchronous (torch and pymilvus are); the API runs them in a thread.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import numpy as np

from app.embedding.encoder import Embedder
from app.retrieval.calibration import Calibration, resolve
from app.retrieval.chatter import ChatterFilter
from app.retrieval.keyword_index import KeywordHit, KeywordIndex, KeywordResult
from app.retrieval.names import is_acronym, spelled_out
from app.retrieval.reranker import Reranker
from app.settings import Settings
from app.storage.chunk_store import ChunkStore


# A word fewer than this share of the passages hold is scarce in the materials (1 in 500).
SCARCE_WORD_SHARE = 0.002
# An acronym the materials never write is no unknown word when one of the question's best
# passages (dense) spells it out: "how does BFS use a queue" and "Breadth-first search uses a queue".
SPELLED_OUT_PASSAGES = 10


@dataclass
class Source:
    """One retrieved chunk, numbered as the answer cites it ([1], [2], ...)."""

    number: int
    chunk_id: str
    file: str
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    score: float
    text: str

    @property
    def location(self) -> str:
        """Human-readable place: "book.pdf, p. 12–13 (printed 10–11), 5.2 Chaining" or
        "notes.md › Hashing › Collisions"."""
        where = self.file
        if self.page_start is not None:
            pages = str(self.page_start) if self.page_start == self.page_end else f"{self.page_start}–{self.page_end}"
            where += f", p. {pages}"
            if self.page_label and self.page_label != pages:
                where += f" (printed {self.page_label})"
            if self.heading:  # a PDF's outline: the innermost section is enough here
                where += f", {self.heading.split(' › ')[-1]}"
        elif self.heading:
            where += f" › {self.heading}"
        return where

    def to_dict(self) -> dict:
        data = asdict(self)
        data["location"] = self.location
        return data


@dataclass
class Retrieval:
    query: str
    sources: list[Source]
    candidates: int
    collection_empty: bool
    elapsed_ms: float
    best_similarity: float | None = None  # the relevance gate's inputs: best dense cosine,
    keyword_coverage: float = 0.0         # and how much of the question the best keyword match holds,
    unknown_words: list[str] = field(default_factory=list)  # and its rare words the materials never use
    declined: bool = False                # nothing relevant enough: the chat says so
    small_talk: bool = False              # declined, and only chatter ("Thanks!"): the chat invites a question
    pleasantry: bool = False              # small talk that asks for nothing ("Thanks!", "Hi"), even after an answer
    # declined: how close it is to a question about the last answer ("What is the worst case?"),
    about_the_answer: float = 0.0
    # and its rare words the materials never use, however little text they are (the gate
    # counts them only from unknown_word_min_chunks up): a follow-up's new subject
    missing_rare_words: list[str] = field(default_factory=list)
    # and its topic words that few passages hold (SCARCE_WORD_SHARE), counted only from
    # scarce_word_min_chunks up: in a few lectures most words are scarce
    scarce_words: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    search_text: str = ""                 # what was searched: the query without its chatter


@dataclass
class _Candidate:
    chunk_id: str
    fused: float = 0.0
    similarity: float | None = None
    row: dict | None = None


_ROW_FIELDS = ["text", "embedding", "file_path", "page_start", "page_end", "page_label", "heading"]
_DENSE_FIELDS = [f for f in _ROW_FIELDS if f != "embedding"]  # dense hits come with their score


class Retriever:
    """Dense search, BM25 keyword search, fusion (relative scores or reciprocal ranks),
    the relevance gate, one passage per page, and an optional cross-encoder rerank."""

    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder,
                 keyword_index: KeywordIndex | None = None, reranker: Reranker | None = None):
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.keyword_index = keyword_index
        self.reranker = reranker
        self._common_words: frozenset[str] | None = None
        self._calibration: Calibration | None = None
        self.chatter = ChatterFilter(
            encode=lambda texts: np.asarray(embedder.encode_queries(texts)),
            best_similarities=lambda vectors: [
                max((score for _, score in found), default=-1.0)
                for found in self.store.search_many(vectors.tolist(), 1, ["file_path"])],
        )

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
        top_k = top_k or settings.top_k
        cutoff = self.calibration.similarity_cutoff if cutoff is None else cutoff
        mode = mode or settings.retrieval_mode
        if mode in ("hybrid", "keyword") and self.keyword_index is None:
            mode = "dense"
        rerank = (self.reranker is not None) if rerank is None else (rerank and self.reranker is not None)
        if not self.store.exists():
            return Retrieval(query, [], 0, True, (time.perf_counter() - started) * 1000)
        timings: dict[str, float] = {}

        t = time.perf_counter()
        text, vector = (query, None) if as_written else self._question_and_vector(query)
        if settings.fix_spelling and self.keyword_index is not None:
            fixed = self.fix_spelling(text)
            if fixed != text:
                text, vector = fixed, None
        timings["question_ms"] = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        if vector is None:  # a chatty message's question was embedded with its clauses already
            vector = self.embedder.encode_query(text)
        timings["embed_ms"] = (time.perf_counter() - t) * 1000

        pool = max(settings.retrieval_candidates, top_k)
        t = time.perf_counter()
        dense = self._dense(vector, pool)
        timings["dense_ms"] = (time.perf_counter() - t) * 1000
        best = max((c.similarity for c in dense), default=None)
        keyword = KeywordResult([])
        if mode in ("hybrid", "keyword"):
            t = time.perf_counter()
            keyword = self.keyword_index.search(text, pool)
            timings["keyword_ms"] = (time.perf_counter() - t) * 1000
        candidates = self._fuse([] if mode == "keyword" else dense, keyword.hits, dense)
        # absence says something only of enough text (about 30 pages); in a few lectures
        # even a fair question's rare words are often not there ("recursion")
        enough_text = keyword.indexed_chunks >= settings.unknown_word_min_chunks
        def rare() -> list[str]:  # only where used: answered searches in small courses need none
            found = [c.row.get("text") or "" for c in dense[:SPELLED_OUT_PASSAGES]]
            return [w for w in self.rare_words(keyword.unknown_words, keyword.names)
                    if w not in asking_words and not (is_acronym(w) and spelled_out(w, found))]

        unknown = rare() if enough_text else []

        if cutoff > -1.0 and not self.passes_gate(best, keyword.coverage, cutoff, unknown):
            talk = (self.chatter.small_talk(vector, best if best is not None else -1.0,
                                            self.calibration.small_talk_similarity)
                    if settings.strip_chatter and not unknown else None)
            about = self.chatter.about_the_answer(vector)
            return Retrieval(query, [], len(candidates), False, (time.perf_counter() - started) * 1000,
                             best_similarity=best, keyword_coverage=keyword.coverage, unknown_words=unknown,
                             declined=True, small_talk=talk is not None,
                             pleasantry=talk == "pleasantry", about_the_answer=about,
                             missing_rare_words=unknown if enough_text else rare(),
                             scarce_words=(self.keyword_index.scarce_words(text, SCARCE_WORD_SHARE)
                                           if keyword.indexed_chunks >= settings.scarce_word_min_chunks
                                           else []),
                             timings=timings, search_text=text)
        if hypothetical and mode != "keyword":
            t = time.perf_counter()
            vector = _unit(vector + self.embedder.encode_query(hypothetical))
            dense = self._dense(vector, pool)
            candidates = self._fuse(dense, keyword.hits, dense)
            timings["expanded_search_ms"] = (time.perf_counter() - t) * 1000

        ranked = sorted(candidates.values(), key=lambda c: c.fused, reverse=True)
        keep = max(top_k, settings.rerank_candidates or self.reranker.candidates) if rerank else top_k
        ranked = self._one_per_page(ranked, keep, vector)
        if rerank:
            t = time.perf_counter()
            scores = self.reranker.score(text, [c.row["text"] for c in ranked], [c.fused for c in ranked])
            ranked = [c for _, c in sorted(zip(scores, ranked), key=lambda p: p[0], reverse=True)]
            timings["rerank_ms"] = (time.perf_counter() - t) * 1000
        sources = [self._source(i + 1, c) for i, c in enumerate(ranked[:top_k])]
        return Retrieval(query, sources, len(candidates), False, (time.perf_counter() - started) * 1000,
                         best_similarity=best, keyword_coverage=keyword.coverage, unknown_words=unknown,
                         timings=timings, search_text=text)

    def question_text(self, message: str) -> str:
        """The question in a student's message, without its greetings, thanks and pleas
        for help (app/retrieval/chatter.py), where that is configured."""
        return self._question_and_vector(message)[0]

    def _question_and_vector(self, message: str):
        """The question in `message`, and its vector where finding it embedded it already."""
        return self.chatter.question_and_vector(message) if self.settings.strip_chatter else (message, None)

    def about_the_answer(self, text: str) -> float:
        """How much `text` reads like a question about the last answer (chatter.py)."""
        return self.chatter.about_the_answer(self.embedder.encode_query(text))

    def passes_gate(self, best: float | None, coverage: float, cutoff: float,
                    unknown_words: list[str] | tuple = ()) -> bool:
        """The relevance gate: answer when a passage is close in meaning, or when one
        contains nearly all of the question's (rarity-weighted) words and is at least
        loosely related in meaning. Otherwise the chat says the materials don't cover it.

        A question naming something the materials never mention ("MongoDB", "OAuth")
        must be much closer in meaning: near-topic questions ("when should I use MongoDB
        instead of a relational database?" asked of a database book) otherwise pass on
        their shared words (docs/DESIGN.md, "The relevance gate")."""
        if best is None:
            return False
        c = self.calibration
        if unknown_words:
            return best >= max(cutoff, c.unknown_word_similarity)
        if best >= cutoff:
            return True
        return coverage >= self.settings.keyword_gate_coverage and best >= c.keyword_gate_min_similarity

    def fix_spelling(self, text: str) -> str:
        """`text` with its typos ("colision", "recurison") replaced by the materials' own
        word: keyword search finds no typo, and the embedder reads one as noise."""
        for typed, fixed in self.keyword_index.spelling_fixes(text, self.rare_words).items():
            text = re.sub(rf"\b{re.escape(typed)}\b", fixed, text)
        return text

    def rare_words(self, words: list[str], names: Collection[str] = ()) -> list[str]:
        """Those of `words` that are not common words: neither they nor their stem are a
        whole word of the embedder's vocabulary (30,000 pieces: common English), so
        "paragraphs" and "tall" are common, "MongoDB" and "OAuth" rare; and those written
        as `names` (app/retrieval/names.py: "Rust" in "what does the Rust borrow checker
        prevent"). Only a rare word's absence from the materials says they do not cover a
        question."""
        if not words or self.keyword_index is None:
            return []
        common = self._common_word_set()
        if not common:  # nothing to tell rare from common by: ask no more of it
            return [w for w in words if w in names]
        stems = self.keyword_index.analyzer.stems(words)
        return [w for w, stem in zip(words, stems)
                if w in names or (w.lower() not in common and stem not in common)]

    def _common_word_set(self) -> frozenset[str]:
        if self._common_words is None:
            try:
                vocabulary = [w for w in self.embedder.tokenizer.get_vocab() if w.isalpha()]
            except AttributeError:
                vocabulary = []
            stems = self.keyword_index.analyzer.stems(vocabulary) if self.keyword_index is not None else []
            self._common_words = frozenset(w.lower() for w in vocabulary) | frozenset(stems)
        return self._common_words

    def prepare(self) -> None:
        """Build now what a student's first question would otherwise wait for (~0.15 s on
        CPU): the chatter examples' vectors, the list of common words, the calibration."""
        if self.settings.strip_chatter:
            self.chatter.prepare()
        self._common_word_set()
        self.calibration  # noqa: B018 (resolved now: its warning belongs to the start)

    @property
    def calibration(self) -> Calibration:
        """The embedder's thresholds (app/retrieval/calibration.py): its profile, or ones
        derived from it, with explicit settings winning."""
        if self._calibration is None:
            self._calibration = resolve(self.settings, self.embedder.encode)
        return self._calibration

    # -- pieces -------------------------------------------------------------------
    def _fuse(self, dense: list[_Candidate], hits: list[KeywordHit],
              all_dense: list[_Candidate]) -> dict[str, _Candidate]:
        """Merge the two result lists into one score per chunk.

        Relative score fusion (default): each list's scores are divided by that list's
        best, so "as good as the best dense match" and "as good as the best keyword
        match" weigh the same, then mixed with `dense_weight`. Unlike rank fusion it keeps
        how far ahead a clear winner is. Measured on the evaluation set (docs/DESIGN.md).
        """
        s = self.settings
        if s.fusion == "rrf":
            dense_scores = [1.0 / (s.rrf_k + rank + 1) for rank in range(len(dense))]
            keyword_scores = [1.0 / (s.rrf_k + rank + 1) for rank in range(len(hits))]
        else:
            top_dense = max((c.similarity for c in dense), default=0.0) or 1.0
            top_keyword = max((h.score for h in hits), default=0.0) or 1.0
            weight = s.dense_weight if dense and hits else (1.0 if dense else 0.0)
            dense_scores = [weight * c.similarity / top_dense for c in dense]
            keyword_scores = [(1 - weight) * h.score / top_keyword for h in hits]
        known = {c.chunk_id: c for c in all_dense}  # keyword hits that dense search also saw
        out: dict[str, _Candidate] = {}
        for c, score in zip(dense, dense_scores):
            c.fused = score
            out[c.chunk_id] = c
        for h, score in zip(hits, keyword_scores):
            c = out.get(h.chunk_id)
            if c is None:
                c = out[h.chunk_id] = known.get(h.chunk_id) or _Candidate(h.chunk_id)
                c.fused = 0.0
            c.fused += score
        return out

    def _one_per_page(self, ranked: list[_Candidate], keep: int, vector) -> list[_Candidate]:
        """The best chunk of each page only: overlapping neighbours from one page say the
        same thing, and five different places are more useful to cite (and to check). The
        same passage in two files (a book copied into two folders) counts once too."""
        chosen: list[_Candidate] = []
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

    def _dense(self, vector, limit: int) -> list[_Candidate]:
        return [_Candidate(row.pop("id"), similarity=score, row=row)
                for row, score in self.store.search(vector.tolist(), limit, _DENSE_FIELDS)]

    def _fill_rows(self, candidates: list[_Candidate], vector) -> None:
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

    @staticmethod
    def _source(number: int, c: _Candidate) -> Source:
        row = c.row
        return Source(
            number=number,
            chunk_id=c.chunk_id,
            file=row.get("file_path") or "",
            page_start=_int(row.get("page_start")),
            page_end=_int(row.get("page_end")),
            page_label=row.get("page_label"),
            heading=row.get("heading"),
            score=round(c.similarity if c.similarity is not None else 0.0, 4),
            text=row.get("text") or "",
        )


def _unit(vector):
    return vector / (float(np.linalg.norm(vector)) or 1.0)


def _int(value) -> int | None:
    return None if value in (None, "") else int(value)
