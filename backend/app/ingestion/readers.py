"""Read course materials into text sections that keep their provenance.

One reader per format. PDFs give one section per physical page (1-based number and
the printed page label, e.g. "xii" or "42"); Markdown, HTML and DOCX give one
section per heading, so citations can name a section where there are no pages;
plain text splits on form feeds, the classic page break.

Readers raise UnreadableFileError with a reason a person understands; the pipeline
reports it and goes on with the other files.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.ingestion.contents_pages import find_contents_and_index_pages
from app.ingestion.ligatures import ligature_map, translate_ligatures
from app.ingestion.normalize import (
    hyphenated_compounds,
    normalize_text,
    printed_page_numbers,
    strip_boilerplate_lines,
    strip_page_furniture,
    strip_lines,
    strip_running_titles,
)
from app.ingestion.pdf_headings import FontLine, font_headings, headings_by_page, page_font_lines


class UnreadableFileError(Exception):
    """This file cannot be ingested; the message says why in plain words."""


@dataclass
class Section:
    """A stretch of text with one provenance: a PDF page or a document section."""

    text: str
    page: int | None = None
    page_label: str | None = None
    heading: str | None = None
    # False for headings guessed from the type size: named in citations, not embedded
    # (embedding them cost dense retrieval 5 of 92 questions: docs/DESIGN.md)
    heading_embedded: bool = True
    ocr: bool = False  # the text was recognised from an image of the page


@dataclass
class ExtractedDocument:
    sections: list[Section]
    page_count: int = 0
    warnings: list[str] = field(default_factory=list)
    left_out_pages: list[int] = field(default_factory=list)  # contents and index pages, 1-based
    ocr_pages: list[int] = field(default_factory=list)  # read with OCR, 1-based


# Reads the text of some pages (0-based) of a PDF from their images (None: it gave up on
# that page): app.ingestion.ocr.
Recogniser = Callable[[Path, list[int]], dict[int, "str | None"]]
# The start of the warning for scanned pages left unread; an ingest with OCR reads such
# files again (scans_left_unread).
SCANS_UNREAD = "not read, they are images of text without OCR"


def scans_left_unread(warnings: list[str]) -> bool:
    """Whether a file was ingested with scanned pages OCR could now read."""
    return any(SCANS_UNREAD in warning for warning in warnings)


# --- PDF -----------------------------------------------------------------


def count_pdf_pages(path: Path) -> int:
    """Pages in a PDF, cheaply (used for progress totals); 0 if it cannot be opened."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except Exception:
        return 0
    try:
        return len(pdf)
    finally:
        pdf.close()


