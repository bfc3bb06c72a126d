"""How long the instructor's insight report takes over a term's worth of stored turns.

    python bench/insight.py [--turns 10000] [--rounds 20] [--postgres URL]

A conversation store (SQLite, as the backend's; and PostgreSQL at URL, or on a throwaway
server of Debian's package when it is installed) is filled with `--turns` turns shaped as
the chat stores them: five sources of about 800 characters each, 15% declined (questions
drawn from 300 out-of-corpus topics, each asked several ways), 3% rated down with a
comment. Then the report (`InsightService.report`: per day, declined questions grouped
with the real embedder, unhelpful answers, cited pages and documents) runs `--rounds`
times. The first run embeds every declined question; later ones find their vectors
cached, as the backend's do. Target: p95 under 200 ms at 10,000 turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend")]

TOPICS = ["the French Revolution", "photosynthesis", "the Krebs cycle", "Kubernetes autoscaling", "MongoDB",
          "quantum entanglement", "the Roman Empire", "plate tectonics", "supply and demand", "OAuth tokens"]
FORMS = ["What is {}?", "Can you explain {}?", "How does {} work?", "Tell me about {} please", "{}: what is it?"]


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def fill(store, turns: int, rng: random.Random) -> None:

    books = [f"book-{b}.pdf" for b in range(9)]
    topics = [f"{t} ({i})" for i in range(30) for t in TOPICS]  # 300 topics
    started = time.time() - 30 * 86400
    with store.connect() as db:
        with db.transaction():
            _fill(db, turns, rng, books, topics, started)
        if db.dialect == "postgresql":  # what autovacuum does within a minute of a bulk write
            db.execute("ANALYZE")


def _fill(db, turns, rng, books, topics, started) -> None:
    """Rows as ConversationStore.add_turn writes them, in one transaction: the report is what is timed."""
    from app.conversations.store import Message

    for n in range(turns):
        cid = f"c{n // 4}"
        declined = rng.random() < 0.15
        question = (rng.choice(FORMS).format(rng.choice(topics)) if declined
                    else f"How does the algorithm in section {rng.randint(1, 400)} work?")
        sources = [] if declined else [
            {"number": i + 1, "file": rng.choice(books), "page_start": rng.randint(1, 300), "text": "x" * 800,
             "score": 0.5} for i in range(5)]
        meta = {"sources": sources, "cited": [1, 2] if sources else [],
                "finish_reason": "no_relevant_sources" if declined else "stop"}
        at = started + n * (30 * 86400 / turns)
        db.execute("INSERT INTO conversations (id, title, created_at, updated_at, owner, course) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                   (cid, question[:80], at, at, f"s{n % 400}", "main"))
        for m in (Message("user", question, 10, {}, at), Message("assistant", "An answer. " * 40, 100, meta, at)):
            message_id = db.execute("INSERT INTO messages (conversation_id, role, content, token_count, meta, "
                                    "created_at, finish_reason) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                                    (cid, m.role, m.content, m.token_count, json.dumps(m.meta), m.created_at,
                                     m.meta.get("finish_reason"))).fetchone()[0]
        db.executemany("INSERT INTO answer_sources (message_id, course, created_at, file, page, cited) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [(message_id, "main", at, s["file"], s["page_start"], int(s["number"] in meta["cited"]))
                        for s in sources])
        if not declined and rng.random() < 0.03:
            db.execute("INSERT INTO feedback (message_id, voter, vote, comment, created_at) VALUES (?, ?, -1, ?, ?)",
                       (message_id, f"s{n % 400}", "Too vague.", at))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", help="a PostgreSQL database URL to measure beside SQLite")
    args = parser.parse_args()

    from app.conversations.store import ConversationStore
    from app.embedding.encoder import load_embedder
    from app.insight.queries import Period
    from app.insight.report import InsightService

    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 64, None)
    why_not = embedder.enable_fast_queries("auto", Path(tempfile.gettempdir()) / "bench-insight-onnx")
    engines, server = engines_to_run(args.postgres)
    rows = []
    try:
        for engine, url in engines:
            with tempfile.TemporaryDirectory() as tmp:
                store = ConversationStore(Path(tmp) / "conversations.sqlite3", url=url)
                t = time.perf_counter()
                fill(store, args.turns, random.Random(7))
                filled_s = time.perf_counter() - t
                service = InsightService(store, embedder.encode_queries)
                period = Period("main", 0, time.time() + 86400)
                times = []
                for _ in range(args.rounds + 1):
                    t = time.perf_counter()
                    report = asyncio.run(service.report(period))
                    times.append((time.perf_counter() - t) * 1000)
                store.close()
            rows.append((engine, filled_s, times, report))
    finally:
        if server is not None:
            server.remove()
    print(f"\nInsight report over {args.turns:,} stored turns, questions embedded with "
          f"{'ONNX Runtime' if not why_not else 'PyTorch'}:\n")
    print("| engine | fill s | first run ms (embeds the declined) | later p50 ms | later p95 ms |\n|---|---|---|---|---|")
    for engine, filled_s, times, report in rows:
        warm = times[1:]
        print(f"| {engine} | {filled_s:.1f} | {times[0]:.0f} | {statistics.median(warm):.0f} | {p(warm, 0.95):.0f} |")
    report = rows[0][3]
    print(f"\n{report.questions:,} questions, {report.declined:,} declined in {len(report.not_covered)} groups "
          f"(largest {report.not_covered[0].count}: \"{report.not_covered[0].label}\"), "
          f"{len(report.unhelpful)} rated unhelpful, {len(report.pages)} pages listed. Target p95 under 200 ms: "
          + ", ".join(f"{engine} {'met' if p(times[1:], 0.95) < 200 else 'NOT met'}" for engine, _, times, _ in rows))
    return 0


def engines_to_run(url: str | None):
    """SQLite, and PostgreSQL at `url` or on a throwaway server when one is installed."""
    engines = [("SQLite", None)]
    server = None
    if url:
        engines.append(("PostgreSQL", url))
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from postgres_server import PostgresServer, binaries

        if binaries() is not None:
            server = PostgresServer()
            engines.append(("PostgreSQL (local)", server.start()))
    return engines, server


if __name__ == "__main__":
    raise SystemExit(main())
