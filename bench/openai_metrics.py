"""What metrics cost a turn, and whether the OpenAI-compatible stream is as quick as our own.

    python bench/openai_metrics.py [--rounds 200] [--llm-rounds 3]

1. Metrics, in-process (httpx's ASGI transport: no sockets), two apps over the same
   services, one with metrics on and one off, taking turns in one run: a declined
   question through POST /api/chat (the whole turn but the LLM: question, embedding,
   dense and keyword search, gate, the metrics' request and turn records) and GET
   /api/health; and `observe_turn` alone on a finished turn. Target: under 0.5 ms a turn.
2. Time to first token through POST /api/chat/stream and POST /v1/chat/completions
   (stream, the `openai` SDK's request shape), same questions, alternating, against a
   real llama.cpp server with SmolLM2. Target: within 10 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT / "tests")]

# all answered from the sample course (a declined question never reaches the LLM)
QUESTIONS = ["What is a hash table?", "What is a stack?", "How does a binary search tree find a key?",
             "What is a queue used for?", "How does a dynamic array grow?", "What is a linked list?"]


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def sample_settings(tmp: Path, llm_url: str, **extra):
    from backend_fixtures import sample_course_settings

    return sample_course_settings(tmp, llm_url, questions_per_minute=100_000, address_questions_per_minute=100_000,
                                  new_conversations_per_minute=100_000, check_on_start=False, **extra)


def ingest(settings, embedder) -> None:
    from conftest import IngestHarness

    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()


async def metrics_cost(settings, embedder, rounds: int) -> list[tuple]:
    import httpx

    from app.main import create_app
    from app.services import build_services

    services = build_services(settings, embedder=embedder)
    try:
        return await _timed_apps(settings, services, rounds, create_app, httpx)
    finally:
        await services.aclose()  # also stops the Milvus Lite server it started


async def _timed_apps(settings, services, rounds: int, create_app, httpx) -> list[tuple]:
    apps = {}
    for on in (True, False):
        app = create_app(settings.model_copy(update={"metrics_enabled": on}), services=services)
        app.state.services = services  # the ASGI transport runs no lifespan
        apps[on] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    times = {(on, what): [] for on in (True, False) for what in ("decline", "health")}
    decline = {"message": "Who won the 2018 FIFA World Cup?"}
    for client in apps.values():  # warm up: first searches load caches
        for _ in range(5):
            assert (await client.post("/api/chat", json=decline)).json()["finish_reason"] == "no_relevant_sources"
    for i in range(rounds):
        for on in ((True, False) if i % 2 else (False, True)):
            started = time.perf_counter()
            response = await apps[on].post("/api/chat", json=decline)
            times[(on, "decline")].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
            started = time.perf_counter()
            assert (await apps[on].get("/api/health")).status_code == 200
            times[(on, "health")].append((time.perf_counter() - started) * 1000)
    for client in apps.values():
        await client.aclose()

    from app.metrics.registry import ApplianceMetrics

    metrics = ApplianceMetrics()
    done = {"finish_reason": "stop", "usage": {"completion_tokens": 120},
            "timings": {k: 12.5 for k in ("condense_ms", "question_ms", "embed_ms", "dense_ms", "keyword_ms",
                                          "rerank_ms", "prompt_ms", "first_token_ms", "total_ms")}
            | {"generation_ms": 4000.0}}
    observe = []
    for _ in range(rounds * 10):
        started = time.perf_counter()
        metrics.observe_turn(done)
        observe.append((time.perf_counter() - started) * 1000)
    rows = []
    for what in ("decline", "health"):
        on, off = times[(True, what)], times[(False, what)]
        rows.append(("POST /api/chat, declined" if what == "decline" else "GET /api/health",
                     p(off, .5), p(on, .5), p(on, .5) - p(off, .5), p(off, .95), p(on, .95)))
    rows.append(("observe_turn alone", 0.0, p(observe, .5), p(observe, .5), 0.0, p(observe, .95)))
    return rows


async def first_token_ms(client, path: str, question: str) -> tuple[float, float, float]:
    """Time to the first token at the client; the part of it the appliance spent (that time
    less the LLM server's own time to its first token, from the turn's timings); and the
    route's own part (that less the turn's preparation: history, search, rerank, prompt),
    which is where the two routes differ."""
    body = ({"message": question} if path.startswith("/api")
            else {"model": "main", "stream": True, "messages": [{"role": "user", "content": question}]})
    headers = {"Authorization": "Bearer sk-any"} if path.startswith("/v1") else {}
    started = time.perf_counter()
    first, event, llm_first, prepare = None, None, None, None
    async with client.stream("POST", path, json=body, headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and line[5:].strip() != "[DONE]":
                payload = json.loads(line[5:])
                if first is None and (event == "token" or (payload.get("choices") and
                                                           payload["choices"][0]["delta"].get("content"))):
                    first = (time.perf_counter() - started) * 1000
                timings = (payload.get("rag") or {}).get("timings") or (payload.get("timings") if event == "done"
                                                                         else None)
                if timings:
                    llm_first, prepare = timings["first_token_ms"], timings["prepare_ms"]
    assert first is not None and llm_first is not None, f"{question!r} was not answered by the LLM"
    return first, first - llm_first, first - llm_first - prepare


ROUTES = ("/api/chat/stream", "/v1/chat/completions")


async def first_tokens(url: str, rounds: int) -> dict:
    """Each question once per route per two rounds, never right after itself: the LLM server
    reuses the previous prompt's common prefix, which would flatter whichever route asked second."""
    import httpx

    tables = {name: {path: {} for path in ROUTES} for name in ("first token", "appliance", "route")}
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        for r in range(rounds):
            for i, question in enumerate(QUESTIONS):
                path = ROUTES[(i + r) % 2]
                for name, ms in zip(tables, await first_token_ms(client, path, question)):
                    tables[name][path].setdefault(question, []).append(ms)
    return tables


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="requests per app and route (metrics)")
    parser.add_argument("--llm-rounds", type=int, default=4, help="passes over the 6 questions (first token); "
                        "each two give every question once to each route")
    args = parser.parse_args()
    from app.embedding.encoder import load_embedder
    from backend_fixtures import BackendServer, LlamaServer, free_port, smollm2_path

    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 32, threads=2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-openai-metrics-"))
    # no LLM server: a declined question never reaches one (tokens are counted with the GGUF's vocabulary)
    settings = sample_settings(tmp / "metrics", f"http://127.0.0.1:{free_port()}/v1", llm_model_path=smollm2_path())
    ingest(settings, embedder)
    rows = asyncio.run(metrics_cost(settings, embedder, args.rounds))
    print(f"\nMetrics: {args.rounds} requests per app and route, alternating; ms\n")
    print("| request | off p50 | on p50 | added p50 | off p95 | on p95 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, off50, on50, added, off95, on95 in rows:
        print(f"| {name} | {off50:.3f} | {on50:.3f} | {added:+.3f} | {off95:.3f} | {on95:.3f} |")

    llm = LlamaServer(native=False)
    try:
        settings = sample_settings(tmp / "ttft", llm.url, llm_model_path=smollm2_path(), llm_max_tokens=16,
                                   condense_mode="off", torch_threads=1)
        ingest(settings, embedder)
        backend = BackendServer(settings, embedder)
        try:
            asyncio.run(first_tokens(backend.url, 1))  # warm up: the first prompts load the model
            found = asyncio.run(first_tokens(backend.url, args.llm_rounds))
        finally:
            backend.stop()
    finally:
        llm.stop()
    print("\nTime to first token, llama_cpp.server with SmolLM2 on this machine, each question on both routes, "
          "never twice in a row; ms. appliance: the client's time less the LLM server's own time to its first "
          "token (the turn's timings); route: that less the turn's preparation (search, rerank, prompt)\n")
    print("| route | first token p50 / p95 | appliance p50 / p95 | route p50 / p95 |")
    print("| --- | --- | --- | --- |")
    for path in ROUTES:
        cells = []
        for table in found.values():
            values = [v for per_question in table[path].values() for v in per_question]
            cells.append(f"{p(values, .5):.1f} / {p(values, .95):.1f}")
        print(f"| {path} | {' | '.join(cells)} |")
    medians = []
    for table in found.values():
        pairs = [b - a for q in QUESTIONS for a, b in zip(table[ROUTES[0]].get(q, []), table[ROUTES[1]].get(q, []))]
        medians.append(f"{statistics.median(pairs):+.1f}")
    print(f"| v1 - api, same question, median of {len(pairs)} pairs | {' | '.join(medians)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