def read_pdf(path: Path, recognise: Recogniser | None = None) -> ExtractedDocument:
    """One section per page; pages that are images of text are read with `recognise`
    (OCR) where given, and named in a warning where not."""
    import pypdfium2 as pdfium

    from app.ingestion.ocr import OcrFailedError, needs_ocr

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        message = str(exc).lower()
        if "password" in message:
            raise UnreadableFileError("encrypted PDF (needs a password); save an unprotected copy") from exc
        raise UnreadableFileError("corrupt or not a PDF (PDFium cannot open it)") from exc
    warnings: list[str] = []
    texts: list[str] = []
    labels: list[str | None] = []
    font_lines: list[FontLine] = []
    scanned: list[int] = []  # 0-based: pages that are a picture of text
    try:
        outline = outline_entries(pdf, len(pdf))
        bylines = outline_bylines(outline)
        headings = outline_headings(outline, len(pdf), bylines)
        without_outline = all(h is None for h in headings)
        for index in range(len(pdf)):
            try:
                page = pdf[index]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_bounded())
                if needs_ocr(page, texts[-1]):
                    scanned.append(index)
                if without_outline:
                    font_lines.extend(page_font_lines(textpage, index))
                textpage.close()
                page.close()
            except pdfium.PdfiumError:
                texts.append("")
                warnings.append(f"page {index + 1} could not be read")
            try:
                labels.append(pdf.get_page_label(index) or None)
            except Exception:
                labels.append(None)
    finally:
        pdf.close()
    ocr_pages: list[int] = []  # 1-based
    ocr_failure = None
    if scanned and recognise is not None:
        gave_up = 0
        try:
            for index, text in recognise(path, scanned).items():
                gave_up += text is None
                if text and text.strip():
                    texts[index] = text
                    ocr_pages.append(index + 1)
        except OcrFailedError as exc:
            ocr_failure = str(exc)
            warnings.append(f"{_count(len(scanned), 'scanned page')} not read: {exc}")
        if gave_up and ocr_failure is None:
            warnings.append(f"OCR gave up on {_count(gave_up, 'scanned page')} (RAG_OCR_SECONDS_PER_PAGE)")
        if len(ocr_pages) + gave_up < len(scanned) and ocr_failure is None:
            warnings.append(f"OCR found no text on {_count(len(scanned) - len(ocr_pages) - gave_up, 'scanned page')}")
    elif scanned:
        warnings.append(f"{_count(len(scanned), 'page')} {SCANS_UNREAD} (install ocrmypdf and tesseract-ocr, "
                        "as the startup script does, and keep RAG_OCR=auto)")
    ligatures = ligature_map("\n".join(texts))
    texts = [translate_ligatures(t, ligatures) for t in texts]
    compounds = hyphenated_compounds(texts)

    def clean(text: str) -> str:  # heading lines (page texts are translated above)
        return normalize_text(translate_ligatures(text, ligatures), compounds)

    normalized = [normalize_text(t, compounds) for t in texts]
    numbering = printed_page_numbers([t.split("\n") for t in normalized])
    pages = strip_boilerplate_lines(strip_page_furniture(normalized, numbering=numbering))
    if numbering and not any(labels):  # no page labels: cite the numbers printed on the pages
        labels = [numbering.label(i) for i in range(len(pages))]
    skipped = find_contents_and_index_pages(pages)  # a "Contents" header helps find its pages
    if without_outline:
        headings = font_headings(font_lines, len(pages), skipped, clean=clean)
    pages = strip_running_titles(pages, headings)
    if bylines:  # Pressbooks prints them under each section's title too
        pages = strip_lines(pages, bylines)
    sections = [
        Section(text=text, page=i + 1, page_label=labels[i], heading=headings[i],
                heading_embedded=not without_outline, ocr=(i + 1) in ocr_pages)
        for i, text in enumerate(pages)
        if text.strip() and i not in skipped
    ]
    if not sections and skipped:
        raise UnreadableFileError("only a table of contents or an index, no text to answer from")
    if not sections:
        raise UnreadableFileError(_no_text_reason(len(scanned), recognise is not None, ocr_failure))
    blank = sum(1 for text in pages if not text.strip())
    if blank and blank > len(pages) // 2 and not scanned:
        warnings.append(f"{blank} of {len(pages)} pages have no text layer")
    return ExtractedDocument(sections=sections, page_count=len(pages), warnings=warnings,
                             left_out_pages=sorted(i + 1 for i in skipped), ocr_pages=ocr_pages)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _no_text_reason(scanned: int, ocr_on: bool, ocr_failure: str | None) -> str:
    if not scanned:
        return "no extractable text (no text layer, and no page is an image of text)"
    if ocr_failure:
        return f"no extractable text: its pages are scanned images and {ocr_failure}"
    if ocr_on:
        return f"no extractable text: OCR found no words on its {_count(scanned, 'scanned page')}"
    return ("no extractable text: its pages are scanned images and OCR is not available (install "
            "ocrmypdf and tesseract-ocr, as the startup script does, and keep RAG_OCR=auto)")


def outline_entries(pdf, page_count: int, max_depth: int = 6) -> list[tuple[int, str, int]]:
    """The PDF outline (bookmarks) as (level, title, page index), in outline order; empty
    where there is none, or where it is malformed (that costs the headings, never the text)."""
    entries: list[tuple[int, str, int]] = []
    try:
        for bookmark in pdf.get_toc(max_depth=max_depth):
            title = " ".join((bookmark.get_title() or "").split())
            dest = bookmark.get_dest()
            index = dest.get_index() if dest is not None else None
            if title and index is not None and 0 <= index < page_count:
                entries.append((bookmark.level, title, index))
    except Exception:
        return []
    return entries


