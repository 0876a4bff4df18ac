"""Temporal smoothing of per-frame pose retrieval, so keyed poses do not pop (stdlib only).

Each sampled frame brings the retrieval's candidates (ids and scores, lower is better) or nothing (no face).
The chosen pose changes only when (1) the current pose has been held for ``min_hold`` frames and (2) a
challenger beats the current pose's score *at this frame* by more than ``hysteresis`` (the current pose
counts as infinitely bad when it is not among this frame's candidates). Frames without a face keep the pose.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Segment:
    start: int  # first frame the pose is shown
    end: int  # last frame the pose is held (inclusive)
    pose_id: str


def smooth(
    samples: list[tuple[int, list[tuple[str, float]] | None]], min_hold: int = 6, hysteresis: float = 0.02
) -> list[Segment]:
    """``samples``: (frame, [(pose id, score), ...] or None), frames ascending. Returns pose segments."""
    segments: list[Segment] = []
    current: str | None = None
    since = 0
    for frame, cands in samples:
        if segments:
            segments[-1].end = frame
        if not cands:
            continue
        best_id, best_score = min(cands, key=lambda c: c[1])
        if current is None:
            current, since = best_id, frame
            segments.append(Segment(frame, frame, best_id))
            continue
        if best_id == current:
            continue
        cur_score = next((s for i, s in cands if i == current), float("inf"))
        if frame - since >= min_hold and cur_score - best_score > hysteresis:
            segments[-1].end = frame - 1
            current, since = best_id, frame
            segments.append(Segment(frame, frame, best_id))
    return segments


def count_switches(segments: list[Segment]) -> int:
    return max(0, len(segments) - 1)


class OnlineSmoother:
    """The same rule as ``smooth``, one sample at a time (live mode): ``push`` returns the pose to show.

    Times may be frames or seconds (``min_hold`` in the same unit). ``since`` is when the current pose was
    chosen; ``blend(t, duration)`` is how far (0..1, eased) the switch to it has gone at time ``t``.
    """

    def __init__(self, min_hold: float = 6, hysteresis: float = 0.02):
        self.min_hold, self.hysteresis = min_hold, hysteresis
        self.current: str | None = None
        self.previous: str | None = None
        self.since = 0.0

    def push(self, t: float, cands: list[tuple[str, float]] | None) -> bool:
        """Take one sample; True when the pose changed."""
        if not cands:
            return False
        best_id, best_score = min(cands, key=lambda c: c[1])
        if self.current is None:
            self.current, self.since = best_id, t
            return True
        if best_id == self.current:
            return False
        cur_score = next((s for i, s in cands if i == self.current), float("inf"))
        if t - self.since >= self.min_hold and cur_score - best_score > self.hysteresis:
            self.previous, self.current, self.since = self.current, best_id, t
            return True
        return False

    def blend(self, t: float, duration: float) -> float:
        """Eased progress (smoothstep) of the switch from ``previous`` to ``current`` at time ``t``."""
        if self.previous is None or duration <= 0:
            return 1.0
        x = min(1.0, max(0.0, (t - self.since) / duration))
        return x * x * (3 - 2 * x)
