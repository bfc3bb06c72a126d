"""Put back ligatures a PDF's font lost: "di\\x1ecult" -> "difficult".

Why: PDFs typeset with TeX (many open textbooks among them) often draw fi, fl, ff, ffi
and ffl as one glyph with no Unicode mapping, and PDFium returns a control character in
its place, which clean-up would turn into a space: "di cult", " oating point". Keyword
search then misses every word with those letters and the embedder reads fragments.
Which control character stands for which ligature depends on the font, so it is worked
out per document: for each such character, the ligature that turns the most distinct
broken words into known English words wins, if it repairs most of them.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

LIGATURES = ("fi", "fl", "ff", "ffi", "ffl")
# C0 controls except tab, line feed, form feed, carriage return and U+0002 (PDFium's
# mark for a hyphen at a line end).
_SUSPECT = frozenset(map(chr, [0x01, *range(0x03, 0x09), 0x0B, *range(0x0E, 0x20)]))
_WORDS_FILE = Path(__file__).with_name("data") / "ligature_words.txt"
MIN_WORDS = 3  # distinct repaired words needed before trusting a mapping
# ... and the share of the character's distinct words they must be: a lost ligature
# repairs most of them (76-100% measured), a quote mark or dash that lost its mapping
# only a few by accident ("\x10end" -> "fiend"; 2-17% measured).
MIN_SHARE = 0.5


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    lines = _WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith("#"))


def ligature_map(text: str) -> dict[str, str]:
    """Which control character in `text` stands for which ligature (only clear cases)."""
    words = known_words()
    mapping: dict[str, str] = {}
    for char in set(text) & _SUSPECT:
        broken = set(re.findall(rf"[A-Za-z]*{re.escape(char)}[A-Za-z]*", text))
        broken = {w.lower() for w in broken if len(w) > 1}
        votes = Counter({lig: sum(w.replace(char, lig) in words for w in broken) for lig in LIGATURES})
        (best, n), (_, runner_up) = votes.most_common(2)
        if n >= MIN_WORDS and n >= MIN_SHARE * len(broken) and n >= 2 * runner_up:
            mapping[char] = best
    return mapping


def translate_ligatures(text: str, mapping: dict[str, str]) -> str:
    """`text` with the characters of a `ligature_map` replaced by their letters."""
    return text.translate(str.maketrans(mapping)) if mapping else text
