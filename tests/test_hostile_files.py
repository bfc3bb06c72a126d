"""Files that would hang, exhaust or leak through the ingest: each is named as failed or
skipped, within its limit, while the other files are ingested (real readers, real Milvus
Lite, the real embedder; the reading child process is the real one)."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path

import pytest

from conftest import cli_env, make_pdf, run_cli, topic_text


@pytest.fixture
def materials(tmp_path) -> Path:
    root = tmp_path / "materials"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "stacks.md").write_text(f"# Stacks\n{topic_text('stacks', 4)}\n")
    (root / "notes" / "queues.txt").write_text(topic_text("queues", 4))
    return root


def run_within(harness, materials: Path, seconds: float, settings=None):
    """The ingest, or a failure if it has not finished in `seconds` (a hang)."""
    result: dict = {}

    def work():
        try:
            ingestor = harness.ingestor(settings)
            result["report"] = ingestor.run(materials)
        except BaseException as exc:  # reported below
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the ingest hung (still running after {seconds} s)"
    if "error" in result:
        raise result["error"]
    return result["report"], time.monotonic() - started


def docx_bomb(path: Path, unzipped_mb: int) -> None:
    """A DOCX whose document part inflates to `unzipped_mb` of zeros (a few hundred KB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
                         'openxmlformats.org/package/2006/content-types"/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\0" * (1 << 20)
            for _ in range(unzipped_mb):
                part.write(block)


def test_a_fifo_and_a_link_out_of_the_folder_are_named_not_read(harness, materials):
    os.mkfifo(materials / "notes" / "pipe.md")  # reading it would block for ever
    (materials / "notes" / "passwd.txt").symlink_to("/etc/passwd")
    (materials / "notes" / "alias.md").symlink_to(materials / "notes" / "stacks.md")  # inside: fine
    report, _ = run_within(harness, materials, 120)
    assert report.failed["notes/pipe.md"] == "not a regular file (a named pipe); only files are read"
    assert "outside the materials folder" in report.failed["notes/passwd.txt"]
    assert sorted(report.ingested) == ["notes/alias.md", "notes/queues.txt", "notes/stacks.md"]
    assert not any("root:" in row["text"] for row in harness.rows())


def test_the_cli_names_a_fifo_and_finishes(settings, materials):
    os.mkfifo(materials / "notes" / "pipe.md")
    result = run_cli(["--directory", str(materials)], cli_env(settings), timeout=240)
    assert result.returncode == 1, result.stderr  # 1: some files failed, the rest are stored
    assert "notes/pipe.md: not a regular file (a named pipe)" in result.stdout
    assert "2 new" in result.stdout


def test_a_decompression_bomb_is_refused_before_it_is_inflated(harness, materials):
    docx_bomb(materials / "bomb.docx", unzipped_mb=600)  # over the 500 MB default
    assert (materials / "bomb.docx").stat().st_size < 5 * 2**20
    report, elapsed = run_within(harness, materials, 120)
    assert report.failed["bomb.docx"].startswith("it unzips to 600 MB, over the 500 MB limit")
    assert sorted(report.ingested) == ["notes/queues.txt", "notes/stacks.md"]


def test_an_oversized_text_file_is_refused_before_it_is_chunked(harness, materials):
    words = ("stack " * 199 + "push\n").encode()  # a 7-million-character file, over the 6 million default
    (materials / "huge.txt").write_bytes(words * (7_000_000 // len(words) + 1))
    report, elapsed = run_within(harness, materials, 120)
    assert "over the limit of 6,000,000 characters per document" in report.failed["huge.txt"]
    assert sorted(report.ingested) == ["notes/queues.txt", "notes/stacks.md"]
    assert elapsed < 60  # chunking and embedding it would take many minutes here


def test_a_slow_file_is_stopped_at_its_time_limit(harness, materials, settings):
    make_pdf(materials / "book.pdf", [topic_text(f"topic {n}", 12) for n in range(300)])  # seconds to read
    quick = settings.model_copy(update={"max_read_seconds": 0.3})
    report, elapsed = run_within(harness, materials, 120, quick)
    assert report.failed["book.pdf"] == "reading it took longer than 0.3 s and was stopped (RAG_MAX_READ_SECONDS)"
    assert sorted(report.ingested) == ["notes/queues.txt", "notes/stacks.md"]


def test_ocr_gets_its_own_time_per_scanned_page_and_a_stuck_ocr_is_stopped(harness, materials, settings):
    from app.ingestion.progress import ProgressListener
    from conftest import make_scanned_pdf

    make_scanned_pdf(materials / "scan.pdf", [topic_text(f"tidal zone {n}", 6) for n in range(4)])
    heard: list = []

    class Listener(ProgressListener):
        def recognising(self, path, pages):
            heard.append((path, pages, time.monotonic()))

        def file_finished(self, path, status, detail=""):
            heard.append((path, status, time.monotonic()))

    quick = settings.model_copy(update={"max_read_seconds": 0.3})  # far less than OCR of 4 pages takes
    report = harness.ingestor(quick).run(materials, listener=Listener())
    assert report.exit_code == 0 and report.ocr_pages == {"scan.pdf": [1, 2, 3, 4]}
    scan = [(what, at) for path, what, at in heard if path == "scan.pdf"]
    assert [what for what, _ in scan] == [4, "ingested"]
    assert scan[1][1] - scan[0][1] > 0.3  # the time granted for OCR was needed
    (materials / "scan.pdf").write_bytes((materials / "scan.pdf").read_bytes() + b"\n")  # changed: read again
    stuck = quick.model_copy(update={"ocr_seconds_per_page": 0.01})  # Tesseract cannot finish a page
    report, _ = run_within(harness, materials, 120, stuck)
    assert report.failed["scan.pdf"] == ("no extractable text: its pages are scanned images and OCR gave up on "
                                         "every page (over 0.01 s each, RAG_OCR_SECONDS_PER_PAGE)")  # and the file's own 0.3 s did not stop it


def test_a_file_that_needs_too_much_memory_is_stopped(harness, materials, settings):
    (materials / "wide.txt").write_text(("word " * 20 + "\n") * 600_000)  # 60 MB of text
    tight = settings.model_copy(update={"max_read_memory_mb": 256, "max_read_characters": 100_000_000})
    report, _ = run_within(harness, materials, 120, tight)
    assert report.failed["wide.txt"] == "reading it needed more than 256 MB of memory (RAG_MAX_READ_MEMORY_MB)"
    assert sorted(report.ingested) == ["notes/queues.txt", "notes/stacks.md"]


def test_a_failed_file_is_not_read_again_until_it_changes(harness, materials, settings):
    docx_bomb(materials / "bomb.docx", unzipped_mb=30)
    small = settings.model_copy(update={"max_read_office_unzipped_mb": 20})
    first, _ = run_within(harness, materials, 120, small)
    assert "bomb.docx" in first.failed and first.failed_before == []
    again, _ = run_within(harness, materials, 120, small)
    assert again.failed == first.failed and again.failed_before == ["bomb.docx"]  # remembered, not re-read
    assert again.unchanged == 2
    raised = small.model_copy(update={"max_read_office_unzipped_mb": 40})  # a new limit: tried again
    retried, _ = run_within(harness, materials, 120, raised)
    assert retried.failed_before == [] and "corrupt or not a DOCX" in retried.failed["bomb.docx"]
    (materials / "bomb.docx").unlink()
    (materials / "bomb.docx").write_bytes(b"")  # changed: tried again, fails for its new reason
    changed, _ = run_within(harness, materials, 120, raised)
    assert changed.failed_before == [] and changed.failed["bomb.docx"] == "empty file (0 bytes)"
    (materials / "bomb.docx").unlink()  # gone: forgotten
    run_within(harness, materials, 120, raised)
    assert harness.ingestor(raised).catalog.failures() == {}


def test_a_remembered_failure_does_not_load_the_embedder(harness, materials, settings, embedder):
    """A re-run of a folder whose only change-candidate is a file that failed before reads
    nothing and loads no model (loading it is most of an unchanged re-run's time)."""
    (materials / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    first, _ = run_within(harness, materials, 120)
    assert "broken.pdf" in first.failed
    loads = []

    def counting_loader():
        loads.append(1)
        return embedder

    client, target = harness.client()
    from app.ingestion.pipeline import Ingestor

    again = Ingestor(settings, client, target.describe(),
                     embedder_loader=counting_loader).run(materials)
    assert again.failed_before == ["broken.pdf"] and again.unchanged == 2
    assert loads == []
