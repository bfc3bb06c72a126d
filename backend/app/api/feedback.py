"""Feedback on answers: a thumbs up or down, with an optional comment.

Only the student who asked rates an answer (the conversation's owner; for one started
without a cookie, whoever holds its id): one vote per answer and voter, which a second
vote replaces and DELETE takes back. The instructor reads the votes in the insight
report, never who cast them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from app.access.control import Caller
from app.api.deps import ServicesDep, Student
from app.api.schemas import FeedbackRequest
from app.services import Services

router = APIRouter(prefix="/api/conversations", tags=["feedback"])
VOTES = {"up": 1, "down": -1}


async def _answer_to_rate(conversation_id: str, message_id: int, caller: Caller, services: Services) -> str:
    """The voter for an answer the caller may rate; 404 or 403 otherwise."""
    if not services.settings.appliance.insight:
        raise HTTPException(404, "Ratings are turned off on this appliance (RAG_INSIGHT=false).")
    conversation = await services.conversations.get(conversation_id)
    if conversation is None or not caller.may_open(conversation.owner):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    if conversation.owner is not None and conversation.owner != caller.student_id:
        raise HTTPException(403, "Only the student who asked may rate this answer.")
    if not await services.conversations.answer_in(conversation_id, message_id):
        raise HTTPException(404, f"No answer {message_id} in conversation '{conversation_id}'.")
    return caller.student_id or ""


@router.put("/{conversation_id}/messages/{message_id}/feedback",
            summary="Rate an answer, or change your rating (its owner: the student who asked)")
async def rate_answer(conversation_id: str, body: FeedbackRequest, caller: Student, services: ServicesDep,
                      message_id: int = Path(..., ge=1)) -> dict:
    voter = await _answer_to_rate(conversation_id, message_id, caller, services)
    comment = body.comment.strip()
    await services.conversations.vote(message_id, voter, VOTES[body.vote], comment)
    return {"message_id": message_id, "vote": body.vote, "comment": comment}


@router.delete("/{conversation_id}/messages/{message_id}/feedback", status_code=204,
               summary="Take your rating of an answer back (its owner: the student who asked)")
async def withdraw_rating(conversation_id: str, caller: Student, services: ServicesDep,
                          message_id: int = Path(..., ge=1)) -> None:
    voter = await _answer_to_rate(conversation_id, message_id, caller, services)
    await services.conversations.unvote(message_id, voter)
