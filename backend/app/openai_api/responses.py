"""The chat's events in OpenAI's response shapes: a `chat.completion`, or a stream of
`chat.completion.chunk`s. What OpenAI's shape has no room for travels in an extra
field, `rag`, that OpenAI clients ignore and RAG-aware ones read:

    "rag": {
      "outcome": "answered" | "declined" | "small_talk",
      "declined": true when the materials hold nothing to answer from (the text says so),
      "sources": [ {number, file, page_start, page_end, page_label, heading, location,
                    score, text, chunk_id}, ... ],
      "cited": [numbers of the sources the answer cites],
      "retrieval_query": what was searched, "condensed_by": "none" | "concat" | "llm",
      "conversation_id": where the turn was stored, or null,
      "timings": {stage: milliseconds}
    }
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from app.chat.service import turn_outcome
from app.openai_api.conversation import SOURCES_HEADING

def openai_finish_reason(done: dict) -> str:
    """OpenAI's finish reason: "length" when the answer hit its token limit, else "stop"
    (a decline too: it is a complete reply)."""
    return "length" if done.get("finish_reason") == "length" else "stop"


def rag_field(done: dict) -> dict:
    outcome = turn_outcome(done)
    return {
        "outcome": outcome,
        "declined": outcome == "declined",
        "sources": done.get("sources", []),
        "cited": done.get("cited", []),
        "retrieval_query": done.get("retrieval_query"),
        "condensed_by": done.get("condensed_by"),
        "conversation_id": done.get("conversation_id"),
        "timings": done.get("timings", {}),
    }


def sources_text(done: dict) -> str:
    """The short list appended for clients that show only text: the cited sources (all
    of them when the answer cites none), one line each; empty for a decline."""
    sources = done.get("sources") or []
    if not sources or turn_outcome(done) in ("declined", "small_talk"):
        return ""
    cited = set(done.get("cited") or [])
    shown = [s for s in sources if s["number"] in cited] or sources
    return SOURCES_HEADING + "\n".join(f"[{s['number']}] {s['location']}" for s in shown)


def usage_of(done: dict) -> dict:
    usage = done.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@dataclass
class Completion:
    """One response's identity: every chunk of a stream carries the same id and time."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def whole(self, text: str, done: dict) -> dict:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": openai_finish_reason(done)}],
            "usage": usage_of(done),
            "rag": rag_field(done),
        }

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> dict:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            **extra,
        }

    def final_chunk(self, done: dict) -> dict:
        """The chunk that ends the answer: its finish reason, and the `rag` field."""
        return self.chunk({}, openai_finish_reason(done), rag=rag_field(done))

    def usage_chunk(self, done: dict) -> dict:
        """The last chunk when the client asked for usage (stream_options.include_usage)."""
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage_of(done)}


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    """OpenAI's error shape, which its SDKs turn into their exceptions."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# HTTP status -> OpenAI's error type
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "invalid_request_error", 413: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_error", 503: "service_unavailable"}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "server_error")
