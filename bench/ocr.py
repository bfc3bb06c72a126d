"""OCR of scanned pages: pages per second on this machine, and how much of the text comes back.

    python bench/ocr.py [--corpus ../shared/corpus] [--pages 2] [--dpi 200 300]

Real pages of the shared textbooks are turned into scans (each page rendered to a
greyscale image at the given resolution, saved as an image-only PDF, as a scanner does),
then read the way the ingest reads them (app.ingestion.ocr.recognise: OCRmyPDF and
Tesseract on all usable cores). Prints pages/s and word recall: the share of the words of
each page's own text layer that OCR gives back (the words of a page as a bag; a misread
letter makes a word missing). Pages are taken evenly through each book, skipping pages
with little text. Two more rows at 200 dpi: the sheets fed 3 degrees askew, and upside
down (what --rotate-pages is for).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

WORD = re.compile(r"[a-z]{3,}")


def words(text: str) -> Counter:
    return Counter(WORD.findall(text.lower()))


def sample_pages(corpus: Path, per_book: int) -> list[tuple[Path, int, str]]:
    """(book, page index, its text layer) for pages spread through each book."""
    import pypdfium2 as pdfium

    chosen = []
    for book in sorted(corpus.glob("*.pdf")):
        pdf = pdfium.PdfDocument(str(book))
        total = len(pdf)
        for n in range(per_book):
            for index in range((n + 1) * total // (per_book + 1), total):
                text = pdf[index].get_textpage().get_text_bounded()
                if len(WORD.findall(text.lower())) >= 150:  # a page of prose, not a figure or title
                    chosen.append((book, index, text))
                    break
        pdf.close()
    return chosen


def as_scan(pages: list[tuple[Path, int, str]], dpi: int, out: Path, turn: float = 0.0) -> Path:
    import pypdfium2 as pdfium

    images = []
    for book, index, _ in pages:
        pdf = pdfium.PdfDocument(str(book))
        image = pdf[index].render(scale=dpi / 72).to_pil().convert("L")
        images.append(image.rotate(turn, expand=True, fillcolor=255) if turn else image)
        pdf.close()
    images[0].save(out, save_all=True, append_images=images[1:], resolution=dpi)
    return out


def main() -> None:
    from app.cpus import usable_cores
    from app.ingestion import ocr

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--pages", type=int, default=2, help="pages per book")
    parser.add_argument("--dpi", type=int, nargs="+", default=[200, 300])
    args = parser.parse_args()
    if ocr.missing_tools():
        sys.exit(f"OCR is not installed ({', '.join(ocr.missing_tools())}): apt-get install ocrmypdf tesseract-ocr")
    pages = sample_pages(args.corpus, args.pages)
    cores = usable_cores()
    options = ocr.OcrOptions(languages="eng", seconds_per_page=120, jobs=cores)
    print(f"\n{len(pages)} pages from {len({p[0] for p in pages})} books, {cores} cores\n")
    print("| scan | pages | OCR s | pages/s | s/page | word recall |")
    print("|---|---:|---:|---:|---:|---:|")
    runs = [(dpi, 0.0, f"{dpi} dpi") for dpi in args.dpi] + [(200, 3.0, "200 dpi, 3 degrees askew"),
                                                               (200, 180.0, "200 dpi, upside down")]
    for dpi, turn, label in runs:
        with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
            scan = as_scan(pages, dpi, Path(tmp) / "scan.pdf", turn)
            started = time.perf_counter()
            found = ocr.recognise(scan, list(range(len(pages))), options)
            elapsed = time.perf_counter() - started
        truth = sum((words(text) for _, _, text in pages), Counter())
        read = sum((words(found[i] or "") for i in range(len(pages))), Counter())
        recall = sum((truth & read).values()) / max(sum(truth.values()), 1)
        print(f"| {label} | {len(pages)} | {elapsed:.1f} | {len(pages) / elapsed:.2f} | "
              f"{elapsed / len(pages):.2f} | {recall:.3f} |")


if __name__ == "__main__":
    main()
