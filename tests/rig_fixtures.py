"""Rig files for tests, made from our own procedural toons (no third-party file needed):

- ``make_toon_vrm(path, version)``: a toon exported as a glTF binary by Blender, with a VRM 1.0
  (``VRMC_vrm.expressions``) or VRM 0.x (``VRM.blendShapeMaster``) expression table injected into its JSON;
- ``make_toon_arkit_glb(path)``: a toon whose shape keys are renamed to ARKit-52 names (``mouthSmileLeft``...).

Both need bpy (Blender as a module) and reset the current Blender file.
"""

from __future__ import annotations

from deepexpr_blender.core import vrm

# VRM expressions of the toon, as toon shape-key weights (the AU table's prototypes, written out by hand so
# the fixture does not depend on the mapping it is used to test).
TOON_EXPRESSIONS: dict[str, dict[str, float]] = {
    "happy": {"lip_corner_pull": 0.85, "cheek_raise": 0.75, "lips_part": 0.3},
    "angry": {"brow_lower": 0.85, "lid_tighten": 0.7, "upper_lip_raise": 0.2, "lip_corner_depress": 0.35},
    "sad": {"inner_brow_raise": 0.8, "brow_lower": 0.35, "lip_corner_depress": 0.8},
    "surprised": {"inner_brow_raise": 0.85, "outer_brow_raise": 0.85, "upper_lid_raise": 0.8, "jaw_drop": 0.75},
    "relaxed": {"lip_corner_pull": 0.3},
    "aa": {"jaw_drop": 1.0},
    "blink": {"blink": 1.0},
}
TOON_CUSTOM: dict[str, dict[str, float]] = {
    "Fear": {"inner_brow_raise": 0.8, "upper_lid_raise": 0.8, "lip_stretch": 0.8, "lips_part": 0.6},
    "Disgust": {"nose_wrinkle": 0.85, "upper_lip_raise": 0.8, "lip_corner_depress": 0.5},
}


def _export_toon_glb(path: str, character: str = "pip", rename=None) -> None:
    import bpy

    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    spec = next(c for c in CHARACTERS if c.name == character)
    obj = build_character(spec)
    _add_blink(obj)
    if rename:
        for kb in obj.data.shape_keys.key_blocks[1:]:
            kb.name = rename.get(kb.name, kb.name)
    bpy.ops.export_scene.gltf(
        filepath=path, export_format="GLB", export_morph=True, use_selection=False, export_apply=False
    )


def _add_blink(obj) -> None:
    """A full blink key, as VRM and ARKit rigs have: the toon's lid tightener (a partial closing) doubled."""
    import numpy as np

    blocks = obj.data.shape_keys.key_blocks
    n = len(obj.data.vertices)
    base, lt = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
    blocks[0].data.foreach_get("co", base)
    blocks["lid_tighten"].data.foreach_get("co", lt)
    key = obj.shape_key_add(name="blink", from_mix=False)
    key.data.foreach_set("co", base + 2.0 * (lt - base))


def _morph_index(doc: dict, mesh_index: int) -> dict[str, int]:
    return {n: i for i, n in enumerate(vrm.shape_key_names(doc, mesh_index)) if n is not None}


def make_toon_vrm(path: str, version: str = "1.0", character: str = "pip") -> str:
    """Write ``path`` (.vrm): the toon plus its VRM expression table; returns the path."""
    glb = path + ".export.glb"
    _export_toon_glb(glb, character)
    with open(glb, "rb") as f:
        doc, binary = vrm.read_glb(f.read())
    node = next(i for i, n in enumerate(doc["nodes"]) if "mesh" in n)
    mesh = doc["nodes"][node]["mesh"]
    index = _morph_index(doc, mesh)
    doc.setdefault("extensionsUsed", [])
    if version == "1.0":

        def binds(weights: dict[str, float]) -> list[dict]:
            return [{"node": node, "index": index[k], "weight": w} for k, w in weights.items()]

        doc["extensionsUsed"].append("VRMC_vrm")
        doc.setdefault("extensions", {})["VRMC_vrm"] = {
            "specVersion": "1.0",
            "meta": {"name": f"toon {character}", "authors": ["DeepExpr tests"], "licenseUrl": ""},
            "expressions": {
                "preset": {k: {"morphTargetBinds": binds(v), "isBinary": False} for k, v in TOON_EXPRESSIONS.items()},
                "custom": {k: {"morphTargetBinds": binds(v), "isBinary": False} for k, v in TOON_CUSTOM.items()},
            },
        }
    else:
        presets = {"happy": "joy", "angry": "angry", "sad": "sorrow", "relaxed": "fun", "aa": "a", "blink": "blink"}
        groups = [
            {
                "name": presets.get(k, k).capitalize() if k in presets else k,
                "presetName": presets.get(k, "unknown"),
                "binds": [{"mesh": mesh, "index": index[n], "weight": w * 100} for n, w in v.items()],
                "materialValues": [],
                "isBinary": False,
            }
            for k, v in {**TOON_EXPRESSIONS, **TOON_CUSTOM}.items()
        ]
        for g in groups:  # 0.x has no 'surprised' preset: rigs add it as a custom group
            if g["name"] == "surprised":
                g["name"] = "Surprised"
        doc["extensionsUsed"].append("VRM")
        doc.setdefault("extensions", {})["VRM"] = {
            "specVersion": "0.0",
            "meta": {"title": f"toon {character}"},
            "blendShapeMaster": {"blendShapeGroups": groups},
        }
    with open(path, "wb") as f:
        f.write(vrm.write_glb(doc, binary))
    import os

    os.remove(glb)
    return path


