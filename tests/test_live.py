"""Live mirror, tracking and sparse key poses on the backend side: a test performance made from the sample face
with the warp tool (held expressions with eased transitions), the real networks, the real backend process."""

from __future__ import annotations

import json
import os
import time

import cv2
import numpy as np
import pytest

from backend.performance import Hold, performance_frames, write_video
from deepexpr_blender.core import protocol as P

from .backend_client import BackendProcess

PLAN = (("joy", 30, 0.0), ("surprise", 35, 2.2), ("joy", 25, 0.0), ("surprise", 30, 2.2), ("joy", 30, 0.0))


@pytest.fixture(scope="module")
def real_engine():
    from backend.engine import Engine, EngineConfig

    return Engine(EngineConfig(device="cpu"))


@pytest.fixture(scope="module")
def take(real_engine, tmp_path_factory) -> tuple[str, list[Hold], list[np.ndarray]]:
    frames, holds = performance_frames(real_engine, plan=PLAN, motion=12)
    path = write_video(str(tmp_path_factory.mktemp("take") / "take.avi"), frames, 25)
    return path, holds, frames


@pytest.fixture(scope="module")
def backend():
    os.environ.pop("DEEPEXPR_EXPRESSION_MODEL", None)  # the shipped networks
    srv = BackendProcess()
    srv.initialize()
    yield srv
    srv.close()


def _live(srv: BackendProcess, params: dict, cancel_after: int | None = None) -> tuple[dict, list[dict]]:
    """Run one live request; optionally cancel it after ``cancel_after`` results. Returns (response, items)."""
    srv.next_id += 1
    rid = srv.next_id
    srv.notifications.clear()
    srv.send(P.request(rid, "live", params))
    items = []
    while True:
        msg = srv.read()
        if msg.get("method") == "$/progress":
            assert msg["params"]["id"] == rid
            items.append(msg["params"]["item"])
            if cancel_after is not None and len(items) == cancel_after:
                srv.send(P.notification("$/cancelRequest", {"id": rid}))
            continue
        if msg.get("id") == rid:
            return msg, items


# ---------------------------------------------------------------------------------------------- tracking
def test_tracking_follows_between_detections_and_loses_a_blank_at_once(real_engine, take):
    from backend.tracking import FaceTracker, TrackerConfig

    _, _, frames = take
    blank = np.full_like(frames[0], 128)
    seq = frames[:60] + [blank] * 5 + frames[60:80]
    ref = [real_engine.detector.detect(f) for f in seq]
    tr = FaceTracker(real_engine.detector, real_engine.predictor, TrackerConfig(detect_every=10))
    out = [tr.track(f) for f in seq]
    assert [i for i, o in enumerate(out) if o is None] == list(range(60, 65))  # lost on the first blank frame
    assert tr.detections < len(seq) / 3
    errs = []
    for o, faces, f in zip(out, ref, seq):
        if o is not None and not o.detected:
            pts = real_engine.predictor.predict(f, faces[0].box)
            iod = np.linalg.norm(pts[36:42].mean(0) - pts[42:48].mean(0))
            errs.append(np.linalg.norm(o.points68 - pts, axis=1).mean() / iod)
    assert np.median(errs) < 0.03  # within 3% of the eye distance of landmarks from a fresh detection


def test_two_faces_the_tracked_one_is_kept(real_engine, take):
    """A larger second face entering the frame does not steal the track; a new track takes the largest."""
    from backend.tracking import FaceTracker, TrackerConfig

    _, _, frames = take
    first = np.roll(frames[0], -150, axis=1)  # the actor on the left
    face = frames[0][130:350, 200:420]  # the actor's head
    two = first.copy()
    two[110:370, 370:630] = cv2.resize(face, (260, 260))  # a bigger face walks in on the right
    tr = FaceTracker(real_engine.detector, real_engine.predictor, TrackerConfig(detect_every=2))
    a = tr.track(first)
    assert a is not None and a.faces_found == 1
    b = [tr.track(two) for _ in range(4)][-1]
    assert tr.faces_found == 2
    assert abs((b.face.box[0] + b.face.box[2]) / 2 - (a.face.box[0] + a.face.box[2]) / 2) < 40
    fresh = FaceTracker(real_engine.detector, real_engine.predictor).track(two)
    assert fresh.face.box[0] > 330  # without a track: the largest


