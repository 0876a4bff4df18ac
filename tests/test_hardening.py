"""Issue 12, one section per numbered point: inputs a hostile or careless user sends, against the real backend
subprocess. Each reply is strict JSON with its documented code, and the server keeps serving."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess


@pytest.fixture(scope="module")
def server(random_model):
    srv = BackendProcess("--expression-model", random_model)
    srv.initialize()
    yield srv
    assert srv.close() == 0


def strict(body: bytes) -> dict:
    """A reply body as strict JSON: UTF-8 without lone surrogates, no NaN/Infinity."""

    def no_constant(name):
        raise AssertionError(f"non-JSON constant {name} in a reply")

    text = body.decode("utf-8")  # strict: raises on invalid UTF-8
    text.encode("utf-8")  # and on lone surrogates
    msg = json.loads(text, parse_constant=no_constant)
    _no_surrogates(msg)
    return msg


def _no_surrogates(v) -> None:
    if isinstance(v, str):
        v.encode("utf-8")
    elif isinstance(v, dict):
        for k, x in v.items():
            _no_surrogates(k)
            _no_surrogates(x)
    elif isinstance(v, list):
        for x in v:
            _no_surrogates(x)


def raw(srv: BackendProcess, body: bytes) -> dict:
    """Send one framed body; return the next response (not a notification), checked as strict JSON."""
    srv.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    while True:
        frame = srv.read_body(timeout=120)
        assert frame is not None, f"the backend died; stderr: {srv.stderr_tail()}"
        msg = strict(frame)
        if "method" not in msg:
            return msg


def name(resp: dict) -> str:
    assert "error" in resp, resp
    return P.ERROR_NAMES[resp["error"]["code"]]


def still_serving(srv: BackendProcess) -> None:
    resp = raw(srv, json.dumps({"jsonrpc": "2.0", "id": "alive?", "method": "detect", "params": {}}).encode())
    assert resp["id"] == "alive?" and name(resp) == "INVALID_PARAMS"


# ------------------------------------------------------------------------------------------------ point 1
@pytest.mark.parametrize(
    "body,code,reply_id",
    [
        # a string id with a lone surrogate cannot be echoed as strict JSON: an invalid request, id null
        (rb'{"jsonrpc":"2.0","id":"\udc80","method":"detect","params":{"image":"x"}}', "INVALID_REQUEST", None),
        # a path with a lone surrogate: named as invalid, not echoed raw
        (rb'{"jsonrpc":"2.0","id":1,"method":"detect","params":{"image":"/tmp/\udc80.png"}}', "INVALID_PARAMS", 1),
        (rb'{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"\ud800"}}', "INVALID_PARAMS", 2),
        (rb'{"jsonrpc":"2.0","id":3,"method":"no_such_\udc80"}', "METHOD_NOT_FOUND", 3),
        (rb'{"jsonrpc":"1.0","id":"\udc80","method":"detect"}', "INVALID_REQUEST", None),
    ],
)
def test_lone_surrogates_get_a_strict_reply(server, body, code, reply_id):
    resp = raw(server, body)
    assert name(resp) == code and resp["id"] == reply_id
    still_serving(server)


@pytest.mark.parametrize("depth", [988, 989, 990, 2000])
def test_a_deeply_nested_id_is_not_echoed(server, depth):
    nested = "[" * depth + "]" * depth
    resp = raw(server, ('{"jsonrpc":"1.0","id":%s,"method":"detect"}' % nested).encode())
    assert name(resp) in ("INVALID_REQUEST", "PARSE_ERROR") and resp["id"] is None
    still_serving(server)


def test_a_cancel_with_an_unhashable_id_does_not_stop_the_reader(server):
    for bad in ([1], {"a": 1}, None, 1.5):
        server.send(P.notification("$/cancelRequest", {"id": bad}))
    still_serving(server)
    resp = raw(server, b'{"jsonrpc":"2.0","id":"c","method":"$/cancelRequest","params":{"id":1}}')
    assert resp["id"] == "c" and resp["result"] is None  # sent as a request, it is answered too


def test_every_method_survives_hostile_strings(server):
    hostile = ["\udc80", "\ud800x", "a" * 100_000, "\x00", "../../../../etc/passwd", "/proc/self/mem"]
    from backend.methods import registry

    for method in registry().names():
        for s in hostile:
            params = {k: s for k in ("image", "library", "source", "video", "op", "expression", "target", "keyframes")}
            params.update(out="/proc/deepexpr-nope/out", draw="/proc/deepexpr-nope/x.png")  # never writable
            body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()
            resp = raw(server, body)
            assert resp["id"] == 7 and name(resp) != "INTERNAL_ERROR", (method, s, resp)
    still_serving(server)


def request(srv: BackendProcess, method: str, params: dict, timeout: float = 60.0) -> dict:
    """One request; its response (strict JSON) within ``timeout`` seconds, or the test fails."""
    srv.next_id += 1
    body = json.dumps({"jsonrpc": "2.0", "id": srv.next_id, "method": method, "params": params}).encode()
    srv.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            frame = srv.read_body(timeout=max(0.01, left))
        except TimeoutError:
            pytest.fail(f"no answer to {method} within {timeout:.0f} s")
        assert frame is not None, f"the backend died; stderr: {srv.stderr_tail()}"
        msg = strict(frame)
        if msg.get("id") == srv.next_id:
            return msg


# ------------------------------------------------------------------------------------------------ point 2
def _keyframes(tmp_path, landmarks) -> str:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keyframes": [{"t": 1.0, "landmarks": landmarks}]}))  # allow_nan: NaN tokens
    return str(path)


def test_nan_key_frames_are_refused_at_once(server, astronaut_path, tmp_path):
    nan = [[float("nan"), float("nan")]] * 68
    params = {"source": astronaut_path, "keyframes": _keyframes(tmp_path, nan), "frames": 3, "out": str(tmp_path / "o")}
    t = time.monotonic()
    resp = request(server, "generate_sequence", params, timeout=15)  # was 25-50 s per frame
    assert name(resp) == "INVALID_PARAMS" and "key frame" in resp["error"]["message"]
    assert time.monotonic() - t < 10
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")  # refused before any frame
    far = [[1e9, 1e9]] * 68  # finite, but nowhere near the image
    params["keyframes"] = _keyframes(tmp_path, far)
    assert name(request(server, "generate_sequence", params, timeout=15)) == "INVALID_PARAMS"


def test_cancel_reaches_the_warp_loop(server, astronaut_rgb, tmp_path):
    """A frame whose triangles each cover most of a 2048 px photo takes seconds; a cancel during it is answered
    within a fraction of that (it is checked per triangle, not per frame)."""
    import cv2
    import numpy as np

    big = str(tmp_path / "big.png")
    cv2.imwrite(big, cv2.cvtColor(cv2.resize(astronaut_rgb, (2048, 2048)), cv2.COLOR_RGB2BGR))
    rng = np.random.default_rng(0)
    wild = rng.uniform(0, 2047, (68, 2)).tolist()  # finite and inside the image: allowed, and slow
    params = {"source": big, "keyframes": _keyframes(tmp_path, wild), "frames": 40, "out": str(tmp_path / "o")}
    server.notifications.clear()
    server.next_id += 1
    rid = server.next_id
    server.send(P.request(rid, "generate_sequence", params))
    msg = server.read()
    while msg.get("method") != "$/progress":  # frame 0 is the source itself: quick
        msg = server.read()
    t0 = time.monotonic()
    server.send(P.notification("$/cancelRequest", {"id": rid}))
    resp = server.read_response(rid)
    waited = time.monotonic() - t0
    assert name(resp) == "CANCELLED" and len(resp["error"]["data"]["partial"]["frames"]) < 40
    assert waited < 1.5, f"the cancel took {waited:.1f} s to be answered"


def test_non_json_numbers_are_parse_errors(server):
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
        body = b'{"jsonrpc":"2.0","id":1,"method":"detect","params":{"image":"x","box":[%s,0,10,10]}}' % token
        resp = raw(server, body)
        assert name(resp) == "PARSE_ERROR" and resp["id"] is None, token
    still_serving(server)


# ------------------------------------------------------------------------------------------------ point 4
def test_replies_over_one_mib_reach_the_client(random_model, tmp_path):
    """analyze_batch answers are not bounded by the 1 MiB request limit: the add-on's client reads them whole."""
    from deepexpr_blender.client import BackendClient

    long_dir = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 200)
    images = [str(long_dir / f"{i:04d}-{'x' * 1200}.png") for i in range(400)]  # missing: answered at once
    client = BackendClient(sys.executable, device="cpu", extra_args=("--expression-model", random_model))
    try:
        client.start()
        res = client.call("analyze_batch", {"images": images, "op": "detect"}, timeout=120)
        assert len(res["results"]) == 400 and not res["results"][-1]["ok"]
        assert len(json.dumps(res)) > P.MAX_MESSAGE_BYTES
    finally:
        client.stop()


