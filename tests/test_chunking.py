"""Chunk sizes are counted with the embedder's own tokenizer, and provenance is kept."""

from __future__ import annotations

from app.ingestion.chunking import Chunker, split_sentences
from app.ingestion.readers import Section
from conftest import topic_text


def _count(embedder, text):
    return len(embedder.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_sentences_split_on_end_punctuation():
    assert split_sentences("It works. Does it? Yes! e.g. this stays") == [
        "It works.", "Does it?", "Yes! e.g. this stays"]


def test_every_chunk_fits_the_budget_measured_by_the_real_tokenizer(embedder):
    chunker = Chunker(embedder.tokenizer, chunk_size=60, chunk_overlap=15)
    sections = [Section(text=topic_text(f"topic{i}", 8), page=i + 1) for i in range(4)]
    chunks = chunker.chunk(sections)
    assert len(chunks) > 4
    for chunk in chunks:
        assert _count(embedder, chunk.text) <= 60
        assert chunk.token_count == _count(embedder, chunk.text)


def test_chunks_span_pages_and_record_both_ends(embedder):
    chunker = Chunker(embedder.tokenizer, chunk_size=200, chunk_overlap=0)
    sections = [Section(text="Alpha ends here.", page=3, page_label="1"),
                Section(text="Beta starts here.", page=4, page_label="2")]
    [chunk] = chunker.chunk(sections)
    assert (chunk.page_start, chunk.page_end, chunk.page_label) == (3, 4, "1–2")


def test_overlap_repeats_the_last_sentences(embedder):
    chunker = Chunker(embedder.tokenizer, chunk_size=40, chunk_overlap=20)
    chunks = chunker.chunk([Section(text=topic_text("queues", 6), page=1)])
    assert len(chunks) >= 2
    last_sentence = chunks[0].text.split(". ")[-1]
    assert chunks[1].text.startswith(last_sentence.rstrip("."))


def test_heading_sections_are_never_mixed(embedder):
    chunker = Chunker(embedder.tokenizer, chunk_size=200, chunk_overlap=30)
    chunks = chunker.chunk([Section(text="Stacks are LIFO.", heading="Stacks"),
                            Section(text="Queues are FIFO.", heading="Queues")])
    assert [(c.heading, c.text) for c in chunks] == [("Stacks", "Stacks are LIFO."), ("Queues", "Queues are FIFO.")]


def test_pdf_outline_sections_may_share_a_chunk_across_a_page_break(embedder):
    # the outline only says on which page a section starts, so pages are not cut apart
    chunker = Chunker(embedder.tokenizer, chunk_size=200, chunk_overlap=0)
    sections = [Section(text="Probing ends here.", page=7, heading="5 Hashing › 5.1 Probing"),
                Section(text="Chaining starts here.", page=8, heading="5 Hashing › 5.2 Chaining")]
    [chunk] = chunker.chunk(sections)
    assert (chunk.page_start, chunk.page_end, chunk.heading) == (7, 8, "5 Hashing › 5.1 Probing")


def test_embedded_text_leads_with_the_heading(embedder):
    from app.ingestion.pipeline import embedding_text

    chunker = Chunker(embedder.tokenizer, chunk_size=200, chunk_overlap=0)
    [titled] = chunker.chunk([Section(text="It resolves collisions.", page=3, heading="5.2 Chaining")])
    [plain] = chunker.chunk([Section(text="It resolves collisions.", page=3)])
    assert embedding_text(titled) == "5.2 Chaining\n\nIt resolves collisions."
    assert embedding_text(plain) == "It resolves collisions."


def test_overlong_sentence_is_cut_at_token_boundaries_without_losing_text(embedder):
    chunker = Chunker(embedder.tokenizer, chunk_size=32, chunk_overlap=0)
    words = " ".join(f"word{i}" for i in range(120))
    chunks = chunker.chunk([Section(text=words, page=1)])
    assert all(_count(embedder, c.text) <= 32 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == words.split()
