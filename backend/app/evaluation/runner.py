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
    # asked after an answer: out-of-corpus questions [declined, asked], and follow-ups about
    # the answer [answered, asked] (None: not run)
    mid_conversation: list[int] | None = None
    generic_answered: list[int] | None = None
    misses: list[str] = field(default_factory=list)  # ids not in the top 5
    expanded: list[int] = field(default_factory=list)  # [searches the LLM wrote a passage for, searches]
    # what each question retrieved, for `--report` (whoever wrote the questions can see why)
    details: list[dict] = field(default_factory=list)


class _SearchAs:
    """The retriever as one configuration searches (its mode, rerank on or off), for the
    chat service to call as it would the real one."""

    def __init__(self, retriever: Retriever, mode: str, rerank: bool):
        self._retriever, self._mode, self._rerank = retriever, mode, rerank

    def search(self, query: str, **options):
        return self._retriever.search(query, mode=self._mode, rerank=self._rerank, **options)

    def __getattr__(self, name):
        return getattr(self._retriever, name)


# The chat's condense mode for each way of searching a follow-up the report shows.
CONDENSE_MODES = {"raw": "off", "concat": "concat", "llm": "llm"}


def search_follow_ups(chat_service, retriever: Retriever, questions: QuestionSet, method: str, mode: str,
                      rerank: bool, expand: bool) -> list:
    """Each follow-up searched as the chat searches it (`ChatService.find_passages`: the
    condense step with the earlier questions as history, a declined search widened to
    older questions, a new topic also searched alone, then the optional expansion), the
    gate included: a declined follow-up is not found."""
    conversations = [(f.earlier, f.follow_up) for f in questions.follow_ups]
    return _in_conversation(chat_service, retriever, conversations, method, mode, rerank, expand)


def ask_mid_conversation(chat_service, retriever: Retriever, questions: QuestionSet, asked: list[str],
                         mode: str, rerank: bool) -> list[tuple[str, str, bool]]:
    """Each of `asked` after the first question of each follow-up conversation, as the chat
    searches a follow-up (joined questions, the CPU default): (earlier question, question,
    declined). An out-of-corpus question must not borrow the earlier topic and be answered
    from its pages; a question about the last answer ("What is the worst case?") must."""
    conversations = [((first,), question) for question in asked for first in first_questions(questions)]
    found = _in_conversation(chat_service, retriever, conversations, "concat", mode, rerank, False)
    return [(first[0], question, passages.retrieval.declined or not passages.retrieval.sources)
            for (first, question), passages in zip(conversations, found)]


def first_questions(questions: QuestionSet) -> list[str]:
    """The distinct questions the follow-up conversations open with."""
    return list(dict.fromkeys((f.earlier or (f.follow_up,))[0] for f in questions.follow_ups))


def _in_conversation(chat_service, retriever: Retriever, conversations: list[tuple[tuple[str, ...], str]],
                     method: str, mode: str, rerank: bool, expand: bool) -> list:
    """`ChatService.find_passages` for each (earlier questions, question), the earlier ones
    as the conversation's history. One event loop for all (the LLM client's connections
    belong to the loop that opened them)."""
    from app.chat.service import ChatService
    from app.conversations.store import Message
    from app.llm.client import LLMClient

    async def search_all() -> list:
        settings = chat_service.settings.model_copy(update={
            "condense_mode": CONDENSE_MODES[method], "query_expansion": expand, "top_k": FOUND_WITHIN})
        service = ChatService(settings, _SearchAs(retriever, mode, rerank), LLMClient(settings), chat_service.store)
        out = []
        for earlier, question in conversations:
            history = [m for q in earlier for m in (Message("user", q), Message("assistant", ""))]
            out.append(await service.find_passages(history, question))
        await service.llm.aclose()
        return out

    return asyncio.run(search_all())


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
    first expanded by the LLM as the chat would (its time counts in the latency). Follow-ups
    go through the chat service (`search_follow_ups`), one pass per way of rewriting them."""
    result = ConfigResult(name)
    if expander is not None:
        result.expanded = [0, 0]

    def search(query: str):
        passage = None
        if expander is not None:
            passage = expander(query)
            result.expanded[0] += passage is not None
            result.expanded[1] += 1
        retrieval = retriever.search(query, top_k=10, cutoff=-1.0, mode=mode, rerank=rerank, hypothetical=passage)
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
        if chat_service is None:
            continue
        found = fell_back = 0
        searches = search_follow_ups(chat_service, retriever, questions, method, mode, rerank, expander is not None)
        for f, passages in zip(questions.follow_ups, searches):
            rank = first_hit_rank(f.target, passages.retrieval.sources)
            found += bool(rank and rank <= FOUND_WITHIN)
            fell_back += passages.how != ("none" if method == "raw" else method)
            if expander is not None:
                result.expanded[0] += passages.expanded
                result.expanded[1] += 1
            result.details.append({"kind": "follow_up", "id": f.id, "method": method, "rewritten_by": passages.how,
                                   "question": passages.query, "file": f.file, "pages": f.pages, "rank": rank,
                                   **_retrieved(passages.retrieval)})
        result.follow_ups[method] = found
        result.fell_back[method] = fell_back
    if chat_service is not None and questions.follow_ups:
        outside = ask_mid_conversation(chat_service, retriever, questions,
                                       [o.question for o in questions.out_of_corpus], mode, rerank)
        generic = ask_mid_conversation(chat_service, retriever, questions, questions.generic_follow_ups,
                                       mode, rerank)
        if outside:
            result.mid_conversation = [sum(declined for *_, declined in outside), len(outside)]
        if generic:
            result.generic_answered = [sum(not declined for *_, declined in generic), len(generic)]
        result.details += [{"kind": kind, "earlier": first, "question": question, "declined": declined}
                           for kind, asked in (("out_of_corpus_mid_conversation", outside),
                                               ("generic_follow_up", generic))
                           for first, question, declined in asked]
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
