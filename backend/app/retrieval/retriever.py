"""Dense retrieval: embed the query, search Milvus, return citable sources.

Why a class of its own: the chat service, the evaluation harness and the
benchmarks all retrieve through this one path, so what we measure is what runs.
Calls are synchronous (torch and pymilvus are); the API runs them in a thread.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from app.embedding.encoder import Embedder
from app.settings import Settings
from app.storage.chunk_store import ChunkStore


@dataclass
class Source:
    """One retrieved chunk, numbered as the answer cites it ([1], [2], ...)."""

    number: int
    chunk_id: str
    file: str
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    score: float
    text: str

    @property
    def location(self) -> str:
        """Human-readable place: "book.pdf, p. 12–13 (printed 10–11)" or "notes.md › Heading"."""
        where = self.file
        if self.page_start is not None:
            pages = str(self.page_start) if self.page_start == self.page_end else f"{self.page_start}–{self.page_end}"
            where += f", p. {pages}"
            if self.page_label and self.page_label != pages:
                where += f" (printed {self.page_label})"
        elif self.heading:
            where += f" › {self.heading}"
        return where

    def to_dict(self) -> dict:
        data = asdict(self)
        data["location"] = self.location
        return data


@dataclass
class Retrieval:
    query: str
    sources: list[Source]
    candidates: int
    collection_empty: bool
    elapsed_ms: float


class Retriever:
    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder):
        self.settings = settings
        self.store = store
        self.embedder = embedder

    def search(self, query: str, top_k: int | None = None, cutoff: float | None = None) -> Retrieval:
        from llama_index.core.vector_stores.types import VectorStoreQuery

        started = time.perf_counter()
        top_k = top_k or self.settings.top_k
        cutoff = self.settings.similarity_cutoff if cutoff is None else cutoff
        if not self.store.exists():
            return Retrieval(query, [], 0, True, (time.perf_counter() - started) * 1000)
        vector = self.embedder.encode([query])[0].tolist()
        result = self.store.vector_store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=top_k))
        sources = []
        for node, score in zip(result.nodes or [], result.similarities or []):
            if score < cutoff:
                continue
            meta = node.metadata
            sources.append(Source(
                number=len(sources) + 1,
                chunk_id=node.node_id,
                file=meta.get("file_path", ""),
                page_start=meta.get("page_start"),
                page_end=meta.get("page_end"),
                page_label=meta.get("page_label"),
                heading=meta.get("heading"),
                score=round(float(score), 4),
                text=node.get_content(),
            ))
        return Retrieval(query, sources, len(result.nodes or []), False, (time.perf_counter() - started) * 1000)
