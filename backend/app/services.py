"""Build every long-lived component once, from the settings, for the API.

Why one place: the API routes stay thin (they only translate HTTP), tests can
build the same object graph, and start-up order is explicit: database first
(starting the shared Milvus Lite server if needed), then the embedder, then the
services that use them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from app.chat.service import ChatService
from app.conversations.store import ConversationStore
from app.documents.service import DocumentService
from app.embedding.encoder import Embedder, load_embedder
from app.errors import StorageUnavailableError
from app.ingestion.pipeline import Ingestor
from app.llm.client import LLMClient
from app.retrieval.reranker import load_reranker
from app.retrieval.retriever import Retriever
from app.settings import Settings
from app.storage import lite_server
from app.storage.chunk_store import ChunkStore
from app.storage.connection import MilvusTarget, connect, resolve_target

log = logging.getLogger("app")


@dataclass
class Services:
    settings: Settings
    target: MilvusTarget
    client: object
    embedder: Embedder
    store: ChunkStore
    retriever: Retriever
    llm: LLMClient
    conversations: ConversationStore
    chat: ChatService
    documents: DocumentService
    started_lite_server: bool = False
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def aclose(self) -> None:
        await self.llm.aclose()
        self.conversations.close()
        try:
            self.client.close()
        except Exception:  # closing a connection to a server that is already gone
            pass
        if self.started_lite_server and self.target.db_path is not None:
            lite_server.stop(self.target.db_path)


def shared_target(settings: Settings) -> tuple[MilvusTarget, bool]:
    """For a Milvus Lite file, make sure a shared server serves it (so ingest.py can
    work while we run); return the target and whether we started that server."""
    target = resolve_target(settings)
    if target.mode != "embedded":
        return target, False
    assert target.db_path is not None
    existing = lite_server.running_server(target.db_path)
    if existing:  # another backend (or an earlier run) already serves this file: share it
        return MilvusTarget(uri=existing.uri, token="", mode="shared", db_path=target.db_path), False
    if lite_server.lock_is_held(target.db_path):
        raise StorageUnavailableError(
            f"The database {target.db_path} is open in another process (an ingest run?). "
            "Wait for it to finish, then start the backend again."
        )
    try:
        state = lite_server.start_in_background(target.db_path)
    except RuntimeError as exc:
        raise StorageUnavailableError(f"Cannot start the Milvus Lite server: {exc}") from exc
    return MilvusTarget(uri=state.uri, token="", mode="shared", db_path=target.db_path), True


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    target, started = shared_target(settings)
    client = connect(target, settings.milvus_connect_timeout_s)
    embedder = embedder or load_embedder(
        settings.embedding_model, settings.embedding_device, settings.embedding_batch_size, settings.torch_threads
    )
    if embedder.query_encoder is None:
        why_not = embedder.enable_fast_queries(settings.embedding_query_runtime, settings.models_path / "onnx")
        if why_not:
            log.warning("Questions are embedded with PyTorch: %s", why_not)
    ingestor = Ingestor(settings, client, target.uri, target.token, target.describe(),
                        embedder_loader=lambda: embedder)
    # The same checks and the same store as ingestion: one source of truth for both.
    ingestor.check_dimension(ingestor.check_model(), embedder.dimension)
    store = ingestor.chunk_store(embedder.dimension)
    if store.exists():
        store.ensure_collection()  # loads it: after a restart Milvus reports it "released"
    keyword_index = ingestor.keyword_index()
    keyword_index.ensure_current()  # load (or build) it now, not on the first question
    retriever = Retriever(settings, store, embedder, keyword_index,
                          load_reranker(settings.reranker_model, settings.embedding_device,
                                        settings.models_path, embedder, keyword_index))
    retriever.prepare()
    llm = LLMClient(settings)
    llm.prepare()
    conversations = ConversationStore(settings.conversations_path)
    chat = ChatService(settings, retriever, llm, conversations)
    documents = DocumentService(settings, ingestor, store, target.db_path)
    return Services(settings, target, client, embedder, store, retriever, llm, conversations, chat,
                    documents, started_lite_server=started)
