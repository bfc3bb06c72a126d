"""The words a question writes as names: "CAP" in "what does the CAP theorem say about
distributed databases", "Rust" in "what does the Rust borrow checker prevent".

Why: the relevance gate asks more of a question that names something the materials never
mention ("MongoDB", "OAuth"), and tells a name from an ordinary word by the embedder's
vocabulary: a word it does not hold whole is no everyday English. But many names are
everyday words too (Rust, Swift, Shiny, CAP), and then how the student writes one is
what says it is a name: in capitals, with a capital inside it ("PyPy", "GitHub"), or with
a capital where no sentence starts; and any word spelled with a symbol its tokens lose ("C++",
"C#", "A*"), however cased. A question in title case or in capitals throughout ("What Is A
Hash Table?") names nothing by its capitals, so it gives no names but those.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"(?u)\b\w\w+\b")
_SENTENCE_END = re.compile(r"[.!?:;\n]\W*$")
# Small words nobody capitalizes inside a sentence, unless writing in title case or shouting.
_SMALL_WORDS = frozenset("a an the is are was of in on to for and or with at by from".split())
# a letter, maybe more word characters, then +, # or * ("C++", "C#", "A*"); not "*emphasis*"
_SYMBOL_NAME = re.compile(r"(?u)(?<![\w+#*])[^\W\d_]\w*[+#*]+(?![\w+#*])")
_LETTERS = re.compile(r"(?u)[^\W\d_]+")
# a spelled-out phrase runs on through spaces and hyphens only: "Canada, August 11-14,
# 1999, Proceedings" in a bibliography is no "CAP"
_PHRASE_BREAK = re.compile(r"(?u)[^\w\s-]|\d|_")


def is_capitalized(word: str) -> bool:
    return word[:1].isupper()


def written_as_names(text: str) -> set[str]:
    """The words of `text` written as names, as written."""
    names = set(symbol_names(text))
    words = list(_WORD.finditer(text))
    # (word, whether a sentence starts with it), judged on the text since the word before
    placed, end = [], 0
    for m in words:
        gap = text[end:m.start()]
        placed.append((m.group(0), (end == 0 and not any(c.isalnum() for c in gap))
                       or bool(_SENTENCE_END.search(gap))))
        end = m.end()
    shouted = sum(word.isupper() for word, _ in placed) > len(placed) / 2
    if shouted or any(is_capitalized(word) and word.lower() in _SMALL_WORDS
                      for word, starts in placed[1:] if not starts):
        return names  # title case or capitals throughout: capitals say nothing here
    for word, starts in placed:
        if not word[:1].isalpha() or word.isdigit():
            continue
        inner_capital = any(c.isupper() for c in word[1:])
        if inner_capital or (is_capitalized(word) and not starts):
            names.add(word)
    return names


def symbol_names(text: str) -> list[str]:
    """"C++", "C#", "A*": names that word tokens cut short to "C" and "A"."""
    return list(dict.fromkeys(m.group(0) for m in _SYMBOL_NAME.finditer(text)))


def is_acronym(word: str) -> bool:
    """"CAP", "HTTP2": capitals throughout (two at least)."""
    return sum(c.isupper() for c in word) >= 2 and not any(c.islower() for c in word)


def spelled_out(acronym: str, texts: list[str]) -> bool:
    """Whether `texts` write `acronym` out: "breadth-first search" for "BFS", "object-
    oriented programming" for "OOP". Lecture notes often spell out what students
    abbreviate, and then the acronym names nothing they lack. Three letters at least, a
    phrase unbroken by punctuation or numbers that neither starts nor ends with a small word
    ("of the"), so that chance initials rarely match; and the texts are the few passages the
    question found, not the whole materials."""
    letters = [c for c in acronym.lower() if c.isalpha()]
    if len(letters) < 3:
        return False
    return any(_has_initials(_LETTERS.findall(run), letters)
               for text in texts for run in _PHRASE_BREAK.split(text.lower()))


def _has_initials(words: list[str], letters: list[str]) -> bool:
    n = len(letters)
    return any(words[i][0] == letters[0] and words[i] not in _SMALL_WORDS
               and words[i + n - 1] not in _SMALL_WORDS
               and all(words[i + j][0] == letters[j] for j in range(1, n))
               for i in range(len(words) - n + 1))
