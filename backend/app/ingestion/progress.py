"""What an ingest run reports while it works and when it is done.

Why separate: the same events drive the CLI's progress bar, the JSON summary, and
(later) the backend's upload endpoint, so the pipeline never prints anything itself.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Plan:
    to_ingest: int
    to_update: int
    unchanged: int
    to_remove: int
    total_pages: int


def page_ranges(pages: list[int]) -> str:
    """[3, 4, 5, 9] -> "3-5, 9"."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][-1] + 1:
            runs[-1].append(page)
        else:
            runs.append([page])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}" for run in runs)


def cited_pages(pages: list[int]) -> str:
    """[3, 4, 5, 9] -> "pp. 3-5, 9"; [7] -> "p. 7"."""
    return ("p. " if len(pages) == 1 else "pp. ") + page_ranges(pages)


class ProgressListener:
    """Receives progress; the default does nothing (library use, tests)."""

    def loading_model(self, name: str) -> None: ...

    def planned(self, plan: Plan) -> None: ...

    def file_started(self, path: str, pages: int) -> None: ...

    def recognising(self, path: str, pages: int) -> None:
        """OCR starts on that many scanned pages of the file (about 2 s each on 2 cores)."""

    def advanced(self, pages: int, chunks: int) -> None: ...

    def file_finished(self, path: str, status: str, detail: str = "") -> None: ...


@dataclass
class IngestReport:
    directory: str
    database: str
    ingested: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    failed_before: list[str] = field(default_factory=list)  # failed on an earlier run, unchanged since
    warnings: dict[str, list[str]] = field(default_factory=dict)
    left_out_pages: dict[str, list[int]] = field(default_factory=dict)  # contents / index pages
    ocr_pages: dict[str, list[int]] = field(default_factory=dict)  # scanned pages read with OCR
    repaired: list[str] = field(default_factory=list)
    hidden_skipped: int = 0
    unsupported_skipped: Counter = field(default_factory=Counter)
    stale_on_disk: list[str] = field(default_factory=list)
    pages: int = 0
    chunks_written: int = 0
    tokens_total: int = 0
    tokens_embedded: int = 0
    chunks_in_database: int = 0
    elapsed_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def embedded_share(self) -> float:
        """Share of chunk word pieces inside the embedder's window (1.0 = nothing cut)."""
        return self.tokens_embedded / self.tokens_total if self.tokens_total else 1.0

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["unsupported_skipped"] = dict(self.unsupported_skipped)
        data["embedded_share"] = round(self.embedded_share, 4)
        data["exit_code"] = self.exit_code
        return data
