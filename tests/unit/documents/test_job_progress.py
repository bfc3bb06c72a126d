"""What an upload job tells the page while the ingest run works on it."""

from app.documents.jobs import Job, JobProgress
from app.ingestion.progress import Plan


def _running_job() -> tuple[Job, JobProgress]:
    job = Job(course="main", action="upload", file="uploads/handout.pdf")
    progress = JobProgress([job])
    progress.planned(Plan(to_ingest=1, to_update=0, unchanged=0, to_remove=0, total_pages=3))
    progress.file_started("uploads/handout.pdf", 3)
    return job, progress


def test_a_scan_names_its_ocr_in_the_message_and_counts_its_pages():
    job, progress = _running_job()
    progress.recognising("uploads/handout.pdf", 1)
    assert job.message == "Recognising the text of 1 scanned page of uploads/handout.pdf (OCR)."
    progress.recognising("uploads/handout.pdf", 2)
    assert job.message == "Recognising the text of 2 scanned pages of uploads/handout.pdf (OCR)."
    progress.advanced(3, 12)
    progress.file_finished("uploads/handout.pdf", "ingested")
    job.finish("done", "Ingested.")
    assert job.to_dict()["progress"]["ocr_pages"] == 3  # still said once the job is over


def test_every_change_is_a_new_version_for_the_event_stream():
    job, progress = _running_job()
    before = job.version
    progress.advanced(1, 4)
    progress.file_finished("uploads/handout.pdf", "failed", "no extractable text")
    assert job.version == before + 2
    assert job.progress["failed"] == [{"file": "uploads/handout.pdf", "reason": "no extractable text"}]
    assert job.progress["ocr_pages"] == 0 and job.progress["files_done"] == 1
