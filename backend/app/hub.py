"""Finding a Hugging Face model on disk, or knowing within seconds that it cannot be fetched.

Why: huggingface_hub retries a failed connection five times with back-off, for each file it
looks up. On a pod without internet (measured on an offline H100 machine) loading one
cross-encoder by name cost 47 s of retries and two screens of warnings before the backend
could start, and the same happens before every LLM download attempt. One short request
first turns that into a one-line message; models already on disk are used without any
request at all.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import ConfigurationError


class ModelUnavailable(ConfigurationError):
    """A model is neither on disk nor downloadable from here."""


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(timeout_s: float = 5.0) -> bool:
    """True when the Hub (or the mirror HF_ENDPOINT names) answers at all; honours HF_HUB_OFFLINE
    and the usual proxy variables."""
    import httpx
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        httpx.head(hub_endpoint(), timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True


def download_folder(models_path: Path, repo_id: str) -> Path:
    """Where the appliance keeps its own copy of a Hub model (the models folder persists on a pod's volume)."""
    return models_path / "hub" / repo_id.replace("/", "--")


def has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin"))


def local_model(name: str, models_path: Path) -> Path | None:
    """The model on disk, without touching the network: a folder, our downloaded copy, or
    the Hugging Face cache."""
    given = Path(name).expanduser()
    if given.is_dir():
        return given.resolve()
    ours = download_folder(models_path, name)
    if has_weights(ours):
        return ours
    return cached_snapshot(name)


def cached_snapshot(name: str) -> Path | None:
    """The model in the Hugging Face cache (where sentence-transformers downloads to), if complete."""
    try:
        from huggingface_hub import snapshot_download

        cached = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repository name
        return None
    return cached if has_weights(cached) else None


def fetch_model(name: str, models_path: Path, log=print) -> Path:
    """The model on disk, downloading it into the models folder when needed (config,
    tokenizer and one weights file; not the ONNX/OpenVINO copies some repositories add)."""
    found = local_model(name, models_path)
    if found:
        return found
    if not hub_reachable():
        raise ModelUnavailable(f"{name} is not on this machine and {hub_endpoint()} cannot be reached "
                               "(no internet, or HF_HUB_OFFLINE is set).")
    from huggingface_hub import snapshot_download

    folder = download_folder(models_path, name)
    log(f"Downloading {name} to {folder}...")
    patterns = ["*.json", "*.txt", "*.model", "model.safetensors"]
    snapshot_download(name, local_dir=folder, allow_patterns=patterns)
    if not has_weights(folder):  # older repositories publish only PyTorch's format
        snapshot_download(name, local_dir=folder, allow_patterns=patterns + ["pytorch_model.bin"])
    if not has_weights(folder):
        raise ModelUnavailable(f"{name} has no model.safetensors or pytorch_model.bin to download.")
    return folder
