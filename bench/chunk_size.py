"""Choose the default chunk size by measurement: retrieval quality per chunk size.

    python bench/chunk_size.py [--sizes 128 200 254] [--corpus ../shared/corpus]

For each size, ingests the textbooks with the real pipeline into a scratch database,
then asks the questions in bench/eval/questions.json through the appliance's Retriever
in dense mode (the part the chunk size affects) and prints hit@1/3/5 and MRR@10, with
the evaluation package's definition of a hit (app/evaluation/metrics.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
QUESTIONS = Path(__file__).with_name("eval") / "questions.json"


def evaluate(retriever, questions) -> dict:
    """Dense retrieval (what the chunk size affects), through the appliance's Retriever."""
    from app.evaluation.metrics import RankSummary, first_hit_rank

    summary = RankSummary()
    misses = []
    for q in questions.answerable:
        rank = first_hit_rank(q, retriever.search(q.question, top_k=10, cutoff=-1.0, mode="dense").sources)
        summary.add(rank)
        if not rank or rank > 5:
            misses.append(q.id)
    return {"hit@1": summary.hit_at(1), "hit@3": summary.hit_at(3), "hit@5": summary.hit_at(5),
            "mrr@10": summary.mrr10, "misses": misses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 200, 254])
    parser.add_argument("--overlap-share", type=float, default=0.2)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from app.evaluation.questions import QuestionSet, validate

    questions = QuestionSet.load(QUESTIONS)
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
        from app.retrieval.retriever import Retriever

        store = ingestor.chunk_store(embedder.dimension)
        metrics = evaluate(Retriever(settings, store, embedder), questions)
        rows.append((size, report, ingest_s, metrics))
        print(f"size {size}: {report.chunks_written} chunks, {ingest_s:.0f}s, {metrics}", file=sys.stderr, flush=True)
    print(f"\nChunk size vs. retrieval, {len(questions.answerable)} questions, dense top-10, all-MiniLM-L6-v2\n")
    print("| chunk size (word pieces) | overlap | chunks | text in window | ingest s | hit@1 | hit@3 | hit@5 | MRR@10 | misses (not in top 5) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, report, ingest_s, m in rows:
        print(f"| {size} | {int(size * args.overlap_share)} | {report.chunks_written} | {report.embedded_share:.0%} "
              f"| {ingest_s:.0f} | {m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['hit@5']:.2f} | {m['mrr@10']:.2f} "
              f"| {', '.join(m['misses'])} |")


if __name__ == "__main__":
    main()
