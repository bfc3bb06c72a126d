"""LLM query expansion (HyDE): search with the passage that would answer the question.

Why: a question and the page that answers it are worded differently (a question
against an explanation; "a small anonymous function" against "lambda"), and a small
embedder matches like with like. A passage the LLM writes, even a partly wrong one, is
worded like a book, so the mean of its vector and the question's lands nearer the
answering page (Gao et al. 2022, "Precise Zero-Shot Dense Retrieval without Relevance
Labels"). Only the dense search uses it: invented words would mislead keyword search.
And the relevance gate still judges the question alone, so an invented passage cannot
make an out-of-corpus question look covered. Measured: docs/DESIGN.md.
"""

from __future__ import annotations

import asyncio
import logging

from app.llm.client import LLMClient, LLMUnavailableError
from app.settings import Settings

log = logging.getLogger(__name__)

INSTRUCTION = (
    "Write the passage of a course textbook that answers the student's question, "
    "in the textbook's own technical terms. At most three sentences."
)


def expansion_messages(question: str) -> list[dict]:
    return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": question}]


async def hypothetical_passage(llm: LLMClient, settings: Settings, question: str) -> str | None:
    """The LLM's passage for `question`, or None when it is down, slow or says nothing
    (the search then uses the question alone: expansion may help, never block)."""
    try:
        # Temperature 0: the same question should search the same way every time.
        text = await asyncio.wait_for(
            llm.complete(expansion_messages(question), max_tokens=settings.chat.query_expansion_tokens,
                         temperature=0.0),
            timeout=settings.chat.query_expansion_timeout_s,
        )
    except (asyncio.TimeoutError, LLMUnavailableError) as exc:
        log.info("query expansion: LLM did not answer (%s); searching with the question alone",
                 type(exc).__name__)
        return None
    return text.strip() or None