# Our toon's AU keys renamed to ARKit names (one ARKit key per AU; the other side's key is left out so the
# rig is incomplete, as many ARKit exports are).
TOON_TO_ARKIT = {
    "inner_brow_raise": "browInnerUp",
    "outer_brow_raise": "browOuterUpLeft",
    "brow_lower": "browDownLeft",
    "upper_lid_raise": "eyeWideLeft",
    "lid_tighten": "eyeSquintLeft",
    "cheek_raise": "cheekSquintLeft",
    "nose_wrinkle": "noseSneerLeft",
    "upper_lip_raise": "mouthUpperUpLeft",
    "lip_corner_pull": "mouthSmileLeft",
    "lip_corner_depress": "mouthFrownLeft",
    "lip_stretch": "mouthStretchLeft",
    "lips_part": "mouthLowerDownLeft",
    "jaw_drop": "jawOpen",
    "blink": "eyeBlinkLeft",
}


def make_toon_arkit_glb(path: str, character: str = "pip") -> str:
    """Write ``path`` (.glb): the toon with ARKit-named shape keys."""
    _export_toon_glb(path, character, rename=TOON_TO_ARKIT)
    return path


# Whole-expression keys, as a hand-made rig names them (English, German, Japanese MMD, French), each the toon's
# own AU keys mixed at the expression's prototype (written out by hand, as above).
NAMED_EXPRESSIONS: dict[str, dict[str, float]] = {
    "Smile": TOON_EXPRESSIONS["happy"],
    "怒り": TOON_EXPRESSIONS["angry"],
    "Traurig": TOON_EXPRESSIONS["sad"],
    "Surprised": TOON_EXPRESSIONS["surprised"],
    "Peur": TOON_CUSTOM["Fear"],
    "Disgust": TOON_CUSTOM["Disgust"],
}


def make_toon_named_glb(path: str, character: str = "pip") -> str:
    """Write ``path`` (.glb): a plain shape-key rig whose only keys name whole expressions, and a blink (no AU
    key left)."""
    import bpy

    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(next(c for c in CHARACTERS if c.name == character))
    blocks = obj.data.shape_keys.key_blocks
    aus = [kb.name for kb in blocks[1:]]
    _add_blink(obj)
    blocks["blink"].name = "Blink"
    for name, weights in NAMED_EXPRESSIONS.items():
        for kb in blocks[1:]:
            kb.value = weights.get(kb.name, 0.0)
        obj.shape_key_add(name=name, from_mix=True)
    for kb in blocks[1:]:
        kb.value = 0.0
    for au in aus:
        obj.shape_key_remove(blocks[au])
    bpy.ops.export_scene.gltf(filepath=path, export_format="GLB", export_morph=True, use_selection=False)
    return path


def make_toon_armature_glb(path: str, character: str = "pip") -> str:
    """Write ``path`` (.glb): the toon skinned to a two-bone armature (root, head) that carries an animation (a
    head-bob "dance", as imported characters often do), its face keys the toon's AU keys."""
    import bpy

    from deepexpr_blender.toon import CHARACTERS, build_character

    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = build_character(next(c for c in CHARACTERS if c.name == character))
    arm_data = bpy.data.armatures.new("rig")
    arm = bpy.data.objects.new("rig", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    root = arm_data.edit_bones.new("root")
    root.head, root.tail = (0, 0, -1.5), (0, 0, -0.8)
    head = arm_data.edit_bones.new("head")
    head.head, head.tail, head.parent = (0, 0, -0.8), (0, 0, 0.6), root
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.parent = arm
    group = obj.vertex_groups.new(name="head")
    group.add(list(range(len(obj.data.vertices))), 1.0, "REPLACE")
    obj.modifiers.new("Armature", "ARMATURE").object = arm
    pb = arm.pose.bones["head"]
    pb.rotation_mode = "XYZ"
    for frame, (tilt, turn) in enumerate(((0.0, 0.0), (0.35, 0.3), (-0.3, -0.4), (0.2, 0.5)), start=1):
        pb.rotation_euler = (tilt, 0.0, turn)
        pb.keyframe_insert("rotation_euler", frame=frame * 10)
    bpy.context.scene.frame_set(20)  # saved mid-dance
    bpy.ops.export_scene.gltf(
        filepath=path, export_format="GLB", export_morph=True, export_animations=True, use_selection=False
    )
    return path
