"""Reranking of the fused candidates: a cross-encoder, or token-match with the embedder.

A cross-encoder reads question and passage together and orders passages better than
either search alone, but it costs one forward pass per candidate (measured for 20
candidates: 9 ms on an H100, ~450 ms on 2 CPU cores; bench/rerank_step.py) and needs a
model download: none ships inside a PyPI package. The startup script downloads one and
turns it on for GPU pods. Elsewhere the default is token-match (app/retrieval/token_match.py),
which needs only the embedder already loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.hub import fetch_model
from app.retrieval.token_match import TokenMatchReranker
from app.settings import TOKEN_MATCH

log = logging.getLogger(__name__)


class Reranker:
    candidates = 20  # fused candidates reordered unless settings.retrieval.rerank_candidates says otherwise

    def __init__(self, model_name: str, device: str = "cpu", max_length: int = 512, source: Path | None = None):
        """`model_name` is what the model is called (shown in /api/ready); `source`, the folder
        it is loaded from when that is not the name itself."""
        from sentence_transformers import CrossEncoder

        self.model_name = model_name
        self.model = CrossEncoder(str(source or model_name), device=device, max_length=max_length)

    def score(self, query: str, passages: list[str], fused: list[float] | None = None) -> list[float]:
        """One score per passage, higher first. A cross-encoder's own judgement replaces the
        fusion's (`fused` is not used), as such rerankers are meant to be used."""
        if not passages:
            return []
        return [float(s) for s in self.model.predict([(query, p) for p in passages], show_progress_bar=False)]


def load_reranker(model_name: str | None, device: str, models_path: Path, embedder=None, keyword_index=None):
    """The reranker, or None when none is configured; a model that cannot be loaded is
    reported and skipped rather than stopping the backend. "token-match" compares word
    pieces with the embedder already loaded (app/retrieval/token_match.py), weighed by the
    keyword index's counts of them where given; any other name is
    a cross-encoder, looked up on disk first (a folder, models_path, the Hugging Face cache)
    and downloaded only when missing."""
    if not model_name:
        return None
    if model_name == TOKEN_MATCH:
        if embedder is None:
            return None
        return TokenMatchReranker(embedder, piece_chunks=keyword_index.piece_chunks if keyword_index else None)
    try:
        source = fetch_model(model_name, models_path, log=log.info)
        return Reranker(model_name, device="cuda" if device in ("auto", "cuda") and _has_cuda() else "cpu",
                        source=source)
    except Exception as exc:  # offline, wrong name, no disk: answer without reranking
        log.warning("reranker %s not loaded (%s); answering without it", model_name, exc)
        return None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
