"""Readers and text clean-up, on real files generated here."""

from __future__ import annotations

import pytest

from app.ingestion.normalize import normalize_text, strip_boilerplate_lines, strip_page_furniture
from app.ingestion.readers import UnreadableFileError, read_document
from conftest import make_pdf


def test_nfkc_turns_ligatures_into_letters_and_repairs_whitespace():
    text = normalize_text("The \ufb01rst \ufb02ow\u00a0\u00a0 is  e\ufb00ective.\r\nNext\u00adline")
    assert text == "The first flow is effective.\nNextline"


def test_line_end_hyphenation_is_joined_and_pdfium_soft_hyphen_removed():
    assert normalize_text("imple-\nmentation and proof\x02reading") == "implementation and proofreading"


def test_a_compound_split_at_its_own_hyphen_keeps_it():
    compounds = frozenset({"comparison-based"})
    text = normalize_text("not comparison-\nbased, but an imple\x02mentation of Comparison\x02Based", compounds)
    assert text == "not comparison-based, but an implementation of Comparison-Based"


def test_the_document_decides_which_split_words_are_compounds():
    from app.ingestion.normalize import hyphenated_compounds

    pages = ["A floating\x02point number. Floating-point units add floating-point values.",
             "The imple\x02mentation: an implementation. A red\x02black tree.",
             "A red-black tree, redblack here, redblack there. A bread\x02crumb."]
    # written with its hyphen elsewhere: kept; joined elsewhere, or as often joined as
    # not, or never seen again: joined (most line-end hyphens are the typesetter's)
    assert hyphenated_compounds(pages) == {"floating-point"}
    assert hyphenated_compounds(["no hyphens at all"]) == frozenset()


def test_pdf_text_keeps_the_hyphens_of_compounds_split_at_line_ends(tmp_path):
    # PDFium reports every hyphen at a line end as U+0002 and drops the line break
    text = ("Sorting that is comparison-\nbased is slow, the imple-\nmentation short. Merge sort is "
            "comparison-based too.")
    page = read_document(make_pdf(tmp_path / "book.pdf", [text])).sections[0].text
    assert page.startswith("Sorting that is comparison-based is slow, the implementation short.")


def test_dot_leader_table_of_contents_lines_are_dropped():
    text = normalize_text("Contents\n2.1 Hash tables ........ 42\nSorting . . . . . . 117\nReal text here.")
    assert text == "Contents\nReal text here."


def test_running_headers_and_page_numbers_are_stripped():
    topics = ["merging", "pivots", "heaps", "buckets", "radix", "shells", "bubbles", "trees", "runs", "gaps"]
    pages = [f"Chapter 3 | Sorting\nAbout {t}.\nMore on {t}.\nEven more on {t}.\nEnd of {t}.\n{i}"
             for i, t in enumerate(topics)]
    cleaned = strip_page_furniture(pages)
    assert all("Chapter 3" not in p for p in cleaned)
    assert cleaned[4] == "About radix.\nMore on radix.\nEven more on radix.\nEnd of radix."


def test_a_short_chapters_numbered_header_is_stripped_by_its_page_number():
    # The book prints page numbers (physical page - 2) in its headers; chapters 2 and 3 are too
    # short for their headers to repeat, but each header ends in its own page's number.
    topics = ["merging", "pivots", "heaps", "buckets", "radix", "shells", "bubbles", "trees", "runs", "gaps"]
    headers = {4: "4 | Hello World", 5: "Hello World | 5", 7: "7 Trees", 8: "Short Chapter Three 8"}
    pages = ["Title page", "Contents"] + [
        f"{headers.get(n, f'Sorting | {n}')}\nAbout {t}.\nMore on {t}, see Table {n}.\nWe saw {t} on page {n + 1}"
        for n, t in enumerate(topics, start=1)
    ]
    pages[6] = pages[6].replace("page 6", "page 5")  # body text ending in its page's number: kept
    cleaned = strip_page_furniture(pages)
    assert all("Sorting" not in p and "Hello World" not in p and "Three" not in p for p in cleaned)
    assert cleaned[6] == "About radix.\nMore on radix, see Table 5.\nWe saw radix on page 5"
    assert cleaned[8].startswith("7 Trees\n")  # chapter 7's heading on page 7, not a header
    unnumbered = [f"Heading about {t}\nBody {t}." for t in topics]
    assert strip_page_furniture(unnumbered) == unnumbered


