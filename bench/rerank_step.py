"""The rerank step alone, on any device, from saved candidates: what it costs on a GPU pod.

    python bench/rerank_cost.py --save-candidates bench/.cache/rerank_candidates.json   # once, here
    python bench/rerank_step.py [--candidates FILE] [--device cuda] [--model DIR] [--random-weights]

Why a separate script: the GPU machine we measure on has torch and sentence-transformers
but not the rest of the stack (no Milvus Lite, no database), and no internet. So the
retrieval runs here, the candidates each question would hand the reranker are saved, and
this script feeds them to the appliance's own Reranker class on the device.

The baseline, in the same run and on the same device, is the query embedding that every
dense search pays (the same-shaped bi-encoder on the question alone); the table gives the
rerank step as a multiple of it. As in rerank_cost.py, the default model is
*architecture-equivalent* (the MiniLM-L6 body of cross-encoder/ms-marco-MiniLM-L-6-v2
under an untrained head): its orderings mean nothing, its cost is the real model's.
--random-weights takes only the shape (config and tokenizer) from --model, for machines
that lack the weights; timings do not depend on weight values.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))
DEFAULT_CANDIDATES = ROOT / "bench" / ".cache" / "rerank_candidates.json"


def with_random_weights(shape_dir: Path, into: Path) -> Path:
    """A copy of a BERT-shaped sentence-transformers folder with freshly initialised weights."""
    from transformers import AutoConfig, AutoModel

    shutil.copytree(shape_dir, into, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx"))
    AutoModel.from_config(AutoConfig.from_pretrained(shape_dir)).save_pretrained(into)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=Path, default=DEFAULT_CANDIDATES)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--model", default=None, help="cross-encoder name or folder (default: packaged MiniLM-L6 body)")
    parser.add_argument("--random-weights", action="store_true", help="take only the shape from --model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from app.evaluation.metrics import percentile
    from app.retrieval.reranker import load_reranker

    hf_logging.set_verbosity_error()  # the fresh head's "newly initialized" warning is expected
    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model
    if model is None:
        from app.embedding.encoder import resolve_model_source

        model = resolve_model_source("all-MiniLM-L6-v2")[0]
    if args.random_weights:
        model = str(with_random_weights(Path(model), Path(tempfile.mkdtemp()) / "model"))
    reranker = load_reranker(model, args.device, ROOT / "models")
    if reranker is None:
        sys.exit(f"could not load {model}")
    device = str(reranker.model.device)
    query_encoder = SentenceTransformer(model, device=device)

    batches = json.loads(args.candidates.read_text())
    sizes = sorted({len(b["passages"]) for b in batches})
    for b in batches[:3]:  # warm-up: first calls load kernels
        reranker.score(b["question"], b["passages"])
        query_encoder.encode(b["question"])

    def synced() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    embed_ms: list[float] = []
    rerank_ms: list[float] = []
    for _ in range(args.rounds):
        for b in batches:  # the two take turns, so machine noise falls on both alike
            t = synced()
            query_encoder.encode(b["question"])
            embed_ms.append((synced() - t) * 1000)
            t = synced()
            reranker.score(b["question"], b["passages"])
            rerank_ms.append((synced() - t) * 1000)

    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
    words = sum(len(p.split()) for b in batches for p in b["passages"]) / sum(len(b["passages"]) for b in batches)
    base = percentile(embed_ms, 0.5)
    print(f"\nRerank step, {len(batches)} questions x {args.rounds} rounds, {'/'.join(map(str, sizes))} candidates "
          f"of ~{words:.0f} words each, on {name}; model: {model}{' (random weights)' if args.random_weights else ''}\n")
    print("| step | p50 ms | p95 ms | p50 / query embedding p50 |\n|---|---|---|---|")
    print(f"| query embedding (baseline) | {base:.1f} | {percentile(embed_ms, 0.95):.1f} | 1.00 |")
    print(f"| rerank the candidates | {percentile(rerank_ms, 0.5):.1f} | {percentile(rerank_ms, 0.95):.1f} "
          f"| {percentile(rerank_ms, 0.5) / base:.1f} |")


if __name__ == "__main__":
    main()
