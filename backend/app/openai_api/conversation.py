"""The conversation an OpenAI client sends, as the chat service reads one.

OpenAI clients send the whole history with every request and keep none of the
appliance's own records: no finish reasons, no sources, and the "Sources:" list the
appliance appended to each answer. So the history is rebuilt here: system and tool
messages dropped (the appliance's own prompt governs the answer), the appended
sources cut off again, and the chat's own declines recognised by their text, so that
they are treated as declines (not shown to the LLM as answers) just as in /api/chat.
"""

from __future__ import annotations

from app.chat.service import ChatService
from app.conversations.store import Message
from app.openai_api.schemas import ChatMessage

# How the appended sources begin (answer_with_sources); cut off when the answer comes back.
SOURCES_HEADING = "\n\nSources:\n"


class NoQuestion(ValueError):
    """The messages do not end with a user's question (HTTP 400)."""


def question_and_history(messages: list[ChatMessage], chat: ChatService) -> tuple[str, list[Message]]:
    """The last user message (the question) and what came before it, user and
    assistant turns only."""
    if messages[-1].role != "user" or not messages[-1].text.strip():
        raise NoQuestion("The last message must be the user's question (role \"user\", with text).")
    history: list[Message] = []
    for message in messages[:-1]:
        if message.role not in ("user", "assistant"):
            continue  # system, developer and tool messages
        text = message.text.strip()
        if not text:
            continue
        meta = {}
        if message.role == "assistant":
            if SOURCES_HEADING in text:
                text = text.rpartition(SOURCES_HEADING)[0].rstrip()
            canned = chat.canned_reply(text)
            if canned:
                meta["finish_reason"] = canned
        history.append(Message(message.role, text, meta=meta))
    return messages[-1].text.strip(), history