def test_sentences_repeated_on_many_pages_are_dropped_wherever_they_sit():
    # Connexions footnotes each module's first page; Pressbooks closes each chapter with
    # the same reference list. Neither sits at the page's edge, so the furniture filter
    # misses them.
    topics = ["merging", "pivots", "heaps", "buckets", "radix", "shells", "bubbles", "trees", "runs",
              "gaps", "tries", "skips"]
    pages = []
    for n, topic in enumerate(topics):
        body = [f"Line {i} on {topic}." for i in range(12)]
        lines = [f"About {topic}.", "public static void main(String[] args) {", *body,
                 f"Case {n} shows how {topic} behave when the input is already sorted."]
        if n % 3 == 0:
            lines.insert(1, f"{n + 1}This content is available online at <http://cnx.org/content/m3{n}/1.{n}/>.")
        if n % 4 == 0:
            lines += ["References", "cnx.org: Programming Fundamentals - A Modular Approach"]
        if n in (5, 6):  # a sentence on two pages of twelve: the book's, not boilerplate
            lines.append("Each pass moves the largest element to the end of the list.")
        lines.append(f"https://docs.python.org/3/library/{topic}.html")  # a different link on each page
        pages.append("\n".join(lines))
    cleaned = strip_boilerplate_lines(pages, min_share=0.25, min_pages=3)
    assert not any("available online" in p or "cnx.org" in p for p in cleaned)
    assert cleaned[0].split("\n")[:2] == ["About merging.", "public static void main(String[] args) {"]
    assert "Case 0 shows how merging behave when the input is already sorted.\nReferences" in cleaned[0]
    assert all(p.endswith(f"/library/{t}.html") for p, t in zip(cleaned, topics))  # links to different pages
    assert "Each pass moves the largest element to the end of the list." in cleaned[5]
    assert all("main(String[] args)" in p for p in cleaned)  # code repeats and stays
    assert strip_boilerplate_lines(pages[:2], min_share=0.25, min_pages=3) == pages[:2]  # too few pages
    # a line on every page that is a good part of the document is what it says: kept
    form = [f"Name of the student and the date of the visit go here.\nVisit {n}" for n in range(12)]
    assert strip_boilerplate_lines(form, min_share=0.25, min_pages=3) == form


def test_control_characters_are_dropped_c1_included():
    # Severance's index marks each page reference with U+009F
    assert normalize_text("DRAM,\x9f 1.1.2(8),\x9f 1.1.7(20)\x07") == "DRAM, 1.1.2(8), 1.1.7(20)"


def test_pdf_keeps_physical_page_numbers_and_printed_labels(tmp_path):
    pdf = make_pdf(tmp_path / "book.pdf", ["Title page", "First chapter text.", "Second chapter text."],
                   labels="roman-then-arabic")
    doc = read_document(pdf)
    assert [(s.page, s.page_label) for s in doc.sections] == [(1, "i"), (2, "1"), (3, "2")]
    assert doc.sections[2].text == "Second chapter text."
    assert doc.page_count == 3


def test_a_pdf_without_page_labels_is_cited_by_its_printed_numbers(tmp_path):
    topics = ["merging", "pivots", "heaps", "buckets", "radix", "shells", "bubbles", "trees"]
    pages = ["Sorting, a short book", "Preface: why sort at all."] + [
        f"Sorting | {n}\nAbout {t}, which sorts in its own way." if n != 5 else f"Chapter 2\nAbout {t}."
        for n, t in enumerate(topics, start=1)  # page 5 opens a chapter: no header, still numbered
    ] + ["About the author, on a page of its own."]
    doc = read_document(make_pdf(tmp_path / "book.pdf", pages))
    assert [(s.page, s.page_label) for s in doc.sections] == (
        [(1, None), (2, None)] + [(n + 2, str(n)) for n in range(1, 9)] + [(11, None)])
    assert "Sorting |" not in doc.sections[3].text


