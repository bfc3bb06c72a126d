"""Ingested documents: list, upload (then ingest), delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile
from fastapi.responses import FileResponse

from app.api.deps import get_services
from app.documents.service import UploadRejected
from app.services import Services

router = APIRouter(prefix="/api/documents", tags=["documents"])


@router.get("", summary="Ingested documents with pages, chunks and ingest time")
async def list_documents(services: Services = Depends(get_services)) -> list[dict]:
    return await asyncio.to_thread(services.documents.list)


@router.get("/file/{path:path}", summary="The original file, to open a cited page")
async def original_file(path: str, services: Services = Depends(get_services)) -> FileResponse:
    """Served inline, so a browser opens a PDF at `#page=N` from a citation."""
    found = await asyncio.to_thread(services.documents.original, path)
    if found is None:
        raise HTTPException(404, f"'{path}' is not in the course materials folder.")
    if found.suffix.lower() == ".pdf":
        return FileResponse(found, filename=found.name, content_disposition_type="inline")
    # Anything else could be HTML with script in it: the sandbox gives it no origin and
    # no script, so opening a course file can never act on the appliance.
    return FileResponse(found, filename=found.name, content_disposition_type="inline",
                        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"})


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
    listed = await asyncio.to_thread(documents.list)
    document = next((d for d in listed if d["file"] == rel), None)
    return {"file": rel, "size_bytes": size, "document": document, "ingest": report.to_dict()}


@router.delete("/{path:path}", status_code=204, summary="Delete a document and its chunks")
async def delete_document(path: str, services: Services = Depends(get_services)) -> None:
    async with services.ingest_lock:
        found = await asyncio.to_thread(services.documents.delete, path)
    if not found:
        raise HTTPException(404, f"No document '{path}'.")
