"""Sentence-aware chunking measured in the embedder's own word pieces.

Why our own splitter: every chunk must know which page(s) it came from, and its
size must be counted with the tokenizer of the model that embeds it (all-MiniLM-L6-v2
reads only its first 256 word pieces; anything past that is silently ignored).
Text is cut into sentences, sentences are counted in one batched tokenizer call,
and whole sentences are packed greedily up to the budget, with a few trailing
sentences repeated as overlap. Chunks may span a PDF page break (a sentence often
does); they never span a heading section of Markdown, HTML or DOCX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from app.ingestion.readers import Section

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]”’]*\s+(?=[\"'(\[“‘]?[A-Z0-9])")


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    section: int
    paragraph_start: bool


@dataclass
class Chunk:
    """One embeddable piece of a file, with where it came from."""

    index: int
    text: str
    token_count: int
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    heading_embedded: bool = True
    ocr_pages: tuple[int, ...] = ()  # its pages whose text was recognised from an image (OCR)


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


class Chunker:
    """Pack sentences into chunks of at most `chunk_size` word pieces."""

    def __init__(self, tokenizer: Any, chunk_size: int, chunk_overlap: int):
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.tokenizer = tokenizer
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    # -- token counting ------------------------------------------------------
    def count_tokens(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                                 return_token_type_ids=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def _split_long(self, text: str) -> list[str]:
        """Cut an over-long sentence at line breaks, then at word-piece boundaries."""
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if len(lines) > 1:
            pieces: list[str] = []
            for line, n in zip(lines, self.count_tokens(lines)):
                pieces.extend([line] if n <= self.chunk_size else self._split_by_tokens(line))
            return pieces
        return self._split_by_tokens(text)

    def _split_by_tokens(self, text: str) -> list[str]:
        """Windows of at most chunk_size word pieces, cut between words where possible."""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        offsets = encoded["offset_mapping"]
        word_ids = encoded.word_ids() if hasattr(encoded, "word_ids") else [None] * len(offsets)
        pieces = []
        start = 0
        while start < len(offsets):
            end = min(start + self.chunk_size, len(offsets))
            if end < len(offsets):
                cut = end
                while cut > start + 1 and word_ids[cut] is not None and word_ids[cut] == word_ids[cut - 1]:
                    cut -= 1
                end = cut if cut > start + 1 else end
            begin_char = offsets[start][0] if start else 0
            end_char = offsets[end][0] if end < len(offsets) else len(text)
            piece = text[begin_char:end_char].strip()
            if piece:
                pieces.append(piece)
            start = end
        return pieces

    # -- splitting into units ------------------------------------------------
    def _units(self, sections: list[Section]) -> list[_Unit]:
        raw: list[tuple[str, int, bool]] = []
        for s_index, section in enumerate(sections):
            for paragraph in re.split(r"\n\s*\n", section.text):
                for i, sentence in enumerate(split_sentences(paragraph)):
                    raw.append((sentence, s_index, i == 0))
        counts = self.count_tokens([text for text, _, _ in raw])
        units: list[_Unit] = []
        for (text, s_index, para_start), n in zip(raw, counts):
            if n <= self.chunk_size:
                units.append(_Unit(text, n, s_index, para_start))
                continue
            for j, piece in enumerate(self._split_long(text)):
                units.append(_Unit(piece, self.count_tokens([piece])[0], s_index, para_start and j == 0))
        return units

    # -- packing -------------------------------------------------------------
    def chunk(self, sections: list[Section]) -> list[Chunk]:
        units = self._units(sections)
        chunks: list[Chunk] = []
        current: list[_Unit] = []
        size = 0

        def heading_of(unit: _Unit) -> str | None:
            return sections[unit.section].heading

        def emit() -> None:
            if current:
                chunks.append(self._make_chunk(len(chunks), current, sections))

        def breaks_between(a: _Unit, b: _Unit) -> bool:
            """A new heading starts a new chunk, except in paged documents: a PDF outline
            only says on which page a section starts, not where on it."""
            return heading_of(a) != heading_of(b) and sections[b.section].page is None

        for unit in units:
            crosses_heading = bool(current) and breaks_between(current[-1], unit)
            if current and (size + unit.tokens > self.chunk_size or crosses_heading):
                emit()
                current = [] if crosses_heading else self._overlap_tail(current, unit.tokens)
                size = sum(u.tokens for u in current)
            current.append(unit)
            size += unit.tokens
        emit()
        return chunks

    def _overlap_tail(self, units: list[_Unit], next_tokens: int) -> list[_Unit]:
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(units):
            if total + unit.tokens > self.chunk_overlap or total + unit.tokens + next_tokens > self.chunk_size:
                break
            tail.insert(0, unit)
            total += unit.tokens
        return tail

    @staticmethod
    def _make_chunk(index: int, units: Iterable[_Unit], sections: list[Section]) -> Chunk:
        units = list(units)
        parts: list[str] = []
        for i, unit in enumerate(units):
            if i and unit.paragraph_start:
                parts.append("\n\n")
            elif i:
                parts.append(" ")
            parts.append(unit.text)
        first, last = sections[units[0].section], sections[units[-1].section]
        label = None
        if first.page_label:
            label = first.page_label if first.page_label == last.page_label else f"{first.page_label}–{last.page_label}"
        return Chunk(
            index=index,
            text="".join(parts),
            token_count=sum(u.tokens for u in units),
            page_start=first.page,
            page_end=last.page,
            page_label=label,
            heading=first.heading,
            heading_embedded=first.heading_embedded,
            ocr_pages=tuple(sorted({sections[u.section].page for u in units if sections[u.section].ocr})),
        )
