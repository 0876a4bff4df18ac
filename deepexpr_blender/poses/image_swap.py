"""2D image swaps: ``{"type": "image", "path": <image path, relative to the library>}``.

Found in a folder in the FERG-DB layout (``<character>/<character>_<expression>/*.png``), not in a rig. The
target is an Empty holding one image-empty child per drawing; keying shows the chosen drawing and hides the
others with constant interpolation, as cut-out animators swap drawings.
"""

from __future__ import annotations

import os
import shutil

from ..core.vocabulary import ferg_layout, label_from_name
from ..errors import KeyingError, RigError
from .base import PoseKind, require

SWAP_PREFIX = "DeepExpr swap: "


def _resolve(pose: dict, library_root: str) -> str:
    return pose["path"] if os.path.isabs(pose["path"]) else os.path.join(library_root, pose["path"])


class ImageSwapPose(PoseKind):
    type = "image"
    title = "image pose"

    def find_in_folder(self, folder: str) -> list[dict]:
        """FERG-DB layout: <character>/<character>_<expression>/*.png -> image poses, labelled by the folder."""
        poses = [
            {
                "pose": {"type": self.type, "path": path},
                "label": label_from_name(expr),
                "expression": label_from_name(expr),
                "intensity": None,
                "name": f"{char}/{os.path.basename(path)}",
                "character": char,
                "source": "images",
                "kind": self.type,
            }
            for char, expr, path in ferg_layout(folder)
        ]
        if not poses:
            raise RigError(
                f"no images in the FERG-DB layout (<character>/<character>_<expression>/*.png) under {folder}"
            )
        return poses

    def validate(self, pose: dict, root: str) -> None:
        path = pose.get("path")
        require(
            isinstance(path, str) and os.path.isfile(os.path.join(root, path)), f"image pose file missing: {path!r}"
        )

    def can_key(self, obj) -> bool:
        return obj.type == "EMPTY"

    def channels(self, obj, pose: dict) -> list[tuple]:
        drawings = [c for c in obj.children if "deepexpr_image" in c] if obj.type == "EMPTY" else []
        return [(c, prop) for c in drawings for prop in ("hide_viewport", "hide_render")]

    def check_target(self, obj, pose: dict, library_root: str = "") -> None:
        super().check_target(obj, pose, library_root)
        path = _resolve(pose, library_root)
        if not os.path.isfile(path):
            raise KeyingError(f"pose image missing: {path}")
        if obj.type != "EMPTY":
            raise KeyingError("For image poses the target must be an Empty (the 2D character's holder)")

    def key(self, obj, pose: dict, frame: int, library_root: str = "") -> list[str]:
        import bpy

        self.check_target(obj, pose, library_root)
        path = _resolve(pose, library_root)
        child = next((c for c in obj.children if c.get("deepexpr_image") == path), None)
        if child is None:
            child = bpy.data.objects.new(SWAP_PREFIX + os.path.basename(path), None)
            child.empty_display_type = "IMAGE"
            child.data = bpy.data.images.load(path, check_existing=True)
            child["deepexpr_image"] = path
            child.parent = obj
            for coll in obj.users_collection:
                coll.objects.link(child)
            # A new drawing is hidden before its first key, not shown over the earlier frames.
            start = min(bpy.context.scene.frame_start, frame - 1)
            child.hide_viewport = child.hide_render = True
            for prop in ("hide_viewport", "hide_render"):
                child.keyframe_insert(prop, frame=start)
        keyed = []
        for c in obj.children:
            if "deepexpr_image" not in c:
                continue
            hidden = c is not child
            c.hide_viewport = c.hide_render = hidden
            for prop in ("hide_viewport", "hide_render"):
                c.keyframe_insert(prop, frame=frame)
            keyed.append(c.name)
            _constant(c)
        return keyed

    def store(self, pose: dict, rig, staging: str, entry_id: str, size: int) -> tuple[dict, str]:
        """A resized copy as the thumbnail, and the image itself copied into the library's images/."""
        rel = f"thumbs/{entry_id}.png"
        _copy_thumbnail(pose["path"], os.path.join(staging, rel), size)
        ext = os.path.splitext(pose["path"])[1].lower()
        os.makedirs(os.path.join(staging, "images"), exist_ok=True)
        shutil.copyfile(pose["path"], os.path.join(staging, "images", entry_id + ext))
        return {**pose, "path": f"images/{entry_id}{ext}"}, rel


def _constant(obj) -> None:
    from .. import compat

    for fc in compat.action_fcurves(obj):
        for kp in fc.keyframe_points:
            kp.interpolation = "CONSTANT"


def _copy_thumbnail(src: str, dst: str, size: int) -> None:
    import bpy

    img = bpy.data.images.load(src, check_existing=False)
    try:
        w, h = img.size
        s = size / max(w, h)
        img.scale(max(1, round(w * s)), max(1, round(h * s)))
        img.filepath_raw = dst
        img.file_format = "PNG"
        img.save()
    finally:
        bpy.data.images.remove(img)


KIND = ImageSwapPose()
