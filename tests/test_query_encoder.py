"""Questions embedded through ONNX Runtime give the vectors PyTorch gives, the export is
cached and repaired, and search scores are cosine similarities on old and new collections."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IngestHarness, topic_text

pytest.importorskip("onnxruntime")


def build(embedder, cache_dir):
    from app.embedding.query_encoder import build_onnx_query_encoder

    encoder, why_not = build_onnx_query_encoder(embedder.model, cache_dir, threads=2)
    assert why_not == "" and encoder is not None
    return encoder


def test_onnx_vectors_match_pytorch(embedder, tmp_path):
    encoder = build(embedder, tmp_path)
    texts = ["What is a hash table?", "Où est la bibliothèque ?", "x",
             " ".join(["a very long question about B-trees"] * 80)]  # past the 256-piece window
    reference = embedder.encode(texts)
    for text, expected in zip(texts, reference):
        vector = encoder.encode(text)
        assert vector.dtype == np.float32 and vector.shape == expected.shape
        assert float(np.dot(vector, expected)) > 0.9999
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # In one batch (a message's clauses), padded to the longest: each vector as alone.
    together = encoder.encode_many(texts)
    assert together.dtype == np.float32 and together.shape == reference.shape
    assert np.all(np.sum(together * reference, axis=1) > 0.9999)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_export_is_reused_and_a_corrupt_one_replaced(embedder, tmp_path):
    build(embedder, tmp_path)
    [exported] = list(tmp_path.glob("*.onnx"))
    stamp = exported.stat().st_mtime_ns
    build(embedder, tmp_path)
    assert exported.stat().st_mtime_ns == stamp  # loaded, not exported again
    exported.write_bytes(b"half a file")  # as a crash or a full disk might leave it
    encoder = build(embedder, tmp_path)
    assert exported.stat().st_size > 1_000_000
    assert float(np.dot(encoder.encode("stacks"), embedder.encode(["stacks"])[0])) > 0.9999
    assert not list(tmp_path.glob("*.part"))


def test_runtime_setting_decides(embedder, tmp_path):
    from app.embedding.encoder import Embedder

    copy = Embedder(embedder.name, embedder.model, "cpu", 32)
    assert copy.enable_fast_queries("torch", tmp_path) == "" and copy.query_runtime == "pytorch"
    assert copy.enable_fast_queries("auto", tmp_path) == "" and copy.query_runtime == "onnxruntime"
    # one tokenizer, one lock: questions and token-match reranking take turns at it
    assert copy.query_encoder._tokenizer_lock is copy._tokenizer_lock
    on_gpu = Embedder(embedder.name, embedder.model, "cuda", 32)
    on_gpu.enable_fast_queries("auto", tmp_path)
    assert on_gpu.query_runtime == "pytorch"  # PyTorch on a GPU is already fast


def test_search_scores_are_cosine_on_new_and_old_collections(tmp_path, settings, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Queues\n\n" + topic_text("circular queues"))
    harness = IngestHarness(settings, embedder)
    harness.run(docs)
    store = harness.ingestor().chunk_store(embedder.dimension)
    assert store.metric == "IP"  # new collections: unit vectors, inner product
    vector = embedder.encode(["circular queues"])[0]
    row, score = store.search(vector.tolist(), 1, ["text", "embedding"])[0]
    assert score == pytest.approx(float(np.dot(vector, np.asarray(row["embedding"], dtype=np.float32))), abs=1e-4)
    # several vectors in one request: each gets what a search of its own gives, in order
    other = embedder.encode(["priority queues"])[0]
    alone = [store.search(v.tolist(), 3, ["text"]) for v in (vector, other)]
    assert store.search_many([vector.tolist(), other.tolist()], 3, ["text"]) == alone

    # A collection created by an earlier version (the same columns, the COSINE metric, each row
    # with a JSON copy of itself in `_node_content`) is read, and written to, alike.
    from pymilvus import DataType

    from app.storage.chunk_store import ChunkStore

    schema = store.client.create_schema(auto_id=False, enable_dynamic_field=True)
    for name in ("id", "doc_id", "text", "file_hash"):
        schema.add_field(field_name=name, datatype=DataType.VARCHAR, max_length=65_535, is_primary=name == "id")
    schema.add_field(field_name="embedding", datatype=DataType.FLOAT_VECTOR, dim=embedder.dimension)
    index = store.client.prepare_index_params()
    index.add_index(field_name="embedding", index_name="embedding", index_type="FLAT", metric_type="COSINE")
    store.client.create_collection("older", schema=schema, index_params=index, consistency_level="Strong")
    store.client.insert("older", [{"id": "n1", "doc_id": "a.md", "text": "circular queues wrap around",
                                   "file_hash": "h", "embedding": (vector * 3).tolist(),
                                   "_node_content": '{"id_": "n1", "metadata": {}}', "_node_type": "TextNode"}])
    reopened = ChunkStore(store.client, "older", embedder.dimension, 100)
    assert reopened.metric == "COSINE"
    row, score = reopened.search(vector.tolist(), 1, ["text", "doc_id"])[0]
    assert score == pytest.approx(1.0, abs=1e-4)  # cosine ignores the stored vector's length
    assert (row["text"], row["doc_id"]) == ("circular queues wrap around", "a.md")
    reopened.add([{"id": "n2", "doc_id": "b.md", "text": "priority queues", "file_hash": "h2",
                   "embedding": other.tolist(), "page_start": 3}])
    row, _ = reopened.search(other.tolist(), 1, ["doc_id", "page_start"])[0]
    assert (row["doc_id"], row["page_start"]) == ("b.md", 3)
    assert reopened.tally_by_version() == {("a.md", "h"): 1, ("b.md", "h2"): 1}
