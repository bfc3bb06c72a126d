"""Compare milvus-lite releases on the operations the appliance does.

Why: the issue asks us to choose between milvus-lite 2.5.x and 3.x by measurement.
Run it once per virtual environment (one with each milvus-lite installed):

    python bench/milvus_lite_versions.py [--rows 100000] [--dim 384]

It prints one table row per index type: insert rate, search p50/p95 at 10k and at
the full row count, delete-by-filter time, and the time to reopen the database.
Pure pymilvus + numpy, so it runs in a bare venv without the appliance installed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _create(client: MilvusClient, name: str, dim: int, index: str) -> None:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("file_path", DataType.VARCHAR, max_length=512)
    params = client.prepare_index_params()
    extra = {"M": 16, "efConstruction": 200} if index == "HNSW" else {}
    params.add_index("embedding", index_type=index, metric_type="COSINE", params=extra)
    client.create_collection(name, schema=schema, index_params=params)


def _search_latency(client, name, queries, index) -> tuple[float, float]:
    params = {"ef": 64} if index == "HNSW" else {}
    times = []
    for q in queries:
        t = time.perf_counter()
        client.search(name, data=[q.tolist()], anns_field="embedding", limit=10,
                      search_params={"metric_type": "COSINE", "params": params},
                      output_fields=["file_path"])
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def run(index: str, rows: int, dim: int, batch: int, workdir: Path) -> dict:
    rng = np.random.default_rng(0)
    db = workdir / f"bench_{index.lower()}.db"
    client = MilvusClient(str(db))
    _create(client, "chunks", dim, index)
    vectors = _unit(rng, rows, dim)
    queries = _unit(rng, 50, dim)
    result: dict = {"index": index}
    t0 = time.perf_counter()
    for start in range(0, rows, batch):
        part = vectors[start:start + batch]
        client.insert("chunks", [
            {"id": f"c{start + i}", "embedding": v.tolist(), "file_path": f"f{(start + i) // 500}.pdf"}
            for i, v in enumerate(part)
        ])
        if start + batch == 10_000:
            result["insert_rows_s"] = 10_000 / (time.perf_counter() - t0)
            client.search("chunks", data=[queries[0].tolist()], anns_field="embedding", limit=1)
            result["p50_10k"], result["p95_10k"] = _search_latency(client, "chunks", queries, index)
            t0 = time.perf_counter() - 10_000 / result["insert_rows_s"]
    client.search("chunks", data=[queries[0].tolist()], anns_field="embedding", limit=1)
    result["p50_full"], result["p95_full"] = _search_latency(client, "chunks", queries, index)
    t = time.perf_counter()
    client.delete("chunks", filter='file_path == "f3.pdf"')
    result["delete_ms"] = (time.perf_counter() - t) * 1000
    client.close()
    t = time.perf_counter()
    client = MilvusClient(str(db))
    client.load_collection("chunks")
    client.search("chunks", data=[queries[0].tolist()], anns_field="embedding", limit=10)
    result["reopen_first_search_s"] = time.perf_counter() - t
    result["p50_after_reopen"], _ = _search_latency(client, "chunks", queries[:20], index)
    client.close()
    return result


def main() -> None:
    import milvus_lite  # noqa: F401  (only to report the version)
    from importlib.metadata import version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--index", nargs="+", default=["FLAT", "HNSW"])
    args = parser.parse_args()
    ver = version("milvus-lite")
    print(f"milvus-lite {ver}, pymilvus {version('pymilvus')}, {args.rows} rows x {args.dim} dims, "
          f"insert batch {args.batch}")
    print("| milvus-lite | index | insert rows/s | search p50/p95 @10k ms | search p50/p95 @full ms "
          "| delete 500 rows ms | reopen+1st search s | p50 after reopen ms |")
    print("|---|---|---|---|---|---|---|---|")
    for index in args.index:
        workdir = Path(tempfile.mkdtemp(prefix="mlbench"))
        try:
            r = run(index, args.rows, args.dim, args.batch, workdir)
        except Exception as exc:  # an index type a release lacks is reported, not fatal
            print(f"| {ver} | {index} | failed: {str(exc)[:80]} | | | | | |")
            continue
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"| {ver} | {index} | {r['insert_rows_s']:,.0f} | {r['p50_10k']:.1f} / {r['p95_10k']:.1f} "
              f"| {r['p50_full']:.1f} / {r['p95_full']:.1f} | {r['delete_ms']:.0f} "
              f"| {r['reopen_first_search_s']:.2f} | {r['p50_after_reopen']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
