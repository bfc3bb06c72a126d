"""The ingest run: plan against the manifest, then read, chunk, embed and store.

Crash safety comes from the order of writes for each file:
  1. delete leftovers of this exact version (from an interrupted earlier run),
  2. insert the new chunks,
  3. delete chunks of older versions of the file,
  4. record the file in the manifest.
A run killed anywhere leaves the file unrecorded (or recorded at its old version),
so the next run simply does it again; stable chunk ids and step 1 prevent
duplicates. A consistency check at the start repairs anything a crash of the
database itself might have left behind.

Files are read in a child process under limits (reader_process.py), so one hostile
or broken file is named as failed while the others are ingested. A failed file is
remembered with its content hash and not read again until it changes.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

from app.cpus import usable_cores
from app.embedding.encoder import Embedder, load_embedder
from app.errors import ConfigurationError, EmbeddingModelMismatchError
from app.ingestion import ocr
from app.ingestion.chunking import Chunk, Chunker
from app.ingestion.discovery import SourceFile, content_hash, discover
from app.ingestion.progress import IngestReport, Plan, ProgressListener, cited_pages
from app.ingestion.reader_process import ReaderProcess, ReadLimits
from app.ingestion.readers import UnreadableFileError, scans_left_unread
from app.retrieval.keyword_index import KeywordIndex
from app.settings import Settings
from app.storage.catalog import Catalog, CollectionMeta, FailedFile, FileRecord
from app.storage.chunk_store import ChunkStore

# Bump when reading, cleaning or chunking changes, so existing files are redone.
# 2: PDF outline headings, embedded with the text; 3: lost PDF ligatures repaired;
# 4: contents and index pages left out; 5: headings from the type size where there is no outline;
# 6: a compound split at a line end keeps its hyphen ("floating-point"); 7: web pages give
# their main content only (no menus, sidebars, footers), and a code line in HTML or Word
# that starts with "#" is no longer taken for a heading; 8: a running header that ends in the
# page's printed number is dropped even in a chapter too short to repeat it ("Hello World | 39"),
# and an outline's bylines (a section author listed after each title) are not sections; 9: a PDF
# without page labels is cited by the page numbers printed on its pages, where they can be told;
# 10: a running header that only repeats the title of the section a page is in ("§5.1 Hash
# Tables", "First Steps") is dropped, and so are lines that repeat an outline's bylines;
# 11: sentences repeated on a tenth of a book's pages anywhere on the page (Connexions
# footnotes, per-chapter reference lists), Connexions' index and attribution pages and C1
# control characters are left out
PIPELINE_VERSION = "11"
ENCODE_BATCH = 128  # chunks per encode call between progress updates


def pipeline_fingerprint(settings: Settings) -> str:
    key = f"{PIPELINE_VERSION}|{settings.ingest.chunk_size_tokens}|{settings.ingest.chunk_overlap_tokens}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def read_limits(settings: Settings) -> ReadLimits:
    return ReadLimits(seconds=settings.ingest.max_read_seconds, memory_mb=settings.ingest.max_read_memory_mb,
                      characters=settings.ingest.max_read_characters,
                      office_unzipped_mb=settings.ingest.max_read_office_unzipped_mb, ocr=ocr_options(settings))


def ocr_options(settings: Settings) -> ocr.OcrOptions | None:
    """OCR as the settings ask and this machine allows (None: off, or not installed)."""
    if settings.ingest.ocr == "off" or ocr.missing_tools():
        return None
    return ocr.OcrOptions(languages=settings.ingest.ocr_languages, seconds_per_page=settings.ingest.ocr_seconds_per_page,
                      jobs=usable_cores())


def ocr_note(pages: list[int]) -> str:
    """The document list's note on pages read with OCR (recognised text may hold errors)."""
    return f"{len(pages)} scanned page{'s' if len(pages) != 1 else ''} read with OCR ({cited_pages(pages)})"


