"""BM25 keyword search over every chunk, kept in step with the chunk collection.

Why BM25 beside the vectors: students reuse the book's own terms ("two-phase locking",
"copy on write"), and exact words are what a small embedder blurs. Why bm25s and not
Milvus's built-in BM25: the milvus-lite 2.5 line we run has a BM25 function that users
report as fragile (FIELD_NOTES), and bm25s is a maintained, fast, pure-Python/NumPy
implementation whose index is a few files we can keep beside the database.

Staying in step: the index is stamped with a signature of the manifest (every file's
path, content hash, pipeline and chunk count). The ingest pipeline rebuilds and saves it
after any run that changed the collection; a reader compares its stamp with the
manifest (at most every `recheck_s` seconds, and whenever the saved stamp changes on
disk) and reloads or rebuilds when they differ. So inserts, replacements and deletions,
by the CLI, the upload endpoint or a crashed run completed later, all show up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.retrieval.names import is_acronym, symbol_names, written_as_names
from app.storage.catalog import Catalog
from app.storage.chunk_store import ChunkStore

log = logging.getLogger(__name__)

_WORD = re.compile(r"(?u)\b\w\w+\b")
# "f-strings", "B-tree", "k-means", "t-test", "p-value": the one letter is dropped as a word,
# and what is left ("strings", "tree") is a common word; the compound is the topic.
_LETTER_COMPOUND = re.compile(r"(?u)(?<![\w-])([^\W\d_])-([^\W\d_]{2,})\b")
STAMP = "stamp.json"
OPERATORS = "operators"  # the operator index's folder inside the keyword index's
# Part of the index signature: a changed analyzer rebuilds the index. 2: the index also
# keeps the materials' words as written, for spelling correction; 3: one-letter compounds;
# 4: it keeps every word the materials use, for acronyms and names like "C++" (spellings.json);
# 5: and their hyphenated compounds joined ("in-order" -> "inorder").
# 6: beside it, an index of the operators each chunk writes ("**", "<<-", "%in%").
# 7: and in how many chunks each of the embedder's word pieces occurs (token-match's weights).
ANALYZER_VERSION = "7"
PIECES = "pieces.json"
# Word pieces are counted in at most this many chunks, spread evenly: an IDF needs shares,
# not exact counts, and tokenizing every chunk again doubled a 100k-chunk rebuild (26 -> 52 s)
PIECE_SAMPLE = 20_000
_SPELLED = re.compile(r"[^\W\d_]{5,}")  # words long enough to correct a typo in (shorter: too many neighbours)
_HYPHENATED = re.compile(r"(?u)\b([^\W\d_]+)-([^\W\d_]+)\b")
# Operators a programming course explains ("what does ** do?", "<- or <<-?", "%in%"), which
# word terms lose: R's %name% operators; runs of operator characters ("**", "!=", "->",
# ":="); "..."; single characters that are rarely punctuation; "-" and "/" only standing
# alone, since in "well-known" and "and/or" they join words.
_OPERATOR = re.compile(r"%[^\W\d_]\w*%|[-+*/%<>=!:&|^~@$]{2,}|\.{3}|[*%^~@$&|+=<>]|(?<!\S)[-/](?!\S)")
# "-----", "=====", "****": rules and decoration, not operators
_DECORATION = re.compile(r"(.)\1{3,}")

# Interrogatives and auxiliaries carry no topic. They stay in the ranking (measured:
# dropping them, or a longer list, ranked slightly worse), but they are not evidence
# for the relevance gate: otherwise "what" in "what is X?" matches any "what ..." text.
# Nor are the politeness words a question keeps ("... step by step please"): a passage
# need not say "please" to hold the question. Nor are studying words ("What do I need to
# know for the midterm?"): materials that never say "midterm" still hold the answer.
QUESTION_WORDS = frozenset("""
what which who whom whose when where why how do does did can could would should
i me my you your we
please pls plz thanks thank thx hi hello hey ok okay
exam exams midterm midterms quiz quizzes homework revise revision revising memorize memorise
""".split())
# "How does quadratic probing work?": the closing "work" asks how, about nothing. Materials
# of a few lectures rarely say "work", so as a topic word it cost such questions half their
# keyword coverage. "How is work calculated?" and "how much work" keep theirs.
_HOW_IT_WORKS = re.compile(
    r"(?i)\b(how\s+(?:do|does|did|would|will|can|could|should|is|are|might)\b[^?.!]{0,200}?)\s+works?\b"
    r"(?=\s*(?:[?.!,;:]|$|(?:in|with|for|under|when|if|together|internally|exactly|step)\b))")


@dataclass
class KeywordHit:
    chunk_id: str
    score: float


@dataclass
class KeywordResult:
    hits: list[KeywordHit]
    # How much of the question's wording (weighted by rarity, IDF) the best of the top
    # three keyword matches contains: 1.0 when every term is there, low when the rare words are missing. The
    # relevance gate uses it beside the dense similarity, because a small embedder gives
    # terse questions ("what is open addressing?") low similarity even when a page
    # answers them word for word.
    coverage: float = 0.0
    # Words of the question the materials never use, nor a one-letter variant of them
    # (a typo), as the student wrote them: "MongoDB" asked of a course that never names
    # it. The relevance gate asks more of such a question (app/retrieval/gate.py).
    unknown_words: list[str] = field(default_factory=list)
    indexed_chunks: int = 0  # how much text that absence is measured against
    # The question's words written as names (names.py), found once here for the gate too.
    names: set[str] = field(default_factory=set)


class Analyzer:
    """Lower-case words, English stop words removed, Snowball-stemmed (PyStemmer)."""

    def __init__(self) -> None:
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._stem = Stemmer.Stemmer("english").stemWords
        self._stop = frozenset(STOPWORDS_EN)

    def stems(self, words: list[str]) -> list[str]:
        return self._stem([w.lower() for w in words])

    def topic_words(self, text: str) -> list[tuple[str, str]]:
        """(word as written, its index term) for the words that carry the topic: no stop
        or question words, no numbers, at least three letters; a one-letter compound
        ("f-strings") as one word."""
        stop = self._stop | QUESTION_WORDS
        text = _HOW_IT_WORKS.sub(r"\1", text)
        compounds = [m.group(0) for m in _LETTER_COMPOUND.finditer(text)]
        words = [w for w in dict.fromkeys(_WORD.findall(_LETTER_COMPOUND.sub(" ", text)))
                 if len(w) >= 3 and not w.isdigit() and w.lower() not in stop]
        words = list(dict.fromkeys(compounds + words))
        return list(zip(words, self.stems([w.replace("-", "") for w in words])))

    def __call__(self, text: str, topic_only: bool = False) -> list[str]:
        """Index terms of `text`; with `topic_only`, question words are left out too. A
        one-letter compound gives its joined term ("fstring") besides its word ("string")."""
        stop = self._stop | QUESTION_WORDS if topic_only else self._stop
        if topic_only:
            text = _HOW_IT_WORKS.sub(r"\1", text)
        text = text.lower()
        words = [w for w in _WORD.findall(text) if w not in stop]
        words += [m.group(1) + m.group(2) for m in _LETTER_COMPOUND.finditer(text)]
        return self._stem(words)


def operators(text: str) -> list[str]:
    """The operators written in `text`, as index terms: "x ** 2 != y" -> ["**", "!="]."""
    return [op for op in _OPERATOR.findall(text) if not _DECORATION.fullmatch(op)]


def manifest_signature(catalog: Catalog, consistency: str = "Strong") -> str:
    """Changes exactly when the collection's content does (the manifest is written
    after a file's chunks, and removed with them)."""
    records = catalog.files(consistency)
    h = hashlib.sha256(f"analyzer {ANALYZER_VERSION}\n".encode())
    for path in sorted(records):
        r = records[path]
        h.update(f"{path}\0{r.content_hash}\0{r.pipeline}\0{r.chunk_count}\n".encode())
    return h.hexdigest()


