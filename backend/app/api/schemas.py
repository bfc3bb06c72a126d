"""Request and response bodies, with the validation users see as 422 messages."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class ChatRequest(BaseModel):
    message: str = Field(..., description="The student's question.", examples=["What is a hash table?"])
    conversation_id: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Reuse to continue a conversation; omit to start a new one.",
    )
    course: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="The course to answer from (GET /api/courses); default: the conversation's course, "
        "else the default course.",
    )
    regenerate: bool = Field(
        default=False,
        description="Answer again in place of the conversation's last answer (its last turn is "
        "replaced once the new answer is complete).",
    )

    @field_validator("message")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")  # the error handler names the field
        return v.strip()


class SourceOut(BaseModel):
    number: int
    chunk_id: str
    file: str
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    score: float
    text: str
    ocr: bool = Field(default=False, description="the passage was read from a scanned page with OCR, "
                      "so a word in it may be misread")
    location: str


class ChatResponse(BaseModel):
    conversation_id: str
    message_id: int | None = Field(default=None, description="the stored answer's id: what feedback names "
                                   "(PUT /api/conversations/{id}/messages/{message_id}/feedback)")
    answer: str
    sources: list[SourceOut]
    cited: list[int]
    retrieval_query: str = Field(description="what was searched: the question without its greetings and thanks, "
                                 "misspelt words as the materials spell them, a follow-up joined to the question "
                                 "before it or rewritten by the LLM")
    condensed_by: str = Field(description="how a follow-up became the search query: none, llm or concat")
    expanded: bool = Field(default=False, description="whether the search also used a passage the LLM wrote "
                           "to answer the question (query expansion, RAG_QUERY_EXPANSION)")
    timings: dict[str, float | None]
    usage: dict[str, int | None]
    stopped: bool
    interrupted: bool = False  # cut by an LLM server fault (stopped: by the student)
    finish_reason: str | None


class FeedbackRequest(BaseModel):
    vote: Literal["up", "down"] = Field(..., description="Helpful (up) or not (down).")
    comment: str = Field("", max_length=1000, description="What was wrong or right, in the student's words.")


class RenameRequest(BaseModel):
    title: str = Field(..., min_length=1, max_length=200)
