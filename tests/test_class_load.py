"""Sixteen students streaming at once on the CPU model (real llama_cpp.server, real
backend): nobody waits in silence. Each stream's first event (a `queued` place, or the
sources) comes at once, each ends with an answer or a clear busy error within the wait
bound, and health and the conversation list stay fast meanwhile."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from backend_fixtures import BackendServer, sample_course_settings
from conftest import IngestHarness

STUDENTS = 16
WAIT_BOUND_S = 45.0


@pytest.fixture(scope="module")
def busy_backend(tmp_path_factory, llm, embedder):
    # One answer slot, as the startup script sets for llama_cpp.server (one request at a time).
    settings = sample_course_settings(tmp_path_factory.mktemp("load"), llm.url, llm_max_tokens=24,
                                      max_concurrent_answers=1, max_answer_wait_s=WAIT_BOUND_S)
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    server = BackendServer(settings, embedder)
    yield server
    server.stop()


async def one_student(url: str, n: int) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=WAIT_BOUND_S + 120) as client:
        await client.get("/")  # the student cookie
        started = time.monotonic()
        seen: dict = {"events": []}
        async with client.stream("POST", "/api/chat/stream",
                                 json={"message": ["What is a hash table?", "What is a stack?"][n % 2]}) as response:
            assert response.status_code == 200
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    seen.setdefault("first_event_s", time.monotonic() - started)
                elif line.startswith("data:"):
                    seen["events"].append((event, json.loads(line[5:])))
        seen["end_s"] = time.monotonic() - started
        return seen


async def probe(url: str, stop: asyncio.Event) -> dict:
    times: dict[str, list[float]] = {"health": [], "list": []}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.get("/")
        while not stop.is_set():
            for path, key in (("/api/health", "health"), ("/api/conversations", "list")):
                started = time.monotonic()
                assert (await client.get(path)).status_code == 200
                times[key].append(time.monotonic() - started)
            await asyncio.sleep(0.2)
    return times


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[int(0.95 * (len(values) - 1))]


def test_sixteen_students_at_once_are_each_told_where_they_stand(busy_backend):
    async def scenario():
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(busy_backend.url, stop))
        results = await asyncio.gather(*(one_student(busy_backend.url, n) for n in range(STUDENTS)))
        stop.set()
        return results, await prober

    results, times = asyncio.run(scenario())
    for seen in results:
        kinds = [kind for kind, _ in seen["events"]]
        assert seen["first_event_s"] < 2.0, kinds
        assert kinds[-1] in ("done", "error"), kinds
        if kinds[-1] == "error":  # the only error allowed: busy, said in words, with when to retry
            assert seen["events"][-1][1]["status"] == 429 and "busy" in seen["events"][-1][1]["message"]
        assert seen["end_s"] < WAIT_BOUND_S + 30
    queued = [seen for seen in results if seen["events"][0][0] == "queued"]
    assert len(queued) >= STUDENTS - 2  # one slot: nearly everyone waits, and is told so
    places = sorted(seen["events"][0][1]["position"] for seen in queued)
    assert places[-1] >= STUDENTS - 2 and all("Waiting for the assistant" in s["events"][0][1]["message"]
                                              or "next" in s["events"][0][1]["message"] for s in queued)
    answered = sum(1 for seen in results if seen["events"][-1][0] == "done")
    assert answered >= 4
    health, listing = p95(times["health"]), p95(times["list"])
    assert health < 0.1 and listing < 0.1, (health, listing)
