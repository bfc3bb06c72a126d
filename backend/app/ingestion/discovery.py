"""Find the files to ingest under a folder and fingerprint them.

Hidden files and folders (".git", ".DS_Store"), editor lock files ("~$notes.docx")
and unsupported extensions are skipped and counted, so the summary can say what
was left out. Only regular files are read: a FIFO, socket or device would block or
never end, so it is named as skipped instead. Folder symlinks are not followed (no
loops); a file symlink is followed only when its target is inside the folder, so a
link to /etc/passwd can never put a system file's text into answers.
"""

from __future__ import annotations

import hashlib
import os
import stat
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


def discover(root: Path, links_into: Path | None = None) -> Discovery:
    """`links_into`: a second folder file links may point into (the evaluation mirrors a
    corpus folder with links); never set for course materials."""
    found = Discovery()
    inside = [root.resolve()] + ([links_into.resolve()] if links_into else [])
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
                info = path.stat()  # follows a link: what would be read
                leaves = path.is_symlink() and not any(path.resolve().is_relative_to(i) for i in inside)
            except FileNotFoundError:
                found.unreadable[rel] = "broken link or file vanished"
                continue
            except OSError as exc:
                found.unreadable[rel] = f"cannot read: {exc.strerror or exc}"
                continue
            if leaves:
                found.unreadable[rel] = "a link to a file outside the materials folder (not followed)"
            elif not stat.S_ISREG(info.st_mode):
                found.unreadable[rel] = f"not a regular file ({_file_type(info.st_mode)}); only files are read"
            else:
                found.files.append(SourceFile(rel_path=rel, abs_path=path, size_bytes=info.st_size))
    return found


def _file_type(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a plain file"


def content_hash(path: Path) -> str:
    """SHA-256 of the file's bytes (the manifest key with the path)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
