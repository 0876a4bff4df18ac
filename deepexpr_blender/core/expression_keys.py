"""Expressions a rig already knows: our AU table composed onto the rig's own shape-key names (stdlib only).

The mapping is written down once, here, from the key schemes' published meanings (FACS, Apple ARKit, the
VALID/Autodesk Character Generator ``h_expressions`` set, Jeeliz Weboji's 11 morphs, VRM presets, the usual
MMD morph names); it is never tuned on a rig's retrieval results. ``docs/evaluation/rigs.md`` prints it.

How a pose is made (``compose_poses``):

1. **Prototype**: each expression of the AU table (``expressions.json``, the table the toon renderer samples)
   gives each of its action units the **midpoint of its range** (the mean pose the toon data set shows).
2. **Intensity** ``s`` (0.5 / 0.75 / 1.0 by default) scales every AU weight.
3. **Scheme**: a rig's shape keys are recognised as one scheme (``detect_scheme``, first match wins:
   ``deepexpr`` (our toons' AU keys) > ``facs`` (``AU_01_...``) > ``arkit`` (52 blendshapes, any prefix or
   ``_L``/``_R`` spelling) > ``valid`` (``h_expressions.*_h``) > ``weboji`` (11 morphs)). Each AU maps to
   a few keys with a factor; a key driven by several AUs takes the **largest** value (never a sum: keys
   saturate at 1).
4. **Coverage**: an expression is offered only when the AUs that reach at least one of the rig's keys carry
   at least ``MIN_COVERAGE`` of the prototype's AU weight (Weboji has no lip-corner depressor, so its
   sadness and fear are not offered); neutral (every key at 0: the rig's own rest) is always offered.

Rigs with no recognised scheme get **whole-expression keys** by name (``Angry``, ``Fcl_ALL_Joy``, ``怒り``,
``Traurig`` ... in ``EXPRESSION_WORDS``), each composed at the same intensities. A VRM file's own table
(``core.vrm``) comes before both: it is what the artist declared.

``landmark_roles`` names the keys whose motion locates the eyes, brows, mouth corners and jaw (used by the
add-on to find landmarks on a rig without named landmark vertices).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field

from .vocabulary import LABELS

EXPRESSIONS_PATH = os.path.join(os.path.dirname(__file__), "expressions.json")
DEFAULT_INTENSITIES: tuple[float, ...] = (0.5, 0.75, 1.0)
MIN_COVERAGE = 0.6  # share of an expression's AU weight the rig must be able to show (set from the table alone)

# Extra, non-canonical expressions some rigs declare (VRM): kept as poses with label None.
EXTRA_EXPRESSIONS: tuple[str, ...] = ("relaxed", "fun")


def load_au_table(path: str = EXPRESSIONS_PATH) -> dict:
    """The documented AU table (``{"action_units": {AU: toon key}, "expressions": {name: {AU: [lo, hi]}}}``)."""
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    aus = table.get("action_units")
    exprs = table.get("expressions")
    if not isinstance(aus, dict) or not isinstance(exprs, dict):
        raise ValueError(f"{path}: needs 'action_units' and 'expressions'")
    for expr, combo in exprs.items():
        for au, rng in combo.items():
            if au not in aus or len(rng) != 2 or not 0 <= rng[0] <= rng[1] <= 1:
                raise ValueError(f"{path}: {expr}: bad entry {au}: {rng}")
    return table


def prototypes(table: dict) -> dict[str, dict[str, float]]:
    """Expression -> {AU: weight}: the midpoint of each AU's range (neutral: {})."""
    return {
        expr: {au: round((lo + hi) / 2, 4) for au, (lo, hi) in combo.items()}
        for expr, combo in table["expressions"].items()
    }


# ------------------------------------------------------------------------------------------ key names
def _camel_split(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)


def tokens(name: str) -> list[str]:
    """Lower-case words of a key name: camelCase, ``_``, ``.``, ``-``, digits and spaces split it."""
    text = unicodedata.normalize("NFKC", _camel_split(name)).lower()
    return [t for t in re.split(r"[\s_.\-:|/()\[\]0-9]+", text) if t]


