"""Ingested documents: list and open (students), upload and delete (the instructor)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from app.api.deps import AccessDep, CourseDep, Instructor, Student
from app.documents.service import UploadRejected, check_document_path

router = APIRouter(prefix="/api/documents", tags=["documents"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }}},
    }
}


def _checked(path: str) -> str:
    try:
        return check_document_path(path)
    except UploadRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("", summary="Ingested documents with pages, chunks and ingest time (students and the instructor)")
async def list_documents(caller: Student, course: CourseDep) -> list[dict]:
    return await asyncio.to_thread(course.documents.list)


@router.get("/file/{path:path}", summary="The original file, to open a cited page (students and the instructor)")
async def original_file(path: str, caller: Student, course: CourseDep) -> FileResponse:
    """Served inline, so a browser opens a PDF at `#page=N` from a citation."""
    path = _checked(path)
    found = await asyncio.to_thread(course.documents.original, path)
    if found is None:
        raise HTTPException(404, f"'{path}' is not in the course materials folder.")
    if found.suffix.lower() == ".pdf":
        return FileResponse(found, filename=found.name, content_disposition_type="inline")
    # Anything else could be HTML with script in it: the sandbox gives it no origin and
    # no script, so opening a course file can never act on the appliance.
    return FileResponse(found, filename=found.name, content_disposition_type="inline",
                        headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"})


@router.post("", status_code=201, summary="Upload a document and ingest it (instructor)", openapi_extra=_UPLOAD_BODY)
async def upload_document(request: Request, caller: Instructor, course: CourseDep, access: AccessDep) -> dict:
    """Multipart form with one field, `file`. Saved under the materials folder's `uploads/`,
    then ingested like the CLI does. Returns the ingest summary; 413 if too large (refused
    before anything is stored), 415 if the type is not supported. The body is read only
    after the caller is known to be the instructor."""
    documents = course.documents
    settings = course.settings
    form = await request.form(max_files=1, max_fields=4)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise HTTPException(422, "file is required (a multipart form field named 'file').")
        try:
            name = documents.check_upload_name(file.filename or "")
        except UploadRejected as exc:
            raise HTTPException(exc.status, str(exc)) from None
        limit = settings.max_upload_mb * 1024 * 1024
        target = documents.upload_path(name)
        partial = target.with_name(f".{target.name}.part")
        size = 0
        try:
            with open(partial, "wb") as out:
                while block := await file.read(1 << 20):
                    size += len(block)
                    if size > limit:
                        raise HTTPException(413, f"The file is larger than the {settings.max_upload_mb} "
                                            "MB limit.")
                    out.write(block)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        await form.close()
    rel = target.relative_to(settings.materials_path).as_posix()
    access.audit.record(caller.address, "upload", f"{course.name}:{rel}")
    async with course.ingest_lock:
        report = await asyncio.to_thread(documents.ingest_materials)
    if rel in report.failed:
        target.unlink(missing_ok=True)
        raise HTTPException(422, f"'{file.filename}' could not be ingested: {report.failed[rel]}")
    listed = await asyncio.to_thread(documents.list)
    document = next((d for d in listed if d["file"] == rel), None)
    return {"file": rel, "size_bytes": size, "document": document, "ingest": report.to_dict()}


@router.delete("/{path:path}", status_code=204, summary="Delete a document, its chunks and its file (instructor)")
async def delete_document(path: str, caller: Instructor, course: CourseDep, access: AccessDep) -> None:
    """Only an ingested document of this course: 404 for anything else (its file, if any,
    is left alone)."""
    path = _checked(path)
    async with course.ingest_lock:
        found = await asyncio.to_thread(course.documents.delete, path)
    access.audit.record(caller.address, "delete document", f"{course.name}:{path}", "ok" if found else "not found")
    if not found:
        raise HTTPException(404, f"No document '{path}'.")
