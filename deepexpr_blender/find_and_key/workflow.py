"""Find poses (rank the chosen library against the captured face) and key a candidate on the target."""

from __future__ import annotations

import json

from .. import jobs, paths, poses
from ..errors import WorkflowError
from ..props import retrieval_params
from ..session import connection


def find_poses(scene) -> int:
    """Ask the backend for the closest poses; the candidates land in ``Scene.deepexpr.candidates``."""
    props, name = scene.deepexpr, scene.name
    if not props.captured_path:
        raise WorkflowError("Capture a face first")
    params = {"image": props.captured_path, "top_k": props.top_k, **retrieval_params(props)}
    root = paths.library_root(scene)
    if root:
        params["library"] = root
    props.busy, props.status = True, "Finding poses..."

    def done(res: dict) -> None:
        sc = jobs.scene(name)
        p = sc.deepexpr
        p.candidates.clear()
        for c in res["candidates"]:
            item = p.candidates.add()
            item.pose_id, item.label = c["id"], c.get("label") or ""
            item.score, item.js, item.geo = c["score"], c["js"], c["geo"]
            item.thumbnail, item.pose_json = c["thumbnail"], json.dumps(c["pose"])
        p.last_library = res["library"]
        p.expression = res["label"]
        p.busy, p.status = False, f"{len(res['candidates'])} poses from {res['library_size']} ({res['label']})"

    return connection.require_backend().request("retrieve", params, done, jobs.on_failure(name, "Retrieval"))


def key_candidate(scene, index: int) -> list[str]:
    """Key candidate ``index`` on the target at the current frame; returns the keyed channels."""
    props = scene.deepexpr
    if not 0 <= index < len(props.candidates):
        raise WorkflowError("No such candidate: find poses first")
    c = props.candidates[index]
    keyed = poses.key_pose(props.target, json.loads(c.pose_json), scene.frame_current, props.last_library)
    props.status = f"Keyed {c.pose_id} on {props.target.name} at frame {scene.frame_current}"
    return keyed
