"""Dense search and the keyword index's manifest check on the Milvus Lite file against a
Milvus server, in the same run, through the appliance's own ChunkStore and Catalog.

    python bench/milvus_server.py [--sizes 10000 100000] [--queries 200]

The server is Milvus standalone 2.3.5 from the `milvus` package (requirements-dev), started
here on a free port with its data in a temporary folder. Both hold the same random unit
vectors (384 dimensions, FLAT, inner product) with the appliance's row shape; each query asks
for 30 candidates with the fields retrieval reads, at session consistency as retrieval does.
The manifest is read both ways: strongly (what a writer does) and at session consistency
(a reader's periodic check), and a reader's keyword index is rebuilt from the collection
(texts of about 100 words, word pieces counted by MiniLM's tokenizer, as a backend does when
the manifest changed). Prints p50/p95 per size and engine, and the server/Lite ratio.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

DIM = 384
FIELDS = ["text", "doc_id", "page_start", "page_end", "file_hash"]


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def passage(rng: np.random.Generator, words: list[str]) -> str:
    """About a chunk's length of text (100 words from a 5,000-word vocabulary, Zipf-like),
    so that the keyword index has as much to read and count as for real books."""
    ranks = np.minimum(rng.zipf(1.2, 100), len(words)) - 1
    return " ".join(words[r] for r in ranks)


def fill(store, vectors: np.ndarray, texts: list[str]) -> float:
    """Insert the rows; returns rows per second."""
    started = time.perf_counter()
    rows = [{"id": f"c{i}", "doc_id": f"book{i // 3000}.pdf", "text": texts[i], "file_hash": "h",
             "embedding": v.tolist(), "page_start": i % 300 + 1, "page_end": i % 300 + 1}
            for i, v in enumerate(vectors)]
    store.add(rows)
    store.client.flush(store.collection)
    return len(rows) / (time.perf_counter() - started)


def timed_searches(store, queries: np.ndarray) -> list[float]:
    for q in queries[:10]:  # warm up: the first searches load segments
        store.search(q.tolist(), 30, FIELDS)
    times = []
    for q in queries:
        started = time.perf_counter()
        store.search(q.tolist(), 30, FIELDS)
        times.append((time.perf_counter() - started) * 1000)
    return times


def timed_manifest_checks(catalog, consistency: str, n: int = 50) -> list[float]:
    from app.retrieval.keyword_index import manifest_signature

    times = []
    for _ in range(n):
        started = time.perf_counter()
        manifest_signature(catalog, consistency)
        times.append((time.perf_counter() - started) * 1000)
    return times


def timed_rebuild(store, catalog, folder: Path, count_pieces) -> float:
    """Seconds for a reader's keyword index to rebuild itself from the collection (what a
    backend does when the manifest changed: every chunk's text read, indexed, pieces counted)."""
    from app.retrieval.keyword_index import KeywordIndex

    index = KeywordIndex(store, catalog, folder, count_pieces=count_pieces)
    started = time.perf_counter()
    index.rebuild()
    return time.perf_counter() - started


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    from milvus import MilvusServer
    from pymilvus import MilvusClient

    from app.storage.catalog import Catalog, FileRecord
    from app.storage.chunk_store import ChunkStore

    work = Path(tempfile.mkdtemp(prefix="milvus-server-bench-"))
    server = MilvusServer()
    server.set_base_dir(str(work / "server"))
    server.listen_port = free_port()
    started = time.perf_counter()
    server.start()
    print(f"Milvus standalone 2.3.5 started in {time.perf_counter() - started:.1f} s")
    from app.embedding.encoder import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 64, None)
    rng = np.random.default_rng(0)
    words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{i // 676}ing" for i in range(5000)]
    rows = []
    try:
        engines = {"Lite file": MilvusClient(str(work / "lite.db")),
                   "server": MilvusClient(uri=f"http://127.0.0.1:{server.listen_port}")}
        for size in args.sizes:
            vectors = rng.standard_normal((size, DIM)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            queries = rng.standard_normal((args.queries, DIM)).astype(np.float32)
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            texts = [passage(rng, words) for _ in range(size)]
            for engine, client in engines.items():
                name = f"bench_{size}"
                store = ChunkStore(client, name, DIM, 5000)
                store.ensure_collection()
                rate = fill(store, vectors, texts)
                catalog = Catalog(client, name)
                catalog.ensure()
                for i in range(size // 300):  # one manifest row per 300 chunks, as for books
                    catalog.put(FileRecord(f"book{i}.pdf", "h", "p", 300, 300, 1, "pdf"))
                search = timed_searches(store, queries)
                strong = timed_manifest_checks(catalog, "Strong")
                session = timed_manifest_checks(catalog, "Session")
                rebuild = timed_rebuild(store, catalog, work / f"keyword-{engine[:4]}-{size}", embedder.pieces_per_text)
                rows.append((size, engine, rate, p(search, 50), p(search, 95), p(strong, 50), p(session, 50), rebuild))
                print(f"  {size:,} on {engine}: done", flush=True)
        for client in engines.values():
            client.close()
    finally:
        server.stop()
    print()
    print("| chunks | engine | insert rows/s | search p50 ms | search p95 ms | manifest read p50 ms: "
          "strong (writers) | session (readers' check) | keyword index rebuild s |")
    print("|---|---|---|---|---|---|---|---|")
    for size, engine, rate, p50, p95, strong, session, rebuild in rows:
        print(f"| {size:,} | {engine} | {rate:,.0f} | {p50:.1f} | {p95:.1f} | {strong:.1f} | {session:.1f} "
              f"| {rebuild:.1f} |")
    by = {(size, engine): p50 for size, engine, _, p50, *_ in rows}
    for size in args.sizes:
        if (size, "server") in by and (size, "Lite file") in by:
            print(f"server / Lite search p50 at {size:,}: {by[(size, 'server')] / by[(size, 'Lite file')]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