def outline_headings(entries: list[tuple[int, str, int]], page_count: int,
                     bylines: set[str] = frozenset()) -> list[str | None]:
    """Per page, the path of the outline section it belongs to, e.g.
    "Chapter 5 Hash Tables › 5.2 Linear Probing"; None where the PDF has no outline.

    A page gets the section in force at its end: a section that starts on a page is
    what that page is mostly about. The path gives chunks the context a textbook's
    headings carry ("it", "this method") and names the section in citations. `bylines`
    (outline_bylines) are not sections.
    """
    starts: dict[int, str] = {}  # page index -> path of the last section starting there
    trail: list[tuple[int, str]] = []
    for level, title, index in entries:
        if title in bylines:
            continue
        while trail and trail[-1][0] >= level:
            trail.pop()
        trail.append((level, title))
        starts[index] = " › ".join(t for _, t in trail)
    return headings_by_page(starts, page_count)


def outline_bylines(entries: list[tuple[int, str, int]], min_repeats: int = 3) -> set[str]:
    """Outline titles that are not sections: bylines and the like.

    Why: books exported from Pressbooks (many open textbooks) list each section's author
    in the outline, right after the section's title, on its page; taken for a section,
    "Dave Braunschweig" named the pages about "Hello World" and was embedded with their
    text. Such a title repeats and never starts a page of its own: it always follows
    another entry on the same page. A repeated real section ("Exercises", "Summary")
    starts its own page somewhere in the book.
    """
    seen: Counter[str] = Counter()
    starts_alone: set[str] = set()
    for position, (_, title, index) in enumerate(entries):
        seen[title] += 1
        before = entries[position - 1] if position else None
        if not (before and before[2] == index):
            starts_alone.add(title)
    return {title for title, n in seen.items() if n >= min_repeats and title not in starts_alone}


# --- text decoding shared by the text formats ------------------------------

_TEXT_CONTROL = set(range(0, 32)) - {9, 10, 12, 13}


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """Bytes to str: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252.

    Binary content with a text extension is refused rather than indexed as noise.
    """
    if not data:
        raise UnreadableFileError("empty file (0 bytes)")
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding), []
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(f"invalid {encoding} text") from exc
    sample = data[:8192]
    if b"\x00" in sample or sum(b in _TEXT_CONTROL for b in sample) > len(sample) * 0.05:
        raise UnreadableFileError("binary content, not text (wrong file extension?)")
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        return text, ["not UTF-8: read as Windows-1252 / Latin-1; check accented characters"]


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if not data:
        raise UnreadableFileError("empty file (0 bytes)")
    return data


# --- heading-structured text (Markdown, and HTML/DOCX converted to it) -------

_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# HTML and Word mark their headings with this instead of Markdown's "#": a line of code
# there ("# a comment", "```") is text, not a heading or a fence.
_MARK = "\x1e"
_MARKED_HEADING = re.compile(rf"^{_MARK}([1-6]){_MARK}(.+)$")


def heading_line(level: int, title: str) -> str:
    """A heading of an HTML or Word document, for `split_by_headings(..., markdown=False)`."""
    title = " ".join(title.split())
    return f"{_MARK}{level}{_MARK}{title}" if title else ""


def split_by_headings(text: str, markdown: bool = True) -> list[Section]:
    """One section per heading; the heading path ("Hashing › Collisions") names it.
    `markdown`: headings are "#" lines outside fenced code; otherwise `heading_line`s."""
    sections: list[Section] = []
    trail: list[tuple[int, str]] = []
    current: list[str] = []
    in_fence = False

    def flush() -> None:
        text = normalize_text("\n".join(current))
        if text:
            heading = " › ".join(title for _, title in trail) or None
            sections.append(Section(text=text, heading=heading))
        current.clear()

    for line in text.split("\n"):
        if markdown:
            if _FENCE.match(line):
                in_fence = not in_fence
            match = None if in_fence else _ATX_HEADING.match(line)
            heading = (len(match.group(1)), match.group(2).strip()) if match else None
        else:
            match = _MARKED_HEADING.match(line)
            heading = (int(match.group(1)), match.group(2).strip()) if match else None
        if heading:
            flush()
            level, title = heading
            trail[:] = [(lvl, t) for lvl, t in trail if lvl < level] + [(level, title)]
            current.append(title)
        else:
            current.append(line)
    flush()
    return sections


