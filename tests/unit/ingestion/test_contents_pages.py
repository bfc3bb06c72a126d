"""Table-of-contents, index and attribution pages are left out; pages that merely end lines in numbers stay.

The page texts imitate the layouts met in the nine corpus books (TeX, Pressbooks,
LibreOffice and cnx exports), after the readers' clean-up.
"""

from __future__ import annotations

import pytest

from app.ingestion.contents_pages import find_contents_and_index_pages
from app.ingestion.readers import UnreadableFileError, read_document
from conftest import make_pdf

PROSE = (
    "A hash table stores keys in an array of buckets.\n"
    "The hash function maps each key to the index of one bucket, and two keys\n"
    "that map to the same bucket collide. Chaining keeps a list per bucket;\n"
    "open addressing probes the next free slot instead. Both keep lookups\n"
    "fast on average as long as the table is not too full, which is why the\n"
    "table grows when its load factor passes a limit such as 0.75."
)

CONTENTS_ONE_LINE = (
    "Contents\n1 Introduction 7\n2 Everything About Parsing 10\n"
    "3 A First Look at Interpretation 13\n4 A First Taste of Desugaring 16\n"
    "5 Adding Functions to the Language 19\n6 From Substitution to Environments 25"
)
CONTENTS_CONTINUED = "7 Mutation: Structures and Variables 41\n8 Recursion and Cycles 62\n9 Objects 67"
# Pressbooks: title, author and page number each on a line of their own
CONTENTS_THREE_LINES = (
    "Contents\nAbout this Book\nAda Author\n1\nPart I. Programming\nProgram Design\nAda Author\n7\n"
    "Pseudocode\nBen Writer\n10\nFlowcharts\nAda Author\n14"
)
CONTENTS_THREE_LINES_CONTINUED = (
    "Constants and Variables\nAda Author\n21\nIdentifier Names\nBen Writer\n24\nData Types\nAda Author\n27\n"
    "Part II. Conditions\nIf Then Else\nBen Writer\n33"
)
INDEX = (
    "Index\nabstract data type, see interface\nadjacency list, 244\nadjacency matrix, 241\n"
    "amortized cost, 40, 75-77\narray stack, 31\nB-tree, 281\nbinary heap, 203\nchild, 127\n"
    "left, 127\nright, 127\ncircular array, 39\ncounting sort, 231"
)
INDEX_CONTINUED = "quicksort, 222\nradix sort, 233\nred-black tree, 177, 180\nskiplist, 83\nstack, 31"


def test_contents_pages_and_their_continuation_are_found():
    pages = ["A Book Title", CONTENTS_ONE_LINE, CONTENTS_CONTINUED, PROSE, PROSE]
    assert find_contents_and_index_pages(pages) == {1, 2}


def test_contents_with_titles_authors_and_page_numbers_on_separate_lines():
    pages = ["", CONTENTS_THREE_LINES, CONTENTS_THREE_LINES_CONTINUED, "", PROSE]
    assert find_contents_and_index_pages(pages) == {1, 2}


def test_contents_page_without_a_heading_is_found_by_its_rising_page_numbers():
    headless = "\n".join(f"{n}.1 Section about topic {chr(97 + n)} {10 * n + 3}" for n in range(1, 11))
    assert find_contents_and_index_pages([PROSE, headless, PROSE]) == {1}


def test_contents_without_page_numbers_under_a_contents_heading():
    # LibreTexts: titles only, the list running on to a second page
    first = ("TABLE OF CONTENTS\nForeword\nLicensing\nCourse Overview\n"
             "1.1: Welcome\n1.2: Prerequisites\n2: Sorting")
    second = "Glossary\nSummary\nDetailed Licensing"
    assert find_contents_and_index_pages([first, second, PROSE, "Contents\n" + PROSE]) == {0, 1}


def test_index_pages_are_found():
    pages = [PROSE, PROSE, INDEX, INDEX_CONTINUED]
    assert find_contents_and_index_pages(pages) == {2, 3}


