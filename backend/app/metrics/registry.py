"""The appliance's Prometheus metrics, in a registry of its own.

Why a registry per app rather than prometheus_client's global one: tests (and a process
that builds the app twice) would otherwise share counters across apps, and a second
app could not register the same names. Labels are bounded by construction: a route's
template (never its path), a finish reason, a stage name, a course name, a failure
kind; never question text or a conversation id.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from app.chat.service import turn_outcome
from app.ingestion.progress import IngestReport

# Seconds: from a 1 ms keyword search to a two-minute answer on a CPU.
STAGE_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120)
REQUEST_BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120)

# A turn's timings (app/chat/service.py) -> the stage they are reported as.
TURN_STAGES = {
    "condense_ms": "condense",
    "question_ms": "question",  # chatter and spelling
    "embed_ms": "embed",
    "dense_ms": "dense_search",
    "keyword_ms": "keyword_search",
    "rerank_ms": "rerank",
    "expansion_ms": "expansion",
    "prompt_ms": "prompt_build",
    "first_token_ms": "first_token",
    "generation_ms": "generation",
    "total_ms": "total",
}

LLM_STAGES = {"first_token_ms", "generation_ms"}

# How a turn ended (the `outcome` label of rag_answers_total; chat.service.turn_outcome).
OUTCOMES = ("answered", "declined", "small_talk", "stopped", "error", "busy")

# A failed file's reason (free text for people) -> a bounded kind for the label.
_FAILURE_KINDS = [
    ("time_limit", re.compile(r"\bseconds?\b.*\blimit|took longer|RAG_MAX_READ_SECONDS", re.I)),
    ("memory_limit", re.compile(r"memory", re.I)),
    ("size_limit", re.compile(r"the limit is|over the .*limit|unzips to|characters per document", re.I)),
    ("encrypted", re.compile(r"encrypted|password", re.I)),
    ("no_text", re.compile(r"no text|no extractable text|table of contents or an index|empty file", re.I)),
    ("not_a_file", re.compile(r"not a regular file|link|vanished", re.I)),
    ("unsupported", re.compile(r"unsupported|binary content|not a (PDF|DOCX|PowerPoint|Jupyter)|corrupt", re.I)),
    ("permission", re.compile(r"permission denied", re.I)),
]


def failure_kind(reason: str) -> str:
    """The kind of an ingest failure, for a label: one of a fixed few, "other" else."""
    for kind, pattern in _FAILURE_KINDS:
        if pattern.search(reason):
            return kind
    return "other"


class ApplianceMetrics:
    """Every metric the backend exports; `render()` is the /metrics body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("rag_http_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=registry)
        self.request_seconds = Histogram("rag_http_request_duration_seconds",
                                         "Time to the end of the response, by route template (a stream: its "
                                         "whole length).", ["route"], buckets=REQUEST_BUCKETS, registry=registry)
        self.stage_seconds = Histogram("rag_turn_stage_duration_seconds",
                                       "Each stage of a chat turn: condense, question, embed, dense_search, "
                                       "keyword_search, rerank, expansion, prompt_build, first_token (from the "
                                       "LLM request), generation, total.", ["stage"], buckets=STAGE_BUCKETS,
                                       registry=registry)
        self.answers = Counter("rag_answers", "Chat turns by how they ended: answered, declined (the materials "
                               "hold nothing relevant), small_talk, stopped (by the student), error (LLM "
                               "server fault), busy (no answer slot within RAG_MAX_ANSWER_WAIT_S).",
                               ["outcome"], registry=registry)
        self.tokens = Counter("rag_generated_tokens", "Tokens the LLM generated for answers.", registry=registry)
        self.tokens_per_second = Histogram("rag_generation_tokens_per_second", "Generation speed of each answer "
                                           "(tokens after the first / time after the first).",
                                           buckets=(1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 400),
                                           registry=registry)
        self.active_streams = Gauge("rag_active_streams", "Answer streams open now (/api/chat/stream and "
                                    "/v1/chat/completions with stream).", registry=registry)
        self.answers_running = Gauge("rag_answers_in_progress", "Questions holding an answer slot now.",
                                     registry=registry)
        self.answers_queued = Gauge("rag_answers_queued", "Questions waiting for an answer slot now.",
                                    registry=registry)
        self.llm_up = Gauge("rag_llm_up", "1 when the LLM server answers (or is busy answering), 0 when down; "
                            "checked at each scrape.", registry=registry)
        self.llm_model = Gauge("rag_llm_model_info", "The model the LLM server serves (value 1).", ["model"],
                               registry=registry)
        self.chunks = Gauge("rag_course_chunks", "Chunks in each course's collection (courses this backend "
                            "has opened).", ["course"], registry=registry)
        self.ingest_files = Counter("rag_ingest_files", "Files the backend's ingest runs handled (uploads, "
                                    "deletes, the start-up check), by result: ingested, updated, unchanged, "
                                    "removed, failed.", ["result"], registry=registry)
        self.ingest_failures = Counter("rag_ingest_failures", "Files that failed to ingest, by kind.", ["kind"],
                                       registry=registry)
        self.ingest_pages = Counter("rag_ingest_pages", "Pages read by ingest runs.", registry=registry)
        self.ingest_chunks = Counter("rag_ingest_chunks", "Chunks written by ingest runs.", registry=registry)
        self.ingest_seconds = Histogram("rag_ingest_run_duration_seconds", "Length of each ingest run.",
                                        buckets=(.1, .5, 1, 5, 10, 30, 60, 300, 900, 3600), registry=registry)
        for outcome in OUTCOMES:  # every outcome shows from the start, at 0
            self.answers.labels(outcome)

    # -- recording ------------------------------------------------------------
    def observe_turn(self, done: dict) -> None:
        """A finished turn, from the chat's `done` event: its stages, outcome and tokens."""
        timings = done.get("timings") or {}
        outcome = turn_outcome(done)
        generated = outcome not in ("declined", "small_talk")  # a canned reply involves no LLM
        for key, stage in TURN_STAGES.items():
            value = timings.get(key)
            if value is not None and (generated or key not in LLM_STAGES):
                self.stage_seconds.labels(stage).observe(value / 1000)
        self.answers.labels(outcome).inc()
        tokens = (done.get("usage") or {}).get("completion_tokens") or 0
        if tokens and generated:
            self.tokens.inc(tokens)
            first, generation = timings.get("first_token_ms"), timings.get("generation_ms")
            if tokens > 1 and first is not None and generation and generation > first:
                self.tokens_per_second.observe((tokens - 1) / ((generation - first) / 1000))

    def turn_failed(self, outcome: str) -> None:
        """A turn that ended without a `done` event: "error" or "busy"."""
        self.answers.labels(outcome).inc()

    def observe_ingest(self, report: IngestReport) -> None:
        results = {"ingested": len(report.ingested), "updated": len(report.updated),
                   "unchanged": report.unchanged, "removed": len(report.removed), "failed": len(report.failed)}
        for result, count in results.items():
            self.ingest_files.labels(result).inc(count)
        before = set(report.failed_before)  # counted once, when it failed, not on every re-run
        for path, reason in report.failed.items():
            if path not in before:
                self.ingest_failures.labels(failure_kind(reason)).inc()
        self.ingest_pages.inc(report.pages)
        self.ingest_chunks.inc(report.chunks_written)
        self.ingest_seconds.observe(report.elapsed_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)
