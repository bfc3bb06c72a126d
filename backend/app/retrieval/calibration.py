"""The thresholds that depend on the embedder, in one calibration profile per embedding model.

Why: the relevance gate and the conversation rules compare cosine similarities with fixed
numbers (0.39, 0.6, 0.15, ...). They were measured for all-MiniLM-L6-v2; another embedder
spreads its similarities differently (some put everything above 0.5), so with MiniLM's
numbers it would answer everything or nothing.

A profile is a small JSON file named after the model (`profiles/` here for the models the
appliance ships; `<models_dir>/calibration/` for ones `python -m app.evaluation --fit`
writes). Without one, each of MiniLM's thresholds is moved to the same place between two
anchors of the new embedder as it sits between MiniLM's: how close it puts a question to a
passage that answers it, and to passages on other subjects (anchor_texts.py, fixed texts:
a property of the embedder, not of the course; passages held apart in one-subject
materials are not unrelated, and on the 27-chunk sample course that reading put MiniLM's
own cutoff at 0.63 instead of 0.39). A reasoned guess, not a measurement: the start-up log
and /api/ready say so. A setting given explicitly (RAG_SIMILARITY_CUTOFF, ...) always wins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from app.retrieval.anchor_texts import ANCHOR_PAIRS

log = logging.getLogger(__name__)

PROFILES = Path(__file__).with_name("profiles")
REFERENCE_MODEL = "all-MiniLM-L6-v2"

# The embedder-dependent thresholds; the first three are also settings (explicit values win).
SETTINGS_THRESHOLDS = ("similarity_cutoff", "keyword_gate_min_similarity", "unknown_word_similarity")
THRESHOLDS = SETTINGS_THRESHOLDS + (
    "off_topic_similarity",        # a whole follow-up this far from every passage is off the materials
    "about_the_answer_likeness",   # from here a declined follow-up asks about the last answer
    "new_subject_likeness",        # below this a whole declined question names a subject of its own
    "small_talk_similarity",       # a message this close to a chatter example (and closer than to any passage)
)

@dataclass(frozen=True)
class Calibration:
    embedding_model: str
    source: str  # "profile" (shipped) | "fitted" (--fit) | "derived" (from the anchors)
    similarity_cutoff: float
    keyword_gate_min_similarity: float
    unknown_word_similarity: float
    off_topic_similarity: float
    about_the_answer_likeness: float
    new_subject_likeness: float
    small_talk_similarity: float
    # the anchors: mean cosine of a question with the passage that answers it, and with the others
    answering_mean: float | None = None
    unrelated_mean: float | None = None
    measured_on: str = ""
    overridden: tuple[str, ...] = ()
    warning: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["overridden"] = list(self.overridden)
        data.pop("extra")
        return data


def profile_key(model_name: str) -> str:
    """The profile file's name for a model: its last path part, lower case
    ("sentence-transformers/all-MiniLM-L6-v2" and "all-MiniLM-L6-v2" are one model)."""
    return Path(model_name.rstrip("/")).name.lower()


def load_profile(model_name: str, folders: Iterable[Path] = ()) -> Calibration | None:
    """The model's profile: a fitted one (in `folders`, first found) before a shipped one."""
    name = profile_key(model_name) + ".json"
    for folder, source in [*((Path(f), "fitted") for f in folders), (PROFILES, "profile")]:
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            known = {k: data[k] for k in Calibration.__dataclass_fields__ if k in data}
            known.update(embedding_model=model_name, source=source)
            return Calibration(**known)
    return None


def write_profile(calibration: Calibration, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (profile_key(calibration.embedding_model) + ".json")
    data = calibration.to_dict()
    for key in ("source", "overridden", "warning"):
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def reference() -> Calibration:
    found = load_profile(REFERENCE_MODEL)
    assert found is not None, "the shipped profile of all-MiniLM-L6-v2 is missing"
    return found


def anchors(encode) -> tuple[float, float]:
    """(answering, unrelated): the embedder's mean cosine between each anchor question and
    its own passage, and between each question and the other passages."""
    questions = np.asarray(encode([q for q, _ in ANCHOR_PAIRS]), dtype=np.float32)
    passages = np.asarray(encode([p for _, p in ANCHOR_PAIRS]), dtype=np.float32)
    questions /= np.maximum(np.linalg.norm(questions, axis=1, keepdims=True), 1e-12)
    passages /= np.maximum(np.linalg.norm(passages, axis=1, keepdims=True), 1e-12)
    cosines = questions @ passages.T
    n = len(ANCHOR_PAIRS)
    answering = float(np.trace(cosines) / n)
    unrelated = float((cosines.sum() - np.trace(cosines)) / (n * n - n))
    return answering, unrelated


def derive(model_name: str, answering: float, unrelated: float, base: Calibration | None = None) -> Calibration:
    """`base`'s thresholds (MiniLM's) moved to the same place between this embedder's anchors."""
    base = base or reference()
    assert base.answering_mean is not None and base.unrelated_mean is not None
    scale = (answering - unrelated) / (base.answering_mean - base.unrelated_mean)
    moved = {name: round(float(np.clip(unrelated + (getattr(base, name) - base.unrelated_mean) * scale,
                                       -1.0, 0.99)), 3)
             for name in THRESHOLDS}
    return replace(base, embedding_model=model_name, source="derived", answering_mean=round(answering, 4),
                   unrelated_mean=round(unrelated, 4), measured_on="derived from the anchor texts",
                   warning=(f"No calibration profile for the embedder {model_name}: the relevance gate's "
                            "thresholds are derived from it (docs/DESIGN.md, \"Calibration per embedder\"). "
                            "Fit a profile on questions about your materials: python -m app.evaluation --fit."),
                   **moved)


def fit_cutoff(outcomes: dict[float, tuple[int, int]], answerable: int, refused_share: float = 0.01) -> float:
    """The similarity cutoff that declines the most out-of-corpus questions while refusing
    at most `refused_share` of the answerable ones; among equals, the middle of their range
    (the farthest from both kinds). `outcomes`: cutoff -> (declined, refused)."""
    allowed = int(refused_share * answerable)
    fair = {t: declined for t, (declined, refused) in outcomes.items() if refused <= allowed}
    if not fair:
        return min(outcomes)
    best = max(fair.values())
    tied = sorted(t for t, declined in fair.items() if declined == best)
    return tied[len(tied) // 2]


def with_settings(calibration: Calibration, settings) -> Calibration:
    """Thresholds the user set explicitly win over the profile."""
    chosen = {name: getattr(settings.gate, name) for name in SETTINGS_THRESHOLDS
              if settings.is_set(name) and getattr(settings.gate, name) is not None}
    if not chosen:
        return calibration
    return replace(calibration, overridden=tuple(sorted(chosen)), **chosen)


def resolve(settings, encode=None) -> Calibration:
    """The calibration for `settings.embedding.embedding_model`: a fitted profile, the shipped one,
    or one derived with `encode` (the embedder's text -> vectors). Explicit settings win."""
    model = settings.embedding.embedding_model
    found = load_profile(model, [settings.storage.models_path / "calibration"])
    if found is None:
        if encode is None:
            raise ValueError(f"no calibration profile for {model}, and no embedder to derive one with")
        found = derive(model, *anchors(encode))
        log.warning(found.warning)
    return with_settings(found, settings)
