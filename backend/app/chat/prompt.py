"""Build the messages sent to the LLM, fitted to its context window by token count.

Layout: the system prompt, then as much recent history as fits, then one user
message holding the numbered excerpts and the question. Excerpts sit next to the
question because small models attend to that far better than to a long system
message. Budgets are counted with the LLM server's own tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from app.conversations.store import Message
from app.retrieval.retriever import Source

# Chat templates add a few tokens of markup around every message.
PER_MESSAGE_OVERHEAD = 8

TokenCounter = Callable[[str], Awaitable[int]]


def format_excerpts(sources: list[Source]) -> str:
    return "\n\n".join(f"[{s.number}] ({s.location})\n{s.text}" for s in sources)


def user_turn(question: str, sources: list[Source]) -> str:
    return f"Course excerpts:\n\n{format_excerpts(sources)}\n\nQuestion: {question}"


@dataclass
class BuiltPrompt:
    messages: list[dict]
    sources: list[Source]  # the excerpts that fitted
    history_used: int
    prompt_tokens: int


async def build_prompt(
    system_prompt: str,
    question: str,
    sources: list[Source],
    history: list[Message],
    count: TokenCounter,
    context_window: int,
    answer_tokens: int,
) -> BuiltPrompt:
    budget = context_window - answer_tokens
    system_tokens = await count(system_prompt) + PER_MESSAGE_OVERHEAD
    kept = list(sources)
    while True:
        turn = user_turn(question, kept) if kept else question
        turn_tokens = await count(turn) + PER_MESSAGE_OVERHEAD
        if system_tokens + turn_tokens <= budget or not kept:
            break
        kept.pop()  # drop the least relevant excerpt until the question fits
    used = system_tokens + turn_tokens
    chosen: list[dict] = []
    for message in reversed(history):
        tokens = (message.token_count if message.token_count is not None else await count(message.content))
        tokens += PER_MESSAGE_OVERHEAD
        if used + tokens > budget:
            break
        chosen.insert(0, {"role": message.role, "content": message.content})
        used += tokens
    # A history that starts with an assistant turn confuses some chat templates.
    while chosen and chosen[0]["role"] != "user":
        chosen.pop(0)
    messages = [{"role": "system", "content": system_prompt}, *chosen, {"role": "user", "content": turn}]
    return BuiltPrompt(messages, kept, len(chosen), used)


def condense_messages(history: list[Message], question: str, max_turns: int = 4) -> list[dict]:
    """Ask the LLM to rewrite a follow-up into a standalone search query."""
    recent = history[-2 * max_turns:]
    transcript = "\n".join(f"{m.role.capitalize()}: {m.content[:600]}" for m in recent)
    return [
        {"role": "system", "content": (
            "Rewrite the student's last message as one standalone search query that includes the topic "
            "from the conversation. Reply with the query only."
        )},
        {"role": "user", "content": f"Conversation:\n{transcript}\n\nLast message: {question}\n\nStandalone query:"},
    ]
