"""Conversations: list, read, rename, delete (the same ones /api/chat uses).

Students see and manage their own (the browser's student cookie), and reach a
conversation started without a cookie by its id; the instructor may see and manage
everyone's. Someone else's conversation answers 404, as one that does not exist."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Query, Response

from app.access.control import Caller
from app.api.deps import AccessDep, ServicesDep, Student
from app.api.schemas import RenameRequest
from app.conversations.store import Conversation
from app.courses.course import COURSE_NAME
from app.services import Services

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


def _public(conversation: Conversation, caller: Caller) -> dict:
    body = asdict(conversation)
    owner = body.pop("owner")
    body["mine"] = owner is not None and owner == caller.student_id
    if caller.is_instructor:  # a pseudonym, never the cookie itself
        body["student"] = owner[:8] if owner else None
    return body


async def _find(conversation_id: str, caller: Caller, services: Services) -> Conversation:
    conversation = await services.conversations.get(conversation_id)
    if conversation is None or not caller.may_open(conversation.owner):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    return conversation


@router.get("", summary="Your conversations, newest first (students; the instructor may ask for all)")
async def list_conversations(
    caller: Student, services: ServicesDep, access: AccessDep, response: Response,
    limit: int | None = Query(None, ge=1, le=500, description="Conversations per page (default: the "
                              "RAG_CONVERSATIONS_PAGE_SIZE setting)."),
    offset: int = Query(0, ge=0, description="Skip this many (the next page: offset + limit)."),
    all: bool = Query(False, description="Instructor only: every student's conversations."),
    course: str | None = Query(None, pattern=COURSE_NAME.pattern, description="Only this course's "
                               "(default: every course's; each conversation names its course)."),
) -> list[dict]:
    """One page of the caller's conversations; `X-Total-Count` says how many there are.
    A client without the student cookie has none listed (it keeps its ids itself)."""
    if all and not caller.is_instructor:
        raise HTTPException(403, "Only the instructor may list every student's conversations.")
    page, total = await services.conversations.list(
        owner=caller.student_id, everyone=all, course=course,
        limit=limit or services.settings.access.conversations_page_size,
        offset=offset)
    if all:
        access.audit.record(caller.address, "list all conversations", f"offset {offset}")
    response.headers["X-Total-Count"] = str(total)
    return [_public(c, caller) for c in page]


@router.get("/{conversation_id}", summary="One conversation with its messages (its owner, the instructor)")
async def get_conversation(conversation_id: str, caller: Student, services: ServicesDep,
                           access: AccessDep) -> dict:
    conversation = await _find(conversation_id, caller, services)
    if caller.is_instructor and conversation.owner not in (None, caller.student_id):
        access.audit.record(caller.address, "read conversation", conversation_id)
    messages = [asdict(m) for m in await services.conversations.messages(conversation_id)]
    if services.settings.appliance.insight and (conversation.owner is None or conversation.owner == caller.student_id):
        # the asker rates the answers: each carries their vote (null: none yet)
        votes = await services.conversations.votes(conversation_id, caller.student_id or "")
        for message in (m for m in messages if m["role"] == "assistant"):
            vote, comment = votes.get(message["id"], (0, ""))
            message["feedback"] = {"vote": "up" if vote > 0 else "down", "comment": comment} if vote else None
    return {**_public(conversation, caller), "messages": messages}


@router.patch("/{conversation_id}", summary="Rename a conversation (its owner, the instructor)")
async def rename_conversation(conversation_id: str, body: RenameRequest, caller: Student,
                              services: ServicesDep, access: AccessDep) -> dict:
    conversation = await _find(conversation_id, caller, services)
    if not await services.conversations.rename(conversation_id, body.title):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    if caller.is_instructor and conversation.owner not in (None, caller.student_id):
        access.audit.record(caller.address, "rename conversation", conversation_id)
    return _public(await services.conversations.get(conversation_id), caller)


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation (its owner, the instructor)")
async def delete_conversation(conversation_id: str, caller: Student, services: ServicesDep,
                              access: AccessDep) -> None:
    conversation = await _find(conversation_id, caller, services)
    if not await services.conversations.delete(conversation_id):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    if caller.is_instructor and conversation.owner not in (None, caller.student_id):
        access.audit.record(caller.address, "delete conversation", conversation_id)
