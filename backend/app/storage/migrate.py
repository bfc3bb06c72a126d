"""Copy a course's database (chunks and manifest) into a Milvus server: the step from one
pod's Milvus Lite file to a server several backends share.

    cd backend && python -m app.storage.migrate --to http://milvus-host:19530 [--token T] [--course NAME]

The source is the configured database (RAG_MILVUS_URI, usually the Lite file). Chunks are
copied first and the manifest after them, the order ingest itself keeps, so a copy that
stops half way is found out (counts differ) and the target's collection can be dropped and
the copy run again. Nothing is re-embedded: the vectors travel as they are. At the end the
row counts are compared and one stored vector is searched on both, which must return the
same passages. Then set RAG_MILVUS_URI to the server; each backend rebuilds its keyword
index from it at start.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.errors import ApplianceError
from app.storage.catalog import Catalog
from app.storage.chunk_store import ChunkStore

BATCH = 1000


class MigrationError(ApplianceError):
    """A copy that cannot start or did not come out equal; the message says what to do."""


def copy_course(source: Any, target: Any, collection: str, say=print) -> tuple[int, int]:
    """Copy one course's chunk collection and manifest from `source` to `target` (two
    MilvusClients); returns (chunks, manifest rows) copied after checking both."""
    chunks_from = ChunkStore(source, collection, 0, BATCH)
    dimension = chunks_from.stored_dimension()
    if dimension is None:
        raise MigrationError(f"The source has no collection '{collection}': nothing to copy.")
    manifest_from, manifest_to = Catalog(source, collection), Catalog(target, collection)
    for name in (collection, manifest_to.collection):
        if target.has_collection(name):
            raise MigrationError(f"The target already has a collection '{name}'. Choose another "
                                 "RAG_COLLECTION_NAME, or drop it there first (nothing was copied).")
    chunks_to = ChunkStore(target, collection, dimension, BATCH, metric=chunks_from.metric)
    chunks_to.ensure_collection()
    total = chunks_from.count()
    copied = 0
    for rows in _batches(source, collection, ["*"]):
        chunks_to.add(rows)
        copied += len(rows)
        say(f"  chunks: {copied:,} of {total:,}")
    manifest_to.ensure()
    manifest_rows = 0
    for rows in _batches(source, manifest_from.collection, ["path", "vec", "record"]):
        target.insert(manifest_to.collection, rows)
        manifest_rows += len(rows)
    _check(chunks_from, chunks_to, source, target, manifest_from.collection)
    return copied, manifest_rows


def _batches(client: Any, collection: str, fields: list[str]):
    iterator = client.query_iterator(collection, batch_size=BATCH, filter="", output_fields=fields)
    try:
        while rows := iterator.next():
            yield [dict(row) for row in rows]
    finally:
        iterator.close()


def _check(chunks_from: ChunkStore, chunks_to: ChunkStore, source: Any, target: Any, manifest: str) -> None:
    """Equal counts, and one stored vector finds the same passages on both."""
    counts = [(chunks_from.count(), chunks_to.count())]
    counts.append(tuple(int(c.query(manifest, filter="", output_fields=["count(*)"])[0]["count(*)"])
                        for c in (source, target)))
    if any(a != b for a, b in counts):
        raise MigrationError(f"The copy is not complete (chunks {counts[0][0]} vs {counts[0][1]}, manifest rows "
                             f"{counts[1][0]} vs {counts[1][1]}): drop the target's collections and run it again.")
    probe = source.query(chunks_from.collection, filter="", output_fields=["embedding"], limit=1)
    if probe:
        vector = list(probe[0]["embedding"])
        found = [[row["id"] for row, _ in store.search(vector, 5, ["id"])] for store in (chunks_from, chunks_to)]
        if found[0] != found[1]:
            raise MigrationError(f"A search on the copy returns other passages ({found[1]} vs {found[0]}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.storage.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", required=True, help="the Milvus server's URI, e.g. http://milvus-host:19530")
    parser.add_argument("--token", default="", help="its token (Zilliz Cloud: the API key, or user:password)")
    parser.add_argument("--course", default=None, help="the course to copy (default: the default course)")
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from app.courses.course import course_settings
    from app.settings import explain, get_settings
    from app.storage.connection import MilvusTarget, connect, resolve_target

    try:
        settings = course_settings(get_settings(), args.course)
    except ValidationError as exc:
        print(f"error: invalid configuration: {explain(exc)}", file=sys.stderr)
        return 2
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.to.startswith(("http://", "https://", "tcp://", "grpc://")):
        print("error: --to must be a Milvus server's URI (http://host:19530 or https://...).", file=sys.stderr)
        return 2
    from_target = resolve_target(settings)
    to_target = MilvusTarget(uri=args.to, token=args.token, mode="remote")
    timeout = settings.storage.milvus_connect_timeout_s
    try:
        source = connect(from_target, timeout)
        target = connect(to_target, timeout)
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    collection = settings.storage.collection_name
    print(f"Copying '{collection}' from {from_target.describe()} to {args.to} …")
    try:
        chunks, manifest_rows = copy_course(source, target, collection)
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        source.close()
        target.close()
    print(f"Done: {chunks:,} chunks and {manifest_rows:,} manifest rows copied; the counts match and a "
          "search returns the same passages on both.")
    print(f"Next: set RAG_MILVUS_URI={args.to} (and RAG_MILVUS_TOKEN if it needs one) in .env and restart.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