def test_a_stale_cancel_does_not_cancel_a_later_request(server, astronaut_path):
    server.send(P.notification("$/cancelRequest", {"id": 424242}))  # no such request (yet)
    still_serving(server)
    server.send(P.request(424242, "analyze_batch", {"images": [astronaut_path], "op": "detect"}))
    resp = server.read_response(424242)
    assert "result" in resp, resp  # was CANCELLED: the cancel had been kept for the id
    for _ in range(10):  # a cancel sent right after reading the answer (a race, once): forgotten too
        server.send(P.notification("$/cancelRequest", {"id": 424242}))
        server.send(P.request(424242, "analyze_batch", {"images": [astronaut_path], "op": "detect"}))
        assert "result" in server.read_response(424242)


def test_closing_stdin_mid_request_stops_the_job(random_model, astronaut_path):
    srv = BackendProcess("--expression-model", random_model)
    try:
        srv.initialize()
        srv.send(P.request(1, "analyze_batch", {"images": [astronaut_path] * 2000, "op": "detect"}))
        assert srv.read()["method"] == "$/progress"
        t0 = time.monotonic()
        srv.proc.stdin.close()
        assert srv.proc.wait(20) == 1  # 2000 detections would take minutes
        assert time.monotonic() - t0 < 5
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


# ------------------------------------------------------------------------------------------------ point 6
@pytest.fixture(scope="module")
def library_copy(tmp_path_factory):
    """A copy of the built-in library to damage."""
    import shutil

    from backend.library import BUILTIN_LIBRARY

    def make(edit) -> str:
        root = tmp_path_factory.mktemp("lib") / "lib"
        shutil.copytree(BUILTIN_LIBRARY, root)
        data = json.loads((root / "library.json").read_text())
        edit(data, root)
        (root / "library.json").write_text(json.dumps(data))  # NaN tokens where the edit put NaN
        return str(root)

    return make


