"""Conversations: list, read, rename, delete (the same ones /api/chat uses)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException

from app.api.deps import get_services
from app.api.schemas import RenameRequest
from app.services import Services

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


@router.get("", summary="All conversations, newest first")
async def list_conversations(services: Services = Depends(get_services)) -> list[dict]:
    return [asdict(c) for c in await services.conversations.list()]


@router.get("/{conversation_id}", summary="One conversation with its messages")
async def get_conversation(conversation_id: str, services: Services = Depends(get_services)) -> dict:
    conversation = await services.conversations.get(conversation_id)
    if conversation is None:
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    messages = await services.conversations.messages(conversation_id)
    return {**asdict(conversation), "messages": [asdict(m) for m in messages]}


@router.patch("/{conversation_id}", summary="Rename a conversation")
async def rename_conversation(conversation_id: str, body: RenameRequest,
                              services: Services = Depends(get_services)) -> dict:
    if not await services.conversations.rename(conversation_id, body.title):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
    return asdict(await services.conversations.get(conversation_id))


@router.delete("/{conversation_id}", status_code=204, summary="Delete a conversation")
async def delete_conversation(conversation_id: str, services: Services = Depends(get_services)) -> None:
    if not await services.conversations.delete(conversation_id):
        raise HTTPException(404, f"No conversation '{conversation_id}'.")
