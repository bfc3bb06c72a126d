"""The chunk collection, through pymilvus alone: its schema, writes, deletes and searches.

Each row: id (stable chunk id), doc_id (the file's path relative to the ingested
folder), file_hash, text, embedding, and the chunk's metadata (pages, page label,
heading, token count, OCR pages) as dynamic fields. The schema is the one collections
made by earlier versions through llama-index's MilvusVectorStore have, so they are read
and written alike (their extra `_node_content` copies are ignored).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

FILE_FIELD = "doc_id"  # the file's path in the course
HASH_FIELD = "file_hash"
MAX_TEXT = 65_535  # VARCHAR length of the id, path, hash and text columns


def quote(value: str) -> str:
    """A Milvus filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ChunkStore:
    def __init__(self, client: Any, collection: str, dim: int, insert_batch_size: int,
                 vector_index: str = "FLAT", ivf_nlist: int = 1024, ivf_nprobe: int = 32,
                 metric: str | None = None):
        """`metric`: for a new collection only (a copy keeps its source's); default inner product."""
        self.client = client
        self.collection = collection
        self.dim = dim
        self._insert_batch_size = insert_batch_size
        # FLAT: exact search. IVF_FLAT: clustered, searches `nprobe` of `nlist` clusters
        # (applies when the collection is created; see docs/DESIGN.md for recall and speed).
        self._index_config = {"index_type": vector_index}
        self._search_config: dict = {}
        if vector_index == "IVF_FLAT":
            self._index_config["nlist"] = ivf_nlist
            self._search_config = {"nprobe": ivf_nprobe}
        self._ready = False
        self._new_metric = metric or "IP"
        self._metric: str | None = None

    # -- schema --------------------------------------------------------------
    def exists(self) -> bool:
        return self.client.has_collection(self.collection)

    def stored_dimension(self) -> int | None:
        """The vector dimension of an existing collection, read from its schema."""
        if not self.exists():
            return None
        for fld in self.client.describe_collection(self.collection)["fields"]:
            if fld.get("name") == "embedding":
                return int(fld["params"]["dim"])
        return None

    @property
    def metric(self) -> str:
        """The collection's similarity metric. New collections use inner product: the
        embedder writes unit-length vectors, so it equals cosine, and exact search skips
        normalising every stored vector per query (24 -> 17 ms at 100k chunks here).
        Older collections keep the COSINE they were created with."""
        if self._metric is None:
            metric = self._new_metric
            if self.exists():
                for name in self.client.list_indexes(self.collection, field_name="embedding") or []:
                    metric = self.client.describe_index(self.collection, name).get("metric_type") or "COSINE"
            self._metric = metric
        return self._metric

    def ensure_collection(self) -> None:
        """Create the collection and its vector index when missing, and load it (after a
        restart Milvus reports a collection 'released' until it is loaded)."""
        if self._ready:
            return
        from pymilvus import DataType

        if not self.exists():
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=True)
            schema.add_field(field_name="id", datatype=DataType.VARCHAR, max_length=MAX_TEXT, is_primary=True)
            schema.add_field(field_name=FILE_FIELD, datatype=DataType.VARCHAR, max_length=MAX_TEXT)
            schema.add_field(field_name="text", datatype=DataType.VARCHAR, max_length=MAX_TEXT)
            schema.add_field(field_name=HASH_FIELD, datatype=DataType.VARCHAR, max_length=MAX_TEXT)
            schema.add_field(field_name="embedding", datatype=DataType.FLOAT_VECTOR, dim=self.dim)
            index = self.client.prepare_index_params()
            params = {key: value for key, value in self._index_config.items() if key != "index_type"}
            index.add_index(field_name="embedding", index_name="embedding", metric_type=self.metric,
                            index_type=self._index_config["index_type"], **({"params": params} if params else {}))
            self.client.create_collection(self.collection, schema=schema, index_params=index,
                                          consistency_level="Strong")
        self.client.load_collection(self.collection)
        self._ready = True

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.collection)
        self._ready = False
        self._metric = None

    # -- writes --------------------------------------------------------------
    def add(self, rows: list[dict]) -> None:
        """Insert chunk rows (id, doc_id, file_hash, text, embedding, metadata), in batches."""
        self.ensure_collection()
        for start in range(0, len(rows), self._insert_batch_size):
            self.client.insert(self.collection, rows[start:start + self._insert_batch_size])

    def delete_file(self, path: str, keep_hash: str | None = None, only_hash: str | None = None) -> None:
        """Delete a file's chunks; optionally keep one version or touch only one."""
        expr = f"{FILE_FIELD} == {quote(path)}"
        if keep_hash:
            expr += f" and {HASH_FIELD} != {quote(keep_hash)}"
        if only_hash:
            expr += f" and {HASH_FIELD} == {quote(only_hash)}"
        self.client.delete(self.collection, filter=expr)

    def delete_versions(self, versions: Iterable[tuple[str, str]]) -> None:
        for path, file_hash in versions:
            self.delete_file(path, only_hash=file_hash)

    # -- reads ---------------------------------------------------------------
    def search(self, vector: list[float], limit: int, output_fields: list[str]) -> list[tuple[dict, float]]:
        """Nearest chunks as (row, similarity), best first."""
        return self.search_many([vector], limit, output_fields)[0]

    def search_many(self, vectors: list[list[float]], limit: int,
                    output_fields: list[str]) -> list[list[tuple[dict, float]]]:
        """`search` for several vectors in one request: an exact search reads the
        collection once for all of them (at 100k chunks, 4 vectors cost about twice one)."""
        self.ensure_collection()
        hits = self.client.search(
            self.collection, vectors, limit=limit, output_fields=output_fields, anns_field="embedding",
            # no metric_type: Milvus uses the index's own, so a collection another process
            # re-created (ingest --reset) with a different metric is still searched right
            search_params={"params": dict(self._search_config)},
            # Session: this process's own writes (an upload just ingested) are seen at once,
            # others' within moments; a strong read waits ~200 ms per request on a server.
            consistency_level="Session",
        )
        hits = list(hits or [])
        hits += [[] for _ in range(len(vectors) - len(hits))]
        return [[({"id": h["id"], **h["entity"]}, float(h["distance"])) for h in found] for found in hits]

    def count(self) -> int:
        if not self.exists():
            return 0
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def tally_by_version(self) -> Counter[tuple[str, str]]:
        """Chunks per (file path, content hash): a full scan, used only for repair."""
        tally: Counter[tuple[str, str]] = Counter()
        iterator = self.client.query_iterator(
            self.collection, batch_size=2000, filter="", output_fields=[FILE_FIELD, HASH_FIELD]
        )
        try:
            while rows := iterator.next():
                tally.update((row[FILE_FIELD], row.get(HASH_FIELD) or "") for row in rows)
        finally:
            iterator.close()
        return tally