def test_no_nan_or_infinity_in_replies(server, astronaut_path, library_copy):
    resp = request(server, "retrieve", {"image": astronaut_path, "beta": 1e308})  # the score would overflow
    assert name(resp) == "INVALID_PARAMS"

    def nan_pose(data, root):
        key = next(iter(data["entries"][5]["pose"]["values"]))
        data["entries"][5]["pose"]["values"][key] = float("nan")

    resp = request(server, "retrieve", {"image": astronaut_path, "library": library_copy(nan_pose), "top_k": 84})
    assert name(resp) == "LIBRARY_INVALID" and "entry 5" in resp["error"]["message"]


# ------------------------------------------------------------------------------------------------ point 7
def _edit_landmarks(data, root):
    data["entries"][2]["landmarks"][0] = ["a", 1]


def _edit_thumbnail_name(data, root):
    os.rename(os.path.join(root, data["entries"][3]["thumbnail"]), os.fsencode(str(root)) + b"/thumbs/\x80.webp")
    data["entries"][3]["thumbnail"] = "thumbs/\udc80.webp"  # a file name that is not UTF-8


@pytest.mark.parametrize(
    "case,code",
    [
        ("box", "INVALID_PARAMS"),
        ("options", "INVALID_PARAMS"),
        ("easing", "INVALID_PARAMS"),
        ("library_is_a_file", "LIBRARY_INVALID"),
        ("library_json_is_a_folder", "LIBRARY_INVALID"),
        ("library_landmarks", "LIBRARY_INVALID"),
        ("library_thumbnail_name", "LIBRARY_INVALID"),
        ("out_unwritable", "OUTPUT_FAILED"),
        ("out_is_a_folder", "OUTPUT_FAILED"),
        ("out_extension", "OUTPUT_FAILED"),
        ("frames_folder_is_a_file", "OUTPUT_FAILED"),
        ("strip_image", "NO_FACE"),
    ],
)
def test_each_bad_input_has_its_documented_code(server, astronaut_path, library_copy, tmp_path, case, code):
    import cv2
    import numpy as np

    (tmp_path / "afile").write_text("x")
    (tmp_path / "lib" / "library.json").mkdir(parents=True)
    strip = str(tmp_path / "strip.png")
    cv2.imwrite(strip, np.full((1, 70000, 3), 128, np.uint8))
    method, params = {
        "box": ("detect", {"image": astronaut_path, "box": [0, 0, 1e300, 1e300]}),
        "options": ("initialize", {"protocolVersion": P.PROTOCOL_VERSION, "options": "x"}),
        "easing": ("generate_sequence", {"source": astronaut_path, "expression": "joy", "easing": {}, "out": "/x"}),
        "library_is_a_file": ("retrieve", {"image": astronaut_path, "library": str(tmp_path / "afile")}),
        "library_json_is_a_folder": ("retrieve", {"image": astronaut_path, "library": str(tmp_path / "lib")}),
        "library_landmarks": ("retrieve", {"image": astronaut_path, "library": library_copy(_edit_landmarks)}),
        "library_thumbnail_name": (
            "retrieve",
            {"image": astronaut_path, "library": library_copy(_edit_thumbnail_name)},
        ),
        "out_unwritable": ("align", {"image": astronaut_path, "out": "/proc/deepexpr-nope/a.png"}),
        "out_is_a_folder": ("align", {"image": astronaut_path, "out": str(tmp_path)}),
        "out_extension": ("align", {"image": astronaut_path, "out": str(tmp_path / "a.xyz")}),
        "frames_folder_is_a_file": (
            "generate_sequence",
            {"source": astronaut_path, "expression": "joy", "frames": 2, "out": str(tmp_path / "afile")},
        ),
        "strip_image": ("detect", {"image": strip}),
    }[case]
    resp = request(server, method, params)
    assert name(resp) == code, resp
    assert not os.path.exists(tmp_path / "a.xyz")
    still_serving(server)


