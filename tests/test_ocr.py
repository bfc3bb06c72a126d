"""Scanned PDF pages read with the real OCRmyPDF and Tesseract, on PDFs generated here
whose pages are pictures of text."""

from __future__ import annotations

import pytest

from app.ingestion import ocr
from app.ingestion.ocr import OcrOptions
from app.ingestion.readers import SCANS_UNREAD, UnreadableFileError, read_document, scans_left_unread
from conftest import make_pdf, make_scanned_pdf

OSSUARY = "The ossuary of Saint Brevard keeps the bones of nine hundred monks from the valley. " * 3
KELP = "Kelp forests grow where cold water brings nitrates up from the deep ocean floor. " * 3
VOLCANO = "Basalt columns form when a thick lava flow cools and cracks into hexagons. " * 3


@pytest.fixture(scope="module", autouse=True)
def ocr_installed():
    if ocr.missing_tools():
        pytest.fail(f"OCR tests need {', '.join(ocr.missing_tools())}: apt-get install ocrmypdf tesseract-ocr")


def recogniser(calls: list | None = None):
    options = OcrOptions(languages="eng", seconds_per_page=60, jobs=2)

    def recognise(path, pages):
        if calls is not None:
            calls.append(list(pages))
        return ocr.recognise(path, pages, options)
    return recognise


def words(text: str) -> set[str]:
    return set(text.lower().replace(".", " ").split())


def test_an_image_only_pdf_is_read_with_ocr_page_by_page(tmp_path):
    pdf = make_scanned_pdf(tmp_path / "handout.pdf", [OSSUARY, KELP])
    calls: list = []
    doc = read_document(pdf, recogniser(calls))
    assert calls == [[0, 1]]
    assert [s.page for s in doc.sections] == [1, 2] and all(s.ocr for s in doc.sections)
    assert doc.ocr_pages == [1, 2]
    # Tesseract may misread a letter; the distinctive words of each page are there, on their page
    assert {"ossuary", "brevard", "monks"} <= words(doc.sections[0].text)
    assert {"kelp", "nitrates", "ocean"} <= words(doc.sections[1].text)
    assert "kelp" not in words(doc.sections[0].text)


def test_only_the_pages_without_a_text_layer_are_recognised(tmp_path):
    pdf = make_scanned_pdf(tmp_path / "mixed.pdf", [OSSUARY, VOLCANO, KELP], text_layer=(1,))
    calls: list = []
    doc = read_document(pdf, recogniser(calls))
    assert calls == [[0, 2]]
    assert [(s.page, s.ocr) for s in doc.sections] == [(1, True), (2, False), (3, True)]
    assert doc.sections[1].text.startswith("Basalt columns form")  # the text layer, exactly


def test_blank_pages_and_drawings_are_not_sent_to_ocr(tmp_path):
    # make_pdf draws a grey rectangle for an empty entry: no text and no image
    pdf = make_pdf(tmp_path / "notes.pdf", [VOLCANO, ""])
    calls: list = []
    doc = read_document(pdf, recogniser(calls))
    assert calls == [] and [s.page for s in doc.sections] == [1] and not doc.ocr_pages


def test_without_ocr_a_scan_fails_by_name_and_a_mixed_file_names_its_unread_pages(tmp_path):
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [OSSUARY, KELP])
    with pytest.raises(UnreadableFileError, match="no extractable text: its pages are scanned images and "
                                                  "OCR is not available"):
        read_document(scan)
    mixed = make_scanned_pdf(tmp_path / "mixed.pdf", [OSSUARY, VOLCANO], text_layer=(1,))
    doc = read_document(mixed)
    assert [s.page for s in doc.sections] == [2]
    assert any(SCANS_UNREAD in w and "1 page " in w for w in doc.warnings)
    assert scans_left_unread(doc.warnings)


def test_ocr_that_fails_is_a_warning_on_a_mixed_file_and_the_reason_on_a_scan(tmp_path):
    broken = OcrOptions(languages="xxx", seconds_per_page=60, jobs=1)  # no such language pack

    def recognise(path, pages):
        return ocr.recognise(path, pages, broken)
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [OSSUARY])
    with pytest.raises(UnreadableFileError, match="no extractable text: its pages are scanned images and "
                                                  "OCR failed on it"):
        read_document(scan, recognise)
    mixed = make_scanned_pdf(tmp_path / "mixed.pdf", [OSSUARY, VOLCANO], text_layer=(1,))
    doc = read_document(mixed, recognise)
    assert [s.page for s in doc.sections] == [2]
    assert any(w.startswith("1 scanned page not read: OCR failed on it") for w in doc.warnings)
    assert not scans_left_unread(doc.warnings)  # OCR ran: running it again would fail again