def squash(name: str) -> str:
    """Lower-case letters and digits only (``Mouth_Smile-L`` -> ``mouthsmilel``)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", name).lower())


# ARKit's 52 blendshape names (Apple ARFaceAnchor.BlendShapeLocation), canonical spelling.
ARKIT_52: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip


def arkit_name(key: str) -> str | None:
    """The canonical ARKit name a key spells, whatever its prefix (``AK_44_``, ``blendShape1.``, ``A25_``)
    or side suffix (``_L``/``_R``/``.L``); None when it is not one of the 52."""
    base = key.rsplit(".", 1)[-1] if "." in key and not re.search(r"\.[LRlr]$", key) else key
    base = re.sub(r"^(?:ak|arkit|bs|a)[_\s-]?\d*[_\s-]+", "", base, flags=re.IGNORECASE)
    s = squash(base)
    s = re.sub(r"(?<=[a-z])(?:_)?l$", "left", s) if re.search(r"[_.\s-][Ll]$", base) else s
    s = re.sub(r"(?<=[a-z])(?:_)?r$", "right", s) if re.search(r"[_.\s-][Rr]$", base) else s
    return _ARKIT_BY_SQUASH.get(s)


_ARKIT_BY_SQUASH = {squash(n): n for n in ARKIT_52}

_FACS_RE = re.compile(r"^(?:au|facs)[_\s-]?0*(\d{1,2})(?:[_\s-]?([lr])(?=[_\s-]|$))?(?:[_\s-]|$)", re.IGNORECASE)


def facs_unit(key: str) -> tuple[str, str] | None:
    """``AU_02_L_OuterBrowRaiser`` -> ("AU2", "l"); ``AU_01_InnerBrowRaiser`` -> ("AU1", ""); else None."""
    m = _FACS_RE.match(key.rsplit(".", 1)[-1])
    if not m:
        return None
    return f"AU{int(m.group(1))}", (m.group(2) or "").lower()


def valid_name(key: str) -> str:
    """``h_expressions.RsmileClose_h`` -> ``RsmileClose`` (the VALID / Character Generator core name)."""
    base = key.rsplit(".", 1)[-1]
    return base[:-2] if base.endswith("_h") else base


WEBOJI_11: tuple[str, ...] = (
    "smileRight", "smileLeft", "eyeBrowLeftDown", "eyeBrowRightDown", "eyeBrowLeftUp", "eyeBrowRightUp",
    "mouthOpen", "mouthRound", "eyeRightClose", "eyeLeftClose", "mouthNasty",
)  # fmt: skip

# ------------------------------------------------------------------------------------------ AU -> key tables
# Each scheme: AU -> ((key, factor), ...). Keys are the scheme's canonical names (``resolve`` finds the rig's
# own spelling). Written from the schemes' definitions, before any measurement on a rig.
ARKIT_FROM_AU: dict[str, tuple[tuple[str, float], ...]] = {
    "AU1": (("browInnerUp", 1.0),),
    "AU2": (("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)),
    "AU4": (("browDownLeft", 1.0), ("browDownRight", 1.0)),
    "AU5": (("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)),
    "AU6": (("cheekSquintLeft", 1.0), ("cheekSquintRight", 1.0)),
    "AU7": (("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)),
    "AU9": (("noseSneerLeft", 1.0), ("noseSneerRight", 1.0)),
    "AU10": (("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)),
    "AU12": (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)),
    "AU15": (("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)),
    "AU20": (("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)),
    "AU25": (("mouthLowerDownLeft", 0.5), ("mouthLowerDownRight", 0.5), ("jawOpen", 0.15)),
    "AU26": (("jawOpen", 1.0),),
}

# VALID / Autodesk Character Generator ``h_expressions`` (R = the character's right). Key roles read from the
# names and checked against where each key moves the head (docs/evaluation/rigs.md): Rsad = inner brow up,
# RRbrowUp = outer brow up, RbrowDown = inner brow down and in, Rsquint = cheek up under the eye, RlowLid =
# lower lid up, Rdisgust = nose/upper-lip raise, RlipCorner = corner drawn back, RlipDown = lower lip down.
VALID_FROM_AU: dict[str, tuple[tuple[str, float], ...]] = {
    "AU1": (("Rsad", 1.0), ("Lsad", 1.0)),
    "AU2": (("RRbrowUp", 1.0), ("LLbrowUp", 1.0)),
    "AU4": (("RbrowDown", 1.0), ("LbrowDown", 1.0), ("RRbrowDown", 0.5), ("LLbrowDown", 0.5)),
    "AU5": (("ReyeOpen", 1.0), ("LeyeOpen", 1.0)),
    "AU6": (("Rsquint", 1.0), ("Lsquint", 1.0)),
    "AU7": (("RlowLid", 1.0), ("LlowLid", 1.0)),
    "AU9": (("Rdisgust", 1.0), ("Ldisgust", 1.0)),
    "AU10": (("RlipUp", 1.0), ("LlipUp", 1.0)),
    "AU12": (("RsmileClose", 1.0), ("LsmileClose", 1.0)),
    "AU15": (("RmouthSad", 1.0), ("LmouthSad", 1.0)),
    "AU20": (("RlipCorner", 1.0), ("LlipCorner", 1.0)),
    "AU25": (("RlipDown", 0.5), ("LlipDown", 0.5)),
    "AU26": (("MouthOpen", 1.0),),
}

# Jeeliz Weboji (left/right = the character's own side). No lip-corner depressor, lid raiser or stretcher;
# brow up stands for AU1 and AU2, the nasty mouth for AU9/AU10, closing eyes partly for AU6/AU7.
WEBOJI_FROM_AU: dict[str, tuple[tuple[str, float], ...]] = {
    "AU1": (("eyeBrowLeftUp", 1.0), ("eyeBrowRightUp", 1.0)),
    "AU2": (("eyeBrowLeftUp", 1.0), ("eyeBrowRightUp", 1.0)),
    "AU4": (("eyeBrowLeftDown", 1.0), ("eyeBrowRightDown", 1.0)),
    "AU6": (("eyeLeftClose", 0.3), ("eyeRightClose", 0.3)),
    "AU7": (("eyeLeftClose", 0.5), ("eyeRightClose", 0.5)),
    "AU9": (("mouthNasty", 1.0),),
    "AU10": (("mouthNasty", 0.7),),
    "AU12": (("smileLeft", 1.0), ("smileRight", 1.0)),
    "AU25": (("mouthOpen", 0.4),),
    "AU26": (("mouthOpen", 1.0),),
}

# Key roles for landmark finding: keys whose motion marks a facial part.
ROLES: tuple[str, ...] = ("eye_close", "brow_raise", "smile", "jaw_open", "upper_lip_raise")
ARKIT_ROLES = {
    "eye_close": ("eyeBlinkLeft", "eyeBlinkRight"),
    "brow_raise": ("browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "jaw_open": ("jawOpen",),
    "upper_lip_raise": ("mouthUpperUpLeft", "mouthUpperUpRight"),
}
FACS_ROLES = {  # AU numbers; the first present wins for eyes and jaw
    "eye_close": ("AU45", "AU43"),
    "brow_raise": ("AU1", "AU2"),
    "smile": ("AU12",),
    "jaw_open": ("AU26", "AU27"),
    "upper_lip_raise": ("AU10",),
}
VALID_ROLES = {
    "eye_close": ("ReyeClose", "LeyeClose"),
    "brow_raise": ("Rsad", "Lsad", "RRbrowUp", "LLbrowUp"),
    "smile": ("RsmileClose", "LsmileClose"),
    "jaw_open": ("MouthOpen",),
    "upper_lip_raise": ("RlipUp", "LlipUp"),
}
WEBOJI_ROLES = {
    "eye_close": ("eyeLeftClose", "eyeRightClose"),
    "brow_raise": ("eyeBrowLeftUp", "eyeBrowRightUp"),
    "smile": ("smileLeft", "smileRight"),
    "jaw_open": ("mouthOpen",),
    "upper_lip_raise": (),
}
DEEPEXPR_ROLES = {  # our toons: no blink key, the lid tightener closes the lids
    "eye_close": ("AU7",),
    "brow_raise": ("AU1", "AU2"),
    "smile": ("AU12",),
    "jaw_open": ("AU26",),
    "upper_lip_raise": ("AU10",),
}

# ------------------------------------------------------------------------------------------ whole expressions
# Words that name a whole expression in a key name, per canonical label (and the extras), in several
# languages, plus the usual MMD morph names. Latin words match a whole token; CJK/Hangul words match anywhere.
EXPRESSION_WORDS: dict[str, tuple[str, ...]] = {
    "anger": (
        "angry", "anger", "mad", "rage", "furious", "annoyed", "wut", "wütend", "wuetend", "ärger", "böse",
        "colère", "colere", "fâché", "enojo", "enfado", "ira", "enojado", "rabbia", "arrabbiato", "raiva",
        "zlost", "злость", "гнев",
        "怒り", "怒", "いかり", "生气", "愤怒", "憤怒", "화남", "분노",
    ),
    "joy": (
        "joy", "happy", "happiness", "smile", "smiling", "laugh", "laughing", "glad", "cheerful", "grin",
        "freude", "fröhlich", "froehlich", "lächeln", "laecheln", "glücklich", "joie", "heureux", "sourire",
        "alegría", "alegria", "feliz", "sonrisa", "gioia", "felice", "sorriso", "радость", "улыбка",
        "笑い", "笑顔", "にこり", "喜び", "嬉しい", "わらい", "开心", "高兴", "微笑", "快乐", "기쁨", "행복", "웃음",
    ),
    "sadness": (
        "sad", "sadness", "sorrow", "unhappy", "cry", "crying", "upset", "traurig", "trauer", "triste",
        "tristesse", "tristeza", "tristezza", "грусть", "печаль",
        "悲しい", "悲しみ", "困る", "泣き", "かなしい", "伤心", "难过", "悲伤", "슬픔",
    ),
    "surprise": (
        "surprise", "surprised", "shock", "shocked", "astonished", "amazed", "wow", "überrascht",
        "ueberrascht", "überraschung", "surpris", "sorpresa", "sorprendido", "surpresa", "удивление",
        "驚き", "びっくり", "おどろき", "惊讶", "吃惊", "놀람",
    ),
    "fear": (
        "fear", "afraid", "scared", "fright", "frightened", "terror", "terrified", "horror", "angst", "peur",
        "miedo", "paura", "medo", "страх",
        "恐怖", "怖い", "こわい", "害怕", "恐惧", "공포", "두려움",
    ),
    "disgust": (
        "disgust", "disgusted", "gross", "yuck", "ekel", "angeekelt", "dégoût", "degout", "asco", "disgusto",
        "nojo", "отвращение",
        "嫌悪", "いやそう", "厌恶", "恶心", "혐오",
    ),
    "relaxed": ("relaxed", "relax", "calm", "なごみ"),
    "fun": ("fun",),
}  # fmt: skip
# Tokens that mark a key as one facial part of an expression (VRoid's Fcl_BRW_Angry), not the whole face.
PART_TOKENS = frozenset(
    "brow brows brw eye eyes eyelid eyelids eyebrow eyebrows mouth mth lip lips cheek cheeks nose jaw teeth "
    "tongue ha hair".split()
)
SIDE_TOKENS = frozenset("l r left right lt rt".split())
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def expression_of_name(key: str) -> tuple[str, bool] | None:
    """(expression, is_part) when a key's name says an expression (``Fcl_ALL_Angry`` -> ("anger", False),
    ``Fcl_BRW_Angry`` -> ("anger", True), ``怒り`` -> ("anger", False)); None otherwise."""
    toks = tokens(key)
    flat = unicodedata.normalize("NFKC", key).lower()
    found = None
    for expr, words in EXPRESSION_WORDS.items():
        for w in words:
            if (_CJK.search(w) and w in flat) or (not _CJK.search(w) and w in toks):
                found = expr
                break
        if found:
            break
    if found is None:
        return None
    return found, any(t in PART_TOKENS for t in toks)


# ------------------------------------------------------------------------------------------ schemes
@dataclass(frozen=True)
class Scheme:
    """A recognised key scheme on a rig: how its keys are spelled there, and what they mean."""

    name: str  # deepexpr | facs | arkit | valid | weboji
    keys: dict[str, list[tuple[str, str]]]  # canonical name -> [(mesh, key as spelled on the rig)]

    def find(self, canonical: str) -> list[tuple[str, str]]:
        return self.keys.get(canonical, [])


def _index(keys_by_mesh: dict[str, list[str]], canon) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for mesh, keys in keys_by_mesh.items():
        for k in keys:
            c = canon(k)
            if c is not None:
                out.setdefault(c, []).append((mesh, k))
    return out


def _facs_canon(key: str) -> str | None:
    u = facs_unit(key)
    return None if u is None else (u[0] + (f"_{u[1]}" if u[1] else ""))


def detect_scheme(keys_by_mesh: dict[str, list[str]], table: dict | None = None) -> Scheme | None:
    """The first scheme the rig's keys follow (see the module docstring), or None."""
    table = table or load_au_table()
    toon_keys = {v: au for au, v in table["action_units"].items()}
    candidates = [
        ("deepexpr", _index(keys_by_mesh, lambda k: toon_keys.get(k)), 8),
        ("facs", _index(keys_by_mesh, _facs_canon), 6),
        ("arkit", _index(keys_by_mesh, arkit_name), 8),
        ("valid", _index(keys_by_mesh, lambda k: v if (v := valid_name(k)) in _VALID_NAMES else None), 10),
        ("weboji", _index(keys_by_mesh, lambda k: k if k in WEBOJI_11 else None), 6),
    ]
    for name, found, need in candidates:
        distinct = {c.split("_")[0] for c in found} if name == "facs" else set(found)
        if len(distinct) >= need:
            return Scheme(name, found)
    return None


