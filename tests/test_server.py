"""The backend server as a real subprocess: lifecycle, every bad input, cancellation, framing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess


@pytest.fixture(scope="module")
def server(random_model):
    srv = BackendProcess("--expression-model", random_model)
    info = srv.initialize()
    assert info["protocol_version"] == P.PROTOCOL_VERSION
    yield srv
    assert srv.close() == 0


def err(resp: dict) -> str:
    assert "error" in resp, resp
    return P.ERROR_NAMES[resp["error"]["code"]]


def test_initialize_reports_versions_device_and_models(random_model):
    srv = BackendProcess("--expression-model", random_model, "--device", "cpu")
    try:
        # Work before initialize is refused, and the server keeps going.
        assert err(srv.request("detect", {"image": "x.png"})) == "SERVER_NOT_INITIALIZED"
        assert err(srv.request("initialize", {"protocolVersion": "99.0"})) == "INVALID_REQUEST"
        info = srv.initialize()
        assert info["backend_version"] and info["device"] == "cpu"
        models = info["models"]
        assert models["expression"]["loaded"] and len(models["expression"]["sha256"]) == 64
        assert models["landmarks"]["loaded"]
        assert {"detect", "landmarks", "classify", "embed", "capture", "analyze_batch"} <= set(info["methods"])
    finally:
        assert srv.close() == 0


def test_work_requests(server, astronaut_path, tmp_path):
    det = server.call("detect", {"image": astronaut_path})
    assert det["faces_found"] == 1
    lm = server.call("landmarks", {"image": astronaut_path})
    assert len(lm["points"]) == 68 and "mouth_opening" in lm["geometry"]
    cls = server.call("classify", {"image": astronaut_path})
    assert abs(sum(cls["probabilities"].values()) - 1) < 1e-3
    emb = server.call("embed", {"image": astronaut_path, "box": det["box"]})
    assert len(emb["embedding"]) == 256
    drawn = str(tmp_path / "drawn.png")
    assert server.call("detect", {"image": astronaut_path, "draw": drawn})["drawn"] == drawn
    assert os.path.getsize(drawn) > 10_000
    aligned = str(tmp_path / "al.png")
    server.call("align", {"image": astronaut_path, "out": aligned, "size": 96})
    assert os.path.getsize(aligned) > 1000


@pytest.mark.parametrize(
    "params,name",
    [
        ({"image": "/no/such/file.png"}, "INVALID_IMAGE"),
        ({}, "INVALID_PARAMS"),
        ({"image": 42}, "INVALID_PARAMS"),
        ({"image": "x.png", "box": [1, 2]}, "INVALID_PARAMS"),
    ],
)
def test_bad_params(server, params, name):
    assert err(server.request("detect", params)) == name


def test_every_bad_input_keeps_the_server_serving(server, astronaut_path, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("hello")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(open(astronaut_path, "rb").read()[:3000])
    noface = tmp_path / "noface.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(noface), np.full((200, 200, 3), 90, np.uint8))
    from PIL import Image

    huge = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(huge)
    cases = [
        (empty, "INVALID_IMAGE"),
        (text, "INVALID_IMAGE"),
        (trunc, "INVALID_IMAGE"),
        (noface, "NO_FACE"),
        (huge, "IMAGE_TOO_LARGE"),
    ]
    for path, name in cases:
        resp = server.request("classify", {"image": str(path)})
        assert err(resp) == name, resp
        assert resp["error"]["message"]
        assert server.call("detect", {"image": astronaut_path})["faces_found"] == 1  # still serving
    assert err(server.request("no_such_method", {})) == "METHOD_NOT_FOUND"
    assert err(server.request("detect", None)) == "INVALID_PARAMS"


def test_malformed_messages(server, astronaut_path):
    def raw(body: bytes) -> dict:
        server.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return server.read_response()

    assert err(raw(b"{not json")) == "PARSE_ERROR"
    assert err(raw(b"\xff\xfe")) == "PARSE_ERROR"
    assert err(raw(b"[1, 2]")) == "INVALID_REQUEST"
    assert err(raw(b'"a string"')) == "INVALID_REQUEST"
    assert err(raw(b'{"jsonrpc": "1.0", "id": 5, "method": "detect"}')) == "INVALID_REQUEST"
    assert err(raw(b'{"jsonrpc": "2.0", "id": 6, "method": 7}')) == "INVALID_REQUEST"
    assert err(raw(b'{"jsonrpc": "2.0", "id": [1], "method": "detect"}')) == "INVALID_REQUEST"
    assert err(raw(b'{"jsonrpc": "2.0", "id": 8, "method": "detect", "params": [1]}')) == "INVALID_PARAMS"
    # Oversized body: read, discarded, refused; the stream stays in sync.
    big = json.dumps(
        {"jsonrpc": "2.0", "id": 9, "method": "detect", "params": {"image": "x" * (P.MAX_MESSAGE_BYTES + 10)}}
    )
    assert err(raw(big.encode())) == "MESSAGE_TOO_LARGE"
    assert server.call("detect", {"image": astronaut_path})["faces_found"] == 1


def test_deeply_nested_json_is_a_parse_error_not_a_dead_server(server, astronaut_path):
    body = b"[" * 200_000 + b"]" * 200_000
    server.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    assert err(server.read_response()) in ("PARSE_ERROR", "MESSAGE_TOO_LARGE")
    nested = b"[" * 100_000 + b"]" * 100_000  # under the size limit, over Python's recursion limit
    server.send_raw(b"Content-Length: %d\r\n\r\n" % len(nested) + nested)
    assert err(server.read_response()) == "PARSE_ERROR"
    assert server.call("detect", {"image": astronaut_path})["faces_found"] == 1


def test_a_failed_initialize_is_reported_to_later_requests(random_model, tmp_path):
    srv = BackendProcess("--expression-model", random_model, "--device", "cpu")
    try:
        env_bad = srv.request("initialize", {"protocolVersion": P.PROTOCOL_VERSION, "options": {"device": "tpu"}})
        assert err(env_bad) == "INVALID_PARAMS"
        later = srv.request("detect", {"image": "x.png"})
        assert err(later) == "INVALID_PARAMS" and "did not initialize" in later["error"]["message"]
        srv.initialize()  # a good initialize afterwards works
    finally:
        assert srv.close() == 0


def test_cancel_a_long_batch(server, astronaut_path):
    server.notifications.clear()
    server.next_id += 1
    rid = server.next_id
    server.send(P.request(rid, "analyze_batch", {"images": [astronaut_path] * 400, "op": "detect"}))
    # Wait for the first progress notification, then cancel.
    while not server.notifications:
        msg = server.read()
        assert "method" in msg, msg
        server.notifications.append(msg)
    assert server.notifications[0]["method"] == "$/progress" and server.notifications[0]["params"]["id"] == rid
    server.send(P.notification("$/cancelRequest", {"id": rid}))
    resp = server.read_response(rid)
    assert err(resp) == "CANCELLED"
    partial = resp["error"]["data"]["partial"]
    assert 1 <= len(partial) < 400
    assert server.call("detect", {"image": astronaut_path})["faces_found"] == 1


def test_batch_reports_per_image_errors(server, astronaut_path, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    res = server.call("analyze_batch", {"images": [astronaut_path, str(bad)], "op": "landmarks"})["results"]
    assert res[0]["ok"] and len(res[0]["points"]) == 68
    assert not res[1]["ok"] and res[1]["error"]["name"] == "INVALID_IMAGE"


def test_capture_from_generated_video(server, astronaut_rgb, tmp_path):
    import cv2

    video = str(tmp_path / "clip.avi")
    wr = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
    for _ in range(10):
        wr.write(cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR))
    wr.release()
    out = str(tmp_path / "frame.png")
    res = server.call("capture", {"source": video, "frame": 3, "out": out})
    assert res["width"] == 512 and res["frame_count"] == 10
    assert server.call("detect", {"image": out})["faces_found"] == 1
    assert err(server.request("capture", {"source": str(tmp_path / "none.avi"), "out": out})) == "CAPTURE_FAILED"
    assert err(server.request("capture", {"source": 97, "out": out})) == "CAPTURE_FAILED"  # no such webcam


def test_shutdown_then_exit(random_model):
    srv = BackendProcess("--expression-model", random_model)
    srv.initialize()
    assert srv.call("shutdown") is None
    assert err(srv.request("detect", {"image": "x"})) == "SHUTTING_DOWN"
    srv.send(P.notification("exit"))
    assert srv.proc.wait(10) == 0


def test_exits_when_stdin_closes_and_when_parent_dies(random_model):
    srv = BackendProcess("--expression-model", random_model)
    srv.initialize()
    srv.proc.stdin.close()
    assert srv.proc.wait(10) == 1  # no shutdown first: exit code 1, as in LSP
    # A parent that dies while stdin stays open: the backend is told another process is its parent
    # (as Blender's pid), that process is killed, and the watchdog alone must end the backend.
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    srv = BackendProcess("--expression-model", random_model)
    srv.initialize(parentPid=parent.pid)
    parent.kill()
    parent.wait()
    try:
        assert srv.proc.wait(10) == 0  # exited by itself, stdin still open
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        pytest.fail("backend outlived its parent")


def test_stray_prints_do_not_corrupt_stdout(random_model, astronaut_path):
    """Anything written to fd 1 (a C library, a print) goes to stderr; stdout holds only frames."""
    # This backend writes junk to fd 1 at start, behind the server's back.
    srv = BackendProcess(
        "--expression-model", random_model, "--log-level", "DEBUG", module="tests.stray_stdout_backend"
    )
    try:
        srv.initialize()
        for _ in range(3):
            assert srv.call("detect", {"image": astronaut_path})["faces_found"] == 1
    finally:
        assert srv.close() == 0