class KeywordIndex:
    def __init__(self, store: ChunkStore, catalog: Catalog, folder: Path, recheck_s: float = 5.0,
                 count_pieces: Callable[[list[str]], Counter[str]] | None = None):
        """`count_pieces`: the embedder's word-piece counter (Embedder.pieces_per_text); with
        it the index also counts the chunks each word piece occurs in, which token-match
        weighs the question's pieces by (app/retrieval/token_match.py)."""
        self.store = store
        self.catalog = catalog
        self.folder = folder
        self.recheck_s = recheck_s
        self.analyzer = Analyzer()
        self._lock = threading.Lock()
        self._model = None
        self._operator_model = None  # BM25 over the operators each chunk writes (None: none do)
        self._ids: list[str] = []
        self._signature: str | None = None
        self._checked_at = 0.0
        self._stamp_mtime: float | None = None
        self._words: dict[str, int] = {}  # the materials' words as written (lower case) -> count
        self._spellings: frozenset[str] = frozenset()  # every word they use, as written (lower case)
        self.count_pieces = count_pieces
        # (word piece -> chunks holding it, chunks counted), for token-match's weights
        self._piece_chunks: tuple[dict[str, int], int] | None = None
        # vocabulary -> (that vocabulary object, its words by (length, first letter)): every
        # spelling for the unknown-word check, the longer words with counts for spelling fixes
        self._by_shape: dict[str, tuple[object, dict[tuple[int, str], list[str]]]] = {}

    # -- building --------------------------------------------------------------
    def rebuild(self, signature: str | None = None) -> int:
        """Index every chunk in the collection and save it; returns the chunk count."""
        import bm25s

        signature = signature or manifest_signature(self.catalog)
        ids, tokens, operator_tokens = [], [], []
        words: dict[str, int] = {}
        spellings: set[str] = set()
        piece_chunks: Counter[str] | None = Counter() if self.count_pieces is not None else None
        pieces_counted = 0
        if self.store.exists():
            every = max(1, -(-self.store.count() // PIECE_SAMPLE)) if piece_chunks is not None else 1
            iterator = self.store.client.query_iterator(
                self.store.collection, batch_size=2000, filter="", output_fields=["id", "text"]
            )
            try:
                while rows := iterator.next():
                    if piece_chunks is not None:
                        sample = [row.get("text") or "" for k, row in enumerate(rows, len(ids)) if k % every == 0]
                        if sample:
                            piece_chunks.update(self.count_pieces(sample))
                            pieces_counted += len(sample)
                    for row in rows:
                        ids.append(row["id"])
                        text = row.get("text") or ""
                        tokens.append(self.analyzer(text))
                        operator_tokens.append(operators(text))
                        lower = text.lower()
                        for word in _SPELLED.findall(lower):
                            words[word] = words.get(word, 0) + 1
                        spellings.update(_WORD.findall(lower))
                        spellings.update(a + b for a, b in _HYPHENATED.findall(lower))
                        spellings.update(name.lower() for name in symbol_names(text))
            finally:
                iterator.close()
        model = operator_model = None
        if ids:
            model = bm25s.BM25()
            model.index(tokens, show_progress=False)
        if any(operator_tokens):
            operator_model = bm25s.BM25(b=0.0)  # how many operators a chunk writes says little of its topic
            operator_model.index(operator_tokens, show_progress=False)
        spelled = frozenset(spellings)
        piece_chunks = (dict(piece_chunks), pieces_counted) if piece_chunks is not None else None
        self._save(model, operator_model, ids, words, spelled, piece_chunks, signature)
        with self._lock:
            self._model, self._ids, self._words, self._signature = model, ids, words, signature
            self._operator_model = operator_model
            self._spellings = spelled
            self._piece_chunks = piece_chunks
            self._checked_at = time.monotonic()
        return len(ids)

    def _save(self, model, operator_model, ids: list[str], words: dict[str, int],
              spellings: frozenset[str], piece_chunks: tuple[dict[str, int], int] | None,
              signature: str) -> None:
        """Write to a fresh folder, then swap it in: readers never see half an index."""
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        if model is not None:
            model.save(str(staging), show_progress=False)
        if operator_model is not None:
            operator_model.save(str(staging / OPERATORS), show_progress=False)
        (staging / "ids.json").write_text(json.dumps(ids))
        (staging / "words.json").write_text(json.dumps(words))
        (staging / "spellings.json").write_text(json.dumps(sorted(spellings)))
        if piece_chunks is not None:
            counts, counted = piece_chunks
            (staging / PIECES).write_text(json.dumps({"chunks": counted, "pieces": counts}))
        (staging / STAMP).write_text(json.dumps({"signature": signature, "chunks": len(ids)}))
        old = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)

    def _load(self) -> str | None:
        """Load the saved index; returns its signature (None if there is none)."""
        import bm25s

        try:
            stamp = json.loads((self.folder / STAMP).read_text())
            ids = json.loads((self.folder / "ids.json").read_text())
            words = json.loads((self.folder / "words.json").read_text())
            spellings = frozenset(json.loads((self.folder / "spellings.json").read_text()))
            model = bm25s.BM25.load(str(self.folder), show_progress=False) if ids else None
            operator_model = (bm25s.BM25.load(str(self.folder / OPERATORS), show_progress=False)
                              if (self.folder / OPERATORS).is_dir() else None)
            # absent where it was built without the embedder's tokenizer (token-match then weighs evenly)
            piece_chunks = None
            if (self.folder / PIECES).is_file():
                saved = json.loads((self.folder / PIECES).read_text())
                piece_chunks = (saved["pieces"], int(saved["chunks"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("keyword index at %s not loadable (%s); it will be rebuilt", self.folder, exc)
            return None
        self._model, self._ids, self._words, self._signature = model, ids, words, stamp["signature"]
        self._operator_model = operator_model
        self._spellings = spellings
        self._piece_chunks = piece_chunks
        return stamp["signature"]

    # -- keeping in step -------------------------------------------------------------
    def sync_saved(self) -> None:
        """Make the saved index match the collection: the writers' job (ingest, delete).
        Rebuilds only when the saved stamp is out of date, and never loads the index
        just to compare (an unchanged re-ingest stays cheap)."""
        current = manifest_signature(self.catalog)
        try:
            saved = json.loads((self.folder / STAMP).read_text())["signature"]
        except (OSError, ValueError, KeyError):
            saved = None
        if saved != current:
            self.rebuild(current)


    def _stamp_changed(self) -> bool:
        try:
            mtime = (self.folder / STAMP).stat().st_mtime
        except OSError:
            mtime = None
        changed = mtime != self._stamp_mtime
        self._stamp_mtime = mtime
        return changed

    def ensure_current(self) -> None:
        """The readers' job: reload or rebuild when the collection changed since this
        index was built (checked on a stamp change, else every `recheck_s` seconds)."""
        with self._lock:
            stamp_moved = self._stamp_changed()
            stale_check_due = time.monotonic() - self._checked_at >= self.recheck_s
            if not (stamp_moved or stale_check_due or self._signature is None):
                return
            self._checked_at = time.monotonic()
            # A session read: a reader's periodic check must not wait on a server's strong
            # consistency (~200 ms a request); another process's write it misses now, it
            # sees at the next check. The rebuild itself reads strongly.
            current = manifest_signature(self.catalog, "Session")
            if current == self._signature or self._load() == current:
                return
        log.info("keyword index out of date; rebuilding")
        self.rebuild(current)
        with self._lock:
            self._stamp_changed()

    # -- searching ---------------------------------------------------------------
    def search(self, query: str, limit: int) -> KeywordResult:
        """The chunks that best match `query`'s words, and its operators where it writes
        any ("what does ** do?"). The operators have an index of their own, so a chunk's
        length in words, and so every question without operators, ranks as it would
        without them."""
        self.ensure_current()
        with self._lock:
            model, operator_model, ids = self._model, self._operator_model, self._ids
        terms = list(dict.fromkeys(self.analyzer(query)))
        written = list(dict.fromkeys(operators(query)))
        if model is None or not ids or not (terms or written):
            return KeywordResult([])
        names = written_as_names(query)
        unknown = self._unknown_words(model, query, names)
        known = [t for t in terms if t in model.vocab_dict]
        known_operators = [o for o in written if operator_model is not None and o in operator_model.vocab_dict]
        if not (known or known_operators):
            return KeywordResult([], 0.0, unknown, len(ids), names)
        k = min(limit, len(ids))
        if known_operators:
            import numpy as np

            scores = operator_model.get_scores(known_operators)
            if known:
                scores = scores + model.get_scores(known)
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
            documents, scores = [top], [scores[top]]
        else:
            documents, scores = model.retrieve([known], k=k, show_progress=False, n_threads=1)
        hits = [KeywordHit(ids[int(d)], float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]
        coverage = 0.0
        if hits:
            topic_terms = list(dict.fromkeys(self.analyzer(query, topic_only=True)))
            coverage = self._coverage([(model, topic_terms), (operator_model, known_operators)],
                                      [int(d) for d in documents[0][:3]])
        return KeywordResult(hits, coverage, unknown, len(ids), names)

    def piece_chunks(self) -> tuple[dict[str, int], int] | None:
        """In how many chunks each word piece occurs, and how many chunks were counted (all
        of them up to PIECE_SAMPLE); None where the index was built without the embedder's
        tokenizer."""
        self.ensure_current()
        with self._lock:
            return self._piece_chunks

    def scarce_words(self, text: str, share: float) -> list[str]:
        """`text`'s topic words that fewer than `share` of the chunks hold (none, for a word
        the materials never use), as written. "What is the capital city of Australia?" asked
        of nine textbooks: "capital" is in 11 chunks of 7,282, "Australia" in 1."""
        self.ensure_current()
        with self._lock:
            model, ids = self._model, self._ids
        if model is None or not ids:
            return []
        return [word for word, term in self.analyzer.topic_words(text)
                if len(self._holders(model, term)) < share * len(ids)]

    def _unknown_words(self, model, query: str, names: set[str]) -> list[str]:
        """The query's topic words whose stem is in no chunk (typos forgiven), as written;
        and its acronyms and names spelled with symbols (names.py) that the materials never
        use as they are spelled, even where a word of the same stem is there: "CAP" in "what
        does the CAP theorem say", asked of books that say "caps" but never "cap"; "A*".
        `names`: the query's words written as names."""
        vocabulary = model.vocab_dict
        acronyms = {w for w in names if is_acronym(w)}
        unknown = []
        for word, term in self.analyzer.topic_words(query):
            if word in acronyms and word.lower() not in self._spellings:
                unknown.append(word)
                continue
            # a word one edit from one the materials use is a typo ("colision", "skiplsit"), not
            # unknown; compared as spelled, since stems are nearer each other than words are
            # ("rebase" -> "rebas" is one edit from "rebus", the stem of "rebus")
            # "inorder" is a word of materials that write "in-order" (spellings hold both)
            if term in vocabulary or word.lower() in self._spellings or (len(word) >= 5 and any(
                    self._one_edit_from(word.lower(), "spellings", self._spellings))):
                continue
            unknown.append(word)
        unknown += [name for name in symbol_names(query) if name.lower() not in self._spellings]
        return unknown

    def _one_edit_from(self, word: str, name: str, vocabulary):
        """The words of `vocabulary` one edit from `word` (lazily). The first letter is
        taken as typed, which keeps this to a few hundred comparisons; the words are
        grouped by length and first letter once per loaded vocabulary, on first use."""
        cached_for, buckets = self._by_shape.get(name, (None, {}))
        if cached_for is not vocabulary:
            buckets = {}
            for known in vocabulary:
                buckets.setdefault((len(known), known[:1]), []).append(known)
            self._by_shape[name] = (vocabulary, buckets)
        return (known for n in (len(word) - 1, len(word), len(word) + 1)
                for known in buckets.get((n, word[:1]), ()) if one_edit_apart(word, known))

    def spelling_fixes(self, text: str, is_rare) -> dict[str, str]:
        """{word as typed: the materials' word} for the typos in `text`: a word of five or
        more letters the materials never use, rare (`is_rare`: not common English, which
        the materials may simply not use), one edit from a word they do use (the most
        frequent such word; the first letter taken as typed)."""
        self.ensure_current()
        with self._lock:
            words = self._words
        typed = [w for w in dict.fromkeys(_SPELLED.findall(text)) if w.lower() not in words]
        fixes = {}
        for word in is_rare(typed) if typed and words else []:
            near = list(self._one_edit_from(word.lower(), "words", words))
            if near:
                fixes[word] = max(near, key=lambda known: (words[known], known))
        return fixes

    @staticmethod
    def _holders(model, term: str):
        """The numbers of the chunks that hold `term` (none for a term the index lacks)."""
        import numpy as np

        column = model.vocab_dict.get(term)
        if column is None:
            return np.empty(0, dtype=np.int64)
        indptr = model.scores["indptr"]
        return model.scores["indices"][indptr[column]:indptr[column + 1]]

    @staticmethod
    def _coverage(term_lists: list[tuple[object, list[str]]], docs: list[int]) -> float:
        """The best, over `docs`, IDF-weighted share of the query terms a document holds;
        `term_lists`: (index, its terms) pairs, words and operators."""
        import numpy as np

        total = 0.0
        present = np.zeros(len(docs))
        for model, terms in term_lists:
            for term in terms:
                n = model.scores["num_docs"]
                holders = KeywordIndex._holders(model, term)
                idf = float(np.log(1 + (n - len(holders) + 0.5) / (len(holders) + 0.5)))
                total += idf
                present += idf * np.isin(docs, holders)
        return float(present.max()) / total if total and docs else 0.0


def one_edit_apart(a: str, b: str) -> bool:
    """Equal but for one inserted, deleted or changed letter, or two swapped neighbours."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]
