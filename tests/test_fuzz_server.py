"""Fuzz the REAL backend subprocess (issue 12): requests built from hostile pieces -- lone surrogates, NUL, deep
nesting, non-finite and huge numbers, hostile paths, damaged libraries and key-frame files -- for every method.
Every message gets a reply; the reply is strict JSON; an error carries a documented code, never
INTERNAL_ERROR; and the server is still serving afterwards.

Outputs only ever point into a temporary folder or at places nothing can write (``/proc/...``): the tests run
as root here, and a fuzzer must not be able to overwrite a real file."""

from __future__ import annotations

import itertools
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess
from .test_hardening import strict

REPLY_TIMEOUT = 120.0  # seconds; the slowest legitimate fuzz request (a first retrieve) takes a few


@pytest.fixture(scope="module")
def world(tmp_path_factory, random_model, astronaut_path):
    """The server, and the files the fuzzer picks from."""
    from backend.library import BUILTIN_LIBRARY

    root = tmp_path_factory.mktemp("fuzz")
    (root / "out").mkdir()
    (root / "afile.txt").write_text("not an image")
    (root / "empty").mkdir()
    (root / "libdir" / "library.json").mkdir(parents=True)
    nan_lib = root / "nanlib"
    shutil.copytree(BUILTIN_LIBRARY, nan_lib)
    data = json.loads((nan_lib / "library.json").read_text())
    data["entries"][0]["geometry"][0] = float("inf")
    for e in data["entries"]:  # a NaN pose would reach the reply (and then Blender's keys)
        e["pose"]["values"][next(iter(e["pose"]["values"]))] = float("nan")
    (nan_lib / "library.json").write_text(json.dumps(data))
    bad_json = root / "badjson"
    bad_json.mkdir()
    (bad_json / "library.json").write_text('{"format": "deepexpr-library", "version": 1, "entries": [' * 50)
    keys = {
        "nan": {"keyframes": [{"t": 1, "landmarks": [[float("nan"), 0]] * 68}]},
        "far": {"keyframes": [{"t": 1, "landmarks": [[1e300, -1e300]] * 68}]},
        "shape": {"keyframes": [{"t": 1, "landmarks": [[1, 2, 3]]}]},
        "dict": {"keyframes": {"t": 1}},
        "intensity": {"keyframes": [{"t": 1, "expression": "joy", "intensity": 1e308}]},
        "position": {"keyframes": [{"frame": -5, "expression": "joy"}]},
        "unknown": {"keyframes": [{"t": 0.5, "expression": "smug"}]},
    }
    key_files = []
    for k, v in keys.items():
        path = root / f"keys-{k}.json"
        path.write_text(json.dumps(v))
        key_files.append(str(path))
    deep = root / "keys-deep.json"
    deep.write_text('{"keyframes": ' + "[" * 50_000 + "]" * 50_000 + "}")
    key_files.append(str(deep))
    hostile = []  # libraries whose paths leave their folder
    for k, (field, path) in enumerate(
        [("thumbnail", "../../../../etc/passwd"), ("thumbnail", "/etc/passwd"), ("pose", "../../../etc/shadow")]
    ):
        lib = root / f"escape{k}"
        shutil.copytree(BUILTIN_LIBRARY, lib)
        data = json.loads((lib / "library.json").read_text())
        if field == "thumbnail":
            data["entries"][k]["thumbnail"] = path
        else:
            data["entries"][k]["pose"]["path"] = path
        (lib / "library.json").write_text(json.dumps(data))
        hostile.append(str(lib))
    # A library whose stored index (in the server's cache) is damaged: truncated arrays, then garbage metadata.
    cache = root / "cache"
    damaged = []
    for k, damage in enumerate(("truncate", "meta")):
        lib = root / f"damaged{k}"
        shutil.copytree(BUILTIN_LIBRARY, lib)
        data = json.loads((lib / "library.json").read_text())
        data["name"] = f"damaged {k}"  # its own content hash, so its own index folder
        (lib / "library.json").write_text(json.dumps(data))
        from backend.engine import Engine, EngineConfig
        from backend.retrieval import Retriever

        index = Retriever(Engine(EngineConfig(device="cpu", expression_model=random_model)), str(cache)).index(str(lib))
        if damage == "truncate":
            with open(os.path.join(index.folder, "dist.npy"), "r+b") as f:
                f.truncate(500)
        else:
            with open(os.path.join(index.folder, "meta.json"), "w") as f:
                f.write('{"version": "')
        damaged.append(str(lib))
    env = os.environ.get("DEEPEXPR_CACHE")
    os.environ["DEEPEXPR_CACHE"] = str(cache)
    try:
        srv = BackendProcess("--expression-model", random_model)
    finally:
        os.environ.pop("DEEPEXPR_CACHE") if env is None else os.environ.__setitem__("DEEPEXPR_CACHE", env)
    srv.initialize()
    yield {
        "srv": srv,
        "tmp": str(root),
        "image": astronaut_path,
        "libraries": [BUILTIN_LIBRARY, str(nan_lib), str(bad_json), str(root / "libdir"), str(root / "empty")]
        + hostile
        + damaged,
        "keyframes": key_files,
    }
    assert srv.close() == 0


