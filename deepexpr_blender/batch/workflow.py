"""Batch retrieval: a pose for every n-th frame of a video or image folder, keyed on the target over the
timeline with temporal smoothing (``core.smoothing``)."""

from __future__ import annotations

import os

import bpy

from .. import jobs, paths, poses
from ..client import BackendError
from ..core.smoothing import smooth
from ..core.vocabulary import IMAGE_EXTS
from ..errors import KeyingError, WorkflowError
from ..props import retrieval_params
from ..session import connection


class BatchJob:
    """State of one batch run: samples so far, and what has been keyed."""

    def __init__(self, scene, entries: dict[str, dict], library: str):
        self.scene_name = scene.name
        self.start_frame = scene.frame_current
        self.entries, self.library = entries, library
        self.samples: list[tuple[int, list[tuple[str, float]] | None]] = []
        self.keyed_starts: set[int] = set()
        self.no_face: list[int] = []
        self.request_id = -1
        self.done = False
        self.cancelled = False
        self.error: str | None = None

    def add(self, item: dict) -> None:
        frame = self.start_frame + item["index"] * item.get("step", 1)
        if item.get("ok"):
            self.samples.append((frame, [(c[0], c[1]) for c in item["candidates"]]))
        else:
            self.samples.append((frame, None))
            self.no_face.append(frame)
        self.key_new()

    def key_new(self) -> None:
        p = jobs.scene(self.scene_name).deepexpr
        segs = smooth(self.samples, p.batch_min_hold, p.batch_hysteresis)
        prev = None
        for seg in segs:
            if seg.start not in self.keyed_starts:
                if prev is not None and seg.start - 1 > prev.start:  # hold the previous pose until the change
                    poses.key_pose(p.target, self.entries[prev.pose_id]["pose"], seg.start - 1, self.library)
                poses.key_pose(p.target, self.entries[seg.pose_id]["pose"], seg.start, self.library)
                self.keyed_starts.add(seg.start)
            prev = seg

    def report(self) -> str:
        p = jobs.scene(self.scene_name).deepexpr
        segs = smooth(self.samples, p.batch_min_hold, p.batch_hysteresis)
        state = "cancelled" if self.cancelled else ("failed: " + self.error if self.error else "done")
        no_face = ", ".join(map(str, self.no_face[:12])) + (" ..." if len(self.no_face) > 12 else "")
        return f"Batch {state}: {len(self.samples)} frames, {len(segs)} poses keyed" + (
            f"; no face at frames {no_face}" if self.no_face else ""
        )


def start_batch(scene) -> BatchJob:
    props = scene.deepexpr
    if props.target is None:
        raise KeyingError("Pick the target character first")
    src = bpy.path.abspath(props.batch_input)
    if not src or not os.path.exists(src):
        raise WorkflowError("Choose a video file or a folder of images as the batch input")
    params: dict = {
        "frame_step": props.batch_step,
        "top_k": max(props.top_k, 5),
        **retrieval_params(props),
    }
    if os.path.isdir(src):
        files = sorted(f for f in os.listdir(src) if f.lower().endswith(IMAGE_EXTS))
        params["images"] = [os.path.join(src, f) for f in files]  # the backend samples every frame_step-th
    else:
        params["video"] = src
    root = paths.library_root(scene)
    if root:
        params["library"] = root
    job = BatchJob(scene, {}, root)
    props.busy, props.status, props.progress = True, "Batch retrieval...", 0.0

    def progress(p: dict) -> None:
        sc = jobs.scene(job.scene_name)
        if not job.entries:
            job.library = p["library"]
            job.entries = {e["id"]: e for e in poses.load_library(p["library"])["entries"]}
        job.add(p["item"])
        sc.deepexpr.progress = p["done"] / max(p["total"], 1)
        sc.deepexpr.status = f"Batch: frame {p['done']} of {p['total']}"

    def finished(res: dict) -> None:
        job.done = True
        _finish(job)

    def failed(err: BackendError) -> None:
        job.done = True
        if err.name == "CANCELLED":
            job.cancelled = True
        else:
            job.error = str(err)
        _finish(job)

    job.request_id = connection.require_backend().request("retrieve_batch", params, finished, failed, progress)
    return job


def _finish(job: BatchJob) -> None:
    sc = jobs.scene(job.scene_name)
    sc.deepexpr.busy = False
    sc.deepexpr.batch_report = sc.deepexpr.status = job.report()
