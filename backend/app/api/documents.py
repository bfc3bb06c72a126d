"""Ingested documents: list, upload (then ingest), delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile

from app.api.deps import get_services
from app.documents.service import UploadRejected
from app.services import Services

router = APIRouter(prefix="/api/documents", tags=["documents"])


@router.get("", summary="Ingested documents with pages, chunks and ingest time")
async def list_documents(services: Services = Depends(get_services)) -> list[dict]:
    return await asyncio.to_thread(services.documents.list)


@router.post("", status_code=201, summary="Upload a document and ingest it")
async def upload_document(file: UploadFile = File(...), services: Services = Depends(get_services)) -> dict:
    """Saved under the materials folder's `uploads/`, then ingested like the CLI does.
    Returns the ingest summary; 413 if too large, 415 if the type is not supported."""
    documents = services.documents
    try:
        name = documents.check_upload_name(file.filename or "")
    except UploadRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None
    limit = services.settings.max_upload_mb * 1024 * 1024
    target = documents.upload_path(name)
    partial = target.with_name(f".{target.name}.part")
    size = 0
    try:
        with open(partial, "wb") as out:
            while block := await file.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise HTTPException(413, f"The file is larger than the {services.settings.max_upload_mb} MB limit.")
                out.write(block)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    async with services.ingest_lock:
        report = await asyncio.to_thread(documents.ingest_materials)
    rel = target.relative_to(services.settings.materials_path).as_posix()
    if rel in report.failed:
        target.unlink(missing_ok=True)
        raise HTTPException(422, f"'{file.filename}' could not be ingested: {report.failed[rel]}")
    return {"file": rel, "size_bytes": size, "ingest": report.to_dict()}


@router.delete("/{path:path}", status_code=204, summary="Delete a document and its chunks")
async def delete_document(path: str, services: Services = Depends(get_services)) -> None:
    async with services.ingest_lock:
        found = await asyncio.to_thread(services.documents.delete, path)
    if not found:
        raise HTTPException(404, f"No document '{path}'.")