_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def markdown_sections(text: str) -> list[Section]:
    """Markdown's sections, without front matter, HTML comments, link targets and image
    addresses (their words stay)."""
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n"))
    text = _HTML_COMMENT.sub("", text)
    text = _MD_IMAGE.sub(r"\1", _MD_LINK.sub(r"\1", text))
    return split_by_headings(text)


def read_markdown(path: Path) -> ExtractedDocument:
    text, warnings = decode_text(_read_bytes(path))
    return _finish(markdown_sections(text), warnings)


def read_text(path: Path) -> ExtractedDocument:
    text, warnings = decode_text(_read_bytes(path))
    pages = text.split("\f")
    if len(pages) > 1:
        sections = [Section(text=normalize_text(p), page=i + 1) for i, p in enumerate(pages)]
        sections = [s for s in sections if s.text]
        return _finish(sections, warnings, page_count=len(pages))
    return _finish([Section(text=normalize_text(text))], warnings)


# Page furniture of web pages: site menus, search boxes, sidebars, cookie banners, footers.
_BOILERPLATE_TAGS = ["script", "style", "noscript", "template", "nav", "svg", "iframe", "button"]
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
_PERMALINK_TEXT = {"", "¶", "#", "§", "🔗", "\u200b"}


def read_html(path: Path) -> ExtractedDocument:
    """The page's own content: its main landmark (<main>, role="main", or its one
    <article>) when it has one, else the body without header, footer, sidebars and menus;
    headings start sections, without their permalink signs ("4.1. if Statements¶")."""
    from bs4 import BeautifulSoup

    text, warnings = decode_text(_read_bytes(path))
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(_BOILERPLATE_TAGS):
        tag.decompose()
    articles = soup.find_all("article")
    root = (soup.find("main") or soup.find(attrs={"role": "main"})
            or (articles[0] if len(articles) == 1 else None))
    if root is None:
        root = soup.body or soup
        for tag in root.find_all(["header", "footer", "aside"]):
            if not tag.decomposed and tag.find_parent("article") is None:
                tag.decompose()
    for tag in root.find_all(attrs={"role": True}):
        if not tag.decomposed and tag.get("role") in _BOILERPLATE_ROLES:
            tag.decompose()
    for link in root.find_all("a", href=True):
        if link["href"].startswith("#") and link.get_text(strip=True) in _PERMALINK_TEXT:
            link.decompose()
    for tag in root.find_all(re.compile(r"^h[1-6]$")):
        tag.replace_with(f"\n\n{heading_line(int(tag.name[1]), tag.get_text())}\n\n")
    for tag in root.find_all(["p", "li", "tr", "br", "div", "pre", "blockquote", "section", "table"]):
        tag.insert_after("\n")
    return _finish(split_by_headings(root.get_text(), markdown=False), warnings)


def table_lines(table) -> list[str]:
    """A Word or PowerPoint table, a line per row: "lookup | O(1)"."""
    return [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]


def read_docx(path: Path) -> ExtractedDocument:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _read_bytes(path)
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFileError("corrupt or not a DOCX file (Word 2007+ format)") from exc
    lines: list[str] = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = docx.text.paragraph.Paragraph(block, document)
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            level = re.match(r"Heading (\d)", style)
            if level or style == "Title":
                lines.append(heading_line(int(level.group(1)) if level else 1, paragraph.text))
            else:
                lines.append(paragraph.text)
        elif tag == "tbl":
            lines.extend(table_lines(docx.table.Table(block, document)))
            lines.append("")
    return _finish(split_by_headings("\n".join(lines), markdown=False), [])


