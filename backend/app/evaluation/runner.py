"""Run a question set through the appliance's Retriever under several configurations."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from app.evaluation.metrics import RankSummary, first_hit_rank
from app.evaluation.questions import QuestionSet
from app.retrieval.retriever import Retriever

FOUND_WITHIN = 5  # a follow-up counts as found when its page is in the top 5 (what the chat uses)


@dataclass(frozen=True)
class GateSignals:
    """The relevance gate's inputs for one question."""

    similarity: float  # the best passage's cosine similarity
    coverage: float    # the share of the question's rarity-weighted words in the best keyword match
    unknown_words: tuple[str, ...] = ()  # its rare words the materials never use
    split: str = "dev"


@dataclass
class ConfigResult:
    name: str
    overall: RankSummary = field(default_factory=RankSummary)
    per_book: dict[str, RankSummary] = field(default_factory=dict)
    per_split: dict[str, RankSummary] = field(default_factory=dict)
    follow_ups: dict[str, int] = field(default_factory=dict)  # rewrite method -> found
    # rewrite method -> follow-ups the chat rewrote another way (the LLM down or too slow)
    fell_back: dict[str, int] = field(default_factory=dict)
    answerable_signals: list[GateSignals] = field(default_factory=list)
    out_of_corpus_signals: list[GateSignals] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # ids not in the top 5
    expanded: list[int] = field(default_factory=list)  # [searches the LLM wrote a passage for, searches]
    # what each question retrieved, for `--report` (whoever wrote the questions can see why)
    details: list[dict] = field(default_factory=list)


def rewrite_follow_ups(chat_service, questions: QuestionSet, method: str) -> list[tuple[str, str]]:
    """Each follow-up as the chat would search for it, and how it was rewritten: the
    chat's own condense step, with the first question as history. One event loop for all
    (the LLM client's connections belong to the loop that opened them)."""
    from app.chat.service import ChatService
    from app.conversations.store import Message

    if method == "raw":
        return [(f.follow_up, "raw") for f in questions.follow_ups]
    from app.llm.client import LLMClient

    async def rewrite_all() -> list[tuple[str, str]]:
        settings = chat_service.settings.model_copy(update={"condense_mode": method})
        service = ChatService(settings, chat_service.retriever, LLMClient(settings), chat_service.store)
        out = []
        for f in questions.follow_ups:
            history = [Message("user", f.first), Message("assistant", "")]
            out.append(await service.condense(history, f.follow_up))
        await service.llm.aclose()
        return out

    return asyncio.run(rewrite_all())


class Expander:
    """The chat's query-expansion step (app/retrieval/expansion.py), callable from this
    synchronous harness: one event loop, and so one LLM connection, for every question."""

    def __init__(self, settings):
        from app.llm.client import LLMClient

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.llm = LLMClient(settings)

    def __call__(self, question: str) -> str | None:
        from app.retrieval.expansion import hypothetical_passage

        return self.loop.run_until_complete(hypothetical_passage(self.llm, self.settings, question))

    def close(self) -> None:
        self.loop.run_until_complete(self.llm.aclose())
        self.loop.close()


def run_config(retriever: Retriever, questions: QuestionSet, name: str, mode: str, rerank: bool,
               chat_service=None, rewrite_methods: tuple[str, ...] = ("raw", "concat"),
               expander: Expander | None = None) -> ConfigResult:
    """Every question through `retriever.search` as configured; with `expander`, each is
    first expanded by the LLM as the chat would (its time counts in the latency)."""
    result = ConfigResult(name)
    if expander is not None:
        result.expanded = [0, 0]

    def search(query: str, as_written: bool = False):
        passage = None
        if expander is not None:
            passage = expander(query)
            result.expanded[0] += passage is not None
            result.expanded[1] += 1
        retrieval = retriever.search(query, top_k=10, cutoff=-1.0, mode=mode, rerank=rerank, hypothetical=passage,
                                     as_written=as_written)
        return retrieval, ({"hypothetical": passage} if expander is not None else {})

    for q in questions.answerable:
        t = time.perf_counter()
        retrieval, extra = search(q.question)
        result.latencies_ms.append((time.perf_counter() - t) * 1000)
        rank = first_hit_rank(q, retrieval.sources)
        result.overall.add(rank)
        result.per_book.setdefault(q.file, RankSummary()).add(rank)
        result.per_split.setdefault(q.split, RankSummary()).add(rank)
        result.answerable_signals.append(_signals(retrieval, q.split))
        if not rank or rank > FOUND_WITHIN:
            result.misses.append(q.id)
        result.details.append({"kind": "answerable", "id": q.id, "question": q.question, "split": q.split,
                               "file": q.file, "pages": q.pages, "rank": rank, **extra, **_retrieved(retrieval)})
    for outside in questions.out_of_corpus:
        retrieval, extra = search(outside.question)
        result.out_of_corpus_signals.append(_signals(retrieval, outside.split))
        result.details.append({"kind": "out_of_corpus", "question": outside.question, "split": outside.split,
                               **extra, **_retrieved(retrieval)})
    for method in rewrite_methods:
        if method != "raw" and chat_service is None:
            continue
        found = fell_back = 0
        for f, (query, how) in zip(questions.follow_ups, rewrite_follow_ups(chat_service, questions, method)):
            retrieval, extra = search(query, as_written=how not in ("raw", "none"))  # as the chat searches it
            rank = first_hit_rank(f.target, retrieval.sources)
            found += bool(rank and rank <= FOUND_WITHIN)
            fell_back += how != method
            result.details.append({"kind": "follow_up", "id": f.id, "method": method, "rewritten_by": how,
                                   "question": query, "file": f.file, "pages": f.pages, "rank": rank,
                                   **extra, **_retrieved(retrieval)})
        result.follow_ups[method] = found
        result.fell_back[method] = fell_back
    return result


def _retrieved(retrieval) -> dict:
    """The top 5 and the gate's inputs, as the report shows them."""
    return {"searched": retrieval.search_text,
            "similarity": round(retrieval.best_similarity or 0.0, 4),
            "keyword_coverage": round(retrieval.keyword_coverage, 4),
            "unknown_words": list(retrieval.unknown_words),
            "top5": [{"location": s.location, "file": s.file, "page": s.page_start, "score": s.score}
                     for s in retrieval.sources[:FOUND_WITHIN]]}


def _signals(retrieval, split: str) -> GateSignals:
    return GateSignals(retrieval.best_similarity or 0.0, retrieval.keyword_coverage,
                       tuple(retrieval.unknown_words), split)


def gate_outcome(result: ConfigResult, passes, split: str | None = None) -> tuple[int, int]:
    """(out-of-corpus questions declined, answerable questions refused) under a gate
    `passes(signals) -> bool`; out-of-corpus ones of one `split` only, if given."""
    declined = sum(not passes(g) for g in result.out_of_corpus_signals if split in (None, g.split))
    refused = sum(not passes(g) for g in result.answerable_signals)
    return declined, refused
