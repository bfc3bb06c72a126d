"""Rare words: which of a question's words say something when the materials never use them.

Why: a question's word that no passage holds tells the gate the materials may not cover
it, but only if the word is rare. "tall" or "paragraphs" missing says nothing;
"MongoDB" or "OAuth" missing does. Common means a whole word of the embedder's own
vocabulary (about 30,000 word pieces of common English for MiniLM), so the test follows
the embedder and holds no word list of ours.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from app.retrieval.keyword_index import KeywordIndex, KeywordResult
from app.retrieval.names import is_acronym, spelled_out

# An acronym the materials never write is no unknown word when one of the question's best
# passages (dense) spells it out: "how does BFS use a queue" and "Breadth-first search uses a queue".
SPELLED_OUT_PASSAGES = 10


class Vocabulary:
    """`rare(words)`: those not common; `absent(...)`: a search's rare words the materials
    never use. `whole_words`: the embedder's vocabulary (Embedder.whole_words)."""

    def __init__(self, whole_words, keyword_index: KeywordIndex | None):
        self._whole_words = whole_words
        self.keyword_index = keyword_index
        self._common: frozenset[str] | None = None

    def prepare(self) -> None:
        """Build the common-word set now (stemming 30,000 words), not on a first question."""
        self.common()

    def common(self) -> frozenset[str]:
        if self._common is None:
            words = list(self._whole_words())
            stems = self.keyword_index.analyzer.stems(words) if self.keyword_index is not None else []
            self._common = frozenset(w.lower() for w in words) | frozenset(stems)
        return self._common

    def rare(self, words: Sequence[str], names: Collection[str] = ()) -> list[str]:
        """Those of `words` that are not common: neither they nor their stem are a whole
        word of the embedder's vocabulary, so "paragraphs" and "tall" are common,
        "MongoDB" and "OAuth" rare; and those written as `names` (app/retrieval/names.py:
        "Rust" in "what does the Rust borrow checker prevent")."""
        if not words or self.keyword_index is None:
            return []
        common = self.common()
        if not common:  # nothing to tell rare from common by: ask no more of it
            return [w for w in words if w in names]
        stems = self.keyword_index.analyzer.stems(list(words))
        return [w for w, stem in zip(words, stems)
                if w in names or (w.lower() not in common and stem not in common)]

    def absent(self, keyword: KeywordResult, best_passages: Sequence[str],
               asking_words: Collection[str] = ()) -> list[str]:
        """The rare words of a searched question that no passage uses (`keyword`: its
        keyword search), but for an acronym one of its `best_passages` spells out, and
        `asking_words` (words that ask how to answer, not about what: "counterexample")."""
        passages = list(best_passages[:SPELLED_OUT_PASSAGES])
        return [w for w in self.rare(keyword.unknown_words, keyword.names)
                if w not in asking_words and not (is_acronym(w) and spelled_out(w, passages))]
