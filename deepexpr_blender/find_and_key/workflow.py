"""Find poses (rank the chosen library against the captured face) and key a candidate on the target."""

from __future__ import annotations

import json

from .. import jobs, paths, poses, status
from ..errors import WorkflowError
from ..props import retrieval_params
from ..session import connection


class FindJob(jobs.Job):
    kind = "find"
    title = "Find poses"
    cancellable = True
    cancel_ends_now = True  # nothing changes until the answer comes: Esc ends it and the answer is ignored


def describe(entry_id: str, pose: dict) -> tuple[str, float]:
    """(character, intensity 0..1 or -1) of a library pose, for the candidate list."""
    character = pose.get("target") or pose.get("character") or entry_id.split("-")[0]
    intensity = pose.get("intensity")
    if intensity is None and isinstance(pose.get("values"), dict) and pose["values"]:
        intensity = max(0.0, min(1.0, max(float(v) for v in pose["values"].values())))
    return str(character), float(intensity) if intensity is not None else -1.0


def find_poses(scene) -> FindJob:
    """Ask the backend for the closest poses; the candidates land in ``Scene.deepexpr.candidates``."""
    props = scene.deepexpr
    if not props.captured_path:
        raise WorkflowError("Capture a face first")
    params = {"image": props.captured_path, "top_k": props.top_k, **retrieval_params(props)}
    root = paths.library_root(scene)
    if root:
        params["library"] = root
    client = connection.require_backend()
    job = FindJob(scene, "Finding poses...")

    def progress(p: dict) -> None:  # sent while a new library is indexed
        job.indexing(p)

    def done(res: dict) -> None:
        p = job.props()
        if p is None:
            return job.finish("Poses found (their scene is gone)", "INFO")
        if not root:
            status.backend["builtin_library"] = res["library"]
        p.candidates.clear()
        for c in res["candidates"]:
            item = p.candidates.add()
            item.pose_id, item.label = c["id"], c.get("label") or ""
            item.character, item.intensity = describe(c["id"], c["pose"])
            item.score, item.js, item.geo = c["score"], c["js"], c["geo"]
            item.thumbnail, item.pose_json = c["thumbnail"], json.dumps(c["pose"])
        p.candidate_index = 0
        p.last_library = res["library"]
        p.expression = res["label"]
        job.finish(f"{len(res['candidates'])} poses of {res['library_size']} for {res['label']}")

    job.request_id = client.request("retrieve", params, job.guard(done), job.on_error, job.guard(progress))
    return job


def key_candidate(scene, index: int) -> list[str]:
    """Key candidate ``index`` on the target at the current frame; returns the keyed channels."""
    props = scene.deepexpr
    if not 0 <= index < len(props.candidates):
        raise WorkflowError("No such candidate: find poses first")
    c = props.candidates[index]
    keyed = poses.key_pose(props.target, json.loads(c.pose_json), scene.frame_current, props.last_library)
    props.error = ""
    props.status, props.status_kind = f"Keyed {c.pose_id} on {props.target.name} at frame {scene.frame_current}", "OK"
    return keyed
