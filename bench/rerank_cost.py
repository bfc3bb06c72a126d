"""What the optional rerank step costs in retrieval latency, beside dense and hybrid, in one run.

    python bench/rerank_cost.py [--rerank-model NAME] [--candidates 20] [--device cpu] [--save-candidates FILE]

No cross-encoder can be installed offline here, so by default the rerank step runs an
*architecture-equivalent* model: the MiniLM-L6 body we ship (6 layers, 384 wide, as in
cross-encoder/ms-marco-MiniLM-L-6-v2) with an untrained one-number head. Its orderings
mean nothing; its cost per candidate is that of the real model, which is what this
measures. Give --rerank-model to time a real cross-encoder where one can be downloaded
(its quality: `python -m app.evaluation --rerank-model NAME`). The token-match reranker,
the offline default (app/retrieval/token_match.py), is timed in the same run.

Uses the evaluation's cached database (bench/.cache/eval/, built by `python -m
app.evaluation`) and its questions; the configurations take turns question by question,
so machine noise falls on all of them alike. --save-candidates writes what each question
handed the reranker, for bench/rerank_step.py to time the step on a machine without the stack.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def architecture_equivalent(device: str):
    """A Reranker whose cross-encoder is the packaged MiniLM-L6 body with a fresh head."""
    from app.embedding.encoder import resolve_model_source
    from app.retrieval.reranker import load_reranker

    reranker = load_reranker(resolve_model_source("all-MiniLM-L6-v2")[0], device, ROOT / "models")
    reranker.model_name = "MiniLM-L6 body, untrained head (latency only)"
    return reranker


def keeping_candidates(score, saved: dict[str, list[str]]):
    """Reranker.score that also keeps the passages each question was first given."""
    def score_and_keep(query: str, passages: list[str], fused=None) -> list[float]:
        saved.setdefault(query, list(passages))
        return score(query, passages, fused)
    return score_and_keep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerank-model", default=None, help="a real cross-encoder to time instead")
    parser.add_argument("--candidates", type=int, default=None, help="passages reranked (default: the setting)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--save-candidates", type=Path, default=None,
                        help="write each question's rerank candidates here (JSON, for bench/rerank_step.py)")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from app.embedding.encoder import load_embedder
    from app.evaluation.__main__ import DEFAULT_QUESTIONS, parse_args
    from app.evaluation.corpus import prepare_database
    from app.evaluation.metrics import percentile
    from app.evaluation.questions import QuestionSet
    from app.retrieval.reranker import load_reranker
    from app.courses.course import read_side_of
    from app.settings import TOKEN_MATCH, Settings

    hf_logging.set_verbosity_error()  # the fresh head's "newly initialized" warning is expected
    eval_args = parse_args(["--threads", str(args.threads)])
    settings = Settings(_env_file=None, milvus_uri=str(eval_args.db), collection_name="eval",
                        embedding_device=args.device, torch_threads=args.threads)
    if args.candidates:
        settings = settings.model_copy(update={"rerank_candidates": args.candidates})
    embedder = load_embedder(settings.embedding.embedding_model, args.device, 64, threads=args.threads)
    embedder.enable_fast_queries(settings.embedding.embedding_query_runtime, settings.storage.models_path / "onnx")
    ingestor = prepare_database(eval_args, settings, embedder)
    read = read_side_of(ingestor, embedder, reranker_model="")
    store, keyword_index, retriever = read.store, read.keyword_index, read.retriever
    if args.rerank_model:
        reranker = load_reranker(args.rerank_model, args.device, settings.storage.models_path, embedder, keyword_index)
        if reranker is None:
            sys.exit(f"could not load {args.rerank_model}")
    else:
        reranker = architecture_equivalent(args.device)
    saved: dict[str, list[str]] = {}
    if args.save_candidates:
        reranker.score = keeping_candidates(reranker.score, saved)
    questions = [q.question for q in QuestionSet.load(DEFAULT_QUESTIONS).answerable]

    rerankers = [reranker]
    if args.rerank_model != TOKEN_MATCH:  # the appliance's default, beside the one asked for
        rerankers.append(load_reranker(TOKEN_MATCH, args.device, settings.storage.models_path, embedder, keyword_index))
    configs = {"dense": (dict(mode="dense", rerank=False), None),
               "hybrid": (dict(mode="hybrid", rerank=False), None)}
    for each in rerankers:
        n = settings.retrieval.rerank_candidates or each.candidates
        configs[f"hybrid + {each.model_name}, {n} candidates"] = (dict(mode="hybrid", rerank=True), each)
    for kwargs, with_reranker in configs.values():  # warm-up: first calls load kernels and caches
        retriever.reranker = with_reranker
        retriever.search(questions[0], cutoff=-1.0, **kwargs)
    times: dict[str, list[float]] = {name: [] for name in configs}
    rerank_only: dict[str, list[float]] = {name: [] for name, (kwargs, _) in configs.items() if kwargs["rerank"]}
    for _ in range(args.rounds):
        for question in questions:
            for name, (kwargs, with_reranker) in configs.items():
                retriever.reranker = with_reranker
                started = time.perf_counter()
                result = retriever.search(question, cutoff=-1.0, **kwargs)
                times[name].append((time.perf_counter() - started) * 1000)
                if kwargs["rerank"]:
                    rerank_only[name].append(result.timings.get("rerank_ms", 0.0))

    base = percentile(times["hybrid"], 0.5)
    print(f"\nRetrieval latency, {len(questions)} questions x {args.rounds} rounds, {store.count():,} chunks, "
          f"device {args.device}, {args.threads} threads\n")
    print("| configuration | p50 ms | p95 ms | p50 / hybrid p50 | rerank step p50 ms |\n|---|---|---|---|---|")
    for name, values in times.items():
        p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
        step = f"{percentile(rerank_only[name], 0.5):.1f}" if name in rerank_only else ""
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {p50 / base:.2f} | {step} |")
    if args.save_candidates:
        args.save_candidates.parent.mkdir(parents=True, exist_ok=True)
        args.save_candidates.write_text(json.dumps(
            [{"question": q, "passages": saved[q]} for q in questions if q in saved], indent=0))
        print(f"\ncandidates of {len(saved)} questions saved to {args.save_candidates}")


if __name__ == "__main__":
    main()
