"""The question in a student's message: greetings, thanks and pleas for help left out of the search.

Why: students write "Hi, I'm revising for the exam and I'm stuck: when is a relation in
second normal form? Thanks a lot!", and the chatter costs retrieval dearly. Words like
"exam", "chapter", "reading" or "class" are in the books too, so keyword search chases
them, and they blur the question's vector (measured: docs/DESIGN.md, "Chatter is left out of the search").

How: the message is cut into clauses (sentences, and at a colon, a semicolon or ", but");
a clause is chatter when it is closer in meaning to typical student chatter (the
examples below, about no subject) than to any passage of the materials. Those clauses
are left out, and request frames ("can someone help me understand ...") are cut from
the rest. A clause about the subject stays even when it is phrased as a plea, and a
message that is all chatter is searched as written (the relevance gate then decides).
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

# About no subject on purpose: what students add around a question in any course.
CHATTER_EXAMPLES = (
    "Hi!", "Hello everyone.", "Good morning.", "Thanks a lot!", "Thank you so much.", "Cheers.",
    "Any tips?", "Can you help me?", "Please help.", "I don't get it.", "I'm confused.", "I'm stuck.",
    "Sorry if this is a stupid question.", "Quick question.", "I have an exam tomorrow.",
    "I need this for my homework.", "My assignment is due soon.", "I'm studying for the test.",
    "My teacher explained this in class but I didn't understand.", "I read it twice and still don't understand.",
    "Explain it simply, please.", "Keep it short.", "Could you give an example?",
)

# Questions about the answer just given, with no subject of their own: after an answer
# they are follow-ups, whatever the materials say to them alone (app/chat/policy.py).
ABOUT_THE_ANSWER_EXAMPLES = (
    "Can you show me an example?", "Give me another example.", "Explain it in simpler words.",
    "Can you go into more detail?", "What are the pros and cons?", "What is its complexity?",
    "How fast is it?", "How much space does it use?", "Why does it work?", "What is the difference?",
    "When should I use it?", "What are the alternatives?", "What are the drawbacks?", "Can you summarize?",
    "What are the key steps?", "How is it implemented?", "Show me the code.", "What about the best case?",
    "Is there a simpler way?", "What are typical mistakes?", "Why is it important?", "Where is it used?",
    "Can you compare them?", "What does the book say?",
)

# Of the chatter examples, the ones that ask for nothing: after an answer, "Thanks!" is not a follow-up.
PLEASANTRIES = frozenset({"Hi!", "Hello everyone.", "Good morning.", "Thanks a lot!", "Thank you so much.", "Cheers."})

_CLAUSE_BREAK = re.compile(r"(?<=[.!?])\s+|:\s+|;\s+|,\s*but\s+", re.IGNORECASE)
_REQUEST_FRAME = re.compile(
    r"\b(?:(?:can|could|would|will)\s+(?:you|someone|somebody|anyone|anybody)\s+(?:please\s+)?"
    r"(?:help\s+me\s+)?(?:to\s+)?(?:explain|understand|tell\s+me|describe|clarify)(?:\s+to\s+me)?"
    r"|(?:please\s+)?help\s+me\s+(?:to\s+)?understand)\b\s*",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w\w+")
# small_talk's threshold is the embedder's (calibration.py: small_talk_similarity, 0.5 for
# MiniLM, where "Thanks!" is 0.58 like an example, "Hi" 0.90, "I'm confused" 0.90, and
# out-of-scope questions stay well below: "What were the main causes of the French
# Revolution?" 0.37).


class ChatterFilter:
    """`question_text(message)`: what of it to search with. `encode(texts)` gives unit
    vectors (the embedder's), `best_similarities(vectors)` each one's closest passage's
    cosine: one batch and one search for all the clauses of a message, not one each."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray],
                 best_similarities: Callable[[np.ndarray], list[float]]):
        self.encode = encode
        self.best_similarities = best_similarities
        self._examples: np.ndarray | None = None
        self._about_the_answer: np.ndarray | None = None

    def prepare(self) -> None:
        """Embed the chatter examples (a tenth of a second on CPU): at start-up, not on
        a student's first question."""
        if self._examples is None:
            self._examples = np.asarray(self.encode(list(CHATTER_EXAMPLES)))
            self._about_the_answer = np.asarray(self.encode(list(ABOUT_THE_ANSWER_EXAMPLES)))

    def question_text(self, message: str) -> str:
        return self.question_and_vector(message)[0]

    def question_and_vector(self, message: str) -> tuple[str, np.ndarray | None]:
        """The question, and its vector where the clause check embedded exactly it (one
        clause kept, nothing cut from it): the search then need not embed it again."""
        vector = None
        clauses = [c.strip() for c in _CLAUSE_BREAK.split(message) if c and _WORD.search(c)]
        if len(clauses) > 1:
            self.prepare()
            vectors = np.asarray(self.encode(clauses))
            chatter_likeness = (vectors @ self._examples.T).max(axis=1)
            kept = [i for i, (chat, best) in enumerate(zip(chatter_likeness, self.best_similarities(vectors)))
                    if chat <= best]
            if kept:
                message = " ".join(clauses[i] for i in kept)
                vector = vectors[kept[0]] if len(kept) == 1 else None
        stripped = _REQUEST_FRAME.sub("", message).strip()
        if not _WORD.search(stripped):
            return message, vector
        return stripped, vector if stripped == message else None

    def small_talk(self, vector: np.ndarray, best_similarity: float, threshold: float) -> str | None:
        """Whether a message is all chatter, from its vector and its closest passage's
        cosine (the search has both already): "pleasantry" ("Thanks!", "Hi"), "chatter"
        ("I'm confused", "Could you give an example?"), or None. The chat answers small
        talk with an invitation to ask, not with "the materials don't cover this"; in a
        conversation only a pleasantry, since "Could you give an example?" there asks about
        the last answer."""
        self.prepare()
        likeness = self._examples @ np.asarray(vector)
        nearest = int(likeness.argmax())
        if likeness[nearest] < threshold or likeness[nearest] <= best_similarity:
            return None
        return "pleasantry" if CHATTER_EXAMPLES[nearest] in PLEASANTRIES else "chatter"

    def about_the_answer(self, vector: np.ndarray) -> float:
        """How close a message is to a question about the answer before it ("What is the
        worst case?", "Could you summarize the key points?"): its best cosine with those
        examples."""
        self.prepare()
        return float((self._about_the_answer @ np.asarray(vector)).max())
