"""Embed a student's question on CPU through ONNX Runtime: the same vector, about 3x sooner.

A question is one short text. For that, PyTorch's per-call overhead dominates
(~14 ms for MiniLM on this 2-core machine); ONNX Runtime's fused graph takes ~4 ms
for a vector identical to the last float digits (bench/chat.py, table 2). Ingestion
batches stay on PyTorch, which is the faster of the two for them.

The ONNX file is exported once from the loaded model into `models/onnx/` and checked
against PyTorch on probe texts each time it is loaded; if export, loading or the check
fails, queries simply stay on PyTorch and the caller logs the reason.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

# Texts the ONNX graph must reproduce before it is trusted.
PROBES = [
    "What is a hash table?",
    "How does the TCP three-way handshake establish a connection between two hosts?",
]
MIN_PROBE_COSINE = 0.9999


class OnnxQueryEncoder:
    """One text in, one unit-length float32 vector out, mean- or CLS-pooled like the model."""

    def __init__(self, session: Any, tokenizer: Any, pooling: str, max_tokens: int,
                 tokenizer_lock: Any = None):
        self.session = session
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.input_names = [i.name for i in session.get_inputs()]
        # Rust tokenizers refuse concurrent calls that set truncation ("Already borrowed").
        # (the Embedder hands its own lock over: one tokenizer, one lock)
        self._tokenizer_lock = tokenizer_lock or threading.Lock()

    def encode(self, text: str) -> np.ndarray:
        return self.encode_many([text])[0]

    def encode_many(self, texts: list[str]) -> np.ndarray:
        """Several short texts in one run of the graph (the clauses of a chatty message):
        padding is masked out, so each vector is the one `encode` gives it alone."""
        with self._tokenizer_lock:
            features = self.tokenizer(texts, return_tensors="np", padding=True, truncation=True,
                                      max_length=self.max_tokens)
        feed = {name: features[name].astype(np.int64) for name in self.input_names}
        hidden = self.session.run(None, feed)[0]
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = features["attention_mask"][..., None].astype(np.float32)
            vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        vectors = vectors.astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def build_onnx_query_encoder(model: Any, cache_dir: Path, threads: int,
                             tokenizer_lock: Any = None) -> tuple[OnnxQueryEncoder | None, str]:
    """(encoder, "") when ONNX Runtime reproduces the model, else (None, why not)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed"
    pooling = _pooling_mode(model)
    if pooling is None:
        return None, "the model's pipeline is not plain transformer + mean/CLS pooling + normalise"
    transformer = model[0].auto_model
    path = cache_dir / f"{_fingerprint(model)}.onnx"
    try:
        try:
            encoder = _load(ort, path, model, pooling, threads, tokenizer_lock)
        except Exception:  # missing, or left corrupt by a crash: export afresh
            path.unlink(missing_ok=True)
            _export(transformer, model.tokenizer, path)
            encoder = _load(ort, path, model, pooling, threads, tokenizer_lock)
        reference = model.encode(PROBES, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        worst = min(float(np.dot(encoder.encode(t), r)) for t, r in zip(PROBES, reference))
    except Exception as exc:  # export or runtime trouble: PyTorch still works
        return None, f"ONNX export or load failed: {str(exc)[:200]}"
    if worst < MIN_PROBE_COSINE:
        path.unlink(missing_ok=True)
        return None, f"ONNX output differs from PyTorch (cosine {worst:.5f})"
    return encoder, ""


def _load(ort: Any, path: Path, model: Any, pooling: str, threads: int, tokenizer_lock: Any = None) -> OnnxQueryEncoder:
    if not path.exists():
        raise FileNotFoundError(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.log_severity_level = 3
    # Idle threads sleep at once instead of spinning: the Milvus and BM25 steps that
    # follow each question need the same two cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return OnnxQueryEncoder(session, model.tokenizer, pooling, int(model.max_seq_length), tokenizer_lock)


def _pooling_mode(model: Any) -> str | None:
    """'mean' or 'cls' for transformer -> pooling [-> normalize] pipelines, else None."""
    modules = list(model)
    names = [type(m).__name__ for m in modules]
    if len(modules) < 2 or names[0] != "Transformer" or names[1] != "Pooling":
        return None
    if any(name != "Normalize" for name in names[2:]):
        return None
    config = modules[1].get_config_dict()
    mode = config.get("pooling_mode") or (
        "mean" if config.get("pooling_mode_mean_tokens") else "cls" if config.get("pooling_mode_cls_token") else None)
    return mode if mode in ("mean", "cls") else None


def _fingerprint(model: Any) -> str:
    """Names the exported file after the weights it came from, so a new model re-exports."""
    import onnxruntime
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model[0].auto_model.state_dict().items())[:8]:
        digest.update(name.encode())
        # the first 1,024 values only: the word-embedding matrix alone is ~47 MB
        digest.update(tensor.detach().flatten()[:1024].cpu().float().numpy().tobytes())
    digest.update(f"{torch.__version__}/{onnxruntime.__version__}".encode())
    return digest.hexdigest()[:16]


def _export(transformer: Any, tokenizer: Any, path: Path) -> None:
    """Trace the transformer to ONNX; written to a temporary name and renamed, so two
    processes exporting at once never leave a half-written file."""
    import torch

    inputs = tokenizer(["an example sentence"], return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inputs]

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *tensors):
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(transformer.eval()), tuple(inputs[n] for n in names), tmp,
                input_names=names, output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
