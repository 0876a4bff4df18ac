"""Batch retrieval: a pose for every n-th frame of a video or image folder, keyed on the target over the
timeline with temporal smoothing (``core.smoothing``).

A batch can be trusted: it refuses a target it cannot key before starting; it replaces the keys in its frame
range on the target's channels (hand keys and an earlier run's keys there go; one undo step of the operator
brings them back); it reports exactly how many poses it keyed, at which frames, and what failed. From the
Sequencer it takes its input and start frame from the active movie strip and keys only under that strip.
"""

from __future__ import annotations

import os

import bpy

from .. import compat, jobs, paths, poses, sequencer, status
from ..core.smoothing import smooth
from ..core.vocabulary import IMAGE_EXTS
from ..errors import KeyingError, PoseError, WorkflowError
from ..props import retrieval_params
from ..session import connection


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _frames(frames: list[int], most: int = 10) -> str:
    return ", ".join(map(str, frames[:most])) + (" ..." if len(frames) > most else "")


class BatchJob(jobs.Job):
    """One batch run: samples so far, what has been keyed, what failed."""

    kind = "batch"
    title = "Batch retrieval"
    cancellable = True

    def __init__(self, scene, entries: dict[str, dict], library: str, window: tuple[int, int] | None = None):
        super().__init__(scene, "Batch retrieval: starting...")
        self.start_frame = scene.frame_current if window is None else window[2]
        self.window = window[:2] if window else None  # frames that may be keyed (under the movie strip)
        self.entries, self.library = entries, library
        self.samples: list[tuple[int, list[tuple[str, float]] | None]] = []
        self.pose_frames: dict[int, int] = {}  # smoothed segment start -> frame its pose was keyed at
        self.keys: list[tuple[int, str]] = []  # (frame, pose id) of every pose keyed (holds included)
        self.no_face: list[int] = []
        self.failed: list[tuple[int, str]] = []
        self.cleared_until = self.start_frame - 1
        self.target_name = scene.deepexpr.target.name

    # ------------------------------------------------------------------ keying as results come
    def target(self):
        p = self.props()
        obj = p.target if p is not None else None
        if obj is None:
            raise KeyingError("The Target was cleared during the batch: pick it again and run the batch again")
        return obj

    def in_window(self, frame: int) -> bool:
        return self.window is None or self.window[0] <= frame <= self.window[1]

    def clear_range(self, total: int, step: int) -> None:
        """Delete the target's keys on the library's channels from the batch's first frame up to its expected
        last frame (once; extended when a video turns out longer): the batch replaces what was there."""
        last = self.start_frame + total * step - 1
        if self.window is not None:
            last = min(last, self.window[1])
        first = max(self.cleared_until + 1, self.window[0] if self.window else self.start_frame)
        if last < first:
            return
        obj = self.target()
        by_id: dict = {}
        for id_data, path in poses.channels_for(obj, [e["pose"] for e in self.entries.values()]):
            by_id.setdefault(id_data.as_pointer(), (id_data, set()))[1].add(path)
        for id_data, paths_ in by_id.values():
            compat.clear_keys(id_data, paths_, first, last)
        self.cleared_until = last

    def add(self, item: dict) -> None:
        frame = self.start_frame + item["index"] * item.get("step", 1)
        if item.get("ok"):
            self.samples.append((frame, [(c[0], c[1]) for c in item["candidates"]]))
        else:
            self.samples.append((frame, None))
            self.no_face.append(frame)
        self.key_new()

    def key_new(self) -> None:
        """Key the smoothed poses that are new since the last sample: each at its first frame (or at the
        window's first frame when it began before it), the previous pose held until the frame before."""
        p = self.props()
        obj = self.target()
        segs = smooth(self.samples, p.batch_min_hold, p.batch_hysteresis)
        prev, prev_at = None, None
        for seg in segs:
            at = seg.start if self.window is None else max(seg.start, self.window[0])
            visible = self.window is None or (at <= self.window[1] and seg.end >= self.window[0])
            if visible and seg.start not in self.pose_frames:
                if prev_at is not None and at - 1 > prev_at:
                    self._key(obj, prev.pose_id, at - 1)  # hold the previous pose until the change
                self._key(obj, seg.pose_id, at)
                self.pose_frames[seg.start] = at
            prev, prev_at = seg, self.pose_frames.get(seg.start)

    @property
    def keyed_starts(self) -> set[int]:
        """The frames where a pose was keyed (holds not counted)."""
        return set(self.pose_frames.values())

    def _key(self, obj, pose_id: str, frame: int) -> None:
        try:
            poses.key_pose(obj, self.entries[pose_id]["pose"], frame, self.library)
        except (KeyingError, PoseError) as err:
            self.failed.append((frame, str(err)))
            raise
        self.keys.append((frame, pose_id))

    # ------------------------------------------------------------------ the report
    def report(self) -> str:
        state = "cancelled" if self.cancelled else ("stopped" if self.failed or self.error else "done")
        starts = sorted(self.keyed_starts)
        text = (
            f"Batch {state}: {_count(len(self.samples), 'frame')} sampled, {_count(len(starts), 'pose')} keyed on "
            f"{self.target_name}"
        )
        if starts:
            text += f" at frames {_frames(starts)}"
        if self.no_face:
            text += f"; no face at frames {_frames(self.no_face, 12)}"
        if self.failed:
            frame, why = self.failed[0]
            text += f"; keying failed at frame {frame}: {why}"
        return text

    def end(self) -> None:
        """Finish with the report; nothing keyed although faces were found is an error, not a success."""
        p = self.props()
        text = self.report()
        if p is not None:
            p.batch_report = text
        faces = len(self.samples) - len(self.no_face)
        if self.failed or (not self.cancelled and not self.keyed_starts):
            why = "no face in any sampled frame" if self.samples and not faces else "nothing was keyed"
            if self.failed:
                why = "a pose could not be keyed"
            self.fail(f"{text}. Batch retrieval failed: {why}" + ("" if self.failed else ". Check the Input."))
            if p is not None:
                p.batch_report = text
        elif self.cancelled:
            self.finish(text + " (what was keyed stays; Ctrl+Z removes it)", "INFO")
        else:
            self.finish(text)


