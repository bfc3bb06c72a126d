"""Faults in an LLM stream that a healthy llama.cpp server cannot be made to produce on
demand: an `error:` line mid-stream (llama-server's way of reporting a failure), an error
object, a stream that stops without saying why. Each must raise, never pass for a whole
answer. The server is simulated with httpx's MockTransport (the one mock here: the fault
is the server's, not ours to provoke)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from app.llm.client import LLMClient, LLMInterruptedError, StreamResult
from app.settings import Settings


def chunk(delta: str | None = None, finish: str | None = None) -> str:
    choice = {"index": 0, "delta": {"content": delta} if delta else {}, "finish_reason": finish}
    return "data: " + json.dumps({"choices": [choice]}) + "\n\n"


def stream_of(body: str) -> list[str]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    settings = Settings(_env_file=None, llm_base_url="http://llm.test/v1", llm_model="m")
    client = LLMClient(settings, transport=httpx.MockTransport(handler))
    result = StreamResult()

    async def collect():
        try:
            return [d async for d in client.stream([{"role": "user", "content": "q"}], 50, result)], result
        finally:
            await client.aclose()

    return asyncio.run(collect())


def test_a_whole_answer_ends_with_its_reason():
    deltas, result = stream_of(chunk("A stack") + chunk(" is LIFO.") + chunk(finish="stop") + "data: [DONE]\n\n")
    assert "".join(deltas) == "A stack is LIFO." and result.finish_reason == "stop"


@pytest.mark.parametrize("tail, why", [
    ('error: {"code": 500, "message": "llama_decode failed"}\n\n', "llama_decode failed"),
    ('data: {"error": {"message": "context shift disabled"}}\n\n', "context shift disabled"),
    ("", "without a finish reason"),
    ("data: {not json\n\n", "unreadable line"),
])
def test_a_cut_stream_is_an_error_not_a_short_answer(tail, why):
    with pytest.raises(LLMInterruptedError, match="stopped in the middle of the answer") as raised:
        stream_of(chunk("A stack") + chunk(" is") + tail)
    assert why in str(raised.value)