# ---------------------------------------------------------------------------------------------- speed paths
def test_one_trunk_pass_gives_both_networks_outputs(real_engine, take):
    """The video path's networks (one pass of the shared trunk, folded batch norm, oneDNN / channels-last)
    give what the two plain networks give, for one crop (live) and for a batch."""
    from backend.engine import CropNetworks, shares_trunk
    from backend.imageio import from_array

    eng = real_engine
    assert shares_trunk(eng.expression, eng.retrieval_model)  # the shipped character net froze the human trunk
    fas = [eng.analyze(from_array(f)) for f in take[2][::30]]
    nets = eng.crop_networks()
    assert nets.shared and nets.sizes == [48]
    crops = np.stack([fa.aligned(48).crop for fa in fas])
    ref_p, _ = eng.classify_tensor(eng.input_tensor(fas), eng.expression)
    ref_e = eng.embed_crops(list(crops), eng.retrieval_model)
    for sl in (slice(0, 1), slice(None)):
        probs, emb = nets({48: crops[sl]})
        assert np.abs(probs - ref_p[sl]).max() < 1e-4 and np.abs(emb - ref_e[sl]).max() < 1e-3 * np.abs(ref_e).max()
    # two networks that do not share the trunk run one after the other, and still agree
    other = CropNetworks(eng.expression, eng.expression, eng.device)
    _, emb_h = other({48: crops})
    _, ref_h = eng.classify_tensor(eng.input_tensor(fas), eng.expression)
    assert np.abs(emb_h - ref_h).max() < 1e-3 * np.abs(ref_h).max()
    assert not np.allclose(emb_h, ref_e, atol=1e-3)  # the heads differ: the retrieval head is not the human one


