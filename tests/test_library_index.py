"""Issue 12, points 3, 4, 5 and 10: library indexes that are bounded in memory, heal when damaged, never read
outside their library, and scale (binary arrays memory-mapped, a vector index, batched builds that report
progress and can be cancelled). Real engine, real faiss, real backend subprocess."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from backend import ann, index_store
from backend import retrieval as R
from backend.errors import DeepExprError
from backend.library import BUILTIN_LIBRARY, load_library
from backend.rpc import Cancelled
from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess


def copy_library(dst, edit=None) -> str:
    shutil.copytree(BUILTIN_LIBRARY, dst)
    if edit:
        data = json.loads((dst / "library.json").read_text())
        edit(data, dst)
        (dst / "library.json").write_text(json.dumps(data))
    return str(dst)


@pytest.fixture
def retriever(engine, tmp_path):
    return R.Retriever(engine, cache_dir=str(tmp_path / "cache"))


@pytest.fixture
def query(engine, astronaut_path):
    return R.query_features(engine, engine.analyze(astronaut_path))[0]


# ------------------------------------------------------------------------------------------------ point 3
def test_the_index_cache_is_bounded_and_a_changed_library_replaces_its_index(retriever, tmp_path):
    lib = copy_library(tmp_path / "a")
    first = retriever.index(lib)
    assert retriever.index(lib) is first  # unchanged files: kept
    for k in range(5):  # re-saving library.json (the leak: one more index per save)
        data = json.loads((tmp_path / "a" / "library.json").read_text())
        data["name"] = f"saved {k}"
        (tmp_path / "a" / "library.json").write_text(json.dumps(data))
        assert retriever.index(lib) is not first
        assert len(retriever.cache) == 1
    other = copy_library(tmp_path / "b", lambda d, r: d.update(name="other"))
    retriever.cache.max_bytes = 1  # smaller than one index: only the newest stays
    retriever.index(other)
    assert len(retriever.cache) == 1 and retriever.cache.get(other) is not None


def test_a_thumbnail_edit_is_noticed(retriever, tmp_path):
    import cv2

    lib = copy_library(tmp_path / "a")
    first = retriever.index(lib)
    thumb = os.path.join(lib, first.library.entries[0]["thumbnail"])
    img = cv2.imread(thumb)
    cv2.imwrite(thumb, 255 - img)
    again = retriever.index(lib)
    assert again is not first and not np.allclose(again.dist[0], first.dist[0])


# ------------------------------------------------------------------------------------------------ point 4
def _damage_truncate(folder):
    with open(os.path.join(folder, "dist.npy"), "r+b") as f:
        f.truncate(1000)


def _damage_inf(folder):
    a = np.load(os.path.join(folder, "dist.npy"))
    a[3, 7] = np.inf
    np.save(os.path.join(folder, "dist.npy"), a)


def _damage_meta(folder):
    with open(os.path.join(folder, "meta.json"), "w") as f:
        f.write("{not json")


def _damage_width(folder):
    a = np.load(os.path.join(folder, "dist.npy"))
    np.save(os.path.join(folder, "dist.npy"), a[:, :10])


def _damage_offsets(folder):
    np.save(os.path.join(folder, "offsets.npy"), np.zeros(3, np.int64))


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_inf, _damage_meta, _damage_width, _damage_offsets])
def test_a_damaged_index_is_rebuilt_not_used(engine, tmp_path, astronaut_path, damage):
    lib = copy_library(tmp_path / "a")
    cache = str(tmp_path / "cache")
    good = R.Retriever(engine, cache_dir=cache).retrieve(astronaut_path, lib, top_k=5)
    (folder,) = [os.path.join(cache, "index", f) for f in os.listdir(os.path.join(cache, "index"))]
    damage(folder)
    again = R.Retriever(engine, cache_dir=cache).retrieve(astronaut_path, lib, top_k=5)  # a new start
    assert [c["id"] for c in again["candidates"]] == [c["id"] for c in good["candidates"]]
    assert all(np.isfinite(c["score"]) for c in again["candidates"])
    assert index_store.read(folder, R.INDEX_VERSION) is not None  # healed on disk too
    assert not [f for f in os.listdir(os.path.join(cache, "index")) if ".tmp-" in f or ".damaged-" in f]


def test_a_damaged_vector_index_is_rebuilt_from_the_stored_arrays(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "ANN_LIMIT", 50)
    lib = copy_library(tmp_path / "a")
    cache = str(tmp_path / "cache")
    index = R.Retriever(engine, cache_dir=cache).index(lib)
    assert index.ann is not None and index.sqrt_dist is None
    with open(os.path.join(index.folder, "ann.faiss"), "wb") as f:
        f.write(b"garbage")
    monkeypatch.setattr(R, "_entry_analysis", lambda *a: (_ for _ in ()).throw(AssertionError("re-embedded")))
    again = R.Retriever(engine, cache_dir=cache).index(lib)
    assert again.ann is not None and again.ann.ntotal == len(again.dist)


# ------------------------------------------------------------------------------------------------ point 5
def _thumb(path):
    def edit(data, root):
        data["entries"][4]["thumbnail"] = path

    return edit


@pytest.mark.parametrize(
    "edit,what",
    [
        (_thumb("../../../../etc/passwd"), "leads outside the library folder"),  # exists
        (_thumb("../../../../etc/deepexpr-no-such-file"), "leads outside the library folder"),  # does not
        (_thumb("/etc/passwd"), "is absolute"),
        (_thumb("thumbs/../../x.webp"), "leads outside the library folder"),
        (lambda d, r: d["entries"][4]["pose"].update(path="../../../etc/passwd"), "pose path"),
    ],
)
def test_library_paths_stay_inside_the_library(tmp_path, edit, what):
    lib = copy_library(tmp_path / "a", edit)
    with pytest.raises(DeepExprError) as exc:
        load_library(lib)
    assert exc.value.code == P.LIBRARY_INVALID and "entry 4" in exc.value.message and what in exc.value.message
    assert "missing" not in exc.value.message  # never says whether the outside file exists


def test_a_symlinked_thumbnail_that_leaves_the_library_is_refused(tmp_path):
    outside = tmp_path / "outside.webp"
    shutil.copyfile(os.path.join(BUILTIN_LIBRARY, "thumbs", "pip-joy-00.webp"), outside)

    def edit(data, root):
        os.symlink(outside, root / "thumbs" / "link.webp")
        data["entries"][2]["thumbnail"] = "thumbs/link.webp"

    with pytest.raises(DeepExprError, match="leads outside"):
        load_library(copy_library(tmp_path / "a", edit))


# ----------------------------------------------------------------------------------------------- point 10
def test_the_index_is_stored_binary_and_loaded_without_parsing_the_library(engine, tmp_path, monkeypatch):
    lib = copy_library(tmp_path / "a")
    cache = str(tmp_path / "cache")
    built = R.Retriever(engine, cache_dir=cache).index(lib)
    assert isinstance(np.load(os.path.join(built.folder, "dist.npy"), mmap_mode="r"), np.memmap)
    monkeypatch.setattr(R, "load_library", lambda *a: (_ for _ in ()).throw(AssertionError("parsed")))
    loaded = R.Retriever(engine, cache_dir=cache).index(lib)
    assert loaded.library.entries[5]["id"] == built.library.entries[5]["id"]
    np.testing.assert_array_equal(loaded.dist, built.dist)
    moved = shutil.copytree(lib, tmp_path / "moved")  # content-addressed: a copy finds the same index
    assert R.Retriever(engine, cache_dir=cache).index(str(moved)).folder == built.folder


def test_the_vector_index_gives_the_exact_answers(engine, tmp_path, query, monkeypatch):
    """Above ANN_LIMIT the shortlist comes from faiss; the answers match exact search over every entry."""
    monkeypatch.setattr(ann, "ANN_LIMIT", 50)
    index = R.Retriever(engine, cache_dir=str(tmp_path / "cache")).index(copy_library(tmp_path / "a"))
    assert index.ann is not None
    rng = np.random.default_rng(0)
    queries = [query] + [
        R.Features(np.asarray(index.dist[i])[None], np.asarray(index.geometry[i])[None], query.classes)
        for i in rng.choice(len(index.dist), 10, replace=False)
    ]
    for q in queries:
        got = [c["id"] for c in R.rank(index, q, top_k=10)]
        exact = [c["id"] for c in R.rank(index, q, top_k=10, candidates=np.arange(len(index.dist)))]
        assert got == exact


def test_an_index_build_reports_progress_and_cancels_leaving_nothing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(R, "BUILD_BATCH", 16)
    lib = copy_library(tmp_path / "a")
    cache = tmp_path / "cache"
    seen = []

    def cancel():
        if len(seen) >= 2:
            raise Cancelled({"entries_done": seen[-1][0]})

    def progress(done, total, stage):
        seen.append((done, total))

    with pytest.raises(Cancelled):
        R.Retriever(engine, cache_dir=str(cache)).index(lib, progress=progress, cancel=cancel)
    assert seen == [(16, 84), (32, 84)]
    assert os.listdir(cache / "index") == []  # no half-written index
    seen.clear()
    R.Retriever(engine, cache_dir=str(cache)).index(lib, progress=progress)
    assert seen[-1] == (84, 84) and len(os.listdir(cache / "index")) == 1


def test_a_retrieve_that_builds_an_index_streams_progress_and_can_be_cancelled(random_model, astronaut_path, tmp_path):
    lib = copy_library(tmp_path / "a")
    env = dict(os.environ)
    os.environ["DEEPEXPR_CACHE"] = str(tmp_path / "cache")
    try:
        srv = BackendProcess("--expression-model", random_model)
    finally:
        os.environ.clear()
        os.environ.update(env)
    try:
        srv.initialize()
        srv.send(P.request(7, "retrieve", {"image": astronaut_path, "library": lib}))
        note = srv.read()
        assert note["method"] == "$/progress" and note["params"]["stage"] == "index", note
        assert note["params"]["total"] == 84
        resp = srv.read_response(7)
        assert resp["result"]["library_size"] == 84  # one batch of 84: progress, then the answer
        # A second library, cancelled as soon as its indexing starts.
        lib2 = copy_library(
            tmp_path / "b",
            lambda d, r: d.update(entries=[dict(e, id=f"{e['id']}-{k}") for k in range(6) for e in d["entries"]]),
        )
        srv.send(P.request(8, "retrieve", {"image": astronaut_path, "library": lib2}))
        assert srv.read()["params"]["stage"] == "index"
        srv.send(P.notification("$/cancelRequest", {"id": 8}))
        resp = srv.read_response(8)
        assert resp.get("error", {}).get("code") == P.CANCELLED, resp
        assert not os.listdir(tmp_path / "cache" / "index") or all(
            ".tmp-" not in f for f in os.listdir(tmp_path / "cache" / "index")
        )
        assert srv.call("retrieve", {"image": astronaut_path, "library": lib, "top_k": 2})["library_size"] == 84
    finally:
        assert srv.close() == 0
