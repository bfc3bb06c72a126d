"""POST /api/chat (JSON) and POST /api/chat/stream (server-sent events)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException
from sse_starlette.sse import EventSourceResponse

from app.api.deps import get_services
from app.api.schemas import ChatRequest, ChatResponse
from app.errors import ApplianceError
from app.services import Services

router = APIRouter(prefix="/api", tags=["chat"])


def _check_length(body: ChatRequest, services: Services) -> None:
    limit = services.settings.max_message_chars
    if len(body.message) > limit:
        raise HTTPException(413, f"message is {len(body.message)} characters; the limit is {limit}.")


@router.post("/chat", response_model=ChatResponse, summary="Ask a question, get the whole answer")
async def chat(body: ChatRequest, services: Services = Depends(get_services)) -> dict:
    """Answer from the course materials, with sources, timings and the conversation id.

    Reuse `conversation_id` to ask follow-ups; the history is kept on the server.
    """
    _check_length(body, services)
    return await services.chat.answer(body.message, body.conversation_id, body.regenerate)


@router.post("/chat/stream", summary="Ask a question, stream the answer (SSE)")
async def chat_stream(body: ChatRequest, services: Services = Depends(get_services)) -> EventSourceResponse:
    """Events: `sources` (once, before any token), `token` ({"delta"}), `done` (the full
    answer, usage and timings, as POST /api/chat returns) or `error` ({"message", "status"}).
    Closing the connection stops generation on the LLM server."""
    _check_length(body, services)

    async def events():
        try:
            async for kind, data in services.chat.events(body.message, body.conversation_id, body.regenerate):
                yield {"event": kind, "data": json.dumps(data)}
        except ApplianceError as exc:
            yield {"event": "error", "data": json.dumps({"message": str(exc), "status": 503})}

    return EventSourceResponse(events(), ping=15)
