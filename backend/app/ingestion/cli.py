"""`python ingest.py --directory DIR`: the command-line face of the ingest pipeline.

Exit codes: 0 everything ingested, 1 some files failed (the rest are stored),
2 usage or configuration error (one line, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from app.errors import ApplianceError
from app.ingestion.locking import ingest_lock
from app.ingestion.progress import IngestReport, Plan, ProgressListener, cited_pages


class TerminalProgress(ProgressListener):
    """A tqdm bar over pages, with files, chunks and chunks/s alongside."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.bar = None
        self.files_total = 0
        self.files_done = 0
        self.chunks = 0
        self.started = time.perf_counter()

    def loading_model(self, name: str) -> None:
        print(f"Loading embedding model {name}…", file=self.stream, flush=True)

    def planned(self, plan: Plan) -> None:
        from tqdm import tqdm

        self.started = time.perf_counter()
        self.files_total = plan.to_ingest + plan.to_update
        parts = [f"{plan.to_ingest} new", f"{plan.to_update} changed", f"{plan.unchanged} unchanged"]
        if plan.to_remove:
            parts.append(f"{plan.to_remove} to remove")
        print(f"Files: {', '.join(parts)}.", file=self.stream)
        if self.files_total:
            self.bar = tqdm(total=plan.total_pages, unit="page", file=self.stream, dynamic_ncols=True,
                            mininterval=0.5, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} pages "
                            "[{elapsed}<{remaining}{postfix}]")
            self._postfix()

    def file_started(self, path: str, pages: int) -> None:
        if self.bar is not None:
            self.bar.set_description_str(_shorten(path), refresh=False)

    def recognising(self, path: str, pages: int) -> None:
        self._write(f"  OCR: reading {pages} scanned page{'s' if pages != 1 else ''} of {path}")

    def advanced(self, pages: int, chunks: int) -> None:
        self.chunks += chunks
        if self.bar is not None:
            self._postfix()
            self.bar.update(pages)

    def file_finished(self, path: str, status: str, detail: str = "") -> None:
        if status in ("ingested", "updated", "failed"):
            self.files_done += 1
        if status == "failed":
            self._write(f"  skipped {path}: {detail}")
        if self.bar is not None:
            self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _postfix(self) -> None:
        rate = self.chunks / max(time.perf_counter() - self.started, 1e-6)
        self.bar.set_postfix_str(
            f"files {self.files_done}/{self.files_total}, {self.chunks} chunks, {rate:.1f} chunks/s",
            refresh=False,
        )

    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream)


def _shorten(path: str, width: int = 28) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1):]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s"


