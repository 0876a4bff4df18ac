"""The add-on's own errors: problems a user can fix, each message saying what failed and what to do.

Plain Python (no ``bpy``). Operators catch ``USER_ERRORS`` and report them; anything else is a bug and keeps
its traceback. Backend errors are ``client.BackendError``; broken libraries are ``core.library_format.LibraryError``.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user can fix; the message says what failed and what to do."""


class CaptureError(UserError):
    """The capture source cannot be read (no image chosen, no movie strip, playhead outside it, fps mismatch)."""


class KeyingError(UserError):
    """The target cannot take this pose (wrong kind of object, none of the pose's channels, no target)."""


class PoseError(UserError):
    """Pose data that does not validate (unknown pose kind, missing fields, missing image)."""


class RigError(UserError):
    """No poses can be made from this rig (no shape keys, no action, no markers or keyed frames)."""


class WorkflowError(UserError):
    """A workflow cannot start (nothing captured yet, no input chosen, no candidate)."""