_VALID_NAMES = frozenset(k for v in VALID_FROM_AU.values() for k, _ in v) | frozenset(
    k for v in VALID_ROLES.values() for k in v
)


def _au_targets(scheme: Scheme, au: str) -> list[tuple[str, str, float]]:
    """(mesh, key, factor) that show ``au`` on this rig."""
    if scheme.name == "deepexpr":
        return [(m, k, 1.0) for m, k in scheme.find(au)]
    if scheme.name == "facs":
        both = scheme.find(au)
        if both:
            return [(m, k, 1.0) for m, k in both]
        return [(m, k, 1.0) for side in ("l", "r") for m, k in scheme.find(f"{au}_{side}")]
    table = {"arkit": ARKIT_FROM_AU, "valid": VALID_FROM_AU, "weboji": WEBOJI_FROM_AU}[scheme.name]
    return [(m, k, f) for canon, f in table.get(au, ()) for m, k in scheme.find(canon)]


def coverage(scheme: Scheme, prototype: dict[str, float]) -> float:
    """Share of the prototype's AU weight that reaches at least one of the rig's keys (1.0 for neutral)."""
    total = sum(prototype.values())
    if total <= 0:
        return 1.0
    return sum(w for au, w in prototype.items() if _au_targets(scheme, au)) / total


