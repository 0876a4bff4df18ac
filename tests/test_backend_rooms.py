"""The backend's rooms keep their promises: the served backend runs without training code or bpy, finds the
built-in library as a shipped artefact, lists every method it serves in the protocol document, caps its
threads, and serves and evaluates with one scorer and one crop normalisation."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from backend.errors import DeepExprError
from deepexpr_blender.core import protocol as P
from deepexpr_blender.core.vocabulary import LABELS

from .backend_client import ROOT, BackendProcess


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


def test_the_served_backend_retrieves_from_the_shipped_library_without_training_code_or_bpy(random_model, tmp_path):
    """The backend's whole retrieval path (CLI, server, methods, built-in library) loads neither ``training`` nor
    ``bpy``: the built-in library is an artefact, not something the backend renders."""
    code = f"""
import sys, json, skimage.data, cv2
import backend.app, backend.cli
from backend.engine import Engine, EngineConfig
from backend.library import builtin_library
cv2.imwrite("{tmp_path}/face.png", cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
engine = Engine(EngineConfig(device="cpu", expression_model="{random_model}"))
res = engine.retriever.retrieve("{tmp_path}/face.png", builtin_library(), top_k=3)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("training", "bpy"))
print(json.dumps({{"n": res["library_size"], "bad": bad}}))
"""
    r = _python(code, DEEPEXPR_CACHE=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bad"] == [] and out["n"] >= 28  # 4 characters x 7 expressions at least


def test_a_missing_builtin_library_says_which_command_builds_it(tmp_path):
    from backend.library import BUILTIN_LIBRARY, builtin_library

    assert os.path.isfile(os.path.join(BUILTIN_LIBRARY, "library.json"))  # shipped with the code
    with pytest.raises(DeepExprError) as e:
        builtin_library(str(tmp_path / "absent"))
    assert e.value.code == P.LIBRARY_INVALID and "make library" in e.value.message


def test_the_shipped_library_is_small_and_complete():
    from backend.library import BUILTIN_LIBRARY, load_library

    lib = load_library(BUILTIN_LIBRARY)
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(BUILTIN_LIBRARY) for f in fs)
    assert total < 4_000_000, f"{total} bytes"  # the repository carries it
    assert {e["label"] for e in lib.entries} == set(LABELS)
    assert all(e["landmarks"] is not None and e["geometry"] is not None for e in lib.entries)


def test_every_served_method_is_documented_and_registered_once():
    from backend.methods import ROOMS, registry

    names = registry().names()
    assert sum(len(room.METHODS) for room in ROOMS) == len(names)  # no name in two rooms
    doc = open(os.path.join(ROOT, "docs", "protocol.md"), encoding="utf-8").read()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.M))
    assert set(names) == documented - {"initialize", "shutdown", "exit"}


def test_the_server_and_the_methods_do_not_import_each_other():
    """rpc.py is the only thing they share; app.py is where they meet."""
    for path in [
        "backend/server.py",
        *(f"backend/methods/{f}" for f in os.listdir(os.path.join(ROOT, "backend/methods"))),
    ]:
        if not path.endswith(".py"):
            continue
        src = open(os.path.join(ROOT, path), encoding="utf-8").read()
        other = "methods" if "server" in path else "server"
        assert not re.search(rf"from \.+{other}\b|import backend\.{other}\b|from backend\.{other}\b", src), path


@pytest.mark.parametrize(
    "args,env,expected", [((), {}, 1), (("--threads", "2"), {}, 2), ((), {"DEEPEXPR_THREADS": "3"}, 3)]
)
def test_serve_caps_its_threads(random_model, args, env, expected, monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    srv = BackendProcess("--expression-model", random_model, serve_args=args)
    try:
        assert srv.initialize()["threads"] == expected
    finally:
        assert srv.close() == 0


def test_serve_refuses_a_bad_thread_count(random_model):
    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--stdio", "--threads", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--threads" in r.stderr


def test_cli_options_are_the_config_fields():
    """Each option field of the configs is a flag of the command line, with its default."""
    from backend.app import ServeConfig
    from backend.cli import build_parser
    from backend.engine import EngineConfig
    from backend.scoring import RetrievalWeights
    from backend.sequence import SequenceConfig

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for cfg, p in (
        (EngineConfig, parser),
        (RetrievalWeights, sub["retrieve"]),
        (SequenceConfig, sub["generate"]),
        (ServeConfig, sub["serve"]),
    ):
        flags = {a.dest: a for a in p._actions}
        for f in dataclasses.fields(cfg):
            assert f.name in flags, (cfg.__name__, f.name)
            assert flags[f.name].help.startswith(f.metadata["help"])
    args = parser.parse_args(["--upsample", "1", "generate", "--source", "x", "--expression", "joy", "--out", "o"])
    from backend.config import from_args

    assert from_args(EngineConfig, args).upsample == 1 and from_args(SequenceConfig, args) == SequenceConfig()


def test_the_server_ranks_by_the_shared_scorer():
    """rank() returns the k library entries with the lowest score of backend.scoring, with the same numbers the
    evaluation combines (distances computed once, weighted by RetrievalWeights)."""
    from backend.retrieval import LibraryIndex, rank
    from backend.scoring import Features, RetrievalWeights, combine, distances, library_geometry, to_distribution

    rng = np.random.default_rng(0)
    n = 60
    dist = to_distribution(rng.gamma(0.5, size=(n, 32))).astype(np.float32)
    geo = library_geometry(rng.normal(size=(n, 9)))

    class Lib:
        root = "/lib"
        entries = [{"id": f"e{i}", "label": None, "pose": {"type": "image", "path": "x"}} for i in range(n)]

        def thumbnail(self, i):
            return f"/lib/{i}.png"

    index = LibraryIndex(Lib(), dist, np.sqrt(dist), geo, "k")
    query = Features(to_distribution(rng.gamma(0.5, size=(1, 32))), rng.normal(size=(1, 9)))
    w = RetrievalWeights(alpha=1.0, beta=0.3)
    top = rank(index, query, top_k=5, weights=w, shortlist=n)
    d = distances(query, Features(dist, geo))
    phi = combine(d, w)[0]
    assert [c["id"] for c in top] == [f"e{i}" for i in np.argsort(phi)[:5]]
    for c in top:
        i = int(c["id"][1:])
        assert c["score"] == pytest.approx(phi[i], abs=1e-6) and c["js"] == pytest.approx(d["js"][0, i], abs=1e-6)
        assert c["geo"] == pytest.approx(d["geo"][0, i], abs=1e-6)


def test_the_evaluation_combines_the_servers_distances():
    """training.evaluate_retrieval's three rankings are the server's score under three weight settings."""
    from backend.scoring import Features, distances
    from training.evaluate_retrieval import anr_table
    from training.metrics import average_normalized_rank

    rng = np.random.default_rng(1)
    q = Features(rng.dirichlet(np.ones(16), 40), rng.normal(size=(40, 9)))
    lib = Features(rng.dirichlet(np.ones(16), 50), rng.normal(size=(50, 9)))
    y, ly = rng.integers(0, 7, 40), rng.integers(0, 7, 50)
    d = distances(q, lib)
    rel = y[:, None] == ly[None]
    t = anr_table({"a": (d, rel)}, y, beta=0.25)
    by_hand = average_normalized_rank(d["js"] + 0.25 * d["geo"], rel)
    assert t["combined"]["mean"] == pytest.approx(np.mean([np.nanmean(by_hand[y == k]) for k in np.unique(y)]))
    geo_only = average_normalized_rank(d["geo"], rel)
    assert t["geometry"]["mean"] == pytest.approx(np.mean([np.nanmean(geo_only[y == k]) for k in np.unique(y)]))


def test_serving_and_training_normalise_crops_alike(engine, astronaut_path):
    """The training code's embeddings of a crop equal the engine's: one normalisation (backend.models)."""
    from training.transfer import embed_and_classify

    fa = engine.analyze(astronaut_path)
    size = int(engine.expression.card.input["size"])
    crops = np.stack([fa.aligned(size).crop, np.fliplr(fa.aligned(size).crop)])
    served = engine.embed_crops(list(crops))
    trained, _ = embed_and_classify(engine.expression.module, crops)
    np.testing.assert_allclose(served, trained, atol=1e-6)


def test_installing_the_backend_alone_does_not_pull_bpy():
    """bpy (Blender as a module, 374 MB) is an extra for rendering and tests, not a runtime dependency."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert not any(d.replace(" ", "").startswith("bpy") for d in project["dependencies"])
    assert any(d.startswith("bpy") for d in project["optional-dependencies"]["render"])
