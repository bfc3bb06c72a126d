"""The evaluation's books: which files of a corpus folder, in which cached database.

Why a database per corpus folder: an evaluation of other books must not search ours
too (or re-ingest ours the next time); each folder gets its own cache under
bench/.cache/eval/, and the files it links to are exactly the corpus's, so a book
removed from the folder leaves the database on the next run.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT

CACHE = PROJECT_ROOT / "bench" / ".cache" / "eval"


class CorpusError(ValueError):
    """The corpus folder cannot be evaluated; the message says what to do."""


def default_database(corpus: Path) -> Path:
    """bench/.cache/eval/<folder name>-<hash of its path>/corpus.db"""
    resolved = corpus.expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", resolved.name).strip("-") or "corpus"
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return CACHE / f"{slug}-{digest}" / "corpus.db"


def corpus_files(corpus: Path, types: list[str]) -> list[Path]:
    """The corpus's files of the chosen types (e.g. ["pdf"]), in subfolders too; hidden
    files left out."""
    if not corpus.is_dir():
        raise CorpusError(f"{corpus} is not a folder; pass --corpus FOLDER with the books")
    suffixes = {"." + t.lower().lstrip(".") for t in types}
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                   and not any(part.startswith(".") for part in p.relative_to(corpus).parts))
    if not files:
        raise CorpusError(f"no {', '.join(sorted(suffixes))} files in {corpus} "
                          f"(--types chooses others, e.g. --types pdf pptx md html docx ipynb txt)")
    return files


def link_books(corpus: Path, files: list[Path], books: Path) -> list[str]:
    """Mirror `files` into `books` as symlinks (the folder the ingest reads), removing
    links to anything else; returns their paths relative to `books` (how the
    database names them)."""
    books.mkdir(parents=True, exist_ok=True)
    wanted = {f.relative_to(corpus).as_posix(): f.resolve() for f in files}
    for link in sorted(books.rglob("*"), reverse=True):
        rel = link.relative_to(books).as_posix()
        if link.is_symlink() and (rel not in wanted or link.resolve() != wanted[rel]):
            link.unlink()
        elif link.is_dir() and not any(link.iterdir()):
            link.rmdir()
    for rel, target in wanted.items():
        link = books / rel
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target)
    return sorted(wanted)


def prepare_database(args, settings, embedder):
    """Ingest the corpus (`args.corpus`, files of `args.types`) into `args.db`, skipping
    unchanged books; return the Ingestor."""
    from app.ingestion.pipeline import Ingestor
    from app.storage.connection import connect, resolve_target

    books = args.db.parent / "books"
    link_books(args.corpus, corpus_files(args.corpus, getattr(args, "types", None) or ["pdf"]), books)
    target = resolve_target(settings)
    ingestor = Ingestor(settings, connect(target, 30), target.describe(),
                        embedder_loader=lambda: embedder)
    report = ingestor.run(books, prune=True, links_into=args.corpus)
    if report.ingested or report.updated:
        print(f"ingested {len(report.ingested) + len(report.updated)} books, "
              f"{report.chunks_written} chunks in {report.elapsed_s:.0f} s", file=sys.stderr)
    for rel, reason in sorted(getattr(report, "failed", {}).items()):
        print(f"could not read {rel}: {reason}", file=sys.stderr)
    return ingestor


@functools.lru_cache(maxsize=64)
def _sections(path: Path) -> tuple:
    """A file's sections as the ingest reads them, read once per run however many
    questions (and both views below) ask about it; () when it cannot be read."""
    from app.ingestion.readers import UnreadableFileError, read_document

    try:
        return tuple(read_document(path).sections)
    except UnreadableFileError:
        return ()


def read_pages(books: Path):
    """`read_pages(file) -> {physical page: text}` over the linked books, for checking
    evidence phrases (the reader the ingest uses, so the text is the indexed text).
    Text without a page (Markdown, HTML, Word, plain text) is under 0; {} when the
    file cannot be read."""

    def pages(rel: str) -> dict[int, str]:
        out: dict[int, str] = {}
        for s in _sections(books / rel):
            out[s.page or 0] = out.get(s.page or 0, "") + "\n" + s.text
        return out

    return pages


def read_sections(books: Path):
    """`read_sections(file) -> [(heading path, text)]` over the linked books: where in a
    file without pages an evidence phrase is (the reader the ingest uses)."""

    def sections(rel: str) -> list[tuple[str | None, str]]:
        return [(s.heading, s.text) for s in _sections(books / rel)]

    return sections