def test_pdf_outline_gives_each_page_its_section_path(tmp_path):
    pages = ["Cover", "Hash tables store keys.", "Probing continues here.", "Chaining uses lists.",
             "Trees branch.", "More about trees."]
    outline = {1: [("5 Hashing", 0), ("5.1 Linear probing", 1)], 3: [("5.2 Chaining", 1)],
               4: [("6 Trees", 0)]}
    doc = read_document(make_pdf(tmp_path / "book.pdf", pages, outline=outline))
    assert [s.heading for s in doc.sections] == [
        None,  # before the first bookmark
        "5 Hashing › 5.1 Linear probing",  # two sections start here: the deeper one wins
        "5 Hashing › 5.1 Linear probing",  # still in force
        "5 Hashing › 5.2 Chaining",
        "6 Trees",  # a new chapter closes the old path
        "6 Trees",
    ]
    assert [s.page for s in doc.sections] == [1, 2, 3, 4, 5, 6]
    assert all(s.heading_embedded for s in doc.sections)  # an outline is trusted enough to embed


def test_outline_bylines_are_not_taken_for_sections(tmp_path):
    # Pressbooks exports list each section's author in the outline, on the section's page,
    # and print it under the section's title
    pages = ["Intro text.", "Hello World\nADA LOVELACE\nHello world prints.", "Variables hold values.",
             "Loops repeat.\nAda  Lovelace", "Exercises for part one.", "Exercises again."]
    outline = {0: [("Part One", 0), ("Ada Lovelace", 1)], 1: [("Hello World", 1), ("Ada Lovelace", 1)],
               2: [("Variables", 1), ("Ada Lovelace", 1)], 3: [("Loops", 1), ("Ada Lovelace", 1)],
               4: [("Exercises", 1)], 5: [("Exercises", 1)]}
    doc = read_document(make_pdf(tmp_path / "book.pdf", pages, outline=outline))
    assert [s.heading for s in doc.sections] == [
        "Part One", "Part One › Hello World", "Part One › Variables", "Part One › Loops",
        "Part One › Exercises", "Part One › Exercises",  # repeated, but a section of its own page
    ]
    assert [s.text for s in doc.sections][1:4] == ["Hello World\nHello world prints.", "Variables hold values.",
                                                   "Loops repeat."]


def test_running_headers_that_repeat_the_section_title_are_dropped(tmp_path):
    # LaTeX prints the chapter ("§5.1 Hash Tables") or the section ("Chaining §5.1") at the
    # top of each page: too varied to repeat as furniture, and no page number beside it.
    pages = [
        "Cover",
        "5 Hash Tables\nA hash table stores keys.",                          # chapter starts: heading kept
        "5.1 Chaining\nChaining keeps a list per slot.",                     # section starts: heading kept
        "§5.1 Hash Tables\nLists grow when keys collide.",                   # chapter's title: a header
        "Chaining §5.1\nThe expected list length is constant.\nHash Tables",  # section's, and a footer
        "Chaining §5.1\n5.2 Probing\nProbing looks for the next free slot.",  # the old section's header
        "6 Trees\nA tree branches.\nExamples\nA tree of three nodes.",
        "Examples\nA heap is a tree too.",                                   # a new "Examples" starts here
    ]
    outline = {1: [("5 Hash Tables", 0)], 2: [("5.1 Chaining", 1)], 5: [("5.2 Probing", 1)],
               6: [("6 Trees", 0)], 7: [("Examples", 1)]}
    texts = [s.text for s in read_document(make_pdf(tmp_path / "book.pdf", pages, outline=outline)).sections]
    assert texts[1:5] == [
        "5 Hash Tables\nA hash table stores keys.",
        "5.1 Chaining\nChaining keeps a list per slot.",
        "Lists grow when keys collide.",
        "The expected list length is constant.",
    ]
    assert texts[5] == "5.2 Probing\nProbing looks for the next free slot."
    assert texts[6:] == ["6 Trees\nA tree branches.\nExamples\nA tree of three nodes.", "Examples\nA heap is a tree too."]


