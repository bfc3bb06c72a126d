"""Build every long-lived component once, from the settings, for the API.

Why one place: the API routes stay thin (they only translate HTTP), tests can
build the same object graph, and start-up order is explicit: database first
(starting the shared Milvus Lite server if needed), then the embedder, then the
services that use them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.chat.service import ChatService
from app.conversations.store import ConversationStore
from app.courses.course import Course, build_read_side
from app.courses.registry import CourseRegistry
from app.documents.jobs import IngestJobs, Job
from app.documents.service import DocumentService
from app.embedding.encoder import Embedder, load_embedder
from app.errors import StorageUnavailableError
from app.llm.client import LLMClient
from app.retrieval.retriever import Retriever
from app.settings import Settings
from app.insight.report import InsightService
from app.storage import lite_server
from app.storage.chunk_store import ChunkStore
from app.storage.connection import MilvusTarget, connect, resolve_target

log = logging.getLogger("app")


@dataclass
class Services:
    """What the backend shares across courses (database, embedder, LLM, history) and
    the courses themselves; `store`, `retriever`, `chat` and `documents` are the default
    course's."""

    settings: Settings
    target: MilvusTarget
    client: object
    embedder: Embedder
    llm: LLMClient
    conversations: ConversationStore
    courses: CourseRegistry
    jobs: IngestJobs
    insight: InsightService
    started_lite_server: bool = False

    @property
    def default(self) -> Course:
        return self.courses.default

    @property
    def store(self) -> ChunkStore:
        return self.default.store

    @property
    def retriever(self) -> Retriever:
        return self.default.retriever

    @property
    def chat(self) -> ChatService:
        return self.default.chat

    @property
    def documents(self) -> DocumentService:
        return self.default.documents

    def start(self) -> None:
        """Start the ingest queue, with a check of every course first: what a killed
        backend or ingest left half done (orphan chunks, a half-received upload, a file
        stored but not ingested) is repaired and ingested, in the background."""
        self.jobs.start()
        if self.settings.ingest.check_on_start:
            for name in self.courses.names():
                self.jobs.submit(Job(name, "check"))

    async def aclose(self) -> None:
        await self.jobs.stop()
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
    client = connect(target, settings.storage.milvus_connect_timeout_s)
    embedder = embedder or load_embedder(
        settings.embedding.embedding_model, settings.embedding.embedding_device, settings.embedding.embedding_batch_size, settings.embedding.torch_threads
    )
    if embedder.query_encoder is None:
        why_not = embedder.enable_fast_queries(settings.embedding.embedding_query_runtime, settings.storage.models_path / "onnx")
        if why_not:
            log.warning("Questions are embedded with PyTorch: %s", why_not)
    llm = LLMClient(settings)
    llm.prepare()
    url = settings.storage.conversations_url
    conversations = ConversationStore(settings.storage.conversations_path, settings.storage.default_course,
                                      url.get_secret_value() if url else None)

    def build_course(name: str, course_settings: Settings) -> Course:
        read = build_read_side(course_settings, client, target, embedder)
        read.retriever.prepare()
        chat = ChatService(course_settings, read.retriever, llm, conversations, course=name)
        documents = DocumentService(course_settings, read.ingestor, read.store, target.db_path)
        return Course(name, read, chat, documents)

    courses = CourseRegistry(settings, client, build_course)
    courses.default  # noqa: B018 (built now: its checks fail the start, not the first question)
    # One queue for every course: they share the database, and its ingest lock.
    jobs = IngestJobs(courses)
    insight = InsightService(conversations, embedder.encode_queries)
    return Services(settings, target, client, embedder, llm, conversations, courses, jobs, insight,
                    started_lite_server=started)
