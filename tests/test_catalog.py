"""The manifest read on Milvus Lite: one query while it fits in one, an iterator beyond."""

from __future__ import annotations

import json
from dataclasses import asdict


def test_a_manifest_larger_than_one_query_is_read_whole(tmp_path):
    from pymilvus import MilvusClient

    from app.storage.catalog import _QUERY_LIMIT, Catalog, FailedFile, FileRecord

    client = MilvusClient(str(tmp_path / "manifest.db"))
    try:
        catalog = Catalog(client, "chunks")
        catalog.ensure()
        records = [FileRecord(f"notes/{i:05d}.md", f"h{i}", "p", 3, 1, 100, "md") for i in range(_QUERY_LIMIT + 20)]
        for start in range(0, len(records), 4000):
            client.insert(catalog.collection, [{"path": r.path, "vec": [0.0, 0.0], "record": json.dumps(asdict(r))}
                                               for r in records[start:start + 4000]])
        catalog.put_failure(FailedFile("broken.pdf", "hx", "p", "unreadable"))
        files, failures = catalog.files_and_failures()
        assert len(files) == _QUERY_LIMIT + 20 and files["notes/16403.md"].content_hash == "h16403"
        assert list(failures) == ["broken.pdf"]
        assert catalog.files("Session") == files

        client.delete(catalog.collection, filter='path >= "notes/00100"')  # now one query reads it all
        assert sorted(catalog.files()) == [r.path for r in records[:100]]
    finally:
        client.close()
