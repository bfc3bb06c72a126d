"""Build the messages sent to the LLM, fitted to its context window by token count.

Layout: the system prompt, then as much recent history as fits, then one user
message holding the numbered excerpts and the question. Excerpts sit next to the
question because small models attend to that far better than to a long system
message. Budgets are counted with the LLM server's own tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Awaitable, Callable

from app.conversations.store import Message
from app.retrieval.sources import Source

# Chat templates add a few tokens of markup around every message.
PER_MESSAGE_OVERHEAD = 8

TokenCounter = Callable[[str], Awaitable[int]]


def format_excerpts(sources: list[Source]) -> str:
    """Each excerpt named in words and its text fenced in triple quotes.

    Why not the shorter "[1] (file, p. 3)" line over bare text: the packaged SmolLM2 read
    that as a pattern to continue, and a quarter of its answers went on with made-up
    excerpts "[6] (file.pdf, p. 3-5) ..." (measured in docs/DESIGN.md, "The prompt: excerpts
    in words and quotes"). Quoted text with a plain-words header is the delimiting that instruction-tuned
    models are taught, and the [n] the answer cites stays in the header.
    """
    return "\n\n".join(
        f'Excerpt [{s.number}], from {s.location}:\n"""\n{s.text}\n"""' for s in sources
    )


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


CONDENSE_EXAMPLES = [
    ("What is photosynthesis?", "Photosynthesis is how plants turn light into chemical energy.",
     "where does it happen?", "Where does photosynthesis happen in the plant cell?"),
    ("Explain TCP congestion control.", "TCP slows its sending rate when the network drops packets.",
     "and what about slow start", "What is slow start in TCP congestion control?"),
]
CITATION_MARKER = re.compile(r"\s*\[\d+(?:,\s*\d+)*\]")


def condense_messages(history: list[Message], question: str, answer_chars: int = 300) -> list[dict]:
    """Ask the LLM to rewrite a follow-up into a standalone search query.

    Two worked examples rather than a bare instruction: small models given only the
    transcript continue the earlier answer instead of writing a query.
    """
    previous_question = next((m.content for m in reversed(history) if m.role == "user"), "")
    previous_answer = next((m.content for m in reversed(history) if m.role == "assistant"), "")
    previous_answer = CITATION_MARKER.sub("", previous_answer)[:answer_chars]

    def ask(q: str, a: str, follow_up: str) -> dict:
        return {"role": "user", "content": f"Earlier question: {q}\nEarlier answer: {a}\nFollow-up: {follow_up}"}

    messages = [{"role": "system", "content": (
        "You turn a student's follow-up message into a standalone search query. "
        "Reply with the query only, on one line."
    )}]
    for q, a, follow_up, query in CONDENSE_EXAMPLES:
        messages += [ask(q, a, follow_up), {"role": "assistant", "content": query}]
    messages.append(ask(previous_question, previous_answer, question))
    return messages


def usable_rewrite(text: str, max_words: int = 30) -> str | None:
    """The model's rewrite if it looks like a search query, else None.

    An answer posing as a query (long, or citing sources) would steer retrieval to
    whatever the model made up, so it is refused and the caller falls back.
    """
    lines = [line.strip().strip('"').strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    query = lines[0]
    if len(query.split()) > max_words or CITATION_MARKER.search(query):
        return None
    return query