def test_prefetch_decodes_ahead_in_order_and_stops_early(take):
    from backend.capture import open_video
    from backend.live import Prefetch

    path, _, frames = take
    with open_video(path) as v, Prefetch(v.frames(3), depth=4) as pf:
        got = list(pf)
    assert [k for k, _, _ in got] == list(range(0, len(frames), 3))
    k, rgb, gray = got[5]
    assert np.array_equal(gray, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    with open_video(path) as v, Prefetch(v.frames(1), depth=2) as pf:  # the consumer leaves after 3 frames
        first = [item[0] for _, item in zip(range(3), pf)]
    assert first == [0, 1, 2] and not pf._thread.is_alive()


# ---------------------------------------------------------------------------------------------- frame source
def test_a_slow_consumer_gets_the_newest_frame_and_stale_ones_are_dropped(take):
    from backend.live import FrameSource

    path, _, frames = take
    src = FrameSource(path, realtime=True).open()
    try:
        got = []
        while not src.finished and len(got) < 8:
            f = src.next(0.5)
            if f is not None:
                got.append(f.index)
                time.sleep(0.12)  # three frames' time at 25 fps
    finally:
        src.close()
    assert src.dropped >= 8 and all(b - a >= 2 for a, b in zip(got[1:], got[2:]))


# ---------------------------------------------------------------------------------------------- live method
def test_live_streams_results_at_the_file_rate(backend, take, tmp_path):
    path, holds, frames = take
    preview = str(tmp_path / "view.jpg")
    t = time.monotonic()
    resp, items = _live(backend, {"source": path, "preview": preview, "top_k": 3})
    secs = time.monotonic() - t
    res = resp["result"]
    assert res["end"] == "end of video" and res["results"] == len(items)
    assert secs > len(frames) / 25 * 0.9  # played at its own frame rate, not as fast as possible
    # every frame is either analysed or dropped as stale (how many depends on the machine's load), newest first
    assert res["frames_read"] == len(frames) and len(items) + res["dropped"] >= len(frames) - 1
    assert len(items) > len(frames) / 4 and all(b["frame"] > a["frame"] for a, b in zip(items, items[1:]))
    assert all(it["ok"] for it in items)
    it = items[5]
    assert len(it["points"]) == 68 and len(it["box"]) == 4 and len(it["candidates"]) == 3
    assert set(it["probabilities"]) == {"anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"}
    assert it["tracked"] in ("detected", "followed") and it["grabbed"] <= it["sent"]
    assert sum(i["tracked"] == "detected" for i in items) < len(items) / 4
    assert os.path.isfile(preview) and cv2.imread(preview).shape == (240, 320, 3)
    # the expression follows the performance: surprise held in the middle, joy at both ends
    by_frame = {i["frame"]: i["label"] for i in items}
    mid = holds[1]
    assert [by_frame.get(f) for f in range(mid.start + 5, mid.end - 5)].count("joy") == 0
    first = [by_frame[f] for f in range(holds[0].start, holds[0].end) if f in by_frame]
    assert first and set(first) == {"joy"}


def test_live_stops_on_cancel_and_other_requests_go_on(backend, take, astronaut_path):
    path, _, _ = take
    resp, items = _live(backend, {"source": path, "realtime": True}, cancel_after=5)
    assert resp["error"]["data"]["name"] == "CANCELLED"
    partial = resp["error"]["data"]["partial"]
    assert 5 <= partial["results"] <= 15 and partial["end"] == "stopped"  # stops within a frame or a few
    assert backend.call("detect", {"image": astronaut_path})["faces_found"] == 1  # the server serves on


@pytest.mark.parametrize(
    "source,expect",
    [(15, "webcam 15 does not exist"), ("/nonexistent/take.avi", "not found"), ("EMPTY", "no frames")],
)
def test_camera_errors_are_clear(backend, source, expect, tmp_path):
    if source == "EMPTY":  # a video file with a header and no frames
        source = str(tmp_path / "empty.avi")
        wr = cv2.VideoWriter(source, cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
        wr.release()
    resp, items = _live(backend, {"source": source})
    assert resp["error"]["code"] == P.CAPTURE_FAILED and expect in resp["error"]["message"], resp
    assert not items


def test_a_stream_cut_mid_way_fails_with_the_results_so_far(backend, take, tmp_path):
    """A camera unplugged mid-stream, simulated by a truncated video: CAPTURE_FAILED with the summary."""
    path, _, frames = take
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.avi")
    with open(cut, "wb") as f:
        f.write(data[: len(data) // 3])
    resp, items = _live(backend, {"source": cut, "realtime": False})
    err = resp["error"]
    assert err["code"] == P.CAPTURE_FAILED and "stopped at frame" in err["message"], err
    assert 20 < len(items) < len(frames) / 2 and err["data"]["partial"]["results"] == len(items)


def test_the_face_leaving_the_frame_is_no_face_not_an_error(backend, take, tmp_path):
    path, _, frames = take
    blank = np.full_like(frames[0], 128)
    clip = write_video(str(tmp_path / "leave.avi"), frames[:10] + [blank] * 6 + frames[:10], 25)
    resp, items = _live(backend, {"source": clip, "realtime": False})
    assert resp["result"]["no_face"] == 6
    assert [i["ok"] for i in items] == [True] * 10 + [False] * 6 + [True] * 10
    assert items[10]["error"] == "NO_FACE"


def test_neutral_hook_shifts_the_geometry(backend, take, astronaut_path):
    path, _, _ = take
    geo = backend.call("embed", {"image": astronaut_path})["geometry"]
    base = backend.call("retrieve_batch", {"video": path, "frame_step": 40, "top_k": 3})
    got = []
    for params in ({}, {"neutral": geo}):
        backend.notifications.clear()
        backend.call("retrieve_batch", {"video": path, "frame_step": 40, "top_k": 3, **params})
        got.append([n["params"]["item"]["candidates"] for n in backend.notifications])
    assert base["frames_done"] == len(got[0])
    assert got[0] != got[1]  # the actor's neutral changes the geometric distance
    resp = backend.request("live", {"source": path, "neutral": [1, 2]})
    assert resp["error"]["code"] == P.INVALID_PARAMS


# ---------------------------------------------------------------------------------------------- sparse keys
def test_sparse_keys_recover_the_held_expressions(backend, take):
    """retrieve_batch (every frame, tracked) -> key_poses: the holds in order, timing within 3 frames, at most
    a third of the dense keys."""
    path, holds, frames = take
    backend.notifications.clear()
    res = backend.call("retrieve_batch", {"video": path, "frame_step": 1, "top_k": 5})
    items = [n["params"]["item"] for n in backend.notifications]
    assert res["frames_done"] == len(frames) and all(i["ok"] for i in items)
    labels = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    probs = [[i["probabilities"][lab] for lab in labels] for i in items]
    out = backend.call(
        "key_poses",
        {"frames": [i["index"] for i in items], "probabilities": probs, "labels": labels,
         "candidates": [i["candidates"] for i in items]},
    )  # fmt: skip
    main = [k for k in out["keys"] if k["kind"] == "key"]
    # the network reads the warped surprise as surprise or fear (both wide eyes, open mouth)
    read = [("surprise", "fear") if h.label == "surprise" else (h.label,) for h in holds]
    assert len(main) == len(holds), out
    assert all(k["label"] in r for k, r in zip(main, read)), out
    for k, h in zip(main, holds):
        assert abs(k["frame"] - h.start) <= 3, (k, h)
    ends = [k for k in out["keys"] if k["kind"] == "hold"]
    for k, h in zip(ends, holds):
        assert abs(k["frame"] - h.end) <= 3, (k, h)
    rep = out["report"]
    assert rep["sparse_keys"] * 3 <= rep["dense_keys"] == len(frames)
    assert all(k["pose_id"] for k in out["keys"])
    surprised = {k["pose_id"] for k, h in zip(main, holds) if h.label == "surprise"}
    assert surprised.isdisjoint({k["pose_id"] for k, h in zip(main, holds) if h.label == "joy"})
    json.dumps(out)


def test_key_poses_refuses_bad_takes(backend):
    for params in ({"frames": [], "probabilities": []}, {"frames": [1, 2], "probabilities": [[0.5, 0.5]]}):
        assert backend.request("key_poses", params)["error"]["code"] == P.INVALID_PARAMS


# ---------------------------------------------------------------------------------------------- smoothing
def test_online_smoother_agrees_with_the_batch_smoothing():
    """Live mode and batch retrieval smooth alike: the online smoother picks, sample by sample, the pose of the
    batch smoothing's segment at that frame."""
    from deepexpr_blender.core.smoothing import OnlineSmoother, smooth

    rng = np.random.default_rng(3)
    for _ in range(50):
        samples = []
        for f in range(int(rng.integers(5, 80))):
            if rng.random() < 0.1:
                samples.append((f, None))
                continue
            ids = rng.choice(["a", "b", "c", "d"], size=3, replace=False)
            samples.append((f, [(str(i), float(s)) for i, s in zip(ids, rng.random(3))]))
        hold, hyst = int(rng.integers(0, 8)), float(rng.choice([0.0, 0.05, 0.2]))
        segs = smooth(samples, hold, hyst)
        online = OnlineSmoother(hold, hyst)
        for f, cands in samples:
            online.push(f, cands)
            expect = next((s.pose_id for s in segs if s.start <= f <= s.end), None)
            assert online.current == expect, (f, samples, segs)
    sm = OnlineSmoother(0, 0.0)
    sm.push(0.0, [("a", 0.1)])
    sm.push(1.0, [("b", 0.1), ("a", 0.5)])
    assert (sm.previous, sm.current) == ("a", "b")
    assert sm.blend(1.0, 0.5) == 0.0 and sm.blend(1.25, 0.5) == 0.5 and sm.blend(2.0, 0.5) == 1.0
