"""Several students at once: python -m llama_cpp.server vs llama.cpp's native llama-server.

    LLAMA_SERVER_BIN=$(./scripts/build_llama_server.sh) python bench/concurrency.py [--clients 8] [--parallel 4]

Same run, same backend code, same questions, same model (the packaged SmolLM2 on this
CPU): N clients stream answers at once through POST /api/chat/stream, first against
llama_cpp.server (one request at a time), then against llama-server with parallel slots
and continuous batching. Prints one table; the ratio column is native / python.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT / "tests"), str(ROOT / "bench")]


def run_against(server_kind: str, clients: int, parallel: int, max_tokens: int, embedder) -> dict:
    from chat import concurrent_clients

    from app.settings import Settings
    from backend_fixtures import BackendServer, LlamaServer, copy_sample_course, smollm2_path
    from conftest import IngestHarness

    native = os.environ["LLAMA_SERVER_BIN"] if server_kind == "native" else None
    llm = LlamaServer(native=native, parallel=parallel) if native else LlamaServer(native=False)
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{server_kind}-"))
    settings = Settings(_env_file=None, milvus_uri=str(tmp / "db" / "bench.db"), collection_name="chunks",
                        materials_dir=copy_sample_course(tmp / "materials"),
                        conversations_db=tmp / "db" / "conversations.sqlite3", llm_base_url=llm.url,
                        llm_model_path=smollm2_path(), llm_max_tokens=max_tokens, similarity_cutoff=-1.0,
                        condense_mode="off", embedding_device="cpu", torch_threads=1)
    harness = IngestHarness(settings, embedder)
    harness.run(settings.storage.materials_path)
    harness.close()
    backend = BackendServer(settings, embedder)
    try:
        asyncio.run(concurrent_clients(backend, 1))  # warm up
        runs, complete, wall = asyncio.run(concurrent_clients(backend, clients))
    finally:
        backend.stop()
        llm.stop()
    ttfts = [r["ttft"] for r in runs if r["ttft"]]
    return {
        "complete": len(complete), "runs": len(runs),
        "aggregate": sum(r["tokens"] for r in runs) / wall,
        "slowest": max(r["total"] for r in runs),
        "median_total": statistics.median(r["total"] for r in runs),
        "ttft_median": statistics.median(ttfts) if ttfts else float("nan"),
        "ttft_max": max(ttfts) if ttfts else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4, help="slots of the native server")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    if not os.environ.get("LLAMA_SERVER_BIN"):
        sys.exit("Set LLAMA_SERVER_BIN: LLAMA_SERVER_BIN=$(./scripts/build_llama_server.sh) python bench/concurrency.py")

    from app.embedding.encoder import load_embedder

    embedder = load_embedder("all-MiniLM-L6-v2", "cpu", 32, threads=1)
    python = run_against("python", args.clients, args.parallel, args.max_tokens, embedder)
    native = run_against("native", args.clients, args.parallel, args.max_tokens, embedder)
    print(f"\n{args.clients} students streaming at once (SmolLM2-135M on 2 CPU cores, answers up to "
          f"{args.max_tokens} tokens; native: {args.parallel} slots)\n")
    print("| measure | llama_cpp.server | native llama-server | native / python |\n|---|---|---|---|")
    rows = [("streams complete and untruncated", "complete", "{:.0f}"),
            ("aggregate tokens/s", "aggregate", "{:.1f}"),
            ("median time to first token, s", "ttft_median", "{:.2f}"),
            ("slowest time to first token, s", "ttft_max", "{:.2f}"),
            ("median client total, s", "median_total", "{:.1f}"),
            ("slowest client total, s", "slowest", "{:.1f}")]
    for label, key, fmt in rows:
        a, b = python[key], native[key]
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")


if __name__ == "__main__":
    main()