def strip_input(scene) -> tuple[str, tuple[int, int, int]]:
    """(movie file, (first frame, last frame, frame of the video's first frame)) of the active movie strip."""
    strip = sequencer.active_movie_strip(scene)
    if strip is None:
        raise WorkflowError("Make a movie strip active in the Sequencer: the batch reads its video")
    problem = sequencer.fps_problem(scene, strip)
    if problem:
        raise WorkflowError(problem)
    first, last, zero = int(strip.frame_final_start), int(strip.frame_final_end) - 1, int(round(strip.frame_start))
    return bpy.path.abspath(strip.filepath), (first, last, zero)


def start_batch(scene, from_strip: bool = False) -> BatchJob:
    """Start a batch over the Input (or the active movie strip when ``from_strip``); keys land as results come."""
    props = scene.deepexpr
    obj = props.target
    if obj is None:
        raise KeyingError("Pick the Target first: the character to key (Poses panel)")
    if not poses.can_key(obj):
        raise KeyingError(poses.cannot_key_reason(obj))
    window = None
    if from_strip:
        src, window = strip_input(scene)
    else:
        src = bpy.path.abspath(props.batch_input)
        if not src or not os.path.exists(src):
            raise WorkflowError("Choose a video file or a folder of images as the batch Input (Batch panel)")
    params: dict = {"frame_step": props.batch_step, "top_k": max(props.top_k, 5), **retrieval_params(props)}
    if os.path.isdir(src):
        files = sorted(f for f in os.listdir(src) if f.lower().endswith(IMAGE_EXTS))
        if not files:
            raise WorkflowError(f"The folder {src} holds no images: choose a video or a folder of images")
        params["images"] = [os.path.join(src, f) for f in files]  # the backend samples every frame_step-th
    else:
        params["video"] = src
    root = paths.library_root(scene) or status.backend.get("builtin_library", "")
    entries: dict[str, dict] = {}
    if root:  # the library is known here: check the target against its poses before anything starts
        entries = {e["id"]: e for e in poses.load_library(root)["entries"]}
        poses.check_library_target(obj, list(entries.values()), root)
    if paths.library_root(scene):
        params["library"] = root
    client = connection.require_backend()
    job = BatchJob(scene, entries, root, window)

    def progress(p: dict) -> None:
        if job.indexing(p):
            return
        if not job.entries or job.library != p["library"]:
            job.library = p["library"]
            job.entries = {e["id"]: e for e in poses.load_library(p["library"])["entries"]}
            poses.check_library_target(job.target(), list(job.entries.values()), job.library)
        job.clear_range(p["total"], p["item"].get("step", 1))
        try:
            job.add(p["item"])
        except (KeyingError, PoseError):
            return job.end()
        job.progress(p["done"], p["total"], f"Batch: frame {p['done']} of {p['total']}, {len(job.keyed_starts)} keyed")

    def finished(res: dict) -> None:
        job.end()

    def failed(err) -> None:
        if getattr(err, "name", "") == "CANCELLED":
            job.cancelled = True
            job.end()
        else:
            job.backend_failed(err)
            p = job.props()
            if p is not None:
                p.batch_report = job.report() + f"; {job.error}"

    job.request_id = client.request(
        "retrieve_batch", params, job.guard(finished), job.guard(failed), job.guard(progress)
    )
    return job
