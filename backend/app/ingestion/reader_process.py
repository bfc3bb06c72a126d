"""Read documents in a child process that can be stopped.

Why: a parser is third-party C and Python code run on whatever a teacher (or a
stranger with the key) drops in. A crafted PDF can spin for ever, a DOCX can unzip
to gigabytes, a one-line text file can hold ten million characters. In this process
such a file would hang the ingest and every upload queued behind it. In a child
process it meets four limits, each reported by name while the other files go on:
wall time (the child is killed), memory (the child's address space is capped),
decompressed size of an Office file (checked before it is parsed) and extracted
characters (checked before anything is chunked or embedded).

The child is started once per ingest run and reused for every file; a killed one is
replaced on the next file. Messages are pickled frames on the child's stdin/stdout.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.ingestion.ocr import OcrOptions
from app.ingestion.readers import ExtractedDocument, UnreadableFileError, count_pdf_pages, read_document

_FRAME = struct.Struct("!Q")
_OFFICE = {".docx", ".pptx"}
_TEXT = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".ipynb"}
_BACKEND_DIR = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ReadLimits:
    """What one file may cost to read; from settings (RAG_MAX_READ_*)."""

    seconds: float = 300.0
    memory_mb: int = 4096
    characters: int = 6_000_000
    office_unzipped_mb: int = 500
    ocr: OcrOptions | None = None  # None: scanned pages are named, not read

    def describe(self) -> str:
        """Part of a remembered failure's key: raising a limit, or OCR becoming available,
        retries the files it stopped."""
        ocr = self.ocr.describe() if self.ocr else "no-ocr"
        return f"{self.seconds}|{self.memory_mb}|{self.characters}|{self.office_unzipped_mb}|{ocr}"


def check_office_archive(path: Path, limit_mb: int) -> None:
    """Refuse a DOCX/PPTX whose parts unzip to more than `limit_mb` (a decompression
    bomb), from the archive's directory alone: nothing is inflated."""
    try:
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # the reader says "corrupt" in its own words
    if unzipped > limit_mb * 1024 * 1024:
        raise UnreadableFileError(
            f"it unzips to {unzipped / 2**20:,.0f} MB, over the {limit_mb:,} MB limit for Office files "
            "(RAG_MAX_READ_OFFICE_UNZIPPED_MB)")


def read_within_limits(path: Path, limits: ReadLimits,
                       before_ocr: Callable[[int], None] | None = None) -> ExtractedDocument:
    """The checks that need no stopwatch, then the reader (runs in the child).
    `before_ocr(pages)` is called before scanned pages are recognised."""
    suffix = path.suffix.lower()
    if suffix in _OFFICE:
        check_office_archive(path, limits.office_unzipped_mb)
    # A text file holds at most one character per byte read; four bytes per character is
    # UTF-8's worst, so a file this large is refused before it is decoded.
    if suffix in _TEXT and path.stat().st_size > limits.characters * 4:
        raise UnreadableFileError(_too_many_characters(path.stat().st_size, limits, "bytes"))
    recognise = None
    if limits.ocr is not None:
        from app.ingestion import ocr

        def recognise(pdf: Path, pages: list[int]) -> dict[int, str]:
            if before_ocr is not None:
                before_ocr(len(pages))
            return ocr.recognise(pdf, pages, limits.ocr)

    document = read_document(path, recognise)
    characters = sum(len(section.text) for section in document.sections)
    if characters > limits.characters:
        raise UnreadableFileError(_too_many_characters(characters, limits, "characters of text"))
    return document


def _too_many_characters(count: int, limits: ReadLimits, what: str) -> str:
    return (f"it holds {count:,} {what}, over the limit of {limits.characters:,} characters "
            "per document (RAG_MAX_READ_CHARACTERS); split it into parts")


