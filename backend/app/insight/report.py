"""The instructor's insight: what the materials do not answer, which answers students
found unhelpful, which pages they lean on, and how much they ask.

Why group the declined questions: forty students ask the same missing topic forty ways;
the teacher needs "9 questions like 'What is Dijkstra's algorithm?'", not a list of 40.
Questions are grouped with the embedder the appliance already has: each joins the group
whose first question it is closest to, when at least GROUP_SIMILARITY close (greedy, one
pass, questions in the order asked), and a group is named by its most central question.
Vectors are cached by text, so a report over 10,000 turns embeds only what is new.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.conversations.store import ConversationStore
from app.insight import queries
from app.insight.queries import Period

# Two questions this close in meaning (cosine, all-MiniLM-L6-v2) ask about the same thing.
# Paraphrases measured 0.71-0.94 ("what is dijkstra's algorithm" and "how does Dijkstra find
# shortest paths" 0.81); of the 1,081 pairs of our 47 distinct out-of-corpus questions, only
# the one paraphrase pair reaches it (the next: 0.57, backpropagation and gradient descent).
GROUP_SIMILARITY = 0.6
VECTOR_CACHE = 20_000  # question vectors kept (about 30 MB)
TOP_PAGES = 20


@dataclass
class QuestionGroup:
    label: str            # its most central question
    count: int
    questions: list[str]  # each distinct question, most central first


@dataclass
class Insight:
    course: str
    since: float
    until: float
    questions: int = 0
    declined: int = 0
    votes_up: int = 0
    votes_down: int = 0
    per_day: list[dict] = field(default_factory=list)
    not_covered: list[QuestionGroup] = field(default_factory=list)
    unhelpful: list[dict] = field(default_factory=list)
    pages: list[dict] = field(default_factory=list)
    documents: list[dict] = field(default_factory=list)
    elapsed_ms: float = 0.0

    @property
    def declined_share(self) -> float:
        return self.declined / self.questions if self.questions else 0.0

    def to_dict(self) -> dict:
        return {**vars(self), "not_covered": [vars(g) for g in self.not_covered],
                "declined_share": round(self.declined_share, 4)}


class InsightService:
    def __init__(self, store: ConversationStore, encode: Callable[[list[str]], np.ndarray]):
        self.store = store
        self.encode = encode
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    async def report(self, period: Period) -> Insight:
        started = time.perf_counter()

        def read(db):
            return (queries.outcomes_per_day(db, period), queries.declined_questions(db, period),
                    queries.votes(db, period), queries.unhelpful_answers(db, period), queries.cited(db, period))

        days, declined, (up, down), unhelpful, pages = await self.store.read(read)
        groups = await asyncio.to_thread(self.group, declined)
        documents: dict[str, list[int]] = {}
        for file, _, shown, cited in pages:
            counts = documents.setdefault(file, [0, 0])
            counts[0] += shown
            counts[1] += cited
        insight = Insight(
            period.course, period.since, period.until,
            questions=sum(asked for _, asked, _ in days), declined=sum(d for _, _, d in days),
            votes_up=up, votes_down=down,
            per_day=[{"day": day, "questions": asked, "declined": d} for day, asked, d in days],
            not_covered=groups,
            unhelpful=[vars(u) for u in unhelpful],
            pages=[{"file": f, "page": p, "shown": shown, "cited": c} for f, p, shown, c in pages[:TOP_PAGES]],
            documents=sorted(({"file": f, "shown": shown, "cited": c} for f, (shown, c) in documents.items()),
                             key=lambda d: (-d["cited"], -d["shown"])),
        )
        insight.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return insight

    def group(self, questions: list[str]) -> list[QuestionGroup]:
        """The questions in groups of the same meaning, the biggest first."""
        if not questions:
            return []
        texts = [" ".join(q.split()) for q in questions]
        vectors = self._vectors_of(texts)
        members: list[list[int]] = []
        leaders: list[np.ndarray] = []
        for i, vector in enumerate(vectors):
            if leaders:
                likeness = np.asarray(leaders) @ vector
                best = int(likeness.argmax())
                if likeness[best] >= GROUP_SIMILARITY:
                    members[best].append(i)
                    continue
            leaders.append(vector)
            members.append([i])
        groups = []
        for indices in members:
            block = vectors[indices]
            centrality = (block @ block.mean(axis=0))
            order = [indices[j] for j in np.argsort(-centrality, kind="stable")]
            distinct = list(dict.fromkeys(texts[i] for i in order))
            groups.append(QuestionGroup(distinct[0], len(indices), distinct))
        return sorted(groups, key=lambda g: -g.count)

    def _vectors_of(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            fresh = np.asarray(self.encode(missing), dtype=np.float32)
            with self._lock:
                for text, vector in zip(missing, fresh):
                    self._vectors[text] = vector
                while len(self._vectors) > VECTOR_CACHE:
                    self._vectors.popitem(last=False)
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
        # a text pushed out by a concurrent report meanwhile is embedded again
        lost = [t for t in dict.fromkeys(texts) if t not in known]
        if lost:
            known.update(zip(lost, np.asarray(self.encode(lost), dtype=np.float32)))
        return np.asarray([known[t] for t in texts])
