"""Shared fixtures: real Milvus Lite in a temp folder, the real packaged embedder, real PDFs.

Two tiers: tests/unit/ (the pure parts, mirroring backend/app/; no model, no server; under a
minute) and the rest (real components end to end). A whole run takes the fast tier first,
so a broken rule fails in seconds, not after the servers' tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKEND = ROOT / "backend"
UNIT = ROOT / "tests" / "unit"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(items):
    """The fast tier first (a stable sort: each tier keeps its own order)."""
    items.sort(key=lambda item: not Path(str(item.fspath)).is_relative_to(UNIT))


def make_pdf(path: Path, pages: list[str], labels: str | None = None, encrypt_password: str | None = None,
             outline: dict[int, list[tuple[str, int]]] | None = None) -> Path:
    """A real PDF with one text page per entry (empty string: a page with no text).
    `outline`: page index -> [(bookmark title, level)] starting on that page."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    for i, text in enumerate(pages):
        pdf.add_page()
        if labels == "roman-then-arabic":
            if i == 0:
                pdf.set_page_label(label_style="r")
            elif i == 1:
                pdf.set_page_label(label_style="D", label_start=1)
        for title, level in (outline or {}).get(i, []):
            pdf.start_section(title, level=level)
        if text:
            pdf.set_font("Helvetica", size=11)
            pdf.multi_cell(0, 6, text)
        else:
            pdf.set_fill_color(120, 120, 120)  # a "scan": drawing only, no text layer
            pdf.rect(20, 20, 150, 200, style="F")
    if encrypt_password:
        pdf.set_encryption(owner_password="owner", user_password=encrypt_password)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path, pages: list[str], text_layer: tuple[int, ...] = (), dpi: int = 200) -> Path:
    """A PDF whose pages are pictures of the given texts, as a scanner makes them: no
    text layer, one greyscale image per page. Pages whose index is in `text_layer` keep
    theirs (a mixed document)."""
    import pypdfium2 as pdfium

    written = make_pdf(path.with_suffix(".text.pdf"), pages)
    source = pdfium.PdfDocument(str(written))
    scanned = [i for i in range(len(pages)) if i not in text_layer]
    images = [source[i].render(scale=dpi / 72).to_pil().convert("L") for i in scanned]
    pictures = path.with_suffix(".images.pdf")
    if images:
        images[0].save(pictures, save_all=True, append_images=images[1:], resolution=dpi)
    result = pdfium.PdfDocument.new()
    picture_pdf = pdfium.PdfDocument(str(pictures)) if images else None
    for i in range(len(pages)):
        if i in text_layer:
            result.import_pages(source, [i])
        else:
            result.import_pages(picture_pdf, [scanned.index(i)])
    result.save(str(path))
    for pdf in (result, source, picture_pdf):
        if pdf is not None:
            pdf.close()
    written.unlink()
    pictures.unlink(missing_ok=True)
    return path


def topic_text(topic: str, sentences: int = 12) -> str:
    """Distinct, sentence-structured filler about one topic (retrievable by that topic)."""
    return " ".join(
        f"Sentence {n} explains how {topic} behaves in case number {n}, and why {topic} matters here."
        for n in range(1, sentences + 1)
    )


@pytest.fixture(scope="session")
def embedder():
    from app.embedding.encoder import load_embedder

    return load_embedder("all-MiniLM-L6-v2", "cpu", 32, threads=2)


@pytest.fixture(scope="module")
def llm():
    """A llama.cpp server with the packaged SmolLM2, shared by a test module."""
    from backend_fixtures import LlamaServer

    server = LlamaServer()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path):
    from app.settings import Settings

    return Settings(
        _env_file=None,
        milvus_uri=str(tmp_path / "db" / "test.db"),
        collection_name="chunks",
        embedding_device="cpu",
        torch_threads=2,
    )


class IngestHarness:
    """Runs the real pipeline in-process against a real Milvus Lite file."""

    def __init__(self, settings, embedder):
        self.settings = settings
        self.embedder = embedder
        self.clients = []

    def client(self):
        from app.storage.connection import connect, resolve_target

        target = resolve_target(self.settings)
        client = connect(target, 10)
        self.clients.append((client, target))
        return client, target

    def ingestor(self, settings=None, embedder=None):
        from app.ingestion.pipeline import Ingestor

        settings = settings or self.settings
        client, target = self.client()
        chosen = embedder or self.embedder
        return Ingestor(settings, client, target.describe(),
                        embedder_loader=lambda: chosen)

    def run(self, directory: Path, **kwargs):
        return self.ingestor().run(directory, **kwargs)

    def rows(self) -> list[dict]:
        """Every stored chunk (id, file, hash, text, pages)."""
        client, _ = self.client()
        if not client.has_collection(self.settings.storage.collection_name):
            return []
        it = client.query_iterator(self.settings.storage.collection_name, batch_size=1000, filter="",
                                   output_fields=["id", "doc_id", "file_hash", "text", "page_start",
                                                  "page_end", "page_label", "heading"])
        out = []
        while batch := it.next():
            out.extend(batch)
        it.close()
        return out

    def close(self):
        from milvus_lite.server_manager import server_manager_instance

        for client, _ in self.clients:
            client.close()
        if self.settings.storage.milvus_is_local_file:
            server_manager_instance.release_server(str(self.settings.storage.milvus_db_path))


@pytest.fixture
def harness(settings, embedder):
    h = IngestHarness(settings, embedder)
    yield h
    h.close()


def cli_env(settings, **extra) -> dict:
    env = dict(os.environ)
    env.update({
        "RAG_MILVUS_URI": settings.storage.milvus_uri,
        "RAG_COLLECTION_NAME": settings.storage.collection_name,
        "RAG_EMBEDDING_DEVICE": "cpu",
        "RAG_TORCH_THREADS": "2",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "ingest.py", *args], cwd=BACKEND, env=env,
                          capture_output=True, text=True, timeout=timeout)
