"""One increasing timeline out of a stream's raw presentation times, and the frame rate
those times show."""
from __future__ import annotations

import math

import numpy as np


MAX_GAP_S = 5.0         # where clocks break (`containers.clock_breaks`): a forward jump longer than
                        # this is a discontinuity, not a pause
RATE_TOLERANCE = 0.1    # a declared frame rate further than this (relative) from the timestamps' is wrong


def frame_duration(fps: float) -> float:
    """Seconds per frame; 25 fps where the stream declares no usable rate."""
    return 1.0 / fps if fps else 1.0 / 25


def measured_fps(times: list[float]) -> float:
    """The frame rate the presentation times show: 1 / the median spacing of consecutive
    frames (0 with fewer than two distinct times). A held frame or a gap is one long spacing
    among many and does not move the median."""
    if len(times) < 2:
        return 0.0
    steps = np.diff(np.asarray(times, np.float64))
    steps = steps[steps > 0]
    return 1.0 / float(np.median(steps)) if len(steps) else 0.0


def true_fps(declared: float, times: list[float]) -> float:
    """The declared rate where the timestamps agree with it (within RATE_TOLERANCE), else the
    timestamps' own; never 0 for a stream whose frames have times."""
    measured = measured_fps(times)
    if measured <= 0:
        return declared
    if declared <= 0 or abs(declared / measured - 1.0) > RATE_TOLERANCE:
        return measured
    return declared


class Timeline:
    """Raw presentation times -> one increasing timeline that starts at 0 with the stream's
    first item. A timestamp at or before the previous item's (joined segments, a clock
    reset) is a discontinuity, and so is a forward leap of more than `max_gap` (only where
    the container's clock can break: `containers.clock_breaks`; elsewhere a long hold or a
    gap is real time). At a discontinuity the item is placed right after the previous one
    and later items keep the new offset. Items without a timestamp follow the last."""

    def __init__(self, max_gap: float = MAX_GAP_S):
        self.max_gap = max_gap
        self.first: float | None = None       # raw time of the first item
        self.end = 0.0                        # where the next item is due
        self.last: float | None = None        # where the last item was placed
        self._shift = 0.0
        self.discontinuities = 0

    def place(self, raw: float | None, duration: float) -> float:
        if raw is None or not math.isfinite(raw):
            t = self.end
        elif self.first is None:                  # the first timestamp: items before it had none
            self.first, self._shift, t = raw - self.end, self.end - raw, self.end
        else:
            t = raw + self._shift
            if (self.last is not None and t <= self.last) or t > self.end + self.max_gap:
                self._shift += self.end - t
                self.discontinuities += 1
                t = self.end
        self.end = max(self.end, t + duration)
        self.last = t
        return t
