"""Where the Milvus Lite engine writes its logs, and how much of them is kept.

Why: the engine logs through glog, which writes to /tmp by default, a new file per
start and without end. The appliance's logs belong under logs/ with the others, and a
pod that runs for a term must not fill its disk with them: glog starts a new file
every MAX_FILE_MB, and only the newest KEEP_FILES engine log files are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_FILE_MB = 10
KEEP_FILES = 12
_PREFIX = "milvus."


def engine_log_env(logs_dir: Path) -> dict[str, str]:
    """Environment for an engine process (glog reads its flags from GLOG_*)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    return {"GLOG_log_dir": str(logs_dir), "GLOG_max_log_size": str(MAX_FILE_MB)}


def use_for_this_process(logs_dir: Path) -> None:
    """Engines this process starts (Milvus Lite's embedded mode) log under `logs_dir`."""
    os.environ.update(engine_log_env(logs_dir))
    prune(logs_dir)


def prune(logs_dir: Path, keep: int = KEEP_FILES) -> list[Path]:
    """Delete all but the newest `keep` engine log files (glog's links to the current
    files are left alone); returns the deleted ones."""
    try:
        files = [p for p in logs_dir.iterdir() if p.name.startswith(_PREFIX) and p.is_file() and not p.is_symlink()]
    except OSError:
        return []
    files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in files[keep:]:
        try:
            old.unlink()
            removed.append(old)
        except OSError:
            pass
    for link in logs_dir.glob(f"{_PREFIX}*"):
        if link.is_symlink() and not link.exists():
            link.unlink(missing_ok=True)
    return removed