def read_pptx(path: Path) -> ExtractedDocument:
    """Lecture slides: one page per slide, so citations give the slide number as they give
    a PDF's page; the slide's title is its heading. Text boxes, tables (a row per line) and
    grouped shapes are read in order, then the speaker notes, which often say more than
    the slide. The footer, date and slide number PowerPoint puts on every slide are left
    out, and so is a sentence repeated on many slides (the course's name in a text box):
    they would open every passage and match every question that shares their words."""
    import zipfile

    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
    from pptx.exc import PackageNotFoundError

    furniture = {PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER}

    _read_bytes(path)
    try:
        deck = Presentation(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFileError("corrupt or not a PowerPoint file (.pptx, PowerPoint 2007 or later)") from exc

    def shape_lines(shapes) -> list[str]:
        lines: list[str] = []
        for shape in shapes:
            if shape.is_placeholder and shape.placeholder_format.type in furniture:
                continue
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:  # its shapes, in order
                lines.extend(shape_lines(shape.shapes))
            elif getattr(shape, "has_table", False) and shape.has_table:
                lines.extend(table_lines(shape.table))
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                lines.extend(paragraph.text for paragraph in shape.text_frame.paragraphs)
        return lines

    titles: list[str] = []
    texts: list[str] = []
    for slide in deck.slides:
        title_shape = slide.shapes.title
        titles.append(" ".join(title_shape.text.split()) if title_shape is not None else "")
        lines = shape_lines(slide.shapes)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                lines += ["", notes]
        texts.append(normalize_text("\n".join(lines)))
    # a slide holds a few lines, so a repeated one is a large share of the deck's text
    slide_texts = strip_boilerplate_lines(texts, max_share_of_text=0.5)
    sections = [Section(text=text, page=number, heading=title or None)
                for number, (title, text) in enumerate(zip(titles, slide_texts), start=1)
                if text]
    return _finish(sections, [], page_count=len(deck.slides))


# A code cell's output is kept when it is text and short in all: a printed result a student
# may ask about, not a training log, a 10,000-row table or a traceback's full stack.
_MAX_OUTPUT_CHARS = 1000


def read_notebook(path: Path) -> ExtractedDocument:
    """A Jupyter notebook as Markdown: its Markdown cells as written (their headings start
    sections), code cells fenced (so a "# comment" stays code), and short text outputs."""
    import json

    text, warnings = decode_text(_read_bytes(path))
    try:
        notebook = json.loads(text)
        cells = notebook["cells"]
        language = (notebook.get("metadata", {}).get("language_info", {}).get("name")
                    or notebook.get("metadata", {}).get("kernelspec", {}).get("language") or "")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise UnreadableFileError("not a Jupyter notebook (nbformat 4 JSON with a list of cells)") from exc

    def joined(value) -> str:
        return "".join(value) if isinstance(value, list) else str(value or "")

    parts: list[str] = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        source = joined(cell.get("source")).strip()
        if cell.get("cell_type") == "markdown" and source:
            parts.append(source)
        elif cell.get("cell_type") == "code" and source:
            parts.append(f"```{language}\n{source}\n```")
            shown = "\n".join(
                joined(output.get("text") if output.get("output_type") == "stream"
                       else (output.get("data") or {}).get("text/plain")).strip()
                for output in cell.get("outputs") or [] if isinstance(output, dict)).strip()
            if shown and len(shown) <= _MAX_OUTPUT_CHARS:
                parts.append(f"```\n{shown}\n```")
    return _finish(markdown_sections("\n\n".join(parts)), warnings)


def _finish(sections: list[Section], warnings: list[str], page_count: int = 0) -> ExtractedDocument:
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise UnreadableFileError("no text found in the file")
    return ExtractedDocument(sections=sections, page_count=page_count, warnings=warnings)


READERS: dict[str, Callable[[Path], ExtractedDocument]] = {
    ".pdf": read_pdf,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".txt": read_text,
    ".text": read_text,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pptx": read_pptx,
    ".ipynb": read_notebook,
}
SUPPORTED_EXTENSIONS = frozenset(READERS)


def read_document(path: Path, recognise: Recogniser | None = None) -> ExtractedDocument:
    """Extract text from any supported file; UnreadableFileError says why not.
    `recognise`: OCR for PDF pages that are images of text (None: they are named, not read)."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise UnreadableFileError(f"unsupported file type {path.suffix or '(none)'}")
    try:
        return read_pdf(path, recognise) if reader is read_pdf else reader(path)
    except UnreadableFileError:
        raise
    except PermissionError as exc:
        raise UnreadableFileError("permission denied (cannot read the file)") from exc
    except FileNotFoundError as exc:
        raise UnreadableFileError("file vanished or is a broken link") from exc
    except OSError as exc:
        raise UnreadableFileError(f"cannot read the file: {exc.strerror or exc}") from exc
