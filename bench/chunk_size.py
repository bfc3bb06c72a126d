"""Choose the default chunk size by measurement: retrieval quality per chunk size.

    python bench/chunk_size.py [--sizes 128 160 200] [--corpus ../shared/corpus]

For each size, ingests the textbooks with the real pipeline into a database of its own
(cached under bench/.cache/chunks/<size>/, so a second run only asks the questions),
then asks the questions in bench/eval/questions.json through the appliance's Retriever,
dense alone and hybrid (the default), with the evaluation package's definition of a hit
(app/evaluation/metrics.py). Prints the whole set and each split (dev: the questions the
choices were made on; holdout: written later, to check that they generalise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
QUESTIONS = Path(__file__).with_name("eval") / "questions.json"
CACHE = Path(__file__).with_name(".cache") / "chunks"


def ingest(size: int, overlap: int, corpus: Path, embedder):
    """The size's own database, ingested (or brought up to date) the way the evaluation does."""
    from app.evaluation.corpus import prepare_database
    from app.settings import Settings

    db = CACHE / str(size) / "corpus.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings(_env_file=None, milvus_uri=str(db), collection_name="eval",
                        chunk_size_tokens=size, chunk_overlap_tokens=overlap)
    return settings, prepare_database(argparse.Namespace(db=db, corpus=corpus), settings, embedder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 200])
    parser.add_argument("--overlap-share", type=float, default=0.2)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from app.embedding.encoder import load_embedder
    from app.evaluation.__main__ import checked_questions, embedded_share, parse_args
    from app.evaluation.questions import QuestionFileError
    from app.evaluation.runner import run_config
    from app.courses.course import read_side_of

    try:
        questions = checked_questions(parse_args(["--questions", str(QUESTIONS), "--corpus", str(args.corpus),
                                                  "--db", str(CACHE / "check" / "corpus.db"), "--strict"]))
    except QuestionFileError as exc:
        sys.exit(str(exc))
    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 64, threads=args.threads)
    embedder.enable_fast_queries("auto", ROOT / "models" / "onnx")

    rows = []
    for size in args.sizes:
        overlap = int(size * args.overlap_share)
        print(f"size {size}: ingesting (first run for a size takes minutes) ...", file=sys.stderr, flush=True)
        settings, ingestor = ingest(size, overlap, args.corpus, embedder)
        read = read_side_of(ingestor, embedder, reranker_model="")
        store, retriever = read.store, read.retriever
        share = embedded_share(store, embedder.max_tokens - 2)
        for mode in ("dense", "hybrid"):
            result = run_config(retriever, questions, mode, mode, False)
            rows.append((size, overlap, store.count(), share, result))

    splits = sorted({q.split for q in questions.answerable})
    print(f"\nChunk size vs. retrieval, {len(questions.answerable)} questions "
          f"({', '.join(splits)}), all-MiniLM-L6-v2; hit@3 / hit@5 / MRR@10\n")
    print("| chunk size (word pieces) | overlap | chunks | text in window | retrieval | all | "
          + " | ".join(splits) + " |")
    print("|---" * (6 + len(splits)) + "|")
    for size, overlap, chunks, share, r in rows:
        cells = [r.overall, *(r.per_split[s] for s in splits)]
        print(f"| {size} | {overlap} | {chunks:,} | {share:.0%} | {r.name} | "
              + " | ".join(f"{c.hit_at(3):.2f} / {c.hit_at(5):.2f} / {c.mrr10:.2f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
