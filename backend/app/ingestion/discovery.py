"""Find the files to ingest under a folder and fingerprint them.

Hidden files and folders (".git", ".DS_Store"), editor lock files ("~$notes.docx")
and unsupported extensions are skipped and counted, so the summary can say what
was left out. Folder symlinks are not followed (no loops); file symlinks are.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from app.ingestion.readers import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class SourceFile:
    """A candidate file: `rel_path` (POSIX, relative to the ingested folder) is its key."""

    rel_path: str
    abs_path: Path
    size_bytes: int

    @property
    def kind(self) -> str:
        return self.abs_path.suffix.lower().lstrip(".")


@dataclass
class Discovery:
    files: list[SourceFile] = field(default_factory=list)
    hidden_skipped: int = 0
    unsupported_skipped: Counter[str] = field(default_factory=Counter)
    unreadable: dict[str, str] = field(default_factory=dict)  # rel_path -> reason


def discover(root: Path) -> Discovery:
    found = Discovery()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        hidden_dirs = [d for d in dirnames if d.startswith(".")]
        found.hidden_skipped += len(hidden_dirs)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.startswith(".") or name.startswith("~$"):
                found.hidden_skipped += 1
                continue
            suffix = path.suffix.lower()
            if suffix not in SUPPORTED_EXTENSIONS:
                found.unsupported_skipped[suffix or "(no extension)"] += 1
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                found.unreadable[rel] = "broken link or file vanished"
                continue
            except OSError as exc:
                found.unreadable[rel] = f"cannot read: {exc.strerror or exc}"
                continue
            found.files.append(SourceFile(rel_path=rel, abs_path=path, size_bytes=size))
    return found


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes (the manifest key with the path)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