def format_summary(report: IngestReport) -> str:
    processed = len(report.ingested) + len(report.updated)
    lines = [
        f"Done in {_duration(report.elapsed_s)}: {len(report.ingested)} new, {len(report.updated)} updated, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed, {len(report.failed)} failed.",
    ]
    if processed:
        rate = report.chunks_written / report.elapsed_s if report.elapsed_s else 0.0
        lines.append(
            f"  {report.chunks_written} chunks from {report.pages} pages written ({rate:.1f} chunks/s); "
            f"{report.embedded_share:.1%} of their text fits the embedder's window."
        )
    lines.append(f"  {report.chunks_in_database} chunks in the database: {report.database}")
    if report.failed:
        lines.append("Failed (the other files were ingested):")
        lines.extend(f"  {path}: {reason}" + (" (unchanged since an earlier run; not read again until it "
                                              "changes)" if path in report.failed_before else "")
                     for path, reason in sorted(report.failed.items()))
    if report.warnings:
        lines.append("Warnings:")
        lines.extend(f"  {path}: {'; '.join(w)}" for path, w in sorted(report.warnings.items()))
    if report.left_out_pages:
        lines.append("Left out as table of contents or index (they list topics but explain none):")
        lines.extend(f"  {path}: {cited_pages(p)}" for path, p in sorted(report.left_out_pages.items()))
    if report.ocr_pages:
        lines.append("Read with OCR (text recognised from page images; it may hold misread words):")
        lines.extend(f"  {path}: {cited_pages(p)}" for path, p in sorted(report.ocr_pages.items()))
    if report.repaired:
        lines.append(f"Repaired after an interrupted run: {', '.join(report.repaired)}")
    if report.removed:
        lines.append(f"Removed from the database: {', '.join(report.removed)}")
    if report.stale_on_disk:
        lines.append(
            f"In the database but no longer in the folder (run with --prune to remove): "
            f"{', '.join(report.stale_on_disk)}"
        )
    skipped = []
    if report.hidden_skipped:
        skipped.append(f"{report.hidden_skipped} hidden")
    if report.unsupported_skipped:
        kinds = ", ".join(f"{ext} ×{n}" for ext, n in sorted(report.unsupported_skipped.items()))
        skipped.append(f"{sum(report.unsupported_skipped.values())} unsupported ({kinds})")
    if skipped:
        lines.append(f"Skipped: {'; '.join(skipped)}.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python ingest.py",
        description=(
            "Embed course materials (PDF, PowerPoint, Markdown, text, HTML, Word, Jupyter notebooks) "
            "into the vector database. "
            "Unchanged files are skipped, so running it again is cheap."
        ),
    )
    parser.add_argument("--directory", "-d", type=Path, default=None,
                        help="folder to ingest, searched recursively (default: the course's folder: "
                             "RAG_MATERIALS_DIR, i.e. course_materials/, for the default course, "
                             "courses/NAME for another)")
    parser.add_argument("--course", "-c", default=None,
                        help="the course to ingest into (default: RAG_DEFAULT_COURSE, 'main'); each course has "
                             "its own documents, so two courses may both have a syllabus.pdf, and --prune "
                             "never leaves the course")
    parser.add_argument("--prune", action="store_true",
                        help="also delete chunks of files that are no longer in the folder")
    parser.add_argument("--reset", action="store_true",
                        help="delete the whole collection first and rebuild it (needed after changing "
                             "the embedding model)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pydantic import ValidationError

    from app.settings import explain, get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:  # a bad .env or RAG_* value
        print(f"error: invalid configuration: {explain(exc)}", file=sys.stderr)
        return 2
    from app.courses.course import course_settings

    try:
        settings = course_settings(settings, args.course)
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    directory = (args.directory or settings.storage.materials_path).expanduser().resolve()
    if not directory.is_dir():
        print(f"error: {directory} is not a folder (pass --directory DIR).", file=sys.stderr)
        return 2

    listener = ProgressListener() if args.quiet else TerminalProgress()
    with _RememberInterrupts() as interrupts:
        try:
            report = _run(settings, directory, args, listener)
        except ApplianceError as exc:
            _close(listener)
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return _interrupted(listener)
        except Exception:
            if interrupts.seen:  # a library turned the KeyboardInterrupt into its own error
                return _interrupted(listener)
            raise
    _close(listener)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_summary(report))
    return report.exit_code


def _run(settings, directory: Path, args, listener) -> IngestReport:
    from app.ingestion.pipeline import Ingestor
    from app.storage.connection import connect, lost_connection_explained, resolve_target

    target = resolve_target(settings)
    with ingest_lock(settings, target.db_path):
        client = connect(target, settings.storage.milvus_connect_timeout_s)
        try:
            with lost_connection_explained(target.describe()):
                ingestor = Ingestor(settings, client, target.describe())
                return ingestor.run(directory, prune=args.prune, reset=args.reset, listener=listener)
        finally:
            try:
                client.close()
            except Exception:  # closing a connection to a server that is already gone
                pass


class _RememberInterrupts:
    """Ctrl-C raises KeyboardInterrupt as usual, and is remembered: a library that catches it
    and raises its own error (pydantic's serializer does) must still end the run as an
    interruption, not as a traceback."""

    def __init__(self):
        self.seen = False
        self._installed = False
        self._previous = None

    def _handle(self, signum, frame):
        self.seen = True
        raise KeyboardInterrupt

    def __enter__(self) -> "_RememberInterrupts":
        # Not where Ctrl-C is ignored (started in the background) or off the main thread.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except ValueError:
                pass
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def _interrupted(listener) -> int:
    _close(listener)
    print("\nInterrupted. Finished files are saved; run the same command again to complete.",
          file=sys.stderr)
    return 130


def _close(listener) -> None:
    if isinstance(listener, TerminalProgress):
        listener.close()
