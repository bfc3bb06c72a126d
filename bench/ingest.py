"""Ingestion benchmark on the real textbooks in ../shared/corpus.

    python bench/ingest.py [--corpus ../shared/corpus] [--threads 2]

Runs, in one go on one machine:
  1. the real CLI end to end (`python ingest.py --directory CORPUS`) on a fresh database;
  2. the same command again on unchanged files;
  3. the two unavoidable parts done bare: PDF text extraction alone (pypdfium2), and
     SentenceTransformer.encode of exactly the chunk texts the pipeline stored.
Prints a table with pages, chunks, wall times, chunks/s, peak memory, and the two
ratios the targets are about: end-to-end / (extraction + encode) <= 1.3, and
re-run / first run < 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
sys.path.insert(0, str(BACKEND))


def run_cli(corpus: Path, env: dict) -> tuple[float, dict, int]:
    """Wall time, JSON summary and peak RSS (KiB) of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "ingest.py", "--directory", str(corpus), "--json", "--quiet"],
                            cwd=BACKEND, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode not in (0, 1):
        sys.exit(f"ingest failed ({result.returncode}):\n{result.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, json.loads(result.stdout), max(peak, before)


def bare_extraction(pdfs: list[Path]) -> tuple[float, int]:
    import pypdfium2 as pdfium

    started = time.perf_counter()
    pages = 0
    for path in pdfs:
        pdf = pdfium.PdfDocument(str(path))
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            textpage.get_text_bounded()
            textpage.close()
            page.close()
            pages += 1
        pdf.close()
    return time.perf_counter() - started, pages


def stored_texts(db: Path, collection: str) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(str(db))
    it = client.query_iterator(collection, batch_size=2000, filter="", output_fields=["text"])
    texts = []
    while rows := it.next():
        texts.extend(r["text"] for r in rows)
    it.close()
    client.close()
    return texts


def bare_encode(texts: list[str], batch_size: int) -> float:
    from sentence_transformers import SentenceTransformer

    from app.embedding.encoder import resolve_model_source

    source, local = resolve_model_source("all-MiniLM-L6-v2")
    model = SentenceTransformer(source, device="cpu", local_files_only=local)
    model.encode(texts[:32], batch_size=batch_size)  # warm-up, as the pipeline's first batch is
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus folder {args.corpus} not found; pass --corpus")
    import torch

    torch.set_num_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    db = workdir / "bench.db"
    env = dict(os.environ, RAG_MILVUS_URI=str(db), RAG_COLLECTION_NAME="bench", RAG_EMBEDDING_DEVICE="cpu",
               RAG_TORCH_THREADS=str(args.threads), RAG_EMBEDDING_BATCH_SIZE=str(args.batch_size),
               TOKENIZERS_PARALLELISM="false")

    first_wall, first, peak_kib = run_cli(args.corpus, env)
    rerun_wall, rerun, _ = run_cli(args.corpus, env)
    pdfs = sorted(args.corpus.rglob("*.pdf"))
    extract_s, pages = bare_extraction(pdfs)
    texts = stored_texts(db, "bench")
    encode_s = bare_encode(texts, args.batch_size)

    bare = extract_s + encode_s
    rows = [
        ("files / pages / chunks", f"{len(first['ingested'])} / {first['pages']} / {first['chunks_written']}"),
        ("share of chunk text inside the embedder window", f"{first['embedded_share']:.1%}"),
        ("end-to-end ingest, wall (CLI, incl. start-up)", f"{first_wall:.1f} s"),
        ("end-to-end chunks/s", f"{first['chunks_written'] / first_wall:.1f}"),
        ("bare text extraction (pypdfium2)", f"{extract_s:.1f} s for {pages} pages"),
        ("bare SentenceTransformer.encode of the same chunks", f"{encode_s:.1f} s ({len(texts) / encode_s:.1f} chunks/s)"),
        ("ratio end-to-end / (extraction + encode)  [target <= 1.30]", f"{first_wall / bare:.2f}"),
        ("unchanged re-run, wall", f"{rerun_wall:.1f} s ({rerun['unchanged']} files unchanged)"),
        ("ratio re-run / first run  [target < 5%]", f"{rerun_wall / first_wall:.1%}"),
        ("peak memory of the ingest process (RSS)", f"{peak_kib / 1024:.0f} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nIngest benchmark: {args.corpus} ({len(pdfs)} PDFs), {args.threads} threads, batch {args.batch_size}\n")
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for key, value in rows:
        print(f"| {key:<{width}} | {value} |")
    if first["failed"]:
        print(f"\nfailed files: {first['failed']}")


if __name__ == "__main__":
    main()