class ReaderProcess:
    """A reading child process, started on first use; `close()` ends it."""

    def __init__(self, limits: ReadLimits):
        self.limits = limits
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "ReaderProcess":
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is not None:  # interrupted mid-file, maybe: nothing to wait for
            self._kill()
        self.close()

    def read(self, path: Path, recognising: Callable[[int], None] | None = None) -> ExtractedDocument:
        """The document, or UnreadableFileError saying which limit stopped it.
        `recognising(pages)`: OCR starts on that many scanned pages; they get
        RAG_OCR_SECONDS_PER_PAGE each on top of the file's own time."""
        return self._ask("read", path, self.limits.seconds, recognising)

    def count_pages(self, path: Path) -> int:
        """A PDF's pages for the progress total (0 if it cannot be opened in time)."""
        try:
            return self._ask("pages", path, min(self.limits.seconds, 30.0))
        except UnreadableFileError:
            return 0

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            proc.stdout.close()

    # -- the conversation with the child -----------------------------------------
    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                p for p in (str(_BACKEND_DIR), os.environ.get("PYTHONPATH", "")) if p))
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "app.ingestion.reader_process", str(self.limits.memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_BACKEND_DIR, env=env,
            )
        return self._proc

    def _ask(self, kind: str, path: Path, seconds: float, recognising: Callable[[int], None] | None = None):
        proc = self._start()
        limit_names = "RAG_MAX_READ_SECONDS"
        try:
            _write_frame(proc.stdin, (kind, str(path), self.limits))
            deadline = time.monotonic() + seconds
            reply = _read_frame(proc.stdout, deadline)
            while reply[0] == "ocr":  # OCR starts: its own time on top
                pages = reply[1]
                limit_names += " and RAG_OCR_SECONDS_PER_PAGE"
                extra = self._ocr_seconds(pages)
                seconds += extra
                deadline += extra
                if recognising is not None:
                    recognising(pages)
                reply = _read_frame(proc.stdout, deadline)
        except TimeoutError:
            self._kill()
            raise UnreadableFileError(
                f"reading it took longer than {seconds:g} s and was stopped ({limit_names})") from None
        except (EOFError, OSError, pickle.UnpicklingError):
            code = self._kill()
            raise UnreadableFileError(_crash_reason(code, self.limits)) from None
        status, value = reply
        if status == "ok":
            return value
        raise UnreadableFileError(value)

    def _ocr_seconds(self, pages: int) -> float:
        """More than OCRmyPDF's own limit (ocr.recognise), so that it reports first."""
        return (self.limits.ocr.seconds_per_page if self.limits.ocr else 0.0) * pages + 90.0

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return code


def _crash_reason(code: int | None, limits: ReadLimits) -> str:
    if code is not None and code < 0 and -code == 9:
        return f"reading it needed more than {limits.memory_mb:,} MB of memory (RAG_MAX_READ_MEMORY_MB)"
    return f"the reader crashed on it (exit code {code}); the file may be corrupt"


def _write_frame(stream, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read_exactly(stream, size: int, deadline: float | None) -> bytes:
    parts, missing = [], size
    fd = stream.fileno()
    while missing:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
        block = os.read(fd, min(missing, 1 << 20))
        if not block:
            raise EOFError
        parts.append(block)
        missing -= len(block)
    return b"".join(parts)


def _read_frame(stream, deadline: float | None):
    (size,) = _FRAME.unpack(_read_exactly(stream, _FRAME.size, deadline))
    return pickle.loads(_read_exactly(stream, size, deadline))


def _serve(memory_mb: int) -> None:
    """The child: cap memory, keep stdout for frames only, answer until stdin closes.

    Ctrl-C in a terminal reaches the whole process group: the parent handles it (and
    ends this process); taken here, it would read as a crash on the file being read. A
    parent killed outright takes this process with it (Linux), even mid-file."""
    import resource
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    cap = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's print() must not corrupt a frame
    while True:
        try:
            kind, path, limits = _read_frame(requests, None)
        except EOFError:
            return
        try:
            if kind == "pages":
                reply = ("ok", count_pdf_pages(Path(path)))
            else:
                reply = ("ok", read_within_limits(Path(path), limits,
                                                  lambda pages: _write_frame(replies, ("ocr", pages))))
        except UnreadableFileError as exc:
            reply = ("failed", str(exc))
        except MemoryError:
            reply = ("failed", f"reading it needed more than {memory_mb:,} MB of memory "
                               "(RAG_MAX_READ_MEMORY_MB)")
        except Exception as exc:  # a reader's own bug on an odd file: that file fails, not the run
            reply = ("failed", f"the reader failed on it ({type(exc).__name__}); the file may be corrupt")
        _write_frame(replies, reply)


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: stdin's end still stops an idle child
        pass
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
