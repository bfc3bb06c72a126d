"""The ingest pipeline against a real Milvus Lite database and the real MiniLM embedder."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from app.errors import EmbeddingModelMismatchError
from conftest import make_pdf, topic_text


@pytest.fixture
def materials(tmp_path) -> Path:
    root = tmp_path / "materials"
    make_pdf(root / "book.pdf", ["Preface of the book.", topic_text("hash tables"), topic_text("binary heaps"),
                                 topic_text("graph traversal")], labels="roman-then-arabic")
    (root / "notes").mkdir()
    (root / "notes" / "stacks.md").write_text(f"# Stacks\n{topic_text('stacks', 4)}\n## Queues\n{topic_text('queues', 4)}\n")
    (root / "notes" / "plain.txt").write_text(topic_text("recursion", 5))
    return root


def _by_file(rows):
    return Counter(r["doc_id"] for r in rows)


def test_page_numbers_and_labels_survive_to_the_stored_chunks(harness, materials):
    report = harness.run(materials)
    assert report.exit_code == 0 and sorted(report.ingested) == ["book.pdf", "notes/plain.txt", "notes/stacks.md"]
    rows = harness.rows()
    assert report.chunks_in_database == len(rows) == report.chunks_written
    book = [r for r in rows if r["doc_id"] == "book.pdf"]
    for row in book:
        # every stored chunk's text really comes from the pages it names
        topic = {2: "hash tables", 3: "binary heaps", 4: "graph traversal"}.get(row["page_start"])
        if topic and row["page_start"] == row["page_end"]:
            assert topic in row["text"]
    heap_rows = [r for r in book if "binary heaps" in r["text"] and "hash tables" not in r["text"]
                 and "graph traversal" not in r["text"]]
    assert heap_rows and all(r["page_start"] == 3 and r["page_label"] == "2" for r in heap_rows)
    assert {r["heading"] for r in rows if r["doc_id"] == "notes/stacks.md"} == {"Stacks", "Stacks › Queues"}


def test_reingest_of_unchanged_files_is_a_no_op(harness, materials):
    harness.run(materials)
    before = sorted((r["id"], r["text"]) for r in harness.rows())
    report = harness.run(materials)
    assert report.unchanged == 3 and not report.ingested and not report.updated and report.chunks_written == 0
    assert sorted((r["id"], r["text"]) for r in harness.rows()) == before


def test_changed_file_replaces_its_chunks_without_duplicates(harness, materials):
    harness.run(materials)
    notes = materials / "notes" / "plain.txt"
    notes.write_text(topic_text("memoization", 5))
    report = harness.run(materials)
    assert report.updated == ["notes/plain.txt"] and report.unchanged == 2
    rows = [r for r in harness.rows() if r["doc_id"] == "notes/plain.txt"]
    assert rows and all("memoization" in r["text"] and "recursion" not in r["text"] for r in rows)
    assert len({r["file_hash"] for r in rows}) == 1
    assert len(rows) == len({r["id"] for r in rows})


def test_removed_files_are_reported_and_pruned_only_on_request(harness, materials):
    harness.run(materials)
    (materials / "notes" / "stacks.md").unlink()
    report = harness.run(materials)
    assert report.stale_on_disk == ["notes/stacks.md"] and "notes/stacks.md" in _by_file(harness.rows())
    report = harness.run(materials, prune=True)
    assert report.removed == ["notes/stacks.md"]
    assert "notes/stacks.md" not in _by_file(harness.rows())
    assert "notes/stacks.md" not in harness.ingestor().catalog.files()


def test_reset_rebuilds_from_scratch(harness, materials):
    harness.run(materials)
    report = harness.run(materials, reset=True)
    assert len(report.ingested) == 3 and report.chunks_in_database == len(harness.rows())


def test_bad_inputs_are_reported_by_name_and_the_rest_ingest(harness, materials):
    make_pdf(materials / "bad" / "locked.pdf", ["secret"], encrypt_password="pw")
    make_pdf(materials / "bad" / "scan.pdf", ["", ""])
    (materials / "bad" / "corrupt.pdf").write_bytes(b"%PDF-1.4 garbage \x00\xff" * 10)
    (materials / "bad" / "empty.md").write_bytes(b"")
    (materials / "bad" / "binary.txt").write_bytes(os.urandom(4096).replace(b"\x00", b"\x01") + b"\x00" * 64)
    (materials / "bad" / "latin1.txt").write_bytes("Résumé of the café lecture.".encode("latin-1"))
    (materials / "bad" / "dangling.md").symlink_to(materials / "does-not-exist.md")
    (materials / ".hidden.md").write_text("secret notes")
    (materials / "slides.key").write_bytes(b"PK")  # Keynote: not a type we read, skipped and counted
    (materials / "bad" / "truncated.ipynb").write_text('{"cells": [{"cell_type": "markdown", "sour')
    report = harness.run(materials)
    assert report.exit_code == 1
    assert set(report.failed) == {"bad/locked.pdf", "bad/scan.pdf", "bad/corrupt.pdf", "bad/empty.md",
                                  "bad/binary.txt", "bad/dangling.md", "bad/truncated.ipynb"}
    assert "not a Jupyter notebook" in report.failed["bad/truncated.ipynb"]
    assert "encrypted" in report.failed["bad/locked.pdf"]
    assert "no extractable text" in report.failed["bad/scan.pdf"]
    assert "corrupt" in report.failed["bad/corrupt.pdf"]
    assert "empty" in report.failed["bad/empty.md"]
    assert "binary" in report.failed["bad/binary.txt"]
    assert "broken link" in report.failed["bad/dangling.md"]
    assert "bad/latin1.txt" in report.ingested and "not UTF-8" in report.warnings["bad/latin1.txt"][0]
    assert {"book.pdf", "notes/stacks.md", "notes/plain.txt"} <= set(report.ingested)
    assert report.hidden_skipped == 1 and report.unsupported_skipped == {".key": 1}
    # failed files are not recorded, so fixing them and re-running picks them up
    (materials / "bad" / "empty.md").write_text("# Fixed\nNow it has text about tries.")
    again = harness.run(materials)
    assert again.ingested == ["bad/empty.md"]
    failures = harness.ingestor().catalog.failures()
    assert "bad/empty.md" not in failures and "bad/corrupt.pdf" in failures  # fixed: forgotten


def test_a_permission_error_is_said_in_plain_words(materials, monkeypatch):
    # Tests run as root, which reads any file; provoke EACCES with a mock (in this process:
    # the ingest reads in a child process, where the same words come back as the reason).
    from app.ingestion import readers

    real = readers._read_bytes

    def deny(path):
        if path.name == "plain.txt":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(readers, "_read_bytes", deny)
    with pytest.raises(readers.UnreadableFileError, match=r"^permission denied \(cannot read the file\)$"):
        readers.read_document(materials / "notes" / "plain.txt")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory, embedder):
    """A real, different sentence-transformers model: MiniLM plus a 384->128 projection."""
    from sentence_transformers import SentenceTransformer, models

    dense = models.Dense(in_features=384, out_features=128)
    model = SentenceTransformer(modules=[*embedder.model, dense], device="cpu")
    path = tmp_path_factory.mktemp("model") / "minilm-128"
    model.save(str(path))
    return path


def test_a_different_embedding_model_is_refused_with_a_fix(harness, materials, small_model):
    from app.embedding.encoder import load_embedder

    harness.run(materials)
    other = harness.settings.model_copy(update={"embedding_model": str(small_model)})
    with pytest.raises(EmbeddingModelMismatchError, match="--reset"):
        harness.ingestor(settings=other).run(materials)
    # the same model name that now yields another dimension is refused too
    projecting = load_embedder(str(small_model), "cpu", 32)
    (materials / "new.md").write_text("# New\nSomething new about tries.")
    with pytest.raises(EmbeddingModelMismatchError, match="128-dimension"):
        harness.ingestor(embedder=projecting).run(materials)
    # --reset rebuilds with the new model
    report = harness.ingestor(settings=other, embedder=projecting).run(materials, reset=True)
    assert report.exit_code == 0 and report.chunks_in_database > 0
    assert harness.ingestor(settings=other).catalog.meta().dimension == 128


def test_repair_removes_orphans_and_redoes_incomplete_files(harness, materials):
    harness.run(materials)
    ingestor = harness.ingestor()
    store = ingestor.chunk_store()
    # Simulate a crash of the database itself: a recorded file lost chunks, and an
    # unrecorded version left chunks behind.
    rows = harness.rows()
    orphans = [r for r in rows if r["doc_id"] == "notes/plain.txt"]
    # lose more book chunks than the orphans count, so the totals cannot cancel out
    victims = [r["id"] for r in rows if r["doc_id"] == "book.pdf"][: len(orphans) + 1]
    store.client.delete(store.collection, ids=victims)
    orphan = orphans[0]
    ingestor.catalog.remove("notes/plain.txt")
    report = harness.run(materials)
    assert report.repaired == ["book.pdf", "notes/plain.txt"]
    assert sorted(report.ingested) == ["book.pdf", "notes/plain.txt"]
    rows = harness.rows()
    assert len(rows) == len({r["id"] for r in rows}) == report.chunks_in_database
    assert orphan["id"] in {r["id"] for r in rows}  # stable ids: redone, not duplicated


def test_contents_and_index_pages_are_left_out_and_named_in_the_summary(harness, tmp_path):
    from app.ingestion.cli import format_summary

    chapters = ["Arrays", "Linked lists", "Hash tables", "Binary heaps", "Sorting", "Graphs"]
    contents = "Contents\n" + "\n".join(f"{n} {title} {4 * n}" for n, title in enumerate(chapters, 1))
    terms = ["array", "binary heap", "chaining", "deque", "edge", "hash table"]
    index = "Index\n" + "\n".join(f"{word}, {n}, {n + 9}" for n, word in enumerate(terms, 2))
    root = tmp_path / "course"
    pages = ["Title", contents, topic_text("hash tables"), topic_text("binary heaps"), index]
    make_pdf(root / "book.pdf", pages)
    report = harness.run(root)
    assert report.left_out_pages == {"book.pdf": [2, 5]}
    assert {r["page_start"] for r in harness.rows()} == {1, 3, 4}
    assert "book.pdf: pp. 2, 5" in format_summary(report)


def test_scanned_pdfs_are_read_with_ocr_and_found_by_a_question(harness, settings, embedder, tmp_path):
    """Without OCR a scan fails by name and a half-scanned file names its unread pages;
    once OCR is on, both are read again (not before they change, otherwise), cited as OCR,
    and a question finds the words that were only in the pictures."""
    from app.ingestion.cli import format_summary
    from conftest import make_scanned_pdf
    from test_retrieval import make_retriever

    root = tmp_path / "materials"
    make_scanned_pdf(root / "scan.pdf", [
        "The ossuary of Saint Brevard keeps the bones of nine hundred monks from the valley. " * 3,
        "Kelp forests grow where cold water brings nitrates up from the deep ocean floor. " * 3])
    make_scanned_pdf(root / "mixed.pdf", [  # more than a chunk a page
        "Basalt columns form when a thick lava flow cools and cracks into hexagons. " * 9,
        "Tide pools empty twice a day, and the anemones close to keep their water in. " * 9],
        text_layer=(0,))
    (root / "notes.md").write_text("# Glaciers\n\n" + topic_text("glacier retreat", 4))

    report = harness.ingestor(settings.model_copy(update={"ocr": "off"})).run(root)
    assert "scanned images and OCR is not available" in report.failed["scan.pdf"]
    assert "1 page not read, they are images of text without OCR" in report.warnings["mixed.pdf"][0]
    assert sorted(report.ingested) == ["mixed.pdf", "notes.md"] and not report.ocr_pages

    report = harness.run(root)  # OCR available and on (the default)
    assert report.exit_code == 0 and report.ingested == ["scan.pdf"] and report.updated == ["mixed.pdf"]
    assert report.unchanged == 1
    assert report.ocr_pages == {"scan.pdf": [1, 2], "mixed.pdf": [2]}
    summary = format_summary(report)
    assert "Read with OCR" in summary and "scan.pdf: pp. 1-2" in summary and "mixed.pdf: p. 2" in summary
    assert harness.run(root).unchanged == 3  # read once: not again until a file changes

    retriever = make_retriever(harness, settings, embedder)
    monks = retriever.search("Where are the bones of the monks kept?")
    assert not monks.declined and (monks.sources[0].file, monks.sources[0].page_start) == ("scan.pdf", 1)
    assert monks.sources[0].ocr and monks.sources[0].location.endswith("(scanned, text recognised by OCR)")
    pools = retriever.search("Why do anemones close in tide pools?").sources[0]
    assert (pools.file, pools.page_end, pools.ocr) == ("mixed.pdf", 2, True) and "anemones" in pools.text
    # each chunk names its pages read with OCR: none for the page with a text layer
    client, _ = harness.client()
    rows = client.query(settings.storage.collection_name, filter='doc_id == "mixed.pdf"',
                        output_fields=["page_start", "page_end", "ocr_pages"])
    pages = {(r["page_start"], r["page_end"], tuple(r.get("ocr_pages") or ())) for r in rows}
    assert (1, 1, ()) in pages and all(ocr == ((2,) if end == 2 else ()) for _, end, ocr in pages)
