"""The ingest queue: uploads, deletes and the start-up check run one at a time, in order.

Why a queue: reading and embedding a book takes minutes on a CPU. An upload or a
delete that waited for the run before it would hold the instructor's request (and
every later one) that long. Each is queued at once and answered with a job the page
follows; one worker runs them in order, because two runs on one database must not
overlap (ingestion/locking.py). Uploads queued behind a run are ingested together by
the next one: a run reads the whole materials folder anyway.

Jobs live in memory (the last `keep` of them): after a restart the start-up check
ingests whatever a job had left undone, so nothing depends on remembering them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from app.errors import DatabaseBusyError
from app.ingestion.progress import IngestReport, Plan, ProgressListener

log = logging.getLogger(__name__)

Action = Literal["upload", "delete", "check"]
State = Literal["queued", "running", "done", "failed"]
BUSY_RETRY_S = 3.0  # how often a job waiting for a command-line ingest run tries again


@dataclass
class Job:
    course: str
    action: Action
    file: str | None = None  # the document's path in the course (uploads and deletes)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: State = "queued"
    message: str = "Waiting for its turn."
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: dict = field(default_factory=dict)
    document: dict | None = None  # an upload's listing once ingested
    size_bytes: int | None = None
    replaced: Path | None = None  # the earlier version an upload replaced, kept until the new one is in
    stored: Path | None = None  # an upload's file in the materials folder
    finished: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    version: int = 0  # counts changes: what a stream of its progress (GET .../events) follows

    @property
    def over(self) -> bool:
        return self.state in ("done", "failed")

    def to_dict(self) -> dict:
        return {"id": self.id, "course": self.course, "action": self.action, "file": self.file,
                "state": self.state, "message": self.message, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at,
                "progress": dict(self.progress), "document": self.document, "size_bytes": self.size_bytes}

    def finish(self, state: State, message: str) -> None:
        self.state, self.message, self.finished_at = state, message, time.time()
        self.version += 1
        self.finished.set()


class JobProgress(ProgressListener):
    """The ingest run's progress, written into its jobs for the page to show (the run is in
    a worker thread; each write is one assignment, read whole by the event loop)."""

    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self.files_total = self.files_done = self.pages_total = self.pages_done = self.chunks_done = 0
        self.ocr_pages = 0  # scanned pages sent to OCR so far: a job that is over still says it
        self.current: str | None = None
        self.failed: list[dict] = []  # {"file", "reason"}: the run goes on past them
        self.reading_since: float | None = None  # the first page read: the rate behind the ETA

    def _publish(self, message: str | None = None) -> None:
        progress = {"files_done": self.files_done, "files_total": self.files_total,
                    "pages_done": self.pages_done, "pages_total": self.pages_total,
                    "chunks_done": self.chunks_done, "ocr_pages": self.ocr_pages, "current": self.current,
                    "failed": list(self.failed),
                    "eta_s": self._eta_s()}
        for job in self.jobs:
            job.progress = progress
            if message:
                job.message = message
            job.version += 1

    def _eta_s(self) -> float | None:
        """Seconds left at the pace so far (pages a second), once a few pages are read."""
        if self.reading_since is None or self.pages_done < 3 or self.pages_total <= self.pages_done:
            return None
        pace = self.pages_done / max(time.time() - self.reading_since, 1e-3)
        return round((self.pages_total - self.pages_done) / pace, 1)

    def loading_model(self, name: str) -> None:
        self._publish("Loading the embedding model.")

    def planned(self, plan: Plan) -> None:
        self.files_total = plan.to_ingest + plan.to_update
        self.pages_total = plan.total_pages
        self._publish(f"Reading {self.files_total} file(s)." if self.files_total else None)

    def file_started(self, path: str, pages: int) -> None:
        self.current = path
        if self.reading_since is None:
            self.reading_since = time.time()
        self._publish(f"Reading and indexing {path}.")

    def recognising(self, path: str, pages: int) -> None:
        self.ocr_pages += pages
        self._publish(f"Recognising the text of {pages} scanned page{'s' if pages != 1 else ''} of {path} (OCR).")

    def advanced(self, pages: int, chunks: int) -> None:
        self.pages_done += pages
        self.chunks_done += chunks
        self._publish()

    def file_finished(self, path: str, status: str, detail: str = "") -> None:
        if status in ("ingested", "updated", "failed"):
            self.files_done += 1
        if status == "failed":
            self.failed.append({"file": path, "reason": detail})
        self.current = None
        self._publish()


class IngestJobs:
    """The queue and its one worker; `courses` finds a course by name (CourseRegistry)."""

    def __init__(self, courses, keep: int = 200):
        self.courses = courses
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: list[Job] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task | None = None
        # called with each run's IngestReport (the metrics count files, pages and failures)
        self.report_listeners: list[Callable[[IngestReport], None]] = []

    # -- for the routes ---------------------------------------------------------
    def submit(self, job: Job) -> Job:
        self._jobs[job.id] = job
        while len(self._jobs) > self.keep:
            oldest = next(iter(self._jobs.values()))
            if not oldest.over:
                break
            self._jobs.popitem(last=False)
        self._queue.append(job)
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def of_course(self, course: str) -> list[Job]:
        """The course's jobs, newest first."""
        return [job for job in reversed(self._jobs.values()) if job.course == course]

    def position(self, job: Job) -> int:
        """0 while it runs or is over; else how many jobs are ahead of it, plus one (a
        running batch stays at the head of the queue until it is done)."""
        return self._queue.index(job) + 1 if job.state == "queued" and job in self._queue else 0

    @staticmethod
    async def wait(job: Job, seconds: float) -> bool:
        """Whether the job is over within `seconds`."""
        if seconds > 0 and not job.over:
            try:
                await asyncio.wait_for(job.finished.wait(), seconds)
            except asyncio.TimeoutError:
                pass
        return job.over

    # -- the worker ---------------------------------------------------------------
    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="ingest-jobs")

    async def stop(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except (asyncio.CancelledError, Exception):
                pass

    async def _work(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            job = self._queue[0]
            # Uploads to one course queued behind each other are ingested by one run.
            batch = ([j for j in self._queue if j.course == job.course and j.action == "upload"]
                     if job.action == "upload" else [job])
            try:
                await self._run(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a database failure: those jobs fail, the queue goes on
                log.exception("ingest job %s failed", job.id)
                for j in batch:
                    if not j.over:
                        j.finish("failed", f"The ingest failed unexpectedly ({type(exc).__name__}); see the "
                                 "backend log.")
                        self._settle_upload(j, ok=False)
            finally:
                for j in batch:
                    if j in self._queue:
                        self._queue.remove(j)

    async def _run(self, batch: list[Job]) -> None:
        course = await asyncio.to_thread(self.courses.get, batch[0].course)
        documents = course.documents
        now = time.time()
        for job in batch:
            job.state, job.started_at = "running", now
        if batch[0].action == "delete":
            found = await asyncio.to_thread(documents.delete, batch[0].file)
            batch[0].finish(*(("done", f"Deleted {batch[0].file}.") if found
                              else ("failed", f"No document '{batch[0].file}'.")))
            return
        if batch[0].action == "check":
            batch[0].message = "Checking the course materials after the start."
            await asyncio.to_thread(documents.clean_upload_folder)
            if not course.settings.storage.materials_path.is_dir():
                batch[0].finish("done", "No materials folder yet.")
                return
        report = await self._ingest(documents, batch)
        for listener in self.report_listeners:
            listener(report)
        if batch[0].action == "check":
            repaired = f" Repaired after an interrupted run: {', '.join(report.repaired)}." if report.repaired else ""
            done = len(report.ingested) + len(report.updated)
            batch[0].finish("done", f"{done} file(s) ingested, {len(report.failed)} failed.{repaired}")
            return
        listing = {d["file"]: d for d in await asyncio.to_thread(documents.list)}
        for job in batch:
            if job.file in report.failed:
                job.finish("failed", f"'{job.file}' could not be ingested: {report.failed[job.file]}")
                await asyncio.to_thread(self._settle_upload, job, False)
            else:
                job.document = listing.get(job.file)
                chunks = job.document["chunks"] if job.document else 0
                job.finish("done", f"Ready to ask about: {chunks} chunk(s).")
                await asyncio.to_thread(self._settle_upload, job, True)

    async def _ingest(self, documents, batch: list[Job]) -> IngestReport:
        listener = JobProgress(batch)
        while True:
            try:
                return await asyncio.to_thread(documents.ingest_materials, listener)
            except DatabaseBusyError:
                for job in batch:
                    job.message = "Waiting for another ingest run (the command line, or another backend) to finish."
                await asyncio.sleep(BUSY_RETRY_S)

    @staticmethod
    def _settle_upload(job: Job, ok: bool) -> None:
        """After its run: a failed upload's file goes (the earlier version, if it replaced
        one, comes back), so it is not read again; a good one's earlier version goes."""
        if job.action != "upload":
            return
        if not ok and job.stored is not None:
            if job.replaced is not None and job.replaced.exists():
                job.replaced.replace(job.stored)
            else:
                job.stored.unlink(missing_ok=True)
        elif job.replaced is not None:
            job.replaced.unlink(missing_ok=True)