def test_an_unwritable_cache_costs_time_not_the_answer(random_model, astronaut_path, tmp_path):
    env = os.environ.get("DEEPEXPR_CACHE")
    os.environ["DEEPEXPR_CACHE"] = "/proc/deepexpr-nope"  # root can write almost anywhere, not here
    try:
        srv = BackendProcess("--expression-model", random_model)
    finally:
        os.environ.pop("DEEPEXPR_CACHE") if env is None else os.environ.__setitem__("DEEPEXPR_CACHE", env)
    try:
        srv.initialize()
        resp = request(srv, "retrieve", {"image": astronaut_path, "top_k": 3})
        assert len(resp["result"]["candidates"]) == 3
    finally:
        assert srv.close() == 0


# ------------------------------------------------------------------------------------------------ point 8
@pytest.mark.parametrize(
    "args",
    [
        ("detect", "{img}", "--draw", "/proc/deepexpr-nope/d.png"),
        ("generate", "--source", "{img}", "--expression", "joy", "--frames", "2", "--out", "{tmp}/afile"),
        (
            "generate",
            "--source",
            "{img}",
            "--expression",
            "joy",
            "--frames",
            "2",
            "--out",
            "{tmp}/o",
            "--gif",
            "/proc/x.gif",
        ),
        ("--log-file", "/proc/deepexpr-nope/log", "detect", "{img}"),
        ("align", "{img}", "--out", "{tmp}/a.xyz"),
        ("align", "{img}", "--out", "{tmp}/a.png", "--size", "0"),
        ("align", "{img}", "--out", "{tmp}/a.png", "--size", "-5"),
        ("classify", "{img}", "--box", "nan,1,2,3"),
        ("retrieve", "{img}", "--alpha", "nan"),
        ("retrieve", "{img}", "--top-k", "-3"),
        ("embed", "{tmp}/afile", "--json"),
    ],
)
def test_every_cli_error_is_exit_2_with_a_message(random_model, astronaut_path, tmp_path, capsys, args):
    """In-process (an uncaught exception would fail the test itself): exit 2, a message, no traceback."""
    from backend.cli import main

    (tmp_path / "afile").write_text("x")
    argv = [a.format(img=astronaut_path, tmp=tmp_path) for a in args]
    try:
        code = main(["--expression-model", random_model, *argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and "deepexpr" in err and "Traceback" not in err, err
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "a.xyz").exists()
    if "--json" in argv:
        assert json.loads(out)["error"]["name"] == "INVALID_IMAGE"


def test_cli_traceback_only_when_debugging(monkeypatch, astronaut_path, capsys, random_model):
    """A bug is exit 2 with its message; its traceback appears at --log-level DEBUG only."""
    import backend.cli as cli

    def boom(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "run", boom)
    assert cli.main(["--expression-model", random_model, "detect", astronaut_path]) == 2
    err = capsys.readouterr().err
    assert "INTERNAL_ERROR" in err and "a bug" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------ point 9
def test_lifecycle_edges(random_model):
    import subprocess as sp

    srv = BackendProcess("--expression-model", random_model)
    try:
        init = {"protocolVersion": P.PROTOCOL_VERSION}
        assert name(request(srv, "initialize", {**init, "parentPid": 2**70})) == "INVALID_PARAMS"
        dead = sp.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        resp = request(srv, "initialize", {**init, "parentPid": dead.pid})  # answered, not exited on
        assert name(resp) == "INVALID_PARAMS" and str(dead.pid) in resp["error"]["message"]
        assert "result" in request(srv, "initialize", {**init, "parentPid": os.getpid()})
        assert "result" in request(srv, "shutdown", {})
        assert name(request(srv, "initialize", init)) == "SHUTTING_DOWN"  # not revived
        assert name(request(srv, "detect", {"image": "x"})) == "SHUTTING_DOWN"
        srv.send(P.notification("exit"))
        assert srv.proc.wait(10) == 0
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


def test_client_errors_are_backend_errors_and_a_stopped_backend_is_noticed(random_model, astronaut_path):
    import signal

    from deepexpr_blender.client import BackendClient, BackendError

    client = BackendClient(
        sys.executable, device="cpu", extra_args=("--expression-model", random_model), stall_timeout=4
    )
    try:
        client.start()
        with pytest.raises(BackendError) as e:  # was a raw UnicodeEncodeError
            client.call("detect", {"image": "/tmp/\udc80.png"})
        assert e.value.name == "INVALID_PARAMS"
        first = client.proc
        errors = []
        client.request("analyze_batch", {"images": [astronaut_path] * 500, "op": "detect"}, on_error=errors.append)
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGSTOP)
        t0 = time.monotonic()
        while not errors and time.monotonic() - t0 < 30:
            client.drain(block=0.1)
        assert errors and errors[0].name == "BACKEND_UNAVAILABLE" and errors[0].data.get("reason") == "hung"
        assert time.monotonic() - t0 < 15 and first.poll() is not None  # ended, not left stopped
        assert client.call("detect", {"image": astronaut_path})["faces_found"] == 1  # a new backend
        assert client.proc.pid != first.pid
    finally:
        client.stop()


