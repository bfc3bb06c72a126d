"""Course documents as the API sees them: list, upload-and-ingest, delete.

Uploads are saved under the materials folder (`uploads/`), then the same ingest
pipeline as the CLI runs on that folder (unchanged files are skipped in
milliseconds), so a document uploaded in the browser and one ingested from the
shell end up identical.

An upload never replaces a file by accident: its name is reserved first (compared
after cleaning and without case, so "a?b.md" and "a_b.md", "x.PDF" and "x.pdf" are
one name), its bytes go to a hidden temporary file, and it is put in place with a
hard link, which fails if the name appeared meanwhile. Replacing is asked for
explicitly, and the earlier version is kept until the new one is ingested.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from app.ingestion.locking import ingest_lock
from app.ingestion.pipeline import Ingestor
from app.ingestion.progress import IngestReport
from app.ingestion.readers import SUPPORTED_EXTENSIONS
from app.settings import Settings
from app.storage.catalog import Catalog
from app.storage.chunk_store import ChunkStore
from app.storage.connection import lost_connection_explained

UPLOAD_SUBDIR = "uploads"
_TEMPORARY = re.compile(r"^\.(.+)\.([0-9a-f]{12})\.(part|previous)$")  # a pending upload's files


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


@dataclass
class PendingUpload:
    """A reserved name and its hidden temporary file, while the bytes arrive."""

    rel_path: str  # in the course: uploads/NAME
    target: Path
    temporary: Path
    replace: bool
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    size: int = 0

    def write(self, out, block: bytes) -> None:
        out.write(block)
        self.digest.update(block)
        self.size += len(block)


class DocumentService:
    def __init__(self, settings: Settings, ingestor: Ingestor, store: ChunkStore, db_path: Path | None):
        self.settings = settings
        self.ingestor = ingestor
        self.store = store
        self.catalog: Catalog = ingestor.catalog
        self.db_path = db_path
        self._reserved: set[str] = set()  # lower-cased names of uploads being received

    def list(self) -> list[dict]:
        return [
            {"file": r.path, "kind": r.kind, "pages": r.page_count, "chunks": r.chunk_count,
             "size_bytes": r.size_bytes, "ingested_at": r.ingested_at, "warnings": r.warnings}
            for r in sorted(self.catalog.files().values(), key=lambda r: r.path)
        ]

    def failures(self) -> list[dict]:
        """Files in the materials folder that could not be ingested, with the reason; each is
        read again only once it changes (or a read limit is raised)."""
        return [{"file": f.path, "reason": f.reason, "failed_at": f.failed_at}
                for f in sorted(self.catalog.failures().values(), key=lambda f: f.path)]

    def _in_materials(self, path: str) -> Path | None:
        """The file under the materials folder, or None if outside it or missing."""
        materials = self.settings.storage.materials_path.resolve()
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
        if candidate is not None and not (self.settings.storage.materials_path / path).is_symlink():
            candidate.unlink()
        return True

    def check_upload_name(self, filename: str) -> str:
        name = safe_filename(filename or "")
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED_EXTENSIONS:
            allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS))
            raise UploadRejected(f"'{filename}' is not a supported type; upload one of: {allowed}.", 415)
        return name

    def ingest_materials(self, listener=None) -> IngestReport:
        """Blocking: run the ingest pipeline on the materials folder (call in a thread)."""
        with ingest_lock(self.settings, self.db_path), lost_connection_explained(self.ingestor.database_label):
            return self.ingestor.run(self.settings.storage.materials_path, listener=listener)

    # -- uploads, step by step (the route streams the bytes between them) ---------
    def names_taken(self) -> dict[str, str]:
        """Lower-cased document paths in the course -> the path as stored: ingested ones
        and files already in the uploads folder (blocking; call in a thread)."""
        taken = {path.lower(): path for path in self.catalog.files()}
        folder = self.settings.storage.materials_path / UPLOAD_SUBDIR
        if folder.is_dir():
            for entry in folder.iterdir():
                if not entry.name.startswith("."):
                    rel = f"{UPLOAD_SUBDIR}/{entry.name}"
                    taken.setdefault(rel.lower(), rel)
        return taken

    def reserve(self, name: str, taken: dict[str, str], replace: bool) -> PendingUpload:
        """The name for an upload, held until `release`; 409 (UploadRejected) if another
        upload holds it, or a document has it and `replace` is not asked for. Runs on the
        event loop without awaiting, so two requests can never both reserve a name."""
        rel = f"{UPLOAD_SUBDIR}/{name}"
        key = rel.lower()
        if key in self._reserved:
            raise UploadRejected(f"'{rel}' is being uploaded right now; wait for that upload to finish.", 409)
        existing = taken.get(key)
        if existing is not None and not replace:
            raise UploadRejected(f"A document named '{existing}' already exists. Upload with replace=true to "
                                 "replace it, or rename the file.", 409)
        if existing is not None:
            rel = existing  # replacing keeps the stored name (its case too): one document, updated
        self._reserved.add(key)
        target = self.settings.storage.materials_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.urandom(6).hex()}.part")
        return PendingUpload(rel, target, temporary, replace)

    def release(self, upload: PendingUpload) -> None:
        self._reserved.discard(upload.rel_path.lower())
        upload.temporary.unlink(missing_ok=True)

    def duplicate_of(self, upload: PendingUpload) -> str | None:
        """The ingested document with exactly this content, if any other (blocking)."""
        digest = upload.digest.hexdigest()
        for path, record in self.catalog.files().items():
            if record.content_hash == digest and path.lower() != upload.rel_path.lower():
                return path
        return None

    def put_in_place(self, upload: PendingUpload) -> Path | None:
        """Move the received file to its name (blocking). A hard link cannot overwrite, so
        a file that appeared meanwhile (copied in by hand) is a 409, not lost. Replacing
        keeps the earlier version under a hidden name, returned, until the new one is in."""
        if upload.replace and upload.target.exists():
            kept = upload.target.with_name(f".{upload.target.name}.{os.urandom(6).hex()}.previous")
            os.link(upload.target, kept)
            os.replace(upload.temporary, upload.target)
            return kept
        try:
            os.link(upload.temporary, upload.target)
        except FileExistsError:
            raise UploadRejected(f"A file named '{upload.rel_path}' appeared while this one was uploaded. Upload "
                                 "with replace=true to replace it, or rename the file.", 409) from None
        upload.temporary.unlink()
        return None

    def clean_upload_folder(self) -> list[str]:
        """What a killed backend left of uploads in progress: temporary files go; an earlier
        version kept for a replacement goes too once the replacement is in place (the
        start-up check then ingests the new one). Returns the names removed."""
        folder = self.settings.storage.materials_path / UPLOAD_SUBDIR
        removed: list[str] = []
        if not folder.is_dir():
            return removed
        for entry in folder.iterdir():
            match = _TEMPORARY.match(entry.name)
            if not match:
                continue
            if match.group(3) == "previous" and not (folder / match.group(1)).exists():
                entry.replace(folder / match.group(1))  # the replacement never arrived: keep the old one
                continue
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
        return removed
