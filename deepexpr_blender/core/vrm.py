"""Read a VRM file's expression table (stdlib only): Blender's glTF importer drops it, the add-on needs it.

A ``.vrm`` is a glTF binary (GLB): a 12-byte header (``glTF``, version 2, total length), then a JSON chunk
(length, ``JSON``, UTF-8 text) and usually a BIN chunk. The expression table is in the JSON:

- VRM 0.x: ``extensions.VRM.blendShapeMaster.blendShapeGroups[]``: ``name``, ``presetName``, ``isBinary``,
  ``binds[]`` of ``{mesh: glTF mesh index, index: morph target index, weight: 0..100}``;
- VRM 1.0: ``extensions.VRMC_vrm.expressions.{preset,custom}.<name>``: ``isBinary``, ``morphTargetBinds[]`` of
  ``{node: glTF node index, index: morph target index, weight: 0..1}``.

``read_vrm`` resolves every bind to the names Blender gives after ``bpy.ops.import_scene.gltf``: the object is
named after the node (else its mesh, else ``Mesh_<i>``), the shape key after ``mesh.extras.targetNames[i]``
(else the first primitive's POSITION accessor name, else ``target_<i>``; duplicates get ``.001``; Blender's
63-byte limit applies), exactly as the importer does, and maps each expression to the seven labels
(``VRM_LABELS``; relaxed and fun are kept as extra expressions with no label). Material and texture binds are
not poses and are left out. A broken table raises ``VrmError`` naming the expression and bind at fault.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from .expression_keys import expression_of_name
from .vocabulary import LABELS

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

# VRM preset -> (canonical label or None, expression name). VRM 0.x and 1.0 spellings, lower case.
VRM_PRESETS: dict[str, tuple[str | None, str]] = {
    "neutral": ("neutral", "neutral"),
    "joy": ("joy", "joy"),  # 0.x
    "happy": ("joy", "joy"),  # 1.0
    "angry": ("anger", "anger"),
    "sorrow": ("sadness", "sadness"),  # 0.x
    "sad": ("sadness", "sadness"),  # 1.0
    "surprised": ("surprise", "surprise"),  # 1.0 (0.x rigs often add it as a custom group)
    "fun": (None, "fun"),  # 0.x
    "relaxed": (None, "relaxed"),  # 1.0
}
VRM_LABELS = {k: v[0] for k, v in VRM_PRESETS.items()}
# Presets that are not expressions (visemes, blinks, gaze): kept in the table, never made into poses.
NON_EXPRESSION_PRESETS = frozenset(
    "a i u e o aa ih ou ee oh blink blink_l blink_r blinkleft blinkright lookup lookdown lookleft lookright".split()
)


class VrmError(ValueError):
    """A file that is not a readable VRM, or an expression table that does not resolve; names the problem."""


@dataclass(frozen=True)
class MorphBind:
    """One morph target weight of an expression, resolved to Blender's names after a glTF import."""

    node: int | None  # glTF node index (VRM 1.0 binds; None for 0.x, which bind meshes)
    mesh: int  # glTF mesh index
    morph: int  # morph target index in that mesh
    weight: float  # 0..1 (VRM 0.x's 0..100 divided by 100)
    mesh_name: str  # the glTF mesh's name ('' when unnamed)
    objects: tuple[str, ...]  # Blender object names showing this mesh (node name, else mesh name, else Mesh_<i>)
    shape_key: str  # Blender's shape key name for this morph target


@dataclass(frozen=True)
class VrmExpression:
    name: str  # the group / expression name as written in the file
    preset: str | None  # lower-case preset name, None for custom expressions
    label: str | None  # canonical label when it is one of the seven, else None
    expression: str | None  # label or extra (relaxed, fun); None for visemes, blinks, gaze and unknowns
    is_binary: bool
    binds: tuple[MorphBind, ...]


@dataclass(frozen=True)
class VrmTable:
    version: str  # "0.x" | "1.0"
    expressions: tuple[VrmExpression, ...]

    def poses(self) -> list[VrmExpression]:
        """Expressions that are facial expressions with at least one morph bind."""
        return [e for e in self.expressions if e.expression is not None and e.binds]


