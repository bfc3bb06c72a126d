"""The file manifest: which file versions are fully stored, and with which model.

Why in Milvus and not a side file: the manifest must travel with the data. Backing
up `milvus_data/`, or pointing RAG_MILVUS_URI at a Milvus server, carries it along,
and it can never disagree with the chunks because one database holds both.

One row per ingested file (keyed by its path relative to the ingested folder), one
row per file that failed (keyed "/failed/" + its path, so an unchanged bad file is
not read again on every run) and one metadata row recording the embedding model and
dimension of the collection.
A file's row is written only after all its chunks are stored; that ordering is
what makes a killed ingest safe to re-run.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from app.storage.chunk_store import quote

_META_KEY = "/collection-meta"  # relative file paths never start with "/"
_FAILED = "/failed/"
_VECTOR = [0.0, 0.0]  # Milvus requires a vector field; the manifest has no use for it


@dataclass
class FileRecord:
    path: str
    content_hash: str
    pipeline: str
    chunk_count: int
    page_count: int
    size_bytes: int
    kind: str
    ingested_at: float = field(default_factory=time.time)
    warnings: list[str] = field(default_factory=list)


@dataclass
class FailedFile:
    """A file version that could not be ingested, and why; `attempt` is the pipeline and the
    read limits it failed under (either changing tries it again)."""

    path: str
    content_hash: str
    attempt: str
    reason: str
    failed_at: float = field(default_factory=time.time)


@dataclass
class CollectionMeta:
    embedding_model: str
    dimension: int
    created_at: float = field(default_factory=time.time)


_QUERY_LIMIT = 16_384  # the most rows one Milvus query returns


class Catalog:
    def __init__(self, client: Any, chunk_collection: str):
        self.client = client
        self.collection = f"{chunk_collection}_files"

    def ensure(self) -> None:
        if self.client.has_collection(self.collection):
            self.client.load_collection(self.collection)
            return
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("path", DataType.VARCHAR, is_primary=True, max_length=4096)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=len(_VECTOR))
        schema.add_field("record", DataType.VARCHAR, max_length=65535)
        index = self.client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="L2")
        self.client.create_collection(self.collection, schema=schema, index_params=index,
                                      consistency_level="Strong")
        self.client.load_collection(self.collection)

    def exists(self) -> bool:
        return self.client.has_collection(self.collection)

    def drop(self) -> None:
        if self.exists():
            self.client.drop_collection(self.collection)

    # -- collection metadata ----------------------------------------------
    def meta(self) -> CollectionMeta | None:
        if not self.exists():
            return None
        rows = self.client.query(self.collection, filter=f"path == {quote(_META_KEY)}", output_fields=["record"])
        return CollectionMeta(**json.loads(rows[0]["record"])) if rows else None

    def set_meta(self, meta: CollectionMeta) -> None:
        self._upsert(_META_KEY, asdict(meta))

    # -- files --------------------------------------------------------------
    def files(self, consistency: str = "Strong") -> dict[str, FileRecord]:
        """`consistency`: "Strong" waits for every write made anywhere (what a writer needs);
        "Session" sees this process's own writes at once and other processes' soon after,
        without the wait a Milvus server puts on a strong read (~200 ms per request)."""
        return self.files_and_failures(consistency)[0]

    def failures(self) -> dict[str, FailedFile]:
        return self.files_and_failures()[1]

    def files_and_failures(self, consistency: str = "Strong") -> tuple[dict[str, FileRecord], dict[str, FailedFile]]:
        """Both, from one read of the manifest (an ingest run needs both)."""
        rows = self._rows(consistency)
        files = {key: FileRecord(**record) for key, record in rows.items() if not key.startswith("/")}
        failures = {key[len(_FAILED):]: FailedFile(**record) for key, record in rows.items()
                    if key.startswith(_FAILED)}
        return files, failures

    def put_failure(self, failure: FailedFile) -> None:
        self._upsert(_FAILED + failure.path, asdict(failure))

    def forget_failure(self, path: str) -> None:
        self.client.delete(self.collection, filter=f"path == {quote(_FAILED + path)}")

    def _rows(self, consistency: str = "Strong") -> dict[str, dict]:
        """Every row but the metadata, by key. One query while the manifest fits in one
        (Milvus returns at most 16,384 rows a query); an iterator beyond, which on a Milvus
        2.3 server costs about a second however small the manifest is."""
        if not self.exists():
            return {}
        where = f"path != {quote(_META_KEY)}"
        rows = self.client.query(self.collection, filter=where, output_fields=["path", "record"],
                                 limit=_QUERY_LIMIT, consistency_level=consistency)
        if len(rows) < _QUERY_LIMIT:
            return {row["path"]: json.loads(row["record"]) for row in rows}
        rows_by_key: dict[str, dict] = {}
        iterator = self.client.query_iterator(
            self.collection, batch_size=1000, filter=where,
            output_fields=["path", "record"], consistency_level=consistency,
        )
        try:
            while rows := iterator.next():
                for row in rows:
                    rows_by_key[row["path"]] = json.loads(row["record"])
        finally:
            iterator.close()
        return rows_by_key

    def put(self, record: FileRecord) -> None:
        self._upsert(record.path, asdict(record))

    def remove(self, path: str) -> None:
        self.client.delete(self.collection, filter=f"path == {quote(path)}")

    def _upsert(self, key: str, record: dict) -> None:
        self.client.upsert(self.collection, [{"path": key, "vec": _VECTOR, "record": json.dumps(record)}])
