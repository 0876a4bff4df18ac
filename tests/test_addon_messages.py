"""Backend errors reach the user in plain words (plain Python: no bpy needed)."""

from __future__ import annotations


def test_backend_errors_reach_the_user_in_plain_words():
    from deepexpr_blender.client import BackendError
    from deepexpr_blender.core import protocol as P
    from deepexpr_blender.messages import explain

    for name, code in P.ERROR_CODES.items():
        text = explain(BackendError("param 'target' must be a non-empty string", code), "Capture")
        assert text.startswith("Capture failed. ") and name not in text, text
        assert text.rstrip().endswith("."), text
    assert "bug" in explain(BackendError("param 'target' must be a string", P.INVALID_PARAMS), "Batch")
