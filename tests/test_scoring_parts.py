"""The score's parts beyond the paper's two (backend.scoring): the declared label, geometry relative to a
neutral, the actor's neutral as a request param; plain numpy, no network."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import DeepExprError
from backend.retrieval import LibraryIndex, neutral_reference, rank
from backend.scoring import (
    Features,
    RetrievalWeights,
    calibrate,
    declared_distribution,
    distances,
    human_delta_spread,
    library_classes,
    library_relative,
    probabilities_vector,
)
from deepexpr_blender.core.vocabulary import LABELS

J, N = LABELS.index("joy"), LABELS.index("neutral")


def test_declared_distribution_is_the_label_at_its_intensity():
    d = declared_distribution("joy", 0.5)
    assert d[J] == pytest.approx(0.5) and d[N] == pytest.approx(0.5) and d.sum() == pytest.approx(1)
    assert declared_distribution("joy")[J] == 1.0  # no intensity: full
    assert declared_distribution("neutral", 0.0)[N] == 1.0
    assert np.isnan(declared_distribution(None)).all() and np.isnan(declared_distribution("relaxed", 1)).all()
    assert library_classes([{"label": None}, {"label": "fun"}]) is None


def _index(entries, dist):
    class Lib:
        root = "/lib"

        def thumbnail(self, i):
            return f"/lib/{i}.png"

    Lib.entries = entries
    d = np.asarray(dist, np.float32)
    n = len(entries)
    return LibraryIndex(Lib(), d, np.sqrt(d), np.full((n, 2), np.nan), "k", classes=library_classes(entries))


def test_the_label_term_pulls_the_declared_expression_up_and_unlabelled_entries_sit_in_the_middle():
    entries = [{"id": f"e{i}", "label": lab, "pose": {"type": "x"}} for i, lab in enumerate(["anger", None, "joy"])]
    dist = np.full((3, 4), 0.25)
    dist[0] = [0.4, 0.2, 0.2, 0.2]  # the anger entry looks most like the face's features
    index = _index(entries, dist)
    probs = np.zeros((1, 7))
    probs[0, J] = 0.9
    probs[0, N] = 0.1
    query = Features(np.array([[0.4, 0.2, 0.2, 0.2]]), None, probs)
    assert rank(index, query, 3, RetrievalWeights(gamma=0.0))[0]["id"] == "e0"
    top = rank(index, query, 3, RetrievalWeights(gamma=8.0))
    assert [c["id"] for c in top] == ["e2", "e1", "e0"]  # joy first, the unlabelled entry takes the median
    d = distances(query, index.features())
    assert d["label"][0, 1] == pytest.approx(np.median(d["label"][0, [0, 2]]))
    assert top[0]["label_distance"] == pytest.approx(d["label"][0, 2], abs=1e-6)


def test_calibration_removes_the_resting_faces_bias():
    stern = probabilities_vector({"anger": 0.4, "neutral": 0.6})
    assert calibrate(stern[None], stern, 1.0)[0].argmax() == N  # the resting face itself reads neutral
    angry = probabilities_vector({"anger": 0.7, "neutral": 0.3})
    assert calibrate(angry[None], stern, 1.0)[0][LABELS.index("anger")] < angry[LABELS.index("anger")]
    assert calibrate(angry[None], None, 1.0)[0] == pytest.approx(angry)


def test_relative_geometry_per_character_neutral():
    raw = np.array([[1.0, 1.0], [2.0, 1.0], [5.0, 5.0], [5.0, 7.0], [9.0, 9.0]])
    entries = [
        {"label": "neutral", "character": "a"},
        {"label": "joy", "character": "a"},
        {"label": "neutral", "pose": {"target": "b"}},
        {"label": "joy", "pose": {"target": "b"}},
        {"label": "joy", "character": "c"},  # no neutral for c: unknown
    ]
    rel = library_relative(raw, entries)
    assert rel[0] == pytest.approx([0, 0]) and rel[2] == pytest.approx([0, 0])
    assert rel[1][0] > 0 and rel[1][1] == 0 and rel[3][1] > 0 and np.isnan(rel[4]).all()
    assert library_relative(raw, [{"label": "joy"}] * 5) is None
    assert (human_delta_spread() > 0).all()


def test_neutral_param_is_checked():
    assert neutral_reference(None) is None
    from backend.align import template68

    ref = neutral_reference({"points": template68().tolist(), "probabilities": {"neutral": 3, "anger": 1}})
    assert ref.geometry.shape == (9,) and ref.probabilities[N] == pytest.approx(0.75)
    assert neutral_reference({"probabilities": {"neutral": 1}}).geometry is None
    for bad, why in (
        ([1, 2], "must be an object"),
        ({"points": [[0, 0]] * 5}, "68"),
        ({"points": "x"}, "points"),
        ({"probabilities": {"joy": -1}}, "non-negative"),
        ({"probabilities": {"joy": 0}}, "all be 0"),
        ({"points": [[0, 0]] * 68}, "eyes coincide"),
    ):
        with pytest.raises(DeepExprError, match=why):
            neutral_reference(bad)
