"""The documented expression mapping (``deepexpr_blender.core.expression_keys``), plain Python: key schemes
recognised whatever their spelling, the AU table composed onto them, whole-expression key names."""

from __future__ import annotations

import ast
import os

import pytest

from deepexpr_blender.core import expression_keys as ek

from .conftest import ROOT

ROCKETBOX_LIKE = [
    "AU_01_InnerBrowRaiser", "AU_02_L_OuterBrowRaiser", "AU_02_OuterBrowRaiser", "AU_02_R_OuterBrowRaiser",
    "AU_04_BrowLowerer", "AU_05_UpperLidRaiser", "AU_06_L_CheekRaiser", "AU_06_R_CheekRaiser",
    "AU_07_LidTightener", "AU_09_NoseWrinkler", "AU_10_UpperLipRaiser", "AU_12_LipCornerPuller",
    "AU_15_LipCornerDepressor", "AU_20_LipStretcher", "AU_25_LipsPart", "AU_26_JawDrop", "AU_45_Blink",
    "AK_44_MouthSmileLeft", "AK_45_MouthSmileRight", "_Neutral",
]  # fmt: skip
WEBOJI = list(ek.WEBOJI_11)


def test_core_modules_import_only_the_standard_library():
    for mod in ("expression_keys", "vrm"):
        tree = ast.parse(open(os.path.join(ROOT, "deepexpr_blender", "core", f"{mod}.py"), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for n in names:
                assert n.split(".")[0] in {"json", "os", "re", "struct", "unicodedata", "dataclasses", "__future__"}, n


@pytest.mark.parametrize(
    "key, want",
    [
        ("AK_44_MouthSmileLeft", "mouthSmileLeft"),
        ("mouthSmile_L", "mouthSmileLeft"),
        ("MouthSmile_R", "mouthSmileRight"),
        ("blendShape1.jawOpen", "jawOpen"),
        ("A25_Jaw_Open", "jawOpen"),
        ("eyeBlinkLeft", "eyeBlinkLeft"),
        ("browInnerUp", "browInnerUp"),
        ("mouthSmile", None),
        ("h_expressions.RsmileClose_h", None),
    ],
)
def test_arkit_names_in_any_spelling(key, want):
    assert ek.arkit_name(key) == want


def test_facs_scheme_prefers_the_bilateral_key_and_composes_every_expression():
    poses, report = ek.compose_poses({"body": ROCKETBOX_LIKE})
    assert report["scheme"] == "facs" and report["missing"] == []
    by = {p.name: p for p in poses}
    assert {p.label for p in poses} == {"neutral", "joy", "sadness", "surprise", "fear", "anger", "disgust"}
    assert len(poses) == 1 + 6 * 3
    assert by["neutral"].values == {}
    # AU2 has a bilateral key: only it is used; AU6 has only sides: both are used
    surprise = by["surprise_100"].values["body"]
    assert "AU_02_OuterBrowRaiser" in surprise and "AU_02_L_OuterBrowRaiser" not in surprise
    joy = by["joy_100"].values["body"]
    assert joy["AU_06_L_CheekRaiser"] == joy["AU_06_R_CheekRaiser"] == 0.75  # midpoint of [0.5, 1.0]
    assert joy["AU_12_LipCornerPuller"] == 0.85
    # intensity scales every weight
    assert by["joy_050"].values["body"]["AU_12_LipCornerPuller"] == pytest.approx(0.425)


def test_arkit_scheme_from_a_prefix_free_rig():
    keys = [n for n in ek.ARKIT_52]
    poses, report = ek.compose_poses({"Face": keys})
    assert report["scheme"] == "arkit" and report["missing"] == []
    anger = next(p for p in poses if p.name == "anger_100").values["Face"]
    assert anger["browDownLeft"] == anger["browDownRight"] == 0.85
    assert anger["eyeSquintLeft"] == 0.7
    # jawOpen is driven by AU25 (x0.15) and AU26 (x1.0) in surprise: the larger wins, never the sum
    surprise = next(p for p in poses if p.name == "surprise_100").values["Face"]
    assert surprise["jawOpen"] == 0.75


def test_weboji_offers_only_what_it_can_show():
    poses, report = ek.compose_poses({"WebojiBoy": WEBOJI})
    assert report["scheme"] == "weboji"
    assert sorted(report["missing"]) == ["fear", "sadness"]
    assert {p.label for p in poses} == {"neutral", "joy", "surprise", "anger", "disgust"}
    assert report["coverage"]["sadness"] < ek.MIN_COVERAGE <= report["coverage"]["surprise"]


def test_valid_scheme_and_its_roles():
    keys = [f"h_expressions.{k}_h" for k in sorted(ek._VALID_NAMES)] + ["h_expressions.AE_AA_h"]
    poses, report = ek.compose_poses({"H_DDS_HighRes": keys})
    assert report["scheme"] == "valid" and report["missing"] == []
    roles = ek.landmark_roles({"H_DDS_HighRes": keys})
    assert roles["eye_close"] == [
        ("H_DDS_HighRes", "h_expressions.ReyeClose_h"),
        ("H_DDS_HighRes", "h_expressions.LeyeClose_h"),
    ]
    assert roles["jaw_open"] == [("H_DDS_HighRes", "h_expressions.MouthOpen_h")]


@pytest.mark.parametrize(
    "key, want",
    [
        ("Angry", ("anger", False)),
        ("Fcl_ALL_Joy", ("joy", False)),
        ("Fcl_BRW_Angry", ("anger", True)),
        ("Fcl_MTH_Sorrow", ("sadness", True)),
        ("怒り", ("anger", False)),
        ("笑い", ("joy", False)),
        ("にこり", ("joy", False)),
        ("悲しい", ("sadness", False)),
        ("驚き", ("surprise", False)),
        ("Traurig", ("sadness", False)),
        ("Überrascht", ("surprise", False)),
        ("colère", ("anger", False)),
        ("Sonrisa_L", ("joy", False)),
        ("Relaxed", ("relaxed", False)),
        ("eyeBlinkLeft", None),
        ("jawOpen", None),
        ("madness_ratio", None),
    ],
)
def test_expression_words(key, want):
    assert ek.expression_of_name(key) == want


def test_named_keys_whole_keys_first_parts_together_sides_joined():
    keys = ["Fcl_ALL_Angry", "Fcl_BRW_Angry", "Fcl_BRW_Fear", "Fcl_EYE_Fear", "Smile_L", "Smile_R", "Laugh", "Blink"]
    poses, report = ek.compose_poses({"Face": keys})
    assert report["scheme"] == "named"
    vals = {p.name: p.values["Face"] for p in poses if p.values}
    assert vals["anger_100"] == {"Fcl_ALL_Angry": 1.0}  # the whole key, not the brow part
    assert vals["fear_075"] == {"Fcl_BRW_Fear": 0.75, "Fcl_EYE_Fear": 0.75}  # parts together
    assert vals["joy_smile_050"] == {"Smile_L": 0.5, "Smile_R": 0.5}  # one family per whole key
    assert vals["joy_laugh_100"] == {"Laugh": 1.0}
    assert sorted(report["missing"]) == ["disgust", "sadness", "surprise"]


def test_a_rig_without_expression_keys_gets_nothing():
    poses, report = ek.compose_poses({"Cube": ["Key 1", "Key 2", "Twist"]})
    assert poses == [] and report["scheme"] is None


def test_landmark_names_match_the_backend():
    from backend.landmarks import SEMANTIC_NAMES
    from deepexpr_blender.rigs.landmarks3d import SEMANTIC_NAMES as ADDON_NAMES

    assert ADDON_NAMES == SEMANTIC_NAMES
