"""Choose the default chunk size by measurement: retrieval quality per chunk size.

    python bench/chunk_size.py [--sizes 128 200 254] [--corpus ../shared/corpus]

For each size, ingests the textbooks with the real pipeline into a scratch database,
then asks the questions in bench/eval/questions.json through llama-index's
MilvusVectorStore (dense search, as the chat backend will) and prints hit@1/3/5 and
MRR@10. A hit is a chunk of the right file within one page of a listed page, or one
that contains the question's evidence phrase.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
QUESTIONS = Path(__file__).with_name("eval") / "questions.json"


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def validate(questions: list[dict], corpus: Path) -> list[str]:
    """Every evidence phrase must really be on one of its listed pages."""
    from app.ingestion.readers import read_document

    problems = []
    cache: dict[str, dict[int, str]] = {}
    for q in questions:
        if q["file"] not in cache:
            cache[q["file"]] = {s.page: _flat(s.text) for s in read_document(corpus / q["file"]).sections}
        pages = cache[q["file"]]
        if not any(_flat(q["evidence"]) in pages.get(p, "") for p in q["pages"]):
            problems.append(f"{q['id']}: evidence not found on pages {q['pages']} of {q['file']}")
    return problems


def is_hit(q: dict, meta: dict, text: str) -> bool:
    if meta.get("file_path") != q["file"]:
        return False
    start, end = meta.get("page_start"), meta.get("page_end")
    if start is not None and any(start - 1 <= p <= end + 1 for p in q["pages"]):
        return True
    return _flat(q["evidence"]) in _flat(text)


def evaluate(store, embedder, questions: list[dict]) -> dict:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    ranks = []
    latencies = []
    for q in questions:
        vector = embedder.encode([q["question"]])[0].tolist()
        t = time.perf_counter()
        result = store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=10))
        latencies.append((time.perf_counter() - t) * 1000)
        rank = next((i + 1 for i, node in enumerate(result.nodes) if is_hit(q, node.metadata, node.text)), None)
        ranks.append(rank)
    n = len(questions)
    return {
        "hit@1": sum(r == 1 for r in ranks if r) / n,
        "hit@3": sum(r <= 3 for r in ranks if r) / n,
        "hit@5": sum(r <= 5 for r in ranks if r) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
        "search_ms_p50": sorted(latencies)[n // 2],
        "misses": [q["id"] for q, r in zip(questions, ranks) if not r or r > 5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 200, 254])
    parser.add_argument("--overlap-share", type=float, default=0.2)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    questions = json.loads(QUESTIONS.read_text())
    problems = validate(questions, args.corpus)
    if problems:
        sys.exit("question file problems:\n" + "\n".join(problems))

    from app.embedding.encoder import load_embedder
    from app.ingestion.pipeline import Ingestor
    from app.settings import Settings
    from app.storage.connection import connect, resolve_target

    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 64, threads=args.threads)
    books = Path(tempfile.mkdtemp(prefix="books-"))
    for pdf in sorted(args.corpus.glob("*.pdf")):
        (books / pdf.name).symlink_to(pdf)
    rows = []
    for size in args.sizes:
        workdir = Path(tempfile.mkdtemp(prefix=f"chunks{size}-"))
        settings = Settings(_env_file=None, milvus_uri=str(workdir / "eval.db"), collection_name="eval",
                            chunk_size_tokens=size, chunk_overlap_tokens=int(size * args.overlap_share))
        target = resolve_target(settings)
        client = connect(target, 10)
        ingestor = Ingestor(settings, client, target.uri, "", target.describe(), embedder_loader=lambda: embedder)
        started = time.perf_counter()
        report = ingestor.run(books)
        ingest_s = time.perf_counter() - started
        store = ingestor.chunk_store(embedder.dimension).vector_store
        metrics = evaluate(store, embedder, questions)
        rows.append((size, report, ingest_s, metrics))
        print(f"size {size}: {report.chunks_written} chunks, {ingest_s:.0f}s, {metrics}", file=sys.stderr, flush=True)
    print(f"\nChunk size vs. retrieval, {len(questions)} questions, dense top-10, all-MiniLM-L6-v2\n")
    print("| chunk size (word pieces) | overlap | chunks | text in window | ingest s | hit@1 | hit@3 | hit@5 | MRR@10 | misses (not in top 5) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, report, ingest_s, m in rows:
        print(f"| {size} | {int(size * args.overlap_share)} | {report.chunks_written} | {report.embedded_share:.0%} "
              f"| {ingest_s:.0f} | {m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['hit@5']:.2f} | {m['mrr@10']:.2f} "
              f"| {', '.join(m['misses'])} |")


if __name__ == "__main__":
    main()
