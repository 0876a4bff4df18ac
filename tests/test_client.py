"""The add-on's backend supervision and smoothing, as plain Python (no Blender needed)."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from deepexpr_blender.client import BackendClient, BackendError
from deepexpr_blender.core.smoothing import Segment, count_switches, smooth


@pytest.fixture()
def client(random_model):
    c = BackendClient(sys.executable, device="cpu", extra_args=("--expression-model", random_model))
    yield c
    c.stop()
    assert c.proc is None


def test_start_request_and_progress(client, astronaut_path):
    info = client.start()
    assert info["protocol_version"] and info["models"]["expression"]["loaded"]
    progress = []
    results = []
    client.request(
        "analyze_batch", {"images": [astronaut_path] * 3, "op": "detect"}, results.append, on_progress=progress.append
    )
    deadline = time.time() + 60
    while not results and time.time() < deadline:
        client.drain(block=0.05)
    assert len(results[0]["results"]) == 3 and [p["done"] for p in progress] == [1, 2, 3]


def test_requests_do_not_block(client, astronaut_path):
    client.start()
    t = time.perf_counter()
    got = []
    client.request("detect", {"image": astronaut_path}, got.append)
    assert time.perf_counter() - t < 0.05  # sending returns at once; the answer comes through drain()
    while not got:
        client.drain(block=0.05)
    assert got[0]["faces_found"] == 1


def test_crashed_backend_is_reported_and_restarted(client, astronaut_path):
    client.start()
    first = client.proc.pid
    errors = []
    client.request("analyze_batch", {"images": [astronaut_path] * 200, "op": "detect"}, on_error=errors.append)
    os.kill(first, signal.SIGKILL)
    deadline = time.time() + 20
    while not errors and time.time() < deadline:
        client.drain(block=0.05)
    assert errors and "exited" in str(errors[0]) and errors[0].name == "BACKEND_UNAVAILABLE"
    # The next request starts a new backend by itself.
    assert client.call("detect", {"image": astronaut_path})["faces_found"] == 1
    assert client.proc.pid != first and client.restarts == 1


def test_error_answers_reach_the_caller(client, tmp_path):
    client.start()
    bad = tmp_path / "x.png"
    bad.write_text("no")
    with pytest.raises(BackendError) as e:
        client.call("classify", {"image": str(bad)})
    assert e.value.name == "INVALID_IMAGE"


def test_missing_interpreter_is_a_clear_error(tmp_path):
    c = BackendClient(str(tmp_path / "nope" / "python"))
    with pytest.raises(BackendError, match="preferences") as e:
        c.start()
    assert e.value.name == "BACKEND_UNAVAILABLE"  # a missing interpreter is not a missing model
    errors = []
    c.request("detect", {"image": "x"}, on_error=errors.append)
    assert errors and "not found" in str(errors[0])


def test_stop_leaves_no_zombie(client):
    client.start()
    proc = client.proc
    client.stop()
    assert proc.returncode == 0  # shutdown + exit, reaped


def test_smoothing_holds_and_uses_hysteresis():
    # Noisy per-frame winners flicker between a and b; c wins clearly from frame 20.
    samples = []
    for f in range(0, 40):
        if f < 20:
            samples.append((f, [("a", 0.30), ("b", 0.30 - (0.01 if f % 2 else -0.01))]))
        else:
            samples.append((f, [("c", 0.10), ("a", 0.30)]))
    segs = smooth(samples, min_hold=6, hysteresis=0.02)
    assert [s.pose_id for s in segs] == ["a", "c"] and segs[1].start == 20 and segs[-1].end == 39
    raw_switches = sum(
        1
        for i in range(1, 40)
        if min(samples[i][1], key=lambda c: c[1])[0] != min(samples[i - 1][1], key=lambda c: c[1])[0]
    )
    assert raw_switches > 10 and count_switches(segs) == 1
    # Without a face the pose is held; a minimum hold delays even a clear winner.
    segs = smooth(
        [(0, [("a", 0.1)]), (1, None), (2, [("b", 0.0), ("a", 0.5)]), (8, [("b", 0.0), ("a", 0.5)])], min_hold=5
    )
    assert segs == [Segment(0, 7, "a"), Segment(8, 8, "b")]
