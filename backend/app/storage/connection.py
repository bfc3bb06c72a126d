"""Decide how to reach the vector database, and open a client with clear errors.

Three ways, chosen by configuration only:
- remote: RAG_MILVUS_URI is http(s)://… (a Milvus server or Zilliz Cloud, with a token);
- shared: the URI is a Milvus Lite file and a shared server serves it (the backend runs
  one, see lite_server.py): connect to that server over gRPC;
- embedded: the URI is a Milvus Lite file nobody holds: open it in this process.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.errors import ConfigurationError, DatabaseBusyError, StorageUnavailableError
from app.settings import Settings
from app.storage import engine_logs, lite_server

Mode = Literal["remote", "shared", "embedded"]


@dataclass(frozen=True)
class MilvusTarget:
    """Where to connect, and how we got there (shown to users in summaries)."""

    uri: str
    token: str
    mode: Mode
    db_path: Path | None = None
    logs_dir: Path | None = None  # where an embedded engine started here logs

    def describe(self) -> str:
        if self.mode == "remote":
            return self.uri
        suffix = " (through the running shared server)" if self.mode == "shared" else ""
        return f"{self.db_path}{suffix}"


def resolve_target(settings: Settings) -> MilvusTarget:
    token = settings.storage.milvus_token.get_secret_value() if settings.storage.milvus_token else ""
    if not settings.storage.milvus_is_local_file:
        return MilvusTarget(uri=settings.storage.milvus_uri, token=token, mode="remote")
    db_path = settings.storage.milvus_db_path
    _check_lite_file_name(db_path)
    server = lite_server.running_server(db_path)
    if server:
        return MilvusTarget(uri=server.uri, token="", mode="shared", db_path=db_path)
    return MilvusTarget(uri=str(db_path), token="", mode="embedded", db_path=db_path, logs_dir=settings.storage.logs_path)


def _check_lite_file_name(db_path: Path) -> None:
    """Milvus Lite's own limits on the file name, checked early with a clear message."""
    import re

    if not db_path.name.endswith(".db"):
        raise ConfigurationError(
            f"RAG_MILVUS_URI={db_path} must end in .db (a Milvus Lite file) "
            "or be a server URI such as http://localhost:19530."
        )
    if not re.fullmatch(r"[A-Za-z0-9.\-_]{1,35}", db_path.name):
        raise ConfigurationError(
            f"Milvus Lite file name '{db_path.name}' must be at most 35 characters of "
            "letters, digits, '.', '-' or '_'."
        )
    if db_path.exists() and not db_path.is_file():
        raise ConfigurationError(f"{db_path} exists but is not a file.")


def connect(target: MilvusTarget, timeout_s: float):
    """Open a MilvusClient for `target`; raise a plain-language error if we cannot."""
    import warnings

    # milvus-lite 2.5 imports pkg_resources, which warns on every start; nothing to act on.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    # gRPC's C core prints keepalive chatter ("too_many_pings" GOAWAY, after which the
    # channel simply reconnects) straight to stderr in the middle of progress bars.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if target.mode == "embedded":
        assert target.db_path is not None
        target.db_path.parent.mkdir(parents=True, exist_ok=True)
        if target.logs_dir is not None:
            engine_logs.use_for_this_process(target.logs_dir)
        if lite_server.lock_is_held(target.db_path):
            raise DatabaseBusyError(
                f"The database {target.db_path} is open in another process that does not share it "
                "(another ingest run, or a program that opened it directly). Wait for it to finish "
                "or stop it. The appliance's backend shares the database automatically, so ingest "
                "works while it runs."
            )
    # pymilvus logs connection failures with a full traceback at ERROR level before
    # raising; we report them ourselves in one line.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    try:
        return MilvusClient(uri=target.uri, token=target.token, timeout=timeout_s)
    except MilvusException as exc:
        raise StorageUnavailableError(_explain(target, exc)) from exc
    except Exception as exc:  # grpc and socket errors come in many types
        raise StorageUnavailableError(_explain(target, exc)) from exc


@contextmanager
def lost_connection_explained(where: str):
    """Turn a Milvus error in the block (a server that stopped answering mid-run) into a
    plain StorageUnavailableError naming `where`: the CLI exits 2 with one line, a job
    fails with it, and the next run completes what this one left (files are recorded
    only once stored)."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as exc:
        reason = " ".join((getattr(exc, "message", None) or str(exc)).split())[:200]
        raise StorageUnavailableError(
            f"Lost the connection to Milvus at {where}: {reason}. The files finished so far are saved; "
            "run the same ingest again when it answers, and it completes the rest.") from exc


def _explain(target: MilvusTarget, exc: Exception) -> str:
    reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    reason = " ".join(reason.split())[:300]
    if target.mode == "remote":
        return (
            f"Cannot reach Milvus at {target.uri}: {reason}. Check that the server is running and "
            "that RAG_MILVUS_URI (and RAG_MILVUS_TOKEN for Zilliz Cloud) are right."
        )
    if target.mode == "shared":
        return f"The shared Milvus Lite server at {target.uri} did not answer: {reason}."
    return f"Cannot open the Milvus Lite database {target.db_path}: {reason}."
