"""Understanding a message: the question in it, spelled as the materials spell it, as a vector.

The first stage of the query path. A student's message carries greetings, thanks and
typos that cost retrieval dearly; this stage hands the search the question alone
(chatter.py), with its typos replaced by the materials' own words (the keyword index's
spelling fixes), and its vector. Each part is switched by a setting
(RAG_STRIP_CHATTER, RAG_FIX_SPELLING).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from app.embedding.encoder import Embedder
from app.retrieval.chatter import ChatterFilter
from app.retrieval.keyword_index import KeywordIndex
from app.retrieval.vocabulary import Vocabulary
from app.settings import Settings


@dataclass
class Question:
    """A message as the search reads it."""

    message: str        # as the student wrote it
    text: str           # what is searched: without its chatter, typos fixed
    vector: np.ndarray  # `text`'s unit vector
    timings: dict[str, float] = field(default_factory=dict)  # question_ms, embed_ms


class Understanding:
    def __init__(self, settings: Settings, embedder: Embedder, chatter: ChatterFilter,
                 keyword_index: KeywordIndex | None, vocabulary: Vocabulary):
        self.settings = settings
        self.embedder = embedder
        self.chatter = chatter
        self.keyword_index = keyword_index
        self.vocabulary = vocabulary

    def understand(self, message: str, as_written: bool = False) -> Question:
        """`message` as a question to search. `as_written`: it is without chatter already
        (a follow-up joined to the questions before it, each stripped on its own)."""
        t = time.perf_counter()
        text, vector = (message, None) if as_written else self.question_and_vector(message)
        fixed = self.fix_spelling(text)
        if fixed != text:
            text, vector = fixed, None
        timings = {"question_ms": (time.perf_counter() - t) * 1000}
        t = time.perf_counter()
        if vector is None:  # a chatty message's question was embedded with its clauses already
            vector = self.embedder.encode_query(text)
        timings["embed_ms"] = (time.perf_counter() - t) * 1000
        return Question(message, text, vector, timings)

    def vector(self, text: str) -> np.ndarray:
        """`text`'s vector, embedded as a question is."""
        return self.embedder.encode_query(text)

    def question_text(self, message: str) -> str:
        """The question in a student's message, without its greetings, thanks and pleas
        for help, where that is configured."""
        return self.question_and_vector(message)[0]

    def question_and_vector(self, message: str) -> tuple[str, np.ndarray | None]:
        """The question in `message`, and its vector where finding it embedded it already."""
        return self.chatter.question_and_vector(message) if self.settings.chat.strip_chatter else (message, None)

    def fix_spelling(self, text: str) -> str:
        """`text` with its typos ("colision", "recurison") replaced by the materials' own
        word: keyword search finds no typo, and the embedder reads one as noise."""
        if not self.settings.chat.fix_spelling or self.keyword_index is None:
            return text
        for typed, fixed in self.keyword_index.spelling_fixes(text, self.vocabulary.rare).items():
            text = re.sub(rf"\b{re.escape(typed)}\b", fixed, text)
        return text
