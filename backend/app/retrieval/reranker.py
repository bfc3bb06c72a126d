"""Optional cross-encoder reranking of the fused candidates.

Why optional: a cross-encoder reads question and passage together and orders passages
better than either search alone, but it costs one forward pass per candidate (cheap on
a GPU, noticeable on 2 CPU cores) and needs a model download; no cross-encoder ships
inside a PyPI package, so the offline CPU default leaves it off. The startup script
turns it on for GPU pods (RAG_RERANKER_MODEL).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Reranker:
    def __init__(self, model_name: str, device: str = "cpu", max_length: int = 512):
        from sentence_transformers import CrossEncoder

        self.model_name = model_name
        self.model = CrossEncoder(model_name, device=device, max_length=max_length)

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        return [float(s) for s in self.model.predict([(query, p) for p in passages], show_progress_bar=False)]


def load_reranker(model_name: str | None, device: str) -> Reranker | None:
    """The reranker, or None when none is configured; a model that cannot be loaded is
    reported and skipped rather than stopping the backend."""
    if not model_name:
        return None
    try:
        return Reranker(model_name, device="cuda" if device in ("auto", "cuda") and _has_cuda() else "cpu")
    except Exception as exc:  # offline, wrong name, no disk: answer without reranking
        log.warning("reranker %s not loaded (%s); answering without it", model_name, exc)
        return None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
