"""A class asking at once: 8, 16 and 32 students streaming questions for a fixed time.

    python bench/load.py [--seconds 30] [--students 8 16 32] [--max-tokens 48]
    LLAMA_SERVER_BIN=$(./scripts/build_llama_server.sh) python bench/load.py   # adds native llama-server

Each student (its own browser cookie) asks question after question through POST
/api/chat/stream; meanwhile a prober times GET /api/health and a student's GET
/api/conversations every 0.25 s. Per row: answers completed, busy errors (told to try
again), other errors, time to the first event (a `queued` place or the sources) and to
the first token (p50/p95), the longest silence in a stream (the longest gap between two
events: how long a student is left without news), and the prober's p95s.

Two configurations of answer slots run against the same LLM server in the same run:
8 (the old default: beyond the LLM server's own slots, a question waits inside it,
silent) and the LLM server's real slots (1 for llama_cpp.server, --parallel for the
native server: what the startup script sets, so a waiting student is told its place).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT / "tests")]

QUESTIONS = ["What is a hash table?", "What is a stack?", "How does a binary search tree find a key?",
             "What is a queue used for?", "What is the worst case of quicksort?", "What is a heap?"]


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def student(url: str, n: int, until: float, out: dict, http) -> None:
    async with http.AsyncClient(base_url=url, timeout=600) as client:
        await client.get("/")  # the student cookie, as a browser gets it
        asked = n
        while time.monotonic() < until:
            question = QUESTIONS[asked % len(QUESTIONS)]
            asked += 1
            started = time.monotonic()
            first_event = first_token = None
            last_event, silence = started, 0.0
            outcome = "cut"
            try:
                async with client.stream("POST", "/api/chat/stream", json={"message": question}) as response:
                    if response.status_code == 429:
                        outcome = "busy"
                    elif response.status_code != 200:
                        outcome = "error"
                    else:
                        event = None
                        async for line in response.aiter_lines():
                            if line.startswith("event:"):
                                event = line[6:].strip()
                                now = time.monotonic()
                                silence, last_event = max(silence, now - last_event), now
                                if first_event is None:
                                    first_event = now - started
                            elif line.startswith("data:"):
                                if event == "token" and first_token is None:
                                    first_token = time.monotonic() - started
                                elif event == "done":
                                    outcome = "done"
                                elif event == "error":
                                    outcome = "busy" if json.loads(line[5:]).get("status") == 429 else "error"
            except http.HTTPError:
                outcome = "error"
            out["outcomes"].append(outcome)
            out["silence"].append(silence)
            if first_event is not None:
                out["first_event"].append(first_event)
            if first_token is not None:
                out["first_token"].append(first_token)
            if outcome == "busy":
                await asyncio.sleep(1)


async def prober(url: str, until: float, out: dict, http) -> None:
    async with http.AsyncClient(base_url=url, timeout=60) as client:
        await client.get("/")
        while time.monotonic() < until:
            for path, key in (("/api/health", "health"), ("/api/conversations", "list")):
                started = time.monotonic()
                await client.get(path)
                out[key].append(time.monotonic() - started)
            await asyncio.sleep(0.25)


async def class_of(url: str, students: int, seconds: float) -> dict:
    import httpx

    out = {"outcomes": [], "first_event": [], "first_token": [], "silence": [], "health": [], "list": []}
    until = time.monotonic() + seconds
    await asyncio.gather(prober(url, until, out, httpx),
                         *(student(url, n, until, out, httpx) for n in range(students)))
    return out


def run_kind(kind: str, args, embedder) -> list[tuple]:
    from app.settings import Settings
    from backend_fixtures import BackendServer, LlamaServer, copy_sample_course, smollm2_path
    from conftest import IngestHarness

    native = os.environ.get("LLAMA_SERVER_BIN") if kind == "native" else None
    llm = LlamaServer(native=native, parallel=args.parallel) if native else LlamaServer(native=False)
    real_slots = args.parallel if native else 1
    rows = []
    try:
        for slots in (8, real_slots):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-load-{kind}-"))
            settings = Settings(_env_file=None, milvus_uri=str(tmp / "db" / "bench.db"), collection_name="chunks",
                                materials_dir=copy_sample_course(tmp / "materials"),
                                conversations_db=tmp / "db" / "conversations.sqlite3", access_dir=tmp / "db" / "access",
                                audit_log=tmp / "db" / "audit.log", llm_base_url=llm.url,
                                llm_model_path=smollm2_path(), llm_max_tokens=args.max_tokens, condense_mode="off",
                                embedding_device="cpu", torch_threads=1, max_concurrent_answers=slots,
                                max_answer_wait_s=args.wait, questions_per_minute=1000)
            harness = IngestHarness(settings, embedder)
            harness.run(settings.storage.materials_path)
            harness.close()
            backend = BackendServer(settings, embedder)
            try:
                asyncio.run(class_of(backend.url, 1, 3))  # warm up
                for students in args.students:
                    out = asyncio.run(class_of(backend.url, students, args.seconds))
                    rows.append((kind, slots, students, out))
                    print(f"  {kind} slots={slots} students={students}: {out['outcomes'].count('done')} answers",
                          file=sys.stderr, flush=True)
            finally:
                backend.stop()
    finally:
        llm.stop()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--students", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--parallel", type=int, default=4, help="slots of the native server")
    parser.add_argument("--wait", type=float, default=120, help="RAG_MAX_ANSWER_WAIT_S")
    args = parser.parse_args()
    from app.embedding.encoder import load_embedder

    embedder = load_embedder("sentence-transformers/all-MiniLM-L6-v2", "cpu", 32, 1)
    kinds = ["python"] + (["native"] if os.environ.get("LLAMA_SERVER_BIN") else [])
    rows = [row for kind in kinds for row in run_kind(kind, args, embedder)]
    print(f"\n{args.seconds:g} s per row, answers of at most {args.max_tokens} tokens, wait bound {args.wait:g} s\n")
    print("| server | answer slots | students | answers | busy | errors | first event p50 / p95 s "
          "| first token p50 / p95 s | longest silence p50 / p95 s | health p95 ms | list p95 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, slots, students, out in rows:
        o = out["outcomes"]
        print(f"| {kind} | {slots} | {students} | {o.count('done')} | {o.count('busy')} | "
              f"{o.count('error') + o.count('cut')} | {p(out['first_event'], .5):.2f} / {p(out['first_event'], .95):.2f} "
              f"| {p(out['first_token'], .5):.2f} / {p(out['first_token'], .95):.2f} "
              f"| {p(out['silence'], .5):.2f} / {p(out['silence'], .95):.2f} "
              f"| {p(out['health'], .95) * 1000:.0f} | {p(out['list'], .95) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