# Connexions: a section number and the page in parentheses, long entries wrapped
CNX_INDEX = (
    "Index of Keywords and Terms\n"
    "Keywords are listed by the section with that keyword (page numbers are in parentheses).\n"
    "A access patterns, 2.4.7(111), 2.4.9(114)\naccuracy, 1.2.6(36)\nalgebra, 1.2.4(33), 1.2.5(34)\n"
    "Amdahl's law, 2.2.3(68)\nassociative transformation, 1.2.4(33),\n1.2.5(34)\n"
    "B bandwidth, 1.1.2(8)\nbenchmarks, (3), 2.2.1(63)"
)
CNX_INDEX_CONTINUED = (
    "memory, (3), 1.1.1(7), 1.1.2(8), 1.1.3(9),\n1.1.4(9), 1.1.6(17), 1.1.7(20),\n"
    "memory access time, 1.1.2(8)\nmemory hierarchy, 1.1.2(8)\nmessage-passing, 4.2.1(213)"
)
CNX_ATTRIBUTIONS = (
    "Attributions\nCollection: High Performance Computing\nEdited by: Charles Severance, Kevin Dowd\n"
    "URL: http://cnx.org/content/col11136/1.5/\nLicense: http://creativecommons.org/licenses/by/3.0/\n"
    'Module: "Memory - Introduction"\nUsed here as: "Introduction"\nBy: Charles Severance, Kevin Dowd\n'
    "URL: http://cnx.org/content/m32733/1.3/\nPages: 7-8\nCopyright: Charles Severance, Kevin Dowd"
)
CNX_ATTRIBUTIONS_CONTINUED = (
    'Module: "Memory - Cache Organization"\nUsed here as: "Cache Organization"\nBy: Charles Severance\n'
    "URL: http://cnx.org/content/m32722/1.3/\nPages: 13-17\nCopyright: Charles Severance\n"
    "License: http://creativecommons.org/licenses/by/3.0/"
)


def test_connexions_index_and_attribution_pages_are_found():
    pages = [PROSE, CNX_INDEX, CNX_INDEX_CONTINUED, CNX_ATTRIBUTIONS, CNX_ATTRIBUTIONS_CONTINUED]
    assert find_contents_and_index_pages(pages) == {1, 2, 3, 4}
    # a page that names its source and licence once, among prose, stays
    credits = "URL: http://cnx.org/content/m32733/1.3/\nLicense: CC BY 3.0\n" + PROSE
    assert find_contents_and_index_pages([PROSE, credits, PROSE]) == set()


def test_list_continuation_stops_at_the_first_page_of_text():
    pages = [CONTENTS_ONE_LINE, "1 Introduction\n1.1 Our Philosophy\n" + PROSE, CONTENTS_CONTINUED]
    assert find_contents_and_index_pages(pages) == {0}


@pytest.mark.parametrize(
    "page",
    [
        # a symbol table printed by readelf: numbered lines, few letters, the same words on each
        "\n".join(f"{n}: 40000000000{n:03d}00 0 SECTION LOCAL DEFAULT {n}" for n in range(3, 20)),
        # program output: counting from 1 to 3, twice
        "Do loop counting from 1 to 3 by 1:\n1\n2\n3\nFor loop counting from 1 to 3 by 1:\n1\n2\n3\n"
        "References\nWikiversity: Computer Programming",
        # a table of measurements: numbers at line ends, but in no order
        "\n".join(f"Machine {m} speed {v}" for m, v in zip("ABCDEFGHIJ", [41, 7, 93, 12, 55, 3, 78, 20, 64])),
        # exercises ending in numbers inside prose
        "Exercises\n1. How many records does Table 7.2 show?\n2. What is the domain of field 3?\n" + PROSE,
        # dense prose that mentions years
        "The first compiler was written in 1952\nand the language grew until 1957\n" + PROSE,
    ],
    ids=["code-listing", "program-output", "data-table", "exercises", "prose"],
)
def test_pages_that_only_end_some_lines_in_numbers_are_kept(page):
    assert find_contents_and_index_pages([PROSE, page, PROSE]) == set()


def test_pdf_reader_leaves_out_contents_and_index_pages_and_keeps_page_numbers(tmp_path):
    pages = ["Title", CONTENTS_ONE_LINE, "Hash tables store keys in buckets.", "Trees branch.", INDEX]
    doc = read_document(make_pdf(tmp_path / "book.pdf", pages))
    assert [s.page for s in doc.sections] == [1, 3, 4]
    assert doc.page_count == 5
    assert doc.warnings == []


def test_pdf_that_is_only_a_table_of_contents_is_refused_with_the_reason(tmp_path):
    pdf = make_pdf(tmp_path / "toc.pdf", [CONTENTS_ONE_LINE, CONTENTS_CONTINUED])
    with pytest.raises(UnreadableFileError, match="only a table of contents or an index"):
        read_document(pdf)
