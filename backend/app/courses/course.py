"""A course: its materials folder, its collection, its keyword index and its retriever.

Why one object built in one place: the backend, the ingest command, the evaluation and
the benchmarks all need the same set-up (model checks, collection loaded, keyword index
current, reranker), and a course's settings are the appliance's with two things
changed, so every component built from them stays inside its course.

The default course (RAG_DEFAULT_COURSE) is the appliance as it was before courses: the
collection RAG_COLLECTION_NAME and the folder RAG_MATERIALS_DIR, so an existing database
opens as that course with no re-ingest. Any other course NAME lives in the collection
`<collection>__NAME` and the folder `<courses_dir>/NAME`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.embedding.encoder import Embedder
from app.errors import ConfigurationError
from app.ingestion.pipeline import Ingestor
from app.retrieval.keyword_index import KeywordIndex
from app.retrieval.reranker import load_reranker
from app.retrieval.retriever import Retriever
from app.settings import Settings
from app.storage.chunk_store import ChunkStore
from app.storage.connection import MilvusTarget

COURSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COURSE_NAME_RULE = "a course name is 1-40 lowercase letters, digits or '_', starting with a letter"


def check_course_name(name: str) -> str:
    if not COURSE_NAME.fullmatch(name or ""):
        raise ConfigurationError(f"'{(name or '')[:60]}' is not a course name: {COURSE_NAME_RULE}.")
    return name


def course_settings(settings: Settings, name: str | None) -> Settings:
    """The settings a course's components are built from."""
    name = check_course_name(name or settings.storage.default_course)
    if name == settings.storage.default_course:
        return settings
    return settings.model_copy(update={"collection_name": f"{settings.storage.collection_name}__{name}",
                                       "materials_dir": settings.storage.courses_path / name})


def course_of_collection(settings: Settings, collection: str) -> str | None:
    """The course a chunk collection belongs to (None: not a course's)."""
    if collection == settings.storage.collection_name:
        return settings.storage.default_course
    prefix = f"{settings.storage.collection_name}__"
    if collection.startswith(prefix) and not collection.endswith("_files"):
        name = collection[len(prefix):]
        return name if COURSE_NAME.fullmatch(name) else None
    return None


@dataclass
class ReadSide:
    """What answers questions about one course's materials."""

    settings: Settings
    ingestor: Ingestor
    store: ChunkStore
    keyword_index: KeywordIndex
    retriever: Retriever


def build_read_side(settings: Settings, client, target: MilvusTarget, embedder: Embedder,
                    reranker_model: str | None = None) -> ReadSide:
    """Checks, collection loaded, keyword index current, reranker, retriever: the one
    place this is set up (the backend, the evaluation and the benchmarks call it).
    `reranker_model` overrides the settings' (None: the settings'; '': no reranker)."""
    ingestor = Ingestor(settings, client, target.describe(),
                        embedder_loader=lambda: embedder)
    return read_side_of(ingestor, embedder, reranker_model)


def read_side_of(ingestor: Ingestor, embedder: Embedder, reranker_model: str | None = None) -> ReadSide:
    """The read side over what an ingestor wrote (for callers that ingest first)."""
    settings = ingestor.settings
    # The same checks and the same store as ingestion: one source of truth for both.
    ingestor.check_dimension(ingestor.check_model(), embedder.dimension)
    store = ingestor.chunk_store(embedder.dimension)
    if store.exists():
        store.ensure_collection()  # loads it: after a restart Milvus reports it "released"
    keyword_index = ingestor.keyword_index()
    keyword_index.ensure_current()  # load (or build) it now, not on the first question
    model = settings.retrieval.reranker_model if reranker_model is None else reranker_model
    reranker = load_reranker(model, settings.embedding.embedding_device, settings.storage.models_path, embedder, keyword_index)
    retriever = Retriever(settings, store, embedder, keyword_index, reranker)
    return ReadSide(settings, ingestor, store, keyword_index, retriever)


@dataclass
class Course:
    """A course as the backend serves it: the read side, its chat and its documents."""

    name: str
    read: ReadSide
    chat: object  # app.chat.service.ChatService
    documents: object  # app.documents.service.DocumentService

    @property
    def settings(self) -> Settings:
        return self.read.settings

    @property
    def store(self) -> ChunkStore:
        return self.read.store

    @property
    def retriever(self) -> Retriever:
        return self.read.retriever
