"""The evaluation's inputs, as people other than us write them: a hand-written question
file (other keys, "page" for "pages", no ids, a book named by its file name), evidence
phrases copied from a PDF viewer, and a corpus folder of their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.evaluation.corpus import CorpusError, corpus_files, default_database, link_books
from app.evaluation.metrics import is_hit
from app.evaluation.questions import (
    FollowUp,
    Question,
    QuestionFileError,
    QuestionSet,
    check,
    contains_phrase,
)
from app.retrieval.sources import Source


def write(tmp_path, data) -> Path:
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_hand_written_question_file_is_read_forgivingly(tmp_path):
    questions = QuestionSet.load(write(tmp_path, {
        "answerable": [
            {"question": "what is a heap", "file": "books/ods.pdf", "page": 12, "evidence": "heap", "notes": "x"},
            {"id": "mine", "question": "what is a trie", "file": "ods.pdf", "pages": ["40", 41]},
        ],
        "follow_ups": [{"first": "What is a heap?", "follow_up": "and its height?", "file": "ods.pdf",
                        "pages": 13},
                       {"earlier": ["What is a heap?", "and its height?"], "follow_up": "why that much?",
                        "file": "ods.pdf", "pages": 14}],
        "out_of_corpus": ["Who painted the Mona Lisa?", {"question": "What is the Krebs cycle?", "split": "near"}],
        "generic_follow_ups": ["What is the worst case? ", "Can you summarize?"],
    }))
    first, second = questions.answerable
    assert (first.id, first.pages, first.evidence, first.split) == ("q001", [12], "heap", "dev")
    assert (second.id, second.pages, second.evidence) == ("mine", [40, 41], "")
    assert questions.follow_ups[0].pages == [13] and questions.follow_ups[0].id == "f01"
    assert questions.follow_ups[0].earlier == ["What is a heap?"]
    assert questions.follow_ups[1].earlier == ["What is a heap?", "and its height?"]
    assert [(o.question, o.split) for o in questions.out_of_corpus] == [
        ("Who painted the Mona Lisa?", "dev"), ("What is the Krebs cycle?", "near")]
    assert questions.generic_follow_ups == ["What is the worst case?", "Can you summarize?"]


@pytest.mark.parametrize("data, message", [
    ({"answerable": [{"file": "a.pdf", "pages": [1]}]}, "answerable[0]: needs 'question'"),
    ({"answerable": [{"question": "q", "pages": [1]}]}, "answerable[0]: needs 'file'"),
    ({"answerable": [{"question": "q", "file": "a.pdf"}]}, "needs 'pages' (physical page numbers) or an 'evidence'"),
    ({"answerable": [{"question": "q", "file": "a.pdf", "pages": ["twelve"]}]}, "'pages' must be page numbers"),
    ({"follow_ups": [{"first": "q", "file": "a.pdf", "pages": [1]}]}, "follow_ups[0]: needs 'follow_up'"),
    ({"follow_ups": [{"follow_up": "q", "file": "a.pdf", "pages": [1]}]}, "follow_ups[0]: needs 'first'"),
    ({"follow_ups": [{"earlier": "q", "follow_up": "q", "file": "a.pdf", "pages": [1]}]},
     "follow_ups[0]: 'earlier' must be a list of the questions asked before"),
    ({"answerable": []}, "no questions in it"),
    ({"out_of_corpus": ["q"], "generic_follow_ups": ["Why?", ""]}, "generic_follow_ups[1]: needs 'question' (text)"),
])
def test_an_unusable_question_file_names_the_entry(tmp_path, data, message):
    with pytest.raises(QuestionFileError, match=re.escape(message)):
        QuestionSet.load(write(tmp_path, data))


def test_a_question_file_that_is_not_json_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "q.json"
    path.write_text("{'answerable': []}")
    with pytest.raises(QuestionFileError, match="not valid JSON"):
        QuestionSet.load(path)
    with pytest.raises(QuestionFileError, match="no such question file"):
        QuestionSet.load(tmp_path / "missing.json")


def test_evidence_copied_from_a_pdf_viewer_matches_the_extracted_text():
    page = "Counting sort and radix sort are not comparison-based: they look at the digits."
    assert contains_phrase(page, "not comparison- based")  # a line-end hyphen, as a viewer copies it
    assert contains_phrase(page, "NOT COMPARISON BASED")
    assert contains_phrase("the \ufb01le is read", "the file is")  # the fi ligature
    assert contains_phrase("Knuth\u2019s algorithm", "Knuth's algorithm")
    assert not contains_phrase(page, "comparison-free")
    assert not contains_phrase(page, "")  # no phrase is not a match


def test_a_chunk_is_a_hit_by_page_or_by_its_evidence_phrase():
    question = Question("a", "q", "ods.pdf", [40], "radix sort")

    def source(file, page, text):
        return Source(1, "c", file, page, page, None, None, 0.5, text)
    assert is_hit(question, source("ods.pdf", 41, "elsewhere"))           # within one page
    assert not is_hit(question, source("ods.pdf", 43, "elsewhere"))
    assert is_hit(question, source("ods.pdf", 90, "Radix-sort is ..."))   # the phrase, on another page
    assert not is_hit(question, source("other.pdf", 40, "radix sort"))    # never another book
    no_phrase = Question("b", "q", "ods.pdf", [40], "")
    assert not is_hit(no_phrase, source("ods.pdf", 90, "anything"))


def test_check_resolves_books_by_name_and_reports_what_does_not_fit():
    qs = QuestionSet([Question("a", "q", "ods.pdf", [2], "binary heap"),
                      Question("b", "q", "Ods.PDF", [3], "not on that page"),
                      Question("c", "q", "missing.pdf", [1], "x")],
                     [FollowUp("f", "q1", "q2", "sub/ods.pdf", [2], "binary heap")], [])
    pages = {"sub/ods.pdf": {2: "A binary\nheap is ...", 3: "Something else"}}
    errors, warnings = check(qs, ["sub/ods.pdf", "notes.pdf"], lambda f: pages[f])
    assert [q.file for q in qs.answerable[:2]] == ["sub/ods.pdf", "sub/ods.pdf"]
    assert errors == ["c: 'missing.pdf' is not among the books (notes.pdf, sub/ods.pdf)"]
    assert warnings == ["b: evidence 'not on that page' not found on page(s) 3 of sub/ods.pdf"]


def test_a_question_on_a_file_without_pages_needs_evidence_that_is_in_it(tmp_path):
    """Markdown, HTML, Word and text files have no pages: a passage from one can only be
    recognised by the evidence phrase, so a question without one could never be found."""
    from app.evaluation.corpus import read_pages

    corpus = Path(__file__).resolve().parents[3] / "course_materials" / "data-structures-101"
    books = tmp_path / "books"
    files = link_books(corpus, corpus_files(corpus, ["pdf", "md"]), books)
    qs = QuestionSet([Question("md-ok", "what does pop do", "02-stacks-and-queues.md", [1], "removes the most recently"),
                      Question("md-none", "what does pop do", "02-stacks-and-queues.md", [1]),
                      Question("md-wrong", "what does pop do", "02-stacks-and-queues.md", [], "pops a frame"),
                      Question("pdf", "what is a hash table", "lecture-04-hash-tables.pdf", [2])], [], [])
    errors, warnings = check(qs, files, read_pages(books))
    assert len(errors) == 2 and not warnings, errors
    assert errors[0].startswith("md-none: '02-stacks-and-queues.md' has no pages (only PDFs do)")
    assert "add one" in errors[0]
    assert errors[1].startswith("md-wrong: evidence 'pops a frame' is not in 02-stacks-and-queues.md")


def test_each_corpus_folder_gets_its_own_database_and_exactly_its_books(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder, names in ((ours, ["a.pdf", "README.md"]), (theirs, ["b.pdf", "sub/c.PDF", ".hidden.pdf", "d.md"])):
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(b"%PDF-1.4")
    assert default_database(ours) != default_database(theirs)
    assert default_database(ours) == default_database(tmp_path / "x" / ".." / "ours")

    books = tmp_path / "books"
    assert link_books(ours, corpus_files(ours, ["pdf"]), books) == ["a.pdf"]
    assert link_books(theirs, corpus_files(theirs, ["pdf", "md"]), books) == ["b.pdf", "d.md", "sub/c.PDF"]
    linked = sorted(p.relative_to(books).as_posix() for p in books.rglob("*") if p.is_symlink())
    assert linked == ["b.pdf", "d.md", "sub/c.PDF"]  # a.pdf of the other corpus is gone
    assert (books / "sub" / "c.PDF").resolve() == (theirs / "sub" / "c.PDF").resolve()


def test_a_corpus_without_such_files_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="not a folder"):
        corpus_files(tmp_path / "nowhere", ["pdf"])
    (tmp_path / "notes.md").write_text("# Notes")
    with pytest.raises(CorpusError, match="no .pdf files in .* --types"):
        corpus_files(tmp_path, ["pdf"])


def test_in_a_file_without_pages_the_section_holding_the_evidence_is_the_page(tmp_path):
    """A PDF hit may come from the listed page or one either side; a Markdown, HTML or Word
    file has sections instead, so a passage from the section that holds the evidence counts,
    unless that section is longer than three pages' worth or has no heading."""
    from app.evaluation.corpus import read_pages, read_sections
    from app.evaluation.questions import MAX_SECTION_CHARS

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.md").write_text(
        "# Hashing\nA hash table maps keys to buckets.\n## Collisions\nTwo keys may share a bucket.\n"
        "Chaining keeps a list in each bucket.\n## Resizing\n" + "Growing the table rehashes. " * 400
        + "The load factor decides when.\n")
    books = tmp_path / "books"
    files = link_books(corpus, corpus_files(corpus, ["md"]), books)
    qs = QuestionSet([Question("a", "how are collisions handled", "notes.md", [1], "Chaining keeps a list"),
                      Question("b", "when does it grow", "notes.md", [1], "The load factor decides")], [], [])
    assert check(qs, files, read_pages(books), read_sections(books)) == ([], [])
    collisions, resizing = qs.answerable
    assert collisions.sections == {"Hashing › Collisions"}
    assert len("Growing the table rehashes. " * 400) > MAX_SECTION_CHARS and resizing.sections == frozenset()

    def passage(heading, text):
        return Source(1, "c", "notes.md", None, None, None, heading, 0.5, text)
    assert is_hit(collisions, passage("Hashing › Collisions", "Two keys may share a bucket."))
    assert not is_hit(collisions, passage("Hashing", "A hash table maps keys to buckets."))
    assert not is_hit(resizing, passage("Hashing › Resizing", "Growing the table rehashes."))
    assert is_hit(resizing, passage("Hashing › Resizing", "The load factor decides when."))


@pytest.mark.parametrize("name, answerable, splits", [
    ("questions.json", 110, {"dev", "holdout", "holdout2"}),  # the nine textbooks
    ("questions_r_manuals.json", 48, {"dev", "holdout"}),   # books nothing was tuned on
    ("questions_python_docs.json", 18, {"dev"}),            # web pages, for the HTML path
])
def test_the_shipped_question_files_are_complete(name, answerable, splits):
    """Every answerable question and follow-up has a page and an evidence phrase, ids are
    unique, and the splits and out-of-corpus questions the docs report are there."""
    path = Path(__file__).resolve().parents[3] / "bench" / "eval" / name
    questions = QuestionSet.load(path)
    ids = [q.id for q in questions.answerable] + [f.id for f in questions.follow_ups]
    assert len(ids) == len(set(ids))
    for q in [*questions.answerable, *questions.follow_ups]:
        assert q.pages and q.evidence.strip(), q.id
    assert len(questions.answerable) == answerable and questions.follow_ups
    assert {q.split for q in questions.answerable} == splits
    assert {o.split for o in questions.out_of_corpus} == {"dev", "near"}
    assert len(questions.generic_follow_ups) == 64  # asked after an answer, to be answered
