"""What the conversation store costs a question, on SQLite and on PostgreSQL, in one run.

    python bench/conversations.py [--conversations 2000] [--samples 300] [--postgres URL]

Each store first holds `--conversations` conversations of 5 turns (answers with five
sources, as the chat stores them). Then, timed one call at a time: storing a turn
(`add_turn`, what every answer ends with), reading a conversation's messages (what every
follow-up starts with) and a student's list page; and storing turns from 8 threads at
once (a class asking together; on PostgreSQL this is where several backends meet).
PostgreSQL runs at URL, or on a throwaway server of Debian's package when it is
installed (fsync off there: a commit costs what a server with a write cache would).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT / "bench")]

from insight import engines_to_run, p  # noqa: E402


def turn(rng: random.Random, n: int):
    from app.conversations.store import Message

    sources = [{"number": i + 1, "file": f"book-{rng.randint(0, 8)}.pdf", "page_start": rng.randint(1, 300),
                "text": "x" * 800, "score": 0.5} for i in range(5)]
    meta = {"sources": sources, "cited": [1, 2], "finish_reason": "stop", "timings": {"total_ms": 900.0}}
    return (Message("user", f"How does the algorithm in section {n} work?", 12),
            Message("assistant", "An answer with a citation [1]. " * 12, 90, meta=meta))


def timed(samples: int, call) -> list[float]:
    times = []
    for i in range(samples):
        t = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t) * 1000)
    return times


def measure(store, conversations: int, samples: int) -> dict[str, list[float] | float]:
    rng = random.Random(11)
    for c in range(conversations):
        for n in range(5):
            asyncio.run(store.add_turn(f"c{c}", *turn(rng, n), owner=f"s{c % 400}"))
    results: dict[str, list[float] | float] = {
        "store a turn": timed(samples, lambda i: asyncio.run(
            store.add_turn(f"c{rng.randrange(conversations)}", *turn(rng, i), any_owner=True))),
        "read a conversation": timed(samples, lambda i: asyncio.run(
            store.messages(f"c{rng.randrange(conversations)}"))),
        "list a student's page": timed(samples, lambda i: asyncio.run(store.list(owner=f"s{i % 400}"))),
    }
    per_thread = max(1, samples // 8)
    start = threading.Barrier(8)

    def writer(k: int) -> None:
        local = random.Random(k)
        start.wait()
        for i in range(per_thread):
            asyncio.run(store.add_turn(f"t{k}-{i}", *turn(local, i), owner=f"w{k}"))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results["turns/s, 8 threads writing"] = 8 * per_thread / (time.perf_counter() - t)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--postgres", help="a PostgreSQL database URL to measure beside SQLite")
    args = parser.parse_args()

    from app.conversations.store import ConversationStore

    engines, server = engines_to_run(args.postgres)
    measured = {}
    try:
        for engine, url in engines:
            with tempfile.TemporaryDirectory() as tmp:
                store = ConversationStore(Path(tmp) / "conversations.sqlite3", url=url)
                try:
                    measured[engine] = measure(store, args.conversations, args.samples)
                finally:
                    store.close()
    finally:
        if server is not None:
            server.remove()
    names = list(measured)
    print(f"\nConversation store, {args.conversations:,} conversations of 5 turns held, "
          f"{args.samples} samples per call (ms: p50 / p95):\n")
    print("| call | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for call in measured[names[0]]:
        cells = []
        for engine in names:
            value = measured[engine][call]
            cells.append(f"{value:.0f}" if isinstance(value, float) else
                         f"{statistics.median(value):.2f} / {p(value, 0.95):.2f}")
        print(f"| {call} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
