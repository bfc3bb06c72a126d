"""`python -m app.appliance COMMAND`: small jobs for runpod_simple_startup.sh.

  config        print the settings the script needs, as shell assignments
  model [--gpu] print the GGUF path to serve (downloading it on a GPU pod)
  reranker [--gpu]  print the cross-encoder to turn on, fetched (nothing: none; exit 1: unavailable)
  chunks [DIR]  print how many chunks the database holds, and how many of its files an older
                ingest (another version or chunk size) made, in DIR and elsewhere:
                "CHUNKS OLDER_IN_DIR OLDER_ELSEWHERE" ("0 0 0" if there is no database)
  gpu-check     exit 0 if llama-cpp-python can offload to the GPU
  admin-key [--rotate] [--rotate-code]
                print the instructor key (and the access code in code mode), made on first
                use; --rotate replaces the key (every unlocked browser is locked again),
                --rotate-code replaces a generated access code
  llm-key       print the key the LLM server requires when RAG_LLM_EXPOSE is on
  llm-check     exit 0 if the LLM server at RAG_LLM_BASE_URL answers (with RAG_LLM_API_KEY) and
                print its first model; else print why and exit 1
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def _config() -> int:
    from app.cpus import usable_cores
    from app.settings import get_settings

    s = get_settings()
    values = {
        "LLM_PORT": s.llm.llm_port,
        "BACKEND_PORT": s.appliance.backend_port,
        "LLM_CONTEXT": s.llm.llm_context_window,
        "LLM_GPU_LAYERS": s.llm.llm_gpu_layers,
        "LLM_SERVER": s.llm.llm_server,
        "LLM_BASE_URL": s.llm.llm_base_url.rstrip("/"),
        # whether the user chose these (environment or .env): the script's machine-dependent
        # defaults must not override a choice
        "CONDENSE_MODE_SET": int(s.is_set("condense_mode")),
        "RERANKER_SET": int(s.is_set("reranker_model")),
        "TOP_K_SET": int(s.is_set("top_k")),
        "ANSWERS_SET": int(s.is_set("max_concurrent_answers")),
        "GPU_TOP_K": s.retrieval.gpu_top_k,
        "LLM_PARALLEL": s.llm.llm_parallel,
        "LLM_THREADS": s.llm.llm_threads or usable_cores(),
        "MATERIALS_DIR": s.storage.materials_path,
        "DB_IS_LOCAL": int(s.storage.milvus_is_local_file),
        "DB_PATH": s.storage.milvus_db_path if s.storage.milvus_is_local_file else "",
        # Only the backend faces the network; the LLM server only when asked (with a key).
        "LLM_HOST": "0.0.0.0" if s.llm.llm_expose else "127.0.0.1",
        "STUDENT_ACCESS": s.access.student_access,
    }
    for key, value in values.items():
        print(f"{key}={shlex.quote(str(value))}")
    return 0


def _chunks(materials: str | None) -> int:
    import logging

    from app.ingestion.pipeline import pipeline_fingerprint
    from app.settings import get_settings
    from app.storage.catalog import Catalog
    from app.storage.chunk_store import ChunkStore
    from app.storage.connection import connect, resolve_target

    logging.disable(logging.CRITICAL)
    s = get_settings()
    target = resolve_target(s)
    if target.mode == "embedded" and not (target.db_path and target.db_path.exists()):
        print(0, 0, 0)
        return 0
    client = connect(target, s.storage.milvus_connect_timeout_s)
    try:
        chunks = ChunkStore(client, s.storage.collection_name, 0, 1).count()
        catalog = Catalog(client, s.storage.collection_name)
        current = pipeline_fingerprint(s)
        older = [path for path, r in catalog.files().items() if r.pipeline != current] if catalog.exists() else []
        # the manifest keeps paths relative to the folder ingested: one that is in DIR came from it
        here = sum(1 for path in older if materials and (Path(materials) / path).is_file())
        print(chunks, here, len(older) - here)
    finally:
        client.close()
    return 0


def _admin_key(args: list[str]) -> int:
    from app.access.keys import ACCESS_CODE, INSTRUCTOR_KEY, AccessKeys, rotate
    from app.settings import get_settings

    s = get_settings()
    unknown = [a for a in args if a not in ("--rotate", "--rotate-code")]
    if unknown:
        print(f"admin-key takes --rotate and --rotate-code, not {' '.join(unknown)}", file=sys.stderr)
        return 2
    if "--rotate" in args:
        rotate(s.access.access_path, INSTRUCTOR_KEY)
        print("The instructor key was replaced; browsers unlocked with the old one are locked again.",
              file=sys.stderr)
    if "--rotate-code" in args:
        if s.access.access_code:
            print("RAG_ACCESS_CODE sets the code: change it there.", file=sys.stderr)
            return 2
        rotate(s.access.access_path, ACCESS_CODE)
        print("The access code was replaced; students enter the new one.", file=sys.stderr)
    keys = AccessKeys(s.access.access_path, s.access.access_code.get_secret_value() if s.access.access_code else None)
    print(f"instructor key: {keys.instructor_key}")
    if s.access.student_access == "code":
        print(f"access code   : {keys.access_code}")
    else:
        print("students      : open chat (RAG_STUDENT_ACCESS=code asks them for an access code)")
    print(f"kept in       : {s.access.access_path / INSTRUCTOR_KEY} (mode 0600)")
    return 0


def _llm_key() -> int:
    from app.access.keys import read_or_create
    from app.settings import get_settings

    s = get_settings()
    print(s.llm.llm_api_key.get_secret_value() if s.llm.llm_api_key else read_or_create(s.access.access_path, "llm.key"))
    return 0


def _llm_check() -> int:
    """For RAG_LLM_SERVER=external: the server is someone else's to start, so say whether it
    answers, as the backend will ask it (same URL, same key)."""
    import asyncio

    from app.errors import ApplianceError
    from app.llm.client import LLMClient
    from app.settings import get_settings

    async def check() -> str:
        client = LLMClient(get_settings())
        try:
            return await client.model_name()
        finally:
            await client.aclose()

    try:
        print(asyncio.run(check()))
        return 0
    except ApplianceError as exc:
        print(str(exc))
        return 1


def _gpu_check() -> int:
    import llama_cpp

    ok = bool(llama_cpp.llama_supports_gpu_offload())
    print("gpu offload: yes" if ok else "gpu offload: NO (CPU-only build)")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "config":
        from pydantic import ValidationError

        from app.settings import explain

        try:
            return _config()
        except ValidationError as exc:  # a bad .env or RAG_* value: the startup script stops here
            print(f"error: invalid configuration: {explain(exc)}", file=sys.stderr)
            return 2
    if command == "model":
        from app.appliance.models import main as model_main

        return model_main(rest)
    if command == "reranker":
        from app.appliance.models import reranker_main

        return reranker_main(rest)
    if command == "chunks":
        return _chunks(rest[0] if rest else None)
    if command == "gpu-check":
        return _gpu_check()
    if command == "admin-key":
        return _admin_key(rest)
    if command == "llm-key":
        return _llm_key()
    if command == "llm-check":
        return _llm_check()
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
