"""Generate the sample course's PDF lecture notes (course_materials/…/lecture-04-hash-tables.pdf).

Why generated: we wrote the text ourselves, so the sample course is free to ship,
and regenerating it is one command: python scripts/make_sample_pdf.py
The PDF has a title page labelled "i" and numbered content pages, so the printed
page label differs from the physical page number, as in real textbooks, and an outline
(bookmarks) naming each section, which citations show.
"""

from pathlib import Path

from fpdf import FPDF

OUT = Path(__file__).resolve().parents[1] / "course_materials" / "data-structures-101" / "lecture-04-hash-tables.pdf"

PAGES = [
    ("Lecture 4: Hash Tables", [
        "Data Structures 101, week 3.",
        "Contents: what a hash table is (page 1); handling collisions (page 2); "
        "load factor and resizing (page 3); exercises (page 4).",
    ]),
    ("1. What is a hash table?", [
        "A hash table is a data structure that stores key-value pairs and finds the value for a "
        "key in constant expected time. It keeps an array of slots, often called buckets, and a "
        "hash function that turns each key into an integer. The key is stored in the bucket whose "
        "index is the hash value modulo the number of buckets.",
        "A good hash function spreads keys evenly over the buckets and is fast to compute. Equal "
        "keys must always produce equal hash values; different keys may produce the same value.",
        "Python's dict and set, Java's HashMap and C++'s unordered_map are hash tables. They support "
        "insertion, lookup and deletion in O(1) expected time, but they keep no order among the keys.",
    ]),
    ("2. Handling collisions", [
        "A collision happens when two different keys hash to the same bucket. Because there are "
        "more possible keys than buckets, collisions cannot be avoided; a hash table must resolve them.",
        "Separate chaining stores a small linked list (a chain) in every bucket. A new key is added "
        "to the chain of its bucket, and a lookup scans only that chain.",
        "Open addressing stores every key in the array itself. When the home bucket is taken, the "
        "table probes other buckets in a fixed order: linear probing tries the next bucket, quadratic "
        "probing jumps by growing squares, and double hashing uses a second hash function for the "
        "step. Deletion under open addressing leaves a marker called a tombstone so that later "
        "lookups keep probing past the deleted slot.",
    ]),
    ("3. Load factor and resizing", [
        "The load factor is the number of stored keys divided by the number of buckets. As it "
        "grows, chains get longer and probe sequences get slower.",
        "To keep operations at O(1) expected time, the table resizes when the load factor passes a "
        "threshold, typically 0.75 for chaining or 0.5 for linear probing: it allocates about twice "
        "as many buckets and re-inserts every key, because each key's bucket index depends on the "
        "number of buckets. This rehashing costs O(n), but happens rarely enough that insertion "
        "stays O(1) amortised.",
    ]),
    ("4. Exercises", [
        "Exercise 1. Insert the keys 12, 44, 13, 88, 23, 94, 11, 39, 20 into a table of 11 buckets "
        "with h(k) = k mod 11 using separate chaining, then again using linear probing.",
        "Exercise 2. Explain why deleting a key under open addressing needs a tombstone.",
        "Exercise 3. A table with 1,000 buckets holds 900 keys. Compute its load factor and say "
        "whether a table that resizes at 0.75 would already have grown.",
    ]),
]


def build(out: Path = OUT) -> Path:
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    for number, (title, paragraphs) in enumerate(PAGES):
        pdf.add_page()
        if number == 0:
            pdf.set_page_label(label_style="r")
        elif number == 1:
            pdf.set_page_label(label_style="D", label_start=1)
        if number:
            pdf.start_section(title, level=0)
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 10, title)
        pdf.ln(4)
        pdf.set_font("Helvetica", size=12)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 7, paragraph)
            pdf.ln(3)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


if __name__ == "__main__":
    print(build())