HOSTILE_TEXT = [
    "\udc80",
    "\ud800",
    "a\x00b",
    "",
    " ",
    "x" * 5000,
    "../../../../etc/passwd",
    "/etc/passwd",
    "/proc/self/mem",
    "/dev/zero",
    "/",
    "~",
    "joy",
    "detect",
    "https://127.0.0.1:1/x.mp4",
]
NUMBERS = [0, 1, 2, 3, -1, 24, 601, 1000, 2**31, 2**63, 10**30, 0.5, -0.0, 1e-300, 1e300, -1e300, 3.7]


def nested(depth: int) -> object:
    v: object = []
    for _ in range(depth):
        v = [v]
    return v


def values(w: dict, key: str) -> st.SearchStrategy:
    """Hostile (and a few sane) values for one param."""
    junk = st.one_of(
        st.sampled_from(HOSTILE_TEXT),
        st.sampled_from(NUMBERS),
        st.booleans(),
        st.none(),
        st.just({}),
        st.just({"a": [1, {"b": None}]}),
        st.integers(1, 400).map(nested),
        st.text(max_size=12),
    )
    tmp = w["tmp"]
    if key in ("out", "draw", "sheet"):  # never a place outside the temporary folder
        return st.one_of(
            st.sampled_from(["/proc/deepexpr-fuzz/x.png", f"{tmp}/afile.txt", f"{tmp}/out", f"{tmp}/empty"]),
            st.text(max_size=10).map(lambda s: os.path.join(tmp, "out", s.replace("/", "_") or "_") + ".png"),
            st.sampled_from([f"{tmp}/out/x.xyz", f"{tmp}/out/y.jpg", f"{tmp}/out/frames"]),
            st.sampled_from(NUMBERS),
            st.none(),
        )
    if key in ("image", "target", "video", "source"):
        return st.one_of(st.just(w["image"]), st.sampled_from([f"{tmp}/afile.txt", f"{tmp}/empty"]), junk)
    if key == "images":
        return st.one_of(st.lists(st.one_of(st.just(w["image"]), st.sampled_from(HOSTILE_TEXT)), max_size=3), junk)
    if key == "library":
        return st.one_of(st.sampled_from(w["libraries"]), junk)
    if key == "keyframes":
        return st.one_of(st.sampled_from(w["keyframes"]), junk)
    if key == "box":
        coords = st.one_of(st.sampled_from(NUMBERS), st.floats(-1e6, 1e6, allow_nan=False))
        return st.one_of(st.lists(coords, min_size=4, max_size=4), junk)
    if key == "frames":  # a valid count, kept small: the fuzzer is not a benchmark
        return st.one_of(st.integers(2, 4), junk)
    return junk


RELEVANT = {  # the params each method reads
    "detect": ["image", "box", "draw"],
    "landmarks": ["image", "box"],
    "classify": ["image", "box"],
    "embed": ["image", "box"],
    "align": ["image", "out", "size", "box"],
    "capture": ["source", "out", "frame"],
    "retrieve": ["image", "library", "top_k", "alpha", "beta", "gamma", "delta", "neutral", "box", "sheet"],
    "retrieve_batch": ["images", "video", "library", "top_k", "alpha", "beta", "frame_step"],
    "generate_sequence": ["source", "expression", "target", "keyframes", "out", "frames", "easing", "method"],
    "analyze_batch": ["images", "op"],
    "key_poses": ["frames", "probabilities", "labels", "candidates", "density", "breakdowns", "min_segment"],
    "live": ["library", "top_k", "alpha", "beta", "preview_fps", "realtime", "max_seconds", "tracking", "neutral"],
}
PARAM_KEYS = [
    "image", "box", "draw", "out", "size", "library", "top_k", "alpha", "beta", "sheet", "images", "video",
    "frame_step", "op", "source", "expression", "target", "keyframes", "frames", "easing", "method", "frame",
]  # fmt: skip