def embedding_text(chunk: Chunk) -> str:
    """What is embedded: the section heading, then the chunk. A passage often says "it"
    or "this method"; the heading says what it is about (measured: docs/DESIGN.md)."""
    if chunk.heading and chunk.heading_embedded:
        return f"{chunk.heading}\n\n{chunk.text}"
    return chunk.text


def chunk_id(rel_path: str, file_hash: str, index: int) -> str:
    """Stable id: the same file version always yields the same ids."""
    return f"{hashlib.sha1(rel_path.encode()).hexdigest()[:16]}-{file_hash[:16]}-{index:05d}"


class Ingestor:
    """Ingest folders into one collection; holds the model once loaded."""

    def __init__(
        self,
        settings: Settings,
        client,
        database_label: str,
        embedder_loader: Callable[[], Embedder] | None = None,
    ):
        self.settings = settings
        self.client = client
        self.database_label = database_label
        self.catalog = Catalog(client, settings.storage.collection_name)
        self._embedder: Embedder | None = None
        self._load_embedder = embedder_loader or (
            lambda: load_embedder(
                settings.embedding.embedding_model,
                settings.embedding.embedding_device,
                settings.embedding.embedding_batch_size,
                settings.embedding.torch_threads,
            )
        )
        self._store: ChunkStore | None = None
        self._keyword_index: KeywordIndex | None = None

    # -- components, created only when there is work ---------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._load_embedder()
        return self._embedder

    def chunk_store(self, dim: int | None = None) -> ChunkStore:
        """The chunk collection's store (shared with the backend's retriever); `dim` is
        needed only to create the collection."""
        if self._store is None or (dim and self._store.dim != dim):
            self._store = ChunkStore(
                self.client, self.settings.storage.collection_name,
                dim or 0, self.settings.storage.insert_batch_size, self.settings.storage.vector_index,
                self.settings.storage.ivf_nlist, self.settings.storage.ivf_nprobe,
            )
        return self._store

    def keyword_index(self) -> KeywordIndex:
        """The BM25 index over the same chunks (shared with the backend's retriever)."""
        if self._keyword_index is None:
            self._keyword_index = KeywordIndex(self.chunk_store(), self.catalog, self.settings.storage.keyword_index_path,
                                               count_pieces=lambda texts: self.embedder.pieces_per_text(texts))
        return self._keyword_index

    # -- checks -------------------------------------------------------------
    def check_model(self) -> CollectionMeta | None:
        """Refuse to mix embedding models in one collection; say how to fix it."""
        meta = self.catalog.meta()
        if meta and meta.embedding_model != self.settings.embedding.embedding_model:
            raise EmbeddingModelMismatchError(
                f"The database was built with embedding model '{meta.embedding_model}' "
                f"({meta.dimension} dimensions) but RAG_EMBEDDING_MODEL is "
                f"'{self.settings.embedding.embedding_model}'. Re-ingest with --reset to rebuild it with the "
                f"new model, or set RAG_EMBEDDING_MODEL={meta.embedding_model}."
            )
        return meta

    def check_dimension(self, meta: CollectionMeta | None, dim: int) -> None:
        stored = meta.dimension if meta else self.chunk_store().stored_dimension()
        if stored is not None and stored != dim:
            raise EmbeddingModelMismatchError(
                f"The collection '{self.settings.storage.collection_name}' holds {stored}-dimension vectors but "
                f"embedding model '{self.settings.embedding.embedding_model}' makes {dim}-dimension vectors. "
                "Re-ingest with --reset to rebuild it with this model."
            )

    # -- the run -------------------------------------------------------------
    def run(
        self,
        directory: Path,
        *,
        prune: bool = False,
        reset: bool = False,
        listener: ProgressListener | None = None,
        links_into: Path | None = None,
    ) -> IngestReport:
        """Ingest `directory`; `links_into` lets file links point into that folder too
        (the evaluation's mirror of a corpus; course materials never get one)."""
        listener = listener or ProgressListener()
        started = time.perf_counter()
        if not directory.is_dir():
            raise ConfigurationError(f"{directory} is not a folder.")
        report = IngestReport(directory=str(directory), database=self.database_label)

        if reset:
            self.chunk_store().drop()
            self.catalog.drop()
        meta = self.check_model()
        self.catalog.ensure()
        records, failures = self.catalog.files_and_failures()
        report.repaired = self._repair(records)

        found = discover(directory, links_into)
        report.hidden_skipped = found.hidden_skipped
        report.unsupported_skipped = found.unsupported_skipped
        report.failed.update(found.unreadable)

        fingerprint = pipeline_fingerprint(self.settings)
        limits = read_limits(self.settings)
        attempt = f"{fingerprint}|{limits.describe()}"
        work: list[tuple[SourceFile, str, bool]] = []  # (file, hash, is_update)
        for source in found.files:
            try:
                digest = content_hash(source.abs_path)
            except OSError as exc:
                report.failed[source.rel_path] = f"cannot read: {exc.strerror or exc}"
                continue
            old = records.get(source.rel_path)
            if (old and old.content_hash == digest and old.pipeline == fingerprint
                    and not (limits.ocr and scans_left_unread(old.warnings))):  # OCR can read them now
                report.unchanged += 1
                continue
            failed = failures.get(source.rel_path)
            if failed and failed.content_hash == digest and failed.attempt == attempt:
                report.failed[source.rel_path] = failed.reason
                report.failed_before.append(source.rel_path)
                continue
            work.append((source, digest, old is not None))

        on_disk = {f.rel_path for f in found.files} | set(found.unreadable)
        for path in failures.keys() - on_disk:
            self.catalog.forget_failure(path)
        gone = sorted(path for path in records if path not in on_disk)
        if not prune:
            report.stale_on_disk = gone
            gone = []
        with ReaderProcess(limits) as reader:
            self._ingest_all(work, gone, meta, reader, attempt, fingerprint, report, listener)
        for path in failures.keys() & {*report.ingested, *report.updated}:  # failed before, in now
            self.catalog.forget_failure(path)

        # Keep the keyword index in step: rebuilt when this run (or an earlier, interrupted
        # one) changed the collection, a no-op otherwise.
        self.keyword_index().sync_saved()
        report.chunks_in_database = self.chunk_store().count()
        report.elapsed_s = time.perf_counter() - started
        return report

    def _ingest_all(self, work, gone, meta, reader: ReaderProcess, attempt: str, fingerprint: str,
                    report: IngestReport, listener: ProgressListener) -> None:
        pages = {s.rel_path: (reader.count_pages(s.abs_path) if s.kind == "pdf" else 1) for s, _, _ in work}
        if work:
            listener.loading_model(self.settings.embedding.embedding_model)
            embedder = self.embedder
        listener.planned(Plan(
            to_ingest=sum(not upd for _, _, upd in work),
            to_update=sum(upd for _, _, upd in work),
            unchanged=report.unchanged,
            to_remove=len(gone),
            total_pages=sum(pages.values()),
        ))

        if work:
            self.check_dimension(meta, embedder.dimension)
            if meta is None:
                self.catalog.set_meta(CollectionMeta(self.settings.embedding.embedding_model, embedder.dimension))
            store = self.chunk_store(embedder.dimension)
            store.ensure_collection()
            chunker = Chunker(embedder.tokenizer, self.settings.ingest.chunk_size_tokens, self.settings.ingest.chunk_overlap_tokens)
            window = embedder.max_tokens - 2  # [CLS] and [SEP]
            for source, digest, is_update in work:
                self._ingest_file(source, digest, is_update, pages[source.rel_path], fingerprint,
                                  store, chunker, window, report, listener, reader, attempt)

        for path in gone:
            self.chunk_store().delete_file(path)
            self.catalog.remove(path)
            report.removed.append(path)
            listener.file_finished(path, "removed")

    def _ingest_file(self, source, digest, is_update, expected_pages, fingerprint,
                     store, chunker, window, report, listener, reader: ReaderProcess, attempt: str) -> None:
        path = source.rel_path
        listener.file_started(path, expected_pages)
        try:
            limit = self.settings.ingest.max_document_pages
            if expected_pages > limit:
                raise UnreadableFileError(f"it has {expected_pages} pages; the limit is {limit} "
                                          "(RAG_MAX_DOCUMENT_PAGES)")
            document = reader.read(source.abs_path, lambda scanned: listener.recognising(path, scanned))
        except UnreadableFileError as exc:
            report.failed[path] = str(exc)
            self.catalog.put_failure(FailedFile(path, digest, attempt, str(exc)))
            listener.advanced(expected_pages, 0)
            listener.file_finished(path, "failed", str(exc))
            return
        chunks = chunker.chunk(document.sections)
        rows: list[dict] = []
        pages_done = 0
        for start in range(0, len(chunks), ENCODE_BATCH):
            batch = chunks[start:start + ENCODE_BATCH]
            vectors = self.embedder.encode([embedding_text(c) for c in batch])
            rows.extend(self._row(path, digest, c, v) for c, v in zip(batch, vectors))
            reached = batch[-1].page_end or 0
            step = max(0, min(reached, expected_pages) - pages_done) if document.page_count else 0
            pages_done += step
            listener.advanced(step, len(batch))
        store.delete_file(path, only_hash=digest)
        store.add(rows)
        store.delete_file(path, keep_hash=digest)
        self.catalog.put(FileRecord(
            path=path, content_hash=digest, pipeline=fingerprint, chunk_count=len(chunks),
            page_count=document.page_count, size_bytes=source.size_bytes, kind=source.kind,
            warnings=document.warnings + ([ocr_note(document.ocr_pages)] if document.ocr_pages else []),
        ))
        listener.advanced(max(0, expected_pages - pages_done), 0)
        (report.updated if is_update else report.ingested).append(path)
        if document.warnings:
            report.warnings[path] = document.warnings
        if document.left_out_pages:
            report.left_out_pages[path] = document.left_out_pages
        if document.ocr_pages:
            report.ocr_pages[path] = document.ocr_pages
        report.pages += document.page_count or 1
        report.chunks_written += len(chunks)
        report.tokens_total += sum(c.token_count for c in chunks)
        report.tokens_embedded += sum(min(c.token_count, window) for c in chunks)
        listener.file_finished(path, "updated" if is_update else "ingested", f"{len(chunks)} chunks")

    @staticmethod
    def _row(path: str, digest: str, chunk: Chunk, vector) -> dict:
        """The chunk as the collection stores it: columns, then metadata as dynamic fields."""
        row = {
            "id": chunk_id(path, digest, chunk.index),
            "doc_id": path,
            "text": chunk.text,
            "embedding": vector.tolist(),
            "file_path": path,
            "file_name": Path(path).name,
            "file_hash": digest,
            "chunk_index": chunk.index,
            "token_count": chunk.token_count,
        }
        if chunk.page_start is not None:
            row["page_start"] = chunk.page_start
            row["page_end"] = chunk.page_end
        if chunk.page_label:
            row["page_label"] = chunk.page_label
        if chunk.heading:
            row["heading"] = chunk.heading
        if chunk.ocr_pages:
            row["ocr_pages"] = list(chunk.ocr_pages)
        return row

    # -- repair ---------------------------------------------------------------
    def _repair(self, records: dict[str, FileRecord]) -> list[str]:
        """Make chunks and manifest agree again after a crash; returns repaired paths.

        Cheap when nothing is wrong (one count); a full scan only on a mismatch.
        """
        store = self.chunk_store()
        if not store.exists():
            if records:
                for path in list(records):
                    self.catalog.remove(path)
                    records.pop(path)
            return []
        expected = sum(r.chunk_count for r in records.values())
        if store.count() == expected:
            return []
        repaired: set[str] = set()
        tally = store.tally_by_version()
        for (path, digest), n in tally.items():
            record = records.get(path)
            if record is None or record.content_hash != digest:
                store.delete_file(path, only_hash=digest)
                repaired.add(path)
        for path, record in list(records.items()):
            if tally.get((path, record.content_hash), 0) != record.chunk_count:
                store.delete_file(path)
                self.catalog.remove(path)
                records.pop(path)
                repaired.add(path)
        return sorted(repaired)