# ------------------------------------------------------------------------------------------ poses
@dataclass(frozen=True)
class ComposedPose:
    """One pose to build: shape-key values per mesh (every other key of the rig at 0)."""

    name: str  # e.g. "joy_075"
    label: str | None  # canonical label, None for extras (relaxed, fun)
    expression: str  # the expression's own name (a label or an extra)
    intensity: float
    source: str  # deepexpr | facs | arkit | valid | weboji | named | vrm
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # mesh -> {key: value}


def pose_name(expr: str, s: float) -> str:
    """``joy`` at 0.75 -> ``joy_075``; neutral stays ``neutral``."""
    return expr if expr == "neutral" else f"{expr}_{round(s * 100):03d}"


def _neutral(source: str) -> ComposedPose:
    return ComposedPose("neutral", "neutral", "neutral", 0.0, source, {})


def compose_from_scheme(
    scheme: Scheme, table: dict, intensities: tuple[float, ...] = DEFAULT_INTENSITIES
) -> tuple[list[ComposedPose], dict[str, float]]:
    """The seven expressions (those the rig covers) at each intensity, plus neutral; and each expression's
    coverage."""
    poses = [_neutral(scheme.name)]
    cov = {}
    for expr, proto in prototypes(table).items():
        cov[expr] = round(coverage(scheme, proto), 3)
        if expr == "neutral" or cov[expr] < MIN_COVERAGE:
            continue
        for s in intensities:
            values: dict[str, dict[str, float]] = {}
            for au, w in proto.items():
                for mesh, key, f in _au_targets(scheme, au):
                    v = min(1.0, round(s * w * f, 4))
                    mk = values.setdefault(mesh, {})
                    mk[key] = max(mk.get(key, 0.0), v)
            poses.append(ComposedPose(pose_name(expr, s), expr, expr, s, scheme.name, values))
    return poses, cov