def valid_params(w: dict, method: str) -> dict:
    """Params that work for ``method``: the fuzzer spoils one or two of them, so it reaches deep code."""
    img, out = w["image"], os.path.join(w["tmp"], "out")
    return {
        "detect": {"image": img},
        "landmarks": {"image": img},
        "classify": {"image": img},
        "embed": {"image": img},
        "align": {"image": img, "out": f"{out}/a.png", "size": 64},
        "capture": {"source": img, "out": f"{out}/c.png"},
        "retrieve": {"image": img, "top_k": 3},
        "retrieve_batch": {"images": [img], "top_k": 2},
        "generate_sequence": {"source": img, "expression": "joy", "frames": 2, "out": f"{out}/seq"},
        "analyze_batch": {"images": [img], "op": "detect"},
        "key_poses": {"frames": list(range(1, 9)), "probabilities": [[1 / 7] * 7] * 8},
        "live": {"source": img, "max_seconds": 1, "realtime": False},
    }.get(method, {})


@st.composite
def requests(draw, w: dict) -> tuple[bytes, object]:
    """(body, the id the reply must carry)."""
    from backend.methods import registry

    method = draw(st.one_of(st.sampled_from(registry().names()), st.sampled_from(["initialize", "nope", "\udc80"])))
    if draw(st.integers(0, 4)):  # mostly: a working request with one or two of its params spoiled
        params = valid_params(w, method)
        keys = draw(st.lists(st.sampled_from(RELEVANT.get(method, PARAM_KEYS)), min_size=1, max_size=2, unique=True))
    else:  # sometimes: hostile pieces only
        params = {}
        keys = draw(st.lists(st.sampled_from(PARAM_KEYS), max_size=7, unique=True))
    params.update({k: draw(values(w, k)) for k in keys})
    if method == "initialize":
        params["protocolVersion"] = draw(st.sampled_from([P.PROTOCOL_VERSION, "0.1", "\udc80", 1]))
        params["options"] = draw(st.one_of(st.just({"device": "cpu"}), st.sampled_from(["x", [], {"device": 3}])))
        params["parentPid"] = draw(st.sampled_from([os.getpid(), 0, -1, 2**70, 999_999_999, None]))
    msg_id = draw(st.one_of(st.integers(-(2**62), 2**62), st.text(max_size=8), st.sampled_from(["\udc80", None])))
    msg = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
    body = json.dumps(msg).encode()  # lone surrogates travel as JSON escapes
    mutation = draw(st.sampled_from(["none"] * 6 + ["nan", "infinity", "overflow", "params_list", "deep_id"]))
    if mutation in ("nan", "infinity", "overflow"):  # a number that is not JSON, put where a number goes
        token = {"nan": b"NaN", "infinity": b"-Infinity", "overflow": b"1e999"}[mutation]
        body = body[:-2] + b', "alpha": ' + token + b"}}" if params else body[:-2] + b'"alpha": ' + token + b"}}"
        return body, None  # a parse error: the id cannot be read
    if mutation == "params_list":
        msg["params"] = list(params)
        body = json.dumps(msg).encode()
    if mutation == "deep_id":  # written by hand: json.dumps itself would hit the recursion limit
        d = draw(st.integers(900, 1200))
        body = b'{"jsonrpc":"2.0","id":' + b"[" * d + b"]" * d + b',"method":"detect","params":{}}'
        return body, None
    valid = (isinstance(msg_id, int) and not isinstance(msg_id, bool)) or (
        isinstance(msg_id, str) and msg_id not in ("\udc80",)
    )
    return body, msg_id if valid else None


_pings = itertools.count()


def roundtrip(srv: BackendProcess, body: bytes) -> list[dict]:
    """Send ``body`` and then a ping with an id of its own; return every reply that came before the ping's
    (answers come in order, so those are the answers to ``body``), after checking each is strict JSON."""
    ping_id = f"ping-{next(_pings)}"
    ping = json.dumps({"jsonrpc": "2.0", "id": ping_id, "method": "detect", "params": {}}).encode()
    srv.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body + b"Content-Length: %d\r\n\r\n" % len(ping) + ping)
    replies = []
    while True:
        try:
            frame = srv.read_body(timeout=REPLY_TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"no reply within {REPLY_TIMEOUT:.0f} s to {body[:300]!r}: {exc}") from None
        assert frame is not None, f"the backend died on {body[:300]!r}; stderr: {srv.stderr_tail()}"
        msg = strict(frame)
        if "method" in msg:  # progress and heartbeats pass by
            continue
        if msg.get("id") == ping_id:
            assert msg["error"]["code"] == P.INVALID_PARAMS, msg  # still serving, and in step
            return replies
        replies.append(msg)


