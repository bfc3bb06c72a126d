"""Calibration per embedder: profiles, explicit settings, thresholds derived from a
course's own chunks, and the fitted cutoff. Pure: no model, no database."""

from __future__ import annotations

import numpy as np
import pytest

from app.retrieval.calibration import (
    THRESHOLDS,
    anchors,
    derive,
    fit_cutoff,
    load_profile,
    reference,
    resolve,
    write_profile,
)
from app.settings import Settings

# the values every rule of the gate and the conversation policy was measured with
MINILM = {"similarity_cutoff": 0.39, "keyword_gate_min_similarity": 0.15, "unknown_word_similarity": 0.6,
          "off_topic_similarity": 0.15, "about_the_answer_likeness": 0.4, "new_subject_likeness": 0.2,
          "small_talk_similarity": 0.5}


def settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, models_dir=tmp_path / "models", **values)


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2",
                                  "/opt/models/all-MiniLM-L6-v2/"])
def test_the_shipped_profile_holds_minilms_numbers(name):
    profile = load_profile(name)
    assert profile is not None and profile.source == "profile" and profile.warning is None
    assert {k: getattr(profile, k) for k in MINILM} == MINILM
    assert 0 < profile.unrelated_mean < profile.answering_mean < 1


def test_explicit_settings_win_and_say_so(tmp_path):
    chosen = resolve(settings(tmp_path, similarity_cutoff=0.3))
    assert chosen.similarity_cutoff == 0.3 and chosen.overridden == ("similarity_cutoff",)
    assert chosen.unknown_word_similarity == 0.6
    assert resolve(settings(tmp_path)).overridden == ()


def test_a_fitted_profile_wins_over_the_shipped_one(tmp_path):
    fitted = derive("all-MiniLM-L6-v2", 0.7, 0.2)
    write_profile(fitted, tmp_path / "models" / "calibration")
    found = resolve(settings(tmp_path))
    assert found.source == "fitted" and found.similarity_cutoff == fitted.similarity_cutoff != 0.39


def test_derived_thresholds_keep_their_place_between_the_anchors():
    base = reference()
    same = derive("copy", base.answering_mean, base.unrelated_mean)
    assert {k: getattr(same, k) for k in THRESHOLDS} == pytest.approx(MINILM, abs=0.002)
    # an embedder that puts everything higher and closer together: every threshold moves, in order
    squeezed = derive("other", 0.85, 0.55)
    scale = 0.30 / (base.answering_mean - base.unrelated_mean)
    for name in THRESHOLDS:
        assert getattr(squeezed, name) == pytest.approx(
            min(0.99, 0.55 + (MINILM[name] - base.unrelated_mean) * scale), abs=0.002)
    assert squeezed.similarity_cutoff > 0.55 > same.similarity_cutoff
    assert squeezed.source == "derived" and "python -m app.evaluation --fit" in squeezed.warning


def test_the_anchors_are_measured_on_the_embedder_itself():
    """A fake embedder that maps each anchor question and its passage to one axis (and
    every other text elsewhere): answering 1.0, unrelated 0.0."""
    from app.retrieval.anchor_texts import ANCHOR_PAIRS

    axis = {text: i for i, pair in enumerate(ANCHOR_PAIRS) for text in pair}

    def encode(texts):
        return np.eye(len(ANCHOR_PAIRS))[[axis[t] for t in texts]]

    assert anchors(encode) == pytest.approx((1.0, 0.0))


def test_an_embedder_without_a_profile_is_derived_with_a_warning(tmp_path):
    rng = np.random.default_rng(2)
    derived = resolve(settings(tmp_path, embedding_model="some-org/new-embedder"),
                      lambda texts: rng.standard_normal((len(texts), 32)))
    assert derived.source == "derived" and derived.embedding_model == "some-org/new-embedder"
    assert derived.warning and abs(derived.unrelated_mean) < 0.2
    with pytest.raises(ValueError):
        resolve(settings(tmp_path, embedding_model="some-org/new-embedder"))


@pytest.mark.parametrize("outcomes, answerable, expected", [
    # at most 1 of 100 refused: 0.40 declines the most within that
    ({0.30: (5, 0), 0.35: (8, 0), 0.40: (9, 1), 0.45: (10, 3)}, 100, 0.40),
    # a tie: the middle of the tied range
    ({0.30: (5, 0), 0.35: (9, 0), 0.40: (9, 0), 0.45: (9, 0), 0.50: (10, 2)}, 100, 0.40),
    # fewer than 100 answerable: none may be refused
    ({0.30: (5, 0), 0.35: (8, 1)}, 50, 0.30),
    # every cutoff refuses too many: the lowest
    ({0.30: (5, 3), 0.35: (8, 4)}, 50, 0.30),
])
def test_the_fitted_cutoff_refuses_at_most_one_in_a_hundred(outcomes, answerable, expected):
    assert fit_cutoff(outcomes, answerable) == expected
