"""The request body of POST /v1/chat/completions: OpenAI's shape, fields the appliance
does not use accepted and ignored (clients send many), one extra field of its own."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    # a string, or a list of parts ({"type": "text", "text": ...}; other parts are ignored)
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="The course to answer from (GET /v1/models lists them).")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation, the question last.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="At most RAG_LLM_MAX_TOKENS.")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="As max_tokens (newer name).")
    temperature: float | None = Field(default=None, ge=0, le=2)
    n: int | None = Field(default=None, ge=1, le=1, description="One answer per request.")
    conversation_id: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Appliance extension: also store the turn in this conversation (it then shows in the "
        "chat page's list, for its owner). Without it nothing is stored.",
    )

    @property
    def answer_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)