def corpus_values(w: dict, key: str) -> list:
    """A fixed list of hostile (and a few sane) values for one param."""
    tmp = w["tmp"]
    junk = ["\udc80", "a\x00b", "", "x" * 5000, None, [], {}, True, 7, -1, 2**63, 1e300, nested(300)]
    if key in ("out", "draw", "sheet"):
        return [f"{tmp}/afile.txt", f"{tmp}/out", f"{tmp}/out/x.xyz", "/proc/deepexpr-fuzz/x.png", "\udc80", 5, None]
    if key in ("image", "source", "target", "video"):
        return [f"{tmp}/afile.txt", f"{tmp}/empty", "/proc/self/mem", "/dev/zero", "/etc/passwd", "../../x"] + junk
    if key == "images":
        return [[], ["\udc80"], [w["image"], "/proc/self/mem", f"{tmp}/empty"], [1], [nested(300)], "x", None]
    if key == "library":
        return w["libraries"] + junk
    if key == "keyframes":
        return w["keyframes"] + junk
    if key == "box":
        boxes = [[0, 0, 1e300, 1e300], [1, 2], [10, 10, 5, 5], [0, 0, 0, 0], [1e6, 1e6, 1e6 + 99, 1e6 + 99]]
        return boxes + [[-1e7, -1e7, 1e7, 1e7], [180, 80, 270, 170]] + junk
    if key in ("op", "easing", "method", "expression"):
        return ["JOY", "warp ", "gan", "embed", "linear", "surprise"] + junk
    return [0, 1, 2, 3, 601, 1001, 10_001, 2**31, 0.5, -0.0, 1e-300, "1"] + junk  # counts, sizes, weights


@pytest.mark.slow
def test_corpus_every_param_of_every_method(world):
    """Each param of each method, one at a time, replaced by each value of a fixed hostile list."""
    from backend.methods import registry

    srv, n = world["srv"], 0
    for method in registry().names():
        base = valid_params(world, method)
        for key in RELEVANT[method]:
            for value in corpus_values(world, key):
                msg = {"jsonrpc": "2.0", "id": n, "method": method, "params": {**base, key: value}}
                body = json.dumps(msg).encode()
                replies = roundtrip(srv, body)
                assert len(replies) == 1 and replies[0]["id"] == n, (body[:300], replies)
                err = replies[0].get("error")
                assert err is None or (err["code"] != P.INTERNAL_ERROR and err["data"]["name"] in P.ERROR_CODES), (
                    body[:300],
                    err,
                )
                n += 1
    assert n > 400


@pytest.mark.slow
def test_fuzz_every_method_with_hostile_params(world):
    srv = world["srv"]

    @settings(
        max_examples=200,
        derandomize=True,  # the same examples every run: make test stays deterministic
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(world))
    def one(case):
        body, reply_id = case
        replies = roundtrip(srv, body)
        assert len(replies) == 1, (body[:300], replies)  # one request, one answer
        reply = replies[0]
        assert reply.get("jsonrpc") == "2.0" and ("result" in reply) != ("error" in reply), reply
        assert reply["id"] == reply_id, (body[:200], reply)
        if "error" in reply:
            code = reply["error"]["code"]
            assert code in P.ERROR_NAMES and code != P.INTERNAL_ERROR, (body[:300], reply)
            assert reply["error"]["data"]["name"] == P.ERROR_NAMES[code]

    one()


def test_hostile_paths_and_damaged_indexes(world):
    """Libraries whose paths leave their folder are LIBRARY_INVALID naming the entry; libraries whose stored
    index is damaged are answered (the index rebuilt), with finite scores."""
    srv = world["srv"]
    for k, lib in enumerate(world["libraries"]):
        if os.path.basename(lib).startswith(("escape", "damaged")):
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"lib-{k}",
                    "method": "retrieve",
                    "params": {"image": world["image"], "library": lib},
                }
            ).encode()
            (reply,) = [r for r in roundtrip(srv, body) if "method" not in r]
            if os.path.basename(lib).startswith("escape"):
                err = reply["error"]
                assert err["data"]["name"] == "LIBRARY_INVALID", err
                assert "outside" in err["message"] or "absolute" in err["message"], err
                assert "entry" in err["message"] and "missing" not in err["message"]
            else:
                assert len(reply["result"]["candidates"]) == 5, reply
