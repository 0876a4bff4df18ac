"""Character pose libraries on the backend side: loading with validation (format in
``deepexpr_blender/core/library_format.py``: paths confined to the library folder, strict JSON values,
well-formed landmarks) and where the built-in library is. Indexes of libraries: ``backend/retrieval.py``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from deepexpr_blender.core import library_format as fmt
from deepexpr_blender.core import protocol

from .errors import DeepExprError
from .landmarks import SEMANTIC_NAMES

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE_DIR = os.environ.get("DEEPEXPR_CACHE", os.path.join(PROJECT_ROOT, "cache"))
# The built-in characters' library: built by training.build_library, shipped beside the backend's code.
BUILTIN_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "library")


@dataclass
class Library:
    root: str
    data: dict

    @property
    def entries(self) -> list[dict]:
        return self.data["entries"]

    def thumbnail(self, i: int) -> str:
        return os.path.join(self.root, self.entries[i]["thumbnail"])

    def semantic(self, i: int) -> np.ndarray | None:
        """Named landmarks of entry i (SEMANTIC_NAMES order, thumbnail pixels), or None."""
        lm = self.entries[i].get("landmarks")
        return None if lm is None else np.asarray(lm, dtype=np.float64)


def check_folder(root: str) -> str:
    """``root`` as an absolute path when it is a folder holding a library.json; else LIBRARY_INVALID."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise DeepExprError(protocol.LIBRARY_INVALID, f"library {root}: not a folder", {"library": root})
    if not os.path.isfile(os.path.join(root, "library.json")):
        raise DeepExprError(protocol.LIBRARY_INVALID, f"library {root}: no library.json file in it", {"library": root})
    return root


def load_library(root: str) -> Library:
    """Load and validate a library folder; LIBRARY_INVALID names the library and the entry at fault."""
    root = check_folder(root)
    try:
        data = fmt.load(root)
    except fmt.LibraryError as exc:
        raise DeepExprError(protocol.LIBRARY_INVALID, str(exc), {"library": root}) from None
    except (OSError, ValueError) as exc:  # unreadable, or a name the file system refuses
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DeepExprError(
            protocol.LIBRARY_INVALID, f"library {root}: cannot read it: {what}", {"library": root}
        ) from None
    except (TypeError, KeyError, AttributeError, RecursionError) as exc:  # a shape the format check did not expect
        raise DeepExprError(
            protocol.LIBRARY_INVALID,
            f"library {root}: library.json is malformed ({type(exc).__name__}: {exc})",
            {"library": root},
        ) from None
    for i, e in enumerate(data["entries"]):
        bad = _not_strict(e) or _entry_problem(e)
        if bad:
            raise DeepExprError(
                protocol.LIBRARY_INVALID,
                f"library {root}: entry {i} ({_text(e['id'])!r}): {bad}",
                {"library": root, "entry": i},
            )
    return Library(root=root, data=data)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _entry_problem(e: dict) -> str | None:
    """What is wrong with the fields retrieval reads (landmarks, face box, intensity), or None."""
    lm = e.get("landmarks")
    if lm is not None and (
        not isinstance(lm, list)
        or len(lm) != len(SEMANTIC_NAMES)
        or not all(isinstance(p, list) and len(p) == 2 and all(_number(v) for v in p) for p in lm)
    ):
        return f"landmarks must be null or {len(SEMANTIC_NAMES)} [x, y] points"
    box = e.get("face_box")
    if box is not None and (
        not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box) or box[2] <= box[0]
        or box[3] <= box[1]
    ):  # fmt: skip
        return "face_box must be null or [left, top, right, bottom] pixels with right > left and bottom > top"
    s = e.get("intensity")
    if s is not None and (not _number(s) or not 0 <= s <= 1):
        return "intensity must be null or a number in 0..1"
    return None


def _text(s: str) -> str:
    return s.encode("utf-8", "replace").decode("utf-8")


def _not_strict(v, where: str = "") -> str | None:
    """What keeps a parsed entry from being strict JSON (a NaN / Infinity number, a string that is not valid
    Unicode, such as a file name in another encoding), or None."""
    if isinstance(v, float) and not math.isfinite(v):
        return f"{where or 'a value'} is {v}, not a finite number"
    if isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where or 'a string'} is not valid Unicode text ({_text(v)!r})"
    if isinstance(v, dict):
        for k, x in v.items():
            bad = _not_strict(k, where) or _not_strict(x, f"{where}.{_text(str(k))}" if where else _text(str(k)))
            if bad:
                return bad
    if isinstance(v, list):
        for j, x in enumerate(v):
            bad = _not_strict(x, f"{where}[{j}]")
            if bad:
                return bad
    return None


def builtin_library(root: str = BUILTIN_LIBRARY) -> str:
    """The built-in library's folder: an artefact built by ``make library`` (``python -m training.build_library``,
    which renders with bpy) and shipped with the backend; LIBRARY_INVALID says how to build it when absent."""
    if not os.path.isfile(os.path.join(root, "library.json")):
        raise DeepExprError(
            protocol.LIBRARY_INVALID,
            f"the built-in pose library {root} is missing; build it with `make library` "
            "(python -m training.build_library, needs the render extra: pip install -e .[render])",
            {"library": root},
        )
    return root
