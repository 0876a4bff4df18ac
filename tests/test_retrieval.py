"""Retrieval: the JS distance matches scipy, ranking and re-sorting, embedding cache, CLI and server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from backend.retrieval import EXACT_LIMIT, LibraryIndex, rank
from backend.scoring import Features, RetrievalWeights, js_distance, to_distribution

from .backend_client import ROOT, BackendProcess


def test_js_distance_matches_scipy():
    rng = np.random.default_rng(0)
    q = to_distribution(np.maximum(rng.normal(size=(50, 32)), 0))
    p = to_distribution(np.maximum(rng.normal(size=32), 0))
    np.testing.assert_allclose(js_distance(p, q), [jensenshannon(p, qi) for qi in q], atol=1e-9)
    assert js_distance(p, p[None])[0] == pytest.approx(0, abs=1e-9)
    zero = to_distribution(np.zeros(8))
    assert np.allclose(zero, 1 / 8)


def _index(dist, geo, labels):
    class Lib:
        root = "/lib"
        entries = [
            {"id": f"e{i}", "label": lab, "pose": {"type": "image", "path": "x"}} for i, lab in enumerate(labels)
        ]

        def thumbnail(self, i):
            return f"/lib/{i}.png"

    d = np.asarray(dist, np.float32)
    return LibraryIndex(library=Lib(), dist=d, sqrt_dist=np.sqrt(d), geometry=np.asarray(geo, float), key="k")


def test_geometry_re_sorts_the_js_shortlist():
    q = np.array([0.5, 0.5, 0, 0])
    dist = [[0.5, 0.5, 0, 0], [0.45, 0.45, 0.1, 0], [0, 0, 0.5, 0.5]]
    geo = [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    idx = _index(to_distribution(np.array(dist)), geo, ["joy", "joy", "anger"])
    query = Features(q[None], np.zeros((1, 2)))
    by_js = rank(idx, query, top_k=3, weights=RetrievalWeights(alpha=1, beta=0))
    assert [c["id"] for c in by_js] == ["e0", "e1", "e2"]
    combined = rank(idx, query, top_k=3, weights=RetrievalWeights(alpha=1, beta=0.5))
    assert [c["id"] for c in combined][:2] == ["e1", "e0"]  # the geometric term re-sorts...
    shortlisted = rank(idx, query, top_k=1, weights=RetrievalWeights(alpha=1, beta=0.5), shortlist=1)
    assert shortlisted[0]["id"] == "e0"  # ...but only within the JS shortlist
    assert combined[0]["score"] == pytest.approx(combined[0]["js"] + 0.5 * combined[0]["geo"], abs=1e-6)


def test_large_library_shortlist_finds_the_exact_best():
    rng = np.random.default_rng(1)
    n = EXACT_LIMIT + 3000
    dist = to_distribution(rng.gamma(0.5, size=(n, 64)))
    q = to_distribution(dist[1234] + 0.01)
    idx = _index(dist, np.full((n, 2), np.nan), ["joy"] * n)
    top = rank(idx, Features(q[None], None), top_k=5, weights=RetrievalWeights(beta=0))
    exact = np.argsort(js_distance(q, dist))[:5]
    assert [c["id"] for c in top] == [f"e{i}" for i in exact]


pytest.importorskip("bpy", reason="the test library is rendered with bpy")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from training.build_library import build_builtin_library

    return build_builtin_library(
        str(tmp_path_factory.mktemp("lib") / "builtin"), per_expression=1, characters=["pip", "zee"], size=128
    )


def test_retrieve_ranks_the_library_and_caches_embeddings(engine, astronaut_path, library, tmp_path, monkeypatch):
    import backend.retrieval as R

    monkeypatch.setattr(R, "CACHE_DIR", str(tmp_path))
    res = engine.retriever.retrieve(astronaut_path, library, top_k=5)
    assert res["library_size"] == 14 and len(res["candidates"]) == 5
    scores = [c["score"] for c in res["candidates"]]
    assert scores == sorted(scores)
    for c in res["candidates"]:
        assert os.path.isfile(c["thumbnail"]) and c["pose"]["type"] == "shape_keys" and c["js"] >= 0
    # The same query through the JS term alone ranks by JS.
    js_only = engine.retriever.retrieve(astronaut_path, library, top_k=14, weights=RetrievalWeights(beta=0, gamma=0))
    js_only = js_only["candidates"]
    assert [c["js"] for c in js_only] == sorted(c["js"] for c in js_only)
    # Stored on disk by library content hash + model checksum: a second engine reads the index folder (made
    # unusable for computing here by breaking its thumbnail decoding) and gives the same ranking.
    files = os.listdir(tmp_path / "index")
    assert len(files) == 1 and engine.retrieval_model.sha256[:20] in files[0]
    assert {"meta.json", "dist.npy", "entries.jsonl"} <= set(os.listdir(tmp_path / "index" / files[0]))
    from backend.engine import Engine

    other = Engine(engine.cfg)
    monkeypatch.setattr(R, "_entry_analysis", lambda *a: (_ for _ in ()).throw(AssertionError("recomputed")))
    again = other.retriever.retrieve(astronaut_path, library, top_k=5)
    assert [c["id"] for c in again["candidates"]] == [c["id"] for c in res["candidates"]]


def test_retrieve_cli_writes_a_sheet(random_model, astronaut_path, library, tmp_path):
    sheet = tmp_path / "sheet.png"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend.cli",
            "--expression-model",
            random_model,
            "retrieve",
            astronaut_path,
            "--library",
            library,
            "--top-k",
            "3",
            "--json",
            "--sheet",
            str(sheet),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert len(res["candidates"]) == 3 and res["sheet"] == str(sheet)
    import cv2

    img = cv2.imread(str(sheet))
    assert img.shape[1] > 3 * img.shape[0]  # query + 3 candidates side by side


def test_retrieve_over_the_server(random_model, astronaut_path, library, tmp_path):
    srv = BackendProcess("--expression-model", random_model)
    try:
        srv.initialize()
        res = srv.call("retrieve", {"image": astronaut_path, "library": library, "top_k": 2})
        assert [c["rank"] for c in res["candidates"]] == [1, 2]
        bad = tmp_path / "badlib"
        bad.mkdir()
        (bad / "library.json").write_text("{")
        resp = srv.request("retrieve", {"image": astronaut_path, "library": str(bad)})
        assert resp["error"]["data"]["name"] == "LIBRARY_INVALID"
        resp = srv.request("retrieve", {"image": astronaut_path, "library": library, "alpha": -1})
        assert resp["error"]["data"]["name"] == "INVALID_PARAMS"
        assert srv.call("detect", {"image": astronaut_path})["faces_found"] == 1
    finally:
        assert srv.close() == 0