# ------------------------------------------------------------------------------------------ GLB container
def read_glb(data: bytes, where: str = "file") -> tuple[dict, bytes | None]:
    """(JSON document, BIN chunk or None) of a glTF binary; VrmError on any structural problem."""
    if len(data) < 20:
        raise VrmError(f"{where}: too short for a glTF binary ({len(data)} bytes)")
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != GLB_MAGIC:
        raise VrmError(f"{where}: not a glTF binary (magic {magic!r}, expected b'glTF')")
    if version != 2:
        raise VrmError(f"{where}: glTF binary version {version} is not supported (expected 2)")
    if length > len(data):
        raise VrmError(f"{where}: header says {length} bytes but the file has {len(data)} (truncated)")
    clen, ctype = struct.unpack_from("<II", data, 12)
    if ctype != CHUNK_JSON:
        raise VrmError(f"{where}: first chunk is 0x{ctype:08x}, expected the JSON chunk")
    if 20 + clen > length:
        raise VrmError(f"{where}: JSON chunk of {clen} bytes runs past the end of the file")
    try:
        doc = json.loads(data[20 : 20 + clen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VrmError(f"{where}: JSON chunk does not parse: {exc}") from None
    if not isinstance(doc, dict):
        raise VrmError(f"{where}: JSON chunk is not an object")
    binary = None
    off = 20 + clen
    if off + 8 <= length:
        blen, btype = struct.unpack_from("<II", data, off)
        if btype == CHUNK_BIN:
            binary = data[off + 8 : off + 8 + blen]
    return doc, binary


def write_glb(doc: dict, binary: bytes | None) -> bytes:
    """A glTF binary from a JSON document and an optional BIN chunk (chunks padded to 4 bytes)."""
    js = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    js += b" " * (-len(js) % 4)
    out = [struct.pack("<II", len(js), CHUNK_JSON), js]
    if binary is not None:
        b = binary + b"\0" * (-len(binary) % 4)
        out += [struct.pack("<II", len(b), CHUNK_BIN), b]
    body = b"".join(out)
    return struct.pack("<4sII", GLB_MAGIC, 2, 12 + len(body)) + body


# ------------------------------------------------------------------------------------------ Blender's names
def _unused(used: set[str], desired: str) -> str:
    """Blender's glTF importer's ``find_unused_name``: ``a``, ``a.001``, ... within 63 UTF-8 bytes."""
    stem, suffix, n = desired[:63], "", 1
    while True:
        name = stem + suffix
        if len(name.encode("utf-8")) > 63:
            stem = stem[:-1]
            continue
        if name not in used:
            return name
        suffix = f".{n:03d}"
        n += 1


def shape_key_names(doc: dict, mesh_index: int) -> list[str | None]:
    """Shape key name per morph target of a glTF mesh, as Blender's importer names them (None: a target that
    morphs no POSITION and gets no shape key)."""
    mesh = doc["meshes"][mesh_index]
    prims = mesh.get("primitives") or []
    extras = mesh.get("extras") if isinstance(mesh.get("extras"), dict) else {}
    names: list[str | None] = []
    used = {"Basis"}
    for prim in prims:
        targets = prim.get("targets") or []
        if not targets:
            continue
        for sk in range(len(targets)):
            if not any(sk < len(p.get("targets") or []) and "POSITION" in p["targets"][sk] for p in prims):
                names.append(None)
                continue
            name = None
            try:
                name = str(extras["targetNames"][sk]) or None
            except (KeyError, IndexError, TypeError):
                pass
            if name is None:
                try:
                    name = doc["accessors"][prims[0]["targets"][sk]["POSITION"]]["name"]
                except (KeyError, IndexError, TypeError):
                    pass
            name = _unused(used, name or f"target_{sk}")
            used.add(name)
            names.append(name)
        break
    return names


def object_names(doc: dict) -> dict[int, str]:
    """glTF node index -> the Blender object name the importer gives it (before Blender's own .001 renames)."""
    out = {}
    meshes = doc.get("meshes") or []
    for i, node in enumerate(doc.get("nodes") or []):
        if "mesh" in node and isinstance(node["mesh"], int) and 0 <= node["mesh"] < len(meshes):
            mi = node["mesh"]
            out[i] = node.get("name") or meshes[mi].get("name") or f"Mesh_{mi}"
        else:
            out[i] = node.get("name") or f"Node_{i}"
    return out


# ------------------------------------------------------------------------------------------ the tables
def _classify(name: str, preset: str | None) -> tuple[str | None, str | None]:
    """(label, expression) of an expression given its preset (else its name)."""
    if preset in VRM_PRESETS:
        return VRM_PRESETS[preset]
    if preset in NON_EXPRESSION_PRESETS:
        return None, None
    hit = expression_of_name(name)
    if hit is None or hit[1]:  # unknown, or a part (brow only ...)
        return None, None
    expr = hit[0]
    return (expr if expr in LABELS else None), expr


def _num(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise VrmError(f"{what}: weight {v!r} is not a number")
    return float(v)


def _int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise VrmError(f"{what} {v!r} is not an integer index")
    return v


def _resolve(doc: dict, node: int | None, mesh: int, morph: int, weight: float, where: str) -> MorphBind:
    meshes = doc.get("meshes") or []
    if not 0 <= mesh < len(meshes):
        raise VrmError(f"{where}: mesh {mesh} does not exist (the file has {len(meshes)} meshes)")
    names = shape_key_names(doc, mesh)
    if not 0 <= morph < len(names):
        raise VrmError(
            f"{where}: morph target {morph} does not exist on mesh {mesh} "
            f"({meshes[mesh].get('name', '')!r} has {len(names)} morph targets)"
        )
    if names[morph] is None:
        raise VrmError(f"{where}: morph target {morph} of mesh {mesh} moves no vertex position")
    objs = object_names(doc)
    if node is not None:
        shown = (objs[node],)
    else:
        shown = tuple(objs[i] for i, n in enumerate(doc.get("nodes") or []) if n.get("mesh") == mesh)
        if not shown:
            raise VrmError(f"{where}: mesh {mesh} is used by no node, so it is not in the scene")
    if not 0 <= weight <= 1.0 + 1e-6:
        raise VrmError(f"{where}: weight {weight} is outside 0..1")
    return MorphBind(node, mesh, morph, min(weight, 1.0), meshes[mesh].get("name", ""), shown, names[morph])


def _vrm0(doc: dict, ext: dict) -> VrmTable:
    master = ext.get("blendShapeMaster")
    groups = master.get("blendShapeGroups") if isinstance(master, dict) else None
    if not isinstance(groups, list):
        raise VrmError("VRM 0.x: extensions.VRM.blendShapeMaster.blendShapeGroups is missing or not a list")
    out = []
    for gi, g in enumerate(groups):
        if not isinstance(g, dict):
            raise VrmError(f"VRM 0.x: blendShapeGroups[{gi}] is not an object")
        name = str(g.get("name") or g.get("presetName") or f"group_{gi}")
        preset = str(g.get("presetName") or "unknown").lower()
        preset = None if preset == "unknown" else preset
        binds = []
        for bi, b in enumerate(g.get("binds") or []):
            where = f"VRM 0.x expression {name!r} bind {bi}"
            if not isinstance(b, dict):
                raise VrmError(f"{where}: not an object")
            mesh = _int(b.get("mesh"), f"{where}: mesh")
            morph = _int(b.get("index"), f"{where}: morph index")
            weight = _num(b.get("weight", 100), where) / 100.0
            binds.append(_resolve(doc, None, mesh, morph, weight, where))
        label, expr = _classify(name, preset)
        out.append(VrmExpression(name, preset, label, expr, bool(g.get("isBinary", False)), tuple(binds)))
    return VrmTable("0.x", tuple(out))


def _vrm1(doc: dict, ext: dict) -> VrmTable:
    table = ext.get("expressions")
    if not isinstance(table, dict):
        raise VrmError("VRM 1.0: extensions.VRMC_vrm.expressions is missing or not an object")
    nodes = doc.get("nodes") or []
    out = []
    for kind in ("preset", "custom"):
        group = table.get(kind, {})
        if not isinstance(group, dict):
            raise VrmError(f"VRM 1.0: expressions.{kind} is not an object")
        for name, e in group.items():
            if not isinstance(e, dict):
                raise VrmError(f"VRM 1.0: expression {name!r} is not an object")
            binds = []
            for bi, b in enumerate(e.get("morphTargetBinds") or []):
                where = f"VRM 1.0 expression {name!r} bind {bi}"
                if not isinstance(b, dict):
                    raise VrmError(f"{where}: not an object")
                node = _int(b.get("node"), f"{where}: node")
                if not 0 <= node < len(nodes):
                    raise VrmError(f"{where}: node {node} does not exist (the file has {len(nodes)} nodes)")
                if not isinstance(nodes[node].get("mesh"), int):
                    raise VrmError(f"{where}: node {node} ({nodes[node].get('name', '')!r}) has no mesh")
                morph = _int(b.get("index"), f"{where}: morph index")
                weight = _num(b.get("weight", 1.0), where)
                binds.append(_resolve(doc, node, nodes[node]["mesh"], morph, weight, where))
            preset = name.lower() if kind == "preset" else None
            label, expr = _classify(name, preset)
            out.append(VrmExpression(name, preset, label, expr, bool(e.get("isBinary", False)), tuple(binds)))
    return VrmTable("1.0", tuple(out))


def parse_vrm(data: bytes, where: str = "file") -> VrmTable:
    """The expression table of a VRM file's bytes (VRM 1.0 first when both extensions are present)."""
    doc, _ = read_glb(data, where)
    ext = doc.get("extensions")
    if not isinstance(ext, dict) or not ({"VRMC_vrm", "VRM"} & set(ext)):
        raise VrmError(f"{where}: no VRM extension (neither VRMC_vrm nor VRM): not a VRM file")
    try:
        if isinstance(ext.get("VRMC_vrm"), dict):
            return _vrm1(doc, ext["VRMC_vrm"])
        if isinstance(ext.get("VRM"), dict):
            return _vrm0(doc, ext["VRM"])
    except VrmError as exc:
        raise VrmError(f"{where}: {exc}") from None
    raise VrmError(f"{where}: the VRM extension is not an object")


def read_vrm(path: str) -> VrmTable:
    """``parse_vrm`` of a file on disk; VrmError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise VrmError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_vrm(data, path)