def test_lost_pdf_ligatures_are_put_back(tmp_path):
    # TeX-made PDFs often have fi/fl/ff/ffi glyphs with no Unicode mapping: PDFium returns
    # control characters for them, a different one per ligature and per font.
    pages = [
        "The \x1crst \x1cgure de\x1cnes a \x1cle. A \x1doating point \x1dag can \x1dow.",
        "An e\x1bect is di\x1berent from an o\x1ber. It is di\x1ecult and e\x1ecient, the o\x1ece said.",
        "A \x10quoted\x11 word and the \x10end\x11 of a \x10sentence\x11 keep their meaning.",
    ]
    path = make_pdf(tmp_path / "tex.pdf", pages)
    text = " ".join(s.text for s in read_document(path).sections)
    assert "The first figure defines a file. A floating point flag can flow." in text
    assert "An effect is different from an offer. It is difficult and efficient, the office said." in text
    # the quote marks that lost their mapping are not ligatures: they become spaces, as before
    assert "A quoted word and the end of a sentence keep their meaning." in text
    assert not any(c in text for c in "\x10\x11\x1b\x1c\x1d\x1e")


def test_a_control_character_is_only_read_as_a_ligature_on_clear_evidence():
    from app.ingestion.ligatures import ligature_map

    assert ligature_map("the \x1crst \x1cgure") == {}  # two words: too few to decide
    assert ligature_map("\x1crst \x1cgure \x1cle \x1cnal") == {"\x1c": "fi"}
    # a handful of accidental words among many is not a ligature ("\x10re" -> "fire")
    accidental = "\x10re \x10ne \x10eld \x10lm \x10ght " + " ".join(
        "\x10" + w for w in "alpha beta gamma delta zeta theta iota kappa lambda sigma tau omega".split())
    assert ligature_map(accidental) == {}


def test_pdf_without_outline_has_no_headings(tmp_path):
    doc = read_document(make_pdf(tmp_path / "plain.pdf", ["One.", "Two."]))
    assert [s.heading for s in doc.sections] == [None, None]


def test_pdf_without_text_layer_is_reported_as_such(tmp_path):
    pdf = make_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(UnreadableFileError, match="no extractable text"):
        read_document(pdf)


def test_encrypted_pdf_is_reported(tmp_path):
    pdf = make_pdf(tmp_path / "locked.pdf", ["secret"], encrypt_password="pw")
    with pytest.raises(UnreadableFileError, match="encrypted"):
        read_document(pdf)