def _side_free(key: str) -> str:
    """A key's name without its side words (``Smile_L`` and ``Smile_R`` -> ``smile``)."""
    return " ".join(t for t in tokens(key) if t not in SIDE_TOKENS)


def named_expression_keys(keys_by_mesh: dict[str, list[str]]) -> dict[str, list[dict[str, list[str]]]]:
    """Expression -> groups of keys named after it, each group ``{mesh: [keys]}`` one pose family.

    Each whole-expression key is its own family (its left/right halves together: ``Smile_L`` + ``Smile_R``);
    part keys (brow/eye/mouth ...: VRoid's ``Fcl_BRW_Angry``) make one family together, and only for an
    expression that no whole key names."""
    whole: dict[str, dict[str, dict[str, list[str]]]] = {}
    parts: dict[str, dict[str, list[str]]] = {}
    for mesh, keys in keys_by_mesh.items():
        for k in keys:
            hit = expression_of_name(k)
            if hit is None:
                continue
            expr, is_part = hit
            if is_part:
                parts.setdefault(expr, {}).setdefault(mesh, []).append(k)
            else:
                whole.setdefault(expr, {}).setdefault(_side_free(k), {}).setdefault(mesh, []).append(k)
    out = {expr: list(groups.values()) for expr, groups in whole.items()}
    for expr, found in parts.items():
        out.setdefault(expr, [found])
    return out


