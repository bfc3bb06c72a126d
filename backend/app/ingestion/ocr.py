"""Recognise the text of scanned PDF pages with OCRmyPDF and Tesseract.

Why OCRmyPDF rather than Tesseract alone: it turns pages the right way up (a page
scanned upside down reads 1% of its words without that, 99.7% with it), runs one
Tesseract per core and stops a page that takes too long, and it is maintained and
packaged by Debian (`apt-get install ocrmypdf tesseract-ocr`), as the
startup script does. Why only some pages: a page that already has a text layer reads
exactly and at once; OCR is for pages that are a picture of text (see `needs_ocr`).

The pages to read are copied into a PDF of their own, so OCRmyPDF's text file holds
one page of text per page asked for, in order (split on form feeds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("ocrmypdf", "tesseract")
# A scanned page may carry a stamped page number or a copier's footer as text; a page
# with a real text layer holds hundreds of characters. A scan is a picture of the whole
# sheet; a full-page figure in a book (a flowchart, a photograph) leaves margins. Of the
# 2,049 pages of the shared textbooks, none qualifies (one flowchart covers 57%).
MAX_TEXT_CHARACTERS = 40
MIN_IMAGE_SHARE = 0.8


@dataclass(frozen=True)
class OcrOptions:
    """How to recognise text; built by the ingest from settings (RAG_OCR*)."""

    languages: str = "eng"  # Tesseract's names, joined with "+": "eng+deu"
    seconds_per_page: float = 60.0
    jobs: int = 2

    def describe(self) -> str:
        return f"ocr:{self.languages}"


def missing_tools() -> list[str]:
    """The OCR programs not on PATH (empty: OCR can run)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def needs_ocr(page, text: str) -> bool:
    """A page that is a picture of text: next to no text layer, and images over most of
    it (a scanner may tile one sheet into strips). Blank pages, drawings and figures with
    margins are left alone."""
    if len("".join(text.split())) >= MAX_TEXT_CHARACTERS:
        return False
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()
    covered = 0.0
    for image in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        left, bottom, right, top = image.get_bounds()
        covered += max(0.0, min(right, width) - max(left, 0.0)) * max(0.0, min(top, height) - max(bottom, 0.0))
    return covered >= MIN_IMAGE_SHARE * max(width * height, 1.0)


class OcrFailedError(Exception):
    """OCRmyPDF could not read the pages; the message says why in plain words."""


def recognise(path: Path, pages: list[int], options: OcrOptions) -> dict[int, str | None]:
    """Text of the given pages (0-based indexes) of the PDF at `path`, by page index;
    None for a page Tesseract gave up on (over `seconds_per_page`). OcrFailedError when
    nothing could be read."""
    import pypdfium2 as pdfium

    if not pages:
        return {}
    with tempfile.TemporaryDirectory(prefix="rag-ocr-") as tmp:
        subset, sidecar = Path(tmp) / "pages.pdf", Path(tmp) / "pages.txt"
        source = pdfium.PdfDocument(str(path))
        copy = pdfium.PdfDocument.new()
        try:
            copy.import_pages(source, pages)
            copy.save(str(subset))
        finally:
            copy.close()
            source.close()
        command = [
            # no --deskew: Tesseract reads a page 3 degrees askew as well without it (98%
            # of the words either way, bench/ocr.py's pages), and it costs a third more time
            "ocrmypdf", "--quiet", "--force-ocr", "--rotate-pages",
            "--output-type", "none", "--sidecar", str(sidecar),
            "--language", options.languages, "--jobs", str(max(1, options.jobs)),
            "--tesseract-timeout", f"{options.seconds_per_page:g}",
            str(subset), "-",
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=tmp,
                                  timeout=options.seconds_per_page * len(pages) + 60,
                                  preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise OcrFailedError(f"OCR took longer than {options.seconds_per_page:g} s a page "
                                 "(RAG_OCR_SECONDS_PER_PAGE)") from None
        except OSError as exc:
            raise OcrFailedError(f"OCR could not start ({exc.strerror or exc})") from None
        if done.returncode != 0 or not sidecar.exists():
            raise OcrFailedError(f"OCR failed on it ({_last_line(done.stderr) or f'exit code {done.returncode}'})")
        texts = sidecar.read_text(encoding="utf-8", errors="replace").split("\f")
    found = {index: _page_text(texts[n] if n < len(texts) else "") for n, index in enumerate(pages)}
    if all(text is None for text in found.values()):
        raise OcrFailedError(f"OCR gave up on every page (over {options.seconds_per_page:g} s each, "
                             "RAG_OCR_SECONDS_PER_PAGE)")
    return found


def _page_text(text: str) -> str | None:
    """OCRmyPDF writes "[skipped page]" for a page Tesseract timed out on."""
    return None if text.strip() == "[skipped page]" else text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _die_with_parent() -> None:
    """In OCRmyPDF's process: end with the reading process that started it (killed when
    a file runs past its time), rather than read on for nobody."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.setpgrp()  # and Ctrl-C in a terminal is the ingest's to handle, not OCRmyPDF's