def test_corrupt_pdf_is_reported(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n this is not really a pdf \x00\x01")
    with pytest.raises(UnreadableFileError, match="corrupt"):
        read_document(bad)


def test_markdown_sections_follow_headings(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("---\ntitle: x\n---\n# Hashing\nIntro.\n## Collisions\nChaining [link](http://x).\n"
                  "```\n# not a heading\n```\n")
    doc = read_document(md)
    assert [s.heading for s in doc.sections] == ["Hashing", "Hashing › Collisions"]
    assert "Chaining link." in doc.sections[1].text
    assert "# not a heading" in doc.sections[1].text


def test_html_drops_scripts_and_keeps_headings(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><script>alert(1)</script><style>p{}</style></head><body>"
                    "<h1>Trees</h1><p>A tree is <b>acyclic</b>.</p><h2>Heaps</h2><p>Heaps order keys.</p>"
                    "</body></html>")
    doc = read_document(page)
    assert [s.heading for s in doc.sections] == ["Trees", "Trees › Heaps"]
    joined = " ".join(s.text for s in doc.sections)
    assert "alert" not in joined and "A tree is acyclic." in joined


def test_html_keeps_the_pages_own_content_not_its_menus(tmp_path):
    """A documentation page as Sphinx writes it (the Python tutorial's, in miniature):
    site menus, a sidebar with "Previous topic", a footer, permalink signs after each
    heading, and code whose comments start with "#"."""
    page = tmp_path / "controlflow.html"
    page.write_text("""<html><body>
      <div class="related" role="navigation"><h3>Navigation</h3><ul><li>index</li><li>next |</li></ul></div>
      <div class="document"><div class="body" role="main">
        <section><h1>4. More Control Flow Tools<a class="headerlink" href="#more" title="Permalink">¶</a></h1>
          <p>Python uses the usual flow control statements.</p>
          <section><h2>
             4.1. if Statements<a class="headerlink" href="#if">¶</a>
          </h2>
            <pre># point is an (x, y) tuple
match point:
```
    case (0, 0): print("Origin")</pre>
            <p>There can be zero or more elif parts; see the <a href="#if">note</a>.</p>
            <aside class="footnote"><p>A footnote of the text.</p></aside>
          </section>
          <section><h2>4.2. The <code><span class="pre">os</span><span class="pre">.path</span></code> module</h2>
            <p>It joins paths.</p></section></section>
      </div></div>
      <div class="sphinxsidebar" role="navigation"><h3>Previous topic</h3><p>3. An Informal Introduction</p></div>
      <div class="footer">© Copyright 2001-2026, Python Software Foundation.</div>
    </body></html>""")
    doc = read_document(page)
    assert [s.heading for s in doc.sections] == [
        "4. More Control Flow Tools", "4. More Control Flow Tools › 4.1. if Statements",
        "4. More Control Flow Tools › 4.2. The os.path module"]
    joined = "\n".join(s.text for s in doc.sections)
    assert "# point is an (x, y) tuple" in joined and 'case (0, 0): print("Origin")' in joined
    assert "see the note." in joined and "A footnote of the text." in joined
    for furniture in ("Navigation", "Previous topic", "Copyright", "¶"):
        assert furniture not in joined


def test_html_without_a_main_landmark_loses_header_footer_and_sidebar(tmp_path):
    page = tmp_path / "lecture.html"
    page.write_text("<html><body><header><p>Course site · Log in</p></header>"
                    "<aside><p>Announcements: exam on Friday</p></aside>"
                    "<article><header><h1>Sorting</h1></header><p>Merge sort splits the list.</p></article>"
                    "<article><h2>Searching</h2><p>Binary search halves the range.</p></article>"
                    "<footer>Contact the webmaster</footer></body></html>")
    doc = read_document(page)
    assert [s.heading for s in doc.sections] == ["Sorting", "Sorting › Searching"]
    joined = " ".join(s.text for s in doc.sections)
    assert "Merge sort splits the list." in joined and "Binary search halves the range." in joined
    for furniture in ("Log in", "Announcements", "webmaster"):
        assert furniture not in joined


def test_docx_headings_paragraphs_and_tables(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Graphs", level=1)
    d.add_paragraph("A graph has vertices and edges.")
    d.add_paragraph("# adjacency list, in Python")  # a code comment, not a heading
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "BFS"
    table.rows[0].cells[1].text = "uses a queue"
    path = tmp_path / "graphs.docx"
    d.save(path)
    doc = read_document(path)
    assert [s.heading for s in doc.sections] == ["Graphs"]
    assert "# adjacency list, in Python" in doc.sections[0].text
    assert "BFS | uses a queue" in doc.sections[0].text


def test_a_jupyter_notebook_reads_as_markdown_with_its_code_and_short_outputs(tmp_path):
    import json

    notebook = {
        "nbformat": 4, "metadata": {"language_info": {"name": "python"}},
        "cells": [
            {"cell_type": "markdown", "source": ["# Week 3: Sorting\n", "Merge sort splits the list."]},
            {"cell_type": "code", "source": "# split in halves\nprint(merge_sort([3, 1, 2]))",
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["[1, 2, 3]\n"]}]},
            {"cell_type": "markdown", "source": "## Timing\nQuick sort is faster on average."},
            {"cell_type": "code", "source": "train()", "outputs": [
                {"output_type": "stream", "text": "epoch loss 0.5\n" * 200},
                {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}}]},
            {"cell_type": "raw", "source": "ignored"},
        ],
    }
    path = tmp_path / "week3.ipynb"
    path.write_text(json.dumps(notebook))
    doc = read_document(path)
    assert [s.heading for s in doc.sections] == ["Week 3: Sorting", "Week 3: Sorting › Timing"]
    first = doc.sections[0].text
    assert "# split in halves" in first and "print(merge_sort([3, 1, 2]))" in first  # code stays code
    assert "[1, 2, 3]" in first  # a short output is kept
    assert "epoch loss" not in doc.sections[1].text and "train()" in doc.sections[1].text  # a long log is not


