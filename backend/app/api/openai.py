"""The OpenAI-compatible routes: GET /v1/models and POST /v1/chat/completions.

Who may call: as /api/chat, students and the instructor; OpenAI clients send their
`api_key` as `Authorization: Bearer`, which is where the appliance reads the access code
(code mode) or the instructor key. In open mode any key, or none, is a student.

A model is a course. The answer runs the same turn as /api/chat (condensing from the
messages the client sends, retrieval, gate, prompt, citations); the sources travel in the
`rag` field (app/openai_api/responses.py) and, unless RAG_OPENAI_SOURCES_IN_TEXT is off,
as a short "Sources:" list at the end of the text. Nothing is stored unless the client
names a conversation (`conversation_id`, an extra body field).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from contextlib import aclosing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from app.access.limits import TooMany
from app.api.chat import admit, metrics_of, owner_kwargs, wait_for_turn, whole_turn
from app.api.deps import AccessDep, ServicesDep, Student
from app.api.errors import OpenAIError
from app.courses.course import Course
from app.courses.registry import UnknownCourse
from app.errors import ApplianceError
from app.metrics.turns import observed
from app.openai_api.conversation import NoQuestion, question_and_history
from app.openai_api.responses import Completion, error_body, error_type, sources_text
from app.openai_api.schemas import CompletionRequest

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

OWNED_BY = "course-rag-appliance"


async def model_names(services) -> list[str]:
    return await asyncio.to_thread(services.courses.names)


def model_card(name: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": OWNED_BY}


async def course_of_model(services, model: str) -> Course:
    """The course a model names (an opened course costs no database call), or 404."""
    try:
        if not model:  # the registry's None and "" mean the default course; a model must be named
            raise UnknownCourse(model)
        return await asyncio.to_thread(services.courses.get, model)
    except UnknownCourse:
        names = await model_names(services)
        raise OpenAIError(404, f"The model '{model[:60]}' does not exist: each course is a model "
                          f"({', '.join(names)}).", code="model_not_found", param="model") from None


@router.get("/models", summary="The courses, as OpenAI models (students and the instructor)")
async def list_models(_: Student, services: ServicesDep) -> dict:
    return {"object": "list", "data": [model_card(name) for name in await model_names(services)]}


@router.get("/models/{model}", summary="One course, as an OpenAI model (students and the instructor)")
async def get_model(model: str, _: Student, services: ServicesDep) -> dict:
    return model_card((await course_of_model(services, model)).name)


@router.post("/chat/completions", summary="Answer from a course's materials, OpenAI's way (students and "
             "the instructor)")
async def chat_completions(body: CompletionRequest, request: Request, caller: Student, services: ServicesDep,
                           access: AccessDep):
    """OpenAI's Chat Completions, answered from the course named by `model`, streaming
    (`stream: true`: chunks, then `data: [DONE]`) or whole. `max_tokens` (or
    `max_completion_tokens`) and `temperature` apply within the appliance's limits;
    `stream_options.include_usage` adds the usage chunk; other OpenAI fields are
    accepted and ignored. Limits and answer slots as /api/chat (429, rate_limit_error)."""
    course = await course_of_model(services, body.model)
    model = course.name
    try:
        question, history = question_and_history(body.messages, course.chat)
    except NoQuestion as exc:
        raise OpenAIError(400, str(exc), param="messages") from None
    metrics = metrics_of(request)
    course, ticket = await admit(question, body.conversation_id, model, caller, services, access, metrics)
    wait_s = services.settings.access.max_answer_wait_s
    with_sources = services.settings.chat.openai_sources_in_text
    completion = Completion(model)

    turn = course.chat.events(question, body.conversation_id, history=history,
                              remember=body.conversation_id is not None, max_tokens=body.answer_tokens,
                              temperature=body.temperature, **owner_kwargs(caller))

    if not body.stream:
        done = await whole_turn(ticket, wait_s, turn, metrics)
        text = done["answer"] + (sources_text(done) if with_sources else "")
        return JSONResponse(completion.whole(text, done))

    async def chunks():
        def data(payload: dict) -> dict:
            return {"data": json.dumps(payload)}

        try:
            metrics and metrics.active_streams.inc()
            async for place in wait_for_turn(ticket, wait_s, metrics):
                # a comment line: OpenAI clients skip it, a person reading the stream sees why it waits
                yield ServerSentEvent(comment=f"waiting for the assistant: place {place} in the queue")
            async with aclosing(observed(turn, metrics)) as events:
                async for kind, event in events:
                    if kind == "sources":
                        yield data(completion.chunk({"role": "assistant", "content": ""}))
                    elif kind == "token":
                        yield data(completion.chunk({"content": event["delta"]}))
                    elif kind == "done":
                        tail = sources_text(event) if with_sources else ""
                        if tail:
                            yield data(completion.chunk({"content": tail}))
                        yield data(completion.final_chunk(event))
                        if body.include_usage:
                            yield data(completion.usage_chunk(event))
            yield {"data": "[DONE]"}
        except TooMany as exc:
            yield data(error_body(str(exc), error_type(429), "rate_limit_exceeded"))
        except ApplianceError as exc:
            yield data(error_body(str(exc), error_type(503), "llm_unavailable"))
        finally:
            metrics and metrics.active_streams.dec()
            ticket.close()

    stream = chunks()
    weakref.finalize(stream, ticket.close)  # as /api/chat/stream: a client gone before the start
    return EventSourceResponse(stream, ping=15, background=BackgroundTask(ticket.close))
