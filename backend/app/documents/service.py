"""Course documents as the API sees them: list, upload-and-ingest, delete.

Uploads are saved under the materials folder (`uploads/`), then the same ingest
pipeline as the CLI runs on that folder (unchanged files are skipped in
milliseconds), so a document uploaded in the browser and one ingested from the
shell end up identical.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from app.ingestion.locking import exclusive_ingest
from app.ingestion.pipeline import Ingestor
from app.ingestion.progress import IngestReport
from app.ingestion.readers import SUPPORTED_EXTENSIONS
from app.settings import Settings
from app.storage.catalog import Catalog
from app.storage.chunk_store import ChunkStore

UPLOAD_SUBDIR = "uploads"


class UploadRejected(ValueError):
    """The upload is refused; the message says why (HTTP 400/413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_filename(name: str) -> str:
    """A plain file name: no folders, no leading dots, no odd characters."""
    name = unicodedata.normalize("NFKC", Path(name.replace("\\", "/")).name)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    stem = re.sub(r"[^\w\- ]+", "_", stem, flags=re.UNICODE).strip(" ._") or "document"
    ext = re.sub(r"[^A-Za-z0-9]", "", ext).lower()
    return f"{stem[:120]}.{ext}" if ext else stem[:120]


def check_document_path(path: str) -> str:
    """A document path as the manifest keys it (relative, '/'-separated), or 400:
    nothing absolute, no '..', no NUL or control characters, nothing absurdly long."""
    if len(path) > 1024:
        raise UploadRejected("That file name is too long.", 400)
    parts = path.replace("\\", "/").split("/")
    if (not path or path.startswith("/") or any(ord(c) < 32 for c in path)
            or any(p in ("", ".", "..") for p in parts)):
        raise UploadRejected(f"'{path[:200]}' is not a document path.", 400)
    return path


class DocumentService:
    def __init__(self, settings: Settings, ingestor: Ingestor, store: ChunkStore, db_path: Path | None):
        self.settings = settings
        self.ingestor = ingestor
        self.store = store
        self.catalog: Catalog = ingestor.catalog
        self.db_path = db_path

    def list(self) -> list[dict]:
        return [
            {"file": r.path, "kind": r.kind, "pages": r.page_count, "chunks": r.chunk_count,
             "size_bytes": r.size_bytes, "ingested_at": r.ingested_at, "warnings": r.warnings}
            for r in sorted(self.catalog.files().values(), key=lambda r: r.path)
        ]

    def _in_materials(self, path: str) -> Path | None:
        """The file under the materials folder, or None if outside it or missing."""
        materials = self.settings.materials_path.resolve()
        candidate = (materials / path).resolve()
        return candidate if candidate.is_relative_to(materials) and candidate.is_file() else None

    def original(self, path: str) -> Path | None:
        """An ingested document's file, for opening a cited page (never anything else)."""
        if path not in self.catalog.files():
            return None
        return self._in_materials(path)

    def delete(self, path: str) -> bool:
        """Remove an ingested document: its chunks, its manifest row and its file in the
        materials folder. Anything never ingested is left alone (False)."""
        if path not in self.catalog.files():
            return False
        self.store.delete_file(path)
        self.catalog.remove(path)
        self.ingestor.keyword_index().sync_saved()
        candidate = self._in_materials(path)
        if candidate is not None and not (self.settings.materials_path / path).is_symlink():
            candidate.unlink()
        return True

    def check_upload_name(self, filename: str) -> str:
        name = safe_filename(filename or "")
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise UploadRejected(f"'{filename}' is not a supported type; upload one of: {allowed}.", 415)
        return name

    def upload_path(self, name: str) -> Path:
        folder = self.settings.materials_path / UPLOAD_SUBDIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def ingest_materials(self) -> IngestReport:
        """Blocking: run the ingest pipeline on the materials folder (call in a thread)."""
        with exclusive_ingest(self.db_path):
            return self.ingestor.run(self.settings.materials_path)
