"""POST /api/chat (JSON) and POST /api/chat/stream (server-sent events). Students and
the instructor; each question counts against the asker's per-minute limits and waits
for one of the answer slots."""

from __future__ import annotations

import json
import weakref
from contextlib import aclosing

from fastapi import APIRouter, HTTPException, Request
from sse_starlette.sse import EventSourceResponse
from starlette.background import BackgroundTask

from app.access.control import AccessControl, Caller
from app.access.limits import AnswerTicket, TooMany
from app.api.deps import AccessDep, ServicesDep, Student, find_course
from app.courses.course import Course
from app.api.schemas import ChatRequest, ChatResponse
from app.errors import ApplianceError
from app.metrics.registry import ApplianceMetrics
from app.metrics.turns import observed
from app.services import Services

router = APIRouter(prefix="/api", tags=["chat"])


async def admit(message: str, conversation_id: str | None, course_name: str | None, caller: Caller,
                services: Services, access: AccessControl,
                metrics: ApplianceMetrics | None = None) -> tuple[Course, AnswerTicket]:
    """Every check a question passes before any work: length, the conversation is the
    asker's and in the course asked, the asker's limits, a place among the answers
    (429 when all are taken). Returns the course that answers, and the place."""
    limit = services.settings.chat.max_message_chars
    if len(message) > limit:
        raise HTTPException(413, f"message is {len(message)} characters; the limit is {limit}.")
    existing = None
    if conversation_id:
        existing = await services.conversations.get(conversation_id)
        if existing is not None and not caller.may_open(existing.owner):
            raise HTTPException(404, f"No conversation '{conversation_id}'.")
    if existing is not None and course_name and course_name != existing.course:
        raise HTTPException(409, f"Conversation '{conversation_id}' belongs to the course "
                            f"'{existing.course}'; start a new one to ask about '{course_name}'.")
    course = await find_course(services, course_name or (existing.course if existing else None))
    try:
        ticket = access.answers.admit()  # first: a question refused as busy does not count as asked
    except TooMany:
        if metrics is not None:
            metrics.turn_failed("busy")
        raise
    try:
        access.count_question(caller, new_conversation=existing is None)
    except BaseException:
        ticket.close()
        raise
    return course, ticket


def metrics_of(request: Request) -> ApplianceMetrics | None:
    return getattr(request.app.state, "metrics", None)


async def wait_for_turn(ticket: AnswerTicket, wait_s: float, metrics: ApplianceMetrics | None):
    """The ticket's queue positions, as ticket.turn yields them; a wait that runs out
    (TooMany) counts as a busy refusal."""
    try:
        async for place in ticket.turn(wait_s):
            yield place
    except TooMany:
        if metrics is not None:
            metrics.turn_failed("busy")
        raise


def owner_kwargs(caller: Caller) -> dict:
    return {"owner": caller.student_id, "any_owner": caller.is_instructor}


async def whole_turn(ticket: AnswerTicket, wait_s: float, turn, metrics: ApplianceMetrics | None) -> dict:
    """A turn answered whole: wait for a slot, run the turn's events (observed), return its
    `done` event; the slot is given back however it ends."""
    try:
        async for _ in wait_for_turn(ticket, wait_s, metrics):
            pass
        done: dict = {}
        async with aclosing(observed(turn, metrics)) as events:
            async for kind, data in events:
                if kind == "done":
                    done = data
        return done
    finally:
        ticket.close()


@router.post("/chat", response_model=ChatResponse,
             summary="Ask a question, get the whole answer (students and the instructor)")
async def chat(body: ChatRequest, request: Request, caller: Student, services: ServicesDep,
               access: AccessDep) -> dict:
    """Answer from the course materials, with sources, timings and the conversation id.

    Reuse `conversation_id` to ask follow-ups; the history is kept on the server. A
    conversation belongs to the browser (student cookie) that started it; one started
    without a cookie (curl, scripts) is reachable by its id. 429 with Retry-After when
    the asker's per-minute limit is reached or every answer slot and waiting place is taken.
    """
    metrics = metrics_of(request)
    course, ticket = await admit(body.message, body.conversation_id, body.course, caller, services, access, metrics)
    turn = course.chat.events(body.message, body.conversation_id, body.regenerate, **owner_kwargs(caller))
    return await whole_turn(ticket, services.settings.access.max_answer_wait_s, turn, metrics)


@router.post("/chat/stream", summary="Ask a question, stream the answer (SSE; students and the instructor)")
async def chat_stream(body: ChatRequest, request: Request, caller: Student, services: ServicesDep,
                      access: AccessDep) -> EventSourceResponse:
    """Events: `queued` ({"position", "message"}: at once, and again as the place changes,
    when every answer slot is taken), `sources` (once, before any token: the passages and
    the search's timings by step), `token`
    ({"delta"}), `done` (the full answer, usage and timings, as POST /api/chat returns) or
    `error` ({"message", "status"}: 429 when the wait for a slot passed
    RAG_MAX_ANSWER_WAIT_S, 503 when the LLM server is down or failed mid-answer). Closing
    the connection stops generation on the LLM server. Limits as POST /api/chat."""
    metrics = metrics_of(request)
    course, ticket = await admit(body.message, body.conversation_id, body.course, caller, services, access, metrics)
    wait_s = services.settings.access.max_answer_wait_s

    async def events():
        try:
            metrics and metrics.active_streams.inc()
            async for place in wait_for_turn(ticket, wait_s, metrics):
                ahead = place - 1
                yield {"event": "queued", "data": json.dumps({
                    "position": place,
                    "message": ("Your question is next; the assistant is finishing another answer."
                                if ahead == 0 else f"Waiting for the assistant: {ahead} question"
                                f"{'s' if ahead > 1 else ''} ahead of yours."),
                })}
            turn = course.chat.events(body.message, body.conversation_id, body.regenerate, **owner_kwargs(caller))
            async with aclosing(observed(turn, metrics)) as turn_events:
                async for kind, data in turn_events:
                    yield {"event": kind, "data": json.dumps(data)}
        except TooMany as exc:
            yield {"event": "error", "data": json.dumps({"message": str(exc), "status": 429,
                                                         "retry_after_s": exc.retry_after_s})}
        except ApplianceError as exc:
            yield {"event": "error", "data": json.dumps({"message": str(exc), "status": 503})}
        finally:
            metrics and metrics.active_streams.dec()
            ticket.close()

    stream = events()
    # A client that leaves before the stream starts never runs its `finally`: the place
    # is given back when the response ends, or at the latest when the stream is collected.
    weakref.finalize(stream, ticket.close)
    return EventSourceResponse(stream, ping=15, background=BackgroundTask(ticket.close))