def test_lecture_slides_read_one_page_per_slide_titled_with_notes(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    first.shapes.title.text = "Hash tables"
    first.placeholders[1].text_frame.text = "Keys map to buckets"
    first.placeholders[1].text_frame.add_paragraph().text = "Collisions share a bucket"
    first.notes_slide.notes_text_frame.text = "Say why the load factor matters."
    second = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    second.shapes.title.text = "Costs"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), value in {(0, 0): "operation", (0, 1): "average", (1, 0): "lookup", (1, 1): "O(1)"}.items():
        table.cell(r, c).text = value
    group = second.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(4), Inches(3), Inches(1)).text_frame.text = "Worst case: O(n)"
    deck.slides.add_slide(deck.slide_layouts[6])  # blank: nothing to read
    path = tmp_path / "week4.pptx"
    deck.save(path)

    doc = read_document(path)
    assert doc.page_count == 3
    assert [(s.page, s.heading) for s in doc.sections] == [(1, "Hash tables"), (2, "Costs")]
    first_text, second_text = doc.sections[0].text, doc.sections[1].text
    assert "Collisions share a bucket" in first_text and "Say why the load factor matters." in first_text
    assert "lookup | O(1)" in second_text and "Worst case: O(n)" in second_text


def test_slide_footers_numbers_and_a_line_on_every_slide_are_left_out(tmp_path):
    from pptx import Presentation
    from pptx.enum.shapes import PP_PLACEHOLDER
    from pptx.util import Inches

    deck = Presentation()
    layout = deck.slide_layouts[1]
    furniture = [ph for ph in layout.placeholders
                 if ph.placeholder_format.type in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER,
                                                   PP_PLACEHOLDER.DATE)]
    topics = ["Arrays", "Linked lists", "Stacks", "Queues", "Hash tables", "Heaps", "Tries", "Graphs", "Sorting"]
    for topic in topics:
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = topic
        slide.placeholders[1].text_frame.text = f"What {topic.lower()} are for"
        for placeholder in furniture:  # what PowerPoint's "Header and Footer, apply to all" adds
            slide.shapes.clone_placeholder(placeholder)
        for shape in slide.placeholders:
            kind = shape.placeholder_format.type
            if kind in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER):
                shape.text_frame.text = {PP_PLACEHOLDER.FOOTER: "Dr. Ada Lovelace",
                                         PP_PLACEHOLDER.DATE: "Fall 2025"}.get(kind, "7")
        box = slide.shapes.add_textbox(Inches(0.2), Inches(7), Inches(6), Inches(0.4))
        box.text_frame.text = "CS 101 Data Structures, University of Somewhere"
    path = tmp_path / "course.pptx"
    deck.save(path)

    sections = read_document(path).sections
    assert [s.text for s in sections] == [f"{t}\nWhat {t.lower()} are for" for t in topics]


@pytest.mark.parametrize("name, content, message", [
    ("fake.docx", b"plain text pretending", "DOCX"),
    ("slides.pptx", b"PK", "PowerPoint"),
    ("broken.ipynb", b'{"cells": ', "not a Jupyter notebook"),
])
def test_a_file_that_is_not_what_its_name_says_is_reported(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match=message):
        read_document(path)


def test_non_utf8_text_is_read_with_a_warning(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café crème and naïve façade.".encode("cp1252"))
    doc = read_document(path)
    assert doc.sections[0].text == "Café crème and naïve façade."
    assert "not UTF-8" in doc.warnings[0]


def test_binary_content_with_text_extension_is_refused(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(UnreadableFileError, match="binary"):
        read_document(path)


def test_zero_byte_file_is_refused(tmp_path):
    path = tmp_path / "empty.md"
    path.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty"):
        read_document(path)


def test_form_feeds_in_text_files_become_pages(tmp_path):
    path = tmp_path / "paged.txt"
    path.write_text("Page one text.\fPage two text.")
    assert [(s.page, s.text) for s in read_document(path).sections] == [(1, "Page one text."), (2, "Page two text.")]
