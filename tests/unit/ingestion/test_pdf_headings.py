"""Headings of PDFs without an outline, read from the type size, on real PDFs made here."""

from __future__ import annotations

from pathlib import Path

from app.ingestion.readers import read_document
from conftest import topic_text

BODY = 11


def styled_pdf(path: Path, pages: list[list[tuple[float, str]]]) -> Path:
    """One page per entry; each (size, text) is a paragraph set in that size.
    A text "A^1" sets "1" as a small superscript after "A" on the same line."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    for paragraphs in pages:
        pdf.add_page()
        for size, text in paragraphs:
            main, _, mark = text.partition("^")
            pdf.set_font("Helvetica", size=size)
            if mark:
                pdf.cell(pdf.get_string_width(main) + 1, size * 0.5, main)
                pdf.set_font("Helvetica", size=size * 0.5)
                pdf.cell(10, size * 0.3, mark, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(size * 0.3)
            else:
                pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def body(topic: str) -> tuple[float, str]:
    return (BODY, topic_text(topic, 6))


def test_chapter_and_section_headings_give_each_page_its_path(tmp_path):
    pages = [[(28, "Sorting Handbook"), body("the preface")]]
    for n, (chapter, sections) in enumerate(
        [("Comparison Sorts", ["Merge Sort", "Quicksort"]), ("Counting Sorts", ["Radix Sort", "Bucket Sort"]),
         ("Searching", ["Binary Search", "Hashing"])], 1
    ):
        pages.append([(18, f"{n} {chapter}"), body(chapter.lower()), (14, f"{n}.1 {sections[0]}"),
                      body(sections[0].lower())])
        pages.append([body(f"more {sections[0].lower()}")])  # no heading: the path in force carries on
        pages.append([(14, f"{n}.2 {sections[1]}"), body(sections[1].lower())])
    doc = read_document(styled_pdf(tmp_path / "book.pdf", pages))
    headings = {s.page: s.heading for s in doc.sections}
    assert headings[1] is None  # the cover title is one of a kind, not a level
    assert headings[2] == "1 Comparison Sorts › 1.1 Merge Sort"
    assert headings[3] == "1 Comparison Sorts › 1.1 Merge Sort"
    assert headings[4] == "1 Comparison Sorts › 1.2 Quicksort"
    assert headings[5] == "2 Counting Sorts › 2.1 Radix Sort"  # a new chapter closes the old path
    assert headings[10] == "3 Searching › 3.2 Hashing"
    assert not any(s.heading_embedded for s in doc.sections)  # named in citations, not embedded


def test_a_guessed_heading_is_not_embedded_but_an_outline_heading_is():
    from app.ingestion.chunking import Chunk
    from app.ingestion.pipeline import embedding_text

    chunk = Chunk(index=0, text="Merge sort splits the list.", token_count=6, page_start=2, page_end=2,
                  page_label=None, heading="1 Sorting › 1.1 Merge Sort")
    assert embedding_text(chunk) == "1 Sorting › 1.1 Merge Sort\n\nMerge sort splits the list."
    chunk.heading_embedded = False
    assert embedding_text(chunk) == "Merge sort splits the list."


def test_wrapped_headings_are_joined_and_footnote_marks_dropped(tmp_path):
    pages = []
    for n, topic in enumerate(["loops", "arrays", "pointers"], 1):
        pages.append([(16, f"{n} A Long Chapter Title About"), (16, f"Programming With {topic.title()}"),
                      body(topic)])
        pages.append([(16, f"{n}.9 Notes on {topic.title()}^{n + 3}"), body(f"{topic} notes")])
    doc = read_document(styled_pdf(tmp_path / "book.pdf", pages))
    headings = [s.heading for s in doc.sections]
    assert headings[0] == "1 A Long Chapter Title About Programming With Loops"
    assert headings[1] == "1.9 Notes on Loops"


def test_a_running_header_in_large_type_is_not_a_heading(tmp_path):
    pages = [[(20, "Course Reader"), (16, f"Unit {n}: {topic}"), body(topic)]
             for n, topic in enumerate(["sets", "maps", "lists", "trees", "heaps"], 1)]
    doc = read_document(styled_pdf(tmp_path / "reader.pdf", pages))
    assert [s.heading for s in doc.sections] == [
        "Unit 1: sets", "Unit 2: maps", "Unit 3: lists", "Unit 4: trees", "Unit 5: heaps"]


def test_text_in_one_size_has_no_headings(tmp_path):
    pages = [[(BODY, "Plain notes"), body(topic)] for topic in ["sets", "maps", "lists", "trees"]]
    doc = read_document(styled_pdf(tmp_path / "notes.pdf", pages))
    assert all(s.heading is None for s in doc.sections)


def test_a_running_header_repeating_the_chapter_title_is_dropped_without_an_outline(tmp_path):
    # African Virtual University modules and many others print the unit's title at the
    # top of its later pages in small type; the headings here come from the type size.
    chapters = ["Comparison Sorts", "Counting Sorts", "Searching Methods"]
    pages = [[(28, "Sorting Handbook"), body("the preface")]]
    for n, chapter in enumerate(chapters, 1):
        pages.append([(18, f"Unit {n}. {chapter}"), body(chapter.lower())])
        pages.append([(8, f"Unit {n}. {chapter}"), body(f"more {chapter.lower()}")])
    texts = {s.page: s.text for s in read_document(styled_pdf(tmp_path / "book.pdf", pages)).sections}
    assert texts[2].startswith("Unit 1. Comparison Sorts\n")  # where the unit starts: its heading
    assert texts[3].startswith("Sentence 1 explains how more comparison sorts") and "Unit 1" not in texts[3]
    assert texts[7].startswith("Sentence 1 explains how more searching methods") and "Unit 3" not in texts[7]