def compose_from_names(
    keys_by_mesh: dict[str, list[str]], intensities: tuple[float, ...] = DEFAULT_INTENSITIES
) -> list[ComposedPose]:
    """Poses from whole-expression keys at each intensity, plus neutral (empty when no key names one)."""
    found = named_expression_keys(keys_by_mesh)
    if not found:
        return []
    poses = [_neutral("named")]
    for expr in [*LABELS, *EXTRA_EXPRESSIONS]:
        if expr not in found or expr == "neutral":
            continue
        groups = found[expr]
        for group in groups:
            first = next(iter(group.values()))[0]
            tag = f"{expr}_{_slug(_side_free(first))}" if len(groups) > 1 else expr
            for s in intensities:
                values = {m: {k: float(s) for k in ks} for m, ks in group.items()}
                label = expr if expr in LABELS else None
                poses.append(ComposedPose(pose_name(tag, s), label, expr, s, "named", values))
    return poses


def _slug(text: str) -> str:
    return re.sub(r"\W+", "-", text).strip("-") or "key"


def compose_poses(
    keys_by_mesh: dict[str, list[str]],
    intensities: tuple[float, ...] = DEFAULT_INTENSITIES,
    table: dict | None = None,
) -> tuple[list[ComposedPose], dict]:
    """Every pose a rig's keys give, and a report (``scheme``, ``coverage`` per expression, ``missing``)."""
    table = table or load_au_table()
    scheme = detect_scheme(keys_by_mesh, table)
    if scheme is not None:
        poses, cov = compose_from_scheme(scheme, table, intensities)
        missing = sorted(e for e, c in cov.items() if c < MIN_COVERAGE)
        return poses, {"scheme": scheme.name, "coverage": cov, "missing": missing}
    poses = compose_from_names(keys_by_mesh, intensities)
    present = {p.expression for p in poses}
    missing = [lab for lab in LABELS if lab not in present]
    return poses, {"scheme": "named" if poses else None, "coverage": {}, "missing": missing}


def landmark_roles(keys_by_mesh: dict[str, list[str]], table: dict | None = None) -> dict[str, list[tuple[str, str]]]:
    """Role -> [(mesh, key)] whose motion marks a facial part (see ROLES); roles the rig lacks are absent.
    Falls back on key-name words (blink, brow+up, smile, jaw+open) when no scheme is recognised."""
    table = table or load_au_table()
    scheme = detect_scheme(keys_by_mesh, table)
    out: dict[str, list[tuple[str, str]]] = {}
    if scheme is not None:
        if scheme.name in ("facs", "deepexpr"):
            roles = FACS_ROLES if scheme.name == "facs" else DEEPEXPR_ROLES
            for role, aus in roles.items():
                first_only = role in ("eye_close", "jaw_open")
                for au in aus:
                    found = [(m, k) for m, k, _ in _au_targets(scheme, au)]
                    if found:
                        out.setdefault(role, []).extend(found)
                        if first_only:
                            break
        else:
            roles = {"arkit": ARKIT_ROLES, "valid": VALID_ROLES, "weboji": WEBOJI_ROLES}[scheme.name]
            for role, names in roles.items():
                found = [mk for n in names for mk in scheme.find(n)]
                if found:
                    out[role] = found
        return out
    for mesh, keys in keys_by_mesh.items():
        for k in keys:
            t = set(tokens(k))
            s = squash(k)
            role = None
            if "blink" in t or ("eye" in t and "close" in t) or "blink" in s:
                role = "eye_close"
            elif ("brow" in t or "eyebrow" in t) and ("up" in t or "raise" in t or "raiser" in t):
                role = "brow_raise"
            elif "smile" in t and not (t & {"brow", "eye", "eyes"}):
                role = "smile"
            elif ("jaw" in t and "open" in t) or s in ("mouthopen", "aa", "a", "あ"):
                role = "jaw_open"
            if role:
                out.setdefault(role, []).append((mesh, k))
    return out
