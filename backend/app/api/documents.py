"""Ingested documents: list and open (students), upload and delete (the instructor)."""

from __future__ import annotations

import asyncio
import json
import os

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sse_starlette.sse import EventSourceResponse
from starlette.datastructures import UploadFile

from app.api.deps import AccessDep, CourseDep, Instructor, JobsDep, Student
from app.documents.jobs import IngestJobs, Job
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


@router.get("/failed", summary="Files that could not be ingested, and why (instructor)")
async def failed_documents(caller: Instructor, course: CourseDep) -> list[dict]:
    """Each is named with its reason until it changes (fix or replace it) or is removed."""
    return await asyncio.to_thread(course.documents.failures)


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


async def _answer(job: Job, jobs: IngestJobs, wait: float, response: Response) -> dict | None:
    """Wait up to `wait` s for the job; the job as JSON with 202 and its address if not over."""
    if await jobs.wait(job, wait):
        return None
    response.status_code = 202
    response.headers["Location"] = f"/api/documents/jobs/{job.id}"
    return {**job.to_dict(), "position": jobs.position(job)}


@router.post("", status_code=201, summary="Upload a document and queue its ingest (instructor)",
             openapi_extra=_UPLOAD_BODY, responses={202: {"description": "Stored and queued: follow the job"}})
async def upload_document(request: Request, response: Response, caller: Instructor, course: CourseDep,
                          access: AccessDep, jobs: JobsDep,
                          replace: bool = Query(False, description="Replace a document of the same name."),
                          wait: float = Query(0, ge=0, le=600, description="Seconds to wait for the ingest: "
                                              "201 with the document if it is done by then, else 202.")) -> dict:
    """Multipart form with one field, `file`. The file is stored under the materials folder's
    `uploads/` and its ingest queued; the answer comes at once: 202 with a job to follow
    (GET /api/documents/jobs/{id}), or, with `wait`, 201 with the document once ingested
    (422 if it could not be). 409 if a document of that name exists (names are compared
    after cleaning and without case; `replace=true` replaces it) or is being uploaded, or
    if the same content is already ingested under another name. 413 if too large (refused
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
            taken = await asyncio.to_thread(documents.names_taken)
            pending = documents.reserve(name, taken, replace)
        except UploadRejected as exc:
            raise HTTPException(exc.status, str(exc)) from None
        try:
            limit = settings.ingest.max_upload_mb * 1024 * 1024
            with open(pending.temporary, "xb") as out:
                while block := await file.read(1 << 20):
                    if pending.size + len(block) > limit:
                        raise HTTPException(413, f"The file is larger than the {settings.ingest.max_upload_mb} MB limit.")
                    pending.write(out, block)
                out.flush()
                os.fsync(out.fileno())
            duplicate = await asyncio.to_thread(documents.duplicate_of, pending)
            if duplicate:
                raise HTTPException(409, f"The same content is already ingested as '{duplicate}'; it was not "
                                    "stored again.")
            kept = await asyncio.to_thread(documents.put_in_place, pending)
        except UploadRejected as exc:
            raise HTTPException(exc.status, str(exc)) from None
        finally:
            documents.release(pending)
    finally:
        await form.close()
    rel = pending.rel_path
    access.audit.record(caller.address, "replace" if kept else "upload", f"{course.name}:{rel}")
    job = jobs.submit(Job(course.name, "upload", rel, size_bytes=pending.size, replaced=kept,
                          stored=pending.target))
    queued = await _answer(job, jobs, wait, response)
    if queued is not None:
        return queued
    if job.state == "failed":
        raise HTTPException(422, job.message)
    return {"file": rel, "size_bytes": pending.size, "document": job.document, "job": job.to_dict()}


@router.delete("/{path:path}", status_code=204, summary="Delete a document, its chunks and its file (instructor)",
               responses={202: {"description": "Queued behind a running ingest: follow the job"}})
async def delete_document(path: str, response: Response, caller: Instructor, course: CourseDep,
                          access: AccessDep, jobs: JobsDep,
                          wait: float = Query(5, ge=0, le=600, description="Seconds to wait for the delete: "
                                              "204 if done by then, else 202 with the job.")) -> Response:
    """Only an ingested document of this course: 404 for anything else (its file, if any,
    is left alone). Queued behind any running ingest: 204 once done, or 202 with the job
    when it is still waiting after `wait` seconds."""
    path = _checked(path)
    if path not in await asyncio.to_thread(course.documents.catalog.files):
        access.audit.record(caller.address, "delete document", f"{course.name}:{path}", "not found")
        raise HTTPException(404, f"No document '{path}'.")
    job = jobs.submit(Job(course.name, "delete", path))
    access.audit.record(caller.address, "delete document", f"{course.name}:{path}", "queued")
    queued = await _answer(job, jobs, wait, response)
    if queued is not None:
        return JSONResponse(queued, status_code=202, headers={"Location": response.headers["Location"]})
    if job.state == "failed":
        raise HTTPException(404, job.message)
    return Response(status_code=204)


@router.get("/jobs", summary="The course's recent uploads, deletes and checks, newest first (instructor)")
async def list_jobs(caller: Instructor, course: CourseDep, jobs: JobsDep) -> list[dict]:
    return [{**job.to_dict(), "position": jobs.position(job)} for job in jobs.of_course(course.name)]


def _job(jobs: IngestJobs, job_id: str) -> Job:
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"No job '{job_id[:40]}' (jobs are kept until the backend restarts).")
    return job


@router.get("/jobs/{job_id}", summary="One upload's, delete's or check's state and progress (instructor)")
async def get_job(job_id: str, caller: Instructor, jobs: JobsDep) -> dict:
    job = _job(jobs, job_id)
    return {**job.to_dict(), "position": jobs.position(job)}


# How often a progress stream looks for news: the ingest reports every few pages.
PROGRESS_TICK_S = 0.25


@router.get("/jobs/{job_id}/events", summary="One job's progress as server-sent events, until it is over (instructor)")
async def job_events(job_id: str, request: Request, caller: Instructor, jobs: JobsDep) -> EventSourceResponse:
    """`job` events, each the job as GET /api/documents/jobs/{id} returns it, whenever its
    state, place in the queue or progress (files, pages, chunks, files that failed and why,
    seconds left) changes; the last one is "done" or "failed", and the stream ends."""
    job = _job(jobs, job_id)

    async def stream():
        last = None
        while True:
            now = (job.version, jobs.position(job))
            if now != last:
                last = now
                yield {"event": "job", "data": json.dumps({**job.to_dict(), "position": now[1]})}
            if job.over or await request.is_disconnected():
                return
            await asyncio.sleep(PROGRESS_TICK_S)

    return EventSourceResponse(stream(), ping=15)
