"""Per-scene state: one PropertyGroup on ``Scene.deepexpr``."""

from __future__ import annotations

import json

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

from .core.vocabulary import DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_GAMMA, LABELS

EXPRESSION_ITEMS = [(e, e.title(), f"Target expression: {e}") for e in LABELS]


def _library_items(self, context):
    from . import prefs

    items = [("BUILTIN", "Built-in characters", "The procedural toon characters that ship with DeepExpr")]
    p = prefs.get()
    for i, f in enumerate(p.library_folders if p else []):
        if f.path:
            items.append((f"PREF{i}", bpy.path.basename(f.path.rstrip("/\\")) or f.path, f.path))
    items.append(("CUSTOM", "Folder...", "A library folder chosen below"))
    return items


class DEEPEXPR_PG_candidate(PropertyGroup):
    pose_id: StringProperty()
    label: StringProperty()
    character: StringProperty(description="The character (or rig) the pose belongs to")
    intensity: FloatProperty(default=-1.0, description="How strong the pose is, 0 to 1 (-1: not known)")
    score: FloatProperty()
    js: FloatProperty()
    geo: FloatProperty()
    thumbnail: StringProperty(subtype="FILE_PATH")
    pose_json: StringProperty(description="The library entry's pose, as JSON")


class DEEPEXPR_PG_scene(PropertyGroup):
    # capture
    source: EnumProperty(
        name="Source",
        items=[
            ("WEBCAM", "Webcam", "Grab a frame from a webcam"),
            ("IMAGE", "Image", "A face photo on disk"),
            ("STRIP", "Strip", "The frame under the playhead of the active movie strip (Sequencer)"),
        ],
        default="IMAGE",
    )
    webcam_index: IntProperty(name="Webcam", min=0, max=16, default=0, description="OpenCV camera index")
    image_path: StringProperty(name="Image", subtype="FILE_PATH", description="Face image to use")
    captured_path: StringProperty(name="Captured", subtype="FILE_PATH", description="The image being analysed")
    preview_path: StringProperty(subtype="FILE_PATH", description="The captured face with its landmarks")
    expression: StringProperty(name="Expression", description="Predicted expression of the captured face")
    confidence: FloatProperty(name="Confidence", min=0, max=1)
    # retrieval
    library: EnumProperty(name="Library", items=_library_items, description="Pose library to search")
    library_path: StringProperty(name="Folder", subtype="DIR_PATH", description="Library folder (with library.json)")
    last_library: StringProperty(subtype="DIR_PATH", description="Library the candidates came from")
    top_k: IntProperty(name="Candidates", min=1, max=24, default=6)
    alpha: FloatProperty(
        name="Feature weight", min=0, default=DEFAULT_ALPHA, description="Weight of the JS feature distance"
    )
    beta: FloatProperty(
        name="Geometry weight", min=0, default=DEFAULT_BETA, description="Weight of the geometric distance"
    )
    gamma: FloatProperty(
        name="Label weight",
        min=0,
        default=DEFAULT_GAMMA,
        description="Weight of the distance between the face's expression and the pose's declared expression",
    )
    # the actor's neutral ("Capture my neutral"), sent with every retrieval
    neutral_points: StringProperty(description="The actor's neutral face: its 68 landmarks, as JSON")
    neutral_probabilities: StringProperty(description="The actor's neutral face: its class probabilities, as JSON")
    neutral_image: StringProperty(subtype="FILE_PATH", description="The image the neutral was captured from")
    use_neutral: BoolProperty(
        name="Use my neutral",
        default=True,
        description="Compare each face with your captured neutral face, so a resting face that looks stern does not "
        "retrieve anger",
    )
    target: PointerProperty(name="Target", type=bpy.types.Object, description="Character to key")
    candidates: CollectionProperty(type=DEEPEXPR_PG_candidate)
    candidate_index: IntProperty(name="Candidate", min=0, description="The candidate shown large, keyed by Key")
    # status of background work (written by jobs.Job)
    busy: BoolProperty(default=False, description="A DeepExpr job is running in this scene")
    job: StringProperty(description="The running job: capture, find, batch, transition")
    cancellable: BoolProperty(default=False, description="Esc cancels the running job")
    status: StringProperty(description="What DeepExpr is doing, or how the last job ended")
    status_kind: EnumProperty(items=[("INFO", "Info", ""), ("OK", "Done", ""), ("ERROR", "Error", "")], default="INFO")
    error: StringProperty(description="The last failure in plain words, with what to do; cleared by the next job")
    progress: FloatProperty(min=0, max=1, subtype="FACTOR")
    progress_known: BoolProperty(default=False, description="The job reports how far it is")
    # transitions
    seq_source: StringProperty(name="Source face", subtype="FILE_PATH", description="Face image to animate")
    seq_mode: EnumProperty(
        name="Target",
        items=[
            ("EXPRESSION", "Expression", "A named expression"),
            ("IMAGE", "Face image", "Another face image's expression"),
            ("KEYFRAMES", "Key frames", "Landmark key frames from a JSON file"),
        ],
        default="EXPRESSION",
    )
    seq_expression: EnumProperty(name="Expression", items=EXPRESSION_ITEMS, default="joy")
    seq_target_image: StringProperty(name="Target face", subtype="FILE_PATH")
    seq_keyframes: StringProperty(name="Key frames", subtype="FILE_PATH")
    seq_frames: IntProperty(name="Frames", min=2, max=600, default=24)
    seq_easing: EnumProperty(
        name="Easing",
        items=[
            ("linear", "Linear", ""),
            ("ease_in_out", "Ease In-Out", ""),
            ("ease_in", "Ease In", ""),
            ("ease_out", "Ease Out", ""),
        ],
        default="ease_in_out",
    )
    seq_method: EnumProperty(
        name="Method",
        items=[
            ("warp", "Warp", "Warp + expression shading + mouth interior, the photo's resolution and colour"),
            ("warp+gan", "Warp + GAN", "The warp, refined by the landmark-guided GAN's expression delta"),
            ("gan", "GAN", "Landmark-guided GAN, 64x64 gray"),
        ],
        default="warp",
    )
    # batch
    batch_input: StringProperty(name="Input", subtype="FILE_PATH", description="A video file or a folder of images")
    batch_step: IntProperty(name="Frame step", min=1, max=100, default=2, description="Retrieve every n-th frame")
    batch_min_hold: IntProperty(
        name="Minimum hold", min=0, max=240, default=6, description="Frames a pose is held before it may change"
    )
    batch_hysteresis: FloatProperty(
        name="Hysteresis",
        min=0,
        max=1,
        default=0.02,
        description="Score margin a new pose needs to replace the current one",
    )
    batch_report: StringProperty(description="Last batch run's report")


def retrieval_params(props) -> dict:
    """The retrieval weights of the panel, and the actor's neutral when one is captured and in use (the
    ``retrieve`` / ``retrieve_batch`` params, docs/protocol.md)."""
    params = {"alpha": props.alpha, "beta": props.beta, "gamma": props.gamma}
    if props.use_neutral and props.neutral_points:
        params["neutral"] = {"points": json.loads(props.neutral_points)}
        if props.neutral_probabilities:
            params["neutral"]["probabilities"] = json.loads(props.neutral_probabilities)
    return params


classes = (DEEPEXPR_PG_candidate, DEEPEXPR_PG_scene)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    bpy.types.Scene.deepexpr = PointerProperty(type=DEEPEXPR_PG_scene)


def unregister() -> None:
    del bpy.types.Scene.deepexpr
    _unregister_classes()
