"""Per-scene state of the live room: ``Scene.deepexpr_live``."""

from __future__ import annotations

from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy.types import PropertyGroup

from ..props import DEEPEXPR_PG_candidate


class DEEPEXPR_PG_live(PropertyGroup):
    source: EnumProperty(
        name="Source",
        items=[
            ("WEBCAM", "Webcam", "Read the webcam (OpenCV camera index)"),
            ("VIDEO", "Video", "A video file played at its own frame rate, as a stand-in for the webcam"),
        ],
        default="WEBCAM",
    )
    webcam_index: IntProperty(name="Webcam", min=0, max=16, default=0, description="OpenCV camera index")
    video: StringProperty(name="Video", subtype="FILE_PATH", description="Video file to play as the live source")
    # smoothing (seconds: live mode runs on the camera's clock)
    min_hold: FloatProperty(
        name="Minimum hold", min=0, max=5, default=0.25, unit="TIME_ABSOLUTE", description="Seconds a pose is held"
    )
    hysteresis: FloatProperty(
        name="Hysteresis",
        min=0,
        max=1,
        default=0.02,
        description="Score margin a new pose needs to replace the current",
    )
    blend: FloatProperty(
        name="Blend", min=0, max=2, default=0.15, unit="TIME_ABSOLUTE", description="Seconds a change of pose blends"
    )
    # state (set by the workflow)
    running: BoolProperty(default=False)
    recording: BoolProperty(default=False)
    status: StringProperty()
    error: StringProperty()
    pose_id: StringProperty(description="The pose the target wears")
    expression: StringProperty()
    confidence: FloatProperty(min=0, max=1)
    rate: FloatProperty(description="Results per second")
    latency: FloatProperty(description="Median milliseconds from frame to applied pose")
    candidates: CollectionProperty(type=DEEPEXPR_PG_candidate)
    keys_recorded: IntProperty()
    # sparse key poses
    sparse_source: EnumProperty(
        name="From",
        items=[
            ("VIDEO", "Video", "Retrieve every frame of a video file, then key only the key poses"),
            ("TAKE", "Last take", "The last recorded live take"),
        ],
        default="VIDEO",
    )
    sparse_video: StringProperty(name="Video", subtype="FILE_PATH", description="The performance to key")
    density: FloatProperty(
        name="Density", min=0, max=1, default=0.5, subtype="FACTOR", description="Few keys (0) to many keys (1)"
    )
    breakdowns: IntProperty(name="Breakdowns", min=0, max=50, default=0, description="Extra keys where it strays most")
    sparse_report: StringProperty(description="The last sparse-keys report")


classes = (DEEPEXPR_PG_live,)
