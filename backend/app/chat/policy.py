"""The conversation policy: what a declined message means where it was said.

The search decides whether the materials answer a message as it stands. In a
conversation that is not the whole story: "Thanks!" is small talk that deserves an
invitation to ask, not "the materials don't cover this"; "What is the worst case?" is a
follow-up about the last answer, whatever the materials say to it alone; and "Who won the
2018 World Cup?" asked after a question on stacks is off the materials, though joined to
that question it would pass the gate on its words. This stage reads a declined search
(app/retrieval/retriever.py: Retrieval, with its vector and the gate's inputs) and says
which. Switched off by RAG_CONVERSATION_POLICY=false. Its thresholds are the embedder's
(app/retrieval/calibration.py).
"""

from __future__ import annotations

import re

from app.retrieval.retriever import Retrieval, Retriever
from app.settings import Settings

# A follow-up that stands alone (this many words, nothing pointing back) and is far from
# every passage on its own is off the materials, whatever came before (is_off_topic).
OFF_TOPIC_MIN_WORDS = 4
# A word fewer than this share of the passages hold is scarce in the materials (1 in 500).
SCARCE_WORD_SHARE = 0.002
# A whole question with this many words scarce in the materials names a subject of its own
# ("the capital city of Australia": "capital" 11 chunks of 7,282, "Australia" 1), where one
# scarce word is often how a follow-up asks ("for the exam?").
SUBJECT_SCARCE_WORDS = 2
# Words that stand for something said before ("what is its worst case?", "how is that value
# chosen?", "which algorithm should I use instead?"): a question with one is not whole alone.
_POINTS_BACK = re.compile(
    r"\b(?:it|its|it's|they|them|their|theirs|this|that|these|those|he|she|him|her|his|hers"
    r"|one|ones|another|former|latter|same|such|instead|then)\b",
    re.IGNORECASE,
)
# A leading word that carries on from the question before ("and how does the table grow?",
# "what about linear probing?"); what follows may still name its own subject.
_CARRIES_ON = re.compile(r"^\s*(?:and|but|so|also|or|then|what about|how about)\b", re.IGNORECASE)


def points_back(question: str) -> bool:
    """Whether a question has a word that stands for something said before."""
    return bool(_POINTS_BACK.search(question))


def leans_back(question: str) -> bool:
    """Whether a question needs the one before it to be understood."""
    return points_back(question) or bool(_CARRIES_ON.search(question))


class ConversationPolicy:
    def __init__(self, settings: Settings, retriever: Retriever):
        self.settings = settings
        self.retriever = retriever

    @property
    def enabled(self) -> bool:
        return self.settings.gate.conversation_policy

    def small_talk(self, declined: Retrieval) -> str | None:
        """Whether a declined message is all chatter: "pleasantry" ("Thanks!", "Hi"),
        "chatter" ("I'm confused", "Could you give an example?") or None. Not when it names
        a rare word the materials never use: that is a question about something else."""
        if (not self.enabled or not declined.declined or declined.vector is None
                or not self.settings.chat.strip_chatter or declined.unknown_words):
            return None
        best = declined.best_similarity if declined.best_similarity is not None else -1.0
        return self.retriever.chatter.small_talk(declined.vector, best,
                                                 self.retriever.calibration.small_talk_similarity)

    def is_pleasantry(self, declined: Retrieval) -> bool:
        """"Thanks!" or "Hi" after an answer: small talk, not a follow-up to join."""
        return self.small_talk(declined) == "pleasantry"

    def stays_alone(self, alone: Retrieval) -> bool:
        """Whether a follow-up searched alone is answered as it stands, not joined to the
        questions before it: a pleasantry, or a question off the materials."""
        return self.is_pleasantry(alone) or self.is_off_topic(alone)

    def about_the_answer(self, searched: Retrieval) -> float:
        """How much a searched message reads like a question about the last answer."""
        if searched.vector is None:
            return 0.0
        return self.retriever.chatter.about_the_answer(searched.vector)

    def scarce_words(self, searched: Retrieval) -> list[str]:
        """Its topic words that few passages hold, counted only from scarce_word_min_chunks
        up: in a few lectures most words are scarce."""
        index = self.retriever.keyword_index
        if index is None or searched.indexed_chunks < self.settings.gate.scarce_word_min_chunks:
            return []
        return index.scarce_words(searched.search_text or searched.query, SCARCE_WORD_SHARE)

    def is_off_topic(self, alone: Retrieval) -> bool:
        """Whether a follow-up, searched alone, is off the materials whatever came before:
        joined to the question before it, it would pass the gate on that question's words
        and be answered from its pages ("Who won the 2018 FIFA World Cup?" after a question
        on stacks: 0.04 alone, 0.47 joined).

        Only a follow-up the gate declines alone, and one unlike a question about the last
        answer ("What is the worst case?", "Could you give a counterexample?": follow-ups,
        whatever the materials say to them alone). It is off the materials when it names a
        rare word they never use ("what about MongoDB?", however small the course: the gate
        has declined it already), or when it is a whole question (four words or more,
        nothing pointing back) far from every passage, quite unlike a question about an
        answer, or naming two things the materials hardly mention. docs/DESIGN.md, "A
        question off the materials stays off them mid-conversation"."""
        c = self.retriever.calibration
        if not self.enabled or not alone.declined or self.small_talk(alone) is not None:
            return False
        about = self.about_the_answer(alone)
        if about >= c.about_the_answer_likeness:
            return False
        if alone.absent_words:
            return True
        text = alone.search_text or alone.query
        whole = not leans_back(text) and len(text.split()) >= OFF_TOPIC_MIN_WORDS
        return whole and ((alone.best_similarity or 0.0) < c.off_topic_similarity
                          or about < c.new_subject_likeness
                          or len(self.scarce_words(alone)) >= SUBJECT_SCARCE_WORDS)

    def asking_words(self, alone: Retrieval) -> list[str]:
        """The words a follow-up about the last answer asks with, that the materials never
        use ("Could you give a counterexample?"): they name no subject, so its joined search
        must not decline them. Only words that read as asking themselves ("counterexample":
        0.48 like a question about an answer; "MongoDB", in "when should I use MongoDB
        instead of a relational database?", 0.21)."""
        asking = self.retriever.calibration.about_the_answer_likeness
        if not self.enabled or not alone.declined or self.about_the_answer(alone) < asking:
            return []
        chatter, understanding = self.retriever.chatter, self.retriever.understanding
        return [w for w in alone.absent_words
                if chatter.about_the_answer(understanding.vector(w)) >= asking]
