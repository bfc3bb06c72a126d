"""A retrieved passage as the answer cites it, with the place it comes from."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Source:
    """One retrieved chunk, numbered as the answer cites it ([1], [2], ...)."""

    number: int
    chunk_id: str
    file: str
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    score: float
    text: str
    ocr: bool = False  # read from a scanned page with OCR: a word may be misread

    @property
    def location(self) -> str:
        """Human-readable place: "book.pdf, p. 12–13 (printed 10–11), 5.2 Chaining" or
        "notes.md › Hashing › Collisions"."""
        where = self.file
        if self.page_start is not None:
            pages = str(self.page_start) if self.page_start == self.page_end else f"{self.page_start}–{self.page_end}"
            where += f", p. {pages}"
            if self.page_label and self.page_label != pages:
                where += f" (printed {self.page_label})"
            if self.heading:  # a PDF's outline: the innermost section is enough here
                where += f", {self.heading.split(' › ')[-1]}"
        elif self.heading:
            where += f" › {self.heading}"
        if self.ocr:
            where += " (scanned, text recognised by OCR)"
        return where

    def to_dict(self) -> dict:
        data = asdict(self)
        data["location"] = self.location
        return data