def test_a_busy_backend_sends_heartbeats(server, astronaut_path):
    server.next_id += 1
    rid = server.next_id
    server.send(P.request(rid, "analyze_batch", {"images": [astronaut_path] * 150, "op": "landmarks"}))
    beats = 0
    while True:
        msg = server.read(heartbeats=True)
        if msg.get("method") == "$/heartbeat":
            assert msg["params"]["id"] == rid
            beats += 1
        if msg.get("id") == rid:
            break
    assert beats >= 1


# ------------------------------------------------------------------------------------------------ budgets
def test_sequences_are_checked_against_the_output_budget_before_work(server, astronaut_rgb, tmp_path):
    import cv2
    import numpy as np

    big = str(tmp_path / "big.png")
    cv2.imwrite(big, cv2.cvtColor(cv2.resize(astronaut_rgb, (3000, 3000)), cv2.COLOR_RGB2BGR))
    out = tmp_path / "o"
    t = time.monotonic()
    resp = request(server, "generate_sequence", {"source": big, "expression": "joy", "frames": 600, "out": str(out)})
    assert name(resp) == "INVALID_PARAMS" and "600 frames of 2048x2048" in resp["error"]["message"]
    assert resp["error"]["data"]["frames"] == 600 and not out.exists() and time.monotonic() - t < 20
    # The warp works at a bounded resolution; landmarks come back in the photo's pixels.
    res = request(server, "generate_sequence", {"source": big, "expression": "joy", "frames": 2, "out": str(out)})
    res = res["result"]
    assert res["size"] == [2048, 2048] and cv2.imread(res["frames"][0]).shape[:2] == (2048, 2048)
    assert res["frame_scale"] == pytest.approx(2048 / 3000)
    found = request(server, "landmarks", {"image": big})["result"]["points"]
    assert abs(np.asarray(res["landmarks"][0]) - np.asarray(found)).max() < 1.0  # the photo's pixels
