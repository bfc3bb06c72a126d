"""The chat turn: condense a follow-up, retrieve, prompt, stream, remember.

Both endpoints (JSON and SSE) run the same event stream, so they cannot drift
apart: `/api/chat` simply collects it. A turn is stored only once it has an
answer; a failed turn leaves the conversation exactly as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

import anyio

from app.chat.policy import ConversationPolicy, leans_back, points_back
from app.chat.prompt import BuiltPrompt, build_prompt, condense_messages, usable_rewrite
from app.conversations.store import ConversationStore, Message
from app.llm.client import LLMClient, LLMUnavailableError, StreamResult
from app.retrieval.expansion import hypothetical_passage
from app.retrieval.retriever import Retrieval, Retriever
from app.retrieval.sources import Source
from app.settings import Settings

log = logging.getLogger(__name__)

# A follow-up's search joins at most this many earlier questions (ChatService.condense).
MAX_EARLIER_QUESTIONS = 3


_CITATION = re.compile(r"\[(\d{1,2})\]")
# How the chat's declines begin (canned_reply knows them in a conversation sent back).
NOTHING_INGESTED = "Nothing has been ingested yet"
NEVER_MENTIONED = "The course materials never mention"
# The reply to a message that is only chatter ("Thanks!", "Hi"): no LLM call, no sources.
SMALL_TALK_REPLY = ("Happy to help! Ask me a question about the course materials, and I'll answer "
                    "from them and show the pages I used.")


@dataclass
class FoundPassages:
    query: str  # what was searched
    how: str  # how a follow-up was made standalone: "none" | "llm" | "concat"
    retrieval: Retrieval
    expanded: bool = False  # searched with the LLM's passage too (settings.chat.query_expansion)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class PreparedTurn:
    conversation_id: str
    question: str
    retrieval_query: str
    condensed_by: str  # "none" | "llm" | "concat"
    retrieval: Retrieval
    history: list[Message]
    replaces: list[int] = field(default_factory=list)  # the turn a regenerated answer replaces
    expanded: bool = False  # searched with the LLM's passage too (settings.chat.query_expansion)
    prompt: BuiltPrompt | None = None
    timings: dict[str, float] = field(default_factory=dict)
    owner: str | None = None  # who a new conversation belongs to (app/access/)
    any_owner: bool = False  # the instructor may continue anyone's conversation
    remember: bool = True  # stored once answered (an OpenAI client without a conversation id: not)
    small_talk: bool = False  # declined as chatter ("Thanks!", "I'm confused"): invited to ask


class ChatService:
    def __init__(self, settings: Settings, retriever: Retriever, llm: LLMClient, store: ConversationStore,
                 course: str | None = None):
        self.settings = settings
        self.course = course  # the course this chat answers from; its new conversations belong to it
        self.retriever = retriever
        self.llm = llm
        self.store = store
        self.policy = ConversationPolicy(settings, retriever) if retriever is not None else None

    async def count_tokens(self, text: str) -> int:
        return await self.llm.count_tokens(text)

    # -- preparation ----------------------------------------------------------
    async def condense(self, history: list[Message], question: str) -> tuple[str, str]:
        """The follow-up `question` as a standalone search query, and how it was made:
        rewritten by the LLM ("llm"), joined to the questions before it ("concat",
        `joined_questions`), or as asked ("none")."""
        if not history or self.settings.chat.condense_mode == "off":
            return question, "none"
        fallback = await self.joined_questions(history, question)
        if self.settings.chat.condense_mode == "concat":
            return fallback, "concat"
        # Each message loses its chatter on its own (as in joined_questions).
        question = await asyncio.to_thread(self.retriever.question_text, question)
        try:
            # Temperature 0: a search query should be the same every time it is asked for.
            text = await asyncio.wait_for(
                self.llm.complete(condense_messages(history, question), max_tokens=48, temperature=0.0),
                timeout=self.settings.chat.condense_timeout_s,
            )
        except (asyncio.TimeoutError, LLMUnavailableError) as exc:
            log.info("follow-up rewrite: LLM did not answer (%s); searching the concatenation", type(exc).__name__)
            return fallback, "concat"
        rewritten = usable_rewrite(text)
        if rewritten is None:
            log.info("follow-up rewrite: LLM reply is not a query (%r); searching the concatenation", text[:200])
            return fallback, "concat"
        # Keep the student's own words too: small models sometimes drop the point.
        return f"{rewritten} {question}", "llm"

    async def joined_questions(self, history: list[Message], question: str, earlier: int = 1) -> str:
        """`question` joined to at least `earlier` of the student's questions before it.

        A joined question that itself leaned back brings the one before it along: after
        "What is a treap?" and "what extra value does each of its nodes keep?", the
        follow-up "and how is that value chosen?" needs "treap", two questions back. Each
        message loses its chatter on its own: joined, a short follow-up ("and how does the
        table grow?") is one clause among the previous question's and, loosely tied to the
        materials alone, was itself taken for chatter and left out of the search."""
        asked = [m.content for m in history if m.role == "user"][-MAX_EARLIER_QUESTIONS:]
        *asked, question = await asyncio.to_thread(
            lambda: [self.retriever.question_text(text) for text in [*asked, question]])
        joined = min(earlier, len(asked))
        while joined < len(asked) and leans_back(asked[-joined]):
            joined += 1
        return " ".join([*asked[len(asked) - joined:], question]).strip()

    async def prepare(self, question: str, conversation_id: str | None, regenerate: bool = False,
                      history: list[Message] | None = None) -> PreparedTurn:
        """`history`: the conversation as the client sent it (OpenAI clients send it whole
        each time), instead of the one stored under `conversation_id`."""
        started = time.perf_counter()
        cid = conversation_id or uuid.uuid4().hex
        if history is None:
            history = await self.store.messages(cid)
        replaces: list[int] = []
        if regenerate and len(history) >= 2 and [m.role for m in history[-2:]] == ["user", "assistant"]:
            # Answer as if the last turn had not happened; it is replaced once this one is stored.
            replaces = [m.id for m in history[-2:] if m.id is not None]
            history = history[:-2]
        history = without_small_talk(history)
        found = await self.find_passages(history, question)
        retrieval = found.retrieval
        # reported as what was searched: without the chatter, and typos fixed
        turn = PreparedTurn(cid, question, retrieval.search_text or found.query, found.how, retrieval, history,
                            replaces, expanded=found.expanded, timings=found.timings,
                            small_talk=retrieval.declined and await asyncio.to_thread(self.policy.small_talk, retrieval)
                            is not None)
        # the last search's steps, so that a client (and the metrics) see where the time went
        turn.timings.update({name: round(ms, 1) for name, ms in retrieval.timings.items()})
        if retrieval.sources:
            t = time.perf_counter()
            turn.prompt = await build_prompt(
                self.settings.chat.system_prompt, question, retrieval.sources, without_declines(history),
                self.count_tokens, self.settings.llm.llm_context_window, self.settings.llm.llm_max_tokens,
            )
            turn.timings["prompt_ms"] = round((time.perf_counter() - t) * 1000, 1)
        turn.timings["prepare_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return turn

    async def find_passages(self, history: list[Message], question: str) -> FoundPassages:
        """The passages a turn answers from: the follow-up condensed, searched (`retrieve`),
        and, where query expansion is on, searched again with the LLM's passage. The
        evaluation scores follow-ups through here, so it measures what the chat does. A
        "Thanks!" or "Hi" after an answer is small talk, not a follow-up: it used to be
        joined to the question before and answered that again."""
        said = None  # the follow-up searched alone
        if history and self.settings.chat.condense_mode != "off":
            said = await asyncio.to_thread(self.retriever.search, question)
            if await asyncio.to_thread(self.policy.stays_alone, said):  # no LLM call
                return FoundPassages(question, "none", said, timings={"retrieval_ms": round(said.elapsed_ms, 1)})
        t = time.perf_counter()
        query, how = await self.condense(history, question)
        condense_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        found = FoundPassages(*await self.retrieve(history, question, query, how, said))
        found.timings = {"condense_ms": round(condense_ms, 1),
                         "retrieval_ms": round((time.perf_counter() - t) * 1000, 1)}
        if self.settings.chat.query_expansion and found.retrieval.sources:
            # Only for a question the gate let through: a declined one costs no LLM call.
            t = time.perf_counter()
            passage = await hypothetical_passage(self.llm, self.settings, found.query)
            if passage:  # searched the same way again, the passage steering the main search
                found.query, found.how, found.retrieval = await self.retrieve(
                    history, question, found.query, found.how, said, hypothetical=passage)
                found.expanded = True
            found.timings["expansion_ms"] = round((time.perf_counter() - t) * 1000, 1)
        return found

    async def retrieve(self, history: list[Message], question: str, query: str, how: str,
                       alone: Retrieval | None, hypothetical: str | None = None) -> tuple[str, str, Retrieval]:
        """The passages for `query` (condense's answer for `question`), the query that found
        them and how it was made. `alone`: `question` searched on its own (find_passages
        has it; None when there is nothing to condense). `hypothetical`: the LLM's passage
        for `query` (expansion).

        A follow-up's search that is declined may have lost its topic, asked further back
        than the questions joined: one, then two more earlier questions are joined (at
        most three). A declined LLM rewrite (a small model drifts: "What is extra value in
        TCP?") gives way to the joined questions the same way. An answered follow-up is
        never changed this way, and a new topic is not blurred with old ones.

        A joined question with no word that stands for something said before ("Explain a
        stack." after "What is a hash table?", "what about linear probing?") may name a new
        subject, which the join buries under the old one: it is also searched alone, and the
        two lists merged. An LLM's rewrite reads the whole conversation and is not merged:
        with a good model that would only add noise (and SmolLM2's rewrites, which keep the
        student's words, find as many follow-ups without it: 11 of 12 either way)."""
        asking = (await asyncio.to_thread(self.policy.asking_words, alone)
                  if alone is not None and alone.declined else [])
        retrieval = await asyncio.to_thread(self.retriever.search, query, hypothetical=hypothetical,
                                            as_written=how != "none",  # condense took the chatter out
                                            asking_words=asking)
        if how == "none":
            return query, how, retrieval
        if retrieval.declined:
            asked = sum(1 for m in history if m.role == "user")
            tried = {query}
            for earlier in range(1, min(asked, MAX_EARLIER_QUESTIONS) + 1):
                wider = await self.joined_questions(history, question, earlier)
                if wider in tried:
                    continue
                tried.add(wider)
                found = await asyncio.to_thread(self.retriever.search, wider, as_written=True,
                                                asking_words=asking)
                if not found.declined:
                    query, how, retrieval = wider, "concat", found
                    break
        if how == "concat" and alone is not None:
            # what the alone search searched: the follow-up without its chatter, already
            asked = alone.search_text or await asyncio.to_thread(self.retriever.question_text, question)
            if not points_back(asked):
                retrieval = merged(retrieval, alone, self.settings.retrieval.top_k)
        return query, how, retrieval

    def no_answer_message(self, retrieval: Retrieval) -> str:
        """The decline, naming what the materials never mention when that is the reason."""
        words = retrieval.unknown_words or retrieval.absent_words
        if not words:
            return self.settings.chat.no_answer_message
        named = " or ".join(f"\u201c{w}\u201d" for w in words[:3])
        return (f"{NEVER_MENTIONED} {named}, so I can't answer this from them. "
                "If it goes by another name there (an abbreviation spelled out, say), ask with that; "
                "if they should mention it, check that the right documents are ingested.")

    def canned_reply(self, text: str) -> str | None:
        """Which of the chat's own replies `text` is ("small_talk", "no_relevant_sources"),
        None for an answer: a client that sends the conversation back (OpenAI clients) sends
        no finish reasons, and a decline must not be shown to the LLM as an answer."""
        text = text.strip()
        if text == SMALL_TALK_REPLY:
            return "small_talk"
        if (text == self.settings.chat.no_answer_message.strip() or text.startswith(NOTHING_INGESTED)
                or text.startswith(NEVER_MENTIONED)):
            return "no_relevant_sources"
        return None

    # -- the turn as events ---------------------------------------------------
    async def events(self, question: str, conversation_id: str | None, regenerate: bool = False,
                     owner: str | None = None, any_owner: bool = False, history: list[Message] | None = None,
                     remember: bool = True, max_tokens: int | None = None,
                     temperature: float | None = None) -> AsyncIterator[tuple[str, dict]]:
        """Yield ("sources"|"token"|"done", data). Raises LLMUnavailableError before
        any token if the LLM cannot be reached (the caller turns it into 503 or an
        "error" event). The caller has checked that the conversation is the asker's;
        `owner` is who a new one belongs to. `history`: the conversation as the client
        sent it (see prepare); `remember`: store the turn. `max_tokens` (at most
        RAG_LLM_MAX_TOKENS) and `temperature`: the client's, for this answer."""
        started = time.perf_counter()
        turn = await self.prepare(question, conversation_id, regenerate, history)
        turn.owner, turn.any_owner, turn.remember = owner, any_owner, remember
        sources = turn.prompt.sources if turn.prompt else []
        yield "sources", {
            "conversation_id": turn.conversation_id,
            "retrieval_query": turn.retrieval_query,
            "condensed_by": turn.condensed_by,
            "expanded": turn.expanded,
            "sources": [s.to_dict() for s in sources],
            "timings": dict(turn.timings),  # the search's steps and the prompt's, in ms
        }
        result = StreamResult()
        if turn.prompt is None:
            result.text = (
                f"{NOTHING_INGESTED}, so there are no course materials to answer from. "
                "Add files to course_materials/ and run the ingest."
                if turn.retrieval.collection_empty
                else SMALL_TALK_REPLY if turn.small_talk
                else self.no_answer_message(turn.retrieval)
            )
            result.finish_reason = "small_talk" if turn.small_talk else "no_relevant_sources"
            yield "token", {"delta": result.text}
        else:
            limit = min(max_tokens or self.settings.llm.llm_max_tokens, self.settings.llm.llm_max_tokens)
            stream = self.llm.stream(turn.prompt.messages, limit, result, temperature=temperature)
            completed = faulted = False
            try:
                async for delta in stream:
                    yield "token", {"delta": delta}
                completed = True
            except LLMUnavailableError:
                faulted = True
                raise
            finally:
                # Shielded: when the client disconnects, the server cancels this task, and
                # closing the LLM stream (which stops generation there) must still happen.
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
                    if not completed and result.text:
                        # Keep what the student saw: "stopped" when they left or pressed Stop,
                        # "interrupted" when the LLM server failed under the answer.
                        await self._remember(turn, result, sources, started, stopped=not faulted,
                                             interrupted=faulted)
        done = await self._remember(turn, result, sources, started, stopped=False)
        yield "done", done

    async def _remember(self, turn: PreparedTurn, result: StreamResult, sources, started: float,
                        stopped: bool, interrupted: bool = False) -> dict:
        total_ms = (time.perf_counter() - started) * 1000
        timings = dict(turn.timings)
        timings["first_token_ms"] = round(result.first_token_s * 1000, 1) if result.first_token_s else None
        timings["generation_ms"] = round((time.perf_counter() - result.started) * 1000, 1)
        timings["total_ms"] = round(total_ms, 1)
        cited = sorted({int(n) for n in _CITATION.findall(result.text) if 1 <= int(n) <= len(sources)})
        usage = {"prompt_tokens": result.prompt_tokens or (turn.prompt.prompt_tokens if turn.prompt else 0),
                 "completion_tokens": result.completion_tokens}
        answer_meta = {"sources": [s.to_dict() for s in sources], "cited": cited, "timings": timings,
                       "usage": usage, "retrieval_query": turn.retrieval_query,
                       "condensed_by": turn.condensed_by, "expanded": turn.expanded, "stopped": stopped,
                       "interrupted": interrupted,
                       "finish_reason": "interrupted" if interrupted else result.finish_reason}
        if not turn.remember:
            return {"conversation_id": None, "answer": result.text, **answer_meta}
        message_id = await self.store.add_turn(
            turn.conversation_id,
            Message("user", turn.question, await self.count_tokens(turn.question)),
            Message("assistant", result.text, result.completion_tokens or await self.count_tokens(result.text),
                    meta=answer_meta),
            replaces=turn.replaces, owner=turn.owner, any_owner=turn.any_owner, course=self.course,
        )
        return {"conversation_id": turn.conversation_id, "message_id": message_id, "answer": result.text,
                **answer_meta}


def turn_outcome(done: dict) -> str:
    """How a finished turn (its `done` event) ended: "answered", "declined", "small_talk",
    "stopped" (by the student) or "error" (the LLM server failed under it)."""
    if done.get("interrupted"):
        return "error"
    if done.get("stopped"):
        return "stopped"
    return {"no_relevant_sources": "declined", "small_talk": "small_talk"}.get(done.get("finish_reason"),
                                                                                "answered")


def without_small_talk(history: list[Message]) -> list[Message]:
    """The conversation without its small-talk turns ("Thanks!" and the invitation to ask):
    they say nothing a follow-up could refer to, "Thanks!" would be joined to the next
    question, and a small LLM shown the canned invitation repeats it as its answer."""
    return without_exchanges(history, "small_talk")


def without_declines(history: list[Message]) -> list[Message]:
    """The conversation as the LLM is shown it: without the questions the chat declined. A
    decline holds no passage, only a canned reply, and a small LLM shown one repeats it:
    SmolLM2 answered "What is its worst case?", asked about stacks, with "The course
    materials never mention “Rust”...", the decline of the question before. Follow-ups are
    still searched with a declined question, as asked."""
    return without_exchanges(history, "no_relevant_sources")


def without_exchanges(history: list[Message], finish_reason: str) -> list[Message]:
    """`history` without the replies that ended for `finish_reason`, and their questions."""
    kept: list[Message] = []
    for message in history:
        if message.role == "assistant" and message.meta.get("finish_reason") == finish_reason:
            if kept and kept[-1].role == "user":
                kept.pop()
            continue
        kept.append(message)
    return kept


def merged(first: Retrieval, second: Retrieval, top_k: int) -> Retrieval:
    """Two searches' passages in one list by reciprocal rank (each list counts the same),
    one per page; a declined search gives nothing, so the other stands alone."""
    if second.declined or not second.sources:
        return first
    if first.declined or not first.sources:
        return second
    scores: dict[tuple, float] = {}
    chosen: dict[tuple, Source] = {}
    for found in (first, second):
        for rank, source in enumerate(found.sources):
            place = (source.file, source.page_start, source.heading)
            chosen.setdefault(place, source)
            scores[place] = scores.get(place, 0.0) + 1.0 / (60 + rank)
    best = sorted(scores, key=scores.get, reverse=True)[:top_k]
    sources = [dataclasses.replace(chosen[place], number=i + 1) for i, place in enumerate(best)]
    return dataclasses.replace(first, sources=sources, elapsed_ms=first.elapsed_ms + second.elapsed_ms)
